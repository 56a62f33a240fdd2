//! Talking to Aerie itself on the console, for `run --snapshot` and `run --restore`:
//! two pure state machines over the console's output and the time, in the style of
//! [`crate::exec_session`].
//!
//! - [`SnapshotTaker`] opens Aerie's console (Ctrl-A c), waits for its prompt, types
//!   `snapshot`, waits for the result line ([`SAVED`] and a number and ` saved`, or
//!   [`SNAPSHOT_FAILED`]), and after a success waits for the prompt again and types
//!   `quit` (Aerie powers the machine off).
//! - [`RestoreWatch`] waits, while Aerie boots with `aerie.restore`, for the line that
//!   says the guest resumes ([`RESTORED`] ... [`RESUMING`]) or for [`CANNOT_RESTORE`],
//!   and then types Enter for the restored shell.
//!
//! Lines are matched wherever they appear in a console line (a guest's stray escape
//! sequence may precede them); a line counts once its line end has arrived.

use aerie_hyp::console::{ConsoleKey, ESCAPE, PROMPT};

use crate::exec_session::{Failure, Reaction, find, keep_tail};

/// The start of the line with which Aerie reports a saved snapshot:
/// `Aerie: snapshot 7 saved in slot B: ...` (the number and ` saved` must follow).
pub const SAVED: &str = "Aerie: snapshot ";
/// What follows the snapshot's number in [`SAVED`]'s line.
pub const SAVED_WORD: &str = " saved";
/// The start of Aerie's progress lines while it saves (`Aerie: snapshot: memory ...`).
pub const PROGRESS: &str = "Aerie: snapshot: ";
/// The start of the line with which Aerie reports a failed snapshot; the reason follows.
pub const SNAPSHOT_FAILED: &str = "Aerie: snapshot failed: ";
/// The start of the line Aerie prints before it restores (`... <N> (slot A, ...)`).
pub const RESTORING: &str = "Aerie: restoring snapshot ";
/// The start of the line with which Aerie reports a restored snapshot.
pub const RESTORED: &str = "Aerie: restored snapshot ";
/// The end of [`RESTORED`]'s line: the guest runs again.
pub const RESUMING: &str = "resuming the guest";
/// The start of the line with which Aerie refuses to restore; the reason follows.
pub const CANNOT_RESTORE: &str = "Aerie: cannot restore: ";
/// Aerie's console command that takes a snapshot and then powers the machine off
/// before the guest runs again (so that it cannot change its disks after the
/// snapshot).
pub const SNAPSHOT_COMMAND: &str = "snapshot quit";
/// Enter at Aerie's prompt (a terminal in raw mode sends CR).
const ENTER: &str = "\r";

/// The keys that open Aerie's console: Ctrl-A, then `c`.
pub fn open_console_keys() -> String {
    [ESCAPE, ConsoleKey::Console.letter()]
        .map(char::from)
        .iter()
        .collect()
}

/// Where a [`SnapshotTaker`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPhase {
    /// Ctrl-A c was typed; waiting for Aerie's prompt.
    Opening,
    /// `snapshot quit` was typed; waiting for the result.
    Saving,
    /// The snapshot was saved (the machine powers off) or failed: nothing more to do.
    Done,
}

/// Takes a snapshot at Aerie's console, then powers the machine off.
#[derive(Debug, Clone)]
pub struct SnapshotTaker {
    phase: SnapshotPhase,
    /// Output not yet consumed.
    pending: Vec<u8>,
}

impl SnapshotTaker {
    /// Starts: the returned reaction types Ctrl-A c.
    pub fn start() -> (Self, Reaction) {
        let taker = Self {
            phase: SnapshotPhase::Opening,
            pending: Vec::new(),
        };
        let reaction = Reaction {
            typed: vec![open_console_keys()],
            ..Reaction::default()
        };
        (taker, reaction)
    }

    /// Where it is.
    pub fn phase(&self) -> SnapshotPhase {
        self.phase
    }

    /// What it is waiting for, for error messages.
    pub fn waiting_for(&self) -> String {
        match self.phase {
            SnapshotPhase::Opening => {
                format!("waiting for Aerie's console prompt `{PROMPT}` after Ctrl-A c")
            }
            SnapshotPhase::Saving => {
                format!("waiting for Aerie to save the snapshot (`{SAVED}N{SAVED_WORD}`)")
            }
            SnapshotPhase::Done => "waiting for the machine to power off".into(),
        }
    }

    /// Feeds console output and says what to do.
    pub fn step(&mut self, bytes: &[u8]) -> Reaction {
        let mut reaction = Reaction::default();
        self.pending.extend_from_slice(bytes);
        loop {
            let advanced = match self.phase {
                SnapshotPhase::Opening => {
                    self.await_prompt(&mut reaction, format!("{SNAPSHOT_COMMAND}{ENTER}"))
                }
                SnapshotPhase::Saving => self.await_result(&mut reaction),
                SnapshotPhase::Done => {
                    self.pending.clear();
                    false
                }
            };
            if !advanced {
                return reaction;
            }
        }
    }

    /// Waits for the prompt, then types `line` and moves on.
    fn await_prompt(&mut self, reaction: &mut Reaction, line: String) -> bool {
        let Some(at) = find(&self.pending, PROMPT.as_bytes()) else {
            keep_tail(&mut self.pending, PROMPT.len());
            return false;
        };
        self.pending.drain(..at + PROMPT.len());
        reaction.typed.push(line);
        self.phase = SnapshotPhase::Saving;
        true
    }

    /// Reads complete lines until the result line.
    fn await_result(&mut self, reaction: &mut Reaction) -> bool {
        while let Some(line) = take_line(&mut self.pending) {
            if let Some(reason) = after(&line, SNAPSHOT_FAILED) {
                reaction.failure = Some(Failure::Snapshot(reason.trim().to_string()));
                self.phase = SnapshotPhase::Done;
                return true;
            }
            if let Some(text) = from(&line, PROGRESS) {
                reaction.notices.push(text.to_string());
            } else if let Some(text) = saved_line(&line) {
                reaction.notices.push(text.to_string());
                reaction.stopping = true;
                self.phase = SnapshotPhase::Done;
                return true;
            }
        }
        false
    }
}

/// The part of `line` from [`SAVED`] on, if it says a snapshot was saved: [`SAVED`],
/// a decimal number, then [`SAVED_WORD`].
pub fn saved_line(line: &str) -> Option<&str> {
    let mut rest = line;
    while let Some(at) = rest.find(SAVED) {
        let candidate = &rest[at..];
        let number = &candidate[SAVED.len()..];
        let digits = number.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && number[digits..].starts_with(SAVED_WORD) {
            return Some(candidate.trim_end());
        }
        rest = &candidate[SAVED.len()..];
    }
    None
}

/// Where a [`RestoreWatch`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePhase {
    /// Waiting for Aerie to restore the snapshot.
    Waiting,
    /// The guest resumed; Enter was typed.
    Resumed,
    /// Aerie cannot restore.
    Refused,
}

/// Watches Aerie restore a snapshot.
#[derive(Debug, Clone)]
pub struct RestoreWatch {
    phase: RestorePhase,
    /// Whether [`RESTORED`] was seen (its line may end before [`RESUMING`]).
    restored: bool,
    /// Output not yet consumed.
    pending: Vec<u8>,
}

impl Default for RestoreWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RestoreWatch {
    /// A watch that has seen nothing yet.
    pub fn new() -> Self {
        Self {
            phase: RestorePhase::Waiting,
            restored: false,
            pending: Vec::new(),
        }
    }

    /// Where it is.
    pub fn phase(&self) -> RestorePhase {
        self.phase
    }

    /// What it is waiting for, for error messages.
    pub fn waiting_for(&self) -> String {
        format!("waiting for Aerie to restore the snapshot (`{RESTORED}N ...; {RESUMING}`)")
    }

    /// Feeds console output and says what to do. Once the guest resumed, the output
    /// that followed is left for [`RestoreWatch::take_rest`].
    pub fn step(&mut self, bytes: &[u8]) -> Reaction {
        let mut reaction = Reaction::default();
        if self.phase != RestorePhase::Waiting {
            self.pending.extend_from_slice(bytes);
            return reaction;
        }
        self.pending.extend_from_slice(bytes);
        while let Some(line) = take_line(&mut self.pending) {
            if let Some(reason) = after(&line, CANNOT_RESTORE) {
                reaction.failure = Some(Failure::Restore(reason.trim().to_string()));
                self.phase = RestorePhase::Refused;
                break;
            }
            if let Some(text) = from(&line, RESTORING) {
                reaction.notices.push(text.to_string());
            }
            if let Some(text) = from(&line, RESTORED) {
                reaction.notices.push(text.to_string());
                self.restored = true;
            }
            if self.restored && line.contains(RESUMING) {
                // The shell prints nothing until a key is typed: Enter wakes it.
                reaction.typed.push(ENTER.to_string());
                self.phase = RestorePhase::Resumed;
                break;
            }
        }
        reaction
    }

    /// The output after the line that said the guest resumes (the guest's).
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// The longest incomplete line kept: Aerie's lines are far shorter, and a guest that
/// prints without line ends must not make the buffer grow without bound.
const MAX_LINE: usize = 4096;

/// Removes and returns the first complete line of `pending` (without its CR LF or
/// LF), as text. Of an incomplete line, only the last [`MAX_LINE`] bytes are kept.
fn take_line(pending: &mut Vec<u8>) -> Option<String> {
    let Some(end) = pending.iter().position(|&b| b == b'\n') else {
        keep_tail(pending, MAX_LINE + 1);
        return None;
    };
    let line: Vec<u8> = pending.drain(..=end).collect();
    let text = String::from_utf8_lossy(&line);
    Some(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The part of `line` from `start` on, if `start` is in it.
fn from<'a>(line: &'a str, start: &str) -> Option<&'a str> {
    line.find(start).map(|at| line[at..].trim_end())
}

/// The part of `line` after `start`, if `start` is in it.
fn after<'a>(line: &'a str, start: &str) -> Option<&'a str> {
    line.find(start).map(|at| &line[at + start.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_keys_are_ctrl_a_c() {
        assert_eq!(open_console_keys(), "\u{1}c");
    }

    #[test]
    fn a_snapshot_is_taken_and_the_machine_powered_off() {
        let (mut taker, first) = SnapshotTaker::start();
        assert_eq!(first.typed, ["\u{1}c"]);
        assert_eq!(taker.phase(), SnapshotPhase::Opening);
        // The banner, then the prompt split across reads.
        let banner = b"\r\nAerie console: the guest runs on without input; type help, \
                       or resume to return.\r\naer";
        assert_eq!(taker.step(banner), Reaction::default());
        let reaction = taker.step(b"ie> ");
        assert_eq!(reaction.typed, ["snapshot quit\r"]);
        assert_eq!(taker.phase(), SnapshotPhase::Saving);
        assert!(taker.waiting_for().contains("save the snapshot"));
        // The echo of the typed command is not the result; progress is shown.
        let reaction = taker.step(
            b"snapshot quit\r\nAerie: snapshot: memory 64 MiB of 256 MiB\r\nAerie: snapshot 7 sa",
        );
        assert_eq!(
            reaction.notices,
            ["Aerie: snapshot: memory 64 MiB of 256 MiB"]
        );
        assert!(reaction.typed.is_empty());
        // The result line counts once it is complete; Aerie powers off by itself.
        let reaction = taker.step(b"ved in slot B: 12.3 MiB (3 vCPUs) in 0.84 s\r\n");
        assert_eq!(
            reaction.notices,
            ["Aerie: snapshot 7 saved in slot B: 12.3 MiB (3 vCPUs) in 0.84 s"]
        );
        assert!(reaction.typed.is_empty());
        assert!(reaction.stopping);
        assert_eq!(reaction.failure, None);
        assert_eq!(taker.phase(), SnapshotPhase::Done);
        assert_eq!(taker.step(b"Aerie: powering off\r\n"), Reaction::default());
    }

    #[test]
    fn a_failed_snapshot_is_reported_with_its_reason() {
        let (mut taker, _) = SnapshotTaker::start();
        taker.step(b"aerie> ");
        let reaction = taker.step(
            b"snapshot quit\r\nAerie: snapshot failed: the snapshot does not fit: a slot holds \
              100 sectors; use a larger snapshot disk\r\naerie> ",
        );
        assert_eq!(
            reaction.failure,
            Some(Failure::Snapshot(
                "the snapshot does not fit: a slot holds 100 sectors; use a larger \
                 snapshot disk"
                    .into()
            ))
        );
        assert!(reaction.typed.is_empty() && !reaction.stopping);
        assert_eq!(taker.phase(), SnapshotPhase::Done);
    }

    #[test]
    fn only_a_numbered_saved_line_counts() {
        assert_eq!(
            saved_line("\u{1b}[0mAerie: snapshot 3 saved in slot A  "),
            Some("Aerie: snapshot 3 saved in slot A")
        );
        assert_eq!(saved_line("Aerie: snapshot saved"), None);
        assert_eq!(saved_line("Aerie: snapshot: memory 1 MiB saved"), None);
        assert_eq!(saved_line("Aerie: snapshot 3 failed"), None);
        assert_eq!(saved_line("Aerie: snapshot 3saved"), None);
        assert_eq!(
            saved_line("Aerie: snapshot x Aerie: snapshot 4 saved"),
            Some("Aerie: snapshot 4 saved")
        );
        assert_eq!(saved_line("aerie> snapshot"), None);
    }

    #[test]
    fn endless_lines_do_not_pile_up() {
        let mut pending = vec![b'x'; 3 * MAX_LINE];
        assert_eq!(take_line(&mut pending), None);
        assert_eq!(pending.len(), MAX_LINE);
        pending.extend_from_slice(b"\r\nnext");
        assert_eq!(take_line(&mut pending).map(|l| l.len()), Some(MAX_LINE));
        assert_eq!(pending, b"next");
    }

    #[test]
    fn a_restore_ends_with_enter_for_the_shell() {
        let mut watch = RestoreWatch::new();
        let boot = b"Aerie 0.1.0: entered at EL2 on CPU MPIDR 0x0\r\n\
                     Aerie: restoring snapshot 7 (slot B, taken 2 s after boot)\r\n";
        let reaction = watch.step(boot);
        assert_eq!(
            reaction.notices,
            ["Aerie: restoring snapshot 7 (slot B, taken 2 s after boot)"]
        );
        assert!(reaction.typed.is_empty());
        assert_eq!(watch.phase(), RestorePhase::Waiting);
        assert!(watch.waiting_for().contains("restore the snapshot"));
        // Not complete without its line end.
        let reaction = watch.step(b"Aerie: restored snapshot 7 in 0.52 s; resuming the guest");
        assert!(reaction.typed.is_empty());
        let reaction = watch.step(b"\r\nguest bytes");
        assert_eq!(
            reaction.notices,
            ["Aerie: restored snapshot 7 in 0.52 s; resuming the guest"]
        );
        assert_eq!(reaction.typed, ["\r"]);
        assert_eq!(watch.phase(), RestorePhase::Resumed);
        watch.step(b" and more");
        assert_eq!(watch.take_rest(), b"guest bytes and more");
        assert!(watch.take_rest().is_empty());
    }

    #[test]
    fn resuming_may_come_on_a_later_line_but_not_before_the_restore() {
        let mut watch = RestoreWatch::new();
        assert!(watch.step(b"resuming the guest\n").typed.is_empty());
        watch.step(b"Aerie: restored snapshot 2 in 1.1 s\n");
        assert_eq!(watch.phase(), RestorePhase::Waiting);
        let reaction = watch.step(b"Aerie: resuming the guest\n");
        assert_eq!(reaction.typed, ["\r"]);
    }

    #[test]
    fn a_refused_restore_gives_aeries_reason() {
        let mut watch = RestoreWatch::new();
        let reaction = watch.step(
            b"Aerie: cannot restore: the snapshot needs 4 vCPUs; this machine has 2\r\n\
              Aerie: press Enter to boot the guest fresh instead, or Ctrl-A x to quit\r\n",
        );
        assert_eq!(
            reaction.failure,
            Some(Failure::Restore(
                "the snapshot needs 4 vCPUs; this machine has 2".into()
            ))
        );
        assert!(reaction.typed.is_empty());
        assert_eq!(watch.phase(), RestorePhase::Refused);
    }
}
