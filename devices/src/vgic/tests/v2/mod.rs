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

pub(super) use super::{
    B, CpuInterfaceModel, D, H, LINUX_PRIORITY, Lr, TestGic, UART, VTIMER, W, same_for_both,
};
use crate::mmio::AccessWidth;
use crate::vgic::{IrqSnapshot, LrPlan, Vgic, VgicError, VgicV2, VgicV2Config, VgicV2State};
use std::vec::Vec;

/// Distributor registers (IHI 0048B.b Table 4-1).
pub(super) mod gicd {
    pub use super::super::block::*;
    /// IMPLEMENTATION DEFINED (GIC-400: GICD_PPISR, GICD_SPISRn).
    pub const IMPDEF: u64 = 0xD00;
    pub const CPENDSGIR: u64 = 0xF10;
    pub const SPENDSGIR: u64 = 0xF20;
    pub const ICPIDR2: u64 = 0xFE8;
}

/// `GICD_SGIR`: TargetListFilter [25:24], CPUTargetList [23:16], SGIINTID [3:0].
pub(super) fn sgir(filter: u64, targets: u64, intid: u64) -> u64 {
    (filter << 24) | (targets << 16) | intid
}

/// `GICH_LRn`: HW [31], Grp1 [30], State [29:28], Priority [27:23] (priority bits
/// [7:3]), PhysicalID [19:10] with HW = 1, or EOI [19] and CPUID [12:10] with
/// HW = 0, VirtualID [9:0].
pub(super) mod lr {
    pub const HW: u64 = 1 << 31;
    pub const GRP1: u64 = 1 << 30;
    pub const ACTIVE: u64 = 1 << 29;
    pub const PENDING: u64 = 1 << 28;
    pub const STATE: u64 = PENDING | ACTIVE;
    pub const EOI: u64 = 1 << 19;
    pub const PHYSICAL_SHIFT: u32 = 10;
    pub const CPUID_SHIFT: u32 = 10;

    /// The Priority field for an 8-bit priority.
    pub const fn priority(priority: u8) -> u64 {
        ((priority as u64) >> 3) << 23
    }

    pub const fn intid(value: u64) -> u32 {
        (value & 0x3FF) as u32
    }

    pub const fn cpuid(value: u64) -> u32 {
        ((value >> CPUID_SHIFT) & 0x7) as u32
    }

    /// The priority a list register holds, as an 8-bit value.
    pub const fn priority_of(value: u64) -> u8 {
        (((value >> 23) & 0x1F) << 3) as u8
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

/// A simulated GICv2 virtual CPU interface holding a vCPU's list registers: the guest
/// reads `GICV_IAR` (the highest-priority pending list register becomes active; the
/// value carries CPUID for SGIs) and writes `GICV_EOIR` (EOImode 0: the list
/// register with that interrupt ID and CPUID is deactivated), as IHI 0048B.b chapter
/// 5 describes. A deactivated list register with `EOI` set raises the EOI
/// maintenance interrupt (`GICH_MISR.EOI`).
pub struct Gicv {
    pub lrs: Vec<u64>,
    /// `GICH_MISR.EOI`: a list register with EOI = 1 became invalid.
    pub eoi_maintenance: bool,
}

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

impl CpuInterfaceModel for Gicv {
    /// Loads the plan, checking that every value fits a 32-bit `GICH_LRn`.
    fn load(plan: &LrPlan, count: usize) -> Self {
        let lrs: Vec<u64> = (0..count).map(|n| plan.value(n)).collect();
        for &value in &lrs {
            assert_eq!(value >> 32, 0, "GICH_LRn is 32 bits: {value:#x}");
        }
        Self {
            lrs,
            eoi_maintenance: false,
        }
    }

    fn lrs(&self) -> &[u64] {
        &self.lrs
    }

    fn encode(entry: Lr) -> u64 {
        let mut value = u64::from(entry.intid) | lr::priority(entry.priority);
        if entry.pending {
            value |= lr::PENDING;
        }
        if entry.active {
            value |= lr::ACTIVE;
        }
        if entry.group1 {
            value |= lr::GRP1;
        }
        if let Some(physical) = entry.physical {
            value |= lr::HW | (u64::from(physical) << lr::PHYSICAL_SHIFT);
        }
        value
    }

    fn decode(value: u64) -> Lr {
        Lr {
            intid: lr::intid(value),
            pending: value & lr::PENDING != 0,
            active: value & lr::ACTIVE != 0,
            priority: lr::priority_of(value),
            group1: value & lr::GRP1 != 0,
            physical: (value & lr::HW != 0).then_some((value >> lr::PHYSICAL_SHIFT) as u32 & 0x3FF),
        }
    }

    /// The guest reads GICV_IAR.
    fn acknowledge(&mut self) -> Option<u32> {
        let (index, _) = self
            .lrs
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v & lr::STATE == lr::PENDING)
            .min_by_key(|&(_, &v)| lr::priority_of(v))?;
        let value = &mut self.lrs[index];
        *value = (*value & !lr::PENDING) | lr::ACTIVE;
        let cpuid = if *value & lr::HW != 0 {
            0
        } else {
            lr::cpuid(*value)
        };
        Some(iar(lr::intid(*value), cpuid))
    }

    /// The guest writes the IAR value to GICV_EOIR.
    fn deactivate(&mut self, iar: u32) {
        let (intid, cpuid) = (iar & 0x3FF, (iar >> 10) & 0x7);
        for value in &mut self.lrs {
            let source = if *value & lr::HW != 0 {
                0
            } else {
                lr::cpuid(*value)
            };
            if lr::intid(*value) == intid && source == cpuid && *value & lr::ACTIVE != 0 {
                *value &= !lr::ACTIVE;
                if *value & lr::STATE == 0 && *value & (lr::HW | lr::EOI) == lr::EOI {
                    self.eoi_maintenance = true;
                }
                return;
            }
        }
    }

    fn eoi_maintenance(&self) -> bool {
        self.eoi_maintenance
    }
}

impl TestGic for VgicV2 {
    type Cpu = Gicv;
    type State = VgicV2State;
    const RESET_GROUP1: bool = false;

    fn with_vcpus(vcpus: usize) -> Self {
        vgic(vcpus)
    }

    fn read_gicd(&mut self, offset: u64, width: AccessWidth) -> u64 {
        read(self, 0, offset, width)
    }

    fn write_gicd(&mut self, offset: u64, width: AccessWidth, value: u64) {
        write(self, 0, offset, width, value);
    }

    /// The banked registers, as `vcpu` itself reads them.
    fn read_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        read(self, vcpu, offset, width)
    }

    fn write_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        write(self, vcpu, offset, width, value);
    }

    fn route(&mut self, intid: u32, vcpu: usize) {
        write(self, 0, gicd::ITARGETSR + u64::from(intid), B, 1 << vcpu);
    }

    fn unroute(&mut self, intid: u32) {
        write(self, 0, gicd::ITARGETSR + u64::from(intid), B, 0);
    }

    same_for_both!();
}
