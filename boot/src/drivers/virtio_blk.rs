//! The host's virtio-blk disks (QEMU `-device virtio-blk-device`), through the
//! `virtio-drivers` crate. Aerie uses them itself (a guest disk's backing store,
//! snapshots); they are never shown to the guest.
//!
//! The crate needs a [`Hal`]: DMA memory comes from Aerie's frame allocator, and
//! since Aerie maps all RAM one-to-one, a buffer's physical address is its virtual
//! address. QEMU's virtio devices are cache-coherent with the CPUs.

use crate::memory;
use aerie_hyp::memory::Range;
use aerie_hyp::paging::PAGE_SIZE;
use core::ptr::NonNull;
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// Aerie's glue for `virtio-drivers`.
pub struct AerieHal;

// SAFETY: `dma_alloc` returns zeroed, exclusively owned, page-aligned frames whose
// physical and virtual addresses are equal (Aerie's identity map) and which stay
// allocated until `dma_dealloc`; `share` hands out the identity address of memory
// the caller keeps alive for the transfer; MMIO addresses map to themselves.
unsafe impl Hal for AerieHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match memory::allocate_frames(pages) {
            Some(frames) => {
                let address = frames.start();
                let pointer = NonNull::new(address as *mut u8).expect("frames are never at 0");
                (address, pointer)
            }
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        match Range::from_start_size(paddr, pages as u64 * PAGE_SIZE) {
            Some(frames) => {
                memory::free_frames(frames);
                0
            }
            None => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).expect("device registers are never at 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Why a host disk could not be used.
#[derive(Debug)]
pub struct DiskError(pub virtio_drivers::Error);

impl core::fmt::Display for DiskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One host virtio-blk disk.
pub struct HostDisk {
    device: VirtIOBlk<AerieHal, MmioTransport<'static>>,
}

impl HostDisk {
    /// Opens the virtio-blk device whose virtio-mmio registers are `registers`.
    ///
    /// # Safety
    /// `registers` must be a virtio-mmio transport holding a block device (probed by
    /// `virtio_probe`), identity-mapped as device memory, and used by nothing else.
    pub unsafe fn open(registers: Range) -> Result<Self, DiskError> {
        let header = NonNull::new(registers.start() as *mut VirtIOHeader)
            .expect("device registers are never at 0");
        // SAFETY: the caller guarantees the registers are a virtio-mmio transport
        // that nothing else uses, mapped for the rest of Aerie's run.
        let transport = unsafe { MmioTransport::new(header, registers.size() as usize) }
            .map_err(|_| DiskError(virtio_drivers::Error::InvalidParam))?;
        let device = VirtIOBlk::new(transport).map_err(DiskError)?;
        Ok(Self { device })
    }

    /// The disk's serial number (virtio-blk GET_ID), e.g. `aerie-snapshots`; empty if
    /// the device gives none.
    pub fn serial(&mut self) -> [u8; 20] {
        let mut id = [0u8; 20];
        if self.device.device_id(&mut id).is_err() {
            id = [0; 20];
        }
        id
    }

    /// Capacity in sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.device.capacity()
    }

    /// Whether the disk refuses writes.
    pub fn read_only(&self) -> bool {
        self.device.readonly()
    }

    /// Reads whole sectors starting at `sector` into `buffer` (a multiple of
    /// [`SECTOR`] bytes).
    pub fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        self.device
            .read_blocks(sector as usize, buffer)
            .map_err(DiskError)
    }

    /// Writes whole sectors starting at `sector`.
    pub fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        self.device
            .write_blocks(sector as usize, data)
            .map_err(DiskError)
    }

    /// Makes written data durable.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        self.device.flush().map_err(DiskError)
    }
}
