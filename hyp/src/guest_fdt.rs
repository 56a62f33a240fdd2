//! The device tree Aerie writes for its guest.
//!
//! The guest learns its machine from this blob alone (x0 at entry), so it lists
//! exactly what the guest has: its RAM, its vCPUs, PSCI through `hvc`, and only the
//! devices Aerie emulates for it. Names, addresses and bindings follow QEMU's `virt`
//! machine (see [`crate::guest_layout`]) so kernels built for `virt` need nothing new:
//!
//! ```text
//! / compatible "linux,dummy-virt", #address-cells = #size-cells = 2
//!   chosen            bootargs, linux,initrd-start/-end, stdout-path
//!   memory@40000000   the guest's RAM
//!   cpus/cpu@N        one per vCPU, reg = its MPIDR affinity, enable-method "psci"
//!   psci              PSCI 1.0 through hvc
//!   timer             arm,armv8-timer (only with a GIC)
//!   pmu               arm,armv8-pmuv3 and its PPI (when the guest owns the host's PMU)
//!   apb-pclk          the fixed 24 MHz clock the PL011 binding asks for (with the UART)
//!   pl011@9000000     the UART (when the guest has one)
//!   test-device@9060000  Aerie's test device (test guests only)
//!   intc@8000000      the GICv3 (when the guest has one)
//! ```
//!
//! Bindings: Devicetree Specification v0.4 (chapters 2-3: root, `/chosen`,
//! `/memory`, `/cpus`); Linux `Documentation/devicetree/bindings/`:
//! `arm/cpus.yaml` (`reg` is MPIDR[23:0] with one address cell), `arm/psci.yaml`,
//! `timer/arm,arch_timer.yaml`, `arm/pmu.yaml`, `serial/pl011.yaml`, `clock/fixed-clock.yaml`,
//! `interrupt-controller/arm,gic-v3.yaml` (three interrupt cells: type, number,
//! flags), and `chosen.yaml` for the initrd properties.

use crate::guest_layout;
use crate::memory::Range;
use crate::psci;
use alloc::format;
use alloc::vec::Vec;
use core::fmt;
use vm_fdt::FdtWriter;

/// vCPUs per MPIDR Aff1 group: a vCPU's Aff0 stays below 16 so that one GICv3 SGI
/// (`ICC_SGI1R_EL1.TargetList`, a 16-bit mask per Aff1 group) can reach any set of
/// vCPUs in a group.
pub const VCPUS_PER_AFF1: usize = 16;
/// The most vCPUs [`vcpu_mpidr`] can number with Aff0 and Aff1 alone (Aff1 has 8
/// bits), which is what a `/cpus` node with one address cell can describe.
pub const MAX_VCPUS: usize = VCPUS_PER_AFF1 * 256;
/// Position of MPIDR_EL1.Aff1.
const MPIDR_AFF1_SHIFT: u32 = 8;
/// MPIDR_EL1.Aff0 and Aff1: the only affinity bits a vCPU of Aerie's has.
const MPIDR_AFF1_AFF0_MASK: u64 = 0xffff;

/// The GIC's phandle.
pub const GIC_PHANDLE: u32 = 1;
/// The phandle of the UART's fixed clock.
pub const UART_CLOCK_PHANDLE: u32 = 2;
/// The UART's reference clock: 24 MHz, as QEMU `virt` describes it. Nothing depends
/// on it but the guest's baud-rate arithmetic; the emulated UART has no line.
pub const UART_CLOCK_HZ: u32 = 24_000_000;

/// Interrupt specifier, cell 1: a shared peripheral interrupt (arm,gic-v3.yaml).
const GIC_SPI: u32 = 0;
/// Interrupt specifier, cell 1: a private peripheral interrupt.
const GIC_PPI: u32 = 1;
/// Interrupt specifier, cell 3: level-sensitive, active high.
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;
/// Interrupt specifier, cell 3: level-sensitive, active low.
const IRQ_TYPE_LEVEL_LOW: u32 = 8;
/// The number of PPIs: PPI n is INTID 16 + n.
const PPI_COUNT: u32 = 16;

/// The timer PPIs, in the order `arm,armv8-timer` lists them: secure EL1 physical
/// (PPI 13, INTID 29), non-secure EL1 physical (PPI 14, INTID 30), EL1 virtual
/// (PPI 11, INTID 27) and EL2 physical (PPI 10, INTID 26), the numbers Arm's Base
/// System Architecture recommends and QEMU `virt` uses.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// The timer's trigger: level-sensitive, described active low as on Arm's own
/// platforms (the GICv3 ignores polarity for PPIs; Linux accepts either level).
const TIMER_IRQ_FLAGS: u32 = IRQ_TYPE_LEVEL_LOW;

/// Root `compatible`: QEMU `virt`'s, so kernels treat the guest as a generic machine.
const ROOT_COMPATIBLE: &str = "linux,dummy-virt";
/// Root `model`.
const MODEL: &str = "Aerie virtual machine";
/// Every vCPU's `compatible`: a generic Armv8 CPU.
const CPU_COMPATIBLE: &str = "arm,arm-v8";
/// The PSCI versions the guest may assume, most specific first (psci.yaml).
const PSCI_COMPATIBLE: &[u8] = b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0";
/// The PL011's `compatible` (pl011.yaml).
const PL011_COMPATIBLE: &[u8] = b"arm,pl011\0arm,primecell\0";
/// The PL031's `compatible` (arm,pl031.yaml).
const PL031_COMPATIBLE: &[u8] = b"arm,pl031\0arm,primecell\0";
/// The PL011's `clock-names`: the reference clock, then the bus clock.
const PL011_CLOCK_NAMES: &[u8] = b"uartclk\0apb_pclk\0";
/// The PMU's `compatible`: the generic PMUv3 (the guest learns the events it may
/// count from PMCEID0/1).
const PMU_COMPATIBLE: &str = "arm,armv8-pmuv3";
/// The test device's `compatible`.
const TEST_DEVICE_COMPATIBLE: &str = "aerie,test-device";

/// The MPIDR affinity of vCPU `index`: Aff0 = index % 16, Aff1 = index / 16.
///
/// This is the value of the vCPU's `reg` in the device tree, the `target_cpu` a
/// guest passes to PSCI `CPU_ON`, and the affinity part of its `VMPIDR_EL2` (which
/// also needs bit 31, RES1, set). Indices of [`MAX_VCPUS`] and above spill into
/// Aff2.
pub const fn vcpu_mpidr(index: usize) -> u64 {
    (((index / VCPUS_PER_AFF1) as u64) << MPIDR_AFF1_SHIFT) | (index % VCPUS_PER_AFF1) as u64
}

/// The vCPU index whose affinity is `mpidr` (the inverse of [`vcpu_mpidr`]), or
/// `None` if `mpidr` has bits set outside Aff1:Aff0 or an Aff0 of 16 or more. The
/// caller still checks the index against the guest's vCPU count.
pub const fn vcpu_index(mpidr: u64) -> Option<usize> {
    let aff0 = (mpidr & 0xff) as usize;
    let aff1 = ((mpidr >> MPIDR_AFF1_SHIFT) & 0xff) as usize;
    if mpidr & !MPIDR_AFF1_AFF0_MASK != 0 || aff0 >= VCPUS_PER_AFF1 {
        None
    } else {
        Some(aff1 * VCPUS_PER_AFF1 + aff0)
    }
}

/// The guest's interrupt controller.
///
/// Only the GICv3 exists so far; the virtual GICv2 (for GIC-400 hosts such as the
/// Raspberry Pi 4) will be a second variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicDescription {
    /// A GICv3 with one contiguous redistributor region.
    V3 {
        /// The distributor's registers.
        distributor: Range,
        /// The redistributors: 128 KiB per vCPU, in vCPU order.
        redistributors: Range,
        /// The maintenance interrupt, as a PPI number (0-15; INTID = 16 + ppi).
        maintenance_ppi: u32,
    },
    /// A GICv2 (GIC-400): what guests of GICv2 hosts see (the Raspberry Pi 4 and 5).
    V2 {
        /// The distributor's registers.
        distributor: Range,
        /// The CPU interface (the host's virtual CPU interface, mapped here).
        cpu_interface: Range,
        /// The maintenance interrupt, as a PPI number.
        maintenance_ppi: u32,
    },
}

/// What the guest has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestDescription<'a> {
    /// The guest's RAM, in guest physical addresses.
    pub ram: Range,
    /// How many vCPUs (1 to [`MAX_VCPUS`]).
    pub vcpus: usize,
    /// The kernel command line (`/chosen/bootargs`).
    pub bootargs: &'a str,
    /// Where the loader put the initrd, if there is one.
    pub initrd: Option<Range>,
    /// Whether the guest has the PL011 at [`guest_layout::UART`]; it is then the
    /// guest's `stdout-path`.
    pub uart: bool,
    /// Whether the guest has the PL031 real-time clock at [`guest_layout::RTC`].
    pub rtc: bool,
    /// Whether the guest has Aerie's test device at [`guest_layout::TEST_DEVICE`].
    pub test_device: bool,
    /// The interrupt controller, if the guest has one.
    pub gic: Option<GicDescription>,
    /// Whether to describe the architected timer (only done when there is a GIC to
    /// deliver its interrupts).
    pub timer: bool,
    /// The PMU's overflow interrupt as a PPI number (INTID = 16 + ppi), when the
    /// guest owns the host's PMU (see [`crate::pmu`]); described only with a GIC.
    pub pmu_ppi: Option<u32>,
    /// Whether the guest has QEMU `virt`'s two CFI flash banks at
    /// [`guest_layout::FLASH_CODE`] and [`guest_layout::FLASH_VARS`] (firmware guests).
    pub flash: bool,
    /// How many virtio-mmio transports the guest has: transport `i` at
    /// [`guest_layout::VIRTIO_MMIO`] + `i` × [`guest_layout::VIRTIO_MMIO_STRIDE`], on
    /// SPI [`guest_layout::VIRTIO_MMIO_FIRST_SPI`] + `i`.
    pub virtio_mmio: usize,
}

/// Why the guest's device tree cannot be written.
#[derive(Debug, PartialEq, Eq)]
pub enum GuestFdtError {
    /// A guest needs at least one vCPU.
    NoVcpus,
    /// More vCPUs than the tree can number.
    TooManyVcpus {
        /// The count asked for.
        vcpus: usize,
    },
    /// The command line contains a NUL byte, which a device tree string cannot hold.
    BootargsContainNul,
    /// The GICv3 redistributor region has no room for one redistributor per vCPU.
    RedistributorsTooSmall {
        /// The vCPU count.
        vcpus: usize,
        /// The region's size in bytes.
        size: u64,
    },
    /// The maintenance interrupt is not a PPI number.
    BadMaintenancePpi {
        /// The number given.
        ppi: u32,
    },
    /// The PMU's interrupt is not a PPI number.
    BadPmuPpi {
        /// The number given.
        ppi: u32,
    },
    /// The device tree writer refused something (a bug in Aerie).
    Writer(vm_fdt::Error),
}

impl fmt::Display for GuestFdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVcpus => f.write_str("the guest needs at least one vCPU"),
            Self::TooManyVcpus { vcpus } => write!(
                f,
                "the guest cannot have {vcpus} vCPUs; at most {MAX_VCPUS} are supported"
            ),
            Self::BootargsContainNul => {
                f.write_str("the guest's command line contains a NUL character")
            }
            Self::RedistributorsTooSmall { vcpus, size } => write!(
                f,
                "the guest's GICv3 redistributor region ({size:#x} bytes) is too small for \
                 {vcpus} vCPUs of {:#x} bytes each",
                guest_layout::GIC_REDISTRIBUTOR_SIZE
            ),
            Self::BadMaintenancePpi { ppi } => write!(
                f,
                "the guest's GIC maintenance interrupt PPI {ppi} is not a PPI (0-15)"
            ),
            Self::BadPmuPpi { ppi } => {
                write!(f, "the guest's PMU interrupt PPI {ppi} is not a PPI (0-15)")
            }
            Self::Writer(error) => write!(f, "writing the guest's device tree failed: {error}"),
        }
    }
}

impl From<vm_fdt::Error> for GuestFdtError {
    fn from(error: vm_fdt::Error) -> Self {
        Self::Writer(error)
    }
}

/// The name of a node with unit address `address`, e.g. `memory@40000000`.
fn node_name(name: &str, address: u64) -> alloc::string::String {
    format!("{name}@{address:x}")
}

/// The path of the UART node, for `stdout-path`.
fn uart_path() -> alloc::string::String {
    format!("/{}", node_name("pl011", guest_layout::UART))
}

/// Checks the description before anything is written.
fn check(guest: &GuestDescription<'_>) -> Result<(), GuestFdtError> {
    if guest.vcpus == 0 {
        return Err(GuestFdtError::NoVcpus);
    }
    if guest.vcpus > MAX_VCPUS {
        return Err(GuestFdtError::TooManyVcpus { vcpus: guest.vcpus });
    }
    if guest.bootargs.contains('\0') {
        return Err(GuestFdtError::BootargsContainNul);
    }
    match guest.gic {
        Some(GicDescription::V3 {
            redistributors,
            maintenance_ppi,
            ..
        }) => {
            let needed = (guest.vcpus as u64).saturating_mul(guest_layout::GIC_REDISTRIBUTOR_SIZE);
            if redistributors.size() < needed {
                return Err(GuestFdtError::RedistributorsTooSmall {
                    vcpus: guest.vcpus,
                    size: redistributors.size(),
                });
            }
            if maintenance_ppi >= PPI_COUNT {
                return Err(GuestFdtError::BadMaintenancePpi {
                    ppi: maintenance_ppi,
                });
            }
        }
        Some(GicDescription::V2 {
            maintenance_ppi, ..
        }) => {
            if guest.vcpus > GICV2_MAX_VCPUS {
                return Err(GuestFdtError::TooManyVcpus { vcpus: guest.vcpus });
            }
            if maintenance_ppi >= PPI_COUNT {
                return Err(GuestFdtError::BadMaintenancePpi {
                    ppi: maintenance_ppi,
                });
            }
        }
        None => {}
    }
    if let Some(ppi) = guest.pmu_ppi.filter(|&ppi| ppi >= PPI_COUNT) {
        return Err(GuestFdtError::BadPmuPpi { ppi });
    }
    Ok(())
}

/// A GICv2 serves at most 8 CPU interfaces.
const GICV2_MAX_VCPUS: usize = 8;

/// Writes the guest's device tree blob.
pub fn build(guest: &GuestDescription<'_>) -> Result<Vec<u8>, GuestFdtError> {
    check(guest)?;
    let mut fdt = FdtWriter::new()?;
    // The boot vCPU is vCPU 0 (header field `boot_cpuid_phys`).
    fdt.set_boot_cpuid_phys(vcpu_mpidr(0) as u32);
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", ROOT_COMPATIBLE)?;
    fdt.property_string("model", MODEL)?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    if guest.gic.is_some() {
        fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;
    }

    write_chosen(&mut fdt, guest)?;
    write_memory(&mut fdt, guest.ram)?;
    write_cpus(&mut fdt, guest.vcpus)?;
    write_psci(&mut fdt)?;
    if guest.timer && guest.gic.is_some() {
        write_timer(&mut fdt)?;
    }
    if let Some(ppi) = guest.pmu_ppi.filter(|_| guest.gic.is_some()) {
        write_pmu(&mut fdt, ppi)?;
    }
    if guest.flash {
        write_flash(&mut fdt)?;
    }
    if guest.uart || guest.rtc {
        write_bus_clock(&mut fdt)?;
    }
    if guest.uart {
        write_uart(&mut fdt, guest.gic.is_some())?;
    }
    if guest.rtc {
        write_rtc(&mut fdt)?;
    }
    for index in 0..guest.virtio_mmio {
        write_virtio_mmio(&mut fdt, index, guest.gic.is_some())?;
    }
    if guest.test_device {
        let node = fdt.begin_node(&node_name("test-device", guest_layout::TEST_DEVICE))?;
        fdt.property_string("compatible", TEST_DEVICE_COMPATIBLE)?;
        fdt.property_array_u64(
            "reg",
            &[guest_layout::TEST_DEVICE, guest_layout::TEST_DEVICE_SIZE],
        )?;
        fdt.end_node(node)?;
    }
    if let Some(gic) = guest.gic {
        write_gic(&mut fdt, gic)?;
    }

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

/// `/chosen`: the command line, the initrd and the console.
fn write_chosen(fdt: &mut FdtWriter, guest: &GuestDescription<'_>) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", guest.bootargs)?;
    if let Some(initrd) = guest.initrd {
        // 64-bit values: Linux reads these with the size of the property.
        fdt.property_u64("linux,initrd-start", initrd.start())?;
        fdt.property_u64("linux,initrd-end", initrd.end())?;
    }
    if guest.uart {
        fdt.property_string("stdout-path", &uart_path())?;
    }
    fdt.end_node(node)?;
    Ok(())
}

/// `/memory@...`: the guest's RAM.
fn write_memory(fdt: &mut FdtWriter, ram: Range) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node(&node_name("memory", ram.start()))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[ram.start(), ram.size()])?;
    fdt.end_node(node)?;
    Ok(())
}

/// `/cpus`: one node per vCPU, started through PSCI.
fn write_cpus(fdt: &mut FdtWriter, vcpus: usize) -> Result<(), GuestFdtError> {
    let cpus = fdt.begin_node("cpus")?;
    // One address cell: `reg` is MPIDR_EL1[23:0] (arm/cpus.yaml).
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for index in 0..vcpus {
        // `check` limits `vcpus` to MAX_VCPUS: the affinity fits in 16 bits.
        let mpidr = vcpu_mpidr(index) as u32;
        let cpu = fdt.begin_node(&node_name("cpu", u64::from(mpidr)))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", CPU_COMPATIBLE)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.property_u32("reg", mpidr)?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;
    Ok(())
}

/// `/psci`: PSCI 1.0 through `hvc`. The function IDs are for guests that only know
/// the original `arm,psci` binding (PSCI 0.1), which has no fixed numbers.
fn write_psci(fdt: &mut FdtWriter) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node("psci")?;
    fdt.property("compatible", PSCI_COMPATIBLE)?;
    fdt.property_string("method", "hvc")?;
    fdt.property_u32("cpu_suspend", psci::CPU_SUSPEND_64)?;
    fdt.property_u32("cpu_off", psci::CPU_OFF)?;
    fdt.property_u32("cpu_on", psci::CPU_ON_64)?;
    fdt.property_u32("migrate", psci::MIGRATE_64)?;
    fdt.end_node(node)?;
    Ok(())
}

/// `/timer`: the architected timer and its four PPIs.
fn write_timer(fdt: &mut FdtWriter) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let mut interrupts = [0u32; 3 * TIMER_PPIS.len()];
    for (cells, ppi) in interrupts.chunks_exact_mut(3).zip(TIMER_PPIS) {
        cells.copy_from_slice(&[GIC_PPI, ppi, TIMER_IRQ_FLAGS]);
    }
    fdt.property_array_u32("interrupts", &interrupts)?;
    // The timer keeps counting in every power state the guest can enter.
    fdt.property_null("always-on")?;
    fdt.end_node(node)?;
    Ok(())
}

/// `/pmu`: a PMUv3 whose overflow interrupt is PPI `ppi` on every vCPU, level
/// high as QEMU `virt` describes it (`arm/pmu.yaml`: one PPI, no
/// `interrupt-affinity`, means every CPU).
fn write_pmu(fdt: &mut FdtWriter, ppi: u32) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node("pmu")?;
    fdt.property_string("compatible", PMU_COMPATIBLE)?;
    fdt.property_array_u32("interrupts", &[GIC_PPI, ppi, IRQ_TYPE_LEVEL_HIGH])?;
    fdt.end_node(node)?;
    Ok(())
}

/// The two flash banks as one `cfi-flash` node (`mtd/mtd-physmap.yaml`), as QEMU
/// `virt` describes them: 32-bit bus.
fn write_flash(fdt: &mut FdtWriter) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node(&node_name("flash", guest_layout::FLASH_CODE))?;
    fdt.property_string("compatible", "cfi-flash")?;
    fdt.property_array_u64(
        "reg",
        &[
            guest_layout::FLASH_CODE,
            guest_layout::FLASH_BANK_SIZE,
            guest_layout::FLASH_VARS,
            guest_layout::FLASH_BANK_SIZE,
        ],
    )?;
    fdt.property_u32("bank-width", 4)?;
    fdt.end_node(node)?;
    Ok(())
}

/// The fixed clock the PrimeCell bindings (PL011, PL031) ask for.
fn write_bus_clock(fdt: &mut FdtWriter) -> Result<(), GuestFdtError> {
    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(UART_CLOCK_PHANDLE)?;
    fdt.end_node(clock)?;
    Ok(())
}

/// The PL031 real-time clock (`rtc/arm,pl031.yaml`), without an interrupt: Aerie's
/// model has no alarm.
fn write_rtc(fdt: &mut FdtWriter) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node(&node_name("pl031", guest_layout::RTC))?;
    fdt.property("compatible", PL031_COMPATIBLE)?;
    fdt.property_array_u64("reg", &[guest_layout::RTC, guest_layout::RTC_SIZE])?;
    fdt.property_u32("clocks", UART_CLOCK_PHANDLE)?;
    fdt.property_string("clock-names", "apb_pclk")?;
    fdt.end_node(node)?;
    Ok(())
}

/// The PL011 (its fixed clock: [`write_bus_clock`]).
fn write_uart(fdt: &mut FdtWriter, has_gic: bool) -> Result<(), GuestFdtError> {
    let node = fdt.begin_node(&node_name("pl011", guest_layout::UART))?;
    fdt.property("compatible", PL011_COMPATIBLE)?;
    fdt.property_array_u64("reg", &[guest_layout::UART, guest_layout::UART_SIZE])?;
    if has_gic {
        fdt.property_array_u32(
            "interrupts",
            &[GIC_SPI, guest_layout::UART_SPI, IRQ_TYPE_LEVEL_HIGH],
        )?;
    }
    // One clock serves as both the reference clock and the bus clock.
    fdt.property_array_u32("clocks", &[UART_CLOCK_PHANDLE, UART_CLOCK_PHANDLE])?;
    fdt.property("clock-names", PL011_CLOCK_NAMES)?;
    fdt.end_node(node)?;
    Ok(())
}

/// Virtio-mmio transport `index`.
fn write_virtio_mmio(
    fdt: &mut FdtWriter,
    index: usize,
    has_gic: bool,
) -> Result<(), GuestFdtError> {
    let base = guest_layout::VIRTIO_MMIO + index as u64 * guest_layout::VIRTIO_MMIO_STRIDE;
    let node = fdt.begin_node(&node_name("virtio_mmio", base))?;
    fdt.property_string("compatible", "virtio,mmio")?;
    fdt.property_array_u64("reg", &[base, guest_layout::VIRTIO_MMIO_STRIDE])?;
    if has_gic {
        let spi = guest_layout::VIRTIO_MMIO_FIRST_SPI + index as u32;
        fdt.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_TYPE_LEVEL_HIGH])?;
    }
    // Aerie's devices read and write guest RAM through the same caches as the vCPUs.
    fdt.property_null("dma-coherent")?;
    fdt.end_node(node)?;
    Ok(())
}

/// The interrupt controller.
fn write_gic(fdt: &mut FdtWriter, gic: GicDescription) -> Result<(), GuestFdtError> {
    match gic {
        GicDescription::V3 {
            distributor,
            redistributors,
            maintenance_ppi,
        } => {
            let node = fdt.begin_node(&node_name("intc", distributor.start()))?;
            fdt.property_string("compatible", "arm,gic-v3")?;
            fdt.property_u32("#interrupt-cells", 3)?;
            // No child nodes; an interrupt provider still states its address cells
            // (dtc's interrupt_provider check), which interrupt maps would use.
            fdt.property_u32("#address-cells", 0)?;
            fdt.property_null("interrupt-controller")?;
            fdt.property_array_u64(
                "reg",
                &[
                    distributor.start(),
                    distributor.size(),
                    redistributors.start(),
                    redistributors.size(),
                ],
            )?;
            fdt.property_array_u32(
                "interrupts",
                &[GIC_PPI, maintenance_ppi, IRQ_TYPE_LEVEL_HIGH],
            )?;
            fdt.property_phandle(GIC_PHANDLE)?;
            fdt.end_node(node)?;
        }
        GicDescription::V2 {
            distributor,
            cpu_interface,
            maintenance_ppi,
        } => {
            let node = fdt.begin_node(&node_name("intc", distributor.start()))?;
            // Linux's irq-gic driver knows the GIC-400 by this name, and by the older
            // generic one.
            fdt.property_string_list(
                "compatible",
                alloc::vec!["arm,gic-400".into(), "arm,cortex-a15-gic".into()],
            )?;
            fdt.property_u32("#interrupt-cells", 3)?;
            fdt.property_u32("#address-cells", 0)?;
            fdt.property_null("interrupt-controller")?;
            fdt.property_array_u64(
                "reg",
                &[
                    distributor.start(),
                    distributor.size(),
                    cpu_interface.start(),
                    cpu_interface.size(),
                ],
            )?;
            fdt.property_array_u32(
                "interrupts",
                &[GIC_PPI, maintenance_ppi, IRQ_TYPE_LEVEL_HIGH],
            )?;
            fdt.property_phandle(GIC_PHANDLE)?;
            fdt.end_node(node)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt_check;
    use crate::guest_layout::{
        GIC_DISTRIBUTOR, GIC_DISTRIBUTOR_SIZE, GIC_REDISTRIBUTOR_SIZE, GIC_REDISTRIBUTORS,
        RAM_BASE, TEST_DEVICE, UART,
    };
    use crate::platform::{EnableMethod, Gic, Irq, Platform};
    use crate::psci::Conduit;
    use fdt::Fdt;
    use fdt::node::FdtNode;
    use std::string::ToString;

    fn r(start: u64, size: u64) -> Range {
        Range::from_start_size(start, size).unwrap()
    }

    fn gic_v3(vcpus: usize) -> GicDescription {
        GicDescription::V3 {
            distributor: r(GIC_DISTRIBUTOR, GIC_DISTRIBUTOR_SIZE),
            redistributors: r(GIC_REDISTRIBUTORS, vcpus as u64 * GIC_REDISTRIBUTOR_SIZE),
            maintenance_ppi: 9,
        }
    }

    /// Everything a guest can have.
    fn full(vcpus: usize) -> GuestDescription<'static> {
        GuestDescription {
            ram: r(RAM_BASE, 256 << 20),
            vcpus,
            bootargs: "console=ttyAMA0 earlycon root=/dev/vda",
            initrd: Some(r(0x4820_0000, 0x12_3456)),
            uart: true,
            rtc: false,
            test_device: true,
            gic: Some(gic_v3(vcpus)),
            timer: true,
            pmu_ppi: None,
            flash: false,
            virtio_mmio: 0,
        }
    }

    /// A guest with nothing but RAM and CPUs.
    fn bare(vcpus: usize) -> GuestDescription<'static> {
        GuestDescription {
            ram: r(RAM_BASE, 64 << 20),
            vcpus,
            bootargs: "",
            initrd: None,
            uart: false,
            rtc: false,
            test_device: false,
            gic: None,
            timer: false,
            pmu_ppi: None,
            flash: false,
            virtio_mmio: 0,
        }
    }

    fn blob(guest: &GuestDescription<'_>) -> Vec<u8> {
        let blob = build(guest).unwrap();
        // What a guest would get must pass Aerie's own checks for untrusted trees.
        fdt_check::validate_for_reading(&blob).unwrap();
        blob
    }

    fn u32_cells(node: &FdtNode<'_, '_>, name: &str) -> Vec<u32> {
        let value = node.property(name).unwrap().value;
        assert_eq!(value.len() % 4, 0, "{name}");
        value
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn u64_cells(node: &FdtNode<'_, '_>, name: &str) -> Vec<u64> {
        let value = node.property(name).unwrap().value;
        assert_eq!(value.len() % 8, 0, "{name}");
        value
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn string_list<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
        let value = node.property(name).unwrap().value;
        assert_eq!(value.last(), Some(&0), "{name} is NUL-terminated");
        std::str::from_utf8(&value[..value.len() - 1])
            .unwrap()
            .split('\0')
            .collect()
    }

    fn string<'a>(node: &FdtNode<'_, 'a>, name: &str) -> &'a str {
        let list = string_list(node, name);
        assert_eq!(list.len(), 1, "{name}");
        list[0]
    }

    fn property_names<'a>(node: &FdtNode<'_, 'a>) -> Vec<&'a str> {
        let mut names: Vec<&str> = node.properties().map(|p| p.name).collect();
        names.sort_unstable();
        names
    }

    fn child_names<'a>(node: &FdtNode<'_, 'a>) -> Vec<&'a str> {
        node.children().map(|c| c.name).collect()
    }

    #[test]
    fn virtio_mmio_transports_are_described() {
        let guest = GuestDescription {
            virtio_mmio: 2,
            ..full(1)
        };
        let bytes = blob(&guest);
        let tree = Fdt::new(&bytes).unwrap();
        for (index, name) in ["virtio_mmio@a000000", "virtio_mmio@a000200"]
            .iter()
            .enumerate()
        {
            let node = tree.find_node(&std::format!("/{name}")).unwrap();
            assert_eq!(node.property("compatible").unwrap().value, b"virtio,mmio\0");
            let reg = node.property("reg").unwrap().value;
            let base = 0x0a00_0000 + index as u64 * 0x200;
            assert_eq!(reg[..8], base.to_be_bytes());
            assert_eq!(reg[8..], 0x200u64.to_be_bytes());
            let interrupts = node.property("interrupts").unwrap().value;
            // GIC_SPI (0), SPI 16 + index, level-high (4).
            let expected: Vec<u8> = [0u32, 16 + index as u32, 4]
                .iter()
                .flat_map(|w| w.to_be_bytes())
                .collect();
            assert_eq!(interrupts, expected.as_slice());
        }
        assert!(tree.find_node("/virtio_mmio@a000400").is_none());
    }

    #[test]
    fn mpidr_numbering() {
        // Aff0 = index % 16 (bits 7:0), Aff1 = index / 16 (bits 15:8).
        assert_eq!(vcpu_mpidr(0), 0x000);
        assert_eq!(vcpu_mpidr(1), 0x001);
        assert_eq!(vcpu_mpidr(15), 0x00f);
        assert_eq!(vcpu_mpidr(16), 0x100);
        assert_eq!(vcpu_mpidr(17), 0x101);
        assert_eq!(vcpu_mpidr(MAX_VCPUS - 1), 0xff0f);
        for index in [0, 1, 15, 16, 17, 255, 1000, MAX_VCPUS - 1] {
            assert_eq!(vcpu_index(vcpu_mpidr(index)), Some(index));
        }
        // Aff0 16 or more, Aff2, Aff3, the MT/U/RES1 bits: not a vCPU of Aerie's.
        for bad in [
            0x10,
            0xff,
            0x1_0000,
            0x1_0000_0000,
            1 << 24,
            1 << 30,
            1 << 31,
        ] {
            assert_eq!(vcpu_index(bad), None, "{bad:#x}");
        }
    }

    #[test]
    fn header_root_and_order() {
        let blob = blob(&full(4));
        let tree = Fdt::new(&blob).unwrap();
        let root = tree.find_node("/").unwrap();
        assert_eq!(string(&root, "compatible"), "linux,dummy-virt");
        assert_eq!(string(&root, "model"), "Aerie virtual machine");
        assert_eq!(u32_cells(&root, "#address-cells"), [2]);
        assert_eq!(u32_cells(&root, "#size-cells"), [2]);
        assert_eq!(u32_cells(&root, "interrupt-parent"), [GIC_PHANDLE]);
        assert_eq!(
            property_names(&root),
            [
                "#address-cells",
                "#size-cells",
                "compatible",
                "interrupt-parent",
                "model"
            ]
        );
        assert_eq!(
            child_names(&root),
            [
                "chosen",
                "memory@40000000",
                "cpus",
                "psci",
                "timer",
                "apb-pclk",
                "pl011@9000000",
                "test-device@9060000",
                "intc@8000000",
            ]
        );
        // boot_cpuid_phys (header offset 28) is vCPU 0's MPIDR.
        assert_eq!(&blob[28..32], &[0, 0, 0, 0]);
        assert!(blob.len() < 4096, "{} bytes", blob.len());
    }

    #[test]
    fn chosen_memory_and_psci() {
        let blob = blob(&full(4));
        let tree = Fdt::new(&blob).unwrap();
        let chosen = tree.find_node("/chosen").unwrap();
        assert_eq!(
            string(&chosen, "bootargs"),
            "console=ttyAMA0 earlycon root=/dev/vda"
        );
        assert_eq!(u64_cells(&chosen, "linux,initrd-start"), [0x4820_0000]);
        assert_eq!(u64_cells(&chosen, "linux,initrd-end"), [0x4832_3456]);
        assert_eq!(string(&chosen, "stdout-path"), "/pl011@9000000");
        assert_eq!(
            property_names(&chosen),
            [
                "bootargs",
                "linux,initrd-end",
                "linux,initrd-start",
                "stdout-path"
            ]
        );
        // The fdt crate resolves stdout-path to the UART node.
        assert_eq!(tree.chosen().stdout().unwrap().name, "pl011@9000000");

        let memory = tree.find_node("/memory@40000000").unwrap();
        assert_eq!(string(&memory, "device_type"), "memory");
        assert_eq!(u64_cells(&memory, "reg"), [0x4000_0000, 0x1000_0000]);
        assert_eq!(property_names(&memory), ["device_type", "reg"]);

        let psci = tree.find_node("/psci").unwrap();
        assert_eq!(
            string_list(&psci, "compatible"),
            ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
        );
        assert_eq!(string(&psci, "method"), "hvc");
        // PSCI 0.2+ function IDs (DEN0022 table 5.1), SMC64 where there is one.
        assert_eq!(u32_cells(&psci, "cpu_suspend"), [0xc400_0001]);
        assert_eq!(u32_cells(&psci, "cpu_off"), [0x8400_0002]);
        assert_eq!(u32_cells(&psci, "cpu_on"), [0xc400_0003]);
        assert_eq!(u32_cells(&psci, "migrate"), [0xc400_0005]);
    }

    /// Checks `/cpus` for `vcpus` vCPUs, restating the numbering by hand.
    fn check_cpus(vcpus: usize, expected_names: &[&str]) {
        let blob = blob(&full(vcpus));
        let tree = Fdt::new(&blob).unwrap();
        let cpus = tree.find_node("/cpus").unwrap();
        assert_eq!(u32_cells(&cpus, "#address-cells"), [1]);
        assert_eq!(u32_cells(&cpus, "#size-cells"), [0]);
        assert_eq!(child_names(&cpus), expected_names);
        for cpu in cpus.children() {
            let unit: u32 =
                u32::from_str_radix(cpu.name.strip_prefix("cpu@").unwrap(), 16).unwrap();
            assert_eq!(u32_cells(&cpu, "reg"), [unit]);
            assert_eq!(string(&cpu, "device_type"), "cpu");
            assert_eq!(string(&cpu, "compatible"), "arm,arm-v8");
            assert_eq!(string(&cpu, "enable-method"), "psci");
            assert_eq!(
                property_names(&cpu),
                ["compatible", "device_type", "enable-method", "reg"]
            );
        }
        assert_eq!(tree.cpus().count(), vcpus);
    }

    #[test]
    fn one_vcpu() {
        check_cpus(1, &["cpu@0"]);
    }

    #[test]
    fn four_vcpus() {
        check_cpus(4, &["cpu@0", "cpu@1", "cpu@2", "cpu@3"]);
    }

    #[test]
    fn seventeen_vcpus_use_aff1() {
        // vCPUs 0-15 are Aff1 0, Aff0 0-15; vCPU 16 is Aff1 1, Aff0 0 (reg 0x100).
        let mut names: Vec<std::string::String> = (0..16).map(|i| format!("cpu@{i:x}")).collect();
        names.push("cpu@100".to_string());
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        check_cpus(17, &names);
    }

    #[test]
    fn the_rtc_is_a_pl031_on_the_bus_clock_without_an_interrupt() {
        let with_rtc = GuestDescription {
            rtc: true,
            uart: false,
            ..full(1)
        };
        let with = blob(&with_rtc);
        let tree = Fdt::new(&with).unwrap();
        let rtc = tree.find_node("/pl031@9010000").unwrap();
        assert_eq!(
            string_list(&rtc, "compatible"),
            ["arm,pl031", "arm,primecell"]
        );
        assert_eq!(u64_cells(&rtc, "reg"), [0x0901_0000, 0x1000]);
        assert_eq!(u32_cells(&rtc, "clocks"), [UART_CLOCK_PHANDLE]);
        assert_eq!(string(&rtc, "clock-names"), "apb_pclk");
        assert_eq!(
            property_names(&rtc),
            ["clock-names", "clocks", "compatible", "reg"]
        );
        // The clock is there for the RTC alone too.
        assert!(tree.find_node("/apb-pclk").is_some());
        assert!(tree.find_node("/pl031@9010000").is_some());
        let without = blob(&full(1));
        assert!(
            Fdt::new(&without)
                .unwrap()
                .find_node("/pl031@9010000")
                .is_none()
        );
    }

    #[test]
    fn timer_uart_clock_and_test_device() {
        let blob = blob(&full(2));
        let tree = Fdt::new(&blob).unwrap();

        let timer = tree.find_node("/timer").unwrap();
        assert_eq!(string(&timer, "compatible"), "arm,armv8-timer");
        // <PPI 13 level-low>, <PPI 14 ...>, <PPI 11 ...>, <PPI 10 ...>: INTIDs 29, 30,
        // 27, 26 (arm,arch_timer.yaml order: secure, non-secure, virtual, hypervisor).
        assert_eq!(
            u32_cells(&timer, "interrupts"),
            [1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8]
        );
        assert!(timer.property("always-on").unwrap().value.is_empty());
        assert_eq!(
            property_names(&timer),
            ["always-on", "compatible", "interrupts"]
        );

        let clock = tree.find_node("/apb-pclk").unwrap();
        assert_eq!(string(&clock, "compatible"), "fixed-clock");
        assert_eq!(u32_cells(&clock, "#clock-cells"), [0]);
        assert_eq!(u32_cells(&clock, "clock-frequency"), [24_000_000]);
        assert_eq!(string(&clock, "clock-output-names"), "clk24mhz");
        assert_eq!(u32_cells(&clock, "phandle"), [UART_CLOCK_PHANDLE]);

        let uart = tree.find_node("/pl011@9000000").unwrap();
        assert_eq!(
            string_list(&uart, "compatible"),
            ["arm,pl011", "arm,primecell"]
        );
        assert_eq!(u64_cells(&uart, "reg"), [0x0900_0000, 0x1000]);
        // SPI 1 (INTID 33), level-high.
        assert_eq!(u32_cells(&uart, "interrupts"), [0, 1, 4]);
        assert_eq!(
            u32_cells(&uart, "clocks"),
            [UART_CLOCK_PHANDLE, UART_CLOCK_PHANDLE]
        );
        assert_eq!(string_list(&uart, "clock-names"), ["uartclk", "apb_pclk"]);
        assert_eq!(
            property_names(&uart),
            ["clock-names", "clocks", "compatible", "interrupts", "reg"]
        );
        assert_eq!(
            tree.find_phandle(UART_CLOCK_PHANDLE).unwrap().name,
            "apb-pclk"
        );

        let test = tree.find_node("/test-device@9060000").unwrap();
        assert_eq!(string(&test, "compatible"), "aerie,test-device");
        assert_eq!(u64_cells(&test, "reg"), [TEST_DEVICE, 0x1000]);
        assert_eq!(property_names(&test), ["compatible", "reg"]);
    }

    #[test]
    fn gic_v3_node() {
        let blob = blob(&full(3));
        let tree = Fdt::new(&blob).unwrap();
        let gic = tree.find_node("/intc@8000000").unwrap();
        assert_eq!(string(&gic, "compatible"), "arm,gic-v3");
        assert_eq!(u32_cells(&gic, "#interrupt-cells"), [3]);
        assert_eq!(u32_cells(&gic, "#address-cells"), [0]);
        assert!(
            gic.property("interrupt-controller")
                .unwrap()
                .value
                .is_empty()
        );
        // Distributor 64 KiB, then 3 redistributors of 128 KiB.
        assert_eq!(
            u64_cells(&gic, "reg"),
            [0x0800_0000, 0x1_0000, 0x080a_0000, 0x6_0000]
        );
        // Maintenance interrupt: PPI 9, level-high.
        assert_eq!(u32_cells(&gic, "interrupts"), [1, 9, 4]);
        assert_eq!(u32_cells(&gic, "phandle"), [GIC_PHANDLE]);
        assert_eq!(
            property_names(&gic),
            [
                "#address-cells",
                "#interrupt-cells",
                "compatible",
                "interrupt-controller",
                "interrupts",
                "phandle",
                "reg"
            ]
        );
        // The root's interrupt-parent names the GIC, and the nodes with interrupts
        // inherit it (DT spec 2.4.1).
        let root = tree.find_node("/").unwrap();
        assert_eq!(root.interrupt_parent().unwrap().name, "intc@8000000");
        for path in ["/timer", "/pl011@9000000"] {
            let node = tree.find_node(path).unwrap();
            assert!(node.property("interrupt-parent").is_none(), "{path}");
        }
    }

    #[test]
    fn aeries_own_parser_reads_the_guest_tree() {
        // The host-side parser is an independent reader: it must see the same machine.
        let blob = blob(&full(4));
        let platform = Platform::parse(&blob).unwrap();
        assert_eq!(platform.compatible, "linux,dummy-virt");
        assert_eq!(platform.model, "Aerie virtual machine");
        assert_eq!(platform.memory.as_slice(), [r(RAM_BASE, 256 << 20)]);
        let mpidrs: Vec<u64> = platform.cpus.iter().map(|c| c.mpidr).collect();
        assert_eq!(mpidrs, [0, 1, 2, 3]);
        assert!(
            platform
                .cpus
                .iter()
                .all(|c| c.enable_method == EnableMethod::Psci)
        );
        let psci = platform.psci.unwrap();
        assert_eq!(psci.conduit, Conduit::Hvc);
        assert_eq!(psci.compatible, "arm,psci-1.0");
        assert_eq!(platform.uart.registers, r(UART, 0x1000));
        assert_eq!(platform.uart.irq, Some(Irq(33)));
        assert!(platform.uart.is_stdout);
        let Gic::V3 {
            distributor,
            redistributors,
            its,
            maintenance,
        } = &platform.gic
        else {
            panic!("{:?}", platform.gic)
        };
        assert_eq!(*distributor, r(GIC_DISTRIBUTOR, 0x1_0000));
        assert_eq!(
            redistributors.as_slice(),
            [r(GIC_REDISTRIBUTORS, 4 * 0x2_0000)]
        );
        assert_eq!(*its, None);
        assert_eq!(*maintenance, Some(Irq(25)));
        let timer = platform.timer.unwrap();
        assert_eq!(
            [
                timer.secure_physical,
                timer.physical,
                timer.virtual_timer,
                timer.hypervisor
            ],
            [Irq(29), Irq(30), Irq(27), Irq(26)]
        );
        assert_eq!(timer.hypervisor_virtual, None);
        assert_eq!(
            platform.chosen.bootargs,
            Some("console=ttyAMA0 earlycon root=/dev/vda")
        );
        assert_eq!(platform.chosen.initrd, Some(r(0x4820_0000, 0x12_3456)));
        assert!(platform.virtio_mmio.is_empty());
        assert!(platform.notes.is_empty(), "{:?}", platform.notes);
    }

    #[test]
    fn firmware_guests_get_both_flash_banks() {
        let guest = GuestDescription {
            flash: true,
            ..bare(1)
        };
        let blob = blob(&guest);
        let tree = Fdt::new(&blob).unwrap();
        let flash = tree.find_node("/flash@0").unwrap();
        assert_eq!(string(&flash, "compatible"), "cfi-flash");
        assert_eq!(
            u64_cells(&flash, "reg"),
            [0, 0x0400_0000, 0x0400_0000, 0x0400_0000]
        );
        assert_eq!(u32_cells(&flash, "bank-width"), [4]);
        assert!(
            Fdt::new(&super::build(&bare(1)).unwrap())
                .unwrap()
                .find_node("/flash@0")
                .is_none()
        );
    }

    #[test]
    fn without_a_gic_there_is_no_timer_and_no_interrupts() {
        let guest = GuestDescription {
            uart: true,
            rtc: false,
            timer: true,
            ..bare(2)
        };
        let blob = blob(&guest);
        let tree = Fdt::new(&blob).unwrap();
        let root = tree.find_node("/").unwrap();
        assert_eq!(
            child_names(&root),
            [
                "chosen",
                "memory@40000000",
                "cpus",
                "psci",
                "apb-pclk",
                "pl011@9000000"
            ]
        );
        for node in tree.all_nodes() {
            for property in node.properties() {
                assert!(
                    !property.name.starts_with("interrupt"),
                    "{} has {}",
                    node.name,
                    property.name
                );
            }
        }
        assert!(tree.find_compatible(&["arm,armv8-timer"]).is_none());
    }

    #[test]
    fn bare_guest_has_only_ram_cpus_and_psci() {
        let blob = blob(&bare(1));
        let tree = Fdt::new(&blob).unwrap();
        let root = tree.find_node("/").unwrap();
        assert_eq!(
            child_names(&root),
            ["chosen", "memory@40000000", "cpus", "psci"]
        );
        assert_eq!(
            property_names(&root),
            ["#address-cells", "#size-cells", "compatible", "model"]
        );
        let chosen = tree.find_node("/chosen").unwrap();
        // An empty command line is still written, as an empty string.
        assert_eq!(property_names(&chosen), ["bootargs"]);
        assert_eq!(chosen.property("bootargs").unwrap().value, b"\0");
        // No phandles at all without a GIC or a UART.
        assert!(tree.all_nodes().all(|n| n.property("phandle").is_none()));
    }

    #[test]
    fn the_pmu_node_names_its_ppi_and_needs_a_gic() {
        let with_pmu = GuestDescription {
            pmu_ppi: Some(7),
            ..full(2)
        };
        let blob = blob(&with_pmu);
        let tree = Fdt::new(&blob).unwrap();
        let pmu = tree.find_node("/pmu").unwrap();
        assert_eq!(string(&pmu, "compatible"), "arm,armv8-pmuv3");
        // <PPI 7 level-high>: INTID 23 on every vCPU.
        assert_eq!(u32_cells(&pmu, "interrupts"), [1, 7, 4]);
        assert_eq!(property_names(&pmu), ["compatible", "interrupts"]);
        // Parsed back as a host tree, it is the PMU Aerie itself would use.
        let platform = crate::platform::Platform::parse(&blob).unwrap();
        assert_eq!(platform.pmu, Some(crate::platform::Irq(23)));

        assert!(
            Fdt::new(&self::blob(&full(2)))
                .unwrap()
                .find_node("/pmu")
                .is_none()
        );
        let no_gic = GuestDescription {
            pmu_ppi: Some(7),
            ..bare(1)
        };
        let blob = self::blob(&no_gic);
        assert!(Fdt::new(&blob).unwrap().find_node("/pmu").is_none());
        let bad = GuestDescription {
            pmu_ppi: Some(16),
            ..full(1)
        };
        assert_eq!(build(&bad), Err(GuestFdtError::BadPmuPpi { ppi: 16 }));
        assert_eq!(
            GuestFdtError::BadPmuPpi { ppi: 16 }.to_string(),
            "the guest's PMU interrupt PPI 16 is not a PPI (0-15)"
        );
    }

    #[test]
    fn gic_without_timer_and_timer_without_uart() {
        let guest = GuestDescription {
            gic: Some(gic_v3(1)),
            ..bare(1)
        };
        let blob = blob(&guest);
        let tree = Fdt::new(&blob).unwrap();
        assert!(tree.find_node("/timer").is_none());
        assert!(tree.find_node("/intc@8000000").is_some());
        let guest = GuestDescription {
            timer: true,
            ..guest
        };
        let blob = self::blob(&guest);
        let tree = Fdt::new(&blob).unwrap();
        assert!(tree.find_node("/timer").is_some());
        assert!(tree.find_node("/apb-pclk").is_none());
        assert!(tree.chosen().stdout().is_none());
    }

    #[test]
    fn ram_elsewhere_names_the_memory_node_after_it() {
        let guest = GuestDescription {
            ram: r(0x8000_0000, 1 << 30),
            ..bare(1)
        };
        let blob = blob(&guest);
        let tree = Fdt::new(&blob).unwrap();
        let memory = tree.find_node("/memory@80000000").unwrap();
        assert_eq!(u64_cells(&memory, "reg"), [0x8000_0000, 1 << 30]);
    }

    #[test]
    fn refused_descriptions() {
        assert_eq!(build(&bare(0)), Err(GuestFdtError::NoVcpus));
        assert_eq!(
            build(&bare(MAX_VCPUS + 1)),
            Err(GuestFdtError::TooManyVcpus {
                vcpus: MAX_VCPUS + 1
            })
        );
        let nul = GuestDescription {
            bootargs: "a\0b",
            ..bare(1)
        };
        assert_eq!(build(&nul), Err(GuestFdtError::BootargsContainNul));
        let small = GuestDescription {
            gic: Some(gic_v3(2)),
            ..bare(3)
        };
        assert_eq!(
            build(&small),
            Err(GuestFdtError::RedistributorsTooSmall {
                vcpus: 3,
                size: 0x4_0000
            })
        );
        let bad_ppi = GuestDescription {
            gic: Some(GicDescription::V3 {
                distributor: r(GIC_DISTRIBUTOR, GIC_DISTRIBUTOR_SIZE),
                redistributors: r(GIC_REDISTRIBUTORS, GIC_REDISTRIBUTOR_SIZE),
                maintenance_ppi: 16,
            }),
            ..bare(1)
        };
        assert_eq!(
            build(&bad_ppi),
            Err(GuestFdtError::BadMaintenancePpi { ppi: 16 })
        );
        assert_eq!(
            GuestFdtError::RedistributorsTooSmall {
                vcpus: 3,
                size: 0x4_0000
            }
            .to_string(),
            "the guest's GICv3 redistributor region (0x40000 bytes) is too small for 3 vCPUs \
             of 0x20000 bytes each"
        );
        assert_eq!(
            GuestFdtError::TooManyVcpus { vcpus: 5000 }.to_string(),
            "the guest cannot have 5000 vCPUs; at most 4096 are supported"
        );
        assert!(
            GuestFdtError::Writer(vm_fdt::Error::InvalidString)
                .to_string()
                .contains("Strings cannot contain NUL")
        );
    }

    #[test]
    fn the_largest_guest_fits_the_2_mib_limit() {
        let blob = blob(&full(MAX_VCPUS));
        assert!(blob.len() < 2 << 20, "{} bytes", blob.len());
        let tree = Fdt::new(&blob).unwrap();
        assert_eq!(tree.cpus().count(), MAX_VCPUS);
        assert!(tree.find_node("/cpus/cpu@ff0f").is_some());
    }
}
