//! The CPU a guest runs on: identity, exception level, the generic timer's counters,
//! barriers and waiting.

use core::arch::asm;

/// Reads a system register by name (`mrs`); no memory access, no side effect on the
/// flags.
macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading this system register has no side effect and touches no
        // memory; Aerie either lets it through or emulates it.
        unsafe {
            core::arch::asm!(
                concat!("mrs {}, ", $name),
                out(reg) value,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }};
}
pub(crate) use read_sysreg;

/// Writes a system register by name (`msr`), followed by an `isb` so that the write
/// takes effect before the next instruction.
macro_rules! write_sysreg {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the callers in this crate write only generic timer registers,
        // which change no memory, stack or translation state.
        unsafe {
            core::arch::asm!(
                concat!("msr ", $name, ", {}"),
                "isb",
                in(reg) value,
                options(nomem, nostack, preserves_flags),
            );
        }
    }};
}
pub(crate) use write_sysreg;

/// The affinity fields of MPIDR_EL1 (Arm ARM D23.2.121): Aff3 in bits 39:32, Aff2..Aff0
/// in bits 23:0. This is what a device tree's `cpu` `reg` and PSCI's target_cpu hold.
pub const MPIDR_AFFINITY_MASK: u64 = 0xFF_00FF_FFFF;
/// Shift of Aff1 in MPIDR_EL1.
const MPIDR_AFF1_SHIFT: u32 = 8;
/// Shift of the EL field in CurrentEL.
const CURRENT_EL_SHIFT: u32 = 2;
/// Width mask of the EL field in CurrentEL.
const CURRENT_EL_MASK: u64 = 0b11;
/// D, A, I and F: bits 9:6 of DAIF.
pub const DAIF_ALL_MASKED: u64 = 0b1111 << 6;

/// The affinity of this CPU (MPIDR_EL1 restricted to its affinity fields).
pub fn mpidr() -> u64 {
    read_sysreg!("MPIDR_EL1") & MPIDR_AFFINITY_MASK
}

/// The MPIDR affinity Aerie gives vCPU `index` (Aff0 = index % 16, Aff1 = index / 16,
/// the layout of QEMU `virt`, which has 16 CPUs per cluster).
pub fn vcpu_mpidr(index: usize) -> u64 {
    let index = index as u64;
    (index % 16) | ((index / 16) << MPIDR_AFF1_SHIFT)
}

/// The current exception level, 0..=3.
pub fn current_el() -> u64 {
    (read_sysreg!("CurrentEL") >> CURRENT_EL_SHIFT) & CURRENT_EL_MASK
}

/// PSTATE.{D,A,I,F} as the DAIF register shows them (bits 9:6).
pub fn daif() -> u64 {
    read_sysreg!("DAIF")
}

/// The virtual counter (CNTVCT_EL0), read after an `isb` so that it is not read early.
pub fn counter() -> u64 {
    instruction_barrier();
    read_sysreg!("CNTVCT_EL0")
}

/// The physical counter (CNTPCT_EL0), which the EL1 physical timer compares against.
pub fn physical_counter() -> u64 {
    instruction_barrier();
    read_sysreg!("CNTPCT_EL0")
}

/// The counter frequency in Hz (CNTFRQ_EL0); never zero (1 if the register is).
pub fn counter_frequency() -> u64 {
    read_sysreg!("CNTFRQ_EL0").max(1)
}

/// `ms` milliseconds in counter ticks.
pub fn ticks_from_ms(ms: u64) -> u64 {
    counter_frequency() * ms / 1000
}

/// Counter ticks in microseconds.
pub fn us_from_ticks(ticks: u64) -> u64 {
    ticks.saturating_mul(1_000_000) / counter_frequency()
}

/// Polls `done` until it returns true or `timeout_ms` milliseconds have passed;
/// returns whether it became true.
pub fn wait_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = counter() + ticks_from_ms(timeout_ms);
    loop {
        if done() {
            return true;
        }
        if counter() >= deadline {
            return done();
        }
    }
}

/// A full-system data memory barrier (`dmb sy`): memory accesses before it are
/// observed before those after it, by every CPU and device.
pub fn memory_barrier() {
    // SAFETY: a barrier has no effect beyond ordering memory accesses.
    unsafe { asm!("dmb sy", options(nostack, preserves_flags)) };
}

/// An instruction synchronization barrier (`isb`).
pub fn instruction_barrier() {
    // SAFETY: a barrier has no effect beyond ordering instructions.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// `wfi`: waits for an interrupt (Aerie traps it and may return at any time).
pub fn wait_for_interrupt() {
    // SAFETY: WFI only suspends execution; Aerie resumes the vCPU after it.
    unsafe { asm!("wfi", options(nostack, preserves_flags)) };
}
