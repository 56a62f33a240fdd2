//! Saving and restoring the vGIC's state.

use super::*;
use crate::vgic::{IrqSnapshot, Vgic, VgicError, VgicState};

/// A vGIC with a bit of everything: groups, priorities, triggers, routes, pending,
/// active and line states, an awake redistributor.
fn busy() -> VgicV3 {
    let mut gic = vgic(3);
    enable_spi(&mut gic, UART, 2, 0x90);
    enable_spi(&mut gic, 50, 1, 0x20);
    write(&mut gic, gicd::ICFGR + 12, W, 0b10 << 4); // INTID 50 edge
    write(&mut gic, gicd::IGROUPR + 4, W, !(1 << 9)); // INTID 41 in Group 0
    write(&mut gic, gicd::IROUTER + 8 * 60, D, gicd::IROUTER_IRM);
    write(&mut gic, gicd::ISPENDR + 4, W, 1 << 28); // INTID 60
    write(&mut gic, gicd::ISACTIVER + 8, W, 1 << 1); // INTID 65
    enable_private(&mut gic, 1, VTIMER, 0xA0);
    write(&mut gic, rdist(1, gicr::WAKER), W, 0);
    write(&mut gic, rdist(2, gicr::ICFGR1), W, 0b10 << 6); // PPI 19 edge
    gic.set_level(UART, None, true).unwrap();
    gic.trigger_edge(50, None).unwrap();
    gic.trigger_edge(7, Some(0)).unwrap();
    gic.set_level(VTIMER, Some(1), true).unwrap();
    gic
}

/// Every register a guest can read, for comparing two vGICs.
fn registers(gic: &mut VgicV3) -> Vec<u64> {
    let mut values = Vec::new();
    for offset in (0..0x1000).step_by(4) {
        values.push(read(gic, offset, W));
    }
    for intid in 32..96 {
        values.push(read(gic, gicd::IROUTER + 8 * intid, D));
    }
    for vcpu in 0..gic.vcpus() {
        values.push(read(gic, rdist(vcpu, gicr::WAKER), W));
        for offset in (0..0x1000).step_by(4) {
            values.push(read(gic, rdist(vcpu, gicr::SGI + offset), W));
        }
    }
    values
}

#[test]
fn round_trip() {
    let mut gic = busy();
    let state = gic.save();
    let mut copy = vgic(3);
    copy.restore(&state).unwrap();
    assert_eq!(copy.save(), state);
    assert_eq!(registers(&mut copy), registers(&mut gic));
    for vcpu in 0..3 {
        assert_eq!(copy.has_pending(vcpu), gic.has_pending(vcpu), "vCPU {vcpu}");
        assert_eq!(copy.flush(vcpu, 4), gic.flush(vcpu, 4), "vCPU {vcpu}");
    }
}

#[test]
fn saved_fields() {
    let gic = busy();
    let state = gic.save();
    assert!(state.group0_enabled && state.group1_enabled);
    assert_eq!(state.vcpus.len(), 3);
    assert_eq!(state.spis.len(), 64);
    assert_eq!(
        state.spis[1].irq,
        IrqSnapshot {
            enabled: true,
            group1: true,
            edge: false,
            priority: 0x90,
            line: true,
            pending_latch: false,
            active: false,
        },
        "the UART"
    );
    assert_eq!(state.spis[1].route, vcpu_mpidr(2));
    assert!(state.spis[18].irq.edge && state.spis[18].irq.pending_latch);
    assert!(!state.spis[9].irq.group1);
    assert_eq!(state.spis[28].route, gicd::IROUTER_IRM);
    assert!(state.spis[33].irq.active);
    assert!(state.vcpus[0].private[7].pending_latch);
    assert!(state.vcpus[0].private[7].edge, "an SGI");
    assert!(state.vcpus[1].private[27].line);
    assert!(state.vcpus[2].private[19].edge);
    assert!(!state.vcpus[1].asleep);
    assert!(state.vcpus[0].asleep && state.vcpus[2].asleep);
}

#[test]
fn in_flight_interrupts_are_saved_as_if_unchanged() {
    let mut gic = busy();
    let before = gic.save();
    let plan = gic.flush(1, 4);
    assert!(!plan.is_empty());
    assert_eq!(gic.save(), before);
    // And a restored copy lists the same interrupts.
    let mut copy = vgic(3);
    copy.restore(&gic.save()).unwrap();
    assert_eq!(copy.flush(1, 4), plan);
}

#[test]
fn restore_clears_what_was_in_flight() {
    let mut gic = busy();
    let state = gic.save();
    let _ = gic.flush(1, 4);
    gic.restore(&state).unwrap();
    // Nothing of the old flush lingers: the new one lists the same.
    let mut fresh = vgic(3);
    fresh.restore(&state).unwrap();
    assert_eq!(gic.flush(1, 4), fresh.flush(1, 4));
    gic.sync(1, &[]);
}

#[test]
fn hardware_backed_interrupts_come_back_inactive_and_still_mapped() {
    let mut gic = vgic(1);
    enable_private(&mut gic, 0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    let state = gic.save();
    assert!(state.vcpus[0].private[27].active);
    gic.restore(&state).unwrap();
    assert_eq!(read(&mut gic, rdist(0, gicr::ISACTIVER0), W), 0);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    // The timer fires again on the new machine: accepted, listed with HW.
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    assert_ne!(gic.flush(0, 4).value(0) & lr::HW, 0);
}

#[test]
fn bad_states_are_refused_and_change_nothing() {
    let mut gic = busy();
    let good = gic.save();
    let mut cases: Vec<(VgicState, &str)> = Vec::new();
    let mut state = good.clone();
    state.vcpus.pop();
    cases.push((state, "it is for a different number of vCPUs"));
    let mut state = good.clone();
    state.spis.push(Default::default());
    cases.push((state, "it is for a different number of SPIs"));
    let mut state = good.clone();
    state.spis[3].irq.priority = 0x81;
    cases.push((state, "a priority has bits the GIC does not implement"));
    let mut state = good.clone();
    state.vcpus[1].private[30].priority = 0x07;
    cases.push((state, "a priority has bits the GIC does not implement"));
    let mut state = good.clone();
    state.vcpus[2].private[4].edge = false;
    cases.push((
        state,
        "an SGI is level-sensitive, but SGIs are always edge-triggered",
    ));
    let mut state = good.clone();
    state.vcpus[0].private[15].line = true;
    cases.push((
        state,
        "an SGI has its input line high, but SGIs have no line",
    ));
    let mut state = good.clone();
    state.spis[0].route = 1 << 40;
    cases.push((state, "an SPI route has reserved bits set"));
    for (state, reason) in cases {
        assert_eq!(gic.restore(&state), Err(VgicError::BadState { reason }));
        assert_eq!(gic.save(), good, "{reason}");
    }
    let mut other = vgic(2);
    assert!(other.restore(&good).is_err());
}
