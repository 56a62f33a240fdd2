//! The host's PL031 real-time clock (QEMU `virt` has one, fed from the host's own
//! time): Aerie reads it once at boot to know the wall-clock time (see
//! `crate::wall_clock`). Arm PrimeCell RTC (PL031) TRM, DDI 0224, 3.3.1.

/// RTCDR, the count in seconds (read only), at the start of the register block.
const RTCDR: usize = 0x000;

/// Reads the count, seconds since 1970-01-01 UTC as the host set it.
///
/// # Safety
/// `base` must be the register block of a PL031, mapped as device memory.
pub unsafe fn read_seconds(base: usize) -> u32 {
    // SAFETY: the caller guarantees that `base` maps a PL031's registers as device
    // memory; RTCDR is a 32-bit, read-only register whose read has no side effect.
    unsafe { core::ptr::read_volatile((base + RTCDR) as *const u32) }
}
