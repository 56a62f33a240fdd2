//! Fuzz targets: one body per target, shared by two runners.
//!
//! Each target is a function from arbitrary bytes to nothing that exercises one
//! interface a guest controls and panics only when it finds a bug: a panic in the
//! code under test, or a failed check of what the interface promises (see each
//! target). The same functions run in two places:
//!
//! - `cargo test` (and so `cargo xtask test`) runs each for a bounded, seeded number
//!   of pseudo-random inputs ([`driver`], the tests in this module), on stable Rust;
//! - the libFuzzer targets in `fuzz/` (`cargo +nightly fuzz run <target>`) call them
//!   with coverage guidance for as long as one likes.
//!
//! | target | what it feeds |
//! |---|---|
//! | [`virtqueue_walk`] | guest RAM with a descriptor table and rings, to the split-virtqueue walker |
//! | [`block_request`] | guest RAM with virtio-blk requests, through the MMIO transport |
//! | [`virtio_mmio_registers`] | register accesses, guest RAM writes and queue runs, to the virtio-mmio block, console and entropy devices |
//! | [`pl011_registers`] | register accesses, input bytes and restores, to the PL011 |
//! | [`vgic_v3_registers`] | register accesses and hypervisor operations, to the GICv3 front-end |
//! | [`vgic_v2_registers`] | the same, to the GICv2 front-end |
//!
//! `aerie-hyp` has the targets of its own parsers in `aerie_hyp::fuzz`. The module is
//! built for tests and with the `fuzzing` feature (host only: it uses `std` for the
//! bounded runner).

mod driver;
mod input;
mod pl011;
#[cfg(test)]
mod tests;
mod vgic;
mod virtio;

pub use driver::{ITERATIONS_VARIABLE, Random, SEED_VARIABLE, Target, mutate};
pub use input::Input;
pub use pl011::pl011_registers;
pub use vgic::{vgic_v2_registers, vgic_v3_registers};
pub use virtio::{block_request, virtio_mmio_registers, virtqueue_walk};
