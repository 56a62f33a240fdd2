//! The vGIC's state as plain data, for snapshots: architectural state only (what the
//! guest could read back through the registers, plus the device input lines), never
//! raw list-register contents.
//!
//! Save after every vCPU has been synced (nothing in list registers); an interrupt
//! still in flight is saved as if its list register came back unchanged. Restore
//! into a vGIC built with the same configuration, before any vCPU is flushed.

use super::VgicV3;
use super::distributor::irouter;
use crate::vgic::core::{GicState, IrqSnapshot, saved_records};
use crate::vgic::{PRIVATE_INTERRUPTS, VgicError};

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

/// The whole GICv3 vGIC.
pub type VgicState = GicState<VcpuSnapshot, SpiSnapshot>;

saved_records!(VcpuSnapshot, SpiSnapshot);

impl VgicState {
    /// Checks that the state fits `vgic`'s configuration and holds only values the
    /// registers can hold.
    pub fn check(&self, vgic: &VgicV3) -> Result<(), VgicError> {
        self.check_interrupts(vgic)?;
        if self.spis.iter().any(|spi| spi.route & !irouter::MASK != 0) {
            return Err(VgicError::BadState {
                reason: "an SPI route has reserved bits set",
            });
        }
        Ok(())
    }
}

impl VgicV3 {
    /// The state as plain data.
    pub fn save(&self) -> VgicState {
        self.save_with(
            |vcpu, private| VcpuSnapshot {
                asleep: self.front.asleep[vcpu],
                private,
            },
            |index, irq| SpiSnapshot {
                irq,
                route: self.front.routes[index],
            },
        )
    }

    /// Replaces the state with `state`, or fails leaving the vGIC unchanged if
    /// [`VgicState::check`] refuses it. Hardware mappings and counters are kept;
    /// nothing is in flight afterwards and no kicks are left; hardware-backed
    /// interrupts come back neither pending nor active (their device raises them
    /// again).
    pub fn restore(&mut self, state: &VgicState) -> Result<(), VgicError> {
        state.check(self)?;
        self.restore_with(state, |gic| {
            for (asleep, saved) in gic.front.asleep.iter_mut().zip(&state.vcpus) {
                *asleep = saved.asleep;
            }
            for (route, saved) in gic.front.routes.iter_mut().zip(&state.spis) {
                *route = saved.route;
            }
            gic.update_any_pe_target();
        });
        Ok(())
    }
}
