//! The host's QEMU: which `qemu-system-aarch64` is installed and whether it will do.

use std::fmt;
use std::process::Command;

use crate::process;

pub use aerie_host::qemu::QEMU;

/// The oldest usable QEMU: 9.0 added the `raspi4b` machine.
pub const MIN_VERSION: Version = Version {
    major: 9,
    minor: 0,
    patch: 0,
};

/// A QEMU version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch level.
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Reads the version from `qemu-system-aarch64 --version` output, whose first line is
/// `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2...)`.
pub fn parse_version(output: &str) -> Option<Version> {
    let first_line = output.lines().next()?;
    let number = first_line
        .split("version ")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let mut parts = number.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(Version {
        major,
        minor,
        patch,
    })
}

/// What the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// No runnable `qemu-system-aarch64`.
    Missing,
    /// It runs but its version line could not be read.
    Unknown(String),
    /// It runs and reports this version.
    Version(Version),
}

impl Installed {
    /// Whether this QEMU is new enough for Aerie's tests.
    pub fn is_usable(&self) -> bool {
        matches!(self, Installed::Version(v) if *v >= MIN_VERSION)
    }
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Installed::Missing => write!(f, "no {QEMU}"),
            Installed::Unknown(line) => write!(f, "{QEMU} of unknown version ({line})"),
            Installed::Version(version) => write!(f, "QEMU {version}"),
        }
    }
}

/// Asks the `qemu-system-aarch64` on PATH for its version.
pub fn installed() -> Installed {
    match version_line() {
        None => Installed::Missing,
        Some(line) => match parse_version(&line) {
            Some(version) => Installed::Version(version),
            None => Installed::Unknown(line),
        },
    }
}

/// The first line of `qemu-system-aarch64 --version`, e.g.
/// `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)`.
pub fn version_line() -> Option<String> {
    let text = process::output(Command::new(QEMU).arg("--version")).ok()?;
    Some(text.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn parses_version_lines() {
        let debian = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n\
                      Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(parse_version(debian), Some(version(10, 0, 2)));
        assert_eq!(
            parse_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"),
            Some(version(7, 2, 15))
        );
        assert_eq!(
            parse_version("QEMU emulator version 9.1.0"),
            Some(version(9, 1, 0))
        );
        assert_eq!(
            parse_version("QEMU emulator version 8.2.50\n"),
            Some(version(8, 2, 50))
        );
        assert_eq!(
            parse_version("QEMU emulator version 9.0.0-rc1"),
            Some(version(9, 0, 0))
        );
        assert_eq!(
            parse_version("QEMU emulator version 9"),
            Some(version(9, 0, 0))
        );
        assert_eq!(parse_version("something else"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn usable_means_at_least_9_0() {
        assert!(Installed::Version(version(9, 0, 0)).is_usable());
        assert!(Installed::Version(version(10, 0, 2)).is_usable());
        assert!(!Installed::Version(version(8, 2, 9)).is_usable());
        assert!(!Installed::Missing.is_usable());
        assert!(!Installed::Unknown("?".into()).is_usable());
        assert_eq!(
            Installed::Version(version(7, 2, 15)).to_string(),
            "QEMU 7.2.15"
        );
    }
}
