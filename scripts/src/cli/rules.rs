//! From the arguments clap read to the option structs the commands take, refusing the
//! combinations of options that make no sense; each refusal says what to do instead.

use std::path::PathBuf;

use super::args::{CliCommand, GuestArgs, RunArgs, RunBoard, SdcardArgs};
use super::{
    Board, BuildOptions, Command, DEFAULT_EXEC_TIMEOUT_SECS, Explicit, Gic, PiBoard, Profile,
    RunOptions, SdcardOptions,
};

/// Whether the option with this id (its field's name) was given on the command line,
/// rather than left at its default.
pub(super) type Given<'a> = &'a dyn Fn(&str) -> bool;

/// The command clap read, as the option structs the commands take.
pub(super) fn command(command: CliCommand, given: Given<'_>) -> Result<Command, String> {
    Ok(match command {
        CliCommand::Build(args) => Command::Build(BuildOptions {
            profile: profile(args.debug),
        }),
        CliCommand::Run(args) => Command::Run(run(args, given)?),
        CliCommand::Test(options) => Command::Test(options),
        CliCommand::Stress(options) => Command::Stress(options),
        CliCommand::Fixtures => Command::Fixtures,
        CliCommand::Bench(forwarded) => Command::Bench(forwarded.args),
        CliCommand::Profile(forwarded) => Command::Profile(forwarded.args),
        CliCommand::Sdcard(args) => Command::Sdcard(sdcard(args)?),
        CliCommand::Snapshot(options) => Command::Snapshot(options),
    })
}

/// `--debug` or not.
fn profile(debug: bool) -> Profile {
    if debug {
        Profile::Debug
    } else {
        Profile::Release
    }
}

/// `run`'s options, once their combination is checked.
fn run(args: RunArgs, given: Given<'_>) -> Result<RunOptions, String> {
    let (board, gic) = match args.board {
        RunBoard::Virt => (Board::Virt, args.gic),
        RunBoard::VirtGicv2 if given("gic") && args.gic != Gic::V2 => {
            return Err(format!(
                "--board virt-gicv2 is --board virt --gic 2: drop --gic {}",
                args.gic.version()
            ));
        }
        RunBoard::VirtGicv2 => (Board::Virt, Gic::V2),
        RunBoard::Raspi4b => (Board::Raspi4b, args.gic),
    };
    let explicit = Explicit {
        smp: given("smp"),
        mem: given("mem"),
        gic: given("gic") || args.board == RunBoard::VirtGicv2,
        cpu: given("cpu"),
    };
    let mem_mib = if board == Board::Raspi4b && !explicit.mem {
        Board::RASPI4B_MAX_GUEST_MIB
    } else {
        args.mem
    };
    let GuestArgs {
        kernel,
        initrd,
        append,
    } = args.guest;
    let run = RunOptions {
        profile: profile(args.debug),
        no_guest: args.no_guest,
        board,
        snapshot_disk: args.snapshot_disk,
        snapshot: args.snapshot,
        restore: args.restore,
        explicit,
        disks: args.disk,
        kernel,
        initrd,
        append,
        bios: args.bios,
        flash_vars: args.flash_vars,
        smp: args.smp,
        mem_mib,
        cpu: args.cpu,
        gic,
        gdb: args.gdb,
        run_timeout_secs: args.timeout.filter(|_| args.exec.is_none()),
        exec: args.exec,
        timeout_secs: args.timeout.unwrap_or(DEFAULT_EXEC_TIMEOUT_SECS),
        verbose: args.verbose,
        no_hyp: args.no_hyp,
    };
    check_run(&run, args.timeout.is_some())?;
    check_snapshot_options(&run)?;
    Ok(run)
}

/// `sdcard`'s options, once their combination is checked.
fn sdcard(args: SdcardArgs) -> Result<SdcardOptions, String> {
    if args.smp > PiBoard::CPUS {
        return Err(format!(
            "--smp {}: the {} has {} cores, so at most {} vCPUs",
            args.smp,
            args.board.model(),
            PiBoard::CPUS,
            PiBoard::CPUS
        ));
    }
    initrd_needs_kernel(&args.guest.kernel, &args.guest.initrd)?;
    Ok(SdcardOptions {
        kernel: args.guest.kernel,
        initrd: args.guest.initrd,
        append: args.guest.append,
        mem_mib: args.mem,
        smp: args.smp,
        ..SdcardOptions::new(args.board, args.out)
    })
}

/// `--initrd` belongs to a `--kernel`.
fn initrd_needs_kernel(kernel: &Option<PathBuf>, initrd: &Option<PathBuf>) -> Result<(), String> {
    if kernel.is_none() && initrd.is_some() {
        return Err(
            "--initrd needs --kernel (the default guest brings its own initramfs)".to_string(),
        );
    }
    Ok(())
}

/// The combinations of `run` options that make no sense.
fn check_run(run: &RunOptions, timeout_given: bool) -> Result<(), String> {
    let refuse = |message: &str| Err(message.to_string());
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
        if run.mem_mib > Board::RASPI4B_MAX_GUEST_MIB && run.explicit.mem {
            return refuse("on raspi4b the guest can have at most 512M (--mem)");
        }
    }
    initrd_needs_kernel(&run.kernel, &run.initrd)?;
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
        return Err(format!(
            "--smp {} is too many for GICv{}: at most {} CPUs",
            run.smp,
            run.gic.version(),
            run.gic.max_cpus()
        ));
    }
    Ok(())
}

/// The combinations of `--bios` and `--flash-vars` that make no sense.
fn check_bios(run: &RunOptions) -> Result<(), String> {
    let refuse = |message: &str| Err(message.to_string());
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
fn check_snapshot_options(run: &RunOptions) -> Result<(), String> {
    let refuse = |message: &str| Err(message.to_string());
    for (given, name) in [(run.snapshot, "--snapshot"), (run.restore, "--restore")] {
        if !given {
            continue;
        }
        if run.no_hyp {
            return Err(format!(
                "{name} needs Aerie, which takes the snapshots: drop --no-hyp"
            ));
        }
        if run.no_guest {
            return Err(format!(
                "{name} needs a guest to snapshot or resume: drop --no-guest"
            ));
        }
        if run.board == Board::Raspi4b {
            return Err(format!(
                "{name} needs the snapshot disk (virtio-mmio), which raspi4b does not \
                 have: use --board virt"
            ));
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
