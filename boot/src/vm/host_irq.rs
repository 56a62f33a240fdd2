//! Physical interrupts that arrive while a vCPU runs (or waits), each dispatched to
//! the handler registered for its INTID when the VM was made: the guest's virtual
//! timer, Aerie's EL2 timer, kicks from other CPUs, the console UART.

use super::Vm;
use super::vcpu::VcpuRun;
use crate::drivers::gic;
use arrayvec::ArrayVec;

/// Most handlers a VM registers.
const MAX_HANDLERS: usize = 8;

/// What is left to do once a handler ran (the priority is dropped before it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Deactivate the physical interrupt now: Aerie is done with it.
    Deactivate,
    /// Leave it active: it was handed to the guest through a hardware-linked list
    /// register, and the guest's end of interrupt deactivates it.
    GuestDeactivates,
}

/// A handler: what Aerie does when the interrupt arrives on the CPU running `run`.
pub type Handler = fn(&Vm, &mut VcpuRun) -> Completion;

/// The handlers, by INTID.
pub struct HostInterrupts {
    handlers: ArrayVec<(u32, Handler), MAX_HANDLERS>,
}

impl HostInterrupts {
    /// No handlers yet.
    pub const fn new() -> Self {
        Self {
            handlers: ArrayVec::new_const(),
        }
    }

    /// Registers `handler` for `intid` (replacing an earlier one).
    ///
    /// # Panics
    /// With more than [`MAX_HANDLERS`] INTIDs: a fixed set known when the VM is made.
    pub fn register(&mut self, intid: u32, handler: Handler) {
        match self.handlers.iter_mut().find(|(known, _)| *known == intid) {
            Some(entry) => entry.1 = handler,
            None => self.handlers.push((intid, handler)),
        }
    }

    /// Takes every physical interrupt pending on this CPU and runs its handler.
    pub fn take_all(&self, vm: &Vm, run: &mut VcpuRun) {
        loop {
            let intid = gic::acknowledge();
            if intid >= gic::FIRST_SPECIAL_INTID {
                return;
            }
            gic::end_of_interrupt(intid);
            let completion = match self.handlers.iter().find(|(known, _)| *known == intid) {
                Some((_, handler)) => handler(vm, run),
                None => {
                    log::warn!("unexpected physical interrupt {intid}");
                    Completion::Deactivate
                }
            };
            if completion == Completion::Deactivate {
                gic::deactivate(intid);
            }
        }
    }
}
