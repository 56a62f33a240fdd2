//! SGIs from trapped `ICC_SGI1R_EL1` writes.
//!
//! `ICC_SGI1R_EL1` (Arm ARM DDI 0487): TargetList \[15:0\], Aff1 \[23:16\], INTID
//! \[27:24\], Aff2 \[39:32\], IRM \[40\], RS \[47:44\], Aff3 \[55:48\].

use super::*;
use crate::vgic::{SgiRequest, Vgic, VgicError};

/// An `ICC_SGI1R_EL1` value naming Aff3.Aff2.Aff1 and a target list.
fn sgi1r(intid: u64, aff3: u64, aff2: u64, aff1: u64, target_list: u64) -> u64 {
    (aff3 << 48) | (aff2 << 32) | (intid << 24) | (aff1 << 16) | target_list
}

/// IRM = 1: every PE but the sender.
fn broadcast(intid: u64) -> u64 {
    (1 << 40) | (intid << 24)
}

/// Boots the SGIs of every vCPU the way Linux does: Group 1, enabled, priority 0xA0.
fn sgis_enabled(vcpus: usize) -> VgicV3 {
    let mut gic = vgic(vcpus);
    write(&mut gic, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP1);
    for vcpu in 0..vcpus {
        write(&mut gic, rdist(vcpu, gicr::IGROUPR0), W, 0xFFFF_FFFF);
        write(&mut gic, rdist(vcpu, gicr::ISENABLER0), W, 0xFFFF);
        for i in (0..16).step_by(4) {
            write(&mut gic, rdist(vcpu, gicr::IPRIORITYR0 + i), W, 0xA0A0_A0A0);
        }
    }
    gic
}

fn pending_sgis(gic: &mut VgicV3, vcpu: usize) -> u64 {
    read(gic, rdist(vcpu, gicr::ISPENDR0), W) & 0xFFFF
}

#[test]
fn decode_matches_the_field_positions() {
    let request = SgiRequest::decode(sgi1r(7, 0x12, 0x34, 0x56, 0xBEEF) | (0x9 << 44));
    assert_eq!(request.intid, 7);
    assert_eq!(request.aff3, 0x12);
    assert_eq!(request.aff2, 0x34);
    assert_eq!(request.aff1, 0x56);
    assert_eq!(request.target_list, 0xBEEF);
    assert_eq!(request.range_selector, 9);
    assert!(!request.all_but_self);
}

#[test]
fn target_list_in_cluster_zero() {
    let mut gic = sgis_enabled(4);
    let targets = gic
        .send_sgi_from_register(1, sgi1r(3, 0, 0, 0, 0b1101))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [0, 2, 3]);
    assert!(targets.contains(0) && !targets.contains(1));
    for vcpu in [0, 2, 3] {
        assert_eq!(pending_sgis(&mut gic, vcpu), 1 << 3, "vCPU {vcpu}");
    }
    assert_eq!(pending_sgis(&mut gic, 1), 0);
    let mut cpu = CpuInterface::enter(&mut gic, 2, 4);
    assert_eq!(cpu.lrs[0], lr::PENDING | lr::GROUP1 | (0xA0 << 48) | 3);
    assert_eq!(cpu.handle_all(), [3]);
    cpu.exit(&mut gic, 2);
    assert_eq!(pending_sgis(&mut gic, 2), 0);
}

#[test]
fn a_vcpu_can_send_to_itself() {
    let mut gic = sgis_enabled(2);
    let targets = gic
        .send_sgi_from_register(1, sgi1r(0, 0, 0, 0, 0b10))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [1]);
    assert_eq!(run_until_idle(&mut gic, 1, 4), [0]);
}

#[test]
fn broadcast_reaches_everyone_but_the_sender() {
    let mut gic = sgis_enabled(5);
    let targets = gic.send_sgi_from_register(2, broadcast(6)).unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [0, 1, 3, 4]);
    for vcpu in 0..5 {
        let expected = if vcpu == 2 { 0 } else { 1 << 6 };
        assert_eq!(pending_sgis(&mut gic, vcpu), expected, "vCPU {vcpu}");
    }
    // IRM ignores the affinity fields.
    let mut gic = sgis_enabled(3);
    let targets = gic
        .send_sgi_from_register(0, broadcast(1) | sgi1r(0, 0xFF, 0xFF, 0xFF, 0))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn aff1_addresses_vcpus_from_16_on() {
    let mut gic = sgis_enabled(40);
    // vCPU 17 has Aff1 = 1, Aff0 = 1; vCPU 35 has Aff1 = 2, Aff0 = 3.
    let targets = gic
        .send_sgi_from_register(0, sgi1r(9, 0, 0, 1, 1 << 1))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [17]);
    assert_eq!(pending_sgis(&mut gic, 17), 1 << 9);
    assert_eq!(pending_sgis(&mut gic, 1), 0, "not Aff1 0");
    let targets = gic
        .send_sgi_from_register(39, sgi1r(2, 0, 0, 2, (1 << 3) | (1 << 7)))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [35, 39]);
    assert_eq!(run_until_idle(&mut gic, 35, 4), [2]);
}

#[test]
fn targets_outside_the_vm_are_ignored() {
    let mut gic = sgis_enabled(18);
    let nothing: Vec<usize> = Vec::new();
    for value in [
        // Aff0 18..31 in cluster 1: only 16 and 17 exist.
        sgi1r(1, 0, 0, 1, 0xFFFC),
        // Clusters 2 and 255.
        sgi1r(1, 0, 0, 2, 0xFFFF),
        sgi1r(1, 0, 0, 0xFF, 0xFFFF),
        // Non-zero Aff2 / Aff3.
        sgi1r(1, 0, 1, 0, 0xFFFF),
        sgi1r(1, 1, 0, 0, 0xFFFF),
        // RS = 1: Aff0 16..31, which no vCPU has.
        sgi1r(1, 0, 0, 0, 0xFFFF) | (1 << 44),
        sgi1r(1, 0, 0, 0, 0xFFFF) | (0xF << 44),
        // An empty target list.
        sgi1r(1, 0, 0, 0, 0),
    ] {
        let targets = gic.send_sgi_from_register(0, value).unwrap();
        assert_eq!(targets.iter().collect::<Vec<_>>(), nothing, "{value:#x}");
        assert!(targets.is_empty());
    }
    for vcpu in 0..18 {
        assert_eq!(pending_sgis(&mut gic, vcpu), 0);
    }
    // Partly inside: only the existing ones.
    let targets = gic
        .send_sgi_from_register(0, sgi1r(1, 0, 0, 1, 0xFFFF))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [16, 17]);
    // Every value at all: no panic.
    for bit in 0..64 {
        let _ = gic.send_sgi_from_register(5, 1 << bit).unwrap();
        let _ = gic.send_sgi_from_register(5, !(1 << bit)).unwrap();
    }
    assert_eq!(
        gic.send_sgi_from_register(18, sgi1r(1, 0, 0, 0, 1)),
        Err(VgicError::NoSuchVcpu {
            vcpu: 18,
            vcpus: 18
        })
    );
}

#[test]
fn group0_sgis_are_not_generated_by_sgi1r() {
    let mut gic = sgis_enabled(3);
    // vCPU 1 puts SGI 4 in Group 0.
    write(&mut gic, rdist(1, gicr::IGROUPR0), W, !(1 << 4));
    let targets = gic
        .send_sgi_from_register(0, sgi1r(4, 0, 0, 0, 0b110))
        .unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [2]);
    assert_eq!(pending_sgis(&mut gic, 1), 0);
    let targets = gic.send_sgi_from_register(0, broadcast(4)).unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [2]);
}

#[test]
fn sgis_from_several_senders_coalesce_and_arrive_once() {
    let mut gic = sgis_enabled(3);
    gic.send_sgi_from_register(1, sgi1r(2, 0, 0, 0, 1)).unwrap();
    gic.send_sgi_from_register(2, sgi1r(2, 0, 0, 0, 1)).unwrap();
    gic.send_sgi_from_register(0, sgi1r(2, 0, 0, 0, 1)).unwrap();
    assert_eq!(run_until_idle(&mut gic, 0, 4), [2]);
    // A disabled SGI stays pending until enabled.
    write(&mut gic, rdist(0, gicr::ICENABLER0), W, 1 << 5);
    gic.send_sgi_from_register(1, sgi1r(5, 0, 0, 0, 1)).unwrap();
    assert!(!gic.has_pending(0));
    write(&mut gic, rdist(0, gicr::ISENABLER0), W, 1 << 5);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [5]);
}
