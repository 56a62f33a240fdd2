//! Translation tables with the 4 KiB granule, built over a frame-allocator trait.
//!
//! The builder only computes descriptors: where tables live and how a physical
//! address is read or written is the [`TableMemory`] implementation's business
//! (`boot/` gives it real memory; the tests give it a map). Changing tables that the
//! MMU is already using also needs TLB maintenance, which is the caller's job.
//!
//! Layout: 48-bit input addresses, lookup from level 0. Level 1 entries may be 1 GiB
//! blocks, level 2 entries 2 MiB blocks, level 3 entries 4 KiB pages. Mapping picks the
//! largest block that fits and splits an existing block when a smaller mapping with
//! different attributes lands inside it.
//!
//! Only the EL2 stage-1 descriptor format ([`El2Stage1`]) exists today; the stage-2
//! format for guests plugs in through [`DescriptorFormat`].

use core::fmt;

/// Bytes in a page (and in a translation table).
pub const PAGE_SIZE: u64 = 4096;
/// Entries in one translation table.
pub const ENTRIES_PER_TABLE: usize = 512;
/// Input addresses must be below `1 << INPUT_ADDRESS_BITS`.
pub const INPUT_ADDRESS_BITS: u32 = 48;

/// Descriptor bit 0: the entry is valid.
const VALID: u64 = 1 << 0;
/// Descriptor bit 1: at levels 0-2 a table (not a block); at level 3 a page.
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Output address bits [47:12] of a descriptor.
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// The deepest lookup level.
const LAST_LEVEL: usize = 3;

/// What kind of memory a mapping is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Normal memory, write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE memory, for MMIO registers.
    Device,
}

/// What accesses a mapping allows. Writable memory is never executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write, never execute.
    ReadWrite,
    /// Read only, never execute.
    ReadOnly,
    /// Read and execute (code).
    ReadExecute,
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
    /// The attribute bits of a leaf (block or page) descriptor, without the valid,
    /// type and address bits.
    fn leaf_bits(attributes: Attributes) -> u64;
    /// The attributes a leaf descriptor's bits describe, if they are ones this
    /// format produces.
    fn attributes(descriptor: u64) -> Option<Attributes>;
}

/// The EL2 stage-1 format (non-VHE: one privilege level, one translation range).
///
/// MAIR_EL2 must hold [`El2Stage1::MAIR`]: attribute index 0 is Device-nGnRE and
/// index 1 is Normal write-back, read/write-allocate.
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
/// Stage-1 descriptor AttrIndx field, bits [4:2].
const ATTR_INDEX_SHIFT: u32 = 2;
/// Stage-1 AP[1], bit 6: RES1 in single-privilege regimes such as EL2.
const AP1_RES1: u64 = 1 << 6;
/// Stage-1 AP[2], bit 7: read-only.
const AP2_READ_ONLY: u64 = 1 << 7;
/// Shareability field SH, bits [9:8]: 0b11 is inner shareable.
const INNER_SHAREABLE: u64 = 0b11 << 8;
/// The access flag, bit 10: set so the first access does not fault.
const ACCESS_FLAG: u64 = 1 << 10;
/// Execute-never for the single-privilege EL2 regime, bit 54.
const EXECUTE_NEVER: u64 = 1 << 54;

impl DescriptorFormat for El2Stage1 {
    fn leaf_bits(attributes: Attributes) -> u64 {
        let index = match attributes.kind {
            MemoryKind::Normal => NORMAL_INDEX,
            MemoryKind::Device => DEVICE_INDEX,
        };
        let permissions = match attributes.access {
            Access::ReadWrite => EXECUTE_NEVER,
            Access::ReadOnly => AP2_READ_ONLY | EXECUTE_NEVER,
            Access::ReadExecute => AP2_READ_ONLY,
        };
        (index << ATTR_INDEX_SHIFT) | AP1_RES1 | INNER_SHAREABLE | ACCESS_FLAG | permissions
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
pub trait TableMemory {
    /// A new zero-filled table, or `None` when out of memory.
    fn allocate_table(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at `table`.
    fn read_entry(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write_entry(&mut self, table: u64, index: usize, descriptor: u64);
}

/// Why a mapping request failed. Nothing is half-done on argument errors; on
/// [`MapError::OutOfTables`] the part mapped before the failure stays mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// An address or size is not page-aligned.
    Unaligned,
    /// The range wraps or reaches past the 48-bit input or output address space.
    OutOfRange,
    /// The table allocator is exhausted.
    OutOfTables,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned => write!(f, "address or size not page-aligned"),
            Self::OutOfRange => write!(f, "range outside the 48-bit address space"),
            Self::OutOfTables => write!(f, "no memory left for translation tables"),
        }
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

/// A translation table tree rooted at one level-0 table.
pub struct PageTable<M, F> {
    root: u64,
    memory: M,
    format: core::marker::PhantomData<F>,
}

/// Bytes covered by one entry at `level`.
const fn entry_span(level: usize) -> u64 {
    1 << (12 + 9 * (LAST_LEVEL - level))
}

/// Index of `address` in a table at `level`.
const fn table_index(address: u64, level: usize) -> usize {
    ((address >> (12 + 9 * (LAST_LEVEL - level))) & 0x1ff) as usize
}

impl<M: TableMemory, F: DescriptorFormat> PageTable<M, F> {
    /// Allocates an empty root table.
    pub fn new(mut memory: M) -> Result<Self, MapError> {
        let root = memory.allocate_table().ok_or(MapError::OutOfTables)?;
        Ok(Self {
            root,
            memory,
            format: core::marker::PhantomData,
        })
    }

    /// Physical address of the root table (for TTBR).
    pub fn root(&self) -> u64 {
        self.root
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
        check_range(input, size)?;
        check_range(output, size)?;
        let leaf = F::leaf_bits(attributes);
        self.update(
            self.root,
            0,
            input,
            size,
            &mut |_, offset| Some(output + offset),
            leaf,
        )
    }

    /// Removes every mapping in `[input, input + size)`.
    pub fn unmap(&mut self, input: u64, size: u64) -> Result<(), MapError> {
        check_range(input, size)?;
        self.update(self.root, 0, input, size, &mut |_, _| None, 0)
    }

    /// Walks the tables for `input`.
    pub fn translate(&self, input: u64) -> Option<Translation> {
        if input >> INPUT_ADDRESS_BITS != 0 {
            return None;
        }
        let mut table = self.root;
        for level in 0..=LAST_LEVEL {
            let descriptor = self.memory.read_entry(table, table_index(input, level));
            if descriptor & VALID == 0 {
                return None;
            }
            let is_table = level < LAST_LEVEL && descriptor & TABLE_OR_PAGE != 0;
            if is_table {
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
            let block_allowed = level >= 1;
            let aligned = output.is_none_or(|o| o % span == 0);
            let is_table =
                level < LAST_LEVEL && existing & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE;

            if whole_entry && block_allowed && aligned && !is_table {
                let descriptor = match output {
                    Some(o) if level == LAST_LEVEL => o | leaf | VALID | TABLE_OR_PAGE,
                    Some(o) => o | leaf | VALID,
                    None => 0,
                };
                self.memory.write_entry(table, index, descriptor);
            } else if level == LAST_LEVEL {
                // Unreachable for page-aligned requests: a level-3 chunk is a page.
                return Err(MapError::Unaligned);
            } else {
                let next = self.next_table(table, level, index, existing)?;
                let base = done;
                let mut shifted = |a: u64, o: u64| target(a, base + o);
                self.update(next, level + 1, address, chunk, &mut shifted, leaf)?;
            }
            done += chunk;
        }
        Ok(())
    }

    /// The next-level table under entry `index`, creating it (empty, or filled with
    /// the pieces of a block being split) when the entry is not a table yet.
    fn next_table(
        &mut self,
        table: u64,
        level: usize,
        index: usize,
        existing: u64,
    ) -> Result<u64, MapError> {
        if existing & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE {
            return Ok(existing & ADDRESS_MASK);
        }
        let next = self.memory.allocate_table().ok_or(MapError::OutOfTables)?;
        if existing & VALID != 0 {
            // Split the block into next-level entries with the same attributes.
            let child_span = entry_span(level + 1);
            let attributes = existing & !ADDRESS_MASK & !(VALID | TABLE_OR_PAGE);
            let child_type = if level + 1 == LAST_LEVEL {
                TABLE_OR_PAGE
            } else {
                0
            };
            let base = existing & ADDRESS_MASK;
            for child in 0..ENTRIES_PER_TABLE {
                let output = base + child as u64 * child_span;
                self.memory
                    .write_entry(next, child, output | attributes | VALID | child_type);
            }
        }
        self.memory
            .write_entry(table, index, next | VALID | TABLE_OR_PAGE);
        Ok(next)
    }
}

fn check_range(address: u64, size: u64) -> Result<(), MapError> {
    if address % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 {
        return Err(MapError::Unaligned);
    }
    let end = address.checked_add(size).ok_or(MapError::OutOfRange)?;
    if end > 1 << INPUT_ADDRESS_BITS {
        return Err(MapError::OutOfRange);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    /// Tables in a map from address to entries, handed out from a fake region.
    struct FakeMemory {
        tables: BTreeMap<u64, Vec<u64>>,
        next: u64,
        limit: usize,
    }

    impl FakeMemory {
        fn new(limit: usize) -> Self {
            Self {
                tables: BTreeMap::new(),
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
            self.tables.get_mut(&table).unwrap()[index] = descriptor;
        }
    }

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
            1 << 2 | 1 << 6 | 3 << 8 | 1 << 10 | 1 << 54
        );
        // Code: AP=0b11 (read-only), executable.
        assert_eq!(
            El2Stage1::leaf_bits(Attributes::CODE),
            1 << 2 | 3 << 6 | 3 << 8 | 1 << 10
        );
        // Device: AttrIndx=0.
        assert_eq!(
            El2Stage1::leaf_bits(Attributes::DEVICE),
            1 << 6 | 3 << 8 | 1 << 10 | 1 << 54
        );
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
            t.map(u64::MAX - 0xfff, 0, 0x1000, Attributes::DATA),
            Err(MapError::OutOfRange)
        );
        assert_eq!(t.translate(1 << 48), None);
    }

    #[test]
    fn running_out_of_tables_is_an_error() {
        let mut t: Table = PageTable::new(FakeMemory::new(3)).unwrap();
        assert_eq!(
            t.map(0x1000, 0x1000, 0x1000, Attributes::DATA),
            Err(MapError::OutOfTables)
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
            let bits = El2Stage1::leaf_bits(attributes) | VALID;
            assert_eq!(El2Stage1::attributes(bits), Some(attributes));
        }
    }
}
