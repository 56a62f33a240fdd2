//! Aerie's test guests (`tests/guests/`): the images `cargo xtask test` built, and
//! guest bundles made from them for QEMU's `-initrd`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::paths;

/// The environment variable naming the directory of the test guests' flat images.
pub const TEST_GUESTS_ENV: &str = "AERIE_TEST_GUESTS";

/// The flat arm64 Image of test guest `name` (`$AERIE_TEST_GUESTS/<name>.bin`).
/// Panics with advice when the variable is unset or the image is missing.
pub fn test_guest(name: &str) -> PathBuf {
    image_in(std::env::var_os(TEST_GUESTS_ENV), name)
}

fn image_in(dir: Option<OsString>, name: &str) -> PathBuf {
    let dir = match dir {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => panic!(
            "{TEST_GUESTS_ENV} is not set: run the integration tests through `cargo xtask \
             test`, which builds the test guests (if it did, their build failed: see above)"
        ),
    };
    let image = dir.join(format!("{name}.bin"));
    assert!(
        image.is_file(),
        "no test guest {name:?}: {} does not exist (is there a tests/guests/src/bin/{name}.rs?)",
        image.display()
    );
    image
}

/// Writes a guest bundle (a cpio archive with test guest `name` as its kernel, no
/// initrd and no command line) into the current test's temporary directory and
/// returns its path, for [`Qemu::initrd`](crate::Qemu::initrd). It is written as
/// `cargo xtask run` writes one, with the kernel's bytes 2 MiB into the archive.
pub fn guest_bundle(name: &str) -> PathBuf {
    bundle_of(&test_guest(name), name)
}

fn bundle_of(image: &Path, name: &str) -> PathBuf {
    let kernel =
        std::fs::read(image).unwrap_or_else(|e| panic!("cannot read {}: {e}", image.display()));
    let bundle = aerie_hyp::bundle::write_aligned(&kernel, None, None);
    paths::temp_file(&format!("{name}.bundle.cpio"), &bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_named_after_the_guest() {
        let dir = paths::test_tmp_dir();
        std::fs::write(dir.join("psci.bin"), b"image").unwrap();
        assert_eq!(
            image_in(Some(dir.clone().into_os_string()), "psci"),
            dir.join("psci.bin")
        );
    }

    #[test]
    #[should_panic(expected = "AERIE_TEST_GUESTS is not set")]
    fn an_unset_directory_gives_advice() {
        image_in(None, "psci");
    }

    #[test]
    #[should_panic(expected = "no test guest \"nothing\"")]
    fn a_missing_guest_is_named() {
        image_in(Some(paths::test_tmp_dir().into_os_string()), "nothing");
    }

    #[test]
    fn a_bundle_holds_the_guest_as_its_kernel() {
        let image = paths::temp_file("hello.bin", b"kernel bytes");
        let bundle = bundle_of(&image, "hello");
        assert!(
            bundle.ends_with("hello.bundle.cpio"),
            "{}",
            bundle.display()
        );
        let bytes = std::fs::read(bundle).unwrap();
        let parsed = aerie_hyp::bundle::Bundle::parse(&bytes).unwrap();
        assert_eq!(parsed.kernel, b"kernel bytes");
        assert_eq!(parsed.initrd, None);
        assert_eq!(parsed.cmdline, None);
    }
}
