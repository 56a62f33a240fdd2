//! Calls into the firmware's PSCI implementation through SMC or HVC.

use aerie_hyp::psci::{self, Conduit, PsciReturn, PsciVersion};
use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

/// The conduit for [`system_off`] (0: none known yet).
static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// Remembers how to reach PSCI, for powering off from anywhere.
pub fn set_conduit(conduit: Conduit) {
    let code = match conduit {
        Conduit::Smc => 1,
        Conduit::Hvc => 2,
    };
    CONDUIT.store(code, Ordering::Relaxed);
}

fn conduit() -> Option<Conduit> {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Some(Conduit::Smc),
        2 => Some(Conduit::Hvc),
        _ => None,
    }
}

/// Makes an SMCCC call and returns x0.
fn call(conduit: Conduit, function: u32, arg1: u64, arg2: u64, arg3: u64) -> u64 {
    let mut x0 = u64::from(function);
    // SMC and HVC by hand: aarch64-cpu has neither (they are calls with their own
    // register convention, not system registers).
    match conduit {
        // SAFETY: an SMCCC call into the firmware: it reads x0-x3, returns in x0 and
        // may clobber x1-x17 (declared); it does not touch Aerie's memory except
        // through addresses Aerie passes as arguments, which callers document.
        Conduit::Smc => unsafe {
            asm!("smc #0", inout("x0") x0, inout("x1") arg1 => _, inout("x2") arg2 => _,
                inout("x3") arg3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        },
        // SAFETY: as above, through the hypervisor call conduit.
        Conduit::Hvc => unsafe {
            asm!("hvc #0", inout("x0") x0, inout("x1") arg1 => _, inout("x2") arg2 => _,
                inout("x3") arg3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack))
        },
    }
    x0
}

/// PSCI_VERSION, or `None` if the firmware answered with an error code.
pub fn version(conduit: Conduit) -> Option<PsciVersion> {
    PsciVersion::from_register(call(conduit, psci::PSCI_VERSION, 0, 0, 0))
}

/// CPU_ON: starts the CPU `mpidr` at `entry` with `context` in x0.
pub fn cpu_on(conduit: Conduit, mpidr: u64, entry: u64, context: u64) -> Result<(), PsciReturn> {
    PsciReturn::from_register(call(conduit, psci::CPU_ON_64, mpidr, entry, context))
}

/// SYSTEM_OFF, if a conduit is known. Returns only if the firmware refused.
pub fn system_off() {
    if let Some(conduit) = conduit() {
        call(conduit, psci::SYSTEM_OFF, 0, 0, 0);
    }
}

/// SYSTEM_RESET, if a conduit is known. Returns only if the firmware refused.
pub fn system_reset() {
    if let Some(conduit) = conduit() {
        call(conduit, psci::SYSTEM_RESET, 0, 0, 0);
    }
}
