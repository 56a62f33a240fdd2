//! PSCI `SYSTEM_OFF`: the VM stops and QEMU exits with status 0.
//!
//! Specification: DEN 0022 1.1, 5.10 ("SYSTEM_OFF": does not return).
#![no_std]
#![no_main]

use aerie_test_guests::smccc::{psci, psci_call};
use aerie_test_guests::{check, println};

aerie_test_guests::guest_main!(run);

fn run() {
    println!("poweroff: calling PSCI SYSTEM_OFF");
    psci_call(psci::SYSTEM_OFF, 0, 0, 0);
    check!(false, "poweroff: SYSTEM_OFF does not return", "it returned");
}
