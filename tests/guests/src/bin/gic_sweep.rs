//! A hostile guest for the virtual GIC: it writes all-ones to every offset of the
//! distributor and of every vCPU's redistributor at every access width (1, 2, 4 and
//! 8 bytes, naturally aligned), reading each one back too. Whatever the guest does
//! to its own interrupt controller, Aerie must stay up: afterwards the guest still
//! prints and exits through hypercalls.
//!
//! Addresses: GIC distributor at 0x0800_0000 (64 KiB) and redistributors from
//! 0x080a_0000, 128 KiB per vCPU (Aerie's guest layout, like QEMU virt's).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::{check, check_eq, devtree, println};

aerie_test_guests::guest_main!(run);

/// The distributor's base and size.
const DISTRIBUTOR: u64 = 0x0800_0000;
const DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// The first redistributor and the size of each.
const REDISTRIBUTORS: u64 = 0x080a_0000;
const REDISTRIBUTOR_SIZE: u64 = 0x2_0000;

/// Reads then writes all-ones at `address` with plain (non-writeback) loads and
/// stores of `width` bytes: only those report a syndrome Aerie can emulate; the
/// compiler would otherwise pick post-indexed forms, which abort (as on KVM).
fn read_then_write(address: u64, width: u64) {
    // SAFETY (all four arms): the address is in the guest's GIC window, which Aerie
    // emulates, and is naturally aligned for the width; the guest does not care
    // what the register holds afterwards.
    match width {
        // SAFETY: see above.
        1 => unsafe {
            asm!("ldrb {t:w}, [{a}]", "strb {o:w}, [{a}]", a = in(reg) address,
                t = out(reg) _, o = in(reg) u64::MAX, options(nostack))
        },
        // SAFETY: see above.
        2 => unsafe {
            asm!("ldrh {t:w}, [{a}]", "strh {o:w}, [{a}]", a = in(reg) address,
                t = out(reg) _, o = in(reg) u64::MAX, options(nostack))
        },
        // SAFETY: see above.
        4 => unsafe {
            asm!("ldr {t:w}, [{a}]", "str {o:w}, [{a}]", a = in(reg) address,
                t = out(reg) _, o = in(reg) u64::MAX, options(nostack))
        },
        // SAFETY: see above.
        _ => unsafe {
            asm!("ldr {t}, [{a}]", "str {o}, [{a}]", a = in(reg) address,
                t = out(reg) _, o = in(reg) u64::MAX, options(nostack))
        },
    }
}

/// Reads and writes every naturally aligned offset of `[base, base + size)` at
/// every width; returns the number of accesses.
fn sweep(base: u64, size: u64) -> u64 {
    let mut accesses = 0;
    for width in [1u64, 2, 4, 8] {
        let mut offset = 0;
        while offset < size {
            let address = base + offset;
            read_then_write(address, width);
            accesses += 2;
            offset += width;
        }
    }
    accesses
}

fn run() {
    let info = match devtree::guest_info() {
        Ok(info) => info,
        Err(error) => {
            check!(false, "gic_sweep: read the device tree", "{error}");
            return;
        }
    };
    let mut accesses = sweep(DISTRIBUTOR, DISTRIBUTOR_SIZE);
    for vcpu in 0..info.cpu_count as u64 {
        accesses += sweep(
            REDISTRIBUTORS + vcpu * REDISTRIBUTOR_SIZE,
            REDISTRIBUTOR_SIZE,
        );
    }
    println!("gic_sweep: {accesses} accesses to the GIC");
    let expected = (DISTRIBUTOR_SIZE + info.cpu_count as u64 * REDISTRIBUTOR_SIZE) * 2 * 15 / 8;
    check_eq!(accesses, expected, "gic_sweep: every offset at every width");
}
