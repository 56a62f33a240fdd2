//! Host tests of the snapshot format: round trips, corruption, truncation and power
//! loss (docs/robustness.md, "Snapshot corruption" and "Power loss").

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// Sectors of the test disk.
const DISK_SECTORS: u64 = 120;
/// Guest RAM base in the tests (QEMU `virt`).
const RAM_BASE: u64 = 0x4000_0000;

/// Eight guest pages; pages 1, 4 and 5 are zero.
fn pages(seed: u8) -> Vec<Vec<u8>> {
    (0..8u8)
        .map(|i| {
            if matches!(i, 1 | 4 | 5) {
                vec![0; PAGE_SIZE]
            } else {
                (0..PAGE_SIZE)
                    .map(|j| (j as u8).wrapping_mul(i + 1).wrapping_add(seed))
                    .collect()
            }
        })
        .collect()
}

/// Writes a snapshot whose contents depend on `seed`; returns the writer's result.
fn write(disk: &mut MemoryDisk, seed: u8) -> Result<u64, SnapshotError> {
    let mut w = SnapshotWriter::begin(disk)?;
    w.set_created(u64::from(seed) * 1000);
    w.add_chunk(ChunkKind::Metadata, 0, b"{\"vcpus\": 2}")?;
    w.add_chunk(ChunkKind::Vcpu, 0, &[seed; 700])?;
    w.add_chunk(ChunkKind::Vcpu, 1, &[seed.wrapping_add(1); 512])?;
    w.add_chunk(ChunkKind::Device, 7, &[])?;
    let p = pages(seed);
    w.add_memory(RAM_BASE, p.iter().map(Vec::as_slice))?;
    w.commit()
}

/// Guest RAM as restored from `snap`: 8 pages, zero where nothing was stored.
fn restored_ram(disk: &MemoryDisk, snap: &Snapshot) -> Vec<Vec<u8>> {
    let mut ram = vec![vec![0u8; PAGE_SIZE]; 8];
    snap.read_memory(disk, |gpa, page| {
        ram[((gpa - RAM_BASE) / PAGE_SIZE as u64) as usize].copy_from_slice(page);
    })
    .unwrap();
    ram
}

/// Checks that `snap` is exactly the snapshot written with `seed`.
fn assert_is(disk: &MemoryDisk, snap: &Snapshot, seed: u8) {
    assert_eq!(snap.created, u64::from(seed) * 1000);
    assert_eq!(
        snap.payload(ChunkKind::Metadata, 0),
        Some(&b"{\"vcpus\": 2}"[..])
    );
    assert_eq!(snap.payload(ChunkKind::Vcpu, 0), Some(&[seed; 700][..]));
    assert_eq!(
        snap.payload(ChunkKind::Vcpu, 1),
        Some(&[seed.wrapping_add(1); 512][..])
    );
    assert_eq!(snap.payload(ChunkKind::Device, 7), Some(&[][..]));
    assert_eq!(restored_ram(disk, snap), pages(seed));
}

/// A disk holding one snapshot (seed 1) in slot A.
fn reference() -> MemoryDisk {
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    write(&mut disk, 1).unwrap();
    disk
}

/// Byte ranges of the reference snapshot: superblock, slot A header, used data.
fn snapshot_bytes(disk: &MemoryDisk) -> Vec<usize> {
    let snap = read_snapshot(disk).unwrap();
    let data = DATA_START as usize * SECTOR_SIZE;
    (0..2 * SECTOR_SIZE)
        .chain(data..data + snap.length as usize)
        .collect()
}

#[test]
fn round_trip() {
    let disk = reference();
    let snap = read_snapshot(&disk).unwrap();
    assert_eq!((snap.slot, snap.sequence), (0, 1));
    assert_is(&disk, &snap, 1);
    let kinds: Vec<ChunkKind> = snap.chunks().iter().map(|c| c.kind).collect();
    use ChunkKind::*;
    // Pages 0, 2-3 and 6-7 are non-zero: three runs.
    assert_eq!(
        kinds,
        [Metadata, Vcpu, Vcpu, Device, Memory, Memory, Memory]
    );
    let ranges: Vec<(u64, u64)> = snap.memory_ranges().collect();
    let page = PAGE_SIZE as u64;
    assert_eq!(
        ranges,
        [
            (RAM_BASE, page),
            (RAM_BASE + 2 * page, 2 * page),
            (RAM_BASE + 6 * page, 2 * page)
        ]
    );
}

#[test]
fn zero_pages_are_skipped() {
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    let mut w = SnapshotWriter::begin(&mut disk).unwrap();
    let p = pages(1);
    let stats = w.add_memory(RAM_BASE, p.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(
        stats,
        MemoryStats {
            pages: 8,
            stored: 5,
            chunks: 3
        }
    );
    // Each run: one header sector plus 8 sectors per page.
    assert_eq!(w.bytes_written(), (3 + 5 * 8) * SECTOR_SIZE as u64);
    w.commit().unwrap();
    let snap = read_snapshot(&disk).unwrap();
    assert_eq!(snap.stored_memory(), 5 * PAGE_SIZE as u64);

    let mut blank = MemoryDisk::new(DISK_SECTORS);
    let mut w = SnapshotWriter::begin(&mut blank).unwrap();
    let zeros = vec![0u8; PAGE_SIZE];
    let stats = w
        .add_memory(RAM_BASE, core::iter::repeat_n(zeros.as_slice(), 1000))
        .unwrap();
    assert_eq!(
        stats,
        MemoryStats {
            pages: 1000,
            stored: 0,
            chunks: 0
        }
    );
    assert_eq!(w.bytes_written(), 0);
}

#[test]
fn slots_alternate_and_newest_wins() {
    let mut disk = reference();
    for seed in 2..6u8 {
        write(&mut disk, seed).unwrap();
        let snap = read_snapshot(&disk).unwrap();
        assert_eq!(snap.sequence, u64::from(seed));
        assert_eq!(snap.slot, (seed - 1) % 2);
        assert_is(&disk, &snap, seed);
        // The other slot still holds the previous snapshot.
        assert_eq!(
            read_slot(&disk, 1 - snap.slot).unwrap().sequence,
            u64::from(seed - 1)
        );
    }
}

#[test]
fn blank_and_foreign_disks_are_refused() {
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    assert_eq!(read_snapshot(&disk), Err(SnapshotError::NotFormatted));
    format(&mut disk).unwrap();
    assert_eq!(read_snapshot(&disk), Err(SnapshotError::NoSnapshot));
    disk.image_mut()[..8].copy_from_slice(b"NOTAERIE");
    assert_eq!(
        read_snapshot(&disk),
        Err(SnapshotError::BadSuperblock(SuperblockProblem::Foreign))
    );
    // The writer refuses to format over something it does not recognise.
    assert!(SnapshotWriter::begin(&mut disk).is_err());
}

#[test]
fn every_single_bit_flip_is_rejected() {
    // Exhaustive: every bit of every byte the snapshot occupies (superblock, slot
    // header, chunk headers, payloads, padding).
    let mut disk = reference();
    for offset in snapshot_bytes(&disk) {
        for bit in 0..8 {
            disk.flip_bit(offset, bit);
            assert!(
                read_snapshot(&disk).is_err(),
                "flip of byte {offset} bit {bit} accepted"
            );
            disk.flip_bit(offset, bit);
        }
    }
}

#[test]
fn checking_memory_while_loading_it_still_catches_every_flip() {
    // A restore reads RAM payloads once, checking them as it loads them: every flip is
    // caught either before (`Check::AllButMemory`) or while loading.
    let mut disk = reference();
    for offset in snapshot_bytes(&disk) {
        for bit in [0, 5] {
            disk.flip_bit(offset, bit);
            let caught = match read_snapshot_checking(&disk, Check::AllButMemory) {
                Err(_) => true,
                Ok(snap) => snap.read_memory(&disk, |_, _| {}).is_err(),
            };
            assert!(caught, "flip of byte {offset} bit {bit} accepted");
            disk.flip_bit(offset, bit);
        }
    }
    let snap = read_snapshot_checking(&disk, Check::AllButMemory).unwrap();
    assert_is(&disk, &snap, 1);
}

#[test]
fn flip_in_newest_falls_back_to_previous() {
    let mut disk = reference();
    write(&mut disk, 2).unwrap();
    // A bit in the first chunk header of slot B.
    let b_data = data_sector(1, (DISK_SECTORS - DATA_START) / 2) as usize * SECTOR_SIZE;
    disk.flip_bit(b_data + 9, 3);
    let snap = read_snapshot(&disk).unwrap();
    assert_is(&disk, &snap, 1);
    assert!(matches!(
        read_slot(&disk, 1),
        Err(SnapshotError::Slot {
            slot: 1,
            problem: SlotProblem::Chunk {
                index: 0,
                offset: 0,
                problem: ChunkProblem::HeaderChecksum
            }
        })
    ));
}

#[test]
fn every_truncation_is_rejected() {
    let disk = reference();
    let image = disk.image();
    // A byte truncation drops the partial last sector (`from_image`), so stepping by
    // sectors covers every distinct truncated disk.
    for len in (0..image.len()).step_by(SECTOR_SIZE) {
        let truncated = MemoryDisk::from_image(image[..len].to_vec());
        assert!(
            read_snapshot(&truncated).is_err(),
            "truncation to {len} bytes accepted"
        );
    }
    // Zero-filling the tail (a file cut short, then grown back) is rejected too,
    // whenever it changes the snapshot's bytes.
    let bytes = snapshot_bytes(&disk);
    for &cut in bytes.iter().step_by(3) {
        let mut damaged = disk.clone();
        let tail = &mut damaged.image_mut()[cut..];
        if tail.iter().all(|&b| b == 0) {
            continue;
        }
        tail.fill(0);
        assert!(
            read_snapshot(&damaged).is_err(),
            "zeroing from byte {cut} accepted"
        );
    }
}

/// A small xorshift generator (deterministic, no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_corruptions_are_rejected() {
    let disk = reference();
    let bytes = snapshot_bytes(&disk);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1000 {
        let mut damaged = disk.clone();
        let count = 1 + rng.next() % 16;
        for _ in 0..count {
            let offset = bytes[(rng.next() % bytes.len() as u64) as usize];
            damaged.image_mut()[offset] = rng.next() as u8;
        }
        if damaged.image() == disk.image() {
            continue;
        }
        assert!(read_snapshot(&damaged).is_err());
    }
    // Garbage anywhere on the disk never panics the decoder.
    for _ in 0..300 {
        let mut damaged = disk.clone();
        for _ in 0..64 {
            let offset = (rng.next() % damaged.image().len() as u64) as usize;
            damaged.image_mut()[offset] = rng.next() as u8;
        }
        let _ = read_snapshot(&damaged);
    }
}

/// Cuts power after every possible number of sector writes while snapshot `seed` is
/// written over a disk whose newest snapshot is `seed - 1`.
fn power_loss_over(disk: &MemoryDisk, seed: u8) {
    let mut full = disk.clone();
    let before = full.sectors_written();
    write(&mut full, seed).unwrap();
    let total = full.sectors_written() - before;
    for k in 0..=total {
        let mut cut = disk.clone();
        cut.cut_power_after(k);
        let result = write(&mut cut, seed);
        assert_eq!(result.is_ok(), k == total, "k = {k}");
        cut.restore_power();
        let snap = read_snapshot(&cut).unwrap_or_else(|e| panic!("k = {k}: {e}"));
        let expect = if k == total { seed } else { seed - 1 };
        assert_eq!(snap.sequence, u64::from(expect), "k = {k}");
        assert_is(&cut, &snap, expect);
    }
}

#[test]
fn power_loss_keeps_old_or_new() {
    // Second snapshot over a first (target slot B was empty).
    let one = reference();
    power_loss_over(&one, 2);
    // Third over the first two (target slot A holds the older snapshot's data).
    let mut two = reference();
    write(&mut two, 2).unwrap();
    power_loss_over(&two, 3);
}

#[test]
fn snapshot_too_large_for_slot_is_refused() {
    let mut disk = MemoryDisk::new(40);
    let mut w = SnapshotWriter::begin(&mut disk).unwrap();
    let p = pages(1);
    assert!(matches!(
        w.add_memory(RAM_BASE, p.iter().map(Vec::as_slice)),
        Err(SnapshotError::TooLarge { available: 16 })
    ));
}

#[test]
fn writer_rejects_bad_input() {
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    let mut w = SnapshotWriter::begin(&mut disk).unwrap();
    assert!(w.add_chunk(ChunkKind::Memory, 0, &[1]).is_err());
    assert!(w.add_memory(RAM_BASE + 1, core::iter::empty()).is_err());
    assert!(w.add_memory(RAM_BASE, [&[1u8; 100][..]]).is_err());
}

#[test]
fn errors_read_well() {
    use std::string::ToString;
    let e = SnapshotError::Slot {
        slot: 1,
        problem: SlotProblem::Chunk {
            index: 3,
            offset: 1024,
            problem: ChunkProblem::PayloadChecksum,
        },
    };
    assert_eq!(
        e.to_string(),
        "snapshot slot B: chunk 3 (at byte 1024 of the data area): payload checksum mismatch"
    );
}
