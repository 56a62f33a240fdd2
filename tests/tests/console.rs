//! The interactive console as a user meets it: `cargo xtask run` boots Linux under
//! Aerie; typed lines reach the guest's shell; Ctrl-A v sends input to the guest's
//! hvc0 and back; Ctrl-A c opens Aerie's console, whose `stats` shows per-vCPU
//! exits; Ctrl-A x powers the machine off (exit 0).

use std::time::Duration;

use aerie_tests::console_session::ConsoleSession;

/// How long to wait for each expected text (a Linux boot under QEMU TCG).
const WAIT: Duration = Duration::from_secs(120);

#[test]
fn typing_reaches_the_shell_and_ctrl_a_opens_aeries_console() {
    let snapshots = aerie_tests::paths::snapshot_disk();
    let mut session = ConsoleSession::start(&[
        "--smp",
        "2",
        "--snapshot-disk",
        snapshots.to_str().expect("a UTF-8 path"),
    ]);
    session.expect("aerie-guest: ready", WAIT);
    std::thread::sleep(Duration::from_secs(1));
    session.type_keys("echo typed-$((6*7))\r");
    session.expect("typed-42", WAIT);
    // Ctrl-A v sends typed input to hvc0 (the virtio-console) instead.
    session.type_keys("(read line < /dev/hvc0; echo got-$line) &\r");
    std::thread::sleep(Duration::from_secs(1));
    session.type_keys("\x01v");
    session.expect("typed input now goes to the guest's hvc0", WAIT);
    session.type_keys("via-hvc0\r");
    session.expect("got-via-hvc0", WAIT);
    session.type_keys("\x01v");
    session.expect("typed input now goes to the guest's UART", WAIT);
    session.type_keys("\x01c");
    session.expect("Aerie console", WAIT);
    session.type_keys("stats\r");
    session.expect("hypercall", WAIT);
    session.expect("   1 ", WAIT);
    session.type_keys("\x01x");
    session.expect("Aerie: quit from the console", WAIT);
    let code = session.expect_exit(WAIT);
    assert_eq!(code, Some(0), "{}", session.transcript());
}
