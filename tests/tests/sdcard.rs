//! `cargo xtask sdcard` as a user runs it: for each board it writes a folder to copy
//! onto a FAT32 SD card, and the folder holds what the Raspberry Pi firmware needs to
//! start Aerie with its guest. These tests run the xtask tool itself through cargo
//! and read the folder back: Aerie's image header, the guest bundle, `config.txt`,
//! `cmdline.txt`, and every firmware file either present (and, for device trees,
//! well-formed) or named in `README.txt`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aerie_hyp::bundle::Bundle;
use aerie_hyp::image::ImageHeader;
use aerie_tests::DtbEditor;
use aerie_tests::xtask::{XtaskRun, xtask};

/// Held while xtask fetches and writes: the two boards' runs share the download
/// cache and xtask's APT lists.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `cargo xtask sdcard ARGS`, one at a time.
fn xtask_sdcard(args: &[&str]) -> XtaskRun {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut all = vec!["sdcard"];
    all.extend_from_slice(args);
    xtask(&all)
}

/// The `key=value` (and `initramfs FILE followkernel`) lines of a `config.txt` that
/// are switched on, as the firmware reads them.
fn active_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .or_else(|| line.split_once(' '))
                .unwrap_or_else(|| panic!("config.txt line `{line}` is no setting"));
            (key.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
}

/// Checks Aerie's image on the card: a valid arm64 Image header, and the file padded
/// to the header's `image_size`.
fn check_image(dir: &Path, name: &str) {
    let image = read(dir, name);
    let header = ImageHeader::parse(&image)
        .unwrap_or_else(|e| panic!("{name} has no valid arm64 Image header: {e}"));
    assert!(
        image.len() as u64 >= header.image_size,
        "{name} ({} bytes) is shorter than its image_size {:#x}",
        image.len(),
        header.image_size
    );
    let built = std::fs::read(aerie_tests::aerie_image()).expect("the image under test");
    assert_eq!(
        &image[..built.len()],
        &built[..],
        "{name} is not Aerie's image"
    );
}

/// Checks a firmware file: present (and, for a device tree, well-formed and for
/// `compatible`), or named in `README.txt`. Returns whether it is present.
fn check_firmware_file(dir: &Path, name: &str, compatible: Option<&str>) -> bool {
    let path = dir.join(name);
    if path.is_file() {
        if let Some(compatible) = compatible {
            let tree = DtbEditor::from_bytes(&read(dir, name))
                .unwrap_or_else(|e| panic!("{name} is not a device tree: {e}"));
            assert!(
                tree.root().is_compatible(compatible),
                "{name} is not compatible with {compatible}"
            );
        }
        return true;
    }
    let readme = std::fs::read_to_string(dir.join("README.txt"))
        .unwrap_or_else(|_| panic!("{name} is missing and there is no README.txt naming it"));
    assert!(
        readme.contains(&format!("\n{name}\n")) && readme.contains(&format!("boot/{name}")),
        "README.txt does not say where to get {name}:\n{readme}"
    );
    false
}

fn out_dir(name: &str) -> PathBuf {
    aerie_tests::test_tmp_dir().join(name)
}

#[test]
fn a_pi4_folder_boots_aerie_with_the_default_guest() {
    let dir = out_dir("card");
    let run = xtask_sdcard(&["--board", "rpi4", "--out", dir.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(
        run.stdout.contains("Raspberry Pi 4 Model B"),
        "{}",
        run.story()
    );
    assert!(run.stdout.contains("Next:"), "{}", run.story());

    check_image(&dir, "aerie.img");
    let bundle_bytes = read(&dir, "aerie-guest.cpio");
    let bundle = Bundle::parse(&bundle_bytes).expect("the guest bundle parses");
    ImageHeader::parse(bundle.kernel).expect("the guest kernel is an arm64 Image");
    assert!(bundle.initrd.is_some_and(|initrd| !initrd.is_empty()));
    assert!(
        bundle
            .cmdline
            .is_some_and(|line| line.contains("rdinit=/init")),
        "{:?}",
        bundle.cmdline
    );

    let config = String::from_utf8(read(&dir, "config.txt")).unwrap();
    let settings = active_settings(&config);
    for (key, value) in [
        ("arm_64bit", "1"),
        ("kernel", "aerie.img"),
        ("initramfs", "aerie-guest.cpio followkernel"),
        ("enable_uart", "1"),
        ("dtoverlay", "disable-bt"),
        ("enable_gic", "1"),
    ] {
        assert!(
            settings.contains(&(key.to_string(), value.to_string())),
            "config.txt lacks {key}={value}:\n{config}"
        );
    }
    assert_cmdline(
        &read(&dir, "cmdline.txt"),
        "aerie.guest.mem=512M aerie.guest.smp=4",
    );

    let overlay = DtbEditor::from_bytes(&read(&dir, "overlays/disable-bt.dtbo"))
        .expect("the overlay is a device tree");
    assert_eq!(
        overlay.property("/fragment@0", "target-path"),
        Some(&b"/soc/serial@7e215040\0"[..])
    );
    assert_eq!(
        overlay.property("/fragment@1/__overlay__", "status"),
        Some(&b"disabled\0"[..])
    );
    if check_firmware_file(&dir, "start4.elf", None) {
        // The firmware is an ELF file of a couple of MiB.
        assert!(read(&dir, "start4.elf").starts_with(b"\x7fELF"));
    }
    check_firmware_file(&dir, "fixup4.dat", None);
    check_firmware_file(&dir, "bcm2711-rpi-4-b.dtb", Some("brcm,bcm2711"));
}

#[test]
fn a_pi5_folder_carries_the_users_guest_and_options() {
    let guest = aerie_tests::test_guest("poweroff");
    let dir = out_dir("card");
    let run = xtask_sdcard(&[
        "--board",
        "rpi5",
        "--out",
        dir.to_str().unwrap(),
        "--kernel",
        guest.to_str().unwrap(),
        "--append",
        "hello=world",
        "--mem",
        "256M",
        "--smp",
        "2",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.story());
    assert!(run.stdout.contains("Raspberry Pi 5"), "{}", run.story());
    assert!(
        run.stdout.contains("debug UART connector"),
        "{}",
        run.story()
    );

    check_image(&dir, "kernel_2712.img");
    assert!(!dir.join("aerie.img").exists());
    let bundle_bytes = read(&dir, "aerie-guest.cpio");
    let bundle = Bundle::parse(&bundle_bytes).expect("the guest bundle parses");
    assert_eq!(bundle.kernel, std::fs::read(&guest).unwrap().as_slice());
    assert_eq!(bundle.initrd, None);
    assert_eq!(bundle.cmdline, Some("hello=world"));

    let config = String::from_utf8(read(&dir, "config.txt")).unwrap();
    let settings = active_settings(&config);
    assert_eq!(
        settings,
        [
            ("kernel", "kernel_2712.img"),
            ("initramfs", "aerie-guest.cpio followkernel"),
            ("enable_uart", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_cmdline(
        &read(&dir, "cmdline.txt"),
        "aerie.guest.mem=256M aerie.guest.smp=2",
    );
    // The Pi 5's firmware is in its EEPROM: no start*.elf, no Pi 4 overlay.
    assert!(!dir.join("start4.elf").exists() && !dir.join("overlays").exists());
    check_firmware_file(&dir, "bcm2712-rpi-5-b.dtb", Some("brcm,bcm2712"));
}

#[test]
fn bad_options_are_refused_before_anything_is_built() {
    let run = xtask_sdcard(&["--board", "pi3", "--out", "/tmp/x"]);
    assert_eq!(run.code, Some(2), "{}", run.story());
    assert!(
        run.stderr
            .contains("invalid value 'pi3' for '--board <BOARD>'")
            && run.stderr.contains("[possible values: rpi4, rpi5]"),
        "{}",
        run.story()
    );
    let run = xtask_sdcard(&["--board", "rpi5", "--out", "/tmp/x", "--smp", "5"]);
    assert_eq!(run.code, Some(2), "{}", run.story());
    assert!(run.stderr.contains("at most 4 vCPUs"), "{}", run.story());

    let file = aerie_tests::temp_file("not-a-folder", b"x");
    let run = xtask_sdcard(&["--board", "rpi4", "--out", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.story());
    assert!(
        run.stderr.contains("that is a file, not a folder"),
        "{}",
        run.story()
    );
    assert!(
        !run.stderr.contains("image:"),
        "built before refusing: {}",
        run.story()
    );
}

/// Asserts that `cmdline.txt` is `options` and `aerie.time=` with a time from the
/// last minute (the moment the card was written), on one line.
fn assert_cmdline(text: &[u8], options: &str) {
    let text = String::from_utf8_lossy(text);
    let time = text
        .strip_prefix(options)
        .and_then(|rest| rest.strip_prefix(" aerie.time="))
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|seconds| seconds.parse::<i64>().ok());
    let now = aerie_tests::host_seconds();
    assert!(
        time.is_some_and(|written| (now - 60..=now).contains(&written)),
        "cmdline.txt is {text:?}, not {options:?} and the time now ({now})"
    );
}
