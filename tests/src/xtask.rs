//! Running `cargo xtask ...` from the tests as a user does, always against a deadline.
//!
//! Each run is started in a process group of its own (cargo, xtask and the QEMU that
//! xtask starts), so that when the deadline strikes, or a test gives up on a run, the
//! whole group is killed (see [`aerie_host::run_to_end`] and
//! [`crate::console_session`]): no QEMU outlives its test, and a hang fails that one
//! test in bounded time with the output seen so far instead of holding up the suite.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// How long one `cargo xtask` run may take unless a test says otherwise: a Linux boot,
/// a command, a snapshot and cargo's check of the xtask build, on a loaded machine.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// Held by the first run, so that only one test fetches the default guest and builds
/// xtask (the others wait for it, then run in parallel).
static FIRST_RUN: Mutex<bool> = Mutex::new(false);

/// What one `cargo xtask ...` did.
#[derive(Debug, Clone)]
pub struct XtaskRun {
    /// The arguments after `cargo xtask`, for messages.
    pub args: Vec<String>,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// How long it took, cargo's check of the xtask build included.
    pub took: Duration,
}

impl XtaskRun {
    /// The whole story, for assertion messages: the command, its exit code, stdout and
    /// stderr.
    pub fn story(&self) -> String {
        format!(
            "`cargo xtask {}`: exit code {:?} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }

    /// Whether stdout has exactly this line (carriage returns and trailing blanks
    /// aside).
    pub fn has_line(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l.trim_end() == line)
    }

    /// The stdout lines that start with `prefix`, without it (and without trailing
    /// blanks).
    pub fn lines_after(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|line| line.trim_end().strip_prefix(prefix))
            .collect()
    }
}

/// The `cargo` command that runs `cargo xtask ARGS` from the workspace root.
pub fn command<S: AsRef<str>>(args: &[S]) -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(crate::paths::workspace_root())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args.iter().map(AsRef::as_ref));
    cargo
}

/// Runs `cargo xtask ARGS` with no input, within [`DEFAULT_DEADLINE`].
pub fn xtask<S: AsRef<str>>(args: &[S]) -> XtaskRun {
    xtask_within(args, DEFAULT_DEADLINE)
}

/// Runs `cargo xtask ARGS` with no input. If it has not finished after `deadline`, it
/// is killed with everything it started, and the test fails with what it printed.
pub fn xtask_within<S: AsRef<str>>(args: &[S], deadline: Duration) -> XtaskRun {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    let run = || run_within(&args, deadline);
    let mut first_done = FIRST_RUN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *first_done {
        drop(first_done);
        return run();
    }
    let result = run();
    *first_done = true;
    result
}

/// Runs `cargo xtask run --snapshot-disk DISK --timeout TIMEOUT_SECS ARGS`, with a
/// snapshot disk of the test's own (concurrent QEMUs cannot share one), within
/// `deadline`.
pub fn xtask_run(timeout_secs: u32, args: &[&str], deadline: Duration) -> XtaskRun {
    let snapshots = crate::paths::snapshot_disk();
    let timeout = timeout_secs.to_string();
    let mut all = vec![
        "run",
        "--snapshot-disk",
        snapshots.to_str().expect("a UTF-8 path"),
        "--timeout",
        &timeout,
    ];
    all.extend_from_slice(args);
    xtask_within(&all, deadline)
}

fn run_within(args: &[String], deadline: Duration) -> XtaskRun {
    let mut command = command(args);
    // A process group of its own: the deadline kills cargo, xtask and QEMU together.
    let ran = aerie_host::run_to_end(&mut command, deadline, true)
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let run = XtaskRun {
        args: args.to_vec(),
        code: ran.status.and_then(|status| status.code()),
        stdout: ran.stdout,
        stderr: ran.stderr,
        took: ran.took,
    };
    assert!(
        ran.status.is_some(),
        "the deadline of {} s struck: the run was killed with its QEMU. {}",
        deadline.as_secs(),
        run.story()
    );
    run
}
