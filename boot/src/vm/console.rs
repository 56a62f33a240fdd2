//! The physical console's input: bytes typed on the host UART go to the guest's
//! UART (and raise its interrupt), except Aerie's escape sequences.

use super::Vm;
use super::interrupts;
use aerie_devices::pl011::Pl011;

/// Reads everything the host UART received and hands it to the guest.
pub fn receive(vm: &Vm) {
    let mut delivered = false;
    while let Some(byte) = crate::console::read_byte() {
        let mut bus = vm.bus.lock();
        if let Some(uart) = bus.downcast_mut::<Pl011>(vm.uart) {
            uart.push_input(byte);
            delivered = true;
        }
    }
    if delivered {
        interrupts::update_uart_line(vm);
    }
}
