//! `cargo xtask`: Aerie's build, run and test tool. See the library for the commands.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    xtask::main(&args)
}
