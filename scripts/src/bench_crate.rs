//! `cargo xtask bench` and `cargo xtask profile`: they live in their own crate
//! (`scripts/bench/`, aerie-bench) so that the everyday `cargo xtask build|run|test`
//! compiles neither them nor their plotting crate. xtask runs that crate's binary with
//! the command and its arguments as given, `--help` included: aerie-bench describes the
//! options (once) and reads them.
//!
//! The binary is built with the dev profile, as xtask is: it shares every dependency
//! xtask's own build already compiled (clap, serde, aerie-host...), so a first `bench`
//! compiles only the bench and plotters, unoptimised, in seconds, and runs as the bench
//! ran inside xtask before (the time is in QEMU, not here).

use std::process::{Command, ExitCode};

use crate::error::Result;
use crate::paths::Layout;
use crate::process;

/// The bench crate's package name.
pub const PACKAGE: &str = "aerie-bench";

/// `cargo run -p aerie-bench -- COMMAND ARGS`, from the workspace's root.
pub fn command(layout: &Layout, name: &str, args: &[String]) -> Command {
    let mut cargo = process::cargo();
    cargo
        .args(["run", "--quiet", "--package", PACKAGE])
        .current_dir(layout.root());
    if process::in_ci() {
        cargo.args(["--color", "never"]);
    }
    cargo.arg("--").arg(name).args(args);
    cargo
}

/// Runs `cargo xtask NAME ARGS` (`bench` or `profile`) through the bench crate; its
/// exit status is the command's (1 for any failure, 2 for a usage error).
pub fn run(layout: &Layout, name: &str, args: &[String]) -> Result<ExitCode> {
    let mut command = command(layout, name, args);
    let status = command.status().map_err(|e| {
        crate::error::Error::new(format!(
            "cannot start `{}`: {e}",
            process::display(&command)
        ))
    })?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: a failure all the same.
        None => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_go_over_as_given() {
        let layout = Layout::discover();
        let args = [
            "--only".to_string(),
            "exits".to_string(),
            "--help".to_string(),
        ];
        let shown = process::display(&command(&layout, "bench", &args));
        assert!(
            shown.ends_with("--package aerie-bench -- bench --only exits --help")
                || shown
                    .ends_with("--package aerie-bench --color never -- bench --only exits --help"),
            "{shown}"
        );
        assert!(shown.starts_with("cargo run --quiet"), "{shown}");
    }
}
