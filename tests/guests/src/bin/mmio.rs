//! MMIO emulation at every width, each access a precise instruction: loads of 1, 2, 4
//! and 8 bytes (zero- and sign-extending, into W and X registers), stores of every
//! width (including from WZR/XZR) read back at other widths, loads into X30 and XZR,
//! the write counter, unknown offsets, and the PL011's PrimeCell identification.
//!
//! Expected values: the test device as documented in `devices/src/testdev.rs`; load
//! and store semantics from the Arm ARM (C6.2 LDRB, LDRH, LDRSB, LDRSH, LDRSW, LDR,
//! STRB, STRH, STR); the PL011 ID registers from the PrimeCell UART (PL011) TRM,
//! 3.3.10 to 3.3.13.
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::{check_eq, println};

aerie_test_guests::guest_main!(run);

/// The test device's base address in the guest.
const TEST_DEVICE: u64 = 0x0906_0000;
/// The identification register: "AETD" in little-endian byte order.
const ID: u64 = 0x000;
const ID_VALUE: u64 = 0x4454_4541;
/// The version register.
const VERSION: u64 = 0x004;
const VERSION_VALUE: u64 = 1;
/// The read-only pattern register (8 bytes); every byte has its top bit set.
const PATTERN: u64 = 0x008;
const PATTERN_VALUE: u64 = 0x8899_AABB_CCDD_EEFF;
/// 64 bytes of scratch memory.
const SCRATCH: u64 = 0x100;
const SCRATCH_SIZE: u64 = 64;
/// The write counter (8 bytes): every write access the device received.
const WRITE_COUNT: u64 = 0x200;
/// Offsets where the device has no register.
const UNKNOWN_OFFSETS: [u64; 5] = [0x010, 0x0F8, 0x140, 0x800, 0xFF8];

/// The PL011 UART's base address in the guest.
const UART: u64 = 0x0900_0000;
/// UARTPeriphID0..3 and UARTPCellID0..3, one 32-bit register each.
const UART_PERIPH_ID0: u64 = 0xFE0;
const UART_PCELL_ID0: u64 = 0xFF0;
/// UARTPeriphID0..1: part number 0x011. PeriphID2 holds the designer's low nibble
/// (0x4, Arm) in bits 3:0 and the revision in bits 7:4; PeriphID3 is 0.
const UART_PERIPH_ID01: [u64; 2] = [0x11, 0x10];
const UART_PERIPH_ID2_DESIGNER: u64 = 0x4;
const UART_PERIPH_ID2_DESIGNER_MASK: u64 = 0xF;
const UART_PERIPH_ID3: u64 = 0x00;
/// UARTPCellID0..3: the PrimeCell preamble 0xB105_F00D.
const UART_PCELL_ID: [u64; 4] = [0x0D, 0xF0, 0x05, 0xB1];

/// What a load's destination register holds before the load, so that a result that
/// was not zero- or sign-extended over all 64 bits shows.
const SENTINEL: u64 = 0x5A5A_5A5A_5A5A_5A5A;
/// Upper bits put in a store's source register beyond the access width: they must
/// not reach the device.
const STORE_NOISE: u64 = 0xDEAD_BEEF_CAFE_F00D;

/// One load instruction (`$insn`, destination view `w` or `x`) from `$addr`, with the
/// destination preloaded with [`SENTINEL`]; evaluates to the whole X register.
macro_rules! load {
    ($insn:literal, $view:literal, $addr:expr) => {{
        let mut value: u64 = SENTINEL;
        let address: u64 = $addr;
        // SAFETY: `address` is a device register in the guest's MMIO space; Aerie
        // emulates the access, which touches no memory the program owns.
        unsafe {
            asm!(
                concat!($insn, " {value:", $view, "}, [{address}]"),
                value = inout(reg) value,
                address = in(reg) address,
                options(nostack, preserves_flags),
            );
        }
        value
    }};
}

/// One store instruction (`$insn`, source view `w` or `x`) of `$value` to `$addr`.
macro_rules! store {
    ($insn:literal, $view:literal, $addr:expr, $value:expr) => {{
        let value: u64 = $value;
        let address: u64 = $addr;
        // SAFETY: as for `load!`: an emulated device register, no program memory.
        unsafe {
            asm!(
                concat!($insn, " {value:", $view, "}, [{address}]"),
                value = in(reg) value,
                address = in(reg) address,
                options(nostack, preserves_flags),
            );
        }
    }};
}

/// One store of the zero register (`$insn` with `$zr` = `wzr` or `xzr`) to `$addr`.
macro_rules! store_zero {
    ($insn:literal, $zr:literal, $addr:expr) => {{
        let address: u64 = $addr;
        // SAFETY: as for `load!`: an emulated device register, no program memory.
        unsafe {
            asm!(
                concat!($insn, " ", $zr, ", [{address}]"),
                address = in(reg) address,
                options(nostack, preserves_flags),
            );
        }
    }};
}

/// The address of test-device register `offset`.
fn dev(offset: u64) -> u64 {
    TEST_DEVICE + offset
}

/// Byte `index` (0 = lowest address) of a little-endian value.
fn byte(value: u64, index: u64) -> u64 {
    (value >> (8 * index)) & 0xFF
}

/// Halfword `index` of a little-endian value.
fn half(value: u64, index: u64) -> u64 {
    (value >> (16 * index)) & 0xFFFF
}

/// Word `index` of a little-endian value.
fn word(value: u64, index: u64) -> u64 {
    (value >> (32 * index)) & 0xFFFF_FFFF
}

fn run() {
    identification();
    zero_extending_loads();
    sign_extending_loads();
    unusual_destinations();
    stores_read_back();
    zero_register_stores();
    write_counter();
    unknown_offsets();
    uart_identification();
}

fn identification() {
    check_eq!(
        load!("ldr", "w", dev(ID)),
        ID_VALUE,
        "mmio: LDR w ID is \"AETD\""
    );
    check_eq!(
        load!("ldr", "w", dev(VERSION)),
        VERSION_VALUE,
        "mmio: LDR w VERSION is 1"
    );
}

fn zero_extending_loads() {
    check_eq!(
        load!("ldr", "x", dev(PATTERN)),
        PATTERN_VALUE,
        "mmio: LDR x PATTERN"
    );
    for index in 0..8 {
        check_eq!(
            load!("ldrb", "w", dev(PATTERN + index)),
            byte(PATTERN_VALUE, index),
            format_args!("mmio: LDRB PATTERN+{index} is zero-extended to 64 bits")
        );
    }
    for index in 0..4 {
        check_eq!(
            load!("ldrh", "w", dev(PATTERN + 2 * index)),
            half(PATTERN_VALUE, index),
            format_args!(
                "mmio: LDRH PATTERN+{} is zero-extended to 64 bits",
                2 * index
            )
        );
    }
    for index in 0..2 {
        check_eq!(
            load!("ldr", "w", dev(PATTERN + 4 * index)),
            word(PATTERN_VALUE, index),
            format_args!(
                "mmio: LDR w PATTERN+{} is zero-extended to 64 bits",
                4 * index
            )
        );
    }
}

fn sign_extending_loads() {
    for index in 0..8 {
        let value = byte(PATTERN_VALUE, index) as u8 as i8;
        check_eq!(
            load!("ldrsb", "w", dev(PATTERN + index)),
            u64::from(i32::from(value) as u32),
            format_args!(
                "mmio: LDRSB w PATTERN+{index} is sign-extended to 32 bits, upper half zero"
            )
        );
        check_eq!(
            load!("ldrsb", "x", dev(PATTERN + index)),
            i64::from(value) as u64,
            format_args!("mmio: LDRSB x PATTERN+{index} is sign-extended to 64 bits")
        );
    }
    for index in 0..4 {
        let value = half(PATTERN_VALUE, index) as u16 as i16;
        let offset = 2 * index;
        check_eq!(
            load!("ldrsh", "w", dev(PATTERN + offset)),
            u64::from(i32::from(value) as u32),
            format_args!(
                "mmio: LDRSH w PATTERN+{offset} is sign-extended to 32 bits, upper half zero"
            )
        );
        check_eq!(
            load!("ldrsh", "x", dev(PATTERN + offset)),
            i64::from(value) as u64,
            format_args!("mmio: LDRSH x PATTERN+{offset} is sign-extended to 64 bits")
        );
    }
    for index in 0..2 {
        let value = word(PATTERN_VALUE, index) as u32 as i32;
        check_eq!(
            load!("ldrsw", "x", dev(PATTERN + 4 * index)),
            i64::from(value) as u64,
            format_args!(
                "mmio: LDRSW PATTERN+{} is sign-extended to 64 bits",
                4 * index
            )
        );
    }
}

/// Loads into X30 (the highest general register) and into XZR (register number 31,
/// which must be discarded, not taken as SP).
fn unusual_destinations() {
    let mut value: u64 = SENTINEL;
    let address = dev(PATTERN);
    // SAFETY: an emulated device register, no program memory; X30 is declared as an
    // input and output, so the compiler saves the return address around it.
    unsafe {
        asm!(
            "ldr x30, [{address}]",
            address = in(reg) address,
            inout("x30") value,
            options(nostack, preserves_flags),
        );
    }
    check_eq!(value, PATTERN_VALUE, "mmio: LDR into X30");

    let (before, after): (u64, u64);
    // SAFETY: as above; a load into XZR changes no register.
    unsafe {
        asm!(
            "mov {before}, sp",
            "ldr xzr, [{address}]",
            "mov {after}, sp",
            before = out(reg) before,
            after = out(reg) after,
            address = in(reg) address,
            options(nostack, preserves_flags),
        );
    }
    check_eq!(after, before, "mmio: LDR into XZR leaves SP alone");
}

fn stores_read_back() {
    for offset in (0..SCRATCH_SIZE).step_by(8) {
        store!("str", "x", dev(SCRATCH + offset), u64::MAX);
    }

    // Bytes 0..8: STRB, from registers with noise above the low byte.
    let bytes: u64 = 0xEFCD_AB89_6745_2301;
    for index in 0..8 {
        let source = (STORE_NOISE << 8) | byte(bytes, index);
        store!("strb", "w", dev(SCRATCH + index), source);
    }
    check_eq!(
        load!("ldr", "x", dev(SCRATCH)),
        bytes,
        "mmio: 8 STRB read back as one little-endian LDR x"
    );
    check_eq!(
        load!("ldrh", "w", dev(SCRATCH + 2)),
        half(bytes, 1),
        "mmio: STRB bytes read back by LDRH"
    );
    check_eq!(
        load!("ldr", "w", dev(SCRATCH + 4)),
        word(bytes, 1),
        "mmio: STRB bytes read back by LDR w"
    );

    // Bytes 8..16: STRH.
    let halves: u64 = 0x7788_5566_3344_1122;
    for index in 0..4 {
        let source = (STORE_NOISE << 16) | half(halves, index);
        store!("strh", "w", dev(SCRATCH + 8 + 2 * index), source);
    }
    check_eq!(
        load!("ldr", "x", dev(SCRATCH + 8)),
        halves,
        "mmio: 4 STRH read back as one LDR x"
    );
    check_eq!(
        load!("ldrb", "w", dev(SCRATCH + 9)),
        byte(halves, 1),
        "mmio: STRH read back by LDRB"
    );

    // Bytes 16..24: STR w.
    let words: u64 = 0x89AB_CDEF_0123_4567;
    for index in 0..2 {
        let source = (STORE_NOISE << 32) | word(words, index);
        store!("str", "w", dev(SCRATCH + 16 + 4 * index), source);
    }
    check_eq!(
        load!("ldr", "x", dev(SCRATCH + 16)),
        words,
        "mmio: 2 STR w read back as one LDR x"
    );
    check_eq!(
        load!("ldrh", "w", dev(SCRATCH + 22)),
        half(words, 3),
        "mmio: STR w read back by LDRH"
    );

    // Bytes 24..32 and the last 8 bytes: STR x.
    let double: u64 = 0xFEDC_BA98_7654_3210;
    store!("str", "x", dev(SCRATCH + 24), double);
    for index in 0..8 {
        check_eq!(
            load!("ldrb", "w", dev(SCRATCH + 24 + index)),
            byte(double, index),
            format_args!("mmio: STR x read back by LDRB at byte {index}")
        );
    }
    check_eq!(
        load!("ldr", "w", dev(SCRATCH + 28)),
        word(double, 1),
        "mmio: STR x read back by LDR w"
    );
    let last = SCRATCH + SCRATCH_SIZE - 8;
    store!("str", "x", dev(last), !double);
    check_eq!(
        load!("ldr", "x", dev(last)),
        !double,
        "mmio: STR x to the last 8 scratch bytes reads back"
    );
    check_eq!(
        load!("ldr", "x", dev(SCRATCH)),
        bytes,
        "mmio: later stores left the first scratch bytes alone"
    );
}

fn zero_register_stores() {
    let at = SCRATCH + 32;
    store!("str", "x", dev(at), u64::MAX);
    store_zero!("strb", "wzr", dev(at));
    check_eq!(
        load!("ldr", "x", dev(at)),
        0xFFFF_FFFF_FFFF_FF00,
        "mmio: STRB wzr stores a zero byte"
    );
    store_zero!("strh", "wzr", dev(at + 2));
    check_eq!(
        load!("ldr", "x", dev(at)),
        0xFFFF_FFFF_0000_FF00,
        "mmio: STRH wzr stores a zero halfword"
    );
    store_zero!("str", "wzr", dev(at + 4));
    check_eq!(
        load!("ldr", "x", dev(at)),
        0x0000_0000_0000_FF00,
        "mmio: STR wzr stores a zero word"
    );
    store!("str", "x", dev(at), u64::MAX);
    store_zero!("str", "xzr", dev(at));
    check_eq!(load!("ldr", "x", dev(at)), 0, "mmio: STR xzr stores zero");
}

fn write_counter() {
    let before = load!("ldr", "x", dev(WRITE_COUNT));
    store!("strb", "w", dev(SCRATCH), 1);
    store!("strh", "w", dev(SCRATCH + 2), 2);
    store!("str", "w", dev(SCRATCH + 4), 3);
    store!("str", "x", dev(SCRATCH + 8), 4);
    store_zero!("str", "xzr", dev(SCRATCH + 16));
    // Ignored writes reach the device too, and count.
    store!("str", "w", dev(ID), 5);
    store!("str", "x", dev(UNKNOWN_OFFSETS[3]), 6);
    let writes = 7;
    for _ in 0..3 {
        load!("ldr", "x", dev(SCRATCH));
    }
    let after = load!("ldr", "x", dev(WRITE_COUNT));
    check_eq!(
        after.wrapping_sub(before),
        writes,
        "mmio: WRITE_COUNT counts every store of every width, and no load"
    );
    check_eq!(
        load!("ldr", "w", dev(WRITE_COUNT)),
        word(after, 0),
        "mmio: LDR w WRITE_COUNT reads its low half"
    );
    check_eq!(
        load!("ldr", "w", dev(ID)),
        ID_VALUE,
        "mmio: a store to the read-only ID is ignored"
    );
    store!("str", "x", dev(PATTERN), 0);
    check_eq!(
        load!("ldr", "x", dev(PATTERN)),
        PATTERN_VALUE,
        "mmio: a store to the read-only PATTERN is ignored"
    );
}

fn unknown_offsets() {
    for offset in UNKNOWN_OFFSETS {
        store!("str", "x", dev(offset), u64::MAX);
        check_eq!(
            load!("ldr", "x", dev(offset)),
            0,
            format_args!("mmio: LDR x at unknown offset {offset:#x} reads 0")
        );
        check_eq!(
            load!("ldrb", "w", dev(offset)),
            0,
            format_args!("mmio: LDRB at unknown offset {offset:#x} reads 0")
        );
    }
}

fn uart_identification() {
    let periph: [u64; 4] =
        core::array::from_fn(|index| load!("ldr", "w", UART + UART_PERIPH_ID0 + 4 * index as u64));
    let pcell: [u64; 4] =
        core::array::from_fn(|index| load!("ldr", "w", UART + UART_PCELL_ID0 + 4 * index as u64));
    println!(
        "mmio: PL011 UARTPeriphID {:#04x} {:#04x} {:#04x} {:#04x}, UARTPCellID {:#04x} {:#04x} {:#04x} {:#04x}",
        periph[0], periph[1], periph[2], periph[3], pcell[0], pcell[1], pcell[2], pcell[3]
    );
    check_eq!(
        periph[0],
        UART_PERIPH_ID01[0],
        "mmio: PL011 UARTPeriphID0 is 0x11"
    );
    check_eq!(
        periph[1],
        UART_PERIPH_ID01[1],
        "mmio: PL011 UARTPeriphID1 is 0x10"
    );
    check_eq!(
        periph[2] & UART_PERIPH_ID2_DESIGNER_MASK,
        UART_PERIPH_ID2_DESIGNER,
        "mmio: PL011 UARTPeriphID2 names Arm as the designer"
    );
    check_eq!(periph[3], UART_PERIPH_ID3, "mmio: PL011 UARTPeriphID3 is 0");
    for (index, (&got, &expected)) in pcell.iter().zip(&UART_PCELL_ID).enumerate() {
        check_eq!(
            got,
            expected,
            format_args!("mmio: PL011 UARTPCellID{index} is {expected:#04x}")
        );
    }
}
