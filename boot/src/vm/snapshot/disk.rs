//! The snapshot disk: the host's virtio-blk disk with serial `aerie-snapshots`, as
//! the [`Disk`] the snapshot format is written to.
//!
//! The format writes a 4 KiB page at a time; one virtio request per page would make
//! a large snapshot slow, so consecutive writes are gathered in a buffer and sent as
//! one request when the buffer is full, when a write is not contiguous with it, on a
//! read and on [`Disk::flush`]. Buffered writes are not durable until a flush, which
//! is all the format relies on.

use crate::drivers::virtio_blk::HostDisk;
use aerie_hyp::snapshot::{Disk, DiskError};
use alloc::vec::Vec;
use core::cell::RefCell;

/// Bytes per sector.
const SECTOR: usize = 512;
/// Most bytes gathered into one write request.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes waiting to be sent: `bytes` go to the disk from `sector` on.
struct Pending {
    sector: u64,
    bytes: Vec<u8>,
}

/// The snapshot disk, with its write-gathering buffer.
pub struct SnapshotDisk {
    disk: RefCell<HostDisk>,
    pending: RefCell<Pending>,
}

impl SnapshotDisk {
    /// Wraps the opened host disk.
    pub fn new(disk: HostDisk) -> Self {
        Self {
            disk: RefCell::new(disk),
            pending: RefCell::new(Pending {
                sector: 0,
                bytes: Vec::with_capacity(WRITE_BUFFER),
            }),
        }
    }

    /// Sends the gathered writes to the disk.
    fn send_pending(&self) -> Result<(), DiskError> {
        let mut pending = self.pending.borrow_mut();
        if pending.bytes.is_empty() {
            return Ok(());
        }
        let result = self
            .disk
            .borrow_mut()
            .write(pending.sector, &pending.bytes)
            .map_err(|_| DiskError::Io);
        pending.bytes.clear();
        result
    }

    /// Checks that `count` sectors from `sector` are on the disk.
    fn check_range(&self, sector: u64, length: usize) -> Result<(), DiskError> {
        if length % SECTOR != 0 {
            return Err(DiskError::UnalignedBuffer);
        }
        let count = (length / SECTOR) as u64;
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors() => Ok(()),
            _ => Err(DiskError::OutOfRange { sector, count }),
        }
    }
}

impl Disk for SnapshotDisk {
    fn sector_size(&self) -> usize {
        SECTOR
    }

    fn sectors(&self) -> u64 {
        self.disk.borrow().capacity_sectors()
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check_range(sector, buf.len())?;
        self.send_pending()?;
        self.disk
            .borrow_mut()
            .read(sector, buf)
            .map_err(|_| DiskError::Io)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.check_range(sector, buf.len())?;
        if self.disk.borrow().read_only() {
            return Err(DiskError::Io);
        }
        let contiguous = {
            let pending = self.pending.borrow();
            pending.bytes.is_empty()
                || pending.sector + (pending.bytes.len() / SECTOR) as u64 == sector
        };
        let fits = self.pending.borrow().bytes.len() + buf.len() <= WRITE_BUFFER;
        if !contiguous || !fits {
            self.send_pending()?;
        }
        if buf.len() > WRITE_BUFFER {
            return self
                .disk
                .borrow_mut()
                .write(sector, buf)
                .map_err(|_| DiskError::Io);
        }
        let mut pending = self.pending.borrow_mut();
        if pending.bytes.is_empty() {
            pending.sector = sector;
        }
        pending.bytes.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.send_pending()?;
        self.disk.borrow_mut().flush().map_err(|_| DiskError::Io)
    }
}
