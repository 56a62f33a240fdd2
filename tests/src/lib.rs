//! Aerie's QEMU integration-test harness.
//!
//! The tests themselves live in `tests/tests/*.rs` and run through
//! `cargo xtask test`, which builds the image and passes its path in `AERIE_IMAGE`,
//! and builds the test guests (`tests/guests/`) and passes their directory in
//! `AERIE_TEST_GUESTS`.
//!
//! | module | job |
//! |---|---|
//! | [`qemu`] | the machines under test ([`qemu::virt`], [`qemu::raspi4b`]: aerie-host's [`Qemu`] builder preset), then `run()` |
//! | [`outcome`] | the [`Outcome`] of a run and assertions on its serial transcript |
//! | [`dtb`] | [`DtbEditor`]: read a device tree, change it, write it back |
//! | [`guests`] | the test guests' images (`$AERIE_TEST_GUESTS`) and guest bundles |
//! | [`paths`] | the image under test, fixtures, per-test temporary files |
//! | [`xtask`] | running `cargo xtask` as a user does, within a deadline, killing its QEMU when it strikes |
//! | [`snapshot_runs`] | reading and damaging snapshot files for the snapshot tests |
//! | [`console_session`] | driving a `cargo xtask run`'s console: expected text, typed keys |
//! | [`efi_disk`] | a GPT disk with an EFI system partition (FAT16) holding given files |
//!
//! ```no_run
//! use aerie_tests::qemu::{self, Run};
//!
//! qemu::virt().smp(2).run().assert_exit(0).assert_contains("Aerie");
//! ```
#![forbid(unsafe_code)]

pub mod console_session;
pub mod dtb;
pub mod efi_disk;
pub mod guests;
pub mod outcome;
pub mod paths;
pub mod qemu;
pub mod snapshot_runs;
pub mod xtask;

pub use dtb::DtbEditor;
pub use guests::{guest_bundle, test_guest};
pub use outcome::Outcome;
pub use paths::{aerie_elf, aerie_image, fixture, temp_file, test_tmp_dir};
pub use qemu::Qemu;

/// The host's wall-clock time: seconds since 1970 (to compare a guest's clock with).
pub fn host_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the host clock is after 1970")
        .as_secs() as i64
}
