//! Aerie's portable core.
//!
//! Everything here is plain logic over plain data: it builds for the host, where it is
//! unit-tested, and for `aarch64-unknown-none-softfloat`, where `boot/` drives it. No
//! module touches hardware or uses `unsafe`; `boot/` owns every register and pointer.
//!
//! | module | job |
//! |---|---|
//! | [`fdt_check`] | structural validation of an untrusted flattened device tree |
//! | [`guest_layout`] | the guest's physical address map (mirrors QEMU `virt`) |
//! | [`hypercall`] | Aerie's own hypercall numbers (debug output, exit) |
//! | [`platform`] | the host machine as described by its device tree |
//! | [`memory`] | address ranges and the plan of which RAM Aerie may use |
//! | [`paging`] | translation-table building over a frame-allocator trait |
//! | [`esr`] | exception syndrome (ESR_ELx) decoding |
//! | [`image`] | the arm64 Linux `Image` header |
//! | [`summary`] | the hardware summary Aerie prints at boot |
//! | [`bootargs`] | Aerie's own options from `/chosen/bootargs` |
//! | [`psci`] | PSCI / SMCCC function numbers and return codes |
//! | [`units`] | byte sizes: parsing `512M`, printing `1 GiB` |
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod bootargs;
pub mod esr;
pub mod fdt_check;
pub mod guest_layout;
pub mod hypercall;
pub mod image;
pub mod memory;
pub mod paging;
pub mod platform;
pub mod psci;
pub mod summary;
pub mod units;
