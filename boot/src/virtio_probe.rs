//! Identifies the devices in the host's virtio-mmio slots by reading their ID
//! registers. QEMU lists every slot in the device tree; empty ones read device ID 0.

use crate::drivers::virtio_blk::HostDisk;
use crate::drivers::virtio_rng::HostRng;
use aerie_devices::virtio::{self, DeviceType, SlotState, regs};
use aerie_hyp::platform::{MAX_VIRTIO_SLOTS, VirtioSlot};
use aerie_hyp::summary::HostVirtioDevice;
use arrayvec::ArrayVec;

/// virtio-blk sector size.
const SECTOR_SIZE: u64 = 512;

fn read32(slot: &VirtioSlot, offset: u64) -> u32 {
    let address = slot.registers.start() + offset;
    // SAFETY: the slot's register block comes from the device tree and is
    // identity-mapped as device memory by `arch::mmu`; `offset` is one of the
    // transport's register offsets, inside the 0x200-byte block, 4-byte aligned.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

/// The host disks Aerie has opened (for guest disk backends and snapshots), with
/// their serial numbers.
pub static HOST_DISKS: crate::sync::Mutex<alloc::vec::Vec<OpenDisk>> =
    crate::sync::Mutex::new(alloc::vec::Vec::new());

/// A host disk and its serial number.
pub struct OpenDisk {
    /// The disk.
    pub disk: HostDisk,
    /// Its virtio-blk serial number, NUL-padded.
    pub serial: [u8; 20],
}

impl OpenDisk {
    /// The serial number as text.
    pub fn serial_text(&self) -> &str {
        let end = self
            .serial
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.serial.len());
        core::str::from_utf8(&self.serial[..end]).unwrap_or("")
    }
}

/// Takes the host disks meant for the guest (serial `aerie-diskN`, set by `cargo
/// xtask run --disk`), in order of N. Other disks stay with Aerie.
pub fn take_guest_disks() -> alloc::vec::Vec<OpenDisk> {
    let mut disks = HOST_DISKS.lock();
    let mut guest = alloc::vec::Vec::new();
    let mut index = 0;
    while index < disks.len() {
        if disks[index].serial_text().starts_with(GUEST_DISK_SERIAL) {
            guest.push(disks.remove(index));
        } else {
            index += 1;
        }
    }
    guest.sort_by(|a, b| a.serial_text().cmp(b.serial_text()));
    guest
}

/// Serial number of the host disk that holds Aerie's snapshots (set by `cargo xtask
/// run`).
pub const SNAPSHOT_DISK_SERIAL: &str = "aerie-snapshots";

/// Takes the snapshot disk (serial [`SNAPSHOT_DISK_SERIAL`]), if the machine has one.
pub fn take_snapshot_disk() -> Option<OpenDisk> {
    take_disk(SNAPSHOT_DISK_SERIAL)
}

/// Serial number of the host disk behind a firmware guest's flash variable store
/// (set by `cargo xtask run --bios`).
pub const FLASH_VARS_SERIAL: &str = "aerie-flash-vars";

/// Takes the flash variable store's disk (serial [`FLASH_VARS_SERIAL`]), if the
/// machine has one: like the snapshot disk, the guest never sees it as a disk.
pub fn take_flash_vars_disk() -> Option<OpenDisk> {
    take_disk(FLASH_VARS_SERIAL)
}

/// Takes the host disk with serial number `serial`, if there is one.
fn take_disk(serial: &str) -> Option<OpenDisk> {
    let mut disks = HOST_DISKS.lock();
    let index = disks.iter().position(|disk| disk.serial_text() == serial)?;
    Some(disks.remove(index))
}

/// Serial-number prefix of host disks that belong to the guest.
const GUEST_DISK_SERIAL: &str = "aerie-disk";

/// The host's entropy device, if it has one (the guest's virtio-rng source when the
/// CPU has no RNDR).
pub static HOST_RNG: crate::sync::Mutex<Option<HostRng>> = crate::sync::Mutex::new(None);

/// Opens the entropy device in `slot` (the first one found).
fn open_rng(slot: &VirtioSlot) {
    let mut host = HOST_RNG.lock();
    if host.is_none() {
        // SAFETY: `classify` found a virtio entropy device in this slot; it comes
        // from the device tree, is identity-mapped as device memory, and Aerie opens
        // it once and never shows it to a guest.
        *host = unsafe { HostRng::open(slot.registers) };
        if host.is_none() {
            log::warn!(
                "host entropy device at {:#x} unusable",
                slot.registers.start()
            );
        }
    }
}

/// Opens the block device in `slot` for Aerie's own use; returns its capacity.
fn open_disk(slot: &VirtioSlot) -> Option<u64> {
    // SAFETY: `classify` found a virtio block device in this slot; the slot comes
    // from the device tree, is identity-mapped as device memory, and Aerie opens
    // each slot once and never shows it to a guest.
    match unsafe { HostDisk::open(slot.registers) } {
        Ok(mut disk) => {
            let capacity = disk.capacity_sectors().saturating_mul(SECTOR_SIZE);
            let serial = disk.serial();
            let open = OpenDisk { disk, serial };
            log::debug!(
                "host disk at {:#x}: {} serial {:?}{}",
                slot.registers.start(),
                aerie_hyp::units::ByteSize(capacity),
                open.serial_text(),
                if open.disk.read_only() {
                    ", read-only"
                } else {
                    ""
                }
            );
            HOST_DISKS.lock().push(open);
            Some(capacity)
        }
        Err(error) => {
            log::warn!(
                "host disk at {:#x} unusable: {error}",
                slot.registers.start()
            );
            None
        }
    }
}

/// The devices present in `slots`, sorted by address.
pub fn probe(slots: &[VirtioSlot]) -> ArrayVec<HostVirtioDevice, MAX_VIRTIO_SLOTS> {
    let mut devices = ArrayVec::new();
    for slot in slots {
        if slot.registers.size() < regs::CONFIG + 8 {
            continue;
        }
        let state = virtio::classify(
            read32(slot, regs::MAGIC_VALUE),
            read32(slot, regs::VERSION),
            read32(slot, regs::DEVICE_ID),
        );
        if let SlotState::Device { device, version } = state {
            let capacity = (device == DeviceType::Block)
                .then(|| open_disk(slot))
                .flatten();
            if device == DeviceType::Entropy {
                open_rng(slot);
            }
            devices.push(HostVirtioDevice {
                registers: slot.registers,
                device,
                version: version as u32,
                capacity,
            });
        }
    }
    devices.sort_unstable_by_key(|d| d.registers.start());
    devices
}
