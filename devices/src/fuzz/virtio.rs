//! Fuzz targets of the virtio parsers: the split-virtqueue walker, virtio-blk
//! request handling and the virtio-mmio register interface.

use super::Input;
use crate::mmio::{AccessWidth, MmioDevice};
use crate::virtio::{
    Block, Chain, Console, EntropyError, EntropySource, GuestMemory, MemoryDisk, MmioTransport,
    Queue, Rng, VecMemory, VirtioDevice, WINDOW_SIZE, regs,
};
use alloc::vec::Vec;

/// Guest RAM's base in every target.
const BASE: u64 = 0x4000_0000;

/// The input is guest RAM, zero-padded to `min` bytes and cut at `max`.
fn guest_ram(image: &[u8], min: usize, max: usize) -> VecMemory {
    let mut bytes: Vec<u8> = image[..image.len().min(max)].to_vec();
    bytes.resize(bytes.len().max(min), 0);
    VecMemory::from_bytes(BASE, bytes)
}

/// Walks a split virtqueue: the input is a byte of queue size, a byte of ring
/// features, then guest RAM holding the descriptor table (at its start), the
/// available ring (at 0x4000), the used ring (at 0x5000) and whatever indirect
/// tables and buffers the descriptors point at.
///
/// Checks that every chain the walker accepts lies inside RAM, has no empty
/// segment, adds up to the lengths it reports and stays within 4 GiB.
pub fn virtqueue_walk(data: &[u8]) {
    const AVAIL: u64 = BASE + 0x4000;
    const USED: u64 = BASE + 0x5000;
    let [size_log, features, image @ ..] = data else {
        return;
    };
    let size = 1u16 << (size_log % 11);
    // Enough RAM for the rings of a 1024-entry queue.
    let mut memory = guest_ram(image, 0x8000, 0x10_0000);

    let mut queue = Queue::new(1024);
    queue.set_size(size);
    queue.set_descriptor_area(BASE);
    queue.set_driver_area(AVAIL);
    queue.set_device_area(USED);
    queue.set_features(features & 2 != 0, features & 1 != 0);
    queue.enable().expect("a valid layout");
    queue.start_batch();

    let mut chain = Chain::new();
    for _ in 0..=size {
        match queue.pop(&mut memory, &mut chain) {
            Ok(true) => {
                let mut total = 0u64;
                for segment in chain.readable().iter().chain(chain.writable()) {
                    assert!(segment.length > 0);
                    assert!(
                        memory
                            .check(segment.address, u64::from(segment.length))
                            .is_ok()
                    );
                    total += u64::from(segment.length);
                }
                assert_eq!(total, chain.readable_len() + chain.writable_len());
                assert!(total <= 1 << 32);
                queue
                    .add_used(&mut memory, chain.head(), 0)
                    .expect("the used ring is inside RAM");
            }
            Ok(false) | Err(_) => break,
        }
    }
    let _ = queue.needs_interrupt(&memory);
}

/// Processes virtio-blk requests through the whole MMIO transport: the input is
/// guest RAM holding a 16-entry request queue (descriptor table at its start,
/// available ring with its index at 0x100, used ring at 0x200) and the requests'
/// buffers; the first byte's low bit makes the disk read-only. The driver's side of
/// the handshake goes through the MMIO registers, as a guest's would.
pub fn block_request(data: &[u8]) {
    const AVAIL: u64 = BASE + 0x100;
    const USED: u64 = BASE + 0x200;
    const QUEUE_SIZE: u64 = 16;
    /// `ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK` (virtio 1.2, section 2.1).
    const LIVE: u64 = 1 | 2 | 8 | 4;
    let write = |device: &mut MmioTransport<Block<MemoryDisk>>, offset: u64, value: u64| {
        device.write(offset, AccessWidth::Word, value & 0xFFFF_FFFF);
    };

    let mut memory = guest_ram(data, 0x1000, 0x4_0000);
    let mut disk = MemoryDisk::new(64);
    disk.read_only = data.first().is_some_and(|b| b & 1 != 0);
    let mut device = MmioTransport::new(Block::new(disk));
    write(&mut device, regs::STATUS, 0);
    write(&mut device, regs::STATUS, 1 | 2);
    for select in 0..2 {
        write(&mut device, regs::DEVICE_FEATURES_SEL, select);
        let offered = device.read(regs::DEVICE_FEATURES, AccessWidth::Word);
        write(&mut device, regs::DRIVER_FEATURES_SEL, select);
        write(&mut device, regs::DRIVER_FEATURES, offered);
    }
    write(&mut device, regs::STATUS, 1 | 2 | 8);
    write(&mut device, regs::QUEUE_SEL, 0);
    write(&mut device, regs::QUEUE_NUM, QUEUE_SIZE);
    write(&mut device, regs::QUEUE_DESC_LOW, BASE);
    write(&mut device, regs::QUEUE_DRIVER_LOW, AVAIL);
    write(&mut device, regs::QUEUE_DEVICE_LOW, USED);
    write(&mut device, regs::QUEUE_READY, 1);
    write(&mut device, regs::STATUS, LIVE);
    for _ in 0..3 {
        write(&mut device, regs::QUEUE_NOTIFY, 0);
        device.process(&mut memory);
    }
    let _ = device.take_fault();
    let _ = device.interrupt_level();
}

/// An entropy source that counts, for the virtio-rng target.
struct Counter(u8);

impl EntropySource for Counter {
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize, EntropyError> {
        for byte in buffer.iter_mut() {
            self.0 = self.0.wrapping_add(1);
            *byte = self.0;
        }
        Ok(buffer.len())
    }
}

/// A value to write to a virtio-mmio register: anything, a small number (sizes,
/// selectors, status bits), or the low half of an address in guest RAM.
fn register_value(input: &mut Input) -> u64 {
    match input.choose(4) {
        0 => u64::from(input.u32()),
        1 => u64::from(input.u8()),
        _ => (BASE + (u64::from(input.u16()) & !0xF)) & 0xFFFF_FFFF,
    }
}

/// Drives `transport` with the operations the input describes; `extra` is the
/// device's own operation (console input, say).
fn drive_transport<D: VirtioDevice>(
    input: &mut Input,
    mut transport: MmioTransport<D>,
    fresh: impl Fn() -> MmioTransport<D>,
    mut extra: impl FnMut(&mut Input, &mut MmioTransport<D>),
) {
    const MAX_OPERATIONS: usize = 1000;
    let mut memory = VecMemory::new(BASE, 0x1_0000);
    let mut operations = 0;
    while !input.is_empty() && operations < MAX_OPERATIONS {
        operations += 1;
        let width = [
            AccessWidth::Byte,
            AccessWidth::Half,
            AccessWidth::Word,
            AccessWidth::Double,
        ][input.choose(4) as usize];
        let offset = match input.choose(4) {
            0 => regs::CONFIG + u64::from(input.u8()),
            1 => u64::from(input.u16()) % WINDOW_SIZE,
            _ => u64::from(input.u8() & 0xFC),
        }
        .min(WINDOW_SIZE - width.bytes());
        match input.choose(12) {
            0..=3 => {
                let value = transport.read(offset, width);
                assert_eq!(value & !width.mask(), 0, "read {width:?} at {offset:#x}");
                let control = offset < regs::CONFIG;
                if control && (width != AccessWidth::Word || !width.is_aligned(offset)) {
                    assert_eq!(value, 0, "read {width:?} at {offset:#x}");
                }
            }
            4..=7 => transport.write(offset, width, width.truncate(register_value(input))),
            8 => {
                let at = BASE + u64::from(input.u16());
                let bytes = input.bytes(16);
                let _ = memory.write(at, bytes);
            }
            9 => {
                transport.process(&mut memory);
                let _ = transport.take_fault();
            }
            10 => {
                let saved = transport.save();
                let mut copy = fresh();
                copy.restore(&saved).expect("a saved state restores");
                assert_eq!(copy.save(), saved);
            }
            _ => extra(input, &mut transport),
        }
        let _ = transport.interrupt_level();
    }
}

/// The virtio-mmio register interface of the block, console and entropy devices
/// (the first byte chooses, and whether the disk is read-only): register accesses
/// at every offset and width with values that often make sense (queue addresses in
/// guest RAM, sizes, status bits), writes to guest RAM, queue processing, console
/// input and output, and save/restore.
///
/// Checks that nothing panics; that reads fit their width and that control
/// registers answer only aligned 32-bit reads; and that a saved state restores
/// unchanged into a fresh device.
pub fn virtio_mmio_registers(data: &[u8]) {
    let mut input = Input::new(data);
    match input.choose(3) {
        0 => {
            let read_only = input.bool();
            let block = move || {
                let mut disk = MemoryDisk::new(16);
                disk.read_only = read_only;
                MmioTransport::new(Block::new(disk))
            };
            drive_transport(&mut input, block(), block, |_, _| {});
        }
        1 => {
            let console = || MmioTransport::new(Console::new());
            drive_transport(&mut input, console(), console, |input, transport| {
                if input.bool() {
                    let count = usize::from(input.u8() % 64);
                    let bytes = input.bytes(count);
                    let _ = transport.device_mut().push_input(bytes);
                } else {
                    let mut buffer = [0u8; 64];
                    let room = usize::from(input.u8() % 65);
                    let taken = transport.device_mut().take_output(&mut buffer[..room]);
                    assert!(taken <= room);
                }
            });
        }
        _ => {
            let rng = || MmioTransport::new(Rng::new(Counter(0)));
            drive_transport(&mut input, rng(), rng, |_, _| {});
        }
    }
}
