//! Replays of the register sequences Linux's GICv2 driver (drivers/irqchip/irq-gic.c
//! and irq-gic-common.c) issues at boot, then the first interrupts it takes: the
//! timer, the UART and IPIs.

use super::*;

/// `GICD_INT_DEF_PRI_X4`: the default priority in every byte.
const DEF_PRI_X4: u64 = 0xA0A0_A0A0;

/// `gic_init_bases`: the number of interrupt lines from GICD_TYPER.ITLinesNumber
/// [4:0], `min(32 * (N + 1), 1020)`; and the CPU interfaces from CPUNumber [7:5].
fn probe(gic: &mut VgicV2) -> (u64, u64) {
    let typer = read(gic, 0, gicd::TYPER, W);
    let lines = (32 * ((typer & 0x1F) + 1)).min(1020);
    assert_eq!(typer & (1 << 10), 0, "no Security Extensions");
    (lines, ((typer >> 5) & 0x7) + 1)
}

/// `gic_get_cpumask` on vCPU `vcpu`: the first non-zero GICD_ITARGETSR0-7 word,
/// folded to one byte.
fn cpumask(gic: &mut VgicV2, vcpu: usize) -> u64 {
    for i in (0..32).step_by(4) {
        let mut mask = read(gic, vcpu, gicd::ITARGETSR + i, W);
        mask |= mask >> 16;
        mask |= mask >> 8;
        if mask != 0 {
            return mask & 0xFF;
        }
    }
    0
}

/// `gic_dist_init` with `gic_dist_config`, on the boot vCPU 0.
fn dist_init(gic: &mut VgicV2, lines: u64) {
    write(gic, 0, gicd::CTLR, W, 0); // GICD_DISABLE
    let mut mask = cpumask(gic, 0);
    mask |= mask << 8;
    mask |= mask << 16;
    for i in (32..lines).step_by(4) {
        write(gic, 0, gicd::ITARGETSR + i, W, mask);
    }
    for i in (32..lines).step_by(16) {
        write(gic, 0, gicd::ICFGR + i / 4, W, 0); // GICD_INT_ACTLOW_LVLTRIG
    }
    for i in (32..lines).step_by(4) {
        write(gic, 0, gicd::IPRIORITYR + i, W, DEF_PRI_X4);
    }
    for i in (32..lines).step_by(32) {
        write(gic, 0, gicd::ICACTIVER + i / 8, W, 0xFFFF_FFFF);
        write(gic, 0, gicd::ICENABLER + i / 8, W, 0xFFFF_FFFF);
    }
    write(gic, 0, gicd::CTLR, W, 1); // GICD_ENABLE
}

/// `gic_cpu_init` on vCPU `vcpu` (the distributor part: `gic_cpu_config` on the
/// banked registers; the GICC writes go to the hardware GICV). Returns the CPU's
/// `gic_cpu_map` entry.
fn cpu_init(gic: &mut VgicV2, vcpu: usize) -> u64 {
    let map = cpumask(gic, vcpu);
    write(gic, vcpu, gicd::ICACTIVER, W, 0xFFFF_FFFF);
    write(gic, vcpu, gicd::ICENABLER, W, 0xFFFF_FFFF);
    for i in (0..32).step_by(4) {
        write(gic, vcpu, gicd::IPRIORITYR + i, W, DEF_PRI_X4);
    }
    write(gic, vcpu, gicd::ISENABLER, W, 0x0000_FFFF); // the IPIs
    map
}

/// `gic_configure_irq` as level-sensitive (read-modify-write of the ICFGR word) and
/// `gic_unmask_irq`, on vCPU `vcpu`: the timer through `enable_percpu_irq`.
fn enable_level(gic: &mut VgicV2, vcpu: usize, intid: u32) {
    let intid = u64::from(intid);
    let cfg = gicd::ICFGR + 4 * (intid / 16);
    let old = read(gic, vcpu, cfg, W);
    let new = old & !(0b10 << (2 * (intid % 16)));
    if new != old {
        write(gic, vcpu, cfg, W, new);
    }
    write(
        gic,
        vcpu,
        gicd::ISENABLER + 4 * (intid / 32),
        W,
        1 << (intid % 32),
    );
}

/// `gic_set_affinity`: a byte write of the target CPU's `gic_cpu_map` entry.
fn set_affinity(gic: &mut VgicV2, intid: u32, map: u64) {
    write(gic, 0, gicd::ITARGETSR + u64::from(intid), B, map);
}

/// `gic_ipi_send_mask` from vCPU `sender` to the CPUs whose maps are in `map`.
fn send_ipi(gic: &mut VgicV2, sender: usize, map: u64, ipi: u64) {
    write(gic, sender, gicd::SGIR, W, (map << 16) | ipi);
}

/// Boots `vcpus` vCPUs; returns the vGIC and each CPU's `gic_cpu_map` entry.
fn boot(vcpus: usize) -> (VgicV2, Vec<u64>) {
    let mut gic = vgic(vcpus);
    let (lines, cpus) = probe(&mut gic);
    assert_eq!(lines, 96, "64 SPIs");
    assert_eq!(cpus, vcpus as u64);
    dist_init(&mut gic, lines);
    let mut maps = Vec::new();
    for vcpu in 0..vcpus {
        maps.push(cpu_init(&mut gic, vcpu));
        enable_level(&mut gic, vcpu, VTIMER);
    }
    enable_level(&mut gic, 0, UART);
    set_affinity(&mut gic, UART, maps[0]);
    (gic, maps)
}

#[test]
fn every_cpu_finds_its_own_mask() {
    for vcpus in 2..=8 {
        let mut gic = vgic(vcpus);
        for vcpu in 0..vcpus {
            assert_eq!(cpumask(&mut gic, vcpu), 1 << vcpu, "{vcpus} vCPUs");
        }
    }
    // A uniprocessor GIC: GICD_ITARGETSRn are RAZ/WI, and Linux expects mask 0.
    assert_eq!(cpumask(&mut vgic(1), 0), 0);
}

#[test]
fn registers_read_back_after_boot() {
    let (mut gic, maps) = boot(4);
    assert_eq!(maps, [1, 2, 4, 8]);
    assert_eq!(read(&mut gic, 0, gicd::CTLR, W), gicd::CTLR_ENABLE_GRP0);
    // Every SPI targets CPU 0; the UART too.
    for i in (32..96).step_by(4) {
        assert_eq!(read(&mut gic, 2, gicd::ITARGETSR + i, W), 0x0101_0101);
    }
    assert_eq!(read(&mut gic, 3, gicd::ITARGETSR + u64::from(UART), B), 1);
    assert_eq!(
        read(&mut gic, 0, gicd::ISENABLER + 4, W),
        1 << 1,
        "the UART"
    );
    assert_eq!(read(&mut gic, 0, gicd::ISENABLER + 8, W), 0);
    assert_eq!(read(&mut gic, 0, gicd::IPRIORITYR + 32, W), DEF_PRI_X4);
    assert_eq!(read(&mut gic, 0, gicd::IPRIORITYR + 92, W), DEF_PRI_X4);
    assert_eq!(read(&mut gic, 0, gicd::ICFGR + 8, W), 0, "SPIs level");
    // Group 0 everywhere: Linux never writes GICD_IGROUPRn.
    for vcpu in 0..4 {
        assert_eq!(read(&mut gic, vcpu, gicd::IGROUPR, W), 0);
        assert_eq!(
            read(&mut gic, vcpu, gicd::ISENABLER, W),
            0xFFFF | (1 << VTIMER)
        );
        assert_eq!(read(&mut gic, vcpu, gicd::IPRIORITYR + 24, W), DEF_PRI_X4);
        assert_eq!(
            read(&mut gic, vcpu, gicd::ICFGR, W),
            0xAAAA_AAAA,
            "SGIs edge"
        );
        assert_eq!(read(&mut gic, vcpu, gicd::ICFGR + 4, W), 0, "PPIs level");
    }
    assert_eq!(
        gic.stats().ignored_accesses,
        0,
        "Linux touches nothing unknown"
    );
    assert!(kicks(&mut gic).is_empty(), "nothing pending at boot");
}

#[test]
fn first_interrupts_after_boot() {
    let (mut gic, maps) = boot(2);
    // Group 0, pending, priority 0xA0 >> 3 = 0x14 in [27:23], VirtualID 27.
    let timer = timer_fires_on_vcpu_1_only(&mut gic);
    assert_eq!(timer, lr::PENDING | lr::priority(LINUX_PRIORITY) | 27);
    assert_eq!(timer, 0x1A00_001B);

    // The UART (on vCPU 0) and IPI 1 from vCPU 1 to vCPU 0.
    gic.set_level(UART, None, true).unwrap();
    send_ipi(&mut gic, 1, maps[0], 1);
    assert_eq!(kicks(&mut gic), [0]);
    assert!(kicks(&mut gic).is_empty(), "taken");
    let mut cpu = Gicv::enter(&mut gic, 0, 4);
    let mut listed = cpu.listed();
    listed.sort_unstable();
    assert_eq!(listed, [(1, 1), (UART, 0)], "the IPI carries CPUID 1");
    assert_eq!(cpu.acknowledge(), Some(iar(1, 1)), "lower INTID first");
    cpu.end_of_interrupt(iar(1, 1));
    assert_eq!(cpu.acknowledge(), Some(UART));
    gic.set_level(UART, None, false).unwrap();
    cpu.end_of_interrupt(UART);
    cpu.exit(&mut gic, 0);
    assert!(!gic.has_pending(0));
    assert!(Gicv::enter(&mut gic, 0, 4).listed().is_empty());
}

#[test]
fn irq_affinity_moves_the_uart() {
    let (mut gic, maps) = boot(3);
    set_affinity(&mut gic, UART, maps[2]);
    gic.set_level(UART, None, true).unwrap();
    assert!(!gic.has_pending(0) && !gic.has_pending(1));
    assert_eq!(run_until_idle_with_line(&mut gic, 2), [UART]);
}

/// Handles the UART on `vcpu` once, lowering its line in the handler.
fn run_until_idle_with_line(gic: &mut VgicV2, vcpu: usize) -> Vec<u32> {
    let mut cpu = Gicv::enter(gic, vcpu, 4);
    let taken: Vec<u32> = cpu.acknowledge().into_iter().collect();
    gic.set_level(UART, None, false).unwrap();
    for &iar in &taken {
        cpu.end_of_interrupt(iar);
    }
    cpu.exit(gic, vcpu);
    assert!(!gic.has_pending(vcpu));
    taken
}

#[test]
fn ipis_to_several_cpus_and_to_self() {
    let (mut gic, maps) = boot(4);
    // IPI 2 (a function call) from vCPU 3 to vCPUs 0 and 2.
    send_ipi(&mut gic, 3, maps[0] | maps[2], 2);
    assert_eq!(kicks(&mut gic), [0, 2]);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [iar(2, 3)]);
    assert_eq!(run_until_idle(&mut gic, 2, 4), [iar(2, 3)]);
    assert_eq!(run_until_idle(&mut gic, 1, 4), [] as [u32; 0]);
    // A uniprocessor guest sends itself IPIs with TargetListFilter 0b10.
    let (mut gic, _) = boot_uniprocessor();
    write(&mut gic, 0, gicd::SGIR, W, sgir(0b10, 0, 5));
    assert_eq!(kicks(&mut gic), [0]);
    assert_eq!(run_until_idle(&mut gic, 0, 4), [iar(5, 0)]);
}

/// The uniprocessor boot: ITARGETSR is RAZ/WI, Linux finds mask 0 and writes it as
/// the SPIs' targets, and the SPIs still reach the only vCPU.
fn boot_uniprocessor() -> (VgicV2, u64) {
    let mut gic = vgic(1);
    let (lines, cpus) = probe(&mut gic);
    assert_eq!(cpus, 1);
    dist_init(&mut gic, lines);
    let map = cpu_init(&mut gic, 0);
    enable_level(&mut gic, 0, VTIMER);
    enable_level(&mut gic, 0, UART);
    set_affinity(&mut gic, UART, map);
    (gic, map)
}

#[test]
fn a_uniprocessor_guest_gets_its_spis() {
    let (mut gic, map) = boot_uniprocessor();
    assert_eq!(map, 0);
    assert_eq!(read(&mut gic, 0, gicd::ITARGETSR + u64::from(UART), B), 0);
    gic.set_level(UART, None, true).unwrap();
    assert_eq!(run_until_idle_with_line(&mut gic, 0), [UART]);
    assert_eq!(gic.stats().ignored_accesses, 0);
}
