//! The [`Outcome`] of a QEMU run and assertions on it. A failed assertion panics with
//! the whole story: command line, exit status, stderr and the full serial transcript.

use std::fmt;
use std::time::Duration;

/// How Aerie prefixes each line of guest debug output.
const GUEST_PREFIX: &str = "guest: ";
/// How a test guest starts the line of a passed check.
const PASS: &str = "PASS: ";
/// How a test guest starts the line of a failed check.
const FAIL: &str = "FAIL: ";

/// What happened when QEMU ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The QEMU command line.
    pub command: String,
    /// Everything written to the serial port (QEMU's stdout).
    pub transcript: String,
    /// QEMU's stderr.
    pub stderr: String,
    /// QEMU's exit code; `None` when it was killed (timeout or signal).
    pub exit_code: Option<i32>,
    /// Whether the harness killed QEMU at the timeout.
    pub timed_out: bool,
    /// Wall-clock time from start to exit.
    pub duration: Duration,
}

impl Outcome {
    /// Panics unless QEMU exited by itself with `code`.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        if self.timed_out || self.exit_code != Some(code) {
            self.fail(&format!("expected QEMU to exit with {code}"));
        }
        self
    }

    /// Panics unless the transcript contains `text`.
    #[track_caller]
    pub fn assert_contains(&self, text: &str) -> &Self {
        if !self.transcript.contains(text) {
            self.fail(&format!("expected the transcript to contain {text:?}"));
        }
        self
    }

    /// Panics if the transcript contains `text`.
    #[track_caller]
    pub fn assert_not_contains(&self, text: &str) -> &Self {
        if self.transcript.contains(text) {
            self.fail(&format!("expected the transcript not to contain {text:?}"));
        }
        self
    }

    /// Panics unless one line of the transcript contains every fragment.
    #[track_caller]
    pub fn assert_line_with(&self, fragments: &[&str]) -> &Self {
        if self.line_with(fragments).is_none() {
            self.fail(&format!(
                "expected a transcript line containing all of {fragments:?}"
            ));
        }
        self
    }

    /// What the guest printed through Aerie's debug hypercall: the transcript lines
    /// Aerie prefixed with `guest: `, without the prefix.
    pub fn guest_lines(&self) -> impl Iterator<Item = &str> {
        self.transcript
            .lines()
            .filter_map(|line| line.trim_end_matches('\r').strip_prefix(GUEST_PREFIX))
    }

    /// Panics if the guest reported a failed check (a `FAIL:` line).
    #[track_caller]
    pub fn assert_no_guest_failure(&self) -> &Self {
        if let Some(line) = self.guest_lines().find(|line| line.starts_with(FAIL)) {
            self.fail(&format!("the guest reported a failure: {line:?}"));
        }
        self
    }

    /// Panics unless the guest reported every check it made as passed: no `FAIL:`
    /// line, at least one `PASS:` line, and its closing line
    /// `result: <n> checks passed, 0 failed` with `n` the number of `PASS:` lines.
    #[track_caller]
    pub fn assert_guest_checks_passed(&self) -> &Self {
        self.assert_no_guest_failure();
        let passed = self
            .guest_lines()
            .filter(|line| line.starts_with(PASS))
            .count();
        if passed == 0 {
            self.fail("expected the guest to report passed checks (PASS: lines)");
        }
        let result = format!("result: {passed} checks passed, 0 failed");
        if !self.guest_lines().any(|line| line == result) {
            self.fail(&format!("expected the guest's closing line {result:?}"));
        }
        self
    }

    /// Panics unless the guest reported a passed check whose name starts with `name`
    /// (a line `PASS: <name>...`).
    #[track_caller]
    pub fn assert_guest_passed(&self, name: &str) -> &Self {
        let expected = format!("{PASS}{name}");
        if !self.guest_lines().any(|line| line.starts_with(&expected)) {
            self.fail(&format!("expected the guest to report {expected:?}"));
        }
        self
    }

    /// The first transcript line that contains every fragment.
    pub fn line_with(&self, fragments: &[&str]) -> Option<&str> {
        self.transcript
            .lines()
            .find(|line| fragments.iter().all(|fragment| line.contains(fragment)))
    }

    #[track_caller]
    fn fail(&self, expectation: &str) -> ! {
        panic!("{expectation}\n{self}")
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.timed_out, self.exit_code) {
            (true, _) => format!("killed after the {:.1?} timeout", self.duration),
            (false, Some(code)) => format!("exited with {code} after {:.1?}", self.duration),
            (false, None) => format!("killed by a signal after {:.1?}", self.duration),
        };
        writeln!(f, "QEMU {status}")?;
        writeln!(f, "command: {}", self.command)?;
        if !self.stderr.is_empty() {
            writeln!(f, "---- stderr ----\n{}", self.stderr.trim_end())?;
        }
        writeln!(
            f,
            "---- serial transcript ----\n{}",
            self.transcript.trim_end()
        )?;
        write!(f, "---- end of transcript ----")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(transcript: &str, exit_code: Option<i32>) -> Outcome {
        Outcome {
            command: "qemu-system-aarch64 -M virt".into(),
            transcript: transcript.into(),
            stderr: String::new(),
            exit_code,
            timed_out: exit_code.is_none(),
            duration: Duration::from_millis(1500),
        }
    }

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("expected a panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| payload.downcast_ref::<&str>().unwrap_or(&"").to_string())
    }

    #[test]
    fn passing_assertions_chain() {
        let run = outcome("Aerie 0.1.0\r\nCPU 0 online at EL2\r\n", Some(0));
        run.assert_exit(0)
            .assert_contains("Aerie")
            .assert_not_contains("panic")
            .assert_line_with(&["CPU 0", "EL2"]);
        assert_eq!(run.line_with(&["online"]), Some("CPU 0 online at EL2"));
        assert_eq!(run.line_with(&["Aerie", "EL2"]), None);
    }

    #[test]
    fn failures_show_the_whole_transcript() {
        let run = outcome("Aerie 0.1.0\nboot failed\n", Some(3));
        let message = panic_message(|| {
            run.assert_exit(0);
        });
        assert!(message.starts_with("expected QEMU to exit with 0\nQEMU exited with 3"));
        assert!(message.contains("command: qemu-system-aarch64 -M virt"));
        assert!(message.contains("---- serial transcript ----\nAerie 0.1.0\nboot failed\n"));

        let message = panic_message(|| {
            run.assert_line_with(&["Aerie", "failed"]);
        });
        assert!(
            message.contains("all of [\"Aerie\", \"failed\"]"),
            "{message}"
        );
        assert!(
            panic_message(|| {
                run.assert_not_contains("boot");
            })
            .contains("not to contain \"boot\"")
        );
    }

    #[test]
    fn guest_checks() {
        let run = outcome(
            "Aerie: starting the guest\r\nguest: PASS: one\r\nguest: hello\r\n\
             guest: PASS: two things\r\nguest: result: 2 checks passed, 0 failed\r\n",
            Some(0),
        );
        assert_eq!(
            run.guest_lines().collect::<Vec<_>>(),
            [
                "PASS: one",
                "hello",
                "PASS: two things",
                "result: 2 checks passed, 0 failed"
            ]
        );
        run.assert_guest_checks_passed()
            .assert_guest_passed("one")
            .assert_guest_passed("two");

        let failed = outcome(
            "guest: PASS: one\nguest: FAIL: two: got 0x1, expected 0x2\n\
             guest: result: 1 checks passed, 1 failed\n",
            Some(1),
        );
        let message = panic_message(|| {
            failed.assert_guest_checks_passed();
        });
        assert!(
            message
                .starts_with("the guest reported a failure: \"FAIL: two: got 0x1, expected 0x2\""),
            "{message}"
        );
        let message = panic_message(|| {
            failed.assert_guest_passed("three");
        });
        assert!(message.contains("\"PASS: three\""), "{message}");

        // A result line that does not match the PASS lines (a check went missing).
        let short = outcome(
            "guest: PASS: one\nguest: result: 2 checks passed, 0 failed\n",
            Some(0),
        );
        let message = panic_message(|| {
            short.assert_guest_checks_passed();
        });
        assert!(
            message.contains("result: 1 checks passed, 0 failed"),
            "{message}"
        );
        let none = outcome("Aerie: guest exited with status 0\n", Some(0));
        let message = panic_message(|| {
            none.assert_guest_checks_passed();
        });
        assert!(message.contains("passed checks"), "{message}");
    }

    #[test]
    fn a_timeout_is_not_an_exit() {
        let run = outcome("spinning", None);
        let message = panic_message(|| {
            run.assert_exit(0);
        });
        assert!(
            message.contains("killed after the 1.5s timeout"),
            "{message}"
        );
    }
}
