//! The register blocks indexed by INTID that the distributor (`GICD_*`, for SPIs)
//! and the redistributor's SGI frame (`GICR_*`, for SGIs and PPIs) share: same
//! offsets, same layout (IHI 0069H, registers `GICD_IGROUPR<n>`, `GICD_ISENABLER<n>`,
//! ..., and their GICR_*0 counterparts in the SGI_base frame).
//!
//! | offset | register | per interrupt | accesses |
//! |---|---|---|---|
//! | `0x080` | `IGROUPR<n>` | 1 bit: Group 1 | 32-bit |
//! | `0x100` / `0x180` | `ISENABLER<n>` / `ICENABLER<n>` | 1 bit, write 1 to set / clear | 32-bit |
//! | `0x200` / `0x280` | `ISPENDR<n>` / `ICPENDR<n>` | 1 bit | 32-bit |
//! | `0x300` / `0x380` | `ISACTIVER<n>` / `ICACTIVER<n>` | 1 bit | 32-bit |
//! | `0x400` | `IPRIORITYR<n>` | 1 byte | 8- or 32-bit |
//! | `0xC00` | `ICFGR<n>` | 2 bits, bit 1 = edge-triggered | 32-bit |
//! | `0xD00` | `IGRPMODR<n>` | RAZ/WI: `GICD_CTLR.DS` is 1 | 32-bit |
//! | `0xE00` | `NSACR<n>` | RAZ/WI: `GICD_CTLR.DS` is 1 | 32-bit |

use super::SGIS;
use super::state::IrqState;
use crate::mmio::AccessWidth;

/// Offsets of the blocks.
pub(crate) mod block {
    /// `IGROUPR<n>`.
    pub const IGROUPR: u64 = 0x0080;
    /// `ISENABLER<n>`.
    pub const ISENABLER: u64 = 0x0100;
    /// `ICENABLER<n>`.
    pub const ICENABLER: u64 = 0x0180;
    /// `ISPENDR<n>`.
    pub const ISPENDR: u64 = 0x0200;
    /// `ICPENDR<n>`.
    pub const ICPENDR: u64 = 0x0280;
    /// `ISACTIVER<n>`.
    pub const ISACTIVER: u64 = 0x0300;
    /// `ICACTIVER<n>`.
    pub const ICACTIVER: u64 = 0x0380;
    /// `IPRIORITYR<n>`.
    pub const IPRIORITYR: u64 = 0x0400;
    /// End of the `IPRIORITYR<n>` block (one byte for each of 1024 INTIDs).
    pub const IPRIORITYR_END: u64 = 0x0800;
    /// `ICFGR<n>`.
    pub const ICFGR: u64 = 0x0C00;
    /// `IGRPMODR<n>`.
    pub const IGRPMODR: u64 = 0x0D00;
    /// End of the `IGRPMODR<n>` block.
    pub const IGRPMODR_END: u64 = 0x0D80;
    /// `NSACR<n>`.
    pub const NSACR: u64 = 0x0E00;
    /// End of the `NSACR<n>` block.
    pub const NSACR_END: u64 = 0x0F00;
    /// Size of each one-bit-per-interrupt block (32 registers for 1024 INTIDs).
    pub const BIT_BLOCK_SIZE: u64 = 0x80;
    /// Size of the `ICFGR<n>` block (64 registers, 16 INTIDs each).
    pub const ICFGR_SIZE: u64 = 0x100;
}

/// INTIDs per one-bit-per-interrupt register.
const BITS_PER_REGISTER: u32 = 32;
/// INTIDs per `ICFGR<n>`.
const CONFIGS_PER_REGISTER: u32 = 16;
/// `ICFGR<n>` Int_config bit 1 of a field: edge-triggered.
const CONFIG_EDGE: u32 = 0b10;

/// A register with one bit per interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitRegister {
    /// `IGROUPR`: the group, read-write.
    Group,
    /// `ISENABLER`.
    SetEnable,
    /// `ICENABLER`.
    ClearEnable,
    /// `ISPENDR`.
    SetPending,
    /// `ICPENDR`.
    ClearPending,
    /// `ISACTIVER`.
    SetActive,
    /// `ICACTIVER`.
    ClearActive,
}

// `IrqAccess::decode` finds a bit register's block by arithmetic.
const _: () = {
    let mut n = 0;
    while n < BitRegister::BLOCKS.len() {
        assert!(BitRegister::BLOCKS[n].0 == block::IGROUPR + n as u64 * block::BIT_BLOCK_SIZE);
        n += 1;
    }
};

impl BitRegister {
    /// In offset order, each [`block::BIT_BLOCK_SIZE`] after the one before.
    const BLOCKS: [(u64, Self); 7] = [
        (block::IGROUPR, Self::Group),
        (block::ISENABLER, Self::SetEnable),
        (block::ICENABLER, Self::ClearEnable),
        (block::ISPENDR, Self::SetPending),
        (block::ICPENDR, Self::ClearPending),
        (block::ISACTIVER, Self::SetActive),
        (block::ICACTIVER, Self::ClearActive),
    ];

    fn read(self, irq: &IrqState) -> bool {
        match self {
            Self::Group => irq.group1,
            Self::SetEnable | Self::ClearEnable => irq.enabled,
            Self::SetPending | Self::ClearPending => irq.pending(),
            Self::SetActive | Self::ClearActive => irq.active(),
        }
    }

    fn write(self, irq: &mut IrqState, bit: bool) {
        match (self, bit) {
            (Self::Group, group1) => irq.group1 = group1,
            // Writing 0 to a set/clear register has no effect.
            (_, false) => {}
            (Self::SetEnable, true) => irq.enabled = true,
            (Self::ClearEnable, true) => irq.enabled = false,
            (Self::SetPending, true) => irq.guest_set_pending(),
            (Self::ClearPending, true) => irq.guest_clear_pending(),
            (Self::SetActive, true) => irq.guest_set_active(),
            (Self::ClearActive, true) => irq.guest_clear_active(),
        }
    }
}

/// An access to one of the blocks, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IrqAccess {
    /// A one-bit-per-interrupt register whose bit 0 is `first_intid`.
    Bits {
        /// Which register.
        register: BitRegister,
        /// The INTID of bit 0.
        first_intid: u32,
    },
    /// `count` priority bytes starting at `first_intid`'s.
    Priority {
        /// The INTID of the lowest byte.
        first_intid: u32,
        /// Bytes accessed (1 or 4).
        count: u32,
    },
    /// An `ICFGR` whose field 0 is `first_intid`'s.
    Config {
        /// The INTID of field 0.
        first_intid: u32,
    },
    /// `IGRPMODR` or `NSACR`: read as zero, writes ignored.
    RazWi {
        /// The INTID of the register's first bit or field.
        first_intid: u32,
    },
}

impl IrqAccess {
    /// The first INTID the access covers.
    pub(crate) const fn first_intid(&self) -> u32 {
        match *self {
            Self::Bits { first_intid, .. }
            | Self::Priority { first_intid, .. }
            | Self::Config { first_intid }
            | Self::RazWi { first_intid } => first_intid,
        }
    }

    /// How many INTIDs from [`first_intid`](Self::first_intid) the access covers (an
    /// upper bound for `RazWi`, whose `NSACR` words cover 16).
    pub(crate) const fn intids(&self) -> u32 {
        match *self {
            Self::Bits { .. } | Self::RazWi { .. } => BITS_PER_REGISTER,
            Self::Priority { count, .. } => count,
            Self::Config { .. } => CONFIGS_PER_REGISTER,
        }
    }

    /// Decodes an access at `offset`, if it is one of these registers at a width and
    /// alignment the architecture allows (IHI 0069H, "GIC register access": 32-bit
    /// accesses, plus byte accesses to `IPRIORITYR`).
    pub(crate) fn decode(offset: u64, width: AccessWidth) -> Option<Self> {
        if !width.is_aligned(offset) {
            return None;
        }
        let word = width == AccessWidth::Word;
        // The bit-register blocks lie back to back from IGROUPR: the block is found
        // by arithmetic, not by a search.
        let block_index = offset
            .checked_sub(block::IGROUPR)
            .map(|within| within / block::BIT_BLOCK_SIZE);
        if let Some(&(base, register)) =
            block_index.and_then(|index| BitRegister::BLOCKS.get(usize::try_from(index).ok()?))
        {
            let first_intid = ((offset - base) * 8) as u32;
            return word.then_some(Self::Bits {
                register,
                first_intid,
            });
        }
        match offset {
            block::IPRIORITYR..block::IPRIORITYR_END => {
                let count = width.bytes() as u32;
                (word || width == AccessWidth::Byte).then_some(Self::Priority {
                    first_intid: (offset - block::IPRIORITYR) as u32,
                    count,
                })
            }
            _ if (block::ICFGR..block::ICFGR + block::ICFGR_SIZE).contains(&offset) => word
                .then_some(Self::Config {
                    first_intid: ((offset - block::ICFGR) * 4) as u32,
                }),
            // IGRPMODR: one bit per INTID; NSACR: two bits per INTID.
            block::IGRPMODR..block::IGRPMODR_END => word.then_some(Self::RazWi {
                first_intid: ((offset - block::IGRPMODR) * 8) as u32,
            }),
            block::NSACR..block::NSACR_END => word.then_some(Self::RazWi {
                first_intid: ((offset - block::NSACR) * 4) as u32,
            }),
            _ => None,
        }
    }

    /// Reads the register, where `irqs[i]` is INTID `base + i`; bits of INTIDs
    /// outside `irqs` read as zero.
    pub(crate) fn read(&self, irqs: &[IrqState], base: u32) -> u32 {
        let irq = |intid: u32| intid.checked_sub(base).and_then(|i| irqs.get(i as usize));
        match *self {
            Self::Bits {
                register,
                first_intid,
            } => (0..BITS_PER_REGISTER)
                .filter(|&bit| irq(first_intid + bit).is_some_and(|irq| register.read(irq)))
                .fold(0, |value, bit| value | 1 << bit),
            Self::Priority { first_intid, count } => (0..count).fold(0, |value, byte| {
                let priority = irq(first_intid + byte).map_or(0, IrqState::priority);
                value | u32::from(priority) << (8 * byte)
            }),
            Self::Config { first_intid } => (0..CONFIGS_PER_REGISTER)
                .filter(|&field| irq(first_intid + field).is_some_and(IrqState::is_edge))
                .fold(0, |value, field| value | CONFIG_EDGE << (2 * field)),
            Self::RazWi { .. } => 0,
        }
    }

    /// Writes `value` to the register (see [`read`](Self::read)); writes to INTIDs
    /// outside `irqs` are ignored, as are writes to the SGIs' fixed `ICFGR` fields.
    pub(crate) fn write(&self, irqs: &mut [IrqState], base: u32, value: u32) {
        match *self {
            Self::Bits {
                register,
                first_intid,
            } => {
                for bit in 0..BITS_PER_REGISTER {
                    if let Some(irq) = slot(irqs, base, first_intid + bit) {
                        register.write(irq, value & (1 << bit) != 0);
                    }
                }
            }
            Self::Priority { first_intid, count } => {
                for byte in 0..count {
                    if let Some(irq) = slot(irqs, base, first_intid + byte) {
                        irq.set_priority((value >> (8 * byte)) as u8);
                    }
                }
            }
            Self::Config { first_intid } => {
                for field in 0..CONFIGS_PER_REGISTER {
                    let intid = first_intid + field;
                    // SGIs are always edge-triggered: their fields are read-only
                    // (IHI 0069H, GICR_ICFGR0).
                    if intid < SGIS {
                        continue;
                    }
                    if let Some(irq) = slot(irqs, base, intid) {
                        irq.set_edge(value & (CONFIG_EDGE << (2 * field)) != 0);
                    }
                }
            }
            Self::RazWi { .. } => {}
        }
    }
}

/// INTID `intid` in `irqs`, whose first element is INTID `base`.
fn slot(irqs: &mut [IrqState], base: u32, intid: u32) -> Option<&mut IrqState> {
    irqs.get_mut(intid.checked_sub(base)? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const B: AccessWidth = AccessWidth::Byte;
    const H: AccessWidth = AccessWidth::Half;
    const W: AccessWidth = AccessWidth::Word;
    const D: AccessWidth = AccessWidth::Double;

    fn irqs(count: usize) -> Vec<IrqState> {
        (0..count).map(|_| IrqState::new(false)).collect()
    }

    #[test]
    fn decodes_offsets_and_widths() {
        // GICD_ISENABLER1 at 0x104 covers INTIDs 32..63.
        assert_eq!(
            IrqAccess::decode(0x104, W),
            Some(IrqAccess::Bits {
                register: BitRegister::SetEnable,
                first_intid: 32
            })
        );
        assert_eq!(
            IrqAccess::decode(0x3FC, W),
            Some(IrqAccess::Bits {
                register: BitRegister::ClearActive,
                first_intid: 992
            })
        );
        // IPRIORITYR: byte 0x421 is INTID 33.
        assert_eq!(
            IrqAccess::decode(0x421, B),
            Some(IrqAccess::Priority {
                first_intid: 33,
                count: 1
            })
        );
        assert_eq!(
            IrqAccess::decode(0x420, W),
            Some(IrqAccess::Priority {
                first_intid: 32,
                count: 4
            })
        );
        // ICFGR2 at 0xC08 covers INTIDs 32..47.
        assert_eq!(
            IrqAccess::decode(0xC08, W),
            Some(IrqAccess::Config { first_intid: 32 })
        );
        assert_eq!(
            IrqAccess::decode(0xD04, W),
            Some(IrqAccess::RazWi { first_intid: 32 })
        );
        assert_eq!(
            IrqAccess::decode(0xE08, W),
            Some(IrqAccess::RazWi { first_intid: 32 })
        );
        // Wrong widths and misaligned accesses.
        for (offset, width) in [
            (0x104, B),
            (0x104, H),
            (0x100, D),
            (0x102, W),
            (0x420, H),
            (0x422, W),
            (0xC08, B),
            (0xD00, D),
        ] {
            assert_eq!(
                IrqAccess::decode(offset, width),
                None,
                "{offset:#x} {width:?}"
            );
        }
        // Outside the blocks.
        for offset in [0x0, 0x7C, 0x800, 0xBFC, 0xD80, 0xF00, 0x6100] {
            assert_eq!(IrqAccess::decode(offset, W), None, "{offset:#x}");
        }
    }

    #[test]
    fn bits_map_to_intids_from_base() {
        let mut spis = irqs(32);
        let enable = IrqAccess::decode(0x104, W).unwrap();
        enable.write(&mut spis, 32, 0x8000_0003);
        assert!(spis[0].enabled && spis[1].enabled && spis[31].enabled);
        assert!(!spis[2].enabled);
        assert_eq!(enable.read(&spis, 32), 0x8000_0003);
        // ICENABLER clears; zeros have no effect.
        IrqAccess::decode(0x184, W)
            .unwrap()
            .write(&mut spis, 32, 0x1);
        assert_eq!(enable.read(&spis, 32), 0x8000_0002);
        // A register beyond the slice reads as zero and ignores writes.
        let beyond = IrqAccess::decode(0x108, W).unwrap();
        beyond.write(&mut spis, 32, u32::MAX);
        assert_eq!(beyond.read(&spis, 32), 0);
        // Below the base too.
        let below = IrqAccess::decode(0x100, W).unwrap();
        below.write(&mut spis, 32, u32::MAX);
        assert_eq!(below.read(&spis, 32), 0);
    }

    #[test]
    fn group_is_read_write() {
        let mut private = irqs(32);
        let group = IrqAccess::decode(0x80, W).unwrap();
        group.write(&mut private, 0, 0x0000_FFFF);
        assert_eq!(group.read(&private, 0), 0x0000_FFFF);
    }

    #[test]
    fn priorities_by_byte_and_word() {
        let mut private = irqs(32);
        let word = IrqAccess::decode(0x418, W).unwrap();
        word.write(&mut private, 0, 0xA0B0_C0D0);
        assert_eq!(private[24].priority(), 0xD0);
        assert_eq!(private[27].priority(), 0xA0);
        let byte = IrqAccess::decode(0x41B, B).unwrap();
        byte.write(&mut private, 0, 0x1FF);
        assert_eq!(private[27].priority(), 0xF8, "five bits kept");
        assert_eq!(word.read(&private, 0), 0xF8B0_C0D0);
        assert_eq!(byte.read(&private, 0), 0xF8);
    }

    #[test]
    fn config_fields_and_fixed_sgis() {
        let mut private: Vec<IrqState> = (0..32).map(|i| IrqState::new(i < 16)).collect();
        let sgis = IrqAccess::decode(0xC00, W).unwrap();
        let ppis = IrqAccess::decode(0xC04, W).unwrap();
        assert_eq!(sgis.read(&private, 0), 0xAAAA_AAAA, "SGIs are edge");
        sgis.write(&mut private, 0, 0);
        assert_eq!(sgis.read(&private, 0), 0xAAAA_AAAA, "read-only");
        assert_eq!(ppis.read(&private, 0), 0);
        // Field for INTID 27 is bits [23:22]; bit 22 (Int_config[0]) is RES0.
        ppis.write(&mut private, 0, 0b11 << 22);
        assert!(private[27].is_edge());
        assert_eq!(ppis.read(&private, 0), 0b10 << 22);
    }
}
