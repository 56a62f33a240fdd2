//! Linux as a user runs it: `cargo xtask run --exec CMD` boots the default guest
//! (Debian's arm64 kernel and a busybox initramfs, fetched with APT on first use),
//! types CMD on its console, prints only CMD's output and exits with CMD's status.
//!
//! Each test runs the xtask tool itself through cargo, once with `--no-hyp` (the
//! guest straight on QEMU, the reference) and once under Aerie.

use aerie_tests::xtask::{DEFAULT_DEADLINE, XtaskRun};

/// How long one `--exec` run may take (a boot to the shell takes a few seconds with
/// QEMU TCG; CI machines may be slower).
const TIMEOUT_SECS: u32 = 120;

/// Runs `cargo xtask run --timeout 120 ARGS` with a snapshot disk of the test's own.
fn xtask_run(args: &[&str]) -> XtaskRun {
    aerie_tests::xtask::xtask_run(TIMEOUT_SECS, args, DEFAULT_DEADLINE)
}

/// Where the guest runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// Straight on QEMU (`--no-hyp`).
    Qemu,
    /// Under Aerie.
    Aerie,
}

impl Host {
    fn args(self) -> &'static [&'static str] {
        match self {
            Host::Qemu => &["--no-hyp"],
            Host::Aerie => &[],
        }
    }
}

/// Runs `cmd` on `smp` CPUs and checks the exit code and the output, which must be
/// exactly `expected` without Aerie; under Aerie its lines must include
/// `expected`'s (Aerie's own log lines share the console).
fn assert_exec(host: Host, smp: &str, cmd: &str, code: i32, expected: &str) {
    let mut args = host.args().to_vec();
    args.extend(["--smp", smp, "--exec", cmd]);
    let run = xtask_run(&args);
    assert_eq!(run.code, Some(code), "{}", run.story());
    match host {
        Host::Qemu => assert_eq!(run.stdout, expected, "{}", run.story()),
        Host::Aerie => {
            let lines: Vec<&str> = run.stdout.lines().collect();
            for line in expected.lines() {
                assert!(lines.contains(&line), "no line {line:?}\n{}", run.story());
            }
        }
    }
}

#[test]
fn no_hyp_exec_prints_the_commands_output_and_exits_0() {
    assert_exec(Host::Qemu, "1", "echo hello", 0, "hello\n");
}

#[test]
fn no_hyp_exec_exits_with_the_commands_status() {
    assert_exec(Host::Qemu, "1", "exit 7", 7, "");
}

#[test]
fn no_hyp_two_cpus_are_online() {
    assert_exec(
        Host::Qemu,
        "2",
        "grep -c ^processor /proc/cpuinfo",
        0,
        "2\n",
    );
}

#[test]
fn exec_prints_the_commands_output_and_exits_0() {
    assert_exec(Host::Aerie, "1", "echo hello", 0, "hello\n");
}

#[test]
fn exec_exits_with_the_commands_status() {
    assert_exec(Host::Aerie, "1", "exit 7", 7, "");
}

#[test]
fn two_vcpus_are_online() {
    assert_exec(
        Host::Aerie,
        "2",
        "grep -c ^processor /proc/cpuinfo",
        0,
        "2\n",
    );
}

/// The guest has a real-time clock (a PL031, read by Linux's rtc-pl031 as
/// `/dev/rtc0`) that tells the host's wall-clock time, and Linux set its own clock
/// from it at boot: `date` is not 1970.
#[test]
fn the_guests_clock_is_the_hosts_wall_clock() {
    let before = aerie_tests::host_seconds();
    let run = xtask_run(&[
        "--exec",
        "echo rtc $(cat /sys/class/rtc/rtc0/since_epoch) $(date +%s); \
         cat /sys/class/rtc/rtc0/name",
    ]);
    let after = aerie_tests::host_seconds();
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert_rtc_and_date_between(&run, before, after);
    assert!(
        run.stdout.contains("pl031"),
        "rtc0 should be the PL031\n{}",
        run.story()
    );
}

/// Asserts that the run printed `rtc RTC DATE` (the guest's RTC and `date +%s`) with
/// both within a few seconds of the host's `before..after`.
fn assert_rtc_and_date_between(run: &XtaskRun, before: i64, after: i64) {
    let numbers: Vec<i64> = run
        .lines_after("rtc ")
        .first()
        .map(|line| {
            line.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(numbers.len(), 2, "no `rtc RTC DATE` line\n{}", run.story());
    for (what, seconds) in [("the RTC", numbers[0]), ("the guest's date", numbers[1])] {
        assert!(
            (before - 5..=after + 5).contains(&seconds),
            "{what} says {seconds}, the host {before}..{after}\n{}",
            run.story()
        );
    }
}

/// The guest's timer interrupts keep coming under Aerie: the arch_timer count in
/// /proc/interrupts rises over a second of sleep.
#[test]
fn timer_interrupts_rise() {
    let script = "a=$(awk '/arch_timer/ {print $2}' /proc/interrupts); sleep 1; \
                  b=$(awk '/arch_timer/ {print $2}' /proc/interrupts); \
                  [ \"$b\" -gt \"$a\" ] && echo rising";
    assert_exec(Host::Aerie, "1", script, 0, "rising\n");
}

/// IPIs reach both vCPUs (rescheduling and function-call interrupts are counted on
/// each), and both vCPUs have run work (user or system time in /proc/stat).
#[test]
fn ipis_reach_both_vcpus() {
    let script = "awk '/IPI[01]:/ {a += $2; b += $3} END {if (a > 0 && b > 0) print \"ipis on both\"}' \
                  /proc/interrupts; \
                  awk '/^cpu[01] / {if ($2 + $4 > 0) n++} END {print n \" cpus used\"}' /proc/stat";
    assert_exec(Host::Aerie, "2", script, 0, "ipis on both\n2 cpus used\n");
}

/// A disk image for the guest: 8 MiB with `marker` in sector 0.
fn prepared_disk(name: &str, marker: &[u8]) -> std::path::PathBuf {
    let mut bytes = vec![0u8; 8 << 20];
    bytes[..marker.len()].copy_from_slice(marker);
    aerie_tests::temp_file(name, &bytes)
}

/// `--disk FILE` under Aerie: the guest reads what the host prepared in the image,
/// and what the guest writes (and syncs) is in the file, at the right offset,
/// after the run.
#[test]
fn a_guest_disk_reads_host_data_and_its_writes_reach_the_file() {
    let disk = prepared_disk("disk.img", b"HOST-PREPARED-SECTOR-ZERO");
    let script = "head -c 25 /dev/vda; echo; \
                  echo GUEST-WROTE-SECTOR-100 | dd of=/dev/vda bs=512 seek=100 conv=notrunc \
                  2>/dev/null; sync; echo written";
    let run = xtask_run(&["--disk", disk.to_str().unwrap(), "--exec", script]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines.contains(&"HOST-PREPARED-SECTOR-ZERO"),
        "{}",
        run.story()
    );
    assert!(lines.contains(&"written"), "{}", run.story());
    let image = std::fs::read(&disk).unwrap();
    assert_eq!(
        &image[100 * 512..100 * 512 + 22],
        b"GUEST-WROTE-SECTOR-100",
        "{}",
        run.story()
    );
    assert!(
        image[512..100 * 512].iter().all(|&b| b == 0),
        "nothing else was written"
    );
}

/// Host disk faults (issue 12): QEMU's blkdebug driver fails reads of sector 2048 and
/// writes of sector 4096 of the guest's backing file. The guest gets an I/O error on
/// exactly those requests (VIRTIO_BLK_S_IOERR), the requests beside them work, and
/// the guest and Aerie go on.
#[test]
fn a_failing_host_disk_gives_the_guest_io_errors_and_it_goes_on() {
    let disk = prepared_disk("faulty.img", b"HOST-PREPARED-SECTOR-ZERO");
    let rules = aerie_tests::temp_file(
        "faults.conf",
        b"[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"2048\"\n\n\
          [inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\nsector = \"4096\"\n",
    );
    let spec = format!("blkdebug:{}:{}", rules.display(), disk.display());
    let script = "dd if=/dev/vda of=/dev/null bs=512 skip=2048 count=1 iflag=direct \
                  2>/dev/null; echo bad-read=$?; \
                  head -c 25 /dev/vda; echo; \
                  echo X | dd of=/dev/vda bs=512 seek=4096 count=1 conv=sync,notrunc,fsync \
                  2>/dev/null; echo bad-write=$?; \
                  echo GOOD | dd of=/dev/vda bs=512 seek=100 count=1 conv=sync,notrunc,fsync \
                  2>/dev/null; echo good-write=$?; \
                  dmesg | grep -c 'I/O error, dev vda'";
    let run = xtask_run(&["--disk", &spec, "--exec", script]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    let lines: Vec<&str> = run.stdout.lines().collect();
    for expected in [
        "bad-read=1",
        "HOST-PREPARED-SECTOR-ZERO",
        "bad-write=1",
        "good-write=0",
    ] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?}\n{}",
            run.story()
        );
    }
    let image = std::fs::read(&disk).unwrap();
    assert_eq!(&image[100 * 512..100 * 512 + 4], b"GOOD", "{}", run.story());
    assert!(
        image[4096 * 512..4097 * 512].iter().all(|&b| b == 0),
        "the failed write must not reach the file"
    );
}

/// Two vCPUs read and write the disk at the same time; the data survives
/// (checksums of what each wrote match what the other reads back).
#[test]
fn concurrent_io_from_two_vcpus_keeps_the_data_intact() {
    let disk = prepared_disk("concurrent.img", b"");
    let script = "dd if=/dev/urandom of=/tmp/a bs=64k count=16 2>/dev/null; \
                  dd if=/dev/urandom of=/tmp/b bs=64k count=16 2>/dev/null; \
                  (dd if=/tmp/a of=/dev/vda bs=64k seek=0 conv=notrunc,fsync 2>/dev/null) & \
                  (dd if=/tmp/b of=/dev/vda bs=64k seek=32 conv=notrunc,fsync 2>/dev/null) & \
                  wait; echo 3 > /proc/sys/vm/drop_caches; \
                  a1=$(md5sum < /tmp/a); a2=$(dd if=/dev/vda bs=64k count=16 2>/dev/null | md5sum); \
                  b1=$(md5sum < /tmp/b); b2=$(dd if=/dev/vda bs=64k skip=32 count=16 2>/dev/null | md5sum); \
                  [ \"$a1\" = \"$a2\" ] && [ \"$b1\" = \"$b2\" ] && echo intact";
    let run = xtask_run(&[
        "--smp",
        "2",
        "--disk",
        disk.to_str().unwrap(),
        "--exec",
        script,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(run.stdout.lines().any(|l| l == "intact"), "{}", run.story());
}

/// The same disk works with QEMU's own virtio-blk (`--no-hyp`), the reference.
#[test]
fn no_hyp_disk_is_the_same_device() {
    let disk = prepared_disk("no-hyp-disk.img", b"HOST-PREPARED-SECTOR-ZERO");
    let run = xtask_run(&[
        "--no-hyp",
        "--disk",
        disk.to_str().unwrap(),
        "--exec",
        "head -c 25 /dev/vda",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert_eq!(run.stdout, "HOST-PREPARED-SECTOR-ZERO", "{}", run.story());
}

/// On a GICv2 host (QEMU `virt,gic-version=2`), the guest gets a virtual GICv2 (the
/// distributor emulated, the host's GICV mapped as its CPU interface): Linux runs
/// with both vCPUs, its timer and IPIs.
#[test]
fn linux_on_a_gicv2_host_uses_both_vcpus() {
    let script = "grep -c ^processor /proc/cpuinfo; \
                  awk '/arch_timer/ {if ($2 > 0 && $3 > 0) print \"timer on both\"}' /proc/interrupts";
    let run = xtask_run(&["--gic", "2", "--smp", "2", "--exec", script]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines.contains(&"2") && lines.contains(&"timer on both"),
        "{}",
        run.story()
    );
}

/// The Raspberry Pi 4 model (`--board raspi4b`): a GIC-400 host, secondary CPUs
/// started through the spin table, the image loaded at 0x20_0000: Linux under Aerie
/// runs on two vCPUs there too. The board has no RTC: the guest's PL031 tells the
/// time xtask passed as `aerie.time=`, so its date is the host's, not 1970.
#[test]
fn linux_on_the_raspberry_pi_4_model_uses_both_vcpus() {
    let before = aerie_tests::host_seconds();
    let run = xtask_run(&[
        "--board",
        "raspi4b",
        "--smp",
        "2",
        "--exec",
        "grep -c ^processor /proc/cpuinfo; echo rtc $(cat /sys/class/rtc/rtc0/since_epoch) $(date +%s)",
    ]);
    let after = aerie_tests::host_seconds();
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(run.stdout.lines().any(|l| l == "2"), "{}", run.story());
    assert_rtc_and_date_between(&run, before, after);
}

/// The guest's virtio-console (`hvc0`) carries its output to the physical console.
#[test]
fn hvc0_output_reaches_the_console() {
    let run = xtask_run(&["--exec", "echo through-hvc0 > /dev/hvc0; echo sent"]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines.contains(&"through-hvc0") && lines.contains(&"sent"),
        "{}",
        run.story()
    );
}

/// The guest's virtio-rng gives real entropy through /dev/hwrng: from RNDR with a
/// CPU that has it (`-cpu max`), else from the host's virtio-rng device (`cargo xtask
/// run` gives the machine one). The same boots check the guest's CPU model: Linux's
/// /proc/cpuinfo lists no feature Aerie hides from guests (`hyp/src/cpu_model.rs`),
/// though `-cpu max` has SVE, SME, MOPS and more, and keeps those Aerie passes on.
#[test]
fn hwrng_gives_entropy_and_cpuinfo_shows_aeries_cpu_model() {
    let script = "cat /sys/class/misc/hw_random/rng_current; \
                  head -c 64 /dev/hwrng | wc -c; \
                  grep -m1 ^Features /proc/cpuinfo";
    for cpu in ["max", "cortex-a72"] {
        let run = xtask_run(&["--cpu", cpu, "--exec", script]);
        assert_eq!(run.code, Some(0), "{}", run.story());
        let lines: Vec<&str> = run.stdout.lines().map(str::trim).collect();
        let ok = lines.contains(&"virtio_rng.0") && lines.contains(&"64");
        assert!(ok, "{cpu}: {}", run.story());
        let features: Vec<&str> = lines
            .iter()
            .find_map(|line| line.strip_prefix("Features"))
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .unwrap_or_else(|| panic!("{cpu}: no Features line\n{}", run.story()))
            .split_whitespace()
            .collect();
        let hidden: Vec<&&str> = features
            .iter()
            .filter(|feature| is_hidden_from_guests(feature))
            .collect();
        assert!(
            hidden.is_empty(),
            "{cpu}: the guest sees {hidden:?}, which Aerie hides\n{}",
            run.story()
        );
        let kept: &[&str] = match cpu {
            "max" => &[
                "fp", "asimd", "aes", "atomics", "paca", "pacg", "bti", "rng",
            ],
            _ => &["fp", "asimd", "aes", "crc32"],
        };
        for feature in kept {
            assert!(
                features.contains(feature),
                "{cpu}: no {feature} in {features:?}\n{}",
                run.story()
            );
        }
    }
}

/// Whether a Linux hwcap name (as /proc/cpuinfo prints it) stands for a feature Aerie
/// does not give guests: SVE and SME and their extensions, MTE, MOPS, GCS, FPMR and
/// the FP8 extensions, FAMINMAX, LUT, LS64, permission overlays (see
/// `hyp/src/cpu_model.rs` for the whole list and the reasons).
fn is_hidden_from_guests(feature: &str) -> bool {
    const HIDDEN: &[&str] = &["mte", "mte3", "mops", "gcs", "fpmr", "lut", "poe"];
    const HIDDEN_PREFIXES: &[&str] = &["sve", "sme", "f8", "faminmax", "ls64"];
    HIDDEN.contains(&feature)
        || HIDDEN_PREFIXES
            .iter()
            .any(|prefix| feature.starts_with(prefix))
}

/// What Linux's PMU driver (arm_pmu, built into Debian's kernel) prints when it
/// finds a PMUv3: the Cortex-A72's six event counters and its cycle counter, as on
/// QEMU without Aerie.
const PMU_DRIVER_LINE: &str =
    "hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 counters available";
/// The kernel log's PMU lines without their timestamps (none: no output).
const PMU_LOG: &str = "dmesg | grep 'hw perfevents' | sed 's/^\\[[^]]*\\] //'";

/// The guest owns the host's PMU: Linux finds it through the device tree and reads
/// its counters from PMCR_EL0.N, with either GIC.
#[test]
fn linux_finds_the_pmu_and_its_counters() {
    assert_exec(
        Host::Aerie,
        "1",
        PMU_LOG,
        0,
        &format!("{PMU_DRIVER_LINE}\n"),
    );
    let run = xtask_run(&["--gic", "2", "--exec", PMU_LOG]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(
        run.stdout.lines().any(|line| line == PMU_DRIVER_LINE),
        "{}",
        run.story()
    );
}

/// On the Raspberry Pi 4 model the host's tree gives the PMU one SPI per CPU, which
/// Aerie cannot hand to a vCPU as the PPI a guest expects: the guest has no PMU, and
/// Linux reports none.
#[test]
fn linux_on_the_raspberry_pi_4_model_has_no_pmu() {
    let run = xtask_run(&[
        "--board",
        "raspi4b",
        "--exec",
        "dmesg | grep -c 'hw perfevents' || true",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(run.stdout.lines().any(|l| l == "0"), "{}", run.story());
}
