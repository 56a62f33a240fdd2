//! Host tests of the GICv2 front-end through its public interface: the guest's
//! distributor accesses go through [`Vgic::mmio_read`] / [`Vgic::mmio_write`] as a
//! given vCPU, at offsets from the distributor's base, and a small simulated GICv2
//! virtual CPU interface (`GICV`) acknowledges and ends interrupts in the list
//! registers the way the hardware does.
//!
//! The register offsets and fields below are restated from IHI 0048B.b (section
//! 4.1.2 "Distributor register map", section 4.3 register descriptions, chapter 5
//! for `GICH_LRn` and `GICH_HCR`), independently of the constants in the model.

mod delivery;
mod linux_boot;
mod registers;
mod save_restore;
mod sgis;

use crate::mmio::AccessWidth;
use crate::vgic::{LrPlan, Vgic, VgicV2, VgicV2Config};
use std::vec::Vec;

pub(super) use super::{B, D, H, W};

/// Distributor registers (IHI 0048B.b Table 4-1).
pub(super) mod gicd {
    pub const CTLR: u64 = 0x000;
    pub const TYPER: u64 = 0x004;
    pub const IIDR: u64 = 0x008;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const ICENABLER: u64 = 0x180;
    pub const ISPENDR: u64 = 0x200;
    pub const ICPENDR: u64 = 0x280;
    pub const ISACTIVER: u64 = 0x300;
    pub const ICACTIVER: u64 = 0x380;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ITARGETSR: u64 = 0x800;
    pub const ICFGR: u64 = 0xC00;
    /// IMPLEMENTATION DEFINED (GIC-400: GICD_PPISR, GICD_SPISRn).
    pub const IMPDEF: u64 = 0xD00;
    pub const NSACR: u64 = 0xE00;
    pub const SGIR: u64 = 0xF00;
    pub const CPENDSGIR: u64 = 0xF10;
    pub const SPENDSGIR: u64 = 0xF20;
    pub const ICPIDR2: u64 = 0xFE8;
    /// GICD_CTLR without the Security Extensions: EnableGrp0 [0], EnableGrp1 [1].
    pub const CTLR_ENABLE_GRP0: u64 = 1 << 0;
    pub const CTLR_ENABLE_GRP1: u64 = 1 << 1;
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

/// `GICH_HCR`: UIE [1], NPIE [3].
pub(super) const GICH_HCR_UIE: u64 = 1 << 1;
pub(super) const GICH_HCR_NPIE: u64 = 1 << 3;

/// The INTIDs of the virtual timer's PPI and of the guest UART's SPI.
pub(super) const VTIMER: u32 = 27;
pub(super) const UART: u32 = 33;

/// Linux's default interrupt priority (`GICD_INT_DEF_PRI`).
pub(super) const LINUX_PRIORITY: u8 = 0xA0;

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
    let both = gicd::CTLR_ENABLE_GRP0 | gicd::CTLR_ENABLE_GRP1;
    write(gic, 0, gicd::CTLR, W, both);
    let intid = u64::from(intid);
    write(gic, 0, gicd::ITARGETSR + intid, B, 1 << vcpu);
    write(gic, 0, gicd::IPRIORITYR + intid, B, u64::from(priority));
    write(
        gic,
        0,
        gicd::ISENABLER + 4 * (intid / 32),
        W,
        1 << (intid % 32),
    );
}

/// Enables both groups, and private interrupt `intid` of `vcpu` with `priority`
/// (the banked registers, written by `vcpu` itself).
pub(super) fn enable_private(gic: &mut VgicV2, vcpu: usize, intid: u32, priority: u8) {
    let both = gicd::CTLR_ENABLE_GRP0 | gicd::CTLR_ENABLE_GRP1;
    write(gic, vcpu, gicd::CTLR, W, both);
    let intid = u64::from(intid);
    write(gic, vcpu, gicd::IPRIORITYR + intid, B, u64::from(priority));
    write(gic, vcpu, gicd::ISENABLER, W, 1 << intid);
}

/// Configures SPI `intid` as edge-triggered (GICD_ICFGRn Int_config[1]).
pub(super) fn make_edge(gic: &mut VgicV2, intid: u32) {
    let offset = gicd::ICFGR + 4 * u64::from(intid / 16);
    let value = read(gic, 0, offset, W) | (0b10 << (2 * (intid % 16)));
    write(gic, 0, offset, W, value);
}

/// A simulated GICv2 virtual CPU interface holding a vCPU's list registers: the guest
/// reads `GICV_IAR` (the highest-priority pending list register becomes active; the
/// value carries CPUID for SGIs) and writes `GICV_EOIR` (EOImode 0: the list
/// register with that interrupt ID and CPUID is deactivated), as IHI 0048B.b chapter
/// 5 describes. A deactivated list register with `EOI` set raises the EOI
/// maintenance interrupt (`GICH_MISR.EOI`).
pub(super) struct Gicv {
    pub lrs: Vec<u64>,
    /// `GICH_MISR.EOI`: a list register with EOI = 1 became invalid.
    pub eoi_maintenance: bool,
}

impl Gicv {
    /// Loads the plan into `count` list registers (zero after the plan), checking
    /// that every value fits a 32-bit `GICH_LRn`.
    pub fn load(plan: &LrPlan, count: usize) -> Self {
        let lrs: Vec<u64> = (0..count).map(|n| plan.value(n)).collect();
        for &value in &lrs {
            assert_eq!(value >> 32, 0, "GICH_LRn is 32 bits: {value:#x}");
        }
        Self {
            lrs,
            eoi_maintenance: false,
        }
    }

    /// Flushes `vcpu` into `count` list registers.
    pub fn enter(gic: &mut VgicV2, vcpu: usize, count: usize) -> Self {
        Self::load(&gic.flush(vcpu, count), count)
    }

    /// The (INTID, CPUID) of every valid list register.
    pub fn listed(&self) -> Vec<(u32, u32)> {
        self.lrs
            .iter()
            .filter(|&&v| v & lr::STATE != 0)
            .map(|&v| (lr::intid(v), if v & lr::HW != 0 { 0 } else { lr::cpuid(v) }))
            .collect()
    }

    /// The guest reads GICV_IAR.
    pub fn acknowledge(&mut self) -> Option<u32> {
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
    pub fn end_of_interrupt(&mut self, iar: u32) {
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

    /// Acknowledges and ends everything pending, returning the IAR values in order.
    pub fn handle_all(&mut self) -> Vec<u32> {
        let mut handled = Vec::new();
        while let Some(iar) = self.acknowledge() {
            self.end_of_interrupt(iar);
            handled.push(iar);
        }
        handled
    }

    /// Exits: hands the list registers back (zero-extended, as read from GICH_LRn).
    pub fn exit(self, gic: &mut VgicV2, vcpu: usize) {
        gic.sync(vcpu, &self.lrs);
    }
}

/// Runs `vcpu` with `count` list registers until nothing is pending: the guest
/// handles everything listed, and the vCPU exits (maintenance interrupt or not) and
/// re-enters while the vGIC has more. Returns the IAR values in the order handled.
pub(super) fn run_until_idle(gic: &mut VgicV2, vcpu: usize, count: usize) -> Vec<u32> {
    let mut handled = Vec::new();
    for _ in 0..64 {
        let mut cpu = Gicv::enter(gic, vcpu, count);
        let round = cpu.handle_all();
        cpu.exit(gic, vcpu);
        if round.is_empty() {
            break;
        }
        handled.extend(round);
    }
    handled
}
