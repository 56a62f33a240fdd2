//! Tests against device trees dumped from QEMU (see `tests/fixtures/README.md`) and
//! small hand-written trees for the corner cases.

use super::*;
use std::vec::Vec;
use vm_fdt::FdtWriter;

/// A fixture, with its NOP tokens removed as Aerie does at boot.
fn fixture(name: &str) -> Vec<u8> {
    let path = std::format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut blob = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    crate::fdt_check::validate_and_remove_nops(&mut blob).unwrap();
    blob
}

fn range(start: u64, size: u64) -> Range {
    Range::from_start_size(start, size).unwrap()
}

#[test]
fn qemu_virt_gicv3() {
    let blob = fixture("qemu-virt-gicv3.dtb");
    let platform = Platform::parse(&blob).unwrap();
    assert_eq!(platform.compatible, "linux,dummy-virt");
    assert_eq!(platform.memory.as_slice(), [range(0x4000_0000, 1 << 30)]);
    assert_eq!(platform.cpus.len(), 4);
    let mpidrs: Vec<u64> = platform.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0, 1, 2, 3]);
    assert!(
        platform
            .cpus
            .iter()
            .all(|c| c.enable_method == EnableMethod::Psci)
    );
    assert!(
        platform
            .cpus
            .iter()
            .all(|c| c.compatible == "arm,cortex-a72")
    );
    let psci = platform.psci.unwrap();
    assert_eq!(psci.conduit, Conduit::Smc);
    assert_eq!(psci.compatible, "arm,psci-1.0");
    assert_eq!(platform.uart.registers, range(0x0900_0000, 0x1000));
    assert_eq!(platform.uart.irq, Some(Irq(32 + 1)));
    assert!(platform.uart.is_stdout);
    match &platform.gic {
        Gic::V3 {
            distributor,
            redistributors,
            its,
            maintenance,
        } => {
            assert_eq!(*distributor, range(0x0800_0000, 0x1_0000));
            assert_eq!(redistributors.as_slice(), [range(0x080a_0000, 0xf6_0000)]);
            assert_eq!(*its, Some(range(0x0808_0000, 0x2_0000)));
            assert_eq!(*maintenance, Some(Irq(25)));
        }
        other => panic!("expected a GICv3, got {other:?}"),
    }
    let timer = platform.timer.unwrap();
    assert_eq!(
        (
            timer.secure_physical,
            timer.physical,
            timer.virtual_timer,
            timer.hypervisor
        ),
        (Irq(29), Irq(30), Irq(27), Irq(26))
    );
    // `pmu` (arm,armv8-pmuv3): PPI 7.
    assert_eq!(platform.pmu, Some(Irq(23)));
    assert_eq!(platform.virtio_mmio.len(), 32);
    let first = platform
        .virtio_mmio
        .iter()
        .min_by_key(|s| s.registers.start())
        .unwrap();
    assert_eq!(first.registers, range(0x0a00_0000, 0x200));
    assert_eq!(first.irq, Some(Irq(32 + 16)));
    assert!(platform.notes.is_empty(), "{:?}", platform.notes);
}

#[test]
fn qemu_virt_gicv2_has_the_virtualization_interface() {
    let blob = fixture("qemu-virt-gicv2.dtb");
    let platform = Platform::parse(&blob).unwrap();
    match platform.gic {
        Gic::V2 {
            distributor,
            cpu_interface,
            hypervisor_interface,
            virtual_cpu_interface,
            maintenance,
        } => {
            assert_eq!(distributor, range(0x0800_0000, 0x1_0000));
            assert_eq!(cpu_interface, range(0x0801_0000, 0x1_0000));
            assert_eq!(hypervisor_interface, range(0x0803_0000, 0x1_0000));
            assert_eq!(virtual_cpu_interface, range(0x0804_0000, 0x1_0000));
            assert_eq!(maintenance, Some(Irq(25)));
        }
        other => panic!("expected a GICv2, got {other:?}"),
    }
    // PPI 7 with a GICv2 CPU mask in the flags cell.
    assert_eq!(platform.pmu, Some(Irq(23)));
}

#[test]
fn raspberry_pi_4_translates_bus_addresses() {
    let blob = fixture("qemu-raspi4b.dtb");
    let platform = Platform::parse(&blob).unwrap();
    assert!(
        platform.model.contains("Raspberry Pi 4"),
        "{}",
        platform.model
    );
    assert_eq!(platform.cpus.len(), 4);
    for cpu in &platform.cpus {
        assert!(
            matches!(cpu.enable_method, EnableMethod::SpinTable { .. }),
            "{:?}",
            cpu.enable_method
        );
    }
    // The PL011 is at bus address 0x7e201000, which /soc maps to 0xfe201000.
    assert_eq!(platform.uart.registers.start(), 0xfe20_1000);
    assert_eq!(platform.uart.irq, Some(Irq(32 + 121)));
    match platform.gic {
        Gic::V2 {
            distributor,
            hypervisor_interface,
            maintenance,
            ..
        } => {
            assert_eq!(distributor.start(), 0xff84_1000);
            assert_eq!(hypervisor_interface.start(), 0xff84_4000);
            assert_eq!(maintenance, Some(Irq(25)));
        }
        other => panic!("expected a GIC-400, got {other:?}"),
    }
    assert_eq!(platform.memory.first().map(Range::start), Some(0));
    // The GPIO controller, behind the same bus translation (0x7e200000 -> 0xfe200000).
    assert_eq!(platform.broadcom_gpio.map(|r| r.start()), Some(0xfe20_0000));
    assert!(platform.reserved.iter().any(|r| r.name == "memreserve"));
    // The PMU has one SPI per CPU (SPIs 16 to 19): no PPI to give a guest.
    assert_eq!(platform.pmu, None);
}

/// A small virt-like tree; `edit` adds or changes nodes inside the root.
fn synthetic(edit: impl FnOnce(&mut FdtWriter)) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("compatible", "test,board").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    edit(&mut w);
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn memory(w: &mut FdtWriter) {
    let node = w.begin_node("memory@40000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x4000_0000, 0x800_0000])
        .unwrap();
    w.end_node(node).unwrap();
}

fn cpus(w: &mut FdtWriter) {
    let node = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    let cpu = w.begin_node("cpu@0").unwrap();
    w.property_string("device_type", "cpu").unwrap();
    w.property_u32("reg", 0).unwrap();
    w.end_node(cpu).unwrap();
    w.end_node(node).unwrap();
}

fn gic_v3(w: &mut FdtWriter) {
    let node = w.begin_node("intc@8000000").unwrap();
    w.property_string("compatible", "arm,gic-v3").unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_u32("#interrupt-cells", 3).unwrap();
    w.property_u32("phandle", 1).unwrap();
    w.property_array_u64("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0xf6_0000])
        .unwrap();
    w.property_array_u32("interrupts", &[1, 9, 4]).unwrap();
    w.end_node(node).unwrap();
}

fn pl011(w: &mut FdtWriter, name: &str, base: u64) {
    let node = w.begin_node(name).unwrap();
    w.property_string_list(
        "compatible",
        std::vec!["arm,pl011".into(), "arm,primecell".into()],
    )
    .unwrap();
    w.property_array_u64("reg", &[base, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 1, 4]).unwrap();
    w.end_node(node).unwrap();
}

fn complete(w: &mut FdtWriter) {
    memory(w);
    cpus(w);
    gic_v3(w);
    pl011(w, "pl011@9000000", 0x900_0000);
}

#[test]
fn a_minimal_complete_tree_parses() {
    let blob = synthetic(complete);
    let platform = Platform::parse(&blob).unwrap();
    assert_eq!(platform.model, "test,board");
    assert_eq!(platform.cpus[0].enable_method, EnableMethod::None);
    assert_eq!(platform.psci, None);
    assert_eq!(platform.timer, None);
    assert!(platform.virtio_mmio.is_empty());
}

#[test]
fn missing_pieces_are_named() {
    let no_uart = synthetic(|w| {
        memory(w);
        cpus(w);
        gic_v3(w);
    });
    assert_eq!(
        Platform::parse(&no_uart).unwrap_err(),
        PlatformError::Missing("PL011 UART")
    );
    let no_gic = synthetic(|w| {
        memory(w);
        cpus(w);
        pl011(w, "pl011@9000000", 0x900_0000);
    });
    assert_eq!(
        Platform::parse(&no_gic).unwrap_err(),
        PlatformError::Missing("interrupt controller (GIC)")
    );
    let no_memory = synthetic(|w| {
        cpus(w);
        gic_v3(w);
        pl011(w, "pl011@9000000", 0x900_0000);
    });
    assert!(
        matches!(Platform::parse(&no_memory), Err(PlatformError::Missing(m)) if m.starts_with("RAM"))
    );
    let no_cpus = synthetic(|w| {
        memory(w);
        gic_v3(w);
        pl011(w, "pl011@9000000", 0x900_0000);
    });
    assert_eq!(
        Platform::parse(&no_cpus).unwrap_err(),
        PlatformError::Missing("CPUs")
    );
}

#[test]
fn a_gicv2_without_hypervisor_registers_is_refused() {
    let blob = synthetic(|w| {
        memory(w);
        cpus(w);
        pl011(w, "pl011@9000000", 0x900_0000);
        let node = w.begin_node("intc@8000000").unwrap();
        w.property_string("compatible", "arm,cortex-a15-gic")
            .unwrap();
        w.property_null("interrupt-controller").unwrap();
        w.property_u32("#interrupt-cells", 3).unwrap();
        w.property_u32("phandle", 1).unwrap();
        w.property_array_u64("reg", &[0x800_0000, 0x1_0000, 0x801_0000, 0x1_0000])
            .unwrap();
        w.end_node(node).unwrap();
    });
    assert_eq!(
        Platform::parse(&blob).unwrap_err(),
        PlatformError::GicWithoutVirtualization
    );
}

#[test]
fn an_old_gic_is_named_in_the_refusal() {
    let blob = synthetic(|w| {
        memory(w);
        cpus(w);
        pl011(w, "pl011@9000000", 0x900_0000);
        let node = w.begin_node("intc@8000000").unwrap();
        w.property_string("compatible", "arm,cortex-a9-gic")
            .unwrap();
        w.property_null("interrupt-controller").unwrap();
        w.end_node(node).unwrap();
    });
    assert_eq!(
        Platform::parse(&blob).unwrap_err(),
        PlatformError::UnsupportedGic("arm,cortex-a9-gic")
    );
}

#[test]
fn stdout_path_picks_the_console_uart_through_an_alias() {
    let blob = synthetic(|w| {
        memory(w);
        cpus(w);
        gic_v3(w);
        pl011(w, "serial@9000000", 0x900_0000);
        pl011(w, "serial@9001000", 0x900_1000);
        let aliases = w.begin_node("aliases").unwrap();
        w.property_string("serial0", "/serial@9001000").unwrap();
        w.end_node(aliases).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("stdout-path", "serial0:115200n8")
            .unwrap();
        w.property_string("bootargs", "aerie.selftest=none")
            .unwrap();
        w.property_u64("linux,initrd-start", 0x4800_0000).unwrap();
        w.property_u64("linux,initrd-end", 0x4810_0000).unwrap();
        w.end_node(chosen).unwrap();
    });
    let platform = Platform::parse(&blob).unwrap();
    assert_eq!(platform.uart.registers.start(), 0x900_1000);
    assert!(platform.uart.is_stdout);
    assert_eq!(platform.chosen.bootargs, Some("aerie.selftest=none"));
    assert_eq!(platform.chosen.initrd, Some(range(0x4800_0000, 0x10_0000)));
}

#[test]
fn disabled_uarts_are_skipped() {
    let blob = synthetic(|w| {
        complete(w);
        let node = w.begin_node("pl011@1000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        w.property_string("status", "disabled").unwrap();
        w.property_array_u64("reg", &[0x1000, 0x1000]).unwrap();
        w.end_node(node).unwrap();
    });
    let platform = Platform::parse(&blob).unwrap();
    assert_eq!(platform.uart.registers.start(), 0x900_0000);
}

#[test]
fn bus_ranges_translate_and_unmapped_buses_are_noted() {
    let blob = synthetic(|w| {
        memory(w);
        cpus(w);
        gic_v3(w);
        let soc = w.begin_node("soc").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        // child 0x7e000000 -> parent 0xfe000000, 0x1800000 bytes.
        w.property_array_u32("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x180_0000])
            .unwrap();
        let uart = w.begin_node("serial@7e201000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        w.property_array_u32("reg", &[0x7e20_1000, 0x200]).unwrap();
        w.end_node(uart).unwrap();
        w.end_node(soc).unwrap();
        let hidden = w.begin_node("hidden").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        let virtio = w.begin_node("virtio_mmio@1000").unwrap();
        w.property_string("compatible", "virtio,mmio").unwrap();
        w.property_array_u32("reg", &[0x1000, 0x200]).unwrap();
        w.end_node(virtio).unwrap();
        w.end_node(hidden).unwrap();
    });
    let platform = Platform::parse(&blob).unwrap();
    assert_eq!(platform.uart.registers, range(0xfe20_1000, 0x200));
    assert!(platform.virtio_mmio.is_empty());
    assert_eq!(platform.notes.as_slice(), [Note::Unreadable("virtio-mmio")]);
}

#[test]
fn malformed_properties_are_named() {
    let bad_memory = synthetic(|w| {
        let node = w.begin_node("memory@40000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0x4000_0000, 0x1]).unwrap();
        w.end_node(node).unwrap();
        cpus(w);
        gic_v3(w);
        pl011(w, "pl011@9000000", 0x900_0000);
    });
    assert_eq!(
        Platform::parse(&bad_memory).unwrap_err(),
        PlatformError::BadProperty {
            node: "memory@40000000",
            property: "reg"
        }
    );
    let wrapping_memory = synthetic(|w| {
        let node = w.begin_node("memory@40000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[u64::MAX - 1, 0x10]).unwrap();
        w.end_node(node).unwrap();
        cpus(w);
        gic_v3(w);
        pl011(w, "pl011@9000000", 0x900_0000);
    });
    assert!(matches!(
        Platform::parse(&wrapping_memory),
        Err(PlatformError::BadProperty { .. })
    ));
    let bad_psci = synthetic(|w| {
        complete(w);
        let node = w.begin_node("psci").unwrap();
        w.property_string("compatible", "arm,psci-1.0").unwrap();
        w.property_string("method", "carrier-pigeon").unwrap();
        w.end_node(node).unwrap();
    });
    assert_eq!(
        Platform::parse(&bad_psci).unwrap_err(),
        PlatformError::BadProperty {
            node: "psci",
            property: "method"
        }
    );
}

#[test]
fn malformed_blobs_are_reported_as_such() {
    let mut blob = synthetic(complete);
    blob[0] = 0;
    assert!(matches!(
        Platform::parse(&blob),
        Err(PlatformError::Malformed(_))
    ));
}

/// Random corruption of real trees never panics: each result is a platform or an
/// error (a deterministic pseudo-random sweep, so failures reproduce).
#[test]
fn corrupted_fixtures_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in [
        "qemu-virt-gicv3.dtb",
        "qemu-virt-gicv2.dtb",
        "qemu-raspi4b.dtb",
    ] {
        let original = fixture(name);
        for _ in 0..400 {
            let mut blob = original.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % blob.len();
                blob[at] = next() as u8;
            }
            if crate::fdt_check::validate_and_remove_nops(&mut blob).is_ok() {
                let _ = Platform::parse(&blob);
            }
        }
    }
}

/// Found by the `host_device_tree` fuzz target: a `#size-cells` (or
/// `#address-cells`) of 0xffffffff made the sum of the cell counts overflow while
/// decoding the children's `reg`, a panic in a debug build. Cell counts beyond what
/// Aerie decodes now make the `reg` unreadable, as a count of 3 always did.
#[test]
fn huge_cell_counts_are_refused_not_summed() {
    let original = fixture("rpi5-bcm2712-rpi-5-b.dtb");
    // Byte 140 holds the value of the root's `#size-cells` (2).
    assert_eq!(original[140..144], 2u32.to_be_bytes());
    for count in [3, 0x8000_0000, u32::MAX] {
        let mut blob = original.clone();
        blob[140..144].copy_from_slice(&count.to_be_bytes());
        assert!(Platform::parse(&blob).is_err(), "#size-cells = {count:#x}");
    }
}

/// The Raspberry Pi 5's own device tree (`bcm2712-rpi-5-b.dtb` from Debian's 6.12
/// arm64 kernel, as `cargo xtask sdcard --board rpi5` copies it): no QEMU model exists,
/// so this is where the Pi 5 path is checked. The debug UART (uart10) is the console
/// through an alias, everything sits behind `soc@107c000000`'s ranges, CPUs start
/// through PSCI over SMC with MPIDRs in Aff1, and the GIC is a GIC-400.
#[test]
fn raspberry_pi_5() {
    let blob = fixture("rpi5-bcm2712-rpi-5-b.dtb");
    let platform = Platform::parse(&blob).unwrap();
    assert!(
        platform.model.contains("Raspberry Pi 5"),
        "{}",
        platform.model
    );
    assert_eq!(platform.uart.registers.start(), 0x10_7d00_1000);
    assert!(platform.uart.is_stdout);
    let mpidrs: Vec<u64> = platform.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0x000, 0x100, 0x200, 0x300]);
    assert!(
        platform
            .cpus
            .iter()
            .all(|c| c.enable_method == EnableMethod::Psci)
    );
    assert_eq!(platform.psci.map(|p| p.conduit), Some(Conduit::Smc));
    match platform.gic {
        Gic::V2 {
            distributor,
            cpu_interface,
            hypervisor_interface,
            virtual_cpu_interface,
            ..
        } => {
            assert_eq!(distributor.start(), 0x10_7fff_9000);
            assert_eq!(cpu_interface.start(), 0x10_7fff_a000);
            assert_eq!(hypervisor_interface.start(), 0x10_7fff_c000);
            assert_eq!(virtual_cpu_interface.start(), 0x10_7fff_e000);
        }
        other => panic!("expected a GIC-400, got {other:?}"),
    }
}
