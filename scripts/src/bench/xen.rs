//! Xen 4.17, the peer: Debian's `xen-hypervisor-4.17-arm64` fetched once with APT
//! (like the default guest) into `target/aerie/xen/`, and the QEMU command line that
//! boots it with the default guest's kernel and initramfs as dom0.
//!
//! QEMU loads Xen with `-kernel` (Xen's arm64 binary has an Image header) on the
//! same `virt` machine Aerie runs on (`virtualization=on`), and the dom0 kernel and
//! initrd with two `-device guest-loader` devices, which describe them under
//! `/chosen` as Xen's multiboot modules (QEMU's `docs/system/guest-loader.rst`, Xen's
//! `docs/misc/arm/device-tree/booting.txt`). Xen keeps the PL011 for itself, so dom0's
//! console is Xen's (`hvc0`), and Xen passes the serial input on to dom0.

use std::path::{Path, PathBuf};

use crate::debian::Apt;
use crate::error::{Context, Error, Result};
use crate::paths::Layout;

/// Debian's package.
pub const PACKAGE: &str = "xen-hypervisor-4.17-arm64";
/// The hypervisor binary inside it.
const BINARY: &str = "boot/xen-4.17-arm64";
/// Where QEMU's guest-loader places the dom0 kernel and initrd: clear of Xen's own
/// load address (0x4020_0000) and of each other for a kernel under 112 MiB.
const KERNEL_ADDRESS: u64 = 0x4900_0000;
const INITRD_ADDRESS: u64 = 0x5000_0000;

/// Xen, ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xen {
    /// The hypervisor binary.
    pub binary: PathBuf,
    /// The `.deb` it came from.
    pub deb: String,
}

/// Fetches Xen unless `target/aerie/xen/` holds it.
pub fn ensure(layout: &Layout) -> Result<Xen> {
    let dir = layout.aerie_dir().join("xen");
    let binary = dir.join("xen");
    let sources = dir.join("SOURCES");
    if let (true, Ok(deb)) = (binary.is_file(), std::fs::read_to_string(&sources)) {
        return Ok(Xen {
            binary,
            deb: deb.trim().to_string(),
        });
    }
    let mut apt = Apt::new("bench")?;
    let package = apt.fetch(&layout.debs_dir(), PACKAGE)?;
    std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    let found = package.root.join(BINARY);
    if !found.is_file() {
        return Err(Error::new(format!("{} has no {BINARY}", package.deb_name)));
    }
    std::fs::copy(&found, &binary).context(|| format!("cannot copy {}", found.display()))?;
    std::fs::write(&sources, format!("{}\n", package.deb_name))
        .context(|| format!("cannot write {}", sources.display()))?;
    let _ = std::fs::remove_dir_all(&package.root);
    Ok(Xen {
        binary,
        deb: package.deb_name,
    })
}

/// Xen's own command line: dom0 gets `dom0_mib` of RAM and `vcpus` vCPUs, Xen's
/// console is the device tree's UART, and a crash stops instead of rebooting.
pub fn command_line(dom0_mib: u64, vcpus: u32) -> String {
    format!("dom0_mem={dom0_mib}M,max:{dom0_mib}M dom0_max_vcpus={vcpus} console=dtuart noreboot")
}

/// dom0's kernel command line from the default guest's: the console is Xen's
/// (`hvc0`, early console `xen`) instead of the PL011, which Xen keeps.
pub fn dom0_cmdline(guest_cmdline: &str) -> String {
    guest_cmdline
        .split_whitespace()
        .map(|word| {
            if word.starts_with("console=") {
                "console=hvc0"
            } else if word.starts_with("earlycon") {
                "earlycon=xen"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The two `-device guest-loader` options for dom0's kernel and initrd.
pub fn loader_args(kernel: &Path, initrd: &Path, dom0_cmdline: &str) -> Vec<String> {
    vec![
        "-device".into(),
        format!(
            "guest-loader,addr={KERNEL_ADDRESS:#x},kernel={},bootargs={}",
            escape(&kernel.display().to_string()),
            escape(dom0_cmdline)
        ),
        "-device".into(),
        format!(
            "guest-loader,addr={INITRD_ADDRESS:#x},initrd={}",
            escape(&initrd.display().to_string())
        ),
    ]
}

/// Doubles commas, QEMU's escape inside an option value.
fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xens_command_line() {
        assert_eq!(
            command_line(1024, 2),
            "dom0_mem=1024M,max:1024M dom0_max_vcpus=2 console=dtuart noreboot"
        );
    }

    #[test]
    fn dom0_uses_xens_console() {
        assert_eq!(
            dom0_cmdline("console=ttyAMA0 earlycon=pl011,0x09000000 rdinit=/init quiet panic=-1"),
            "console=hvc0 earlycon=xen rdinit=/init quiet panic=-1"
        );
        assert_eq!(dom0_cmdline("quiet"), "quiet");
    }

    #[test]
    fn guest_loader_devices() {
        assert_eq!(
            loader_args(
                Path::new("/g/vmlinuz"),
                Path::new("/g,x/initramfs.cpio"),
                "console=hvc0 a=1,2"
            ),
            [
                "-device",
                "guest-loader,addr=0x49000000,kernel=/g/vmlinuz,bootargs=console=hvc0 a=1,,2",
                "-device",
                "guest-loader,addr=0x50000000,initrd=/g,,x/initramfs.cpio",
            ]
        );
    }
}
