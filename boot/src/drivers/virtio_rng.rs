//! The host's virtio-rng device (QEMU `-device virtio-rng-device`), through the
//! `virtio-drivers` crate: a source of real entropy for the guest's virtio-rng when
//! the CPU has no RNDR instruction.

use super::virtio_blk::AerieHal;
use aerie_hyp::memory::Range;
use core::ptr::NonNull;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

/// The host's entropy device.
pub struct HostRng {
    device: VirtIORng<AerieHal, MmioTransport<'static>>,
}

impl HostRng {
    /// Opens the virtio-rng device whose virtio-mmio registers are `registers`.
    ///
    /// # Safety
    /// As for `HostDisk::open`: a virtio-mmio transport holding an entropy device,
    /// identity-mapped as device memory, used by nothing else.
    pub unsafe fn open(registers: Range) -> Option<Self> {
        let header = NonNull::new(registers.start() as *mut VirtIOHeader)?;
        // SAFETY: the caller guarantees the registers are a virtio-mmio transport
        // that nothing else uses, mapped for the rest of Aerie's run.
        let transport = unsafe { MmioTransport::new(header, registers.size() as usize) }.ok()?;
        VirtIORng::new(transport).ok().map(|device| Self { device })
    }

    /// Fills the start of `buffer` with entropy; returns how many bytes.
    pub fn fill(&mut self, buffer: &mut [u8]) -> Option<usize> {
        self.device.request_entropy(buffer).ok()
    }
}
