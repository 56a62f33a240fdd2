//! The EL1 generic timers a guest may use (Arm ARM D12.8): the physical timer
//! (CNTP_*, which Aerie traps and emulates) and the virtual timer (CNTV_*, which the
//! guest owns).

use crate::cpu::{read_sysreg, write_sysreg};

/// CNTx_CTL_EL0.ENABLE: the timer is on.
pub const CTL_ENABLE: u64 = 1 << 0;
/// CNTx_CTL_EL0.IMASK: the timer's interrupt is masked.
pub const CTL_IMASK: u64 = 1 << 1;
/// CNTx_CTL_EL0.ISTATUS (read-only): the timer condition is met.
pub const CTL_ISTATUS: u64 = 1 << 2;

/// CNTP_CTL_EL0.
pub fn physical_ctl() -> u64 {
    read_sysreg!("CNTP_CTL_EL0")
}

/// Writes CNTP_CTL_EL0.
pub fn set_physical_ctl(value: u64) {
    write_sysreg!("CNTP_CTL_EL0", value);
}

/// CNTP_CVAL_EL0.
pub fn physical_cval() -> u64 {
    read_sysreg!("CNTP_CVAL_EL0")
}

/// Writes CNTP_CVAL_EL0.
pub fn set_physical_cval(value: u64) {
    write_sysreg!("CNTP_CVAL_EL0", value);
}

/// CNTP_TVAL_EL0, as the signed 32-bit value it holds (CVAL - counter).
pub fn physical_tval() -> i32 {
    read_sysreg!("CNTP_TVAL_EL0") as u32 as i32
}

/// Writes CNTP_TVAL_EL0 (sets CVAL = counter + sign-extended value).
pub fn set_physical_tval(value: i32) {
    write_sysreg!("CNTP_TVAL_EL0", value as u32 as u64);
}

/// CNTV_CTL_EL0.
pub fn virtual_ctl() -> u64 {
    read_sysreg!("CNTV_CTL_EL0")
}

/// Writes CNTV_CTL_EL0.
pub fn set_virtual_ctl(value: u64) {
    write_sysreg!("CNTV_CTL_EL0", value);
}

/// Writes CNTV_CVAL_EL0.
pub fn set_virtual_cval(value: u64) {
    write_sysreg!("CNTV_CVAL_EL0", value);
}
