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

use aerie_hyp::memory::Range;
use aerie_hyp::vcpu::GicCpuInterface;

/// GICD_CTLR.
const GICD_CTLR: usize = 0x000;
/// GICD_TYPER.
const GICD_TYPER: usize = 0x004;
/// GICD_IGROUPR<n>.
const GICD_IGROUPR: usize = 0x080;
/// GICD_ISENABLER<n>.
const GICD_ISENABLER: usize = 0x100;
/// GICD_ICENABLER<n>.
const GICD_ICENABLER: usize = 0x180;
/// GICD_ICPENDR<n>.
const GICD_ICPENDR: usize = 0x280;
/// GICD_ICACTIVER<n>.
const GICD_ICACTIVER: usize = 0x380;
/// GICD_IPRIORITYR<n>, one byte per interrupt.
const GICD_IPRIORITYR: usize = 0x400;
/// GICD_ITARGETSR<n>, one byte per interrupt (banked for 0-31: this CPU's bit).
const GICD_ITARGETSR: usize = 0x800;
/// GICD_SGIR: software-generated interrupts.
const GICD_SGIR: usize = 0xf00;
/// GICD_CTLR: forward group 0 and group 1 interrupts (QEMU's GIC-400 model has no
/// security extensions, so interrupts reset into group 0: enable both).
const CTLR_ENABLE_BOTH_GROUPS: u32 = 0b11;

/// GICC_CTLR.
const GICC_CTLR: usize = 0x000;
/// GICC_PMR: priority mask.
const GICC_PMR: usize = 0x004;
/// GICC_BPR: binary point.
const GICC_BPR: usize = 0x008;
/// GICC_IAR: acknowledge.
const GICC_IAR: usize = 0x00c;
/// GICC_EOIR: end of interrupt (priority drop with EOImode).
const GICC_EOIR: usize = 0x010;
/// GICC_DIR: deactivate.
const GICC_DIR: usize = 0x1000;
/// GICC_CTLR: both groups signalled, as IRQs; AckCtl (bit 2) so that GICC_IAR also
/// acknowledges group 1 interrupts (else it answers 1022 for them on a GIC without
/// security extensions, like QEMU's); and EOImode (bit 9 without security
/// extensions or in the secure view, bit 10 in the non-secure view: set both).
const GICC_CTLR_VALUE: u32 = 0b111 | (1 << 9) | (1 << 10);

/// GICH_HCR.
const GICH_HCR: usize = 0x000;
/// GICH_VTR: ListRegs in bits [5:0].
const GICH_VTR: usize = 0x004;
/// GICH_VMCR.
const GICH_VMCR: usize = 0x008;
/// GICH_APR: the active priorities of the virtual interface.
const GICH_APR: usize = 0x0f0;
/// GICH_LR<n>.
const GICH_LR: usize = 0x100;
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

/// Registers at a base address.
#[derive(Clone, Copy)]
struct Frame(usize);

impl Frame {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `self.0` is a GIC register frame from the device tree, mapped as
        // device memory by Aerie; `offset` is a named register offset inside it.
        unsafe { core::ptr::read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u32, value) }
    }

    fn read8(self, offset: usize) -> u8 {
        // SAFETY: as for `read`; these registers are byte-accessible.
        unsafe { core::ptr::read_volatile((self.0 + offset) as *const u8) }
    }

    fn write8(self, offset: usize, value: u8) {
        // SAFETY: as for `read8`.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u8, value) }
    }
}

/// The host GICv2.
#[derive(Clone, Copy)]
pub struct HostGicV2 {
    distributor: Frame,
    cpu: Frame,
    hypervisor: Frame,
}

/// The host GICv2, once set up.
pub static HOST_GIC_V2: spin::Once<HostGicV2> = spin::Once::new();

/// Each CPU's interface number (its bit in target lists), by MPIDR, learnt from
/// the banked GICD_ITARGETSR0 when the CPU sets itself up.
static INTERFACE_OF: crate::sync::Mutex<[(u64, u8); 8]> =
    crate::sync::Mutex::new([(u64::MAX, 0); 8]);

impl HostGicV2 {
    /// The GIC with these register frames.
    pub fn new(distributor: Range, cpu: Range, hypervisor: Range) -> Self {
        Self {
            distributor: Frame(distributor.start() as usize),
            cpu: Frame(cpu.start() as usize),
            hypervisor: Frame(hypervisor.start() as usize),
        }
    }

    /// One-time distributor setup: SPIs disabled, group 1, Aerie's priority, both
    /// groups forwarded.
    pub fn init_distributor(&self) {
        let d = self.distributor;
        d.write(GICD_CTLR, 0);
        let lines = ((d.read(GICD_TYPER) & 0x1f) + 1) * 32;
        for word in 1..lines / 32 {
            let offset = word as usize * 4;
            d.write(GICD_ICENABLER + offset, u32::MAX);
            d.write(GICD_ICPENDR + offset, u32::MAX);
            d.write(GICD_ICACTIVER + offset, u32::MAX);
            d.write(GICD_IGROUPR + offset, u32::MAX);
        }
        for intid in 32..lines {
            d.write8(GICD_IPRIORITYR + intid as usize, PRIORITY);
        }
        d.write(GICD_CTLR, CTLR_ENABLE_BOTH_GROUPS);
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` and enables it.
    pub fn enable_spi(&self, intid: u32, mpidr: u64) {
        let target = interface_of(mpidr).unwrap_or(1);
        self.distributor
            .write8(GICD_ITARGETSR + intid as usize, target);
        self.distributor.write(
            GICD_ISENABLER + (intid as usize / 32) * 4,
            1 << (intid % 32),
        );
    }

    /// Enables private interrupt `intid` (a PPI) on the calling CPU: GICD_ISENABLER0
    /// is banked per CPU.
    pub fn enable_private(&self, intid: u32) {
        self.distributor.write(GICD_ISENABLER, 1 << (intid % 32));
    }

    /// Per-CPU setup: this CPU's private interrupts and its CPU interface.
    pub fn init_cpu(&self, mpidr: u64) {
        let d = self.distributor;
        d.write(GICD_ICENABLER, u32::MAX);
        d.write(GICD_ICPENDR, u32::MAX);
        d.write(GICD_ICACTIVER, u32::MAX);
        d.write(GICD_IGROUPR, u32::MAX);
        for intid in 0..32 {
            d.write8(GICD_IPRIORITYR + intid, PRIORITY);
        }
        d.write(GICD_ISENABLER, PRIVATE_ENABLED);
        let own_bit = d.read8(GICD_ITARGETSR);
        let mut table = INTERFACE_OF.lock();
        if let Some(slot) = table
            .iter_mut()
            .find(|(m, _)| *m == u64::MAX || *m == mpidr)
        {
            *slot = (mpidr, own_bit);
        }
        drop(table);
        let c = self.cpu;
        c.write(GICC_PMR, PRIORITY_MASK);
        c.write(GICC_BPR, 0);
        c.write(GICC_CTLR, GICC_CTLR_VALUE);
        let h = self.hypervisor;
        h.write(GICH_VMCR, 0);
        h.write(GICH_HCR, GICH_HCR_EN);
    }

    /// Acknowledges the highest-priority pending interrupt (1023 if none).
    pub fn acknowledge(&self) -> u32 {
        self.cpu.read(GICC_IAR) & 0x3ff
    }

    /// Priority drop.
    pub fn end_of_interrupt(&self, intid: u32) {
        self.cpu.write(GICC_EOIR, intid);
    }

    /// Deactivation.
    pub fn deactivate(&self, intid: u32) {
        self.cpu.write(GICC_DIR, intid);
    }

    /// Sends the kick SGI to the CPU with affinity `mpidr`.
    pub fn kick(&self, mpidr: u64) {
        if let Some(bit) = interface_of(mpidr) {
            self.distributor
                .write(GICD_SGIR, u32::from(bit) << 16 | KICK_SGI);
        }
    }

    /// How many list registers this CPU has.
    pub fn list_register_count(&self) -> usize {
        ((self.hypervisor.read(GICH_VTR) & 0x3f) + 1) as usize
    }

    /// Reads GICH_LR<n>.
    pub fn read_list_register(&self, n: usize) -> u32 {
        self.hypervisor.read(GICH_LR + n * 4)
    }

    /// Writes GICH_LR<n>.
    pub fn write_list_register(&self, n: usize, value: u32) {
        self.hypervisor.write(GICH_LR + n * 4, value);
    }

    /// The guest's CPU interface state held in this CPU's virtual interface
    /// (GICH_VMCR, GICH_APR).
    pub fn save_cpu_interface(&self) -> GicCpuInterface {
        let mut state = GicCpuInterface {
            vmcr: u64::from(self.hypervisor.read(GICH_VMCR)),
            ..GicCpuInterface::default()
        };
        state.active_priorities[0] = self.hypervisor.read(GICH_APR);
        state
    }

    /// Puts a guest's saved CPU interface state into this CPU's virtual interface.
    pub fn restore_cpu_interface(&self, state: &GicCpuInterface) {
        self.hypervisor.write(GICH_VMCR, state.vmcr as u32);
        self.hypervisor.write(GICH_APR, state.active_priorities[0]);
    }

    /// Writes GICH_HCR.
    pub fn write_hcr(&self, value: u32) {
        self.hypervisor.write(GICH_HCR, value);
    }

    /// Reads GICH_HCR (for its EOICount field).
    pub fn read_hcr(&self) -> u32 {
        self.hypervisor.read(GICH_HCR)
    }
}

fn interface_of(mpidr: u64) -> Option<u8> {
    INTERFACE_OF
        .lock()
        .iter()
        .find(|(m, _)| *m == mpidr)
        .map(|(_, bit)| *bit)
}
