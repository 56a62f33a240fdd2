//! Checking saved device states against throwaway device models, so that a state the
//! real devices would refuse is found before anything touches the real VM.

use aerie_devices::pl011::Pl011;
use aerie_devices::testdev::TestDevice;
use aerie_devices::vgic::{VgicV2, VgicV2Config, VgicV3, VgicV3Config};
use aerie_devices::virtio::blk::{ID_BYTES, feature};
use aerie_devices::virtio::{
    BackendError, Block, BlockBackend, Console, EntropyError, EntropySource, MmioTransport, Rng,
    StateError, TransportState,
};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::ToString;

use super::device::DeviceState;
use super::error::{MachineError, StateProblem};
use super::metadata::DiskIdentity;
use super::{SavedDevice, SavedMachine};

/// A disk that has a size, a serial and a read-only flag but no contents: enough for
/// a virtio-blk model to check a saved state (the real disk may be far larger than
/// the memory a check may use).
struct DescribedDisk {
    sectors: u64,
    read_only: bool,
    id: [u8; ID_BYTES],
}

impl DescribedDisk {
    fn new(disk: Option<&DiskIdentity>, read_only: bool) -> Self {
        let mut id = [0; ID_BYTES];
        let serial = disk.map_or(&[][..], |d| d.serial.as_bytes());
        for (slot, byte) in id.iter_mut().zip(serial) {
            *slot = *byte;
        }
        Self {
            sectors: disk.map_or(0, |d| d.sectors),
            read_only,
            id,
        }
    }
}

impl BlockBackend for DescribedDisk {
    fn capacity_sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, _sector: u64, _buffer: &mut [u8]) -> Result<(), BackendError> {
        Err(BackendError("a described disk has no contents"))
    }

    fn write(&mut self, _sector: u64, _bytes: &[u8]) -> Result<(), BackendError> {
        Err(BackendError("a described disk has no contents"))
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn id(&self) -> [u8; ID_BYTES] {
        self.id
    }
}

/// An entropy source that never has any.
struct NoEntropy;

impl EntropySource for NoEntropy {
    fn fill(&mut self, _buffer: &mut [u8]) -> Result<usize, EntropyError> {
        Err(EntropyError)
    }
}

/// A device model's refusal as a state problem.
fn invalid(error: impl ToString) -> StateProblem {
    StateProblem::Invalid(error.to_string())
}

/// Whether a virtio-blk state was saved from a read-only disk: the driver can only
/// have accepted `VIRTIO_BLK_F_RO` if the device offered it.
fn was_read_only(state: &TransportState<aerie_devices::virtio::BlockState>) -> bool {
    (state.driver_features | state.device.features) & feature::RO != 0
}

impl SavedMachine {
    /// Restores every saved device state into a freshly built model of the same kind
    /// and configuration (the metadata's vCPU count, the described disk), and fails
    /// on the first state a model refuses. Nothing outside the throwaway models is
    /// touched.
    pub fn check_devices(&self) -> Result<(), MachineError> {
        let disks: BTreeMap<u64, &DiskIdentity> = self
            .metadata
            .devices
            .iter()
            .filter_map(|d| Some((d.id, d.disk.as_ref()?)))
            .collect();
        for device in &self.devices {
            let disk = disks.get(&device.id).copied();
            self.check_device(device, disk)
                .map_err(|problem| MachineError::Device {
                    id: device.id,
                    problem,
                })?;
        }
        Ok(())
    }

    /// Restores one device's state into a throwaway model; `disk` is the disk the
    /// metadata describes for it.
    fn check_device(
        &self,
        device: &SavedDevice,
        disk: Option<&DiskIdentity>,
    ) -> Result<(), StateProblem> {
        let vcpus = self.metadata.vcpus as usize;
        match &device.state {
            DeviceState::VgicV3(state) => {
                let mut vgic = VgicV3::new(VgicV3Config::new(vcpus)).map_err(|e| {
                    StateProblem::Invalid(format!("no vGICv3 for {vcpus} vCPUs: {e}"))
                })?;
                vgic.restore(state).map_err(invalid)
            }
            DeviceState::VgicV2(state) => {
                let mut vgic = VgicV2::new(VgicV2Config::new(vcpus)).map_err(|e| {
                    StateProblem::Invalid(format!("no vGICv2 for {vcpus} vCPUs: {e}"))
                })?;
                vgic.restore(state).map_err(invalid)
            }
            DeviceState::Pl011(state) => {
                if !state.is_valid() {
                    return Err(StateProblem::Invalid(
                        "the UART's registers or FIFOs hold values a PL011 cannot have".into(),
                    ));
                }
                Pl011::new().restore(state);
                Ok(())
            }
            // Every offset and register value is one a PL031 can hold.
            DeviceState::Pl031(_) => Ok(()),
            DeviceState::CfiFlash(state) => state.check().map_err(invalid),
            DeviceState::TestDevice(state) => {
                TestDevice::new().restore(state);
                Ok(())
            }
            DeviceState::VirtioBlock(state) => {
                let backend = DescribedDisk::new(disk, was_read_only(state));
                restore_transport(MmioTransport::new(Block::new(backend)), state)
            }
            DeviceState::VirtioConsole(state) => {
                restore_transport(MmioTransport::new(Console::new()), state)
            }
            DeviceState::VirtioRng(state) => {
                restore_transport(MmioTransport::new(Rng::new(NoEntropy)), state)
            }
        }
    }
}

/// Restores a virtio transport's state.
fn restore_transport<D: aerie_devices::virtio::VirtioDevice>(
    mut transport: MmioTransport<D>,
    state: &TransportState<D::State>,
) -> Result<(), StateProblem> {
    transport
        .restore(state)
        .map_err(|StateError(reason)| StateProblem::Invalid(reason.into()))
}
