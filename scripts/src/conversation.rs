//! The whole console conversation of `cargo xtask run --exec CMD`, as a pure state
//! machine: with `--restore`, first wait for Aerie to resume the snapshot
//! ([`RestoreWatch`]); then run the command ([`Session`]); then either power the
//! guest off, or with `--snapshot` take a snapshot at Aerie's console and quit there
//! ([`SnapshotTaker`]).

use std::time::Duration;

use crate::aerie_console::{RestorePhase, RestoreWatch, SnapshotTaker};
use crate::exec_session::{Reaction, Ready, Session};

/// How the conversation ends once the command is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Type this in the guest's shell (a power-off command).
    PowerOff(String),
    /// Take a snapshot at Aerie's console, then `quit` there.
    Snapshot,
}

/// What the conversation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The shell command (may span lines).
    pub command: String,
    /// When to start typing on a booted guest.
    pub ready: Ready,
    /// Aerie restores a snapshot instead of booting the guest.
    pub restore: bool,
    /// How to end.
    pub finish: Finish,
}

/// Where the conversation is.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for Aerie to resume the snapshot.
    Restoring(RestoreWatch),
    /// Running the command.
    Running(Session),
    /// Taking the snapshot (the command's status is known).
    Snapshotting(SnapshotTaker),
    /// Told the machine to stop (or gave up): nothing more to do.
    Over,
}

/// The conversation: feed it the console's output with [`Conversation::step`] and do
/// what it says.
#[derive(Debug, Clone)]
pub struct Conversation {
    stage: Stage,
    command: String,
    nonce: String,
    finish: Finish,
    /// When the current stage's time budget started: the start of the run, or the
    /// moment the snapshot was asked for.
    budget_start: Duration,
}

impl Conversation {
    /// A conversation that has seen nothing yet; `nonce` makes the command's markers
    /// unique (see [`Session::new`]).
    pub fn new(plan: Plan, nonce: &str) -> Self {
        let stage = if plan.restore {
            Stage::Restoring(RestoreWatch::new())
        } else {
            let session = Session::new(&plan.command, plan.ready, nonce);
            Stage::Running(tidy_for(session, &plan.finish))
        };
        Self {
            stage,
            command: plan.command,
            nonce: nonce.to_string(),
            finish: plan.finish,
            budget_start: Duration::ZERO,
        }
    }

    /// When the time budget of what is going on now started: the run's `--timeout`
    /// counts from here. Booting (or restoring) and the command share one budget from
    /// the start; the snapshot, which may take long for a big guest, gets its own.
    pub fn budget_start(&self) -> Duration {
        self.budget_start
    }

    /// What the conversation is waiting for, for error messages.
    pub fn waiting_for(&self) -> String {
        match &self.stage {
            Stage::Restoring(watch) => watch.waiting_for(),
            Stage::Running(session) => session.waiting_for(),
            Stage::Snapshotting(taker) => taker.waiting_for(),
            Stage::Over => "waiting for the machine to power off".into(),
        }
    }

    /// Feeds console output that arrived (possibly none) at time `now` since the
    /// start, and says what to do.
    pub fn step(&mut self, bytes: &[u8], now: Duration) -> Reaction {
        let mut reaction = Reaction::default();
        let mut bytes = bytes.to_vec();
        loop {
            let (step, next) = match &mut self.stage {
                Stage::Restoring(watch) => {
                    let step = watch.step(&bytes);
                    let resumed = watch.phase() == RestorePhase::Resumed;
                    (step, resumed.then(|| watch.take_rest()))
                }
                Stage::Running(session) => {
                    let step = session.step(&bytes, now);
                    (step, None)
                }
                Stage::Snapshotting(taker) => (taker.step(&bytes), None),
                Stage::Over => (Reaction::default(), None),
            };
            let status = step.status;
            let failed = step.failure.is_some();
            let stopping = step.stopping;
            merge(&mut reaction, step);
            if failed || stopping {
                self.stage = Stage::Over;
                return reaction;
            }
            if let Some(rest) = next {
                // Restored: the guest's shell, woken by Enter, gets the console once
                // it has been quiet for a moment.
                let session = Session::new(&self.command, Ready::Quiet, &self.nonce);
                self.stage = Stage::Running(tidy_for(session.quiet_since(now), &self.finish));
                bytes = rest;
                continue;
            }
            if status.is_some() {
                self.finish(now, &mut reaction);
            }
            return reaction;
        }
    }

    /// The command is done: power off, or start the snapshot.
    fn finish(&mut self, now: Duration, reaction: &mut Reaction) {
        match &self.finish {
            Finish::PowerOff(command) => {
                reaction.typed.push(format!("{command}\n"));
                reaction.stopping = true;
                self.stage = Stage::Over;
            }
            Finish::Snapshot => {
                let (taker, step) = SnapshotTaker::start();
                merge(reaction, step);
                self.budget_start = now;
                self.stage = Stage::Snapshotting(taker);
            }
        }
    }
}

/// A shell that is snapshotted after the command gets its echo and prompts back
/// first, so that it behaves as usual when restored.
fn tidy_for(session: Session, finish: &Finish) -> Session {
    match finish {
        Finish::Snapshot => session.tidy_afterwards(),
        Finish::PowerOff(_) => session,
    }
}

/// Adds `more` to `reaction`.
fn merge(reaction: &mut Reaction, more: Reaction) {
    reaction.typed.extend(more.typed);
    reaction.output.extend(more.output);
    reaction.notices.extend(more.notices);
    reaction.status = reaction.status.or(more.status);
    reaction.stopping |= more.stopping;
    reaction.failure = reaction.failure.take().or(more.failure);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec_session::{Failure, QUIET_PERIOD};

    const MARKER: &str = "aerie-guest: ready";

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn plan(restore: bool, finish: Finish) -> Plan {
        Plan {
            command: "cat /tmp/v".into(),
            ready: Ready::Marker(MARKER),
            restore,
            finish,
        }
    }

    /// The answer to the line that turns the echo and prompts back on.
    const TIDY: &[u8] = b"AERIE-EXEC-n-TIDY\r\n";

    /// Runs the command of a restored guest to its end marker with status 0 (and, if
    /// `tidy`, through the tidying); returns the reaction to the last answer.
    fn run_command(conversation: &mut Conversation, start: f64, tidy: bool) -> Reaction {
        let probe = conversation.step(&[], secs(start));
        assert_eq!(probe.typed.len(), 1, "{probe:?}");
        let command = conversation.step(b"AERIE-EXEC-n-BEGIN-1\r\n", secs(start + 0.1));
        assert!(command.typed[0].contains("cat /tmp/v"));
        let mut end = conversation.step(b"42\r\nAERIE-EXEC-n-END-0\r\n", secs(start + 0.2));
        assert_eq!(end.output, b"42\n");
        if tidy {
            assert_eq!(end.status, None);
            assert!(end.typed[0].starts_with("stty echo"), "{end:?}");
            end = conversation.step(TIDY, secs(start + 0.3));
        }
        assert_eq!(end.status, Some(0));
        end
    }

    #[test]
    fn a_plain_exec_powers_off_after_the_command() {
        let mut conversation =
            Conversation::new(plan(false, Finish::PowerOff("poweroff -f".into())), "n");
        assert!(conversation.waiting_for().contains(MARKER));
        conversation.step(b"aerie-guest: ready\r\n", secs(1.0));
        let command = conversation.step(b"AERIE-EXEC-n-BEGIN-1\r\n", secs(1.1));
        assert_eq!(command.typed.len(), 1);
        let end = conversation.step(b"42\r\nAERIE-EXEC-n-END-3\r\n", secs(1.2));
        assert_eq!(end.status, Some(3));
        assert_eq!(end.typed, ["poweroff -f\n"]);
        assert!(end.stopping);
        assert_eq!(conversation.budget_start(), Duration::ZERO);
        assert_eq!(
            conversation.waiting_for(),
            "waiting for the machine to power off"
        );
        assert_eq!(
            conversation.step(b"reboot: Power down\r\n", secs(2.0)),
            Reaction::default()
        );
    }

    #[test]
    fn a_snapshot_follows_the_command() {
        let mut conversation = Conversation::new(plan(false, Finish::Snapshot), "n");
        conversation.step(b"aerie-guest: ready\r\n", secs(1.0));
        conversation.step(b"AERIE-EXEC-n-BEGIN-1\r\n", secs(1.1));
        // The shell gets its echo and prompts back before it is saved.
        let end = conversation.step(b"42\r\nAERIE-EXEC-n-END-0\r\n", secs(4.0));
        assert_eq!(end.status, None);
        assert_eq!(end.typed.len(), 1);
        assert!(
            conversation
                .waiting_for()
                .contains("echo and prompt back on")
        );
        let end = conversation.step(TIDY, secs(5.0));
        assert_eq!(end.status, Some(0));
        assert_eq!(end.typed, ["\u{1}c"]);
        assert!(!end.stopping);
        // The snapshot has a time budget of its own.
        assert_eq!(conversation.budget_start(), secs(5.0));
        assert!(conversation.waiting_for().contains("aerie> "));
        let saving = conversation.step(b"\r\nAerie console: ...\r\naerie> ", secs(5.1));
        assert_eq!(saving.typed, ["snapshot quit\r"]);
        let saved = conversation.step(
            b"snapshot quit\r\nAerie: snapshot 1 saved in slot A: 3.1 MiB in 0.2 s\r\n",
            secs(9.0),
        );
        assert_eq!(
            saved.notices,
            ["Aerie: snapshot 1 saved in slot A: 3.1 MiB in 0.2 s"]
        );
        assert!(saved.typed.is_empty(), "Aerie powers off by itself");
        assert!(saved.stopping);
        assert_eq!(saved.status, None, "the status is reported once");
        assert_eq!(
            conversation.waiting_for(),
            "waiting for the machine to power off"
        );
    }

    #[test]
    fn a_failed_snapshot_ends_the_conversation() {
        let mut conversation = Conversation::new(plan(false, Finish::Snapshot), "n");
        conversation.step(b"aerie-guest: ready\r\nAERIE-EXEC-n-BEGIN-1\r\n", secs(1.0));
        conversation.step(b"AERIE-EXEC-n-END-0\r\n", secs(1.0));
        conversation.step(TIDY, secs(1.0));
        conversation.step(b"aerie> ", secs(1.1));
        let failed = conversation.step(b"Aerie: snapshot failed: disk I/O error\r\n", secs(1.2));
        assert_eq!(
            failed.failure,
            Some(Failure::Snapshot("disk I/O error".into()))
        );
        assert!(failed.typed.is_empty());
    }

    #[test]
    fn a_restore_runs_the_command_without_a_boot() {
        let mut conversation =
            Conversation::new(plan(true, Finish::PowerOff("poweroff -f".into())), "n");
        assert!(conversation.waiting_for().contains("restore the snapshot"));
        // No boot banner and no ready marker: the restore line is what counts.
        let quiet = conversation.step(b"Aerie 0.1.0: entered at EL2\r\n", secs(0.5));
        assert_eq!(quiet, Reaction::default());
        let resumed = conversation.step(
            b"Aerie: restored snapshot 1 in 0.5 s; resuming the guest\r\n",
            secs(2.0),
        );
        assert_eq!(resumed.typed, ["\r"]);
        assert_eq!(resumed.notices.len(), 1);
        // The shell is probed once the console has been quiet since the restore.
        assert!(conversation.step(b"\r\n/ # ", secs(2.1)).typed.is_empty());
        assert!(
            conversation
                .step(&[], secs(2.1) + QUIET_PERIOD / 2)
                .typed
                .is_empty()
        );
        let end = run_command(&mut conversation, 2.1 + QUIET_PERIOD.as_secs_f64(), false);
        assert_eq!(end.typed, ["poweroff -f\n"]);
    }

    #[test]
    fn restore_run_and_snapshot_again() {
        let mut conversation = Conversation::new(plan(true, Finish::Snapshot), "n");
        // The guest's output right after the resume line reaches the session.
        let resumed = conversation.step(
            b"Aerie: restored snapshot 4 in 0.5 s; resuming the guest\r\nstray",
            secs(1.0),
        );
        assert_eq!(resumed.typed, ["\r"]);
        let end = run_command(&mut conversation, 1.0 + QUIET_PERIOD.as_secs_f64(), true);
        assert_eq!(end.typed, ["\u{1}c"]);
    }

    #[test]
    fn a_refused_restore_ends_the_conversation() {
        let mut conversation = Conversation::new(plan(true, Finish::Snapshot), "n");
        let refused = conversation.step(
            b"Aerie: cannot restore: snapshot slot A: chunk 3 (at byte 4096 of the data \
              area): payload checksum mismatch\r\n",
            secs(1.0),
        );
        assert_eq!(
            refused.failure,
            Some(Failure::Restore(
                "snapshot slot A: chunk 3 (at byte 4096 of the data area): payload \
                 checksum mismatch"
                    .into()
            ))
        );
        assert!(refused.typed.is_empty());
        assert_eq!(
            conversation.step(b"aerie-guest: ready\r\n", secs(2.0)),
            Reaction::default()
        );
    }
}
