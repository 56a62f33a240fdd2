//! Interrupt delivery through flush and sync on the GICv2 front-end: targets,
//! priorities, overflow and maintenance, edge and level semantics, the
//! hardware-backed timer, groups and enables, kicks after register writes.

use super::*;
use crate::vgic::VgicError;

#[test]
fn an_spi_is_listed_for_its_target_vcpu_only() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 1, 0x80);
    gic.set_level(40, None, true).unwrap();
    assert!(!gic.has_pending(0));
    assert!(gic.has_pending(1));
    assert!(gic.flush(0, 4).is_empty());
    let plan = gic.flush(1, 4);
    assert_eq!(
        plan.list_registers(),
        &[lr::PENDING | lr::priority(0x80) | 40]
    );
    assert!(gic.flush(2, 4).is_empty());
    // Retargeted while vCPU 1 holds it: it stays with vCPU 1 until synced.
    write(&mut gic, 0, gicd::ITARGETSR + 40, B, 1 << 2);
    assert!(
        gic.flush(2, 4).is_empty(),
        "never in two vCPUs' list registers"
    );
    gic.sync(1, plan.list_registers());
    assert!(!gic.has_pending(1));
    assert_eq!(Gicv::enter(&mut gic, 2, 4).listed(), [(40, 0)]);
}

#[test]
fn several_targets_pick_the_lowest_and_none_keeps_it_pending() {
    let mut gic = vgic(4);
    enable_spi(&mut gic, 41, 0, 0x80);
    // CPUs 1 and 3, plus CPUs 4-7 that do not exist.
    write(&mut gic, 0, gicd::ITARGETSR + 41, B, 0b1111_1010);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 41, B), 0b1010);
    gic.trigger_edge(41, None).unwrap();
    assert!(gic.has_pending(1) && !gic.has_pending(3));
    // Only CPUs that do not exist: pending, delivered nowhere.
    write(&mut gic, 0, gicd::ITARGETSR + 41, B, 0b1111_0000);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 41, B), 0);
    for vcpu in 0..4 {
        assert!(!gic.has_pending(vcpu));
        assert!(gic.flush(vcpu, 4).is_empty());
        gic.sync(vcpu, &[]);
    }
    assert_eq!(read(&mut gic, 0, gicd::ISPENDR + 4, W), 1 << 9);
    write(&mut gic, 0, gicd::ITARGETSR + 41, B, 1 << 3);
    assert_eq!(
        kicks(&mut gic),
        [3],
        "retargeted to vCPU 3, which must look"
    );
    assert_eq!(run_until_idle(&mut gic, 3, 4), [41]);
}

#[test]
fn ppis_are_per_vcpu() {
    let mut gic = vgic(2);
    enable_private(&mut gic, 0, 20, 0x40);
    enable_private(&mut gic, 1, 20, 0x60);
    gic.set_level(20, Some(1), true).unwrap();
    assert!(!gic.has_pending(0));
    let cpu = Gicv::enter(&mut gic, 1, 4);
    assert_eq!(cpu.lrs[0], lr::PENDING | lr::priority(0x60) | 20);
    cpu.exit(&mut gic, 1);
    assert_eq!(read(&mut gic, 1, gicd::ISPENDR, W), 1 << 20);
    assert_eq!(read(&mut gic, 0, gicd::ISPENDR, W), 0, "banked");
}

#[test]
fn priorities_order_the_list_registers() {
    let mut gic = vgic(1);
    for (intid, priority) in [(40, 0x80), (41, 0x20), (42, 0xA0), (43, 0x28)] {
        enable_spi(&mut gic, intid, 0, priority);
        gic.trigger_edge(intid, None).unwrap();
    }
    enable_private(&mut gic, 0, 20, 0x40);
    gic.trigger_edge(20, Some(0)).unwrap();
    assert_eq!(gic.highest_pending_priority(0), Some(0x20));
    let plan = gic.flush(0, 3);
    let listed: Vec<(u32, u8)> = plan
        .list_registers()
        .iter()
        .map(|&v| (lr::intid(v), lr::priority_of(v)))
        .collect();
    assert_eq!(listed, [(41, 0x20), (43, 0x28), (20, 0x40)]);
    assert!(plan.underflow_maintenance, "two wait");
    let mut cpu = Gicv::load(&plan, 3);
    assert_eq!(cpu.handle_all(), [41, 43, 20]);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 3), [40, 42]);
}

#[test]
fn more_pending_than_list_registers_asks_for_maintenance_and_all_arrive_once() {
    // The GIC-400 has 4 list registers.
    let mut gic = vgic(1);
    let intids: Vec<u32> = (50..60).collect();
    for &intid in &intids {
        enable_spi(&mut gic, intid, 0, 0x80);
        make_edge(&mut gic, intid);
        gic.trigger_edge(intid, None).unwrap();
    }
    let mut handled = Vec::new();
    let mut rounds = 0;
    loop {
        let plan = gic.flush(0, 4);
        if plan.is_empty() {
            assert_eq!(plan.maintenance_bits(), 0);
            break;
        }
        rounds += 1;
        let waiting = intids.len() - handled.len() - plan.len();
        assert_eq!(
            plan.maintenance_bits(),
            if waiting > 0 { GICH_HCR_UIE } else { 0 },
            "round {rounds}: GICH_HCR.UIE only"
        );
        let mut cpu = Gicv::load(&plan, 4);
        handled.extend(cpu.handle_all());
        cpu.exit(&mut gic, 0);
    }
    assert_eq!(rounds, 3);
    assert_eq!(
        handled, intids,
        "each once, in INTID order at equal priority"
    );
}

#[test]
fn no_pending_maintenance_when_only_active_interrupts_fit() {
    let mut gic = vgic(1);
    for intid in 40..43 {
        enable_spi(&mut gic, intid, 0, 0x80);
        make_edge(&mut gic, intid);
        gic.trigger_edge(intid, None).unwrap();
    }
    let mut cpu = Gicv::enter(&mut gic, 0, 2);
    assert_eq!(cpu.acknowledge(), Some(40));
    assert_eq!(cpu.acknowledge(), Some(41));
    cpu.exit(&mut gic, 0);
    let plan = gic.flush(0, 2);
    let states: Vec<u64> = plan
        .list_registers()
        .iter()
        .map(|v| v & lr::STATE)
        .collect();
    assert_eq!(states, [lr::ACTIVE, lr::ACTIVE], "active ones stay listed");
    assert_eq!(plan.maintenance_bits(), GICH_HCR_UIE | GICH_HCR_NPIE);
    let mut cpu = Gicv::load(&plan, 2);
    cpu.end_of_interrupt(41);
    cpu.end_of_interrupt(40);
    assert!(!cpu.eoi_maintenance, "no EOI bit on SPIs");
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 2), [42]);
}

#[test]
fn an_edge_is_delivered_exactly_once() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 45, 0, 0x80);
    make_edge(&mut gic, 45);
    gic.set_level(45, None, true).unwrap();
    gic.set_level(45, None, true).unwrap();
    gic.trigger_edge(45, None).unwrap();
    let cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed(), [(45, 0)]);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [45]);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [] as [u32; 0]);
    gic.set_level(45, None, true).unwrap();
    assert!(!gic.has_pending(0), "still high: no new edge");
}

#[test]
fn an_edge_while_active_is_delivered_after_the_end_of_interrupt() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 45, 0, 0x80);
    make_edge(&mut gic, 45);
    gic.trigger_edge(45, None).unwrap();
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(45));
    cpu.exit(&mut gic, 0);
    gic.trigger_edge(45, None).unwrap();
    assert!(!gic.has_pending(0), "pending and active: not takeable yet");
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.lrs[0] & lr::STATE, lr::PENDING | lr::ACTIVE);
    assert_eq!(cpu.acknowledge(), None);
    cpu.end_of_interrupt(45);
    assert_eq!(cpu.acknowledge(), Some(45), "the second edge");
    cpu.end_of_interrupt(45);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [] as [u32; 0]);
}

#[test]
fn a_level_interrupt_is_redelivered_while_high_and_not_once_lowered() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, UART, 0, 0xA0);
    gic.set_level(UART, None, true).unwrap();
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.handle_all(), [UART]);
    cpu.exit(&mut gic, 0);
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(UART), "the device is still asking");
    cpu.exit(&mut gic, 0);
    gic.set_level(UART, None, false).unwrap();
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(
        cpu.lrs[0] & lr::STATE,
        lr::ACTIVE,
        "active, no longer pending"
    );
    cpu.end_of_interrupt(UART);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [] as [u32; 0]);
    // Lowered before the guest acknowledged it: dropped.
    gic.set_level(UART, None, true).unwrap();
    let cpu = Gicv::enter(&mut gic, 0, 4);
    gic.set_level(UART, None, false).unwrap();
    cpu.exit(&mut gic, 0);
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
}

#[test]
fn the_hardware_timer() {
    let mut gic = vgic(2);
    enable_private(&mut gic, 1, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 1, 27).unwrap();
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    let mut cpu = Gicv::enter(&mut gic, 1, 4);
    // HW = 1, PhysicalID 27 in [19:10], Group 0, priority 0xA0.
    let expected = lr::HW | lr::PENDING | lr::priority(0xA0) | (27 << lr::PHYSICAL_SHIFT) | 27;
    assert_eq!(cpu.lrs, [expected, 0, 0, 0]);
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 1);
    assert_eq!(cpu.acknowledge(), Some(VTIMER));
    cpu.exit(&mut gic, 1);
    let saved = gic.save().vcpus[1].private[27];
    assert!(
        !saved.pending_latch && saved.active,
        "not kept pending once listed"
    );
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 2, "still active");
    let mut cpu = Gicv::enter(&mut gic, 1, 4);
    assert_eq!(cpu.lrs[0], (expected & !lr::PENDING) | lr::ACTIVE);
    cpu.end_of_interrupt(VTIMER);
    cpu.exit(&mut gic, 1);
    assert!(gic.flush(1, 4).is_empty(), "once");
    gic.sync(1, &[]);
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 2);
    assert_eq!(run_until_idle(&mut gic, 1, 4), [VTIMER]);
    assert!(gic.flush(0, 4).is_empty(), "vCPU 0's timer is not involved");
}

#[test]
fn hardware_pending_never_listed_together_with_active() {
    let mut gic = vgic(1);
    enable_private(&mut gic, 0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    write(&mut gic, 0, gicd::ISACTIVER, W, 1 << VTIMER);
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let plan = gic.flush(0, 4);
    assert_eq!(plan.value(0) & lr::STATE, lr::ACTIVE);
    assert_ne!(plan.value(0) & lr::HW, 0);
}

#[test]
fn groups_and_enables() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 40, 0, 0x80);
    write(&mut gic, 0, gicd::ICENABLER + 4, W, 1 << 8);
    gic.set_level(40, None, true).unwrap();
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
    assert_eq!(
        read(&mut gic, 0, gicd::ISPENDR + 4, W),
        1 << 8,
        "but pending"
    );
    write(&mut gic, 0, gicd::ISENABLER + 4, W, 1 << 8);
    // Group 0 (the reset group) disabled.
    write(&mut gic, 0, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP1);
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
    // Moved to Group 1, which is enabled: listed with Grp1.
    write(&mut gic, 0, gicd::IGROUPR + 4, W, 1 << 8);
    let plan = gic.flush(0, 4);
    assert_eq!(
        plan.list_registers(),
        &[lr::GRP1 | lr::PENDING | lr::priority(0x80) | 40]
    );
    gic.sync(0, &[]);
    write(&mut gic, 0, gicd::CTLR, W, 0);
    assert!(gic.flush(0, 4).is_empty());
}

#[test]
fn an_active_interrupt_stays_listed_when_disabled() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    write(&mut gic, 0, gicd::ICENABLER + 4, W, 1 << 8);
    write(&mut gic, 0, gicd::CTLR, W, 0);
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed(), [(40, 0)], "so that the guest can end it");
    cpu.end_of_interrupt(40);
    cpu.exit(&mut gic, 0);
    assert_eq!(read(&mut gic, 0, gicd::ISACTIVER + 4, W), 0);
}

#[test]
fn guest_register_writes_reach_in_flight_interrupts() {
    let mut gic = vgic(2);
    enable_spi(&mut gic, 40, 1, 0x80);
    make_edge(&mut gic, 40);
    gic.trigger_edge(40, None).unwrap();
    let cpu = Gicv::enter(&mut gic, 1, 4);
    // vCPU 0 reads and clears its pending state meanwhile.
    assert_eq!(read(&mut gic, 0, gicd::ISPENDR + 4, W), 1 << 8);
    write(&mut gic, 0, gicd::ICPENDR + 4, W, 1 << 8);
    assert_eq!(read(&mut gic, 0, gicd::ISPENDR + 4, W), 0);
    cpu.exit(&mut gic, 1);
    assert!(!gic.has_pending(1));
    write(&mut gic, 0, gicd::ISACTIVER + 4, W, 1 << 8);
    let cpu = Gicv::enter(&mut gic, 1, 4);
    assert_eq!(cpu.listed(), [(40, 0)]);
    write(&mut gic, 0, gicd::ICACTIVER + 4, W, 1 << 8);
    cpu.exit(&mut gic, 1);
    assert_eq!(read(&mut gic, 0, gicd::ISACTIVER + 4, W), 0);
}

#[test]
fn a_flush_without_sync_takes_the_list_registers_back_unchanged() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let first = gic.flush(0, 4);
    let second = gic.flush(0, 4);
    assert_eq!(first, second);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [40]);
}

#[test]
fn a_list_register_holding_something_else_counts_as_unchanged() {
    let mut gic = vgic(2);
    enable_spi(&mut gic, 40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let plan = gic.flush(0, 4);
    gic.sync(0, &[41 | lr::ACTIVE, 0xFFFF, 0xFFFF]);
    assert_eq!(gic.stats().lr_mismatches, 1);
    assert_eq!(gic.flush(0, 4), plan);
    gic.sync(0, &[]);
    // An SGI coming back with another CPUID is not the one listed.
    write(&mut gic, 0, gicd::ISENABLER, W, 1 << 3);
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b1, 3));
    let plan = gic.flush(0, 4);
    let sgi = plan
        .list_registers()
        .iter()
        .find(|&&v| lr::intid(v) == 3)
        .copied();
    let sgi = sgi.expect("SGI 3 listed");
    assert_eq!(lr::cpuid(sgi), 1);
    let values: Vec<u64> = plan
        .list_registers()
        .iter()
        .map(|&v| {
            if v == sgi {
                (v & !(0x7 << 10)) & !lr::PENDING
            } else {
                v
            }
        })
        .collect();
    gic.sync(0, &values);
    assert_eq!(gic.stats().lr_mismatches, 2);
    assert!(gic.has_pending(0), "SGI 3 from vCPU 1 is still pending");
}

#[test]
fn writes_kick_the_vcpu_an_spi_becomes_deliverable_on() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 2, 0x80);
    assert!(kicks(&mut gic).is_empty(), "nothing pending");
    // vCPU 0 sets it pending for vCPU 2 (Linux's irq_retrigger).
    write(&mut gic, 0, gicd::ISPENDR + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    // Disabled, then enabled again.
    write(&mut gic, 0, gicd::ICENABLER + 4, W, 1 << 8);
    assert!(kicks(&mut gic).is_empty());
    write(&mut gic, 0, gicd::ISENABLER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    // The distributor disabled and enabled.
    write(&mut gic, 0, gicd::CTLR, W, 0);
    assert!(kicks(&mut gic).is_empty());
    write(&mut gic, 0, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP0);
    assert_eq!(kicks(&mut gic), [2]);
    // A private interrupt of vCPU 1 waiting for its group to be enabled.
    enable_private(&mut gic, 1, 20, 0x80);
    write(&mut gic, 0, gicd::CTLR, W, 0);
    gic.trigger_edge(20, Some(1)).unwrap();
    let _ = kicks(&mut gic);
    write(&mut gic, 0, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP0);
    assert_eq!(kicks(&mut gic), [1, 2]);
}

#[test]
fn inputs_are_checked() {
    let mut gic = vgic(2);
    let no = |intid| VgicError::NoSuchInterrupt { intid, limit: 96 };
    for intid in [96, 1019, 1020, 1023, 8192, u32::MAX] {
        assert_eq!(gic.set_level(intid, None, true), Err(no(intid)));
        assert_eq!(gic.trigger_edge(intid, Some(0)), Err(no(intid)));
        assert_eq!(gic.map_hardware(intid, 0, 27), Err(no(intid)));
    }
    assert_eq!(
        gic.set_level(3, Some(0), true),
        Err(VgicError::NoLine { intid: 3 })
    );
    assert_eq!(
        gic.trigger_edge(3, None),
        Err(VgicError::MissingVcpu { intid: 3 })
    );
    assert_eq!(
        gic.trigger_edge(3, Some(2)),
        Err(VgicError::NoSuchVcpu { vcpu: 2, vcpus: 2 })
    );
    assert_eq!(
        gic.set_level(33, Some(0), true),
        Err(VgicError::UnexpectedVcpu { intid: 33 })
    );
    assert_eq!(
        gic.map_hardware(5, 0, 27),
        Err(VgicError::NotMappable { intid: 5 })
    );
    for physical in [0, 15, 1020, u32::MAX] {
        assert_eq!(
            gic.map_hardware(27, 0, physical),
            Err(VgicError::BadPhysicalInterrupt { physical })
        );
    }
    assert_eq!(
        gic.send_sgi_from_register(0, 1 << 24),
        Err(VgicError::Unsupported),
        "no ICC_SGI1R_EL1 on a GICv2"
    );
    assert!(gic.flush(2, 4).is_empty());
    assert!(gic.flush(usize::MAX, 4).is_empty());
    gic.sync(usize::MAX, &[u64::MAX]);
    assert!(!gic.has_pending(7));
    assert_eq!(gic.highest_pending_priority(7), None);
    assert_eq!(gic.vcpus(), 2);
    // Absurd list-register counts and values.
    enable_spi(&mut gic, 40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    assert_eq!(gic.flush(0, 0).len(), 0);
    gic.sync(0, &[]);
    assert_eq!(gic.flush(0, usize::MAX).len(), 1);
    gic.sync(0, &[u64::MAX; 100]);
    assert_eq!(gic.stats().lr_mismatches, 1);
}

#[test]
fn writes_kick_the_vcpu_holding_an_spi_in_a_list_register() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 2, 0x80);
    write(&mut gic, 0, gicd::ISPENDR + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    let plan = gic.flush(2, 4);
    // Disabled, moved to vCPU 1, made active: vCPU 2 holds it and must look again.
    write(&mut gic, 0, gicd::ICENABLER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    write(&mut gic, 0, gicd::ITARGETSR + 40, B, 0b010);
    assert_eq!(kicks(&mut gic), [2], "disabled: nothing for vCPU 1 yet");
    write(&mut gic, 0, gicd::ISACTIVER + 4, W, 1 << 8);
    assert_eq!(
        kicks(&mut gic),
        [1, 2],
        "active: to be listed on vCPU 1 too"
    );
    gic.sync(2, &[plan.value(0)]);
    assert_eq!(kicks(&mut gic), [1], "given back: vCPU 1 lists it, active");
    // Deactivated and enabled: now vCPU 1's.
    write(&mut gic, 0, gicd::ICACTIVER + 4, W, 1 << 8);
    assert!(
        kicks(&mut gic).is_empty(),
        "disabled and inactive: nothing to list"
    );
    write(&mut gic, 0, gicd::ISENABLER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [1]);
    // The distributor's groups turned off while vCPU 1 holds it.
    let _plan = gic.flush(1, 4);
    write(&mut gic, 0, gicd::CTLR, W, 0);
    assert_eq!(kicks(&mut gic), [1]);
}
