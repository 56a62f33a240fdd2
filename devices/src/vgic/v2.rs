//! The GICv2 front-end: an emulated distributor and the list-register flush/sync of
//! [`Vgic`] in the `GICH_LR<n>` format (see [`VgicV2`] for the model and how to
//! wire it up).

use super::list_registers::{Candidate, LrEntry, LrPlan, Selection, Shadow};
use super::list_registers_v2::decode_v2;
use super::sgi::SgiTargets;
use super::sgi_v2::{SgiListing, SgiSources, cpu_bit};
use super::stats::{GicFrame, VgicStats};
use super::table::IrqTable;
use super::{FIRST_SPI, SGIS, Vgic, VgicError};
use crate::mmio::{AccessWidth, MmioDevice};
use alloc::vec;
use alloc::vec::Vec;

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
        let reason = if self.vcpus == 0 {
            "it needs at least one vCPU"
        } else if self.vcpus > VgicV2::MAX_VCPUS {
            "a GICv2 serves at most 8 vCPUs"
        } else if self.spis > VgicV2::MAX_SPIS {
            "a GICv2 has at most 988 SPIs"
        } else {
            return Ok(());
        };
        Err(VgicError::BadConfig { reason })
    }
}

/// The GICv2 front-end: the distributor (`GICD_*`, trapped and emulated) and the
/// list-register flush/sync of [`Vgic`] in the `GICH_LR<n>` format.
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
/// [`sync`](Vgic::sync).
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
/// it: [`Vgic::mmio_read`] / [`Vgic::mmio_write`] take it as an argument (the way to
/// use from the MMIO exit path: no hidden state, nothing to forget). For a caller
/// that only has an [`MmioDevice`] (the bus), [`VgicV2::access_as`] sets the vCPU the
/// following [`MmioDevice`] accesses are made by (initially vCPU 0). An access as a
/// vCPU that does not exist sees its banked registers as zero and ignoring writes,
/// and sends no SGIs.
///
/// After each write, [`Vgic::take_kicks`] returns the vCPUs to kick: the targets of
/// `GICD_SGIR` (GICv2 SGIs come from there, not from `ICC_SGI1R_EL1`, and
/// [`Vgic::send_sgi_from_register`] fails with [`VgicError::Unsupported`]), the
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
///   with the source in `GICH_LR.CPUID` (see `sgi_v2`); `ISPENDR0`/`ICPENDR0` bits of
///   SGIs are read-only, as the architecture says. An SGI raised with
///   [`Vgic::trigger_edge`] comes from its target vCPU itself.
/// - Every access the model does not implement (unknown offset, the
///   IMPLEMENTATION DEFINED block at `0xD00`, wrong width, misaligned) reads as zero,
///   ignores writes and is counted in [`VgicStats`].
#[derive(Clone, Debug)]
pub struct VgicV2 {
    pub(super) config: VgicV2Config,
    /// Interrupts, group enables, list-register shadows, counters.
    pub(super) irqs: IrqTable,
    /// `GICD_ITARGETSR` byte of each SPI: INTID `32 + i` is `targets[i]`.
    pub(super) targets: Vec<u8>,
    /// Each vCPU's SGIs, per source CPU.
    pub(super) sgis: Vec<SgiSources>,
    /// The vCPU the next [`MmioDevice`] access is made by.
    accessor: usize,
    /// vCPUs to kick, one bit each, since the last [`Vgic::take_kicks`].
    pub(super) kicks: u8,
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
        Ok(Self {
            config,
            irqs: IrqTable::new(config.vcpus, config.spis, false),
            targets: vec![0; config.spis as usize],
            sgis: vec![SgiSources::default(); config.vcpus],
            accessor: 0,
            kicks: 0,
        })
    }

    /// The configuration it was built with.
    pub const fn config(&self) -> &VgicV2Config {
        &self.config
    }

    /// One past the highest implemented INTID (`32 + spis`).
    pub const fn intid_limit(&self) -> u32 {
        FIRST_SPI + self.config.spis
    }

    /// The size of the MMIO window: the distributor's 4 KiB.
    pub const fn window_size(&self) -> u64 {
        Self::DISTRIBUTOR_SIZE
    }

    /// The counters.
    pub const fn stats(&self) -> &VgicStats {
        &self.irqs.stats
    }

    /// Makes the following [`MmioDevice`] accesses accesses by vCPU `vcpu` (for the
    /// banked registers and `GICD_SGIR`'s sender). [`Vgic::mmio_read`] and
    /// [`Vgic::mmio_write`] name the vCPU themselves and do not need this.
    pub fn access_as(&mut self, vcpu: usize) {
        self.accessor = vcpu;
    }

    /// The implemented CPU interfaces, one bit per vCPU.
    pub(super) const fn cpu_mask(&self) -> u8 {
        ((1u16 << self.config.vcpus) - 1) as u8
    }

    /// The bits an SPI's `GICD_ITARGETSR` byte can hold: one per vCPU, none on a
    /// uniprocessor (RAZ/WI).
    pub(super) const fn target_mask(&self) -> u8 {
        if self.config.vcpus == 1 {
            0
        } else {
            self.cpu_mask()
        }
    }

    /// The vCPU SPI `index` (INTID `32 + index`) goes to, if any.
    pub(super) fn spi_target(&self, index: usize) -> Option<usize> {
        let targets = *self.targets.get(index)?;
        if self.config.vcpus == 1 {
            return Some(0);
        }
        (targets != 0).then_some(targets.trailing_zeros() as usize)
    }

    /// SGI `intid` from CPU `source` becomes pending on vCPU `target`.
    pub(super) fn raise_sgi(&mut self, target: usize, intid: u32, source: usize) {
        let (Some(sgis), Some(irqs)) =
            (self.sgis.get_mut(target), self.irqs.private.get_mut(target))
        else {
            return;
        };
        sgis.set_pending(intid, cpu_bit(source));
        if let Some(irq) = irqs.get_mut(intid as usize) {
            irq.set_latch(sgis.any_pending(intid));
        }
    }

    /// Reads the register at `offset` as vCPU `vcpu`.
    fn read_as(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        let value = if offset < Self::DISTRIBUTOR_SIZE {
            self.gicd_read(vcpu, offset, width)
        } else {
            None
        };
        match value {
            Some(value) => width.truncate(value),
            None => {
                self.irqs
                    .stats
                    .ignore(Self::frame_of(offset), offset, width, None);
                0
            }
        }
    }

    /// Writes the register at `offset` as vCPU `vcpu`.
    fn write_as(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        let value = width.truncate(value);
        let handled =
            offset < Self::DISTRIBUTOR_SIZE && self.gicd_write(vcpu, offset, width, value);
        if !handled {
            self.irqs
                .stats
                .ignore(Self::frame_of(offset), offset, width, Some(value));
        }
    }

    /// The distributor, or past its 4 KiB.
    const fn frame_of(offset: u64) -> GicFrame {
        if offset < Self::DISTRIBUTOR_SIZE {
            GicFrame::Distributor
        } else {
            GicFrame::Unmapped
        }
    }
}

impl Vgic for VgicV2 {
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }

    fn vcpus(&self) -> usize {
        self.config.vcpus
    }

    fn set_level(&mut self, intid: u32, vcpu: Option<usize>, level: bool) -> Result<(), VgicError> {
        self.irqs.set_level(intid, vcpu, level)
    }

    fn set_hardware_level(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
        level: bool,
    ) -> Result<Option<u32>, VgicError> {
        self.irqs.set_hardware_level(intid, vcpu, level)
    }

    fn trigger_edge(&mut self, intid: u32, vcpu: Option<usize>) -> Result<(), VgicError> {
        if intid >= SGIS {
            return self.irqs.trigger_edge(intid, vcpu);
        }
        // Checks the vCPU (missing or out of range).
        self.irqs.input(intid, vcpu)?;
        if let Some(target) = vcpu {
            self.raise_sgi(target, intid, target);
        }
        Ok(())
    }

    /// Fails with [`VgicError::Unsupported`]: a GICv2 has no `ICC_SGI1R_EL1` (its
    /// SGIs come from `GICD_SGIR` writes, see [`take_kicks`](Vgic::take_kicks)).
    fn send_sgi_from_register(
        &mut self,
        _sender: usize,
        _icc_sgi1r: u64,
    ) -> Result<SgiTargets, VgicError> {
        Err(VgicError::Unsupported)
    }

    fn flush(&mut self, vcpu: usize, list_registers: usize) -> LrPlan {
        let mut plan = LrPlan::empty();
        if vcpu >= self.config.vcpus {
            return plan;
        }
        if !self.irqs.shadows[vcpu].is_empty() {
            // Never synced: the list registers are taken back as they were loaded.
            self.sync(vcpu, &[]);
        }
        let mut selection = Selection::new(list_registers);
        let mut sgi_listings: [Option<SgiListing>; SGIS as usize] = [None; SGIS as usize];
        let sgis = &self.sgis[vcpu];
        for (intid, irq) in self
            .irqs
            .interrupts_of(vcpu, |index| self.spi_target(index))
        {
            let Some(mut state) = irq.lr_state(self.irqs.group_enabled(irq.group1)) else {
                continue;
            };
            if let Some(slot) = sgi_listings.get_mut(intid as usize) {
                let listing = sgis.listing(intid, state);
                state = listing.state;
                *slot = Some(listing);
            }
            selection.offer(Candidate {
                intid,
                state,
                priority: irq.priority(),
            });
        }
        let mut shadow = Shadow::default();
        for candidate in selection.chosen() {
            let listing = sgi_listings
                .get(candidate.intid as usize)
                .copied()
                .flatten();
            let Some(irq) = self.irqs.irq_of_mut(vcpu, candidate.intid) else {
                continue;
            };
            let physical = irq.begin_flight(vcpu, candidate.state);
            let mut entry = LrEntry {
                intid: candidate.intid,
                state: candidate.state,
                priority: candidate.priority,
                group1: irq.group1,
                physical,
                ..LrEntry::default()
            };
            if let (Some(listing), Some(sgis)) = (listing, self.sgis.get_mut(vcpu)) {
                sgis.listed(candidate.intid, &listing);
                irq.set_latch(sgis.any_pending(candidate.intid));
                entry.source = listing.source;
                entry.eoi_maintenance = listing.more;
            }
            plan.push(entry.encode_v2());
            shadow.push(entry);
        }
        self.irqs.shadows[vcpu] = shadow;
        plan.underflow_maintenance = selection.left_out_pending;
        plan.no_pending_maintenance =
            selection.left_out_pending && selection.chosen().iter().all(|c| !c.state.pending);
        if selection.left_out_active {
            self.irqs.stats.unlisted_active += 1;
        }
        plan
    }

    fn sync(&mut self, vcpu: usize, list_registers: &[u64]) {
        let Some(shadow) = self.irqs.shadows.get_mut(vcpu).map(core::mem::take) else {
            return;
        };
        for (n, entry) in shadow.entries().iter().enumerate() {
            let returned = match list_registers.get(n).map(|&value| decode_v2(value)) {
                Some(lr) if lr.intid == entry.intid && same_source(entry, lr.source) => lr.state,
                Some(_) => {
                    self.irqs.stats.lr_mismatches += 1;
                    entry.state
                }
                None => entry.state,
            };
            let Some(irq) = self.irqs.irq_of_mut(vcpu, entry.intid) else {
                continue;
            };
            if irq.in_flight_on() != Some(vcpu) {
                continue;
            }
            irq.end_flight(returned);
            if entry.intid < SGIS
                && let Some(sgis) = self.sgis.get_mut(vcpu)
            {
                sgis.returned(entry.intid, entry.source, returned);
                irq.set_latch(sgis.any_pending(entry.intid));
            }
        }
        // An SPI moved elsewhere while this vCPU held it goes to its new target now.
        for entry in shadow.entries() {
            let index = entry.intid.checked_sub(FIRST_SPI);
            if index.is_some_and(|index| self.spi_target(index as usize) != Some(vcpu)) {
                self.note_spi_kicks(entry.intid, 1);
            }
        }
    }

    fn has_pending(&self, vcpu: usize) -> bool {
        self.highest_pending_priority(vcpu).is_some()
    }

    fn highest_pending_priority(&self, vcpu: usize) -> Option<u8> {
        self.irqs
            .highest_pending_priority(vcpu, |index| self.spi_target(index))
    }

    fn map_hardware(&mut self, intid: u32, vcpu: usize, physical: u32) -> Result<(), VgicError> {
        self.irqs.map_hardware(intid, vcpu, physical)
    }

    fn mmio_read(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        self.read_as(vcpu, offset, width)
    }

    fn mmio_write(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        self.write_as(vcpu, offset, width, value);
    }

    fn take_kicks(&mut self) -> SgiTargets {
        SgiTargets::group(0, u16::from(core::mem::take(&mut self.kicks)))
    }

    fn window_size(&self) -> u64 {
        VgicV2::window_size(self)
    }

    fn stats(&self) -> &VgicStats {
        VgicV2::stats(self)
    }
}

/// Whether a list register read back holds the same source as `entry`: the CPUID
/// of a software interrupt, or no CPUID (HW set) for a hardware-backed one.
fn same_source(entry: &LrEntry, source: Option<u8>) -> bool {
    match (entry.physical, source) {
        (Some(_), None) => true,
        (None, Some(source)) => source == entry.source,
        _ => false,
    }
}

impl MmioDevice for VgicV2 {
    /// Reads as the vCPU last given to [`VgicV2::access_as`].
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        self.read_as(self.accessor, offset, width)
    }

    /// Writes as the vCPU last given to [`VgicV2::access_as`].
    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        self.write_as(self.accessor, offset, width, value);
    }
}
