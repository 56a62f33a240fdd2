//! Interrupt delivery through flush and sync: routing, priorities, overflow, edge
//! and level semantics, hardware-backed interrupts, enables.

use super::*;
use crate::vgic::{Vgic, VgicError};

/// Configures SPI `intid` as edge-triggered (ICFGR Int_config bit 1).
fn make_edge(gic: &mut VgicV3, intid: u32) {
    let offset = gicd::ICFGR + 4 * u64::from(intid / 16);
    let value = read(gic, offset, W) | (0b10 << (2 * (intid % 16)));
    write(gic, offset, W, value);
}

#[test]
fn an_spi_is_listed_for_its_vcpu_only() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 1, 0x80);
    gic.set_level(40, None, true).unwrap();
    assert!(!gic.has_pending(0));
    assert!(gic.has_pending(1));
    assert!(gic.flush(0, 4).is_empty());
    let plan = gic.flush(1, 4);
    assert_eq!(
        plan.list_registers(),
        &[lr::PENDING | lr::GROUP1 | (0x80 << 48) | 40]
    );
    assert!(gic.flush(2, 4).is_empty());
    // Routed elsewhere while vCPU 1 holds it: it stays with vCPU 1 until synced.
    write(&mut gic, gicd::IROUTER + 8 * 40, D, vcpu_mpidr(2));
    assert!(
        gic.flush(2, 4).is_empty(),
        "never in two vCPUs' list registers"
    );
    gic.sync(1, plan.list_registers());
    assert!(!gic.has_pending(1));
    assert_eq!(CpuInterface::enter(&mut gic, 2, 4).listed(), [40]);
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
        .map(|&v| (lr::intid(v), lr::priority(v)))
        .collect();
    assert_eq!(listed, [(41, 0x20), (43, 0x28), (20, 0x40)]);
    assert!(plan.underflow_maintenance, "two wait");
    let mut cpu = CpuInterface::load(&plan, 3);
    assert_eq!(cpu.handle_all(), [41, 43, 20]);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 3), [40, 42]);
}

#[test]
fn more_pending_than_list_registers_asks_for_maintenance_and_all_arrive_once() {
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
            assert!(!plan.underflow_maintenance);
            break;
        }
        rounds += 1;
        let waiting = intids.len() - handled.len() - plan.len();
        assert_eq!(plan.underflow_maintenance, waiting > 0, "round {rounds}");
        assert_eq!(
            plan.maintenance_bits(),
            if waiting > 0 { ICH_HCR_UIE } else { 0 },
            "UIE only"
        );
        let mut cpu = CpuInterface::load(&plan, 4);
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
    // The guest takes two and keeps them active (nested handlers).
    let mut cpu = CpuInterface::enter(&mut gic, 0, 2);
    assert_eq!(cpu.acknowledge(), Some(40));
    assert_eq!(cpu.acknowledge(), Some(41));
    cpu.exit(&mut gic, 0);
    let plan = gic.flush(0, 2);
    let states: Vec<u64> = plan
        .list_registers()
        .iter()
        .map(|v| v & (3 << 62))
        .collect();
    assert_eq!(states, [lr::ACTIVE, lr::ACTIVE], "active ones stay listed");
    assert!(plan.underflow_maintenance && plan.no_pending_maintenance);
    assert_eq!(plan.maintenance_bits(), ICH_HCR_UIE | ICH_HCR_NPIE);
    let mut cpu = CpuInterface::load(&plan, 2);
    cpu.deactivate(41);
    cpu.deactivate(40);
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
    // The vCPU exits before the guest takes it: listed again, still once.
    let cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed(), [45]);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [45]);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [] as [u32; 0]);
    // The line is still high: no new edge.
    gic.set_level(45, None, true).unwrap();
    assert!(!gic.has_pending(0));
}

#[test]
fn an_edge_while_active_is_delivered_after_deactivation() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 45, 0, 0x80);
    make_edge(&mut gic, 45);
    gic.trigger_edge(45, None).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(45));
    cpu.exit(&mut gic, 0);
    gic.trigger_edge(45, None).unwrap();
    assert!(!gic.has_pending(0), "pending and active: not takeable yet");
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.lrs[0] & (3 << 62), lr::PENDING | lr::ACTIVE);
    assert_eq!(cpu.acknowledge(), None);
    cpu.deactivate(45);
    assert_eq!(cpu.acknowledge(), Some(45), "the second edge");
    cpu.deactivate(45);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [] as [u32; 0]);
}

#[test]
fn a_level_interrupt_is_redelivered_while_high_and_not_once_lowered() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, UART, 0, 0xA0);
    gic.set_level(UART, None, true).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.handle_all(), [UART]);
    cpu.exit(&mut gic, 0);
    // The guest's handler did not quiet the device: taken again.
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(UART));
    cpu.exit(&mut gic, 0);
    // Now it does, while active; after the EOI nothing is left.
    gic.set_level(UART, None, false).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(
        cpu.lrs[0] & (3 << 62),
        lr::ACTIVE,
        "active, no longer pending"
    );
    cpu.deactivate(UART);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [] as [u32; 0]);
    // Lowered before the guest acknowledged it: dropped.
    gic.set_level(UART, None, true).unwrap();
    let cpu = CpuInterface::enter(&mut gic, 0, 4);
    gic.set_level(UART, None, false).unwrap();
    cpu.exit(&mut gic, 0);
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
}

#[test]
fn level_active_and_still_high_is_listed_pending_and_active() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, UART, 0, 0xA0);
    gic.set_level(UART, None, true).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    let cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.lrs[0] & (3 << 62), lr::PENDING | lr::ACTIVE);
}

#[test]
fn the_hardware_timer() {
    let mut gic = vgic(2);
    enable_private(&mut gic, 1, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 1, 27).unwrap();
    // The physical timer fired; the host left it active and injects it.
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 1, 4);
    let expected = lr::PENDING | lr::HW | lr::GROUP1 | (0xA0 << 48) | (27 << lr::PINTID_SHIFT) | 27;
    assert_eq!(cpu.lrs, [expected, 0, 0, 0]);
    // A second trigger before the guest deactivated it is ignored.
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 1);
    assert_eq!(cpu.acknowledge(), Some(VTIMER));
    cpu.exit(&mut gic, 1);
    // Not kept pending in software once listed: only the active state came back.
    let saved = gic.save().vcpus[1].private[27];
    assert!(!saved.pending_latch && saved.active);
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 2, "still active");
    let mut cpu = CpuInterface::enter(&mut gic, 1, 4);
    assert_eq!(
        cpu.lrs[0],
        (expected & !lr::PENDING) | lr::ACTIVE,
        "active only, HW"
    );
    cpu.deactivate(VTIMER);
    cpu.exit(&mut gic, 1);
    assert!(gic.flush(1, 4).is_empty(), "once");
    gic.sync(1, &[]);
    // Inactive in the list register: the next firing is accepted.
    gic.trigger_edge(VTIMER, Some(1)).unwrap();
    assert_eq!(gic.stats().ignored_hardware_triggers, 2);
    assert_eq!(run_until_idle(&mut gic, 1, 4), [VTIMER]);
    // The other vCPU's timer is not mapped and not involved.
    assert!(gic.flush(0, 4).is_empty());
}

#[test]
fn hardware_pending_never_listed_together_with_active() {
    let mut gic = vgic(1);
    enable_private(&mut gic, 0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    write(&mut gic, rdist(0, gicr::ISACTIVER0), W, 1 << VTIMER);
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let plan = gic.flush(0, 4);
    assert_eq!(plan.list_registers()[0] & (3 << 62), lr::ACTIVE);
    assert_ne!(plan.list_registers()[0] & lr::HW, 0);
}

#[test]
fn disabled_interrupts_and_groups_are_not_delivered() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 40, 0, 0x80);
    write(&mut gic, gicd::ICENABLER + 4, W, 1 << 8);
    gic.set_level(40, None, true).unwrap();
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
    assert_eq!(read(&mut gic, gicd::ISPENDR + 4, W), 1 << 8, "but pending");
    write(&mut gic, gicd::ISENABLER + 4, W, 1 << 8);
    // Group 1 disabled.
    write(&mut gic, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP0);
    assert!(!gic.has_pending(0));
    assert!(gic.flush(0, 4).is_empty());
    // Moved to Group 0, which is enabled: delivered with Group = 0.
    write(&mut gic, gicd::IGROUPR + 4, W, 0);
    let plan = gic.flush(0, 4);
    assert_eq!(plan.list_registers(), &[lr::PENDING | (0x80 << 48) | 40]);
    gic.sync(0, &[]);
    write(&mut gic, gicd::CTLR, W, 0);
    assert!(gic.flush(0, 4).is_empty());
}

#[test]
fn an_active_interrupt_stays_listed_when_disabled() {
    let mut gic = vgic(1);
    enable_spi(&mut gic, 40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    cpu.acknowledge();
    cpu.exit(&mut gic, 0);
    write(&mut gic, gicd::ICENABLER + 4, W, 1 << 8);
    write(&mut gic, gicd::CTLR, W, 0);
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed(), [40], "so that the guest can deactivate it");
    cpu.deactivate(40);
    cpu.exit(&mut gic, 0);
    assert_eq!(read(&mut gic, gicd::ISACTIVER + 4, W), 0);
}

#[test]
fn guest_register_writes_reach_in_flight_interrupts() {
    let mut gic = vgic(2);
    enable_spi(&mut gic, 40, 1, 0x80);
    make_edge(&mut gic, 40);
    gic.trigger_edge(40, None).unwrap();
    let cpu = CpuInterface::enter(&mut gic, 1, 4);
    // Another vCPU reads and clears its pending state meanwhile.
    assert_eq!(read(&mut gic, gicd::ISPENDR + 4, W), 1 << 8);
    write(&mut gic, gicd::ICPENDR + 4, W, 1 << 8);
    assert_eq!(read(&mut gic, gicd::ISPENDR + 4, W), 0);
    cpu.exit(&mut gic, 1);
    assert!(!gic.has_pending(1));
    // Set active through the distributor, then deactivated through ICACTIVER.
    write(&mut gic, gicd::ISACTIVER + 4, W, 1 << 8);
    assert_eq!(read(&mut gic, gicd::ISACTIVER + 4, W), 1 << 8);
    let cpu = CpuInterface::enter(&mut gic, 1, 4);
    assert_eq!(cpu.listed(), [40]);
    write(&mut gic, gicd::ICACTIVER + 4, W, 1 << 8);
    cpu.exit(&mut gic, 1);
    assert_eq!(read(&mut gic, gicd::ISACTIVER + 4, W), 0);
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
    let mut gic = vgic(1);
    enable_spi(&mut gic, 40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    let plan = gic.flush(0, 4);
    gic.sync(0, &[41 | lr::ACTIVE, 0xFFFF, 0xFFFF]);
    assert_eq!(gic.stats().lr_mismatches, 1);
    assert_eq!(gic.flush(0, 4), plan);
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
        gic.trigger_edge(3, Some(0)),
        Ok(()),
        "an SGI from the hypervisor"
    );
    assert_eq!(
        gic.set_level(27, None, true),
        Err(VgicError::MissingVcpu { intid: 27 })
    );
    assert_eq!(
        gic.set_level(33, Some(0), true),
        Err(VgicError::UnexpectedVcpu { intid: 33 })
    );
    assert_eq!(
        gic.set_level(27, Some(2), true),
        Err(VgicError::NoSuchVcpu { vcpu: 2, vcpus: 2 })
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
        gic.map_hardware(27, 9, 27),
        Err(VgicError::NoSuchVcpu { vcpu: 9, vcpus: 2 })
    );
    // Out-of-range vCPUs in flush, sync and the queries are harmless.
    assert!(gic.flush(2, 4).is_empty());
    assert!(gic.flush(usize::MAX, 4).is_empty());
    gic.sync(usize::MAX, &[u64::MAX]);
    assert!(!gic.has_pending(7));
    assert_eq!(gic.highest_pending_priority(7), None);
    assert_eq!(gic.vcpus(), 2);
}

#[test]
fn error_messages() {
    use std::string::ToString;
    assert_eq!(
        VgicError::NoSuchInterrupt {
            intid: 96,
            limit: 96
        }
        .to_string(),
        "interrupt 96 does not exist on the virtual GIC (INTIDs 0 to 95 are implemented)"
    );
    assert_eq!(
        VgicError::NoSuchVcpu { vcpu: 2, vcpus: 2 }.to_string(),
        "vCPU 2 does not exist on the virtual GIC (2 vCPUs)"
    );
    assert_eq!(
        VgicError::MissingVcpu { intid: 27 }.to_string(),
        "interrupt 27 is private to a vCPU, but no vCPU was given"
    );
    assert_eq!(
        VgicError::BadPhysicalInterrupt { physical: 5 }.to_string(),
        "physical interrupt 5 cannot back a virtual one (only PPIs and SPIs, 16 to 1019)"
    );
}

/// The vCPUs [`Vgic::take_kicks`] returns.
fn kicks(gic: &mut VgicV3) -> Vec<usize> {
    gic.take_kicks().iter().collect()
}

#[test]
fn distributor_writes_kick_the_vcpu_an_spi_is_routed_to() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 2, 0x80);
    assert!(kicks(&mut gic).is_empty(), "nothing pending");
    // vCPU 0 sets it pending for vCPU 2.
    write(&mut gic, gicd::ISPENDR + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    // Disabled while vCPU 2 holds it in a list register: vCPU 2 must look again.
    let plan = gic.flush(2, 4);
    assert_eq!(plan.list_registers().len(), 1);
    write(&mut gic, gicd::ICENABLER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    gic.sync(2, plan.list_registers());
    assert!(gic.flush(2, 4).is_empty(), "disabled");
    gic.sync(2, &[]);
    // Enabled again, then moved to vCPU 1: each time its target is kicked.
    write(&mut gic, gicd::ISENABLER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [2]);
    write(&mut gic, gicd::IROUTER + 8 * 40, D, vcpu_mpidr(1));
    assert_eq!(kicks(&mut gic), [1]);
    // Made active (not deliverable, but to be listed) and then deactivated.
    write(&mut gic, gicd::ISACTIVER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [1]);
    write(&mut gic, gicd::ICACTIVER + 4, W, 1 << 8);
    assert_eq!(kicks(&mut gic), [1]);
    // A priority write to an SPI with nothing to list kicks nobody.
    write(&mut gic, gicd::IPRIORITYR + 41, B, 0x40);
    assert!(kicks(&mut gic).is_empty());
    // The distributor's groups turned off and on.
    write(&mut gic, gicd::CTLR, W, 0);
    assert!(kicks(&mut gic).is_empty(), "nothing in a list register");
    write(
        &mut gic,
        gicd::CTLR,
        W,
        gicd::CTLR_ENABLE_GRP1 | gicd::CTLR_ENABLE_GRP0,
    );
    assert_eq!(kicks(&mut gic), [1]);
}

#[test]
fn redistributor_writes_kick_its_vcpu() {
    let mut gic = vgic(2);
    enable_private(&mut gic, 1, 20, 0x80);
    assert!(kicks(&mut gic).is_empty());
    // vCPU 0 sets PPI 20 of vCPU 1 pending through vCPU 1's redistributor.
    write(&mut gic, rdist(1, gicr::ISPENDR0), W, 1 << 20);
    assert_eq!(kicks(&mut gic), [1]);
    assert!(gic.has_pending(1) && !gic.has_pending(0));
    // Waking a redistributor moves "any PE" SPIs: both vCPUs look again.
    write(&mut gic, rdist(1, gicr::WAKER), W, 0);
    assert_eq!(kicks(&mut gic), [0, 1]);
}

#[test]
fn the_hardware_timer_is_a_level() {
    let mut gic = vgic(1);
    enable_private(&mut gic, 0, VTIMER, 0xA0);
    gic.map_hardware(VTIMER, 0, 27).unwrap();
    assert_eq!(
        gic.set_level(VTIMER, Some(0), true),
        Err(VgicError::HardwareBacked { intid: VTIMER })
    );
    // The timer's condition holds; the physical interrupt has not fired yet.
    assert_eq!(gic.set_hardware_level(VTIMER, Some(0), true), Ok(None));
    assert_eq!(read(&mut gic, rdist(0, gicr::ISPENDR0), W), 1 << VTIMER);
    assert!(gic.flush(0, 4).is_empty(), "listed once the host holds it");
    gic.sync(0, &[]);
    // It fires: listed with the HW bit.
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    let plan = gic.flush(0, 4);
    assert_ne!(plan.value(0) & lr::HW, 0);
    // The guest disables its timer before taking it: no longer pending, the
    // physical interrupt is handed back, and the next plan drops it.
    assert_eq!(gic.set_hardware_level(VTIMER, Some(0), false), Ok(Some(27)));
    assert_eq!(read(&mut gic, rdist(0, gicr::ISPENDR0), W), 0);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    assert!(!gic.has_pending(0));
    // Disabled in the GIC, the timer fires: pending, not listed; enabled, listed.
    write(&mut gic, rdist(0, gicr::ICENABLER0), W, 1 << VTIMER);
    gic.trigger_edge(VTIMER, Some(0)).unwrap();
    assert_eq!(read(&mut gic, rdist(0, gicr::ISPENDR0), W), 1 << VTIMER);
    assert!(gic.flush(0, 4).is_empty());
    gic.sync(0, &[]);
    write(&mut gic, rdist(0, gicr::ISENABLER0), W, 1 << VTIMER);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [VTIMER]);
    assert_eq!(gic.stats().ignored_hardware_triggers, 0);
}

#[test]
fn an_spi_moved_while_listed_elsewhere_kicks_its_new_target_when_synced() {
    let mut gic = vgic(3);
    enable_spi(&mut gic, 40, 2, 0x80);
    write(&mut gic, gicd::ISPENDR + 4, W, 1 << 8);
    let _ = kicks(&mut gic);
    let plan = gic.flush(2, 4);
    write(&mut gic, gicd::IROUTER + 8 * 40, D, vcpu_mpidr(1));
    let _ = kicks(&mut gic);
    // vCPU 1 looks before vCPU 2 gave it back: not yet its own.
    assert!(gic.flush(1, 4).is_empty());
    gic.sync(1, &[]);
    assert!(kicks(&mut gic).is_empty());
    // vCPU 2 gives it back untouched: vCPU 1 is kicked to take it.
    gic.sync(2, plan.list_registers());
    assert_eq!(kicks(&mut gic), [1]);
    assert_eq!(run_until_idle(&mut gic, 1, 4), [40]);
}
