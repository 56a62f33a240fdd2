//! The list registers, whatever their format: one listed interrupt ([`LrEntry`],
//! which each front-end encodes as its list register value), the plan the
//! hypervisor loads ([`LrPlan`]), what the model remembers it placed ([`Shadow`]),
//! and the choice of what to list ([`Selection`]).
//!
//! The maintenance interrupt enables are those of `ICH_HCR_EL2` (Arm ARM DDI 0487,
//! IHI 0069H); a GICv2's `GICH_HCR` has UIE and NPIE at the same positions.

use super::state::LrState;

/// `ICH_HCR_EL2` maintenance interrupt enables a plan may ask for.
pub mod ich_hcr {
    /// UIE, bit \[1\]: maintenance interrupt when at most one list register holds a
    /// valid (pending or active) interrupt.
    pub const UIE: u64 = 1 << 1;
    /// LRENPIE, bit \[2\]: maintenance interrupt while `EOIcount` is not zero (the
    /// guest ended interrupts that no list register held).
    pub const LRENPIE: u64 = 1 << 2;
    /// NPIE, bit \[3\]: maintenance interrupt while no list register holds a pending
    /// interrupt.
    pub const NPIE: u64 = 1 << 3;
    /// EOIcount, bits \[31:27\]: ends of interrupts no list register held.
    pub const EOICOUNT_SHIFT: u32 = 27;
    /// Width mask of EOIcount once shifted down.
    pub const EOICOUNT_MASK: u64 = 0x1F;
}

/// The most list registers a CPU interface has (`ICH_VTR_EL2.ListRegs` is 4 bits:
/// 1 to 16 registers).
pub const MAX_LIST_REGISTERS: usize = 16;

/// One interrupt placed in a list register, independent of the register format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LrEntry {
    /// The virtual INTID.
    pub(crate) intid: u32,
    /// Pending and/or active.
    pub(crate) state: LrState,
    /// The priority.
    pub(crate) priority: u8,
    /// Group 1 (rather than Group 0).
    pub(crate) group1: bool,
    /// The physical INTID for a hardware-backed interrupt (HW bit).
    pub(crate) physical: Option<u32>,
    /// GICv2 SGIs: the CPU that sent it (`GICH_LR.CPUID`); 0 otherwise.
    pub(crate) source: u8,
    /// GICv2: ask for an EOI maintenance interrupt when the guest deactivates it
    /// (`GICH_LR.EOI`, software interrupts only), so that the next source of an SGI
    /// can be listed.
    pub(crate) eoi_maintenance: bool,
}

#[cfg(test)]
impl LrEntry {
    /// For the format tests: `intid` pending (or, `active`, active only) with
    /// `priority` in Group 1 if `group1`, with HW and `physical` if given.
    pub(crate) fn example(
        intid: u32,
        active: bool,
        priority: u8,
        group1: bool,
        physical: Option<u32>,
    ) -> Self {
        Self {
            intid,
            state: LrState {
                pending: !active,
                active,
            },
            priority,
            group1,
            physical,
            ..Self::default()
        }
    }
}

/// What to load into a vCPU's list registers before entering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LrPlan {
    values: [u64; MAX_LIST_REGISTERS],
    count: usize,
    /// More interrupts wait than fit: enable the underflow maintenance interrupt
    /// (`ICH_HCR_EL2.UIE`) so that the vCPU exits to be refilled.
    pub underflow_maintenance: bool,
    /// More interrupts wait and none of the listed ones is pending (all are active):
    /// also enable `ICH_HCR_EL2.NPIE`.
    pub no_pending_maintenance: bool,
    /// More interrupts are active than fit: the guest may end one that no list
    /// register holds, which the CPU interface only counts (`ICH_HCR_EL2.EOIcount`,
    /// `GICH_HCR.EOICount`). A hypervisor that reads the count back and hands it to
    /// [`Vgic::sync_with_eoi_count`](super::super::Vgic::sync_with_eoi_count) enables
    /// the maintenance interrupt for it ([`eoi_count_bits`](Self::eoi_count_bits)).
    pub unlisted_active: bool,
}

impl LrPlan {
    /// A plan that lists nothing.
    pub const fn empty() -> Self {
        Self {
            values: [0; MAX_LIST_REGISTERS],
            count: 0,
            underflow_maintenance: false,
            no_pending_maintenance: false,
            unlisted_active: false,
        }
    }

    /// The values for list registers 0, 1, ... in order. The list registers after
    /// these must be written with 0 (invalid). A GICv2 plan's values fit in 32 bits
    /// (`GICH_LR<n>`, see [`gich_lr`](crate::vgic::gich_lr)).
    pub fn list_registers(&self) -> &[u64] {
        &self.values[..self.count]
    }

    /// The value for list register `n`: 0 (invalid) past the listed ones.
    pub fn value(&self, n: usize) -> u64 {
        self.list_registers().get(n).copied().unwrap_or(0)
    }

    /// The number of list registers used.
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is listed.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `ICH_HCR_EL2` maintenance enables ([`ich_hcr::UIE`], [`ich_hcr::NPIE`]) to
    /// OR into the register's other settings. On a GICv2 the same bits are
    /// `GICH_HCR.UIE` and `GICH_HCR.NPIE` ([`gich_hcr`](crate::vgic::gich_hcr)).
    pub const fn maintenance_bits(&self) -> u64 {
        let mut bits = 0;
        if self.underflow_maintenance {
            bits |= ich_hcr::UIE;
        }
        if self.no_pending_maintenance {
            bits |= ich_hcr::NPIE;
        }
        bits
    }

    /// `ICH_HCR_EL2.LRENPIE` ([`ich_hcr::LRENPIE`], also `GICH_HCR.LRENPIE`) when
    /// active interrupts were left out, for a hypervisor that passes `EOIcount` to
    /// [`Vgic::sync_with_eoi_count`](super::super::Vgic::sync_with_eoi_count); not
    /// part of [`maintenance_bits`](Self::maintenance_bits), since without that the
    /// maintenance interrupt would stay asserted.
    pub const fn eoi_count_bits(&self) -> u64 {
        if self.unlisted_active {
            ich_hcr::LRENPIE
        } else {
            0
        }
    }

    /// Empties the plan, to be filled again (without clearing its values).
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.underflow_maintenance = false;
        self.no_pending_maintenance = false;
        self.unlisted_active = false;
    }

    pub(crate) fn push(&mut self, value: u64) {
        if let Some(slot) = self.values.get_mut(self.count) {
            *slot = value;
            self.count += 1;
        }
    }
}

impl Default for LrPlan {
    fn default() -> Self {
        Self::empty()
    }
}

/// Where a GIC version keeps the list-register fields a hypervisor looks at
/// without the model: the state bits, the HW bit and the virtual INTID. The
/// default has no fields: no list register value is a hardware-linked interrupt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListRegisterFormat {
    /// The pending bit.
    pub(crate) pending: u64,
    /// The active bit.
    pub(crate) active: u64,
    /// The HW bit (hardware-linked).
    pub(crate) hardware: u64,
    /// The virtual INTID field (from bit 0).
    pub(crate) virtual_intid: u64,
}

impl ListRegisterFormat {
    /// Whether a list register loaded with `planned`, a pending hardware-linked
    /// interrupt, came back as `returned` because the guest took and ended it: the
    /// same value with neither pending nor active set (deactivating the virtual
    /// interrupt deactivated the physical one).
    pub const fn pending_hardware_ended(&self, planned: u64, returned: u64) -> bool {
        let state = self.pending | self.active;
        planned & self.hardware != 0
            && planned & state == self.pending
            && returned == planned & !state
    }

    /// Whether `value` lists virtual INTID `intid`.
    pub const fn lists(&self, value: u64, intid: u32) -> bool {
        value & self.virtual_intid == intid as u64
    }
}

/// What the model placed in one vCPU's list registers at the last flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shadow {
    entries: [LrEntry; MAX_LIST_REGISTERS],
    count: usize,
}

impl Shadow {
    /// The entries, in list register order.
    pub(crate) fn entries(&self) -> &[LrEntry] {
        &self.entries[..self.count]
    }

    /// Records `entry` in the next list register.
    pub(crate) fn push(&mut self, entry: LrEntry) {
        if let Some(slot) = self.entries.get_mut(self.count) {
            *slot = entry;
            self.count += 1;
        }
    }

    /// Forgets everything (after a sync).
    pub(crate) fn clear(&mut self) {
        self.count = 0;
    }

    /// Ends the flight: forgets the entries and returns how many there were. They
    /// stay readable with [`Self::recorded`] until the next [`Self::push`], so a sync
    /// can walk them without copying the shadow out.
    pub(crate) fn land(&mut self) -> usize {
        core::mem::take(&mut self.count)
    }

    /// Entry `n` as last recorded, in flight or just landed.
    pub(crate) fn recorded(&self, n: usize) -> Option<LrEntry> {
        self.entries.get(n).copied()
    }

    /// Whether nothing is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// What to list for one SGI of a front-end that keeps SGIs pending per source CPU
/// (the GICv2); the GICv3 lists the state as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SgiListing {
    /// The state to list.
    pub(crate) state: LrState,
    /// The source CPU (`GICH_LR.CPUID`).
    pub(crate) source: u8,
    /// Other sources wait: ask for an EOI maintenance interrupt.
    pub(crate) more: bool,
}

impl SgiListing {
    /// `state` as it is, from no particular source.
    pub(crate) const fn plain(state: LrState) -> Self {
        Self {
            state,
            source: 0,
            more: false,
        }
    }
}

/// An interrupt that could be listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The INTID.
    pub(crate) intid: u32,
    /// What the list register would hold.
    pub(crate) state: LrState,
    /// Its priority.
    pub(crate) priority: u8,
    /// For an SGI, what the front-end chose to list (its `state` is `state`).
    pub(crate) sgi: SgiListing,
}

impl Candidate {
    /// Sort key, lowest first: active interrupts (which must stay listed for the
    /// guest to deactivate them), then by priority value (lower is higher priority,
    /// IHI 0069H "Interrupt prioritization"), then by INTID.
    pub(crate) fn rank(&self) -> (bool, u8, u32) {
        (!self.state.active, self.priority, self.intid)
    }
}

/// Picks the best `capacity` candidates without allocating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Selection {
    best: [Candidate; MAX_LIST_REGISTERS],
    len: usize,
    capacity: usize,
    /// A pending candidate did not fit.
    pub(crate) left_out_pending: bool,
    /// An active candidate did not fit (more active interrupts than list registers).
    pub(crate) left_out_active: bool,
}

impl Selection {
    /// A selection of at most `capacity` (clamped to [`MAX_LIST_REGISTERS`]).
    pub(crate) fn new(capacity: usize) -> Self {
        let mut selection = Self {
            best: [Candidate::default(); MAX_LIST_REGISTERS],
            len: 0,
            capacity: 0,
            left_out_pending: false,
            left_out_active: false,
        };
        selection.restart(capacity);
        selection
    }

    /// Empties the selection for a new choice of at most `capacity` (a flush reuses
    /// one selection rather than clearing a new one).
    pub(crate) fn restart(&mut self, capacity: usize) {
        self.len = 0;
        self.capacity = capacity.min(MAX_LIST_REGISTERS);
        self.left_out_pending = false;
        self.left_out_active = false;
    }

    fn leave_out(&mut self, candidate: &Candidate) {
        self.left_out_pending |= candidate.state.pending;
        self.left_out_active |= candidate.state.active;
    }

    /// Offers `candidate`.
    pub(crate) fn offer(&mut self, candidate: Candidate) {
        if self.len == self.capacity {
            match self.len.checked_sub(1) {
                Some(last) if candidate.rank() < self.best[last].rank() => {
                    let worst = self.best[last];
                    self.leave_out(&worst);
                    self.len = last;
                }
                _ => {
                    self.leave_out(&candidate);
                    return;
                }
            }
        }
        let position = self.best[..self.len].partition_point(|c| c.rank() < candidate.rank());
        self.best.copy_within(position..self.len, position + 1);
        self.best[position] = candidate;
        self.len += 1;
    }

    /// The chosen candidates, best first.
    pub(crate) fn chosen(&self) -> &[Candidate] {
        &self.best[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn pending(intid: u32, priority: u8) -> Candidate {
        Candidate {
            intid,
            state: LrState {
                pending: true,
                active: false,
            },
            priority,
            sgi: SgiListing::default(),
        }
    }

    fn active(intid: u32, priority: u8) -> Candidate {
        Candidate {
            intid,
            state: LrState {
                pending: false,
                active: true,
            },
            priority,
            sgi: SgiListing::default(),
        }
    }

    fn ids(selection: &Selection) -> Vec<u32> {
        selection.chosen().iter().map(|c| c.intid).collect()
    }

    #[test]
    fn plan_values_and_maintenance_bits() {
        let mut plan = LrPlan::empty();
        assert!(plan.is_empty());
        plan.push(7);
        assert_eq!(plan.list_registers(), &[7]);
        assert_eq!(plan.value(0), 7);
        assert_eq!(plan.value(1), 0);
        assert_eq!(plan.value(99), 0);
        plan.underflow_maintenance = true;
        assert_eq!(plan.maintenance_bits(), 0b10, "ICH_HCR_EL2.UIE is bit 1");
        plan.no_pending_maintenance = true;
        assert_eq!(plan.maintenance_bits(), 0b1010, "NPIE is bit 3");
    }

    #[test]
    fn selection_keeps_the_best_by_priority() {
        let mut selection = Selection::new(2);
        selection.offer(pending(40, 0xA0));
        selection.offer(pending(41, 0x80));
        assert!(!selection.left_out_pending);
        selection.offer(pending(42, 0x90));
        assert_eq!(ids(&selection), [41, 42]);
        assert!(selection.left_out_pending);
        selection.offer(pending(43, 0xF0));
        assert_eq!(ids(&selection), [41, 42]);
    }

    #[test]
    fn selection_puts_active_first_and_breaks_ties_by_intid() {
        let mut selection = Selection::new(3);
        selection.offer(pending(50, 0x00));
        selection.offer(active(60, 0xF0));
        selection.offer(pending(45, 0x00));
        selection.offer(pending(44, 0x00));
        assert_eq!(ids(&selection), [60, 44, 45]);
        assert!(selection.left_out_pending);
        assert!(!selection.left_out_active);
    }

    #[test]
    fn selection_capacity_is_clamped() {
        let mut selection = Selection::new(1000);
        for intid in 0..40 {
            selection.offer(pending(intid, 0));
        }
        assert_eq!(selection.chosen().len(), MAX_LIST_REGISTERS);
        let mut none = Selection::new(0);
        none.offer(active(1, 0));
        assert!(none.chosen().is_empty());
        assert!(none.left_out_active);
    }

    #[test]
    fn both_formats_recognise_the_end_of_a_pending_hardware_interrupt_only() {
        use crate::vgic::core::Frontend;
        use crate::vgic::{V2, V3};
        for (format, name) in [
            (V3::LIST_REGISTER_FORMAT, "GICv3"),
            (V2::LIST_REGISTER_FORMAT, "GICv2"),
        ] {
            let hw = |active: bool| LrEntry::example(27, active, 0x80, true, Some(27));
            let encode = |entry: &LrEntry| match name {
                "GICv3" => V3::encode(entry),
                _ => V2::encode(entry),
            };
            let pending = encode(&hw(false));
            let ended = pending & !(format.pending | format.active);
            assert!(format.pending_hardware_ended(pending, ended), "{name}");
            assert!(
                format.lists(pending, 27) && !format.lists(pending, 28),
                "{name}"
            );
            let acknowledged = (pending & !format.pending) | format.active;
            assert!(
                !format.pending_hardware_ended(pending, acknowledged),
                "{name}: still active"
            );
            let active = encode(&hw(true));
            assert!(
                !format.pending_hardware_ended(active, ended),
                "{name}: listed active, it would come back pending"
            );
            let software = encode(&LrEntry::example(40, false, 0x80, true, None));
            let software_ended = software & !(format.pending | format.active);
            assert!(
                !format.pending_hardware_ended(software, software_ended),
                "{name}"
            );
            assert!(!ListRegisterFormat::default().pending_hardware_ended(pending, ended));
        }
    }
}
