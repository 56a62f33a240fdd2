//! A guest's debug output (Aerie's DEBUG_WRITE hypercall) cut into printable lines.

/// Longest line kept before it is printed anyway.
pub const DEBUG_LINE: usize = 256;

/// Bytes of guest debug output not yet printed (an unfinished line).
#[derive(Debug, Clone)]
pub struct DebugLine {
    line: [u8; DEBUG_LINE],
    length: usize,
}

impl Default for DebugLine {
    fn default() -> Self {
        Self::new()
    }
}

impl DebugLine {
    /// No output yet.
    pub const fn new() -> Self {
        Self {
            line: [0; DEBUG_LINE],
            length: 0,
        }
    }

    /// Adds `bytes`, calling `print` with each complete line (without its newline;
    /// a line that reaches [`DEBUG_LINE`] bytes is cut there). Control characters
    /// and bytes outside printable ASCII become `.`, so a guest cannot drive the
    /// host's terminal.
    pub fn push(&mut self, bytes: &[u8], mut print: impl FnMut(&str)) {
        for &byte in bytes {
            if byte == b'\n' || self.length == DEBUG_LINE {
                self.flush(&mut print);
            }
            if byte != b'\n' {
                let shown = if byte == b'\t' || (0x20..0x7f).contains(&byte) {
                    byte
                } else {
                    b'.'
                };
                self.line[self.length] = shown;
                self.length += 1;
            }
        }
    }

    /// Calls `print` with what is left of the current line, if anything.
    pub fn flush(&mut self, mut print: impl FnMut(&str)) {
        if self.length > 0 {
            print(core::str::from_utf8(&self.line[..self.length]).unwrap_or("?"));
            self.length = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn lines_of(chunks: &[&[u8]]) -> (Vec<String>, DebugLine) {
        let mut buffer = DebugLine::new();
        let mut lines = Vec::new();
        for chunk in chunks {
            buffer.push(chunk, |line| lines.push(line.to_string()));
        }
        (lines, buffer)
    }

    #[test]
    fn lines_are_printed_when_complete_across_chunks() {
        let (lines, mut rest) = lines_of(&[b"hel", b"lo\nwor", b"ld\n", b"tail"]);
        assert_eq!(lines, ["hello", "world"]);
        let mut last = Vec::new();
        rest.flush(|line| last.push(line.to_string()));
        assert_eq!(last, ["tail"]);
        rest.flush(|_| panic!("nothing left"));
    }

    #[test]
    fn control_characters_are_masked_and_tabs_kept() {
        let (lines, _) = lines_of(&[b"a\x1b[2Jb\tc\xff\n"]);
        assert_eq!(lines, ["a.[2Jb\tc."]);
    }

    #[test]
    fn a_long_line_is_cut_at_the_limit() {
        let long = [b'x'; DEBUG_LINE + 10];
        let (lines, mut rest) = lines_of(&[&long]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), DEBUG_LINE);
        let mut last = Vec::new();
        rest.flush(|line| last.push(line.len()));
        assert_eq!(last, [10]);
    }

    #[test]
    fn empty_lines_print_nothing() {
        let (lines, _) = lines_of(&[b"\n\n"]);
        assert!(lines.is_empty());
    }
}
