//! Reporting checks: every check prints `PASS: <name>` or `FAIL: <name>: <details>`,
//! and the runtime turns the count of failures into the guest's exit status.
//!
//! Checks are made on the boot CPU only (secondary CPUs record what they saw in
//! shared memory for it), so the counters need no read-modify-write atomics.

use core::fmt::Display;

use crate::println;
use crate::shared::Shared;

static PASSED: Shared = Shared::new(0);
static FAILED: Shared = Shared::new(0);

/// Records and prints the outcome of one check; returns `ok`.
pub fn check(ok: bool, name: impl Display, details: impl Display) -> bool {
    if ok {
        PASSED.store(PASSED.load() + 1);
        println!("PASS: {name}");
    } else {
        FAILED.store(FAILED.load() + 1);
        println!("FAIL: {name}: {details}");
    }
    ok
}

/// The number of checks that passed so far.
pub fn passed() -> u64 {
    PASSED.load()
}

/// The number of checks that failed so far.
pub fn failed() -> u64 {
    FAILED.load()
}

/// Checks a condition: `check!(cond, "name")` prints `PASS: name`, or
/// `FAIL: name: expected cond`; `check!(cond, "name", "format", args...)` gives the
/// failure details itself. The name may be any `Display` value, such as
/// `format_args!(...)`. Evaluates to whether the check passed.
#[macro_export]
macro_rules! check {
    ($ok:expr, $name:expr $(,)?) => {
        $crate::report::check($ok, $name, concat!("expected ", stringify!($ok)))
    };
    ($ok:expr, $name:expr, $($details:tt)+) => {
        $crate::report::check($ok, $name, format_args!($($details)+))
    };
}

/// Checks that two integers are equal: `check_eq!(got, expected, "name")` fails with
/// `got 0x.., expected 0x..`. Evaluates to whether the check passed.
#[macro_export]
macro_rules! check_eq {
    ($got:expr, $expected:expr, $name:expr $(,)?) => {{
        let got = $got;
        let expected = $expected;
        $crate::report::check(
            got == expected,
            $name,
            format_args!("got {:#x}, expected {:#x}", got, expected),
        )
    }};
}
