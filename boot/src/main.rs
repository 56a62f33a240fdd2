//! Aerie, the binary: the code that runs at EL2 on the real (or emulated) machine.
//!
//! This crate is thin glue between hardware and the portable logic in `aerie-hyp` and
//! `aerie-devices`. It is the only crate allowed to use `unsafe`; every unsafe block
//! carries a `// SAFETY:` argument.
//!
//! | module | job |
//! |---|---|
//! | [`arch`] | assembly entry points, exception vectors, system registers, caches, MMU |
//! | [`drivers`] | the physical devices Aerie itself drives (PL011 UART) |
//! | [`console`] | where Aerie's text goes, with and without locks |
//! | [`logger`] | the `log` backend, with timestamps |
//! | [`device_tree`] | finding and validating the device tree the loader passed |
//! | [`memory`] | the memory plan, the frame allocator and the heap |
//! | [`psci`] | calls into firmware: CPU_ON, SYSTEM_OFF |
//! | [`smp`] | starting secondary CPUs and keeping them ready for work |
//! | [`stacks`] | where each CPU's stack and exception stack lie |
//! | [`selftest`] | deliberate crashes of Aerie's stacks (`aerie.selftest=`) |
//! | [`virtio_probe`] | identifying the host's virtio-mmio devices |
//! | [`stop`] | the ways Aerie ends: power off, refuse, crash report |
//! | [`vm`] | the guest: its memory, devices, vCPUs and exits |
//! | [`start`] | the boot sequence, step by step |
#![no_std]
#![no_main]

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
compile_error!(
    "aerie-boot builds only for aarch64-unknown-none-softfloat: use `cargo xtask build`"
);

extern crate alloc;

#[macro_use]
mod console;
mod arch;
mod device_tree;
mod drivers;
mod logger;
mod memory;
mod psci;
mod selftest;
mod smp;
mod stacks;
mod start;
mod stop;
mod sync;
mod virtio_probe;
mod vm;
mod wall_clock;

/// Aerie's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    stop::crash(format_args!("panic: {info}"))
}
