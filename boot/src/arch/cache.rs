//! Data-cache maintenance by virtual address.
//!
//! Needed where memory is shared between a CPU with its caches on and an agent
//! without: a secondary CPU that starts with its MMU off, or data written before
//! the boot CPU turned its own caches on.

use core::arch::asm;

/// CTR_EL0.DminLine, bits [19:16]: log2 of the smallest data cache line in words.
const DMIN_LINE_SHIFT: u64 = 16;

/// The smallest data cache line size in bytes.
fn line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects (aarch64-cpu does not model it).
    unsafe { asm!("mrs {}, CTR_EL0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> DMIN_LINE_SHIFT) & 0xf)
}

/// Cleans `[start, start + size)` to the point of coherency, so that an observer
/// with caches off sees what this CPU wrote.
pub fn clean_to_poc(start: usize, size: usize) {
    let line = line_size();
    let mut address = start & !(line - 1);
    while address < start + size {
        // SAFETY: DC CVAC only writes dirty lines back to memory; it never changes
        // the contents a program sees, whatever the address.
        unsafe { asm!("dc cvac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
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
        // SAFETY: the caller guarantees no dirty line in the range matters.
        unsafe { asm!("dc ivac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Invalidates every instruction cache in the inner shareable domain, so that code
/// written through the data side (a restored guest's RAM) is fetched afresh.
pub fn invalidate_instruction_caches() {
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
