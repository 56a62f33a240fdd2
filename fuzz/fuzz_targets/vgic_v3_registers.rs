//! libFuzzer target: the GICv3 distributor and redistributors.
//!
//! The body is `aerie_devices::fuzz::vgic_v3_registers`, which `cargo test` also runs for a bounded
//! number of inputs; its documentation gives the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_devices::fuzz::vgic_v3_registers(data));
