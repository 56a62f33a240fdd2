//! The guest's devices on the MMIO bus, one type for all of them ([`GuestDevice`]):
//! a guest access, typed input and a snapshot reach a device the same way, through
//! one bus lookup under one lock, and what the device then asks for ([`Effects`]:
//! an interrupt line, waiting input, a fault to report) is applied by [`apply`].
//!
//! A changed interrupt line is given to the vGIC just before the bus lock is
//! released, everything else after: a line only reports changes, so two vCPUs
//! changing one device's line must reach the vGIC in the order the device saw them,
//! or the vGIC could keep a level the device no longer has. Most accesses change
//! nothing and take no other lock.

use super::flash::GuestFlash;
use super::virtio::{GuestBlock, GuestConsole, GuestRamMemory, GuestRng, HostBackend};
use super::{Vm, interrupts};
use aerie_devices::bus::{DeviceId, MmioBus};
use aerie_devices::mmio::{
    AccessWidth, Device, DeviceHost, Effects, InterruptLine, LineChange, MmioDevice, Persist,
};
use aerie_devices::pl011::Pl011;
use aerie_devices::pl031::Pl031;
use aerie_devices::testdev::TestDevice;
use aerie_devices::virtio::{GuestMemory, MmioTransport, QueueFault, VirtioDevice};
use aerie_hyp::exit::MmioAccess;
use aerie_hyp::mmio::{self, GuestRegisters};
use aerie_hyp::snapshot::machine::{DeviceDescription, DeviceKind, DeviceState};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};

/// What a guest device is.
pub enum Model {
    /// The PL011 UART.
    Uart(Pl011),
    /// The PL031 real-time clock.
    Rtc(Pl031),
    /// Aerie's test device.
    Test(TestDevice),
    /// A virtio-blk disk (boxed: its request buffers make it several times larger
    /// than the other devices).
    Block(Box<GuestBlock>),
    /// The virtio-console (`hvc0`).
    Console(GuestConsole),
    /// The virtio-rng.
    Rng(GuestRng),
    /// A flash bank of a firmware guest (boxed: its write buffer).
    Flash(Box<GuestFlash>),
}

/// One guest device on the bus, with its interrupt line if it has one.
pub struct GuestDevice {
    model: Model,
    line: Option<InterruptLine>,
}

impl GuestDevice {
    /// `model`, driving interrupt `intid` if it has one.
    pub fn new(model: Model, intid: Option<u32>) -> Self {
        Self {
            model,
            line: intid.map(InterruptLine::new),
        }
    }

    /// The device's registers.
    fn registers(&mut self) -> &mut dyn MmioDevice {
        match &mut self.model {
            Model::Uart(uart) => uart,
            Model::Rtc(rtc) => rtc,
            Model::Test(test) => test,
            Model::Block(block) => &mut **block,
            Model::Console(console) => console,
            Model::Rng(rng) => rng,
            Model::Flash(flash) => &mut **flash,
        }
    }

    /// Whether a read at `offset` leaves the device as it was, so that it has no
    /// work or effects to look for: most UART reads (the flags, the control
    /// registers), and any read of a virtio transport with nothing to service
    /// (its registers and configuration read without side effects).
    fn read_changes_nothing(&self, offset: u64) -> bool {
        match &self.model {
            Model::Uart(_) => !Pl011::read_changes_state(offset),
            Model::Rtc(_) | Model::Test(_) | Model::Flash(_) => true,
            Model::Block(block) => block.is_quiet(),
            Model::Console(console) => console.is_quiet(),
            Model::Rng(rng) => rng.is_quiet(),
        }
    }

    /// The work an access (or input) entails, and its effects: the UART's output
    /// goes to the console; a virtio transport runs its queues if the access asked
    /// for it; the interrupt line follows the device.
    fn serve(&mut self, host: &mut dyn DeviceHost) -> Effects {
        let line = &mut self.line;
        let mut changed = |level| line.as_mut().and_then(|line| line.update(level));
        match &mut self.model {
            Model::Uart(uart) => {
                let mut buffer = [0u8; 32];
                loop {
                    let count = uart.take_output(&mut buffer);
                    if count == 0 {
                        break;
                    }
                    host.console_output(&buffer[..count]);
                }
                Effects {
                    line: changed(uart.interrupt_level()),
                    takes_input: uart.can_receive(),
                    fault: false,
                }
            }
            Model::Rtc(_) | Model::Test(_) | Model::Flash(_) => Effects::NONE,
            Model::Block(block) => serve_transport(&mut **block, host, changed),
            Model::Console(console) => serve_transport(console, host, changed),
            Model::Rng(rng) => serve_transport(rng, host, changed),
        }
    }

    /// Gives the device bytes typed for the guest (a UART takes what fits its FIFO,
    /// the virtio-console what fits its input buffer, others nothing); how many it
    /// took, and the effects.
    pub fn input(&mut self, bytes: &[u8], host: &mut dyn DeviceHost) -> (usize, Effects) {
        let taken = match &mut self.model {
            Model::Uart(uart) => bytes
                .iter()
                .take_while(|&&byte| uart.can_receive() && uart.push_input(byte))
                .count(),
            Model::Console(console) => console.device_mut().push_input(bytes),
            _ => return (0, Effects::NONE),
        };
        let effects = Effects {
            takes_input: false,
            ..self.serve(host)
        };
        (taken, effects)
    }

    /// The snapshot's kind for this device.
    pub fn kind(&self) -> DeviceKind {
        match self.model {
            Model::Uart(_) => DeviceKind::Pl011,
            Model::Rtc(_) => DeviceKind::Pl031,
            Model::Test(_) => DeviceKind::TestDevice,
            Model::Block(_) => DeviceKind::VirtioBlock,
            Model::Console(_) => DeviceKind::VirtioConsole,
            Model::Rng(_) => DeviceKind::VirtioRng,
            Model::Flash(_) => DeviceKind::CfiFlash,
        }
    }

    /// The snapshot's description of this device, with its window at `base`.
    pub fn describe(&self, base: u64, size: u64) -> DeviceDescription {
        let intid = self.line.map(|line| line.intid());
        DeviceDescription::at(self.kind(), base, size, intid)
    }

    /// A virtio device's fault, once (see [`Effects::fault`]).
    fn take_fault(&mut self) -> Option<QueueFault> {
        match &mut self.model {
            Model::Block(block) => block.take_fault(),
            Model::Console(console) => console.take_fault(),
            Model::Rng(rng) => rng.take_fault(),
            Model::Uart(_) | Model::Rtc(_) | Model::Test(_) | Model::Flash(_) => None,
        }
    }

    /// The host disk behind a virtio-blk device.
    pub fn disk(&mut self) -> Option<&mut HostBackend> {
        match &mut self.model {
            Model::Block(block) => Some(block.device_mut().backend_mut()),
            _ => None,
        }
    }

    /// A firmware guest's flash bank.
    pub fn flash_mut(&mut self) -> Option<&mut GuestFlash> {
        match &mut self.model {
            Model::Flash(flash) => Some(flash),
            _ => None,
        }
    }

    /// The device's state.
    pub fn save(&self) -> DeviceState {
        match &self.model {
            Model::Uart(uart) => DeviceState::Pl011(uart.save_state()),
            Model::Rtc(rtc) => DeviceState::Pl031(rtc.save_state()),
            Model::Test(test) => DeviceState::TestDevice(test.save_state()),
            Model::Block(block) => DeviceState::VirtioBlock(block.save_state()),
            Model::Console(console) => DeviceState::VirtioConsole(console.save_state()),
            Model::Rng(rng) => DeviceState::VirtioRng(rng.save_state()),
            Model::Flash(flash) => DeviceState::CfiFlash(flash.save_state()),
        }
    }

    /// Puts the device into a saved `state`; on error nothing changes.
    pub fn restore(&mut self, state: &DeviceState) -> Result<(), String> {
        let restored = match (&mut self.model, state) {
            (Model::Uart(uart), DeviceState::Pl011(state)) => uart.restore_state(state),
            (Model::Rtc(rtc), DeviceState::Pl031(state)) => rtc.restore_state(state),
            (Model::Test(test), DeviceState::TestDevice(state)) => test.restore_state(state),
            (Model::Block(block), DeviceState::VirtioBlock(state)) => block.restore_state(state),
            (Model::Console(console), DeviceState::VirtioConsole(state)) => {
                console.restore_state(state)
            }
            (Model::Rng(rng), DeviceState::VirtioRng(state)) => rng.restore_state(state),
            (Model::Flash(flash), DeviceState::CfiFlash(state)) => flash.restore_state(state),
            _ => {
                return Err(format!(
                    "a {:?} state does not fit this {:?}",
                    state.kind(),
                    self.kind()
                ));
            }
        };
        restored.map_err(|e| e.to_string())?;
        if let Some(line) = &mut self.line {
            // The next access gives the interrupt controller the restored level.
            line.forget();
        }
        Ok(())
    }
}

/// [`GuestDevice::serve`] for a virtio transport.
fn serve_transport<D: VirtioDevice>(
    transport: &mut MmioTransport<D>,
    host: &mut dyn DeviceHost,
    mut changed: impl FnMut(bool) -> Option<LineChange>,
) -> Effects {
    transport.service(host);
    Effects {
        line: changed(transport.interrupt_level()),
        takes_input: false,
        fault: transport.has_unreported_fault(),
    }
}

impl Device for GuestDevice {
    fn read(
        &mut self,
        offset: u64,
        width: AccessWidth,
        host: &mut dyn DeviceHost,
    ) -> (u64, Effects) {
        let value = self.registers().read(offset, width);
        (value, self.serve(host))
    }

    fn write(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
        host: &mut dyn DeviceHost,
    ) -> Effects {
        self.registers().write(offset, width, value);
        self.serve(host)
    }
}

/// The bus, locked.
type BusGuard<'v> = spin::MutexGuard<'v, MmioBus<GuestDevice>>;

/// What devices use of the host: guest RAM, and the physical console.
struct Host<'r>(GuestRamMemory<'r>);

impl DeviceHost for Host<'_> {
    fn memory(&mut self) -> &mut dyn GuestMemory {
        &mut self.0
    }

    fn console_output(&mut self, bytes: &[u8]) {
        crate::console::write_raw(bytes);
    }
}

/// Performs the guest's access at `ipa` on the device there: one bus lookup and one
/// call under one lock, then the effects, applied once the lock is released. `None`
/// when no device holds every byte of the access; else whether the device is a
/// UART that may take typed input waiting for it (the caller's console moves it in).
pub fn emulate(
    vm: &Vm,
    access: &MmioAccess,
    ipa: u64,
    registers: &mut impl GuestRegisters,
) -> Option<bool> {
    let mut bus = vm.bus.lock();
    let (device, offset) = bus.target_mut(ipa, access.width)?;
    if !access.is_write && device.read_changes_nothing(offset) {
        // The commonest access: a read with no work behind it and no effects.
        let value = device.registers().read(offset, access.width);
        drop(bus);
        mmio::complete_load(access, value, registers);
        return Some(false);
    }
    let mut host = Host(GuestRamMemory(&vm.ram));
    let effects = mmio::emulate_device(access, offset, registers, device, &mut host);
    if let Model::Flash(flash) = &mut device.model {
        // A command may have moved the bank into or out of read-array mode.
        super::flash::after_write(vm, flash);
    }
    if effects.is_none() {
        // Most accesses: nothing to apply.
        return Some(false);
    }
    apply(vm, bus, ipa - offset, effects);
    Some(effects.takes_input)
}

/// Gives device `id` bytes typed for the guest and applies the effects; returns how
/// many it took.
pub fn input(vm: &Vm, id: DeviceId, bytes: &[u8]) -> usize {
    let mut bus = vm.bus.lock();
    let (Some((base, _)), Some(device)) = (bus.window(id), bus.device_mut(id)) else {
        return 0;
    };
    let (taken, effects) = device.input(bytes, &mut Host(GuestRamMemory(&vm.ram)));
    apply(vm, bus, base, effects);
    taken
}

/// Reports the fault of the virtio device at `base` (rare: once per fault).
#[cold]
fn report_fault(vm: &Vm, base: u64) {
    let fault = {
        let mut bus = vm.bus.lock();
        let id = bus.device_at(base);
        id.and_then(|id| bus.device_mut(id)?.take_fault())
    };
    if let Some(fault) = fault {
        log::warn!("guest virtio device at {base:#x}: {fault}; it needs a reset");
    }
}

/// Does what the device at `base` asked for: sets its interrupt line, releases
/// `bus`, then reports a fault. (Waiting input is the caller's to move in.)
fn apply(vm: &Vm, bus: BusGuard<'_>, base: u64, effects: Effects) {
    if let Some(LineChange { intid, level }) = effects.line {
        interrupts::set_line(vm, intid, level);
    }
    drop(bus);
    if effects.fault {
        report_fault(vm, base);
    }
}
