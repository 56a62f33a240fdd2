//! Accesses to an emulated device that Aerie cannot emulate: exclusive loads and
//! stores (LDXR, STXR), LSE atomics (LDADD, CAS; only on CPUs with FEAT_LSE), DC ZVA
//! and unaligned loads and stores, each on the test device's registers. None may
//! change the device's registers or stop Aerie (afterwards the device still
//! answers), and each has one defined answer (docs/hostile-guests.md):
//!
//! - LDXR, LDADD, CAS and DC ZVA give Aerie no instruction syndrome (ISV = 0): the
//!   guest takes one synchronous external abort (DFSC 0b010000) at the address;
//! - STXR after the aborted LDXR holds no reservation: it fails (status 1) in the
//!   CPU without any access, so Aerie never sees it;
//! - an unaligned load or store takes one alignment fault (DFSC 0b100001), as
//!   Device memory answers it.
//!
//! The guest runs with its MMU off (its data accesses are Device-nGnRnE at stage 1;
//! QEMU leaves the alignment check of such accesses to stage 2, that is to Aerie).
//! Specification: Arm ARM B2.5.2 (alignment of Device accesses), B2.9 (exclusive
//! monitors), C6.2 (LDXR, STXR, LDADD, CAS, DC ZVA), D23.2.41 (ESR_EL1).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::exception::{Exception, catch, describe, esr};
use aerie_test_guests::{check, check_eq};

aerie_test_guests::guest_main!(run);

/// The test device's base address in the guest.
const TEST_DEVICE: u64 = 0x0906_0000;
/// Its identification register and value ("AETD").
const ID: u64 = TEST_DEVICE;
const ID_VALUE: u64 = 0x4454_4541;
/// Its 64-byte scratch memory, 64-byte aligned (a DC ZVA block on QEMU's CPUs).
const SCRATCH: u64 = TEST_DEVICE + 0x100;
/// What the scratch memory holds before each access: none may change it.
const PATTERN: u64 = 0x1122_3344_5566_7788;
/// What a destination register holds before an access: an aborted load leaves it.
const SENTINEL: u64 = 0x5A5A_5A5A_5A5A_5A5A;
/// DFSC of an alignment fault.
const DFSC_ALIGNMENT: u64 = 0b10_0001;

fn run() {
    exclusive_load();
    exclusive_store();
    if has_lse_atomics() {
        atomic_add();
        compare_and_swap();
    } else {
        aerie_test_guests::println!("mmio_hostile: no FEAT_LSE on this CPU: LDADD and CAS skipped");
    }
    zero_by_block();
    unaligned_load();
    unaligned_store();
    // SAFETY: an aligned 32-bit load of the test device's identification register.
    let id = unsafe { core::ptr::read_volatile(ID as *const u32) };
    check_eq!(
        u64::from(id),
        ID_VALUE,
        "mmio_hostile: afterwards the test device still answers"
    );
}

fn read64(address: u64) -> u64 {
    // SAFETY: an aligned load from the test device's registers, which Aerie emulates.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

fn fill_scratch() {
    for offset in (0..64).step_by(8) {
        // SAFETY: aligned stores to the test device's scratch memory.
        unsafe { core::ptr::write_volatile((SCRATCH + offset) as *mut u64, PATTERN) };
    }
}

fn scratch_unchanged() -> bool {
    (0..64)
        .step_by(8)
        .all(|offset| read64(SCRATCH + offset) == PATTERN)
}

/// Checks that `taken` is one synchronous external abort on a data access at `far`,
/// in direction `write` (`None` for atomics, which read and write at once: the
/// direction is what the CPU reported).
fn check_external_abort(name: &str, taken: Option<Exception>, far: u64, write: Option<bool>) {
    let ok = taken.is_some_and(|e| {
        e.ec() == esr::EC_DATA_ABORT_SAME_EL
            && e.dfsc() == esr::DFSC_SYNC_EXTERNAL_ABORT
            && write.is_none_or(|write| e.is_write() == write)
            && e.far_valid()
            && e.far == far
    });
    check!(
        ok,
        format_args!("mmio_hostile: {name} takes one synchronous external abort"),
        "{}",
        describe(taken)
    );
}

/// Checks that `taken` is one alignment fault at `far`.
fn check_alignment_fault(name: &str, taken: Option<Exception>, far: u64) {
    let ok = taken.is_some_and(|e| {
        e.ec() == esr::EC_DATA_ABORT_SAME_EL && e.dfsc() == DFSC_ALIGNMENT && e.far == far
    });
    check!(
        ok,
        format_args!("mmio_hostile: {name} takes one alignment fault"),
        "{}",
        describe(taken)
    );
}

fn check_scratch(name: &str) {
    check!(
        scratch_unchanged(),
        format_args!("mmio_hostile: {name} leaves the device's memory unchanged")
    );
}

fn has_lse_atomics() -> bool {
    let isar0: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe { asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0, options(nomem, nostack)) };
    (isar0 >> 20) & 0xF >= 2
}

fn exclusive_load() {
    let mut value = SENTINEL;
    let taken = catch(|| {
        // SAFETY: a load from the test device; expected to abort and be skipped.
        unsafe { asm!("ldxr {v}, [{a}]", v = inout(reg) value, a = in(reg) ID, options(nostack)) }
    });
    check_external_abort("LDXR x ID", taken, ID, Some(false));
    check_eq!(
        value,
        SENTINEL,
        "mmio_hostile: the aborted LDXR wrote no register"
    );
}

fn exclusive_store() {
    fill_scratch();
    let mut status: u64 = SENTINEL;
    let taken = catch(|| {
        // SAFETY: a store to the test device's scratch memory; expected to abort and
        // be skipped.
        unsafe {
            asm!(
                "stxr {s:w}, {v}, [{a}]",
                s = inout(reg) status, v = in(reg) 0u64, a = in(reg) SCRATCH,
                options(nostack),
            )
        }
    });
    check!(
        taken.is_none(),
        "mmio_hostile: STXR x SCRATCH without a reservation takes no exception",
        "{}",
        describe(taken)
    );
    check_eq!(
        status,
        1,
        "mmio_hostile: STXR without a reservation fails (status 1)"
    );
    check_scratch("STXR");
}

fn atomic_add() {
    fill_scratch();
    let mut old = SENTINEL;
    let taken = catch(|| {
        // SAFETY: LDADD x1, x2, [x0] (hand-encoded: FEAT_LSE) on the test device's
        // scratch memory; expected to abort and be skipped.
        unsafe {
            asm!(
                ".inst 0xf8210002",
                in("x0") SCRATCH, in("x1") 1u64, inout("x2") old,
                options(nostack),
            )
        }
    });
    check_external_abort("LDADD x SCRATCH", taken, SCRATCH, None);
    check_eq!(
        old,
        SENTINEL,
        "mmio_hostile: the aborted LDADD wrote no register"
    );
    check_scratch("LDADD");
}

fn compare_and_swap() {
    fill_scratch();
    let mut compare = PATTERN;
    let taken = catch(|| {
        // SAFETY: CAS x1, x2, [x0] (hand-encoded: FEAT_LSE) on the test device's
        // scratch memory; expected to abort and be skipped.
        unsafe {
            asm!(
                ".inst 0xc8a17c02",
                in("x0") SCRATCH, inout("x1") compare, in("x2") 0u64,
                options(nostack),
            )
        }
    });
    check_external_abort("CAS x SCRATCH", taken, SCRATCH, None);
    check_eq!(
        compare,
        PATTERN,
        "mmio_hostile: the aborted CAS wrote no register"
    );
    check_scratch("CAS");
}

fn zero_by_block() {
    fill_scratch();
    let taken = catch(|| {
        // SAFETY: DC ZVA on the test device's scratch memory; expected to abort and
        // be skipped.
        unsafe { asm!("dc zva, {a}", a = in(reg) SCRATCH, options(nostack)) }
    });
    check_external_abort("DC ZVA SCRATCH", taken, SCRATCH, Some(true));
    check_scratch("DC ZVA");
}

fn unaligned_load() {
    let mut value = SENTINEL;
    let taken = catch(|| {
        // SAFETY: an unaligned load from the test device; expected to fault and be
        // skipped.
        unsafe {
            asm!("ldr {v:w}, [{a}]", v = inout(reg) value, a = in(reg) ID + 1, options(nostack))
        }
    });
    check_alignment_fault("LDR w ID+1", taken, ID + 1);
    check_eq!(
        value,
        SENTINEL,
        "mmio_hostile: the faulting LDR wrote no register"
    );
}

fn unaligned_store() {
    fill_scratch();
    let taken = catch(|| {
        // SAFETY: an unaligned store to the test device's scratch memory; expected to
        // fault and be skipped.
        unsafe {
            asm!("str {v}, [{a}]", v = in(reg) 0u64, a = in(reg) SCRATCH + 4, options(nostack))
        }
    });
    check_alignment_fault("STR x SCRATCH+4", taken, SCRATCH + 4);
    check_scratch("the unaligned STR");
}
