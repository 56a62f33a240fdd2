//! The host's GICv2 (GIC-400 on the Raspberry Pi 4 and 5; QEMU `virt` with
//! `gic-version=2`): distributor, memory-mapped CPU interface (GICC), and the
//! virtual interface control (GICH) with its list registers. The virtual CPU
//! interface (GICV) is mapped straight into the guest, which uses it as its GICC.
//!
//! As with the GICv3, Aerie splits priority drop and deactivation (EOImode), so the
//! guest's deactivation of its hardware-mapped timer interrupt deactivates the
//! physical one.
//!
//! Reference: Arm GIC architecture specification v2 (IHI 0048B), chapters 4
//! (distributor and CPU interface registers) and 5 (virtualization extensions).

use super::gic_registers::{GICD_CTLR, GICD_TYPER, InterruptBanks};
use super::mmio::Registers;
use aerie_hyp::memory::Range;
use aerie_hyp::vcpu::GicCpuInterface;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! [u32,
    /// GICC_CTLR (the bits Aerie sets).
    GICC_CTLR [
        /// EOImode in the non-secure view: EOIR only drops priority; DIR deactivates.
        EOImodeNS OFFSET(10) NUMBITS(1) [],
        /// EOImode without security extensions or in the secure view.
        EOImode OFFSET(9) NUMBITS(1) [],
        /// GICC_IAR also acknowledges group 1 interrupts (else it answers 1022 for
        /// them on a GIC without security extensions, like QEMU's).
        AckCtl OFFSET(2) NUMBITS(1) [],
        /// Signal group 1 interrupts.
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        /// Signal group 0 interrupts.
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],
    /// GICH_VTR.
    GICH_VTR [
        /// The number of list registers, minus one.
        ListRegs OFFSET(0) NUMBITS(6) []
    ]
];

register_structs! {
    /// The GICv2 distributor registers Aerie uses (IHI 0048B 4.3).
    Distributor {
        /// GICD_CTLR.
        (0x000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        /// GICD_TYPER.
        (0x004 => typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x008 => _reserved0),
        /// GICD_IGROUPR<n> to GICD_IPRIORITYR<n> (banked per CPU for INTIDs 0-31).
        (0x080 => banks: InterruptBanks),
        /// GICD_ITARGETSR<n>, one byte per interrupt (banked for 0-31: this CPU's bit).
        (0x800 => itargetsr: [ReadWrite<u8>; 1024]),
        (0xc00 => _reserved1),
        /// GICD_SGIR: software-generated interrupts.
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => @END),
    }
}

register_structs! {
    /// The GICv2 CPU interface (GICC, IHI 0048B 4.4).
    CpuInterface {
        /// GICC_CTLR.
        (0x0000 => ctlr: ReadWrite<u32, GICC_CTLR::Register>),
        /// GICC_PMR: priority mask.
        (0x0004 => pmr: ReadWrite<u32>),
        /// GICC_BPR: binary point.
        (0x0008 => bpr: ReadWrite<u32>),
        /// GICC_IAR: acknowledge.
        (0x000c => iar: ReadOnly<u32>),
        /// GICC_EOIR: end of interrupt (priority drop with EOImode).
        (0x0010 => eoir: WriteOnly<u32>),
        (0x0014 => _reserved0),
        /// GICC_DIR: deactivate.
        (0x1000 => dir: WriteOnly<u32>),
        (0x1004 => @END),
    }
}

register_structs! {
    /// The GICv2 virtual interface control (GICH, IHI 0048B 5.3).
    Hypervisor {
        /// GICH_HCR.
        (0x000 => hcr: ReadWrite<u32>),
        /// GICH_VTR.
        (0x004 => vtr: ReadOnly<u32, GICH_VTR::Register>),
        /// GICH_VMCR.
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        /// GICH_APR: the active priorities of the virtual interface.
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved1),
        /// GICH_LR<n>.
        (0x100 => lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// GICH_HCR.En.
pub const GICH_HCR_EN: u32 = 1 << 0;

/// Aerie's priority for every interrupt it uses.
const PRIORITY: u8 = 0xa0;
/// The priority mask.
const PRIORITY_MASK: u32 = 0xf0;
/// The kick SGI (same number as on GICv3).
pub const KICK_SGI: u32 = 8;
/// INTIDs of the private interrupts Aerie enables on every CPU: the kick SGI, the
/// maintenance interrupt (25), the EL2 physical timer (26) and the virtual timer (27).
const PRIVATE_ENABLED: u32 = (1 << KICK_SGI) | (1 << 25) | (1 << 26) | (1 << 27);

/// The host GICv2.
#[derive(Clone, Copy)]
pub struct HostGicV2 {
    distributor: Registers<Distributor>,
    cpu: Registers<CpuInterface>,
    hypervisor: Registers<Hypervisor>,
}

/// The host GICv2, once set up.
pub static HOST_GIC_V2: spin::Once<HostGicV2> = spin::Once::new();

/// Each CPU's interface number (its bit in target lists), by MPIDR, learnt from
/// the banked GICD_ITARGETSR0 when the CPU sets itself up.
static INTERFACE_OF: crate::sync::Mutex<[(u64, u8); 8]> =
    crate::sync::Mutex::new([(u64::MAX, 0); 8]);

impl HostGicV2 {
    /// The GIC with these register frames.
    ///
    /// # Safety
    /// `distributor`, `cpu` and `hypervisor` must be a GICv2's distributor, CPU
    /// interface (GICC, 8 KiB) and virtual interface control (GICH) frames, whole,
    /// accessible as device memory for the rest of Aerie's run (see
    /// [`Registers::new`]).
    pub unsafe fn new(distributor: Range, cpu: Range, hypervisor: Range) -> Self {
        Self {
            // SAFETY: the caller guarantees this is a GICv2 distributor frame (4 KiB,
            // larger than `Distributor`), mapped for good.
            distributor: unsafe { Registers::new(distributor.start() as usize) },
            // SAFETY: the caller guarantees this is a GICv2 CPU interface frame
            // (8 KiB, larger than `CpuInterface`), mapped for good.
            cpu: unsafe { Registers::new(cpu.start() as usize) },
            // SAFETY: the caller guarantees this is a GICv2 virtual interface control
            // frame (at least 512 bytes, the size of `Hypervisor`), mapped for good.
            hypervisor: unsafe { Registers::new(hypervisor.start() as usize) },
        }
    }

    /// One-time distributor setup: SPIs disabled, group 1, Aerie's priority, both
    /// groups forwarded (QEMU's GIC-400 model has no security extensions, so
    /// interrupts reset into group 0: enable both).
    pub fn init_distributor(&self) {
        let d = self.distributor;
        d.ctlr.set(0);
        let lines = (d.typer.read(GICD_TYPER::ITLinesNumber) + 1) * 32;
        d.banks.reset(32..lines, PRIORITY);
        d.ctlr
            .write(GICD_CTLR::EnableGrp0::SET + GICD_CTLR::EnableGrp1::SET);
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` and enables it.
    pub fn enable_spi(&self, intid: u32, mpidr: u64) {
        let target = interface_of(mpidr).unwrap_or(1);
        self.distributor.itargetsr[intid as usize].set(target);
        self.distributor.banks.enable(intid);
    }

    /// Enables private interrupt `intid` (a PPI) on the calling CPU: GICD_ISENABLER0
    /// is banked per CPU.
    pub fn enable_private(&self, intid: u32) {
        self.distributor.banks.enable(intid % 32);
    }

    /// Per-CPU setup: this CPU's private interrupts and its CPU interface.
    pub fn init_cpu(&self, mpidr: u64) {
        let d = self.distributor;
        d.banks.reset(0..32, PRIORITY);
        d.banks.enable_private(PRIVATE_ENABLED);
        let own_bit = d.itargetsr[0].get();
        let mut table = INTERFACE_OF.lock();
        if let Some(slot) = table
            .iter_mut()
            .find(|(m, _)| *m == u64::MAX || *m == mpidr)
        {
            *slot = (mpidr, own_bit);
        }
        drop(table);
        let c = self.cpu;
        c.pmr.set(PRIORITY_MASK);
        c.bpr.set(0);
        c.ctlr.write(
            GICC_CTLR::EnableGrp0::SET
                + GICC_CTLR::EnableGrp1::SET
                + GICC_CTLR::AckCtl::SET
                + GICC_CTLR::EOImode::SET
                + GICC_CTLR::EOImodeNS::SET,
        );
        let h = self.hypervisor;
        h.vmcr.set(0);
        h.hcr.set(GICH_HCR_EN);
    }

    /// Acknowledges the highest-priority pending interrupt (1023 if none).
    pub fn acknowledge(&self) -> u32 {
        self.cpu.iar.get() & 0x3ff
    }

    /// Priority drop.
    pub fn end_of_interrupt(&self, intid: u32) {
        self.cpu.eoir.set(intid);
    }

    /// Deactivation.
    pub fn deactivate(&self, intid: u32) {
        self.cpu.dir.set(intid);
    }

    /// Sends the kick SGI to the CPU with affinity `mpidr`.
    pub fn kick(&self, mpidr: u64) {
        if let Some(bit) = interface_of(mpidr) {
            self.distributor.sgir.set(u32::from(bit) << 16 | KICK_SGI);
        }
    }

    /// How many list registers this CPU has.
    pub fn list_register_count(&self) -> usize {
        self.hypervisor.vtr.read(GICH_VTR::ListRegs) as usize + 1
    }

    /// Reads GICH_LR<n> (0 for a number beyond the 64 the architecture allows).
    pub fn read_list_register(&self, n: usize) -> u32 {
        self.hypervisor.lr.get(n).map_or(0, |lr| lr.get())
    }

    /// Writes GICH_LR<n> (nothing for a number beyond 64).
    pub fn write_list_register(&self, n: usize, value: u32) {
        if let Some(lr) = self.hypervisor.lr.get(n) {
            lr.set(value);
        }
    }

    /// The guest's CPU interface state held in this CPU's virtual interface
    /// (GICH_VMCR, GICH_APR).
    pub fn save_cpu_interface(&self) -> GicCpuInterface {
        let mut state = GicCpuInterface {
            vmcr: u64::from(self.hypervisor.vmcr.get()),
            ..GicCpuInterface::default()
        };
        state.active_priorities[0] = self.hypervisor.apr.get();
        state
    }

    /// Puts a guest's saved CPU interface state into this CPU's virtual interface.
    pub fn restore_cpu_interface(&self, state: &GicCpuInterface) {
        self.hypervisor.vmcr.set(state.vmcr as u32);
        self.hypervisor.apr.set(state.active_priorities[0]);
    }

    /// Writes GICH_HCR.
    pub fn write_hcr(&self, value: u32) {
        self.hypervisor.hcr.set(value);
    }

    /// Reads GICH_HCR (for its EOICount field).
    pub fn read_hcr(&self) -> u32 {
        self.hypervisor.hcr.get()
    }
}

fn interface_of(mpidr: u64) -> Option<u8> {
    INTERFACE_OF
        .lock()
        .iter()
        .find(|(m, _)| *m == mpidr)
        .map(|(_, bit)| *bit)
}
