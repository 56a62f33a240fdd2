//! Host tests of the vGIC through its public interface: the guest's MMIO accesses go
//! through [`MmioDevice`] at offsets from the distributor's base, as the bus delivers
//! them, and a small simulated virtual CPU interface acknowledges and deactivates the
//! list registers the way the hardware does.
//!
//! The register offsets and fields below are restated from the specifications
//! (IHI 0069H chapter 12; Arm ARM DDI 0487 for `ICH_LR<n>_EL2`, `ICH_HCR_EL2` and
//! `ICC_SGI1R_EL1`), independently of the constants in the model.

mod delivery;
mod linux_boot;
mod registers;
mod save_restore;
mod sgis;
mod v2;

use super::{LrPlan, Vgic, VgicV3, VgicV3Config};
use crate::mmio::{AccessWidth, MmioDevice};
use std::vec::Vec;

pub(super) const B: AccessWidth = AccessWidth::Byte;
pub(super) const H: AccessWidth = AccessWidth::Half;
pub(super) const W: AccessWidth = AccessWidth::Word;
pub(super) const D: AccessWidth = AccessWidth::Double;

/// Distributor registers (IHI 0069H, "The GIC Distributor register map").
pub(super) mod gicd {
    pub const CTLR: u64 = 0x0000;
    pub const TYPER: u64 = 0x0004;
    pub const IIDR: u64 = 0x0008;
    pub const TYPER2: u64 = 0x000C;
    pub const STATUSR: u64 = 0x0010;
    pub const IGROUPR: u64 = 0x0080;
    pub const ISENABLER: u64 = 0x0100;
    pub const ICENABLER: u64 = 0x0180;
    pub const ISPENDR: u64 = 0x0200;
    pub const ICPENDR: u64 = 0x0280;
    pub const ISACTIVER: u64 = 0x0300;
    pub const ICACTIVER: u64 = 0x0380;
    pub const IPRIORITYR: u64 = 0x0400;
    pub const ITARGETSR: u64 = 0x0800;
    pub const ICFGR: u64 = 0x0C00;
    pub const IGRPMODR: u64 = 0x0D00;
    pub const NSACR: u64 = 0x0E00;
    pub const SGIR: u64 = 0x0F00;
    pub const IROUTER: u64 = 0x6000;
    pub const PIDR2: u64 = 0xFFE8;
    /// GICD_CTLR (DS = 1): EnableGrp0 [0], EnableGrp1 [1], ARE [4], DS [6], RWP [31].
    pub const CTLR_ENABLE_GRP0: u64 = 1 << 0;
    pub const CTLR_ENABLE_GRP1: u64 = 1 << 1;
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
    pub const ICPENDR0: u64 = SGI + 0x0280;
    pub const ISACTIVER0: u64 = SGI + 0x0300;
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

/// `ICH_LR<n>_EL2`: State [63:62], HW [61], Group [60], Priority [55:48],
/// pINTID [44:32], vINTID [31:0].
pub(super) mod lr {
    pub const PENDING: u64 = 1 << 62;
    pub const ACTIVE: u64 = 1 << 63;
    pub const HW: u64 = 1 << 61;
    pub const GROUP1: u64 = 1 << 60;
    pub const PRIORITY_SHIFT: u32 = 48;
    pub const PINTID_SHIFT: u32 = 32;

    pub fn intid(value: u64) -> u32 {
        value as u32
    }

    pub fn priority(value: u64) -> u8 {
        (value >> PRIORITY_SHIFT) as u8
    }
}

/// `ICH_HCR_EL2`: UIE [1], NPIE [3].
pub(super) const ICH_HCR_UIE: u64 = 1 << 1;
pub(super) const ICH_HCR_NPIE: u64 = 1 << 3;

/// Where QEMU `virt` puts the first redistributor relative to the distributor
/// (`0x080a_0000 - 0x0800_0000`).
pub(super) const REDISTRIBUTORS: u64 = 0xA_0000;

/// The INTID of the virtual timer's PPI and of the UART's SPI on QEMU `virt`.
pub(super) const VTIMER: u32 = 27;
pub(super) const UART: u32 = 33;

/// Linux's default interrupt priority (`GICD_INT_DEF_PRI`).
pub(super) const LINUX_PRIORITY: u8 = 0xA0;

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
    write(
        gic,
        gicd::CTLR,
        W,
        gicd::CTLR_ENABLE_GRP1 | gicd::CTLR_ENABLE_GRP0,
    );
    write(
        gic,
        gicd::IROUTER + 8 * u64::from(intid),
        D,
        vcpu_mpidr(vcpu),
    );
    write(
        gic,
        gicd::IPRIORITYR + u64::from(intid),
        B,
        u64::from(priority),
    );
    write(
        gic,
        gicd::ISENABLER + 4 * u64::from(intid / 32),
        W,
        1 << (intid % 32),
    );
}

/// Enables both groups and private interrupt `intid` of `vcpu` with `priority`.
pub(super) fn enable_private(gic: &mut VgicV3, vcpu: usize, intid: u32, priority: u8) {
    write(
        gic,
        gicd::CTLR,
        W,
        gicd::CTLR_ENABLE_GRP1 | gicd::CTLR_ENABLE_GRP0,
    );
    write(
        gic,
        rdist(vcpu, gicr::IPRIORITYR0 + u64::from(intid)),
        B,
        u64::from(priority),
    );
    write(gic, rdist(vcpu, gicr::ISENABLER0), W, 1 << intid);
}

/// The affinity Aerie gives vCPU `index` (Aff1 = index / 16, Aff0 = index % 16), as
/// an MPIDR / IROUTER value.
pub(super) const fn vcpu_mpidr(index: usize) -> u64 {
    ((index as u64 / 16) << 8) | (index as u64 % 16)
}

/// A simulated virtual CPU interface holding a vCPU's list registers: the guest
/// acknowledges the highest-priority pending one (pending -> active) and deactivates
/// (active -> invalid, or pending if it was pending and active), as IHI 0069H
/// describes for list registers.
pub(super) struct CpuInterface {
    pub lrs: Vec<u64>,
}

impl CpuInterface {
    /// Loads the plan into `count` list registers (zero after the plan).
    pub fn load(plan: &LrPlan, count: usize) -> Self {
        Self {
            lrs: (0..count).map(|n| plan.value(n)).collect(),
        }
    }

    /// Flushes `vcpu` into `count` list registers.
    pub fn enter(gic: &mut VgicV3, vcpu: usize, count: usize) -> Self {
        Self::load(&gic.flush(vcpu, count), count)
    }

    /// The INTIDs listed in any state.
    pub fn listed(&self) -> Vec<u32> {
        self.lrs
            .iter()
            .filter(|&&v| v & (lr::PENDING | lr::ACTIVE) != 0)
            .map(|&v| lr::intid(v))
            .collect()
    }

    /// The guest reads ICV_IAR1_EL1: the highest-priority LR that is pending and not
    /// active becomes active.
    pub fn acknowledge(&mut self) -> Option<u32> {
        let (index, _) = self
            .lrs
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v & (lr::PENDING | lr::ACTIVE) == lr::PENDING)
            .min_by_key(|&(_, &v)| lr::priority(v))?;
        self.lrs[index] = (self.lrs[index] & !lr::PENDING) | lr::ACTIVE;
        Some(lr::intid(self.lrs[index]))
    }

    /// The guest writes `intid` to ICV_EOIR1_EL1 (EOImode 0: drop and deactivate).
    pub fn deactivate(&mut self, intid: u32) {
        for value in &mut self.lrs {
            if lr::intid(*value) == intid && *value & lr::ACTIVE != 0 {
                *value &= !lr::ACTIVE;
            }
        }
    }

    /// Acknowledges and deactivates everything pending, returning the INTIDs in order.
    pub fn handle_all(&mut self) -> Vec<u32> {
        let mut handled = Vec::new();
        while let Some(intid) = self.acknowledge() {
            self.deactivate(intid);
            handled.push(intid);
        }
        handled
    }

    /// Exits: hands the list registers back.
    pub fn exit(self, gic: &mut VgicV3, vcpu: usize) {
        gic.sync(vcpu, &self.lrs);
    }
}

/// Runs `vcpu` with `count` list registers until nothing is pending: the guest
/// handles everything listed, and the vCPU exits (maintenance interrupt or not) and
/// re-enters while the vGIC has more. Returns the INTIDs in the order handled.
pub(super) fn run_until_idle(gic: &mut VgicV3, vcpu: usize, count: usize) -> Vec<u32> {
    let mut handled = Vec::new();
    for _ in 0..64 {
        let mut cpu = CpuInterface::enter(gic, vcpu, count);
        let round = cpu.handle_all();
        cpu.exit(gic, vcpu);
        if round.is_empty() {
            break;
        }
        handled.extend(round);
    }
    handled
}
