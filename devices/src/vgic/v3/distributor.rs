//! The distributor's registers (IHI 0069H chapter 12, "The GIC Distributor register
//! map" and the GICD_* register descriptions).
//!
//! | offset | register | model |
//! |---|---|---|
//! | `0x0000` | `GICD_CTLR` | EnableGrp0 \[0\], EnableGrp1 \[1\] read-write; ARE \[4\] and DS \[6\] read as one; RWP \[31\] reads as zero |
//! | `0x0004` | `GICD_TYPER` | see [`VgicV3::typer`] |
//! | `0x0008` | `GICD_IIDR` | [`IIDR`] |
//! | `0x000C` | `GICD_TYPER2` | zero: no vPE or virtual LPI features |
//! | `0x0010` | `GICD_STATUSR` | zero: no errors to report |
//! | `0x0080`-`0x0F00` | `IGROUPR`, `IS/ICENABLER`, `IS/ICPENDR`, `IS/ICACTIVER`, `IPRIORITYR`, `ICFGR`, `IGRPMODR`, `NSACR` | for SPIs (see `registers`); the words for INTIDs 0-31 are banked in the redistributors and read as zero here since affinity routing is on |
//! | `0x0800`-`0x0BFC` | `ITARGETSR<n>` | zero: unused with affinity routing |
//! | `0x0F00`-`0x0F2C` | `GICD_SGIR`, `CPENDSGIR`, `SPENDSGIR` | zero: unused with affinity routing |
//! | `0x6100`-`0x7FD8` | `GICD_IROUTER<n>` | 64-bit, or 32-bit halves |
//! | `0xFFD0`-`0xFFFC` | ID registers | see `core::id_registers` |
//!
//! Registers of unimplemented INTIDs read as zero and ignore writes. Any other offset
//! or width is left to the caller to count as ignored.

use super::VgicV3;
use crate::mmio::AccessWidth;
use crate::vgic::FIRST_SPI;
use crate::vgic::core::{IrqAccess, read_id_register};

/// Register offsets.
pub(super) mod gicd {
    /// `GICD_CTLR`.
    pub const CTLR: u64 = 0x0000;
    /// `GICD_TYPER`.
    pub const TYPER: u64 = 0x0004;
    /// `GICD_IIDR`.
    pub const IIDR: u64 = 0x0008;
    /// `GICD_TYPER2`.
    pub const TYPER2: u64 = 0x000C;
    /// `GICD_STATUSR`.
    pub const STATUSR: u64 = 0x0010;
    /// `GICD_ITARGETSR<n>`, byte-accessible.
    pub const ITARGETSR: u64 = 0x0800;
    /// End of the `GICD_ITARGETSR<n>` block.
    pub const ITARGETSR_END: u64 = 0x0C00;
    /// `GICD_SGIR`.
    pub const SGIR: u64 = 0x0F00;
    /// `GICD_CPENDSGIR<n>` (four registers), then `GICD_SPENDSGIR<n>` (four), both
    /// byte-accessible.
    pub const CPENDSGIR: u64 = 0x0F10;
    /// End of the `GICD_SPENDSGIR<n>` block.
    pub const SPENDSGIR_END: u64 = 0x0F30;
    /// `GICD_IROUTER<n>`, 8 bytes each from n = 0 (n < 32 reserved).
    pub const IROUTER: u64 = 0x6000;
    /// End of the `GICD_IROUTER<n>` block (1024 registers).
    pub const IROUTER_END: u64 = 0x8000;
}

/// `GICD_CTLR` bits with one security state (GICD_CTLR.DS = 1) besides the group
/// enables (bits \[1:0\], see `Core::group_enable_bits`).
pub(super) mod ctlr {
    /// ARE, bit \[4\]: affinity routing, always on.
    pub const ARE: u32 = 1 << 4;
    /// DS, bit \[6\]: a single security state.
    pub const DS: u32 = 1 << 6;
}

/// `GICD_TYPER` fields.
pub(super) mod typer {
    /// ITLinesNumber, bits \[4:0\]: SPIs reach INTID `32 * (N + 1) - 1`.
    pub const IT_LINES_SHIFT: u32 = 0;
    /// IDbits, bits \[23:19\]: INTID bits minus one.
    pub const ID_BITS_SHIFT: u32 = 19;
    /// 10 INTID bits (INTIDs 0 to 1023): no LPIs.
    pub const ID_BITS: u32 = 10;
}

/// `GICD_IROUTER<n>` fields.
pub(super) mod irouter {
    /// Aff0, bits \[7:0\].
    pub const AFF0_SHIFT: u32 = 0;
    /// Aff1, bits \[15:8\].
    pub const AFF1_SHIFT: u32 = 8;
    /// Aff2, bits \[23:16\].
    pub const AFF2_SHIFT: u32 = 16;
    /// Interrupt_Routing_Mode, bit \[31\]: any PE.
    pub const ANY_PE: u64 = 1 << 31;
    /// Aff3, bits \[39:32\].
    pub const AFF3_SHIFT: u32 = 32;
    /// The defined bits; the rest are RES0.
    pub const MASK: u64 = 0xFF_8000_0000 | 0xFF_FFFF;
}

/// `GICD_IIDR` and `GICR_IIDR`: ProductID \[31:24\] = `'A'` (Aerie), Variant and
/// Revision 0, Implementer \[11:0\] = 0 (no JEP106 code; none of the Arm or partner
/// codes guest drivers key errata workarounds on).
pub(super) const IIDR: u32 = (b'A' as u32) << 24;

impl VgicV3 {
    /// `GICD_TYPER`: ITLinesNumber from the SPI count, CPUNumber 0 (the field counts
    /// PEs usable without affinity routing, and affinity routing cannot be turned
    /// off), SecurityExtn 0, no MBIs, no LPIs, IDbits for 10 bits, no Aff3 (A3V 0),
    /// 1-of-N supported (No1N 0), no range selector (RSS 0).
    pub(super) fn typer(&self) -> u32 {
        let it_lines = self.intid_limit() / 32 - 1;
        // CPUNumber and every other field stay zero.
        (it_lines << typer::IT_LINES_SHIFT) | ((typer::ID_BITS - 1) << typer::ID_BITS_SHIFT)
    }

    /// `GICD_CTLR` as read.
    fn ctlr(&self) -> u32 {
        ctlr::ARE | ctlr::DS | self.group_enable_bits()
    }

    /// The index `n` of the `GICD_IROUTER<n>` an access at `offset` hits, and whether
    /// it is the upper half, if the access is a whole register or an aligned half.
    fn irouter_access(offset: u64, width: AccessWidth) -> Option<(usize, bool)> {
        let within = offset.checked_sub(gicd::IROUTER)?;
        if offset >= gicd::IROUTER_END
            || !width.is_aligned(offset)
            || !matches!(width, AccessWidth::Word | AccessWidth::Double)
        {
            return None;
        }
        Some(((within / 8) as usize, within % 8 != 0))
    }

    /// Reads the distributor; `None` for an access no register answers.
    pub(super) fn gicd_read(&mut self, offset: u64, width: AccessWidth) -> Option<u64> {
        if width == AccessWidth::Word {
            // The control registers first: the ones a guest reads most (polling
            // GICD_CTLR.RWP), and the cheapest to tell apart.
            let control = match offset {
                gicd::CTLR => Some(self.ctlr()),
                gicd::TYPER => Some(self.typer()),
                gicd::IIDR => Some(IIDR),
                gicd::TYPER2 | gicd::STATUSR | gicd::SGIR => Some(0),
                _ => None,
            };
            if let Some(value) = control {
                return Some(u64::from(value));
            }
        }
        if let Some(access) = IrqAccess::decode(offset, width) {
            if access.first_intid() < FIRST_SPI {
                return Some(0);
            }
            return Some(u64::from(access.read(&self.irqs.spis, FIRST_SPI)));
        }
        if let Some((n, upper)) = Self::irouter_access(offset, width) {
            let route = n
                .checked_sub(FIRST_SPI as usize)
                .and_then(|index| self.front.routes.get(index))
                .copied()
                .unwrap_or(0);
            return Some(if upper { route >> 32 } else { route });
        }
        if Self::is_legacy_byte_register(offset, width) {
            return Some(0);
        }
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return None;
        }
        Some(u64::from(read_id_register(offset)?))
    }

    /// Writes the distributor; false for an access no register answers.
    pub(super) fn gicd_write(&mut self, offset: u64, width: AccessWidth, value: u64) -> bool {
        if let Some(access) = IrqAccess::decode(offset, width) {
            if access.first_intid() >= FIRST_SPI {
                access.write(&mut self.irqs.spis, FIRST_SPI, value as u32);
                let first = access.first_intid();
                self.note_write(None, first..first.saturating_add(access.intids()));
            }
            return true;
        }
        if let Some((n, upper)) = Self::irouter_access(offset, width) {
            if let Some(route) = n
                .checked_sub(FIRST_SPI as usize)
                .and_then(|index| self.front.routes.get_mut(index))
            {
                let merged = match (width, upper) {
                    (AccessWidth::Double, _) => value,
                    (_, false) => (*route & !0xFFFF_FFFF) | value,
                    (_, true) => (*route & 0xFFFF_FFFF) | (value << 32),
                };
                *route = merged & irouter::MASK;
                let intid = n as u32;
                self.note_write(None, intid..intid + 1);
            }
            return true;
        }
        if Self::is_legacy_byte_register(offset, width) {
            return true;
        }
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return false;
        }
        match offset {
            gicd::CTLR => {
                self.write_group_enables(value as u32);
                true
            }
            // GICD_SGIR is ignored with affinity routing on; STATUSR has nothing to
            // clear; the rest is read-only.
            gicd::SGIR | gicd::STATUSR => true,
            gicd::TYPER | gicd::IIDR | gicd::TYPER2 => true,
            _ => read_id_register(offset).is_some(),
        }
    }

    /// `GICD_ITARGETSR<n>`, `GICD_CPENDSGIR<n>` and `GICD_SPENDSGIR<n>`: byte- or
    /// word-accessible, and RAZ/WI with affinity routing on.
    fn is_legacy_byte_register(offset: u64, width: AccessWidth) -> bool {
        let in_block = (gicd::ITARGETSR..gicd::ITARGETSR_END).contains(&offset)
            || (gicd::CPENDSGIR..gicd::SPENDSGIR_END).contains(&offset);
        in_block
            && matches!(width, AccessWidth::Byte | AccessWidth::Word)
            && width.is_aligned(offset)
    }
}
