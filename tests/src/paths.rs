//! Paths the tests use: the image under test, fixtures and per-test temporary files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The path of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests").join("fixtures").join(name)
}

fn from_env(variable: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("{variable} is not set: run the integration tests through `cargo xtask test`"),
    }
}

/// The flat Image under test (`$AERIE_IMAGE`); panics with advice when unset.
pub fn aerie_image() -> PathBuf {
    from_env("AERIE_IMAGE")
}

/// The ELF of the image under test (`$AERIE_ELF`); panics with advice when unset.
pub fn aerie_elf() -> PathBuf {
    from_env("AERIE_ELF")
}

/// Directories already emptied by this process.
static CLEANED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The current test's temporary directory, `target/aerie/test-tmp/<test name>`.
///
/// The name comes from the thread libtest runs the test on. The first call in a test
/// process empties what an earlier run left there; later calls reuse it.
pub fn test_tmp_dir() -> PathBuf {
    let thread = std::thread::current();
    let name = sanitize(thread.name().unwrap_or("unnamed"));
    let dir = target_dir().join("aerie").join("test-tmp").join(name);
    let mut cleaned = CLEANED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cleaned.insert(dir.clone()) && dir.exists() {
        discard(&dir);
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Moves `dir` out of the way under a name of this process's, then deletes it.
///
/// Deleting in place raced: a QEMU or xtask left over from an earlier run (or a
/// second test process) could still be writing into the directory, and
/// `remove_dir_all` then failed with "directory not empty". The rename is atomic,
/// so the test gets a fresh directory whatever happens to the old one; what cannot
/// be deleted of the old one yet is left for a later run to sweep up.
fn discard(dir: &Path) {
    let mut trash = dir.as_os_str().to_owned();
    trash.push(format!(".old-{}", std::process::id()));
    let trash = PathBuf::from(trash);
    match std::fs::rename(dir, &trash) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&trash);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot move {} out of the way: {e}", dir.display()),
    }
    // Earlier runs' leftovers, if any can go now.
    if let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) {
        let prefix = format!("{}.old-", name.to_string_lossy());
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Writes `bytes` to `name` in the current test's temporary directory; returns its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = test_tmp_dir().join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// A test name as a directory name: `module::test` becomes `module__test`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where this test's own snapshot disk goes, for `cargo xtask run --snapshot-disk`
/// (concurrent QEMUs cannot share one: QEMU locks disk images it writes). Nothing is
/// there yet: xtask creates the file, sized for the guest's RAM.
pub fn snapshot_disk() -> PathBuf {
    let path = test_tmp_dir().join("snapshots.img");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", path.display()),
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_in_tests_fixtures() {
        assert!(fixture("x.dtb").ends_with("tests/fixtures/x.dtb"));
        assert!(workspace_root().join("Cargo.toml").is_file());
    }

    #[test]
    fn test_dirs_are_named_after_the_test_and_emptied_once() {
        let dir = test_tmp_dir();
        assert!(dir.ends_with(
            "aerie/test-tmp/paths__tests__test_dirs_are_named_after_the_test_and_emptied_once"
        ));
        let file = temp_file("a.bin", b"x");
        assert_eq!(test_tmp_dir(), dir);
        assert_eq!(std::fs::read(file).unwrap(), b"x");
    }

    #[test]
    fn a_directory_in_use_is_replaced_by_a_fresh_one() {
        let dir = target_dir()
            .join("aerie")
            .join("test-tmp")
            .join(format!("paths-discard-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("deep/er")).unwrap();
        std::fs::write(dir.join("deep/er/file"), b"x").unwrap();
        // A writer that keeps creating files in the old directory meanwhile.
        let writer_dir = dir.join("deep");
        let writer = std::thread::spawn(move || {
            for n in 0..200 {
                let _ = std::fs::write(writer_dir.join(format!("f{n}")), b"y");
            }
        });
        discard(&dir);
        writer.join().unwrap();
        assert!(!dir.join("deep/er/file").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sanitized_names() {
        assert_eq!(sanitize("dtb::tests::round_trip"), "dtb__tests__round_trip");
        assert_eq!(sanitize("a b/c"), "a_b_c");
    }
}
