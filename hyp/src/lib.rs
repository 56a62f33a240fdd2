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
//! | [`exit`] | a trapped guest exception decoded into a typed exit |
//! | [`inject`] | injecting synchronous exceptions (aborts, UNDEFINED) into a guest |
//! | [`mmio`] | emulating a decoded guest load/store against the MMIO bus |
//! | [`stacks`] | Aerie's per-CPU stacks and guard pages, and what a stack pointer says about a crash |
//! | [`stage2`] | stage-2 descriptors, VTCR_EL2 and VTTBR_EL2 values |
//! | [`vcpu`] | a vCPU's architectural state as plain data |
//! | [`vpsci`] | PSCI, SMCCC and Aerie hypercalls as the guest sees them |
//! | [`run`] | the pure pieces of the vCPU run loop: list-register reuse, exit counting, debug lines |
//! | [`guest_fdt`] | the device tree Aerie writes for its guest |
//! | [`bundle`] | the guest bundle (kernel, initrd, command line) in a cpio archive |
//! | [`loader`] | where the kernel, initrd and device tree go in guest RAM |
//! | [`firmware`] | firmware guests (U-Boot, EDK2): flash banks, device tree at the start of RAM, reset entry |
//! | [`console`] | the console escape (Ctrl-A) and Aerie's console commands |
//! | [`cpu_model`] | the guest's CPU model: the feature ID registers it reads |
//! | [`pmu`] | the guest's PMU: the host's PMUv3, untrapped; MDCR_EL2 and the overflow level |
//! | [`snapshot`] | the on-disk snapshot format: two slots, checksummed chunks, zero pages skipped |
//! | `fuzz` | fuzz targets of the parsers above (tests and the `fuzzing` feature only) |
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "fuzzing"))]
extern crate std;

pub mod bootargs;
pub mod bundle;
pub mod console;
pub mod cpu_model;
pub mod esr;
pub mod exit;
pub mod fdt_check;
pub mod firmware;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod guest_fdt;
pub mod guest_layout;
pub mod hypercall;
pub mod image;
pub mod inject;
pub mod loader;
pub mod memory;
pub mod mmio;
pub mod paging;
pub mod platform;
pub mod pmu;
pub mod psci;
pub mod run;
pub mod snapshot;
pub mod stacks;
pub mod stage2;
pub mod summary;
pub mod units;
pub mod vcpu;
pub mod vpsci;
