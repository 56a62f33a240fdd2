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
//! | `aerie.selftest=disk` | write, flush and read back the last sector of the first host disk |
//! | `aerie.selftest=stack-overflow` | after the summary, overflow Aerie's stack on the last CPU (recursion into its guard page) |
//! | `aerie.selftest=broken-stack` | after the summary, point Aerie's stack pointer at unmapped memory and push |
//! | `aerie.selftest=broken-exception-stack` | after the summary, point the exception stack pointer (SP_EL2) at unmapped memory, then take an exception |
//! | `aerie.guest.smp=N` | the guest's vCPU count (default: one per host CPU) |
//! | `aerie.guest.mem=SIZE` | the guest's RAM, e.g. `512M` (default: all RAM Aerie does not need) |
//! | `aerie.guest.testdev=on\|off` | give the guest Aerie's test device (default off) |
//! | `aerie.time=SECONDS` | the wall-clock time now, in seconds since 1970-01-01 UTC, for hosts without an RTC (`cargo xtask run --board raspi4b` passes it); a host RTC wins |
//! | `aerie.stage2=blocks\|pages` | how the guest's RAM is mapped at stage 2: with 1 GiB/2 MiB blocks (the default on boards) or 4 KiB pages only (the default on QEMU `virt`, whose TCG is much faster so; see `crate::stage2::Leaves`) |
//! | `aerie.restore` | resume the newest snapshot on the snapshot disk instead of booting the guest (its vCPU count and RAM come from the snapshot) |
//!
//! The guest itself (kernel, initrd, its command line) comes as a bundle in the
//! host's initrd (see [`crate::bundle`]).

use crate::stage2::Leaves;
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
    /// Write a pattern to the last sector of the first host disk, flush, read it
    /// back and compare: proves Aerie's host disk driver end to end.
    Disk,
    /// Recurse on the last CPU until its stack runs into its guard page: the
    /// exception stack must still report it.
    StackOverflow,
    /// Point Aerie's stack pointer at unmapped memory and push: the exception stack
    /// must still report it.
    BrokenStack,
    /// Point SP_EL2 at unmapped memory, then take an exception: the vectors' own
    /// fault must be reported from a fresh exception stack, not recurse.
    BrokenExceptionStack,
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
    /// The guest's vCPU count, when given.
    pub guest_vcpus: Option<usize>,
    /// The guest's RAM in bytes, when given.
    pub guest_memory: Option<u64>,
    /// Whether the guest gets the test device.
    pub guest_test_device: bool,
    /// Whether to resume the newest snapshot instead of booting the guest.
    pub restore: bool,
    /// The wall-clock time at boot (seconds since 1970), for hosts without an RTC.
    pub wall_clock: Option<u64>,
    /// How to map guest RAM at stage 2, when given (else the machine's default).
    pub stage2_leaves: Option<Leaves>,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            log_level: LogLevel::Info,
            selftest: None,
            guest_vcpus: None,
            guest_memory: None,
            guest_test_device: false,
            restore: false,
            wall_clock: None,
            stage2_leaves: None,
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
            "aerie.guest.smp" => parse_vcpus(value).map(|n| options.guest_vcpus = Some(n)),
            "aerie.guest.mem" => crate::units::parse_size(value)
                .ok()
                .filter(|&size| size > 0)
                .map(|size| options.guest_memory = Some(size)),
            "aerie.guest.testdev" => parse_switch(value).map(|on| options.guest_test_device = on),
            "aerie.restore" => parse_switch(value).map(|on| options.restore = on),
            "aerie.time" => parse_wall_clock(value).map(|at| options.wall_clock = Some(at)),
            "aerie.stage2" => {
                parse_leaves(value).map(|leaves| options.stage2_leaves = Some(leaves))
            }
            _ => None,
        };
        if understood.is_none() {
            let _ = unknown.try_push(UnknownOption(word));
        }
    }
    (options, unknown)
}

/// Seconds since 1970 in decimal, within what a PL031 can count (32 bits).
fn parse_wall_clock(value: &str) -> Option<u64> {
    value
        .parse::<u32>()
        .ok()
        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
        .map(u64::from)
}

fn parse_leaves(value: &str) -> Option<Leaves> {
    match value {
        "blocks" => Some(Leaves::Blocks),
        "pages" => Some(Leaves::Pages),
        _ => None,
    }
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

fn parse_vcpus(value: &str) -> Option<usize> {
    value.parse::<usize>().ok().filter(|&n| n > 0)
}

fn parse_switch(value: &str) -> Option<bool> {
    match value {
        "on" | "" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

fn parse_selftest(value: &str) -> Option<Option<SelfTest>> {
    Some(match value {
        "exception" => Some(SelfTest::Exception),
        "panic" => Some(SelfTest::Panic),
        "disk" => Some(SelfTest::Disk),
        "stack-overflow" => Some(SelfTest::StackOverflow),
        "broken-stack" => Some(SelfTest::BrokenStack),
        "broken-exception-stack" => Some(SelfTest::BrokenExceptionStack),
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
    fn reads_the_stack_selftests() {
        for (word, test) in [
            ("stack-overflow", SelfTest::StackOverflow),
            ("broken-stack", SelfTest::BrokenStack),
            ("broken-exception-stack", SelfTest::BrokenExceptionStack),
        ] {
            let bootargs = std::format!("aerie.selftest={word}");
            let (options, unknown) = parse(&bootargs);
            assert_eq!(options.selftest, Some(test));
            assert!(unknown.is_empty());
        }
    }

    #[test]
    fn reads_guest_options() {
        let (options, unknown) =
            parse("aerie.guest.smp=4 aerie.guest.mem=64M aerie.guest.testdev=on");
        assert!(unknown.is_empty());
        assert_eq!(options.guest_vcpus, Some(4));
        assert_eq!(options.guest_memory, Some(64 << 20));
        assert!(options.guest_test_device);
        assert!(parse("aerie.guest.testdev").0.guest_test_device);
        assert!(parse("aerie.restore").0.restore);
        assert_eq!(
            parse("aerie.time=1796688000").0.wall_clock,
            Some(1_796_688_000)
        );
        assert_eq!(parse("aerie.time=0").0.wall_clock, Some(0));
        for bad in [
            "aerie.time",
            "aerie.time=",
            "aerie.time=+5",
            "aerie.time=-1",
            "aerie.time=4294967296",
            "aerie.time=12:00",
        ] {
            let (options, unknown) = parse(bad);
            assert_eq!(options.wall_clock, None, "{bad}");
            assert_eq!(unknown.as_slice(), [UnknownOption(bad)], "{bad}");
        }
        assert!(!parse("aerie.restore=off").0.restore);
        assert_eq!(
            parse("aerie.stage2=pages").0.stage2_leaves,
            Some(Leaves::Pages)
        );
        assert_eq!(
            parse("aerie.stage2=blocks").0.stage2_leaves,
            Some(Leaves::Blocks)
        );
        for bad in ["aerie.stage2", "aerie.stage2=huge"] {
            let (options, unknown) = parse(bad);
            assert_eq!(options.stage2_leaves, None, "{bad}");
            assert_eq!(unknown.as_slice(), [UnknownOption(bad)], "{bad}");
        }
        let (bad, unknown) =
            parse("aerie.guest.smp=0 aerie.guest.mem=lots aerie.guest.testdev=maybe");
        assert_eq!(bad, BootOptions::default());
        assert_eq!(unknown.len(), 3);
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
