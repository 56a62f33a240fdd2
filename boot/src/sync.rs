//! The lock every CPU shares: a spin lock whose waiters give way while they spin.
//!
//! A spin lock's waiter normally spins with `core::hint::spin_loop` (an `ISB` on
//! AArch64), which does nothing for the CPU holding the lock. When the CPUs are
//! emulated one at a time (QEMU's single-threaded TCG, which `-icount` imposes), the
//! holder may have been switched out in the middle of its critical section, and a
//! waiter that only spins keeps the emulator busy for its whole time slice (up to
//! 50 ms of virtual time, 50 million instructions) before the holder runs again.
//! [`Yield`] spins with `YIELD` instead ([`cpu::relax`](crate::arch::cpu::relax)),
//! which such an emulator takes as "run another CPU now", and real CPUs as a hint.

use crate::arch::cpu;

/// A spin lock whose waiters yield (see the module's documentation).
pub type Mutex<T> = spin::mutex::Mutex<T, Yield>;

/// How a waiter for a [`Mutex`] spins: [`cpu::relax`].
pub struct Yield;

impl spin::relax::RelaxStrategy for Yield {
    fn relax() {
        cpu::relax();
    }
}
