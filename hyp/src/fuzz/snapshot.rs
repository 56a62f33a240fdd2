//! Fuzz target of the snapshot reader: damaged snapshot disks through the checks,
//! decoding and cross-checks a restore runs before it touches the VM, and the
//! stream of guest pages that follows.

use crate::snapshot::machine::{
    CpuRecord, DeviceDescription, DeviceKind, DeviceState, DiskIdentity, FORMAT_NAME, GicKind,
    MemorySummary, Metadata, RamLayout, SavedClock, SavedDevice, SavedMachine, SavedVcpu,
    VcpuPower, add_metadata_chunk,
};
use crate::snapshot::{
    Check, MemoryDisk, PAGE_SIZE, SECTOR_SIZE, Snapshot, SnapshotWriter, crc32, format,
    read_snapshot, read_snapshot_checking,
};
use crate::vcpu::VcpuState;
use aerie_devices::fuzz::Input;
use aerie_devices::pl011::Pl011;
use aerie_devices::testdev::TestDevice;
use aerie_devices::vgic::{VgicV2, VgicV2Config, VgicV3, VgicV3Config};
use aerie_devices::virtio::{
    Block, Console, EntropyError, EntropySource, MemoryDisk as GuestDisk, MmioTransport, Rng,
};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// Guest RAM of the reference machine: QEMU `virt`'s base, 16 pages.
const RAM_BASE: u64 = 0x4000_0000;
/// Pages of guest RAM.
const RAM_PAGES: u64 = 16;
/// Sectors of the reference disk: two slots with room to spare.
const DISK_SECTORS: u64 = 400;
/// The most edits one input makes.
const MAX_EDITS: u32 = 8;

/// Byte offsets in the metadata sectors (`crate::snapshot`'s format tables).
mod offset {
    /// `slot_sectors` in the superblock.
    pub const SLOT_SECTORS: usize = 16;
    /// The chunk count in a slot header.
    pub const CHUNK_COUNT: usize = 40;
    /// The payload length in a chunk header.
    pub const PAYLOAD_LENGTH: usize = 16;
    /// The payload's CRC in a chunk header.
    pub const PAYLOAD_CRC: usize = 32;
    /// Every metadata sector's own CRC.
    pub const SECTOR_CRC: usize = 508;
}

/// A guest page: every fifth one holds a pattern, the others are zero.
fn page(index: u64, generation: u8) -> Vec<u8> {
    if index % 5 == 0 {
        (0..PAGE_SIZE)
            .map(|i| (i as u8).wrapping_mul(7) ^ generation ^ index as u8 | 1)
            .collect()
    } else {
        vec![0; PAGE_SIZE]
    }
}

/// An entropy source for the reference machine's virtio-rng.
struct Zeros;

impl EntropySource for Zeros {
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize, EntropyError> {
        buffer.fill(0);
        Ok(buffer.len())
    }
}

/// The reference machine's vGIC: enabled, with an interrupt enabled, one pending,
/// one routed elsewhere (GICv3) or targeted (GICv2).
fn gic(gic_v2: bool) -> DeviceState {
    if gic_v2 {
        let mut state = VgicV2::new(VgicV2Config::new(1))
            .expect("a valid configuration")
            .save();
        state.group0_enabled = true;
        state.vcpus[0].private[27].enabled = true;
        state.vcpus[0].private[27].priority = 0xa0;
        state.spis[1].irq.enabled = true;
        state.spis[1].irq.pending_latch = true;
        DeviceState::VgicV2(state)
    } else {
        let mut state = VgicV3::new(VgicV3Config::new(2))
            .expect("a valid configuration")
            .save();
        state.group1_enabled = true;
        state.vcpus[0].asleep = false;
        state.vcpus[0].private[27].enabled = true;
        state.vcpus[1].private[3].pending_latch = true;
        state.spis[1].irq.enabled = true;
        state.spis[1].irq.line = true;
        state.spis[1].route = 1;
        DeviceState::VgicV3(state)
    }
}

/// The machine of the reference snapshots: one or two vCPUs, a vGIC (v2 or v3) and
/// one device of every other kind, some in states other than their reset state.
fn machine(gic_v2: bool) -> SavedMachine {
    let vcpus: u32 = if gic_v2 { 1 } else { 2 };
    let (gic_kind, gic_device) = if gic_v2 {
        (GicKind::V2, DeviceKind::VgicV2)
    } else {
        (GicKind::V3, DeviceKind::VgicV3)
    };
    let mut block = DeviceDescription::at(DeviceKind::VirtioBlock, 0x0a00_3e00, 0x200, Some(79));
    block.disk = Some(DiskIdentity {
        serial: String::from("guest-disk-0"),
        sectors: 16,
        crc32: 0x1234_5678,
    });
    let descriptions = vec![
        DeviceDescription::at(gic_device, 0x0800_0000, 0x1_0000, None),
        DeviceDescription::at(DeviceKind::Pl011, 0x0900_0000, 0x1000, Some(33)),
        DeviceDescription::at(DeviceKind::TestDevice, 0x0a00_0000, 0x1000, None),
        block,
        DeviceDescription::at(DeviceKind::VirtioConsole, 0x0a00_3c00, 0x200, Some(78)),
        DeviceDescription::at(DeviceKind::VirtioRng, 0x0a00_3a00, 0x200, Some(77)),
    ];
    let mut uart = Pl011::new().save();
    uart.rx_fifo[0] = u16::from(b'a');
    uart.rx_len = 1;
    let mut console = MmioTransport::new(Console::new()).save();
    console.device.input = b"ls\r".to_vec();
    let states = [
        gic(gic_v2),
        DeviceState::Pl011(uart),
        DeviceState::TestDevice(TestDevice::new().save()),
        DeviceState::VirtioBlock(MmioTransport::new(Block::new(GuestDisk::new(16))).save()),
        DeviceState::VirtioConsole(console),
        DeviceState::VirtioRng(MmioTransport::new(Rng::new(Zeros)).save()),
    ];
    let devices = descriptions
        .iter()
        .zip(states)
        .map(|(d, state)| SavedDevice { id: d.id, state })
        .collect();
    let mut boot = VcpuState::at_power_on(RAM_BASE + 0x20_0000, RAM_BASE + 0x80_0000);
    boot.registers.x[3] = 0x1234_5678;
    let vcpus_saved = (0..vcpus)
        .map(|i| SavedVcpu {
            power: if i == 0 {
                VcpuPower::On
            } else {
                VcpuPower::Off
            },
            state: if i == 0 { boot } else { VcpuState::default() },
        })
        .collect();
    SavedMachine {
        metadata: Metadata {
            format: String::from(FORMAT_NAME),
            aerie_version: String::from("0.1.0"),
            vcpus,
            ram: RamLayout {
                base: RAM_BASE,
                size: RAM_PAGES * PAGE_SIZE as u64,
            },
            gic: gic_kind,
            counter_frequency: 62_500_000,
            cpu: CpuRecord::new(0, &crate::cpu_model::GuestCpu::default()),
            clock: SavedClock {
                physical_count: 5_000_000,
                virtual_count: 1_000_000,
            },
            devices: descriptions,
            memory: MemorySummary {
                pages: 0,
                stored_pages: 0,
                chunks: 0,
            },
            took_micros: 1000,
            guest_command_line: String::from("console=ttyAMA0"),
        },
        vcpus: vcpus_saved,
        devices,
    }
}

/// A formatted disk holding two snapshots of the reference machine (sequence 1 in
/// slot A, 2 in slot B, with different RAM), written as Aerie writes them.
pub fn reference_disk(gic_v2: bool) -> MemoryDisk {
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    format(&mut disk).expect("the disk is large enough");
    let mut machine = machine(gic_v2);
    for generation in 1..=2u8 {
        let mut writer = SnapshotWriter::begin(&mut disk).expect("a formatted disk");
        machine
            .add_state_chunks(&mut writer)
            .expect("the slot is large enough");
        let pages: Vec<Vec<u8>> = (0..RAM_PAGES).map(|i| page(i, generation)).collect();
        let stats = writer
            .add_memory(RAM_BASE, pages.iter().map(Vec::as_slice))
            .expect("the slot is large enough");
        machine.metadata.memory = MemorySummary::from(stats);
        add_metadata_chunk(&mut writer, &machine.metadata).expect("the slot is large enough");
        writer.commit().expect("the disk accepts writes");
    }
    disk
}

/// The `u32` at `at` in `image`, if it is there.
fn get_u32(image: &[u8], at: usize) -> Option<u32> {
    let bytes = image.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// The `u64` at `at` in `image`, if it is there.
fn get_u64(image: &[u8], at: usize) -> Option<u64> {
    let bytes = image.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Writes `value` at `at` in `image`, if there is room.
fn put(image: &mut [u8], at: usize, value: &[u8]) {
    if let Some(place) = at
        .checked_add(value.len())
        .and_then(|end| image.get_mut(at..end))
    {
        place.copy_from_slice(value);
    }
}

/// Recomputes the CRC at the end of metadata sector `sector`.
fn seal_sector(image: &mut [u8], sector: u64) {
    let Some(start) = usize::try_from(sector)
        .ok()
        .and_then(|s| s.checked_mul(SECTOR_SIZE))
    else {
        return;
    };
    if let Some(bytes) = image.get(start..start + offset::SECTOR_CRC) {
        let crc = crc32(bytes);
        put(image, start + offset::SECTOR_CRC, &crc.to_le_bytes());
    }
}

/// Makes every checksum of `image` match its bytes again, walking the layout the
/// (possibly damaged) superblock and slot headers describe: what an attacker who
/// knows the format, or a bug that wrote wrong values, would leave. Damage then
/// reaches the decoders behind the checksums.
fn reseal(image: &mut [u8]) {
    let sector = SECTOR_SIZE as u64;
    let sectors = image.len() as u64 / sector;
    let slot_sectors = get_u64(image, offset::SLOT_SECTORS).unwrap_or(0);
    seal_sector(image, 0);
    for slot in 0..2u64 {
        let header = (1 + slot) * sector;
        let count = get_u32(image, (header as usize) + offset::CHUNK_COUNT).unwrap_or(0);
        let mut at = slot_sectors
            .checked_mul(slot)
            .and_then(|s| s.checked_add(8));
        for _ in 0..count.min(256) {
            let Some(chunk) = at.filter(|&s| s < sectors) else {
                break;
            };
            let base = (chunk * sector) as usize;
            let length = get_u64(image, base + offset::PAYLOAD_LENGTH).unwrap_or(0);
            let payload = usize::try_from(length).ok().and_then(|len| {
                image.get(base + SECTOR_SIZE..(base + SECTOR_SIZE).checked_add(len)?)
            });
            if let Some(payload) = payload {
                let crc = crc32(payload);
                put(image, base + offset::PAYLOAD_CRC, &crc.to_le_bytes());
            }
            seal_sector(image, chunk);
            at = length
                .checked_add(sector - 1)
                .map(|l| l / sector)
                .and_then(|payload_sectors| chunk.checked_add(1 + payload_sectors));
        }
        seal_sector(image, 1 + slot);
    }
}

/// Where edits land: the superblock, slot headers and the start of slot A; slot
/// A's state chunks; slot B's (the newest snapshot's); anywhere.
const EDIT_AREAS: [(usize, usize); 3] = [
    (0, 0x1000),
    (8 * SECTOR_SIZE, 0x6000),
    ((8 + SLOT_SECTORS) * SECTOR_SIZE, 0x6000),
];
/// Sectors per slot on the reference disk.
const SLOT_SECTORS: usize = (DISK_SECTORS as usize - 8) / 2;

/// Applies the edits the input describes to `image`: a count (1 to 8), then each
/// edit's area, offset, kind and values.
fn edit(input: &mut Input, image: &mut Vec<u8>) {
    let count = 1 + input.choose(MAX_EDITS);
    for _ in 0..count {
        let len = image.len();
        if len == 0 {
            return;
        }
        let at = match EDIT_AREAS.get(input.choose(4) as usize) {
            Some(&(start, size)) => start + usize::from(input.u16()) % size,
            None => input.u32() as usize,
        } % len;
        match input.choose(8) {
            0 => image[at] = input.u8(),
            1 => image[at] ^= 1 << (input.u8() % 8),
            2 => {
                let value = match input.choose(4) {
                    0 => 0,
                    1 => u32::MAX,
                    2 => 1 << (input.u8() % 32),
                    _ => input.u32(),
                };
                put(image, at & !3, &value.to_le_bytes());
            }
            3 => put(image, at & !7, &input.u64().to_le_bytes()),
            4 => {
                let end = at.saturating_add(usize::from(input.u16() % 4096)).min(len);
                image[at..end].fill(0);
            }
            5 => {
                // One sector over another: a slot header or chunk where another was.
                let sectors = len / SECTOR_SIZE;
                if sectors > 0 {
                    let from = input.u16() as usize % sectors * SECTOR_SIZE;
                    let to = (at / SECTOR_SIZE).min(sectors - 1) * SECTOR_SIZE;
                    image.copy_within(from..from + SECTOR_SIZE, to);
                }
            }
            6 => image.truncate(at),
            _ => {
                // A length, count or sequence number nudged by a little.
                let at = at & !7;
                if let Some(value) = get_u64(image, at) {
                    let delta = u64::from(input.u8() % 16) + 1;
                    let value = if input.bool() {
                        value.wrapping_add(delta)
                    } else {
                        value.wrapping_sub(delta)
                    };
                    put(image, at, &value.to_le_bytes());
                }
            }
        }
    }
}

/// Runs the restore's checks on `snapshot` and, if the machine is accepted, streams
/// its guest pages, each of which must lie inside the machine's RAM.
fn restore(snapshot: &Snapshot, disk: &MemoryDisk, memory_verified: bool) {
    let machine = match SavedMachine::from_snapshot(snapshot) {
        Ok(machine) => machine,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    assert!(!machine.metadata.to_string().is_empty());
    let ram = machine.metadata.ram;
    let ram_end = ram.base.checked_add(ram.size).expect("RAM does not wrap");
    let mut pages = 0u64;
    let streamed = snapshot.read_memory(disk, |address, bytes| {
        assert_eq!(bytes.len(), PAGE_SIZE);
        assert!(
            address >= ram.base
                && address
                    .checked_add(PAGE_SIZE as u64)
                    .is_some_and(|end| end <= ram_end),
            "page {address:#x} outside RAM {:#x}..{ram_end:#x}",
            ram.base
        );
        pages += 1;
    });
    if memory_verified {
        streamed.expect("memory checked by read_snapshot streams back");
        assert_eq!(pages, machine.metadata.memory.stored_pages);
    }
}

/// Reads a damaged snapshot disk the way a restore and `cargo xtask snapshot verify`
/// do. The first byte chooses: bit 0 clear, the rest of the input is a list of
/// edits (bytes, bits, words, zeroed ranges, sectors copied over others, truncation,
/// nudged lengths) to a disk holding two valid snapshots (bit 2: of a GICv2 machine
/// rather than a GICv3 one); bit 0 set, the rest is the disk image itself. With bit
/// 1 set, every checksum is then recomputed, so the damage reaches the decoders
/// behind them.
///
/// Checks that nothing panics and every error describes itself; that a snapshot
/// [`read_snapshot`] accepts (every byte checked) is also found by the lighter
/// check a restore uses, which never picks an older one; and that for every machine
/// [`SavedMachine::from_snapshot`] accepts, every guest page streamed back lies
/// inside the guest's RAM (and, when every byte was checked, they all come back).
pub fn snapshot_disk(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let mut image = if mode & 1 == 0 {
        let mut image = reference_disk(mode & 4 != 0).image().to_vec();
        edit(&mut input, &mut image);
        image
    } else {
        input.rest().to_vec()
    };
    if mode & 2 != 0 {
        reseal(&mut image);
    }
    let disk = MemoryDisk::from_image(image);
    let full = read_snapshot(&disk);
    let light = read_snapshot_checking(&disk, Check::AllButMemory);
    for error in [&full, &light].into_iter().filter_map(|r| r.as_ref().err()) {
        assert!(!error.to_string().is_empty());
    }
    if let Ok(snapshot) = &full {
        let found = light
            .as_ref()
            .expect("the lighter check finds a valid snapshot");
        assert!(found.sequence >= snapshot.sequence);
        restore(snapshot, &disk, true);
    }
    if let Ok(snapshot) = &light {
        restore(snapshot, &disk, false);
    }
}
