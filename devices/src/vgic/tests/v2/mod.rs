//! The GICv2 front-end under test: the guest's distributor accesses go through
//! [`Vgic::mmio_read`] / [`Vgic::mmio_write`] as a given vCPU, at offsets from the
//! distributor's base, and [`Gicv`] models the virtual CPU interface and its
//! `GICH_LR<n>` list registers. Also the tests of what only the GICv2 has: banked
//! registers, `GICD_ITARGETSR`, `GICD_SGIR` and SGIs pending per source.
//!
//! The register offsets and fields below are restated from IHI 0048B.b (section
//! 4.1.2 "Distributor register map", section 4.3 register descriptions, chapter 5
//! for `GICH_LRn` and `GICH_HCR`), independently of the constants in the model.

mod linux_boot;
mod registers;
mod save_restore;
mod sgis;
mod targets;

use super::*;
use crate::mmio::AccessWidth;
use crate::vgic::{IrqSnapshot, Vgic, VgicError, VgicV2, VgicV2Config, VgicV2State};
use std::vec::Vec;

/// Distributor registers (IHI 0048B.b Table 4-1).
pub(super) use super::block as gicd;

/// `GICD_SGIR`: TargetListFilter [25:24], CPUTargetList [23:16], SGIINTID [3:0].
pub(super) fn sgir(filter: u64, targets: u64, intid: u64) -> u64 {
    (filter << 24) | (targets << 16) | intid
}

/// `GICH_LRn` fields (see [`GichLr`]).
pub(super) mod lr {
    use super::super::{GichLr, LrFields, LrFormat};

    const F: LrFields = GichLr::FIELDS;
    pub const HW: u64 = F.hw;
    pub const GRP1: u64 = F.group1;
    pub const ACTIVE: u64 = F.active;
    pub const PENDING: u64 = F.pending;
    pub const STATE: u64 = PENDING | ACTIVE;
    pub const EOI: u64 = F.eoi;
    pub const PHYSICAL_SHIFT: u32 = F.physical_shift;
    pub const CPUID_SHIFT: u32 = F.source_shift;

    /// The Priority field for an 8-bit priority.
    pub const fn priority(priority: u8) -> u64 {
        F.priority(priority)
    }

    pub const fn intid(value: u64) -> u32 {
        (value & F.intid_mask) as u32
    }

    pub const fn cpuid(value: u64) -> u32 {
        ((value >> F.source_shift) & F.source_mask) as u32
    }
}

/// The `GICV_IAR` value for INTID `intid` from CPU `source`: CPUID [12:10],
/// interrupt ID [9:0].
pub(super) const fn iar(intid: u32, source: u32) -> u32 {
    (source << 10) | intid
}

/// A GICv2 vGIC for `vcpus` vCPUs with the defaults (64 SPIs).
pub(super) fn vgic(vcpus: usize) -> VgicV2 {
    VgicV2::new(VgicV2Config::new(vcpus)).unwrap()
}

/// vCPU `vcpu` reads the distributor.
pub(super) fn read(gic: &mut VgicV2, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
    gic.mmio_read(vcpu, offset, width)
}

/// vCPU `vcpu` writes the distributor.
pub(super) fn write(gic: &mut VgicV2, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
    gic.mmio_write(vcpu, offset, width, value);
}

/// The vCPUs [`Vgic::take_kicks`] returns.
pub(super) fn kicks(gic: &mut VgicV2) -> Vec<usize> {
    gic.take_kicks().iter().collect()
}

/// Enables both groups, and SPI `intid` targeted at `vcpu` with `priority`.
pub(super) fn enable_spi(gic: &mut VgicV2, intid: u32, vcpu: usize, priority: u8) {
    TestGic::enable_spi(gic, intid, vcpu, priority);
}

/// Enables both groups, and private interrupt `intid` of `vcpu` with `priority`
/// (the banked registers, written by `vcpu` itself).
pub(super) fn enable_private(gic: &mut VgicV2, vcpu: usize, intid: u32, priority: u8) {
    TestGic::enable_private(gic, vcpu, intid, priority);
}

/// Configures SPI `intid` as edge-triggered (GICD_ICFGRn Int_config[1]).
pub(super) fn make_edge(gic: &mut VgicV2, intid: u32) {
    TestGic::make_edge(gic, intid);
}

/// Runs `vcpu` until idle (see [`TestGic::run_until_idle`]); returns the IAR values.
pub(super) fn run_until_idle(gic: &mut VgicV2, vcpu: usize, count: usize) -> Vec<u32> {
    gic.run_until_idle(vcpu, count)
}

/// The GICv2 virtual CPU interface (`GICV`): `GICV_IAR` reads (with CPUID for
/// SGIs) and `GICV_EOIR` writes (EOImode 0) on `GICH_LR<n>` list registers.
pub(super) type Gicv = SimulatedCpu<GichLr>;

impl Gicv {
    /// The (INTID, CPUID) of every valid list register.
    pub fn listed(&self) -> Vec<(u32, u32)> {
        self.lrs
            .iter()
            .filter(|&&v| v & lr::STATE != 0)
            .map(|&v| (lr::intid(v), if v & lr::HW != 0 { 0 } else { lr::cpuid(v) }))
            .collect()
    }

    /// The guest writes the IAR value to GICV_EOIR.
    pub fn end_of_interrupt(&mut self, iar: u32) {
        self.deactivate(iar);
    }
}

impl TestGic for VgicV2 {
    /// SPI targets are `GICD_ITARGETSR` bytes.
    fn route(&mut self, intid: u32, vcpu: usize) {
        write(self, 0, gicd::ITARGETSR + u64::from(intid), B, 1 << vcpu);
    }

    fn unroute(&mut self, intid: u32) {
        write(self, 0, gicd::ITARGETSR + u64::from(intid), B, 0);
    }

    type Cpu = Gicv;
    type State = VgicV2State;
    const RESET_GROUP1: bool = false;

    /// The banked registers, as `vcpu` itself reads them.
    fn read_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        read(self, vcpu, offset, width)
    }

    fn write_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        write(self, vcpu, offset, width, value);
    }

    same_for_both!();
}
