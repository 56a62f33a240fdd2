//! GICv2 SGIs: `GICD_SGIR` with each TargetListFilter, target lists naming vCPUs
//! that do not exist, per-source pending state (`GICD_SPENDSGIRn` /
//! `GICD_CPENDSGIRn`) and delivery one source at a time with the source in
//! `GICH_LR.CPUID`.

use super::*;

/// Every vCPU's SGIs enabled at priority 0xA0, both groups enabled (what Linux
/// programs, in Group 0).
fn sgis_enabled(vcpus: usize) -> VgicV2 {
    let mut gic = vgic(vcpus);
    write(
        &mut gic,
        0,
        gicd::CTLR,
        W,
        gicd::CTLR_ENABLE_GRP0 | gicd::CTLR_ENABLE_GRP1,
    );
    for vcpu in 0..vcpus {
        write(&mut gic, vcpu, gicd::ISENABLER, W, 0xFFFF);
        for i in (0..16).step_by(4) {
            write(&mut gic, vcpu, gicd::IPRIORITYR + i, W, 0xA0A0_A0A0);
        }
    }
    gic
}

/// The pending SGIs of `vcpu` (GICD_ISPENDR0 [15:0], as `vcpu` reads it).
fn pending_sgis(gic: &mut VgicV2, vcpu: usize) -> u64 {
    read(gic, vcpu, gicd::ISPENDR, W) & 0xFFFF
}

/// The sources SGI `n` of `vcpu` is pending from (GICD_SPENDSGIRn byte n).
fn sources(gic: &mut VgicV2, vcpu: usize, n: u64) -> u64 {
    read(gic, vcpu, gicd::SPENDSGIR + n, B)
}

#[test]
fn target_list_filter() {
    let mut gic = sgis_enabled(4);
    // 0b00: the list.
    write(&mut gic, 1, gicd::SGIR, W, sgir(0b00, 0b1101, 3));
    assert_eq!(kicks(&mut gic), [0, 2, 3]);
    for vcpu in [0, 2, 3] {
        assert_eq!(pending_sgis(&mut gic, vcpu), 1 << 3, "vCPU {vcpu}");
        assert_eq!(sources(&mut gic, vcpu, 3), 1 << 1, "from vCPU 1");
    }
    assert_eq!(pending_sgis(&mut gic, 1), 0);
    let mut cpu = Gicv::enter(&mut gic, 2, 4);
    // CPUID [12:10] = 1, Group 0, priority 0xA0.
    assert_eq!(
        cpu.lrs[0],
        lr::PENDING | lr::priority(0xA0) | (1 << lr::CPUID_SHIFT) | 3
    );
    assert_eq!(cpu.handle_all(), [iar(3, 1)]);
    cpu.exit(&mut gic, 2);
    assert_eq!(pending_sgis(&mut gic, 2), 0);
    // 0b01: everyone but the sender (the list is ignored).
    write(&mut gic, 2, gicd::SGIR, W, sgir(0b01, 0b0100, 6));
    assert_eq!(kicks(&mut gic), [0, 1, 3]);
    assert_eq!(pending_sgis(&mut gic, 2) & (1 << 6), 0);
    assert_eq!(sources(&mut gic, 1, 6), 1 << 2);
    // 0b10: the sender only.
    write(&mut gic, 3, gicd::SGIR, W, sgir(0b10, 0b0001, 9));
    assert_eq!(kicks(&mut gic), [3]);
    assert_eq!(
        run_until_idle(&mut gic, 3, 4),
        [iar(3, 1), iar(6, 2), iar(9, 3)]
    );
    // 0b11: reserved, no SGI.
    write(&mut gic, 0, gicd::SGIR, W, sgir(0b11, 0xFF, 1));
    assert!(kicks(&mut gic).is_empty());
    for vcpu in 0..4 {
        assert_eq!(pending_sgis(&mut gic, vcpu) & (1 << 1), 0);
    }
}

#[test]
fn target_list_bits_beyond_the_vcpus_are_ignored() {
    let mut gic = sgis_enabled(3);
    write(&mut gic, 0, gicd::SGIR, W, sgir(0, 0b1111_1000, 2));
    assert!(kicks(&mut gic).is_empty());
    write(&mut gic, 0, gicd::SGIR, W, sgir(0, 0xFF, 2));
    assert_eq!(kicks(&mut gic), [0, 1, 2]);
    for vcpu in 0..3 {
        assert_eq!(sources(&mut gic, vcpu, 2), 1);
    }
    // Every value at all, from every vCPU and from one that does not exist: no
    // panic, nothing beyond the three vCPUs.
    for sender in [0, 1, 2, 3, 8, usize::MAX] {
        for bit in 0..32 {
            write(&mut gic, sender, gicd::SGIR, W, 1 << bit);
            write(&mut gic, sender, gicd::SGIR, W, !(1u64 << bit));
        }
    }
    assert!(kicks(&mut gic).iter().all(|&vcpu| vcpu < 3));
    // An SGI from a vCPU that does not exist is not sent.
    let mut gic = sgis_enabled(3);
    write(&mut gic, 3, gicd::SGIR, W, sgir(0b01, 0, 1));
    assert!(kicks(&mut gic).is_empty());
    assert_eq!(pending_sgis(&mut gic, 0), 0);
}

#[test]
fn an_sgi_from_several_sources_is_delivered_once_per_source_one_at_a_time() {
    let mut gic = sgis_enabled(4);
    for sender in [3, 1, 2] {
        write(&mut gic, sender, gicd::SGIR, W, sgir(0, 0b1, 5));
    }
    assert_eq!(sources(&mut gic, 0, 5), 0b1110);
    // One list register for SGI 5 (a VirtualID may be listed once), from the lowest
    // source, asking for an EOI maintenance interrupt since others wait.
    let plan = gic.flush(0, 4);
    assert_eq!(
        plan.maintenance_bits(),
        0,
        "no underflow: the EOI bit does it"
    );
    let mut cpu = Gicv::load(&plan, 4);
    assert_eq!(cpu.listed(), [(5, 1)]);
    assert_eq!(
        cpu.lrs[0],
        lr::PENDING | lr::priority(0xA0) | lr::EOI | (1 << lr::CPUID_SHIFT) | 5
    );
    assert_eq!(cpu.handle_all(), [iar(5, 1)]);
    assert!(cpu.eoi_maintenance, "the guest's EOI makes the vCPU exit");
    cpu.exit(&mut gic, 0);
    // The next source, and the last one without EOI.
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed(), [(5, 2)]);
    assert_ne!(cpu.lrs[0] & lr::EOI, 0);
    assert_eq!(cpu.handle_all(), [iar(5, 2)]);
    cpu.exit(&mut gic, 0);
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.listed(), [(5, 3)]);
    assert_eq!(cpu.lrs[0] & lr::EOI, 0);
    assert_eq!(cpu.handle_all(), [iar(5, 3)]);
    cpu.exit(&mut gic, 0);
    assert_eq!(sources(&mut gic, 0, 5), 0);
    assert!(!gic.has_pending(0));
}

#[test]
fn an_active_sgi_keeps_its_source_and_the_next_waits_for_its_end() {
    let mut gic = sgis_enabled(3);
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b1, 4));
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(iar(4, 1)));
    cpu.exit(&mut gic, 0);
    // vCPU 2 sends SGI 4 while the guest handles the one from vCPU 1.
    write(&mut gic, 2, gicd::SGIR, W, sgir(0, 0b1, 4));
    assert_eq!(sources(&mut gic, 0, 4), 0b100);
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(
        cpu.lrs[0],
        lr::ACTIVE | lr::priority(0xA0) | lr::EOI | (1 << lr::CPUID_SHIFT) | 4,
        "active from vCPU 1 only, EOI to learn when to list the next"
    );
    assert_eq!(cpu.acknowledge(), None);
    cpu.end_of_interrupt(iar(4, 1));
    assert!(cpu.eoi_maintenance);
    cpu.exit(&mut gic, 0);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [iar(4, 2)]);
    // The same source again while active: pending and active in one register.
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b1, 4));
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.acknowledge(), Some(iar(4, 1)));
    cpu.exit(&mut gic, 0);
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b1, 4));
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    assert_eq!(cpu.lrs[0] & (lr::STATE | lr::EOI), lr::PENDING | lr::ACTIVE);
    assert_eq!(lr::cpuid(cpu.lrs[0]), 1);
    cpu.end_of_interrupt(iar(4, 1));
    assert_eq!(cpu.handle_all(), [iar(4, 1)]);
    cpu.exit(&mut gic, 0);
    assert!(!gic.has_pending(0));
}

#[test]
fn several_sgis_and_sources_all_arrive_once() {
    let mut gic = sgis_enabled(8);
    for sender in 0..8 {
        write(&mut gic, sender, gicd::SGIR, W, sgir(0b01, 0, 1));
        write(&mut gic, sender, gicd::SGIR, W, sgir(0, 0b1000_0000, 2));
    }
    let mut handled = run_until_idle(&mut gic, 7, 4);
    handled.sort_unstable();
    let mut expected: Vec<u32> = (0..7).map(|source| iar(1, source)).collect();
    expected.extend((0..8).map(|source| iar(2, source)));
    expected.sort_unstable();
    assert_eq!(handled, expected);
}

#[test]
fn set_and_clear_pending_per_source() {
    let mut gic = sgis_enabled(4);
    // GICD_SPENDSGIRn: byte n is SGI n, bit s is source s. Word write to SPENDSGIR1
    // (SGIs 4-7): SGI 4 from 0 and 3, SGI 7 from 2; bits of CPUs 4-7 ignored.
    write(&mut gic, 2, gicd::SPENDSGIR + 4, W, 0x04_00_00_F9);
    assert_eq!(read(&mut gic, 2, gicd::SPENDSGIR + 4, W), 0x04_00_00_09);
    assert_eq!(
        read(&mut gic, 2, gicd::CPENDSGIR + 4, W),
        0x04_00_00_09,
        "same view"
    );
    assert_eq!(pending_sgis(&mut gic, 2), (1 << 4) | (1 << 7));
    assert_eq!(read(&mut gic, 1, gicd::SPENDSGIR + 4, W), 0, "banked");
    // GICD_CPENDSGIRn, byte access: SGI 4 from 0 cleared.
    write(&mut gic, 2, gicd::CPENDSGIR + 4, B, 0x01);
    assert_eq!(sources(&mut gic, 2, 4), 0x08);
    assert_eq!(run_until_idle(&mut gic, 2, 4), [iar(4, 3), iar(7, 2)]);
    // Clearing every source clears the SGI.
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b100, 9));
    write(&mut gic, 2, gicd::CPENDSGIR + 8, W, 0xFFFF_FFFF);
    assert_eq!(pending_sgis(&mut gic, 2), 0);
    assert!(!gic.has_pending(2));
}

#[test]
fn sgi_bits_of_ispendr0_and_icpendr0_are_read_only() {
    let mut gic = sgis_enabled(2);
    write(&mut gic, 0, gicd::ISPENDR, W, 0xFFFF_FFFF);
    assert_eq!(pending_sgis(&mut gic, 0), 0, "SGIs: use GICD_SPENDSGIRn");
    assert_eq!(
        read(&mut gic, 0, gicd::ISPENDR, W),
        0xFFFF_0000,
        "PPIs settable"
    );
    write(&mut gic, 1, gicd::SGIR, W, sgir(0, 0b1, 2));
    write(&mut gic, 0, gicd::ICPENDR, W, 0xFFFF_FFFF);
    assert_eq!(
        read(&mut gic, 0, gicd::ISPENDR, W),
        1 << 2,
        "SGI kept, PPIs cleared"
    );
    assert_eq!(run_until_idle(&mut gic, 0, 4), [iar(2, 1)]);
}

#[test]
fn sgis_are_sent_whatever_their_group_and_wait_while_disabled() {
    let mut gic = sgis_enabled(2);
    // Group 1 on vCPU 1 (no Security Extensions: NSATT does not matter).
    write(&mut gic, 1, gicd::IGROUPR, W, 0xFFFF);
    write(&mut gic, 0, gicd::SGIR, W, sgir(0, 0b10, 8) | (1 << 15));
    write(&mut gic, 0, gicd::SGIR, W, sgir(0, 0b10, 8));
    assert_eq!(sources(&mut gic, 1, 8), 0b01);
    let cpu = Gicv::enter(&mut gic, 1, 4);
    assert_ne!(cpu.lrs[0] & lr::GRP1, 0, "listed as Group 1");
    cpu.exit(&mut gic, 1);
    // Disabled: pending but not delivered until enabled.
    write(&mut gic, 1, gicd::ICENABLER, W, 1 << 11);
    write(&mut gic, 0, gicd::SGIR, W, sgir(0, 0b10, 11));
    assert_eq!(sources(&mut gic, 1, 11), 0b01);
    let handled = run_until_idle(&mut gic, 1, 4);
    assert_eq!(handled, [iar(8, 0)]);
    write(&mut gic, 1, gicd::ISENABLER, W, 1 << 11);
    assert_eq!(run_until_idle(&mut gic, 1, 4), [iar(11, 0)]);
}

#[test]
fn an_sgi_from_the_hypervisor_comes_from_its_target() {
    let mut gic = sgis_enabled(3);
    gic.trigger_edge(0, Some(2)).unwrap();
    assert_eq!(sources(&mut gic, 2, 0), 1 << 2);
    assert_eq!(run_until_idle(&mut gic, 2, 4), [iar(0, 2)]);
}

#[test]
fn sgir_is_a_word_register() {
    let mut gic = sgis_enabled(2);
    for width in [B, H, D] {
        write(&mut gic, 0, gicd::SGIR, width, sgir(0, 0b11, 1));
    }
    assert_eq!(gic.stats().ignored_accesses, 3);
    assert!(kicks(&mut gic).is_empty());
    assert_eq!(read(&mut gic, 0, gicd::SGIR, W), 0, "write-only");
}
