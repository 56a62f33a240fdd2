//! Whole machines through a snapshot disk and back.

use alloc::string::ToString;

use super::*;
use crate::cpu_model::{self, GuestCpu};
use crate::snapshot::MemoryStats;

#[test]
fn full_machine_round_trip_through_a_disk() {
    let original = machine();
    let pages = ram_pages();
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    let mut writer = SnapshotWriter::begin(&mut disk).unwrap();
    original.add_state_chunks(&mut writer).unwrap();
    let stats = writer
        .add_memory(RAM_BASE, pages.iter().map(Vec::as_slice))
        .unwrap();
    assert_eq!(
        stats,
        MemoryStats {
            pages: RAM_PAGES,
            stored: 5,
            chunks: 3
        }
    );
    assert_eq!(MemorySummary::from(stats), original.metadata.memory);
    add_metadata_chunk(&mut writer, &original.metadata).unwrap();
    writer.commit().unwrap();

    let snapshot = read_snapshot(&disk).unwrap();
    let restored = SavedMachine::from_snapshot(&snapshot).unwrap();
    assert_eq!(restored, original);
    assert_eq!(
        restored.device(UART).map(DeviceState::kind),
        Some(DeviceKind::Pl011)
    );
    assert_eq!(restored.device(0x1234), None);

    let mut ram = vec![vec![0u8; PAGE_SIZE]; RAM_PAGES as usize];
    snapshot
        .read_memory(&disk, |address, page| {
            ram[((address - RAM_BASE) / PAGE_SIZE as u64) as usize].copy_from_slice(page);
        })
        .unwrap();
    assert_eq!(ram, pages);
}

#[test]
fn every_device_state_round_trips_through_its_encoding() {
    for device in machine().devices {
        let bytes = encode_device(&device.state);
        assert_eq!(&bytes[..4], &STATE_VERSION.to_le_bytes());
        assert_eq!(decode_device(&bytes), Ok(device.state));
    }
}

#[test]
fn device_chunks_start_with_their_kind() {
    // The variant index is part of the format (docs/snapshot-format.md).
    for (device, tag) in machine().devices.iter().zip([0u8, 2, 3, 4, 5, 6]) {
        assert_eq!(
            encode_device(&device.state)[4],
            tag,
            "{:?}",
            device.state.kind()
        );
    }
    let v2 = aerie_devices::vgic::VgicV2::new(aerie_devices::vgic::VgicV2Config::new(1))
        .unwrap()
        .save();
    assert_eq!(encode_device(&DeviceState::VgicV2(v2))[4], 1);
}

#[test]
fn a_gicv2_machine_round_trips() {
    let mut original = machine();
    let v2 = aerie_devices::vgic::VgicV2::new(aerie_devices::vgic::VgicV2Config::new(2))
        .unwrap()
        .save();
    original.metadata.gic = GicKind::V2;
    original.metadata.devices[0].kind = DeviceKind::VgicV2;
    original.devices[0].state = DeviceState::VgicV2(v2);
    assert_eq!(decode_machine(&original), Ok(original));
}

#[test]
fn vcpu_encoding_round_trips() {
    for vcpu in machine().vcpus {
        assert_eq!(decode_vcpu(&encode_vcpu(&vcpu)), Ok(vcpu));
    }
}

#[test]
fn metadata_is_readable_json() {
    let metadata = machine().metadata;
    let json = encode_metadata(&metadata);
    let text = core::str::from_utf8(&json).unwrap();
    assert!(text.contains("\"format\": \"aerie-snapshot\""), "{text}");
    assert!(text.contains("\"gic\": \"gicv3\""), "{text}");
    assert!(text.contains("\"kind\": \"virtio-block\""), "{text}");
    assert!(text.contains("\"kind\": \"vgic-v3\""), "{text}");
    assert!(text.contains("\"serial\": \"guest-disk-0\""), "{text}");
    assert_eq!(decode_metadata(&json), Ok(metadata));
}

#[test]
fn metadata_summary_is_readable() {
    let mut metadata = machine().metadata;
    let mut guest = GuestCpu::default();
    guest.id.set(cpu_model::ID_AA64ISAR0_EL1, 0x1_1120);
    guest.id.set(cpu_model::ID_AA64ISAR1_EL1, 0x1);
    guest.id.set(cpu_model::ID_AA64PFR0_EL1, 0x0100_0011);
    guest.id.set(cpu_model::ID_AA64MMFR0_EL1, 0x1122);
    metadata.cpu = CpuRecord::new(0x410f_d083, &guest);
    let text = metadata.to_string();
    let expected = "\
format        aerie-snapshot, written by Aerie 0.1.0
vCPUs         2
RAM           128 KiB at 0x40000000..0x40020000
GIC           GICv3
counter       62.5 MHz
cpu           MIDR 0x410fd083; the guest's PFR0 0x1000011, ISAR0 0x11120, ISAR1 0x1, MMFR0 0x1122
guest time    2.000 s since the guest's counter started (virtual count 0x7735940, physical 0x218711a00)
devices       6
  0x08000000  vGICv3, 64 KiB
  0x09000000  PL011 UART, 4 KiB, INTID 33
  0x0a000000  Aerie test device, 4 KiB
  0x0a003e00  virtio-blk, 512 bytes, INTID 79, disk \"guest-disk-0\" (8 KiB, CRC-32 deadbeef)
  0x0a003c00  virtio-console, 512 bytes, INTID 78
  0x0a003a00  virtio-rng, 512 bytes, INTID 77
memory        20 KiB stored of 128 KiB (5 of 32 pages, 3 ranges; zero pages are not stored)
took          0.84 s
command line  console=ttyAMA0 rdinit=/init";
    assert_eq!(text, expected);
}

#[test]
fn the_cpu_record_holds_the_guests_cpu_model() {
    let mut guest = GuestCpu {
        ctr: 0x8444_c004,
        ..GuestCpu::default()
    };
    guest.id.set(cpu_model::ID_AA64ISAR1_EL1, 0x10);
    guest.id.set(cpu_model::id_space_register(55), 7);
    let mut metadata = machine().metadata;
    metadata.cpu = CpuRecord::new(0x410f_d083, &guest);
    let json = encode_metadata(&metadata);
    let decoded = decode_metadata(&json).unwrap();
    assert_eq!(decoded.cpu.guest_cpu(), Some(guest));
    assert_eq!(decoded.cpu.id(cpu_model::ID_AA64ISAR1_EL1), 0x10);
}

#[test]
fn a_cpu_record_without_every_id_register_is_refused() {
    for count in [
        0,
        cpu_model::ID_SPACE_SIZE - 1,
        cpu_model::ID_SPACE_SIZE + 1,
    ] {
        let mut metadata = machine().metadata;
        metadata.cpu.id_registers = vec![0; count];
        assert_eq!(
            decode_metadata(&encode_metadata(&metadata)),
            Err(MachineError::Metadata(MetadataProblem::CpuIdRegisters(
                count
            ))),
        );
    }
}

#[test]
fn summary_escapes_control_characters() {
    let mut metadata = machine().metadata;
    metadata.guest_command_line = "a\u{1b}[2Jb\n".to_string();
    let text = metadata.to_string();
    assert!(text.ends_with("command line  a\\u{1b}[2Jb\\n"), "{text}");
}

#[test]
fn summary_prints_odd_frequencies_and_times() {
    let mut metadata = machine().metadata;
    metadata.counter_frequency = 54_000_000;
    metadata.took_micros = 1_234_567;
    let text = metadata.to_string();
    assert!(text.contains("counter       54 MHz\n"), "{text}");
    assert!(text.contains("took          1.23 s\n"), "{text}");
    metadata.counter_frequency = 19_200_000;
    assert!(metadata.to_string().contains("19.2 MHz"));
    metadata.counter_frequency = 1_000_001;
    assert!(metadata.to_string().contains("1.000001 MHz"));
}
