//! Interrupt delivery through flush and sync: routing, priorities, overflow and
//! maintenance, edge and level semantics, groups and enables, guest writes to
//! interrupts in flight.

use super::*;
use std::vec::Vec;

scenarios!(
    an_spi_is_listed_for_its_vcpu_only,
    ppis_are_per_vcpu,
    priorities_order_the_list_registers,
    more_pending_than_list_registers_asks_for_maintenance_and_all_arrive_once,
    no_pending_maintenance_when_only_active_interrupts_fit,
    an_edge_is_delivered_exactly_once,
    an_edge_while_active_is_delivered_after_deactivation,
    a_level_interrupt_is_redelivered_while_high_and_not_once_lowered,
    level_active_and_still_high_is_listed_pending_and_active,
    disabled_interrupts_and_groups_are_not_delivered,
    an_active_interrupt_stays_listed_when_disabled,
    guest_register_writes_reach_in_flight_interrupts,
    a_flush_without_sync_takes_the_list_registers_back_unchanged,
    a_list_register_holding_something_else_counts_as_unchanged,
);

/// `ISPENDR`, `ISACTIVER`, ... bit of SPI 40.
const SPI_40: u64 = 1 << 8;
/// The word of SPIs 32 to 63 in a one-bit-per-interrupt block.
const WORD_1: u64 = 4;

fn an_spi_is_listed_for_its_vcpu_only<G: TestGic>() {
    let mut gic = G::with_vcpus(3);
    gic.enable_spi(40, 1, 0x80);
    gic.set_level(40, None, true).unwrap();
    assert!(!gic.has_pending(0));
    assert!(gic.has_pending(1));
    assert!(gic.flush(0, 4).is_empty());
    let plan = gic.flush(1, 4);
    let expected = G::Cpu::encode(Lr::pending(40, 0x80, G::RESET_GROUP1));
    assert_eq!(plan.list_registers(), &[expected]);
    assert!(gic.flush(2, 4).is_empty());
    // Routed elsewhere while vCPU 1 holds it: it stays with vCPU 1 until synced.
    gic.route(40, 2);
    assert!(
        gic.flush(2, 4).is_empty(),
        "never in two vCPUs' list registers"
    );
    gic.sync(1, plan.list_registers());
    assert!(!gic.has_pending(1));
    assert_eq!(G::Cpu::enter(&mut gic, 2, 4).listed_intids(), [40]);
}

fn ppis_are_per_vcpu<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.enable_private(0, 20, 0x40);
    gic.enable_private(1, 20, 0x60);
    gic.set_level(20, Some(1), true).unwrap();
    assert!(!gic.has_pending(0));
    let cpu = G::Cpu::enter(&mut gic, 1, 4);
    let expected = G::Cpu::encode(Lr::pending(20, 0x60, G::RESET_GROUP1));
    assert_eq!(cpu.lrs()[0], expected);
    cpu.exit(&mut gic, 1);
    assert_eq!(gic.read_private(1, block::ISPENDR, W), 1 << 20);
    assert_eq!(gic.read_private(0, block::ISPENDR, W), 0, "banked");
}

fn priorities_order_the_list_registers<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    for (intid, priority) in [(40, 0x80), (41, 0x20), (42, 0xA0), (43, 0x28)] {
        gic.enable_spi(intid, 0, priority);
        gic.trigger_edge(intid, None).unwrap();
    }
    gic.enable_private(0, 20, 0x40);
    gic.trigger_edge(20, Some(0)).unwrap();
    assert_eq!(gic.highest_pending_priority(0), Some(0x20));
    let plan = gic.flush(0, 3);
    let listed: Vec<(u32, u8)> = plan
        .list_registers()
        .iter()
        .map(|&v| G::Cpu::decode(v))
        .map(|lr| (lr.intid, lr.priority))
        .collect();
    assert_eq!(listed, [(41, 0x20), (43, 0x28), (20, 0x40)]);
    assert!(plan.underflow_maintenance, "two wait");
    let mut cpu = G::Cpu::load(&plan, 3);
    assert_eq!(cpu.handle_all(), [41, 43, 20]);
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.run_until_idle(0, 3), [40, 42]);
}

fn more_pending_than_list_registers_asks_for_maintenance_and_all_arrive_once<G: TestGic>() {
    // 4 list registers, as the GIC-400 and Cortex-A cores have.
    let mut gic = G::with_vcpus(1);
    let intids: Vec<u32> = (50..60).collect();
    for &intid in &intids {
        gic.enable_spi(intid, 0, 0x80);
        gic.make_edge(intid);
        gic.trigger_edge(intid, None).unwrap();
    }
    let mut handled = Vec::new();
    let mut rounds = 0;
    loop {
        let plan = gic.flush(0, 4);
        if plan.is_empty() {
            assert!(!plan.underflow_maintenance);
            assert_eq!(plan.maintenance_bits(), 0);
            break;
        }
        rounds += 1;
        let waiting = intids.len() - handled.len() - plan.len();
        assert_eq!(plan.underflow_maintenance, waiting > 0, "round {rounds}");
        assert_eq!(
            plan.maintenance_bits(),
            if waiting > 0 { UIE } else { 0 },
            "round {rounds}: UIE only"
        );
        let mut cpu = G::Cpu::load(&plan, 4);
        handled.extend(cpu.handle_all());
        cpu.exit(&mut gic, 0);
    }
    assert_eq!(rounds, 3);
    assert_eq!(
        handled, intids,
        "each once, in INTID order at equal priority"
    );
}

/// `ICH_HCR_EL2` / `GICH_HCR`: UIE [1], NPIE [3].
const UIE: u64 = 1 << 1;
const NPIE: u64 = 1 << 3;

fn no_pending_maintenance_when_only_active_interrupts_fit<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    for intid in 40..43 {
        gic.enable_spi(intid, 0, 0x80);
        gic.make_edge(intid);
        gic.trigger_edge(intid, None).unwrap();
    }
    // The guest takes two and keeps them active (nested handlers).
    let mut cpu = G::Cpu::enter(&mut gic, 0, 2);
    assert_eq!(cpu.acknowledge(), Some(40));
    assert_eq!(cpu.acknowledge(), Some(41));
    cpu.exit(&mut gic, 0);
    let plan = gic.flush(0, 2);
    let states: Vec<(bool, bool)> = plan
        .list_registers()
        .iter()
        .map(|&v| G::Cpu::decode(v))
        .map(|lr| (lr.pending, lr.active))
        .collect();
    assert_eq!(
        states,
        [(false, true), (false, true)],
        "active ones stay listed"
    );
    assert!(plan.underflow_maintenance && plan.no_pending_maintenance);
    assert_eq!(plan.maintenance_bits(), UIE | NPIE);
    let mut cpu = G::Cpu::load(&plan, 2);
    cpu.deactivate(41);
    cpu.deactivate(40);
    assert!(!cpu.eoi_maintenance(), "no EOI bit on SPIs");
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.run_until_idle(0, 2), [42]);
}

fn an_edge_is_delivered_exactly_once<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(45, 0, 0x80);
    gic.make_edge(45);
    gic.set_level(45, None, true).unwrap();
    gic.set_level(45, None, true).unwrap();
    gic.trigger_edge(45, None).unwrap();
    // The vCPU exits before the guest takes it: listed again, still once.
    let cpu = G::Cpu::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed_intids(), [45]);
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.run_until_idle(0, 4), [45]);
    assert_eq!(gic.run_until_idle(0, 4), [] as [u32; 0]);
    gic.set_level(45, None, true).unwrap();
    assert!(!gic.has_pending(0), "still high: no new edge");
}

fn an_edge_while_active_is_delivered_after_deactivation<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(45, 0, 0x80);
    gic.make_edge(45);
    gic.trigger_edge(45, None).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(45));
    cpu.exit(&mut gic, 0);
    gic.trigger_edge(45, None).unwrap();
    assert!(!gic.has_pending(0), "pending and active: not takeable yet");
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    let lr = cpu.lr(0);
    assert!(lr.pending && lr.active);
    assert_eq!(cpu.acknowledge(), None);
    cpu.deactivate(45);
    assert_eq!(cpu.acknowledge(), Some(45), "the second edge");
    cpu.deactivate(45);
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.run_until_idle(0, 4), [] as [u32; 0]);
}

fn a_level_interrupt_is_redelivered_while_high_and_not_once_lowered<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(UART, 0, 0xA0);
    gic.set_level(UART, None, true).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    assert_eq!(cpu.handle_all(), [UART]);
    cpu.exit(&mut gic, 0);
    // The guest's handler did not quiet the device: taken again.
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(UART), "the device is still asking");
    cpu.exit(&mut gic, 0);
    // Now it does, while active; after the EOI nothing is left.
    gic.set_level(UART, None, false).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    let lr = cpu.lr(0);
    assert!(lr.active && !lr.pending, "active, no longer pending");
    cpu.deactivate(UART);
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.run_until_idle(0, 4), [] as [u32; 0]);
    // Lowered before the guest acknowledged it: dropped.
    gic.set_level(UART, None, true).unwrap();
    let cpu = G::Cpu::enter(&mut gic, 0, 4);
    gic.set_level(UART, None, false).unwrap();
    cpu.exit(&mut gic, 0);
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
}

fn level_active_and_still_high_is_listed_pending_and_active<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(UART, 0, 0xA0);
    gic.set_level(UART, None, true).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    let lr = G::Cpu::enter(&mut gic, 0, 4).lr(0);
    assert!(lr.pending && lr.active);
}

fn disabled_interrupts_and_groups_are_not_delivered<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(40, 0, 0x80);
    gic.write_gicd(block::ICENABLER + WORD_1, W, SPI_40);
    gic.set_level(40, None, true).unwrap();
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
    assert_eq!(
        gic.read_gicd(block::ISPENDR + WORD_1, W),
        SPI_40,
        "but pending"
    );
    gic.write_gicd(block::ISENABLER + WORD_1, W, SPI_40);
    // The reset group disabled, the other enabled.
    let (reset_enable, other_enable) = if G::RESET_GROUP1 {
        (block::CTLR_ENABLE_GRP1, block::CTLR_ENABLE_GRP0)
    } else {
        (block::CTLR_ENABLE_GRP0, block::CTLR_ENABLE_GRP1)
    };
    gic.write_gicd(block::CTLR, W, other_enable);
    assert_eq!(gic.read_gicd(block::CTLR, W) & 0b11, other_enable);
    assert_ne!(reset_enable, other_enable);
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
    // Moved to the other group, which is enabled: listed in that group.
    let group_bits = if G::RESET_GROUP1 { 0 } else { SPI_40 };
    gic.write_gicd(block::IGROUPR + WORD_1, W, group_bits);
    let plan = gic.flush(0, 4);
    let expected = G::Cpu::encode(Lr::pending(40, 0x80, !G::RESET_GROUP1));
    assert_eq!(plan.list_registers(), &[expected]);
    gic.sync(0, &[]);
    gic.write_gicd(block::CTLR, W, 0);
    assert!(gic.flush(0, 4).is_empty());
}

fn an_active_interrupt_stays_listed_when_disabled<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    gic.write_gicd(block::ICENABLER + WORD_1, W, SPI_40);
    gic.write_gicd(block::CTLR, W, 0);
    let mut cpu = G::Cpu::enter(&mut gic, 0, 4);
    assert_eq!(
        cpu.listed_intids(),
        [40],
        "so that the guest can deactivate it"
    );
    cpu.deactivate(40);
    cpu.exit(&mut gic, 0);
    assert_eq!(gic.read_gicd(block::ISACTIVER + WORD_1, W), 0);
}

fn guest_register_writes_reach_in_flight_interrupts<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.enable_spi(40, 1, 0x80);
    gic.make_edge(40);
    gic.trigger_edge(40, None).unwrap();
    let cpu = G::Cpu::enter(&mut gic, 1, 4);
    // Another vCPU reads and clears its pending state meanwhile.
    assert_eq!(gic.read_gicd(block::ISPENDR + WORD_1, W), SPI_40);
    gic.write_gicd(block::ICPENDR + WORD_1, W, SPI_40);
    assert_eq!(gic.read_gicd(block::ISPENDR + WORD_1, W), 0);
    cpu.exit(&mut gic, 1);
    assert!(!gic.has_pending(1));
    // Set active through the distributor, then deactivated through ICACTIVER.
    gic.write_gicd(block::ISACTIVER + WORD_1, W, SPI_40);
    assert_eq!(gic.read_gicd(block::ISACTIVER + WORD_1, W), SPI_40);
    let cpu = G::Cpu::enter(&mut gic, 1, 4);
    assert_eq!(cpu.listed_intids(), [40]);
    gic.write_gicd(block::ICACTIVER + WORD_1, W, SPI_40);
    cpu.exit(&mut gic, 1);
    assert_eq!(gic.read_gicd(block::ISACTIVER + WORD_1, W), 0);
}

fn a_flush_without_sync_takes_the_list_registers_back_unchanged<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.enable_spi(40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let first = gic.flush(0, 4);
    let second = gic.flush(0, 4);
    assert_eq!(first, second);
    assert_eq!(gic.run_until_idle(0, 4), [40]);
}

fn a_list_register_holding_something_else_counts_as_unchanged<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.enable_spi(40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let plan = gic.flush(0, 4);
    let other = Lr {
        intid: 41,
        active: true,
        ..Lr::default()
    };
    gic.sync(0, &[G::Cpu::encode(other), 0xFFFF, 0xFFFF]);
    assert_eq!(gic.stats().lr_mismatches, 1);
    assert_eq!(gic.flush(0, 4), plan);
}
