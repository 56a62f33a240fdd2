//! Firmware for `cargo xtask run --bios`: a file of the user's, or Debian's builds
//! of U-Boot and EDK2 for QEMU `virt`, fetched once with APT (like the default
//! guest, [`crate::guest_material`]) and cached in `target/aerie/firmware/`:
//!
//! | `--bios` | package | file |
//! |---|---|---|
//! | `u-boot` | `u-boot-qemu` | `usr/lib/u-boot/qemu_arm64/u-boot.bin` |
//! | `edk2` | `qemu-efi-aarch64` | `usr/share/qemu-efi-aarch64/QEMU_EFI.fd` |
//!
//! Anything else names a file (write `./u-boot` for a file called so). The
//! firmware's variable store (flash bank 1) is a raw image, by default
//! `target/aerie/flash-vars-NAME.img`, created empty (zero-filled, as QEMU's `-bios`
//! leaves bank 1) at [`VARS_SIZE`].

use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::debian::Apt;
use crate::error::{Context, Error, Result};
use crate::paths::Layout;

/// A firmware build from a Debian package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebianFirmware {
    /// Its `--bios` name.
    pub name: &'static str,
    /// The package (architecture `all`).
    pub package: &'static str,
    /// The image inside the package.
    pub path: &'static str,
}

/// Debian's U-Boot for QEMU's arm64 `virt`.
pub const UBOOT: DebianFirmware = DebianFirmware {
    name: "u-boot",
    package: "u-boot-qemu",
    path: "usr/lib/u-boot/qemu_arm64/u-boot.bin",
};

/// Debian's EDK2 (UEFI) for QEMU's arm64 `virt`.
pub const EDK2: DebianFirmware = DebianFirmware {
    name: "edk2",
    package: "qemu-efi-aarch64",
    path: "usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
};

/// The size of a new variable store image: one flash bank.
pub const VARS_SIZE: u64 = 64 << 20;

/// The Debian build `--bios value` names, if it names one.
pub fn debian_build(value: &Path) -> Option<DebianFirmware> {
    [UBOOT, EDK2]
        .into_iter()
        .find(|firmware| value.as_os_str() == firmware.name)
}

/// `target/aerie/firmware`.
pub fn firmware_dir(layout: &Layout) -> PathBuf {
    layout.aerie_dir().join("firmware")
}

/// The firmware file `--bios value` stands for, fetching Debian's build if needed.
pub fn resolve(layout: &Layout, value: &Path) -> Result<PathBuf> {
    match debian_build(value) {
        Some(firmware) => ensure(layout, firmware),
        None if value.is_file() => Ok(value.to_path_buf()),
        None => Err(Error::new(format!(
            "--bios {}: no such file (u-boot and edk2 name Debian's builds)",
            value.display()
        ))),
    }
}

/// The cached image of `firmware`, downloaded and unpacked once.
pub fn ensure(layout: &Layout, firmware: DebianFirmware) -> Result<PathBuf> {
    let dir = firmware_dir(layout);
    let file_name = Path::new(firmware.path)
        .file_name()
        .expect("package paths name a file");
    let cached = dir.join(file_name);
    if cached.is_file() {
        return Ok(cached);
    }
    fetch(layout, firmware, &cached).map_err(|cause| advice(firmware, &cached, &cause))?;
    Ok(cached)
}

/// What to do when `firmware` could not be fetched to `cached`.
fn advice(firmware: DebianFirmware, cached: &Path, cause: &Error) -> Error {
    Error::new(format!(
        "cannot prepare Debian's {name} firmware (package {package}, fetched once with APT \
         into {dir}): {cause}\n\
         Either install it (as root: apt-get install {package}) and copy /{path} to \
         {cached}, or let xtask fetch it (as root, once: apt-get update), or pass your \
         own build with --bios FILE",
        name = firmware.name,
        package = firmware.package,
        path = firmware.path,
        dir = cached.parent().unwrap_or(cached).display(),
        cached = cached.display(),
    ))
}

/// Downloads `firmware`'s package into `target/aerie/debs` and copies its image to
/// `cached`.
fn fetch(layout: &Layout, firmware: DebianFirmware, cached: &Path) -> Result<()> {
    let mut apt = Apt::new("firmware")?;
    let package = apt.fetch_all(&layout.debs_dir(), firmware.package)?;
    let image = package.root.join(firmware.path);
    let copied = atomic_file::copy_if_changed(&image, cached);
    let _ = std::fs::remove_dir_all(&package.root);
    copied.map(|_| ()).map_err(|e| {
        Error::new(format!(
            "{} has no {}: {e}",
            package.deb_name, firmware.path
        ))
    })
}

/// The default variable store of the firmware at `bios`.
pub fn default_vars(layout: &Layout, bios: &Path) -> PathBuf {
    let name = match debian_build(bios) {
        Some(firmware) => firmware.name.to_string(),
        None => bios
            .file_stem()
            .map_or_else(|| "bios".into(), |stem| stem.to_string_lossy().into_owned()),
    };
    layout.aerie_dir().join(format!("flash-vars-{name}.img"))
}

/// Creates the variable store image at `path` ([`VARS_SIZE`], zero-filled, sparse)
/// unless it exists.
pub fn ensure_vars(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = std::fs::File::create(path)
        .context(|| format!("cannot create the flash variable store {}", path.display()))?;
    file.set_len(VARS_SIZE)
        .context(|| format!("cannot size the flash variable store {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pick_debian_builds_and_files_stay_files() {
        assert_eq!(debian_build(Path::new("u-boot")), Some(UBOOT));
        assert_eq!(debian_build(Path::new("edk2")), Some(EDK2));
        assert_eq!(debian_build(Path::new("./u-boot")), None);
        assert_eq!(debian_build(Path::new("/x/QEMU_EFI.fd")), None);
        let layout = Layout::discover();
        let missing = resolve(&layout, Path::new("/nonexistent/bios.bin")).unwrap_err();
        assert!(missing.to_string().contains("no such file"), "{missing}");
    }

    #[test]
    fn a_failed_fetch_says_what_to_install() {
        let cached = Path::new("/t/aerie/firmware/u-boot.bin");
        let message = advice(UBOOT, cached, &Error::new("apt-get failed")).to_string();
        for needed in [
            "apt-get failed",
            "apt-get install u-boot-qemu",
            "/usr/lib/u-boot/qemu_arm64/u-boot.bin to /t/aerie/firmware/u-boot.bin",
            "--bios FILE",
        ] {
            assert!(message.contains(needed), "{needed:?} not in {message}");
        }
    }

    #[test]
    fn variable_stores_are_named_after_the_firmware() {
        let layout = Layout::discover();
        let vars = |bios: &str| default_vars(&layout, Path::new(bios));
        assert!(vars("u-boot").ends_with("flash-vars-u-boot.img"));
        assert!(vars("/a/QEMU_EFI.fd").ends_with("flash-vars-QEMU_EFI.img"));
    }

    #[test]
    fn a_new_store_is_one_empty_bank() {
        let path = std::env::temp_dir()
            .join(format!("xtask-firmware-{}", std::process::id()))
            .join("vars.img");
        ensure_vars(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), VARS_SIZE);
        std::fs::write(&path, b"kept").unwrap();
        ensure_vars(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
