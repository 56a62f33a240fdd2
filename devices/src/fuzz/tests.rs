//! The bounded runs of this crate's fuzz targets (see [`super::driver`]). The input
//! counts keep each to about a second (aerie-devices is optimised in test builds,
//! see the workspace's Cargo.toml) with 2 CPUs.

use super::*;

#[test]
fn fuzz_virtqueue_walk() {
    Target {
        name: "virtqueue_walk",
        iterations: 15000,
        max_len: 0x1_0000,
        seeds: &[],
    }
    .run(virtqueue_walk);
}

#[test]
fn fuzz_block_request() {
    Target {
        name: "block_request",
        iterations: 15000,
        max_len: 0x1_0000,
        seeds: &[],
    }
    .run(block_request);
}

#[test]
fn fuzz_virtio_mmio_registers() {
    Target {
        name: "virtio_mmio_registers",
        iterations: 15000,
        max_len: 0x2000,
        seeds: &[],
    }
    .run(virtio_mmio_registers);
}

#[test]
fn fuzz_pl011_registers() {
    Target {
        name: "pl011_registers",
        iterations: 20000,
        max_len: 0x2000,
        seeds: &[],
    }
    .run(pl011_registers);
}

#[test]
fn fuzz_vgic_v3_registers() {
    Target {
        name: "vgic_v3_registers",
        iterations: 1500,
        max_len: 0x2000,
        seeds: &[],
    }
    .run(vgic_v3_registers);
}

#[test]
fn fuzz_vgic_v2_registers() {
    Target {
        name: "vgic_v2_registers",
        iterations: 1000,
        max_len: 0x2000,
        seeds: &[],
    }
    .run(vgic_v2_registers);
}
