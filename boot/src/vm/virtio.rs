//! The guest's virtio-mmio devices: today, virtio-blk disks backed by the host's
//! own virtio disks (those `cargo xtask run --disk` marks for the guest).
//!
//! A device's work happens when the guest touches its registers (QueueNotify, or
//! any other access): Aerie then lets the transport process the queues against
//! guest RAM, synchronously, and sets the device's interrupt line.

use super::{GuestRam, Vm, interrupts};
use crate::drivers::virtio_blk::HostDisk;
use crate::virtio_probe::OpenDisk;
use aerie_devices::bus::DeviceId;
use aerie_devices::virtio::{
    BackendError, Block, BlockBackend, GuestMemory, MemoryError, MmioTransport,
};
use aerie_hyp::guest_layout;

/// A guest virtio-blk device over a host disk.
pub type GuestBlock = MmioTransport<Block<HostBackend>>;

/// One guest virtio device on the bus.
#[derive(Debug, Clone, Copy)]
pub struct VirtioSlot {
    /// The device on the bus.
    pub device: DeviceId,
    /// Its interrupt ID.
    pub intid: u32,
}

/// The guest physical address of virtio-mmio transport `index`.
pub fn transport_address(index: usize) -> u64 {
    guest_layout::VIRTIO_MMIO + index as u64 * guest_layout::VIRTIO_MMIO_STRIDE
}

/// The interrupt ID of virtio-mmio transport `index`.
pub fn transport_intid(index: usize) -> u32 {
    32 + guest_layout::VIRTIO_MMIO_FIRST_SPI + index as u32
}

/// A host disk as a virtio-blk backend.
pub struct HostBackend {
    disk: HostDisk,
    id: [u8; 20],
}

impl HostBackend {
    /// The backend for `open`.
    pub fn new(open: OpenDisk) -> Self {
        Self {
            disk: open.disk,
            id: open.serial,
        }
    }
}

impl BlockBackend for HostBackend {
    fn capacity_sectors(&self) -> u64 {
        self.disk.capacity_sectors()
    }

    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        self.disk
            .read(sector, buffer)
            .map_err(|_| BackendError("host disk read failed"))
    }

    fn write(&mut self, sector: u64, bytes: &[u8]) -> Result<(), BackendError> {
        self.disk
            .write(sector, bytes)
            .map_err(|_| BackendError("host disk write failed"))
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.disk
            .flush()
            .map_err(|_| BackendError("host disk flush failed"))
    }

    fn read_only(&self) -> bool {
        self.disk.read_only()
    }

    fn id(&self) -> [u8; 20] {
        self.id
    }
}

/// Guest RAM as the virtio code sees it.
pub struct GuestRamMemory<'r>(pub &'r GuestRam);

impl GuestMemory for GuestRamMemory<'_> {
    fn check(&self, address: u64, length: u64) -> Result<(), MemoryError> {
        self.0
            .host_range(address, length)
            .map(|_| ())
            .ok_or(MemoryError { address, length })
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        let length = buffer.len() as u64;
        self.0
            .read(address, buffer)
            .ok_or(MemoryError { address, length })
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        let length = bytes.len() as u64;
        self.0
            .write_coherent(address, bytes)
            .ok_or(MemoryError { address, length })
    }
}

/// After a guest access to a virtio device's registers: processes its queues and
/// updates its interrupt line.
pub fn after_access(vm: &Vm, address: u64) {
    let Some(slot) = vm
        .virtio
        .iter()
        .enumerate()
        .find(|(index, _)| {
            let base = transport_address(*index);
            (base..base + guest_layout::VIRTIO_MMIO_STRIDE).contains(&address)
        })
        .map(|(_, slot)| *slot)
    else {
        return;
    };
    let (level, fault) = {
        let mut bus = vm.bus.lock();
        let Some(transport) = bus.downcast_mut::<GuestBlock>(slot.device) else {
            return;
        };
        transport.process(&mut GuestRamMemory(&vm.ram));
        (transport.interrupt_level(), transport.take_fault())
    };
    if let Some(fault) = fault {
        log::warn!("guest virtio device at {address:#x}: {fault}; it needs a reset");
    }
    interrupts::set_line(vm, slot.intid, level);
}
