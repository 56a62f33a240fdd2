//! Running other programs: cargo, rustup, apt, QEMU.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use crate::error::{Error, Result};

/// A `cargo` command: the cargo that runs xtask (`$CARGO`), else `cargo` from PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Whether the environment variable `CI` is `true` (as in CI runs).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// The command as a person would type it: the variables it sets, the program's file
/// name (`cargo`, not the toolchain path of `$CARGO`), then the arguments, quoted where
/// needed.
pub fn display(command: &Command) -> String {
    let program = Path::new(command.get_program());
    let program = program.file_name().unwrap_or(program.as_os_str());
    let variables = command.get_envs().filter_map(|(name, value)| {
        let value = quote(value?);
        Some(format!("{}={value}", name.to_string_lossy()))
    });
    variables
        .chain(
            std::iter::once(program)
                .chain(command.get_args())
                .map(quote),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:@+%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `command` with the terminal as its stdio; returns whether it succeeded.
pub fn succeeds(command: &mut Command) -> Result<bool> {
    let status = command
        .status()
        .map_err(|e| Error::new(format!("cannot start `{}`: {e}", display(command))))?;
    Ok(status.success())
}

/// Runs `command` with the terminal as its stdio; fails unless it exits 0.
pub fn check(command: &mut Command) -> Result<()> {
    if succeeds(command)? {
        Ok(())
    } else {
        Err(Error::new(format!("`{}` failed", display(command))))
    }
}

/// Runs `command` quietly and returns its stdout; on failure the error carries
/// everything it printed.
pub fn output(command: &mut Command) -> Result<String> {
    let out = capture(command)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::new(format!(
            "`{}` failed ({}):\n{}{}",
            display(command),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Runs `command` with stdin closed and stdout and stderr captured.
pub fn capture(command: &mut Command) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot start `{}`: {e}", display(command))))
}

/// How often [`wait_until`] looks at a running child.
const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// How long a killed child may take to be reaped.
const REAP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for `child` to exit until `deadline`; `None` if it still runs then (or
/// cannot be waited for).
pub fn wait_until(child: &mut Child, deadline: std::time::Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(POLL),
            _ => return None,
        }
    }
}

/// Kills `child` and reaps it, waiting at most a few seconds for that.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = wait_until(child, std::time::Instant::now() + REAP_GRACE);
}

/// Runs `command` quietly like [`output`], but kills it if it has not finished after
/// `deadline` (for QEMU runs that should end by themselves, such as `dumpdtb`); the
/// error then says so, with what it printed.
pub fn output_within(command: &mut Command, deadline: std::time::Duration) -> Result<String> {
    let ran = aerie_host::run_to_end(command, deadline, false)
        .map_err(|e| Error::new(format!("cannot start `{}`: {e}", display(command))))?;
    let (stdout, stderr) = (ran.stdout, ran.stderr);
    match ran.status {
        Some(status) if status.success() => Ok(stdout),
        Some(status) => Err(Error::new(format!(
            "`{}` failed ({status}):\n{stdout}{stderr}",
            display(command)
        ))),
        None => Err(Error::new(format!(
            "`{}` did not finish within {} s and was stopped; it printed:\n{stdout}{stderr}",
            display(command),
            deadline.as_secs()
        ))),
    }
}

/// Finds `program` in the directories of `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether xtask runs as root (`id -u` prints 0).
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut command = Command::new("gdb-multiarch");
        command.args([
            "-q",
            "/t/aerie",
            "-ex",
            "target remote localhost:1234",
            "it's",
        ]);
        assert_eq!(
            display(&command),
            r"gdb-multiarch -q /t/aerie -ex 'target remote localhost:1234' 'it'\''s'"
        );
    }

    #[test]
    fn display_shows_variables_and_the_program_name() {
        let mut command = Command::new("/opt/toolchain/bin/cargo");
        command
            .args(["test", "--", "a b"])
            .env("AERIE_IMAGE", "/t/aerie.bin");
        assert_eq!(
            display(&command),
            "AERIE_IMAGE=/t/aerie.bin cargo test -- 'a b'"
        );
    }

    #[test]
    fn output_reports_failures_with_their_output() {
        let ok = output(Command::new("sh").args(["-c", "echo hi"])).unwrap();
        assert_eq!(ok, "hi\n");
        let error = output(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        assert!(error.to_string().contains("oops"), "{error}");
    }

    #[test]
    fn output_within_stops_what_outlives_its_deadline() {
        let ok = output_within(
            Command::new("sh").args(["-c", "echo hi"]),
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(ok, "hi\n");
        let started = std::time::Instant::now();
        let error = output_within(
            Command::new("sh").args(["-c", "echo waiting; exec sleep 30"]),
            std::time::Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert!(
            error.contains("did not finish within 0 s") && error.contains("waiting"),
            "{error}"
        );
    }

    #[test]
    fn sh_is_on_path() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("surely-not-a-program-xyz").is_none());
    }
}
