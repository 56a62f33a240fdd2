//! The GICv2 front-end's state as plain data, for snapshots: architectural state only
//! (what the guest could read back through the distributor, plus the device input
//! lines), never raw list-register contents.
//!
//! Save after every vCPU has been synced (nothing in list registers); an interrupt
//! still in flight is saved as if its list register came back unchanged. Restore
//! into a vGIC built with the same configuration, before any vCPU is flushed.

use super::VgicV2;
use super::sgi::{SgiSources, cpu_bit};
use crate::vgic::core::{GicState, IrqSnapshot, saved_records};
use crate::vgic::{PRIVATE_INTERRUPTS, SGIS, VgicError};

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

saved_records!(VcpuV2Snapshot, SpiV2Snapshot);

/// The whole GICv2 front-end.
pub type VgicV2State = GicState<VcpuV2Snapshot, SpiV2Snapshot>;

impl VgicV2State {
    /// Checks that the state fits `vgic` (its vCPUs, SPIs and CPU interfaces) and
    /// holds only values the registers can hold.
    pub fn check(&self, vgic: &VgicV2) -> Result<(), VgicError> {
        self.check_interrupts(vgic)?;
        let bad = |reason| Err(VgicError::BadState { reason });
        let cpus = vgic.front.cpu_mask();
        for vcpu in &self.vcpus {
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
        self.save_with(
            |vcpu, private| {
                let (sgi_sources, sgi_active_sources) = self.saved_sgi_sources(vcpu);
                VcpuV2Snapshot {
                    private,
                    sgi_sources,
                    sgi_active_sources,
                }
            },
            |index, irq| SpiV2Snapshot {
                irq,
                targets: self.front.targets[index],
            },
        )
    }

    /// vCPU `vcpu`'s SGI sources as saved, with what its list registers hold
    /// folded in as if returned unchanged: (pending sources, active source) per SGI.
    fn saved_sgi_sources(&self, vcpu: usize) -> ([u8; SGIS as usize], [u8; SGIS as usize]) {
        let (mut sources, mut active) = self.front.sgis[vcpu].parts();
        let listed = self.irqs.shadows[vcpu].entries().iter();
        for entry in listed.filter(|entry| entry.intid < SGIS) {
            let n = entry.intid as usize;
            if entry.state.pending {
                sources[n] |= cpu_bit(usize::from(entry.source));
            }
            if entry.state.active {
                active[n] = entry.source;
            }
        }
        (sources, active)
    }

    /// Replaces the state with `state`, as [`VgicV3::restore`](crate::vgic::VgicV3)
    /// does, or fails leaving the vGIC unchanged if [`VgicV2State::check`] refuses
    /// it.
    pub fn restore(&mut self, state: &VgicV2State) -> Result<(), VgicError> {
        state.check(self)?;
        self.restore_with(state, |gic| {
            for (sgis, saved) in gic.front.sgis.iter_mut().zip(&state.vcpus) {
                *sgis = SgiSources::from_parts(saved.sgi_sources, saved.sgi_active_sources);
            }
            for (targets, saved) in gic.front.targets.iter_mut().zip(&state.spis) {
                *targets = saved.targets;
            }
        });
        Ok(())
    }
}
