//! The Broadcom GPIO controller of the Raspberry Pi 4 (BCM2711): Aerie only routes
//! the PL011 (UART0) to the header pins, GPIO 14 (TXD0) and 15 (RXD0), as the boot
//! firmware may have given them to the mini UART or left them as inputs.
//!
//! Reference: BCM2711 ARM Peripherals, 5.2 (GPFSEL registers) and 5.3 (alternative
//! function assignments: ALT0 of GPIO 14/15 is TXD0/RXD0).

use super::mmio::Registers;
use tock_registers::interfaces::ReadWriteable;
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_bitfields! [u32,
    /// GPFSEL1: function select of GPIO 10 to 19, three bits per pin.
    GPFSEL1 [
        /// GPIO 15's function.
        FSEL15 OFFSET(15) NUMBITS(3) [
            /// ALT0: RXD0, UART0's receive line.
            Rxd0 = 0b100
        ],
        /// GPIO 14's function.
        FSEL14 OFFSET(12) NUMBITS(3) [
            /// ALT0: TXD0, UART0's transmit line.
            Txd0 = 0b100
        ]
    ]
];

register_structs! {
    /// The GPIO registers Aerie touches.
    RegisterBlock {
        (0x00 => _gpfsel0),
        /// GPFSEL1.
        (0x04 => gpfsel1: ReadWrite<u32, GPFSEL1::Register>),
        (0x08 => @END),
    }
}

/// Distance from the GPIO controller to UART0 on the BCM2711 (and BCM2835).
pub const UART0_OFFSET: u64 = 0x1000;

/// Puts GPIO 14 and 15 in their UART0 function.
///
/// # Safety
/// `base` must be the BCM2711 GPIO controller's registers, accessible (identity
/// mapped or MMU off), with no other user at the time (the boot CPU, early).
pub unsafe fn route_uart0(base: usize) {
    // SAFETY: the caller guarantees `base` is the GPIO block, accessible while this
    // function runs and used by no other CPU.
    let gpio: Registers<RegisterBlock> = unsafe { Registers::new(base) };
    gpio.gpfsel1
        .modify(GPFSEL1::FSEL14::Txd0 + GPFSEL1::FSEL15::Rxd0);
}
