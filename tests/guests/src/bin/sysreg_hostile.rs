//! System registers a guest must not reach, and debug registers it may: reads and
//! writes of EL2 and EL3 registers from EL1 (among them TPIDR_EL2, which holds Aerie's
//! exception-stack top, and VBAR_EL2, VTTBR_EL2, HCR_EL2) must each be UNDEFINED (an
//! exception with EC 0x00 at the instruction, raised by the CPU without FEAT_NV);
//! the debug registers are the guest's own (not trapped: MDCR_EL2.TDE is 0, so
//! breakpoints and watchpoints act at EL1 and EL0 only), and read back what it wrote.
//! Aerie keeps running: it answers PSCI afterwards.
//!
//! Specification: Arm ARM D23.2 (which registers are accessible at EL1; an EL2 or EL3
//! register accessed from EL1 without FEAT_NV is UNDEFINED), D23.3 (debug registers).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::exception::{catch, describe, esr};
use aerie_test_guests::smccc::{psci, psci_call};
use aerie_test_guests::{check, check_eq};

aerie_test_guests::guest_main!(run);

/// PSCI 1.1, as `PSCI_VERSION` returns it.
const PSCI_1_1: u64 = 0x0001_0001;

/// Checks that `mrs` and `msr` of register `$name` are each UNDEFINED at the
/// instruction.
macro_rules! check_undefined {
    ($name:literal) => {{
        let mut pc = 0;
        let read = catch(|| {
            // SAFETY: reading a system register touches no memory; the UNDEFINED
            // exception it must take is handled by `catch`.
            unsafe {
                asm!(
                    "adr {pc}, 1f",
                    concat!("1: mrs {value}, ", $name),
                    pc = out(reg) pc,
                    value = out(reg) _,
                    options(nostack, preserves_flags),
                )
            }
        });
        check!(
            read.is_some_and(|e| e.ec() == esr::EC_UNKNOWN && e.elr == pc),
            concat!("sysreg_hostile: MRS ", $name, " is UNDEFINED"),
            "{}",
            describe(read)
        );
        let write = catch(|| {
            // SAFETY: as above; the write must not take effect (Aerie's own state).
            unsafe {
                asm!(
                    "adr {pc}, 1f",
                    concat!("1: msr ", $name, ", xzr"),
                    pc = out(reg) pc,
                    options(nostack, preserves_flags),
                )
            }
        });
        check!(
            write.is_some_and(|e| e.ec() == esr::EC_UNKNOWN && e.elr == pc),
            concat!("sysreg_hostile: MSR ", $name, " is UNDEFINED"),
            "{}",
            describe(write)
        );
    }};
}

/// Writes `$value` to debug register `$name` and checks that it reads back.
macro_rules! check_reads_back {
    ($name:literal, $value:expr) => {{
        let written: u64 = $value;
        let mut read: u64 = 0;
        let taken = catch(|| {
            // SAFETY: a debug register of the guest's own; with MDSCR_EL1.MDE clear no
            // breakpoint or watchpoint is enabled, and no memory is touched.
            unsafe {
                asm!(
                    concat!("msr ", $name, ", {w}"),
                    "isb",
                    concat!("mrs {r}, ", $name),
                    w = in(reg) written,
                    r = out(reg) read,
                    options(nostack, preserves_flags),
                )
            }
        });
        check!(
            taken.is_none() && read == written,
            concat!("sysreg_hostile: ", $name, " is the guest's own and reads back"),
            "{}, read {read:#x}, wrote {written:#x}",
            describe(taken)
        );
    }};
}

fn run() {
    check_undefined!("TPIDR_EL2");
    check_undefined!("VBAR_EL2");
    check_undefined!("HCR_EL2");
    check_undefined!("VTTBR_EL2");
    check_undefined!("SCTLR_EL2");
    check_undefined!("SCR_EL3");
    check_undefined!("VBAR_EL3");
    check_reads_back!("DBGBVR0_EL1", 0x4000_1000);
    check_reads_back!("DBGWVR0_EL1", 0x4000_2000);
    check_reads_back!("MDSCR_EL1", 0);
    check_eq!(
        psci_call(psci::VERSION, 0, 0, 0),
        PSCI_1_1,
        "sysreg_hostile: Aerie still answers PSCI_VERSION"
    );
}
