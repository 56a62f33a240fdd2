//! The bounded runs of this crate's fuzz targets (see `aerie_devices::fuzz`'s
//! driver), with seed inputs where the target parses a file format, and the inputs
//! that once failed them.

use super::*;
use crate::bundle;
use aerie_devices::fuzz::Target;
use alloc::vec::Vec;

/// A device tree from `tests/fixtures`.
fn fixture(name: &str) -> Vec<u8> {
    let path = std::format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A small arm64 `Image`: the header (4 KiB pages, `image_size` 64 KiB) and some code.
fn kernel() -> Vec<u8> {
    let mut image = alloc::vec![0u8; 4096];
    image[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
    image[16..24].copy_from_slice(&0x1_0000u64.to_le_bytes());
    image[24..32].copy_from_slice(&(1u64 << 1).to_le_bytes());
    image[56..60].copy_from_slice(b"ARM\x64");
    image
}

#[test]
fn fuzz_exit_decode() {
    Target {
        name: "exit_decode",
        iterations: 30000,
        max_len: 0x2000,
        seeds: &[],
    }
    .run(exit_decode);
}

#[test]
fn fuzz_psci_calls() {
    Target {
        name: "psci_calls",
        iterations: 30000,
        max_len: 0x2000,
        seeds: &[],
    }
    .run(psci_calls);
}

#[test]
fn fuzz_host_device_tree() {
    let trees = [
        fixture("qemu-virt-gicv3.dtb"),
        fixture("qemu-virt-gicv2.dtb"),
        fixture("qemu-raspi4b.dtb"),
        fixture("rpi5-bcm2712-rpi-5-b.dtb"),
    ];
    let seeds: Vec<&[u8]> = trees.iter().map(Vec::as_slice).collect();
    Target {
        name: "host_device_tree",
        iterations: 5000,
        max_len: 0x1_0000,
        seeds: &seeds,
    }
    .run(host_device_tree);
}

#[test]
fn fuzz_guest_bundle() {
    let kernel = kernel();
    let bundles = [
        bundle::write(&kernel, None, None),
        bundle::write(&kernel, Some(b"initramfs"), Some("console=ttyAMA0\n")),
        bundle::write(&kernel[..64], Some(&[]), Some("")),
    ];
    let seeds: Vec<&[u8]> = bundles.iter().map(Vec::as_slice).collect();
    Target {
        name: "guest_bundle",
        iterations: 500000,
        max_len: 0x4000,
        seeds: &seeds,
    }
    .run(guest_bundle);
}

#[test]
fn fuzz_snapshot_disk() {
    Target {
        name: "snapshot_disk",
        iterations: 12000,
        max_len: 0x400,
        seeds: &[],
    }
    .run(snapshot_disk);
}

/// The reference disk is what the snapshot target damages: both slots must be
/// valid, and an input without edits must pass every check.
#[test]
fn the_snapshot_reference_is_valid() {
    for gic_v2 in [false, true] {
        let disk = reference_disk(gic_v2);
        let snapshot = crate::snapshot::read_snapshot(&disk).unwrap();
        assert_eq!(snapshot.sequence, 2);
        crate::snapshot::machine::SavedMachine::from_snapshot(&snapshot).unwrap();
        for slot in 0..2 {
            crate::snapshot::read_slot(&disk, slot).unwrap();
        }
    }
    for mode in 0..8 {
        snapshot_disk(&[mode]);
    }
}

/// Every directory in `fuzz/regressions/` is named after a target (of this crate or
/// aerie-devices), so that none is silently never replayed.
#[test]
fn regression_directories_name_targets() {
    const TARGETS: [&str; 11] = [
        "virtqueue_walk",
        "block_request",
        "virtio_mmio_registers",
        "pl011_registers",
        "vgic_v3_registers",
        "vgic_v2_registers",
        "exit_decode",
        "psci_calls",
        "host_device_tree",
        "guest_bundle",
        "snapshot_disk",
    ];
    let directory = std::format!("{}/../fuzz/regressions", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&directory).expect("fuzz/regressions exists") {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(TARGETS.contains(&name.as_ref()), "fuzz/regressions/{name}");
    }
}
