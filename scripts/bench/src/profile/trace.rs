//! QEMU's execution log (`-d exec,nochain`, here with one instruction per
//! translation block), read line by line as it streams in.
//!
//! QEMU (accel/tcg/cpu-exec.c) writes, for every translation block a CPU enters,
//!
//! ```text
//! Trace 1: 0x7f00c0001040 [00000000/0000000040002b64/00000061/ff022201] bench_irq
//! ```
//!
//! (CPU index, host code, then `cs_base/pc/flags/cflags`, then QEMU's symbol for
//! the PC, empty for these ELF-less images), and when a block was entered but left
//! before its first instruction ran (the icount budget ran out; it runs again later)
//!
//! ```text
//! Stopped execution of TB chain before 0x7f00c0001040 [0000000040002b64] bench_irq
//! ```
//!
//! Every other line (`-d in_asm` disassembly, QEMU's warnings) is not an event.

/// What one log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// CPU `cpu` entered the block at guest address `pc`.
    Entered {
        /// QEMU's CPU index.
        cpu: u32,
        /// The block's first instruction.
        pc: u64,
    },
    /// The block at `pc` just entered did not run after all.
    NotRun {
        /// The block's first instruction.
        pc: u64,
    },
}

/// The event `line` records, if any.
pub fn parse(line: &str) -> Option<Event> {
    if let Some(rest) = line.strip_prefix("Trace ") {
        let (cpu, rest) = rest.split_once(": ")?;
        let fields = bracketed(rest)?;
        let pc = fields.split('/').nth(1)?;
        return Some(Event::Entered {
            cpu: cpu.parse().ok()?,
            pc: u64::from_str_radix(pc, 16).ok()?,
        });
    }
    let rest = line.strip_prefix("Stopped execution of TB chain before ")?;
    Some(Event::NotRun {
        pc: u64::from_str_radix(bracketed(rest)?, 16).ok()?,
    })
}

/// The text between the first `[` and the next `]`.
fn bracketed(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('[')?;
    Some(rest.split_once(']')?.0)
}

/// Splits a byte stream into lines, keeping a line cut between two reads until its
/// end arrives.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Hands every whole line of what has arrived so far, `bytes` included, to
    /// `each` (without its newline; not UTF-8 lines lossily).
    pub fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(&str)) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&byte| byte == b'\n') {
            let (line, after) = rest.split_at(end);
            if self.partial.is_empty() {
                each(&String::from_utf8_lossy(line));
            } else {
                self.partial.extend_from_slice(line);
                each(&String::from_utf8_lossy(&self.partial));
                self.partial.clear();
            }
            rest = &after[1..];
        }
        self.partial.extend_from_slice(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_are_events() {
        assert_eq!(
            parse("Trace 1: 0x7f00c0001040 [00000000/0000000040002b64/00000061/ff022201] "),
            Some(Event::Entered {
                cpu: 1,
                pc: 0x4000_2b64
            })
        );
        assert_eq!(
            parse("Trace 0: 0x7fd1b29285c0 [00000000/ffff80000801a000/00000061/ff022201] sym"),
            Some(Event::Entered {
                cpu: 0,
                pc: 0xffff_8000_0801_a000
            })
        );
        assert_eq!(
            parse("Stopped execution of TB chain before 0x7f00c0001040 [0000000040002b64] "),
            Some(Event::NotRun { pc: 0x4000_2b64 })
        );
        for other in [
            "IN: ",
            "0x4026aa1c:  eb0a011f  cmp      x8, x10",
            "----------------",
            "",
            "Trace x: 0x1 [0/1/2/3]",
            "Trace 0: 0x7f00 [00000000]",
            "qemu-system-aarch64: warning: something",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn lines_cut_between_reads_are_joined() {
        let mut lines = Lines::default();
        let mut seen = Vec::new();
        lines.feed(b"Trace 0: a\nTra", |line| seen.push(line.to_string()));
        lines.feed(b"ce 1: ", |line| seen.push(line.to_string()));
        lines.feed(b"b\n\nlast", |line| seen.push(line.to_string()));
        assert_eq!(seen, ["Trace 0: a", "Trace 1: b", ""]);
        lines.feed(b"\n", |line| seen.push(line.to_string()));
        assert_eq!(seen.last().unwrap(), "last");
    }
}
