//! Per-vCPU pending lists (the idea of KVM's `ap_list`): for each vCPU, the INTIDs
//! that are pending, active or in one of its list registers and that it would see
//! (its own SGIs and PPIs, the SPIs routed to it or that it holds). A flush or a
//! wake-up check looks at these only, never at every INTID, so a vCPU with nothing
//! to do costs a few instructions however many SPIs the GIC has.
//!
//! The set is a two-level bitmap: membership changes in constant time, nothing is
//! allocated, and walking it costs one step per member (plus one per 64 INTIDs
//! holding any). A member may be stale (an interrupt that became idle, or a private
//! interrupt no longer pending); whoever walks the list checks each member and
//! drops stale ones.

/// The INTIDs a vGIC implements fit in this many 64-bit words (INTIDs 0 to 1023).
const WORDS: usize = 16;

/// A set of INTIDs below 1024, walked in increasing order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IntidSet {
    /// Bit `i % 64` of word `i / 64`: INTID `i` is in the set.
    words: [u64; WORDS],
    /// Bit `w`: word `w` is not zero.
    summary: u16,
}

impl IntidSet {
    /// Adds `intid` (ignored from 1024 on).
    pub(crate) fn insert(&mut self, intid: u32) {
        let (word, bit) = split(intid);
        if let Some(slot) = self.words.get_mut(word) {
            *slot |= bit;
            self.summary |= 1 << word;
        }
    }

    /// Removes `intid`.
    pub(crate) fn remove(&mut self, intid: u32) {
        let (word, bit) = split(intid);
        if let Some(slot) = self.words.get_mut(word) {
            *slot &= !bit;
            if *slot == 0 {
                self.summary &= !(1 << word);
            }
        }
    }

    /// The members in increasing order (of the set as it is now: changing the set
    /// while walking a copy is fine).
    pub(crate) fn iter(&self) -> Members {
        Members { set: *self }
    }
}

/// The word index and bit mask of `intid`.
const fn split(intid: u32) -> (usize, u64) {
    ((intid / u64::BITS) as usize, 1 << (intid % u64::BITS))
}

/// Iterator over an [`IntidSet`]'s members, lowest first.
#[derive(Clone, Debug)]
pub(crate) struct Members {
    set: IntidSet,
}

impl Iterator for Members {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let word = self.set.summary.trailing_zeros() as usize;
        let slot = self.set.words.get_mut(word)?;
        let bit = slot.trailing_zeros();
        *slot &= *slot - 1;
        if *slot == 0 {
            self.set.summary &= !(1 << word);
        }
        Some(word as u32 * u64::BITS + bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn members_in_increasing_order() {
        let mut set = IntidSet::default();
        assert_eq!(set, IntidSet::default());
        for intid in [1019, 33, 0, 64, 63, 27, 1023] {
            set.insert(intid);
        }
        set.insert(33);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [0, 27, 33, 63, 64, 1019, 1023]
        );
        set.remove(64);
        set.remove(65);
        set.remove(5000);
        set.insert(5000);
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 27, 33, 63, 1019, 1023]);
        for intid in [0, 27, 33, 63, 1019, 1023] {
            set.remove(intid);
        }
        assert_eq!(set, IntidSet::default(), "the summary is clear too");
        assert_eq!(set.iter().next(), None);
    }

    #[test]
    fn walking_a_copy_while_changing_the_set() {
        let mut set = IntidSet::default();
        for intid in 30..40 {
            set.insert(intid);
        }
        for intid in set.iter() {
            if intid % 2 == 0 {
                set.remove(intid);
            }
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [31, 33, 35, 37, 39]);
    }
}
