//! A `cargo xtask run` whose console a test drives: output read as a byte stream
//! (firmware prompts such as U-Boot's `=> ` end no line) and kept as the text a
//! person sees (terminal escape sequences, such as the UEFI shell's colours,
//! dropped), expected text waited for within a deadline, keys typed like a person.

use std::io::{Read, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::xtask::Spawned;

/// A running `cargo xtask run ARGS` with its console piped.
pub struct ConsoleSession {
    spawned: Spawned,
    input: ChildStdin,
    output: Receiver<Vec<u8>>,
    /// Everything the console printed so far, without escape sequences.
    seen: String,
    /// Where the output stands in an escape sequence, across reads.
    escape: Escape,
    /// Where the next [`ConsoleSession::expect`] starts looking.
    cursor: usize,
}

impl ConsoleSession {
    /// Starts `cargo xtask run` with `args` (stderr, xtask's own messages, goes to
    /// the transcript too).
    pub fn start(args: &[&str]) -> Self {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let mut command = crate::xtask::command(&all);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Dropping the session (also when a check panics) kills cargo, xtask and QEMU.
        let mut spawned = Spawned::start(&mut command);
        let child = &mut spawned.child;
        let input = child.stdin.take().expect("piped stdin");
        let (sender, output) = channel();
        for mut stream in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(count) = stream.read(&mut buffer) {
                    if count == 0 || sender.send(buffer[..count].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            spawned,
            input,
            output,
            seen: String::new(),
            escape: Escape::Text,
            cursor: 0,
        }
    }

    /// Waits up to `wait` for `text` after what earlier expectations matched;
    /// panics with the transcript if it does not come.
    pub fn expect(&mut self, text: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(at) = self.seen[self.cursor..].find(text) {
                self.cursor += at + text.len();
                return;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match self.output.recv_timeout(left) {
                Ok(bytes) => {
                    let text = self.escape.strip(&bytes);
                    self.seen.push_str(&String::from_utf8_lossy(&text));
                }
                Err(_) => break,
            }
        }
        self.spawned.kill_group();
        panic!(
            "no {text:?} within {wait:?}; the console showed:\n{}",
            self.seen
        );
    }

    /// Types `text` slowly, like a person (a serial console has no flow control).
    pub fn type_keys(&mut self, text: &str) {
        for byte in text.bytes() {
            self.input
                .write_all(&[byte])
                .expect("QEMU reads its console");
            self.input.flush().expect("QEMU reads its console");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The whole transcript so far.
    pub fn transcript(&self) -> &str {
        &self.seen
    }

    /// Waits up to `wait` for the run to end by itself and returns its exit code;
    /// panics with the transcript if it does not end.
    pub fn expect_exit(&mut self, wait: Duration) -> Option<i32> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.spawned.child.try_wait() {
                return status.code();
            }
            while let Ok(bytes) = self.output.try_recv() {
                let text = self.escape.strip(&bytes);
                self.seen.push_str(&String::from_utf8_lossy(&text));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spawned.kill_group();
        panic!(
            "the run did not end within {wait:?}; the console showed:\n{}",
            self.seen
        );
    }

    /// Stops the run.
    pub fn stop(mut self) {
        self.spawned.kill_group();
    }
}

/// Where a byte stream stands in a terminal escape sequence (ECMA-48): `ESC [`
/// parameters and a final byte (0x40..=0x7e), or `ESC` and one more byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    /// Ordinary text.
    Text,
    /// After `ESC`.
    Started,
    /// Inside a control sequence, after `ESC [`.
    Control,
}

impl Escape {
    /// `bytes` without the escape sequences in them (or continuing from earlier).
    fn strip(&mut self, bytes: &[u8]) -> Vec<u8> {
        const ESC: u8 = 0x1b;
        let mut text = Vec::with_capacity(bytes.len());
        for &byte in bytes {
            *self = match (*self, byte) {
                (Escape::Text, ESC) => Escape::Started,
                (Escape::Text, _) => {
                    text.push(byte);
                    Escape::Text
                }
                (Escape::Started, b'[') => Escape::Control,
                (Escape::Started, _) => Escape::Text,
                (Escape::Control, 0x40..=0x7e) => Escape::Text,
                (Escape::Control, _) => Escape::Control,
            };
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::Escape;

    #[test]
    fn escape_sequences_are_dropped_even_when_split() {
        let mut escape = Escape::Text;
        let mut text = escape.strip(b"\x1b[1m\x1b[33maerie_kept\x1b[0m = 6x7\x1b[");
        text.extend(escape.strip(b"37;40mShell> \x1bc!"));
        assert_eq!(text, b"aerie_kept = 6x7Shell> !");
    }
}
