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

/// The vCPUs an SGI was delivered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SgiTargets {
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// vCPU `first + n` for each bit `n` of `mask`.
    Group { first: usize, mask: u16 },
    /// vCPUs `0..vcpus` except `sender` and those whose bit is set in `skipped`
    /// (only the first 64 vCPUs can be told apart as skipped; see
    /// [`SgiTargets::contains`]).
    AllBut {
        sender: usize,
        vcpus: usize,
        skipped: u64,
    },
    /// vCPU `n` below 64 for each bit `n` of `mask`, and every vCPU from 64 up to
    /// `vcpus` if `beyond` (see [`KickSet`]).
    Mask {
        mask: u64,
        beyond: bool,
        vcpus: usize,
    },
}

/// vCPUs that register writes may have given something to take, collected while the
/// vGIC handles the writes: one bit for each of the first 64 vCPUs, and one for all
/// the others together (Aerie runs at most 64 vCPUs; past them, kicking too many
/// costs needless exits and nothing else).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KickSet {
    /// vCPU `n` for each bit `n`.
    mask: u64,
    /// Every vCPU from 64 on.
    beyond: bool,
}

impl KickSet {
    /// Adds vCPU `vcpu`.
    pub(crate) fn add(&mut self, vcpu: usize) {
        match u32::try_from(vcpu)
            .ok()
            .and_then(|bit| 1u64.checked_shl(bit))
        {
            Some(bit) => self.mask |= bit,
            None => self.beyond = true,
        }
    }

    /// Adds every vCPU of `other`.
    pub(crate) fn merge(&mut self, other: KickSet) {
        self.mask |= other.mask;
        self.beyond |= other.beyond;
    }

    /// The vCPUs among the first `vcpus`, forgetting them.
    pub(crate) fn take(&mut self, vcpus: usize) -> SgiTargets {
        let KickSet { mask, beyond } = core::mem::take(self);
        SgiTargets {
            kind: Kind::Mask {
                mask,
                beyond,
                vcpus,
            },
        }
    }

    /// The set's bits for the first 8 vCPUs (a GICv2's CPU interfaces).
    pub(crate) fn low_byte(&self) -> u8 {
        self.mask as u8
    }
}

impl SgiTargets {
    /// No vCPU.
    pub const fn none() -> Self {
        Self {
            kind: Kind::Group { first: 0, mask: 0 },
        }
    }

    /// vCPU `first + n` for each bit `n` of `mask`.
    pub(crate) const fn group(first: usize, mask: u16) -> Self {
        Self {
            kind: Kind::Group { first, mask },
        }
    }

    /// Every vCPU below `vcpus` except `sender` and, among vCPUs 0 to 63, those whose
    /// bit is set in `skipped`.
    pub(crate) const fn all_but(sender: usize, vcpus: usize, skipped: u64) -> Self {
        Self {
            kind: Kind::AllBut {
                sender,
                vcpus,
                skipped,
            },
        }
    }

    /// Whether `vcpu` got the SGI.
    ///
    /// For a broadcast (`IRM`) to more than 64 vCPUs, vCPUs from 64 on that ignored
    /// it (their copy of the SGI is in Group 0) still count as targets; kicking them
    /// costs one needless exit and nothing else.
    pub fn contains(&self, vcpu: usize) -> bool {
        match self.kind {
            Kind::Group { first, mask } => vcpu
                .checked_sub(first)
                .is_some_and(|bit| bit < u16::BITS as usize && mask & (1 << bit) != 0),
            Kind::AllBut {
                sender,
                vcpus,
                skipped,
            } => {
                vcpu < vcpus
                    && vcpu != sender
                    && (vcpu >= u64::BITS as usize || skipped & (1 << vcpu) == 0)
            }
            Kind::Mask {
                mask,
                beyond,
                vcpus,
            } => {
                vcpu < vcpus
                    && if vcpu < u64::BITS as usize {
                        mask & (1 << vcpu) != 0
                    } else {
                        beyond
                    }
            }
        }
    }

    /// The vCPUs, in increasing order.
    pub fn iter(&self) -> SgiTargetsIter {
        let end = match self.kind {
            Kind::Group { first, mask } if mask != 0 => first + u16::BITS as usize,
            Kind::Group { .. } => 0,
            Kind::AllBut { vcpus, .. } => vcpus,
            Kind::Mask {
                mask,
                beyond: false,
                vcpus,
            } => vcpus.min((u64::BITS - mask.leading_zeros()) as usize),
            Kind::Mask { vcpus, .. } => vcpus,
        };
        let start = match self.kind {
            Kind::Group { first, .. } => first,
            Kind::AllBut { .. } | Kind::Mask { .. } => 0,
        };
        SgiTargetsIter {
            targets: *self,
            next: start,
            end,
        }
    }

    /// Whether no vCPU got the SGI.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl IntoIterator for SgiTargets {
    type Item = usize;
    type IntoIter = SgiTargetsIter;

    fn into_iter(self) -> SgiTargetsIter {
        self.iter()
    }
}

/// Iterator over [`SgiTargets`].
#[derive(Clone, Debug)]
pub struct SgiTargetsIter {
    targets: SgiTargets,
    next: usize,
    end: usize,
}

impl Iterator for SgiTargetsIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.next < self.end {
            let vcpu = self.next;
            self.next += 1;
            if self.targets.contains(vcpu) {
                return Some(vcpu);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

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

    #[test]
    fn group_targets() {
        let targets = SgiTargets::group(16, 0b1000_0000_0000_0101);
        assert_eq!(targets.iter().collect::<Vec<_>>(), [16, 18, 31]);
        assert!(targets.contains(18));
        assert!(!targets.contains(17));
        assert!(!targets.contains(0));
        assert!(!targets.contains(32));
        assert!(SgiTargets::none().is_empty());
        assert_eq!(SgiTargets::none().iter().count(), 0);
    }

    #[test]
    fn broadcast_targets() {
        let targets = SgiTargets::all_but(1, 4, 0b1000);
        assert_eq!(targets.into_iter().collect::<Vec<_>>(), [0, 2]);
        let many = SgiTargets::all_but(0, 100, 0);
        assert_eq!(many.iter().count(), 99);
        assert!(!many.contains(100));
    }

    #[test]
    fn kick_sets() {
        let mut kicks = KickSet::default();
        assert!(kicks.take(4).is_empty());
        kicks.add(2);
        kicks.add(0);
        let mut more = KickSet::default();
        more.add(2);
        more.add(5);
        kicks.merge(more);
        assert_eq!(kicks.low_byte(), 0b10_0101);
        assert_eq!(
            kicks.take(4).iter().collect::<Vec<_>>(),
            [0, 2],
            "only existing vCPUs"
        );
        assert!(kicks.take(4).is_empty(), "taken");
        kicks.add(63);
        kicks.add(70);
        let targets = kicks.take(72);
        assert_eq!(
            targets.iter().collect::<Vec<_>>(),
            [63, 64, 65, 66, 67, 68, 69, 70, 71]
        );
        assert!(!targets.contains(72) && !targets.contains(usize::MAX));
    }
}
