//! virtio-blk (virtio 1.2, section 5.2): a disk over a [`BlockBackend`].
//!
//! One request queue ([`QUEUE_SIZE`] entries). Each request is
//! `le32 type; le32 reserved; le64 sector` (device-readable), then data, then one
//! status byte (device-writable, the last byte of the chain), in any arrangement of
//! descriptors (section 2.7.4). Supported:
//!
//! | type | meaning | data |
//! |---|---|---|
//! | `T_IN` (0) | read sectors | writable, a multiple of 512 bytes |
//! | `T_OUT` (1) | write sectors | readable, a multiple of 512 bytes |
//! | `T_FLUSH` (4) | make completed writes stable | none |
//! | `T_GET_ID` (8) | the 20-byte device ID string | writable |
//! | `T_DISCARD` (11) | forget sectors (the backend may do nothing) | readable ranges |
//! | `T_WRITE_ZEROES` (13) | zero sectors | readable ranges |
//!
//! Answers: `S_OK`; `S_IOERR` for sectors past the capacity, data that is not a
//! multiple of 512 bytes, writes to a read-only disk (`VIRTIO_BLK_F_RO`, "MUST NOT
//! write any data"), malformed ranges and backend errors; `S_UNSUPP` for other types,
//! for discard/write-zeroes when not negotiated, and for unknown range flags
//! (section 5.2.6.2). A request whose status byte cannot even be written (no writable
//! byte, or fewer than 16 readable header bytes) is a malformed chain: the device
//! needs a reset.
//!
//! The used length is always the whole writable part: data the device could not
//! produce (after an error) is zero-filled, so the driver never sees stale memory
//! reported as written (section 2.7.8.1: "MUST write at least len bytes").
//!
//! Features offered: `SIZE_MAX`, `SEG_MAX`, `BLK_SIZE`, `FLUSH`, and `RO` for a
//! read-only backend or `DISCARD` and `WRITE_ZEROES` for a writable one. Without
//! `FLUSH` negotiated, every write is flushed before it completes (section 5.2.6.2,
//! case 1: such writes must be stable on completion).
//!
//! Bounds: data moves through one bounce buffer of [`BOUNCE_SIZE`] bytes, allocated
//! when the device is created; a request of any size is done in chunks of it.

use super::DeviceType;
use super::chain::Chain;
use super::guest_memory::GuestMemory;
use super::queue::{Queue, QueueError, QueueFault};
use super::transport::{StateError, TRANSPORT_FEATURES, VirtioDevice, read_config_image};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Bytes in a sector: the protocol's unit, whatever the disk's block size.
pub const SECTOR_SIZE: u64 = 512;
/// The request queue's maximum size.
pub const QUEUE_SIZE: u16 = 256;
/// The request queue's index.
pub const REQUEST_QUEUE: usize = 0;
/// Size of the bounce buffer through which data moves.
pub const BOUNCE_SIZE: usize = 64 * 1024;
/// `seg_max`: data segments per request (the queue size less header and status, as
/// a direct chain needs).
pub const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// `size_max`: the largest data segment.
pub const SIZE_MAX: u32 = 1024 * 1024;
/// `max_discard_sectors`.
pub const MAX_DISCARD_SECTORS: u32 = 1 << 22;
/// `max_write_zeroes_sectors`: 8 MiB, done in bounce-buffer chunks.
pub const MAX_WRITE_ZEROES_SECTORS: u32 = 1 << 14;
/// `max_discard_seg` and `max_write_zeroes_seg`: one range per request.
pub const MAX_RANGES: u32 = 1;
/// `discard_sector_alignment`: 4 KiB.
pub const DISCARD_ALIGNMENT: u32 = 8;
/// Length of the ID string `T_GET_ID` returns.
pub const ID_BYTES: usize = 20;

/// Feature bits (section 5.2.3).
pub mod feature {
    /// `VIRTIO_BLK_F_SIZE_MAX`: `size_max` is valid.
    pub const SIZE_MAX: u64 = 1 << 1;
    /// `VIRTIO_BLK_F_SEG_MAX`: `seg_max` is valid.
    pub const SEG_MAX: u64 = 1 << 2;
    /// `VIRTIO_BLK_F_RO`: the disk is read-only.
    pub const RO: u64 = 1 << 5;
    /// `VIRTIO_BLK_F_BLK_SIZE`: `blk_size` is valid.
    pub const BLK_SIZE: u64 = 1 << 6;
    /// `VIRTIO_BLK_F_FLUSH`: `T_FLUSH` is supported.
    pub const FLUSH: u64 = 1 << 9;
    /// `VIRTIO_BLK_F_DISCARD`: `T_DISCARD` is supported.
    pub const DISCARD: u64 = 1 << 13;
    /// `VIRTIO_BLK_F_WRITE_ZEROES`: `T_WRITE_ZEROES` is supported.
    pub const WRITE_ZEROES: u64 = 1 << 14;
}

/// Request types (section 5.2.6).
pub mod request {
    /// `VIRTIO_BLK_T_IN`: read.
    pub const IN: u32 = 0;
    /// `VIRTIO_BLK_T_OUT`: write.
    pub const OUT: u32 = 1;
    /// `VIRTIO_BLK_T_FLUSH`.
    pub const FLUSH: u32 = 4;
    /// `VIRTIO_BLK_T_GET_ID`.
    pub const GET_ID: u32 = 8;
    /// `VIRTIO_BLK_T_DISCARD`.
    pub const DISCARD: u32 = 11;
    /// `VIRTIO_BLK_T_WRITE_ZEROES`.
    pub const WRITE_ZEROES: u32 = 13;
    /// Size of the header (`type`, `reserved`, `sector`).
    pub const HEADER_SIZE: u64 = 16;
    /// Offset of `type` in the header.
    pub const TYPE: usize = 0;
    /// Offset of `sector` in the header.
    pub const SECTOR: usize = 8;
    /// Size of one discard/write-zeroes range
    /// (`le64 sector; le32 num_sectors; le32 flags`).
    pub const RANGE_SIZE: u64 = 16;
    /// Range `flags` bit 0: `unmap` (write zeroes only).
    pub const RANGE_UNMAP: u32 = 1;
}

/// Status byte values (section 5.2.6).
pub mod status {
    /// `VIRTIO_BLK_S_OK`.
    pub const OK: u8 = 0;
    /// `VIRTIO_BLK_S_IOERR`.
    pub const IOERR: u8 = 1;
    /// `VIRTIO_BLK_S_UNSUPP`.
    pub const UNSUPP: u8 = 2;
}

/// Configuration space offsets (section 5.2.4, `struct virtio_blk_config`).
pub mod config {
    /// `le64 capacity`, in 512-byte sectors.
    pub const CAPACITY: usize = 0;
    /// `le32 size_max`.
    pub const SIZE_MAX: usize = 8;
    /// `le32 seg_max`.
    pub const SEG_MAX: usize = 12;
    /// `le32 blk_size`.
    pub const BLK_SIZE: usize = 20;
    /// `le32 max_discard_sectors`.
    pub const MAX_DISCARD_SECTORS: usize = 36;
    /// `le32 max_discard_seg`.
    pub const MAX_DISCARD_SEG: usize = 40;
    /// `le32 discard_sector_alignment`.
    pub const DISCARD_SECTOR_ALIGNMENT: usize = 44;
    /// `le32 max_write_zeroes_sectors`.
    pub const MAX_WRITE_ZEROES_SECTORS: usize = 48;
    /// `le32 max_write_zeroes_seg`.
    pub const MAX_WRITE_ZEROES_SEG: usize = 52;
    /// `u8 write_zeroes_may_unmap`.
    pub const WRITE_ZEROES_MAY_UNMAP: usize = 56;
    /// Bytes up to and including the write-zeroes fields and their padding.
    pub const SIZE: usize = 60;
}

/// A backend operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendError(pub &'static str);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk error: {}", self.0)
    }
}

/// The storage behind a virtio-blk device, in 512-byte sectors.
///
/// The device only calls `read`/`write` with buffers that are a non-zero multiple
/// of [`SECTOR_SIZE`] and at most [`BOUNCE_SIZE`] bytes, for sectors inside
/// [`capacity_sectors`](Self::capacity_sectors), and never `write` if
/// [`read_only`](Self::read_only).
pub trait BlockBackend {
    /// The size in sectors.
    fn capacity_sectors(&self) -> u64;
    /// Fills `buffer` from the disk, starting at `sector`.
    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError>;
    /// Writes `bytes` to the disk, starting at `sector`.
    fn write(&mut self, sector: u64, bytes: &[u8]) -> Result<(), BackendError>;
    /// Makes completed writes stable.
    fn flush(&mut self) -> Result<(), BackendError>;
    /// Whether the disk refuses writes.
    fn read_only(&self) -> bool;
    /// The device ID string: ASCII, NUL-padded.
    fn id(&self) -> [u8; ID_BYTES];
    /// Forgets `count` sectors from `sector` (their contents become undefined). The
    /// default does nothing, which discard allows.
    fn discard(&mut self, sector: u64, count: u64) -> Result<(), BackendError> {
        let _ = (sector, count);
        Ok(())
    }
}

/// A disk held in memory, for tests: sectors in a `Vec`, with failures on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryDisk {
    /// The disk's bytes (a multiple of 512).
    pub bytes: Vec<u8>,
    /// Whether writes are refused.
    pub read_only: bool,
    /// The ID string.
    pub id: [u8; ID_BYTES],
    /// Make every read fail.
    pub fail_reads: bool,
    /// Make every write fail.
    pub fail_writes: bool,
    /// Number of successful flushes.
    pub flushes: u64,
}

impl MemoryDisk {
    /// A zeroed writable disk of `sectors` sectors with ID `"aerie-memory-disk"`.
    pub fn new(sectors: usize) -> Self {
        let mut id = [0; ID_BYTES];
        let name = b"aerie-memory-disk";
        id[..name.len()].copy_from_slice(name);
        Self {
            bytes: vec![0; sectors * SECTOR_SIZE as usize],
            read_only: false,
            id,
            fail_reads: false,
            fail_writes: false,
            flushes: 0,
        }
    }

    fn range(&self, sector: u64, length: usize) -> Result<core::ops::Range<usize>, BackendError> {
        let start = usize::try_from(sector)
            .ok()
            .and_then(|sector| sector.checked_mul(SECTOR_SIZE as usize));
        let end = start.and_then(|start| start.checked_add(length));
        match (start, end) {
            (Some(start), Some(end)) if end <= self.bytes.len() => Ok(start..end),
            _ => Err(BackendError("access past the end of the disk")),
        }
    }
}

impl BlockBackend for MemoryDisk {
    fn capacity_sectors(&self) -> u64 {
        self.bytes.len() as u64 / SECTOR_SIZE
    }

    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        if self.fail_reads {
            return Err(BackendError("injected read failure"));
        }
        let range = self.range(sector, buffer.len())?;
        buffer.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, sector: u64, bytes: &[u8]) -> Result<(), BackendError> {
        if self.fail_writes || self.read_only {
            return Err(BackendError("injected write failure"));
        }
        let range = self.range(sector, bytes.len())?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.flushes += 1;
        Ok(())
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn id(&self) -> [u8; ID_BYTES] {
        self.id
    }
}

/// Request counters (not part of the saved state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// `T_IN` requests.
    pub reads: u64,
    /// `T_OUT` requests.
    pub writes: u64,
    /// `T_FLUSH` requests.
    pub flushes: u64,
    /// Bytes read from the disk for the guest.
    pub bytes_read: u64,
    /// Bytes written to the disk for the guest.
    pub bytes_written: u64,
    /// Requests answered `S_IOERR`.
    pub io_errors: u64,
    /// Requests answered `S_UNSUPP`.
    pub unsupported: u64,
}

/// The block device's state as plain data: the features negotiated.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct BlockState {
    /// The negotiated features (0 before `DRIVER_OK`).
    pub features: u64,
}

/// The virtio-blk device-specific part.
#[derive(Debug)]
pub struct Block<B: BlockBackend> {
    backend: B,
    features: u64,
    chain: Chain,
    bounce: Vec<u8>,
    stats: BlockStats,
}

/// What a request came to: its status and how many data bytes were produced at the
/// start of the writable part.
struct Outcome {
    status: u8,
    written: u64,
}

impl Outcome {
    const fn status(status: u8) -> Self {
        Self { status, written: 0 }
    }
}

impl<B: BlockBackend> Block<B> {
    /// A virtio-blk device over `backend`.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            features: 0,
            chain: Chain::new(),
            bounce: vec![0; BOUNCE_SIZE],
            stats: BlockStats::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, writable.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Counters.
    pub const fn stats(&self) -> BlockStats {
        self.stats
    }

    fn negotiated(&self, feature: u64) -> bool {
        self.features & feature != 0
    }

    /// The configuration space image.
    fn config(&self) -> [u8; config::SIZE] {
        let mut image = [0; config::SIZE];
        let mut put = |offset: usize, bytes: &[u8]| {
            image[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(
            config::CAPACITY,
            &self.backend.capacity_sectors().to_le_bytes(),
        );
        put(config::SIZE_MAX, &SIZE_MAX.to_le_bytes());
        put(config::SEG_MAX, &SEG_MAX.to_le_bytes());
        put(config::BLK_SIZE, &(SECTOR_SIZE as u32).to_le_bytes());
        put(
            config::MAX_DISCARD_SECTORS,
            &MAX_DISCARD_SECTORS.to_le_bytes(),
        );
        put(config::MAX_DISCARD_SEG, &MAX_RANGES.to_le_bytes());
        put(
            config::DISCARD_SECTOR_ALIGNMENT,
            &DISCARD_ALIGNMENT.to_le_bytes(),
        );
        put(
            config::MAX_WRITE_ZEROES_SECTORS,
            &MAX_WRITE_ZEROES_SECTORS.to_le_bytes(),
        );
        put(config::MAX_WRITE_ZEROES_SEG, &MAX_RANGES.to_le_bytes());
        // Zeroes are written, never unmapped.
        put(config::WRITE_ZEROES_MAY_UNMAP, &[0]);
        image
    }

    /// Whether `count` sectors from `sector` lie inside the disk.
    fn in_range(&self, sector: u64, count: u64) -> bool {
        sector
            .checked_add(count)
            .is_some_and(|end| end <= self.backend.capacity_sectors())
    }

    /// Handles the chain in `self.chain`; returns the used length.
    fn handle(&mut self, memory: &mut dyn GuestMemory) -> Result<u32, QueueError> {
        let readable = self.chain.readable_len();
        let writable = self.chain.writable_len();
        if readable < request::HEADER_SIZE {
            return Err(QueueError::BadRequest(
                "a block request is shorter than its 16-byte header",
            ));
        }
        if writable == 0 {
            return Err(QueueError::BadRequest(
                "a block request has no writable byte for its status",
            ));
        }
        let mut header = [0; request::HEADER_SIZE as usize];
        self.chain.read(memory, 0, &mut header)?;
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let mut sector_bytes = [0; 8];
        sector_bytes.copy_from_slice(&header[request::SECTOR..request::SECTOR + 8]);
        let sector = u64::from_le_bytes(sector_bytes);
        let data_in = writable - 1;
        let data_out = readable - request::HEADER_SIZE;
        let outcome = match kind {
            request::IN => self.read(memory, sector, data_in)?,
            request::OUT => self.write(memory, sector, data_out)?,
            request::FLUSH => self.flush(),
            request::GET_ID => self.get_id(memory, data_in)?,
            request::DISCARD | request::WRITE_ZEROES => self.ranges(memory, kind, data_out)?,
            _ => Outcome::status(status::UNSUPP),
        };
        match outcome.status {
            status::IOERR => self.stats.io_errors += 1,
            status::UNSUPP => self.stats.unsupported += 1,
            _ => {}
        }
        // Zero what the request did not produce, so that the used length (the whole
        // writable part) is true; then the status byte, last.
        self.zero(memory, outcome.written, data_in)?;
        self.chain.write(memory, data_in, &[outcome.status])?;
        Ok(u32::try_from(writable).unwrap_or(u32::MAX))
    }

    /// Zeroes the writable stream from `start` to `end`.
    fn zero(
        &mut self,
        memory: &mut dyn GuestMemory,
        start: u64,
        end: u64,
    ) -> Result<(), QueueError> {
        let mut at = start;
        if at < end {
            self.bounce.fill(0);
        }
        while at < end {
            let take = (end - at).min(BOUNCE_SIZE as u64) as usize;
            self.chain.write(memory, at, &self.bounce[..take])?;
            at += take as u64;
        }
        Ok(())
    }

    /// Checks a read or write of `length` bytes at `sector`: a whole number of
    /// sectors inside the disk.
    fn transfer_ok(&self, sector: u64, length: u64) -> bool {
        length % SECTOR_SIZE == 0 && self.in_range(sector, length / SECTOR_SIZE)
    }

    fn read(
        &mut self,
        memory: &mut dyn GuestMemory,
        sector: u64,
        length: u64,
    ) -> Result<Outcome, QueueError> {
        self.stats.reads += 1;
        if !self.transfer_ok(sector, length) {
            return Ok(Outcome::status(status::IOERR));
        }
        let mut done = 0;
        while done < length {
            let take = (length - done).min(BOUNCE_SIZE as u64) as usize;
            let buffer = &mut self.bounce[..take];
            if self
                .backend
                .read(sector + done / SECTOR_SIZE, buffer)
                .is_err()
            {
                return Ok(Outcome {
                    status: status::IOERR,
                    written: done,
                });
            }
            self.chain.write(memory, done, buffer)?;
            done += take as u64;
            self.stats.bytes_read += take as u64;
        }
        Ok(Outcome {
            status: status::OK,
            written: length,
        })
    }

    fn write(
        &mut self,
        memory: &mut dyn GuestMemory,
        sector: u64,
        length: u64,
    ) -> Result<Outcome, QueueError> {
        self.stats.writes += 1;
        if self.backend.read_only() || !self.transfer_ok(sector, length) {
            return Ok(Outcome::status(status::IOERR));
        }
        let mut done = 0;
        while done < length {
            let take = (length - done).min(BOUNCE_SIZE as u64) as usize;
            let buffer = &mut self.bounce[..take];
            self.chain
                .read(memory, request::HEADER_SIZE + done, buffer)?;
            if self
                .backend
                .write(sector + done / SECTOR_SIZE, buffer)
                .is_err()
            {
                return Ok(Outcome::status(status::IOERR));
            }
            done += take as u64;
            self.stats.bytes_written += take as u64;
        }
        Ok(Outcome::status(self.complete_write()))
    }

    /// After a write: without `FLUSH` negotiated, writes must be stable when they
    /// complete.
    fn complete_write(&mut self) -> u8 {
        if self.negotiated(feature::FLUSH) || self.backend.flush().is_ok() {
            status::OK
        } else {
            status::IOERR
        }
    }

    fn flush(&mut self) -> Outcome {
        self.stats.flushes += 1;
        match self.backend.flush() {
            Ok(()) => Outcome::status(status::OK),
            Err(_) => Outcome::status(status::IOERR),
        }
    }

    fn get_id(&mut self, memory: &mut dyn GuestMemory, length: u64) -> Result<Outcome, QueueError> {
        let id = self.backend.id();
        let take = length.min(ID_BYTES as u64);
        self.chain.write(memory, 0, &id[..take as usize])?;
        Ok(Outcome {
            status: status::OK,
            written: take,
        })
    }

    /// `T_DISCARD` and `T_WRITE_ZEROES`: `length` bytes of ranges after the header.
    fn ranges(
        &mut self,
        memory: &mut dyn GuestMemory,
        kind: u32,
        length: u64,
    ) -> Result<Outcome, QueueError> {
        let discard = kind == request::DISCARD;
        let feature = if discard {
            feature::DISCARD
        } else {
            feature::WRITE_ZEROES
        };
        if !self.negotiated(feature) {
            return Ok(Outcome::status(status::UNSUPP));
        }
        if self.backend.read_only()
            || length == 0
            || length % request::RANGE_SIZE != 0
            || length / request::RANGE_SIZE > u64::from(MAX_RANGES)
        {
            return Ok(Outcome::status(status::IOERR));
        }
        let max = if discard {
            MAX_DISCARD_SECTORS
        } else {
            MAX_WRITE_ZEROES_SECTORS
        };
        let mut offset = request::HEADER_SIZE;
        while offset < request::HEADER_SIZE + length {
            let mut raw = [0; request::RANGE_SIZE as usize];
            self.chain.read(memory, offset, &mut raw)?;
            offset += request::RANGE_SIZE;
            let sector = u64::from_le_bytes([
                raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
            ]);
            let count = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
            let flags = u32::from_le_bytes([raw[12], raw[13], raw[14], raw[15]]);
            // Section 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP.
            if flags & !request::RANGE_UNMAP != 0 || (discard && flags != 0) {
                return Ok(Outcome::status(status::UNSUPP));
            }
            if count > max || !self.in_range(sector, u64::from(count)) {
                return Ok(Outcome::status(status::IOERR));
            }
            let result = if discard {
                self.backend.discard(sector, u64::from(count))
            } else {
                self.write_zeroes(sector, u64::from(count))
            };
            if result.is_err() {
                return Ok(Outcome::status(status::IOERR));
            }
        }
        if discard {
            return Ok(Outcome::status(status::OK));
        }
        Ok(Outcome::status(self.complete_write()))
    }

    fn write_zeroes(&mut self, sector: u64, count: u64) -> Result<(), BackendError> {
        self.bounce.fill(0);
        let sectors_per_chunk = BOUNCE_SIZE as u64 / SECTOR_SIZE;
        let mut done = 0;
        while done < count {
            let take = (count - done).min(sectors_per_chunk);
            let bytes = (take * SECTOR_SIZE) as usize;
            self.backend.write(sector + done, &self.bounce[..bytes])?;
            done += take;
        }
        Ok(())
    }
}

impl<B: BlockBackend> VirtioDevice for Block<B> {
    type State = BlockState;

    fn device_type(&self) -> DeviceType {
        DeviceType::Block
    }

    fn device_features(&self) -> u64 {
        let common = feature::SIZE_MAX | feature::SEG_MAX | feature::BLK_SIZE | feature::FLUSH;
        if self.backend.read_only() {
            common | feature::RO
        } else {
            common | feature::DISCARD | feature::WRITE_ZEROES
        }
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_image(&self.config(), offset, data);
    }

    fn activate(&mut self, features: u64) {
        self.features = features;
    }

    fn reset(&mut self) {
        self.features = 0;
    }

    fn process_queue(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        if queue != REQUEST_QUEUE {
            return Ok(());
        }
        let Some(requests) = queues.get_mut(REQUEST_QUEUE) else {
            return Ok(());
        };
        while requests
            .pop(memory, &mut self.chain)
            .map_err(|error| error.on(queue))?
        {
            let used = self.handle(memory).map_err(|error| error.on(queue))?;
            requests
                .add_used(memory, self.chain.head(), used)
                .map_err(|error| error.on(queue))?;
        }
        Ok(())
    }

    fn save(&self) -> BlockState {
        BlockState {
            features: self.features,
        }
    }

    fn restore(&mut self, state: &BlockState) -> Result<(), StateError> {
        if state.features & !(self.device_features() | TRANSPORT_FEATURES) != 0 {
            return Err(StateError(
                "the block device's features include ones it does not offer",
            ));
        }
        self.features = state.features;
        Ok(())
    }
}
