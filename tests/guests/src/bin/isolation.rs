//! A guest cannot reach Aerie's memory: it writes a pattern over all of its RAM
//! outside its own image and stacks (which covers guest address 0x4020_0000 and up,
//! where Aerie itself lives in host memory on QEMU `virt`), reads it back intact, and
//! Aerie still serves its hypercalls afterwards.
//!
//! If guest RAM aliased Aerie's memory, the pattern would overwrite Aerie's code or
//! data (Aerie would crash or hang) or Aerie's writes would show up in the pattern.
#![no_std]
#![no_main]

use aerie_test_guests::smccc::{psci, psci_call};
use aerie_test_guests::{check, check_eq, devtree, entry, println};

aerie_test_guests::guest_main!(run);

/// Where QEMU `virt` loads Aerie in host memory: the guest's RAM at this guest
/// address must be ordinary guest RAM.
const AERIE_HOST_ADDRESS: u64 = 0x4020_0000;
/// Offset and value of the arm64 Image magic ("ARM\x64", little-endian): what the
/// guest would find at [`AERIE_HOST_ADDRESS`] if it could see Aerie's image.
const IMAGE_MAGIC_OFFSET: u64 = 0x38;
const IMAGE_MAGIC: u32 = 0x644D_5241;
/// Bytes per access.
const STEP: usize = 8;
/// Multiplier of the pattern: an odd 64-bit constant (the golden ratio), so every
/// address gets a different value and aliased addresses show.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// The value written at `address` in pass `pass` (0 or 1: the second pass inverts
/// every bit, so each bit is seen both ways).
fn pattern(address: u64, pass: u64) -> u64 {
    let value = address.wrapping_mul(MIX).rotate_left(17) ^ address;
    if pass == 0 { value } else { !value }
}

/// Writes the pattern of `pass` over `start..end`.
fn fill(start: u64, end: u64, pass: u64) {
    for address in (start..end).step_by(STEP) {
        // SAFETY: `start..end` is guest RAM outside this program's image, bss and
        // stacks (checked by the caller), which nothing else in the guest uses once
        // the device tree has been read.
        unsafe { core::ptr::write_volatile(address as *mut u64, pattern(address, pass)) };
    }
}

/// Reads `start..end` back; returns the number of wrong values and the first one
/// (address, value read).
fn verify(start: u64, end: u64, pass: u64) -> (u64, Option<(u64, u64)>) {
    let mut wrong = 0;
    let mut first = None;
    for address in (start..end).step_by(STEP) {
        // SAFETY: as in `fill`: guest RAM the program does not otherwise use.
        let value = unsafe { core::ptr::read_volatile(address as *const u64) };
        if value != pattern(address, pass) {
            wrong += 1;
            first.get_or_insert((address, value));
        }
    }
    (wrong, first)
}

fn run() {
    let info = match devtree::guest_info() {
        Ok(info) => info,
        Err(error) => {
            check!(
                false,
                "isolation: read guest RAM from the device tree",
                "{error}"
            );
            return;
        }
    };
    let start = entry::image_end();
    let end = info.ram_end;
    check!(
        start <= AERIE_HOST_ADDRESS && end > AERIE_HOST_ADDRESS,
        "isolation: the range written covers guest address 0x40200000",
        "writing {start:#x}..{end:#x}"
    );
    // SAFETY: guest RAM (checked just above), 4-byte aligned; only read.
    let magic = unsafe {
        core::ptr::read_volatile((AERIE_HOST_ADDRESS + IMAGE_MAGIC_OFFSET) as *const u32)
    };
    check!(
        magic != IMAGE_MAGIC,
        "isolation: guest RAM at 0x40200000 does not show Aerie's Image header",
        "found the arm64 Image magic at {:#x}",
        AERIE_HOST_ADDRESS + IMAGE_MAGIC_OFFSET
    );
    println!(
        "isolation: writing {} KiB of guest RAM, {start:#x}..{end:#x}",
        (end - start) / 1024
    );
    for pass in 0..2 {
        fill(start, end, pass);
        let (wrong, first) = verify(start, end, pass);
        let (at, value) = first.unwrap_or_default();
        check!(
            wrong == 0,
            format_args!("isolation: pass {pass}: every word of guest RAM reads back"),
            "{wrong} words differ; the first at {at:#x} reads {value:#x}, expected {:#x}",
            pattern(at, pass)
        );
    }
    check_eq!(
        psci_call(psci::VERSION, 0, 0, 0),
        psci::VERSION_1_1,
        "isolation: Aerie still answers PSCI_VERSION afterwards"
    );
}
