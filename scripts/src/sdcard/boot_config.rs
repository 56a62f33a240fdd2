//! The two text files the Raspberry Pi firmware reads from the card: `config.txt`
//! (what to load and how to set up the board) and `cmdline.txt` (the command line it
//! puts in the device tree's `/chosen/bootargs`, where Aerie reads its options).
//!
//! Every key is explained in the file itself, so the card documents its own set-up.
//! Keys are from the firmware's `config.txt` documentation (Raspberry Pi, "config.txt":
//! boot options, `initramfs`, `enable_uart`, `dtoverlay`).

use crate::cli::PiBoard;

/// The guest bundle's name on the card.
pub const GUEST_FILE: &str = "aerie-guest.cpio";

/// The firmware's configuration file.
pub const CONFIG_FILE: &str = "config.txt";

/// The file the firmware reads the command line from.
pub const CMDLINE_FILE: &str = "cmdline.txt";

/// The name Aerie's image gets on the card. The Pi 4 firmware looks for `kernel8.img`
/// by default, so `config.txt` names `aerie.img` with `kernel=`; the Pi 5 firmware
/// looks for `kernel_2712.img` first, and Aerie takes that name (and states it with
/// `kernel=` too).
pub fn kernel_file(board: PiBoard) -> &'static str {
    match board {
        PiBoard::Rpi4 => "aerie.img",
        PiBoard::Rpi5 => "kernel_2712.img",
    }
}

/// One `config.txt` line and the comment above it.
struct Setting {
    /// Why the line is there (one comment line per element).
    why: &'static [&'static str],
    /// The line itself; a leading `#` leaves it switched off.
    line: String,
}

/// The settings of `board`'s `config.txt`, in file order.
fn settings(board: PiBoard) -> Vec<Setting> {
    let kernel = kernel_file(board);
    let mut settings = Vec::new();
    if board == PiBoard::Rpi4 {
        settings.push(Setting {
            why: &["Start the Arm cores in 64-bit (AArch64) state: Aerie is a 64-bit image."],
            line: "arm_64bit=1".to_string(),
        });
    }
    settings.push(Setting {
        why: match board {
            PiBoard::Rpi4 => &[
                "Aerie's image. The firmware places it as its arm64 Image header asks",
                "(2 MiB into RAM), Aerie relocates itself wherever that is, and it is",
                "entered at EL2 with x0 = the device tree.",
            ],
            PiBoard::Rpi5 => &[
                "Aerie's image (kernel_2712.img is also the name the Pi 5 firmware looks",
                "for by default). The firmware places it as its arm64 Image header asks,",
                "Aerie relocates itself wherever that is, and it is entered at EL2 with",
                "x0 = the device tree.",
            ],
        },
        line: format!("kernel={kernel}"),
    });
    settings.push(Setting {
        why: &[
            "The guest bundle (the guest's kernel, initrd and command line), loaded",
            "right after the image and named in the device tree's /chosen",
            "(linux,initrd-start and -end), which is where Aerie looks for its guest.",
        ],
        line: format!("initramfs {GUEST_FILE} followkernel"),
    });
    settings.push(Setting {
        why: match board {
            PiBoard::Rpi4 => &[
                "Turn on the primary UART, 115200 8N1 on GPIO 14 (TXD, pin 8) and 15",
                "(RXD, pin 10): Aerie's console and then the guest's.",
            ],
            PiBoard::Rpi5 => &[
                "Turn on the primary UART: on the Pi 5 the debug UART (uart10) on the",
                "3-pin connector between the HDMI ports, 115200 8N1. The firmware does so",
                "by default; stated because Aerie's and the guest's console is there.",
            ],
        },
        line: "enable_uart=1".to_string(),
    });
    if board == PiBoard::Rpi4 {
        settings.push(Setting {
            why: &[
                "Give the PL011 (UART0, the UART Aerie drives) to GPIO 14/15 and turn",
                "Bluetooth, which otherwise owns it, off. overlays/disable-bt.dtbo on this",
                "card is written by xtask: the same change as the Raspberry Pi overlay of",
                "that name, addressed by node paths, so that it also applies to Debian's",
                "device tree (built without the symbols the original overlay needs).",
            ],
            line: "dtoverlay=disable-bt".to_string(),
        });
        settings.push(Setting {
            why: &[
                "Route interrupts through the GIC-400 rather than the legacy interrupt",
                "controller (the Pi 4 default; stated because Aerie needs it).",
            ],
            line: "enable_gic=1".to_string(),
        });
    }
    settings.push(Setting {
        why: &[
            "The firmware's own boot log on the same UART, for a board that stays",
            "silent: remove the '#' to see how far the firmware gets.",
        ],
        line: "#uart_2ndstage=1".to_string(),
    });
    settings
}

/// The text of `board`'s `config.txt`.
pub fn config_txt(board: PiBoard) -> String {
    let mut text = format!(
        "# config.txt for Aerie on a {model}, written by\n\
         # `cargo xtask sdcard --board {name}`. The firmware reads it at power-on.\n",
        model = board.model(),
        name = board.name()
    );
    for setting in settings(board) {
        text.push('\n');
        for line in setting.why {
            text.push_str("# ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&setting.line);
        text.push('\n');
    }
    text
}

/// The text of `cmdline.txt`: Aerie's options for its guest (see
/// `aerie_hyp::bootargs`), on one line as the firmware wants it. `written_at` (seconds
/// since 1970) becomes `aerie.time=`: the boards have no RTC Aerie reads, so the
/// guest's clock starts from when the card was written (like Debian's
/// fake-hwclock), not from 1970.
pub fn cmdline_txt(mem_mib: u64, smp: u32, written_at: u64) -> String {
    format!("aerie.guest.mem={mem_mib}M aerie.guest.smp={smp} aerie.time={written_at}\n")
}

/// The settings of a `config.txt` that are switched on, as `(key, value)` in file
/// order: `key=value` lines, and `initramfs FILE followkernel` as
/// `("initramfs", "FILE followkernel")`. Comments and blank lines are skipped.
pub fn active_settings(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            line.split_once('=')
                .or_else(|| line.split_once(' '))
                .map(|(key, value)| (key.trim(), value.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi4_config_has_every_key_the_board_needs() {
        let text = config_txt(PiBoard::Rpi4);
        assert_eq!(
            active_settings(&text),
            [
                ("arm_64bit", "1"),
                ("kernel", "aerie.img"),
                ("initramfs", "aerie-guest.cpio followkernel"),
                ("enable_uart", "1"),
                ("dtoverlay", "disable-bt"),
                ("enable_gic", "1"),
            ]
        );
        assert!(text.starts_with("# config.txt for Aerie on a Raspberry Pi 4 Model B"));
        assert!(text.contains("\n#uart_2ndstage=1\n"), "{text}");
    }

    #[test]
    fn pi5_config_names_its_kernel_and_has_no_pi4_keys() {
        let text = config_txt(PiBoard::Rpi5);
        assert_eq!(
            active_settings(&text),
            [
                ("kernel", "kernel_2712.img"),
                ("initramfs", "aerie-guest.cpio followkernel"),
                ("enable_uart", "1"),
            ]
        );
        assert!(text.contains("uart10"));
    }

    #[test]
    fn every_setting_is_explained_by_a_comment_above_it() {
        for board in PiBoard::ALL {
            let text = config_txt(board);
            let lines: Vec<&str> = text.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                let is_setting = !line.is_empty() && (!line.starts_with("# ") || *line == "#");
                if is_setting || line.starts_with("#uart") {
                    assert!(
                        n > 0 && lines[n - 1].starts_with("# "),
                        "{}: `{line}` has no comment above it",
                        board.name()
                    );
                }
            }
        }
    }

    #[test]
    fn kernel_names_follow_the_firmware() {
        assert_eq!(kernel_file(PiBoard::Rpi4), "aerie.img");
        assert_eq!(kernel_file(PiBoard::Rpi5), "kernel_2712.img");
    }

    #[test]
    fn cmdline_holds_aeries_guest_options_on_one_line() {
        assert_eq!(
            cmdline_txt(512, 4, 1_796_688_000),
            "aerie.guest.mem=512M aerie.guest.smp=4 aerie.time=1796688000\n"
        );
        assert_eq!(cmdline_txt(2048, 1, 0).lines().count(), 1);
    }

    #[test]
    fn cmdline_options_are_what_aerie_parses() {
        let text = cmdline_txt(768, 3, 1_796_688_000);
        let (options, unknown) = aerie_hyp::bootargs::parse(text.trim());
        assert!(unknown.is_empty());
        assert_eq!(options.guest_vcpus, Some(3));
        assert_eq!(options.guest_memory, Some(768 << 20));
        assert_eq!(options.wall_clock, Some(1_796_688_000));
    }

    #[test]
    fn active_settings_skip_comments_and_blank_lines() {
        let text = "# c\n\nkernel=a.img\n#enable_uart=1\n  initramfs g.cpio followkernel \n";
        assert_eq!(
            active_settings(text),
            [("kernel", "a.img"), ("initramfs", "g.cpio followkernel")]
        );
    }
}
