//! The runtime of Aerie's test guests: tiny EL1 programs (one per file in `src/bin/`)
//! that each test one thing Aerie does for its guests and report through Aerie's
//! debug hypercall.
//!
//! A guest is an arm64 Image that Aerie loads at the start of guest RAM
//! (0x4000_0000, `text_offset` 0) and enters at EL1h with the MMU off and x0 = its
//! device tree. It runs with the MMU and caches off throughout, so every data access
//! is Device-nGnRnE: aligned accesses only (the target has `+strict-align`), and
//! shared data is read and written with [`shared::Shared`], never with
//! read-modify-write atomics.
//!
//! A guest binary is `#![no_std]` + `#![no_main]` and names its main function with
//! [`guest_main!`]. Main makes checks with [`check!`] / [`check_eq!`], each printing
//! `PASS: <name>` or `FAIL: <name>: <details>`; when main returns the runtime prints
//! `result: <n> checks passed, <m> failed` and exits through Aerie's `EXIT`
//! hypercall with status 0 if nothing failed and 1 otherwise.
//!
//! | exit status | meaning |
//! |---|---|
//! | 0 | every check passed |
//! | 1 | at least one check failed |
//! | 96 | a secondary CPU started with a context ID that is no stack slot |
//! | 97 | the image did not run at its link address |
//! | 98 | the guest panicked |
//! | 99 | the guest took an exception nobody expected |
//!
//! | module | job |
//! |---|---|
//! | [`entry`] | Image header, boot and secondary entry, stacks, exception vectors |
//! | [`smccc`] | HVC calls: PSCI, SMCCC and Aerie's hypercalls (debug output, exit) |
//! | [`console`] | `print!` / `println!` through the debug hypercall |
//! | [`report`] | `check!` / `check_eq!` and the pass/fail counts |
//! | [`exception`] | catching one expected exception; an IRQ handler; reporting unexpected ones |
//! | [`cpu`] | MPIDR, counters, barriers, waiting |
//! | [`timer`] | the EL1 physical and virtual timer registers |
//! | [`smp`] | starting secondary vCPUs with PSCI `CPU_ON` |
//! | [`device`] | device registers: 32/8-bit loads and stores, `write_icc!` / `read_icc!` |
//! | [`devtree`] | RAM and vCPUs from the device tree Aerie wrote |
//! | [`gic`] | the GIC from the device tree: private interrupts on one vCPU |
//! | [`shared`] | values shared between CPUs without read-modify-write atomics |
#![no_std]

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
compile_error!(
    "aerie-test-guests builds only for aarch64-unknown-none-softfloat: run `cargo xtask test`"
);

pub mod console;
pub mod cpu;
pub mod device;
pub mod devtree;
pub mod entry;
pub mod exception;
pub mod gic;
pub mod report;
pub mod shared;
pub mod smccc;
pub mod smp;
pub mod timer;

/// Exit status when at least one check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status after a panic.
pub const EXIT_PANIC: u8 = 98;

unsafe extern "Rust" {
    /// The guest's main function, defined by [`guest_main!`] in the binary.
    fn aerie_guest_main();
}

/// Names the guest's main function: `guest_main!(run);` with `fn run()`.
#[macro_export]
macro_rules! guest_main {
    ($main:path) => {
        /// The entry point the runtime calls on the boot CPU.
        #[unsafe(no_mangle)]
        fn aerie_guest_main() {
            let main: fn() = $main;
            main()
        }
    };
}

/// The Rust side of the boot entry: runs main, then exits with the verdict.
#[unsafe(no_mangle)]
extern "C" fn aerie_guest_start(device_tree: u64) -> ! {
    devtree::set_address(device_tree);
    // SAFETY: `guest_main!` defines `aerie_guest_main` as a plain `fn()` in every
    // guest binary; it is called once, here.
    unsafe { aerie_guest_main() };
    let (passed, failed) = (report::passed(), report::failed());
    println!("result: {passed} checks passed, {failed} failed");
    smccc::exit(if failed == 0 { 0 } else { EXIT_FAILED })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("FAIL: the guest panicked: {info}");
    smccc::exit(EXIT_PANIC)
}
