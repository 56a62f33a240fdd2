//! Saving and restoring the vGIC's state.

use super::*;
use crate::vgic::{Vgic, VgicError};

/// A vGIC with a bit of everything: groups, priorities, triggers, routes, pending,
/// active and line states, an awake redistributor.
pub(super) fn busy() -> VgicV3 {
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
pub(super) fn registers(gic: &mut VgicV3) -> Vec<u64> {
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
fn saved_routes_sgis_and_wake_states() {
    let state = busy().save();
    assert_eq!(state.spis[1].route, vcpu_mpidr(2));
    assert_eq!(state.spis[28].route, gicd::IROUTER_IRM);
    assert!(state.vcpus[0].private[7].pending_latch);
    assert!(state.vcpus[0].private[7].edge, "an SGI");
    assert!(!state.vcpus[1].asleep);
    assert!(state.vcpus[0].asleep && state.vcpus[2].asleep);
}

#[test]
fn routes_with_reserved_bits_and_extra_spis_are_refused() {
    let mut gic = busy();
    let good = gic.save();
    let mut state = good.clone();
    state.spis.push(Default::default());
    assert_eq!(
        gic.restore(&state),
        Err(VgicError::BadState {
            reason: "it is for a different number of SPIs"
        })
    );
    let mut state = good.clone();
    state.spis[0].route = 1 << 40;
    assert_eq!(
        gic.restore(&state),
        Err(VgicError::BadState {
            reason: "an SPI route has reserved bits set"
        })
    );
    assert_eq!(gic.save(), good);
}
