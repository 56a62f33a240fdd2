//! Finding the device tree the loader passed in x0, and validating it.

use aerie_hyp::fdt_check::{self, DtbError, HEADER_SIZE};
use aerie_hyp::memory::Range;
use core::fmt;

/// The validated device tree.
pub struct DeviceTree {
    /// The blob, `total_size` bytes long.
    pub blob: &'static [u8],
    /// Where it lies in memory.
    pub range: Range,
}

impl DeviceTree {
    /// Copies the tree onto the heap, for good, cut to the bytes it uses (a loader's
    /// tree may have a megabyte of room to grow), and returns the copy with the
    /// range the loader's original occupies: once every reference into the original
    /// is gone (this consumes the one `load` made), that memory is Aerie's to reuse.
    pub fn keep_on_heap(self) -> (&'static [u8], Range) {
        // `load` validated the blob, so trimming cannot fail; keep it whole if it did.
        let copy = fdt_check::trimmed_copy(self.blob).unwrap_or_else(|_| self.blob.to_vec());
        (alloc::vec::Vec::leak(copy), self.range)
    }
}

/// Why there is no usable device tree.
#[derive(Debug, Clone, Copy)]
pub enum LoadError {
    /// x0 was 0: the loader passed no device tree.
    NoAddress,
    /// x0 is not 8-byte aligned, which the boot protocol requires.
    Misaligned {
        /// The address in x0.
        address: usize,
    },
    /// The blob at x0 is not a valid device tree.
    Invalid {
        /// The address in x0.
        address: usize,
        /// What is wrong with it.
        error: DtbError,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAddress => write!(
                f,
                "no device tree: the loader passed 0 in x0 (QEMU passes one with -kernel; \
                 U-Boot needs `booti <image> - <fdt>`)"
            ),
            Self::Misaligned { address } => write!(
                f,
                "the device tree address {address:#x} in x0 is not 8-byte aligned"
            ),
            Self::Invalid { address, error } => {
                write!(f, "the device tree at {address:#x} is malformed: {error}")
            }
        }
    }
}

/// Validates the device tree at `address` and removes its NOP tokens in place.
pub fn load(address: usize) -> Result<DeviceTree, LoadError> {
    if address == 0 {
        return Err(LoadError::NoAddress);
    }
    if address % 8 != 0 {
        return Err(LoadError::Misaligned { address });
    }
    let invalid = |error| LoadError::Invalid { address, error };
    // SAFETY: the boot protocol makes x0 the physical address of a device tree in
    // RAM that the loader handed to Aerie. Only the fixed-size header is read here;
    // an address outside memory faults into the exception vectors, which report it.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, HEADER_SIZE) };
    let size = fdt_check::read_header(header).map_err(invalid)?.total_size as usize;
    // SAFETY: the header's total size is bounded by MAX_TOTAL_SIZE; the blob belongs
    // to Aerie from now on (the protocol hands it over), so nothing else aliases it
    // while it is edited, and it is never written again until
    // [`DeviceTree::keep_on_heap`] consumes this reference and hands the memory back.
    let blob: &'static mut [u8] =
        unsafe { core::slice::from_raw_parts_mut(address as *mut u8, size) };
    fdt_check::validate_and_remove_nops(blob).map_err(invalid)?;
    let range = Range::from_start_size(address as u64, size as u64).ok_or(invalid(
        DtbError::BadTotalSize {
            total_size: size as u32,
            available: 0,
        },
    ))?;
    Ok(DeviceTree { blob, range })
}
