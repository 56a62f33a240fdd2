//! Aerie's boot on QEMU: the hardware summary on good machines, and a clear refusal
//! (exit status 2) or crash report (exit status 3) on bad ones.

use aerie_hyp::image::ImageHeader;
use aerie_tests::qemu::{self, Qemu, Run};
use aerie_tests::{DtbEditor, fixture, temp_file};

/// QEMU exit status when Aerie refuses the machine (see `boot/src/stop.rs`).
const EXIT_REFUSED: i32 = 2;
/// QEMU exit status when Aerie crashes.
const EXIT_CRASHED: i32 = 3;

#[test]
fn reports_a_two_cpu_gicv3_machine_and_powers_off() {
    let disk = temp_file("disk.img", &vec![0; 8 << 20]);
    qemu::virt()
        .smp(2)
        .mem_mib(1024)
        .virtio_blk(disk)
        .run()
        .assert_exit(0)
        .assert_line_with(&["Aerie", "entered at EL2 on CPU MPIDR 0x0"])
        .assert_line_with(&["cpu", "Arm Cortex-A72", "counter 62.5 MHz"])
        .assert_line_with(&["cpus", "2 online of 2, PSCI 1.1 via smc"])
        .assert_line_with(&["ram", "1 GiB: 0x40000000..0x80000000"])
        .assert_line_with(&["gic", "GICv3: distributor 0x08000000", "maintenance PPI 9"])
        .assert_line_with(&["timer", "virtual INTID 27, hypervisor INTID 26"])
        .assert_line_with(&["uart", "PL011 at 0x09000000, SPI 1 (INTID 33)"])
        .assert_line_with(&["virtio-mmio", "32 slots, 1 device"])
        .assert_line_with(&["block at 0x0a003e00", "8 MiB"])
        .assert_contains("Aerie: powering off")
        .assert_not_contains("WARN");
}

#[test]
fn brings_four_cortex_max_cpus_online() {
    qemu::virt()
        .cpu("max")
        .smp(4)
        .mem_mib(512)
        .run()
        .assert_exit(0)
        .assert_line_with(&["cpus", "4 online of 4"])
        .assert_line_with(&["ram", "512 MiB"]);
}

#[test]
fn reads_a_gicv2_with_its_virtualization_interface() {
    qemu::virt()
        .gic(2)
        .smp(2)
        .run()
        .assert_exit(0)
        .assert_line_with(&["gic", "GICv2", "hyp 0x08030000", "vcpu 0x08040000"])
        .assert_line_with(&["cpus", "2 online of 2"]);
}

#[test]
fn refuses_to_start_without_a_device_tree() {
    // The generic loader starts the image at EL2 with x0 = 0.
    qemu::virt()
        .no_kernel()
        .loader(aerie_tests::aerie_image(), 0x4020_0000, Some(0))
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_contains("Aerie cannot run on this machine: no device tree")
        .assert_contains("Aerie stopped.");
}

#[test]
fn refuses_to_start_below_el2() {
    qemu::virt()
        .virtualization(false)
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_line_with(&["entered at EL1", "must start at EL2", "virtualization=on"]);
}

#[test]
fn refuses_too_little_ram() {
    qemu::virt()
        .mem_mib(48)
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_line_with(&["too little RAM", "needs at least 64 MiB"]);
}

/// QEMU's own tree for this machine, edited by `edit`, written to a temporary file.
fn edited_virt_tree(name: &str, edit: impl FnOnce(&mut DtbEditor)) -> std::path::PathBuf {
    let blob = std::fs::read(fixture("qemu-virt-gicv3.dtb")).unwrap();
    let mut tree = DtbEditor::from_bytes(&blob).unwrap();
    edit(&mut tree);
    temp_file(name, &tree.to_bytes().unwrap())
}

/// The fixture was dumped with 4 CPUs and 1 GiB; the machine must match it.
fn virt_like_fixture() -> Qemu {
    qemu::virt().smp(4).mem_mib(1024)
}

#[test]
fn refuses_a_device_tree_without_a_uart() {
    let dtb = edited_virt_tree("no-uart.dtb", |tree| {
        assert_eq!(tree.remove_nodes_compatible("arm,pl011"), 1);
    });
    virt_like_fixture()
        .dtb(dtb)
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_contains("the device tree describes no PL011 UART");
}

#[test]
fn refuses_a_device_tree_without_a_gic() {
    let dtb = edited_virt_tree("no-gic.dtb", |tree| {
        assert_eq!(tree.remove_nodes_compatible("arm,gic-v3"), 1);
    });
    virt_like_fixture()
        .dtb(dtb)
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_contains("the device tree describes no interrupt controller (GIC)");
}

#[test]
fn refuses_a_gicv2_without_virtualization_registers() {
    let blob = std::fs::read(fixture("qemu-virt-gicv2.dtb")).unwrap();
    let mut tree = DtbEditor::from_bytes(&blob).unwrap();
    let gic = "/intc@8000000";
    let reg = tree
        .property(gic, "reg")
        .expect("the GICv2 node has a reg")
        .to_vec();
    // Keep the distributor and CPU interface (2 x (2 + 2 cells)), drop GICH/GICV.
    tree.set_property(gic, "reg", reg[..32].to_vec()).unwrap();
    let dtb = temp_file("gicv2-no-virt.dtb", &tree.to_bytes().unwrap());
    qemu::virt()
        .gic(2)
        .smp(4)
        .mem_mib(1024)
        .dtb(dtb)
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_contains("the GICv2 has no virtualization interface");
}

#[test]
fn refuses_a_malformed_property_naming_it() {
    // (QEMU rewrites /psci, /memory and /chosen in a -dtb tree, so corrupt a CPU.)
    let dtb = edited_virt_tree("bad-cpu-reg.dtb", |tree| {
        tree.set_property("/cpus/cpu@1", "reg", vec![0, 1]).unwrap();
    });
    virt_like_fixture()
        .dtb(dtb)
        .run()
        .assert_exit(EXIT_REFUSED)
        .assert_contains("node 'cpu@1' has a malformed 'reg' property");
}

#[test]
fn reports_an_unexpected_exception_with_its_syndrome() {
    let outcome = qemu::virt().append("aerie.selftest=exception").run();
    outcome
        .assert_exit(EXIT_CRASHED)
        .assert_contains("unexpected synchronous exception from EL2")
        .assert_line_with(&["data abort from EL2: translation fault", "read"])
        .assert_line_with(&["ESR_EL2 0x0000000096", "FAR_EL2"])
        .assert_line_with(&["x30", "sp"])
        .assert_contains("Aerie stopped.");
    let announced = outcome.line_with(&["reading unmapped address"]).unwrap();
    let address = announced.rsplit(' ').next().unwrap().trim();
    let address = u64::from_str_radix(address.trim_start_matches("0x"), 16).unwrap();
    outcome.assert_contains(&format!("FAR_EL2 {address:#018x}"));
}

#[test]
fn a_stack_overflow_on_a_secondary_cpu_is_reported_from_its_exception_stack() {
    let outcome = qemu::virt()
        .smp(2)
        .append("aerie.selftest=stack-overflow")
        .run();
    outcome
        .assert_exit(EXIT_CRASHED)
        .assert_contains("overflowing the stack of CPU MPIDR 0x1")
        .assert_line_with(&[
            "Aerie crashed on CPU with MPIDR 0x1",
            "unexpected synchronous exception from EL2",
        ])
        .assert_line_with(&["data abort from EL2: translation fault", "write"])
        .assert_line_with(&["ESR_EL2 0x0000000096", "FAR_EL2"])
        .assert_line_with(&["ELR_EL2", "SPSR_EL2"])
        .assert_line_with(&["stack: stack overflow: the guard page below CPU 1's stack"])
        .assert_contains("Aerie stopped.");
}

#[test]
fn a_stack_overflow_on_the_only_cpu_is_reported() {
    qemu::virt()
        .smp(1)
        .append("aerie.selftest=stack-overflow")
        .run()
        .assert_exit(EXIT_CRASHED)
        .assert_line_with(&["Aerie crashed on CPU with MPIDR 0x0"])
        .assert_line_with(&["stack: stack overflow: the guard page below CPU 0's stack"])
        .assert_contains("Aerie stopped.");
}

#[test]
fn a_garbage_stack_pointer_is_reported_as_a_broken_stack() {
    let outcome = qemu::virt().append("aerie.selftest=broken-stack").run();
    outcome
        .assert_exit(EXIT_CRASHED)
        .assert_contains("unexpected synchronous exception from EL2")
        .assert_line_with(&["data abort from EL2: translation fault", "write"])
        .assert_line_with(&["stack: stack broken: SP", "is outside every stack"])
        .assert_contains("Aerie stopped.")
        // Reported from the intact exception stack, in one go.
        .assert_not_contains("the exception stack was exhausted")
        .assert_not_contains("fault while reporting a fault");
    let announced = outcome
        .line_with(&["pointing Aerie's stack pointer at"])
        .unwrap();
    let address = announced.rsplit(' ').next().unwrap().trim();
    let address = u64::from_str_radix(address.trim_start_matches("0x"), 16).unwrap();
    outcome
        .assert_contains(&format!("FAR_EL2 {:#018x}", address - 16))
        .assert_contains(&format!("sp  {address:#018x}"));
}

#[test]
fn a_fault_in_exception_entry_with_a_broken_exception_stack_is_reported_once() {
    let outcome = qemu::virt()
        .append("aerie.selftest=broken-exception-stack")
        .run();
    outcome
        .assert_exit(EXIT_CRASHED)
        .assert_contains("unexpected synchronous exception from EL2 on the exception stack")
        .assert_line_with(&["data abort from EL2: translation fault", "write"])
        .assert_line_with(&["stack: stack broken: SP", "is outside every stack"])
        .assert_contains("the fault is in Aerie's exception entry (the vectors)")
        .assert_contains("the exception stack was exhausted or broken: this report restarted")
        .assert_contains("Aerie stopped.")
        .assert_not_contains("fault while reporting a fault");
    assert_eq!(outcome.transcript.matches("Aerie crashed").count(), 1);
}

#[test]
fn reports_a_panic() {
    qemu::virt()
        .append("aerie.selftest=panic")
        .run()
        .assert_exit(EXIT_CRASHED)
        .assert_line_with(&["Aerie crashed", "panic: panicked at"])
        .assert_contains("self-test requested by aerie.selftest=panic");
}

#[test]
fn warns_about_unknown_aerie_options_and_carries_on() {
    qemu::virt()
        .append("console=ttyAMA0 aerie.colour=blue")
        .run()
        .assert_exit(0)
        .assert_line_with(&[
            "WARN",
            "ignoring unknown or malformed option 'aerie.colour=blue'",
        ])
        .assert_not_contains("console=ttyAMA0'");
}

#[test]
fn the_image_carries_a_valid_arm64_header() {
    let image = std::fs::read(aerie_tests::aerie_image()).unwrap();
    let header = ImageHeader::parse(&image).unwrap();
    assert_eq!(header.text_offset, 0);
    assert!(
        header.image_size >= image.len() as u64,
        "image_size must cover the file"
    );
    assert_eq!(header.image_size % (2 << 20), 0);
    assert!(!header.is_big_endian());
    assert_eq!(header.page_size(), Some(4096));
    assert!(header.placement_anywhere());
}

/// The Raspberry Pi 4 path on QEMU: a GIC-400, peripherals behind a bus `ranges`,
/// secondary CPUs in a spin table, and an image loaded at 0x20_0000 instead of its
/// link address, so the self-relocation is exercised too.
#[test]
fn runs_on_the_raspberry_pi_4_model_from_any_load_address() {
    qemu::raspi4b()
        .dtb(fixture("qemu-raspi4b.dtb"))
        .run()
        .assert_exit(0)
        .assert_line_with(&["machine", "Raspberry Pi 4 Model B"])
        .assert_line_with(&["cpus", "4 online of 4"])
        .assert_line_with(&["aerie", "image 0x00200000..0x00400000"])
        .assert_line_with(&["gic", "GICv2: distributor 0xff841000", "hyp 0xff844000"])
        .assert_line_with(&["uart", "PL011 at 0xfe201000", "SPI 121"])
        .assert_not_contains("0x00000000..0x00000000");
}

/// Aerie's own host-disk driver (virtio-blk through `virtio-drivers`) writes,
/// flushes and reads back a sector, and the write reaches the disk image on the host.
#[test]
fn the_host_disk_driver_writes_and_reads_back() {
    const SECTORS: usize = 2048;
    let disk = temp_file("host-disk.img", &vec![0; SECTORS * 512]);
    qemu::virt()
        .virtio_blk(&disk)
        .append("aerie.selftest=disk")
        .run()
        .assert_exit(0)
        .assert_line_with(&["block at", "1 MiB"])
        .assert_contains(&format!(
            "Aerie: disk self-test passed (sector {})",
            SECTORS - 1
        ));
    let image = std::fs::read(&disk).unwrap();
    let last = &image[(SECTORS - 1) * 512..];
    assert!(
        last.chunks(16).all(|chunk| chunk == b"AERIE-DISK-TEST!"),
        "{:?}",
        &last[..32]
    );
    assert!(
        image[..(SECTORS - 1) * 512].iter().all(|&b| b == 0),
        "nothing else is written"
    );
}
