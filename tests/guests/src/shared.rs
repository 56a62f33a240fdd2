//! Values shared between CPUs while the MMU is off.
//!
//! With stage-1 translation off every data access is Device-nGnRnE (Arm ARM D8.2.10),
//! and the exclusive load/store pairs behind read-modify-write atomics are not
//! guaranteed to work on Device memory. Load-acquire and store-release (LDAR, STLR)
//! are ordinary single-copy-atomic accesses with ordering, valid on every memory
//! type, so this type offers exactly those: `load` and `store`, never
//! read-modify-write. A value with one writer at a time needs nothing more.

use core::sync::atomic::{AtomicU64, Ordering};

/// A 64-bit value shared between CPUs: load-acquire and store-release only.
#[derive(Debug)]
pub struct Shared(AtomicU64);

impl Shared {
    /// A shared value starting at `value`.
    pub const fn new(value: u64) -> Self {
        Self(AtomicU64::new(value))
    }

    /// Reads the value (LDAR): later accesses are not observed before it.
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Writes the value (STLR): earlier accesses are observed before it.
    pub fn store(&self, value: u64) {
        self.0.store(value, Ordering::Release);
    }
}
