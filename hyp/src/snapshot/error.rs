//! Why a snapshot could not be read or written.

use core::fmt;

use super::disk::DiskError;

/// A failed snapshot operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The disk failed (or a read ran past its end).
    Disk(DiskError),
    /// The disk's sectors are not 512 bytes, the only size the format defines.
    UnsupportedSectorSize(usize),
    /// Sector 0 is blank: the disk was never formatted for snapshots.
    NotFormatted,
    /// Sector 0 holds something, but not a valid Aerie snapshot superblock.
    BadSuperblock(SuperblockProblem),
    /// The superblock describes slots that do not fit on this disk (a truncated image).
    Truncated {
        /// Sectors the format needs.
        needed: u64,
        /// Sectors the disk has.
        available: u64,
    },
    /// The disk is formatted but neither slot holds a snapshot.
    NoSnapshot,
    /// A slot holds a damaged snapshot (and no other slot holds a valid one).
    Slot {
        /// The slot (0 = A, 1 = B).
        slot: u8,
        /// What is wrong with it.
        problem: SlotProblem,
    },
    /// The snapshot does not fit in a slot.
    TooLarge {
        /// Sectors of one slot's data area.
        available: u64,
    },
    /// A caller error while writing: a memory page that is not [`super::PAGE_SIZE`]
    /// bytes, an unaligned guest address, or memory passed to `add_chunk`.
    InvalidInput(&'static str),
}

/// What is wrong with a superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuperblockProblem {
    /// The magic is not `AERIEDSK`: this is not an Aerie snapshot disk.
    Foreign,
    /// The format version is newer than this Aerie understands.
    NewerVersion(u32),
    /// The checksum does not match.
    Checksum,
    /// A field has an impossible value.
    BadField(&'static str),
}

/// What is wrong with one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotProblem {
    /// The header sector is blank: the slot was never written or is being rewritten.
    Empty,
    /// The header's magic is not `AERIESNP`.
    Foreign,
    /// The header was written by a newer format version.
    NewerVersion(u32),
    /// The header checksum does not match.
    HeaderChecksum,
    /// A header field has an impossible value.
    BadHeaderField(&'static str),
    /// A chunk failed a check.
    Chunk {
        /// Index of the chunk in the slot (0 = first).
        index: u32,
        /// Byte offset of the chunk header within the slot's data area.
        offset: u64,
        /// The check that failed.
        problem: ChunkProblem,
    },
    /// The chunks end before the length the header records.
    TrailingData,
    /// Two memory chunks describe overlapping guest addresses.
    OverlappingMemory,
}

/// The check a chunk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkProblem {
    /// The chunk header's magic is not `CHNK`.
    BadMagic,
    /// The chunk header checksum does not match.
    HeaderChecksum,
    /// The chunk kind is not one this version knows.
    UnknownKind(u32),
    /// The chunk belongs to another snapshot (stale data from an earlier write).
    WrongSequence,
    /// The chunk's payload runs past the snapshot's recorded length.
    Overruns,
    /// A memory chunk with an unaligned address or length, or one that wraps.
    BadMemoryRange,
    /// A state chunk larger than the reader accepts.
    TooLarge,
    /// Reserved header bytes or the padding after the payload are not zero.
    NonZeroPadding,
    /// The payload checksum does not match.
    PayloadChecksum,
}

impl From<DiskError> for SnapshotError {
    fn from(error: DiskError) -> Self {
        Self::Disk(error)
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disk(e) => write!(f, "snapshot disk: {e}"),
            Self::UnsupportedSectorSize(size) => {
                write!(
                    f,
                    "snapshot disk has {size}-byte sectors; only 512 is supported"
                )
            }
            Self::NotFormatted => {
                f.write_str("the snapshot disk is blank (no snapshot was ever written)")
            }
            Self::BadSuperblock(p) => write!(f, "snapshot disk superblock: {p}"),
            Self::Truncated { needed, available } => write!(
                f,
                "snapshot disk is truncated: the format needs {needed} sectors, the disk has {available}"
            ),
            Self::NoSnapshot => f.write_str("the snapshot disk holds no snapshot"),
            Self::Slot { slot, problem } => {
                write!(f, "snapshot slot {}: {problem}", slot_name(*slot))
            }
            Self::TooLarge { available } => write!(
                f,
                "the snapshot does not fit: a slot holds {available} sectors; use a larger snapshot disk"
            ),
            Self::InvalidInput(what) => write!(f, "snapshot writer misused: {what}"),
        }
    }
}

/// `A` or `B`.
pub(super) fn slot_name(slot: u8) -> char {
    if slot == 0 { 'A' } else { 'B' }
}

impl fmt::Display for SuperblockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Foreign => f.write_str("not an Aerie snapshot disk"),
            Self::NewerVersion(v) => {
                write!(f, "format version {v} is newer than this Aerie supports")
            }
            Self::Checksum => f.write_str("checksum mismatch (damaged)"),
            Self::BadField(field) => write!(f, "invalid {field}"),
        }
    }
}

impl fmt::Display for SlotProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty"),
            Self::Foreign => f.write_str("header is not an Aerie snapshot header"),
            Self::NewerVersion(v) => {
                write!(f, "format version {v} is newer than this Aerie supports")
            }
            Self::HeaderChecksum => f.write_str("header checksum mismatch (damaged or torn write)"),
            Self::BadHeaderField(field) => write!(f, "header has an invalid {field}"),
            Self::Chunk {
                index,
                offset,
                problem,
            } => {
                write!(
                    f,
                    "chunk {index} (at byte {offset} of the data area): {problem}"
                )
            }
            Self::TrailingData => f.write_str("chunks end before the recorded snapshot length"),
            Self::OverlappingMemory => f.write_str("memory chunks overlap"),
        }
    }
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("no chunk header here"),
            Self::HeaderChecksum => f.write_str("chunk header checksum mismatch"),
            Self::UnknownKind(k) => write!(f, "unknown chunk kind {k}"),
            Self::WrongSequence => f.write_str("chunk belongs to a different snapshot"),
            Self::Overruns => f.write_str("payload runs past the end of the snapshot"),
            Self::BadMemoryRange => f.write_str("memory range is unaligned or wraps"),
            Self::TooLarge => f.write_str("state chunk is implausibly large"),
            Self::NonZeroPadding => f.write_str("reserved bytes or padding are not zero"),
            Self::PayloadChecksum => f.write_str("payload checksum mismatch"),
        }
    }
}
