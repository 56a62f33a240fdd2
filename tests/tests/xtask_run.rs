//! `cargo xtask run` as a user runs it: with `--kernel`, Aerie boots that guest, and
//! QEMU's exit status is the guest's (0 after SYSTEM_OFF, N after Aerie's EXIT
//! hypercall). These tests run the xtask tool itself through cargo.

use std::time::Duration;

use aerie_tests::test_guest;

/// How long QEMU may run in these tests (`--timeout`): the test guests finish at once.
const TIMEOUT_SECS: u32 = 60;

/// How long the whole `cargo xtask run` may take, its build check included.
const DEADLINE: Duration = Duration::from_secs(180);

/// Runs `cargo xtask run` with `args`; returns the exit code and the output.
fn xtask_run(args: &[&str]) -> (Option<i32>, String) {
    let run = aerie_tests::xtask::xtask_run(TIMEOUT_SECS, args, DEADLINE);
    (run.code, run.stdout + &run.stderr)
}

#[test]
fn a_guest_that_powers_off_ends_the_run_with_status_0() {
    let kernel = test_guest("poweroff");
    let (code, output) = xtask_run(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--mem",
        "64M",
        "--smp",
        "1",
    ]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("Aerie: guest powered off"), "{output}");
}

#[test]
fn the_guests_exit_status_becomes_the_runs() {
    let kernel = test_guest("exit_status");
    let (code, output) = xtask_run(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--mem",
        "64M",
        "--smp",
        "2",
    ]);
    assert_eq!(code, Some(7), "{output}");
    assert!(
        output.contains("Aerie: guest exited with status 7"),
        "{output}"
    );
}

#[test]
fn a_file_that_is_not_a_kernel_is_refused_before_qemu_starts() {
    let not_a_kernel = aerie_tests::temp_file("not-a-kernel", b"just text");
    let (code, output) = xtask_run(&["--kernel", not_a_kernel.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{output}");
    assert!(
        output.contains("is not a bootable arm64 kernel"),
        "{output}"
    );
}

/// The early-boot hang of issue 12: runs side by side rewrote `aerie.bin` in place,
/// and a QEMU could load it half-written. `cargo xtask stress` starts several
/// `cargo xtask run` at once, on one and on two CPUs, all sharing the image, the test
/// guests and the default snapshot disk; every boot must end as its guest says.
#[test]
fn runs_side_by_side_never_hang() {
    let run = aerie_tests::xtask::xtask_within(
        &["stress", "--runs", "24", "--parallel", "3"],
        Duration::from_secs(600),
    );
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(
        run.stdout
            .lines()
            .any(|line| line.starts_with("stress: 24 runs, 24 passed, 0 hangs, 0 failures")),
        "{}",
        run.story()
    );
}

/// `cargo xtask profile`: the instructions of one HVC of the bench guest, function by
/// function, from QEMU's execution log. The total is the bench's HVC row and the
/// timing loop's two instructions, a few hundred at most; nearly all are Aerie's, and
/// both ELF files name their code.
#[test]
fn profile_breaks_an_hvc_down_by_function() {
    let run = aerie_tests::xtask::xtask_within(
        &["profile", "hvc", "--iterations", "20"],
        Duration::from_secs(180),
    );
    assert_eq!(run.code, Some(0), "{}", run.story());
    let median: u64 = run
        .stdout
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("instructions per iteration (20 iterations): median ")?;
            rest.split(',').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no median line\n{}", run.story()));
    assert!((50..=1_000).contains(&median), "{}", run.story());
    let total = run
        .stdout
        .lines()
        .find_map(|line| {
            line.split_once("  total: aerie ")
                .map(|(_, rest)| rest.to_string())
        })
        .unwrap_or_else(|| panic!("no total line\n{}", run.story()));
    let (aerie, guest) = total
        .split_once(", guest ")
        .map(|(aerie, guest)| (aerie.parse::<u64>().unwrap(), guest.parse::<u64>().unwrap()))
        .unwrap_or_else(|| panic!("`{total}`\n{}", run.story()));
    assert!(aerie > 10 * guest && guest > 0, "{}", run.story());
    assert!(
        run.stdout
            .contains("  guest  bench_mark_hvc_psci_version\n"),
        "{}",
        run.story()
    );
}
