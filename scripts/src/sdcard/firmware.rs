//! The Raspberry Pi boot files beside Aerie on the card: which each board needs,
//! where xtask gets them, and the `README.txt` that names those it could not get.
//!
//! | board | file | from |
//! |---|---|---|
//! | Pi 4 | `start4.elf`, `fixup4.dat` (the GPU firmware that reads `config.txt` and loads everything) | Debian's `raspi-firmware` |
//! | Pi 4 | `bcm2711-rpi-4-b.dtb` | a Debian arm64 kernel package |
//! | Pi 4 | `overlays/disable-bt.dtbo` | written by xtask ([`super::overlay`]) |
//! | Pi 5 | `bcm2712-rpi-5-b.dtb` (the firmware itself is in the board's EEPROM) | a Debian arm64 kernel package from 6.11 on |
//!
//! A file that cannot be had is listed in `README.txt` with its upstream place, the
//! `boot/` folder of Raspberry Pi's firmware repository.

use std::path::{Path, PathBuf};

use crate::cli::PiBoard;
use crate::error::{Context, Result};
use crate::sdcard::{debs, overlay};

/// Where a boot file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `usr/lib/raspi-firmware/<name>` in Debian's `raspi-firmware` package.
    RaspiFirmware,
    /// `usr/lib/linux-image-*/broadcom/<name>` in a Debian arm64 kernel package.
    KernelTree,
    /// Written by xtask itself.
    Xtask,
}

/// A file the board's firmware reads from the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootFile {
    /// Its path on the card.
    pub path: &'static str,
    /// Where xtask gets it.
    pub source: Source,
    /// What it is, for people.
    pub role: &'static str,
}

impl BootFile {
    /// The file's name, without the folder.
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// The Pi 4's boot files.
const RPI4_FILES: [BootFile; 4] = [
    BootFile {
        path: "start4.elf",
        source: Source::RaspiFirmware,
        role: "the Pi 4's GPU firmware: reads config.txt, loads the rest",
    },
    BootFile {
        path: "fixup4.dat",
        source: Source::RaspiFirmware,
        role: "the memory split that goes with start4.elf",
    },
    BootFile {
        path: "bcm2711-rpi-4-b.dtb",
        source: Source::KernelTree,
        role: "the Pi 4 Model B's device tree, handed to Aerie",
    },
    BootFile {
        path: overlay::DISABLE_BT_FILE,
        source: Source::Xtask,
        role: "puts the PL011 on GPIO 14/15 and turns Bluetooth off",
    },
];

/// The Pi 5's boot files (its firmware is in the board's EEPROM).
const RPI5_FILES: [BootFile; 1] = [BootFile {
    path: "bcm2712-rpi-5-b.dtb",
    source: Source::KernelTree,
    role: "the Pi 5's device tree, handed to Aerie",
}];

/// The boot files `board` needs besides Aerie, its guest and the two text files.
pub fn needed(board: PiBoard) -> &'static [BootFile] {
    match board {
        PiBoard::Rpi4 => &RPI4_FILES,
        PiBoard::Rpi5 => &RPI5_FILES,
    }
}

/// The upstream home of the Raspberry Pi boot files (named in `README.txt`; xtask
/// downloads nothing from it).
pub const UPSTREAM: &str = "https://github.com/raspberrypi/firmware/tree/master/boot";

/// A boot file xtask put in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provided {
    /// The file.
    pub file: BootFile,
    /// Where it came from, e.g. the `.deb` file name.
    pub origin: String,
}

/// A boot file xtask could not get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The file.
    pub file: BootFile,
    /// Why, in one line.
    pub reason: String,
}

/// What [`provide`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provision {
    /// The files now in the folder.
    pub provided: Vec<Provided>,
    /// The files that are not.
    pub missing: Vec<Missing>,
}

/// Where [`provide`] keeps what it downloads and unpacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDirs {
    /// The `.deb` files (shared with the default guest's).
    pub debs: PathBuf,
    /// xtask's APT configuration for `raspi-firmware`.
    pub apt: PathBuf,
    /// Where single files are unpacked before being copied.
    pub scratch: PathBuf,
}

/// Whether a boot file was had: its origin, or why not.
type Got = std::result::Result<String, String>;

/// Puts `board`'s boot files into `out`, getting each from its [`Source`]. A file
/// that cannot be had is reported in [`Provision::missing`]; only failing to write
/// into `out` is an error.
pub fn provide(board: PiBoard, out: &Path, work: &WorkDirs) -> Result<Provision> {
    let mut provision = Provision::default();
    let mut firmware_deb: Option<std::result::Result<PathBuf, String>> = None;
    for file in needed(board) {
        let got = match file.source {
            Source::Xtask => {
                write(out, file.path, &overlay::disable_bt())?;
                Ok("written by xtask".to_string())
            }
            Source::RaspiFirmware => {
                let deb = firmware_deb
                    .get_or_insert_with(|| raspi_firmware_deb(work).map_err(|e| e.to_string()))
                    .clone();
                match deb {
                    Ok(deb) => {
                        let suffix = format!("{}/{}", debs::RASPI_FIRMWARE, file.name());
                        take_from(&deb, &suffix, out, file, work)?
                    }
                    Err(reason) => Err(reason),
                }
            }
            Source::KernelTree => kernel_tree(file, out, work)?,
        };
        match got {
            Ok(origin) => provision.provided.push(Provided {
                file: *file,
                origin,
            }),
            Err(reason) => provision.missing.push(Missing {
                file: *file,
                reason: first_line(&reason),
            }),
        }
    }
    let _ = std::fs::remove_dir_all(&work.scratch);
    Ok(provision)
}

/// The first line of a (possibly multi-line) message, its runs of spaces made one.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text).trim_end_matches(':');
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Debian's `raspi-firmware` package: the cached `.deb`, else downloaded.
fn raspi_firmware_deb(work: &WorkDirs) -> Result<PathBuf> {
    if let Some(deb) = debs::cached_deb(&work.debs, debs::RASPI_FIRMWARE) {
        return Ok(deb);
    }
    debs::FirmwareApt::new(&work.apt)
        .and_then(|mut apt| apt.download(debs::RASPI_FIRMWARE, &work.debs))
        .map_err(|e| {
            crate::error::Error::new(format!(
                "Debian's {} ({} component) could not be fetched: {e}",
                debs::RASPI_FIRMWARE,
                debs::FIRMWARE_COMPONENT
            ))
        })
}

/// Copies the file of `deb` whose path ends with `suffix` to `out/<file.path>`.
fn take_from(
    deb: &Path,
    suffix: &str,
    out: &Path,
    file: &BootFile,
    work: &WorkDirs,
) -> Result<Got> {
    let deb_name = file_name(deb);
    let found = match debs::extract(deb, suffix, &work.scratch) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Err(format!("{deb_name} has no {suffix}"))),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let bytes = std::fs::read(&found).context(|| format!("cannot read {}", found.display()))?;
    write(out, file.path, &bytes)?;
    Ok(Ok(deb_name))
}

/// A device tree from a Debian kernel package: the cached ones first (newest
/// first), then the newest kernel APT offers.
fn kernel_tree(file: &BootFile, out: &Path, work: &WorkDirs) -> Result<Got> {
    let suffix = format!("broadcom/{}", file.name());
    for deb in debs::cached_kernels(&work.debs).iter().rev() {
        if let Ok(origin) = take_from(deb, &suffix, out, file, work)? {
            return Ok(Ok(origin));
        }
    }
    let newest = match debs::newest_kernel_package() {
        Ok(newest) => newest,
        Err(e) => {
            return Ok(Err(format!(
                "no Debian arm64 kernel package to take it from: {e}"
            )));
        }
    };
    if debs::cached_deb(&work.debs, &newest).is_some() {
        return Ok(Err(format!(
            "the newest Debian arm64 kernel APT offers, {newest}, has no {suffix} \
             (the Pi 5's tree is in kernels from 6.11 on)"
        )));
    }
    match debs::download_arm64(&newest, &work.debs) {
        Ok(deb) => take_from(&deb, &suffix, out, file, work),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Writes `bytes` to `out/<path>`, creating its folder.
fn write(out: &Path, path: &str, bytes: &[u8]) -> Result<()> {
    let target = out.join(path);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&target, bytes).context(|| format!("cannot write {}", target.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The first line of the `README.txt` xtask writes for missing files (how xtask
/// recognises its own when it can remove it).
pub const README_TITLE: &str = "Files this folder still needs";

/// The `README.txt` text for `missing` (not empty) files of `board`'s folder.
pub fn readme(board: PiBoard, missing: &[Missing]) -> String {
    let mut text = format!(
        "{README_TITLE}\n\
         {underline}\n\n\
         `cargo xtask sdcard --board {name}` wrote this folder for a {model} but could not\n\
         get the files below. Copy each into this folder (keeping its sub-folder, if any)\n\
         before you copy the folder onto the card. All of them are in the boot/ folder of\n\
         Raspberry Pi's firmware repository:\n\n  {UPSTREAM}\n\n",
        underline = "=".repeat(README_TITLE.len()),
        name = board.name(),
        model = board.model()
    );
    for entry in missing {
        let file = entry.file;
        text.push_str(&format!(
            "{path}\n  {role}.\n  Upstream: boot/{path}\n",
            path = file.path,
            role = file.role
        ));
        match file.source {
            Source::RaspiFirmware => text.push_str(&format!(
                "  Or from Debian: the package {} ({} component), {}/{}\n",
                debs::RASPI_FIRMWARE,
                debs::FIRMWARE_COMPONENT,
                debs::RASPI_FIRMWARE_DIR,
                file.name()
            )),
            Source::KernelTree => text.push_str(&format!(
                "  Or from Debian: an arm64 kernel package (linux-image-*-arm64), \
                 usr/lib/linux-image-*/broadcom/{}\n",
                file.name()
            )),
            Source::Xtask => {}
        }
        text.push_str(&format!("  xtask could not get it: {}\n\n", entry.reason));
    }
    if board == PiBoard::Rpi5 && missing.iter().any(|m| m.file.source == Source::KernelTree) {
        text.push_str(
            "Pi 5 boards with the D0 stepping of the BCM2712 (2 GB and 16 GB boards made\n\
             since late 2024) look for bcm2712d0-rpi-5-b.dtb first: copy that one from\n\
             boot/ as well.\n\n",
        );
    }
    text.push_str("Then run `cargo xtask sdcard` again, or just copy the folder onto the card.\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(board: PiBoard, reason: &str) -> Vec<Missing> {
        needed(board)
            .iter()
            .filter(|file| file.source != Source::Xtask)
            .map(|file| Missing {
                file: *file,
                reason: reason.to_string(),
            })
            .collect()
    }

    #[test]
    fn each_board_needs_its_own_files() {
        let pi4: Vec<&str> = needed(PiBoard::Rpi4).iter().map(|f| f.path).collect();
        assert_eq!(
            pi4,
            [
                "start4.elf",
                "fixup4.dat",
                "bcm2711-rpi-4-b.dtb",
                "overlays/disable-bt.dtbo"
            ]
        );
        let pi5: Vec<&str> = needed(PiBoard::Rpi5).iter().map(|f| f.path).collect();
        assert_eq!(pi5, ["bcm2712-rpi-5-b.dtb"]);
        assert_eq!(needed(PiBoard::Rpi4)[3].name(), "disable-bt.dtbo");
    }

    #[test]
    fn the_readme_says_what_to_copy_from_where() {
        let text = readme(PiBoard::Rpi4, &missing(PiBoard::Rpi4, "no network"));
        assert!(text.starts_with("Files this folder still needs\n=============================\n"));
        assert!(text.contains("https://github.com/raspberrypi/firmware/tree/master/boot"));
        for path in ["start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb"] {
            assert!(text.contains(&format!("\n{path}\n")), "{path}: {text}");
            assert!(text.contains(&format!("Upstream: boot/{path}\n")), "{text}");
        }
        assert!(text.contains("usr/lib/raspi-firmware/start4.elf"));
        assert!(text.contains("usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb"));
        assert!(text.contains("xtask could not get it: no network"));
        assert!(!text.contains("disable-bt.dtbo"));
        assert!(!text.contains("bcm2712d0"));
    }

    #[test]
    fn the_pi5_readme_mentions_the_d0_tree() {
        let text = readme(PiBoard::Rpi5, &missing(PiBoard::Rpi5, "too old"));
        assert!(text.contains("\nbcm2712-rpi-5-b.dtb\n"));
        assert!(text.contains("bcm2712d0-rpi-5-b.dtb"));
        assert!(text.contains("Raspberry Pi 5"));
    }

    #[test]
    fn reasons_are_cut_to_their_first_line() {
        assert_eq!(
            first_line("`apt-get` failed:\nE: details"),
            "`apt-get` failed"
        );
        assert_eq!(first_line("plain"), "plain");
        assert_eq!(first_line("needs APT      (Debian)"), "needs APT (Debian)");
    }
}
