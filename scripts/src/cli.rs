//! Command-line parsing: `cargo xtask <command> [options]` into a [`Command`].

use std::fmt;

/// The usage text, printed by `cargo xtask help` and after a usage error.
pub const USAGE: &str = "\
cargo xtask: build, run and test Aerie

Usage: cargo xtask <command> [options]

Commands:
  build          Build Aerie and write the flat arm64 Image target/aerie/aerie.bin
  run            Build, then boot Aerie in QEMU with this terminal as the serial console
  test           Run every test (host unit, QEMU integration, lints) and print a summary
  stress         Boot the smallest test guests under Aerie many times, several
                 `cargo xtask run` at once, and report hangs and failures
  fixtures       Regenerate the device-tree fixtures in tests/fixtures/ from QEMU
  bench          Measure Aerie against no hypervisor and Xen; write docs/bench/latest.md
                 and latest.json (about 15 minutes)
  profile ROW    Where the instructions of one exit-cost row of `bench --only exits` go:
                 the median iteration by function of Aerie and of the bench guest
  sdcard         Write a folder to copy onto a FAT32 SD card: Aerie, its guest and the
                 firmware files that boot them on a Raspberry Pi 4 or 5
  snapshot list|info|verify FILE
                 Read a snapshot disk: its slots; the newest snapshot's description;
                 or check every byte (exit status 0 only if it holds an undamaged one)
  help           Print this text (also: --help, -h)

Options of build:
  --debug        Build the debug profile instead of release

Options of run (without --kernel, run boots the default guest under Aerie: Debian's
arm64 kernel and a busybox initramfs with a shell, fetched with APT once and cached in
target/aerie/guest/; the first fetch needs root, else the message says what to do):
  --kernel FILE  Boot your own guest instead: an arm64 Image (gzip'd is fine)
  --initrd FILE  Your guest's initrd (with --kernel)
  --append ARGS  The kernel command line: with --kernel, all of it; for the default
                 guest, added to its own (console=ttyAMA0 earlycon rdinit=/init)
  --exec CMD     Boot, run CMD in the guest's shell, print its output, power off and
                 exit with CMD's status (124 on timeout; QEMU's status, or 1, if the
                 machine stops first). Drives the console; the default guest boots
                 with `quiet`
  --timeout SECS With --exec: how long boot (or restore) and CMD may take; with
                 --snapshot, the snapshot gets as long again (default 120). Without
                 --exec: stop QEMU after SECS (exit status 124; no limit by default).
                 Any run under Aerie whose console stays silent for 10 s (20 with
                 CI=true) after QEMU starts is stopped the same way: the boot hung
  --verbose      With --exec: also copy the whole console, boot log included, to stderr
  --no-hyp       Boot the same guest straight on QEMU virt without Aerie (no EL2), to
                 compare; same --smp, --mem, --cpu, --gic, --append, --exec
  --disk FILE    Give the guest a virtio-blk disk backed by FILE (raw image; may be
                 repeated: /dev/vda, /dev/vdb, ...)
  --no-guest     Boot Aerie alone: hardware summary, then power off
  --bios FW      Boot firmware instead of a kernel, as QEMU virt -bios does: code in
                 flash bank 0, a variable store in bank 1; FW is u-boot or edk2
                 (Debian's builds, fetched once into target/aerie/firmware/) or a file.
                 The firmware boots from a --disk
  --flash-vars FILE  The firmware's variable store (default
                 target/aerie/flash-vars-FW.img, created empty); settings survive in it
  --snapshot-disk FILE  The disk Aerie keeps snapshots on (default
                 target/aerie/snapshots.img); created sparse when missing, sized for
                 two snapshots of the guest's RAM; give each concurrent run its own
  --snapshot     With --exec: once CMD is done, snapshot the guest (Aerie's console
                 command `snapshot`), then power off; exit with CMD's status
  --restore      Resume the newest snapshot on the snapshot disk instead of booting the
                 guest; its vCPUs and RAM size QEMU unless --smp / --mem are given.
                 With --exec, CMD runs in the restored shell. A firmware guest needs
                 the same --bios and --flash-vars (Aerie checks both are unchanged)
  --smp N        Number of CPUs (and guest vCPUs): 1..=8 with --gic 2, 1..=512 with
                 --gic 3 (default 2)
  --mem SIZE     RAM: the guest's when there is one (the machine gets Aerie's share on
                 top), else the machine's; a whole number of MiB such as 512M or 1G
                 (default 1G)
  --cpu MODEL    QEMU CPU model (default cortex-a72)
  --gic 2|3      GIC version of QEMU's virt machine (default 3)
  --board NAME   The machine: virt (default), virt-gicv2 (= --gic 2) or raspi4b (QEMU's
                 Raspberry Pi 4: 4 CPUs, GIC-400, spin-table start; no virtio disks)
  --gdb          Start halted with a gdb server on localhost:1234 and print how to attach
  --debug        Build and run the debug profile instead of release

Options of bench (a full run fetches Xen 4.17 with APT once, like the default guest):
  --quick        One round of the cheapest rows, written to target/aerie/bench/ (CI)
  --pairs N      Interleaved rounds of every comparison (default 7; 1 with --quick)
  --out DIR      Where to write latest.md and latest.json (default docs/bench/)
  --only PART    Only these rows: boot, disk, exits or snapshot (written, like --quick,
                 to target/aerie/bench/ unless --out is given)

Options of profile (ROW: hvc-psci-version or hvc, hvc-aerie-revision or revision,
mmio-testdev-id or testdev, mmio-pl011-fr or pl011 or uart, mmio-virtio-id or virtio,
gicd-typer or gicd, ipi-round-trip or ipi, vtimer-busy, vtimer-wfi):
  --iterations N Iterations measured (default 50)
  --detail       Under each function, its straight-line blocks of instructions

Options of sdcard (the guest is packed as by run: without --kernel, the default guest):
  --board rpi4|rpi5  The board: Raspberry Pi 4 Model B or Raspberry Pi 5 (required)
  --out DIR      The folder to write (created if missing; required)
  --kernel FILE, --initrd FILE, --append ARGS  The guest, as for run
  --mem SIZE     The guest's RAM (default 512M, which fits a 1 GiB Pi 4)
  --smp N        The guest's vCPUs: 1..=4 (default 4, one per core)

Options of snapshot:
  list FILE      One line per slot (A, B): empty, valid (sequence, size, chunks, vCPUs,
                 RAM) or damaged (where and why)
  info FILE      The newest valid snapshot's description and its chunks by kind
  verify FILE    Check the superblock, both slots, every state chunk and all memory;
                 exit status 0 only if a valid snapshot exists and nothing is damaged

Options of stress:
  --runs N       How many boots in all (default 50); half on 1 CPU, half on 2
  --parallel P   How many `cargo xtask run` at once (default 3)
  --load         Keep every host CPU busy with spinning threads beside QEMU

Options of test:
  --host-only    Skip QEMU: no QEMU setup and no integration tests
  --filter NAME  Run only the QEMU integration tests whose name contains NAME

Options take their value as the next argument or after '=' (--smp=4).

The console of `run`: this terminal is the machine's serial port and every key goes
to the guest, Ctrl-C included. Aerie keeps Ctrl-A: Ctrl-A x quits (powers off),
Ctrl-A h lists the keys, Ctrl-A c opens Aerie's console (help, stats, snapshot, quit,
resume),
Ctrl-A Ctrl-A sends a Ctrl-A. With --no-hyp QEMU does the same for Ctrl-A x and h.
";

/// One mebibyte, the unit QEMU's `-m` is given in.
const MIB: u64 = 1 << 20;

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
    /// `cargo xtask bench`.
    Bench(BenchOptions),
    /// `cargo xtask profile`.
    Profile(ProfileOptions),
    /// `cargo xtask sdcard`.
    Sdcard(SdcardOptions),
    /// `cargo xtask snapshot`.
    Snapshot(SnapshotOptions),
    /// `cargo xtask help`, or `--help` anywhere.
    Help,
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

/// The interrupt controller of QEMU's virt machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gic {
    /// GICv2 (`gic-version=2`): at most 8 CPUs.
    V2,
    /// GICv3 (`gic-version=3`).
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
            smp: 2,
            mem_mib: 1024,
            cpu: "cortex-a72".to_string(),
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

/// Which options that size the machine were given on the command line.
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

/// What `cargo xtask snapshot` does with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    /// `list`: one line per slot.
    List,
    /// `info`: the newest valid snapshot's description.
    Info,
    /// `verify`: check everything; the exit status says whether it is sound.
    Verify,
}

impl SnapshotAction {
    /// Every action, in the order of the usage text.
    pub const ALL: [SnapshotAction; 3] = [
        SnapshotAction::List,
        SnapshotAction::Info,
        SnapshotAction::Verify,
    ];

    /// The word on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SnapshotAction::List => "list",
            SnapshotAction::Info => "info",
            SnapshotAction::Verify => "verify",
        }
    }
}

/// Options of `cargo xtask snapshot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// What to do.
    pub action: SnapshotAction,
    /// The snapshot disk image.
    pub file: std::path::PathBuf,
}

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestOptions {
    /// Skip QEMU setup and the integration tests.
    pub host_only: bool,
    /// Filter passed to the integration test binary.
    pub filter: Option<String>,
}

/// Options of `cargo xtask stress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StressOptions {
    /// How many boots in all.
    pub runs: u32,
    /// How many `cargo xtask run` at once.
    pub parallel: u32,
    /// Keep every CPU busy with hog threads beside QEMU.
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

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BenchOptions {
    /// One round of the cheapest rows, for CI.
    pub quick: bool,
    /// Interleaved rounds; default 7, or 1 with `quick`.
    pub pairs: Option<u32>,
    /// Where to write `latest.md` and `latest.json`; default `docs/bench/` (the
    /// committed report), or `target/aerie/bench/` with `quick` or `only`.
    pub out: Option<std::path::PathBuf>,
    /// Only these rows (`--only`).
    pub only: Option<BenchPart>,
}

/// Options of `cargo xtask profile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOptions {
    /// The row, by the name the bench guest prints (`row=NAME`).
    pub row: String,
    /// Iterations measured.
    pub iterations: usize,
    /// Each function's blocks too.
    pub detail: bool,
}

/// A part of `cargo xtask bench` that `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchPart {
    /// The Linux boot rows (wall clock, and under icount in a full run).
    Boot,
    /// The virtio-blk throughput rows.
    Disk,
    /// The exit costs of the micro-benchmark guest.
    Exits,
    /// Snapshot and restore against QEMU's migration to a file.
    Snapshot,
}

impl BenchPart {
    /// Every part, in the report's order.
    pub const ALL: [BenchPart; 4] = [
        BenchPart::Boot,
        BenchPart::Disk,
        BenchPart::Exits,
        BenchPart::Snapshot,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            BenchPart::Boot => "boot",
            BenchPart::Disk => "disk",
            BenchPart::Exits => "exits",
            BenchPart::Snapshot => "snapshot",
        }
    }
}

/// The Raspberry Pi `cargo xtask sdcard` writes a folder for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiBoard {
    /// Raspberry Pi 4 Model B (BCM2711).
    Rpi4,
    /// Raspberry Pi 5 (BCM2712).
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

/// A command line xtask does not understand; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    let Some((command, rest)) = args.split_first() else {
        return Err(UsageError("no command given".to_string()));
    };
    let mut options = Options::new(rest);
    let parsed = match command.as_str() {
        "build" => Command::Build(parse_build(&mut options)?),
        "run" => Command::Run(parse_run(&mut options)?),
        "test" => Command::Test(parse_test(&mut options)?),
        "stress" => Command::Stress(parse_stress(&mut options)?),
        "fixtures" => Command::Fixtures,
        "bench" => Command::Bench(parse_bench(&mut options)?),
        "profile" => Command::Profile(parse_profile(&mut options)?),
        "sdcard" => Command::Sdcard(parse_sdcard(&mut options)?),
        "snapshot" => Command::Snapshot(parse_snapshot(&mut options)?),
        "help" => Command::Help,
        other => return Err(UsageError(format!("unknown command `{other}`"))),
    };
    match options.next() {
        Some(option) => Err(UsageError(format!(
            "`{command}` does not take `{}`",
            option.name
        ))),
        None => Ok(parsed),
    }
}

fn parse_build(options: &mut Options<'_>) -> Result<BuildOptions, UsageError> {
    let mut build = BuildOptions::default();
    while let Some(option) = options.peek() {
        match option.name {
            "--debug" => {
                options.flag()?;
                build.profile = Profile::Debug;
            }
            _ => break,
        }
    }
    Ok(build)
}

fn parse_run(options: &mut Options<'_>) -> Result<RunOptions, UsageError> {
    let mut run = RunOptions::default();
    let mut timeout_given = false;
    while let Some(option) = options.peek() {
        match option.name {
            "--debug" => {
                options.flag()?;
                run.profile = Profile::Debug;
            }
            "--no-guest" => run.no_guest = options.flag()?,
            "--no-hyp" => run.no_hyp = options.flag()?,
            "--kernel" => run.kernel = Some(options.value()?.into()),
            "--snapshot-disk" => run.snapshot_disk = Some(options.value()?.into()),
            "--snapshot" => run.snapshot = options.flag()?,
            "--restore" => run.restore = options.flag()?,
            "--disk" => run.disks.push(options.value()?.into()),
            "--initrd" => run.initrd = Some(options.value()?.into()),
            "--append" => run.append = Some(options.value()?),
            "--bios" => run.bios = Some(options.value()?.into()),
            "--flash-vars" => run.flash_vars = Some(options.value()?.into()),
            "--exec" => run.exec = Some(parse_exec(&options.value()?)?),
            "--timeout" => {
                run.timeout_secs = parse_timeout(&options.value()?)?;
                timeout_given = true;
            }
            "--verbose" => run.verbose = options.flag()?,
            "--gdb" => run.gdb = options.flag()?,
            "--smp" => {
                run.smp = parse_smp(&options.value()?)?;
                run.explicit.smp = true;
            }
            "--mem" => {
                run.mem_mib = parse_mem(&options.value()?)?;
                run.explicit.mem = true;
            }
            "--cpu" => {
                run.cpu = parse_cpu(&options.value()?)?;
                run.explicit.cpu = true;
            }
            "--gic" => {
                run.gic = parse_gic(&options.value()?)?;
                run.explicit.gic = true;
            }
            "--board" => match options.value()?.as_str() {
                "virt" => run.board = Board::Virt,
                "virt-gicv2" => {
                    run.board = Board::Virt;
                    run.gic = Gic::V2;
                    run.explicit.gic = true;
                }
                "raspi4b" => run.board = Board::Raspi4b,
                other => {
                    return Err(UsageError(format!(
                        "--board must be virt, virt-gicv2 or raspi4b, not `{other}`"
                    )));
                }
            },
            _ => break,
        }
    }
    let mem_given = run.explicit.mem;
    if run.board == Board::Raspi4b && !mem_given {
        run.mem_mib = Board::RASPI4B_MAX_GUEST_MIB;
    }
    check_run(&run, timeout_given, mem_given)?;
    check_snapshot_options(&run)?;
    if timeout_given && run.exec.is_none() {
        run.run_timeout_secs = Some(run.timeout_secs);
    }
    Ok(run)
}

/// The combinations of `run` options that make no sense.
fn check_run(run: &RunOptions, timeout_given: bool, mem_given: bool) -> Result<(), UsageError> {
    let refuse = |message: &str| Err(UsageError(message.to_string()));
    if run.no_guest {
        if run.kernel.is_some() || run.initrd.is_some() || run.append.is_some() {
            return refuse("--no-guest cannot be combined with --kernel, --initrd or --append");
        }
        if run.exec.is_some() {
            return refuse("--exec needs a guest to run the command in; drop --no-guest");
        }
        if run.no_hyp {
            return refuse(
                "--no-hyp boots the guest without Aerie and --no-guest Aerie without a \
                 guest: pick one",
            );
        }
    }
    if run.board == Board::Raspi4b {
        if run.no_hyp {
            return refuse(
                "--no-hyp is for virt only: Debian's kernel needs a patched device tree on raspi4b",
            );
        }
        if !run.disks.is_empty() {
            return refuse(
                "--disk needs virtio-mmio, which raspi4b does not have: use --board virt",
            );
        }
        if u64::from(run.smp) > u64::from(Board::RASPI4B_CPUS) {
            return refuse("raspi4b has 4 CPUs: --smp 1 to 4");
        }
        if run.mem_mib > Board::RASPI4B_MAX_GUEST_MIB && mem_given {
            return refuse("on raspi4b the guest can have at most 512M (--mem)");
        }
    }
    if run.kernel.is_none() && run.initrd.is_some() {
        return refuse("--initrd needs --kernel (the default guest brings its own initramfs)");
    }
    check_bios(run)?;
    if timeout_given && run.gdb {
        return refuse(
            "--timeout cannot be combined with --gdb (a debugging session has no deadline)",
        );
    }
    if run.exec.is_none() {
        if run.verbose {
            return refuse("--verbose applies to --exec only");
        }
    } else if run.gdb {
        return refuse("--exec cannot be combined with --gdb (its timeout would strike)");
    }
    if run.smp > run.gic.max_cpus() {
        return Err(UsageError(format!(
            "--smp {} is too many for GICv{}: at most {} CPUs",
            run.smp,
            run.gic.version(),
            run.gic.max_cpus()
        )));
    }
    Ok(())
}

/// The combinations of `--bios` and `--flash-vars` that make no sense.
fn check_bios(run: &RunOptions) -> Result<(), UsageError> {
    let refuse = |message: &str| Err(UsageError(message.to_string()));
    if run.bios.is_none() {
        if run.flash_vars.is_some() {
            return refuse("--flash-vars is the variable store of --bios firmware");
        }
        return Ok(());
    }
    if run.kernel.is_some() || run.append.is_some() || run.no_guest {
        return refuse(
            "--bios boots firmware, which loads the operating system from a --disk: drop \
             --kernel, --initrd, --append and --no-guest",
        );
    }
    if run.board == Board::Raspi4b || run.no_hyp {
        return refuse(
            "--bios gives Aerie's guest QEMU virt's flash: it needs --board virt and Aerie \
             (for bare QEMU: qemu-system-aarch64 -M virt -bios FILE)",
        );
    }
    if run.exec.is_some() {
        return refuse(
            "--bios cannot be combined with --exec yet (snapshot a firmware guest at \
             Aerie's console: Ctrl-A c, then `snapshot`)",
        );
    }
    Ok(())
}

/// The combinations of `--snapshot` and `--restore` that make no sense.
fn check_snapshot_options(run: &RunOptions) -> Result<(), UsageError> {
    let refuse = |message: &str| Err(UsageError(message.to_string()));
    for (given, name) in [(run.snapshot, "--snapshot"), (run.restore, "--restore")] {
        if !given {
            continue;
        }
        if run.no_hyp {
            return Err(UsageError(format!(
                "{name} needs Aerie, which takes the snapshots: drop --no-hyp"
            )));
        }
        if run.no_guest {
            return Err(UsageError(format!(
                "{name} needs a guest to snapshot or resume: drop --no-guest"
            )));
        }
        if run.board == Board::Raspi4b {
            return Err(UsageError(format!(
                "{name} needs the snapshot disk (virtio-mmio), which raspi4b does not \
                 have: use --board virt"
            )));
        }
    }
    if run.snapshot && run.exec.is_none() {
        return refuse(
            "--snapshot needs --exec CMD (the snapshot is taken once CMD is done); \
             interactively, take one at Aerie's console: Ctrl-A c, then `snapshot`",
        );
    }
    Ok(())
}

fn parse_exec(value: &str) -> Result<String, UsageError> {
    if value.trim().is_empty() {
        Err(UsageError("--exec needs a command".to_string()))
    } else {
        Ok(value.to_string())
    }
}

fn parse_timeout(value: &str) -> Result<u64, UsageError> {
    match value.parse::<u64>() {
        Ok(secs) if secs >= 1 => Ok(secs),
        _ => Err(UsageError(format!(
            "--timeout needs a number of seconds of at least 1, not `{value}`"
        ))),
    }
}

fn parse_test(options: &mut Options<'_>) -> Result<TestOptions, UsageError> {
    let mut test = TestOptions::default();
    while let Some(option) = options.peek() {
        match option.name {
            "--host-only" => test.host_only = options.flag()?,
            "--filter" => test.filter = Some(options.value()?),
            _ => break,
        }
    }
    Ok(test)
}

fn parse_stress(options: &mut Options<'_>) -> Result<StressOptions, UsageError> {
    let mut stress = StressOptions::default();
    let count = |name: &str, value: String, max: u32| match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "{name} needs a number from 1 to {max}, not `{value}`"
        ))),
    };
    while let Some(option) = options.peek() {
        match option.name {
            "--runs" => stress.runs = count("--runs", options.value()?, 100_000)?,
            "--parallel" => stress.parallel = count("--parallel", options.value()?, 64)?,
            "--load" => stress.load = options.flag()?,
            _ => break,
        }
    }
    Ok(stress)
}

fn parse_bench(options: &mut Options<'_>) -> Result<BenchOptions, UsageError> {
    let mut bench = BenchOptions::default();
    while let Some(option) = options.peek() {
        match option.name {
            "--quick" => bench.quick = options.flag()?,
            "--pairs" => {
                let value = options.value()?;
                bench.pairs = match value.parse::<u32>() {
                    Ok(pairs) if pairs >= 1 => Some(pairs),
                    _ => {
                        return Err(UsageError(format!(
                            "--pairs needs a number of rounds of at least 1, not `{value}`"
                        )));
                    }
                };
            }
            "--out" => bench.out = Some(options.value()?.into()),
            "--only" => {
                let value = options.value()?;
                bench.only = match BenchPart::ALL.into_iter().find(|part| part.name() == value) {
                    Some(part) => Some(part),
                    None => {
                        let names: Vec<&str> = BenchPart::ALL.map(BenchPart::name).to_vec();
                        return Err(UsageError(format!(
                            "--only takes one of {}, not `{value}`",
                            names.join(", ")
                        )));
                    }
                };
            }
            _ => break,
        }
    }
    Ok(bench)
}

fn parse_profile(options: &mut Options<'_>) -> Result<ProfileOptions, UsageError> {
    let Some(name) = options.positional() else {
        return Err(UsageError(format!(
            "profile needs a ROW: {}",
            crate::profile::rows::names()
        )));
    };
    let Some(row) = crate::profile::rows::find(name) else {
        return Err(UsageError(format!(
            "profile has no row `{name}`: {}",
            crate::profile::rows::names()
        )));
    };
    let mut profile = ProfileOptions {
        row: row.name.to_string(),
        iterations: crate::profile::DEFAULT_ITERATIONS,
        detail: false,
    };
    while let Some(option) = options.peek() {
        match option.name {
            "--iterations" => {
                let value = options.value()?;
                profile.iterations = match value.parse::<usize>() {
                    Ok(n) if (1..=100_000).contains(&n) => n,
                    _ => {
                        return Err(UsageError(format!(
                            "--iterations needs a number from 1 to 100000, not `{value}`"
                        )));
                    }
                };
            }
            "--detail" => profile.detail = options.flag()?,
            _ => break,
        }
    }
    Ok(profile)
}

fn parse_sdcard(options: &mut Options<'_>) -> Result<SdcardOptions, UsageError> {
    let mut board = None;
    let mut out = None;
    let mut sdcard = SdcardOptions::new(PiBoard::Rpi4, std::path::PathBuf::new());
    while let Some(option) = options.peek() {
        match option.name {
            "--board" => board = Some(parse_pi_board(&options.value()?)?),
            "--out" => out = Some(options.value()?),
            "--kernel" => sdcard.kernel = Some(options.value()?.into()),
            "--initrd" => sdcard.initrd = Some(options.value()?.into()),
            "--append" => sdcard.append = Some(options.value()?),
            "--mem" => sdcard.mem_mib = parse_mem(&options.value()?)?,
            "--smp" => sdcard.smp = parse_smp(&options.value()?)?,
            _ => break,
        }
    }
    sdcard.board =
        board.ok_or_else(|| UsageError("sdcard needs --board rpi4 or --board rpi5".to_string()))?;
    sdcard.out = match out {
        Some(dir) if !dir.trim().is_empty() => dir.into(),
        _ => {
            return Err(UsageError(
                "sdcard needs --out DIR: the folder to write (then copy onto the card)".to_string(),
            ));
        }
    };
    if sdcard.smp > PiBoard::CPUS {
        return Err(UsageError(format!(
            "--smp {}: the {} has {} cores, so at most {} vCPUs",
            sdcard.smp,
            sdcard.board.model(),
            PiBoard::CPUS,
            PiBoard::CPUS
        )));
    }
    if sdcard.kernel.is_none() && sdcard.initrd.is_some() {
        return Err(UsageError(
            "--initrd needs --kernel (the default guest brings its own initramfs)".to_string(),
        ));
    }
    Ok(sdcard)
}

fn parse_snapshot(options: &mut Options<'_>) -> Result<SnapshotOptions, UsageError> {
    let names = || SnapshotAction::ALL.map(SnapshotAction::name).join(", ");
    let Some(word) = options.positional() else {
        return Err(UsageError(format!(
            "snapshot needs what to do ({}) and the snapshot disk FILE",
            names()
        )));
    };
    let action = SnapshotAction::ALL
        .into_iter()
        .find(|action| action.name() == word)
        .ok_or_else(|| UsageError(format!("snapshot can {}, not `{word}`", names())))?;
    match options.positional() {
        Some(file) if !file.is_empty() => Ok(SnapshotOptions {
            action,
            file: file.into(),
        }),
        _ => Err(UsageError(format!(
            "snapshot {} needs the snapshot disk FILE",
            action.name()
        ))),
    }
}

fn parse_pi_board(value: &str) -> Result<PiBoard, UsageError> {
    PiBoard::ALL
        .into_iter()
        .find(|board| board.name() == value)
        .ok_or_else(|| UsageError(format!("--board must be rpi4 or rpi5, not `{value}`")))
}

fn parse_smp(value: &str) -> Result<u32, UsageError> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(UsageError(format!(
            "--smp needs a CPU count of at least 1, not `{value}`"
        ))),
    }
}

/// Parses `--mem`: any size `aerie_hyp::units::parse_size` accepts, at least 1 MiB and
/// a whole number of MiB. Returns MiB.
fn parse_mem(value: &str) -> Result<u64, UsageError> {
    let bytes =
        aerie_hyp::units::parse_size(value).map_err(|e| UsageError(format!("--mem: {e}")))?;
    if bytes < MIB {
        return Err(UsageError(format!("--mem `{value}` is less than 1 MiB")));
    }
    if bytes % MIB != 0 {
        return Err(UsageError(format!(
            "--mem `{value}` is not a whole number of MiB (QEMU's -m takes MiB)"
        )));
    }
    Ok(bytes / MIB)
}

fn parse_cpu(value: &str) -> Result<String, UsageError> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(UsageError(format!(
            "--cpu `{value}` is not a QEMU CPU model name"
        )))
    }
}

fn parse_gic(value: &str) -> Result<Gic, UsageError> {
    match value {
        "2" => Ok(Gic::V2),
        "3" => Ok(Gic::V3),
        _ => Err(UsageError(format!("--gic must be 2 or 3, not `{value}`"))),
    }
}

/// One argument as written: its name and, for `--name=value`, the inline value.
#[derive(Debug, Clone, Copy)]
struct Arg<'a> {
    name: &'a str,
    inline_value: Option<&'a str>,
}

/// A cursor over the options after the command.
struct Options<'a> {
    args: &'a [String],
    position: usize,
}

impl<'a> Options<'a> {
    fn new(args: &'a [String]) -> Self {
        Self { args, position: 0 }
    }

    fn peek(&self) -> Option<Arg<'a>> {
        let arg = self.args.get(self.position)?;
        Some(match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => Arg {
                name,
                inline_value: Some(value),
            },
            _ => Arg {
                name: arg,
                inline_value: None,
            },
        })
    }

    fn next(&mut self) -> Option<Arg<'a>> {
        let option = self.peek()?;
        self.position += 1;
        Some(option)
    }

    /// Consumes an argument that is not an option (does not start with `--`).
    fn positional(&mut self) -> Option<&'a str> {
        let arg = self.args.get(self.position)?;
        if arg.starts_with("--") {
            return None;
        }
        self.position += 1;
        Some(arg)
    }

    /// Consumes a flag (an option without a value); returns `true` for the caller to store.
    fn flag(&mut self) -> Result<bool, UsageError> {
        match self.next() {
            Some(Arg {
                name,
                inline_value: Some(_),
            }) => Err(UsageError(format!("{name} does not take a value"))),
            _ => Ok(true),
        }
    }

    /// Consumes an option and its value (inline or the next argument).
    fn value(&mut self) -> Result<String, UsageError> {
        let Some(option) = self.next() else {
            return Err(UsageError("missing option".to_string()));
        };
        if let Some(value) = option.inline_value {
            return Ok(value.to_string());
        }
        match self.args.get(self.position) {
            Some(value) if !value.starts_with("--") => {
                self.position += 1;
                Ok(value.clone())
            }
            _ => Err(UsageError(format!("{} needs a value", option.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, UsageError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    fn run(line: &str) -> RunOptions {
        match parse_line(line) {
            Ok(Command::Run(options)) => options,
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse_line(line) {
            Err(UsageError(message)) => message,
            Ok(command) => panic!("`{line}` was accepted as {command:?}"),
        }
    }

    #[test]
    fn commands_and_help() {
        assert_eq!(
            parse_line("build"),
            Ok(Command::Build(BuildOptions::default()))
        );
        assert_eq!(
            parse_line("build --debug"),
            Ok(Command::Build(BuildOptions {
                profile: Profile::Debug
            }))
        );
        assert_eq!(parse_line("fixtures"), Ok(Command::Fixtures));
        assert_eq!(
            parse_line("stress"),
            Ok(Command::Stress(StressOptions::default()))
        );
        assert_eq!(
            parse_line("stress --runs 200 --load --parallel=4"),
            Ok(Command::Stress(StressOptions {
                runs: 200,
                parallel: 4,
                load: true
            }))
        );
        assert!(parse_line("stress --runs 0").is_err());
        assert!(parse_line("stress --parallel many").is_err());
        assert_eq!(parse_line("help"), Ok(Command::Help));
        assert_eq!(parse_line("--help"), Ok(Command::Help));
        assert_eq!(parse_line("run --smp 3 -h"), Ok(Command::Help));
        assert_eq!(error(""), "no command given");
        assert_eq!(error("frobnicate"), "unknown command `frobnicate`");
    }

    #[test]
    fn run_defaults() {
        let options = run("run");
        assert_eq!(options, RunOptions::default());
        assert_eq!(options.smp, 2);
        assert_eq!(options.mem_mib, 1024);
        assert_eq!(options.cpu, "cortex-a72");
        assert_eq!(options.gic, Gic::V3);
        assert!(!options.gdb && !options.no_guest);
    }

    #[test]
    fn run_options_in_both_spellings() {
        let options = run("run --no-guest --smp 4 --mem=512M --cpu max --gic=2 --gdb --debug");
        assert_eq!(
            options,
            RunOptions {
                profile: Profile::Debug,
                no_guest: true,
                smp: 4,
                mem_mib: 512,
                cpu: "max".to_string(),
                gic: Gic::V2,
                gdb: true,
                explicit: Explicit {
                    smp: true,
                    mem: true,
                    gic: true,
                    cpu: true,
                },
                ..RunOptions::default()
            }
        );
        assert_eq!(run("run --mem 2GiB").mem_mib, 2048);
        assert_eq!(run("run --mem 1M").mem_mib, 1);
    }

    #[test]
    fn boards() {
        assert_eq!(run("run --board virt-gicv2").gic, Gic::V2);
        let pi = run("run --board raspi4b");
        assert_eq!(
            (pi.board, pi.mem_mib),
            (Board::Raspi4b, Board::RASPI4B_MAX_GUEST_MIB)
        );
        assert!(error("run --board raspi4b --smp 5").contains("4 CPUs"));
        assert!(error("run --board raspi4b --mem 768M").contains("at most 512M"));
        assert!(error("run --board raspi4b --disk /d.img").contains("virtio-mmio"));
        assert!(error("run --board raspi4b --no-hyp").contains("virt only"));
        assert!(error("run --board pi9").contains("--board must be"));
    }

    #[test]
    fn guest_options() {
        let options = run("run --kernel /k/Image --initrd=/k/initrd --append 'quiet' --smp 2");
        assert_eq!(
            options.kernel.as_deref(),
            Some(std::path::Path::new("/k/Image"))
        );
        assert_eq!(
            options.initrd.as_deref(),
            Some(std::path::Path::new("/k/initrd"))
        );
        assert_eq!(options.append.as_deref(), Some("'quiet'"));
        assert!(error("run --initrd /k/initrd").contains("needs --kernel"));
        let options = run("run --bios u-boot --disk /d.img --flash-vars /v.img");
        assert_eq!(
            options.bios.as_deref(),
            Some(std::path::Path::new("u-boot"))
        );
        assert_eq!(
            options.flash_vars.as_deref(),
            Some(std::path::Path::new("/v.img"))
        );
        assert!(error("run --bios u-boot --kernel /k").contains("drop --kernel"));
        assert!(error("run --bios u-boot --no-hyp").contains("bare QEMU"));
        assert!(error("run --bios u-boot --board raspi4b").contains("--board virt"));
        assert!(error("run --bios u-boot --exec true").contains("yet"));
        // Firmware guests are snapshotted at Aerie's console and restored like others.
        let options = run("run --bios u-boot --restore");
        assert!(options.restore && options.bios.is_some());
        assert!(error("run --flash-vars /v.img").contains("variable store"));
        // For the default guest, --append adds to its command line.
        assert_eq!(
            run("run --append loglevel=8").append.as_deref(),
            Some("loglevel=8")
        );
        assert!(error("run --no-guest --kernel /k/Image").contains("cannot be combined"));
    }

    #[test]
    fn exec_and_its_options() {
        let args: Vec<String> = [
            "run",
            "--no-hyp",
            "--exec",
            "grep -c ^processor /proc/cpuinfo",
        ]
        .map(str::to_string)
        .to_vec();
        let Ok(Command::Run(options)) = parse(&args) else {
            panic!()
        };
        assert_eq!(
            options.exec.as_deref(),
            Some("grep -c ^processor /proc/cpuinfo")
        );
        assert!(options.no_hyp);
        assert_eq!(options.timeout_secs, 120);
        let options = run("run --exec=true --timeout 30 --verbose");
        assert_eq!(options.exec.as_deref(), Some("true"));
        assert_eq!(options.timeout_secs, 30);
        assert!(options.verbose);
        assert!(error("run --exec").contains("--exec needs a value"));
        assert!(error("run --exec=").contains("needs a command"));
        assert_eq!(run("run --timeout 5").run_timeout_secs, Some(5));
        assert_eq!(run("run --exec true --timeout 5").run_timeout_secs, None);
        assert_eq!(run("run").run_timeout_secs, None);
        assert!(error("run --gdb --timeout 5").contains("--gdb"));
        assert!(error("run --verbose").contains("--exec only"));
        assert!(error("run --exec true --timeout 0").contains("at least 1"));
        assert!(error("run --exec true --timeout soon").contains("`soon`"));
        assert!(error("run --exec true --gdb").contains("--gdb"));
        assert!(error("run --exec true --no-guest").contains("drop --no-guest"));
    }

    #[test]
    fn explicit_sizes_are_remembered() {
        assert_eq!(run("run").explicit, Explicit::default());
        // Giving the default value still counts as giving it.
        let options = run("run --smp 2 --mem 1G");
        assert_eq!(
            options.explicit,
            Explicit {
                smp: true,
                mem: true,
                gic: false,
                cpu: false,
            }
        );
        assert!(run("run --cpu max").explicit.cpu);
        assert!(run("run --board virt-gicv2").explicit.gic);
        assert!(!run("run --board virt").explicit.gic);
        assert!(run("run --gic 3").explicit.gic);
    }

    #[test]
    fn snapshot_options() {
        let options = run("run --snapshot-disk /s/s.img --exec true --snapshot");
        assert_eq!(
            options.snapshot_disk.as_deref(),
            Some(std::path::Path::new("/s/s.img"))
        );
        assert!(options.snapshot && !options.restore);
        let options = run("run --snapshot-disk=/s.img --restore");
        assert!(options.restore && !options.snapshot);
        // Restore, run, snapshot again: a chain of snapshots.
        let options = run("run --restore --exec true --snapshot");
        assert!(options.restore && options.snapshot);
        assert_eq!(run("run").snapshot_disk, None);
        assert!(error("run --snapshot").contains("--snapshot needs --exec CMD"));
        assert!(error("run --snapshot-disk").contains("needs a value"));
        assert!(error("run --restore=yes").contains("does not take a value"));
        assert!(error("run --restore --no-hyp").contains("drop --no-hyp"));
        assert!(error("run --exec true --snapshot --no-hyp").contains("drop --no-hyp"));
        assert!(error("run --restore --no-guest").contains("drop --no-guest"));
        assert!(error("run --restore --board raspi4b").contains("use --board virt"));
        // The old spelling is gone.
        assert_eq!(
            error("run --snapshots /s.img"),
            "`run` does not take `--snapshots`"
        );
        // A snapshot disk alone is fine with --no-hyp (it is not attached).
        assert!(run("run --no-hyp --snapshot-disk /s.img").no_hyp);
    }

    #[test]
    fn snapshot_command() {
        for action in SnapshotAction::ALL {
            assert_eq!(
                parse_line(&format!("snapshot {} /s/s.img", action.name())),
                Ok(Command::Snapshot(SnapshotOptions {
                    action,
                    file: "/s/s.img".into()
                }))
            );
        }
        assert_eq!(
            error("snapshot"),
            "snapshot needs what to do (list, info, verify) and the snapshot disk FILE"
        );
        assert_eq!(
            error("snapshot check s.img"),
            "snapshot can list, info, verify, not `check`"
        );
        assert_eq!(
            error("snapshot verify"),
            "snapshot verify needs the snapshot disk FILE"
        );
        assert_eq!(
            error("snapshot list a.img b.img"),
            "`snapshot` does not take `b.img`"
        );
        assert_eq!(
            error("snapshot list --all a.img"),
            "snapshot list needs the snapshot disk FILE"
        );
    }

    #[test]
    fn no_hyp_needs_a_guest() {
        assert!(run("run --no-hyp").no_hyp);
        assert!(run("run --no-hyp --kernel /k --gdb --smp 4").gdb);
        assert!(error("run --no-hyp --no-guest").contains("pick one"));
    }

    #[test]
    fn smp_limits_depend_on_the_gic() {
        assert_eq!(run("run --gic 2 --smp 8").smp, 8);
        assert_eq!(run("run --smp 512").smp, 512);
        assert!(error("run --smp 9 --gic 2").contains("at most 8"));
        assert!(error("run --smp 513").contains("at most 512"));
        assert!(error("run --smp 0").contains("at least 1"));
        assert!(error("run --smp two").contains("`two`"));
    }

    #[test]
    fn bad_mem_values_are_explained() {
        assert!(error("run --mem 512K").contains("less than 1 MiB"));
        assert!(error("run --mem 1537K").contains("whole number of MiB"));
        let not_a_size = error("run --mem lots");
        assert!(
            not_a_size.starts_with("--mem: ") && not_a_size.contains("lots"),
            "{not_a_size}"
        );
    }

    #[test]
    fn bad_options_are_rejected() {
        assert_eq!(error("run --bogus"), "`run` does not take `--bogus`");
        assert_eq!(error("build --gdb"), "`build` does not take `--gdb`");
        assert_eq!(
            error("fixtures --debug"),
            "`fixtures` does not take `--debug`"
        );
        assert_eq!(error("run --smp"), "--smp needs a value");
        assert_eq!(error("run --cpu --gdb"), "--cpu needs a value");
        assert_eq!(error("run --gdb=yes"), "--gdb does not take a value");
        assert!(error("run --gic 4").contains("2 or 3"));
        assert!(error("run --cpu a,b").contains("CPU model"));
    }

    #[test]
    fn test_options() {
        assert_eq!(
            parse_line("test"),
            Ok(Command::Test(TestOptions::default()))
        );
        assert_eq!(
            parse_line("test --host-only --filter boots"),
            Ok(Command::Test(TestOptions {
                host_only: true,
                filter: Some("boots".to_string())
            }))
        );
        assert_eq!(error("test --filter"), "--filter needs a value");
    }

    #[test]
    fn bench_options() {
        assert_eq!(
            parse_line("bench"),
            Ok(Command::Bench(BenchOptions::default()))
        );
        assert_eq!(
            parse_line("bench --quick --pairs 3 --out /tmp/r"),
            Ok(Command::Bench(BenchOptions {
                quick: true,
                pairs: Some(3),
                out: Some("/tmp/r".into()),
                only: None,
            }))
        );
        assert_eq!(
            parse_line("bench --only snapshot"),
            Ok(Command::Bench(BenchOptions {
                only: Some(BenchPart::Snapshot),
                ..BenchOptions::default()
            }))
        );
        assert_eq!(
            error("bench --only xen"),
            "--only takes one of boot, disk, exits, snapshot, not `xen`"
        );
        assert!(error("bench --pairs 0").contains("at least 1"));
        assert!(error("bench --pairs many").contains("`many`"));
        assert_eq!(error("bench --smp 2"), "`bench` does not take `--smp`");
    }

    #[test]
    fn profile_options() {
        assert_eq!(
            parse_line("profile hvc"),
            Ok(Command::Profile(ProfileOptions {
                row: "hvc-psci-version".into(),
                iterations: crate::profile::DEFAULT_ITERATIONS,
                detail: false,
            }))
        );
        assert_eq!(
            parse_line("profile vtimer-wfi --iterations 7 --detail"),
            Ok(Command::Profile(ProfileOptions {
                row: "vtimer-wfi".into(),
                iterations: 7,
                detail: true,
            }))
        );
        assert!(error("profile").starts_with("profile needs a ROW: hvc-psci-version (hvc), "));
        assert!(error("profile loop").starts_with("profile has no row `loop`: "));
        assert!(error("profile ipi --iterations 0").contains("from 1 to 100000, not `0`"));
        assert_eq!(
            error("profile ipi --pairs 2"),
            "`profile` does not take `--pairs`"
        );
    }

    fn sdcard(line: &str) -> SdcardOptions {
        match parse_line(line) {
            Ok(Command::Sdcard(options)) => options,
            other => panic!("`{line}` parsed as {other:?}"),
        }
    }

    #[test]
    fn sdcard_defaults_and_options() {
        assert_eq!(
            sdcard("sdcard --board rpi4 --out /tmp/card"),
            SdcardOptions::new(PiBoard::Rpi4, "/tmp/card".into())
        );
        let defaults = sdcard("sdcard --out=/c --board=rpi5");
        assert_eq!(defaults.board, PiBoard::Rpi5);
        assert_eq!((defaults.mem_mib, defaults.smp), (512, 4));
        let options = sdcard(
            "sdcard --board rpi5 --out /c --kernel /k/Image --initrd /k/i --append quiet --mem 1G --smp 2",
        );
        assert_eq!(
            options,
            SdcardOptions {
                kernel: Some("/k/Image".into()),
                initrd: Some("/k/i".into()),
                append: Some("quiet".into()),
                mem_mib: 1024,
                smp: 2,
                ..SdcardOptions::new(PiBoard::Rpi5, "/c".into())
            }
        );
        assert_eq!(
            sdcard("sdcard --board rpi4 --out /c --append x")
                .append
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn sdcard_refusals_say_what_to_do() {
        assert!(error("sdcard --out /c").contains("needs --board rpi4 or --board rpi5"));
        assert!(error("sdcard --board rpi4").contains("needs --out DIR"));
        assert_eq!(
            error("sdcard --board pi3 --out /c"),
            "--board must be rpi4 or rpi5, not `pi3`"
        );
        assert!(error("sdcard --board raspi4b --out /c").contains("rpi4 or rpi5"));
        assert_eq!(
            error("sdcard --board rpi5 --out /c --smp 5"),
            "--smp 5: the Raspberry Pi 5 has 4 cores, so at most 4 vCPUs"
        );
        assert!(error("sdcard --board rpi4 --out /c --smp 0").contains("at least 1"));
        assert!(error("sdcard --board rpi4 --out /c --mem 1537K").contains("whole number"));
        assert!(error("sdcard --board rpi4 --out /c --initrd /i").contains("needs --kernel"));
        assert_eq!(
            error("sdcard --board rpi4 --out /c --gdb"),
            "`sdcard` does not take `--gdb`"
        );
    }

    #[test]
    fn usage_lists_every_option() {
        for option in [
            "--debug",
            "--kernel",
            "--initrd",
            "--append",
            "--exec",
            "--timeout",
            "--verbose",
            "--no-hyp",
            "--no-guest",
            "--smp",
            "--mem",
            "--cpu",
            "--gic",
            "--gdb",
            "--host-only",
            "--filter",
            "--quick",
            "--pairs",
            "--out",
            "--board",
            "sdcard",
            "rpi4|rpi5",
            "--snapshot-disk",
            "--snapshot ",
            "--restore",
            "snapshot list|info|verify FILE",
            "profile ROW",
            "--iterations",
            "--detail",
        ] {
            assert!(USAGE.contains(option), "usage lacks {option}");
        }
        for keys in ["Ctrl-A x", "Ctrl-A h", "Ctrl-A c"] {
            assert!(USAGE.contains(keys), "usage lacks {keys}");
        }
    }
}
