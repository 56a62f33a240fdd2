//! One interrupt as plain data, for the snapshots of both front-ends
//! ([`VgicState`](crate::vgic::VgicState), [`VgicV2State`](crate::vgic::VgicV2State)).

use super::state::PRIORITY_MASK;
use super::table::PrivateIrqs;
use super::{Core, Frontend};
use crate::vgic::{PRIVATE_INTERRUPTS, SGIS, VgicError};

/// One interrupt's configuration and state.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct IrqSnapshot {
    /// Enabled (`ISENABLER`).
    pub enabled: bool,
    /// In Group 1 (`IGROUPR`).
    pub group1: bool,
    /// Edge-triggered (`ICFGR`); SGIs always are.
    pub edge: bool,
    /// Priority (`IPRIORITYR`), only [`PRIORITY_MASK`] bits.
    pub priority: u8,
    /// The device's input line (always low for SGIs).
    pub line: bool,
    /// Pending apart from the line: an edge, an `ISPENDR` write, an SGI.
    pub pending_latch: bool,
    /// Active.
    pub active: bool,
}

impl IrqSnapshot {
    pub(crate) fn check(&self, is_sgi: bool) -> Result<(), VgicError> {
        let reason = if self.priority & !PRIORITY_MASK != 0 {
            "a priority has bits the GIC does not implement"
        } else if is_sgi && !self.edge {
            "an SGI is level-sensitive, but SGIs are always edge-triggered"
        } else if is_sgi && self.line {
            "an SGI has its input line high, but SGIs have no line"
        } else {
            return Ok(());
        };
        Err(VgicError::BadState { reason })
    }
}

/// Every SGI and PPI of one vCPU as plain data.
pub(crate) fn save_private(irqs: &PrivateIrqs) -> [IrqSnapshot; PRIVATE_INTERRUPTS as usize] {
    core::array::from_fn(|intid| irqs[intid].snapshot())
}

/// Checks one vCPU's saved SGIs and PPIs.
pub(crate) fn check_private(
    private: &[IrqSnapshot; PRIVATE_INTERRUPTS as usize],
) -> Result<(), VgicError> {
    for (intid, irq) in private.iter().enumerate() {
        irq.check((intid as u32) < SGIS)?;
    }
    Ok(())
}

impl<F: Frontend> Core<F> {
    /// Restores what both front-ends save: the group enables, every vCPU's SGIs and
    /// PPIs (`private`, one item per vCPU), the SPIs. The front-end restores its own
    /// state, then calls [`after_restore`](Core::after_restore).
    pub(crate) fn restore_interrupts<'a>(
        &mut self,
        groups: (bool, bool),
        private: impl Iterator<Item = &'a [IrqSnapshot; PRIVATE_INTERRUPTS as usize]>,
        spis: impl Iterator<Item = &'a IrqSnapshot>,
    ) {
        (self.irqs.group0_enabled, self.irqs.group1_enabled) = groups;
        for (irqs, saved) in self.irqs.private.iter_mut().zip(private) {
            for (irq, snapshot) in irqs.iter_mut().zip(saved) {
                irq.restore(snapshot);
            }
        }
        for (irq, saved) in self.irqs.spis.iter_mut().zip(spis) {
            irq.restore(saved);
        }
    }
}
