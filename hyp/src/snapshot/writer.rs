//! Writing a snapshot into the slot that holds the older one.

use super::crc::Crc32;
use super::disk::Disk;
use super::error::{SnapshotError, SuperblockProblem};
use super::layout::{ChunkHeader, Sector, SlotHeader, Superblock, is_blank};
use super::{
    ChunkKind, DATA_START, PAGE_SIZE, SECTOR_SIZE, SLOTS, SUPERBLOCK_SECTOR, data_sector,
    header_sector, sectors_for,
};

/// Formats `disk` for snapshots: writes the superblock, clears both slot headers and
/// splits the rest of the disk into two equal data areas. Any snapshot on it is lost.
pub fn format<D: Disk>(disk: &mut D) -> Result<(), SnapshotError> {
    check_sector_size(disk)?;
    let slot_sectors = disk.sectors().saturating_sub(DATA_START) / u64::from(SLOTS);
    if slot_sectors == 0 {
        return Err(SnapshotError::TooLarge { available: 0 });
    }
    let blank: Sector = [0; SECTOR_SIZE];
    for slot in 0..SLOTS {
        disk.write(header_sector(slot), &blank)?;
    }
    disk.write(SUPERBLOCK_SECTOR, &Superblock { slot_sectors }.encode())?;
    disk.flush()?;
    Ok(())
}

/// Refuses disks whose sectors are not [`SECTOR_SIZE`] bytes.
pub(super) fn check_sector_size<D: Disk>(disk: &D) -> Result<(), SnapshotError> {
    match disk.sector_size() {
        SECTOR_SIZE => Ok(()),
        other => Err(SnapshotError::UnsupportedSectorSize(other)),
    }
}

/// Reads and checks the superblock, and that the slots it describes fit on the disk.
pub(super) fn read_superblock<D: Disk>(disk: &D) -> Result<Superblock, SnapshotError> {
    check_sector_size(disk)?;
    let mut s: Sector = [0; SECTOR_SIZE];
    disk.read(SUPERBLOCK_SECTOR, &mut s)?;
    if is_blank(&s) {
        return Err(SnapshotError::NotFormatted);
    }
    let superblock = Superblock::decode(&s).map_err(SnapshotError::BadSuperblock)?;
    let needed = superblock
        .slot_sectors
        .checked_mul(u64::from(SLOTS))
        .and_then(|n| n.checked_add(DATA_START))
        .ok_or(SnapshotError::BadSuperblock(SuperblockProblem::BadField(
            "slot size",
        )))?;
    if needed > disk.sectors() {
        return Err(SnapshotError::Truncated {
            needed,
            available: disk.sectors(),
        });
    }
    Ok(superblock)
}

/// What [`SnapshotWriter::add_memory`] stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Pages offered.
    pub pages: u64,
    /// Pages stored (the others were all zero).
    pub stored: u64,
    /// Memory-range chunks written.
    pub chunks: u32,
}

/// A memory-range chunk being streamed out.
struct Run {
    /// Data-area sector of its header.
    header_sector: u64,
    /// Guest physical address of its first page.
    guest_address: u64,
    /// Payload bytes so far.
    length: u64,
    /// Payload CRC so far.
    crc: Crc32,
}

/// Writes one snapshot: [`begin`](Self::begin), any number of
/// [`add_chunk`](Self::add_chunk) / [`add_memory`](Self::add_memory), then
/// [`commit`](Self::commit). Dropping the writer without committing leaves the target
/// slot empty and the other slot's snapshot untouched.
pub struct SnapshotWriter<'d, D: Disk> {
    disk: &'d mut D,
    slot: u8,
    sequence: u64,
    created: u64,
    /// Sectors per data area.
    slot_sectors: u64,
    /// Next free sector, relative to the data area.
    cursor: u64,
    chunk_count: u32,
}

impl<'d, D: Disk> SnapshotWriter<'d, D> {
    /// Starts a snapshot in the slot holding the older (or no, or a damaged) snapshot,
    /// formatting a blank disk first. The target slot's header is cleared (and flushed)
    /// before anything else is written, so its old data can never be mixed with new.
    pub fn begin(disk: &'d mut D) -> Result<Self, SnapshotError> {
        let superblock = match read_superblock(disk) {
            Err(SnapshotError::NotFormatted) => {
                format(disk)?;
                read_superblock(disk)?
            }
            other => other?,
        };
        let mut sequences = [None; SLOTS as usize];
        for slot in 0..SLOTS {
            let mut s: Sector = [0; SECTOR_SIZE];
            disk.read(header_sector(slot), &mut s)?;
            sequences[usize::from(slot)] = SlotHeader::decode(&s, slot, superblock.slot_sectors)
                .ok()
                .map(|h| h.sequence);
        }
        // The target is the slot without a valid header, else the older one.
        let slot = match sequences {
            [None, _] => 0,
            [Some(_), None] => 1,
            [Some(a), Some(b)] => u8::from(a > b),
        };
        let newest = sequences.iter().flatten().copied().max().unwrap_or(0);
        let sequence = newest
            .checked_add(1)
            .ok_or(SnapshotError::InvalidInput("sequence number exhausted"))?;
        disk.write(header_sector(slot), &[0; SECTOR_SIZE])?;
        disk.flush()?;
        Ok(Self {
            disk,
            slot,
            sequence,
            created: 0,
            slot_sectors: superblock.slot_sectors,
            cursor: 0,
            chunk_count: 0,
        })
    }

    /// The slot being written (0 = A, 1 = B).
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// The new snapshot's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Sets the creation counter recorded in the header (e.g. a timestamp).
    pub fn set_created(&mut self, created: u64) {
        self.created = created;
    }

    /// Bytes of the data area used so far.
    pub fn bytes_written(&self) -> u64 {
        self.cursor * SECTOR_SIZE as u64
    }

    /// Writes `sectors` (a whole number of sectors) at data-area sector `at`, checking
    /// that they fit in the slot.
    fn write_at(&mut self, at: u64, bytes: &[u8]) -> Result<(), SnapshotError> {
        let count = (bytes.len() / SECTOR_SIZE) as u64;
        if at + count > self.slot_sectors {
            return Err(SnapshotError::TooLarge {
                available: self.slot_sectors,
            });
        }
        let base = data_sector(self.slot, self.slot_sectors);
        self.disk.write(base + at, bytes)?;
        Ok(())
    }

    /// Reserves the next sector for a chunk header and returns its position.
    fn reserve_header(&mut self) -> Result<u64, SnapshotError> {
        if self.cursor >= self.slot_sectors {
            return Err(SnapshotError::TooLarge {
                available: self.slot_sectors,
            });
        }
        self.chunk_count = self
            .chunk_count
            .checked_add(1)
            .ok_or(SnapshotError::InvalidInput("too many chunks"))?;
        let at = self.cursor;
        self.cursor += 1;
        Ok(at)
    }

    /// Writes a chunk header at data-area sector `at`.
    fn write_header(
        &mut self,
        at: u64,
        kind: ChunkKind,
        id: u64,
        length: u64,
        crc: u32,
    ) -> Result<(), SnapshotError> {
        let header = ChunkHeader {
            kind,
            id,
            length,
            sequence: self.sequence,
            payload_crc: crc,
        };
        self.write_at(at, &header.encode())
    }

    /// Adds a state chunk (metadata, vCPU or device state; not memory).
    pub fn add_chunk(
        &mut self,
        kind: ChunkKind,
        id: u64,
        bytes: &[u8],
    ) -> Result<(), SnapshotError> {
        if kind == ChunkKind::Memory {
            return Err(SnapshotError::InvalidInput(
                "guest memory goes through add_memory",
            ));
        }
        if bytes.len() as u64 > super::MAX_STATE_CHUNK {
            return Err(SnapshotError::InvalidInput(
                "state chunk larger than MAX_STATE_CHUNK",
            ));
        }
        let at = self.reserve_header()?;
        let whole = bytes.len() / SECTOR_SIZE * SECTOR_SIZE;
        self.write_at(self.cursor, &bytes[..whole])?;
        self.cursor += (whole / SECTOR_SIZE) as u64;
        if whole < bytes.len() {
            let mut last: Sector = [0; SECTOR_SIZE];
            last[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
            self.write_at(self.cursor, &last)?;
            self.cursor += 1;
        }
        let mut crc = Crc32::new();
        crc.update(bytes);
        self.write_header(at, kind, id, bytes.len() as u64, crc.finish())
    }

    /// Adds guest RAM starting at guest physical address `guest_base` (page-aligned),
    /// one [`PAGE_SIZE`]-byte page per item. All-zero pages are skipped; each run of
    /// consecutive non-zero pages becomes one memory-range chunk. Pages are streamed to
    /// the disk as they come.
    pub fn add_memory<'p>(
        &mut self,
        guest_base: u64,
        pages: impl IntoIterator<Item = &'p [u8]>,
    ) -> Result<MemoryStats, SnapshotError> {
        if guest_base % PAGE_SIZE as u64 != 0 {
            return Err(SnapshotError::InvalidInput(
                "guest memory base is not page-aligned",
            ));
        }
        let mut stats = MemoryStats::default();
        let mut run: Option<Run> = None;
        for page in pages {
            if page.len() != PAGE_SIZE {
                return Err(SnapshotError::InvalidInput("memory page is not 4096 bytes"));
            }
            let address = stats
                .pages
                .checked_mul(PAGE_SIZE as u64)
                .and_then(|offset| guest_base.checked_add(offset))
                .ok_or(SnapshotError::InvalidInput("guest memory range wraps"))?;
            stats.pages += 1;
            if is_blank(page) {
                if let Some(done) = run.take() {
                    self.finish_run(done)?;
                }
                continue;
            }
            let current = match run.as_mut() {
                Some(current) => current,
                None => {
                    let header_sector = self.reserve_header()?;
                    stats.chunks += 1;
                    run.insert(Run {
                        header_sector,
                        guest_address: address,
                        length: 0,
                        crc: Crc32::new(),
                    })
                }
            };
            current.crc.update(page);
            current.length += PAGE_SIZE as u64;
            let at = self.cursor;
            self.write_at(at, page)?;
            self.cursor += sectors_for(PAGE_SIZE as u64);
            stats.stored += 1;
        }
        if let Some(done) = run.take() {
            self.finish_run(done)?;
        }
        Ok(stats)
    }

    /// Writes the header of a finished memory-range chunk.
    fn finish_run(&mut self, run: Run) -> Result<(), SnapshotError> {
        self.write_header(
            run.header_sector,
            ChunkKind::Memory,
            run.guest_address,
            run.length,
            run.crc.finish(),
        )
    }

    /// Makes the snapshot valid: flushes the chunks, writes the slot header, flushes.
    /// Returns the sequence number.
    pub fn commit(self) -> Result<u64, SnapshotError> {
        self.disk.flush()?;
        let header = SlotHeader {
            slot: self.slot,
            sequence: self.sequence,
            created: self.created,
            length: self.cursor * SECTOR_SIZE as u64,
            chunk_count: self.chunk_count,
        };
        self.disk
            .write(header_sector(self.slot), &header.encode())?;
        self.disk.flush()?;
        Ok(self.sequence)
    }
}
