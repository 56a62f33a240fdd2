//! libFuzzer target: the PL011 UART's register interface.
//!
//! The body is `aerie_devices::fuzz::pl011_registers`, which `cargo test` also runs for a bounded
//! number of inputs; its documentation gives the input format and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aerie_devices::fuzz::pl011_registers(data));
