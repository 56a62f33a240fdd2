//! Data-cache maintenance by virtual address.
//!
//! Needed where memory is shared between a CPU with its caches on and an agent
//! without: a secondary CPU that starts with its MMU off, or data written before
//! the boot CPU turned its own caches on.

use aarch64_cpu::asm::barrier;
use core::arch::asm;

/// CTR_EL0.DminLine, bits [19:16]: log2 of the smallest data cache line in words.
const DMIN_LINE_SHIFT: u64 = 16;

/// The smallest data cache line size in bytes.
fn line_size() -> usize {
    4 << ((super::cpu::cache_type() >> DMIN_LINE_SHIFT) & 0xf)
}

/// Bytes [`copy`] moves per loop iteration.
const COPY_BLOCK: usize = 64;

/// Copies `size` bytes from `source` to `destination`, 64 bytes per iteration with
/// paired 16-byte loads and stores. Aerie is built soft-float, so the compiler's own
/// `memcpy` moves 8 bytes at a time; loading a guest's kernel and initrd (tens of
/// MiB) or restoring its RAM is most of what Aerie does before the guest runs, and
/// this makes that copy about twice as fast.
///
/// # Safety
/// `source..source + size` must be readable and `destination..destination + size`
/// writable, and the two must not overlap.
pub unsafe fn copy(destination: *mut u8, source: *const u8, size: usize) {
    let blocks = size / COPY_BLOCK;
    if blocks > 0 {
        // A copy loop of paired 64-bit loads and stores, which no crate provides.
        // SAFETY: the caller guarantees both ranges; the loop touches exactly
        // `blocks * 64` bytes of each, from their starts, and clobbers only the
        // registers it declares.
        unsafe {
            asm!(
                "2:",
                "ldp {a}, {b}, [{src}]",
                "ldp {c}, {d}, [{src}, #16]",
                "stp {a}, {b}, [{dst}]",
                "stp {c}, {d}, [{dst}, #16]",
                "ldp {a}, {b}, [{src}, #32]",
                "ldp {c}, {d}, [{src}, #48]",
                "add {src}, {src}, #64",
                "stp {a}, {b}, [{dst}, #32]",
                "stp {c}, {d}, [{dst}, #48]",
                "add {dst}, {dst}, #64",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                src = inout(reg) source => _,
                dst = inout(reg) destination => _,
                n = inout(reg) blocks => _,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                d = out(reg) _,
                options(nostack),
            );
        }
    }
    let done = blocks * COPY_BLOCK;
    // The tail: `done <= size`, so both offsets stay inside the caller's ranges.
    let tail_source = source.wrapping_add(done);
    let tail_destination = destination.wrapping_add(done);
    // SAFETY: the tail lies inside both ranges, which the caller guarantees.
    unsafe { core::ptr::copy_nonoverlapping(tail_source, tail_destination, size - done) };
}

/// Cleans `[start, start + size)` to the point of coherency, so that an observer
/// with caches off sees what this CPU wrote.
pub fn clean_to_poc(start: usize, size: usize) {
    let line = line_size();
    let mut address = start & !(line - 1);
    while address < start + size {
        // aarch64-cpu has no cache maintenance instructions.
        // SAFETY: DC CVAC only writes dirty lines back to memory; it never changes
        // the contents a program sees, whatever the address.
        unsafe { asm!("dc cvac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    barrier::dsb(barrier::SY);
}

/// Discards any cached copy of `[start, start + size)`.
///
/// # Safety
/// Dirty lines in the range are lost: the caller must know there are none that
/// matter (with the MMU off, Aerie's writes bypass the caches, and the boot protocol
/// requires the loader to have cleaned the image to the point of coherency).
pub unsafe fn invalidate_to_poc(start: usize, size: usize) {
    let line = line_size();
    let mut address = start & !(line - 1);
    while address < start + size {
        // aarch64-cpu has no cache maintenance instructions.
        // SAFETY: the caller guarantees no dirty line in the range matters.
        unsafe { asm!("dc ivac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    barrier::dsb(barrier::SY);
}

/// Invalidates every instruction cache in the inner shareable domain, so that code
/// written through the data side (a restored guest's RAM) is fetched afresh.
pub fn invalidate_instruction_caches() {
    // aarch64-cpu has no cache maintenance instructions.
    // SAFETY: invalidating instruction caches only makes later fetches go to
    // memory (which holds the cleaned data); the barriers have no memory effect.
    unsafe {
        asm!(
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// DCZID_EL0.DZP, bit 4: DC ZVA is prohibited.
const DCZID_PROHIBITED: u64 = 1 << 4;
/// DCZID_EL0.BS, bits [3:0]: log2 of the DC ZVA block size in 4-byte words.
const DCZID_BLOCK_SIZE_MASK: u64 = 0xf;

/// Zeroes `[start, start + size)` of normal memory, a cache-line block at a time with
/// DC ZVA where the CPU allows it (much faster than stores for large ranges).
///
/// # Safety
/// The range must be mapped, writable normal memory that no Rust reference covers.
pub unsafe fn zero(start: usize, size: usize) {
    let dczid: u64;
    // aarch64-cpu declares no DCZID_EL0.
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, DCZID_EL0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    let end = start + size;
    let block = 4usize << (dczid & DCZID_BLOCK_SIZE_MASK);
    let first = start.next_multiple_of(block);
    let last = end & !(block - 1);
    if dczid & DCZID_PROHIBITED != 0 || first >= last {
        // SAFETY: the caller guarantees the range is writable and unaliased.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, size) };
        return;
    }
    // SAFETY: the head lies inside the caller's range.
    unsafe { core::ptr::write_bytes(start as *mut u8, 0, first - start) };
    // SAFETY: the tail lies inside the caller's range.
    unsafe { core::ptr::write_bytes(last as *mut u8, 0, end - last) };
    let mut address = first;
    while address < last {
        // aarch64-cpu has no DC ZVA.
        // SAFETY: DC ZVA zeroes the aligned block at `address`, which lies inside the
        // caller's range (between `first` and `last`).
        unsafe { asm!("dc zva, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += block;
    }
}
