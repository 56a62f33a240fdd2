//! The host's PL031 real-time clock (QEMU `virt` has one, fed from the host's own
//! time): Aerie reads it once at boot to know the wall-clock time (see
//! `crate::wall_clock`). Arm PrimeCell RTC (PL031) TRM, DDI 0224, 3.3.1.

use super::mmio::Registers;
use tock_registers::interfaces::Readable;
use tock_registers::register_structs;
use tock_registers::registers::ReadOnly;

register_structs! {
    /// The PL031 register Aerie reads.
    RegisterBlock {
        /// RTCDR, the count in seconds (read only).
        (0x000 => dr: ReadOnly<u32>),
        (0x004 => @END),
    }
}

/// Reads the count, seconds since 1970-01-01 UTC as the host set it.
///
/// # Safety
/// `base` must be the register block of a PL031, mapped as device memory.
pub unsafe fn read_seconds(base: usize) -> u32 {
    // SAFETY: the caller guarantees that `base` maps a PL031's registers as device
    // memory while this function runs; RTCDR's read has no side effect.
    let rtc: Registers<RegisterBlock> = unsafe { Registers::new(base) };
    rtc.dr.get()
}
