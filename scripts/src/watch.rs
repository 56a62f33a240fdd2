//! A `cargo xtask run` without `--exec`, watched: the console passes straight through
//! to the terminal, but a machine that never speaks, or that outlives `--timeout`, is
//! stopped with a report instead of hanging the terminal, a script or CI.
//!
//! Aerie prints its first line within a fraction of a second of QEMU starting, so a
//! console that stays silent for [`silent_limit`] means the boot hung before Aerie ran
//! (a damaged image, a CPU stuck in early boot): waiting longer would not help.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use aerie_host::console::{last_lines, read_in_background};

use crate::error::{Context, Result};
use crate::exec_session::keep_tail;
use crate::process;

/// How long Aerie may take to print its first line after QEMU starts.
const SILENT_LIMIT: Duration = Duration::from_secs(10);

/// How much of the console is kept for the report.
const KEPT_CONSOLE: usize = 64 << 10;

/// How many console lines the report shows.
const SHOWN_LINES: usize = 30;

/// How often the clock is checked while the console is quiet.
const TICK: Duration = Duration::from_millis(50);

/// [`SILENT_LIMIT`], doubled in CI (`CI=true`), whose machines may be loaded.
pub fn silent_limit() -> Duration {
    if crate::process::in_ci() {
        SILENT_LIMIT * 2
    } else {
        SILENT_LIMIT
    }
}

/// The deadlines of a watched run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// Stop the machine if the console says nothing for this long after QEMU starts.
    pub silent_limit: Option<Duration>,
    /// Stop the machine after this long in all (`--timeout`).
    pub timeout: Option<Duration>,
}

/// How a watched run ended.
#[derive(Debug)]
pub enum Ended {
    /// QEMU exited by itself.
    Exited(ExitStatus),
    /// The console stayed silent; QEMU was killed.
    Silent(Duration),
    /// The timeout struck; QEMU was killed. The console's last lines.
    TimedOut(Duration, String),
}

impl Ended {
    /// What to tell the user, if anything: why QEMU was stopped.
    pub fn report(&self) -> Option<String> {
        match self {
            Ended::Exited(_) => None,
            Ended::Silent(after) => Some(silence_explained(*after)),
            Ended::TimedOut(after, console) => Some(format!(
                "the run took longer than --timeout {} s; QEMU was stopped. {}",
                after.as_secs(),
                if console.is_empty() {
                    "The console stayed empty.".to_string()
                } else {
                    format!("The console's last lines:\n{console}")
                }
            )),
        }
    }
}

/// Why a run whose console stayed empty for `after` was stopped, and what to do.
pub fn silence_explained(after: Duration) -> String {
    format!(
        "QEMU ran for {} s and Aerie printed nothing, not even its first line: the \
         machine hung before Aerie started (a damaged or half-written image, or a CPU \
         stuck in early boot). QEMU was stopped. To see where the CPU is, run again with \
         --gdb and attach the debugger it names.",
        after.as_secs()
    )
}

/// Starts `qemu` with its stdout piped through this process to the terminal (stdin and
/// stderr stay the terminal's) and waits for it to exit or for a deadline of `watch`.
pub fn run(qemu: &mut Command, watch: Watch) -> Result<Ended> {
    let mut child = qemu
        .stdout(Stdio::piped())
        .spawn()
        .context(|| format!("cannot start `{}`", crate::process::display(qemu)))?;
    let console = read_in_background(child.stdout.take());
    let start = Instant::now();
    let mut kept = Vec::new();
    let mut heard = false;
    let mut stdout = std::io::stdout();
    let ended = loop {
        match console.recv_timeout(TICK) {
            Ok((_, bytes)) => {
                // A terminal that went away does not stop the machine.
                let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
                heard = true;
                kept.extend_from_slice(&bytes);
                keep_tail(&mut kept, KEPT_CONSOLE + 1);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // QEMU closed its output: it is exiting. Should it linger, the
                // deadlines below still apply.
                if let Some(status) = process::wait_until(&mut child, Instant::now() + TICK) {
                    break Ended::Exited(status);
                }
            }
        }
        let elapsed = start.elapsed();
        if let Some(limit) = watch.silent_limit
            && !heard
            && elapsed >= limit
        {
            break Ended::Silent(limit);
        }
        if let Some(timeout) = watch.timeout
            && elapsed >= timeout
        {
            break Ended::TimedOut(
                timeout,
                last_lines(&String::from_utf8_lossy(&kept), SHOWN_LINES),
            );
        }
    };
    // Whatever happened, QEMU does not outlive the run.
    process::kill(&mut child);
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(script: &str, watch: Watch) -> Ended {
        run(Command::new("sh").args(["-c", script]), watch).unwrap()
    }

    #[test]
    fn a_machine_that_exits_is_waited_for() {
        let watch = Watch {
            silent_limit: Some(Duration::from_secs(5)),
            timeout: Some(Duration::from_secs(5)),
        };
        let Ended::Exited(status) = watched("echo hello; exit 3", watch) else {
            panic!("the run did not end by itself");
        };
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn a_silent_machine_is_stopped_and_explained() {
        let watch = Watch {
            silent_limit: Some(Duration::from_millis(300)),
            timeout: None,
        };
        let started = Instant::now();
        let ended = watched("sleep 30", watch);
        assert!(started.elapsed() < Duration::from_secs(10));
        let report = ended.report().unwrap();
        assert!(report.contains("printed nothing"), "{report}");
        assert!(report.contains("--gdb"), "{report}");
    }

    #[test]
    fn a_machine_that_speaks_then_hangs_meets_the_timeout_with_its_last_lines() {
        let watch = Watch {
            silent_limit: Some(Duration::from_millis(300)),
            timeout: Some(Duration::from_secs(1)),
        };
        let started = Instant::now();
        let ended = watched("echo booting; echo stuck here; sleep 30", watch);
        assert!(started.elapsed() < Duration::from_secs(10));
        let report = ended.report().unwrap();
        assert!(report.contains("--timeout 1 s"), "{report}");
        assert!(report.contains("stuck here"), "{report}");
    }
}
