//! PSCI 1.1 through HVC: the version and feature queries, then every secondary vCPU
//! started with `CPU_ON`, seen on through `AFFINITY_INFO`, refused a second
//! `CPU_ON`, turned off with `CPU_OFF`, and started again; and the errors for a bad
//! entry address, a CPU that does not exist and an unsupported affinity level.
//!
//! Specification: Arm Power State Coordination Interface, DEN 0022 (version 1.1):
//! 5.1 (function IDs), 5.2.2 (return codes), 5.4 (`CPU_OFF`), 5.5 (`CPU_ON`), 5.6
//! (`AFFINITY_INFO`), 5.8 (`MIGRATE_INFO_TYPE`), 5.13 (`PSCI_FEATURES`), 6.4 (the
//! state a CPU starts in); SMC Calling Convention, DEN 0028, 7.2 (`SMCCC_VERSION`).
#![no_std]
#![no_main]

use aerie_test_guests::cpu::{self, DAIF_ALL_MASKED};
use aerie_test_guests::devtree::{self, GuestInfo};
use aerie_test_guests::entry::MAX_CPUS;
use aerie_test_guests::shared::Shared;
use aerie_test_guests::smccc::{psci, psci_call, status};
use aerie_test_guests::{check, check_eq, println, smp};

aerie_test_guests::guest_main!(run);

/// How long a secondary CPU may take to show up or to go off, in milliseconds
/// (generous: QEMU's TCG is slow on a loaded CI machine).
const TIMEOUT_MS: u64 = 5000;
/// A PSCI function ID that PSCI 1.1 does not define (function number 0x1F).
const UNKNOWN_FUNCTION: u32 = 0x8400_001F;
/// An entry point outside guest RAM (the UART's page): `CPU_ON` must refuse it.
const ENTRY_OUTSIDE_RAM: u64 = 0x0900_0000;

/// Per slot: how many times a secondary CPU has started there.
static RUNS: [Shared; MAX_CPUS] = [const { Shared::new(0) }; MAX_CPUS];
/// Per slot: the MPIDR affinity the secondary CPU read.
static SEEN_MPIDR: [Shared; MAX_CPUS] = [const { Shared::new(u64::MAX) }; MAX_CPUS];
/// Per slot: the exception level the secondary CPU started at.
static SEEN_EL: [Shared; MAX_CPUS] = [const { Shared::new(u64::MAX) }; MAX_CPUS];
/// Per slot: DAIF as the secondary CPU found it.
static SEEN_DAIF: [Shared; MAX_CPUS] = [const { Shared::new(0) }; MAX_CPUS];
/// Set by the boot CPU: secondary CPUs may return (and so call `CPU_OFF`).
static RELEASE: Shared = Shared::new(0);

/// What every secondary CPU runs: record that it ran, wait for the release.
fn secondary(slot: usize) {
    let Some(runs) = RUNS.get(slot) else {
        return;
    };
    SEEN_MPIDR[slot].store(cpu::mpidr());
    SEEN_EL[slot].store(cpu::current_el());
    SEEN_DAIF[slot].store(cpu::daif());
    runs.store(runs.load() + 1);
    while RELEASE.load() == 0 {
        core::hint::spin_loop();
    }
}

/// Checks a PSCI status against the expected one.
fn check_status(got: i32, expected: i32, name: core::fmt::Arguments<'_>) -> bool {
    check!(
        got == expected,
        name,
        "got {} ({got}), expected {} ({expected})",
        psci::name(got),
        psci::name(expected)
    )
}

/// `AFFINITY_INFO` for one CPU at affinity level 0.
fn affinity_info(mpidr: u64) -> i32 {
    status(psci_call(psci::AFFINITY_INFO, mpidr, 0, 0))
}

/// Waits until `AFFINITY_INFO` reports `mpidr` off; returns the last state seen.
fn wait_until_off(mpidr: u64) -> i32 {
    let mut state = affinity_info(mpidr);
    cpu::wait_until(TIMEOUT_MS, || {
        state = affinity_info(mpidr);
        state == psci::AFFINITY_OFF
    });
    state
}

/// Waits until slot `slot` has started `runs` times in all.
fn wait_for_runs(slot: usize, runs: u64) -> bool {
    cpu::wait_until(TIMEOUT_MS, || RUNS[slot].load() >= runs)
}

fn run() {
    versions_and_features();
    let info = match devtree::guest_info() {
        Ok(info) => info,
        Err(error) => {
            check!(false, "psci: read the guest device tree", "{error}");
            return;
        }
    };
    device_tree_describes_psci(&info);
    println!("psci: {} vCPUs", info.cpu_count);
    check_eq!(
        cpu::mpidr(),
        info.cpus[0],
        "psci: the boot CPU's MPIDR is the first cpu node's reg"
    );
    for (index, &mpidr) in info.mpidrs().iter().enumerate() {
        check_eq!(
            mpidr,
            cpu::vcpu_mpidr(index),
            format_args!("psci: vCPU {index} has MPIDR Aff1 = index / 16, Aff0 = index % 16")
        );
    }
    check!(
        info.cpu_count >= 2,
        "psci: the guest has secondary vCPUs to start",
        "only {} vCPU(s): run this guest with aerie.guest.smp=2 or more",
        info.cpu_count
    );

    smp::set_secondary_main(secondary);
    start_all_secondaries(&info);
    turn_all_secondaries_off(&info);
    invalid_requests(&info);
    restart(&info);
}

/// `PSCI_VERSION`, `PSCI_FEATURES`, `SMCCC_VERSION` and `MIGRATE_INFO_TYPE`.
fn versions_and_features() {
    check_eq!(
        psci_call(psci::VERSION, 0, 0, 0),
        psci::VERSION_1_1,
        "psci: PSCI_VERSION is 1.1"
    );
    check_status(
        status(psci_call(psci::FEATURES, u64::from(psci::CPU_ON), 0, 0)),
        psci::SUCCESS,
        format_args!("psci: PSCI_FEATURES(CPU_ON) is 0 (implemented, no flags)"),
    );
    check_status(
        status(psci_call(psci::FEATURES, u64::from(UNKNOWN_FUNCTION), 0, 0)),
        psci::NOT_SUPPORTED,
        format_args!("psci: PSCI_FEATURES of an undefined function is NOT_SUPPORTED"),
    );
    check_eq!(
        psci_call(psci::SMCCC_VERSION, 0, 0, 0),
        psci::SMCCC_1_1,
        "psci: SMCCC_VERSION is 1.1"
    );
    check_eq!(
        psci_call(psci::MIGRATE_INFO_TYPE, 0, 0, 0),
        psci::MIGRATE_NOT_REQUIRED,
        "psci: MIGRATE_INFO_TYPE is 2 (no Trusted OS to migrate)"
    );
}

/// The device tree says PSCI through HVC and every CPU is started through it.
fn device_tree_describes_psci(info: &GuestInfo) {
    let found = devtree::with_device_tree(|tree| {
        let method = tree
            .find_node("/psci")
            .and_then(|node| node.property("method"))
            .and_then(|property| property.as_str());
        let cpus_with_psci = tree
            .find_node("/cpus")
            .map(|cpus| {
                cpus.children()
                    .filter(|node| {
                        node.property("enable-method")
                            .and_then(|property| property.as_str())
                            == Some("psci")
                    })
                    .count()
            })
            .unwrap_or(0);
        (method == Some("hvc"), cpus_with_psci)
    });
    match found {
        Ok((hvc, cpus_with_psci)) => {
            check!(hvc, "psci: the device tree's /psci method is \"hvc\"");
            check_eq!(
                cpus_with_psci,
                info.cpu_count,
                "psci: every cpu node has enable-method \"psci\""
            );
        }
        Err(error) => {
            check!(false, "psci: read /psci from the device tree", "{error}");
        }
    }
}

/// `CPU_ON` for every secondary, which then runs, and is seen on.
fn start_all_secondaries(info: &GuestInfo) {
    for (slot, &mpidr) in info.mpidrs().iter().enumerate().skip(1) {
        check_status(
            smp::cpu_on(mpidr, slot),
            psci::SUCCESS,
            format_args!("psci: CPU_ON {mpidr:#x} succeeds"),
        );
    }
    for (slot, &mpidr) in info.mpidrs().iter().enumerate().skip(1) {
        if !check!(
            wait_for_runs(slot, 1),
            format_args!("psci: CPU {mpidr:#x} runs"),
            "it did not start within {TIMEOUT_MS} ms"
        ) {
            continue;
        }
        check_eq!(
            SEEN_MPIDR[slot].load(),
            mpidr,
            format_args!("psci: CPU {mpidr:#x} reads its own MPIDR")
        );
        check_eq!(
            SEEN_EL[slot].load(),
            1,
            format_args!("psci: CPU {mpidr:#x} starts at EL1")
        );
        check_eq!(
            SEEN_DAIF[slot].load() & DAIF_ALL_MASKED,
            DAIF_ALL_MASKED,
            format_args!("psci: CPU {mpidr:#x} starts with D, A, I and F masked")
        );
        check_status(
            affinity_info(mpidr),
            psci::AFFINITY_ON,
            format_args!("psci: AFFINITY_INFO {mpidr:#x} is ON while it runs"),
        );
        check_status(
            smp::cpu_on(mpidr, slot),
            psci::ALREADY_ON,
            format_args!("psci: a second CPU_ON {mpidr:#x} is ALREADY_ON"),
        );
    }
    check_status(
        affinity_info(cpu::mpidr()),
        psci::AFFINITY_ON,
        format_args!("psci: AFFINITY_INFO of the boot CPU is ON"),
    );
}

/// Releases the secondaries, which call `CPU_OFF`; each is then seen off.
fn turn_all_secondaries_off(info: &GuestInfo) {
    RELEASE.store(1);
    for &mpidr in info.mpidrs().iter().skip(1) {
        check_status(
            wait_until_off(mpidr),
            psci::AFFINITY_OFF,
            format_args!("psci: AFFINITY_INFO {mpidr:#x} is OFF after its CPU_OFF"),
        );
    }
}

/// Requests PSCI must refuse.
fn invalid_requests(info: &GuestInfo) {
    let Some(&first_secondary) = info.mpidrs().get(1) else {
        return;
    };
    check_status(
        status(psci_call(
            psci::CPU_ON,
            first_secondary,
            ENTRY_OUTSIDE_RAM,
            1,
        )),
        psci::INVALID_ADDRESS,
        format_args!("psci: CPU_ON with an entry point outside RAM is INVALID_ADDRESS"),
    );
    let unaligned = unaligned_entry();
    check_status(
        status(psci_call(psci::CPU_ON, first_secondary, unaligned, 1)),
        psci::INVALID_ADDRESS,
        format_args!("psci: CPU_ON with an unaligned entry point is INVALID_ADDRESS"),
    );
    check_status(
        affinity_info(first_secondary),
        psci::AFFINITY_OFF,
        format_args!("psci: a refused CPU_ON leaves {first_secondary:#x} OFF"),
    );
    check_status(
        smp::cpu_on(cpu::mpidr(), 1),
        psci::ALREADY_ON,
        format_args!("psci: CPU_ON of the calling vCPU itself is ALREADY_ON"),
    );
    let missing = cpu::vcpu_mpidr(info.cpu_count);
    check_status(
        smp::cpu_on(missing, 1),
        psci::INVALID_PARAMETERS,
        format_args!(
            "psci: CPU_ON of the MPIDR after the last vCPU ({missing:#x}) is INVALID_PARAMETERS"
        ),
    );
    check_status(
        smp::cpu_on(cpu::MPIDR_AFFINITY_MASK, 1),
        psci::INVALID_PARAMETERS,
        format_args!(
            "psci: CPU_ON of MPIDR {:#x} is INVALID_PARAMETERS",
            cpu::MPIDR_AFFINITY_MASK
        ),
    );
    check_status(
        affinity_info(missing),
        psci::INVALID_PARAMETERS,
        format_args!("psci: AFFINITY_INFO of a vCPU that does not exist is INVALID_PARAMETERS"),
    );
    check_status(
        status(psci_call(psci::AFFINITY_INFO, cpu::mpidr(), 1, 0)),
        psci::INVALID_PARAMETERS,
        format_args!("psci: AFFINITY_INFO with lowest affinity level 1 is INVALID_PARAMETERS"),
    );
}

/// A real entry point plus 2: inside RAM, but not a multiple of the instruction size.
fn unaligned_entry() -> u64 {
    aerie_test_guests::entry::secondary_entry_address() + 2
}

/// A CPU that was turned off can be turned on again, and runs again.
fn restart(info: &GuestInfo) {
    let Some(&mpidr) = info.mpidrs().get(1) else {
        return;
    };
    SEEN_MPIDR[1].store(u64::MAX);
    check_status(
        smp::cpu_on(mpidr, 1),
        psci::SUCCESS,
        format_args!("psci: CPU_ON {mpidr:#x} again after CPU_OFF succeeds"),
    );
    check!(
        wait_for_runs(1, 2),
        format_args!("psci: CPU {mpidr:#x} runs again"),
        "it did not start again within {TIMEOUT_MS} ms"
    );
    check_eq!(
        SEEN_MPIDR[1].load(),
        mpidr,
        format_args!("psci: restarted CPU {mpidr:#x} reads its own MPIDR")
    );
    // RELEASE is still set: it returns at once and calls CPU_OFF again.
    check_status(
        wait_until_off(mpidr),
        psci::AFFINITY_OFF,
        format_args!("psci: AFFINITY_INFO {mpidr:#x} is OFF again"),
    );
}
