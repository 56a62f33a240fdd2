//! The physical console's input: bytes typed on the host UART go to the guest's
//! UART or its virtio-console (through the device set, `super::devices`), except
//! Aerie's escape keys (Ctrl-A, then a key; see `aerie_hyp::console`), which open
//! Aerie's own console.

use super::host_irq::Completion;
use super::vcpu::VcpuRun;
use super::{Vm, devices, stats};
use crate::stop;
use aerie_hyp::console::{
    Action, COMMAND_HELP, CONSOLE_BANNER, Console, ConsoleCommand, ESCAPE_HELP, Mode, PROMPT,
    RESUMED,
};
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicBool, Ordering};

/// The console's state (escape decoder, mode, prompt line).
static CONSOLE: crate::sync::Mutex<Console> = crate::sync::Mutex::new(Console::new());

/// Bytes typed for the guest that its UART cannot take yet (its FIFO is full): a
/// paste must not lose characters. Beyond this, input is dropped, like an overrun.
const PENDING_CAPACITY: usize = 4096;

/// Input waiting for room in the guest's receive FIFO.
static PENDING: crate::sync::Mutex<ArrayVec<u8, PENDING_CAPACITY>> =
    crate::sync::Mutex::new(ArrayVec::new_const());

/// Set while typed input goes to the guest's virtio-console (`hvc0`) instead of its
/// UART (Ctrl-A v toggles).
static TO_HVC0: AtomicBool = AtomicBool::new(false);

/// Reads everything the host UART received and acts on it.
pub fn receive(vm: &Vm) {
    let mut hvc0 = ArrayVec::<u8, 64>::new();
    while let Some(byte) = crate::console::read_byte() {
        let action = CONSOLE.lock().input(byte);
        match action {
            Action::ToGuest(byte) if TO_HVC0.load(Ordering::Relaxed) => {
                if hvc0.try_push(byte).is_err() {
                    to_hvc0(vm, &hvc0);
                    hvc0.clear();
                    let _ = hvc0.try_push(byte);
                }
            }
            Action::ToGuest(byte) => {
                let _ = PENDING.lock().try_push(byte);
            }
            other => act(vm, other),
        }
    }
    if !hvc0.is_empty() {
        to_hvc0(vm, &hvc0);
    }
    refill(vm);
}

/// Hands typed bytes to the guest's virtio-console; what does not fit its input
/// buffer is dropped, like a full UART.
fn to_hvc0(vm: &Vm, bytes: &[u8]) {
    if let Some(hvc0) = vm.hvc0 {
        devices::input(vm, hvc0, bytes);
    }
}

/// The host UART's interrupt: typed input arrived.
pub fn host_input(vm: &Vm, _run: &mut VcpuRun) -> Completion {
    receive(vm);
    Completion::Deactivate
}

/// Moves waiting input into the guest's UART while it has room; called when bytes
/// arrive and after guest accesses to its UART (a read makes room).
pub fn refill(vm: &Vm) {
    let mut pending = PENDING.lock();
    if pending.is_empty() {
        return;
    }
    let moved = devices::input(vm, vm.uart, &pending);
    pending.drain(..moved);
}

/// Prints the prompt (and the line typed so far) again if Aerie's console is open.
pub fn prompt_again() {
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
        Action::SwitchInput => {
            let to_hvc0 = !TO_HVC0.fetch_xor(true, Ordering::Relaxed);
            let target = if to_hvc0 {
                "the guest's hvc0 (virtio-console)"
            } else {
                "the guest's UART"
            };
            println!("\nAerie: typed input now goes to {target} (Ctrl-A v to switch)");
        }
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
        ConsoleCommand::Snapshot | ConsoleCommand::SnapshotAndQuit => {
            let then = if command == ConsoleCommand::SnapshotAndQuit {
                super::snapshot::Then::PowerOff
            } else {
                super::snapshot::Then::Resume
            };
            if super::snapshot::request(vm, then) {
                println!("Aerie: pausing the guest for a snapshot");
                // The prompt comes back once the snapshot is written.
                return;
            }
            println!("Aerie: a snapshot is already being taken");
        }
    }
    prompt_again();
}
