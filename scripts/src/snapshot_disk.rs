//! The snapshot disk of `cargo xtask run` (`--snapshot-disk`): how large it must be,
//! creating it, and what `--restore` will find on it, checked before QEMU starts.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use aerie_hyp::snapshot::machine::{GicKind, SavedMachine};
use aerie_hyp::snapshot::{SnapshotError, read_snapshot};
use aerie_hyp::units::ByteSize;

use crate::cli::{Gic, RunOptions};
use crate::error::{Context, Error, Result};
use crate::file_disk::FileDisk;

/// One mebibyte.
const MIB: u64 = 1 << 20;

/// Room in each slot beside guest RAM: the vCPU and device states, the metadata, one
/// header sector per chunk. A slot holding all of RAM as one chunk needs only a few
/// hundred KiB beyond it; more chunks (runs of non-zero pages) need fewer bytes, not
/// more, since the zero pages between them are not stored.
pub const SLOT_MARGIN: u64 = 16 * MIB;

/// Room for the superblock and the slot headers in front of the slots.
pub const HEADER_MARGIN: u64 = MIB;

/// The size of a snapshot disk that holds two snapshots (the format's two slots) of a
/// guest with `ram` bytes of RAM, every page of it stored: 2 × (RAM + 16 MiB) + 1 MiB,
/// rounded up to whole MiB.
pub fn size_for(ram: u64) -> u64 {
    let ram = ram.div_ceil(MIB) * MIB;
    2 * (ram + SLOT_MARGIN) + HEADER_MARGIN
}

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The file was missing and has been created, sparse.
    Created,
    /// The file was xtask's own default disk, blank and too small; it was enlarged.
    Enlarged,
    /// The file is large enough.
    Fits,
    /// The file holds snapshot data but is smaller than a snapshot of this guest may
    /// need: it is used anyway (its snapshots are the user's), with this warning.
    SmallButInUse(String),
}

/// Makes `path` ready as the snapshot disk of a guest with `ram` bytes of RAM: creates
/// it sparse at [`size_for`] when missing. An existing file that is too small is
/// refused while it is blank (nothing would be lost by making a larger one), except
/// for xtask's own default disk (`ours`), which is enlarged; one that already holds
/// snapshots is used as it is, with a warning.
pub fn prepare(path: &Path, ram: u64, ours: bool) -> Result<Prepared> {
    let needed = size_for(ram);
    let Ok(metadata) = std::fs::metadata(path) else {
        create_sparse(path, needed)?;
        return Ok(Prepared::Created);
    };
    if !metadata.is_file() {
        return Err(Error::new(format!(
            "{} is not a file: the snapshot disk must be a disk image file",
            path.display()
        )));
    }
    let size = metadata.len();
    if size >= needed {
        return Ok(Prepared::Fits);
    }
    if holds_data(path)? {
        return Ok(Prepared::SmallButInUse(format!(
            "the snapshot disk {} ({}) holds snapshot data but is smaller than a snapshot \
             of this guest's {} of RAM may need ({}); a new snapshot may not fit (Aerie \
             then says so and keeps the old one)",
            path.display(),
            ByteSize(size),
            ByteSize(ram),
            ByteSize(needed)
        )));
    }
    if ours {
        resize(path, needed)?;
        return Ok(Prepared::Enlarged);
    }
    Err(Error::new(format!(
        "the snapshot disk {} is too small for this guest: it has {}, snapshots of {} of \
         RAM need {} (two slots of RAM + 16 MiB, + 1 MiB). It holds nothing yet: enlarge \
         it with `truncate -s {}M {}` (sparse), or delete it and xtask creates it",
        path.display(),
        ByteSize(size),
        ByteSize(ram),
        ByteSize(needed),
        needed / MIB,
        path.display()
    )))
}

/// Whether `path` holds anything where a snapshot disk's superblock goes (its first
/// sector is not all zero). A blank disk has never held a snapshot.
pub fn holds_data(path: &Path) -> Result<bool> {
    let mut first = Vec::with_capacity(512);
    File::open(path)
        .and_then(|file| file.take(512).read_to_end(&mut first))
        .context(|| format!("cannot read the snapshot disk {}", path.display()))?;
    Ok(first.iter().any(|&b| b != 0))
}

/// Creates `path` (and its directory) as a sparse file of `size` bytes.
fn create_sparse(path: &Path, size: u64) -> Result<()> {
    crate::atomic_file::create_sparse(path, size).map(drop)
}

/// Sets the length of the existing file `path` to `size` bytes (sparse).
fn resize(path: &Path, size: u64) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(size))
        .context(|| format!("cannot enlarge the snapshot disk {}", path.display()))
}

/// What the snapshot `--restore` resumes needs of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreShape {
    /// The snapshot's sequence number.
    pub sequence: u64,
    /// Its slot (0 = A, 1 = B).
    pub slot: u8,
    /// The guest's vCPUs.
    pub vcpus: u32,
    /// The guest's RAM in bytes.
    pub ram: u64,
    /// The guest's interrupt controller.
    pub gic: GicKind,
    /// MIDR_EL1 of the CPU the snapshot was taken on.
    pub midr: u64,
}

/// How to take a snapshot onto `path`, for messages.
fn how_to_take(path: &Path) -> String {
    format!(
        "take one with `cargo xtask run --snapshot-disk {} --exec CMD --snapshot` (or \
         interactively: Ctrl-A c, then `snapshot`)",
        path.display()
    )
}

/// Reads the snapshot Aerie will restore from `path` (the newest valid one), through
/// the same code as Aerie, and checks that Aerie can decode it. Any problem is an
/// error that says what is wrong with the file.
pub fn read_for_restore(path: &Path) -> Result<RestoreShape> {
    if !path.exists() {
        return Err(Error::new(format!(
            "there is no snapshot to restore: {} does not exist; {}",
            path.display(),
            how_to_take(path)
        )));
    }
    let disk = FileDisk::open(path)?;
    let snapshot = match read_snapshot(&disk) {
        Ok(snapshot) => snapshot,
        Err(SnapshotError::NotFormatted | SnapshotError::NoSnapshot) => {
            return Err(Error::new(format!(
                "{} holds no snapshot; {}",
                path.display(),
                how_to_take(path)
            )));
        }
        Err(error) => {
            return Err(Error::new(format!(
                "{} holds no snapshot that can be restored: {}{}; `cargo xtask snapshot \
                 list {}` shows its slots",
                path.display(),
                error,
                disk.last_error()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default(),
                path.display()
            )));
        }
    };
    let machine = SavedMachine::from_snapshot(&snapshot).map_err(|error| {
        Error::new(format!(
            "the newest snapshot on {} (number {}, slot {}) cannot be restored: {error}",
            path.display(),
            snapshot.sequence,
            slot_name(snapshot.slot)
        ))
    })?;
    Ok(RestoreShape {
        sequence: snapshot.sequence,
        slot: snapshot.slot,
        vcpus: machine.metadata.vcpus,
        ram: machine.metadata.ram.size,
        gic: machine.metadata.gic,
        midr: machine.metadata.cpu.midr,
    })
}

/// QEMU's CPU models and the MIDR_EL1 each one reports (QEMU 10).
const QEMU_CPU_MODELS: [(u64, &str); 4] = [
    (0x410f_d034, "cortex-a53"),
    (0x411f_d070, "cortex-a57"),
    (0x410f_d083, "cortex-a72"),
    (0x000f_0510, "max"),
];

/// The QEMU `-cpu` model whose CPUs report `midr`, if xtask knows it.
pub fn qemu_cpu_model(midr: u64) -> Option<&'static str> {
    QEMU_CPU_MODELS
        .iter()
        .find(|(known, _)| *known == midr)
        .map(|(_, model)| *model)
}

/// `A` or `B`.
pub fn slot_name(slot: u8) -> char {
    if slot == 0 { 'A' } else { 'B' }
}

/// Sizes the machine for the snapshot: at least its vCPUs, exactly its RAM, its GIC
/// and its CPU model (when the MIDR names one xtask knows), each unless the user gave
/// it (then Aerie checks it, and says what is missing).
pub fn fit_to(options: &mut RunOptions, shape: &RestoreShape) {
    if !options.explicit.cpu
        && let Some(model) = qemu_cpu_model(shape.midr)
    {
        options.cpu = model.to_string();
    }
    if !options.explicit.smp {
        options.smp = options.smp.max(shape.vcpus);
    }
    if !options.explicit.mem {
        options.mem_mib = shape.ram.div_ceil(MIB);
    }
    if !options.explicit.gic {
        match shape.gic {
            GicKind::V3 => options.gic = Gic::V3,
            GicKind::V2 => options.gic = Gic::V2,
            GicKind::None => {}
        }
    }
}

impl std::fmt::Display for RestoreShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "snapshot {} (slot {}): {} vCPU{}, {} of RAM",
            self.sequence,
            slot_name(self.slot),
            self.vcpus,
            if self.vcpus == 1 { "" } else { "s" },
            ByteSize(self.ram)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::{TempDir, snapshot_image};

    #[test]
    fn the_size_holds_two_snapshots_of_all_ram() {
        assert_eq!(size_for(256 * MIB), (2 * (256 + 16) + 1) * MIB);
        assert_eq!(size_for(1024 * MIB), 2081 * MIB);
        // Partial MiB of RAM round up.
        assert_eq!(size_for(MIB + 1), size_for(2 * MIB));
        // A slot of the format (half the disk after 8 sectors) holds RAM stored whole,
        // with a header sector per chunk and the state beside it.
        let slot = (size_for(256 * MIB) - 8 * 512) / 2;
        assert!(slot >= 256 * MIB + SLOT_MARGIN, "{slot}");
    }

    #[test]
    fn a_missing_disk_is_created_sparse() {
        let dir = TempDir::new("snapshot-disk-create");
        let path = dir.path().join("new/s.img");
        assert_eq!(prepare(&path, 256 * MIB, false).unwrap(), Prepared::Created);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 545 * MIB);
        // Sparse: nothing (or next to nothing) is allocated.
        use std::os::unix::fs::MetadataExt;
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 < MIB);
        assert_eq!(prepare(&path, 256 * MIB, false).unwrap(), Prepared::Fits);
    }

    #[test]
    fn a_blank_disk_too_small_is_refused_with_the_size_needed() {
        let dir = TempDir::new("snapshot-disk-small");
        let path = dir.path().join("s.img");
        File::create(&path).unwrap().set_len(64 * MIB).unwrap();
        let message = prepare(&path, 1024 * MIB, false).unwrap_err().to_string();
        assert!(
            message.contains("s.img is too small for this guest: it has 64 MiB, snapshots of 1 GiB of RAM need 2.0 GiB"),
            "{message}"
        );
        assert!(message.contains("truncate -s 2081M "), "{message}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * MIB);
        // xtask's own default disk is simply enlarged.
        assert_eq!(
            prepare(&path, 1024 * MIB, true).unwrap(),
            Prepared::Enlarged
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2081 * MIB);
    }

    #[test]
    fn a_small_disk_with_snapshots_is_used_with_a_warning() {
        let dir = TempDir::new("snapshot-disk-in-use");
        let path = dir.path().join("s.img");
        std::fs::write(&path, snapshot_image(1).image()).unwrap();
        for ours in [false, true] {
            let Prepared::SmallButInUse(warning) = prepare(&path, 256 * MIB, ours).unwrap() else {
                panic!("no warning")
            };
            assert!(
                warning.contains(
                    "s.img (300 KiB) holds snapshot data but is smaller than a \
                                  snapshot of this guest's 256 MiB of RAM may need (545 MiB)"
                ),
                "{warning}"
            );
        }
        // Nothing was changed.
        assert_eq!(std::fs::read(&path).unwrap(), snapshot_image(1).image());
    }

    #[test]
    fn a_directory_is_not_a_disk() {
        let dir = TempDir::new("snapshot-disk-dir");
        let message = prepare(dir.path(), MIB, false).unwrap_err().to_string();
        assert!(message.contains("is not a file"), "{message}");
    }

    #[test]
    fn restore_reads_the_newest_snapshot() {
        let dir = TempDir::new("snapshot-disk-restore");
        let path = dir.path().join("s.img");
        std::fs::write(&path, snapshot_image(2).image()).unwrap();
        let shape = read_for_restore(&path).unwrap();
        assert_eq!(
            shape,
            RestoreShape {
                sequence: 2,
                slot: 1,
                vcpus: 2,
                ram: 128 << 10,
                gic: GicKind::None,
                midr: 0,
            }
        );
        assert_eq!(
            shape.to_string(),
            "snapshot 2 (slot B): 2 vCPUs, 128 KiB of RAM"
        );
    }

    #[test]
    fn restore_refuses_files_without_a_snapshot_before_qemu_starts() {
        let dir = TempDir::new("snapshot-disk-no-snapshot");
        let path = dir.path().join("s.img");
        let missing = read_for_restore(&path).unwrap_err().to_string();
        assert!(
            missing
                .contains("s.img does not exist; take one with `cargo xtask run --snapshot-disk "),
            "{missing}"
        );
        File::create(&path).unwrap().set_len(MIB).unwrap();
        let blank = read_for_restore(&path).unwrap_err().to_string();
        assert!(
            blank.contains(
                "s.img holds no snapshot; take one with `cargo xtask run --snapshot-disk "
            ) && blank.contains(" --exec CMD --snapshot`"),
            "{blank}"
        );
        let mut damaged = snapshot_image(1);
        damaged.flip_bit(8 * 512 + 700, 0);
        std::fs::write(&path, damaged.image()).unwrap();
        let message = read_for_restore(&path).unwrap_err().to_string();
        assert!(
            message
                .contains("s.img holds no snapshot that can be restored: snapshot slot A: chunk 0")
                && message.contains("`cargo xtask snapshot list "),
            "{message}"
        );
        let image = snapshot_image(1);
        std::fs::write(&path, &image.image()[..image.image().len() / 3]).unwrap();
        let message = read_for_restore(&path).unwrap_err().to_string();
        assert!(message.contains("snapshot disk is truncated"), "{message}");
    }

    #[test]
    fn cpu_models_are_known_by_their_midr() {
        assert_eq!(qemu_cpu_model(0x410f_d083), Some("cortex-a72"));
        assert_eq!(qemu_cpu_model(0x000f_0510), Some("max"));
        assert_eq!(qemu_cpu_model(0), None);
    }

    #[test]
    fn the_machine_is_sized_for_the_snapshot_unless_told_otherwise() {
        let shape = RestoreShape {
            sequence: 1,
            slot: 0,
            vcpus: 4,
            ram: 256 * MIB,
            gic: GicKind::V2,
            midr: 0x000f_0510,
        };
        let mut options = RunOptions::default();
        fit_to(&mut options, &shape);
        assert_eq!(
            (
                options.smp,
                options.mem_mib,
                options.gic,
                options.cpu.as_str()
            ),
            (4, 256, Gic::V2, "max")
        );
        // A CPU xtask does not know keeps the default model (Aerie checks it).
        let mut options = RunOptions::default();
        fit_to(
            &mut options,
            &RestoreShape {
                midr: 0x1234,
                ..shape
            },
        );
        assert_eq!(options.cpu, RunOptions::default().cpu);
        // More CPUs than the snapshot's vCPUs are fine; the RAM is exactly the guest's.
        let mut options = RunOptions {
            smp: 8,
            explicit: crate::cli::Explicit {
                smp: true,
                ..Default::default()
            },
            ..RunOptions::default()
        };
        fit_to(&mut options, &RestoreShape { vcpus: 2, ..shape });
        assert_eq!((options.smp, options.mem_mib), (8, 256));
        // What the user gave stays, even if too small: Aerie says what is missing.
        let mut options = RunOptions {
            smp: 1,
            mem_mib: 128,
            gic: Gic::V3,
            cpu: "cortex-a53".into(),
            explicit: crate::cli::Explicit {
                smp: true,
                mem: true,
                gic: true,
                cpu: true,
            },
            ..RunOptions::default()
        };
        fit_to(&mut options, &shape);
        assert_eq!(
            (
                options.smp,
                options.mem_mib,
                options.gic,
                options.cpu.as_str()
            ),
            (1, 128, Gic::V3, "cortex-a53")
        );
        // RAM that is not a whole MiB rounds up.
        let mut options = RunOptions::default();
        fit_to(
            &mut options,
            &RestoreShape {
                ram: 128 << 10,
                gic: GicKind::None,
                ..shape
            },
        );
        assert_eq!((options.mem_mib, options.gic), (1, Gic::V3));
    }
}
