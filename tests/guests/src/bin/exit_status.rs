//! The `EXIT` hypercall with status 7: the VM stops and QEMU exits with 7.
#![no_std]
#![no_main]

use aerie_test_guests::println;
use aerie_test_guests::smccc::{hvc, hypercall};

aerie_test_guests::guest_main!(run);

/// The status this guest exits with.
const STATUS: u64 = 7;

fn run() {
    println!("exit_status: calling EXIT with status {STATUS}");
    hvc(hypercall::EXIT, STATUS, 0, 0);
    aerie_test_guests::check!(false, "EXIT does not return", "the EXIT hypercall returned");
}
