//! libFuzzer target: the virtio-mmio register interface of the block, console and entropy devices.
//!
//! The body is `aerie_devices::fuzz::virtio_mmio_registers`, which `cargo test` also runs
//! for a bounded number of inputs; its documentation gives the input format and what is
//! checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_devices::fuzz::virtio_mmio_registers(data));
