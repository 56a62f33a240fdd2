//! Physical address ranges, and the plan of which RAM Aerie may hand out.
//!
//! At boot Aerie knows the RAM banks (from the device tree) and what already lives
//! in RAM and must not be overwritten: firmware reservations, the device tree blob,
//! Aerie's own image, an initrd. [`RangeSet`] subtracts the second list from the
//! first; what remains feeds the frame allocator.

use arrayvec::ArrayVec;
use core::fmt;

/// A half-open physical address range `[start, end)`. Never wraps: `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    start: u64,
    end: u64,
}

impl Range {
    /// `[start, end)`, or `None` if `end < start`.
    pub const fn new(start: u64, end: u64) -> Option<Self> {
        if end < start {
            None
        } else {
            Some(Self { start, end })
        }
    }

    /// `size` bytes from `start`, or `None` if that wraps past the top of the address
    /// space (a range ending exactly at 2^64 is not representable and is refused).
    pub const fn from_start_size(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(Self { start, end }),
            None => None,
        }
    }

    /// First address in the range.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// One past the last address.
    pub const fn end(&self) -> u64 {
        self.end
    }

    /// Length in bytes.
    pub const fn size(&self) -> u64 {
        self.end - self.start
    }

    /// True for a zero-length range.
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True if `address` lies inside.
    pub const fn contains(&self, address: u64) -> bool {
        // One comparison: below `start` the difference wraps to a huge value.
        address.wrapping_sub(self.start) < self.size()
    }

    /// True if `other` lies entirely inside this range.
    pub const fn covers(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// True if the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The largest sub-range whose ends are multiples of `align` (a power of two), or
    /// `None` if no aligned byte remains.
    pub fn align_inward(&self, align: u64) -> Option<Range> {
        debug_assert!(align.is_power_of_two());
        let start = self.start.checked_next_multiple_of(align)?;
        let end = self.end & !(align - 1);
        (start < end).then_some(Range { start, end })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}..{:#010x}", self.start, self.end)
    }
}

/// A set of disjoint, sorted, non-adjacent ranges with room for `N` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet<const N: usize> {
    ranges: ArrayVec<Range, N>,
}

/// A [`RangeSet`] ran out of room (too many holes or banks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSetFull;

impl fmt::Display for RangeSetFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "too many separate memory ranges to track")
    }
}

impl<const N: usize> RangeSet<N> {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            ranges: ArrayVec::new(),
        }
    }

    /// The ranges, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = &Range> {
        self.ranges.iter()
    }

    /// How many separate ranges the set holds.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True if the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes covered.
    pub fn total_size(&self) -> u64 {
        self.ranges.iter().map(Range::size).sum()
    }

    /// Adds `range`, merging it with ranges it overlaps or touches.
    pub fn insert(&mut self, range: Range) -> Result<(), RangeSetFull> {
        if range.is_empty() {
            return Ok(());
        }
        let mut merged = range;
        let mut index = 0;
        while index < self.ranges.len() {
            let existing = self.ranges[index];
            if existing.start <= merged.end && merged.start <= existing.end {
                merged.start = merged.start.min(existing.start);
                merged.end = merged.end.max(existing.end);
                self.ranges.remove(index);
            } else {
                index += 1;
            }
        }
        let position = self.ranges.iter().position(|r| r.start > merged.start);
        let position = position.unwrap_or(self.ranges.len());
        self.ranges
            .try_insert(position, merged)
            .map_err(|_| RangeSetFull)
    }

    /// Removes every byte of `hole` from the set (splitting a range if needed).
    pub fn remove(&mut self, hole: Range) -> Result<(), RangeSetFull> {
        let mut index = 0;
        while index < self.ranges.len() {
            let existing = self.ranges[index];
            if !existing.overlaps(&hole) {
                index += 1;
                continue;
            }
            let below = Range {
                start: existing.start,
                end: hole.start.max(existing.start),
            };
            let above = Range {
                start: hole.end.min(existing.end),
                end: existing.end,
            };
            self.ranges.remove(index);
            if !above.is_empty() {
                self.ranges
                    .try_insert(index, above)
                    .map_err(|_| RangeSetFull)?;
            }
            if !below.is_empty() {
                self.ranges
                    .try_insert(index, below)
                    .map_err(|_| RangeSetFull)?;
                index += 1;
            }
            if !above.is_empty() {
                index += 1;
            }
        }
        Ok(())
    }

    /// True if every byte of `range` is in the set.
    pub fn covers(&self, range: &Range) -> bool {
        range.is_empty() || self.ranges.iter().any(|r| r.covers(range))
    }

    /// Takes `size` bytes aligned to `align` from the lowest range that can hold them
    /// and removes them from the set.
    pub fn take(&mut self, size: u64, align: u64) -> Option<Range> {
        let found = self.ranges.iter().find_map(|r| {
            let start = r.start.checked_next_multiple_of(align)?;
            let candidate = Range::from_start_size(start, size)?;
            r.covers(&candidate).then_some(candidate)
        })?;
        self.remove(found).ok()?;
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn r(start: u64, end: u64) -> Range {
        Range::new(start, end).unwrap()
    }

    fn ranges<const N: usize>(set: &RangeSet<N>) -> Vec<(u64, u64)> {
        set.iter().map(|r| (r.start(), r.end())).collect()
    }

    #[test]
    fn range_construction_refuses_wrapping() {
        assert_eq!(Range::new(5, 4), None);
        assert_eq!(Range::from_start_size(u64::MAX, 1), None);
        assert_eq!(
            Range::from_start_size(0x1000, 0x1000),
            Some(r(0x1000, 0x2000))
        );
    }

    #[test]
    fn range_relations() {
        let a = r(0x1000, 0x3000);
        assert!(a.contains(0x1000) && a.contains(0x2fff) && !a.contains(0x3000));
        assert!(a.overlaps(&r(0x2fff, 0x4000)) && !a.overlaps(&r(0x3000, 0x4000)));
        assert!(a.covers(&r(0x1000, 0x3000)) && !a.covers(&r(0xfff, 0x2000)));
        assert_eq!(
            r(0x1001, 0x5fff).align_inward(0x1000),
            Some(r(0x2000, 0x5000))
        );
        assert_eq!(r(0x1001, 0x1fff).align_inward(0x1000), None);
    }

    #[test]
    fn insert_merges_overlapping_and_touching_ranges() {
        let mut set = RangeSet::<4>::new();
        set.insert(r(0x5000, 0x6000)).unwrap();
        set.insert(r(0x1000, 0x2000)).unwrap();
        set.insert(r(0x2000, 0x3000)).unwrap();
        assert_eq!(ranges(&set), [(0x1000, 0x3000), (0x5000, 0x6000)]);
        set.insert(r(0x2800, 0x5800)).unwrap();
        assert_eq!(ranges(&set), [(0x1000, 0x6000)]);
        assert_eq!(set.total_size(), 0x5000);
    }

    #[test]
    fn remove_splits_and_trims() {
        let mut set = RangeSet::<4>::new();
        set.insert(r(0x0, 0x10000)).unwrap();
        set.remove(r(0x4000, 0x5000)).unwrap();
        set.remove(r(0x0, 0x1000)).unwrap();
        set.remove(r(0xf000, 0x20000)).unwrap();
        assert_eq!(ranges(&set), [(0x1000, 0x4000), (0x5000, 0xf000)]);
        set.remove(r(0x3000, 0x6000)).unwrap();
        assert_eq!(ranges(&set), [(0x1000, 0x3000), (0x6000, 0xf000)]);
        assert!(set.covers(&r(0x6000, 0x7000)) && !set.covers(&r(0x2000, 0x7000)));
    }

    #[test]
    fn remove_reports_when_holes_exceed_capacity() {
        let mut set = RangeSet::<2>::new();
        set.insert(r(0, 0x10000)).unwrap();
        set.remove(r(0x1000, 0x2000)).unwrap();
        assert_eq!(set.remove(r(0x4000, 0x5000)), Err(RangeSetFull));
    }

    #[test]
    fn take_returns_aligned_memory_and_removes_it() {
        let mut set = RangeSet::<4>::new();
        set.insert(r(0x1800, 0x3000)).unwrap();
        set.insert(r(0x10_0000, 0x40_0000)).unwrap();
        assert_eq!(set.take(0x1000, 0x1000), Some(r(0x2000, 0x3000)));
        assert_eq!(
            set.take(0x20_0000, 0x20_0000),
            Some(r(0x20_0000, 0x40_0000))
        );
        assert_eq!(set.take(0x20_0000, 0x1000), None);
        assert_eq!(ranges(&set), [(0x1800, 0x2000), (0x10_0000, 0x20_0000)]);
    }
}
