//! Calls into Aerie: SMCCC calls through `HVC #0` (PSCI, the SMCCC arch calls and
//! Aerie's own hypercalls), with their numbers restated from the specifications so
//! that the guests check Aerie against the specs, not against Aerie's own constants.

use core::arch::asm;

/// Issues `HVC #0` with the function ID in w0 and arguments in x1..x3; returns
/// x0..x3. SMCCC (DEN 0028, 2.6 and 3.1) lets the callee return results in x0..x3
/// (x0..x17 from SMCCC 1.2), so x4..x17 are treated as clobbered too.
pub fn hvc(function: u32, a: u64, b: u64, c: u64) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: HVC traps to Aerie, which reads and writes only registers and, for
    // DEBUG_WRITE, reads the guest memory the caller passed; the asm may read memory
    // (no `nomem`), so every earlier write to such a buffer is done before the call.
    unsafe {
        asm!(
            "hvc #0",
            inlateout("x0") u64::from(function) => r0,
            inlateout("x1") a => r1,
            inlateout("x2") b => r2,
            inlateout("x3") c => r3,
            lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// A PSCI or SMCCC call with up to three arguments; returns x0.
pub fn psci_call(function: u32, a: u64, b: u64, c: u64) -> u64 {
    hvc(function, a, b, c)[0]
}

/// The `int32` status in the low half of a returned x0 (DEN 0022, 5.2.2: return
/// values are sign-extended, and only w0 counts).
pub fn status(x0: u64) -> i32 {
    x0 as u32 as i32
}

/// PSCI function IDs and return codes (DEN 0022 1.1, tables 5.1 and 5.2, section
/// 5.2.2) and the SMCCC arch calls (DEN 0028, section 7).
pub mod psci {
    /// `PSCI_VERSION`.
    pub const VERSION: u32 = 0x8400_0000;
    /// `CPU_OFF`.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// `CPU_ON`, SMC64 form.
    pub const CPU_ON: u32 = 0xC400_0003;
    /// `AFFINITY_INFO`, SMC64 form.
    pub const AFFINITY_INFO: u32 = 0xC400_0004;
    /// `MIGRATE_INFO_TYPE`.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// `SYSTEM_OFF`.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// `SYSTEM_RESET`.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// `PSCI_FEATURES`.
    pub const FEATURES: u32 = 0x8400_000A;
    /// `SMCCC_VERSION` (SMCCC arch call).
    pub const SMCCC_VERSION: u32 = 0x8000_0000;

    /// PSCI 1.1 as `PSCI_VERSION` returns it: major in bits 31:16, minor in 15:0.
    pub const VERSION_1_1: u64 = 0x0001_0001;
    /// SMCCC 1.1 as `SMCCC_VERSION` returns it (same layout).
    pub const SMCCC_1_1: u64 = 0x0001_0001;
    /// `MIGRATE_INFO_TYPE`: "Trusted OS is either not present or does not require
    /// migration".
    pub const MIGRATE_NOT_REQUIRED: u64 = 2;

    /// `SUCCESS`.
    pub const SUCCESS: i32 = 0;
    /// `NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: i32 = -1;
    /// `INVALID_PARAMETERS`.
    pub const INVALID_PARAMETERS: i32 = -2;
    /// `DENIED`.
    pub const DENIED: i32 = -3;
    /// `ALREADY_ON`.
    pub const ALREADY_ON: i32 = -4;
    /// `ON_PENDING`.
    pub const ON_PENDING: i32 = -5;
    /// `INTERNAL_FAILURE`.
    pub const INTERNAL_FAILURE: i32 = -6;
    /// `NOT_PRESENT`.
    pub const NOT_PRESENT: i32 = -7;
    /// `DISABLED`.
    pub const DISABLED: i32 = -8;
    /// `INVALID_ADDRESS`.
    pub const INVALID_ADDRESS: i32 = -9;

    /// `AFFINITY_INFO` result: the CPU is on.
    pub const AFFINITY_ON: i32 = 0;
    /// `AFFINITY_INFO` result: the CPU is off.
    pub const AFFINITY_OFF: i32 = 1;
    /// `AFFINITY_INFO` result: the CPU is being turned on.
    pub const AFFINITY_ON_PENDING: i32 = 2;

    /// The name of a PSCI return code, for messages.
    pub fn name(code: i32) -> &'static str {
        match code {
            SUCCESS => "SUCCESS",
            NOT_SUPPORTED => "NOT_SUPPORTED",
            INVALID_PARAMETERS => "INVALID_PARAMETERS",
            DENIED => "DENIED",
            ALREADY_ON => "ALREADY_ON",
            ON_PENDING => "ON_PENDING",
            INTERNAL_FAILURE => "INTERNAL_FAILURE",
            NOT_PRESENT => "NOT_PRESENT",
            DISABLED => "DISABLED",
            INVALID_ADDRESS => "INVALID_ADDRESS",
            _ => "not a PSCI return code",
        }
    }
}

/// Aerie's hypercalls: SMCCC vendor-specific hypervisor service calls (owning entity
/// 6, SMC64 fast calls), documented in `hyp/src/hypercall.rs`.
pub mod hypercall {
    /// Writes x2 bytes of guest memory at x1 to Aerie's console.
    pub const DEBUG_WRITE: u32 = 0xC600_0001;
    /// Stops the VM; QEMU exits with the status in x1.
    pub const EXIT: u32 = 0xC600_0002;
    /// The longest buffer one `DEBUG_WRITE` accepts.
    pub const DEBUG_WRITE_MAX: usize = 256;
}

/// Writes `bytes` to Aerie's console in calls of at most
/// [`hypercall::DEBUG_WRITE_MAX`] bytes. Gives up on an error result. The MMU is off,
/// so the buffer's address is its guest physical address.
pub fn debug_write(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(hypercall::DEBUG_WRITE_MAX)];
        let written = hvc(
            hypercall::DEBUG_WRITE,
            chunk.as_ptr() as u64,
            chunk.len() as u64,
            0,
        )[0] as i64;
        if written <= 0 || written as usize > chunk.len() {
            return;
        }
        rest = &rest[written as usize..];
    }
}

/// Stops the VM with `status` (QEMU's exit status). Waits for interrupts forever
/// if Aerie returns from the call.
pub fn exit(status: u8) -> ! {
    hvc(hypercall::EXIT, u64::from(status), 0, 0);
    loop {
        crate::cpu::wait_for_interrupt();
    }
}
