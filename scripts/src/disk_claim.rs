//! Which snapshot disk a run uses when `--snapshot-disk` is not given.
//!
//! The default disk, `target/aerie/snapshots.img`, can serve one machine at a time:
//! QEMU locks the disk images it writes, so a second run on the same file would fail
//! to start. A run therefore claims the default disk with a lock beside it
//! (`snapshots.img.lock`, held for the whole run). When another run holds it, this run
//! gets a disk of its own instead (`snapshots-PID.img`), says so, and deletes it
//! afterwards unless a snapshot was taken on it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::disk_spec::DiskSpec;
use crate::error::{Context, Result};
use crate::snapshot_disk;

/// The snapshot disk of one run.
#[derive(Debug)]
pub struct Claim {
    /// The disk image file.
    pub path: PathBuf,
    /// The disk as QEMU's `-drive file=` names it (with `blkdebug:RULES:` in front
    /// when faults are injected).
    pub qemu_file: PathBuf,
    /// Whether this is a stand-in for a default disk that another run holds.
    pub stand_in: bool,
    /// The lock on the default disk, released when the claim is dropped.
    _lock: Option<File>,
}

impl Claim {
    /// A disk the user named: no lock, never deleted.
    pub fn given(spec: &DiskSpec) -> Self {
        Self {
            path: spec.file.clone(),
            qemu_file: PathBuf::from(spec.qemu_file()),
            stand_in: false,
            _lock: None,
        }
    }

    /// Claims `default` for this run, or, when another run holds it, a stand-in beside
    /// it. `need_default` (for `--restore`, which resumes what is on the default disk)
    /// turns a held default disk into an error instead.
    pub fn default_disk(default: &Path, need_default: bool) -> Result<Self> {
        let lock_path = lock_path(default);
        if let Some(dir) = default.parent() {
            std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => Ok(Self {
                path: default.to_path_buf(),
                qemu_file: default.to_path_buf(),
                stand_in: false,
                _lock: Some(lock),
            }),
            Err(std::fs::TryLockError::WouldBlock) if need_default => {
                Err(crate::error::Error::new(format!(
                    "the default snapshot disk {} is in use by another `cargo xtask run`: \
                     wait for that run to end, or give this one its own disk with \
                     --snapshot-disk FILE",
                    default.display()
                )))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let path = stand_in_path(default, std::process::id());
                eprintln!(
                    "xtask: the default snapshot disk {} is in use by another run; this \
                     run keeps its snapshots on {}",
                    default.display(),
                    path.display()
                );
                Ok(Self {
                    qemu_file: path.clone(),
                    path,
                    stand_in: true,
                    _lock: None,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
    }
}

impl Drop for Claim {
    /// Ends the claim after the run: a stand-in that holds no snapshot is deleted; one
    /// that does is kept, and the user is told where. The lock goes with the file.
    fn drop(&mut self) {
        if !self.stand_in {
            return;
        }
        if snapshot_disk::holds_data(&self.path).unwrap_or(false) {
            eprintln!(
                "xtask: this run's snapshots are on {} (the default disk was busy): \
                 restore with --snapshot-disk {} --restore",
                self.path.display(),
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The lock file that guards `disk`.
fn lock_path(disk: &Path) -> PathBuf {
    let mut name = disk.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A stand-in for `default` for process `pid`: `snapshots-PID.img` beside it.
fn stand_in_path(default: &Path, pid: u32) -> PathBuf {
    let stem = default
        .file_stem()
        .map_or_else(|| "snapshots".into(), |stem| stem.to_string_lossy());
    let extension = default
        .extension()
        .map_or_else(String::new, |ext| format!(".{}", ext.to_string_lossy()));
    default.with_file_name(format!("{stem}-{pid}{extension}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::TempDir;

    #[test]
    fn a_held_default_disk_gets_a_stand_in_that_goes_away_unused() {
        let dir = TempDir::new("claim-busy");
        let default = dir.path().join("snapshots.img");
        let first = Claim::default_disk(&default, false).unwrap();
        assert_eq!(first.path, default);
        assert!(!first.stand_in);

        let second = Claim::default_disk(&default, false).unwrap();
        assert!(second.stand_in);
        assert_eq!(
            second.path,
            dir.path()
                .join(format!("snapshots-{}.img", std::process::id()))
        );
        std::fs::File::create(&second.path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let stand_in = second.path.clone();
        drop(second);
        assert!(!stand_in.exists(), "a blank stand-in is deleted");

        let restore = Claim::default_disk(&default, true).unwrap_err().to_string();
        assert!(restore.contains("in use by another"), "{restore}");

        drop(first);
        // Released: the next run gets the default disk again.
        let third = Claim::default_disk(&default, true).unwrap();
        assert!(!third.stand_in);
    }

    #[test]
    fn a_stand_in_with_a_snapshot_is_kept() {
        let dir = TempDir::new("claim-kept");
        let default = dir.path().join("snapshots.img");
        let _first = Claim::default_disk(&default, false).unwrap();
        let second = Claim::default_disk(&default, false).unwrap();
        std::fs::write(&second.path, b"AERIESNAP").unwrap();
        let stand_in = second.path.clone();
        drop(second);
        assert!(stand_in.exists());
    }

    #[test]
    fn stand_in_names() {
        assert_eq!(
            stand_in_path(Path::new("/t/aerie/snapshots.img"), 42),
            Path::new("/t/aerie/snapshots-42.img")
        );
        assert_eq!(lock_path(Path::new("/t/s.img")), Path::new("/t/s.img.lock"));
    }
}
