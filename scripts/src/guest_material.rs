//! The guest `cargo xtask run` boots: the user's (`--kernel`, `--initrd`,
//! `--append`), or by default Debian's arm64 kernel with a small busybox initramfs.
//!
//! The default guest is fetched once and cached in `target/aerie/guest/`:
//!
//! | file | from |
//! |---|---|
//! | `vmlinuz` | `boot/vmlinuz-*` of the package `linux-image-arm64:arm64` depends on |
//! | `busybox` | `bin/busybox` of `busybox-static:arm64` |
//! | `initramfs.cpio` | built from `busybox` by [`crate::initramfs`] on every run (it is cheap, and a changed `/init` takes effect at once) |
//! | `SOURCES` | the names of the two `.deb` files |
//!
//! The packages come through APT ([`crate::debian::Apt`]) into `target/aerie/debs/`
//! (only the `.deb` files stay there).
//! Where that is impossible, the error says what to do instead.

use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::cli::RunOptions;
use crate::debian::{Apt, Package};
use crate::error::{Context, Error, Result};
use crate::initramfs;
use crate::paths::Layout;

/// The package of the statically linked busybox.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Where a busybox package keeps the binary: `bin/` before Debian's merged `/usr`,
/// `usr/bin/` after.
const BUSYBOX_PATHS: [&str; 2] = ["bin/busybox", "usr/bin/busybox"];

/// The default guest's kernel command line: the console on the PL011 that QEMU
/// `virt` and Aerie's guests have at 0x0900_0000, an early console there too, and
/// `/init` from the initramfs.
pub const DEFAULT_CMDLINE: &str = "console=ttyAMA0 earlycon=pl011,0x09000000 rdinit=/init";

/// What `--exec` adds to the default command line: only warnings and errors on the
/// console (the boot is faster and the output cleaner), and a panic resets at once
/// (which ends the run) instead of hanging until the timeout.
pub const EXEC_CMDLINE: &str = "quiet panic=-1";

/// The guest to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFiles {
    /// The kernel (an arm64 Image, gzip'd or not).
    pub kernel: PathBuf,
    /// The initrd, if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line, if any.
    pub cmdline: Option<String>,
    /// Whether this is the default guest, whose `/init` prints
    /// [`initramfs::READY_MARKER`].
    pub is_default: bool,
}

/// The guest `options` ask for: none with `--no-guest`, the user's with `--kernel`,
/// else the default guest (fetched and built as needed).
pub fn choose(layout: &Layout, options: &RunOptions) -> Result<Option<GuestFiles>> {
    if options.no_guest {
        return Ok(None);
    }
    if let Some(kernel) = &options.kernel {
        return Ok(Some(GuestFiles {
            kernel: kernel.clone(),
            initrd: options.initrd.clone(),
            cmdline: options.append.clone(),
            is_default: false,
        }));
    }
    let material = ensure(&guest_dir(layout)).map_err(|e| advice(layout, &e))?;
    Ok(Some(GuestFiles {
        kernel: material.kernel,
        initrd: Some(material.initramfs),
        cmdline: Some(default_cmdline(
            options.exec.is_some(),
            options.append.as_deref(),
        )),
        is_default: true,
    }))
}

/// The default guest's command line: [`DEFAULT_CMDLINE`], then [`EXEC_CMDLINE`] for
/// `--exec`, then the user's `--append`.
pub fn default_cmdline(exec: bool, append: Option<&str>) -> String {
    let mut words = vec![DEFAULT_CMDLINE];
    if exec {
        words.push(EXEC_CMDLINE);
    }
    words.extend(append.map(str::trim).filter(|extra| !extra.is_empty()));
    words.join(" ")
}

/// `target/aerie/guest`.
pub fn guest_dir(layout: &Layout) -> PathBuf {
    layout.aerie_dir().join("guest")
}

/// The default guest's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// Debian's kernel.
    pub kernel: PathBuf,
    /// The busybox initramfs.
    pub initramfs: PathBuf,
}

/// Makes sure `dir` holds the default guest: fetches the kernel and busybox unless
/// they are there, then writes the initramfs if it changed.
pub fn ensure(dir: &Path) -> Result<Material> {
    let kernel = dir.join("vmlinuz");
    let busybox = dir.join("busybox");
    let modules = dir.join(MODULES_DIR);
    if !modules.is_dir() {
        // The modules come from the kernel's package (an older cache has none):
        // fetch the kernel again with them.
        let _ = std::fs::remove_file(&kernel);
    }
    if !kernel.is_file() || !busybox.is_file() {
        fetch(dir, &kernel, &busybox)?;
    }
    let binary =
        std::fs::read(&busybox).context(|| format!("cannot read {}", busybox.display()))?;
    let mut module_files = Vec::new();
    for name in initramfs::MODULES {
        let path = modules.join(format!("{name}.ko"));
        let bytes = std::fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
        module_files.push((name, bytes));
    }
    let archive = initramfs::build(&binary, &module_files)?;
    let initramfs = dir.join("initramfs.cpio");
    atomic_file::write_if_changed(&initramfs, &archive)?;
    Ok(Material { kernel, initramfs })
}

/// Downloads the packages and copies the kernel and busybox into place.
fn fetch(dir: &Path, kernel: &Path, busybox: &Path) -> Result<()> {
    let debs = dir
        .parent()
        .map_or_else(|| dir.join("debs"), |aerie| aerie.join("debs"));
    let mut apt = Apt::new("guest")?;
    let mut sources = Vec::new();
    if !kernel.is_file() {
        let name = apt.kernel_package()?;
        let package = apt.fetch(&debs, &name)?;
        copy_modules(&package, &dir.join(MODULES_DIR))?;
        atomic_file::copy_if_changed(&find_vmlinuz(&package)?, kernel)?;
        forget_unpacked(&package);
        sources.push(package.deb_name);
    }
    if !busybox.is_file() {
        let package = apt.fetch(&debs, BUSYBOX_PACKAGE)?;
        atomic_file::copy_if_changed(&find_busybox(&package)?, busybox)?;
        forget_unpacked(&package);
        sources.push(package.deb_name);
    }
    let list = dir.join("SOURCES");
    let mut text = std::fs::read_to_string(&list).unwrap_or_default();
    for deb in sources {
        if !text.lines().any(|line| line == deb) {
            text.push_str(&deb);
            text.push('\n');
        }
    }
    atomic_file::write_if_changed(&list, text.as_bytes())?;
    eprintln!("guest: the default guest is in {}", dir.display());
    Ok(())
}

/// Where the kernel modules the initramfs loads are kept, under the guest directory.
const MODULES_DIR: &str = "modules";

/// Copies the modules the initramfs loads (`initramfs::MODULES`) out of an unpacked
/// kernel package: Debian builds the virtio drivers as modules.
fn copy_modules(package: &Package, to: &Path) -> Result<()> {
    let base = package.root.join("lib/modules");
    let version = std::fs::read_dir(&base)
        .context(|| format!("{} has no lib/modules", package.deb_name))?
        .flatten()
        .map(|entry| entry.path())
        .max()
        .ok_or_else(|| Error::new(format!("{} has no lib/modules/*", package.deb_name)))?;
    std::fs::create_dir_all(to).context(|| format!("cannot create {}", to.display()))?;
    for name in initramfs::MODULES {
        let file = format!("{name}.ko");
        let found = walk_for(&version.join("kernel"), &file)
            .ok_or_else(|| Error::new(format!("{} has no {file}", package.deb_name)))?;
        atomic_file::copy_if_changed(&found, &to.join(&file))?;
    }
    Ok(())
}

/// The first file called `name` below `dir`.
fn walk_for(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = walk_for(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Removes a package's unpacked tree once the one file needed is copied (the kernel
/// package unpacks to some 350 MiB of modules); the `.deb` stays.
fn forget_unpacked(package: &Package) {
    let _ = std::fs::remove_dir_all(&package.root);
}

/// `boot/vmlinuz-*` of an unpacked kernel package (the newest, should there be
/// several).
fn find_vmlinuz(package: &Package) -> Result<PathBuf> {
    let boot = package.root.join("boot");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&boot)
        .context(|| format!("cannot list {}", boot.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| Error::new(format!("{} has no boot/vmlinuz-*", package.deb_name)))
}

/// The busybox binary of an unpacked busybox package.
fn find_busybox(package: &Package) -> Result<PathBuf> {
    BUSYBOX_PATHS
        .iter()
        .map(|path| package.root.join(path))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            Error::new(format!(
                "{} has no {}",
                package.deb_name,
                BUSYBOX_PATHS.join(" or ")
            ))
        })
}

/// Explains how to get a guest when fetching the default one failed.
fn advice(layout: &Layout, cause: &Error) -> Error {
    let dir = guest_dir(layout);
    Error::new(format!(
        "cannot prepare the default guest (Debian's arm64 kernel and a busybox initramfs, \
         fetched once with APT into {dir}): {cause}\n\
         Either let xtask fetch it: on Debian or Ubuntu, as root, once:\n\
         \x20 dpkg --add-architecture arm64 && apt-get update\n\
         (xtask then downloads the packages itself, as any user), or put an arm64 kernel \
         at {dir}/vmlinuz and a static arm64 busybox at {dir}/busybox, or boot your own \
         guest:\n\
         \x20 cargo xtask run --kernel Image --initrd initramfs.cpio --append 'console=ttyAMA0'",
        dir = dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "xtask-guest-material-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn default_command_lines() {
        assert_eq!(
            default_cmdline(false, None),
            "console=ttyAMA0 earlycon=pl011,0x09000000 rdinit=/init"
        );
        assert_eq!(
            default_cmdline(true, Some(" loglevel=8 ")),
            "console=ttyAMA0 earlycon=pl011,0x09000000 rdinit=/init quiet panic=-1 loglevel=8"
        );
        assert_eq!(default_cmdline(false, Some("")), DEFAULT_CMDLINE);
    }

    #[test]
    fn the_users_guest_is_taken_as_given() {
        let layout = Layout::new("/w".into(), None);
        let options = RunOptions {
            kernel: Some("/k/Image".into()),
            append: Some("console=ttyAMA0".into()),
            exec: Some("true".into()),
            ..RunOptions::default()
        };
        assert_eq!(
            choose(&layout, &options).unwrap(),
            Some(GuestFiles {
                kernel: "/k/Image".into(),
                initrd: None,
                cmdline: Some("console=ttyAMA0".into()),
                is_default: false,
            })
        );
        let alone = RunOptions {
            no_guest: true,
            ..RunOptions::default()
        };
        assert_eq!(choose(&layout, &alone).unwrap(), None);
    }

    #[test]
    fn a_filled_cache_is_used_without_apt_and_the_initramfs_follows_busybox() {
        let dir = temp_dir("cache");
        std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
        std::fs::write(dir.join("busybox"), b"busybox one").unwrap();
        std::fs::create_dir_all(dir.join(MODULES_DIR)).unwrap();
        let modules: Vec<(&str, Vec<u8>)> = initramfs::MODULES
            .iter()
            .map(|name| (*name, name.as_bytes().to_vec()))
            .collect();
        for (name, bytes) in &modules {
            std::fs::write(dir.join(MODULES_DIR).join(format!("{name}.ko")), bytes).unwrap();
        }
        let material = ensure(&dir).unwrap();
        assert_eq!(material.kernel, dir.join("vmlinuz"));
        let first = std::fs::read(&material.initramfs).unwrap();
        assert_eq!(first, initramfs::build(b"busybox one", &modules).unwrap());
        std::fs::write(dir.join("busybox"), b"busybox two").unwrap();
        let second = std::fs::read(ensure(&dir).unwrap().initramfs).unwrap();
        assert_eq!(second, initramfs::build(b"busybox two", &modules).unwrap());
        // No temporary files are left behind.
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["busybox", "initramfs.cpio", "modules", "vmlinuz"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_found_in_unpacked_packages() {
        let root = temp_dir("debs");
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("boot/vmlinuz-6.1.0-9-arm64"), b"k").unwrap();
        std::fs::write(root.join("boot/config-6.1.0-9-arm64"), b"c").unwrap();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/busybox"), b"b").unwrap();
        let package = Package {
            deb_name: "x.deb".into(),
            root: root.clone(),
        };
        assert_eq!(
            find_vmlinuz(&package).unwrap(),
            root.join("boot/vmlinuz-6.1.0-9-arm64")
        );
        assert_eq!(
            find_busybox(&package).unwrap(),
            root.join("usr/bin/busybox")
        );
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/busybox"), b"b").unwrap();
        assert_eq!(find_busybox(&package).unwrap(), root.join("bin/busybox"));
        let empty = Package {
            deb_name: "empty.deb".into(),
            root: root.join("nothing"),
        };
        assert!(
            find_busybox(&empty)
                .unwrap_err()
                .to_string()
                .contains("empty.deb has no")
        );
        assert!(find_vmlinuz(&empty).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_advice_names_every_way_out() {
        let layout = Layout::new("/w".into(), None);
        let text = advice(&layout, &Error::new("`apt-get` is not on PATH")).to_string();
        assert!(text.contains("/w/target/aerie/guest"), "{text}");
        assert!(text.contains("`apt-get` is not on PATH"));
        assert!(text.contains("dpkg --add-architecture arm64 && apt-get update"));
        assert!(text.contains("/w/target/aerie/guest/vmlinuz"));
        assert!(text.contains("cargo xtask run --kernel Image --initrd"));
    }
}
