//! The per-vCPU pending lists behind flush and `has_pending`: the order in which
//! interrupts are listed, more interrupts than list registers (pending and active),
//! the guest ending interrupts no list register holds (`EOIcount`), and lists that
//! hold only what their vCPU would see.

use super::*;
use crate::vgic::ich_hcr;
use std::vec::Vec;

scenarios!(
    interrupts_are_listed_by_priority_then_intid,
    every_list_register_size_delivers_everything_once,
    more_active_than_list_registers_loses_and_duplicates_nothing,
    eoi_count_deactivates_the_unlisted_active_interrupts,
    a_vcpu_with_nothing_to_do_has_an_empty_list,
    a_moved_spi_leaves_the_old_vcpus_list,
);

/// SPIs and PPIs of vCPU 0, raised in a scrambled order: (INTID, priority).
const MIXED: [(u32, u8); 10] = [
    (60, 0x80),
    (33, 0x80),
    (90, 0x10),
    (20, 0x80),
    (45, 0x40),
    (95, 0xF0),
    (17, 0x40),
    (32, 0x10),
    (70, 0x80),
    (16, 0xF0),
];

/// A level-sensitive SPI routed to vCPU 1 besides `MIXED`.
const LEVEL: u32 = 80;

/// `MIXED` in the order the guest must see it: by priority, then INTID.
fn expected_order() -> Vec<u32> {
    let mut sorted = MIXED;
    sorted.sort_by_key(|&(intid, priority)| (priority, intid));
    sorted.iter().map(|&(intid, _)| intid).collect()
}

/// A vGIC with `MIXED` pending on vCPU 0 (edge-triggered).
fn mixed<G: TestGic>() -> G {
    let mut gic = G::with_vcpus(2);
    for &(intid, priority) in &MIXED {
        if intid < 32 {
            gic.enable_private(0, intid, priority);
            gic.trigger_edge(intid, Some(0)).unwrap();
        } else {
            gic.enable_spi(intid, 0, priority);
            gic.make_edge(intid);
            gic.trigger_edge(intid, None).unwrap();
        }
    }
    gic
}

fn interrupts_are_listed_by_priority_then_intid<G: TestGic>() {
    let mut gic = mixed::<G>();
    let expected = expected_order();
    assert_eq!(gic.highest_pending_priority(0), Some(0x10));
    // All fit: the list registers are in order.
    let plan = gic.flush(0, 16);
    let listed: Vec<u32> = plan
        .list_registers()
        .iter()
        .map(|&v| G::Cpu::decode(v).intid)
        .collect();
    assert_eq!(listed, expected);
    assert!(!plan.underflow_maintenance);
    gic.sync(0, &[]);
    // Four at a time: the best four each round, the guest takes them in order.
    assert_eq!(gic.run_until_idle(0, 4), expected);
    assert!(!gic.has_pending(0) && !gic.has_pending(1));
}

fn every_list_register_size_delivers_everything_once<G: TestGic>() {
    for count in 1..=16 {
        let mut gic = mixed::<G>();
        assert_eq!(gic.run_until_idle(0, count), expected_order(), "{count}");
        assert!(gic.flush(0, count).is_empty());
        gic.sync(0, &[]);
    }
}

/// Makes SPIs 40 to 45 active on vCPU 0 (as a restored guest in the middle of
/// nested handlers has them), priorities 0x10 (INTID 40) to 0x60 (INTID 45).
fn six_active<G: TestGic>() -> G {
    let mut gic = G::with_vcpus(1);
    for intid in 40..46 {
        gic.enable_spi(intid, 0, 0x10 * (intid - 39) as u8);
    }
    gic.write_gicd(block::ISACTIVER + 4, W, 0x3F << 8);
    gic
}

fn more_active_than_list_registers_loses_and_duplicates_nothing<G: TestGic>() {
    let mut gic = six_active::<G>();
    gic.enable_spi(50, 0, 0x80);
    gic.trigger_edge(50, None).unwrap();
    // Four list registers: the four highest-priority active interrupts.
    let plan = gic.flush(0, 4);
    let listed: Vec<Lr> = plan
        .list_registers()
        .iter()
        .map(|&v| G::Cpu::decode(v))
        .collect();
    assert_eq!(
        listed.iter().map(|lr| lr.intid).collect::<Vec<_>>(),
        [40, 41, 42, 43]
    );
    assert!(listed.iter().all(|lr| lr.active && !lr.pending));
    assert!(plan.unlisted_active);
    assert_eq!(plan.eoi_count_bits(), ich_hcr::LRENPIE);
    assert_eq!(ich_hcr::LRENPIE, 1 << 2, "ICH_HCR_EL2.LRENPIE is bit 2");
    assert_eq!(
        plan.maintenance_bits(),
        ich_hcr::UIE | ich_hcr::NPIE,
        "the pending SPI 50 waits behind them"
    );
    assert_eq!(gic.stats().unlisted_active, 1);
    // The guest ends two of the listed ones; the others come in as they free up.
    let mut cpu = G::Cpu::load(&plan, 4);
    cpu.deactivate(43);
    cpu.deactivate(42);
    cpu.exit(&mut gic, 0);
    let cpu = G::Cpu::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed_intids(), [40, 41, 44, 45]);
    cpu.exit(&mut gic, 0);
    // Everything ends exactly once, then SPI 50 arrives exactly once.
    let mut ended = Vec::new();
    for _ in 0..8 {
        let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
        let active: Vec<u32> = (0..4)
            .map(|n| cpu.lr(n))
            .filter(|lr| lr.active)
            .map(|lr| lr.intid)
            .collect();
        for &intid in &active {
            cpu.deactivate(intid);
        }
        ended.extend(active);
        ended.extend(cpu.handle_all());
        cpu.exit(&mut gic, 0);
    }
    ended.sort_unstable();
    assert_eq!(ended, [40, 41, 44, 45, 50]);
    assert_eq!(gic.read_gicd(block::ISACTIVER + 4, W), 0);
    assert!(!gic.has_pending(0));
}

fn eoi_count_deactivates_the_unlisted_active_interrupts<G: TestGic>() {
    let mut gic = six_active::<G>();
    let plan = gic.flush(0, 4);
    assert!(plan.unlisted_active);
    // The guest ends INTID 44, which no list register holds (the CPU interface
    // counts it in EOIcount), and INTID 40, which one does.
    let mut cpu = G::Cpu::load(&plan, 4);
    cpu.deactivate(40);
    gic.sync_with_eoi_count(0, cpu.lrs(), 1);
    // The highest-priority unlisted active interrupt is the one ended.
    let active = gic.read_gicd(block::ISACTIVER + 4, W) >> 8;
    assert_eq!(active, 0b10_1110, "41, 42, 43 and 45 still active");
    // Nothing in flight was touched, and a count beyond what is unlisted is harmless.
    let plan = gic.flush(0, 4);
    assert!(!plan.unlisted_active, "four left, four list registers");
    gic.sync_with_eoi_count(0, plan.list_registers(), 5);
    assert_eq!(gic.read_gicd(block::ISACTIVER + 4, W) >> 8, 0b10_1110);
    // And the rest ends through the list registers.
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    for intid in [41, 42, 43, 45] {
        cpu.deactivate(intid);
    }
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.read_gicd(block::ISACTIVER + 4, W), 0);
    assert!(gic.flush(0, 4).is_empty());
}

fn a_vcpu_with_nothing_to_do_has_an_empty_list<G: TestGic>() {
    let mut gic = mixed::<G>();
    gic.enable_spi(LEVEL, 1, LINUX_PRIORITY);
    gic.set_level(LEVEL, None, true).unwrap();
    assert!(!gic.pending_list(0).is_empty());
    assert_eq!(gic.run_until_idle(0, 4), expected_order());
    assert_eq!(gic.pending_list(0), [] as [u32; 0], "pruned as handled");
    // The LEVEL's line is high: it stays on vCPU 1's list until lowered.
    assert_eq!(gic.pending_list(1), [LEVEL]);
    gic.set_level(LEVEL, None, false).unwrap();
    assert_eq!(gic.pending_list(1), [] as [u32; 0]);
    assert!(gic.flush(1, 4).is_empty());
}

fn a_moved_spi_leaves_the_old_vcpus_list<G: TestGic>() {
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(UART, 0, LINUX_PRIORITY);
    gic.set_level(UART, None, true).unwrap();
    assert_eq!(gic.pending_list(0), [UART]);
    gic.route(UART, 2);
    assert_eq!(gic.pending_list(0), [] as [u32; 0]);
    assert_eq!(gic.pending_list(2), [UART]);
    // While vCPU 2 holds it, it stays on vCPU 2's list whatever its route.
    let plan = gic.flush(2, 4);
    gic.route(UART, 1);
    assert_eq!(gic.pending_list(1), [] as [u32; 0]);
    assert!(!gic.has_pending(1));
    gic.sync(2, plan.list_registers());
    assert_eq!(gic.pending_list(1), [UART]);
    assert_eq!(gic.pending_list(2), [] as [u32; 0]);
    let mut cpu = G::Cpu::enter(&mut gic, 1, 4);
    assert_eq!(cpu.handle_all(), [UART]);
    cpu.exit(&mut gic, 1);
    assert_eq!(gic.pending_list(1), [UART], "still high");
}
