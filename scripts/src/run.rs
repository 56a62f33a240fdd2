//! `cargo xtask run`: boot Aerie (or with `--no-hyp` just the guest) in QEMU with the
//! terminal as its serial console, or drive that console for `--exec`; with
//! `--restore`, resume a snapshot instead of booting the guest, and with `--snapshot`
//! take one once the command is done.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use aerie_host::{Qemu, Serial};

use crate::cli::{Board, RunOptions};
use crate::disk_claim::Claim;
use crate::disk_spec::DiskSpec;
use crate::error::{Context, Result};
use crate::exec::{self, ExecSpec};
use crate::exec_session::Ready;
use crate::firmware;
use crate::guest::{self, PackedGuest};
use crate::guest_material::{self, GuestFiles};
use crate::image;
use crate::initramfs;
use crate::no_hyp;
use crate::paths::Layout;
use crate::process;
use crate::setup;
use crate::snapshot_disk::{self, Prepared};
use crate::watch::{self, Ended, Watch};

/// The TCP port of QEMU's gdb server with `--gdb`.
const GDB_PORT: u16 = 1234;

/// What `--exec` types to end the guest once the command is done: busybox's
/// immediate power-off (PSCI SYSTEM_OFF), without init scripts.
const POWER_OFF: &str = "poweroff -f";

/// Runs `cargo xtask run`. The exit code is QEMU's, or with `--exec` the command's
/// (see [`crate::exec::ExecOutcome::exit_code`]).
pub fn run(layout: &Layout, options: &RunOptions) -> Result<ExitCode> {
    setup::ensure_qemu()?;
    check_disks(options)?;
    // Held until the run ends: the default disk serves one run at a time.
    let claim = match &options.snapshot_disk {
        Some(given) => {
            let spec = DiskSpec::parse(given)?;
            spec.check_rules()?;
            Claim::given(&spec)
        }
        None if options.board == Board::Virt && !options.no_hyp => {
            Claim::default_disk(&layout.snapshots_disk(), options.restore)?
        }
        None => Claim::given(&DiskSpec::plain(layout.snapshots_disk())),
    };
    let snapshots = claim.path.clone();
    let mut options = options.clone();
    if options.restore {
        // Before anything is built: a disk without a snapshot ends the run here.
        let shape = snapshot_disk::read_for_restore(&snapshots)?;
        snapshot_disk::fit_to(&mut options, &shape);
        eprintln!("xtask: restoring {shape} from {}", snapshots.display());
    }
    let options = &options;
    let bios = match &options.bios {
        Some(bios) => Some(firmware::resolve(layout, bios)?),
        None => None,
    };
    let guest = match bios {
        Some(_) => None,
        None => guest_material::choose(layout, options)?,
    };
    let serial = match (&options.exec, options.no_hyp) {
        (Some(_), _) => Serial::Piped,
        (None, true) => Serial::Qemu,
        (None, false) => Serial::Aerie,
    };
    let mut bundle = None;
    let (qemu, elf) = match &guest {
        Some(guest) if options.no_hyp => (no_hyp::machine(options, guest, serial), None),
        _ => {
            let built = image::build(layout, options.profile)?;
            if options.board == Board::Virt {
                prepare_snapshot_disk(&snapshots, options)?;
            }
            let packed = match (&guest, &bios) {
                (Some(guest), _) => Some(guest::pack(
                    &guest.kernel,
                    guest.initrd.as_deref(),
                    guest.cmdline.as_deref(),
                    &private_bundle(layout),
                )?),
                (None, Some(bios)) => Some(guest::pack_firmware(bios, &private_bundle(layout))?),
                (None, None) => None,
            };
            let mut qemu = machine(
                options,
                &built.image,
                &claim.qemu_file,
                packed.as_ref(),
                serial,
            );
            if let Some(bios) = &options.bios {
                let vars = options
                    .flash_vars
                    .clone()
                    .unwrap_or_else(|| firmware::default_vars(layout, bios));
                firmware::ensure_vars(&vars)?;
                qemu = qemu.drive("flashvars", &vars, Some(FLASH_VARS_SERIAL));
            }
            bundle = packed.map(|packed| packed.bundle);
            let elf = std::path::absolute(&built.elf).unwrap_or(built.elf);
            (qemu, Some(elf))
        }
    };
    let mut qemu = qemu.command();
    if options.gdb {
        println!(
            "{}",
            gdb_hint(
                elf.as_deref(),
                process::find_on_path("gdb-multiarch").is_some()
            )
        );
    }
    let result = match &options.exec {
        Some(command) => exec(&mut qemu, options, command, guest.as_ref()),
        None => watch::run(&mut qemu, plain_watch(options)).map(|ended| {
            if let Some(report) = ended.report() {
                eprintln!("\nxtask: {report}");
            }
            match ended {
                Ended::Exited(status) => ExitCode::from(exit_byte(status)),
                Ended::Silent(_) | Ended::TimedOut(..) => ExitCode::from(TIMED_OUT),
            }
        }),
    };
    if let Some(bundle) = bundle {
        // QEMU has read it: keep the last run's bundle under its documented name.
        let _ = std::fs::rename(bundle, layout.aerie_dir().join(BUNDLE_NAME));
    }
    result
}

/// The exit code of a run that a deadline ended (as `timeout(1)`).
const TIMED_OUT: u8 = 124;

/// The deadlines of a run without `--exec`: Aerie must speak soon after QEMU starts
/// (not checked with `--gdb`, where QEMU waits for the debugger, nor with `--no-hyp`);
/// `--timeout`, if given, bounds the whole run.
fn plain_watch(options: &RunOptions) -> Watch {
    Watch {
        silent_limit: (!options.gdb && !options.no_hyp).then(watch::silent_limit),
        timeout: options.run_timeout_secs.map(Duration::from_secs),
    }
}

/// Creates the snapshot disk when missing, sized for the guest's RAM (see
/// [`snapshot_disk::prepare`]), and says what it did.
fn prepare_snapshot_disk(path: &Path, options: &RunOptions) -> Result<()> {
    let ours = options.snapshot_disk.is_none();
    let ram = options.mem_mib << 20;
    match snapshot_disk::prepare(path, ram, ours)? {
        Prepared::Created if !ours => eprintln!(
            "xtask: created the snapshot disk {} ({}, sparse)",
            path.display(),
            aerie_hyp::units::ByteSize(snapshot_disk::size_for(ram))
        ),
        Prepared::SmallButInUse(warning) => eprintln!("xtask: warning: {warning}"),
        Prepared::Created | Prepared::Enlarged | Prepared::Fits => {}
    }
    Ok(())
}

/// The bundle's name in `target/aerie/` once QEMU is done with it (`cpio -t` lists it).
const BUNDLE_NAME: &str = "guest.cpio";

/// Where this run writes its guest bundle: a name of its own (`guest.cpio.<pid>`), so
/// that runs side by side (parallel tests) never boot each other's guest.
fn private_bundle(layout: &Layout) -> std::path::PathBuf {
    layout
        .aerie_dir()
        .join(format!("{BUNDLE_NAME}.{}", std::process::id()))
}

/// Runs `command` in the guest through its console (`--exec`), after restoring and
/// before snapshotting if asked.
fn exec(
    qemu: &mut Command,
    options: &RunOptions,
    command: &str,
    guest: Option<&GuestFiles>,
) -> Result<ExitCode> {
    let spec = ExecSpec {
        command: command.to_string(),
        timeout: Duration::from_secs(options.timeout_secs),
        ready: match guest {
            Some(guest) if guest.is_default => Ready::Marker(initramfs::READY_MARKER),
            _ => Ready::Quiet,
        },
        power_off: POWER_OFF.to_string(),
        restore: options.restore,
        snapshot: options.snapshot,
        verbose: options.verbose,
        silent_limit: (!options.no_hyp).then(watch::silent_limit),
    };
    let outcome = exec::run(qemu, &spec, &mut std::io::stdout().lock())?;
    if let Some(report) = outcome.report(command, spec.timeout) {
        eprintln!("xtask: {report}");
    }
    Ok(ExitCode::from(outcome.exit_code()))
}

/// RAM Aerie needs beside the guest's: QEMU loads the bundle 128 MiB into RAM, and
/// Aerie keeps its image, heap and page tables.
const AERIE_SHARE_MIB: u64 = 160;

/// Host RAM behind a firmware guest's flash beside the firmware's copy: the
/// variable store bank twice over (Aerie's frame allocator hands out blocks aligned
/// to their power-of-two size, and a free region twice that size holds one), and
/// 2 MiB of alignment for the code bank.
const FLASH_SHARE_MIB: u64 = 2 * (firmware::VARS_SIZE >> 20) + 2;

/// The machine's RAM in MiB: with a guest, `--mem` is the guest's and Aerie's share
/// and the bundle come on top; with `--bios`, the flash banks' memory too (the
/// firmware's copy is the bundle's size again).
pub fn machine_mem_mib(options: &RunOptions, guest: Option<&PackedGuest>) -> u64 {
    match guest {
        Some(guest) => {
            let bundle = guest.size.div_ceil(1 << 20);
            let flash = if options.bios.is_some() {
                bundle + FLASH_SHARE_MIB
            } else {
                0
            };
            options.mem_mib + AERIE_SHARE_MIB + bundle + flash
        }
        None => options.mem_mib,
    }
}

/// The virtio-blk serial number that marks the disk behind a firmware guest's flash
/// variable store (Aerie keeps it from the guest, like the snapshot disk).
pub const FLASH_VARS_SERIAL: &str = "aerie-flash-vars";

/// The device tree `cargo xtask run --board raspi4b` gives QEMU: the Raspberry Pi 4
/// tree from Debian's kernel package as QEMU's model presents it (the committed
/// fixture, `cargo xtask fixtures` regenerates it).
pub fn raspi4b_device_tree() -> std::path::PathBuf {
    Layout::discover()
        .root()
        .join("tests/fixtures/qemu-raspi4b.dtb")
}

/// The virtio-blk serial number that marks Aerie's snapshot disk (Aerie reads it
/// with the virtio-blk GET_ID request to tell its disks apart).
pub const SNAPSHOTS_SERIAL: &str = "aerie-snapshots";
/// The serial number of the guest's disk `n`: Aerie gives the guest exactly the host
/// disks whose serial starts with `aerie-disk`, in this order.
pub fn guest_disk_serial(n: usize) -> String {
    format!("aerie-disk{n}")
}

/// Adds the guest's disks. Under Aerie they carry the serial numbers Aerie looks for;
/// with `--no-hyp` they are plain.
pub fn with_disks(mut qemu: Qemu, options: &RunOptions, under_aerie: bool) -> Qemu {
    for (n, disk) in options.disks.iter().enumerate() {
        // `check_disks` refused malformed names before QEMU's arguments are made.
        let file = DiskSpec::parse(disk)
            .map_or_else(|_| disk.display().to_string(), |spec| spec.qemu_file());
        let serial = under_aerie.then(|| guest_disk_serial(n));
        qemu = qemu.virtio_blk_with(&file, serial.as_deref());
    }
    qemu
}

/// Refuses disks that do not exist or cannot be read and written, before QEMU runs.
pub fn check_disks(options: &RunOptions) -> Result<()> {
    for disk in &options.disks {
        let spec = DiskSpec::parse(disk)?;
        spec.check_rules()?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&spec.file)
            .context(|| format!("cannot use {} as the guest's disk", spec.file.display()))?;
    }
    Ok(())
}

/// The machine for `options`, booting `image` with `snapshots` (as QEMU's
/// `-drive file=` names it, see [`DiskSpec::qemu_file`]) as a virtio disk,
/// `guest` (if any) as the initrd and the console connected as `serial` says.
pub fn machine(
    options: &RunOptions,
    image: &Path,
    snapshots: &Path,
    guest: Option<&PackedGuest>,
    serial: Serial,
) -> Qemu {
    let mut qemu = match options.board {
        Board::Virt => Qemu::virt()
            .gic(options.gic.version())
            .cpu(&options.cpu)
            .smp(options.smp)
            .mem_mib(machine_mem_mib(options, guest)),
        // The Raspberry Pi 4 model has fixed CPUs and RAM; its firmware's role
        // (loading the device tree) is played by QEMU with `-dtb`.
        Board::Raspi4b => Qemu::raspi4b()
            .mem_mib(Board::RASPI4B_MEM_MIB)
            .dtb(raspi4b_device_tree()),
    }
    .serial(serial)
    .kernel(image)
    .semihosting();
    if options.board == Board::Virt {
        qemu = qemu
            .drive("snapshots", snapshots, Some(SNAPSHOTS_SERIAL))
            // An entropy device for Aerie: the guest's virtio-rng draws on it when
            // the CPU has no RNDR instruction.
            .device("virtio-rng-device");
        qemu = with_disks(qemu, options, true);
    }
    if let Some(guest) = guest {
        qemu = qemu.initrd(&guest.bundle).append(&aerie_command_line(
            options,
            board_wall_clock(options.board),
        ));
    }
    with_run_options(qemu, options)
}

/// Aerie's own command line (QEMU's `-append` when there is a guest): the guest's
/// size, `aerie.restore` with `--restore`, `aerie.stage2=pages` on the emulated
/// Raspberry Pi (Aerie maps guest RAM with pages by default only on `virt`, the one
/// machine it knows to be emulated; QEMU's TCG runs guests much faster so, see
/// `aerie_hyp::stage2::Leaves`), and `aerie.time=` when `wall_clock` (the seconds
/// since 1970 now) is given for a board without an RTC.
pub fn aerie_command_line(options: &RunOptions, wall_clock: Option<u64>) -> String {
    let mut line = format!(
        "aerie.guest.mem={}M aerie.guest.smp={}",
        options.mem_mib, options.smp
    );
    if options.restore {
        line.push_str(" aerie.restore");
    }
    if options.board == Board::Raspi4b {
        line.push_str(" aerie.stage2=pages");
    }
    if let Some(seconds) = wall_clock {
        line.push_str(&format!(" aerie.time={seconds}"));
    }
    line
}

/// The host's wall-clock time for Aerie's command line, on a board whose model has
/// no RTC (QEMU's `raspi4b`); `None` where Aerie reads the machine's own.
fn board_wall_clock(board: Board) -> Option<u64> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    (board == Board::Raspi4b).then_some(seconds)
}

/// What every machine of `cargo xtask run` gets from `options`: with `--exec`, a reset
/// (a guest panic with `panic=-1`, `reboot`) ends the run at once instead of booting
/// again until the timeout; with `--gdb`, QEMU starts halted with its gdb server on
/// [`GDB_PORT`].
pub fn with_run_options(mut qemu: Qemu, options: &RunOptions) -> Qemu {
    if options.exec.is_some() {
        qemu = qemu.no_reboot();
    }
    if options.gdb {
        qemu = qemu.gdb(GDB_PORT);
    }
    qemu
}

/// What to print before QEMU waits for a debugger; `elf` is Aerie's, absent with
/// `--no-hyp` (then gdb attaches to the guest kernel, without symbols).
pub fn gdb_hint(elf: Option<&Path>, have_gdb: bool) -> String {
    let mut gdb = Command::new("gdb-multiarch");
    gdb.arg("-q");
    if let Some(elf) = elf {
        gdb.arg(elf);
    }
    gdb.args(["-ex", &format!("target remote localhost:{GDB_PORT}")]);
    let mut hint = format!(
        "gdb: QEMU waits for a debugger on localhost:{GDB_PORT}; attach with:\n  {}",
        process::display(&gdb)
    );
    if !have_gdb {
        hint.push_str(
            "\ngdb: gdb-multiarch is not on PATH; install it with: apt-get install gdb-multiarch",
        );
    }
    hint
}

/// Creates `path` as a sparse file of `size` bytes unless it exists.
pub fn ensure_sparse_disk(path: &Path, size: u64) -> Result<()> {
    crate::atomic_file::create_sparse(path, size).map(drop)
}

/// The exit code to pass on for QEMU's status: its own code, or 128 + signal.
fn exit_byte(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Gic;

    /// The machine's arguments.
    fn qemu_args(
        options: &RunOptions,
        image: &Path,
        snapshots: &Path,
        guest: Option<&PackedGuest>,
        serial: Serial,
    ) -> Vec<String> {
        machine(options, image, snapshots, guest, serial).to_args()
    }

    /// The arguments `with_disks` adds to a plain machine.
    fn disk_args(options: &RunOptions, under_aerie: bool) -> Vec<String> {
        let plain = Qemu::virt().to_args().len();
        with_disks(Qemu::virt(), options, under_aerie).to_args()[plain..].to_vec()
    }

    #[test]
    fn default_command_line() {
        let args = qemu_args(
            &RunOptions::default(),
            Path::new("/t/aerie/aerie.bin"),
            Path::new("/t/aerie/snapshots.img"),
            None,
            Serial::Aerie,
        );
        assert_eq!(
            args.join(" "),
            "-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 2 -m 1024M \
             -display none -monitor none -chardev stdio,id=console,signal=off,mux=off \
             -serial chardev:console \
             -kernel /t/aerie/aerie.bin -semihosting-config enable=on,target=native \
             -drive file=/t/aerie/snapshots.img,if=none,format=raw,id=snapshots \
             -device virtio-blk-device,drive=snapshots,serial=aerie-snapshots \
             -device virtio-rng-device"
        );
    }

    #[test]
    fn options_reach_the_command_line() {
        let options = RunOptions {
            smp: 8,
            mem_mib: 512,
            cpu: "max".into(),
            gic: Gic::V2,
            gdb: true,
            ..RunOptions::default()
        };
        let args = qemu_args(
            &options,
            Path::new("/i"),
            Path::new("/a,b/s.img"),
            None,
            Serial::Piped,
        )
        .join(" ");
        assert!(
            args.starts_with("-M virt,virtualization=on,gic-version=2 -cpu max -smp 8 -m 512M")
        );
        assert!(args.contains("file=/a,,b/s.img,if=none"));
        assert!(args.ends_with(" -S -gdb tcp::1234"));
    }

    #[test]
    fn a_guest_gets_its_memory_and_the_bundle() {
        let guest = PackedGuest {
            bundle: "/t/guest.cpio".into(),
            size: 30 << 20,
        };
        let options = RunOptions {
            mem_mib: 512,
            smp: 2,
            ..RunOptions::default()
        };
        let args = qemu_args(
            &options,
            Path::new("/i"),
            Path::new("/s"),
            Some(&guest),
            Serial::Aerie,
        )
        .join(" ");
        assert!(args.contains("-m 702M"), "{args}");
        assert!(
            args.contains("-initrd /t/guest.cpio -append aerie.guest.mem=512M aerie.guest.smp=2")
        );
    }

    #[test]
    fn restore_tells_aerie_on_its_command_line() {
        let guest = PackedGuest {
            bundle: "/t/guest.cpio".into(),
            size: 1 << 20,
        };
        let options = RunOptions {
            mem_mib: 256,
            smp: 3,
            restore: true,
            ..RunOptions::default()
        };
        assert_eq!(
            aerie_command_line(&options, None),
            "aerie.guest.mem=256M aerie.guest.smp=3 aerie.restore"
        );
        let args = qemu_args(
            &options,
            Path::new("/i"),
            Path::new("/s.img"),
            Some(&guest),
            Serial::Aerie,
        )
        .join(" ");
        assert!(
            args.contains("-append aerie.guest.mem=256M aerie.guest.smp=3 aerie.restore"),
            "{args}"
        );
        assert!(args.contains("-device virtio-blk-device,drive=snapshots,serial=aerie-snapshots"));
        assert_eq!(
            aerie_command_line(&RunOptions::default(), None),
            "aerie.guest.mem=1024M aerie.guest.smp=2"
        );
        assert_eq!(
            aerie_command_line(&RunOptions::default(), Some(1_796_688_000)),
            "aerie.guest.mem=1024M aerie.guest.smp=2 aerie.time=1796688000"
        );
        let raspi = RunOptions {
            board: Board::Raspi4b,
            ..RunOptions::default()
        };
        assert_eq!(
            aerie_command_line(&raspi, Some(1_796_688_000)),
            "aerie.guest.mem=1024M aerie.guest.smp=2 aerie.stage2=pages aerie.time=1796688000"
        );
        // Only a board without an RTC gets the host's time.
        assert_eq!(board_wall_clock(Board::Virt), None);
        assert!(board_wall_clock(Board::Raspi4b).is_some_and(|s| s > 1_700_000_000));
    }

    #[test]
    fn each_run_packs_its_own_bundle() {
        let bundle = private_bundle(&Layout::new("/w".into(), None));
        assert_eq!(
            bundle,
            Path::new(&format!(
                "/w/target/aerie/guest.cpio.{}",
                std::process::id()
            ))
        );
    }

    #[test]
    fn exec_runs_stop_at_a_reset() {
        let exec = RunOptions {
            exec: Some("true".into()),
            ..RunOptions::default()
        };
        let args = qemu_args(&exec, Path::new("/i"), Path::new("/s"), None, Serial::Piped);
        assert!(args.contains(&"-no-reboot".to_string()));
        let args = qemu_args(
            &RunOptions::default(),
            Path::new("/i"),
            Path::new("/s"),
            None,
            Serial::Aerie,
        );
        assert!(!args.contains(&"-no-reboot".to_string()));
    }

    #[test]
    fn guest_disks_carry_the_serials_aerie_looks_for() {
        let options = RunOptions {
            disks: vec!["/d/a.img".into(), "/d/b,c.img".into()],
            ..RunOptions::default()
        };
        let args = disk_args(&options, true).join(" ");
        assert_eq!(
            args,
            "-drive file=/d/a.img,if=none,format=raw,id=disk0 \
             -device virtio-blk-device,drive=disk0,serial=aerie-disk0 \
             -drive file=/d/b,,c.img,if=none,format=raw,id=disk1 \
             -device virtio-blk-device,drive=disk1,serial=aerie-disk1"
        );
        assert!(!disk_args(&options, false).join(" ").contains("serial"));
    }

    #[test]
    fn a_missing_disk_is_refused_by_name() {
        let options = RunOptions {
            disks: vec!["/nonexistent/disk.img".into()],
            ..RunOptions::default()
        };
        let message = check_disks(&options).unwrap_err().to_string();
        assert!(
            message.contains("cannot use /nonexistent/disk.img as the guest's disk"),
            "{message}"
        );
    }

    #[test]
    fn gdb_hint_gives_the_exact_command() {
        let hint = gdb_hint(Some(Path::new("/w/target/aerie")), true);
        assert!(
            hint.contains("gdb-multiarch -q /w/target/aerie -ex 'target remote localhost:1234'")
        );
        assert!(!hint.contains("apt-get"));
        assert!(
            gdb_hint(Some(Path::new("/e")), false)
                .contains("install it with: apt-get install gdb-multiarch")
        );
        assert!(
            gdb_hint(None, true).contains("gdb-multiarch -q -ex 'target remote localhost:1234'")
        );
    }

    #[test]
    fn sparse_disk_is_created_once() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-{}", std::process::id()));
        let disk = dir.join("d.img");
        ensure_sparse_disk(&disk, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
        std::fs::write(&disk, b"kept").unwrap();
        ensure_sparse_disk(&disk, 1 << 20).unwrap();
        assert_eq!(std::fs::read(&disk).unwrap(), b"kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
