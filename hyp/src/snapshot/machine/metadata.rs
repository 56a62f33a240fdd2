//! The metadata chunk: a readable description of the saved machine, as JSON.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::FORMAT_NAME;
use super::error::{MachineError, MetadataProblem};
use crate::cpu_model::{GuestCpu, ID_SPACE_SIZE, IdRegisters};
use crate::snapshot::{MemoryStats, PAGE_SIZE};
use crate::vcpu::MAX_VCPUS;

/// Longest virtio-blk serial (the device ID string is 20 bytes).
pub const MAX_DISK_SERIAL: usize = 20;

/// The description of a snapshot: machine layout, devices, sizes, timing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The Aerie version that wrote the snapshot, e.g. `0.1.0`.
    pub aerie_version: String,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The guest's RAM.
    pub ram: RamLayout,
    /// The interrupt controller the guest has.
    pub gic: GicKind,
    /// The generic timer's counter frequency, in Hz.
    pub counter_frequency: u64,
    /// The CPU the guest saw: its CPU model.
    pub cpu: CpuRecord,
    /// The counters at the moment the machine was saved.
    pub clock: SavedClock,
    /// Every device whose state is saved.
    pub devices: Vec<DeviceDescription>,
    /// How much guest RAM was stored.
    pub memory: MemorySummary,
    /// How long taking the snapshot took, in microseconds.
    pub took_micros: u64,
    /// The guest kernel's command line.
    pub guest_command_line: String,
}

/// The CPU the guest saw (its CPU model, [`crate::cpu_model`]): the feature ID
/// registers as Aerie answered the guest's reads of them, and CTR_EL0, which the
/// guest reads from the host. A guest may use any feature these advertise, so a
/// restore refuses a host that would show the guest anything else.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CpuRecord {
    /// MIDR_EL1 of the host (implementer, part, revision): for information only.
    pub midr: u64,
    /// CTR_EL0.
    pub ctr: u64,
    /// The feature ID registers, the encodings `S3_0_C0_C<CRm>_<op2>` for CRm 1 to 7
    /// and op2 0 to 7 in that order: [`ID_SPACE_SIZE`] values.
    pub id_registers: Vec<u64>,
}

impl CpuRecord {
    /// The record of `cpu` on a host with MIDR `midr`.
    pub fn new(midr: u64, cpu: &GuestCpu) -> Self {
        Self {
            midr,
            ctr: cpu.ctr,
            id_registers: cpu.id.values().to_vec(),
        }
    }

    /// The guest CPU recorded, if the record has every ID register.
    pub fn guest_cpu(&self) -> Option<GuestCpu> {
        Some(GuestCpu {
            id: IdRegisters::from_values(&self.id_registers)?,
            ctr: self.ctr,
        })
    }

    /// The recorded ID register at `reg` (0 for a short record).
    pub fn id(&self, reg: crate::exit::SysReg) -> u64 {
        self.guest_cpu()
            .and_then(|cpu| cpu.id.get(reg))
            .unwrap_or(0)
    }
}

/// Where the guest's RAM is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RamLayout {
    /// Guest physical base address (page-aligned).
    pub base: u64,
    /// Size in bytes (a non-zero multiple of the page size).
    pub size: u64,
}

/// The interrupt controller the guest sees.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicKind {
    /// A virtual GICv3.
    #[serde(rename = "gicv3")]
    V3,
    /// A virtual GICv2.
    #[serde(rename = "gicv2")]
    V2,
    /// No interrupt controller.
    #[serde(rename = "none")]
    None,
}

/// The counters when the machine was saved: what a restore needs to continue the
/// guest's time where it stopped.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedClock {
    /// The physical count (CNTPCT_EL0) at the moment of saving.
    pub physical_count: u64,
    /// The guest's virtual count (CNTVCT_EL0 as the guest saw it) at the same moment.
    pub virtual_count: u64,
}

/// One saved device.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceDescription {
    /// The device chunk's id: always equal to `base`.
    pub id: u64,
    /// What the device is.
    pub kind: DeviceKind,
    /// Guest physical base address of its register window (the vGIC's distributor).
    pub base: u64,
    /// Size of its register window in bytes.
    pub size: u64,
    /// Its interrupt, if it has one.
    pub intid: Option<u32>,
    /// The disk behind it: a virtio-blk device's host disk, or a flash bank's
    /// contents (`None` in snapshots of flash banks taken before Aerie recorded them).
    pub disk: Option<DiskIdentity>,
}

impl DeviceDescription {
    /// A device without a disk whose registers are `size` bytes at `base` (its chunk
    /// id), with interrupt `intid`.
    pub fn at(kind: DeviceKind, base: u64, size: u64, intid: Option<u32>) -> Self {
        Self {
            id: base,
            kind,
            base,
            size,
            intid,
            disk: None,
        }
    }
}

/// A kind of saved device.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// The virtual GICv3.
    VgicV3,
    /// The virtual GICv2.
    VgicV2,
    /// The emulated PL011 UART.
    Pl011,
    /// The Aerie test device.
    TestDevice,
    /// A virtio-mmio block device.
    VirtioBlock,
    /// A virtio-mmio console.
    VirtioConsole,
    /// A virtio-mmio entropy device.
    VirtioRng,
    /// The PL031 real-time clock.
    Pl031,
    /// A CFI flash bank of a firmware guest.
    CfiFlash,
}

/// Which guest disk a virtio-blk device was backed by, and what it held: a restore
/// refuses a disk whose contents changed since the snapshot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DiskIdentity {
    /// The host disk's virtio-blk serial.
    pub serial: String,
    /// Its size in 512-byte sectors.
    pub sectors: u64,
    /// CRC-32 of its whole contents at snapshot time.
    pub crc32: u32,
}

/// How much guest RAM the snapshot holds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemorySummary {
    /// Pages of guest RAM looked at.
    pub pages: u64,
    /// Pages stored (the others were zero).
    pub stored_pages: u64,
    /// Memory-range chunks.
    pub chunks: u32,
}

impl From<MemoryStats> for MemorySummary {
    /// The summary of what [`SnapshotWriter::add_memory`](crate::snapshot::SnapshotWriter::add_memory)
    /// stored.
    fn from(stats: MemoryStats) -> Self {
        Self {
            pages: stats.pages,
            stored_pages: stats.stored,
            chunks: stats.chunks,
        }
    }
}

/// The metadata as the metadata chunk's payload: indented JSON.
pub fn encode_metadata(metadata: &Metadata) -> Vec<u8> {
    // serde_json fails only on maps with non-string keys and failing custom
    // serializers; Metadata has neither, so this cannot happen.
    serde_json::to_vec_pretty(metadata).expect("Metadata always serializes")
}

/// Parses and checks a metadata chunk's payload.
pub fn decode_metadata(payload: &[u8]) -> Result<Metadata, MachineError> {
    let metadata: Metadata = serde_json::from_slice(payload)
        .map_err(|error| MachineError::Metadata(MetadataProblem::Json(error.to_string())))?;
    metadata.check().map_err(MachineError::Metadata)?;
    Ok(metadata)
}

impl Metadata {
    /// The description of the device with chunk id `id`.
    pub fn device(&self, id: u64) -> Option<&DeviceDescription> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// Checks that the metadata is self-consistent: the format name, a supported vCPU
    /// count, page-aligned RAM, devices with distinct ids equal to their base
    /// addresses, disks exactly on virtio-blk devices, vGIC devices matching `gic`.
    pub fn check(&self) -> Result<(), MetadataProblem> {
        if self.format != FORMAT_NAME {
            return Err(MetadataProblem::WrongFormat(self.format.clone()));
        }
        if self.vcpus == 0 || self.vcpus as usize > MAX_VCPUS {
            return Err(MetadataProblem::VcpuCount(self.vcpus));
        }
        let page = PAGE_SIZE as u64;
        let ram = self.ram;
        if ram.size == 0
            || ram.base % page != 0
            || ram.size % page != 0
            || ram.base.checked_add(ram.size).is_none()
        {
            return Err(MetadataProblem::BadRam);
        }
        if self.counter_frequency == 0 {
            return Err(MetadataProblem::ZeroCounterFrequency);
        }
        if self.cpu.id_registers.len() != ID_SPACE_SIZE {
            return Err(MetadataProblem::CpuIdRegisters(self.cpu.id_registers.len()));
        }
        let mut ids = BTreeSet::new();
        for device in &self.devices {
            device.check()?;
            if !ids.insert(device.id) {
                return Err(MetadataProblem::DuplicateDevice(device.id));
            }
        }
        let count = |kind| self.devices.iter().filter(|d| d.kind == kind).count();
        let (v3, v2) = (count(DeviceKind::VgicV3), count(DeviceKind::VgicV2));
        let gic_ok = match self.gic {
            GicKind::V3 => (v3, v2) == (1, 0),
            GicKind::V2 => (v3, v2) == (0, 1),
            GicKind::None => (v3, v2) == (0, 0),
        };
        if !gic_ok {
            return Err(MetadataProblem::GicDevices);
        }
        Ok(())
    }
}

impl DeviceDescription {
    /// Checks the description on its own.
    fn check(&self) -> Result<(), MetadataProblem> {
        if self.id != self.base {
            return Err(MetadataProblem::DeviceId {
                id: self.id,
                base: self.base,
            });
        }
        if self.size == 0 || self.base.checked_add(self.size).is_none() {
            return Err(MetadataProblem::DeviceWindow(self.id));
        }
        match (&self.disk, self.kind) {
            (Some(disk), DeviceKind::VirtioBlock | DeviceKind::CfiFlash) => {
                let printable = disk
                    .serial
                    .bytes()
                    .all(|b| b.is_ascii_graphic() || b == b' ');
                if disk.serial.len() > MAX_DISK_SERIAL || !printable {
                    return Err(MetadataProblem::DiskSerial(self.id));
                }
                Ok(())
            }
            (None, DeviceKind::VirtioBlock) | (Some(_), _) => {
                Err(MetadataProblem::DiskIdentity(self.id))
            }
            (None, _) => Ok(()),
        }
    }
}
