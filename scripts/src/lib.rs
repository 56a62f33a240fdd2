//! `cargo xtask`: Aerie's build, run and test tool.
//!
//! | module | job |
//! |---|---|
//! | [`cli`] | parse the command line |
//! | [`paths`] | where the workspace, the target directory and the outputs are |
//! | [`process`] | run other programs |
//! | [`setup`] | install the Rust target and QEMU when missing |
//! | [`apt`] | read APT sources, write the backports entry |
//! | [`os_release`] | which distribution the host runs |
//! | [`qemu`] | the installed QEMU's version |
//! | [`flat`] | ELF to flat binary |
//! | [`image`] | `build`: compile Aerie and write `aerie.bin` |
//! | [`atomic_file`] | write files other runs may be reading: whole, renamed into place |
//! | [`run`] | `run`: boot Aerie in QEMU interactively |
//! | [`test`](mod@test) | `test`: every test, then a summary |
//! | [`test_guests`] | build the test guests into flat Images for the integration tests |
//! | [`stress`] | `stress`: many boots side by side, hangs and failures counted |
//! | [`fixtures`] | `fixtures`: regenerate the device-tree fixtures |
//! | [`dtb_pack`] | cut a device-tree blob's free space |
//! | [`debian`] | fetch Debian's arm64 packages with APT |
//! | [`guest_material`] | the guest to boot: the user's, or the default (fetched, cached) |
//! | [`firmware`] | `run --bios`: the firmware (Debian's U-Boot or EDK2, or a file) and its variable store |
//! | [`initramfs`] | the default guest's busybox initramfs and `/init` |
//! | [`watch`] | `run` without `--exec`: the console passed through, a silent boot or `--timeout` stopped |
//! | [`exec`] | `run --exec`: run a command in the guest by typing on its console |
//! | [`conversation`] | the whole console conversation of `--exec`: restore, command, snapshot or power-off |
//! | [`exec_session`] | running the command in the guest's shell, as a pure state machine |
//! | [`aerie_console`] | talking to Aerie for `--snapshot` and `--restore`, as pure state machines |
//! | [`snapshot_disk`] | `run --snapshot-disk`: its size, creating it, what `--restore` finds |
//! | [`disk_claim`] | the default snapshot disk, one run at a time; a stand-in for the others |
//! | [`disk_spec`] | `FILE` or `blkdebug:RULES:FILE`: a disk, with faults QEMU injects |
//! | [`file_disk`] | a disk image file as the snapshot code's `Disk` |
//! | [`snapshot_tool`] | `snapshot list\|info\|verify`: read a snapshot disk |
//! | [`no_hyp`] | `run --no-hyp`: the same guest straight on QEMU |
//! | [`bench_crate`] | `bench` and `profile`: run the aerie-bench crate (`scripts/bench/`) |
//! | [`sdcard`] | `sdcard`: a folder that boots Aerie on a Raspberry Pi 4 or 5 |
//!
//! Every QEMU command line is built with aerie-host's `Qemu` builder and every console
//! is driven through its `Console` session (`scripts/host/`, shared with the
//! integration tests); the guest's initramfs is written with `aerie_hyp::bundle`'s
//! cpio writer.
#![forbid(unsafe_code)]

pub mod aerie_console;
pub mod apt;
pub mod atomic_file;
pub mod bench_crate;
pub mod cli;
pub mod conversation;
pub mod debian;
pub mod disk_claim;
pub mod disk_spec;
pub mod dtb_pack;
pub mod error;
pub mod exec;
pub mod exec_session;
pub mod file_disk;
pub mod firmware;
pub mod fixtures;
pub mod flat;
pub mod guest;
pub mod guest_material;
pub mod image;
pub mod initramfs;
pub mod no_hyp;
pub mod os_release;
pub mod paths;
pub mod process;
pub mod qemu;
pub mod run;
pub mod sdcard;
pub mod setup;
pub mod snapshot_disk;
pub mod snapshot_tool;
pub mod stress;
pub mod test;
#[cfg(test)]
mod test_files;
pub mod test_guests;
pub mod watch;

use std::process::ExitCode;

use cli::Command;
use paths::Layout;

/// Runs xtask with the arguments after `cargo xtask`; returns the process exit code.
pub fn main(args: &[String]) -> ExitCode {
    let command = match cli::parse(args) {
        Ok(command) => command,
        Err(usage) => return cli::show(&usage),
    };
    let layout = Layout::discover();
    let result = match command {
        Command::Build(options) => image::run(&layout, options).map(|()| ExitCode::SUCCESS),
        Command::Run(options) => run::run(&layout, &options),
        Command::Test(options) => test::run(&layout, &options),
        Command::Stress(options) => stress::run(&layout, &options),
        Command::Fixtures => fixtures::run(&layout).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench_crate::run(&layout, "bench", &args),
        Command::Profile(args) => bench_crate::run(&layout, "profile", &args),
        Command::Sdcard(options) => sdcard::run(&layout, &options).map(|()| ExitCode::SUCCESS),
        Command::Snapshot(options) => snapshot_tool::run(&options),
    };
    finish(result)
}

/// The exit code of a command that ran: its own, or 1 after printing its error.
pub fn finish(result: error::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("xtask: {error}");
        ExitCode::FAILURE
    })
}
