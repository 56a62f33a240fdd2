//! The GICv3 front-end under test: the guest's MMIO accesses go through
//! [`MmioDevice`] at offsets from the distributor's base, as the bus delivers them,
//! and [`CpuInterface`] models the `ICH_LR<n>_EL2` list registers. Also the tests
//! of what only the GICv3 has: redistributors, affinity routing, `ICC_SGI1R_EL1`.
//!
//! The register offsets and fields below are restated from the specifications
//! (IHI 0069H chapter 12; Arm ARM DDI 0487 for `ICH_LR<n>_EL2`, `ICH_HCR_EL2` and
//! `ICC_SGI1R_EL1`), independently of the constants in the model.

mod linux_boot;
mod registers;
mod routing;
mod save_restore;
mod sgis;

use super::*;
use crate::mmio::{AccessWidth, MmioDevice};
use crate::vgic::{IrqSnapshot, Vgic, VgicError, VgicState, VgicV3, VgicV3Config};
use std::vec::Vec;

/// Distributor registers (IHI 0069H, "The GIC Distributor register map").
pub(super) mod gicd {
    pub use super::super::block::*;
    /// GICD_CTLR (DS = 1): ARE [4], DS [6], RWP [31].
    pub const CTLR_ARE: u64 = 1 << 4;
    pub const CTLR_DS: u64 = 1 << 6;
    pub const CTLR_RWP: u64 = 1 << 31;
    /// GICD_IROUTER: Interrupt_Routing_Mode [31].
    pub const IROUTER_IRM: u64 = 1 << 31;
}

/// Redistributor registers (IHI 0069H, "The GIC Redistributor register map"),
/// offsets within one redistributor: RD frame, then the SGI frame at 64 KiB.
pub(super) mod gicr {
    pub const CTLR: u64 = 0x0000;
    pub const IIDR: u64 = 0x0004;
    pub const TYPER: u64 = 0x0008;
    pub const WAKER: u64 = 0x0014;
    pub const PROPBASER: u64 = 0x0070;
    pub const PENDBASER: u64 = 0x0078;
    pub const PIDR2: u64 = 0xFFE8;
    pub const SGI: u64 = 0x1_0000;
    pub const IGROUPR0: u64 = SGI + 0x0080;
    pub const ISENABLER0: u64 = SGI + 0x0100;
    pub const ICENABLER0: u64 = SGI + 0x0180;
    pub const ISPENDR0: u64 = SGI + 0x0200;
    pub const ICACTIVER0: u64 = SGI + 0x0380;
    pub const IPRIORITYR0: u64 = SGI + 0x0400;
    pub const ICFGR0: u64 = SGI + 0x0C00;
    pub const ICFGR1: u64 = SGI + 0x0C04;
    pub const IGRPMODR0: u64 = SGI + 0x0D00;
    pub const NSACR: u64 = SGI + 0x0E00;
    /// GICR_WAKER: ProcessorSleep [1], ChildrenAsleep [2].
    pub const WAKER_PROCESSOR_SLEEP: u64 = 1 << 1;
    pub const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;
    /// GICR_TYPER: Last [4].
    pub const TYPER_LAST: u64 = 1 << 4;
    /// Size of one redistributor (RD + SGI frames).
    pub const STRIDE: u64 = 0x2_0000;
}

/// `ICH_LR<n>_EL2` bits (see [`IchLr`]).
pub(super) mod lr {
    use super::super::{IchLr, LrFormat};

    pub const PENDING: u64 = IchLr::FIELDS.pending;
    pub const GROUP1: u64 = IchLr::FIELDS.group1;
    pub const PRIORITY_SHIFT: u32 = IchLr::FIELDS.priority_shift;
}

/// Where QEMU `virt` puts the first redistributor relative to the distributor
/// (`0x080a_0000 - 0x0800_0000`).
pub(super) const REDISTRIBUTORS: u64 = 0xA_0000;

/// A vGIC for `vcpus` vCPUs with the defaults (64 SPIs).
pub(super) fn vgic(vcpus: usize) -> VgicV3 {
    VgicV3::new(VgicV3Config::new(vcpus)).unwrap()
}

/// The guest's view: accesses at offsets from the distributor's base.
pub(super) fn read(gic: &mut VgicV3, offset: u64, width: AccessWidth) -> u64 {
    MmioDevice::read(gic, offset, width)
}

pub(super) fn write(gic: &mut VgicV3, offset: u64, width: AccessWidth, value: u64) {
    MmioDevice::write(gic, offset, width, value);
}

/// Offset of register `offset` of vCPU `vcpu`'s redistributor.
pub(super) const fn rdist(vcpu: usize, offset: u64) -> u64 {
    REDISTRIBUTORS + vcpu as u64 * gicr::STRIDE + offset
}

/// Enables both groups, an SPI and routes it to `vcpu` with `priority`.
pub(super) fn enable_spi(gic: &mut VgicV3, intid: u32, vcpu: usize, priority: u8) {
    TestGic::enable_spi(gic, intid, vcpu, priority);
}

/// Enables both groups and private interrupt `intid` of `vcpu` with `priority`.
pub(super) fn enable_private(gic: &mut VgicV3, vcpu: usize, intid: u32, priority: u8) {
    TestGic::enable_private(gic, vcpu, intid, priority);
}

/// Runs `vcpu` until idle (see [`TestGic::run_until_idle`]).
pub(super) fn run_until_idle(gic: &mut VgicV3, vcpu: usize, count: usize) -> Vec<u32> {
    gic.run_until_idle(vcpu, count)
}

/// The affinity Aerie gives vCPU `index` (Aff1 = index / 16, Aff0 = index % 16), as
/// an MPIDR / IROUTER value.
pub(super) const fn vcpu_mpidr(index: usize) -> u64 {
    ((index as u64 / 16) << 8) | (index as u64 % 16)
}

/// The GICv3 virtual CPU interface: `ICC_IAR1_EL1` reads and `ICC_EOIR1_EL1`
/// writes (EOImode 0) on `ICH_LR<n>_EL2` list registers.
pub(super) type CpuInterface = SimulatedCpu<IchLr>;

impl TestGic for VgicV3 {
    type Cpu = CpuInterface;
    type State = VgicState;
    const RESET_GROUP1: bool = true;

    fn read_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        read(self, rdist(vcpu, gicr::SGI + offset), width)
    }

    fn write_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        write(self, rdist(vcpu, gicr::SGI + offset), width, value);
    }

    fn route(&mut self, intid: u32, vcpu: usize) {
        write(
            self,
            gicd::IROUTER + 8 * u64::from(intid),
            D,
            vcpu_mpidr(vcpu),
        );
    }

    fn unroute(&mut self, intid: u32) {
        write(
            self,
            gicd::IROUTER + 8 * u64::from(intid),
            D,
            vcpu_mpidr(31),
        );
    }

    same_for_both!();
}
