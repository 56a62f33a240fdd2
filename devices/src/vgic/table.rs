//! The interrupts both front-ends hold: every vCPU's SGIs and PPIs, the SPIs, the
//! group enables of `GICD_CTLR`, what each vCPU's list registers hold since its last
//! flush, and the counters. The front-ends add how SPIs are routed (GICv3
//! `GICD_IROUTER`, GICv2 `GICD_ITARGETSR`), their register maps and their
//! list-register formats.

use super::list_registers::Shadow;
use super::sgi::KickSet;
use super::state::IrqState;
use super::stats::VgicStats;
use super::{FIRST_PPI, FIRST_SPI, PRIVATE_INTERRUPTS, SGIS, VgicError};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

/// Physical INTIDs that can back a virtual interrupt: PPIs and SPIs (INTIDs 1020 to
/// 1023 are special, IHI 0069H "Special INTIDs", IHI 0048B "Special interrupt
/// numbers").
const MAPPABLE_PHYSICAL: Range<u32> = FIRST_PPI..1020;

/// A vCPU's SGIs and PPIs, by INTID.
pub(super) type PrivateIrqs = [IrqState; PRIVATE_INTERRUPTS as usize];

/// The interrupt state of a vGIC, whatever its front-end.
#[derive(Clone, Debug)]
pub(super) struct IrqTable {
    /// `GICD_CTLR.EnableGrp0`.
    pub(super) group0_enabled: bool,
    /// `GICD_CTLR.EnableGrp1`.
    pub(super) group1_enabled: bool,
    /// SGIs and PPIs of each vCPU, by INTID.
    pub(super) private: Vec<PrivateIrqs>,
    /// SPIs: INTID `32 + i` is `spis[i]`.
    pub(super) spis: Vec<IrqState>,
    /// What each vCPU's list registers hold since its last flush.
    pub(super) shadows: Vec<Shadow>,
    /// The counters.
    pub(super) stats: VgicStats,
}

impl IrqTable {
    /// `vcpus` vCPUs and `spis` SPIs at reset: every interrupt disabled, in Group 1
    /// if `group1` (Group 0 otherwise), priority 0, inactive, level-sensitive except
    /// the SGIs; both groups disabled.
    pub(super) fn new(vcpus: usize, spis: u32, group1: bool) -> Self {
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
            stats: VgicStats::default(),
        }
    }

    /// The number of vCPUs.
    pub(super) fn vcpus(&self) -> usize {
        self.private.len()
    }

    /// One past the highest implemented INTID.
    pub(super) fn intid_limit(&self) -> u32 {
        FIRST_SPI + self.spis.len() as u32
    }

    /// Whether the group an interrupt is in is enabled.
    pub(super) const fn group_enabled(&self, group1: bool) -> bool {
        if group1 {
            self.group1_enabled
        } else {
            self.group0_enabled
        }
    }

    /// The interrupt a device input or a mapping names: an SPI without a vCPU, an SGI
    /// or PPI with one.
    pub(super) fn input(
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
    pub(super) fn irq_of_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut IrqState> {
        if intid < FIRST_SPI {
            self.private.get_mut(vcpu)?.get_mut(intid as usize)
        } else {
            self.spis.get_mut((intid - FIRST_SPI) as usize)
        }
    }

    /// Every interrupt vCPU `vcpu` may receive now, with its INTID: its SGIs and
    /// PPIs, and the SPIs `spi_target` routes to it (by SPI index) that no other vCPU
    /// holds in a list register.
    pub(super) fn interrupts_of<'a>(
        &'a self,
        vcpu: usize,
        spi_target: impl Fn(usize) -> Option<usize> + 'a,
    ) -> impl Iterator<Item = (u32, &'a IrqState)> + 'a {
        let private = self
            .private
            .get(vcpu)
            .into_iter()
            .flat_map(|irqs| irqs.iter().enumerate())
            .map(|(intid, irq)| (intid as u32, irq));
        let spis = self
            .spis
            .iter()
            .enumerate()
            .filter(move |&(index, irq)| match irq.in_flight_on() {
                Some(holder) => holder == vcpu,
                None => spi_target(index) == Some(vcpu),
            })
            .map(|(index, irq)| (FIRST_SPI + index as u32, irq));
        private.chain(spis)
    }

    /// [`Vgic::highest_pending_priority`](super::Vgic::highest_pending_priority) with
    /// SPIs routed by `spi_target`.
    pub(super) fn highest_pending_priority(
        &self,
        vcpu: usize,
        spi_target: impl Fn(usize) -> Option<usize>,
    ) -> Option<u8> {
        self.interrupts_of(vcpu, spi_target)
            .filter(|(_, irq)| irq.is_deliverable(self.group_enabled(irq.group1)))
            .map(|(_, irq)| irq.priority())
            .min()
    }

    /// [`Vgic::set_level`](super::Vgic::set_level).
    pub(super) fn set_level(
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

    /// [`Vgic::set_hardware_level`](super::Vgic::set_hardware_level).
    pub(super) fn set_hardware_level(
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
    pub(super) fn affected_by_write(
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
    pub(super) fn affected_by_group_enables(
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

    /// [`Vgic::trigger_edge`](super::Vgic::trigger_edge).
    pub(super) fn trigger_edge(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
    ) -> Result<(), VgicError> {
        if !self.input(intid, vcpu)?.trigger() {
            self.stats.ignored_hardware_triggers += 1;
        }
        Ok(())
    }

    /// [`Vgic::map_hardware`](super::Vgic::map_hardware).
    pub(super) fn map_hardware(
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
