//! Command-line parsing: `cargo xtask <command> [options]` into a [`Command`].
//!
//! clap reads the arguments as [`args`] describes them (that description is also the
//! help text); [`rules`] turns them into the option structs below, which the commands
//! take, refusing the combinations that make no sense.

mod args;
mod rules;
#[cfg(test)]
mod tests;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, ValueEnum};

/// CPUs of `cargo xtask run` when `--smp` is not given.
pub const DEFAULT_RUN_SMP: u32 = 2;

/// QEMU's CPU model for `cargo xtask run` when `--cpu` is not given.
pub const DEFAULT_CPU: &str = "cortex-a72";

/// How long `--exec` may take by default, in seconds.
pub const DEFAULT_EXEC_TIMEOUT_SECS: u64 = 120;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `cargo xtask build`.
    Build(BuildOptions),
    /// `cargo xtask run`.
    Run(RunOptions),
    /// `cargo xtask test`.
    Test(TestOptions),
    /// `cargo xtask stress`.
    Stress(StressOptions),
    /// `cargo xtask fixtures`.
    Fixtures,
    /// `cargo xtask bench`: its arguments, for the aerie-bench crate to read.
    Bench(Vec<String>),
    /// `cargo xtask profile`: its arguments, for the aerie-bench crate to read.
    Profile(Vec<String>),
    /// `cargo xtask sdcard`.
    Sdcard(SdcardOptions),
    /// `cargo xtask snapshot`.
    Snapshot(SnapshotOptions),
}

/// The cargo profile Aerie is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// `--release` (the default): optimized, with debug info.
    #[default]
    Release,
    /// The dev profile (`--debug`).
    Debug,
}

impl Profile {
    /// The directory under `target/<triple>/` that cargo writes this profile to.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

/// Options of `cargo xtask build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BuildOptions {
    /// Which profile to build.
    pub profile: Profile,
}

/// The interrupt controller of QEMU's virt machine; each variant's doc is its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Gic {
    /// GICv2 (`gic-version=2`): at most 8 CPUs
    #[value(name = "2")]
    V2,
    /// GICv3 (`gic-version=3`)
    #[value(name = "3")]
    V3,
}

impl Gic {
    /// The value of QEMU's `gic-version` machine property.
    pub fn version(self) -> u32 {
        match self {
            Gic::V2 => 2,
            Gic::V3 => 3,
        }
    }

    /// The largest CPU count QEMU's virt machine supports with this GIC.
    pub fn max_cpus(self) -> u32 {
        match self {
            Gic::V2 => 8,
            Gic::V3 => 512,
        }
    }
}

/// The machine `cargo xtask run` emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Board {
    /// QEMU `virt` (the GIC version comes from `--gic`).
    #[default]
    Virt,
    /// QEMU `raspi4b`: the Raspberry Pi 4 model.
    Raspi4b,
}

impl Board {
    /// CPUs of the Raspberry Pi 4 (fixed by QEMU's model).
    pub const RASPI4B_CPUS: u32 = 4;
    /// RAM of QEMU's `raspi4b`, in MiB (fixed by the model).
    pub const RASPI4B_MEM_MIB: u64 = 2048;
    /// The most guest RAM that fits beside Aerie and the guest bundle in the low
    /// gigabyte the raspi4b device tree describes, in MiB.
    pub const RASPI4B_MAX_GUEST_MIB: u64 = 512;
}

/// Options of `cargo xtask run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Which profile to build and boot.
    pub profile: Profile,
    /// Boot without a guest.
    pub no_guest: bool,
    /// The machine.
    pub board: Board,
    /// The snapshot disk, instead of the default one (`--snapshot-disk`).
    pub snapshot_disk: Option<std::path::PathBuf>,
    /// With `--exec`: snapshot the guest once the command is done (`--snapshot`).
    pub snapshot: bool,
    /// Resume the newest snapshot instead of booting the guest (`--restore`).
    pub restore: bool,
    /// Which of the machine's sizes the user gave (`--restore` takes the others from
    /// the snapshot).
    pub explicit: Explicit,
    /// Raw disk images for the guest (virtio-blk).
    pub disks: Vec<std::path::PathBuf>,
    /// The guest kernel.
    pub kernel: Option<std::path::PathBuf>,
    /// The guest initrd.
    pub initrd: Option<std::path::PathBuf>,
    /// The guest's command line.
    pub append: Option<String>,
    /// Boot firmware instead of a kernel (`--bios`): `u-boot`, `edk2` or a file.
    pub bios: Option<std::path::PathBuf>,
    /// The firmware's variable store image (`--flash-vars`).
    pub flash_vars: Option<std::path::PathBuf>,
    /// Number of CPUs.
    pub smp: u32,
    /// RAM in MiB.
    pub mem_mib: u64,
    /// QEMU CPU model.
    pub cpu: String,
    /// GIC version.
    pub gic: Gic,
    /// Start halted with a gdb server on port 1234.
    pub gdb: bool,
    /// Run this command in the guest's shell, then power off (`--exec`).
    pub exec: Option<String>,
    /// How long `--exec` may take, in seconds.
    pub timeout_secs: u64,
    /// How long a run without `--exec` may take, in seconds (`--timeout`); no limit
    /// when absent.
    pub run_timeout_secs: Option<u64>,
    /// With `--exec`, copy the whole console to stderr.
    pub verbose: bool,
    /// Boot the guest directly on QEMU, without Aerie.
    pub no_hyp: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            profile: Profile::Release,
            no_guest: false,
            board: Board::Virt,
            snapshot_disk: None,
            snapshot: false,
            restore: false,
            explicit: Explicit::default(),
            disks: Vec::new(),
            kernel: None,
            initrd: None,
            append: None,
            bios: None,
            flash_vars: None,
            smp: DEFAULT_RUN_SMP,
            mem_mib: 1024,
            cpu: DEFAULT_CPU.to_string(),
            gic: Gic::V3,
            gdb: false,
            exec: None,
            timeout_secs: DEFAULT_EXEC_TIMEOUT_SECS,
            run_timeout_secs: None,
            verbose: false,
            no_hyp: false,
        }
    }
}

/// Which options that size the machine were given on the command line (clap's value
/// sources tell; a default does not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Explicit {
    /// `--smp`.
    pub smp: bool,
    /// `--mem`.
    pub mem: bool,
    /// `--gic`, or a `--board` that implies the GIC.
    pub gic: bool,
    /// `--cpu`.
    pub cpu: bool,
}

/// What `cargo xtask snapshot` does with the file; each variant's doc is its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnapshotAction {
    /// One line per slot (A, B): empty, valid (sequence, size, chunks, vCPUs, RAM) or
    /// damaged (where and why)
    #[value(verbatim_doc_comment)]
    List,
    /// The newest valid snapshot's description and its chunks by kind
    Info,
    /// Check the superblock, both slots, every state chunk and all memory; exit status
    /// 0 only if a valid snapshot exists and nothing is damaged
    #[value(verbatim_doc_comment)]
    Verify,
}

/// Options of `cargo xtask snapshot`; the field docs are their help text.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SnapshotOptions {
    /// What to do
    #[arg(value_name = "ACTION")]
    pub action: SnapshotAction,
    /// The snapshot disk image
    #[arg(value_name = "FILE", value_parser = args::non_empty_path)]
    pub file: std::path::PathBuf,
}

/// Options of `cargo xtask test`; the field docs are their help text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Args)]
pub struct TestOptions {
    /// Skip QEMU: no QEMU setup and no integration tests
    #[arg(long)]
    pub host_only: bool,
    /// Run only the QEMU integration tests whose name contains NAME
    ///
    /// The bench step is skipped then.
    #[arg(long, value_name = "NAME", verbatim_doc_comment)]
    pub filter: Option<String>,
}

/// Options of `cargo xtask stress`; the field docs are their help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct StressOptions {
    /// How many boots in all; half on 1 CPU, half on 2
    #[arg(
        long,
        value_name = "N",
        default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub runs: u32,
    /// How many `cargo xtask run` at once
    #[arg(
        long,
        value_name = "P",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub parallel: u32,
    /// Keep every host CPU busy with spinning threads beside QEMU
    #[arg(long)]
    pub load: bool,
}

impl Default for StressOptions {
    fn default() -> Self {
        Self {
            runs: 50,
            parallel: 3,
            load: false,
        }
    }
}

/// The Raspberry Pi `cargo xtask sdcard` writes a folder for; each variant's doc is its
/// help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PiBoard {
    /// Raspberry Pi 4 Model B (BCM2711)
    Rpi4,
    /// Raspberry Pi 5 (BCM2712)
    Rpi5,
}

impl PiBoard {
    /// Both boards, in the order the usage text names them.
    pub const ALL: [PiBoard; 2] = [PiBoard::Rpi4, PiBoard::Rpi5];

    /// CPU cores of either board (4x Cortex-A72 on the Pi 4, 4x Cortex-A76 on the Pi 5).
    pub const CPUS: u32 = 4;

    /// The name `--board` takes.
    pub fn name(self) -> &'static str {
        match self {
            PiBoard::Rpi4 => "rpi4",
            PiBoard::Rpi5 => "rpi5",
        }
    }

    /// The board's full name, for people.
    pub fn model(self) -> &'static str {
        match self {
            PiBoard::Rpi4 => "Raspberry Pi 4 Model B",
            PiBoard::Rpi5 => "Raspberry Pi 5",
        }
    }
}

/// Options of `cargo xtask sdcard`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdcardOptions {
    /// The board.
    pub board: PiBoard,
    /// The folder to write.
    pub out: std::path::PathBuf,
    /// The guest kernel (else the default guest).
    pub kernel: Option<std::path::PathBuf>,
    /// The guest initrd (with `kernel`).
    pub initrd: Option<std::path::PathBuf>,
    /// The guest's command line (added to the default guest's own).
    pub append: Option<String>,
    /// The guest's RAM in MiB.
    pub mem_mib: u64,
    /// The guest's vCPUs.
    pub smp: u32,
}

impl SdcardOptions {
    /// The guest's default RAM in MiB: with Aerie, the guest bundle and the firmware's
    /// GPU share (76 MiB by default) it leaves room to spare on the 1 GiB Pi 4, whose
    /// firmware describes about 948 MiB of RAM.
    pub const DEFAULT_MEM_MIB: u64 = 512;
    /// The guest's default vCPUs: one per core.
    pub const DEFAULT_SMP: u32 = PiBoard::CPUS;

    /// Options for `board` into `out`, the rest at their defaults.
    pub fn new(board: PiBoard, out: std::path::PathBuf) -> Self {
        Self {
            board,
            out,
            kernel: None,
            initrd: None,
            append: None,
            mem_mib: Self::DEFAULT_MEM_MIB,
            smp: Self::DEFAULT_SMP,
        }
    }
}

/// Prints the help that was asked for (stdout) or a usage error (stderr); returns the
/// exit code clap gives it (0 or 2).
pub fn show(usage: &clap::Error) -> std::process::ExitCode {
    // Printing fails only when stdout or stderr is closed: nothing to tell then.
    let _ = usage.print();
    std::process::ExitCode::from(u8::try_from(usage.exit_code()).unwrap_or(2))
}

/// Parses the arguments after `cargo xtask`. The error is clap's: a usage error, a
/// refused combination of options, or the help text that was asked for (its
/// [`clap::Error::print`] and [`clap::Error::exit_code`] say where it goes and how the
/// run ends).
pub fn parse(args: &[String]) -> Result<Command, clap::Error> {
    // `help bench` and `help profile`: their help text is the bench crate's.
    if let [help, name] = args
        && help == "help"
        && let Some(forwarded) = args::forwarded(name, vec!["--help".to_string()])
    {
        return Ok(forwarded);
    }
    let mut cli = args::Cli::command();
    let argv = std::iter::once("cargo xtask").chain(args.iter().map(String::as_str));
    let matches = cli.try_get_matches_from_mut(argv)?;
    let parsed = args::Cli::from_arg_matches(&matches)?;
    let (name, given) = matches
        .subcommand()
        .expect("clap requires a command (arg_required_else_help)");
    let on_command_line = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);
    rules::command(parsed.command, &on_command_line).map_err(|refusal| {
        cli.find_subcommand_mut(name)
            .expect("the command clap just matched")
            .error(clap::error::ErrorKind::ArgumentConflict, refusal)
    })
}
