//! Interrupts for the guest: moving the vGIC's state in and out of the list
//! registers around each guest run, and turning physical interrupts (the guest's
//! virtual timer, the console UART, kicks from other CPUs) into virtual ones.

use super::Vm;
use super::host_irq::{Completion, HostInterrupts};
use super::vcpu::{Line, VcpuRun};
use crate::drivers::gic::{
    self, HYPERVISOR_TIMER_INTID, KICK_SGI, MAINTENANCE_INTID, VIRTUAL_TIMER_INTID,
};
use aerie_devices::vgic::{Vgic, ich_hcr};
use aerie_hyp::guest_layout;
use aerie_hyp::platform::MAX_CPUS;
use aerie_hyp::run::list_registers::Returned;
use aerie_hyp::vcpu::{TIMER_CTL_ENABLE, TIMER_CTL_IMASK, TIMER_CTL_ISTATUS};
use arrayvec::ArrayVec;
use core::sync::atomic::Ordering;

/// The guest UART's interrupt ID (SPI 1).
pub const GUEST_UART_INTID: u32 = 32 + guest_layout::UART_SPI;

/// The guest's EL1 physical timer PPI (INTID 30), emulated by Aerie.
pub const GUEST_PHYSICAL_TIMER_INTID: u32 = 30;

/// The VM's vGIC behind its lock.
type VgicLock = crate::sync::Mutex<alloc::boxed::Box<dyn Vgic + Send>>;

/// Records that the vGIC's state changed, so that every vCPU makes a new plan.
pub fn vgic_changed(vm: &Vm) -> u64 {
    vm.vgic_generation.fetch_add(1, Ordering::AcqRel) + 1
}

/// Brings the emulated physical timer's line and Aerie's EL2 timer up to date (before
/// idling for a guest that waits for an interrupt).
pub fn update_timers(vm: &Vm, run: &mut VcpuRun) {
    if let Some(vgic) = &vm.vgic {
        update_physical_timer(vm, vgic, run);
    }
}

/// Loads the vCPU's deliverable interrupts into the list registers before it runs.
///
/// Most exits (hypercalls, device accesses) touch no interrupt state: when the vGIC
/// has not changed since the loaded plan was made and the guest gave the list
/// registers back as they were (see [`save`]), the plan still holds and this costs
/// one atomic load. The emulated physical timer is looked at only when it may have
/// changed ([`VcpuRun::timer_dirty`]), the virtual timer's line while it is high.
pub fn load(vm: &Vm, run: &mut VcpuRun) {
    let Some(vgic) = &vm.vgic else { return };
    if run.timer_dirty || vm.virtual_offset_wraps {
        run.timer_dirty = false;
        update_physical_timer(vm, vgic, run);
    }
    if run.lines.any() {
        update_hardware_lines(vm, run);
    }
    let generation = vm.vgic_generation.load(Ordering::Acquire);
    if run.lists.holds_at(generation) {
        let maintenance = run.lists.maintenance();
        if maintenance != 0 {
            // `save` turned the maintenance interrupt off for Aerie's own run.
            gic::enable_virtual_interface(maintenance);
        }
        return;
    }
    let (writes, maintenance, kicks) = {
        let mut vgic = vgic.lock();
        vgic.flush_into(run.index, run.list_registers, &mut run.plan);
        let kicks = vgic.take_kicks();
        // A change made meanwhile by another CPU bumps the generation past the one
        // read above, so the next entry plans again; a flush that moved work to
        // other vCPUs makes them plan again too.
        let generation = if kicks.is_empty() {
            generation
        } else {
            vgic_changed(vm)
        };
        // With more active interrupts than list registers, the guest may end one
        // that none holds: the CPU interface counts those (EOIcount), `save` hands
        // the count back.
        let plan = &run.plan;
        let maintenance = plan.maintenance_bits() | plan.eoi_count_bits();
        let writes = run.lists.record(
            generation,
            run.list_registers,
            |n| plan.value(n),
            maintenance,
        );
        (writes, maintenance, kicks)
    };
    if !kicks.is_empty() {
        kick_others(run.index, kicks);
    }
    for n in 0..writes {
        gic::write_list_register(n, run.lists.value(n));
    }
    gic::enable_virtual_interface(maintenance);
}

/// Reads the list registers the plan used back after the vCPU stopped running, and
/// hands them all to the vGIC only if the guest changed one (it acknowledged or
/// ended an interrupt).
///
/// On an exit for a physical interrupt (`interrupt_exit`), ends of hardware-linked
/// interrupts are set aside instead: the virtual timer that fires again lists its
/// interrupt again as planned, without the vGIC ([`virtual_timer_fired`]), and
/// [`settle`] gives the vGIC whatever the handlers left.
pub fn save(vm: &Vm, run: &mut VcpuRun, interrupt_exit: bool) {
    if run.lists.used() == 0 && run.lists.maintenance() == 0 {
        // Nothing listed, no maintenance interrupt: nothing to read back.
        return;
    }
    let Some(vgic) = &vm.vgic else { return };
    // Read before the control register is written, which clears the count.
    let unlisted_ends = if run.lists.maintenance() & ich_hcr::LRENPIE != 0 {
        gic::unlisted_end_count()
    } else {
        0
    };
    if run.lists.maintenance() != 0 {
        // No maintenance interrupt while Aerie runs (it would end an idle WFI).
        gic::enable_virtual_interface(0);
    }
    let format = run.list_register_format;
    let returned = run
        .lists
        .check_returned(gic::read_list_register, |planned, back| {
            format.pending_hardware_ended(planned, back)
        });
    let set_aside = match returned {
        Returned::Unchanged => true,
        Returned::HardwareEnded => interrupt_exit,
        Returned::Changed => false,
    };
    if set_aside && unlisted_ends == 0 {
        return;
    }
    give_back(vm, vgic, run, unlisted_ends);
}

/// After an interrupt exit's handlers ran: gives the vGIC the list registers if
/// ends of hardware-linked interrupts that no handler listed again remain (see
/// [`save`]), before anything else looks at it.
pub fn settle(vm: &Vm, run: &mut VcpuRun) {
    if !run.lists.has_unlisted_ends() {
        return;
    }
    if let Some(vgic) = &vm.vgic {
        give_back(vm, vgic, run, 0);
    }
}

/// Syncs the vGIC with the list registers as read back, and the ends of
/// `unlisted_ends` interrupts no list register held.
fn give_back(vm: &Vm, vgic: &VgicLock, run: &mut VcpuRun, unlisted_ends: u32) {
    run.lists.invalidate();
    let kicks = {
        let mut vgic = vgic.lock();
        vgic.sync_with_eoi_count(run.index, run.lists.returned(), unlisted_ends);
        vgic.take_kicks()
    };
    // After the sync, so that a plan another vCPU makes meanwhile is made again.
    vgic_changed(vm);
    kick_others(run.index, kicks);
}

/// Kicks the vCPUs in `targets` but `me` (an SPI moved while `me` held it in a list
/// register goes to its new target when `me` gives it back).
pub fn kick_others(me: usize, targets: aerie_devices::vgic::SgiTargets) {
    for target in targets.iter().filter(|&target| target != me) {
        kick(target);
    }
}

/// The guest's virtual timer fired (its physical PPI arrived): the interrupt goes
/// to the guest through a hardware-linked list register, so the guest's end of
/// interrupt deactivates the physical one, unless the guest silenced the timer
/// before Aerie saw it (a level that fell: nothing to deliver).
pub fn virtual_timer_fired(vm: &Vm, run: &mut VcpuRun) -> Completion {
    let level = virtual_timer_condition();
    hardware_fired(vm, run, VIRTUAL_TIMER_INTID, level, Line::VirtualTimer)
}

/// The physical PPI `intid` of a device the guest owns (its virtual timer, its PMU)
/// fired, and the device's output is now `level`: when high, the interrupt goes to
/// the guest as the same PPI, hardware-linked, and `line` is recorded high.
#[inline(always)]
pub fn hardware_fired(
    vm: &Vm,
    run: &mut VcpuRun,
    intid: u32,
    level: bool,
    line: Line,
) -> Completion {
    let Some(vgic) = &vm.vgic else {
        return Completion::Deactivate;
    };
    if !level {
        return Completion::Deactivate;
    }
    // The guest ended the interrupt during this run and changed nothing else:
    // listing it again as planned is all there is to do.
    let format = run.list_register_format;
    if let Some(n) = run
        .lists
        .ended_register(|planned| format.lists(planned, intid))
    {
        gic::write_list_register(n, run.lists.relist(n));
        run.lines.set(line, true);
        return Completion::GuestDeactivates;
    }
    // The vGIC must know of the ends first (the trigger is ignored while the
    // interrupt is listed).
    settle(vm, run);
    let _ = vgic.lock().trigger_edge(intid, Some(run.index));
    run.lines.set(line, true);
    vgic_changed(vm);
    Completion::GuestDeactivates
}

/// Aerie's EL2 timer fired: the emulated EL1 physical timer's deadline passed (the
/// next entry raises the guest's PPI 30), or, for a VM whose virtual offset wraps,
/// the virtual timer's (see [`virtual_timer_deadline`]).
pub fn hypervisor_timer_fired(vm: &Vm, run: &mut VcpuRun) -> Completion {
    crate::arch::cpu::stop_hypervisor_timer();
    run.timer_dirty = true;
    if vm.virtual_offset_wraps {
        // Make QEMU's model look at the virtual timer again.
        crate::arch::hyp_config::reevaluate_virtual_timer(vm.control.cntvoff);
    }
    Completion::Deactivate
}

/// A kick from another CPU (or a maintenance interrupt): leaving the guest was the
/// whole point; the next entry plans the list registers anew if the vGIC changed.
pub fn nothing_more(_vm: &Vm, _run: &mut VcpuRun) -> Completion {
    Completion::Deactivate
}

/// Registers the handlers of the interrupts this module owns.
pub fn register_handlers(handlers: &mut HostInterrupts) {
    handlers.register(VIRTUAL_TIMER_INTID, virtual_timer_fired);
    handlers.register(HYPERVISOR_TIMER_INTID, hypervisor_timer_fired);
    handlers.register(MAINTENANCE_INTID, nothing_more);
    handlers.register(KICK_SGI, nothing_more);
}

/// Whether the guest's virtual timer asserts its interrupt: CNTV_CTL_EL0 has ENABLE
/// set, IMASK clear and ISTATUS set (Arm ARM D12.8, "Operation of the timers").
fn virtual_timer_condition() -> bool {
    let (control, _) = crate::arch::el1_state::virtual_timer();
    let mask = TIMER_CTL_ENABLE | TIMER_CTL_IMASK | TIMER_CTL_ISTATUS;
    control & mask == TIMER_CTL_ENABLE | TIMER_CTL_ISTATUS
}

/// Gives the vGIC the virtual timer's interrupt line as the timer's condition now
/// has it, and the PMU's overflow line if the vGIC has it high: both interrupts are
/// levels, pending exactly while their condition holds. When one fell before the
/// guest took the interrupt, the vGIC lets go of the physical interrupt, which Aerie
/// then deactivates, and the vCPU's list registers are planned anew before it runs.
/// When the timer's level is what the vGIC already has and the PMU's is low, this
/// costs one system register read and one comparison.
///
/// The guest owns its virtual timer and its PMU, so its writes to CNTV_CTL/CVAL/TVAL
/// or PMOVSCLR do not trap: a line rises through the physical interrupt
/// ([`hardware_fired`]) and is read again on every entry while it is high, when the
/// vCPU waits, and before each access to the vGIC's registers (so that ISPENDR reads
/// it as it is).
#[inline(always)]
pub fn update_hardware_lines(vm: &Vm, run: &mut VcpuRun) {
    let level = virtual_timer_condition();
    if run.lines.only_timer_at(level) {
        return;
    }
    update_changed_lines(vm, run, level);
}

/// [`update_hardware_lines`] when something may have changed (out of line: the exit
/// path only pays for the comparison).
#[cold]
#[inline(never)]
fn update_changed_lines(vm: &Vm, run: &mut VcpuRun, timer_level: bool) {
    update_hardware_level(
        vm,
        run,
        VIRTUAL_TIMER_INTID,
        timer_level,
        Line::VirtualTimer,
    );
    if run.lines.is_high(Line::Pmu) {
        super::pmu::update_overflow_line(vm, run);
    }
}

/// Gives the vGIC the line of hardware-backed PPI `intid` as its device's output
/// now is (`level`), if that is not what `run.lines` says the vGIC has for `line`:
/// see [`update_hardware_lines`].
pub fn update_hardware_level(vm: &Vm, run: &mut VcpuRun, intid: u32, level: bool, line: Line) {
    let Some(vgic) = &vm.vgic else { return };
    if level == run.lines.is_high(line) {
        // What the vGIC was last told (a firing counts as high): nothing to do.
        return;
    }
    run.lines.set(line, level);
    let released = vgic
        .lock()
        .set_hardware_level(intid, Some(run.index), level);
    if let Ok(Some(physical)) = released {
        gic::deactivate(physical);
        // The list registers may still hold it pending with the HW bit. (Otherwise
        // the plan stands: the line alone lists nothing until the physical
        // interrupt fires, and an active interrupt keeps its physical one.)
        vgic_changed(vm);
    }
}

/// Sets the emulated EL1 physical timer's interrupt line, and arms Aerie's own EL2
/// physical timer for its deadline so that a sleeping or running vCPU leaves the
/// guest when it expires.
fn update_physical_timer(vm: &Vm, vgic: &VgicLock, run: &mut VcpuRun) {
    let counter = crate::arch::cpu::counter();
    let level = run.timer.interrupt_pending(counter);
    let emulated = run.timer.deadline().filter(|_| !level);
    let deadline = match (emulated, virtual_timer_deadline(vm)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if run.timer_line == Some((level, deadline)) {
        return;
    }
    let level_changed = run.timer_line.is_none_or(|(old, _)| old != level);
    run.timer_line = Some((level, deadline));
    if level_changed {
        let _ = vgic
            .lock()
            .set_level(GUEST_PHYSICAL_TIMER_INTID, Some(run.index), level);
        vgic_changed(vm);
    }
    match deadline {
        Some(deadline) => crate::arch::cpu::arm_hypervisor_timer(deadline),
        None => crate::arch::cpu::stop_hypervisor_timer(),
    }
}

/// For a VM whose virtual count runs ahead of the host counter (a restored
/// snapshot: CNTVOFF_EL2 is "negative"), the host counter value at which the
/// guest's virtual timer fires, if it is armed.
///
/// The architecture compares the virtual count with the compare value, which works
/// for any offset, but QEMU's model computes the expiry as compare value plus
/// offset and never fires the timer when that sum overflows 64 bits, as it does
/// for such an offset. So Aerie also arms its EL2 timer for that moment, and when it
/// expires makes the model re-evaluate the virtual timer, which then fires. On real
/// hardware the virtual timer has fired by then, and the extra wake-up is harmless.
fn virtual_timer_deadline(vm: &Vm) -> Option<u64> {
    if !vm.virtual_offset_wraps {
        return None;
    }
    let (control, compare) = crate::arch::el1_state::virtual_timer();
    let armed = control & (TIMER_CTL_ENABLE | TIMER_CTL_IMASK) == TIMER_CTL_ENABLE;
    armed.then(|| compare.wrapping_add(vm.control.cntvoff))
}

/// Makes vCPU `target` look at its interrupts soon: if it runs on another CPU,
/// that CPU gets a kick SGI and leaves the guest.
pub fn kick(target: usize) {
    if let Some(mpidr) = crate::smp::host_mpidr_of_vcpu(target) {
        if mpidr != crate::arch::cpu::mpidr() {
            gic::kick(mpidr);
        }
    }
}

/// Sets the level of SPI `intid`, and kicks any other vCPU that now has an
/// interrupt to take.
pub fn set_line(vm: &Vm, intid: u32, level: bool) {
    let Some(vgic) = &vm.vgic else { return };
    let mut vgic = vgic.lock();
    let _ = vgic.set_level(intid, None, level);
    vgic_changed(vm);
    let waiting: ArrayVec<usize, MAX_CPUS> =
        (0..vgic.vcpus()).filter(|&v| vgic.has_pending(v)).collect();
    drop(vgic);
    for vcpu in waiting {
        kick(vcpu);
    }
}
