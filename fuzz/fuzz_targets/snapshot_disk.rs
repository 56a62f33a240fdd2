//! libFuzzer target: the snapshot reader and machine decoder.
//!
//! The body is `aerie_hyp::fuzz::snapshot_disk`, which `cargo test` also runs for a bounded
//! number of inputs; its documentation gives the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_hyp::fuzz::snapshot_disk(data));
