//! A running vCPU's state that lives outside the CPU: what the run loop, the exit
//! handlers and the interrupt plumbing share between two guest runs.

use aerie_devices::vgic::{ListRegisterFormat, LrPlan};
use aerie_hyp::run::debug_line::DebugLine;
use aerie_hyp::run::list_registers::ListRegisterCache;
use aerie_hyp::vcpu::EmulatedTimer;

/// The state of a running vCPU that lives outside the CPU.
pub struct VcpuRun {
    /// Which vCPU.
    pub index: usize,
    /// The emulated EL1 physical timer.
    pub timer: EmulatedTimer,
    /// Set when the emulated physical timer may have changed (the guest wrote one of
    /// its registers, Aerie's EL2 timer fired for its deadline, the vCPU started):
    /// the next entry brings its line and Aerie's EL2 timer up to date. Time alone
    /// changes nothing before the deadline, for which the EL2 timer is armed.
    pub timer_dirty: bool,
    /// How many list registers this CPU has (0 without a vGIC).
    pub list_registers: usize,
    /// What the list registers hold (see `interrupts::load`).
    pub lists: ListRegisterCache,
    /// The vGIC's last plan for the list registers, kept to be filled in place.
    pub plan: LrPlan,
    /// The vGIC's list-register format (GICv3's if there is no vGIC: unused).
    pub list_register_format: ListRegisterFormat,
    /// The emulated physical timer's last line level and deadline given to the vGIC
    /// and the EL2 timer.
    pub timer_line: Option<(bool, Option<u64>)>,
    /// The virtual timer's interrupt line as last given to the vGIC (see
    /// `interrupts::update_virtual_timer`): while it is high, every entry reads the
    /// timer again.
    pub virtual_timer_line: bool,
    /// The PMU's overflow interrupt line as last given to the vGIC (see
    /// `pmu::update_overflow_line`): while it is high, every entry reads the PMU.
    pub pmu_line: bool,
    /// Guest debug output not yet printed.
    debug: DebugLine,
}

impl VcpuRun {
    /// vCPU `index` about to run for the first time on this CPU, with its emulated
    /// physical timer in `timer` and `list_registers` list registers in
    /// `list_register_format`.
    pub fn new(
        index: usize,
        timer: EmulatedTimer,
        list_registers: usize,
        list_register_format: ListRegisterFormat,
    ) -> Self {
        Self {
            index,
            timer,
            timer_dirty: true,
            list_registers,
            lists: ListRegisterCache::new(),
            plan: LrPlan::empty(),
            list_register_format,
            timer_line: None,
            virtual_timer_line: false,
            pmu_line: false,
            debug: DebugLine::new(),
        }
    }

    /// Adds guest debug output, printing each complete line with a `guest: ` prefix.
    pub fn debug_output(&mut self, bytes: &[u8]) {
        self.debug.push(bytes, |line| println!("guest: {line}"));
    }

    /// Prints what is left of the current debug line.
    pub fn flush_debug_output(&mut self) {
        self.debug.flush(|line| println!("guest: {line}"));
    }
}
