//! Fuzzes virtio-blk request handling through the whole transport: the input is
//! guest RAM holding a 16-entry request queue (descriptor table, available ring with
//! its index) and the requests' buffers. The driver side of the handshake is done
//! through the MMIO registers, as a guest would.
#![no_main]

use aerie_devices::mmio::{AccessWidth, MmioDevice};
use aerie_devices::virtio::{Block, MemoryDisk, MmioTransport, VecMemory, regs};
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x4000_0000;
const DESC: u64 = BASE;
const AVAIL: u64 = BASE + 0x100;
const USED: u64 = BASE + 0x200;
const QUEUE_SIZE: u32 = 16;
const MIN_RAM: usize = 0x1000;
const MAX_RAM: usize = 0x4_0000;
/// `ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK` (virtio 1.2, section 2.1).
const LIVE: u32 = 1 | 2 | 8 | 4;

fn write(device: &mut MmioTransport<Block<MemoryDisk>>, offset: u64, value: u64) {
    device.write(offset, AccessWidth::Word, value & 0xFFFF_FFFF);
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data[..data.len().min(MAX_RAM)].to_vec();
    bytes.resize(bytes.len().max(MIN_RAM), 0);
    let mut memory = VecMemory::from_bytes(BASE, bytes);

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
    write(&mut device, regs::QUEUE_NUM, u64::from(QUEUE_SIZE));
    write(&mut device, regs::QUEUE_DESC_LOW, DESC);
    write(&mut device, regs::QUEUE_DRIVER_LOW, AVAIL);
    write(&mut device, regs::QUEUE_DEVICE_LOW, USED);
    write(&mut device, regs::QUEUE_READY, 1);
    write(&mut device, regs::STATUS, u64::from(LIVE));
    for _ in 0..3 {
        write(&mut device, regs::QUEUE_NOTIFY, 0);
        device.process(&mut memory);
    }
    let _ = device.take_fault();
    let _ = device.interrupt_level();
});
