//! `cargo xtask bench` and `cargo xtask profile`, which xtask runs as this binary with
//! the command and its arguments. See the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    aerie_bench::main(&args)
}
