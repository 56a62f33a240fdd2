//! The PL011 UART as the guest sees it (Arm PrimeCell UART PL011 Technical Reference
//! Manual r1p5, DDI 0183G; section numbers below are that manual's).
//!
//! A pure state machine: the hypervisor forwards the guest's register accesses, hands
//! it the bytes typed on the physical console with [`Pl011::push_input`], sends what
//! [`Pl011::take_output`] returns to the physical UART, and raises the guest's SPI
//! while [`Pl011::interrupt_level`] is true.
//!
//! # How the model differs from a UART with a line
//!
//! - **Transmission is instantaneous.** A byte written to `UARTDR` waits in the
//!   transmit FIFO only until the hypervisor calls [`Pl011::take_output`], which it
//!   does after every trapped access (with room for at least a FIFO's worth), so the guest always finds the FIFO empty and
//!   the UART idle (`TXFE` set, `BUSY` clear). The transmit interrupt
//!   (section 2.8.2: "asserted when the FIFO is at or below the trigger level") is
//!   therefore raised by every write; `UARTICR` clears it until the next write.
//!   While the transmitter is off (`UARTEN` or `TXE` clear) written bytes stay in
//!   the FIFO, as on hardware, and leave when it is switched on.
//! - **No character clock.** The receive timeout interrupt (`RTRIS`, section 2.8.2:
//!   data in the FIFO and nothing received for 32 bit periods) is raised as soon as
//!   received data sits below the trigger level, since Aerie does not time
//!   characters; it clears when the FIFO is emptied or by `UARTICR`. At or above the
//!   trigger level the receive interrupt (`RXRIS`) is raised instead.
//! - **No line errors.** Framing, parity and break errors cannot happen; an overrun
//!   (input while the receive FIFO is full) drops the byte, sets `OE` in `UARTRSR`
//!   and `OERIS`, counts it in [`Pl011Stats::rx_overruns`], and marks the next
//!   character that is received with `OE` in `UARTDR` bit 11.
//! - **A connected modem.** `CTS`, `DSR` and `DCD` read as asserted and `RI` as
//!   clear; in loopback they follow `RTS`, `DTR`, `Out1` and `Out2` (section 2.4.5).
//!   Modem status interrupts never fire, and hardware flow control, IrDA, DMA and
//!   the baud rate are registers without effect.
//! - **Access widths.** Every register answers 8-, 16- and 32-bit accesses at its
//!   offset (Linux uses 16-bit ones): reads return the register's low bits, writes
//!   are zero-extended. 64-bit accesses, unaligned offsets and reserved offsets read
//!   as zero and ignore writes.
//!
//! [`Pl011::new`] gives the UART as firmware leaves a console: enabled, 115200 8N1
//! with a 24 MHz clock and FIFOs on, so `earlycon` and a `console=ttyAMA0` that reads
//! the current settings work from the first instruction. [`Pl011::at_reset`] gives the
//! TRM's reset values.

use crate::mmio::{AccessWidth, InvalidState, MmioDevice, Persist};

/// Depth of each FIFO when enabled (`UARTLCR_H.FEN`). r1p5 has 32-entry FIFOs; earlier
/// revisions had 16, and Linux picks the depth from the revision in `UARTPeriphID2`.
pub const FIFO_DEPTH: usize = 32;

/// Register offsets (section 3.2, table 3-1).
pub mod regs {
    /// `UARTDR`: data (read: received byte and its error bits; write: byte to send).
    pub const DR: u64 = 0x000;
    /// `UARTRSR` (read) / `UARTECR` (write): receive status / error clear.
    pub const RSR_ECR: u64 = 0x004;
    /// `UARTFR` (RO): flags.
    pub const FR: u64 = 0x018;
    /// `UARTILPR`: IrDA low-power counter.
    pub const ILPR: u64 = 0x020;
    /// `UARTIBRD`: integer baud rate divisor.
    pub const IBRD: u64 = 0x024;
    /// `UARTFBRD`: fractional baud rate divisor.
    pub const FBRD: u64 = 0x028;
    /// `UARTLCR_H`: line control.
    pub const LCR_H: u64 = 0x02C;
    /// `UARTCR`: control.
    pub const CR: u64 = 0x030;
    /// `UARTIFLS`: interrupt FIFO level select.
    pub const IFLS: u64 = 0x034;
    /// `UARTIMSC`: interrupt mask set/clear (1 = enabled).
    pub const IMSC: u64 = 0x038;
    /// `UARTRIS` (RO): raw interrupt status.
    pub const RIS: u64 = 0x03C;
    /// `UARTMIS` (RO): masked interrupt status.
    pub const MIS: u64 = 0x040;
    /// `UARTICR` (WO): interrupt clear.
    pub const ICR: u64 = 0x044;
    /// `UARTDMACR`: DMA control.
    pub const DMACR: u64 = 0x048;
    /// `UARTPeriphID0`; ID1-3 follow every 4 bytes.
    pub const PERIPH_ID0: u64 = 0xFE0;
    /// `UARTPeriphID3`, the last peripheral ID register.
    pub const PERIPH_ID3: u64 = 0xFEC;
    /// `UARTPCellID0`; ID1-3 follow every 4 bytes.
    pub const PCELL_ID0: u64 = 0xFF0;
    /// `UARTPCellID3`, the last PrimeCell ID register.
    pub const PCELL_ID3: u64 = 0xFFC;
    /// Size of the register block.
    pub const SIZE: u64 = 0x1000;
}

/// `UARTPeriphID0-3` (section 3.3.14): part number 0x011, designer 0x41 (Arm),
/// revision 3 (r1p5), configuration 0. Linux's AMBA bus matches `0x00041011`.
pub const PERIPH_ID: [u8; 4] = [0x11, 0x10, 0x34, 0x00];
/// `UARTPCellID0-3` (section 3.3.15): the PrimeCell identification `0xB105F00D`.
pub const PCELL_ID: [u8; 4] = [0x0D, 0xF0, 0x05, 0xB1];

/// `UARTDR` read bits above the data byte (section 3.3.1).
pub mod dr {
    /// The received byte.
    pub const DATA: u32 = 0xFF;
    /// Framing error.
    pub const FE: u32 = 1 << 8;
    /// Parity error.
    pub const PE: u32 = 1 << 9;
    /// Break error.
    pub const BE: u32 = 1 << 10;
    /// Overrun error: characters were lost before this one.
    pub const OE: u32 = 1 << 11;
    /// Every error bit.
    pub const ERRORS: u32 = FE | PE | BE | OE;
}

/// `UARTRSR` bits (section 3.3.2).
pub mod rsr {
    /// Framing error.
    pub const FE: u32 = 1 << 0;
    /// Parity error.
    pub const PE: u32 = 1 << 1;
    /// Break error.
    pub const BE: u32 = 1 << 2;
    /// Overrun error.
    pub const OE: u32 = 1 << 3;
}

/// `UARTFR` bits (section 3.3.3).
pub mod fr {
    /// Clear to send (the inverse of nUARTCTS).
    pub const CTS: u32 = 1 << 0;
    /// Data set ready.
    pub const DSR: u32 = 1 << 1;
    /// Data carrier detect.
    pub const DCD: u32 = 1 << 2;
    /// Busy transmitting (set while the transmit FIFO is not empty).
    pub const BUSY: u32 = 1 << 3;
    /// Receive FIFO empty.
    pub const RXFE: u32 = 1 << 4;
    /// Transmit FIFO full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO full.
    pub const RXFF: u32 = 1 << 6;
    /// Transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;
    /// Ring indicator.
    pub const RI: u32 = 1 << 8;
}

/// `UARTLCR_H` bits (section 3.3.7).
pub mod lcr_h {
    /// Send break.
    pub const BRK: u32 = 1 << 0;
    /// Parity enable.
    pub const PEN: u32 = 1 << 1;
    /// Even parity select.
    pub const EPS: u32 = 1 << 2;
    /// Two stop bits.
    pub const STP2: u32 = 1 << 3;
    /// Enable FIFOs (32 entries); clear: 1-entry holding registers.
    pub const FEN: u32 = 1 << 4;
    /// Word length: 0b11 = 8 bits.
    pub const WLEN_8: u32 = 0b11 << 5;
    /// Stick parity.
    pub const SPS: u32 = 1 << 7;
    /// The register's defined bits.
    pub const MASK: u32 = 0xFF;
}

/// `UARTCR` bits (section 3.3.8).
pub mod cr {
    /// UART enable.
    pub const UARTEN: u32 = 1 << 0;
    /// SIR (IrDA) enable.
    pub const SIREN: u32 = 1 << 1;
    /// SIR low-power mode.
    pub const SIRLP: u32 = 1 << 2;
    /// Loopback: the transmitter feeds the receiver.
    pub const LBE: u32 = 1 << 7;
    /// Transmit enable.
    pub const TXE: u32 = 1 << 8;
    /// Receive enable.
    pub const RXE: u32 = 1 << 9;
    /// Data transmit ready (modem output).
    pub const DTR: u32 = 1 << 10;
    /// Request to send (modem output).
    pub const RTS: u32 = 1 << 11;
    /// Out1 (modem output; DCD in loopback).
    pub const OUT1: u32 = 1 << 12;
    /// Out2 (modem output; RI in loopback).
    pub const OUT2: u32 = 1 << 13;
    /// RTS hardware flow control enable.
    pub const RTSEN: u32 = 1 << 14;
    /// CTS hardware flow control enable.
    pub const CTSEN: u32 = 1 << 15;
    /// The register's defined bits (bits 6:3 are reserved).
    pub const MASK: u32 = 0xFF87;
}

/// `UARTIFLS` fields (section 3.3.9).
pub mod ifls {
    /// Transmit trigger level select, bits 2:0.
    pub const TXIFLSEL_MASK: u32 = 0b111;
    /// Receive trigger level select, bits 5:3.
    pub const RXIFLSEL_SHIFT: u32 = 3;
    /// The register's defined bits.
    pub const MASK: u32 = 0x3F;
}

/// Interrupt bits, the same in `UARTIMSC`, `UARTRIS`, `UARTMIS` and `UARTICR`
/// (sections 3.3.10-3.3.13).
pub mod int {
    /// nUARTRI modem interrupt.
    pub const RI: u32 = 1 << 0;
    /// nUARTCTS modem interrupt.
    pub const CTS: u32 = 1 << 1;
    /// nUARTDCD modem interrupt.
    pub const DCD: u32 = 1 << 2;
    /// nUARTDSR modem interrupt.
    pub const DSR: u32 = 1 << 3;
    /// Receive.
    pub const RX: u32 = 1 << 4;
    /// Transmit.
    pub const TX: u32 = 1 << 5;
    /// Receive timeout.
    pub const RT: u32 = 1 << 6;
    /// Framing error.
    pub const FE: u32 = 1 << 7;
    /// Parity error.
    pub const PE: u32 = 1 << 8;
    /// Break error.
    pub const BE: u32 = 1 << 9;
    /// Overrun error.
    pub const OE: u32 = 1 << 10;
    /// Every interrupt bit.
    pub const MASK: u32 = 0x7FF;
}

/// `UARTILPR`'s defined bits.
const ILPR_MASK: u32 = 0xFF;
/// `UARTIBRD`'s defined bits.
const IBRD_MASK: u32 = 0xFFFF;
/// `UARTFBRD`'s defined bits.
const FBRD_MASK: u32 = 0x3F;
/// `UARTDMACR`'s defined bits (RXDMAE, TXDMAE, DMAONERR).
const DMACR_MASK: u32 = 0x7;
/// `UARTRSR`'s defined bits.
const RSR_MASK: u32 = rsr::FE | rsr::PE | rsr::BE | rsr::OE;
/// A receive FIFO entry: the byte and its error bits, as `UARTDR` reads it.
const RX_ENTRY_MASK: u32 = dr::DATA | dr::ERRORS;

/// `UARTCR` at reset: transmitter and receiver enabled, the UART itself disabled.
const CR_RESET: u32 = cr::TXE | cr::RXE;
/// `UARTIFLS` at reset: both trigger levels at half full.
const IFLS_RESET: u32 = (0b010 << ifls::RXIFLSEL_SHIFT) | 0b010;
/// Firmware's divisor for 115200 baud from 24 MHz: 24e6 / (16 * 115200) = 13.02,
/// integer part 13, fraction 0.02 * 64 rounded = 1 (section 2.4.3).
const FIRMWARE_IBRD: u32 = 13;
/// See [`FIRMWARE_IBRD`].
const FIRMWARE_FBRD: u32 = 1;

/// The FIFO fill levels the `IFLS` selects stand for, in eighths of the FIFO: 1/8,
/// 1/4, 1/2, 3/4, 7/8 (section 3.3.9). The reserved values 0b101-0b111 act as 1/2.
const TRIGGER_EIGHTHS: [usize; 8] = [1, 2, 4, 6, 7, 4, 4, 4];

/// A fixed-capacity ring of FIFO entries.
#[derive(Clone, Debug)]
struct Fifo<T> {
    entries: [T; FIFO_DEPTH],
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Fifo<T> {
    fn new() -> Self {
        Self {
            entries: [T::default(); FIFO_DEPTH],
            head: 0,
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Appends `value` unless `len` has reached `capacity` (at most [`FIFO_DEPTH`]).
    fn push(&mut self, value: T, capacity: usize) -> bool {
        if self.len >= capacity.min(FIFO_DEPTH) {
            return false;
        }
        self.entries[(self.head + self.len) % FIFO_DEPTH] = value;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.entries[self.head];
        self.head = (self.head + 1) % FIFO_DEPTH;
        self.len -= 1;
        Some(value)
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// The entries oldest first, the unused tail filled with the default value.
    fn to_array(&self) -> [T; FIFO_DEPTH] {
        let mut out = [T::default(); FIFO_DEPTH];
        for (index, slot) in out.iter_mut().take(self.len).enumerate() {
            *slot = self.entries[(self.head + index) % FIFO_DEPTH];
        }
        out
    }

    /// A FIFO holding the first `len` entries of `entries`, oldest first.
    fn from_array(entries: [T; FIFO_DEPTH], len: usize) -> Self {
        let mut fifo = Self::new();
        for &entry in entries.iter().take(len) {
            fifo.push(entry, FIFO_DEPTH);
        }
        fifo
    }
}

/// Counters of lost bytes (diagnostics, not guest-visible state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pl011Stats {
    /// Input bytes dropped because the receive FIFO was full.
    pub rx_overruns: u64,
    /// Input bytes dropped because the receiver was off (`UARTEN` or `RXE` clear) or
    /// in loopback.
    pub rx_dropped: u64,
    /// Bytes the guest wrote while the transmit FIFO was full (the transmitter was off
    /// or the hypervisor did not take the output).
    pub tx_dropped: u64,
}

/// Everything a PL011 remembers, as plain data for snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pl011State {
    /// Receive FIFO entries (byte and `UARTDR` error bits), oldest first; entries
    /// from `rx_len` on are zero.
    pub rx_fifo: [u16; FIFO_DEPTH],
    /// How many receive entries are valid.
    pub rx_len: u32,
    /// Transmit FIFO bytes not yet taken, oldest first; the rest are zero.
    pub tx_fifo: [u8; FIFO_DEPTH],
    /// How many transmit bytes are valid.
    pub tx_len: u32,
    /// `UARTRSR`.
    pub rsr: u32,
    /// `UARTILPR`.
    pub ilpr: u32,
    /// `UARTIBRD`.
    pub ibrd: u32,
    /// `UARTFBRD`.
    pub fbrd: u32,
    /// `UARTLCR_H`.
    pub lcr_h: u32,
    /// `UARTCR`.
    pub cr: u32,
    /// `UARTIFLS`.
    pub ifls: u32,
    /// `UARTIMSC`.
    pub imsc: u32,
    /// `UARTRIS`.
    pub ris: u32,
    /// `UARTDMACR`.
    pub dmacr: u32,
    /// An overrun happened; the next received character carries `OE`.
    pub overrun_pending: bool,
}

impl Pl011State {
    /// Whether every field holds a value the UART can have: FIFO lengths within the
    /// depth, unused entries zero, registers within their defined bits. A snapshot
    /// whose state fails this is corrupt; [`Pl011::restore`] would clamp it.
    pub fn is_valid(&self) -> bool {
        let rx_len = self.rx_len as usize;
        let tx_len = self.tx_len as usize;
        rx_len <= FIFO_DEPTH
            && tx_len <= FIFO_DEPTH
            && self
                .rx_fifo
                .iter()
                .all(|&e| u32::from(e) & !RX_ENTRY_MASK == 0)
            && self.rx_fifo[rx_len..].iter().all(|&e| e == 0)
            && self.tx_fifo[tx_len..].iter().all(|&b| b == 0)
            && self.rsr & !RSR_MASK == 0
            && self.ilpr & !ILPR_MASK == 0
            && self.ibrd & !IBRD_MASK == 0
            && self.fbrd & !FBRD_MASK == 0
            && self.lcr_h & !lcr_h::MASK == 0
            && self.cr & !cr::MASK == 0
            && self.ifls & !ifls::MASK == 0
            && self.imsc & !int::MASK == 0
            && self.ris & !int::MASK == 0
            && self.dmacr & !DMACR_MASK == 0
    }
}

/// An emulated PL011 UART.
#[derive(Clone, Debug)]
pub struct Pl011 {
    rx: Fifo<u16>,
    tx: Fifo<u8>,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    overrun_pending: bool,
    stats: Pl011Stats,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// The UART with the TRM's reset values (section 3.2, table 3-1): disabled, FIFOs
    /// off, no divisor, trigger levels at half, all interrupts masked.
    pub fn at_reset() -> Self {
        let mut uart = Self {
            rx: Fifo::new(),
            tx: Fifo::new(),
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            overrun_pending: false,
            stats: Pl011Stats::default(),
        };
        // The transmit FIFO is empty, at or below any trigger level.
        uart.update_tx_interrupt();
        uart
    }

    /// The UART as firmware leaves a console for the kernel (what Aerie's guests
    /// get): enabled with transmitter and receiver on, 115200 baud from the 24 MHz
    /// clock, 8 data bits, no parity, one stop bit, FIFOs enabled.
    pub fn new() -> Self {
        let mut uart = Self::at_reset();
        uart.cr |= cr::UARTEN;
        uart.ibrd = FIRMWARE_IBRD;
        uart.fbrd = FIRMWARE_FBRD;
        uart.lcr_h = lcr_h::WLEN_8 | lcr_h::FEN;
        uart
    }

    /// Whether the guest's interrupt line is high: an enabled interrupt is pending
    /// (`UARTMIS` non-zero, section 2.8.2 `UARTINTR`).
    pub fn interrupt_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Counters of bytes lost so far.
    pub fn stats(&self) -> Pl011Stats {
        self.stats
    }

    /// Whether [`push_input`](Self::push_input) would accept a byte now: the receiver
    /// is on, not in loopback, and its FIFO has room. Lets the caller hold input
    /// back instead of overrunning the FIFO (flow control on the host side).
    pub fn can_receive(&self) -> bool {
        self.receiver_enabled() && self.cr & cr::LBE == 0 && self.rx.len() < self.capacity()
    }

    /// Delivers a byte from the outside world to the receiver. Returns false if it
    /// was dropped: the receive FIFO was full (an overrun), or the receiver is off or
    /// in loopback.
    pub fn push_input(&mut self, byte: u8) -> bool {
        if !self.receiver_enabled() || self.cr & cr::LBE != 0 {
            self.stats.rx_dropped += 1;
            return false;
        }
        self.receive(byte)
    }

    /// Moves the bytes the guest has transmitted into `buffer`, oldest first, as many
    /// as fit, and returns how many. Bytes that did not fit stay for the next call.
    /// Nothing leaves while the transmitter is off or in loopback.
    pub fn take_output(&mut self, buffer: &mut [u8]) -> usize {
        if !self.transmitter_enabled() || self.cr & cr::LBE != 0 {
            return 0;
        }
        let mut count = 0;
        for slot in buffer.iter_mut() {
            let Some(byte) = self.tx.pop() else {
                break;
            };
            *slot = byte;
            count += 1;
        }
        if count > 0 {
            // The FIFO drained towards (or through) the trigger level.
            self.update_tx_interrupt();
        }
        count
    }

    /// The state, as plain data.
    pub fn save(&self) -> Pl011State {
        Pl011State {
            rx_fifo: self.rx.to_array(),
            rx_len: self.rx.len() as u32,
            tx_fifo: self.tx.to_array(),
            tx_len: self.tx.len() as u32,
            rsr: self.rsr,
            ilpr: self.ilpr,
            ibrd: self.ibrd,
            fbrd: self.fbrd,
            lcr_h: self.lcr_h,
            cr: self.cr,
            ifls: self.ifls,
            imsc: self.imsc,
            ris: self.ris,
            dmacr: self.dmacr,
            overrun_pending: self.overrun_pending,
        }
    }

    /// Replaces the state with `state` (the counters are kept). Out-of-range values
    /// are clamped to what the UART can hold, so a corrupt state cannot break the
    /// model; check [`Pl011State::is_valid`] first to refuse one instead.
    pub fn restore(&mut self, state: &Pl011State) {
        let mut rx_fifo = state.rx_fifo;
        for entry in &mut rx_fifo {
            *entry &= RX_ENTRY_MASK as u16;
        }
        self.rx = Fifo::from_array(rx_fifo, state.rx_len as usize);
        self.tx = Fifo::from_array(state.tx_fifo, state.tx_len as usize);
        self.rsr = state.rsr & RSR_MASK;
        self.ilpr = state.ilpr & ILPR_MASK;
        self.ibrd = state.ibrd & IBRD_MASK;
        self.fbrd = state.fbrd & FBRD_MASK;
        self.lcr_h = state.lcr_h & lcr_h::MASK;
        self.cr = state.cr & cr::MASK;
        self.ifls = state.ifls & ifls::MASK;
        self.imsc = state.imsc & int::MASK;
        self.ris = state.ris & int::MASK;
        self.dmacr = state.dmacr & DMACR_MASK;
        self.overrun_pending = state.overrun_pending;
    }

    fn fifos_enabled(&self) -> bool {
        self.lcr_h & lcr_h::FEN != 0
    }

    /// Entries each FIFO holds: 32, or 1 with the FIFOs disabled (section 2.4.2).
    fn capacity(&self) -> usize {
        if self.fifos_enabled() { FIFO_DEPTH } else { 1 }
    }

    fn transmitter_enabled(&self) -> bool {
        self.cr & (cr::UARTEN | cr::TXE) == cr::UARTEN | cr::TXE
    }

    fn receiver_enabled(&self) -> bool {
        self.cr & (cr::UARTEN | cr::RXE) == cr::UARTEN | cr::RXE
    }

    /// `IFLS`'s level for `select` in entries.
    fn trigger_level(select: u32) -> usize {
        FIFO_DEPTH * TRIGGER_EIGHTHS[(select & ifls::TXIFLSEL_MASK) as usize] / 8
    }

    /// The transmit interrupt fires at or below this many entries; with FIFOs
    /// disabled, when the holding register is empty (section 2.8.2).
    fn tx_trigger(&self) -> usize {
        if self.fifos_enabled() {
            Self::trigger_level(self.ifls)
        } else {
            0
        }
    }

    /// The receive interrupt fires at or above this many entries; with FIFOs
    /// disabled, when the holding register is full.
    fn rx_trigger(&self) -> usize {
        if self.fifos_enabled() {
            Self::trigger_level(self.ifls >> ifls::RXIFLSEL_SHIFT)
        } else {
            1
        }
    }

    fn update_tx_interrupt(&mut self) {
        if self.tx.len() <= self.tx_trigger() {
            self.ris |= int::TX;
        } else {
            self.ris &= !int::TX;
        }
    }

    /// After the receive FIFO changed: `RXRIS` at or above the trigger level,
    /// `RTRIS` for data below it (no character timer: see the module docs).
    fn update_rx_interrupts(&mut self) {
        let level = self.rx.len();
        if level >= self.rx_trigger() {
            self.ris |= int::RX;
        } else {
            self.ris &= !int::RX;
            if level > 0 {
                self.ris |= int::RT;
            }
        }
        if level == 0 {
            self.ris &= !int::RT;
        }
    }

    /// The receiver takes `byte` (from outside, or looped back).
    fn receive(&mut self, byte: u8) -> bool {
        let error = if self.overrun_pending { dr::OE } else { 0 };
        if !self
            .rx
            .push((u32::from(byte) | error) as u16, self.capacity())
        {
            self.rsr |= rsr::OE;
            self.ris |= int::OE;
            self.overrun_pending = true;
            self.stats.rx_overruns += 1;
            return false;
        }
        self.overrun_pending = false;
        self.update_rx_interrupts();
        true
    }

    /// In loopback with the transmitter on, pending bytes go straight to the
    /// receiver (section 2.4.5).
    fn loop_back(&mut self) {
        if !self.transmitter_enabled() || self.cr & cr::LBE == 0 {
            return;
        }
        while let Some(byte) = self.tx.pop() {
            if self.receiver_enabled() {
                self.receive(byte);
            } else {
                self.stats.rx_dropped += 1;
            }
        }
    }

    fn read_data(&mut self) -> u32 {
        let Some(entry) = self.rx.pop() else {
            // Reading an empty FIFO is a guest mistake; there is nothing to return.
            return 0;
        };
        self.update_rx_interrupts();
        u32::from(entry)
    }

    fn write_data(&mut self, value: u32) {
        let byte = (value & dr::DATA) as u8;
        if !self.tx.push(byte, self.capacity()) {
            self.stats.tx_dropped += 1;
        }
        self.loop_back();
        self.update_tx_interrupt();
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        let capacity = self.capacity();
        if self.tx.len() == 0 {
            flags |= fr::TXFE;
        } else {
            flags |= fr::BUSY;
        }
        if self.tx.len() >= capacity {
            flags |= fr::TXFF;
        }
        if self.rx.len() == 0 {
            flags |= fr::RXFE;
        }
        if self.rx.len() >= capacity {
            flags |= fr::RXFF;
        }
        if self.cr & cr::LBE != 0 {
            // Loopback wires the modem outputs to the inputs (section 2.4.5).
            let wires = [
                (cr::RTS, fr::CTS),
                (cr::DTR, fr::DSR),
                (cr::OUT1, fr::DCD),
                (cr::OUT2, fr::RI),
            ];
            for (output, input) in wires {
                if self.cr & output != 0 {
                    flags |= input;
                }
            }
        } else {
            // A connected, ready peer.
            flags |= fr::CTS | fr::DSR | fr::DCD;
        }
        flags
    }

    fn write_line_control(&mut self, value: u32) {
        let value = value & lcr_h::MASK;
        if (self.lcr_h ^ value) & lcr_h::FEN != 0 {
            // Switching the FIFOs on or off flushes received data, as QEMU does; the
            // TRM leaves it open. Transmit bytes are kept: output is never lost.
            self.rx.clear();
            self.ris &= !(int::RX | int::RT);
            self.overrun_pending = false;
            self.lcr_h = value;
            self.update_tx_interrupt();
        } else {
            self.lcr_h = value;
        }
    }

    fn read_register(&mut self, offset: u64) -> u32 {
        match offset {
            regs::DR => self.read_data(),
            regs::RSR_ECR => self.rsr,
            regs::FR => self.flags(),
            regs::ILPR => self.ilpr,
            regs::IBRD => self.ibrd,
            regs::FBRD => self.fbrd,
            regs::LCR_H => self.lcr_h,
            regs::CR => self.cr,
            regs::IFLS => self.ifls,
            regs::IMSC => self.imsc,
            regs::RIS => self.ris,
            regs::MIS => self.ris & self.imsc,
            regs::DMACR => self.dmacr,
            regs::PERIPH_ID0..=regs::PERIPH_ID3 => {
                u32::from(PERIPH_ID[((offset - regs::PERIPH_ID0) / 4) as usize])
            }
            regs::PCELL_ID0..=regs::PCELL_ID3 => {
                u32::from(PCELL_ID[((offset - regs::PCELL_ID0) / 4) as usize])
            }
            // ICR is write-only; everything else is reserved.
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            regs::DR => self.write_data(value),
            // UARTECR: any write clears the error flags.
            regs::RSR_ECR => self.rsr = 0,
            regs::ILPR => self.ilpr = value & ILPR_MASK,
            regs::IBRD => self.ibrd = value & IBRD_MASK,
            regs::FBRD => self.fbrd = value & FBRD_MASK,
            regs::LCR_H => self.write_line_control(value),
            regs::CR => {
                self.cr = value & cr::MASK;
                self.loop_back();
            }
            regs::IFLS => self.ifls = value & ifls::MASK,
            regs::IMSC => self.imsc = value & int::MASK,
            regs::ICR => self.ris &= !value,
            regs::DMACR => self.dmacr = value & DMACR_MASK,
            // FR, RIS, MIS and the ID registers are read-only; the rest is reserved.
            _ => {}
        }
    }
}

impl Persist for Pl011 {
    type State = Pl011State;

    fn save_state(&self) -> Pl011State {
        self.save()
    }

    /// Refuses a state the UART cannot hold instead of clamping it.
    fn restore_state(&mut self, state: &Pl011State) -> Result<(), InvalidState> {
        if !state.is_valid() {
            return Err(InvalidState(
                "the UART's FIFOs or registers hold impossible values",
            ));
        }
        self.restore(state);
        Ok(())
    }
}

impl Pl011 {
    /// Whether reading the register at `offset` can change the UART's state: only
    /// UARTDR does (it takes a byte from the receive FIFO). Every other read leaves
    /// the interrupt line, the FIFOs and the output as they were.
    pub const fn read_changes_state(offset: u64) -> bool {
        offset == regs::DR
    }
}

impl MmioDevice for Pl011 {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        if width == AccessWidth::Double || !AccessWidth::Word.is_aligned(offset) {
            return 0;
        }
        width.truncate(u64::from(self.read_register(offset)))
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        if width == AccessWidth::Double || !AccessWidth::Word.is_aligned(offset) {
            return;
        }
        self.write_register(offset, width.truncate(value) as u32);
    }
}

#[cfg(test)]
mod flow_control_tests {
    use super::*;

    #[test]
    fn can_receive_says_when_the_fifo_is_full() {
        let mut uart = Pl011::new();
        let mut accepted = 0;
        while uart.can_receive() {
            assert!(uart.push_input(b'a'));
            accepted += 1;
        }
        // The FIFOs are on in `new()`: 32 entries (PL011 TRM, 2.4.3).
        assert_eq!(accepted, 32);
        assert!(!uart.push_input(b'b'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const B: AccessWidth = AccessWidth::Byte;
    const H: AccessWidth = AccessWidth::Half;
    const W: AccessWidth = AccessWidth::Word;
    const D: AccessWidth = AccessWidth::Double;

    // Register offsets and bits restated from the TRM's tables, independently of the
    // constants above.
    const DR: u64 = 0x00;
    const RSR: u64 = 0x04;
    const FR: u64 = 0x18;
    const IBRD: u64 = 0x24;
    const FBRD: u64 = 0x28;
    const LCR_H: u64 = 0x2C;
    const CR: u64 = 0x30;
    const IFLS: u64 = 0x34;
    const IMSC: u64 = 0x38;
    const RIS: u64 = 0x3C;
    const MIS: u64 = 0x40;
    const ICR: u64 = 0x44;

    const FR_BUSY: u64 = 0x08;
    const FR_RXFE: u64 = 0x10;
    const FR_TXFF: u64 = 0x20;
    const FR_RXFF: u64 = 0x40;
    const FR_TXFE: u64 = 0x80;
    const INT_RX: u64 = 0x10;
    const INT_TX: u64 = 0x20;
    const INT_RT: u64 = 0x40;
    const INT_OE: u64 = 0x400;

    /// Everything the UART has to send, taken the way the hypervisor does.
    fn output(uart: &mut Pl011) -> Vec<u8> {
        let mut sent = Vec::new();
        let mut buffer = [0u8; 64];
        loop {
            let count = uart.take_output(&mut buffer);
            if count == 0 {
                return sent;
            }
            sent.extend_from_slice(&buffer[..count]);
        }
    }

    #[test]
    fn register_map_matches_the_trm() {
        assert_eq!(
            [
                regs::DR,
                regs::RSR_ECR,
                regs::FR,
                regs::ILPR,
                regs::IBRD,
                regs::FBRD
            ],
            [0x000, 0x004, 0x018, 0x020, 0x024, 0x028]
        );
        assert_eq!(
            [
                regs::LCR_H,
                regs::CR,
                regs::IFLS,
                regs::IMSC,
                regs::RIS,
                regs::MIS
            ],
            [0x02C, 0x030, 0x034, 0x038, 0x03C, 0x040]
        );
        assert_eq!([regs::ICR, regs::DMACR], [0x044, 0x048]);
        assert_eq!([regs::PERIPH_ID0, regs::PCELL_ID0], [0xFE0, 0xFF0]);
    }

    #[test]
    fn reset_values() {
        let mut uart = Pl011::at_reset();
        // FR: TXFE and RXFE, plus the modem inputs of a connected peer (CTS, DSR, DCD).
        assert_eq!(uart.read(FR, W), 0x97);
        assert_eq!(uart.read(CR, W), 0x300);
        assert_eq!(uart.read(IFLS, W), 0x12);
        assert_eq!(uart.read(LCR_H, W), 0);
        assert_eq!(uart.read(IBRD, W), 0);
        assert_eq!(uart.read(FBRD, W), 0);
        assert_eq!(uart.read(IMSC, W), 0);
        assert_eq!(uart.read(RSR, W), 0);
        // The empty transmit FIFO is at or below the trigger level.
        assert_eq!(uart.read(RIS, W), INT_TX);
        assert_eq!(uart.read(MIS, W), 0);
        assert!(!uart.interrupt_level());
        // Disabled: written bytes wait.
        uart.write(DR, W, u64::from(b'x'));
        assert!(output(&mut uart).is_empty());
    }

    #[test]
    fn firmware_state() {
        let mut uart = Pl011::new();
        // UARTEN | TXE | RXE; 8 bits (WLEN 0b11 << 5) with FIFOs (1 << 4).
        assert_eq!(uart.read(CR, W), 0x301);
        assert_eq!(uart.read(LCR_H, W), 0x70);
        // 24 MHz / (16 * (13 + 1/64)) = 115,090 baud, within 0.1% of 115200.
        assert_eq!((uart.read(IBRD, W), uart.read(FBRD, W)), (13, 1));
        let baud = 24_000_000.0 / (16.0 * (13.0 + 1.0 / 64.0));
        assert!((baud - 115_200.0_f64).abs() / 115_200.0 < 0.001);
        uart.write(DR, B, u64::from(b'A'));
        assert_eq!(output(&mut uart), b"A");
    }

    #[test]
    fn identification_registers() {
        let mut uart = Pl011::new();
        // Linux's AMBA bus reads the low byte of each 32-bit ID register.
        let read_id = |uart: &mut Pl011, base: u64| {
            (0..4).fold(0u64, |id, i| {
                id | (uart.read(base + 4 * i, W) & 0xFF) << (8 * i)
            })
        };
        let periphid = read_id(&mut uart, 0xFE0);
        let cellid = read_id(&mut uart, 0xFF0);
        assert_eq!(periphid, 0x0034_1011);
        assert_eq!(cellid, 0xB105_F00D);
        // amba-pl011 matches id 0x00041011 under mask 0x000fffff; revision (bits
        // 23:20) 3 means r1p5 with 32-entry FIFOs.
        assert_eq!(periphid & 0x000F_FFFF, 0x0004_1011);
        assert_eq!((periphid >> 20) & 0xF, 3);
        // Byte and halfword reads see the same values; writes change nothing.
        assert_eq!(uart.read(0xFE8, B), 0x34);
        assert_eq!(uart.read(0xFFC, H), 0xB1);
        uart.write(0xFE0, W, 0);
        assert_eq!(uart.read(0xFE0, W), 0x11);
    }

    /// The register sequence Linux's amba-pl011 driver performs at probe and at
    /// `startup` (with its 16-bit accessors), then console output and input.
    #[test]
    fn linux_probe_and_startup() {
        let mut uart = Pl011::new();
        // Probe: AMBA ID check, then mask and clear every interrupt.
        assert_eq!(uart.read(0xFE0, W) & 0xFF, 0x11);
        assert_eq!(uart.read(0xFFC, W) & 0xFF, 0xB1);
        uart.write(IMSC, H, 0);
        uart.write(ICR, H, 0xFFFF);
        assert_eq!(uart.read(RIS, H), 0);
        // Startup (pl011_hwinit): clear error and receive interrupts, unmask RX/RT
        // for the moment, trigger levels RX 1/2 and TX 1/2.
        uart.write(ICR, H, 0x400 | 0x200 | 0x100 | 0x80 | 0x40 | 0x10);
        let saved_imsc = uart.read(IMSC, H);
        assert_eq!(saved_imsc, 0);
        uart.write(IMSC, H, INT_RT | INT_RX);
        uart.write(IFLS, H, 0x12);
        // Enable, keeping RTS/DTR.
        let cr = uart.read(CR, H) & (0x800 | 0x400);
        uart.write(CR, H, cr | 0x301);
        // pl011_enable_interrupts: clear RX/RT, drain the RX FIFO, unmask RT | RX.
        uart.write(ICR, H, INT_RT | INT_RX);
        for _ in 0..64 {
            if uart.read(FR, H) & FR_RXFE != 0 {
                break;
            }
            uart.read(DR, H);
        }
        uart.write(IMSC, H, INT_RT | INT_RX);
        // set_termios: disable, divisor for 115200 at 24 MHz, 8N1 with FIFOs, restore.
        let old_cr = uart.read(CR, H);
        uart.write(CR, H, 0);
        uart.write(FBRD, H, 1);
        uart.write(IBRD, H, 13);
        uart.write(LCR_H, H, 0x70);
        uart.write(CR, H, old_cr);
        assert_eq!(uart.read(CR, H), 0x301);
        assert!(!uart.interrupt_level());

        // Transmit (pl011_tx_chars): poll TXFF, write, then enable TXIM while more
        // remains; the hypervisor takes the output after every access.
        for &byte in b"login: " {
            assert_eq!(uart.read(FR, H) & FR_TXFF, 0);
            uart.write(DR, H, u64::from(byte));
            assert_eq!(output(&mut uart), [byte]);
        }
        uart.write(IMSC, H, INT_RT | INT_RX | INT_TX);
        assert!(uart.interrupt_level());
        assert_eq!(uart.read(MIS, H), INT_TX);
        // Nothing left to send: the driver masks TX again and the line drops.
        uart.write(IMSC, H, INT_RT | INT_RX);
        assert!(!uart.interrupt_level());
        assert_eq!(uart.read(FR, H) & (FR_BUSY | FR_TXFE), FR_TXFE);

        // Receive: two keys are below the trigger (16): receive timeout.
        assert!(uart.push_input(b'o'));
        assert!(uart.push_input(b'k'));
        assert!(uart.interrupt_level());
        assert_eq!(uart.read(MIS, H), INT_RT);
        // The interrupt handler reads until RXFE, which clears RT.
        let mut got = Vec::new();
        while uart.read(FR, H) & FR_RXFE == 0 {
            got.push(uart.read(DR, H) as u8);
        }
        assert_eq!(got, b"ok");
        assert!(!uart.interrupt_level());
        assert_eq!(uart.read(RIS, H) & (INT_RX | INT_RT), 0);
    }

    #[test]
    fn transmit_interrupt_is_set_by_writes_and_cleared_by_icr() {
        let mut uart = Pl011::new();
        uart.write(IMSC, W, INT_TX);
        assert!(uart.interrupt_level());
        uart.write(ICR, W, INT_TX);
        assert!(!uart.interrupt_level());
        // Stays clear until the next write ...
        assert!(output(&mut uart).is_empty());
        assert_eq!(uart.read(RIS, W) & INT_TX, 0);
        // ... which (FIFO at once at or below the trigger level) sets it again.
        uart.write(DR, W, u64::from(b'a'));
        assert_eq!(uart.read(RIS, W) & INT_TX, INT_TX);
        assert_eq!(uart.read(MIS, W), INT_TX);
        assert_eq!(output(&mut uart), b"a");
    }

    #[test]
    fn held_output_fills_the_fifo_until_the_transmitter_is_on() {
        let mut uart = Pl011::new();
        uart.write(CR, W, 0x201); // UARTEN | RXE, TXE off
        for byte in 0..32u8 {
            uart.write(DR, W, u64::from(byte));
        }
        assert!(output(&mut uart).is_empty());
        // Full, busy, not empty; TX above the 1/2 trigger: no TX interrupt.
        assert_eq!(uart.read(FR, W) & 0xF8, FR_TXFF | FR_BUSY | FR_RXFE);
        assert_eq!(uart.read(RIS, W) & INT_TX, 0);
        // A 33rd byte is lost.
        uart.write(DR, W, 0xFF);
        assert_eq!(uart.stats().tx_dropped, 1);
        uart.write(CR, W, 0x301);
        let sent = output(&mut uart);
        assert_eq!(sent, (0..32).collect::<Vec<u8>>());
        assert_eq!(uart.read(FR, W) & 0xF8, FR_TXFE | FR_RXFE);
        assert_eq!(uart.read(RIS, W) & INT_TX, INT_TX);
    }

    #[test]
    fn output_taken_in_pieces() {
        let mut uart = Pl011::new();
        uart.write(CR, W, 0x201);
        for &byte in b"abc" {
            uart.write(DR, W, u64::from(byte));
        }
        uart.write(CR, W, 0x301);
        assert_eq!(uart.take_output(&mut []), 0);
        let mut two = [0u8; 2];
        assert_eq!(uart.take_output(&mut two), 2);
        assert_eq!(&two, b"ab");
        assert_eq!(uart.read(FR, W) & (FR_BUSY | FR_TXFE), FR_BUSY);
        assert_eq!(uart.take_output(&mut two), 1);
        assert_eq!(two[0], b'c');
        assert_eq!(uart.take_output(&mut two), 0);
        assert_eq!(uart.read(FR, W) & (FR_BUSY | FR_TXFE), FR_TXFE);
    }

    #[test]
    fn receive_levels_flags_and_interrupts() {
        let mut uart = Pl011::new();
        uart.write(IMSC, W, INT_RX | INT_RT);
        // IFLS RX 1/2 of 32 = 16 entries.
        for byte in 0..15u8 {
            assert!(uart.push_input(byte));
        }
        assert_eq!(uart.read(RIS, W) & (INT_RX | INT_RT), INT_RT);
        assert!(uart.push_input(15));
        assert_eq!(uart.read(RIS, W) & (INT_RX | INT_RT), INT_RX | INT_RT);
        assert_eq!(uart.read(FR, W) & (FR_RXFE | FR_RXFF), 0);
        // Reading one drops below the trigger: RX clears, the timeout stays.
        assert_eq!(uart.read(DR, W), 0);
        assert_eq!(uart.read(RIS, W) & (INT_RX | INT_RT), INT_RT);
        // ICR clears the timeout until something changes.
        uart.write(ICR, W, INT_RT);
        assert!(!uart.interrupt_level());
        assert_eq!(uart.read(DR, B), 1);
        assert_eq!(uart.read(MIS, W), INT_RT);
        // Fill to 32: RXFF.
        for byte in 16..34u8 {
            assert!(uart.push_input(byte));
        }
        assert_eq!(uart.read(FR, W) & (FR_RXFE | FR_RXFF), FR_RXFF);
        // Drain: the last read clears everything.
        for expected in 2..34u64 {
            assert_eq!(uart.read(DR, W), expected);
        }
        assert_eq!(uart.read(FR, W) & (FR_RXFE | FR_RXFF), FR_RXFE);
        assert_eq!(uart.read(RIS, W) & (INT_RX | INT_RT), 0);
        assert!(!uart.interrupt_level());
        // Reading an empty FIFO gives 0 and changes nothing.
        assert_eq!(uart.read(DR, W), 0);
        assert_eq!(uart.read(RIS, W) & (INT_RX | INT_RT), 0);
    }

    #[test]
    fn trigger_levels() {
        // RXIFLSEL 0..4 = 1/8, 1/4, 1/2, 3/4, 7/8 of 32 = 4, 8, 16, 24, 28 entries.
        for (select, level) in [(0, 4), (1, 8), (2, 16), (3, 24), (4, 28), (7, 16)] {
            let mut uart = Pl011::new();
            uart.write(IFLS, W, select << 3);
            for byte in 0..level - 1 {
                uart.push_input(byte as u8);
            }
            assert_eq!(uart.read(RIS, W) & INT_RX, 0, "select {select}");
            uart.push_input(0);
            assert_eq!(uart.read(RIS, W) & INT_RX, INT_RX, "select {select}");
        }
        // TXIFLSEL: with the transmitter off, TX asserts at or below the level.
        for (select, level) in [(0u64, 4usize), (1, 8), (2, 16), (3, 24), (4, 28)] {
            let mut uart = Pl011::new();
            uart.write(IFLS, W, select);
            uart.write(CR, W, 0x201);
            for _ in 0..level {
                uart.write(DR, W, 0);
            }
            assert_eq!(uart.read(RIS, W) & INT_TX, INT_TX, "select {select}");
            uart.write(DR, W, 0);
            assert_eq!(uart.read(RIS, W) & INT_TX, 0, "select {select}");
        }
    }

    #[test]
    fn overrun() {
        let mut uart = Pl011::new();
        uart.write(IMSC, W, INT_OE);
        for byte in 0..32u8 {
            assert!(uart.push_input(byte));
        }
        assert!(!uart.push_input(0xAA));
        assert_eq!(uart.stats().rx_overruns, 1);
        // RSR.OE (bit 3) and OERIS (bit 10).
        assert_eq!(uart.read(RSR, W), 0x8);
        assert_eq!(uart.read(MIS, W), INT_OE);
        assert!(uart.interrupt_level());
        // Room again: the next character carries OE (DR bit 11).
        assert_eq!(uart.read(DR, W), 0);
        assert!(uart.push_input(b'n'));
        for expected in 1..32u64 {
            assert_eq!(uart.read(DR, W), expected);
        }
        assert_eq!(uart.read(DR, W), 0x800 | u64::from(b'n'));
        // ECR (a write to offset 4) clears RSR; ICR clears OERIS.
        uart.write(RSR, W, 0);
        assert_eq!(uart.read(RSR, W), 0);
        uart.write(ICR, W, INT_OE);
        assert!(!uart.interrupt_level());
    }

    #[test]
    fn fifos_disabled_means_one_entry() {
        let mut uart = Pl011::new();
        uart.write(LCR_H, W, 0x60); // 8 bits, FEN clear
        uart.write(IMSC, W, INT_RX);
        assert!(uart.push_input(b'1'));
        // One byte fills the holding register and raises RX.
        assert_eq!(uart.read(FR, W) & (FR_RXFE | FR_RXFF), FR_RXFF);
        assert!(uart.interrupt_level());
        assert!(!uart.push_input(b'2'));
        assert_eq!(uart.stats().rx_overruns, 1);
        assert_eq!(uart.read(DR, W), u64::from(b'1'));
        assert!(!uart.interrupt_level());
        // Transmit side: one write fills the holding register while TX is off.
        uart.write(CR, W, 0x201);
        uart.write(DR, W, u64::from(b'x'));
        assert_eq!(uart.read(FR, W) & (FR_TXFF | FR_TXFE), FR_TXFF);
        assert_eq!(uart.read(RIS, W) & INT_TX, 0);
        uart.write(CR, W, 0x301);
        assert_eq!(output(&mut uart), b"x");
        assert_eq!(uart.read(RIS, W) & INT_TX, INT_TX);
    }

    #[test]
    fn toggling_fen_flushes_received_data() {
        let mut uart = Pl011::new();
        uart.push_input(b'a');
        uart.write(LCR_H, W, 0x60);
        assert_eq!(uart.read(FR, W) & FR_RXFE, FR_RXFE);
        assert_eq!(uart.read(RIS, W) & (INT_RX | INT_RT), 0);
        // Rewriting the same FEN keeps the data.
        uart.push_input(b'b');
        uart.write(LCR_H, W, 0x62);
        assert_eq!(uart.read(DR, W), u64::from(b'b'));
    }

    #[test]
    fn receiver_off_or_disabled_drops_input() {
        let mut uart = Pl011::at_reset();
        assert!(!uart.push_input(b'a')); // UARTEN clear
        let mut uart = Pl011::new();
        uart.write(CR, W, 0x101); // RXE clear
        assert!(!uart.push_input(b'a'));
        assert_eq!(uart.stats().rx_dropped, 1);
        assert_eq!(uart.read(FR, W) & FR_RXFE, FR_RXFE);
    }

    #[test]
    fn loopback() {
        let mut uart = Pl011::new();
        // LBE | TXE | RXE | UARTEN, with RTS and Out2 set.
        uart.write(CR, W, 0x80 | 0x300 | 0x1 | 0x800 | 0x2000);
        uart.write(IMSC, W, INT_RT);
        uart.write(DR, W, u64::from(b'L'));
        // Nothing leaves the UART; the byte arrives at the receiver.
        assert!(output(&mut uart).is_empty());
        assert!(uart.interrupt_level());
        assert_eq!(uart.read(DR, W), u64::from(b'L'));
        // Outside input is disconnected in loopback.
        assert!(!uart.push_input(b'x'));
        // Modem inputs follow the outputs: RTS -> CTS (bit 0), Out2 -> RI (bit 8).
        assert_eq!(uart.read(FR, W) & 0x107, 0x101);
        // Bytes held while the transmitter was off loop back when it comes on.
        uart.write(CR, W, 0x80 | 0x201);
        uart.write(DR, W, u64::from(b'1'));
        uart.write(DR, W, u64::from(b'2'));
        assert_eq!(uart.read(FR, W) & FR_RXFE, FR_RXFE);
        uart.write(CR, W, 0x80 | 0x301);
        assert_eq!(uart.read(DR, W), u64::from(b'1'));
        assert_eq!(uart.read(DR, W), u64::from(b'2'));
        // Loopback with the receiver off loses the byte.
        uart.write(CR, W, 0x80 | 0x101);
        uart.write(DR, W, u64::from(b'3'));
        assert_eq!(uart.stats().rx_dropped, 2);
        assert_eq!(uart.read(FR, W) & FR_RXFE, FR_RXFE);
    }

    #[test]
    fn access_widths() {
        let mut uart = Pl011::new();
        // DR written as a byte, halfword and word.
        uart.write(DR, B, u64::from(b'b'));
        uart.write(DR, H, u64::from(b'h'));
        uart.write(DR, W, u64::from(b'w'));
        assert_eq!(output(&mut uart), b"bhw");
        // 64-bit accesses: read as zero, writes ignored.
        uart.write(DR, D, u64::from(b'd'));
        assert!(output(&mut uart).is_empty());
        assert_eq!(uart.read(CR, D), 0);
        assert_eq!(uart.read(0xFE0, D), 0);
        // Narrow reads return the low bits; narrow writes are zero-extended.
        uart.write(IMSC, W, 0x7FF);
        assert_eq!(uart.read(IMSC, B), 0xFF);
        assert_eq!(uart.read(IMSC, H), 0x7FF);
        uart.write(IMSC, B, 0x10);
        assert_eq!(uart.read(IMSC, W), 0x10);
        // Offsets inside a register are not registers.
        uart.write(CR + 1, B, 0);
        assert_eq!(uart.read(CR, W), 0x301);
        assert_eq!(uart.read(CR + 2, H), 0);
        uart.push_input(b'z');
        assert_eq!(uart.read(DR + 1, B), 0);
        assert_eq!(uart.read(DR, B), u64::from(b'z'));
    }

    #[test]
    fn register_masks_and_read_only_registers() {
        let mut uart = Pl011::new();
        // Writing all ones keeps only the defined bits.
        for (offset, mask) in [
            (0x20, 0xFF),
            (IBRD, 0xFFFF),
            (FBRD, 0x3F),
            (IFLS, 0x3F),
            (IMSC, 0x7FF),
            (0x48, 0x7),
        ] {
            uart.write(offset, W, 0xFFFF_FFFF);
            assert_eq!(uart.read(offset, W), mask, "{offset:#x}");
        }
        uart.write(LCR_H, W, 0xFFFF_FFFF);
        assert_eq!(uart.read(LCR_H, W), 0xFF);
        uart.write(CR, W, 0xFFFF_FFFF);
        assert_eq!(uart.read(CR, W), 0xFF87);
        // Read-only and reserved registers ignore writes; ICR reads as zero.
        let mut uart = Pl011::new();
        let before = uart.save();
        for offset in [FR, RIS, MIS, 0x08, 0x1C, 0x4C, 0x80, 0xFD0, 0xFE4, 0xFF4] {
            uart.write(offset, W, 0xFFFF_FFFF);
        }
        assert_eq!(uart.save(), before);
        assert_eq!(uart.read(ICR, W), 0);
        assert_eq!(uart.read(0x08, W), 0);
    }

    #[test]
    fn every_offset_and_width_is_safe() {
        // A deterministic sweep: every byte offset, width and a few values, reads and
        // writes, with input arriving between accesses.
        let mut uart = Pl011::new();
        let widths = [B, H, W, D];
        let values = [
            0,
            1,
            0xFF,
            0xFFFF,
            0xFFFF_FFFF,
            u64::MAX,
            0x5A5A_5A5A_5A5A_5A5A,
        ];
        for offset in 0..regs::SIZE {
            for (index, width) in widths.iter().enumerate() {
                let value = values[(offset as usize + index) % values.len()];
                uart.write(offset, *width, width.truncate(value));
                let read = uart.read(offset, *width);
                assert_eq!(read, width.truncate(read));
                uart.push_input(offset as u8);
                uart.take_output(&mut [0; 4]);
            }
        }
        assert!(uart.save().is_valid());
    }

    /// A UART in a busy state: data in both FIFOs after the rings wrapped, an
    /// overrun pending, odd register values.
    fn busy_uart() -> Pl011 {
        let mut uart = Pl011::new();
        for round in 0..3u8 {
            for byte in 0..20u8 {
                uart.push_input(byte.wrapping_mul(round + 1));
            }
            for _ in 0..15 {
                uart.read(DR, W);
            }
        }
        while uart.push_input(0x77) {}
        uart.write(IFLS, W, 0x21);
        uart.write(IMSC, W, INT_RX | INT_OE);
        uart.write(CR, W, 0x0201 | 0x400);
        for &byte in b"held" {
            uart.write(DR, W, u64::from(byte));
        }
        uart.write(0x20, W, 0x12);
        uart
    }

    #[test]
    fn save_restore_round_trip() {
        let mut original = busy_uart();
        let state = original.save();
        assert!(state.is_valid());
        assert_eq!(state.rx_len, 32);
        assert_eq!(state.tx_len, 4);
        assert_eq!(&state.tx_fifo[..4], b"held");
        assert!(state.overrun_pending);

        let mut restored = Pl011::at_reset();
        restored.restore(&state);
        assert_eq!(restored.save(), state);
        assert_eq!(restored.interrupt_level(), original.interrupt_level());
        // Both behave the same from here on.
        for offset in [FR, RIS, MIS, RSR, DR, DR, FR, RIS] {
            assert_eq!(
                restored.read(offset, W),
                original.read(offset, W),
                "{offset:#x}"
            );
        }
        original.write(CR, W, 0x301);
        restored.write(CR, W, 0x301);
        assert_eq!(output(&mut restored), output(&mut original));
        assert_eq!(restored.save(), original.save());
    }

    #[test]
    fn corrupt_state_is_detected_and_clamped() {
        let good = busy_uart().save();
        let corruptions: [fn(&mut Pl011State); 6] = [
            |s| s.rx_len = 33,
            |s| s.tx_len = u32::MAX,
            |s| s.cr = 0xFFFF_FFFF,
            |s| s.rx_fifo[0] = 0xF000,
            |s| {
                s.tx_len = 0;
            },
            |s| s.imsc = 0x800,
        ];
        for corrupt in corruptions {
            let mut state = good;
            corrupt(&mut state);
            assert!(!state.is_valid());
            let mut uart = Pl011::new();
            uart.restore(&state);
            // Whatever was restored is a state the UART can be in.
            assert!(uart.save().is_valid());
            assert!(uart.save().rx_len <= 32 && uart.save().tx_len <= 32);
            for offset in (0..0x50).step_by(4) {
                uart.read(offset, W);
            }
        }
    }

    #[test]
    fn persist_refuses_a_corrupt_state_and_changes_nothing() {
        use crate::mmio::{InvalidState, Persist};
        let good = busy_uart().save();
        let mut uart = Pl011::new();
        assert_eq!(uart.restore_state(&good), Ok(()));
        assert_eq!(uart.save_state(), good);
        let mut corrupt = good;
        corrupt.rx_len = 33;
        assert_eq!(
            uart.restore_state(&corrupt),
            Err(InvalidState(
                "the UART's FIFOs or registers hold impossible values"
            ))
        );
        assert_eq!(uart.save(), good);
    }
}
