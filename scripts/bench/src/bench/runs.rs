//! The runs of a benchmark and the samples they give: wall-clock boots, icount boots
//! (with `dmesg` typed in the guest), micro-benchmark runs and snapshot runs, each
//! recorded per round so that rounds can be compared pair by pair.

use std::process::Command;
use std::time::Duration;

use super::console::{self, Capture, Until};
use super::parse::{self, GuestResults};
use super::snapshot::{self, Case, Saver, SnapshotGuest};
use super::systems::{self, LinuxGuest, LinuxRun, MicroGuest, System};
use xtask::initramfs::READY_MARKER;

/// How long one wall-clock boot may take.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long an icount boot and the typed `dmesg` may take.
const ICOUNT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the micro-benchmark may take.
const MICRO_TIMEOUT: Duration = Duration::from_secs(180);
/// The kernel's last log line before it runs `/init` (init/main.c,
/// `run_init_process`).
pub const INIT_MESSAGE: &str = "Run /init as init process";
/// How long a disk run (boot, two transfers) may take.
const DISK_TIMEOUT: Duration = Duration::from_secs(240);
/// The vCPUs of the disk rows.
pub const DISK_VCPUS: u32 = 1;
/// MiB each transfer of the disk rows moves.
pub const DISK_MIB: u64 = 64;

/// The micro-benchmark guest's last line.
const GUEST_DONE: &str = "aerie-bench: done";

/// One series of samples, one per round (`None`: that round's run failed).
pub type Rounds = Vec<Option<f64>>;

/// Samples by key, one series per key, in the order keys first appeared.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<K>(Vec<(K, Rounds)>);

impl<K> Default for Keyed<K> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// Boot samples by system and vCPU count.
pub type BootSamples = Keyed<(System, u32)>;

/// What the snapshot rows measure (see [`super::snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFigure {
    /// Seconds from QEMU's start to the shell's first answer, in the save run.
    BootToShell,
    /// Seconds from the command to the saved snapshot, on the host's clock.
    SaveWall,
    /// Seconds the save took by the saver's own clock.
    SaveOwn,
    /// Seconds from the new QEMU's start to the restored shell's first answer.
    RestoreToShell,
    /// Seconds the restore took by the saver's own clock.
    RestoreOwn,
    /// Bytes the snapshot takes.
    Size,
    /// Bytes of guest RAM it stores.
    RamStored,
}

/// Snapshot samples by figure, case and system.
pub type SnapshotSamples = Keyed<(SnapshotFigure, Case, System)>;

impl<K: PartialEq> Keyed<K> {
    /// Appends the next round's sample of `key`.
    pub fn push(&mut self, key: K, value: Option<f64>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => self.0.push((key, vec![value])),
        }
    }

    /// The samples of `key`, in round order.
    pub fn series(&self, key: K) -> Rounds {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, values)| values.clone())
            .unwrap_or_default()
    }
}

/// One run of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A wall-clock boot of the Linux guest: the system, the vCPUs.
    BootWall(System, u32),
    /// An icount boot of the Linux guest, with `dmesg` typed.
    BootIcount(System, u32),
    /// The virtio-blk transfers.
    Disk(System),
    /// The micro-benchmark guest.
    Micro(System),
    /// A snapshot save and restore.
    Snapshot(Saver, Case),
}

impl Step {
    /// What the step runs, in progress lines and failures.
    pub fn describe(self) -> String {
        match self {
            Step::BootWall(system, vcpus) => {
                format!("{}, {}, wall-clock boot", system.label(), vcpus_name(vcpus))
            }
            Step::BootIcount(system, vcpus) => {
                format!("{}, {}, icount boot", system.label(), vcpus_name(vcpus))
            }
            Step::Disk(system) => format!("{}, virtio-blk", system.label()),
            Step::Micro(system) => format!("{}, micro-benchmark", micro_label(system)),
            Step::Snapshot(saver, case) => {
                format!("{}, snapshot ({})", saver.short(), case.label())
            }
        }
    }
}

/// Every sample of the run, in the order taken.
#[derive(Debug, Default)]
pub struct Samples {
    /// Seconds from QEMU's start to the ready marker.
    pub wall: BootSamples,
    /// Seconds of guest time at the kernel's `Run /init`.
    pub icount: BootSamples,
    /// virtio-blk read throughput, MiB/s, by system (vCPUs: [`DISK_VCPUS`]).
    pub disk_read: BootSamples,
    /// virtio-blk write throughput, likewise.
    pub disk_write: BootSamples,
    /// The micro-benchmark's results, by system, one per round.
    pub micro: Vec<(System, Vec<Option<GuestResults>>)>,
    /// The snapshot rows.
    pub snapshot: SnapshotSamples,
    /// The console of the first Aerie boot (its hardware summary).
    pub aerie_console: Option<String>,
    /// What failed.
    pub failures: Vec<String>,
}

impl Samples {
    fn failed(&mut self, what: &str, capture: &Capture) {
        self.note(format!(
            "{what}: {}; the console's last lines: {}",
            if capture.timed_out {
                "timed out"
            } else {
                "stopped early"
            },
            capture.tail(5).replace('\n', " / ")
        ));
    }

    /// Records (and shows) a failure.
    fn note(&mut self, failure: String) {
        eprintln!("bench: {failure}");
        self.failures.push(failure);
    }

    /// Runs `qemu` until `until` (see [`console::capture`]); the capture if the run
    /// got what it waited for, else `None` with the failure recorded as `what`.
    fn capture(
        &mut self,
        what: &str,
        mut qemu: Command,
        until: &Until,
        timeout: Duration,
    ) -> Option<Capture> {
        match console::capture(&mut qemu, until, timeout) {
            Ok(capture) if capture.complete(until) => Some(capture),
            Ok(capture) => {
                self.failed(what, &capture);
                None
            }
            Err(error) => {
                self.note(format!("{what}: {error}"));
                None
            }
        }
    }

    /// Runs `step` and records its samples (a micro-benchmark step needs `micro`).
    pub fn run(
        &mut self,
        step: Step,
        linux: &LinuxGuest,
        micro: Option<&MicroGuest>,
        snapshot_guest: &SnapshotGuest,
    ) {
        match step {
            Step::BootWall(system, vcpus) => self.boot_wall(linux, system, vcpus),
            Step::BootIcount(system, vcpus) => self.boot_icount(linux, system, vcpus),
            Step::Disk(system) => self.disk(linux, system),
            Step::Micro(system) => match micro {
                Some(micro) => self.micro(micro, system),
                None => self
                    .failures
                    .push(format!("{}: no micro-benchmark guest", step.describe())),
            },
            Step::Snapshot(saver, case) => self.snapshot(snapshot_guest, saver, case),
        }
    }

    /// Boots the Linux guest on `system` and records the seconds from QEMU's start
    /// to the ready marker.
    pub fn boot_wall(&mut self, linux: &LinuxGuest, system: System, vcpus: u32) {
        let what = Step::BootWall(system, vcpus).describe();
        let run = LinuxRun {
            smp: vcpus,
            icount: false,
            disk: false,
        };
        let qemu = systems::linux(linux, system, run);
        let until = Until::Marker(READY_MARKER);
        let capture = self.capture(&what, qemu, &until, BOOT_TIMEOUT);
        let value = capture.and_then(|capture| {
            if system == System::Aerie && self.aerie_console.is_none() {
                self.aerie_console = Some(capture.console.clone());
            }
            capture.ready_after.map(|after| after.as_secs_f64())
        });
        if let Some(seconds) = value {
            eprintln!("bench:   {what}: {seconds:.2} s");
        }
        self.wall.push((system, vcpus), value);
    }

    /// Boots the Linux guest on `system` under icount and records the guest time of
    /// the kernel's [`INIT_MESSAGE`], read with `dmesg` in the guest's shell.
    pub fn boot_icount(&mut self, linux: &LinuxGuest, system: System, vcpus: u32) {
        let what = Step::BootIcount(system, vcpus).describe();
        let until = Until::Command {
            marker: READY_MARKER,
            command: format!("dmesg | grep '{INIT_MESSAGE}'"),
        };
        let run = LinuxRun {
            smp: vcpus,
            icount: true,
            disk: false,
        };
        let qemu = systems::linux(linux, system, run);
        let capture = self.capture(&what, qemu, &until, ICOUNT_TIMEOUT);
        let value = capture.and_then(|capture| {
            let output = capture.command_output.map(|(text, _)| text);
            let seconds = output
                .as_deref()
                .and_then(|text| parse::printk_time_of(text, INIT_MESSAGE));
            if seconds.is_none() {
                self.note(format!(
                    "{what}: no `{INIT_MESSAGE}` line in dmesg's output: {output:?}"
                ));
            }
            seconds
        });
        if let Some(seconds) = value {
            eprintln!("bench:   {what}: {:.3} ms of guest time", seconds * 1e3);
        }
        self.icount.push((system, vcpus), value);
    }

    /// Boots the Linux guest on `system` with the bench disk as `/dev/vda` and records
    /// the throughput of a direct-I/O read and write of [`DISK_MIB`] with `dd`.
    pub fn disk(&mut self, linux: &LinuxGuest, system: System) {
        let what = Step::Disk(system).describe();
        let until = Until::Command {
            marker: READY_MARKER,
            command: parse::disk_command(DISK_MIB),
        };
        let run = LinuxRun {
            smp: DISK_VCPUS,
            icount: false,
            disk: true,
        };
        let qemu = systems::linux(linux, system, run);
        let capture = self.capture(&what, qemu, &until, DISK_TIMEOUT);
        let (read, write) = capture.map_or((None, None), |capture| {
            let output = capture
                .command_output
                .map_or_else(String::new, |(text, _)| text);
            let (read, write) = parse::disk_nanoseconds(&output);
            if read.is_none() || write.is_none() {
                self.note(format!("{what}: the transfers did not finish: {output:?}"));
            }
            let rate = |ns: Option<u64>| {
                ns.filter(|ns| *ns > 0)
                    .map(|ns| DISK_MIB as f64 / (ns as f64 / 1e9))
            };
            (rate(read), rate(write))
        });
        if let (Some(read), Some(write)) = (read, write) {
            eprintln!("bench:   {what}: read {read:.0} MiB/s, write {write:.0} MiB/s");
        }
        self.disk_read.push((system, DISK_VCPUS), read);
        self.disk_write.push((system, DISK_VCPUS), write);
    }

    /// Runs the micro-benchmark guest on `system` (bare QEMU for
    /// [`System::None`]) and records what it reported.
    pub fn micro(&mut self, micro: &MicroGuest, system: System) {
        let what = Step::Micro(system).describe();
        // Xen keeps running once its only domain has stopped.
        let until = if system == System::Xen {
            Until::Marker(GUEST_DONE)
        } else {
            Until::Exit
        };
        let value =
            match console::capture(&mut systems::micro(micro, system), &until, MICRO_TIMEOUT) {
                Ok(capture) => {
                    let results = GuestResults::parse(&capture.console);
                    if results.done && results.errors.is_empty() {
                        eprintln!("bench:   {what}: {} rows", results.rows.len());
                        Some(results)
                    } else {
                        self.failed(&what, &capture);
                        None
                    }
                }
                Err(error) => {
                    self.note(format!("{what}: {error}"));
                    None
                }
            };
        match self.micro.iter_mut().find(|(s, _)| *s == system) {
            Some((_, values)) => values.push(value),
            None => self.micro.push((system, vec![value])),
        }
    }

    /// Saves the snapshot guest in state `case` with `saver`, then restores it in a
    /// new QEMU, and records every [`SnapshotFigure`] (`None` for what failed, so
    /// that every series keeps one sample per round).
    pub fn snapshot(&mut self, guest: &SnapshotGuest, saver: Saver, case: Case) {
        let what = Step::Snapshot(saver, case).describe();
        let saved = snapshot::save(guest, saver, case)
            .map_err(|error| self.note(format!("{what}, save: {error}")));
        let restored = match &saved {
            Ok(_) => snapshot::restore(guest, saver)
                .map_err(|error| self.note(format!("{what}, restore: {error}"))),
            Err(()) => Err(()),
        };
        let saved = saved.ok();
        let restored = restored.ok();
        if let (Some(saved), Some(restored)) = (&saved, &restored) {
            eprintln!(
                "bench:   {what}: boot to shell {:.2} s, save {:.2} s, {:.1} MiB, restore to \
                 shell {:.2} s",
                saved.boot_to_shell.as_secs_f64(),
                saved.wall.as_secs_f64(),
                saved.bytes as f64 / 1048576.0,
                restored.to_shell.as_secs_f64()
            );
        }
        let system = saver.system();
        let figures = [
            (
                SnapshotFigure::BootToShell,
                saved.as_ref().map(|s| s.boot_to_shell.as_secs_f64()),
            ),
            (
                SnapshotFigure::SaveWall,
                saved.as_ref().map(|s| s.wall.as_secs_f64()),
            ),
            (
                SnapshotFigure::SaveOwn,
                saved.as_ref().and_then(|s| s.own_seconds),
            ),
            (
                SnapshotFigure::RestoreToShell,
                restored.as_ref().map(|r| r.to_shell.as_secs_f64()),
            ),
            (
                SnapshotFigure::RestoreOwn,
                restored.as_ref().and_then(|r| r.own_seconds),
            ),
            (SnapshotFigure::Size, saved.as_ref().map(|s| s.bytes as f64)),
            (
                SnapshotFigure::RamStored,
                saved.as_ref().and_then(|s| s.ram_bytes),
            ),
        ];
        for (figure, value) in figures {
            self.snapshot.push((figure, case, system), value);
        }
    }

    /// The micro-benchmark's results on `system`, one per round.
    pub fn micro_results(&self, system: System) -> Vec<Option<GuestResults>> {
        self.micro
            .iter()
            .find(|(s, _)| *s == system)
            .map(|(_, values)| values.clone())
            .unwrap_or_default()
    }
}

/// `1 vCPU`, `2 vCPUs`.
pub fn vcpus_name(vcpus: u32) -> String {
    format!("{vcpus} vCPU{}", if vcpus == 1 { "" } else { "s" })
}

/// The micro-benchmark's column label: without a hypervisor it is "bare QEMU".
pub fn micro_label(system: System) -> &'static str {
    match system {
        System::None => "bare QEMU (no EL2)",
        System::Aerie => "Aerie",
        System::Xen => "Xen 4.17 (dom0less domU)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_kept_per_system_and_vcpus() {
        let mut samples = BootSamples::default();
        samples.push((System::Aerie, 1), Some(1.0));
        samples.push((System::None, 1), Some(2.0));
        samples.push((System::Aerie, 1), None);
        assert_eq!(samples.series((System::Aerie, 1)), [Some(1.0), None]);
        assert_eq!(samples.series((System::None, 1)), [Some(2.0)]);
        assert_eq!(samples.series((System::Aerie, 2)), []);
        assert_eq!(vcpus_name(1), "1 vCPU");
        assert_eq!(vcpus_name(2), "2 vCPUs");
        assert_eq!(micro_label(System::None), "bare QEMU (no EL2)");
    }
}
