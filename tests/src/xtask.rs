//! Running `cargo xtask ...` from the tests as a user does, always against a deadline.
//!
//! Each run is started in a process group of its own (cargo, xtask and the QEMU that
//! xtask starts), so that when the deadline strikes, or a test gives up on a
//! [`Spawned`] run, the whole group is killed: no QEMU outlives its test, and a hang
//! fails that one test in bounded time with the output seen so far instead of
//! holding up the suite.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one `cargo xtask` run may take unless a test says otherwise: a Linux boot,
/// a command, a snapshot and cargo's check of the xtask build, on a loaded machine.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// How often a running xtask is checked.
const POLL: Duration = Duration::from_millis(20);

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
    let started = Instant::now();
    let mut command = command(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut spawned = Spawned::start(&mut command);
    let stdout = read_in_background(spawned.child.stdout.take());
    let stderr = read_in_background(spawned.child.stderr.take());
    let status = spawned.wait_until(started + deadline);
    let finished = status.is_some();
    // Kills whatever the run left behind (normally nothing), then the pipes close.
    drop(spawned);
    let run = XtaskRun {
        args: args.to_vec(),
        code: status.and_then(|status| status.code()),
        stdout: join(stdout),
        stderr: join(stderr),
        took: started.elapsed(),
    };
    assert!(
        finished,
        "the deadline of {} s struck: the run was killed with its QEMU. {}",
        deadline.as_secs(),
        run.story()
    );
    run
}

/// A child process leading a process group of its own; dropping it kills the group.
#[derive(Debug)]
pub struct Spawned {
    /// The group's leader (cargo).
    pub child: Child,
}

impl Spawned {
    /// Starts `command` in a new process group.
    ///
    /// # Panics
    /// If the command cannot start.
    pub fn start(command: &mut Command) -> Self {
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self { child }
    }

    /// Waits for the leader to exit until `deadline`; `None` if it was still running.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => thread::sleep(POLL),
                Err(e) => panic!("cannot wait for {:?}: {e}", self.child),
            }
        }
    }

    /// Kills every process of the group (the leader included, if it still runs).
    pub fn kill_group(&mut self) {
        // `kill -KILL -- -PGID` signals the whole group; the group's ID is the
        // leader's process ID. A group whose processes are all gone answers with an
        // error, which is what we want.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill_group();
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    let mut pipe = pipe?;
    Some(thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the output early; what was read so far is kept.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    }))
}

fn join(reader: Option<JoinHandle<Vec<u8>>>) -> String {
    let bytes = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_group_is_killed_whole_at_the_deadline() {
        // The leader starts a grandchild that would outlive it by a minute.
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 60 & echo started; wait"])
            .stdout(Stdio::piped());
        let started = Instant::now();
        let mut spawned = Spawned::start(&mut command);
        let stdout = read_in_background(spawned.child.stdout.take());
        assert!(
            spawned
                .wait_until(Instant::now() + Duration::from_millis(300))
                .is_none()
        );
        drop(spawned);
        // The pipe closes only once the grandchild, which holds it too, is gone.
        assert_eq!(join(stdout), "started\n");
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
