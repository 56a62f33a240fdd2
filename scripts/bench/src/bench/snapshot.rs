//! The snapshot rows' runs: a 256 MiB Linux guest is booted to its shell, its memory
//! filled or not, and saved, by Aerie to its snapshot disk (its console command
//! `snapshot`) or, without a hypervisor, by QEMU's own migration to a file (QMP's
//! `migrate` to `exec:cat > FILE`); then a new QEMU resumes it (`aerie.restore`, or
//! `-incoming 'exec:cat FILE'`) and the time until the guest's shell answers is
//! taken.
//!
//! Every stage is timed by xtask on the host's clock, from the console's output as
//! it arrives (aerie-host's [`Console`]); Aerie's own times (its `saved` and `restored`
//! lines) and QEMU's (`query-migrate`'s `total-time`) are kept beside them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aerie_hyp::console::PROMPT;
use aerie_hyp::snapshot::read_snapshot;

use aerie_host::{Console, Stderr, Stop};

use super::console::tail_on_one_line;
use super::parse::{self, AerieSaved};
use super::qmp::{Migration, Qmp};
use super::systems::{self, System};
use aerie_host::Serial;
use xtask::aerie_console::{
    CANNOT_RESTORE, RESUMING, SNAPSHOT_COMMAND, SNAPSHOT_FAILED, open_console_keys, saved_line,
};
use xtask::file_disk::FileDisk;
use xtask::guest::PackedGuest;
use xtask::guest_material::GuestFiles;
use xtask::initramfs::READY_MARKER;
use xtask::no_hyp;
use xtask::snapshot_disk;

/// The guest's RAM in the snapshot rows, in MiB.
pub const MEM_MIB: u64 = 256;
/// The guest's vCPUs in the snapshot rows.
pub const VCPUS: u32 = 1;
/// MiB of random data the filled case writes to a tmpfs before the snapshot.
pub const FILL_MIB: u64 = 180;

/// What a stage may take at most: booting to the shell, filling memory, saving,
/// restoring to the shell.
const STAGE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long Aerie's console may take to open.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long QEMU may take to exit after Aerie's `quit`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a probe is typed again while the shell does not answer.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// How often QEMU's migration status is asked for.
const MIGRATION_POLL: Duration = Duration::from_millis(5);
/// How long the migration file may keep growing after QEMU says it is done (the
/// `cat` that writes it finishes on its own).
const FILE_SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the shell is asked, to see that it answers: `$#` (no arguments: `0`) makes
/// the answer differ from the typed line, so neither the terminal's echo nor a line
/// garbled by lost bytes ("sh: bench-up0: not found") can pass for it, and the line
/// has no quote or bracket that a lost byte could leave open.
pub const PROBE: &str = "echo bench-up$#\n";
/// The answer to [`PROBE`], as a whole line.
pub const ANSWER: &str = "bench-up0";
/// The line the fill command ends with when it worked.
const FILLED: &str = "bench-filled0";
/// The line the fill command ends with when it failed.
const FILL_FAILED: &str = "bench-fill-failed0";

/// The guest's state when it is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Just booted to its shell.
    Idle,
    /// [`FILL_MIB`] of random data written to a tmpfs first.
    Filled,
}

impl Case {
    /// Both, in the order they run.
    pub const ALL: [Case; 2] = [Case::Idle, Case::Filled];

    /// How the rows name it.
    pub fn label(self) -> String {
        match self {
            Case::Idle => "idle".to_string(),
            Case::Filled => format!("{FILL_MIB} MiB in tmpfs"),
        }
    }
}

/// The shell command that fills the guest's memory: a tmpfs a little larger than
/// [`FILL_MIB`] (the initramfs's own root holds only half the RAM), filled from
/// `/dev/urandom` (pages no one can skip or compress), then [`FILLED`] or
/// [`FILL_FAILED`].
pub fn fill_command() -> String {
    format!(
        "mkdir -p /mnt/fill && mount -t tmpfs -o size={size}m fill /mnt/fill && dd \
         if=/dev/urandom of=/mnt/fill/data bs=1M count={FILL_MIB} 2>/dev/null && echo \
         bench-filled$# || echo bench-fill-failed$#\n",
        size = FILL_MIB + 20
    )
}

/// Who saves and restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saver {
    /// QEMU's migration, the guest straight on QEMU (no hypervisor).
    Qemu,
    /// Aerie's snapshot.
    Aerie,
}

impl Saver {
    /// Both, in the order they run (the reference first).
    pub const ALL: [Saver; 2] = [Saver::Qemu, Saver::Aerie];

    /// The system in the tables.
    pub fn system(self) -> System {
        match self {
            Saver::Qemu => System::None,
            Saver::Aerie => System::Aerie,
        }
    }

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Saver::Qemu => "QEMU migration to a file (no hypervisor)",
            Saver::Aerie => "Aerie",
        }
    }

    /// The short name in ratio headings and progress lines.
    pub fn short(self) -> &'static str {
        match self {
            Saver::Qemu => "QEMU",
            Saver::Aerie => "Aerie",
        }
    }
}

/// What the snapshot rows run, and where their files go.
#[derive(Debug, Clone)]
pub struct SnapshotGuest {
    /// The default guest with its `--exec` command line.
    pub files: GuestFiles,
    /// The same packed for Aerie.
    pub bundle: PackedGuest,
    /// Aerie's image.
    pub image: PathBuf,
    /// Aerie's snapshot disk for these rows (made afresh for each save).
    pub disk: PathBuf,
    /// The file QEMU migrates to.
    pub migration: PathBuf,
    /// QEMU's QMP socket.
    pub qmp: PathBuf,
}

impl SnapshotGuest {
    /// The files of the rows in `work`: `snapshot-rows.img`, `migration.bin` and the
    /// QMP socket (there, unless that path is too long for a Unix socket: then in
    /// the temporary directory).
    pub fn new(files: GuestFiles, bundle: PackedGuest, image: PathBuf, work: &Path) -> Self {
        let socket = work.join("qmp.sock");
        // sun_path holds 108 bytes with its final NUL.
        let qmp = if socket.as_os_str().len() < 100 {
            socket
        } else {
            std::env::temp_dir().join(format!("aerie-bench-{}.qmp", std::process::id()))
        };
        Self {
            files,
            bundle,
            image,
            disk: work.join("snapshot-rows.img"),
            migration: work.join("migration.bin"),
            qmp,
        }
    }

    /// Removes the files the runs leave behind.
    pub fn clean_up(&self) {
        for path in [&self.disk, &self.migration, &self.qmp] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Which run of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Boot, (fill,) save.
    Save,
    /// Resume the saved guest.
    Restore,
}

/// The QEMU command of `saver`'s `stage`.
pub fn command(guest: &SnapshotGuest, saver: Saver, stage: Stage) -> Command {
    let mut options = systems::run_options(VCPUS, MEM_MIB, &guest.disk);
    let qemu = match saver {
        Saver::Qemu => {
            let qemu = no_hyp::machine(&options, &guest.files, Serial::Piped);
            match stage {
                Stage::Save => qemu.qmp(&guest.qmp),
                Stage::Restore => qemu.args([
                    "-incoming".to_string(),
                    format!("exec:cat {}", shell_quote(&guest.migration)),
                ]),
            }
        }
        Saver::Aerie => {
            options.restore = stage == Stage::Restore;
            systems::aerie(&options, &guest.image, &guest.disk, &guest.bundle)
        }
    };
    qemu.command()
}

/// The URI QEMU migrates to: `exec:cat > FILE`.
pub fn migration_uri(file: &Path) -> String {
    format!("exec:cat > {}", shell_quote(file))
}

/// `path` as a word for `sh -c`, which QEMU's `exec:` runs: as it is when it has only
/// letters, digits and `/._-`, else in single quotes.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What a save run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// From QEMU's start to the shell's first answer (the cold boot).
    pub boot_to_shell: Duration,
    /// From the command to its result.
    pub wall: Duration,
    /// The saver's own time, in seconds: Aerie's line, QEMU's `total-time`.
    pub own_seconds: Option<f64>,
    /// Bytes the snapshot takes: the slot's data on Aerie's disk; QEMU's file.
    pub bytes: u64,
    /// Bytes of guest RAM stored (pages sent in full, for QEMU).
    pub ram_bytes: Option<f64>,
}

/// What a restore run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// From QEMU's start to the shell's first answer.
    pub to_shell: Duration,
    /// The saver's own time, in seconds (Aerie's `restored` line; QEMU reports none).
    pub own_seconds: Option<f64>,
}

/// Boots the guest under `saver`, fills its memory for [`Case::Filled`], and saves
/// it. The error says what went wrong and how the console ended.
pub fn save(guest: &SnapshotGuest, saver: Saver, case: Case) -> Result<Saved, String> {
    match saver {
        Saver::Aerie => {
            // A new disk each time, as QEMU's `cat >` makes a new file: both write
            // to blocks the host file system allocates afresh.
            let _ = std::fs::remove_file(&guest.disk);
            snapshot_disk::prepare(&guest.disk, MEM_MIB << 20, false)
                .map_err(|error| error.to_string())?;
            let mut saved = with_qemu(&mut command(guest, saver, Stage::Save), |live| {
                let boot = boot_and_fill(live, case)?;
                aerie_save(live, boot)
            })?;
            let (bytes, ram) = slot_usage(&guest.disk)?;
            saved.bytes = bytes;
            saved.ram_bytes = Some(ram as f64);
            Ok(saved)
        }
        Saver::Qemu => {
            let _ = std::fs::remove_file(&guest.migration);
            let _ = std::fs::remove_file(&guest.qmp);
            let mut saved = with_qemu(&mut command(guest, saver, Stage::Save), |live| {
                let boot = boot_and_fill(live, case)?;
                qemu_save(live, boot, guest)
            })?;
            saved.bytes = settled_size(&guest.migration)?;
            Ok(saved)
        }
    }
}

/// Resumes what [`save`] saved in a new QEMU and waits for the shell to answer.
pub fn restore(guest: &SnapshotGuest, saver: Saver) -> Result<Restored, String> {
    if saver == Saver::Qemu && !guest.migration.exists() {
        return Err(format!("{} is missing", guest.migration.display()));
    }
    with_qemu(&mut command(guest, saver, Stage::Restore), |live| {
        let own_seconds = match saver {
            Saver::Aerie => {
                let (_, own) = stage(
                    live.wait_line(live.elapsed() + STAGE_TIMEOUT, restore_result),
                    "Aerie to restore the snapshot",
                )?;
                Some(own?)
            }
            Saver::Qemu => None,
        };
        // QEMU loads the migration before the guest runs again: until then typed
        // bytes are lost, and the next probe counts.
        let to_shell = stage(
            live.probe(PROBE, ANSWER, PROBE_EVERY, live.elapsed() + STAGE_TIMEOUT),
            "the restored guest's shell to answer",
        )?;
        Ok(Restored {
            to_shell,
            own_seconds,
        })
    })
}

/// What Aerie's line during a restore says: `Ok(its seconds)` once the guest
/// resumes, `Err(reason)` if Aerie cannot restore; `None` for other lines.
fn restore_result(line: &str) -> Option<Result<f64, String>> {
    if let Some((_, reason)) = line.split_once(CANNOT_RESTORE) {
        return Some(Err(format!("Aerie cannot restore: {}", reason.trim())));
    }
    if !line.contains(RESUMING) {
        return None;
    }
    Some(
        parse::aerie_restored(line)
            .map(|(_, seconds)| seconds)
            .ok_or_else(|| format!("Aerie's restore line has no time: {line}")),
    )
}

/// What Aerie's line after `snapshot` says: `Ok` with the line read once saved,
/// `Err(reason)` if the snapshot failed; `None` for other lines (progress).
fn save_result(line: &str) -> Option<Result<AerieSaved, String>> {
    if let Some((_, reason)) = line.split_once(SNAPSHOT_FAILED) {
        return Some(Err(format!("Aerie's snapshot failed: {}", reason.trim())));
    }
    let saved = saved_line(line)?;
    Some(
        AerieSaved::parse(saved)
            .ok_or_else(|| format!("Aerie's saved line is unreadable: {saved}")),
    )
}

/// Starts `qemu`, runs `script` on it, stops it; a failure gets the console's last
/// lines.
fn with_qemu<T>(
    qemu: &mut Command,
    script: impl FnOnce(&mut Console) -> Result<T, String>,
) -> Result<T, String> {
    let mut live = Console::start(qemu, Stderr::Apart).map_err(|error| error.to_string())?;
    let result = script(&mut live);
    let console = live.finish().joined();
    result.map_err(|error| {
        format!(
            "{error}; the console's last lines: {}",
            tail_on_one_line(&console, 5)
        )
    })
}

/// A wait's result, with what was awaited in the error.
fn stage<T>(result: Result<T, Stop>, what: &str) -> Result<T, String> {
    result.map_err(|stop| match stop {
        Stop::TimedOut => format!("timed out waiting for {what}"),
        Stop::Exited(Some(code)) => format!("QEMU exited (status {code}) waiting for {what}"),
        Stop::Exited(None) => format!("QEMU ended waiting for {what}"),
    })
}

/// Boots to the shell (the ready marker, then the first answer to [`PROBE`]) and
/// fills memory for [`Case::Filled`]; returns when the shell first answered.
fn boot_and_fill(live: &mut Console, case: Case) -> Result<Duration, String> {
    stage(
        live.wait_line(STAGE_TIMEOUT, |line| {
            line.contains(READY_MARKER).then_some(())
        }),
        &format!("the guest's `{READY_MARKER}`"),
    )?;
    let shell = stage(
        live.probe(PROBE, ANSWER, PROBE_EVERY, live.elapsed() + STAGE_TIMEOUT),
        "the guest's shell to answer",
    )?;
    if case == Case::Filled {
        live.type_text(&fill_command());
        let (_, filled) = stage(
            live.wait_line(live.elapsed() + STAGE_TIMEOUT, |line| match line {
                FILLED => Some(true),
                FILL_FAILED => Some(false),
                _ => None,
            }),
            "the guest to fill its memory",
        )?;
        if !filled {
            return Err(format!(
                "the guest could not write {FILL_MIB} MiB to a tmpfs"
            ));
        }
    }
    Ok(shell)
}

/// Takes the snapshot at Aerie's console (`snapshot quit`: Aerie powers off after).
fn aerie_save(live: &mut Console, boot_to_shell: Duration) -> Result<Saved, String> {
    live.type_text(&open_console_keys());
    stage(
        live.wait_text(PROMPT, live.elapsed() + CONSOLE_TIMEOUT),
        &format!("Aerie's console prompt `{PROMPT}`"),
    )?;
    let asked = live.type_text(&format!("{SNAPSHOT_COMMAND}\r"));
    let (done, saved) = stage(
        live.wait_line(asked + STAGE_TIMEOUT, save_result),
        "Aerie to save the snapshot",
    )?;
    let saved = saved?;
    live.wait_exit(QUIT_TIMEOUT);
    Ok(Saved {
        boot_to_shell,
        wall: done.saturating_sub(asked),
        own_seconds: Some(saved.seconds),
        bytes: saved.bytes as u64,
        ram_bytes: Some(saved.stored),
    })
}

/// Migrates the running guest to the file with QMP and follows it to its end.
fn qemu_save(
    live: &mut Console,
    boot_to_shell: Duration,
    guest: &SnapshotGuest,
) -> Result<Saved, String> {
    let error = |error: xtask::error::Error| error.to_string();
    let mut qmp = Qmp::connect(&guest.qmp, CONSOLE_TIMEOUT).map_err(error)?;
    let start = live.started();
    let asked = start.elapsed();
    qmp.execute(
        "migrate",
        Some(serde_json::json!({ "uri": migration_uri(&guest.migration) })),
    )
    .map_err(error)?;
    let until = Instant::now() + STAGE_TIMEOUT;
    let migration = loop {
        let reply = qmp.execute("query-migrate", None).map_err(error)?;
        let migration = Migration::from_reply(&reply)
            .ok_or_else(|| "QEMU's `query-migrate` reply has no status".to_string())?;
        if migration.finished() {
            break migration;
        }
        if Instant::now() >= until {
            return Err(format!(
                "timed out waiting for QEMU's migration (status `{}`)",
                migration.status
            ));
        }
        std::thread::sleep(MIGRATION_POLL);
    };
    let done = start.elapsed();
    if !migration.completed() {
        return Err(format!(
            "QEMU's migration ended `{}`: {}",
            migration.status,
            migration.error.as_deref().unwrap_or("no reason given")
        ));
    }
    Ok(Saved {
        boot_to_shell,
        wall: done.saturating_sub(asked),
        own_seconds: migration.total_ms.map(|ms| ms / 1e3),
        bytes: 0,
        ram_bytes: migration.normal_bytes,
    })
}

/// The bytes the newest snapshot on `disk` takes in its slot, and the guest RAM it
/// stores, read with Aerie's own reader.
fn slot_usage(disk: &Path) -> Result<(u64, u64), String> {
    let file = FileDisk::open(disk).map_err(|error| error.to_string())?;
    let snapshot = read_snapshot(&file)
        .map_err(|error| format!("{} holds no valid snapshot: {error}", disk.display()))?;
    Ok((snapshot.length, snapshot.stored_memory()))
}

/// The size of `file` once it stops growing (the `cat` writing it may still be
/// flushing when QEMU reports the migration done).
fn settled_size(file: &Path) -> Result<u64, String> {
    let size = || {
        std::fs::metadata(file)
            .map(|metadata| metadata.len())
            .map_err(|error| format!("cannot read {}: {error}", file.display()))
    };
    let until = Instant::now() + FILE_SETTLE_TIMEOUT;
    let mut last = size()?;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = size()?;
        if now == last || Instant::now() >= until {
            return Ok(now);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> SnapshotGuest {
        SnapshotGuest::new(
            GuestFiles {
                kernel: "/w/target/aerie/guest/vmlinuz".into(),
                initrd: Some("/w/target/aerie/guest/initramfs.cpio".into()),
                cmdline: Some("console=ttyAMA0 rdinit=/init quiet panic=-1".into()),
                is_default: true,
            },
            PackedGuest {
                bundle: "/w/target/aerie/bench/linux.cpio".into(),
                size: 35 << 20,
            },
            "/w/target/aerie/aerie.bin".into(),
            Path::new("/w/target/aerie/bench"),
        )
    }

    fn shown(command: &Command) -> String {
        systems::shown(command, Path::new("/w"))
    }

    #[test]
    fn both_save_and_restore_the_same_machine() {
        let guest = guest();
        assert_eq!(guest.qmp, Path::new("/w/target/aerie/bench/qmp.sock"));
        let qemu_save = shown(&command(&guest, Saver::Qemu, Stage::Save));
        let qemu_restore = shown(&command(&guest, Saver::Qemu, Stage::Restore));
        assert!(
            qemu_save.starts_with(
                "qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a72 -smp 1 -m 256M "
            ),
            "{qemu_save}"
        );
        assert!(
            qemu_save
                .ends_with(" -no-reboot -qmp unix:target/aerie/bench/qmp.sock,server=on,wait=off"),
            "{qemu_save}"
        );
        assert!(
            qemu_restore
                .ends_with(" -no-reboot -incoming 'exec:cat target/aerie/bench/migration.bin'"),
            "{qemu_restore}"
        );
        let aerie_save = shown(&command(&guest, Saver::Aerie, Stage::Save));
        let aerie_restore = shown(&command(&guest, Saver::Aerie, Stage::Restore));
        assert!(aerie_save.contains("-smp 1 "), "{aerie_save}");
        assert!(
            aerie_save.contains("file=target/aerie/bench/snapshot-rows.img,"),
            "{aerie_save}"
        );
        assert!(aerie_save.contains("-append 'aerie.guest.mem=256M aerie.guest.smp=1'"));
        assert!(
            aerie_restore
                .contains("-append 'aerie.guest.mem=256M aerie.guest.smp=1 aerie.restore'")
        );
        // Only the restore flag differs.
        assert_eq!(aerie_restore.replace(" aerie.restore", ""), aerie_save);
        let long = SnapshotGuest::new(
            guest.files.clone(),
            guest.bundle.clone(),
            guest.image.clone(),
            &Path::new("/w").join("x".repeat(120)),
        );
        assert!(long.qmp.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn the_uri_quotes_the_file_for_the_shell() {
        assert_eq!(
            migration_uri(Path::new("/tmp/a b/it's.bin")),
            "exec:cat > '/tmp/a b/it'\\''s.bin'"
        );
        assert_eq!(
            migration_uri(Path::new("/w/target/migration-1.bin")),
            "exec:cat > /w/target/migration-1.bin"
        );
    }

    #[test]
    fn probes_and_the_fill_command_avoid_what_a_lost_byte_breaks() {
        // The answer differs from the typed text, so an echo cannot pass for it.
        assert!(!PROBE.contains(ANSWER));
        let fill = fill_command();
        assert!(!fill.contains(FILLED) && !fill.contains(FILL_FAILED));
        for text in [PROBE, fill.as_str()] {
            assert!(!text.contains(['\'', '"', '(', '{', '[', '\\']), "{text}");
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
        }
        assert!(fill.contains("mount -t tmpfs -o size=200m fill /mnt/fill"));
        assert!(fill.contains("dd if=/dev/urandom of=/mnt/fill/data bs=1M count=180"));
        assert_eq!(Case::Filled.label(), "180 MiB in tmpfs");
        assert_eq!(Saver::Qemu.system(), System::None);
    }

    #[test]
    fn aeries_lines_are_told_apart() {
        assert_eq!(
            save_result("Aerie: snapshot: memory 64 MiB of 256 MiB"),
            None
        );
        assert_eq!(
            save_result("Aerie: snapshot failed: no snapshot disk"),
            Some(Err("Aerie's snapshot failed: no snapshot disk".into()))
        );
        let saved = save_result(
            "Aerie: snapshot 1 saved in slot A: 57.1 MiB (56.9 MiB of 256 MiB guest RAM \
             stored, 1 vCPU(s)) in 0.31 s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(saved.seconds, 0.31);
        assert!(
            save_result("Aerie: snapshot 1 saved in slot A")
                .unwrap()
                .unwrap_err()
                .contains("unreadable")
        );
        assert_eq!(restore_result("Aerie: restoring snapshot 1 (slot A)"), None);
        assert_eq!(
            restore_result("Aerie: restored snapshot 1 in 2.40 s; resuming the guest"),
            Some(Ok(2.4))
        );
        assert_eq!(
            restore_result("Aerie: cannot restore: the disk holds no snapshot"),
            Some(Err(
                "Aerie cannot restore: the disk holds no snapshot".into()
            ))
        );
    }

    #[test]
    fn a_migration_file_settles() {
        let file = std::env::temp_dir().join(format!("aerie-settle-{}.bin", std::process::id()));
        std::fs::write(&file, [1u8; 10]).unwrap();
        assert_eq!(settled_size(&file), Ok(10));
        std::fs::remove_file(&file).unwrap();
        assert!(settled_size(&file).unwrap_err().starts_with("cannot read"));
        let missing = guest();
        assert!(
            restore(&missing, Saver::Qemu)
                .unwrap_err()
                .ends_with("is missing")
        );
    }
}
