//! Debian's arm64 packages: the kernel (the source of the Raspberry Pi 4 device tree
//! and the default guest's kernel) and whatever else [`Apt::fetch`] is asked for.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error, Result};
use crate::process;

/// The metapackage that depends on the current arm64 kernel.
const METAPACKAGE: &str = "linux-image-arm64:arm64";

/// The Raspberry Pi 4 Model B device tree shipped in the kernel package.
pub const RPI4_DTB: &str = "bcm2711-rpi-4-b.dtb";

/// A downloaded, unpacked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The `.deb` file name (package, version, architecture).
    pub deb_name: String,
    /// Where it was unpacked.
    pub root: PathBuf,
}

/// A downloaded, unpacked kernel package.
pub type KernelPackage = Package;

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
    let mut apt = Apt::new("fixtures")?;
    // Regenerating fixtures should see the newest kernel: always refresh the lists.
    apt.update()?;
    let package = apt.kernel_package()?;
    apt.fetch(dir, &package)
}

/// Downloading arm64 packages with APT: `dpkg --add-architecture arm64` when needed,
/// `apt-get update` when needed (the architecture was just added, a package is
/// unknown, or a download fails on stale lists), `apt-get download`, then
/// `dpkg-deb -x`. Progress goes to stderr, prefixed with the caller's name.
#[derive(Debug)]
pub struct Apt {
    /// Prefix of progress lines, such as `fixtures`.
    log: &'static str,
    /// Whether `apt-get update` already ran.
    updated: bool,
    /// Whether xtask runs as root (needed to add the architecture and to update).
    root: bool,
}

impl Apt {
    /// Checks that APT is there and that dpkg knows the arm64 architecture, adding it
    /// when running as root (then the package lists are updated before the first
    /// look-up).
    pub fn new(log: &'static str) -> Result<Self> {
        for tool in ["apt-get", "apt-cache", "dpkg", "dpkg-deb"] {
            if process::find_on_path(tool).is_none() {
                return Err(Error::new(format!(
                    "`{tool}` is not on PATH: fetching Debian's arm64 packages needs APT (Debian or Ubuntu)"
                )));
            }
        }
        let mut apt = Self {
            log,
            updated: false,
            root: process::is_root(),
        };
        let native = process::output(Command::new("dpkg").arg("--print-architecture"))?;
        let foreign = process::output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
        if !has_arm64(&native, &foreign) {
            apt.need_root("adding dpkg's arm64 architecture")?;
            process::output(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
            eprintln!("{log}: added the dpkg architecture arm64");
            apt.update()?;
        }
        Ok(apt)
    }

    /// Runs `apt-get update` (once).
    pub fn update(&mut self) -> Result<()> {
        if self.updated {
            return Ok(());
        }
        self.need_root("updating APT's package lists")?;
        eprintln!("{}: apt-get update", self.log);
        process::output(Command::new("apt-get").args(["-q", "update"]))?;
        self.updated = true;
        Ok(())
    }

    /// Fails unless running as root, naming the step that needs it.
    fn need_root(&self, step: &str) -> Result<()> {
        if self.root {
            Ok(())
        } else {
            Err(Error::new(format!("{step} needs root")))
        }
    }

    /// The kernel package `linux-image-arm64:arm64` depends on, such as
    /// `linux-image-6.1.0-28-arm64`; updates the package lists if they name none.
    pub fn kernel_package(&mut self) -> Result<String> {
        let ask = || process::output(Command::new("apt-cache").args(["depends", METAPACKAGE]));
        if let Some(package) = ask().ok().as_deref().and_then(kernel_package) {
            return Ok(package);
        }
        self.update()?;
        let depends = ask()?;
        kernel_package(&depends).ok_or_else(|| {
            Error::new(format!(
                "`apt-cache depends {METAPACKAGE}` names no kernel:\n{depends}"
            ))
        })
    }

    /// Downloads the arm64 `package` into `dir` (replacing an older `.deb` of it) and
    /// unpacks it into `dir/<package>`. Updates the package lists and tries again
    /// once if the download fails.
    pub fn fetch(&mut self, dir: &Path, package: &str) -> Result<Package> {
        self.fetch_for(dir, package, "arm64")
    }

    /// [`Apt::fetch`] for a package of architecture `all` (firmware images built
    /// for every machine, such as `u-boot-qemu`).
    pub fn fetch_all(&mut self, dir: &Path, package: &str) -> Result<Package> {
        self.fetch_for(dir, package, "all")
    }

    /// [`Apt::fetch`] of `package:arch`.
    fn fetch_for(&mut self, dir: &Path, package: &str, arch: &str) -> Result<Package> {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        remove_debs_of(dir, package)?;
        eprintln!("{}: downloading {package}:{arch}", self.log);
        let download = || {
            process::output(
                Command::new("apt-get")
                    .args(["-q", "download", &format!("{package}:{arch}")])
                    .current_dir(dir),
            )
        };
        if let Err(first) = download() {
            if self.updated || !self.root {
                return Err(first);
            }
            self.update()?;
            download()?;
        }
        let deb_name = debs_of(dir, package)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(format!("apt-get download left no {package} .deb")))?;
        let root = dir.join(package);
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .context(|| format!("cannot remove {}", root.display()))?;
        }
        process::output(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(dir.join(&deb_name))
                .arg(&root),
        )?;
        Ok(Package { deb_name, root })
    }
}

/// Whether dpkg installs arm64 packages, from `dpkg --print-architecture` and
/// `dpkg --print-foreign-architectures`.
fn has_arm64(native: &str, foreign: &str) -> bool {
    native.trim() == "arm64" || foreign.lines().any(|arch| arch.trim() == "arm64")
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
    fn arm64_is_native_or_foreign() {
        assert!(has_arm64("arm64\n", ""));
        assert!(has_arm64("amd64\n", "i386\narm64\n"));
        assert!(!has_arm64("amd64\n", "i386\n"));
        assert!(!has_arm64("amd64\n", ""));
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
