//! `cargo xtask build`: compile Aerie and write the flat arm64 Image.

use std::path::{Path, PathBuf};

use aerie_hyp::image::ImageHeader;

use crate::atomic_file;
use crate::cli::{BuildOptions, Profile};
use crate::error::{Context, Error, Result};
use crate::flat::{FlatImage, elf_to_flat};
use crate::paths::{Layout, TARGET};
use crate::process;
use crate::setup;

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The linked ELF (for gdb and symbols).
    pub elf: PathBuf,
    /// The flat Image (what QEMU and the boards load).
    pub image: PathBuf,
}

/// An ELF flattened into an arm64 Image whose header was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedImage {
    /// The flat binary and its load address.
    pub flat: FlatImage,
    /// Its arm64 Image header.
    pub header: ImageHeader,
}

/// Reads `elf` and flattens it, checking that the result starts with a valid arm64
/// Image header whose `image_size` covers the whole file.
pub fn flatten_checked(elf: &Path) -> Result<CheckedImage> {
    let data = std::fs::read(elf).context(|| format!("cannot read {}", elf.display()))?;
    let flat = elf_to_flat(&data).context(|| format!("cannot flatten {}", elf.display()))?;
    let header = ImageHeader::parse(&flat.bytes).map_err(|e| {
        Error::new(format!(
            "{} has no valid arm64 Image header: {e}",
            elf.display()
        ))
    })?;
    if header.image_size < flat.bytes.len() as u64 {
        return Err(Error::new(format!(
            "{}: the Image header's image_size ({:#x}) is smaller than the file ({:#x} bytes)",
            elf.display(),
            header.image_size,
            flat.bytes.len()
        )));
    }
    Ok(CheckedImage { flat, header })
}

/// Runs `cargo xtask build`.
pub fn run(layout: &Layout, options: BuildOptions) -> Result<()> {
    build(layout, options.profile).map(drop)
}

/// Builds `aerie-boot` for `profile`, writes `target/aerie/aerie.bin`, checks its arm64
/// Image header and prints its path and size (on stderr: stdout is for `run --exec`).
pub fn build(layout: &Layout, profile: Profile) -> Result<Built> {
    setup::ensure_target(layout)?;
    let mut cargo = process::cargo();
    cargo
        .args(["build", "-p", "aerie-boot", "--target", TARGET])
        .current_dir(layout.root());
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    if process::in_ci() {
        cargo.args(["--color", "never"]);
    }
    process::check(&mut cargo)?;

    let elf = layout.elf(profile);
    let CheckedImage { flat, header } = flatten_checked(&elf)?;

    let image = layout.image();
    // Other runs may be loading this very file into QEMU: replace it whole, and only
    // when the build changed it.
    atomic_file::write_if_changed(&image, &flat.bytes)?;
    eprintln!(
        "image: {} ({} bytes; loads at {:#x}, text_offset {:#x}, image_size {:#x})",
        image.display(),
        flat.bytes.len(),
        flat.base,
        header.text_offset,
        header.image_size
    );
    Ok(Built { elf, image })
}
