//! Software-generated interrupts requested through `ICC_SGI1R_EL1` (Arm ARM DDI
//! 0487 and IHI 0069H, register ICC_SGI1R_EL1).
//!
//! With `IRM` clear the request names targets as Aff3.Aff2.Aff1 plus a 16-bit list of
//! Aff0 values `RS * 16 + n`; with `IRM` set it targets every PE but the sender.
//! Aerie's vCPUs have affinities Aff0 = index % 16, Aff1 = index / 16 (see
//! [`vcpu_affinity`](super::vcpu_affinity)), so one request reaches at most one group
//! of 16 consecutive vCPUs, or all of them.

/// `ICC_SGI1R_EL1` fields, as (lowest bit, width): TargetList \[15:0\], Aff1
/// \[23:16\], INTID \[27:24\], Aff2 \[39:32\], IRM \[40\] (every PE but the
/// sender), RS \[47:44\] (the range selector), Aff3 \[55:48\].
mod field {
    pub const TARGET_LIST: (u32, u32) = (0, 16);
    pub const AFF1: (u32, u32) = (16, 8);
    pub const INTID: (u32, u32) = (24, 4);
    pub const AFF2: (u32, u32) = (32, 8);
    pub const IRM: (u32, u32) = (40, 1);
    pub const RS: (u32, u32) = (44, 4);
    pub const AFF3: (u32, u32) = (48, 8);
}

/// The field at (lowest bit, width) of `value`.
const fn extract(value: u64, (lsb, width): (u32, u32)) -> u64 {
    (value >> lsb) & ((1 << width) - 1)
}

/// A decoded `ICC_SGI1R_EL1` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SgiRequest {
    /// The SGI, 0 to 15.
    pub intid: u32,
    /// Every PE but the sender (IRM); the affinity fields are then ignored.
    pub all_but_self: bool,
    /// Bit `n` targets the PE with Aff0 = `range_selector * 16 + n`.
    pub target_list: u16,
    /// RS: which group of 16 Aff0 values the target list covers.
    pub range_selector: u8,
    /// Aff1 of the targets.
    pub aff1: u8,
    /// Aff2 of the targets.
    pub aff2: u8,
    /// Aff3 of the targets.
    pub aff3: u8,
}

impl SgiRequest {
    /// Decodes a value written to `ICC_SGI1R_EL1` (RES0 bits are ignored).
    pub const fn decode(value: u64) -> Self {
        Self {
            intid: extract(value, field::INTID) as u32,
            all_but_self: extract(value, field::IRM) != 0,
            target_list: extract(value, field::TARGET_LIST) as u16,
            range_selector: extract(value, field::RS) as u8,
            aff1: extract(value, field::AFF1) as u8,
            aff2: extract(value, field::AFF2) as u8,
            aff3: extract(value, field::AFF3) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_field() {
        // Aff3 [55:48] = 0x12, RS [47:44] = 0x3, IRM [40] = 0, Aff2 [39:32] = 0x45,
        // INTID [27:24] = 0xA, Aff1 [23:16] = 0x67, TargetList [15:0] = 0x8001.
        let value = (0x12 << 48) | (0x3 << 44) | (0x45 << 32) | (0xA << 24) | (0x67 << 16) | 0x8001;
        assert_eq!(
            SgiRequest::decode(value),
            SgiRequest {
                intid: 10,
                all_but_self: false,
                target_list: 0x8001,
                range_selector: 3,
                aff1: 0x67,
                aff2: 0x45,
                aff3: 0x12,
            }
        );
        let broadcast = SgiRequest::decode(1 << 40 | 5 << 24);
        assert!(broadcast.all_but_self);
        assert_eq!(broadcast.intid, 5);
        // RES0 bits do not leak into fields.
        assert_eq!(SgiRequest::decode(u64::MAX).intid, 15);
    }
}
