//! Resuming a saved guest at boot (`aerie.restore`): read and check the newest
//! snapshot, check that it fits this machine, load its RAM, build the VM around it,
//! put every device's state back and start each vCPU that was on where it stopped.
//!
//! Everything that can fail for a reason outside Aerie (a damaged or foreign
//! snapshot, too few CPUs or too little RAM, a guest disk that changed) fails
//! before the VM exists, so the caller can still boot the guest fresh.

use super::super::{self as vm, GuestConfig, GuestGic, GuestRam, Vm};
use super::firmware::{self, FlashSources};
use super::{DISK, SnapshotFailure, devices};
use crate::arch::{cache, cpu};
use crate::logger::uptime_micros;
use crate::smp;
use crate::virtio_probe::OpenDisk;
use aerie_hyp::guest_layout;
use aerie_hyp::memory::Range;
use aerie_hyp::platform::Platform;
use aerie_hyp::snapshot::machine::{
    DeviceDescription, DeviceKind, DiskIdentity, GicKind, SavedMachine, VcpuPower,
};
use aerie_hyp::snapshot::{Check, Snapshot, read_slot, read_snapshot_checking};
use aerie_hyp::units::ByteSize;
use aerie_hyp::vcpu::VcpuState;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// What the host offers the guest being restored.
pub struct Host<'a> {
    /// The platform.
    pub platform: &'a Platform<'a>,
    /// The host RAM set aside for the guest.
    pub ram: Range,
    /// The guest GIC the host can give.
    pub gic: Option<GuestGic>,
    /// The host UART's interrupt, for console input.
    pub host_uart_intid: Option<u32>,
    /// The host disks meant for the guest.
    pub disks: Vec<OpenDisk>,
    /// The guest bundle (a firmware guest's flash bank 0 is rebuilt from it).
    pub bundle: Option<Range>,
    /// The host disk behind a firmware guest's flash variable store, if any.
    pub flash_vars: Option<OpenDisk>,
    /// How guest RAM is mapped at stage 2.
    pub stage2_leaves: aerie_hyp::stage2::Leaves,
}

/// The host disks a failed restore gives back, to boot the guest fresh with.
pub struct Unused {
    /// The host disks meant for the guest.
    pub disks: Vec<OpenDisk>,
    /// The flash variable store's disk.
    pub flash_vars: Option<OpenDisk>,
}

/// A restored VM, ready to run: its vCPUs' states (`None` for those that were off).
pub struct Restored {
    /// The VM.
    pub vm: &'static Vm,
    /// Each vCPU's state; `None` when it was off.
    pub vcpus: Vec<Option<VcpuState>>,
}

/// Restores the newest snapshot. On `Err` the VM has not been created and guest RAM
/// is zeroed: the caller may boot the guest fresh, with the disks given back.
pub fn restore(host: Host<'_>) -> Result<Restored, (SnapshotFailure, Box<Unused>)> {
    let Host {
        platform,
        ram,
        gic,
        host_uart_intid,
        mut disks,
        bundle,
        flash_vars,
        stage2_leaves,
    } = host;
    let started = uptime_micros();
    let mut sources = FlashSources::new(bundle, flash_vars);
    let loaded = read_and_load(platform, ram, gic, &mut disks, &mut sources);
    let (snapshot, machine, guest_ram) = match loaded {
        Ok(loaded) => loaded,
        Err(failure) => {
            let flash_vars = sources.vars;
            return Err((failure, Box::new(Unused { disks, flash_vars })));
        }
    };
    let flash = match firmware::build(&machine.metadata.devices, sources) {
        Ok(flash) => flash,
        Err(failure) => {
            guest_ram.zero();
            let flash_vars = None;
            return Err((failure, Box::new(Unused { disks, flash_vars })));
        }
    };
    let metadata = &machine.metadata;
    let config = GuestConfig {
        vcpus: metadata.vcpus as usize,
        ram: guest_ram,
        test_device: metadata
            .devices
            .iter()
            .any(|d| d.kind == DeviceKind::TestDevice),
        rtc: metadata.devices.iter().any(|d| d.kind == DeviceKind::Pl031),
        gic,
        host_uart_intid,
        disks,
        pmu_intid: vm::pmu::host_interrupt(platform, gic.is_some()),
        // The flash banks, with their disk, are built above.
        flash_vars: None,
        stage2_leaves,
    };
    // From here on the VM exists: a failure is Aerie's own bug (the snapshot's
    // layout and states were checked above), and stops Aerie.
    let vm = match vm::create_restored(
        config,
        metadata.guest_command_line.clone(),
        metadata.clock.virtual_count,
        flash,
    ) {
        Ok(vm) => vm,
        Err(error) => crate::stop::refuse_guest(format_args!("restoring the VM: {error}")),
    };
    let layout = devices::layout(vm);
    if !same_layout(&layout, &metadata.devices) {
        crate::stop::refuse_guest(format_args!(
            "the restored VM's devices do not match the snapshot's"
        ));
    }
    if let Err(error) = devices::restore(vm, &machine.devices) {
        crate::stop::refuse_guest(format_args!("restoring {error}"));
    }
    if let Err(error) = vm::flash::follow_restored_modes(vm) {
        crate::stop::refuse_guest(format_args!("restoring the flash banks' mappings: {error}"));
    }
    let now = cpu::counter();
    let mut vcpus = Vec::new();
    {
        let mut psci = vm.psci.lock();
        for (index, saved) in machine.vcpus.iter().enumerate() {
            match saved.power {
                VcpuPower::On => {
                    let mut state = saved.state;
                    // The emulated physical timer counts in host time: move its
                    // deadline by as much as the host counter moved.
                    state.physical_timer.cval = state
                        .physical_timer
                        .cval
                        .wrapping_sub(metadata.clock.physical_count)
                        .wrapping_add(now);
                    psci.mark_on(index);
                    vcpus.push(Some(state));
                }
                VcpuPower::Off => {
                    psci.mark_off(index);
                    vcpus.push(None);
                }
            }
        }
    }
    let micros = uptime_micros() - started;
    println!(
        "Aerie: restored snapshot {} in {}.{:02} s; resuming the guest",
        snapshot.sequence,
        micros / 1_000_000,
        micros % 1_000_000 / 10_000
    );
    Ok(Restored { vm, vcpus })
}

/// Reads the newest snapshot, checks it against this machine and loads its RAM. Its
/// RAM is checked while it loads (read once, not twice); if it turns out damaged,
/// the other slot's older snapshot is tried, checked in full, as a read that
/// checked everything first would have chosen it.
fn read_and_load(
    platform: &Platform<'_>,
    host_ram: Range,
    gic: Option<GuestGic>,
    disks: &mut [OpenDisk],
    flash: &mut FlashSources,
) -> Result<(Snapshot, SavedMachine, GuestRam), SnapshotFailure> {
    let (snapshot, machine, ram) = read_and_check(platform, host_ram, gic, disks, flash, None)?;
    let Err(failure) = load_memory(&snapshot, &ram) else {
        return Ok((snapshot, machine, ram));
    };
    let other = 1 - snapshot.slot;
    println!(
        "Aerie: snapshot {} cannot be restored ({failure}); trying the older one",
        snapshot.sequence
    );
    let older = read_and_check(platform, host_ram, gic, disks, flash, Some(other));
    let (snapshot, machine, ram) = older.map_err(|_| failure)?;
    load_memory(&snapshot, &ram)?;
    Ok((snapshot, machine, ram))
}

/// Reads the newest snapshot (`slot` `None`; its RAM is checked later, as it loads)
/// or the one in `slot` (checked in full), and checks it against this machine.
fn read_and_check(
    platform: &Platform<'_>,
    host_ram: Range,
    gic: Option<GuestGic>,
    disks: &mut [OpenDisk],
    flash: &mut FlashSources,
    slot: Option<u8>,
) -> Result<(Snapshot, SavedMachine, GuestRam), SnapshotFailure> {
    let disk_guard = DISK.lock();
    let disk = disk_guard.as_ref().ok_or(SnapshotFailure::NoDisk)?;
    let snapshot = match slot {
        None => read_snapshot_checking(disk, Check::AllButMemory)?,
        Some(slot) => read_slot(disk, slot)?,
    };
    log::debug!(
        "restore: snapshot read and checked at {} us",
        uptime_micros()
    );
    let machine = SavedMachine::from_snapshot(&snapshot)
        .map_err(|e| SnapshotFailure::Mismatch(format!("{e}")))?;
    drop(disk_guard);
    log::debug!(
        "restore: state chunks decoded and checked at {} us",
        uptime_micros()
    );
    let metadata = &machine.metadata;
    println!(
        "Aerie: restoring snapshot {} (slot {}, {} vCPU(s), {} RAM, {} stored)",
        snapshot.sequence,
        if snapshot.slot == 0 { 'A' } else { 'B' },
        metadata.vcpus,
        ByteSize(metadata.ram.size),
        ByteSize(snapshot.stored_memory())
    );
    let mismatch = |message: String| Err(SnapshotFailure::Mismatch(message));
    let vcpus = metadata.vcpus as usize;
    if let Err(available) = smp::assign_vcpus(platform, vcpus) {
        return mismatch(format!(
            "the snapshot has {vcpus} vCPUs but only {available} CPUs are online \
             (Aerie runs one vCPU per CPU; give the machine more CPUs)"
        ));
    }
    if metadata.ram.base != guest_layout::RAM_BASE {
        return mismatch(format!(
            "the snapshot's guest RAM starts at {:#x}, not at {:#x} as Aerie's guests do",
            metadata.ram.base,
            guest_layout::RAM_BASE
        ));
    }
    if metadata.ram.size > host_ram.size() {
        return mismatch(format!(
            "the snapshot needs {} of guest RAM, but this machine can give the guest \
             only {} (give the machine more memory)",
            ByteSize(metadata.ram.size),
            ByteSize(host_ram.size())
        ));
    }
    let host_gic = match gic {
        Some(GuestGic::V3) => GicKind::V3,
        Some(GuestGic::V2 { .. }) => GicKind::V2,
        None => GicKind::None,
    };
    if metadata.gic != host_gic {
        return mismatch(format!(
            "the snapshot's guest has a {} interrupt controller, but this machine gives \
             guests a {}",
            gic_name(metadata.gic),
            gic_name(host_gic)
        ));
    }
    // The metadata check made sure the record is complete.
    let recorded = metadata.cpu.guest_cpu().unwrap_or_default();
    let pmu = vm::pmu::host_interrupt(platform, gic.is_some()).is_some();
    let here = cpu::guest_cpu(metadata.gic == GicKind::V3, pmu);
    let differing = recorded.differences(&here);
    if !differing.is_empty() {
        return mismatch(format!(
            "this CPU cannot give the guest the CPU it had (snapshot taken on MIDR {:#x}, \
             this CPU is {:#x}; the guest saw {}): the guest may use any feature it was \
             shown (restore on the same CPU model: with QEMU, the same -cpu)",
            metadata.cpu.midr,
            cpu::midr(),
            differing.join(", ")
        ));
    }
    // PMCR_EL0.N is no ID register: a guest that used six event counters must not
    // come back to a CPU with four.
    if let Some((_, counters)) = crate::arch::pmu::host_pmu().filter(|_| pmu) {
        let saved = machine.vcpus.iter().map(|v| v.state.pmu.counters());
        if let Some(other) = saved.filter(|&n| n != 0).find(|&n| n != counters) {
            return mismatch(format!(
                "the snapshot's guest had {other} PMU event counters, this CPU has                  {counters} (restore on the same CPU model: with QEMU, the same -cpu)"
            ));
        }
    }
    if metadata.counter_frequency != cpu::counter_frequency() {
        return mismatch(format!(
            "the snapshot's counter ran at {} Hz, this machine's at {} Hz: the guest's \
             clock would run at the wrong speed",
            metadata.counter_frequency,
            cpu::counter_frequency()
        ));
    }
    let has_rng = metadata
        .devices
        .iter()
        .any(|d| d.kind == DeviceKind::VirtioRng);
    if has_rng != vm::virtio::RndrSource::available() {
        return mismatch(String::from(if has_rng {
            "the snapshot's guest has a virtio-rng device, but this machine has no \
             entropy source for it (no RNDR instruction, no host virtio-rng)"
        } else {
            "the snapshot's guest has no virtio-rng device, but this machine would give \
             it one (the snapshot was taken on a machine without an entropy source)"
        }));
    }
    check_disks(&metadata.devices, disks)?;
    firmware::check(&metadata.devices, flash)?;
    let guest = Range::from_start_size(metadata.ram.base, metadata.ram.size).ok_or(
        SnapshotFailure::Mismatch(String::from("the snapshot's guest RAM wraps")),
    )?;
    let ram = GuestRam {
        guest,
        host_base: host_ram.start(),
    };
    Ok((snapshot, machine, ram))
}

/// Which interrupt controller a [`GicKind`] is, in words.
fn gic_name(kind: GicKind) -> &'static str {
    match kind {
        GicKind::V3 => "GICv3",
        GicKind::V2 => "GICv2",
        GicKind::None => "no",
    }
}

/// Checks that the guest's disks are the ones the snapshot was taken with, unchanged.
fn check_disks(
    described: &[DeviceDescription],
    disks: &mut [OpenDisk],
) -> Result<(), SnapshotFailure> {
    let saved: Vec<&DiskIdentity> = described
        .iter()
        .filter(|d| d.kind == DeviceKind::VirtioBlock)
        .filter_map(|d| d.disk.as_ref())
        .collect();
    if saved.len() != disks.len() {
        return Err(SnapshotFailure::Mismatch(format!(
            "the snapshot's guest has {} disk(s), but {} guest disk(s) are attached \
             (attach the same --disk files as when the snapshot was taken)",
            saved.len(),
            disks.len()
        )));
    }
    for (identity, open) in saved.iter().zip(disks.iter_mut()) {
        let serial = String::from(open.serial_text());
        if serial != identity.serial {
            return Err(SnapshotFailure::Mismatch(format!(
                "guest disk {serial} is attached where the snapshot had {}",
                identity.serial
            )));
        }
        let current = fingerprint(open)?;
        if current.sectors != identity.sectors || current.crc32 != identity.crc32 {
            return Err(SnapshotFailure::Mismatch(format!(
                "guest disk {serial} changed since the snapshot was taken (now {} sectors, \
                 CRC-32 {:08x}; then {} sectors, CRC-32 {:08x}): restoring would give the \
                 guest a disk that does not match its memory",
                current.sectors, current.crc32, identity.sectors, identity.crc32
            )));
        }
    }
    Ok(())
}

/// The identity of a host disk meant for the guest.
fn fingerprint(open: &mut OpenDisk) -> Result<DiskIdentity, SnapshotFailure> {
    let serial = String::from(open.serial_text());
    let disk = &mut open.disk;
    devices::disk_identity(serial, disk.capacity_sectors(), |sector, bytes| {
        disk.read(sector, bytes).map_err(|e| format!("{e}"))
    })
    .map_err(SnapshotFailure::Mismatch)
}

/// Zeroes guest RAM and loads the snapshot's pages into it; on failure zeroes it
/// again, so no half-restored memory is ever run.
fn load_memory(snapshot: &Snapshot, ram: &GuestRam) -> Result<(), SnapshotFailure> {
    log::debug!("restore: host checks done at {} us", uptime_micros());
    // Stored pages are overwritten below; only the gaps between them need zeroing.
    let mut ranges: Vec<(u64, u64)> = snapshot.memory_ranges().collect();
    ranges.sort_unstable();
    let mut next = ram.guest.start();
    for (start, length) in ranges {
        ram.zero_range(next, start.saturating_sub(next));
        next = next.max(start.saturating_add(length));
    }
    ram.zero_range(next, ram.guest.end().saturating_sub(next));
    log::debug!("restore: guest RAM gaps zeroed at {} us", uptime_micros());
    let slot = DISK.lock();
    let disk = slot.as_ref().ok_or(SnapshotFailure::NoDisk)?;
    let mut outside = false;
    let result = snapshot.read_memory(disk, |address, page| {
        outside |= ram.write(address, page).is_none();
    });
    log::debug!("restore: guest RAM loaded at {} us", uptime_micros());
    if let Err(error) = result {
        ram.zero();
        return Err(error.into());
    }
    if outside {
        ram.zero();
        return Err(SnapshotFailure::Mismatch(String::from(
            "a stored page lies outside the guest's RAM",
        )));
    }
    cache::invalidate_instruction_caches();
    Ok(())
}

/// Whether two device lists describe the same devices at the same places (disk
/// identities aside).
fn same_layout(a: &[DeviceDescription], b: &[DeviceDescription]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.id == y.id
                && x.kind == y.kind
                && x.base == y.base
                && x.size == y.size
                && x.intid == y.intid
        })
}

/// Runs the restored guest: every vCPU that was on starts where it stopped, vCPU 0
/// on this CPU, the others on theirs.
pub fn run(platform: &Platform<'_>, restored: Restored) -> ! {
    let Restored { vm, vcpus } = restored;
    for (index, state) in vcpus.iter().enumerate().skip(1) {
        if let Some(state) = state {
            let state = *state;
            if !smp::run_on_host_of(index, move || {
                vm::run_vcpu(vm, index, state);
            }) {
                crate::stop::refuse_guest(format_args!("no CPU hosts vCPU {index}"));
            }
        }
    }
    if let Some(Some(state)) = vcpus.first() {
        vm::run_vcpu(vm, 0, *state);
    }
    smp::park(smp::current_index(platform))
}
