//! One benchmark run: start QEMU with the console on pipes, note when the guest's
//! ready marker appears, optionally type a command in the guest's shell (the
//! conversation of [`crate::exec_session`]), and stop QEMU as soon as the run has
//! what it needs.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::error::{Context, Result};
use crate::exec_session::{Ready, Session};

/// What a run waits for before it stops QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// The ready marker on the console.
    Marker(&'static str),
    /// The ready marker, then the output of this command typed in the guest's shell.
    Command {
        /// The marker.
        marker: &'static str,
        /// The shell command.
        command: String,
    },
    /// QEMU's exit (the guest powers off by itself).
    Exit,
}

/// What a run saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The whole console, with CRs removed.
    pub console: String,
    /// When the ready marker arrived, from QEMU's start.
    pub ready_after: Option<Duration>,
    /// The typed command's output and status, for [`Until::Command`].
    pub command_output: Option<(String, u8)>,
    /// QEMU's exit status, if it exited by itself.
    pub exit_code: Option<i32>,
    /// Whether the timeout struck before the run had what it waited for.
    pub timed_out: bool,
}

impl Capture {
    /// Whether the run got what it waited for.
    pub fn complete(&self, until: &Until) -> bool {
        !self.timed_out
            && match until {
                Until::Marker(_) => self.ready_after.is_some(),
                Until::Command { .. } => self.command_output.is_some(),
                Until::Exit => self.exit_code.is_some(),
            }
    }

    /// The last `lines` lines of the console, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.console.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Typed text goes out in bursts of this many bytes, [`TYPING_PAUSE`] apart (as in
/// `run --exec`: the guest's UART has a 32-byte FIFO and no flow control).
const TYPING_BURST: usize = 8;
/// The pause between bursts.
const TYPING_PAUSE: Duration = Duration::from_millis(10);
/// How often the loop looks at the clock when nothing arrives.
const TICK: Duration = Duration::from_millis(20);

/// Runs `qemu` until `until` is satisfied or `timeout` passes, then stops it.
pub fn capture(qemu: &mut Command, until: &Until, timeout: Duration) -> Result<Capture> {
    let start = Instant::now();
    let mut child = qemu
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("cannot start `{}`", crate::process::display(qemu)))?;
    let console = read_in_background(child.stdout.take());
    let errors = read_in_background(child.stderr.take());
    let result = converse(&mut child, &console, start, until, timeout);
    let _ = child.kill();
    let _ = child.wait();
    let mut capture = result;
    // QEMU's own complaints (stderr) go at the end of the transcript, on lines of
    // their own.
    while let Ok((_, bytes)) = errors.try_recv() {
        if !capture.console.is_empty() && !capture.console.ends_with('\n') {
            capture.console.push('\n');
        }
        capture.console.push_str(&String::from_utf8_lossy(&bytes));
    }
    Ok(capture)
}

/// The pipe's bytes with the time they were read, from a reader thread.
pub(super) fn read_in_background(
    pipe: Option<impl Read + Send + 'static>,
) -> Receiver<(Instant, Vec<u8>)> {
    let (sender, receiver) = mpsc::channel();
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
    receiver
}

fn converse(
    child: &mut Child,
    console: &Receiver<(Instant, Vec<u8>)>,
    start: Instant,
    until: &Until,
    timeout: Duration,
) -> Capture {
    let mut capture = Capture {
        console: String::new(),
        ready_after: None,
        command_output: None,
        exit_code: None,
        timed_out: false,
    };
    let marker = match until {
        Until::Marker(marker) | Until::Command { marker, .. } => Some(*marker),
        Until::Exit => None,
    };
    let mut session = match until {
        Until::Command { marker, command } => Some(Session::new(
            command,
            Ready::Marker(marker),
            &crate::exec::nonce(),
        )),
        _ => None,
    };
    let mut raw: Vec<u8> = Vec::new();
    let mut output: Vec<u8> = Vec::new();
    let mut typing: VecDeque<u8> = VecDeque::new();
    let mut next_burst = Duration::ZERO;
    let mut stdin = child.stdin.take();
    loop {
        let (arrived, bytes, closed) = match console.recv_timeout(TICK) {
            Ok((when, bytes)) => (when.saturating_duration_since(start), bytes, false),
            Err(RecvTimeoutError::Timeout) => (start.elapsed(), Vec::new(), false),
            Err(RecvTimeoutError::Disconnected) => (start.elapsed(), Vec::new(), true),
        };
        raw.extend_from_slice(&bytes);
        if let Some(marker) = marker
            && capture.ready_after.is_none()
            && contains(&raw, marker.as_bytes())
        {
            capture.ready_after = Some(arrived);
        }
        if let Some(session) = session.as_mut() {
            let reaction = session.step(&bytes, start.elapsed());
            output.extend_from_slice(&reaction.output);
            for text in reaction.typed {
                typing.extend(text.as_bytes());
            }
            if let Some(status) = reaction.status {
                let text = String::from_utf8_lossy(&output).into_owned();
                capture.command_output = Some((text, status));
            }
        }
        let now = start.elapsed();
        if !typing.is_empty() && now >= next_burst {
            let burst: Vec<u8> = typing.drain(..typing.len().min(TYPING_BURST)).collect();
            next_burst = now + TYPING_PAUSE;
            if let Some(pipe) = stdin.as_mut()
                && pipe.write_all(&burst).and_then(|()| pipe.flush()).is_err()
            {
                stdin = None;
            }
        }
        let done = match until {
            Until::Marker(_) => capture.ready_after.is_some(),
            Until::Command { .. } => capture.command_output.is_some(),
            Until::Exit => false,
        };
        if closed {
            capture.exit_code = child.wait().ok().and_then(|status| status.code());
        }
        if done || closed {
            break;
        }
        if now >= timeout {
            capture.timed_out = true;
            break;
        }
    }
    capture.console = String::from_utf8_lossy(&raw).replace('\r', "");
    capture
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn the_marker_is_timed_and_the_run_stopped() {
        let until = Until::Marker("ready!");
        let capture = capture(
            &mut shell("echo booting; sleep 0.2; echo 'ready!'; sleep 30"),
            &until,
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(capture.complete(&until));
        let after = capture.ready_after.unwrap();
        assert!(after >= Duration::from_millis(150), "{after:?}");
        assert!(after < Duration::from_secs(10), "{after:?}");
        assert!(capture.console.starts_with("booting\nready!\n"));
        assert_eq!(capture.exit_code, None, "stopped, not exited");
    }

    #[test]
    fn a_typed_command_returns_its_output() {
        // A host shell stands in for the guest's; `exit` for the power-off would
        // never be needed: the run stops once the output is in.
        let until = Until::Command {
            marker: "aerie-guest: ready",
            command: "echo '[ 1.5] Run /init as init process'".into(),
        };
        let capture = capture(
            &mut shell("echo 'aerie-guest: ready'; exec sh"),
            &until,
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(capture.complete(&until), "{capture:?}");
        let (output, status) = capture.command_output.unwrap();
        assert_eq!(output, "[ 1.5] Run /init as init process\n");
        assert_eq!(status, 0);
    }

    #[test]
    fn exits_and_timeouts() {
        let exit = capture(
            &mut shell("echo bye; exit 3"),
            &Until::Exit,
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(exit.complete(&Until::Exit));
        assert_eq!(exit.exit_code, Some(3));
        assert_eq!(exit.tail(1), "bye");
        let until = Until::Marker("never");
        let slow = capture(
            &mut shell("echo a; sleep 30"),
            &until,
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(slow.timed_out && !slow.complete(&until));
    }
}
