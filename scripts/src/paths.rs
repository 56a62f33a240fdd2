//! Where things live: the workspace, cargo's target directory and Aerie's outputs.

use std::path::{Path, PathBuf};

use crate::cli::Profile;

/// The Rust target Aerie is built for.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// The paths xtask reads and writes, all absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    target: PathBuf,
}

impl Layout {
    /// The layout of the workspace xtask was built from: the root is the parent of
    /// `scripts/`, and the target directory is `$CARGO_TARGET_DIR` (relative to the
    /// root when relative) or `<root>/target`.
    pub fn discover() -> Self {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf();
        let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
        Self::new(root, target_dir)
    }

    /// A layout rooted at `root`, with an optional target directory override.
    pub fn new(root: PathBuf, target_dir: Option<PathBuf>) -> Self {
        let target = match target_dir {
            Some(dir) if dir.is_absolute() => dir,
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Self { root, target }
    }

    /// The workspace root (where the top-level `Cargo.toml` is).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Cargo's target directory.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// `target/aerie`: everything xtask itself writes.
    pub fn aerie_dir(&self) -> PathBuf {
        self.target.join("aerie")
    }

    /// The ELF that cargo links for `profile`.
    pub fn elf(&self, profile: Profile) -> PathBuf {
        self.binary(profile, "aerie")
    }

    /// The aarch64 binary `name` that cargo links for `profile`.
    pub fn binary(&self, profile: Profile, name: &str) -> PathBuf {
        self.target.join(TARGET).join(profile.dir_name()).join(name)
    }

    /// The sources of the test guests' binaries: one `<name>.rs` per guest.
    pub fn test_guest_sources(&self) -> PathBuf {
        self.root
            .join("tests")
            .join("guests")
            .join("src")
            .join("bin")
    }

    /// `target/aerie/test-guests`: the test guests' flat Images, `<name>.bin`.
    pub fn test_guests_dir(&self) -> PathBuf {
        self.aerie_dir().join("test-guests")
    }

    /// The flat arm64 Image that QEMU and the boards load.
    pub fn image(&self) -> PathBuf {
        self.aerie_dir().join("aerie.bin")
    }

    /// The sparse disk QEMU attaches as a virtio-blk device for `cargo xtask run`.
    pub fn snapshots_disk(&self) -> PathBuf {
        self.aerie_dir().join("snapshots.img")
    }

    /// Where downloaded Debian packages are kept.
    pub fn debs_dir(&self) -> PathBuf {
        self.aerie_dir().join("debs")
    }

    /// The device-tree fixtures of the integration tests.
    pub fn fixtures_dir(&self) -> PathBuf {
        self.root.join("tests").join("fixtures")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_defaults_to_root_target() {
        let layout = Layout::new("/w".into(), None);
        assert_eq!(layout.target(), Path::new("/w/target"));
        assert_eq!(layout.image(), Path::new("/w/target/aerie/aerie.bin"));
        assert_eq!(
            layout.elf(Profile::Release),
            Path::new("/w/target/aarch64-unknown-none-softfloat/release/aerie")
        );
        assert_eq!(
            layout.elf(Profile::Debug),
            Path::new("/w/target/aarch64-unknown-none-softfloat/debug/aerie")
        );
        assert_eq!(
            layout.binary(Profile::Release, "psci"),
            Path::new("/w/target/aarch64-unknown-none-softfloat/release/psci")
        );
        assert_eq!(
            layout.test_guests_dir(),
            Path::new("/w/target/aerie/test-guests")
        );
        assert_eq!(
            layout.test_guest_sources(),
            Path::new("/w/tests/guests/src/bin")
        );
    }

    #[test]
    fn relative_target_dir_is_taken_from_the_root() {
        let layout = Layout::new("/w".into(), Some("out".into()));
        assert_eq!(layout.target(), Path::new("/w/out"));
        let layout = Layout::new("/w".into(), Some("/t".into()));
        assert_eq!(layout.snapshots_disk(), Path::new("/t/aerie/snapshots.img"));
    }

    #[test]
    fn discovered_root_holds_the_workspace_manifest() {
        assert!(Layout::discover().root().join("Cargo.toml").is_file());
    }
}
