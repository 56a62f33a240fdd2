//! `cargo xtask sdcard --board rpi4|rpi5 --out DIR`: a folder to copy onto a FAT32
//! SD card that boots Aerie, and its guest, on a Raspberry Pi 4 or 5.
//!
//! | file | what |
//! |---|---|
//! | `aerie.img` (Pi 4), `kernel_2712.img` (Pi 5) | Aerie's flat arm64 Image (`cargo xtask build`) |
//! | `aerie-guest.cpio` | the guest bundle, packed as `cargo xtask run` packs it |
//! | `config.txt`, `cmdline.txt` | [`boot_config`]: the firmware's settings and Aerie's options |
//! | firmware files | [`firmware`]: from Debian's packages, or named in `README.txt` |
//!
//! | module | job |
//! |---|---|
//! | [`boot_config`] | the text of `config.txt` and `cmdline.txt` |
//! | [`firmware`] | which boot files each board needs, getting them, `README.txt` |
//! | [`debs`] | Debian packages: xtask's APT set-up for `raspi-firmware`, kernels, unpacking |
//! | [`overlay`] | the Pi 4's `disable-bt` device-tree overlay |

pub mod boot_config;
pub mod debs;
pub mod firmware;
pub mod overlay;

use std::path::Path;

use aerie_hyp::image::ImageHeader;
use aerie_hyp::units::ByteSize;

use crate::cli::{PiBoard, Profile, RunOptions, SdcardOptions};
use crate::error::{Context, Error, Result};
use crate::guest;
use crate::guest_material;
use crate::image;
use crate::paths::Layout;
use firmware::{Missing, Provision, WorkDirs};

/// The file xtask writes into the folder to see that it can.
const PROBE_FILE: &str = ".aerie-write-test";

/// The name of the note on files xtask could not get.
pub const README_FILE: &str = "README.txt";

/// Runs `cargo xtask sdcard`.
pub fn run(layout: &Layout, options: &SdcardOptions) -> Result<()> {
    let out = &options.out;
    prepare_out(out)?;
    let run_options = RunOptions {
        kernel: options.kernel.clone(),
        initrd: options.initrd.clone(),
        append: options.append.clone(),
        ..RunOptions::default()
    };
    let guest_files = guest_material::choose(layout, &run_options)?
        .ok_or_else(|| Error::new("no guest to put on the card"))?;
    let built = image::build(layout, Profile::Release)?;

    let board = options.board;
    let mut listing = Vec::new();
    let kernel = boot_config::kernel_file(board);
    let image =
        std::fs::read(&built.image).context(|| format!("cannot read {}", built.image.display()))?;
    write_file(out, kernel, &card_image(image)?)?;
    listing.push((
        kernel.to_string(),
        "Aerie (arm64 Image, padded to its image_size)".to_string(),
    ));

    guest::pack(
        &guest_files.kernel,
        guest_files.initrd.as_deref(),
        guest_files.cmdline.as_deref(),
        &out.join(boot_config::GUEST_FILE),
    )?;
    let guest_what = if guest_files.is_default {
        "the guest: Debian's arm64 kernel and a busybox shell".to_string()
    } else {
        format!("the guest: {}", guest_files.kernel.display())
    };
    listing.push((boot_config::GUEST_FILE.to_string(), guest_what));

    write_text(
        out,
        boot_config::CONFIG_FILE,
        &boot_config::config_txt(board),
    )?;
    listing.push((
        boot_config::CONFIG_FILE.to_string(),
        "the firmware's settings, each explained".to_string(),
    ));
    let written_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let cmdline = boot_config::cmdline_txt(options.mem_mib, options.smp, written_at);
    write_text(out, boot_config::CMDLINE_FILE, &cmdline)?;
    listing.push((
        boot_config::CMDLINE_FILE.to_string(),
        format!("Aerie's options: {}", cmdline.trim()),
    ));

    let provision = firmware::provide(board, out, &work_dirs(layout))?;
    for provided in &provision.provided {
        listing.push((
            provided.file.path.to_string(),
            format!("{} ({})", provided.file.role, provided.origin),
        ));
    }
    update_readme(out, board, &provision.missing)?;
    if !provision.missing.is_empty() {
        listing.push((
            README_FILE.to_string(),
            "which files are missing, and where to get them".to_string(),
        ));
    }
    print!("{}", summary(board, out, &listing, &provision));
    Ok(())
}

/// Where the firmware files are fetched and unpacked: under `target/aerie/`.
fn work_dirs(layout: &Layout) -> WorkDirs {
    let work = layout.aerie_dir().join("sdcard");
    WorkDirs {
        debs: layout.debs_dir(),
        apt: work.join("apt"),
        scratch: work.join(format!("unpack-{}", std::process::id())),
    }
}

/// Creates `out` if needed and checks that xtask can write into it, before anything
/// is built or fetched.
pub fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::new(format!(
            "--out {}: that is a file, not a folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .context(|| format!("--out {}: cannot create the folder", out.display()))?;
    let probe = out.join(PROBE_FILE);
    std::fs::write(&probe, b"")
        .context(|| format!("--out {}: cannot write into the folder", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Aerie's image as it goes on the card: padded with zeros up to its Image header's
/// `image_size`, which covers its zero-initialised data and boot stack. The firmware
/// puts the guest bundle (`initramfs ... followkernel`) right after the file it
/// loaded, and nothing documents whether it leaves room for more than the file's
/// own bytes; with the padding the bundle lands beyond everything Aerie uses.
pub fn card_image(mut image: Vec<u8>) -> Result<Vec<u8>> {
    let header = ImageHeader::parse(&image).map_err(|e| {
        Error::new(format!(
            "Aerie's image has no valid arm64 Image header: {e}"
        ))
    })?;
    let size = header.effective_image_size(image.len() as u64);
    let size = usize::try_from(size)
        .map_err(|_| Error::new(format!("Aerie's image_size {size:#x} is too large")))?;
    if size > image.len() {
        image.resize(size, 0);
    }
    Ok(image)
}

fn write_text(out: &Path, name: &str, text: &str) -> Result<()> {
    write_file(out, name, text.as_bytes())
}

fn write_file(out: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = out.join(name);
    std::fs::write(&path, bytes).context(|| format!("cannot write {}", path.display()))
}

/// Writes `README.txt` when files are missing; removes one xtask wrote earlier when
/// nothing is (a README of someone else's stays).
fn update_readme(out: &Path, board: PiBoard, missing: &[Missing]) -> Result<()> {
    let path = out.join(README_FILE);
    if missing.is_empty() {
        let ours = std::fs::read_to_string(&path)
            .is_ok_and(|text| text.starts_with(firmware::README_TITLE));
        if ours {
            std::fs::remove_file(&path).context(|| format!("cannot remove {}", path.display()))?;
        }
        return Ok(());
    }
    write_text(out, README_FILE, &firmware::readme(board, missing))
}

/// What `sdcard` prints at the end: the folder, its files with sizes, what is
/// missing, and what to do next.
pub fn summary(
    board: PiBoard,
    out: &Path,
    listing: &[(String, String)],
    provision: &Provision,
) -> String {
    let folder = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut text = format!(
        "\nsdcard: {} holds a boot folder for the {}:\n",
        folder.display(),
        board.model()
    );
    let width = listing
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, what) in listing {
        let size = std::fs::metadata(folder.join(name))
            .map(|meta| ByteSize(meta.len()).to_string())
            .unwrap_or_else(|_| "?".to_string());
        text.push_str(&format!("  {name:<width$}  {size:>10}  {what}\n"));
    }
    if !provision.missing.is_empty() {
        text.push_str(&format!(
            "\nMissing (copy them in first; {README_FILE} says from where, upstream {}):\n",
            firmware::UPSTREAM
        ));
        for missing in &provision.missing {
            text.push_str(&format!("  {}: {}\n", missing.file.path, missing.reason));
        }
    }
    text.push_str(&next_steps(board, &folder));
    text
}

/// The steps from the folder to a console, for `board`.
pub fn next_steps(board: PiBoard, folder: &Path) -> String {
    let wiring = match board {
        PiBoard::Rpi4 => {
            "adapter RX to pin 8 (GPIO 14, TXD), adapter TX to pin 10 (GPIO 15, RXD),\n     \
             GND to pin 6"
        }
        PiBoard::Rpi5 => {
            "the 3-pin debug UART connector between the HDMI ports (JST-SH: pin 1 RX\n     \
             to adapter TX, pin 2 GND, pin 3 TX to adapter RX; the Raspberry Pi Debug\n     \
             Probe plugs straight in)"
        }
    };
    format!(
        "\nNext:\n  \
         1. Give the SD card one FAT32 partition (MBR partition table).\n  \
         2. Copy the folder's contents to the top of it:\n       \
         cp -r {folder}/. /media/$USER/<card>/ && sync\n  \
         3. Connect a 3.3 V USB serial adapter (never 5 V), 115200 8N1:\n     \
         {wiring};\n     \
         then open it, e.g. `picocom -b 115200 /dev/ttyUSB0`.\n  \
         4. Put the card in the {model} and power it on: Aerie's hardware summary,\n     \
         then the guest's console.\n\
         README.md, \"Running on a Raspberry Pi\", has the details.\n",
        folder = folder.display(),
        model = board.model()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-sdcard-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_out_folder_is_created_and_must_be_writable() {
        let dir = temp_dir("out");
        prepare_out(&dir.join("card")).unwrap();
        assert!(dir.join("card").is_dir());
        assert!(!dir.join("card").join(PROBE_FILE).exists());
        std::fs::write(dir.join("file"), b"x").unwrap();
        let message = prepare_out(&dir.join("file")).unwrap_err().to_string();
        assert!(
            message.ends_with("file: that is a file, not a folder"),
            "{message}"
        );
        let message = prepare_out(&dir.join("file/sub")).unwrap_err().to_string();
        assert!(message.contains("cannot create the folder"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_folder_is_refused_by_name() {
        if crate::process::is_root() {
            eprintln!("skipped: root writes anywhere");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("readonly");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let message = prepare_out(&dir).unwrap_err().to_string();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            message.contains("cannot write into the folder"),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn our_readme_comes_and_goes_with_missing_files_but_a_users_stays() {
        let dir = temp_dir("readme");
        std::fs::create_dir_all(&dir).unwrap();
        let missing = [Missing {
            file: firmware::needed(PiBoard::Rpi5)[0],
            reason: "offline".to_string(),
        }];
        update_readme(&dir, PiBoard::Rpi5, &missing).unwrap();
        let text = std::fs::read_to_string(dir.join(README_FILE)).unwrap();
        assert!(text.contains("bcm2712-rpi-5-b.dtb"));
        update_readme(&dir, PiBoard::Rpi5, &[]).unwrap();
        assert!(!dir.join(README_FILE).exists());
        std::fs::write(dir.join(README_FILE), "my notes").unwrap();
        update_readme(&dir, PiBoard::Rpi5, &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(README_FILE)).unwrap(),
            "my notes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_summary_lists_sizes_missing_files_and_next_steps() {
        let dir = temp_dir("summary");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.txt"), vec![b'#'; 2048]).unwrap();
        let listing = [("config.txt".to_string(), "settings".to_string())];
        let provision = Provision {
            provided: Vec::new(),
            missing: vec![Missing {
                file: firmware::needed(PiBoard::Rpi4)[0],
                reason: "offline".to_string(),
            }],
        };
        let text = summary(PiBoard::Rpi4, &dir, &listing, &provision);
        assert!(
            text.contains("a boot folder for the Raspberry Pi 4 Model B"),
            "{text}"
        );
        assert!(
            text.contains("  config.txt       2 KiB  settings\n"),
            "{text}"
        );
        assert!(text.contains("  start4.elf: offline\n"), "{text}");
        assert!(text.contains("pin 8 (GPIO 14, TXD)"));
        assert!(text.contains("GND to pin 6"));
        assert!(text.contains(&format!("cp -r {}/. ", dir.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An Image header (Linux `Documentation/arch/arm64/booting.rst`): `image_size`
    /// at offset 16, flags at 24 (little-endian, 4K pages, anywhere), magic
    /// `ARM\x64` at 56; then `file_len - 64` bytes of code.
    fn image(file_len: usize, image_size: u64) -> Vec<u8> {
        let mut image = vec![0xaa; file_len];
        image[..64].fill(0);
        image[16..24].copy_from_slice(&image_size.to_le_bytes());
        image[24..32].copy_from_slice(&0xau64.to_le_bytes());
        image[56..60].copy_from_slice(b"ARM\x64");
        image
    }

    #[test]
    fn the_card_image_is_padded_to_its_image_size() {
        let padded = card_image(image(4096, 0x20_0000)).unwrap();
        assert_eq!(padded.len(), 0x20_0000);
        assert_eq!(padded[..4096], image(4096, 0x20_0000)[..]);
        assert!(padded[4096..].iter().all(|&b| b == 0));
        // An image that already covers its image_size is left as it is.
        assert_eq!(card_image(image(8192, 4096)).unwrap().len(), 8192);
        let message = card_image(vec![0; 64]).unwrap_err().to_string();
        assert!(message.contains("no valid arm64 Image header"), "{message}");
    }

    #[test]
    fn the_pi5_console_is_the_debug_connector() {
        let text = next_steps(PiBoard::Rpi5, Path::new("/c"));
        assert!(text.contains("3-pin debug UART connector"));
        assert!(text.contains("115200 8N1"));
        assert!(!text.contains("GPIO 14"));
    }
}
