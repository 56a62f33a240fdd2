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

use super::gic_registers::{GICD_CTLR, GICD_TYPER, InterruptBanks};
use super::mmio::Registers;
use aarch64_cpu::registers::{
    ICC_SRE_EL2, ICH_AP0R0_EL2, ICH_AP0R1_EL2, ICH_AP0R2_EL2, ICH_AP0R3_EL2, ICH_AP1R0_EL2,
    ICH_AP1R1_EL2, ICH_AP1R2_EL2, ICH_AP1R3_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2,
    ICH_LR2_EL2, ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2,
    ICH_LR9_EL2, ICH_LR10_EL2, ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2,
    ICH_LR15_EL2, ICH_VMCR_EL2, ICH_VTR_EL2,
};
use aerie_hyp::memory::Range;
use aerie_hyp::vcpu::{GicCpuInterface, ICC_SRE_EL1_BITS};
use core::arch::asm;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields! [u32,
    /// GICR_WAKER.
    GICR_WAKER [
        /// All the redistributor's interfaces to the CPU are quiescent.
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
        /// The CPU is asleep: the redistributor does not forward it interrupts.
        ProcessorSleep OFFSET(1) NUMBITS(1) []
    ]
];

register_bitfields! [u64,
    /// GICR_TYPER.
    GICR_TYPER [
        /// The affinity of the redistributor's CPU: Aff3.Aff2.Aff1.Aff0.
        Affinity OFFSET(32) NUMBITS(32) [],
        /// The final redistributor of a region.
        Last OFFSET(4) NUMBITS(1) [],
        /// The redistributor has the two extra GICv4 frames (VLPI, reserved).
        VLPIS OFFSET(1) NUMBITS(1) []
    ]
];

register_structs! {
    /// The GICv3 distributor registers Aerie uses (IHI 0069 12.9).
    Distributor {
        /// GICD_CTLR: distributor control.
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        /// GICD_TYPER: how many SPIs exist.
        (0x0004 => typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x0008 => _reserved0),
        /// GICD_IGROUPR<n> to GICD_IPRIORITYR<n>.
        (0x0080 => banks: InterruptBanks),
        (0x0800 => _reserved1),
        /// GICD_IROUTER<n>: 64-bit affinity routing of SPI n (n from 32).
        (0x6000 => irouter: [ReadWrite<u64>; 1020]),
        (0x7fe0 => @END),
    }
}

register_structs! {
    /// One GICv3 redistributor: its RD frame and its SGI frame (IHI 0069 12.10).
    Redistributor {
        (0x0_0000 => _control),
        /// GICR_TYPER: the CPU served, and where the next redistributor is.
        (0x0_0008 => typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x0_0010 => _reserved0),
        /// GICR_WAKER: power management of the CPU's interface.
        (0x0_0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0_0018 => _reserved1),
        /// The SGI frame's GICR_IGROUPR0 to GICR_IPRIORITYR<n>: the CPU's SGIs and PPIs.
        (0x1_0080 => banks: InterruptBanks),
        (0x1_0800 => @END),
    }
}

/// Size of one GICv3 redistributor (RD + SGI frames).
const REDISTRIBUTOR_STRIDE: usize = 0x2_0000;
/// Size of one GICv4 redistributor (adds VLPI and reserved frames).
const REDISTRIBUTOR_STRIDE_V4: usize = 0x4_0000;

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

/// ICC_CTLR_EL1.EOImode: EOIR only drops priority; DIR deactivates.
const CTLR_EOIMODE: u64 = 1 << 1;
/// ICH_HCR_EL2.En: the virtual CPU interface is on.
pub const ICH_HCR_EN: u64 = 1 << 0;

/// The host GIC, once the boot CPU has set it up (GICv3 hosts only).
pub static HOST_GIC: spin::Once<HostGic> = spin::Once::new();

/// The host GIC's register blocks.
#[derive(Clone, Copy)]
pub struct HostGic {
    distributor: Registers<Distributor>,
    redistributors: [Option<Range>; 4],
}

impl HostGic {
    /// The GIC whose distributor and redistributor regions the device tree gave.
    ///
    /// # Safety
    /// `distributor` must be a GICv3 distributor's register frame and each of
    /// `redistributors` a region of GICv3 redistributors, whole, all accessible as
    /// device memory for the rest of Aerie's run (see [`Registers::new`]).
    pub unsafe fn new(distributor: Range, redistributors: &[Range]) -> Self {
        let mut regions = [None; 4];
        for (slot, region) in regions.iter_mut().zip(redistributors) {
            *slot = Some(*region);
        }
        Self {
            // SAFETY: the caller guarantees `distributor` is a GICv3 distributor's
            // frame (64 KiB, larger than `Distributor`), mapped for good.
            distributor: unsafe { Registers::new(distributor.start() as usize) },
            redistributors: regions,
        }
    }

    fn wait_for_distributor(&self) {
        while self.distributor.ctlr.is_set(GICD_CTLR::RWP) {
            core::hint::spin_loop();
        }
    }

    /// One-time distributor setup on the boot CPU: every SPI disabled, in group 1,
    /// at Aerie's priority; affinity routing and group 1 on.
    pub fn init_distributor(&self) {
        let d = self.distributor;
        d.ctlr.set(0);
        self.wait_for_distributor();
        let lines = (d.typer.read(GICD_TYPER::ITLinesNumber) + 1) * 32;
        d.banks.reset(32..lines, PRIORITY);
        self.wait_for_distributor();
        d.ctlr
            .write(GICD_CTLR::ARE::SET + GICD_CTLR::EnableGrp1::SET);
        self.wait_for_distributor();
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` and enables it.
    pub fn enable_spi(&self, intid: u32, mpidr: u64) {
        let d = self.distributor;
        d.irouter[intid as usize].set(mpidr & 0xff_00ff_ffff);
        d.banks.enable(intid);
    }

    /// Enables private interrupt `intid` (a PPI) of the CPU with affinity `mpidr`
    /// (GICR_ISENABLER0 in its redistributor); false if it has none.
    pub fn enable_private(&self, intid: u32, mpidr: u64) -> bool {
        let Some(r) = self.redistributor_of(mpidr) else {
            return false;
        };
        r.banks.enable(intid % 32);
        true
    }

    /// The redistributor of the CPU with affinity `mpidr`.
    fn redistributor_of(&self, mpidr: u64) -> Option<Registers<Redistributor>> {
        let affinity = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
        for region in self.redistributors.iter().flatten() {
            let mut base = region.start() as usize;
            while base + size_of::<Redistributor>() <= region.end() as usize {
                // SAFETY: `new`'s caller guarantees the region is GICv3
                // redistributors, mapped for good; `base` is the region's start or
                // the previous redistributor's end (its TYPER gave the stride), so
                // it starts a redistributor, and the check above keeps the block
                // inside the region.
                let frame: Registers<Redistributor> = unsafe { Registers::new(base) };
                if frame.typer.read(GICR_TYPER::Affinity) == affinity {
                    return Some(frame);
                }
                if frame.typer.is_set(GICR_TYPER::Last) {
                    break;
                }
                base += if frame.typer.is_set(GICR_TYPER::VLPIS) {
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
        r.waker.modify(GICR_WAKER::ProcessorSleep::CLEAR);
        while r.waker.is_set(GICR_WAKER::ChildrenAsleep) {
            core::hint::spin_loop();
        }
        r.banks.reset(0..32, PRIORITY);
        r.banks.enable_private(
            (1 << KICK_SGI)
                | (1 << MAINTENANCE_INTID)
                | (1 << VIRTUAL_TIMER_INTID)
                | (1 << HYPERVISOR_TIMER_INTID),
        );
        cpu_interface_on();
        true
    }
}

/// Turns on this CPU's system-register interface at EL2 and the virtual interface.
fn cpu_interface_on() {
    ICC_SRE_EL2.write(
        ICC_SRE_EL2::SRE::SET
            + ICC_SRE_EL2::DFB::SET
            + ICC_SRE_EL2::DIB::SET
            + ICC_SRE_EL2::ENABLE::SET,
    );
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    // aarch64-cpu declares no ICC_PMR_EL1, ICC_BPR1_EL1 or ICC_IGRPEN1_EL1, and
    // ICC_CTLR_EL1 only as readable.
    // SAFETY: these registers configure how this CPU takes physical interrupts;
    // Aerie runs with interrupts masked at EL2 (it only takes them as guest exits),
    // so nothing is preempted.
    unsafe {
        asm!(
            "msr ICC_PMR_EL1, {pmr}",
            "msr ICC_BPR1_EL1, xzr",
            "msr ICC_CTLR_EL1, {ctlr}",
            "mov {tmp}, #1",
            "msr ICC_IGRPEN1_EL1, {tmp}",
            pmr = in(reg) PRIORITY_MASK,
            ctlr = in(reg) CTLR_EOIMODE,
            tmp = out(reg) _,
            options(nostack, preserves_flags),
        );
    }
    ICH_VMCR_EL2.set(0);
    ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Acknowledges the highest-priority pending interrupt; 1023 if none.
pub fn acknowledge() -> u32 {
    let intid: u64;
    // aarch64-cpu declares no ICC_IAR1_EL1.
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt (makes it active);
    // the caller ends it with `end_of_interrupt`.
    unsafe { asm!("mrs {}, ICC_IAR1_EL1", out(reg) intid, options(nostack, preserves_flags)) };
    (intid & 0xff_ffff) as u32
}

/// Priority drop for `intid` (EOImode = 1: it stays active until deactivated).
pub fn end_of_interrupt(intid: u32) {
    // aarch64-cpu declares no ICC_EOIR1_EL1.
    // SAFETY: ends the priority of an interrupt this CPU acknowledged.
    unsafe {
        asm!("msr ICC_EOIR1_EL1, {}", in(reg) u64::from(intid), options(nostack, preserves_flags))
    };
}

/// Deactivates `intid`.
pub fn deactivate(intid: u32) {
    // aarch64-cpu declares no ICC_DIR_EL1.
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
    // aarch64-cpu declares no ICC_SGI1R_EL1.
    // SAFETY: generating an SGI only makes the target CPU take an interrupt.
    unsafe {
        asm!("msr ICC_SGI1R_EL1, {}", "isb", in(reg) value, options(nostack, preserves_flags));
    }
}

/// How many list registers this CPU has (ICH_VTR_EL2.ListRegs + 1).
pub fn list_register_count() -> usize {
    ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1
}

/// Generates the list-register accessors from aarch64-cpu's ICH_LR<n>_EL2: one
/// `match` over the register number (a jump table), as each register is its own
/// instruction.
macro_rules! list_register_access {
    ($($n:literal => $register:ident),* $(,)?) => {
        /// Reads ICH_LR<n>_EL2 (0 for a number beyond 15).
        pub fn read_list_register(n: usize) -> u64 {
            match n {
                $( $n => $register.get(), )*
                _ => 0,
            }
        }

        /// Writes ICH_LR<n>_EL2 (nothing for a number beyond 15).
        pub fn write_list_register(n: usize, value: u64) {
            match n {
                $( $n => $register.set(value), )*
                _ => {}
            }
        }
    };
}

list_register_access! {
    0 => ICH_LR0_EL2, 1 => ICH_LR1_EL2, 2 => ICH_LR2_EL2, 3 => ICH_LR3_EL2,
    4 => ICH_LR4_EL2, 5 => ICH_LR5_EL2, 6 => ICH_LR6_EL2, 7 => ICH_LR7_EL2,
    8 => ICH_LR8_EL2, 9 => ICH_LR9_EL2, 10 => ICH_LR10_EL2, 11 => ICH_LR11_EL2,
    12 => ICH_LR12_EL2, 13 => ICH_LR13_EL2, 14 => ICH_LR14_EL2, 15 => ICH_LR15_EL2,
}

/// Writes ICH_HCR_EL2.
pub fn write_hcr(value: u64) {
    ICH_HCR_EL2.set(value);
}

/// Reads ICH_HCR_EL2 (for its EOIcount field).
pub fn read_hcr() -> u64 {
    ICH_HCR_EL2.get()
}

/// How many of each group's active-priority registers exist (ICH_AP0R<n>_EL2 and
/// ICH_AP1R<n>_EL2): 1 with 5 preemption bits, 2 with 6, 4 with 7
/// (ICH_VTR_EL2.PREbits holds the number of preemption bits minus one).
fn active_priority_registers() -> usize {
    match ICH_VTR_EL2.read(ICH_VTR_EL2::PREbits) + 1 {
        7 => 4,
        6 => 2,
        _ => 1,
    }
}

/// Generates the active-priority accessors from aarch64-cpu's ICH_AP0R<n>_EL2 and
/// ICH_AP1R<n>_EL2.
macro_rules! active_priority_access {
    ($(($group1:literal, $n:literal) => $register:ident),* $(,)?) => {
        /// Reads ICH_AP0R<n>_EL2 (`group1` false) or ICH_AP1R<n>_EL2. Only call for
        /// `n` below `active_priority_registers()`: the others do not exist.
        fn read_active_priority(group1: bool, n: usize) -> u32 {
            match (group1, n) {
                $( ($group1, $n) => $register.get() as u32, )*
                _ => 0,
            }
        }

        /// Writes ICH_AP0R<n>_EL2 (`group1` false) or ICH_AP1R<n>_EL2; `n` as for
        /// `read_active_priority`.
        fn write_active_priority(group1: bool, n: usize, value: u32) {
            match (group1, n) {
                $( ($group1, $n) => $register.set(u64::from(value)), )*
                _ => {}
            }
        }
    };
}

active_priority_access! {
    (false, 0) => ICH_AP0R0_EL2, (false, 1) => ICH_AP0R1_EL2,
    (false, 2) => ICH_AP0R2_EL2, (false, 3) => ICH_AP0R3_EL2,
    (true, 0) => ICH_AP1R0_EL2, (true, 1) => ICH_AP1R1_EL2,
    (true, 2) => ICH_AP1R2_EL2, (true, 3) => ICH_AP1R3_EL2,
}

/// The guest's CPU interface state held in this CPU's virtual interface.
pub fn save_cpu_interface() -> GicCpuInterface {
    let sre: u64;
    // aarch64-cpu declares no ICC_SRE_EL1.
    // SAFETY: reading ICC_SRE_EL1 (the guest's, since the guest is not running) has
    // no side effects; ICC_SRE_EL2.SRE is set, so EL2 may access it.
    unsafe { asm!("mrs {}, ICC_SRE_EL1", out(reg) sre, options(nomem, nostack, preserves_flags)) };
    let mut state = GicCpuInterface {
        vmcr: ICH_VMCR_EL2.get(),
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
    // aarch64-cpu declares no ICC_SRE_EL1.
    // SAFETY: ICC_SRE_EL1 only controls EL1's (the guest's) access to the GIC CPU
    // interface; Aerie at EL2 uses ICC_SRE_EL2. RES0 bits are masked off.
    unsafe {
        asm!("msr ICC_SRE_EL1, {}", "isb", in(reg) state.sre & ICC_SRE_EL1_BITS,
            options(nomem, nostack, preserves_flags))
    };
    ICH_VMCR_EL2.set(state.vmcr);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    for n in 0..active_priority_registers() {
        write_active_priority(false, n, state.active_priorities[n]);
        write_active_priority(true, n, state.active_priorities[4 + n]);
    }
}
