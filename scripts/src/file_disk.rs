//! A snapshot disk image file as an [`aerie_hyp::snapshot::Disk`], so that xtask reads
//! snapshots through the same code as Aerie.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use aerie_hyp::snapshot::{Disk, DiskError};

use crate::error::{Context, Result};

/// Bytes per sector: the only size the snapshot format defines.
const SECTOR: usize = 512;

/// A raw disk image file, in 512-byte sectors. A trailing partial sector is not part of
/// the disk, as with a block device backed by the file.
#[derive(Debug)]
pub struct FileDisk {
    file: File,
    sectors: u64,
    /// The operating system's word on the last failed read or write, which
    /// [`DiskError::Io`] cannot carry.
    last_error: RefCell<Option<String>>,
}

impl FileDisk {
    /// Opens `path` for reading (writes then fail with [`DiskError::Io`]).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).context(|| format!("cannot open {}", path.display()))?;
        Self::new(file).context(|| format!("cannot read {}", path.display()))
    }

    /// The disk held in `file`, which must be open for reading (and for writing, if the
    /// disk is to be written).
    pub fn new(file: File) -> std::io::Result<Self> {
        let sectors = file.metadata()?.len() / SECTOR as u64;
        Ok(Self {
            file,
            sectors,
            last_error: RefCell::new(None),
        })
    }

    /// What the operating system said about the last failed read or write, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.borrow().clone()
    }

    /// The byte offset of `sector`, if a request of `len` bytes there is sector-aligned
    /// and on the disk.
    fn offset(&self, sector: u64, len: usize) -> std::result::Result<u64, DiskError> {
        if !len.is_multiple_of(SECTOR) {
            return Err(DiskError::UnalignedBuffer);
        }
        let count = (len / SECTOR) as u64;
        let out_of_range = DiskError::OutOfRange { sector, count };
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors => Ok(sector * SECTOR as u64),
            _ => Err(out_of_range),
        }
    }

    /// Records `error` and turns it into [`DiskError::Io`].
    fn failed(&self, error: std::io::Error) -> DiskError {
        *self.last_error.borrow_mut() = Some(error.to_string());
        DiskError::Io
    }
}

impl Disk for FileDisk {
    fn sector_size(&self) -> usize {
        SECTOR
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> std::result::Result<(), DiskError> {
        let offset = self.offset(sector, buf.len())?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.failed(e))
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> std::result::Result<(), DiskError> {
        let offset = self.offset(sector, buf.len())?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| self.failed(e))
    }

    fn flush(&mut self) -> std::result::Result<(), DiskError> {
        self.file.sync_data().map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::TempDir;

    #[test]
    fn reads_whole_sectors_and_drops_a_partial_one() {
        let dir = TempDir::new("file-disk");
        let path = dir.path().join("d.img");
        let image: Vec<u8> = (0..3 * SECTOR + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &image).unwrap();
        let disk = FileDisk::open(&path).unwrap();
        assert_eq!((disk.sector_size(), disk.sectors()), (SECTOR, 3));
        let mut buf = vec![0u8; 2 * SECTOR];
        disk.read(1, &mut buf).unwrap();
        assert_eq!(buf, image[SECTOR..3 * SECTOR]);
        assert_eq!(
            disk.read(2, &mut buf),
            Err(DiskError::OutOfRange {
                sector: 2,
                count: 2
            })
        );
        assert_eq!(
            disk.read(u64::MAX, &mut buf),
            Err(DiskError::OutOfRange {
                sector: u64::MAX,
                count: 2
            })
        );
        assert_eq!(
            disk.read(0, &mut [0u8; 100]),
            Err(DiskError::UnalignedBuffer)
        );
        assert_eq!(disk.last_error(), None);
    }

    #[test]
    fn writes_when_open_for_writing_and_says_why_not_otherwise() {
        let dir = TempDir::new("file-disk-write");
        let path = dir.path().join("d.img");
        std::fs::write(&path, vec![0u8; 2 * SECTOR]).unwrap();
        let mut read_only = FileDisk::open(&path).unwrap();
        assert_eq!(read_only.write(0, &[1u8; SECTOR]), Err(DiskError::Io));
        assert!(read_only.last_error().is_some());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut disk = FileDisk::new(file).unwrap();
        disk.write(1, &[7u8; SECTOR]).unwrap();
        disk.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[..SECTOR].iter().all(|&b| b == 0));
        assert!(bytes[SECTOR..].iter().all(|&b| b == 7));
    }

    #[test]
    fn a_missing_file_is_named() {
        let message = FileDisk::open(Path::new("/nonexistent/s.img"))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("cannot open /nonexistent/s.img: "),
            "{message}"
        );
    }
}
