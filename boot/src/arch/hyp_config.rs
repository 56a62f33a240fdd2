//! The EL2 control registers that decide what a guest may do and what traps to
//! Aerie. Every bit Aerie sets is listed here with its reason.

use core::arch::asm;

/// HCR_EL2 bits (Arm ARM D23.2.53), named as in the architecture.
mod hcr {
    /// Stage-2 translation on: the guest sees only what Aerie maps.
    pub const VM: u64 = 1 << 0;
    /// Physical FIQs go to EL2 (and virtual FIQs can be injected).
    pub const FMO: u64 = 1 << 3;
    /// Physical IRQs go to EL2 (and virtual IRQs can be injected): host devices
    /// never interrupt the guest directly.
    pub const IMO: u64 = 1 << 4;
    /// Physical SErrors go to EL2, so a guest-caused SError is reported by Aerie.
    pub const AMO: u64 = 1 << 5;
    /// Force broadcast: the guest's TLB and instruction-cache maintenance reaches
    /// every CPU in the inner shareable domain, as it would on bare metal.
    pub const FB: u64 = 1 << 9;
    /// Barrier shareability upgrade to inner shareable (BSU = 0b01).
    pub const BSU_INNER: u64 = 0b01 << 10;
    /// Trap WFI: an idle vCPU comes to Aerie, which idles the CPU properly.
    pub const TWI: u64 = 1 << 13;
    /// Trap ID group 3: the guest's reads of the feature ID registers come to
    /// Aerie, which answers them from the guest's CPU model (`aerie_hyp::cpu_model`).
    pub const TID3: u64 = 1 << 18;
    // TID1 (bit 16: REVIDR_EL1, AIDR_EL1) and TID2 (bit 17: CTR_EL0, CLIDR_EL1,
    // CCSIDR_EL1, CSSELR_EL1) stay clear. Those registers name no architecture
    // feature Aerie hides; the cache geometry is the host's and the guest's set/way
    // maintenance (trapped by TSW) works on the host's caches. Trapping TID2 would
    // also cost an exit for every CTR_EL0 read at EL0. A snapshot records CTR_EL0
    // with the CPU model instead, and a restore compares it.
    /// Trap SMC: a guest using the `smc` conduit reaches Aerie's PSCI, never the
    /// firmware.
    pub const TSC: u64 = 1 << 19;
    /// Trap IMPLEMENTATION DEFINED system registers: they can change how the core
    /// behaves for everyone; the guest gets UNDEFINED.
    pub const TIDCP: u64 = 1 << 20;
    /// Trap ACTLR_EL1 (implementation-defined auxiliary control): read as zero,
    /// writes ignored.
    pub const TACR: u64 = 1 << 21;
    /// Trap data-cache maintenance by set/way: an "invalidate" by set/way would
    /// discard Aerie's own dirty lines, so Aerie performs clean+invalidate instead.
    pub const TSW: u64 = 1 << 22;
    /// EL1 is AArch64.
    pub const RW: u64 = 1 << 31;
    /// Trap the LORegion registers (FEAT_LOR, hidden from guests): UNDEFINED for the
    /// guest. RES0 without FEAT_LOR, so set only when the CPU has it.
    pub const TLOR: u64 = 1 << 35;
    /// Trap the RAS error record registers (FEAT_RAS, hidden from guests):
    /// UNDEFINED for the guest. RES0 without FEAT_RAS, so set only with it.
    pub const TERR: u64 = 1 << 36;
    /// Do not trap pointer-authentication key registers (FEAT_PAuth): the keys stay
    /// in the CPU with the rest of the vCPU's EL1 state.
    pub const APK: u64 = 1 << 40;
    /// Do not trap pointer-authentication instructions (FEAT_PAuth).
    pub const API: u64 = 1 << 41;
}

/// CNTHCTL_EL2 bits (non-VHE layout).
mod cnthctl {
    /// EL1 and EL0 may read the physical counter (CNTPCT_EL0) directly.
    pub const EL1PCTEN: u64 = 1 << 0;
    // EL1PCEN (bit 1) stays clear: the EL1 physical timer traps and is emulated.
    /// Generate an event stream at EL2, so that Aerie's idle loop (`WFE`) wakes up
    /// periodically without an interrupt controller driver.
    pub const EVNTEN: u64 = 1 << 2;
    /// Which counter bit drives the event stream (EVNTI, bits [7:4]).
    pub const EVNTI_SHIFT: u64 = 4;
}

/// MDCR_EL2 bits besides the PMU's (`aerie_hyp::pmu::guest_mdcr` decides those: the
/// guest owns the PMU untrapped where it has one, else every PMU register traps).
mod mdcr {
    /// Trap the statistical profiling (SPE) sampling controls; E2PB = 0b00 (bits
    /// \[13:12\], left zero) already traps its profiling buffer. RES0 without SPE.
    pub const TPMS: u64 = 1 << 14;
    /// Trap TRFCR_EL1, the trace filter control; E2TB = 0b00 (bits \[25:24\], left
    /// zero) already traps the trace buffer (TRBE). RES0 without FEAT_TRF.
    pub const TTRF: u64 = 1 << 19;
}

/// CPTR_EL2 (non-VHE): RES1 bits [13:12], [9] and [7:0] (or the SVE/SME trap bits
/// with the same positions: TSM, bit 12, traps SME); FP/SIMD (TFP, bit 10) stays
/// untrapped and runs natively for the guest. Aerie itself never uses it.
const CPTR_EL2_RES1: u64 = (0b11 << 12) | (1 << 9) | 0xff;
/// CPTR_EL2.TZ, bit 8: trap SVE (RES1 without SVE). Guests do not get SVE: Aerie
/// saves only the low 128 bits of the vector registers.
const CPTR_EL2_TZ: u64 = 1 << 8;
/// CPTR_EL2.TTA, bit 20: trap the trace unit's system registers (hidden from guests).
const CPTR_EL2_TTA: u64 = 1 << 20;
/// CPTR_EL2.TAM, bit 30: trap the activity monitors (FEAT_AMUv1, hidden from
/// guests). RES0 without the AMU, so set only with it.
const CPTR_EL2_TAM: u64 = 1 << 30;

/// ID_AA64ISAR1_EL1 fields whose non-zero value means pointer authentication
/// (APA [7:4], API [11:8], GPA [27:24], GPI [31:28]).
const ISAR1_PAUTH_MASK: u64 = (0xf << 4) | (0xf << 8) | (0xf << 24) | (0xf << 28);
/// ID_AA64ISAR2_EL1 fields for the QARMA3 pointer authentication (APA3 [15:12],
/// GPA3 [11:8]).
const ISAR2_PAUTH_MASK: u64 = (0xf << 12) | (0xf << 8);
/// ID_AA64PFR0_EL1.RAS, bits [31:28].
const PFR0_RAS: u64 = 0xf << 28;
/// ID_AA64PFR0_EL1.AMU, bits [47:44].
const PFR0_AMU: u64 = 0xf << 44;
/// ID_AA64MMFR1_EL1.LO, bits [19:16].
const MMFR1_LO: u64 = 0xf << 16;
/// ID_AA64DFR0_EL1.PMSVer, bits [35:32]: statistical profiling.
const DFR0_PMSVER: u64 = 0xf << 32;
/// ID_AA64DFR0_EL1.TraceFilt, bits [43:40]: FEAT_TRF.
const DFR0_TRACEFILT: u64 = 0xf << 40;

/// The counter bit that drives the EL2 event stream: bit 11 ticks every 2^12
/// counts, about 65 µs at 62.5 MHz.
const EVENT_STREAM_BIT: u64 = 11;

/// Reads an ID register by its encoded name.
macro_rules! read_id {
    ($register:literal) => {{
        let value: u64;
        // SAFETY: reading an ID register has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $register), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// HCR_EL2 for running a guest on this CPU.
pub fn guest_hcr() -> u64 {
    let mut value = hcr::VM
        | hcr::FMO
        | hcr::IMO
        | hcr::AMO
        | hcr::FB
        | hcr::BSU_INNER
        | hcr::TWI
        | hcr::TID3
        | hcr::TSC
        | hcr::TIDCP
        | hcr::TACR
        | hcr::TSW
        | hcr::RW;
    if has_pointer_authentication() {
        value |= hcr::APK | hcr::API;
    }
    if read_id!("ID_AA64PFR0_EL1") & PFR0_RAS != 0 {
        value |= hcr::TERR;
    }
    if read_id!("ID_AA64MMFR1_EL1") & MMFR1_LO != 0 {
        value |= hcr::TLOR;
    }
    value
}

/// Whether the CPU has pointer authentication (FEAT_PAuth): its key registers exist.
pub fn has_pointer_authentication() -> bool {
    read_id!("ID_AA64ISAR1_EL1") & ISAR1_PAUTH_MASK != 0
        || read_id!("S3_0_C0_C6_2") & ISAR2_PAUTH_MASK != 0
}

/// Everything a CPU needs before it enters a guest.
#[derive(Debug, Clone, Copy)]
pub struct GuestControl {
    /// HCR_EL2.
    pub hcr: u64,
    /// VTCR_EL2.
    pub vtcr: u64,
    /// VTTBR_EL2 (VMID and stage-2 root).
    pub vttbr: u64,
    /// CNTVOFF_EL2: subtracted from the counter for the guest's virtual count.
    pub cntvoff: u64,
    /// VMPIDR_EL2: the MPIDR the guest reads.
    pub vmpidr: u64,
    /// The guest owns this CPU's PMU (`aerie_hyp::pmu`); without, its registers trap.
    pub pmu: bool,
}

/// Programs this CPU's EL2 controls for a guest vCPU and flushes any stale stage-1
/// and stage-2 translations of its VMID.
///
/// # Safety
/// `control.vttbr` must point to the VM's complete stage-2 tables; from now on EL1
/// and EL0 on this CPU run the guest.
pub unsafe fn enter_guest_mode(control: &GuestControl) {
    let (pmu_version, counters) = match super::pmu::host_pmu() {
        Some((version, counters)) => (Some(version), counters),
        None => (None, 0),
    };
    let dfr0 = read_id!("ID_AA64DFR0_EL1");
    let mut mdcr = aerie_hyp::pmu::guest_mdcr(pmu_version, counters, control.pmu);
    if dfr0 & DFR0_PMSVER != 0 {
        mdcr |= mdcr::TPMS;
    }
    if dfr0 & DFR0_TRACEFILT != 0 {
        mdcr |= mdcr::TTRF;
    }
    let cnthctl = cnthctl::EL1PCTEN | cnthctl::EVNTEN | (EVENT_STREAM_BIT << cnthctl::EVNTI_SHIFT);
    let mut cptr = CPTR_EL2_RES1 | CPTR_EL2_TZ | CPTR_EL2_TTA;
    if read_id!("ID_AA64PFR0_EL1") & PFR0_AMU != 0 {
        cptr |= CPTR_EL2_TAM;
    }
    let midr: u64;
    // SAFETY: reading MIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, MIDR_EL1", out(reg) midr, options(nomem, nostack)) };
    // SAFETY: the caller guarantees the stage-2 tables are complete, so enabling
    // HCR_EL2.VM confines EL1/EL0 to guest memory. These registers only affect EL1
    // and EL0 (and traps to EL2); Aerie's own EL2 translation is unchanged. The
    // TLB flush removes translations a previous VM with this VMID may have left.
    unsafe {
        asm!(
            "msr VTCR_EL2, {vtcr}",
            "msr VTTBR_EL2, {vttbr}",
            "msr CNTVOFF_EL2, {cntvoff}",
            "msr VPIDR_EL2, {midr}",
            "msr VMPIDR_EL2, {vmpidr}",
            "msr CNTHCTL_EL2, {cnthctl}",
            "msr MDCR_EL2, {mdcr}",
            "msr CPTR_EL2, {cptr}",
            "msr HSTR_EL2, xzr",
            "msr HCR_EL2, {hcr}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            vtcr = in(reg) control.vtcr,
            vttbr = in(reg) control.vttbr,
            cntvoff = in(reg) control.cntvoff,
            midr = in(reg) midr,
            vmpidr = in(reg) control.vmpidr,
            cnthctl = in(reg) cnthctl,
            mdcr = in(reg) mdcr,
            cptr = in(reg) cptr,
            hcr = in(reg) control.hcr,
            options(nostack, preserves_flags),
        );
    }
}

/// Performs a guest's data-cache operation by set/way as clean+invalidate.
pub fn clean_invalidate_by_set_way(set_way: u64) {
    // SAFETY: clean+invalidate never loses data; the operand only selects a cache
    // line by level/set/way, and out-of-range values are architecturally ignored.
    unsafe { asm!("dc cisw, {}", in(reg) set_way, options(nostack, preserves_flags)) };
}

/// Writes CNTVOFF_EL2 again with the value it holds (`cntvoff`): architecturally
/// nothing changes, but an emulated timer (QEMU) re-evaluates whether the virtual
/// timer has fired (see `vm::interrupts::virtual_timer_deadline`).
pub fn reevaluate_virtual_timer(cntvoff: u64) {
    // SAFETY: rewriting the running guest's virtual counter offset with its current
    // value changes no state; it only affects EL1/EL0 time on this CPU.
    unsafe {
        asm!("msr CNTVOFF_EL2, {}", "isb", in(reg) cntvoff, options(nostack, preserves_flags))
    };
}
