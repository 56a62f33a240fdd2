//! The [`Qemu`] builder: describe a machine, then [`Qemu::run`] it to an [`Outcome`].

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::outcome::Outcome;
use crate::paths;

/// The emulator binary.
const QEMU: &str = "qemu-system-aarch64";

/// How long a run may take before QEMU is killed (doubled when `CI=true`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a running QEMU is checked for exit.
const POLL: Duration = Duration::from_millis(10);

/// The emulated board.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Machine {
    /// QEMU's `virt`.
    Virt { gic: u32, virtualization: bool },
    /// QEMU's `raspi4b` (fixed CPUs and RAM).
    Raspi4b,
}

/// What QEMU boots.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kernel {
    /// `-kernel $AERIE_IMAGE`.
    FromEnv,
    /// `-kernel PATH`.
    Path(PathBuf),
    /// No `-kernel` (see [`Qemu::loader`]).
    None,
}

/// A QEMU command line under construction. Every run has `-display none -monitor none
/// -serial stdio -semihosting-config enable=on,target=native`: the serial output is the
/// transcript and Aerie can exit QEMU with a status through semihosting.
#[derive(Debug, Clone)]
#[must_use]
pub struct Qemu {
    machine: Machine,
    cpu: Option<String>,
    smp: Option<u32>,
    mem_mib: Option<u64>,
    kernel: Kernel,
    dtb: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<String>,
    no_reboot: bool,
    disks: Vec<PathBuf>,
    loaders: Vec<String>,
    extra: Vec<OsString>,
    timeout: Duration,
}

impl Qemu {
    /// QEMU `virt` at EL2: `virtualization=on`, GICv3, Cortex-A72, 1 CPU, 256 MiB,
    /// booting `$AERIE_IMAGE`.
    pub fn virt() -> Self {
        Self {
            cpu: Some("cortex-a72".to_string()),
            smp: Some(1),
            mem_mib: Some(256),
            ..Self::bare(Machine::Virt {
                gic: 3,
                virtualization: true,
            })
        }
    }

    /// QEMU `raspi4b` (4 Cortex-A72, 2 GiB, GIC-400), booting `$AERIE_IMAGE`. Give it a
    /// device tree with [`Qemu::dtb`]: without one x0 is not a valid tree.
    pub fn raspi4b() -> Self {
        Self::bare(Machine::Raspi4b)
    }

    fn bare(machine: Machine) -> Self {
        Self {
            machine,
            cpu: None,
            smp: None,
            mem_mib: None,
            kernel: Kernel::FromEnv,
            dtb: None,
            initrd: None,
            append: None,
            no_reboot: false,
            disks: Vec::new(),
            loaders: Vec::new(),
            extra: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The GIC version of the virt machine (2 or 3).
    pub fn gic(mut self, version: u32) -> Self {
        assert!(
            version == 2 || version == 3,
            "the GIC version is 2 or 3, not {version}"
        );
        match &mut self.machine {
            Machine::Virt { gic, .. } => *gic = version,
            Machine::Raspi4b => panic!("gic() applies to the virt machine only"),
        }
        self
    }

    /// Whether the virt machine has EL2 (`virtualization=on`, the default).
    pub fn virtualization(mut self, on: bool) -> Self {
        match &mut self.machine {
            Machine::Virt { virtualization, .. } => *virtualization = on,
            Machine::Raspi4b => panic!("virtualization() applies to the virt machine only"),
        }
        self
    }

    /// The CPU model (`-cpu`).
    pub fn cpu(mut self, model: &str) -> Self {
        self.cpu = Some(model.to_string());
        self
    }

    /// The number of CPUs (`-smp`).
    pub fn smp(mut self, cpus: u32) -> Self {
        self.smp = Some(cpus);
        self
    }

    /// RAM in MiB (`-m`).
    pub fn mem_mib(mut self, mib: u64) -> Self {
        self.mem_mib = Some(mib);
        self
    }

    /// Boots `path` with `-kernel` instead of `$AERIE_IMAGE`.
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.kernel = Kernel::Path(path.into());
        self
    }

    /// No `-kernel`: nothing is loaded unless [`Qemu::loader`] adds it, and QEMU passes
    /// no device tree (x0 = 0).
    pub fn no_kernel(mut self) -> Self {
        self.kernel = Kernel::None;
        self
    }

    /// Loads `file` raw at `addr` and starts CPU `cpu_num` there, through
    /// `-device loader,file=...,addr=...,cpu-num=...,force-raw=on`.
    pub fn loader(mut self, file: impl AsRef<Path>, addr: u64, cpu_num: u32) -> Self {
        self.loaders.push(format!(
            "loader,file={},addr={addr:#x},cpu-num={cpu_num},force-raw=on",
            escape(file.as_ref())
        ));
        self
    }

    /// The device tree QEMU passes instead of its own (`-dtb`).
    pub fn dtb(mut self, path: impl Into<PathBuf>) -> Self {
        self.dtb = Some(path.into());
        self
    }

    /// The initrd QEMU loads into RAM and reports in `/chosen` (`-initrd`). For Aerie
    /// this is the guest bundle (see [`crate::guests`]).
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.initrd = Some(path.into());
        self
    }

    /// A reset request exits QEMU (status 0) instead of rebooting (`-no-reboot`).
    pub fn no_reboot(mut self) -> Self {
        self.no_reboot = true;
        self
    }

    /// The kernel command line (`-append`, which QEMU puts in `/chosen/bootargs`).
    pub fn append(mut self, cmdline: &str) -> Self {
        self.append = Some(cmdline.to_string());
        self
    }

    /// Attaches `path` as a raw virtio-blk (virtio-mmio) disk; call again for more.
    pub fn virtio_blk(mut self, path: impl Into<PathBuf>) -> Self {
        self.disks.push(path.into());
        self
    }

    /// Adds a raw QEMU argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// How long the run may take before QEMU is killed (default 60 s). Doubled when the
    /// environment variable `CI` is `true`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout that applies in this environment.
    pub fn effective_timeout(&self) -> Duration {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            self.timeout * 2
        } else {
            self.timeout
        }
    }

    /// QEMU's arguments. Panics if the kernel comes from `$AERIE_IMAGE` and it is unset.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str, b: String| args.extend([a.into(), b.into()]);
        match self.machine {
            Machine::Virt {
                gic,
                virtualization,
            } => {
                let on = if virtualization { "on" } else { "off" };
                push("-M", format!("virt,virtualization={on},gic-version={gic}"));
            }
            Machine::Raspi4b => push("-M", "raspi4b".to_string()),
        }
        if let Some(cpu) = &self.cpu {
            push("-cpu", cpu.clone());
        }
        if let Some(smp) = self.smp {
            push("-smp", smp.to_string());
        }
        if let Some(mib) = self.mem_mib {
            push("-m", format!("{mib}M"));
        }
        push("-display", "none".to_string());
        push("-monitor", "none".to_string());
        push("-serial", "stdio".to_string());
        push("-semihosting-config", "enable=on,target=native".to_string());
        match &self.kernel {
            Kernel::FromEnv => push("-kernel", paths::aerie_image().display().to_string()),
            Kernel::Path(path) => push("-kernel", path.display().to_string()),
            Kernel::None => {}
        }
        if let Some(dtb) = &self.dtb {
            push("-dtb", dtb.display().to_string());
        }
        if let Some(initrd) = &self.initrd {
            push("-initrd", initrd.display().to_string());
        }
        if let Some(cmdline) = &self.append {
            push("-append", cmdline.clone());
        }
        for (index, disk) in self.disks.iter().enumerate() {
            push(
                "-drive",
                format!("file={},if=none,format=raw,id=disk{index}", escape(disk)),
            );
            push("-device", format!("virtio-blk-device,drive=disk{index}"));
        }
        for loader in &self.loaders {
            push("-device", loader.clone());
        }
        if self.no_reboot {
            args.push("-no-reboot".into());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The command line as text, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(QEMU.to_string())
            .chain(self.args().iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs QEMU with stdin closed until it exits or the timeout kills it.
    pub fn run(&self) -> Outcome {
        let command_line = self.command_line();
        let timeout = self.effective_timeout();
        let start = Instant::now();
        let mut child = Command::new(QEMU)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {QEMU} ({e}); `cargo xtask test` installs it\n{command_line}")
            });
        let stdout = read_in_background(child.stdout.take());
        let stderr = read_in_background(child.stderr.take());

        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if start.elapsed() >= timeout => {
                    timed_out = true;
                    // It may have exited just now; either way it is gone after wait().
                    let _ = child.kill();
                    break child.wait().ok();
                }
                Ok(None) => thread::sleep(POLL),
                Err(e) => panic!("cannot wait for {QEMU}: {e}"),
            }
        };
        let duration = start.elapsed();
        Outcome {
            command: command_line,
            transcript: join(stdout),
            stderr: join(stderr),
            exit_code: if timed_out {
                None
            } else {
                status.and_then(|s| s.code())
            },
            timed_out,
            duration,
        }
    }
}

/// Doubles commas, QEMU's escape inside an option value.
fn escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

fn read_in_background(
    pipe: Option<impl Read + Send + 'static>,
) -> Option<thread::JoinHandle<Vec<u8>>> {
    let mut pipe = pipe?;
    Some(thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the transcript early; what was read so far is kept.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    }))
}

fn join(reader: Option<thread::JoinHandle<Vec<u8>>>) -> String {
    let bytes = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(qemu: &Qemu) -> String {
        qemu.command_line()
    }

    #[test]
    fn virt_defaults() {
        assert_eq!(
            line(&Qemu::virt().kernel("/t/aerie.bin")),
            "qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 1 \
             -m 256M -display none -monitor none -serial stdio -semihosting-config \
             enable=on,target=native -kernel /t/aerie.bin"
        );
        assert_eq!(Qemu::virt().timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_option_reaches_the_command_line() {
        let qemu = Qemu::virt()
            .gic(2)
            .virtualization(false)
            .cpu("max")
            .smp(4)
            .mem_mib(512)
            .kernel("/k")
            .dtb("/t/host.dtb")
            .initrd("/t/bundle.cpio")
            .append("aerie.log=debug")
            .no_reboot()
            .virtio_blk("/d/a.img")
            .virtio_blk("/d/b,c.img")
            .arg("-icount")
            .arg("shift=0");
        assert_eq!(
            line(&qemu),
            "qemu-system-aarch64 -M virt,virtualization=off,gic-version=2 -cpu max -smp 4 -m 512M \
             -display none -monitor none -serial stdio -semihosting-config \
             enable=on,target=native -kernel /k -dtb /t/host.dtb -initrd /t/bundle.cpio -append \
             aerie.log=debug -drive file=/d/a.img,if=none,format=raw,id=disk0 -device \
             virtio-blk-device,drive=disk0 -drive file=/d/b,,c.img,if=none,format=raw,id=disk1 \
             -device virtio-blk-device,drive=disk1 -no-reboot -icount shift=0"
        );
    }

    #[test]
    fn loader_replaces_the_kernel() {
        let qemu = Qemu::virt()
            .no_kernel()
            .loader("/t/aerie.bin", 0x4008_0000, 0);
        let line = line(&qemu);
        assert!(!line.contains("-kernel"));
        assert!(
            line.ends_with(
                "-device loader,file=/t/aerie.bin,addr=0x40080000,cpu-num=0,force-raw=on"
            )
        );
    }

    #[test]
    fn raspi4b_keeps_the_board_fixed() {
        let line = line(&Qemu::raspi4b().kernel("/k").dtb("/p.dtb"));
        assert!(
            line.starts_with("qemu-system-aarch64 -M raspi4b -display none"),
            "{line}"
        );
        assert!(!line.contains("-smp") && !line.contains("-m "));
    }

    #[test]
    #[should_panic(expected = "gic() applies to the virt machine only")]
    fn raspi4b_has_no_gic_choice() {
        let _ = Qemu::raspi4b().gic(3);
    }

    #[test]
    fn timeout_is_doubled_in_ci_only() {
        let qemu = Qemu::virt().timeout(Duration::from_secs(5));
        let expected = if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            10
        } else {
            5
        };
        assert_eq!(qemu.effective_timeout(), Duration::from_secs(expected));
    }
}
