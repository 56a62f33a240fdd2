//! Firmware guests as a user boots them: `cargo xtask run --bios u-boot` starts
//! Debian's U-Boot for QEMU `virt` under Aerie (code run in place from flash bank 0,
//! its environment in flash bank 1, backed by a variable store image), and U-Boot
//! boots the default Linux guest from a virtio disk with `booti`;
//! `cargo xtask run --bios edk2` starts Debian's EDK2 (UEFI), whose shell boots the
//! same kernel, an EFI application, with its initrd from the EFI system partition
//! of a GPT disk.
//!
//! One session per firmware does everything, to keep the suite quick: it saves a
//! setting, boots Linux to its shell; a second, short session finds the setting.
//! `cargo xtask test` fetches the firmware package before the tests; if that failed,
//! `xtask run` fails here with what to install.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aerie_tests::console_session::ConsoleSession;

/// How long U-Boot may take to reach its prompt (Aerie's boot included).
const TO_PROMPT: Duration = Duration::from_secs(120);
/// How long one U-Boot command may take (reading 35 MiB from the disk included).
const COMMAND: Duration = Duration::from_secs(60);
/// How long Linux may take from `booti` to its shell.
const TO_SHELL: Duration = Duration::from_secs(180);
/// U-Boot's prompt.
const PROMPT: &str = "=> ";
/// Where U-Boot loads the kernel and the initrd (RAM starts at 0x4000_0000; the
/// device tree is at its start, U-Boot itself at its end).
const KERNEL_ADDRESS: u64 = 0x4040_0000;
const INITRD_ADDRESS: u64 = 0x4800_0000;
/// The disk's sector size.
const SECTOR: u64 = 512;
/// Where the initrd starts on the disk: the kernel's size rounded up to this.
const DISK_ALIGN: u64 = 1 << 20;

/// The default guest's files (`cargo xtask test` fetches them before the tests).
fn default_guest_file(name: &str) -> PathBuf {
    let path = aerie_tests::paths::target_dir()
        .join("aerie/guest")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: the default guest is fetched by `cargo xtask test` (or \
         `cargo xtask run`) before this test",
        path.display()
    );
    path
}

/// The UEFI shell's prompt.
const SHELL_PROMPT: &str = "Shell> ";

/// A raw disk holding the default guest's kernel at sector 0 and its initramfs at
/// the next 1 MiB boundary: what U-Boot's `virtio read` loads without a filesystem.
struct BootDisk {
    path: PathBuf,
    kernel_size: u64,
    initrd_start: u64,
    initrd_size: u64,
}

impl BootDisk {
    fn build(dir: &Path) -> Self {
        let read = |name| {
            let path = default_guest_file(name);
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        };
        let kernel = read("vmlinuz");
        let initrd = read("initramfs.cpio");
        let initrd_start = (kernel.len() as u64).next_multiple_of(DISK_ALIGN);
        let mut disk = kernel.clone();
        disk.resize(initrd_start as usize, 0);
        disk.extend_from_slice(&initrd);
        disk.resize(disk.len().next_multiple_of(DISK_ALIGN as usize), 0);
        let path = dir.join("boot-disk.img");
        std::fs::write(&path, &disk).expect("the test's directory is writable");
        Self {
            path,
            kernel_size: kernel.len() as u64,
            initrd_start,
            initrd_size: initrd.len() as u64,
        }
    }

    /// The U-Boot commands that load the kernel and initrd and boot them.
    fn uboot_commands(&self) -> [String; 4] {
        let sectors = |bytes: u64| bytes.div_ceil(SECTOR);
        [
            format!(
                "virtio read {KERNEL_ADDRESS:x} 0 {:x}",
                sectors(self.kernel_size)
            ),
            format!(
                "virtio read {INITRD_ADDRESS:x} {:x} {:x}",
                self.initrd_start / SECTOR,
                sectors(self.initrd_size)
            ),
            "setenv bootargs console=ttyAMA0 rdinit=/init".to_string(),
            format!(
                "booti {KERNEL_ADDRESS:x} {INITRD_ADDRESS:x}:{:x} ${{fdtcontroladdr}}",
                self.initrd_size
            ),
        ]
    }
}

/// Starts `cargo xtask run --bios BIOS` (2 vCPUs, 512 MiB) with the variable store
/// `vars`, a fresh snapshot disk and `extra` arguments.
fn firmware_session(bios: &str, vars: &Path, extra: &[&str]) -> ConsoleSession {
    firmware_session_with(bios, vars, &aerie_tests::paths::snapshot_disk(), extra)
}

/// [`firmware_session`] with the snapshot disk `snapshots`.
fn firmware_session_with(
    bios: &str,
    vars: &Path,
    snapshots: &Path,
    extra: &[&str],
) -> ConsoleSession {
    let mut args = vec![
        "--bios",
        bios,
        "--mem",
        "512M",
        "--smp",
        "2",
        "--flash-vars",
        vars.to_str().expect("a UTF-8 path"),
        "--snapshot-disk",
        snapshots.to_str().expect("a UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    ConsoleSession::start(&args)
}

/// Starts `cargo xtask run --bios u-boot` with the variable store `vars` and
/// `extra` arguments, and stops autoboot at the prompt.
fn uboot_prompt(vars: &Path, extra: &[&str]) -> ConsoleSession {
    uboot_prompt_with(vars, &aerie_tests::paths::snapshot_disk(), extra)
}

/// [`uboot_prompt`] with the snapshot disk `snapshots`.
fn uboot_prompt_with(vars: &Path, snapshots: &Path, extra: &[&str]) -> ConsoleSession {
    let mut session = firmware_session_with("u-boot", vars, snapshots, extra);
    session.expect("Hit any key to stop autoboot", TO_PROMPT);
    session.type_keys("\r");
    session.expect(PROMPT, COMMAND);
    session
}

/// Takes a snapshot at Aerie's console (Ctrl-A c, `snapshot quit`) and waits for the
/// run to end.
fn snapshot_and_quit(mut session: ConsoleSession) {
    session.type_keys("\x01c");
    session.expect("aerie> ", COMMAND);
    session.type_keys("snapshot quit\r");
    session.expect("saved in slot", COMMAND);
    session.expect_exit(COMMAND);
    println!("{}", session.transcript());
    session.stop();
}

/// Types `command` at U-Boot's prompt and waits for `answer`, then the prompt.
fn uboot(session: &mut ConsoleSession, command: &str, answer: &str) {
    session.type_keys(&format!("{command}\r"));
    session.expect(answer, COMMAND);
    session.expect(PROMPT, COMMAND);
}

#[test]
fn uboot_keeps_its_environment_and_boots_linux_from_a_virtio_disk() {
    let dir = aerie_tests::paths::test_tmp_dir();
    let vars = dir.join("uboot-vars.img");
    let disk = BootDisk::build(&dir);
    let disk_path = disk.path.to_str().expect("a UTF-8 path").to_string();

    let mut session = uboot_prompt(&vars, &["--disk", &disk_path]);
    // The environment lives in flash bank 1: erase and program through the CFI model.
    uboot(&mut session, "setenv aerie_kept 6x7", "");
    uboot(&mut session, "saveenv", "OK");
    // Bank 0 answers CFI queries like QEMU virt's flash.
    uboot(
        &mut session,
        "flinfo",
        "Intel Extended command set, Manufacturer ID: 0x89",
    );
    uboot(&mut session, "virtio scan", "");
    uboot(&mut session, "virtio info", "Device 0");
    let [kernel, initrd, bootargs, booti] = disk.uboot_commands();
    uboot(&mut session, &kernel, "blocks read: OK");
    uboot(&mut session, &initrd, "blocks read: OK");
    uboot(&mut session, &bootargs, "");
    session.type_keys(&format!("{booti}\r"));
    session.expect("Starting kernel", COMMAND);
    session.expect("Machine model: Aerie virtual machine", TO_SHELL);
    session.expect("aerie-guest: ready", TO_SHELL);
    std::thread::sleep(Duration::from_secs(1));
    session.type_keys("echo booted-by-uboot-$((6*7))\r");
    session.expect("booted-by-uboot-42", COMMAND);
    println!("{}", session.transcript());
    session.stop();

    // A second boot of U-Boot finds the saved setting in the variable store.
    let mut session = uboot_prompt(&vars, &[]);
    uboot(&mut session, "printenv aerie_kept", "aerie_kept=6x7");
    println!("{}", session.transcript());
    session.stop();
}

#[test]
fn edk2_keeps_its_variables_and_boots_linux_from_the_efi_system_partition_of_a_gpt_disk() {
    use aerie_tests::efi_disk::{File, gpt_with_esp};
    let dir = aerie_tests::paths::test_tmp_dir();
    let read = |name| {
        let path = default_guest_file(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    };
    let (kernel, initrd) = (read("vmlinuz"), read("initramfs.cpio"));
    let disk = gpt_with_esp(&[
        File {
            name: "LINUX.EFI",
            bytes: &kernel,
        },
        File {
            name: "INITRD.IMG",
            bytes: &initrd,
        },
    ]);
    let disk_path = dir.join("esp-disk.img");
    std::fs::write(&disk_path, &disk).expect("the test's directory is writable");
    let vars = dir.join("edk2-vars.img");
    let mut session = firmware_session(
        "edk2",
        &vars,
        &["--disk", disk_path.to_str().expect("a UTF-8 path")],
    );
    session.expect("UEFI firmware", TO_PROMPT);
    // The shell maps the partition's file system as FS0.
    session.expect("FS0:", TO_PROMPT);
    session.expect(SHELL_PROMPT, TO_PROMPT);
    // A non-volatile shell variable is a UEFI variable: written to flash bank 1.
    session.type_keys("set aerie_kept 6x7\r");
    session.expect(SHELL_PROMPT, COMMAND);
    session.type_keys("fs0:\\LINUX.EFI initrd=\\INITRD.IMG rdinit=/init console=ttyAMA0\r");
    session.expect("EFI stub: ", COMMAND);
    session.expect("Machine model: Aerie virtual machine", TO_SHELL);
    session.expect("aerie-guest: ready", TO_SHELL);
    std::thread::sleep(Duration::from_secs(1));
    session.type_keys("echo booted-by-edk2-$((6*7))\r");
    session.expect("booted-by-edk2-42", COMMAND);
    println!("{}", session.transcript());
    session.stop();

    // A second boot of EDK2 finds the variable in the variable store.
    let mut session = firmware_session("edk2", &vars, &[]);
    session.expect(SHELL_PROMPT, TO_PROMPT);
    session.type_keys("set\r");
    session.expect("aerie_kept = 6x7", COMMAND);
    println!("{}", session.transcript());
    session.stop();
}

#[test]
fn a_snapshot_of_uboot_resumes_at_its_prompt_with_its_environment() {
    let dir = aerie_tests::paths::test_tmp_dir();
    let vars = dir.join("snapshot-vars.img");
    let snapshots = aerie_tests::paths::snapshot_disk();

    let mut session = uboot_prompt_with(&vars, &snapshots, &[]);
    // Only in RAM: the snapshot must carry it.
    uboot(&mut session, "setenv aerie_snapped 6x7", "");
    snapshot_and_quit(session);

    // Restored in a new QEMU: the same prompt, the unsaved setting, working flash.
    let mut session = firmware_session_with("u-boot", &vars, &snapshots, &["--restore"]);
    session.expect("resuming the guest", TO_PROMPT);
    session.type_keys("\r");
    session.expect(PROMPT, COMMAND);
    uboot(&mut session, "printenv aerie_snapped", "aerie_snapped=6x7");
    uboot(
        &mut session,
        "flinfo",
        "Intel Extended command set, Manufacturer ID: 0x89",
    );
    uboot(&mut session, "setenv aerie_after 42", "");
    uboot(&mut session, "saveenv", "OK");
    println!("{}", session.transcript());
    session.stop();

    // The variable store written after the restore is what U-Boot boots with.
    let mut session = uboot_prompt(&vars, &[]);
    uboot(&mut session, "printenv aerie_after", "aerie_after=42");
    uboot(&mut session, "printenv aerie_snapped", "aerie_snapped=6x7");
    println!("{}", session.transcript());
    session.stop();
}

#[test]
fn a_snapshot_of_edk2_resumes_at_its_shell_with_its_volatile_variable() {
    let dir = aerie_tests::paths::test_tmp_dir();
    let vars = dir.join("edk2-snapshot-vars.img");
    let snapshots = aerie_tests::paths::snapshot_disk();

    let mut session = firmware_session_with("edk2", &vars, &snapshots, &[]);
    session.expect(SHELL_PROMPT, TO_PROMPT);
    // A volatile shell variable lives in RAM only: the snapshot must carry it.
    session.type_keys("set -v aerie_snapped 6x7\r");
    session.expect(SHELL_PROMPT, COMMAND);
    snapshot_and_quit(session);

    // Restored in a new QEMU: the shell answers, with the variable, and writes flash.
    let mut session = firmware_session_with("edk2", &vars, &snapshots, &["--restore"]);
    session.expect("resuming the guest", TO_PROMPT);
    session.type_keys("\r");
    session.expect(SHELL_PROMPT, COMMAND);
    session.type_keys("echo %aerie_snapped%-restored\r");
    session.expect("6x7-restored", COMMAND);
    session.expect(SHELL_PROMPT, COMMAND);
    session.type_keys("set aerie_after 42\r");
    session.expect(SHELL_PROMPT, COMMAND);
    println!("{}", session.transcript());
    session.stop();

    // The non-volatile variable written after the restore is in the store.
    let mut session = firmware_session("edk2", &vars, &[]);
    session.expect(SHELL_PROMPT, TO_PROMPT);
    session.type_keys("set\r");
    session.expect("aerie_after = 42", COMMAND);
    println!("{}", session.transcript());
    session.stop();
}
