//! The exit-cost micro-benchmark of `cargo xtask bench`: it times, in ticks of the
//! virtual counter (CNTVCT_EL0) over many iterations, the operations a hypervisor
//! makes expensive, and prints one line per result for xtask to read:
//!
//! ```text
//! aerie-bench: host=aerie frequency=62500000
//! aerie-bench: row=hvc-psci-version iterations=20000 ticks=123456
//! aerie-bench: skip=mmio-testdev-id reason=no-test-device
//! aerie-bench: done
//! ```
//!
//! | row | what one operation is |
//! |---|---|
//! | `loop` | an empty iteration of the timing loop (subtracted by xtask from the rows below) |
//! | `hvc-psci-version` | `HVC #0` with PSCI_VERSION (DEN 0022, 5.1.1) and back: the cheapest call every host answers |
//! | `hvc-aerie-revision` | `HVC #0` with Aerie's REVISION hypercall (`hyp/src/hypercall.rs`), which does nothing (Aerie only) |
//! | `mmio-testdev-id` | a 32-bit load of Aerie's test device ID register (0x0906_0000), emulated by Aerie |
//! | `mmio-pl011-fr` | a 32-bit load of the PL011's flag register UARTFR (PL011 TRM 3.3.3; also in Xen's SBSA UART), an emulated device register wherever the UART is |
//! | `mmio-virtio-id` | a 32-bit load of the DeviceID register (offset 0x8, virtio 1.2 section 4.2.2) of the first virtio-mmio transport |
//! | `gicd-typer` | a 32-bit load of GICD_TYPER (distributor + 0x4, GICv3 spec 12.9.38) |
//! | `ipi-round-trip` | vCPU 0 writes ICC_SGI1R_EL1 and waits in WFI; vCPU 1, woken from WFI, answers with an SGI from its handler; until vCPU 0's handler runs |
//! | `counter-read` | one `isb; mrs CNTVCT_EL0`, as the handler brackets ack + EOI with (xtask subtracts it from `irq-ack-eoi`) |
//! | `irq-ack-eoi` | ICC_IAR1_EL1 read + ICC_EOIR1_EL1 write in vCPU 1's IPI handler, between two counter reads |
//! | `vtimer-busy` | from the virtual timer's deadline (CNTV_CVAL_EL0) to the handler, vCPU spinning with IRQs unmasked |
//! | `vtimer-wfi` | the same with the vCPU waiting in WFI |
//!
//! `cargo xtask profile ROW` boots this guest under Aerie with `aerie-bench.profile=ROW`
//! on its command line (the device tree's `/chosen/bootargs`): it then runs only that
//! row, over and over, and xtask cuts QEMU's execution log into operations at the
//! entry of the row's `bench_mark_*` function, which runs once per operation.
//!
//! Where it runs, and how it talks:
//!
//! - under Aerie (x0 holds Aerie's device tree): output through Aerie's DEBUG_WRITE
//!   hypercall, end through EXIT;
//! - under another hypervisor (a device tree, but no answer to Aerie's CALL_UID
//!   hypercall; host `peer`): Xen, as a dom0less domU. Output through the emulated
//!   SBSA UART Xen gives the domain (`vpl011`), end through PSCI SYSTEM_OFF (the
//!   domain stops; xtask stops QEMU once it has read `done`);
//! - on QEMU without a hypervisor ("bare": `-kernel bench` as an ELF, which QEMU
//!   loads at its link address and enters at EL1 with x0 = 0, and no device tree):
//!   output by polling the PL011 at 0x0900_0000, end through PSCI SYSTEM_OFF, which
//!   QEMU's own PSCI implements (conduit HVC when the machine has no EL2). HVCs are
//!   answered by QEMU itself, so the HVC row there is the cost of an instruction, not
//!   of an exit: the baseline, labelled so in the report.
//!
//! The GIC's, the UART's and the first virtio-mmio transport's addresses come from
//! the device tree (`arm,gic-v3`: the distributor, then the redistributors;
//! `arm,pl011` or `arm,sbsa-uart`; the lowest `virtio,mmio`), QEMU virt's without
//! one (whose virtio-mmio transports exist even when empty).
//!
//! The GIC is set up as Linux does (GICv3 spec 12.1 and 12.11, Linux's
//! `irq-gic-v3.c`): affinity routing and group 1 on at the distributor, the
//! redistributor woken (GICR_WAKER), SGI 1 and PPI 27 (the virtual timer) in group 1
//! with priority 0x80 and enabled, and on each CPU the system register interface
//! (ICC_SRE_EL1), the priority mask (ICC_PMR_EL1) and group 1 (ICC_IGRPEN1_EL1). This
//! guest installs its own exception vectors, whose IRQ entry calls [`bench_irq`].
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};

use aerie_test_guests::cpu::{self, counter};
use aerie_test_guests::device::{read32, write32};
use aerie_test_guests::shared::Shared;
use aerie_test_guests::smccc::{self, psci};
use aerie_test_guests::{devtree, read_icc, smp, timer, write_icc};

aerie_test_guests::guest_main!(run);

/// What every output line starts with.
const PREFIX: &str = "aerie-bench: ";

/// Iterations of the HVC and MMIO rows.
const CALLS: u64 = 20_000;
/// IPIs sent.
const IPIS: u64 = 1_000;
/// Timer interrupts taken, for each of the two timer rows.
const TIMER_SHOTS: u64 = 300;
/// How far ahead each timer deadline is, in counter ticks (0.1 ms at 62.5 MHz):
/// long enough for the guest to be waiting when it comes.
const TIMER_DELTA: u64 = 6_250;
/// How long the boot vCPU waits for anything the other one should do, in ms.
const WAIT_MS: u64 = 5_000;

/// Aerie's hypercall REVISION (`hyp/src/hypercall.rs`).
const AERIE_REVISION: u32 = 0xC600_FF03;

/// Aerie's test device, and its ID register ("AETD").
const TEST_DEVICE: u64 = 0x0906_0000;
const TEST_DEVICE_COMPATIBLE: &str = "aerie,test-device";
/// The PL011 UART of QEMU virt and Aerie's guests, the device tree names of a PL011
/// and of the SBSA generic UART (a PL011 subset, which Xen emulates for a domU), and
/// the registers this guest uses (PL011 TRM 3.3): data, flags (TXFF: transmit FIFO
/// full) and control (UARTEN, TXE; not in the SBSA UART).
const UART: u64 = 0x0900_0000;
const UART_COMPATIBLES: [&str; 2] = ["arm,pl011", "arm,sbsa-uart"];
const UARTDR: u64 = 0x000;
const UARTFR: u64 = 0x018;
const UARTFR_TXFF: u32 = 1 << 5;
const UARTCR: u64 = 0x030;
const UARTCR_ENABLE_TX: u32 = (1 << 0) | (1 << 8);
/// The first virtio-mmio transport of QEMU virt and Aerie's guests, the device
/// tree's name of a transport, and the DeviceID register (virtio 1.2, 4.2.2).
const VIRTIO_MMIO: u64 = 0x0a00_0000;
const VIRTIO_MMIO_COMPATIBLE: &str = "virtio,mmio";
const VIRTIO_DEVICE_ID: u64 = 0x008;
/// The device tree's name of a GICv3.
const GIC_V3_COMPATIBLE: &str = "arm,gic-v3";
/// Aerie's hypercall CALL_UID, and the first two words of the UID it returns
/// (`hyp/src/hypercall.rs`); another hypervisor answers NOT_SUPPORTED.
const AERIE_CALL_UID: u32 = 0xC600_FF01;
const AERIE_UID: [u64; 2] = [0xa3e1_e5c0, 0x7d1b_4b8e];

/// GICv3 addresses of QEMU virt and of Aerie's guests (`hyp/src/guest_layout.rs`).
mod gic {
    /// The distributor of QEMU virt and Aerie's guests.
    pub const GICD: u64 = 0x0800_0000;
    /// GICD_CTLR (GICv3 spec 12.9.4).
    pub const GICD_CTLR: u64 = 0x0000;
    /// GICD_TYPER (12.9.38).
    pub const GICD_TYPER: u64 = 0x0004;
    /// GICD_CTLR: Register Write Pending.
    pub const GICD_CTLR_RWP: u32 = 1 << 31;
    /// GICD_CTLR as Linux writes it: ARE_NS (bit 4), EnableGrp1A (bit 1) and
    /// EnableGrp1 (bit 0; EnableGrp0 with a single security state).
    pub const GICD_CTLR_ENABLE: u32 = (1 << 4) | (1 << 1) | (1 << 0);
    /// The first redistributor of QEMU virt and Aerie's guests, and the distance
    /// between two.
    pub const GICR: u64 = 0x080a_0000;
    pub const GICR_STRIDE: u64 = 0x2_0000;
    /// GICR_WAKER (12.11.40): ProcessorSleep and ChildrenAsleep.
    pub const GICR_WAKER: u64 = 0x0014;
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
    /// The SGI frame, 64 KiB into each redistributor, and its registers.
    pub const SGI_FRAME: u64 = 0x1_0000;
    pub const GICR_IGROUPR0: u64 = 0x0080;
    pub const GICR_ISENABLER0: u64 = 0x0100;
    pub const GICR_IPRIORITYR: u64 = 0x0400;
    /// The interrupt ID field of ICC_IAR1_EL1, and the spurious ID.
    pub const INTID_MASK: u64 = 0xFF_FFFF;
    pub const SPURIOUS: u64 = 1023;
    /// ICC_SRE_EL1: SRE, DFB, DIB.
    pub const SRE: u64 = 0b111;
    /// ICC_SGI1R_EL1 field shift: INTID in bits 27:24 (TargetList in 15:0).
    pub const SGI1R_INTID_SHIFT: u32 = 24;
}

/// The SGI used for the IPI row.
const BENCH_SGI: u32 = 1;
/// The virtual timer's PPI as an INTID.
const VTIMER_INTID: u32 = 27;
/// The priority given to both (lower is more urgent; 0xFF is the mask).
const PRIORITY: u32 = 0x80;

/// Where this guest runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// Under Aerie.
    Aerie,
    /// Directly on QEMU, no hypervisor.
    Bare,
    /// Under another hypervisor (Xen, as a dom0less domU).
    Peer,
}

impl Host {
    fn name(self) -> &'static str {
        match self {
            Host::Aerie => "aerie",
            Host::Bare => "bare",
            Host::Peer => "peer",
        }
    }
}

/// The host, as [`HOST_AERIE`], [`HOST_BARE`] or [`HOST_PEER`], decided at the start.
static HOST: Shared = Shared::new(HOST_AERIE);
const HOST_AERIE: u64 = 0;
const HOST_BARE: u64 = 1;
const HOST_PEER: u64 = 2;
/// The devices' addresses, from the device tree (QEMU virt's without one); 0 for
/// the UART or the virtio-mmio transport means there is none.
static UART_BASE: Shared = Shared::new(UART);
static VIRTIO_BASE: Shared = Shared::new(VIRTIO_MMIO);
static GICD_BASE: Shared = Shared::new(gic::GICD);
static GICR_BASE: Shared = Shared::new(gic::GICR);

fn host() -> Host {
    match HOST.load() {
        HOST_BARE => Host::Bare,
        HOST_PEER => Host::Peer,
        _ => Host::Aerie,
    }
}

fn uart() -> u64 {
    UART_BASE.load()
}

fn gicd() -> u64 {
    GICD_BASE.load()
}

fn gicr() -> u64 {
    GICR_BASE.load()
}

/// Writes text where the host shows it.
struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        match host() {
            Host::Aerie => smccc::debug_write(text.as_bytes()),
            Host::Bare | Host::Peer if uart() != 0 => text.bytes().for_each(uart_put),
            Host::Bare | Host::Peer => {}
        }
        Ok(())
    }
}

/// Sends one byte through the PL011, waiting while its FIFO is full.
fn uart_put(byte: u8) {
    while read32(uart() + UARTFR) & UARTFR_TXFF != 0 {}
    write32(uart() + UARTDR, u32::from(byte));
}

/// Prints one line, prefixed with [`PREFIX`]. The line is formatted into a buffer
/// first so that a hypercall sends it whole.
fn report(args: fmt::Arguments<'_>) {
    let mut line = Line {
        bytes: [0; 200],
        len: 0,
    };
    let _ = line.write_str(PREFIX);
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    let _ = Console.write_str(line.as_str());
}

/// A fixed buffer of text.
struct Line {
    bytes: [u8; 200],
    len: usize,
}

impl Line {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("(not UTF-8)")
    }
}

impl Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

macro_rules! report {
    ($($arg:tt)*) => { report(format_args!($($arg)*)) };
}

/// Ends the run: Aerie's EXIT hypercall, or PSCI SYSTEM_OFF elsewhere.
fn finish(status: u8) -> ! {
    if host() != Host::Aerie {
        smccc::psci_call(psci::SYSTEM_OFF, 0, 0, 0);
        loop {
            cpu::wait_for_interrupt();
        }
    }
    smccc::exit(status)
}

/// The body of the empty timing loop: no instruction, but the compiler may not
/// remove the loop around it.
fn nothing() {
    // SAFETY: an empty assembly block does nothing.
    unsafe { asm!("", options(nomem, nostack, preserves_flags)) };
}

/// Times `iterations` runs of `op`; returns the counter ticks they took.
#[inline(always)]
fn time(iterations: u64, mut op: impl FnMut()) -> u64 {
    let start = counter();
    for _ in 0..iterations {
        op();
    }
    counter() - start
}

fn row(name: &str, iterations: u64, ticks: u64) {
    report!("row={name} iterations={iterations} ticks={ticks}");
}

fn skip(name: &str, reason: &str) {
    report!("skip={name} reason={reason}");
}

/// Whether Aerie answers its CALL_UID hypercall (SMCCC "Call UID" convention: the
/// UID in w0..w3).
fn is_aerie() -> bool {
    let [w0, w1, _, _] = smccc::hvc(AERIE_CALL_UID, 0, 0, 0);
    [w0 & 0xFFFF_FFFF, w1 & 0xFFFF_FFFF] == AERIE_UID
}

/// Where the guest runs (no device tree: bare QEMU; else Aerie if it answers to
/// its UID, else another hypervisor), the devices' addresses, and whether the test
/// device is there.
fn discover() -> bool {
    if devtree::address() == 0 {
        HOST.store(HOST_BARE);
        return false;
    }
    if !is_aerie() {
        HOST.store(HOST_PEER);
    }
    devtree::with_device_tree(|tree| {
        let reg = |compatible: &[&str], index: usize| {
            let node = tree.find_compatible(compatible)?;
            let region = node.reg()?.nth(index)?;
            Some(region.starting_address as u64)
        };
        UART_BASE.store(reg(&UART_COMPATIBLES, 0).unwrap_or(0));
        let first_virtio = tree
            .all_nodes()
            .filter(|node| {
                node.compatible()
                    .is_some_and(|c| c.all().any(|name| name == VIRTIO_MMIO_COMPATIBLE))
            })
            .filter_map(|node| Some(node.reg()?.next()?.starting_address as u64))
            .min();
        VIRTIO_BASE.store(first_virtio.unwrap_or(0));
        if let (Some(distributor), Some(redistributors)) =
            (reg(&[GIC_V3_COMPATIBLE], 0), reg(&[GIC_V3_COMPATIBLE], 1))
        {
            GICD_BASE.store(distributor);
            GICR_BASE.store(redistributors);
        }
        tree.find_compatible(&[TEST_DEVICE_COMPATIBLE]).is_some()
    })
    .unwrap_or(false)
}

fn run() {
    let testdev = discover();
    let profiled = profiled_row();
    if host() == Host::Bare {
        write32(uart() + UARTCR, UARTCR_ENABLE_TX);
    }
    install_vectors();
    report!(
        "host={} frequency={}",
        host().name(),
        cpu::counter_frequency()
    );
    let wanted = |name: &str| profiled.is_none_or(|row| row == name);
    let mut interrupts_set_up = false;
    loop {
        register_rows(testdev, &wanted);
        if PROFILED_INTERRUPT_ROWS.iter().any(|&name| wanted(name)) {
            if !interrupts_set_up {
                setup_distributor();
                setup_cpu_interface(0);
                interrupts_set_up = true;
            }
            interrupt_rows(&wanted);
        }
        // Profiled, the row runs again and again until xtask stops QEMU.
        if profiled.is_none() {
            break;
        }
    }
    report!("done");
    finish(0)
}

/// The guest command line's option naming the row `cargo xtask profile` follows:
/// with it this guest runs only that row, over and over (`aerie-bench.profile=ROW`).
const PROFILE_OPTION: &str = "aerie-bench.profile=";

/// The rows `cargo xtask profile` can follow: each has a marker function below that
/// runs once per operation.
const PROFILED_ROWS: [&str; 9] = [
    "hvc-psci-version",
    "hvc-aerie-revision",
    "mmio-testdev-id",
    "mmio-pl011-fr",
    "mmio-virtio-id",
    "gicd-typer",
    "ipi-round-trip",
    "vtimer-busy",
    "vtimer-wfi",
];

/// Those of [`PROFILED_ROWS`] that take interrupts.
const PROFILED_INTERRUPT_ROWS: [&str; 3] = ["ipi-round-trip", "vtimer-busy", "vtimer-wfi"];

/// The row named by [`PROFILE_OPTION`] in the device tree's `/chosen/bootargs`, if
/// any (never without a device tree: bare QEMU runs every row).
fn profiled_row() -> Option<&'static str> {
    if devtree::address() == 0 {
        return None;
    }
    devtree::with_device_tree(|tree| {
        let bootargs = tree.find_node("/chosen")?.property("bootargs")?.as_str()?;
        let wanted = bootargs
            .split_whitespace()
            .find_map(|word| word.strip_prefix(PROFILE_OPTION))?;
        PROFILED_ROWS.iter().copied().find(|&row| row == wanted)
    })
    .ok()
    .flatten()
}

/// The rows that time an HVC or a register read, those `wanted` says.
fn register_rows(testdev: bool, wanted: &impl Fn(&str) -> bool) {
    if wanted("loop") {
        row("loop", CALLS, time(CALLS, nothing));
    }
    if wanted("hvc-psci-version") {
        row(
            "hvc-psci-version",
            CALLS,
            time(CALLS, || bench_mark_hvc_psci_version()),
        );
    }
    if wanted("hvc-aerie-revision") {
        if host() == Host::Aerie {
            row(
                "hvc-aerie-revision",
                CALLS,
                time(CALLS, || bench_mark_hvc_aerie_revision()),
            );
        } else {
            skip("hvc-aerie-revision", "not-aerie");
        }
    }
    let register_reads = [
        (
            "mmio-testdev-id",
            Some(TEST_DEVICE)
                .filter(|_| testdev)
                .ok_or("no-test-device"),
        ),
        (
            "mmio-pl011-fr",
            Some(uart())
                .filter(|&base| base != 0)
                .map(|base| base + UARTFR)
                .ok_or("no-pl011"),
        ),
        (
            "mmio-virtio-id",
            Some(VIRTIO_BASE.load())
                .filter(|&base| base != 0)
                .map(|base| base + VIRTIO_DEVICE_ID)
                .ok_or("no-virtio-mmio"),
        ),
        ("gicd-typer", Ok(gicd() + gic::GICD_TYPER)),
    ];
    for (name, address) in register_reads {
        if wanted(name) {
            load_row(name, address);
        }
    }
}

/// A register-read row: [`bench_mark_load`] of `address`, [`CALLS`] times; or,
/// when there is no such register, a skip with the reason.
fn load_row(name: &str, address: Result<u64, &str>) {
    match address {
        Ok(address) => row(name, CALLS, time(CALLS, || bench_mark_load(address))),
        Err(reason) => skip(name, reason),
    }
}

// The operations of the register rows as functions, so that `cargo xtask profile`
// finds a symbol that runs once per operation (the call and return add two
// instructions to each, the same in every column).

/// `HVC #0` with PSCI_VERSION.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn bench_mark_hvc_psci_version() {
    smccc::hvc(psci::VERSION, 0, 0, 0);
}

/// `HVC #0` with Aerie's REVISION hypercall.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn bench_mark_hvc_aerie_revision() {
    smccc::hvc(AERIE_REVISION, 0, 0, 0);
}

/// A 32-bit load of the device register at `address`: the operation of every
/// register-read row (one function for all, as the linker would fold identical ones
/// into one anyway; a profiled guest runs one row).
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn bench_mark_load(address: u64) {
    read32(address);
}

/// The rows that take interrupts, those `wanted` says.
fn interrupt_rows(wanted: &impl Fn(&str) -> bool) {
    // One counter read, as the handler makes around ack + EOI, alone.
    if wanted("counter-read") {
        row(
            "counter-read",
            CALLS,
            time(CALLS, || {
                core::hint::black_box(counter());
            }),
        );
    }
    if wanted("ipi-round-trip") {
        ipi_rows();
    } else {
        // A profiled timer row runs as in the whole benchmark, after the IPI rows:
        // with vCPU 1 waiting in WFI.
        let _ = start_secondary();
    }
    timer_rows(wanted);
}

/// The counter when vCPU 0's handler saw vCPU 1's answering IPI (0: not yet).
static REPLY_SEEN: Shared = Shared::new(0);
/// Ticks vCPU 1's handler spent in ack + EOI, summed, and how many.
static ACK_EOI_TICKS: Shared = Shared::new(0);
static ACK_EOI_COUNT: Shared = Shared::new(0);
/// The secondary vCPU is set up and waiting (1).
static SECONDARY_READY: Shared = Shared::new(0);
/// The counter at the timer handler's entry (0: not yet).
static TIMER_SEEN: Shared = Shared::new(0);

/// ICC_SGI1R_EL1 for [`BENCH_SGI`] to the vCPU with affinity `mpidr` (Aff0 as the
/// target list bit, Aff1 in bits 23:16; both vCPUs are in cluster 0).
fn sgi_to(mpidr: u64) -> u64 {
    (u64::from(BENCH_SGI) << gic::SGI1R_INTID_SHIFT) | (1 << (mpidr & 0xF))
}

/// The IPI row, a ping-pong: vCPU 0 sends an SGI to vCPU 1 and waits in WFI; vCPU
/// 1, woken from WFI, answers from its handler with an SGI back. Under icount QEMU
/// runs the vCPUs one at a time, so the round trip counts every instruction both
/// executed for it, hypervisor included.
fn ipi_rows() {
    match start_secondary() {
        Ok(()) => {}
        Err(reason) => {
            skip("ipi-round-trip", reason);
            skip("irq-ack-eoi", reason);
            return;
        }
    }
    let ping = sgi_to(cpu::vcpu_mpidr(1));
    let mut total = 0;
    for _ in 0..IPIS {
        REPLY_SEEN.store(0);
        let sent = counter();
        write_icc!("ICC_SGI1R_EL1", ping);
        if !wait_in_wfi(&REPLY_SEEN) {
            skip("ipi-round-trip", "ipi-lost");
            return;
        }
        total += REPLY_SEEN.load().saturating_sub(sent);
    }
    row("ipi-round-trip", IPIS, total);
    row("irq-ack-eoi", ACK_EOI_COUNT.load(), ACK_EOI_TICKS.load());
}

/// vCPU 1 is running [`secondary`] (1: started; a profiled row comes here again).
static SECONDARY_STARTED: Shared = Shared::new(0);

/// Starts vCPU 1 in [`secondary`] unless it runs already, and waits until it is
/// ready; the error is the reason the IPI rows are skipped.
fn start_secondary() -> Result<(), &'static str> {
    if SECONDARY_STARTED.load() == 1 {
        return Ok(());
    }
    smp::set_secondary_main(secondary);
    if smp::cpu_on(cpu::vcpu_mpidr(1), 1) != psci::SUCCESS {
        return Err("one-vcpu");
    }
    SECONDARY_STARTED.store(1);
    if !cpu::wait_until(WAIT_MS, || SECONDARY_READY.load() == 1) {
        return Err("second-vcpu-not-ready");
    }
    Ok(())
}

/// vCPU 1: set up its GIC interface and wait for IPIs in WFI, forever.
fn secondary(_slot: usize) {
    install_vectors();
    setup_cpu_interface(1);
    SECONDARY_READY.store(1);
    enable_irqs();
    loop {
        cpu::wait_for_interrupt();
    }
}

fn timer_rows(wanted: &impl Fn(&str) -> bool) {
    for (name, wfi) in [("vtimer-busy", false), ("vtimer-wfi", true)] {
        if !wanted(name) {
            continue;
        }
        let mut total = 0;
        for _ in 0..TIMER_SHOTS {
            TIMER_SEEN.store(0);
            let deadline = counter() + TIMER_DELTA;
            timer::set_virtual_cval(deadline);
            timer::set_virtual_ctl(timer::CTL_ENABLE);
            let seen = if wfi {
                wait_in_wfi(&TIMER_SEEN)
            } else {
                enable_irqs();
                let seen = cpu::wait_until(WAIT_MS, || TIMER_SEEN.load() != 0);
                disable_irqs();
                seen
            };
            timer::set_virtual_ctl(0);
            if !seen {
                skip(name, "timer-interrupt-lost");
                return;
            }
            total += TIMER_SEEN.load().saturating_sub(deadline);
        }
        row(name, TIMER_SHOTS, total);
    }
}

/// Waits in WFI until `flag` is set, with IRQs masked (a pending interrupt still
/// ends WFI) and unmasked after each wake-up so the handler runs: no interrupt can
/// slip in between the check and the WFI. Returns whether the flag was set in time.
fn wait_in_wfi(flag: &Shared) -> bool {
    let deadline = counter() + cpu::ticks_from_ms(WAIT_MS);
    while flag.load() == 0 {
        if counter() >= deadline {
            return false;
        }
        cpu::wait_for_interrupt();
        enable_irqs();
        disable_irqs();
    }
    true
}

fn enable_irqs() {
    // SAFETY: unmasking IRQs lets the handler this guest installed run.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

fn disable_irqs() {
    // SAFETY: masking IRQs only defers them.
    unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
}

/// Turns on affinity routing and group 1 at the distributor.
fn setup_distributor() {
    write32(gicd() + gic::GICD_CTLR, gic::GICD_CTLR_ENABLE);
    cpu::wait_until(WAIT_MS, || {
        read32(gicd() + gic::GICD_CTLR) & gic::GICD_CTLR_RWP == 0
    });
}

/// Wakes vCPU `index`'s redistributor, puts the SGI and the timer PPI in group 1
/// with [`PRIORITY`] and enables them, then turns on this CPU's interface.
fn setup_cpu_interface(index: u64) {
    let rd = gicr() + index * gic::GICR_STRIDE;
    let waker = read32(rd + gic::GICR_WAKER);
    write32(rd + gic::GICR_WAKER, waker & !gic::WAKER_PROCESSOR_SLEEP);
    cpu::wait_until(WAIT_MS, || {
        read32(rd + gic::GICR_WAKER) & gic::WAKER_CHILDREN_ASLEEP == 0
    });
    let sgi = rd + gic::SGI_FRAME;
    write32(sgi + gic::GICR_IGROUPR0, u32::MAX);
    for intid in [BENCH_SGI, VTIMER_INTID] {
        // IPRIORITYR holds one byte per INTID, four to a register.
        let register = sgi + gic::GICR_IPRIORITYR + u64::from(intid / 4) * 4;
        let shift = (intid % 4) * 8;
        let old = read32(register);
        write32(register, (old & !(0xFF << shift)) | (PRIORITY << shift));
    }
    write32(
        sgi + gic::GICR_ISENABLER0,
        (1 << BENCH_SGI) | (1 << VTIMER_INTID),
    );
    write_icc!("ICC_SRE_EL1", gic::SRE);
    write_icc!("ICC_PMR_EL1", 0xFF);
    write_icc!("ICC_BPR1_EL1", 0);
    write_icc!("ICC_IGRPEN1_EL1", 1);
}

/// The IRQ handler (called by this guest's vector table): acknowledges, records,
/// ends the interrupt.
#[unsafe(no_mangle)]
extern "C" fn bench_irq() {
    let entered = counter();
    let iar = read_icc!("ICC_IAR1_EL1");
    let intid = iar & gic::INTID_MASK;
    if intid == u64::from(VTIMER_INTID) {
        // Silence the timer before ending the interrupt, or it fires again.
        timer::set_virtual_ctl(timer::CTL_IMASK);
    }
    if intid != gic::SPURIOUS {
        write_icc!("ICC_EOIR1_EL1", iar);
    }
    let ended = counter();
    match intid {
        i if i == u64::from(BENCH_SGI) && cpu::mpidr() == 0 => bench_mark_ipi_reply(entered),
        i if i == u64::from(BENCH_SGI) => {
            ACK_EOI_TICKS.store(ACK_EOI_TICKS.load() + (ended - entered));
            ACK_EOI_COUNT.store(ACK_EOI_COUNT.load() + 1);
            write_icc!("ICC_SGI1R_EL1", sgi_to(0));
        }
        i if i == u64::from(VTIMER_INTID) => bench_mark_vtimer(entered),
        _ => {}
    }
}

/// vCPU 0's handler has the answering IPI of the IPI row, taken at `entered`: once
/// per round trip (`cargo xtask profile ipi-round-trip` cuts its trace here).
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn bench_mark_ipi_reply(entered: u64) {
    REPLY_SEEN.store(entered);
}

/// The handler has the virtual timer's interrupt, taken at `entered`: once per
/// shot of the timer rows (`cargo xtask profile vtimer-busy` cuts its trace here).
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn bench_mark_vtimer(entered: u64) {
    TIMER_SEEN.store(entered);
}

/// Any exception but an IRQ: report it and stop.
#[unsafe(no_mangle)]
extern "C" fn bench_unexpected(entry: u64) -> ! {
    let (esr, elr): (u64, u64);
    // SAFETY: reading the exception syndrome and return address has no side effect.
    unsafe {
        asm!("mrs {}, ESR_EL1", "mrs {}, ELR_EL1", out(reg) esr, out(reg) elr,
            options(nomem, nostack, preserves_flags))
    };
    report!("error=unexpected-exception entry={entry} esr={esr:#x} elr={elr:#x}");
    finish(99)
}

/// Points VBAR_EL1 at this guest's vector table.
fn install_vectors() {
    // SAFETY: the table below is 2 KiB aligned and every entry either handles an IRQ
    // and returns with ERET or stops the guest.
    unsafe {
        asm!(
            "adrp {t}, bench_vectors",
            "add {t}, {t}, :lo12:bench_vectors",
            "msr VBAR_EL1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack),
        )
    };
}

// The vector table (Arm ARM D1.3.1): 16 entries of 0x80 bytes. Entry 5 (IRQ from the
// current EL with SP_ELx) saves the caller-saved registers, calls `bench_irq` and
// returns; every other entry calls `bench_unexpected` with its number.
global_asm!(
    r#"
    .text
    .balign 2048
bench_vectors:
    .irp    kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    .if \kind == 5
    b       bench_irq_entry
    .else
    mov     x0, #\kind
    b       bench_unexpected
    .endif
    .endr

bench_irq_entry:
    sub     sp, sp, #176
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    bl      bench_irq
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #176
    eret
"#
);
