//! The hypervisor's inputs are checked: INTIDs, vCPUs, physical INTIDs, list
//! register counts and values.

use super::*;
use crate::vgic::VgicError;

scenarios!(inputs_are_checked, absurd_list_registers_are_harmless);

fn inputs_are_checked<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
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
        gic.trigger_edge(3, None),
        Err(VgicError::MissingVcpu { intid: 3 })
    );
    assert_eq!(
        gic.trigger_edge(3, Some(2)),
        Err(VgicError::NoSuchVcpu { vcpu: 2, vcpus: 2 })
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
    gic.sync_with_eoi_count(usize::MAX, &[], u32::MAX);
    assert!(!gic.has_pending(7));
    assert_eq!(gic.highest_pending_priority(7), None);
    assert_eq!(gic.vcpus(), 2);
}

fn absurd_list_registers_are_harmless<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.enable_spi(40, 0, 0x80);
    gic.trigger_edge(40, None).unwrap();
    assert_eq!(gic.flush(0, 0).len(), 0);
    gic.sync(0, &[]);
    assert_eq!(gic.flush(0, usize::MAX).len(), 1);
    gic.sync(0, &[u64::MAX; 100]);
    assert_eq!(gic.stats().lr_mismatches, 1);
    gic.sync_with_eoi_count(0, &[], u32::MAX);
    assert_eq!(gic.run_until_idle(0, 4), [40]);
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
