//! The default guest's initramfs: a statically linked busybox and an `/init` script
//! that mounts the kernel's file systems, says it is ready and runs an interactive
//! shell on the console, powering off when the shell exits.
//!
//! | path | what |
//! |---|---|
//! | `/init` | [`init_script`] (the kernel runs it: `rdinit=/init`) |
//! | `/bin/busybox` | Debian's `busybox-static` for arm64 |
//! | `/bin/sh` | a link to busybox (the other applets are linked at boot) |
//! | `/dev/console` | character device 5:1, the console the kernel opens for `/init` |
//! | `/proc`, `/sys`, `/dev`, `/tmp`, `/root`, ... | empty directories |

use crate::error::{Context, Result};
use aerie_hyp::bundle::{Archive, ArchiveError};

/// The line `/init` prints once the guest's shell is about to start. `cargo xtask
/// run --exec` waits for it before typing.
pub const READY_MARKER: &str = "aerie-guest: ready";

/// The guest's host name (shown in the shell prompt).
pub const HOSTNAME: &str = "aerie-guest";

/// The directories of the initramfs, parents first, with their permissions.
const DIRECTORIES: [(&str, u32); 13] = [
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("mnt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("sbin", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
];

/// The console's device number (Linux `Documentation/admin-guide/devices.txt`:
/// major 5, minor 1 is `/dev/console`).
const CONSOLE_DEVICE: (u32, u32) = (5, 1);

/// Kernel modules the initramfs carries and `/init` loads, in load order: Debian's
/// arm64 kernel builds the virtio drivers as modules (the transport first).
pub const MODULES: [&str; 4] = ["virtio_mmio", "virtio_blk", "virtio_console", "virtio-rng"];

/// The `/init` script. Its steps:
///
/// 1. mount `/proc` (busybox finds itself through `/proc/self/exe`), then link every
///    busybox applet into `/bin`, `/sbin`, `/usr/bin` and `/usr/sbin`;
/// 2. mount `/sys`, `/dev` (devtmpfs) and `/dev/pts`, and load [`MODULES`] (so that
///    virtio disks appear as `/dev/vda`...);
/// 3. print [`READY_MARKER`];
/// 4. run `sh` in a new session with the console as its controlling terminal
///    (`setsid cttyhack`), so job control and Ctrl-C work;
/// 5. power off at once (`poweroff -f`) when the shell exits: `/init` must not end,
///    or the kernel panics.
pub fn init_script() -> String {
    format!(
        "#!/bin/busybox sh\n\
         # The default guest of `cargo xtask run` (written by scripts/src/initramfs.rs).\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox --install -s\n\
         export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root PS1='\\h:\\w\\$ '\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mkdir -p /dev/pts\n\
         mount -t devpts devpts /dev/pts\n\
         for module in {modules}; do insmod /lib/modules/$module.ko 2>/dev/null; done\n\
         hostname {HOSTNAME}\n\
         cd /root\n\
         echo '{READY_MARKER}'\n\
         setsid cttyhack sh\n\
         poweroff -f\n",
        modules = MODULES.join(" ")
    )
}

/// Builds the initramfs (an uncompressed newc cpio archive) around `busybox`, the
/// bytes of a statically linked arm64 busybox.
pub fn build(busybox: &[u8], modules: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    archive(busybox, modules).context(|| "cannot build the default guest's initramfs")
}

fn archive(
    busybox: &[u8],
    modules: &[(&str, Vec<u8>)],
) -> std::result::Result<Vec<u8>, ArchiveError> {
    let mut archive = Archive::new();
    for (dir, permissions) in DIRECTORIES {
        archive.dir(dir, permissions)?;
    }
    archive.dir("lib", 0o755)?.dir("lib/modules", 0o755)?;
    for (name, bytes) in modules {
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, bytes)?;
    }
    let (major, minor) = CONSOLE_DEVICE;
    archive
        .char_device("dev/console", 0o600, major, minor)?
        .file("bin/busybox", 0o755, busybox)?
        .symlink("bin/sh", "busybox")?
        .file("init", 0o755, init_script().as_bytes())?;
    Ok(archive.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the init script, without comments.
    fn commands() -> Vec<String> {
        init_script()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    fn position(commands: &[String], prefix: &str) -> usize {
        commands
            .iter()
            .position(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{}", init_script()))
    }

    #[test]
    fn init_runs_busybox_and_mounts_before_it_is_ready() {
        let script = init_script();
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        let commands = commands();
        let proc = position(&commands, "/bin/busybox mount -t proc proc /proc");
        let install = position(&commands, "/bin/busybox --install -s");
        let sys = position(&commands, "mount -t sysfs sysfs /sys");
        let dev = position(&commands, "mount -t devtmpfs devtmpfs /dev");
        let ready = position(&commands, "echo 'aerie-guest: ready'");
        let shell = position(&commands, "setsid cttyhack sh");
        let off = position(&commands, "poweroff -f");
        assert!(proc < install && install < sys && sys < dev && dev < ready);
        assert!(ready < shell && shell < off);
        assert_eq!(off, commands.len() - 1, "nothing may follow the power-off");
    }

    #[test]
    fn the_marker_is_printed_as_is() {
        assert!(init_script().contains(&format!("echo '{READY_MARKER}'\n")));
        // The shell would expand these inside the quotes.
        assert!(!READY_MARKER.contains(['\'', '\\', '\n']));
    }

    /// Reads a newc archive back: (name, mode, rdev major, rdev minor, data) per
    /// entry, restating the header layout of cpio(5).
    fn entries(bytes: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let field = |at: usize, index: usize| {
            let start = at + 6 + index * 8;
            let digits = std::str::from_utf8(&bytes[start..start + 8]).unwrap();
            u32::from_str_radix(digits, 16).unwrap()
        };
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&bytes[at..at + 6], b"070701");
            let (mode, size, rmajor, rminor, name_size) = (
                field(at, 1),
                field(at, 6) as usize,
                field(at, 9),
                field(at, 10),
                field(at, 11) as usize,
            );
            let name_start = at + 110;
            let name = std::str::from_utf8(&bytes[name_start..name_start + name_size - 1])
                .unwrap()
                .to_string();
            let data_start = (name_start + name_size).next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            at = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(at, bytes.len());
                return out;
            }
            out.push((name, mode, rmajor, rminor, data));
        }
    }

    #[test]
    fn the_archive_holds_busybox_init_and_the_console() {
        let archive = build(b"\x7fELF busybox", &[("virtio_blk", b"module".to_vec())]).unwrap();
        let entries = entries(&archive);
        let find = |name: &str| {
            entries
                .iter()
                .find(|entry| entry.0 == name)
                .unwrap_or_else(|| panic!("no {name} in the initramfs"))
        };
        assert_eq!(find("bin/busybox").1, 0o100_755);
        assert_eq!(find("bin/busybox").4, b"\x7fELF busybox");
        assert_eq!(find("init").1, 0o100_755);
        assert_eq!(find("init").4, init_script().as_bytes());
        assert_eq!(find("bin/sh").1, 0o120_777);
        assert_eq!(find("bin/sh").4, b"busybox");
        let console = find("dev/console");
        assert_eq!((console.1, console.2, console.3), (0o020_600, 5, 1));
        assert_eq!(find("tmp").1, 0o041_777);
        for dir in ["proc", "sys", "dev", "usr/bin", "usr/sbin", "sbin"] {
            assert_eq!(find(dir).1 & 0o170_000, 0o040_000, "{dir}");
        }
        // Every parent directory comes before what it holds.
        for (index, (name, ..)) in entries.iter().enumerate() {
            if let Some((parent, _)) = name.rsplit_once('/') {
                let parent_index = entries.iter().position(|e| e.0 == parent).unwrap();
                assert!(parent_index < index, "{parent} after {name}");
            }
        }
    }

    #[test]
    fn the_archive_is_deterministic() {
        assert_eq!(build(b"bb", &[]).unwrap(), build(b"bb", &[]).unwrap());
        assert_ne!(build(b"bb", &[]).unwrap(), build(b"bc", &[]).unwrap());
    }
}
