//! `cargo xtask snapshot list|info|verify FILE`: read a snapshot disk image through the
//! same code Aerie restores with (`aerie_hyp::snapshot`).
//!
//! - `list`: one line per slot: empty, valid (sequence, size, chunks, vCPUs, RAM), or
//!   damaged (where and why).
//! - `info`: the newest valid snapshot's description and its chunks by kind.
//! - `verify`: checks the superblock, both slots (every chunk's checksums), decodes
//!   and cross-checks every state chunk as a restore would, and reads all guest memory
//!   back. Succeeds only if at least one valid snapshot exists and no slot is
//!   damaged; empty slots are fine.

use std::path::Path;
use std::process::ExitCode;

use aerie_hyp::snapshot::machine::{MachineError, SavedMachine};
use aerie_hyp::snapshot::{
    ChunkKind, Disk, SECTOR_SIZE, SLOTS, SlotProblem, Snapshot, SnapshotError, read_slot,
    read_snapshot,
};
use aerie_hyp::units::ByteSize;

use crate::cli::{SnapshotAction, SnapshotOptions};
use crate::error::{Error, Result};
use crate::file_disk::FileDisk;
use crate::snapshot_disk::slot_name;

/// Label column width, as in the metadata's own summary.
const LABEL: usize = 14;

/// Runs `cargo xtask snapshot`: prints the report; the exit code says whether it
/// succeeded (for `verify`: whether the disk is sound).
pub fn run(options: &SnapshotOptions) -> Result<ExitCode> {
    let report = inspect(&options.file, options.action)?;
    print!("{}", report.text);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a command found: the text to print and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Lines to print, each ending in a newline.
    pub text: String,
    /// `list` and `info`: the disk could be read; `verify`: the disk is sound.
    pub ok: bool,
}

/// Runs `action` on the disk image `file`.
pub fn inspect(file: &Path, action: SnapshotAction) -> Result<Report> {
    let disk = FileDisk::open(file)?;
    let name = file.display().to_string();
    let result = match action {
        SnapshotAction::List => list(&disk, &name),
        SnapshotAction::Info => info(&disk, &name),
        SnapshotAction::Verify => Ok(verify(&disk, &name)),
    };
    // A failed read of the file says more than "disk I/O error" alone.
    result.map_err(|error| match disk.last_error() {
        Some(io) => Error::new(format!("{error} ({io})")),
        None => error,
    })
}

/// One slot as found.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotState {
    /// Never written, or its header cleared by a write that did not finish.
    Empty,
    /// A snapshot that can be restored.
    Valid(Box<ValidSlot>),
    /// A damaged snapshot: where and what.
    Damaged(String),
}

/// A valid slot's snapshot, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSlot {
    /// The container's view.
    pub snapshot: Snapshot,
    /// The decoded state.
    pub machine: SavedMachine,
}

/// How closely a slot is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Every checksum, and every state chunk decoded (what a restore checks before
    /// it touches anything).
    State,
    /// Also all guest memory read back, its checksums checked again.
    Memory,
}

/// Reads the superblock and both slots. A disk-level problem (not a snapshot disk,
/// bad superblock, truncated file, unreadable) is an error.
fn slots<D: Disk>(disk: &D, depth: Depth) -> std::result::Result<Vec<SlotState>, SnapshotError> {
    (0..SLOTS)
        .map(|slot| inspect_slot(disk, slot, depth))
        .collect()
}

/// Reads one slot.
fn inspect_slot<D: Disk>(
    disk: &D,
    slot: u8,
    depth: Depth,
) -> std::result::Result<SlotState, SnapshotError> {
    let snapshot = match read_slot(disk, slot) {
        Ok(snapshot) => snapshot,
        Err(SnapshotError::Slot {
            problem: SlotProblem::Empty,
            ..
        }) => return Ok(SlotState::Empty),
        Err(SnapshotError::Slot { problem, .. }) => {
            return Ok(SlotState::Damaged(problem.to_string()));
        }
        Err(other) => return Err(other),
    };
    let machine = match SavedMachine::from_snapshot(&snapshot) {
        Ok(machine) => machine,
        Err(error) => {
            return Ok(SlotState::Damaged(format!(
                "snapshot {}: {}{error}",
                snapshot.sequence,
                locate(&snapshot, &error)
            )));
        }
    };
    if depth == Depth::Memory
        && let Err(error) = snapshot.read_memory(disk, |_, _| {})
    {
        let reason = match error {
            SnapshotError::Slot { problem, .. } => problem.to_string(),
            other => other.to_string(),
        };
        return Ok(SlotState::Damaged(format!(
            "snapshot {}: guest memory read back: {reason}",
            snapshot.sequence
        )));
    }
    Ok(SlotState::Valid(Box::new(ValidSlot { snapshot, machine })))
}

/// Where in the slot the chunk a state error is about lies, as `chunk N (KIND, at
/// byte B of the data area): `, if the error names one chunk.
fn locate(snapshot: &Snapshot, error: &MachineError) -> String {
    let target = match *error {
        MachineError::Metadata(_) | MachineError::MetadataId(_) => {
            Some((ChunkKind::Metadata, None))
        }
        MachineError::Vcpu { index, .. } | MachineError::DuplicateVcpu(index) => {
            Some((ChunkKind::Vcpu, Some(index)))
        }
        MachineError::UnexpectedVcpu { index, .. } => Some((ChunkKind::Vcpu, Some(index))),
        MachineError::Device { id, .. }
        | MachineError::DuplicateDevice(id)
        | MachineError::UndescribedDevice(id) => Some((ChunkKind::Device, Some(id))),
        MachineError::MemoryOutsideRam { address, .. } => Some((ChunkKind::Memory, Some(address))),
        _ => None,
    };
    let Some((kind, id)) = target else {
        return String::new();
    };
    let mut offset = 0u64;
    for (index, chunk) in snapshot.chunks().iter().enumerate() {
        if chunk.kind == kind && id.is_none_or(|id| chunk.id == id) {
            return format!("chunk {index} ({kind}, at byte {offset} of the data area): ");
        }
        offset += (1 + chunk.length.div_ceil(SECTOR_SIZE as u64)) * SECTOR_SIZE as u64;
    }
    String::new()
}

/// `list`: one line per slot.
fn list<D: Disk>(disk: &D, name: &str) -> Result<Report> {
    let states = match slots(disk, Depth::State) {
        Ok(states) => states,
        Err(SnapshotError::NotFormatted) => {
            return Ok(Report {
                text: format!("{name}: blank: no snapshot was ever written to it\n"),
                ok: true,
            });
        }
        Err(error) => return Err(disk_error(name, error)),
    };
    let newest = newest(&states);
    let mut text = format!(
        "{name}: Aerie snapshot disk, {}\n",
        ByteSize(disk_bytes(disk))
    );
    for (slot, state) in states.iter().enumerate() {
        let mark = if newest == Some(slot) {
            " (newest)"
        } else {
            ""
        };
        text.push_str(&format!(
            "slot {}: {}{mark}\n",
            slot_name(slot as u8),
            describe(state)
        ));
    }
    Ok(Report { text, ok: true })
}

/// A slot's state in a few words.
fn describe(state: &SlotState) -> String {
    match state {
        SlotState::Empty => "empty".into(),
        SlotState::Damaged(reason) => format!("damaged: {reason}"),
        SlotState::Valid(valid) => {
            let (snapshot, metadata) = (&valid.snapshot, &valid.machine.metadata);
            format!(
                "valid: snapshot {}, {} in {} chunks, {} vCPU{}, {} of RAM",
                snapshot.sequence,
                ByteSize(snapshot.length),
                snapshot.chunks().len(),
                metadata.vcpus,
                if metadata.vcpus == 1 { "" } else { "s" },
                ByteSize(metadata.ram.size)
            )
        }
    }
}

/// The index of the valid slot with the highest sequence number.
fn newest(states: &[SlotState]) -> Option<usize> {
    states
        .iter()
        .enumerate()
        .filter_map(|(slot, state)| match state {
            SlotState::Valid(valid) => Some((valid.snapshot.sequence, slot)),
            _ => None,
        })
        .max()
        .map(|(_, slot)| slot)
}

/// `info`: the snapshot a restore would resume, described.
fn info<D: Disk>(disk: &D, name: &str) -> Result<Report> {
    let snapshot = read_snapshot(disk).map_err(|error| match error {
        SnapshotError::NotFormatted | SnapshotError::NoSnapshot => {
            Error::new(format!("{name} holds no snapshot"))
        }
        error => disk_error(name, error),
    })?;
    let machine = SavedMachine::from_snapshot(&snapshot).map_err(|error| {
        Error::new(format!(
            "{name}: the newest snapshot ({}, slot {}) cannot be restored: {}{error}",
            snapshot.sequence,
            slot_name(snapshot.slot),
            locate(&snapshot, &error)
        ))
    })?;
    let mut text = format!(
        "{:LABEL$}{} in slot {} of {name}, {}\n",
        "snapshot",
        snapshot.sequence,
        slot_name(snapshot.slot),
        ByteSize(snapshot.length)
    );
    text.push_str(&format!("{}\n", machine.metadata));
    text.push_str(&chunk_summary(&snapshot));
    Ok(Report { text, ok: true })
}

/// The chunks by kind: how many, and their payload bytes.
fn chunk_summary(snapshot: &Snapshot) -> String {
    let chunks = snapshot.chunks();
    let total: u64 = chunks.iter().map(|c| c.length).sum();
    let mut text = format!(
        "{:LABEL$}{}, {} of payload\n",
        "chunks",
        chunks.len(),
        ByteSize(total)
    );
    for kind in [
        ChunkKind::Metadata,
        ChunkKind::Vcpu,
        ChunkKind::Device,
        ChunkKind::Memory,
    ] {
        let of_kind: Vec<u64> = chunks
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.length)
            .collect();
        text.push_str(&format!(
            "  {:width$}{}, {}\n",
            kind.to_string(),
            of_kind.len(),
            ByteSize(of_kind.iter().sum()),
            width = LABEL - 2
        ));
    }
    text
}

/// `verify`: every check there is.
fn verify<D: Disk>(disk: &D, name: &str) -> Report {
    let states = match slots(disk, Depth::Memory) {
        Ok(states) => states,
        Err(SnapshotError::NotFormatted) => {
            return Report {
                text: format!(
                    "{name}: FAILED: no snapshot: the disk is blank (no snapshot was ever \
                     written to it)\n"
                ),
                ok: false,
            };
        }
        Err(error) => {
            return Report {
                text: format!("{name}: FAILED: {error}\n"),
                ok: false,
            };
        }
    };
    let mut text = format!("{name}: superblock ok\n");
    for (slot, state) in states.iter().enumerate() {
        let detail = match state {
            SlotState::Valid(valid) => format!(
                "; every chunk checked, {} of guest memory read back",
                ByteSize(valid.snapshot.stored_memory())
            ),
            _ => String::new(),
        };
        text.push_str(&format!(
            "slot {}: {}{detail}\n",
            slot_name(slot as u8),
            describe(state)
        ));
    }
    let damaged: Vec<char> = states
        .iter()
        .enumerate()
        .filter(|(_, state)| matches!(state, SlotState::Damaged(_)))
        .map(|(slot, _)| slot_name(slot as u8))
        .collect();
    let newest = newest(&states);
    let ok = damaged.is_empty() && newest.is_some();
    let verdict = match (newest, damaged.as_slice()) {
        (Some(slot), []) => {
            let SlotState::Valid(valid) = &states[slot] else {
                unreachable!("newest() returns valid slots only")
            };
            format!(
                "ok: snapshot {} (slot {}) can be restored",
                valid.snapshot.sequence,
                slot_name(slot as u8)
            )
        }
        (None, []) => "FAILED: no snapshot: both slots are empty".to_string(),
        (_, damaged) => format!(
            "FAILED: slot {} damaged",
            damaged
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    };
    text.push_str(&format!("{name}: {verdict}\n"));
    Report { text, ok }
}

/// A disk-level problem as an error naming the file.
fn disk_error(name: &str, error: SnapshotError) -> Error {
    Error::new(format!("{name}: {error}"))
}

/// The disk's size in bytes.
fn disk_bytes<D: Disk>(disk: &D) -> u64 {
    disk.sectors() * disk.sector_size() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::{TempDir, snapshot_image};
    use aerie_hyp::snapshot::MemoryDisk;

    /// Writes `disk` to a file in `dir` and runs `action` on it.
    fn run_on(dir: &TempDir, name: &str, bytes: &[u8], action: SnapshotAction) -> Result<Report> {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        inspect(&path, action)
    }

    fn lines(report: &Report) -> Vec<&str> {
        report.text.lines().collect()
    }

    #[test]
    fn a_good_file_passes() {
        let dir = TempDir::new("snapshot-tool-good");
        let disk = snapshot_image(2);
        let report = run_on(&dir, "s.img", disk.image(), SnapshotAction::Verify).unwrap();
        assert!(report.ok, "{}", report.text);
        let text = lines(&report);
        assert!(text[0].ends_with("s.img: superblock ok"), "{text:?}");
        assert!(
            text[1].starts_with("slot A: valid: snapshot 1, "),
            "{text:?}"
        );
        assert!(text[1].contains("every chunk checked, 20 KiB of guest memory read back"));
        assert!(
            text[2].starts_with("slot B: valid: snapshot 2, "),
            "{text:?}"
        );
        assert!(
            text[3].ends_with("ok: snapshot 2 (slot B) can be restored"),
            "{text:?}"
        );
    }

    #[test]
    fn list_shows_each_slot() {
        let dir = TempDir::new("snapshot-tool-list");
        let disk = snapshot_image(1);
        let length = ByteSize(read_snapshot(&disk).unwrap().length);
        let report = run_on(&dir, "s.img", disk.image(), SnapshotAction::List).unwrap();
        assert!(report.ok);
        let text = lines(&report);
        assert!(
            text[0].ends_with("s.img: Aerie snapshot disk, 300 KiB"),
            "{text:?}"
        );
        assert_eq!(
            text[1],
            format!(
                "slot A: valid: snapshot 1, {length} in 9 chunks, 2 vCPUs, 128 KiB of RAM \
                 (newest)"
            )
        );
        assert_eq!(text[2], "slot B: empty");
        assert_eq!(text.len(), 3);
    }

    #[test]
    fn info_describes_the_newest_snapshot() {
        let dir = TempDir::new("snapshot-tool-info");
        let report = run_on(
            &dir,
            "s.img",
            snapshot_image(2).image(),
            SnapshotAction::Info,
        )
        .unwrap();
        let text = &report.text;
        assert!(text.starts_with("snapshot      2 in slot B of "), "{text}");
        assert!(text.contains("\nvCPUs         2\n"), "{text}");
        assert!(
            text.contains("\nRAM           128 KiB at 0x40000000..0x40020000\n"),
            "{text}"
        );
        assert!(text.contains("\nchunks        9, "), "{text}");
        assert!(text.contains("\n  metadata    1, "), "{text}");
        assert!(text.contains("\n  vcpu        2, "), "{text}");
        assert!(text.contains("\n  device      2, "), "{text}");
        assert!(text.contains("\n  memory      4, 20 KiB\n"), "{text}");
    }

    #[test]
    fn a_flipped_byte_fails_and_says_where() {
        let dir = TempDir::new("snapshot-tool-flip");
        let mut disk = snapshot_image(2);
        // A byte in slot B's last memory chunk (chunk 7: the metadata comes last).
        let snapshot = read_snapshot(&disk).unwrap();
        let chunks = snapshot.chunks();
        let last = chunks
            .iter()
            .rposition(|c| c.kind == ChunkKind::Memory)
            .unwrap();
        assert_eq!(last, 7);
        let offset = chunks[last].payload_sector as usize * SECTOR_SIZE + 100;
        disk.flip_bit(offset, 3);
        let report = run_on(&dir, "s.img", disk.image(), SnapshotAction::Verify).unwrap();
        assert!(!report.ok, "{}", report.text);
        let text = lines(&report);
        assert!(text[1].starts_with("slot A: valid: snapshot 1"), "{text:?}");
        assert!(
            text[2].starts_with("slot B: damaged: chunk 7 (at byte ")
                && text[2].ends_with("of the data area): payload checksum mismatch"),
            "{text:?}"
        );
        assert!(text[3].ends_with("FAILED: slot B damaged"), "{text:?}");
        // list says the same, and still succeeds: it only lists.
        let report = run_on(&dir, "s.img", disk.image(), SnapshotAction::List).unwrap();
        assert!(report.ok);
        assert!(report.text.contains("slot A: valid: snapshot 1, "));
        assert!(report.text.contains("(newest)"));
        assert!(report.text.contains("slot B: damaged: chunk 7"));
    }

    #[test]
    fn every_flipped_state_byte_is_found() {
        let dir = TempDir::new("snapshot-tool-flips");
        let good = snapshot_image(1);
        let snapshot = read_snapshot(&good).unwrap();
        let data = 8 * SECTOR_SIZE;
        let used = data + snapshot.length as usize;
        // Every 97th byte of the superblock, both slot headers and slot A's data.
        for offset in (0..3 * SECTOR_SIZE).chain(data..used).step_by(97) {
            let mut disk = good.clone();
            disk.flip_bit(offset, (offset % 8) as u32);
            if disk.image() == good.image() {
                continue;
            }
            let report = run_on(&dir, "s.img", disk.image(), SnapshotAction::Verify).unwrap();
            assert!(!report.ok, "flip at {offset} passed:\n{}", report.text);
        }
    }

    #[test]
    fn a_truncated_file_fails() {
        let dir = TempDir::new("snapshot-tool-truncated");
        let disk = snapshot_image(2);
        let image = disk.image();
        let report = run_on(
            &dir,
            "s.img",
            &image[..image.len() / 2],
            SnapshotAction::Verify,
        )
        .unwrap();
        assert!(!report.ok);
        assert!(
            report
                .text
                .contains("FAILED: snapshot disk is truncated: the format needs"),
            "{}",
            report.text
        );
        let error = run_on(
            &dir,
            "s.img",
            &image[..image.len() / 2],
            SnapshotAction::List,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("s.img: snapshot disk is truncated"),
            "{error}"
        );
        // Cut inside the superblock: not even a sector left.
        let report = run_on(&dir, "s.img", &image[..300], SnapshotAction::Verify).unwrap();
        assert!(!report.ok);
        assert!(report.text.contains("FAILED: "), "{}", report.text);
    }

    #[test]
    fn a_blank_file_says_no_snapshot() {
        let dir = TempDir::new("snapshot-tool-blank");
        let blank = vec![0u8; 64 * SECTOR_SIZE];
        let report = run_on(&dir, "s.img", &blank, SnapshotAction::Verify).unwrap();
        assert!(!report.ok);
        assert!(
            report.text.contains("FAILED: no snapshot"),
            "{}",
            report.text
        );
        let report = run_on(&dir, "s.img", &blank, SnapshotAction::List).unwrap();
        assert!(report.ok);
        assert!(report.text.contains("blank: no snapshot was ever written"));
        let error = run_on(&dir, "s.img", &blank, SnapshotAction::Info)
            .unwrap_err()
            .to_string();
        assert!(error.ends_with("s.img holds no snapshot"), "{error}");
    }

    #[test]
    fn a_formatted_disk_without_snapshots_fails_verify() {
        let dir = TempDir::new("snapshot-tool-formatted");
        let mut disk = MemoryDisk::new(600);
        aerie_hyp::snapshot::format(&mut disk).unwrap();
        let report = run_on(&dir, "s.img", disk.image(), SnapshotAction::Verify).unwrap();
        assert!(!report.ok);
        assert!(
            report.text.contains("slot A: empty\nslot B: empty\n"),
            "{}",
            report.text
        );
        assert!(
            report
                .text
                .contains("FAILED: no snapshot: both slots are empty")
        );
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = TempDir::new("snapshot-tool-foreign");
        let mut foreign = vec![0u8; 64 * SECTOR_SIZE];
        foreign[..4].copy_from_slice(b"\x7fELF");
        let report = run_on(&dir, "s.img", &foreign, SnapshotAction::Verify).unwrap();
        assert!(!report.ok);
        assert!(
            report
                .text
                .contains("FAILED: snapshot disk superblock: not an Aerie snapshot disk"),
            "{}",
            report.text
        );
        let missing = inspect(&dir.path().join("none.img"), SnapshotAction::List)
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("cannot open "), "{missing}");
    }
}
