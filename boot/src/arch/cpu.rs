//! Reading the CPU's identity and state from system registers, and idling.

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTPCT_EL0, ID_AA64MMFR0_EL1, ID_AA64PFR0_EL1, MIDR_EL1, MPIDR_EL1, Readable,
};

/// MPIDR_EL1 bits that identify a CPU: Aff3 [39:32] and Aff2..Aff0 [23:0].
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The affinity fields of this CPU's MPIDR_EL1, as device trees list them.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// MIDR_EL1: implementer, part number and revision.
pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// CNTFRQ_EL0: the system counter's frequency in Hz, as firmware set it.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// CNTPCT_EL0: the system counter now.
pub fn counter() -> u64 {
    CNTPCT_EL0.get()
}

/// ID_AA64ISAR0_EL1.RNDR, bits [63:60]: the CPU has RNDR (FEAT_RNG).
const ISAR0_RNDR_SHIFT: u64 = 60;

/// Whether the CPU implements the RNDR random number instruction.
pub fn has_random_number_instruction() -> bool {
    let isar0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0, options(nomem, nostack))
    };
    (isar0 >> ISAR0_RNDR_SHIFT) & 0xf != 0
}

/// A random number from RNDR, or `None` when the hardware could not produce one in
/// reasonable time (PSTATE.Z set). Only call when [`has_random_number_instruction`].
pub fn random_number() -> Option<u64> {
    let (value, failed): (u64, u64);
    // SAFETY: RNDR (S3_3_C2_C4_0) only returns a value and sets the flags; the CPU
    // implements it (the caller checked ID_AA64ISAR0_EL1).
    unsafe {
        core::arch::asm!("mrs {v}, S3_3_C2_C4_0", "cset {f}, eq",
            v = out(reg) value, f = out(reg) failed, options(nomem, nostack));
    }
    (failed == 0).then_some(value)
}

/// CNTHP_CTL_EL2.ENABLE.
const TIMER_ENABLE: u64 = 1;

/// Arms the EL2 physical timer to fire when the counter reaches `deadline`.
pub fn arm_hypervisor_timer(deadline: u64) {
    // SAFETY: the EL2 physical timer belongs to Aerie; arming it only raises PPI 26.
    unsafe {
        core::arch::asm!("msr CNTHP_CVAL_EL2, {}", "msr CNTHP_CTL_EL2, {}", "isb",
            in(reg) deadline, in(reg) TIMER_ENABLE, options(nostack, preserves_flags));
    }
}

/// Stops the EL2 physical timer.
pub fn stop_hypervisor_timer() {
    // SAFETY: as for `arm_hypervisor_timer`.
    unsafe {
        core::arch::asm!(
            "msr CNTHP_CTL_EL2, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// True if the CPU implements the GICv3 system-register CPU interface
/// (ID_AA64PFR0_EL1.GIC != 0); a GICv2 host such as the Raspberry Pi has none.
pub fn has_gic_system_registers() -> bool {
    /// ID_AA64PFR0_EL1.GIC, bits [27:24] (aarch64-cpu does not declare this field).
    const GIC_SHIFT: u64 = 24;
    (ID_AA64PFR0_EL1.get() >> GIC_SHIFT) & 0xf != 0
}

/// ID_AA64MMFR0_EL1.PARange: the physical address size code (0 = 32 bits ...
/// 5 = 48 bits, 6 = 52 bits).
pub fn physical_address_range() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange)
}

/// Waits for an event or interrupt (`WFE`): the idle loop's body.
pub fn wait_for_event() {
    aarch64_cpu::asm::wfe();
}

/// Waits for an interrupt (`WFI`). Wakes for a pending physical interrupt even
/// while interrupts are masked at EL2, which is how Aerie takes them (as guest
/// exits, once it returns to the guest).
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Wakes CPUs waiting in [`wait_for_event`] (`SEV`).
pub fn send_event() {
    aarch64_cpu::asm::sev();
}

/// Stops this CPU for good, with interrupts masked.
pub fn halt() -> ! {
    // SAFETY: masking interrupts at the current EL has no memory-safety effect.
    unsafe { core::arch::asm!("msr DAIFSet, #0xf", options(nomem, nostack)) };
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// This CPU's MIDR and feature ID registers, as a snapshot records them.
pub fn identity() -> aerie_hyp::snapshot::machine::CpuIdentity {
    /// Reads one ID register by name or encoding.
    macro_rules! id {
        ($register:literal) => {{
            let value: u64;
            // SAFETY: reading an ID register has no side effects.
            unsafe {
                core::arch::asm!(concat!("mrs {}, ", $register), out(reg) value,
                    options(nomem, nostack, preserves_flags))
            };
            value
        }};
    }
    aerie_hyp::snapshot::machine::CpuIdentity {
        midr: midr(),
        isar0: id!("ID_AA64ISAR0_EL1"),
        isar1: id!("ID_AA64ISAR1_EL1"),
        isar2: id!("S3_0_C0_C6_2"),
        pfr0: id!("ID_AA64PFR0_EL1"),
        pfr1: id!("ID_AA64PFR1_EL1"),
        mmfr0: id!("ID_AA64MMFR0_EL1"),
        mmfr1: id!("ID_AA64MMFR1_EL1"),
        mmfr2: id!("S3_0_C0_C7_2"),
        dfr0: id!("ID_AA64DFR0_EL1"),
    }
}
