//! The host's GICv3: distributor and redistributors (memory-mapped), the EL2
//! system-register CPU interface, and the virtualization interface (ICH_*).
//!
//! Aerie owns every physical interrupt (HCR_EL2.IMO). It uses few: the guest's
//! virtual timer (PPI 27), the maintenance interrupt (PPI 25), the console UART's
//! SPI, and one SGI to kick another CPU out of its guest. The CPU interface runs
//! with EOImode = 1, so priority drop (EOIR) and deactivation (DIR) are separate:
//! for the virtual timer Aerie only drops priority, and the guest's own
//! deactivation of the hardware-mapped virtual interrupt deactivates the physical
//! one.
//!
//! Reference: Arm GIC architecture specification v3/v4 (IHI 0069), chapters 12
//! (register descriptions) and 4.5 (virtualization).

use aerie_hyp::memory::Range;
use aerie_hyp::vcpu::{GicCpuInterface, ICC_SRE_EL1_BITS};
use core::arch::asm;

/// GICD_CTLR: distributor control.
const GICD_CTLR: usize = 0x0000;
/// GICD_TYPER: how many SPIs exist.
const GICD_TYPER: usize = 0x0004;
/// GICD_IGROUPR<n>: group of each interrupt.
const GICD_IGROUPR: usize = 0x0080;
/// GICD_ISENABLER<n>: set-enable.
const GICD_ISENABLER: usize = 0x0100;
/// GICD_ICENABLER<n>: clear-enable.
const GICD_ICENABLER: usize = 0x0180;
/// GICD_ICPENDR<n>: clear-pending.
const GICD_ICPENDR: usize = 0x0280;
/// GICD_ICACTIVER<n>: clear-active.
const GICD_ICACTIVER: usize = 0x0380;
/// GICD_IPRIORITYR<n>: one priority byte per interrupt.
const GICD_IPRIORITYR: usize = 0x0400;
/// GICD_IROUTER<n>: 64-bit affinity routing of SPI n.
const GICD_IROUTER: usize = 0x6000;

/// GICD_CTLR.EnableGrp1 (non-secure group 1 with a single security state).
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR.ARE: affinity routing.
const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR.RWP: a register write is still taking effect.
const CTLR_RWP: u32 = 1 << 31;

/// GICR_TYPER (64-bit) in the RD frame.
const GICR_TYPER: usize = 0x0008;
/// GICR_WAKER in the RD frame.
const GICR_WAKER: usize = 0x0014;
/// GICR_TYPER.VLPIS: the redistributor has the two extra GICv4 frames.
const TYPER_VLPIS: u64 = 1 << 1;
/// GICR_TYPER.Last: the final redistributor of a region.
const TYPER_LAST: u64 = 1 << 4;
/// GICR_WAKER.ProcessorSleep.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep.
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// Offset of the SGI frame from the RD frame.
const SGI_FRAME: usize = 0x1_0000;
/// Size of one GICv3 redistributor (RD + SGI frames).
const REDISTRIBUTOR_STRIDE: usize = 0x2_0000;
/// Size of one GICv4 redistributor (adds VLPI and reserved frames).
const REDISTRIBUTOR_STRIDE_V4: usize = 0x4_0000;
/// GICR_IGROUPR0 in the SGI frame.
const GICR_IGROUPR0: usize = SGI_FRAME + 0x0080;
/// GICR_ISENABLER0 in the SGI frame.
const GICR_ISENABLER0: usize = SGI_FRAME + 0x0100;
/// GICR_ICENABLER0 in the SGI frame.
const GICR_ICENABLER0: usize = SGI_FRAME + 0x0180;
/// GICR_ICPENDR0 in the SGI frame.
const GICR_ICPENDR0: usize = SGI_FRAME + 0x0280;
/// GICR_ICACTIVER0 in the SGI frame.
const GICR_ICACTIVER0: usize = SGI_FRAME + 0x0380;
/// GICR_IPRIORITYR<n> in the SGI frame.
const GICR_IPRIORITYR: usize = SGI_FRAME + 0x0400;

/// The priority Aerie gives every interrupt it uses (all equal: none preempts).
const PRIORITY: u8 = 0xa0;
/// The priority mask: everything above the lowest priority is signalled.
const PRIORITY_MASK: u64 = 0xf0;

/// The SGI Aerie sends to make another CPU leave its guest and look at its vCPU's
/// pending interrupts.
pub const KICK_SGI: u32 = 8;
/// The maintenance interrupt (PPI 9).
pub const MAINTENANCE_INTID: u32 = 25;
/// The EL1 virtual timer (PPI 11).
pub const VIRTUAL_TIMER_INTID: u32 = 27;
/// The EL2 physical timer (PPI 10), which Aerie arms for the guest's emulated EL1
/// physical timer.
pub const HYPERVISOR_TIMER_INTID: u32 = 26;

/// ICC_SRE_EL2 bits: SRE (system registers at EL2), DFB, DIB, and Enable (EL1 may
/// use the system-register interface: the guest's virtual CPU interface).
const SRE_EL2_VALUE: u64 = 0b1111;
/// ICC_CTLR_EL1.EOImode: EOIR only drops priority; DIR deactivates.
const CTLR_EOIMODE: u64 = 1 << 1;
/// ICH_HCR_EL2.En: the virtual CPU interface is on.
pub const ICH_HCR_EN: u64 = 1 << 0;

/// The host GIC, once the boot CPU has set it up (GICv3 hosts only).
pub static HOST_GIC: spin::Once<HostGic> = spin::Once::new();

/// Memory-mapped GIC registers at a base address.
#[derive(Clone, Copy)]
struct Frame(usize);

impl Frame {
    fn read32(self, offset: usize) -> u32 {
        // SAFETY: `self.0` is a GIC register block from the device tree, mapped as
        // device memory by Aerie's MMU setup; `offset` is a named register offset
        // inside it, 4-byte aligned.
        unsafe { core::ptr::read_volatile((self.0 + offset) as *const u32) }
    }

    fn write32(self, offset: usize, value: u32) {
        // SAFETY: as for `read32`.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u32, value) }
    }

    fn read64(self, offset: usize) -> u64 {
        // SAFETY: as for `read32`, for a 64-bit register at an 8-byte aligned offset.
        unsafe { core::ptr::read_volatile((self.0 + offset) as *const u64) }
    }

    fn write64(self, offset: usize, value: u64) {
        // SAFETY: as for `read64`.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u64, value) }
    }

    fn write8(self, offset: usize, value: u8) {
        // SAFETY: as for `read32`; priority registers are byte-accessible.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u8, value) }
    }
}

/// The host GIC's register blocks.
#[derive(Clone, Copy)]
pub struct HostGic {
    distributor: Frame,
    redistributors: [Option<Range>; 4],
}

impl HostGic {
    /// The GIC whose distributor and redistributor regions the device tree gave.
    pub fn new(distributor: Range, redistributors: &[Range]) -> Self {
        let mut regions = [None; 4];
        for (slot, region) in regions.iter_mut().zip(redistributors) {
            *slot = Some(*region);
        }
        Self {
            distributor: Frame(distributor.start() as usize),
            redistributors: regions,
        }
    }

    fn wait_for_distributor(&self) {
        while self.distributor.read32(GICD_CTLR) & CTLR_RWP != 0 {
            core::hint::spin_loop();
        }
    }

    /// One-time distributor setup on the boot CPU: every SPI disabled, in group 1,
    /// at Aerie's priority; affinity routing and group 1 on.
    pub fn init_distributor(&self) {
        let d = self.distributor;
        d.write32(GICD_CTLR, 0);
        self.wait_for_distributor();
        let lines = ((d.read32(GICD_TYPER) & 0x1f) + 1) * 32;
        for word in 1..lines / 32 {
            let offset = word as usize * 4;
            d.write32(GICD_ICENABLER + offset, u32::MAX);
            d.write32(GICD_ICPENDR + offset, u32::MAX);
            d.write32(GICD_ICACTIVER + offset, u32::MAX);
            d.write32(GICD_IGROUPR + offset, u32::MAX);
        }
        for intid in 32..lines {
            d.write8(GICD_IPRIORITYR + intid as usize, PRIORITY);
        }
        self.wait_for_distributor();
        d.write32(GICD_CTLR, CTLR_ARE | CTLR_ENABLE_GRP1);
        self.wait_for_distributor();
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` and enables it.
    pub fn enable_spi(&self, intid: u32, mpidr: u64) {
        let d = self.distributor;
        d.write64(GICD_IROUTER + intid as usize * 8, mpidr & 0xff_00ff_ffff);
        d.write32(
            GICD_ISENABLER + (intid as usize / 32) * 4,
            1 << (intid % 32),
        );
    }

    /// Enables private interrupt `intid` (a PPI) of the CPU with affinity `mpidr`
    /// (GICR_ISENABLER0 in its redistributor); false if it has none.
    pub fn enable_private(&self, intid: u32, mpidr: u64) -> bool {
        let Some(r) = self.redistributor_of(mpidr) else {
            return false;
        };
        r.write32(GICR_ISENABLER0, 1 << (intid % 32));
        true
    }

    /// The redistributor of the CPU with affinity `mpidr`.
    fn redistributor_of(&self, mpidr: u64) -> Option<Frame> {
        let affinity = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
        for region in self.redistributors.iter().flatten() {
            let mut base = region.start() as usize;
            while (base as u64) < region.end() {
                let frame = Frame(base);
                let typer = frame.read64(GICR_TYPER);
                if typer >> 32 == affinity {
                    return Some(frame);
                }
                if typer & TYPER_LAST != 0 {
                    break;
                }
                base += if typer & TYPER_VLPIS != 0 {
                    REDISTRIBUTOR_STRIDE_V4
                } else {
                    REDISTRIBUTOR_STRIDE
                };
            }
        }
        None
    }

    /// Per-CPU setup: wakes this CPU's redistributor, enables the kick SGI, the
    /// maintenance interrupt and the virtual timer PPI, and turns on the EL2 CPU
    /// interface. Returns false if this CPU has no redistributor.
    pub fn init_cpu(&self, mpidr: u64) -> bool {
        let Some(r) = self.redistributor_of(mpidr) else {
            return false;
        };
        r.write32(GICR_WAKER, r.read32(GICR_WAKER) & !WAKER_PROCESSOR_SLEEP);
        while r.read32(GICR_WAKER) & WAKER_CHILDREN_ASLEEP != 0 {
            core::hint::spin_loop();
        }
        r.write32(GICR_ICENABLER0, u32::MAX);
        r.write32(GICR_ICPENDR0, u32::MAX);
        r.write32(GICR_ICACTIVER0, u32::MAX);
        r.write32(GICR_IGROUPR0, u32::MAX);
        for intid in 0..32 {
            r.write8(GICR_IPRIORITYR + intid, PRIORITY);
        }
        let enabled = (1 << KICK_SGI)
            | (1 << MAINTENANCE_INTID)
            | (1 << VIRTUAL_TIMER_INTID)
            | (1 << HYPERVISOR_TIMER_INTID);
        r.write32(GICR_ISENABLER0, enabled);
        cpu_interface_on();
        true
    }
}

/// Turns on this CPU's system-register interface at EL2 and the virtual interface.
fn cpu_interface_on() {
    // SAFETY: these registers configure how this CPU takes physical interrupts and
    // whether the guest's GIC interface is enabled; Aerie runs with interrupts
    // masked at EL2 (it only takes them as guest exits), so nothing is preempted.
    unsafe {
        asm!(
            "msr ICC_SRE_EL2, {sre}",
            "isb",
            "msr ICC_PMR_EL1, {pmr}",
            "msr ICC_BPR1_EL1, xzr",
            "msr ICC_CTLR_EL1, {ctlr}",
            "mov {tmp}, #1",
            "msr ICC_IGRPEN1_EL1, {tmp}",
            "msr ICH_VMCR_EL2, xzr",
            "msr ICH_HCR_EL2, {hcr}",
            "isb",
            sre = in(reg) SRE_EL2_VALUE,
            pmr = in(reg) PRIORITY_MASK,
            ctlr = in(reg) CTLR_EOIMODE,
            hcr = in(reg) ICH_HCR_EN,
            tmp = out(reg) _,
            options(nostack, preserves_flags),
        );
    }
}

/// Acknowledges the highest-priority pending interrupt; 1023 if none.
pub fn acknowledge() -> u32 {
    let intid: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt (makes it active);
    // the caller ends it with `end_of_interrupt`.
    unsafe { asm!("mrs {}, ICC_IAR1_EL1", out(reg) intid, options(nostack, preserves_flags)) };
    (intid & 0xff_ffff) as u32
}

/// Priority drop for `intid` (EOImode = 1: it stays active until deactivated).
pub fn end_of_interrupt(intid: u32) {
    // SAFETY: ends the priority of an interrupt this CPU acknowledged.
    unsafe {
        asm!("msr ICC_EOIR1_EL1, {}", in(reg) u64::from(intid), options(nostack, preserves_flags))
    };
}

/// Deactivates `intid`.
pub fn deactivate(intid: u32) {
    // SAFETY: deactivating an interrupt this CPU acknowledged.
    unsafe {
        asm!("msr ICC_DIR_EL1, {}", in(reg) u64::from(intid), options(nostack, preserves_flags))
    };
}

/// Sends [`KICK_SGI`] to the CPU with affinity `mpidr`.
pub fn kick(mpidr: u64) {
    let aff0 = mpidr & 0xff;
    let value = ((mpidr >> 32) & 0xff) << 48
        | ((aff0 / 16) << 44)
        | ((mpidr >> 16) & 0xff) << 32
        | u64::from(KICK_SGI) << 24
        | ((mpidr >> 8) & 0xff) << 16
        | 1 << (aff0 % 16);
    // SAFETY: generating an SGI only makes the target CPU take an interrupt.
    unsafe {
        asm!("msr ICC_SGI1R_EL1, {}", "isb", in(reg) value, options(nostack, preserves_flags));
    }
}

/// How many list registers this CPU has (ICH_VTR_EL2.ListRegs + 1).
pub fn list_register_count() -> usize {
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effects.
    unsafe { asm!("mrs {}, ICH_VTR_EL2", out(reg) vtr, options(nomem, nostack, preserves_flags)) };
    ((vtr & 0x1f) + 1) as usize
}

/// Reads or writes one list register by number.
macro_rules! list_register_access {
    ($($n:literal),*) => {
        /// Reads ICH_LR<n>_EL2.
        pub fn read_list_register(n: usize) -> u64 {
            let value: u64;
            match n {
                $(
                    // SAFETY: reading a list register has no side effects.
                    $n => unsafe {
                        asm!(concat!("mrs {}, ICH_LR", $n, "_EL2"), out(reg) value,
                            options(nomem, nostack, preserves_flags))
                    },
                )*
                _ => value = 0,
            }
            value
        }

        /// Writes ICH_LR<n>_EL2.
        pub fn write_list_register(n: usize, value: u64) {
            match n {
                $(
                    // SAFETY: a list register only presents a virtual interrupt to
                    // the guest on this CPU.
                    $n => unsafe {
                        asm!(concat!("msr ICH_LR", $n, "_EL2, {}"), in(reg) value,
                            options(nostack, preserves_flags))
                    },
                )*
                _ => {}
            }
        }
    };
}

list_register_access!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

/// Writes ICH_HCR_EL2.
pub fn write_hcr(value: u64) {
    // SAFETY: enables the virtual CPU interface and its maintenance interrupts.
    unsafe { asm!("msr ICH_HCR_EL2, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Reads ICH_HCR_EL2 (for its EOIcount field).
pub fn read_hcr() -> u64 {
    let value: u64;
    // SAFETY: reading the virtual interface's control register has no side effects.
    unsafe {
        asm!("mrs {}, ICH_HCR_EL2", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// ICH_VTR_EL2.PREbits, bits \[31:29\]: preemption bits implemented, minus one.
const VTR_PREBITS_SHIFT: u64 = 29;

/// How many of each group's active-priority registers exist (ICH_AP0R<n>_EL2 and
/// ICH_AP1R<n>_EL2): 1 with 5 preemption bits, 2 with 6, 4 with 7.
fn active_priority_registers() -> usize {
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effects.
    unsafe { asm!("mrs {}, ICH_VTR_EL2", out(reg) vtr, options(nomem, nostack, preserves_flags)) };
    let preemption_bits = ((vtr >> VTR_PREBITS_SHIFT) & 0b111) + 1;
    match preemption_bits {
        7 => 4,
        6 => 2,
        _ => 1,
    }
}

/// Reads or writes the active-priority registers by number.
macro_rules! active_priority_access {
    ($($n:literal),*) => {
        /// Reads ICH_AP0R<n>_EL2 (`group1` false) or ICH_AP1R<n>_EL2.
        fn read_active_priority(group1: bool, n: usize) -> u32 {
            let value: u64;
            match (group1, n) {
                $(
                    // SAFETY: reading an active-priority register has no side effects;
                    // `n` is below `active_priority_registers()`, so it exists.
                    (false, $n) => unsafe {
                        asm!(concat!("mrs {}, ICH_AP0R", $n, "_EL2"), out(reg) value,
                            options(nomem, nostack, preserves_flags))
                    },
                    // SAFETY: as above.
                    (true, $n) => unsafe {
                        asm!(concat!("mrs {}, ICH_AP1R", $n, "_EL2"), out(reg) value,
                            options(nomem, nostack, preserves_flags))
                    },
                )*
                _ => value = 0,
            }
            value as u32
        }

        /// Writes ICH_AP0R<n>_EL2 (`group1` false) or ICH_AP1R<n>_EL2.
        fn write_active_priority(group1: bool, n: usize, value: u32) {
            match (group1, n) {
                $(
                    // SAFETY: the active priorities only affect the guest's virtual
                    // interface on this CPU; `n` exists (see above).
                    (false, $n) => unsafe {
                        asm!(concat!("msr ICH_AP0R", $n, "_EL2, {}"), in(reg) u64::from(value),
                            options(nomem, nostack, preserves_flags))
                    },
                    // SAFETY: as above.
                    (true, $n) => unsafe {
                        asm!(concat!("msr ICH_AP1R", $n, "_EL2, {}"), in(reg) u64::from(value),
                            options(nomem, nostack, preserves_flags))
                    },
                )*
                _ => {}
            }
        }
    };
}

active_priority_access!(0, 1, 2, 3);

/// The guest's CPU interface state held in this CPU's virtual interface.
pub fn save_cpu_interface() -> GicCpuInterface {
    let vmcr: u64;
    // SAFETY: reading ICH_VMCR_EL2 has no side effects.
    unsafe {
        asm!("mrs {}, ICH_VMCR_EL2", out(reg) vmcr, options(nomem, nostack, preserves_flags))
    };
    let sre: u64;
    // SAFETY: reading ICC_SRE_EL1 (the guest's, since the guest is not running) has
    // no side effects; ICC_SRE_EL2.SRE is set, so EL2 may access it.
    unsafe { asm!("mrs {}, ICC_SRE_EL1", out(reg) sre, options(nomem, nostack, preserves_flags)) };
    let mut state = GicCpuInterface {
        vmcr,
        sre: sre & ICC_SRE_EL1_BITS,
        ..GicCpuInterface::default()
    };
    for n in 0..active_priority_registers() {
        state.active_priorities[n] = read_active_priority(false, n);
        state.active_priorities[4 + n] = read_active_priority(true, n);
    }
    state
}

/// Puts a guest's saved CPU interface state into this CPU's virtual interface.
pub fn restore_cpu_interface(state: &GicCpuInterface) {
    // ICC_SRE_EL1 first: it decides how the CPU interprets ICH_VMCR_EL2 (with SRE
    // clear, VFIQEn is writable and group 0 could become FIQs).
    // SAFETY: ICC_SRE_EL1 only controls EL1's (the guest's) access to the GIC CPU
    // interface; Aerie at EL2 uses ICC_SRE_EL2. RES0 bits are masked off.
    unsafe {
        asm!("msr ICC_SRE_EL1, {}", "isb", in(reg) state.sre & ICC_SRE_EL1_BITS,
            options(nomem, nostack, preserves_flags))
    };
    // SAFETY: ICH_VMCR_EL2 holds only the guest's view of its CPU interface (priority
    // mask, binary points, group enables, EOI mode) on this CPU.
    unsafe {
        asm!("msr ICH_VMCR_EL2, {}", "isb", in(reg) state.vmcr,
            options(nomem, nostack, preserves_flags))
    };
    for n in 0..active_priority_registers() {
        write_active_priority(false, n, state.active_priorities[n]);
        write_active_priority(true, n, state.active_priorities[4 + n]);
    }
}
