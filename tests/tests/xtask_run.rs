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
