//! The GICv2 front-end's state as plain data, for snapshots: architectural state only
//! (what the guest could read back through the distributor, plus the device input
//! lines), never raw list-register contents.
//!
//! Save after every vCPU has been synced (nothing in list registers); an interrupt
//! still in flight is saved as if its list register came back unchanged. Restore
//! into a vGIC built with the same configuration, before any vCPU is flushed.

use super::VgicV2;
use super::sgi::{SgiSources, cpu_bit};
use crate::vgic::core::{IrqSnapshot, check_private, save_private};
use crate::vgic::{PRIVATE_INTERRUPTS, SGIS, VgicError};
use alloc::vec::Vec;

/// One SPI.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SpiV2Snapshot {
    /// Configuration and state.
    pub irq: IrqSnapshot,
    /// `GICD_ITARGETSR` byte: one bit per target vCPU.
    pub targets: u8,
}

/// One vCPU's banked interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VcpuV2Snapshot {
    /// SGIs and PPIs, by INTID. An SGI's `pending_latch` is set exactly when
    /// `sgi_sources` names a source for it.
    pub private: [IrqSnapshot; PRIVATE_INTERRUPTS as usize],
    /// `GICD_SPENDSGIR` bytes: bit `s` of entry `n` is SGI `n` pending from vCPU `s`.
    pub sgi_sources: [u8; SGIS as usize],
    /// The vCPU whose SGI `n` the guest acknowledged (meaningful while SGI `n` is
    /// active: the guest's end of interrupt names it).
    pub sgi_active_sources: [u8; SGIS as usize],
}

/// The whole GICv2 front-end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VgicV2State {
    /// `GICD_CTLR.EnableGrp0`.
    pub group0_enabled: bool,
    /// `GICD_CTLR.EnableGrp1`.
    pub group1_enabled: bool,
    /// One entry per vCPU.
    pub vcpus: Vec<VcpuV2Snapshot>,
    /// One entry per SPI: INTID `32 + index`.
    pub spis: Vec<SpiV2Snapshot>,
}

impl VgicV2State {
    /// Checks that the state fits `vgic`'s configuration and holds only values the
    /// registers can hold.
    pub fn check(&self, vgic: &VgicV2) -> Result<(), VgicError> {
        let bad = |reason| Err(VgicError::BadState { reason });
        if self.vcpus.len() != vgic.front.config.vcpus {
            return bad("it is for a different number of vCPUs");
        }
        if self.spis.len() != vgic.front.config.spis as usize {
            return bad("it is for a different number of SPIs");
        }
        let cpus = vgic.front.cpu_mask();
        for vcpu in &self.vcpus {
            check_private(&vcpu.private)?;
            for ((&sources, &active), irq) in vcpu
                .sgi_sources
                .iter()
                .zip(&vcpu.sgi_active_sources)
                .zip(&vcpu.private)
            {
                if sources & !cpus != 0 {
                    return bad("an SGI is pending from a vCPU that does not exist");
                }
                if cpu_bit(usize::from(active)) & cpus == 0 {
                    return bad("an SGI is active from a vCPU that does not exist");
                }
                if irq.pending_latch != (sources != 0) {
                    return bad("an SGI's pending state and its sources disagree");
                }
            }
        }
        let targets = vgic.front.target_mask();
        for spi in &self.spis {
            spi.irq.check(false)?;
            if spi.targets & !targets != 0 {
                return bad("an SPI targets a vCPU that does not exist");
            }
        }
        Ok(())
    }
}

impl VgicV2 {
    /// The state as plain data.
    pub fn save(&self) -> VgicV2State {
        let vcpus = self
            .irqs
            .private
            .iter()
            .zip(&self.front.sgis)
            .zip(&self.irqs.shadows)
            .map(|((irqs, sgis), shadow)| {
                let (mut sources, mut active) = sgis.parts();
                // Fold in what list registers hold, as if returned unchanged.
                for entry in shadow.entries().iter().filter(|entry| entry.intid < SGIS) {
                    let n = entry.intid as usize;
                    if entry.state.pending {
                        sources[n] |= cpu_bit(usize::from(entry.source));
                    }
                    if entry.state.active {
                        active[n] = entry.source;
                    }
                }
                VcpuV2Snapshot {
                    private: save_private(irqs),
                    sgi_sources: sources,
                    sgi_active_sources: active,
                }
            })
            .collect();
        VgicV2State {
            group0_enabled: self.irqs.group0_enabled,
            group1_enabled: self.irqs.group1_enabled,
            vcpus,
            spis: self
                .irqs
                .spis
                .iter()
                .zip(&self.front.targets)
                .map(|(irq, &targets)| SpiV2Snapshot {
                    irq: irq.snapshot(),
                    targets,
                })
                .collect(),
        }
    }

    /// Replaces the state with `state`, or fails leaving the vGIC unchanged if
    /// [`VgicV2State::check`] refuses it. Hardware mappings and counters are kept;
    /// nothing is in flight afterwards and no kicks are left; hardware-backed
    /// interrupts come back neither pending nor active (their device raises them
    /// again).
    pub fn restore(&mut self, state: &VgicV2State) -> Result<(), VgicError> {
        state.check(self)?;
        self.restore_interrupts(
            (state.group0_enabled, state.group1_enabled),
            state.vcpus.iter().map(|vcpu| &vcpu.private),
            state.spis.iter().map(|spi| &spi.irq),
        );
        for (sgis, saved) in self.front.sgis.iter_mut().zip(&state.vcpus) {
            *sgis = SgiSources::from_parts(saved.sgi_sources, saved.sgi_active_sources);
        }
        for (targets, saved) in self.front.targets.iter_mut().zip(&state.spis) {
            *targets = saved.targets;
        }
        self.after_restore();
        Ok(())
    }
}
