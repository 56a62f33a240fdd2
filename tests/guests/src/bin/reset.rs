//! PSCI `SYSTEM_RESET`: Aerie resets the machine; under QEMU with `-no-reboot` QEMU
//! then exits with status 0 instead of booting again.
//!
//! Specification: DEN 0022 1.1, 5.11 ("SYSTEM_RESET": does not return).
#![no_std]
#![no_main]

use aerie_test_guests::smccc::{psci, psci_call};
use aerie_test_guests::{check, println};

aerie_test_guests::guest_main!(run);

fn run() {
    println!("reset: calling PSCI SYSTEM_RESET");
    psci_call(psci::SYSTEM_RESET, 0, 0, 0);
    check!(false, "reset: SYSTEM_RESET does not return", "it returned");
}
