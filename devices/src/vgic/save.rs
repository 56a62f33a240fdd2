//! The vGIC's state as plain data, for snapshots: architectural state only (what the
//! guest could read back through the registers, plus the device input lines), never
//! raw list-register contents.
//!
//! Save after every vCPU has been synced (nothing in list registers); an interrupt
//! still in flight is saved as if its list register came back unchanged. Restore
//! into a vGIC built with the same configuration, before any vCPU is flushed.

use super::distributor::irouter;
use super::state::PRIORITY_MASK;
use super::{PRIVATE_INTERRUPTS, SGIS, VgicError, VgicV3};
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

/// One SPI.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SpiSnapshot {
    /// Configuration and state.
    pub irq: IrqSnapshot,
    /// `GICD_IROUTER<n>` (only its defined bits).
    pub route: u64,
}

/// One vCPU's redistributor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VcpuSnapshot {
    /// `GICR_WAKER.ProcessorSleep`.
    pub asleep: bool,
    /// SGIs and PPIs, by INTID.
    pub private: [IrqSnapshot; PRIVATE_INTERRUPTS as usize],
}

/// The whole vGIC.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VgicState {
    /// `GICD_CTLR.EnableGrp0`.
    pub group0_enabled: bool,
    /// `GICD_CTLR.EnableGrp1`.
    pub group1_enabled: bool,
    /// One entry per vCPU.
    pub vcpus: Vec<VcpuSnapshot>,
    /// One entry per SPI: INTID `32 + index`.
    pub spis: Vec<SpiSnapshot>,
}

impl IrqSnapshot {
    pub(super) fn check(&self, is_sgi: bool) -> Result<(), VgicError> {
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

impl VgicState {
    /// Checks that the state fits `vgic`'s configuration and holds only values the
    /// registers can hold.
    pub fn check(&self, vgic: &VgicV3) -> Result<(), VgicError> {
        let bad = |reason| Err(VgicError::BadState { reason });
        if self.vcpus.len() != vgic.config.vcpus {
            return bad("it is for a different number of vCPUs");
        }
        if self.spis.len() != vgic.config.spis as usize {
            return bad("it is for a different number of SPIs");
        }
        for vcpu in &self.vcpus {
            for (intid, irq) in vcpu.private.iter().enumerate() {
                irq.check((intid as u32) < SGIS)?;
            }
        }
        for spi in &self.spis {
            spi.irq.check(false)?;
            if spi.route & !irouter::MASK != 0 {
                return bad("an SPI route has reserved bits set");
            }
        }
        Ok(())
    }
}

impl VgicV3 {
    /// The state as plain data.
    pub fn save(&self) -> VgicState {
        VgicState {
            group0_enabled: self.irqs.group0_enabled,
            group1_enabled: self.irqs.group1_enabled,
            vcpus: self
                .irqs
                .private
                .iter()
                .zip(&self.asleep)
                .map(|(irqs, &asleep)| VcpuSnapshot {
                    asleep,
                    private: core::array::from_fn(|intid| irqs[intid].snapshot()),
                })
                .collect(),
            spis: self
                .irqs
                .spis
                .iter()
                .zip(&self.routes)
                .map(|(irq, &route)| SpiSnapshot {
                    irq: irq.snapshot(),
                    route,
                })
                .collect(),
        }
    }

    /// Replaces the state with `state`, or fails leaving the vGIC unchanged if
    /// [`VgicState::check`] refuses it. Hardware mappings and counters are kept;
    /// nothing is in flight afterwards and no kicks are left; hardware-backed interrupts come back neither
    /// pending nor active (their device raises them again).
    pub fn restore(&mut self, state: &VgicState) -> Result<(), VgicError> {
        state.check(self)?;
        self.irqs.group0_enabled = state.group0_enabled;
        self.irqs.group1_enabled = state.group1_enabled;
        for ((irqs, asleep), saved) in self
            .irqs
            .private
            .iter_mut()
            .zip(&mut self.asleep)
            .zip(&state.vcpus)
        {
            *asleep = saved.asleep;
            for (irq, snapshot) in irqs.iter_mut().zip(&saved.private) {
                irq.restore(snapshot);
            }
        }
        for ((irq, route), saved) in self
            .irqs
            .spis
            .iter_mut()
            .zip(&mut self.routes)
            .zip(&state.spis)
        {
            irq.restore(&saved.irq);
            *route = saved.route;
        }
        for shadow in &mut self.irqs.shadows {
            shadow.clear();
        }
        self.update_any_pe_target();
        self.kicks = super::sgi::KickSet::default();
        Ok(())
    }
}
