//! `cargo xtask run --exec CMD`: run one command in the guest's shell by typing on
//! its serial console, as a person would, and hand back its output and exit status.
//!
//! Only the console is used (no kernel command-line tricks, no shared folders), so
//! the same works on any guest with a shell on its console, and on a guest restored
//! from a snapshot. [`crate::conversation`] holds the conversation (with `--restore`
//! and `--snapshot`, also the part spoken with Aerie); this module starts QEMU with
//! the console on pipes (aerie-host's [`Console`]), feeds the conversation what QEMU
//! prints, types what it asks for, shows Aerie's snapshot lines on stderr, enforces
//! the timeout and stops QEMU in the end.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use aerie_host::{Console, Stderr};

use crate::conversation::{Conversation, Finish, Plan};
use crate::error::{Context, Result};
use crate::exec_session::{Failure, Ready};

/// How long the machine may take to stop after the power-off (or `quit`) command.
pub const POWER_OFF_GRACE: Duration = Duration::from_secs(15);

/// How often the driver looks at the clock when the console is silent.
const TICK: Duration = Duration::from_millis(50);

/// How much of the console the driver keeps for error reports.
const KEPT_CONSOLE: usize = 64 << 10;

/// How many console lines an error report shows.
const SHOWN_LINES: usize = 30;

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The shell command (may span lines).
    pub command: String,
    /// How long boot (or restore) and the command may take; the snapshot, if any,
    /// gets as long again.
    pub timeout: Duration,
    /// When to start typing.
    pub ready: Ready,
    /// What to type to power the guest off once the command is done (unless a
    /// snapshot is taken: then Aerie's `quit` powers off).
    pub power_off: String,
    /// Aerie restores a snapshot instead of booting the guest (`--restore`).
    pub restore: bool,
    /// Take a snapshot once the command is done (`--snapshot`).
    pub snapshot: bool,
    /// Copy everything on the console to stderr as it comes.
    pub verbose: bool,
    /// How long the console may stay silent after QEMU starts before the run counts
    /// as hung (under Aerie, which prints at once); `None` for a guest alone.
    pub silent_limit: Option<Duration>,
}

impl ExecSpec {
    /// The conversation this spec asks for.
    pub fn plan(&self) -> Plan {
        Plan {
            command: self.command.clone(),
            ready: self.ready,
            restore: self.restore,
            finish: if self.snapshot {
                Finish::Snapshot
            } else {
                Finish::PowerOff(self.power_off.clone())
            },
        }
    }
}

/// How an `--exec` run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ran; its status, and a note if the machine did not stop cleanly.
    Finished {
        /// The command's exit status.
        status: u8,
        /// Why the power-off was not clean, if it was not.
        warning: Option<String>,
    },
    /// The timeout struck; QEMU was killed.
    TimedOut {
        /// What the driver was waiting for.
        waiting_for: String,
        /// The end of the console output.
        console: String,
    },
    /// Nothing at all came on the console within the spec's `silent_limit`: the
    /// machine hung before Aerie's first line; QEMU was killed.
    Silent {
        /// How long QEMU ran.
        after: Duration,
    },
    /// Aerie could not restore the snapshot (`--restore`); QEMU was stopped.
    RestoreFailed {
        /// Aerie's reason.
        reason: String,
    },
    /// The command ran, but Aerie could not take the snapshot (`--snapshot`); QEMU
    /// was stopped.
    SnapshotFailed {
        /// The command's exit status.
        status: u8,
        /// Aerie's reason.
        reason: String,
    },
    /// QEMU exited before the command finished (or, with `--snapshot`, before the
    /// snapshot was taken).
    Stopped {
        /// QEMU's exit code (`None` if killed by a signal).
        code: Option<i32>,
        /// What the driver was waiting for.
        waiting_for: String,
        /// The end of the console output.
        console: String,
    },
}

/// A nonce for the markers: the process ID and the clock, in hexadecimal.
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

/// Starts `qemu` with the console on pipes and holds the conversation. The
/// command's output goes to `out` as it comes.
pub fn run(qemu: &mut Command, spec: &ExecSpec, out: &mut dyn Write) -> Result<ExecOutcome> {
    let mut console = Console::start(qemu, Stderr::Inherit)
        .context(|| format!("cannot start `{}`", crate::process::display(qemu)))?
        .keeping_at_most(KEPT_CONSOLE);
    // Whatever happens, QEMU does not outlive the run (dropping the console kills it).
    converse(&mut console, spec, out)
}

fn converse(console: &mut Console, spec: &ExecSpec, out: &mut dyn Write) -> Result<ExecOutcome> {
    let mut conversation = Conversation::new(spec.plan(), &nonce());
    let mut status: Option<u8> = None;
    let mut stopping_since: Option<Duration> = None;
    let mut heard = false;
    loop {
        let piece = console.next_piece(TICK);
        let now = console.elapsed();
        if spec.verbose && !piece.bytes.is_empty() {
            let mut stderr = std::io::stderr();
            let _ = stderr.write_all(&piece.bytes).and_then(|()| stderr.flush());
        }
        heard |= !piece.bytes.is_empty();
        if !heard
            && let Some(limit) = spec.silent_limit
            && now >= limit
        {
            return Ok(ExecOutcome::Silent { after: limit });
        }

        let reaction = conversation.step(&piece.bytes, now);
        out.write_all(&reaction.output)
            .and_then(|()| out.flush())
            .context(|| "cannot write the command's output")?;
        if !spec.verbose {
            // (With --verbose they are on stderr already, with the whole console.)
            for notice in &reaction.notices {
                eprintln!("{notice}");
            }
        }
        for text in &reaction.typed {
            console.type_text(text);
        }
        status = status.or(reaction.status);
        if reaction.stopping {
            stopping_since = Some(now);
        }
        match reaction.failure {
            Some(Failure::Restore(reason)) => return Ok(ExecOutcome::RestoreFailed { reason }),
            Some(Failure::Snapshot(reason)) => {
                return Ok(ExecOutcome::SnapshotFailed {
                    status: status.unwrap_or(u8::MAX),
                    reason,
                });
            }
            None => {}
        }

        if piece.closed {
            // QEMU closed the console: it is exiting (a lingering one is killed after).
            let code = console
                .wait_exit(POWER_OFF_GRACE)
                .and_then(|status| status.code());
            return Ok(match (status, stopping_since) {
                (Some(status), Some(_)) => ExecOutcome::Finished {
                    status,
                    warning: unclean(code),
                },
                _ => ExecOutcome::Stopped {
                    code,
                    waiting_for: conversation.waiting_for(),
                    console: console.tail(SHOWN_LINES),
                },
            });
        }
        if let (Some(status), Some(since)) = (status, stopping_since)
            && now.saturating_sub(since) >= POWER_OFF_GRACE
        {
            return Ok(ExecOutcome::Finished {
                status,
                warning: Some(format!(
                    "the machine did not power off within {} s of being told to ({}); \
                     QEMU was stopped",
                    POWER_OFF_GRACE.as_secs(),
                    if spec.snapshot {
                        "`quit` at Aerie's console after the snapshot".to_string()
                    } else {
                        format!("`{}` after the command", spec.power_off)
                    }
                )),
            });
        }
        if stopping_since.is_none()
            && now.saturating_sub(conversation.budget_start()) >= spec.timeout
        {
            return Ok(ExecOutcome::TimedOut {
                waiting_for: conversation.waiting_for(),
                console: console.tail(SHOWN_LINES),
            });
        }
    }
}

/// A note when QEMU's exit after the power-off was not clean.
fn unclean(code: Option<i32>) -> Option<String> {
    match code {
        Some(0) => None,
        Some(code) => Some(format!(
            "the machine stopped with QEMU exit status {code} after the command"
        )),
        None => Some("QEMU was killed by a signal after the command".to_string()),
    }
}

impl ExecOutcome {
    /// The exit code of `cargo xtask run --exec`: the command's status; 124 after a
    /// timeout (as `timeout(1)`); 1 when Aerie could not restore or take the
    /// snapshot; QEMU's own status when the machine stopped first (1 if that was 0 or
    /// a signal).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecOutcome::Finished { status, .. } => *status,
            ExecOutcome::TimedOut { .. } | ExecOutcome::Silent { .. } => 124,
            ExecOutcome::RestoreFailed { .. } | ExecOutcome::SnapshotFailed { .. } => 1,
            ExecOutcome::Stopped { code, .. } => match code {
                Some(code @ 1..=255) => *code as u8,
                _ => 1,
            },
        }
    }

    /// What to tell the user on stderr, if anything.
    pub fn report(&self, command: &str, timeout: Duration) -> Option<String> {
        let console_tail = |console: &str| {
            if console.is_empty() {
                "The console stayed empty.".to_string()
            } else {
                format!("The console's last lines:\n{console}")
            }
        };
        match self {
            ExecOutcome::Finished { warning, .. } => warning.clone(),
            ExecOutcome::Silent { after } => Some(crate::watch::silence_explained(*after)),
            ExecOutcome::RestoreFailed { reason } => Some(format!(
                "Aerie cannot restore the snapshot: {reason}. QEMU was stopped before \
                 `{command}` could run."
            )),
            ExecOutcome::SnapshotFailed { status, reason } => Some(format!(
                "`{command}` finished with status {status}, but Aerie could not take the \
                 snapshot: {reason}. QEMU was stopped."
            )),
            ExecOutcome::TimedOut {
                waiting_for,
                console,
            } => Some(format!(
                "--exec `{command}` timed out after {} s, {waiting_for}; QEMU was stopped \
                 (--timeout SECS gives more time; --verbose shows the whole console).\n{}",
                timeout.as_secs(),
                console_tail(console)
            )),
            ExecOutcome::Stopped {
                code,
                waiting_for,
                console,
            } => Some(format!(
                "the machine stopped ({}) {waiting_for}.\n{}",
                match code {
                    None => "QEMU killed by a signal".to_string(),
                    Some(0) => "powered off or reset; QEMU exit status 0".to_string(),
                    Some(code) => format!("QEMU exit status {code}"),
                },
                console_tail(console)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerie_host::console::shell;
    use std::time::Instant;

    const MARKER: &str = "aerie-guest: ready";

    fn spec(command: &str, ready: Ready) -> ExecSpec {
        ExecSpec {
            command: command.to_string(),
            timeout: Duration::from_secs(30),
            ready,
            power_off: "poweroff -f".to_string(),
            restore: false,
            snapshot: false,
            verbose: false,
            silent_limit: None,
        }
    }

    #[test]
    fn exit_codes_and_reports() {
        let finished = ExecOutcome::Finished {
            status: 7,
            warning: None,
        };
        assert_eq!(finished.exit_code(), 7);
        assert_eq!(finished.report("exit 7", Duration::from_secs(1)), None);
        let timed_out = ExecOutcome::TimedOut {
            waiting_for: "waiting for the guest to print `aerie-guest: ready`".into(),
            console: "[ 1.0] Booting".into(),
        };
        assert_eq!(timed_out.exit_code(), 124);
        let report = timed_out.report("true", Duration::from_secs(120)).unwrap();
        assert!(
            report.starts_with(
                "--exec `true` timed out after 120 s, waiting for the guest to print \
                 `aerie-guest: ready`; QEMU was stopped"
            ),
            "{report}"
        );
        assert!(report.ends_with("The console's last lines:\n[ 1.0] Booting"));
        let crashed = ExecOutcome::Stopped {
            code: Some(3),
            waiting_for: "waiting for `true` to finish".into(),
            console: String::new(),
        };
        assert_eq!(crashed.exit_code(), 3);
        assert_eq!(
            crashed.report("true", Duration::from_secs(1)).unwrap(),
            "the machine stopped (QEMU exit status 3) waiting for `true` to finish.\n\
             The console stayed empty."
        );
        for code in [Some(0), None] {
            let stopped = ExecOutcome::Stopped {
                code,
                waiting_for: String::new(),
                console: String::new(),
            };
            assert_eq!(stopped.exit_code(), 1);
        }
    }

    #[test]
    fn snapshot_and_restore_failures_are_reported() {
        let refused = ExecOutcome::RestoreFailed {
            reason: "the snapshot needs 4 vCPUs; this machine has 2".into(),
        };
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(
            refused
                .report("cat /tmp/v", Duration::from_secs(1))
                .unwrap(),
            "Aerie cannot restore the snapshot: the snapshot needs 4 vCPUs; this machine \
             has 2. QEMU was stopped before `cat /tmp/v` could run."
        );
        let failed = ExecOutcome::SnapshotFailed {
            status: 0,
            reason: "disk I/O error".into(),
        };
        assert_eq!(failed.exit_code(), 1);
        assert_eq!(
            failed.report("true", Duration::from_secs(1)).unwrap(),
            "`true` finished with status 0, but Aerie could not take the snapshot: disk I/O \
             error. QEMU was stopped."
        );
    }

    /// A host shell script standing in for Aerie and the guest's shell: it answers the
    /// probe, runs the command and turns the echo back on as the guest's shell would
    /// (reading whole lines), then reads Aerie's console keys byte by byte (they have no line end) and
    /// answers as Aerie does. `$SAVE` is what it prints for `snapshot`.
    const FAKE_AERIE: &str = r#"
        echo 'aerie-guest: ready'
        IFS= read -r probe; eval "$probe"
        IFS= read -r open; IFS= read -r body; IFS= read -r close
        eval "$open
$body
$close"
        IFS= read -r tidy; eval "$tidy"
        keys=$(dd bs=1 count=2 2>/dev/null | od -An -c | tr -d ' ')
        [ "$keys" = '001c' ] || { echo "bad keys: $keys"; exit 9; }
        printf '\r\nAerie console: the guest runs on without input\r\naerie> '
        typed=$(dd bs=1 count=14 2>/dev/null | tr '\r' '/')
        [ "$typed" = 'snapshot quit/' ] || { echo "bad command: $typed"; exit 9; }
        printf 'snapshot quit\r\nAerie: snapshot: memory 1 MiB of 2 MiB\r\n'
        printf "$SAVE"'\r\n'
        case "$SAVE" in *failed*) printf 'aerie> '; sleep 5;; esac
        exit 0
    "#;

    fn fake_aerie(save: &str, command: &str) -> (ExecOutcome, Vec<u8>) {
        let mut fake = shell(FAKE_AERIE);
        fake.env("SAVE", save);
        let spec = ExecSpec {
            snapshot: true,
            ..spec(command, Ready::Marker(MARKER))
        };
        let mut out = Vec::new();
        let outcome = run(&mut fake, &spec, &mut out).unwrap();
        (outcome, out)
    }

    #[test]
    fn a_snapshot_is_taken_at_aeries_console_after_the_command() {
        let (outcome, out) = fake_aerie(
            "Aerie: snapshot 3 saved in slot A: 1.0 MiB in 0.1 s",
            "echo 42 > /dev/null; echo done; exit 5",
        );
        assert_eq!(
            outcome,
            ExecOutcome::Finished {
                status: 5,
                warning: None
            }
        );
        assert_eq!(String::from_utf8_lossy(&out), "done\n");
    }

    #[test]
    fn a_failed_snapshot_stops_the_run() {
        let (outcome, _) = fake_aerie("Aerie: snapshot failed: disk I/O error", "true");
        assert_eq!(
            outcome,
            ExecOutcome::SnapshotFailed {
                status: 0,
                reason: "disk I/O error".into()
            }
        );
    }

    #[test]
    fn a_refused_restore_stops_qemu_at_once() {
        let mut fake = shell(
            "echo 'Aerie: restoring snapshot 2 (slot B)'; \
             echo 'Aerie: cannot restore: the guest disk changed since the snapshot'; \
             echo 'Aerie: press Enter to boot the guest fresh instead, or Ctrl-A x to quit'; \
             sleep 30",
        );
        let spec = ExecSpec {
            restore: true,
            ..spec("true", Ready::Marker(MARKER))
        };
        let started = Instant::now();
        let outcome = run(&mut fake, &spec, &mut Vec::new()).unwrap();
        assert_eq!(
            outcome,
            ExecOutcome::RestoreFailed {
                reason: "the guest disk changed since the snapshot".into()
            }
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_restored_shell_runs_the_command_without_a_boot() {
        // No ready marker: the restore line, then a shell (Enter comes first).
        let mut fake = shell(
            "echo 'Aerie: restored snapshot 2 in 0.1 s; resuming the guest'; exec sh 2>/dev/null",
        );
        let spec = ExecSpec {
            restore: true,
            power_off: "exit".into(),
            ..spec("echo restored", Ready::Marker(MARKER))
        };
        let mut out = Vec::new();
        let outcome = run(&mut fake, &spec, &mut out).unwrap();
        assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
        assert_eq!(String::from_utf8_lossy(&out), "restored\n");
    }

    /// The whole driver against a host shell standing in for the guest's: it prints
    /// the marker, then reads the typed lines from its stdin (no terminal, so
    /// `stty` fails quietly and nothing is echoed). `exit` stands in for the
    /// power-off: never type `poweroff` into a host shell.
    fn host_shell(command: &str, ready: Ready, timeout: Duration) -> (ExecOutcome, Vec<u8>) {
        let mut guest = shell("echo booting; echo 'aerie-guest: ready'; exec sh");
        let spec = ExecSpec {
            power_off: "exit".to_string(),
            timeout,
            ..spec(command, ready)
        };
        let mut out = Vec::new();
        let outcome = run(&mut guest, &spec, &mut out).unwrap();
        (outcome, out)
    }

    #[test]
    fn drives_a_host_shell_end_to_end() {
        let (outcome, out) = host_shell(
            "echo hello; exit 7",
            Ready::Marker(MARKER),
            Duration::from_secs(20),
        );
        assert_eq!(
            outcome,
            ExecOutcome::Finished {
                status: 7,
                warning: None
            }
        );
        assert_eq!(String::from_utf8_lossy(&out), "hello\n");
        let (outcome, out) = host_shell(
            "cat; echo read nothing",
            Ready::Quiet,
            Duration::from_secs(20),
        );
        assert_eq!(outcome.exit_code(), 0);
        assert_eq!(String::from_utf8_lossy(&out), "read nothing\n");
    }

    #[test]
    fn a_guest_that_never_gets_ready_times_out() {
        let (outcome, out) = host_shell(
            "true",
            Ready::Marker("never printed"),
            Duration::from_millis(300),
        );
        let ExecOutcome::TimedOut {
            waiting_for,
            console,
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert!(waiting_for.contains("`never printed`"));
        assert_eq!(console, "booting\naerie-guest: ready");
        assert!(out.is_empty());
    }

    #[test]
    fn a_machine_that_stops_early_is_reported() {
        let mut guest = shell("echo 'aerie-guest: ready'; exit 3");
        let mut out = Vec::new();
        let outcome = run(&mut guest, &spec("true", Ready::Marker(MARKER)), &mut out).unwrap();
        assert_eq!(outcome.exit_code(), 3);
        assert!(
            matches!(outcome, ExecOutcome::Stopped { code: Some(3), .. }),
            "{outcome:?}"
        );
    }
}
