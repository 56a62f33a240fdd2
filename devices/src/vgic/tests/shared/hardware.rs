//! Hardware-linked interrupts (the virtual timer): listed with HW and the physical
//! INTID, so that the guest's deactivation deactivates the physical interrupt
//! without an exit; a level whose line the hypervisor reports.

use super::*;
use crate::vgic::VgicError;

scenarios!(
    the_hardware_timer,
    the_list_register_carries_the_physical_intid,
    the_guest_deactivates_the_timer_without_an_exit,
    hardware_pending_never_listed_together_with_active,
    the_hardware_timer_is_a_level,
);

/// The virtual timer's list register: pending, HW, physical INTID 27.
fn timer_lr(group1: bool) -> Lr {
    Lr {
        physical: Some(27),
        ..Lr::pending(VTIMER, 0xA0, group1)
    }
}

fn the_hardware_timer<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.enable_private(1, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 1, 27).unwrap();
    // The physical timer fired; the host left it active and injects it.
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 1, 4);
    let expected = timer_lr(G::RESET_GROUP1);
    assert_eq!(cpu.lrs(), [G::Cpu::encode(expected), 0, 0, 0]);
    // A second trigger before the guest deactivated it is ignored.
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 1);
    assert_eq!(cpu.acknowledge(), Some(VTIMER));
    cpu.exit(&mut gic, 1);
    // Not kept pending in software once listed: only the active state came back.
    let mut saved = gic.save_state();
    let saved = G::saved_private(&mut saved, 1)[27];
    assert!(!saved.pending_latch && saved.active);
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 2, "still active");
    let mut cpu = G::Cpu::enter(&mut gic, 1, 4);
    let active = Lr {
        pending: false,
        active: true,
        ..expected
    };
    assert_eq!(cpu.lrs()[0], G::Cpu::encode(active), "active only, HW");
    cpu.deactivate(VTIMER);
    cpu.exit(&mut gic, 1);
    assert!(gic.flush(1, 4).is_empty(), "once");
    gic.sync(1, &[]);
    // Inactive in the list register: the next firing is accepted.
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 2);
    assert_eq!(gic.run_until_idle(1, 4), [VTIMER]);
    // The other vCPU's timer is not mapped and not involved.
    assert!(gic.flush(0, 4).is_empty());
}

fn the_list_register_carries_the_physical_intid<G: TestGic>() {
    // A virtual PPI backed by another physical INTID: both fields are filled in.
    let mut gic = G::with_vcpus(1);
    gic.enable_private(0, 20, 0x80);
    gic.map_hardware(20, 0, 26).unwrap();
    gic.trigger_edge(20, Some(0)).unwrap();
    let lr = G::Cpu::enter(&mut gic, 0, 4).lr(0);
    assert_eq!((lr.intid, lr.physical), (20, Some(26)));
    // A mapped SPI carries its physical INTID too.
    let mut gic = G::with_vcpus(2);
    gic.enable_spi(40, 1, 0x80);
    gic.map_hardware(40, 0, 72).unwrap();
    gic.trigger_edge(40, None).unwrap();
    let lr = G::Cpu::enter(&mut gic, 1, 4).lr(0);
    assert_eq!((lr.intid, lr.physical, lr.pending), (40, Some(72), true));
}

fn the_guest_deactivates_the_timer_without_an_exit<G: TestGic>() {
    // The guest acknowledges and deactivates the timer while running, the timer
    // fires again, and only then does the vCPU exit: one list register, HW, no
    // software state left behind.
    let mut gic = G::with_vcpus(1);
    gic.enable_private(0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    for round in 0..3 {
        gic.trigger_edge(VTIMER, Some(0)).unwrap();
        let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
        assert_eq!(cpu.lr(0), timer_lr(G::RESET_GROUP1), "round {round}");
        assert_eq!(cpu.handle_all(), [VTIMER]);
        assert!(!cpu.lr(0).is_valid(), "deactivated in the list register");
        cpu.exit(&mut gic, 0);
        assert!(!gic.has_pending(0));
        assert_eq!(gic.read_private(0, block::ISACTIVER, W), 0);
    }
    assert_eq!(gic.stats().ignored_hardware_triggers, 0);
}

fn hardware_pending_never_listed_together_with_active<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_private(0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    gic.write_private(0, block::ISACTIVER, W, 1 << VTIMER);
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let lr = G::Cpu::decode(gic.flush(0, 4).value(0));
    assert!(lr.active && !lr.pending);
    assert_eq!(lr.physical, Some(27));
}

fn the_hardware_timer_is_a_level<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_private(0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    assert_eq!(
        gic.set_level(VTIMER, Some(0), true),
        Err(VgicError::HardwareBacked { intid: VTIMER })
    );
    // The timer's condition holds; the physical interrupt has not fired yet.
    assert_eq!(gic.set_hardware_level(VTIMER, Some(0), true), Ok(None));
    assert_eq!(gic.read_private(0, block::ISPENDR, W), 1 << VTIMER);
    assert!(gic.flush(0, 4).is_empty(), "listed once the host holds it");
    gic.sync(0, &[]);
    // It fires: listed with the HW bit.
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let plan = gic.flush(0, 4);
    assert_eq!(G::Cpu::decode(plan.value(0)).physical, Some(27));
    // The guest disables its timer before taking it: no longer pending, the
    // physical interrupt is handed back, and the next plan drops it.
    assert_eq!(gic.set_hardware_level(VTIMER, Some(0), false), Ok(Some(27)));
    assert_eq!(gic.read_private(0, block::ISPENDR, W), 0);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    assert!(!gic.has_pending(0));
    // Disabled in the GIC, the timer fires: pending, not listed; enabled, listed.
    gic.write_private(0, block::ICENABLER, W, 1 << VTIMER);
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    assert_eq!(gic.read_private(0, block::ISPENDR, W), 1 << VTIMER);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    gic.write_private(0, block::ISENABLER, W, 1 << VTIMER);
    assert_eq!(gic.run_until_idle(0, 4), [VTIMER]);
    assert_eq!(gic.stats().ignored_hardware_triggers, 0);
}

/// A booted guest's timer fires on vCPU 1 only: listed there pending with Linux's
/// priority in the reset group, acknowledged, its line dropped by the handler
/// (which reprograms the timer) before the end of interrupt. Returns the list
/// register value as loaded.
pub(in crate::vgic::tests) fn timer_fires_on_vcpu_1_only<G: TestGic>(gic: &mut G) -> u64 {
    gic.set_level(VTIMER, Some(1), true).unwrap();
    assert!(G::Cpu::enter(gic, 0, 4).listed_intids().is_empty());
    gic.sync(0, &[]);
    let mut cpu = G::Cpu::enter(gic, 1, 4);
    let loaded = cpu.lrs()[0];
    let expected = Lr::pending(VTIMER, LINUX_PRIORITY, G::RESET_GROUP1);
    assert_eq!(loaded, G::Cpu::encode(expected));
    assert_eq!(cpu.acknowledge(), Some(VTIMER));
    gic.set_level(VTIMER, Some(1), false).unwrap();
    cpu.deactivate(VTIMER);
    cpu.exit(gic, 1);
    assert!(!gic.has_pending(1));
    loaded
}
