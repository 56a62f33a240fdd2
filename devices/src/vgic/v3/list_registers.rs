//! The GICv3 list registers: the `ICH_LR<n>_EL2` format (Arm ARM DDI 0487 and
//! IHI 0069H, register `ICH_LR<n>_EL2`).

use crate::vgic::core::{ListRegisterFormat, LrEntry, LrState};

/// `ICH_LR<n>_EL2` fields.
pub mod ich_lr {
    /// vINTID, bits \[31:0\]: the virtual INTID.
    pub const VINTID_MASK: u64 = 0xFFFF_FFFF;
    /// pINTID, bits \[44:32\]: the physical INTID, when `HW` is set.
    pub const PINTID_SHIFT: u32 = 32;
    /// Width mask of pINTID once shifted down (13 bits).
    pub const PINTID_MASK: u64 = 0x1FFF;
    /// Priority, bits \[55:48\].
    pub const PRIORITY_SHIFT: u32 = 48;
    /// Group, bit \[60\]: 1 for Group 1.
    pub const GROUP: u64 = 1 << 60;
    /// HW, bit \[61\]: deactivating the virtual interrupt deactivates pINTID.
    pub const HW: u64 = 1 << 61;
    /// State, bits \[63:62\].
    pub const STATE_SHIFT: u32 = 62;
    /// State bit 62: pending.
    pub const STATE_PENDING: u64 = 1 << 62;
    /// State bit 63: active.
    pub const STATE_ACTIVE: u64 = 1 << 63;
}

/// Where `ICH_LR<n>_EL2` keeps the state, HW and vINTID fields.
pub(crate) const FORMAT: ListRegisterFormat = ListRegisterFormat {
    pending: ich_lr::STATE_PENDING,
    active: ich_lr::STATE_ACTIVE,
    hardware: ich_lr::HW,
    virtual_intid: ich_lr::VINTID_MASK,
};

/// The `ICH_LR<n>_EL2` value for `entry`.
pub(crate) fn encode(entry: &LrEntry) -> u64 {
    let mut value = u64::from(entry.intid) & ich_lr::VINTID_MASK;
    value |= u64::from(entry.priority) << ich_lr::PRIORITY_SHIFT;
    if entry.group1 {
        value |= ich_lr::GROUP;
    }
    if let Some(physical) = entry.physical {
        value |= ich_lr::HW | ((u64::from(physical) & ich_lr::PINTID_MASK) << ich_lr::PINTID_SHIFT);
    }
    if entry.state.pending {
        value |= ich_lr::STATE_PENDING;
    }
    if entry.state.active {
        value |= ich_lr::STATE_ACTIVE;
    }
    value
}

/// The vINTID and state of an `ICH_LR<n>_EL2` value.
pub(crate) fn decode(value: u64) -> (u32, LrState) {
    let intid = (value & ich_lr::VINTID_MASK) as u32;
    let state = LrState {
        pending: value & ich_lr::STATE_PENDING != 0,
        active: value & ich_lr::STATE_ACTIVE != 0,
    };
    (intid, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_architectural_fields() {
        // ICH_LR<n>_EL2: State [63:62] (01 pending, 10 active), HW [61], Group [60],
        // Priority [55:48], pINTID [44:32], vINTID [31:0].
        let entry = LrEntry::example(33, false, 0xA0, true, None);
        assert_eq!(encode(&entry), (0b01 << 62) | (1 << 60) | (0xA0 << 48) | 33);
        let timer = LrEntry::example(27, true, 0x80, true, Some(27));
        let expected = (0b10 << 62) | (1 << 61) | (1 << 60) | (0x80 << 48) | (27 << 32) | 27;
        assert_eq!(encode(&timer), expected);
        assert_eq!(
            decode(0xC000_0000_0000_0005),
            (
                5,
                LrState {
                    pending: true,
                    active: true
                }
            )
        );
    }
}
