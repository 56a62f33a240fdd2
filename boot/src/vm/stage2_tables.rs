//! The guest's stage-2 translation tables, in frames from Aerie's frame allocator.

use super::GuestRam;
use crate::arch::cache;
use aerie_hyp::guest_layout::{GIC_CPU_INTERFACE, GIC_CPU_INTERFACE_SIZE, IPA_BITS};
use aerie_hyp::memory::Range;
use aerie_hyp::paging::{
    Access, Attributes, Geometry, MapError, MemoryKind, PAGE_SIZE, PageTable, TableMemory,
};
use aerie_hyp::stage2::Stage2;

/// Table pages handed out by the frame allocator.
struct FrameTables;

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
        // SAFETY: as for `read_entry`. The tables are built before any vCPU runs,
        // so no TLB holds an entry that this write could make stale.
        unsafe { core::ptr::write_volatile((table as *mut u64).wrapping_add(index), descriptor) };
    }
}

/// Maps guest RAM (read, write, execute) and, on GICv2 hosts, the host's virtual
/// CPU interface at the guest's GIC CPU-interface address; nothing else. Returns the
/// root table.
pub fn map_guest_memory(ram: &GuestRam, gicv: Option<Range>) -> Result<u64, MapError> {
    let geometry = Geometry {
        start_level: 1,
        input_bits: IPA_BITS,
    };
    let mut tables: PageTable<FrameTables, Stage2> =
        PageTable::with_geometry(FrameTables, geometry)?;
    let attributes = Attributes {
        kind: MemoryKind::Normal,
        access: Access::ReadWriteExecute,
    };
    tables.map(
        ram.guest.start(),
        ram.host_base,
        ram.guest.size(),
        attributes,
    )?;
    if let Some(gicv) = gicv {
        let device = Attributes {
            kind: MemoryKind::Device,
            access: Access::ReadWrite,
        };
        tables.map(
            GIC_CPU_INTERFACE,
            gicv.start(),
            GIC_CPU_INTERFACE_SIZE,
            device,
        )?;
    }
    cache::clean_to_poc(tables.root() as usize, PAGE_SIZE as usize);
    Ok(tables.root())
}
