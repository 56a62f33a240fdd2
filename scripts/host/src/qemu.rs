//! The [`Qemu`] command-line builder: every QEMU that xtask and the tests start is
//! described with it, each caller stating only what differs (the machine, what it
//! boots, its disks and devices, how its console is wired).
//!
//! The options always come in one order (machine, CPUs and RAM, display and console,
//! what is loaded, devices in the order given, then the extra arguments), so that two
//! runs that differ in one option differ in one place of their command lines. The
//! order of `-device` options matters to QEMU (it fills the virtio-mmio slots in that
//! order) and is kept as given.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The QEMU system emulator.
pub const QEMU: &str = "qemu-system-aarch64";

/// The emulated board.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Machine {
    /// QEMU's `virt`: its GIC version and whether it has EL2.
    Virt { gic: u32, virtualization: bool },
    /// QEMU's `raspi4b` (fixed CPUs and RAM).
    Raspi4b,
}

/// How QEMU connects the machine's serial console (the PL011) to its stdio.
///
/// QEMU's usual `-nographic` multiplexes the terminal between the serial port and
/// QEMU's monitor and keeps Ctrl-A for itself. Under Aerie, Ctrl-A belongs to Aerie's
/// console (`aerie_hyp::console`), so QEMU must pass every byte through: a plain
/// `stdio` character device (`mux=off`) on the serial port, with `signal=off` so that
/// Ctrl-C reaches the guest instead of stopping QEMU. QEMU's documentation, "Character
/// device options": `-chardev stdio,id=id[,mux=on|off][,signal=on|off]`, and
/// `-serial chardev:id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serial {
    /// A person at a terminal, under Aerie: every byte goes to the machine; Aerie
    /// handles Ctrl-A (x quits, h helps, c opens its console).
    Aerie,
    /// A person at a terminal, without Aerie (`--no-hyp`): QEMU's multiplexer handles
    /// Ctrl-A (x quits, h helps), so quitting works the same way.
    Qemu,
    /// A program (xtask's `--exec`, the bench, the tests), through pipes: no escapes
    /// at all.
    Piped,
}

/// The id of the console's character device.
const CHARDEV_ID: &str = "console";

/// A QEMU command line under construction. Every machine gets `-display none`; the
/// rest is what the builder's methods add.
#[derive(Debug, Clone)]
#[must_use]
pub struct Qemu {
    machine: Machine,
    dump_dtb: Option<PathBuf>,
    cpu: Option<String>,
    smp: Option<u32>,
    mem_mib: Option<u64>,
    serial: Option<Serial>,
    kernel: Option<PathBuf>,
    dtb: Option<PathBuf>,
    semihosting: bool,
    initrd: Option<PathBuf>,
    append: Vec<String>,
    /// `-drive`/`-device` pairs and lone `-device` values, in order.
    devices: Vec<String>,
    /// The number of disks [`Qemu::virtio_blk`] added (they are `disk0`, `disk1`, ...).
    disks: usize,
    no_reboot: bool,
    extra: Vec<String>,
    timeout: Option<Duration>,
}

impl Qemu {
    /// QEMU `virt` with EL2 (`virtualization=on`) and a GICv3; QEMU's default CPU,
    /// CPU count and RAM until told otherwise.
    pub fn virt() -> Self {
        Self::new(Machine::Virt {
            gic: 3,
            virtualization: true,
        })
    }

    /// QEMU `raspi4b` (4 Cortex-A72, 2 GiB, GIC-400).
    pub fn raspi4b() -> Self {
        Self::new(Machine::Raspi4b)
    }

    fn new(machine: Machine) -> Self {
        Self {
            machine,
            dump_dtb: None,
            cpu: None,
            smp: None,
            mem_mib: None,
            serial: None,
            kernel: None,
            dtb: None,
            semihosting: false,
            initrd: None,
            append: Vec::new(),
            devices: Vec::new(),
            disks: 0,
            no_reboot: false,
            extra: Vec::new(),
            timeout: None,
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

    /// Whether the virt machine has EL2 (`virtualization=on`, the default); without,
    /// a kernel starts at EL1 as it does under a hypervisor.
    pub fn virtualization(mut self, on: bool) -> Self {
        match &mut self.machine {
            Machine::Virt { virtualization, .. } => *virtualization = on,
            Machine::Raspi4b => panic!("virtualization() applies to the virt machine only"),
        }
        self
    }

    /// QEMU writes the machine's device tree to `path` and exits (`dumpdtb=`).
    pub fn dump_dtb(mut self, path: impl Into<PathBuf>) -> Self {
        self.dump_dtb = Some(path.into());
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

    /// The serial console on QEMU's stdio, wired as `serial` says, and no monitor.
    pub fn serial(mut self, serial: Serial) -> Self {
        self.serial = Some(serial);
        self
    }

    /// Boots `path` (`-kernel`).
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.kernel = Some(path.into());
        self
    }

    /// No `-kernel`: nothing is loaded unless [`Qemu::loader`] adds it, and QEMU passes
    /// no device tree (x0 = 0).
    pub fn no_kernel(mut self) -> Self {
        self.kernel = None;
        self
    }

    /// The device tree QEMU passes instead of its own (`-dtb`).
    pub fn dtb(mut self, path: impl Into<PathBuf>) -> Self {
        self.dtb = Some(path.into());
        self
    }

    /// Semihosting on the host (`-semihosting-config enable=on,target=native`): Aerie
    /// exits QEMU with a status through it.
    pub fn semihosting(mut self) -> Self {
        self.semihosting = true;
        self
    }

    /// The initrd QEMU loads into RAM and reports in `/chosen` (`-initrd`). For Aerie
    /// this is the guest bundle.
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.initrd = Some(path.into());
        self
    }

    /// Adds `words` to the kernel command line (`-append`, which QEMU puts in
    /// `/chosen/bootargs`), after what earlier calls added.
    pub fn append(mut self, words: &str) -> Self {
        self.append.push(words.to_string());
        self
    }

    /// Attaches `path` as a raw virtio-blk (virtio-mmio) disk `disk<n>`; call again
    /// for more.
    pub fn virtio_blk(self, path: impl AsRef<Path>) -> Self {
        self.virtio_blk_with(path, None)
    }

    /// Like [`Qemu::virtio_blk`], the disk reporting `serial` as its serial number
    /// (Aerie tells its disks apart by it).
    pub fn virtio_blk_with(mut self, path: impl AsRef<Path>, serial: Option<&str>) -> Self {
        let id = format!("disk{}", self.disks);
        self.disks += 1;
        self.drive(&id, path, serial)
    }

    /// Attaches `path` as a raw virtio-blk disk with the drive id `id` and, if given,
    /// the serial number `serial`.
    pub fn drive(mut self, id: &str, path: impl AsRef<Path>, serial: Option<&str>) -> Self {
        let file = escape(&path.as_ref().display().to_string());
        self.devices.push("-drive".into());
        self.devices
            .push(format!("file={file},if=none,format=raw,id={id}"));
        let serial = serial.map_or_else(String::new, |serial| format!(",serial={serial}"));
        self.device(&format!("virtio-blk-device,drive={id}{serial}"))
    }

    /// Adds a device (`-device SPEC`).
    pub fn device(mut self, spec: &str) -> Self {
        self.devices.push("-device".into());
        self.devices.push(spec.to_string());
        self
    }

    /// Loads `file` raw at `addr` (`-device loader`), and starts CPU `cpu` there if
    /// given.
    pub fn loader(self, file: impl AsRef<Path>, addr: u64, cpu: Option<u32>) -> Self {
        let file = escape(&file.as_ref().display().to_string());
        let cpu = cpu.map_or_else(String::new, |cpu| format!(",cpu-num={cpu}"));
        self.device(&format!(
            "loader,file={file},addr={addr:#x}{cpu},force-raw=on"
        ))
    }

    /// A reset request exits QEMU (status 0) instead of rebooting (`-no-reboot`).
    pub fn no_reboot(mut self) -> Self {
        self.no_reboot = true;
        self
    }

    /// QEMU starts halted, with a gdb server on `port`.
    pub fn gdb(self, port: u16) -> Self {
        self.args(["-S".into(), "-gdb".into(), format!("tcp::{port}")])
    }

    /// Instruction counting instead of real time (`-icount shift=0,sleep=off`): one
    /// instruction per nanosecond of guest time, as fast as the host runs it. The
    /// bench counts instructions with it.
    pub fn icount(self) -> Self {
        self.args(["-icount", "shift=0,sleep=off"])
    }

    /// QEMU's machine protocol (QMP) on the Unix socket `path`, without waiting for a
    /// client.
    pub fn qmp(self, path: &Path) -> Self {
        self.args([
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", path.display()),
        ])
    }

    /// Adds a raw QEMU argument, after all the others.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// Adds raw QEMU arguments, after all the others.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// How long [`Console`](crate::Console) users such as the tests let this machine
    /// run before they kill it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The timeout given with [`Qemu::timeout`], if any.
    pub fn timeout_given(&self) -> Option<Duration> {
        self.timeout
    }

    /// The value of `-append`, if anything was appended.
    pub fn command_line_words(&self) -> Option<String> {
        (!self.append.is_empty()).then(|| self.append.join(" "))
    }

    /// QEMU's arguments.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |option: &str, value: String| args.extend([option.into(), value]);
        let mut machine = match self.machine {
            Machine::Virt {
                gic,
                virtualization: true,
            } => format!("virt,virtualization=on,gic-version={gic}"),
            Machine::Virt {
                gic,
                virtualization: false,
            } => format!("virt,gic-version={gic}"),
            Machine::Raspi4b => "raspi4b".to_string(),
        };
        if let Some(dump) = &self.dump_dtb {
            machine.push_str(&format!(",dumpdtb={}", escape(&dump.display().to_string())));
        }
        push("-M", machine);
        if let Some(cpu) = &self.cpu {
            push("-cpu", cpu.clone());
        }
        if let Some(smp) = self.smp {
            push("-smp", smp.to_string());
        }
        if let Some(mib) = self.mem_mib {
            push("-m", format!("{mib}M"));
        }
        push("-display", "none".into());
        if let Some(serial) = self.serial {
            let mux = match serial {
                Serial::Qemu => "on",
                Serial::Aerie | Serial::Piped => "off",
            };
            push("-monitor", "none".into());
            push(
                "-chardev",
                format!("stdio,id={CHARDEV_ID},signal=off,mux={mux}"),
            );
            push("-serial", format!("chardev:{CHARDEV_ID}"));
        }
        if let Some(kernel) = &self.kernel {
            push("-kernel", kernel.display().to_string());
        }
        if let Some(dtb) = &self.dtb {
            push("-dtb", dtb.display().to_string());
        }
        if self.semihosting {
            push("-semihosting-config", "enable=on,target=native".into());
        }
        if let Some(initrd) = &self.initrd {
            push("-initrd", initrd.display().to_string());
        }
        if let Some(words) = self.command_line_words() {
            push("-append", words);
        }
        args.extend(self.devices.iter().cloned());
        if self.no_reboot {
            args.push("-no-reboot".into());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The command that starts this machine.
    pub fn command(&self) -> Command {
        let mut command = Command::new(QEMU);
        command.args(self.to_args());
        command
    }

    /// The command line as text, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(QEMU.to_string())
            .chain(self.to_args())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Doubles commas, QEMU's escape inside an option value.
pub fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_virt_machine() {
        assert_eq!(
            Qemu::virt().kernel("/t/aerie.bin").command_line(),
            "qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -display none \
             -kernel /t/aerie.bin"
        );
    }

    #[test]
    fn every_option_reaches_the_command_line_in_one_order() {
        let qemu = Qemu::virt()
            .arg("-S")
            .no_reboot()
            .virtio_blk("/d/a.img")
            .drive("snapshots", "/s,1.img", Some("aerie-snapshots"))
            .virtio_blk_with("/d/b,c.img", Some("aerie-disk1"))
            .append("aerie.log=debug")
            .append("quiet")
            .initrd("/t/bundle.cpio")
            .semihosting()
            .dtb("/t/host.dtb")
            .kernel("/k")
            .serial(Serial::Piped)
            .mem_mib(512)
            .smp(4)
            .cpu("max")
            .virtualization(false)
            .gic(2)
            .icount();
        assert_eq!(
            qemu.command_line(),
            "qemu-system-aarch64 -M virt,gic-version=2 -cpu max -smp 4 -m 512M -display none \
             -monitor none -chardev stdio,id=console,signal=off,mux=off -serial \
             chardev:console -kernel /k -dtb /t/host.dtb -semihosting-config \
             enable=on,target=native -initrd /t/bundle.cpio -append aerie.log=debug quiet \
             -drive file=/d/a.img,if=none,format=raw,id=disk0 -device \
             virtio-blk-device,drive=disk0 -drive file=/s,,1.img,if=none,format=raw,id=snapshots \
             -device virtio-blk-device,drive=snapshots,serial=aerie-snapshots -drive \
             file=/d/b,,c.img,if=none,format=raw,id=disk1 -device \
             virtio-blk-device,drive=disk1,serial=aerie-disk1 -no-reboot -S -icount \
             shift=0,sleep=off"
        );
        assert_eq!(
            qemu.command_line_words().as_deref(),
            Some("aerie.log=debug quiet")
        );
    }

    #[test]
    fn the_console_wiring_decides_who_keeps_ctrl_a() {
        let line = |serial| Qemu::virt().serial(serial).to_args().join(" ");
        assert!(line(Serial::Aerie).ends_with(
            "-display none -monitor none -chardev stdio,id=console,signal=off,mux=off \
             -serial chardev:console"
        ));
        assert_eq!(line(Serial::Piped), line(Serial::Aerie));
        assert!(line(Serial::Qemu).contains("-chardev stdio,id=console,signal=off,mux=on"));
        assert!(!Qemu::virt().to_args().contains(&"-monitor".to_string()));
    }

    #[test]
    fn loaders_gdb_qmp_and_dumps() {
        let line = Qemu::virt()
            .loader("/t/aerie.bin", 0x4008_0000, Some(0))
            .loader("/t/x,y", 0x5000_0000, None)
            .gdb(1234)
            .qmp(Path::new("/tmp/q.sock"))
            .to_args()
            .join(" ");
        assert!(!line.contains("-kernel"));
        assert!(line.ends_with(
            "-device loader,file=/t/aerie.bin,addr=0x40080000,cpu-num=0,force-raw=on \
             -device loader,file=/t/x,,y,addr=0x50000000,force-raw=on -S -gdb tcp::1234 \
             -qmp unix:/tmp/q.sock,server=on,wait=off"
        ));
        let dump = Qemu::raspi4b().dump_dtb("/t/a,b.dtb").dtb("/d/b.dtb");
        assert_eq!(
            dump.to_args().join(" "),
            "-M raspi4b,dumpdtb=/t/a,,b.dtb -display none -dtb /d/b.dtb"
        );
    }

    #[test]
    fn raspi4b_keeps_the_board_fixed() {
        let qemu = Qemu::raspi4b().kernel("/k").timeout(Duration::from_secs(5));
        assert_eq!(qemu.timeout_given(), Some(Duration::from_secs(5)));
        assert_eq!(Qemu::virt().timeout_given(), None);
        let line = qemu.command_line();
        assert!(line.starts_with("qemu-system-aarch64 -M raspi4b -display none"));
        assert!(!line.contains("-smp") && !line.contains("-m "));
    }

    #[test]
    #[should_panic(expected = "gic() applies to the virt machine only")]
    fn raspi4b_has_no_gic_choice() {
        let _ = Qemu::raspi4b().gic(3);
    }
}
