//! Aerie running its test guests (`tests/guests/src/bin/*.rs`): each test boots Aerie
//! on QEMU `virt` with one small EL1 program as its guest (a guest bundle given as
//! `-initrd`) and checks the exit status, the checks the guest reports (`guest:
//! PASS: ...`, never `guest: FAIL: ...`) and what Aerie says about the guest.
//!
//! Aerie's own lines about how a guest ended are `Aerie: guest powered off`,
//! `Aerie: guest requested a system reset` and `Aerie: guest exited with status N`;
//! the assertions below match them by their key words.

use aerie_tests::qemu::{self, Qemu, Run};
use aerie_tests::{DtbEditor, Outcome, fixture, guest_bundle, temp_file};

/// Aerie's options for every test guest: the test device on, 64 MiB of guest RAM.
const GUEST_OPTIONS: &str = "aerie.guest.testdev=on aerie.guest.mem=64M";

/// Boots Aerie on a `host_cpus`-CPU virt machine with test guest `name` on
/// `guest_cpus` vCPUs.
fn run_guest(name: &str, host_cpus: u32, guest_cpus: u32) -> Outcome {
    boot(name, host_cpus, guest_cpus, qemu::virt())
}

/// Like [`run_guest`], on the given machine.
fn boot(name: &str, host_cpus: u32, guest_cpus: u32, qemu: Qemu) -> Outcome {
    qemu.smp(host_cpus)
        .initrd(guest_bundle(name))
        .append(&format!("{GUEST_OPTIONS} aerie.guest.smp={guest_cpus}"))
        .run()
}

/// Asserts that the guest ended through the EXIT hypercall with `status` and that
/// Aerie said so.
fn assert_guest_exited(outcome: &Outcome, status: i32) {
    outcome.assert_exit(status).assert_line_with(&[
        "Aerie",
        "guest",
        "exited",
        &format!("status {status}"),
    ]);
}

#[test]
fn psci_starts_stops_and_restarts_every_vcpu() {
    let outcome = run_guest("psci", 4, 4);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&["guest: psci: 4 vCPUs"])
        .assert_guest_passed("psci: PSCI_VERSION is 1.1")
        .assert_guest_passed("psci: PSCI_FEATURES(CPU_ON) is 0")
        .assert_guest_passed("psci: PSCI_FEATURES of an undefined function is NOT_SUPPORTED")
        .assert_guest_passed("psci: SMCCC_VERSION is 1.1")
        .assert_guest_passed("psci: MIGRATE_INFO_TYPE is 2")
        .assert_guest_passed("psci: the device tree's /psci method is \"hvc\"")
        .assert_guest_passed("psci: CPU_ON 0x3 succeeds")
        .assert_guest_passed("psci: CPU 0x3 runs")
        .assert_guest_passed("psci: CPU 0x3 starts at EL1")
        .assert_guest_passed("psci: AFFINITY_INFO 0x3 is ON while it runs")
        .assert_guest_passed("psci: a second CPU_ON 0x3 is ALREADY_ON")
        .assert_guest_passed("psci: AFFINITY_INFO 0x3 is OFF after its CPU_OFF")
        .assert_guest_passed("psci: CPU_ON with an entry point outside RAM is INVALID_ADDRESS")
        .assert_guest_passed("psci: CPU_ON with an unaligned entry point is INVALID_ADDRESS")
        .assert_guest_passed("psci: CPU_ON of the calling vCPU itself is ALREADY_ON")
        .assert_guest_passed("psci: CPU_ON of the MPIDR after the last vCPU (0x4)")
        .assert_guest_passed("psci: AFFINITY_INFO with lowest affinity level 1")
        .assert_guest_passed("psci: CPU 0x1 runs again")
        .assert_guest_passed("psci: AFFINITY_INFO 0x1 is OFF again");
}

#[test]
fn psci_knows_only_the_guests_vcpus() {
    // Two vCPUs on four host CPUs: MPIDR 0x2 exists on the host, not in the guest.
    let outcome = run_guest("psci", 4, 2);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&["guest: psci: 2 vCPUs"])
        .assert_guest_passed("psci: CPU_ON of the MPIDR after the last vCPU (0x2)")
        .assert_guest_passed("psci: CPU 0x1 runs again");
}

#[test]
fn mmio_emulation_at_every_width() {
    let outcome = run_guest("mmio", 1, 1);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("mmio: LDR x PATTERN")
        .assert_guest_passed("mmio: LDRB PATTERN+7 is zero-extended")
        .assert_guest_passed("mmio: LDRSB x PATTERN+0 is sign-extended to 64 bits")
        .assert_guest_passed("mmio: LDRSH w PATTERN+6 is sign-extended to 32 bits")
        .assert_guest_passed("mmio: LDRSW PATTERN+4")
        .assert_guest_passed("mmio: LDR into XZR leaves SP alone")
        .assert_guest_passed("mmio: 8 STRB read back as one little-endian LDR x")
        .assert_guest_passed("mmio: STR xzr stores zero")
        .assert_guest_passed("mmio: WRITE_COUNT counts every store")
        .assert_guest_passed("mmio: LDR x at unknown offset 0x800 reads 0")
        .assert_guest_passed("mmio: PL011 UARTPCellID3 is 0xb1");
}

#[test]
fn accesses_outside_ram_and_devices_abort_in_the_guest() {
    let outcome = run_guest("abort", 1, 1);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed(
            "abort: LDR x 0x1000 (low memory) takes one synchronous external abort",
        )
        .assert_guest_passed("abort: STR x 0x9001000: ESR_EL1.WnR gives the direction")
        .assert_guest_passed("abort: LDRB 0x9001001: FAR_EL1 is the address")
        .assert_guest_passed("abort: LDP 0x7ffffff000 (the last page")
        .assert_guest_passed("abort: STP 0x44000000 (the first byte after guest RAM)")
        .assert_guest_passed("abort: fetching an instruction at 0x1000")
        .assert_guest_passed("abort: after the aborts Aerie still emulates the test device");
}

/// Boots test guest `name` on one vCPU with Aerie's debug log and `options`.
fn run_logged(name: &str, options: &str) -> Outcome {
    qemu::virt()
        .smp(1)
        .initrd(guest_bundle(name))
        .append(&format!(
            "{GUEST_OPTIONS} aerie.guest.smp=1 aerie.log=debug {options}"
        ))
        .run()
}

#[test]
fn a_guest_cannot_reach_aeries_memory() {
    let outcome = run_logged("isolation", "");
    // On `virt` guest RAM is mapped with pages unless told otherwise.
    outcome.assert_line_with(&["guest RAM mapped at stage 2 with 4 KiB pages"]);
    assert_isolated(&outcome);
}

/// Guest RAM mapped at stage 2 with 2 MiB blocks, as on the boards: the same
/// memory, the same isolation, the same faults outside RAM.
#[test]
fn guest_ram_mapped_with_stage_2_blocks_behaves_the_same() {
    let outcome = run_logged("isolation", "aerie.stage2=blocks");
    outcome.assert_line_with(&["guest RAM mapped at stage 2 with 1 GiB and 2 MiB blocks"]);
    assert_isolated(&outcome);
    let outcome = run_logged("abort", "aerie.stage2=blocks");
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("abort: STP 0x44000000 (the first byte after guest RAM)");
}

/// Asserts that the isolation guest wrote and read back all of its RAM and that
/// Aerie outlived it.
fn assert_isolated(outcome: &Outcome) {
    assert_guest_exited(outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("isolation: the range written covers guest address 0x40200000")
        .assert_guest_passed("isolation: pass 1: every word of guest RAM reads back")
        .assert_guest_passed("isolation: Aerie still answers PSCI_VERSION afterwards");
}

/// A virt machine like the one QEMU's own tree (the fixture, 4 CPUs and 1 GiB)
/// describes, but whose tree has no PMU node: the CPU has a PMU, and Aerie, without
/// its interrupt, must hide it from the guest.
fn virt_without_pmu_node(file: &str) -> Qemu {
    let blob = std::fs::read(fixture("qemu-virt-gicv3.dtb")).unwrap();
    let mut tree = DtbEditor::from_bytes(&blob).unwrap();
    assert_eq!(tree.remove_nodes_compatible("arm,armv8-pmuv3"), 1);
    let dtb = temp_file(file, &tree.to_bytes().unwrap());
    qemu::virt().smp(4).mem_mib(1024).dtb(dtb)
}

/// The PMU registers trap and read as zero where the guest has no PMU.
#[test]
fn system_registers_are_emulated_or_undefined() {
    let outcome = boot("sysreg", 4, 1, virt_without_pmu_node("no-pmu.dtb"));
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("sysreg: CNTP_CVAL_EL0 reads back")
        .assert_guest_passed("sysreg: CNTP_CTL_EL0.ISTATUS is set once the counter passes CVAL")
        .assert_guest_passed("sysreg: writing CNTP_TVAL_EL0 sets CVAL")
        .assert_guest_passed("sysreg: MRS S3_1_C15_C0_0 (IMPLEMENTATION DEFINED) is UNDEFINED")
        .assert_guest_passed("sysreg: DC CISW over every set and way")
        .assert_guest_passed("sysreg: DC ISW over every set and way")
        .assert_guest_passed("sysreg: PMCR_EL0 reads as zero");
}

/// On a host with SVE, SME, a PMU, AArch32 EL0 and 48-bit physical addresses
/// (`-cpu max`), the guest reads Aerie's CPU model from the feature ID registers.
#[test]
fn the_guest_reads_aeries_cpu_model_not_the_hosts() {
    let outcome = boot("cpu_model", 1, 1, qemu::virt().cpu("max"));
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("cpu_model: ID_AA64PFR0_EL1.SVE is 0")
        .assert_guest_passed("cpu_model: ID_AA64ZFR0_EL1 is 0")
        .assert_guest_passed("cpu_model: ID_AA64PFR1_EL1.SME is 0")
        .assert_guest_passed("cpu_model: ID_AA64SMFR0_EL1 is 0")
        .assert_guest_passed("cpu_model: ID_AA64PFR1_EL1.MTE is 0")
        .assert_guest_passed("cpu_model: ID_AA64PFR0_EL1.RAS is 0")
        .assert_guest_passed("cpu_model: ID_AA64PFR0_EL1.AMU is 0")
        .assert_guest_passed("cpu_model: ID_AA64PFR0_EL1.EL0 is AArch64 only")
        .assert_guest_passed("cpu_model: ID_AA64PFR0_EL1.GIC is the GICv3 interface")
        .assert_guest_passed("cpu_model: FP and AdvSIMD are implemented")
        .assert_guest_passed(
            "cpu_model: ID_AA64DFR0_EL1.PMUVer is PMUv3 to PMUv3p5 with a PMU node",
        )
        .assert_guest_passed("cpu_model: ID_AA64DFR0_EL1.PMSVer is 0")
        .assert_guest_passed("cpu_model: ID_AA64MMFR0_EL1.PARange is 40 bits")
        .assert_guest_passed("cpu_model: ID_AA64ISAR0_EL1.Atomic passes through (LSE)")
        .assert_guest_passed("cpu_model: ID_PFR0_EL1 (AArch32) is 0")
        .assert_guest_passed("cpu_model: the unallocated S3_0_C0_C7_7 reads as zero")
        .assert_guest_passed("cpu_model: MSR ID_AA64PFR0_EL1 is UNDEFINED")
        .assert_guest_passed("cpu_model: SVE RDVL is UNDEFINED")
        .assert_guest_passed("cpu_model: MRS ZCR_EL1 is UNDEFINED")
        .assert_guest_passed("cpu_model: SME SMSTART is UNDEFINED")
        .assert_guest_passed("cpu_model: MRS SMCR_EL1 is UNDEFINED");
}

/// Where the host's tree gives the PMU no interrupt, the guest has no PMU at all:
/// PMUVer 0 (and no PMU node: the `sysreg` guest reads its registers as zero).
#[test]
fn without_a_pmu_interrupt_the_guest_has_no_pmu() {
    let outcome = boot(
        "cpu_model",
        4,
        1,
        virt_without_pmu_node("no-pmu-max.dtb").cpu("max"),
    );
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("cpu_model: ID_AA64DFR0_EL1.PMUVer is 0 without a PMU node")
        .assert_guest_passed("cpu_model: ID_AA64DFR0_EL1.PMSVer is 0");
}

#[test]
fn wfi_returns() {
    let outcome = run_guest("wfi", 1, 1);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&["guest: wfi: ", "WFI(s) in", "deadline"])
        .assert_guest_passed("wfi: WFI returns soon after the timer deadline");
}

#[test]
fn system_off_powers_off() {
    run_guest("poweroff", 2, 2)
        .assert_exit(0)
        .assert_no_guest_failure()
        .assert_line_with(&["guest: poweroff: calling PSCI SYSTEM_OFF"])
        .assert_line_with(&["Aerie", "guest", "powered off"]);
}

#[test]
fn system_reset_resets_the_machine() {
    let outcome = boot("reset", 2, 2, qemu::virt().no_reboot());
    outcome
        .assert_exit(0)
        .assert_no_guest_failure()
        .assert_line_with(&["Aerie", "guest", "reset"]);
    let starts = outcome
        .guest_lines()
        .filter(|line| *line == "reset: calling PSCI SYSTEM_RESET")
        .count();
    assert_eq!(starts, 1, "the guest ran {starts} times\n{outcome}");
}

#[test]
fn the_exit_hypercall_sets_qemus_status() {
    let outcome = run_guest("exit_status", 1, 1);
    assert_guest_exited(&outcome, 7);
    outcome
        .assert_no_guest_failure()
        .assert_line_with(&["guest: exit_status: calling EXIT with status 7"]);
}

/// QEMU puts the bundle on a 2 MiB boundary in a 256 MiB machine, and `cargo xtask`
/// writes the kernel's bytes 2 MiB into it: Aerie then places the guest's RAM around
/// the kernel instead of copying it. A bundle without that padding has its kernel
/// copied. The guest runs either way.
#[test]
fn a_kernel_the_loader_left_on_a_2_mib_boundary_runs_where_it_lies() {
    let not_copied = "(where the loader put it: not copied)";
    run_guest("poweroff", 1, 1)
        .assert_exit(0)
        .assert_line_with(&["guest: 1 vCPU(s)", not_copied])
        .assert_line_with(&["Aerie", "guest", "powered off"]);
    let kernel = std::fs::read(aerie_tests::test_guest("poweroff")).unwrap();
    let unpadded = aerie_hyp::bundle::write(&kernel, None, None);
    qemu::virt()
        .smp(1)
        .initrd(aerie_tests::temp_file("unpadded.cpio", &unpadded))
        .append(GUEST_OPTIONS)
        .run()
        .assert_exit(0)
        .assert_line_with(&["guest: 1 vCPU(s)", "kernel at 0x40000000, device tree"])
        .assert_not_contains(not_copied)
        .assert_line_with(&["Aerie", "guest", "powered off"]);
}

/// A bundle whose kernel is not an arm64 Image is refused, naming the problem.
#[test]
fn a_bundle_without_a_valid_kernel_is_refused() {
    let bundle = aerie_hyp::bundle::write(b"#!/bin/sh\necho not a kernel\n", None, None);
    qemu::virt()
        .initrd(aerie_tests::temp_file("bad-kernel.cpio", &bundle))
        .run()
        .assert_exit(2)
        .assert_line_with(&[
            "Aerie cannot start the guest",
            "guest kernel",
            "not an arm64 Image",
        ]);
}

/// A kernel larger than the guest's RAM is refused with the sizes involved.
#[test]
fn a_kernel_that_does_not_fit_is_refused() {
    let kernel = std::fs::read(aerie_tests::test_guest("poweroff")).unwrap();
    let mut huge = kernel.clone();
    // Claim a 16 MiB image (the Image header's image_size) for a 4 MiB guest.
    huge[16..24].copy_from_slice(&(16u64 << 20).to_le_bytes());
    let bundle = aerie_hyp::bundle::write(&huge, None, None);
    qemu::virt()
        .initrd(aerie_tests::temp_file("huge-kernel.cpio", &bundle))
        .append("aerie.guest.mem=4M")
        .run()
        .assert_exit(2)
        .assert_line_with(&["Aerie cannot start the guest", "MiB"]);
}

/// A garbled bundle (not a cpio archive) is refused.
#[test]
fn a_garbled_bundle_is_refused() {
    qemu::virt()
        .initrd(aerie_tests::temp_file("garbage.cpio", &[0x5a; 4096]))
        .run()
        .assert_exit(2)
        .assert_line_with(&["Aerie cannot start the guest", "guest bundle"]);
}

/// More vCPUs than host CPUs is refused: Aerie runs one vCPU per CPU.
#[test]
fn more_vcpus_than_cpus_is_refused() {
    qemu::virt()
        .smp(2)
        .initrd(guest_bundle("poweroff"))
        .append("aerie.guest.smp=3")
        .run()
        .assert_exit(2)
        .assert_line_with(&["wants 3 vCPUs", "only 2 CPUs"]);
}

/// A guest that writes all-ones to every GIC distributor and redistributor offset at
/// every width leaves Aerie running: the guest still prints and exits normally.
#[test]
fn a_gic_register_sweep_leaves_aerie_running() {
    let outcome = run_guest("gic_sweep", 2, 2);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&["guest: gic_sweep:", "accesses to the GIC"])
        .assert_guest_passed("gic_sweep: every offset at every width")
        // Ignored accesses are reported, a few times only.
        .assert_line_with(&["WARN", "guest GIC register access ignored", "ignored (pc"])
        .assert_line_with(&["guest GIC register access ignored: further reports suppressed"]);
}

/// A guest sending malformed virtio descriptor chains to its disk: every one is
/// refused (the device asks for a reset, or the request fails), Aerie keeps running,
/// a valid read works after each, and the host disk is not touched.
#[test]
fn malformed_virtio_chains_leave_aerie_and_the_disk_intact() {
    let mut image = vec![0u8; 1 << 20];
    image[..16].copy_from_slice(b"DISK-BEFORE-TEST");
    let disk = aerie_tests::temp_file("hostile-disk.img", &image);
    let outcome = qemu::virt()
        .smp(1)
        .initrd(guest_bundle("virtio_hostile"))
        .append(&format!("{GUEST_OPTIONS} aerie.guest.smp=1"))
        .virtio_blk_with(&disk, Some("aerie-disk0"))
        .run();
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&["guest: virtio_hostile: done"])
        .assert_guest_passed("virtio_hostile: refused a descriptor loop")
        .assert_guest_passed("virtio_hostile: refused a buffer outside guest RAM")
        .assert_guest_passed("virtio_hostile: refused a descriptor table at the UART")
        .assert_guest_passed(
            "virtio_hostile: refused a descriptor table at the transport's own registers",
        )
        .assert_guest_passed("virtio_hostile: refused an available ring just past guest RAM")
        .assert_guest_passed("virtio_hostile: refused a used ring at the UART")
        .assert_guest_passed("virtio_hostile: refused a used ring just past guest RAM")
        .assert_guest_passed("virtio_hostile: a valid read works after a misplaced ring")
        .assert_guest_passed("virtio_hostile: a valid read works at the end")
        .assert_line_with(&["WARN", "guest virtio device at 0xa000", "needs a reset"]);
    assert_eq!(
        std::fs::read(&disk).unwrap(),
        image,
        "the host disk is unchanged"
    );
}

#[test]
fn exclusive_atomic_zeroing_and_unaligned_mmio_fault_in_the_guest() {
    // `max` has FEAT_LSE, so LDADD and CAS are tried too.
    let outcome = boot("mmio_hostile", 1, 1, qemu::virt().cpu("max"));
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("mmio_hostile: LDXR x ID takes one synchronous external abort")
        .assert_guest_passed("mmio_hostile: STXR x SCRATCH without a reservation takes no")
        .assert_guest_passed("mmio_hostile: STXR without a reservation fails (status 1)")
        .assert_guest_passed("mmio_hostile: LDADD x SCRATCH takes one synchronous external abort")
        .assert_guest_passed("mmio_hostile: CAS x SCRATCH takes one synchronous external abort")
        .assert_guest_passed("mmio_hostile: DC ZVA SCRATCH takes one synchronous external abort")
        .assert_guest_passed("mmio_hostile: DC ZVA leaves the device's memory unchanged")
        .assert_guest_passed("mmio_hostile: the faulting LDR wrote no register")
        .assert_guest_passed("mmio_hostile: the unaligned STR leaves the device's memory")
        .assert_guest_passed("mmio_hostile: LDR w ID+1 takes one alignment fault")
        .assert_guest_passed("mmio_hostile: STR x SCRATCH+4 takes one alignment fault")
        .assert_guest_passed("mmio_hostile: afterwards the test device still answers");
}

#[test]
fn an_sgi_storm_leaves_both_vcpus_running() {
    let outcome = run_guest("sgi_storm", 2, 2);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&["guest: sgi_storm: vCPU 0 sent 20000 SGIs"])
        .assert_guest_passed("sgi_storm: vCPU 1 kept running while vCPU 0 stormed")
        .assert_guest_passed("sgi_storm: vCPU 1 sent its SGIs too")
        .assert_guest_passed("sgi_storm: Aerie still answers PSCI_VERSION");
}

#[test]
fn el2_and_el3_registers_are_undefined_and_debug_registers_the_guests_own() {
    let outcome = run_guest("sysreg_hostile", 1, 1);
    assert_guest_exited(&outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_guest_passed("sysreg_hostile: MSR TPIDR_EL2 is UNDEFINED")
        .assert_guest_passed("sysreg_hostile: MSR VBAR_EL2 is UNDEFINED")
        .assert_guest_passed("sysreg_hostile: MSR HCR_EL2 is UNDEFINED")
        .assert_guest_passed("sysreg_hostile: MRS SCR_EL3 is UNDEFINED")
        .assert_guest_passed("sysreg_hostile: DBGBVR0_EL1 is the guest's own and reads back")
        .assert_guest_passed("sysreg_hostile: Aerie still answers PSCI_VERSION");
}

/// The checks of the `gic_conformance` guest, on either GIC version.
fn assert_gic_conformance(outcome: &Outcome, version: u32) {
    let sgi = if version == 3 {
        "ICC_SGI1R_EL1"
    } else {
        "GICD_SGIR"
    };
    let ppi = if version == 3 {
        "GICR_ISPENDR0"
    } else {
        "GICD_ISPENDR0"
    };
    let route = if version == 3 {
        "GICD_IROUTER"
    } else {
        "GICD_ITARGETSR"
    };
    assert_guest_exited(outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&[&format!("guest: gic_conformance: GICv{version}")])
        .assert_guest_passed(&format!(
            "gic_conformance: {sgi}: an SGI to itself arrives at once"
        ))
        .assert_guest_passed(&format!(
            "gic_conformance: {sgi}: an SGI to a target list of vCPU 1 arrives at once"
        ))
        .assert_guest_passed(&format!(
            "gic_conformance: {sgi}: an SGI to a target list of both vCPUs arrives at once on both"
        ))
        .assert_guest_passed(&format!(
            "gic_conformance: {sgi}: an SGI to all but itself arrives at once on vCPU 1 only"
        ))
        .assert_guest_passed(
            "gic_conformance: GICD_ISPENDR: an SPI routed to vCPU 1 arrives at once there",
        )
        .assert_guest_passed(
            "gic_conformance: GICD_ISPENDR: an SPI routed to vCPU 0 arrives at once there",
        )
        .assert_guest_passed(
            "gic_conformance: GICD_ISACTIVER + ISPENDR: an active SPI for vCPU 1 is not delivered again",
        )
        .assert_guest_passed(
            "gic_conformance: GICD_ISPENDR and ISACTIVER read the SPI for vCPU 1 pending and active",
        )
        .assert_guest_passed(
            "gic_conformance: GICD_ICACTIVER: the pending SPI then arrives at once on vCPU 1",
        )
        .assert_guest_passed(
            "gic_conformance: GICD_ICACTIVER: the pending SPI then arrives at once on vCPU 0",
        )
        .assert_guest_passed(&format!(
            "gic_conformance: {route}: a pending SPI moved from vCPU 0 to vCPU 1 arrives at once there, and only there"
        ));
    for what in [
        "disabling the timer (ENABLE = 0)",
        "masking the timer (IMASK = 1)",
        "moving CNTV_CVAL_EL0 into the future",
    ] {
        outcome
            .assert_guest_passed(&format!(
                "gic_conformance: {ppi}: the expired virtual timer's PPI 27 reads pending (then {what})"
            ))
            .assert_guest_passed(&format!("gic_conformance: {ppi}: {what} clears the PPI 27 pending state"))
            .assert_guest_passed(&format!(
                "gic_conformance: {what}: then PPI 27 is not delivered"
            ));
    }
    outcome
        .assert_guest_passed(&format!(
            "gic_conformance: {ppi}: PPI 27 disabled in the GIC still reads pending when the timer expires"
        ))
        .assert_guest_passed("gic_conformance: PPI 27 enabled again in the GIC is delivered at once")
        .assert_guest_passed("gic_conformance: the virtual timer armed again fires again")
        .assert_guest_passed(&format!(
            "gic_conformance: {ppi}: PPI 27 disabled in the GIC, its timer expired then disabled, is not pending"
        ))
        .assert_guest_passed("gic_conformance: the virtual timer armed after that fires")
        .assert_guest_passed("gic_conformance: no interrupt arrives that was not sent");
}

#[test]
fn gicv3_distributor_writes_and_the_virtual_timer_level_take_effect_at_once() {
    let outcome = run_guest("gic_conformance", 2, 2);
    assert_gic_conformance(&outcome, 3);
}

#[test]
fn gicv2_distributor_writes_and_the_virtual_timer_level_take_effect_at_once() {
    let outcome = boot("gic_conformance", 2, 2, qemu::virt().gic(2));
    assert_gic_conformance(&outcome, 2);
}

/// The checks of the `pmu` guest, on either GIC version.
fn assert_pmu(outcome: &Outcome, version: u32) {
    assert_guest_exited(outcome, 0);
    outcome
        .assert_guest_checks_passed()
        .assert_line_with(&[&format!("guest: pmu: GICv{version}")])
        .assert_line_with(&["guest: pmu: PMCR_EL0.N = 6"])
        .assert_guest_passed(
            "pmu: the device tree's arm,armv8-pmuv3 node has PPI 7 (INTID 23), level high",
        )
        .assert_guest_passed("pmu: ID_AA64DFR0_EL1.PMUVer names a PMUv3")
        .assert_guest_passed("pmu: PMCR_EL0.N is at least 2")
        .assert_guest_passed("pmu: the cycle counter moves")
        .assert_guest_passed("pmu: PMCEID0_EL0 advertises INST_RETIRED (event 0x08)")
        .assert_guest_passed("pmu: an INST_RETIRED counter counts the loop's instructions")
        .assert_guest_passed("pmu: a counter not enabled in PMCNTENSET_EL0 does not move")
        .assert_guest_passed("pmu: an enabled counter does not move while PMCR_EL0.E is clear")
        .assert_guest_passed("pmu: event counter 0 overflows (PMOVSSET_EL0) and raises INTID 23")
        .assert_guest_passed("pmu: the cycle counter overflows (PMOVSSET_EL0) and raises INTID 23")
        .assert_guest_passed("pmu: with IRQs masked, an overflow reads pending in the GIC")
        .assert_guest_passed("pmu: clearing the overflow (PMOVSCLR_EL0) clears the pending state")
        .assert_guest_passed("pmu: the cleared overflow is not delivered")
        .assert_guest_passed("pmu: no other interrupt arrives");
}

/// A Cortex-A72 host (PMUv3, six event counters) gives its guest the PMU. (The PMU
/// tests run under `-icount`: QEMU counts instructions, event INST_RETIRED, only then.)
#[test]
fn gicv3_guest_pmu_counts_overflows_and_interrupts() {
    let outcome = boot("pmu", 1, 1, qemu::virt().icount());
    assert_pmu(&outcome, 3);
}

/// A PMUv3p5 host (`-cpu max`): Aerie also sets MDCR_EL2.HPMD and HCCD, and the
/// guest sees at most PMUv3p5.
#[test]
fn pmuv3p5_guest_pmu_counts_overflows_and_interrupts() {
    let outcome = boot("pmu", 1, 1, qemu::virt().cpu("max").icount());
    assert_pmu(&outcome, 3);
}

#[test]
fn gicv2_guest_pmu_counts_overflows_and_interrupts() {
    let outcome = boot("pmu", 1, 1, qemu::virt().gic(2).icount());
    assert_pmu(&outcome, 2);
}
