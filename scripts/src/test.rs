//! `cargo xtask test`: every test in one go, then a one-line summary.

use std::fmt;
use std::process::{Command, ExitCode};

use crate::bench_crate;
use crate::cli::{Profile, TestOptions};
use crate::error::Result;
use crate::guest_material;
use crate::image::{self, Built};
use crate::paths::{Layout, TARGET};
use crate::process;
use crate::setup;
use crate::test_guests::{self, BuiltGuests};

/// The host crates whose unit tests and lints run on the build machine.
const HOST_CRATES: [&str; 6] = [
    "aerie-hyp",
    "aerie-devices",
    "aerie-host",
    "xtask",
    bench_crate::PACKAGE,
    "aerie-tests",
];

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It passed.
    Ok,
    /// It failed; the detail says which part, when there are several.
    Failed(String),
    /// It did not run, for the given reason.
    Skipped(String),
}

impl Status {
    fn from_result(ok: bool) -> Self {
        if ok {
            Status::Ok
        } else {
            Status::Failed(String::new())
        }
    }

    fn is_failure(&self) -> bool {
        matches!(self, Status::Failed(_))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => write!(f, "ok"),
            Status::Failed(detail) if detail.is_empty() => write!(f, "FAILED"),
            Status::Failed(detail) => write!(f, "FAILED ({detail})"),
            Status::Skipped(reason) => write!(f, "skipped ({reason})"),
        }
    }
}

/// The outcome of every step of `cargo xtask test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Host unit tests.
    pub host: Status,
    /// Building the Image.
    pub image: Status,
    /// Building the test guests.
    pub guests: Status,
    /// QEMU integration tests.
    pub qemu: Status,
    /// `cargo xtask bench --quick`: the benchmark runs and writes its report (no
    /// timing is checked).
    pub bench: Status,
    /// rustfmt and clippy.
    pub lints: Status,
}

impl Summary {
    /// Whether every step that ran passed (skipped steps do not fail the run).
    pub fn passed(&self) -> bool {
        ![
            &self.host,
            &self.image,
            &self.guests,
            &self.qemu,
            &self.bench,
            &self.lints,
        ]
        .iter()
        .any(|status| status.is_failure())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "xtask test: host unit tests {} | image {} | test guests {} | qemu integration \
             tests {} | bench {} | lints {}",
            self.host, self.image, self.guests, self.qemu, self.bench, self.lints
        )
    }
}

/// Runs `cargo xtask test`.
pub fn run(layout: &Layout, options: &TestOptions) -> Result<ExitCode> {
    // A missing target shows again as an image failure; QEMU's as a qemu failure.
    let _ = setup::ensure_target(layout).inspect_err(|e| eprintln!("xtask test: {e}"));
    let qemu_ready = if options.host_only {
        None
    } else {
        Some(
            setup::ensure_qemu()
                .inspect_err(|e| eprintln!("xtask test: {e}"))
                .is_ok(),
        )
    };

    let host = Status::from_result(step("host unit tests", &mut host_unit_tests(layout))?);

    banner("image");
    let built = image::build(layout, Profile::Release)
        .inspect_err(|e| eprintln!("xtask test: {e}"))
        .ok();
    let image = Status::from_result(built.is_some());

    banner("test guests");
    let guests = test_guests::build(layout)
        .inspect_err(|e| eprintln!("xtask test: {e}"))
        .ok();
    let guests_status = Status::from_result(guests.is_some());

    let qemu = match (qemu_ready, &built) {
        (None, _) => Status::Skipped("--host-only".into()),
        (Some(false), _) => Status::Failed("no usable QEMU".into()),
        (Some(true), None) => Status::Skipped("no image".into()),
        (Some(true), Some(built)) => {
            // Fetched here, once and without a deadline, so that the tests' own
            // deadlines measure Linux, not the download. A failure shows again, with
            // its advice, in the first test that boots the default guest.
            banner("default guest");
            if let Err(e) = guest_material::ensure(&guest_material::guest_dir(layout)) {
                eprintln!("xtask test: {e}");
            }
            // The firmware tests' firmware likewise; their `xtask run` repeats a
            // failure with what to install.
            for firmware in [crate::firmware::UBOOT, crate::firmware::EDK2] {
                if let Err(e) = crate::firmware::ensure(layout, firmware) {
                    eprintln!("xtask test: {e}");
                }
            }
            // Without guests the boot tests still run; the guest tests then fail and
            // say that the guests are missing.
            let mut command =
                integration_tests(layout, built, guests.as_ref(), options.filter.as_deref());
            Status::from_result(step("qemu integration tests", &mut command)?)
        }
    };

    let bench = match (qemu_ready, &built, &options.filter) {
        (None, _, _) => Status::Skipped("--host-only".into()),
        (Some(false), _, _) => Status::Skipped("no usable QEMU".into()),
        (Some(true), None, _) => Status::Skipped("no image".into()),
        (Some(true), Some(_), Some(_)) => Status::Skipped("--filter".into()),
        (Some(true), Some(_), None) => bench_smoke(layout),
    };

    let lints = lints(layout)?;
    let summary = Summary {
        host,
        image,
        guests: guests_status,
        qemu,
        bench,
        lints,
    };
    println!("\n{summary}");
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask bench --quick`, as users run it (the bench crate's binary): it must run
/// every configuration (exit 0: no run failed) and write a non-empty report. Timings are
/// never checked here.
fn bench_smoke(layout: &Layout) -> Status {
    banner("bench --quick (runs and reports; timings are not checked)");
    // Where `--quick` writes; last run's report is removed so that only this run's counts.
    let out = layout.aerie_dir().join("bench");
    let report = ["latest.md", "latest.json"].map(|name| out.join(name));
    for path in &report {
        let _ = std::fs::remove_file(path);
    }
    let mut bench = bench_crate::command(layout, "bench", &["--quick".to_string()]);
    println!("{}", process::display(&bench));
    match process::succeeds(&mut bench) {
        Err(error) => {
            eprintln!("xtask test: bench: {error}");
            Status::Failed(error.to_string())
        }
        Ok(false) => Status::Failed("it failed (its output says why)".into()),
        Ok(true) => {
            let empty = report
                .iter()
                .filter(|path| std::fs::metadata(path).map_or(true, |meta| meta.len() == 0))
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>();
            if empty.is_empty() {
                println!("bench: report in {}", report[0].display());
                Status::Ok
            } else {
                Status::Failed(format!("no report in {}", empty.join(", ")))
            }
        }
    }
}

fn banner(name: &str) {
    println!("\n==> xtask test: {name}");
}

/// Prints a banner and the command, then runs it with the terminal as its output.
fn step(name: &str, command: &mut Command) -> Result<bool> {
    banner(name);
    println!("{}", process::display(command));
    process::succeeds(command)
}

fn cargo_in(layout: &Layout, subcommand: &str) -> Command {
    let mut cargo = process::cargo();
    cargo.arg(subcommand).current_dir(layout.root());
    // cargo-fmt has no --color; `lints` passes it on to rustfmt instead.
    if process::in_ci() && subcommand != "fmt" {
        cargo.args(["--color", "never"]);
    }
    cargo
}

fn with_packages(command: &mut Command) -> &mut Command {
    for package in HOST_CRATES {
        command.args(["-p", package]);
    }
    command
}

/// Arguments for libtest after `--`.
fn libtest_args(command: &mut Command) -> &mut Command {
    if process::in_ci() {
        command.args(["--color", "never"]);
    }
    command
}

fn host_unit_tests(layout: &Layout) -> Command {
    let mut cargo = cargo_in(layout, "test");
    with_packages(&mut cargo).arg("--lib");
    if process::in_ci() {
        cargo.arg("--");
        libtest_args(&mut cargo);
    }
    cargo
}

fn integration_tests(
    layout: &Layout,
    built: &Built,
    guests: Option<&BuiltGuests>,
    filter: Option<&str>,
) -> Command {
    let absolute = |path: &std::path::Path| std::path::absolute(path).unwrap_or(path.to_path_buf());
    let mut cargo = cargo_in(layout, "test");
    cargo
        // Every integration-test file of aerie-tests (tests/tests/*.rs) boots QEMU.
        // --no-fail-fast: a failure in one test file does not hide the others'.
        .args(["-p", "aerie-tests", "--test", "*", "--no-fail-fast"])
        .args(["--", "--test-threads=2"])
        .env("AERIE_IMAGE", absolute(&built.image))
        .env("AERIE_ELF", absolute(&built.elf));
    if let Some(guests) = guests {
        cargo.env("AERIE_TEST_GUESTS", absolute(&guests.dir));
    }
    libtest_args(&mut cargo);
    if let Some(filter) = filter {
        cargo.arg(filter);
    }
    cargo
}

fn lints(layout: &Layout) -> Result<Status> {
    let mut fmt = cargo_in(layout, "fmt");
    fmt.args(["--all", "--check"]);
    if process::in_ci() {
        fmt.args(["--", "--color", "never"]);
    }
    let mut host_clippy = cargo_in(layout, "clippy");
    with_packages(&mut host_clippy).args(["--all-targets", "--", "-D", "warnings"]);
    let aarch64_clippy = |package: &str| {
        let mut clippy = cargo_in(layout, "clippy");
        clippy.args([
            "-p",
            package,
            "--release",
            "--target",
            TARGET,
            "--",
            "-D",
            "warnings",
        ]);
        clippy
    };
    let mut boot_clippy = aarch64_clippy("aerie-boot");
    let mut guests_clippy = aarch64_clippy(test_guests::PACKAGE);

    let mut failed = Vec::new();
    for (name, command) in [
        ("rustfmt", &mut fmt),
        ("clippy host", &mut host_clippy),
        ("clippy aerie-boot", &mut boot_clippy),
        ("clippy aerie-test-guests", &mut guests_clippy),
    ] {
        if !step(&format!("lints: {name}"), command)? {
            failed.push(name);
        }
    }
    Ok(if failed.is_empty() {
        Status::Ok
    } else {
        Status::Failed(failed.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let summary = Summary {
            host: Status::Ok,
            image: Status::Ok,
            guests: Status::Ok,
            qemu: Status::Ok,
            bench: Status::Ok,
            lints: Status::Ok,
        };
        assert_eq!(
            summary.to_string(),
            "xtask test: host unit tests ok | image ok | test guests ok | qemu integration \
             tests ok | bench ok | lints ok"
        );
        assert!(summary.passed());
    }

    #[test]
    fn failures_and_skips() {
        let summary = Summary {
            host: Status::Failed(String::new()),
            image: Status::Ok,
            guests: Status::Ok,
            qemu: Status::Skipped("--host-only".into()),
            bench: Status::Skipped("--host-only".into()),
            lints: Status::Failed("rustfmt, clippy host".into()),
        };
        assert_eq!(
            summary.to_string(),
            "xtask test: host unit tests FAILED | image ok | test guests ok | qemu integration \
             tests skipped (--host-only) | bench skipped (--host-only) | lints FAILED (rustfmt, \
             clippy host)"
        );
        assert!(!summary.passed());
        let skipped_only = Summary {
            host: Status::Ok,
            lints: Status::Ok,
            ..summary
        };
        assert!(skipped_only.passed());
        let guests_failed = Summary {
            guests: Status::Failed(String::new()),
            ..skipped_only.clone()
        };
        assert!(!guests_failed.passed());
        let bench_failed = Summary {
            bench: Status::Failed("1 run(s) failed".into()),
            ..skipped_only
        };
        assert!(!bench_failed.passed());
    }

    #[test]
    fn integration_tests_get_absolute_paths_and_the_filter() {
        let layout = Layout::new("/w".into(), None);
        let built = Built {
            elf: "/w/e".into(),
            image: "/w/i".into(),
        };
        let guests = BuiltGuests {
            dir: "/w/g".into(),
            names: vec!["psci".into()],
        };
        let command = integration_tests(&layout, &built, Some(&guests), Some("boots"));
        let shown = process::display(&command);
        assert!(
            shown.contains("-p aerie-tests --test '*' --no-fail-fast -- --test-threads=2"),
            "{shown}"
        );
        assert!(shown.ends_with(" boots"), "{shown}");
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs.contains(&("AERIE_IMAGE".as_ref(), Some("/w/i".as_ref()))));
        assert!(envs.contains(&("AERIE_ELF".as_ref(), Some("/w/e".as_ref()))));
        assert!(envs.contains(&("AERIE_TEST_GUESTS".as_ref(), Some("/w/g".as_ref()))));

        // Without guests the variable is not set at all.
        let command = integration_tests(&layout, &built, None, None);
        assert!(
            command
                .get_envs()
                .all(|(name, _)| name != "AERIE_TEST_GUESTS")
        );
    }
}
