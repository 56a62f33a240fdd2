//! The per-interrupt registers both front-ends have at the same offsets: SPIs in
//! the distributor, SGIs and PPIs in each vCPU's copy (GICv3 redistributor SGI
//! frame, GICv2 banked distributor); widths and ranges the model ignores.

use super::*;
use crate::mmio::AccessWidth;

scenarios!(
    priorities_are_byte_accessible_with_five_bits,
    sgi_config_is_fixed_and_ppi_config_programmable,
    pending_and_active_registers,
    unimplemented_intids_read_as_zero,
    wrong_widths_and_misaligned_accesses_are_ignored_and_counted,
);

fn priorities_are_byte_accessible_with_five_bits<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.write_gicd(block::IPRIORITYR + 33, B, 0xFF);
    gic.write_gicd(block::IPRIORITYR + 34, B, 0x47);
    assert_eq!(gic.read_gicd_as(1, block::IPRIORITYR + 32, W), 0x0040_F800);
    assert_eq!(gic.read_gicd_as(1, block::IPRIORITYR + 33, B), 0xF8);
    gic.write_private(1, block::IPRIORITYR + 27, B, 0x80);
    assert_eq!(gic.read_private(1, block::IPRIORITYR + 24, W), 0x8000_0000);
    assert_eq!(gic.read_private(0, block::IPRIORITYR + 24, W), 0, "banked");
}

fn sgi_config_is_fixed_and_ppi_config_programmable<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.write_private(0, block::ICFGR, W, 0);
    let sgis = gic.read_private(0, block::ICFGR, W);
    assert_eq!(sgis, 0xAAAA_AAAA, "SGIs edge, read-only");
    gic.write_private(0, block::ICFGR + 4, W, 0xFFFF_FFFF);
    let ppis = gic.read_private(0, block::ICFGR + 4, W);
    assert_eq!(ppis, 0xAAAA_AAAA, "Int_config[0] RES0");
    assert_eq!(gic.read_private(1, block::ICFGR + 4, W), 0, "banked");
    gic.write_gicd_as(1, block::ICFGR + 8, W, 0b10 << 2);
    let spis = gic.read_gicd_as(0, block::ICFGR + 8, W);
    assert_eq!(spis, 0b10 << 2, "INTID 33 edge");
}

fn pending_and_active_registers<G: TestGic>() {
    let mut gic = G::with_vcpus(2);
    gic.write_gicd(block::ISPENDR + 4, W, 0x8000_0001);
    gic.write_gicd(block::ISACTIVER + 8, W, 0x2);
    assert_eq!(gic.read_gicd_as(1, block::ISPENDR + 4, W), 0x8000_0001);
    let same = gic.read_gicd_as(1, block::ICPENDR + 4, W);
    assert_eq!(same, 0x8000_0001, "same bits");
    gic.write_gicd_as(1, block::ICPENDR + 4, W, 0x1);
    assert_eq!(gic.read_gicd(block::ISPENDR + 4, W), 0x8000_0000);
    assert_eq!(gic.read_gicd(block::ICACTIVER + 8, W), 0x2);
    gic.write_gicd(block::ICACTIVER + 8, W, 0x2);
    assert_eq!(gic.read_gicd(block::ISACTIVER + 8, W), 0);
    // Each vCPU's own SGIs and PPIs.
    gic.write_private(1, block::ISPENDR, W, 1 << 20);
    assert_eq!(gic.read_private(1, block::ISPENDR, W), 1 << 20);
    assert_eq!(gic.read_private(0, block::ISPENDR, W), 0);
    gic.write_private(1, block::ICPENDR, W, 1 << 20);
    assert_eq!(gic.read_private(1, block::ISPENDR, W), 0);
    gic.write_private(1, block::ISACTIVER, W, 1 << 3);
    assert_eq!(gic.read_private(1, block::ICACTIVER, W), 1 << 3);
}

fn unimplemented_intids_read_as_zero<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    // 64 SPIs: INTIDs 96 and up do not exist.
    for offset in [
        block::IGROUPR + 12,
        block::ISENABLER + 12,
        block::ISPENDR + 12,
        block::ISACTIVER + 12,
        block::ISENABLER + 124,
        block::ISACTIVER + 124,
        block::IPRIORITYR + 96,
        block::IPRIORITYR + 1020,
        block::ICFGR + 24,
        block::ICFGR + 252,
    ] {
        gic.write_gicd(offset, W, 0xFFFF_FFFF);
        assert_eq!(gic.read_gicd(offset, W), 0, "{offset:#x}");
    }
    // The last implemented ones work.
    gic.write_gicd(block::ISENABLER + 8, W, 1 << 31);
    assert_eq!(gic.read_gicd(block::ISENABLER + 8, W), 1 << 31, "INTID 95");
    gic.write_gicd(block::IPRIORITYR + 95, B, 0x80);
    assert_eq!(gic.read_gicd(block::IPRIORITYR + 92, W), 0x8000_0000);
    assert_eq!(gic.stats().ignored_accesses, 0);
}

/// Reads and writes each of `accesses` (offset, width) and checks that every one
/// read as zero and was counted as ignored.
pub(in crate::vgic::tests) fn assert_ignored<G: TestGic>(
    gic: &mut G,
    accesses: &[(u64, AccessWidth)],
) {
    let before = gic.stats().ignored_accesses;
    for &(offset, width) in accesses {
        let value = gic.read_gicd(offset, width);
        assert_eq!(value, 0, "{offset:#x} {width:?}");
        gic.write_gicd(offset, width, u64::MAX);
    }
    let ignored = gic.stats().ignored_accesses - before;
    assert_eq!(ignored, 2 * accesses.len() as u64);
}

fn wrong_widths_and_misaligned_accesses_are_ignored_and_counted<G: TestGic>() {
    let mut gic = G::with_vcpus(1);
    gic.write_gicd(block::ISENABLER + 4, W, 0x1);
    let ctlr = gic.read_gicd(block::CTLR, W);
    assert_ignored(
        &mut gic,
        &[
            (block::CTLR, B),
            (block::CTLR, H),
            (block::CTLR, D),
            (block::CTLR + 1, B),
            (block::TYPER + 1, B),
            (block::ISENABLER + 4, B),
            (block::ISENABLER + 4, H),
            (block::ISENABLER + 4, D),
            (block::ISENABLER + 6, W),
            (block::IPRIORITYR + 32, H),
            (block::IPRIORITYR + 32, D),
            (block::IPRIORITYR + 33, W),
            (block::ICFGR + 8, B),
        ],
    );
    assert_eq!(gic.read_gicd(block::ISENABLER + 4, W), 0x1, "unchanged");
    assert_eq!(gic.read_gicd(block::CTLR, W), ctlr, "unchanged");
}

/// vCPU 1 writes 5 at distributor offset 0x40, where no register answers: one
/// ignored access, counted with where it was.
pub(in crate::vgic::tests) fn assert_unknown_distributor_offset_counted<G: TestGic>(gic: &mut G) {
    use crate::vgic::{GicFrame, IgnoredAccess};
    use std::string::ToString;
    gic.write_gicd_as(1, 0x40, W, 0x5);
    let last = gic.stats().last_ignored;
    let expected = IgnoredAccess {
        frame: GicFrame::Distributor,
        offset: 0x40,
        width: W,
        written: Some(0x5),
    };
    assert_eq!(last, Some(expected));
    let text = expected.to_string();
    assert_eq!(text, "32-bit write of 0x5 at GICD + 0x40 ignored");
}
