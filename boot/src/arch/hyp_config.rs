//! The EL2 control registers that decide what a guest may do and what traps to
//! Aerie. Every bit Aerie sets is listed here with its reason.

use super::missing_fields;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    CNTHCTL_EL2, CNTVOFF_EL2, CPTR_EL2, HCR_EL2, ID_AA64DFR0_EL1, ID_AA64ISAR1_EL1,
    ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, MDCR_EL2, MIDR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use core::arch::asm;
use tock_registers::interfaces::{Readable, Writeable};

/// HCR_EL2 for running a guest on this CPU. Every bit Aerie sets, with its reason:
///
/// - `VM`: stage-2 translation on: the guest sees only what Aerie maps.
/// - `FMO`, `IMO`: physical FIQs and IRQs go to EL2 (and virtual ones can be
///   injected): host devices never interrupt the guest directly.
/// - `AMO`: physical SErrors go to EL2, so a guest-caused SError is reported by Aerie.
/// - `FB`: force broadcast: the guest's TLB and instruction-cache maintenance reaches
///   every CPU in the inner shareable domain, as it would on bare metal.
/// - `BSU`: barrier shareability upgraded to inner shareable.
/// - `TWI`: trap WFI: an idle vCPU comes to Aerie, which idles the CPU properly.
/// - `TID3`: trap ID group 3: the guest's reads of the feature ID registers come to
///   Aerie, which answers them from the guest's CPU model (`aerie_hyp::cpu_model`).
/// - `TSC`: trap SMC: a guest using the `smc` conduit reaches Aerie's PSCI, never
///   the firmware.
/// - `TIDCP`: trap IMPLEMENTATION DEFINED system registers: they can change how the
///   core behaves for everyone; the guest gets UNDEFINED.
/// - `TACR`: trap ACTLR_EL1 (implementation-defined auxiliary control): read as
///   zero, writes ignored.
/// - `TSW`: trap data-cache maintenance by set/way: an "invalidate" by set/way would
///   discard Aerie's own dirty lines, so Aerie performs clean+invalidate instead.
/// - `RW`: EL1 is AArch64.
/// - `APK`, `API` (with FEAT_PAuth): do not trap the pointer-authentication key
///   registers and instructions: the keys stay in the CPU with the rest of the
///   vCPU's EL1 state.
/// - `TERR` (with FEAT_RAS, RES0 without): trap the RAS error record registers
///   (hidden from guests): UNDEFINED for the guest.
/// - `TLOR` (with FEAT_LOR, RES0 without): trap the LORegion registers (hidden from
///   guests): UNDEFINED for the guest.
///
/// TID1 (REVIDR_EL1, AIDR_EL1) and TID2 (CTR_EL0, CLIDR_EL1, CCSIDR_EL1, CSSELR_EL1)
/// stay clear. Those registers name no architecture feature Aerie hides; the cache
/// geometry is the host's and the guest's set/way maintenance (trapped by TSW) works
/// on the host's caches. Trapping TID2 would also cost an exit for every CTR_EL0
/// read at EL0. A snapshot records CTR_EL0 with the CPU model instead, and a restore
/// compares it.
pub fn guest_hcr() -> u64 {
    let mut value = HCR_EL2::VM::Enable
        + HCR_EL2::FMO::EnableVirtualFIQ
        + HCR_EL2::IMO::EnableVirtualIRQ
        + HCR_EL2::AMO::SET
        + HCR_EL2::FB::SET
        + HCR_EL2::BSU::InnerShareable
        + HCR_EL2::TWI::SET
        + HCR_EL2::TID3::SET
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::TIDCP::SET
        + HCR_EL2::TACR::SET
        + HCR_EL2::TSW::SET
        + HCR_EL2::RW::EL1IsAarch64;
    if has_pointer_authentication() {
        value += HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2
            + HCR_EL2::API::DisableTrapPointerAuthInstToEl2;
    }
    if missing_fields::ID_AA64PFR0_EL1::RAS.read(ID_AA64PFR0_EL1.get()) != 0 {
        value += HCR_EL2::TERR::SET;
    }
    if ID_AA64MMFR1_EL1.read(ID_AA64MMFR1_EL1::LO) != 0 {
        value += HCR_EL2::TLOR::SET;
    }
    value.value
}

/// Whether the CPU has pointer authentication (FEAT_PAuth): its key registers exist.
pub fn has_pointer_authentication() -> bool {
    let isar1 = ID_AA64ISAR1_EL1.extract();
    let isar2 = super::cpu::read_id_register(6, 2);
    [
        ID_AA64ISAR1_EL1::APA,
        ID_AA64ISAR1_EL1::API,
        ID_AA64ISAR1_EL1::GPA,
        ID_AA64ISAR1_EL1::GPI,
    ]
    .into_iter()
    .any(|field| isar1.read(field) != 0)
        || missing_fields::ID_AA64ISAR2_EL1::APA3.read(isar2) != 0
        || missing_fields::ID_AA64ISAR2_EL1::GPA3.read(isar2) != 0
}

/// CPTR_EL2 (non-VHE): RES1 bits [13:12], [9] and [7:0] (or the SVE/SME trap bits
/// with the same positions: TSM, bit 12, traps SME); FP/SIMD (TFP, bit 10) stays
/// untrapped and runs natively for the guest. Aerie itself never uses it.
const CPTR_EL2_RES1: u64 = (0b11 << 12) | (1 << 9) | 0xff;

/// The counter bit that drives the EL2 event stream: bit 11 ticks every 2^12
/// counts, about 65 µs at 62.5 MHz.
const EVENT_STREAM_BIT: u64 = 11;

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
    // MDCR_EL2 besides the PMU's bits (`aerie_hyp::pmu::guest_mdcr` decides those:
    // the guest owns the PMU untrapped where it has one, else every PMU register
    // traps). TPMS traps the statistical profiling (SPE) sampling controls, and
    // E2PB = 0b00 (left zero) already traps its profiling buffer; TTRF traps
    // TRFCR_EL1, the trace filter control, and E2TB = 0b00 (left zero) already traps
    // the trace buffer (TRBE). Both are RES0 without their feature.
    let mut mdcr = aerie_hyp::pmu::guest_mdcr(pmu_version, counters, control.pmu);
    if ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::PMSVer) != 0 {
        mdcr |= MDCR_EL2::TPMS::SET.value;
    }
    if ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::TraceFilt) != 0 {
        mdcr |= MDCR_EL2::TTRF::SET.value;
    }
    // EL1 and EL0 may read the physical counter (CNTPCT_EL0) directly; EL1PCEN
    // stays clear, so the EL1 physical timer traps and is emulated. The event stream
    // at EL2 wakes Aerie's idle loop (`WFE`) periodically without an interrupt
    // controller driver.
    let cnthctl = CNTHCTL_EL2::EL1PCTEN::SET.value
        | (missing_fields::CNTHCTL_EL2::EVNTEN::SET
            + missing_fields::CNTHCTL_EL2::EVNTI.val(EVENT_STREAM_BIT))
        .value;
    // Traps SVE (TZ: guests do not get SVE, Aerie saves only the low 128 bits of
    // the vector registers), the trace unit's registers (TTA) and, where they exist
    // (RES0 without FEAT_AMUv1), the activity monitors (TAM): all hidden from guests.
    let mut cptr = CPTR_EL2_RES1
        | (missing_fields::CPTR_EL2::TZ::SET + missing_fields::CPTR_EL2::TTA::SET).value;
    if ID_AA64PFR0_EL1.read(ID_AA64PFR0_EL1::AMU) != 0 {
        cptr |= CPTR_EL2::TAM::SET.value;
    }
    // The caller guarantees the stage-2 tables are complete, so enabling HCR_EL2.VM
    // (last) confines EL1/EL0 to guest memory. These registers only affect EL1 and
    // EL0 (and traps to EL2); Aerie's own EL2 translation is unchanged.
    VTCR_EL2.set(control.vtcr);
    VTTBR_EL2.set(control.vttbr);
    CNTVOFF_EL2.set(control.cntvoff);
    // aarch64-cpu declares no VPIDR_EL2 or HSTR_EL2.
    // SAFETY: VPIDR_EL2 is the MIDR the guest reads, HSTR_EL2 = 0 traps no AArch32
    // coprocessor register: both only concern EL1/EL0, which will run the guest.
    unsafe {
        asm!("msr VPIDR_EL2, {}", "msr HSTR_EL2, xzr",
            in(reg) MIDR_EL1.get(), options(nomem, nostack, preserves_flags))
    };
    VMPIDR_EL2.set(control.vmpidr);
    CNTHCTL_EL2.set(cnthctl);
    MDCR_EL2.set(mdcr);
    CPTR_EL2.set(cptr);
    HCR_EL2.set(control.hcr);
    barrier::isb(barrier::SY);
    // aarch64-cpu has no TLB maintenance instructions.
    // SAFETY: invalidating this VMID's stage-1 and stage-2 TLB entries removes
    // translations a previous VM with this VMID may have left; it changes no memory.
    unsafe { asm!("tlbi vmalls12e1", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::NSH);
    barrier::isb(barrier::SY);
}

/// Performs a guest's data-cache operation by set/way as clean+invalidate.
pub fn clean_invalidate_by_set_way(set_way: u64) {
    // aarch64-cpu has no cache maintenance instructions.
    // SAFETY: clean+invalidate never loses data; the operand only selects a cache
    // line by level/set/way, and out-of-range values are architecturally ignored.
    unsafe { asm!("dc cisw, {}", in(reg) set_way, options(nostack, preserves_flags)) };
}

/// Writes CNTVOFF_EL2 again with the value it holds (`cntvoff`): architecturally
/// nothing changes, but an emulated timer (QEMU) re-evaluates whether the virtual
/// timer has fired (see `vm::interrupts::virtual_timer_deadline`).
pub fn reevaluate_virtual_timer(cntvoff: u64) {
    CNTVOFF_EL2.set(cntvoff);
    barrier::isb(barrier::SY);
}
