//! This CPU's PMU registers, which the guest owns while its vCPU runs here (the
//! design: `aerie_hyp::pmu`). Aerie reads and writes them only when a vCPU starts,
//! stops or is saved, and reads the overflow state when the PMU's interrupt arrives.

use aarch64_cpu::registers::{ID_AA64DFR0_EL1, Readable};
use aerie_hyp::pmu::{self, pmcr};
use aerie_hyp::vcpu::PmuState;
use core::arch::asm;

/// PMCR_EL0.P (bit 1) and C (bit 2): writing 1 resets the event counters or the
/// cycle counter. They read as zero, and a restore must not reset what it wrote.
const PMCR_RESET_BITS: u64 = 0b110;
/// Every counter bit of the set/clear registers (PMCNTENCLR, PMINTENCLR, PMOVSCLR).
const ALL_COUNTERS: u64 = 0xffff_ffff;

/// Reads PMU register `$name`.
macro_rules! read {
    ($name:literal) => {{
        let value: u64;
        // aarch64-cpu declares no PMU registers.
        // SAFETY: reading a PMU register at EL2 has no side effect (the CPU has a
        // PMUv3: callers check `host_pmu` first).
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags)) };
        value
    }};
}

/// Writes PMU register `$name`.
macro_rules! write {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // aarch64-cpu declares no PMU registers.
        // SAFETY: the PMU only counts and interrupts; Aerie itself never uses it, so
        // its registers are the guest's state, which the caller is loading or clearing.
        unsafe { asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) value, options(nomem, nostack, preserves_flags)) };
    }};
}

/// This CPU's PMU, if it is a PMUv3: its version (ID_AA64DFR0_EL1.PMUVer) and how
/// many event counters it has (PMCR_EL0.N).
pub fn host_pmu() -> Option<(u8, u8)> {
    let version = pmu::host_version(ID_AA64DFR0_EL1.get())?;
    Some((version, pmu::counters(read!("PMCR_EL0"))))
}

/// Whether this CPU's PMU asserts its overflow interrupt for the guest.
pub fn overflow_interrupt() -> bool {
    pmu::overflow_interrupt(
        read!("PMCR_EL0"),
        read!("PMINTENSET_EL1"),
        read!("PMOVSSET_EL0"),
    )
}

/// Puts `state` into this CPU's PMU, which has `counters` event counters. The
/// counters are enabled last, so nothing counts or interrupts half-loaded.
pub fn load(state: &PmuState, counters: u8) {
    write!("PMCR_EL0", state.pmcr & !(pmcr::E | PMCR_RESET_BITS));
    write!("PMCNTENCLR_EL0", ALL_COUNTERS);
    write!("PMINTENCLR_EL1", ALL_COUNTERS);
    write!("PMOVSCLR_EL0", ALL_COUNTERS);
    for n in 0..usize::from(counters).min(pmu::MAX_EVENT_COUNTERS) {
        write!("PMSELR_EL0", n as u64);
        write!("PMXEVTYPER_EL0", state.event_type[n]);
        write!("PMXEVCNTR_EL0", state.event_count[n]);
    }
    write!("PMCCFILTR_EL0", state.cycle_filter);
    write!("PMCCNTR_EL0", state.cycle_count);
    write!("PMSELR_EL0", state.select);
    write!("PMUSERENR_EL0", state.user_enable);
    write!("PMOVSSET_EL0", state.overflow);
    write!("PMINTENSET_EL1", state.interrupt_enable);
    write!("PMCNTENSET_EL0", state.counter_enable);
    write!("PMCR_EL0", state.pmcr & !PMCR_RESET_BITS);
}

/// Reads this CPU's PMU, which has `counters` event counters, into `state`, leaving
/// it as it was (the guest may go on running).
pub fn save(state: &mut PmuState, counters: u8) {
    state.pmcr = read!("PMCR_EL0");
    state.counter_enable = read!("PMCNTENSET_EL0");
    state.interrupt_enable = read!("PMINTENSET_EL1");
    state.overflow = read!("PMOVSSET_EL0");
    state.user_enable = read!("PMUSERENR_EL0");
    state.select = read!("PMSELR_EL0");
    state.cycle_count = read!("PMCCNTR_EL0");
    state.cycle_filter = read!("PMCCFILTR_EL0");
    for n in 0..usize::from(counters).min(pmu::MAX_EVENT_COUNTERS) {
        write!("PMSELR_EL0", n as u64);
        state.event_type[n] = read!("PMXEVTYPER_EL0");
        state.event_count[n] = read!("PMXEVCNTR_EL0");
    }
    write!("PMSELR_EL0", state.select);
}

/// Stops this CPU's PMU once its vCPU stopped: nothing counts, nothing interrupts.
pub fn quiesce() {
    write!("PMCR_EL0", 0);
    write!("PMCNTENCLR_EL0", ALL_COUNTERS);
    write!("PMINTENCLR_EL1", ALL_COUNTERS);
    write!("PMOVSCLR_EL0", ALL_COUNTERS);
}
