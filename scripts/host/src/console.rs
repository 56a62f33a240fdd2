//! The [`Console`] session: a child process (QEMU, or a `cargo xtask run` that starts
//! one) with its console on pipes. Its output is read as a byte stream (firmware
//! prompts such as U-Boot's `=> ` end no line) and kept, with when each piece
//! arrived, as the transcript; text and lines are waited for with a deadline; keys are
//! typed at the pace of a slow serial line.
//!
//! Two kinds of driver use it: scripts that wait for one thing after another
//! ([`Console::wait_text`], [`Console::wait_line`], [`Console::probe`]), and pure
//! state machines (`--exec`'s conversation, the bench's command runs) that are fed
//! every piece as it comes ([`Console::next_piece`]). Every wait has a deadline; a
//! wait that fails says so with a [`Stop`], and [`Console::tail`] shows what was seen.
//! Deadlines count from the child's start ([`Console::elapsed`]). Dropping a session
//! kills the child (or its whole process group, see [`Console::start_group`]).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Typed text goes out in bursts of at most this many bytes...
const TYPING_BURST: usize = 8;

/// ...this far apart (about 800 bytes a second, a 9600-baud line): a serial line has
/// no flow control, and a guest UART's receive FIFO (32 bytes on a PL011) overflows
/// when a whole line arrives faster than the guest drains it.
const TYPING_PAUSE: Duration = Duration::from_millis(10);

/// How long [`Console::finish`] waits for the last output once the child is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How often [`Console::wait_exit`] looks at the child.
const EXIT_POLL: Duration = Duration::from_millis(10);
/// How long [`Console::stop`] waits for the killed child to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the child's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// To this process's stderr.
    Inherit,
    /// Kept apart, and handed over by [`Console::finish`].
    Apart,
    /// Into the transcript with the console (a `cargo xtask run`, whose own messages
    /// belong to what a user sees).
    Merged,
}

/// Why a wait ended without what it waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    TimedOut,
    /// The child exited (its status, if it has one).
    Exited(Option<i32>),
}

/// What one [`Console::next_piece`] brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The bytes (none when the wait passed without output).
    pub bytes: Vec<u8>,
    /// When they arrived (or now, without bytes), from the child's start.
    pub arrived: Duration,
    /// Whether the console closed: the child is exiting.
    pub closed: bool,
}

/// How a session ended: everything it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The whole console as text (CR LF as it came).
    pub console: String,
    /// The child's stderr, with [`Stderr::Apart`].
    pub errors: String,
}

impl Finished {
    /// The console without CRs, the stderr (QEMU's own complaints) after it on lines
    /// of their own.
    pub fn joined(&self) -> String {
        let mut text = self.console.replace('\r', "");
        if !self.errors.is_empty() && !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.errors);
        text
    }
}

/// A running child with its console on pipes, and what the console printed so far.
#[derive(Debug)]
pub struct Console {
    child: Child,
    /// Whether the child leads a process group of its own, killed whole.
    group: bool,
    stopped: bool,
    stdin: Option<ChildStdin>,
    output: Receiver<(Instant, Vec<u8>)>,
    errors: Option<Receiver<(Instant, Vec<u8>)>>,
    start: Instant,
    /// The console's bytes (the last [`Console::keeping_at_most`] of them, if given).
    transcript: Vec<u8>,
    /// The end offset in `transcript` of each piece read, with when it arrived.
    arrivals: Vec<(usize, Duration)>,
    /// Where the next wait starts looking.
    cursor: usize,
    /// Whether the console pipe closed.
    closed: bool,
    /// Where the output stands in a terminal escape sequence, when they are dropped.
    escape: Option<Escape>,
    /// How much of the transcript to keep.
    limit: Option<usize>,
}

impl Console {
    /// Starts `command` with its console (stdin and stdout) on pipes and its stderr
    /// where `stderr` says; times count from now.
    pub fn start(command: &mut Command, stderr: Stderr) -> std::io::Result<Self> {
        Self::spawn(command, stderr, false)
    }

    /// Like [`Console::start`], the child leading a process group of its own, which
    /// the end of the session kills whole: for `cargo xtask run`, whose QEMU must not
    /// outlive it.
    pub fn start_group(command: &mut Command, stderr: Stderr) -> std::io::Result<Self> {
        command.process_group(0);
        Self::spawn(command, stderr, true)
    }

    fn spawn(command: &mut Command, stderr: Stderr, group: bool) -> std::io::Result<Self> {
        let start = Instant::now();
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        command.stderr(match stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Apart | Stderr::Merged => Stdio::piped(),
        });
        let mut child = command.spawn()?;
        let (sender, output) = mpsc::channel();
        read_into(child.stdout.take(), sender.clone());
        let errors = match stderr {
            Stderr::Inherit => None,
            Stderr::Merged => {
                read_into(child.stderr.take(), sender);
                None
            }
            Stderr::Apart => Some(read_in_background(child.stderr.take())),
        };
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            group,
            stopped: false,
            output,
            errors,
            start,
            transcript: Vec::new(),
            arrivals: Vec::new(),
            cursor: 0,
            closed: false,
            escape: None,
            limit: None,
        })
    }

    /// Keeps the transcript as the text a person sees: terminal escape sequences
    /// (such as the UEFI shell's colours) are dropped as they arrive.
    pub fn without_escapes(mut self) -> Self {
        self.escape = Some(Escape::Text);
        self
    }

    /// Keeps only about the last `bytes` of the transcript (for a run whose output
    /// has no bound; older text can no longer be waited for).
    pub fn keeping_at_most(mut self, bytes: usize) -> Self {
        self.limit = Some(bytes);
        self
    }

    /// Time since the child's start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// When the child started.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Closes the console's input: the child reads end-of-file.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Types `text` in paced bursts; returns the time the last burst went out. A pipe
    /// that cannot be written means the child is gone, which the console's end
    /// reports; the pipe is dropped.
    pub fn type_text(&mut self, text: &str) -> Duration {
        for (index, burst) in text.as_bytes().chunks(TYPING_BURST).enumerate() {
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

    /// Waits up to `wait` for the console's next piece of output, adds it to the
    /// transcript and returns it.
    pub fn next_piece(&mut self, wait: Duration) -> Piece {
        let (bytes, arrived) = match self.receive(self.elapsed() + wait) {
            Ok(piece) => piece,
            Err(_) => (Vec::new(), self.elapsed()),
        };
        Piece {
            bytes,
            arrived,
            closed: self.closed,
        }
    }

    /// Waits until `deadline` for a complete console line (CR and LF removed) for
    /// which `check` says something, and returns that with the time the line's end
    /// arrived. Lines are looked at once each, in order.
    pub fn wait_line<T>(
        &mut self,
        deadline: Duration,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> Result<(Duration, T), Stop> {
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

    /// Waits until `deadline` for `text` anywhere in the console after what earlier
    /// waits matched (a prompt, which ends no line); returns when it arrived.
    pub fn wait_text(&mut self, text: &str, deadline: Duration) -> Result<Duration, Stop> {
        loop {
            if let Some(at) = find(&self.transcript[self.cursor..], text.as_bytes()) {
                let end = self.cursor + at + text.len();
                self.cursor = end;
                return Ok(self.arrival(end.saturating_sub(1)));
            }
            self.receive(deadline)?;
        }
    }

    /// When `text` first arrived anywhere in the transcript, if it has (the cursor of
    /// the waits stays where it is).
    pub fn arrival_of(&self, text: &str) -> Option<Duration> {
        find(&self.transcript, text.as_bytes())
            .map(|at| self.arrival((at + text.len()).saturating_sub(1)))
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
    ) -> Result<Duration, Stop> {
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

    /// Waits up to `timeout` for the child to exit by itself (taking in its output
    /// meanwhile); its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            let deadline = self.elapsed() + EXIT_POLL;
            if self.closed || self.receive(deadline).is_err() {
                std::thread::sleep(EXIT_POLL.min(until.saturating_duration_since(Instant::now())));
            }
        }
    }

    /// The whole transcript so far (what is kept of it), as text.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.transcript).into_owned()
    }

    /// The transcript's last `lines` lines, without CRs, for reports.
    pub fn tail(&self, lines: usize) -> String {
        last_lines(&String::from_utf8_lossy(&self.transcript), lines)
    }

    /// Kills the child (or its process group) if it still runs.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.group {
            kill_group(self.child.id());
        }
        let _ = self.child.kill();
        // SIGKILL cannot be ignored, but a child stuck in the kernel (a hung disk)
        // can outlive it: reap with a deadline rather than block the caller.
        if self.wait_exit(REAP_TIMEOUT).is_none() {
            eprintln!(
                "process {} still runs {REAP_TIMEOUT:?} after SIGKILL; leaving it",
                self.child.id()
            );
        }
    }

    /// Stops the child and returns everything it printed, the output still in the
    /// pipes included.
    pub fn finish(mut self) -> Finished {
        self.stop();
        let until = Instant::now() + DRAIN_TIMEOUT;
        while !self.closed && self.receive(self.elapsed() + DRAIN_TIMEOUT).is_ok() {
            if Instant::now() >= until {
                break;
            }
        }
        let mut errors = String::new();
        if let Some(pipe) = &self.errors {
            while let Ok((_, bytes)) =
                pipe.recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                errors.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        Finished {
            console: self.transcript(),
            errors,
        }
    }

    /// When the byte at `offset` of the transcript arrived.
    fn arrival(&self, offset: usize) -> Duration {
        let index = self.arrivals.partition_point(|(end, _)| *end <= offset);
        self.arrivals
            .get(index)
            .map_or_else(|| self.elapsed(), |(_, when)| *when)
    }

    /// Takes in what the console printed next, waiting up to `deadline` for it.
    fn receive(&mut self, deadline: Duration) -> Result<(Vec<u8>, Duration), Stop> {
        if self.closed {
            return Err(self.exited());
        }
        let wait = deadline.saturating_sub(self.elapsed());
        match self.output.recv_timeout(wait) {
            Ok((when, bytes)) => {
                let bytes = match &mut self.escape {
                    Some(escape) => escape.strip(&bytes),
                    None => bytes,
                };
                self.transcript.extend_from_slice(&bytes);
                let arrived = when.saturating_duration_since(self.start);
                self.arrivals.push((self.transcript.len(), arrived));
                self.trim();
                Ok((bytes, arrived))
            }
            Err(RecvTimeoutError::Timeout) => Err(Stop::TimedOut),
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                Err(self.exited())
            }
        }
    }

    /// Drops the oldest text beyond the limit, once it is twice over it.
    fn trim(&mut self) {
        let Some(limit) = self.limit else { return };
        if self.transcript.len() <= 2 * limit {
            return;
        }
        let dropped = self.transcript.len() - limit;
        self.transcript.drain(..dropped);
        self.cursor = self.cursor.saturating_sub(dropped);
        self.arrivals.retain(|(end, _)| *end > dropped);
        for (end, _) in &mut self.arrivals {
            *end -= dropped;
        }
    }

    fn exited(&mut self) -> Stop {
        Stop::Exited(
            self.wait_exit(Duration::from_secs(1))
                .and_then(|s| s.code()),
        )
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a child run to its end (or to a deadline) went: see [`run_to_end`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// Its exit status; `None` when the deadline struck and it was killed.
    pub status: Option<ExitStatus>,
    /// Everything on its stdout.
    pub stdout: String,
    /// Everything on its stderr.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

/// Runs `command` with no input until it exits, or kills it (with its process group
/// when `group`) once `deadline` has passed; what it printed either way.
pub fn run_to_end(command: &mut Command, deadline: Duration, group: bool) -> std::io::Result<Ran> {
    let mut console = if group {
        Console::start_group(command, Stderr::Apart)?
    } else {
        Console::start(command, Stderr::Apart)?
    };
    console.close_input();
    let status = console.wait_exit(deadline);
    let took = console.elapsed();
    let finished = console.finish();
    Ok(Ran {
        status,
        stdout: finished.console,
        stderr: finished.errors,
        took,
    })
}

/// What `pipe` yields, piece by piece with when it was read, from a thread of its own
/// until the pipe closes.
pub fn read_in_background(
    pipe: Option<impl Read + Send + 'static>,
) -> Receiver<(Instant, Vec<u8>)> {
    let (sender, receiver) = mpsc::channel();
    read_into(pipe, sender);
    receiver
}

/// Passes what `pipe` yields, with when it was read, to `sender`, from a thread of its
/// own, until the pipe closes.
fn read_into(pipe: Option<impl Read + Send + 'static>, sender: mpsc::Sender<(Instant, Vec<u8>)>) {
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(count @ 1..) = pipe.read(&mut buffer) {
                if sender
                    .send((Instant::now(), buffer[..count].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

/// Kills every process of the process group `leader` leads. `kill -KILL -- -PGID`
/// signals the whole group; a group whose processes are all gone answers with an
/// error, which is what we want.
pub fn kill_group(leader: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{leader}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last `lines` lines of `text`, without CRs.
pub fn last_lines(text: &str, lines: usize) -> String {
    let text = text.replace('\r', "");
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The first position of `needle` in `haystack` (0 for an empty needle, as
/// `str::find` has it).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Where a byte stream stands in a terminal escape sequence (ECMA-48): `ESC [`
/// parameters and a final byte (0x40..=0x7e), or `ESC` and one more byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    /// Ordinary text.
    Text,
    /// After `ESC`.
    Started,
    /// Inside a control sequence, after `ESC [`.
    Control,
}

impl Escape {
    /// `bytes` without the escape sequences in them (or continuing from earlier).
    fn strip(&mut self, bytes: &[u8]) -> Vec<u8> {
        const ESC: u8 = 0x1b;
        let mut text = Vec::with_capacity(bytes.len());
        for &byte in bytes {
            *self = match (*self, byte) {
                (Escape::Text, ESC) => Escape::Started,
                (Escape::Text, _) => {
                    text.push(byte);
                    Escape::Text
                }
                (Escape::Started, b'[') => Escape::Control,
                (Escape::Started, _) => Escape::Text,
                (Escape::Control, 0x40..=0x7e) => Escape::Text,
                (Escape::Control, _) => Escape::Control,
            };
        }
        text
    }
}

/// `sh -c SCRIPT`: a host shell standing in for a machine, in tests of console
/// drivers.
pub fn shell(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(script: &str) -> Console {
        Console::start(&mut shell(script), Stderr::Apart).unwrap()
    }

    const LONG: Duration = Duration::from_secs(20);

    #[test]
    fn lines_and_texts_are_found_in_order_with_their_time() {
        let mut console = start(
            "printf 'one\\r\\ntwo '; sleep 0.3; printf 'three\\nprompt> '; read x; echo got $x; sleep 30",
        );
        let (at, word) = console
            .wait_line(LONG, |line| {
                line.starts_with("two").then(|| line.to_string())
            })
            .unwrap();
        assert_eq!(word, "two three");
        assert!(at >= Duration::from_millis(250), "{at:?}");
        assert!(console.arrival_of("two").unwrap() < at);
        // `one` was passed over: lines are looked at once.
        assert_eq!(
            console.wait_line(console.elapsed() + Duration::from_millis(100), |line| {
                (line == "one").then_some(())
            }),
            Err(Stop::TimedOut)
        );
        console.wait_text("prompt> ", LONG).unwrap();
        // Nothing at all is there at once, where the last wait stopped.
        assert!(console.wait_text("", Duration::ZERO).is_ok());
        console.type_text("hello there\n");
        let (_, ()) = console
            .wait_line(LONG, |line| (line == "got hello there").then_some(()))
            .unwrap();
        let finished = console.finish();
        assert!(
            finished
                .console
                .starts_with("one\r\ntwo three\nprompt> got hello there\n")
        );
        assert!(
            finished
                .joined()
                .starts_with("one\ntwo three\nprompt> got hello there\n")
        );
    }

    #[test]
    fn probes_are_typed_again_until_answered() {
        // The "shell" ignores the first two lines it reads, then answers.
        let mut console =
            start("read a; read b; while read line; do [ \"$line\" = ping ] && echo pong; done");
        let at = console
            .probe("ping\n", "pong", Duration::from_millis(50), LONG)
            .unwrap();
        assert!(at < Duration::from_secs(10));
    }

    #[test]
    fn typing_is_paced_in_bursts() {
        let mut console = start("head -c 20; echo; sleep 30");
        let before = console.elapsed();
        let typed = console.type_text("0123456789abcdefghij");
        // Three bursts of at most eight bytes, two pauses between them.
        assert!(typed - before >= 2 * TYPING_PAUSE, "{:?}", typed - before);
        let (_, line) = console
            .wait_line(LONG, |line| Some(line.to_string()))
            .unwrap();
        assert_eq!(line, "0123456789abcdefghij");
    }

    #[test]
    fn exits_and_deadlines_end_a_wait() {
        let mut console = start("echo bye; echo oops >&2; exit 3");
        assert_eq!(
            console.wait_line(LONG, |line| (line == "never").then_some(())),
            Err(Stop::Exited(Some(3)))
        );
        assert_eq!(console.tail(1), "bye");
        let finished = console.finish();
        assert_eq!(finished.joined(), "bye\noops\n");

        let mut slow = start("sleep 30");
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
    }

    #[test]
    fn pieces_come_one_by_one_until_the_console_closes() {
        let mut console = start("printf a; sleep 0.2; printf b; exit 4");
        let mut seen: Vec<u8> = Vec::new();
        let closed = loop {
            let piece = console.next_piece(Duration::from_millis(20));
            seen.extend(&piece.bytes);
            if piece.closed {
                break piece;
            }
            assert!(console.elapsed() < LONG);
        };
        assert_eq!(seen, b"ab");
        assert!(closed.arrived >= Duration::from_millis(150));
        assert_eq!(console.wait_exit(LONG).and_then(|s| s.code()), Some(4));
    }

    #[test]
    fn merged_stderr_escapes_dropped_and_a_bounded_transcript() {
        let mut console = Console::start(
            &mut shell("printf '\\033[1m%020d\\033[0m' 0; sleep 0.1; echo said >&2; sleep 30"),
            Stderr::Merged,
        )
        .unwrap()
        .without_escapes()
        .keeping_at_most(8);
        console.wait_text("said", LONG).unwrap();
        assert_eq!(console.transcript(), "00000000said\n");
        let mut whole = Console::start(
            &mut shell("printf '\\033[1maerie\\033[0m!'; sleep 30"),
            Stderr::Merged,
        )
        .unwrap()
        .without_escapes();
        whole.wait_text("!", LONG).unwrap();
        assert_eq!(whole.transcript(), "aerie!");
    }

    #[test]
    fn runs_to_the_end_or_to_the_deadline() {
        let ran = run_to_end(
            &mut shell("cat; echo out; echo err >&2; exit 2"),
            LONG,
            false,
        )
        .unwrap();
        assert_eq!(ran.status.and_then(|s| s.code()), Some(2));
        assert_eq!(
            (ran.stdout.as_str(), ran.stderr.as_str()),
            ("out\n", "err\n")
        );
        let ran = run_to_end(
            &mut shell("echo waiting; sleep 60 & wait"),
            Duration::from_millis(300),
            true,
        )
        .unwrap();
        assert_eq!(ran.status, None);
        assert_eq!(ran.stdout, "waiting\n");
        assert!(ran.took < Duration::from_secs(10));
    }

    #[test]
    fn a_group_is_killed_whole() {
        // The leader starts a grandchild that would outlive it by a minute.
        let started = Instant::now();
        let mut console =
            Console::start_group(&mut shell("sleep 60 & echo started; wait"), Stderr::Apart)
                .unwrap();
        console.wait_text("started", LONG).unwrap();
        // The pipe closes only once the grandchild, which holds it too, is gone.
        let finished = console.finish();
        assert_eq!(finished.console, "started\n");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn escape_sequences_are_dropped_even_when_split() {
        let mut escape = Escape::Text;
        let mut text = escape.strip(b"\x1b[1m\x1b[33maerie_kept\x1b[0m = 6x7\x1b[");
        text.extend(escape.strip(b"37;40mShell> \x1bc!"));
        assert_eq!(text, b"aerie_kept = 6x7Shell> !");
    }

    #[test]
    fn tails_drop_the_carriage_returns() {
        assert_eq!(last_lines("a\r\nb\r\n", 30), "a\nb");
        let many: String = (0..100).map(|n| format!("{n}\r\n")).collect();
        assert_eq!(last_lines(&many, 30).lines().count(), 30);
        assert!(last_lines(&many, 30).ends_with("98\n99"));
    }
}
