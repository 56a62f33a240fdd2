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
//!
//! The GICv2 distributor has the same twelve registers at `0xFD0`-`0xFFC`
//! (IHI 0048B.b section 4.3, "Identification registers": only `ICPIDR2.ArchRev` is
//! architected, 2 for GICv2). The GICv2 front-end presents itself as an Arm GIC-400
//! (its `GICD_IIDR` is the GIC-400's), so it reports the GIC-400's values (CoreLink
//! GIC-400 TRM, "Identification registers"): part number 0x490, ArchRev 2.
//!
//! | offset | register | GIC-400 value |
//! |---|---|---|
//! | `0xFD0` | `ICPIDR4` | `0x04` |
//! | `0xFD4`-`0xFDC` | `ICPIDR5-7` | 0 |
//! | `0xFE0` | `ICPIDR0` | `0x90`: part number bits \[7:0\] |
//! | `0xFE4` | `ICPIDR1` | `0xB4`: DES_0 = 0xB, part number bits \[11:8\] = 4 |
//! | `0xFE8` | `ICPIDR2` | `0x2B`: ArchRev = 2 (GICv2), JEDEC = 1, DES_1 = 3 |
//! | `0xFEC` | `ICPIDR3` | 0 |
//! | `0xFF0`-`0xFFC` | `ICCIDR0-3` | `0x0D`, `0xF0`, `0x05`, `0xB1` |

/// Offset of `PIDR4`, the first identification register.
pub(crate) const FIRST: u64 = 0xFFD0;
/// Offset of the GICv2 distributor's `ICPIDR4`, its first identification register.
pub(crate) const FIRST_V2: u64 = 0xFD0;
/// `PIDR2.ArchRev`, bits \[7:4\]: 3 for GICv3.
const ARCH_REV_GICV3: u32 = 0x3 << 4;
/// `ICPIDR2.ArchRev`, bits \[7:4\]: 2 for GICv2.
const ARCH_REV_GICV2: u32 = 0x2 << 4;
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

/// The GIC-400 distributor's twelve registers from [`FIRST_V2`]: ICPIDR4-7,
/// ICPIDR0-3, ICCIDR0-3.
const GIC400_VALUES: [u32; 12] = [
    0x04,
    0,
    0,
    0,
    0x90,
    0xB4,
    ARCH_REV_GICV2 | JEDEC | DES_1_ARM,
    0x00,
    0x0D,
    0xF0,
    0x05,
    0xB1,
];

/// The value of the identification register at word-aligned `offset`, or `None` if
/// `offset` is not one.
pub(crate) fn read(offset: u64) -> Option<u32> {
    lookup(&VALUES, FIRST, offset)
}

/// The value of the GICv2 (GIC-400) distributor's identification register at
/// word-aligned `offset`, or `None` if `offset` is not one.
pub(crate) fn read_gic400(offset: u64) -> Option<u32> {
    lookup(&GIC400_VALUES, FIRST_V2, offset)
}

/// `values[i]` is the register at `first + 4 * i`.
fn lookup(values: &[u32], first: u64, offset: u64) -> Option<u32> {
    if offset % 4 != 0 {
        return None;
    }
    let index = usize::try_from(offset.checked_sub(first)? / 4).ok()?;
    values.get(index).copied()
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

    #[test]
    fn gic400_values_at_their_offsets() {
        // CoreLink GIC-400 TRM: ICPIDR0-2 = 0x90, 0xB4, 0x2B (part 0x490, ArchRev 2),
        // ICPIDR4 = 0x04, ICCIDR0-3 = 0x0D, 0xF0, 0x05, 0xB1.
        assert_eq!(read_gic400(0xFE0), Some(0x90));
        assert_eq!(read_gic400(0xFE4), Some(0xB4));
        assert_eq!(read_gic400(0xFE8), Some(0x2B));
        assert_eq!(
            read_gic400(0xFE8).unwrap() >> 4 & 0xF,
            2,
            "ArchRev is GICv2"
        );
        assert_eq!(read_gic400(0xFD0), Some(0x04));
        assert_eq!(read_gic400(0xFEC), Some(0));
        let cidr: [Option<u32>; 4] = core::array::from_fn(|i| read_gic400(0xFF0 + 4 * i as u64));
        assert_eq!(cidr, [Some(0x0D), Some(0xF0), Some(0x05), Some(0xB1)]);
        for offset in [0xFCC, 0x1000, 0xFE9, 0xFFE8, 0] {
            assert_eq!(read_gic400(offset), None, "{offset:#x}");
        }
    }
}
