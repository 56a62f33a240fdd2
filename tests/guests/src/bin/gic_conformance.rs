//! The virtual GIC and the virtual timer behave as the architecture says, on a GICv3
//! and on a GICv2 (the guest finds which in its device tree), with two vCPUs:
//!
//! - interrupts made pending through the distributor arrive at once (within
//!   [`DELIVERY_MS`]) on the right vCPU: an SGI to itself, to a target list, to all
//!   but itself (GICv2 `GICD_SGIR` TargetListFilter 0b10, 0b00, 0b01; GICv3
//!   `ICC_SGI1R_EL1`), an SPI set pending with `GICD_ISPENDR` for either vCPU, and an
//!   SPI set pending and active, which arrives once it is deactivated with
//!   `GICD_ICACTIVER`;
//! - the virtual timer's interrupt (PPI 27) is a level: pending while the timer's
//!   condition holds (ENABLE, not IMASK, ISTATUS), and no longer pending, nor
//!   delivered, once the guest disables the timer, masks it or moves its compare
//!   value into the future; fired while disabled in the GIC, it is delivered when
//!   enabled again, and later firings are delivered too;
//! - and no interrupt arrives that was not sent.
//!
//! Specifications: Arm GICv3 architecture specification (IHI 0069H) 12.9
//! (GICD_ISPENDR, GICD_ISACTIVER, GICD_IROUTER), 12.11 (GICR_ISPENDR0) and
//! ICC_SGI1R_EL1; Arm GICv2 architecture specification (IHI 0048B) 4.3.15
//! (GICD_SGIR) and 4.4 (GICC_IAR, GICC_EOIR); Arm ARM D12.8 (the generic timers:
//! CNTV_CTL_EL0).
#![no_std]
#![no_main]

use core::arch::asm;

use aerie_test_guests::device::{read32, write8, write32};
use aerie_test_guests::gic::{self, reg, v3};
use aerie_test_guests::shared::Shared;
use aerie_test_guests::{check, check_eq, cpu, exception, println, smp, timer, write_icc};

aerie_test_guests::guest_main!(run);

/// How long an interrupt may take to arrive, in ms of counter time: "at once" with
/// room for a loaded host, far below the seconds a missed interrupt waits. Under
/// multi-threaded TCG on a 2-core host running several QEMUs (the test suite), a
/// vCPU or QEMU's timer thread can lose the CPU for well over 10 ms: with 10, this
/// guest failed about one run in 30 there, before and after the exit path rebuild
/// alike, always by a late interrupt.
const DELIVERY_MS: u64 = 50;
/// How long the guest watches for interrupts that must not arrive, in ms.
const QUIET_MS: u64 = 20;
/// How long the boot vCPU waits for vCPU 1 to start.
const START_MS: u64 = 5_000;
/// The SGI used.
const SGI: u32 = 3;
/// The SPI used (SPI 8): no device of the guest has it.
const SPI: u32 = 40;
/// The virtual timer's PPI.
const VTIMER: u32 = 27;
/// The priority given to every interrupt used (lower is more urgent).
const PRIORITY: u8 = 0x80;
/// INTIDs counted per vCPU; anything else is counted as unexpected.
const COUNTED: usize = 64;

/// Interrupts taken: `SEEN[vcpu][intid]`, and any other INTID per vCPU.
static SEEN: [[Shared; COUNTED]; 2] = [
    [const { Shared::new(0) }; COUNTED],
    [const { Shared::new(0) }; COUNTED],
];
static UNEXPECTED: [Shared; 2] = [const { Shared::new(0) }; 2];
/// vCPU 1 is set up and waiting for interrupts.
static SECONDARY_READY: Shared = Shared::new(0);

fn gicd() -> u64 {
    gic::distributor()
}

/// The bit of INTID `intid` in its one-bit-per-interrupt register, and that
/// register's offset from the block's start.
fn bit(intid: u32) -> (u64, u32) {
    (u64::from(intid / 32) * 4, 1 << (intid % 32))
}

/// The frame holding the registers of `intid` as vCPU `vcpu` sees them.
fn frame_of(intid: u32, vcpu: u64) -> u64 {
    if intid < 32 {
        gic::private_frame(vcpu)
    } else {
        gicd()
    }
}

/// Writes `intid`'s bit into the set/clear register block at `block`.
fn write_bit(block: u64, intid: u32, vcpu: u64) {
    let (offset, mask) = bit(intid);
    write32(frame_of(intid, vcpu) + block + offset, mask);
}

/// Whether `intid`'s bit is set in the register block at `block`.
fn read_bit(block: u64, intid: u32, vcpu: u64) -> bool {
    let (offset, mask) = bit(intid);
    read32(frame_of(intid, vcpu) + block + offset) & mask != 0
}

/// Sets up vCPU `vcpu`'s interface: its SGIs and the timer PPI at [`PRIORITY`] and
/// enabled.
fn setup_cpu_interface(vcpu: u64) {
    gic::enable_cpu_interface(vcpu, 0xFFFF | (1 << VTIMER), PRIORITY);
}

/// Sets up [`SPI`]: Group 1 on a GICv3, [`PRIORITY`], routed to vCPU `vcpu`,
/// disabled until [`route_spi`] is followed by an enable.
fn route_spi(vcpu: u64) {
    if v3() {
        let (offset, mask) = bit(SPI);
        let group = gicd() + reg::IGROUPR + offset;
        write32(group, read32(group) | mask);
        // Aff0 = vcpu; the upper half (Aff3) stays zero.
        write32(gicd() + reg::IROUTER + 8 * u64::from(SPI), vcpu as u32);
    } else {
        write8(gicd() + reg::ITARGETSR + u64::from(SPI), 1 << vcpu);
    }
    write8(gicd() + reg::IPRIORITYR + u64::from(SPI), PRIORITY);
    write_bit(reg::ISENABLER, SPI, 0);
}

/// The IRQ handler, on both vCPUs: acknowledges, counts, silences the timer, ends.
fn handle_irq() {
    let me = (cpu::mpidr() & 0xF) as usize;
    let iar = gic::acknowledge();
    // GICv2: the SGI's source CPU is in bits 12:10; the INTID in 9:0.
    let intid = (iar & 0x3FF) as usize;
    if intid >= 1020 {
        return;
    }
    if intid == VTIMER as usize {
        // Silence the timer before ending the interrupt, or it fires again.
        timer::set_virtual_ctl(timer::CTL_IMASK);
    }
    match SEEN.get(me).and_then(|seen| seen.get(intid)) {
        Some(count) => count.store(count.load() + 1),
        None => {
            let unexpected = &UNEXPECTED[me.min(1)];
            unexpected.store(unexpected.load() + 1);
        }
    }
    gic::end(iar);
}

fn enable_irqs() {
    // SAFETY: unmasking IRQs lets the handler this guest installed run.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

fn disable_irqs() {
    // SAFETY: masking IRQs only defers them.
    unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
}

/// vCPU 1: set up its interface and take interrupts in WFI, forever.
fn secondary(_slot: usize) {
    setup_cpu_interface(1);
    SECONDARY_READY.store(1);
    enable_irqs();
    loop {
        cpu::wait_for_interrupt();
    }
}

/// A snapshot of every counter, to compare after a step.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Counts {
    seen: [[u64; COUNTED]; 2],
    unexpected: [u64; 2],
}

impl Counts {
    fn now() -> Self {
        let mut counts = Counts {
            seen: [[0; COUNTED]; 2],
            unexpected: [0; 2],
        };
        for (vcpu, row) in counts.seen.iter_mut().enumerate() {
            for (intid, count) in row.iter_mut().enumerate() {
                *count = SEEN[vcpu][intid].load();
            }
            counts.unexpected[vcpu] = UNEXPECTED[vcpu].load();
        }
        counts
    }

    /// These counts with one more of `intid` on each vCPU in `vcpus`.
    fn plus(mut self, intid: u32, vcpus: &[usize]) -> Self {
        for &vcpu in vcpus {
            self.seen[vcpu][intid as usize] += 1;
        }
        self
    }

    /// What differs from `expected`, for a failure message.
    fn describe_against(&self, expected: &Counts) -> DiffText {
        let mut text = DiffText::default();
        for vcpu in 0..2 {
            for intid in 0..COUNTED {
                let (got, want) = (self.seen[vcpu][intid], expected.seen[vcpu][intid]);
                if got != want {
                    text.push(vcpu, intid as u64, got, want);
                }
            }
            if self.unexpected[vcpu] != expected.unexpected[vcpu] {
                text.push(
                    vcpu,
                    u64::MAX,
                    self.unexpected[vcpu],
                    expected.unexpected[vcpu],
                );
            }
        }
        text
    }
}

/// Up to four differences between two [`Counts`].
#[derive(Default)]
struct DiffText {
    entries: [(usize, u64, u64, u64); 4],
    len: usize,
}

impl DiffText {
    fn push(&mut self, vcpu: usize, intid: u64, got: u64, want: u64) {
        if let Some(slot) = self.entries.get_mut(self.len) {
            *slot = (vcpu, intid, got, want);
            self.len += 1;
        }
    }
}

impl core::fmt::Display for DiffText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &(vcpu, intid, got, want) in &self.entries[..self.len] {
            if intid == u64::MAX {
                write!(
                    f,
                    "vCPU {vcpu} took {got} unknown interrupts (expected {want}); "
                )?;
            } else {
                write!(
                    f,
                    "vCPU {vcpu} took INTID {intid} {got} times (expected {want}); "
                )?;
            }
        }
        Ok(())
    }
}

/// Runs `send` with IRQs unmasked on vCPU 0 and checks that the counters reach
/// `expected` within [`DELIVERY_MS`] and stay there for [`QUIET_MS`].
fn delivered(name: &str, expected: Counts, send: impl FnOnce()) {
    enable_irqs();
    send();
    let start = cpu::counter();
    let arrived = cpu::wait_until(DELIVERY_MS, || Counts::now() == expected);
    let took = cpu::us_from_ticks(cpu::counter() - start);
    cpu::wait_until(QUIET_MS, || false);
    disable_irqs();
    let after = Counts::now();
    check!(
        arrived && after == expected,
        format_args!("gic_conformance: {name}"),
        "{}(waited {took} us)",
        after.describe_against(&expected)
    );
}

fn run() {
    if !check!(
        gic::discover(),
        "gic_conformance: the device tree describes a GIC"
    ) {
        return;
    }
    println!("gic_conformance: GICv{}", gic::version());
    exception::set_irq_handler(handle_irq);
    gic::enable_distributor();
    setup_cpu_interface(0);
    smp::set_secondary_main(secondary);
    let started = smp::cpu_on(cpu::vcpu_mpidr(1), 1);
    if !check_eq!(
        started as i64,
        0,
        "gic_conformance: CPU_ON of vCPU 1 succeeds"
    ) {
        return;
    }
    let ready = cpu::wait_until(START_MS, || SECONDARY_READY.load() == 1);
    if !check!(ready, "gic_conformance: vCPU 1 is ready") {
        return;
    }
    sgis();
    spis();
    virtual_timer();
}

/// Sends [`SGI`]: GICv2 `GICD_SGIR` with `filter` and `targets`, or GICv3
/// `ICC_SGI1R_EL1` to the same vCPUs.
fn send_sgi(filter: u32, targets: u32) {
    if v3() {
        let value = match filter {
            0b01 => (u64::from(SGI) << 24) | (1 << 40),
            0b10 => (u64::from(SGI) << 24) | 1,
            _ => (u64::from(SGI) << 24) | u64::from(targets),
        };
        write_icc!("ICC_SGI1R_EL1", value);
    } else {
        write32(gicd() + reg::SGIR, (filter << 24) | (targets << 16) | SGI);
    }
}

fn sgis() {
    let how = if v3() { "ICC_SGI1R_EL1" } else { "GICD_SGIR" };
    delivered(
        &check_name(how, "an SGI to itself arrives at once"),
        Counts::now().plus(SGI, &[0]),
        || send_sgi(0b10, 0),
    );
    delivered(
        &check_name(how, "an SGI to a target list of vCPU 1 arrives at once"),
        Counts::now().plus(SGI, &[1]),
        || send_sgi(0b00, 0b10),
    );
    delivered(
        &check_name(
            how,
            "an SGI to a target list of both vCPUs arrives at once on both",
        ),
        Counts::now().plus(SGI, &[0, 1]),
        || send_sgi(0b00, 0b11),
    );
    delivered(
        &check_name(
            how,
            "an SGI to all but itself arrives at once on vCPU 1 only",
        ),
        Counts::now().plus(SGI, &[1]),
        || send_sgi(0b01, 0),
    );
}

/// "`how`: `what`" as a fixed string (the check names are printed whole).
fn check_name(how: &str, what: &str) -> Name {
    let mut name = Name::default();
    name.push(how);
    name.push(": ");
    name.push(what);
    name
}

/// A check name built at run time.
struct Name {
    bytes: [u8; 120],
    len: usize,
}

impl Default for Name {
    fn default() -> Self {
        Self {
            bytes: [0; 120],
            len: 0,
        }
    }
}

impl Name {
    fn push(&mut self, text: &str) {
        let take = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
    }
}

impl core::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?")
    }
}

fn spis() {
    for vcpu in [1u64, 0] {
        route_spi(vcpu);
        let name = if vcpu == 1 {
            "GICD_ISPENDR: an SPI routed to vCPU 1 arrives at once there"
        } else {
            "GICD_ISPENDR: an SPI routed to vCPU 0 arrives at once there"
        };
        delivered(name, Counts::now().plus(SPI, &[vcpu as usize]), || {
            write_bit(reg::ISPENDR, SPI, 0)
        });
    }
    // Pending and active: not delivered while active, delivered at once when
    // deactivated, on either vCPU.
    for vcpu in [1u64, 0] {
        route_spi(vcpu);
        let before = Counts::now();
        delivered(
            if vcpu == 1 {
                "GICD_ISACTIVER + ISPENDR: an active SPI for vCPU 1 is not delivered again"
            } else {
                "GICD_ISACTIVER + ISPENDR: an active SPI for vCPU 0 is not delivered again"
            },
            before,
            || {
                write_bit(reg::ISACTIVER, SPI, 0);
                write_bit(reg::ISPENDR, SPI, 0);
            },
        );
        check!(
            read_bit(reg::ISPENDR, SPI, 0) && read_bit(reg::ISACTIVER, SPI, 0),
            if vcpu == 1 {
                "gic_conformance: GICD_ISPENDR and ISACTIVER read the SPI for vCPU 1 pending and active"
            } else {
                "gic_conformance: GICD_ISPENDR and ISACTIVER read the SPI for vCPU 0 pending and active"
            }
        );
        delivered(
            if vcpu == 1 {
                "GICD_ICACTIVER: the pending SPI then arrives at once on vCPU 1"
            } else {
                "GICD_ICACTIVER: the pending SPI then arrives at once on vCPU 0"
            },
            before.plus(SPI, &[vcpu as usize]),
            || write_bit(reg::ICACTIVER, SPI, 0),
        );
    }
    write_bit(reg::ICENABLER, SPI, 0);
    moved_spi();
}

/// Points [`SPI`] at vCPU `vcpu` alone (GICD_IROUTER on a GICv3, GICD_ITARGETSR on
/// a GICv2), changing nothing else.
fn retarget_spi(vcpu: u64) {
    if v3() {
        write32(gicd() + reg::IROUTER + 8 * u64::from(SPI), vcpu as u32);
    } else {
        write8(gicd() + reg::ITARGETSR + u64::from(SPI), 1 << vcpu);
    }
}

/// An SPI pending for vCPU 0 (which has IRQs masked, so it stays there, in a list
/// register once vCPU 0 has run) and then routed to vCPU 1 reaches vCPU 1 within
/// [`DELIVERY_MS`]: the routing write itself makes it deliverable there and kicks
/// vCPU 1 out of its WFI, with no timer tick or later exit needed; vCPU 0 never
/// takes it, even once it unmasks IRQs.
fn moved_spi() {
    disable_irqs();
    route_spi(0);
    write_bit(reg::ISPENDR, SPI, 0);
    // A few exits on vCPU 0, so that its list registers take the SPI.
    for _ in 0..3 {
        let _ = read32(gicd() + reg::GICD_CTLR);
    }
    let expected = Counts::now().plus(SPI, &[1]);
    retarget_spi(1);
    let start = cpu::counter();
    let arrived = cpu::wait_until(DELIVERY_MS, || Counts::now() == expected);
    let took = cpu::us_from_ticks(cpu::counter() - start);
    enable_irqs();
    cpu::wait_until(QUIET_MS, || false);
    disable_irqs();
    let after = Counts::now();
    check!(
        arrived && after == expected,
        if v3() {
            "gic_conformance: GICD_IROUTER: a pending SPI moved from vCPU 0 to vCPU 1 arrives at once there, and only there"
        } else {
            "gic_conformance: GICD_ITARGETSR: a pending SPI moved from vCPU 0 to vCPU 1 arrives at once there, and only there"
        },
        "{}(waited {took} us)",
        after.describe_against(&expected)
    );
    write_bit(reg::ICENABLER, SPI, 0);
}

/// Whether the virtual timer's PPI reads pending (GICR_ISPENDR0 / GICD_ISPENDR0).
fn timer_pending() -> bool {
    read_bit(reg::ISPENDR, VTIMER, 0)
}

/// Arms the virtual timer to fire at once and waits (IRQs masked) until its
/// condition holds.
fn fire_timer() -> bool {
    timer::set_virtual_cval(cpu::counter());
    timer::set_virtual_ctl(timer::CTL_ENABLE);
    cpu::wait_until(DELIVERY_MS, || {
        timer::virtual_ctl() & timer::CTL_ISTATUS != 0
    })
}

fn virtual_timer() {
    let ppi = if v3() {
        "GICR_ISPENDR0"
    } else {
        "GICD_ISPENDR0"
    };
    let silencers: [(&str, fn()); 3] = [
        ("disabling the timer (ENABLE = 0)", || {
            timer::set_virtual_ctl(0)
        }),
        ("masking the timer (IMASK = 1)", || {
            timer::set_virtual_ctl(timer::CTL_ENABLE | timer::CTL_IMASK)
        }),
        ("moving CNTV_CVAL_EL0 into the future", || {
            timer::set_virtual_cval(cpu::counter() + cpu::ticks_from_ms(60_000))
        }),
    ];
    for (what, silence) in silencers {
        disable_irqs();
        let fired = fire_timer();
        let pending = timer_pending();
        check!(
            fired && pending,
            format_args!(
                "gic_conformance: {ppi}: the expired virtual timer's PPI 27 reads pending (then {what})"
            ),
            "condition met: {fired}, pending: {pending}"
        );
        silence();
        check!(
            !timer_pending(),
            format_args!("gic_conformance: {ppi}: {what} clears the PPI 27 pending state")
        );
        delivered(
            &check_name(what, "then PPI 27 is not delivered"),
            Counts::now(),
            || {},
        );
        timer::set_virtual_ctl(0);
    }

    // Disabled in the GIC: still pending while the condition holds, delivered once
    // enabled again.
    disable_irqs();
    write_bit(reg::ICENABLER, VTIMER, 0);
    let fired = fire_timer();
    check!(
        fired && timer_pending(),
        format_args!(
            "gic_conformance: {ppi}: PPI 27 disabled in the GIC still reads pending when the timer expires"
        )
    );
    delivered(
        "the virtual timer's PPI 27, disabled in the GIC, is not delivered",
        Counts::now(),
        || {},
    );
    delivered(
        "PPI 27 enabled again in the GIC is delivered at once",
        Counts::now().plus(VTIMER, &[0]),
        || write_bit(reg::ISENABLER, VTIMER, 0),
    );
    timer::set_virtual_ctl(0);
    delivered(
        "the virtual timer armed again fires again",
        Counts::now().plus(VTIMER, &[0]),
        || {
            timer::set_virtual_cval(cpu::counter() + cpu::ticks_from_ms(1));
            timer::set_virtual_ctl(timer::CTL_ENABLE);
        },
    );
    timer::set_virtual_ctl(0);

    // Disabled in the GIC, expired, silenced, enabled again: nothing; armed again:
    // delivered.
    disable_irqs();
    write_bit(reg::ICENABLER, VTIMER, 0);
    let fired = fire_timer();
    timer::set_virtual_ctl(0);
    check!(
        fired && !timer_pending(),
        format_args!(
            "gic_conformance: {ppi}: PPI 27 disabled in the GIC, its timer expired then disabled, is not pending"
        )
    );
    delivered(
        "that PPI 27 enabled again in the GIC is not delivered",
        Counts::now(),
        || write_bit(reg::ISENABLER, VTIMER, 0),
    );
    delivered(
        "the virtual timer armed after that fires",
        Counts::now().plus(VTIMER, &[0]),
        || {
            timer::set_virtual_cval(cpu::counter() + cpu::ticks_from_ms(1));
            timer::set_virtual_ctl(timer::CTL_ENABLE);
        },
    );
    timer::set_virtual_ctl(0);
    delivered(
        "no interrupt arrives that was not sent",
        Counts::now(),
        || {},
    );
}
