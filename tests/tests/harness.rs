//! Tests of the QEMU harness itself (the Aerie boot tests are in `boot.rs`).

use std::time::Duration;

use aerie_tests::qemu::{self, Run};

/// Proves the harness itself: a machine with nothing to run never exits, and the
/// timeout kills it and says so.
#[test]
fn harness_kills_a_machine_that_never_exits() {
    let outcome = qemu::virt()
        .no_kernel()
        .timeout(Duration::from_secs(1))
        .run();
    assert!(outcome.timed_out, "{outcome}");
    assert_eq!(outcome.exit_code, None);
    assert!(outcome.duration >= Duration::from_secs(1));
}
