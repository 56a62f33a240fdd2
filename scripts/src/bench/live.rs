//! A QEMU run driven step by step, for runs with several stages (the snapshot
//! rows: boot, fill memory, snapshot; or restore, then reach the shell): start QEMU
//! with the console on pipes, wait for a line or a text, type, and note when each
//! thing arrived. Every wait has a deadline, counted from QEMU's start.
//!
//! [`super::console`] serves the one-stage runs; this is its sequential sibling and
//! types the same way (bursts of a few bytes: the guest's UART has a small FIFO and
//! no flow control under Aerie).

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::console::read_in_background;
use crate::error::{Context, Result};

/// Typed text goes out in bursts of this many bytes, [`TYPING_PAUSE`] apart.
const TYPING_BURST: usize = 8;
/// The pause between bursts.
const TYPING_PAUSE: Duration = Duration::from_millis(10);

/// Why a wait ended without what it waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    TimedOut,
    /// QEMU exited (its status, if it has one).
    Exited(Option<i32>),
}

/// A running QEMU and what its console printed so far.
#[derive(Debug)]
pub struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    console: Receiver<(Instant, Vec<u8>)>,
    errors: Receiver<(Instant, Vec<u8>)>,
    start: Instant,
    /// Every byte of the console.
    transcript: Vec<u8>,
    /// The end offset in `transcript` of each piece read, with when it arrived.
    arrivals: Vec<(usize, Duration)>,
    /// Where the next wait starts looking.
    cursor: usize,
    /// Whether the console pipe closed (QEMU exited).
    closed: bool,
}

impl Live {
    /// Starts `qemu` with its console on pipes; times count from now.
    pub fn start(qemu: &mut Command) -> Result<Self> {
        let start = Instant::now();
        let mut child = qemu
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context(|| format!("cannot start `{}`", crate::process::display(qemu)))?;
        Ok(Self {
            stdin: child.stdin.take(),
            console: read_in_background(child.stdout.take()),
            errors: read_in_background(child.stderr.take()),
            child,
            start,
            transcript: Vec::new(),
            arrivals: Vec::new(),
            cursor: 0,
            closed: false,
        })
    }

    /// Time since QEMU's start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// When QEMU started.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Types `text` in bursts; returns the time the last burst went out.
    pub fn type_text(&mut self, text: &str) -> Duration {
        let bytes = text.as_bytes();
        for (index, burst) in bytes.chunks(TYPING_BURST).enumerate() {
            if index > 0 {
                std::thread::sleep(TYPING_PAUSE);
            }
            if let Some(pipe) = self.stdin.as_mut()
                && pipe.write_all(burst).and_then(|()| pipe.flush()).is_err()
            {
                self.stdin = None;
            }
        }
        self.elapsed()
    }

    /// Waits until `deadline` (from QEMU's start) for a complete console line (CR
    /// and LF removed) for which `check` says something, and returns that with the
    /// time the line's end arrived. Lines are looked at once each, in order.
    pub fn wait_line<T>(
        &mut self,
        deadline: Duration,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> std::result::Result<(Duration, T), Stop> {
        loop {
            while let Some(end) = self.transcript[self.cursor..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|at| self.cursor + at)
            {
                let line = String::from_utf8_lossy(&self.transcript[self.cursor..end]);
                let line = line.trim_end_matches('\r').to_string();
                self.cursor = end + 1;
                if let Some(found) = check(&line) {
                    return Ok((self.arrival(end), found));
                }
            }
            self.receive(deadline)?;
        }
    }

    /// Waits until `deadline` for `text` anywhere in the console from where the last
    /// wait stopped (a prompt, which ends no line); returns when it arrived.
    pub fn wait_text(
        &mut self,
        text: &str,
        deadline: Duration,
    ) -> std::result::Result<Duration, Stop> {
        let needle = text.as_bytes();
        loop {
            if let Some(at) = self.transcript[self.cursor..]
                .windows(needle.len())
                .position(|window| window == needle)
            {
                let end = self.cursor + at + needle.len();
                self.cursor = end;
                return Ok(self.arrival(end - 1));
            }
            self.receive(deadline)?;
        }
    }

    /// Types `probe` until a console line equal to `answer` comes back, again every
    /// `every` without one, until `deadline`; returns when the answer arrived. For a
    /// shell that may not be listening yet: a probe typed too early is lost or
    /// garbled, the next one counts.
    pub fn probe(
        &mut self,
        probe: &str,
        answer: &str,
        every: Duration,
        deadline: Duration,
    ) -> std::result::Result<Duration, Stop> {
        loop {
            let typed = self.type_text(probe);
            let wait_until = (typed + every).min(deadline);
            match self.wait_line(wait_until, |line| (line == answer).then_some(())) {
                Ok((at, ())) => return Ok(at),
                Err(Stop::TimedOut) if wait_until < deadline => continue,
                Err(stop) => return Err(stop),
            }
        }
    }

    /// Waits up to `timeout` for QEMU to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops QEMU (if it still runs) and returns the whole console, CRs removed, with
    /// QEMU's own messages (stderr) at the end.
    pub fn finish(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader threads pass on what was left in the pipes, then end.
        let until = Instant::now() + DRAIN_TIMEOUT;
        for bytes in drain(&self.console, until) {
            self.transcript.extend_from_slice(&bytes);
        }
        let mut text = String::from_utf8_lossy(&self.transcript).replace('\r', "");
        for bytes in drain(&self.errors, until) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    }

    /// When the byte at `offset` of the transcript arrived.
    fn arrival(&self, offset: usize) -> Duration {
        let index = self.arrivals.partition_point(|(end, _)| *end <= offset);
        self.arrivals
            .get(index)
            .map_or_else(|| self.elapsed(), |(_, when)| *when)
    }

    /// Takes in what the console printed next, waiting up to `deadline` for it.
    fn receive(&mut self, deadline: Duration) -> std::result::Result<(), Stop> {
        if self.closed {
            return Err(self.exited());
        }
        let now = self.elapsed();
        if now >= deadline {
            return Err(Stop::TimedOut);
        }
        match self.console.recv_timeout(deadline - now) {
            Ok((when, bytes)) => {
                self.transcript.extend_from_slice(&bytes);
                let arrived = when.saturating_duration_since(self.start);
                self.arrivals.push((self.transcript.len(), arrived));
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(Stop::TimedOut),
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                Err(self.exited())
            }
        }
    }

    fn exited(&mut self) -> Stop {
        Stop::Exited(
            self.wait_exit(Duration::from_secs(1))
                .or_else(|| self.child.try_wait().ok().flatten().and_then(|s| s.code())),
        )
    }
}

/// How long [`Live::finish`] waits for the last output once QEMU is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What a reader thread still has to pass on, until its pipe closes or `until`.
fn drain(pipe: &Receiver<(Instant, Vec<u8>)>, until: Instant) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    while let Ok((_, bytes)) = pipe.recv_timeout(until.saturating_duration_since(Instant::now())) {
        pieces.push(bytes);
    }
    pieces
}

/// The last `lines` lines of `text`, on one line, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    const LONG: Duration = Duration::from_secs(20);

    #[test]
    fn lines_and_texts_are_found_in_order_with_their_time() {
        let mut live = Live::start(&mut shell(
            "printf 'one\\r\\ntwo '; sleep 0.3; printf 'three\\nprompt> '; read x; echo got $x; sleep 30",
        ))
        .unwrap();
        let (at, word) = live
            .wait_line(LONG, |line| {
                line.starts_with("two").then(|| line.to_string())
            })
            .unwrap();
        assert_eq!(word, "two three");
        assert!(at >= Duration::from_millis(250), "{at:?}");
        // `one` was passed over: lines are looked at once.
        assert_eq!(
            live.wait_line(live.elapsed() + Duration::from_millis(100), |line| (line
                == "one")
                .then_some(())),
            Err(Stop::TimedOut)
        );
        live.wait_text("prompt> ", LONG).unwrap();
        live.type_text("hello there\n");
        let (_, ()) = live
            .wait_line(LONG, |line| (line == "got hello there").then_some(()))
            .unwrap();
        let console = live.finish();
        assert!(console.starts_with("one\ntwo three\nprompt> got hello there\n"));
    }

    #[test]
    fn probes_are_typed_again_until_answered() {
        // The "shell" ignores the first two lines it reads, then answers.
        let mut live = Live::start(&mut shell(
            "read a; read b; while read line; do [ \"$line\" = ping ] && echo pong; done",
        ))
        .unwrap();
        let at = live
            .probe("ping\n", "pong", Duration::from_millis(50), LONG)
            .unwrap();
        assert!(at < Duration::from_secs(10));
        live.finish();
    }

    #[test]
    fn exits_and_deadlines_end_a_wait() {
        let mut live = Live::start(&mut shell("echo bye; echo oops >&2; exit 3")).unwrap();
        assert_eq!(
            live.wait_line(LONG, |line| (line == "never").then_some(())),
            Err(Stop::Exited(Some(3)))
        );
        let console = live.finish();
        assert_eq!(console, "bye\noops\n");
        assert_eq!(tail(&console, 1), "oops");
        assert_eq!(tail("a\n\nb\nc\n", 2), "b / c");

        let mut slow = Live::start(&mut shell("sleep 30")).unwrap();
        assert_eq!(
            slow.probe(
                "x\n",
                "y",
                Duration::from_millis(30),
                Duration::from_millis(200)
            ),
            Err(Stop::TimedOut)
        );
        assert_eq!(slow.wait_exit(Duration::from_millis(10)), None);
        slow.finish();
    }
}
