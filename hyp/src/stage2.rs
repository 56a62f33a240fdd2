//! Stage-2 translation for guests: the descriptor format, VTCR_EL2 and VTTBR_EL2.
//!
//! A guest's physical addresses (IPAs) are below `1 << IPA_BITS` (39 bits, see
//! [`crate::guest_layout`]); its stage-2 tables use the 4 KiB granule and start at
//! level 1 with one root table of 512 entries ([`geometry`]). The tables are built
//! by [`crate::paging::PageTable`] with the [`Stage2`] descriptor format.
//!
//! Field layouts: Arm Architecture Reference Manual (DDI 0487), "Stage 2 translation
//! table descriptor" attribute fields, and registers VTCR_EL2 and VTTBR_EL2. The
//! memory attributes assume HCR_EL2.FWB = 0: stage 2 then only limits what the
//! guest's own stage 1 asks for (Normal write-back at stage 2 leaves the guest's
//! choice in force; Device at stage 2 makes the access Device whatever stage 1 says).
//!
//! # TLB maintenance after changing a live entry
//!
//! [`crate::paging::TableMemory::invalidate`] is called for every valid entry the
//! table builder removes or changes (see [`crate::paging`] for the break-before-make
//! order). For tables a running guest may use, it must run, with this VM's VTTBR_EL2
//! loaded (both TLBIs act on the VMID in VTTBR_EL2):
//!
//! ```text
//!     DSB  ISHST              // the entry write reaches the table walkers first
//!     TLBI IPAS2E1IS, Xt      // Xt = IPA >> 12: stage-2 entries for that IPA, all CPUs
//!     DSB  ISH                // ... gone everywhere before stage 1 is flushed
//!     TLBI VMALLE1IS          // entries combining stage 1 and stage 2 for this VMID
//!     DSB  ISH
//!     ISB
//! ```
//!
//! The Arm ARM ("Invalidation of TLB entries from stage 2 translations", and the
//! TLBI IPAS2E1IS description) says an invalidation by IPA need not remove TLB
//! entries that combine stage-1 and stage-2 information, so the stage-1 entries of
//! the VMID must go too, and only after the stage-2 invalidation has completed:
//! otherwise a walk on another CPU could refill a combined entry from the old stage-2
//! entry in between. KVM's `__kvm_tlb_flush_vmid_ipa` uses the same sequence.
//!
//! Filling an entry that was invalid needs no TLBI (TLBs never hold invalid
//! entries), only the `DSB ISHST` before the guest runs again (the ERET that enters
//! the guest is the context synchronisation). A VMID used for a new VM needs
//! `TLBI VMALLS12E1IS; DSB ISH` with its VTTBR_EL2 loaded before the first entry.
//! While an entry is in its break (invalid) state another vCPU may take a stage-2
//! translation fault on it: the fault handler must walk the tables again and simply
//! resume the guest when the address is mapped by then.

use crate::guest_layout::IPA_BITS;
use crate::paging::{
    Access, Attributes, DescriptorFormat, Geometry, MapError, MemoryKind, PageTable, TableMemory,
};
use core::fmt;

/// The stage-2 descriptor format (EL1&0 regime, non-secure, HCR_EL2.FWB = 0).
///
/// It expresses Normal memory with every [`Access`] (guest RAM is
/// [`Access::ReadWriteExecute`]; [`Access::ReadExecute`] write-protects RAM while
/// the guest may still run code from it, for dirty tracking), and Device memory
/// read-write or read-only; executable Device memory is refused.
#[derive(Debug, Clone, Copy)]
pub struct Stage2;

/// How large the leaves of a guest's stage-2 tables may be.
///
/// Blocks are what hardware wants: fewer tables, shorter walks on a TLB miss and
/// more reach per TLB entry. Under QEMU's TCG they cost dearly instead: QEMU keeps
/// one TLB entry for both stages and records it with the *larger* of the two page
/// sizes, and a TLB invalidation by address that lands in the range of any such
/// "large page" empties the whole TLB of that translation regime (QEMU tracks large
/// pages as one address and mask per regime). With 2 MiB stage-2 blocks every guest
/// entry is large, so each `TLBI VAE1IS` the guest issues (Linux issues thousands
/// while it boots) flushes everything: measured on a Linux boot, 2.4 times the TLB
/// refills and a third more host instructions than with pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaves {
    /// 1 GiB and 2 MiB blocks wherever a range allows them, pages elsewhere.
    Blocks,
    /// 4 KiB pages only.
    Pages,
}

impl Leaves {
    /// The default for a machine whose device tree's root `compatible` is
    /// `machine`: pages on QEMU's `virt` board (`linux,dummy-virt`, which only an
    /// emulator describes), blocks elsewhere. `aerie.stage2=` overrides it.
    pub fn default_for(machine: &str) -> Self {
        if machine == "linux,dummy-virt" {
            Self::Pages
        } else {
            Self::Blocks
        }
    }
}

impl fmt::Display for Leaves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blocks => "1 GiB and 2 MiB blocks",
            Self::Pages => "4 KiB pages",
        })
    }
}

/// The geometry of a guest's stage-2 tables: [`IPA_BITS`] input bits, lookup from
/// level 1, leaves as `leaves` says.
pub const fn geometry(leaves: Leaves) -> Geometry {
    Geometry {
        start_level: 1,
        input_bits: IPA_BITS,
        first_leaf_level: match leaves {
            Leaves::Blocks => 1,
            Leaves::Pages => 3,
        },
    }
}

/// Guest RAM: Normal memory the guest may read, write and execute.
pub const GUEST_RAM: Attributes = Attributes {
    kind: MemoryKind::Normal,
    access: Access::ReadWriteExecute,
};

/// Write-protected guest RAM (dirty tracking): reads and instruction fetches work,
/// a write takes a stage-2 permission fault.
pub const GUEST_RAM_WRITE_PROTECTED: Attributes = Attributes {
    kind: MemoryKind::Normal,
    access: Access::ReadExecute,
};

/// A host device passed through to the guest: Device-nGnRE, read-write, never
/// executable.
pub const PASSTHROUGH_DEVICE: Attributes = Attributes {
    kind: MemoryKind::Device,
    access: Access::ReadWrite,
};

/// A guest's stage-2 tables.
pub type Stage2Table<M> = PageTable<M, Stage2>;

/// Allocates the empty root table of a guest's stage 2 ([`geometry`]).
pub fn new_table<M: TableMemory>(memory: M, leaves: Leaves) -> Result<Stage2Table<M>, MapError> {
    PageTable::with_geometry(memory, geometry(leaves))
}

/// Stage-2 descriptor fields.
mod descriptor {
    /// MemAttr, bits \[5:2\].
    pub const MEM_ATTR_SHIFT: u32 = 2;
    /// Width mask of MemAttr.
    pub const MEM_ATTR_MASK: u64 = 0b1111;
    /// MemAttr for Normal memory, outer write-back (bits \[3:2\] of the field = 0b11)
    /// and inner write-back (bits \[1:0\] = 0b11).
    pub const MEM_ATTR_NORMAL_WRITE_BACK: u64 = 0b1111;
    /// MemAttr for Device-nGnRE (outer bits 0b00 = Device, low bits 0b01 = nGnRE).
    pub const MEM_ATTR_DEVICE_NGNRE: u64 = 0b0001;
    /// S2AP, bits \[7:6\]: the stage-2 access permissions.
    pub const S2AP_SHIFT: u32 = 6;
    /// Width mask of S2AP.
    pub const S2AP_MASK: u64 = 0b11;
    /// S2AP = 0b01: read-only.
    pub const S2AP_READ_ONLY: u64 = 0b01;
    /// S2AP = 0b11: read and write.
    pub const S2AP_READ_WRITE: u64 = 0b11;
    /// SH, bits \[9:8\] = 0b11: inner shareable.
    pub const INNER_SHAREABLE: u64 = 0b11 << 8;
    /// AF, bit 10: the access flag, set so the first access does not fault.
    pub const ACCESS_FLAG: u64 = 1 << 10;
    /// XN, bits \[54:53\] (bit 53 is RES0 without FEAT_XNX).
    pub const XN_SHIFT: u32 = 53;
    /// Width mask of XN.
    pub const XN_MASK: u64 = 0b11;
    /// XN = 0b00: executable at EL1 and EL0.
    pub const XN_EXECUTABLE: u64 = 0b00;
    /// XN = 0b10: execute-never at EL1 and EL0 (also the meaning of bit 54 alone
    /// without FEAT_XNX).
    pub const XN_NEVER: u64 = 0b10;
}

use descriptor::*;

impl DescriptorFormat for Stage2 {
    const PERMISSION_BITS: u64 = (S2AP_MASK << S2AP_SHIFT) | (XN_MASK << XN_SHIFT);

    fn leaf_bits(attributes: Attributes) -> Result<u64, MapError> {
        // Device memory ignores SH (it is always outer shareable), so it stays 0.
        let (memory, executable_allowed) = match attributes.kind {
            MemoryKind::Normal => (
                (MEM_ATTR_NORMAL_WRITE_BACK << MEM_ATTR_SHIFT) | INNER_SHAREABLE,
                true,
            ),
            MemoryKind::Device => (MEM_ATTR_DEVICE_NGNRE << MEM_ATTR_SHIFT, false),
        };
        let (permission, execute) = match attributes.access {
            Access::ReadWriteExecute => (S2AP_READ_WRITE, XN_EXECUTABLE),
            Access::ReadWrite => (S2AP_READ_WRITE, XN_NEVER),
            Access::ReadOnly => (S2AP_READ_ONLY, XN_NEVER),
            Access::ReadExecute => (S2AP_READ_ONLY, XN_EXECUTABLE),
        };
        if execute == XN_EXECUTABLE && !executable_allowed {
            return Err(MapError::UnsupportedAttributes);
        }
        Ok(memory | (permission << S2AP_SHIFT) | ACCESS_FLAG | (execute << XN_SHIFT))
    }

    fn attributes(descriptor: u64) -> Option<Attributes> {
        let kind = match (descriptor >> MEM_ATTR_SHIFT) & MEM_ATTR_MASK {
            MEM_ATTR_NORMAL_WRITE_BACK => MemoryKind::Normal,
            MEM_ATTR_DEVICE_NGNRE => MemoryKind::Device,
            _ => return None,
        };
        let permission = (descriptor >> S2AP_SHIFT) & S2AP_MASK;
        let execute = (descriptor >> XN_SHIFT) & XN_MASK;
        let access = match (permission, execute) {
            (S2AP_READ_WRITE, XN_EXECUTABLE) => Access::ReadWriteExecute,
            (S2AP_READ_WRITE, XN_NEVER) => Access::ReadWrite,
            (S2AP_READ_ONLY, XN_NEVER) => Access::ReadOnly,
            (S2AP_READ_ONLY, XN_EXECUTABLE) => Access::ReadExecute,
            _ => return None,
        };
        if kind == MemoryKind::Device && execute != XN_NEVER {
            return None;
        }
        Some(Attributes { kind, access })
    }
}

/// Why stage 2 cannot be set up on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage2Error {
    /// The CPU's physical address range (ID_AA64MMFR0_EL1.PARange, the code given)
    /// is smaller than the guest's physical address space.
    PhysicalRangeTooSmall {
        /// The PARange code.
        pa_range_code: u64,
    },
}

impl fmt::Display for Stage2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PhysicalRangeTooSmall { pa_range_code } => {
                match pa_range_bits(pa_range_code) {
                    Some(bits) => write!(f, "the CPU has only {bits}-bit physical addresses")?,
                    None => write!(f, "the CPU reports an unknown physical address size")?,
                }
                write!(
                    f,
                    " (ID_AA64MMFR0_EL1.PARange = {pa_range_code}); guests need at least 40 \
                     bits for their {IPA_BITS}-bit physical address space"
                )
            }
        }
    }
}

/// ID_AA64MMFR0_EL1.PARange (and VTCR_EL2.PS) code for 40-bit physical addresses.
const PA_RANGE_40_BITS: u64 = 0b010;
/// The PARange code for 48 bits, the largest output size of the 4 KiB granule
/// without FEAT_LPA2.
const PA_RANGE_48_BITS: u64 = 0b101;

/// The number of physical address bits a PARange code stands for (ID_AA64MMFR0_EL1
/// and VTCR_EL2.PS share the encoding), or `None` for a reserved code.
pub const fn pa_range_bits(code: u64) -> Option<u32> {
    match code {
        0b000 => Some(32),
        0b001 => Some(36),
        0b010 => Some(40),
        0b011 => Some(42),
        0b100 => Some(44),
        0b101 => Some(48),
        0b110 => Some(52),
        0b111 => Some(56),
        _ => None,
    }
}

/// VTCR_EL2 fields.
mod vtcr_field {
    /// T0SZ, bits \[5:0\]: the IPA size is `64 - T0SZ` bits.
    pub const T0SZ_SHIFT: u32 = 0;
    /// SL0, bits \[7:6\]: the starting level (meaning depends on the granule).
    pub const SL0_SHIFT: u32 = 6;
    /// SL0 = 0b01 with the 4 KiB granule: start at level 1.
    pub const SL0_LEVEL_1: u64 = 0b01;
    /// IRGN0, bits \[9:8\]: inner cacheability of table walks.
    pub const IRGN0_SHIFT: u32 = 8;
    /// ORGN0, bits \[11:10\]: outer cacheability of table walks.
    pub const ORGN0_SHIFT: u32 = 10;
    /// IRGN0/ORGN0 = 0b01: write-back, read-allocate, write-allocate.
    pub const WRITE_BACK_ALLOCATE: u64 = 0b01;
    /// SH0, bits \[13:12\]: shareability of table walks.
    pub const SH0_SHIFT: u32 = 12;
    /// SH0 = 0b11: inner shareable.
    pub const INNER_SHAREABLE: u64 = 0b11;
    /// TG0, bits \[15:14\]: the granule.
    pub const TG0_SHIFT: u32 = 14;
    /// TG0 = 0b00: 4 KiB.
    pub const TG0_4K: u64 = 0b00;
    /// PS, bits \[18:16\]: the output (physical) address size, PARange encoding.
    pub const PS_SHIFT: u32 = 16;
    /// Bit 31 is RES1.
    pub const RES1: u64 = 1 << 31;
}

/// The VTCR_EL2 value for guests on a CPU whose ID_AA64MMFR0_EL1.PARange is
/// `pa_range_code`: [`IPA_BITS`]-bit IPAs (T0SZ = 25) looked up from level 1
/// (SL0 = 0b01) with the 4 KiB granule, cacheable inner-shareable table walks, an
/// 8-bit VMID (VS = 0), and PS = the CPU's physical address size capped at 48 bits.
///
/// The architectural constraint: the IPA size must not exceed the physical address
/// size the CPU implements. A T0SZ smaller than `64 - PAMax` (PAMax from PARange) is
/// either treated as that minimum or makes every stage-2 walk take a level-0
/// translation fault, IMPLEMENTATION DEFINED (Arm ARM pseudocode `AArch64.S2MinTxSZ`
/// and `AArch64.S2TxSZFaults`); and every output address must fit in the size PS
/// configures, or the walk takes an address size fault. PS here is
/// `min(PARange, 48 bits)`, so a 39-bit IPA space needs PARange >= 40 bits (code
/// 0b010); with 32 or 36 bits the guest layout cannot be honoured and this returns
/// [`Stage2Error::PhysicalRangeTooSmall`]. The start level is valid whatever the PA
/// size (only SL0 = 0b10, level 0, requires PAMax >= 44: `AArch64.S2InvalidSL`) and
/// consistent with T0SZ (`AArch64.S2InconsistentSL`: a level-1 start takes 31 to 39
/// IPA bits with one root table, up to 43 with concatenated ones).
pub fn vtcr(pa_range_code: u64) -> Result<u64, Stage2Error> {
    use vtcr_field::*;
    if pa_range_code < PA_RANGE_40_BITS {
        return Err(Stage2Error::PhysicalRangeTooSmall { pa_range_code });
    }
    let ps = pa_range_code.min(PA_RANGE_48_BITS);
    let t0sz = u64::from(64 - IPA_BITS);
    Ok((t0sz << T0SZ_SHIFT)
        | (SL0_LEVEL_1 << SL0_SHIFT)
        | (WRITE_BACK_ALLOCATE << IRGN0_SHIFT)
        | (WRITE_BACK_ALLOCATE << ORGN0_SHIFT)
        | (INNER_SHAREABLE << SH0_SHIFT)
        | (TG0_4K << TG0_SHIFT)
        | (ps << PS_SHIFT)
        | RES1)
}

/// VTTBR_EL2.VMID, bits \[55:48\] (8-bit VMIDs: VTCR_EL2.VS = 0).
const VTTBR_VMID_SHIFT: u32 = 48;
/// VTTBR_EL2.BADDR as used here: bits \[47:12\]. A level-1 root of 512 entries is
/// 4 KiB-aligned, so BADDR bits \[11:1\] are zero, and CnP (bit 0) stays 0.
const VTTBR_BADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// The VTTBR_EL2 value for a VM with `vmid` whose stage-2 root table is at `root`
/// (page-aligned, as [`crate::paging::PageTable::root`] always is).
pub fn vttbr(vmid: u8, root: u64) -> u64 {
    debug_assert_eq!(root & !VTTBR_BADDR_MASK, 0, "stage-2 root not page-aligned");
    (u64::from(vmid) << VTTBR_VMID_SHIFT) | (root & VTTBR_BADDR_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::test_memory::{Event, FakeMemory};
    use crate::paging::{ENTRIES_PER_TABLE, Translation};
    use std::string::ToString;

    const MIB2: u64 = 2 << 20;
    const GUEST_RAM_BASE: u64 = 0x4000_0000;
    /// Host RAM backing the guest: 2 MiB-aligned but not 1 GiB-aligned, so the
    /// mapping is made of 2 MiB blocks.
    const HOST_BASE: u64 = 0x8020_0000;
    const RAM_SIZE: u64 = 64 << 20;

    fn normal(access: Access) -> Attributes {
        Attributes {
            kind: MemoryKind::Normal,
            access,
        }
    }

    fn device(access: Access) -> Attributes {
        Attributes {
            kind: MemoryKind::Device,
            access,
        }
    }

    fn guest() -> Stage2Table<FakeMemory> {
        let mut table = new_table(FakeMemory::new(16), Leaves::Blocks).unwrap();
        table
            .map(GUEST_RAM_BASE, HOST_BASE, RAM_SIZE, GUEST_RAM)
            .unwrap();
        table
    }

    #[test]
    fn leaf_bits_follow_the_stage_2_descriptor_layout() {
        // MemAttr[5:2]=0b1111 (0x3c), S2AP[7:6]=0b11 (0xc0), SH[9:8]=0b11 (0x300),
        // AF[10] (0x400), XN[54:53]=0b00.
        assert_eq!(Stage2::leaf_bits(GUEST_RAM), Ok(0x7fc));
        // XN=0b10: bit 54.
        assert_eq!(
            Stage2::leaf_bits(normal(Access::ReadWrite)),
            Ok(0x7fc | 1 << 54)
        );
        // S2AP=0b01 (0x40).
        assert_eq!(
            Stage2::leaf_bits(normal(Access::ReadOnly)),
            Ok(0x77c | 1 << 54)
        );
        assert_eq!(Stage2::leaf_bits(GUEST_RAM_WRITE_PROTECTED), Ok(0x77c));
        // Device-nGnRE: MemAttr=0b0001 (0x4), SH left 0, never executable.
        assert_eq!(
            Stage2::leaf_bits(PASSTHROUGH_DEVICE),
            Ok(0x4 | 0xc0 | 0x400 | 1 << 54)
        );
        assert_eq!(
            Stage2::leaf_bits(device(Access::ReadOnly)),
            Ok(0x4 | 0x40 | 0x400 | 1 << 54)
        );
        for access in [Access::ReadExecute, Access::ReadWriteExecute] {
            assert_eq!(
                Stage2::leaf_bits(device(access)),
                Err(MapError::UnsupportedAttributes)
            );
        }
    }

    #[test]
    fn attributes_round_trip_and_foreign_descriptors_are_not_recognised() {
        for attributes in [
            GUEST_RAM,
            GUEST_RAM_WRITE_PROTECTED,
            normal(Access::ReadWrite),
            normal(Access::ReadOnly),
            PASSTHROUGH_DEVICE,
            device(Access::ReadOnly),
        ] {
            let bits = Stage2::leaf_bits(attributes).unwrap() | 1;
            assert_eq!(Stage2::attributes(bits), Some(attributes), "{attributes:?}");
        }
        let ram = Stage2::leaf_bits(GUEST_RAM).unwrap() | 1;
        // MemAttr 0b0101 (Normal non-cacheable): not produced here.
        assert_eq!(Stage2::attributes((ram & !0x3c) | 0b0101 << 2), None);
        // S2AP 0b00 (no access) and 0b10 (write-only).
        assert_eq!(Stage2::attributes(ram & !0xc0), None);
        assert_eq!(Stage2::attributes((ram & !0xc0) | 0b10 << 6), None);
        // XN 0b01 and 0b11 (FEAT_XNX split permissions).
        assert_eq!(Stage2::attributes(ram | 1 << 53), None);
        assert_eq!(Stage2::attributes(ram | 0b11 << 53), None);
        // Executable Device memory.
        assert_eq!(Stage2::attributes(0x4 | 0xc0 | 0x400 | 1), None);
    }

    #[test]
    fn guest_ram_is_mapped_with_2_mib_blocks() {
        let table = guest();
        for offset in (0..RAM_SIZE).step_by(MIB2 as usize) {
            let found = table.translate(GUEST_RAM_BASE + offset + 0x123).unwrap();
            assert_eq!(
                found,
                Translation {
                    output: HOST_BASE + offset + 0x123,
                    attributes: GUEST_RAM,
                    level: 2
                }
            );
        }
        // The root (level 1) and one level-2 table.
        assert_eq!(table.memory().tables.len(), 2);
        assert_eq!(table.translate(GUEST_RAM_BASE - 1), None);
        assert_eq!(table.translate(GUEST_RAM_BASE + RAM_SIZE), None);
        assert_eq!(table.translate(0), None);
    }

    #[test]
    fn address_walk_follows_root_level_1_then_level_2() {
        let table = guest();
        let memory = &table.memory().tables;
        // IPA 0x4000_0000: level-1 index 1 (bits [38:30]), level-2 index 0.
        let root = &memory[&table.root()];
        assert_eq!(root.len(), ENTRIES_PER_TABLE);
        assert_eq!(root[1] & 0b11, 0b11, "a table descriptor");
        let level2 = &memory[&(root[1] & 0x0000_ffff_ffff_f000)];
        // Block descriptor: bits [1:0] = 0b01, output address, the leaf bits.
        assert_eq!(level2[0], HOST_BASE | 0x7fc | 0b01);
        assert_eq!(level2[31], (HOST_BASE + 31 * MIB2) | 0x7fc | 0b01);
        assert_eq!(level2[32], 0);
        assert!(root.iter().enumerate().all(|(i, &e)| i == 1 || e == 0));
    }

    #[test]
    fn a_4k_hole_splits_one_block_into_pages() {
        let mut table = guest();
        let hole = GUEST_RAM_BASE + 5 * MIB2 + 0x3000;
        table.unmap(hole, 0x1000).unwrap();
        assert_eq!(table.translate(hole), None);
        assert_eq!(table.translate(hole + 0xfff), None);
        for neighbour in [hole - 0x1000, hole + 0x1000] {
            let found = table.translate(neighbour).unwrap();
            assert_eq!(
                (found.output, found.attributes, found.level),
                (neighbour - GUEST_RAM_BASE + HOST_BASE, GUEST_RAM, 3)
            );
        }
        // Other blocks are untouched.
        assert_eq!(table.translate(GUEST_RAM_BASE + 6 * MIB2).unwrap().level, 2);
        // Mapping the page again fills the hole.
        table
            .map(hole, hole - GUEST_RAM_BASE + HOST_BASE, 0x1000, GUEST_RAM)
            .unwrap();
        assert_eq!(
            table.translate(hole).unwrap().output,
            hole - GUEST_RAM_BASE + HOST_BASE
        );
    }

    #[test]
    fn unmapping_guest_ram_removes_everything() {
        let mut table = guest();
        table.unmap(GUEST_RAM_BASE, RAM_SIZE).unwrap();
        for offset in (0..RAM_SIZE).step_by(0x10_0000) {
            assert_eq!(table.translate(GUEST_RAM_BASE + offset), None);
        }
        // Each block was invalidated once, at its first IPA.
        let invalidations: std::vec::Vec<_> = table
            .memory()
            .log
            .iter()
            .filter(|e| matches!(e, Event::Invalidate(..)))
            .copied()
            .collect();
        assert_eq!(invalidations.len(), (RAM_SIZE / MIB2) as usize);
        assert_eq!(
            invalidations[1],
            Event::Invalidate(GUEST_RAM_BASE + MIB2, 2)
        );
    }

    #[test]
    fn one_page_is_write_protected_and_unprotected_inside_a_block() {
        let mut table = guest();
        let page = GUEST_RAM_BASE + 3 * MIB2 + 0x7000;
        let host = page - GUEST_RAM_BASE + HOST_BASE;
        for protected in [normal(Access::ReadOnly), GUEST_RAM_WRITE_PROTECTED] {
            table.map(page, host, 0x1000, protected).unwrap();
            let found = table.translate(page + 8).unwrap();
            assert_eq!(
                (found.output, found.attributes, found.level),
                (host + 8, protected, 3)
            );
            let next = table.translate(page + 0x1000).unwrap();
            assert_eq!((next.attributes, next.level), (GUEST_RAM, 3));
        }
        let tables = table.memory().tables.len();
        let before = table.memory().log.len();
        table.map(page, host, 0x1000, GUEST_RAM).unwrap();
        assert_eq!(table.translate(page).unwrap().attributes, GUEST_RAM);
        // A permission change alone: the new entry, then the invalidation; no table
        // allocated and no break.
        let log = &table.memory().log[before..];
        assert_eq!(log.len(), 2);
        assert!(matches!(log[0], Event::Write(_, 7, d) if d == host | 0x7fc | 0b11));
        assert_eq!(log[1], Event::Invalidate(page, 3));
        assert_eq!(table.memory().tables.len(), tables);
    }

    #[test]
    fn geometry_limits_are_39_bits() {
        let mut table = new_table(FakeMemory::new(4), Leaves::Blocks).unwrap();
        assert_eq!(table.geometry(), geometry(Leaves::Blocks));
        let top = (1 << 39) - MIB2;
        table.map(top, HOST_BASE, MIB2, GUEST_RAM).unwrap();
        assert_eq!(table.translate((1 << 39) - 1).unwrap().level, 2);
        assert_eq!(table.translate(1 << 39), None);
        assert_eq!(table.translate(u64::MAX), None);
        assert_eq!(
            table.map(1 << 39, HOST_BASE, 0x1000, GUEST_RAM),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            table.map(top, HOST_BASE, 2 * MIB2, GUEST_RAM),
            Err(MapError::OutOfRange)
        );
        assert_eq!(table.unmap(1 << 39, 0x1000), Err(MapError::OutOfRange));
        // Output addresses stay below 2^48.
        assert_eq!(
            table.map(0, 1 << 48, 0x1000, GUEST_RAM),
            Err(MapError::OutOfRange)
        );
        // The largest guest RAM fits exactly.
        let mut table = new_table(FakeMemory::new(4), Leaves::Blocks).unwrap();
        let max_ram = crate::guest_layout::MAX_RAM;
        table
            .map(GUEST_RAM_BASE, GUEST_RAM_BASE, max_ram, GUEST_RAM)
            .unwrap();
        assert_eq!(
            table.translate(GUEST_RAM_BASE + max_ram - 1).unwrap().level,
            1
        );
    }

    #[test]
    fn guest_ram_mapped_with_pages_only_translates_page_by_page() {
        // 4 MiB and one page, starting 2 MiB into a gigabyte: two level-3 tables
        // filled whole and one with a single page.
        let size = 2 * MIB2 + 0x1000;
        let mut table = new_table(FakeMemory::new(8), Leaves::Pages).unwrap();
        assert_eq!(table.geometry().first_leaf_level, 3);
        table
            .map(GUEST_RAM_BASE + MIB2, HOST_BASE, size, GUEST_RAM)
            .unwrap();
        // Root, one level-2 table, three level-3 tables.
        assert_eq!(table.memory().tables.len(), 5);
        for offset in (0..size).step_by(0x1000) {
            let found = table.translate(GUEST_RAM_BASE + MIB2 + offset + 8).unwrap();
            assert_eq!(found.output, HOST_BASE + offset + 8);
            assert_eq!((found.level, found.attributes), (3, GUEST_RAM));
        }
        assert_eq!(table.translate(GUEST_RAM_BASE + MIB2 + size), None);
        assert_eq!(table.translate(GUEST_RAM_BASE + MIB2 - 1), None);
        // The two whole tables were complete before the entry pointing to each.
        let log = &table.memory().log;
        let mut filled = 0;
        for (at, event) in log.iter().enumerate() {
            let Event::Write(_, _, descriptor) = *event else {
                continue;
            };
            let target = descriptor & 0x0000_ffff_ffff_f000;
            let written_into = |e: &Event| matches!(e, Event::Write(t, ..) if *t == target);
            if descriptor & 0x7fc == 0 && log.iter().filter(|e| written_into(e)).count() == 512 {
                assert!(
                    log[at..].iter().all(|e| !written_into(e)),
                    "table {target:#x} written after its entry"
                );
                filled += 1;
            }
        }
        assert_eq!(filled, 2);
        assert!(
            !log.iter()
                .any(|event| matches!(event, Event::Invalidate(..)))
        );
        // Write-protecting one page afterwards changes that page only.
        let page = GUEST_RAM_BASE + MIB2 + 0x5000;
        table
            .map(page, HOST_BASE + 0x5000, 0x1000, GUEST_RAM_WRITE_PROTECTED)
            .unwrap();
        assert_eq!(
            table.translate(page).unwrap().attributes,
            GUEST_RAM_WRITE_PROTECTED
        );
        assert_eq!(
            table.translate(page + 0x1000).unwrap().attributes,
            GUEST_RAM
        );
    }

    #[test]
    fn the_default_leaves_are_pages_on_qemu_virt_only() {
        assert_eq!(Leaves::default_for("linux,dummy-virt"), Leaves::Pages);
        assert_eq!(Leaves::default_for("raspberrypi,4-model-b"), Leaves::Blocks);
        assert_eq!(Leaves::default_for("raspberrypi,5-model-b"), Leaves::Blocks);
        assert_eq!(geometry(Leaves::Blocks).first_leaf_level, 1);
        assert_eq!(Leaves::Pages.to_string(), "4 KiB pages");
    }

    #[test]
    fn vtcr_values() {
        // T0SZ=25 (0x19), SL0=0b01 (0x40), IRGN0=0b01 (0x100), ORGN0=0b01 (0x400),
        // SH0=0b11 (0x3000), TG0=0b00, PS in bits [18:16], RES1 bit 31.
        let base = 0x19 | 0x40 | 0x100 | 0x400 | 0x3000 | 1 << 31;
        assert_eq!(base, 0x8000_3559);
        assert_eq!(vtcr(0b010), Ok(base | 0b010 << 16));
        assert_eq!(vtcr(0b011), Ok(base | 0b011 << 16));
        // Cortex-A72 (QEMU virt, Raspberry Pi 4): 44 bits.
        assert_eq!(vtcr(0b100), Ok(0x8004_3559));
        assert_eq!(vtcr(0b101), Ok(0x8005_3559));
        // 52 and 56 bits, and reserved codes, are capped at 48 bits.
        for code in [0b110, 0b111, 0b1111, u64::MAX] {
            assert_eq!(vtcr(code), Ok(0x8005_3559), "code {code}");
        }
        for code in [0b000, 0b001] {
            assert_eq!(
                vtcr(code),
                Err(Stage2Error::PhysicalRangeTooSmall {
                    pa_range_code: code
                })
            );
        }
    }

    #[test]
    fn vttbr_values() {
        assert_eq!(vttbr(1, 0x4123_4000), 0x0001_0000_4123_4000);
        assert_eq!(vttbr(0xff, 0xffff_ffff_f000), 0x00ff_ffff_ffff_f000);
        assert_eq!(vttbr(0, 0x8000_0000), 0x8000_0000);
    }

    #[test]
    fn pa_range_codes() {
        let bits: std::vec::Vec<_> = (0..8).map(pa_range_bits).collect();
        assert_eq!(bits, [32, 36, 40, 42, 44, 48, 52, 56].map(Some).to_vec());
        assert_eq!(pa_range_bits(8), None);
    }

    #[test]
    fn error_message() {
        assert_eq!(
            Stage2Error::PhysicalRangeTooSmall { pa_range_code: 1 }.to_string(),
            "the CPU has only 36-bit physical addresses (ID_AA64MMFR0_EL1.PARange = 1); \
             guests need at least 40 bits for their 39-bit physical address space"
        );
    }
}
