//! The vGIC's state as plain data, for snapshots: architectural state only (what the
//! guest could read back through the registers, plus the device input lines), never
//! raw list-register contents.
//!
//! Save after every vCPU has been synced (nothing in list registers); an interrupt
//! still in flight is saved as if its list register came back unchanged. Restore
//! into a vGIC built with the same configuration, before any vCPU is flushed.

use super::VgicV3;
use super::distributor::irouter;
use crate::vgic::core::{IrqSnapshot, check_private, save_private};
use crate::vgic::{PRIVATE_INTERRUPTS, VgicError};
use alloc::vec::Vec;

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

impl VgicState {
    /// Checks that the state fits `vgic`'s configuration and holds only values the
    /// registers can hold.
    pub fn check(&self, vgic: &VgicV3) -> Result<(), VgicError> {
        let bad = |reason| Err(VgicError::BadState { reason });
        if self.vcpus.len() != vgic.front.config.vcpus {
            return bad("it is for a different number of vCPUs");
        }
        if self.spis.len() != vgic.front.config.spis as usize {
            return bad("it is for a different number of SPIs");
        }
        for vcpu in &self.vcpus {
            check_private(&vcpu.private)?;
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
                .zip(&self.front.asleep)
                .map(|(irqs, &asleep)| VcpuSnapshot {
                    asleep,
                    private: save_private(irqs),
                })
                .collect(),
            spis: self
                .irqs
                .spis
                .iter()
                .zip(&self.front.routes)
                .map(|(irq, &route)| SpiSnapshot {
                    irq: irq.snapshot(),
                    route,
                })
                .collect(),
        }
    }

    /// Replaces the state with `state`, or fails leaving the vGIC unchanged if
    /// [`VgicState::check`] refuses it. Hardware mappings and counters are kept;
    /// nothing is in flight afterwards and no kicks are left; hardware-backed
    /// interrupts come back neither pending nor active (their device raises them
    /// again).
    pub fn restore(&mut self, state: &VgicState) -> Result<(), VgicError> {
        state.check(self)?;
        self.restore_interrupts(
            (state.group0_enabled, state.group1_enabled),
            state.vcpus.iter().map(|vcpu| &vcpu.private),
            state.spis.iter().map(|spi| &spi.irq),
        );
        for (asleep, saved) in self.front.asleep.iter_mut().zip(&state.vcpus) {
            *asleep = saved.asleep;
        }
        for (route, saved) in self.front.routes.iter_mut().zip(&state.spis) {
            *route = saved.route;
        }
        self.update_any_pe_target();
        self.after_restore();
        Ok(())
    }
}
