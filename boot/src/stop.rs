//! The ways Aerie ends: a clean power-off, a refusal to run on an unsuitable
//! machine, and a crash report.
//!
//! On QEMU (started with semihosting enabled, as `cargo xtask run` and the tests
//! do) a refusal or crash also ends QEMU with a distinct exit status; on a board,
//! Aerie halts with the message on the console.

use crate::arch::{cpu, semihosting};
use crate::console;

/// QEMU exit status when Aerie refuses to run on the machine it was given.
pub const EXIT_REFUSED: u32 = 2;
/// QEMU exit status when Aerie crashed (panic or unexpected exception).
pub const EXIT_CRASHED: u32 = 3;

/// Powers the machine off through PSCI (QEMU exits with status 0).
pub fn power_off() -> ! {
    println!("Aerie: powering off");
    console::flush();
    crate::psci::system_off();
    semihosting::exit(0);
    println!("Aerie: halted (no way to power off); it is safe to switch the machine off");
    console::flush();
    cpu::halt()
}

/// Resets the machine through PSCI (QEMU reboots, or exits with `-no-reboot`).
pub fn reset() -> ! {
    console::flush();
    crate::psci::system_reset();
    println!("Aerie: the firmware cannot reset the machine; halting");
    console::flush();
    semihosting::exit(0);
    cpu::halt()
}

/// Ends the run with the guest's exit status: QEMU exits with it; a board powers
/// off (or halts).
pub fn exit_with_status(status: u8) -> ! {
    console::flush();
    semihosting::exit(u32::from(status));
    power_off()
}

/// Explains why Aerie cannot run on this machine, and stops.
pub fn refuse(reason: core::fmt::Arguments<'_>) -> ! {
    console::emergency_write(format_args!(
        "\nAerie cannot run on this machine: {reason}\nAerie stopped.\n"
    ));
    console::flush();
    semihosting::exit(EXIT_REFUSED);
    cpu::halt()
}

/// Explains why the guest cannot be started (a bad bundle, a kernel that does not
/// fit...), and stops.
pub fn refuse_guest(reason: core::fmt::Arguments<'_>) -> ! {
    console::emergency_write(format_args!(
        "\nAerie cannot start the guest: {reason}\nAerie stopped.\n"
    ));
    console::flush();
    semihosting::exit(EXIT_REFUSED);
    cpu::halt()
}

/// Reports a crash (broken invariant or unexpected exception), and stops.
pub fn crash(report: core::fmt::Arguments<'_>) -> ! {
    console::emergency_write(format_args!(
        "\nAerie crashed on CPU with MPIDR {:#x}: {report}\nAerie stopped.\n",
        cpu::mpidr()
    ));
    console::flush();
    semihosting::exit(EXIT_CRASHED);
    cpu::halt()
}

/// Stops after an exception taken while reporting another one.
pub fn halt_after_nested_fault() -> ! {
    console::emergency_write(format_args!(
        "\nAerie: fault while reporting a fault; halting\n"
    ));
    semihosting::exit(EXIT_CRASHED);
    cpu::halt()
}
