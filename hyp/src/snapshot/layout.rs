//! Encoding and decoding of the three kinds of metadata sector: the superblock, the
//! slot headers and the chunk headers (field tables in the module documentation).
//!
//! Every metadata sector ends in a CRC-32 of its first [`CRC_OFFSET`] bytes, and every
//! byte not assigned to a field must be zero, so any single-bit change is caught.

use super::crc::crc32;
use super::error::{ChunkProblem, SlotProblem, SuperblockProblem};
use super::{ChunkKind, FORMAT_VERSION, SECTOR_SIZE};

/// A metadata sector.
pub(super) type Sector = [u8; SECTOR_SIZE];

/// Offset of the CRC-32 that closes every metadata sector.
pub(super) const CRC_OFFSET: usize = SECTOR_SIZE - 4;

/// Superblock magic.
pub(super) const SUPERBLOCK_MAGIC: [u8; 8] = *b"AERIEDSK";
/// Slot header magic.
pub(super) const HEADER_MAGIC: [u8; 8] = *b"AERIESNP";
/// Chunk header magic.
pub(super) const CHUNK_MAGIC: [u8; 4] = *b"CHNK";

/// Superblock field offsets.
mod sb {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const SECTOR_SIZE: usize = 12;
    pub const SLOT_SECTORS: usize = 16;
    pub const END: usize = 24;
}

/// Slot header field offsets.
mod hdr {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const SLOT: usize = 12;
    pub const SEQUENCE: usize = 16;
    pub const CREATED: usize = 24;
    pub const LENGTH: usize = 32;
    pub const CHUNK_COUNT: usize = 40;
    pub const END: usize = 44;
}

/// Chunk header field offsets.
mod chk {
    pub const MAGIC: usize = 0;
    pub const KIND: usize = 4;
    pub const ID: usize = 8;
    pub const LENGTH: usize = 16;
    pub const SEQUENCE: usize = 24;
    pub const PAYLOAD_CRC: usize = 32;
    pub const END: usize = 36;
}

fn get_u32(s: &Sector, at: usize) -> u32 {
    u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

fn get_u64(s: &Sector, at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(b)
}

fn put_u32(s: &mut Sector, at: usize, v: u32) {
    s[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(s: &mut Sector, at: usize, v: u64) {
    s[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Stores the closing CRC.
fn seal(s: &mut Sector) {
    let crc = crc32(&s[..CRC_OFFSET]);
    put_u32(s, CRC_OFFSET, crc);
}

/// Whether the closing CRC matches.
fn crc_ok(s: &Sector) -> bool {
    crc32(&s[..CRC_OFFSET]) == get_u32(s, CRC_OFFSET)
}

/// Whether the bytes between the last field and the CRC are zero.
fn reserved_zero(s: &Sector, fields_end: usize) -> bool {
    s[fields_end..CRC_OFFSET].iter().all(|&b| b == 0)
}

/// Whether a sector is entirely zero (never written, or deliberately cleared).
pub(super) fn is_blank(s: &[u8]) -> bool {
    // A word at a time: guest RAM is scanned page by page for zero pages.
    let mut words = s.chunks_exact(8);
    words.all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

/// The superblock: which format the disk holds and how big each slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Superblock {
    /// Sectors in each slot's data area.
    pub slot_sectors: u64,
}

impl Superblock {
    /// The superblock sector.
    pub fn encode(&self) -> Sector {
        let mut s = [0; SECTOR_SIZE];
        s[sb::MAGIC..sb::MAGIC + 8].copy_from_slice(&SUPERBLOCK_MAGIC);
        put_u32(&mut s, sb::VERSION, FORMAT_VERSION);
        put_u32(&mut s, sb::SECTOR_SIZE, SECTOR_SIZE as u32);
        put_u64(&mut s, sb::SLOT_SECTORS, self.slot_sectors);
        seal(&mut s);
        s
    }

    /// Decodes and checks a (non-blank) superblock sector.
    pub fn decode(s: &Sector) -> Result<Self, SuperblockProblem> {
        if s[sb::MAGIC..sb::MAGIC + 8] != SUPERBLOCK_MAGIC {
            return Err(SuperblockProblem::Foreign);
        }
        if !crc_ok(s) {
            return Err(SuperblockProblem::Checksum);
        }
        let version = get_u32(s, sb::VERSION);
        if version != FORMAT_VERSION {
            return Err(SuperblockProblem::NewerVersion(version));
        }
        if get_u32(s, sb::SECTOR_SIZE) != SECTOR_SIZE as u32 {
            return Err(SuperblockProblem::BadField("sector size"));
        }
        if !reserved_zero(s, sb::END) {
            return Err(SuperblockProblem::BadField("reserved bytes"));
        }
        let slot_sectors = get_u64(s, sb::SLOT_SECTORS);
        if slot_sectors == 0 {
            return Err(SuperblockProblem::BadField("slot size"));
        }
        Ok(Self { slot_sectors })
    }
}

/// A slot header: identifies the snapshot and how much of the data area it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotHeader {
    /// The slot this header belongs to (0 = A, 1 = B).
    pub slot: u8,
    /// Sequence number (higher = newer; never 0).
    pub sequence: u64,
    /// Caller-supplied creation counter (e.g. a timestamp).
    pub created: u64,
    /// Bytes of the data area the snapshot uses (whole sectors).
    pub length: u64,
    /// Number of chunks.
    pub chunk_count: u32,
}

impl SlotHeader {
    /// The header sector.
    pub fn encode(&self) -> Sector {
        let mut s = [0; SECTOR_SIZE];
        s[hdr::MAGIC..hdr::MAGIC + 8].copy_from_slice(&HEADER_MAGIC);
        put_u32(&mut s, hdr::VERSION, FORMAT_VERSION);
        put_u32(&mut s, hdr::SLOT, u32::from(self.slot));
        put_u64(&mut s, hdr::SEQUENCE, self.sequence);
        put_u64(&mut s, hdr::CREATED, self.created);
        put_u64(&mut s, hdr::LENGTH, self.length);
        put_u32(&mut s, hdr::CHUNK_COUNT, self.chunk_count);
        seal(&mut s);
        s
    }

    /// Decodes and checks the header sector of slot `slot`, whose data area holds
    /// `slot_sectors` sectors.
    pub fn decode(s: &Sector, slot: u8, slot_sectors: u64) -> Result<Self, SlotProblem> {
        if is_blank(s) {
            return Err(SlotProblem::Empty);
        }
        if s[hdr::MAGIC..hdr::MAGIC + 8] != HEADER_MAGIC {
            return Err(SlotProblem::Foreign);
        }
        if !crc_ok(s) {
            return Err(SlotProblem::HeaderChecksum);
        }
        let version = get_u32(s, hdr::VERSION);
        if version != FORMAT_VERSION {
            return Err(SlotProblem::NewerVersion(version));
        }
        if !reserved_zero(s, hdr::END) {
            return Err(SlotProblem::BadHeaderField("reserved bytes"));
        }
        if get_u32(s, hdr::SLOT) != u32::from(slot) {
            return Err(SlotProblem::BadHeaderField("slot number"));
        }
        let sequence = get_u64(s, hdr::SEQUENCE);
        if sequence == 0 {
            return Err(SlotProblem::BadHeaderField("sequence number"));
        }
        let length = get_u64(s, hdr::LENGTH);
        if length % SECTOR_SIZE as u64 != 0 || length / SECTOR_SIZE as u64 > slot_sectors {
            return Err(SlotProblem::BadHeaderField("snapshot length"));
        }
        Ok(Self {
            slot,
            sequence,
            created: get_u64(s, hdr::CREATED),
            length,
            chunk_count: get_u32(s, hdr::CHUNK_COUNT),
        })
    }
}

/// A chunk header: what the payload that follows it is, and its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ChunkHeader {
    /// What the payload holds.
    pub kind: ChunkKind,
    /// Kind-specific identifier (vCPU index, device id, guest physical address).
    pub id: u64,
    /// Payload length in bytes.
    pub length: u64,
    /// Sequence number of the snapshot the chunk belongs to.
    pub sequence: u64,
    /// CRC-32 of the payload.
    pub payload_crc: u32,
}

impl ChunkHeader {
    /// The chunk header sector.
    pub fn encode(&self) -> Sector {
        let mut s = [0; SECTOR_SIZE];
        s[chk::MAGIC..chk::MAGIC + 4].copy_from_slice(&CHUNK_MAGIC);
        put_u32(&mut s, chk::KIND, self.kind.code());
        put_u64(&mut s, chk::ID, self.id);
        put_u64(&mut s, chk::LENGTH, self.length);
        put_u64(&mut s, chk::SEQUENCE, self.sequence);
        put_u32(&mut s, chk::PAYLOAD_CRC, self.payload_crc);
        seal(&mut s);
        s
    }

    /// Decodes and checks a chunk header sector.
    pub fn decode(s: &Sector) -> Result<Self, ChunkProblem> {
        if s[chk::MAGIC..chk::MAGIC + 4] != CHUNK_MAGIC {
            return Err(ChunkProblem::BadMagic);
        }
        if !crc_ok(s) {
            return Err(ChunkProblem::HeaderChecksum);
        }
        if !reserved_zero(s, chk::END) {
            return Err(ChunkProblem::NonZeroPadding);
        }
        let code = get_u32(s, chk::KIND);
        let kind = ChunkKind::from_code(code).ok_or(ChunkProblem::UnknownKind(code))?;
        Ok(Self {
            kind,
            id: get_u64(s, chk::ID),
            length: get_u64(s, chk::LENGTH),
            sequence: get_u64(s, chk::SEQUENCE),
            payload_crc: get_u32(s, chk::PAYLOAD_CRC),
        })
    }
}
