//! The CPU model Aerie shows its guest: the feature ID registers (trapped by
//! HCR_EL2.TID3) read as Aerie's sanitised values, not the host CPU's. Meant for a
//! host with the features Aerie hides (QEMU `-cpu max`: SVE, SME, AArch32 EL0,
//! 48-bit physical addresses, and a PMU later than PMUv3p5, or any PMU when the host
//! device tree gives it no PPI).
//!
//! Specification: Arm ARM DDI 0487, D17.2 (the feature ID space `op0 = 3, op1 = 0,
//! CRn = 0, CRm = 1..7`, unallocated encodings read as zero) and the register pages
//! of ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, ID_AA64ZFR0_EL1, ID_AA64SMFR0_EL1,
//! ID_AA64DFR0_EL1, ID_AA64ISAR0_EL1 and ID_AA64MMFR0_EL1; what Aerie hides:
//! `hyp/src/cpu_model.rs`.
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::exception::{catch, describe, esr};
use aerie_test_guests::{check, check_eq, devtree, println};

aerie_test_guests::guest_main!(run);

/// Reads a system register by its generic `S3_..` name.
macro_rules! read {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading an ID register touches no memory and has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// The 4-bit field at `shift` of `value`.
fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

fn run() {
    let pfr0 = read!("S3_0_C0_C4_0");
    let pfr1 = read!("S3_0_C0_C4_1");
    let dfr0 = read!("S3_0_C0_C5_0");
    let isar0 = read!("S3_0_C0_C6_0");
    let mmfr0 = read!("S3_0_C0_C7_0");
    println!(
        "cpu_model: PFR0 {pfr0:#x} PFR1 {pfr1:#x} DFR0 {dfr0:#x} ISAR0 {isar0:#x} MMFR0 {mmfr0:#x}"
    );

    check_eq!(field(pfr0, 32), 0, "cpu_model: ID_AA64PFR0_EL1.SVE is 0");
    check_eq!(read!("S3_0_C0_C4_4"), 0, "cpu_model: ID_AA64ZFR0_EL1 is 0");
    check_eq!(field(pfr1, 24), 0, "cpu_model: ID_AA64PFR1_EL1.SME is 0");
    check_eq!(read!("S3_0_C0_C4_5"), 0, "cpu_model: ID_AA64SMFR0_EL1 is 0");
    check_eq!(field(pfr1, 8), 0, "cpu_model: ID_AA64PFR1_EL1.MTE is 0");
    check_eq!(field(pfr0, 28), 0, "cpu_model: ID_AA64PFR0_EL1.RAS is 0");
    check_eq!(field(pfr0, 40), 0, "cpu_model: ID_AA64PFR0_EL1.MPAM is 0");
    check_eq!(field(pfr0, 44), 0, "cpu_model: ID_AA64PFR0_EL1.AMU is 0");
    check_eq!(field(pfr0, 8), 0, "cpu_model: ID_AA64PFR0_EL1.EL2 is 0");
    check_eq!(
        field(pfr0, 0),
        1,
        "cpu_model: ID_AA64PFR0_EL1.EL0 is AArch64 only"
    );
    check_eq!(
        field(pfr0, 4),
        1,
        "cpu_model: ID_AA64PFR0_EL1.EL1 is AArch64 only"
    );
    check_eq!(
        field(pfr0, 24),
        1,
        "cpu_model: ID_AA64PFR0_EL1.GIC is the GICv3 interface"
    );
    check!(
        field(pfr0, 16) != 0xf && field(pfr0, 20) != 0xf,
        "cpu_model: FP and AdvSIMD are implemented",
        "PFR0 {pfr0:#x}"
    );
    // The guest owns the host's PMU where its device tree describes one (PMUv3 to
    // PMUv3p5: later versions add state Aerie does not save), else it has none.
    let has_pmu_node =
        devtree::with_device_tree(|tree| tree.find_compatible(&["arm,armv8-pmuv3"]).is_some());
    if has_pmu_node == Ok(true) {
        check!(
            (1..=6).contains(&field(dfr0, 8)),
            "cpu_model: ID_AA64DFR0_EL1.PMUVer is PMUv3 to PMUv3p5 with a PMU node",
            "PMUVer {}",
            field(dfr0, 8)
        );
    } else {
        check_eq!(
            field(dfr0, 8),
            0,
            "cpu_model: ID_AA64DFR0_EL1.PMUVer is 0 without a PMU node"
        );
    }
    check_eq!(field(dfr0, 32), 0, "cpu_model: ID_AA64DFR0_EL1.PMSVer is 0");
    check_eq!(
        field(dfr0, 4),
        0,
        "cpu_model: ID_AA64DFR0_EL1.TraceVer is 0"
    );
    check_eq!(
        field(dfr0, 44),
        0,
        "cpu_model: ID_AA64DFR0_EL1.TraceBuffer is 0"
    );
    check_eq!(field(dfr0, 52), 0, "cpu_model: ID_AA64DFR0_EL1.BRBE is 0");
    check!(
        field(dfr0, 0) >= 6,
        "cpu_model: ID_AA64DFR0_EL1.DebugVer is Armv8 debug or later",
        "DFR0 {dfr0:#x}"
    );
    check_eq!(
        field(mmfr0, 0),
        0b010,
        "cpu_model: ID_AA64MMFR0_EL1.PARange is 40 bits"
    );
    check_eq!(
        field(isar0, 20),
        2,
        "cpu_model: ID_AA64ISAR0_EL1.Atomic passes through (LSE)"
    );
    check_eq!(
        read!("S3_0_C0_C1_0"),
        0,
        "cpu_model: ID_PFR0_EL1 (AArch32) is 0"
    );
    check_eq!(
        read!("S3_0_C0_C3_0"),
        0,
        "cpu_model: MVFR0_EL1 (AArch32) is 0"
    );
    check_eq!(
        read!("S3_0_C0_C7_7"),
        0,
        "cpu_model: the unallocated S3_0_C0_C7_7 reads as zero"
    );
    check_eq!(
        read!("S3_0_C0_C4_0"),
        pfr0,
        "cpu_model: a second read gives the same value"
    );
    id_register_writes_are_undefined();
    hidden_instructions_are_undefined();
}

/// ID registers are read-only: `msr` to one is UNDEFINED (EC 0x00) at that
/// instruction.
fn id_register_writes_are_undefined() {
    let mut pc = 0;
    let taken = catch(|| {
        // SAFETY: the write is UNDEFINED; `catch` handles the exception.
        unsafe {
            asm!(
                "adr {pc}, 1f",
                "1: msr S3_0_C0_C4_0, xzr",
                pc = out(reg) pc,
                options(nostack, preserves_flags),
            );
        }
    });
    check!(
        taken.is_some_and(|e| e.ec() == esr::EC_UNKNOWN && e.elr == pc),
        "cpu_model: MSR ID_AA64PFR0_EL1 is UNDEFINED",
        "{}",
        describe(taken)
    );
}

/// Runs the instruction `$encoding` (as `.inst`, so that no assembler feature is
/// needed) and checks that it is UNDEFINED (EC 0x00) at that instruction.
macro_rules! check_undefined_instruction {
    ($encoding:literal, $what:literal) => {{
        let mut pc = 0;
        let taken = catch(|| {
            // SAFETY: the instruction is UNDEFINED for this guest (its feature is
            // hidden and trapped); `catch` handles the exception, and had it run it
            // would only have written x0.
            unsafe {
                asm!(
                    "adr {pc}, 1f",
                    concat!("1: .inst ", $encoding),
                    pc = out(reg) pc,
                    out("x0") _,
                    options(nostack),
                );
            }
        });
        check!(
            taken.is_some_and(|e| e.ec() == esr::EC_UNKNOWN && e.elr == pc),
            concat!("cpu_model: ", $what, " is UNDEFINED"),
            "{}",
            describe(taken)
        );
    }};
}

/// The hidden features' instructions and registers are UNDEFINED, as on a CPU
/// without them: SVE (RDVL, ZCR_EL1) and SME (SMSTART, SMCR_EL1), which the host
/// (`-cpu max`) has and Aerie traps (CPTR_EL2.TZ and TSM) instead of saving.
///
/// The guest first turns on SVE and SME at EL1 (CPACR_EL1.ZEN and SMEN, with FPEN; ZEN and SMEN are RES0 on a CPU
/// without them but writable on this host), as a guest that does not read the ID
/// registers might: the CPU then sends the instructions to EL2, and Aerie must answer
/// UNDEFINED. (With CPACR_EL1 left alone, the CPU traps them to EL1 itself, with
/// EC 0x19 or 0x1D, before EL2 could see them.)
fn hidden_instructions_are_undefined() {
    // ZEN [17:16], FPEN [21:20] (SVE instructions need FP/SIMD enabled too), SMEN [25:24].
    const CPACR_ZEN_SMEN: u64 = (0b11 << 16) | (0b11 << 20) | (0b11 << 24);
    let cpacr: u64;
    // SAFETY: reading CPACR_EL1 has no side effect.
    unsafe { asm!("mrs {}, CPACR_EL1", out(reg) cpacr, options(nomem, nostack)) };
    // SAFETY: CPACR_EL1 only controls traps of this guest's own EL1/EL0 instructions.
    unsafe { asm!("msr CPACR_EL1, {}", "isb", in(reg) cpacr | CPACR_ZEN_SMEN, options(nostack)) };
    // RDVL X0, #1
    check_undefined_instruction!("0x04bf5020", "SVE RDVL");
    // MRS X0, ZCR_EL1 (S3_0_C1_C2_0)
    check_undefined_instruction!("0xd5381200", "MRS ZCR_EL1");
    // SMSTART (MSR SVCRSMZA, #1)
    check_undefined_instruction!("0xd503477f", "SME SMSTART");
    // MRS X0, SMCR_EL1 (S3_0_C1_C2_6)
    check_undefined_instruction!("0xd53812c0", "MRS SMCR_EL1");
    // SAFETY: as above, back to what it was.
    unsafe { asm!("msr CPACR_EL1, {}", "isb", in(reg) cpacr, options(nostack)) };
}
