//! The guest's PMU counts, overflows and interrupts, on a GICv3 or a GICv2 (the
//! guest finds which in its device tree), on a host with a PMUv3 and its PPI:
//!
//! - the device tree has an `arm,armv8-pmuv3` node with PPI 7 (INTID 23), and
//!   ID_AA64DFR0_EL1.PMUVer names a PMUv3;
//! - PMCR_EL0.N is at least 2; the cycle counter moves; PMCEID0 advertises
//!   INST_RETIRED (event 0x08) and an event counter counting it counts at least the
//!   instructions of a loop;
//! - a counter that is not enabled (PMCNTENSET) does not move, nor does an enabled
//!   one while PMCR_EL0.E is clear;
//! - an event counter and the cycle counter set just below their 32-bit overflow
//!   overflow (PMOVSSET) and raise INTID 23;
//! - the overflow interrupt is a level: with IRQs masked it reads pending in the
//!   GIC, and once the guest clears the overflow (PMOVSCLR) it is no longer pending
//!   and never delivered.
//!
//! Specification: Arm ARM DDI 0487, D13 (the Performance Monitors Extension:
//! counters, PMCR_EL0.E/N/LC, overflow and its interrupt request, D13.4), and the
//! registers PMCR_EL0, PMCNTENSET/CLR_EL0, PMINTENSET/CLR_EL1, PMOVSSET/CLR_EL0,
//! PMCCNTR_EL0, PMCCFILTR_EL0, PMEVCNTR<n>_EL0, PMEVTYPER<n>_EL0, PMCEID0_EL0;
//! Linux `Documentation/devicetree/bindings/arm/pmu.yaml`.
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::shared::Shared;
use aerie_test_guests::{check, check_eq, cpu, devtree, exception, gic, println};

aerie_test_guests::guest_main!(run);

/// The PMU's interrupt: PPI 7.
const PMU_INTID: u32 = 23;
/// The interrupt specifier the device tree must give: PPI 7, level high.
const PMU_INTERRUPTS: [u32; 3] = [1, 7, 4];
/// ID_AA64DFR0_EL1.PMUVer (bits 11:8): PMUv3 (1) up to PMUv3p5 (6), Aerie's cap.
const PMUVER_SHIFT: u32 = 8;
const PMUVER_MAX: u64 = 6;
/// PMCR_EL0 bits: E (enable), P (reset event counters), C (reset the cycle counter),
/// N (bits 15:11).
const PMCR_E: u64 = 1 << 0;
const PMCR_P: u64 = 1 << 1;
const PMCR_C: u64 = 1 << 2;
const PMCR_N_SHIFT: u32 = 11;
const PMCR_N_MASK: u64 = 0x1F;
/// The cycle counter's bit in the enable, interrupt and overflow registers.
const CYCLES: u64 = 1 << 31;
/// Event INST_RETIRED (instructions architecturally executed).
const INST_RETIRED: u64 = 0x08;
/// Iterations of the busy loop (two instructions each).
const LOOP: u64 = 10_000;
/// A 32-bit counter this close to overflow overflows within the busy loop.
const NEAR_OVERFLOW: u64 = 0xFFFF_FFFF - 1_000;
/// Every counter bit of the set/clear registers.
const ALL: u64 = 0xFFFF_FFFF;
/// How long the overflow interrupt may take to arrive, in ms of counter time.
const DELIVERY_MS: u64 = 50;
/// How long the guest watches for an interrupt that must not arrive, in ms.
const QUIET_MS: u64 = 20;
/// The priority of the PMU's interrupt.
const PRIORITY: u8 = 0x80;

/// Overflow interrupts taken, and PMOVSSET_EL0 as the last one found it.
static TAKEN: Shared = Shared::new(0);
static OVERFLOW_SEEN: Shared = Shared::new(0);
/// Interrupts other than the PMU's.
static UNEXPECTED: Shared = Shared::new(0);

/// Reads PMU register `$name`.
macro_rules! pmu_read {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading a PMU register touches no memory and has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags)) };
        value
    }};
}

/// Writes PMU register `$name`.
macro_rules! pmu_write {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the PMU only counts and raises its interrupt, which this guest
        // handles; no memory, stack or translation state changes.
        unsafe { asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) value, options(nomem, nostack, preserves_flags)) };
    }};
}

/// Runs `iterations` iterations of a two-instruction loop.
fn busy(iterations: u64) {
    // SAFETY: a register-only countdown loop.
    unsafe {
        asm!("1: subs {0}, {0}, #1", "b.ne 1b", inout(reg) iterations => _,
            options(nomem, nostack))
    };
}

fn enable_irqs() {
    // SAFETY: unmasking IRQs lets the handler this guest installed run.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

fn disable_irqs() {
    // SAFETY: masking IRQs only defers them.
    unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
}

/// The IRQ handler: records the overflow flags, clears them (the interrupt is a
/// level), ends the interrupt.
fn handle_irq() {
    let iar = gic::acknowledge();
    let intid = (iar & 0x3FF) as u32;
    if intid >= 1020 {
        return;
    }
    if intid == PMU_INTID {
        let overflow = pmu_read!("PMOVSSET_EL0");
        OVERFLOW_SEEN.store(overflow);
        pmu_write!("PMOVSCLR_EL0", overflow);
        TAKEN.store(TAKEN.load() + 1);
    } else {
        UNEXPECTED.store(UNEXPECTED.load() + 1);
    }
    gic::end(iar);
}

/// The `interrupts` of the device tree's PMUv3 node, if it has one of three cells.
fn device_tree_pmu() -> Option<[u32; 3]> {
    devtree::with_device_tree(|tree| {
        let node = tree.find_compatible(&["arm,armv8-pmuv3"])?;
        let value = node.property("interrupts")?.value;
        let cell = |n: usize| {
            let bytes = value.get(4 * n..4 * n + 4)?;
            Some(u32::from_be_bytes(bytes.try_into().ok()?))
        };
        (value.len() == 12).then_some([cell(0)?, cell(1)?, cell(2)?])
    })
    .ok()
    .flatten()
}

fn run() {
    if !check!(gic::discover(), "pmu: the device tree describes a GIC") {
        return;
    }
    println!("pmu: GICv{}", gic::version());
    let node = device_tree_pmu();
    check!(
        node == Some(PMU_INTERRUPTS),
        "pmu: the device tree's arm,armv8-pmuv3 node has PPI 7 (INTID 23), level high",
        "interrupts {node:?}"
    );
    let dfr0 = pmu_read!("ID_AA64DFR0_EL1");
    let version = (dfr0 >> PMUVER_SHIFT) & 0xF;
    check!(
        (1..=PMUVER_MAX).contains(&version),
        "pmu: ID_AA64DFR0_EL1.PMUVer names a PMUv3",
        "PMUVer {version}"
    );
    let counters = (pmu_read!("PMCR_EL0") >> PMCR_N_SHIFT) & PMCR_N_MASK;
    println!("pmu: PMCR_EL0.N = {counters}");
    if !check!(
        counters >= 2,
        "pmu: PMCR_EL0.N is at least 2",
        "N = {counters}"
    ) {
        return;
    }
    cycle_counter();
    event_counter();
    disabled_counters();
    exception::set_irq_handler(handle_irq);
    gic::enable_distributor();
    gic::enable_cpu_interface(0, 1 << PMU_INTID, PRIORITY);
    overflow_interrupts();
    overflow_is_a_level();
    check_eq!(UNEXPECTED.load(), 0, "pmu: no other interrupt arrives");
}

/// Starts from a reset PMU: every counter off and zero, no overflow, no interrupt.
fn reset() {
    pmu_write!("PMCNTENCLR_EL0", ALL);
    pmu_write!("PMINTENCLR_EL1", ALL);
    pmu_write!("PMOVSCLR_EL0", ALL);
    pmu_write!("PMCR_EL0", PMCR_P | PMCR_C);
}

fn cycle_counter() {
    reset();
    // Count at EL1 and EL0 (filter bits clear).
    pmu_write!("PMCCFILTR_EL0", 0);
    pmu_write!("PMCNTENSET_EL0", CYCLES);
    pmu_write!("PMCR_EL0", PMCR_E);
    let before = pmu_read!("PMCCNTR_EL0");
    busy(LOOP);
    let after = pmu_read!("PMCCNTR_EL0");
    check!(
        after > before,
        "pmu: the cycle counter moves",
        "PMCCNTR_EL0 {before} then {after}"
    );
}

fn event_counter() {
    let ceid0 = pmu_read!("PMCEID0_EL0");
    println!("pmu: PMCEID0_EL0 = {ceid0:#x}");
    check!(
        ceid0 & (1 << INST_RETIRED) != 0,
        "pmu: PMCEID0_EL0 advertises INST_RETIRED (event 0x08)",
        "PMCEID0_EL0 {ceid0:#x}"
    );
    reset();
    pmu_write!("PMEVTYPER0_EL0", INST_RETIRED);
    pmu_write!("PMCNTENSET_EL0", 1);
    pmu_write!("PMCR_EL0", PMCR_E);
    let before = pmu_read!("PMEVCNTR0_EL0");
    busy(LOOP);
    let after = pmu_read!("PMEVCNTR0_EL0");
    check!(
        after.wrapping_sub(before) >= 2 * LOOP,
        "pmu: an INST_RETIRED counter counts the loop's instructions",
        "PMEVCNTR0_EL0 {before} then {after}, loop of {} instructions",
        2 * LOOP
    );
}

fn disabled_counters() {
    reset();
    // Counter 1 counts instructions but is not enabled; counter 0 is.
    pmu_write!("PMEVTYPER1_EL0", INST_RETIRED);
    pmu_write!("PMEVCNTR1_EL0", 5);
    pmu_write!("PMEVTYPER0_EL0", INST_RETIRED);
    pmu_write!("PMCNTENSET_EL0", 1);
    pmu_write!("PMCR_EL0", PMCR_E);
    busy(LOOP);
    let disabled = pmu_read!("PMEVCNTR1_EL0");
    check_eq!(
        disabled,
        5,
        "pmu: a counter not enabled in PMCNTENSET_EL0 does not move"
    );
    pmu_write!("PMCR_EL0", 0);
    let before = pmu_read!("PMEVCNTR0_EL0");
    busy(LOOP);
    let after = pmu_read!("PMEVCNTR0_EL0");
    check!(
        before > 0 && after == before,
        "pmu: an enabled counter does not move while PMCR_EL0.E is clear",
        "PMEVCNTR0_EL0 {before} then {after}"
    );
}

/// Sets counter `bit` (31: the cycle counter, else event counter 0 counting
/// instructions) just below its overflow with its interrupt enabled, and starts it.
fn arm_overflow(bit: u64) {
    reset();
    pmu_write!("PMCCFILTR_EL0", 0);
    pmu_write!("PMEVTYPER0_EL0", INST_RETIRED);
    if bit == CYCLES {
        pmu_write!("PMCCNTR_EL0", NEAR_OVERFLOW);
    } else {
        pmu_write!("PMEVCNTR0_EL0", NEAR_OVERFLOW);
    }
    pmu_write!("PMINTENSET_EL1", bit);
    pmu_write!("PMCNTENSET_EL0", bit);
    pmu_write!("PMCR_EL0", PMCR_E);
}

/// Whether counter `bit` has overflowed, reading the counter first: QEMU (TCG)
/// notices an event counter's overflow only when it next updates the PMU (a PMU
/// register access, an exception level change), not when it happens as the
/// hardware does (its cycle counter it notices on time). Reading the counter is
/// what a guest may do anyway, and costs no exit.
fn overflowed(bit: u64) -> bool {
    if bit == CYCLES {
        let _ = pmu_read!("PMCCNTR_EL0");
    } else {
        let _ = pmu_read!("PMEVCNTR0_EL0");
    }
    pmu_read!("PMOVSSET_EL0") & bit != 0
}

fn overflow_interrupts() {
    for (bit, what) in [(1, "event counter 0"), (CYCLES, "the cycle counter")] {
        let taken = TAKEN.load();
        OVERFLOW_SEEN.store(0);
        enable_irqs();
        arm_overflow(bit);
        let arrived = cpu::wait_until(DELIVERY_MS, || {
            let _ = overflowed(bit);
            TAKEN.load() > taken
        });
        disable_irqs();
        reset();
        let seen = OVERFLOW_SEEN.load();
        check!(
            arrived && seen & bit != 0,
            format_args!("pmu: {what} overflows (PMOVSSET_EL0) and raises INTID 23"),
            "interrupt {}, PMOVSSET_EL0 {seen:#x} in the handler",
            if arrived { "taken" } else { "not taken" }
        );
    }
}

fn overflow_is_a_level() {
    let taken = TAKEN.load();
    arm_overflow(1);
    let flagged = cpu::wait_until(DELIVERY_MS, || overflowed(1));

    // Give the physical interrupt time to reach Aerie and the vGIC.
    let pending = cpu::wait_until(DELIVERY_MS, || gic::private_pending(0, PMU_INTID));
    check!(
        flagged && pending,
        "pmu: with IRQs masked, an overflow reads pending in the GIC",
        "overflowed {flagged}, pending {pending}"
    );
    pmu_write!("PMOVSCLR_EL0", 1);
    let cleared = !gic::private_pending(0, PMU_INTID);
    check!(
        cleared,
        "pmu: clearing the overflow (PMOVSCLR_EL0) clears the pending state"
    );
    reset();
    enable_irqs();
    cpu::wait_until(QUIET_MS, || false);
    disable_irqs();
    check_eq!(
        TAKEN.load(),
        taken,
        "pmu: the cleared overflow is not delivered"
    );
}
