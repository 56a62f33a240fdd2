//! The split virtqueue against hand-built rings (virtio 1.2, section 2.7); every
//! check of robustness.md item 10 has a test here.

use super::*;
use crate::virtio::guest_memory::VecMemory;
use std::string::ToString;
use std::vec::Vec;

const BASE: u64 = 0x4000_0000;
const RAM: usize = 0x10_0000;
const DESC: u64 = BASE;
const AVAIL: u64 = BASE + 0x4000;
const USED: u64 = BASE + 0x8000;
const DATA: u64 = BASE + 0x1_0000;
const SIZE: u16 = 8;

const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;

/// (address, length) of each segment.
type Spans = Vec<(u64, u32)>;

/// RAM plus a ready queue of `size` entries at DESC/AVAIL/USED.
struct Rig {
    memory: VecMemory,
    queue: Queue,
    avail_idx: u16,
    chain: Chain,
}

impl Rig {
    fn new(size: u16, indirect: bool, event_idx: bool) -> Self {
        let mut queue = Queue::new(MAX_QUEUE_SIZE);
        queue.set_size(size);
        queue.set_descriptor_area(DESC);
        queue.set_driver_area(AVAIL);
        queue.set_device_area(USED);
        queue.set_features(event_idx, indirect);
        queue.enable().unwrap();
        queue.start_batch();
        Self {
            memory: VecMemory::new(BASE, RAM),
            queue,
            avail_idx: 0,
            chain: Chain::new(),
        }
    }

    fn desc(&mut self, table: u64, index: u16, address: u64, length: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&address.to_le_bytes());
        raw[8..12].copy_from_slice(&length.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        self.memory
            .write(table + 16 * u64::from(index), &raw)
            .unwrap();
    }

    fn publish(&mut self, head: u16) {
        let slot = u64::from(self.avail_idx % self.queue.size());
        self.memory.write_u16(AVAIL + 4 + 2 * slot, head).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.memory.write_u16(AVAIL + 2, self.avail_idx).unwrap();
    }

    fn pop(&mut self) -> Result<bool, QueueError> {
        self.queue.pop(&mut self.memory, &mut self.chain)
    }

    /// Publishes `head` and walks it.
    fn walk(&mut self, head: u16) -> Result<(), QueueError> {
        self.publish(head);
        assert!(self.pop()?, "a chain was available");
        Ok(())
    }

    fn segments(&self) -> (Spans, Spans) {
        let list = |s: &[Segment]| s.iter().map(|s| (s.address, s.length)).collect();
        (list(self.chain.readable()), list(self.chain.writable()))
    }
}

#[test]
fn a_chain_of_readable_then_writable_buffers() {
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 2, DATA, 16, NEXT, 5);
    rig.desc(DESC, 5, DATA + 0x100, 512, NEXT | WRITE, 7);
    rig.desc(DESC, 7, DATA + 0x400, 1, WRITE, 0);
    rig.walk(2).unwrap();
    assert_eq!(rig.chain.head(), 2);
    let (readable, writable) = rig.segments();
    assert_eq!(readable, [(DATA, 16)]);
    assert_eq!(writable, [(DATA + 0x100, 512), (DATA + 0x400, 1)]);
    assert_eq!(rig.chain.readable_len(), 16);
    assert_eq!(rig.chain.writable_len(), 513);
    assert!(!rig.pop().unwrap(), "ring now empty");
}

#[test]
fn zero_length_descriptors_are_dropped() {
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, DATA, 0, NEXT, 1);
    rig.desc(DESC, 1, 0xDEAD_0000_0000, 0, NEXT | WRITE, 2); // nowhere, but empty
    rig.desc(DESC, 2, DATA, 4, WRITE, 0);
    rig.walk(0).unwrap();
    assert_eq!(rig.segments(), (Vec::new(), std::vec![(DATA, 4)]));
}

#[test]
fn heads_and_nexts_out_of_range() {
    let mut rig = Rig::new(SIZE, false, false);
    assert_eq!(
        rig.walk(SIZE),
        Err(QueueError::HeadOutOfRange { head: 8, size: 8 })
    );
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, DATA, 4, NEXT, 8);
    assert_eq!(
        rig.walk(0),
        Err(QueueError::NextOutOfRange {
            index: 0,
            next: 8,
            table: 8,
            indirect: false
        })
    );
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, DATA, 4, NEXT, u16::MAX);
    assert!(matches!(
        rig.walk(0),
        Err(QueueError::NextOutOfRange { next: u16::MAX, .. })
    ));
}

#[test]
fn loops_and_overlong_chains_stop_at_the_queue_size() {
    // A self-loop, a two-descriptor loop, and a loop entered after a prefix.
    for links in [
        &[(0u16, 0u16)][..],
        &[(0, 1), (1, 0)],
        &[(0, 1), (1, 2), (2, 1)],
    ] {
        let mut rig = Rig::new(SIZE, false, false);
        for &(index, next) in links {
            rig.desc(DESC, index, DATA, 4, NEXT, next);
        }
        assert_eq!(
            rig.walk(0),
            Err(QueueError::ChainTooLong { limit: 8 }),
            "{links:?}"
        );
    }
    // A chain through every descriptor is fine; it cannot be longer without a loop.
    let mut rig = Rig::new(SIZE, false, false);
    for index in 0..SIZE {
        let last = index == SIZE - 1;
        rig.desc(DESC, index, DATA, 4, if last { 0 } else { NEXT }, index + 1);
    }
    rig.walk(0).unwrap();
    assert_eq!(rig.chain.readable().len(), 8);
}

#[test]
fn readable_after_writable_is_refused() {
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, DATA, 4, NEXT | WRITE, 1);
    rig.desc(DESC, 1, DATA, 4, 0, 0);
    assert_eq!(
        rig.walk(0),
        Err(QueueError::ReadableAfterWritable { index: 1 })
    );
}

#[test]
fn buffers_outside_ram_are_refused() {
    let end = BASE + RAM as u64;
    let cases = [
        (BASE - 1, 2),              // starts below RAM
        (0, 4),                     // far below
        (end - 3, 4),               // ends a byte past RAM
        (end, 1),                   // just past RAM
        (u64::MAX - 1, 4),          // wraps past 2^64
        (u64::MAX, 1),              // the top byte
        (BASE, u32::MAX),           // huge length
        (0x8000_0000_4000_0000, 4), // top bits set
    ];
    for (address, length) in cases {
        let mut rig = Rig::new(SIZE, false, false);
        rig.desc(DESC, 3, address, length, WRITE, 0);
        assert_eq!(
            rig.walk(3),
            Err(QueueError::BufferOutsideMemory {
                index: 3,
                address,
                length
            }),
            "{address:#x}+{length:#x}"
        );
    }
    // The last bytes of RAM are fine.
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, end - 4, 4, 0, 0);
    rig.walk(0).unwrap();
}

/// RAM that claims to be 1 TiB: every range from BASE is "inside", reads and writes
/// go to a small backing store (for chains of more than 2^32 bytes).
struct Vast(VecMemory);

impl GuestMemory for Vast {
    fn check(&self, address: u64, length: u64) -> Result<(), MemoryError> {
        let end = address.checked_add(length);
        match end {
            Some(end) if address >= BASE && end <= BASE + (1 << 40) => Ok(()),
            _ => Err(MemoryError { address, length }),
        }
    }
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        self.0.read(address, buffer)
    }
    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        self.0.write(address, bytes)
    }
}

#[test]
fn chains_of_more_than_2_to_the_32_bytes_are_refused() {
    let mut rig = Rig::new(SIZE, false, false);
    // Exactly 2^32 bytes: allowed (section 2.7.5.2 forbids *more*).
    rig.desc(DESC, 0, BASE, u32::MAX, NEXT, 1);
    rig.desc(DESC, 1, BASE, 1, WRITE, 0);
    let mut vast = Vast(rig.memory.clone());
    rig.queue.walk(&vast, 0, &mut rig.chain).unwrap();
    assert_eq!(rig.chain.readable_len() + rig.chain.writable_len(), 1 << 32);
    // One byte more.
    rig.desc(DESC, 1, BASE, 2, WRITE, 0);
    vast.0 = rig.memory.clone();
    assert_eq!(
        rig.queue.walk(&vast, 0, &mut rig.chain),
        Err(QueueError::ChainTooLarge)
    );
    let _ = vast.write(BASE, &[0]);
}

#[test]
fn indirect_tables() {
    let table = DATA + 0x1000;
    let mut rig = Rig::new(SIZE, true, false);
    // Two direct descriptors, then one pointing at a table of three (section
    // 2.7.5.3.2: "zero or more normal chained descriptors followed by a single
    // descriptor with flags&VIRTQ_DESC_F_INDIRECT"). The pointer's WRITE flag is
    // ignored.
    rig.desc(DESC, 0, DATA, 16, NEXT, 1);
    rig.desc(DESC, 1, DATA + 0x10, 8, NEXT, 2);
    rig.desc(DESC, 2, table, 48, INDIRECT | WRITE, 0);
    rig.desc(table, 0, DATA + 0x20, 4, NEXT, 2);
    rig.desc(table, 2, DATA + 0x40, 64, NEXT | WRITE, 1);
    rig.desc(table, 1, DATA + 0x80, 1, WRITE, 0);
    rig.walk(0).unwrap();
    let (readable, writable) = rig.segments();
    assert_eq!(readable, [(DATA, 16), (DATA + 0x10, 8), (DATA + 0x20, 4)]);
    assert_eq!(writable, [(DATA + 0x40, 64), (DATA + 0x80, 1)]);
}

#[test]
fn bad_indirect_tables() {
    let table = DATA + 0x1000;
    let end = BASE + RAM as u64;
    // (pointer address, pointer length, pointer flags, negotiated, expected)
    let cases: [(u64, u32, u16, bool, QueueError); 7] = [
        (
            table,
            32,
            INDIRECT,
            false,
            QueueError::IndirectNotNegotiated { index: 0 },
        ),
        (
            table,
            32,
            INDIRECT | NEXT,
            true,
            QueueError::IndirectWithNext { index: 0 },
        ),
        (
            table,
            0,
            INDIRECT,
            true,
            QueueError::BadIndirectLength {
                index: 0,
                length: 0,
            },
        ),
        (
            table,
            17,
            INDIRECT,
            true,
            QueueError::BadIndirectLength {
                index: 0,
                length: 17,
            },
        ),
        (
            table,
            16 * 1025,
            INDIRECT,
            true,
            QueueError::IndirectTooLong { entries: 1025 },
        ),
        (
            end - 16,
            32,
            INDIRECT,
            true,
            QueueError::IndirectOutsideMemory {
                index: 0,
                address: end - 16,
                length: 32,
            },
        ),
        (
            u64::MAX - 15,
            32,
            INDIRECT,
            true,
            QueueError::IndirectOutsideMemory {
                index: 0,
                address: u64::MAX - 15,
                length: 32,
            },
        ),
    ];
    for (address, length, flags, negotiated, expected) in cases {
        let mut rig = Rig::new(SIZE, negotiated, false);
        rig.desc(DESC, 0, address, length, flags, 1);
        rig.desc(table, 0, DATA, 4, 0, 0);
        assert_eq!(rig.walk(0), Err(expected), "{expected}");
    }
}

#[test]
fn indirect_entries_get_every_check() {
    let table = DATA + 0x1000;
    let end = BASE + RAM as u64;
    // Each case: the table's entries (index, address, length, flags, next).
    type Entry = (u16, u64, u32, u16, u16);
    let cases: [(&[Entry], QueueError); 5] = [
        (
            &[(0, DATA, 4, INDIRECT, 0)],
            QueueError::NestedIndirect { index: 0 },
        ),
        (
            &[(0, DATA, 4, NEXT, 4)],
            QueueError::NextOutOfRange {
                index: 0,
                next: 4,
                table: 4,
                indirect: true,
            },
        ),
        (
            &[(0, DATA, 4, NEXT, 1), (1, DATA, 4, NEXT, 0)],
            QueueError::ChainTooLong { limit: 4 },
        ),
        (
            &[(0, DATA, 4, WRITE | NEXT, 1), (1, DATA, 4, 0, 0)],
            QueueError::ReadableAfterWritable { index: 1 },
        ),
        (
            &[(0, end - 1, 2, WRITE, 0)],
            QueueError::BufferOutsideMemory {
                index: 0,
                address: end - 1,
                length: 2,
            },
        ),
    ];
    for (entries, expected) in cases {
        let mut rig = Rig::new(SIZE, true, false);
        rig.desc(DESC, 0, table, 64, INDIRECT, 0);
        for &(index, address, length, flags, next) in entries {
            rig.desc(table, index, address, length, flags, next);
        }
        assert_eq!(rig.walk(0), Err(expected), "{expected}");
    }
    // Readable descriptors after writable ones across the table boundary.
    let mut rig = Rig::new(SIZE, true, false);
    rig.desc(DESC, 0, DATA, 4, WRITE | NEXT, 1);
    rig.desc(DESC, 1, table, 16, INDIRECT, 0);
    rig.desc(table, 0, DATA, 4, 0, 0);
    assert_eq!(
        rig.walk(0),
        Err(QueueError::ReadableAfterWritable { index: 0 })
    );
}

#[test]
fn a_whole_chain_is_capped_at_max_chain_descriptors() {
    let table = DATA + 0x1000;
    let mut rig = Rig::new(SIZE, true, false);
    // A full indirect table of 1024 entries is fine...
    for index in 0..1024u16 {
        let last = index == 1023;
        rig.desc(
            table,
            index,
            DATA,
            1,
            if last { 0 } else { NEXT },
            index + 1,
        );
    }
    rig.desc(DESC, 0, table, 16 * 1024, INDIRECT, 0);
    rig.walk(0).unwrap();
    assert_eq!(rig.chain.readable().len(), 1024);
    // ...but not after a direct descriptor.
    rig.desc(DESC, 1, DATA, 1, NEXT, 2);
    rig.desc(DESC, 2, table, 16 * 1024, INDIRECT, 0);
    assert_eq!(rig.walk(1), Err(QueueError::ChainTooLong { limit: 1024 }));
}

#[test]
fn the_available_index_may_not_jump_past_the_queue_size() {
    let mut rig = Rig::new(SIZE, false, false);
    rig.memory.write_u16(AVAIL + 2, SIZE + 1).unwrap();
    assert_eq!(
        rig.pop(),
        Err(QueueError::AvailIndexJump {
            seen: 0,
            published: 9,
            size: 8
        })
    );
    // A full ring is fine.
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, DATA, 4, 0, 0);
    for _ in 0..SIZE {
        rig.publish(0);
    }
    for _ in 0..SIZE {
        assert!(rig.pop().unwrap());
    }
    assert!(!rig.pop().unwrap());
}

#[test]
fn ring_indices_wrap_at_65536() {
    let mut rig = Rig::new(SIZE, false, false);
    let mut state = rig.queue.save();
    state.next_avail = u16::MAX - 1;
    state.next_used = u16::MAX - 1;
    state.signalled_used = u16::MAX - 1;
    rig.queue.restore(&state).unwrap();
    rig.avail_idx = u16::MAX - 1;
    rig.desc(DESC, 0, DATA, 4, WRITE, 0);
    for expected_idx in [u16::MAX, 0, 1] {
        rig.walk(0).unwrap();
        rig.queue.add_used(&mut rig.memory, 0, 4).unwrap();
        assert_eq!(rig.memory.read_u16(USED + 2), Ok(expected_idx));
    }
    // The entries went to slots (65534, 65535, 0) mod 8 = 6, 7, 0.
    for slot in [6u64, 7, 0] {
        assert_eq!(rig.memory.read_u32(USED + 4 + 8 * slot), Ok(0));
        assert_eq!(rig.memory.read_u32(USED + 8 + 8 * slot), Ok(4));
    }
}

#[test]
fn nothing_is_read_from_a_queue_that_is_not_ready() {
    let mut rig = Rig::new(SIZE, false, false);
    rig.desc(DESC, 0, DATA, 4, 0, 0);
    rig.publish(0);
    rig.queue.disable();
    assert_eq!(rig.pop(), Ok(false));
    let before = rig.memory.clone();
    rig.queue.add_used(&mut rig.memory, 0, 4).unwrap();
    assert_eq!(rig.memory, before, "add_used does nothing either");
    assert_eq!(rig.queue.needs_interrupt(&rig.memory), Ok(false));
}

#[test]
fn the_used_ring() {
    let mut rig = Rig::new(SIZE, false, false);
    rig.queue.add_used(&mut rig.memory, 5, 0x1234).unwrap();
    rig.queue.add_used(&mut rig.memory, 7, 1).unwrap();
    // Section 2.7.8: le16 flags, le16 idx, then {le32 id, le32 len} entries.
    assert_eq!(rig.memory.read_u16(USED), Ok(0), "flags untouched");
    assert_eq!(rig.memory.read_u16(USED + 2), Ok(2));
    assert_eq!(rig.memory.read_u32(USED + 4), Ok(5));
    assert_eq!(rig.memory.read_u32(USED + 8), Ok(0x1234));
    assert_eq!(rig.memory.read_u32(USED + 12), Ok(7));
    assert_eq!(rig.memory.read_u32(USED + 16), Ok(1));
}

#[test]
fn need_event_follows_the_spec() {
    // Section 2.7.10: notify when the used idx passes used_event, i.e. when
    // used_event is in [old, new) modulo 2^16.
    let table = [
        (0, 1, 0, true),
        (0, 2, 1, false),
        (1, 2, 1, true),
        (5, 10, 0, true),
        (10, 10, 0, false),
        (9, 10, 0, true),
        (u16::MAX, 1, u16::MAX - 1, true),
        (0, 1, u16::MAX, true),
        (2, 1, u16::MAX, false),
        (u16::MAX, 0, u16::MAX, true),
    ];
    for (event, new, old, expected) in table {
        assert_eq!(need_event(event, new, old), expected, "{event} {new} {old}");
    }
}

#[test]
fn interrupt_decisions() {
    // Without EVENT_IDX: the NO_INTERRUPT flag.
    let mut rig = Rig::new(SIZE, false, false);
    assert_eq!(
        rig.queue.needs_interrupt(&rig.memory),
        Ok(false),
        "nothing added"
    );
    rig.queue.add_used(&mut rig.memory, 0, 0).unwrap();
    assert!(rig.queue.has_new_used());
    assert_eq!(rig.queue.needs_interrupt(&rig.memory), Ok(true));
    assert!(!rig.queue.has_new_used());
    rig.memory.write_u16(AVAIL, 1).unwrap();
    rig.queue.add_used(&mut rig.memory, 0, 0).unwrap();
    assert_eq!(rig.queue.needs_interrupt(&rig.memory), Ok(false));

    // With EVENT_IDX: used_event after the ring; the flag is ignored.
    let mut rig = Rig::new(SIZE, false, true);
    rig.memory.write_u16(AVAIL, 1).unwrap();
    rig.memory.write_u16(AVAIL + 4 + 2 * 8, 1).unwrap();
    rig.queue.add_used(&mut rig.memory, 0, 0).unwrap();
    assert_eq!(
        rig.queue.needs_interrupt(&rig.memory),
        Ok(false),
        "idx 1, event 1"
    );
    rig.queue.add_used(&mut rig.memory, 0, 0).unwrap();
    rig.queue.add_used(&mut rig.memory, 0, 0).unwrap();
    assert_eq!(rig.queue.needs_interrupt(&rig.memory), Ok(true), "passed 1");
}

#[test]
fn avail_event_is_published_when_the_ring_runs_dry() {
    let mut rig = Rig::new(SIZE, false, true);
    let avail_event = USED + 4 + 8 * 8;
    rig.desc(DESC, 0, DATA, 4, 0, 0);
    rig.publish(0);
    rig.publish(0);
    assert!(rig.pop().unwrap());
    assert_eq!(rig.memory.read_u16(avail_event), Ok(0), "not while busy");
    assert!(rig.pop().unwrap());
    assert!(!rig.pop().unwrap());
    assert_eq!(
        rig.memory.read_u16(avail_event),
        Ok(2),
        "next index to be seen"
    );
}

#[test]
fn a_batch_takes_at_most_one_queue_of_chains() {
    let mut rig = Rig::new(4, false, false);
    rig.desc(DESC, 0, DATA, 4, 0, 0);
    for round in 0..3 {
        rig.queue.start_batch();
        for _ in 0..4 {
            rig.publish(0);
            assert!(rig.pop().unwrap(), "round {round}");
        }
        // A driver on another CPU keeps adding.
        rig.publish(0);
        assert!(!rig.pop().unwrap());
        assert!(rig.queue.batch_exhausted());
        rig.queue.start_batch();
        assert!(rig.pop().unwrap());
    }
}

#[test]
fn layout_and_area_checks() {
    let mut queue = Queue::new(64);
    assert_eq!(queue.max_size(), 64);
    assert_eq!(queue.size(), 64, "QueueNum preset to the maximum");
    assert_eq!(Queue::new(u16::MAX).max_size(), MAX_QUEUE_SIZE);
    for size in [0, 3, 96, 128] {
        queue.set_size(size);
        assert_eq!(queue.enable(), Err(QueueError::BadSize { size, max: 64 }));
        assert!(!queue.is_ready());
    }
    queue.set_size(64);
    queue.set_descriptor_area(BASE);
    queue.set_driver_area(BASE + 0x400);
    queue.set_device_area(BASE + 0x800);
    queue.enable().unwrap();
    let memory = VecMemory::new(BASE, 0x1000);
    queue.check_areas(&memory).unwrap();
    // The used ring is 6 + 8 * 64 = 518 bytes: it must fit entirely.
    queue.set_device_area(BASE + 0x1000 - 516);
    assert_eq!(
        queue.check_areas(&memory),
        Err(QueueError::AreaOutsideMemory {
            area: Area::UsedRing,
            address: BASE + 0x1000 - 516
        })
    );
    queue.set_driver_area(u64::MAX - 1);
    assert!(matches!(
        queue.check_areas(&memory),
        Err(QueueError::AreaOutsideMemory {
            area: Area::AvailableRing,
            ..
        })
    ));
}

#[test]
fn rings_at_the_top_of_the_address_space_do_not_wrap() {
    let mut queue = Queue::new(8);
    queue.set_descriptor_area(!15);
    queue.set_driver_area(u64::MAX - 1);
    queue.set_device_area(!3);
    queue.enable().unwrap();
    let mut memory = VecMemory::new(0, 0x1000);
    let mut chain = Chain::new();
    assert!(queue.pop(&mut memory, &mut chain).is_err());
    assert!(queue.add_used(&mut memory, 0, 0).is_err());
    assert!(queue.walk(&memory, 0, &mut chain).is_err());
    assert!(
        memory.as_slice().iter().all(|&b| b == 0),
        "nothing written at 0"
    );
}

#[test]
fn state_checks() {
    let queue = Queue::new(16);
    let good = QueueState {
        size: 16,
        ready: true,
        descriptors: BASE,
        driver: BASE + 0x100,
        device: BASE + 0x200,
        next_avail: 3,
        next_used: 2,
        signalled_used: 1,
    };
    assert_eq!(queue.check_state(&good), Ok(()));
    let mut restored = Queue::new(16);
    restored.restore(&good).unwrap();
    assert_eq!(restored.save(), good);
    assert!(queue.check_state(&QueueState { size: 32, ..good }).is_err());
    assert!(queue.check_state(&QueueState { size: 12, ..good }).is_err());
    assert!(
        queue
            .check_state(&QueueState {
                device: BASE + 2,
                ..good
            })
            .is_err()
    );
    // A queue that is not ready may hold any setup a driver could have written.
    assert_eq!(
        queue.check_state(&QueueState {
            size: 12,
            ready: false,
            ..good
        }),
        Ok(())
    );
}

#[test]
fn error_messages() {
    let cases = [
        (
            QueueError::BadSize { size: 6, max: 256 },
            "queue size 6 is not a power of two between 1 and 256",
        ),
        (
            QueueError::Misaligned {
                area: Area::DescriptorTable,
                address: 0x4000_0008,
            },
            "the descriptor table at 0x40000008 is not 16-byte aligned",
        ),
        (
            QueueError::AvailIndexJump {
                seen: 3,
                published: 300,
                size: 256,
            },
            "the available index jumped from 3 to 300, more than the queue's 256 entries",
        ),
        (
            QueueError::ChainTooLong { limit: 256 },
            "a descriptor chain loops or is longer than 256 descriptors",
        ),
        (
            QueueError::BufferOutsideMemory {
                index: 4,
                address: 0x8000_0000,
                length: 0x200,
            },
            "descriptor 4 points at 0x80000000 (+0x200 bytes), outside guest RAM",
        ),
        (
            QueueError::NextOutOfRange {
                index: 1,
                next: 9,
                table: 4,
                indirect: true,
            },
            "descriptor 1 chains to 9, but the indirect table has 4",
        ),
        (
            QueueError::ReadableAfterWritable { index: 2 },
            "descriptor 2 is device-readable but follows a device-writable one",
        ),
        (
            QueueError::ChainTooLarge,
            "a descriptor chain describes more than 4294967296 bytes",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}
