//! The boot sequence of the boot CPU, one step per function call.
//!
//! 1. Find and validate the device tree, switch the console to its UART.
//! 2. Refuse unsuitable machines: wrong exception level, no usable GIC, too little
//!    RAM.
//! 3. Plan memory, build the identity map, turn on the MMU and caches.
//! 4. Heap, frame allocator, logger.
//! 5. Identify the host's virtio-mmio devices, start the secondary CPUs.
//! 6. Print the hardware summary; run a requested self-test; power off.

use crate::arch::{cpu, mmu};
use crate::device_tree;
use crate::drivers::{gicv2, gicv3};
use crate::memory::{self, ImageLayout};
use crate::stop;
use crate::vm::snapshot::restore;
use crate::{VERSION, logger, smp, virtio_probe, vm};
use aerie_hyp::bootargs::{self, SelfTest};
use aerie_hyp::memory::Range;
use aerie_hyp::platform::{Gic, MAX_REDISTRIBUTOR_REGIONS, MAX_VIRTIO_SLOTS, Platform};
use aerie_hyp::stage2::Leaves;
use aerie_hyp::summary::{CpuIdentity, Summary};
use arrayvec::ArrayVec;

/// The only exception level Aerie can run at.
const HYPERVISOR_EL: u64 = 2;

unsafe extern "C" {
    static exception_vectors: u8;
}

/// The boot CPU's Rust entry point, called by `primary_entry` with the loader's x0
/// and the exception level it found.
#[unsafe(no_mangle)]
extern "C" fn aerie_primary_main(device_tree_address: usize, exception_level: u64) -> ! {
    logger::mark_start();
    let tree = match device_tree::load(device_tree_address) {
        Ok(tree) => tree,
        Err(error) => stop::refuse(format_args!("{error}")),
    };
    let Prepared {
        image,
        mut free,
        mmu_settings,
        options,
        heap_size,
    } = prepare(&tree, exception_level);
    // The loader's device tree may lie where the guest's RAM is best placed (QEMU
    // puts it right after the guest bundle): from here on Aerie reads a copy on its
    // heap, and the original's memory is free. `prepare` kept no reference to it.
    let (blob, original) = tree.keep_on_heap();
    let platform = match Platform::parse(blob) {
        Ok(platform) => platform,
        Err(error) => stop::refuse(format_args!("{error}")),
    };
    give_back_device_tree(&mut free, original, &platform, &image);
    let guest_memory = (platform.chosen.initrd.is_some() || options.restore).then(|| {
        let leaves = stage2_leaves(&platform, &options);
        take_guest_memory(&mut free, &options, leaves, platform.chosen.initrd)
    });
    memory::init_frames(&free);

    init_host_gic(&platform);
    crate::wall_clock::init(&platform, options.wall_clock);
    let virtio_devices = virtio_probe::probe(&platform.virtio_mmio);
    let vbar = &raw const exception_vectors as u64;
    let cpu_failures = smp::start_secondaries(&platform, &mmu_settings, vbar);
    let cpus_online = smp::ping_all(&platform);
    let psci_version = platform
        .psci
        .and_then(|psci| crate::psci::version(psci.conduit));

    let summary = Summary {
        platform: &platform,
        version: VERSION,
        entered_el: exception_level as u8,
        cpu: CpuIdentity(cpu::midr()),
        counter_hz: cpu::counter_frequency(),
        cpus_online,
        cpu_failures: &cpu_failures,
        psci_version,
        image: image.whole,
        free_memory: memory::free_bytes(),
        heap_size,
        virtio_devices: &virtio_devices,
    };
    crate::console::write_fmt(format_args!("{summary}"));

    match options.selftest {
        Some(SelfTest::Exception) => provoke_exception(&platform),
        Some(SelfTest::Panic) => panic!("self-test requested by aerie.selftest=panic"),
        Some(SelfTest::Disk) => disk_self_test(),
        Some(SelfTest::StackOverflow) => crate::selftest::stack_overflow(&platform),
        Some(SelfTest::BrokenStack) => crate::selftest::broken_stack(&platform),
        Some(SelfTest::BrokenExceptionStack) => crate::selftest::broken_exception_stack(&platform),
        None => {}
    }
    match (platform.chosen.initrd, guest_memory) {
        (bundle, Some(ram)) => start_guest(&platform, &options, bundle, ram, cpus_online),
        _ => {
            println!("Aerie: no guest given (pass a guest bundle as the initrd; see README)");
            stop::power_off()
        }
    }
}

/// What the first boot steps leave for the rest.
struct Prepared {
    image: ImageLayout,
    free: memory::FreeMemory,
    mmu_settings: mmu::MmuSettings,
    options: bootargs::BootOptions,
    heap_size: u64,
}

/// Steps 1 to 4 on the device tree the loader passed: the console, the checks of
/// the machine, the memory plan, the MMU, the logger and the heap. Nothing returned
/// borrows from `tree`.
fn prepare(tree: &device_tree::DeviceTree, exception_level: u64) -> Prepared {
    let parsed = Platform::parse(tree.blob);
    if let Ok(platform) = &parsed {
        crate::console::use_uart(platform.uart.registers.start() as usize);
    }
    println!(
        "\nAerie {VERSION}: entered at EL{exception_level} on CPU MPIDR {:#x}",
        cpu::mpidr()
    );
    if exception_level != HYPERVISOR_EL {
        stop::refuse(format_args!(
            "Aerie was entered at EL{exception_level}, but a hypervisor must start at EL2 \
             (on QEMU, add virtualization=on to -machine)"
        ));
    }
    let platform = match parsed {
        Ok(platform) => platform,
        Err(error) => stop::refuse(format_args!("{error}")),
    };
    if let Some(psci) = platform.psci {
        crate::psci::set_conduit(psci.conduit);
    }
    route_console_pins(&platform);
    check_gic(&platform);

    let image = ImageLayout::current();
    let mut free = match memory::plan(&platform, &image, tree.range) {
        Ok(free) => free,
        Err(error) => stop::refuse(format_args!("{error}")),
    };
    let boot_index = platform.cpus.iter().position(|c| c.mpidr == cpu::mpidr());
    if !crate::stacks::reserve(&mut free, platform.cpus.len(), boot_index) {
        stop::refuse(format_args!("no room in RAM for the CPUs' stacks"));
    }
    let mmu_settings = enable_mmu(&platform, &image, tree.range);
    crate::console::enable_locking();

    let (options, unknown_options) = bootargs::parse(platform.chosen.bootargs.unwrap_or(""));
    logger::init(options.log_level);
    for unknown in &unknown_options {
        log::warn!("{unknown}");
    }
    for note in &platform.notes {
        log::warn!("device tree: {note}");
    }
    log::debug!("boot page tables: {} pages", mmu_settings.table_pages);
    let Some(heap_size) = memory::init_heap(&mut free) else {
        stop::refuse(format_args!("no contiguous RAM for Aerie's heap"))
    };
    Prepared {
        image,
        free,
        mmu_settings,
        options,
        heap_size,
    }
}

/// Makes the memory of the loader's device tree free again (Aerie reads a copy), if
/// it is ordinary RAM: inside a RAM bank, clear of the firmware's reservations,
/// Aerie's image and the initrd.
fn give_back_device_tree(
    free: &mut memory::FreeMemory,
    original: Range,
    platform: &Platform<'_>,
    image: &ImageLayout,
) {
    let Some(pages) = original.align_inward(aerie_hyp::paging::PAGE_SIZE) else {
        return;
    };
    let in_ram = platform.memory.iter().any(|bank| bank.covers(&pages));
    let mut taken = platform
        .reserved
        .iter()
        .map(|reserved| reserved.range)
        .chain([image.whole])
        .chain(platform.chosen.initrd);
    if in_ram && !taken.any(|range| range.overlaps(&pages)) && free.insert(pages).is_err() {
        log::debug!("the device tree's memory stays reserved: too many free ranges");
    }
}

/// Takes the guest's RAM out of the free memory, before the frame allocator gets
/// the rest. Guest RAM is one contiguous block of 2 MiB-aligned host memory: around
/// the kernel in the guest `bundle` when the boot loader left it on a 2 MiB boundary
/// (so that it need not be copied), else the lowest free block that fits. Not when
/// restoring a snapshot: the snapshot fills guest RAM before Aerie knows whether the
/// restore succeeds, and the bundle must survive to boot fresh instead.
fn take_guest_memory(
    free: &mut memory::FreeMemory,
    options: &bootargs::BootOptions,
    leaves: Leaves,
    bundle: Option<Range>,
) -> Range {
    const BLOCK: u64 = 2 << 20;
    let largest = free
        .iter()
        .filter_map(|r| r.align_inward(BLOCK))
        .map(|r| r.size())
        .max();
    let largest = largest.unwrap_or(0);
    let size = match options.guest_memory {
        Some(size) => size.next_multiple_of(BLOCK),
        None => vm::default_guest_memory(largest, leaves),
    };
    if size == 0 || size > aerie_hyp::guest_layout::MAX_RAM {
        stop::refuse(format_args!(
            "cannot give the guest {} of RAM",
            aerie_hyp::units::ByteSize(size)
        ));
    }
    let around_kernel = bundle.filter(|_| !options.restore).and_then(|bundle| {
        let (kernel, text_offset) = vm::bundle::kernel_placement(bundle)?;

        aerie_hyp::loader::ram_around_kernel(free, bundle, kernel, text_offset, size)
    });
    if let Some(host) = around_kernel.filter(|&host| free.remove(host).is_ok()) {
        log::debug!("guest RAM at {host} holds the kernel where the loader put it");
        return host;
    }
    match free.take(size, BLOCK) {
        Some(host) => host,
        None => stop::refuse(format_args!(
            "not enough free RAM for a guest with {}: the largest free block is {} \
             (use aerie.guest.mem= or give the machine more memory)",
            aerie_hyp::units::ByteSize(size),
            aerie_hyp::units::ByteSize(largest)
        )),
    }
}

/// How the guest's RAM is mapped at stage 2: as `aerie.stage2=` says, else the
/// machine's default.
fn stage2_leaves(platform: &Platform<'_>, options: &bootargs::BootOptions) -> Leaves {
    options
        .stage2_leaves
        .unwrap_or_else(|| Leaves::default_for(platform.compatible))
}

/// Creates the VM, from a snapshot when `aerie.restore` asks for one and it can be
/// restored, else from the bundle, and runs its boot vCPU on this CPU.
fn start_guest(
    platform: &Platform<'_>,
    options: &bootargs::BootOptions,
    bundle: Option<Range>,
    host_ram: Range,
    cpus_online: usize,
) -> ! {
    if let Some(disk) = virtio_probe::take_snapshot_disk() {
        vm::snapshot::install_disk(disk);
    }
    let gic = guest_gic(platform);
    let host_uart_intid = platform.uart.irq.map(|irq| irq.0).filter(|_| gic.is_some());
    let mut disks = virtio_probe::take_guest_disks();
    let mut flash_vars = virtio_probe::take_flash_vars_disk();
    let stage2_leaves = stage2_leaves(platform, options);
    log::debug!("guest RAM mapped at stage 2 with {stage2_leaves}");
    if options.restore {
        let host = restore::Host {
            platform,
            ram: host_ram,
            gic,
            host_uart_intid,
            disks,
            bundle,
            flash_vars,
            stage2_leaves,
        };
        match restore::restore(host) {
            Ok(restored) => restore::run(platform, restored),
            Err((failure, returned)) => {
                println!("Aerie: cannot restore: {failure}");
                disks = returned.disks;
                flash_vars = returned.flash_vars;
                if bundle.is_none() {
                    stop::refuse_guest(format_args!("there is no guest bundle to boot instead"));
                }
                offer_fresh_boot();
            }
        }
    }
    let Some(bundle) = bundle else {
        stop::refuse_guest(format_args!("no guest bundle"));
    };
    let vcpus = options.guest_vcpus.unwrap_or(cpus_online);
    if let Err(available) = smp::assign_vcpus(platform, vcpus) {
        stop::refuse(format_args!(
            "the guest wants {vcpus} vCPUs but only {available} CPUs are online \
             (Aerie runs one vCPU per CPU)"
        ));
    }
    let bundle = match vm::bundle::BundleInRam::read(bundle) {
        Ok(bundle) => bundle,
        Err(error) => stop::refuse_guest(format_args!("{error}")),
    };
    let ram = vm::GuestRam {
        guest: Range::from_start_size(aerie_hyp::guest_layout::RAM_BASE, host_ram.size())
            .expect("guest RAM fits the address space"),
        host_base: host_ram.start(),
    };
    let config = vm::GuestConfig {
        vcpus,
        ram,
        test_device: options.guest_test_device,
        rtc: crate::wall_clock::now().is_some(),
        gic,
        host_uart_intid,
        disks,
        pmu_intid: vm::pmu::host_interrupt(platform, gic.is_some()),
        flash_vars,
        stage2_leaves,
    };
    let vm = match vm::create(&bundle, config) {
        Ok(vm) => vm,
        Err(error) => stop::refuse_guest(format_args!("{error}")),
    };
    println!("Aerie: starting the guest");
    let (entry, device_tree) = vm.boot_entry;
    let state = aerie_hyp::vcpu::VcpuState::at_power_on(entry, device_tree);
    vm::run_vcpu(vm, 0, state);
    smp::park(smp::current_index(platform))
}

/// The interrupt controller Aerie can give guests on this host, if any.
fn guest_gic(platform: &Platform<'_>) -> Option<vm::GuestGic> {
    match &platform.gic {
        Gic::V3 { .. } if gicv3::HOST_GIC.get().is_some() => Some(vm::GuestGic::V3),
        Gic::V2 {
            virtual_cpu_interface,
            ..
        } if gicv2::HOST_GIC_V2.get().is_some() => Some(vm::GuestGic::V2 {
            virtual_cpu_interface: *virtual_cpu_interface,
        }),
        _ => None,
    }
}

/// After a failed restore: waits for Enter (boot the guest fresh) or Ctrl-A x
/// (power off), so that a snapshot that cannot be resumed is never half-restored
/// and never silently replaced by a fresh boot.
fn offer_fresh_boot() {
    use aerie_hyp::console::{ConsoleKey, EscapeDecoder, Input};
    println!("Aerie: press Enter to boot the guest fresh instead, or Ctrl-A x to quit");
    let mut keys = EscapeDecoder::new();
    loop {
        let Some(byte) = crate::console::read_byte() else {
            cpu::wait_for_event();
            continue;
        };
        match keys.input(byte) {
            Input::ToGuest(b'\r' | b'\n') => {
                println!("Aerie: booting the guest fresh");
                return;
            }
            Input::Command(ConsoleKey::Quit) => {
                println!("Aerie: not restoring; quitting");
                stop::power_off();
            }
            _ => {}
        }
    }
}

/// Sets up the host's GICv3 (distributor, this CPU's redistributor and CPU
/// interface) and the console UART's receive interrupt. GICv2 hosts are left alone
/// until Aerie has a GICv2 driver: their guests get no interrupt controller.
fn init_host_gic(platform: &Platform<'_>) {
    let uart_spi = platform.uart.irq.filter(|irq| irq.0 >= 32);
    match &platform.gic {
        Gic::V3 {
            distributor,
            redistributors,
            ..
        } => {
            // SAFETY: the device tree names these ranges as the GICv3 distributor
            // and redistributor regions, and `enable_mmu` mapped every one of them
            // as device memory for the rest of the run.
            let host_gic = unsafe { gicv3::HostGic::new(*distributor, redistributors) };
            let gic = gicv3::HOST_GIC.call_once(|| host_gic);
            gic.init_distributor();
            if !gic.init_cpu(cpu::mpidr()) {
                stop::refuse(format_args!("the boot CPU has no GIC redistributor"));
            }
            if let Some(irq) = uart_spi {
                gic.enable_spi(irq.0, cpu::mpidr());
            }
        }
        Gic::V2 {
            distributor,
            cpu_interface,
            hypervisor_interface,
            ..
        } => {
            // SAFETY: the device tree names these ranges as the GICv2 distributor,
            // CPU interface and virtual interface control frames, and `enable_mmu`
            // mapped every one of them as device memory for the rest of the run.
            let host_gic = unsafe {
                gicv2::HostGicV2::new(*distributor, *cpu_interface, *hypervisor_interface)
            };
            let gic = gicv2::HOST_GIC_V2.call_once(|| host_gic);
            gic.init_distributor();
            gic.init_cpu(cpu::mpidr());
            if let Some(irq) = uart_spi {
                gic.enable_spi(irq.0, cpu::mpidr());
            }
        }
    }
    if uart_spi.is_some() {
        crate::console::enable_receive_interrupts();
    }
}

/// On a Raspberry Pi 4, routes UART0 (the console PL011) to GPIO 14/15, in case the
/// firmware left the pins to the mini UART.
fn route_console_pins(platform: &Platform<'_>) {
    let Some(gpio) = platform.broadcom_gpio else {
        return;
    };
    if platform.uart.registers.start() == gpio.start() + crate::drivers::bcm_gpio::UART0_OFFSET {
        // SAFETY: the device tree names this the Broadcom GPIO controller; the MMU
        // is still off, so its registers are accessible, and only this CPU runs.
        unsafe { crate::drivers::bcm_gpio::route_uart0(gpio.start() as usize) };
    }
}

/// Refuses a machine whose GIC Aerie cannot virtualize.
fn check_gic(platform: &Platform<'_>) {
    if matches!(platform.gic, Gic::V3 { .. }) && !cpu::has_gic_system_registers() {
        stop::refuse(format_args!(
            "the device tree describes a GICv3, but this CPU has no GIC system-register \
             interface (ID_AA64PFR0_EL1.GIC is 0)"
        ));
    }
}

/// Maps RAM, Aerie's image and the devices Aerie drives, and turns the MMU on.
fn enable_mmu(
    platform: &Platform<'_>,
    image: &ImageLayout,
    device_tree: Range,
) -> mmu::MmuSettings {
    let mut devices: ArrayVec<Range, { MAX_VIRTIO_SLOTS + MAX_REDISTRIBUTOR_REGIONS + 5 }> =
        ArrayVec::new();
    devices.push(platform.uart.registers);
    devices.extend(platform.gic.register_blocks());
    devices.extend(platform.virtio_mmio.iter().map(|slot| slot.registers));
    devices.extend(platform.rtc);
    let guards = crate::stacks::guards();
    let request = mmu::MapRequest {
        ram: &platform.memory,
        image: *image,
        device_tree,
        devices: &devices,
        guards: &guards,
    };
    let settings = match mmu::build(&request) {
        Ok(settings) => settings,
        Err(error) => stop::refuse(format_args!(
            "cannot build Aerie's page tables for {}: {}",
            error.what, error.error
        )),
    };
    // SAFETY: `build` identity-maps all RAM (so the stacks, except their guard
    // pages, and the device tree), the image with its code executable, and the
    // console UART; only this CPU runs.
    unsafe { mmu::enable(&settings, image, device_tree) };
    settings
}

/// Writes a pattern to the last sector of the first host disk, flushes, reads it
/// back and compares, and says whether it worked.
fn disk_self_test() {
    /// The pattern: recognisable in the disk image from the host.
    const PATTERN: &[u8; 16] = b"AERIE-DISK-TEST!";
    let mut disks = virtio_probe::HOST_DISKS.lock();
    let Some(disk) = disks.first_mut().map(|open| &mut open.disk) else {
        println!("Aerie: disk self-test: no host disk");
        return;
    };
    let last = disk.capacity_sectors().saturating_sub(1);
    let mut sector = [0u8; 512];
    for (index, byte) in sector.iter_mut().enumerate() {
        *byte = PATTERN[index % PATTERN.len()];
    }
    let mut back = [0u8; 512];
    let result = disk
        .write(last, &sector)
        .and_then(|()| disk.flush())
        .and_then(|()| disk.read(last, &mut back));
    match result {
        Ok(()) if back == sector => println!("Aerie: disk self-test passed (sector {last})"),
        Ok(()) => println!("Aerie: disk self-test FAILED: sector {last} read back differently"),
        Err(error) => println!("Aerie: disk self-test FAILED: {error}"),
    }
}

/// Reads an address that is neither RAM nor a mapped device, to prove that the
/// exception vectors report a fault. Never returns: the report stops Aerie.
fn provoke_exception(platform: &Platform<'_>) -> ! {
    let ram_end = platform.memory.iter().map(Range::end).max().unwrap_or(0);
    // Just past the end of RAM and 2 MiB aligned: unmapped in Aerie's identity map.
    let address = ram_end.next_multiple_of(2 << 20) + (2 << 20);
    println!("Aerie: self-test: reading unmapped address {address:#x}");
    // SAFETY: deliberately unsound-looking but harmless: the address is unmapped, so
    // the load faults into the exception vectors (which stop Aerie) before any
    // value could be produced.
    let value = unsafe { core::ptr::read_volatile(address as *const u64) };
    stop::crash(format_args!(
        "self-test read of {address:#x} did not fault (read {value:#x})"
    ))
}
