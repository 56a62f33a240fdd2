//! A vCPU's architectural state as plain data.
//!
//! `boot/` moves these values between the structures and the CPU (general registers,
//! PC and PSTATE on every exit; EL1 system registers, FP/SIMD and timers when a vCPU
//! starts or stops on a CPU); snapshots will save and restore the same structures.
//! Nothing here touches hardware.
//!
//! Register layouts: Arm Architecture Reference Manual (DDI 0487), registers
//! SPSR_EL2, SCTLR_EL1, CPACR_EL1, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0 and
//! MPIDR_EL1. Power-on state: PSCI (DEN 0022), the `CPU_ON` function (the entry state
//! of a CPU it starts) and the Linux arm64 boot protocol
//! (`Documentation/arch/arm64/booting.rst`).

use crate::mmio::GuestRegisters;
use core::mem::{offset_of, size_of};

/// The general registers, PC and PSTATE of a vCPU: what moves on every exit.
///
/// `boot/` assembly reads and writes this structure by offset: `x[n]` at `8 * n`,
/// [`VcpuRegisters::pc`] at [`VcpuRegisters::PC_OFFSET`] (248) and
/// [`VcpuRegisters::pstate`] at [`VcpuRegisters::PSTATE_OFFSET`] (256).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VcpuRegisters {
    /// x0 to x30.
    pub x: [u64; 31],
    /// The address the vCPU resumes at (ELR_EL2 on entry and exit).
    pub pc: u64,
    /// The saved program status, in SPSR_EL2 format (SPSR_EL2 on entry and exit).
    pub pstate: u64,
}

impl VcpuRegisters {
    /// Offset of `x[0]`.
    pub const X_OFFSET: usize = 0;
    /// Offset of [`VcpuRegisters::pc`].
    pub const PC_OFFSET: usize = 248;
    /// Offset of [`VcpuRegisters::pstate`].
    pub const PSTATE_OFFSET: usize = 256;
    /// Size of the structure.
    pub const SIZE: usize = 264;
}

/// The general registers as instructions name them (used by the MMIO emulation and
/// the system-register traps): register 31 in a load/store data or MRS/MSR
/// operand is the zero register (XZR), so it reads 0 and writes to it are
/// discarded, as are accesses to numbers above 31.
impl GuestRegisters for VcpuRegisters {
    fn get(&self, register: u8) -> u64 {
        self.x.get(usize::from(register)).copied().unwrap_or(0)
    }

    fn set(&mut self, register: u8, value: u64) {
        if let Some(slot) = self.x.get_mut(usize::from(register)) {
            *slot = value;
        }
    }
}

const _: () = assert!(offset_of!(VcpuRegisters, x) == VcpuRegisters::X_OFFSET);
const _: () = assert!(offset_of!(VcpuRegisters, pc) == VcpuRegisters::PC_OFFSET);
const _: () = assert!(offset_of!(VcpuRegisters, pstate) == VcpuRegisters::PSTATE_OFFSET);
const _: () = assert!(size_of::<VcpuRegisters>() == VcpuRegisters::SIZE);

/// The EL1 (and EL0) system registers a guest owns, including its virtual timer.
/// Field names are the registers' without the `_EL1` suffix.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct El1SystemRegisters {
    /// SCTLR_EL1.
    pub sctlr: u64,
    /// ACTLR_EL1.
    pub actlr: u64,
    /// CPACR_EL1.
    pub cpacr: u64,
    /// TTBR0_EL1.
    pub ttbr0: u64,
    /// TTBR1_EL1.
    pub ttbr1: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// MAIR_EL1.
    pub mair: u64,
    /// AMAIR_EL1.
    pub amair: u64,
    /// VBAR_EL1.
    pub vbar: u64,
    /// CONTEXTIDR_EL1.
    pub contextidr: u64,
    /// TPIDR_EL0.
    pub tpidr_el0: u64,
    /// TPIDRRO_EL0.
    pub tpidrro_el0: u64,
    /// TPIDR_EL1.
    pub tpidr_el1: u64,
    /// SP_EL0.
    pub sp_el0: u64,
    /// SP_EL1.
    pub sp_el1: u64,
    /// ELR_EL1.
    pub elr_el1: u64,
    /// SPSR_EL1.
    pub spsr_el1: u64,
    /// ESR_EL1.
    pub esr: u64,
    /// FAR_EL1.
    pub far: u64,
    /// AFSR0_EL1.
    pub afsr0: u64,
    /// AFSR1_EL1.
    pub afsr1: u64,
    /// PAR_EL1.
    pub par: u64,
    /// CNTKCTL_EL1.
    pub cntkctl: u64,
    /// CSSELR_EL1.
    pub csselr: u64,
    /// MDSCR_EL1.
    pub mdscr: u64,
    /// CNTV_CTL_EL0: the guest's virtual timer control.
    pub cntv_ctl: u64,
    /// CNTV_CVAL_EL0: the guest's virtual timer compare value.
    pub cntv_cval: u64,
    /// The pointer authentication keys, on CPUs with FEAT_PAuth (else 0): APIAKey,
    /// APIBKey, APDAKey, APDBKey, APGAKey, each as its `Lo` then `Hi` register.
    pub pointer_auth_keys: [u64; 10],
}

/// The SCTLR_EL1 bits that are RES1 in Armv8.0: 29 and 28 (later LSMAOE and
/// nTLSMD), 23 (later SPAN), 22 (later EIS), 20 (later TSCXT) and 11 (later EOS).
/// Each later feature gave the bit a meaning whose value 1 keeps the Armv8.0
/// behaviour, so setting them is right on every CPU.
const SCTLR_EL1_RES1_V8_0: u64 =
    (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);

/// SCTLR_EL1 at power-on: the RES1 bits and nothing else, so the MMU (M, bit 0), the
/// alignment check (A, bit 1), the data cache (C, bit 2) and the instruction cache
/// (I, bit 12) are off, and data accesses are little-endian (EE, bit 25, and E0E,
/// bit 24, are 0). That is the state the Linux boot protocol asks for ("MMU off,
/// D-cache off"; the I-cache may be either) and the reset-safe value a CPU_ON'd CPU
/// starts with; the guest then programs SCTLR_EL1 itself (Linux writes
/// `INIT_SCTLR_EL1_MMU_OFF` first thing). The AArch32-EL0 controls ITD (bit 7) and
/// SED (bit 8) are left 0, which enables IT and SETEND as Armv8.0 did.
pub const SCTLR_EL1_POWER_ON: u64 = SCTLR_EL1_RES1_V8_0;

/// SPSR `M[4:0]` for EL1 using SP_EL1 (EL1h).
const PSTATE_MODE_EL1H: u64 = 0b0101;
/// SPSR F (FIQ mask), bit 6.
const PSTATE_F: u64 = 1 << 6;
/// SPSR I (IRQ mask), bit 7.
const PSTATE_I: u64 = 1 << 7;
/// SPSR A (SError mask), bit 8.
const PSTATE_A: u64 = 1 << 8;
/// SPSR D (debug mask), bit 9.
const PSTATE_D: u64 = 1 << 9;

/// PSTATE at power-on: EL1h, AArch64, with debug, SError, IRQ and FIQ masked (PSCI
/// CPU_ON and the Linux boot protocol both require the DAIF masks set).
pub const PSTATE_POWER_ON: u64 = PSTATE_MODE_EL1H | PSTATE_F | PSTATE_I | PSTATE_A | PSTATE_D;

/// CNTP_CTL_EL0 / CNTV_CTL_EL0 ENABLE, bit 0.
pub const TIMER_CTL_ENABLE: u64 = 1 << 0;
/// CNTP_CTL_EL0 / CNTV_CTL_EL0 IMASK, bit 1: the interrupt is masked.
pub const TIMER_CTL_IMASK: u64 = 1 << 1;
/// CNTP_CTL_EL0 / CNTV_CTL_EL0 ISTATUS, bit 2 (read-only): the condition is met.
pub const TIMER_CTL_ISTATUS: u64 = 1 << 2;

/// The EL1 physical timer as Aerie emulates it (CNTHCTL_EL2 traps the guest's
/// CNTP_* accesses). `counter` in the helpers is the count the guest's physical
/// counter shows at the time of the access.
///
/// Arm ARM, "The AArch64 view of the Generic Timer" registers: the timer condition
/// is met when `counter - CVAL >= 0` (as an unsigned 64-bit comparison,
/// `counter >= CVAL`); TVAL is the 32-bit signed view `CVAL - counter`, and writing
/// TVAL sets `CVAL = counter + SignExtend(TVAL)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmulatedTimer {
    /// CNTP_CTL_EL0: ENABLE and IMASK as the guest wrote them (ISTATUS is computed).
    pub ctl: u64,
    /// CNTP_CVAL_EL0.
    pub cval: u64,
}

impl EmulatedTimer {
    /// Whether the timer is enabled and its condition is met at `counter`.
    pub fn condition_met(&self, counter: u64) -> bool {
        self.ctl & TIMER_CTL_ENABLE != 0 && counter >= self.cval
    }

    /// A read of CNTP_CTL_EL0: ENABLE and IMASK as written, ISTATUS set when the
    /// timer is enabled and `counter >= cval` (ISTATUS reads 0 while disabled).
    pub fn read_ctl(&self, counter: u64) -> u64 {
        let status = if self.condition_met(counter) {
            TIMER_CTL_ISTATUS
        } else {
            0
        };
        (self.ctl & (TIMER_CTL_ENABLE | TIMER_CTL_IMASK)) | status
    }

    /// A write of CNTP_CTL_EL0: keeps ENABLE and IMASK; ISTATUS and the RES0 bits
    /// are ignored.
    pub fn write_ctl(&mut self, value: u64) {
        self.ctl = value & (TIMER_CTL_ENABLE | TIMER_CTL_IMASK);
    }

    /// A read of CNTP_TVAL_EL0: `(cval - counter)[31:0]`, bits \[63:32\] zero.
    pub fn read_tval(&self, counter: u64) -> u64 {
        u64::from(self.cval.wrapping_sub(counter) as u32)
    }

    /// A write of CNTP_TVAL_EL0: `cval = counter + SignExtend(value[31:0])`.
    pub fn write_tval(&mut self, counter: u64, value: u64) {
        let signed = i64::from(value as u32 as i32);
        self.cval = counter.wrapping_add(signed as u64);
    }

    /// Whether the timer's interrupt is asserted at `counter`: enabled, condition
    /// met, not masked.
    pub fn interrupt_pending(&self, counter: u64) -> bool {
        self.condition_met(counter) && self.ctl & TIMER_CTL_IMASK == 0
    }

    /// The counter value at which the interrupt will assert, if the timer is
    /// enabled and unmasked (it may already be in the past).
    pub fn deadline(&self) -> Option<u64> {
        (self.ctl & (TIMER_CTL_ENABLE | TIMER_CTL_IMASK) == TIMER_CTL_ENABLE).then_some(self.cval)
    }
}

/// The FP/SIMD registers: V0 to V31, FPSR and FPCR. `boot/` assembly reads and writes
/// `v` with `LDP`/`STP` of Q registers (`v[n]` at `16 * n`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FpRegisters {
    /// V0 to V31.
    pub v: [u128; 32],
    /// FPSR.
    pub fpsr: u64,
    /// FPCR.
    pub fpcr: u64,
}

impl FpRegisters {
    /// Offset of [`FpRegisters::fpsr`].
    pub const FPSR_OFFSET: usize = 512;
    /// Offset of [`FpRegisters::fpcr`].
    pub const FPCR_OFFSET: usize = 520;
}

const _: () = assert!(offset_of!(FpRegisters, v) == 0);
const _: () = assert!(offset_of!(FpRegisters, fpsr) == FpRegisters::FPSR_OFFSET);
const _: () = assert!(offset_of!(FpRegisters, fpcr) == FpRegisters::FPCR_OFFSET);

/// Everything that makes up one vCPU's architectural state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VcpuState {
    /// General registers, PC and PSTATE.
    pub registers: VcpuRegisters,
    /// EL1 system registers and the virtual timer.
    pub el1: El1SystemRegisters,
    /// FP/SIMD registers.
    pub fp: FpRegisters,
    /// The emulated EL1 physical timer.
    pub physical_timer: EmulatedTimer,
    /// The vCPU's GIC CPU interface state kept in the host's virtual interface.
    pub gic: GicCpuInterface,
    /// The vCPU's PMU (all zero, a reset PMU, for a guest without one).
    pub pmu: PmuState,
}

/// A vCPU's PMUv3 registers (see [`crate::pmu`]). The guest owns the CPU's PMU while
/// it runs, so these are only read and written when the vCPU starts, stops or is
/// saved in a snapshot. All zero is a reset PMU: counters disabled and zero, no
/// overflow, no interrupt enabled, EL0 access off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PmuState {
    /// PMCR_EL0 (E, D, X, DP, LC, LP; N is the CPU's and read-only).
    pub pmcr: u64,
    /// PMCNTENSET_EL0: enabled counters (bit 31 the cycle counter).
    pub counter_enable: u64,
    /// PMINTENSET_EL1: counters whose overflow interrupts.
    pub interrupt_enable: u64,
    /// PMOVSSET_EL0: counters that overflowed.
    pub overflow: u64,
    /// PMUSERENR_EL0: what EL0 may access.
    pub user_enable: u64,
    /// PMSELR_EL0: the counter PMXEVCNTR/PMXEVTYPER select.
    pub select: u64,
    /// PMCCNTR_EL0: the cycle counter.
    pub cycle_count: u64,
    /// PMCCFILTR_EL0: the cycle counter's filter.
    pub cycle_filter: u64,
    /// PMEVCNTR<n>_EL0 for the CPU's event counters (the others stay zero).
    pub event_count: [u64; crate::pmu::MAX_EVENT_COUNTERS],
    /// PMEVTYPER<n>_EL0: each event counter's event and filter.
    pub event_type: [u64; crate::pmu::MAX_EVENT_COUNTERS],
}

impl PmuState {
    /// How many event counters the CPU it was saved on had (PMCR_EL0.N); 0 for a
    /// reset PMU, which was never read from a CPU.
    pub fn counters(&self) -> u8 {
        crate::pmu::counters(self.pmcr)
    }
}

/// The part of a vCPU's GIC CPU interface that lives in the host's virtual interface
/// registers rather than in the vGIC model: the guest's priority mask, binary point,
/// group enables and EOI mode (GICv3 `ICH_VMCR_EL2`, GICv2 `GICH_VMCR`), the
/// active-priority bits of interrupts it has acknowledged but not yet ended (GICv3
/// `ICH_AP0R<n>_EL2` then `ICH_AP1R<n>_EL2`; GICv2 `GICH_APR` in the first word), and
/// on GICv3 the guest's `ICC_SRE_EL1`.
/// All zero at power-on (the reset value of those registers), but for
/// [`GicCpuInterface::sre`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GicCpuInterface {
    /// The virtual machine control register.
    pub vmcr: u64,
    /// Active priorities: group 0 registers 0..4, then group 1 registers 0..4.
    pub active_priorities: [u32; 8],
    /// GICv3: ICC_SRE_EL1 as the guest sees it, its SRE, DFB and DIB bits
    /// ([`ICC_SRE_EL1_BITS`]); [`ICC_SRE_EL1_POWER_ON`] at power-on. The guest reads
    /// and writes the CPU's own register (ICC_SRE_EL2.Enable lets it), so Aerie saves
    /// and restores it with the vCPU. Not used on GICv2 (saved as 0).
    pub sre: u64,
}

/// ICC_SRE_EL1.SRE, bit 0: the system-register interface is on.
const ICC_SRE_EL1_SRE: u64 = 1 << 0;
/// ICC_SRE_EL1.DFB, bit 1: FIQ bypass disabled.
const ICC_SRE_EL1_DFB: u64 = 1 << 1;
/// ICC_SRE_EL1.DIB, bit 2: IRQ bypass disabled.
const ICC_SRE_EL1_DIB: u64 = 1 << 2;
/// The bits of ICC_SRE_EL1 (the others are RES0).
pub const ICC_SRE_EL1_BITS: u64 = ICC_SRE_EL1_SRE | ICC_SRE_EL1_DFB | ICC_SRE_EL1_DIB;
/// A GICv3 vCPU's ICC_SRE_EL1 at power-on: the system-register interface on and both
/// bypasses off, the only configuration of a virtual GICv3 that has no memory-mapped
/// CPU interface (it is also what KVM gives GICv3 guests).
pub const ICC_SRE_EL1_POWER_ON: u64 = ICC_SRE_EL1_BITS;

impl VcpuState {
    /// The state of a vCPU that starts at `entry` with `context_id` in x0: the
    /// boot vCPU (x0 = the device tree) and every vCPU PSCI CPU_ON starts.
    ///
    /// PSCI CPU_ON (DEN 0022, `CPU_ON`): the CPU starts at the entry point in the
    /// highest non-secure EL below the caller's hypervisor (EL1, AArch64), with the
    /// MMU and caches off, all exceptions masked (PSTATE.DAIF), and x0 = context ID;
    /// other registers have no defined value, so they are 0 here (which is also
    /// what the Linux boot protocol asks of x1 to x3). SCTLR_EL1 is
    /// [`SCTLR_EL1_POWER_ON`]. CPACR_EL1 is 0, which traps FP/SIMD at EL1 until the
    /// guest enables it: Linux sets CPACR_EL1.FPEN in `__cpu_setup` before it uses
    /// FP/SIMD, and the boot protocol only requires that EL2 does not trap it
    /// (CPTR_EL2.TFP = 0), which is `boot/`'s business. All other registers, the
    /// timers (disabled) and the FP/SIMD registers are 0.
    pub fn at_power_on(entry: u64, context_id: u64) -> Self {
        let mut state = Self::default();
        state.registers.pc = entry;
        state.registers.x[0] = context_id;
        state.registers.pstate = PSTATE_POWER_ON;
        state.el1.sctlr = SCTLR_EL1_POWER_ON;
        state.gic.sre = ICC_SRE_EL1_POWER_ON;
        state
    }
}

/// vCPUs per affinity-1 group: Aff0 takes 0 to 15.
const VCPUS_PER_CLUSTER: usize = 16;
/// Aff1 values: 0 to 255.
const CLUSTERS: usize = 256;
/// The most vCPUs [`guest_mpidr`] can number (Aff0 0..=15 times Aff1 0..=255).
pub const MAX_VCPUS: usize = VCPUS_PER_CLUSTER * CLUSTERS;
/// MPIDR Aff0, bits \[7:0\].
const AFF0_SHIFT: u32 = 0;
/// MPIDR Aff1, bits \[15:8\].
const AFF1_SHIFT: u32 = 8;
/// The affinity fields of an MPIDR: Aff3 \[39:32\], Aff2 \[23:16\], Aff1 \[15:8\] and
/// Aff0 \[7:0\].
const AFFINITY_MASK: u64 = 0xff_00ff_ffff;
/// Width mask of one affinity field.
const AFFINITY_FIELD_MASK: u64 = 0xff;
/// MPIDR_EL1 bit 31 is RES1.
pub const MPIDR_RES1: u64 = 1 << 31;

/// The affinity of vCPU `index` (`index < MAX_VCPUS`): Aff0 = `index % 16`, Aff1 =
/// `index / 16`. This is the device tree `reg` of the CPU node and the PSCI target
/// value; the guest's MPIDR_EL1 (VMPIDR_EL2) is [`guest_vmpidr`].
///
/// Sixteen per Aff1 group because GICv3 SGIs name their targets as a 16-bit list of
/// Aff0 values 0 to 15 within one Aff3.Aff2.Aff1 group (ICC_SGI1R_EL1.TargetList,
/// without the range selector of GICD_TYPER.RSS); with more than 16 vCPUs per group
/// some could not be sent SGIs.
pub const fn guest_mpidr(index: usize) -> u64 {
    (((index % VCPUS_PER_CLUSTER) as u64) << AFF0_SHIFT)
        | (((index / VCPUS_PER_CLUSTER) as u64) << AFF1_SHIFT)
}

/// The VMPIDR_EL2 value for vCPU `index`: [`guest_mpidr`] with the RES1 bit 31 (U,
/// bit 30, is 0: part of a multiprocessor system; MT, bit 24, is 0).
pub const fn guest_vmpidr(index: usize) -> u64 {
    MPIDR_RES1 | guest_mpidr(index)
}

/// The vCPU an MPIDR value names among `vcpus` vCPUs, or `None`.
///
/// Only the affinity fields count (DEN 0022 says the other bits of a PSCI target
/// must be zero; like KVM, Aerie ignores them, so a value read from MPIDR_EL1 with
/// its RES1 bit 31 still names the CPU). Aff3 and Aff2 must be 0 and Aff0 below 16.
pub const fn vcpu_index(mpidr: u64, vcpus: usize) -> Option<usize> {
    let affinity = mpidr & AFFINITY_MASK;
    let aff0 = (affinity >> AFF0_SHIFT) & AFFINITY_FIELD_MASK;
    let aff1 = (affinity >> AFF1_SHIFT) & AFFINITY_FIELD_MASK;
    let upper =
        affinity & !((AFFINITY_FIELD_MASK << AFF0_SHIFT) | (AFFINITY_FIELD_MASK << AFF1_SHIFT));
    if upper != 0 || aff0 >= VCPUS_PER_CLUSTER as u64 {
        return None;
    }
    let index = aff1 as usize * VCPUS_PER_CLUSTER + aff0 as usize;
    if index < vcpus && index < MAX_VCPUS {
        Some(index)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_layout_matches_the_assembly() {
        assert_eq!(offset_of!(VcpuRegisters, x) + 30 * 8, 240);
        assert_eq!(offset_of!(VcpuRegisters, pc), 248);
        assert_eq!(offset_of!(VcpuRegisters, pstate), 256);
        assert_eq!(size_of::<VcpuRegisters>(), 264);
        assert_eq!(size_of::<FpRegisters>(), 16 * 32 + 16);
        assert_eq!(offset_of!(FpRegisters, fpcr), 520);
    }

    #[test]
    fn register_31_is_the_zero_register() {
        let mut registers = VcpuRegisters::default();
        registers.set(5, 0x1234);
        assert_eq!(registers.get(5), 0x1234);
        registers.set(30, 7);
        assert_eq!(registers.get(30), 7);
        registers.set(31, 99);
        assert_eq!(registers.get(31), 0);
        registers.set(200, 99);
        assert_eq!(registers.get(200), 0);
        assert_eq!(registers.x.iter().filter(|&&r| r != 0).count(), 2);
    }

    #[test]
    fn power_on_state() {
        let state = VcpuState::at_power_on(0x4020_0000, 0x4800_0000);
        assert_eq!(state.registers.pc, 0x4020_0000);
        assert_eq!(state.registers.x[0], 0x4800_0000);
        assert!(state.registers.x[1..].iter().all(|&r| r == 0));
        // SPSR: M[4:0] = 0b00101 (EL1h), D A I F = bits 9..6 all set.
        assert_eq!(state.registers.pstate, 0x3c5);
        // SCTLR_EL1: bits 29, 28, 23, 22, 20, 11; M, A, C, I clear.
        assert_eq!(state.el1.sctlr, 0x30d0_0800);
        assert_eq!(state.el1.sctlr & (1 << 0 | 1 << 1 | 1 << 2 | 1 << 12), 0);
        assert_eq!(state.el1.cpacr, 0);
        let expected_el1 = El1SystemRegisters {
            sctlr: 0x30d0_0800,
            ..El1SystemRegisters::default()
        };
        assert_eq!(state.el1, expected_el1);
        // A reset PMU: nothing enabled, no counters read from a CPU.
        assert_eq!(state.pmu, PmuState::default());
        assert_eq!(state.pmu.counters(), 0);
        let saved = PmuState {
            pmcr: 0x4102_3001,
            ..PmuState::default()
        };
        assert_eq!(saved.counters(), 6, "a Cortex-A72's PMCR_EL0.N");
        assert_eq!(state.fp, FpRegisters::default());
        assert_eq!(state.physical_timer, EmulatedTimer::default());
        // GICv3: system registers on, FIQ and IRQ bypass off; nothing else.
        let expected_gic = GicCpuInterface {
            sre: 0b111,
            ..GicCpuInterface::default()
        };
        assert_eq!(state.gic, expected_gic);
    }

    #[test]
    fn timer_status_follows_the_counter() {
        let mut timer = EmulatedTimer { ctl: 0, cval: 1000 };
        // Disabled: ISTATUS reads 0 even past the compare value.
        assert_eq!(timer.read_ctl(2000), 0);
        timer.write_ctl(TIMER_CTL_ENABLE | TIMER_CTL_ISTATUS | 0xf0);
        assert_eq!(timer.ctl, TIMER_CTL_ENABLE);
        assert_eq!(timer.read_ctl(999), 0b001);
        assert_eq!(timer.read_ctl(1000), 0b101);
        assert_eq!(timer.read_ctl(u64::MAX), 0b101);
        assert!(timer.interrupt_pending(1000));
        assert_eq!(timer.deadline(), Some(1000));
        timer.write_ctl(TIMER_CTL_ENABLE | TIMER_CTL_IMASK);
        assert_eq!(timer.read_ctl(1000), 0b111);
        assert!(!timer.interrupt_pending(1000));
        assert_eq!(timer.deadline(), None);
        timer.write_ctl(0);
        assert!(!timer.condition_met(5000));
        assert_eq!(timer.deadline(), None);
    }

    #[test]
    fn tval_is_a_signed_32_bit_view_of_cval() {
        let mut timer = EmulatedTimer::default();
        timer.write_tval(1_000, 500);
        assert_eq!(timer.cval, 1_500);
        assert_eq!(timer.read_tval(1_000), 500);
        assert_eq!(timer.read_tval(1_499), 1);
        // Past the deadline TVAL counts down through negative values: -1 as 32 bits.
        assert_eq!(timer.read_tval(1_501), 0xffff_ffff);
        // A negative TVAL (bit 31 set) moves CVAL back; the upper half is ignored.
        timer.write_tval(1_000, 0xdead_beef_ffff_ff9c);
        assert_eq!(timer.cval, 900);
        // Wrapping at the top of the counter.
        timer.write_tval(u64::MAX - 1, 4);
        assert_eq!(timer.cval, 2);
        assert_eq!(timer.read_tval(u64::MAX - 1), 4);
        // Far deadlines show only their low 32 bits.
        timer.cval = 0x1_0000_0010;
        assert_eq!(timer.read_tval(0), 0x10);
    }

    #[test]
    fn mpidr_numbering() {
        assert_eq!(guest_mpidr(0), 0);
        assert_eq!(guest_mpidr(15), 0x0f);
        assert_eq!(guest_mpidr(16), 0x100);
        assert_eq!(guest_mpidr(37), 0x205);
        assert_eq!(guest_mpidr(MAX_VCPUS - 1), 0xff0f);
        assert_eq!(guest_vmpidr(17), 0x8000_0101);
        for index in [0, 1, 15, 16, 100, MAX_VCPUS - 1] {
            assert_eq!(vcpu_index(guest_mpidr(index), MAX_VCPUS), Some(index));
            assert_eq!(vcpu_index(guest_vmpidr(index), MAX_VCPUS), Some(index));
        }
    }

    #[test]
    fn mpidr_lookup_refuses_what_names_no_vcpu() {
        assert_eq!(vcpu_index(0, 1), Some(0));
        assert_eq!(vcpu_index(1, 1), None);
        assert_eq!(vcpu_index(0x100, 16), None);
        assert_eq!(vcpu_index(0x100, 17), Some(16));
        // Aff0 16 and above is never used.
        assert_eq!(vcpu_index(0x10, MAX_VCPUS), None);
        // Aff2 and Aff3 must be 0.
        assert_eq!(vcpu_index(0x1_0000, MAX_VCPUS), None);
        assert_eq!(vcpu_index(0x1_0000_0000, MAX_VCPUS), None);
        // Non-affinity bits (RES1 bit 31, U, MT, bits above Aff3) are ignored.
        assert_eq!(vcpu_index(0xffff_ff00_c100_0001, 2), Some(1));
        assert_eq!(vcpu_index(u64::MAX, MAX_VCPUS), None);
        assert_eq!(vcpu_index(0, 0), None);
    }
}
