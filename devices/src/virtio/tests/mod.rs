//! End-to-end tests: a mock guest driver that sets up virtqueues in a [`VecMemory`],
//! negotiates features through the MMIO registers the way Linux's virtio-mmio driver
//! does (virtio 1.2, sections 3.1.1 and 4.2.3), submits requests and checks the used
//! ring and the data. The layouts are written out here from the spec, independently
//! of the device code.

mod blk;
mod console;
mod properties;
mod rng;
mod transport;

use super::guest_memory::{GuestMemory, VecMemory};
use super::regs;
use super::transport::{MmioTransport, VirtioDevice};
use crate::mmio::{AccessWidth, DeviceHost, MmioDevice};
use std::vec::Vec;

/// Guest RAM base (QEMU `virt`).
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM size in the tests.
pub const RAM_SIZE: usize = 4 << 20;
/// Where queue `i`'s parts go: `RAM_BASE + i * QUEUE_STRIDE`.
const QUEUE_STRIDE: u64 = 0x1_0000;
/// Offsets of the three parts inside a queue's stride (room for 1024 entries).
const DESC_OFFSET: u64 = 0x0;
const AVAIL_OFFSET: u64 = 0x4000;
const USED_OFFSET: u64 = 0x8000;
/// Buffers are allocated from here up.
const BUFFER_BASE: u64 = RAM_BASE + 0x10_0000;

/// Descriptor flags (section 2.7.5), restated.
pub const NEXT: u16 = 1;
pub const WRITE: u16 = 2;
pub const INDIRECT: u16 = 4;

/// Feature bits (section 6), restated.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
pub const F_EVENT_IDX: u64 = 1 << 29;
pub const F_VERSION_1: u64 = 1 << 32;

/// Feature bits 0 to 23 are device-specific (section 6).
pub const DEVICE_FEATURE_BITS: u64 = (1 << 24) - 1;

/// Status bits (section 2.1), restated.
pub const ACKNOWLEDGE: u32 = 1;
pub const DRIVER: u32 = 2;
pub const DRIVER_OK: u32 = 4;
pub const FEATURES_OK: u32 = 8;
pub const NEEDS_RESET: u32 = 64;

/// One buffer of a chain, as the driver describes it.
#[derive(Clone, Copy, Debug)]
pub struct Buf {
    pub address: u64,
    pub length: u32,
    pub writable: bool,
}

impl Buf {
    pub const fn read(address: u64, length: u32) -> Self {
        Self {
            address,
            length,
            writable: false,
        }
    }

    pub const fn write(address: u64, length: u32) -> Self {
        Self {
            address,
            length,
            writable: true,
        }
    }
}

/// The host as a device sees it: the test's guest RAM, and console output kept.
pub struct TestHost<'m> {
    pub memory: &'m mut VecMemory,
    pub output: Vec<u8>,
}

impl DeviceHost for TestHost<'_> {
    fn memory(&mut self) -> &mut dyn GuestMemory {
        self.memory
    }

    fn console_output(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }
}

/// The driver's view of one queue.
#[derive(Clone, Debug)]
pub struct DriverQueue {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Next descriptor to hand out (round robin).
    next_desc: u16,
    /// The driver's available index.
    pub avail_idx: u16,
    /// Used entries already collected.
    last_used: u16,
}

/// A mock guest driver around a device.
pub struct Driver<D: VirtioDevice> {
    pub transport: MmioTransport<D>,
    pub memory: VecMemory,
    pub queues: Vec<DriverQueue>,
    next_buffer: u64,
}

impl<D: VirtioDevice> Driver<D> {
    pub fn new(device: D) -> Self {
        Self {
            transport: MmioTransport::new(device),
            memory: VecMemory::new(RAM_BASE, RAM_SIZE),
            queues: Vec::new(),
            next_buffer: BUFFER_BASE,
        }
    }

    pub fn read32(&mut self, offset: u64) -> u32 {
        self.transport.read(offset, AccessWidth::Word) as u32
    }

    pub fn write32(&mut self, offset: u64, value: u32) {
        self.transport
            .write(offset, AccessWidth::Word, u64::from(value));
    }

    pub fn status(&mut self) -> u32 {
        self.read32(regs::STATUS)
    }

    /// The 64 offered feature bits.
    pub fn device_features(&mut self) -> u64 {
        self.write32(regs::DEVICE_FEATURES_SEL, 0);
        let low = u64::from(self.read32(regs::DEVICE_FEATURES));
        self.write32(regs::DEVICE_FEATURES_SEL, 1);
        let high = u64::from(self.read32(regs::DEVICE_FEATURES));
        high << 32 | low
    }

    pub fn write_driver_features(&mut self, features: u64) {
        self.write32(regs::DRIVER_FEATURES_SEL, 0);
        self.write32(regs::DRIVER_FEATURES, features as u32);
        self.write32(regs::DRIVER_FEATURES_SEL, 1);
        self.write32(regs::DRIVER_FEATURES, (features >> 32) as u32);
    }

    /// Resets the device and negotiates up to FEATURES_OK, accepting the offered
    /// features among `wanted`. Returns whether FEATURES_OK stuck.
    pub fn negotiate(&mut self, wanted: u64) -> bool {
        self.write32(regs::STATUS, 0);
        assert_eq!(self.status(), 0, "reset reads back 0 at once");
        self.write32(regs::STATUS, ACKNOWLEDGE);
        self.write32(regs::STATUS, ACKNOWLEDGE | DRIVER);
        let offered = self.device_features();
        self.write_driver_features(offered & wanted);
        self.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        self.status() & FEATURES_OK != 0
    }

    /// Sets up queue `index` with `size` entries at its fixed place in RAM.
    pub fn setup_queue(&mut self, index: u32, size: u16) {
        let base = RAM_BASE + u64::from(index) * QUEUE_STRIDE;
        let queue = DriverQueue {
            size,
            desc: base + DESC_OFFSET,
            avail: base + AVAIL_OFFSET,
            used: base + USED_OFFSET,
            next_desc: 0,
            avail_idx: 0,
            last_used: 0,
        };
        // Zero the queue memory, as a driver must (section 4.2.3.2).
        let zeros = std::vec![0; QUEUE_STRIDE as usize];
        self.memory.write(base, &zeros).unwrap();
        self.write32(regs::QUEUE_SEL, index);
        assert_eq!(self.read32(regs::QUEUE_READY), 0);
        assert!(self.read32(regs::QUEUE_NUM_MAX) >= u32::from(size));
        self.write32(regs::QUEUE_NUM, u32::from(size));
        for (low, address) in [
            (regs::QUEUE_DESC_LOW, queue.desc),
            (regs::QUEUE_DRIVER_LOW, queue.avail),
            (regs::QUEUE_DEVICE_LOW, queue.used),
        ] {
            self.write32(low, address as u32);
            self.write32(low + 4, (address >> 32) as u32);
        }
        self.write32(regs::QUEUE_READY, 1);
        assert_eq!(self.read32(regs::QUEUE_READY), 1);
        let index = index as usize;
        if self.queues.len() <= index {
            self.queues.resize(index + 1, queue.clone());
        }
        self.queues[index] = queue;
    }

    /// The whole initialisation: negotiate `wanted`, set up `queues` queues of
    /// `size` entries, DRIVER_OK.
    pub fn init(&mut self, wanted: u64, queues: u32, size: u16) {
        assert!(self.negotiate(wanted), "FEATURES_OK refused");
        for index in 0..queues {
            self.setup_queue(index, size);
        }
        self.write32(regs::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assert_eq!(
            self.status(),
            ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
        );
        self.transport.process(&mut self.memory);
    }

    /// Allocates `length` zeroed bytes of buffer space (16-byte aligned).
    pub fn alloc(&mut self, length: u64) -> u64 {
        let address = self.next_buffer;
        self.next_buffer = (self.next_buffer + length + 15) & !15;
        assert!(
            self.next_buffer <= RAM_BASE + RAM_SIZE as u64,
            "test RAM exhausted"
        );
        address
    }

    /// Allocates a buffer holding `bytes`.
    pub fn put(&mut self, bytes: &[u8]) -> u64 {
        let address = self.alloc(bytes.len() as u64);
        self.memory.write(address, bytes).unwrap();
        address
    }

    pub fn get(&self, address: u64, length: usize) -> Vec<u8> {
        let mut bytes = std::vec![0; length];
        self.memory.read(address, &mut bytes).unwrap();
        bytes
    }

    /// Writes a raw descriptor into queue `queue`'s table at `index`.
    pub fn write_descriptor(&mut self, queue: usize, index: u16, buf: Buf, flags: u16, next: u16) {
        let address = self.queues[queue].desc + 16 * u64::from(index);
        write_descriptor(
            &mut self.memory,
            address,
            buf.address,
            buf.length,
            flags,
            next,
        );
    }

    /// Writes `bufs` as a direct chain and returns its head (without publishing).
    pub fn write_chain(&mut self, queue: usize, bufs: &[Buf]) -> u16 {
        let size = self.queues[queue].size;
        let head = self.queues[queue].next_desc;
        for (i, buf) in bufs.iter().enumerate() {
            let index = (head + i as u16) % size;
            let last = i + 1 == bufs.len();
            let flags = if buf.writable { WRITE } else { 0 } | if last { 0 } else { NEXT };
            self.write_descriptor(queue, index, *buf, flags, (index + 1) % size);
        }
        self.queues[queue].next_desc = (head + bufs.len().max(1) as u16) % size;
        head
    }

    /// Writes `bufs` as an indirect table and one descriptor pointing at it.
    pub fn write_indirect(&mut self, queue: usize, bufs: &[Buf]) -> u16 {
        let table = self.alloc(16 * bufs.len() as u64);
        for (i, buf) in bufs.iter().enumerate() {
            let last = i + 1 == bufs.len();
            let flags = if buf.writable { WRITE } else { 0 } | if last { 0 } else { NEXT };
            write_descriptor(
                &mut self.memory,
                table + 16 * i as u64,
                buf.address,
                buf.length,
                flags,
                i as u16 + 1,
            );
        }
        let size = self.queues[queue].size;
        let head = self.queues[queue].next_desc;
        self.write_descriptor(
            queue,
            head,
            Buf::read(table, 16 * bufs.len() as u32),
            INDIRECT,
            0,
        );
        self.queues[queue].next_desc = (head + 1) % size;
        head
    }

    /// Puts `head` in the available ring and publishes it (section 2.7.13).
    pub fn publish(&mut self, queue: usize, head: u16) {
        let q = self.queues[queue].clone();
        let slot = u64::from(q.avail_idx % q.size);
        self.memory.write_u16(q.avail + 4 + 2 * slot, head).unwrap();
        let idx = q.avail_idx.wrapping_add(1);
        self.memory.write_u16(q.avail + 2, idx).unwrap();
        self.queues[queue].avail_idx = idx;
    }

    /// Writes, publishes and notifies a direct chain; returns its head.
    pub fn submit(&mut self, queue: usize, bufs: &[Buf]) -> u16 {
        let head = self.write_chain(queue, bufs);
        self.publish(queue, head);
        self.notify(queue);
        head
    }

    /// `QueueNotify`, then lets the hypervisor process.
    pub fn notify(&mut self, queue: usize) {
        self.write32(regs::QUEUE_NOTIFY, queue as u32);
        self.transport.process(&mut self.memory);
    }

    /// The used entries (id, len) added since the last call.
    pub fn take_used(&mut self, queue: usize) -> Vec<(u32, u32)> {
        let q = self.queues[queue].clone();
        let idx = self.memory.read_u16(q.used + 2).unwrap();
        let mut entries = Vec::new();
        let mut seen = q.last_used;
        while seen != idx {
            let slot = u64::from(seen % q.size);
            let id = self.memory.read_u32(q.used + 4 + 8 * slot).unwrap();
            let len = self.memory.read_u32(q.used + 8 + 8 * slot).unwrap();
            entries.push((id, len));
            seen = seen.wrapping_add(1);
        }
        self.queues[queue].last_used = seen;
        entries
    }

    /// What the hypervisor does after an access ([`MmioTransport::service`]);
    /// returns the console output it was handed.
    pub fn service(&mut self) -> Vec<u8> {
        let mut host = TestHost {
            memory: &mut self.memory,
            output: Vec::new(),
        };
        self.transport.service(&mut host);
        host.output
    }

    /// Reads `InterruptStatus` and acknowledges it all.
    pub fn ack_interrupt(&mut self) -> u32 {
        let status = self.read32(regs::INTERRUPT_STATUS);
        self.write32(regs::INTERRUPT_ACK, status);
        status
    }

    /// `used_event` (with EVENT_IDX), after the available ring.
    pub fn set_used_event(&mut self, queue: usize, value: u16) {
        let q = self.queues[queue].clone();
        let address = q.avail + 4 + 2 * u64::from(q.size);
        self.memory.write_u16(address, value).unwrap();
    }

    /// `avail_event` (with EVENT_IDX), after the used ring.
    pub fn avail_event(&self, queue: usize) -> u16 {
        let q = &self.queues[queue];
        self.memory
            .read_u16(q.used + 4 + 8 * u64::from(q.size))
            .unwrap()
    }

    /// The available ring's flags.
    pub fn set_avail_flags(&mut self, queue: usize, flags: u16) {
        let address = self.queues[queue].avail;
        self.memory.write_u16(address, flags).unwrap();
    }
}

/// Writes one descriptor (section 2.7.5: le64 addr, le32 len, le16 flags, le16 next).
pub fn write_descriptor(
    memory: &mut VecMemory,
    at: u64,
    address: u64,
    length: u32,
    flags: u16,
    next: u16,
) {
    let mut raw = [0u8; 16];
    raw[0..8].copy_from_slice(&address.to_le_bytes());
    raw[8..12].copy_from_slice(&length.to_le_bytes());
    raw[12..14].copy_from_slice(&flags.to_le_bytes());
    raw[14..16].copy_from_slice(&next.to_le_bytes());
    memory.write(at, &raw).unwrap();
}

/// Guest RAM that records the range of every write (to check what a device touched
/// without comparing all of RAM).
pub struct Recording<'a> {
    pub inner: &'a mut VecMemory,
    pub writes: Vec<(u64, u64)>,
}

impl<'a> Recording<'a> {
    pub fn new(inner: &'a mut VecMemory) -> Self {
        Self {
            inner,
            writes: Vec::new(),
        }
    }
}

impl GuestMemory for Recording<'_> {
    fn check(&self, address: u64, length: u64) -> Result<(), super::MemoryError> {
        self.inner.check(address, length)
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), super::MemoryError> {
        self.inner.read(address, buffer)
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), super::MemoryError> {
        self.inner.write(address, bytes)?;
        self.writes.push((address, bytes.len() as u64));
        Ok(())
    }
}

/// A deterministic pseudo-random generator (SplitMix64) for the property tests.
pub struct Random(u64);

impl Random {
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}
