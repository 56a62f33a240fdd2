//! Makes the machine ready: the Rust target and a new enough QEMU. Quiet when
//! everything is present; one line per thing it installs.

use std::path::Path;
use std::process::Command;

use crate::apt;
use crate::error::{Context, Error, Result};
use crate::os_release::OsRelease;
use crate::paths::{Layout, TARGET};
use crate::process;
use crate::qemu::{self, Installed, MIN_VERSION};

/// The APT source file setup writes on Debian bookworm.
const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/aerie-bookworm-backports.sources";

/// Installs the `aarch64-unknown-none-softfloat` Rust target when rustup lacks it.
pub fn ensure_target(layout: &Layout) -> Result<()> {
    if process::find_on_path("rustup").is_none() {
        // Without rustup the toolchain is managed some other way; cargo will say if the
        // target is missing.
        return Ok(());
    }
    let installed = process::output(
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(layout.root()),
    )?;
    if installed.lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    println!("setup: installing the Rust target {TARGET}");
    process::output(
        Command::new("rustup")
            .args(["target", "add", TARGET])
            .current_dir(layout.root()),
    )?;
    Ok(())
}

/// Makes sure `qemu-system-aarch64` >= 9.0 is installed, installing it with apt when
/// running as root on Debian or Ubuntu.
pub fn ensure_qemu() -> Result<()> {
    let found = qemu::installed();
    if found.is_usable() {
        return Ok(());
    }
    if !process::is_root() || process::find_on_path("apt-get").is_none() {
        return Err(install_advice(
            &found,
            "xtask can only install it as root with apt-get",
        ));
    }
    let os = OsRelease::read();
    if os.codename == "bookworm" {
        install_from_backports(&found)?;
    } else if os.is_debian_like() {
        println!("setup: installing qemu-system-arm (found {found}, need QEMU >= {MIN_VERSION})");
        apt_get(&["update"])?;
        apt_get(&["install", "-y", "qemu-system-arm"])?;
    } else {
        return Err(install_advice(&found, "this is not Debian or Ubuntu"));
    }
    let now = qemu::installed();
    if now.is_usable() {
        Ok(())
    } else {
        Err(install_advice(
            &now,
            "the distribution's package is too old",
        ))
    }
}

fn install_from_backports(found: &Installed) -> Result<()> {
    let entries = apt::read_entries(Path::new("/etc/apt"))?;
    if !entries
        .iter()
        .any(|entry| entry.serves("bookworm-backports"))
    {
        let text = apt::backports_sources(&entries, "bookworm").ok_or_else(|| {
            install_advice(found, "no APT entry for bookworm to copy a mirror from")
        })?;
        std::fs::write(BACKPORTS_FILE, text)
            .context(|| format!("cannot write {BACKPORTS_FILE}"))?;
        println!("setup: added the APT source {BACKPORTS_FILE}");
    }
    println!(
        "setup: installing qemu-system-arm from bookworm-backports (found {found}, need QEMU >= \
         {MIN_VERSION})"
    );
    apt_get(&["update"])?;
    apt_get(&[
        "install",
        "-y",
        "-t",
        "bookworm-backports",
        "qemu-system-arm",
    ])
}

fn apt_get(args: &[&str]) -> Result<()> {
    process::output(
        Command::new("apt-get")
            .args(["-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .map(drop)
}

fn install_advice(found: &Installed, reason: &str) -> Error {
    Error::new(format!(
        "Aerie's tests need QEMU >= {MIN_VERSION} ({} with the raspi4b machine); found {found}, \
         and {reason}.\n\
         Install it as root:\n\
         \x20 Debian 12 (bookworm): enable bookworm-backports in APT, then\n\
         \x20   apt-get update && apt-get install -t bookworm-backports qemu-system-arm\n\
         \x20 newer Debian or Ubuntu: apt-get install qemu-system-arm\n\
         or put a {} >= {MIN_VERSION} on PATH.",
        qemu::QEMU,
        qemu::QEMU
    ))
}
