//! Device registers as the guests reach them: 32- and 8-bit loads and stores (one
//! plain `ldr`/`str`/`strb` each, whose syndrome a hypervisor can emulate), and the
//! GIC CPU interface's system registers ([`write_icc!`](crate::write_icc),
//! [`read_icc!`](crate::read_icc)).

use core::arch::asm;

/// A 32-bit load from the device register at `address`.
///
/// The address must be a 4-byte aligned register of a device this guest has (from
/// the device tree where the device is optional).
pub fn read32(address: u64) -> u32 {
    let value: u32;
    // SAFETY: the callers pass an aligned register of a device of this guest (see
    // above); a load from it has no effect on memory the program uses.
    unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) address, v = out(reg) value, options(nostack)) };
    value
}

/// A 32-bit store to the device register at `address` (as for [`read32`]).
pub fn write32(address: u64, value: u32) {
    // SAFETY: as for `read32`: a device register, not memory the program uses; the
    // guests write only registers of devices they configure themselves.
    unsafe { asm!("str {v:w}, [{a}]", a = in(reg) address, v = in(reg) value, options(nostack)) };
}

/// An 8-bit store to the byte-accessible device register at `address` (GIC
/// IPRIORITYR, ITARGETSR).
pub fn write8(address: u64, value: u8) {
    // SAFETY: as for `write32`.
    unsafe { asm!("strb {v:w}, [{a}]", a = in(reg) address, v = in(reg) value, options(nostack)) };
}

/// Writes a GIC CPU interface system register (GICv3 `ICC_*`) and synchronizes.
#[macro_export]
macro_rules! write_icc {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the GIC CPU interface registers change interrupt delivery only,
        // which the guest sets up and handles itself.
        unsafe {
            core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) value,
                options(nomem, nostack, preserves_flags))
        };
    }};
}

/// Reads a GIC CPU interface system register (GICv3 `ICC_*`).
#[macro_export]
macro_rules! read_icc {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt, which the caller
        // then handles and ends; the others have no side effect.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value,
                options(nomem, nostack, preserves_flags))
        };
        value
    }};
}
