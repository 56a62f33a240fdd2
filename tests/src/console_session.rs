//! A `cargo xtask run` whose console a test drives, through aerie-host's
//! [`Console`]: output kept as the text a person sees (terminal escape sequences,
//! such as the UEFI shell's colours, dropped), expected text waited for within a
//! deadline, keys typed like a person; a wait that fails panics with the transcript.

use std::time::Duration;

use aerie_host::{Console, Stderr};

/// A running `cargo xtask run ARGS` with its console piped.
pub struct ConsoleSession {
    console: Console,
}

impl ConsoleSession {
    /// Starts `cargo xtask run` with `args` (stderr, xtask's own messages, goes to
    /// the transcript too). Dropping the session (also when a check panics) kills
    /// cargo, xtask and QEMU.
    pub fn start(args: &[&str]) -> Self {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let mut command = crate::xtask::command(&all);
        let console = Console::start_group(&mut command, Stderr::Merged)
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
            .without_escapes();
        Self { console }
    }

    /// Waits up to `wait` for `text` after what earlier expectations matched;
    /// panics with the transcript if it does not come.
    pub fn expect(&mut self, text: &str, wait: Duration) {
        let deadline = self.console.elapsed() + wait;
        if let Err(stop) = self.console.wait_text(text, deadline) {
            self.fail(&format!("no {text:?} within {wait:?} ({stop:?})"));
        }
    }

    /// Types `text` slowly, like a person (a serial console has no flow control).
    pub fn type_keys(&mut self, text: &str) {
        self.console.type_text(text);
    }

    /// The whole transcript so far.
    pub fn transcript(&self) -> String {
        self.console.transcript()
    }

    /// Waits up to `wait` for the run to end by itself and returns its exit code;
    /// panics with the transcript if it does not end.
    pub fn expect_exit(&mut self, wait: Duration) -> Option<i32> {
        match self.console.wait_exit(wait) {
            Some(status) => status.code(),
            None => self.fail(&format!("the run did not end within {wait:?}")),
        }
    }

    /// Stops the run.
    pub fn stop(mut self) {
        self.console.stop();
    }

    fn fail(&mut self, what: &str) -> ! {
        self.console.stop();
        panic!("{what}; the console showed:\n{}", self.console.transcript());
    }
}
