//! Debian packages as the source of the Raspberry Pi's boot files.
//!
//! - The Pi 4's GPU firmware (`start4.elf`, `fixup4.dat`) is in `raspi-firmware`, an
//!   `all` package in Debian's `non-free-firmware` component, which many machines'
//!   APT sources leave out. xtask reaches it through an APT configuration of its own
//!   ([`FirmwareApt`]): the machine's Debian mirrors with that component, its own
//!   package lists and cache under `target/aerie/`. Nothing of the machine's APT
//!   set-up changes, and it needs no root.
//! - The boards' device trees are in Debian's arm64 kernel packages
//!   (`usr/lib/linux-image-*/broadcom/`): [`newest_kernel_package`] names the newest
//!   one the machine's APT offers (backports included; only kernels from 6.11 on have
//!   the Pi 5's), fetched with [`download_arm64`].
//!
//! Downloaded `.deb` files stay in `target/aerie/debs/` ([`cached_deb`] finds them),
//! and only the wanted files are taken out of them ([`extract`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apt::{self, SourceEntry};
use crate::debian::Apt;
use crate::error::{Context, Error, Result};
use crate::os_release::OsRelease;
use crate::process;

/// Debian's package of the Raspberry Pi boot firmware.
pub const RASPI_FIRMWARE: &str = "raspi-firmware";

/// The APT component `raspi-firmware` is in (since Debian 12).
pub const FIRMWARE_COMPONENT: &str = "non-free-firmware";

/// Where `raspi-firmware` keeps the firmware files.
pub const RASPI_FIRMWARE_DIR: &str = "usr/lib/raspi-firmware";

/// The metapackage that depends on the current arm64 kernel.
const KERNEL_METAPACKAGE: &str = "linux-image-arm64:arm64";

/// The deb822 text of xtask's firmware source: one stanza per distinct enabled `deb`
/// entry of the machine that serves `release`, with its URIs and `Signed-By`, suite
/// `release` and component [`FIRMWARE_COMPONENT`]. `None` when no entry serves
/// `release`.
pub fn firmware_sources(entries: &[SourceEntry], release: &str) -> Option<String> {
    let mut stanzas: Vec<String> = Vec::new();
    for entry in entries.iter().filter(|e| e.serves(release)) {
        let mut stanza = format!(
            "Types: deb\nURIs: {}\nSuites: {release}\nComponents: {FIRMWARE_COMPONENT}\n",
            entry.uris.join(" ")
        );
        match entry.signed_by.as_deref() {
            Some(key) if key.starts_with('\n') => stanza.push_str(&format!("Signed-By:{key}\n")),
            Some(key) => stanza.push_str(&format!("Signed-By: {key}\n")),
            None => {}
        }
        if !stanzas.contains(&stanza) {
            stanzas.push(stanza);
        }
    }
    if stanzas.is_empty() {
        return None;
    }
    let header = format!(
        "# Written by `cargo xtask sdcard` (scripts/src/sdcard/debs.rs): {release} \
         {FIRMWARE_COMPONENT},\n# for the Raspberry Pi firmware. Mirrors copied from this \
         machine's {release} entries.\n"
    );
    Some(header + &stanzas.join("\n"))
}

/// xtask's own APT configuration for Debian's `non-free-firmware` component, in a
/// directory of its own (`sources.list.d/`, `lists/`, `cache/`).
#[derive(Debug)]
pub struct FirmwareApt {
    dir: PathBuf,
    updated: bool,
}

impl FirmwareApt {
    /// Writes the configuration into `dir` from the machine's APT entries for its
    /// release (`/etc/os-release`'s `VERSION_CODENAME`).
    pub fn new(dir: &Path) -> Result<Self> {
        for tool in ["apt-get", "dpkg-deb", "tar"] {
            if process::find_on_path(tool).is_none() {
                return Err(Error::new(format!(
                    "`{tool}` is not on PATH (Debian's packages need APT)"
                )));
            }
        }
        let release = OsRelease::read().codename;
        if release.is_empty() {
            return Err(Error::new(
                "/etc/os-release names no release (VERSION_CODENAME)",
            ));
        }
        let entries = apt::read_entries(Path::new("/etc/apt"))?;
        let sources = firmware_sources(&entries, &release).ok_or_else(|| {
            Error::new(format!(
                "no APT entry serves {release}, so there is no mirror to take \
                 {RASPI_FIRMWARE} from"
            ))
        })?;
        let parts = dir.join("sources.list.d");
        for sub in [
            parts.clone(),
            dir.join("lists/partial"),
            dir.join("cache/archives/partial"),
        ] {
            std::fs::create_dir_all(&sub).context(|| format!("cannot create {}", sub.display()))?;
        }
        write_if_changed(&dir.join("sources.list"), "")?;
        write_if_changed(&parts.join("firmware.sources"), &sources)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            updated: false,
        })
    }

    /// `apt-get` with this configuration instead of the machine's sources, lists and
    /// cache.
    fn apt_get(&self) -> Command {
        let option = |name: &str, path: PathBuf| format!("{name}={}", path.display());
        let mut command = Command::new("apt-get");
        command.arg("-q");
        for (name, path) in [
            ("Dir::Etc::SourceList", self.dir.join("sources.list")),
            ("Dir::Etc::SourceParts", self.dir.join("sources.list.d")),
            ("Dir::State::Lists", self.dir.join("lists")),
            ("Dir::Cache", self.dir.join("cache")),
        ] {
            command.args(["-o", &option(name, path)]);
        }
        if process::is_root() {
            // The lists live under target/, which APT's unprivileged download user
            // may not be able to write to: download as root (as `apt-get download`
            // into the current directory does anyway) instead of warning.
            command.args(["-o", "APT::Sandbox::User=root"]);
        }
        command
    }

    /// Fetches the package lists (once per run).
    fn update(&mut self) -> Result<()> {
        if !self.updated {
            eprintln!(
                "sdcard: apt-get update ({FIRMWARE_COMPONENT} only, in {})",
                self.dir.display()
            );
            process::output(self.apt_get().arg("update"))?;
            self.updated = true;
        }
        Ok(())
    }

    /// Downloads `package` (any architecture) into `into`; updates the lists first
    /// when there are none yet, or when the download fails on stale ones.
    pub fn download(&mut self, package: &str, into: &Path) -> Result<PathBuf> {
        let has_lists = std::fs::read_dir(self.dir.join("lists"))
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
            })
            .unwrap_or(false);
        if !has_lists {
            self.update()?;
        }
        std::fs::create_dir_all(into).context(|| format!("cannot create {}", into.display()))?;
        eprintln!("sdcard: downloading {package}");
        let download = |apt: &Self| {
            process::output(apt.apt_get().args(["download", package]).current_dir(into))
        };
        if let Err(first) = download(self) {
            if self.updated {
                return Err(first);
            }
            self.update()?;
            download(self)?;
        }
        cached_deb(into, package)
            .ok_or_else(|| Error::new(format!("apt-get download left no {package} .deb")))
    }
}

/// Writes `text` to `path` unless it already holds it.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).context(|| format!("cannot write {}", path.display()))
}

/// The newest `.deb` of `package` in `dir` (by file name, which carries the version),
/// if any.
pub fn cached_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    debs_named(dir, |name| {
        name.strip_prefix(package)
            .is_some_and(|rest| rest.starts_with('_'))
    })
    .pop()
}

/// The arm64 kernel packages in `dir`, newest last.
pub fn cached_kernels(dir: &Path) -> Vec<PathBuf> {
    debs_named(dir, |name| {
        name.starts_with("linux-image-") && name.ends_with("_arm64.deb")
    })
}

/// The `.deb` files in `dir` whose names pass `wanted`, sorted by name.
fn debs_named(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(".deb") && wanted(name))
        })
        .collect();
    found.sort();
    found
}

/// The versions of `linux-image-arm64` in `apt-cache madison` output
/// (`linux-image-arm64:arm64 | 6.12.95-1~bpo12+1 | http://... Packages`), as listed:
/// newest first.
pub fn madison_versions(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter_map(|line| line.split('|').nth(1))
        .map(str::trim)
        .filter(|version| !version.is_empty())
        .collect()
}

/// The newest arm64 kernel package the machine's APT offers (from any suite, such as
/// backports), e.g. `linux-image-6.12.95+deb12-arm64`. Adds dpkg's arm64
/// architecture first if needed (as root).
pub fn newest_kernel_package() -> Result<String> {
    let mut apt = Apt::new("sdcard")?;
    let madison = || {
        process::output(Command::new("apt-cache").args(["madison", KERNEL_METAPACKAGE]))
            .unwrap_or_default()
    };
    let mut listed = madison();
    if madison_versions(&listed).is_empty() {
        apt.update()?;
        listed = madison();
    }
    let newest = madison_versions(&listed)
        .first()
        .map(|version| version.to_string())
        .ok_or_else(|| Error::new(format!("APT knows no {KERNEL_METAPACKAGE}")))?;
    let depends = process::output(
        Command::new("apt-cache").args(["depends", &format!("{KERNEL_METAPACKAGE}={newest}")]),
    )?;
    crate::debian::kernel_package(&depends).ok_or_else(|| {
        Error::new(format!(
            "{KERNEL_METAPACKAGE} {newest} depends on no kernel:\n{depends}"
        ))
    })
}

/// Downloads the arm64 `package` into `into` with the machine's APT.
pub fn download_arm64(package: &str, into: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(into).context(|| format!("cannot create {}", into.display()))?;
    eprintln!("sdcard: downloading {package}:arm64");
    process::output(
        Command::new("apt-get")
            .args(["-q", "download", &format!("{package}:arm64")])
            .current_dir(into),
    )?;
    cached_deb(into, package)
        .ok_or_else(|| Error::new(format!("apt-get download left no {package} .deb")))
}

/// Takes the first file whose path in `deb` ends with `/<suffix>` out of the package
/// into `scratch` (emptied first) and returns where it landed; `None` when the
/// package has no such file.
pub fn extract(deb: &Path, suffix: &str, scratch: &Path) -> Result<Option<PathBuf>> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)
            .context(|| format!("cannot empty {}", scratch.display()))?;
    }
    std::fs::create_dir_all(scratch).context(|| format!("cannot create {}", scratch.display()))?;
    let mut dpkg = Command::new("dpkg-deb");
    dpkg.arg("--fsys-tarfile").arg(deb).stdout(Stdio::piped());
    let mut contents = dpkg
        .spawn()
        .context(|| format!("cannot start `{}`", process::display(&dpkg)))?;
    let tar_input = contents
        .stdout
        .take()
        .ok_or_else(|| Error::new("dpkg-deb gave no output pipe"))?;
    // `*` matches across `/` with --wildcards (tar's default for exclusion-less
    // patterns), so this finds the file in any directory.
    let status = Command::new("tar")
        .args(["-x", "--wildcards", "-C"])
        .arg(scratch)
        .arg(format!("*/{suffix}"))
        .stdin(tar_input)
        .stderr(Stdio::null())
        .status()
        .context(|| "cannot start tar")?;
    let listed = contents
        .wait()
        .context(|| format!("dpkg-deb on {}", deb.display()))?;
    if !listed.success() {
        return Err(Error::new(format!(
            "`dpkg-deb --fsys-tarfile {}` failed ({listed})",
            deb.display()
        )));
    }
    let name = Path::new(suffix)
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    let found = find_file(scratch, &name);
    if found.is_none() && status.success() {
        return Err(Error::new(format!(
            "tar took {suffix} out of {} but it is not in {}",
            deb.display(),
            scratch.display()
        )));
    }
    Ok(found)
}

/// The first file called `name` below `dir`.
fn find_file(dir: &Path, name: &std::ffi::OsStr) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name() == Some(name) {
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-sdcard-debs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn firmware_sources_reuse_the_release_mirrors_with_the_firmware_component() {
        let entries = apt::parse_deb822(
            "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
             Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\n\
             Components: main\n",
        );
        let text = firmware_sources(&entries, "bookworm").unwrap();
        let written = apt::parse_deb822(&text);
        assert_eq!(written.len(), 1, "{text}");
        assert_eq!(written[0].uris, ["http://m.example/debian"]);
        assert_eq!(written[0].suites, ["bookworm"]);
        assert_eq!(written[0].components, ["non-free-firmware"]);
        assert_eq!(
            written[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        assert!(text.starts_with("# Written by `cargo xtask sdcard`"));
        assert_eq!(firmware_sources(&entries, "trixie"), None);
    }

    #[test]
    fn madison_lists_versions_newest_first() {
        let output = "linux-image-arm64:arm64 | 6.12.95-1~bpo12+1 | http://m.example/debian \
                      bookworm-backports/main arm64 Packages\n\
                      linux-image-arm64:arm64 |  6.1.192-2 | http://m.example/debian-security \
                      bookworm-security/main arm64 Packages\n";
        assert_eq!(madison_versions(output), ["6.12.95-1~bpo12+1", "6.1.192-2"]);
        assert!(madison_versions("").is_empty());
    }

    #[test]
    fn cached_debs_are_found_by_package_name() {
        let dir = temp_dir("cache");
        for name in [
            "raspi-firmware_1.20220830+ds-1_all.deb",
            "raspi-firmware-extra_1_all.deb",
            "linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb",
            "linux-image-6.12.95+deb12-arm64_6.12.95-1~bpo12+1_arm64.deb",
            "busybox-static_1.35_arm64.deb",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(
            cached_deb(&dir, "raspi-firmware"),
            Some(dir.join("raspi-firmware_1.20220830+ds-1_all.deb"))
        );
        assert_eq!(cached_deb(&dir, "raspi"), None);
        assert_eq!(
            cached_kernels(&dir),
            [
                dir.join("linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb"),
                dir.join("linux-image-6.12.95+deb12-arm64_6.12.95-1~bpo12+1_arm64.deb"),
            ]
        );
        assert!(cached_kernels(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_taken_out_of_a_package_by_their_path_ending() {
        if process::find_on_path("dpkg-deb").is_none() {
            eprintln!("skipped: no dpkg-deb");
            return;
        }
        let dir = temp_dir("extract");
        let root = dir.join("root");
        let broadcom = root.join("usr/lib/linux-image-6.1.0-9-arm64/broadcom");
        std::fs::create_dir_all(&broadcom).unwrap();
        std::fs::write(broadcom.join("bcm2711-rpi-4-b.dtb"), b"pi4 tree").unwrap();
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: t\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.org>\n\
             Description: test\n",
        )
        .unwrap();
        let deb = dir.join("t_1_all.deb");
        process::output(
            Command::new("dpkg-deb")
                .args(["--build", "--root-owner-group", "-Zgzip"])
                .arg(&root)
                .arg(&deb),
        )
        .unwrap();
        let scratch = dir.join("scratch");
        let found = extract(&deb, "broadcom/bcm2711-rpi-4-b.dtb", &scratch).unwrap();
        assert_eq!(std::fs::read(found.unwrap()).unwrap(), b"pi4 tree");
        assert_eq!(
            extract(&deb, "broadcom/bcm2712-rpi-5-b.dtb", &scratch).unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
