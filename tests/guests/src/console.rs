//! `print!` and `println!` through Aerie's `DEBUG_WRITE` hypercall. Text is formatted
//! into a buffer on the stack and sent one line per call (lines longer than the
//! hypercall's limit are split), so output from several CPUs never mixes inside a
//! line.

use core::fmt::{self, Write};

use crate::smccc::{debug_write, hypercall::DEBUG_WRITE_MAX};

/// Collects formatted text and sends it line by line.
struct LineWriter {
    buffer: [u8; DEBUG_WRITE_MAX],
    len: usize,
}

impl LineWriter {
    fn flush(&mut self) {
        debug_write(&self.buffer[..self.len]);
        self.len = 0;
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            self.buffer[self.len] = byte;
            self.len += 1;
            if byte == b'\n' || self.len == self.buffer.len() {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Formats `args` and writes the text to Aerie's console. Use [`print!`](crate::print)
/// and [`println!`](crate::println).
pub fn print(args: fmt::Arguments<'_>) {
    let mut writer = LineWriter {
        buffer: [0; DEBUG_WRITE_MAX],
        len: 0,
    };
    // LineWriter never fails; a Display impl that does just cuts the text short.
    let _ = writer.write_fmt(args);
    if writer.len > 0 {
        writer.flush();
    }
}

/// Prints to Aerie's console (each line becomes `guest: <line>` there).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!($($arg)*))
    };
}

/// Prints a line to Aerie's console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
