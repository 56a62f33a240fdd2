//! Why a snapshot's contents cannot be restored.

use alloc::string::String;
use core::fmt;

use super::metadata::DeviceKind;

/// A snapshot whose chunks are intact (every checksum matched) but whose contents do
/// not describe a machine Aerie can restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// No metadata chunk.
    NoMetadata,
    /// More than one metadata chunk.
    DuplicateMetadata,
    /// The metadata chunk's id is not 0.
    MetadataId(u64),
    /// The metadata is unreadable or inconsistent.
    Metadata(MetadataProblem),
    /// A vCPU chunk for an index the metadata does not have.
    UnexpectedVcpu {
        /// The chunk's vCPU index.
        index: u64,
        /// vCPUs the metadata describes.
        vcpus: u32,
    },
    /// Two chunks for the same vCPU.
    DuplicateVcpu(u64),
    /// No chunk for a vCPU the metadata describes.
    MissingVcpu(u32),
    /// A vCPU's state cannot be restored.
    Vcpu {
        /// The vCPU index.
        index: u64,
        /// What is wrong.
        problem: StateProblem,
    },
    /// Every vCPU is off: nothing would run.
    NoVcpuOn,
    /// A device chunk that the metadata does not describe.
    UndescribedDevice(u64),
    /// Two chunks for the same device.
    DuplicateDevice(u64),
    /// A device the metadata describes has no chunk.
    MissingDevice {
        /// The device id (its base address).
        id: u64,
        /// Its described kind.
        kind: DeviceKind,
    },
    /// A device's state cannot be restored.
    Device {
        /// The device id (its base address).
        id: u64,
        /// What is wrong.
        problem: StateProblem,
    },
    /// A stored memory range lies (partly) outside the guest RAM the metadata describes.
    MemoryOutsideRam {
        /// Guest physical address of the range.
        address: u64,
        /// Its length in bytes.
        length: u64,
    },
    /// The metadata's memory summary does not match the memory chunks.
    MemorySummary(&'static str),
}

/// What is wrong with the metadata chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataProblem {
    /// Not the JSON this version writes (serde_json's message, with line and column).
    Json(String),
    /// The `format` field names another format.
    WrongFormat(String),
    /// The vCPU count is 0 or above what Aerie supports.
    VcpuCount(u32),
    /// The RAM layout is empty, unaligned or wraps.
    BadRam,
    /// The counter frequency is 0.
    ZeroCounterFrequency,
    /// A device's id is not its base address.
    DeviceId {
        /// The id.
        id: u64,
        /// The base address.
        base: u64,
    },
    /// A device's register window is empty or wraps.
    DeviceWindow(u64),
    /// Two devices with the same id.
    DuplicateDevice(u64),
    /// A virtio-blk device without a disk identity, or a device other than a
    /// virtio-blk device or a flash bank with one.
    DiskIdentity(u64),
    /// A disk serial too long for virtio-blk or not printable ASCII.
    DiskSerial(u64),
    /// The vGIC devices do not match the `gic` field.
    GicDevices,
    /// The CPU record has this many feature ID registers instead of all of them.
    CpuIdRegisters(usize),
}

/// What is wrong with one vCPU or device state chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateProblem {
    /// The payload is shorter than its version word.
    NoVersion,
    /// Written by a newer Aerie with a state version this one does not know.
    NewerVersion(u32),
    /// Written by an older Aerie, in a state version this one no longer reads.
    OlderVersion(u32),
    /// A state version that no Aerie wrote.
    UnknownVersion(u32),
    /// The bytes do not decode (postcard's message).
    Decode(String),
    /// Bytes left over after the state.
    TrailingBytes(usize),
    /// The device state is of another kind than the metadata describes.
    WrongKind {
        /// The kind the metadata describes.
        described: DeviceKind,
        /// The kind the chunk holds.
        found: DeviceKind,
    },
    /// The state decodes but holds values the vCPU or device cannot have.
    Invalid(String),
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMetadata => f.write_str("the snapshot has no metadata chunk"),
            Self::DuplicateMetadata => f.write_str("the snapshot has more than one metadata chunk"),
            Self::MetadataId(id) => write!(f, "the metadata chunk has id {id}, not 0"),
            Self::Metadata(problem) => write!(f, "snapshot metadata: {problem}"),
            Self::UnexpectedVcpu { index, vcpus } => write!(
                f,
                "the snapshot holds state for vCPU {index}, but its metadata describes {vcpus} vCPUs"
            ),
            Self::DuplicateVcpu(index) => {
                write!(f, "the snapshot holds vCPU {index}'s state twice")
            }
            Self::MissingVcpu(index) => write!(f, "the snapshot has no state for vCPU {index}"),
            Self::Vcpu { index, problem } => write!(f, "vCPU {index} state: {problem}"),
            Self::NoVcpuOn => f.write_str("every vCPU in the snapshot is off"),
            Self::UndescribedDevice(id) => write!(
                f,
                "device at {id:#x}: the snapshot holds its state but its metadata does not describe it"
            ),
            Self::DuplicateDevice(id) => {
                write!(f, "device at {id:#x}: the snapshot holds its state twice")
            }
            Self::MissingDevice { id, kind } => write!(
                f,
                "device at {id:#x} ({kind}): described in the metadata, but its state is missing"
            ),
            Self::Device { id, problem } => write!(f, "device at {id:#x}: {problem}"),
            Self::MemoryOutsideRam { address, length } => write!(
                f,
                "stored memory {address:#x}..{:#x} lies outside the guest RAM",
                address.saturating_add(*length)
            ),
            Self::MemorySummary(what) => write!(f, "snapshot metadata: memory summary: {what}"),
        }
    }
}

impl fmt::Display for MetadataProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(message) => write!(f, "not valid snapshot metadata JSON: {message}"),
            Self::WrongFormat(name) => {
                write!(f, "format {:?} is not {:?}", name, super::FORMAT_NAME)
            }
            Self::VcpuCount(n) => write!(
                f,
                "{n} vCPUs; Aerie supports 1 to {}",
                crate::vcpu::MAX_VCPUS
            ),
            Self::BadRam => f.write_str("the guest RAM is empty, not page-aligned or wraps around"),
            Self::ZeroCounterFrequency => f.write_str("the counter frequency is 0"),
            Self::DeviceId { id, base } => {
                write!(
                    f,
                    "device {id:#x} has base address {base:#x}; they must be equal"
                )
            }
            Self::DeviceWindow(id) => {
                write!(
                    f,
                    "device at {id:#x} has an empty or wrapping register window"
                )
            }
            Self::DuplicateDevice(id) => write!(f, "two devices at {id:#x}"),
            Self::DiskIdentity(id) => write!(
                f,
                "device at {id:#x}: only virtio-blk devices and flash banks have a disk, and \
                 each virtio-blk device has one"
            ),
            Self::DiskSerial(id) => write!(
                f,
                "device at {id:#x}: the disk serial is longer than 20 bytes or not printable ASCII"
            ),
            Self::GicDevices => {
                f.write_str("the vGIC devices do not match the GIC version (exactly one expected)")
            }
            Self::CpuIdRegisters(count) => write!(
                f,
                "the CPU record has {count} feature ID registers; it must have all {}",
                crate::cpu_model::ID_SPACE_SIZE
            ),
        }
    }
}

impl fmt::Display for StateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVersion => f.write_str("too short to hold a state version"),
            Self::NewerVersion(v) => write!(
                f,
                "state version {v} is newer than this Aerie supports ({})",
                super::STATE_VERSION
            ),
            Self::OlderVersion(v) => write!(
                f,
                "state version {v} was written by an older Aerie; this one reads only version {} \
                 (take the snapshot again)",
                super::STATE_VERSION
            ),
            Self::UnknownVersion(v) => write!(f, "unknown state version {v}"),
            Self::Decode(message) => write!(f, "undecodable state ({message})"),
            Self::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the state"),
            Self::WrongKind { described, found } => write!(
                f,
                "the metadata describes a {described}, but the chunk holds {found} state"
            ),
            Self::Invalid(reason) => write!(f, "invalid state: {reason}"),
        }
    }
}
