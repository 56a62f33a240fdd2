//! Register-level behaviour of the distributor and redistributors: identification,
//! fields, widths, unimplemented INTIDs and unknown offsets.

use super::*;
use crate::vgic::{GicFrame, VgicError};

fn with_spis(vcpus: usize, spis: u32) -> VgicV3 {
    VgicV3::new(VgicV3Config {
        vcpus,
        spis,
        redistributor_offset: REDISTRIBUTORS,
    })
    .unwrap()
}

#[test]
fn gicd_typer_reports_the_lines_and_id_bits() {
    // ITLinesNumber [4:0] = SPIs / 32 (maximum INTID 32 * (N + 1) - 1); IDbits
    // [23:19] = 9 (10 bits); CPUNumber [7:5] = 0 (affinity routing only);
    // SecurityExtn [10], MBIS [16], LPIS [17], A3V [24], No1N [25], RSS [26] = 0.
    for (spis, lines) in [(0, 0), (32, 1), (64, 2), (960, 30)] {
        let mut gic = with_spis(2, spis);
        assert_eq!(
            read(&mut gic, gicd::TYPER, W),
            (9 << 19) | lines,
            "{spis} SPIs"
        );
    }
}

#[test]
fn gicd_identification() {
    let mut gic = vgic(1);
    // GICD_IIDR: ProductID [31:24], Implementer [11:0].
    assert_eq!(read(&mut gic, gicd::IIDR, W), 0x4100_0000);
    assert_eq!(read(&mut gic, gicd::TYPER2, W), 0);
    assert_eq!(read(&mut gic, gicd::STATUSR, W), 0);
    // GICD_PIDR2.ArchRev [7:4] = 3.
    assert_eq!(read(&mut gic, gicd::PIDR2, W), 0x3B);
    // CIDR0-3: 0x0D, 0xF0, 0x05, 0xB1.
    let cidr: Vec<u64> = (0..4).map(|i| read(&mut gic, 0xFFF0 + 4 * i, W)).collect();
    assert_eq!(cidr, [0x0D, 0xF0, 0x05, 0xB1]);
    // Read-only: writes ignored.
    write(&mut gic, gicd::TYPER, W, 0);
    write(&mut gic, gicd::PIDR2, W, 0);
    assert_eq!(read(&mut gic, gicd::PIDR2, W), 0x3B);
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn gicd_ctlr_keeps_the_group_enables_and_are_ds_read_as_one() {
    let mut gic = vgic(1);
    assert_eq!(
        read(&mut gic, gicd::CTLR, W),
        gicd::CTLR_ARE | gicd::CTLR_DS
    );
    write(&mut gic, gicd::CTLR, W, 0xFFFF_FFFF);
    assert_eq!(
        read(&mut gic, gicd::CTLR, W),
        gicd::CTLR_ARE | gicd::CTLR_DS | gicd::CTLR_ENABLE_GRP0 | gicd::CTLR_ENABLE_GRP1
    );
    write(&mut gic, gicd::CTLR, W, 0);
    assert_eq!(
        read(&mut gic, gicd::CTLR, W),
        gicd::CTLR_ARE | gicd::CTLR_DS
    );
}

#[test]
fn gicr_typer_and_identification() {
    let mut gic = vgic(20);
    for vcpu in [0usize, 1, 15, 16, 17, 19] {
        let typer = read(&mut gic, rdist(vcpu, gicr::TYPER), D);
        // Affinity_Value [63:32] = Aff3.Aff2.Aff1.Aff0; Processor_Number [23:8];
        // Last [4].
        let last = if vcpu == 19 { gicr::TYPER_LAST } else { 0 };
        let expected = (vcpu_mpidr(vcpu) << 32) | ((vcpu as u64) << 8) | last;
        assert_eq!(typer, expected, "vCPU {vcpu}");
        assert_eq!(
            read(&mut gic, rdist(vcpu, gicr::TYPER), W),
            expected & 0xFFFF_FFFF
        );
        assert_eq!(
            read(&mut gic, rdist(vcpu, gicr::TYPER + 4), W),
            expected >> 32
        );
        assert_eq!(read(&mut gic, rdist(vcpu, gicr::PIDR2), W) & 0xF0, 0x30);
        assert_eq!(read(&mut gic, rdist(vcpu, gicr::IIDR), W), 0x4100_0000);
    }
    assert_eq!(read(&mut gic, rdist(17, gicr::TYPER), D) >> 32, 0x101);
    write(&mut gic, rdist(3, gicr::TYPER), D, 0);
    assert_eq!(read(&mut gic, rdist(3, gicr::TYPER), D) >> 32, 3);
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn gicr_waker_handshake() {
    let mut gic = vgic(2);
    let asleep = gicr::WAKER_PROCESSOR_SLEEP | gicr::WAKER_CHILDREN_ASLEEP;
    assert_eq!(
        read(&mut gic, rdist(1, gicr::WAKER), W),
        asleep,
        "asleep at reset"
    );
    write(&mut gic, rdist(1, gicr::WAKER), W, 0);
    assert_eq!(read(&mut gic, rdist(1, gicr::WAKER), W), 0);
    assert_eq!(read(&mut gic, rdist(0, gicr::WAKER), W), asleep, "per vCPU");
    // ChildrenAsleep is read-only; it follows ProcessorSleep.
    write(
        &mut gic,
        rdist(1, gicr::WAKER),
        W,
        gicr::WAKER_CHILDREN_ASLEEP,
    );
    assert_eq!(read(&mut gic, rdist(1, gicr::WAKER), W), 0);
    write(
        &mut gic,
        rdist(1, gicr::WAKER),
        W,
        gicr::WAKER_PROCESSOR_SLEEP,
    );
    assert_eq!(read(&mut gic, rdist(1, gicr::WAKER), W), asleep);
}

#[test]
fn gicr_lpi_registers_read_as_zero() {
    let mut gic = vgic(1);
    for offset in [gicr::CTLR, gicr::PROPBASER, gicr::PENDBASER] {
        write(&mut gic, rdist(0, offset), W, 0xFFFF_FFFF);
        assert_eq!(read(&mut gic, rdist(0, offset), W), 0, "{offset:#x}");
    }
    for offset in [gicr::PROPBASER, gicr::PENDBASER] {
        write(&mut gic, rdist(0, offset), D, u64::MAX);
        assert_eq!(read(&mut gic, rdist(0, offset), D), 0);
        assert_eq!(read(&mut gic, rdist(0, offset + 4), W), 0);
    }
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn irouter_whole_and_in_halves() {
    let mut gic = vgic(1);
    let irouter = |intid: u64| gicd::IROUTER + 8 * intid;
    // Aff3 [39:32], Interrupt_Routing_Mode [31], Aff2 [23:16], Aff1 [15:8],
    // Aff0 [7:0]; the rest RES0.
    write(&mut gic, irouter(40), D, u64::MAX);
    assert_eq!(read(&mut gic, irouter(40), D), 0xFF_80FF_FFFF);
    write(&mut gic, irouter(40), W, 0x0000_0102);
    assert_eq!(read(&mut gic, irouter(40), D), 0xFF_0000_0102);
    write(&mut gic, irouter(40) + 4, W, 0);
    assert_eq!(read(&mut gic, irouter(40), D), 0x0102);
    assert_eq!(read(&mut gic, irouter(40), W), 0x0102);
    assert_eq!(read(&mut gic, irouter(40) + 4, W), 0);
    // IROUTER0-31 are reserved, and INTIDs past the SPIs are unimplemented.
    for intid in [0, 31, 96, 1019, 1023] {
        write(&mut gic, irouter(intid), D, 0x0102);
        assert_eq!(read(&mut gic, irouter(intid), D), 0, "IROUTER{intid}");
    }
    assert_eq!(gic.stats().ignored_accesses, 0);
    // Byte and halfword accesses, and misaligned ones, are not IROUTER accesses.
    for (offset, width) in [
        (irouter(40), B),
        (irouter(40), H),
        (irouter(40) + 2, W),
        (irouter(40) + 4, D),
    ] {
        assert_eq!(read(&mut gic, offset, width), 0);
        write(&mut gic, offset, width, 0xFF);
    }
    assert_eq!(read(&mut gic, irouter(40), D), 0x0102);
    assert_eq!(gic.stats().ignored_accesses, 8);
}

#[test]
fn banked_registers_read_as_zero_in_the_distributor() {
    let mut gic = vgic(1);
    // With affinity routing, GICD_*R0 (INTIDs 0-31) and the GICv2-style registers
    // are RAZ/WI; the redistributor holds the real ones.
    for offset in [
        gicd::IGROUPR,
        gicd::ISENABLER,
        gicd::ISPENDR,
        gicd::ISACTIVER,
        gicd::IPRIORITYR,
        gicd::IPRIORITYR + 28,
        gicd::ICFGR + 4,
        gicd::ITARGETSR,
        gicd::ITARGETSR + 32,
        gicd::SGIR,
        0xF10,
        0xF20,
    ] {
        write(&mut gic, offset, W, 0xFFFF_FFFF);
        assert_eq!(read(&mut gic, offset, W), 0, "{offset:#x}");
    }
    assert_eq!(read(&mut gic, rdist(0, gicr::ISENABLER0), W), 0);
    assert_eq!(read(&mut gic, rdist(0, gicr::ISPENDR0), W), 0);
    assert_eq!(
        read(&mut gic, rdist(0, gicr::IGROUPR0), W),
        0xFFFF_FFFF,
        "reset"
    );
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn group_modifier_and_nsacr_are_raz_wi_with_one_security_state() {
    let mut gic = vgic(1);
    for offset in [
        gicd::IGRPMODR + 4,
        gicd::NSACR + 8,
        rdist(0, gicr::IGRPMODR0),
        rdist(0, gicr::NSACR),
    ] {
        write(&mut gic, offset, W, 0xFFFF_FFFF);
        assert_eq!(read(&mut gic, offset, W), 0, "{offset:#x}");
    }
    assert_eq!(gic.stats().ignored_accesses, 0);
}

#[test]
fn unknown_offsets_are_counted_with_where_they_were() {
    let mut gic = vgic(2);
    // GICD + 0x40 (a GICv3's GICD_SETSPI_NSR: no MBIs).
    assert_unknown_distributor_offset_counted(&mut gic);
    assert_eq!(read(&mut gic, rdist(1, gicr::SGI + 0xD80), W), 0);
    let last = gic.stats().last_ignored.unwrap();
    assert_eq!(last.frame, GicFrame::SgiFrame { vcpu: 1 });
    assert_eq!(last.offset, 0xD80);
    assert_eq!(
        last.to_string(),
        "32-bit read at GICR 1 SGI frame + 0xd80 ignored"
    );
    write(&mut gic, rdist(0, 0x40), D, 0x1234);
    assert_eq!(
        gic.stats().last_ignored.unwrap().to_string(),
        "64-bit write of 0x1234 at GICR 0 RD frame + 0x40 ignored"
    );
    // Between the distributor and the redistributors (QEMU's ITS), and the
    // distributor's own reserved space.
    assert_eq!(read(&mut gic, 0x8_0000, W), 0);
    assert_eq!(gic.stats().last_ignored.unwrap().frame, GicFrame::Unmapped);
    assert_eq!(
        gic.stats().last_ignored.unwrap().to_string(),
        "32-bit read at the GIC window outside its frames + 0x80000 ignored"
    );
    assert_eq!(read(&mut gic, 0x1_0000, W), 0);
    assert_eq!(read(&mut gic, 0x9_FFFC, W), 0);
    write(&mut gic, 0x2000, W, 1);
    assert_eq!(gic.stats().ignored_accesses, 7);
}

#[test]
fn the_window_covers_distributor_gap_and_redistributors() {
    for vcpus in [1, 2, 8] {
        let gic = vgic(vcpus);
        assert_eq!(
            gic.window_size(),
            REDISTRIBUTORS + vcpus as u64 * gicr::STRIDE
        );
    }
    // Direct frame accessors take offsets within each window.
    let mut gic = vgic(2);
    assert_eq!(gic.distributor_read(gicd::PIDR2, W), 0x3B);
    assert_eq!(
        gic.redistributor_read(gicr::STRIDE + gicr::TYPER, D) >> 32,
        1
    );
    gic.redistributor_write(gicr::STRIDE + gicr::WAKER, W, 0);
    assert_eq!(gic.redistributor_read(gicr::STRIDE + gicr::WAKER, W), 0);
    gic.distributor_write(gicd::CTLR, W, 2);
    assert_eq!(gic.distributor_read(gicd::CTLR, W), 0x52);
    // Past the last redistributor (not reachable through the bus, but harmless).
    assert_eq!(gic.redistributor_read(2 * gicr::STRIDE, W), 0);
    assert_eq!(gic.distributor_read(0x1_0000, W), 0);
    assert_eq!(gic.redistributor_read(u64::MAX - 3, W), 0);
    gic.redistributor_write(u64::MAX - 7, D, 1);
    gic.distributor_write(u64::MAX - 7, D, 1);
}

#[test]
fn a_sweep_of_every_offset_and_width_never_panics() {
    let mut gic = vgic(2);
    let size = gic.window_size();
    for width in [B, H, W, D] {
        let step = width.bytes();
        let mut offset = 0;
        while offset + step <= size {
            let value = read(&mut gic, offset, width);
            assert_eq!(value & !width.mask(), 0, "{offset:#x} {width:?}");
            offset += step;
        }
    }
    for (pass, pattern) in [u64::MAX, 0x5555_5555_5555_5555, 0].into_iter().enumerate() {
        for width in [B, H, W, D] {
            let step = width.bytes();
            let mut offset = 0;
            while offset + step <= size {
                write(
                    &mut gic,
                    offset,
                    width,
                    pattern.rotate_left(offset as u32 + pass as u32),
                );
                offset += step;
            }
            // The model keeps working in between.
            for vcpu in 0..2 {
                let plan = gic.flush(vcpu, 4);
                gic.sync(vcpu, plan.list_registers());
            }
        }
    }
    // Misaligned accesses too, around every register block boundary.
    for offset in (0..0x1_0000).step_by(0x7F) {
        for width in [H, W, D] {
            write(&mut gic, offset, width, u64::MAX);
            let _ = read(&mut gic, offset, width);
        }
    }
}

#[test]
fn configurations_are_checked() {
    let config = |vcpus, spis, redistributor_offset| VgicV3Config {
        vcpus,
        spis,
        redistributor_offset,
    };
    for bad in [
        config(0, 64, REDISTRIBUTORS),
        config(4097, 64, REDISTRIBUTORS),
        config(1, 63, REDISTRIBUTORS),
        config(1, 992, REDISTRIBUTORS),
        config(1, 64, 0),
        config(1, 64, 0x8000),
        config(1, 64, 0x1_8000),
    ] {
        assert!(
            matches!(VgicV3::new(bad), Err(VgicError::BadConfig { .. })),
            "{bad:?}"
        );
    }
    assert!(VgicV3::new(config(4096, 960, 0x1_0000)).is_ok());
    assert_eq!(
        VgicV3::new(config(0, 64, REDISTRIBUTORS))
            .unwrap_err()
            .to_string(),
        "virtual GIC configuration: it needs at least one vCPU"
    );
    assert_eq!(VgicV3Config::new(3), config(3, 64, REDISTRIBUTORS));
}

use std::string::ToString;

#[test]
fn redistributor_widths_are_checked_too() {
    let mut gic = vgic(1);
    assert_ignored(
        &mut gic,
        &[
            (rdist(0, gicr::TYPER), H),
            (rdist(0, gicr::TYPER + 4), D),
            (rdist(0, gicr::WAKER), D),
            (rdist(0, gicr::ISENABLER0), H),
        ],
    );
    assert_eq!(
        read(&mut gic, gicd::CTLR, W),
        gicd::CTLR_ARE | gicd::CTLR_DS
    );
}
