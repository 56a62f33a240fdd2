//! Debian's arm64 kernel package, the source of the Raspberry Pi 4 device tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error, Result};
use crate::process;

/// The metapackage that depends on the current arm64 kernel.
const METAPACKAGE: &str = "linux-image-arm64:arm64";

/// The Raspberry Pi 4 Model B device tree shipped in the kernel package.
pub const RPI4_DTB: &str = "bcm2711-rpi-4-b.dtb";

/// A downloaded, unpacked kernel package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPackage {
    /// The `.deb` file name (package, version, architecture).
    pub deb_name: String,
    /// Where it was unpacked.
    pub root: PathBuf,
}

/// The kernel package `linux-image-arm64` depends on, from `apt-cache depends` output
/// (`  Depends: linux-image-6.1.0-28-arm64:arm64`).
pub fn kernel_package(depends_output: &str) -> Option<String> {
    depends_output.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        let name = name.strip_suffix(":arm64").unwrap_or(name);
        let is_kernel = name.starts_with("linux-image-") && name.ends_with("-arm64");
        is_kernel.then(|| name.to_string())
    })
}

/// Adds dpkg's arm64 architecture if needed, updates APT, downloads the current arm64
/// kernel package into `dir` and unpacks it there. Needs root.
pub fn fetch_kernel(dir: &Path) -> Result<KernelPackage> {
    if !process::is_root() {
        return Err(Error::new(
            "fetching Debian's arm64 kernel package needs root (dpkg --add-architecture, \
             apt-get update)",
        ));
    }
    let foreign = process::output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !foreign.lines().any(|arch| arch.trim() == "arm64") {
        process::output(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        println!("fixtures: added the dpkg architecture arm64");
    }
    process::output(Command::new("apt-get").args(["-q", "update"]))?;
    let depends = process::output(Command::new("apt-cache").args(["depends", METAPACKAGE]))?;
    let package = kernel_package(&depends).ok_or_else(|| {
        Error::new(format!(
            "`apt-cache depends {METAPACKAGE}` names no kernel:\n{depends}"
        ))
    })?;

    std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    remove_debs_of(dir, &package)?;
    println!("fixtures: downloading {package}:arm64");
    process::output(
        Command::new("apt-get")
            .args(["-q", "download", &format!("{package}:arm64")])
            .current_dir(dir),
    )?;
    let deb_name = debs_of(dir, &package)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(format!("apt-get download left no {package} .deb")))?;
    let root = dir.join(&package);
    if root.exists() {
        std::fs::remove_dir_all(&root).context(|| format!("cannot remove {}", root.display()))?;
    }
    process::output(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(dir.join(&deb_name))
            .arg(&root),
    )?;
    Ok(KernelPackage { deb_name, root })
}

/// The `.deb` files of `package` in `dir`.
fn debs_of(dir: &Path, package: &str) -> Result<Vec<String>> {
    let prefix = format!("{package}_");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix) && name.ends_with(".deb"))
        .collect();
    names.sort();
    Ok(names)
}

fn remove_debs_of(dir: &Path, package: &str) -> Result<()> {
    for name in debs_of(dir, package)? {
        let path = dir.join(name);
        std::fs::remove_file(&path).context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Finds `usr/lib/linux-image-*/broadcom/<name>` in an unpacked kernel package.
pub fn find_broadcom_dtb(root: &Path, name: &str) -> Result<PathBuf> {
    let lib = root.join("usr/lib");
    let entries = std::fs::read_dir(&lib).context(|| format!("cannot list {}", lib.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("linux-image-"))
        })
        .map(|dir| dir.join("broadcom").join(name))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        Error::new(format!(
            "no usr/lib/linux-image-*/broadcom/{name} in {}",
            root.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kernel_the_metapackage_depends_on() {
        let output = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-56-arm64:arm64\n";
        assert_eq!(
            kernel_package(output).as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
        let without_arch = "linux-image-arm64\n  Depends: linux-image-6.1.0-9-arm64\n";
        assert_eq!(
            kernel_package(without_arch).as_deref(),
            Some("linux-image-6.1.0-9-arm64")
        );
        let other = "linux-image-arm64:arm64\n  Depends: initramfs-tools\n  Recommends: x\n";
        assert_eq!(kernel_package(other), None);
    }

    #[test]
    fn finds_the_dtb_in_an_unpacked_package() {
        let root = std::env::temp_dir().join(format!("xtask-deb-{}", std::process::id()));
        let broadcom = root.join("usr/lib/linux-image-6.1.0-56-arm64/broadcom");
        std::fs::create_dir_all(&broadcom).unwrap();
        std::fs::write(broadcom.join(RPI4_DTB), b"dtb").unwrap();
        let found = find_broadcom_dtb(&root, RPI4_DTB);
        let missing = find_broadcom_dtb(&root, "bcm2712-rpi-5-b.dtb");
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found.unwrap(), broadcom.join(RPI4_DTB));
        assert!(missing.is_err());
    }
}
