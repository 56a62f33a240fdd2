//! Cross-vCPU kicks: every register write that gives another vCPU an interrupt to
//! take, or makes what it holds in a list register stale, names it in
//! `take_kicks`, so that it looks again at once rather than at its next exit.

use super::*;

scenarios!(
    distributor_writes_kick_the_vcpu_an_spi_is_routed_to,
    routing_a_pending_spi_to_a_vcpu_kicks_it,
    writes_kick_the_vcpu_holding_an_spi_in_a_list_register,
    an_spi_moved_while_listed_elsewhere_kicks_its_new_target_when_synced,
    group_enables_kick_every_vcpu_with_something_to_take,
    private_writes_kick_their_vcpu,
);

/// `ISPENDR`, `ISACTIVER`, ... bit of SPI 40 and the word holding it.
const SPI_40: u64 = 1 << 8;
const WORD_1: u64 = 4;
/// Both groups enabled.
const BOTH: u64 = block::CTLR_ENABLE_GRP0 | block::CTLR_ENABLE_GRP1;

fn distributor_writes_kick_the_vcpu_an_spi_is_routed_to<G: TestGic>() {
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(40, 2, 0x80);
    assert!(gic.kicks().is_empty(), "nothing pending");
    // vCPU 0 sets it pending for vCPU 2 (Linux's irq_retrigger).
    gic.write_gicd(block::ISPENDR + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [2]);
    // Disabled, then enabled again: its target is kicked when it can take it.
    gic.write_gicd(block::ICENABLER + WORD_1, W, SPI_40);
    assert!(gic.kicks().is_empty(), "disabled and not listed");
    gic.write_gicd(block::ISENABLER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [2]);
    // Disabled while vCPU 2 holds it in a list register: vCPU 2 must look again.
    let plan = gic.flush(2, 4);
    assert_eq!(plan.list_registers().len(), 1);
    gic.write_gicd(block::ICENABLER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [2]);
    gic.sync(2, plan.list_registers());
    assert!(gic.flush(2, 4).is_empty(), "disabled");
    gic.sync(2, &[]);
    // Enabled again, then moved to vCPU 1: each time its target is kicked.
    gic.write_gicd(block::ISENABLER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [2]);
    gic.route(40, 1);
    assert_eq!(gic.kicks(), [1]);
    assert!(gic.has_pending(1) && !gic.has_pending(2));
    // Made active (not deliverable, but to be listed) and then deactivated.
    gic.write_gicd(block::ISACTIVER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [1]);
    gic.write_gicd(block::ICACTIVER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [1]);
    // A priority write to an SPI with nothing to list kicks nobody.
    gic.write_gicd(block::IPRIORITYR + 41, B, 0x40);
    assert!(gic.kicks().is_empty());
    // The distributor's groups turned off and on.
    gic.write_gicd(block::CTLR, W, 0);
    assert!(gic.kicks().is_empty(), "nothing in a list register");
    gic.write_gicd(block::CTLR, W, BOTH);
    assert_eq!(gic.kicks(), [1]);
}

fn routing_a_pending_spi_to_a_vcpu_kicks_it<G: TestGic>() {
    // Pending, routed to no vCPU: delivered nowhere. The route write that names
    // vCPU 2 kicks it, and it can take the interrupt at once.
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(41, 0, 0x80);
    gic.unroute(41);
    gic.trigger_edge(41, None).unwrap();
    let _ = gic.kicks();
    for vcpu in 0..3 {
        assert!(!gic.has_pending(vcpu));
        assert!(gic.flush(vcpu, 4).is_empty());
        gic.sync(vcpu, &[]);
    }
    gic.route(41, 2);
    assert_eq!(gic.kicks(), [2]);
    assert!(gic.has_pending(2));
    assert_eq!(gic.run_until_idle(2, 4), [41]);
    // Moved back and forth while inactive: only the vCPU it ends on is kicked.
    gic.trigger_edge(41, None).unwrap();
    let _ = gic.kicks();
    gic.route(41, 0);
    assert_eq!(gic.kicks(), [0]);
    assert!(gic.has_pending(0) && !gic.has_pending(2));
}

fn writes_kick_the_vcpu_holding_an_spi_in_a_list_register<G: TestGic>() {
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(40, 2, 0x80);
    gic.write_gicd(block::ISPENDR + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [2]);
    let plan = gic.flush(2, 4);
    // Disabled, moved to vCPU 1, made active: vCPU 2 holds it and must look again.
    gic.write_gicd(block::ICENABLER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [2]);
    gic.route(40, 1);
    assert_eq!(gic.kicks(), [2], "disabled: nothing for vCPU 1 yet");
    gic.write_gicd(block::ISACTIVER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [1, 2], "active: to be listed on vCPU 1 too");
    gic.sync(2, &[plan.value(0)]);
    assert_eq!(gic.kicks(), [1], "given back: vCPU 1 lists it, active");
    // Deactivated and enabled: now vCPU 1's.
    gic.write_gicd(block::ICACTIVER + WORD_1, W, SPI_40);
    assert!(
        gic.kicks().is_empty(),
        "disabled and inactive: nothing to list"
    );
    gic.write_gicd(block::ISENABLER + WORD_1, W, SPI_40);
    assert_eq!(gic.kicks(), [1]);
    // The distributor's groups turned off while vCPU 1 holds it.
    let _plan = gic.flush(1, 4);
    gic.write_gicd(block::CTLR, W, 0);
    assert_eq!(gic.kicks(), [1]);
}

fn an_spi_moved_while_listed_elsewhere_kicks_its_new_target_when_synced<G: TestGic>() {
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(40, 2, 0x80);
    gic.write_gicd(block::ISPENDR + WORD_1, W, SPI_40);
    let _ = gic.kicks();
    let plan = gic.flush(2, 4);
    gic.route(40, 1);
    let _ = gic.kicks();
    // vCPU 1 looks before vCPU 2 gave it back: not yet its own.
    assert!(gic.flush(1, 4).is_empty());
    gic.sync(1, &[]);
    assert!(gic.kicks().is_empty());
    // vCPU 2 gives it back untouched: vCPU 1 is kicked to take it.
    gic.sync(2, plan.list_registers());
    assert_eq!(gic.kicks(), [1]);
    assert_eq!(gic.run_until_idle(1, 4), [40]);
}

fn group_enables_kick_every_vcpu_with_something_to_take<G: TestGic>() {
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(40, 2, 0x80);
    gic.write_gicd(block::ISPENDR + WORD_1, W, SPI_40);
    // A private interrupt of vCPU 1 waiting for its group to be enabled.
    gic.enable_private(1, 20, 0x80);
    gic.write_gicd(block::CTLR, W, 0);
    gic.trigger_edge(20, Some(1)).unwrap();
    let _ = gic.kicks();
    gic.write_gicd(block::CTLR, W, BOTH);
    assert_eq!(gic.kicks(), [1, 2]);
}

fn private_writes_kick_their_vcpu<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.enable_private(1, 20, 0x80);
    assert!(gic.kicks().is_empty());
    // PPI 20 of vCPU 1 set pending through vCPU 1's registers.
    gic.write_private(1, block::ISPENDR, W, 1 << 20);
    assert_eq!(gic.kicks(), [1]);
    assert!(gic.has_pending(1) && !gic.has_pending(0));
}
