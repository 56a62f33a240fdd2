//! virtio over MMIO: the register layout and device types (shared with the host-side
//! probe), and the guest-facing devices Aerie emulates.
//!
//! A virtio-mmio device is a window of 32-bit registers followed by a device-specific
//! configuration space (virtio 1.2, section 4.2.2). Version 2 ("modern") devices use
//! the layout in [`regs`]; version 1 ("legacy", section 4.2.4) devices replace the
//! queue address registers with a page frame number ([`regs::QUEUE_PFN`] and friends).
//! QEMU's `virt` machine has 32 slots, and an unused slot reads device ID 0.
//!
//! # The emulated devices
//!
//! Everything below is pure, `no_std` + alloc, and never panics on guest input: a
//! malformed queue or request puts the device in `DEVICE_NEEDS_RESET` and is
//! reported once. Allocations happen when a device is created, never per request.
//!
//! | module | job |
//! |---|---|
//! | [`guest_memory`] | [`GuestMemory`]: checked access to guest RAM; [`VecMemory`] for tests |
//! | [`queue`] | the split virtqueue: chain walking with every check, used ring, event index |
//! | [`chain`] | [`Chain`]: a validated chain as readable and writable byte streams |
//! | [`transport`] | [`MmioTransport`]: the version 2 register interface around a [`VirtioDevice`] |
//! | [`blk`] | virtio-blk over a [`BlockBackend`] |
//! | [`console`] | virtio-console, one port |
//! | [`rng`] | virtio-rng over an [`EntropySource`] |
//!
//! A guest device is an `MmioTransport<Block<B>>`, `MmioTransport<Console>` or
//! `MmioTransport<Rng<E>>` on the MMIO bus; see [`transport`] for how the hypervisor
//! drives it.

pub mod blk;
pub mod chain;
pub mod console;
pub mod guest_memory;
pub mod queue;
pub mod rng;
pub mod transport;

#[cfg(test)]
mod tests;

pub use blk::{BackendError, Block, BlockBackend, BlockState, BlockStats, MemoryDisk};
pub use chain::{Chain, Segment};
pub use console::{Console, ConsoleState, ConsoleStats};
pub use guest_memory::{GuestMemory, MemoryError, VecMemory};
pub use queue::{Queue, QueueError, QueueFault, QueueState};
pub use rng::{EntropyError, EntropySource, Rng, RngState, RngStats};
pub use transport::{
    MmioTransport, StateError, TransportState, TransportStats, VirtioDevice, WINDOW_SIZE,
};

use core::fmt;

/// Device-independent feature bits (virtio 1.2, section 6).
pub mod features {
    /// `VIRTIO_F_INDIRECT_DESC` (bit 28): indirect descriptor tables.
    pub const INDIRECT_DESC: u64 = 1 << 28;
    /// `VIRTIO_F_EVENT_IDX` (bit 29): `used_event` and `avail_event`.
    pub const EVENT_IDX: u64 = 1 << 29;
    /// `VIRTIO_F_VERSION_1` (bit 32): compliance with virtio 1.0+.
    pub const VERSION_1: u64 = 1 << 32;
}

/// The `MagicValue` register's content: `"virt"` read as a little-endian `u32`.
pub const MAGIC_VALUE: u32 = 0x7472_6976;

/// Register offsets from the device's base (virtio 1.2, section 4.2.2). All registers
/// are 32 bits wide and little-endian; the configuration space follows at [`CONFIG`].
///
/// [`CONFIG`]: regs::CONFIG
pub mod regs {
    /// `MagicValue` (R): [`MAGIC_VALUE`](super::MAGIC_VALUE).
    pub const MAGIC_VALUE: u64 = 0x000;
    /// `Version` (R): 2 for modern devices, 1 for legacy ones.
    pub const VERSION: u64 = 0x004;
    /// `DeviceID` (R): the device type; 0 for an unused slot.
    pub const DEVICE_ID: u64 = 0x008;
    /// `VendorID` (R).
    pub const VENDOR_ID: u64 = 0x00c;
    /// `DeviceFeatures` (R): 32 feature bits, selected by `DeviceFeaturesSel`.
    pub const DEVICE_FEATURES: u64 = 0x010;
    /// `DeviceFeaturesSel` (W): which 32 bits `DeviceFeatures` shows.
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    /// `DriverFeatures` (W): 32 accepted feature bits, selected by `DriverFeaturesSel`.
    pub const DRIVER_FEATURES: u64 = 0x020;
    /// `DriverFeaturesSel` (W): which 32 bits `DriverFeatures` sets.
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    /// `GuestPageSize` (W, legacy only): the page size for [`QUEUE_PFN`].
    pub const GUEST_PAGE_SIZE: u64 = 0x028;
    /// `QueueSel` (W): which virtqueue the `Queue*` registers address.
    pub const QUEUE_SEL: u64 = 0x030;
    /// `QueueNumMax` (R): the largest queue size the device supports.
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    /// `QueueNum` (W): the queue size the driver chose.
    pub const QUEUE_NUM: u64 = 0x038;
    /// `QueueAlign` (W, legacy only): the used ring's alignment.
    pub const QUEUE_ALIGN: u64 = 0x03c;
    /// `QueuePFN` (RW, legacy only): the queue's guest page frame number.
    pub const QUEUE_PFN: u64 = 0x040;
    /// `QueueReady` (RW): the driver has set the queue up.
    pub const QUEUE_READY: u64 = 0x044;
    /// `QueueNotify` (W): the driver has new buffers in the queue it writes here.
    pub const QUEUE_NOTIFY: u64 = 0x050;
    /// `InterruptStatus` (R): why the device interrupted (see `INTERRUPT_*`).
    pub const INTERRUPT_STATUS: u64 = 0x060;
    /// `InterruptACK` (W): the interrupt causes the driver has handled.
    pub const INTERRUPT_ACK: u64 = 0x064;
    /// `Status` (RW): the device status bits (see `STATUS_*`); writing 0 resets.
    pub const STATUS: u64 = 0x070;
    /// `QueueDescLow` (W): descriptor area address, low 32 bits.
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    /// `QueueDescHigh` (W): descriptor area address, high 32 bits.
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    /// `QueueDriverLow` (W): driver (available) area address, low 32 bits.
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    /// `QueueDriverHigh` (W): driver (available) area address, high 32 bits.
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    /// `QueueDeviceLow` (W): device (used) area address, low 32 bits.
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    /// `QueueDeviceHigh` (W): device (used) area address, high 32 bits.
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    /// `SHMSel` (W): which shared memory region `SHMLen*`/`SHMBase*` describe.
    pub const SHM_SEL: u64 = 0x0ac;
    /// `SHMLenLow` (R): shared memory region length, low 32 bits.
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    /// `SHMLenHigh` (R): shared memory region length, high 32 bits.
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    /// `SHMBaseLow` (R): shared memory region address, low 32 bits.
    pub const SHM_BASE_LOW: u64 = 0x0b8;
    /// `SHMBaseHigh` (R): shared memory region address, high 32 bits.
    pub const SHM_BASE_HIGH: u64 = 0x0bc;
    /// `QueueReset` (RW): resets the selected queue (VIRTIO_F_RING_RESET).
    pub const QUEUE_RESET: u64 = 0x0c0;
    /// `ConfigGeneration` (R): changes whenever the configuration space changes.
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// Start of the device-specific configuration space.
    pub const CONFIG: u64 = 0x100;

    /// `InterruptStatus` bit 0: the device used a buffer in a virtqueue.
    pub const INTERRUPT_USED_BUFFER: u32 = 1 << 0;
    /// `InterruptStatus` bit 1: the configuration space changed.
    pub const INTERRUPT_CONFIG_CHANGE: u32 = 1 << 1;

    /// `Status` bit: the driver has noticed the device (section 2.1).
    pub const STATUS_ACKNOWLEDGE: u32 = 1;
    /// `Status` bit: the driver knows how to drive the device.
    pub const STATUS_DRIVER: u32 = 2;
    /// `Status` bit: the driver is set up and ready.
    pub const STATUS_DRIVER_OK: u32 = 4;
    /// `Status` bit: feature negotiation is complete.
    pub const STATUS_FEATURES_OK: u32 = 8;
    /// `Status` bit: the device hit an error it cannot recover from without a reset.
    pub const STATUS_DEVICE_NEEDS_RESET: u32 = 64;
    /// `Status` bit: the driver gave up on the device.
    pub const STATUS_FAILED: u32 = 128;
}

/// Generates [`DeviceType`] from the spec's device ID table (virtio 1.2, section 5).
macro_rules! device_types {
    ($( $(#[$meta:meta])* $variant:ident = $id:literal, $name:literal; )*) => {
        /// A virtio device type, from the `DeviceID` register.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DeviceType {
            $( $(#[$meta])* $variant, )*
            /// An ID this table does not know.
            Other(u32),
        }

        impl DeviceType {
            /// The type for a `DeviceID` value. 0 (an unused slot) is `Other(0)`;
            /// [`classify`] handles it before asking.
            pub const fn from_id(id: u32) -> Self {
                match id {
                    $( $id => Self::$variant, )*
                    other => Self::Other(other),
                }
            }

            /// The `DeviceID` value of this type.
            pub const fn id(self) -> u32 {
                match self {
                    $( Self::$variant => $id, )*
                    Self::Other(id) => id,
                }
            }

            /// A short lowercase name, e.g. `"block"`; `"unknown"` for [`Self::Other`].
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Other(_) => "unknown",
                }
            }
        }
    };
}

device_types! {
    /// Network card.
    Network = 1, "network";
    /// Block device.
    Block = 2, "block";
    /// Console.
    Console = 3, "console";
    /// Entropy source.
    Entropy = 4, "entropy";
    /// Traditional memory balloon.
    Balloon = 5, "balloon";
    /// ioMemory.
    IoMemory = 6, "iomemory";
    /// rpmsg.
    Rpmsg = 7, "rpmsg";
    /// SCSI host.
    Scsi = 8, "scsi";
    /// 9P transport.
    NineP = 9, "9p";
    /// mac80211 WLAN.
    Mac80211Wlan = 10, "mac80211-wlan";
    /// rproc serial.
    RprocSerial = 11, "rproc-serial";
    /// CAIF.
    Caif = 12, "caif";
    /// Memory balloon (the newer, non-traditional one).
    MemoryBalloon = 13, "memory-balloon";
    /// GPU.
    Gpu = 16, "gpu";
    /// Timer/clock.
    Clock = 17, "clock";
    /// Input device.
    Input = 18, "input";
    /// Socket device (vsock).
    Vsock = 19, "vsock";
    /// Crypto device.
    Crypto = 20, "crypto";
    /// Signal distribution module.
    SignalDistribution = 21, "signal-distribution";
    /// pstore.
    Pstore = 22, "pstore";
    /// IOMMU.
    Iommu = 23, "iommu";
    /// Memory device.
    Memory = 24, "memory";
    /// Audio (sound) device.
    Sound = 25, "sound";
    /// File system device (virtio-fs).
    Fs = 26, "fs";
    /// Persistent memory.
    Pmem = 27, "pmem";
    /// RPMB.
    Rpmb = 28, "rpmb";
    /// mac80211 hwsim wireless simulation.
    Mac80211Hwsim = 29, "mac80211-hwsim";
    /// Video encoder.
    VideoEncoder = 30, "video-encoder";
    /// Video decoder.
    VideoDecoder = 31, "video-decoder";
    /// SCMI.
    Scmi = 32, "scmi";
    /// Nitro secure module.
    NitroSecureModule = 33, "nitro-secure-module";
    /// I2C adapter.
    I2c = 34, "i2c";
    /// Watchdog.
    Watchdog = 35, "watchdog";
    /// CAN.
    Can = 36, "can";
    /// Parameter server.
    ParameterServer = 38, "parameter-server";
    /// Audio policy.
    AudioPolicy = 39, "audio-policy";
    /// Bluetooth.
    Bluetooth = 40, "bluetooth";
    /// GPIO.
    Gpio = 41, "gpio";
    /// RDMA.
    Rdma = 42, "rdma";
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(id) => write!(f, "unknown device type {id}"),
            known => f.write_str(known.name()),
        }
    }
}

/// The transport version a device implements (the `Version` register).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportVersion {
    /// Version 1: the legacy interface (virtio 1.2, section 4.2.4).
    Legacy = 1,
    /// Version 2: the virtio 1.0+ interface.
    Modern = 2,
}

/// `Version` register values.
const VERSION_LEGACY: u32 = 1;
const VERSION_MODERN: u32 = 2;
/// `DeviceID` of an unused slot.
const DEVICE_ID_NONE: u32 = 0;

impl TransportVersion {
    /// The version for a `Version` register value, if it is 1 or 2.
    pub const fn from_register(version: u32) -> Option<Self> {
        match version {
            VERSION_LEGACY => Some(Self::Legacy),
            VERSION_MODERN => Some(Self::Modern),
            _ => None,
        }
    }
}

/// What a virtio-mmio slot holds, judged from its first three registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// The magic is wrong: not a virtio-mmio device at all.
    NotVirtio {
        /// The `MagicValue` read.
        magic: u32,
    },
    /// A virtio-mmio device with a transport version other than 1 or 2.
    UnsupportedVersion(u32),
    /// An unused slot (`DeviceID` 0), as QEMU leaves most of its 32.
    Empty,
    /// A device.
    Device {
        /// What kind of device.
        device: DeviceType,
        /// The transport version it speaks.
        version: TransportVersion,
    },
}

/// Classifies a slot from its `MagicValue`, `Version` and `DeviceID` registers, checked
/// in that order as the spec's driver requirements ask (section 4.2.3.1.1).
pub const fn classify(magic: u32, version: u32, device_id: u32) -> SlotState {
    if magic != MAGIC_VALUE {
        return SlotState::NotVirtio { magic };
    }
    let Some(version) = TransportVersion::from_register(version) else {
        return SlotState::UnsupportedVersion(version);
    };
    if device_id == DEVICE_ID_NONE {
        return SlotState::Empty;
    }
    SlotState::Device {
        device: DeviceType::from_id(device_id),
        version,
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotVirtio { magic } => {
                write!(
                    f,
                    "not virtio-mmio (magic {magic:#010x}, expected {MAGIC_VALUE:#010x})"
                )
            }
            Self::UnsupportedVersion(version) => {
                write!(f, "unsupported virtio-mmio version {version}")
            }
            Self::Empty => f.write_str("empty"),
            Self::Device { device, version } => {
                let kind = match version {
                    TransportVersion::Legacy => "legacy",
                    TransportVersion::Modern => "modern",
                };
                write!(f, "{device} ({kind} virtio-mmio)")
            }
        }
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn magic_is_virt() {
        assert_eq!(MAGIC_VALUE.to_le_bytes(), *b"virt");
    }

    #[test]
    fn register_offsets_from_the_spec() {
        // virtio 1.2, section 4.2.2, table "MMIO Device Register Layout".
        assert_eq!(regs::MAGIC_VALUE, 0x000);
        assert_eq!(regs::VERSION, 0x004);
        assert_eq!(regs::DEVICE_ID, 0x008);
        assert_eq!(regs::VENDOR_ID, 0x00c);
        assert_eq!(regs::DEVICE_FEATURES, 0x010);
        assert_eq!(regs::DEVICE_FEATURES_SEL, 0x014);
        assert_eq!(regs::DRIVER_FEATURES, 0x020);
        assert_eq!(regs::DRIVER_FEATURES_SEL, 0x024);
        assert_eq!(regs::QUEUE_SEL, 0x030);
        assert_eq!(regs::QUEUE_NUM_MAX, 0x034);
        assert_eq!(regs::QUEUE_NUM, 0x038);
        assert_eq!(regs::QUEUE_READY, 0x044);
        assert_eq!(regs::QUEUE_NOTIFY, 0x050);
        assert_eq!(regs::INTERRUPT_STATUS, 0x060);
        assert_eq!(regs::INTERRUPT_ACK, 0x064);
        assert_eq!(regs::STATUS, 0x070);
        assert_eq!(regs::QUEUE_DESC_LOW, 0x080);
        assert_eq!(regs::QUEUE_DESC_HIGH, 0x084);
        assert_eq!(regs::QUEUE_DRIVER_LOW, 0x090);
        assert_eq!(regs::QUEUE_DRIVER_HIGH, 0x094);
        assert_eq!(regs::QUEUE_DEVICE_LOW, 0x0a0);
        assert_eq!(regs::QUEUE_DEVICE_HIGH, 0x0a4);
        assert_eq!(regs::SHM_SEL, 0x0ac);
        assert_eq!(regs::SHM_LEN_LOW, 0x0b0);
        assert_eq!(regs::SHM_LEN_HIGH, 0x0b4);
        assert_eq!(regs::SHM_BASE_LOW, 0x0b8);
        assert_eq!(regs::SHM_BASE_HIGH, 0x0bc);
        assert_eq!(regs::QUEUE_RESET, 0x0c0);
        assert_eq!(regs::CONFIG_GENERATION, 0x0fc);
        assert_eq!(regs::CONFIG, 0x100);
        // Section 4.2.4, legacy layout.
        assert_eq!(regs::GUEST_PAGE_SIZE, 0x028);
        assert_eq!(regs::QUEUE_ALIGN, 0x03c);
        assert_eq!(regs::QUEUE_PFN, 0x040);
    }

    #[test]
    fn reserved_feature_bits() {
        // virtio 1.2, section 6 "Reserved Feature Bits".
        assert_eq!(features::INDIRECT_DESC, 1 << 28);
        assert_eq!(features::EVENT_IDX, 1 << 29);
        assert_eq!(features::VERSION_1, 1 << 32);
    }

    #[test]
    fn status_and_interrupt_bits() {
        // Section 2.1 (device status field) and 4.2.2 (InterruptStatus).
        assert_eq!(regs::STATUS_ACKNOWLEDGE, 1);
        assert_eq!(regs::STATUS_DRIVER, 2);
        assert_eq!(regs::STATUS_DRIVER_OK, 4);
        assert_eq!(regs::STATUS_FEATURES_OK, 8);
        assert_eq!(regs::STATUS_DEVICE_NEEDS_RESET, 64);
        assert_eq!(regs::STATUS_FAILED, 128);
        assert_eq!(regs::INTERRUPT_USED_BUFFER, 0b01);
        assert_eq!(regs::INTERRUPT_CONFIG_CHANGE, 0b10);
    }

    #[test]
    fn device_ids_from_the_spec() {
        // virtio 1.2, section 5 "Device Types".
        let table = [
            (1, DeviceType::Network, "network"),
            (2, DeviceType::Block, "block"),
            (3, DeviceType::Console, "console"),
            (4, DeviceType::Entropy, "entropy"),
            (5, DeviceType::Balloon, "balloon"),
            (8, DeviceType::Scsi, "scsi"),
            (9, DeviceType::NineP, "9p"),
            (16, DeviceType::Gpu, "gpu"),
            (18, DeviceType::Input, "input"),
            (19, DeviceType::Vsock, "vsock"),
            (20, DeviceType::Crypto, "crypto"),
            (23, DeviceType::Iommu, "iommu"),
            (24, DeviceType::Memory, "memory"),
            (25, DeviceType::Sound, "sound"),
            (26, DeviceType::Fs, "fs"),
            (27, DeviceType::Pmem, "pmem"),
            (34, DeviceType::I2c, "i2c"),
            (41, DeviceType::Gpio, "gpio"),
        ];
        for (id, device, name) in table {
            assert_eq!(DeviceType::from_id(id), device, "ID {id}");
            assert_eq!(device.id(), id);
            assert_eq!(device.name(), name);
            assert_eq!(device.to_string(), name);
        }
    }

    #[test]
    fn every_known_id_round_trips() {
        for id in 0..64 {
            let device = DeviceType::from_id(id);
            assert_eq!(device.id(), id);
            // 0, 14, 15, 37 and everything above 42 are not assigned.
            let unassigned = matches!(id, 0 | 14 | 15 | 37) || id > 42;
            assert_eq!(device == DeviceType::Other(id), unassigned, "ID {id}");
        }
    }

    #[test]
    fn unknown_device() {
        assert_eq!(DeviceType::from_id(999), DeviceType::Other(999));
        assert_eq!(DeviceType::Other(999).name(), "unknown");
        assert_eq!(
            DeviceType::Other(999).to_string(),
            "unknown device type 999"
        );
    }

    #[test]
    fn transport_version() {
        assert_eq!(
            TransportVersion::from_register(1),
            Some(TransportVersion::Legacy)
        );
        assert_eq!(
            TransportVersion::from_register(2),
            Some(TransportVersion::Modern)
        );
        assert_eq!(TransportVersion::from_register(0), None);
        assert_eq!(TransportVersion::from_register(3), None);
        assert_eq!(TransportVersion::Legacy as u32, 1);
        assert_eq!(TransportVersion::Modern as u32, 2);
    }

    #[test]
    fn classify_slots() {
        const VIRT: u32 = 0x7472_6976;
        // QEMU `virt` with `-device virtio-blk-device`: a legacy (v1) block device by
        // default, unless `-global virtio-mmio.force-legacy=false`.
        assert_eq!(
            classify(VIRT, 1, 2),
            SlotState::Device {
                device: DeviceType::Block,
                version: TransportVersion::Legacy
            }
        );
        assert_eq!(
            classify(VIRT, 2, 4),
            SlotState::Device {
                device: DeviceType::Entropy,
                version: TransportVersion::Modern
            }
        );
        // The other slots: right magic and version, device ID 0.
        assert_eq!(classify(VIRT, 1, 0), SlotState::Empty);
        assert_eq!(classify(VIRT, 2, 0), SlotState::Empty);
        // Wrong magic wins over everything else; then the version.
        assert_eq!(classify(0, 2, 2), SlotState::NotVirtio { magic: 0 });
        assert_eq!(
            classify(0xFFFF_FFFF, 1, 0),
            SlotState::NotVirtio { magic: 0xFFFF_FFFF }
        );
        assert_eq!(classify(VIRT, 3, 2), SlotState::UnsupportedVersion(3));
        assert_eq!(classify(VIRT, 0, 0), SlotState::UnsupportedVersion(0));
        assert_eq!(
            classify(VIRT, 2, 200),
            SlotState::Device {
                device: DeviceType::Other(200),
                version: TransportVersion::Modern
            }
        );
    }

    #[test]
    fn slot_display() {
        let virt = MAGIC_VALUE;
        assert_eq!(
            classify(virt, 2, 2).to_string(),
            "block (modern virtio-mmio)"
        );
        assert_eq!(
            classify(virt, 1, 4).to_string(),
            "entropy (legacy virtio-mmio)"
        );
        assert_eq!(classify(virt, 1, 0).to_string(), "empty");
        assert_eq!(
            classify(virt, 7, 2).to_string(),
            "unsupported virtio-mmio version 7"
        );
        assert_eq!(
            classify(0xdead_beef, 2, 2).to_string(),
            "not virtio-mmio (magic 0xdeadbeef, expected 0x74726976)"
        );
    }
}
