//! The GICv2 list registers: the `GICH_LR<n>` format of the GICv2 virtualization
//! extensions, and the `GICH_HCR` maintenance enables (IHI 0048B.b, chapter 5,
//! "GIC Support for Virtualization": `GICH_HCR` and `GICH_LRn`).
//!
//! A GICv2 list register is 32 bits; [`LrPlan`](crate::vgic::LrPlan) values and the values
//! handed to [`Vgic::sync`](crate::vgic::Vgic::sync) stay `u64`, and a GICv2 plan never
//! sets a bit above bit 31, so the hypervisor truncates them (`value as u32`) when
//! writing `GICH_LR<n>` and zero-extends what it reads back.
//!
//! `GICH_HCR.UIE` (bit 1) and `GICH_HCR.NPIE` (bit 3) sit where `ICH_HCR_EL2` has
//! them, so [`LrPlan::maintenance_bits`](crate::vgic::LrPlan::maintenance_bits) is
//! meaningful for both: OR it into `GICH_HCR` (truncated) as into `ICH_HCR_EL2`.
//!
//! The EOI maintenance interrupt needs no enable on a GICv2: a list register with
//! `EOI` set that the guest deactivates raises it (`GICH_MISR.EOI`, from
//! `GICH_EISR<n>`) until the hypervisor rewrites that list register, which the next
//! flush does.

use crate::vgic::core::{ListRegisterFormat, LrEntry, LrState};

/// `GICH_LR<n>` fields.
pub mod gich_lr {
    /// VirtualID, bits \[9:0\]: the virtual INTID.
    pub const VIRTUAL_ID_MASK: u32 = 0x3FF;
    /// PhysicalID, bits \[19:10\], when `HW` is set: the physical INTID.
    pub const PHYSICAL_ID_SHIFT: u32 = 10;
    /// Width mask of PhysicalID once shifted down (10 bits).
    pub const PHYSICAL_ID_MASK: u32 = 0x3FF;
    /// CPUID, bits \[12:10\], when `HW` is clear: the CPU that sent an SGI.
    pub const CPUID_SHIFT: u32 = 10;
    /// Width mask of CPUID once shifted down (3 bits).
    pub const CPUID_MASK: u32 = 0x7;
    /// EOI, bit \[19\], when `HW` is clear: a maintenance interrupt when the guest
    /// deactivates the interrupt.
    pub const EOI: u32 = 1 << 19;
    /// Priority, bits \[27:23\]: bits \[7:3\] of the interrupt's priority.
    pub const PRIORITY_SHIFT: u32 = 23;
    /// Width mask of Priority once shifted down (5 bits).
    pub const PRIORITY_MASK: u32 = 0x1F;
    /// The priority bits the field drops (bits \[2:0\]).
    pub const PRIORITY_DROPPED_BITS: u32 = 3;
    /// State bit 28: pending.
    pub const STATE_PENDING: u32 = 1 << 28;
    /// State bit 29: active.
    pub const STATE_ACTIVE: u32 = 1 << 29;
    /// Grp1, bit \[30\]: a Group 1 virtual interrupt (Group 0 ones are virtual FIQs
    /// when `GICV_CTLR.FIQEn` is set, virtual IRQs otherwise).
    pub const GRP1: u32 = 1 << 30;
    /// HW, bit \[31\]: deactivating the virtual interrupt deactivates PhysicalID.
    pub const HW: u32 = 1 << 31;
}

/// `GICH_HCR` bits a GICv2 hypervisor combines with
/// [`LrPlan::maintenance_bits`](crate::vgic::LrPlan::maintenance_bits).
pub mod gich_hcr {
    /// En, bit \[0\]: the virtual CPU interface is enabled.
    pub const EN: u32 = 1 << 0;
    /// UIE, bit \[1\]: maintenance interrupt when at most one list register holds a
    /// valid interrupt (same position as `ICH_HCR_EL2.UIE`).
    pub const UIE: u32 = 1 << 1;
    /// NPIE, bit \[3\]: maintenance interrupt while no list register holds a pending
    /// interrupt (same position as `ICH_HCR_EL2.NPIE`).
    pub const NPIE: u32 = 1 << 3;
}

/// Where `GICH_LR<n>` keeps the state, HW and VirtualID fields.
pub(crate) const FORMAT: ListRegisterFormat = ListRegisterFormat {
    pending: gich_lr::STATE_PENDING as u64,
    active: gich_lr::STATE_ACTIVE as u64,
    hardware: gich_lr::HW as u64,
    virtual_intid: gich_lr::VIRTUAL_ID_MASK as u64,
};

/// The `GICH_LR<n>` value for `entry`, zero-extended.
pub(crate) fn encode(entry: &LrEntry) -> u64 {
    let priority = u32::from(entry.priority) >> gich_lr::PRIORITY_DROPPED_BITS;
    let mut value = (entry.intid & gich_lr::VIRTUAL_ID_MASK)
        | ((priority & gich_lr::PRIORITY_MASK) << gich_lr::PRIORITY_SHIFT);
    if entry.group1 {
        value |= gich_lr::GRP1;
    }
    match entry.physical {
        Some(physical) => {
            value |= gich_lr::HW
                | ((physical & gich_lr::PHYSICAL_ID_MASK) << gich_lr::PHYSICAL_ID_SHIFT);
        }
        None => {
            value |= (u32::from(entry.source) & gich_lr::CPUID_MASK) << gich_lr::CPUID_SHIFT;
            if entry.eoi_maintenance {
                value |= gich_lr::EOI;
            }
        }
    }
    if entry.state.pending {
        value |= gich_lr::STATE_PENDING;
    }
    if entry.state.active {
        value |= gich_lr::STATE_ACTIVE;
    }
    u64::from(value)
}

/// What a `GICH_LR<n>` value read back says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LrV2 {
    /// The virtual INTID.
    pub(crate) intid: u32,
    /// The SGI source (CPUID) of a software interrupt; `None` with `HW` set.
    pub(crate) source: Option<u8>,
    /// Pending and/or active.
    pub(crate) state: LrState,
}

/// Decodes a `GICH_LR<n>` value (bits above 31 are ignored).
pub(crate) fn decode(value: u64) -> LrV2 {
    let value = value as u32;
    let cpuid = ((value >> gich_lr::CPUID_SHIFT) & gich_lr::CPUID_MASK) as u8;
    let source = (value & gich_lr::HW == 0).then_some(cpuid);
    LrV2 {
        intid: value & gich_lr::VIRTUAL_ID_MASK,
        source,
        state: LrState {
            pending: value & gich_lr::STATE_PENDING != 0,
            active: value & gich_lr::STATE_ACTIVE != 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vgic::core::{LrPlan, ich_hcr};

    const PENDING: LrState = LrState {
        pending: true,
        active: false,
    };

    #[test]
    fn encodes_the_architectural_fields() {
        // IHI 0048B.b GICH_LRn: HW [31], Grp1 [30], State [29:28] (01 pending,
        // 10 active), Priority [27:23], PhysicalID [19:10] (HW = 1) or EOI [19] and
        // CPUID [12:10] (HW = 0), VirtualID [9:0].
        let uart = LrEntry::example(33, false, 0xA0, false, None);
        assert_eq!(encode(&uart), (0b01 << 28) | (0x14 << 23) | 33);
        let ipi = LrEntry {
            intid: 1,
            state: PENDING,
            priority: 0xF8,
            group1: true,
            source: 5,
            eoi_maintenance: true,
            ..LrEntry::default()
        };
        assert_eq!(
            encode(&ipi),
            (1 << 30) | (0b01 << 28) | (0x1F << 23) | (1 << 19) | (5 << 10) | 1
        );
        let timer = LrEntry {
            // Ignored with HW set: the bits hold PhysicalID.
            source: 7,
            eoi_maintenance: true,
            ..LrEntry::example(27, true, 0x80, false, Some(27))
        };
        assert_eq!(
            encode(&timer),
            (1 << 31) | (0b10 << 28) | (0x10 << 23) | (27 << 10) | 27
        );
        assert!(encode(&timer) <= u64::from(u32::MAX));
    }

    #[test]
    fn decodes_intid_source_and_state() {
        assert_eq!(
            decode((0b11 << 28) | (3 << 10) | 5),
            LrV2 {
                intid: 5,
                source: Some(3),
                state: LrState {
                    pending: true,
                    active: true
                }
            }
        );
        let hw = decode((1 << 31) | (27 << 10) | 27);
        assert_eq!(
            (hw.intid, hw.source, hw.state),
            (27, None, LrState::default())
        );
        // Bits above 31 are not part of a GICv2 list register.
        assert_eq!(decode(0xFFFF_FFFF_0000_0021).intid, 33);
        assert_eq!(decode(0xFFFF_FFFF_0000_0021).state, LrState::default());
    }

    #[test]
    fn maintenance_bits_are_gich_hcr_bits_too() {
        // GICH_HCR: En [0], UIE [1], LRENPIE [2], NPIE [3]; ICH_HCR_EL2 has UIE and
        // NPIE at the same positions.
        assert_eq!(u64::from(gich_hcr::UIE), ich_hcr::UIE);
        assert_eq!(u64::from(gich_hcr::NPIE), ich_hcr::NPIE);
        let mut plan = LrPlan::empty();
        plan.underflow_maintenance = true;
        plan.no_pending_maintenance = true;
        assert_eq!(plan.maintenance_bits(), 0b1010);
        assert_eq!(gich_hcr::EN | plan.maintenance_bits() as u32, 0b1011);
    }
}
