//! The GICv3 front-end: a distributor, one redistributor per vCPU, and the
//! list-register flush/sync of [`Vgic`] (see [`VgicV3`] for the model and the two
//! ways to wire it up).

use super::list_registers::{Candidate, LrEntry, LrPlan, Selection, Shadow, decode_v3};
use super::sgi::{KickSet, SgiRequest, SgiTargets};
use super::stats::{GicFrame, VgicStats};
use super::table::IrqTable;
use super::{FIRST_SPI, Vgic, VgicError};
use crate::mmio::{AccessWidth, MmioDevice};
use alloc::vec;
use alloc::vec::Vec;

/// Size of the distributor's window.
pub const DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// Size of one redistributor: the RD frame and the SGI frame.
pub const REDISTRIBUTOR_SIZE: u64 = 0x2_0000;
/// Offset of the SGI frame within a redistributor.
pub const SGI_FRAME_OFFSET: u64 = 0x1_0000;
/// Where the first redistributor starts relative to the distributor on QEMU `virt`
/// (`0x080a_0000 - 0x0800_0000`), and in Aerie's guest layout.
pub const DEFAULT_REDISTRIBUTOR_OFFSET: u64 = 0xA_0000;
/// SPIs by default: 64 (INTIDs 32 to 95).
pub const DEFAULT_SPIS: u32 = 64;
/// The most SPIs: 960 (INTIDs up to 991, `GICD_TYPER.ITLinesNumber` = 30).
pub const MAX_SPIS: u32 = 960;
/// The most vCPUs: every affinity Aff1 0-255 / Aff0 0-15 names one.
pub const MAX_VCPUS: usize = VCPUS_PER_AFF1 * AFF1_VALUES;

/// vCPUs per Aff1 value (Aff0 0 to 15: what an SGI target list can address).
const VCPUS_PER_AFF1: usize = 16;
/// Aff1 values.
const AFF1_VALUES: usize = 256;
/// Aff1 in a packed affinity (Aff3.Aff2.Aff1.Aff0), bits \[15:8\].
const AFF1_SHIFT: u32 = 8;

/// The affinity of vCPU `index` packed as Aff3.Aff2.Aff1.Aff0 (what
/// `GICR_TYPER[63:32]` reports): Aff1 = `index / 16`, Aff0 = `index % 16`.
pub const fn vcpu_affinity(index: usize) -> u32 {
    (((index / VCPUS_PER_AFF1) as u32) << AFF1_SHIFT) | (index % VCPUS_PER_AFF1) as u32
}

/// The vCPU with affinity `aff3.aff2.aff1.aff0` among `vcpus`, if any.
pub(super) fn vcpu_for_affinity(
    aff3: u8,
    aff2: u8,
    aff1: u8,
    aff0: u8,
    vcpus: usize,
) -> Option<usize> {
    if aff3 != 0 || aff2 != 0 || usize::from(aff0) >= VCPUS_PER_AFF1 {
        return None;
    }
    let index = usize::from(aff1) * VCPUS_PER_AFF1 + usize::from(aff0);
    (index < vcpus).then_some(index)
}

/// How to build a [`VgicV3`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VgicV3Config {
    /// vCPUs, 1 to [`MAX_VCPUS`].
    pub vcpus: usize,
    /// SPIs, a multiple of 32 up to [`MAX_SPIS`].
    pub spis: u32,
    /// Offset of the first redistributor from the distributor's base: a multiple of
    /// 64 KiB, at least [`DISTRIBUTOR_SIZE`].
    pub redistributor_offset: u64,
}

impl VgicV3Config {
    /// `vcpus` vCPUs with the defaults: [`DEFAULT_SPIS`] SPIs, redistributors at
    /// [`DEFAULT_REDISTRIBUTOR_OFFSET`].
    pub const fn new(vcpus: usize) -> Self {
        Self {
            vcpus,
            spis: DEFAULT_SPIS,
            redistributor_offset: DEFAULT_REDISTRIBUTOR_OFFSET,
        }
    }

    fn check(&self) -> Result<(), VgicError> {
        let reason = if self.vcpus == 0 {
            "it needs at least one vCPU"
        } else if self.vcpus > MAX_VCPUS {
            "at most 4096 vCPUs are supported"
        } else if self.spis % 32 != 0 || self.spis > MAX_SPIS {
            "the number of SPIs must be a multiple of 32, at most 960"
        } else if self.redistributor_offset < DISTRIBUTOR_SIZE
            || self.redistributor_offset % SGI_FRAME_OFFSET != 0
        {
            "the redistributors must start at a multiple of 64 KiB after the distributor's window"
        } else {
            return Ok(());
        };
        Err(VgicError::BadConfig { reason })
    }
}

/// The GICv3 front-end: a distributor, one redistributor per vCPU, and the
/// list-register flush/sync of [`Vgic`].
///
/// # One device, two windows
///
/// The guest sees the distributor (64 KiB) and the redistributors (128 KiB per vCPU:
/// the RD frame, then the SGI frame 64 KiB later) at two addresses that are not
/// contiguous (QEMU `virt`: `0x0800_0000` and `0x080a_0000`). [`VgicV3`] is *one*
/// [`MmioDevice`] whose window starts at the distributor and ends after the last
/// redistributor ([`VgicV3::window_size`]); offsets between the two
/// (`DISTRIBUTOR_SIZE..redistributor_offset`, where QEMU has its ITS and which Aerie's
/// guests do not have) read as zero and ignore writes, counted like any other
/// unknown access. One model, one owner, no lock inside `devices`:
///
/// - the hypervisor can keep the vGIC behind its own lock and, on an MMIO exit,
///   check `address - distributor base < window_size()` before asking the bus, then
///   call [`MmioDevice::read`]/[`write`](MmioDevice::write) on the locked model (flush
///   and sync then never wait for the bus);
/// - or put it on the [`MmioBus`](crate::bus::MmioBus) like any device and reach it
///   with [`MmioBus::downcast_mut`](crate::bus::MmioBus::downcast_mut) under the
///   bus's lock, as for the UART.
///
/// [`VgicV3::distributor_read`] and friends take offsets within each window, for a
/// caller that prefers two separate entries.
///
/// # The machine it models
///
/// - One security state (`GICD_CTLR.DS` = 1) with affinity routing always on
///   (`ARE` reads as one): the guest's interrupts are Group 0 or Group 1, enabled by
///   `GICD_CTLR.EnableGrp0` / `EnableGrp1`; `IGRPMODR` and `NSACR` read as zero.
/// - INTIDs 0 to 31 per vCPU, SPIs 32 up to `32 + spis - 1` ([`VgicV3Config::spis`],
///   a multiple of 32); no LPIs, no ITS, no extended ranges; 10 INTID bits.
/// - vCPU `i` has affinity Aff1 = `i / 16`, Aff0 = `i % 16` ([`vcpu_affinity`],
///   matching `aerie_hyp::vcpu::guest_mpidr`).
/// - Writes take effect at once, so `GICD_CTLR.RWP` and `GICR_CTLR.RWP` read as zero.
/// - `GICR_WAKER.ProcessorSleep` keeps what the guest writes and `ChildrenAsleep`
///   follows it at once (the handshake Linux performs); like QEMU and KVM, a sleeping
///   redistributor still receives interrupts.
/// - An SPI routed with `GICD_IROUTER.Interrupt_Routing_Mode` = 1 ("any PE") goes to
///   the lowest-numbered vCPU whose redistributor is awake, or vCPU 0 if none is; one
///   routed to an affinity that names no vCPU stays pending and undelivered.
/// - Every access the model does not implement (unknown offset, wrong width,
///   misaligned) reads as zero, ignores writes and is counted in [`VgicStats`].
#[derive(Clone, Debug)]
pub struct VgicV3 {
    pub(super) config: VgicV3Config,
    /// Interrupts, group enables, list-register shadows, counters.
    pub(super) irqs: IrqTable,
    /// `GICD_IROUTER<32 + i>` (only the defined bits).
    pub(super) routes: Vec<u64>,
    /// `GICR_WAKER.ProcessorSleep` of each vCPU.
    pub(super) asleep: Vec<bool>,
    /// Where "any PE" SPIs go: the first awake vCPU, or 0.
    pub(super) any_pe_target: usize,
    /// vCPUs to kick since the last [`Vgic::take_kicks`].
    pub(super) kicks: KickSet,
}

impl VgicV3 {
    /// A vGIC in its reset state (every interrupt disabled, Group 1, priority 0,
    /// level-sensitive except SGIs, routed to vCPU 0; both groups disabled; every
    /// redistributor asleep).
    pub fn new(config: VgicV3Config) -> Result<Self, VgicError> {
        config.check()?;
        Ok(Self {
            config,
            irqs: IrqTable::new(config.vcpus, config.spis, true),
            routes: vec![0; config.spis as usize],
            asleep: vec![true; config.vcpus],
            any_pe_target: 0,
            kicks: KickSet::default(),
        })
    }

    /// The configuration it was built with.
    pub const fn config(&self) -> &VgicV3Config {
        &self.config
    }

    /// One past the highest implemented INTID (`32 + spis`).
    pub const fn intid_limit(&self) -> u32 {
        FIRST_SPI + self.config.spis
    }

    /// The size of the MMIO window from the distributor's base to the end of the last
    /// redistributor.
    pub const fn window_size(&self) -> u64 {
        self.config.redistributor_offset + self.config.vcpus as u64 * REDISTRIBUTOR_SIZE
    }

    /// The counters.
    pub const fn stats(&self) -> &VgicStats {
        &self.irqs.stats
    }

    /// The vCPU SPI `index` (INTID `32 + index`) is routed to, if any.
    pub(super) fn spi_target(&self, index: usize) -> Option<usize> {
        let route = *self.routes.get(index)?;
        if route & super::distributor::irouter::ANY_PE != 0 {
            return Some(self.any_pe_target);
        }
        let field = |shift: u32| (route >> shift) as u8;
        vcpu_for_affinity(
            field(super::distributor::irouter::AFF3_SHIFT),
            field(super::distributor::irouter::AFF2_SHIFT),
            field(super::distributor::irouter::AFF1_SHIFT),
            field(super::distributor::irouter::AFF0_SHIFT),
            self.config.vcpus,
        )
    }

    /// Recomputes where "any PE" SPIs go after a redistributor woke or slept.
    pub(super) fn update_any_pe_target(&mut self) {
        self.any_pe_target = self.asleep.iter().position(|&asleep| !asleep).unwrap_or(0);
    }

    /// Adds to the kicks the vCPUs a guest write to the registers of `intids` affects
    /// (vCPU `owner`'s SGIs and PPIs, or SPIs).
    pub(super) fn note_write(&mut self, owner: Option<usize>, intids: core::ops::Range<u32>) {
        let kicks = self
            .irqs
            .affected_by_write(owner, intids, |index| self.spi_target(index));
        self.kicks.merge(kicks);
    }

    /// Adds to the kicks the vCPUs a change of the group enables affects.
    pub(super) fn note_group_enables(&mut self) {
        let kicks = self
            .irqs
            .affected_by_group_enables(|index| self.spi_target(index));
        self.kicks.merge(kicks);
    }

    /// Counts an ignored access.
    fn ignore(&mut self, frame: GicFrame, offset: u64, width: AccessWidth, written: Option<u64>) {
        self.irqs.stats.ignore(frame, offset, width, written);
    }

    /// Reads the distributor register at `offset` within its window.
    pub fn distributor_read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        match self.gicd_read(offset, width) {
            Some(value) => width.truncate(value),
            None => {
                self.ignore(GicFrame::Distributor, offset, width, None);
                0
            }
        }
    }

    /// Writes the distributor register at `offset` within its window.
    pub fn distributor_write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        let value = width.truncate(value);
        if !self.gicd_write(offset, width, value) {
            self.ignore(GicFrame::Distributor, offset, width, Some(value));
        }
    }

    /// Splits an offset within the redistributors' window into vCPU, frame and offset
    /// within the frame.
    fn redistributor_frame(&self, offset: u64) -> Option<(usize, bool, u64)> {
        let vcpu = usize::try_from(offset / REDISTRIBUTOR_SIZE).ok()?;
        if vcpu >= self.config.vcpus {
            return None;
        }
        let within = offset % REDISTRIBUTOR_SIZE;
        let sgi_frame = within >= SGI_FRAME_OFFSET;
        Some((vcpu, sgi_frame, within % SGI_FRAME_OFFSET))
    }

    /// Reads the redistributor register at `offset` from the first redistributor.
    pub fn redistributor_read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        let (frame, value) = match self.redistributor_frame(offset) {
            Some((vcpu, false, within)) => (
                GicFrame::Redistributor { vcpu },
                self.gicr_rd_read(vcpu, within, width),
            ),
            Some((vcpu, true, within)) => (
                GicFrame::SgiFrame { vcpu },
                self.gicr_sgi_read(vcpu, within, width),
            ),
            None => (GicFrame::Unmapped, None),
        };
        match value {
            Some(value) => width.truncate(value),
            None => {
                let within = self.frame_offset(frame, offset);
                self.ignore(frame, within, width, None);
                0
            }
        }
    }

    /// Writes the redistributor register at `offset` from the first redistributor.
    pub fn redistributor_write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        let value = width.truncate(value);
        let (frame, handled) = match self.redistributor_frame(offset) {
            Some((vcpu, false, within)) => (
                GicFrame::Redistributor { vcpu },
                self.gicr_rd_write(vcpu, within, width, value),
            ),
            Some((vcpu, true, within)) => (
                GicFrame::SgiFrame { vcpu },
                self.gicr_sgi_write(vcpu, within, width, value),
            ),
            None => (GicFrame::Unmapped, false),
        };
        if !handled {
            let within = self.frame_offset(frame, offset);
            self.ignore(frame, within, width, Some(value));
        }
    }

    /// The offset reported for an ignored access at `offset` from the first
    /// redistributor: within its frame, or from the distributor's base if unmapped.
    fn frame_offset(&self, frame: GicFrame, offset: u64) -> u64 {
        match frame {
            GicFrame::Unmapped => offset.saturating_add(self.config.redistributor_offset),
            _ => offset % SGI_FRAME_OFFSET,
        }
    }

    /// Makes SGI `intid` pending on `target` if its copy is in Group 1 (what
    /// `ICC_SGI1R_EL1` generates with one security state, IHI 0069H "Forwarding an
    /// SGI to a target PE"). Returns whether it was.
    fn deliver_group1_sgi(&mut self, target: usize, intid: u32) -> bool {
        match self
            .irqs
            .private
            .get_mut(target)
            .map(|irqs| &mut irqs[intid as usize])
        {
            Some(irq) if irq.group1 => irq.trigger(),
            _ => false,
        }
    }
}

impl Vgic for VgicV3 {
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
        self.irqs.trigger_edge(intid, vcpu)
    }

    fn send_sgi_from_register(
        &mut self,
        sender: usize,
        icc_sgi1r: u64,
    ) -> Result<SgiTargets, VgicError> {
        let vcpus = self.config.vcpus;
        if sender >= vcpus {
            return Err(VgicError::NoSuchVcpu {
                vcpu: sender,
                vcpus,
            });
        }
        let request = SgiRequest::decode(icc_sgi1r);
        if request.all_but_self {
            let mut skipped = 0u64;
            for target in (0..vcpus).filter(|&target| target != sender) {
                if !self.deliver_group1_sgi(target, request.intid) && target < u64::BITS as usize {
                    skipped |= 1 << target;
                }
            }
            return Ok(SgiTargets::all_but(sender, vcpus, skipped));
        }
        let first = usize::from(request.aff1) * VCPUS_PER_AFF1;
        let mut mask = 0u16;
        for bit in 0..u16::BITS {
            if request.target_list & (1 << bit) == 0 {
                continue;
            }
            // TargetList[n] names Aff0 = RS * 16 + n (at most 255).
            let aff0 = request.range_selector * 16 + bit as u8;
            let target = vcpu_for_affinity(request.aff3, request.aff2, request.aff1, aff0, vcpus);
            if let Some(target) = target
                && self.deliver_group1_sgi(target, request.intid)
            {
                mask |= 1 << (target - first);
            }
        }
        Ok(SgiTargets::group(first, mask))
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
        for (intid, irq) in self
            .irqs
            .interrupts_of(vcpu, |index| self.spi_target(index))
        {
            if let Some(state) = irq.lr_state(self.irqs.group_enabled(irq.group1)) {
                selection.offer(Candidate {
                    intid,
                    state,
                    priority: irq.priority(),
                });
            }
        }
        let mut shadow = Shadow::default();
        for candidate in selection.chosen() {
            let Some(irq) = self.irqs.irq_of_mut(vcpu, candidate.intid) else {
                continue;
            };
            let physical = irq.begin_flight(vcpu, candidate.state);
            let entry = LrEntry {
                intid: candidate.intid,
                state: candidate.state,
                priority: candidate.priority,
                group1: irq.group1,
                physical,
                ..LrEntry::default()
            };
            plan.push(entry.encode_v3());
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
            let returned = match list_registers.get(n).map(|&value| decode_v3(value)) {
                Some((intid, state)) if intid == entry.intid => state,
                Some(_) => {
                    self.irqs.stats.lr_mismatches += 1;
                    entry.state
                }
                None => entry.state,
            };
            if let Some(irq) = self.irqs.irq_of_mut(vcpu, entry.intid)
                && irq.in_flight_on() == Some(vcpu)
            {
                irq.end_flight(returned);
            }
        }
        // An SPI routed elsewhere while this vCPU held it goes to its new target now.
        for entry in shadow.entries() {
            let index = entry.intid.checked_sub(FIRST_SPI);
            if index.is_some_and(|index| self.spi_target(index as usize) != Some(vcpu)) {
                self.note_write(None, entry.intid..entry.intid + 1);
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

    /// GICv3 registers are not banked by the accessing vCPU (each vCPU has its own
    /// redistributor frames), so `vcpu` is not needed: this is
    /// [`MmioDevice::read`].
    fn mmio_read(&mut self, _vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        MmioDevice::read(self, offset, width)
    }

    /// [`MmioDevice::write`]; `vcpu` is not needed (see [`mmio_read`](Self::mmio_read)).
    fn mmio_write(&mut self, _vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        MmioDevice::write(self, offset, width, value);
    }

    /// GICv3 SGIs come from `ICC_SGI1R_EL1` and
    /// [`send_sgi_from_register`](Vgic::send_sgi_from_register) returns their targets;
    /// these are the vCPUs distributor and redistributor writes affect, and the new
    /// targets of SPIs moved while another vCPU held them (found by its
    /// [`sync`](Vgic::sync)).
    fn take_kicks(&mut self) -> SgiTargets {
        self.kicks.take(self.config.vcpus)
    }

    fn window_size(&self) -> u64 {
        VgicV3::window_size(self)
    }

    fn stats(&self) -> &VgicStats {
        VgicV3::stats(self)
    }
}

impl MmioDevice for VgicV3 {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        if offset < DISTRIBUTOR_SIZE {
            return self.distributor_read(offset, width);
        }
        match offset.checked_sub(self.config.redistributor_offset) {
            Some(within) => self.redistributor_read(within, width),
            None => {
                self.ignore(GicFrame::Unmapped, offset, width, None);
                0
            }
        }
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        if offset < DISTRIBUTOR_SIZE {
            return self.distributor_write(offset, width, value);
        }
        match offset.checked_sub(self.config.redistributor_offset) {
            Some(within) => self.redistributor_write(within, width, value),
            None => self.ignore(
                GicFrame::Unmapped,
                offset,
                width,
                Some(width.truncate(value)),
            ),
        }
    }
}
