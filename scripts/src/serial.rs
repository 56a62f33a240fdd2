//! How QEMU connects the machine's serial console (the PL011) to xtask's stdio.
//!
//! QEMU's usual `-nographic` multiplexes the terminal between the serial port and
//! QEMU's monitor and keeps Ctrl-A for itself. Under Aerie, Ctrl-A belongs to Aerie's
//! console (`aerie_hyp::console`), so QEMU must pass every byte through: a plain
//! `stdio` character device (`mux=off`) on the serial port, with `signal=off` so
//! that Ctrl-C reaches the guest instead of stopping QEMU. QEMU's documentation,
//! "Character device options": `-chardev stdio,id=id[,mux=on|off][,signal=on|off]`,
//! and `-serial chardev:id`.

/// Who sees the console and who handles Ctrl-A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serial {
    /// A person at a terminal, under Aerie: every byte goes to the machine; Aerie
    /// handles Ctrl-A (x quits, h helps, c opens its console).
    Aerie,
    /// A person at a terminal, without Aerie (`--no-hyp`): QEMU's multiplexer handles
    /// Ctrl-A (x quits, h helps), so quitting works the same way.
    Qemu,
    /// xtask itself (`--exec`), through pipes: no escapes at all.
    Piped,
}

/// The id of the character device.
const CHARDEV_ID: &str = "console";

/// QEMU arguments for the console, without a monitor or a display.
pub fn args(serial: Serial) -> Vec<String> {
    let mux = match serial {
        Serial::Qemu => "on",
        Serial::Aerie | Serial::Piped => "off",
    };
    vec![
        "-display".into(),
        "none".into(),
        "-monitor".into(),
        "none".into(),
        "-chardev".into(),
        format!("stdio,id={CHARDEV_ID},signal=off,mux={mux}"),
        "-serial".into(),
        format!("chardev:{CHARDEV_ID}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aerie_gets_every_byte() {
        assert_eq!(
            args(Serial::Aerie).join(" "),
            "-display none -monitor none -chardev stdio,id=console,signal=off,mux=off \
             -serial chardev:console"
        );
        assert_eq!(args(Serial::Piped), args(Serial::Aerie));
    }

    #[test]
    fn without_aerie_qemu_keeps_ctrl_a() {
        assert!(
            args(Serial::Qemu)
                .join(" ")
                .contains("-chardev stdio,id=console,signal=off,mux=on -serial chardev:console")
        );
    }
}
