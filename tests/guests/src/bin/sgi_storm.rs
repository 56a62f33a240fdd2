//! An SGI storm: both vCPUs write ICC_SGI1R_EL1 as fast as they can, SGIs to each
//! other, to themselves and to "all but self", while neither acknowledges any (they
//! are never enabled, and PSTATE.I stays masked). Aerie traps every write and kicks
//! the target's CPU; the answer is that an SGI already pending stays one pending SGI
//! (nothing queues up), and that both vCPUs keep running throughout: vCPU 1 makes
//! progress while vCPU 0 storms, and Aerie still answers PSCI afterwards.
//!
//! Specification: Arm GICv3 architecture specification (IHI 0069), ICC_SGI1R_EL1
//! (INTID bits 27:24, Aff1 bits 23:16, TargetList bits 15:0, IRM bit 40).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::shared::Shared;
use aerie_test_guests::smccc::{psci, psci_call};
use aerie_test_guests::{check, check_eq, cpu, println, smp};

aerie_test_guests::guest_main!(run);

/// SGIs each vCPU sends.
const SGIS: u64 = 20_000;
/// The SGI used.
const INTID: u64 = 1;
/// How long the boot vCPU waits for vCPU 1 to start, progress or finish.
const WAIT_MS: u64 = 20_000;
/// PSCI 1.1, as `PSCI_VERSION` returns it.
const PSCI_1_1: u64 = 0x0001_0001;

/// vCPU 1's progress: SGIs sent, then loop iterations.
static PROGRESS: Shared = Shared::new(0);
/// Set by vCPU 1 when it has sent its SGIs.
static SECONDARY_DONE: Shared = Shared::new(0);
/// Set by vCPU 0 when vCPU 1 may stop.
static STOP: Shared = Shared::new(0);

fn run() {
    smp::set_secondary_main(secondary);
    let started = smp::cpu_on(cpu::vcpu_mpidr(1), 1);
    if !check_eq!(started as i64, 0, "sgi_storm: CPU_ON of vCPU 1 succeeds") {
        return;
    }
    let running = cpu::wait_until(WAIT_MS, || PROGRESS.load() > 0);
    check!(running, "sgi_storm: vCPU 1 runs", "it never made progress");
    enable_system_register_interface();

    let before = PROGRESS.load();
    storm(0);
    let after = PROGRESS.load();
    println!("sgi_storm: vCPU 0 sent {SGIS} SGIs");
    check!(
        after > before,
        "sgi_storm: vCPU 1 kept running while vCPU 0 stormed",
        "its progress counter stayed at {before}"
    );
    let finished = cpu::wait_until(WAIT_MS, || SECONDARY_DONE.load() != 0);
    check!(
        finished,
        "sgi_storm: vCPU 1 sent its SGIs too",
        "it did not finish within {WAIT_MS} ms"
    );
    STOP.store(1);
    check_eq!(
        psci_call(psci::VERSION, 0, 0, 0),
        PSCI_1_1,
        "sgi_storm: Aerie still answers PSCI_VERSION"
    );
}

/// vCPU 1: storm vCPU 0, then count loop iterations until told to stop; both
/// advance [`PROGRESS`].
fn secondary(_slot: usize) {
    PROGRESS.store(1);
    enable_system_register_interface();
    storm(1);
    SECONDARY_DONE.store(1);
    let mut progress = PROGRESS.load();
    while STOP.load() == 0 {
        progress += 1;
        PROGRESS.store(progress);
    }
}

/// Sets ICC_SRE_EL1.SRE, so that ICC_SGI1R_EL1 is accessible.
fn enable_system_register_interface() {
    // SAFETY: ICC_SRE_EL1 (S3_0_C12_C12_5) only selects the GIC CPU interface's
    // access method; no memory is involved.
    unsafe {
        asm!(
            "mrs {t}, S3_0_C12_C12_5",
            "orr {t}, {t}, #1",
            "msr S3_0_C12_C12_5, {t}",
            "isb",
            t = out(reg) _,
            options(nomem, nostack),
        )
    }
}

/// Sends [`SGIS`] SGIs from vCPU `me` (0 or 1): to the other vCPU, to itself, and
/// to all but itself, in turn.
fn storm(me: u64) {
    let other = 1 - me;
    let values = [
        (INTID << 24) | (1 << other),
        (INTID << 24) | (1 << me),
        (INTID << 24) | (1 << 40),
    ];
    for n in 0..SGIS {
        let value = values[(n % 3) as usize];
        // SAFETY: writing ICC_SGI1R_EL1 (S3_0_C12_C11_5) only raises SGIs.
        unsafe { asm!("msr S3_0_C12_C11_5, {}", in(reg) value, options(nomem, nostack)) };
        if me == 1 {
            PROGRESS.store(PROGRESS.load() + 1);
        }
    }
}
