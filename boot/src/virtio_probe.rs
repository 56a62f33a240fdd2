//! Identifies the devices in the host's virtio-mmio slots by reading their ID
//! registers. QEMU lists every slot in the device tree; empty ones read device ID 0.

use crate::drivers::virtio_blk::HostDisk;
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

/// The host disks Aerie has opened (for guest disk backends and snapshots).
pub static HOST_DISKS: spin::Mutex<alloc::vec::Vec<HostDisk>> =
    spin::Mutex::new(alloc::vec::Vec::new());

/// Opens the block device in `slot` for Aerie's own use; returns its capacity.
fn open_disk(slot: &VirtioSlot) -> Option<u64> {
    // SAFETY: `classify` found a virtio block device in this slot; the slot comes
    // from the device tree, is identity-mapped as device memory, and Aerie opens
    // each slot once and never shows it to a guest.
    match unsafe { HostDisk::open(slot.registers) } {
        Ok(disk) => {
            let capacity = disk.capacity_sectors().saturating_mul(SECTOR_SIZE);
            log::debug!(
                "host disk at {:#x}: {}{}",
                slot.registers.start(),
                aerie_hyp::units::ByteSize(capacity),
                if disk.read_only() { ", read-only" } else { "" }
            );
            HOST_DISKS.lock().push(disk);
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
