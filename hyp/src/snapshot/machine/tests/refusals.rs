//! Every way a snapshot's contents are refused.

use alloc::format;
use alloc::string::ToString;

use super::*;
use crate::vcpu::MAX_VCPUS;
use aerie_devices::virtio::regs;

/// The error decoding `machine` gives.
fn refusal(machine: &SavedMachine) -> MachineError {
    decode_machine(machine).unwrap_err()
}

/// The error decoding `machine`'s chunks, changed by `change`, gives.
fn refusal_of_chunks(change: impl FnOnce(&mut Vec<Chunk>)) -> MachineError {
    let mut chunks = chunks(&machine());
    change(&mut chunks);
    decode(&chunks).unwrap_err()
}

/// The error for `machine` whose metadata `change` altered.
fn metadata_refusal(change: impl FnOnce(&mut Metadata)) -> MachineError {
    let mut m = machine();
    change(&mut m.metadata);
    refusal(&m)
}

/// Index of the chunk of `kind` with `id`.
fn position(chunks: &[Chunk], kind: ChunkKind, id: u64) -> usize {
    chunks
        .iter()
        .position(|c| c.0 == kind && c.1 == id)
        .unwrap()
}

#[test]
fn refuses_a_snapshot_without_metadata() {
    let e = refusal_of_chunks(|c| c.retain(|c| c.0 != ChunkKind::Metadata));
    assert_eq!(e, MachineError::NoMetadata);
    assert_eq!(e.to_string(), "the snapshot has no metadata chunk");
}

#[test]
fn refuses_two_metadata_chunks() {
    let e = refusal_of_chunks(|c| c.push(c.last().unwrap().clone()));
    assert_eq!(e, MachineError::DuplicateMetadata);
}

#[test]
fn refuses_metadata_with_another_id() {
    let e = refusal_of_chunks(|c| c.last_mut().unwrap().1 = 1);
    assert_eq!(e, MachineError::MetadataId(1));
}

#[test]
fn refuses_a_foreign_format_name() {
    let e = metadata_refusal(|m| m.format = "qemu-vmstate".to_string());
    assert_eq!(
        e,
        MachineError::Metadata(MetadataProblem::WrongFormat("qemu-vmstate".to_string()))
    );
    assert_eq!(
        e.to_string(),
        "snapshot metadata: format \"qemu-vmstate\" is not \"aerie-snapshot\""
    );
}

#[test]
fn refuses_metadata_that_is_not_json_or_has_unknown_fields() {
    let e = refusal_of_chunks(|c| c.last_mut().unwrap().2 = b"{\"vcpus\": 2".to_vec());
    assert!(
        matches!(e, MachineError::Metadata(MetadataProblem::Json(_))),
        "{e}"
    );
    let e = refusal_of_chunks(|c| {
        let json = &mut c.last_mut().unwrap().2;
        let text = core::str::from_utf8(json)
            .unwrap()
            .replacen('{', "{\"extra\": 1,", 1);
        *json = text.into_bytes();
    });
    assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    let e = refusal_of_chunks(|c| c.last_mut().unwrap().2.clear());
    assert!(
        matches!(e, MachineError::Metadata(MetadataProblem::Json(_))),
        "{e}"
    );
}

#[test]
fn refuses_impossible_vcpu_counts() {
    assert_eq!(
        metadata_refusal(|m| m.vcpus = 0),
        MachineError::Metadata(MetadataProblem::VcpuCount(0))
    );
    let too_many = MAX_VCPUS as u32 + 1;
    assert_eq!(
        metadata_refusal(|m| m.vcpus = too_many),
        MachineError::Metadata(MetadataProblem::VcpuCount(too_many))
    );
}

#[test]
fn refuses_a_vcpu_count_that_does_not_match_the_chunks() {
    assert_eq!(
        metadata_refusal(|m| m.vcpus = 3),
        MachineError::MissingVcpu(2)
    );
    let e = metadata_refusal(|m| m.vcpus = 1);
    assert_eq!(e, MachineError::UnexpectedVcpu { index: 1, vcpus: 1 });
    assert_eq!(
        e.to_string(),
        "the snapshot holds state for vCPU 1, but its metadata describes 1 vCPUs"
    );
}

#[test]
fn refuses_a_missing_or_repeated_vcpu_chunk() {
    let e = refusal_of_chunks(|c| {
        c.remove(position(c, ChunkKind::Vcpu, 1));
    });
    assert_eq!(e, MachineError::MissingVcpu(1));
    assert_eq!(e.to_string(), "the snapshot has no state for vCPU 1");
    let e = refusal_of_chunks(|c| c.insert(0, c[1].clone()));
    assert_eq!(e, MachineError::DuplicateVcpu(1));
}

/// The error for a machine whose boot vCPU has `pstate`, if any.
fn pstate_result(pstate: u64) -> Result<SavedMachine, MachineError> {
    let mut m = machine();
    m.vcpus[0].state.registers.pstate = pstate;
    decode_machine(&m)
}

#[test]
fn accepts_only_aarch64_el0t_el1t_and_el1h() {
    for mode in [0b0_0000, 0b0_0100, 0b0_0101] {
        assert!(pstate_result(0x3c0 | mode).is_ok(), "mode {mode:#b}");
    }
    for mode in (0..32u64).filter(|m| ![0b0_0000, 0b0_0100, 0b0_0101].contains(m)) {
        let e = pstate_result(0x3c0 | mode).unwrap_err();
        assert!(
            matches!(
                e,
                MachineError::Vcpu {
                    index: 0,
                    problem: StateProblem::Invalid(_)
                }
            ),
            "mode {mode:#b}: {e}"
        );
    }
}

#[test]
fn refuses_a_pstate_at_el2_or_in_aarch32() {
    let el2h = pstate_result(0x3c9).unwrap_err();
    assert_eq!(
        el2h.to_string(),
        "vCPU 0 state: invalid state: PSTATE 0x3c9 is at EL2 (mode 0b01001); \
         only EL0t, EL1t and EL1h can be restored"
    );
    let el3h = pstate_result(0x3cd).unwrap_err();
    assert!(el3h.to_string().contains("at EL3"), "{el3h}");
    let svc32 = pstate_result(0x1d3).unwrap_err();
    assert!(svc32.to_string().contains("AArch32"), "{svc32}");
}

#[test]
fn checks_the_pstate_of_vcpus_that_are_off_too() {
    let mut m = machine();
    m.vcpus[1].state.registers.pstate = 0x3c9;
    assert!(matches!(refusal(&m), MachineError::Vcpu { index: 1, .. }));
}

#[test]
fn refuses_a_physical_timer_control_with_undefined_bits() {
    let mut m = machine();
    m.vcpus[0].state.physical_timer.ctl = 0b111;
    assert!(matches!(refusal(&m), MachineError::Vcpu { index: 0, .. }));
}

#[test]
fn refuses_an_icc_sre_el1_with_undefined_bits() {
    let mut m = machine();
    m.vcpus[0].state.gic.sre = 0b1111;
    let e = refusal(&m);
    assert!(matches!(e, MachineError::Vcpu { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("ICC_SRE_EL1 0xf"), "{e}");
    m.vcpus[0].state.gic.sre = 0b111;
    assert!(decode_machine(&m).is_ok());
}

#[test]
fn refuses_a_machine_whose_vcpus_are_all_off() {
    let mut m = machine();
    m.vcpus[0].power = VcpuPower::Off;
    assert_eq!(refusal(&m), MachineError::NoVcpuOn);
}

#[test]
fn refuses_a_device_chunk_the_metadata_does_not_describe() {
    let e = refusal_of_chunks(|c| {
        let uart = position(c, ChunkKind::Device, UART);
        let mut extra = c[uart].clone();
        extra.1 = 0x0c00_0000;
        c.insert(0, extra);
    });
    assert_eq!(e, MachineError::UndescribedDevice(0x0c00_0000));
    assert_eq!(
        e.to_string(),
        "device at 0xc000000: the snapshot holds its state but its metadata does not describe it"
    );
}

#[test]
fn refuses_a_described_device_without_a_chunk() {
    let e = refusal_of_chunks(|c| {
        c.remove(position(c, ChunkKind::Device, RNG));
    });
    assert_eq!(
        e,
        MachineError::MissingDevice {
            id: RNG,
            kind: DeviceKind::VirtioRng
        }
    );
    assert_eq!(
        e.to_string(),
        "device at 0xa003a00 (virtio-rng): described in the metadata, but its state is missing"
    );
}

#[test]
fn refuses_a_device_chunk_twice() {
    let e = refusal_of_chunks(|c| {
        let uart = position(c, ChunkKind::Device, UART);
        c.insert(0, c[uart].clone());
    });
    assert_eq!(e, MachineError::DuplicateDevice(UART));
}

#[test]
fn refuses_a_device_of_another_kind_than_described() {
    let mut m = machine();
    m.devices.swap(1, 2);
    m.devices[1].id = UART;
    m.devices[2].id = TESTDEV;
    let e = refusal(&m);
    assert_eq!(
        e,
        MachineError::Device {
            id: UART,
            problem: StateProblem::WrongKind {
                described: DeviceKind::Pl011,
                found: DeviceKind::TestDevice
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "device at 0x9000000: the metadata describes a PL011 UART, but the chunk holds \
         Aerie test device state"
    );
}

#[test]
fn refuses_memory_outside_the_guest_ram() {
    let m = machine();
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    let mut pages = ram_pages();
    pages.push(vec![1; PAGE_SIZE]);
    let snapshot = write_to(&mut disk, &chunks(&m), RAM_BASE, &pages);
    assert_eq!(
        SavedMachine::from_snapshot(&snapshot),
        Err(MachineError::MemoryOutsideRam {
            address: RAM_BASE + 30 * PAGE_SIZE as u64,
            length: 3 * PAGE_SIZE as u64
        })
    );
    let below = RAM_BASE - PAGE_SIZE as u64;
    let snapshot = write_to(&mut disk, &chunks(&m), below, &ram_pages());
    let e = SavedMachine::from_snapshot(&snapshot).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stored memory 0x3ffff000..0x40000000 lies outside the guest RAM"
    );
}

#[test]
fn refuses_a_memory_summary_that_does_not_match() {
    for change in [
        |s: &mut MemorySummary| s.stored_pages = 4,
        |s: &mut MemorySummary| s.chunks = 2,
        |s: &mut MemorySummary| s.pages = RAM_PAGES + 1,
        |s: &mut MemorySummary| s.pages = 4,
    ] {
        let e = metadata_refusal(|m| change(&mut m.memory));
        assert!(matches!(e, MachineError::MemorySummary(_)), "{e}");
    }
}

#[test]
fn refuses_bad_ram_layouts() {
    for ram in [
        RamLayout {
            base: RAM_BASE,
            size: 0,
        },
        RamLayout {
            base: RAM_BASE + 1,
            size: 0x2_0000,
        },
        RamLayout {
            base: RAM_BASE,
            size: 0x2_0001,
        },
        RamLayout {
            base: u64::MAX - 0xfff,
            size: 0x2000,
        },
    ] {
        assert_eq!(
            metadata_refusal(|m| m.ram = ram),
            MachineError::Metadata(MetadataProblem::BadRam)
        );
    }
}

#[test]
fn refuses_inconsistent_device_descriptions() {
    assert_eq!(
        metadata_refusal(|m| m.devices[1].base = 0x0900_1000),
        MachineError::Metadata(MetadataProblem::DeviceId {
            id: UART,
            base: 0x0900_1000
        })
    );
    assert_eq!(
        metadata_refusal(|m| m.devices[1].size = 0),
        MachineError::Metadata(MetadataProblem::DeviceWindow(UART))
    );
    assert_eq!(
        metadata_refusal(|m| {
            let copy = m.devices[1].clone();
            m.devices.push(copy);
        }),
        MachineError::Metadata(MetadataProblem::DuplicateDevice(UART))
    );
    assert_eq!(
        metadata_refusal(|m| m.devices[3].disk = None),
        MachineError::Metadata(MetadataProblem::DiskIdentity(BLOCK))
    );
    assert_eq!(
        metadata_refusal(|m| m.devices[1].disk = m.devices[3].disk.clone()),
        MachineError::Metadata(MetadataProblem::DiskIdentity(UART))
    );
    // A flash bank records its contents' identity (or, saved by an older Aerie, not).
    let mut m = machine();
    let mut bank = DeviceDescription::at(DeviceKind::CfiFlash, 0x0400_0000, 0x0400_0000, None);
    assert_eq!(m.metadata.check(), Ok(()));
    bank.disk = m.metadata.devices[3].disk.clone();
    m.metadata.devices.push(bank.clone());
    assert_eq!(m.metadata.check(), Ok(()));
    bank.disk = None;
    *m.metadata.devices.last_mut().unwrap() = bank;
    assert_eq!(m.metadata.check(), Ok(()));
    for serial in ["a-serial-of-21-bytes!", "tab\there"] {
        assert_eq!(
            metadata_refusal(|m| m.devices[3].disk.as_mut().unwrap().serial = serial.into()),
            MachineError::Metadata(MetadataProblem::DiskSerial(BLOCK))
        );
    }
    assert_eq!(
        metadata_refusal(|m| m.gic = GicKind::V2),
        MachineError::Metadata(MetadataProblem::GicDevices)
    );
    assert_eq!(
        metadata_refusal(|m| m.counter_frequency = 0),
        MachineError::Metadata(MetadataProblem::ZeroCounterFrequency)
    );
}

#[test]
fn refuses_newer_and_unknown_state_versions() {
    let with_version = |version: u32, kind, id| {
        refusal_of_chunks(|c| {
            let at = position(c, kind, id);
            c[at].2[..4].copy_from_slice(&version.to_le_bytes());
        })
    };
    let e = with_version(4, ChunkKind::Vcpu, 0);
    assert_eq!(
        e,
        MachineError::Vcpu {
            index: 0,
            problem: StateProblem::NewerVersion(4)
        }
    );
    assert_eq!(
        e.to_string(),
        "vCPU 0 state: state version 4 is newer than this Aerie supports (3)"
    );
    // Versions 1 (before the vCPU state held ICC_SRE_EL1) and 2 (before it held the
    // PMU) are refused by name.
    for older in [1, 2] {
        let e = with_version(older, ChunkKind::Vcpu, 0);
        assert_eq!(
            e.to_string(),
            format!(
                "vCPU 0 state: state version {older} was written by an older Aerie; this one \
                 reads only version 3 (take the snapshot again)"
            )
        );
    }
    assert_eq!(
        with_version(7, ChunkKind::Device, GIC),
        MachineError::Device {
            id: GIC,
            problem: StateProblem::NewerVersion(7)
        }
    );
    assert_eq!(
        with_version(0, ChunkKind::Device, UART),
        MachineError::Device {
            id: UART,
            problem: StateProblem::UnknownVersion(0)
        }
    );
}

#[test]
fn refuses_payloads_too_short_for_a_version() {
    let e = refusal_of_chunks(|c| {
        let at = position(c, ChunkKind::Vcpu, 1);
        c[at].2.truncate(3);
    });
    assert_eq!(
        e,
        MachineError::Vcpu {
            index: 1,
            problem: StateProblem::NoVersion
        }
    );
}

#[test]
fn refuses_trailing_bytes() {
    let e = refusal_of_chunks(|c| {
        let at = position(c, ChunkKind::Device, CONSOLE);
        c[at].2.push(0);
    });
    assert_eq!(
        e,
        MachineError::Device {
            id: CONSOLE,
            problem: StateProblem::TrailingBytes(1)
        }
    );
    assert_eq!(
        e.to_string(),
        "device at 0xa003c00: 1 unexpected bytes after the state"
    );
    let e = refusal_of_chunks(|c| c[0].2.extend_from_slice(&[1, 2]));
    assert_eq!(
        e,
        MachineError::Vcpu {
            index: 0,
            problem: StateProblem::TrailingBytes(2)
        }
    );
}

#[test]
fn refuses_truncated_states() {
    let e = refusal_of_chunks(|c| {
        let at = position(c, ChunkKind::Device, GIC);
        let len = c[at].2.len();
        c[at].2.truncate(len - 1);
    });
    assert!(
        matches!(
            e,
            MachineError::Device {
                id: GIC,
                problem: StateProblem::Decode(_)
            }
        ),
        "{e}"
    );
}

#[test]
fn refuses_device_states_the_device_models_refuse() {
    let mut m = machine();
    let DeviceState::Pl011(uart) = &mut m.devices[1].state else {
        unreachable!()
    };
    uart.rx_len = 33;
    let e = refusal(&m);
    assert_eq!(
        e.to_string(),
        "device at 0x9000000: invalid state: the UART's registers or FIFOs hold values a \
         PL011 cannot have"
    );

    let mut m = machine();
    m.devices[0].state = DeviceState::VgicV3(VgicV3::new(VgicV3Config::new(3)).unwrap().save());
    let e = refusal(&m);
    assert!(matches!(e, MachineError::Device { id: GIC, .. }), "{e}");
    assert!(e.to_string().contains("different number of vCPUs"), "{e}");

    let mut m = machine();
    let DeviceState::VgicV3(gic) = &mut m.devices[0].state else {
        unreachable!()
    };
    gic.spis[0].irq.priority = 0x01;
    assert!(matches!(refusal(&m), MachineError::Device { id: GIC, .. }));

    let mut m = machine();
    let DeviceState::VirtioBlock(block) = &mut m.devices[3].state else {
        unreachable!()
    };
    // Accepted (FEATURES_OK) features the device does not offer: no guest can get
    // there. (Before FEATURES_OK, DriverFeatures holds whatever the driver wrote, and
    // such a state restores.)
    block.status = regs::STATUS_ACKNOWLEDGE | regs::STATUS_DRIVER | regs::STATUS_FEATURES_OK;
    block.driver_features = aerie_devices::virtio::features::VERSION_1 | 1 << 60;
    let e = refusal(&m);
    assert!(matches!(e, MachineError::Device { id: BLOCK, .. }), "{e}");

    let mut m = machine();
    let DeviceState::VirtioConsole(console) = &mut m.devices[4].state else {
        unreachable!()
    };
    console.device.output = vec![b'x'; 64 * 1024];
    let e = refusal(&m);
    assert!(matches!(e, MachineError::Device { id: CONSOLE, .. }), "{e}");

    let mut m = machine();
    let DeviceState::VirtioRng(rng) = &mut m.devices[5].state else {
        unreachable!()
    };
    rng.queues.clear();
    let e = refusal(&m);
    assert!(matches!(e, MachineError::Device { id: RNG, .. }), "{e}");
}

#[test]
fn a_read_only_disk_state_is_checked_against_a_read_only_model() {
    use aerie_devices::virtio::blk::feature;
    let mut disk = GuestDisk::new(16);
    disk.read_only = true;
    let mut m = machine();
    let mut block = MmioTransport::new(Block::new(disk)).save();
    block.device.features = feature::RO | aerie_devices::virtio::features::VERSION_1;
    block.driver_features = block.device.features;
    m.devices[3].state = DeviceState::VirtioBlock(block.clone());
    assert_eq!(decode_machine(&m), Ok(m.clone()));
    // A read-only disk that also claims discard support is not a device that exists.
    block.device.features |= feature::DISCARD;
    m.devices[3].state = DeviceState::VirtioBlock(block);
    assert!(matches!(
        refusal(&m),
        MachineError::Device { id: BLOCK, .. }
    ));
}
