//! Reading and fully validating a snapshot.

use alloc::vec;
use alloc::vec::Vec;

use super::crc::Crc32;
use super::disk::Disk;
use super::error::{ChunkProblem, SlotProblem, SnapshotError};
use super::layout::{ChunkHeader, Sector, SlotHeader};
use super::writer::read_superblock;
use super::{
    ChunkKind, MAX_STATE_CHUNK, PAGE_SIZE, SECTOR_SIZE, SLOTS, data_sector, header_sector,
    sectors_for,
};

/// Sectors read per disk request while checking payloads.
const READ_BATCH_SECTORS: usize = 2048;
/// Guest pages read per disk request while loading memory.
const MEMORY_BATCH_PAGES: usize = 256;

/// One chunk of a validated snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// What it holds.
    pub kind: ChunkKind,
    /// vCPU index, device id, or guest physical address.
    pub id: u64,
    /// Payload length in bytes.
    pub length: u64,
    /// Absolute disk sector of the payload's start.
    pub payload_sector: u64,
    /// CRC-32 of the payload.
    pub payload_crc: u32,
}

/// A snapshot whose every byte has been checked. State chunks are held in memory;
/// guest RAM is streamed back with [`Snapshot::read_memory`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The slot it was read from (0 = A, 1 = B).
    pub slot: u8,
    /// Sequence number (higher = newer).
    pub sequence: u64,
    /// Creation counter recorded by the writer.
    pub created: u64,
    /// Bytes of the data area it occupies.
    pub length: u64,
    /// Absolute sector where the slot's data area starts.
    data_base: u64,
    chunks: Vec<ChunkInfo>,
    /// Payloads of state chunks, parallel to `chunks` (empty for memory chunks).
    payloads: Vec<Vec<u8>>,
}

impl Snapshot {
    /// Every chunk, in disk order.
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    /// The payload of the first state chunk of `kind` with `id`.
    pub fn payload(&self, kind: ChunkKind, id: u64) -> Option<&[u8]> {
        self.state_chunks()
            .find(|(c, _)| c.kind == kind && c.id == id)
            .map(|(_, p)| p)
    }

    /// Every state (non-memory) chunk with its payload.
    pub fn state_chunks(&self) -> impl Iterator<Item = (&ChunkInfo, &[u8])> {
        self.chunks
            .iter()
            .zip(&self.payloads)
            .filter(|(c, _)| c.kind != ChunkKind::Memory)
            .map(|(c, p)| (c, p.as_slice()))
    }

    /// Every stored memory range as (guest physical address, length in bytes).
    pub fn memory_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.chunks
            .iter()
            .filter(|c| c.kind == ChunkKind::Memory)
            .map(|c| (c.id, c.length))
    }

    /// Bytes of guest RAM stored (zero pages excluded).
    pub fn stored_memory(&self) -> u64 {
        self.memory_ranges().map(|(_, len)| len).sum()
    }

    /// Streams the stored guest pages back: calls `page(guest_address, bytes)` for every
    /// stored [`PAGE_SIZE`]-byte page; pages not stored are zero. Checksums are checked
    /// again; if the disk changed since validation, an error is returned after the
    /// damaged chunk's pages have been delivered, and the caller must discard the RAM.
    pub fn read_memory<D: Disk>(
        &self,
        disk: &D,
        mut page: impl FnMut(u64, &[u8]),
    ) -> Result<(), SnapshotError> {
        let mut buf = vec![0u8; MEMORY_BATCH_PAGES * PAGE_SIZE];
        for (index, chunk) in self.chunks.iter().enumerate() {
            if chunk.kind != ChunkKind::Memory {
                continue;
            }
            let mut crc = Crc32::new();
            let pages = chunk.length / PAGE_SIZE as u64;
            let per_page = sectors_for(PAGE_SIZE as u64);
            let mut n = 0;
            while n < pages {
                let batch = (pages - n).min(MEMORY_BATCH_PAGES as u64);
                let bytes = &mut buf[..batch as usize * PAGE_SIZE];
                disk.read(chunk.payload_sector + n * per_page, bytes)?;
                crc.update(bytes);
                for (k, one) in bytes.chunks(PAGE_SIZE).enumerate() {
                    page(chunk.id + (n + k as u64) * PAGE_SIZE as u64, one);
                }
                n += batch;
            }
            if crc.finish() != chunk.payload_crc {
                let offset = (chunk.payload_sector - 1 - self.data_base) * SECTOR_SIZE as u64;
                return Err(SnapshotError::Slot {
                    slot: self.slot,
                    problem: SlotProblem::Chunk {
                        index: index as u32,
                        offset,
                        problem: ChunkProblem::PayloadChecksum,
                    },
                });
            }
        }
        Ok(())
    }
}

/// How much of a slot [`read_snapshot_checking`] reads before it trusts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Every byte, guest RAM included: what [`read_snapshot`] does.
    Everything,
    /// Everything but the guest RAM payloads, whose checksums
    /// [`Snapshot::read_memory`] checks as it streams them: a restore reads them
    /// once instead of twice. Memory chunk headers, positions and sizes are still
    /// checked.
    AllButMemory,
}

/// Reads the newest valid snapshot. If no slot holds a valid one, the error names the
/// damaged slot (preferring one whose header is intact, as that is the more specific
/// report), or is [`SnapshotError::NoSnapshot`] if both are empty.
pub fn read_snapshot<D: Disk>(disk: &D) -> Result<Snapshot, SnapshotError> {
    read_snapshot_checking(disk, Check::Everything)
}

/// [`read_snapshot`], checking what `check` says.
pub fn read_snapshot_checking<D: Disk>(disk: &D, check: Check) -> Result<Snapshot, SnapshotError> {
    read_superblock(disk)?;
    let mut best: Option<Snapshot> = None;
    let mut failure: Option<(u8, SlotProblem)> = None;
    for slot in 0..SLOTS {
        match read_slot_checking(disk, slot, check) {
            Ok(snapshot) => {
                if best.as_ref().is_none_or(|b| snapshot.sequence > b.sequence) {
                    best = Some(snapshot);
                }
            }
            Err(SnapshotError::Slot { slot, problem }) => {
                if rank(problem) > failure.map_or(0, |(_, p)| rank(p)) {
                    failure = Some((slot, problem));
                }
            }
            Err(other) => return Err(other),
        }
    }
    match (best, failure) {
        (Some(snapshot), _) => Ok(snapshot),
        (None, Some((slot, problem))) => Err(SnapshotError::Slot { slot, problem }),
        (None, None) => Err(SnapshotError::NoSnapshot),
    }
}

/// How informative a slot problem is as the reason nothing could be restored.
fn rank(problem: SlotProblem) -> u8 {
    match problem {
        SlotProblem::Empty => 0,
        SlotProblem::Foreign | SlotProblem::HeaderChecksum => 1,
        _ => 2,
    }
}

/// Reads and validates the snapshot in `slot` (0 = A, 1 = B).
pub fn read_slot<D: Disk>(disk: &D, slot: u8) -> Result<Snapshot, SnapshotError> {
    read_slot_checking(disk, slot, Check::Everything)
}

/// [`read_slot`], checking what `check` says.
pub fn read_slot_checking<D: Disk>(
    disk: &D,
    slot: u8,
    check: Check,
) -> Result<Snapshot, SnapshotError> {
    let superblock = read_superblock(disk)?;
    if slot >= SLOTS {
        return Err(SnapshotError::InvalidInput("no such slot"));
    }
    let fail = |problem| SnapshotError::Slot { slot, problem };
    let mut s: Sector = [0; SECTOR_SIZE];
    disk.read(header_sector(slot), &mut s)?;
    let header = SlotHeader::decode(&s, slot, superblock.slot_sectors).map_err(fail)?;
    let base = data_sector(slot, superblock.slot_sectors);
    let total = header.length / SECTOR_SIZE as u64;
    let mut snapshot = Snapshot {
        slot,
        sequence: header.sequence,
        created: header.created,
        length: header.length,
        data_base: base,
        chunks: Vec::new(),
        payloads: Vec::new(),
    };
    let mut batch = vec![0u8; READ_BATCH_SECTORS * SECTOR_SIZE];
    let mut position = 0u64;
    for index in 0..header.chunk_count {
        let chunk_fail = |problem| {
            fail(SlotProblem::Chunk {
                index,
                offset: position * SECTOR_SIZE as u64,
                problem,
            })
        };
        if position >= total {
            return Err(chunk_fail(ChunkProblem::Overruns));
        }
        disk.read(base + position, &mut s)?;
        let chunk = ChunkHeader::decode(&s).map_err(chunk_fail)?;
        if chunk.sequence != header.sequence {
            return Err(chunk_fail(ChunkProblem::WrongSequence));
        }
        let payload_sectors = sectors_for(chunk.length);
        if payload_sectors > total - position - 1 {
            return Err(chunk_fail(ChunkProblem::Overruns));
        }
        let is_memory = chunk.kind == ChunkKind::Memory;
        if is_memory {
            let aligned = chunk.id % PAGE_SIZE as u64 == 0 && chunk.length % PAGE_SIZE as u64 == 0;
            if !aligned || chunk.length == 0 || chunk.id.checked_add(chunk.length).is_none() {
                return Err(chunk_fail(ChunkProblem::BadMemoryRange));
            }
        } else if chunk.length > MAX_STATE_CHUNK {
            return Err(chunk_fail(ChunkProblem::TooLarge));
        }
        // Check the payload (and that its padding is zero), keeping state payloads.
        let mut payload = Vec::new();
        let mut crc = Crc32::new();
        let mut remaining = chunk.length;
        let mut sector = position + 1;
        let skip_payload = is_memory && check == Check::AllButMemory;
        let mut left = if skip_payload { 0 } else { payload_sectors };
        while left > 0 {
            let n = left.min(READ_BATCH_SECTORS as u64);
            let bytes = &mut batch[..n as usize * SECTOR_SIZE];
            disk.read(base + sector, bytes)?;
            let used = remaining.min(bytes.len() as u64) as usize;
            crc.update(&bytes[..used]);
            if !is_memory {
                payload.extend_from_slice(&bytes[..used]);
            }
            if bytes[used..].iter().any(|&b| b != 0) {
                return Err(chunk_fail(ChunkProblem::NonZeroPadding));
            }
            remaining -= used as u64;
            sector += n;
            left -= n;
        }
        if !skip_payload && crc.finish() != chunk.payload_crc {
            return Err(chunk_fail(ChunkProblem::PayloadChecksum));
        }
        snapshot.chunks.push(ChunkInfo {
            kind: chunk.kind,
            id: chunk.id,
            length: chunk.length,
            payload_sector: base + position + 1,
            payload_crc: chunk.payload_crc,
        });
        snapshot.payloads.push(payload);
        position += 1 + payload_sectors;
    }
    if position != total {
        return Err(fail(SlotProblem::TrailingData));
    }
    let mut ranges: Vec<(u64, u64)> = snapshot.memory_ranges().collect();
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0) {
        return Err(fail(SlotProblem::OverlappingMemory));
    }
    Ok(snapshot)
}
