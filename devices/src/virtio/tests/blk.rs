//! virtio-blk end to end (virtio 1.2, section 5.2).

use super::*;
use crate::virtio::blk::{BOUNCE_SIZE, Block, BlockState, MemoryDisk};
use crate::virtio::queue::QueueError;
use crate::virtio::transport::VirtioDevice;
use std::vec;

// Section 5.2.6, restated.
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;
// Section 5.2.3.
const F_SIZE_MAX: u64 = 1 << 1;
const F_SEG_MAX: u64 = 1 << 2;
const F_RO: u64 = 1 << 5;
const F_BLK_SIZE: u64 = 1 << 6;
const F_FLUSH: u64 = 1 << 9;
const F_DISCARD: u64 = 1 << 13;
const F_WRITE_ZEROES: u64 = 1 << 14;

const SECTORS: usize = 2048; // 1 MiB

fn disk() -> MemoryDisk {
    let mut disk = MemoryDisk::new(SECTORS);
    for (i, byte) in disk.bytes.iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    disk
}

fn driver_with(disk: MemoryDisk, wanted: u64) -> Driver<Block<MemoryDisk>> {
    let mut d = Driver::new(Block::new(disk));
    d.init(wanted, 1, 256);
    d
}

fn driver() -> Driver<Block<MemoryDisk>> {
    driver_with(disk(), u64::MAX)
}

fn header(kind: u32, sector: u64) -> [u8; 16] {
    let mut header = [0; 16];
    header[0..4].copy_from_slice(&kind.to_le_bytes());
    header[8..16].copy_from_slice(&sector.to_le_bytes());
    header
}

/// The disk's expected bytes for sectors `sector..sector + count`.
fn pattern(sector: usize, count: usize) -> Vec<u8> {
    (sector * 512..(sector + count) * 512)
        .map(|i| (i % 251) as u8)
        .collect()
}

impl Driver<Block<MemoryDisk>> {
    /// Submits a request with a header, readable data buffers and writable data
    /// buffers (then a status byte) and returns (status, used length).
    fn request(&mut self, kind: u32, sector: u64, out: &[Buf], into: &[Buf]) -> (u8, u32) {
        let head = self.put(&header(kind, sector));
        let status = self.put(&[0xEE]);
        let mut bufs = vec![Buf::read(head, 16)];
        bufs.extend_from_slice(out);
        bufs.extend_from_slice(into);
        bufs.push(Buf::write(status, 1));
        let id = self.submit(0, &bufs);
        let used = self.take_used(0);
        assert_eq!(used.len(), 1, "one completion");
        assert_eq!(used[0].0, u32::from(id));
        (self.get(status, 1)[0], used[0].1)
    }

    fn disk(&self) -> &MemoryDisk {
        self.transport.device().backend()
    }
}

#[test]
fn configuration_space() {
    let d = driver();
    let mut config = [0u8; 60];
    d.transport.device().read_config(0, &mut config);
    let le32 = |at: usize| u32::from_le_bytes(config[at..at + 4].try_into().unwrap());
    // Section 5.2.4, struct virtio_blk_config.
    assert_eq!(
        u64::from_le_bytes(config[0..8].try_into().unwrap()),
        SECTORS as u64
    );
    assert_eq!(le32(8), 1 << 20, "size_max");
    assert_eq!(le32(12), 254, "seg_max");
    assert_eq!(le32(20), 512, "blk_size");
    assert_eq!(le32(36), 1 << 22, "max_discard_sectors");
    assert_eq!(le32(40), 1, "max_discard_seg");
    assert_eq!(le32(44), 8, "discard_sector_alignment");
    assert_eq!(le32(48), 1 << 14, "max_write_zeroes_sectors");
    assert_eq!(le32(52), 1, "max_write_zeroes_seg");
    assert_eq!(config[56], 0, "write_zeroes_may_unmap");
    assert_eq!(config[32..36], [0; 4], "writeback, unused0, num_queues");
}

#[test]
fn features_offered() {
    let mut d = Driver::new(Block::new(disk()));
    let offered = d.device_features();
    let expected = F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WRITE_ZEROES;
    assert_eq!(offered & DEVICE_FEATURE_BITS, expected);
    let mut read_only = disk();
    read_only.read_only = true;
    let mut d = Driver::new(Block::new(read_only));
    let offered = d.device_features();
    assert_eq!(
        offered & DEVICE_FEATURE_BITS,
        F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_RO
    );
    assert_eq!(d.read32(regs::DEVICE_ID), 2);
}

#[test]
fn reads_single_and_multi_segment() {
    let mut d = driver();
    let data = d.alloc(512);
    assert_eq!(
        d.request(T_IN, 3, &[], &[Buf::write(data, 512)]),
        (S_OK, 513)
    );
    assert_eq!(d.get(data, 512), pattern(3, 1));
    // Three segments of odd sizes, 1024 bytes in all.
    let parts = [d.alloc(100), d.alloc(700), d.alloc(224)];
    let bufs = [
        Buf::write(parts[0], 100),
        Buf::write(parts[1], 700),
        Buf::write(parts[2], 224),
    ];
    assert_eq!(d.request(T_IN, 10, &[], &bufs), (S_OK, 1025));
    let mut got = d.get(parts[0], 100);
    got.extend(d.get(parts[1], 700));
    got.extend(d.get(parts[2], 224));
    assert_eq!(got, pattern(10, 2));
    assert_eq!(d.transport.device().stats().reads, 2);
    assert_eq!(d.transport.device().stats().bytes_read, 1536);
}

#[test]
fn writes_with_the_header_split_and_the_status_sharing_a_buffer() {
    let mut d = driver();
    // Header in two descriptors (6 + 10 bytes), data in two, status as the last
    // byte of a bigger writable buffer: the device may not assume any framing.
    let h = header(T_OUT, 100);
    let first = d.put(&h[..6]);
    let second = d.put(&h[6..]);
    let payload: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
    let a = d.put(&payload[..300]);
    let b = d.put(&payload[300..]);
    let status = d.alloc(4);
    d.memory.write(status, &[9, 9, 9, 9]).unwrap();
    let head = d.submit(
        0,
        &[
            Buf::read(first, 6),
            Buf::read(second, 10),
            Buf::read(a, 300),
            Buf::read(b, 724),
            Buf::write(status, 4),
        ],
    );
    assert_eq!(d.take_used(0), vec![(u32::from(head), 4)]);
    assert_eq!(
        d.get(status, 4),
        [0, 0, 0, S_OK],
        "status last, the rest zeroed"
    );
    assert_eq!(d.disk().bytes[100 * 512..102 * 512], payload[..]);
    assert_eq!(
        d.disk().bytes[102 * 512..103 * 512],
        pattern(102, 1)[..],
        "no more"
    );
}

#[test]
fn requests_larger_than_the_bounce_buffer() {
    let mut d = driver();
    let length = 3 * BOUNCE_SIZE + 512;
    let payload: Vec<u8> = (0..length).map(|i| (i / 512) as u8 ^ (i as u8)).collect();
    let out = d.put(&payload);
    assert_eq!(
        d.request(T_OUT, 7, &[Buf::read(out, length as u32)], &[]),
        (S_OK, 1)
    );
    assert_eq!(d.disk().bytes[7 * 512..7 * 512 + length], payload[..]);
    let into = d.alloc(length as u64);
    assert_eq!(
        d.request(T_IN, 7, &[], &[Buf::write(into, length as u32)]),
        (S_OK, length as u32 + 1)
    );
    assert_eq!(d.get(into, length), payload);
}

#[test]
fn out_of_range_and_misshapen_transfers_are_io_errors() {
    let mut d = driver();
    let before = d.disk().clone();
    let data = d.alloc(1024);
    let cases: [(u32, u64, u32); 6] = [
        (T_IN, SECTORS as u64, 512),      // starts at the capacity
        (T_IN, SECTORS as u64 - 1, 1024), // ends past it
        (T_IN, u64::MAX, 512),            // sector + count overflows
        (T_IN, 0, 511),                   // not a multiple of 512
        (T_OUT, SECTORS as u64 - 1, 1024),
        (T_OUT, 0, 100),
    ];
    for (kind, sector, length) in cases {
        d.memory.write(data, &[0xAB; 1024]).unwrap();
        let (out, into): (Vec<Buf>, Vec<Buf>) = if kind == T_IN {
            (vec![], vec![Buf::write(data, length)])
        } else {
            (vec![Buf::read(data, length)], vec![])
        };
        let (status, used) = d.request(kind, sector, &out, &into);
        assert_eq!(status, S_IOERR, "{kind} {sector} {length}");
        if kind == T_IN {
            assert_eq!(used, length + 1);
            assert!(
                d.get(data, length as usize).iter().all(|&b| b == 0),
                "no stale data reported as read"
            );
        }
    }
    assert_eq!(*d.disk(), before, "nothing written");
    assert_eq!(d.transport.device().stats().io_errors, 6);
    assert!(
        !d.transport.needs_reset(),
        "an error status, not a broken device"
    );
}

#[test]
fn a_read_only_disk_refuses_writes() {
    let mut read_only = disk();
    read_only.read_only = true;
    let mut d = driver_with(read_only, u64::MAX);
    assert_ne!(d.transport.negotiated_features() & F_RO, 0);
    let before = d.disk().clone();
    let data = d.put(&[1; 512]);
    assert_eq!(
        d.request(T_OUT, 0, &[Buf::read(data, 512)], &[]),
        (S_IOERR, 1)
    );
    assert_eq!(*d.disk(), before);
    let into = d.alloc(512);
    assert_eq!(d.request(T_IN, 0, &[], &[Buf::write(into, 512)]).0, S_OK);
    assert_eq!(d.request(T_FLUSH, 0, &[], &[]), (S_OK, 1));
}

#[test]
fn backend_errors_are_io_errors() {
    let mut failing = disk();
    failing.fail_reads = true;
    failing.fail_writes = true;
    let mut d = driver_with(failing, u64::MAX);
    let data = d.alloc(512);
    d.memory.write(data, &[0xAB; 512]).unwrap();
    assert_eq!(
        d.request(T_IN, 0, &[], &[Buf::write(data, 512)]),
        (S_IOERR, 513)
    );
    assert_eq!(d.get(data, 512), vec![0; 512], "zero-filled");
    assert_eq!(d.request(T_OUT, 0, &[Buf::read(data, 512)], &[]).0, S_IOERR);
}

#[test]
fn flush_and_write_stability() {
    let mut d = driver();
    assert_eq!(d.request(T_FLUSH, 0, &[], &[]), (S_OK, 1));
    assert_eq!(d.disk().flushes, 1);
    let data = d.put(&[3; 512]);
    d.request(T_OUT, 0, &[Buf::read(data, 512)], &[]);
    assert_eq!(
        d.disk().flushes,
        1,
        "FLUSH negotiated: writes may stay volatile"
    );

    // Without FLUSH negotiated, a completed write must be stable (section 5.2.6.2).
    let mut d = driver_with(disk(), !F_FLUSH);
    let data = d.put(&[3; 512]);
    d.request(T_OUT, 0, &[Buf::read(data, 512)], &[]);
    assert_eq!(d.disk().flushes, 1);
}

#[test]
fn get_id() {
    let mut d = driver();
    let id = d.alloc(20);
    assert_eq!(
        d.request(T_GET_ID, 0, &[], &[Buf::write(id, 20)]),
        (S_OK, 21)
    );
    let mut expected = [0u8; 20];
    expected[..17].copy_from_slice(b"aerie-memory-disk");
    assert_eq!(d.get(id, 20), expected);
}

#[test]
fn unknown_types_are_unsupported() {
    let mut d = driver();
    let data = d.alloc(512);
    // 2/3: legacy SCSI, 10: GET_LIFETIME, 14: SECURE_ERASE, 16: ZONE_REPORT.
    for kind in [2, 3, 5, 10, 14, 16, 0x8000_0000, u32::MAX] {
        assert_eq!(
            d.request(kind, 0, &[], &[Buf::write(data, 512)]),
            (S_UNSUPP, 513),
            "{kind}"
        );
    }
}

fn range(sector: u64, count: u32, flags: u32) -> [u8; 16] {
    let mut raw = [0; 16];
    raw[0..8].copy_from_slice(&sector.to_le_bytes());
    raw[8..12].copy_from_slice(&count.to_le_bytes());
    raw[12..16].copy_from_slice(&flags.to_le_bytes());
    raw
}

#[test]
fn write_zeroes_and_discard() {
    let mut d = driver();
    let zero_range = d.put(&range(4, 300, 0));
    assert_eq!(
        d.request(T_WRITE_ZEROES, 0, &[Buf::read(zero_range, 16)], &[]),
        (S_OK, 1)
    );
    assert!(d.disk().bytes[4 * 512..304 * 512].iter().all(|&b| b == 0));
    assert_eq!(d.disk().bytes[304 * 512..305 * 512], pattern(304, 1)[..]);
    // unmap is allowed on write zeroes.
    let unmap = d.put(&range(0, 1, 1));
    assert_eq!(
        d.request(T_WRITE_ZEROES, 0, &[Buf::read(unmap, 16)], &[]).0,
        S_OK
    );

    let discard = d.put(&range(0, 8, 0));
    assert_eq!(
        d.request(T_DISCARD, 0, &[Buf::read(discard, 16)], &[]).0,
        S_OK
    );

    // Section 5.2.6.2: unmap on discard and unknown flags are UNSUPP.
    let discard_unmap = d.put(&range(0, 8, 1));
    assert_eq!(
        d.request(T_DISCARD, 0, &[Buf::read(discard_unmap, 16)], &[])
            .0,
        S_UNSUPP
    );
    let odd_flags = d.put(&range(0, 8, 2));
    assert_eq!(
        d.request(T_WRITE_ZEROES, 0, &[Buf::read(odd_flags, 16)], &[])
            .0,
        S_UNSUPP
    );

    // Too many sectors, past the end, two ranges, a partial range, no range.
    let big = d.put(&range(0, (1 << 14) + 1, 0));
    let past = d.put(&range(SECTORS as u64 - 1, 2, 0));
    let two = d.put(&[range(0, 1, 0), range(2, 1, 0)].concat());
    for (data, length) in [(big, 16), (past, 16), (two, 32), (big, 15), (big, 0)] {
        let out: Vec<Buf> = if length == 0 {
            vec![]
        } else {
            vec![Buf::read(data, length)]
        };
        assert_eq!(d.request(T_WRITE_ZEROES, 0, &out, &[]).0, S_IOERR);
    }
}

#[test]
fn discard_and_write_zeroes_need_negotiation() {
    let mut d = driver_with(disk(), !(F_DISCARD | F_WRITE_ZEROES));
    let r = d.put(&range(0, 1, 0));
    assert_eq!(
        d.request(T_DISCARD, 0, &[Buf::read(r, 16)], &[]).0,
        S_UNSUPP
    );
    assert_eq!(
        d.request(T_WRITE_ZEROES, 0, &[Buf::read(r, 16)], &[]).0,
        S_UNSUPP
    );
    assert_eq!(d.disk().bytes[..512], pattern(0, 1)[..]);
}

#[test]
fn a_request_through_an_indirect_table() {
    let mut d = driver();
    let h = d.put(&header(T_IN, 1));
    let data = d.alloc(512);
    let status = d.alloc(1);
    let head = d.write_indirect(
        0,
        &[
            Buf::read(h, 16),
            Buf::write(data, 512),
            Buf::write(status, 1),
        ],
    );
    d.publish(0, head);
    d.notify(0);
    assert_eq!(d.take_used(0), vec![(u32::from(head), 513)]);
    assert_eq!(d.get(status, 1), [S_OK]);
    assert_eq!(d.get(data, 512), pattern(1, 1));
}

#[test]
fn requests_without_room_for_a_header_or_status_need_a_reset() {
    // 15 header bytes; no writable byte at all.
    for (readable, writable) in [(15u32, 1u32), (16, 0)] {
        let mut d = driver();
        let h = d.put(&header(T_IN, 0));
        let mut bufs = vec![Buf::read(h, readable)];
        if writable > 0 {
            let s = d.alloc(1);
            bufs.push(Buf::write(s, writable));
        }
        d.submit(0, &bufs);
        assert!(d.take_used(0).is_empty());
        assert!(d.transport.needs_reset());
        assert!(matches!(
            d.transport.take_fault().unwrap().error,
            QueueError::BadRequest(_)
        ));
    }
}

#[test]
fn save_and_restore() {
    let d = driver();
    let state = d.transport.device().save();
    assert_ne!(state.features & F_FLUSH, 0);
    let mut block = Block::new(disk());
    block.restore(&state).unwrap();
    assert_eq!(block.save(), state);
    let bad = BlockState { features: 1 << 27 };
    assert!(block.restore(&bad).is_err());
    let mut read_only = disk();
    read_only.read_only = true;
    assert!(
        Block::new(read_only).restore(&state).is_err(),
        "DISCARD is not offered by a read-only disk"
    );
}
