//! A disk as `--disk` and `--snapshot-disk` name it: a raw image file, optionally
//! behind QEMU's `blkdebug` driver, which fails the requests its rules name.
//!
//! `blkdebug:RULES:FILE` is QEMU's own spelling (RULES is a blkdebug configuration
//! file such as `[inject-error]` / `event = "read_aio"` / `errno = "5"` /
//! `sector = "2048"`; see QEMU's `docs/devel/blkdebug.rst`). It lets a kernel
//! developer see how their guest takes a failing disk, and lets the tests prove that
//! Aerie passes host disk errors on as I/O errors and never falls over. xtask works
//! on FILE (checks it, creates and sizes a snapshot disk, reads snapshots); QEMU gets
//! the whole spelling.

use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};

/// QEMU's prefix for a disk with injected faults.
const BLKDEBUG: &str = "blkdebug:";

/// A disk image, and the blkdebug rules QEMU applies to it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// The raw image file.
    pub file: PathBuf,
    /// The blkdebug rules file.
    pub fault_rules: Option<PathBuf>,
}

impl DiskSpec {
    /// A plain image file, no faults.
    pub fn plain(file: PathBuf) -> Self {
        Self {
            file,
            fault_rules: None,
        }
    }

    /// Reads `FILE` or `blkdebug:RULES:FILE`.
    pub fn parse(given: &Path) -> Result<Self> {
        let text = given.to_string_lossy();
        let Some(rest) = text.strip_prefix(BLKDEBUG) else {
            return Ok(Self::plain(given.to_path_buf()));
        };
        match rest.split_once(':') {
            Some((rules, file)) if !rules.is_empty() && !file.is_empty() => Ok(Self {
                file: PathBuf::from(file),
                fault_rules: Some(PathBuf::from(rules)),
            }),
            _ => Err(Error::new(format!(
                "`{text}`: a disk with injected faults is written blkdebug:RULES:FILE \
                 (RULES a blkdebug configuration file, FILE the disk image)"
            ))),
        }
    }

    /// What QEMU's `-drive file=` gets (before escaping commas).
    pub fn qemu_file(&self) -> String {
        match &self.fault_rules {
            Some(rules) => format!("{BLKDEBUG}{}:{}", rules.display(), self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    /// Refuses a rules file that cannot be read, before QEMU runs.
    pub fn check_rules(&self) -> Result<()> {
        if let Some(rules) = &self.fault_rules {
            std::fs::metadata(rules)
                .context(|| format!("cannot read the blkdebug rules {}", rules.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_files_and_blkdebug_disks() {
        let plain = DiskSpec::parse(Path::new("/d/disk.img")).unwrap();
        assert_eq!(plain.file, Path::new("/d/disk.img"));
        assert_eq!(plain.fault_rules, None);
        assert_eq!(plain.qemu_file(), "/d/disk.img");

        let faulty = DiskSpec::parse(Path::new("blkdebug:/d/rules.conf:/d/disk.img")).unwrap();
        assert_eq!(faulty.file, Path::new("/d/disk.img"));
        assert_eq!(
            faulty.fault_rules.as_deref(),
            Some(Path::new("/d/rules.conf"))
        );
        assert_eq!(faulty.qemu_file(), "blkdebug:/d/rules.conf:/d/disk.img");
    }

    #[test]
    fn a_blkdebug_disk_needs_rules_and_a_file() {
        for bad in [
            "blkdebug:",
            "blkdebug:rules",
            "blkdebug::disk.img",
            "blkdebug:r:",
        ] {
            let message = DiskSpec::parse(Path::new(bad)).unwrap_err().to_string();
            assert!(message.contains("blkdebug:RULES:FILE"), "{bad}: {message}");
        }
    }

    #[test]
    fn missing_rules_are_refused() {
        let spec = DiskSpec::parse(Path::new("blkdebug:/nonexistent/rules:/d/x.img")).unwrap();
        let message = spec.check_rules().unwrap_err().to_string();
        assert!(message.contains("/nonexistent/rules"), "{message}");
    }
}
