//! Loading and saving a vCPU's EL1 system registers and FP/SIMD registers.
//!
//! These stay in the CPU while the vCPU runs (see `super::guest_entry`); they move
//! when a vCPU starts on a CPU and when it stops (PSCI CPU_OFF, or a snapshot later).
//! SP_EL0 is not among them: Aerie itself runs on SP_EL0, so the guest's value moves
//! on every exit, in the switch frame, and the caller copies it to and from
//! [`El1SystemRegisters::sp_el0`].

use super::hyp_config;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ACTLR_EL1, AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CNTKCTL_EL1, CNTV_CTL_EL0, CNTV_CVAL_EL0,
    CONTEXTIDR_EL1, CPACR_EL1, CSSELR_EL1, ELR_EL1, ESR_EL1, FAR_EL1, MAIR_EL1, MDSCR_EL1, PAR_EL1,
    Readable, SCTLR_EL1, SP_EL1, SPSR_EL1, TCR_EL1, TPIDR_EL0, TPIDR_EL1, TPIDRRO_EL0, TTBR0_EL1,
    TTBR1_EL1, VBAR_EL1, Writeable,
};
use aerie_hyp::vcpu::{El1SystemRegisters, FpRegisters};
use core::arch::asm;

/// Generates `load` and `save` for a list of (field, aarch64-cpu register) pairs.
macro_rules! el1_registers {
    ($($field:ident => $register:ident),* $(,)?) => {
        /// Writes every EL1 system register of `state` into the CPU.
        ///
        /// # Safety
        /// Only while this CPU is about to run the vCPU that owns `state` (stage 2
        /// on, HCR_EL2 set for a guest): the values change how EL1 translates and
        /// handles exceptions, which matters to the guest only. (Aerie runs at EL2
        /// with its own translation regime, so no value can affect Aerie itself.)
        pub unsafe fn load(state: &El1SystemRegisters) {
            load_optional(state);
            $( $register.set(state.$field); )*
            barrier::isb(barrier::SY);
        }

        /// Reads every EL1 system register of the vCPU running on this CPU.
        pub fn save(state: &mut El1SystemRegisters) {
            save_optional(state);
            $( state.$field = $register.get(); )*
        }
    };
}

el1_registers! {
    sctlr => SCTLR_EL1,
    actlr => ACTLR_EL1,
    cpacr => CPACR_EL1,
    ttbr0 => TTBR0_EL1,
    ttbr1 => TTBR1_EL1,
    tcr => TCR_EL1,
    mair => MAIR_EL1,
    amair => AMAIR_EL1,
    vbar => VBAR_EL1,
    contextidr => CONTEXTIDR_EL1,
    tpidr_el0 => TPIDR_EL0,
    tpidrro_el0 => TPIDRRO_EL0,
    tpidr_el1 => TPIDR_EL1,
    sp_el1 => SP_EL1,
    elr_el1 => ELR_EL1,
    spsr_el1 => SPSR_EL1,
    esr => ESR_EL1,
    far => FAR_EL1,
    afsr0 => AFSR0_EL1,
    afsr1 => AFSR1_EL1,
    par => PAR_EL1,
    cntkctl => CNTKCTL_EL1,
    csselr => CSSELR_EL1,
    mdscr => MDSCR_EL1,
    cntv_ctl => CNTV_CTL_EL0,
    cntv_cval => CNTV_CVAL_EL0,
}

/// Reads or writes the pointer authentication key registers by index (0..10 in
/// [`El1SystemRegisters::pointer_auth_keys`] order).
macro_rules! pointer_auth_keys {
    ($($n:literal => $register:literal),* $(,)?) => {
        /// Writes the guest's pointer authentication keys. Only on CPUs with them.
        fn write_pointer_auth_keys(keys: &[u64; 10]) {
            $(
                // A hand-written `msr`: see `pointer_auth_keys!` below for why.
                // SAFETY: the keys only affect the guest's EL1/EL0 pointer
                // authentication; Aerie does not use pointer authentication.
                unsafe {
                    asm!(concat!("msr ", $register, ", {}"), in(reg) keys[$n],
                        options(nomem, nostack, preserves_flags));
                }
            )*
        }

        /// Reads the guest's pointer authentication keys. Only on CPUs with them.
        fn read_pointer_auth_keys(keys: &mut [u64; 10]) {
            $(
                // A hand-written `mrs`: see `pointer_auth_keys!` below for why.
                // SAFETY: reading a key register from EL2 has no side effects.
                unsafe {
                    asm!(concat!("mrs {}, ", $register), out(reg) keys[$n],
                        options(nomem, nostack, preserves_flags));
                }
            )*
        }
    };
}

// By encoding (op0 3, op1 0, CRn 2; CRm 1 = APIB/APIA, 2 = APDA/APDB, 3 = APGA),
// which assemblers without the pointer-authentication extension also accept:
// aarch64-cpu writes the names (APIAKeyLo_EL1, ...), which Aerie's target
// (armv8.0-a, no +pauth) does not assemble.
pointer_auth_keys! {
    0 => "S3_0_C2_C1_0", // APIAKeyLo_EL1
    1 => "S3_0_C2_C1_1", // APIAKeyHi_EL1
    2 => "S3_0_C2_C1_2", // APIBKeyLo_EL1
    3 => "S3_0_C2_C1_3", // APIBKeyHi_EL1
    4 => "S3_0_C2_C2_0", // APDAKeyLo_EL1
    5 => "S3_0_C2_C2_1", // APDAKeyHi_EL1
    6 => "S3_0_C2_C2_2", // APDBKeyLo_EL1
    7 => "S3_0_C2_C2_3", // APDBKeyHi_EL1
    8 => "S3_0_C2_C3_0", // APGAKeyLo_EL1
    9 => "S3_0_C2_C3_1", // APGAKeyHi_EL1
}

/// Writes the EL1 registers only some CPUs have (the pointer authentication keys),
/// on CPUs that have them. SVE's ZCR_EL1 is not among them: guests do not get SVE
/// (see `aerie_hyp::cpu_model`), and CPTR_EL2.TZ traps it, at EL2 too.
fn load_optional(state: &El1SystemRegisters) {
    if hyp_config::has_pointer_authentication() {
        write_pointer_auth_keys(&state.pointer_auth_keys);
    }
}

/// Reads the EL1 registers only some CPUs have, on CPUs that have them.
fn save_optional(state: &mut El1SystemRegisters) {
    if hyp_config::has_pointer_authentication() {
        read_pointer_auth_keys(&mut state.pointer_auth_keys);
    }
}

/// Reads the registers an exception injection needs (VBAR_EL1, SCTLR_EL1).
pub fn vector_base_and_control() -> (u64, u64) {
    (VBAR_EL1.get(), SCTLR_EL1.get())
}

/// Writes the EL1 exception registers of an injected exception: exactly what the
/// architecture sets when it takes an exception to EL1 (they belong to the running
/// guest's EL1).
pub fn write_exception_registers(elr: u64, spsr: u64, esr: u64, far: Option<u64>) {
    ELR_EL1.set(elr);
    SPSR_EL1.set(spsr);
    ESR_EL1.set(esr);
    if let Some(far) = far {
        FAR_EL1.set(far);
    }
}

/// The guest's virtual timer: CNTV_CTL_EL0 and CNTV_CVAL_EL0.
pub fn virtual_timer() -> (u64, u64) {
    (CNTV_CTL_EL0.get(), CNTV_CVAL_EL0.get())
}

/// Turns the EL1 virtual timer off (CNTV_CTL_EL0 = 0): the timer belongs to the
/// vCPU that just stopped on this CPU, whose state was saved first.
pub fn disable_virtual_timer() {
    CNTV_CTL_EL0.set(0);
    barrier::isb(barrier::SY);
}

/// Loads the guest's FP/SIMD registers.
///
/// # Safety
/// As for [`load`]. CPTR_EL2 must not trap FP/SIMD at EL2.
pub unsafe fn load_fp(fp: &FpRegisters) {
    let base = fp.v.as_ptr();
    // No crate moves the FP/SIMD register file (a load/store sequence, not a
    // system register).
    // SAFETY: reads 32 x 16 bytes from `fp.v`, which is exactly that large; the
    // FP registers belong to the guest (Aerie never uses them).
    unsafe {
        asm!(
            // Aerie is built soft-float; enable the FP/SIMD encodings for this block.
            ".arch_extension fp", ".arch_extension simd",
            "ldp q0, q1, [{b}, #0]", "ldp q2, q3, [{b}, #32]",
            "ldp q4, q5, [{b}, #64]", "ldp q6, q7, [{b}, #96]",
            "ldp q8, q9, [{b}, #128]", "ldp q10, q11, [{b}, #160]",
            "ldp q12, q13, [{b}, #192]", "ldp q14, q15, [{b}, #224]",
            "ldp q16, q17, [{b}, #256]", "ldp q18, q19, [{b}, #288]",
            "ldp q20, q21, [{b}, #320]", "ldp q22, q23, [{b}, #352]",
            "ldp q24, q25, [{b}, #384]", "ldp q26, q27, [{b}, #416]",
            "ldp q28, q29, [{b}, #448]", "ldp q30, q31, [{b}, #480]",
            "msr FPSR, {s}", "msr FPCR, {c}",
            b = in(reg) base, s = in(reg) fp.fpsr, c = in(reg) fp.fpcr,
            options(nostack, readonly, preserves_flags),
        );
    }
}

/// Saves the guest's FP/SIMD registers.
pub fn save_fp(fp: &mut FpRegisters) {
    let base = fp.v.as_mut_ptr();
    let (status, control): (u64, u64);
    // No crate moves the FP/SIMD register file (as for `load_fp`).
    // SAFETY: writes 32 x 16 bytes into `fp.v`, which is exactly that large.
    unsafe {
        asm!(
            ".arch_extension fp", ".arch_extension simd",
            "stp q0, q1, [{b}, #0]", "stp q2, q3, [{b}, #32]",
            "stp q4, q5, [{b}, #64]", "stp q6, q7, [{b}, #96]",
            "stp q8, q9, [{b}, #128]", "stp q10, q11, [{b}, #160]",
            "stp q12, q13, [{b}, #192]", "stp q14, q15, [{b}, #224]",
            "stp q16, q17, [{b}, #256]", "stp q18, q19, [{b}, #288]",
            "stp q20, q21, [{b}, #320]", "stp q22, q23, [{b}, #352]",
            "stp q24, q25, [{b}, #384]", "stp q26, q27, [{b}, #416]",
            "stp q28, q29, [{b}, #448]", "stp q30, q31, [{b}, #480]",
            "mrs {s}, FPSR", "mrs {c}, FPCR",
            b = in(reg) base, s = out(reg) status, c = out(reg) control,
            options(nostack, preserves_flags),
        );
    }
    fp.fpsr = status;
    fp.fpcr = control;
}
