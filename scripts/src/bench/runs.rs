//! The runs of a benchmark and the samples they give: wall-clock boots, icount boots
//! (with `dmesg` typed in the guest) and micro-benchmark runs, each recorded per
//! round so that rounds can be compared pair by pair.

use std::time::Duration;

use super::console::{self, Capture, Until};
use super::parse::{self, GuestResults};
use super::systems::{self, LinuxGuest, LinuxRun, MicroGuest, System};
use crate::error::Error;
use crate::initramfs::READY_MARKER;

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

/// Boot samples by system and vCPU count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootSamples(Vec<((System, u32), Rounds)>);

impl BootSamples {
    /// Appends the next round's sample of `key`.
    pub fn push(&mut self, key: (System, u32), value: Option<f64>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => self.0.push((key, vec![value])),
        }
    }

    /// The samples of `key`, in round order.
    pub fn series(&self, key: (System, u32)) -> Rounds {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, values)| values.clone())
            .unwrap_or_default()
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
    /// The console of the first Aerie boot (its hardware summary).
    pub aerie_console: Option<String>,
    /// What failed.
    pub failures: Vec<String>,
}

impl Samples {
    fn failed(&mut self, what: String, capture: &Capture) {
        let failure = format!(
            "{what}: {}; the console's last lines: {}",
            if capture.timed_out {
                "timed out"
            } else {
                "stopped early"
            },
            capture.tail(5).replace('\n', " / ")
        );
        eprintln!("bench: {failure}");
        self.failures.push(failure);
    }

    fn start_failed(&mut self, what: String, error: &Error) {
        eprintln!("bench: {what}: {error}");
        self.failures.push(format!("{what}: {error}"));
    }

    /// Boots the Linux guest on `system` and records the seconds from QEMU's start
    /// to the ready marker.
    pub fn boot_wall(&mut self, linux: &LinuxGuest, system: System, vcpus: u32) {
        let what = format!("{}, {}, wall-clock boot", system.label(), vcpus_name(vcpus));
        let until = Until::Marker(READY_MARKER);
        let value = match console::capture(
            &mut systems::linux(
                linux,
                system,
                LinuxRun {
                    smp: vcpus,
                    icount: false,
                    disk: false,
                },
            ),
            &until,
            BOOT_TIMEOUT,
        ) {
            Ok(capture) if capture.complete(&until) => {
                if system == System::Aerie && self.aerie_console.is_none() {
                    self.aerie_console = Some(capture.console.clone());
                }
                capture.ready_after.map(|after| after.as_secs_f64())
            }
            Ok(capture) => {
                self.failed(what.clone(), &capture);
                None
            }
            Err(error) => {
                self.start_failed(what.clone(), &error);
                None
            }
        };
        if let Some(seconds) = value {
            eprintln!("bench:   {what}: {seconds:.2} s");
        }
        self.wall.push((system, vcpus), value);
    }

    /// Boots the Linux guest on `system` under icount and records the guest time of
    /// the kernel's [`INIT_MESSAGE`], read with `dmesg` in the guest's shell.
    pub fn boot_icount(&mut self, linux: &LinuxGuest, system: System, vcpus: u32) {
        let what = format!("{}, {}, icount boot", system.label(), vcpus_name(vcpus));
        let until = Until::Command {
            marker: READY_MARKER,
            command: format!("dmesg | grep '{INIT_MESSAGE}'"),
        };
        let value = match console::capture(
            &mut systems::linux(
                linux,
                system,
                LinuxRun {
                    smp: vcpus,
                    icount: true,
                    disk: false,
                },
            ),
            &until,
            ICOUNT_TIMEOUT,
        ) {
            Ok(capture) if capture.complete(&until) => {
                let output = capture
                    .command_output
                    .as_ref()
                    .map(|(text, _)| text.as_str());
                let seconds = output.and_then(|text| parse::printk_time_of(text, INIT_MESSAGE));
                if seconds.is_none() {
                    let failure =
                        format!("{what}: no `{INIT_MESSAGE}` line in dmesg's output: {output:?}");
                    eprintln!("bench: {failure}");
                    self.failures.push(failure);
                }
                seconds
            }
            Ok(capture) => {
                self.failed(what.clone(), &capture);
                None
            }
            Err(error) => {
                self.start_failed(what.clone(), &error);
                None
            }
        };
        if let Some(seconds) = value {
            eprintln!("bench:   {what}: {:.3} ms of guest time", seconds * 1e3);
        }
        self.icount.push((system, vcpus), value);
    }

    /// Boots the Linux guest on `system` with the bench disk as `/dev/vda` and records
    /// the throughput of a direct-I/O read and write of [`DISK_MIB`] with `dd`.
    pub fn disk(&mut self, linux: &LinuxGuest, system: System) {
        let what = format!("{}, virtio-blk", system.label());
        let until = Until::Command {
            marker: READY_MARKER,
            command: parse::disk_command(DISK_MIB),
        };
        let run = LinuxRun {
            smp: DISK_VCPUS,
            icount: false,
            disk: true,
        };
        let (read, write) = match console::capture(
            &mut systems::linux(linux, system, run),
            &until,
            DISK_TIMEOUT,
        ) {
            Ok(capture) if capture.complete(&until) => {
                let output = capture
                    .command_output
                    .as_ref()
                    .map_or("", |(text, _)| text.as_str());
                let (read, write) = parse::disk_nanoseconds(output);
                if read.is_none() || write.is_none() {
                    let failure = format!("{what}: the transfers did not finish: {output:?}");
                    eprintln!("bench: {failure}");
                    self.failures.push(failure);
                }
                let rate = |ns: Option<u64>| {
                    ns.filter(|ns| *ns > 0)
                        .map(|ns| DISK_MIB as f64 / (ns as f64 / 1e9))
                };
                (rate(read), rate(write))
            }
            Ok(capture) => {
                self.failed(what.clone(), &capture);
                (None, None)
            }
            Err(error) => {
                self.start_failed(what.clone(), &error);
                (None, None)
            }
        };
        if let (Some(read), Some(write)) = (read, write) {
            eprintln!("bench:   {what}: read {read:.0} MiB/s, write {write:.0} MiB/s");
        }
        self.disk_read.push((system, DISK_VCPUS), read);
        self.disk_write.push((system, DISK_VCPUS), write);
    }

    /// Runs the micro-benchmark guest on `system` (bare QEMU for
    /// [`System::None`]) and records what it reported.
    pub fn micro(&mut self, micro: &MicroGuest, system: System) {
        let what = format!("{}, micro-benchmark", micro_label(system));
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
                        self.failed(what, &capture);
                        None
                    }
                }
                Err(error) => {
                    self.start_failed(what, &error);
                    None
                }
            };
        match self.micro.iter_mut().find(|(s, _)| *s == system) {
            Some((_, values)) => values.push(value),
            None => self.micro.push((system, vec![value])),
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
