//! Fuzz targets of the parsers of untrusted input in this crate: one body per
//! target, shared by the bounded stable run in `cargo test` and the libFuzzer
//! targets in `fuzz/` (see `aerie_devices::fuzz` for the device targets and the
//! runner).
//!
//! | target | what it feeds |
//! |---|---|
//! | [`exit_decode`] | trap syndromes and fault addresses to the exit decoder, MMIO emulation and exception injection |
//! | [`host_device_tree`] | device tree blobs to the boot path's checks, platform parser and summary |
//! | [`guest_bundle`] | cpio archives to the bundle parser, the kernel header and the load plan |
//! | [`snapshot_disk`] | damaged snapshot disks to the reader, the machine decoder and the page stream |
//! | [`psci_calls`] | PSCI, SMCCC and Aerie hypercalls with any arguments, from any vCPU |
//!
//! The module is built for tests and with the `fuzzing` feature (host only).

mod bundle;
mod device_tree;
mod exit;
mod psci;
mod snapshot;
#[cfg(test)]
mod tests;

pub use bundle::guest_bundle;
pub use device_tree::host_device_tree;
pub use exit::exit_decode;
pub use psci::psci_calls;
pub use snapshot::{reference_disk, snapshot_disk};
