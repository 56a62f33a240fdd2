//! A GPT disk image with one EFI system partition, a FAT16 file system holding a
//! few files in its root directory: what UEFI firmware boots from, made without
//! root or disk tools.
//!
//! References: UEFI specification 2.10 section 5.3 (GPT: protective MBR, header,
//! partition entries, CRC-32 of both) and Microsoft's FAT specification ("FAT:
//! General Overview of On-Disk Format", 2005: BPB, FAT16 cluster counts, 8.3
//! directory entries).

use aerie_hyp::snapshot::crc32;

/// Bytes per sector.
pub const SECTOR: usize = 512;
/// The partition starts at 1 MiB, as partitioning tools place it.
const PARTITION_START_LBA: usize = 2048;
/// Partition entries in each GPT array, and the size of one.
const GPT_ENTRIES: usize = 128;
const GPT_ENTRY_SIZE: usize = 128;
/// Sectors the partition entry array takes.
const GPT_ENTRY_SECTORS: usize = GPT_ENTRIES * GPT_ENTRY_SIZE / SECTOR;
/// The EFI system partition type, C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as stored
/// (the first three fields little-endian).
const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];
/// Fixed GUIDs for the disk and the partition, so that images are reproducible.
const DISK_GUID: [u8; 16] = *b"aerie-efi-disk!!";
const PARTITION_GUID: [u8; 16] = *b"aerie-efi-part!!";
/// Root directory entries of the FAT16 volume (32 bytes each).
const ROOT_ENTRIES: usize = 512;
/// FAT16 volumes have at least this many clusters (fewer would be FAT12) ...
const FAT16_MIN_CLUSTERS: usize = 4085;
/// ... and fewer than this (more would be FAT32).
const FAT16_MAX_CLUSTERS: usize = 65525;

/// One file of the root directory: an 8.3 name (`NAME.EXT`, upper case) and its
/// contents.
pub struct File<'a> {
    /// The name.
    pub name: &'a str,
    /// The contents.
    pub bytes: &'a [u8],
}

/// The name as a directory entry stores it: 8 + 3 characters, space-padded.
fn short_name(name: &str) -> [u8; 11] {
    let (base, extension) = name.split_once('.').unwrap_or((name, ""));
    assert!(
        base.len() <= 8 && extension.len() <= 3 && name.bytes().all(|b| b.is_ascii_graphic()),
        "{name} is not an 8.3 name"
    );
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.to_ascii_uppercase().as_bytes());
    out[8..8 + extension.len()].copy_from_slice(extension.to_ascii_uppercase().as_bytes());
    out
}

fn put16(out: &mut [u8], at: usize, value: u16) {
    out[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut [u8], at: usize, value: u32) {
    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut [u8], at: usize, value: u64) {
    out[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// A FAT16 volume holding `files` in its root directory, whose first sector is
/// sector `hidden` of the disk.
pub fn fat16(files: &[File<'_>], hidden: usize) -> Vec<u8> {
    assert!(files.len() < ROOT_ENTRIES, "too many files");
    // The smallest cluster that keeps the count within FAT16's range.
    let data_bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    let mut sectors_per_cluster = 4;
    while data_bytes / (sectors_per_cluster * SECTOR) + files.len() >= FAT16_MAX_CLUSTERS - 16 {
        sectors_per_cluster *= 2;
        assert!(sectors_per_cluster <= 128, "files too large for FAT16");
    }
    let cluster = sectors_per_cluster * SECTOR;
    let needed: usize = files.iter().map(|f| f.bytes.len().div_ceil(cluster)).sum();
    let clusters = (needed + 16).max(FAT16_MIN_CLUSTERS + 16);
    let fat_sectors = ((clusters + 2) * 2).div_ceil(SECTOR);
    let root_sectors = ROOT_ENTRIES * 32 / SECTOR;
    let reserved = 1;
    let data_start = reserved + 2 * fat_sectors + root_sectors;
    let total = data_start + clusters * sectors_per_cluster;
    let mut volume = vec![0u8; total * SECTOR];

    // The boot sector and its BIOS parameter block.
    let boot = &mut volume[..SECTOR];
    boot[..3].copy_from_slice(&[0xeb, 0x3c, 0x90]);
    boot[3..11].copy_from_slice(b"AERIE   ");
    put16(boot, 11, SECTOR as u16);
    boot[13] = sectors_per_cluster as u8;
    put16(boot, 14, reserved as u16);
    boot[16] = 2;
    put16(boot, 17, ROOT_ENTRIES as u16);
    match u16::try_from(total) {
        Ok(small) => put16(boot, 19, small),
        Err(_) => put32(boot, 32, total as u32),
    }
    boot[21] = 0xf8;
    put16(boot, 22, fat_sectors as u16);
    put16(boot, 24, 32);
    put16(boot, 26, 64);
    put32(boot, 28, hidden as u32);
    boot[36] = 0x80;
    boot[38] = 0x29;
    put32(boot, 39, 0xae1e_0001);
    boot[43..54].copy_from_slice(b"AERIE-ESP  ");
    boot[54..62].copy_from_slice(b"FAT16   ");
    boot[510] = 0x55;
    boot[511] = 0xaa;

    // Files take consecutive clusters from cluster 2; the FAT chains them.
    let mut fat = vec![0u16; clusters + 2];
    fat[0] = 0xfff8;
    fat[1] = 0xffff;
    let mut next = 2;
    let root = (reserved + 2 * fat_sectors) * SECTOR;
    for (index, file) in files.iter().enumerate() {
        let count = file.bytes.len().div_ceil(cluster);
        let first = if count == 0 { 0 } else { next };
        for n in 0..count {
            fat[next + n] = if n + 1 == count {
                0xffff
            } else {
                (next + n + 1) as u16
            };
        }
        let at = (data_start + (next - 2) * sectors_per_cluster) * SECTOR;
        volume[at..at + file.bytes.len()].copy_from_slice(file.bytes);
        next += count;
        let entry = &mut volume[root + index * 32..root + (index + 1) * 32];
        entry[..11].copy_from_slice(&short_name(file.name));
        entry[11] = 0x20; // archive
        put16(entry, 24, 0x21); // 1980-01-01
        put16(entry, 26, first as u16);
        put32(entry, 28, file.bytes.len() as u32);
    }
    let fat_bytes: Vec<u8> = fat.iter().flat_map(|e| e.to_le_bytes()).collect();
    for copy in 0..2 {
        let at = (reserved + copy * fat_sectors) * SECTOR;
        volume[at..at + fat_bytes.len()].copy_from_slice(&fat_bytes);
    }
    volume
}

/// A GPT header for the array at `entries_lba`, the header itself at `current`.
fn gpt_header(current: usize, backup: usize, entries_lba: usize, last: usize, crc: u32) -> Vec<u8> {
    let mut header = vec![0u8; SECTOR];
    header[..8].copy_from_slice(b"EFI PART");
    put32(&mut header, 8, 0x0001_0000);
    put32(&mut header, 12, 92);
    put64(&mut header, 24, current as u64);
    put64(&mut header, 32, backup as u64);
    put64(&mut header, 40, (2 + GPT_ENTRY_SECTORS) as u64);
    put64(&mut header, 48, (last - 1 - GPT_ENTRY_SECTORS) as u64);
    header[56..72].copy_from_slice(&DISK_GUID);
    put64(&mut header, 72, entries_lba as u64);
    put32(&mut header, 80, GPT_ENTRIES as u32);
    put32(&mut header, 84, GPT_ENTRY_SIZE as u32);
    put32(&mut header, 88, crc);
    let header_crc = crc32(&header[..92]);
    put32(&mut header, 16, header_crc);
    header
}

/// A GPT disk whose one partition, an EFI system partition, holds `files`.
pub fn gpt_with_esp(files: &[File<'_>]) -> Vec<u8> {
    let volume = fat16(files, PARTITION_START_LBA);
    let partition_sectors = volume.len() / SECTOR;
    // Room for the backup array and header after the partition.
    let total = PARTITION_START_LBA + partition_sectors + 1 + GPT_ENTRY_SECTORS;
    let last = total - 1;
    let mut disk = vec![0u8; total * SECTOR];

    // The protective MBR: one partition of type 0xEE over the whole disk.
    let mbr = &mut disk[..SECTOR];
    mbr[446 + 1..446 + 4].copy_from_slice(&[0x00, 0x02, 0x00]);
    mbr[446 + 4] = 0xee;
    mbr[446 + 5..446 + 8].copy_from_slice(&[0xff, 0xff, 0xff]);
    put32(mbr, 446 + 8, 1);
    put32(mbr, 446 + 12, u32::try_from(last).unwrap_or(u32::MAX));
    mbr[510] = 0x55;
    mbr[511] = 0xaa;

    let mut entries = vec![0u8; GPT_ENTRIES * GPT_ENTRY_SIZE];
    entries[..16].copy_from_slice(&ESP_TYPE);
    entries[16..32].copy_from_slice(&PARTITION_GUID);
    put64(&mut entries, 32, PARTITION_START_LBA as u64);
    put64(
        &mut entries,
        40,
        (PARTITION_START_LBA + partition_sectors - 1) as u64,
    );
    for (index, unit) in "EFI System".encode_utf16().enumerate() {
        put16(&mut entries, 56 + 2 * index, unit);
    }
    let entries_crc = crc32(&entries);
    let backup_entries = last - GPT_ENTRY_SECTORS;
    let primary = gpt_header(1, last, 2, last, entries_crc);
    let backup = gpt_header(last, 1, backup_entries, last, entries_crc);
    disk[SECTOR..2 * SECTOR].copy_from_slice(&primary);
    disk[2 * SECTOR..2 * SECTOR + entries.len()].copy_from_slice(&entries);
    let at = backup_entries * SECTOR;
    disk[at..at + entries.len()].copy_from_slice(&entries);
    disk[last * SECTOR..].copy_from_slice(&backup);
    let at = PARTITION_START_LBA * SECTOR;
    disk[at..at + volume.len()].copy_from_slice(&volume);
    disk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(bytes: &[u8], at: usize) -> usize {
        u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize
    }

    fn u32_at(bytes: &[u8], at: usize) -> usize {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
    }

    #[test]
    fn short_names() {
        assert_eq!(&short_name("linux.efi"), b"LINUX   EFI");
        assert_eq!(&short_name("INITRD"), b"INITRD     ");
    }

    #[test]
    fn files_read_back_through_the_fat() {
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let files = [
            File {
                name: "A.TXT",
                bytes: b"hello",
            },
            File {
                name: "BIG.BIN",
                bytes: &big,
            },
        ];
        let volume = fat16(&files, 0);
        let sectors_per_cluster = volume[13] as usize;
        let reserved = u16_at(&volume, 14);
        let fat_sectors = u16_at(&volume, 22);
        let root = (reserved + 2 * fat_sectors) * SECTOR;
        let data = root + ROOT_ENTRIES * 32;
        let clusters = (volume.len() - data) / (sectors_per_cluster * SECTOR);
        assert!((FAT16_MIN_CLUSTERS..FAT16_MAX_CLUSTERS).contains(&clusters));
        let fat = reserved * SECTOR;
        for (index, file) in files.iter().enumerate() {
            let entry = &volume[root + index * 32..root + index * 32 + 32];
            assert_eq!(entry[..11], short_name(file.name));
            assert_eq!(u32_at(entry, 28), file.bytes.len());
            let mut cluster = u16_at(entry, 26);
            let mut read = Vec::new();
            while cluster < 0xfff8 {
                let at = data + (cluster - 2) * sectors_per_cluster * SECTOR;
                read.extend_from_slice(&volume[at..at + sectors_per_cluster * SECTOR]);
                cluster = u16_at(&volume, fat + 2 * cluster);
            }
            assert_eq!(&read[..file.bytes.len()], file.bytes);
        }
    }

    #[test]
    fn gpt_headers_and_entries_check_out() {
        let disk = gpt_with_esp(&[File {
            name: "X",
            bytes: b"x",
        }]);
        let header = &disk[SECTOR..2 * SECTOR];
        assert_eq!(&header[..8], b"EFI PART");
        let mut zeroed = header[..92].to_vec();
        zeroed[16..20].fill(0);
        assert_eq!(u32_at(header, 16) as u32, crc32(&zeroed));
        let entries = &disk[2 * SECTOR..2 * SECTOR + GPT_ENTRIES * GPT_ENTRY_SIZE];
        assert_eq!(u32_at(header, 88) as u32, crc32(entries));
        assert_eq!(&entries[..16], &ESP_TYPE);
        let last = disk.len() / SECTOR - 1;
        let backup = &disk[last * SECTOR..];
        assert_eq!(&backup[..8], b"EFI PART");
        assert_eq!(u32_at(backup, 24), last);
        let start = u32_at(entries, 32);
        assert_eq!(&disk[start * SECTOR + 54..start * SECTOR + 62], b"FAT16   ");
        assert_eq!(disk[510..512], [0x55, 0xaa]);
    }
}
