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
//!
//! The micro-benchmark guest runs under Xen as a *dom0less domU* instead (Xen's
//! `docs/misc/arm/device-tree/booting.txt`, "Dom0less"): a domU's RAM starts at
//! 0x4000_0000 like Aerie's guests' (dom0's is mapped 1:1 wherever Xen's heap has
//! room, and the test guests run only at their link address). The domain is
//! described in the device tree's `/chosen` (a `xen,domain` node with a
//! `multiboot,kernel` module), so xtask dumps QEMU's tree, adds the node with `dtc`
//! and hands the result to QEMU with `-dtb`; QEMU loads the guest's Image where the
//! module says.

use std::path::{Path, PathBuf};
use std::process::Command;

use aerie_host::Qemu;
use aerie_host::qemu::escape;
use xtask::debian::Apt;
use xtask::error::{Context, Error, Result};
use xtask::paths::Layout;
use xtask::process;

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

/// Adds the two `-device guest-loader` options for dom0's kernel and initrd.
pub fn with_dom0(qemu: Qemu, kernel: &Path, initrd: &Path, dom0_cmdline: &str) -> Qemu {
    qemu.device(&format!(
        "guest-loader,addr={KERNEL_ADDRESS:#x},kernel={},bootargs={}",
        escape(&kernel.display().to_string()),
        escape(dom0_cmdline)
    ))
    .device(&format!(
        "guest-loader,addr={INITRD_ADDRESS:#x},initrd={}",
        escape(&initrd.display().to_string())
    ))
}

/// Where QEMU loads the domU's kernel: above the device tree QEMU places after Xen
/// (at 0x4800_0000) and inside a 512 MiB machine.
pub const DOMU_MODULE_ADDRESS: u64 = 0x5000_0000;
/// The domU's name in the device tree.
const DOMU_NODE: &str = "domU1";

/// Xen's own command line for the dom0less run (`xen,xen-bootargs`): its console on
/// the UART, no reboot on a crash.
pub const DOMU_XEN_CMDLINE: &str = "console=dtuart noreboot";

/// Installs the device-tree compiler with APT when `dtc` is missing and xtask runs
/// as root; otherwise says what to install.
pub fn ensure_dtc() -> Result<()> {
    if process::find_on_path("dtc").is_some() {
        return Ok(());
    }
    if process::is_root() && process::find_on_path("apt-get").is_some() {
        eprintln!("bench: apt-get install device-tree-compiler");
        process::output(Command::new("apt-get").args([
            "-q",
            "-y",
            "install",
            "device-tree-compiler",
        ]))?;
        return Ok(());
    }
    Err(Error::new(
        "`dtc` is not on PATH: install the device-tree compiler (Debian: apt-get install \
         device-tree-compiler)",
    ))
}

/// `dts` (a device tree source as `dtc -O dts` writes it) with a dom0less domU in
/// `/chosen`: `vcpus` vCPUs, `memory_mib` of RAM, an emulated SBSA UART (`vpl011`),
/// its kernel the module of `module_size` bytes at [`DOMU_MODULE_ADDRESS`], and
/// Xen's command line. `None` if the source has no `/chosen` node.
pub fn add_domu(dts: &str, module_size: u64, memory_mib: u64, vcpus: u32) -> Option<String> {
    let open = "\tchosen {\n";
    let start = dts.find(open)?;
    let end = start + dts[start..].find("\n\t};")? + 1;
    // Properties first (dtc wants them before subnodes), then the domain.
    let properties = format!(
        "\t\t#address-cells = <0x02>;\n\t\t#size-cells = <0x02>;\n\
         \t\txen,xen-bootargs = \"{DOMU_XEN_CMDLINE}\";\n"
    );
    let domain = format!(
        "\t\t{DOMU_NODE} {{\n\
         \t\t\tcompatible = \"xen,domain\";\n\
         \t\t\t#address-cells = <0x01>;\n\
         \t\t\t#size-cells = <0x01>;\n\
         \t\t\tmemory = <0x00 {memory_kib:#x}>;\n\
         \t\t\tcpus = <{vcpus:#x}>;\n\
         \t\t\tvpl011;\n\
         \t\t\tmodule@{DOMU_MODULE_ADDRESS:x} {{\n\
         \t\t\t\tcompatible = \"multiboot,kernel\", \"multiboot,module\";\n\
         \t\t\t\treg = <{DOMU_MODULE_ADDRESS:#x} {module_size:#x}>;\n\
         \t\t\t}};\n\
         \t\t}};\n",
        memory_kib = memory_mib * 1024
    );
    let mut out = String::with_capacity(dts.len() + properties.len() + domain.len());
    out.push_str(&dts[..start + open.len()]);
    out.push_str(&properties);
    out.push_str(&dts[start + open.len()..end]);
    out.push_str(&domain);
    out.push_str(&dts[end..]);
    Some(out)
}

/// Writes `dir/domu.dtb`: QEMU's device tree for the machine `machine` with the domU
/// of [`add_domu`].
pub fn domu_dtb(
    machine: &Qemu,
    module_size: u64,
    memory_mib: u64,
    vcpus: u32,
    dir: &Path,
) -> Result<PathBuf> {
    ensure_dtc()?;
    let qemus = dir.join("virt.dtb");
    let mut dump = machine.clone().dump_dtb(&qemus).command();
    // QEMU writes the tree and exits at once; a deadline all the same.
    process::output_within(&mut dump, std::time::Duration::from_secs(60))?;
    let dts = process::output(
        Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", "dts"])
            .arg(&qemus),
    )?;
    let with_domu = add_domu(&dts, module_size, memory_mib, vcpus).ok_or_else(|| {
        Error::new(format!(
            "QEMU's device tree {} has no /chosen",
            qemus.display()
        ))
    })?;
    let source = dir.join("domu.dts");
    std::fs::write(&source, with_domu).context(|| format!("cannot write {}", source.display()))?;
    let dtb = dir.join("domu.dtb");
    process::output(
        Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtb)
            .arg(&source),
    )?;
    Ok(dtb)
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
    fn a_dom0less_domain_is_added_to_chosen() {
        let dts = "/dts-v1/;\n\n/ {\n\tchosen {\n\t\tstdout-path = \"/pl011@9000000\";\n\
                   \t\tkaslr-seed = <0x01 0x02>;\n\t};\n\n\tpsci {\n\t};\n};\n";
        let out = add_domu(dts, 0x7ba8, 64, 2).unwrap();
        let expected = "/dts-v1/;\n\n/ {\n\tchosen {\n\
            \t\t#address-cells = <0x02>;\n\t\t#size-cells = <0x02>;\n\
            \t\txen,xen-bootargs = \"console=dtuart noreboot\";\n\
            \t\tstdout-path = \"/pl011@9000000\";\n\t\tkaslr-seed = <0x01 0x02>;\n\
            \t\tdomU1 {\n\
            \t\t\tcompatible = \"xen,domain\";\n\
            \t\t\t#address-cells = <0x01>;\n\
            \t\t\t#size-cells = <0x01>;\n\
            \t\t\tmemory = <0x00 0x10000>;\n\
            \t\t\tcpus = <0x2>;\n\
            \t\t\tvpl011;\n\
            \t\t\tmodule@50000000 {\n\
            \t\t\t\tcompatible = \"multiboot,kernel\", \"multiboot,module\";\n\
            \t\t\t\treg = <0x50000000 0x7ba8>;\n\
            \t\t\t};\n\
            \t\t};\n\
            \t};\n\n\tpsci {\n\t};\n};\n";
        assert_eq!(out, expected);
        assert_eq!(add_domu("/ {\n};\n", 1, 1, 1), None);
    }

    #[test]
    fn guest_loader_devices() {
        let qemu = with_dom0(
            Qemu::virt(),
            Path::new("/g/vmlinuz"),
            Path::new("/g,x/initramfs.cpio"),
            "console=hvc0 a=1,2",
        );
        assert!(qemu.to_args().ends_with(&[
            "-device".to_string(),
            "guest-loader,addr=0x49000000,kernel=/g/vmlinuz,bootargs=console=hvc0 a=1,,2".into(),
            "-device".into(),
            "guest-loader,addr=0x50000000,initrd=/g,,x/initramfs.cpio".into(),
        ]));
    }
}
