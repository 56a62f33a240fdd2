//! Device state chunks.

use aerie_devices::cfi_flash::CfiFlashState;
use aerie_devices::pl011::Pl011State;
use aerie_devices::pl031::Pl031State;
use aerie_devices::testdev::TestDeviceState;
use aerie_devices::vgic::{VgicState, VgicV2State};
use aerie_devices::virtio::{BlockState, ConsoleState, RngState, TransportState};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::codec;
use super::error::StateProblem;
use super::metadata::DeviceKind;

/// One device's saved state. The variant is encoded first, so a chunk says which
/// kind of device it holds (variant indices 0 to 6 in this order; never reorder).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum DeviceState {
    /// The virtual GICv3.
    VgicV3(VgicState),
    /// The virtual GICv2.
    VgicV2(VgicV2State),
    /// The PL011 UART.
    Pl011(Pl011State),
    /// The Aerie test device.
    TestDevice(TestDeviceState),
    /// A virtio-blk device and its transport.
    VirtioBlock(TransportState<BlockState>),
    /// A virtio-console device and its transport.
    VirtioConsole(TransportState<ConsoleState>),
    /// A virtio-rng device and its transport.
    VirtioRng(TransportState<RngState>),
    /// The PL031 real-time clock (added after the others: variants are encoded by
    /// position).
    Pl031(Pl031State),
    /// A CFI flash bank's command state (added last; its array is in host memory
    /// and, for the variable store, on its disk).
    CfiFlash(CfiFlashState),
}

impl DeviceState {
    /// The kind of device this state is for.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::VgicV3(_) => DeviceKind::VgicV3,
            Self::VgicV2(_) => DeviceKind::VgicV2,
            Self::Pl011(_) => DeviceKind::Pl011,
            Self::Pl031(_) => DeviceKind::Pl031,
            Self::CfiFlash(_) => DeviceKind::CfiFlash,
            Self::TestDevice(_) => DeviceKind::TestDevice,
            Self::VirtioBlock(_) => DeviceKind::VirtioBlock,
            Self::VirtioConsole(_) => DeviceKind::VirtioConsole,
            Self::VirtioRng(_) => DeviceKind::VirtioRng,
        }
    }
}

/// One device as saved.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedDevice {
    /// Its chunk id: the guest physical base address of its register window.
    pub id: u64,
    /// Its state.
    pub state: DeviceState,
}

/// A device's state as a device chunk's payload.
pub fn encode_device(state: &DeviceState) -> Vec<u8> {
    codec::encode(state)
}

/// Decodes a device chunk's payload (its values are checked by
/// [`SavedMachine::check_devices`](super::SavedMachine::check_devices)).
pub fn decode_device(payload: &[u8]) -> Result<DeviceState, StateProblem> {
    codec::decode(payload)
}
