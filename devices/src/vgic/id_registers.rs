//! The identification registers at the top of the distributor's and of each
//! redistributor's RD frame (IHI 0069H, "Identification registers", and registers
//! GICD_PIDR2 / GICR_PIDR2).
//!
//! Only `PIDR2.ArchRev` is architected for the GIC (Linux checks it is 3 or 4 before
//! using a distributor or redistributor); the rest follow the CoreSight/PrimeCell
//! convention: designer Arm (JEP106 continuation code 4, identity 0x3B, as KVM and
//! QEMU report for their virtual GICs), part number 0, and the component preamble
//! `0xB105_F00D` in `CIDR0-3`.
//!
//! | offset | register | value |
//! |---|---|---|
//! | `0xFFD0` | `PIDR4` | `0x04`: DES_2 = 4 (JEP106 continuation code), SIZE = 0 |
//! | `0xFFD4`-`0xFFDC` | `PIDR5-7` | 0 (reserved) |
//! | `0xFFE0` | `PIDR0` | `0x00`: part number bits \[7:0\] |
//! | `0xFFE4` | `PIDR1` | `0xB0`: DES_0 = 0xB (JEP106 identity bits \[3:0\]), part number bits \[11:8\] = 0 |
//! | `0xFFE8` | `PIDR2` | `0x3B`: ArchRev = 3 (GICv3), JEDEC = 1, DES_1 = 3 (identity bits \[6:4\]) |
//! | `0xFFEC` | `PIDR3` | 0 |
//! | `0xFFF0`-`0xFFFC` | `CIDR0-3` | `0x0D`, `0xF0`, `0x05`, `0xB1` |

/// Offset of `PIDR4`, the first identification register.
pub(crate) const FIRST: u64 = 0xFFD0;
/// `PIDR2.ArchRev`, bits \[7:4\]: 3 for GICv3.
const ARCH_REV_GICV3: u32 = 0x3 << 4;
/// `PIDR2.JEDEC`, bit 3: the designer field is a JEP106 code.
const JEDEC: u32 = 1 << 3;
/// `PIDR2.DES_1`, bits \[2:0\]: bits \[6:4\] of Arm's JEP106 identity code 0x3B.
const DES_1_ARM: u32 = 0x3;

/// The twelve registers from [`FIRST`], one word each: PIDR4-7, PIDR0-3, CIDR0-3.
const VALUES: [u32; 12] = [
    0x04,
    0,
    0,
    0,
    0x00,
    0xB0,
    ARCH_REV_GICV3 | JEDEC | DES_1_ARM,
    0x00,
    0x0D,
    0xF0,
    0x05,
    0xB1,
];

/// The value of the identification register at word-aligned `offset`, or `None` if
/// `offset` is not one.
pub(crate) fn read(offset: u64) -> Option<u32> {
    if offset % 4 != 0 {
        return None;
    }
    let index = usize::try_from(offset.checked_sub(FIRST)? / 4).ok()?;
    VALUES.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_their_offsets() {
        assert_eq!(read(0xFFE8), Some(0x3B));
        assert_eq!(read(0xFFE8).unwrap() >> 4 & 0xF, 3, "ArchRev is GICv3");
        assert_eq!(read(0xFFD0), Some(0x04));
        assert_eq!(read(0xFFE4), Some(0xB0));
        assert_eq!(read(0xFFF0), Some(0x0D));
        assert_eq!(read(0xFFFC), Some(0xB1));
        assert_eq!(read(0xFFD8), Some(0));
        assert_eq!(read(0xFFCC), None);
        assert_eq!(read(0x1_0000), None);
        assert_eq!(read(0xFFE9), None);
        assert_eq!(read(0), None);
    }
}
