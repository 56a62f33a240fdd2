//! Sets of vCPUs: those an SGI reached ([`SgiTargets`], returned to the hypervisor to
//! kick), and those register writes, syncs and flushes affected (`KickSet`, collected
//! until [`Vgic::take_kicks`](super::super::Vgic::take_kicks)).

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
        assert_eq!(kicks.take(8).iter().collect::<Vec<_>>(), [0, 2, 5]);
        kicks.merge(more);
        kicks.add(0);
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
