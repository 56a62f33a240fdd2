//! The block device a snapshot lives on, and an in-memory one for tests and tools.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// A failed disk operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The request reaches past the last sector of the disk.
    OutOfRange {
        /// First sector of the request.
        sector: u64,
        /// Number of sectors requested.
        count: u64,
    },
    /// The buffer length is not a whole number of sectors.
    UnalignedBuffer,
    /// The device reported an I/O error.
    Io,
    /// (Test disks only) power was cut: the write did not reach the medium.
    PowerLost,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { sector, count } => {
                write!(f, "sectors {sector}..+{count} are past the end of the disk")
            }
            Self::UnalignedBuffer => f.write_str("buffer is not a whole number of sectors"),
            Self::Io => f.write_str("disk I/O error"),
            Self::PowerLost => f.write_str("power lost during write"),
        }
    }
}

/// A block device addressed in sectors.
///
/// A write of several sectors may be cut short by a power loss at any sector boundary;
/// a single sector is assumed to be written atomically (or not at all). Data written
/// before a completed [`Disk::flush`] is durable.
pub trait Disk {
    /// Bytes per sector (512 for every disk Aerie drives).
    fn sector_size(&self) -> usize;
    /// Number of sectors on the disk.
    fn sectors(&self) -> u64;
    /// Reads `buf.len() / sector_size()` consecutive sectors starting at `sector`.
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Writes `buf.len() / sector_size()` consecutive sectors starting at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), DiskError>;
}

/// A disk held in memory, with fault injection for tests: a power cut after the k-th
/// sector write, and bit flips.
#[derive(Clone, Debug)]
pub struct MemoryDisk {
    bytes: Vec<u8>,
    /// Sector writes still allowed before the simulated power cut (`None`: no cut).
    writes_left: Option<u64>,
    /// Sector writes that reached the medium so far.
    sectors_written: u64,
}

/// Sector size of a [`MemoryDisk`].
const MEMORY_SECTOR: usize = 512;

impl MemoryDisk {
    /// A zero-filled disk of `sectors` 512-byte sectors.
    pub fn new(sectors: u64) -> Self {
        Self::from_image(vec![0; sectors as usize * MEMORY_SECTOR])
    }

    /// A disk holding `image`; a trailing partial sector is dropped, as a block device
    /// backed by a file of that length would.
    pub fn from_image(mut image: Vec<u8>) -> Self {
        image.truncate(image.len() / MEMORY_SECTOR * MEMORY_SECTOR);
        Self {
            bytes: image,
            writes_left: None,
            sectors_written: 0,
        }
    }

    /// The disk's contents.
    pub fn image(&self) -> &[u8] {
        &self.bytes
    }

    /// The disk's contents, mutable (for corruption tests).
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Cuts power after `k` more sector writes: later writes fail with
    /// [`DiskError::PowerLost`] and change nothing.
    pub fn cut_power_after(&mut self, k: u64) {
        self.writes_left = Some(k);
    }

    /// Restores power (a reboot): writes succeed again.
    pub fn restore_power(&mut self) {
        self.writes_left = None;
    }

    /// Sector writes that reached the medium since the disk was created.
    pub fn sectors_written(&self) -> u64 {
        self.sectors_written
    }

    /// Inverts bit `bit` (0 = least significant) of byte `offset`.
    pub fn flip_bit(&mut self, offset: usize, bit: u32) {
        self.bytes[offset] ^= 1 << bit;
    }

    /// The byte range covered by a request, if it is sector-aligned and on the disk.
    fn range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, DiskError> {
        if len % MEMORY_SECTOR != 0 {
            return Err(DiskError::UnalignedBuffer);
        }
        let count = (len / MEMORY_SECTOR) as u64;
        let out_of_range = DiskError::OutOfRange { sector, count };
        let end = sector.checked_add(count).ok_or(out_of_range)?;
        if end > self.sectors() {
            return Err(out_of_range);
        }
        let start = sector as usize * MEMORY_SECTOR;
        Ok(start..start + len)
    }
}

impl Disk for MemoryDisk {
    fn sector_size(&self) -> usize {
        MEMORY_SECTOR
    }

    fn sectors(&self) -> u64 {
        (self.bytes.len() / MEMORY_SECTOR) as u64
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let range = self.range(sector, buf.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
        let range = self.range(sector, buf.len())?;
        for (i, data) in buf.chunks(MEMORY_SECTOR).enumerate() {
            if let Some(left) = self.writes_left.as_mut() {
                if *left == 0 {
                    return Err(DiskError::PowerLost);
                }
                *left -= 1;
            }
            let start = range.start + i * MEMORY_SECTOR;
            self.bytes[start..start + MEMORY_SECTOR].copy_from_slice(data);
            self.sectors_written += 1;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        // Writes reach the medium immediately; a cut write already failed.
        Ok(())
    }
}
