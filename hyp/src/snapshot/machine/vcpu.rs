//! vCPU state chunks.

use alloc::format;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::codec;
use super::error::StateProblem;
use crate::vcpu::{ICC_SRE_EL1_BITS, TIMER_CTL_ENABLE, TIMER_CTL_IMASK, VcpuState};

/// Whether a vCPU was running (PSCI's view).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VcpuPower {
    /// Off: never started, or stopped with PSCI `CPU_OFF`. Its state is not used;
    /// PSCI `CPU_ON` starts it afresh.
    Off,
    /// On: running, or waiting for an interrupt.
    On,
}

/// One vCPU as saved.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedVcpu {
    /// Its PSCI power state.
    pub power: VcpuPower,
    /// Its registers.
    pub state: VcpuState,
}

/// SPSR_EL2 `M[4]`: the exception was taken from AArch32.
const PSTATE_M_AARCH32: u64 = 1 << 4;
/// SPSR_EL2 `M[4:0]`.
const PSTATE_MODE_MASK: u64 = 0b1_1111;
/// `M[4:0]` of AArch64 EL0 (EL0t).
const MODE_EL0T: u64 = 0b0_0000;
/// `M[4:0]` of AArch64 EL1 using SP_EL0 (EL1t).
const MODE_EL1T: u64 = 0b0_0100;
/// `M[4:0]` of AArch64 EL1 using SP_EL1 (EL1h).
const MODE_EL1H: u64 = 0b0_0101;

impl SavedVcpu {
    /// Checks what restoring would hand to the hardware: the PSTATE Aerie returns to
    /// (with `ERET`) must be AArch64 EL0t, EL1t or EL1h; anything else would enter
    /// EL2 itself, an exception level that does not exist for the guest, or AArch32,
    /// which Aerie's guests never run. The emulated physical timer's control may hold
    /// only ENABLE and IMASK, as the emulation writes it, and ICC_SRE_EL1 only its
    /// three defined bits.
    pub fn check(&self) -> Result<(), StateProblem> {
        let pstate = self.state.registers.pstate;
        let mode = pstate & PSTATE_MODE_MASK;
        if pstate & PSTATE_M_AARCH32 != 0 {
            return Err(StateProblem::Invalid(format!(
                "PSTATE {pstate:#x} is an AArch32 mode; only AArch64 EL0 and EL1 can be restored"
            )));
        }
        if !matches!(mode, MODE_EL0T | MODE_EL1T | MODE_EL1H) {
            let el = (mode >> 2) & 0b11;
            return Err(StateProblem::Invalid(format!(
                "PSTATE {pstate:#x} is at EL{el} (mode {mode:#07b}); only EL0t, EL1t and EL1h can be restored"
            )));
        }
        let sre = self.state.gic.sre;
        if sre & !ICC_SRE_EL1_BITS != 0 {
            return Err(StateProblem::Invalid(format!(
                "ICC_SRE_EL1 {sre:#x} has bits other than SRE, DFB and DIB"
            )));
        }
        let timer = self.state.physical_timer.ctl;
        if timer & !(TIMER_CTL_ENABLE | TIMER_CTL_IMASK) != 0 {
            return Err(StateProblem::Invalid(format!(
                "the physical timer control {timer:#x} has bits other than ENABLE and IMASK"
            )));
        }
        Ok(())
    }
}

/// A vCPU as a vCPU chunk's payload.
pub fn encode_vcpu(vcpu: &SavedVcpu) -> Vec<u8> {
    codec::encode(vcpu)
}

/// Decodes and checks a vCPU chunk's payload.
pub fn decode_vcpu(payload: &[u8]) -> Result<SavedVcpu, StateProblem> {
    let vcpu: SavedVcpu = codec::decode(payload)?;
    vcpu.check()?;
    Ok(vcpu)
}
