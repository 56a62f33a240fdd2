//! The vGIC core: everything about interrupts that does not depend on how the guest
//! sees the GIC, written once for both front-ends.
//!
//! [`Core<F>`] holds the interrupts (pending and active state, enables, groups,
//! priorities, hardware mappings), each vCPU's pending list, the list-register
//! shadows and the kicks, and implements [`Vgic`] with them: the inputs, the
//! list-register flush and sync, the wake-up checks. A [`Frontend`] `F` supplies
//! what differs between GIC versions: how SPIs are routed, the register window the
//! guest accesses, the list-register format, and (GICv2) SGIs pending per source.
//!
//! # Pending lists
//!
//! Each vCPU has a pending list (`pending`): the INTIDs it would see that are
//! pending, active or in its list registers. Every change of an interrupt's state
//! or route goes through [`Core::touch`], which keeps the lists up to date; a
//! flush and [`Vgic::has_pending`] walk the vCPU's list only, so their cost follows
//! the interrupts involved, not the size of the GIC.

mod id_registers;
mod list_registers;
mod pending;
mod registers;
mod snapshot;
mod state;
mod stats;
mod table;
mod targets;

pub(crate) use id_registers::{read as read_id_register, read_gic400 as read_gic400_id_register};
pub use list_registers::{ListRegisterFormat, LrPlan, MAX_LIST_REGISTERS, ich_hcr};
pub(crate) use list_registers::{LrEntry, SgiListing};
pub(crate) use registers::{BitRegister, IrqAccess};
pub(crate) use snapshot::saved_records;
pub use snapshot::{GicState, IrqSnapshot, SavedSpi, SavedVcpu};
pub use state::PRIORITY_MASK;
pub(crate) use state::{IrqState, LrState};
pub use stats::{GicFrame, IgnoredAccess, VgicStats};
pub(crate) use table::IrqTable;
pub(crate) use targets::KickSet;
pub use targets::{SgiTargets, SgiTargetsIter};

use super::{FIRST_SPI, SGIS, Vgic, VgicError};
use crate::mmio::AccessWidth;
use core::ops::Range;
use list_registers::{Candidate, Selection, Shadow};

/// `GICD_CTLR.EnableGrp0`, bit \[0\].
const ENABLE_GRP0: u32 = 1 << 0;
/// `GICD_CTLR.EnableGrp1`, bit \[1\].
const ENABLE_GRP1: u32 = 1 << 1;

/// Checks a front-end's configuration: at least one vCPU, at most `max_vcpus`
/// (else `too_many`), and none of `faults` (a condition that holds, with why it is
/// wrong).
pub(crate) fn check_config(
    vcpus: usize,
    (max_vcpus, too_many): (usize, &'static str),
    faults: &[(bool, &'static str)],
) -> Result<(), VgicError> {
    let vcpu_faults = [
        (vcpus == 0, "it needs at least one vCPU"),
        (vcpus > max_vcpus, too_many),
    ];
    match vcpu_faults.iter().chain(faults).find(|(wrong, _)| *wrong) {
        Some(&(_, reason)) => Err(VgicError::BadConfig { reason }),
        None => Ok(()),
    }
}

/// What a GIC version adds to the [`Core`]: SPI routing, the guest's register
/// window, the list-register format and SGI sources.
pub trait Frontend: Sized + 'static {
    /// The vCPU SPI `index` (INTID `32 + index`) is routed to, if any.
    fn spi_target(&self, index: usize) -> Option<usize>;

    /// The size of the register window.
    fn window_size(&self) -> u64;

    /// The guest's read of the register window (see [`Vgic::mmio_read`]).
    fn read(core: &mut Core<Self>, vcpu: usize, offset: u64, width: AccessWidth) -> u64;

    /// The guest's write to the register window (see [`Vgic::mmio_write`]).
    fn write(core: &mut Core<Self>, vcpu: usize, offset: u64, width: AccessWidth, value: u64);

    /// The list register value for `entry`.
    fn encode(entry: &LrEntry) -> u64;

    /// Where the list register format keeps what [`ListRegisterFormat`] describes.
    const LIST_REGISTER_FORMAT: ListRegisterFormat;

    /// The state list register value `value` gives back for `entry`, or `None` if
    /// it holds another interrupt (another INTID, or another SGI source).
    fn read_back(entry: &LrEntry, value: u64) -> Option<LrState>;

    /// [`Vgic::send_sgi_from_register`]; the default has no such register.
    fn send_sgi_from_register(
        _core: &mut Core<Self>,
        _sender: usize,
        _value: u64,
    ) -> Result<SgiTargets, VgicError> {
        Err(VgicError::Unsupported)
    }

    /// The hypervisor raises SGI `intid` on vCPU `target` (an existing one).
    fn raise_sgi(core: &mut Core<Self>, target: usize, intid: u32) {
        if let Some(irq) = core.irqs.irq_of_mut(target, intid) {
            irq.trigger();
        }
        core.touch(Some(target), intid);
    }

    /// What to list for SGI `intid` of vCPU `vcpu`, whose state asks for `state`.
    fn sgi_listing(&self, _vcpu: usize, _intid: u32, state: LrState) -> SgiListing {
        SgiListing::plain(state)
    }

    /// SGI `entry.intid` goes into a list register as `listing`: fills in `entry`'s
    /// source and keeps `irq`'s pending latch in step.
    fn sgi_listed(
        &mut self,
        _vcpu: usize,
        _listing: &SgiListing,
        _irq: &mut IrqState,
        _entry: &mut LrEntry,
    ) {
    }

    /// The list register holding SGI `entry` comes back in state `returned`.
    fn sgi_returned(
        &mut self,
        _vcpu: usize,
        _entry: &LrEntry,
        _returned: LrState,
        _irq: &mut IrqState,
    ) {
    }
}

/// A vGIC: the core state and flush/sync, with front-end `F` (see the module
/// documentation). [`VgicV3`](super::VgicV3) and [`VgicV2`](super::VgicV2) name
/// the two.
#[derive(Clone, Debug)]
pub struct Core<F> {
    /// Interrupts, group enables, pending lists, list-register shadows, counters.
    pub(crate) irqs: IrqTable,
    /// The front-end's own state.
    pub(crate) front: F,
    /// vCPUs to kick since the last [`Vgic::take_kicks`].
    pub(crate) kicks: KickSet,
    /// The flush's choice of what to list, kept between flushes so that a flush
    /// does not clear a new one.
    selection: Selection,
}

impl<F: Frontend> Core<F> {
    /// A core for `vcpus` vCPUs and `spis` SPIs, every interrupt in Group 1 if
    /// `group1` (Group 0 otherwise), with front-end `front`.
    pub(crate) fn with_frontend(vcpus: usize, spis: u32, group1: bool, front: F) -> Self {
        Self {
            irqs: IrqTable::new(vcpus, spis, group1),
            front,
            kicks: KickSet::default(),
            selection: Selection::new(0),
        }
    }

    /// Brings the pending lists up to date after interrupt `intid` (vCPU `owner`'s
    /// copy of an SGI or PPI; `owner` is ignored for an SPI) may have changed state
    /// or route.
    pub(crate) fn touch(&mut self, owner: Option<usize>, intid: u32) {
        let front = &self.front;
        self.irqs
            .touch(owner, intid, |index| front.spi_target(index));
    }

    /// Brings the pending list of every SPI up to date (after a change of routing
    /// that may move many).
    pub(crate) fn touch_spis(&mut self) {
        for intid in FIRST_SPI..self.irqs.intid_limit() {
            self.touch(None, intid);
        }
    }

    /// After a guest write to the registers of `intids` (vCPU `owner`'s SGIs and
    /// PPIs, or SPIs): brings the pending lists up to date and adds to the kicks the
    /// vCPUs affected.
    pub(crate) fn note_write(&mut self, owner: Option<usize>, intids: Range<u32>) {
        let limit = self.irqs.intid_limit();
        for intid in intids.start..intids.end.min(limit) {
            self.touch(owner, intid);
        }
        let front = &self.front;
        let kicks = self
            .irqs
            .affected_by_write(owner, intids, |index| front.spi_target(index));
        self.kicks.merge(kicks);
    }

    /// `GICD_CTLR.EnableGrp0` \[0\] and `EnableGrp1` \[1\] (the same bits on a
    /// GICv3 with one security state and on a GICv2), as read.
    pub(crate) const fn group_enable_bits(&self) -> u32 {
        let group0 = if self.irqs.group0_enabled {
            ENABLE_GRP0
        } else {
            0
        };
        let group1 = if self.irqs.group1_enabled {
            ENABLE_GRP1
        } else {
            0
        };
        group0 | group1
    }

    /// A write of `value` to `GICD_CTLR`'s group enables; kicks the vCPUs it
    /// affects.
    pub(crate) fn write_group_enables(&mut self, value: u32) {
        self.irqs.group0_enabled = value & ENABLE_GRP0 != 0;
        self.irqs.group1_enabled = value & ENABLE_GRP1 != 0;
        self.note_group_enables();
    }

    /// Adds to the kicks the vCPUs a change of the group enables affects.
    fn note_group_enables(&mut self) {
        let front = &self.front;
        let kicks = self
            .irqs
            .affected_by_group_enables(|index| front.spi_target(index));
        self.kicks.merge(kicks);
    }

    /// Forgets what was in flight and rebuilds the pending lists (after a restore).
    pub(crate) fn after_restore(&mut self) {
        for shadow in &mut self.irqs.shadows {
            shadow.clear();
        }
        let front = &self.front;
        self.irqs.requeue_all(|index| front.spi_target(index));
        self.kicks = KickSet::default();
    }

    /// The guest ended `count` interrupts of vCPU `vcpu` that no list register held
    /// (`EOIcount`): the highest-priority active ones not in flight (the order in
    /// which a priority drop ends them; ties by INTID) are deactivated.
    fn end_unlisted(&mut self, vcpu: usize, count: u32) {
        for _ in 0..count {
            let mut best: Option<(u8, u32)> = None;
            for intid in self.irqs.queue(vcpu).iter() {
                let Some(irq) = self.irqs.irq_of(vcpu, intid) else {
                    continue;
                };
                let unlisted_active = irq.in_flight_on().is_none() && irq.active();
                let key = (irq.priority(), intid);
                if unlisted_active && best.is_none_or(|best| key < best) {
                    best = Some(key);
                }
            }
            let Some((_, intid)) = best else { return };
            if let Some(irq) = self.irqs.irq_of_mut(vcpu, intid) {
                irq.guest_clear_active();
            }
            self.touch(Some(vcpu), intid);
        }
    }
}

impl<F: Frontend> Vgic for Core<F> {
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }

    fn vcpus(&self) -> usize {
        self.irqs.vcpus()
    }

    fn set_level(&mut self, intid: u32, vcpu: Option<usize>, level: bool) -> Result<(), VgicError> {
        self.irqs.set_level(intid, vcpu, level)?;
        self.touch(vcpu, intid);
        Ok(())
    }

    fn set_hardware_level(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
        level: bool,
    ) -> Result<Option<u32>, VgicError> {
        let released = self.irqs.set_hardware_level(intid, vcpu, level)?;
        self.touch(vcpu, intid);
        Ok(released)
    }

    fn trigger_edge(&mut self, intid: u32, vcpu: Option<usize>) -> Result<(), VgicError> {
        if intid >= SGIS {
            self.irqs.trigger_edge(intid, vcpu)?;
            self.touch(vcpu, intid);
            return Ok(());
        }
        // Checks the vCPU (missing or out of range).
        self.irqs.input(intid, vcpu)?;
        if let Some(target) = vcpu {
            F::raise_sgi(self, target, intid);
        }
        Ok(())
    }

    fn send_sgi_from_register(
        &mut self,
        sender: usize,
        icc_sgi1r: u64,
    ) -> Result<SgiTargets, VgicError> {
        F::send_sgi_from_register(self, sender, icc_sgi1r)
    }

    fn flush_into(&mut self, vcpu: usize, list_registers: usize, plan: &mut LrPlan) {
        plan.clear();
        if vcpu >= self.irqs.vcpus() {
            return;
        }
        if !self.irqs.shadows[vcpu].is_empty() {
            // Never synced: the list registers are taken back as they were loaded.
            self.sync(vcpu, &[]);
        }
        self.selection.restart(list_registers);
        let mut cursor = self.irqs.queue(vcpu).cursor();
        while let Some(intid) = cursor.next_in(self.irqs.queue(vcpu)) {
            if !self.irqs.prune(vcpu, intid) {
                continue;
            }
            let Some(irq) = self.irqs.irq_of(vcpu, intid) else {
                continue;
            };
            let Some(state) = irq.lr_state(self.irqs.group_enabled(irq.group1)) else {
                continue;
            };
            let sgi = if intid < SGIS {
                self.front.sgi_listing(vcpu, intid, state)
            } else {
                SgiListing::plain(state)
            };
            self.selection.offer(Candidate {
                intid,
                state: sgi.state,
                priority: irq.priority(),
                sgi,
            });
        }
        for candidate in self.selection.chosen() {
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
            if candidate.intid < SGIS {
                self.front.sgi_listed(vcpu, &candidate.sgi, irq, &mut entry);
            }
            plan.push(F::encode(&entry));
            self.irqs.shadows[vcpu].push(entry);
        }
        let selection = &self.selection;
        plan.underflow_maintenance = selection.left_out_pending;
        plan.no_pending_maintenance =
            selection.left_out_pending && selection.chosen().iter().all(|c| !c.state.pending);
        plan.unlisted_active = selection.left_out_active;
        if selection.left_out_active {
            self.irqs.stats.unlisted_active += 1;
        }
    }

    fn sync(&mut self, vcpu: usize, list_registers: &[u64]) {
        self.sync_with_eoi_count(vcpu, list_registers, 0);
    }

    fn sync_with_eoi_count(&mut self, vcpu: usize, list_registers: &[u64], eoi_count: u32) {
        // The shadow lands in place (no copy): its entries stay readable until the
        // next flush records new ones, which nothing here does.
        let Some(count) = self.irqs.shadows.get_mut(vcpu).map(Shadow::land) else {
            return;
        };
        self.end_unlisted(vcpu, eoi_count);
        for n in 0..count {
            let Some(entry) = self.irqs.shadows[vcpu].recorded(n) else {
                break;
            };
            let returned = match list_registers.get(n) {
                Some(&value) => F::read_back(&entry, value).unwrap_or_else(|| {
                    self.irqs.stats.lr_mismatches += 1;
                    entry.state
                }),
                None => entry.state,
            };
            let Some(irq) = self.irqs.irq_of_mut(vcpu, entry.intid) else {
                continue;
            };
            if irq.in_flight_on() != Some(vcpu) {
                continue;
            }
            irq.end_flight(returned);
            if entry.intid < SGIS {
                self.front.sgi_returned(vcpu, &entry, returned, irq);
            }
        }
        for n in 0..count {
            let Some(entry) = self.irqs.shadows[vcpu].recorded(n) else {
                break;
            };
            let index = entry.intid.checked_sub(FIRST_SPI);
            if index.is_some_and(|index| self.front.spi_target(index as usize) != Some(vcpu)) {
                // Moved while this vCPU held it: its new target takes it now.
                self.note_write(None, entry.intid..entry.intid + 1);
            } else {
                self.touch(Some(vcpu), entry.intid);
            }
        }
    }

    fn has_pending(&self, vcpu: usize) -> bool {
        self.irqs
            .has_pending(vcpu, |index| self.front.spi_target(index))
    }

    fn highest_pending_priority(&self, vcpu: usize) -> Option<u8> {
        self.irqs
            .highest_pending_priority(vcpu, |index| self.front.spi_target(index))
    }

    fn map_hardware(&mut self, intid: u32, vcpu: usize, physical: u32) -> Result<(), VgicError> {
        self.irqs.map_hardware(intid, vcpu, physical)
    }

    fn mmio_read(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        F::read(self, vcpu, offset, width)
    }

    fn mmio_write(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        F::write(self, vcpu, offset, width, value);
    }

    fn take_kicks(&mut self) -> SgiTargets {
        self.kicks.take(self.irqs.vcpus())
    }

    fn list_register_format(&self) -> ListRegisterFormat {
        F::LIST_REGISTER_FORMAT
    }

    fn window_size(&self) -> u64 {
        self.front.window_size()
    }

    fn stats(&self) -> &VgicStats {
        &self.irqs.stats
    }
}
