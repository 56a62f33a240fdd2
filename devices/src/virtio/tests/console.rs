//! virtio-console end to end (virtio 1.2, section 5.3).

use super::*;
use crate::virtio::console::{Console, ConsoleState, INPUT_CAPACITY, OUTPUT_CAPACITY};
use crate::virtio::queue::QueueError;
use std::vec;

const RX: usize = 0;
const TX: usize = 1;
/// `VIRTIO_CONSOLE_F_EMERG_WRITE` (section 5.3.3).
const F_EMERG_WRITE: u64 = 1 << 2;
/// `emerg_wr` (section 5.3.4: after le16 cols/rows and le32 max_nr_ports).
const EMERG_WR: u64 = regs::CONFIG + 8;

fn driver() -> Driver<Console> {
    let mut d = Driver::new(Console::new());
    d.init(u64::MAX, 2, 64);
    d
}

fn drain(d: &mut Driver<Console>) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buffer = [0; 1000];
    loop {
        let n = d.transport.device_mut().take_output(&mut buffer);
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&buffer[..n]);
    }
}

#[test]
fn identity_features_and_configuration() {
    let mut d = Driver::new(Console::new());
    assert_eq!(d.read32(regs::DEVICE_ID), 3);
    assert_eq!(
        d.device_features() & DEVICE_FEATURE_BITS,
        F_EMERG_WRITE,
        "no SIZE, no MULTIPORT"
    );
    for offset in 0..12 {
        assert_eq!(
            d.transport.read(regs::CONFIG + offset, AccessWidth::Byte),
            0
        );
    }
    d.write32(regs::QUEUE_SEL, 2);
    assert_eq!(
        d.read32(regs::QUEUE_NUM_MAX),
        0,
        "no control queues without MULTIPORT"
    );
}

#[test]
fn transmit() {
    let mut d = driver();
    let a = d.put(b"hello, ");
    let b = d.put(b"hvc0\n");
    let head = d.submit(TX, &[Buf::read(a, 7), Buf::read(b, 5)]);
    assert_eq!(
        d.take_used(TX),
        vec![(u32::from(head), 0)],
        "nothing written"
    );
    assert_eq!(drain(&mut d), b"hello, hvc0\n");
    assert_eq!(d.transport.device().stats().transmitted, 12);
}

#[test]
fn transmit_waits_for_room_in_the_output_buffer() {
    let mut d = driver();
    let big: Vec<u8> = (0..OUTPUT_CAPACITY + 5000).map(|i| i as u8).collect();
    let first = d.put(&big);
    let second = d.put(b"after");
    let h1 = d.write_chain(TX, &[Buf::read(first, big.len() as u32)]);
    d.publish(TX, h1);
    let h2 = d.write_chain(TX, &[Buf::read(second, 5)]);
    d.publish(TX, h2);
    d.notify(TX);
    assert!(d.take_used(TX).is_empty(), "the big buffer is not finished");
    assert_eq!(d.transport.device().output_len(), OUTPUT_CAPACITY);
    let mut out = drain(&mut d);
    d.transport.process(&mut d.memory);
    assert_eq!(
        d.take_used(TX),
        vec![(u32::from(h1), 0), (u32::from(h2), 0)]
    );
    out.extend(drain(&mut d));
    let mut expected = big.clone();
    expected.extend_from_slice(b"after");
    assert_eq!(out, expected, "every byte, in order");
}

#[test]
fn service_hands_output_over_and_lets_waiting_buffers_through() {
    let mut d = driver();
    let big: Vec<u8> = (0..OUTPUT_CAPACITY + 5000).map(|i| i as u8).collect();
    let first = d.put(&big);
    let h1 = d.write_chain(TX, &[Buf::read(first, big.len() as u32)]);
    d.publish(TX, h1);
    d.write32(regs::QUEUE_NOTIFY, TX as u32);
    // One service: the whole buffer reaches the host, and goes back to the guest
    // (a driver may spin until it does).
    assert_eq!(d.service(), big);
    assert_eq!(d.take_used(TX), vec![(u32::from(h1), 0)]);
    assert_eq!(d.transport.device().output_len(), 0);
    // An emergency write is output at once, without any queue.
    d.transport
        .write(EMERG_WR, AccessWidth::Byte, u64::from(b'!'));
    assert_eq!(d.service(), b"!");
    assert!(d.service().is_empty());
}

#[test]
fn input_waits_for_receive_buffers() {
    let mut d = driver();
    assert_eq!(d.transport.device_mut().push_input(b"typed"), 5);
    d.transport.process(&mut d.memory);
    assert!(d.take_used(RX).is_empty());
    let buf = d.alloc(64);
    let head = d.submit(RX, &[Buf::write(buf, 64)]);
    assert_eq!(d.take_used(RX), vec![(u32::from(head), 5)]);
    assert_eq!(d.get(buf, 5), b"typed");
    // Receive buffers wait for input too.
    let buf2 = d.alloc(2);
    let buf3 = d.alloc(8);
    let h2 = d.submit(RX, &[Buf::write(buf2, 2)]);
    let h3 = d.submit(RX, &[Buf::write(buf3, 8)]);
    assert!(d.take_used(RX).is_empty());
    d.transport.device_mut().push_input(b"abcdef");
    d.transport.process(&mut d.memory);
    assert_eq!(
        d.take_used(RX),
        vec![(u32::from(h2), 2), (u32::from(h3), 4)]
    );
    assert_eq!(d.get(buf2, 2), b"ab");
    assert_eq!(d.get(buf3, 4), b"cdef");
    assert!(d.transport.interrupt_level());
    assert_eq!(d.transport.device().stats().received, 11);
}

#[test]
fn input_is_bounded() {
    let mut d = driver();
    let lots = vec![b'x'; INPUT_CAPACITY + 100];
    assert_eq!(d.transport.device_mut().push_input(&lots), INPUT_CAPACITY);
    assert_eq!(d.transport.device().input_room(), 0);
    assert_eq!(d.transport.device_mut().push_input(b"y"), 0);
}

#[test]
fn nothing_moves_before_driver_ok() {
    let mut d = Driver::new(Console::new());
    assert!(d.negotiate(u64::MAX));
    d.setup_queue(0, 64);
    d.setup_queue(1, 64);
    let buf = d.alloc(8);
    let head = d.write_chain(RX, &[Buf::write(buf, 8)]);
    d.publish(RX, head);
    d.transport.device_mut().push_input(b"early");
    d.transport.process(&mut d.memory);
    assert!(d.take_used(RX).is_empty());
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    d.transport.process(&mut d.memory);
    assert_eq!(d.take_used(RX), vec![(u32::from(head), 5)]);
}

#[test]
fn emergency_write() {
    let mut d = Driver::new(Console::new());
    // Section 5.3.5.1: allowed even on an unconfigured device; the low byte counts.
    d.transport.write(EMERG_WR, AccessWidth::Word, 0x1234_5621);
    d.transport
        .write(EMERG_WR, AccessWidth::Byte, u64::from(b'?'));
    d.transport
        .write(EMERG_WR + 1, AccessWidth::Byte, u64::from(b'x'));
    assert_eq!(drain(&mut d), b"!?");
    for _ in 0..OUTPUT_CAPACITY + 3 {
        d.transport
            .write(EMERG_WR, AccessWidth::Word, u64::from(b'z'));
    }
    assert_eq!(d.transport.device().stats().emergency_dropped, 3);
}

#[test]
fn wrong_direction_buffers_need_a_reset() {
    let mut d = driver();
    let buf = d.alloc(8);
    d.submit(TX, &[Buf::write(buf, 8)]);
    assert!(d.transport.needs_reset());
    assert_eq!(d.transport.take_fault().unwrap().queue, 1);

    let mut d = driver();
    d.transport.device_mut().push_input(b"x");
    d.submit(RX, &[Buf::read(buf, 8)]);
    assert!(d.transport.needs_reset());
    assert_eq!(
        d.transport.take_fault().unwrap().error,
        QueueError::BadRequest("a console receive buffer is device-readable")
    );
}

#[test]
fn save_and_restore_mid_transmission() {
    let mut d = driver();
    let big: Vec<u8> = (0..OUTPUT_CAPACITY + 10).map(|i| (i * 3) as u8).collect();
    let buf = d.put(&big);
    let head = d.submit(TX, &[Buf::read(buf, big.len() as u32)]);
    d.transport.device_mut().push_input(b"in");
    let state = d.transport.save();
    assert_eq!(
        state.device.transmitting,
        Some((head, OUTPUT_CAPACITY as u32))
    );
    assert_eq!(state.device.input, b"in");
    assert_eq!(state.device.output.len(), OUTPUT_CAPACITY);

    let mut restored = MmioTransport::new(Console::new());
    restored.restore(&state).unwrap();
    let mut d2 = Driver {
        transport: restored,
        memory: d.memory.clone(),
        queues: d.queues.clone(),
        next_buffer: d.next_buffer,
    };
    let mut out = drain(&mut d2);
    d2.transport.process(&mut d2.memory);
    out.extend(drain(&mut d2));
    assert_eq!(out, big);
    assert_eq!(d2.take_used(TX), vec![(u32::from(head), 0)]);

    let mut console = Console::new();
    let too_much = ConsoleState {
        input: vec![0; INPUT_CAPACITY + 1],
        ..ConsoleState::default()
    };
    assert!(crate::virtio::VirtioDevice::restore(&mut console, &too_much).is_err());
    let too_much = ConsoleState {
        output: vec![0; OUTPUT_CAPACITY + 1],
        ..ConsoleState::default()
    };
    assert!(crate::virtio::VirtioDevice::restore(&mut console, &too_much).is_err());
}

#[test]
fn disabling_the_transmit_queue_forgets_the_partial_buffer() {
    let mut d = driver();
    let big = vec![1u8; OUTPUT_CAPACITY + 10];
    let buf = d.put(&big);
    d.submit(TX, &[Buf::read(buf, big.len() as u32)]);
    assert!(d.transport.device().save().transmitting.is_some());
    d.write32(regs::QUEUE_SEL, TX as u32);
    d.write32(regs::QUEUE_READY, 0);
    assert_eq!(d.transport.device().save().transmitting, None);
}

#[test]
fn a_transport_is_quiet_only_with_no_queue_work_and_no_output_waiting() {
    let mut d = driver();
    assert!(d.transport.is_quiet(), "a fresh live transport");
    let text = d.put(b"quiet?\n");
    let head = d.write_chain(TX, &[Buf::read(text, 7)]);
    d.publish(TX, head);
    d.write32(regs::QUEUE_NOTIFY, TX as u32);
    assert!(!d.transport.is_quiet(), "a notification waits");
    d.transport.process(&mut d.memory);
    assert!(!d.transport.is_quiet(), "output waits to be handed over");
    assert_eq!(d.read32(regs::DEVICE_ID), 3);
    assert!(!d.transport.is_quiet(), "a read hands nothing over");
    assert_eq!(d.service(), b"quiet?\n");
    assert!(d.transport.is_quiet(), "serviced");
}
