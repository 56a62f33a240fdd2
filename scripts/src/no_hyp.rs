//! `cargo xtask run --no-hyp`: the same guest (kernel, initrd, command line, CPUs,
//! RAM, CPU model, GIC) straight on QEMU's `virt` machine, without Aerie, to compare
//! and to answer "is it the hypervisor?".
//!
//! The machine has no EL2 (`virtualization` stays off), so the kernel starts at EL1
//! as it does under Aerie; QEMU loads it with `-kernel`, `-initrd` and `-append`.

use aerie_host::{Qemu, Serial};

use crate::cli::RunOptions;
use crate::guest_material::GuestFiles;

/// The machine booting `guest` directly with `options`' machine.
pub fn machine(options: &RunOptions, guest: &GuestFiles, serial: Serial) -> Qemu {
    let mut qemu = Qemu::virt()
        .virtualization(false)
        .gic(options.gic.version())
        .cpu(&options.cpu)
        .smp(options.smp)
        .mem_mib(options.mem_mib)
        .serial(serial)
        .kernel(&guest.kernel);
    if let Some(initrd) = &guest.initrd {
        qemu = qemu.initrd(initrd);
    }
    if let Some(cmdline) = &guest.cmdline {
        qemu = qemu.append(cmdline);
    }
    let qemu = crate::run::with_disks(qemu, options, false);
    crate::run::with_run_options(qemu, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Gic;

    fn qemu_args(options: &RunOptions, guest: &GuestFiles, serial: Serial) -> Vec<String> {
        machine(options, guest, serial).to_args()
    }

    fn guest() -> GuestFiles {
        GuestFiles {
            kernel: "/g/vmlinuz".into(),
            initrd: Some("/g/initramfs.cpio".into()),
            cmdline: Some("console=ttyAMA0 quiet".into()),
            is_default: true,
        }
    }

    #[test]
    fn the_guest_boots_on_virt_without_el2() {
        let options = RunOptions {
            no_hyp: true,
            ..RunOptions::default()
        };
        let exec = RunOptions {
            exec: Some("true".into()),
            ..options.clone()
        };
        let args = qemu_args(&exec, &guest(), Serial::Piped);
        assert_eq!(args.last().map(String::as_str), Some("-no-reboot"));
        assert_eq!(
            qemu_args(&options, &guest(), Serial::Piped),
            [
                "-M",
                "virt,gic-version=3",
                "-cpu",
                "cortex-a72",
                "-smp",
                "2",
                "-m",
                "1024M",
                "-display",
                "none",
                "-monitor",
                "none",
                "-chardev",
                "stdio,id=console,signal=off,mux=off",
                "-serial",
                "chardev:console",
                "-kernel",
                "/g/vmlinuz",
                "-initrd",
                "/g/initramfs.cpio",
                "-append",
                "console=ttyAMA0 quiet",
            ]
        );
    }

    #[test]
    fn the_machine_options_are_the_same_as_under_aerie() {
        let options = RunOptions {
            no_hyp: true,
            gdb: true,
            smp: 4,
            mem_mib: 512,
            cpu: "max".into(),
            gic: Gic::V2,
            ..RunOptions::default()
        };
        let bare = GuestFiles {
            initrd: None,
            cmdline: None,
            ..guest()
        };
        let args = qemu_args(&options, &bare, Serial::Qemu).join(" ");
        assert!(
            args.starts_with("-M virt,gic-version=2 -cpu max -smp 4 -m 512M "),
            "{args}"
        );
        assert!(args.contains("mux=on"));
        assert!(!args.contains("virtualization"));
        assert!(!args.contains("-initrd") && !args.contains("-append"));
        assert!(
            args.ends_with(" -kernel /g/vmlinuz -S -gdb tcp::1234"),
            "{args}"
        );
    }
}
