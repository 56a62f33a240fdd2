//! The vCPU run loop: enter the guest, decode the exit, handle it, re-enter.
//!
//! ```text
//!   load (list registers, timers) -> enter_guest -> save (list registers)
//!        ^                                               |
//!        +---- exits::handle (decode once, act) <--------+
//! ```

use super::Vm;
use super::exits::{self, Flow};
use super::interrupts;
use super::snapshot;
use super::vcpu::VcpuRun;
use crate::arch::cpu;
use crate::arch::el1_state;
use crate::arch::guest_entry::{SwitchFrame, enter_guest};
use crate::arch::hyp_config;
use crate::drivers::gic::{self, VIRTUAL_TIMER_INTID};
use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2, Readable};
use aerie_devices::vgic::ListRegisterFormat;
use aerie_hyp::exit::{TrapInfo, VectorKind};
use aerie_hyp::vcpu::VcpuState;

fn trap_info() -> TrapInfo {
    TrapInfo {
        esr: ESR_EL2.get(),
        far: FAR_EL2.get(),
        hpfar: HPFAR_EL2.get(),
    }
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
        gic::enable_virtual_interface(0);
    }
    vm.psci.lock().mark_on(index);
    log::debug!("vCPU {index} starting at {:#x}", state.registers.pc);

    let (list_registers, format) = match &vm.vgic {
        Some(vgic) => {
            let mut vgic = vgic.lock();
            let _ = vgic.map_hardware(VIRTUAL_TIMER_INTID, index, VIRTUAL_TIMER_INTID);
            (gic::list_register_count(), vgic.list_register_format())
        }
        None => (0, ListRegisterFormat::default()),
    };
    super::pmu::start(vm, index, &state.pmu);
    let mut run = VcpuRun::new(index, state.physical_timer, list_registers, format);
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
        let vector = unsafe { enter_guest(&mut frame) };
        let interrupt_exit = matches!(vector, VectorKind::Irq | VectorKind::Fiq);
        interrupts::save(vm, &mut run, interrupt_exit);
        let flow = exits::handle(vm, &mut run, &mut frame.guest, vector, &trap_info());
        interrupts::settle(vm, &mut run);
        if flow == Flow::VcpuOff {
            break;
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
        // No maintenance interrupt for a vCPU that is gone.
        gic::enable_virtual_interface(0);
    }
    // A stopped vCPU's timers and PMU must not keep interrupting this CPU, which
    // parks.
    state.pmu = super::pmu::stop(vm);
    el1_state::disable_virtual_timer();
    cpu::stop_hypervisor_timer();
    state
}
