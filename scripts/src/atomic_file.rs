//! Writing files that another run may be reading at the same moment.
//!
//! Several `cargo xtask run` may go on at once (the integration tests run two at a
//! time; a user may start two machines), and each one rewrites shared outputs such as
//! `target/aerie/aerie.bin`. A plain `std::fs::write` truncates the file first, so a
//! QEMU starting in another run can load a half-written image and hang before Aerie
//! prints anything. Here a file is written beside its final name and renamed into
//! place: a reader opens the old file or the new one, never a part of either, and a
//! file whose content did not change is not touched at all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Context, Result};

/// What [`write_if_changed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file already held exactly these bytes; it was left alone.
    Unchanged,
    /// The file was created or replaced.
    Replaced,
}

/// Writes `bytes` to `path` unless it holds them already; see [`write`].
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<Written> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(Written::Unchanged);
    }
    write(path, bytes)?;
    Ok(Written::Replaced)
}

/// Writes `bytes` to a new file beside `path` and renames it to `path` (creating the
/// directory when missing), so that readers see the old content or the new, whole.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = temporary_name(path);
    let written = std::fs::write(&temporary, bytes)
        .context(|| format!("cannot write {}", temporary.display()))
        .and_then(|()| {
            std::fs::rename(&temporary, path)
                .context(|| format!("cannot rename {} into place", temporary.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Copies `from` to `to` with [`write_if_changed`].
pub fn copy_if_changed(from: &Path, to: &Path) -> Result<Written> {
    let bytes = std::fs::read(from).context(|| format!("cannot read {}", from.display()))?;
    write_if_changed(to, &bytes)
}

/// Creates `path` as a sparse file of `size` bytes unless it exists; returns whether
/// this call created it. The file appears with its full size at once (made beside it,
/// then linked into place, which fails when another run got there first), so a QEMU
/// in another run never opens a file that is still being sized.
pub fn create_sparse(path: &Path, size: u64) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = temporary_name(path);
    let made = std::fs::File::create(&temporary)
        .and_then(|file| file.set_len(size))
        .context(|| format!("cannot create {}", temporary.display()));
    let linked = made.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).context(|| format!("cannot create {}", path.display())),
    });
    let _ = std::fs::remove_file(&temporary);
    linked
}

/// A name beside `path` that no other process, and no other thread of this one, uses:
/// `NAME.tmp-PID-N`.
fn temporary_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::TempDir;

    #[test]
    fn a_new_file_is_written_and_an_unchanged_one_left_alone() {
        let dir = TempDir::new("atomic-unchanged");
        let path = dir.path().join("sub/a.bin");
        assert_eq!(write_if_changed(&path, b"one").unwrap(), Written::Replaced);
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write_if_changed(&path, b"one").unwrap(), Written::Unchanged);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        assert_eq!(write_if_changed(&path, b"two").unwrap(), Written::Replaced);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn no_temporary_file_is_left_behind() {
        let dir = TempDir::new("atomic-clean");
        write(&dir.path().join("a"), b"x").unwrap();
        write(&dir.path().join("a"), b"y").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn sparse_files_are_created_once_with_their_size() {
        let dir = TempDir::new("atomic-sparse");
        let path = dir.path().join("disk.img");
        assert!(create_sparse(&path, 1 << 20).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        std::fs::write(&path, b"data").unwrap();
        assert!(!create_sparse(&path, 1 << 20).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// The race this module exists for: a reader that opens the file while writers
    /// replace it sees one whole version, never a truncated or mixed one.
    #[test]
    fn readers_never_see_a_partial_file() {
        let dir = TempDir::new("atomic-race");
        let path = dir.path().join("image");
        let versions: Vec<Vec<u8>> = (0..4u8).map(|v| vec![v; 256 << 10]).collect();
        write(&path, &versions[0]).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for writer in 0..2 {
                let (path, versions, stop) = (&path, &versions, &stop);
                scope.spawn(move || {
                    let mut n = writer;
                    while !stop.load(Ordering::Relaxed) {
                        write(path, &versions[n % versions.len()]).unwrap();
                        n += 1;
                    }
                });
            }
            for _ in 0..300 {
                let seen = std::fs::read(&path).unwrap();
                assert!(
                    versions.contains(&seen),
                    "a reader saw {} bytes that are no whole version",
                    seen.len()
                );
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}
