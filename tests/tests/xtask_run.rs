//! `cargo xtask run` as a user runs it: with `--kernel`, Aerie boots that guest, and
//! QEMU's exit status is the guest's (0 after SYSTEM_OFF, N after Aerie's EXIT
//! hypercall). These tests run the xtask tool itself through cargo.

use std::process::{Command, Stdio};

use aerie_tests::test_guest;

/// Runs `cargo xtask run` with `args`; returns the exit code and the output.
fn xtask_run(args: &[&str]) -> (Option<i32>, String) {
    let root = aerie_tests::paths::workspace_root();
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["run", "--quiet", "--package", "xtask", "--", "run"])
        .arg("--snapshot-disk")
        .arg(aerie_tests::paths::snapshot_disk())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
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
