//! Identifies the devices in the host's virtio-mmio slots by reading their ID
//! registers. QEMU lists every slot in the device tree; empty ones read device ID 0.

use aerie_devices::virtio::{self, DeviceType, SlotState, regs};
use aerie_hyp::platform::{MAX_VIRTIO_SLOTS, VirtioSlot};
use aerie_hyp::summary::HostVirtioDevice;
use arrayvec::ArrayVec;

/// Offset of a virtio-blk device's capacity (in 512-byte sectors) in its
/// configuration space.
const BLOCK_CAPACITY_OFFSET: u64 = 0;
/// virtio-blk sector size.
const SECTOR_SIZE: u64 = 512;

fn read32(slot: &VirtioSlot, offset: u64) -> u32 {
    let address = slot.registers.start() + offset;
    // SAFETY: the slot's register block comes from the device tree and is
    // identity-mapped as device memory by `arch::mmu`; `offset` is one of the
    // transport's register offsets, inside the 0x200-byte block, 4-byte aligned.
    unsafe { core::ptr::read_volatile(address as *const u32) }
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
            let capacity = (device == DeviceType::Block).then(|| {
                let config = regs::CONFIG + BLOCK_CAPACITY_OFFSET;
                let low = u64::from(read32(slot, config));
                let high = u64::from(read32(slot, config + 4));
                (high << 32 | low).saturating_mul(SECTOR_SIZE)
            });
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
