//! The virtual machine: its memory, devices, vCPUs and how they run.
//!
//! Aerie runs one guest. It arrives as a bundle (kernel, initrd, command line) in
//! the host's initrd; [`create`] takes it apart, gives the guest its RAM through
//! stage 2, writes the kernel, initrd and a generated device tree into that RAM,
//! and sets up the emulated devices. [`run_vcpu`] then runs one vCPU on the calling
//! CPU until the vCPU turns itself off.

pub mod bundle;
mod console;
mod devices;
mod exits;
mod flash;
mod host_irq;
mod interrupts;
pub mod pmu;
mod ram;
mod run;
pub mod snapshot;
mod stage2_tables;
mod stats;
mod vcpu;
mod virtio;

pub use ram::GuestRam;
pub use run::run_vcpu;

use crate::arch::{cpu, hyp_config};
use crate::memory;
use aerie_devices::bus::{DeviceId, MmioBus};
use aerie_devices::pl011::Pl011;
use aerie_devices::pl031::Pl031;
use aerie_devices::testdev::TestDevice;
use aerie_devices::vgic::{Vgic, VgicV2, VgicV2Config, VgicV3, VgicV3Config};
use aerie_hyp::cpu_model::GuestCpu;
use aerie_hyp::guest_fdt::{self, GicDescription, GuestDescription};
use aerie_hyp::guest_layout;
use aerie_hyp::loader::{self, LoadPlan};
use aerie_hyp::memory::Range;
use aerie_hyp::stage2;
use aerie_hyp::vcpu::guest_mpidr;
use aerie_hyp::vpsci::PsciState;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::fmt;
use devices::{GuestDevice, Model};

/// The VMID of Aerie's (single) guest.
const VMID: u8 = 1;
/// The guest's maintenance interrupt, as a PPI number (INTID 25).
const MAINTENANCE_PPI: u32 = 9;

/// Everything the vCPUs share.
pub struct Vm {
    /// How many vCPUs the guest has.
    pub vcpus: usize,
    /// The guest's RAM.
    pub ram: GuestRam,
    /// Emulated devices by guest physical address: every device the guest reaches
    /// by MMIO but the vGIC, added in the order snapshots describe them.
    pub bus: crate::sync::Mutex<MmioBus<GuestDevice>>,
    /// The guest's UART on the bus, for typed input.
    pub uart: DeviceId,
    /// The guest's virtio-console on the bus, for typed input switched to it.
    pub hvc0: Option<DeviceId>,
    /// The guest kernel's command line (recorded in snapshots).
    pub command_line: String,
    /// The virtual GIC: a GICv3 on GICv3 hosts, a GICv2 on GICv2 hosts.
    pub vgic: Option<crate::sync::Mutex<Box<dyn Vgic + Send>>>,
    /// Bumped on every change to the vGIC's state (see `interrupts::vgic_changed`).
    pub vgic_generation: core::sync::atomic::AtomicU64,
    /// The vGIC's register window in guest physical addresses.
    pub vgic_window: Option<Range>,
    /// What Aerie does with each physical interrupt that arrives while a vCPU runs.
    pub host_interrupts: host_irq::HostInterrupts,
    /// PSCI power states of the vCPUs.
    pub psci: crate::sync::Mutex<PsciState>,
    /// Where vCPU 0 starts, and its x0 (the device tree; 0 for firmware).
    pub boot_entry: (u64, u64),
    /// The guest's stage-2 tables (changed while the guest runs only for the flash
    /// banks of a firmware guest).
    pub stage2: crate::sync::Mutex<stage2_tables::GuestTables>,
    /// Whether the guest's virtual count is ahead of the host counter (a restored
    /// snapshot), so CNTVOFF_EL2 wraps (see `interrupts::virtual_timer_deadline`).
    pub virtual_offset_wraps: bool,
    /// The PMU's overflow interrupt (an INTID, the same physical and virtual PPI)
    /// when the guest owns the host's PMU (`pmu`); `None`: the guest has no PMU.
    pub pmu_intid: Option<u32>,
    /// The CPU the guest sees: its feature ID registers (HCR_EL2.TID3 traps the
    /// guest's reads, `exits` answers them from here) and CTR_EL0.
    pub cpu: GuestCpu,
    /// EL2 controls common to every vCPU (VMPIDR differs per vCPU).
    control: hyp_config::GuestControl,
}

impl Vm {
    /// The EL2 controls for vCPU `index`.
    pub fn control_for(&self, index: usize) -> hyp_config::GuestControl {
        /// MPIDR_EL1 bit 31 is RES1.
        const MPIDR_RES1: u64 = 1 << 31;
        hyp_config::GuestControl {
            vmpidr: MPIDR_RES1 | guest_mpidr(index),
            ..self.control
        }
    }
}

static VM: spin::Once<Vm> = spin::Once::new();

/// The guest's virtual GIC window (the registers Aerie emulates by trapping).
pub fn vgic_window(vgic: &dyn Vgic) -> Range {
    Range::from_start_size(guest_layout::GIC_DISTRIBUTOR, vgic.window_size())
        .expect("the vGIC window is small")
}

/// The guest's interrupt controller.
#[derive(Debug, Clone, Copy)]
pub enum GuestGic {
    /// A GICv3, all emulated.
    V3,
    /// A GICv2: the distributor emulated, the CPU interface being the host's virtual
    /// CPU interface (GICV) at these host addresses.
    V2 {
        /// The host's GICV frame.
        virtual_cpu_interface: Range,
    },
}

/// What the guest should get.
pub struct GuestConfig {
    /// Number of vCPUs.
    pub vcpus: usize,
    /// Its RAM, already taken from the free memory.
    pub ram: GuestRam,
    /// Whether to add the test device.
    pub test_device: bool,
    /// Whether to give the guest a real-time clock (needs the host's wall clock,
    /// [`crate::wall_clock`]).
    pub rtc: bool,
    /// Which GIC the guest gets (follows the host's), if any.
    pub gic: Option<GuestGic>,
    /// The host UART's interrupt, for console input.
    pub host_uart_intid: Option<u32>,
    /// Host disks to give the guest as virtio-blk devices.
    pub disks: alloc::vec::Vec<crate::virtio_probe::OpenDisk>,
    /// The PMU's overflow interrupt (an INTID) when the guest owns the host's PMU
    /// ([`pmu::host_interrupt`]).
    pub pmu_intid: Option<u32>,
    /// The host disk behind a firmware guest's flash variable store, if any.
    pub flash_vars: Option<crate::virtio_probe::OpenDisk>,
    /// How guest RAM is mapped at stage 2.
    pub stage2_leaves: stage2::Leaves,
}

/// Why the guest cannot be created. The message says what to change.
pub struct VmError(String);

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first PPI's INTID.
const PPI_BASE: u32 = 16;

fn range(start: u64, size: u64) -> Range {
    Range::from_start_size(start, size).expect("guest layout constants do not wrap")
}

fn error(message: impl Into<String>) -> VmError {
    VmError(message.into())
}

/// The guest's virtual GIC, and how its device tree describes it.
type GuestVgic = (Option<Box<dyn Vgic + Send>>, Option<GicDescription>);

/// Makes the virtual GIC `config` asks for.
fn make_vgic(config: &GuestConfig) -> Result<GuestVgic, VmError> {
    Ok(match config.gic {
        Some(GuestGic::V3) => {
            let vgic = VgicV3::new(VgicV3Config::new(config.vcpus))
                .map_err(|e| error(format!("virtual GIC: {e}")))?;
            let description = GicDescription::V3 {
                distributor: range(
                    guest_layout::GIC_DISTRIBUTOR,
                    guest_layout::GIC_DISTRIBUTOR_SIZE,
                ),
                redistributors: range(
                    guest_layout::GIC_REDISTRIBUTORS,
                    guest_layout::GIC_REDISTRIBUTOR_SIZE * config.vcpus as u64,
                ),
                maintenance_ppi: MAINTENANCE_PPI,
            };
            (Some(Box::new(vgic)), Some(description))
        }
        Some(GuestGic::V2 { .. }) => {
            let vgic = VgicV2::new(VgicV2Config::new(config.vcpus))
                .map_err(|e| error(format!("virtual GIC: {e}")))?;
            let description = GicDescription::V2 {
                distributor: range(guest_layout::GIC_DISTRIBUTOR, vgic.window_size()),
                cpu_interface: range(
                    guest_layout::GIC_CPU_INTERFACE,
                    guest_layout::GIC_CPU_INTERFACE_SIZE,
                ),
                maintenance_ppi: MAINTENANCE_PPI,
            };
            (Some(Box::new(vgic)), Some(description))
        }
        None => (None, None),
    })
}

/// How many virtio-mmio transports `config` gives the guest: its disks, the
/// console, and the entropy device when there is a source.
fn virtio_count(config: &GuestConfig) -> usize {
    config.disks.len() + 1 + usize::from(virtio::RndrSource::available())
}

/// Builds the VM from the bundle: loads the kernel, initrd and a generated device
/// tree into guest RAM, ready for vCPU 0 to start at [`Vm::boot_entry`]; or, for a
/// firmware bundle, the flash banks, started at the reset vector. A kernel that
/// already lies where the plan puts it (guest RAM was placed around it) is not
/// copied; the bundle's other members may lie in guest RAM too, so they are moved
/// out of the way before anything else is written there.
pub fn create(bundle: &bundle::BundleInRam, config: GuestConfig) -> Result<&'static Vm, VmError> {
    let bundle = match bundle {
        bundle::BundleInRam::Kernel(kernel) => kernel,
        bundle::BundleInRam::Firmware(firmware) => {
            return bundle::with_bytes(*firmware, |bytes| create_firmware_guest(bytes, config));
        }
    };
    let header = bundle.header;
    let ram = config.ram;
    let initrd = bundle.initrd;
    let cmdline = bundle.cmdline.as_str();
    let vgic = make_vgic(&config)?;
    let gic_description = vgic.1;
    let describe = |initrd_range: Option<Range>| GuestDescription {
        ram: ram.guest,
        vcpus: config.vcpus,
        bootargs: cmdline,
        initrd: initrd_range,
        uart: true,
        rtc: config.rtc,
        test_device: config.test_device,
        gic: gic_description,
        timer: gic_description.is_some(),
        pmu_ppi: config.pmu_intid.map(|intid| intid - PPI_BASE),
        flash: false,
        virtio_mmio: virtio_count(&config),
    };
    let probe = guest_fdt::build(&describe(
        initrd.map(|i| Range::from_start_size(0, i.size()).unwrap()),
    ))
    .map_err(|e| error(format!("guest device tree: {e}")))?;
    let plan: LoadPlan = loader::plan(
        ram.guest,
        &header,
        bundle.kernel.size(),
        initrd.map(|i| i.size()),
        probe.len() as u64,
    )
    .map_err(|e| error(format!("{e}")))?;
    let device_tree = guest_fdt::build(&describe(plan.initrd))
        .map_err(|e| error(format!("guest device tree: {e}")))?;

    // SAFETY: the kernel's range is the bundle's member, in RAM that Aerie maps
    // one-to-one, and no Rust reference covers it (`BundleInRam` keeps addresses
    // only). When it is not already in place, guest RAM does not overlap the bundle
    // at all.
    let kernel = unsafe { ram.place(plan.kernel.start(), bundle.kernel) }
        .ok_or_else(|| error("kernel does not fit"))?;
    if let (Some(bytes), Some(range)) = (initrd, plan.initrd) {
        // SAFETY: as for the kernel. When the kernel is in place, the initrd's bytes
        // follow its bytes inside guest RAM (where the kernel's BSS will be) and
        // `place` moves them even if the ranges overlap; the device tree, which may
        // land on them, is written only after that.
        unsafe { ram.place(range.start(), bytes) }.ok_or_else(|| error("initrd does not fit"))?;
    }
    ram.write(plan.device_tree.start(), &device_tree)
        .ok_or_else(|| error("device tree does not fit"))?;

    log::info!(
        "guest: {} vCPU(s), {} RAM, kernel at {:#x}{}, device tree at {:#x}{}",
        config.vcpus,
        aerie_hyp::units::ByteSize(ram.guest.size()),
        plan.kernel.start(),
        if kernel == ram::Placement::AlreadyThere {
            " (where the loader put it: not copied)"
        } else {
            ""
        },
        plan.device_tree.start(),
        plan.initrd.map_or(String::new(), |r| format!(
            ", initrd at {:#x} ({})",
            r.start(),
            aerie_hyp::units::ByteSize(r.size())
        )),
    );
    if !cmdline.is_empty() {
        log::info!("guest command line: {cmdline}");
    }
    let boot = Boot {
        entry: (plan.entry, plan.device_tree.start()),
        command_line: String::from(cmdline),
        cntvoff: cpu::counter(),
        flash: None,
    };
    assemble(config, vgic.0, boot)
}

/// Builds a firmware guest (see [`aerie_hyp::firmware`]): the firmware in flash
/// bank 0, the variable store from its disk in bank 1, the device tree at the start
/// of RAM, vCPU 0 at the reset vector.
fn create_firmware_guest(firmware: &[u8], mut config: GuestConfig) -> Result<&'static Vm, VmError> {
    let ram = config.ram;
    let vgic = make_vgic(&config)?;
    let description = GuestDescription {
        ram: ram.guest,
        vcpus: config.vcpus,
        bootargs: "",
        initrd: None,
        uart: true,
        rtc: config.rtc,
        test_device: config.test_device,
        gic: vgic.1,
        timer: vgic.1.is_some(),
        pmu_ppi: config.pmu_intid.map(|intid| intid - PPI_BASE),
        flash: true,
        virtio_mmio: virtio_count(&config),
    };
    let device_tree =
        guest_fdt::build(&description).map_err(|e| error(format!("guest device tree: {e}")))?;
    let vars_disk = config.flash_vars.take();
    let vars_size = vars_disk
        .as_ref()
        .map(|open| open.disk.capacity_sectors() * 512);
    let plan = aerie_hyp::firmware::plan(
        ram.guest,
        firmware.len() as u64,
        vars_size,
        device_tree.len() as u64,
    )
    .map_err(|e| error(format!("firmware: {e}")))?;
    let no_memory = || error("firmware: no host memory left for the flash banks");
    let code = flash::HostFlash::allocate(guest_layout::FLASH_CODE, plan.code_backed, None)
        .ok_or_else(no_memory)?;
    code.memory()
        .write(guest_layout::FLASH_CODE, firmware)
        .ok_or_else(|| error("firmware does not fit its flash bank"))?;
    let mut vars =
        flash::HostFlash::allocate(guest_layout::FLASH_VARS, plan.vars_backed, vars_disk)
            .ok_or_else(no_memory)?;
    vars.load_from_disk().map_err(error)?;
    if plan.vars_backed == 0 {
        log::warn!("firmware: no flash variable store disk: settings will not be kept");
    }
    ram.write(plan.device_tree.start(), &device_tree)
        .ok_or_else(|| error("device tree does not fit"))?;
    log::info!(
        "guest: {} vCPU(s), {} RAM, firmware ({}) in flash at {:#x}, variable store {}, \
         device tree at {:#x}",
        config.vcpus,
        aerie_hyp::units::ByteSize(ram.guest.size()),
        aerie_hyp::units::ByteSize(firmware.len() as u64),
        guest_layout::FLASH_CODE,
        aerie_hyp::units::ByteSize(plan.vars_backed),
        plan.device_tree.start(),
    );
    let boot = Boot {
        // A reset: x0 is 0 like every other register.
        entry: (plan.entry, 0),
        command_line: String::new(),
        cntvoff: cpu::counter(),
        flash: Some([code, vars]),
    };
    assemble(config, vgic.0, boot)
}

/// Builds the VM for a snapshot being restored: the same devices as [`create`],
/// but guest RAM is left alone (the snapshot fills it) and the guest's virtual
/// counter starts from `virtual_count`, where the snapshot left it; a firmware
/// guest's `flash` banks come filled (their modes and mappings follow once the
/// devices' states are back: [`flash::follow_restored_modes`]).
pub fn create_restored(
    config: GuestConfig,
    command_line: String,
    virtual_count: u64,
    flash: Option<[flash::HostFlash; 2]>,
) -> Result<&'static Vm, VmError> {
    let vgic = make_vgic(&config)?;
    let boot = Boot {
        entry: (0, 0),
        command_line,
        // CNTVCT = CNTPCT - CNTVOFF: the guest's count goes on from where it was.
        cntvoff: cpu::counter().wrapping_sub(virtual_count),
        flash,
    };
    assemble(config, vgic.0, boot)
}

/// How the guest starts: what [`assemble`] needs besides the devices.
struct Boot {
    entry: (u64, u64),
    command_line: String,
    cntvoff: u64,
    /// A firmware guest's flash banks: code, variable store.
    flash: Option<[flash::HostFlash; 2]>,
}

/// Maps guest RAM, puts the devices on the bus and makes the VM.
fn assemble(
    config: GuestConfig,
    vgic: Option<Box<dyn Vgic + Send>>,
    boot: Boot,
) -> Result<&'static Vm, VmError> {
    let ram = config.ram;
    let gicv = match config.gic {
        Some(GuestGic::V2 {
            virtual_cpu_interface,
        }) => Some(virtual_cpu_interface),
        _ => None,
    };
    let mut tables = stage2_tables::map_guest_memory(&ram, gicv, config.stage2_leaves)
        .map_err(|e| error(format!("stage 2: {e}")))?;
    let root = tables.root();
    let vtcr =
        stage2::vtcr(cpu::physical_address_range()).map_err(|e| error(format!("stage 2: {e}")))?;

    let mut bus = MmioBus::new();
    let add = |bus: &mut MmioBus<GuestDevice>, base, size, model, intid| {
        bus.add(base, size, GuestDevice::new(model, intid))
            .map_err(|e| error(format!("device map: {e}")))
    };
    let uart = add(
        &mut bus,
        guest_layout::UART,
        guest_layout::UART_SIZE,
        Model::Uart(Pl011::new()),
        Some(interrupts::GUEST_UART_INTID),
    )?;
    if config.rtc {
        let clock = Box::new(crate::wall_clock::HostWallClock);
        add(
            &mut bus,
            guest_layout::RTC,
            guest_layout::RTC_SIZE,
            Model::Rtc(Pl031::new(clock)),
            None,
        )?;
    }
    if config.test_device {
        add(
            &mut bus,
            guest_layout::TEST_DEVICE,
            guest_layout::TEST_DEVICE_SIZE,
            Model::Test(TestDevice::new()),
            None,
        )?;
    }
    if let Some(banks) = boot.flash {
        let bases = [guest_layout::FLASH_CODE, guest_layout::FLASH_VARS];
        for ((bank, base), write_protected) in banks.into_iter().zip(bases).zip([true, false]) {
            let mut bank = Box::new(aerie_devices::cfi_flash::CfiFlash::new(
                bank,
                write_protected,
            ));
            flash::follow_mode(&mut tables, &mut bank)
                .map_err(|e| error(format!("stage 2: flash: {e}")))?;
            add(
                &mut bus,
                base,
                guest_layout::FLASH_BANK_SIZE,
                Model::Flash(bank),
                None,
            )?;
        }
    }
    let mut hvc0 = None;
    for (index, model) in virtio_models(config.disks).into_iter().enumerate() {
        let is_console = matches!(model, Model::Console(_));
        let id = add(
            &mut bus,
            virtio::transport_address(index),
            guest_layout::VIRTIO_MMIO_STRIDE,
            model,
            Some(virtio::transport_intid(index)),
        )?;
        if is_console {
            hvc0 = Some(id);
        }
    }
    let mut host_interrupts = host_irq::HostInterrupts::new();
    interrupts::register_handlers(&mut host_interrupts);
    if let Some(intid) = config.host_uart_intid {
        host_interrupts.register(intid, console::host_input);
    }
    if let Some(intid) = config.pmu_intid {
        host_interrupts.register(intid, pmu::overflow_fired);
    }
    let vm = Vm {
        vcpus: config.vcpus,
        ram,
        bus: crate::sync::Mutex::new(bus),
        uart,
        hvc0,
        command_line: boot.command_line,
        vgic_window: vgic.as_deref().map(|vgic| vgic_window(vgic)),
        vgic: vgic.map(crate::sync::Mutex::new),
        vgic_generation: core::sync::atomic::AtomicU64::new(0),
        host_interrupts,
        psci: crate::sync::Mutex::new(PsciState::new(config.vcpus)),
        boot_entry: boot.entry,
        stage2: crate::sync::Mutex::new(tables),
        virtual_offset_wraps: boot.cntvoff > cpu::counter(),
        pmu_intid: config.pmu_intid,
        cpu: cpu::guest_cpu(
            matches!(config.gic, Some(GuestGic::V3)),
            config.pmu_intid.is_some(),
        ),
        control: hyp_config::GuestControl {
            hcr: hyp_config::guest_hcr(),
            vtcr,
            vttbr: stage2::vttbr(VMID, root),
            cntvoff: boot.cntvoff,
            vmpidr: 0,
            pmu: config.pmu_intid.is_some(),
        },
    };
    Ok(VM.call_once(|| vm))
}

/// The guest's virtio devices, transport 0 first: a virtio-blk per host disk, the
/// virtio-console, and the virtio-rng when there is an entropy source. Transport `i`
/// sits at its slot in the guest layout with SPI 16 + `i`.
fn virtio_models(disks: alloc::vec::Vec<crate::virtio_probe::OpenDisk>) -> alloc::vec::Vec<Model> {
    use aerie_devices::virtio::{Block, Console, MmioTransport, Rng};
    let mut models: alloc::vec::Vec<Model> = disks
        .into_iter()
        .map(|disk| {
            let backend = virtio::HostBackend::new(disk);
            Model::Block(Box::new(MmioTransport::new(Block::new(backend))))
        })
        .collect();
    models.push(Model::Console(MmioTransport::new(Console::new())));
    if virtio::RndrSource::available() {
        models.push(Model::Rng(MmioTransport::new(Rng::new(virtio::RndrSource))));
    }
    models
}

/// How much RAM the guest gets by default: the largest free block, less what Aerie
/// keeps for itself (stacks, stage-2 tables), in whole 2 MiB blocks.
pub fn default_guest_memory(largest_free: u64, leaves: stage2::Leaves) -> u64 {
    /// Memory Aerie keeps for its own allocations after the guest's share.
    const AERIE_RESERVE: u64 = 32 << 20;
    // Mapped with pages, each 2 MiB of guest RAM takes a 4 KiB table.
    let tables = match leaves {
        stage2::Leaves::Blocks => 0,
        stage2::Leaves::Pages => largest_free / 512,
    };
    largest_free
        .saturating_sub(AERIE_RESERVE + tables)
        .min(guest_layout::MAX_RAM)
        & !((2 << 20) - 1)
}

/// Host memory for the guest's page tables comes from the frame allocator.
pub(crate) fn allocate_table_frame() -> Option<u64> {
    memory::allocate_frames(1).map(|frame| frame.start())
}
