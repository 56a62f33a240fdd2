//! Packing a device-tree blob: dropping the free space QEMU leaves after the strings
//! block (its virt dumps are padded to 1 MiB).

use std::fmt;

/// The size of a version 17 header.
const HEADER_SIZE: usize = 40;
const MAGIC: u32 = 0xd00d_feed;

/// Why a blob cannot be packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// Shorter than a header, or `totalsize` is beyond the data.
    Truncated,
    /// The magic number is wrong.
    BadMagic,
    /// Version < 17 headers lack `size_dt_struct`.
    OldVersion(u32),
    /// The blocks are not header, memory reservations, structure, strings, in order and
    /// without overlap.
    BlocksOutOfOrder,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Truncated => write!(f, "the device tree blob is truncated"),
            PackError::BadMagic => write!(f, "not a device tree blob (bad magic)"),
            PackError::OldVersion(v) => write!(f, "device tree version {v} is older than 17"),
            PackError::BlocksOutOfOrder => write!(
                f,
                "the blocks are not in the order header, memory reservations, structure, strings"
            ),
        }
    }
}

impl std::error::Error for PackError {}

fn be32(blob: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        blob[offset],
        blob[offset + 1],
        blob[offset + 2],
        blob[offset + 3],
    ])
}

/// Returns `blob` cut right after its strings block, with `totalsize` updated.
pub fn pack(blob: &[u8]) -> Result<Vec<u8>, PackError> {
    if blob.len() < HEADER_SIZE {
        return Err(PackError::Truncated);
    }
    let field = |index: usize| be32(blob, index * 4) as usize;
    if be32(blob, 0) != MAGIC {
        return Err(PackError::BadMagic);
    }
    let version = be32(blob, 20);
    if version < 17 {
        return Err(PackError::OldVersion(version));
    }
    let (total, off_struct, off_strings, off_rsvmap) = (field(1), field(2), field(3), field(4));
    let (size_strings, size_struct) = (field(8), field(9));
    if total > blob.len() {
        return Err(PackError::Truncated);
    }
    let rsvmap_end =
        reservations_end(blob, off_rsvmap, total).ok_or(PackError::BlocksOutOfOrder)?;
    let struct_end = off_struct
        .checked_add(size_struct)
        .ok_or(PackError::BlocksOutOfOrder)?;
    let strings_end = off_strings
        .checked_add(size_strings)
        .ok_or(PackError::BlocksOutOfOrder)?;
    let in_order = HEADER_SIZE <= off_rsvmap
        && rsvmap_end <= off_struct
        && struct_end <= off_strings
        && strings_end <= total;
    if !in_order {
        return Err(PackError::BlocksOutOfOrder);
    }
    let mut packed = blob[..strings_end].to_vec();
    let size = u32::try_from(strings_end).map_err(|_| PackError::Truncated)?;
    packed[4..8].copy_from_slice(&size.to_be_bytes());
    Ok(packed)
}

/// The end of the memory reservation block: after its all-zero terminating entry.
fn reservations_end(blob: &[u8], start: usize, total: usize) -> Option<usize> {
    let mut offset = start;
    loop {
        let entry = blob.get(offset..offset.checked_add(16)?.min(total))?;
        if entry.len() < 16 {
            return None;
        }
        offset += 16;
        if entry.iter().all(|&b| b == 0) {
            return Some(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed blob: header, one reservation, a 16-byte structure block
    /// (root node with no properties, FDT_END), a 4-byte strings block, then `padding`.
    fn blob(padding: usize) -> Vec<u8> {
        let mut b = Vec::new();
        let header = [MAGIC, 0, 72, 88, 40, 17, 16, 0, 4, 16];
        for word in header {
            b.extend_from_slice(&word.to_be_bytes());
        }
        b.extend_from_slice(&0x4000_0000u64.to_be_bytes());
        b.extend_from_slice(&0x1000u64.to_be_bytes());
        b.extend_from_slice(&[0; 16]);
        for word in [1u32, 0, 2, 9] {
            b.extend_from_slice(&word.to_be_bytes());
        }
        b.extend_from_slice(b"abc\0");
        assert_eq!(b.len(), 92);
        b.resize(92 + padding, 0);
        let total = b.len() as u32;
        b[4..8].copy_from_slice(&total.to_be_bytes());
        b
    }

    #[test]
    fn cuts_the_padding_and_fixes_totalsize() {
        let padded = blob(1 << 20);
        let packed = pack(&padded).unwrap();
        assert_eq!(packed.len(), 92);
        assert_eq!(be32(&packed, 4), 92);
        assert_eq!(packed[8..], padded[8..92]);
        assert_eq!(pack(&packed).unwrap(), packed, "packing is idempotent");
    }

    #[test]
    fn rejects_bad_blobs() {
        assert_eq!(pack(&[0; 8]), Err(PackError::Truncated));
        let mut bad_magic = blob(0);
        bad_magic[0] = 0;
        assert_eq!(pack(&bad_magic), Err(PackError::BadMagic));
        let mut old = blob(0);
        old[20..24].copy_from_slice(&16u32.to_be_bytes());
        assert_eq!(pack(&old), Err(PackError::OldVersion(16)));
        let mut too_long = blob(0);
        too_long[4..8].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(pack(&too_long), Err(PackError::Truncated));
        let mut strings_first = blob(0);
        strings_first[12..16].copy_from_slice(&72u32.to_be_bytes());
        assert_eq!(pack(&strings_first), Err(PackError::BlocksOutOfOrder));
        let mut rsvmap_into_struct = blob(0);
        rsvmap_into_struct[8..12].copy_from_slice(&64u32.to_be_bytes());
        assert_eq!(pack(&rsvmap_into_struct), Err(PackError::BlocksOutOfOrder));
        let mut unterminated = blob(0);
        unterminated[16..20].copy_from_slice(&76u32.to_be_bytes());
        assert_eq!(pack(&unterminated), Err(PackError::BlocksOutOfOrder));
    }
}
