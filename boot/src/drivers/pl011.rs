//! The Arm PrimeCell UART (PL011), transmit side, polled.
//!
//! Aerie leaves the line settings (baud rate, framing) as the firmware or QEMU set
//! them: on the Raspberry Pi the firmware programs the UART from `config.txt`, and
//! reprogramming it would need the UART's reference clock.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields! [u32,
    /// Flag register.
    FR [
        /// Transmit FIFO full: the data register cannot take another byte.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty: nothing to read.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy: still transmitting (including the stop bits of the last byte).
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Interrupt mask set/clear, and interrupt clear: the same bit layout.
    INT [
        /// Receive timeout: data waited in the FIFO without more arriving.
        RT OFFSET(6) NUMBITS(1) [],
        /// Receive: the FIFO reached its trigger level.
        RX OFFSET(4) NUMBITS(1) []
    ]
];

register_structs! {
    /// The PL011 registers Aerie touches (PrimeCell UART TRM, section 3.2).
    RegisterBlock {
        /// Data register: a write transmits one byte.
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved),
        /// Flag register.
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        /// Interrupt mask set/clear.
        (0x038 => imsc: ReadWrite<u32, INT::Register>),
        (0x03c => _reserved2),
        /// Interrupt clear.
        (0x044 => icr: ReadWrite<u32, INT::Register>),
        (0x048 => @END),
    }
}

/// A PL011 at a fixed physical address (Aerie's memory map is one-to-one).
pub struct Pl011 {
    registers: &'static RegisterBlock,
}

impl Pl011 {
    /// The UART whose registers are at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL011's register block that is accessible
    /// (identity-mapped as device memory, or the MMU is off) for the rest of Aerie's
    /// run, and nothing else may treat that memory as ordinary memory.
    pub unsafe fn at(base: usize) -> Self {
        let block = base as *const RegisterBlock;
        // SAFETY: the caller guarantees `base` is a live PL011 register block; all
        // accesses through the reference are volatile register accesses.
        let registers = unsafe { &*block };
        Self { registers }
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        while self.registers.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers.dr.set(u32::from(byte));
    }

    /// Sends `text`, turning `\n` into `\r\n` for terminals.
    pub fn write_str(&self, text: &str) {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }

    /// The next received byte, if any (error flags in DR bits 8-11 are dropped).
    pub fn read_byte(&self) -> Option<u8> {
        if self.registers.fr.is_set(FR::RXFE) {
            return None;
        }
        Some((self.registers.dr.get() & 0xff) as u8)
    }

    /// Raises the UART's interrupt when bytes arrive (receive and receive-timeout).
    pub fn enable_receive_interrupts(&self) {
        self.registers.icr.write(INT::RX::SET + INT::RT::SET);
        self.registers.imsc.modify(INT::RX::SET + INT::RT::SET);
    }

    /// Waits until every queued byte has left the UART, so that nothing is lost
    /// when the machine powers off.
    pub fn flush(&self) {
        while self.registers.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}
