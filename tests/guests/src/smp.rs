//! Secondary vCPUs: started with PSCI `CPU_ON` at the runtime's secondary entry, each
//! on its own stack slot, running the function given to [`set_secondary_main`] and
//! calling `CPU_OFF` when it returns.

use crate::cpu::wait_for_interrupt;
use crate::entry::secondary_entry_address;
use crate::println;
use crate::shared::Shared;
use crate::smccc::{psci, psci_call, status};

/// What a secondary CPU runs, given its stack slot (the `CPU_ON` context ID).
pub type SecondaryMain = fn(usize);

/// The address of the [`SecondaryMain`] secondary CPUs run, or 0 before one is set.
static SECONDARY_MAIN: Shared = Shared::new(0);

/// Sets the function secondary CPUs run from now on.
pub fn set_secondary_main(main: SecondaryMain) {
    SECONDARY_MAIN.store(main as *const () as usize as u64);
}

/// `CPU_ON` for the vCPU with affinity `mpidr`, entering the runtime's secondary entry
/// with context ID `slot` (its stack slot, 1..MAX_CPUS); returns the PSCI status.
pub fn cpu_on(mpidr: u64, slot: usize) -> i32 {
    status(psci_call(
        psci::CPU_ON,
        mpidr,
        secondary_entry_address(),
        slot as u64,
    ))
}

/// The Rust side of the secondary entry: runs the secondary main, then `CPU_OFF`.
#[unsafe(no_mangle)]
extern "C" fn aerie_guest_secondary_start(slot: u64) -> ! {
    let main = SECONDARY_MAIN.load() as usize;
    if main != 0 {
        // SAFETY: SECONDARY_MAIN holds 0 or the address of a `SecondaryMain`, stored
        // by `set_secondary_main`; a function pointer and its address have the same
        // size.
        let main: SecondaryMain = unsafe { core::mem::transmute::<usize, SecondaryMain>(main) };
        main(slot as usize);
    }
    let result = status(psci_call(psci::CPU_OFF, 0, 0, 0));
    println!(
        "FAIL: CPU_OFF returned on the CPU in slot {slot}: {} ({result})",
        psci::name(result)
    );
    loop {
        wait_for_interrupt();
    }
}
