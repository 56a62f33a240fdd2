//! A firmware guest's two flash banks (see `aerie_hyp::firmware`): host memory
//! behind each bank, the variable store's host disk, and the bank's stage-2
//! mapping, which follows the bank's mode: mapped read-only (code runs in place,
//! reads run natively) in read-array mode, unmapped (every access reaches the CFI
//! model) otherwise.

use super::stage2_tables::GuestTables;
use super::{GuestRam, Vm};
use crate::arch::stage2_ops;
use crate::virtio_probe::OpenDisk;
use aerie_devices::cfi_flash::{CfiFlash, FlashArray};
use aerie_hyp::firmware::BACKING_ALIGN;
use aerie_hyp::memory::Range;
use aerie_hyp::paging::{Access, Attributes, MapError, MemoryKind, PAGE_SIZE};
use alloc::vec;

/// A bank as the guest sees it: read and run, never written through stage 2.
const BANK_ATTRIBUTES: Attributes = Attributes {
    kind: MemoryKind::Normal,
    access: Access::ReadExecute,
};
/// The host disk's sector size.
const SECTOR: u64 = 512;
/// Bytes written to the disk per request when a block is erased.
const DISK_CHUNK: u64 = 64 << 10;

/// Host memory behind one bank, and the host disk that keeps it (the variable
/// store), if any.
pub struct HostFlash {
    /// The backed part of the bank: guest addresses from the bank's base, and the
    /// host memory holding them.
    memory: GuestRam,
    /// The disk every change is written through to.
    disk: Option<OpenDisk>,
    /// Whether the bank is mapped into the guest now.
    mapped: bool,
}

impl HostFlash {
    /// `size` bytes of zeroed host memory, 2 MiB aligned, for the bank at guest
    /// address `base`; `None` when Aerie has no such memory left.
    pub fn allocate(base: u64, size: u64, disk: Option<OpenDisk>) -> Option<Self> {
        // The frame allocator is a buddy allocator: a power-of-two block of frames
        // is aligned to its size.
        let block = size.next_power_of_two().max(BACKING_ALIGN);
        let frames = crate::memory::allocate_frames((block / PAGE_SIZE) as usize)?;
        let host_base = frames.start();
        if host_base % BACKING_ALIGN != 0 {
            crate::memory::free_frames(frames);
            return None;
        }
        Some(Self {
            memory: GuestRam {
                guest: Range::from_start_size(base, size)?,
                host_base,
            },
            disk,
            mapped: false,
        })
    }

    /// The bank's host memory, to load it before the guest runs.
    pub fn memory(&self) -> &GuestRam {
        &self.memory
    }

    /// Fills the bank from its disk; a bank without a disk stays as it is.
    pub fn load_from_disk(&mut self) -> Result<(), alloc::string::String> {
        let Some(open) = &mut self.disk else {
            return Ok(());
        };
        let mut chunk = vec![0u8; DISK_CHUNK as usize];
        let mut offset = 0;
        while offset < self.memory.guest.size() {
            let length = DISK_CHUNK.min(self.memory.guest.size() - offset) as usize;
            open.disk
                .read(offset / SECTOR, &mut chunk[..length])
                .map_err(|e| alloc::format!("cannot read the flash variable store: {e}"))?;
            self.memory
                .write(self.memory.guest.start() + offset, &chunk[..length]);
            offset += length as u64;
        }
        Ok(())
    }

    /// Writes the sectors holding `[offset, offset + size)` of the bank to its disk.
    fn persist(&mut self, offset: u64, size: u64) {
        let Some(open) = &mut self.disk else {
            return;
        };
        let start = offset - offset % SECTOR;
        let end = (offset + size).next_multiple_of(SECTOR);
        let mut chunk = vec![0u8; DISK_CHUNK.min(end - start) as usize];
        let mut at = start;
        while at < end {
            let length = DISK_CHUNK.min(end - at) as usize;
            let _ = self
                .memory
                .read(self.memory.guest.start() + at, &mut chunk[..length]);
            if let Err(error) = open.disk.write(at / SECTOR, &chunk[..length]) {
                log::warn!(
                    "flash variable store: cannot write sector {}: {error}",
                    at / SECTOR
                );
                return;
            }
            at += length as u64;
        }
    }
}

impl FlashArray for HostFlash {
    fn backed_size(&self) -> u64 {
        self.memory.guest.size()
    }

    fn read(&self, offset: u64, out: &mut [u8]) {
        let _ = self.memory.read(self.memory.guest.start() + offset, out);
    }

    fn program(&mut self, offset: u64, data: &[u8]) {
        let _ = self.memory.write(self.memory.guest.start() + offset, data);
        self.persist(offset, data.len() as u64);
    }

    fn erase(&mut self, offset: u64, size: u64) {
        let erased = vec![0xffu8; DISK_CHUNK as usize];
        let mut at = offset;
        while at < offset + size {
            let length = DISK_CHUNK.min(offset + size - at) as usize;
            let _ = self
                .memory
                .write(self.memory.guest.start() + at, &erased[..length]);
            at += length as u64;
        }
        self.persist(offset, size);
    }
}

/// A bank on the bus.
pub type GuestFlash = CfiFlash<HostFlash>;

/// Maps `bank` into the guest if it is in read-array mode and not mapped, or unmaps
/// it if it left read-array mode; the caller holds the bus lock, so the mapping and
/// the bank's mode change together for every vCPU.
pub fn follow_mode(tables: &mut GuestTables, bank: &mut GuestFlash) -> Result<(), MapError> {
    let wanted = bank.in_read_array();
    let array = bank.array_mut();
    if array.mapped == wanted || array.memory.guest.size() == 0 {
        return Ok(());
    }
    let guest = array.memory.guest;
    if wanted {
        tables.map(
            guest.start(),
            array.memory.host_base,
            guest.size(),
            BANK_ATTRIBUTES,
        )?;
        stage2_ops::publish_entries();
    } else {
        tables.unmap(guest.start(), guest.size())?;
    }
    array.mapped = wanted;
    Ok(())
}

/// [`follow_mode`] for the bank the guest just wrote to.
pub fn after_write(vm: &Vm, bank: &mut GuestFlash) {
    if let Err(error) = follow_mode(&mut vm.stage2.lock(), bank) {
        log::warn!("flash bank: cannot change its stage-2 mapping: {error}");
    }
}

/// [`follow_mode`] for every bank of a restored VM, whose banks' modes were just put
/// back: a bank saved outside read-array mode is unmapped again.
pub fn follow_restored_modes(vm: &Vm) -> Result<(), MapError> {
    let mut bus = vm.bus.lock();
    for (_, _, device) in bus.iter_mut() {
        if let Some(bank) = device.flash_mut() {
            follow_mode(&mut vm.stage2.lock(), bank)?;
        }
    }
    Ok(())
}
