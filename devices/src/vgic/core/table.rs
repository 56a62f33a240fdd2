//! The interrupts both front-ends hold: every vCPU's SGIs and PPIs, the SPIs, the
//! group enables of `GICD_CTLR`, each vCPU's pending list, what each vCPU's list
//! registers hold since its last flush, and the counters. The front-ends add how
//! SPIs are routed (GICv3 `GICD_IROUTER`, GICv2 `GICD_ITARGETSR`), their register
//! maps and their list-register formats; the routing comes in as `spi_target`, a
//! function from SPI index to vCPU.

use super::list_registers::Shadow;
use super::pending::IntidSet;
use super::state::IrqState;
use super::stats::VgicStats;
use super::targets::KickSet;
use crate::vgic::{FIRST_PPI, FIRST_SPI, PRIVATE_INTERRUPTS, SGIS, VgicError};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

/// Physical INTIDs that can back a virtual interrupt: PPIs and SPIs (INTIDs 1020 to
/// 1023 are special, IHI 0069H "Special INTIDs", IHI 0048B "Special interrupt
/// numbers").
const MAPPABLE_PHYSICAL: Range<u32> = FIRST_PPI..1020;

/// A vCPU's SGIs and PPIs, by INTID.
pub(crate) type PrivateIrqs = [IrqState; PRIVATE_INTERRUPTS as usize];

/// The interrupt state of a vGIC, whatever its front-end.
#[derive(Clone, Debug)]
pub(crate) struct IrqTable {
    /// `GICD_CTLR.EnableGrp0`.
    pub(crate) group0_enabled: bool,
    /// `GICD_CTLR.EnableGrp1`.
    pub(crate) group1_enabled: bool,
    /// SGIs and PPIs of each vCPU, by INTID.
    pub(crate) private: Vec<PrivateIrqs>,
    /// SPIs: INTID `32 + i` is `spis[i]`.
    pub(crate) spis: Vec<IrqState>,
    /// What each vCPU's list registers hold since its last flush.
    pub(crate) shadows: Vec<Shadow>,
    /// Each vCPU's pending list: every interrupt it would see that is pending,
    /// active or in its list registers is a member (members may be stale).
    queues: Vec<IntidSet>,
    /// The vCPU whose pending list holds SPI `32 + i`, if any.
    spi_queued_on: Vec<Option<u16>>,
    /// The counters.
    pub(crate) stats: VgicStats,
}

impl IrqTable {
    /// `vcpus` vCPUs and `spis` SPIs at reset: every interrupt disabled, in Group 1
    /// if `group1` (Group 0 otherwise), priority 0, inactive, level-sensitive except
    /// the SGIs; both groups disabled.
    pub(crate) fn new(vcpus: usize, spis: u32, group1: bool) -> Self {
        let reset = |edge: bool| {
            let mut irq = IrqState::new(edge);
            irq.group1 = group1;
            irq
        };
        let private = core::array::from_fn(|intid| reset((intid as u32) < SGIS));
        Self {
            group0_enabled: false,
            group1_enabled: false,
            private: vec![private; vcpus],
            spis: vec![reset(false); spis as usize],
            shadows: vec![Shadow::default(); vcpus],
            queues: vec![IntidSet::default(); vcpus],
            spi_queued_on: vec![None; spis as usize],
            stats: VgicStats::default(),
        }
    }

    /// The number of vCPUs.
    pub(crate) fn vcpus(&self) -> usize {
        self.private.len()
    }

    /// One past the highest implemented INTID.
    pub(crate) fn intid_limit(&self) -> u32 {
        FIRST_SPI + self.spis.len() as u32
    }

    /// Whether the group an interrupt is in is enabled.
    pub(crate) const fn group_enabled(&self, group1: bool) -> bool {
        if group1 {
            self.group1_enabled
        } else {
            self.group0_enabled
        }
    }

    /// The interrupt a device input or a mapping names: an SPI without a vCPU, an SGI
    /// or PPI with one.
    pub(crate) fn input(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
    ) -> Result<&mut IrqState, VgicError> {
        let limit = self.intid_limit();
        if intid >= limit {
            return Err(VgicError::NoSuchInterrupt { intid, limit });
        }
        if intid >= FIRST_SPI {
            if vcpu.is_some() {
                return Err(VgicError::UnexpectedVcpu { intid });
            }
            return Ok(&mut self.spis[(intid - FIRST_SPI) as usize]);
        }
        let vcpu = vcpu.ok_or(VgicError::MissingVcpu { intid })?;
        let vcpus = self.vcpus();
        let private = self
            .private
            .get_mut(vcpu)
            .ok_or(VgicError::NoSuchVcpu { vcpu, vcpus })?;
        Ok(&mut private[intid as usize])
    }

    /// The interrupt `intid` as vCPU `vcpu` sees it (its own SGIs and PPIs, the SPIs).
    pub(crate) fn irq_of_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut IrqState> {
        if intid < FIRST_SPI {
            self.private.get_mut(vcpu)?.get_mut(intid as usize)
        } else {
            self.spis.get_mut((intid - FIRST_SPI) as usize)
        }
    }

    /// The interrupt `intid` as vCPU `vcpu` sees it (its own SGIs and PPIs, the SPIs).
    pub(crate) fn irq_of(&self, vcpu: usize, intid: u32) -> Option<&IrqState> {
        if intid < FIRST_SPI {
            self.private.get(vcpu)?.get(intid as usize)
        } else {
            self.spis.get((intid - FIRST_SPI) as usize)
        }
    }

    /// Whether vCPU `vcpu` is the one to list `intid` (one of its own private
    /// interrupts, or an SPI it holds in a list register or, held nowhere, routed to
    /// it by `spi_target`), and the interrupt if so.
    fn seen_by(
        &self,
        vcpu: usize,
        intid: u32,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> Option<&IrqState> {
        let irq = self.irq_of(vcpu, intid)?;
        let Some(index) = intid.checked_sub(FIRST_SPI) else {
            return Some(irq);
        };
        let owner = irq.in_flight_on().or_else(|| spi_target(index as usize))?;
        (owner == vcpu).then_some(irq)
    }

    /// Brings the pending lists up to date after `intid` (vCPU `owner`'s copy of an
    /// SGI or PPI; `owner` is ignored for an SPI) may have changed state or route:
    /// a live interrupt (pending, active or in a list register) joins the list of
    /// the vCPU that would list it, an SPI leaves the list it was on.
    pub(crate) fn touch(
        &mut self,
        owner: Option<usize>,
        intid: u32,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) {
        let Some(index) = intid.checked_sub(FIRST_SPI) else {
            let Some(vcpu) = owner else { return };
            let live = self
                .private
                .get(vcpu)
                .and_then(|irqs| irqs.get(intid as usize))
                .is_some_and(IrqState::is_live);
            if let (true, Some(queue)) = (live, self.queues.get_mut(vcpu)) {
                queue.insert(intid);
            }
            return;
        };
        let index = index as usize;
        let Some(irq) = self.spis.get(index) else {
            return;
        };
        let wanted = if irq.is_live() {
            irq.in_flight_on().or_else(|| spi_target(index))
        } else {
            None
        };
        let wanted = wanted.filter(|&vcpu| vcpu < self.queues.len());
        let current = self.spi_queued_on[index].map(usize::from);
        if current == wanted {
            return;
        }
        if let Some(old) = current {
            self.queues[old].remove(intid);
        }
        if let Some(new) = wanted {
            self.queues[new].insert(intid);
        }
        self.spi_queued_on[index] = wanted.and_then(|vcpu| u16::try_from(vcpu).ok());
    }

    /// Rebuilds every pending list from scratch (after a restore).
    pub(crate) fn requeue_all(&mut self, spi_target: impl Fn(usize) -> Option<usize>) {
        self.queues.fill(IntidSet::default());
        self.spi_queued_on.fill(None);
        for vcpu in 0..self.vcpus() {
            for intid in 0..PRIVATE_INTERRUPTS {
                self.touch(Some(vcpu), intid, &spi_target);
            }
        }
        for intid in FIRST_SPI..self.intid_limit() {
            self.touch(None, intid, &spi_target);
        }
    }

    /// vCPU `vcpu`'s pending list (empty for an out-of-range vCPU).
    pub(crate) fn queue(&self, vcpu: usize) -> &IntidSet {
        self.queues.get(vcpu).unwrap_or(&IntidSet::EMPTY)
    }

    /// Drops `intid` from vCPU `vcpu`'s pending list if it is stale there: an idle
    /// private interrupt, or an SPI whose list is another (or none). Returns whether
    /// the list keeps it.
    pub(crate) fn prune(&mut self, vcpu: usize, intid: u32) -> bool {
        let stays = match intid.checked_sub(FIRST_SPI) {
            None => self
                .private
                .get(vcpu)
                .and_then(|irqs| irqs.get(intid as usize))
                .is_some_and(IrqState::is_live),
            Some(index) => {
                self.spi_queued_on.get(index as usize).copied().flatten()
                    == u16::try_from(vcpu).ok()
            }
        };
        if !stays {
            if let Some(queue) = self.queues.get_mut(vcpu) {
                queue.remove(intid);
            }
        }
        stays
    }

    /// The interrupts on vCPU `vcpu`'s pending list it could take now, with their
    /// INTIDs (skipping stale members, see [`prune`](Self::prune)).
    fn deliverable(
        &self,
        vcpu: usize,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> impl Iterator<Item = &IrqState> {
        self.queue(vcpu).iter().filter_map(move |intid| {
            self.seen_by(vcpu, intid, &spi_target)
                .filter(|irq| irq.is_deliverable(self.group_enabled(irq.group1)))
        })
    }

    /// [`Vgic::has_pending`](crate::vgic::Vgic::has_pending) with SPIs routed by
    /// `spi_target`.
    pub(crate) fn has_pending(
        &self,
        vcpu: usize,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> bool {
        self.deliverable(vcpu, spi_target).next().is_some()
    }

    /// [`Vgic::highest_pending_priority`](crate::vgic::Vgic::highest_pending_priority)
    /// with SPIs routed by `spi_target`.
    pub(crate) fn highest_pending_priority(
        &self,
        vcpu: usize,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> Option<u8> {
        self.deliverable(vcpu, spi_target)
            .map(IrqState::priority)
            .min()
    }

    /// [`Vgic::set_level`](crate::vgic::Vgic::set_level).
    pub(crate) fn set_level(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
        level: bool,
    ) -> Result<(), VgicError> {
        let irq = self.input(intid, vcpu)?;
        if intid < SGIS {
            return Err(VgicError::NoLine { intid });
        }
        if irq.is_hardware_backed() {
            return Err(VgicError::HardwareBacked { intid });
        }
        irq.set_line(level);
        Ok(())
    }

    /// [`Vgic::set_hardware_level`](crate::vgic::Vgic::set_hardware_level).
    pub(crate) fn set_hardware_level(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
        level: bool,
    ) -> Result<Option<u32>, VgicError> {
        let irq = self.input(intid, vcpu)?;
        if intid < SGIS {
            return Err(VgicError::NoLine { intid });
        }
        Ok(irq.set_hardware_line(level))
    }

    /// The vCPUs that must look at their interrupts again after a guest write to
    /// the registers of `intids` (vCPU `owner`'s SGIs and PPIs, or SPIs routed by
    /// `spi_target`; INTIDs of the other kind are skipped): the vCPU holding one of
    /// them in a list register, whose copy may be stale now (disabled, cleared,
    /// moved, reprioritised), and the vCPU one is routed to if it now has something
    /// to list (pending and deliverable, or active).
    pub(crate) fn affected_by_write(
        &self,
        owner: Option<usize>,
        intids: Range<u32>,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> KickSet {
        let mut kicks = KickSet::default();
        for intid in intids {
            let (irq, target) = match (owner, intid.checked_sub(FIRST_SPI)) {
                (Some(vcpu), None) => (
                    self.private
                        .get(vcpu)
                        .and_then(|irqs| irqs.get(intid as usize)),
                    Some(vcpu),
                ),
                (None, Some(index)) => (self.spis.get(index as usize), spi_target(index as usize)),
                _ => continue,
            };
            let Some(irq) = irq else { continue };
            if let Some(holder) = irq.in_flight_on() {
                kicks.add(holder);
            }
            if let Some(target) = target
                && irq.lr_state(self.group_enabled(irq.group1)).is_some()
            {
                kicks.add(target);
            }
        }
        kicks
    }

    /// The vCPUs that must look at their interrupts again after the group enables
    /// changed: those with an interrupt to take, and those holding any in a list
    /// register.
    pub(crate) fn affected_by_group_enables(
        &self,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> KickSet {
        let mut kicks = KickSet::default();
        for vcpu in 0..self.vcpus() {
            let holds = self
                .shadows
                .get(vcpu)
                .is_some_and(|shadow| !shadow.is_empty());
            if holds || self.highest_pending_priority(vcpu, &spi_target).is_some() {
                kicks.add(vcpu);
            }
        }
        kicks
    }

    /// [`Vgic::trigger_edge`](crate::vgic::Vgic::trigger_edge).
    pub(crate) fn trigger_edge(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
    ) -> Result<(), VgicError> {
        if !self.input(intid, vcpu)?.trigger() {
            self.stats.ignored_hardware_triggers += 1;
        }
        Ok(())
    }

    /// [`Vgic::map_hardware`](crate::vgic::Vgic::map_hardware).
    pub(crate) fn map_hardware(
        &mut self,
        intid: u32,
        vcpu: usize,
        physical: u32,
    ) -> Result<(), VgicError> {
        let limit = self.intid_limit();
        if intid >= limit {
            return Err(VgicError::NoSuchInterrupt { intid, limit });
        }
        if intid < SGIS {
            return Err(VgicError::NotMappable { intid });
        }
        if !MAPPABLE_PHYSICAL.contains(&physical) {
            return Err(VgicError::BadPhysicalInterrupt { physical });
        }
        let vcpu = (intid < FIRST_SPI).then_some(vcpu);
        self.input(intid, vcpu)?.map_hardware(physical);
        Ok(())
    }
}
