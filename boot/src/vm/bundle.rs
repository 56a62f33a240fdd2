//! The guest bundle where the boot loader left it, read in place: Aerie keeps the
//! addresses of its members rather than copying them, so that the kernel can run
//! where it lies (see `aerie_hyp::loader::ram_around_kernel`).

use super::{VmError, error};
use aerie_hyp::bundle::Bundle;
use aerie_hyp::image::ImageHeader;
use aerie_hyp::memory::Range;
use alloc::format;
use alloc::string::String;

/// What a parsed bundle boots, by host address.
pub enum BundleInRam {
    /// A kernel, with its initrd and command line.
    Kernel(KernelBundle),
    /// Firmware to run in place from flash (the bundle's only member).
    Firmware(Range),
}

/// The members of a kernel bundle, by host address.
pub struct KernelBundle {
    /// The kernel's `Image` header.
    pub header: ImageHeader,
    /// The kernel's bytes.
    pub kernel: Range,
    /// The initrd's bytes, if the bundle has one.
    pub initrd: Option<Range>,
    /// The guest's command line (copied: the bundle may be overwritten later).
    pub cmdline: String,
}

impl BundleInRam {
    /// Parses the bundle the boot loader put at `bundle`, checking the kernel's
    /// header too.
    pub fn read(bundle: Range) -> Result<Self, VmError> {
        with_bytes(bundle, |bytes| {
            let parsed = Bundle::parse(bytes).map_err(|e| error(format!("guest bundle: {e}")))?;
            if let Some(firmware) = parsed.firmware {
                return Ok(Self::Firmware(host_range(firmware)));
            }
            let header = ImageHeader::parse(parsed.kernel)
                .map_err(|e| error(format!("guest kernel: {e}")))?;
            Ok(Self::Kernel(KernelBundle {
                header,
                kernel: host_range(parsed.kernel),
                initrd: parsed.initrd.map(host_range),
                cmdline: String::from(parsed.cmdline.unwrap_or("")),
            }))
        })
    }
}

/// Where a valid kernel bundle at `bundle` has its kernel's bytes, and the kernel's
/// `text_offset`; `None` for a firmware bundle or one [`BundleInRam::read`] would
/// refuse.
pub fn kernel_placement(bundle: Range) -> Option<(Range, u64)> {
    match BundleInRam::read(bundle).ok()? {
        BundleInRam::Kernel(read) => Some((read.kernel, read.header.effective_text_offset())),
        BundleInRam::Firmware(_) => None,
    }
}

/// The host range a slice of the bundle occupies (Aerie maps RAM one-to-one).
fn host_range(bytes: &[u8]) -> Range {
    Range::from_start_size(bytes.as_ptr() as u64, bytes.len() as u64)
        .expect("a slice of the bundle lies in RAM")
}

/// Runs `read` over `bundle`, the bundle or one of its members; the slice does not
/// outlive the call. `read` must not write guest RAM (which may cover the bundle).
pub fn with_bytes<T>(bundle: Range, read: impl FnOnce(&[u8]) -> T) -> T {
    // SAFETY: the bundle is the initrd the boot loader placed in RAM and reported in
    // /chosen; the memory plan keeps it out of every allocation and Aerie maps all
    // RAM one-to-one, so the range is readable. Guest RAM may be placed over it
    // (`ram_around_kernel`, for kernel bundles only), but guest RAM is written only
    // after a kernel bundle was read, and the slice lives only for this call, which
    // `read` cannot extend (its result cannot borrow from the slice). A firmware
    // bundle's guest RAM never covers it, so `create` may read the firmware while
    // it builds the guest.
    let bytes =
        unsafe { core::slice::from_raw_parts(bundle.start() as *const u8, bundle.size() as usize) };
    read(bytes)
}
