//! Aerie's own options, read from the host's `/chosen/bootargs`.
//!
//! Words that start with `aerie.` are Aerie's; everything else is left for guests.
//! On QEMU the command line comes from `-append`; on a Raspberry Pi from
//! `cmdline.txt`.
//!
//! | option | meaning |
//! |---|---|
//! | `aerie.log=error\|warn\|info\|debug\|trace` | how much Aerie logs (default `info`) |
//! | `aerie.selftest=exception` | after the summary, take a data abort at EL2 on purpose, to prove the exception report works |
//! | `aerie.selftest=panic` | after the summary, panic on purpose |

use arrayvec::ArrayVec;
use core::fmt;

/// A deliberate failure, used by the integration tests to exercise Aerie's fatal
/// paths on real hardware or QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// Read an unmapped address at EL2: the exception vectors must report it.
    Exception,
    /// Call `panic!`: the panic handler must report it.
    Panic,
}

/// How much Aerie logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default.
    Info,
    /// Details of each boot step.
    Debug,
    /// Everything.
    Trace,
}

/// The options Aerie understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOptions {
    /// Log verbosity.
    pub log_level: LogLevel,
    /// A deliberate failure to trigger.
    pub selftest: Option<SelfTest>,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            log_level: LogLevel::Info,
            selftest: None,
        }
    }
}

/// An `aerie.` word Aerie did not understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownOption<'a>(pub &'a str);

impl fmt::Display for UnknownOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignoring unknown or malformed option '{}'", self.0)
    }
}

/// The options and, separately, the (first few) `aerie.` words that were not valid.
pub fn parse(bootargs: &str) -> (BootOptions, ArrayVec<UnknownOption<'_>, 4>) {
    let mut options = BootOptions::default();
    let mut unknown = ArrayVec::new();
    for word in bootargs
        .split_ascii_whitespace()
        .filter(|w| w.starts_with("aerie."))
    {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        let understood = match key {
            "aerie.log" => parse_level(value).map(|level| options.log_level = level),
            "aerie.selftest" => parse_selftest(value).map(|test| options.selftest = test),
            _ => None,
        };
        if understood.is_none() {
            let _ = unknown.try_push(UnknownOption(word));
        }
    }
    (options, unknown)
}

fn parse_level(value: &str) -> Option<LogLevel> {
    Some(match value {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

fn parse_selftest(value: &str) -> Option<Option<SelfTest>> {
    Some(match value {
        "exception" => Some(SelfTest::Exception),
        "panic" => Some(SelfTest::Panic),
        "none" => None,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_aerie_words() {
        let (options, unknown) = parse("console=ttyAMA0 earlycon root=/dev/vda");
        assert_eq!(options, BootOptions::default());
        assert!(unknown.is_empty());
    }

    #[test]
    fn reads_log_level_and_selftest() {
        let (options, unknown) = parse("quiet aerie.log=debug aerie.selftest=exception");
        assert_eq!(options.log_level, LogLevel::Debug);
        assert_eq!(options.selftest, Some(SelfTest::Exception));
        assert!(unknown.is_empty());
        assert_eq!(
            parse("aerie.selftest=panic").0.selftest,
            Some(SelfTest::Panic)
        );
    }

    #[test]
    fn reports_unknown_and_malformed_aerie_words() {
        let (options, unknown) = parse("aerie.log=loud aerie.colour=blue aerie.selftest");
        assert_eq!(options, BootOptions::default());
        let words: std::vec::Vec<_> = unknown.iter().map(|u| u.0).collect();
        assert_eq!(
            words,
            ["aerie.log=loud", "aerie.colour=blue", "aerie.selftest"]
        );
        assert_eq!(
            std::format!("{}", unknown[1]),
            "ignoring unknown or malformed option 'aerie.colour=blue'"
        );
    }
}
