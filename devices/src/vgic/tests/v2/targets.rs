//! SPI targets (`GICD_ITARGETSR`) and what the GICv2 has instead of
//! `ICC_SGI1R_EL1`.

use super::*;
use crate::vgic::VgicError;

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
fn an_sgi_coming_back_with_another_cpuid_is_not_the_one_listed() {
    let mut gic = vgic(2);
    enable_spi(&mut gic, 40, 0, 0x80);
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
    assert_eq!(gic.stats().lr_mismatches, 1);
    assert!(gic.has_pending(0), "SGI 3 from vCPU 1 is still pending");
}

#[test]
fn there_is_no_icc_sgi1r_el1() {
    let mut gic = vgic(2);
    assert_eq!(
        gic.send_sgi_from_register(0, 1 << 24),
        Err(VgicError::Unsupported),
        "no ICC_SGI1R_EL1 on a GICv2"
    );
}
