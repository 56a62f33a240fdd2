//! Injecting synchronous exceptions into a guest at EL1, as pure computations.
//!
//! When Aerie decides that a guest instruction must fail (an access where the guest
//! has neither RAM nor a device, a system register Aerie does not emulate), it makes
//! the guest take the exception the hardware would have raised: an external abort
//! or UNDEFINED. That means doing by hand what the CPU does on taking an exception
//! to EL1 (Arm ARM DDI 0487, pseudocode `AArch64.TakeException`):
//!
//! - `ELR_EL1` = the preferred return address: the instruction that failed;
//! - `SPSR_EL1` = the PSTATE the guest had (`SPSR_EL2` at the exit);
//! - `ESR_EL1` (and `FAR_EL1` for aborts) describe the exception;
//! - PSTATE becomes EL1h with every interrupt masked (see [`entry_pstate`]);
//! - the PC becomes `VBAR_EL1[63:11]` plus the vector offset (see [`vector_offset`]).
//!
//! The functions here compute all of that into an [`Injection`]; the caller writes
//! the registers and resumes the vCPU at [`Injection::pc`] with
//! [`Injection::pstate`] (through `ELR_EL2` and `SPSR_EL2`).
//!
//! Aerie does not expose FEAT_MTE or FEAT_NMI to guests, so the PSTATE bits those
//! add on exception entry (`TCO`, `ALLINT`) are left clear.

use crate::esr::ExceptionClass;

/// The guest's state at the exit that led to the injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestState {
    /// Address of the instruction that takes the exception (`ELR_EL2` at the exit
    /// for a trapped or aborted instruction).
    pub pc: u64,
    /// The guest's PSTATE (`SPSR_EL2` at the exit).
    pub pstate: u64,
    /// The guest's `VBAR_EL1`.
    pub vbar_el1: u64,
    /// The guest's `SCTLR_EL1`.
    pub sctlr_el1: u64,
}

/// The register values that deliver an exception to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Injection {
    /// The new `ELR_EL1`: where the guest's handler returns to.
    pub elr_el1: u64,
    /// The new `SPSR_EL1`: the guest's PSTATE before the exception.
    pub spsr_el1: u64,
    /// The new `ESR_EL1`.
    pub esr_el1: u64,
    /// The new `FAR_EL1`, for aborts; `None` leaves `FAR_EL1` as it is (the
    /// architecture makes it UNKNOWN for other exceptions).
    pub far_el1: Option<u64>,
    /// Where the guest resumes: its exception vector (goes into `ELR_EL2`).
    pub pc: u64,
    /// The PSTATE it resumes with (goes into `SPSR_EL2`).
    pub pstate: u64,
}

/// `ESR_ELx` fields (Arm ARM, register ESR_EL1).
mod esr {
    /// Exception class, bits \[31:26\].
    pub const EC_SHIFT: u32 = 26;
    /// Instruction length: set for a 32-bit instruction, and RES1 for the classes
    /// injected here (unknown reason, and aborts without a valid syndrome).
    pub const IL: u64 = 1 << 25;
    /// Instruction specific syndrome, bits \[24:0\].
    pub const ISS_MASK: u64 = (1 << 25) - 1;
    /// Data abort ISS: write not read.
    pub const WNR: u64 = 1 << 6;
    /// Data/instruction fault status code: synchronous external abort, not on a
    /// translation table walk (0b010000).
    pub const FSC_SYNC_EXTERNAL: u64 = 0b01_0000;
    /// Data fault status code: alignment fault (0b100001).
    pub const FSC_ALIGNMENT: u64 = 0b10_0001;
}

/// PSTATE bits as saved in `SPSR_EL1`/`SPSR_EL2` (Arm ARM, register SPSR_EL1, for
/// exceptions taken from AArch64 and from AArch32).
mod pstate {
    /// `M[4]`: the interrupted code ran in AArch32 state.
    pub const M_AARCH32: u64 = 1 << 4;
    /// `M[3:2]`: exception level (AArch64).
    pub const M_EL_SHIFT: u32 = 2;
    /// Mask of `M[3:2]` once shifted down.
    pub const M_EL_MASK: u64 = 0b11;
    /// `M[0]`: stack pointer select, 1 = SP_ELx (AArch64).
    pub const M_SP_ELX: u64 = 1 << 0;
    /// `M` = EL1h: EL1 using SP_EL1.
    pub const M_EL1H: u64 = 0b0101;
    /// FIQ mask.
    pub const F: u64 = 1 << 6;
    /// IRQ mask.
    pub const I: u64 = 1 << 7;
    /// SError mask.
    pub const A: u64 = 1 << 8;
    /// Debug mask.
    pub const D: u64 = 1 << 9;
    /// Speculative store bypass safe (AArch64 position).
    pub const SSBS: u64 = 1 << 12;
    /// Data independent timing, AArch32 position.
    pub const DIT_AARCH32: u64 = 1 << 21;
    /// Privileged access never (same position in both states).
    pub const PAN: u64 = 1 << 22;
    /// Data independent timing, AArch64 position.
    pub const DIT: u64 = 1 << 24;
    /// Condition flags N, Z, C, V (same position in both states).
    pub const NZCV: u64 = 0b1111 << 28;
}

/// `SCTLR_EL1` fields.
mod sctlr {
    /// Set privileged access never: 0 means PSTATE.PAN is set on exception entry.
    pub const SPAN: u64 = 1 << 23;
    /// Default PSTATE.SSBS on exception entry.
    pub const DSSBS: u64 = 1 << 44;
}

/// Offsets of the synchronous vectors from `VBAR_EL1` (Arm ARM D1.3.1, "Exception
/// vectors").
pub mod vector {
    /// From EL1 using SP_EL0 (EL1t).
    pub const CURRENT_EL_SP0: u64 = 0x000;
    /// From EL1 using SP_EL1 (EL1h).
    pub const CURRENT_EL_SPX: u64 = 0x200;
    /// From EL0 in AArch64 state.
    pub const LOWER_EL_AARCH64: u64 = 0x400;
    /// From EL0 in AArch32 state.
    pub const LOWER_EL_AARCH32: u64 = 0x600;
}

/// `VBAR_EL1` bits \[10:0\] are RES0: the vector table is 2 KiB aligned.
const VBAR_ALIGN_MASK: u64 = 0x7FF;

/// Whether an exception from code running with `pstate` is taken from a lower
/// exception level than EL1 (EL0, in either state).
const fn from_lower_el(pstate: u64) -> bool {
    pstate & pstate::M_AARCH32 != 0 || (pstate >> pstate::M_EL_SHIFT) & pstate::M_EL_MASK == 0
}

/// The offset from `VBAR_EL1` of the synchronous vector an exception from code with
/// `pstate` goes to: AArch32 (only possible at EL0 under Aerie) 0x600, AArch64 EL0
/// 0x400, EL1 with SP_EL0 0x000, EL1 with SP_EL1 0x200. A guest cannot run at EL2 or
/// EL3; such a `pstate` is treated as EL1.
pub const fn vector_offset(pstate: u64) -> u64 {
    if pstate & pstate::M_AARCH32 != 0 {
        vector::LOWER_EL_AARCH32
    } else if from_lower_el(pstate) {
        vector::LOWER_EL_AARCH64
    } else if pstate & pstate::M_SP_ELX != 0 {
        vector::CURRENT_EL_SPX
    } else {
        vector::CURRENT_EL_SP0
    }
}

/// The PSTATE on entry to an EL1 exception handler, following `AArch64.TakeException`:
///
/// - `M` = EL1h, AArch64; `D`, `A`, `I`, `F` set; `SS`, `IL`, `UAO`, `BTYPE` and the
///   AArch32-only bits (`IT`, `T`, `GE`, `Q`, `E`) clear;
/// - `PAN` set when `SCTLR_EL1.SPAN` is 0, otherwise unchanged;
/// - `SSBS` = `SCTLR_EL1.DSSBS`;
/// - `N`, `Z`, `C`, `V` and `DIT` unchanged: the pseudocode does not write them.
pub const fn entry_pstate(old: u64, sctlr_el1: u64) -> u64 {
    let mut new = pstate::M_EL1H | pstate::D | pstate::A | pstate::I | pstate::F;
    new |= old & pstate::NZCV;
    let dit = if old & pstate::M_AARCH32 != 0 {
        pstate::DIT_AARCH32
    } else {
        pstate::DIT
    };
    if old & dit != 0 {
        new |= pstate::DIT;
    }
    if sctlr_el1 & sctlr::SPAN == 0 {
        new |= pstate::PAN;
    } else {
        new |= old & pstate::PAN;
    }
    if sctlr_el1 & sctlr::DSSBS != 0 {
        new |= pstate::SSBS;
    }
    new
}

/// Delivers an exception with syndrome `esr_el1` (and `far_el1`) to the guest.
const fn deliver(state: &GuestState, esr_el1: u64, far_el1: Option<u64>) -> Injection {
    Injection {
        elr_el1: state.pc,
        spsr_el1: state.pstate,
        esr_el1,
        far_el1,
        pc: (state.vbar_el1 & !VBAR_ALIGN_MASK) + vector_offset(state.pstate),
        pstate: entry_pstate(state.pstate, state.sctlr_el1),
    }
}

/// `ESR_EL1` for class `class`, with IL set and `iss`.
const fn syndrome(class: ExceptionClass, iss: u64) -> u64 {
    (class.ec() as u64) << esr::EC_SHIFT | esr::IL | (iss & esr::ISS_MASK)
}

/// The guest's current instruction is UNDEFINED: EC 0 ("unknown reason"), IL = 1,
/// ISS 0. `FAR_EL1` is left alone.
pub const fn undefined_instruction(state: &GuestState) -> Injection {
    deliver(state, syndrome(ExceptionClass::Unknown, 0), None)
}

/// The guest's load or store at virtual address `far` takes a synchronous external
/// abort: EC 0x24 from EL0 or 0x25 from EL1, IL = 1, ISV = 0, `WnR` = `is_write`,
/// DFSC = synchronous external abort; `FAR_EL1` = `far`.
pub const fn external_data_abort(state: &GuestState, far: u64, is_write: bool) -> Injection {
    let class = if from_lower_el(state.pstate) {
        ExceptionClass::DataAbortLower
    } else {
        ExceptionClass::DataAbortSame
    };
    let wnr = if is_write { esr::WNR } else { 0 };
    let iss = wnr | esr::FSC_SYNC_EXTERNAL;
    deliver(state, syndrome(class, iss), Some(far))
}

/// The guest's load or store at virtual address `far` takes an alignment fault (an
/// unaligned access to a device, as real Device memory answers it): EC 0x24 from EL0
/// or 0x25 from EL1, IL = 1, ISV = 0, `WnR` = `is_write`, DFSC = alignment fault;
/// `FAR_EL1` = `far`.
pub const fn alignment_fault(state: &GuestState, far: u64, is_write: bool) -> Injection {
    let class = if from_lower_el(state.pstate) {
        ExceptionClass::DataAbortLower
    } else {
        ExceptionClass::DataAbortSame
    };
    let wnr = if is_write { esr::WNR } else { 0 };
    deliver(state, syndrome(class, wnr | esr::FSC_ALIGNMENT), Some(far))
}

/// The guest's instruction fetch from virtual address `far` takes a synchronous
/// external abort: EC 0x20 from EL0 or 0x21 from EL1, IL = 1, IFSC = synchronous
/// external abort; `FAR_EL1` = `far`.
pub const fn external_instruction_abort(state: &GuestState, far: u64) -> Injection {
    let class = if from_lower_el(state.pstate) {
        ExceptionClass::InstructionAbortLower
    } else {
        ExceptionClass::InstructionAbortSame
    };
    deliver(state, syndrome(class, esr::FSC_SYNC_EXTERNAL), Some(far))
}

#[cfg(test)]
mod tests {
    //! Expected values restate the Arm ARM by hand: ESR_EL1 = EC << 26 | IL (bit 25)
    //! | ISS; SPSR M[4:0] with EL1h = 0b00101, EL1t = 0b00100, EL0t = 0b00000,
    //! AArch32 usr = 0b10000; D A I F = bits 9..6 (0x3C0); PAN bit 22, UAO 23, DIT 24,
    //! SS 21, IL 20, SSBS 12, BTYPE 11:10; SCTLR_EL1.SPAN bit 23, DSSBS bit 44.
    use super::*;

    const VBAR: u64 = 0xffff_8000_1001_0800;
    /// SCTLR_EL1 as Linux runs: SPAN = 1 (PAN not forced), DSSBS = 0.
    const SCTLR_LINUX: u64 = 1 << 23;
    /// EL1h | DAIF: what every handler starts with before PAN/SSBS/flags.
    const EL1H_MASKED: u64 = 0x3C5;

    fn state(pstate: u64) -> GuestState {
        GuestState {
            pc: 0xffff_8000_1000_1234,
            pstate,
            vbar_el1: VBAR,
            sctlr_el1: SCTLR_LINUX,
        }
    }

    #[test]
    fn undefined_from_el1h() {
        // EL1h (0b0101) with only FIQs masked (F, bit 6): 0x45.
        let guest = state(0x0000_0045);
        let injection = undefined_instruction(&guest);
        assert_eq!(
            injection,
            Injection {
                elr_el1: 0xffff_8000_1000_1234,
                spsr_el1: 0x45,
                // EC 0, IL: 1 << 25.
                esr_el1: 0x0200_0000,
                far_el1: None,
                pc: VBAR + 0x200,
                pstate: EL1H_MASKED,
            }
        );
    }

    #[test]
    fn data_abort_from_el1h() {
        let guest = state(0x0000_0005);
        // Read: EC 0x25 << 26 = 0x9400_0000 | IL 0x0200_0000 | DFSC 0x10.
        let read = external_data_abort(&guest, 0xffff_0000_0800_0000, false);
        assert_eq!(read.esr_el1, 0x9600_0010);
        assert_eq!(read.far_el1, Some(0xffff_0000_0800_0000));
        assert_eq!(read.pc, VBAR + 0x200);
        // Write: WnR is bit 6 (0x40).
        let write = external_data_abort(&guest, 0x1234, true);
        assert_eq!(write.esr_el1, 0x9600_0050);
    }

    #[test]
    fn from_el1t_uses_the_sp0_vector() {
        // EL1t (M = 0b0100): same-EL vector with SP_EL0, offset 0x000.
        let injection = external_data_abort(&state(0x4), 0, false);
        assert_eq!(injection.pc, VBAR);
        assert_eq!(injection.esr_el1, 0x9600_0010, "still from the same EL");
        assert_eq!(injection.spsr_el1, 0x4);
        assert_eq!(injection.pstate, EL1H_MASKED, "handler runs in EL1h");
    }

    #[test]
    fn alignment_fault_from_el1_and_el0() {
        // EC 0x25 << 26 = 0x9400_0000 | IL 0x0200_0000 | DFSC 0x21; from EL0 EC 0x24
        // with WnR 0x40.
        let injection = alignment_fault(&state(0x0000_0045), 0x0906_0001, false);
        assert_eq!(injection.esr_el1, 0x9600_0021);
        assert_eq!(injection.far_el1, Some(0x0906_0001));
        assert_eq!(alignment_fault(&state(0x0), 0x2, true).esr_el1, 0x9200_0061);
    }

    #[test]
    fn from_el0_uses_the_lower_el_vector_and_classes() {
        let guest = state(0x0);
        let data = external_data_abort(&guest, 0x40_0000, true);
        // EC 0x24 << 26 = 0x9000_0000 | IL | WnR | DFSC 0x10.
        assert_eq!(data.esr_el1, 0x9200_0050);
        assert_eq!(data.pc, VBAR + 0x400);
        assert_eq!(data.pstate, EL1H_MASKED);
        // EC 0x20 << 26 = 0x8000_0000 | IL | IFSC 0x10.
        let fetch = external_instruction_abort(&guest, 0x40_0000);
        assert_eq!(fetch.esr_el1, 0x8200_0010);
        assert_eq!(fetch.far_el1, Some(0x40_0000));
        assert_eq!(fetch.pc, VBAR + 0x400);
        let undef = undefined_instruction(&guest);
        assert_eq!(undef.esr_el1, 0x0200_0000);
        assert_eq!(undef.pc, VBAR + 0x400);
    }

    #[test]
    fn instruction_abort_from_el1() {
        // EC 0x21 << 26 = 0x8400_0000 | IL | IFSC 0x10.
        let injection = external_instruction_abort(&state(0x5), 0xffff_0000_0000_0000);
        assert_eq!(injection.esr_el1, 0x8600_0010);
        assert_eq!(injection.pc, VBAR + 0x200);
    }

    #[test]
    fn from_aarch32_el0_uses_the_0x600_vector() {
        // AArch32 usr mode (M = 0b10000) with the T bit (5) and IT bits set.
        let guest = state(0x0600_fc30);
        let injection = external_data_abort(&guest, 0x8000, false);
        assert_eq!(injection.pc, VBAR + 0x600);
        assert_eq!(injection.esr_el1, 0x9200_0010, "lower EL class");
        assert_eq!(injection.spsr_el1, 0x0600_fc30);
        assert_eq!(injection.pstate, EL1H_MASKED, "IT, T and mode bits gone");
    }

    #[test]
    fn vector_base_ignores_res0_bits() {
        let mut guest = state(0x5);
        guest.vbar_el1 = 0x4008_07FF;
        assert_eq!(undefined_instruction(&guest).pc, 0x4008_0000 + 0x200);
    }

    #[test]
    fn pan_rules() {
        // SCTLR_EL1.SPAN = 0: PAN is set on entry, whatever it was.
        let mut guest = state(0x5);
        guest.sctlr_el1 = 0;
        assert_eq!(undefined_instruction(&guest).pstate, EL1H_MASKED | 1 << 22);
        // SPAN = 1: PAN keeps its value, set or clear.
        guest.sctlr_el1 = 1 << 23;
        assert_eq!(undefined_instruction(&guest).pstate, EL1H_MASKED);
        guest.pstate = 0x5 | 1 << 22;
        assert_eq!(undefined_instruction(&guest).pstate, EL1H_MASKED | 1 << 22);
    }

    #[test]
    fn ssbs_follows_dssbs() {
        // PSTATE.SSBS set before; DSSBS = 0 clears it, DSSBS = 1 sets it.
        let mut guest = state(0x5 | 1 << 12);
        assert_eq!(undefined_instruction(&guest).pstate, EL1H_MASKED);
        guest.pstate = 0x5;
        guest.sctlr_el1 = SCTLR_LINUX | 1 << 44;
        assert_eq!(undefined_instruction(&guest).pstate, EL1H_MASKED | 1 << 12);
    }

    #[test]
    fn bits_cleared_and_kept_on_entry() {
        // Old PSTATE: NZCV (0xF000_0000), DIT (bit 24), UAO (23), SS (21), IL (20),
        // BTYPE (0xC00), EL0t.
        let old = 0xF000_0000 | 1 << 24 | 1 << 23 | 1 << 21 | 1 << 20 | 0xC00;
        let injection = undefined_instruction(&state(old));
        assert_eq!(injection.spsr_el1, old, "SPSR_EL1 keeps everything");
        // NZCV and DIT stay; UAO, SS, IL, BTYPE go.
        assert_eq!(injection.pstate, 0xF000_0000 | 1 << 24 | EL1H_MASKED);
        // AArch32 keeps DIT at bit 21; it moves to the AArch64 position (24).
        let aarch32 = 0x8000_0010 | 1 << 21;
        assert_eq!(
            undefined_instruction(&state(aarch32)).pstate,
            0x8000_0000 | 1 << 24 | EL1H_MASKED
        );
    }

    #[test]
    fn vector_offsets() {
        // (PSTATE.M, offset): EL0t, EL1t, EL1h, AArch32 usr/svc, and EL2h treated
        // as EL1h.
        for (m, offset) in [
            (0b00000, 0x400),
            (0b00100, 0x000),
            (0b00101, 0x200),
            (0b10000, 0x600),
            (0b10011, 0x600),
            (0b01001, 0x200),
        ] {
            assert_eq!(vector_offset(m), offset, "M = {m:#07b}");
        }
    }
}
