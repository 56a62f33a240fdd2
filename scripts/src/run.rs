//! `cargo xtask run`: boot Aerie in QEMU with the terminal as its serial console.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitCode};

use crate::cli::RunOptions;
use crate::error::{Context, Result};
use crate::guest::{self, PackedGuest};
use crate::image;
use crate::paths::Layout;
use crate::process;
use crate::qemu::QEMU;
use crate::setup;

/// Size of the snapshot disk attached to QEMU.
const SNAPSHOTS_SIZE: u64 = 256 << 20;

/// The TCP port of QEMU's gdb server with `--gdb`.
const GDB_PORT: u16 = 1234;

/// Runs `cargo xtask run`; the exit code is QEMU's.
pub fn run(layout: &Layout, options: &RunOptions) -> Result<ExitCode> {
    setup::ensure_qemu()?;
    let built = image::build(layout, options.profile)?;
    let snapshots = layout.snapshots_disk();
    ensure_sparse_disk(&snapshots, SNAPSHOTS_SIZE)?;

    let guest = match &options.kernel {
        Some(kernel) if !options.no_guest => Some(guest::pack(
            kernel,
            options.initrd.as_deref(),
            options.append.as_deref(),
            &layout.aerie_dir().join("guest.cpio"),
        )?),
        _ => None,
    };
    let mut qemu = Command::new(QEMU);
    qemu.args(qemu_args(options, &built.image, &snapshots, guest.as_ref()));
    if options.gdb {
        let elf = std::path::absolute(&built.elf).unwrap_or(built.elf);
        println!(
            "{}",
            gdb_hint(&elf, process::find_on_path("gdb-multiarch").is_some())
        );
    }
    let status = qemu.status().context(|| format!("cannot start {QEMU}"))?;
    Ok(ExitCode::from(exit_byte(status)))
}

/// RAM Aerie needs beside the guest's: QEMU loads the bundle 128 MiB into RAM, and
/// Aerie keeps its image, heap and page tables.
const AERIE_SHARE_MIB: u64 = 160;

/// The machine's RAM in MiB: with a guest, `--mem` is the guest's and Aerie's share
/// and the bundle come on top.
pub fn machine_mem_mib(options: &RunOptions, guest: Option<&PackedGuest>) -> u64 {
    match guest {
        Some(guest) => options.mem_mib + AERIE_SHARE_MIB + guest.size.div_ceil(1 << 20),
        None => options.mem_mib,
    }
}

/// QEMU's arguments for `options`, booting `image` with `snapshots` as a virtio disk
/// and `guest` (if any) as the initrd.
pub fn qemu_args(
    options: &RunOptions,
    image: &Path,
    snapshots: &Path,
    guest: Option<&PackedGuest>,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-M".into(),
        format!(
            "virt,virtualization=on,gic-version={}",
            options.gic.version()
        ),
        "-cpu".into(),
        options.cpu.clone(),
        "-smp".into(),
        options.smp.to_string(),
        "-m".into(),
        format!("{}M", machine_mem_mib(options, guest)),
        "-nographic".into(),
        "-kernel".into(),
        image.display().to_string(),
        "-semihosting-config".into(),
        "enable=on,target=native".into(),
        "-drive".into(),
        format!(
            "file={},if=none,format=raw,id=snapshots",
            qemu_escape(&snapshots.display().to_string())
        ),
        "-device".into(),
        "virtio-blk-device,drive=snapshots".into(),
    ];
    if let Some(guest) = guest {
        args.extend([
            "-initrd".into(),
            guest.bundle.display().to_string(),
            "-append".into(),
            format!(
                "aerie.guest.mem={}M aerie.guest.smp={}",
                options.mem_mib, options.smp
            ),
        ]);
    }
    if options.gdb {
        args.extend(["-S".into(), "-gdb".into(), format!("tcp::{GDB_PORT}")]);
    }
    args
}

/// Doubles commas, QEMU's escape inside an option value.
fn qemu_escape(value: &str) -> String {
    value.replace(',', ",,")
}

/// What to print before QEMU waits for a debugger.
pub fn gdb_hint(elf: &Path, have_gdb: bool) -> String {
    let mut gdb = Command::new("gdb-multiarch");
    gdb.arg("-q")
        .arg(elf)
        .args(["-ex", &format!("target remote localhost:{GDB_PORT}")]);
    let mut hint = format!(
        "gdb: QEMU waits for a debugger on localhost:{GDB_PORT}; attach with:\n  {}",
        process::display(&gdb)
    );
    if !have_gdb {
        hint.push_str(
            "\ngdb: gdb-multiarch is not on PATH; install it with: apt-get install gdb-multiarch",
        );
    }
    hint
}

/// Creates `path` as a sparse file of `size` bytes unless it exists.
pub fn ensure_sparse_disk(path: &Path, size: u64) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = File::create(path).context(|| format!("cannot create {}", path.display()))?;
    file.set_len(size)
        .context(|| format!("cannot size {}", path.display()))
}

/// The exit code to pass on for QEMU's status: its own code, or 128 + signal.
fn exit_byte(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Gic;

    #[test]
    fn default_command_line() {
        let args = qemu_args(
            &RunOptions::default(),
            Path::new("/t/aerie/aerie.bin"),
            Path::new("/t/aerie/snapshots.img"),
            None,
        );
        assert_eq!(
            args.join(" "),
            "-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 2 -m 1024M \
             -nographic -kernel /t/aerie/aerie.bin -semihosting-config enable=on,target=native \
             -drive file=/t/aerie/snapshots.img,if=none,format=raw,id=snapshots \
             -device virtio-blk-device,drive=snapshots"
        );
    }

    #[test]
    fn options_reach_the_command_line() {
        let options = RunOptions {
            smp: 8,
            mem_mib: 512,
            cpu: "max".into(),
            gic: Gic::V2,
            gdb: true,
            ..RunOptions::default()
        };
        let args = qemu_args(&options, Path::new("/i"), Path::new("/a,b/s.img"), None).join(" ");
        assert!(
            args.starts_with("-M virt,virtualization=on,gic-version=2 -cpu max -smp 8 -m 512M")
        );
        assert!(args.contains("file=/a,,b/s.img,if=none"));
        assert!(args.ends_with(" -S -gdb tcp::1234"));
    }

    #[test]
    fn a_guest_gets_its_memory_and_the_bundle() {
        let guest = PackedGuest {
            bundle: "/t/guest.cpio".into(),
            size: 30 << 20,
        };
        let options = RunOptions {
            mem_mib: 512,
            smp: 2,
            ..RunOptions::default()
        };
        let args = qemu_args(&options, Path::new("/i"), Path::new("/s"), Some(&guest)).join(" ");
        assert!(args.contains("-m 702M"), "{args}");
        assert!(
            args.contains("-initrd /t/guest.cpio -append aerie.guest.mem=512M aerie.guest.smp=2")
        );
    }

    #[test]
    fn gdb_hint_gives_the_exact_command() {
        let hint = gdb_hint(Path::new("/w/target/aerie"), true);
        assert!(
            hint.contains("gdb-multiarch -q /w/target/aerie -ex 'target remote localhost:1234'")
        );
        assert!(!hint.contains("apt-get"));
        assert!(
            gdb_hint(Path::new("/e"), false)
                .contains("install it with: apt-get install gdb-multiarch")
        );
    }

    #[test]
    fn sparse_disk_is_created_once() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-{}", std::process::id()));
        let disk = dir.join("d.img");
        ensure_sparse_disk(&disk, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
        std::fs::write(&disk, b"kept").unwrap();
        ensure_sparse_disk(&disk, 1 << 20).unwrap();
        assert_eq!(std::fs::read(&disk).unwrap(), b"kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
