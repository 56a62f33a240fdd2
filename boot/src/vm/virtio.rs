//! The guest's virtio-mmio devices: virtio-blk disks backed by the host's own
//! virtio disks (those `cargo xtask run --disk` marks for the guest), a
//! virtio-console (`hvc0`, whose output joins the physical console), and a
//! virtio-rng fed by the CPU's RNDR instruction, or else by the host's own
//! virtio-rng device (never offered without either: Aerie does not make up entropy).
//!
//! A device's work happens when the guest's access asks for it (QueueNotify, a
//! status change...; see `aerie_devices::virtio::transport`): the transport then
//! processes the queues against guest RAM, synchronously, within the access
//! (`super::devices`).

use super::GuestRam;
use crate::drivers::virtio_blk::HostDisk;
use crate::virtio_probe::OpenDisk;
use aerie_devices::virtio::{
    BackendError, Block, BlockBackend, Console, EntropyError, EntropySource, GuestMemory,
    MemoryError, MmioTransport, Rng,
};
use aerie_hyp::guest_layout;

/// A guest virtio-blk device over a host disk.
pub type GuestBlock = MmioTransport<Block<HostBackend>>;
/// The guest's virtio-console.
pub type GuestConsole = MmioTransport<Console>;
/// The guest's virtio-rng.
pub type GuestRng = MmioTransport<Rng<RndrSource>>;

/// Real entropy: the CPU's random number instruction (FEAT_RNG: `RNDR`) when it
/// has one, else the host's own virtio-rng device.
pub struct RndrSource;

impl RndrSource {
    /// Whether there is a source: RNDR (ID_AA64ISAR0_EL1.RNDR, bits [63:60]) or a
    /// host entropy device.
    pub fn available() -> bool {
        crate::arch::cpu::has_random_number_instruction()
            || crate::virtio_probe::HOST_RNG.lock().is_some()
    }
}

impl EntropySource for RndrSource {
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize, EntropyError> {
        if !crate::arch::cpu::has_random_number_instruction() {
            let mut host = crate::virtio_probe::HOST_RNG.lock();
            return Ok(host.as_mut().and_then(|rng| rng.fill(buffer)).unwrap_or(0));
        }
        let mut filled = 0;
        for chunk in buffer.chunks_mut(8) {
            match crate::arch::cpu::random_number() {
                Some(value) => {
                    chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
                    filled += chunk.len();
                }
                None => break,
            }
        }
        Ok(filled)
    }
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
