//! Arm semihosting, used for one thing: telling QEMU to exit with a status code.
//!
//! Aerie cannot know whether the machine offers semihosting (QEMU with
//! `-semihosting-config enable=on`), and on one that does not, `HLT #0xf000` is an
//! undefined instruction. The exception vectors recognise that exact instruction and
//! skip it, making the call return [`UNAVAILABLE`]; the caller then halts instead.

use super::vectors::TrapFrame;
use core::arch::global_asm;

/// Semihosting operation: exit with a reason and a status (AArch64 takes a block).
const SYS_EXIT: u64 = 0x18;
/// Exit reason `ADP_Stopped_ApplicationExit`.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
/// What a call returns when the machine has no semihosting.
pub const UNAVAILABLE: u64 = u64::MAX;

// Assembly by hand: the semihosting trap (HLT #0xF000) with its fallback, which
// no crate provides.
global_asm!(
    r#"
    .text
    .balign 4
    .global aerie_semihosting_call
aerie_semihosting_call:
    // x0: operation, x1: parameter. Returns x0.
    .global aerie_semihosting_trap
aerie_semihosting_trap:
    hlt     #0xf000
    ret
"#
);

unsafe extern "C" {
    /// Performs semihosting operation `operation` with `parameter`.
    fn aerie_semihosting_call(operation: u64, parameter: u64) -> u64;
    /// The address of the `HLT` instruction (a label, never called).
    fn aerie_semihosting_trap();
}

/// True if `frame` is the undefined-instruction trap of a semihosting call on a
/// machine without semihosting.
pub fn is_unavailable_trap(frame: &TrapFrame) -> bool {
    /// ESR_EL2.EC for "unknown reason", which is what an undefined `HLT` gives.
    const EC_UNKNOWN: u64 = 0;
    let ec = frame.esr >> 26;
    ec == EC_UNKNOWN
        && frame.elr == aerie_semihosting_trap as unsafe extern "C" fn() as usize as u64
}

/// Makes the trapped semihosting call return [`UNAVAILABLE`].
pub fn skip_unavailable_call(frame: &mut TrapFrame) {
    frame.x[0] = UNAVAILABLE;
    frame.elr += 4;
}

/// Asks the host to exit with `status`. Returns only if the machine has no
/// semihosting.
pub fn exit(status: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    // SAFETY: SYS_EXIT reads the two-word parameter block, which lives on this
    // stack for the duration of the call; without semihosting the vector skips the
    // instruction and the call returns. No Aerie memory is written.
    unsafe {
        aerie_semihosting_call(SYS_EXIT, block.as_ptr() as u64);
    }
}
