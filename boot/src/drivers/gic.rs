//! The host GIC, whichever version it is: the few operations the hypervisor needs
//! (acknowledge, end, deactivate, kick, list registers), routed to the GICv3
//! (system registers) or GICv2 (memory-mapped) driver that the boot CPU set up.

use super::gicv2::{GICH_HCR_EN, HOST_GIC_V2};
use super::gicv3;
use aerie_devices::vgic::ich_hcr;
use aerie_hyp::vcpu::GicCpuInterface;

/// The SGI that makes another CPU leave its guest.
pub const KICK_SGI: u32 = gicv3::KICK_SGI;
/// The maintenance interrupt (PPI 9).
pub const MAINTENANCE_INTID: u32 = gicv3::MAINTENANCE_INTID;
/// The EL1 virtual timer (PPI 11).
pub const VIRTUAL_TIMER_INTID: u32 = gicv3::VIRTUAL_TIMER_INTID;
/// The EL2 physical timer (PPI 10).
pub const HYPERVISOR_TIMER_INTID: u32 = gicv3::HYPERVISOR_TIMER_INTID;

/// The first of the special INTIDs 1020-1023 an acknowledge may return (1023:
/// nothing pending): none of them is an interrupt to take.
pub const FIRST_SPECIAL_INTID: u32 = 1020;

/// Acknowledges the highest-priority pending interrupt; 1023 if none.
pub fn acknowledge() -> u32 {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.acknowledge(),
        None => gicv3::acknowledge(),
    }
}

/// Priority drop for `intid`.
pub fn end_of_interrupt(intid: u32) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.end_of_interrupt(intid),
        None => gicv3::end_of_interrupt(intid),
    }
}

/// Deactivates `intid`.
pub fn deactivate(intid: u32) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.deactivate(intid),
        None => gicv3::deactivate(intid),
    }
}

/// Takes up to `limit` pending interrupts on this CPU and ends each at once: for a
/// parked CPU, which has no vCPU to give them to. They are kicks (which only wake
/// it) or its own timers and maintenance interrupt, level interrupts whose source a
/// stopped vCPU left (the run loop recomputes those from the vCPU's state when one
/// runs here again); a level interrupt that is still asserted is pending again at
/// once, which `limit` keeps from holding the CPU here.
pub fn discard_pending(limit: usize) {
    for _ in 0..limit {
        let intid = acknowledge();
        if intid >= FIRST_SPECIAL_INTID {
            return;
        }
        end_of_interrupt(intid);
        deactivate(intid);
    }
}

/// Enables private interrupt `intid` (a PPI) on this CPU, besides the ones every CPU
/// enables when it starts (the kick, maintenance and timer interrupts).
pub fn enable_private_interrupt(intid: u32) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.enable_private(intid),
        None => {
            if let Some(gic) = gicv3::HOST_GIC.get() {
                let _ = gic.enable_private(intid, crate::arch::cpu::mpidr());
            }
        }
    }
}

/// Sends the kick SGI to the CPU with affinity `mpidr`.
pub fn kick(mpidr: u64) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.kick(mpidr),
        None => gicv3::kick(mpidr),
    }
}

/// How many list registers this CPU has.
pub fn list_register_count() -> usize {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.list_register_count(),
        None => gicv3::list_register_count(),
    }
}

/// Reads list register `n` (GICv2 values are 32 bits).
pub fn read_list_register(n: usize) -> u64 {
    match HOST_GIC_V2.get() {
        Some(gic) => u64::from(gic.read_list_register(n)),
        None => gicv3::read_list_register(n),
    }
}

/// Writes list register `n` (GICv2 takes the low 32 bits).
pub fn write_list_register(n: usize, value: u64) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.write_list_register(n, value as u32),
        None => gicv3::write_list_register(n, value),
    }
}

/// Enables the virtual interface with the given maintenance-interrupt bits (UIE,
/// NPIE: the same positions in ICH_HCR_EL2 and GICH_HCR).
pub fn enable_virtual_interface(maintenance: u64) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.write_hcr(GICH_HCR_EN | maintenance as u32),
        None => gicv3::write_hcr(gicv3::ICH_HCR_EN | maintenance),
    }
}

/// How many times the guest ended an active interrupt that no list register held
/// since the count was last cleared (ICH_HCR_EL2.EOIcount, GICH_HCR.EOICount, bits
/// \[31:27\] of both). Writing the control register clears it.
pub fn unlisted_end_count() -> u32 {
    let hcr = match HOST_GIC_V2.get() {
        Some(gic) => u64::from(gic.read_hcr()),
        None => gicv3::read_hcr(),
    };
    ((hcr >> ich_hcr::EOICOUNT_SHIFT) & ich_hcr::EOICOUNT_MASK) as u32
}

/// The guest's CPU interface state held in this CPU's virtual interface.
pub fn save_cpu_interface() -> GicCpuInterface {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.save_cpu_interface(),
        None => gicv3::save_cpu_interface(),
    }
}

/// Puts a guest's saved CPU interface state into this CPU's virtual interface.
pub fn restore_cpu_interface(state: &GicCpuInterface) {
    match HOST_GIC_V2.get() {
        Some(gic) => gic.restore_cpu_interface(state),
        None => gicv3::restore_cpu_interface(state),
    }
}
