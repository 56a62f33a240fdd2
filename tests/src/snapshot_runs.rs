//! Helpers for the snapshot tests (`tests/tests/snapshot.rs`): running the xtask tool
//! as a user does ([`xtask`]), and finding bytes in a snapshot disk image by the
//! layout `docs/snapshot-format.md` specifies ([`SnapshotImage`]), to damage them on
//! purpose.
//!
//! The image is read here with its own small parser, written from the document rather
//! than from `hyp/src/snapshot/`, so that the tests also check that the document says
//! where things are.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

pub use crate::xtask::{XtaskRun, xtask};

/// Bytes in a sector.
pub const SECTOR: u64 = 512;

/// The first sector of slot A's data area.
const DATA_START_SECTOR: u64 = 8;

/// The chunk kind of a memory range.
pub const MEMORY_CHUNK: u32 = 4;

/// One chunk of a slot, as its header describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlace {
    /// Its index in the slot (the tools name chunks by it).
    pub index: usize,
    /// Its kind (1 metadata, 2 vCPU, 3 device, 4 memory range).
    pub kind: u32,
    /// Byte offset of its header sector in the slot's data area (where the tools
    /// say a chunk is).
    pub offset: u64,
    /// Byte offset of its header sector in the image file.
    pub header: u64,
    /// Payload length in bytes (the payload starts one sector after the header).
    pub length: u64,
}

impl ChunkPlace {
    /// Byte offset of its payload in the image file.
    pub fn payload(&self) -> u64 {
        self.header + SECTOR
    }
}

/// The newest snapshot's slot in a snapshot disk image, found by the layout of
/// `docs/snapshot-format.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestSlot {
    /// 0 for slot A, 1 for slot B.
    pub slot: u8,
    /// Its sequence number.
    pub sequence: u64,
    /// Its chunks, in order.
    pub chunks: Vec<ChunkPlace>,
}

impl NewestSlot {
    /// The slot's letter, as the tools print it.
    pub fn letter(&self) -> char {
        if self.slot == 0 { 'A' } else { 'B' }
    }
}

/// A snapshot disk image file, opened for reading its layout and flipping bytes.
#[derive(Debug)]
pub struct SnapshotImage {
    file: File,
}

impl SnapshotImage {
    /// Opens `path` for reading and writing.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::options().read(true).write(true).open(path)?;
        Ok(Self { file })
    }

    fn read(&self, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; length];
        self.file.read_exact_at(&mut bytes, offset)?;
        Ok(bytes)
    }

    /// Finds the valid slot with the highest sequence number and lists its chunks.
    /// Checks only magics and lengths, not checksums: it is for finding bytes to
    /// damage, not for validating.
    pub fn newest_slot(&self) -> io::Result<NewestSlot> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let superblock = self.read(0, SECTOR as usize)?;
        if &superblock[..8] != b"AERIEDSK" {
            return Err(invalid("no superblock magic AERIEDSK in sector 0".into()));
        }
        let slot_sectors = u64_at(&superblock, 16);
        let mut best: Option<(u64, u8, u64, u32)> = None;
        for slot in 0..2u8 {
            let header = self.read((1 + u64::from(slot)) * SECTOR, SECTOR as usize)?;
            if &header[..8] != b"AERIESNP" {
                continue;
            }
            let (sequence, length, chunks) = (
                u64_at(&header, 16),
                u64_at(&header, 32),
                u32_at(&header, 40),
            );
            if best.is_none_or(|(newest, ..)| sequence > newest) {
                best = Some((sequence, slot, length, chunks));
            }
        }
        let Some((sequence, slot, length, count)) = best else {
            return Err(invalid("neither slot header has the magic AERIESNP".into()));
        };
        let start = (DATA_START_SECTOR + u64::from(slot) * slot_sectors) * SECTOR;
        let mut chunks = Vec::new();
        let mut offset = 0;
        for index in 0..count as usize {
            let header = self.read(start + offset, SECTOR as usize)?;
            if &header[..4] != b"CHNK" {
                return Err(invalid(format!(
                    "no chunk magic at byte {offset} of slot {slot}'s data area"
                )));
            }
            let chunk = ChunkPlace {
                index,
                kind: u32_at(&header, 4),
                offset,
                header: start + offset,
                length: u64_at(&header, 16),
            };
            offset += SECTOR + chunk.length.div_ceil(SECTOR) * SECTOR;
            chunks.push(chunk);
        }
        if offset != length {
            return Err(invalid(format!(
                "the chunks end at byte {offset} of the data area, the header says {length}"
            )));
        }
        Ok(NewestSlot {
            slot,
            sequence,
            chunks,
        })
    }

    /// Inverts every bit of the byte at `offset` (doing it twice restores the file).
    pub fn flip_byte(&self, offset: u64) -> io::Result<()> {
        let byte = self.read(offset, 1)?[0];
        self.file.write_all_at(&[!byte], offset)?;
        self.file.sync_all()
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

/// The MD5 sum of `bytes` in hexadecimal, computed by the host's `md5sum` (the same
/// tool, and the same output, as busybox's in the guest).
pub fn md5_hex(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the host has md5sum (coreutils)");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output().expect("md5sum runs");
    writer
        .join()
        .expect("the writer thread ends")
        .expect("md5sum reads its input");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_known_digest() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    /// A two-chunk snapshot in slot B, laid out by hand as the document says.
    #[test]
    fn finds_the_newest_slot_and_its_chunks() {
        let slot_sectors = 16u64;
        let mut image = vec![0u8; ((8 + 2 * slot_sectors) * SECTOR) as usize];
        image[..8].copy_from_slice(b"AERIEDSK");
        image[16..24].copy_from_slice(&slot_sectors.to_le_bytes());
        let slot_header = |image: &mut Vec<u8>, slot: u64, sequence: u64, length: u64| {
            let at = ((1 + slot) * SECTOR) as usize;
            image[at..at + 8].copy_from_slice(b"AERIESNP");
            image[at + 16..at + 24].copy_from_slice(&sequence.to_le_bytes());
            image[at + 32..at + 40].copy_from_slice(&length.to_le_bytes());
            image[at + 40..at + 44].copy_from_slice(&2u32.to_le_bytes());
        };
        slot_header(&mut image, 0, 1, 0);
        slot_header(&mut image, 1, 2, 11 * SECTOR);
        let data = ((8 + slot_sectors) * SECTOR) as usize;
        for (at, kind, length) in [(data, 2u32, 100u64), (data + 1024, 4, 4096)] {
            image[at..at + 4].copy_from_slice(b"CHNK");
            image[at + 4..at + 8].copy_from_slice(&kind.to_le_bytes());
            image[at + 16..at + 24].copy_from_slice(&length.to_le_bytes());
        }
        let dir = crate::paths::test_tmp_dir();
        let path = dir.join("layout.img");
        std::fs::write(&path, &image).unwrap();
        let found = SnapshotImage::open(&path).unwrap().newest_slot().unwrap();
        assert_eq!((found.slot, found.sequence, found.letter()), (1, 2, 'B'));
        assert_eq!(found.chunks.len(), 2);
        assert_eq!(found.chunks[1].kind, MEMORY_CHUNK);
        assert_eq!(found.chunks[1].offset, 1024);
        assert_eq!(found.chunks[1].payload(), data as u64 + 1024 + SECTOR);
        let snapshot = SnapshotImage::open(&path).unwrap();
        snapshot.flip_byte(7).unwrap();
        assert!(snapshot.newest_slot().is_err(), "no superblock magic");
        snapshot.flip_byte(7).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), image);
    }
}
