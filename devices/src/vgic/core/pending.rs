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
    /// The empty set.
    pub(crate) const EMPTY: Self = Self {
        words: [0; WORDS],
        summary: 0,
    };

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

    /// The members in increasing order.
    pub(crate) fn iter(&self) -> Members<'_> {
        Members {
            set: self,
            cursor: self.cursor(),
        }
    }

    /// A position before the first member, for a walk that changes the set as it
    /// goes (see [`Cursor`]).
    pub(crate) const fn cursor(&self) -> Cursor {
        Cursor {
            words_left: self.summary,
            word: 0,
            bits: 0,
        }
    }
}

/// The word index and bit mask of `intid`.
const fn split(intid: u32) -> (usize, u64) {
    ((intid / u64::BITS) as usize, 1 << (intid % u64::BITS))
}

/// A walk over an [`IntidSet`] that does not borrow it, so the walker may remove
/// the members it has seen: each word is read when the walk reaches it, and only
/// the words that held members when the walk began are visited. Nothing is
/// copied but the 16-bit summary (a flush walks a pending list on every entry).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    /// Words not reached yet that held members when the walk began.
    words_left: u16,
    /// The word being walked.
    word: usize,
    /// Its members not yet returned.
    bits: u64,
}

impl Cursor {
    /// The next member of `set` (the set the cursor was made from), lowest first.
    pub(crate) fn next_in(&mut self, set: &IntidSet) -> Option<u32> {
        while self.bits == 0 {
            if self.words_left == 0 {
                return None;
            }
            self.word = self.words_left.trailing_zeros() as usize;
            self.words_left &= self.words_left - 1;
            self.bits = set.words.get(self.word).copied().unwrap_or(0);
        }
        let bit = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some(self.word as u32 * u64::BITS + bit)
    }
}

/// Iterator over an [`IntidSet`]'s members, lowest first.
#[derive(Clone, Debug)]
pub(crate) struct Members<'a> {
    set: &'a IntidSet,
    cursor: Cursor,
}

impl Iterator for Members<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.cursor.next_in(self.set)
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
    fn a_cursor_walk_may_remove_the_members_it_has_seen() {
        let mut set = IntidSet::default();
        for intid in (30..40).chain([64, 130, 1023]) {
            set.insert(intid);
        }
        let mut cursor = set.cursor();
        let mut seen = Vec::new();
        while let Some(intid) = cursor.next_in(&set) {
            seen.push(intid);
            if intid % 2 == 0 {
                set.remove(intid);
            }
        }
        assert_eq!(
            seen,
            [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 64, 130, 1023]
        );
        assert_eq!(set.iter().collect::<Vec<_>>(), [31, 33, 35, 37, 39, 1023]);
    }

    #[test]
    fn a_cursor_reads_a_word_when_it_reaches_it() {
        let mut set = IntidSet::default();
        set.insert(3);
        set.insert(70);
        let mut cursor = set.cursor();
        assert_eq!(cursor.next_in(&set), Some(3));
        set.remove(70);
        set.insert(71);
        assert_eq!(cursor.next_in(&set), Some(71), "word 1 is read now");
        assert_eq!(cursor.next_in(&set), None);
    }
}
