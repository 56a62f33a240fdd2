//! Register-level behaviour of the GICv2 distributor: identification, fields,
//! banking by the accessing vCPU, widths, unimplemented INTIDs, unknown offsets, and
//! a hostile sweep of the whole window.

use super::*;
use crate::vgic::{GicFrame, VgicError};
use std::string::ToString;

fn with(vcpus: usize, spis: u32) -> VgicV2 {
    VgicV2::new(VgicV2Config { vcpus, spis }).unwrap()
}

#[test]
fn gicd_typer_reports_lines_and_cpus() {
    // ITLinesNumber [4:0]: up to 32 * (N + 1) INTIDs; CPUNumber [7:5]: CPU
    // interfaces - 1; SecurityExtn [10] = 0; LSPI [15:11] = 0.
    for (vcpus, spis, expected) in [
        (1, 0, 0x00),
        (1, 64, 0x02),
        (2, 64, (1 << 5) | 0x02),
        (8, 64, (7 << 5) | 0x02),
        (4, 1, (3 << 5) | 0x01),
        (4, 224, (3 << 5) | 0x07),
        (4, 988, (3 << 5) | 0x1F),
    ] {
        let mut gic = with(vcpus, spis);
        assert_eq!(
            read(&mut gic, 0, gicd::TYPER, W),
            expected,
            "{vcpus} {spis}"
        );
    }
}

#[test]
fn identification_is_a_gic400() {
    let mut gic = vgic(2);
    // GICD_IIDR of the GIC-400: ProductID 0x02, Revision 1, Implementer 0x43B (Arm).
    assert_eq!(read(&mut gic, 1, gicd::IIDR, W), 0x0200_143B);
    // ICPIDR2.ArchRev [7:4] = 2.
    assert_eq!(read(&mut gic, 0, gicd::ICPIDR2, W), 0x2B);
    let pidr: Vec<u64> = (0..4)
        .map(|i| read(&mut gic, 0, 0xFE0 + 4 * i, W))
        .collect();
    assert_eq!(pidr, [0x90, 0xB4, 0x2B, 0x00]);
    assert_eq!(read(&mut gic, 0, 0xFD0, W), 0x04);
    let cidr: Vec<u64> = (0..4)
        .map(|i| read(&mut gic, 0, 0xFF0 + 4 * i, W))
        .collect();
    assert_eq!(cidr, [0x0D, 0xF0, 0x05, 0xB1]);
    write(&mut gic, 0, gicd::TYPER, W, 0);
    write(&mut gic, 0, gicd::IIDR, W, 0);
    write(&mut gic, 0, gicd::ICPIDR2, W, 0);
    assert_eq!(read(&mut gic, 0, gicd::ICPIDR2, W), 0x2B);
    assert_eq!(read(&mut gic, 0, gicd::TYPER, W), (1 << 5) | 2);
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn gicd_ctlr_keeps_the_two_group_enables() {
    let mut gic = vgic(2);
    assert_eq!(read(&mut gic, 0, gicd::CTLR, W), 0);
    write(&mut gic, 1, gicd::CTLR, W, 0xFFFF_FFFF);
    assert_eq!(
        read(&mut gic, 0, gicd::CTLR, W),
        gicd::CTLR_ENABLE_GRP0 | gicd::CTLR_ENABLE_GRP1,
        "not banked; other bits reserved"
    );
    write(&mut gic, 0, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP1);
    assert_eq!(read(&mut gic, 1, gicd::CTLR, W), gicd::CTLR_ENABLE_GRP1);
}

#[test]
fn registers_of_intids_0_to_31_are_banked_per_vcpu() {
    let mut gic = vgic(3);
    let words = [
        gicd::IGROUPR,
        gicd::ISENABLER,
        gicd::ISACTIVER,
        gicd::IPRIORITYR,
        gicd::IPRIORITYR + 28,
        gicd::ICFGR + 4,
    ];
    for (vcpu, &offset) in words.iter().enumerate().map(|(i, o)| (i % 3, o)) {
        write(&mut gic, vcpu, offset, W, 0xFFFF_0000);
        let others = (0..3).filter(|&other| other != vcpu);
        for other in others {
            assert_eq!(
                read(&mut gic, other, offset, W),
                0,
                "{offset:#x} vCPU {other}"
            );
        }
        assert_ne!(
            read(&mut gic, vcpu, offset, W),
            0,
            "{offset:#x} vCPU {vcpu}"
        );
    }
    // The SPI registers are shared.
    write(&mut gic, 2, gicd::ISENABLER + 4, W, 0x5);
    assert_eq!(read(&mut gic, 0, gicd::ISENABLER + 4, W), 0x5);
    assert_eq!(read(&mut gic, 1, gicd::ICENABLER + 4, W), 0x5);
}

#[test]
fn itargetsr0_to_7_read_as_the_reading_vcpu() {
    let mut gic = vgic(8);
    for vcpu in 0..8 {
        let bit = 1u64 << vcpu;
        for word in 0..8 {
            assert_eq!(
                read(&mut gic, vcpu, gicd::ITARGETSR + 4 * word, W),
                bit * 0x0101_0101,
                "vCPU {vcpu}"
            );
        }
        assert_eq!(read(&mut gic, vcpu, gicd::ITARGETSR + 27, B), bit);
        // Read-only.
        write(&mut gic, vcpu, gicd::ITARGETSR + 27, B, 0xFF);
        assert_eq!(read(&mut gic, vcpu, gicd::ITARGETSR + 27, B), bit);
    }
    // An accessor that is not a vCPU sees nothing.
    assert_eq!(read(&mut gic, 8, gicd::ITARGETSR, W), 0);
    assert_eq!(read(&mut gic, usize::MAX, gicd::ITARGETSR, W), 0);
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn spi_targets_by_byte_and_word() {
    let mut gic = vgic(4);
    // ITARGETSR8 covers INTIDs 32-35; bits of CPUs 4-7 read as zero.
    write(&mut gic, 0, gicd::ITARGETSR + 32, W, 0xFF08_0402);
    assert_eq!(read(&mut gic, 1, gicd::ITARGETSR + 32, W), 0x0F08_0402);
    write(&mut gic, 0, gicd::ITARGETSR + 34, B, 0x01);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 32, W), 0x0F01_0402);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 35, B), 0x0F);
    // Past the last SPI (95): RAZ/WI.
    write(&mut gic, 0, gicd::ITARGETSR + 96, W, 0x0101_0101);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 96, W), 0);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 0x3FC, W), 0);
    // Half-word and misaligned accesses are not allowed.
    let before = gic.stats().ignored_accesses;
    write(&mut gic, 0, gicd::ITARGETSR + 32, H, 0x0101);
    write(&mut gic, 0, gicd::ITARGETSR + 33, W, 0x0101_0101);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 34, H), 0);
    assert_eq!(gic.stats().ignored_accesses - before, 3);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + 32, W), 0x0F01_0402);
}

#[test]
fn a_uniprocessor_gic_has_no_targets() {
    // IHI 0048B.b: in a uniprocessor implementation all GICD_ITARGETSRn are RAZ/WI.
    let mut gic = vgic(1);
    for offset in [gicd::ITARGETSR, gicd::ITARGETSR + 28, gicd::ITARGETSR + 32] {
        write(&mut gic, 0, offset, W, 0xFFFF_FFFF);
        assert_eq!(read(&mut gic, 0, offset, W), 0, "{offset:#x}");
    }
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn nsacr_is_raz_wi_and_the_implementation_defined_block_is_unknown() {
    let mut gic = vgic(1);
    for offset in [gicd::NSACR, gicd::NSACR + 8, gicd::NSACR + 0xFC] {
        write(&mut gic, 0, offset, W, 0xFFFF_FFFF);
        assert_eq!(read(&mut gic, 0, offset, W), 0, "{offset:#x}");
    }
    assert_eq!(gic.stats().ignored_accesses, 0);
    for offset in [gicd::IMPDEF, gicd::IMPDEF + 4, gicd::IMPDEF + 0xFC] {
        assert_eq!(read(&mut gic, 0, offset, W), 0, "{offset:#x}");
    }
    assert_eq!(gic.stats().ignored_accesses, 3);
}

#[test]
fn unknown_offsets_are_counted_with_where_they_were() {
    let mut gic = vgic(2);
    // GICD + 0x40 (a GICv3's GICD_SETSPI_NSR: no MBIs).
    assert_unknown_distributor_offset_counted(&mut gic);
    // Past the 4 KiB distributor (a device tree may give it 64 KiB).
    assert_eq!(read(&mut gic, 0, 0x1000, W), 0);
    assert_eq!(gic.stats().last_ignored.unwrap().frame, GicFrame::Unmapped);
    assert_eq!(
        gic.stats().last_ignored.unwrap().to_string(),
        "32-bit read at the GIC window outside its frames + 0x1000 ignored"
    );
    write(&mut gic, 0, 0xFFF8, D, 1);
    write(&mut gic, 0, u64::MAX - 7, D, 1);
    assert_eq!(read(&mut gic, 0, u64::MAX, B), 0);
    assert_eq!(gic.stats().ignored_accesses, 5);
}

#[test]
fn accesses_are_made_as_the_vcpu_named() {
    let mut gic = vgic(3);
    assert_eq!(gic.window_size(), 0x1000);
    assert_eq!(Vgic::window_size(&gic), 0x1000);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR, B), 0b001);
    assert_eq!(read(&mut gic, 2, gicd::ITARGETSR, B), 0b100);
    write(&mut gic, 2, gicd::ISENABLER, W, 1 << 27);
    assert_eq!(read(&mut gic, 2, gicd::ISENABLER, W), 1 << 27);
    assert_eq!(read(&mut gic, 0, gicd::ISENABLER, W), 0);
    write(&mut gic, 2, gicd::SGIR, W, sgir(0, 0b1, 7));
    assert_eq!(kicks(&mut gic), [0]);
    assert_eq!(
        read(&mut gic, 0, gicd::SPENDSGIR + 7, B),
        0b100,
        "from vCPU 2"
    );
    // An accessor that is not a vCPU: banked registers RAZ/WI, shared ones work.
    write(&mut gic, 5, gicd::ISENABLER, W, 0xFFFF_FFFF);
    assert_eq!(read(&mut gic, 5, gicd::ISENABLER, W), 0);
    write(&mut gic, 5, gicd::ISENABLER + 4, W, 1);
    assert_eq!(read(&mut gic, 0, gicd::ISENABLER + 4, W), 1);
}

#[test]
fn a_sweep_of_every_offset_and_width_never_panics() {
    let mut gic = vgic(3);
    let size = 2 * gic.window_size();
    let accessors = [0, 1, 2, 3, usize::MAX];
    for &vcpu in &accessors {
        for width in [B, H, W, D] {
            let step = width.bytes();
            let mut offset = 0;
            while offset + step <= size {
                let value = read(&mut gic, vcpu, offset, width);
                assert_eq!(value & !width.mask(), 0, "{offset:#x} {width:?}");
                offset += step;
            }
        }
    }
    for (pass, pattern) in [u64::MAX, 0x5555_5555_5555_5555, 0].into_iter().enumerate() {
        for &vcpu in &accessors {
            for width in [B, H, W, D] {
                let step = width.bytes();
                let mut offset = 0;
                while offset + step <= size {
                    let value = pattern.rotate_left(offset as u32 + pass as u32);
                    write(&mut gic, vcpu, offset, width, value);
                    offset += step;
                }
                // The model keeps working in between.
                for target in 0..3 {
                    let mut cpu = Gicv::enter(&mut gic, target, 4);
                    cpu.handle_all();
                    cpu.exit(&mut gic, target);
                }
                let _ = gic.take_kicks();
            }
        }
    }
    // Misaligned accesses around every register block boundary.
    for offset in (0..0x1000).step_by(0x7F) {
        for width in [H, W, D] {
            write(&mut gic, 1, offset, width, u64::MAX);
            let _ = read(&mut gic, 1, offset, width);
        }
    }
    // Whatever the guest did, a save restores into a fresh vGIC.
    let state = gic.save();
    let mut copy = vgic(3);
    copy.restore(&state).unwrap();
    assert_eq!(copy.save(), state);
}

#[test]
fn configurations_are_checked() {
    for (vcpus, spis, reason) in [
        (0, 64, "it needs at least one vCPU"),
        (9, 64, "a GICv2 serves at most 8 vCPUs"),
        (usize::MAX, 64, "a GICv2 serves at most 8 vCPUs"),
        (1, 989, "a GICv2 has at most 988 SPIs"),
        (1, u32::MAX, "a GICv2 has at most 988 SPIs"),
    ] {
        let config = VgicV2Config { vcpus, spis };
        assert_eq!(
            VgicV2::new(config).unwrap_err(),
            VgicError::BadConfig { reason },
            "{config:?}"
        );
    }
    let big = VgicV2::new(VgicV2Config {
        vcpus: 8,
        spis: 988,
    })
    .unwrap();
    assert_eq!(big.intid_limit(), 1020);
    assert_eq!(VgicV2Config::new(3), VgicV2Config { vcpus: 3, spis: 64 });
    assert_eq!(VgicV2::new(VgicV2Config::new(2)).unwrap().config().spis, 64);
}

#[test]
fn the_largest_gic_works_at_its_edges() {
    let mut gic = with(8, 988);
    // INTID 1019 is the last one.
    write(&mut gic, 0, gicd::CTLR, W, gicd::CTLR_ENABLE_GRP0);
    write(&mut gic, 0, gicd::ITARGETSR + 1019, B, 0x80);
    write(&mut gic, 0, gicd::ISENABLER + 4 * 31, W, 1 << 27);
    assert_eq!(gic.map_hardware(1019, 0, 1019), Ok(()));
    // The physical interrupt fired (a hardware-backed line is not set directly).
    gic.trigger_edge(1019, None).unwrap();
    let plan = gic.flush(7, 4);
    assert_eq!(lr::intid(plan.value(0)), 1019);
    assert_eq!((plan.value(0) >> lr::PHYSICAL_SHIFT) & 0x3FF, 1019);
    assert_eq!(
        gic.set_level(1020, None, true),
        Err(VgicError::NoSuchInterrupt {
            intid: 1020,
            limit: 1020
        })
    );
}

#[test]
fn sgi_source_and_identification_widths_are_checked_too() {
    let mut gic = vgic(1);
    assert_ignored(
        &mut gic,
        &[
            (gicd::SPENDSGIR, H),
            (gicd::CPENDSGIR + 2, W),
            (gicd::ICPIDR2, B),
        ],
    );
    assert_eq!(read(&mut gic, 0, gicd::CTLR, W), 0);
}
