//! `cargo xtask stress`: boot the smallest guests under Aerie many times, several
//! `cargo xtask run` at once (as the integration tests and a user with two terminals
//! do), optionally with every CPU kept busy, and report hangs and failures.
//!
//! Each boot is a whole `cargo xtask run` of this same binary, so everything that
//! concurrent runs share is exercised: the image they all rebuild, the test guests,
//! their bundles and the default snapshot disk. Half of the boots use one CPU, half
//! two. A boot passes when it ends with the status and line its guest promises; it
//! hung when a deadline stopped it (xtask's own: a silent console or `--timeout`, or
//! this command's, should xtask itself hang).

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{Profile, StressOptions};
use crate::error::{Context, Result};
use crate::image;
use crate::paths::Layout;
use crate::setup;
use crate::test_guests;

/// How long QEMU may run in one boot (`--timeout`): the guests finish at once.
const RUN_TIMEOUT_SECS: u64 = 60;

/// How long one whole `cargo xtask run` may take before this command kills it.
const RUN_DEADLINE: Duration = Duration::from_secs(RUN_TIMEOUT_SECS + 60);

/// How many failed boots are shown in full.
const SHOWN_FAILURES: usize = 5;

/// One kind of boot: a test guest, its CPUs, and what it must print and return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Boot {
    guest: &'static str,
    smp: u32,
    status: i32,
    line: &'static str,
}

/// The boots, taken in turn: one CPU, then two.
const BOOTS: [Boot; 2] = [
    Boot {
        guest: "poweroff",
        smp: 1,
        status: 0,
        line: "Aerie: guest powered off",
    },
    Boot {
        guest: "exit_status",
        smp: 2,
        status: 7,
        line: "Aerie: guest exited with status 7",
    },
];

/// How one boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The promised status and line.
    Passed,
    /// A deadline stopped it.
    Hung,
    /// Anything else.
    Failed,
}

/// Judges one boot from its exit code (`None`: killed) and output.
fn judge(boot: &Boot, code: Option<i32>, output: &str) -> Verdict {
    match code {
        Some(code) if code == boot.status && output.contains(boot.line) => Verdict::Passed,
        // 124: xtask's own deadline (silent console or --timeout); None: ours.
        Some(124) | None => Verdict::Hung,
        Some(_) => Verdict::Failed,
    }
}

/// The counts of a stress run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Boots that passed.
    pub passed: u32,
    /// Boots a deadline stopped.
    pub hung: u32,
    /// Boots that failed otherwise.
    pub failed: u32,
}

impl Tally {
    fn add(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Passed => self.passed += 1,
            Verdict::Hung => self.hung += 1,
            Verdict::Failed => self.failed += 1,
        }
    }

    /// The closing line.
    pub fn summary(&self, options: &StressOptions, took: Duration) -> String {
        format!(
            "stress: {} runs, {} passed, {} hangs, {} failures ({} at a time, load {}, {:.0} s)",
            self.passed + self.hung + self.failed,
            self.passed,
            self.hung,
            self.failed,
            options.parallel,
            if options.load { "on" } else { "off" },
            took.as_secs_f64()
        )
    }
}

/// Runs `cargo xtask stress`.
pub fn run(layout: &Layout, options: &StressOptions) -> Result<ExitCode> {
    setup::ensure_qemu()?;
    image::build(layout, Profile::Release)?;
    let guests = test_guests::build(layout)?;
    let xtask = std::env::current_exe().context(|| "cannot find xtask's own binary")?;

    let started = Instant::now();
    let next = AtomicU32::new(0);
    let tally = Mutex::new(Tally::default());
    let shown = AtomicU32::new(0);
    let stop_load = Arc::new(AtomicBool::new(false));
    let hogs = if options.load {
        start_hogs(&stop_load)
    } else {
        Vec::new()
    };
    thread::scope(|scope| {
        for _ in 0..options.parallel.min(options.runs) {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= options.runs {
                        break;
                    }
                    let boot = BOOTS[n as usize % BOOTS.len()];
                    let kernel = guests.dir.join(format!("{}.bin", boot.guest));
                    let (code, output) = boot_once(&xtask, &kernel, &boot);
                    let verdict = judge(&boot, code, &output);
                    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                    tally.add(&verdict);
                    if verdict != Verdict::Passed
                        && (shown.fetch_add(1, Ordering::Relaxed) as usize) < SHOWN_FAILURES
                    {
                        eprintln!(
                            "stress: run {} ({}, --smp {}): {verdict:?}, exit code {code:?}\n{}",
                            n + 1,
                            boot.guest,
                            boot.smp,
                            tail(&output, 40)
                        );
                    }
                    let done = tally.passed + tally.hung + tally.failed;
                    if done % 10 == 0 || done == options.runs {
                        eprintln!(
                            "stress: {done}/{} done, {} hangs, {} failures",
                            options.runs, tally.hung, tally.failed
                        );
                    }
                }
            });
        }
    });
    stop_load.store(true, Ordering::Relaxed);
    for hog in hogs {
        let _ = hog.join();
    }
    let tally = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    println!("{}", tally.summary(options, started.elapsed()));
    Ok(if tally.hung == 0 && tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One `xtask run` of `kernel` as `boot` says; its exit code (`None` when this
/// command had to kill it) and everything it printed.
fn boot_once(
    xtask: &std::path::Path,
    kernel: &std::path::Path,
    boot: &Boot,
) -> (Option<i32>, String) {
    let mut command = Command::new(xtask);
    command
        .arg("run")
        .arg("--kernel")
        .arg(kernel)
        .args(["--mem", "64M", "--smp", &boot.smp.to_string()])
        .args(["--timeout", &RUN_TIMEOUT_SECS.to_string()]);
    // Its own process group: a deadline kills xtask and its QEMU together.
    let ran = match aerie_host::run_to_end(&mut command, RUN_DEADLINE, true) {
        Ok(ran) => ran,
        Err(e) => return (Some(-1), format!("cannot start {}: {e}", xtask.display())),
    };
    let code = ran.status.and_then(|status| status.code());
    let mut output = ran.stdout + &ran.stderr;
    if code.is_none() {
        output.push_str(&format!(
            "\nstress: killed after {} s (xtask's own deadlines did not strike)\n",
            RUN_DEADLINE.as_secs()
        ));
    }
    (code, output)
}

/// One spinning thread per host CPU, until `stop` is set.
fn start_hogs(stop: &Arc<AtomicBool>) -> Vec<thread::JoinHandle<()>> {
    let cpus = thread::available_parallelism().map_or(2, |n| n.get());
    (0..cpus)
        .map(|_| {
            let stop = Arc::clone(stop);
            thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
            })
        })
        .collect()
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_are_judged_by_status_line_and_deadline() {
        let boot = BOOTS[1];
        let good = "xtask: ...\nAerie: guest exited with status 7\n";
        assert_eq!(judge(&boot, Some(7), good), Verdict::Passed);
        assert_eq!(judge(&boot, Some(7), "no line"), Verdict::Failed);
        assert_eq!(judge(&boot, Some(0), good), Verdict::Failed);
        assert_eq!(judge(&boot, Some(124), ""), Verdict::Hung);
        assert_eq!(judge(&boot, None, ""), Verdict::Hung);
    }

    #[test]
    fn the_summary_counts_every_run() {
        let mut tally = Tally::default();
        for verdict in [
            Verdict::Passed,
            Verdict::Passed,
            Verdict::Hung,
            Verdict::Failed,
        ] {
            tally.add(&verdict);
        }
        let options = StressOptions {
            runs: 4,
            parallel: 3,
            load: true,
        };
        assert_eq!(
            tally.summary(&options, Duration::from_secs(12)),
            "stress: 4 runs, 2 passed, 1 hangs, 1 failures (3 at a time, load on, 12 s)"
        );
    }

    #[test]
    fn half_the_boots_use_two_cpus() {
        assert_eq!(BOOTS.map(|boot| boot.smp), [1, 2]);
    }
}
