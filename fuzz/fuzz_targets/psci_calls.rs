//! libFuzzer target: PSCI, SMCCC and Aerie hypercalls from the guest.
//!
//! The body is `aerie_hyp::fuzz::psci_calls`, which `cargo test` also runs for a bounded
//! number of inputs; its documentation gives the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_hyp::fuzz::psci_calls(data));
