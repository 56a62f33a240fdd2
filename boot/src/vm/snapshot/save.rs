//! Taking a snapshot of the paused VM: every vCPU, every device, the guest's RAM
//! (zero pages skipped) and a readable description, written to the snapshot disk
//! in the slot that holds the older snapshot.

use super::super::Vm;
use super::pause::Paused;
use super::{DISK, SnapshotFailure, devices};
use crate::arch::cpu;
use crate::logger::uptime_micros;
use aerie_hyp::snapshot::machine::{
    self, CpuRecord, GicKind, MemorySummary, Metadata, RamLayout, SavedClock, SavedVcpu,
};
use aerie_hyp::snapshot::{ChunkKind, PAGE_SIZE, SnapshotError, SnapshotWriter};
use aerie_hyp::units::ByteSize;
use alloc::string::String;

/// Guests with at least this much RAM get progress lines while it is written.
const PROGRESS_FROM: u64 = 128 << 20;
/// A progress line per this much RAM written.
const PROGRESS_STEP: u64 = 64 << 20;

/// What was saved.
pub struct Saved {
    /// The snapshot's sequence number.
    pub sequence: u64,
    /// The slot it went to (0 = A).
    pub slot: u8,
    /// Bytes written to the slot.
    pub bytes: u64,
    /// Guest RAM bytes stored (zero pages are not).
    pub stored_memory: u64,
    /// How long it took.
    pub micros: u64,
}

/// Saves the paused VM to the snapshot disk and says how it went on the console;
/// whether it was saved.
pub fn take_and_report(vm: &Vm, paused: &Paused) -> bool {
    let result = take(vm, paused);
    match &result {
        Ok(saved) => println!(
            "Aerie: snapshot {} saved in slot {}: {} ({} of {} guest RAM stored, {} vCPU(s)) in {}.{:02} s",
            saved.sequence,
            if saved.slot == 0 { 'A' } else { 'B' },
            ByteSize(saved.bytes),
            ByteSize(saved.stored_memory),
            ByteSize(vm.ram.guest.size()),
            vm.vcpus,
            saved.micros / 1_000_000,
            saved.micros % 1_000_000 / 10_000,
        ),
        // Slots are written alternately and the header last: a failed save never
        // touches the slot that holds the disk's newest snapshot.
        Err(failure @ SnapshotFailure::Format(SnapshotError::Disk(_))) => println!(
            "Aerie: snapshot failed: {failure}; the disk's earlier snapshot, if it has one, \
             is untouched"
        ),
        Err(failure) => println!("Aerie: snapshot failed: {failure}"),
    }
    result.is_ok()
}

/// Saves the paused VM to the snapshot disk.
pub fn take(vm: &Vm, paused: &Paused) -> Result<Saved, SnapshotFailure> {
    let started = uptime_micros();
    let physical_count = cpu::counter();
    let clock = SavedClock {
        physical_count,
        virtual_count: physical_count.wrapping_sub(vm.control.cntvoff),
    };
    let mut slot = DISK.lock();
    let disk = slot.as_mut().ok_or(SnapshotFailure::NoDisk)?;
    let saved_devices = devices::save(vm).map_err(SnapshotFailure::Device)?;
    log::debug!("snapshot: devices saved at {} us", uptime_micros());
    let mut writer = SnapshotWriter::begin(disk)?;
    for (index, (power, state)) in paused.vcpus.iter().enumerate() {
        let vcpu = SavedVcpu {
            power: *power,
            state: *state,
        };
        writer.add_chunk(ChunkKind::Vcpu, index as u64, &machine::encode_vcpu(&vcpu))?;
    }
    for (description, state) in &saved_devices {
        writer.add_chunk(
            ChunkKind::Device,
            description.id,
            &machine::encode_device(state),
        )?;
    }
    let ram = vm.ram.bytes_while_paused(paused);
    let total = ram.len() as u64;
    let show_progress = total >= PROGRESS_FROM;
    let mut done = 0u64;
    let pages = ram.chunks(PAGE_SIZE).inspect(|_| {
        done += PAGE_SIZE as u64;
        if show_progress && done % PROGRESS_STEP == 0 && done < total {
            println!(
                "Aerie: snapshot: memory {} of {}",
                ByteSize(done),
                ByteSize(total)
            );
        }
    });
    let memory = writer.add_memory(vm.ram.guest.start(), pages)?;
    log::debug!("snapshot: memory written at {} us", uptime_micros());
    let metadata = Metadata {
        format: String::from(machine::FORMAT_NAME),
        aerie_version: String::from(env!("CARGO_PKG_VERSION")),
        vcpus: vm.vcpus as u32,
        ram: RamLayout {
            base: vm.ram.guest.start(),
            size: vm.ram.guest.size(),
        },
        gic: match saved_devices.first().map(|(d, _)| d.kind) {
            Some(machine::DeviceKind::VgicV3) => GicKind::V3,
            Some(machine::DeviceKind::VgicV2) => GicKind::V2,
            _ => GicKind::None,
        },
        counter_frequency: cpu::counter_frequency(),
        cpu: CpuRecord::new(cpu::midr(), &vm.cpu),
        clock,
        devices: saved_devices.iter().map(|(d, _)| d.clone()).collect(),
        memory: MemorySummary::from(memory),
        took_micros: uptime_micros() - started,
        guest_command_line: vm.command_line.clone(),
    };
    writer.add_chunk(ChunkKind::Metadata, 0, &machine::encode_metadata(&metadata))?;
    let slot_index = writer.slot();
    let bytes = writer.bytes_written();
    let sequence = writer.commit()?;
    Ok(Saved {
        sequence,
        slot: slot_index,
        bytes,
        stored_memory: memory.stored * PAGE_SIZE as u64,
        micros: uptime_micros() - started,
    })
}
