//! One benchmark run: start QEMU with the console on pipes (aerie-host's
//! [`Console`]), note when the guest's ready marker appears, optionally type a
//! command in the guest's shell (the conversation of [`xtask::exec_session`]), and
//! stop QEMU as soon as the run has what it needs.

use std::process::Command;
use std::time::Duration;

use aerie_host::{Console, Stderr};

use xtask::error::{Context, Result};
use xtask::exec_session::{Ready, Session};

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
        aerie_host::console::last_lines(&self.console, lines)
    }
}

/// How often the loop looks at the clock when nothing arrives.
const TICK: Duration = Duration::from_millis(20);

/// How long QEMU may take to exit once it closed its console.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Runs `qemu` until `until` is satisfied or `timeout` passes, then stops it.
pub fn capture(qemu: &mut Command, until: &Until, timeout: Duration) -> Result<Capture> {
    let mut console = Console::start(qemu, Stderr::Apart)
        .context(|| format!("cannot start `{}`", xtask::process::display(qemu)))?;
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
            &xtask::exec::nonce(),
        )),
        _ => None,
    };
    let mut output: Vec<u8> = Vec::new();
    loop {
        let piece = console.next_piece(TICK);
        if let Some(marker) = marker
            && capture.ready_after.is_none()
        {
            capture.ready_after = console.arrival_of(marker);
        }
        if let Some(session) = session.as_mut() {
            let reaction = session.step(&piece.bytes, console.elapsed());
            output.extend_from_slice(&reaction.output);
            for text in reaction.typed {
                console.type_text(&text);
            }
            if let Some(status) = reaction.status {
                let text = String::from_utf8_lossy(&output).into_owned();
                capture.command_output = Some((text, status));
            }
        }
        let done = match until {
            Until::Marker(_) => capture.ready_after.is_some(),
            Until::Command { .. } => capture.command_output.is_some(),
            Until::Exit => false,
        };
        if piece.closed {
            capture.exit_code = console.wait_exit(EXIT_GRACE).and_then(|s| s.code());
        }
        if done || piece.closed {
            break;
        }
        if console.elapsed() >= timeout {
            capture.timed_out = true;
            break;
        }
    }
    // QEMU's own complaints (stderr) go at the end of the transcript.
    capture.console = console.finish().joined();
    Ok(capture)
}

/// The last `lines` non-blank lines of `text`, on one line, for failure messages.
pub fn tail_on_one_line(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerie_host::console::shell;

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

    #[test]
    fn tails_on_one_line_skip_blank_lines() {
        assert_eq!(tail_on_one_line("a\n\nb\nc\n", 2), "b / c");
        assert_eq!(tail_on_one_line("", 2), "");
    }
}
