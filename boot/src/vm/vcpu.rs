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
    /// The lines of the hardware-backed interrupts (the virtual timer's, the PMU's)
    /// as last given to the vGIC (see `interrupts::update_hardware_lines`): while one
    /// is high, every entry reads its device again.
    pub lines: HardwareLines,
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
            lines: HardwareLines::default(),
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

/// A hardware-backed interrupt: a device the guest owns raises its PPI physically,
/// and Aerie lists it hardware-linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The virtual timer (PPI 11).
    VirtualTimer = 1 << 0,
    /// The PMU's overflow interrupt.
    Pmu = 1 << 1,
}

/// Which hardware-backed interrupt lines the vGIC was last told are high, one bit
/// per [`Line`]: one byte, so that the common case (all low, or only the timer's
/// as expected) costs one comparison on the exit path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardwareLines(u8);

impl HardwareLines {
    /// Whether any line is high.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// Whether `line` is high.
    pub fn is_high(self, line: Line) -> bool {
        self.0 & line as u8 != 0
    }

    /// Records `line` as `level`.
    pub fn set(&mut self, line: Line, level: bool) {
        if level {
            self.0 |= line as u8;
        } else {
            self.0 &= !(line as u8);
        }
    }

    /// Whether the virtual timer's line is `timer` and every other line is low:
    /// then, with the timer's output at `timer`, nothing needs an update.
    pub fn only_timer_at(self, timer: bool) -> bool {
        self.0 == timer as u8 * Line::VirtualTimer as u8
    }
}
