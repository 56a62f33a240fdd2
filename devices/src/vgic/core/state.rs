//! One interrupt's state, independent of the GIC front-end.
//!
//! An interrupt is pending, active, both or neither (IHI 0069H, "Interrupt
//! states"). Where the pending state comes from depends on the trigger (IHI 0069H,
//! "Interrupt types" and "Changes to the interrupt state"):
//!
//! - **Edge-triggered** (and every SGI): an event sets a latch; delivering the
//!   interrupt (the guest acknowledging it) consumes the latch.
//! - **Level-sensitive**: pending while the input line is high, or while a latch set
//!   by a write to `ISPENDR` (or [`IrqState::trigger`]) lasts; acknowledging consumes
//!   that latch but not the line.
//! - **Hardware-backed** ([`IrqState::map_hardware`], the virtual timer): a level,
//!   whose line is the device's output as the hypervisor last read it
//!   ([`IrqState::set_hardware_line`]). A trigger means the physical interrupt fired
//!   and the host holds it active for the guest ("hardware-owned"); only then is the
//!   line's pending state listed, with the HW bit, so that the guest's deactivation
//!   deactivates the physical interrupt. It is never listed pending and active at
//!   once (the pending state then lives in the physical GIC), and further triggers
//!   are ignored until the list register shows the guest deactivated it. When the
//!   line falls before the guest took the interrupt, the model lets go of the
//!   physical interrupt and the hypervisor deactivates it: the interrupt stops
//!   being pending, as a level does.
//!
//! While an interrupt is in a list register ("in flight", see [`IrqState::begin_flight`])
//! its pending and active state is the list register's. What the model still holds
//! meanwhile is what arrived *since*: a new edge, a guest write to `ISPENDR` /
//! `ICPENDR` / `ISACTIVER` / `ICACTIVER` from another vCPU. [`IrqState::end_flight`]
//! merges both.

/// Priority bits implemented: the top five (32 levels), as GIC implementations and
/// the virtual CPU interface of Cortex-A cores commonly have (`ICH_VTR_EL2.PRIbits`
/// = 4, i.e. 5 bits). Lower bits read as zero (IHI 0069H, "Interrupt
/// prioritization": unimplemented low-order priority bits are RAZ/WI).
pub const PRIORITY_MASK: u8 = 0xF8;

/// An interrupt's state as a list register shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LrState {
    /// Pending.
    pub(crate) pending: bool,
    /// Active.
    pub(crate) active: bool,
}

#[cfg(test)]
impl LrState {
    /// Pending only.
    pub(crate) const PENDING: Self = Self {
        pending: true,
        active: false,
    };
    /// Active only.
    pub(crate) const ACTIVE: Self = Self {
        pending: false,
        active: true,
    };
    /// Pending and active.
    pub(crate) const BOTH: Self = Self {
        pending: true,
        active: true,
    };
}

impl LrState {
    /// Neither pending nor active: the list register is free.
    pub(crate) const fn is_inactive(self) -> bool {
        !self.pending && !self.active
    }
}

/// What the model remembers about an interrupt it placed in a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flight {
    /// The vCPU whose list register holds it.
    vcpu: usize,
    /// The state placed in the list register.
    listed: LrState,
    /// Listed with the HW bit (the physical interrupt is active on the host).
    hardware: bool,
    /// The guest cleared the pending state meanwhile (`ICPENDR`).
    cleared_pending: bool,
    /// The guest cleared the active state meanwhile (`ICACTIVER`).
    cleared_active: bool,
}

/// One interrupt: its configuration and its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqState {
    /// Forwarding enabled (`ISENABLER`/`ICENABLER`).
    pub(crate) enabled: bool,
    /// In Group 1 (`IGROUPR`); Group 0 otherwise.
    pub(crate) group1: bool,
    /// Edge-triggered (`ICFGR` Int_config\[1\] = 1); level-sensitive otherwise.
    edge: bool,
    /// Priority (`IPRIORITYR`), with only [`PRIORITY_MASK`] bits.
    priority: u8,
    /// The input line's level.
    line: bool,
    /// The pending latch (edge events, `ISPENDR` writes, SGIs).
    latch: bool,
    /// Active (outside a list register).
    active: bool,
    /// The physical INTID backing this interrupt, if hardware-mapped.
    physical: Option<u32>,
    /// The physical interrupt fired and waits for the guest's deactivation.
    hw_owned: bool,
    /// Set while the interrupt sits in a list register.
    flight: Option<Flight>,
}

impl IrqState {
    /// An interrupt at reset: disabled, Group 1, priority 0, inactive, `edge` or
    /// level-sensitive.
    ///
    /// The architecture leaves the reset group IMPLEMENTATION DEFINED; Group 1 is
    /// what every GICv3 guest (Linux, U-Boot, Zephyr) programs anyway, and what KVM
    /// resets to for its GICv3. The GICv2 front-end resets its interrupts to Group 0
    /// instead, which GICv2 guests rely on (see `table::IrqTable::new`).
    pub(crate) const fn new(edge: bool) -> Self {
        Self {
            enabled: false,
            group1: true,
            edge,
            priority: 0,
            line: false,
            latch: false,
            active: false,
            physical: None,
            hw_owned: false,
            flight: None,
        }
    }

    /// Whether edge-triggered.
    pub(crate) const fn is_edge(&self) -> bool {
        self.edge
    }

    /// Sets the trigger (`ICFGR`).
    pub(crate) fn set_edge(&mut self, edge: bool) {
        self.edge = edge;
    }

    /// The priority.
    pub(crate) const fn priority(&self) -> u8 {
        self.priority
    }

    /// Sets the priority, dropping unimplemented bits.
    pub(crate) fn set_priority(&mut self, priority: u8) {
        self.priority = priority & PRIORITY_MASK;
    }

    /// Whether a delivery consumes the pending state: edges. (Level-sensitive
    /// interrupts, hardware-backed ones included, stay pending while their line is
    /// high.)
    const fn latches(&self) -> bool {
        self.edge
    }

    /// Whether the pending state may be listed (and counts for delivery): it is
    /// pending, and not merely because the line of a hardware-backed interrupt is
    /// high while the physical interrupt has not fired yet (it is listed with the HW
    /// bit once the host holds the physical interrupt, see
    /// [`trigger`](Self::trigger)).
    fn listable_pending(&self) -> bool {
        if self.physical.is_some() && !self.hw_owned {
            // Only a software pending state (`ISPENDR`) then, listed without HW.
            return self.latch;
        }
        self.pending()
    }

    /// Whether the interrupt is pending, including in a list register.
    pub(crate) fn pending(&self) -> bool {
        if !self.latches() && self.line {
            return true;
        }
        let in_flight = self
            .flight
            .is_some_and(|f| f.listed.pending && !f.cleared_pending);
        self.latch || (self.latches() && in_flight)
    }

    /// Whether the interrupt is active, including in a list register.
    pub(crate) fn active(&self) -> bool {
        let in_flight = self
            .flight
            .is_some_and(|f| f.listed.active && !f.cleared_active);
        self.active || in_flight
    }

    /// The vCPU whose list register holds the interrupt, if any.
    pub(crate) fn in_flight_on(&self) -> Option<usize> {
        self.flight.map(|f| f.vcpu)
    }

    /// Whether the interrupt needs a vCPU's attention: pending, active or in a list
    /// register (what puts it on a pending list).
    pub(crate) fn is_live(&self) -> bool {
        self.flight.is_some() || self.pending() || self.active()
    }

    /// Whether the interrupt is backed by a physical interrupt.
    pub(crate) const fn is_hardware_backed(&self) -> bool {
        self.physical.is_some()
    }

    /// The input line of an interrupt that is not hardware-backed changes to
    /// `level` (a hardware-backed one takes [`set_hardware_line`](Self::set_hardware_line)).
    pub(crate) fn set_line(&mut self, level: bool) {
        let rising = level && !self.line;
        self.line = level;
        if self.edge && rising {
            self.latch = true;
        }
    }

    /// The device output behind a hardware-backed interrupt, as the hypervisor read
    /// it, is `level` (for one that is not, this is [`set_line`](Self::set_line)).
    ///
    /// Returns the physical INTID the caller must deactivate now: when the line is
    /// low while the host holds the physical interrupt for the guest and the guest
    /// has not taken it (it is not active, in software or in a list register), the
    /// model lets go of it; a list register that still holds it pending must then be
    /// reloaded before the guest runs again (the next [`begin_flight`](Self::begin_flight)
    /// plan no longer lists it).
    pub(crate) fn set_hardware_line(&mut self, level: bool) -> Option<u32> {
        if self.physical.is_none() {
            self.set_line(level);
            return None;
        }
        self.line = level;
        if level || !self.hw_owned || self.active() {
            return None;
        }
        self.hw_owned = false;
        if let Some(flight) = &mut self.flight {
            flight.hardware = false;
        }
        self.physical
    }

    /// An event makes the interrupt pending once; for a hardware-backed interrupt,
    /// the physical interrupt fired and the caller holds it active for the guest,
    /// which also means its line is high. Returns false if ignored (a hardware-backed
    /// interrupt the host already holds).
    pub(crate) fn trigger(&mut self) -> bool {
        if self.physical.is_some() {
            return self.hardware_trigger();
        }
        self.latch = true;
        true
    }

    fn hardware_trigger(&mut self) -> bool {
        if self.hw_owned {
            return false;
        }
        self.hw_owned = true;
        self.line = true;
        true
    }

    /// Backs the interrupt with physical interrupt `physical`.
    pub(crate) fn map_hardware(&mut self, physical: u32) {
        self.physical = Some(physical);
    }

    /// Sets the pending latch, for a front-end that keeps an interrupt's pending state
    /// itself and mirrors it here: a GICv2 SGI is pending once per source CPU, and
    /// the front-end sets the latch while any source is pending outside a list
    /// register.
    pub(crate) fn set_latch(&mut self, latch: bool) {
        self.latch = latch;
    }

    /// The guest writes 1 to its `ISPENDR` bit.
    pub(crate) fn guest_set_pending(&mut self) {
        self.latch = true;
    }

    /// The guest writes 1 to its `ICPENDR` bit. A level-sensitive interrupt whose line
    /// is high stays pending (IHI 0069H, `GICD_ICPENDR<n>`), hardware-backed ones
    /// included: only their line (the device) clears them.
    pub(crate) fn guest_clear_pending(&mut self) {
        self.latch = false;
        if let Some(flight) = &mut self.flight {
            flight.cleared_pending = true;
        }
    }

    /// The guest writes 1 to its `ISACTIVER` bit.
    pub(crate) fn guest_set_active(&mut self) {
        self.active = true;
    }

    /// The guest writes 1 to its `ICACTIVER` bit (ignored while hardware-owned, as
    /// for [`guest_clear_pending`](Self::guest_clear_pending)).
    pub(crate) fn guest_clear_active(&mut self) {
        if self.hw_owned {
            return;
        }
        self.active = false;
        if let Some(flight) = &mut self.flight {
            flight.cleared_active = true;
        }
    }

    /// What a list register should hold for this interrupt, if anything: active
    /// interrupts always (so the guest can deactivate them), pending ones when
    /// enabled and their group is. A hardware-owned interrupt is never listed pending
    /// and active at once (the pending state then lives in the physical GIC).
    pub(crate) fn lr_state(&self, group_enabled: bool) -> Option<LrState> {
        let active = self.active();
        let pending =
            self.enabled && group_enabled && self.listable_pending() && !(self.hw_owned && active);
        let state = LrState { pending, active };
        (!state.is_inactive()).then_some(state)
    }

    /// Whether the vCPU could take the interrupt now: pending, not active, enabled,
    /// group enabled.
    pub(crate) fn is_deliverable(&self, group_enabled: bool) -> bool {
        self.enabled && group_enabled && self.listable_pending() && !self.active()
    }

    /// The interrupt goes into a list register of vCPU `vcpu` in state `listed`.
    /// Returns the physical INTID when it must carry the HW bit.
    pub(crate) fn begin_flight(&mut self, vcpu: usize, listed: LrState) -> Option<u32> {
        let hardware = self.hw_owned;
        if listed.pending && self.latches() {
            self.latch = false;
        }
        if listed.active {
            self.active = false;
        }
        self.flight = Some(Flight {
            vcpu,
            listed,
            hardware,
            cleared_pending: false,
            cleared_active: false,
        });
        if hardware { self.physical } else { None }
    }

    /// The list register comes back in state `returned`.
    pub(crate) fn end_flight(&mut self, returned: LrState) {
        let Some(flight) = self.flight.take() else {
            return;
        };
        let pending = returned.pending && !flight.cleared_pending;
        let active = returned.active && !flight.cleared_active;
        self.active |= active;
        if self.latches() {
            self.latch |= pending;
        } else if flight.listed.pending && !returned.pending {
            // The guest acknowledged it: the latch is consumed, the line stays.
            self.latch = false;
        }
        if flight.hardware && returned.is_inactive() {
            // The guest deactivated it, and with it the physical interrupt.
            self.hw_owned = false;
        }
    }

    /// The state as plain data (in-flight state folded in as if the list register
    /// came back unchanged).
    pub(crate) fn snapshot(&self) -> super::snapshot::IrqSnapshot {
        super::snapshot::IrqSnapshot {
            enabled: self.enabled,
            group1: self.group1,
            edge: self.edge,
            priority: self.priority,
            line: self.line,
            pending_latch: if self.latches() {
                self.pending()
            } else {
                self.latch
            },
            active: self.active(),
        }
    }

    /// Replaces configuration and state with `snapshot`, keeping the hardware mapping.
    /// A hardware-backed interrupt comes back neither pending nor active: the physical
    /// interrupt it stood for belongs to the machine that was saved, and the device
    /// behind it (the timer) raises it again if its condition still holds.
    pub(crate) fn restore(&mut self, snapshot: &super::snapshot::IrqSnapshot) {
        let physical = self.physical;
        *self = Self::new(snapshot.edge);
        self.enabled = snapshot.enabled;
        self.group1 = snapshot.group1;
        self.set_priority(snapshot.priority);
        self.physical = physical;
        if physical.is_none() {
            self.line = snapshot.line;
            self.latch = snapshot.pending_latch;
            self.active = snapshot.active;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PENDING: LrState = LrState::PENDING;
    const ACTIVE: LrState = LrState::ACTIVE;
    const BOTH: LrState = LrState::BOTH;
    const INVALID: LrState = LrState {
        pending: false,
        active: false,
    };

    fn enabled(edge: bool) -> IrqState {
        let mut irq = IrqState::new(edge);
        irq.enabled = true;
        irq
    }

    #[test]
    fn priority_keeps_five_bits() {
        let mut irq = IrqState::new(false);
        irq.set_priority(0xFF);
        assert_eq!(irq.priority(), 0xF8);
        irq.set_priority(0xA7);
        assert_eq!(irq.priority(), 0xA0);
    }

    #[test]
    fn edge_latches_on_rising_edges_only() {
        let mut irq = enabled(true);
        irq.set_line(true);
        assert!(irq.pending());
        irq.guest_clear_pending();
        assert!(!irq.pending());
        irq.set_line(true);
        assert!(!irq.pending(), "still high: no new edge");
        irq.set_line(false);
        irq.set_line(true);
        assert!(irq.pending());
    }

    #[test]
    fn level_follows_the_line_and_icpendr_cannot_clear_it() {
        let mut irq = enabled(false);
        irq.set_line(true);
        assert!(irq.pending());
        irq.guest_clear_pending();
        assert!(irq.pending(), "the line is still high");
        irq.set_line(false);
        assert!(!irq.pending());
        irq.guest_set_pending();
        assert!(irq.pending(), "the latch");
    }

    #[test]
    fn edge_delivered_once_through_a_list_register() {
        let mut irq = enabled(true);
        irq.trigger();
        let state = irq.lr_state(true).unwrap();
        assert_eq!(state, PENDING);
        assert_eq!(irq.begin_flight(0, state), None);
        assert_eq!(irq.in_flight_on(), Some(0));
        assert!(irq.pending(), "pending in the list register");
        irq.end_flight(INVALID);
        assert!(!irq.pending() && !irq.active());
        assert_eq!(irq.lr_state(true), None);
    }

    #[test]
    fn edge_during_flight_becomes_pending_and_active() {
        let mut irq = enabled(true);
        irq.trigger();
        irq.begin_flight(1, PENDING);
        irq.trigger();
        irq.end_flight(ACTIVE);
        assert_eq!(irq.lr_state(true), Some(BOTH));
    }

    #[test]
    fn level_redelivered_while_high() {
        let mut irq = enabled(false);
        irq.set_line(true);
        irq.begin_flight(0, PENDING);
        irq.end_flight(INVALID);
        assert_eq!(irq.lr_state(true), Some(PENDING), "still high");
        irq.begin_flight(0, PENDING);
        irq.set_line(false);
        irq.end_flight(PENDING);
        assert_eq!(irq.lr_state(true), None, "lowered before acknowledged");
    }

    #[test]
    fn level_latch_consumed_by_acknowledge() {
        let mut irq = enabled(false);
        irq.guest_set_pending();
        irq.begin_flight(0, PENDING);
        irq.end_flight(PENDING);
        assert!(irq.pending(), "not acknowledged yet");
        irq.begin_flight(0, PENDING);
        irq.end_flight(ACTIVE);
        assert!(!irq.pending() && irq.active());
    }

    #[test]
    fn guest_clears_during_flight_win() {
        let mut irq = enabled(true);
        irq.trigger();
        irq.guest_set_active();
        irq.begin_flight(0, BOTH);
        irq.guest_clear_pending();
        irq.guest_clear_active();
        assert!(!irq.pending() && !irq.active());
        irq.end_flight(BOTH);
        assert!(!irq.pending() && !irq.active());
    }

    #[test]
    fn disabled_or_group_disabled_lists_only_active() {
        let mut irq = IrqState::new(true);
        irq.trigger();
        assert_eq!(irq.lr_state(true), None, "disabled");
        irq.enabled = true;
        assert_eq!(irq.lr_state(false), None, "group disabled");
        irq.guest_set_active();
        assert_eq!(irq.lr_state(false), Some(ACTIVE));
        assert!(!irq.is_deliverable(true), "active");
    }

    #[test]
    fn hardware_backed_interrupt() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        assert!(irq.trigger(), "the physical interrupt fired");
        assert!(!irq.trigger(), "owned: ignored");
        assert_eq!(irq.lr_state(true), Some(PENDING));
        assert_eq!(irq.begin_flight(0, PENDING), Some(27));
        irq.end_flight(ACTIVE);
        assert!(
            irq.pending(),
            "active, and pending while its line is high: a level"
        );
        assert_eq!(
            irq.set_hardware_line(false),
            None,
            "active: the guest's deactivation releases the physical interrupt"
        );
        assert!(!irq.pending(), "not kept pending in software");
        assert_eq!(irq.lr_state(true), Some(ACTIVE));
        assert!(!irq.trigger(), "still active in the list register");
        irq.guest_clear_active();
        assert!(irq.active(), "only the list register releases it");
        assert_eq!(irq.begin_flight(0, ACTIVE), Some(27));
        irq.end_flight(INVALID);
        assert!(irq.trigger(), "inactive again: accepted");
        assert_eq!(irq.lr_state(true), Some(PENDING));
    }

    #[test]
    fn hardware_backed_never_pending_and_active_in_a_list_register() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        irq.guest_set_active();
        irq.trigger();
        assert_eq!(irq.lr_state(true), Some(ACTIVE));
    }

    #[test]
    fn software_pending_of_a_mapped_interrupt_is_listed_without_hw() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        irq.guest_set_pending();
        assert_eq!(irq.begin_flight(0, PENDING), None);
        irq.end_flight(INVALID);
        assert!(irq.trigger(), "the physical interrupt was never owned");
    }

    #[test]
    fn hardware_line_is_a_level() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        // The device's output is high, but the physical interrupt has not fired yet:
        // pending, not yet listable.
        assert_eq!(irq.set_hardware_line(true), None);
        assert!(irq.pending());
        assert_eq!(irq.lr_state(true), None);
        assert!(!irq.is_deliverable(true));
        // It fires: listed with the HW bit.
        assert!(irq.trigger());
        assert_eq!(irq.lr_state(true), Some(PENDING));
        // The guest disables its timer before taking it: no longer pending, and the
        // physical interrupt is the caller's to deactivate.
        assert_eq!(irq.set_hardware_line(false), Some(27));
        assert!(!irq.pending());
        assert_eq!(irq.lr_state(true), None);
        assert_eq!(irq.set_hardware_line(false), None, "released once");
        assert!(irq.trigger(), "the next firing is accepted");
    }

    #[test]
    fn hardware_line_falling_while_listed_pending_unlists_it() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        irq.trigger();
        assert_eq!(irq.begin_flight(0, PENDING), Some(27));
        assert!(irq.pending());
        assert_eq!(irq.set_hardware_line(false), Some(27));
        assert!(!irq.pending());
        // The list register comes back as loaded (the guest never saw it).
        irq.end_flight(PENDING);
        assert!(!irq.pending());
        assert_eq!(irq.lr_state(true), None);
        assert!(irq.trigger(), "not owned any more");
    }

    #[test]
    fn hardware_line_falling_while_active_keeps_the_physical_interrupt() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        irq.trigger();
        irq.begin_flight(0, PENDING);
        irq.end_flight(ACTIVE);
        assert!(
            irq.pending() && irq.active(),
            "active, and pending while high"
        );
        assert_eq!(
            irq.set_hardware_line(false),
            None,
            "the guest deactivates it"
        );
        assert!(!irq.pending() && irq.active());
        assert_eq!(irq.lr_state(true), Some(ACTIVE));
        assert_eq!(
            irq.begin_flight(0, ACTIVE),
            Some(27),
            "still with the HW bit"
        );
        irq.end_flight(INVALID);
        assert!(irq.trigger());
    }

    #[test]
    fn hardware_line_high_after_deactivation_waits_for_the_physical_interrupt() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        irq.trigger();
        irq.begin_flight(0, PENDING);
        irq.end_flight(ACTIVE);
        irq.begin_flight(0, ACTIVE);
        irq.end_flight(INVALID);
        // The line is still high: pending, but listed only once it fires again
        // (the guest's deactivation deactivated the physical interrupt).
        assert!(irq.pending());
        assert_eq!(irq.lr_state(true), None);
        assert!(irq.trigger());
        assert_eq!(irq.lr_state(true), Some(PENDING));
    }

    #[test]
    fn clearing_pending_of_a_hardware_level_leaves_the_line() {
        let mut irq = enabled(false);
        irq.map_hardware(27);
        irq.trigger();
        irq.guest_clear_pending();
        assert!(irq.pending(), "the line is high");
        assert_eq!(irq.set_hardware_line(false), Some(27));
        assert!(!irq.pending());
    }
}
