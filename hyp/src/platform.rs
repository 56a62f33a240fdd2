//! The host machine, as its device tree describes it.
//!
//! [`Platform::parse`] validates the blob ([`crate::fdt_check`]), walks the tree once
//! and keeps what Aerie needs: RAM banks and reservations, CPUs and how to start them,
//! PSCI, the PL011 UART, the interrupt controller, the generic timer's interrupts,
//! the virtio-mmio slots and `/chosen`. Bus addresses are translated through every
//! parent's `ranges` (the Raspberry Pi's peripherals sit behind such a bus), and
//! interrupt specifiers are decoded against the GIC they belong to.
//!
//! Parsing runs before the MMU and the heap exist, so it allocates nothing: lists
//! have fixed capacities, strings borrow from the blob.

use crate::fdt_check::{self, DtbError, MAX_DEPTH};
use crate::memory::Range;
use crate::psci::Conduit;
use arrayvec::ArrayVec;
use core::fmt;
use fdt::Fdt;
use fdt::node::{FdtNode, NodeProperty};

/// Most RAM banks Aerie tracks.
pub const MAX_MEMORY_BANKS: usize = 16;
/// Most reserved regions Aerie tracks (memory reservation block plus
/// `/reserved-memory`).
pub const MAX_RESERVED: usize = 32;
/// Most CPUs Aerie drives.
pub const MAX_CPUS: usize = 64;
/// Most virtio-mmio slots Aerie tracks.
pub const MAX_VIRTIO_SLOTS: usize = 64;
/// Most GICv3 redistributor regions Aerie tracks.
pub const MAX_REDISTRIBUTOR_REGIONS: usize = 4;

/// First INTID of the private peripheral interrupts (PPIs).
const PPI_BASE: u32 = 16;
/// First INTID of the shared peripheral interrupts (SPIs).
const SPI_BASE: u32 = 32;
/// GIC interrupt specifier type cell for an SPI.
const GIC_SPI: u32 = 0;
/// GIC interrupt specifier type cell for a PPI.
const GIC_PPI: u32 = 1;

/// A GIC interrupt, by INTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irq(pub u32);

impl Irq {
    /// True for a private peripheral interrupt (INTID 16..32).
    pub fn is_ppi(self) -> bool {
        (PPI_BASE..SPI_BASE).contains(&self.0)
    }
}

impl fmt::Display for Irq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ppi() {
            write!(f, "PPI {} (INTID {})", self.0 - PPI_BASE, self.0)
        } else if self.0 >= SPI_BASE {
            write!(f, "SPI {} (INTID {})", self.0 - SPI_BASE, self.0)
        } else {
            write!(f, "SGI {}", self.0)
        }
    }
}

/// How a secondary CPU is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableMethod<'a> {
    /// PSCI `CPU_ON` (QEMU virt, Raspberry Pi 5).
    Psci,
    /// Write the entry point to `release_address` and send an event (Raspberry Pi 4).
    SpinTable {
        /// Where the CPU polls for its entry point.
        release_address: u64,
    },
    /// No method: the boot CPU usually has none.
    None,
    /// A method Aerie does not implement.
    Unsupported(&'a str),
}

impl fmt::Display for EnableMethod<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psci => write!(f, "psci"),
            Self::SpinTable { release_address } => {
                write!(f, "spin-table at {release_address:#x}")
            }
            Self::None => write!(f, "none"),
            Self::Unsupported(name) => write!(f, "{name} (unsupported)"),
        }
    }
}

/// One CPU node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu<'a> {
    /// Its MPIDR affinity value, from `reg`.
    pub mpidr: u64,
    /// How to start it.
    pub enable_method: EnableMethod<'a>,
    /// Its first `compatible` string, e.g. `arm,cortex-a72`.
    pub compatible: &'a str,
}

/// The PSCI firmware interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psci<'a> {
    /// `smc` or `hvc`.
    pub conduit: Conduit,
    /// The most specific `compatible`, e.g. `arm,psci-1.0`.
    pub compatible: &'a str,
}

/// The UART Aerie writes its console to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    /// Register block.
    pub registers: Range,
    /// Its interrupt, when it is wired to the GIC.
    pub irq: Option<Irq>,
    /// True when `/chosen/stdout-path` names this UART.
    pub is_stdout: bool,
}

/// The interrupt controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gic {
    /// GICv2 (GIC-400 on the Raspberry Pi, or QEMU `gic-version=2`).
    V2 {
        /// Distributor.
        distributor: Range,
        /// CPU interface.
        cpu_interface: Range,
        /// Virtual interface control (GICH); required for virtualization.
        hypervisor_interface: Range,
        /// Virtual CPU interface (GICV), mapped into guests.
        virtual_cpu_interface: Range,
        /// The maintenance interrupt.
        maintenance: Option<Irq>,
    },
    /// GICv3.
    V3 {
        /// Distributor.
        distributor: Range,
        /// Redistributor regions.
        redistributors: ArrayVec<Range, MAX_REDISTRIBUTOR_REGIONS>,
        /// The ITS, if present.
        its: Option<Range>,
        /// The maintenance interrupt.
        maintenance: Option<Irq>,
    },
}

impl Gic {
    /// `2` or `3`.
    pub fn version(&self) -> u8 {
        match self {
            Self::V2 { .. } => 2,
            Self::V3 { .. } => 3,
        }
    }

    /// The distributor's registers.
    pub fn distributor(&self) -> Range {
        match self {
            Self::V2 { distributor, .. } | Self::V3 { distributor, .. } => *distributor,
        }
    }

    /// Every register block of the GIC (for the hypervisor's own mappings).
    pub fn register_blocks(&self) -> ArrayVec<Range, { MAX_REDISTRIBUTOR_REGIONS + 2 }> {
        let mut blocks = ArrayVec::new();
        match self {
            Self::V2 {
                distributor,
                cpu_interface,
                hypervisor_interface,
                ..
            } => {
                blocks.extend([*distributor, *cpu_interface, *hypervisor_interface]);
            }
            Self::V3 {
                distributor,
                redistributors,
                its,
                ..
            } => {
                blocks.push(*distributor);
                blocks.extend(redistributors.iter().copied());
                if let Some(its) = its {
                    blocks.push(*its);
                }
            }
        }
        blocks
    }

    /// The maintenance interrupt, if the tree gives it.
    pub fn maintenance(&self) -> Option<Irq> {
        match self {
            Self::V2 { maintenance, .. } | Self::V3 { maintenance, .. } => *maintenance,
        }
    }
}

/// The architected timer's interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// Secure EL1 physical timer.
    pub secure_physical: Irq,
    /// Non-secure EL1 physical timer.
    pub physical: Irq,
    /// EL1 virtual timer.
    pub virtual_timer: Irq,
    /// EL2 physical timer.
    pub hypervisor: Irq,
    /// EL2 virtual timer (Armv8.1 VHE hosts only).
    pub hypervisor_virtual: Option<Irq>,
}

/// A virtio-mmio transport slot. QEMU lists 32 of them whether or not a device is
/// plugged in; probing the registers tells which hold a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioSlot {
    /// The transport's registers.
    pub registers: Range,
    /// Its interrupt.
    pub irq: Option<Irq>,
}

/// A region of RAM that must not be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved<'a> {
    /// The region.
    pub range: Range,
    /// The `/reserved-memory` node name, or `memreserve` for the header's list.
    pub name: &'a str,
}

/// What `/chosen` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chosen<'a> {
    /// The command line (`bootargs`).
    pub bootargs: Option<&'a str>,
    /// The initrd loaded by the boot loader (QEMU `-initrd`, the Pi's `initramfs`).
    pub initrd: Option<Range>,
}

/// Something in the tree Aerie skipped; reported, not fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// More entries of a kind than Aerie tracks; the rest were ignored.
    TooMany(&'static str),
    /// A node whose addresses could not be decoded; it was ignored.
    Unreadable(&'static str),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany(what) => write!(f, "more {what} than Aerie tracks; the rest ignored"),
            Self::Unreadable(what) => write!(f, "a {what} node with unreadable addresses ignored"),
        }
    }
}

/// Why the device tree cannot describe a machine Aerie runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformError<'a> {
    /// The blob itself is malformed.
    Malformed(DtbError),
    /// A required piece is absent.
    Missing(&'static str),
    /// An interrupt controller Aerie does not drive.
    UnsupportedGic(&'a str),
    /// A GICv2 without the virtualization extensions (no GICH/GICV registers).
    GicWithoutVirtualization,
    /// A property Aerie needs is malformed.
    BadProperty {
        /// The node's name.
        node: &'a str,
        /// The property's name.
        property: &'static str,
    },
}

impl fmt::Display for PlatformError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(error) => write!(f, "malformed device tree: {error}"),
            Self::Missing(what) => write!(f, "the device tree describes no {what}"),
            Self::UnsupportedGic(compatible) => write!(
                f,
                "unsupported interrupt controller '{compatible}' (Aerie needs a GICv3, or a \
                 GICv2 with virtualization extensions)"
            ),
            Self::GicWithoutVirtualization => write!(
                f,
                "the GICv2 has no virtualization interface (no GICH/GICV registers in its \
                 'reg'); Aerie cannot give guests interrupts"
            ),
            Self::BadProperty { node, property } => {
                write!(f, "node '{node}' has a malformed '{property}' property")
            }
        }
    }
}

/// The host machine.
#[derive(Debug, Clone)]
pub struct Platform<'a> {
    /// `/model`, or the first root `compatible` when there is no model.
    pub model: &'a str,
    /// The first root `compatible` string, e.g. `linux,dummy-virt`.
    pub compatible: &'a str,
    /// RAM banks, sorted by address.
    pub memory: ArrayVec<Range, MAX_MEMORY_BANKS>,
    /// Regions of RAM in use by firmware.
    pub reserved: ArrayVec<Reserved<'a>, MAX_RESERVED>,
    /// CPUs in tree order.
    pub cpus: ArrayVec<Cpu<'a>, MAX_CPUS>,
    /// PSCI, when the tree has a `/psci` node.
    pub psci: Option<Psci<'a>>,
    /// The console UART.
    pub uart: Uart,
    /// The interrupt controller.
    pub gic: Gic,
    /// The architected timer's interrupts.
    pub timer: Option<Timer>,
    /// The PMU's interrupt, when the PMU node (`arm,armv8-pmuv3` or a CPU's own
    /// `arm,cortex-*-pmu`) gives one PPI for every CPU. A PMU with one SPI per CPU
    /// (the Raspberry Pi 4) has none here: Aerie cannot hand a CPU's SPI to its vCPU
    /// as the private interrupt a guest expects, so that guest gets no PMU.
    pub pmu: Option<Irq>,
    /// virtio-mmio slots, in tree order.
    pub virtio_mmio: ArrayVec<VirtioSlot, MAX_VIRTIO_SLOTS>,
    /// `/chosen`.
    pub chosen: Chosen<'a>,
    /// Things skipped while parsing.
    pub notes: ArrayVec<Note, 8>,
    /// The Broadcom GPIO controller of a Raspberry Pi (BCM2711/BCM2835 family), whose
    /// pin functions route the PL011 to the header pins.
    pub broadcom_gpio: Option<Range>,
    /// A PL031 real-time clock (QEMU `virt` has one): the wall clock Aerie gives its
    /// guest is read from it.
    pub rtc: Option<Range>,
}

impl<'a> Platform<'a> {
    /// Validates and parses a device tree blob. Run
    /// [`fdt_check::validate_and_remove_nops`] on the blob first: blobs with `FDT_NOP`
    /// tokens are refused, since the `fdt` crate does not skip them everywhere.
    pub fn parse(blob: &'a [u8]) -> Result<Self, PlatformError<'a>> {
        fdt_check::validate_for_reading(blob).map_err(PlatformError::Malformed)?;
        let tree = Fdt::new(blob).map_err(|_| PlatformError::Malformed(DtbError::BadRoot))?;
        let root = tree
            .find_node("/")
            .ok_or(PlatformError::Missing("root node"))?;
        let mut found = Found::new(&tree);
        let mut stack = ArrayVec::new();
        walk(root, &mut stack, &mut found)?;
        found.finish()
    }

    /// The CPUs and their count (the boot CPU is among them).
    pub fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// Total bytes of RAM.
    pub fn total_memory(&self) -> u64 {
        self.memory.iter().map(Range::size).sum()
    }
}

/// What one ancestor of the current node contributes to decoding it.
#[derive(Clone, Copy)]
struct Ancestor<'a> {
    name: &'a str,
    /// `#address-cells` for this node's children.
    address_cells: u32,
    /// `#size-cells` for this node's children.
    size_cells: u32,
    /// This node's `ranges`: `None` when absent (children not CPU-addressable),
    /// empty for an identity mapping.
    ranges: Option<&'a [u8]>,
    /// The interrupt parent in effect for this node's children.
    interrupt_parent: Option<u32>,
}

/// Raw interrupt specifiers, decoded once the GIC is known.
#[derive(Clone, Copy)]
struct RawInterrupts<'a> {
    parent: Option<u32>,
    cells: &'a [u8],
}

/// A PL011 candidate found during the walk.
#[derive(Clone, Copy)]
struct UartCandidate<'a> {
    registers: Range,
    interrupts: Option<RawInterrupts<'a>>,
    is_stdout: bool,
}

/// A GIC found during the walk, before its interrupts are decoded.
struct GicCandidate<'a> {
    compatible: &'a str,
    phandle: Option<u32>,
    interrupt_cells: u32,
    registers: ArrayVec<Range, 8>,
    redistributor_regions: usize,
    interrupts: Option<RawInterrupts<'a>>,
    its: Option<Range>,
}

/// Everything collected by the walk.
struct Found<'a> {
    model: Option<&'a str>,
    compatible: &'a str,
    stdout_path: Option<&'a str>,
    memory: ArrayVec<Range, MAX_MEMORY_BANKS>,
    reserved: ArrayVec<Reserved<'a>, MAX_RESERVED>,
    cpus: ArrayVec<Cpu<'a>, MAX_CPUS>,
    psci: Option<Psci<'a>>,
    uarts: ArrayVec<UartCandidate<'a>, 8>,
    gic: Option<GicCandidate<'a>>,
    unsupported_gic: Option<&'a str>,
    timer: Option<RawInterrupts<'a>>,
    pmu: Option<RawInterrupts<'a>>,
    virtio: ArrayVec<(Range, Option<RawInterrupts<'a>>), MAX_VIRTIO_SLOTS>,
    chosen: Chosen<'a>,
    notes: ArrayVec<Note, 8>,
    broadcom_gpio: Option<Range>,
    rtc: Option<Range>,
}

/// Compatible strings of GICv2 implementations (all may have the virtualization
/// extensions; the `reg` property tells).
const GICV2_COMPATIBLES: [&str; 4] = [
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a7-gic",
    "arm,arm-gic",
];
/// Compatible strings of GICs that can never virtualize.
const OTHER_GIC_COMPATIBLES: [&str; 4] = [
    "arm,cortex-a9-gic",
    "arm,pl390",
    "arm,arm11mp-gic",
    "arm,gic-v3-its",
];

impl<'a> Found<'a> {
    fn new(tree: &Fdt<'a>) -> Self {
        let mut found = Self {
            model: None,
            compatible: "",
            stdout_path: None,
            memory: ArrayVec::new(),
            reserved: ArrayVec::new(),
            cpus: ArrayVec::new(),
            psci: None,
            uarts: ArrayVec::new(),
            gic: None,
            unsupported_gic: None,
            timer: None,
            pmu: None,
            virtio: ArrayVec::new(),
            chosen: Chosen::default(),
            notes: ArrayVec::new(),
            broadcom_gpio: None,
            rtc: None,
        };
        // `/chosen` usually comes last in the tree, but the UART nodes before it
        // need to know whether they are the console.
        found.stdout_path = tree
            .find_node("/chosen")
            .and_then(|chosen| {
                chosen
                    .property("stdout-path")
                    .or_else(|| chosen.property("linux,stdout-path"))
            })
            .and_then(first_string)
            .and_then(|path| resolve_alias(tree, path));
        for reservation in tree.memory_reservations() {
            let start = reservation.address() as u64;
            if let Some(range) = Range::from_start_size(start, reservation.size() as u64) {
                found.add_reserved(Reserved {
                    range,
                    name: "memreserve",
                });
            }
        }
        found
    }

    fn note(&mut self, note: Note) {
        if !self.notes.contains(&note) {
            let _ = self.notes.try_push(note);
        }
    }

    fn add_reserved(&mut self, reserved: Reserved<'a>) {
        if reserved.range.is_empty() {
            return;
        }
        if self.reserved.try_push(reserved).is_err() {
            self.note(Note::TooMany("reserved memory regions"));
        }
    }

    fn finish(self) -> Result<Platform<'a>, PlatformError<'a>> {
        let mut memory = self.memory;
        memory.retain(|r| !r.is_empty());
        memory.sort_unstable();
        if memory.is_empty() {
            return Err(PlatformError::Missing("RAM (no memory node with a size)"));
        }
        if self.cpus.is_empty() {
            return Err(PlatformError::Missing("CPUs"));
        }
        let gic_candidate = match (self.gic, self.unsupported_gic) {
            (Some(gic), _) => gic,
            (None, Some(compatible)) => return Err(PlatformError::UnsupportedGic(compatible)),
            (None, None) => return Err(PlatformError::Missing("interrupt controller (GIC)")),
        };
        let decoder = IrqDecoder {
            gic_phandle: gic_candidate.phandle,
            interrupt_cells: gic_candidate.interrupt_cells,
        };
        let gic = gic_candidate.into_gic(&decoder)?;

        let chosen_uart = self
            .uarts
            .iter()
            .find(|u| u.is_stdout)
            .or_else(|| self.uarts.first())
            .ok_or(PlatformError::Missing("PL011 UART"))?;
        let uart = Uart {
            registers: chosen_uart.registers,
            irq: chosen_uart.interrupts.and_then(|raw| decoder.first(raw)),
            is_stdout: chosen_uart.is_stdout,
        };

        let timer = self.timer.and_then(|raw| decoder.timer(raw));
        let pmu =
            self.pmu
                .and_then(|raw| decoder.all(raw))
                .and_then(|irqs| match irqs.as_slice() {
                    [irq] if irq.is_ppi() => Some(*irq),
                    _ => None,
                });
        let virtio_mmio = self
            .virtio
            .iter()
            .map(|&(registers, raw)| VirtioSlot {
                registers,
                irq: raw.and_then(|raw| decoder.first(raw)),
            })
            .collect();

        Ok(Platform {
            model: self.model.unwrap_or(self.compatible),
            compatible: self.compatible,
            memory,
            reserved: self.reserved,
            cpus: self.cpus,
            psci: self.psci,
            uart,
            gic,
            timer,
            pmu,
            virtio_mmio,
            chosen: self.chosen,
            notes: self.notes,
            broadcom_gpio: self.broadcom_gpio,
            rtc: self.rtc,
        })
    }
}

impl<'a> GicCandidate<'a> {
    fn into_gic(self, decoder: &IrqDecoder) -> Result<Gic, PlatformError<'a>> {
        let maintenance = self.interrupts.and_then(|raw| decoder.first(raw));
        let bad_reg = PlatformError::BadProperty {
            node: "interrupt-controller",
            property: "reg",
        };
        let regs = &self.registers;
        if self.compatible == "arm,gic-v3" {
            let redistributor_end = 1 + self.redistributor_regions;
            let distributor = *regs.first().ok_or(bad_reg)?;
            let redistributors: ArrayVec<Range, MAX_REDISTRIBUTOR_REGIONS> = regs
                .get(1..redistributor_end)
                .ok_or(bad_reg)?
                .iter()
                .copied()
                .collect();
            if redistributors.is_empty() {
                return Err(bad_reg);
            }
            return Ok(Gic::V3 {
                distributor,
                redistributors,
                its: self.its,
                maintenance,
            });
        }
        match regs.as_slice() {
            [
                distributor,
                cpu_interface,
                hypervisor_interface,
                virtual_cpu_interface,
                ..,
            ] => Ok(Gic::V2 {
                distributor: *distributor,
                cpu_interface: *cpu_interface,
                hypervisor_interface: *hypervisor_interface,
                virtual_cpu_interface: *virtual_cpu_interface,
                maintenance,
            }),
            [_, _] => Err(PlatformError::GicWithoutVirtualization),
            _ => Err(bad_reg),
        }
    }
}

/// Decodes interrupt specifiers that belong to the GIC.
struct IrqDecoder {
    gic_phandle: Option<u32>,
    interrupt_cells: u32,
}

impl IrqDecoder {
    /// All GIC interrupts in `raw`, or `None` if they belong to another controller or
    /// are malformed.
    fn all(&self, raw: RawInterrupts<'_>) -> Option<ArrayVec<Irq, 8>> {
        if raw.parent != self.gic_phandle || self.interrupt_cells < 2 {
            return None;
        }
        let stride = self.interrupt_cells as usize * 4;
        if raw.cells.is_empty() || raw.cells.len() % stride != 0 {
            return None;
        }
        let mut irqs = ArrayVec::new();
        for specifier in raw.cells.chunks_exact(stride).take(8) {
            let kind = be32(specifier, 0)?;
            let number = be32(specifier, 4)?;
            let intid = match kind {
                GIC_SPI => number.checked_add(SPI_BASE).filter(|&id| id < 1020)?,
                GIC_PPI => number.checked_add(PPI_BASE).filter(|&id| id < SPI_BASE)?,
                _ => return None,
            };
            irqs.push(Irq(intid));
        }
        Some(irqs)
    }

    fn first(&self, raw: RawInterrupts<'_>) -> Option<Irq> {
        self.all(raw)?.first().copied()
    }

    fn timer(&self, raw: RawInterrupts<'_>) -> Option<Timer> {
        let irqs = self.all(raw)?;
        Some(Timer {
            secure_physical: *irqs.first()?,
            physical: *irqs.get(1)?,
            virtual_timer: *irqs.get(2)?,
            hypervisor: *irqs.get(3)?,
            hypervisor_virtual: irqs.get(4).copied(),
        })
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// The most cells an address or size may take: Aerie decodes numbers of up to 64
/// bits.
const MAX_CELLS: u32 = 2;

/// Reads a number of `cells` 32-bit cells (0 to 2) from the front of `bytes`.
fn take_cells(bytes: &mut &[u8], cells: u32) -> Option<u64> {
    if cells > MAX_CELLS {
        return None;
    }
    let mut value = 0u64;
    for _ in 0..cells {
        value = value << 32 | u64::from(be32(bytes, 0)?);
        *bytes = &bytes[4..];
    }
    Some(value)
}

/// The length in bytes of one `reg` or `ranges` entry made of fields of `cells`
/// cells each, or `None` if a field is wider than [`take_cells`] decodes. Checking
/// each count first also keeps a hostile `#address-cells` or `#size-cells` (up to
/// 0xffffffff) from overflowing the sum.
fn entry_len(cells: &[u32]) -> Option<usize> {
    cells.iter().try_fold(0, |len, &count| {
        (count <= MAX_CELLS).then_some(len + count as usize * 4)
    })
}

fn property_u32(node: FdtNode<'_, '_>, name: &str) -> Option<u32> {
    node.property(name)
        .and_then(|p| (p.value.len() == 4).then(|| be32(p.value, 0)).flatten())
}

/// The first string of a string-list property.
fn first_string<'a>(property: NodeProperty<'a>) -> Option<&'a str> {
    let end = property
        .value
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(property.value.len());
    core::str::from_utf8(&property.value[..end]).ok()
}

fn strings<'a>(property: NodeProperty<'a>) -> impl Iterator<Item = &'a str> {
    property
        .value
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| core::str::from_utf8(s).ok())
}

fn is_enabled(node: FdtNode<'_, '_>) -> bool {
    node.property("status")
        .and_then(first_string)
        .is_none_or(|s| s == "okay" || s == "ok")
}

fn compatible_with<'a>(node: FdtNode<'_, 'a>, predicate: impl Fn(&str) -> bool) -> Option<&'a str> {
    node.property("compatible")
        .and_then(|p| strings(p).find(|s| predicate(s)))
}

/// Follows `/aliases` when `path` does not start with `/`, and strips `:options`.
fn resolve_alias<'a>(tree: &Fdt<'a>, path: &'a str) -> Option<&'a str> {
    let path = path.split(':').next()?;
    if path.starts_with('/') {
        return Some(path);
    }
    let aliases = tree.find_node("/aliases")?;
    aliases
        .property(path)
        .and_then(first_string)
        .filter(|p| p.starts_with('/'))
}

/// True if the node `name` under `ancestors` (root first) is at `path`. A path
/// component without a unit address matches a node name with one.
fn path_matches(ancestors: &[Ancestor<'_>], name: &str, path: &str) -> bool {
    let mut components = path.split('/').filter(|c| !c.is_empty());
    let names = ancestors
        .iter()
        .skip(1)
        .map(|a| a.name)
        .chain(core::iter::once(name));
    for node_name in names {
        let Some(component) = components.next() else {
            return false;
        };
        let base = node_name.split('@').next().unwrap_or(node_name);
        if component != node_name && component != base {
            return false;
        }
    }
    components.next().is_none()
}

/// Decodes a node's `reg` into CPU physical ranges, translating through every
/// ancestor's `ranges`. `None` if malformed or not CPU-addressable.
fn reg_ranges(node: FdtNode<'_, '_>, ancestors: &[Ancestor<'_>]) -> Option<ArrayVec<Range, 8>> {
    let parent = ancestors.last()?;
    let mut bytes = node.property("reg")?.value;
    let entry = entry_len(&[parent.address_cells, parent.size_cells])?;
    if entry == 0 || bytes.is_empty() || bytes.len() % entry != 0 {
        return None;
    }
    let mut ranges = ArrayVec::new();
    while !bytes.is_empty() && !ranges.is_full() {
        let address = take_cells(&mut bytes, parent.address_cells)?;
        let size = take_cells(&mut bytes, parent.size_cells)?;
        let cpu_address = translate(address, size, ancestors)?;
        ranges.push(Range::from_start_size(cpu_address, size)?);
    }
    Some(ranges)
}

/// Maps a bus address of a child of `ancestors.last()` to a CPU physical address.
fn translate(mut address: u64, size: u64, ancestors: &[Ancestor<'_>]) -> Option<u64> {
    // ancestors[0] is the root, whose children's addresses are CPU addresses.
    for level in (1..ancestors.len()).rev() {
        let bus = &ancestors[level];
        let parent = &ancestors[level - 1];
        let mut ranges = bus.ranges?;
        if ranges.is_empty() {
            continue;
        }
        let entry = entry_len(&[bus.address_cells, parent.address_cells, bus.size_cells])?;
        if entry == 0 || ranges.len() % entry != 0 {
            return None;
        }
        let mut mapped = None;
        while !ranges.is_empty() {
            let child = take_cells(&mut ranges, bus.address_cells)?;
            let parent_address = take_cells(&mut ranges, parent.address_cells)?;
            let length = take_cells(&mut ranges, bus.size_cells)?;
            let window = Range::from_start_size(child, length)?;
            let end = address.checked_add(size)?;
            if window.contains(address) && end <= window.end() {
                mapped = Some(parent_address.checked_add(address - child)?);
                break;
            }
        }
        address = mapped?;
    }
    Some(address)
}

/// Visits `node` and its subtree. `ancestors` holds the node's parents, root first.
fn walk<'a>(
    node: FdtNode<'_, 'a>,
    ancestors: &mut ArrayVec<Ancestor<'a>, MAX_DEPTH>,
    found: &mut Found<'a>,
) -> Result<(), PlatformError<'a>> {
    let interrupt_parent = property_u32(node, "interrupt-parent")
        .or_else(|| ancestors.last().and_then(|a| a.interrupt_parent));
    visit(node, ancestors, interrupt_parent, found)?;
    if ancestors.is_full() {
        return Ok(());
    }
    ancestors.push(Ancestor {
        name: node.name,
        address_cells: property_u32(node, "#address-cells").unwrap_or(2),
        size_cells: property_u32(node, "#size-cells").unwrap_or(1),
        ranges: node.property("ranges").map(|p| p.value),
        interrupt_parent,
    });
    for child in node.children() {
        walk(child, ancestors, found)?;
    }
    ancestors.pop();
    Ok(())
}

/// Records what `node` contributes.
fn visit<'a>(
    node: FdtNode<'_, 'a>,
    ancestors: &[Ancestor<'a>],
    interrupt_parent: Option<u32>,
    found: &mut Found<'a>,
) -> Result<(), PlatformError<'a>> {
    let depth = ancestors.len();
    let parent_name = ancestors.last().map_or("", |a| a.name);
    let raw_interrupts = node.property("interrupts").map(|p| RawInterrupts {
        parent: interrupt_parent,
        cells: p.value,
    });

    if depth == 0 {
        found.model = node.property("model").and_then(first_string);
        found.compatible = node
            .property("compatible")
            .and_then(first_string)
            .unwrap_or("");
        return Ok(());
    }
    if depth == 1 && node.name == "chosen" {
        return visit_chosen(node, found);
    }
    let device_type = node.property("device_type").and_then(first_string);
    if depth == 1
        && (device_type == Some("memory") || node.name.split('@').next() == Some("memory"))
    {
        if is_enabled(node) {
            let banks = reg_ranges(node, ancestors).ok_or(PlatformError::BadProperty {
                node: node.name,
                property: "reg",
            })?;
            for bank in banks {
                if found.memory.try_push(bank).is_err() {
                    found.note(Note::TooMany("RAM banks"));
                }
            }
        }
        return Ok(());
    }
    if depth == 2 && parent_name == "reserved-memory" {
        // Dynamic reservations (`size` without `reg`) are carved out by an OS
        // allocator later; only static ones occupy memory now.
        if let Some(ranges) = reg_ranges(node, ancestors) {
            for range in ranges {
                found.add_reserved(Reserved {
                    range,
                    name: node.name,
                });
            }
        }
        return Ok(());
    }
    if depth == 2 && parent_name == "cpus" && device_type == Some("cpu") {
        return visit_cpu(node, ancestors, found);
    }
    if !is_enabled(node) {
        return Ok(());
    }
    if let Some(compatible) = compatible_with(node, |c| c.starts_with("arm,psci")) {
        let method = node.property("method").and_then(first_string);
        let conduit = method
            .and_then(Conduit::from_method)
            .ok_or(PlatformError::BadProperty {
                node: node.name,
                property: "method",
            })?;
        found.psci = Some(Psci {
            conduit,
            compatible,
        });
        return Ok(());
    }
    if compatible_with(node, |c| c.starts_with("arm,pl011")).is_some() {
        match reg_ranges(node, ancestors).and_then(|r| r.first().copied()) {
            Some(registers) => {
                let is_stdout = found
                    .stdout_path
                    .is_some_and(|path| path_matches(ancestors, node.name, path));
                let candidate = UartCandidate {
                    registers,
                    interrupts: raw_interrupts,
                    is_stdout,
                };
                if found.uarts.try_push(candidate).is_err() {
                    found.note(Note::TooMany("UARTs"));
                }
            }
            None => found.note(Note::Unreadable("UART")),
        }
        return Ok(());
    }
    if let Some(compatible) = compatible_with(node, |c| {
        c == "arm,gic-v3" || GICV2_COMPATIBLES.contains(&c)
    }) {
        if found.gic.is_none() {
            let registers = reg_ranges(node, ancestors).ok_or(PlatformError::BadProperty {
                node: node.name,
                property: "reg",
            })?;
            found.gic = Some(GicCandidate {
                compatible,
                phandle: property_u32(node, "phandle")
                    .or_else(|| property_u32(node, "linux,phandle")),
                interrupt_cells: property_u32(node, "#interrupt-cells").unwrap_or(0),
                registers,
                redistributor_regions: property_u32(node, "#redistributor-regions")
                    .map_or(1, |n| n as usize),
                interrupts: raw_interrupts,
                its: None,
            });
        }
        return Ok(());
    }
    if compatible_with(node, |c| c == "arm,gic-v3-its").is_some() {
        if let (Some(gic), Some(ranges)) = (found.gic.as_mut(), reg_ranges(node, ancestors)) {
            gic.its = ranges.first().copied();
        }
        return Ok(());
    }
    if node.property("interrupt-controller").is_some() && found.unsupported_gic.is_none() {
        if let Some(compatible) = compatible_with(node, |c| OTHER_GIC_COMPATIBLES.contains(&c)) {
            found.unsupported_gic = Some(compatible);
        }
    }
    if compatible_with(node, |c| c == "arm,armv8-timer" || c == "arm,armv7-timer").is_some() {
        found.timer = raw_interrupts;
        return Ok(());
    }
    if compatible_with(node, |c| {
        c == "arm,armv8-pmuv3" || (c.starts_with("arm,cortex-a") && c.ends_with("-pmu"))
    })
    .is_some()
    {
        found.pmu = raw_interrupts;
        return Ok(());
    }
    if compatible_with(node, |c| {
        c == "brcm,bcm2711-gpio" || c == "brcm,bcm2835-gpio"
    })
    .is_some()
    {
        if found.broadcom_gpio.is_none() {
            found.broadcom_gpio = reg_ranges(node, ancestors).and_then(|r| r.first().copied());
        }
        return Ok(());
    }
    if compatible_with(node, |c| c == "arm,pl031").is_some() {
        if found.rtc.is_none() {
            found.rtc = reg_ranges(node, ancestors).and_then(|r| r.first().copied());
        }
        return Ok(());
    }
    if compatible_with(node, |c| c == "virtio,mmio").is_some() {
        match reg_ranges(node, ancestors).and_then(|r| r.first().copied()) {
            Some(registers) => {
                if found.virtio.try_push((registers, raw_interrupts)).is_err() {
                    found.note(Note::TooMany("virtio-mmio slots"));
                }
            }
            None => found.note(Note::Unreadable("virtio-mmio")),
        }
    }
    Ok(())
}

fn visit_chosen<'a>(node: FdtNode<'_, 'a>, found: &mut Found<'a>) -> Result<(), PlatformError<'a>> {
    found.chosen.bootargs = node.property("bootargs").and_then(first_string);
    let cell = |name: &'static str| -> Result<Option<u64>, PlatformError<'a>> {
        let Some(property) = node.property(name) else {
            return Ok(None);
        };
        let mut bytes = property.value;
        match bytes.len() {
            4 => Ok(take_cells(&mut bytes, 1)),
            8 => Ok(take_cells(&mut bytes, 2)),
            _ => Err(PlatformError::BadProperty {
                node: "chosen",
                property: name,
            }),
        }
    };
    if let (Some(start), Some(end)) = (cell("linux,initrd-start")?, cell("linux,initrd-end")?) {
        let range = Range::new(start, end).ok_or(PlatformError::BadProperty {
            node: "chosen",
            property: "linux,initrd-end",
        })?;
        found.chosen.initrd = Some(range);
    }
    Ok(())
}

fn visit_cpu<'a>(
    node: FdtNode<'_, 'a>,
    ancestors: &[Ancestor<'a>],
    found: &mut Found<'a>,
) -> Result<(), PlatformError<'a>> {
    if !is_enabled(node) && node.property("enable-method").is_none() {
        return Ok(());
    }
    let bad = |property| PlatformError::BadProperty {
        node: node.name,
        property,
    };
    let cells = ancestors.last().map_or(1, |a| a.address_cells);
    let mut reg = node.property("reg").ok_or(bad("reg"))?.value;
    if reg.len() != cells as usize * 4 {
        return Err(bad("reg"));
    }
    let mpidr = take_cells(&mut reg, cells).ok_or(bad("reg"))?;
    let enable_method = match node.property("enable-method").and_then(first_string) {
        None => EnableMethod::None,
        Some("psci") => EnableMethod::Psci,
        Some("spin-table") => {
            let mut value = node
                .property("cpu-release-addr")
                .ok_or(bad("cpu-release-addr"))?
                .value;
            let release_address = match value.len() {
                4 => take_cells(&mut value, 1),
                8 => take_cells(&mut value, 2),
                _ => None,
            };
            EnableMethod::SpinTable {
                release_address: release_address.ok_or(bad("cpu-release-addr"))?,
            }
        }
        Some(other) => EnableMethod::Unsupported(other),
    };
    let compatible = node
        .property("compatible")
        .and_then(first_string)
        .unwrap_or("");
    if found
        .cpus
        .try_push(Cpu {
            mpidr,
            enable_method,
            compatible,
        })
        .is_err()
    {
        found.note(Note::TooMany("CPUs"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
