//! Saving and restoring the GICv2 front-end's state.

use super::*;
use crate::vgic::{VgicError, VgicV2State};

/// A vGIC with a bit of everything: groups, priorities, triggers, targets, pending,
/// active and line states, SGIs pending from several sources and one active.
pub(super) fn busy() -> VgicV2 {
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
pub(super) fn registers(gic: &mut VgicV2) -> Vec<u64> {
    let mut values = Vec::new();
    for vcpu in 0..gic.vcpus() {
        for offset in (0..0x1000).step_by(4) {
            values.push(read(gic, vcpu, offset, W));
        }
    }
    values
}

#[test]
fn saved_targets_and_sgi_sources() {
    let state = busy().save();
    assert_eq!(state.spis[1].targets, 0b100);
    assert_eq!(state.spis[28].targets, 0b110);
    assert!(state.spis[28].irq.pending_latch);
    let vcpu0 = &state.vcpus[0];
    assert_eq!(vcpu0.sgi_sources[7], 0b110);
    assert!(vcpu0.private[7].pending_latch && vcpu0.private[7].edge);
    assert!(vcpu0.private[3].active && !vcpu0.private[3].pending_latch);
    assert_eq!(vcpu0.sgi_active_sources[3], 2);
}

#[test]
fn sgis_in_flight_are_saved_with_their_sources() {
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
fn restored_sgis_end_source_by_source() {
    let mut fresh = vgic(3);
    fresh.restore(&busy().save()).unwrap();
    // The guest finishes the restored SGIs: SGI 3 from 2, SGI 7 from 1 then 2.
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
fn bad_targets_and_sgi_sources_are_refused() {
    let mut gic = busy();
    let good = gic.save();
    let mut cases: Vec<(VgicV2State, &str)> = Vec::new();
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
