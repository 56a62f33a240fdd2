//! The VM's devices as snapshot data: what each one is and where it sits
//! ([`DeviceDescription`]), its state ([`DeviceState`]), and putting saved state
//! back. A device is named by the guest physical base address of its registers.

use super::super::virtio::{GuestBlock, GuestConsole, GuestRng, Kind};
use super::super::{Vm, interrupts};
use aerie_devices::pl011::Pl011;
use aerie_devices::pl031::Pl031;
use aerie_devices::testdev::TestDevice;
use aerie_devices::vgic::{VgicV2, VgicV3};
use aerie_hyp::guest_layout;
use aerie_hyp::snapshot::Crc32;
use aerie_hyp::snapshot::machine::{
    DeviceDescription, DeviceKind, DeviceState, DiskIdentity, SavedDevice,
};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// Bytes read per request while fingerprinting a guest disk.
const FINGERPRINT_CHUNK: usize = 1 << 20;

/// Where each of the VM's devices sits, without state or disk identities (what a
/// restore compares with the snapshot's description).
pub fn layout(vm: &Vm) -> Vec<DeviceDescription> {
    let mut devices = Vec::new();
    if let Some(vgic) = &vm.vgic {
        let vgic = vgic.lock();
        let kind = if vgic.as_any().is::<VgicV3>() {
            DeviceKind::VgicV3
        } else {
            DeviceKind::VgicV2
        };
        devices.push(DeviceDescription::at(
            kind,
            guest_layout::GIC_DISTRIBUTOR,
            vgic.window_size(),
            None,
        ));
    }
    devices.push(DeviceDescription::at(
        DeviceKind::Pl011,
        guest_layout::UART,
        guest_layout::UART_SIZE,
        Some(interrupts::GUEST_UART_INTID),
    ));
    if vm.rtc.is_some() {
        devices.push(DeviceDescription::at(
            DeviceKind::Pl031,
            guest_layout::RTC,
            guest_layout::RTC_SIZE,
            None,
        ));
    }
    if vm.test_device.is_some() {
        devices.push(DeviceDescription::at(
            DeviceKind::TestDevice,
            guest_layout::TEST_DEVICE,
            guest_layout::TEST_DEVICE_SIZE,
            None,
        ));
    }
    for (index, slot) in vm.virtio.iter().enumerate() {
        let kind = match slot.kind {
            Kind::Block => DeviceKind::VirtioBlock,
            Kind::Console => DeviceKind::VirtioConsole,
            Kind::Rng => DeviceKind::VirtioRng,
        };
        devices.push(DeviceDescription::at(
            kind,
            super::super::virtio::transport_address(index),
            guest_layout::VIRTIO_MMIO_STRIDE,
            Some(slot.intid),
        ));
    }
    devices
}

/// Every device's description (with guest disk identities) and state. The VM must
/// be paused.
pub fn save(vm: &Vm) -> Result<Vec<(DeviceDescription, DeviceState)>, String> {
    let mut saved = Vec::new();
    for mut description in layout(vm) {
        let state = save_one(vm, &mut description)?;
        saved.push((description, state));
    }
    Ok(saved)
}

fn save_one(vm: &Vm, description: &mut DeviceDescription) -> Result<DeviceState, String> {
    let missing = || {
        format!(
            "{:?} at {:#x} is missing",
            description.kind, description.base
        )
    };
    if let DeviceKind::VgicV3 | DeviceKind::VgicV2 = description.kind {
        let vgic = vm.vgic.as_ref().ok_or_else(missing)?.lock();
        let any = vgic.as_any();
        if let Some(v3) = any.downcast_ref::<VgicV3>() {
            return Ok(DeviceState::VgicV3(v3.save()));
        }
        let v2 = any.downcast_ref::<VgicV2>().ok_or_else(missing)?;
        return Ok(DeviceState::VgicV2(v2.save()));
    }
    let mut bus = vm.bus.lock();
    let id = bus.device_at(description.base).ok_or_else(missing)?;
    Ok(match description.kind {
        DeviceKind::Pl011 => {
            DeviceState::Pl011(bus.downcast_mut::<Pl011>(id).ok_or_else(missing)?.save())
        }
        DeviceKind::Pl031 => {
            DeviceState::Pl031(bus.downcast_mut::<Pl031>(id).ok_or_else(missing)?.save())
        }
        DeviceKind::TestDevice => DeviceState::TestDevice(
            bus.downcast_mut::<TestDevice>(id)
                .ok_or_else(missing)?
                .save(),
        ),
        DeviceKind::VirtioBlock => {
            let block = bus.downcast_mut::<GuestBlock>(id).ok_or_else(missing)?;
            description.disk = Some(fingerprint(block)?);
            DeviceState::VirtioBlock(block.save())
        }
        DeviceKind::VirtioConsole => DeviceState::VirtioConsole(
            bus.downcast_mut::<GuestConsole>(id)
                .ok_or_else(missing)?
                .save(),
        ),
        DeviceKind::VirtioRng => {
            DeviceState::VirtioRng(bus.downcast_mut::<GuestRng>(id).ok_or_else(missing)?.save())
        }
        DeviceKind::VgicV3 | DeviceKind::VgicV2 => unreachable!("handled above"),
    })
}

/// The identity of a guest disk's virtio-blk device.
fn fingerprint(block: &mut GuestBlock) -> Result<DiskIdentity, String> {
    use aerie_devices::virtio::BlockBackend;
    let backend = block.device_mut().backend_mut();
    let serial = serial_text(&backend.id());
    disk_identity(serial, backend.capacity_sectors(), |sector, bytes| {
        backend.read(sector, bytes).map_err(|e| String::from(e.0))
    })
}

/// The identity of a disk of `sectors` sectors read through `read`: its serial,
/// size, and a CRC-32 of all its contents.
pub fn disk_identity(
    serial: String,
    sectors: u64,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), String>,
) -> Result<DiskIdentity, String> {
    let mut crc = Crc32::new();
    let mut buffer = vec![0u8; FINGERPRINT_CHUNK];
    let mut sector = 0;
    while sector < sectors {
        let count = (sectors - sector).min((FINGERPRINT_CHUNK / 512) as u64);
        let bytes = &mut buffer[..count as usize * 512];
        read(sector, bytes).map_err(|e| format!("reading guest disk {serial}: {e}"))?;
        crc.update(bytes);
        sector += count;
    }
    Ok(DiskIdentity {
        serial,
        sectors,
        crc32: crc.finish(),
    })
}

/// A virtio-blk serial as text (up to the first NUL).
fn serial_text(id: &[u8; 20]) -> String {
    let end = id.iter().position(|&b| b == 0).unwrap_or(id.len());
    String::from_utf8_lossy(&id[..end]).to_string()
}

/// Puts every saved device state back. The states were checked against models of
/// the same configuration when the snapshot was read, so a failure here means the
/// VM does not match its description.
pub fn restore(vm: &Vm, saved: &[SavedDevice]) -> Result<(), String> {
    for device in saved {
        restore_one(vm, device).map_err(|e| format!("device at {:#x}: {e}", device.id))?;
    }
    Ok(())
}

fn restore_one(vm: &Vm, device: &SavedDevice) -> Result<(), String> {
    let missing = || String::from("this VM has no such device");
    let bad = |e: &dyn core::fmt::Display| e.to_string();
    match &device.state {
        DeviceState::VgicV3(state) => {
            let mut vgic = vm.vgic.as_ref().ok_or_else(missing)?.lock();
            let v3 = vgic
                .as_any_mut()
                .downcast_mut::<VgicV3>()
                .ok_or_else(missing)?;
            return v3.restore(state).map_err(|e| bad(&e));
        }
        DeviceState::VgicV2(state) => {
            let mut vgic = vm.vgic.as_ref().ok_or_else(missing)?.lock();
            let v2 = vgic
                .as_any_mut()
                .downcast_mut::<VgicV2>()
                .ok_or_else(missing)?;
            return v2.restore(state).map_err(|e| bad(&e));
        }
        _ => {}
    }
    let mut bus = vm.bus.lock();
    let id = bus.device_at(device.id).ok_or_else(missing)?;
    match &device.state {
        DeviceState::Pl011(state) => {
            bus.downcast_mut::<Pl011>(id)
                .ok_or_else(missing)?
                .restore(state);
            Ok(())
        }
        DeviceState::Pl031(state) => {
            bus.downcast_mut::<Pl031>(id)
                .ok_or_else(missing)?
                .restore(state);
            Ok(())
        }
        DeviceState::TestDevice(state) => {
            bus.downcast_mut::<TestDevice>(id)
                .ok_or_else(missing)?
                .restore(state);
            Ok(())
        }
        DeviceState::VirtioBlock(state) => bus
            .downcast_mut::<GuestBlock>(id)
            .ok_or_else(missing)?
            .restore(state)
            .map_err(|e| bad(&e)),
        DeviceState::VirtioConsole(state) => bus
            .downcast_mut::<GuestConsole>(id)
            .ok_or_else(missing)?
            .restore(state)
            .map_err(|e| bad(&e)),
        DeviceState::VirtioRng(state) => bus
            .downcast_mut::<GuestRng>(id)
            .ok_or_else(missing)?
            .restore(state)
            .map_err(|e| bad(&e)),
        DeviceState::VgicV3(_) | DeviceState::VgicV2(_) => unreachable!("handled above"),
    }
}
