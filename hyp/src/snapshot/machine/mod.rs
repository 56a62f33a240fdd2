//! What the chunks of a snapshot hold: the saved machine.
//!
//! The container ([`crate::snapshot`]) checks that every byte of a snapshot is intact;
//! this module checks that the bytes describe a machine Aerie can restore, before
//! anything touches the real VM. [`SavedMachine::from_snapshot`] decodes every state
//! chunk of a validated [`Snapshot`] and cross-checks them; the encoders write them.
//!
//! | chunk | id | payload |
//! |---|---|---|
//! | metadata | 0 | [`Metadata`] as JSON ([`encode_metadata`]) |
//! | vCPU | vCPU index | [`SavedVcpu`] ([`encode_vcpu`]) |
//! | device | guest physical base address (the vGIC's distributor) | [`DeviceState`] ([`encode_device`]) |
//!
//! vCPU and device payloads are a little-endian `u32` [`STATE_VERSION`] followed by
//! the state in postcard's encoding, with nothing after it. A newer state version is
//! refused, not guessed at. `docs/snapshot-format.md` describes the whole format.

mod codec;
mod device;
mod devices;
mod display;
mod error;
mod metadata;
#[cfg(test)]
mod tests;
mod vcpu;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

pub use device::{DeviceState, SavedDevice, decode_device, encode_device};
pub use error::{MachineError, MetadataProblem, StateProblem};
pub use metadata::{
    CpuRecord, DeviceDescription, DeviceKind, DiskIdentity, GicKind, MAX_DISK_SERIAL,
    MemorySummary, Metadata, RamLayout, SavedClock, decode_metadata, encode_metadata,
};
pub use vcpu::{SavedVcpu, VcpuPower, decode_vcpu, encode_vcpu};

use super::{ChunkKind, Disk, PAGE_SIZE, Snapshot, SnapshotError, SnapshotWriter};

/// The version of the vCPU and device state encoding this code writes and reads.
pub const STATE_VERSION: u32 = 3;
/// The `format` field of every snapshot's metadata.
pub const FORMAT_NAME: &str = "aerie-snapshot";
/// The metadata chunk's id.
pub const METADATA_ID: u64 = 0;

/// Everything a snapshot holds apart from guest RAM, decoded and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedMachine {
    /// The description.
    pub metadata: Metadata,
    /// Every vCPU, by index.
    pub vcpus: Vec<SavedVcpu>,
    /// Every device, in the metadata's order.
    pub devices: Vec<SavedDevice>,
}

impl SavedMachine {
    /// Decodes and cross-checks every state chunk of a validated snapshot: exactly one
    /// metadata chunk naming this format; one vCPU chunk per vCPU, each with a PSTATE
    /// Aerie may return to, at least one of them on; one device chunk per described
    /// device, of the described kind, and none other; stored memory inside the
    /// guest's RAM and matching the metadata's summary; device states that
    /// throwaway device models accept ([`check_devices`](Self::check_devices)).
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<Self, MachineError> {
        let metadata = read_metadata(snapshot)?;
        let vcpus = read_vcpus(snapshot, metadata.vcpus)?;
        let devices = read_devices(snapshot, &metadata)?;
        check_memory(snapshot, &metadata)?;
        let machine = Self {
            metadata,
            vcpus,
            devices,
        };
        machine.check_devices()?;
        Ok(machine)
    }

    /// The saved state of the device with id `id`.
    pub fn device(&self, id: u64) -> Option<&DeviceState> {
        self.devices.iter().find(|d| d.id == id).map(|d| &d.state)
    }

    /// Adds a chunk for every vCPU and every device to a snapshot being written. The
    /// metadata goes last, with [`add_metadata_chunk`], once the memory is written
    /// and its summary known.
    pub fn add_state_chunks<D: Disk>(
        &self,
        writer: &mut SnapshotWriter<'_, D>,
    ) -> Result<(), SnapshotError> {
        for (index, vcpu) in self.vcpus.iter().enumerate() {
            writer.add_chunk(ChunkKind::Vcpu, index as u64, &encode_vcpu(vcpu))?;
        }
        for device in &self.devices {
            writer.add_chunk(ChunkKind::Device, device.id, &encode_device(&device.state))?;
        }
        Ok(())
    }
}

/// Adds the metadata chunk to a snapshot being written.
pub fn add_metadata_chunk<D: Disk>(
    writer: &mut SnapshotWriter<'_, D>,
    metadata: &Metadata,
) -> Result<(), SnapshotError> {
    writer.add_chunk(ChunkKind::Metadata, METADATA_ID, &encode_metadata(metadata))
}

/// The state chunks of `kind`.
fn chunks_of(snapshot: &Snapshot, kind: ChunkKind) -> impl Iterator<Item = (u64, &[u8])> {
    snapshot
        .state_chunks()
        .filter(move |(chunk, _)| chunk.kind == kind)
        .map(|(chunk, payload)| (chunk.id, payload))
}

/// Decodes the one metadata chunk.
fn read_metadata(snapshot: &Snapshot) -> Result<Metadata, MachineError> {
    let mut chunks = chunks_of(snapshot, ChunkKind::Metadata);
    let (id, payload) = chunks.next().ok_or(MachineError::NoMetadata)?;
    if chunks.next().is_some() {
        return Err(MachineError::DuplicateMetadata);
    }
    if id != METADATA_ID {
        return Err(MachineError::MetadataId(id));
    }
    decode_metadata(payload)
}

/// Decodes one chunk per vCPU.
fn read_vcpus(snapshot: &Snapshot, count: u32) -> Result<Vec<SavedVcpu>, MachineError> {
    let mut vcpus: Vec<Option<SavedVcpu>> = Vec::new();
    vcpus.resize(count as usize, None);
    for (index, payload) in chunks_of(snapshot, ChunkKind::Vcpu) {
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| vcpus.get_mut(i))
            .ok_or(MachineError::UnexpectedVcpu {
                index,
                vcpus: count,
            })?;
        if slot.is_some() {
            return Err(MachineError::DuplicateVcpu(index));
        }
        let vcpu = decode_vcpu(payload).map_err(|problem| MachineError::Vcpu { index, problem })?;
        *slot = Some(vcpu);
    }
    let vcpus = vcpus
        .into_iter()
        .enumerate()
        .map(|(index, vcpu)| vcpu.ok_or(MachineError::MissingVcpu(index as u32)))
        .collect::<Result<Vec<_>, _>>()?;
    if vcpus.iter().all(|v| v.power == VcpuPower::Off) {
        return Err(MachineError::NoVcpuOn);
    }
    Ok(vcpus)
}

/// Decodes one chunk per described device, in the metadata's order.
fn read_devices(
    snapshot: &Snapshot,
    metadata: &Metadata,
) -> Result<Vec<SavedDevice>, MachineError> {
    let described: BTreeMap<u64, DeviceKind> =
        metadata.devices.iter().map(|d| (d.id, d.kind)).collect();
    let mut states: BTreeMap<u64, DeviceState> = BTreeMap::new();
    for (id, payload) in chunks_of(snapshot, ChunkKind::Device) {
        let &kind = described
            .get(&id)
            .ok_or(MachineError::UndescribedDevice(id))?;
        if states.contains_key(&id) {
            return Err(MachineError::DuplicateDevice(id));
        }
        let fail = |problem| MachineError::Device { id, problem };
        let state = decode_device(payload).map_err(fail)?;
        if state.kind() != kind {
            return Err(fail(StateProblem::WrongKind {
                described: kind,
                found: state.kind(),
            }));
        }
        states.insert(id, state);
    }
    metadata
        .devices
        .iter()
        .map(|d| {
            let state = states.remove(&d.id).ok_or(MachineError::MissingDevice {
                id: d.id,
                kind: d.kind,
            })?;
            Ok(SavedDevice { id: d.id, state })
        })
        .collect()
}

/// Checks that every stored memory range lies inside the guest's RAM and that the
/// metadata's memory summary matches the memory chunks.
fn check_memory(snapshot: &Snapshot, metadata: &Metadata) -> Result<(), MachineError> {
    let ram = metadata.ram;
    // Metadata::check made sure this does not overflow.
    let ram_end = ram.base + ram.size;
    let mut chunks = 0u64;
    for (address, length) in snapshot.memory_ranges() {
        // The reader made sure ranges do not wrap.
        if address < ram.base || address + length > ram_end {
            return Err(MachineError::MemoryOutsideRam { address, length });
        }
        chunks += 1;
    }
    let summary = metadata.memory;
    let page = PAGE_SIZE as u64;
    if summary.pages > ram.size / page {
        return Err(MachineError::MemorySummary(
            "more pages than the guest RAM has",
        ));
    }
    if summary.stored_pages > summary.pages {
        return Err(MachineError::MemorySummary(
            "more pages stored than looked at",
        ));
    }
    if summary.stored_pages.checked_mul(page) != Some(snapshot.stored_memory()) {
        return Err(MachineError::MemorySummary(
            "the stored page count does not match the memory chunks",
        ));
    }
    if u64::from(summary.chunks) != chunks {
        return Err(MachineError::MemorySummary(
            "the range count does not match the memory chunks",
        ));
    }
    Ok(())
}
