//! Packing a guest for Aerie: kernel, initrd and command line in one cpio bundle
//! (see `aerie_hyp::bundle`), handed to Aerie as QEMU's `-initrd`.

use std::io::Read;
use std::path::{Path, PathBuf};

use aerie_hyp::image::ImageHeader;

use crate::atomic_file;
use crate::error::{Context, Error, Result};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A guest packed for Aerie.
#[derive(Debug, Clone)]
pub struct PackedGuest {
    /// The bundle file.
    pub bundle: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Reads a kernel file, decompressing a gzip'd Image, and checks its Image header.
pub fn read_kernel(path: &Path) -> Result<Vec<u8>> {
    let raw =
        std::fs::read(path).context(|| format!("cannot read the kernel {}", path.display()))?;
    let kernel = if raw.starts_with(&GZIP_MAGIC) {
        let mut image = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut image)
            .context(|| format!("cannot decompress the gzip'd kernel {}", path.display()))?;
        image
    } else {
        raw
    };
    ImageHeader::parse(&kernel).map_err(|e| {
        Error::new(format!(
            "{} is not a bootable arm64 kernel: {e}",
            path.display()
        ))
    })?;
    Ok(kernel)
}

/// Packs `kernel`, `initrd` and `cmdline` into `bundle`.
pub fn pack(
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: Option<&str>,
    bundle: &Path,
) -> Result<PackedGuest> {
    let kernel = read_kernel(kernel)?;
    let initrd = match initrd {
        Some(path) => Some(
            std::fs::read(path).context(|| format!("cannot read the initrd {}", path.display()))?,
        ),
        None => None,
    };
    let bytes = aerie_hyp::bundle::write_aligned(&kernel, initrd.as_deref(), cmdline);
    atomic_file::write(bundle, &bytes)?;
    Ok(PackedGuest {
        bundle: bundle.to_path_buf(),
        size: bytes.len() as u64,
    })
}

/// Packs the firmware image at `firmware` alone into `bundle` (see
/// `aerie_hyp::firmware`).
pub fn pack_firmware(firmware: &Path, bundle: &Path) -> Result<PackedGuest> {
    let image = std::fs::read(firmware)
        .context(|| format!("cannot read the firmware {}", firmware.display()))?;
    if image.is_empty() || image.len() as u64 > aerie_hyp::guest_layout::FLASH_BANK_SIZE {
        return Err(Error::new(format!(
            "{} cannot be firmware: {} bytes, where a flash bank holds 1 to {}",
            firmware.display(),
            image.len(),
            aerie_hyp::guest_layout::FLASH_BANK_SIZE
        )));
    }
    let bytes = aerie_hyp::bundle::write_firmware(&image);
    atomic_file::write(bundle, &bytes)?;
    Ok(PackedGuest {
        bundle: bundle.to_path_buf(),
        size: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal kernel: an Image header and nothing else.
    fn tiny_image() -> Vec<u8> {
        let mut image = vec![0u8; 4096];
        image[16..24].copy_from_slice(&4096u64.to_le_bytes()); // image_size
        image[24..32].copy_from_slice(&0xau64.to_le_bytes()); // flags: LE, 4K, anywhere
        image[56..60].copy_from_slice(b"ARM\x64");
        image
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-guest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn gzip_kernels_are_decompressed() {
        let path = temp("vmlinuz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tiny_image()).unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        assert_eq!(read_kernel(&path).unwrap(), tiny_image());
    }

    #[test]
    fn files_that_are_not_kernels_are_refused_by_name() {
        let path = temp("not-a-kernel");
        std::fs::write(&path, b"hello").unwrap();
        let message = read_kernel(&path).unwrap_err().to_string();
        assert!(
            message.contains("not-a-kernel is not a bootable arm64 kernel"),
            "{message}"
        );
    }

    #[test]
    fn bundles_hold_what_was_packed() {
        let kernel = temp("Image");
        std::fs::write(&kernel, tiny_image()).unwrap();
        let initrd = temp("initrd");
        std::fs::write(&initrd, b"initrd bytes").unwrap();
        let packed = pack(
            &kernel,
            Some(&initrd),
            Some("console=ttyAMA0"),
            &temp("b.cpio"),
        )
        .unwrap();
        let bytes = std::fs::read(&packed.bundle).unwrap();
        let bundle = aerie_hyp::bundle::Bundle::parse(&bytes).unwrap();
        assert_eq!(bundle.kernel, tiny_image().as_slice());
        assert_eq!(bundle.initrd, Some(&b"initrd bytes"[..]));
        assert_eq!(bundle.cmdline, Some("console=ttyAMA0"));
        assert_eq!(packed.size, bytes.len() as u64);
    }
}
