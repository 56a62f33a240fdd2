//! The GICv2 front-end: an emulated distributor in front of the [`Core`], the
//! `GICH_LR<n>` list-register format and SGIs pending per source CPU (see
//! [`VgicV2`] for the model and how to wire it up).

mod distributor;
mod list_registers;
mod save;
mod sgi;

pub use list_registers::{gich_hcr, gich_lr};
pub use save::{SpiV2Snapshot, VcpuV2Snapshot, VgicV2State};

use super::core::{
    Core, Frontend, GicFrame, IrqState, ListRegisterFormat, LrEntry, LrState, SgiListing,
    VgicStats, check_config,
};
use super::{FIRST_SPI, VgicError};
use crate::mmio::AccessWidth;
use alloc::vec;
use alloc::vec::Vec;
use distributor::Access;
use sgi::{SgiSources, cpu_bit};

/// How to build a [`VgicV2`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VgicV2Config {
    /// vCPUs, 1 to [`VgicV2::MAX_VCPUS`].
    pub vcpus: usize,
    /// SPIs, 0 to [`VgicV2::MAX_SPIS`].
    pub spis: u32,
}

impl VgicV2Config {
    /// `vcpus` vCPUs with [`VgicV2::DEFAULT_SPIS`] SPIs.
    pub const fn new(vcpus: usize) -> Self {
        Self {
            vcpus,
            spis: VgicV2::DEFAULT_SPIS,
        }
    }

    fn check(&self) -> Result<(), VgicError> {
        let vcpus = (VgicV2::MAX_VCPUS, "a GICv2 serves at most 8 vCPUs");
        let spis = (self.spis > VgicV2::MAX_SPIS, "a GICv2 has at most 988 SPIs");
        check_config(self.vcpus, vcpus, &[spis])
    }
}

/// The GICv2 vGIC: the [`Core`] with the distributor (`GICD_*`, trapped and
/// emulated) and the `GICH_LR<n>` format in front ([`V2`]).
///
/// # Wiring
///
/// The guest's CPU interface is not emulated: the hypervisor maps the hardware's
/// virtual CPU interface (`GICV`) where the guest's device tree puts its `GICC`, so
/// acknowledge, end of interrupt and priority mask never reach the model. The model
/// plans the list registers: before entering vCPU `v` the hypervisor writes
/// `GICH_LR<n>` with `flush(v, n).value(n) as u32` (a GICv2 plan never sets bits
/// above 31) and `GICH_HCR` with `EN | maintenance_bits() as u32` (UIE and NPIE sit
/// where `ICH_HCR_EL2` has them, see [`gich_hcr`](super::gich_hcr)); after every exit
/// it reads the list registers back, zero-extends them and calls
/// [`sync`](crate::vgic::Vgic::sync).
///
/// The distributor's window is [`VgicV2::DISTRIBUTOR_SIZE`] (4 KiB); offsets past it
/// (a device tree may give the distributor 64 KiB, as QEMU `virt` does) read as zero
/// and are counted as [`GicFrame::Unmapped`].
///
/// # Which vCPU accesses
///
/// The registers of INTIDs 0 to 31 (`GICD_IGROUPR0`, `ISENABLER0`, ..., `IPRIORITYR0-7`,
/// `ITARGETSR0-7`, `ICFGR0-1`) and `GICD_CPENDSGIR<n>` / `GICD_SPENDSGIR<n>` are banked
/// per CPU, and `GICD_SGIR` needs its sender, so every access names the vCPU making
/// it: [`Vgic::mmio_read`](crate::vgic::Vgic::mmio_read) / [`Vgic::mmio_write`](crate::vgic::Vgic::mmio_write) take it as an argument (no
/// hidden state, nothing to forget; so, unlike [`VgicV3`](super::VgicV3), this is
/// not an [`MmioDevice`](crate::mmio::MmioDevice)). An access as a vCPU that does
/// not exist sees its banked registers as zero and ignoring writes, and sends no
/// SGIs.
///
/// After each write, [`Vgic::take_kicks`](crate::vgic::Vgic::take_kicks) returns the vCPUs to kick: the targets of
/// `GICD_SGIR` (GICv2 SGIs come from there, not from `ICC_SGI1R_EL1`, and
/// [`Vgic::send_sgi_from_register`](crate::vgic::Vgic::send_sgi_from_register) fails with [`VgicError::Unsupported`]), the
/// vCPUs an SPI write gave an interrupt to list, and those holding a written SPI in
/// a list register.
///
/// # The machine it models
///
/// - A GICv2 without the Security Extensions (`GICD_TYPER.SecurityExtn` = 0) but with
///   interrupt grouping: `GICD_CTLR.EnableGrp0` \[0\] and `EnableGrp1` \[1\],
///   `GICD_IGROUPR<n>` read-write, every interrupt in Group 0 at reset (Linux's
///   GICv2 driver never writes `IGROUPR` and enables Group 0 only; a Group 0 virtual
///   interrupt is a virtual IRQ unless the guest sets `GICV_CTLR.FIQEn`). `NSACR`
///   reads as zero; `GICD_SGIR.NSATT` is ignored (an SGI is sent whatever its group).
/// - It identifies as an Arm GIC-400: `GICD_IIDR` 0x0200_143B, the GIC-400's
///   `ICPIDR`/`ICCIDR` values (`ICPIDR2.ArchRev` 2).
/// - 1 to 8 vCPUs (`GICD_TYPER.CPUNumber` = vCPUs - 1); vCPU `i` is CPU interface `i`.
/// - SPIs 32 up to `32 + spis - 1` ([`VgicV2Config::spis`], default 64: Aerie's
///   guests get Aerie's own device tree, with the UART at SPI 1 and nothing past SPI
///   63; up to 988 for a guest given the host's interrupt numbers, e.g. the Raspberry
///   Pi 4's SPIs up to INTID 216 and more). `GICD_TYPER.ITLinesNumber` rounds up to
///   a multiple of 32 interrupts; the ones past the last SPI read as zero.
/// - An SPI goes to the lowest-numbered vCPU its `GICD_ITARGETSR` byte names (the
///   GICv2 1-of-N model, where any targeted CPU may take it; Linux targets one CPU),
///   and stays pending and undelivered while it names none. Target bits of CPUs
///   that do not exist read as zero. With one vCPU, `ITARGETSR` is read-as-zero
///   (IHI 0048B.b: on a uniprocessor GIC the registers are RAZ/WI) and every SPI
///   goes to vCPU 0.
/// - SGIs are pending per source CPU (`GICD_SPENDSGIR`), listed one source at a time
///   with the source in `GICH_LR.CPUID` (see `v2::sgi`); `ISPENDR0`/`ICPENDR0` bits of
///   SGIs are read-only, as the architecture says. An SGI raised with
///   [`Vgic::trigger_edge`](crate::vgic::Vgic::trigger_edge) comes from its target vCPU itself.
/// - Every access the model does not implement (unknown offset, the
///   IMPLEMENTATION DEFINED block at `0xD00`, wrong width, misaligned) reads as zero,
///   ignores writes and is counted in [`VgicStats`].
pub type VgicV2 = Core<V2>;

/// The GICv2 front-end's own state: SPI targets and SGI sources.
#[derive(Clone, Debug)]
pub struct V2 {
    config: VgicV2Config,
    /// `GICD_ITARGETSR` byte of each SPI: INTID `32 + i` is `targets[i]`.
    targets: Vec<u8>,
    /// Each vCPU's SGIs, per source CPU.
    sgis: Vec<SgiSources>,
}

impl VgicV2 {
    /// The most vCPUs: a GICv2 has at most 8 CPU interfaces.
    pub const MAX_VCPUS: usize = 8;
    /// The most SPIs: 988 (INTIDs up to 1019; 1020 to 1023 are special).
    pub const MAX_SPIS: u32 = 988;
    /// SPIs by default: 64 (INTIDs 32 to 95).
    pub const DEFAULT_SPIS: u32 = 64;
    /// Size of the distributor's register window (4 KiB).
    pub const DISTRIBUTOR_SIZE: u64 = 0x1000;

    /// A vGIC in its reset state: every interrupt disabled, Group 0, priority 0,
    /// inactive, level-sensitive except the SGIs, targeting no vCPU; both groups
    /// disabled.
    pub fn new(config: VgicV2Config) -> Result<Self, VgicError> {
        config.check()?;
        let front = V2 {
            config,
            targets: vec![0; config.spis as usize],
            sgis: vec![SgiSources::default(); config.vcpus],
        };
        Ok(Core::with_frontend(config.vcpus, config.spis, false, front))
    }

    /// The configuration it was built with.
    pub const fn config(&self) -> &VgicV2Config {
        &self.front.config
    }

    /// One past the highest implemented INTID (`32 + spis`).
    pub const fn intid_limit(&self) -> u32 {
        FIRST_SPI + self.front.config.spis
    }

    /// The size of the MMIO window: the distributor's 4 KiB.
    pub const fn window_size(&self) -> u64 {
        Self::DISTRIBUTOR_SIZE
    }

    /// The counters.
    pub const fn stats(&self) -> &VgicStats {
        &self.irqs.stats
    }

    /// SGI `intid` from CPU `source` becomes pending on vCPU `target`.
    fn raise_sgi_from(&mut self, target: usize, intid: u32, source: usize) {
        let (Some(sgis), Some(irq)) = (
            self.front.sgis.get_mut(target),
            self.irqs.irq_of_mut(target, intid),
        ) else {
            return;
        };
        sgis.set_pending(intid, cpu_bit(source));
        irq.set_latch(sgis.any_pending(intid));
        self.touch(Some(target), intid);
    }

    /// Reads the register at `offset` as vCPU `vcpu`.
    fn read_as(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        let value = if offset < Self::DISTRIBUTOR_SIZE {
            self.gicd_read(Access {
                vcpu,
                offset,
                width,
            })
        } else {
            None
        };
        match value {
            Some(value) => width.truncate(value),
            None => {
                self.irqs
                    .stats
                    .ignore(V2::frame_of(offset), offset, width, None);
                0
            }
        }
    }

    /// Writes the register at `offset` as vCPU `vcpu`.
    fn write_as(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        let value = width.truncate(value);
        let handled = offset < Self::DISTRIBUTOR_SIZE
            && self.gicd_write(
                Access {
                    vcpu,
                    offset,
                    width,
                },
                value as u32,
            );
        if !handled {
            self.irqs
                .stats
                .ignore(V2::frame_of(offset), offset, width, Some(value));
        }
    }
}

impl V2 {
    /// The implemented CPU interfaces, one bit per vCPU.
    const fn cpu_mask(&self) -> u8 {
        ((1u16 << self.config.vcpus) - 1) as u8
    }

    /// The bits an SPI's `GICD_ITARGETSR` byte can hold: one per vCPU, none on a
    /// uniprocessor (RAZ/WI).
    const fn target_mask(&self) -> u8 {
        if self.config.vcpus == 1 {
            0
        } else {
            self.cpu_mask()
        }
    }

    /// The distributor, or past its 4 KiB.
    const fn frame_of(offset: u64) -> GicFrame {
        if offset < VgicV2::DISTRIBUTOR_SIZE {
            GicFrame::Distributor
        } else {
            GicFrame::Unmapped
        }
    }
}

impl Frontend for V2 {
    fn spi_target(&self, index: usize) -> Option<usize> {
        let targets = *self.targets.get(index)?;
        if self.config.vcpus == 1 {
            return Some(0);
        }
        (targets != 0).then_some(targets.trailing_zeros() as usize)
    }

    fn window_size(&self) -> u64 {
        VgicV2::DISTRIBUTOR_SIZE
    }

    fn read(core: &mut VgicV2, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        core.read_as(vcpu, offset, width)
    }

    fn write(core: &mut VgicV2, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        core.write_as(vcpu, offset, width, value);
    }

    fn encode(entry: &LrEntry) -> u64 {
        list_registers::encode(entry)
    }

    const LIST_REGISTER_FORMAT: ListRegisterFormat = list_registers::FORMAT;

    /// The list register must hold the same INTID and the same source: the CPUID of
    /// a software interrupt, or no CPUID (HW set) for a hardware-backed one.
    fn read_back(entry: &LrEntry, value: u64) -> Option<LrState> {
        let lr = list_registers::decode(value);
        let same_source = match (entry.physical, lr.source) {
            (Some(_), None) => true,
            (None, Some(source)) => source == entry.source,
            _ => false,
        };
        (lr.intid == entry.intid && same_source).then_some(lr.state)
    }

    /// An SGI the hypervisor raises comes from its target vCPU itself.
    fn raise_sgi(core: &mut VgicV2, target: usize, intid: u32) {
        core.raise_sgi_from(target, intid, target);
    }

    fn sgi_listing(&self, vcpu: usize, intid: u32, state: LrState) -> SgiListing {
        match self.sgis.get(vcpu) {
            Some(sgis) => sgis.listing(intid, state),
            None => SgiListing::plain(state),
        }
    }

    fn sgi_listed(
        &mut self,
        vcpu: usize,
        listing: &SgiListing,
        irq: &mut IrqState,
        entry: &mut LrEntry,
    ) {
        if let Some(sgis) = self.sgis.get_mut(vcpu) {
            sgis.listed(entry.intid, listing);
            irq.set_latch(sgis.any_pending(entry.intid));
            entry.source = listing.source;
            entry.eoi_maintenance = listing.more;
        }
    }

    fn sgi_returned(
        &mut self,
        vcpu: usize,
        entry: &LrEntry,
        returned: LrState,
        irq: &mut IrqState,
    ) {
        if let Some(sgis) = self.sgis.get_mut(vcpu) {
            sgis.returned(entry.intid, entry.source, returned);
            irq.set_latch(sgis.any_pending(entry.intid));
        }
    }
}
