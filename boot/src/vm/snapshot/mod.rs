//! Snapshots of the running guest: pausing it ([`pause`]), saving it to the
//! snapshot disk ([`save`]) and resuming a saved guest at boot ([`restore`]). The
//! on-disk format and the decoding of its chunks are `aerie_hyp::snapshot`'s.

mod devices;
mod disk;
mod firmware;
mod pause;
pub mod restore;
mod save;

pub use pause::{Paused, Then, checkpoint, power_off_after, request, requested};
pub use save::take_and_report;

use crate::virtio_probe::OpenDisk;
use aerie_hyp::snapshot::SnapshotError;
use alloc::string::String;
use core::fmt;
use disk::SnapshotDisk;

/// The snapshot disk, once found.
static DISK: crate::sync::Mutex<Option<SnapshotDisk>> = crate::sync::Mutex::new(None);

/// Hands Aerie the snapshot disk (the host disk with serial `aerie-snapshots`).
pub fn install_disk(disk: OpenDisk) {
    *DISK.lock() = Some(SnapshotDisk::new(disk.disk));
}

/// Why a snapshot could not be taken or restored.
pub enum SnapshotFailure {
    /// The machine has no snapshot disk.
    NoDisk,
    /// Reading or writing the snapshot disk failed, or what it holds is damaged.
    Format(SnapshotError),
    /// A device's state could not be saved or put back.
    Device(String),
    /// The snapshot does not fit this machine or its disks (the message says how).
    Mismatch(String),
}

impl From<SnapshotError> for SnapshotFailure {
    fn from(error: SnapshotError) -> Self {
        Self::Format(error)
    }
}

impl fmt::Display for SnapshotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDisk => f.write_str(
                "there is no snapshot disk (a host virtio-blk disk with serial \
                 `aerie-snapshots`; `cargo xtask run --snapshot-disk FILE` attaches one)",
            ),
            Self::Format(error) => write!(f, "{error}"),
            Self::Device(message) | Self::Mismatch(message) => f.write_str(message),
        }
    }
}
