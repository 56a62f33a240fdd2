//! The metadata chunk: a readable description of the saved machine, as JSON.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::FORMAT_NAME;
use super::error::{MachineError, MetadataProblem};
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
    /// The host CPU the guest ran on (the guest sees its ID registers).
    pub cpu: CpuIdentity,
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

/// The host CPU a snapshot was taken on: its MIDR and the ID registers that say
/// which architecture features it has. Guests read these registers directly (Aerie
/// does not trap them), so a guest may rely on any feature they advertise; a
/// restore refuses a CPU whose feature registers differ.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CpuIdentity {
    /// MIDR_EL1 (implementer, part, revision): for information only.
    pub midr: u64,
    /// ID_AA64ISAR0_EL1.
    pub isar0: u64,
    /// ID_AA64ISAR1_EL1.
    pub isar1: u64,
    /// ID_AA64ISAR2_EL1.
    pub isar2: u64,
    /// ID_AA64PFR0_EL1.
    pub pfr0: u64,
    /// ID_AA64PFR1_EL1.
    pub pfr1: u64,
    /// ID_AA64MMFR0_EL1.
    pub mmfr0: u64,
    /// ID_AA64MMFR1_EL1.
    pub mmfr1: u64,
    /// ID_AA64MMFR2_EL1.
    pub mmfr2: u64,
    /// ID_AA64DFR0_EL1.
    pub dfr0: u64,
}

impl CpuIdentity {
    /// The feature registers (all but MIDR) whose values differ from `other`'s.
    pub fn feature_differences(&self, other: &Self) -> Vec<&'static str> {
        let pairs = [
            ("ID_AA64ISAR0_EL1", self.isar0, other.isar0),
            ("ID_AA64ISAR1_EL1", self.isar1, other.isar1),
            ("ID_AA64ISAR2_EL1", self.isar2, other.isar2),
            ("ID_AA64PFR0_EL1", self.pfr0, other.pfr0),
            ("ID_AA64PFR1_EL1", self.pfr1, other.pfr1),
            ("ID_AA64MMFR0_EL1", self.mmfr0, other.mmfr0),
            ("ID_AA64MMFR1_EL1", self.mmfr1, other.mmfr1),
            ("ID_AA64MMFR2_EL1", self.mmfr2, other.mmfr2),
            ("ID_AA64DFR0_EL1", self.dfr0, other.dfr0),
        ];
        pairs
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(name, _, _)| *name)
            .collect()
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
    /// The disk behind it (virtio-blk devices only).
    pub disk: Option<DiskIdentity>,
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
            (Some(disk), DeviceKind::VirtioBlock) => {
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
