//! Structural validation of a flattened device tree (DTB) before anything reads it.
//!
//! The device tree comes from firmware, a boot loader or a user's command line, so
//! Aerie treats it as untrusted input. The `fdt` crate that reads it assumes a
//! well-formed blob and panics (or indexes out of bounds) on many malformed ones. This
//! module walks the whole blob once, checks every offset, length, token and string,
//! and only a blob that passes is handed to `fdt`. It also removes `FDT_NOP` tokens
//! (left behind by libfdt edits), which the `fdt` crate does not skip everywhere.
//!
//! Format reference: the Devicetree Specification v0.4, chapter 5 ("Flattened
//! Devicetree (DTB) Format").

use core::fmt;

/// `0xd00dfeed`, the first word of every DTB.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the fixed DTB header in bytes.
pub const HEADER_SIZE: usize = 40;
/// The largest device tree Aerie accepts. Real trees are well under 1 MiB (QEMU pads
/// its trees to exactly 1 MiB); a larger `totalsize` almost certainly means garbage.
pub const MAX_TOTAL_SIZE: usize = 2 * 1024 * 1024;
/// The deepest node nesting Aerie accepts (the root is depth 1). Real trees stay
/// below 10; the limit bounds recursion in every reader.
pub const MAX_DEPTH: usize = 32;

/// The oldest header version whose layout Aerie reads (version 16 added nothing Aerie
/// needs beyond version 17's `size_dt_struct`, but 17 is what every tool writes).
const MIN_VERSION: u32 = 16;
/// The last version Aerie understands; a blob must be backward compatible with it.
const SUPPORTED_VERSION: u32 = 17;

/// Structure block token: start of a node, followed by its NUL-terminated name.
const FDT_BEGIN_NODE: u32 = 0x1;
/// Structure block token: end of a node.
const FDT_END_NODE: u32 = 0x2;
/// Structure block token: a property (length, name offset, value).
const FDT_PROP: u32 = 0x3;
/// Structure block token: nothing, to be skipped.
const FDT_NOP: u32 = 0x4;
/// Structure block token: end of the structure block.
const FDT_END: u32 = 0x9;

/// The DTB header fields, decoded from big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtbHeader {
    /// Total size of the blob in bytes.
    pub total_size: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: u32,
    /// Format version.
    pub version: u32,
    /// Oldest version this blob is backward compatible with.
    pub last_comp_version: u32,
    /// Physical ID of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Length of the strings block.
    pub size_dt_strings: u32,
    /// Length of the structure block.
    pub size_dt_struct: u32,
}

/// Why a blob is not an acceptable device tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbError {
    /// Fewer bytes than a header.
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first word is not `0xd00dfeed`.
    BadMagic {
        /// The word found instead.
        found: u32,
    },
    /// A header version Aerie cannot read.
    UnsupportedVersion {
        /// The blob's version.
        version: u32,
        /// The blob's last compatible version.
        last_comp_version: u32,
    },
    /// `totalsize` is smaller than a header or larger than the limit / the buffer.
    BadTotalSize {
        /// The header's `totalsize`.
        total_size: u32,
        /// How many bytes are really available (or the limit).
        available: usize,
    },
    /// A block does not lie inside the blob, or is misaligned.
    BadBlock {
        /// Which block.
        block: &'static str,
    },
    /// The memory reservation list has no terminating zero entry.
    UnterminatedReservations,
    /// A reservation's address plus size wraps around the address space.
    ReservationWraps {
        /// Index of the entry.
        index: usize,
    },
    /// A structure token that is not allowed at this place.
    UnexpectedToken {
        /// Byte offset inside the structure block.
        offset: usize,
        /// The token found.
        token: u32,
    },
    /// The structure block ends in the middle of something.
    Truncated {
        /// Byte offset inside the structure block.
        offset: usize,
    },
    /// A node name without a terminating NUL, or not UTF-8.
    BadNodeName {
        /// Byte offset inside the structure block.
        offset: usize,
    },
    /// A property's name offset is outside the strings block, or the name is not a
    /// NUL-terminated UTF-8 string.
    BadPropertyName {
        /// Byte offset of the property inside the structure block.
        offset: usize,
    },
    /// A property value runs past the structure block.
    PropertyTooLong {
        /// Byte offset of the property inside the structure block.
        offset: usize,
    },
    /// A property after a child node, which the format forbids.
    PropertyAfterChild {
        /// Byte offset of the property inside the structure block.
        offset: usize,
    },
    /// Nodes nested deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Byte offset inside the structure block.
        offset: usize,
    },
    /// The root node is missing, named, or followed by another top-level node.
    BadRoot,
    /// `FDT_NOP` tokens remain; readers need them removed first
    /// ([`validate_and_remove_nops`]).
    ContainsNops,
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => {
                write!(
                    f,
                    "only {len} bytes, less than the {HEADER_SIZE}-byte header"
                )
            }
            Self::BadMagic { found } => {
                write!(f, "bad magic {found:#010x} (expected {FDT_MAGIC:#010x})")
            }
            Self::UnsupportedVersion {
                version,
                last_comp_version,
            } => write!(
                f,
                "unsupported format version {version} (compatible back to \
                 {last_comp_version}; Aerie reads {MIN_VERSION}..={SUPPORTED_VERSION})"
            ),
            Self::BadTotalSize {
                total_size,
                available,
            } => {
                write!(
                    f,
                    "header says {total_size} bytes but {available} are acceptable"
                )
            }
            Self::BadBlock { block } => write!(f, "the {block} block is outside the blob"),
            Self::UnterminatedReservations => {
                write!(f, "the memory reservation list has no terminating entry")
            }
            Self::ReservationWraps { index } => {
                write!(
                    f,
                    "memory reservation {index} wraps around the address space"
                )
            }
            Self::UnexpectedToken { offset, token } => {
                write!(
                    f,
                    "unexpected token {token:#x} at structure offset {offset:#x}"
                )
            }
            Self::Truncated { offset } => {
                write!(f, "structure block truncated at offset {offset:#x}")
            }
            Self::BadNodeName { offset } => write!(f, "bad node name at offset {offset:#x}"),
            Self::BadPropertyName { offset } => {
                write!(
                    f,
                    "bad property name for the property at offset {offset:#x}"
                )
            }
            Self::PropertyTooLong { offset } => {
                write!(
                    f,
                    "property at offset {offset:#x} runs past the structure block"
                )
            }
            Self::PropertyAfterChild { offset } => {
                write!(f, "property at offset {offset:#x} follows a child node")
            }
            Self::TooDeep { offset } => {
                write!(
                    f,
                    "nodes nested deeper than {MAX_DEPTH} at offset {offset:#x}"
                )
            }
            Self::BadRoot => write!(f, "missing or malformed root node"),
            Self::ContainsNops => write!(f, "NOP tokens were not removed before reading"),
        }
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    let high = u64::from(be32(bytes, at)?);
    let low = u64::from(be32(bytes, at.checked_add(4)?)?);
    Some(high << 32 | low)
}

/// Decodes the header and checks the magic and version. `bytes` needs to hold only
/// the first [`HEADER_SIZE`] bytes, so a loader can learn `total_size` first.
pub fn read_header(bytes: &[u8]) -> Result<DtbHeader, DtbError> {
    if bytes.len() < HEADER_SIZE {
        return Err(DtbError::TooShort { len: bytes.len() });
    }
    let field = |index: usize| be32(bytes, index * 4).unwrap_or(0);
    let magic = field(0);
    if magic != FDT_MAGIC {
        return Err(DtbError::BadMagic { found: magic });
    }
    let header = DtbHeader {
        total_size: field(1),
        off_dt_struct: field(2),
        off_dt_strings: field(3),
        off_mem_rsvmap: field(4),
        version: field(5),
        last_comp_version: field(6),
        boot_cpuid_phys: field(7),
        size_dt_strings: field(8),
        size_dt_struct: field(9),
    };
    if header.version < MIN_VERSION || header.last_comp_version > SUPPORTED_VERSION {
        return Err(DtbError::UnsupportedVersion {
            version: header.version,
            last_comp_version: header.last_comp_version,
        });
    }
    let total = header.total_size as usize;
    if !(HEADER_SIZE..=MAX_TOTAL_SIZE).contains(&total) {
        return Err(DtbError::BadTotalSize {
            total_size: header.total_size,
            available: MAX_TOTAL_SIZE,
        });
    }
    Ok(header)
}

/// Checks the whole blob. On success every reader may index the blob freely: all
/// blocks lie inside `total_size`, every token is well placed, every name is UTF-8.
/// `blob` may be longer than the tree; only `total_size` bytes are examined.
pub fn validate(blob: &[u8]) -> Result<DtbHeader, DtbError> {
    check(blob).map(|(header, _)| header)
}

/// Like [`validate`], and also refuses blobs that still contain `FDT_NOP` tokens,
/// which the `fdt` crate does not skip everywhere.
pub fn validate_for_reading(blob: &[u8]) -> Result<DtbHeader, DtbError> {
    match check(blob)? {
        (header, 0) => Ok(header),
        _ => Err(DtbError::ContainsNops),
    }
}

/// A copy of a valid tree cut to the bytes its blocks use, with `total_size` set to
/// that length: loaders often leave a tree room to grow (QEMU's is 1 MiB for a few
/// kilobytes of content), which a copy need not carry.
pub fn trimmed_copy(blob: &[u8]) -> Result<alloc::vec::Vec<u8>, DtbError> {
    let header = validate(blob)?;
    let mut reservations_end = header.off_mem_rsvmap as usize;
    // Validated: the list is terminated inside the blob.
    while be64(blob, reservations_end) != Some(0) || be64(blob, reservations_end + 8) != Some(0) {
        reservations_end += 16;
    }
    let used = [
        reservations_end + 16,
        (header.off_dt_struct + header.size_dt_struct) as usize,
        (header.off_dt_strings + header.size_dt_strings) as usize,
    ]
    .into_iter()
    .max()
    .unwrap_or(HEADER_SIZE)
    .max(HEADER_SIZE);
    let mut copy = blob[..used].to_vec();
    copy[4..8].copy_from_slice(&(used as u32).to_be_bytes());
    Ok(copy)
}

/// Validates, and counts the `FDT_NOP` tokens.
fn check(blob: &[u8]) -> Result<(DtbHeader, usize), DtbError> {
    let header = read_header(blob)?;
    let total = header.total_size as usize;
    if blob.len() < total {
        return Err(DtbError::BadTotalSize {
            total_size: header.total_size,
            available: blob.len(),
        });
    }
    let blob = &blob[..total];
    let structs = block(
        blob,
        header.off_dt_struct,
        header.size_dt_struct,
        4,
        "structure",
    )?;
    let strings = block(
        blob,
        header.off_dt_strings,
        header.size_dt_strings,
        1,
        "strings",
    )?;
    check_reservations(blob, header.off_mem_rsvmap as usize)?;
    let nops = check_structure(structs, strings)?;
    Ok((header, nops))
}

/// Validates the blob, then deletes every `FDT_NOP` token from the structure block by
/// moving the rest up, and shrinks `size_dt_struct` to match. Returns how many tokens
/// were removed. The blob stays a valid device tree with the same content.
pub fn validate_and_remove_nops(blob: &mut [u8]) -> Result<usize, DtbError> {
    let header = validate(blob)?;
    let start = header.off_dt_struct as usize;
    let end = start + header.size_dt_struct as usize;
    let mut read = start;
    let mut write = start;
    let mut removed = 0;
    // The structure was validated, so every token and length below is in bounds.
    while read < end {
        let token = be32(blob, read).ok_or(DtbError::Truncated {
            offset: read - start,
        })?;
        let length = token_length(blob, read, end)?;
        if token == FDT_NOP {
            removed += 1;
        } else {
            blob.copy_within(read..read + length, write);
            write += length;
        }
        read += length;
        if token == FDT_END {
            break;
        }
    }
    if removed > 0 {
        blob[write..end].fill(0);
        let new_size = (write - start) as u32;
        blob[36..40].copy_from_slice(&new_size.to_be_bytes());
    }
    Ok(removed)
}

/// Length in bytes of the token at `at` (with its payload and padding).
fn token_length(blob: &[u8], at: usize, end: usize) -> Result<usize, DtbError> {
    let truncated = DtbError::Truncated { offset: at };
    let token = be32(blob, at).ok_or(truncated)?;
    let length = match token {
        FDT_BEGIN_NODE => {
            let name = blob.get(at + 4..end).ok_or(truncated)?;
            let nul = name.iter().position(|&b| b == 0).ok_or(truncated)?;
            4 + align4(nul + 1)
        }
        FDT_PROP => {
            let value_len = be32(blob, at + 4).ok_or(truncated)? as usize;
            12 + align4(value_len)
        }
        _ => 4,
    };
    Ok(length)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn block<'a>(
    blob: &'a [u8],
    offset: u32,
    size: u32,
    align: usize,
    name: &'static str,
) -> Result<&'a [u8], DtbError> {
    let (offset, size) = (offset as usize, size as usize);
    if offset < HEADER_SIZE || offset % align != 0 {
        return Err(DtbError::BadBlock { block: name });
    }
    let end = offset
        .checked_add(size)
        .ok_or(DtbError::BadBlock { block: name })?;
    blob.get(offset..end)
        .ok_or(DtbError::BadBlock { block: name })
}

fn check_reservations(blob: &[u8], offset: usize) -> Result<(), DtbError> {
    if offset < HEADER_SIZE || offset % 8 != 0 {
        return Err(DtbError::BadBlock {
            block: "memory reservation",
        });
    }
    let mut at = offset;
    let mut index = 0;
    loop {
        let address = be64(blob, at).ok_or(DtbError::UnterminatedReservations)?;
        let size = be64(blob, at + 8).ok_or(DtbError::UnterminatedReservations)?;
        if address == 0 && size == 0 {
            return Ok(());
        }
        if address.checked_add(size).is_none() {
            return Err(DtbError::ReservationWraps { index });
        }
        at += 16;
        index += 1;
    }
}

/// Checks the structure block; returns how many NOP tokens it holds.
fn check_structure(structs: &[u8], strings: &[u8]) -> Result<usize, DtbError> {
    let mut nops = 0;
    // `seen_child[d]` is true once the open node at depth d has had a child node.
    let mut seen_child = [false; MAX_DEPTH + 1];
    let mut depth = 0usize;
    let mut roots = 0;
    let mut at = 0;
    loop {
        let token = be32(structs, at).ok_or(DtbError::Truncated { offset: at })?;
        match token {
            FDT_BEGIN_NODE => {
                let name_bytes = structs
                    .get(at + 4..)
                    .ok_or(DtbError::Truncated { offset: at })?;
                let nul = name_bytes
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(DtbError::BadNodeName { offset: at })?;
                let name = core::str::from_utf8(&name_bytes[..nul])
                    .map_err(|_| DtbError::BadNodeName { offset: at })?;
                if depth == 0 {
                    roots += 1;
                    if roots > 1 || !name.is_empty() {
                        return Err(DtbError::BadRoot);
                    }
                } else {
                    seen_child[depth] = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DtbError::TooDeep { offset: at });
                }
                seen_child[depth] = false;
                at += 4 + align4(nul + 1);
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(DtbError::UnexpectedToken { offset: at, token });
                }
                depth -= 1;
                at += 4;
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(DtbError::UnexpectedToken { offset: at, token });
                }
                if seen_child[depth] {
                    return Err(DtbError::PropertyAfterChild { offset: at });
                }
                let value_len = be32(structs, at + 4).ok_or(DtbError::Truncated { offset: at })?;
                let name_offset =
                    be32(structs, at + 8).ok_or(DtbError::Truncated { offset: at })? as usize;
                check_string(strings, name_offset)
                    .ok_or(DtbError::BadPropertyName { offset: at })?;
                let value_end = (at + 12)
                    .checked_add(value_len as usize)
                    .filter(|&end| end <= structs.len())
                    .ok_or(DtbError::PropertyTooLong { offset: at })?;
                at = at + 12 + align4(value_end - (at + 12));
            }
            FDT_NOP => {
                nops += 1;
                at += 4;
            }
            FDT_END => {
                return if depth == 0 && roots == 1 {
                    Ok(nops)
                } else {
                    Err(DtbError::BadRoot)
                };
            }
            _ => return Err(DtbError::UnexpectedToken { offset: at, token }),
        }
    }
}

fn check_string(strings: &[u8], offset: usize) -> Option<&str> {
    let tail = strings.get(offset..)?;
    let nul = tail.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&tail[..nul]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Builds a DTB by hand, token by token, so tests control every byte.
    struct RawDtb {
        structs: Vec<u8>,
        strings: Vec<u8>,
        reservations: Vec<(u64, u64)>,
    }

    impl RawDtb {
        fn new() -> Self {
            Self {
                structs: Vec::new(),
                strings: Vec::new(),
                reservations: Vec::new(),
            }
        }
        fn word(&mut self, w: u32) -> &mut Self {
            self.structs.extend_from_slice(&w.to_be_bytes());
            self
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.word(1);
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            while self.structs.len() % 4 != 0 {
                self.structs.push(0);
            }
            self
        }
        fn end(&mut self) -> &mut Self {
            self.word(2)
        }
        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(3).word(value.len() as u32).word(offset);
            self.structs.extend_from_slice(value);
            while self.structs.len() % 4 != 0 {
                self.structs.push(0);
            }
            self
        }
        fn nop(&mut self) -> &mut Self {
            self.word(4)
        }
        fn finish(&mut self) -> &mut Self {
            self.word(9)
        }
        fn build(&self) -> Vec<u8> {
            let rsv_off = HEADER_SIZE.next_multiple_of(8);
            let rsv_len = (self.reservations.len() + 1) * 16;
            let struct_off = rsv_off + rsv_len;
            let strings_off = struct_off + self.structs.len();
            let total = strings_off + self.strings.len();
            let mut blob = Vec::new();
            for w in [
                FDT_MAGIC,
                total as u32,
                struct_off as u32,
                strings_off as u32,
                rsv_off as u32,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                blob.extend_from_slice(&w.to_be_bytes());
            }
            blob.resize(rsv_off, 0);
            for &(address, size) in &self.reservations {
                blob.extend_from_slice(&address.to_be_bytes());
                blob.extend_from_slice(&size.to_be_bytes());
            }
            blob.extend_from_slice(&[0; 16]);
            blob.extend_from_slice(&self.structs);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }

    fn minimal() -> RawDtb {
        let mut dtb = RawDtb::new();
        dtb.begin("")
            .prop("model", b"test\0")
            .begin("chosen")
            .end()
            .end()
            .finish();
        dtb
    }

    #[test]
    fn accepts_a_minimal_tree() {
        let blob = minimal().build();
        let header = validate(&blob).unwrap();
        assert_eq!(header.total_size as usize, blob.len());
        assert!(fdt::Fdt::new(&blob).unwrap().find_node("/chosen").is_some());
    }

    #[test]
    fn accepts_the_qemu_and_raspberry_pi_fixtures() {
        for name in [
            "qemu-virt-gicv3.dtb",
            "qemu-virt-gicv2.dtb",
            "qemu-raspi4b.dtb",
        ] {
            let path = std::format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            let blob = std::fs::read(&path).unwrap();
            validate(&blob).unwrap_or_else(|e| panic!("{name}: {e}"));
            // A trimmed copy is a valid tree with the same content, and smaller.
            let copy = trimmed_copy(&blob).unwrap();
            assert!(copy.len() <= blob.len(), "{name}");
            validate(&copy).unwrap_or_else(|e| panic!("{name} trimmed: {e}"));
            let nodes = |bytes: &[u8]| {
                let tree = fdt::Fdt::new(bytes).unwrap();
                tree.all_nodes()
                    .map(|node| {
                        let props: std::vec::Vec<_> = node
                            .properties()
                            .map(|p| (std::string::String::from(p.name), p.value.to_vec()))
                            .collect();
                        (std::string::String::from(node.name), props)
                    })
                    .collect::<std::vec::Vec<_>>()
            };
            assert_eq!(nodes(&copy), nodes(&blob), "{name}");
        }
        // The tree QEMU hands a guest leaves most of its 1 MiB empty (the fixture was
        // packed): the copy is the packed size again.
        let packed = std::fs::read(std::format!(
            "{}/../tests/fixtures/qemu-virt-gicv3.dtb",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut roomy = packed.clone();
        roomy.resize(1 << 20, 0);
        roomy[4..8].copy_from_slice(&(1u32 << 20).to_be_bytes());
        assert_eq!(trimmed_copy(&roomy).unwrap(), packed);
    }

    #[test]
    fn rejects_short_and_foreign_blobs() {
        assert_eq!(validate(&[0; 8]), Err(DtbError::TooShort { len: 8 }));
        let mut blob = minimal().build();
        blob[0] = 0x7f;
        assert_eq!(
            validate(&blob),
            Err(DtbError::BadMagic { found: 0x7f0d_feed })
        );
    }

    #[test]
    fn rejects_a_total_size_beyond_the_buffer() {
        let blob = minimal().build();
        let short = &blob[..blob.len() - 1];
        assert!(matches!(
            validate(short),
            Err(DtbError::BadTotalSize { .. })
        ));
    }

    #[test]
    fn rejects_old_versions() {
        let mut blob = minimal().build();
        blob[20..24].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            validate(&blob),
            Err(DtbError::UnsupportedVersion { version: 3, .. })
        ));
    }

    #[test]
    fn rejects_blocks_outside_the_blob() {
        let mut blob = minimal().build();
        // size_dt_struct far too big.
        blob[36..40].copy_from_slice(&0x10_0000u32.to_be_bytes());
        assert_eq!(
            validate(&blob),
            Err(DtbError::BadBlock { block: "structure" })
        );
    }

    #[test]
    fn rejects_a_property_name_outside_the_strings_block() {
        let mut dtb = RawDtb::new();
        dtb.begin("").word(3).word(0).word(0x1000).end().finish();
        assert!(matches!(
            validate(&dtb.build()),
            Err(DtbError::BadPropertyName { .. })
        ));
    }

    #[test]
    fn rejects_a_property_value_past_the_block() {
        let mut dtb = RawDtb::new();
        dtb.strings.extend_from_slice(b"x\0");
        dtb.begin("")
            .word(3)
            .word(0xffff_fff0)
            .word(0)
            .end()
            .finish();
        assert!(matches!(
            validate(&dtb.build()),
            Err(DtbError::PropertyTooLong { .. })
        ));
    }

    #[test]
    fn rejects_unbalanced_nodes_and_stray_tokens() {
        let mut unclosed = RawDtb::new();
        unclosed.begin("").begin("a").end().finish();
        assert_eq!(validate(&unclosed.build()), Err(DtbError::BadRoot));

        let mut extra_end = RawDtb::new();
        extra_end.begin("").end().end().finish();
        assert!(matches!(
            validate(&extra_end.build()),
            Err(DtbError::UnexpectedToken { token: 2, .. })
        ));

        let mut junk = RawDtb::new();
        junk.begin("").word(0x77).end().finish();
        assert!(matches!(
            validate(&junk.build()),
            Err(DtbError::UnexpectedToken { token: 0x77, .. })
        ));

        let mut no_end = RawDtb::new();
        no_end.begin("").end();
        assert!(matches!(
            validate(&no_end.build()),
            Err(DtbError::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_two_roots_and_a_named_root() {
        let mut two = RawDtb::new();
        two.begin("").end().begin("").end().finish();
        assert_eq!(validate(&two.build()), Err(DtbError::BadRoot));
        let mut named = RawDtb::new();
        named.begin("root").end().finish();
        assert_eq!(validate(&named.build()), Err(DtbError::BadRoot));
    }

    #[test]
    fn rejects_properties_after_children() {
        let mut dtb = RawDtb::new();
        dtb.begin("")
            .begin("a")
            .end()
            .prop("late", b"")
            .end()
            .finish();
        assert!(matches!(
            validate(&dtb.build()),
            Err(DtbError::PropertyAfterChild { .. })
        ));
    }

    #[test]
    fn rejects_deep_nesting() {
        let mut dtb = RawDtb::new();
        dtb.begin("");
        for _ in 0..MAX_DEPTH {
            dtb.begin("n");
        }
        for _ in 0..=MAX_DEPTH {
            dtb.end();
        }
        dtb.finish();
        assert!(matches!(
            validate(&dtb.build()),
            Err(DtbError::TooDeep { .. })
        ));
    }

    #[test]
    fn rejects_non_utf8_node_names() {
        let mut dtb = RawDtb::new();
        dtb.begin("").word(1).word(0xff00_0000).end().end().finish();
        assert!(matches!(
            validate(&dtb.build()),
            Err(DtbError::BadNodeName { .. })
        ));
    }

    #[test]
    fn rejects_unterminated_and_wrapping_reservations() {
        let mut dtb = minimal();
        dtb.reservations.push((u64::MAX, 2));
        assert_eq!(
            validate(&dtb.build()),
            Err(DtbError::ReservationWraps { index: 0 })
        );
    }

    #[test]
    fn removes_nops_and_keeps_the_content() {
        let mut dtb = RawDtb::new();
        dtb.begin("")
            .nop()
            .prop("a", b"1\0")
            .nop()
            .prop("b", b"2\0")
            .begin("child")
            .nop()
            .end()
            .nop()
            .begin("other")
            .end()
            .end()
            .finish();
        let mut blob = dtb.build();
        assert_eq!(validate_for_reading(&blob), Err(DtbError::ContainsNops));
        assert_eq!(validate_and_remove_nops(&mut blob), Ok(4));
        validate_for_reading(&blob).unwrap();
        let tree = fdt::Fdt::new(&blob).unwrap();
        let root = tree.find_node("/").unwrap();
        let names: Vec<_> = root.properties().map(|p| p.name).collect();
        assert_eq!(names, ["a", "b"]);
        let children: Vec<_> = root.children().map(|c| c.name).collect();
        assert_eq!(children, ["child", "other"]);
        assert_eq!(validate_and_remove_nops(&mut blob), Ok(0));
    }

    /// Flipping any byte of a real tree either still validates (and then the `fdt`
    /// crate can walk every node and property without panicking) or is rejected.
    #[test]
    fn single_byte_corruptions_never_reach_fdt_unchecked() {
        let path = std::format!(
            "{}/../tests/fixtures/qemu-virt-gicv3.dtb",
            env!("CARGO_MANIFEST_DIR")
        );
        let original = std::fs::read(path).unwrap();
        let step = (original.len() / 1500).max(1);
        for at in (0..original.len()).step_by(step) {
            for value in [0x00, 0xff, original[at] ^ 0x01, 0x03] {
                let mut blob = original.clone();
                blob[at] = value;
                if validate_and_remove_nops(&mut blob).is_ok() {
                    let tree = fdt::Fdt::new(&blob).unwrap();
                    let mut count = 0;
                    for node in tree.all_nodes() {
                        count += node.properties().count() + node.children().count();
                    }
                    assert!(count > 0);
                }
            }
        }
    }
}
