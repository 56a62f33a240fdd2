//! The Broadcom GPIO controller of the Raspberry Pi 4 (BCM2711): Aerie only routes
//! the PL011 (UART0) to the header pins, GPIO 14 (TXD0) and 15 (RXD0), as the boot
//! firmware may have given them to the mini UART or left them as inputs.
//!
//! Reference: BCM2711 ARM Peripherals, 5.2 (GPFSEL registers) and 5.3 (alternative
//! function assignments: ALT0 of GPIO 14/15 is TXD0/RXD0).

/// GPFSEL1: function select of GPIO 10 to 19, three bits per pin.
const GPFSEL1: usize = 0x04;
/// The pins.
const TXD0_PIN: usize = 14;
const RXD0_PIN: usize = 15;
/// Function select value ALT0.
const ALT0: u32 = 0b100;
/// Distance from the GPIO controller to UART0 on the BCM2711 (and BCM2835).
pub const UART0_OFFSET: u64 = 0x1000;

/// Puts GPIO 14 and 15 in their UART0 function.
///
/// # Safety
/// `base` must be the BCM2711 GPIO controller's registers, accessible (identity
/// mapped or MMU off), with no other user at the time (the boot CPU, early).
pub unsafe fn route_uart0(base: usize) {
    let register = (base + GPFSEL1) as *mut u32;
    // SAFETY: the caller guarantees `base` is the GPIO block; GPFSEL1 is an aligned
    // 32-bit register inside it.
    let mut value = unsafe { core::ptr::read_volatile(register) };
    for pin in [TXD0_PIN, RXD0_PIN] {
        let shift = (pin % 10) * 3;
        value = (value & !(0b111 << shift)) | (ALT0 << shift);
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(register, value) };
}
