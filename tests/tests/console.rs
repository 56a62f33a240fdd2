//! The interactive console as a user meets it: `cargo xtask run` boots Linux under
//! Aerie; typed lines reach the guest's shell; Ctrl-A v sends input to the guest's
//! hvc0 and back; Ctrl-A c opens Aerie's console, whose `stats` shows per-vCPU
//! exits; Ctrl-A x powers the machine off (exit 0).

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Stdio};

use aerie_tests::xtask::Spawned;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long to wait for each expected line (a Linux boot under QEMU TCG).
const WAIT: Duration = Duration::from_secs(120);

/// A running `cargo xtask run` with its console piped.
struct Session {
    spawned: Spawned,
    input: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Session {
    fn start() -> Self {
        let snapshots = aerie_tests::paths::snapshot_disk();
        let mut command = aerie_tests::xtask::command(&[
            "run",
            "--smp",
            "2",
            "--snapshot-disk",
            snapshots.to_str().expect("a UTF-8 path"),
        ]);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Dropping the session (also when a check panics) kills cargo, xtask and QEMU.
        let mut spawned = Spawned::start(&mut command);
        let child = &mut spawned.child;
        let input = child.stdin.take().expect("piped stdin");
        let output = child.stdout.take().expect("piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            spawned,
            input,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        self.spawned.kill_group();
        panic!(
            "no line with {text:?}; the console showed:\n{}",
            self.seen.join("\n")
        );
    }

    /// Types `bytes` slowly, like a person.
    fn type_keys(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.input
                .write_all(&[*byte])
                .expect("QEMU reads its console");
            self.input.flush().expect("QEMU reads its console");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn typing_reaches_the_shell_and_ctrl_a_opens_aeries_console() {
    let mut session = Session::start();
    session.expect("aerie-guest: ready");
    std::thread::sleep(Duration::from_secs(1));
    session.type_keys(b"echo typed-$((6*7))\r");
    session.expect("typed-42");
    // Ctrl-A v sends typed input to hvc0 (the virtio-console) instead.
    session.type_keys(b"(read line < /dev/hvc0; echo got-$line) &\r");
    std::thread::sleep(Duration::from_secs(1));
    session.type_keys(b"\x01v");
    session.expect("typed input now goes to the guest's hvc0");
    session.type_keys(b"via-hvc0\r");
    session.expect("got-via-hvc0");
    session.type_keys(b"\x01v");
    session.expect("typed input now goes to the guest's UART");
    session.type_keys(b"\x01c");
    session.expect("Aerie console");
    session.type_keys(b"stats\r");
    session.expect("hypercall");
    session.expect("   1 ");
    session.type_keys(b"\x01x");
    session.expect("Aerie: quit from the console");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = session.spawned.child.try_wait().expect("waitable") {
            assert_eq!(status.code(), Some(0), "{}", session.seen.join("\n"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "QEMU did not exit after Ctrl-A x"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
