//! The conversation behind `cargo xtask run --exec CMD` (see [`crate::exec`]): a pure
//! state machine over the console's output and the time, which says what to type
//! and which bytes are the command's output.
//!
//! The conversation:
//!
//! 1. Wait until the shell is likely up: the default guest prints
//!    [`READY_MARKER`](crate::initramfs::READY_MARKER); for other guests, until the
//!    console has been quiet for a moment.
//! 2. Type a *probe*: `stty -echo; PS1=; PS2=; echo <nonce>''-BEGIN-<n>`. It turns
//!    off the terminal's echo and the prompts (keeping the prompts in `AERIE_PS1` and
//!    `AERIE_PS2`), so that what follows comes back without the typed text. Its answer is recognised by the marker with the quotes
//!    gone, which the echo of the typed line cannot contain. If no answer comes, a new
//!    probe (`n + 1`) is typed every [`PROBE_INTERVAL`]; only the answer to the
//!    latest counts, so nothing typed earlier is still waiting in the shell.
//! 3. Type the command in a subshell with its input from `/dev/null`, followed by
//!    `echo <nonce>''-END-$?`. Everything between the probe's answer and the end
//!    marker is the command's output (with the terminal's CR LF turned back into LF).
//! 4. Only when asked ([`Session::tidy_afterwards`], before a snapshot): type
//!    `stty echo; PS1=$AERIE_PS1; PS2=$AERIE_PS2; echo <nonce>''-TIDY` and wait for
//!    its marker, so that the saved shell echoes and prompts again when restored.
//! 5. Report the status; what follows (power-off, or a snapshot first) is
//!    [`crate::conversation`]'s business.

use std::time::Duration;

/// How often a probe is typed again while the shell does not answer.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long a console must stay quiet before a guest without a ready marker is
/// probed.
pub const QUIET_PERIOD: Duration = Duration::from_millis(1500);

/// What tells the driver that the guest's shell is (probably) up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The guest prints this text just before its shell starts.
    Marker(&'static str),
    /// Nothing known: wait for [`QUIET_PERIOD`] of silence.
    Quiet,
}

/// What [`Session::step`] (and the other console conversations) ask the driver to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Text to type on the console.
    pub typed: Vec<String>,
    /// Command output to pass on.
    pub output: Vec<u8>,
    /// The command finished with this status (reported once).
    pub status: Option<u8>,
    /// Lines of Aerie's to show the user (snapshot saved, snapshot restored).
    pub notices: Vec<String>,
    /// The machine was told to power off: from now on it should stop by itself.
    pub stopping: bool,
    /// The conversation cannot go on: stop QEMU and report this.
    pub failure: Option<Failure>,
}

/// Why a console conversation gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Aerie could not restore the snapshot; its reason.
    Restore(String),
    /// Aerie could not take the snapshot; its reason.
    Snapshot(String),
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the ready marker or for quiet.
    Booting,
    /// A probe was typed; waiting for its answer.
    Probing,
    /// The command was typed; passing its output on until the end marker.
    Running,
    /// The command finished with this status; the line that turns the echo and the
    /// prompts back on was typed.
    Tidying(u8),
    /// The command finished with this status.
    Done(u8),
}

/// The console conversation, as a pure state machine over console output and time.
#[derive(Debug, Clone)]
pub struct Session {
    nonce: String,
    command: String,
    ready: Ready,
    /// Turn the echo and the prompts back on after the command.
    tidy: bool,
    phase: Phase,
    /// Output not yet consumed.
    pending: Vec<u8>,
    /// The number of the latest probe.
    probe: u32,
    /// When the latest probe was typed.
    probed_at: Duration,
    /// When output last arrived.
    last_output: Duration,
}

impl Session {
    /// A conversation that has seen nothing yet: it will run `command` once `ready`
    /// says so, and report its status. `nonce` makes its markers unique (letters,
    /// digits and `-` only).
    pub fn new(command: &str, ready: Ready, nonce: &str) -> Self {
        Self {
            nonce: format!("AERIE-EXEC-{nonce}"),
            command: command.to_string(),
            ready,
            tidy: false,
            phase: Phase::Booting,
            pending: Vec::new(),
            probe: 0,
            probed_at: Duration::ZERO,
            last_output: Duration::ZERO,
        }
    }

    /// Starts the [`Ready::Quiet`] clock at `now` instead of at time zero: for a
    /// session that begins mid-run (after a restore), the console must be quiet for
    /// [`QUIET_PERIOD`] from then on.
    pub fn quiet_since(mut self, now: Duration) -> Self {
        self.last_output = now;
        self
    }

    /// After the command, turns the terminal's echo and the shell's prompts back on
    /// (and waits until that is done) before reporting the status: for a guest that
    /// is snapshotted next, whose shell should behave as usual when restored.
    pub fn tidy_afterwards(mut self) -> Self {
        self.tidy = true;
        self
    }

    /// Where the conversation is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What the driver is waiting for, for error messages.
    pub fn waiting_for(&self) -> String {
        match (self.phase, self.ready) {
            (Phase::Booting, Ready::Marker(marker)) => {
                format!("waiting for the guest to print `{marker}`")
            }
            (Phase::Booting, Ready::Quiet) => "waiting for the guest's console to go quiet".into(),
            (Phase::Probing, _) => format!(
                "waiting for the guest's shell to answer (typed {} probe{})",
                self.probe,
                if self.probe == 1 { "" } else { "s" }
            ),
            (Phase::Running, _) => format!("waiting for `{}` to finish", self.command),
            (Phase::Tidying(_), _) => {
                "waiting for the guest's shell to turn its echo and prompt back on".into()
            }
            (Phase::Done(_), _) => format!("after `{}` finished", self.command),
        }
    }

    /// Feeds console output that arrived (possibly none) at time `now` since the
    /// start, and says what to do.
    pub fn step(&mut self, bytes: &[u8], now: Duration) -> Reaction {
        let mut reaction = Reaction::default();
        if !bytes.is_empty() {
            self.pending.extend_from_slice(bytes);
            self.last_output = now;
        }
        loop {
            let advanced = match self.phase {
                Phase::Booting => self.boot(now, &mut reaction),
                Phase::Probing => self.sync(now, &mut reaction),
                Phase::Running => self.collect(&mut reaction),
                Phase::Tidying(status) => self.tidied(status, &mut reaction),
                Phase::Done(_) => {
                    self.pending.clear();
                    false
                }
            };
            if !advanced {
                return reaction;
            }
        }
    }

    /// The probe's typed text. The quotes keep the typed line from containing the
    /// marker. The prompts are kept the first time only: a later probe, or a run on a
    /// restored shell, finds them empty.
    fn probe_line(&self) -> String {
        format!(
            "stty -echo 2>/dev/null; [ -n \"${{AERIE_PS1+x}}\" ] || \
             {{ AERIE_PS1=$PS1; AERIE_PS2=$PS2; }}; PS1=; PS2=; echo {}''-BEGIN-{}\n",
            self.nonce, self.probe
        )
    }

    /// The typed text that turns the echo and the prompts back on.
    fn tidy_line(&self) -> String {
        format!(
            "stty echo 2>/dev/null; PS1=$AERIE_PS1; PS2=$AERIE_PS2; echo {}''-TIDY\n",
            self.nonce
        )
    }

    /// The command's typed text.
    fn command_lines(&self) -> String {
        format!(
            "(\n{}\n) </dev/null; echo {}''-END-$?\n",
            self.command.trim_end_matches('\n'),
            self.nonce
        )
    }

    fn type_probe(&mut self, now: Duration, reaction: &mut Reaction) {
        self.probe += 1;
        self.probed_at = now;
        reaction.typed.push(self.probe_line());
    }

    fn boot(&mut self, now: Duration, reaction: &mut Reaction) -> bool {
        let ready = match self.ready {
            Ready::Marker(marker) => match find(&self.pending, marker.as_bytes()) {
                Some(at) => {
                    self.pending.drain(..at + marker.len());
                    true
                }
                None => {
                    keep_tail(&mut self.pending, marker.len());
                    false
                }
            },
            Ready::Quiet => {
                self.pending.clear();
                now.saturating_sub(self.last_output) >= QUIET_PERIOD
            }
        };
        if ready {
            self.phase = Phase::Probing;
            self.type_probe(now, reaction);
        }
        ready
    }

    fn sync(&mut self, now: Duration, reaction: &mut Reaction) -> bool {
        let marker = format!("{}-BEGIN-{}", self.nonce, self.probe);
        match find_line(&self.pending, marker.as_bytes()) {
            Some((_, line_end)) => {
                self.pending.drain(..line_end);
                self.phase = Phase::Running;
                reaction.typed.push(self.command_lines());
                true
            }
            None => {
                keep_tail(&mut self.pending, marker.len() + 2);
                if now.saturating_sub(self.probed_at) >= PROBE_INTERVAL {
                    self.type_probe(now, reaction);
                }
                false
            }
        }
    }

    fn collect(&mut self, reaction: &mut Reaction) -> bool {
        let marker = format!("{}-END-", self.nonce);
        let Some(at) = find(&self.pending, marker.as_bytes()) else {
            // Everything that cannot be the start of the marker (or the CR of a
            // CR LF) is output.
            let mut safe = self.pending.len() - marker_start_len(&self.pending, marker.as_bytes());
            if safe > 0 && self.pending[safe - 1] == b'\r' {
                safe -= 1;
            }
            reaction
                .output
                .extend(crlf_to_lf(&self.pending.drain(..safe).collect::<Vec<_>>()));
            return false;
        };
        let digits_start = at + marker.len();
        let Some(line_end) = self.pending[digits_start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        else {
            // The status is not complete yet; pass on what precedes the marker.
            let before: Vec<u8> = self.pending.drain(..at).collect();
            reaction.output.extend(crlf_to_lf(&before));
            return false;
        };
        let digits = &self.pending[digits_start..digits_start + line_end];
        // A shell's `$?` is 0..=255; anything else means the marker was mangled.
        let status = std::str::from_utf8(digits)
            .ok()
            .and_then(|text| text.trim().parse::<u8>().ok())
            .unwrap_or(u8::MAX);
        let before: Vec<u8> = self.pending[..at].to_vec();
        reaction.output.extend(crlf_to_lf(&before));
        self.pending.clear();
        if self.tidy {
            self.phase = Phase::Tidying(status);
            reaction.typed.push(self.tidy_line());
        } else {
            self.phase = Phase::Done(status);
            reaction.status = Some(status);
        }
        false
    }

    fn tidied(&mut self, status: u8, reaction: &mut Reaction) -> bool {
        let marker = format!("{}-TIDY", self.nonce);
        match find_line(&self.pending, marker.as_bytes()) {
            Some(_) => {
                self.pending.clear();
                self.phase = Phase::Done(status);
                reaction.status = Some(status);
            }
            None => keep_tail(&mut self.pending, marker.len() + 2),
        }
        false
    }
}

/// The first position of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The length of the longest end of `haystack` that is a proper beginning of
/// `marker`: the bytes that may turn out to be the marker once more arrives.
fn marker_start_len(haystack: &[u8], marker: &[u8]) -> usize {
    (1..marker.len())
        .rev()
        .find(|&len| haystack.ends_with(&marker[..len]))
        .unwrap_or(0)
}

/// Finds `marker` followed directly by a line end (CR or LF); returns its position
/// and the index just after the line end (after the LF of a CR LF). `None` also when
/// the marker is there but its line end has not arrived.
fn find_line(haystack: &[u8], marker: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(found) = find(&haystack[from..], marker) {
        let at = from + found;
        let after = at + marker.len();
        match haystack.get(after) {
            Some(b'\n') => return Some((at, after + 1)),
            Some(b'\r') => {
                return match haystack.get(after + 1) {
                    Some(b'\n') => Some((at, after + 2)),
                    Some(_) => Some((at, after + 1)),
                    None => None,
                };
            }
            // Something else follows (`-BEGIN-1` inside `-BEGIN-12`): keep looking.
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

/// Drops all but the last `len - 1` bytes: a marker of `len` bytes cannot start
/// earlier without having been found.
pub(crate) fn keep_tail(bytes: &mut Vec<u8>, len: usize) {
    let keep = len.saturating_sub(1);
    if bytes.len() > keep {
        bytes.drain(..bytes.len() - keep);
    }
}

/// Turns the terminal's CR LF line ends back into LF.
fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'\r' && bytes.get(index + 1) == Some(&b'\n') {
            continue;
        }
        out.push(byte);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "aerie-guest: ready";

    /// The first probe with nonce `n1`.
    const PROBE_N1_1: &str = "stty -echo 2>/dev/null; [ -n \"${AERIE_PS1+x}\" ] || \
                              { AERIE_PS1=$PS1; AERIE_PS2=$PS2; }; PS1=; PS2=; \
                              echo AERIE-EXEC-n1''-BEGIN-1\n";

    fn start(command: &str, ready: Ready, nonce: &str) -> Session {
        Session::new(command, ready, nonce)
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_whole_conversation_with_the_default_guest() {
        let mut session = start("echo hi", Ready::Marker(MARKER), "n1");
        // Boot messages: nothing to type yet.
        assert_eq!(
            session.step(b"[ 0.0] Booting Linux\r\naerie-gu", secs(1.0)),
            Reaction::default()
        );
        // The marker, split across reads.
        let reaction = session.step(b"est: ready\r\n\r\n/ # \x1b[6n", secs(2.0));
        assert_eq!(reaction.typed, [PROBE_N1_1]);
        assert_eq!(session.phase(), Phase::Probing);
        // The shell echoes the typed probe (quotes included), then answers.
        let echoed = format!("{}\r\n", PROBE_N1_1.trim_end());
        let echoed = echoed.as_bytes();
        assert_eq!(session.step(echoed, secs(2.1)), Reaction::default());
        let reaction = session.step(b"AERIE-EXEC-n1-BEGIN-1\r\n", secs(2.2));
        assert_eq!(
            reaction.typed,
            ["(\necho hi\n) </dev/null; echo AERIE-EXEC-n1''-END-$?\n"]
        );
        assert_eq!(session.phase(), Phase::Running);
        // Output comes through with LF line ends; a possible marker start is held back.
        let reaction = session.step(b"hi\r\nAERIE-EX", secs(2.3));
        assert_eq!(reaction.output, b"hi\n");
        let reaction = session.step(b"EC-n1-END-0\r\n", secs(2.4));
        assert_eq!(reaction.output, b"");
        assert_eq!(reaction.status, Some(0));
        assert!(reaction.typed.is_empty());
        assert_eq!(session.phase(), Phase::Done(0));
        // Whatever follows is ignored.
        assert_eq!(
            session.step(b"[ 9.9] reboot: Power down\r\n", secs(3.0)),
            Reaction::default()
        );
    }

    #[test]
    fn the_echo_and_prompts_come_back_when_asked() {
        let mut session = start("true", Ready::Marker(MARKER), "n").tidy_afterwards();
        session.step(b"aerie-guest: ready\nAERIE-EXEC-n-BEGIN-1\n", secs(1.0));
        let reaction = session.step(b"AERIE-EXEC-n-END-4\r\n", secs(1.1));
        assert_eq!(reaction.status, None, "reported once the shell is tidy");
        assert_eq!(
            reaction.typed,
            ["stty echo 2>/dev/null; PS1=$AERIE_PS1; PS2=$AERIE_PS2; echo AERIE-EXEC-n''-TIDY\n"]
        );
        assert_eq!(session.phase(), Phase::Tidying(4));
        assert!(session.waiting_for().contains("echo and prompt back on"));
        // The echo of the typed line (if any) does not count; the answer does.
        let echo =
            b"stty echo 2>/dev/null; PS1=$AERIE_PS1; PS2=$AERIE_PS2; echo AERIE-EXEC-n''-TIDY\r\n";
        assert_eq!(session.step(echo, secs(1.2)).status, None);
        let reaction = session.step(b"AERIE-EXEC-n-TID", secs(1.3));
        assert_eq!(reaction.status, None);
        let reaction = session.step(b"Y\r\n/ # ", secs(1.4));
        assert_eq!(reaction.status, Some(4));
        assert!(reaction.typed.is_empty() && reaction.output.is_empty());
        assert_eq!(session.phase(), Phase::Done(4));
    }

    #[test]
    fn output_without_a_final_newline_and_a_nonzero_status() {
        let mut session = start("printf x; exit 7", Ready::Marker(MARKER), "n");
        session.step(b"aerie-guest: ready\n", secs(1.0));
        session.step(b"AERIE-EXEC-n-BEGIN-1\n", secs(1.1));
        let reaction = session.step(b"xAERIE-EXEC-n-END-7", secs(1.2));
        assert_eq!(reaction.output, b"x");
        assert_eq!(
            reaction.status, None,
            "the status is complete at its line end"
        );
        let reaction = session.step(b"\r\n", secs(1.3));
        assert_eq!(reaction.status, Some(7));
        let mut session = start("exit 255", Ready::Marker(MARKER), "n");
        session.step(b"aerie-guest: ready\nAERIE-EXEC-n-BEGIN-1\n", secs(1.0));
        let reaction = session.step(b"AERIE-EXEC-n-END-255\n", secs(1.1));
        assert_eq!(reaction.status, Some(255));
    }

    #[test]
    fn output_is_streamed_as_it_comes() {
        let mut session = start("yes | head", Ready::Marker(MARKER), "n");
        session.step(b"aerie-guest: ready\nAERIE-EXEC-n-BEGIN-1\r\n", secs(1.0));
        let mut all = Vec::new();
        for (index, chunk) in [&b"line one\r"[..], b"\nline two\r\n", b"line three\r\n"]
            .into_iter()
            .enumerate()
        {
            all.extend(session.step(chunk, secs(2.0 + index as f64)).output);
        }
        // Held back until no marker can start there.
        let reaction = session.step(b"AERIE-EXEC-n-END-0\n", secs(9.0));
        all.extend(reaction.output);
        assert_eq!(all, b"line one\nline two\nline three\n");
        assert_eq!(reaction.status, Some(0));
    }

    #[test]
    fn probes_repeat_until_the_latest_is_answered() {
        let mut session = start("true", Ready::Marker(MARKER), "n");
        let first = session.step(b"aerie-guest: ready\n", secs(1.0));
        assert_eq!(first.typed.len(), 1);
        assert!(session.step(&[], secs(2.9)).typed.is_empty());
        let second = session.step(&[], secs(3.0));
        assert_eq!(
            second.typed,
            [
                "stty -echo 2>/dev/null; [ -n \"${AERIE_PS1+x}\" ] || { AERIE_PS1=$PS1; \
                 AERIE_PS2=$PS2; }; PS1=; PS2=; echo AERIE-EXEC-n''-BEGIN-2\n"
            ]
        );
        assert!(session.waiting_for().contains("typed 2 probes"));
        // The answer to the first probe does not count: the second is still queued.
        let reaction = session.step(b"AERIE-EXEC-n-BEGIN-1\r\n", secs(3.1));
        assert!(reaction.typed.is_empty());
        assert_eq!(session.phase(), Phase::Probing);
        let reaction = session.step(b"AERIE-EXEC-n-BEGIN-2\r\n", secs(3.2));
        assert_eq!(reaction.typed.len(), 1);
        assert_eq!(session.phase(), Phase::Running);
    }

    #[test]
    fn a_probe_number_is_not_mistaken_for_a_longer_one() {
        assert_eq!(find_line(b"X-BEGIN-12\r\n", b"X-BEGIN-1"), None);
        assert_eq!(
            find_line(b"X-BEGIN-12\r\nX-BEGIN-1\r\nrest", b"X-BEGIN-1"),
            Some((12, 23))
        );
        assert_eq!(find_line(b"X-BEGIN-1\n", b"X-BEGIN-1"), Some((0, 10)));
        // The line end has not arrived yet.
        assert_eq!(find_line(b"X-BEGIN-1", b"X-BEGIN-1"), None);
        assert_eq!(find_line(b"X-BEGIN-1\r", b"X-BEGIN-1"), None);
    }

    #[test]
    fn guests_without_a_marker_are_probed_after_a_quiet_period() {
        let mut session = start("true", Ready::Quiet, "n");
        assert!(session.step(b"booting...\n", secs(1.0)).typed.is_empty());
        assert!(session.step(&[], secs(2.4)).typed.is_empty());
        assert!(session.step(b"more\n", secs(2.4)).typed.is_empty());
        assert!(session.step(&[], secs(3.8)).typed.is_empty());
        assert_eq!(session.step(&[], secs(3.9)).typed.len(), 1);
        assert_eq!(session.phase(), Phase::Probing);
    }

    #[test]
    fn a_session_begun_late_waits_for_quiet_from_its_start() {
        let mut session = start("true", Ready::Quiet, "n").quiet_since(secs(10.0));
        assert!(session.step(&[], secs(11.0)).typed.is_empty());
        assert_eq!(session.step(&[], secs(11.5)).typed.len(), 1);
    }

    #[test]
    fn multi_line_commands_are_typed_whole() {
        let session = start("for i in 1 2\ndo echo $i\ndone\n", Ready::Quiet, "n");
        assert_eq!(
            session.command_lines(),
            "(\nfor i in 1 2\ndo echo $i\ndone\n) </dev/null; echo AERIE-EXEC-n''-END-$?\n"
        );
    }

    #[test]
    fn the_typed_text_never_contains_its_own_markers() {
        let mut session = start("true", Ready::Quiet, "n");
        session.probe = 1;
        assert!(!session.probe_line().contains("AERIE-EXEC-n-BEGIN"));
        assert!(!session.command_lines().contains("AERIE-EXEC-n-END"));
        assert!(!session.tidy_line().contains("AERIE-EXEC-n-TIDY"));
    }

    #[test]
    fn only_a_possible_marker_start_is_held_back() {
        assert_eq!(marker_start_len(b"hi\r\nAERIE-EX", b"AERIE-EXEC-"), 8);
        assert_eq!(marker_start_len(b"hi\r\nA", b"AERIE-EXEC-"), 1);
        assert_eq!(marker_start_len(b"hi\r\n", b"AERIE-EXEC-"), 0);
        assert_eq!(marker_start_len(b"AERIE-EXEC", b"AERIE-EXEC-"), 10);
        assert_eq!(marker_start_len(b"", b"AERIE-EXEC-"), 0);
    }

    #[test]
    fn line_ends_and_tails() {
        assert_eq!(crlf_to_lf(b"a\r\nb\rc\n\r\n"), b"a\nb\rc\n\n");
        let mut bytes = b"0123456789".to_vec();
        keep_tail(&mut bytes, 4);
        assert_eq!(bytes, b"789");
        keep_tail(&mut bytes, 10);
        assert_eq!(bytes, b"789");
    }
}
