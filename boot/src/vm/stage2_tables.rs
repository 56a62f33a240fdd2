//! The guest's stage-2 translation tables, in frames from Aerie's frame allocator.

use super::GuestRam;
use crate::arch::{cache, stage2_ops};
use aerie_hyp::guest_layout::{GIC_CPU_INTERFACE, GIC_CPU_INTERFACE_SIZE};
use aerie_hyp::memory::Range;
use aerie_hyp::paging::{ENTRIES_PER_TABLE, MapError, PAGE_SIZE, TableMemory};
use aerie_hyp::stage2::{self, Leaves};

/// Table pages handed out by the frame allocator.
pub struct FrameTables;

/// The guest's stage-2 tables, kept for changes while the guest runs (the flash
/// banks are mapped and unmapped as they enter and leave read-array mode).
pub type GuestTables = stage2::Stage2Table<FrameTables>;

impl TableMemory for FrameTables {
    fn allocate_table(&mut self) -> Option<u64> {
        // Frames come zeroed; the walker reads tables through the caches (VTCR_EL2
        // says write-back, inner shareable), so no cache maintenance is needed.
        super::allocate_table_frame()
    }

    fn read_entry(&self, table: u64, index: usize) -> u64 {
        assert!(index < 512 && table % PAGE_SIZE == 0);
        // SAFETY: `table` is a frame this allocator handed out (identity-mapped,
        // owned by the VM's tables) and `index` is inside it.
        unsafe { core::ptr::read_volatile((table as *const u64).wrapping_add(index)) }
    }

    fn write_entry(&mut self, table: u64, index: usize, descriptor: u64) {
        assert!(index < 512 && table % PAGE_SIZE == 0);
        // The entries written before (a new table's) reach the table walkers first.
        aarch64_cpu::asm::barrier::dmb(aarch64_cpu::asm::barrier::ISHST);
        // SAFETY: as for `read_entry`. An entry a TLB may hold is changed through
        // `PageTable`'s break-before-make, which calls `invalidate` after the break.
        unsafe { core::ptr::write_volatile((table as *mut u64).wrapping_add(index), descriptor) };
    }

    fn fill_new_table(&mut self, table: u64, first: u64, step: u64) {
        assert!(table % PAGE_SIZE == 0);
        // SAFETY: `table` is a frame this allocator just handed out (identity-mapped,
        // page-aligned, owned by the VM's tables), so it is 512 writable entries
        // nothing else refers to. No table entry points to it yet, so no walker
        // reads it: plain stores suffice, and `write_entry`'s barrier orders them
        // before the entry that will point to it.
        let entries =
            unsafe { core::slice::from_raw_parts_mut(table as *mut u64, ENTRIES_PER_TABLE) };
        let mut descriptor = first;
        for entry in entries {
            *entry = descriptor;
            descriptor = descriptor.wrapping_add(step);
        }
    }

    fn invalidate(&mut self, input: u64, _level: usize) {
        // A block's entries are tagged by any IPA in it; the block's first page
        // names it (TLBI IPAS2E1IS removes every entry that translates that IPA).
        stage2_ops::invalidate_ipa(input);
    }
}

/// Maps guest RAM (read, write, execute; with blocks or pages as `leaves` says) and,
/// on GICv2 hosts, the host's virtual CPU interface at the guest's GIC CPU-interface
/// address; nothing else (the flash banks of a firmware guest are mapped by
/// [`super::flash`]). Returns the tables.
pub fn map_guest_memory(
    ram: &GuestRam,
    gicv: Option<Range>,
    leaves: Leaves,
) -> Result<GuestTables, MapError> {
    let mut tables = stage2::new_table(FrameTables, leaves)?;
    tables.map(
        ram.guest.start(),
        ram.host_base,
        ram.guest.size(),
        stage2::GUEST_RAM,
    )?;
    if let Some(gicv) = gicv {
        tables.map(
            GIC_CPU_INTERFACE,
            gicv.start(),
            GIC_CPU_INTERFACE_SIZE,
            stage2::PASSTHROUGH_DEVICE,
        )?;
    }
    cache::clean_to_poc(tables.root() as usize, PAGE_SIZE as usize);
    Ok(tables)
}
