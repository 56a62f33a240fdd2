//! Dropping `FDT_NOP` tokens from a blob's structure block.
//!
//! QEMU's raspi4b tree has hundreds of them (libfdt NOPs out what it deletes), and the
//! `fdt` crate 0.1.5 panics on a NOP between a skipped node's properties or children.
//! The rewritten blob has the same tree without them.

use std::borrow::Cow;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const HEADER_SIZE: usize = 40;

fn be32(blob: &[u8], offset: usize) -> Option<u32> {
    let bytes = blob.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// `blob` without NOP tokens; borrowed unchanged when it has none. `None` when the
/// structure block cannot be walked (then the reader reports the error itself).
pub fn without_nops(blob: &[u8]) -> Option<Cow<'_, [u8]>> {
    let field = |index: usize| be32(blob, index * 4).map(|v| v as usize);
    let (off_struct, off_strings, off_rsvmap) = (field(2)?, field(3)?, field(4)?);
    let (size_strings, size_struct) = (field(8)?, field(9)?);
    let structure = blob.get(off_struct..off_struct.checked_add(size_struct)?)?;

    let mut kept = Vec::with_capacity(structure.len());
    let mut dropped = false;
    let mut offset = 0;
    loop {
        let token = be32(structure, offset)?;
        let length = match token {
            BEGIN_NODE => {
                let name_len = structure.get(offset + 4..)?.iter().position(|&b| b == 0)?;
                4 + align4(name_len + 1)
            }
            PROP => 12 + align4(be32(structure, offset + 4)? as usize),
            END_NODE | END => 4,
            NOP => {
                dropped = true;
                offset += 4;
                continue;
            }
            _ => return None,
        };
        kept.extend_from_slice(structure.get(offset..offset + length)?);
        offset += length;
        if token == END {
            break;
        }
    }
    if !dropped {
        return Some(Cow::Borrowed(blob));
    }

    // Header, reservations (everything up to the structure block), structure, strings.
    let reservations = blob.get(off_rsvmap..off_struct)?;
    let strings = blob.get(off_strings..off_strings.checked_add(size_strings)?)?;
    let mut out = blob.get(..HEADER_SIZE)?.to_vec();
    let new_struct = HEADER_SIZE + reservations.len();
    let new_strings = new_struct + kept.len();
    let total = new_strings + strings.len();
    out.extend_from_slice(reservations);
    out.extend_from_slice(&kept);
    out.extend_from_slice(strings);
    for (index, value) in [
        (1, total),
        (2, new_struct),
        (3, new_strings),
        (4, HEADER_SIZE),
        (8, strings.len()),
        (9, kept.len()),
    ] {
        let value = u32::try_from(value).ok()?;
        out[index * 4..index * 4 + 4].copy_from_slice(&value.to_be_bytes());
    }
    Some(Cow::Owned(out))
}

/// The numbers of nodes and properties in a blob, counted token by token: the
/// reference the editor's reader is tested against.
#[cfg(test)]
pub(super) fn count_nodes_and_properties(blob: &[u8]) -> (usize, usize) {
    let stripped = without_nops(blob).expect("a walkable blob");
    let start = be32(&stripped, 8).unwrap() as usize;
    let (mut nodes, mut properties, mut offset) = (0, 0, start);
    loop {
        match be32(&stripped, offset).unwrap() {
            BEGIN_NODE => {
                nodes += 1;
                let name_len = stripped[offset + 4..].iter().position(|&b| b == 0).unwrap();
                offset += 4 + align4(name_len + 1);
            }
            PROP => {
                properties += 1;
                offset += 12 + align4(be32(&stripped, offset + 4).unwrap() as usize);
            }
            END => return (nodes, properties),
            _ => offset += 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob whose root has one property and one empty child, with NOPs sprinkled
    /// between tokens when `nops` is set.
    fn blob(nops: bool) -> Vec<u8> {
        let mut structure = Vec::new();
        let mut word = |w: u32| structure.extend_from_slice(&w.to_be_bytes());
        word(BEGIN_NODE);
        word(0); // root name "" padded
        if nops {
            word(NOP);
        }
        word(PROP);
        word(4);
        word(0); // name offset of "p"
        word(0x1234_5678);
        if nops {
            word(NOP);
            word(NOP);
        }
        word(BEGIN_NODE);
        structure.extend_from_slice(b"c\0\0\0");
        let mut word = |w: u32| structure.extend_from_slice(&w.to_be_bytes());
        word(END_NODE);
        if nops {
            word(NOP);
        }
        word(END_NODE);
        word(END);
        let strings = b"p\0";
        let off_struct = HEADER_SIZE + 16;
        let off_strings = off_struct + structure.len();
        let total = off_strings + strings.len();
        let header = [
            0xd00d_feed,
            total,
            off_struct,
            off_strings,
            HEADER_SIZE,
            17,
            16,
            0,
            strings.len(),
            structure.len(),
        ];
        let mut out: Vec<u8> = header
            .iter()
            .flat_map(|&v| (v as u32).to_be_bytes())
            .collect();
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structure);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn a_blob_without_nops_is_borrowed() {
        let clean = blob(false);
        assert!(matches!(without_nops(&clean), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn nops_are_dropped_and_the_header_fixed() {
        let with_nops = blob(true);
        let stripped = without_nops(&with_nops).unwrap();
        assert!(matches!(stripped, Cow::Owned(_)));
        assert_eq!(&*stripped, &blob(false)[..]);
    }

    #[test]
    fn counts_nodes_and_properties() {
        assert_eq!(count_nodes_and_properties(&blob(true)), (2, 1));
    }

    #[test]
    fn unknown_tokens_give_up() {
        let mut bad = blob(false);
        bad[HEADER_SIZE + 16..HEADER_SIZE + 20].copy_from_slice(&7u32.to_be_bytes());
        assert!(without_nops(&bad).is_none());
        assert!(without_nops(&[0; 8]).is_none());
    }
}
