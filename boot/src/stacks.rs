//! Where each CPU's two stacks are (see `aerie_hyp::stacks` for the design): the
//! boot CPU's in Aerie's image, the secondaries' in one region of free RAM reserved
//! before the MMU is built, so that every guard page can be left unmapped.
//!
//! The crash report reads the stacks through [`known`], which only loads atomics:
//! it runs in the exception handler, where taking a lock could deadlock.

use crate::memory::FreeMemory;
use aerie_hyp::memory::Range;
use aerie_hyp::platform::MAX_CPUS;
use aerie_hyp::stacks::{
    CpuStack, EXCEPTION_STACK_SIZE, GUARD_SIZE, GuardedStack, STACK_SIZE, StackKind, StackRegion,
};
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

unsafe extern "C" {
    static __boot_exception_guard: u8;
    static __boot_stack_guard: u8;
}

/// The secondaries' region: its base (0 before [`reserve`]) and CPU count.
static REGION_BASE: AtomicU64 = AtomicU64::new(0);
static REGION_COUNT: AtomicUsize = AtomicUsize::new(0);
/// The boot CPU's index in the platform's CPU list ([`NOT_LISTED`] if it is not in
/// the list: then every listed CPU gets stacks in the region).
static BOOT_INDEX: AtomicUsize = AtomicUsize::new(NOT_LISTED);
/// [`BOOT_INDEX`] of a boot CPU missing from the CPU list.
const NOT_LISTED: usize = usize::MAX;

/// The boot CPU's exception stack and Aerie stack (from the linker script).
pub fn boot_cpu() -> (GuardedStack, GuardedStack) {
    let exception = &raw const __boot_exception_guard as u64;
    let aerie = &raw const __boot_stack_guard as u64;
    let stack = |base, size| GuardedStack::at(base, GUARD_SIZE + size).expect("linker script");
    (
        stack(exception, EXCEPTION_STACK_SIZE),
        stack(aerie, STACK_SIZE),
    )
}

/// Takes the stacks of every CPU in a list of `cpus` but the boot CPU (at
/// `boot_index`, if listed) out of `free`. Returns false if there is no room.
pub fn reserve(free: &mut FreeMemory, cpus: usize, boot_index: Option<usize>) -> bool {
    BOOT_INDEX.store(boot_index.unwrap_or(NOT_LISTED), Ordering::Relaxed);
    let count = (cpus - usize::from(boot_index.is_some())).min(MAX_CPUS);
    if count == 0 {
        return true;
    }
    let Some(range) = free.take(StackRegion::size(count), StackRegion::ALIGN) else {
        return false;
    };
    let Some(region) = StackRegion::new(range, count) else {
        return false;
    };
    REGION_COUNT.store(region.count(), Ordering::Relaxed);
    REGION_BASE.store(range.start(), Ordering::Release);
    true
}

fn region() -> Option<StackRegion> {
    let base = REGION_BASE.load(Ordering::Acquire);
    let count = REGION_COUNT.load(Ordering::Relaxed);
    let range = Range::from_start_size(base, StackRegion::size(count))?;
    (base != 0)
        .then(|| StackRegion::new(range, count))
        .flatten()
}

/// The position of CPU `index` in the secondaries' region.
fn slot(index: usize) -> Option<usize> {
    let boot = BOOT_INDEX.load(Ordering::Relaxed);
    match index.cmp(&boot) {
        core::cmp::Ordering::Less => Some(index),
        core::cmp::Ordering::Equal => None,
        core::cmp::Ordering::Greater => Some(index - 1),
    }
}

/// The exception stack and Aerie stack of CPU `index`, if reserved.
pub fn of_cpu(index: usize) -> Option<(GuardedStack, GuardedStack)> {
    let Some(slot) = slot(index) else {
        return Some(boot_cpu());
    };
    let region = region()?;
    Some((region.exception_stack(slot)?, region.aerie_stack(slot)?))
}

/// Every guard page: the boot CPU's and the reserved region's.
pub fn guards() -> ArrayVec<Range, { 2 * MAX_CPUS + 2 }> {
    let (exception, aerie) = boot_cpu();
    let mut guards: ArrayVec<Range, { 2 * MAX_CPUS + 2 }> =
        [exception.guard, aerie.guard].into_iter().collect();
    if let Some(region) = region() {
        guards.extend(region.guards());
    }
    guards
}

/// Every stack Aerie knows, for the crash report (lock-free). A boot CPU missing
/// from the CPU list is named by index [`NOT_LISTED`].
pub fn known() -> impl Iterator<Item = CpuStack> + Clone {
    let boot = BOOT_INDEX.load(Ordering::Relaxed);
    let (exception, aerie) = boot_cpu();
    let region = region();
    let count = region.map_or(0, |r| r.count());
    let secondaries = (0..count).flat_map(move |slot| {
        let cpu = if slot < boot { slot } else { slot + 1 };
        let region = region.expect("count is 0 without a region");
        let aerie = region.aerie_stack(slot).map(|stack| CpuStack {
            cpu,
            kind: StackKind::Aerie,
            stack,
        });
        let exception = region.exception_stack(slot).map(|stack| CpuStack {
            cpu,
            kind: StackKind::Exception,
            stack,
        });
        aerie.into_iter().chain(exception)
    });
    [
        CpuStack {
            cpu: boot,
            kind: StackKind::Aerie,
            stack: aerie,
        },
        CpuStack {
            cpu: boot,
            kind: StackKind::Exception,
            stack: exception,
        },
    ]
    .into_iter()
    .chain(secondaries)
}
