//! The virtio-mmio version 2 register interface (virtio 1.2, section 4.2.2) and the
//! device lifecycle (section 3.1), with a probe device.

use super::*;
use crate::virtio::DeviceType;
use crate::virtio::chain::Chain;
use crate::virtio::queue::{Queue, QueueError, QueueFault};
use crate::virtio::transport::{StateError, TransportState, WINDOW_SIZE, read_config_image};
use std::vec;

/// A device-specific feature the probe offers (bit 3).
const PROBE_FEATURE: u64 = 1 << 3;
/// The probe's configuration space.
const PROBE_CONFIG: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
/// A first readable byte that makes the probe call the request malformed.
const POISON: u8 = 0xFF;

/// A device that returns every chain with its writable length, records what the
/// transport told it, and calls a chain starting with [`POISON`] malformed.
#[derive(Debug, Default)]
struct Probe {
    chain: Chain,
    activated: Option<u64>,
    resets: u32,
    disabled: Vec<usize>,
    processed: Vec<usize>,
    config_writes: Vec<(u64, Vec<u8>)>,
    token: u32,
}

impl VirtioDevice for Probe {
    type State = u32;

    fn device_type(&self) -> DeviceType {
        DeviceType::Other(0x42)
    }

    fn device_features(&self) -> u64 {
        PROBE_FEATURE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[16, 8]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_image(&PROBE_CONFIG, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.config_writes.push((offset, data.to_vec()));
    }

    fn activate(&mut self, features: u64) {
        self.activated = Some(features);
    }

    fn reset(&mut self) {
        self.resets += 1;
    }

    fn queue_disabled(&mut self, queue: usize) {
        self.disabled.push(queue);
    }

    fn process_queue(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        self.processed.push(queue);
        let q = &mut queues[queue];
        while q.pop(memory, &mut self.chain).map_err(|e| e.on(queue))? {
            let mut first = [0];
            if self.chain.readable_len() > 0 {
                self.chain
                    .read(memory, 0, &mut first)
                    .map_err(|e| e.on(queue))?;
            }
            if first[0] == POISON {
                return Err(QueueError::BadRequest("poisoned").on(queue));
            }
            let written = self.chain.writable_len() as u32;
            q.add_used(memory, self.chain.head(), written)
                .map_err(|e| e.on(queue))?;
        }
        Ok(())
    }

    fn save(&self) -> u32 {
        self.token
    }

    fn restore(&mut self, state: &u32) -> Result<(), StateError> {
        if *state == u32::MAX {
            return Err(StateError("bad token"));
        }
        self.token = *state;
        Ok(())
    }
}

fn driver() -> Driver<Probe> {
    Driver::new(Probe::default())
}

const ALL: u64 = u64::MAX;

#[test]
fn identification_registers() {
    let mut d = driver();
    assert_eq!(d.read32(0x000), 0x7472_6976, "\"virt\"");
    assert_eq!(d.read32(0x004), 2, "modern");
    assert_eq!(d.read32(0x008), 0x42);
    assert_eq!(d.read32(0x00c), u32::from_le_bytes(*b"AERI"));
}

#[test]
fn feature_words() {
    let mut d = driver();
    let offered = d.device_features();
    assert_eq!(
        offered,
        PROBE_FEATURE | F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX
    );
    d.write32(regs::DEVICE_FEATURES_SEL, 2);
    assert_eq!(d.read32(regs::DEVICE_FEATURES), 0, "no third word");
}

#[test]
fn features_ok_needs_version_1_and_a_subset_of_the_offer() {
    let mut d = driver();
    assert!(
        !d.negotiate(PROBE_FEATURE),
        "VERSION_1 not accepted: refused"
    );
    assert_eq!(d.status(), ACKNOWLEDGE | DRIVER);

    // A bit that was not offered.
    d.write32(regs::STATUS, 0);
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER);
    d.write_driver_features(F_VERSION_1 | 1 << 40);
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    assert_eq!(d.status() & FEATURES_OK, 0);

    assert!(d.negotiate(F_VERSION_1 | PROBE_FEATURE));
    assert_eq!(
        d.transport.negotiated_features(),
        F_VERSION_1 | PROBE_FEATURE
    );
    // Frozen after FEATURES_OK.
    d.write_driver_features(0);
    assert_eq!(
        d.transport.negotiated_features(),
        F_VERSION_1 | PROBE_FEATURE
    );
    // A third feature word does not exist.
    d.write32(regs::DRIVER_FEATURES_SEL, 2);
    d.write32(regs::DRIVER_FEATURES, u32::MAX);
    assert_eq!(
        d.transport.negotiated_features(),
        F_VERSION_1 | PROBE_FEATURE
    );
}

#[test]
fn activation_passes_the_negotiated_features() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    let expected = PROBE_FEATURE | F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;
    assert_eq!(d.transport.device().activated, Some(expected));
    assert!(d.transport.is_live());
}

#[test]
fn queue_registers() {
    let mut d = driver();
    d.negotiate(ALL);
    d.write32(regs::QUEUE_SEL, 0);
    assert_eq!(d.read32(regs::QUEUE_NUM_MAX), 16);
    d.write32(regs::QUEUE_SEL, 1);
    assert_eq!(d.read32(regs::QUEUE_NUM_MAX), 8);
    d.write32(regs::QUEUE_SEL, 2);
    assert_eq!(d.read32(regs::QUEUE_NUM_MAX), 0, "no such queue");
    d.write32(regs::QUEUE_READY, 1);
    assert_eq!(d.read32(regs::QUEUE_READY), 0);
    assert!(!d.transport.needs_reset(), "ignored, not an error");

    d.setup_queue(0, 8);
    let queue = &d.transport.queues()[0];
    assert_eq!(queue.size(), 8);
    assert_eq!(queue.descriptor_area(), RAM_BASE);
    assert_eq!(queue.driver_area(), RAM_BASE + 0x4000);
    assert_eq!(queue.device_area(), RAM_BASE + 0x8000);
    // Setup registers are ignored while the queue is ready.
    d.write32(regs::QUEUE_SEL, 0);
    d.write32(regs::QUEUE_NUM, 4);
    d.write32(regs::QUEUE_DESC_LOW, 0x1234_0000);
    d.write32(regs::QUEUE_DESC_HIGH, 1);
    let queue = &d.transport.queues()[0];
    assert_eq!((queue.size(), queue.descriptor_area()), (8, RAM_BASE));
    // Write-only registers read as zero.
    for offset in [
        regs::QUEUE_NUM,
        regs::QUEUE_DESC_LOW,
        regs::QUEUE_NOTIFY,
        regs::INTERRUPT_ACK,
    ] {
        assert_eq!(d.read32(offset), 0, "{offset:#x}");
    }
    // Disabling: reads back 0, and the device hears of it.
    d.write32(regs::QUEUE_READY, 0);
    assert_eq!(d.read32(regs::QUEUE_READY), 0);
    assert_eq!(d.transport.device().disabled, vec![0]);
    // 64-bit addresses.
    d.write32(regs::QUEUE_DEVICE_HIGH, 0xABCD);
    assert_eq!(
        d.transport.queues()[0].device_area(),
        0xABCD_0000_0000 | (RAM_BASE + 0x8000)
    );
}

#[test]
fn a_bad_queue_setup_needs_a_reset() {
    // (size, desc, avail, used): not a power of two, zero, over the maximum, and
    // each part misaligned (section 2.7's alignment table: 16, 2, 4).
    let cases = [
        (6, RAM_BASE, RAM_BASE + 0x4000, RAM_BASE + 0x8000),
        (0, RAM_BASE, RAM_BASE + 0x4000, RAM_BASE + 0x8000),
        (32, RAM_BASE, RAM_BASE + 0x4000, RAM_BASE + 0x8000),
        (0x1_0000, RAM_BASE, RAM_BASE + 0x4000, RAM_BASE + 0x8000),
        (8, RAM_BASE + 8, RAM_BASE + 0x4000, RAM_BASE + 0x8000),
        (8, RAM_BASE, RAM_BASE + 0x4001, RAM_BASE + 0x8000),
        (8, RAM_BASE, RAM_BASE + 0x4000, RAM_BASE + 0x8002),
    ];
    for (size, desc, avail, used) in cases {
        let mut d = driver();
        d.negotiate(ALL);
        d.write32(regs::QUEUE_SEL, 0);
        d.write32(regs::QUEUE_NUM, size);
        d.write32(regs::QUEUE_DESC_LOW, desc as u32);
        d.write32(regs::QUEUE_DRIVER_LOW, avail as u32);
        d.write32(regs::QUEUE_DEVICE_LOW, used as u32);
        d.write32(regs::QUEUE_READY, 1);
        assert_eq!(d.read32(regs::QUEUE_READY), 0, "size {size}");
        assert!(d.transport.needs_reset());
        assert_ne!(d.status() & NEEDS_RESET, 0);
        let fault = d.transport.take_fault().expect("a fault");
        assert_eq!(fault.queue, 0);
        assert!(d.transport.take_fault().is_none(), "reported once");
        assert_eq!(
            d.read32(regs::INTERRUPT_STATUS),
            0,
            "no DRIVER_OK yet: no interrupt"
        );
    }
}

#[test]
fn queues_outside_ram_need_a_reset_at_first_use() {
    let mut d = driver();
    d.negotiate(ALL);
    d.write32(regs::QUEUE_SEL, 0);
    d.write32(regs::QUEUE_NUM, 8);
    d.write32(regs::QUEUE_DESC_LOW, 0x1000); // below RAM
    d.write32(regs::QUEUE_DRIVER_LOW, RAM_BASE as u32);
    d.write32(regs::QUEUE_DEVICE_LOW, RAM_BASE as u32 + 0x100);
    d.write32(regs::QUEUE_READY, 1);
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    d.transport.process(&mut d.memory);
    assert!(d.transport.needs_reset());
    let fault = d.transport.take_fault().unwrap();
    assert!(matches!(
        fault.error,
        QueueError::AreaOutsideMemory {
            address: 0x1000,
            ..
        }
    ));
    assert_eq!(
        d.ack_interrupt(),
        regs::INTERRUPT_CONFIG_CHANGE,
        "DEVICE_NEEDS_RESET after DRIVER_OK notifies a configuration change"
    );
}

#[test]
fn control_registers_answer_only_aligned_32_bit_accesses() {
    let mut d = driver();
    for width in [AccessWidth::Byte, AccessWidth::Half, AccessWidth::Double] {
        assert_eq!(d.transport.read(regs::MAGIC_VALUE, width), 0, "{width:?}");
        d.transport
            .write(regs::STATUS, width, u64::from(ACKNOWLEDGE));
    }
    assert_eq!(d.transport.read(regs::VERSION + 1, AccessWidth::Word), 0);
    d.transport
        .write(regs::STATUS + 2, AccessWidth::Word, u64::from(ACKNOWLEDGE));
    assert_eq!(d.status(), 0, "all ignored");
    // Every offset and width: no panic, values fit the width.
    for offset in 0..WINDOW_SIZE {
        for width in [
            AccessWidth::Byte,
            AccessWidth::Half,
            AccessWidth::Word,
            AccessWidth::Double,
        ] {
            let value = d.transport.read(offset, width);
            assert_eq!(value, width.truncate(value));
        }
    }
}

#[test]
fn shared_memory_regions_do_not_exist() {
    let mut d = driver();
    d.write32(regs::SHM_SEL, 0);
    // Section 4.2.2: a non-existent region has length -1 and base 0xffffffffffffffff.
    for offset in [
        regs::SHM_LEN_LOW,
        regs::SHM_LEN_HIGH,
        regs::SHM_BASE_LOW,
        regs::SHM_BASE_HIGH,
    ] {
        assert_eq!(d.read32(offset), u32::MAX, "{offset:#x}");
    }
    assert_eq!(d.read32(regs::QUEUE_RESET), 0);
}

#[test]
fn configuration_space_at_any_width() {
    let mut d = driver();
    assert_eq!(d.transport.read(regs::CONFIG, AccessWidth::Byte), 0x11);
    assert_eq!(
        d.transport.read(regs::CONFIG + 1, AccessWidth::Half),
        0x3322
    );
    assert_eq!(
        d.transport.read(regs::CONFIG + 4, AccessWidth::Word),
        0x8877_6655
    );
    assert_eq!(
        d.transport.read(regs::CONFIG, AccessWidth::Double),
        0x8877_6655_4433_2211
    );
    assert_eq!(
        d.transport.read(regs::CONFIG + 6, AccessWidth::Word),
        0x8877,
        "zero past the end"
    );
    assert_eq!(d.transport.read(WINDOW_SIZE - 1, AccessWidth::Byte), 0);
    d.transport
        .write(regs::CONFIG + 3, AccessWidth::Half, 0xBEEF);
    assert_eq!(
        d.transport.device().config_writes,
        vec![(3, vec![0xEF, 0xBE])]
    );
}

#[test]
fn config_generation_and_change_notification() {
    let mut d = driver();
    let before = d.read32(regs::CONFIG_GENERATION);
    d.transport.config_changed();
    assert_ne!(d.read32(regs::CONFIG_GENERATION), before);
    assert_eq!(d.read32(regs::INTERRUPT_STATUS), 0, "not before DRIVER_OK");
    d.init(ALL, 2, 8);
    d.transport.config_changed();
    assert!(d.transport.interrupt_level());
    assert_eq!(d.ack_interrupt(), regs::INTERRUPT_CONFIG_CHANGE);
    assert!(!d.transport.interrupt_level());
}

#[test]
fn requests_flow_and_interrupts_are_acknowledged() {
    let mut d = driver();
    d.init(ALL & !F_EVENT_IDX, 2, 8);
    let out = d.put(&[1, 2, 3]);
    let into = d.alloc(10);
    let head = d.submit(1, &[Buf::read(out, 3), Buf::write(into, 10)]);
    assert_eq!(d.take_used(1), vec![(u32::from(head), 10)]);
    assert!(d.transport.interrupt_level());
    assert_eq!(d.ack_interrupt(), regs::INTERRUPT_USED_BUFFER);
    assert!(!d.transport.interrupt_level());
    assert_eq!(
        d.transport.device().processed,
        vec![0, 1, 1],
        "all at DRIVER_OK, then 1"
    );
    // InterruptACK clears only the bits written.
    d.transport.config_changed();
    d.submit(1, &[Buf::write(into, 1)]);
    d.write32(regs::INTERRUPT_ACK, regs::INTERRUPT_USED_BUFFER);
    assert_eq!(
        d.read32(regs::INTERRUPT_STATUS),
        regs::INTERRUPT_CONFIG_CHANGE
    );
}

#[test]
fn nothing_runs_before_driver_ok_but_nothing_is_lost() {
    let mut d = driver();
    assert!(d.negotiate(ALL));
    d.setup_queue(0, 8);
    let buf = d.alloc(4);
    let head = d.write_chain(0, &[Buf::write(buf, 4)]);
    d.publish(0, head);
    d.write32(regs::QUEUE_NOTIFY, 0);
    d.transport.process(&mut d.memory);
    assert!(
        d.take_used(0).is_empty(),
        "section 2.1.2: not before DRIVER_OK"
    );
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    d.transport.process(&mut d.memory);
    assert_eq!(d.take_used(0), vec![(u32::from(head), 4)]);
}

#[test]
fn failed_status_stops_the_device() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    d.write32(
        regs::STATUS,
        ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | 128,
    );
    let buf = d.alloc(4);
    d.submit(0, &[Buf::write(buf, 4)]);
    assert!(d.take_used(0).is_empty());
}

#[test]
fn a_malformed_request_needs_a_reset_reported_once() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    let poison = d.put(&[POISON]);
    d.submit(0, &[Buf::read(poison, 1)]);
    assert!(d.transport.needs_reset());
    assert_eq!(
        d.status(),
        ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | NEEDS_RESET
    );
    assert_eq!(d.ack_interrupt(), regs::INTERRUPT_CONFIG_CHANGE);
    let fault = d.transport.take_fault().unwrap();
    assert_eq!(fault.queue, 0);
    assert_eq!(fault.error, QueueError::BadRequest("poisoned"));
    assert_eq!(
        std::format!("{fault}"),
        "virtqueue 0: a malformed request: poisoned"
    );
    assert_eq!(d.transport.take_fault(), None);
    // The device does nothing more; the driver's status writes keep the bit.
    let fine = d.alloc(4);
    d.submit(1, &[Buf::write(fine, 4)]);
    assert!(d.take_used(1).is_empty());
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert_ne!(d.status() & NEEDS_RESET, 0);
    // A reset brings it back.
    let resets = d.transport.device().resets;
    d.init(ALL, 2, 8);
    assert_eq!(d.transport.device().resets, resets + 1);
    assert!(!d.transport.needs_reset());
    d.submit(1, &[Buf::write(fine, 4)]);
    assert_eq!(d.take_used(1).len(), 1);
}

#[test]
fn reset_clears_queues_features_and_interrupts() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    d.transport.config_changed();
    d.write32(regs::STATUS, 0);
    assert_eq!(d.status(), 0);
    assert_eq!(d.read32(regs::INTERRUPT_STATUS), 0);
    assert_eq!(d.transport.negotiated_features(), 0);
    for queue in 0..2 {
        d.write32(regs::QUEUE_SEL, queue);
        assert_eq!(d.read32(regs::QUEUE_READY), 0);
    }
}

#[test]
fn event_index_suppresses_interrupts_until_used_event() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    let buf = d.alloc(4);
    // Section 2.7.10: interrupt when used idx moves past used_event.
    d.set_used_event(0, 2);
    for expected in [false, false, true, false] {
        d.submit(0, &[Buf::write(buf, 4)]);
        assert_eq!(d.transport.interrupt_level(), expected);
        d.ack_interrupt();
    }
    // The device asks to be notified for the next buffer it has not seen.
    assert_eq!(d.avail_event(0), 4);
    let stats = d.transport.stats();
    assert_eq!(stats.used_interrupts, 1);
    assert_eq!(stats.suppressed_interrupts, 3);
}

#[test]
fn no_interrupt_flag_without_event_index() {
    let mut d = driver();
    d.init(ALL & !F_EVENT_IDX, 2, 8);
    let buf = d.alloc(4);
    d.set_avail_flags(0, 1);
    d.submit(0, &[Buf::write(buf, 4)]);
    assert!(!d.transport.interrupt_level());
    d.set_avail_flags(0, 0);
    d.submit(0, &[Buf::write(buf, 4)]);
    assert!(d.transport.interrupt_level());
    assert_eq!(
        d.avail_event(0),
        0,
        "avail_event untouched without EVENT_IDX"
    );
}

#[test]
fn a_batch_of_requests_costs_one_interrupt() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    let buf = d.alloc(4);
    for _ in 0..5 {
        let head = d.write_chain(0, &[Buf::write(buf, 4)]);
        d.publish(0, head);
    }
    d.set_used_event(0, 0);
    d.notify(0);
    assert_eq!(d.take_used(0).len(), 5);
    assert_eq!(d.transport.stats().used_interrupts, 1);
}

#[test]
fn indices_wrap_around_65536() {
    let mut d = driver();
    d.init(ALL, 2, 4);
    let buf = d.alloc(4);
    for i in 0..70_000u32 {
        d.set_used_event(0, i as u16);
        let head = d.submit(0, &[Buf::write(buf, 4)]);
        assert_eq!(d.take_used(0), vec![(u32::from(head), 4)], "request {i}");
        assert!(d.transport.interrupt_level(), "request {i}");
        d.ack_interrupt();
    }
    assert!(!d.transport.needs_reset());
}

#[test]
fn save_and_restore() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    let buf = d.alloc(4);
    d.submit(0, &[Buf::write(buf, 4)]);
    assert_eq!(d.take_used(0).len(), 1);
    d.transport.device_mut().token = 7;
    let state = d.transport.save();
    assert_eq!(state.queues[0].next_used, 1);
    assert_eq!(state.device, 7);

    let mut fresh = MmioTransport::new(Probe::default());
    fresh.restore(&state).unwrap();
    assert_eq!(fresh.save(), state);
    // The restored device carries on where the first left off.
    let mut d2 = Driver {
        transport: fresh,
        memory: d.memory.clone(),
        queues: d.queues.clone(),
        next_buffer: d.next_buffer,
    };
    let head = d2.submit(0, &[Buf::write(buf, 4)]);
    assert_eq!(d2.take_used(0), vec![(u32::from(head), 4)]);

    type Corruption = fn(&mut TransportState<u32>);
    let bad_states: [(&str, Corruption); 8] = [
        ("queues", |s| s.queues.truncate(1)),
        ("status", |s| s.status |= 0x10),
        ("features", |s| s.driver_features |= 1 << 50),
        ("version", |s| s.driver_features &= !F_VERSION_1),
        ("interrupt", |s| s.interrupt_status = 4),
        ("pending", |s| s.pending = 1 << 5),
        ("queue size", |s| s.queues[0].size = 6),
        ("device", |s| s.device = u32::MAX),
    ];
    for (what, corrupt) in bad_states {
        let mut bad = state.clone();
        corrupt(&mut bad);
        let mut target = MmioTransport::new(Probe::default());
        let before = target.save();
        assert!(target.restore(&bad).is_err(), "{what}");
        assert_eq!(target.save(), before, "{what}: unchanged");
    }
}

/// Found by the `virtio_mmio_registers` fuzz target: until `FEATURES_OK`,
/// `DriverFeatures` holds whatever the driver wrote, features the device does not
/// offer included, and a snapshot taken then could not be restored. It now can, and
/// the restored device refuses `FEATURES_OK` as the original would have.
#[test]
fn a_state_saved_mid_negotiation_restores() {
    let mut d = driver();
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER);
    d.write_driver_features(F_VERSION_1 | 1 << 40);
    let state = d.transport.save();
    let mut fresh = MmioTransport::new(Probe::default());
    fresh.restore(&state).unwrap();
    assert_eq!(fresh.save(), state);
    fresh.write(
        regs::STATUS,
        AccessWidth::Word,
        u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK),
    );
    assert_eq!(
        fresh.read(regs::STATUS, AccessWidth::Word),
        u64::from(ACKNOWLEDGE | DRIVER)
    );
    // Once accepted, features the device does not offer are still refused.
    let mut accepted = state.clone();
    accepted.status |= FEATURES_OK;
    assert!(
        MmioTransport::new(Probe::default())
            .restore(&accepted)
            .is_err()
    );
}

/// Found by the `virtio_mmio_registers` fuzz target: a `QueueNum` above
/// `QueueNumMax` was kept, and a snapshot of a device holding it could not be
/// restored (a saved size may not exceed the maximum). Such a size is now kept as 0,
/// which `QueueReady` refuses just the same.
#[test]
fn a_queue_size_above_the_maximum_is_refused_and_saves() {
    let mut d = driver();
    d.write32(regs::QUEUE_SEL, 1);
    d.write32(regs::QUEUE_NUM, 9);
    let state = d.transport.save();
    assert_eq!(state.queues[1].size, 0);
    let mut fresh = MmioTransport::new(Probe::default());
    fresh.restore(&state).unwrap();
    assert_eq!(fresh.save(), state);
    d.write32(regs::QUEUE_READY, 1);
    assert_eq!(d.read32(regs::QUEUE_READY), 0);
    assert!(d.transport.needs_reset());
}

#[test]
fn only_notifications_and_left_over_work_need_processing() {
    let mut d = driver();
    d.init(ALL, 2, 8);
    d.service();
    assert!(!d.transport.needs_processing());
    let processed = d.transport.device().processed.len();
    // Identification, features, configuration, status and interrupt reads, and
    // register setup, leave no work: a service after them runs nothing.
    for offset in [
        regs::MAGIC_VALUE,
        regs::DEVICE_ID,
        regs::DEVICE_FEATURES,
        regs::INTERRUPT_STATUS,
        regs::STATUS,
        regs::CONFIG,
    ] {
        d.read32(offset);
        assert!(!d.transport.needs_processing(), "{offset:#x}");
    }
    d.write32(regs::QUEUE_SEL, 1);
    d.write32(regs::INTERRUPT_ACK, 0);
    assert!(d.service().is_empty(), "the probe has no output");
    assert_eq!(d.transport.device().processed.len(), processed);
    // A notification does.
    let buf = d.alloc(4);
    let head = d.write_chain(1, &[Buf::write(buf, 4)]);
    d.publish(1, head);
    d.write32(regs::QUEUE_NOTIFY, 1);
    assert!(d.transport.needs_processing());
    d.service();
    assert_eq!(d.take_used(1), vec![(u32::from(head), 4)]);
    assert!(!d.transport.needs_processing());
    assert!(d.transport.interrupt_level());
}

#[test]
fn nothing_needs_processing_before_driver_ok() {
    let mut d = driver();
    assert!(d.negotiate(ALL));
    d.setup_queue(0, 8);
    d.write32(regs::QUEUE_NOTIFY, 0);
    assert!(!d.transport.needs_processing(), "not live yet");
    d.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert!(
        d.transport.needs_processing(),
        "DRIVER_OK schedules every queue"
    );
}

#[test]
fn persists_through_the_common_interface() {
    use crate::mmio::{InvalidState, Persist};
    let mut d = driver();
    d.init(ALL, 2, 8);
    let state = d.transport.save_state();
    assert_eq!(state, d.transport.save());
    let mut other = MmioTransport::new(Probe::default());
    assert_eq!(other.restore_state(&state), Ok(()));
    assert_eq!(other.save(), state);
    let mut bad = state.clone();
    bad.device = u32::MAX;
    assert_eq!(other.restore_state(&bad), Err(InvalidState("bad token")));
}

#[test]
fn state_error_message() {
    assert_eq!(
        std::format!("{}", StateError("it is broken")),
        "invalid virtio device state: it is broken"
    );
}

#[test]
fn sits_on_the_mmio_bus() {
    let mut bus = crate::bus::MmioBus::new();
    let base = 0x0a00_3e00;
    let transport = MmioTransport::new(Probe::default());
    let id = bus.add(base, WINDOW_SIZE, transport).unwrap();
    assert_eq!(bus.read(base, AccessWidth::Word), Some(0x7472_6976));
    assert_eq!(bus.read(base + regs::CONFIG, AccessWidth::Byte), Some(0x11));
    bus.write(
        base + regs::STATUS,
        AccessWidth::Word,
        u64::from(ACKNOWLEDGE),
    );
    let device = bus.device_mut(id).unwrap();
    assert_eq!(device.status(), ACKNOWLEDGE);
    assert!(!device.interrupt_level());
}
