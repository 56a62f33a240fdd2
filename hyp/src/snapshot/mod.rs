//! The on-disk snapshot format: two slots written alternately, checksummed chunks,
//! guest RAM with zero pages skipped.
//!
//! The snapshot disk is untrusted input. [`read_snapshot`] checks every byte of a slot
//! (header, every chunk header, every payload checksum, all padding) before it returns
//! anything, and reports the first failed check (which slot, which chunk, what).
//! [`SnapshotWriter`] writes the chunks of a new snapshot into the slot holding the
//! older one, flushes, and only then writes and flushes that slot's header; it clears
//! the header before overwriting the slot's data. A power loss at any point therefore
//! leaves the previous snapshot intact and readable.
//!
//! # Format (version 1)
//!
//! All integers are little-endian. Sectors are 512 bytes. Every metadata sector ends in
//! a CRC-32 (IEEE 802.3, as in zlib) of its first 508 bytes, and every byte not listed
//! below is zero.
//!
//! Disk layout (sector numbers):
//!
//! | sectors | content |
//! |---|---|
//! | 0 | superblock |
//! | 1 | slot A header |
//! | 2 | slot B header |
//! | 3..8 | reserved (zero) |
//! | 8 .. 8+S | slot A data area (S = `slot_sectors`) |
//! | 8+S .. 8+2S | slot B data area |
//!
//! Superblock (sector 0, written once by [`format`]):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `AERIEDSK` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | sector size (512) |
//! | 16 | 8 | `slot_sectors`: sectors per data area |
//! | 508 | 4 | CRC-32 of bytes 0..508 |
//!
//! Slot header (sector 1 + slot), written last; all zero = empty slot:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `AERIESNP` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | slot (0 = A, 1 = B) |
//! | 16 | 8 | sequence number (1, 2, ...; the highest valid one is restored) |
//! | 24 | 8 | creation counter (caller-defined, e.g. a timestamp) |
//! | 32 | 8 | total length in bytes of the data area used (whole sectors) |
//! | 40 | 4 | chunk count |
//! | 508 | 4 | CRC-32 of bytes 0..508 |
//!
//! The data area holds the chunks back to back from its first sector. Each chunk is a
//! header sector followed by the payload, zero-padded to a whole sector:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `CHNK` |
//! | 4 | 4 | kind: 1 metadata, 2 vCPU, 3 device, 4 memory range ([`ChunkKind`]) |
//! | 8 | 8 | id: vCPU index, device id, or guest physical address of a memory range |
//! | 16 | 8 | payload length in bytes |
//! | 24 | 8 | sequence number of the snapshot (stale chunks are rejected) |
//! | 32 | 4 | CRC-32 of the payload |
//! | 508 | 4 | CRC-32 of bytes 0..508 |
//!
//! Guest RAM is stored as memory-range chunks, one per run of consecutive non-zero
//! 4 KiB pages: the id is the run's guest physical address, the payload its pages.
//! All-zero pages are not stored; a restore starts from zeroed RAM. Memory ranges must
//! be page-aligned and must not overlap. State chunks (all other kinds) are at most
//! [`MAX_STATE_CHUNK`] bytes.
//!
//! A newer format version is refused, not guessed at. Sector writes are assumed atomic
//! (true of virtio-blk on QEMU and of SD cards at 512-byte granularity).
//!
//! What the state chunks hold (metadata JSON, vCPU and device states) and how they are
//! cross-checked before a restore is [`machine`]'s job.

mod crc;
mod disk;
mod error;
mod layout;
pub mod machine;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use crc::{Crc32, crc32};
pub use disk::{Disk, DiskError, MemoryDisk};
pub use error::{ChunkProblem, SlotProblem, SnapshotError, SuperblockProblem};
pub use reader::{
    Check, ChunkInfo, Snapshot, read_slot, read_slot_checking, read_snapshot,
    read_snapshot_checking,
};
pub use writer::{MemoryStats, SnapshotWriter, format};

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;
/// Bytes per guest memory page.
pub const PAGE_SIZE: usize = 4096;
/// Largest state (non-memory) chunk the reader accepts, in bytes.
pub const MAX_STATE_CHUNK: u64 = 16 << 20;
/// Number of slots.
pub const SLOTS: u8 = 2;

/// Sector of the superblock.
const SUPERBLOCK_SECTOR: u64 = 0;
/// Sector of slot A's header (slot B's follows).
const FIRST_HEADER_SECTOR: u64 = 1;
/// First sector of slot A's data area.
const DATA_START: u64 = 8;

/// Sector of `slot`'s header.
const fn header_sector(slot: u8) -> u64 {
    FIRST_HEADER_SECTOR + slot as u64
}

/// First sector of `slot`'s data area.
const fn data_sector(slot: u8, slot_sectors: u64) -> u64 {
    DATA_START + slot as u64 * slot_sectors
}

/// Sectors needed to hold `bytes` bytes.
const fn sectors_for(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR_SIZE as u64)
}

/// What a chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChunkKind {
    /// A readable description of the snapshot (VM layout, devices, sizes).
    Metadata,
    /// One vCPU's saved state; the id is the vCPU index.
    Vcpu,
    /// One device's saved state; the id names the device.
    Device,
    /// A run of non-zero guest RAM pages; the id is its guest physical address.
    Memory,
}

impl ChunkKind {
    /// The on-disk code.
    pub const fn code(self) -> u32 {
        match self {
            Self::Metadata => 1,
            Self::Vcpu => 2,
            Self::Device => 3,
            Self::Memory => 4,
        }
    }

    /// The kind with on-disk code `code`, if any.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Metadata),
            2 => Some(Self::Vcpu),
            3 => Some(Self::Device),
            4 => Some(Self::Memory),
            _ => None,
        }
    }
}

impl core::fmt::Display for ChunkKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Metadata => "metadata",
            Self::Vcpu => "vcpu",
            Self::Device => "device",
            Self::Memory => "memory",
        })
    }
}
