//! What a vCPU's list registers hold between two guest runs, so that an exit that
//! touched no interrupt state costs no vGIC work at all.
//!
//! Before a guest run Aerie loads the vGIC's plan into the list registers; after it,
//! it reads back only the registers the plan used. The guest changes a list register
//! only by acknowledging or ending an interrupt listed there, and the vGIC's state
//! changes only through Aerie, which bumps a generation number each time. So while
//! the registers come back as written and the generation stands, the plan still
//! holds: no sync, no flush, no register write on the next entry. This is KVM's
//! "used LRs" and Xen's `lr_mask` idea: nothing beyond the used registers is read.
//!
//! One change the guest makes is undone without the vGIC: ending a
//! hardware-linked interrupt (the virtual timer) whose physical interrupt then
//! fires again before the vCPU runs. The list register went from the plan's value
//! to the same value with no state; written back, it says exactly what the vGIC
//! still believes (the interrupt listed and pending), so the plan holds again. The
//! cache keeps such ends aside ([`Returned::HardwareEnded`]) for the exit's
//! interrupt handlers to re-list ([`ListRegisterCache::relist`]); what they leave
//! must be synced before anything else looks at the vGIC.

/// Most list registers the architecture has (ICH_VTR_EL2.ListRegs + 1 <= 16).
pub const MAX_LIST_REGISTERS: usize = 16;

/// The list registers as Aerie last wrote them, and the vGIC generation that plan
/// was made at.
#[derive(Debug, Clone, Copy)]
pub struct ListRegisterCache {
    /// The generation the plan was made at; `None` once the guest changed a list
    /// register (the plan no longer stands and the vGIC must take them back).
    generation: Option<u64>,
    /// The values written, `values[n]` for list register `n`.
    values: [u64; MAX_LIST_REGISTERS],
    /// The used registers as last read back by [`Self::check_returned`].
    returned: [u64; MAX_LIST_REGISTERS],
    /// List registers `0..used` hold the plan's interrupts; the rest are zero.
    used: usize,
    /// List registers `0..dirty` may hold something in the hardware (a previous
    /// plan's entries, or what the guest left of them): a new plan overwrites them.
    dirty: usize,
    /// The maintenance-interrupt bits of the hypervisor control register for this
    /// plan (underflow, no-pending).
    maintenance: u64,
    /// Bit `n`: the guest ended the hardware-linked interrupt of list register `n`
    /// and nothing re-listed it yet (see [`Returned::HardwareEnded`]).
    ended: u16,
}

/// What the guest did to the list registers, as read back after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Nothing: the plan holds.
    Unchanged,
    /// It ended hardware-linked interrupts and changed nothing else. The plan holds
    /// again once each is re-listed ([`ListRegisterCache::relist`]); otherwise the
    /// vGIC must be given the registers back ([`ListRegisterCache::returned`]).
    HardwareEnded,
    /// Anything else: the vGIC must be given the registers back.
    Changed,
}

impl Default for ListRegisterCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ListRegisterCache {
    /// A cache that knows nothing: the first entry loads a plan.
    pub const fn new() -> Self {
        Self {
            generation: None,
            values: [0; MAX_LIST_REGISTERS],
            returned: [0; MAX_LIST_REGISTERS],
            used: 0,
            dirty: MAX_LIST_REGISTERS,
            maintenance: 0,
            ended: 0,
        }
    }

    /// Whether the loaded plan still holds at vGIC `generation`: nothing to do
    /// before the next guest run.
    pub fn holds_at(&self, generation: u64) -> bool {
        self.generation == Some(generation) && self.ended == 0
    }

    /// Records a new plan made at `generation`: `plan` gives each list register's
    /// value (zero for an unused one), `available` is how many the CPU has.
    /// Returns how many list registers to write (`value(n)` for `n` below that):
    /// those the plan uses and those that may still hold an older entry.
    pub fn record(
        &mut self,
        generation: u64,
        available: usize,
        plan: impl Fn(usize) -> u64,
        maintenance: u64,
    ) -> usize {
        let available = available.min(MAX_LIST_REGISTERS);
        let mut used = 0;
        for (n, value) in self.values.iter_mut().enumerate().take(available) {
            *value = plan(n);
            if *value != 0 {
                used = n + 1;
            }
        }
        let writes = used.max(self.dirty).min(available);
        self.generation = Some(generation);
        self.ended = 0;
        self.used = used;
        self.dirty = used;
        self.maintenance = maintenance;
        writes
    }

    /// The value recorded for list register `n` (zero beyond the plan).
    pub fn value(&self, n: usize) -> u64 {
        self.values.get(n).copied().unwrap_or(0)
    }

    /// How many list registers the plan uses: only these need reading back after
    /// a guest run.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The plan's maintenance-interrupt bits.
    pub fn maintenance(&self) -> u64 {
        self.maintenance
    }

    /// Reads the used list registers back after a guest run (`read(n)` for each,
    /// in order) and says what the guest did to them, telling apart the ends of
    /// hardware-linked interrupts: `hardware_end(planned, returned)` says whether a
    /// register that held `planned` now holding `returned` is such an end (the
    /// format's state bits cleared, nothing else changed). Those are kept aside for
    /// [`Self::relist`]; the plan holds only once none is left. Any other change
    /// ends the plan: the vGIC must be given the registers back
    /// ([`Self::returned`]).
    pub fn check_returned(
        &mut self,
        read: impl Fn(usize) -> u64,
        hardware_end: impl Fn(u64, u64) -> bool,
    ) -> Returned {
        let mut ended = 0u16;
        let mut changed = false;
        for n in 0..self.used {
            let value = read(n);
            self.returned[n] = value;
            let planned = self.values[n];
            if value == planned {
                continue;
            }
            if hardware_end(planned, value) {
                ended |= 1 << n;
            } else {
                changed = true;
            }
        }
        if changed {
            self.generation = None;
            self.ended = 0;
            return Returned::Changed;
        }
        self.ended = ended;
        if ended == 0 {
            Returned::Unchanged
        } else {
            Returned::HardwareEnded
        }
    }

    /// The first list register whose hardware-linked interrupt the guest ended
    /// (still set aside) and whose planned value passes `wanted`.
    pub fn ended_register(&self, wanted: impl Fn(u64) -> bool) -> Option<usize> {
        (0..self.used).find(|&n| self.ended & (1 << n) != 0 && wanted(self.values[n]))
    }

    /// Re-lists the interrupt list register `n` held (one the guest ended, whose
    /// physical interrupt fired again): returns the value to write back, the
    /// plan's own.
    pub fn relist(&mut self, n: usize) -> u64 {
        self.ended &= !(1 << n);
        let value = self.value(n);
        if let Some(returned) = self.returned.get_mut(n) {
            // What the register holds again, should the others still need a sync.
            *returned = value;
        }
        value
    }

    /// Whether ends of hardware-linked interrupts are still set aside: the vGIC
    /// must be given the registers back before it is used.
    pub fn has_unlisted_ends(&self) -> bool {
        self.ended != 0
    }

    /// The used list registers as [`Self::check_returned`] last read them: all the
    /// vGIC needs back (the registers beyond held nothing of the plan).
    pub fn returned(&self) -> &[u64] {
        &self.returned[..self.used]
    }

    /// Forgets the plan: the next entry makes a new one (after a snapshot restore,
    /// or when the vCPU starts).
    pub fn invalidate(&mut self) {
        self.generation = None;
        self.ended = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No value is the end of a hardware-linked interrupt.
    fn no_hardware(_: u64, _: u64) -> bool {
        false
    }

    fn plan_of(values: &'static [u64]) -> impl Fn(usize) -> u64 {
        move |n| values.get(n).copied().unwrap_or(0)
    }

    #[test]
    fn a_new_cache_holds_no_plan_and_clears_every_register_first() {
        let mut cache = ListRegisterCache::new();
        assert!(!cache.holds_at(0));
        let writes = cache.record(1, 4, plan_of(&[]), 0);
        assert_eq!(writes, 4, "registers of whatever ran before are cleared");
        assert!(cache.holds_at(1));
        assert!(!cache.holds_at(2));
        assert_eq!(cache.used(), 0);
    }

    #[test]
    fn only_used_registers_are_read_and_an_empty_plan_reads_none() {
        let mut cache = ListRegisterCache::new();
        cache.record(1, 4, plan_of(&[]), 0);
        let reads = core::cell::Cell::new(0);
        let unchanged = cache.check_returned(
            |_| {
                reads.set(reads.get() + 1);
                0
            },
            no_hardware,
        );
        assert_eq!(unchanged, Returned::Unchanged);
        assert_eq!(reads.get(), 0);

        cache.record(2, 4, plan_of(&[0xA, 0xB]), 0);
        let unchanged = cache.check_returned(
            |n| {
                reads.set(reads.get() + 1);
                [0xA, 0xB][n]
            },
            no_hardware,
        );
        assert_eq!(unchanged, Returned::Unchanged);
        assert_eq!(reads.get(), 2);
        assert!(cache.holds_at(2));
    }

    #[test]
    fn a_register_the_guest_changed_ends_the_plan() {
        let mut cache = ListRegisterCache::new();
        cache.record(7, 4, plan_of(&[0xA, 0xB]), 0);
        assert_eq!(
            cache.check_returned(|n| [0xA, 0xC][n], no_hardware),
            Returned::Changed
        );
        assert!(!cache.holds_at(7), "the vGIC must take the registers back");
        assert_eq!(cache.returned(), [0xA, 0xC], "as read, for the sync");
    }

    #[test]
    fn a_smaller_plan_still_clears_what_the_bigger_one_left() {
        let mut cache = ListRegisterCache::new();
        cache.record(1, 4, plan_of(&[]), 0);
        assert_eq!(cache.record(2, 4, plan_of(&[1, 2, 3]), 0), 3);
        assert_eq!(cache.record(3, 4, plan_of(&[1]), 0), 3);
        assert_eq!(cache.value(1), 0);
        assert_eq!(cache.value(2), 0);
        assert_eq!(
            cache.record(4, 4, plan_of(&[1]), 0),
            1,
            "nothing left to clear"
        );
    }

    #[test]
    fn plans_with_gaps_count_up_to_the_last_used_register() {
        let mut cache = ListRegisterCache::new();
        cache.record(1, 4, plan_of(&[0, 0, 5]), 0b11);
        assert_eq!(cache.used(), 3);
        assert_eq!(cache.maintenance(), 0b11);
    }

    #[test]
    fn never_more_registers_than_the_cpu_has() {
        let mut cache = ListRegisterCache::new();
        assert_eq!(cache.record(1, 2, plan_of(&[1, 2, 3, 4]), 0), 2);
        assert_eq!(cache.used(), 2);
        assert_eq!(cache.value(2), 0);
        assert_eq!(
            ListRegisterCache::new().record(1, 64, plan_of(&[]), 0),
            MAX_LIST_REGISTERS
        );
    }

    #[test]
    fn invalidate_forces_a_new_plan() {
        let mut cache = ListRegisterCache::new();
        cache.record(1, 4, plan_of(&[]), 0);
        cache.invalidate();
        assert!(!cache.holds_at(1));
    }

    /// A format-free stand-in for "the guest ended a pending hardware-linked
    /// interrupt": bit 62 (pending) cleared, bit 61 (HW) set.
    fn ended(planned: u64, returned: u64) -> bool {
        planned & (1 << 61) != 0 && returned == planned & !(1 << 62)
    }

    const TIMER: u64 = (1 << 62) | (1 << 61) | 27;
    const SPI: u64 = (1 << 62) | 40;

    #[test]
    fn an_ended_hardware_interrupt_is_set_aside_and_relisting_it_restores_the_plan() {
        let mut cache = ListRegisterCache::new();
        cache.record(3, 4, plan_of(&[SPI, TIMER]), 0);
        let back = [SPI, TIMER & !(1 << 62)];
        assert_eq!(
            cache.check_returned(|n| back[n], ended),
            Returned::HardwareEnded
        );
        assert!(!cache.holds_at(3), "not while the end is set aside");
        assert!(cache.has_unlisted_ends());
        assert_eq!(cache.ended_register(|v| v & 0xFFFF == 40), None);
        let n = cache.ended_register(|v| v & 0xFFFF == 27);
        assert_eq!(n, Some(1));
        assert_eq!(cache.relist(1), TIMER, "written back as planned");
        assert!(!cache.has_unlisted_ends());
        assert!(cache.holds_at(3), "the plan holds again");
        assert_eq!(
            cache.returned(),
            [SPI, TIMER],
            "a later sync sees it listed"
        );
    }

    #[test]
    fn any_other_change_beside_an_end_hands_everything_back() {
        let mut cache = ListRegisterCache::new();
        cache.record(3, 4, plan_of(&[SPI, TIMER]), 0);
        let back = [SPI | (1 << 63), TIMER & !(1 << 62)];
        assert_eq!(cache.check_returned(|n| back[n], ended), Returned::Changed);
        assert!(
            !cache.has_unlisted_ends(),
            "nothing to relist: the vGIC syncs all"
        );
        assert_eq!(cache.ended_register(|_| true), None);
        assert!(!cache.holds_at(3));
        assert_eq!(cache.returned(), back);
    }

    #[test]
    fn an_end_left_unlisted_is_dropped_by_a_new_plan_or_an_invalidation() {
        let mut cache = ListRegisterCache::new();
        cache.record(1, 4, plan_of(&[TIMER]), 0);
        assert_eq!(
            cache.check_returned(|_| TIMER & !(1 << 62), ended),
            Returned::HardwareEnded
        );
        cache.invalidate();
        assert!(!cache.has_unlisted_ends());
        cache.record(2, 4, plan_of(&[TIMER]), 0);
        assert_eq!(cache.check_returned(|_| TIMER, ended), Returned::Unchanged);
        assert!(cache.holds_at(2));
    }
}
