//! The guest's PMU (Performance Monitors Extension, PMUv3): the pure rules behind
//! it. `boot/` owns the registers.
//!
//! # Design
//!
//! Aerie pins every vCPU to a physical CPU of its own and never counts anything
//! itself (its benchmarks and profiles count from outside, in QEMU), so the guest
//! owns the hardware PMU of the CPU it runs on: MDCR_EL2.TPM and TPMCR are clear, so
//! the guest reads and writes the PMU registers without an exit, and HPMN gives it
//! every event counter the CPU has ([`guest_mdcr`]). Nothing is switched on an exit:
//! the counters keep their values while Aerie runs, and they do not count Aerie's
//! own time (EL2) unless the guest asks for it with the NSH filter bits, which
//! MDCR_EL2.HPMD and HCCD override where the CPU has them (PMUv3p1, PMUv3p5). The
//! events the guest may count are the CPU's own, so PMCEID0/1 (read from the CPU)
//! advertise exactly what the host counts.
//!
//! The overflow interrupt is the PMU's PPI (PPI 7, INTID 23 on QEMU `virt` and on
//! Arm's platforms). The CPU raises it physically; Aerie takes it at EL2 and lists
//! it for the vCPU as the same virtual PPI, hardware-linked like the virtual timer,
//! so that the guest's end of interrupt deactivates the physical one. It is a level
//! ([`overflow_interrupt`]): Aerie re-reads it on entry while the vGIC has it high.
//!
//! The PMU state goes with the vCPU ([`crate::vcpu::PmuState`]): `boot/` reads it
//! from the CPU for a snapshot and when a vCPU stops, and writes it when a vCPU
//! starts (a new vCPU gets a reset PMU).
//!
//! Where the host has no PMUv3, or its device tree gives no PMU PPI (the Raspberry
//! Pi 4's tree gives one SPI per CPU), the guest has none: PMUVer reads 0, its
//! device tree has no PMU node, and the PMU registers trap and read as zero.

/// ID_AA64DFR0_EL1.PMUVer, bits \[11:8\].
pub const DFR0_PMUVER_SHIFT: u32 = 8;
/// PMUVer: PMUv3.
pub const PMUV3: u8 = 0b0001;
/// PMUVer: PMUv3 for Armv8.1 (MDCR_EL2.HPMD).
pub const PMUV3P1: u8 = 0b0100;
/// PMUVer: PMUv3 for Armv8.5 (64-bit event counters, MDCR_EL2.HCCD).
pub const PMUV3P5: u8 = 0b0110;
/// PMUVer: an IMPLEMENTATION DEFINED PMU, not PMUv3.
pub const PMUVER_IMPDEF: u8 = 0b1111;
/// The most event counters PMUv3 has (PMEVCNTR0..30).
pub const MAX_EVENT_COUNTERS: usize = 31;
/// The cycle counter's bit in PMCNTENSET, PMINTENSET and PMOVSSET.
pub const CYCLE_COUNTER_BIT: u32 = 31;

/// PMCR_EL0 bits.
pub mod pmcr {
    /// E: enable the counters.
    pub const E: u64 = 1 << 0;
    /// N, bits \[15:11\]: the number of event counters.
    pub const N_SHIFT: u32 = 11;
    /// The width of N.
    pub const N_MASK: u64 = 0x1f;
}

/// MDCR_EL2 bits for the PMU.
pub mod mdcr {
    /// HPMN, bits \[4:0\]: event counters 0 to HPMN-1 are the guest's.
    pub const HPMN_MASK: u64 = 0x1f;
    /// Trap PMCR_EL0.
    pub const TPMCR: u64 = 1 << 5;
    /// Trap every other PMU register.
    pub const TPM: u64 = 1 << 6;
    /// Prohibit the guest's event counters from counting at EL2 (PMUv3p1).
    pub const HPMD: u64 = 1 << 17;
    /// Prohibit the cycle counter from counting at EL2 (PMUv3p5).
    pub const HCCD: u64 = 1 << 23;
}

/// The host CPU's PMU version from ID_AA64DFR0_EL1, if it is a PMUv3 (not absent,
/// not IMPLEMENTATION DEFINED).
pub fn host_version(dfr0: u64) -> Option<u8> {
    let version = ((dfr0 >> DFR0_PMUVER_SHIFT) & 0xf) as u8;
    (version != 0 && version != PMUVER_IMPDEF).then_some(version)
}

/// The number of event counters PMCR_EL0 `value` names.
pub fn counters(pmcr_value: u64) -> u8 {
    ((pmcr_value >> pmcr::N_SHIFT) & pmcr::N_MASK) as u8
}

/// The PMU bits of MDCR_EL2 for a guest on a CPU with PMU `version` and `counters`
/// event counters (`None`: no PMUv3). With `guest_pmu` the guest owns every counter
/// untrapped and EL2 is kept out of its counts where the CPU can; without, every
/// PMU register traps (Aerie answers zero) and HPMN still covers every counter, as
/// its reset value does.
pub fn guest_mdcr(version: Option<u8>, counters: u8, guest_pmu: bool) -> u64 {
    let hpmn = u64::from(counters) & mdcr::HPMN_MASK;
    let Some(version) = version.filter(|_| guest_pmu) else {
        return mdcr::TPM | mdcr::TPMCR | hpmn;
    };
    let mut value = hpmn;
    if version >= PMUV3P1 {
        value |= mdcr::HPMD;
    }
    if version >= PMUV3P5 {
        value |= mdcr::HCCD;
    }
    value
}

/// Whether the PMU asserts its overflow interrupt: the counters are enabled
/// (PMCR_EL0.E) and a counter whose interrupt is enabled (PMINTENSET_EL1) has
/// overflowed (PMOVSSET_EL0). Arm ARM D13.4 ("The PMU overflow interrupt request").
pub fn overflow_interrupt(pmcr_value: u64, interrupt_enable: u64, overflow: u64) -> bool {
    pmcr_value & pmcr::E != 0 && interrupt_enable & overflow != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pmuv3_counts_as_a_host_pmu() {
        assert_eq!(host_version(0), None);
        assert_eq!(host_version(0x1 << 8), Some(PMUV3));
        assert_eq!(host_version(0x6 << 8 | 0x9), Some(PMUV3P5));
        assert_eq!(host_version(0xf << 8), None, "IMPLEMENTATION DEFINED");
    }

    #[test]
    fn counters_is_pmcr_n() {
        assert_eq!(counters(0x4100_3000), 6);
        assert_eq!(counters(0x1f << 11 | 0x41), 31);
        assert_eq!(counters(0), 0);
    }

    #[test]
    fn a_hidden_pmu_traps_every_register() {
        for version in [None, Some(PMUV3), Some(PMUV3P5)] {
            assert_eq!(
                guest_mdcr(version, 6, false),
                mdcr::TPM | mdcr::TPMCR | 6,
                "{version:?}"
            );
        }
        // Without a PMUv3 the guest gets none, whatever is asked.
        assert_eq!(guest_mdcr(None, 0, true), mdcr::TPM | mdcr::TPMCR);
    }

    #[test]
    fn the_guest_owns_every_counter_and_el2_is_left_out_where_it_can_be() {
        assert_eq!(guest_mdcr(Some(PMUV3), 6, true), 6, "PMUv3: no HPMD");
        assert_eq!(guest_mdcr(Some(PMUV3P1), 4, true), 4 | mdcr::HPMD);
        assert_eq!(guest_mdcr(Some(0b0101), 31, true), 31 | mdcr::HPMD);
        assert_eq!(
            guest_mdcr(Some(PMUV3P5), 20, true),
            20 | mdcr::HPMD | mdcr::HCCD
        );
        assert_eq!(
            guest_mdcr(Some(0b1000), 20, true),
            20 | mdcr::HPMD | mdcr::HCCD
        );
    }

    #[test]
    fn the_overflow_interrupt_needs_enable_interrupt_enable_and_overflow() {
        let cycle = 1 << CYCLE_COUNTER_BIT;
        assert!(overflow_interrupt(pmcr::E, cycle, cycle));
        assert!(overflow_interrupt(pmcr::E, 0b101, 0b100));
        assert!(!overflow_interrupt(0, cycle, cycle), "counters disabled");
        assert!(!overflow_interrupt(pmcr::E, 0b1, 0b10), "other counter");
        assert!(!overflow_interrupt(pmcr::E, 0, cycle), "interrupt disabled");
        assert!(!overflow_interrupt(pmcr::E, cycle, 0), "no overflow");
    }
}
