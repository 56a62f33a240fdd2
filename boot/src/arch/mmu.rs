//! Aerie's own address space: an identity map at EL2, built by `aerie_hyp::paging`.
//!
//! RAM is normal write-back memory, never executable; Aerie's code is read-only and
//! executable, its read-only data read-only (SCTLR_EL2.WXN also forbids executing
//! anything writable); device registers Aerie drives are Device-nGnRE; the guard
//! page below each stack and everything else are unmapped, so a stray access (or a
//! stack overflow) faults instead of touching a device or other memory.
//!
//! The tables come from a fixed pool inside Aerie's image (`.boot_page_tables`),
//! which the boot protocol guarantees is clean in the caches.

use super::cache;
use super::cpu;
use crate::memory::ImageLayout;
use aarch64_cpu::registers::{SCTLR_EL2, TCR_EL2};
use aerie_hyp::memory::Range;
use aerie_hyp::paging::{Attributes, El2Stage1, MapError, PAGE_SIZE, PageTable, TableMemory};
use core::arch::asm;

unsafe extern "C" {
    static __boot_page_tables_start: u8;
    static __boot_page_tables_end: u8;
}

/// Hands out the pages of the image's page-table pool.
struct PoolTables {
    next: usize,
    end: usize,
}

impl PoolTables {
    fn new() -> Self {
        let start = &raw const __boot_page_tables_start as usize;
        let end = &raw const __boot_page_tables_end as usize;
        Self { next: start, end }
    }

    fn pages_used(&self) -> usize {
        let start = &raw const __boot_page_tables_start as usize;
        (self.next - start) / PAGE_SIZE as usize
    }
}

impl TableMemory for PoolTables {
    fn allocate_table(&mut self) -> Option<u64> {
        if self.next + PAGE_SIZE as usize > self.end {
            return None;
        }
        let table = self.next;
        self.next += PAGE_SIZE as usize;
        // SAFETY: the pool is a page-aligned region of Aerie's image reserved by the
        // linker script for nothing but these tables, and each page is handed out
        // once, so zeroing it aliases nothing.
        unsafe { core::ptr::write_bytes(table as *mut u8, 0, PAGE_SIZE as usize) };
        Some(table as u64)
    }

    fn read_entry(&self, table: u64, index: usize) -> u64 {
        assert!(index < 512 && (table as usize) < self.next);
        // SAFETY: `table` was returned by `allocate_table` (checked above to be
        // inside the handed-out part of the pool) and `index` is within the page.
        unsafe { core::ptr::read_volatile((table as *const u64).wrapping_add(index)) }
    }

    fn write_entry(&mut self, table: u64, index: usize, descriptor: u64) {
        assert!(index < 512 && (table as usize) < self.next);
        // SAFETY: as for `read_entry`; the table is not yet in use by the MMU when
        // Aerie builds its map, so no TLB maintenance is needed here.
        unsafe { core::ptr::write_volatile((table as *mut u64).wrapping_add(index), descriptor) };
    }
}

/// The system-register values that turn Aerie's address space on, shared with the
/// secondary CPUs.
#[derive(Debug, Clone, Copy)]
pub struct MmuSettings {
    /// TTBR0_EL2.
    pub ttbr0: u64,
    /// TCR_EL2.
    pub tcr: u64,
    /// MAIR_EL2.
    pub mair: u64,
    /// SCTLR_EL2.
    pub sctlr: u64,
    /// Pages of the table pool used.
    pub table_pages: usize,
}

/// What to map besides RAM.
pub struct MapRequest<'r> {
    /// RAM banks.
    pub ram: &'r [Range],
    /// Aerie's image and its sections.
    pub image: ImageLayout,
    /// The device tree blob (mapped read-only if it lies outside RAM).
    pub device_tree: Range,
    /// Device register blocks.
    pub devices: &'r [Range],
    /// Pages left unmapped, so that touching them faults: the guard pages below
    /// each stack.
    pub guards: &'r [Range],
}

/// Why the map could not be built.
#[derive(Debug)]
pub struct MmuError {
    /// What was being mapped.
    pub what: &'static str,
    /// Why it failed.
    pub error: MapError,
}

/// Builds the identity map.
pub fn build(request: &MapRequest<'_>) -> Result<MmuSettings, MmuError> {
    let fail = |what| move |error| MmuError { what, error };
    let mut table: PageTable<PoolTables, El2Stage1> =
        PageTable::new(PoolTables::new()).map_err(fail("the root table"))?;
    let mut map = |range: Range, attributes, what| {
        let Some(range) = page_align_outward(range) else {
            return Ok(());
        };
        table
            .map(range.start(), range.start(), range.size(), attributes)
            .map_err(fail(what))
    };
    for bank in request.ram {
        if let Some(bank) = bank.align_inward(PAGE_SIZE) {
            map(bank, Attributes::DATA, "RAM")?;
        }
    }
    if !request
        .ram
        .iter()
        .any(|bank| bank.covers(&request.device_tree))
    {
        map(
            request.device_tree,
            Attributes::READ_ONLY,
            "the device tree",
        )?;
    }
    for device in request.devices {
        map(*device, Attributes::DEVICE, "device registers")?;
    }
    let image = &request.image;
    map(image.text, Attributes::CODE, "Aerie's code")?;
    map(
        image.read_only,
        Attributes::READ_ONLY,
        "Aerie's read-only data",
    )?;
    map(image.writable, Attributes::DATA, "Aerie's data")?;
    for guard in request.guards {
        table
            .unmap(guard.start(), guard.size())
            .map_err(fail("a stack guard page"))?;
    }
    Ok(MmuSettings {
        ttbr0: table.root(),
        tcr: translation_control(),
        mair: El2Stage1::MAIR,
        sctlr: system_control(),
        table_pages: table.memory().pages_used(),
    })
}

fn page_align_outward(range: Range) -> Option<Range> {
    let start = range.start() & !(PAGE_SIZE - 1);
    let end = range.end().checked_next_multiple_of(PAGE_SIZE)?;
    Range::new(start, end).filter(|r| !r.is_empty())
}

/// TCR_EL2 for 48-bit input addresses, 4 KiB granule, cacheable table walks.
fn translation_control() -> u64 {
    /// TCR_EL2 bits 31 and 23 are RES1 when HCR_EL2.E2H is 0.
    const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);
    /// PARange code for 48 bits, the most a 4 KiB granule reaches without LPA2.
    const PA_48_BITS: u64 = 5;
    let physical = cpu::physical_address_range().min(PA_48_BITS);
    let input_size = 64 - u64::from(aerie_hyp::paging::INPUT_ADDRESS_BITS);
    let tcr = TCR_EL2::T0SZ.val(input_size)
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::SH0::Inner
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::PS.val(physical);
    tcr.value | TCR_EL2_RES1
}

/// SCTLR_EL2 with the MMU, both caches, stack alignment checks and
/// write-implies-execute-never on.
fn system_control() -> u64 {
    /// SCTLR_EL2 bits that are RES1 when HCR_EL2.E2H is 0 (4, 5, 11, 16, 18, 22, 23,
    /// 28, 29).
    const SCTLR_EL2_RES1: u64 = (1 << 4)
        | (1 << 5)
        | (1 << 11)
        | (1 << 16)
        | (1 << 18)
        | (1 << 22)
        | (1 << 23)
        | (1 << 28)
        | (1 << 29);
    let control = SCTLR_EL2::M::Enable
        + SCTLR_EL2::C::Cacheable
        + SCTLR_EL2::SA::Enable
        + SCTLR_EL2::I::Cacheable
        + SCTLR_EL2::WXN::Enable;
    control.value | SCTLR_EL2_RES1
}

/// Turns the MMU on for this CPU.
///
/// # Safety
/// `settings` must come from [`build`], whose identity map covers the code, stack
/// and data in use, and no other CPU may be changing the tables.
pub unsafe fn enable(settings: &MmuSettings, image: &ImageLayout, device_tree: Range) {
    // Memory written with the MMU off (relocations, bss, stack, tables, the device
    // tree's NOP removal) went straight to RAM; drop any stale cached copy before the
    // caches can return it.
    // SAFETY: with the MMU off no Aerie write allocated a dirty line, and the boot
    // protocol requires the loader to have cleaned the image to the PoC.
    unsafe { cache::invalidate_to_poc(image.whole.start() as usize, image.whole.size() as usize) };
    // SAFETY: as above; the protocol requires the same of the device tree.
    unsafe { cache::invalidate_to_poc(device_tree.start() as usize, device_tree.size() as usize) };
    // One sequence by hand: aarch64-cpu has no TLB or instruction-cache maintenance,
    // and nothing may run between the TLB flush and the enable.
    // SAFETY: the caller guarantees the tables map everything in use one-to-one, so
    // execution continues at the same addresses once SCTLR_EL2.M is set; the
    // barriers order the table writes before the walker and the TLB flush before
    // the enable.
    unsafe {
        asm!(
            "msr MAIR_EL2, {mair}",
            "msr TCR_EL2, {tcr}",
            "msr TTBR0_EL2, {ttbr0}",
            "dsb sy",
            "isb",
            "tlbi alle2",
            "dsb nsh",
            "ic iallu",
            "dsb nsh",
            "isb",
            "msr SCTLR_EL2, {sctlr}",
            "isb",
            mair = in(reg) settings.mair,
            tcr = in(reg) settings.tcr,
            ttbr0 = in(reg) settings.ttbr0,
            sctlr = in(reg) settings.sctlr,
            options(nostack),
        );
    }
}
