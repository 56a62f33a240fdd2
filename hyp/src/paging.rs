//! Translation tables with the 4 KiB granule, built over a frame-allocator trait.
//!
//! The builder only computes descriptors: where tables live and how a physical
//! address is read or written is the [`TableMemory`] implementation's business
//! (`boot/` gives it real memory; the tests give it a map).
//!
//! Layout: a [`Geometry`] says at which level the lookup starts and how many input
//! address bits the tables translate: 48 bits from level 0 for Aerie's own map
//! ([`PageTable::new`]), 39 bits from level 1 for a guest's stage 2. Level 1 entries
//! may be 1 GiB blocks, level 2 entries 2 MiB blocks, level 3 entries 4 KiB pages;
//! the geometry's [`Geometry::first_leaf_level`] can forbid blocks (pages only).
//! Mapping picks the largest leaf allowed that fits and splits an existing block
//! when a smaller mapping with different attributes lands inside it. A table that
//! is new and wholly covered by one mapping is filled in one go
//! ([`TableMemory::fill_new_table`]), so mapping a large range page by page costs
//! little more than writing its descriptors.
//!
//! Changing live tables: when an entry that was valid is removed or replaced, the
//! builder follows break-before-make (Arm ARM DDI 0487, "Using
//! break-before-make when updating translation table entries"): it writes an invalid
//! entry, calls [`TableMemory::invalidate`] so a live implementation can remove the
//! old entry from the TLBs, and only then writes the new entry. A change of
//! permissions alone does not need the break (the same section lists permission
//! changes among the updates that are allowed without it): the builder writes the new
//! entry and then calls [`TableMemory::invalidate`]. Entries that were invalid are
//! never cached in TLBs, so filling them needs no invalidation.
//!
//! Two descriptor formats exist: [`El2Stage1`] for Aerie's own map (here) and
//! `crate::stage2::Stage2` for guests; both plug in through [`DescriptorFormat`].

use core::fmt;

/// Bytes in a page (and in a translation table).
pub const PAGE_SIZE: u64 = 4096;
/// Entries in one translation table.
pub const ENTRIES_PER_TABLE: usize = 512;
/// Input addresses of Aerie's own map ([`Geometry::EL2_48_BIT`]) are below
/// `1 << INPUT_ADDRESS_BITS`.
pub const INPUT_ADDRESS_BITS: u32 = 48;
/// Output (physical) addresses must be below `1 << OUTPUT_ADDRESS_BITS`: descriptors
/// of the 4 KiB granule without FEAT_LPA2 hold address bits 47:12.
pub const OUTPUT_ADDRESS_BITS: u32 = 48;

/// Descriptor bit 0: the entry is valid.
const VALID: u64 = 1 << 0;
/// Descriptor bit 1: at levels 0-2 a table (not a block); at level 3 a page.
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Output address bits \[47:12\] of a descriptor.
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// The deepest lookup level.
const LAST_LEVEL: usize = 3;
/// Address bits resolved by the page offset (4 KiB granule).
const PAGE_SHIFT: u32 = 12;
/// Address bits resolved by one table (512 entries).
const BITS_PER_LEVEL: u32 = 9;

/// What kind of memory a mapping is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Normal memory, write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE memory, for MMIO registers.
    Device,
}

/// What accesses a mapping allows. Each [`DescriptorFormat`] decides which it can
/// express: Aerie's own map keeps writable memory non-executable and refuses
/// [`Access::ReadWriteExecute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write, never execute.
    ReadWrite,
    /// Read only, never execute.
    ReadOnly,
    /// Read and execute (code).
    ReadExecute,
    /// Read, write and execute: guest RAM at stage 2, where the guest's own stage 1
    /// decides what is executable.
    ReadWriteExecute,
}

/// The attributes of one mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// Memory type.
    pub kind: MemoryKind,
    /// Permissions.
    pub access: Access,
}

impl Attributes {
    /// Normal read-write data.
    pub const DATA: Self = Self {
        kind: MemoryKind::Normal,
        access: Access::ReadWrite,
    };
    /// Normal read-only data.
    pub const READ_ONLY: Self = Self {
        kind: MemoryKind::Normal,
        access: Access::ReadOnly,
    };
    /// Code.
    pub const CODE: Self = Self {
        kind: MemoryKind::Normal,
        access: Access::ReadExecute,
    };
    /// MMIO registers.
    pub const DEVICE: Self = Self {
        kind: MemoryKind::Device,
        access: Access::ReadWrite,
    };
}

/// Encodes attributes into the leaf descriptor bits of one translation regime.
pub trait DescriptorFormat {
    /// The descriptor bits that only grant or withhold access. Changing only these
    /// bits of a valid entry needs no break-before-make.
    const PERMISSION_BITS: u64;
    /// The attribute bits of a leaf (block or page) descriptor, without the valid,
    /// type and address bits, or [`MapError::UnsupportedAttributes`] when the format
    /// cannot (or must not) express the combination.
    fn leaf_bits(attributes: Attributes) -> Result<u64, MapError>;
    /// The attributes a leaf descriptor's bits describe, if they are ones this
    /// format produces.
    fn attributes(descriptor: u64) -> Option<Attributes>;
}

/// The EL2 stage-1 format (non-VHE: one privilege level, one translation range).
///
/// MAIR_EL2 must hold [`El2Stage1::MAIR`]: attribute index 0 is Device-nGnRE and
/// index 1 is Normal write-back, read/write-allocate. Writable memory is never
/// executable: [`Access::ReadWriteExecute`] is refused.
#[derive(Debug, Clone, Copy)]
pub struct El2Stage1;

impl El2Stage1 {
    /// The MAIR_EL2 value the attribute indices assume.
    pub const MAIR: u64 =
        (MAIR_DEVICE_NGNRE << (8 * DEVICE_INDEX)) | (MAIR_NORMAL_WRITE_BACK << (8 * NORMAL_INDEX));
}

/// MAIR encoding of Device-nGnRE.
const MAIR_DEVICE_NGNRE: u64 = 0x04;
/// MAIR encoding of Normal memory, inner and outer write-back non-transient,
/// read-allocate and write-allocate.
const MAIR_NORMAL_WRITE_BACK: u64 = 0xff;
/// MAIR attribute index for device memory.
const DEVICE_INDEX: u64 = 0;
/// MAIR attribute index for normal memory.
const NORMAL_INDEX: u64 = 1;
/// Stage-1 descriptor AttrIndx field, bits \[4:2\].
const ATTR_INDEX_SHIFT: u32 = 2;
/// Stage-1 AP\[1\], bit 6: RES1 in single-privilege regimes such as EL2.
const AP1_RES1: u64 = 1 << 6;
/// Stage-1 AP\[2\], bit 7: read-only.
const AP2_READ_ONLY: u64 = 1 << 7;
/// Shareability field SH, bits \[9:8\]: 0b11 is inner shareable.
const INNER_SHAREABLE: u64 = 0b11 << 8;
/// The access flag, bit 10: set so the first access does not fault.
const ACCESS_FLAG: u64 = 1 << 10;
/// Execute-never for the single-privilege EL2 regime, bit 54.
const EXECUTE_NEVER: u64 = 1 << 54;

impl DescriptorFormat for El2Stage1 {
    const PERMISSION_BITS: u64 = AP2_READ_ONLY | EXECUTE_NEVER;

    fn leaf_bits(attributes: Attributes) -> Result<u64, MapError> {
        let index = match attributes.kind {
            MemoryKind::Normal => NORMAL_INDEX,
            MemoryKind::Device => DEVICE_INDEX,
        };
        let permissions = match attributes.access {
            Access::ReadWrite => EXECUTE_NEVER,
            Access::ReadOnly => AP2_READ_ONLY | EXECUTE_NEVER,
            Access::ReadExecute => AP2_READ_ONLY,
            Access::ReadWriteExecute => return Err(MapError::UnsupportedAttributes),
        };
        Ok((index << ATTR_INDEX_SHIFT) | AP1_RES1 | INNER_SHAREABLE | ACCESS_FLAG | permissions)
    }

    fn attributes(descriptor: u64) -> Option<Attributes> {
        let kind = match (descriptor >> ATTR_INDEX_SHIFT) & 0b111 {
            NORMAL_INDEX => MemoryKind::Normal,
            DEVICE_INDEX => MemoryKind::Device,
            _ => return None,
        };
        let access = match (
            descriptor & AP2_READ_ONLY != 0,
            descriptor & EXECUTE_NEVER != 0,
        ) {
            (false, true) => Access::ReadWrite,
            (true, true) => Access::ReadOnly,
            (true, false) => Access::ReadExecute,
            (false, false) => return None,
        };
        Some(Attributes { kind, access })
    }
}

/// Where translation tables live. Addresses are physical; tables are
/// [`PAGE_SIZE`]-aligned arrays of [`ENTRIES_PER_TABLE`] descriptors.
///
/// For tables the MMU may already be walking (a running guest's stage 2), the
/// implementation must make each [`TableMemory::write_entry`] visible to the table
/// walker after the writes before it (a release store, or `DMB ISHST` before the
/// store), so that a walker never sees a table entry before the entries of the
/// table it points to, and must do the TLB maintenance in
/// [`TableMemory::invalidate`].
pub trait TableMemory {
    /// A new zero-filled table, or `None` when out of memory.
    fn allocate_table(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at `table`.
    fn read_entry(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write_entry(&mut self, table: u64, index: usize, descriptor: u64);
    /// Writes all [`ENTRIES_PER_TABLE`] entries of `table`, which
    /// [`TableMemory::allocate_table`] just returned and no table entry points to
    /// yet: entry `i` becomes `first + i * step`. No walker can see the table until
    /// the entry pointing to it is written with [`TableMemory::write_entry`], whose
    /// ordering then covers these writes too, so an implementation may write them
    /// without a barrier each. The default writes them one by one.
    fn fill_new_table(&mut self, table: u64, first: u64, step: u64) {
        let mut descriptor = first;
        for index in 0..ENTRIES_PER_TABLE {
            self.write_entry(table, index, descriptor);
            descriptor = descriptor.wrapping_add(step);
        }
    }
    /// Called right after a valid entry was made invalid (unmapped, or the break of
    /// break-before-make) or had its permissions changed. The entry is at `level`
    /// and translated the region that starts at input address `input`. If the MMU
    /// may be using these tables, this must remove every TLB entry for `input` and
    /// wait for the removal to complete before returning (the stage-2 sequence is in
    /// `crate::stage2`). Tables no MMU uses yet need nothing: the default does
    /// nothing.
    fn invalidate(&mut self, input: u64, level: usize) {
        let _ = (input, level);
    }
}

/// Why a mapping request failed. Nothing is half-done on argument errors; on
/// [`MapError::OutOfTables`] the part mapped before the failure stays mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// An address or size is not page-aligned.
    Unaligned,
    /// The range wraps, reaches past the input addresses the tables translate, or
    /// past the 48-bit output address space.
    OutOfRange,
    /// The table allocator is exhausted.
    OutOfTables,
    /// The descriptor format cannot express these attributes (for example
    /// writable and executable memory in Aerie's own map).
    UnsupportedAttributes,
    /// The [`Geometry`] is not one the 4 KiB granule supports.
    UnsupportedGeometry,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned => write!(f, "address or size not page-aligned"),
            Self::OutOfRange => write!(f, "range outside the translated address space"),
            Self::OutOfTables => write!(f, "no memory left for translation tables"),
            Self::UnsupportedAttributes => {
                write!(
                    f,
                    "memory type and permissions not allowed in this translation regime"
                )
            }
            Self::UnsupportedGeometry => write!(
                f,
                "translation table start level and input address size do not fit together"
            ),
        }
    }
}

/// Where a table walk starts and how many input address bits it translates.
///
/// With the 4 KiB granule a level-`n` table resolves 9 address bits; the root table
/// resolves whatever is left above the levels below it, between 1 and 9 bits (no
/// concatenated root tables). So a level-0 root takes 40 to 48 input bits, a level-1
/// root 31 to 39, a level-2 root 22 to 30 (Arm ARM DDI 0487,
/// "Translation table walk", the table of starting levels for the 4 KiB granule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Level of the root table, 0 to 2.
    pub start_level: usize,
    /// Input addresses must be below `1 << input_bits`.
    pub input_bits: u32,
    /// The first level whose entries may be leaves, 1 to 3: 1 allows 1 GiB and
    /// 2 MiB blocks, 2 allows 2 MiB blocks, 3 maps 4 KiB pages only.
    pub first_leaf_level: usize,
}

impl Geometry {
    /// Aerie's own map: 48-bit input addresses, lookup from level 0 (TCR_EL2.T0SZ =
    /// 16).
    pub const EL2_48_BIT: Self = Self {
        start_level: 0,
        input_bits: INPUT_ADDRESS_BITS,
        first_leaf_level: 1,
    };

    /// Whether the 4 KiB granule supports this geometry with one root table (and
    /// leaves no higher than level 1).
    pub const fn is_supported(self) -> bool {
        if self.start_level > 2 || self.first_leaf_level < 1 || self.first_leaf_level > LAST_LEVEL {
            return false;
        }
        let below_root = PAGE_SHIFT + BITS_PER_LEVEL * (LAST_LEVEL - self.start_level) as u32;
        self.input_bits > below_root && self.input_bits <= below_root + BITS_PER_LEVEL
    }
}

/// A translation that [`PageTable::translate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The output (physical) address.
    pub output: u64,
    /// The mapping's attributes.
    pub attributes: Attributes,
    /// The level of the leaf descriptor (1, 2 or 3).
    pub level: usize,
}

/// A translation table tree rooted at one table (see [`Geometry`]).
pub struct PageTable<M, F> {
    root: u64,
    geometry: Geometry,
    memory: M,
    format: core::marker::PhantomData<F>,
}

/// Bytes covered by one entry at `level`.
const fn entry_span(level: usize) -> u64 {
    1 << (PAGE_SHIFT + BITS_PER_LEVEL * (LAST_LEVEL - level) as u32)
}

/// Index of `address` in a table at `level`.
const fn table_index(address: u64, level: usize) -> usize {
    ((address >> (PAGE_SHIFT + BITS_PER_LEVEL * (LAST_LEVEL - level) as u32))
        % ENTRIES_PER_TABLE as u64) as usize
}

/// Whether a descriptor at a level above the last points to a table.
const fn is_table(descriptor: u64, level: usize) -> bool {
    level < LAST_LEVEL && descriptor & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE
}

impl<M: TableMemory, F: DescriptorFormat> PageTable<M, F> {
    /// Allocates an empty root table for 48-bit input addresses, walked from level 0
    /// ([`Geometry::EL2_48_BIT`]).
    pub fn new(memory: M) -> Result<Self, MapError> {
        Self::with_geometry(memory, Geometry::EL2_48_BIT)
    }

    /// Allocates an empty root table for `geometry`.
    pub fn with_geometry(mut memory: M, geometry: Geometry) -> Result<Self, MapError> {
        if !geometry.is_supported() {
            return Err(MapError::UnsupportedGeometry);
        }
        let root = memory.allocate_table().ok_or(MapError::OutOfTables)?;
        Ok(Self {
            root,
            geometry,
            memory,
            format: core::marker::PhantomData,
        })
    }

    /// Physical address of the root table (for TTBR or VTTBR).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The geometry the tables were built for.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The table memory, e.g. to see how much was used.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Maps `[input, input + size)` to `[output, output + size)`, replacing what was
    /// mapped there.
    pub fn map(
        &mut self,
        input: u64,
        output: u64,
        size: u64,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        check_range(input, size, self.geometry.input_bits)?;
        check_range(output, size, OUTPUT_ADDRESS_BITS)?;
        let leaf = F::leaf_bits(attributes)?;
        self.update(
            self.root,
            self.geometry.start_level,
            input,
            size,
            &mut |_, offset| Some(output + offset),
            leaf,
        )
    }

    /// Removes every mapping in `[input, input + size)`. Unmapping where nothing is
    /// mapped allocates nothing.
    pub fn unmap(&mut self, input: u64, size: u64) -> Result<(), MapError> {
        check_range(input, size, self.geometry.input_bits)?;
        self.update(
            self.root,
            self.geometry.start_level,
            input,
            size,
            &mut |_, _| None,
            0,
        )
    }

    /// Walks the tables for `input`.
    pub fn translate(&self, input: u64) -> Option<Translation> {
        if input >> self.geometry.input_bits != 0 {
            return None;
        }
        let mut table = self.root;
        for level in self.geometry.start_level..=LAST_LEVEL {
            let descriptor = self.memory.read_entry(table, table_index(input, level));
            if descriptor & VALID == 0 {
                return None;
            }
            if is_table(descriptor, level) {
                table = descriptor & ADDRESS_MASK;
                continue;
            }
            let span = entry_span(level);
            return Some(Translation {
                output: (descriptor & ADDRESS_MASK & !(span - 1)) | (input & (span - 1)),
                attributes: F::attributes(descriptor)?,
                level,
            });
        }
        None
    }

    /// Sets the leaves for `[input, input + size)` inside `table` at `level`.
    /// `target(input, offset)` gives the output address for the byte `offset` bytes
    /// into the request, or `None` to unmap.
    fn update(
        &mut self,
        table: u64,
        level: usize,
        input: u64,
        size: u64,
        target: &mut dyn FnMut(u64, u64) -> Option<u64>,
        leaf: u64,
    ) -> Result<(), MapError> {
        let span = entry_span(level);
        let mut done = 0;
        while done < size {
            let address = input + done;
            let entry_start = address & !(span - 1);
            let chunk = (entry_start + span - address).min(size - done);
            let index = table_index(address, level);
            let existing = self.memory.read_entry(table, index);
            let output = target(address, done);
            let whole_entry = chunk == span;
            let leaf_allowed = level >= self.geometry.first_leaf_level;
            let aligned = output.is_none_or(|o| o % span == 0);

            if output.is_none() && existing & VALID == 0 {
                // Nothing mapped here: nothing to remove, no table to allocate.
            } else if whole_entry && leaf_allowed && aligned && !is_table(existing, level) {
                let descriptor = match output {
                    Some(o) if level == LAST_LEVEL => o | leaf | VALID | TABLE_OR_PAGE,
                    Some(o) => o | leaf | VALID,
                    None => 0,
                };
                self.replace(table, index, existing, descriptor, entry_start, level);
            } else if level == LAST_LEVEL {
                // Unreachable for page-aligned requests: a level-3 chunk is a page.
                return Err(MapError::Unaligned);
            } else if let Some(o) = output.filter(|o| {
                whole_entry
                    && existing & VALID == 0
                    && level + 1 >= self.geometry.first_leaf_level
                    && o % entry_span(level + 1) == 0
            }) {
                // A new table wholly covered by this mapping: its entries are all
                // leaves, written in one go before the entry pointing to it.
                let next = self.filled_table(level, o | leaf)?;
                self.replace(
                    table,
                    index,
                    existing,
                    next | VALID | TABLE_OR_PAGE,
                    entry_start,
                    level,
                );
            } else {
                let next = self.next_table(table, level, index, existing, entry_start)?;
                let base = done;
                let mut shifted = |a: u64, o: u64| target(a, base + o);
                self.update(next, level + 1, address, chunk, &mut shifted, leaf)?;
            }
            done += chunk;
        }
        Ok(())
    }

    /// Writes `new` over `old` in entry `index` of `table` (at `level`, translating
    /// the region from `input`), with break-before-make when a valid entry changes in
    /// more than its permissions.
    fn replace(&mut self, table: u64, index: usize, old: u64, new: u64, input: u64, level: usize) {
        if old == new {
            return;
        }
        let old_valid = old & VALID != 0;
        let new_valid = new & VALID != 0;
        if old_valid && new_valid && (old ^ new) & !F::PERMISSION_BITS == 0 {
            self.memory.write_entry(table, index, new);
            self.memory.invalidate(input, level);
            return;
        }
        if old_valid {
            self.memory.write_entry(table, index, 0);
            self.memory.invalidate(input, level);
        }
        if new_valid {
            self.memory.write_entry(table, index, new);
        }
    }

    /// The next-level table under entry `index`, creating it (empty, or filled with
    /// the pieces of a block being split) when the entry is not a table yet.
    fn next_table(
        &mut self,
        table: u64,
        level: usize,
        index: usize,
        existing: u64,
        input: u64,
    ) -> Result<u64, MapError> {
        if is_table(existing, level) {
            return Ok(existing & ADDRESS_MASK);
        }
        let next = if existing & VALID != 0 {
            // Split the block into next-level entries with the same attributes.
            self.filled_table(level, existing & !(VALID | TABLE_OR_PAGE))?
        } else {
            self.memory.allocate_table().ok_or(MapError::OutOfTables)?
        };
        // The new table is complete before the entry pointing to it is written; a
        // block becoming a table changes the block size, which needs the break.
        self.replace(
            table,
            index,
            existing,
            next | VALID | TABLE_OR_PAGE,
            input,
            level,
        );
        Ok(next)
    }
}

impl<M: TableMemory, F: DescriptorFormat> PageTable<M, F> {
    /// A new table for the level below `level` whose entries are leaves mapping,
    /// one after the other, the region of one `level` entry: `block` is that
    /// region's output address with the leaf attribute bits (no valid or type bit).
    fn filled_table(&mut self, level: usize, block: u64) -> Result<u64, MapError> {
        let next = self.memory.allocate_table().ok_or(MapError::OutOfTables)?;
        let child_type = if level + 1 == LAST_LEVEL {
            TABLE_OR_PAGE
        } else {
            0
        };
        self.memory
            .fill_new_table(next, block | VALID | child_type, entry_span(level + 1));
        Ok(next)
    }
}

fn check_range(address: u64, size: u64, bits: u32) -> Result<(), MapError> {
    if address % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 {
        return Err(MapError::Unaligned);
    }
    let end = address.checked_add(size).ok_or(MapError::OutOfRange)?;
    if end > 1 << bits {
        return Err(MapError::OutOfRange);
    }
    Ok(())
}

/// Table memory for host tests: tables in a map, with a log of what happened.
#[cfg(test)]
pub(crate) mod test_memory {
    use super::{ENTRIES_PER_TABLE, PAGE_SIZE, TableMemory};
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    /// One thing the table builder did to the memory.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Event {
        /// `write_entry(table, index, descriptor)`.
        Write(u64, usize, u64),
        /// `invalidate(input, level)`.
        Invalidate(u64, usize),
    }

    /// Tables in a map from address to entries, handed out from a fake region.
    pub struct FakeMemory {
        pub tables: BTreeMap<u64, Vec<u64>>,
        pub log: Vec<Event>,
        next: u64,
        limit: usize,
    }

    impl FakeMemory {
        /// Memory for at most `limit` tables.
        pub fn new(limit: usize) -> Self {
            Self {
                tables: BTreeMap::new(),
                log: Vec::new(),
                next: 0x8000_0000,
                limit,
            }
        }
    }

    impl TableMemory for FakeMemory {
        fn allocate_table(&mut self) -> Option<u64> {
            if self.tables.len() == self.limit {
                return None;
            }
            let address = self.next;
            self.next += PAGE_SIZE;
            self.tables.insert(address, vec![0; ENTRIES_PER_TABLE]);
            Some(address)
        }
        fn read_entry(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write_entry(&mut self, table: u64, index: usize, descriptor: u64) {
            self.log.push(Event::Write(table, index, descriptor));
            self.tables.get_mut(&table).unwrap()[index] = descriptor;
        }
        fn invalidate(&mut self, input: u64, level: usize) {
            self.log.push(Event::Invalidate(input, level));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_memory::{Event, FakeMemory};
    use super::*;

    type Table = PageTable<FakeMemory, El2Stage1>;

    fn table() -> Table {
        PageTable::new(FakeMemory::new(64)).unwrap()
    }

    const GIB: u64 = 1 << 30;
    const MIB2: u64 = 2 << 20;

    #[test]
    fn mair_matches_the_architecture_encodings() {
        // Attr0 = 0b0000_0100 (Device-nGnRE), Attr1 = 0b1111_1111 (Normal WB RW-alloc).
        assert_eq!(El2Stage1::MAIR, 0xff04);
    }

    #[test]
    fn leaf_descriptors_have_the_architected_bits() {
        // Normal, RW: AttrIndx=1 (bit 2), AP=0b01 (bit 6), SH=0b11 (bits 8-9), AF (bit
        // 10), XN (bit 54).
        assert_eq!(
            El2Stage1::leaf_bits(Attributes::DATA),
            Ok(1 << 2 | 1 << 6 | 3 << 8 | 1 << 10 | 1 << 54)
        );
        // Code: AP=0b11 (read-only), executable.
        assert_eq!(
            El2Stage1::leaf_bits(Attributes::CODE),
            Ok(1 << 2 | 3 << 6 | 3 << 8 | 1 << 10)
        );
        // Device: AttrIndx=0.
        assert_eq!(
            El2Stage1::leaf_bits(Attributes::DEVICE),
            Ok(1 << 6 | 3 << 8 | 1 << 10 | 1 << 54)
        );
    }

    #[test]
    fn aerie_map_refuses_writable_executable_memory() {
        let rwx = Attributes {
            kind: MemoryKind::Normal,
            access: Access::ReadWriteExecute,
        };
        assert_eq!(
            El2Stage1::leaf_bits(rwx),
            Err(MapError::UnsupportedAttributes)
        );
        let mut t = table();
        assert_eq!(
            t.map(0x4000_0000, 0x4000_0000, MIB2, rwx),
            Err(MapError::UnsupportedAttributes)
        );
        assert!(t.memory().log.is_empty());
        assert_eq!(t.translate(0x4000_0000), None);
    }

    #[test]
    fn large_aligned_ranges_use_gigabyte_and_megabyte_blocks() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, GIB + MIB2, Attributes::DATA)
            .unwrap();
        let first = t.translate(0x4000_1234).unwrap();
        assert_eq!((first.output, first.level), (0x4000_1234, 1));
        let tail = t.translate(0x8000_0000 + 0x10).unwrap();
        assert_eq!((tail.output, tail.level), (0x8000_0010, 2));
        assert_eq!(t.translate(0x8000_0000 + MIB2), None);
        // Root, one level-1 table and one level-2 table.
        assert_eq!(t.memory().tables.len(), 3);
    }

    #[test]
    fn small_mappings_use_pages_and_keep_attributes() {
        let mut t = table();
        t.map(0x0900_0000, 0x0900_0000, 0x1000, Attributes::DEVICE)
            .unwrap();
        let uart = t.translate(0x0900_0ffc).unwrap();
        assert_eq!(
            uart,
            Translation {
                output: 0x0900_0ffc,
                attributes: Attributes::DEVICE,
                level: 3
            }
        );
        assert_eq!(t.translate(0x0900_1000), None);
        assert_eq!(t.translate(0x08ff_f000), None);
    }

    #[test]
    fn mapping_inside_a_block_splits_it() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, GIB, Attributes::DATA)
            .unwrap();
        t.map(0x4020_0000, 0x4020_0000, 0x3000, Attributes::CODE)
            .unwrap();
        let code = t.translate(0x4020_1000).unwrap();
        assert_eq!((code.attributes, code.level), (Attributes::CODE, 3));
        let after = t.translate(0x4020_3000).unwrap();
        assert_eq!(
            (after.output, after.attributes, after.level),
            (0x4020_3000, Attributes::DATA, 3)
        );
        let same_2m_block_neighbour = t.translate(0x4040_0000).unwrap();
        assert_eq!(
            (
                same_2m_block_neighbour.attributes,
                same_2m_block_neighbour.level
            ),
            (Attributes::DATA, 2)
        );
        let far = t.translate(0x7fff_fff8).unwrap();
        assert_eq!(
            (far.output, far.attributes),
            (0x7fff_fff8, Attributes::DATA)
        );
    }

    #[test]
    fn remapping_a_whole_split_region_reuses_its_table() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, MIB2, Attributes::DATA)
            .unwrap();
        t.map(0x4000_0000, 0x4000_0000, 0x1000, Attributes::CODE)
            .unwrap();
        let used = t.memory().tables.len();
        t.map(0x4000_0000, 0x5000_0000, MIB2, Attributes::READ_ONLY)
            .unwrap();
        assert_eq!(t.memory().tables.len(), used);
        let moved = t.translate(0x4000_0008).unwrap();
        assert_eq!(
            (moved.output, moved.attributes),
            (0x5000_0008, Attributes::READ_ONLY)
        );
    }

    #[test]
    fn unaligned_output_falls_back_to_pages() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_1000, MIB2, Attributes::DATA)
            .unwrap();
        let last = t.translate(0x4000_0000 + MIB2 - 8).unwrap();
        assert_eq!((last.output, last.level), (0x4000_1000 + MIB2 - 8, 3));
    }

    #[test]
    fn unmap_removes_pages_and_splits_blocks() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, GIB, Attributes::DATA)
            .unwrap();
        t.unmap(0x4010_0000, 0x1000).unwrap();
        assert_eq!(t.translate(0x4010_0000), None);
        assert!(t.translate(0x4010_1000).is_some());
        assert!(t.translate(0x400f_f000).is_some());
    }

    #[test]
    fn unmapping_nothing_allocates_nothing() {
        let mut t = table();
        t.unmap(0x4000_1000, 0x1000).unwrap();
        t.unmap(0, 1 << 40).unwrap();
        assert_eq!(t.memory().tables.len(), 1);
        assert!(t.memory().log.is_empty());
    }

    #[test]
    fn arguments_are_checked() {
        let mut t = table();
        assert_eq!(
            t.map(0x1001, 0, 0x1000, Attributes::DATA),
            Err(MapError::Unaligned)
        );
        assert_eq!(
            t.map(0, 0, 0x800, Attributes::DATA),
            Err(MapError::Unaligned)
        );
        assert_eq!(
            t.map(1 << 48, 0, 0x1000, Attributes::DATA),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(0, 1 << 48, 0x1000, Attributes::DATA),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(u64::MAX - 0xfff, 0, 0x1000, Attributes::DATA),
            Err(MapError::OutOfRange)
        );
        assert_eq!(t.unmap(1 << 48, 0x1000), Err(MapError::OutOfRange));
        assert_eq!(t.translate(1 << 48), None);
        assert!(t.memory().log.is_empty());
    }

    #[test]
    fn running_out_of_tables_is_an_error() {
        let mut t: Table = PageTable::new(FakeMemory::new(3)).unwrap();
        assert_eq!(
            t.map(0x1000, 0x1000, 0x1000, Attributes::DATA),
            Err(MapError::OutOfTables)
        );
        assert_eq!(
            PageTable::<_, El2Stage1>::new(FakeMemory::new(0)).err(),
            Some(MapError::OutOfTables)
        );
    }

    #[test]
    fn attributes_round_trip() {
        for attributes in [
            Attributes::DATA,
            Attributes::READ_ONLY,
            Attributes::CODE,
            Attributes::DEVICE,
        ] {
            let bits = El2Stage1::leaf_bits(attributes).unwrap() | VALID;
            assert_eq!(El2Stage1::attributes(bits), Some(attributes));
        }
    }

    #[test]
    fn supported_geometries_match_the_4k_granule_starting_levels() {
        let geometry = |start_level, input_bits| Geometry {
            start_level,
            input_bits,
            first_leaf_level: 1,
        };
        // Level 0 root: 40..=48 bits; level 1: 31..=39; level 2: 22..=30.
        for (level, low, high) in [(0, 40, 48), (1, 31, 39), (2, 22, 30)] {
            assert!(geometry(level, low).is_supported());
            assert!(geometry(level, high).is_supported());
            assert!(!geometry(level, low - 1).is_supported());
            assert!(!geometry(level, high + 1).is_supported());
        }
        assert!(!geometry(3, 21).is_supported());
        assert!(!geometry(4, 12).is_supported());
        assert_eq!(Geometry::EL2_48_BIT, geometry(0, 48));
        assert_eq!(
            PageTable::<_, El2Stage1>::with_geometry(FakeMemory::new(4), geometry(1, 40)).err(),
            Some(MapError::UnsupportedGeometry)
        );
    }

    #[test]
    fn a_level_1_root_translates_39_bits() {
        let geometry = Geometry {
            start_level: 1,
            input_bits: 39,
            first_leaf_level: 1,
        };
        let mut t: Table = PageTable::with_geometry(FakeMemory::new(8), geometry).unwrap();
        assert_eq!(t.geometry(), geometry);
        // The last gigabyte below 2^39 is entry 511 of the root: a 1 GiB block there.
        let top = (1 << 39) - GIB;
        t.map(top, 0x1_0000_0000, GIB, Attributes::DATA).unwrap();
        assert_eq!(
            t.memory().tables[&t.root()][511] & ADDRESS_MASK,
            0x1_0000_0000
        );
        let last = t.translate((1 << 39) - 8).unwrap();
        assert_eq!((last.output, last.level), (0x1_3fff_fff8, 1));
        assert_eq!(t.translate(1 << 39), None);
        assert_eq!(
            t.map(1 << 39, 0, 0x1000, Attributes::DATA),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(top, 0, GIB + 0x1000, Attributes::DATA),
            Err(MapError::OutOfRange)
        );
        // Only the root was needed.
        assert_eq!(t.memory().tables.len(), 1);
    }

    #[test]
    fn filling_empty_entries_needs_no_invalidation() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, MIB2 + 0x1000, Attributes::DATA)
            .unwrap();
        assert!(
            t.memory()
                .log
                .iter()
                .all(|event| matches!(event, Event::Write(..)))
        );
    }

    #[test]
    fn splitting_a_block_breaks_before_making() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, MIB2, Attributes::DATA)
            .unwrap();
        let level2 = {
            let m = &t.memory().tables;
            let level1 = m[&t.root()][0] & ADDRESS_MASK;
            m[&level1][1] & ADDRESS_MASK
        };
        let block = t.memory().tables[&level2][0];
        t.memory.log.clear();
        t.map(0x4000_1000, 0x4000_1000, 0x1000, Attributes::READ_ONLY)
            .unwrap();
        let log = &t.memory().log;
        let new_table = t.memory().tables[&level2][0] & ADDRESS_MASK;
        // 512 entries of the new level-3 table, then the break (invalid entry, TLB
        // invalidation of the block), then the table entry, then the page change.
        let children = &log[..ENTRIES_PER_TABLE];
        assert!(
            children
                .iter()
                .all(|e| matches!(e, Event::Write(t, _, _) if *t == new_table))
        );
        assert_eq!(
            children[5],
            Event::Write(
                new_table,
                5,
                (block & !ADDRESS_MASK) | TABLE_OR_PAGE | 0x4000_5000
            )
        );
        assert_eq!(
            log[ENTRIES_PER_TABLE..ENTRIES_PER_TABLE + 3],
            [
                Event::Write(level2, 0, 0),
                Event::Invalidate(0x4000_0000, 2),
                Event::Write(level2, 0, new_table | VALID | TABLE_OR_PAGE),
            ]
        );
        // Read-write to read-only changes permissions only: written, then invalidated.
        let page = El2Stage1::leaf_bits(Attributes::READ_ONLY).unwrap()
            | 0x4000_1000
            | VALID
            | TABLE_OR_PAGE;
        assert_eq!(
            log[ENTRIES_PER_TABLE + 3..],
            [
                Event::Write(new_table, 1, page),
                Event::Invalidate(0x4000_1000, 3),
            ]
        );
    }

    #[test]
    fn moving_a_page_breaks_before_making() {
        let mut t = table();
        t.map(0x4000_0000, 0x4000_0000, 0x1000, Attributes::DATA)
            .unwrap();
        let level3 = {
            let m = &t.memory().tables;
            let l1 = m[&t.root()][0] & ADDRESS_MASK;
            let l2 = m[&l1][1] & ADDRESS_MASK;
            m[&l2][0] & ADDRESS_MASK
        };
        t.memory.log.clear();
        t.map(0x4000_0000, 0x5000_0000, 0x1000, Attributes::DATA)
            .unwrap();
        let page =
            El2Stage1::leaf_bits(Attributes::DATA).unwrap() | 0x5000_0000 | VALID | TABLE_OR_PAGE;
        assert_eq!(
            t.memory().log,
            [
                Event::Write(level3, 0, 0),
                Event::Invalidate(0x4000_0000, 3),
                Event::Write(level3, 0, page),
            ]
        );
        // The same mapping again changes nothing.
        t.memory.log.clear();
        t.map(0x4000_0000, 0x5000_0000, 0x1000, Attributes::DATA)
            .unwrap();
        assert!(t.memory().log.is_empty());
        // Unmapping writes the invalid entry, then invalidates.
        t.unmap(0x4000_0000, 0x1000).unwrap();
        assert_eq!(
            t.memory().log,
            [
                Event::Write(level3, 0, 0),
                Event::Invalidate(0x4000_0000, 3)
            ]
        );
    }
}
