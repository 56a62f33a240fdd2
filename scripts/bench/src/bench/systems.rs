//! The systems compared and the QEMU command line of each: the same `virt` machine,
//! CPU model, vCPU count and guest, with Aerie (`cargo xtask run`'s command line),
//! without a hypervisor (`cargo xtask run --no-hyp`'s) or with Xen.

use std::path::{Path, PathBuf};
use std::process::Command;

use aerie_host::{Qemu, Serial};

use super::xen;
use xtask::cli::RunOptions;
use xtask::guest::PackedGuest;
use xtask::guest_material::GuestFiles;
use xtask::no_hyp;
use xtask::run;

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// The guest straight on QEMU, at EL1 with no EL2.
    None,
    /// The guest under Aerie.
    Aerie,
    /// The guest as Xen's dom0.
    Xen,
}

impl System {
    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            System::None => "no hypervisor",
            System::Aerie => "Aerie",
            System::Xen => "Xen 4.17 (dom0)",
        }
    }

    /// A short name for progress lines and ratio headings.
    pub fn short(self) -> &'static str {
        match self {
            System::None => "none",
            System::Aerie => "Aerie",
            System::Xen => "Xen",
        }
    }
}

/// The guest's RAM in the Linux boot rows, in MiB (`cargo xtask run`'s default).
pub const LINUX_MEM_MIB: u64 = 1024;
/// The micro-benchmark guest's RAM, in MiB.
pub const MICRO_MEM_MIB: u64 = 64;
/// The micro-benchmark's vCPUs (two: one sends IPIs to the other).
pub const MICRO_VCPUS: u32 = 2;
/// What Aerie's command line adds for the micro-benchmark: the test device.
const TESTDEV_OPTION: &str = "aerie.guest.testdev=on";

/// The `run` options behind every command: `smp` vCPUs, `mem_mib` of guest RAM and
/// `--exec` (so the guest boots with `quiet panic=-1` and QEMU stops at a reset).
pub fn run_options(smp: u32, mem_mib: u64, snapshots: &Path) -> RunOptions {
    RunOptions {
        smp,
        mem_mib,
        exec: Some("cargo xtask bench".to_string()),
        snapshot_disk: Some(snapshots.to_path_buf()),
        ..RunOptions::default()
    }
}

/// What the Linux boot rows boot.
#[derive(Debug, Clone)]
pub struct LinuxGuest {
    /// The default guest with its `--exec` command line.
    pub files: GuestFiles,
    /// The same packed for Aerie.
    pub bundle: PackedGuest,
    /// Aerie's image.
    pub image: PathBuf,
    /// Aerie's snapshot disk for the bench.
    pub snapshots: PathBuf,
    /// Xen, when it is part of the run.
    pub xen: Option<PathBuf>,
    /// The raw disk the virtio-blk rows give the guest.
    pub disk: PathBuf,
}

/// What a Linux run needs beside the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxRun {
    /// vCPUs.
    pub smp: u32,
    /// Under `-icount shift=0,sleep=off`.
    pub icount: bool,
    /// With [`LinuxGuest::disk`] as the guest's virtio-blk disk (`/dev/vda`).
    pub disk: bool,
}

/// The command that boots the Linux guest on `system` as `run` says.
pub fn linux(guest: &LinuxGuest, system: System, run: LinuxRun) -> Command {
    let LinuxRun { smp, icount, disk } = run;
    let mut options = run_options(smp, LINUX_MEM_MIB, &guest.snapshots);
    if disk {
        options.disks = vec![guest.disk.clone()];
    }
    let qemu = match system {
        System::None => no_hyp::machine(&options, &guest.files, Serial::Piped),
        System::Aerie => aerie(&options, &guest.image, &guest.snapshots, &guest.bundle),
        System::Xen => xen_machine(guest, &options),
    };
    if icount { qemu.icount() } else { qemu }.command()
}

/// Aerie's machine (`cargo xtask run`'s, with `--exec`'s console on pipes) booting
/// `bundle` with `image`, `snapshots` as its snapshot disk.
pub fn aerie(options: &RunOptions, image: &Path, snapshots: &Path, bundle: &PackedGuest) -> Qemu {
    run::machine(options, image, snapshots, Some(bundle), Serial::Piped)
}

/// RAM Xen's machine has beside dom0's, in MiB. Xen maps dom0's RAM 1:1 in a few
/// large aligned blocks below 4 GiB, which the modules and Xen itself fragment: with
/// only Aerie's share on top (160 MiB and the bundle) it cannot place 1 GiB and
/// panics ("Failed to allocate requested dom0 memory").
pub const XEN_SHARE_MIB: u64 = 1024;

/// Xen's machine: Aerie's (`virt` with EL2, same CPU and vCPUs) with
/// [`XEN_SHARE_MIB`] of RAM beside dom0's, Xen as the kernel, the default guest as
/// dom0 with the guest's RAM.
fn xen_machine(guest: &LinuxGuest, options: &RunOptions) -> Qemu {
    let qemu = Qemu::virt()
        .gic(options.gic.version())
        .cpu(&options.cpu)
        .smp(options.smp)
        .mem_mib(options.mem_mib + XEN_SHARE_MIB)
        .serial(Serial::Piped)
        .kernel(guest.xen.as_deref().unwrap_or(Path::new("xen")))
        .append(&xen::command_line(options.mem_mib, options.smp));
    let cmdline = guest.files.cmdline.as_deref().unwrap_or_default();
    let initrd = guest.files.initrd.as_deref().unwrap_or(Path::new(""));
    let qemu = xen::with_dom0(
        qemu,
        &guest.files.kernel,
        initrd,
        &xen::dom0_cmdline(cmdline),
    );
    // dom0 drives QEMU's virtio-blk itself, as the guest does without a hypervisor.
    let qemu = run::with_disks(qemu, options, false);
    run::with_run_options(qemu, options)
}

/// What the micro-benchmark boots.
#[derive(Debug, Clone)]
pub struct MicroGuest {
    /// The guest's ELF, which bare QEMU loads at its link address.
    pub elf: PathBuf,
    /// Its flat Image, Xen's domU kernel.
    pub flat: PathBuf,
    /// The flat Image packed for Aerie.
    pub bundle: PackedGuest,
    /// Aerie's image.
    pub image: PathBuf,
    /// Aerie's snapshot disk for the bench.
    pub snapshots: PathBuf,
    /// Xen and the device tree describing the guest as its domU, when Xen is part
    /// of the run.
    pub xen: Option<(PathBuf, PathBuf)>,
}

/// The machine of the micro-benchmark under Xen: `virt` with EL2, the same CPU
/// model and vCPUs, [`XEN_MICRO_MACHINE_MIB`] of RAM.
pub fn xen_micro_machine() -> Qemu {
    let options = RunOptions::default();
    Qemu::virt()
        .gic(options.gic.version())
        .cpu(&options.cpu)
        .smp(MICRO_VCPUS)
        .mem_mib(XEN_MICRO_MACHINE_MIB)
}

/// The RAM of Xen's machine in the micro-benchmark: the domU's, Xen's and room for
/// the module above QEMU's device tree.
pub const XEN_MICRO_MACHINE_MIB: u64 = 512;

/// The command that runs the micro-benchmark guest on `system` under icount.
pub fn micro(guest: &MicroGuest, system: System) -> Command {
    micro_machine(guest, system).command()
}

/// The machine that runs the micro-benchmark guest on `system` under icount.
pub fn micro_machine(guest: &MicroGuest, system: System) -> Qemu {
    let options = run_options(MICRO_VCPUS, MICRO_MEM_MIB, &guest.snapshots);
    let qemu = match system {
        System::Aerie => {
            aerie(&options, &guest.image, &guest.snapshots, &guest.bundle).append(TESTDEV_OPTION)
        }
        System::Xen => {
            let (xen, dtb) = guest.xen.clone().unwrap_or_default();
            let qemu = xen_micro_machine()
                .serial(Serial::Piped)
                .kernel(xen)
                .dtb(dtb)
                .loader(&guest.flat, xen::DOMU_MODULE_ADDRESS, None);
            run::with_run_options(qemu, &options)
        }
        System::None => {
            let files = GuestFiles {
                kernel: guest.elf.clone(),
                initrd: None,
                cmdline: None,
                is_default: false,
            };
            no_hyp::machine(&options, &files, Serial::Piped)
        }
    };
    qemu.icount()
}

/// A command as the report shows it: paths under `root` relative to it.
pub fn shown(command: &Command, root: &Path) -> String {
    let prefix = format!("{}/", root.display());
    xtask::process::display(command).replace(&prefix, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux_guest() -> LinuxGuest {
        LinuxGuest {
            files: GuestFiles {
                kernel: "/w/target/aerie/guest/vmlinuz".into(),
                initrd: Some("/w/target/aerie/guest/initramfs.cpio".into()),
                cmdline: Some(
                    "console=ttyAMA0 earlycon=pl011,0x09000000 rdinit=/init quiet panic=-1".into(),
                ),
                is_default: true,
            },
            bundle: PackedGuest {
                bundle: "/w/target/aerie/bench/linux.cpio".into(),
                size: 35 << 20,
            },
            image: "/w/target/aerie/aerie.bin".into(),
            snapshots: "/w/target/aerie/bench/snapshots.img".into(),
            xen: Some("/w/target/aerie/xen/xen".into()),
            disk: "/w/target/aerie/bench/disk.img".into(),
        }
    }

    fn plain(smp: u32, icount: bool) -> LinuxRun {
        LinuxRun {
            smp,
            icount,
            disk: false,
        }
    }

    fn args(command: &Command) -> String {
        shown(command, Path::new("/w"))
    }

    #[test]
    fn the_three_systems_share_the_machine() {
        let guest = linux_guest();
        let none = args(&linux(&guest, System::None, plain(2, false)));
        let aerie = args(&linux(&guest, System::Aerie, plain(2, false)));
        let xen = args(&linux(&guest, System::Xen, plain(2, true)));
        for command in [&none, &aerie, &xen] {
            assert!(
                command.starts_with("qemu-system-aarch64 -M virt,"),
                "{command}"
            );
            assert!(command.contains(" -cpu cortex-a72 -smp 2 "), "{command}");
            assert!(command.contains("-chardev stdio,id=console,signal=off,mux=off"));
            assert!(command.contains(" -no-reboot"), "{command}");
        }
        assert!(none.contains("-M virt,gic-version=3 ") && none.contains(" -m 1024M "));
        assert!(none.contains(
            "-kernel target/aerie/guest/vmlinuz -initrd target/aerie/guest/initramfs.cpio"
        ));
        assert!(aerie.contains("-M virt,virtualization=on,gic-version=3"));
        assert!(aerie.contains("-initrd target/aerie/bench/linux.cpio"));
        assert!(aerie.contains("aerie.guest.mem=1024M aerie.guest.smp=2"));
        // Aerie's machine has the guest's RAM, Aerie's share and the bundle; Xen's the
        // guest's and its own share.
        let aerie_mib = run::machine_mem_mib(
            &run_options(2, LINUX_MEM_MIB, &guest.snapshots),
            Some(&guest.bundle),
        );
        assert!(aerie.contains(&format!(" -m {aerie_mib}M ")));
        assert!(xen.contains(" -m 2048M "), "{xen}");
        assert!(
            xen.contains(
                "-kernel target/aerie/xen/xen -append 'dom0_mem=1024M,max:1024M dom0_max_vcpus=2 \
             console=dtuart noreboot'"
            ),
            "{xen}"
        );
        assert!(xen.contains(
            "'guest-loader,addr=0x49000000,kernel=target/aerie/guest/vmlinuz,bootargs=console=hvc0 \
             earlycon=xen rdinit=/init quiet panic=-1'"
        ), "{xen}");
        assert!(xen.ends_with(" -icount shift=0,sleep=off"), "{xen}");
        assert!(!none.contains("icount"));
        assert!(
            !none.contains("disk.img") && !aerie.contains("disk.img") && !xen.contains("disk.img")
        );
    }

    #[test]
    fn the_disk_rows_give_every_system_the_same_disk() {
        let guest = linux_guest();
        let run = LinuxRun {
            disk: true,
            ..plain(1, false)
        };
        let drive = "-drive file=target/aerie/bench/disk.img,if=none,format=raw,id=disk0";
        for system in [System::None, System::Aerie, System::Xen] {
            let command = args(&linux(&guest, system, run));
            assert!(command.contains(drive), "{command}");
        }
        // Under Aerie the disk carries the serial that hands it to the guest.
        assert!(args(&linux(&guest, System::Aerie, run)).contains("serial=aerie-disk0"));
        assert!(!args(&linux(&guest, System::None, run)).contains("serial="));
    }

    #[test]
    fn the_micro_benchmark_runs_bare_or_under_aerie_with_the_test_device() {
        let guest = MicroGuest {
            elf: "/w/target/aarch64-unknown-none-softfloat/release/bench".into(),
            flat: "/w/target/aerie/test-guests/bench.bin".into(),
            xen: Some((
                "/w/target/aerie/xen/xen".into(),
                "/w/target/aerie/bench/domu.dtb".into(),
            )),
            bundle: PackedGuest {
                bundle: "/w/target/aerie/bench/bench.cpio".into(),
                size: 30 << 10,
            },
            image: "/w/target/aerie/aerie.bin".into(),
            snapshots: "/w/target/aerie/bench/snapshots.img".into(),
        };
        let bare = args(&micro(&guest, System::None));
        assert!(bare.starts_with(
            "qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a72 -smp 2 -m 64M"
        ));
        assert!(
            bare.contains("-kernel target/aarch64-unknown-none-softfloat/release/bench -no-reboot")
        );
        assert!(bare.ends_with(" -icount shift=0,sleep=off"));
        let aerie = args(&micro(&guest, System::Aerie));
        assert!(
            aerie
                .contains("-append 'aerie.guest.mem=64M aerie.guest.smp=2 aerie.guest.testdev=on'"),
            "{aerie}"
        );
        assert!(aerie.ends_with(" -icount shift=0,sleep=off"));
        let xen = args(&micro(&guest, System::Xen));
        assert!(xen.starts_with(
            "qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 2 \
             -m 512M"
        ), "{xen}");
        assert!(
            xen.contains(
                "-kernel target/aerie/xen/xen -dtb target/aerie/bench/domu.dtb -device \
             loader,file=target/aerie/test-guests/bench.bin,addr=0x50000000,force-raw=on \
             -no-reboot -icount shift=0,sleep=off"
            ),
            "{xen}"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(System::None.label(), "no hypervisor");
        assert_eq!(System::Xen.short(), "Xen");
    }
}
