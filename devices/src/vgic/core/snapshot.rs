//! One interrupt as plain data, for the snapshots of both front-ends
//! ([`VgicState`](crate::vgic::VgicState), [`VgicV2State`](crate::vgic::VgicV2State)).

use super::state::IrqState;
use super::state::PRIORITY_MASK;
use super::{Core, Frontend};
use crate::vgic::{PRIVATE_INTERRUPTS, SGIS, VgicError};
use alloc::vec::Vec;

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

/// A whole vGIC as plain data: the group enables, one `V` per vCPU and one `S` per
/// SPI (INTID `32 + index`), each front-end's records holding the interrupts and
/// what the front-end adds. [`VgicState`](crate::vgic::VgicState) and
/// [`VgicV2State`](crate::vgic::VgicV2State) name the two; their serialized
/// layout is the fields in this order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GicState<V, S> {
    /// `GICD_CTLR.EnableGrp0`.
    pub group0_enabled: bool,
    /// `GICD_CTLR.EnableGrp1`.
    pub group1_enabled: bool,
    /// One entry per vCPU.
    pub vcpus: Vec<V>,
    /// One entry per SPI: INTID `32 + index`.
    pub spis: Vec<S>,
}

/// A front-end's record of one vCPU: its SGIs and PPIs, and more.
pub trait SavedVcpu {
    /// SGIs and PPIs, by INTID.
    fn private(&self) -> &[IrqSnapshot; PRIVATE_INTERRUPTS as usize];
}

/// A front-end's record of one SPI: its state, and where it goes.
pub trait SavedSpi {
    /// Configuration and state.
    fn irq(&self) -> &IrqSnapshot;
}

/// Implements [`SavedVcpu`] and [`SavedSpi`] for a front-end's records whose
/// interrupts are the fields `private` and `irq`.
macro_rules! saved_records {
    ($vcpu:ty, $spi:ty) => {
        impl $crate::vgic::core::SavedVcpu for $vcpu {
            fn private(&self) -> &[IrqSnapshot; PRIVATE_INTERRUPTS as usize] {
                &self.private
            }
        }

        impl $crate::vgic::core::SavedSpi for $spi {
            fn irq(&self) -> &IrqSnapshot {
                &self.irq
            }
        }
    };
}
pub(crate) use saved_records;

impl<V: SavedVcpu, S: SavedSpi> GicState<V, S> {
    /// Checks what every front-end's state must satisfy to be restored into
    /// `vgic`: as many vCPUs and SPIs, only values the registers can hold.
    pub(crate) fn check_interrupts<F>(&self, vgic: &Core<F>) -> Result<(), VgicError> {
        let bad = |reason| Err(VgicError::BadState { reason });
        if self.vcpus.len() != vgic.irqs.vcpus() {
            return bad("it is for a different number of vCPUs");
        }
        if self.spis.len() != vgic.irqs.spis.len() {
            return bad("it is for a different number of SPIs");
        }
        for vcpu in &self.vcpus {
            for (intid, irq) in vcpu.private().iter().enumerate() {
                irq.check((intid as u32) < SGIS)?;
            }
        }
        self.spis.iter().try_for_each(|spi| spi.irq().check(false))
    }
}

impl<F: Frontend> Core<F> {
    /// The state as plain data: the front-end makes its records of vCPU `v` with
    /// `vcpu(v, its SGIs and PPIs)` and of SPI `i` with `spi(i, its state)`.
    pub(crate) fn save_with<V, S>(
        &self,
        vcpu: impl Fn(usize, [IrqSnapshot; PRIVATE_INTERRUPTS as usize]) -> V,
        spi: impl Fn(usize, IrqSnapshot) -> S,
    ) -> GicState<V, S> {
        let private = self.irqs.private.iter();
        let spis = self.irqs.spis.iter().map(IrqState::snapshot);
        GicState {
            group0_enabled: self.irqs.group0_enabled,
            group1_enabled: self.irqs.group1_enabled,
            vcpus: private
                .enumerate()
                .map(|(index, irqs)| vcpu(index, core::array::from_fn(|n| irqs[n].snapshot())))
                .collect(),
            spis: spis
                .enumerate()
                .map(|(index, irq)| spi(index, irq))
                .collect(),
        }
    }

    /// Restores what both front-ends save (the group enables, every vCPU's SGIs and
    /// PPIs, the SPIs); then the front-end's own state with `front`; then forgets
    /// what was in flight and the kicks.
    pub(crate) fn restore_with<V: SavedVcpu, S: SavedSpi>(
        &mut self,
        state: &GicState<V, S>,
        front: impl FnOnce(&mut Self),
    ) {
        self.irqs.group0_enabled = state.group0_enabled;
        self.irqs.group1_enabled = state.group1_enabled;
        for (irqs, saved) in self.irqs.private.iter_mut().zip(&state.vcpus) {
            for (irq, snapshot) in irqs.iter_mut().zip(saved.private()) {
                irq.restore(snapshot);
            }
        }
        for (irq, saved) in self.irqs.spis.iter_mut().zip(&state.spis) {
            irq.restore(saved.irq());
        }
        front(self);
        self.after_restore();
    }
}
