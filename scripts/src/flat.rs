//! ELF to flat binary: what `objcopy -O binary` does for Aerie, in Rust.
//!
//! Every `PT_LOAD` segment with file bytes is placed at `p_paddr - lowest p_paddr`,
//! gaps are zero-filled and the output ends at the last file-backed byte. `.bss` is not
//! in the output: the arm64 Image header's `image_size` covers it.

use std::fmt;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

/// The largest span of loadable bytes accepted; more means a broken link layout.
const MAX_SPAN: u64 = 256 << 20;

/// A flat binary and where its first byte belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatImage {
    /// The lowest physical address of a file-backed segment.
    pub base: u64,
    /// The bytes, starting at `base`.
    pub bytes: Vec<u8>,
}

/// Why an ELF cannot become a flat binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlatError {
    /// Not a readable 64-bit little-endian ELF.
    Malformed(String),
    /// Built for another machine.
    NotAarch64,
    /// No `PT_LOAD` segment has file bytes.
    NothingToLoad,
    /// Two segments claim the same bytes.
    Overlap {
        /// Physical address where the later segment starts.
        paddr: u64,
    },
    /// The segments span more than 256 MiB.
    TooLarge {
        /// The span in bytes.
        span: u64,
    },
}

impl fmt::Display for FlatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlatError::Malformed(why) => write!(f, "not a valid 64-bit little-endian ELF: {why}"),
            FlatError::NotAarch64 => write!(f, "the ELF is not for aarch64"),
            FlatError::NothingToLoad => write!(f, "the ELF has no loadable bytes"),
            FlatError::Overlap { paddr } => {
                write!(
                    f,
                    "loadable segments overlap at physical address {paddr:#x}"
                )
            }
            FlatError::TooLarge { span } => write!(
                f,
                "loadable segments span {span:#x} bytes (more than {MAX_SPAN:#x}): check the \
                 linker script's physical addresses"
            ),
        }
    }
}

impl std::error::Error for FlatError {}

/// Converts an aarch64 ELF into the flat image of its loadable segments.
pub fn elf_to_flat(data: &[u8]) -> Result<FlatImage, FlatError> {
    let malformed = |e: object::Error| FlatError::Malformed(e.to_string());
    let header = elf::FileHeader64::<object::LittleEndian>::parse(data).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    if header.e_machine(endian) != elf::EM_AARCH64 {
        return Err(FlatError::NotAarch64);
    }
    let mut segments = Vec::new();
    for segment in header.program_headers(endian, data).map_err(malformed)? {
        if segment.p_type(endian) != elf::PT_LOAD || segment.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = segment.data(endian, data).map_err(|()| {
            FlatError::Malformed("a segment's file range is outside the file".to_string())
        })?;
        segments.push((segment.p_paddr(endian), bytes));
    }
    segments.sort_by_key(|(paddr, _)| *paddr);
    let Some(&(base, _)) = segments.first() else {
        return Err(FlatError::NothingToLoad);
    };
    let mut flat = Vec::new();
    for (paddr, bytes) in segments {
        let offset = paddr - base;
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or(FlatError::TooLarge { span: u64::MAX })?;
        if end > MAX_SPAN {
            return Err(FlatError::TooLarge { span: end });
        }
        if offset < flat.len() as u64 {
            return Err(FlatError::Overlap { paddr });
        }
        flat.resize(offset as usize, 0);
        flat.extend_from_slice(bytes);
    }
    Ok(FlatImage { base, bytes: flat })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loadable segment of a synthetic ELF.
    struct Segment {
        kind: u32,
        paddr: u64,
        bytes: Vec<u8>,
        memsz: u64,
    }

    fn load(paddr: u64, bytes: &[u8]) -> Segment {
        Segment {
            kind: 1,
            paddr,
            bytes: bytes.to_vec(),
            memsz: bytes.len() as u64,
        }
    }

    /// Writes a minimal ELF64 little-endian executable: header, program headers, then
    /// each segment's bytes in order.
    fn synthetic_elf(machine: u16, segments: &[Segment]) -> Vec<u8> {
        const EHSIZE: u64 = 64;
        const PHENTSIZE: u64 = 56;
        let mut elf = Vec::new();
        elf.extend_from_slice(b"\x7fELF");
        elf.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, SysV
        elf.extend_from_slice(&[0; 8]);
        elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf.extend_from_slice(&machine.to_le_bytes());
        elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
        elf.extend_from_slice(&segments.first().map_or(0, |s| s.paddr).to_le_bytes()); // e_entry
        elf.extend_from_slice(&EHSIZE.to_le_bytes()); // e_phoff
        elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        elf.extend_from_slice(&(EHSIZE as u16).to_le_bytes());
        elf.extend_from_slice(&(PHENTSIZE as u16).to_le_bytes());
        elf.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
        assert_eq!(elf.len() as u64, EHSIZE);
        let mut offset = EHSIZE + PHENTSIZE * segments.len() as u64;
        for segment in segments {
            elf.extend_from_slice(&segment.kind.to_le_bytes());
            elf.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
            elf.extend_from_slice(&offset.to_le_bytes());
            elf.extend_from_slice(&(segment.paddr + 0x1000).to_le_bytes()); // p_vaddr
            elf.extend_from_slice(&segment.paddr.to_le_bytes());
            elf.extend_from_slice(&(segment.bytes.len() as u64).to_le_bytes());
            elf.extend_from_slice(&segment.memsz.to_le_bytes());
            elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
            offset += segment.bytes.len() as u64;
        }
        for segment in segments {
            elf.extend_from_slice(&segment.bytes);
        }
        elf
    }

    const AARCH64: u16 = 183;

    #[test]
    fn places_segments_by_physical_address_and_fills_gaps() {
        let elf = synthetic_elf(
            AARCH64,
            &[load(0x4020_0010, b"data"), load(0x4020_0000, b"code")],
        );
        let flat = elf_to_flat(&elf).unwrap();
        assert_eq!(flat.base, 0x4020_0000);
        let mut expected = b"code".to_vec();
        expected.resize(0x10, 0);
        expected.extend_from_slice(b"data");
        assert_eq!(flat.bytes, expected);
    }

    #[test]
    fn bss_and_other_segments_are_left_out() {
        let mut bss = load(0x4030_0000, b"");
        bss.memsz = 0x1000;
        let mut with_bss_tail = load(0x4020_0000, b"text");
        with_bss_tail.memsz = 0x100;
        let note = Segment {
            kind: 4,
            paddr: 0x5000_0000,
            bytes: b"note".to_vec(),
            memsz: 4,
        };
        let elf = synthetic_elf(AARCH64, &[with_bss_tail, bss, note]);
        let flat = elf_to_flat(&elf).unwrap();
        assert_eq!(flat.bytes, b"text");
    }

    #[test]
    fn rejects_what_cannot_be_flattened() {
        let x86 = synthetic_elf(62, &[load(0x1000, b"x")]);
        assert_eq!(elf_to_flat(&x86), Err(FlatError::NotAarch64));
        let empty = synthetic_elf(AARCH64, &[load(0x1000, b"")]);
        assert_eq!(elf_to_flat(&empty), Err(FlatError::NothingToLoad));
        let overlap = synthetic_elf(AARCH64, &[load(0x1000, b"abcd"), load(0x1002, b"ef")]);
        assert_eq!(
            elf_to_flat(&overlap),
            Err(FlatError::Overlap { paddr: 0x1002 })
        );
        let far = synthetic_elf(AARCH64, &[load(0x1000, b"a"), load(0x8000_0000, b"b")]);
        assert!(matches!(elf_to_flat(&far), Err(FlatError::TooLarge { .. })));
        assert!(matches!(
            elf_to_flat(b"not an elf"),
            Err(FlatError::Malformed(_))
        ));
        let mut truncated = synthetic_elf(AARCH64, &[load(0x1000, b"abcd")]);
        truncated.truncate(truncated.len() - 2);
        assert!(matches!(
            elf_to_flat(&truncated),
            Err(FlatError::Malformed(_))
        ));
    }
}
