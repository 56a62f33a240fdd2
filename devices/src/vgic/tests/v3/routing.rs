//! Affinity routing (`GICD_IROUTER`): "any PE" SPIs, routes naming no vCPU, and
//! the redistributor wake-ups that move "any PE" SPIs.

use super::*;

/// The vCPUs [`Vgic::take_kicks`] returns.
fn kicks(gic: &mut VgicV3) -> Vec<usize> {
    gic.kicks()
}

#[test]
fn any_pe_routing_picks_the_first_awake_vcpu() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 0, 0x80);
    write(&mut gic, gicd::IROUTER + 8 * 40, D, gicd::IROUTER_IRM);
    gic.trigger_edge(40, None).unwrap();
    assert!(gic.has_pending(0), "nobody awake: vCPU 0");
    write(&mut gic, rdist(1, gicr::WAKER), W, 0);
    assert!(!gic.has_pending(0));
    assert!(gic.has_pending(1));
    assert_eq!(run_until_idle(&mut gic, 1, 4), [40]);
}

#[test]
fn a_route_naming_no_vcpu_keeps_the_interrupt_pending() {
    let mut gic = vgic(2);
    enable_spi(&mut gic, 40, 0, 0x80);
    for route in [vcpu_mpidr(2), 0x1_0000, 0xFF_0000_0000, vcpu_mpidr(31)] {
        write(&mut gic, gicd::IROUTER + 8 * 40, D, route);
        gic.trigger_edge(40, None).unwrap();
        for vcpu in 0..2 {
            assert!(!gic.has_pending(vcpu), "{route:#x}");
            assert!(gic.flush(vcpu, 4).is_empty());
            gic.sync(vcpu, &[]);
        }
        assert_eq!(read(&mut gic, gicd::ISPENDR + 4, W), 1 << 8);
    }
    write(&mut gic, gicd::IROUTER + 8 * 40, D, vcpu_mpidr(1));
    assert_eq!(run_until_idle(&mut gic, 1, 4), [40]);
}

#[test]
fn waking_a_redistributor_moves_any_pe_spis_and_kicks_both_vcpus() {
    let mut gic = vgic(2);
    enable_spi(&mut gic, 40, 0, 0x80);
    write(&mut gic, gicd::IROUTER + 8 * 40, D, gicd::IROUTER_IRM);
    gic.trigger_edge(40, None).unwrap();
    let _ = kicks(&mut gic);
    assert!(gic.has_pending(0));
    // Waking a redistributor moves "any PE" SPIs: both vCPUs look again.
    write(&mut gic, rdist(1, gicr::WAKER), W, 0);
    assert_eq!(kicks(&mut gic), [0, 1]);
    assert!(gic.has_pending(1) && !gic.has_pending(0));
    assert_eq!(gic.pending_list(0), [] as [u32; 0]);
    assert_eq!(gic.pending_list(1), [40]);
}
