//! Deliberate crashes of Aerie's stacks, for `aerie.selftest=stack-overflow`,
//! `broken-stack` and `broken-exception-stack` (see `aerie_hyp::bootargs`).
//!
//! Each proves that a fault with a broken stack is reported, from the exception
//! stack, and ends with Aerie's crash status instead of recursing. They exist in
//! every build, but only the host's command line can ask for them: a guest cannot.

use crate::arch::cpu;
use crate::{smp, stop};
use aerie_hyp::platform::Platform;
use core::arch::asm;

/// How long the boot CPU waits for a secondary's deliberate crash.
const CRASH_TIMEOUT_MICROS: u64 = 2_000_000;

/// Overflows Aerie's stack on the last online CPU (the boot CPU if it is alone).
pub fn stack_overflow(platform: &Platform<'_>) -> ! {
    if !smp::run_self_test_on_last_secondary(platform, overflow_this_cpu) {
        overflow_this_cpu()
    }
    let deadline = crate::logger::uptime_micros() + CRASH_TIMEOUT_MICROS;
    while crate::logger::uptime_micros() < deadline {
        core::hint::spin_loop();
    }
    println!("Aerie: self-test: the secondary CPU did not report its stack overflow");
    stop::power_off()
}

/// Recurses until this CPU's stack runs into its guard page.
fn overflow_this_cpu() -> ! {
    println!(
        "Aerie: self-test: overflowing the stack of CPU MPIDR {:#x}",
        cpu::mpidr()
    );
    let depth = recurse(0);
    stop::crash(format_args!(
        "self-test recursion ended at depth {depth} without a fault"
    ))
}

/// One level of a recursion with a 1 KiB frame; ends only at `u64::MAX` levels.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    core::hint::black_box(&mut frame);
    if core::hint::black_box(depth) == u64::MAX {
        return depth;
    }
    recurse(depth + 1).wrapping_add(u64::from(core::hint::black_box(frame[0])))
}

/// An address that is neither RAM nor a mapped device: 2 MiB past the end of RAM.
fn unmapped_address(platform: &Platform<'_>) -> u64 {
    let ram_end = platform
        .memory
        .iter()
        .map(aerie_hyp::memory::Range::end)
        .max()
        .unwrap_or(0);
    ram_end.next_multiple_of(2 << 20) + (2 << 20)
}

/// Points Aerie's stack pointer (SP_EL0) at unmapped memory and pushes.
pub fn broken_stack(platform: &Platform<'_>) -> ! {
    let garbage = unmapped_address(platform) + 0x1000;
    println!("Aerie: self-test: pointing Aerie's stack pointer at {garbage:#x}");
    crate::console::flush();
    // By hand: the test needs Aerie's stack pointer itself pointed elsewhere.
    // SAFETY: the store faults at once (the address is unmapped), and the exception
    // report stops Aerie: nothing runs on the broken stack, and the block never
    // returns (the loop is never reached).
    unsafe {
        asm!(
            "mov sp, {garbage}",
            "str xzr, [sp, #-16]!",
            "1: b 1b",
            garbage = in(reg) garbage,
            options(noreturn),
        )
    }
}

/// Points SP_EL2, the exception stack pointer, at unmapped memory and then takes
/// an exception (an undefined instruction): the vector's first store faults, and
/// the nested vector must restart the exception stack and report.
pub fn broken_exception_stack(platform: &Platform<'_>) -> ! {
    let garbage = unmapped_address(platform) + 0x1000;
    println!("Aerie: self-test: pointing the exception stack pointer at {garbage:#x}");
    crate::console::flush();
    // By hand: the test switches stack pointers (SPSel) and takes an exception.
    // SAFETY: SP_EL2 is used by nothing but exception entry, and the exception taken
    // next is reported from the restarted exception stack, which stops Aerie; Aerie's
    // own stack pointer (SP_EL0) is untouched and the block never returns.
    unsafe {
        asm!(
            "msr SPSel, #1",
            "mov sp, {garbage}",
            "msr SPSel, #0",
            "udf #0",
            "1: b 1b",
            garbage = in(reg) garbage,
            options(noreturn),
        )
    }
}
