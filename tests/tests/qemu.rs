//! QEMU integration tests: boot the Aerie image (`$AERIE_IMAGE`, set by
//! `cargo xtask test`) and check what it prints and how it exits.

use std::time::Duration;

use aerie_tests::{DtbEditor, Qemu, fixture, temp_file};

#[test]
fn boots_with_defaults_and_exits_cleanly() {
    Qemu::virt().run().assert_exit(0).assert_contains("Aerie");
}

/// Boots on GICv2 with a device tree that went through the harness's editor: QEMU's
/// own tree (the fixture was dumped with 4 CPUs and 1 GiB), read and written back.
#[test]
fn boots_on_gicv2_with_a_rewritten_device_tree() {
    let blob = std::fs::read(fixture("qemu-virt-gicv2.dtb")).unwrap();
    let tree = DtbEditor::from_bytes(&blob).unwrap();
    let dtb = temp_file("virt-gicv2.dtb", &tree.to_bytes().unwrap());
    Qemu::virt()
        .gic(2)
        .smp(4)
        .mem_mib(1024)
        .dtb(dtb)
        .run()
        .assert_exit(0)
        .assert_contains("Aerie");
}

/// Proves the harness itself: a machine with nothing to run never exits, and the
/// timeout kills it and says so.
#[test]
fn harness_kills_a_machine_that_never_exits() {
    let outcome = Qemu::virt()
        .no_kernel()
        .timeout(Duration::from_secs(1))
        .run();
    assert!(outcome.timed_out, "{outcome}");
    assert_eq!(outcome.exit_code, None);
    assert!(outcome.duration >= Duration::from_secs(1));
}
