//! Saving and restoring: what a saved state holds does not depend on list registers,
//! and a restored vGIC behaves as the saved one.

use super::*;
use crate::vgic::{IrqSnapshot, VgicError};
use std::vec::Vec;

scenarios!(
    saved_fields,
    round_trip,
    in_flight_interrupts_are_saved_as_if_unchanged,
    restore_clears_what_was_in_flight,
    hardware_backed_interrupts_come_back_inactive_and_still_mapped,
    bad_states_are_refused_and_change_nothing,
);

fn saved_fields<G: TestGic>() {
    let mut state = G::busy().save_state();
    assert_eq!(G::saved_shape(&state), (true, true, 3, 64));
    assert_eq!(
        *G::saved_spi(&mut state, 1),
        IrqSnapshot {
            enabled: true,
            group1: G::RESET_GROUP1,
            edge: false,
            priority: 0x90,
            line: true,
            pending_latch: false,
            active: false,
        },
        "the UART"
    );
    let spi = |state: &mut G::State, index| *G::saved_spi(state, index);
    assert!(spi(&mut state, 18).edge && spi(&mut state, 18).pending_latch);
    assert_eq!(spi(&mut state, 9).group1, !G::RESET_GROUP1);
    assert!(spi(&mut state, 33).active);
    assert!(G::saved_private(&mut state, 1)[27].line);
    assert!(G::saved_private(&mut state, 2)[19].edge);
}

fn round_trip<G: TestGic>() {
    let mut gic = G::busy();
    let state = gic.save_state();
    let mut copy = G::with_vcpus(3);
    copy.restore_state(&state).unwrap();
    assert_eq!(copy.save_state(), state);
    assert_eq!(copy.registers(), gic.registers());
    for vcpu in 0..3 {
        assert_eq!(copy.has_pending(vcpu), gic.has_pending(vcpu), "vCPU {vcpu}");
        assert_eq!(copy.pending_list(vcpu), gic.pending_list(vcpu));
        assert_eq!(copy.flush(vcpu, 4), gic.flush(vcpu, 4), "vCPU {vcpu}");
    }
}

fn in_flight_interrupts_are_saved_as_if_unchanged<G: TestGic>() {
    let mut gic = G::busy();
    let before = gic.save_state();
    let plan = gic.flush(1, 4);
    assert!(!plan.is_empty());
    assert_eq!(gic.save_state(), before);
    // And a restored copy lists the same interrupts.
    let mut copy = G::with_vcpus(3);
    copy.restore_state(&gic.save_state()).unwrap();
    assert_eq!(copy.flush(1, 4), plan);
}

fn restore_clears_what_was_in_flight<G: TestGic>() {
    let mut gic = G::busy();
    let state = gic.save_state();
    let _ = gic.flush(0, 4);
    let _ = gic.flush(1, 4);
    gic.restore_state(&state).unwrap();
    // Nothing of the old flush lingers: the new one lists the same.
    let mut fresh = G::with_vcpus(3);
    fresh.restore_state(&state).unwrap();
    for vcpu in 0..3 {
        assert_eq!(gic.flush(vcpu, 4), fresh.flush(vcpu, 4), "vCPU {vcpu}");
        gic.sync(vcpu, &[]);
    }
    assert!(gic.kicks().is_empty() && fresh.kicks().is_empty());
}

fn hardware_backed_interrupts_come_back_inactive_and_still_mapped<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_private(0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    let mut state = gic.save_state();
    assert!(G::saved_private(&mut state, 0)[27].active);
    gic.restore_state(&state).unwrap();
    assert_eq!(gic.read_private(0, block::ISACTIVER, W), 0);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    // The timer fires again on the new machine: accepted, listed with HW.
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    assert_eq!(G::Cpu::decode(gic.flush(0, 4).value(0)).physical, Some(27));
}

fn bad_states_are_refused_and_change_nothing<G: TestGic>() {
    let mut gic = G::busy();
    let good = gic.save_state();
    let mut cases: Vec<(G::State, &str)> = Vec::new();
    let mut state = good.clone();
    G::shrink(&mut state, true);
    cases.push((state, "it is for a different number of vCPUs"));
    let mut state = good.clone();
    G::shrink(&mut state, false);
    cases.push((state, "it is for a different number of SPIs"));
    let mut state = good.clone();
    G::saved_spi(&mut state, 3).priority = 0x81;
    cases.push((state, "a priority has bits the GIC does not implement"));
    let mut state = good.clone();
    G::saved_private(&mut state, 1)[30].priority = 0x07;
    cases.push((state, "a priority has bits the GIC does not implement"));
    let mut state = good.clone();
    G::saved_private(&mut state, 2)[4].edge = false;
    cases.push((
        state,
        "an SGI is level-sensitive, but SGIs are always edge-triggered",
    ));
    let mut state = good.clone();
    G::saved_private(&mut state, 0)[15].line = true;
    cases.push((
        state,
        "an SGI has its input line high, but SGIs have no line",
    ));
    for (state, reason) in cases {
        assert_eq!(
            gic.restore_state(&state),
            Err(VgicError::BadState { reason })
        );
        assert_eq!(gic.save_state(), good, "{reason}");
    }
    assert!(G::with_vcpus(2).restore_state(&good).is_err());
}
