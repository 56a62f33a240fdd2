//! The test guests (`tests/guests/`): small EL1 programs, one per file in
//! `tests/guests/src/bin/`, that the integration tests run as Aerie's guest. Building
//! them writes each as a flat arm64 Image, `target/aerie/test-guests/<name>.bin`.

use std::path::{Path, PathBuf};

use aerie_hyp::guest_layout::RAM_BASE;

use crate::atomic_file;
use crate::cli::Profile;
use crate::error::{Context, Error, Result};
use crate::image::{CheckedImage, flatten_checked};
use crate::paths::{Layout, TARGET};
use crate::process;

/// The cargo package of the test guests.
pub const PACKAGE: &str = "aerie-test-guests";

/// The test guests are always built optimized, like the image under test.
const PROFILE: Profile = Profile::Release;

/// What building the test guests produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltGuests {
    /// The directory holding `<name>.bin` for every guest.
    pub dir: PathBuf,
    /// The guests' names, sorted.
    pub names: Vec<String>,
}

/// The names of the test guests: the file stems of `tests/guests/src/bin/*.rs`
/// (cargo names each binary after its file), sorted.
pub fn names(sources: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(sources).context(|| format!("cannot list {}", sources.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .context(|| format!("cannot list {}", sources.display()))?
            .path();
        if path.extension().is_some_and(|extension| extension == "rs")
            && let Some(stem) = path.file_stem().and_then(|stem| stem.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Checks that a test guest's Image is linked where Aerie loads a guest kernel: at
/// the start of guest RAM, with `text_offset` 0 (the guests do not relocate).
fn check_load_address(name: &str, image: &CheckedImage) -> Result<()> {
    if image.flat.base == RAM_BASE && image.header.text_offset == 0 {
        Ok(())
    } else {
        Err(Error::new(format!(
            "test guest {name} is linked at {:#x} with text_offset {:#x}; it must be linked \
             at the start of guest RAM ({RAM_BASE:#x}) with text_offset 0 \
             (linker/test-guest.ld)",
            image.flat.base, image.header.text_offset
        )))
    }
}

/// Builds the test guests and writes their flat Images into
/// `target/aerie/test-guests/`, replacing what an earlier build left there.
pub fn build(layout: &Layout) -> Result<BuiltGuests> {
    let mut cargo = process::cargo();
    cargo
        .args(["build", "-p", PACKAGE, "--release", "--target", TARGET])
        .current_dir(layout.root());
    if process::in_ci() {
        cargo.args(["--color", "never"]);
    }
    process::check(&mut cargo)?;

    let names = names(&layout.test_guest_sources())?;
    if names.is_empty() {
        return Err(Error::new(format!(
            "no test guests in {}",
            layout.test_guest_sources().display()
        )));
    }
    let dir = layout.test_guests_dir();
    for name in &names {
        let image = flatten_checked(&layout.binary(PROFILE, name))?;
        check_load_address(name, &image)?;
        // A test in another run may be booting this guest right now.
        atomic_file::write_if_changed(&dir.join(format!("{name}.bin")), &image.flat.bytes)?;
    }
    remove_stale(&dir, &names)?;
    println!(
        "test guests: {} in {} ({})",
        names.len(),
        dir.display(),
        names.join(", ")
    );
    Ok(BuiltGuests { dir, names })
}

/// Removes the `.bin` files in `dir` that are no test guest's any more.
fn remove_stale(dir: &Path, names: &[String]) -> Result<()> {
    let entries = std::fs::read_dir(dir).context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let stem = path.file_stem().and_then(|stem| stem.to_str());
        let is_guest = path.extension().is_some_and(|ext| ext == "bin");
        if is_guest && !stem.is_some_and(|stem| names.iter().any(|name| name == stem)) {
            std::fs::remove_file(&path).context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::FlatImage;
    use aerie_hyp::image::ImageHeader;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-test-guests-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_guests_that_are_gone_are_removed() {
        let dir = temp_dir("stale");
        for file in ["psci.bin", "old.bin", "notes.txt"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        remove_stale(&dir, &["psci".to_string()]).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.txt", "psci.bin"]);
    }

    #[test]
    fn guests_are_the_rust_files_of_the_bin_directory() {
        let dir = temp_dir("names");
        for file in ["psci.rs", "exit_status.rs", "README.md", "abort.rs"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        std::fs::create_dir(dir.join("helpers")).unwrap();
        assert_eq!(names(&dir).unwrap(), ["abort", "exit_status", "psci"]);
        let missing = names(&dir.join("nothing")).unwrap_err().to_string();
        assert!(missing.starts_with("cannot list "), "{missing}");
    }

    #[test]
    fn the_repository_has_test_guests() {
        let names = names(&Layout::discover().test_guest_sources()).unwrap();
        assert!(names.iter().any(|name| name == "psci"), "{names:?}");
    }

    /// A flat image at `base` whose header has `text_offset`.
    fn image(base: u64, text_offset: u64) -> CheckedImage {
        let mut bytes = vec![0u8; 64];
        bytes[8..16].copy_from_slice(&text_offset.to_le_bytes());
        bytes[16..24].copy_from_slice(&4096u64.to_le_bytes()); // image_size
        bytes[24..32].copy_from_slice(&0xau64.to_le_bytes()); // LE, 4K pages, anywhere
        bytes[56..60].copy_from_slice(b"ARM\x64");
        let header = ImageHeader::parse(&bytes).unwrap();
        CheckedImage {
            flat: FlatImage { base, bytes },
            header,
        }
    }

    #[test]
    fn guests_must_be_linked_at_the_start_of_guest_ram() {
        assert!(check_load_address("psci", &image(0x4000_0000, 0)).is_ok());
        let moved = check_load_address("psci", &image(0x4020_0000, 0)).unwrap_err();
        assert!(
            moved
                .to_string()
                .starts_with("test guest psci is linked at 0x40200000 with text_offset 0x0;"),
            "{moved}"
        );
        assert!(check_load_address("psci", &image(0x4000_0000, 0x8_0000)).is_err());
    }
}
