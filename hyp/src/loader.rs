//! Where the guest's kernel, device tree and initrd go in guest RAM.
//!
//! The rules are Linux's (`Documentation/arch/arm64/booting.rst`), which every arm64
//! kernel and most firmware follow:
//!
//! - The kernel `Image` is placed `text_offset` bytes above a 2 MiB aligned base
//!   address (section 4), and at least `image_size` bytes from there are free for it
//!   (its BSS included). Aerie takes the lowest 2 MiB boundary in guest RAM as the
//!   base, which also satisfies kernels that want to be "as close as possible to the
//!   base of DRAM" (flags bit 3 clear). Kernels before 3.17 leave `image_size` zero:
//!   their `text_offset` is taken to be 0x80000 and their size the file's (see
//!   [`ImageHeader::effective_text_offset`]).
//! - The device tree is 8-byte aligned, at most 2 MiB, and must not share a 2 MiB
//!   region with memory that needs other attributes (section 2). Aerie gives it a
//!   2 MiB slot of its own: the first 2 MiB boundary after the kernel.
//! - The initrd follows the device tree's slot, page-aligned, and must lie, together
//!   with the kernel, inside a 1 GiB aligned window of at most 32 GiB (section 3).
//!
//! ```text
//!   RAM base (2 MiB aligned)
//!   | text_offset | kernel: max(image_size, file) | pad | DTB slot (2 MiB) | initrd |
//!                 ^ entry                               ^ 2 MiB aligned    ^ 4 KiB aligned
//! ```
//!
//! Aerie runs little-endian guests with 4 KiB pages (CONFIG_ARM64_4K_PAGES), so
//! other kernels are refused before anything is copied.
//!
//! Copying the kernel is most of the time Aerie takes to start a guest under QEMU
//! (tens of megabytes through emulated loads and stores). When the boot loader left
//! the kernel's bytes on a 2 MiB boundary (plus `text_offset`), Aerie instead puts
//! the guest's RAM around them ([`ram_around_kernel`]), so that the kernel already
//! lies where this plan wants it.

use crate::image::ImageHeader;
use crate::memory::{Range, RangeSet};
use crate::units::{ByteSize, GIB, KIB, MIB};
use core::fmt;

/// The kernel's base address is a multiple of this (booting.rst section 4).
pub const KERNEL_BASE_ALIGN: u64 = 2 * MIB;
/// The alignment the device tree needs (booting.rst section 2).
pub const DEVICE_TREE_ALIGN: u64 = 8;
/// The largest device tree a kernel accepts (booting.rst section 2).
pub const DEVICE_TREE_MAX_SIZE: u64 = 2 * MIB;
/// The device tree gets a region of this size and alignment to itself, so that no
/// other memory shares the 2 MiB block the kernel maps it with.
pub const DEVICE_TREE_SLOT: u64 = 2 * MIB;
/// The initrd starts on a page boundary.
pub const INITRD_ALIGN: u64 = 4 * KIB;
/// The kernel and initrd must lie in a window that starts at a multiple of this ...
pub const INITRD_WINDOW_ALIGN: u64 = GIB;
/// ... and is at most this long (booting.rst section 3).
pub const INITRD_WINDOW_SIZE: u64 = 32 * GIB;
/// The only kernel page size Aerie runs.
pub const SUPPORTED_PAGE_SIZE: u64 = 4 * KIB;
/// An A64 instruction's size: the entry point must be a multiple of it.
const INSTRUCTION_ALIGN: u64 = 4;

/// Which of the guest's pieces an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// The kernel `Image`.
    Kernel,
    /// The device tree Aerie generates.
    DeviceTree,
    /// The initrd.
    Initrd,
}

impl fmt::Display for Piece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Piece::Kernel => "the kernel",
            Piece::DeviceTree => "the device tree",
            Piece::Initrd => "the initrd",
        })
    }
}

/// Why the guest cannot be laid out in its RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The kernel is big-endian (`Image` flags bit 0).
    BigEndian,
    /// The kernel uses 16 KiB or 64 KiB pages (`Image` flags bits 1-2).
    UnsupportedPageSize {
        /// The kernel's page size in bytes.
        page_size: u64,
    },
    /// `text_offset` would put the entry point off an instruction boundary.
    MisalignedTextOffset {
        /// The header's `text_offset`.
        text_offset: u64,
    },
    /// The device tree is larger than a kernel accepts.
    DeviceTreeTooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// A piece does not fit in guest RAM.
    DoesNotFit {
        /// Which piece.
        piece: Piece,
        /// Where it would start.
        start: u64,
        /// Its size in bytes.
        size: u64,
        /// Guest RAM.
        ram: Range,
        /// How much guest RAM the whole layout needs, rounded up to 1 MiB, when that
        /// can be computed (not when the sizes overflow the address space).
        ram_needed: Option<u64>,
    },
    /// The initrd would lie outside the 32 GiB window it must share with the kernel.
    InitrdOutsideWindow {
        /// Where the initrd would be.
        initrd: Range,
        /// The window: 32 GiB from the 1 GiB boundary at or below the kernel.
        window: Range,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BigEndian => f.write_str(
                "the kernel is big-endian (CONFIG_CPU_BIG_ENDIAN); Aerie runs little-endian \
                 guests only",
            ),
            Self::UnsupportedPageSize { page_size } => write!(
                f,
                "the kernel uses {} pages; Aerie runs kernels built with 4 KiB pages \
                 (CONFIG_ARM64_4K_PAGES)",
                ByteSize(page_size)
            ),
            Self::MisalignedTextOffset { text_offset } => write!(
                f,
                "the kernel's text_offset {text_offset:#x} is not a multiple of \
                 {INSTRUCTION_ALIGN}: not a valid arm64 Image"
            ),
            Self::DeviceTreeTooLarge { size } => write!(
                f,
                "the guest's device tree is {} bytes, more than the {} a kernel accepts",
                size,
                ByteSize(DEVICE_TREE_MAX_SIZE)
            ),
            Self::DoesNotFit {
                piece,
                start,
                size,
                ram,
                ram_needed,
            } => {
                write!(
                    f,
                    "{piece} needs {} from {start:#010x} but guest RAM ends at {:#010x}; \
                     give the guest more memory with --mem",
                    ByteSize(size),
                    ram.end()
                )?;
                match ram_needed {
                    Some(needed) => write!(f, " (at least {})", ByteSize(needed)),
                    None => Ok(()),
                }
            }
            Self::InitrdOutsideWindow { initrd, window } => write!(
                f,
                "the initrd would be at {initrd}, outside {window}: Linux needs the kernel \
                 and initrd within one {} window; use a smaller initrd",
                ByteSize(INITRD_WINDOW_SIZE)
            ),
        }
    }
}

/// Where each piece goes, in guest physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// The kernel: the file is copied to the start, the rest (its BSS) is zero.
    pub kernel: Range,
    /// The initrd, if there is one.
    pub initrd: Option<Range>,
    /// The device tree (x0 at entry).
    pub device_tree: Range,
    /// Where the boot vCPU starts: the first byte of the kernel.
    pub entry: u64,
}

impl fmt::Display for LoadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel {}, device tree {}",
            self.kernel, self.device_tree
        )?;
        if let Some(initrd) = self.initrd {
            write!(f, ", initrd {initrd}")?;
        }
        write!(f, ", entry {:#010x}", self.entry)
    }
}

/// `size` bytes from `start`, or the error saying that `piece` does not fit.
fn piece_range(
    piece: Piece,
    start: Option<u64>,
    size: u64,
    ram: Range,
) -> Result<Range, LoadError> {
    start
        .and_then(|start| Range::from_start_size(start, size))
        .ok_or(LoadError::DoesNotFit {
            piece,
            start: start.unwrap_or(u64::MAX),
            size,
            ram,
            ram_needed: None,
        })
}

/// Lays out the guest in `ram`: the kernel described by `kernel` (whose file is
/// `kernel_file_len` bytes), a device tree of `device_tree_len` bytes and, when
/// `initrd_len` is given, an initrd of that many bytes.
pub fn plan(
    ram: Range,
    kernel: &ImageHeader,
    kernel_file_len: u64,
    initrd_len: Option<u64>,
    device_tree_len: u64,
) -> Result<LoadPlan, LoadError> {
    if kernel.is_big_endian() {
        return Err(LoadError::BigEndian);
    }
    // An unspecified page size (0, kernels before 3.17) means 4 KiB: there was no other.
    if let Some(page_size) = kernel
        .page_size()
        .filter(|&size| size != SUPPORTED_PAGE_SIZE)
    {
        return Err(LoadError::UnsupportedPageSize { page_size });
    }
    let text_offset = kernel.effective_text_offset();
    if text_offset % INSTRUCTION_ALIGN != 0 {
        return Err(LoadError::MisalignedTextOffset { text_offset });
    }
    if device_tree_len > DEVICE_TREE_MAX_SIZE {
        return Err(LoadError::DeviceTreeTooLarge {
            size: device_tree_len,
        });
    }

    // Lay everything out first (only overflow can fail here), then check it against
    // the end of RAM, so that the error can say how much RAM the whole guest needs.
    let kernel_size = kernel
        .effective_image_size(kernel_file_len)
        .max(kernel_file_len);
    let base = ram.start().checked_next_multiple_of(KERNEL_BASE_ALIGN);
    let kernel_start = base.and_then(|base| base.checked_add(text_offset));
    let kernel_range = piece_range(Piece::Kernel, kernel_start, kernel_size, ram)?;
    let slot = kernel_range
        .end()
        .checked_next_multiple_of(DEVICE_TREE_SLOT);
    let device_tree = piece_range(Piece::DeviceTree, slot, device_tree_len, ram)?;
    debug_assert!(device_tree.start() % DEVICE_TREE_ALIGN == 0);
    let initrd = match initrd_len {
        Some(len) => {
            let start = slot
                .and_then(|slot| slot.checked_add(DEVICE_TREE_SLOT))
                .and_then(|end| end.checked_next_multiple_of(INITRD_ALIGN));
            Some(piece_range(Piece::Initrd, start, len, ram)?)
        }
        None => None,
    };

    let last_end = initrd.unwrap_or(device_tree).end();
    let ram_needed = (last_end - ram.start()).checked_next_multiple_of(MIB);
    let pieces = [
        (Piece::Kernel, Some(kernel_range)),
        (Piece::DeviceTree, Some(device_tree)),
        (Piece::Initrd, initrd),
    ];
    for (piece, range) in pieces {
        if let Some(range) = range.filter(|range| range.end() > ram.end()) {
            return Err(LoadError::DoesNotFit {
                piece,
                start: range.start(),
                size: range.size(),
                ram,
                ram_needed,
            });
        }
    }

    if let Some(initrd) = initrd {
        let window_start = kernel_range.start() & !(INITRD_WINDOW_ALIGN - 1);
        let window_end = window_start.saturating_add(INITRD_WINDOW_SIZE);
        if initrd.end() > window_end || kernel_range.end() > window_end {
            // window_start <= the kernel's start <= window_end: the range is valid.
            let window = Range::new(window_start, window_end).unwrap_or(kernel_range);
            return Err(LoadError::InitrdOutsideWindow { initrd, window });
        }
    }

    Ok(LoadPlan {
        kernel: kernel_range,
        initrd,
        device_tree,
        entry: kernel_range.start(),
    })
}

/// Where `size` bytes of guest RAM can go in host memory so that the kernel's bytes,
/// left by the boot loader at `kernel` inside the bundle at `bundle`, are already
/// where [`plan`] puts a kernel with `text_offset`: `text_offset` bytes above the
/// start of guest RAM. `None` unless that start is 2 MiB aligned, the kernel fits,
/// and every byte of the range is either `free` or the bundle's own (the bundle's
/// other members are then moved out of the kernel's way, or overwritten by the
/// guest).
pub fn ram_around_kernel<const N: usize>(
    free: &RangeSet<N>,
    bundle: Range,
    kernel: Range,
    text_offset: u64,
    size: u64,
) -> Option<Range> {
    let base = kernel.start().checked_sub(text_offset)?;
    if base % KERNEL_BASE_ALIGN != 0 || !bundle.covers(&kernel) {
        return None;
    }
    let ram = Range::from_start_size(base, size)?;
    let mut usable = free.clone();
    usable.insert(bundle).ok()?;
    (ram.covers(&kernel) && usable.covers(&ram)).then_some(ram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_layout::RAM_BASE;
    use std::string::ToString;

    /// The 64-byte header of a mainline arm64 kernel with the EFI stub, as
    /// `hexdump -C -n 64 arch/arm64/boot/Image` prints it for a 5.x/6.x defconfig
    /// build: `ccmp x18, #0, #0xd, pl` ("MZ@\xfa"), `b primary_entry`,
    /// text_offset 0, image_size 0x02650000 (38.3 MiB), flags 0xa (4K pages,
    /// placement anywhere), magic, PE header at 0x40.
    const MAINLINE_HEADER: [u8; 64] = [
        0x4d, 0x5a, 0x40, 0xfa, 0x27, 0xb8, 0x65, 0x14, // code0, code1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // text_offset
        0x00, 0x00, 0x65, 0x02, 0x00, 0x00, 0x00, 0x00, // image_size
        0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // flags
        0, 0, 0, 0, 0, 0, 0, 0, // res2
        0, 0, 0, 0, 0, 0, 0, 0, // res3
        0, 0, 0, 0, 0, 0, 0, 0, // res4
        0x41, 0x52, 0x4d, 0x64, 0x40, 0x00, 0x00, 0x00, // "ARM\x64", res5
    ];

    /// A Linaro kernel from the 3.17 - 4.x era: text_offset 0x80000,
    /// image_size 0xa87000, flags 0 (little-endian, page size unspecified).
    const LINARO_HEADER: [u8; 64] = [
        0x4d, 0x5a, 0x00, 0x91, 0x57, 0x00, 0x00, 0x14, // "MZ" add, b stext
        0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // text_offset
        0x00, 0x70, 0xa8, 0x00, 0x00, 0x00, 0x00, 0x00, // image_size
        0, 0, 0, 0, 0, 0, 0, 0, // flags
        0, 0, 0, 0, 0, 0, 0, 0, // res2
        0, 0, 0, 0, 0, 0, 0, 0, // res3
        0, 0, 0, 0, 0, 0, 0, 0, // res4
        0x41, 0x52, 0x4d, 0x64, 0x40, 0x00, 0x00, 0x00, // "ARM\x64", res5
    ];

    /// A header as kernels before 3.17 wrote it: `b stext`, then zero, text_offset
    /// 0x80000, and image_size and flags left zero.
    const LEGACY_HEADER: [u8; 64] = [
        0x00, 0x02, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, // b stext, code1 0
        0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // text_offset
        0, 0, 0, 0, 0, 0, 0, 0, // image_size 0: pre-3.17
        0, 0, 0, 0, 0, 0, 0, 0, // flags
        0, 0, 0, 0, 0, 0, 0, 0, // res2
        0, 0, 0, 0, 0, 0, 0, 0, // res3
        0, 0, 0, 0, 0, 0, 0, 0, // res4
        0x41, 0x52, 0x4d, 0x64, 0x00, 0x00, 0x00, 0x00, // "ARM\x64", res5
    ];

    fn header(bytes: &[u8; 64]) -> ImageHeader {
        ImageHeader::parse(bytes).unwrap()
    }

    /// A header with the given fields (see image.rs for the layout).
    fn made(text_offset: u64, image_size: u64, flags: u64) -> ImageHeader {
        let mut bytes = MAINLINE_HEADER;
        bytes[8..16].copy_from_slice(&text_offset.to_le_bytes());
        bytes[16..24].copy_from_slice(&image_size.to_le_bytes());
        bytes[24..32].copy_from_slice(&flags.to_le_bytes());
        header(&bytes)
    }

    fn ram(size: u64) -> Range {
        Range::from_start_size(RAM_BASE, size).unwrap()
    }

    fn r(start: u64, end: u64) -> Range {
        Range::new(start, end).unwrap()
    }

    #[test]
    fn mainline_kernel() {
        // The file is smaller than image_size (BSS is not in the file).
        let plan = plan(
            ram(GIB),
            &header(&MAINLINE_HEADER),
            0x01e1_c200,
            Some(0x20_0001),
            0x1234,
        )
        .unwrap();
        // text_offset 0: the kernel starts at the RAM base and takes image_size.
        assert_eq!(plan.kernel, r(0x4000_0000, 0x4265_0000));
        assert_eq!(plan.entry, 0x4000_0000);
        // The next 2 MiB boundary after 0x42650000 is 0x42800000.
        assert_eq!(plan.device_tree, r(0x4280_0000, 0x4280_1234));
        // The initrd starts after the device tree's 2 MiB slot.
        assert_eq!(plan.initrd, Some(r(0x42a0_0000, 0x42c0_0001)));
        assert_eq!(
            plan.to_string(),
            "kernel 0x40000000..0x42650000, device tree 0x42800000..0x42801234, \
             initrd 0x42a00000..0x42c00001, entry 0x40000000"
        );
    }

    #[test]
    fn kernel_with_text_offset() {
        let plan = plan(ram(GIB), &header(&LINARO_HEADER), 0x90_0000, None, 0x1000).unwrap();
        assert_eq!(plan.kernel, r(0x4008_0000, 0x4008_0000 + 0xa8_7000));
        assert_eq!(plan.entry, 0x4008_0000);
        // 0x40b07000 rounds up to 0x40c00000.
        assert_eq!(plan.device_tree, r(0x40c0_0000, 0x40c0_1000));
        assert_eq!(plan.initrd, None);
    }

    #[test]
    fn legacy_kernel_takes_its_file_size() {
        let legacy = header(&LEGACY_HEADER);
        assert!(legacy.is_legacy());
        let plan = plan(ram(GIB), &legacy, 9_000_000, None, 0x800).unwrap();
        // text_offset 0x80000 assumed; 9,000,000 = 0x895440 bytes.
        assert_eq!(plan.kernel, r(0x4008_0000, 0x4091_5440));
        assert_eq!(plan.device_tree, r(0x40a0_0000, 0x40a0_0800));
    }

    #[test]
    fn a_file_longer_than_image_size_is_covered() {
        let plan = plan(ram(GIB), &made(0, 0x10_0000, 0b1010), 0x18_0000, None, 8).unwrap();
        assert_eq!(plan.kernel, r(0x4000_0000, 0x4018_0000));
    }

    #[test]
    fn ram_base_is_rounded_up_to_2_mib() {
        let ram = r(0x4010_0000, 0x8000_0000);
        let plan = plan(ram, &made(0x1000, 0x20_0000, 0b1010), 0x1000, Some(0), 8).unwrap();
        assert_eq!(plan.kernel, r(0x4020_1000, 0x4040_1000));
        assert_eq!(plan.device_tree, r(0x4060_0000, 0x4060_0008));
        // An empty initrd still gets a (zero-length) place.
        assert_eq!(plan.initrd, Some(r(0x4080_0000, 0x4080_0000)));
    }

    #[test]
    fn device_tree_and_initrd_alignment() {
        for image_size in [1, 0x1000, 0x1f_ffff, 0x20_0000, 0x20_0001, 0x345_6789] {
            let plan = plan(ram(GIB), &made(0, image_size, 0b1010), 64, Some(5), 100).unwrap();
            let dtb = plan.device_tree;
            assert_eq!(dtb.start() % DEVICE_TREE_ALIGN, 0);
            assert_eq!(dtb.start() % (2 * MIB), 0, "{image_size:#x}");
            assert!(dtb.start() >= plan.kernel.end());
            assert!(dtb.start() - plan.kernel.end() < 2 * MIB);
            let initrd = plan.initrd.unwrap();
            assert_eq!(initrd.start() % 4096, 0);
            assert_eq!(initrd.start(), dtb.start() + 2 * MIB);
            assert!(!plan.kernel.overlaps(&dtb) && !dtb.overlaps(&initrd));
        }
    }

    #[test]
    fn exact_fit_and_largest_device_tree() {
        // Kernel 2 MiB, DTB slot 2 MiB, initrd 4 MiB: exactly 8 MiB.
        let kernel = made(0, 2 * MIB, 0b1010);
        let plan = plan(ram(8 * MIB), &kernel, 64, Some(4 * MIB), 2 * MIB).unwrap();
        assert_eq!(plan.initrd.unwrap().end(), RAM_BASE + 8 * MIB);
        assert_eq!(plan.device_tree.size(), DEVICE_TREE_MAX_SIZE);
        assert_eq!(
            super::plan(ram(8 * MIB), &kernel, 64, Some(4 * MIB + 1), 2 * MIB),
            Err(LoadError::DoesNotFit {
                piece: Piece::Initrd,
                start: RAM_BASE + 4 * MIB,
                size: 4 * MIB + 1,
                ram: ram(8 * MIB),
                ram_needed: Some(9 * MIB),
            })
        );
    }

    #[test]
    fn kernel_too_big_for_ram() {
        let error = plan(
            ram(16 * MIB),
            &made(0, 34 * MIB, 0b1010),
            20 * MIB,
            None,
            0x1000,
        )
        .unwrap_err();
        assert_eq!(
            error,
            LoadError::DoesNotFit {
                piece: Piece::Kernel,
                start: 0x4000_0000,
                size: 34 * MIB,
                ram: ram(16 * MIB),
                // Kernel 34 MiB, then the DTB at the 2 MiB boundary 0x42200000.
                ram_needed: Some(35 * MIB),
            }
        );
        assert_eq!(
            error.to_string(),
            "the kernel needs 34 MiB from 0x40000000 but guest RAM ends at 0x41000000; give \
             the guest more memory with --mem (at least 35 MiB)"
        );
    }

    #[test]
    fn device_tree_or_initrd_too_big_for_ram() {
        let kernel = made(0, 15 * MIB, 0b1010);
        let error = plan(ram(16 * MIB), &kernel, 64, None, 2 * MIB).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the device tree needs 2 MiB from 0x41000000 but guest RAM ends at 0x41000000; \
             give the guest more memory with --mem (at least 18 MiB)"
        );
        let error = plan(ram(64 * MIB), &kernel, 64, Some(100 * MIB), 4096).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the initrd needs 100 MiB from 0x41200000 but guest RAM ends at 0x44000000; give \
             the guest more memory with --mem (at least 118 MiB)"
        );
    }

    #[test]
    fn absurd_sizes_do_not_overflow() {
        let huge = made(0, u64::MAX - 0x1000, 0b1010);
        let error = plan(ram(GIB), &huge, 64, None, 8).unwrap_err();
        assert!(matches!(
            error,
            LoadError::DoesNotFit {
                piece: Piece::Kernel,
                ram_needed: None,
                ..
            }
        ));
        assert!(!error.to_string().contains("at least"));
        let far = made(u64::MAX - 3, 16, 0b1010);
        assert!(matches!(
            plan(ram(GIB), &far, 64, None, 8),
            Err(LoadError::DoesNotFit {
                piece: Piece::Kernel,
                ..
            })
        ));
        // RAM at the very top of the address space: no 2 MiB base above it.
        let top = r(u64::MAX - 0x1000, u64::MAX);
        assert!(plan(top, &made(0, 16, 0b1010), 64, None, 8).is_err());
        // A kernel ending just below 2^64: the device tree has nowhere to go.
        let kernel = made(0, u64::MAX - 0x4000_0000 - 0x10, 0b1010);
        let all = r(0x4000_0000, u64::MAX);
        assert!(matches!(
            plan(all, &kernel, 64, Some(u64::MAX), 8),
            Err(LoadError::DoesNotFit {
                piece: Piece::DeviceTree,
                ..
            })
        ));
        assert!(plan(ram(GIB), &made(0, 16, 0b1010), 64, Some(u64::MAX), 8).is_err());
        let empty = r(RAM_BASE, RAM_BASE);
        assert!(plan(empty, &made(0, 16, 0b1010), 64, None, 8).is_err());
    }

    #[test]
    fn initrd_window() {
        // A 40 GiB guest: a 31 GiB initrd after a 1 GiB kernel and the device tree's
        // 2 MiB slot crosses the 32 GiB window from 0x40000000.
        let kernel = made(0, GIB, 0b1010);
        let big = ram(40 * GIB);
        let error = plan(big, &kernel, 64, Some(31 * GIB), 8).unwrap_err();
        assert_eq!(
            error,
            LoadError::InitrdOutsideWindow {
                initrd: r(0x8020_0000, 0x8020_0000 + 31 * GIB),
                window: r(0x4000_0000, 0x4000_0000 + 32 * GIB),
            }
        );
        assert!(error.to_string().contains("use a smaller initrd"));
        // 30 GiB fits.
        assert!(plan(big, &kernel, 64, Some(30 * GIB), 8).is_ok());
    }

    #[test]
    fn refused_kernels() {
        let refusal = |kernel: ImageHeader| plan(ram(GIB), &kernel, 64, None, 8).unwrap_err();
        // flags bit 0: big-endian.
        assert_eq!(refusal(made(0, MIB, 0b1011)), LoadError::BigEndian);
        // flags bits 1-2: 2 = 16K, 3 = 64K.
        assert_eq!(
            refusal(made(0, MIB, 0b1100)),
            LoadError::UnsupportedPageSize {
                page_size: 16 * KIB
            }
        );
        assert_eq!(
            refusal(made(0, MIB, 0b1110)),
            LoadError::UnsupportedPageSize {
                page_size: 64 * KIB
            }
        );
        assert_eq!(
            refusal(made(0x80002, MIB, 0b1010)),
            LoadError::MisalignedTextOffset {
                text_offset: 0x80002
            }
        );
        assert_eq!(
            plan(ram(GIB), &made(0, MIB, 0b1010), 64, None, 2 * MIB + 1),
            Err(LoadError::DeviceTreeTooLarge { size: 2 * MIB + 1 })
        );
        // Page size unspecified (0) is accepted: it predates the field.
        assert!(plan(ram(GIB), &made(0, MIB, 0b1000), 64, None, 8).is_ok());
    }

    #[test]
    fn messages() {
        assert_eq!(
            LoadError::BigEndian.to_string(),
            "the kernel is big-endian (CONFIG_CPU_BIG_ENDIAN); Aerie runs little-endian \
             guests only"
        );
        assert_eq!(
            LoadError::UnsupportedPageSize {
                page_size: 64 * KIB
            }
            .to_string(),
            "the kernel uses 64 KiB pages; Aerie runs kernels built with 4 KiB pages \
             (CONFIG_ARM64_4K_PAGES)"
        );
        assert_eq!(
            LoadError::MisalignedTextOffset { text_offset: 0x3 }.to_string(),
            "the kernel's text_offset 0x3 is not a multiple of 4: not a valid arm64 Image"
        );
        assert_eq!(
            LoadError::DeviceTreeTooLarge { size: 3_000_000 }.to_string(),
            "the guest's device tree is 3000000 bytes, more than the 2 MiB a kernel accepts"
        );
    }

    /// QEMU `virt` with 1218 MiB: Aerie's image and heap low, the bundle 128 MiB in
    /// with the kernel's bytes 2 MiB into it, as `bundle::write_aligned` makes it.
    fn qemu_like() -> (RangeSet<8>, Range, Range) {
        let mut free = RangeSet::<8>::new();
        free.insert(r(0x4000_0000, 0x8c20_0000)).unwrap();
        let bundle = r(0x4800_0000, 0x4a40_0000);
        for taken in [r(0x4020_0000, 0x4140_0000), bundle] {
            free.remove(taken).unwrap();
        }
        (free, bundle, r(0x4820_0000, 0x4a1c_0000))
    }

    #[test]
    fn guest_ram_goes_around_a_kernel_left_on_a_2_mib_boundary() {
        let (free, bundle, kernel) = qemu_like();
        assert_eq!(
            ram_around_kernel(&free, bundle, kernel, 0, GIB),
            Some(r(0x4820_0000, 0x4820_0000 + GIB))
        );
        // text_offset 0x80000: the base is 512 KiB below the kernel's bytes.
        let shifted = r(0x4828_0000, 0x4a1c_0000);
        assert_eq!(
            ram_around_kernel(&free, bundle, shifted, 0x8_0000, GIB),
            Some(r(0x4820_0000, 0x4820_0000 + GIB))
        );
    }

    #[test]
    fn guest_ram_is_not_put_around_a_kernel_it_cannot_hold_safely() {
        let (free, bundle, kernel) = qemu_like();
        // Not on a 2 MiB boundary (QEMU with less RAM puts the bundle 4 KiB aligned).
        let unaligned = r(0x4820_1000, 0x4a1c_1000);
        assert_eq!(ram_around_kernel(&free, bundle, unaligned, 0, GIB), None);
        assert_eq!(ram_around_kernel(&free, bundle, kernel, 0x1000, GIB), None);
        // Past the end of RAM.
        assert_eq!(ram_around_kernel(&free, bundle, kernel, 0, 2 * GIB), None);
        // Smaller than the kernel.
        assert_eq!(ram_around_kernel(&free, bundle, kernel, 0, 2 * MIB), None);
        // Over memory that is not free (Aerie's heap, say).
        let mut busy = free.clone();
        busy.remove(r(0x6000_0000, 0x6000_1000)).unwrap();
        assert_eq!(ram_around_kernel(&busy, bundle, kernel, 0, GIB), None);
        // A "kernel" outside the bundle.
        let elsewhere = r(0x5000_0000, 0x5100_0000);
        assert_eq!(ram_around_kernel(&free, bundle, elsewhere, 0, GIB), None);
        // text_offset above the kernel's address.
        assert_eq!(
            ram_around_kernel(&free, bundle, kernel, u64::MAX, GIB),
            None
        );
    }
}
