//! libFuzzer target: the host device tree checks and platform parser.
//!
//! The body is `aerie_hyp::fuzz::host_device_tree`, which `cargo test` also runs for a bounded
//! number of inputs; its documentation gives the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_hyp::fuzz::host_device_tree(data));
