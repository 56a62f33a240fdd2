//! The vCPU run loop: enter the guest, handle the exit, repeat.

use super::Vm;
use super::exits::{self, Flow};
use super::interrupts;
use super::snapshot;
use crate::arch::el1_state;
use crate::arch::guest_entry::{SwitchFrame, enter_guest};
use crate::arch::hyp_config;
use crate::drivers::gic::{self, VIRTUAL_TIMER_INTID};
use aerie_hyp::exit::TrapInfo;
use aerie_hyp::vcpu::{EmulatedTimer, VcpuState};
use core::arch::asm;

/// Longest line of guest debug output kept before it is printed anyway.
const DEBUG_LINE: usize = 256;

/// The state of a running vCPU that lives outside the CPU.
pub struct VcpuRun {
    /// Which vCPU.
    pub index: usize,
    /// The emulated EL1 physical timer.
    pub timer: EmulatedTimer,
    /// How many list registers this CPU has (0 without a vGIC).
    pub list_registers: usize,
    /// What the list registers were last loaded with (see `interrupts::load`).
    pub loaded: Option<interrupts::LoadedPlan>,
    /// The emulated physical timer's last line level and deadline given to the vGIC
    /// and the EL2 timer (recomputed on every entry, acted on when it changes).
    pub timer_line: Option<(bool, Option<u64>)>,
    /// The virtual timer's interrupt line as last given to the vGIC (see
    /// `interrupts::update_virtual_timer`): while it is high, every entry reads the
    /// timer again.
    pub virtual_timer_line: bool,
    /// Debug output not yet printed (an unfinished line).
    line: [u8; DEBUG_LINE],
    line_length: usize,
}

impl VcpuRun {
    /// Adds guest debug output, printing each complete line with a `guest: ` prefix.
    pub fn debug_output(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' || self.line_length == DEBUG_LINE {
                self.flush_debug_output();
            }
            if byte != b'\n' {
                let shown = if byte == b'\t' || (0x20..0x7f).contains(&byte) {
                    byte
                } else {
                    b'.'
                };
                self.line[self.line_length] = shown;
                self.line_length += 1;
            }
        }
    }

    /// Prints what is left of the current debug line.
    pub fn flush_debug_output(&mut self) {
        if self.line_length > 0 {
            let text = core::str::from_utf8(&self.line[..self.line_length]).unwrap_or("?");
            println!("guest: {text}");
            self.line_length = 0;
        }
    }
}

fn trap_info() -> TrapInfo {
    let (esr, far, hpfar): (u64, u64, u64);
    // SAFETY: reading the EL2 syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, ESR_EL2", "mrs {}, FAR_EL2", "mrs {}, HPFAR_EL2",
            out(reg) esr, out(reg) far, out(reg) hpfar, options(nomem, nostack, preserves_flags));
    }
    TrapInfo { esr, far, hpfar }
}

/// Runs vCPU `index` of `vm` on this CPU, from `state`, until it turns itself off;
/// returns its final state.
pub fn run_vcpu(vm: &'static Vm, index: usize, mut state: VcpuState) -> VcpuState {
    // SAFETY: the VM's stage-2 tables are complete (built by `create`) and this CPU
    // now runs nothing but this vCPU at EL1/EL0.
    unsafe { hyp_config::enter_guest_mode(&vm.control_for(index)) };
    // SAFETY: guest mode is set up for this vCPU, whose state this is.
    unsafe { el1_state::load(&state.el1) };
    // SAFETY: as above; CPTR_EL2 (set by enter_guest_mode) does not trap FP.
    unsafe { el1_state::load_fp(&state.fp) };
    if vm.vgic.is_some() {
        gic::restore_cpu_interface(&state.gic);
    }
    vm.psci.lock().mark_on(index);
    log::debug!("vCPU {index} starting at {:#x}", state.registers.pc);

    let list_registers = match &vm.vgic {
        Some(vgic) => {
            let _ = vgic
                .lock()
                .map_hardware(VIRTUAL_TIMER_INTID, index, VIRTUAL_TIMER_INTID);
            gic::list_register_count()
        }
        None => 0,
    };
    let mut run = VcpuRun {
        index,
        timer: state.physical_timer,
        list_registers,
        loaded: None,
        timer_line: None,
        virtual_timer_line: false,
        line: [0; DEBUG_LINE],
        line_length: 0,
    };
    let mut frame = SwitchFrame::new(state.registers, state.el1.sp_el0);
    loop {
        if snapshot::requested() {
            snapshot::checkpoint(vm, &run, &frame, |paused| {
                if snapshot::take_and_report(vm, paused) && snapshot::power_off_after() {
                    // Before the guest could run (and write to its disks) again.
                    crate::stop::power_off();
                }
                super::console::prompt_again();
            });
        }
        interrupts::load(vm, &mut run);
        // SAFETY: guest mode is set up for this vCPU; the frame's PSTATE comes from
        // the guest's own exits or from a reset state, so it never names EL2.
        let kind = unsafe { enter_guest(&mut frame) };
        let info = trap_info();
        interrupts::save(vm, &mut run);
        match exits::handle(vm, &mut run, &mut frame.guest, kind, &info) {
            Flow::Continue => {}
            Flow::VcpuOff => break,
        }
    }
    run.flush_debug_output();
    log::debug!(
        "vCPU {index} off after {} exits",
        super::stats::exits(index)
    );
    state.registers = frame.guest;
    state.physical_timer = run.timer;
    el1_state::save(&mut state.el1);
    state.el1.sp_el0 = frame.guest_sp_el0;
    el1_state::save_fp(&mut state.fp);
    if vm.vgic.is_some() {
        state.gic = gic::save_cpu_interface();
    }
    // A stopped vCPU's timer must not keep interrupting this CPU.
    el1_state::disable_virtual_timer();
    state
}
