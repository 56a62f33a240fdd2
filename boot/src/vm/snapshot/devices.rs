//! The VM's devices as snapshot data: what each one is and where it sits
//! ([`DeviceDescription`]), its state ([`DeviceState`]), and putting saved state
//! back. A device is named by the guest physical base address of its registers.
//! The vGIC is saved here; every other device is one of the bus's devices, which
//! describe, save and restore themselves the same way (`super::super::devices`).

use super::super::Vm;
use super::super::virtio::HostBackend;
use aerie_devices::cfi_flash::FlashArray;
use aerie_devices::vgic::{Vgic, VgicV2, VgicV3};
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
        devices.push(vgic_description(&**vgic.lock()));
    }
    let mut bus = vm.bus.lock();
    for (base, size, device) in bus.iter_mut() {
        devices.push(device.describe(base, size));
    }
    devices
}

/// Every device's description (with guest disk identities) and state, in the order
/// of [`layout`]. The VM must be paused.
pub fn save(vm: &Vm) -> Result<Vec<(DeviceDescription, DeviceState)>, String> {
    let mut saved = Vec::new();
    if let Some(vgic) = &vm.vgic {
        let vgic = vgic.lock();
        saved.push((vgic_description(&**vgic), vgic_state(&**vgic)?));
    }
    let mut bus = vm.bus.lock();
    for (base, size, device) in bus.iter_mut() {
        let mut description = device.describe(base, size);
        description.disk = match device.flash_mut() {
            Some(bank) => Some(flash_identity(base, bank.array())?),
            None => device.disk().map(fingerprint).transpose()?,
        };
        saved.push((description, device.save()));
    }
    Ok(saved)
}

/// What the vGIC is and where its window sits.
fn vgic_description(vgic: &(dyn Vgic + Send)) -> DeviceDescription {
    let kind = if vgic.as_any().is::<VgicV3>() {
        DeviceKind::VgicV3
    } else {
        DeviceKind::VgicV2
    };
    DeviceDescription::at(
        kind,
        guest_layout::GIC_DISTRIBUTOR,
        vgic.window_size(),
        None,
    )
}

/// The vGIC's state.
fn vgic_state(vgic: &(dyn Vgic + Send)) -> Result<DeviceState, String> {
    let any = vgic.as_any();
    if let Some(v3) = any.downcast_ref::<VgicV3>() {
        return Ok(DeviceState::VgicV3(v3.save()));
    }
    let v2 = any
        .downcast_ref::<VgicV2>()
        .ok_or("the vGIC is neither a GICv3 nor a GICv2")?;
    Ok(DeviceState::VgicV2(v2.save()))
}

/// The identity of a guest disk's virtio-blk device.
fn fingerprint(backend: &mut HostBackend) -> Result<DiskIdentity, String> {
    use aerie_devices::virtio::BlockBackend;
    let serial = serial_text(&backend.id());
    disk_identity(serial, backend.capacity_sectors(), |sector, bytes| {
        backend.read(sector, bytes).map_err(|e| String::from(e.0))
    })
}

/// The identity of the contents of the flash bank at `base`: what a restore checks
/// the firmware and the variable store it is given against.
pub fn flash_identity(base: u64, bank: &impl FlashArray) -> Result<DiskIdentity, String> {
    let serial = String::from(aerie_hyp::firmware::bank_name(base));
    disk_identity(serial, bank.backed_size() / 512, |sector, bytes| {
        bank.read(sector * 512, bytes);
        Ok(())
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
    bus.device_mut(id)
        .ok_or_else(missing)?
        .restore(&device.state)
}
