//! libFuzzer target: virtio-blk requests through the MMIO transport.
//!
//! The body is `aerie_devices::fuzz::block_request`, which `cargo test` also runs for a bounded
//! number of inputs; its documentation gives the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_devices::fuzz::block_request(data));
