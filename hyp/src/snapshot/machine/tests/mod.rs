//! Host tests of the saved machine: round trips through a snapshot disk, every refusal,
//! and random payloads that must never panic.

mod garbage;
mod refusals;
mod round_trip;

use aerie_devices::pl011::Pl011;
use aerie_devices::testdev::TestDevice;
use aerie_devices::vgic::{VgicV3, VgicV3Config};
use aerie_devices::virtio::{
    Block, Console, EntropyError, EntropySource, MemoryDisk as GuestDisk, MmioTransport, Rng,
};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::snapshot::{MemoryDisk, read_slot, read_snapshot};
use crate::vcpu::{TIMER_CTL_ENABLE, VcpuState};

/// Guest RAM base (QEMU `virt`).
const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM pages.
const RAM_PAGES: u64 = 32;
/// Sectors of the snapshot disk.
const DISK_SECTORS: u64 = 600;
/// Device bases.
const GIC: u64 = 0x0800_0000;
const UART: u64 = 0x0900_0000;
const TESTDEV: u64 = 0x0a00_0000;
const BLOCK: u64 = 0x0a00_3e00;
const CONSOLE: u64 = 0x0a00_3c00;
const RNG: u64 = 0x0a00_3a00;

/// An entropy source for building test devices.
struct Zeros;

impl EntropySource for Zeros {
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize, EntropyError> {
        buffer.fill(0);
        Ok(buffer.len())
    }
}

/// A two-vCPU machine with one device of every kind but the vGICv2, in non-trivial
/// states. Its memory summary matches [`ram_pages`].
fn machine() -> SavedMachine {
    let mut boot = VcpuState::at_power_on(RAM_BASE + 0x20_0000, RAM_BASE + 0x800_0000);
    boot.registers.x[7] = 0x1234_5678_9abc_def0;
    boot.el1.ttbr1 = 0x4123_4000;
    boot.el1.cntv_cval = 987_654_321;
    boot.fp.v[31] = u128::MAX - 5;
    boot.fp.fpcr = 0x0300_0000;
    boot.physical_timer.ctl = TIMER_CTL_ENABLE;
    boot.physical_timer.cval = 55_555;
    boot.pmu.pmcr = 1;
    boot.pmu.counter_enable = 1 << 31 | 0b11;
    boot.pmu.cycle_count = u64::MAX - 100;
    boot.pmu.event_count[1] = 0xffff_fff0;
    boot.pmu.event_type[1] = 0x8;
    let vcpus = vec![
        SavedVcpu {
            power: VcpuPower::On,
            state: boot,
        },
        SavedVcpu {
            power: VcpuPower::Off,
            state: VcpuState::default(),
        },
    ];

    let mut gic = VgicV3::new(VgicV3Config::new(2)).unwrap().save();
    gic.group1_enabled = true;
    gic.vcpus[0].asleep = false;
    gic.vcpus[0].private[27].enabled = true;
    gic.vcpus[0].private[27].priority = 0xa0;
    gic.vcpus[1].private[3].pending_latch = true;
    gic.spis[1].irq.enabled = true;
    gic.spis[1].irq.line = true;
    gic.spis[1].route = 1;

    let mut uart = Pl011::new().save();
    uart.rx_fifo[0] = u16::from(b'a');
    uart.rx_len = 1;
    uart.imsc = 1 << 4;

    let mut testdev = TestDevice::new().save();
    testdev.scratch[63] = 0x5a;
    testdev.scratch[0] = 0xa5;
    testdev.write_count = 3;

    let block = MmioTransport::new(Block::new(GuestDisk::new(16))).save();
    let mut console = MmioTransport::new(Console::new()).save();
    console.device.input = b"ls\r".to_vec();
    let rng = MmioTransport::new(Rng::new(Zeros)).save();

    let mut block_description =
        DeviceDescription::at(DeviceKind::VirtioBlock, BLOCK, 0x200, Some(79));
    block_description.disk = Some(DiskIdentity {
        serial: String::from("guest-disk-0"),
        sectors: 16,
        crc32: 0xdead_beef,
    });
    let metadata = Metadata {
        format: String::from(FORMAT_NAME),
        aerie_version: String::from("0.1.0"),
        vcpus: 2,
        ram: RamLayout {
            base: RAM_BASE,
            size: RAM_PAGES * PAGE_SIZE as u64,
        },
        gic: GicKind::V3,
        counter_frequency: 62_500_000,
        cpu: CpuRecord::new(0, &crate::cpu_model::GuestCpu::default()),
        clock: SavedClock {
            physical_count: 9_000_000_000,
            virtual_count: 125_000_000,
        },
        devices: vec![
            DeviceDescription::at(DeviceKind::VgicV3, GIC, 0x1_0000, None),
            DeviceDescription::at(DeviceKind::Pl011, UART, 0x1000, Some(33)),
            DeviceDescription::at(DeviceKind::TestDevice, TESTDEV, 0x1000, None),
            block_description,
            DeviceDescription::at(DeviceKind::VirtioConsole, CONSOLE, 0x200, Some(78)),
            DeviceDescription::at(DeviceKind::VirtioRng, RNG, 0x200, Some(77)),
        ],
        memory: MemorySummary {
            pages: RAM_PAGES,
            stored_pages: 5,
            chunks: 3,
        },
        took_micros: 840_000,
        guest_command_line: String::from("console=ttyAMA0 rdinit=/init"),
    };
    let states = [
        DeviceState::VgicV3(gic),
        DeviceState::Pl011(uart),
        DeviceState::TestDevice(testdev),
        DeviceState::VirtioBlock(block),
        DeviceState::VirtioConsole(console),
        DeviceState::VirtioRng(rng),
    ];
    let devices = metadata
        .devices
        .iter()
        .zip(states)
        .map(|(d, state)| SavedDevice { id: d.id, state })
        .collect();
    SavedMachine {
        metadata,
        vcpus,
        devices,
    }
}

/// Guest RAM: [`RAM_PAGES`] pages, of which 5 in 3 runs are non-zero (pages 0, 2, 3,
/// 30 and 31).
fn ram_pages() -> Vec<Vec<u8>> {
    (0..RAM_PAGES as usize)
        .map(|i| {
            if matches!(i, 0 | 2 | 3 | 30 | 31) {
                (0..PAGE_SIZE).map(|j| (i * 7 + j) as u8 | 1).collect()
            } else {
                vec![0; PAGE_SIZE]
            }
        })
        .collect()
}

/// A state chunk to write.
type Chunk = (ChunkKind, u64, Vec<u8>);

/// The state chunks of `machine`, vCPUs and devices first, metadata last.
fn chunks(machine: &SavedMachine) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = machine
        .vcpus
        .iter()
        .enumerate()
        .map(|(i, v)| (ChunkKind::Vcpu, i as u64, encode_vcpu(v)))
        .collect();
    chunks.extend(
        machine
            .devices
            .iter()
            .map(|d| (ChunkKind::Device, d.id, encode_device(&d.state))),
    );
    chunks.push((
        ChunkKind::Metadata,
        METADATA_ID,
        encode_metadata(&machine.metadata),
    ));
    chunks
}

/// Writes `chunks` and `pages` (at `memory_base`) as the newest snapshot on `disk` and
/// reads it back.
fn write_to(
    disk: &mut MemoryDisk,
    chunks: &[Chunk],
    memory_base: u64,
    pages: &[Vec<u8>],
) -> Snapshot {
    let mut writer = SnapshotWriter::begin(disk).unwrap();
    for (kind, id, payload) in chunks {
        writer.add_chunk(*kind, *id, payload).unwrap();
    }
    writer
        .add_memory(memory_base, pages.iter().map(Vec::as_slice))
        .unwrap();
    let slot = writer.slot();
    writer.commit().unwrap();
    // The slot just written holds the newest snapshot (read_snapshot would also
    // re-check the other one).
    read_slot(disk, slot).unwrap()
}

/// Writes `chunks` and the standard RAM to a fresh disk and decodes the result.
fn decode(chunks: &[Chunk]) -> Result<SavedMachine, MachineError> {
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    let snapshot = write_to(&mut disk, chunks, RAM_BASE, &ram_pages());
    SavedMachine::from_snapshot(&snapshot)
}

/// Decodes the chunks of `machine`.
fn decode_machine(machine: &SavedMachine) -> Result<SavedMachine, MachineError> {
    decode(&chunks(machine))
}
