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
    /// The used registers as last read back by [`Self::guest_changed`].
    returned: [u64; MAX_LIST_REGISTERS],
    /// List registers `0..used` hold the plan's interrupts; the rest are zero.
    used: usize,
    /// List registers `0..dirty` may hold something in the hardware (a previous
    /// plan's entries, or what the guest left of them): a new plan overwrites them.
    dirty: usize,
    /// The maintenance-interrupt bits of the hypervisor control register for this
    /// plan (underflow, no-pending).
    maintenance: u64,
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
        }
    }

    /// Whether the loaded plan still holds at vGIC `generation`: nothing to do
    /// before the next guest run.
    pub fn holds_at(&self, generation: u64) -> bool {
        self.generation == Some(generation)
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
    /// in order) and checks them. Returns `true` when the guest changed one: the
    /// plan no longer holds, and the vGIC must be given them back
    /// ([`Self::returned`]).
    pub fn guest_changed(&mut self, read: impl Fn(usize) -> u64) -> bool {
        let mut changed = false;
        for n in 0..self.used {
            let value = read(n);
            self.returned[n] = value;
            changed |= value != self.values[n];
        }
        if changed {
            self.generation = None;
        }
        changed
    }

    /// The used list registers as [`Self::guest_changed`] last read them: all the
    /// vGIC needs back (the registers beyond held nothing of the plan).
    pub fn returned(&self) -> &[u64] {
        &self.returned[..self.used]
    }

    /// Forgets the plan: the next entry makes a new one (after a snapshot restore,
    /// or when the vCPU starts).
    pub fn invalidate(&mut self) {
        self.generation = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!cache.guest_changed(|_| {
            reads.set(reads.get() + 1);
            0
        }));
        assert_eq!(reads.get(), 0);

        cache.record(2, 4, plan_of(&[0xA, 0xB]), 0);
        assert!(!cache.guest_changed(|n| {
            reads.set(reads.get() + 1);
            [0xA, 0xB][n]
        }));
        assert_eq!(reads.get(), 2);
        assert!(cache.holds_at(2));
    }

    #[test]
    fn a_register_the_guest_changed_ends_the_plan() {
        let mut cache = ListRegisterCache::new();
        cache.record(7, 4, plan_of(&[0xA, 0xB]), 0);
        assert!(cache.guest_changed(|n| [0xA, 0xC][n]));
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
}
