//! The guest's PMU (the design is in `aerie_hyp::pmu`): whether the guest gets the
//! host's, its state moving with the vCPU, and its overflow interrupt reaching the
//! guest as the same PPI.

use super::Vm;
use super::host_irq::Completion;
use super::interrupts;
use super::vcpu::{Line, VcpuRun};
use crate::arch::pmu;
use crate::drivers::gic;
use aerie_hyp::platform::Platform;
use aerie_hyp::vcpu::PmuState;

/// The PMU's overflow interrupt (an INTID) a guest gets on this host, if it gets a
/// PMU: the CPU has a PMUv3, the host's device tree gives the PMU one PPI (so the
/// physical interrupt reaches Aerie on the CPU whose counter overflowed), and the
/// guest has a GIC to deliver it. Elsewhere (no PMU, or the Raspberry Pi 4, whose
/// tree gives one SPI per CPU) the guest has no PMU at all: PMUVer 0, no device
/// tree node, its registers trapped and read as zero.
pub fn host_interrupt(platform: &Platform<'_>, has_gic: bool) -> Option<u32> {
    let irq = platform.pmu?;
    (has_gic && pmu::host_pmu().is_some()).then_some(irq.0)
}

/// Gives vCPU `run.index`, about to run on this CPU for the first time, the PMU in
/// `state` and its overflow interrupt: the physical PPI enabled here and linked to
/// the guest's.
pub fn start(vm: &Vm, index: usize, state: &PmuState) {
    let (Some(intid), Some((_, counters))) = (vm.pmu_intid, pmu::host_pmu()) else {
        return;
    };
    if let Some(vgic) = &vm.vgic {
        let _ = vgic.lock().map_hardware(intid, index, intid);
    }
    pmu::load(state, counters);
    gic::enable_private_interrupt(intid);
}

/// The vCPU's PMU as it is now (for a snapshot or a vCPU that stops); a reset PMU
/// for a guest without one.
pub fn save(vm: &Vm) -> PmuState {
    let mut state = PmuState::default();
    if let (Some(_), Some((_, counters))) = (vm.pmu_intid, pmu::host_pmu()) {
        pmu::save(&mut state, counters);
    }
    state
}

/// The vCPU stopped: its PMU is saved in the returned state, and this CPU's PMU
/// stops counting and interrupting.
pub fn stop(vm: &Vm) -> PmuState {
    let state = save(vm);
    if vm.pmu_intid.is_some() {
        pmu::quiesce();
    }
    state
}

/// The PMU's physical overflow interrupt arrived: handed to the guest as the same
/// PPI, hardware-linked, unless the guest cleared the overflow (or disabled the
/// counters or their interrupt) before Aerie saw it.
pub fn overflow_fired(vm: &Vm, run: &mut VcpuRun) -> Completion {
    let Some(intid) = vm.pmu_intid else {
        return Completion::Deactivate;
    };
    let level = pmu::overflow_interrupt();
    interrupts::hardware_fired(vm, run, intid, level, Line::Pmu)
}

/// Gives the vGIC the overflow interrupt's line as the PMU now has it: it is a level
/// (Arm ARM D13.4), and the guest clears it by writing PMOVSCLR_EL0 or PMINTENCLR_EL1
/// without an exit. Called (by `interrupts::update_hardware_lines`) while the vGIC
/// has it high.
pub fn update_overflow_line(vm: &Vm, run: &mut VcpuRun) {
    let Some(intid) = vm.pmu_intid else { return };
    let level = pmu::overflow_interrupt();
    interrupts::update_hardware_level(vm, run, intid, level, Line::Pmu);
}
