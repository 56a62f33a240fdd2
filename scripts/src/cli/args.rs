//! The command line as clap reads it: every command and option, with the help text
//! that `cargo xtask help`, `cargo xtask help COMMAND` and `cargo xtask COMMAND
//! --help` print. Each option is described once: here, or for the commands whose
//! option structs clap fills directly (test, stress, bench, profile, snapshot) on
//! those structs. The first line of a description is its summary (`-h`), the rest
//! adds detail (`--help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::{
    Command, DEFAULT_CPU, DEFAULT_RUN_SMP, Gic, PiBoard, SdcardOptions, SnapshotOptions,
    StressOptions, TestOptions,
};

/// `cargo xtask` and its command.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "cargo xtask: build, run and test Aerie",
    arg_required_else_help = true,
    args_override_self = true,
    after_help = "`cargo xtask help COMMAND` or `cargo xtask COMMAND --help` describes a command's options."
)]
pub(super) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The commands, in the order `cargo xtask help` lists them.
#[derive(Debug, Subcommand)]
pub(super) enum CliCommand {
    /// Build Aerie and write the flat arm64 Image target/aerie/aerie.bin
    Build(BuildArgs),
    /// Build, then boot Aerie in QEMU with this terminal as the serial console
    ///
    /// Without --kernel, run boots the default guest under Aerie: Debian's arm64 kernel
    /// and a busybox initramfs with a shell, fetched with APT once and cached in
    /// target/aerie/guest/ (the first fetch needs root, else the message says what to
    /// do).
    ///
    /// Exit status: QEMU's (0 after a clean power-off, the guest's after Aerie's EXIT
    /// hypercall, 2 when Aerie refuses the machine or the guest, 3 when Aerie crashes);
    /// with --exec, CMD's. 124 when xtask stopped QEMU: --timeout struck, or a run under
    /// Aerie whose console stayed silent for 10 s (20 with CI=true) after QEMU started:
    /// the boot hung.
    #[command(verbatim_doc_comment, after_long_help = CONSOLE_KEYS)]
    Run(RunArgs),
    /// Run every test (host unit, QEMU integration, lints) and print a summary
    Test(TestOptions),
    /// Boot test guests many times, several runs at once; report hangs and failures
    ///
    /// The smallest test guests under Aerie, several `cargo xtask run` side by side
    /// sharing the image, the test guests and the default snapshot disk; every boot
    /// must end as its guest says.
    #[command(verbatim_doc_comment)]
    Stress(StressOptions),
    /// Regenerate the device-tree fixtures in tests/fixtures/ from QEMU
    Fixtures,
    // bench and profile: their options and help text are aerie-bench's (scripts/bench/
    // src/cli.rs), which reads the arguments xtask hands over; only the summary `cargo
    // xtask help` lists is here (keep it as aerie-bench spells it).
    /// Measure Aerie against bare QEMU and Xen; write docs/bench/latest.{md,json}
    #[command(disable_help_flag = true)]
    Bench(Forwarded),
    /// Where the instructions of one exit-cost row go, function by function
    #[command(disable_help_flag = true)]
    Profile(Forwarded),
    /// Write a folder that boots Aerie on a Raspberry Pi 4 or 5 from an SD card
    ///
    /// Copy the folder onto a FAT32 SD card: Aerie, its guest and the firmware files
    /// that boot them. The guest is packed as by run: without --kernel, the default
    /// guest.
    #[command(verbatim_doc_comment)]
    Sdcard(SdcardArgs),
    /// Read a snapshot disk: list its slots, describe or verify its snapshot
    ///
    /// `verify` checks every byte: exit status 0 only if the disk holds an undamaged
    /// snapshot.
    #[command(verbatim_doc_comment)]
    Snapshot(SnapshotOptions),
}

/// The keys of `run`'s console, after `cargo xtask run --help`.
const CONSOLE_KEYS: &str = "\
The console: this terminal is the machine's serial port and every key goes to the
guest, Ctrl-C included. Aerie keeps Ctrl-A:
  Ctrl-A x        quit (power off)
  Ctrl-A h        list the keys
  Ctrl-A c        open Aerie's console (help, stats, snapshot, quit, resume);
                  Ctrl-A c again returns to the guest
  Ctrl-A s        print statistics
  Ctrl-A v        send typed input to the guest's second console (hvc0), or back
                  to its UART
  Ctrl-A Ctrl-A   send a Ctrl-A
With --no-hyp QEMU does the same for Ctrl-A x and Ctrl-A h.";

/// Options of `build`.
#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    /// Build the debug profile instead of release
    #[arg(long)]
    pub debug: bool,
}

/// The guest of `run` and `sdcard`.
#[derive(Debug, Args)]
pub(super) struct GuestArgs {
    /// Your own guest instead of the default one: an arm64 Image (gzip'd is fine)
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Your guest's initrd (with --kernel)
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// The kernel command line: with --kernel all of it, else added to the default's
    ///
    /// The default guest's own: console=ttyAMA0 earlycon rdinit=/init.
    #[arg(long, value_name = "ARGS", verbatim_doc_comment)]
    pub append: Option<String>,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The guest.
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Boot, run CMD in the guest's shell, print its output, power off
    ///
    /// Exits with CMD's status (124 on timeout; QEMU's status, or 1, if the machine
    /// stops first). Drives the console; the default guest boots with `quiet`.
    #[arg(long, value_name = "CMD", value_parser = command_text, verbatim_doc_comment)]
    pub exec: Option<String>,
    /// How long --exec may take (default 120), or a run without --exec (no limit)
    ///
    /// With --exec: boot (or restore) and CMD; with --snapshot, the snapshot gets as
    /// long again. Without --exec, QEMU is stopped after SECS (exit status 124).
    #[arg(
        long,
        value_name = "SECS",
        value_parser = seconds,
        verbatim_doc_comment
    )]
    pub timeout: Option<u64>,
    /// With --exec: also copy the whole console, boot log included, to stderr
    #[arg(long)]
    pub verbose: bool,
    /// Boot the same guest straight on QEMU virt without Aerie, to compare
    ///
    /// Takes the same --smp, --mem, --cpu, --gic, --append, --exec and --disk (then
    /// QEMU's own virtio-blk): the way to bisect "is it the hypervisor?".
    #[arg(long, verbatim_doc_comment)]
    pub no_hyp: bool,
    /// Give the guest a virtio-blk disk backed by FILE (raw; repeat for vdb, ...)
    ///
    /// `blkdebug:RULES:FILE` puts QEMU's blkdebug driver in front of FILE, failing the
    /// requests its rules file names.
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    pub disk: Vec<PathBuf>,
    /// Boot Aerie alone: hardware summary, then power off
    #[arg(long)]
    pub no_guest: bool,
    /// Boot firmware instead of a kernel: u-boot, edk2 or a file, as QEMU's -bios
    ///
    /// The code goes in flash bank 0, a variable store in bank 1. u-boot and edk2 are
    /// Debian's builds, fetched once into target/aerie/firmware/. The firmware boots
    /// from a --disk.
    #[arg(long, value_name = "FW", verbatim_doc_comment)]
    pub bios: Option<PathBuf>,
    /// The firmware's variable store, where its settings survive
    ///
    /// Default target/aerie/flash-vars-FW.img, created empty.
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    pub flash_vars: Option<PathBuf>,
    /// The disk Aerie keeps snapshots on (default target/aerie/snapshots.img)
    ///
    /// Created sparse when missing, sized for two snapshots of the guest's RAM:
    /// 2 x (RAM + 16 MiB) + 1 MiB. The default disk serves one run at a time: a run
    /// started while another holds it gets target/aerie/snapshots-PID.img (deleted
    /// afterwards unless it took a snapshot), and --restore then asks for
    /// --snapshot-disk. `blkdebug:RULES:FILE` as for --disk.
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    pub snapshot_disk: Option<PathBuf>,
    /// With --exec: once CMD is done, snapshot the guest, then power off
    ///
    /// Aerie's console command `snapshot`; the exit status is CMD's.
    #[arg(long, verbatim_doc_comment)]
    pub snapshot: bool,
    /// Resume the newest snapshot on the snapshot disk instead of booting
    ///
    /// Its vCPUs, RAM, GIC and CPU model size QEMU unless --smp, --mem, --gic or --cpu
    /// are given. With --exec, CMD runs in the restored shell. A firmware guest needs
    /// the same --bios and --flash-vars (Aerie checks both are unchanged).
    #[arg(long, verbatim_doc_comment)]
    pub restore: bool,
    /// CPUs and guest vCPUs: at most 8 with --gic 2, 512 with --gic 3
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RUN_SMP, value_parser = cpu_count)]
    pub smp: u32,
    /// RAM in whole MiB (512M, 1G): the guest's if there is one, else the machine's
    ///
    /// The machine gets Aerie's share on top of the guest's. On --board raspi4b the
    /// default is 512M, the most the guest can have there.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "1G",
        value_parser = mem_mib,
        verbatim_doc_comment
    )]
    pub mem: u64,
    /// QEMU CPU model, such as cortex-a72 or max
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_CPU, value_parser = cpu_model)]
    pub cpu: String,
    /// GIC version of QEMU's virt machine
    #[arg(long, value_name = "VERSION", default_value = "3")]
    pub gic: Gic,
    /// The machine
    #[arg(long, value_name = "NAME", default_value = "virt")]
    pub board: RunBoard,
    /// Start halted with a gdb server on localhost:1234; print how to attach
    #[arg(long)]
    pub gdb: bool,
    /// Build and run the debug profile instead of release
    #[arg(long)]
    pub debug: bool,
}

/// The machines `run --board` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum RunBoard {
    /// QEMU virt (its GIC from --gic)
    #[value(name = "virt")]
    Virt,
    /// QEMU virt with GICv2 (= --gic 2)
    #[value(name = "virt-gicv2")]
    VirtGicv2,
    /// QEMU's Raspberry Pi 4: 4 CPUs, GIC-400, at most 512M for the guest, no --disk
    #[value(name = "raspi4b")]
    Raspi4b,
}

/// Options of `sdcard`.
#[derive(Debug, Args)]
pub(super) struct SdcardArgs {
    /// The board: Raspberry Pi 4 Model B or Raspberry Pi 5
    #[arg(long, value_name = "BOARD")]
    pub board: PiBoard,
    /// The folder to write (created if missing), to copy onto the card
    #[arg(long, value_name = "DIR", value_parser = non_empty_path)]
    pub out: PathBuf,
    /// The guest.
    #[command(flatten)]
    pub guest: GuestArgs,
    /// The guest's RAM (the default fits a 1 GiB Pi 4)
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = mem_mib)]
    pub mem: u64,
    /// The guest's vCPUs: at most 4, one per core
    #[arg(
        long,
        value_name = "N",
        default_value_t = SdcardOptions::DEFAULT_SMP,
        value_parser = cpu_count
    )]
    pub smp: u32,
}

/// One mebibyte, the unit QEMU's `-m` is given in.
const MIB: u64 = 1 << 20;

/// `--smp`: a CPU count of at least 1 (each command checks its own upper bound).
fn cpu_count(value: &str) -> Result<u32, String> {
    at_least_one(value, "a CPU count")
}

/// `--timeout`: seconds, at least 1.
fn seconds(value: &str) -> Result<u64, String> {
    at_least_one(value, "a number of seconds")
}

/// A whole number of at least 1; else says it is not `what` of at least 1.
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(
    value: &str,
    what: &str,
) -> Result<T, String> {
    match value.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("not {what} of at least 1")),
    }
}

/// `--mem`: any size `aerie_hyp::units::parse_size` accepts, at least 1 MiB and a whole
/// number of MiB. Returns MiB.
fn mem_mib(value: &str) -> Result<u64, String> {
    let bytes = aerie_hyp::units::parse_size(value).map_err(|e| e.to_string())?;
    if bytes < MIB {
        return Err("less than 1 MiB".to_string());
    }
    if bytes % MIB != 0 {
        return Err("not a whole number of MiB (QEMU's -m takes MiB)".to_string());
    }
    Ok(bytes / MIB)
}

/// `--cpu`: a name QEMU could know (letters, digits, `-`, `_`, `.`).
fn cpu_model(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_string())
    } else {
        Err("not a QEMU CPU model name".to_string())
    }
}

/// `--exec`: a command that is not blank.
fn command_text(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("a blank command".to_string())
    } else {
        Ok(value.to_string())
    }
}

/// A file or folder name that is not empty.
pub(super) fn non_empty_path(value: &str) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        Err("the name is empty".to_string())
    } else {
        Ok(value.into())
    }
}

/// The arguments of a command another crate reads (bench, profile), `--help` included.
#[derive(Debug, Args)]
pub(super) struct Forwarded {
    /// The command's options (`cargo xtask COMMAND --help` lists them)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub(super) args: Vec<String>,
}

/// The command `name` with `args` when another crate reads its arguments.
pub(super) fn forwarded(name: &str, args: Vec<String>) -> Option<Command> {
    match name {
        "bench" => Some(Command::Bench(args)),
        "profile" => Some(Command::Profile(args)),
        _ => None,
    }
}
