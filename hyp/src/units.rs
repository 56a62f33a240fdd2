//! Byte sizes: parsing `512M` from a command line and printing `1 GiB` in reports.
//!
//! Parsing follows QEMU's `-m` syntax: a decimal number of bytes, optionally followed by
//! one of the binary suffixes `K`, `M`, `G`, `T` (any case), optionally followed by `B`
//! or `iB`. `4096`, `512M`, `512MiB`, `1g` and `2GB` are all accepted; `B` alone means
//! bytes. Fractions, signs, spaces and hex are not.

use core::fmt;

/// One kibibyte (2^10 bytes).
pub const KIB: u64 = 1 << 10;
/// One mebibyte (2^20 bytes).
pub const MIB: u64 = 1 << 20;
/// One gibibyte (2^30 bytes).
pub const GIB: u64 = 1 << 30;
/// One tebibyte (2^40 bytes).
pub const TIB: u64 = 1 << 40;
/// One pebibyte (2^50 bytes).
pub const PIB: u64 = 1 << 50;
/// One exbibyte (2^60 bytes).
pub const EIB: u64 = 1 << 60;

/// Why [`parse_size`] rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeErrorKind {
    /// The text was empty.
    Empty,
    /// The text does not start with a decimal digit.
    NoNumber,
    /// The number has a fractional part (`1.5G`).
    Fractional,
    /// The text after the number is not a known unit.
    UnknownUnit,
    /// The size does not fit in 64 bits.
    Overflow,
}

/// A size that [`parse_size`] could not parse, with the text it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeError<'a> {
    /// The text that was rejected.
    pub input: &'a str,
    /// What was wrong with it.
    pub kind: SizeErrorKind,
}

impl fmt::Display for SizeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = self.input;
        match self.kind {
            SizeErrorKind::Empty => f.write_str("empty size: expected a size such as 512M or 1G"),
            SizeErrorKind::NoNumber => {
                write!(
                    f,
                    "invalid size '{input}': expected a number such as 512M or 1G"
                )
            }
            SizeErrorKind::Fractional => write!(
                f,
                "invalid size '{input}': fractions are not supported; use a smaller unit \
                 (1536M, not 1.5G)"
            ),
            SizeErrorKind::UnknownUnit => write!(
                f,
                "invalid size '{input}': unknown unit; use K, M, G or T, optionally followed \
                 by B or iB"
            ),
            SizeErrorKind::Overflow => {
                write!(
                    f,
                    "invalid size '{input}': too large (the maximum is 16 EiB - 1 byte)"
                )
            }
        }
    }
}

/// The multiplier for a unit suffix (the text after the number), if it is one.
fn unit_multiplier(unit: &str) -> Option<u64> {
    let (prefix, rest) = match unit.char_indices().nth(1) {
        Some((split, _)) => unit.split_at(split),
        None => (unit, ""),
    };
    let multiplier = match prefix {
        "" => return Some(1),
        "b" | "B" if rest.is_empty() => return Some(1),
        "k" | "K" => KIB,
        "m" | "M" => MIB,
        "g" | "G" => GIB,
        "t" | "T" => TIB,
        _ => return None,
    };
    let suffix_ok =
        rest.is_empty() || rest.eq_ignore_ascii_case("b") || rest.eq_ignore_ascii_case("ib");
    suffix_ok.then_some(multiplier)
}

/// Parses a QEMU-style size such as `4096`, `512M`, `512MiB`, `1g` or `2GB` into bytes.
///
/// Suffixes are binary (`1K` = 1024). The error names the input and says what was wrong.
pub fn parse_size(text: &str) -> Result<u64, SizeError<'_>> {
    let error = |kind| SizeError { input: text, kind };
    if text.is_empty() {
        return Err(error(SizeErrorKind::Empty));
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(error(SizeErrorKind::NoNumber));
    }
    if unit.starts_with(['.', ',']) {
        return Err(error(SizeErrorKind::Fractional));
    }
    let multiplier = unit_multiplier(unit).ok_or(error(SizeErrorKind::UnknownUnit))?;
    let number: u64 = digits.parse().map_err(|_| error(SizeErrorKind::Overflow))?;
    number
        .checked_mul(multiplier)
        .ok_or(error(SizeErrorKind::Overflow))
}

/// A number of bytes that prints in the largest fitting binary unit.
///
/// Exact multiples print as integers (`1 GiB`, `512 MiB`, `4 KiB`, `123 bytes`); other
/// values print with one decimal, rounded, in the largest unit not above them (`1.5 GiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// The units [`ByteSize`] prints in, largest first.
const UNITS: [(u64, &str); 6] = [
    (EIB, "EiB"),
    (PIB, "PiB"),
    (TIB, "TiB"),
    (GIB, "GiB"),
    (MIB, "MiB"),
    (KIB, "KiB"),
];

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        let Some(index) = UNITS.iter().position(|&(unit, _)| bytes >= unit) else {
            let noun = if bytes == 1 { "byte" } else { "bytes" };
            return write!(f, "{bytes} {noun}");
        };
        let (unit, name) = UNITS[index];
        if bytes % unit == 0 {
            return write!(f, "{} {name}", bytes / unit);
        }
        // Tenths of the unit, rounded half up; u128 because `bytes * 10` can overflow.
        let tenths = (u128::from(bytes) * 10 + u128::from(unit) / 2) / u128::from(unit);
        // 1023.96 KiB rounds to 1024.0 KiB: say 1.0 MiB instead.
        let next_unit_tenths = 1024 * 10;
        if tenths >= next_unit_tenths && index > 0 {
            let (_, bigger) = UNITS[index - 1];
            return write!(f, "1.0 {bigger}");
        }
        write!(f, "{}.{} {name}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn plain_bytes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn binary_suffixes_any_case() {
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("512MiB"), Ok(536_870_912));
        assert_eq!(parse_size("512mib"), Ok(536_870_912));
        assert_eq!(parse_size("1g"), Ok(1_073_741_824));
        assert_eq!(parse_size("2GB"), Ok(2_147_483_648));
        assert_eq!(parse_size("2Gb"), Ok(2_147_483_648));
        assert_eq!(parse_size("3T"), Ok(3 * 1_099_511_627_776));
        assert_eq!(parse_size("16383TiB"), Ok(16383 * 1_099_511_627_776));
    }

    #[test]
    fn rejects_empty_and_garbage() {
        let kind = |text| parse_size(text).unwrap_err().kind;
        assert_eq!(kind(""), SizeErrorKind::Empty);
        assert_eq!(kind("M"), SizeErrorKind::NoNumber);
        assert_eq!(kind("-1"), SizeErrorKind::NoNumber);
        assert_eq!(kind("+1"), SizeErrorKind::NoNumber);
        assert_eq!(kind(" 1G"), SizeErrorKind::NoNumber);
        assert_eq!(kind("1G "), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("1 G"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("12X"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("1P"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("1GiBB"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("1Gi"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("1BiB"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("0x1000"), SizeErrorKind::UnknownUnit);
        assert_eq!(kind("1é"), SizeErrorKind::UnknownUnit);
    }

    #[test]
    fn rejects_fractions() {
        assert_eq!(
            parse_size("1.5G").unwrap_err().kind,
            SizeErrorKind::Fractional
        );
        assert_eq!(
            parse_size("1,5G").unwrap_err().kind,
            SizeErrorKind::Fractional
        );
    }

    #[test]
    fn rejects_overflow() {
        // 2^64 itself, and a multiplication past 2^64 (16 EiB = 16 * 2^20 TiB).
        assert_eq!(
            parse_size("18446744073709551616").unwrap_err().kind,
            SizeErrorKind::Overflow
        );
        assert_eq!(
            parse_size("16777216T").unwrap_err().kind,
            SizeErrorKind::Overflow
        );
        assert_eq!(
            parse_size("99999999999999999999999K").unwrap_err().kind,
            SizeErrorKind::Overflow
        );
    }

    #[test]
    fn error_messages_name_the_input() {
        assert_eq!(
            parse_size("12X").unwrap_err().to_string(),
            "invalid size '12X': unknown unit; use K, M, G or T, optionally followed by B or iB"
        );
        assert_eq!(
            parse_size("1.5G").unwrap_err().to_string(),
            "invalid size '1.5G': fractions are not supported; use a smaller unit (1536M, not 1.5G)"
        );
        assert_eq!(
            parse_size("lots").unwrap_err().to_string(),
            "invalid size 'lots': expected a number such as 512M or 1G"
        );
        assert!(
            parse_size("16777216T")
                .unwrap_err()
                .to_string()
                .starts_with("invalid size '16777216T'")
        );
        assert_eq!(
            parse_size("").unwrap_err().to_string(),
            "empty size: expected a size such as 512M or 1G"
        );
    }

    #[test]
    fn unit_constants() {
        assert_eq!(KIB, 1024);
        assert_eq!(MIB, 1024 * 1024);
        assert_eq!(GIB, 1024 * 1024 * 1024);
        assert_eq!(TIB, 1024 * GIB);
        assert_eq!(PIB, 1024 * TIB);
        assert_eq!(EIB, 1024 * PIB);
    }

    #[test]
    fn exact_units() {
        assert_eq!(ByteSize(0).to_string(), "0 bytes");
        assert_eq!(ByteSize(1).to_string(), "1 byte");
        assert_eq!(ByteSize(123).to_string(), "123 bytes");
        assert_eq!(ByteSize(1023).to_string(), "1023 bytes");
        assert_eq!(ByteSize(4096).to_string(), "4 KiB");
        assert_eq!(ByteSize(512 * 1024 * 1024).to_string(), "512 MiB");
        assert_eq!(ByteSize(1 << 30).to_string(), "1 GiB");
        assert_eq!(ByteSize(3 << 40).to_string(), "3 TiB");
        assert_eq!(ByteSize(1 << 60).to_string(), "1 EiB");
    }

    #[test]
    fn one_decimal_otherwise() {
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(3 << 29).to_string(), "1.5 GiB");
        // 1 GiB + 100 MiB = 1.0977 GiB -> 1.1 GiB.
        assert_eq!(ByteSize((1 << 30) + 100 * (1 << 20)).to_string(), "1.1 GiB");
        // 1025 bytes = 1.0009 KiB: not exact, so one decimal.
        assert_eq!(ByteSize(1025).to_string(), "1.0 KiB");
        // Rounds half up: 1.25 KiB (1280 bytes) -> 1.3 KiB.
        assert_eq!(ByteSize(1280).to_string(), "1.3 KiB");
        // Just under 1 MiB rounds up into the next unit instead of "1024.0 KiB".
        assert_eq!(ByteSize((1 << 20) - 1).to_string(), "1.0 MiB");
        assert_eq!(ByteSize(u64::MAX).to_string(), "16.0 EiB");
    }

    #[test]
    fn parse_and_print_agree() {
        for text in ["4K", "512M", "1G", "3T"] {
            let bytes = parse_size(text).unwrap();
            let printed = ByteSize(bytes).to_string();
            let (number, unit) = printed.split_once(' ').unwrap();
            assert_eq!(
                parse_size(&std::format!("{number}{unit}")),
                Ok(bytes),
                "{text}"
            );
        }
    }
}
