//! Aerie's per-CPU stacks: their sizes, where they lie, and what a stack pointer
//! says about a crash.
//!
//! Every CPU has two stacks, each with an unmapped guard page below it:
//!
//! - **Aerie's stack** (SP_EL0): all of Aerie's code runs on it. Aerie runs at EL2
//!   with `SPSel = 0`, so this is the stack pointer of ordinary code.
//! - **The exception stack** (SP_EL2): taking an exception at EL2 selects SP_EL2, so
//!   every exception lands on this stack, whatever state Aerie's own stack is in.
//!   When Aerie's stack overflows into its guard page, or its stack pointer is
//!   garbage, the fault is still reported from a good stack. Between exceptions it
//!   holds only the CPU's [`PER_CPU_WORDS`] at its top; TPIDR_EL2 holds its top
//!   address, so that the vectors can find it even when SP_EL2 itself is broken.
//!
//! The boot CPU's two stacks are part of Aerie's image (the linker script reserves
//! them); the other CPUs' come from one [`StackRegion`] taken from free RAM before
//! the MMU is turned on, so that the guard pages can be left out of the map.

use crate::memory::Range;
use crate::paging::PAGE_SIZE;
use core::fmt;

/// Size of each guard page (unmapped, below each stack).
pub const GUARD_SIZE: u64 = PAGE_SIZE;
/// Usable size of Aerie's stack on each CPU (the boot CPU's, in the linker script,
/// is the same).
pub const STACK_SIZE: u64 = 64 << 10;
/// Usable size of each CPU's exception stack (the boot CPU's, in the linker script,
/// is the same).
pub const EXCEPTION_STACK_SIZE: u64 = 16 << 10;
/// Bytes at the top of each exception stack that hold per-CPU words rather than
/// stack frames (the vCPU switch frame in use); SP_EL2 rests just below them.
pub const PER_CPU_WORDS: u64 = 16;

/// A stack and the guard page right below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardedStack {
    /// The unmapped page below the stack.
    pub guard: Range,
    /// The usable stack; the stack pointer starts at its end.
    pub stack: Range,
}

impl GuardedStack {
    /// The guarded stack that starts (with its guard page) at `base` and spans
    /// `size` bytes in all, guard included.
    pub fn at(base: u64, size: u64) -> Option<Self> {
        let guard = Range::from_start_size(base, GUARD_SIZE)?;
        let stack = Range::new(guard.end(), base.checked_add(size)?)?;
        (size > GUARD_SIZE).then_some(Self { guard, stack })
    }

    /// The initial stack pointer.
    pub fn top(&self) -> u64 {
        self.stack.end()
    }
}

/// One memory region holding the guarded stacks of `count` CPUs: their exception
/// stacks first, then their Aerie stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackRegion {
    base: u64,
    count: usize,
}

/// Bytes per guarded exception stack.
const EXCEPTION_SLOT: u64 = GUARD_SIZE + EXCEPTION_STACK_SIZE;
/// Bytes per guarded Aerie stack.
const STACK_SLOT: u64 = GUARD_SIZE + STACK_SIZE;

impl StackRegion {
    /// The alignment the region needs.
    pub const ALIGN: u64 = PAGE_SIZE;

    /// Bytes needed for the stacks of `count` CPUs.
    pub const fn size(count: usize) -> u64 {
        count as u64 * (EXCEPTION_SLOT + STACK_SLOT)
    }

    /// The stacks of `count` CPUs in `region`, which must be aligned to
    /// [`Self::ALIGN`] and at least [`Self::size`] bytes long.
    pub fn new(region: Range, count: usize) -> Option<Self> {
        (region.start() % Self::ALIGN == 0 && region.size() >= Self::size(count)).then_some(Self {
            base: region.start(),
            count,
        })
    }

    /// How many CPUs' stacks the region holds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The exception stack of the `index`th CPU of the region.
    pub fn exception_stack(&self, index: usize) -> Option<GuardedStack> {
        (index < self.count).then(|| {
            let base = self.base + index as u64 * EXCEPTION_SLOT;
            GuardedStack::at(base, EXCEPTION_SLOT).expect("the region was checked")
        })
    }

    /// Aerie's stack for the `index`th CPU of the region.
    pub fn aerie_stack(&self, index: usize) -> Option<GuardedStack> {
        (index < self.count).then(|| {
            let slots = self.count as u64 * EXCEPTION_SLOT;
            let base = self.base + slots + index as u64 * STACK_SLOT;
            GuardedStack::at(base, STACK_SLOT).expect("the region was checked")
        })
    }

    /// Every guard page in the region.
    pub fn guards(&self) -> impl Iterator<Item = Range> + '_ {
        (0..self.count).flat_map(|index| {
            let exception = self.exception_stack(index).map(|s| s.guard);
            let aerie = self.aerie_stack(index).map(|s| s.guard);
            exception.into_iter().chain(aerie)
        })
    }
}

/// Which of a CPU's two stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// Aerie's stack (SP_EL0).
    Aerie,
    /// The exception stack (SP_EL2).
    Exception,
}

/// A CPU's stack, as the crash report knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStack {
    /// The CPU's index in the platform's CPU list.
    pub cpu: usize,
    /// Which stack.
    pub kind: StackKind,
    /// Where it lies.
    pub stack: GuardedStack,
}

/// Where an address lies relative to Aerie's stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackPlace {
    /// Inside a stack.
    Inside(CpuStack),
    /// Inside the guard page below a stack: that stack overflowed.
    Guard(CpuStack),
    /// In none of them.
    Outside,
}

/// Finds `address` among `stacks`.
pub fn place(address: u64, stacks: impl IntoIterator<Item = CpuStack>) -> StackPlace {
    for stack in stacks {
        if stack.stack.stack.contains(address) || address == stack.stack.top() {
            return StackPlace::Inside(stack);
        }
        if stack.stack.guard.contains(address) {
            return StackPlace::Guard(stack);
        }
    }
    StackPlace::Outside
}

/// What the crash report says about the stack of the interrupted code: the verdict
/// on its stack pointer and on the faulting address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackVerdict {
    /// The interrupted stack pointer.
    pub sp: u64,
    /// Where it lies.
    pub sp_place: StackPlace,
    /// Whether the fault address (for an abort) lies in a guard page.
    pub far_in_guard: Option<CpuStack>,
}

impl StackVerdict {
    /// Judges the stack pointer `sp` and, for aborts, the fault address `far`.
    pub fn judge(
        sp: u64,
        far: Option<u64>,
        stacks: impl Iterator<Item = CpuStack> + Clone,
    ) -> Self {
        let far_in_guard = far.and_then(|far| match place(far, stacks.clone()) {
            StackPlace::Guard(stack) => Some(stack),
            _ => None,
        });
        Self {
            sp,
            sp_place: place(sp, stacks),
            far_in_guard,
        }
    }

    /// Whether the stack is broken: overflowed, or a stack pointer outside every
    /// stack.
    pub fn is_broken(&self) -> bool {
        self.far_in_guard.is_some() || !matches!(self.sp_place, StackPlace::Inside(_))
    }
}

impl fmt::Display for CpuStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            StackKind::Aerie => "stack",
            StackKind::Exception => "exception stack",
        };
        write!(
            f,
            "CPU {}'s {kind} {:#x}..{:#x}",
            self.cpu,
            self.stack.stack.start(),
            self.stack.stack.end()
        )
    }
}

impl fmt::Display for StackVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sp = self.sp;
        match (self.far_in_guard, self.sp_place) {
            (Some(stack), _) | (None, StackPlace::Guard(stack)) => write!(
                f,
                "stack overflow: the guard page below {stack} was hit (SP {sp:#x})"
            ),
            (None, StackPlace::Outside) => write!(
                f,
                "stack broken: SP {sp:#x} is outside every stack of Aerie's"
            ),
            (None, StackPlace::Inside(stack)) => write!(f, "SP {sp:#x} is in {stack}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec::Vec;

    fn region(count: usize) -> StackRegion {
        let range = Range::from_start_size(0x4800_0000, StackRegion::size(count)).unwrap();
        StackRegion::new(range, count).unwrap()
    }

    #[test]
    fn a_region_must_be_aligned_and_large_enough() {
        let size = StackRegion::size(2);
        let unaligned = Range::from_start_size(0x4800_0010, size).unwrap();
        assert_eq!(StackRegion::new(unaligned, 2), None);
        let small = Range::from_start_size(0x4800_0000, size - PAGE_SIZE).unwrap();
        assert_eq!(StackRegion::new(small, 2), None);
        assert!(StackRegion::new(Range::from_start_size(0x4800_0000, size).unwrap(), 2).is_some());
    }

    #[test]
    fn each_stack_has_its_guard_page_right_below() {
        let region = region(3);
        for index in 0..3 {
            for stack in [region.exception_stack(index), region.aerie_stack(index)] {
                let stack = stack.unwrap();
                assert_eq!(stack.guard.size(), GUARD_SIZE);
                assert_eq!(stack.stack.start(), stack.guard.end());
            }
            assert_eq!(
                region.exception_stack(index).unwrap().stack.size(),
                EXCEPTION_STACK_SIZE
            );
        }
        assert_eq!(region.exception_stack(3), None);
        assert_eq!(region.aerie_stack(3), None);
    }

    #[test]
    fn stacks_and_guards_do_not_overlap_and_fill_the_region() {
        let region = region(4);
        let mut pieces: Vec<Range> = (0..4)
            .flat_map(|i| {
                let e = region.exception_stack(i).unwrap();
                let a = region.aerie_stack(i).unwrap();
                [e.guard, e.stack, a.guard, a.stack]
            })
            .collect();
        pieces.sort_by_key(Range::start);
        for pair in pieces.windows(2) {
            assert_eq!(pair[0].end(), pair[1].start());
        }
        assert_eq!(pieces[0].start(), 0x4800_0000);
        assert_eq!(
            pieces.last().unwrap().end(),
            0x4800_0000 + StackRegion::size(4)
        );
        assert_eq!(region.aerie_stack(0).unwrap().stack.size(), STACK_SIZE);
        assert_eq!(region.guards().count(), 8);
    }

    fn known(region: &StackRegion) -> Vec<CpuStack> {
        (0..region.count())
            .flat_map(|cpu| {
                [
                    CpuStack {
                        cpu,
                        kind: StackKind::Aerie,
                        stack: region.aerie_stack(cpu).unwrap(),
                    },
                    CpuStack {
                        cpu,
                        kind: StackKind::Exception,
                        stack: region.exception_stack(cpu).unwrap(),
                    },
                ]
            })
            .collect()
    }

    #[test]
    fn an_overflow_is_named_by_the_guard_page_it_hit() {
        let region = region(2);
        let stacks = known(&region);
        let stack = region.aerie_stack(1).unwrap();
        let sp = stack.guard.end() - 16;
        let verdict = StackVerdict::judge(sp, Some(sp), stacks.iter().copied());
        assert!(verdict.is_broken());
        let text = format!("{verdict}");
        assert!(text.starts_with("stack overflow"), "{text}");
        assert!(text.contains("CPU 1's stack"), "{text}");
        // A large frame can put SP below the guard while the store hits the guard.
        let verdict = StackVerdict::judge(sp - 0x2000, Some(sp), stacks.iter().copied());
        assert!(format!("{verdict}").starts_with("stack overflow"));
    }

    #[test]
    fn a_stack_pointer_outside_every_stack_is_broken() {
        let stacks = known(&region(2));
        let verdict =
            StackVerdict::judge(0xdead_0000, Some(0xdead_0000 - 16), stacks.iter().copied());
        assert!(verdict.is_broken());
        assert!(format!("{verdict}").starts_with("stack broken: SP 0xdead0000"));
    }

    #[test]
    fn a_good_stack_pointer_is_not_broken() {
        let region = region(2);
        let stacks = known(&region);
        let top = region.exception_stack(0).unwrap().top();
        for sp in [top, top - 288] {
            let verdict = StackVerdict::judge(sp, Some(0x1000), stacks.iter().copied());
            assert!(!verdict.is_broken());
            assert!(format!("{verdict}").contains("CPU 0's exception stack"));
        }
    }
}
