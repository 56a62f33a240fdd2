//! Fuzz target of the PL011 UART's register interface.

use super::Input;
use crate::mmio::{AccessWidth, MmioDevice};
use crate::pl011::{FIFO_DEPTH, Pl011, Pl011State, regs};

/// The most operations one input runs.
const MAX_OPERATIONS: usize = 2000;

/// Registers that answer reads (the rest of the window reads as zero).
const READABLE: [u64; 13] = [
    regs::DR,
    regs::RSR_ECR,
    regs::FR,
    regs::ILPR,
    regs::IBRD,
    regs::FBRD,
    regs::LCR_H,
    regs::CR,
    regs::IFLS,
    regs::IMSC,
    regs::RIS,
    regs::MIS,
    regs::DMACR,
];

/// Registers whose writes have an effect (the rest of the window ignores writes).
const WRITABLE: [u64; 11] = [
    regs::DR,
    regs::RSR_ECR,
    regs::ILPR,
    regs::IBRD,
    regs::FBRD,
    regs::LCR_H,
    regs::CR,
    regs::IFLS,
    regs::IMSC,
    regs::ICR,
    regs::DMACR,
];

/// Whether an access of `width` at `offset` reaches a register (32-bit aligned, at
/// most 32 bits wide), and that register's offset.
fn register(offset: u64, width: AccessWidth) -> Option<u64> {
    (width != AccessWidth::Double && AccessWidth::Word.is_aligned(offset)).then_some(offset)
}

/// An access width.
fn pick_width(input: &mut Input) -> AccessWidth {
    [
        AccessWidth::Byte,
        AccessWidth::Half,
        AccessWidth::Word,
        AccessWidth::Double,
    ][input.choose(4) as usize]
}

/// An offset for an access of `width`: mostly a register, sometimes an ID register
/// or anywhere in the window; aligned unless the input says otherwise.
fn pick_offset(input: &mut Input, width: AccessWidth) -> u64 {
    let offset = match input.choose(4) {
        0 | 1 => u64::from(input.u8() & 0x4F),
        2 => 0xFC0 + u64::from(input.u8() & 0x3F),
        _ => input.below(regs::SIZE),
    };
    let offset = if input.choose(8) == 0 {
        offset
    } else {
        offset & !3
    };
    offset.min(regs::SIZE - width.bytes())
}

/// A UART state built from the input, in or out of range: what a corrupt snapshot
/// could hand to [`Pl011::restore`].
fn any_state(input: &mut Input) -> Pl011State {
    let mut state = Pl011::new().save();
    for entry in &mut state.rx_fifo {
        *entry = input.u16();
    }
    for byte in &mut state.tx_fifo {
        *byte = input.u8();
    }
    state.rx_len = input.u32() % (2 * FIFO_DEPTH as u32 + 2);
    state.tx_len = input.u32() % (2 * FIFO_DEPTH as u32 + 2);
    for field in [
        &mut state.rsr,
        &mut state.ilpr,
        &mut state.ibrd,
        &mut state.fbrd,
        &mut state.lcr_h,
        &mut state.cr,
        &mut state.ifls,
        &mut state.imsc,
        &mut state.ris,
        &mut state.dmacr,
    ] {
        *field = input.u32();
    }
    state.overrun_pending = input.bool();
    state
}

/// Random register accesses, input bytes, output draining and state restores on a
/// PL011, starting from the firmware console state or the reset state.
///
/// Checks after every step that the state is one a PL011 can have; that reads fit
/// their width, that reserved and write-only offsets, 64-bit and misaligned accesses
/// read as zero, and that only reads of `UARTDR` change the state; that writes
/// outside the writable registers change nothing; that output never overflows its
/// buffer; and that a saved state restores to the same state.
pub fn pl011_registers(data: &[u8]) {
    let mut input = Input::new(data);
    let mut uart = if input.bool() {
        Pl011::at_reset()
    } else {
        Pl011::new()
    };
    let mut operations = 0;
    while !input.is_empty() && operations < MAX_OPERATIONS {
        operations += 1;
        let before = uart.save();
        match input.choose(12) {
            0..=3 => {
                let width = pick_width(&mut input);
                let offset = pick_offset(&mut input, width);
                let value = uart.read(offset, width);
                assert_eq!(value & !width.mask(), 0, "read {width:?} at {offset:#x}");
                let register = register(offset, width);
                let answers =
                    register.is_some_and(|r| READABLE.contains(&r) || r >= regs::PERIPH_ID0);
                if !answers {
                    assert_eq!(value, 0, "read {width:?} at {offset:#x}");
                }
                if register != Some(regs::DR) {
                    assert_eq!(uart.save(), before, "read {width:?} at {offset:#x}");
                }
            }
            4..=7 => {
                let width = pick_width(&mut input);
                let offset = pick_offset(&mut input, width);
                let value = width.truncate(input.u32().into());
                uart.write(offset, width, value);
                if !register(offset, width).is_some_and(|r| WRITABLE.contains(&r)) {
                    assert_eq!(uart.save(), before, "write {width:?} at {offset:#x}");
                }
            }
            8 => {
                let accepted = uart.push_input(input.u8());
                let grew = uart.save().rx_len == before.rx_len + 1;
                assert!(!accepted || grew || before.rx_len as usize == FIFO_DEPTH);
            }
            9 => {
                let mut buffer = [0u8; 40];
                let room = input.below(buffer.len() as u64 + 1) as usize;
                let taken = uart.take_output(&mut buffer[..room]);
                assert!(taken <= room && taken as u32 <= before.tx_len);
            }
            10 => uart.restore(&any_state(&mut input)),
            _ => {
                let mut copy = Pl011::at_reset();
                copy.restore(&before);
                assert_eq!(copy.save(), before);
            }
        }
        assert!(uart.save().is_valid(), "{:?}", uart.save());
        let _ = uart.interrupt_level();
        let _ = uart.can_receive();
    }
}
