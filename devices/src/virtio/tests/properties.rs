//! Property tests over pseudo-random input (robustness.md: "zero panics, zero
//! out-of-bounds accesses"): random descriptor tables for the queue walker, random
//! block requests for the virtio-blk parser. The generator is deterministic, so a
//! failure names a reproducible seed. The fuzz targets in `fuzz/` explore the same
//! code with coverage guidance.

use super::*;
use crate::virtio::blk::{Block, MemoryDisk};
use crate::virtio::chain::Chain;
use crate::virtio::queue::{MAX_CHAIN_BYTES, MAX_CHAIN_DESCRIPTORS, Queue};
use std::vec;

/// Rounds of the walker property.
const WALKER_ROUNDS: u64 = 3000;
/// Rounds of the block request property.
const BLOCK_ROUNDS: u64 = 3000;

const BASE: u64 = 0x4000_0000;
const SMALL_RAM: usize = 0x1_0000;

/// An address: mostly inside RAM, sometimes at or across its edges, below it, at the
/// top of the address space, or anywhere.
fn address(random: &mut Random, ram_base: u64, ram_size: u64) -> u64 {
    let end = ram_base + ram_size;
    match random.below(40) {
        0 => end - random.below(32),
        1 => ram_base - 1 - random.below(64),
        2 => u64::MAX - random.below(64),
        3 => random.next(),
        _ => ram_base + random.below(ram_size),
    }
}

/// A length: zero, tiny, sector-ish, a multiple of 16 (for indirect tables), or huge.
fn length(random: &mut Random) -> u32 {
    match random.below(40) {
        0 | 1 => 0,
        2 => u32::MAX - random.below(4) as u32,
        3 => random.next() as u32,
        4..=9 => 16 * random.below(40) as u32,
        10..=14 => 512 * random.below(4) as u32,
        _ => random.below(300) as u32,
    }
}

/// Flags: mostly the defined ones, sometimes anything.
fn flags(random: &mut Random) -> u16 {
    match random.below(16) {
        0 => random.next() as u16,
        1..=4 => random.below(8) as u16,
        // Mostly well-formed directions, so that long valid chains occur.
        _ => random.below(2) as u16,
    }
}

#[test]
fn random_descriptor_tables_yield_valid_chains_or_errors() {
    let mut random = Random::new(0x5EED_0001);
    let mut chain = Chain::new();
    let (mut chains, mut errors) = (0u64, 0u64);
    for round in 0..WALKER_ROUNDS {
        let mut memory = VecMemory::new(BASE, SMALL_RAM);
        // Random garbage everywhere, then random descriptors in the table and in a
        // few places an indirect pointer may land on.
        for byte in memory.as_mut_slice().iter_mut() {
            *byte = random.next() as u8;
        }
        let size = 1u16 << random.below(9);
        let desc = BASE;
        let avail = BASE + 0x2000;
        let used = BASE + 0x3000;
        let mut tables = vec![desc];
        for _ in 0..4 {
            tables.push(BASE + 0x4000 + 16 * random.below(0x800));
        }
        for &table in &tables {
            for index in 0..u64::from(size).max(64) {
                let at = table + 16 * index;
                if at + 16 > BASE + SMALL_RAM as u64 {
                    break;
                }
                let target = if random.below(4) == 0 {
                    tables[random.below(tables.len() as u64) as usize]
                } else {
                    address(&mut random, BASE, SMALL_RAM as u64)
                };
                let next = random.below(u64::from(size) + 2) as u16;
                write_descriptor(
                    &mut memory,
                    at,
                    target,
                    length(&mut random),
                    flags(&mut random),
                    next,
                );
            }
        }
        // The available ring: mostly valid heads, a published index that may jump.
        for slot in 0..u64::from(size) {
            let head = if random.below(10) == 0 {
                random.next() as u16
            } else {
                random.below(u64::from(size)) as u16
            };
            memory.write_u16(avail + 4 + 2 * slot, head).unwrap();
        }
        let published = match random.below(4) {
            0 => random.next() as u16,
            _ => random.below(u64::from(size) + 1) as u16,
        };
        memory.write_u16(avail + 2, published).unwrap();

        let mut queue = Queue::new(256);
        queue.set_size(size);
        queue.set_descriptor_area(desc);
        queue.set_driver_area(avail);
        queue.set_device_area(used);
        queue.set_features(random.below(2) == 0, random.below(2) == 0);
        queue.enable().unwrap();
        queue.start_batch();

        for _ in 0..=size {
            let before = memory.clone();
            match queue.pop(&mut memory, &mut chain) {
                Ok(false) => break,
                Err(_) => {
                    errors += 1;
                    break;
                }
                Ok(true) => {
                    chains += 1;
                    check_chain(&chain, &memory, round);
                    // pop writes nothing but avail_event.
                    let avail_event = (used + 4 + 8 * u64::from(size) - BASE) as usize;
                    for (i, (a, b)) in before.as_slice().iter().zip(memory.as_slice()).enumerate() {
                        assert!(
                            a == b || (avail_event..avail_event + 2).contains(&i),
                            "round {round}: pop wrote at {i:#x}"
                        );
                    }
                    queue.add_used(&mut memory, chain.head(), 0).unwrap();
                }
            }
        }
    }
    std::println!("{chains} chains, {errors} errors");
    // The generator must exercise both outcomes substantially.
    assert!(chains > 500, "{chains} valid chains");
    assert!(errors > 500, "{errors} errors");
}

/// Every segment lies in RAM and is non-empty; the totals are within the limits.
fn check_chain(chain: &Chain, memory: &VecMemory, round: u64) {
    let segments = chain.readable().iter().chain(chain.writable());
    let mut total = 0u64;
    let mut count = 0;
    for segment in segments {
        assert!(segment.length > 0, "round {round}: empty segment");
        assert!(
            memory
                .check(segment.address, u64::from(segment.length))
                .is_ok(),
            "round {round}: segment {segment:?} outside RAM"
        );
        total += u64::from(segment.length);
        count += 1;
    }
    assert_eq!(total, chain.readable_len() + chain.writable_len());
    assert!(total <= MAX_CHAIN_BYTES);
    assert!(count <= MAX_CHAIN_DESCRIPTORS);
}

/// Block request types worth hitting, and anything.
fn request_type(random: &mut Random) -> u32 {
    match random.below(8) {
        0 => random.next() as u32,
        n => [0, 1, 4, 8, 11, 13, 1][n as usize - 1],
    }
}

#[test]
fn random_block_requests_answer_or_need_a_reset() {
    const SECTORS: u64 = 64;
    let mut random = Random::new(0x5EED_0002);
    let mut disk = MemoryDisk::new(SECTORS as usize);
    for (i, byte) in disk.bytes.iter_mut().enumerate() {
        *byte = (i * 13) as u8;
    }
    let mut d = Driver::new(Block::new(disk));
    d.init(u64::MAX, 1, 16);
    let pool = d.alloc(0x2_0000);
    let (mut answered, mut resets) = (0u64, 0u64);
    let mut statuses = [0u64; 3];
    for round in 0..BLOCK_ROUNDS {
        // The header: a type, a sector, sometimes short.
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&request_type(&mut random).to_le_bytes());
        let sector = match random.below(6) {
            0 => SECTORS,
            1 => SECTORS - 1,
            2 => u64::MAX - random.below(4),
            3 => random.next(),
            _ => random.below(SECTORS),
        };
        header[8..16].copy_from_slice(&sector.to_le_bytes());
        let header_at = pool;
        d.memory.write(header_at, &header).unwrap();
        let header_len = if random.below(10) == 0 {
            random.below(16) as u32
        } else {
            16
        };
        let mut bufs = vec![Buf::read(header_at, header_len)];
        // Readable then writable data, in pool, sometimes outside RAM.
        let in_pool = |random: &mut Random, length: u32| -> u64 {
            if random.below(20) == 0 {
                address(random, RAM_BASE, RAM_SIZE as u64)
            } else {
                pool + 16 + random.below(0x2_0000 - 16 - u64::from(length.min(0x1_0000)))
            }
        };
        for _ in 0..random.below(4) {
            let length = [0, 1, 16, 511, 512, 1024, 4096][random.below(7) as usize];
            let at = in_pool(&mut random, length);
            if random.below(2) == 0 {
                // Random ranges for discard/write zeroes, or random payload.
                let mut bytes = vec![0u8; length as usize];
                for byte in &mut bytes {
                    *byte = random.next() as u8;
                }
                if at
                    .checked_add(u64::from(length))
                    .is_some_and(|e| e <= RAM_BASE + RAM_SIZE as u64)
                    && at >= RAM_BASE
                {
                    d.memory.write(at, &bytes).unwrap();
                }
            }
            bufs.push(Buf::read(at, length));
        }
        for _ in 0..random.below(4) {
            let length = [0, 1, 20, 511, 512, 513, 2048][random.below(7) as usize];
            bufs.push(Buf::write(in_pool(&mut random, length), length));
        }
        if random.below(10) == 0 {
            // A direction error.
            let last = bufs.len() - 1;
            bufs.swap(0, last);
        }
        let before_disk = d.transport.device().backend().clone();
        let indirect = random.below(4) == 0;
        let head = if indirect {
            d.write_indirect(0, &bufs)
        } else {
            d.write_chain(0, &bufs)
        };
        d.publish(0, head);
        d.write32(regs::QUEUE_NOTIFY, 0);
        let mut recording = Recording::new(&mut d.memory);
        d.transport.process(&mut recording);
        let writes = recording.writes;

        // Everything the device wrote lies in the writable buffers or the used ring.
        let writable: Vec<Buf> = bufs.iter().copied().filter(|b| b.writable).collect();
        let total: u64 = writable.iter().map(|b| u64::from(b.length)).sum();
        let q = d.queues[0].clone();
        let used_ring = q.used..q.used + 6 + 8 * u64::from(q.size);
        let within = |range: &core::ops::Range<u64>, at: u64, length: u64| {
            range.start <= at && at + length <= range.end
        };
        for &(at, length) in &writes {
            let inside = writable
                .iter()
                .any(|w| within(&(w.address..w.address + u64::from(w.length)), at, length));
            assert!(
                inside || within(&used_ring, at, length),
                "round {round}: wrote {length} bytes outside the request at {at:#x}"
            );
        }
        if d.transport.needs_reset() {
            resets += 1;
            assert!(d.transport.take_fault().is_some());
            assert!(d.take_used(0).is_empty(), "round {round}");
            d.init(u64::MAX, 1, 16);
            continue;
        }
        let used = d.take_used(0);
        assert_eq!(used.len(), 1, "round {round}: one answer");
        assert_eq!(u64::from(used[0].1), total, "round {round}: used length");
        answered += 1;
        // The status byte is the last writable byte.
        let last = writable.iter().rev().find(|b| b.length > 0).unwrap();
        let status = d.get(last.address + u64::from(last.length) - 1, 1)[0];
        assert!(status <= 2, "round {round}: status {status}");
        statuses[status as usize] += 1;
        // The disk changes only through a successful write or write-zeroes.
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap());
        if status != 0 || !(kind == 1 || kind == 13) {
            assert_eq!(
                d.transport.device().backend().bytes,
                before_disk.bytes,
                "round {round}: type {kind} status {status} changed the disk"
            );
        }
    }
    std::println!("{answered} answered, {resets} resets, statuses {statuses:?}");
    assert!(
        answered > 500 && resets > 100,
        "{answered} answered, {resets} resets"
    );
    assert!(statuses.iter().all(|&n| n > 50), "statuses {statuses:?}");
}
