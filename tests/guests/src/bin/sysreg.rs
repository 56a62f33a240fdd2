//! System registers Aerie traps: the EL1 physical timer (CNTP_CVAL/CTL/TVAL, which
//! it emulates), an IMPLEMENTATION DEFINED register (UNDEFINED for the guest), data
//! cache maintenance by set/way (performed, no exception) and, where the guest has no
//! PMU (ID_AA64DFR0_EL1.PMUVer 0: the host tree gives none), the trapped PMU
//! registers (read as zero).
//!
//! Specification: Arm ARM D12.8 (the generic timer: CVAL, TVAL and the ISTATUS
//! condition "counter - CVAL >= 0"), D23.2 (CNTP_CTL_EL0, CNTP_CVAL_EL0,
//! CNTP_TVAL_EL0), C5.3 (DC CISW/CSW/ISW and the set/way operand), D23.2.30
//! (CLIDR_EL1), D23.2.29 (CCSIDR_EL1), D23.3 (PMCR_EL0), C5.1.2 (op0 = 3, CRn = 15:
//! IMPLEMENTATION DEFINED registers).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::exception::{Exception, catch, describe, esr};
use aerie_test_guests::timer::{self, CTL_ENABLE, CTL_IMASK, CTL_ISTATUS};
use aerie_test_guests::{check, check_eq, cpu, println};

aerie_test_guests::guest_main!(run);

/// A CVAL far in the future with every byte distinct, to see all 64 bits kept.
const FAR_FUTURE: u64 = 0x7EDC_BA98_7654_3210;
/// How far ahead the timer is set when its condition must not be met yet.
const NOT_YET_MS: u64 = 1000;
/// How far ahead the timer is set when the test waits for it.
const SOON_MS: u64 = 2;
/// How long the test waits at most for the counter to pass CVAL.
const TIMEOUT_MS: u64 = 5000;
/// How far in the past CVAL is set for a negative TVAL, in ticks.
const PAST_TICKS: u64 = 1000;

/// CLIDR_EL1.Ctype1 (bits 2:0): the level 1 cache type. 2 = data only, 3 = separate
/// instruction and data, 4 = unified: the values with a data cache.
const CLIDR_CTYPE1_MASK: u64 = 0b111;
const CTYPE_DATA_CACHES: [u64; 3] = [2, 3, 4];
/// CCSIDR_EL1 fields (without FEAT_CCIDX): LineSize (bits 2:0) = log2(line bytes) -
/// 4, Associativity (bits 12:3) = ways - 1, NumSets (bits 27:13) = sets - 1.
const CCSIDR_LINE_SIZE_MASK: u64 = 0b111;
const CCSIDR_LINE_SIZE_BIAS: u32 = 4;
const CCSIDR_ASSOCIATIVITY_SHIFT: u32 = 3;
const CCSIDR_ASSOCIATIVITY_MASK: u64 = 0x3FF;
const CCSIDR_NUM_SETS_SHIFT: u32 = 13;
const CCSIDR_NUM_SETS_MASK: u64 = 0x7FFF;
/// The same fields with FEAT_CCIDX (64-bit CCSIDR_EL1): Associativity in bits 23:3,
/// NumSets in bits 55:32.
const CCSIDR64_ASSOCIATIVITY_MASK: u64 = 0x1F_FFFF;
const CCSIDR64_NUM_SETS_SHIFT: u32 = 32;
const CCSIDR64_NUM_SETS_MASK: u64 = 0xFF_FFFF;
/// ID_AA64MMFR2_EL1.CCIDX (bits 23:20): nonzero when CCSIDR_EL1 has the 64-bit format.
const MMFR2_CCIDX_SHIFT: u32 = 20;
const MMFR2_CCIDX_MASK: u64 = 0xF;
/// Bounds on the walk, so that a nonsensical geometry cannot make it endless.
const MAX_WAYS: u64 = 64;
const MAX_SETS: u64 = 1 << 16;
/// ID_AA64DFR0_EL1.PMUVer, bits 11:8.
const DFR0_PMUVER_SHIFT: u32 = 8;
/// PMCR_EL0.E (bit 0): enable the event counters.
const PMCR_E: u64 = 1;
/// CSSELR_EL1 value selecting the level 1 data (or unified) cache.
const CSSELR_L1_DATA: u64 = 0;
/// The set/way operand puts the way in the top bits of a 32-bit field.
const SET_WAY_WIDTH: u32 = 32;

fn run() {
    physical_timer_compare_value();
    physical_timer_control();
    physical_timer_timer_value();
    implementation_defined_register();
    set_way_cache_maintenance();
    pmu_reads_as_zero();
}

fn physical_timer_compare_value() {
    timer::set_physical_ctl(0);
    timer::set_physical_cval(FAR_FUTURE);
    check_eq!(
        timer::physical_cval(),
        FAR_FUTURE,
        "sysreg: CNTP_CVAL_EL0 reads back what was written"
    );
    timer::set_physical_cval(u64::MAX);
    check_eq!(
        timer::physical_cval(),
        u64::MAX,
        "sysreg: CNTP_CVAL_EL0 keeps all 64 bits"
    );
}

fn physical_timer_control() {
    timer::set_physical_cval(cpu::physical_counter() + cpu::ticks_from_ms(NOT_YET_MS));
    timer::set_physical_ctl(CTL_ENABLE | CTL_IMASK | CTL_ISTATUS);
    check_eq!(
        timer::physical_ctl(),
        CTL_ENABLE | CTL_IMASK,
        "sysreg: CNTP_CTL_EL0 keeps ENABLE and IMASK; ISTATUS is clear before CVAL and read-only"
    );

    let deadline = cpu::physical_counter() + cpu::ticks_from_ms(SOON_MS);
    timer::set_physical_cval(deadline);
    let passed = cpu::wait_until(TIMEOUT_MS, || cpu::physical_counter() > deadline);
    check!(
        passed,
        "sysreg: the physical counter passes CVAL",
        "CNTPCT_EL0 stayed below {deadline:#x} for {TIMEOUT_MS} ms"
    );
    check_eq!(
        timer::physical_ctl(),
        CTL_ENABLE | CTL_IMASK | CTL_ISTATUS,
        "sysreg: CNTP_CTL_EL0.ISTATUS is set once the counter passes CVAL"
    );

    timer::set_physical_cval(cpu::physical_counter() + cpu::ticks_from_ms(NOT_YET_MS));
    check_eq!(
        timer::physical_ctl() & CTL_ISTATUS,
        0,
        "sysreg: CNTP_CTL_EL0.ISTATUS clears when CVAL moves into the future"
    );
    timer::set_physical_ctl(0);
    check_eq!(
        timer::physical_ctl() & (CTL_ENABLE | CTL_IMASK),
        0,
        "sysreg: CNTP_CTL_EL0 can be turned off"
    );
}

fn physical_timer_timer_value() {
    timer::set_physical_ctl(CTL_ENABLE | CTL_IMASK);
    let ticks = cpu::ticks_from_ms(NOT_YET_MS);
    let tval = i32::try_from(ticks).unwrap_or(i32::MAX);
    let before = cpu::physical_counter();
    timer::set_physical_tval(tval);
    let after = cpu::physical_counter();
    let cval = timer::physical_cval();
    let expected = before + tval as u64..=after + tval as u64;
    check!(
        expected.contains(&cval),
        "sysreg: writing CNTP_TVAL_EL0 sets CVAL to the counter plus TVAL",
        "CVAL {cval:#x}, expected {:#x}..={:#x}",
        expected.start(),
        expected.end()
    );
    let read = timer::physical_tval();
    check!(
        read > 0 && read <= tval,
        "sysreg: CNTP_TVAL_EL0 counts down from the value written",
        "read {read}, wrote {tval}"
    );
    timer::set_physical_cval(cpu::physical_counter() - PAST_TICKS);
    let read = timer::physical_tval();
    check!(
        read <= -(PAST_TICKS as i32),
        "sysreg: CNTP_TVAL_EL0 is negative once CVAL has passed",
        "read {read}, expected at most -{PAST_TICKS}"
    );
    check!(
        timer::physical_ctl() & CTL_ISTATUS != 0,
        "sysreg: CNTP_CTL_EL0.ISTATUS is set for a CVAL in the past"
    );
    timer::set_physical_ctl(0);
}

/// `mrs` and `msr` of S3_1_C15_C0_0 (op0 = 3, CRn = 15: IMPLEMENTATION DEFINED)
/// must be UNDEFINED for the guest: an exception with EC 0x00 at that instruction.
fn implementation_defined_register() {
    let mut pc = 0;
    let read = catch(|| {
        // SAFETY: reading a system register touches no memory; the UNDEFINED
        // exception it should take is handled by `catch`.
        unsafe {
            asm!(
                "adr {pc}, 1f",
                "1: mrs {value}, s3_1_c15_c0_0",
                pc = out(reg) pc,
                value = out(reg) _,
                options(nostack, preserves_flags),
            );
        }
    });
    check!(
        read.is_some_and(|e| is_undefined_at(&e, pc)),
        "sysreg: MRS S3_1_C15_C0_0 (IMPLEMENTATION DEFINED) is UNDEFINED",
        "{}",
        describe(read)
    );
    let write = catch(|| {
        // SAFETY: as above; if the write took effect it would change an
        // IMPLEMENTATION DEFINED control, but Aerie must refuse it.
        unsafe {
            asm!(
                "adr {pc}, 1f",
                "1: msr s3_1_c15_c0_0, xzr",
                pc = out(reg) pc,
                options(nostack, preserves_flags),
            );
        }
    });
    check!(
        write.is_some_and(|e| is_undefined_at(&e, pc)),
        "sysreg: MSR S3_1_C15_C0_0 (IMPLEMENTATION DEFINED) is UNDEFINED",
        "{}",
        describe(write)
    );
}

/// An UNDEFINED instruction exception (EC 0x00, IL set) taken at `pc`.
fn is_undefined_at(exception: &Exception, pc: u64) -> bool {
    exception.ec() == esr::EC_UNKNOWN && exception.il() && exception.elr == pc
}

/// Reads system register `$name` inside [`catch`]; evaluates to (the exception, the
/// value read).
macro_rules! try_read {
    ($name:literal) => {{
        let mut value = u64::MAX;
        let taken = catch(|| {
            // SAFETY: reading a system register touches no memory; an exception is
            // handled by `catch`.
            unsafe {
                asm!(
                    concat!("mrs {}, ", $name),
                    out(reg) value,
                    options(nostack, preserves_flags),
                );
            }
        });
        (taken, value)
    }};
}

/// The geometry of a cache: log2 of the line size, ways, sets.
#[derive(Clone, Copy)]
struct CacheGeometry {
    line_shift: u32,
    ways: u64,
    sets: u64,
}

/// The level 1 data cache's geometry, or `None` when level 1 has no data cache.
/// Checks that the cache ID registers can be read.
fn l1_data_cache() -> Option<CacheGeometry> {
    let (taken, clidr) = try_read!("CLIDR_EL1");
    if !check!(
        taken.is_none(),
        "sysreg: CLIDR_EL1 can be read",
        "{}",
        describe(taken)
    ) || !CTYPE_DATA_CACHES.contains(&(clidr & CLIDR_CTYPE1_MASK))
    {
        return None;
    }
    let (_, mmfr2) = try_read!("ID_AA64MMFR2_EL1");
    let ccidx = (mmfr2 >> MMFR2_CCIDX_SHIFT) & MMFR2_CCIDX_MASK != 0;
    let select = catch(|| {
        // SAFETY: selecting the cache CCSIDR_EL1 describes touches no memory.
        unsafe {
            asm!(
                "msr CSSELR_EL1, {}",
                "isb",
                in(reg) CSSELR_L1_DATA,
                options(nostack, preserves_flags),
            );
        }
    });
    let (taken, ccsidr) = try_read!("CCSIDR_EL1");
    if !check!(
        select.is_none() && taken.is_none(),
        "sysreg: CSSELR_EL1 and CCSIDR_EL1 can be used",
        "{}; {}",
        describe(select),
        describe(taken)
    ) {
        return None;
    }
    let line_shift = (ccsidr & CCSIDR_LINE_SIZE_MASK) as u32 + CCSIDR_LINE_SIZE_BIAS;
    let (ways, sets) = if ccidx {
        (
            (ccsidr >> CCSIDR_ASSOCIATIVITY_SHIFT) & CCSIDR64_ASSOCIATIVITY_MASK,
            (ccsidr >> CCSIDR64_NUM_SETS_SHIFT) & CCSIDR64_NUM_SETS_MASK,
        )
    } else {
        (
            (ccsidr >> CCSIDR_ASSOCIATIVITY_SHIFT) & CCSIDR_ASSOCIATIVITY_MASK,
            (ccsidr >> CCSIDR_NUM_SETS_SHIFT) & CCSIDR_NUM_SETS_MASK,
        )
    };
    Some(CacheGeometry {
        line_shift,
        ways: (ways + 1).min(MAX_WAYS),
        sets: (sets + 1).min(MAX_SETS),
    })
}

/// A `dc *sw` instruction, given its set/way operand.
type SetWayOperation = fn(u64);

/// Runs `op` (a `dc *sw` instruction) on every set and way of a level 1 cache of
/// `geometry` (Arm ARM C5.3: way in the top log2(ways) bits of 32, set above the
/// line offset, level 0 in bits 3:1), or once with operand 0 without a data cache;
/// returns the number of operations.
fn for_each_set_way(geometry: Option<CacheGeometry>, op: SetWayOperation) -> u64 {
    let Some(CacheGeometry {
        line_shift,
        ways,
        sets,
    }) = geometry
    else {
        op(0);
        return 1;
    };
    let way_bits = u64::BITS - (ways - 1).leading_zeros();
    let way_shift = SET_WAY_WIDTH - way_bits;
    for way in 0..ways {
        for set in 0..sets {
            op((way << way_shift) | (set << line_shift));
        }
    }
    ways * sets
}

/// `dc cisw`.
fn dc_cisw(operand: u64) {
    // SAFETY: clean and invalidate by set/way writes dirty lines back first, so no
    // data is lost (and with the MMU off this guest has no line in the cache).
    unsafe { asm!("dc cisw, {}", in(reg) operand, options(nostack, preserves_flags)) }
}

/// `dc csw`.
fn dc_csw(operand: u64) {
    // SAFETY: a clean only writes dirty lines back.
    unsafe { asm!("dc csw, {}", in(reg) operand, options(nostack, preserves_flags)) }
}

/// `dc isw`.
fn dc_isw(operand: u64) {
    // SAFETY: with the MMU and caches off this guest has no line in the cache, and
    // under stage 2 the hardware performs DC ISW as a clean and invalidate anyway.
    unsafe { asm!("dc isw, {}", in(reg) operand, options(nostack, preserves_flags)) }
}

fn set_way_cache_maintenance() {
    let operations: [(&str, SetWayOperation); 3] =
        [("DC CISW", dc_cisw), ("DC CSW", dc_csw), ("DC ISW", dc_isw)];
    let geometry = l1_data_cache();
    for (name, operation) in operations {
        let mut count = 0;
        let taken = catch(|| count = for_each_set_way(geometry, operation));
        check!(
            taken.is_none(),
            format_args!("sysreg: {name} over every set and way of the L1 data cache completes"),
            "{} after {count} operations",
            describe(taken)
        );
    }
}

fn pmu_reads_as_zero() {
    let (_, dfr0) = try_read!("ID_AA64DFR0_EL1");
    let version = (dfr0 >> DFR0_PMUVER_SHIFT) & 0xF;
    if version != 0 {
        // The guest owns the host's PMU: the `pmu` guest tests it.
        println!("sysreg: the guest has a PMU (PMUVer {version}); not checking a hidden one");
        return;
    }
    let write = catch(|| {
        // SAFETY: PMCR_EL0.E = 1 would start the PMU counters if Aerie let the write
        // through; it touches no memory.
        unsafe {
            asm!(
                "msr PMCR_EL0, {}",
                "isb",
                in(reg) PMCR_E,
                options(nostack, preserves_flags),
            );
        }
    });
    check!(
        write.is_none(),
        "sysreg: writing PMCR_EL0 takes no exception",
        "{}",
        describe(write)
    );
    let registers = [
        ("PMCR_EL0", try_read!("PMCR_EL0")),
        ("PMCNTENSET_EL0", try_read!("PMCNTENSET_EL0")),
        ("PMCCNTR_EL0", try_read!("PMCCNTR_EL0")),
    ];
    for (name, (taken, value)) in registers {
        check!(
            taken.is_none() && value == 0,
            format_args!("sysreg: {name} reads as zero"),
            "{}, read {value:#x}",
            describe(taken)
        );
    }
}
