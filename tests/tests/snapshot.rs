//! Snapshots as a user takes them (issue 6): `cargo xtask run --exec CMD --snapshot`
//! saves the running Linux guest after CMD, `cargo xtask run --restore --exec CMD`
//! resumes it in a new QEMU, and `cargo xtask snapshot list|info|verify FILE` reads the
//! snapshot disk.
//!
//! Every run gives the guest 2 vCPUs and 256 MiB of RAM, and each test keeps its own
//! snapshot disk in its temporary directory (xtask creates it). The tests run the xtask
//! tool itself through cargo, as `tests/linux.rs` does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aerie_tests::snapshot_runs::{MEMORY_CHUNK, SnapshotImage, XtaskRun, md5_hex, xtask};

/// The guest's RAM: small, so that snapshots and restores are quick.
const MEM: &str = "256M";
/// The guest's vCPUs.
const SMP: &str = "2";
/// How long one `--exec` run may take (booting or restoring, and CMD), and its snapshot
/// as long again.
const TIMEOUT_SECS: &str = "180";

/// One guest machine: its snapshot disk and its guest disks, the same in every run.
struct Machine {
    snapshots: PathBuf,
    disks: Vec<PathBuf>,
    /// QEMU blkdebug rules that make the snapshot disk fail (`blkdebug:RULES:FILE`).
    snapshot_faults: Option<PathBuf>,
}

impl Machine {
    /// A machine whose snapshot disk is `name` in the test's temporary directory (not
    /// created: xtask does that).
    fn new(name: &str) -> Self {
        Self {
            snapshots: aerie_tests::test_tmp_dir().join(name),
            disks: Vec::new(),
            snapshot_faults: None,
        }
    }

    /// The same machine, with QEMU's blkdebug driver failing its snapshot disk's
    /// requests as `rules` say.
    fn with_failing_snapshot_disk(&self, rules: &Path) -> Self {
        Self {
            snapshots: self.snapshots.clone(),
            disks: self.disks.clone(),
            snapshot_faults: Some(rules.to_path_buf()),
        }
    }

    /// The same machine with a guest disk (`--disk`, `/dev/vda` for the first).
    fn with_disk(mut self, disk: &Path) -> Self {
        self.disks.push(disk.to_path_buf());
        self
    }

    fn snapshots(&self) -> &str {
        self.snapshots.to_str().expect("a UTF-8 path")
    }

    /// The snapshot disk as `--snapshot-disk` gets it: with its faults, if any.
    fn snapshot_disk_option(&self) -> String {
        match &self.snapshot_faults {
            Some(rules) => format!("blkdebug:{}:{}", rules.display(), self.snapshots()),
            None => self.snapshots().to_string(),
        }
    }

    /// `cargo xtask run` on this machine with `args` after the common options.
    fn run(&self, args: &[&str]) -> XtaskRun {
        let snapshot_disk = self.snapshot_disk_option();
        let mut all = vec![
            "run",
            "--snapshot-disk",
            &snapshot_disk,
            "--mem",
            MEM,
            "--smp",
            SMP,
            "--timeout",
            TIMEOUT_SECS,
        ];
        for disk in &self.disks {
            all.extend(["--disk", disk.to_str().expect("a UTF-8 path")]);
        }
        all.extend(args);
        xtask(&all)
    }

    /// Boots the guest, runs `cmd`, snapshots (`--exec CMD --snapshot`).
    fn boot_and_snapshot(&self, cmd: &str) -> XtaskRun {
        self.run(&["--exec", cmd, "--snapshot"])
    }

    /// Restores the newest snapshot and runs `cmd` (`--restore --exec CMD`).
    fn restore(&self, cmd: &str) -> XtaskRun {
        self.run(&["--restore", "--exec", cmd])
    }

    /// `cargo xtask snapshot ACTION FILE` on this machine's snapshot disk.
    fn tool(&self, action: &str) -> XtaskRun {
        xtask(&["snapshot", action, self.snapshots()])
    }
}

/// The run ended with status 0 and printed Aerie's `Aerie: snapshot N saved` line.
fn assert_saved(run: &XtaskRun, sequence: u64) {
    assert_eq!(
        run.code,
        Some(0),
        "the snapshot run failed\n{}",
        run.story()
    );
    let saved = format!("Aerie: snapshot {sequence} saved in slot ");
    assert!(
        run.stderr.contains(&saved),
        "no `{saved}...` line\n{}",
        run.story()
    );
}

/// The run ended with status 0 after Aerie resumed snapshot `sequence`.
fn assert_restored(run: &XtaskRun, sequence: u64) {
    assert_eq!(run.code, Some(0), "the restore run failed\n{}", run.story());
    let restored = format!("Aerie: restored snapshot {sequence} in ");
    assert!(
        run.stderr.contains(&restored) && run.stderr.contains("; resuming the guest"),
        "no `{restored}... s; resuming the guest` line\n{}",
        run.story()
    );
}

/// The run failed (non-zero exit) before QEMU started: xtask said `why`, and Aerie
/// never printed a line.
fn assert_refused_by_xtask(run: &XtaskRun, why: &[&str]) {
    assert!(
        matches!(run.code, Some(code) if code != 0),
        "a non-zero exit expected\n{}",
        run.story()
    );
    for words in why {
        assert!(
            run.stderr.contains(words),
            "no `{words}` in the message\n{}",
            run.story()
        );
    }
    assert!(
        !run.stderr.lines().any(|line| line.starts_with("Aerie")),
        "QEMU started (Aerie printed lines) although xtask should have refused first\n{}",
        run.story()
    );
}

/// The single stdout line starting with `prefix`, without it, as whitespace-separated
/// numbers.
fn numbers_after(run: &XtaskRun, prefix: &str) -> Vec<f64> {
    let lines = run.lines_after(prefix);
    assert_eq!(
        lines.len(),
        1,
        "expected one line starting `{prefix}`\n{}",
        run.story()
    );
    lines[0]
        .split_whitespace()
        .map(|word| {
            word.parse()
                .unwrap_or_else(|_| panic!("`{word}` is not a number\n{}", run.story()))
        })
        .collect()
}

/// Prints how long a step took (shown with `--nocapture`, and in failing tests'
/// output).
fn timed(what: &str, run: &XtaskRun) {
    eprintln!("{what}: {:.1} s", run.took.as_secs_f64());
}

/// Issue 6's "Done when": `--exec 'echo 42 > /tmp/v' --snapshot`, then `--restore
/// --exec 'cat /tmp/v'` prints 42, and the host tool reads the snapshot.
#[test]
fn done_when_example() {
    let machine = Machine::new("s.img");
    let save = machine.boot_and_snapshot("echo 42 > /tmp/v");
    timed("boot and snapshot", &save);
    assert_saved(&save, 1);
    assert!(
        machine.snapshots.is_file(),
        "xtask did not create the snapshot disk"
    );

    let restore = machine.restore("cat /tmp/v");
    timed("restore", &restore);
    assert_restored(&restore, 1);
    assert!(restore.has_line("42"), "no line `42`\n{}", restore.story());

    let verify = machine.tool("verify");
    assert_eq!(verify.code, Some(0), "{}", verify.story());
    assert!(
        verify
            .stdout
            .contains("ok: snapshot 1 (slot A) can be restored"),
        "{}",
        verify.story()
    );

    let list = machine.tool("list");
    assert_eq!(list.code, Some(0), "{}", list.story());
    let slot_a = list.lines_after("slot A: ");
    assert!(
        slot_a.len() == 1
            && slot_a[0].starts_with("valid: snapshot 1,")
            && slot_a[0].contains(", 2 vCPUs, 256 MiB of RAM")
            && slot_a[0].ends_with("(newest)"),
        "slot A should hold snapshot 1 of 2 vCPUs and 256 MiB\n{}",
        list.story()
    );
    assert!(list.has_line("slot B: empty"), "{}", list.story());

    let info = machine.tool("info");
    assert_eq!(info.code, Some(0), "{}", info.story());
    let field = |name: &str| -> Vec<String> {
        info.lines_after(name)
            .into_iter()
            .map(|rest| rest.trim().to_string())
            .collect()
    };
    assert_eq!(field("vCPUs "), ["2"], "{}", info.story());
    assert!(
        field("RAM ")
            .first()
            .is_some_and(|ram| ram.starts_with("256 MiB at ")),
        "{}",
        info.story()
    );
}

/// Host disk faults (issue 12): with every write to the snapshot disk failing (QEMU's
/// blkdebug driver), a snapshot says that it failed and why, Aerie keeps running,
/// and the disk's earlier snapshot stays intact and restorable.
#[test]
fn a_snapshot_whose_disk_fails_is_refused_and_the_earlier_one_survives() {
    let machine = Machine::new("s.img");
    assert_saved(&machine.boot_and_snapshot("echo before > /tmp/v"), 1);

    let rules = aerie_tests::temp_file(
        "writes-fail.conf",
        b"[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\n",
    );
    let failing = machine.with_failing_snapshot_disk(&rules).run(&[
        "--restore",
        "--exec",
        "echo after > /tmp/v; echo wrote",
        "--snapshot",
    ]);
    assert!(failing.has_line("wrote"), "{}", failing.story());
    assert!(
        failing.stderr.contains("could not take the snapshot")
            && failing.stderr.contains("snapshot disk: disk I/O error")
            && failing
                .stderr
                .contains("earlier snapshot, if it has one, is untouched"),
        "the failed snapshot should be reported with its cause\n{}",
        failing.story()
    );
    assert_ne!(failing.code, Some(0), "{}", failing.story());
    assert!(
        !failing.stderr.contains("Aerie crashed"),
        "Aerie must not crash on a host disk error\n{}",
        failing.story()
    );

    let verify = machine.tool("verify");
    assert_eq!(verify.code, Some(0), "{}", verify.story());
    let again = machine.restore("cat /tmp/v");
    assert_restored(&again, 1);
    assert!(again.has_line("before"), "{}", again.story());
}

/// What the guest reads from its background counter: the file may be caught between
/// its truncation and the write, so it is read until it is not empty.
const READ_COUNT: &str =
    "count() { c=; while [ -z \"$c\" ]; do c=$(cat /tmp/count 2>/dev/null); done; echo $c; }";

/// A file in tmpfs, a background counter and the guest's clock survive a snapshot, the
/// end of QEMU and a restore in a new QEMU, twice from the same snapshot.
#[test]
fn state_counter_and_clock_survive() {
    let machine = Machine::new("counter.img");
    let before_cmd = format!(
        "{READ_COUNT}\n\
         echo tmpfs-state-survives > /tmp/state\n\
         (i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done) &\n\
         sleep 2\n\
         echo \"before $(count) $(cut -d' ' -f1 /proc/uptime)\"\n\
         echo \"rtc-before $(cat /sys/class/rtc/rtc0/since_epoch)\""
    );
    let save = machine.boot_and_snapshot(&before_cmd);
    let saved_at = aerie_tests::host_seconds();
    timed("boot and snapshot", &save);
    assert_saved(&save, 1);
    let before = numbers_after(&save, "before ");
    assert_eq!(before.len(), 2, "{}", save.story());
    let (count_before, uptime_before) = (before[0], before[1]);
    assert!(
        count_before >= 2.0,
        "the counter should have counted in 2 s\n{}",
        save.story()
    );
    let listed = machine.tool("list");

    // Each restore appends to the file; the next restore from the same snapshot must
    // not see it.
    let after_cmd = format!(
        "{READ_COUNT}\n\
         sed 's/^/state /' /tmp/state\n\
         a=$(count); u1=$(cut -d' ' -f1 /proc/uptime)\n\
         sleep 1\n\
         b=$(count); u2=$(cut -d' ' -f1 /proc/uptime)\n\
         echo \"after $a $b $u1 $u2\"\n\
         echo \"rtc-after $(cat /sys/class/rtc/rtc0/since_epoch)\"\n\
         echo restored-and-changed >> /tmp/state"
    );
    for round in ["first", "second"] {
        let restore_started = aerie_tests::host_seconds();
        let restore = machine.restore(&after_cmd);
        let restore_ended = aerie_tests::host_seconds();
        timed(&format!("{round} restore"), &restore);
        let story = format!(
            "{round} restore from the same snapshot\n{}",
            restore.story()
        );
        assert_restored(&restore, 1);
        let state = restore.lines_after("state ");
        assert_eq!(
            state,
            ["tmpfs-state-survives"],
            "the tmpfs file should hold exactly what it held at the snapshot\n{story}"
        );
        // The guest's RTC saw the time pass while there was no guest: it tells the
        // host's time again after the restore.
        let rtc_before = numbers_after(&save, "rtc-before ")[0] as i64;
        let rtc_after = numbers_after(&restore, "rtc-after ")[0] as i64;
        assert!(
            (saved_at - 60..=saved_at + 5).contains(&rtc_before)
                && (restore_started - 5..=restore_ended + 5).contains(&rtc_after),
            "the RTC said {rtc_before} at the snapshot (host {saved_at}) and {rtc_after} after \
             the restore (host {restore_started}..{restore_ended})\n{story}"
        );
        let after = numbers_after(&restore, "after ");
        assert_eq!(after.len(), 4, "{story}");
        let (a, b, u1, u2) = (after[0], after[1], after[2], after[3]);
        eprintln!(
            "{round} restore: counter {count_before} at the snapshot, {a} after the restore, \
             {b} a second later; uptime {uptime_before} s, {u1} s, {u2} s"
        );
        assert!(
            a >= count_before,
            "the counter went back: {count_before} before the snapshot, {a} after the \
             restore\n{story}"
        );
        assert!(
            b > a,
            "the counter stopped after the restore: {a}, then {b} a second later\n{story}"
        );
        assert!(
            u1 >= uptime_before,
            "the guest's clock went back: uptime {uptime_before} s before the snapshot, \
             {u1} s after the restore\n{story}"
        );
        assert!(
            u1 < uptime_before + 60.0,
            "the guest's clock jumped: uptime {uptime_before} s before the snapshot, {u1} s \
             after the restore\n{story}"
        );
        assert!(
            (0.9..10.0).contains(&(u2 - u1)),
            "`sleep 1` took {} s of guest uptime after the restore\n{story}",
            u2 - u1
        );
        let listed_now = machine.tool("list");
        assert_eq!(
            listed_now.stdout,
            listed.stdout,
            "a restore without --snapshot changed the snapshot disk\n{}\n{}",
            listed.story(),
            listed_now.story()
        );
    }
}

/// Chained snapshot/restore cycles.
const CYCLES: usize = 20;

/// The guest disk of the chained cycles.
const DISK_BYTES: usize = 16 << 20;

/// Each cycle writes one region of this many bytes (64 KiB blocks, 4 of them), region
/// N at N × this; the background disk load writes from 12 MiB on.
const REGION_BYTES: usize = 256 << 10;

/// One cycle's work in the guest, kept in tmpfs at `/tmp/cycle.sh` (written by cycle 0,
/// so every later cycle also finds it there) and run as `sh /tmp/cycle.sh N`.
///
/// It starts a console load (a line every 50 ms) and a disk load (256 KiB of random
/// data written with fsync, again and again, at 12 MiB and up), both running until 2
/// to 3 s (guest time) after the cycle's foreground work ends, so that the snapshot
/// is taken while they run and they go on, then end, after the restore. The
/// foreground checks that the previous cycle's loads finished, reads back (bypassing
/// the page cache) every region earlier cycles wrote and compares its MD5 with the
/// list in `/tmp/sums`, writes its own region with fsync, and prints `region N MD5`,
/// then `cycle N ok N regions` only if every check passed.
const CYCLE_SCRIPT: &str = r#"n=$1; bad=0; m=0
up() { read u r < /proc/uptime; echo ${u%.*}; }
going() { [ ! -e /tmp/stop.$n ] || [ $(up) -lt $(cat /tmp/stop.$n) ]; }
(k=0; while going; do k=$((k+1)); echo "console-load $n line $k"; sleep 0.05; done; echo $k > /tmp/console-load.$n) &
(k=0; while going; do dd if=/dev/urandom of=/dev/vda bs=64k seek=$((192+k%16*4)) count=4 conv=notrunc,fsync 2>/dev/null; k=$((k+1)); echo "disk-load $n pass $k"; done; echo $k > /tmp/disk-load.$n) &
if [ $n = 0 ]; then : > /tmp/sums; else for f in console-load disk-load; do [ -s /tmp/$f.$((n-1)) ] || { echo "the $f of cycle $((n-1)) did not finish"; bad=1; }; done; fi
while read r s; do
  t=$(dd if=/dev/vda bs=64k skip=$((r*4)) count=4 iflag=direct 2>/dev/null | md5sum)
  [ "${t%% *}" = "$s" ] || { echo "region $r: read ${t%% *}, wrote $s"; bad=1; }
  m=$((m+1))
done < /tmp/sums
dd if=/dev/urandom of=/tmp/r bs=64k count=4 2>/dev/null
s=$(md5sum < /tmp/r); s=${s%% *}
dd if=/tmp/r of=/dev/vda bs=64k seek=$((n*4)) conv=notrunc,fsync 2>/dev/null || bad=1
echo "$n $s" >> /tmp/sums
echo "region $n $s"
[ $m = $n ] || bad=1
[ $bad = 0 ] && echo "cycle $n ok $m regions"
echo $(($(up)+3)) > /tmp/stop.new; mv /tmp/stop.new /tmp/stop.$n
exit $bad"#;

/// Twenty chained snapshot/restore cycles (the first boots, each later one restores
/// the previous one's snapshot and takes the next), under console and disk load, keep
/// the guest disk's data intact: the guest checks every earlier region in every cycle,
/// and the host checks them all in the disk file at the end.
#[test]
fn twenty_chained_cycles_under_load() {
    let disk = aerie_tests::temp_file("guest-disk.img", &vec![0u8; DISK_BYTES]);
    let machine = Machine::new("chain.img").with_disk(&disk);
    let started = Instant::now();
    let mut sums: Vec<String> = Vec::new();
    for cycle in 0..CYCLES {
        let cmd = if cycle == 0 {
            format!("cat > /tmp/cycle.sh <<'EOF'\n{CYCLE_SCRIPT}\nEOF\nsh /tmp/cycle.sh 0")
        } else {
            format!("sh /tmp/cycle.sh {cycle}")
        };
        // --verbose copies the whole console to stderr: the loads' lines after the
        // restore show that they were running when the snapshot was taken.
        let run = if cycle == 0 {
            machine.run(&["--verbose", "--exec", &cmd, "--snapshot"])
        } else {
            machine.run(&["--verbose", "--restore", "--exec", &cmd, "--snapshot"])
        };
        eprintln!(
            "cycle {cycle}: {:.1} s (total {:.0} s)",
            run.took.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        let story = format!("cycle {cycle} of {CYCLES}\n{}", run.story());
        assert!(
            run.has_line(&format!("cycle {cycle} ok {cycle} regions")),
            "no `cycle {cycle} ok {cycle} regions` line: a check in the guest failed \
             (or the run did)\n{story}"
        );
        assert_saved(&run, cycle as u64 + 1);
        if cycle > 0 {
            let restored = format!("Aerie: restored snapshot {cycle} in ");
            let after_restore = run
                .stderr
                .split_once(&restored)
                .map(|(_, rest)| rest)
                .unwrap_or_else(|| panic!("no `{restored}...` line\n{story}"));
            let previous = cycle - 1;
            for load in [
                format!("console-load {previous} line "),
                format!("disk-load {previous} pass "),
            ] {
                assert!(
                    after_restore.contains(&load),
                    "no `{load}...` line after the restore: cycle {previous}'s load was \
                     not running when its snapshot was taken, or did not resume\n{story}"
                );
            }
        }
        assert!(
            !run.lines_after(&format!("console-load {cycle} line "))
                .is_empty(),
            "the console load did not run during the command\n{story}"
        );
        let region = run.lines_after(&format!("region {cycle} "));
        assert!(
            region.len() == 1 && region[0].len() == 32,
            "no `region {cycle} MD5` line\n{story}"
        );
        sums.push(region[0].to_string());
    }
    eprintln!(
        "{CYCLES} cycles in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let image = std::fs::read(&disk).expect("the guest disk file is readable");
    assert_eq!(image.len(), DISK_BYTES, "the guest disk changed size");
    for (region, sum) in sums.iter().enumerate() {
        let bytes = &image[region * REGION_BYTES..(region + 1) * REGION_BYTES];
        assert_eq!(
            &md5_hex(bytes),
            sum,
            "region {region} of {} differs from what the guest wrote",
            disk.display()
        );
    }
    let verify = machine.tool("verify");
    assert_eq!(verify.code, Some(0), "{}", verify.story());
    assert!(
        verify
            .stdout
            .contains(&format!("ok: snapshot {CYCLES} (slot B) can be restored")),
        "{}",
        verify.story()
    );
}

/// A missing or blank snapshot disk, a damaged snapshot and a guest disk changed since
/// the snapshot are all refused, with a message that says what is wrong and where;
/// nothing is half-restored.
#[test]
fn damaged_or_missing_snapshot_is_refused() {
    // No snapshot disk at all: xtask refuses before QEMU starts, and creates nothing.
    let missing = Machine::new("missing.img");
    let run = missing.restore("true");
    assert_refused_by_xtask(&run, &["there is no snapshot to restore", "does not exist"]);
    assert!(
        !missing.snapshots.exists(),
        "--restore created a snapshot disk"
    );

    // A blank one (all zero, large enough).
    let blank = Machine::new("blank.img");
    let file = std::fs::File::create(&blank.snapshots).expect("create the blank disk");
    file.set_len(600 << 20).expect("size the blank disk");
    drop(file);
    let run = blank.restore("true");
    assert_refused_by_xtask(&run, &["holds no snapshot"]);

    // A good snapshot, of a guest with a disk.
    let guest_disk = aerie_tests::temp_file("guest-disk.img", &vec![0x5a; 4 << 20]);
    let machine = Machine::new("damaged.img").with_disk(&guest_disk);
    let save = machine.boot_and_snapshot("echo kept-in-tmpfs > /tmp/v");
    timed("boot and snapshot", &save);
    assert_saved(&save, 1);
    let verify = machine.tool("verify");
    assert_eq!(verify.code, Some(0), "{}", verify.story());

    let image = SnapshotImage::open(&machine.snapshots).expect("open the snapshot disk");
    let slot = image.newest_slot().expect("the snapshot disk's layout");
    assert_eq!((slot.letter(), slot.sequence), ('A', 1), "{slot:?}");
    let memory = slot
        .chunks
        .iter()
        .find(|chunk| chunk.kind == MEMORY_CHUNK && chunk.length >= 8192)
        .copied()
        .expect("a memory chunk of at least two pages");
    let header = slot.chunks[1];
    let damages = [
        (
            "a byte a page into a memory chunk's payload",
            memory,
            memory.payload() + 4096 + 17,
        ),
        ("a byte of a chunk header's id", header, header.header + 8),
    ];
    for (what, chunk, offset) in damages {
        image.flip_byte(offset).expect("damage the snapshot");
        let place = format!(
            "chunk {} (at byte {} of the data area)",
            chunk.index, chunk.offset
        );
        let verify = machine.tool("verify");
        assert_eq!(
            verify.code,
            Some(1),
            "verify passed with {what} damaged\n{}",
            verify.story()
        );
        assert!(
            verify.stdout.contains("slot A: damaged: ") && verify.stdout.contains(&place),
            "verify should say that slot A's {place} is damaged ({what})\n{}",
            verify.story()
        );
        let list = machine.tool("list");
        assert!(
            list.stdout.contains("slot A: damaged: ") && list.stdout.contains(&place),
            "list should show slot A's {place} damaged ({what})\n{}",
            list.story()
        );
        let run = machine.restore("cat /tmp/v");
        assert_refused_by_xtask(&run, &["slot A", &place]);
        image.flip_byte(offset).expect("repair the snapshot");
        let verify = machine.tool("verify");
        assert_eq!(
            verify.code,
            Some(0),
            "verify fails after the damage ({what}) was undone\n{}",
            verify.story()
        );
    }

    // The same guest disk: the repaired snapshot restores.
    let restore = machine.restore("cat /tmp/v");
    timed("restore", &restore);
    assert_restored(&restore, 1);
    assert!(restore.has_line("kept-in-tmpfs"), "{}", restore.story());

    // Another CPU model (the snapshot's guest ran on cortex-a72): the guest would see
    // other features; Aerie refuses, naming the fields that differ.
    let run = machine.run(&[
        "--verbose",
        "--cpu",
        "max",
        "--restore",
        "--exec",
        "cat /tmp/v",
    ]);
    timed("refused restore (CPU)", &run);
    assert!(
        matches!(run.code, Some(code) if code != 0),
        "a restore on another CPU model should fail\n{}",
        run.story()
    );
    assert!(
        run.stderr
            .contains("Aerie: cannot restore: this CPU cannot give the guest the CPU it had")
            && run.stderr.contains("ID_AA64ISAR0_EL1.Atomic 0 here 2"),
        "no `cannot restore: this CPU cannot give the guest the CPU it had` line naming \
         ID_AA64ISAR0_EL1.Atomic\n{}",
        run.story()
    );
    assert!(
        !run.has_line("kept-in-tmpfs"),
        "the command ran although the restore was refused\n{}",
        run.story()
    );

    // A guest disk changed since the snapshot: Aerie refuses, naming the disk.
    let mut contents = std::fs::read(&guest_disk).expect("read the guest disk");
    contents[1 << 20] ^= 1;
    std::fs::write(&guest_disk, &contents).expect("change the guest disk");
    let run = machine.run(&["--verbose", "--restore", "--exec", "cat /tmp/v"]);
    timed("refused restore", &run);
    assert!(
        matches!(run.code, Some(code) if code != 0),
        "a restore onto a changed disk should fail\n{}",
        run.story()
    );
    assert!(
        run.stderr
            .contains("Aerie: cannot restore: guest disk aerie-disk0 changed since the snapshot"),
        "no `Aerie: cannot restore: guest disk aerie-disk0 changed` line\n{}",
        run.story()
    );
    assert!(
        !run.has_line("kept-in-tmpfs"),
        "the command ran although the restore was refused\n{}",
        run.story()
    );

    // No guest disk where the snapshot had one: refused too.
    let diskless = Machine {
        snapshots: machine.snapshots.clone(),
        disks: Vec::new(),
        snapshot_faults: None,
    };
    let run = diskless.run(&["--verbose", "--restore", "--exec", "cat /tmp/v"]);
    assert!(
        matches!(run.code, Some(code) if code != 0)
            && run
                .stderr
                .contains("Aerie: cannot restore: the snapshot's guest has 1 disk(s)"),
        "a restore without the snapshot's guest disk should be refused\n{}",
        run.story()
    );
}
