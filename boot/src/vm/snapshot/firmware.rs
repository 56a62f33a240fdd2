//! A firmware guest's flash banks on restore. The snapshot records each bank's
//! contents by size and CRC-32 (its disk identity, see `devices::flash_identity`),
//! not the contents themselves: bank 0 is rebuilt from the firmware in the guest
//! bundle, bank 1 from the variable store's host disk, and a restore is refused
//! when either differs from what the snapshot recorded.

use super::super::bundle::{self, BundleInRam};
use super::super::flash::HostFlash;
use super::SnapshotFailure;
use super::devices::disk_identity;
use crate::virtio_probe::OpenDisk;
use aerie_hyp::firmware::{backed_sizes, bank_name, read_code_bank};
use aerie_hyp::guest_layout::{FLASH_CODE, FLASH_VARS};
use aerie_hyp::memory::Range;
use aerie_hyp::snapshot::machine::{DeviceDescription, DeviceKind, DiskIdentity};
use aerie_hyp::units::ByteSize;
use alloc::format;
use alloc::string::String;

/// What a restore may rebuild flash banks from.
pub struct FlashSources {
    /// The firmware in the guest bundle, when the bundle holds firmware.
    firmware: Option<Range>,
    /// The variable store's host disk.
    pub vars: Option<OpenDisk>,
}

impl FlashSources {
    /// The firmware in `bundle` (if it is a firmware bundle) and the variable store
    /// disk `vars`.
    pub fn new(bundle: Option<Range>, vars: Option<OpenDisk>) -> Self {
        let firmware = bundle.and_then(|bundle| match BundleInRam::read(bundle) {
            Ok(BundleInRam::Firmware(firmware)) => Some(firmware),
            _ => None,
        });
        Self { firmware, vars }
    }

    /// How much of each bank is backed: code, variable store.
    fn sizes(&self, firmware: Range) -> (u64, u64) {
        let vars = self.vars.as_ref().map(|v| v.disk.capacity_sectors() * 512);
        backed_sizes(firmware.size(), vars)
    }
}

/// Whether the snapshot's guest is a firmware guest.
pub fn has_flash(devices: &[DeviceDescription]) -> bool {
    devices.iter().any(|d| d.kind == DeviceKind::CfiFlash)
}

/// Checks that `sources` rebuild the snapshot's flash banks exactly (nothing to
/// check for a guest without flash).
pub fn check(
    devices: &[DeviceDescription],
    sources: &mut FlashSources,
) -> Result<(), SnapshotFailure> {
    if !has_flash(devices) {
        return Ok(());
    }
    let mismatch = |message: String| Err(SnapshotFailure::Mismatch(message));
    let Some(firmware) = sources.firmware else {
        return mismatch(String::from(
            "the snapshot is of a firmware guest: give Aerie the firmware it ran \
             (cargo xtask run --bios FW --restore)",
        ));
    };
    let (code_size, vars_size) = sources.sizes(firmware);
    for bank in devices.iter().filter(|d| d.kind == DeviceKind::CfiFlash) {
        let Some(saved) = &bank.disk else {
            return mismatch(String::from(
                "the snapshot of this firmware guest does not record its flash banks \
                 (it was taken by an older Aerie)",
            ));
        };
        let (what, current) = match bank.base {
            FLASH_CODE => ("firmware", code_identity(firmware, code_size)?),
            FLASH_VARS => (
                "flash variable store",
                vars_identity(sources.vars.as_mut(), vars_size)?,
            ),
            other => return mismatch(format!("a flash bank at {other:#x}")),
        };
        if current != *saved {
            return mismatch(format!(
                "the {what} changed since the snapshot was taken (now {}, CRC-32 {:08x}; \
                 then {}, CRC-32 {:08x}): restore with the firmware and variable store \
                 the guest ran with",
                ByteSize(current.sectors * 512),
                current.crc32,
                ByteSize(saved.sectors * 512),
                saved.crc32
            ));
        }
    }
    Ok(())
}

/// Builds the banks [`check`] accepted: the firmware in bank 0, the variable store
/// read from its disk in bank 1. `None` for a guest without flash.
pub fn build(
    devices: &[DeviceDescription],
    sources: FlashSources,
) -> Result<Option<[HostFlash; 2]>, SnapshotFailure> {
    let Some(firmware) = sources.firmware.filter(|_| has_flash(devices)) else {
        return Ok(None);
    };
    let (code_size, vars_size) = sources.sizes(firmware);
    let no_memory =
        || SnapshotFailure::Mismatch(String::from("no host memory left for the flash banks"));
    let code = HostFlash::allocate(FLASH_CODE, code_size, None).ok_or_else(no_memory)?;
    bundle::with_bytes(firmware, |bytes| code.memory().write(FLASH_CODE, bytes))
        .ok_or_else(|| SnapshotFailure::Mismatch(String::from("the firmware does not fit")))?;
    let mut vars =
        HostFlash::allocate(FLASH_VARS, vars_size, sources.vars).ok_or_else(no_memory)?;
    vars.load_from_disk().map_err(SnapshotFailure::Mismatch)?;
    Ok(Some([code, vars]))
}

/// The identity bank 0 has when it holds `firmware`, backed to `size` bytes.
fn code_identity(firmware: Range, size: u64) -> Result<DiskIdentity, SnapshotFailure> {
    bundle::with_bytes(firmware, |bytes| {
        let fill = |sector: u64, out: &mut [u8]| {
            read_code_bank(bytes, sector * 512, out);
            Ok(())
        };
        disk_identity(String::from(bank_name(FLASH_CODE)), size / 512, fill)
    })
    .map_err(SnapshotFailure::Mismatch)
}

/// The identity bank 1 has when read from `disk`, backed to `size` bytes.
fn vars_identity(disk: Option<&mut OpenDisk>, size: u64) -> Result<DiskIdentity, SnapshotFailure> {
    let name = String::from(bank_name(FLASH_VARS));
    let identity = match disk {
        Some(open) => disk_identity(name, size / 512, |sector, bytes| {
            open.disk.read(sector, bytes).map_err(|e| format!("{e}"))
        }),
        None => disk_identity(name, 0, |_, _| Ok(())),
    };
    identity.map_err(SnapshotFailure::Mismatch)
}
