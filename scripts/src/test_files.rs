//! Scratch directories for unit tests that need real files.

use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, removed when dropped.
/// Its name holds the process ID and a caller-given name, so tests running side by
/// side (and test binaries running at once) never share one.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/xtask-<name>-<pid>`, emptied first if a crashed run left it.
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Guest RAM base of [`snapshot_image`]'s machine (QEMU `virt`).
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM pages of [`snapshot_image`]'s machine.
pub const RAM_PAGES: u64 = 32;
/// The non-zero pages of [`snapshot_image`]'s RAM: 5 pages in 4 runs.
const USED_PAGES: [u64; 5] = [0, 1, 5, 9, 31];

/// A 300 KiB snapshot disk holding `count` (1 or 2) snapshots of a small machine, as
/// Aerie writes them: 2 vCPUs (one on), a PL011 and the test device, no GIC, 128 KiB
/// of RAM of which 5 pages are stored in 4 memory chunks; 9 chunks in all. The
/// snapshots are numbered 1, 2, in slots A, B.
pub fn snapshot_image(count: u8) -> aerie_hyp::snapshot::MemoryDisk {
    use aerie_devices::pl011::Pl011;
    use aerie_devices::testdev::TestDevice;
    use aerie_hyp::snapshot::machine::{
        CpuRecord, DeviceDescription, DeviceKind, DeviceState, FORMAT_NAME, GicKind, MemorySummary,
        Metadata, RamLayout, SavedClock, SavedDevice, SavedMachine, SavedVcpu, VcpuPower,
        add_metadata_chunk,
    };
    use aerie_hyp::snapshot::{MemoryDisk, PAGE_SIZE, SnapshotWriter};
    use aerie_hyp::vcpu::VcpuState;

    const UART: u64 = 0x0900_0000;
    const TESTDEV: u64 = 0x0a00_0000;
    let describe = |kind, base, intid| DeviceDescription {
        id: base,
        kind,
        base,
        size: 0x1000,
        intid,
        disk: None,
    };
    let mut disk = MemoryDisk::new(600);
    for seed in 1..=count {
        let mut boot = VcpuState::at_power_on(RAM_BASE + 0x20_0000, RAM_BASE + 0x1_0000);
        boot.registers.x[5] = u64::from(seed);
        let mut machine = SavedMachine {
            metadata: Metadata {
                format: FORMAT_NAME.into(),
                aerie_version: "0.1.0".into(),
                vcpus: 2,
                ram: RamLayout {
                    base: RAM_BASE,
                    size: RAM_PAGES * PAGE_SIZE as u64,
                },
                gic: GicKind::None,
                counter_frequency: 62_500_000,
                cpu: CpuRecord::new(0, &aerie_hyp::cpu_model::GuestCpu::default()),
                clock: SavedClock {
                    physical_count: 125_000_000,
                    virtual_count: 62_500_000,
                },
                devices: vec![
                    describe(DeviceKind::Pl011, UART, Some(33)),
                    describe(DeviceKind::TestDevice, TESTDEV, None),
                ],
                memory: MemorySummary {
                    pages: 0,
                    stored_pages: 0,
                    chunks: 0,
                },
                took_micros: 840_000,
                guest_command_line: "console=ttyAMA0 rdinit=/init".into(),
            },
            vcpus: vec![
                SavedVcpu {
                    power: VcpuPower::On,
                    state: boot,
                },
                SavedVcpu {
                    power: VcpuPower::Off,
                    state: VcpuState::default(),
                },
            ],
            devices: vec![
                SavedDevice {
                    id: UART,
                    state: DeviceState::Pl011(Pl011::new().save()),
                },
                SavedDevice {
                    id: TESTDEV,
                    state: DeviceState::TestDevice(TestDevice::new().save()),
                },
            ],
        };
        let pages: Vec<Vec<u8>> = (0..RAM_PAGES)
            .map(|n| {
                let fill = if USED_PAGES.contains(&n) {
                    seed.wrapping_add(n as u8) | 1
                } else {
                    0
                };
                vec![fill; PAGE_SIZE]
            })
            .collect();
        let mut writer = SnapshotWriter::begin(&mut disk).unwrap();
        machine.add_state_chunks(&mut writer).unwrap();
        let stats = writer
            .add_memory(RAM_BASE, pages.iter().map(Vec::as_slice))
            .unwrap();
        machine.metadata.memory = MemorySummary {
            pages: stats.pages,
            stored_pages: stats.stored,
            chunks: stats.chunks,
        };
        add_metadata_chunk(&mut writer, &machine.metadata).unwrap();
        writer.commit().unwrap();
    }
    disk
}
