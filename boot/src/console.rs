//! Where Aerie's text goes: the UART the device tree names (until then, the early
//! fallback UART).
//!
//! Before the MMU is on, memory is device memory and exclusive accesses (locks) are
//! not reliable on real hardware, but only the boot CPU runs, so writes go out
//! unlocked. Afterwards a spin lock keeps lines from different CPUs apart. Crash
//! reports use [`emergency_write`], which never waits for the lock: the crashing CPU
//! may hold it.

use crate::drivers::pl011::Pl011;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The UART Aerie writes to before it has read the device tree, and when there is
/// no usable device tree: QEMU virt's PL011. Aerie cannot discover a console
/// without a device tree, and every supported loader passes one; this address only
/// matters for reporting "no device tree" on QEMU.
pub const FALLBACK_UART: usize = 0x0900_0000;

/// Base address of the console UART.
static UART_BASE: AtomicUsize = AtomicUsize::new(FALLBACK_UART);
/// Set once the MMU is on and the lock may be used.
static LOCKING: AtomicBool = AtomicBool::new(false);
/// Serialises lines from different CPUs.
static LOCK: crate::sync::Mutex<()> = crate::sync::Mutex::new(());

fn uart() -> Pl011 {
    // SAFETY: UART_BASE only ever holds FALLBACK_UART or the PL011 address taken
    // from the device tree (`use_uart`), which Aerie identity-maps as device
    // memory; before the MMU is on, every physical address is accessible.
    unsafe { Pl011::at(UART_BASE.load(Ordering::Relaxed)) }
}

/// Switches the console to the PL011 at `base` (from the device tree).
pub fn use_uart(base: usize) {
    UART_BASE.store(base, Ordering::Relaxed);
}

/// Enables the lock; call once the MMU and caches are on.
pub fn enable_locking() {
    LOCKING.store(true, Ordering::Release);
}

/// Writes `args` to the console, as one piece.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let _guard = LOCKING.load(Ordering::Acquire).then(|| LOCK.lock());
    let _ = fmt::write(&mut Writer, args);
}

/// Writes raw bytes (the guest's UART output) to the console, as one piece.
pub fn write_raw(bytes: &[u8]) {
    let _guard = LOCKING.load(Ordering::Acquire).then(|| LOCK.lock());
    let uart = uart();
    for &byte in bytes {
        uart.write_byte(byte);
    }
}

/// The next byte typed on the console, if any.
pub fn read_byte() -> Option<u8> {
    uart().read_byte()
}

/// Makes the console UART interrupt when bytes arrive.
pub fn enable_receive_interrupts() {
    uart().enable_receive_interrupts();
}

/// Writes `args` without taking the lock. For crash reports only.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    let _ = fmt::write(&mut Writer, args);
}

/// Waits until the UART has sent everything.
pub fn flush() {
    uart().flush();
}

struct Writer;

impl fmt::Write for Writer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        uart().write_str(text);
        Ok(())
    }
}

/// Prints on Aerie's console, without a new line.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!($($arg)*))
    };
}

/// Prints a line on Aerie's console.
macro_rules! println {
    () => {
        $crate::console::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
