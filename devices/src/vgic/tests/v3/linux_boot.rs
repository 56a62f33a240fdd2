//! Replays of the register sequences Linux's GICv3 driver (drivers/irqchip/
//! irq-gic-v3.c and irq-gic-common.c) issues at boot, then the first interrupts it
//! takes: the timer, the UART and an IPI.

use super::*;
use crate::vgic::Vgic;

/// `GICD_INT_DEF_PRI_X4`: the default priority in every byte.
const DEF_PRI_X4: u64 = 0xA0A0_A0A0;

/// Probe: `gic_validate_dist_version` reads GICD_PIDR2 and wants ArchRev [7:4] of 3
/// or 4; `gic_init_bases` reads GICD_TYPER; `gic_iterate_rdists` walks the
/// redistributors by GICR_PIDR2 and the 64-bit GICR_TYPER until Last is set.
/// Returns the number of interrupt lines and the affinities found.
fn probe(gic: &mut VgicV3) -> (u64, Vec<u64>) {
    let arch_rev = (read(gic, gicd::PIDR2, W) >> 4) & 0xF;
    assert_eq!(arch_rev, 3, "GICv3");
    let typer = read(gic, gicd::TYPER, W);
    // GIC_LINE_NR = min(32 * (ITLinesNumber + 1), 1020).
    let lines = (32 * ((typer & 0x1F) + 1)).min(1020);
    assert_eq!((typer >> 19) & 0x1F, 9, "IDbits: 10 bits");
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(typer & (1 << 16), 0, "no MBIs");
    assert_eq!(typer & (1 << 10), 0, "no security extension");
    let _typer2 = read(gic, gicd::TYPER2, W);
    let mut affinities = Vec::new();
    let mut rd = REDISTRIBUTORS;
    loop {
        let arch_rev = (read(gic, rd + gicr::PIDR2, W) >> 4) & 0xF;
        assert_eq!(arch_rev, 3, "redistributor at {rd:#x}");
        let typer = read(gic, rd + gicr::TYPER, D);
        affinities.push(typer >> 32);
        assert_eq!(typer & 0b11, 0, "no PLPIS/VLPIS");
        if typer & gicr::TYPER_LAST != 0 {
            break;
        }
        rd += gicr::STRIDE;
        assert!(affinities.len() < 1000, "Last never set");
    }
    (lines, affinities)
}

/// `gic_dist_init` with `gic_dist_config`.
fn dist_init(gic: &mut VgicV3, lines: u64) {
    write(gic, gicd::CTLR, W, 0);
    assert_eq!(read(gic, gicd::CTLR, W) & gicd::CTLR_RWP, 0, "RWP");
    for i in (32..lines).step_by(32) {
        write(gic, gicd::IGROUPR + i / 8, W, 0xFFFF_FFFF);
    }
    for i in (32..lines).step_by(16) {
        write(gic, gicd::ICFGR + i / 4, W, 0); // GICD_INT_ACTLOW_LVLTRIG
    }
    for i in (32..lines).step_by(4) {
        write(gic, gicd::IPRIORITYR + i, W, DEF_PRI_X4);
    }
    for i in (32..lines).step_by(32) {
        write(gic, gicd::ICACTIVER + i / 8, W, 0xFFFF_FFFF);
        write(gic, gicd::ICENABLER + i / 8, W, 0xFFFF_FFFF);
    }
    // GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1.
    write(gic, gicd::CTLR, W, (1 << 4) | (1 << 1) | (1 << 0));
    assert_eq!(read(gic, gicd::CTLR, W) & gicd::CTLR_RWP, 0, "RWP");
    // Every SPI to the boot CPU (MPIDR affinity 0), with 64-bit writes.
    for i in 32..lines {
        write(gic, gicd::IROUTER + i * 8, D, 0);
    }
}

/// `gic_cpu_init` on vCPU `vcpu`: find its redistributor by affinity, wake it
/// (`gic_enable_redist`), configure SGIs/PPIs (`gic_cpu_config`).
fn cpu_init(gic: &mut VgicV3, vcpu: usize, affinities: &[u64]) {
    let index = affinities
        .iter()
        .position(|&aff| aff == vcpu_mpidr(vcpu))
        .expect("a redistributor with this CPU's affinity");
    let rd = rdist(index, 0);
    let waker = read(gic, rd + gicr::WAKER, W);
    write(
        gic,
        rd + gicr::WAKER,
        W,
        waker & !gicr::WAKER_PROCESSOR_SLEEP,
    );
    let mut polls = 0;
    while read(gic, rd + gicr::WAKER, W) & gicr::WAKER_CHILDREN_ASLEEP != 0 {
        polls += 1;
        assert!(polls < 10, "ChildrenAsleep never clears");
    }
    write(gic, rd + gicr::IGROUPR0, W, 0xFFFF_FFFF);
    write(gic, rd + gicr::ICACTIVER0, W, 0xFFFF_FFFF);
    write(gic, rd + gicr::ICENABLER0, W, 0xFFFF_FFFF);
    for i in (0..32).step_by(4) {
        write(gic, rd + gicr::IPRIORITYR0 + i, W, DEF_PRI_X4);
    }
    write(gic, rd + gicr::ISENABLER0, W, 0x0000_FFFF); // GICD_INT_EN_SET_SGI
    assert_eq!(read(gic, rd + gicr::CTLR, W) & (1 << 3), 0, "GICR_CTLR.RWP");
}

/// `gic_configure_irq` as level, then `gic_unmask_irq`, for a PPI of `vcpu` (the
/// timer, `enable_percpu_irq`).
fn enable_timer(gic: &mut VgicV3, vcpu: usize) {
    let cfg = rdist(vcpu, gicr::ICFGR1);
    let old = read(gic, cfg, W);
    let new = old & !(0b10 << (2 * (VTIMER - 16)));
    if new != old {
        write(gic, cfg, W, new);
    }
    write(gic, rdist(vcpu, gicr::ISENABLER0), W, 1 << VTIMER);
}

/// The same for the UART's SPI, routed to `vcpu` by `gic_set_affinity`.
fn enable_uart(gic: &mut VgicV3, vcpu: usize) {
    let cfg = gicd::ICFGR + 4 * u64::from(UART / 16);
    let old = read(gic, cfg, W);
    write(gic, cfg, W, old & !(0b10 << (2 * (UART % 16))));
    write(
        gic,
        gicd::IROUTER + 8 * u64::from(UART),
        D,
        vcpu_mpidr(vcpu),
    );
    write(
        gic,
        gicd::ISENABLER + 4 * u64::from(UART / 32),
        W,
        1 << (UART % 32),
    );
}

fn boot(vcpus: usize) -> VgicV3 {
    let mut gic = vgic(vcpus);
    let (lines, affinities) = probe(&mut gic);
    assert_eq!(lines, 96, "64 SPIs");
    assert_eq!(affinities.len(), vcpus);
    dist_init(&mut gic, lines);
    for vcpu in 0..vcpus {
        cpu_init(&mut gic, vcpu, &affinities);
        enable_timer(&mut gic, vcpu);
    }
    enable_uart(&mut gic, 0);
    gic
}

#[test]
fn probe_finds_one_redistributor_per_vcpu_in_order() {
    for vcpus in [1, 2, 4, 17, 40] {
        let mut gic = vgic(vcpus);
        let (_, affinities) = probe(&mut gic);
        let expected: Vec<u64> = (0..vcpus).map(vcpu_mpidr).collect();
        assert_eq!(affinities, expected, "{vcpus} vCPUs");
    }
}

#[test]
fn registers_read_back_after_boot() {
    let mut gic = boot(2);
    assert_eq!(
        read(&mut gic, gicd::CTLR, W),
        gicd::CTLR_ENABLE_GRP0 | gicd::CTLR_ENABLE_GRP1 | gicd::CTLR_ARE | gicd::CTLR_DS
    );
    for n in 1..3 {
        assert_eq!(read(&mut gic, gicd::IGROUPR + 4 * n, W), 0xFFFF_FFFF);
        assert_eq!(read(&mut gic, gicd::ISACTIVER + 4 * n, W), 0);
    }
    assert_eq!(
        read(&mut gic, gicd::ISENABLER + 4, W),
        1 << 1,
        "only the UART"
    );
    assert_eq!(read(&mut gic, gicd::ISENABLER + 8, W), 0);
    assert_eq!(read(&mut gic, gicd::IPRIORITYR + 32, W), DEF_PRI_X4);
    assert_eq!(read(&mut gic, gicd::IPRIORITYR + 92, W), DEF_PRI_X4);
    assert_eq!(read(&mut gic, gicd::ICFGR + 8, W), 0, "SPIs level");
    for vcpu in 0..2 {
        assert_eq!(read(&mut gic, rdist(vcpu, gicr::WAKER), W), 0, "awake");
        assert_eq!(read(&mut gic, rdist(vcpu, gicr::IGROUPR0), W), 0xFFFF_FFFF);
        assert_eq!(
            read(&mut gic, rdist(vcpu, gicr::ISENABLER0), W),
            0xFFFF | (1 << VTIMER)
        );
        assert_eq!(
            read(&mut gic, rdist(vcpu, gicr::IPRIORITYR0 + 24), W),
            DEF_PRI_X4
        );
        assert_eq!(
            read(&mut gic, rdist(vcpu, gicr::ICFGR0), W),
            0xAAAA_AAAA,
            "SGIs edge"
        );
        assert_eq!(
            read(&mut gic, rdist(vcpu, gicr::ICFGR1), W),
            0,
            "PPIs level"
        );
    }
    assert_eq!(
        gic.stats().ignored_accesses,
        0,
        "Linux touches nothing unknown"
    );
}

#[test]
fn first_interrupts_after_boot() {
    let mut gic = boot(2);
    let timer = timer_fires_on_vcpu_1_only(&mut gic);
    let priority = u64::from(LINUX_PRIORITY) << lr::PRIORITY_SHIFT;
    assert_eq!(timer, lr::PENDING | lr::GROUP1 | priority | 27);

    // The UART (routed to vCPU 0) and an IPI from vCPU 1 to vCPU 0 (SGI 1, target
    // list bit 0, Aff1 0).
    gic.set_level(UART, None, true).unwrap();
    let targets = gic.send_sgi_from_register(1, (1 << 24) | 0b1).unwrap();
    assert_eq!(targets.iter().collect::<Vec<_>>(), [0]);
    assert!(gic.has_pending(0));
    let mut cpu = CpuInterface::enter(&mut gic, 0, 4);
    let mut listed = cpu.listed_intids();
    listed.sort_unstable();
    assert_eq!(listed, [1, UART]);
    assert_eq!(
        cpu.acknowledge(),
        Some(1),
        "same priority: lower INTID first"
    );
    cpu.deactivate(1);
    assert_eq!(cpu.acknowledge(), Some(UART));
    gic.set_level(UART, None, false).unwrap();
    cpu.deactivate(UART);
    cpu.exit(&mut gic, 0);
    assert!(!gic.has_pending(0));
    assert!(
        CpuInterface::enter(&mut gic, 0, 4)
            .listed_intids()
            .is_empty()
    );
}
