//! Accesses to guest physical addresses where nothing is mapped: each load and store
//! takes exactly one synchronous external abort in the guest (ESR_EL1.EC 0x25,
//! DFSC 0b010000, FAR_EL1 the address, WnR the direction), the faulting instruction
//! writes no register, and the guest carries on. Pair loads and stores, which give
//! Aerie no instruction syndrome to emulate with, get the same abort, and so does an
//! instruction fetch there (EC 0x21).
//!
//! Specification: Arm ARM D23.2.41 (ESR_EL1), "ISS encoding for an exception from a
//! Data Abort" (DFSC, WnR, FnV, ISV), D23.2.44 (FAR_EL1).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::exception::{Exception, catch, catch_call, describe, esr};
use aerie_test_guests::{check, check_eq, devtree};

aerie_test_guests::guest_main!(run);

/// Unmapped guest addresses, with what lies next to them.
const UNMAPPED: [(u64, &str); 4] = [
    (0x1000, "low memory"),
    (0x0900_1000, "the page after the UART"),
    (0x0906_1000, "the page after the test device"),
    (
        0x7F_FFFF_F000,
        "the last page of the 39-bit guest address space",
    ),
];
/// The test device's identification register and its value ("AETD"), read at the end
/// to show that Aerie still emulates devices for the guest.
const TEST_DEVICE_ID: u64 = 0x0906_0000;
const TEST_DEVICE_ID_VALUE: u64 = 0x4454_4541;
/// What a load's destination registers hold before the load: an aborted load must
/// leave them so.
const SENTINEL: u64 = 0x5A5A_5A5A_5A5A_5A5A;

/// The access instructions tried at each address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `ldr x`.
    Load,
    /// `str x`.
    Store,
    /// `ldrb w` at an odd address.
    LoadByte,
    /// `ldp x, x`: no valid instruction syndrome.
    LoadPair,
    /// `stp x, x`: no valid instruction syndrome.
    StorePair,
}

impl Access {
    const ALL: [Access; 5] = [
        Access::Load,
        Access::Store,
        Access::LoadByte,
        Access::LoadPair,
        Access::StorePair,
    ];

    fn name(self) -> &'static str {
        match self {
            Access::Load => "LDR x",
            Access::Store => "STR x",
            Access::LoadByte => "LDRB",
            Access::LoadPair => "LDP",
            Access::StorePair => "STP",
        }
    }

    fn is_write(self) -> bool {
        matches!(self, Access::Store | Access::StorePair)
    }

    /// The address this access uses in the page at `base`.
    fn address(self, base: u64) -> u64 {
        match self {
            Access::LoadByte => base + 1,
            _ => base,
        }
    }

    /// Performs the access; returns the address of the access instruction and the
    /// destination registers afterwards (the sentinel for stores).
    fn perform(self, address: u64) -> (u64, [u64; 2]) {
        let pc: u64;
        let mut first = SENTINEL;
        let mut second = SENTINEL;
        // Every access below is to unmapped guest physical space: it cannot touch
        // memory the program owns, and it is expected to abort, which `catch` (the
        // caller) handles by skipping this one instruction.
        match self {
            // SAFETY: see above.
            Access::Load => unsafe {
                asm!(
                    "adr {pc}, 1f",
                    "1: ldr {first}, [{address}]",
                    pc = out(reg) pc, first = inout(reg) first, address = in(reg) address,
                    options(nostack, preserves_flags),
                )
            },
            // SAFETY: see above.
            Access::Store => unsafe {
                asm!(
                    "adr {pc}, 1f",
                    "1: str {first}, [{address}]",
                    pc = out(reg) pc, first = in(reg) first, address = in(reg) address,
                    options(nostack, preserves_flags),
                )
            },
            // SAFETY: see above.
            Access::LoadByte => unsafe {
                asm!(
                    "adr {pc}, 1f",
                    "1: ldrb {first:w}, [{address}]",
                    pc = out(reg) pc, first = inout(reg) first, address = in(reg) address,
                    options(nostack, preserves_flags),
                )
            },
            // SAFETY: see above.
            Access::LoadPair => unsafe {
                asm!(
                    "adr {pc}, 1f",
                    "1: ldp {first}, {second}, [{address}]",
                    pc = out(reg) pc, first = inout(reg) first, second = inout(reg) second,
                    address = in(reg) address,
                    options(nostack, preserves_flags),
                )
            },
            // SAFETY: see above.
            Access::StorePair => unsafe {
                asm!(
                    "adr {pc}, 1f",
                    "1: stp {first}, {second}, [{address}]",
                    pc = out(reg) pc, first = in(reg) first, second = in(reg) second,
                    address = in(reg) address,
                    options(nostack, preserves_flags),
                )
            },
        }
        (pc, [first, second])
    }
}

/// Tries one access and checks the abort it must take.
fn probe(access: Access, base: u64, place: &str) {
    let address = access.address(base);
    let what = access.name();
    let mut outcome = (0, [0; 2]);
    let taken = catch(|| outcome = access.perform(address));
    let (pc, registers) = outcome;
    let Some(exception) = taken else {
        check!(
            false,
            format_args!("abort: {what} {address:#x} ({place}) takes an abort"),
            "no exception"
        );
        return;
    };
    check!(
        is_external_abort(&exception, pc),
        format_args!("abort: {what} {address:#x} ({place}) takes one synchronous external abort"),
        "{exception}; expected EC {:#x}, IL set, DFSC {:#x}, ELR {pc:#x}",
        esr::EC_DATA_ABORT_SAME_EL,
        esr::DFSC_SYNC_EXTERNAL_ABORT
    );
    check!(
        exception.far_valid() && exception.far == address,
        format_args!("abort: {what} {address:#x}: FAR_EL1 is the address"),
        "{exception} (FnV {})",
        u8::from(!exception.far_valid())
    );
    check_eq!(
        u8::from(exception.is_write()),
        u8::from(access.is_write()),
        format_args!("abort: {what} {address:#x}: ESR_EL1.WnR gives the direction")
    );
    if !access.is_write() {
        check!(
            registers == [SENTINEL; 2],
            format_args!("abort: {what} {address:#x}: the destination is left unchanged"),
            "registers {:#x}, {:#x} after the load",
            registers[0],
            registers[1]
        );
    }
}

/// Branches to `address`: the instruction fetch takes one synchronous external abort
/// (an instruction abort, EC 0x21) with FAR_EL1 and ELR_EL1 the address.
fn probe_fetch(address: u64, place: &str) {
    let taken = catch_call(address);
    check!(
        taken.is_some_and(|e| {
            e.ec() == esr::EC_INSTRUCTION_ABORT_SAME_EL
                && e.il()
                && e.dfsc() == esr::DFSC_SYNC_EXTERNAL_ABORT
                && e.far_valid()
                && e.far == address
                && e.elr == address
        }),
        format_args!(
            "abort: fetching an instruction at {address:#x} ({place}) takes one synchronous external abort"
        ),
        "{}; expected EC {:#x}, IL set, IFSC {:#x}, FAR and ELR {address:#x}",
        describe(taken),
        esr::EC_INSTRUCTION_ABORT_SAME_EL,
        esr::DFSC_SYNC_EXTERNAL_ABORT
    );
}

/// A synchronous external abort on a data access from EL1, taken at `pc`.
fn is_external_abort(exception: &Exception, pc: u64) -> bool {
    exception.ec() == esr::EC_DATA_ABORT_SAME_EL
        && exception.il()
        && exception.dfsc() == esr::DFSC_SYNC_EXTERNAL_ABORT
        && exception.elr == pc
}

fn run() {
    let ram_end = match devtree::guest_info() {
        Ok(info) => Some(info.ram_end),
        Err(error) => {
            check!(
                false,
                "abort: read guest RAM from the device tree",
                "{error}"
            );
            None
        }
    };
    let after_ram = ram_end.map(|end| (end, "the first byte after guest RAM"));
    for (base, place) in UNMAPPED.into_iter().chain(after_ram) {
        for access in Access::ALL {
            probe(access, base, place);
        }
        probe_fetch(base, place);
    }
    let id: u64;
    // SAFETY: the test device's ID register, emulated by Aerie; no program memory.
    unsafe {
        asm!(
            "ldr {id:w}, [{address}]",
            id = out(reg) id,
            address = in(reg) TEST_DEVICE_ID,
            options(nostack, preserves_flags),
        );
    }
    check_eq!(
        id,
        TEST_DEVICE_ID_VALUE,
        "abort: after the aborts Aerie still emulates the test device"
    );
}
