//! The GICv2 distributor's registers (IHI 0048B.b section 4.1.2, "Distributor
//! register map", and the register descriptions of section 4.3), as the vCPU making
//! each access sees them.
//!
//! | offset | register | model |
//! |---|---|---|
//! | `0x000` | `GICD_CTLR` | EnableGrp0 \[0\], EnableGrp1 \[1\] read-write |
//! | `0x004` | `GICD_TYPER` | ITLinesNumber \[4:0\], CPUNumber \[7:5\] = vCPUs - 1, SecurityExtn \[10\] = 0, LSPI \[15:11\] = 0 |
//! | `0x008` | `GICD_IIDR` | [`IIDR`]: the GIC-400's |
//! | `0x080`-`0x0FC` | `IGROUPR<n>` | read-write; `IGROUPR0` banked |
//! | `0x100`-`0x3FC` | `IS/ICENABLER`, `IS/ICPENDR`, `IS/ICACTIVER` | the `<0>` words banked; SGI bits of `IS/ICPENDR0` read-only |
//! | `0x400`-`0x7F8` | `IPRIORITYR<n>` | byte- or word-accessible, five bits kept; `0-7` banked |
//! | `0x800`-`0x81C` | `ITARGETSR0-7` | read-only, every byte the accessing vCPU's own bit (zero with one vCPU) |
//! | `0x820`-`0xBF8` | `ITARGETSR<n>` | byte- or word-accessible, bits of existing vCPUs (RAZ/WI with one vCPU) |
//! | `0xC00`-`0xCFC` | `ICFGR<n>` | `ICFGR0` (SGIs) read-only edge, `ICFGR1` banked |
//! | `0xD00`-`0xDFC` | IMPLEMENTATION DEFINED | not implemented: ignored and counted |
//! | `0xE00`-`0xEFC` | `NSACR<n>` | RAZ/WI: no Security Extensions |
//! | `0xF00` | `GICD_SGIR` | write-only: sends an SGI |
//! | `0xF10`-`0xF1C` | `CPENDSGIR<n>` | byte- or word-accessible, banked: one byte per SGI, one bit per source |
//! | `0xF20`-`0xF2C` | `SPENDSGIR<n>` | likewise, write 1 to set |
//! | `0xFD0`-`0xFFC` | ID registers | the GIC-400's, see `core::id_registers` |
//!
//! Registers of unimplemented INTIDs read as zero and ignore writes. Any other offset
//! or width is left to the caller to count as ignored.

use super::VgicV2;
use super::sgi::{GicdSgir, cpu_bit};
use crate::mmio::AccessWidth;
use crate::vgic::core::{BitRegister, IrqAccess, read_gic400_id_register};
use crate::vgic::{FIRST_SPI, PRIVATE_INTERRUPTS, SGIS};
use core::ops::Range;

/// Register offsets (the per-interrupt blocks are in `registers::block`).
pub(super) mod gicd {
    use core::ops::Range;

    /// `GICD_CTLR`.
    pub const CTLR: u64 = 0x000;
    /// `GICD_TYPER`.
    pub const TYPER: u64 = 0x004;
    /// `GICD_IIDR`.
    pub const IIDR: u64 = 0x008;
    /// `GICD_ITARGETSR<n>`, one byte per INTID.
    pub const ITARGETSR: Range<u64> = 0x800..0xC00;
    /// The IMPLEMENTATION DEFINED block (the GIC-400's `PPISR`/`SPISR`).
    pub const IMPLEMENTATION_DEFINED: Range<u64> = 0xD00..0xE00;
    /// `GICD_SGIR`, write-only.
    pub const SGIR: u64 = 0xF00;
    /// `GICD_CPENDSGIR<n>`: one byte per SGI (SGI `n` at `0xF10 + n`).
    pub const CPENDSGIR: Range<u64> = 0xF10..0xF20;
    /// `GICD_SPENDSGIR<n>`: one byte per SGI (SGI `n` at `0xF20 + n`).
    pub const SPENDSGIR: Range<u64> = 0xF20..0xF30;
}

/// `GICD_TYPER` fields.
mod typer {
    /// ITLinesNumber, bits \[4:0\]: the GIC implements up to `32 * (N + 1)` INTIDs.
    pub const IT_LINES_SHIFT: u32 = 0;
    /// CPUNumber, bits \[7:5\]: CPU interfaces minus one.
    pub const CPU_NUMBER_SHIFT: u32 = 5;
    /// INTIDs per interrupt line group.
    pub const INTIDS_PER_LINE: u32 = 32;
    // SecurityExtn [10] and LSPI [15:11] are zero: no Security Extensions.
}

/// `GICD_IIDR` fields of an Arm GIC-400 (CoreLink GIC-400 TRM, "GICD_IIDR").
mod iidr {
    /// ProductID, bits \[31:24\]: 0x02, GIC-400.
    pub const PRODUCT_ID_GIC400: u32 = 0x02 << 24;
    /// Revision, bits \[15:12\]: 1.
    pub const REVISION: u32 = 0x1 << 12;
    /// Implementer, bits \[11:0\]: 0x43B, Arm (JEP106 continuation code 4, code 0x3B).
    pub const IMPLEMENTER_ARM: u32 = 0x43B;
}

/// `GICD_IIDR`: 0x0200_143B, an Arm GIC-400 r0p1.
pub(super) const IIDR: u32 = iidr::PRODUCT_ID_GIC400 | iidr::REVISION | iidr::IMPLEMENTER_ARM;

/// The set- and clear-pending bits of SGIs in `ISPENDR0` / `ICPENDR0`, read-only on
/// a GICv2 (IHI 0048B.b GICD_ISPENDRn / GICD_ICPENDRn: SGI pending state is set and
/// cleared per source through `GICD_SPENDSGIRn` / `GICD_CPENDSGIRn`).
const SGI_PENDING_BITS: u32 = (1 << SGIS) - 1;

/// One distributor access: the vCPU making it (the registers of INTIDs 0 to 31 are
/// banked), where, how wide.
#[derive(Clone, Copy, Debug)]
pub(super) struct Access {
    /// The accessing vCPU.
    pub vcpu: usize,
    /// Offset from the distributor's base.
    pub offset: u64,
    /// Width.
    pub width: AccessWidth,
}

/// A byte- or word-wide, naturally aligned access inside `block`: the index of its
/// first byte in the block and the number of bytes.
fn byte_access(block: &Range<u64>, offset: u64, width: AccessWidth) -> Option<(u32, u32)> {
    let byte_or_word = matches!(width, AccessWidth::Byte | AccessWidth::Word);
    (block.contains(&offset) && byte_or_word && width.is_aligned(offset))
        .then(|| ((offset - block.start) as u32, width.bytes() as u32))
}

impl VgicV2 {
    /// `GICD_TYPER`.
    fn typer(&self) -> u32 {
        let it_lines = self.intid_limit().div_ceil(typer::INTIDS_PER_LINE) - 1;
        let cpus = self.front.config.vcpus as u32 - 1;
        (it_lines << typer::IT_LINES_SHIFT) | (cpus << typer::CPU_NUMBER_SHIFT)
    }

    /// Reads the distributor; `None` for an access no register answers.
    pub(super) fn gicd_read(&mut self, at: Access) -> Option<u64> {
        let Access {
            vcpu,
            offset,
            width,
        } = at;
        if gicd::IMPLEMENTATION_DEFINED.contains(&offset) {
            return None;
        }
        if let Some(access) = IrqAccess::decode(offset, width) {
            let value = if access.first_intid() < FIRST_SPI {
                self.irqs
                    .private
                    .get(vcpu)
                    .map_or(0, |irqs| access.read(irqs, 0))
            } else {
                access.read(&self.irqs.spis, FIRST_SPI)
            };
            return Some(u64::from(value));
        }
        if let Some((first, count)) = byte_access(&gicd::ITARGETSR, offset, width) {
            return Some(self.bytes(first, count, |gic, intid| gic.target_byte(vcpu, intid)));
        }
        if let Some((first, count)) = byte_access(&gicd::CPENDSGIR, offset, width)
            .or_else(|| byte_access(&gicd::SPENDSGIR, offset, width))
        {
            return Some(self.bytes(first, count, |gic, sgi| gic.sgi_sources(vcpu, sgi)));
        }
        let word = width == AccessWidth::Word && width.is_aligned(offset);
        word.then(|| self.word_register(offset))?.map(u64::from)
    }

    /// The 32-bit register at `offset` outside the per-interrupt blocks, as read.
    fn word_register(&self, offset: u64) -> Option<u32> {
        Some(match offset {
            gicd::CTLR => self.group_enable_bits(),
            gicd::TYPER => self.typer(),
            gicd::IIDR => IIDR,
            // Write-only.
            gicd::SGIR => 0,
            _ => return read_gic400_id_register(offset),
        })
    }

    /// Writes the low `width` bytes of `value32` to the distributor; false for an
    /// access no register answers.
    pub(super) fn gicd_write(&mut self, at: Access, value32: u32) -> bool {
        let Access {
            vcpu,
            offset,
            width,
        } = at;
        if gicd::IMPLEMENTATION_DEFINED.contains(&offset) {
            return false;
        }
        if let Some(access) = IrqAccess::decode(offset, width) {
            self.write_interrupts(vcpu, &access, value32);
            return true;
        }
        if let Some((first, count)) = byte_access(&gicd::ITARGETSR, offset, width) {
            let mask = self.front.target_mask();
            for byte in 0..count {
                let spi = (first + byte).checked_sub(FIRST_SPI);
                if let Some(target) = spi.and_then(|spi| self.front.targets.get_mut(spi as usize)) {
                    *target = (value32 >> (8 * byte)) as u8 & mask;
                }
            }
            self.note_write(None, first..first + count);
            return true;
        }
        if let Some((first, count)) = byte_access(&gicd::CPENDSGIR, offset, width) {
            self.write_sgi_sources(vcpu, first, count, value32, false);
            return true;
        }
        if let Some((first, count)) = byte_access(&gicd::SPENDSGIR, offset, width) {
            self.write_sgi_sources(vcpu, first, count, value32, true);
            return true;
        }
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return false;
        }
        match offset {
            gicd::CTLR => {
                self.write_group_enables(value32);
                true
            }
            gicd::SGIR => {
                self.send_sgi(vcpu, value32);
                true
            }
            // Read-only.
            gicd::TYPER | gicd::IIDR => true,
            _ => read_gic400_id_register(offset).is_some(),
        }
    }

    /// A write to one of the per-interrupt blocks.
    fn write_interrupts(&mut self, vcpu: usize, access: &IrqAccess, value: u32) {
        let first = access.first_intid();
        let intids = first..first.saturating_add(access.intids());
        if first >= FIRST_SPI {
            access.write(&mut self.irqs.spis, FIRST_SPI, value);
            self.note_write(None, intids);
            return;
        }
        let value = match access {
            IrqAccess::Bits {
                register: BitRegister::SetPending | BitRegister::ClearPending,
                ..
            } => value & !SGI_PENDING_BITS,
            _ => value,
        };
        if let Some(irqs) = self.irqs.private.get_mut(vcpu) {
            access.write(irqs, 0, value);
            self.note_write(Some(vcpu), intids);
        }
    }

    /// `count` bytes from byte `first` of a one-byte-per-item register block, byte
    /// `i` being `byte(self, first + i)`.
    fn bytes(&self, first: u32, count: u32, byte: impl Fn(&Self, u32) -> u8) -> u64 {
        (0..count).fold(0, |value, i| {
            value | u64::from(byte(self, first + i)) << (8 * i)
        })
    }

    /// `GICD_ITARGETSR` byte of INTID `intid` as vCPU `vcpu` reads it.
    fn target_byte(&self, vcpu: usize, intid: u32) -> u8 {
        if intid < PRIVATE_INTERRUPTS {
            // Banked and read-only: the reading CPU's own bit.
            return if vcpu < self.front.config.vcpus {
                cpu_bit(vcpu) & self.front.target_mask()
            } else {
                0
            };
        }
        let index = (intid - FIRST_SPI) as usize;
        self.front.targets.get(index).copied().unwrap_or(0)
    }

    /// The `GICD_C/SPENDSGIR` byte of SGI `sgi` as vCPU `vcpu` reads it: the sources
    /// it is pending from, including one placed in a list register.
    fn sgi_sources(&self, vcpu: usize, sgi: u32) -> u8 {
        let Some(sgis) = self.front.sgis.get(vcpu) else {
            return 0;
        };
        let listed = self.irqs.shadows.get(vcpu).map_or(0, |shadow| {
            shadow
                .entries()
                .iter()
                .filter(|entry| entry.intid == sgi && entry.state.pending)
                .fold(0, |bits, entry| bits | cpu_bit(usize::from(entry.source)))
        });
        sgis.pending(sgi) | listed
    }

    /// Sets (`set`) or clears the source bits of `count` SGIs from SGI `first` of vCPU
    /// `vcpu`. A source already in a list register stays there (it cannot be when the
    /// vCPU's list registers are synced before its accesses, as [`Vgic::sync`] asks).
    fn write_sgi_sources(&mut self, vcpu: usize, first: u32, count: u32, value: u32, set: bool) {
        let cpus = self.front.cpu_mask();
        let (Some(sgis), Some(irqs)) = (
            self.front.sgis.get_mut(vcpu),
            self.irqs.private.get_mut(vcpu),
        ) else {
            return;
        };
        for byte in 0..count {
            let sgi = first + byte;
            let sources = (value >> (8 * byte)) as u8 & cpus;
            if set {
                sgis.set_pending(sgi, sources);
            } else {
                sgis.clear_pending(sgi, sources);
            }
            if let Some(irq) = irqs.get_mut(sgi as usize) {
                irq.set_latch(sgis.any_pending(sgi));
            }
        }
        for sgi in first..first + count {
            self.touch(Some(vcpu), sgi);
        }
    }

    /// A `GICD_SGIR` write by vCPU `sender`.
    fn send_sgi(&mut self, sender: usize, value: u32) {
        if sender >= self.front.config.vcpus {
            return;
        }
        let request = GicdSgir::decode(value);
        let targets = request.targets(sender, self.front.cpu_mask());
        for target in 0..self.front.config.vcpus {
            if targets & cpu_bit(target) != 0 {
                self.raise_sgi_from(target, request.intid, sender);
                self.kicks.add(target);
            }
        }
    }
}
