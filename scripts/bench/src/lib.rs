//! `cargo xtask bench` and `cargo xtask profile`, in their own crate so that the
//! everyday `cargo xtask` builds neither them nor their dependencies (plotters). xtask
//! runs this crate's binary with the command and its arguments; what the commands share
//! with `cargo xtask run` (paths, the guest, the image build, QEMU) comes from xtask's
//! library.
//!
//! | module | job |
//! |---|---|
//! | [`cli`] | the options of `bench` and `profile`, and their help text |
//! | [`mod@bench`] | `bench`: Aerie against no hypervisor and Xen, the report |
//! | [`profile`] | `profile`: one exit-cost row's instructions, function by function |
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod profile;

use std::process::ExitCode;

use cli::Command;
use xtask::paths::Layout;

/// Runs `bench ARGS` or `profile ARGS` (the arguments after `cargo xtask`); returns the
/// process exit code.
pub fn main(args: &[String]) -> ExitCode {
    let command = match cli::parse(args) {
        Ok(command) => command,
        // The help that was asked for (stdout, status 0) or a usage error (stderr, 2).
        Err(usage) => return xtask::cli::show(&usage),
    };
    let layout = Layout::discover();
    let result = match command {
        Command::Bench(options) => bench::run(&layout, &options),
        Command::Profile(options) => profile::run(&layout, &options),
    };
    xtask::finish(result)
}
