//! The physical console's input: bytes typed on the host UART go to the guest's
//! UART (raising its interrupt), except Aerie's escape keys (Ctrl-A, then a key; see
//! `aerie_hyp::console`), which open Aerie's own console.

use super::{Vm, interrupts, stats};
use crate::stop;
use aerie_devices::pl011::Pl011;
use aerie_hyp::console::{
    Action, COMMAND_HELP, CONSOLE_BANNER, Console, ConsoleCommand, ESCAPE_HELP, Mode, PROMPT,
    RESUMED,
};

/// The console's state (escape decoder, mode, prompt line).
static CONSOLE: spin::Mutex<Console> = spin::Mutex::new(Console::new());

/// Reads everything the host UART received and acts on it.
pub fn receive(vm: &Vm) {
    let mut delivered = false;
    while let Some(byte) = crate::console::read_byte() {
        let action = CONSOLE.lock().input(byte);
        match action {
            Action::ToGuest(byte) => delivered |= deliver(vm, byte),
            other => act(vm, other),
        }
    }
    if delivered {
        interrupts::update_uart_line(vm);
    }
}

fn deliver(vm: &Vm, byte: u8) -> bool {
    let mut bus = vm.bus.lock();
    bus.downcast_mut::<Pl011>(vm.uart)
        .is_some_and(|uart| uart.push_input(byte))
}

fn prompt_again() {
    let console = CONSOLE.lock();
    if console.mode() == Mode::Prompt {
        print!("{PROMPT}{}", console.line());
    }
}

fn act(vm: &Vm, action: Action) {
    match action {
        Action::None | Action::ToGuest(_) => {}
        Action::EscapeHelp => {
            print!("\n{ESCAPE_HELP}");
            prompt_again();
        }
        Action::UnknownKey(key) => {
            println!("\n{key}");
            prompt_again();
        }
        Action::Opened => print!("{CONSOLE_BANNER}{PROMPT}"),
        Action::Echo(byte) => crate::console::write_raw(&[byte]),
        Action::Erase => crate::console::write_raw(b"\x08 \x08"),
        Action::Bell => crate::console::write_raw(b"\x07"),
        Action::Cancelled => print!("^C\n{PROMPT}"),
        Action::Unknown(unknown) => {
            print!("\n{unknown}\n{PROMPT}");
        }
        Action::Run(command) => run(vm, command),
    }
}

fn run(vm: &Vm, command: ConsoleCommand) {
    println!();
    match command {
        ConsoleCommand::Empty => {}
        ConsoleCommand::Help => print!("{COMMAND_HELP}"),
        ConsoleCommand::Stats => print!("{}", stats::Table { vcpus: vm.vcpus }),
        ConsoleCommand::Quit => {
            println!("Aerie: quit from the console");
            stop::power_off();
        }
        ConsoleCommand::Resume => print!("{RESUMED}"),
    }
    prompt_again();
}
