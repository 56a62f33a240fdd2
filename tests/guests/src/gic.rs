//! The guest's GIC, found in its device tree: a GICv3 (distributor and
//! redistributors, system-register CPU interface) or a GICv2 (distributor and
//! memory-mapped CPU interface). Enough to take private interrupts on one vCPU.

use crate::device::{read32, write8, write32};
use crate::shared::Shared;
use crate::{cpu, devtree, read_icc, write_icc};

/// Register offsets both GIC versions share (per-interrupt blocks at the
/// distributor, and in the GICv3 redistributor's SGI frame).
pub mod reg {
    /// GICD_CTLR.
    pub const GICD_CTLR: u64 = 0x000;
    /// Interrupt group registers.
    pub const IGROUPR: u64 = 0x080;
    /// Set-enable registers.
    pub const ISENABLER: u64 = 0x100;
    /// Clear-enable registers.
    pub const ICENABLER: u64 = 0x180;
    /// Set-pending registers.
    pub const ISPENDR: u64 = 0x200;
    /// Set-active registers.
    pub const ISACTIVER: u64 = 0x300;
    /// Clear-active registers.
    pub const ICACTIVER: u64 = 0x380;
    /// Priority registers, a byte per INTID.
    pub const IPRIORITYR: u64 = 0x400;
    /// GICv2 only: one target byte per INTID.
    pub const ITARGETSR: u64 = 0x800;
    /// GICv2 only: the SGI register.
    pub const SGIR: u64 = 0xF00;
    /// GICv3 only: 64-bit routing per INTID.
    pub const IROUTER: u64 = 0x6000;
    /// GICv3 redistributor: GICR_WAKER.
    pub const GICR_WAKER: u64 = 0x0014;
    /// GICR_WAKER.ProcessorSleep.
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    /// GICR_WAKER.ChildrenAsleep.
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
    /// The SGI frame's offset in a redistributor.
    pub const SGI_FRAME: u64 = 0x1_0000;
    /// The distance between two redistributors.
    pub const GICR_STRIDE: u64 = 0x2_0000;
    /// GICv2 CPU interface: GICC_CTLR.
    pub const GICC_CTLR: u64 = 0x000;
    /// GICv2 CPU interface: GICC_PMR.
    pub const GICC_PMR: u64 = 0x004;
    /// GICv2 CPU interface: GICC_IAR.
    pub const GICC_IAR: u64 = 0x00C;
    /// GICv2 CPU interface: GICC_EOIR.
    pub const GICC_EOIR: u64 = 0x010;
}

/// How long a redistributor may take to wake up, in ms.
const WAKE_MS: u64 = 5_000;

/// The GIC version (3 or 2; 0 before [`discover`]).
static VERSION: Shared = Shared::new(0);
/// The distributor.
static GICD: Shared = Shared::new(0);
/// GICv3: the first redistributor; GICv2: the CPU interface.
static SECOND: Shared = Shared::new(0);

/// The GIC version [`discover`] found: 3 or 2.
pub fn version() -> u64 {
    VERSION.load()
}

/// Whether the GIC is a GICv3.
pub fn v3() -> bool {
    version() == 3
}

/// The distributor's address.
pub fn distributor() -> u64 {
    GICD.load()
}

/// Finds the GIC in the device tree; false if there is none.
pub fn discover() -> bool {
    let found = devtree::with_device_tree(|tree| {
        let regs = |compatible: &[&str]| {
            let node = tree.find_compatible(compatible)?;
            let mut reg = node.reg()?;
            let first = reg.next()?.starting_address as u64;
            let second = reg.next()?.starting_address as u64;
            Some((first, second))
        };
        if let Some((distributor, redistributors)) = regs(&["arm,gic-v3"]) {
            Some((3, distributor, redistributors))
        } else {
            regs(&["arm,gic-400", "arm,cortex-a15-gic"])
                .map(|(distributor, cpu_interface)| (2, distributor, cpu_interface))
        }
    });
    let Ok(Some((version, distributor, second))) = found else {
        return false;
    };
    VERSION.store(version);
    GICD.store(distributor);
    SECOND.store(second);
    true
}

/// vCPU `vcpu`'s redistributor SGI frame (GICv3) or the distributor (GICv2, whose
/// SGI and PPI registers are banked by the accessing CPU).
pub fn private_frame(vcpu: u64) -> u64 {
    if v3() {
        SECOND.load() + vcpu * reg::GICR_STRIDE + reg::SGI_FRAME
    } else {
        GICD.load()
    }
}

/// Turns the distributor on: GICv3 with affinity routing and both groups, GICv2
/// with Group 0 (the reset group of its interrupts).
pub fn enable_distributor() {
    let ctlr = if v3() { (1 << 4) | (1 << 1) | 1 } else { 1 };
    write32(GICD.load() + reg::GICD_CTLR, ctlr);
}

/// Sets up vCPU `vcpu`'s interface (call on that vCPU): its redistributor awake and
/// its private interrupts in Group 1 (GICv3), the private interrupts in `enabled`
/// (a bit per INTID 0 to 31) at `priority` and enabled, the CPU interface on with
/// every priority unmasked.
pub fn enable_cpu_interface(vcpu: u64, enabled: u32, priority: u8) {
    let frame = private_frame(vcpu);
    if v3() {
        let rd = SECOND.load() + vcpu * reg::GICR_STRIDE;
        let waker = read32(rd + reg::GICR_WAKER);
        write32(rd + reg::GICR_WAKER, waker & !reg::WAKER_PROCESSOR_SLEEP);
        cpu::wait_until(WAKE_MS, || {
            read32(rd + reg::GICR_WAKER) & reg::WAKER_CHILDREN_ASLEEP == 0
        });
        write32(frame + reg::IGROUPR, u32::MAX);
    }
    for intid in (0..32u32).filter(|intid| enabled & (1 << intid) != 0) {
        write8(frame + reg::IPRIORITYR + u64::from(intid), priority);
    }
    write32(frame + reg::ISENABLER, enabled);
    if v3() {
        write_icc!("ICC_SRE_EL1", 0b111);
        write_icc!("ICC_PMR_EL1", 0xFF);
        write_icc!("ICC_BPR1_EL1", 0);
        write_icc!("ICC_IGRPEN1_EL1", 1);
    } else {
        let cpu_interface = SECOND.load();
        write32(cpu_interface + reg::GICC_PMR, 0xFF);
        write32(cpu_interface + reg::GICC_CTLR, 1);
    }
}

/// Acknowledges the highest-priority pending interrupt: the raw IAR value (the
/// INTID in bits 9:0; 1020 and above: none).
pub fn acknowledge() -> u64 {
    if v3() {
        read_icc!("ICC_IAR1_EL1")
    } else {
        u64::from(read32(SECOND.load() + reg::GICC_IAR))
    }
}

/// Ends the interrupt `iar` (as [`acknowledge`] returned it).
pub fn end(iar: u64) {
    if v3() {
        write_icc!("ICC_EOIR1_EL1", iar);
    } else {
        write32(SECOND.load() + reg::GICC_EOIR, iar as u32);
    }
}

/// Whether private interrupt `intid` of vCPU `vcpu` reads pending (ISPENDR).
pub fn private_pending(vcpu: u64, intid: u32) -> bool {
    read32(private_frame(vcpu) + reg::ISPENDR) & (1 << (intid % 32)) != 0
}
