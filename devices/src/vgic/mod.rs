//! The virtual GIC: interrupt state kept in software, delivered to vCPUs through the
//! list registers of the GIC's virtualization interface.
//!
//! References: Arm Generic Interrupt Controller Architecture Specification, GIC
//! architecture version 3 and version 4 (IHI 0069H), chapter 12 for the register
//! descriptions, and the Arm ARM (DDI 0487) for `ICH_LR<n>_EL2`, `ICH_HCR_EL2` and
//! `ICC_SGI1R_EL1`; for the GICv2 front-end, the Arm Generic Interrupt Controller
//! Architecture Specification, GIC architecture version 2.0 (IHI 0048B.b), chapter
//! 4.3 (distributor registers) and chapter 5 (virtualization extensions: `GICH_LR<n>`,
//! `GICH_HCR`).
//!
//! # How the hypervisor drives it
//!
//! The model is pure: it never touches a system register or a GIC. The hypervisor
//!
//! - forwards the guest's accesses to the emulated register window with
//!   [`Vgic::mmio_read`] / [`Vgic::mmio_write`], naming the vCPU that made them
//!   ([`VgicV3`]: distributor and redistributors, one window spanning both, see
//!   [`VgicV3`] for the layout; [`VgicV2`]: the 4 KiB distributor, whose registers
//!   for INTIDs 0 to 31 are banked by the accessing vCPU). The GICv3 one, whose
//!   registers are not banked, is also an [`MmioDevice`](crate::mmio::MmioDevice);
//! - after each write, flushes every vCPU anew before it runs again (a write may
//!   change what any vCPU should see) and kicks the vCPUs [`Vgic::take_kicks`]
//!   returns (GICv2: targets of `GICD_SGIR`; both: the vCPUs a written interrupt is
//!   routed to or listed on);
//! - reports device interrupt lines with [`Vgic::set_level`] /
//!   [`Vgic::trigger_edge`], the lines of hardware-backed interrupts (the virtual
//!   timer) with [`Vgic::set_hardware_level`] (deactivating the physical interrupt
//!   it returns), and, on a GICv3, trapped `ICC_SGI1R_EL1` writes with
//!   [`Vgic::send_sgi_from_register`] (kicking the vCPUs it returns);
//! - before entering vCPU `v`, calls [`Vgic::flush`] and loads the returned
//!   [`LrPlan`] into the list registers (zero in those beyond the plan), ORing
//!   [`LrPlan::maintenance_bits`] into the hypervisor control register: on a GICv3
//!   `ICH_LR<n>_EL2` and `ICH_HCR_EL2`; on a GICv2 `GICH_LR<n>` and `GICH_HCR`,
//!   truncating to 32 bits (a GICv2 plan has nothing above bit 31, and UIE / NPIE
//!   sit at the same positions in both, see [`gich_hcr`]);
//! - after every exit of vCPU `v`, reads back the same list registers and hands them
//!   to [`Vgic::sync`] (zero-extended on a GICv2) before anything else touches the
//!   vGIC for that vCPU, its own register accesses included;
//! - on WFI, asks [`Vgic::has_pending`] whether to resume at once.
//!
//! `flush` and `has_pending` look only at the vCPU's pending list (the interrupts
//! pending, active or listed for it, see `core`): they allocate nothing, and cost
//! a few instructions for a vCPU with nothing to do however many SPIs the GIC has.
//!
//! Between `flush` and `sync` the interrupts placed in list registers are "in
//! flight": the list register, not the model, holds their pending and active state.
//! The model remembers what it placed where, never lists an interrupt on two vCPUs at
//! once, and merges what happened meanwhile (a new edge, a guest write from another
//! vCPU) when the list registers come back. `flush` for a vCPU whose previous plan was
//! never synced treats that plan as returned unchanged, so a forgotten `sync` cannot
//! lose or duplicate interrupts.
//!
//! More active interrupts than list registers: the active ones are listed first
//! and the rest wait ([`LrPlan::unlisted_active`]); a guest ending one no list
//! register holds is reported by the CPU interface's `EOIcount`, which
//! [`Vgic::sync_with_eoi_count`] takes.
//!
//! # Modules
//!
//! One core, two front-ends: `core` holds the interrupts and implements [`Vgic`]
//! once for [`Core<F>`](Core); a front-end (`v3`, `v2`) decodes its own registers,
//! routes SPIs, and encodes and decodes its own list registers.
//!
//! | module | job |
//! |---|---|
//! | `core` | [`Core<F>`](Core) and its `Frontend` trait: inputs, flush and sync, wake-up checks, kicks |
//! | `core::state` | one interrupt: enable, group, priority, trigger, pending/active, hardware mapping, in-flight bookkeeping |
//! | `core::table` | every interrupt of a vGIC, group enables, pending lists, list-register shadows |
//! | `core::pending` | the per-vCPU pending lists: sets of INTIDs walked in order |
//! | `core::list_registers` | a listed interrupt independent of format, [`LrPlan`], the choice of what to list |
//! | `core::registers` | the per-interrupt register blocks (`IGROUPR` to `NSACR`) GICD, the GICR SGI frame and the GICv2 distributor share |
//! | `core::id_registers` | the `PIDR`/`CIDR` identification blocks (GICv3, GIC-400) |
//! | `core::targets` | [`SgiTargets`] and the kick set |
//! | `core::snapshot` | [`IrqSnapshot`] (one interrupt) and [`GicState`] (a whole vGIC) as plain data; save and restore of what both front-ends share |
//! | `core::stats` | [`VgicStats`]: ignored accesses and list-register anomalies |
//! | `v3` | [`VgicV3`]: the GICv3 front-end ([`V3`]), its configuration and window layout |
//! | `v3::distributor` | GICv3 `GICD_*` registers |
//! | `v3::redistributor` | GICv3 `GICR_*` registers (RD and SGI frames) |
//! | `v3::list_registers` | the `ICH_LR<n>_EL2` format |
//! | `v3::sgi` | decoding `ICC_SGI1R_EL1` |
//! | `v3::save` | [`VgicState`]: the GICv3 state as plain data |
//! | `v2` | [`VgicV2`]: the GICv2 front-end ([`V2`]) and its configuration |
//! | `v2::distributor` | GICv2 `GICD_*` registers, banked by the accessing vCPU |
//! | `v2::list_registers` | the `GICH_LR<n>` format and `GICH_HCR` bits |
//! | `v2::sgi` | decoding `GICD_SGIR`; SGI pending state per source CPU |
//! | `v2::save` | [`VgicV2State`]: the GICv2 state as plain data |
//! | `tests` | host tests: `shared` scenarios run against both front-ends through a `TestGic` and a simulated CPU interface per list-register format; `v3` and `v2` for what only one has |

mod core;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

pub use self::core::{
    Core, GicFrame, GicState, IgnoredAccess, IrqSnapshot, ListRegisterFormat, LrPlan,
    MAX_LIST_REGISTERS, PRIORITY_MASK, SgiTargets, SgiTargetsIter, VgicStats, ich_hcr,
};
pub use v2::{
    SpiV2Snapshot, V2, VcpuV2Snapshot, VgicV2, VgicV2Config, VgicV2State, gich_hcr, gich_lr,
};
pub use v3::{
    DEFAULT_REDISTRIBUTOR_OFFSET, DEFAULT_SPIS, DISTRIBUTOR_SIZE, MAX_SPIS, MAX_VCPUS,
    REDISTRIBUTOR_SIZE, SGI_FRAME_OFFSET, SgiRequest, SpiSnapshot, V3, VcpuSnapshot, VgicState,
    VgicV3, VgicV3Config, ich_lr, vcpu_affinity,
};

use crate::mmio::AccessWidth;
use ::core::fmt;

/// Number of SGIs: INTIDs 0 to 15.
pub const SGIS: u32 = 16;
/// First PPI: INTIDs 16 to 31 are PPIs.
pub const FIRST_PPI: u32 = 16;
/// Interrupts private to each vCPU (SGIs and PPIs): INTIDs 0 to 31.
pub const PRIVATE_INTERRUPTS: u32 = 32;
/// First SPI: SPI `n` is INTID `32 + n`.
pub const FIRST_SPI: u32 = 32;

/// What the hypervisor needs from a virtual GIC, whatever the guest sees: the GICv3
/// front-end [`VgicV3`] or the GICv2 one [`VgicV2`]. The trait is object safe, so a
/// `Box<dyn Vgic + Send>` can hold either.
///
/// No method panics on any argument: out-of-range vCPUs and INTIDs are errors or are
/// ignored, as each method says.
pub trait Vgic {
    /// The number of vCPUs the GIC serves.
    fn vcpus(&self) -> usize;

    /// Sets the level of a device's interrupt line: SPI `intid` (`vcpu` must be
    /// `None`; the guest routes SPIs) or PPI `intid` of vCPU `vcpu`.
    ///
    /// A level-sensitive interrupt is pending while its line is high; an
    /// edge-triggered one becomes pending on a rising edge. Fails for INTIDs the GIC
    /// does not implement, for SGIs (they have no line), for a missing, superfluous
    /// or out-of-range vCPU, and for a hardware-backed interrupt (see
    /// [`map_hardware`](Vgic::map_hardware)), whose line is set with
    /// [`set_hardware_level`](Vgic::set_hardware_level).
    fn set_level(&mut self, intid: u32, vcpu: Option<usize>, level: bool) -> Result<(), VgicError>;

    /// Sets the line of hardware-backed interrupt `intid` (vCPU `vcpu`'s copy of a
    /// PPI, or an SPI without a vCPU) to the device's output as the hypervisor read it:
    /// for the virtual timer, whether its condition holds (`CNTV_CTL_EL0` ENABLE set,
    /// IMASK clear, ISTATUS set). The interrupt is pending exactly while the line is
    /// high (a level), and is listed once the physical interrupt fired
    /// ([`trigger_edge`](Vgic::trigger_edge)).
    ///
    /// Returns the physical INTID the caller must deactivate now: when the line is
    /// low and the host holds the physical interrupt for a guest that has not taken
    /// it (it is not active), the model lets go of it. Before the vCPU runs again,
    /// the caller must then [`flush`](Vgic::flush) it anew (its list registers may
    /// still hold the interrupt pending with the HW bit). For an interrupt that is
    /// not hardware-backed this is [`set_level`](Vgic::set_level), returning `None`.
    /// Fails like [`set_level`](Vgic::set_level) otherwise.
    fn set_hardware_level(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
        level: bool,
    ) -> Result<Option<u32>, VgicError>;

    /// Makes interrupt `intid` pending once, as an edge would (an SGI or PPI needs its
    /// vCPU, an SPI none). On a level-sensitive interrupt the pending state lasts
    /// until the guest acknowledges it. Fails like [`set_level`](Vgic::set_level),
    /// except that SGIs are accepted.
    fn trigger_edge(&mut self, intid: u32, vcpu: Option<usize>) -> Result<(), VgicError>;

    /// Handles the guest's write of `icc_sgi1r` to `ICC_SGI1R_EL1` on vCPU `sender`:
    /// makes the SGI pending on every target vCPU whose copy of it is in Group 1, and
    /// returns those vCPUs so that the caller can kick the ones running. Targets that
    /// name no vCPU are ignored. Fails when `sender` is out of range, and with
    /// [`VgicError::Unsupported`] on a GICv2 (whose SGIs come from `GICD_SGIR`
    /// writes, see [`take_kicks`](Vgic::take_kicks)).
    fn send_sgi_from_register(
        &mut self,
        sender: usize,
        icc_sgi1r: u64,
    ) -> Result<SgiTargets, VgicError>;

    /// Chooses what vCPU `vcpu` should see in its first `list_registers` list registers
    /// (at most [`MAX_LIST_REGISTERS`]): its active interrupts, then its pending,
    /// enabled interrupts of enabled groups by priority. The interrupts listed are in
    /// flight until [`sync`](Vgic::sync). An out-of-range `vcpu` gets an empty plan.
    fn flush(&mut self, vcpu: usize, list_registers: usize) -> LrPlan {
        let mut plan = LrPlan::empty();
        self.flush_into(vcpu, list_registers, &mut plan);
        plan
    }

    /// [`flush`](Vgic::flush) into `plan`, which is emptied first: for a caller that
    /// keeps one plan per vCPU rather than copying a new one out on every entry.
    fn flush_into(&mut self, vcpu: usize, list_registers: usize, plan: &mut LrPlan);

    /// Takes back the list registers of vCPU `vcpu` after an exit: `list_registers[n]`
    /// is the value read from list register `n`, for the registers the last
    /// [`flush`](Vgic::flush) filled (extra values are ignored, missing ones count as
    /// unchanged). Invalid list registers were deactivated by the guest; pending ones
    /// it has not acknowledged yet stay pending. Level-sensitive interrupts whose line
    /// is still high are pending again. An out-of-range `vcpu` is ignored.
    fn sync(&mut self, vcpu: usize, list_registers: &[u64]);

    /// [`sync`](Vgic::sync), for a hypervisor that also reads back the CPU
    /// interface's count of ends of interrupts no list register held
    /// (`ICH_HCR_EL2.EOIcount`, `GICH_HCR.EOICount`; it enables their maintenance
    /// interrupt with [`LrPlan::eoi_count_bits`] and clears the count): the guest
    /// ended (EOImode 0: dropped and deactivated) `eoi_count` of the active
    /// interrupts the last plan left out, which the model deactivates, highest
    /// priority first (the order in which priority drops end them; ties by INTID).
    fn sync_with_eoi_count(&mut self, vcpu: usize, list_registers: &[u64], eoi_count: u32);

    /// Whether vCPU `vcpu` has an interrupt it could take: pending, not active,
    /// enabled, in an enabled group. For waking a vCPU from WFI. False for an
    /// out-of-range `vcpu`.
    fn has_pending(&self, vcpu: usize) -> bool;

    /// The priority of the highest-priority interrupt [`has_pending`](Vgic::has_pending)
    /// would count (lower values are higher priorities), for comparing with the
    /// guest's priority mask.
    fn highest_pending_priority(&self, vcpu: usize) -> Option<u8>;

    /// Marks PPI or SPI `intid` (for a PPI, vCPU `vcpu`'s copy; `vcpu` is ignored for
    /// an SPI) as backed by physical interrupt `physical`, e.g. the virtual timer.
    ///
    /// A hardware-backed interrupt is level-sensitive, its line given by
    /// [`set_hardware_level`](Vgic::set_hardware_level). A trigger
    /// ([`trigger_edge`](Vgic::trigger_edge)) means the physical interrupt fired (so
    /// the line is high) and the caller left it active. It is then listed with the HW
    /// bit, so the guest's deactivation deactivates the physical interrupt, and
    /// triggers are ignored until a list register shows it inactive again (or
    /// [`set_hardware_level`](Vgic::set_hardware_level) hands the physical interrupt
    /// back). Fails for SGIs, unimplemented INTIDs, out-of-range vCPUs and physical
    /// INTIDs outside 16 to 1019.
    fn map_hardware(&mut self, intid: u32, vcpu: usize, physical: u32) -> Result<(), VgicError>;

    /// The guest's read of `width` bytes at `offset` in the vGIC's register window
    /// (from its base, as [`MmioDevice::read`](crate::mmio::MmioDevice::read)), made
    /// by vCPU `vcpu`. The GICv2 distributor banks the registers of INTIDs 0 to 31
    /// (and `GICD_ITARGETSR0-7`, `GICD_C/SPENDSGIR`) by the accessing CPU, so it needs
    /// to know which vCPU reads; the GICv3 does not (each vCPU has its own
    /// redistributor). Unknown registers read as zero and are counted in
    /// [`stats`](Vgic::stats).
    fn mmio_read(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64;

    /// The guest's write of the low `width` bytes of `value` at `offset` in the
    /// register window, made by vCPU `vcpu` (see [`mmio_read`](Vgic::mmio_read)).
    /// Afterwards, call [`take_kicks`](Vgic::take_kicks) and kick the vCPUs it returns.
    fn mmio_write(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64);

    /// The vCPUs that guest register writes since the last call may have given an
    /// interrupt to take, or whose list registers they may have made stale, and
    /// forgets them: the targets of GICv2 `GICD_SGIR` writes (the SGIs of the
    /// GICv2), the vCPU an interrupt is routed to when a write gave it something to
    /// list (set pending, enabled, made active, moved, group enabled), and the vCPU
    /// holding a written interrupt in a list register (disabled, cleared, moved,
    /// reprioritised); and, after a [`sync`](Vgic::sync) or [`flush`](Vgic::flush),
    /// the vCPU an SPI goes to that was moved while the syncing vCPU held it. The
    /// caller kicks the running ones (the accessing vCPU may be
    /// among them; it needs no kick, but like every vCPU it must
    /// [`flush`](Vgic::flush) anew before it runs again). GICv3 SGIs are returned by
    /// [`send_sgi_from_register`](Vgic::send_sgi_from_register) instead.
    fn take_kicks(&mut self) -> SgiTargets;

    /// This vGIC's list-register format, for a hypervisor that looks at list
    /// registers without the model (see [`ListRegisterFormat`]).
    fn list_register_format(&self) -> ListRegisterFormat;

    /// The size of the register window [`mmio_read`](Vgic::mmio_read) and
    /// [`mmio_write`](Vgic::mmio_write) serve, from its base.
    fn window_size(&self) -> u64;

    /// The counters (ignored accesses, list-register anomalies).
    fn stats(&self) -> &VgicStats;

    /// The concrete front-end ([`VgicV3`] or [`VgicV2`]), for saving and restoring
    /// its state.
    fn as_any(&self) -> &dyn ::core::any::Any;

    /// The concrete front-end, mutable.
    fn as_any_mut(&mut self) -> &mut dyn ::core::any::Any;
}

/// Why the vGIC refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicError {
    /// The INTID is not implemented.
    NoSuchInterrupt {
        /// The INTID asked for.
        intid: u32,
        /// INTIDs from 0 up to (not including) this one are implemented.
        limit: u32,
    },
    /// The vCPU does not exist.
    NoSuchVcpu {
        /// The vCPU asked for.
        vcpu: usize,
        /// The number of vCPUs.
        vcpus: usize,
    },
    /// An SGI or PPI was named without the vCPU it belongs to.
    MissingVcpu {
        /// The INTID.
        intid: u32,
    },
    /// An SPI was named with a vCPU (the guest routes SPIs itself).
    UnexpectedVcpu {
        /// The INTID.
        intid: u32,
    },
    /// SGIs have no interrupt line to set a level on.
    NoLine {
        /// The INTID.
        intid: u32,
    },
    /// SGIs cannot be backed by a physical interrupt.
    NotMappable {
        /// The INTID.
        intid: u32,
    },
    /// A physical INTID outside the PPIs and SPIs (16 to 1019).
    BadPhysicalInterrupt {
        /// The physical INTID.
        physical: u32,
    },
    /// The configuration asks for something the model cannot be.
    BadConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// A saved state that does not fit this vGIC or holds impossible values.
    BadState {
        /// What is wrong.
        reason: &'static str,
    },
    /// The front-end does not have this mechanism (e.g. `ICC_SGI1R_EL1` on a GICv2).
    Unsupported,
    /// The interrupt is hardware-backed: its line is set with
    /// [`Vgic::set_hardware_level`].
    HardwareBacked {
        /// The INTID.
        intid: u32,
    },
}

impl fmt::Display for VgicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoSuchInterrupt { intid, limit } => write!(
                f,
                "interrupt {intid} does not exist on the virtual GIC (INTIDs 0 to {} are implemented)",
                limit.saturating_sub(1)
            ),
            Self::NoSuchVcpu { vcpu, vcpus } => write!(
                f,
                "vCPU {vcpu} does not exist on the virtual GIC ({vcpus} vCPUs)"
            ),
            Self::MissingVcpu { intid } => write!(
                f,
                "interrupt {intid} is private to a vCPU, but no vCPU was given"
            ),
            Self::UnexpectedVcpu { intid } => write!(
                f,
                "interrupt {intid} is shared (an SPI) and the guest routes it, but a vCPU was given"
            ),
            Self::NoLine { intid } => write!(
                f,
                "interrupt {intid} is an SGI, which has no line to set a level on"
            ),
            Self::NotMappable { intid } => write!(
                f,
                "interrupt {intid} is an SGI and cannot be backed by a physical interrupt"
            ),
            Self::BadPhysicalInterrupt { physical } => write!(
                f,
                "physical interrupt {physical} cannot back a virtual one (only PPIs and SPIs, 16 to 1019)"
            ),
            Self::BadConfig { reason } => write!(f, "virtual GIC configuration: {reason}"),
            Self::BadState { reason } => write!(f, "saved virtual GIC state: {reason}"),
            Self::Unsupported => f.write_str("this virtual GIC does not support the request"),
            Self::HardwareBacked { intid } => write!(
                f,
                "interrupt {intid} is backed by a physical interrupt; its line is the device's"
            ),
        }
    }
}
