//! virtio-rng end to end (virtio 1.2, section 5.4).

use super::*;
use crate::virtio::rng::{EntropyError, EntropySource, MAX_BYTES_PER_REQUEST, Rng, RngState};
use crate::virtio::transport::VirtioDevice;
use std::vec;

/// A source of counting bytes that can fail, or give at most `limit` bytes a call.
#[derive(Debug, Default)]
struct Counter {
    next: u8,
    failing: bool,
    limit: Option<usize>,
}

impl EntropySource for Counter {
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize, EntropyError> {
        if self.failing {
            return Err(EntropyError);
        }
        let count = self
            .limit
            .map_or(buffer.len(), |limit| limit.min(buffer.len()));
        for byte in &mut buffer[..count] {
            *byte = self.next;
            self.next = self.next.wrapping_add(1);
        }
        Ok(count)
    }
}

fn driver(source: Counter) -> Driver<Rng<Counter>> {
    let mut d = Driver::new(Rng::new(source));
    d.init(u64::MAX, 1, 16);
    d
}

#[test]
fn identity() {
    let mut d = Driver::new(Rng::new(Counter::default()));
    assert_eq!(d.read32(regs::DEVICE_ID), 4);
    assert_eq!(
        d.device_features() & DEVICE_FEATURE_BITS,
        0,
        "no device features"
    );
    assert_eq!(
        d.transport.read(regs::CONFIG, AccessWidth::Word),
        0,
        "no configuration"
    );
}

#[test]
fn fills_requests_with_source_bytes() {
    let mut d = driver(Counter::default());
    let a = d.alloc(10);
    let b = d.alloc(6);
    let head = d.submit(0, &[Buf::write(a, 10), Buf::write(b, 6)]);
    assert_eq!(d.take_used(0), vec![(u32::from(head), 16)]);
    let mut got = d.get(a, 10);
    got.extend(d.get(b, 6));
    assert_eq!(got, (0..16).collect::<Vec<u8>>());
    // At most MAX_BYTES_PER_REQUEST per request (section 5.4.6.2 allows less).
    let big = d.alloc(10_000);
    let head = d.submit(0, &[Buf::write(big, 10_000)]);
    assert_eq!(
        d.take_used(0),
        vec![(u32::from(head), MAX_BYTES_PER_REQUEST as u32)]
    );
    assert_eq!(d.transport.device().stats().requests, 2);
}

#[test]
fn a_short_source_gives_fewer_bytes() {
    let mut d = driver(Counter {
        limit: Some(3),
        ..Counter::default()
    });
    let buf = d.alloc(64);
    let head = d.submit(0, &[Buf::write(buf, 64)]);
    assert_eq!(d.take_used(0), vec![(u32::from(head), 3)]);
}

#[test]
fn a_failing_source_keeps_the_buffer_until_it_recovers() {
    let mut d = driver(Counter {
        failing: true,
        ..Counter::default()
    });
    let a = d.alloc(8);
    let b = d.alloc(8);
    let h1 = d.submit(0, &[Buf::write(a, 8)]);
    let h2 = d.submit(0, &[Buf::write(b, 8)]);
    // Section 5.4.6.2: "MUST place one or more random bytes": no empty answer.
    assert!(d.take_used(0).is_empty());
    assert_eq!(d.transport.device().save().waiting, Some(h1));
    d.transport.process(&mut d.memory);
    assert!(d.take_used(0).is_empty());
    assert!(d.transport.device().stats().source_failures >= 2);
    assert!(!d.transport.needs_reset());
    d.transport.device_mut().source_mut().failing = false;
    d.transport.process(&mut d.memory);
    assert_eq!(d.take_used(0), vec![(u32::from(h1), 8), (u32::from(h2), 8)]);
    assert_eq!(d.get(a, 8), (0..8).collect::<Vec<u8>>());
    assert!(d.transport.interrupt_level());
}

#[test]
fn a_request_waiting_for_entropy_is_retried_on_any_access() {
    let mut d = driver(Counter {
        failing: true,
        ..Counter::default()
    });
    let buf = d.alloc(8);
    let head = d.submit(0, &[Buf::write(buf, 8)]);
    assert!(d.transport.needs_processing(), "a request waits");
    d.transport.device_mut().source_mut().failing = false;
    d.read32(regs::INTERRUPT_STATUS);
    d.service();
    assert_eq!(d.take_used(0), vec![(u32::from(head), 8)]);
    assert!(!d.transport.needs_processing());
}

#[test]
fn an_empty_buffer_is_returned_empty() {
    let mut d = driver(Counter::default());
    let buf = d.alloc(1);
    let head = d.submit(0, &[Buf::write(buf, 0)]);
    assert_eq!(d.take_used(0), vec![(u32::from(head), 0)]);
}

#[test]
fn a_readable_buffer_needs_a_reset() {
    let mut d = driver(Counter::default());
    let buf = d.alloc(8);
    d.submit(0, &[Buf::read(buf, 8), Buf::write(buf, 8)]);
    assert!(d.transport.needs_reset());
    assert!(d.take_used(0).is_empty());
}

#[test]
fn save_and_restore() {
    let mut d = driver(Counter {
        failing: true,
        ..Counter::default()
    });
    let buf = d.alloc(8);
    let head = d.submit(0, &[Buf::write(buf, 8)]);
    let state = d.transport.save();
    assert_eq!(
        state.device,
        RngState {
            waiting: Some(head)
        }
    );
    let mut restored = MmioTransport::new(Rng::new(Counter::default()));
    restored.restore(&state).unwrap();
    let mut d2 = Driver {
        transport: restored,
        memory: d.memory.clone(),
        queues: d.queues.clone(),
        next_buffer: d.next_buffer,
    };
    d2.transport.process(&mut d2.memory);
    assert_eq!(d2.take_used(0), vec![(u32::from(head), 8)]);
    let mut rng = Rng::new(Counter::default());
    assert!(rng.restore(&RngState { waiting: Some(64) }).is_err());
    assert!(rng.restore(&RngState { waiting: Some(63) }).is_ok());
}
