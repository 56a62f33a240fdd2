//! Software-generated interrupts requested through `ICC_SGI1R_EL1` (Arm ARM DDI
//! 0487 and IHI 0069H, register ICC_SGI1R_EL1).
//!
//! With `IRM` clear the request names targets as Aff3.Aff2.Aff1 plus a 16-bit list of
//! Aff0 values `RS * 16 + n`; with `IRM` set it targets every PE but the sender.
//! Aerie's vCPUs have affinities Aff0 = index % 16, Aff1 = index / 16 (see
//! [`vcpu_affinity`](super::vcpu_affinity)), so one request reaches at most one group
//! of 16 consecutive vCPUs, or all of them.

/// `ICC_SGI1R_EL1` fields.
mod field {
    /// TargetList, bits \[15:0\].
    pub const TARGET_LIST_MASK: u64 = 0xFFFF;
    /// Aff1, bits \[23:16\].
    pub const AFF1_SHIFT: u32 = 16;
    /// INTID, bits \[27:24\].
    pub const INTID_SHIFT: u32 = 24;
    /// Width mask of INTID once shifted down.
    pub const INTID_MASK: u64 = 0xF;
    /// Aff2, bits \[39:32\].
    pub const AFF2_SHIFT: u32 = 32;
    /// IRM, bit \[40\]: every PE but the sender.
    pub const IRM: u64 = 1 << 40;
    /// RS, bits \[47:44\]: the range selector.
    pub const RS_SHIFT: u32 = 44;
    /// Width mask of RS once shifted down.
    pub const RS_MASK: u64 = 0xF;
    /// Aff3, bits \[55:48\].
    pub const AFF3_SHIFT: u32 = 48;
    /// Width mask of an affinity field once shifted down.
    pub const AFF_MASK: u64 = 0xFF;
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
            intid: ((value >> field::INTID_SHIFT) & field::INTID_MASK) as u32,
            all_but_self: value & field::IRM != 0,
            target_list: (value & field::TARGET_LIST_MASK) as u16,
            range_selector: ((value >> field::RS_SHIFT) & field::RS_MASK) as u8,
            aff1: ((value >> field::AFF1_SHIFT) & field::AFF_MASK) as u8,
            aff2: ((value >> field::AFF2_SHIFT) & field::AFF_MASK) as u8,
            aff3: ((value >> field::AFF3_SHIFT) & field::AFF_MASK) as u8,
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
