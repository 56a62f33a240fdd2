//! The arm64 Linux `Image` header: where to load a kernel and how much room it needs.
//!
//! An arm64 kernel `Image` (and anything that boots like one, such as Aerie itself)
//! starts with a 64-byte header, all fields little-endian (Linux
//! `Documentation/arch/arm64/booting.rst`, section 4):
//!
//! ```text
//! offset  size  field
//!   0      4    code0        executable code ("MZ" when the kernel has an EFI stub)
//!   4      4    code1        executable code
//!   8      8    text_offset  load offset from a 2 MiB aligned base
//!  16      8    image_size   bytes the kernel needs from its load address, BSS included
//!  24      8    flags        bit 0 big-endian, bits 1-2 page size, bit 3 placement
//!  32     24    res2..res4   reserved
//!  56      4    magic        0x644d5241, "ARM\x64"
//!  60      4    res5         offset of the PE header (EFI stub), or 0
//! ```
//!
//! Kernels before 3.17 leave `image_size` zero; their `text_offset` is then 0x80000
//! (and of unspecified endianness), which [`ImageHeader::effective_text_offset`]
//! accounts for.

use core::fmt;

/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 64;
/// The header magic, `"ARM\x64"` read as a little-endian `u32`.
pub const MAGIC: u32 = 0x644d_5241;
/// The `text_offset` of kernels too old to fill in `image_size` (before Linux 3.17).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// Byte offsets of the header fields.
mod offset {
    pub const CODE0: usize = 0;
    pub const CODE1: usize = 4;
    pub const TEXT_OFFSET: usize = 8;
    pub const IMAGE_SIZE: usize = 16;
    pub const FLAGS: usize = 24;
    pub const MAGIC: usize = 56;
    pub const RES5: usize = 60;
    /// Where an EFI zboot image (a compressed kernel wrapped in an EFI
    /// decompressor) keeps its `"zimg"` tag.
    pub const ZBOOT_TAG: usize = 4;
}

/// Bits of the `flags` field.
mod flag {
    /// Bit 0: the kernel is big-endian.
    pub const BIG_ENDIAN: u64 = 1 << 0;
    /// Bits 1-2: the kernel's page size (0 unspecified, 1 4K, 2 16K, 3 64K).
    pub const PAGE_SIZE_SHIFT: u32 = 1;
    /// Mask of the page size field after shifting.
    pub const PAGE_SIZE_MASK: u64 = 0b11;
    pub const PAGE_SIZE_4K: u64 = 1;
    pub const PAGE_SIZE_16K: u64 = 2;
    pub const PAGE_SIZE_64K: u64 = 3;
    /// Bit 3: the kernel may be placed anywhere in physical memory (otherwise as
    /// close as possible to the start of DRAM).
    pub const PLACEMENT_ANYWHERE: u64 = 1 << 3;
}

/// The first two bytes of a PE/COFF (EFI) executable.
const MZ: [u8; 2] = *b"MZ";
/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The tag of an EFI zboot image at [`offset::ZBOOT_TAG`].
const ZBOOT_TAG: [u8; 4] = *b"zimg";

/// Why a file is not a usable arm64 `Image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The file is shorter than the 64-byte header.
    TooShort {
        /// The file's length in bytes.
        len: usize,
    },
    /// The file is gzip-compressed, like Debian's `vmlinuz`.
    Gzip,
    /// The file is an EFI zboot image (a compressed kernel wrapped in an EFI
    /// decompressor, like Fedora's `vmlinuz`).
    EfiZboot,
    /// The magic at offset 56 is wrong.
    BadMagic {
        /// The little-endian `u32` found at offset 56.
        found: u32,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => write!(
                f,
                "not an arm64 Image: the file is {len} bytes long, shorter than the \
                 {HEADER_SIZE}-byte Image header"
            ),
            Self::Gzip => f.write_str(
                "the kernel is gzip-compressed (a vmlinuz?): decompress it first, \
                 e.g. `gunzip -c vmlinuz > Image`",
            ),
            Self::EfiZboot => f.write_str(
                "the kernel is an EFI zboot image (a compressed vmlinuz with an EFI \
                 decompressor): use the uncompressed arch/arm64/boot/Image instead",
            ),
            Self::BadMagic { found } => write!(
                f,
                "not an arm64 Image: magic at offset {} is {found:#010x}; expected \
                 'ARM\\x64' ({MAGIC:#010x})",
                offset::MAGIC
            ),
        }
    }
}

/// A parsed arm64 `Image` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// The first instruction word (or `"MZ"` and padding for an EFI stub kernel).
    pub code0: u32,
    /// The second instruction word.
    pub code1: u32,
    /// Load offset from a 2 MiB aligned base, as written in the header (see
    /// [`ImageHeader::effective_text_offset`]).
    pub text_offset: u64,
    /// Bytes the kernel occupies from its load address, BSS included; 0 for kernels
    /// before 3.17 (see [`ImageHeader::effective_image_size`]).
    pub image_size: u64,
    /// Informative flags (endianness, page size, placement).
    pub flags: u64,
    /// `res5`: the offset of the PE header in an EFI stub kernel, else 0.
    pub pe_header_offset: u32,
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl ImageHeader {
    /// Parses the header at the start of `bytes` (the kernel file or its first bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        if bytes.starts_with(&GZIP_MAGIC) {
            return Err(ImageError::Gzip);
        }
        if bytes.starts_with(&MZ)
            && bytes.get(offset::ZBOOT_TAG..offset::ZBOOT_TAG + 4) == Some(&ZBOOT_TAG)
        {
            return Err(ImageError::EfiZboot);
        }
        if bytes.len() < HEADER_SIZE {
            return Err(ImageError::TooShort { len: bytes.len() });
        }
        let magic = le_u32(bytes, offset::MAGIC);
        if magic != MAGIC {
            return Err(ImageError::BadMagic { found: magic });
        }
        Ok(Self {
            code0: le_u32(bytes, offset::CODE0),
            code1: le_u32(bytes, offset::CODE1),
            text_offset: le_u64(bytes, offset::TEXT_OFFSET),
            image_size: le_u64(bytes, offset::IMAGE_SIZE),
            flags: le_u64(bytes, offset::FLAGS),
            pe_header_offset: le_u32(bytes, offset::RES5),
        })
    }

    /// Whether the kernel is big-endian (flags bit 0).
    pub const fn is_big_endian(&self) -> bool {
        self.flags & flag::BIG_ENDIAN != 0
    }

    /// The kernel's page size in bytes (flags bits 1-2), or `None` if unspecified.
    pub const fn page_size(&self) -> Option<u64> {
        match (self.flags >> flag::PAGE_SIZE_SHIFT) & flag::PAGE_SIZE_MASK {
            flag::PAGE_SIZE_4K => Some(4 << 10),
            flag::PAGE_SIZE_16K => Some(16 << 10),
            flag::PAGE_SIZE_64K => Some(64 << 10),
            // 0: unspecified.
            _ => None,
        }
    }

    /// Whether the 2 MiB aligned base may be anywhere in physical memory (flags bit 3);
    /// if not, it should be as close as possible to the start of DRAM.
    pub const fn placement_anywhere(&self) -> bool {
        self.flags & flag::PLACEMENT_ANYWHERE != 0
    }

    /// Whether the kernel carries an EFI stub: it starts with `"MZ"` and `res5` points
    /// at a PE header.
    pub const fn is_efi_stub(&self) -> bool {
        let first_two = self.code0.to_le_bytes();
        self.pe_header_offset != 0 && first_two[0] == MZ[0] && first_two[1] == MZ[1]
    }

    /// Whether the header predates Linux 3.17 (`image_size` is zero).
    pub const fn is_legacy(&self) -> bool {
        self.image_size == 0
    }

    /// The offset from a 2 MiB aligned base at which to load the kernel: `text_offset`,
    /// or 0x80000 for a pre-3.17 kernel whose `text_offset` cannot be trusted.
    pub const fn effective_text_offset(&self) -> u64 {
        if self.is_legacy() {
            LEGACY_TEXT_OFFSET
        } else {
            self.text_offset
        }
    }

    /// The bytes to reserve from the load address: `image_size`, or the file length
    /// for a pre-3.17 kernel (which does not say how large its BSS is).
    pub const fn effective_image_size(&self, file_len: u64) -> u64 {
        if self.is_legacy() {
            file_len
        } else {
            self.image_size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    /// A header built field by field from booting.rst's table, with explicit offsets.
    fn header(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        // code0: `b +0x40` style branch (any value is fine), code1: 0.
        h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn constants() {
        assert_eq!(HEADER_SIZE, 64);
        assert_eq!(MAGIC.to_le_bytes(), *b"ARM\x64");
        assert_eq!(LEGACY_TEXT_OFFSET, 512 * 1024);
    }

    #[test]
    fn hand_built_header() {
        // 4K pages (1 << 1) and placement anywhere (1 << 3): flags 0b1010, as modern
        // kernels set them.
        let h = ImageHeader::parse(&header(0, 0x0240_0000, 0b1010)).unwrap();
        assert_eq!(h.code0, 0x1400_0010);
        assert_eq!(h.code1, 0);
        assert_eq!(h.text_offset, 0);
        assert_eq!(h.image_size, 0x0240_0000);
        assert_eq!(h.flags, 0b1010);
        assert!(!h.is_big_endian());
        assert_eq!(h.page_size(), Some(4096));
        assert!(h.placement_anywhere());
        assert!(!h.is_efi_stub());
        assert!(!h.is_legacy());
        assert_eq!(h.effective_text_offset(), 0);
        assert_eq!(h.effective_image_size(123), 0x0240_0000);
    }

    #[test]
    fn flags_decoding() {
        let flags = |f| ImageHeader::parse(&header(0, 1, f)).unwrap();
        assert!(flags(0b0001).is_big_endian());
        assert_eq!(flags(0b0000).page_size(), None);
        assert_eq!(flags(0b0010).page_size(), Some(4 * 1024));
        assert_eq!(flags(0b0100).page_size(), Some(16 * 1024));
        assert_eq!(flags(0b0110).page_size(), Some(64 * 1024));
        assert!(!flags(0b0110).placement_anywhere());
        assert!(flags(0b1000).placement_anywhere());
    }

    #[test]
    fn pre_3_17_kernel() {
        // image_size = 0: text_offset is assumed to be 0x80000 whatever it says, and the
        // size is the file's.
        let h = ImageHeader::parse(&header(0xdead, 0, 0)).unwrap();
        assert!(h.is_legacy());
        assert_eq!(h.effective_text_offset(), 0x80000);
        assert_eq!(h.effective_image_size(9_000_000), 9_000_000);
        // A 3.17+ kernel with text_offset 0x80000 keeps it.
        let h = ImageHeader::parse(&header(0x80000, 0x100_0000, 0b1010)).unwrap();
        assert_eq!(h.effective_text_offset(), 0x80000);
    }

    #[test]
    fn efi_stub() {
        let mut h = header(0, 0x100_0000, 0b1010);
        h[0..2].copy_from_slice(b"MZ");
        // Without a PE header offset it is not an EFI stub.
        assert!(!ImageHeader::parse(&h).unwrap().is_efi_stub());
        h[60..64].copy_from_slice(&0x40u32.to_le_bytes());
        let parsed = ImageHeader::parse(&h).unwrap();
        assert_eq!(parsed.pe_header_offset, 0x40);
        assert!(parsed.is_efi_stub());
    }

    #[test]
    fn longer_input_is_fine() {
        let mut file = [0u8; 4096];
        file[..64].copy_from_slice(&header(0, 4096, 0b1010));
        assert_eq!(ImageHeader::parse(&file).unwrap().image_size, 4096);
    }

    #[test]
    fn too_short() {
        let h = header(0, 1, 0);
        assert_eq!(
            ImageHeader::parse(&h[..63]),
            Err(ImageError::TooShort { len: 63 })
        );
        assert_eq!(
            ImageHeader::parse(&[]),
            Err(ImageError::TooShort { len: 0 })
        );
        assert_eq!(
            ImageError::TooShort { len: 10 }.to_string(),
            "not an arm64 Image: the file is 10 bytes long, shorter than the 64-byte Image header"
        );
    }

    #[test]
    fn bad_magic() {
        let mut h = header(0, 1, 0);
        h[56..60].copy_from_slice(b"ARM\x00");
        assert_eq!(
            ImageHeader::parse(&h),
            Err(ImageError::BadMagic { found: 0x004d_5241 })
        );
        assert_eq!(
            ImageError::BadMagic { found: 0x004d_5241 }.to_string(),
            "not an arm64 Image: magic at offset 56 is 0x004d5241; expected 'ARM\\x64' (0x644d5241)"
        );
        // An ELF file (vmlinux instead of Image).
        let mut elf = [0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(
            ImageHeader::parse(&elf),
            Err(ImageError::BadMagic { found: 0 })
        );
    }

    #[test]
    fn compressed_kernels_are_recognised() {
        // gzip: 1f 8b 08 (deflate), as at the start of Debian's vmlinuz.
        let gz = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0];
        assert_eq!(ImageHeader::parse(&gz), Err(ImageError::Gzip));
        assert!(ImageError::Gzip.to_string().contains("gunzip"));
        // EFI zboot: "MZ", two bytes, then "zimg".
        let mut zboot = [0u8; 64];
        zboot[..8].copy_from_slice(b"MZ\0\0zimg");
        assert_eq!(ImageHeader::parse(&zboot), Err(ImageError::EfiZboot));
    }
}
