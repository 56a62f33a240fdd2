//! Saving and restoring the GICv2 front-end's state.

use super::*;
use crate::vgic::{IrqSnapshot, VgicError, VgicV2State};

/// A vGIC with a bit of everything: groups, priorities, triggers, targets, pending,
/// active and line states, SGIs pending from several sources and one active.
fn busy() -> VgicV2 {
    let mut gic = vgic(3);
    enable_spi(&mut gic, UART, 2, 0x90);
    enable_spi(&mut gic, 50, 1, 0x20);
    make_edge(&mut gic, 50);
    write(&mut gic, 0, gicd::IGROUPR + 4, W, 1 << 9); // INTID 41 in Group 1
    write(&mut gic, 0, gicd::ITARGETSR + 60, B, 0b110);
    write(&mut gic, 0, gicd::ISPENDR + 4, W, 1 << 28); // INTID 60
    write(&mut gic, 0, gicd::ISACTIVER + 8, W, 1 << 1); // INTID 65
    enable_private(&mut gic, 1, VTIMER, 0xA0);
    write(&mut gic, 2, gicd::ICFGR + 4, W, 0b10 << 6); // PPI 19 edge on vCPU 2
    gic.set_level(UART, None, true).unwrap();
    gic.trigger_edge(50, None).unwrap();
    gic.set_level(VTIMER, Some(1), true).unwrap();
    // SGI 7 to vCPU 0 from vCPUs 1 and 2; SGI 3 acknowledged by vCPU 0 from vCPU 2.
    write(&mut gic, 0, gicd::ISENABLER, W, 0xFFFF);
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b1, 7));
    write(&mut gic, 2, gicd::SGIR, W, sgir(0, 0b1, 7));
    write(&mut gic, 2, gicd::SGIR, W, sgir(0, 0b1, 3));
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(iar(3, 2)));
    cpu.exit(&mut gic, 0);
    let _ = gic.take_kicks();
    gic
}

/// Every register a guest can read, as each vCPU reads it.
fn registers(gic: &mut VgicV2) -> Vec<u64> {
    let mut values = Vec::new();
    for vcpu in 0..gic.vcpus() {
        for offset in (0..0x1000).step_by(4) {
            values.push(read(gic, vcpu, offset, W));
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
    let state = busy().save();
    assert!(state.group0_enabled && state.group1_enabled);
    assert_eq!(state.vcpus.len(), 3);
    assert_eq!(state.spis.len(), 64);
    assert_eq!(
        state.spis[1].irq,
        IrqSnapshot {
            enabled: true,
            group1: false,
            edge: false,
            priority: 0x90,
            line: true,
            pending_latch: false,
            active: false,
        },
        "the UART"
    );
    assert_eq!(state.spis[1].targets, 0b100);
    assert!(state.spis[18].irq.edge && state.spis[18].irq.pending_latch);
    assert!(state.spis[9].irq.group1);
    assert_eq!(state.spis[28].targets, 0b110);
    assert!(state.spis[28].irq.pending_latch);
    assert!(state.spis[33].irq.active);
    let vcpu0 = &state.vcpus[0];
    assert_eq!(vcpu0.sgi_sources[7], 0b110);
    assert!(vcpu0.private[7].pending_latch && vcpu0.private[7].edge);
    assert!(vcpu0.private[3].active && !vcpu0.private[3].pending_latch);
    assert_eq!(vcpu0.sgi_active_sources[3], 2);
    assert!(state.vcpus[1].private[27].line);
    assert!(state.vcpus[2].private[19].edge);
}

#[test]
fn in_flight_interrupts_are_saved_as_if_unchanged() {
    let mut gic = busy();
    let before = gic.save();
    // vCPU 0 has SGI 7 from vCPU 1 in a list register (and vCPU 2 waiting), SGI 3
    // active from vCPU 2.
    let plan = gic.flush(0, 4);
    let listed: Vec<(u32, u32)> = Gicv::load(&plan, 4).listed();
    assert!(
        listed.contains(&(7, 1)) && listed.contains(&(3, 2)),
        "{listed:?}"
    );
    assert_eq!(gic.save(), before);
    assert_eq!(read(&mut gic, 0, gicd::SPENDSGIR + 4, W) >> 24, 0b110);
    let mut copy = vgic(3);
    copy.restore(&gic.save()).unwrap();
    assert_eq!(copy.flush(0, 4), plan);
}

#[test]
fn restore_clears_what_was_in_flight() {
    let mut gic = busy();
    let state = gic.save();
    let _ = gic.flush(0, 4);
    let _ = gic.flush(1, 4);
    gic.restore(&state).unwrap();
    let mut fresh = vgic(3);
    fresh.restore(&state).unwrap();
    for vcpu in 0..3 {
        assert_eq!(gic.flush(vcpu, 4), fresh.flush(vcpu, 4));
    }
    // And the guest finishes the restored SGIs: SGI 3 from 2, SGI 7 from 1 then 2.
    let mut cpu = Gicv::enter(&mut fresh, 0, 4);
    cpu.end_of_interrupt(iar(3, 2));
    cpu.exit(&mut fresh, 0);
    let handled: Vec<u32> = run_until_idle(&mut fresh, 0, 4)
        .into_iter()
        .filter(|&iar| iar & 0x3FF < 16)
        .collect();
    assert_eq!(handled, [iar(7, 1), iar(7, 2)]);
}

#[test]
fn hardware_backed_interrupts_come_back_inactive_and_still_mapped() {
    let mut gic = vgic(1);
    enable_private(&mut gic, 0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    let state = gic.save();
    assert!(state.vcpus[0].private[27].active);
    gic.restore(&state).unwrap();
    assert_eq!(read(&mut gic, 0, gicd::ISACTIVER, W), 0);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    assert_ne!(gic.flush(0, 4).value(0) & lr::HW, 0);
}

#[test]
fn bad_states_are_refused_and_change_nothing() {
    let mut gic = busy();
    let good = gic.save();
    let mut cases: Vec<(VgicV2State, &str)> = Vec::new();
    let mut state = good.clone();
    state.vcpus.pop();
    cases.push((state, "it is for a different number of vCPUs"));
    let mut state = good.clone();
    state.spis.pop();
    cases.push((state, "it is for a different number of SPIs"));
    let mut state = good.clone();
    state.spis[3].irq.priority = 0x81;
    cases.push((state, "a priority has bits the GIC does not implement"));
    let mut state = good.clone();
    state.vcpus[2].private[4].edge = false;
    cases.push((
        state,
        "an SGI is level-sensitive, but SGIs are always edge-triggered",
    ));
    let mut state = good.clone();
    state.spis[5].targets = 0b1000;
    cases.push((state, "an SPI targets a vCPU that does not exist"));
    let mut state = good.clone();
    state.vcpus[0].sgi_sources[7] |= 0b1000;
    cases.push((state, "an SGI is pending from a vCPU that does not exist"));
    let mut state = good.clone();
    state.vcpus[0].sgi_active_sources[3] = 3;
    cases.push((state, "an SGI is active from a vCPU that does not exist"));
    let mut state = good.clone();
    state.vcpus[1].sgi_sources[2] = 0b1;
    cases.push((state, "an SGI's pending state and its sources disagree"));
    let mut state = good.clone();
    state.vcpus[0].private[7].pending_latch = false;
    cases.push((state, "an SGI's pending state and its sources disagree"));
    for (state, reason) in cases {
        assert_eq!(gic.restore(&state), Err(VgicError::BadState { reason }));
        assert_eq!(gic.save(), good, "{reason}");
    }
    assert!(vgic(2).restore(&good).is_err());
    // A uniprocessor vGIC takes no SPI targets at all.
    let mut one = vgic(1);
    let mut state = one.save();
    state.spis[0].targets = 0b1;
    assert_eq!(
        one.restore(&state),
        Err(VgicError::BadState {
            reason: "an SPI targets a vCPU that does not exist"
        })
    );
}
