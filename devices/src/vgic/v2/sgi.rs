//! GICv2 software-generated interrupts: `GICD_SGIR` requests, and the pending state
//! an SGI keeps per source CPU (IHI 0048B.b section 4.3, registers `GICD_SGIR`,
//! `GICD_CPENDSGIRn` and `GICD_SPENDSGIRn`; chapter 3, "Software-generated
//! interrupts": on a multiprocessor GICv2 an SGI is pending separately for each
//! source CPU, and acknowledging it reports the source in `GICC_IAR.CPUID`).
//!
//! A virtual CPU interface reports the source from the list register's CPUID field,
//! and every valid list register must hold a different virtual INTID (IHI 0048B.b
//! chapter 5, `GICH_LRn`: "Each valid interrupt stored in the List registers must
//! have a unique VirtualID for that virtual CPU interface"). So an SGI pending from
//! several vCPUs is delivered one source at a time: listed with the lowest pending
//! source and the `EOI` maintenance bit, and listed again with the next source after
//! the guest deactivates it.

use crate::vgic::SGIS;
use crate::vgic::core::{LrState, SgiListing};

/// `GICD_SGIR` fields.
mod sgir {
    /// SGIINTID, bits \[3:0\].
    pub const INTID_MASK: u32 = 0xF;
    /// CPUTargetList, bits \[23:16\]: bit `n` names CPU interface `n`.
    pub const TARGET_LIST_SHIFT: u32 = 16;
    /// Width mask of CPUTargetList once shifted down.
    pub const TARGET_LIST_MASK: u32 = 0xFF;
    /// TargetListFilter, bits \[25:24\].
    pub const FILTER_SHIFT: u32 = 24;
    /// Width mask of TargetListFilter once shifted down.
    pub const FILTER_MASK: u32 = 0b11;
    /// TargetListFilter 0b00: the CPUs in CPUTargetList.
    pub const FILTER_LIST: u32 = 0b00;
    /// TargetListFilter 0b01: every CPU but the requesting one.
    pub const FILTER_ALL_BUT_SELF: u32 = 0b01;
    /// TargetListFilter 0b10: the requesting CPU only.
    pub const FILTER_SELF: u32 = 0b10;
    // NSATT, bit [15], exists only with the Security Extensions, which the model
    // does not have: the SGI is forwarded whatever its group.
}

/// Who a `GICD_SGIR` write sends its SGI to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SgiFilter {
    /// The CPUs whose bits are set (CPUTargetList, TargetListFilter 0b00).
    List(u8),
    /// Every CPU but the requesting one (0b01).
    AllButSelf,
    /// The requesting CPU (0b10).
    ToSelf,
    /// TargetListFilter 0b11, reserved: no SGI.
    Reserved,
}

/// A decoded `GICD_SGIR` write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GicdSgir {
    /// The SGI, 0 to 15.
    pub(crate) intid: u32,
    /// The targets.
    pub(crate) filter: SgiFilter,
}

impl GicdSgir {
    /// Decodes a value written to `GICD_SGIR` (reserved bits are ignored).
    pub(crate) const fn decode(value: u32) -> Self {
        let filter = match (value >> sgir::FILTER_SHIFT) & sgir::FILTER_MASK {
            sgir::FILTER_LIST => {
                SgiFilter::List(((value >> sgir::TARGET_LIST_SHIFT) & sgir::TARGET_LIST_MASK) as u8)
            }
            sgir::FILTER_ALL_BUT_SELF => SgiFilter::AllButSelf,
            sgir::FILTER_SELF => SgiFilter::ToSelf,
            _ => SgiFilter::Reserved,
        };
        Self {
            intid: value & sgir::INTID_MASK,
            filter,
        }
    }

    /// The target vCPUs as a bit mask, for a request from `sender` on a GIC whose
    /// implemented CPU interfaces are the bits of `cpus`. Bits naming no vCPU are
    /// dropped (IHI 0048B.b GICD_SGIR: the Distributor forwards the SGI only to
    /// implemented CPU interfaces).
    pub(crate) const fn targets(&self, sender: usize, cpus: u8) -> u8 {
        let me = cpu_bit(sender);
        let targets = match self.filter {
            SgiFilter::List(list) => list,
            SgiFilter::AllButSelf => !me,
            SgiFilter::ToSelf => me,
            SgiFilter::Reserved => 0,
        };
        targets & cpus
    }
}

/// The bit of CPU interface `cpu` in an 8-bit CPU mask (0 for `cpu` 8 and up).
pub(crate) const fn cpu_bit(cpu: usize) -> u8 {
    if cpu < u8::BITS as usize { 1 << cpu } else { 0 }
}

/// One vCPU's SGIs, per source CPU.
///
/// The [`IrqState`](crate::vgic::core::IrqState) of each SGI keeps its enable, group,
/// priority and active state; its pending latch mirrors "some source is pending
/// outside a list register", which the owner keeps in step with
/// [`any_pending`](Self::any_pending).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct SgiSources {
    /// Bit `s` of `pending[n]`: SGI `n` from CPU `s` is pending, outside the list
    /// registers.
    pending: [u8; SGIS as usize],
    /// The CPU whose SGI `n` the guest acknowledged (meaningful while it is active).
    active: [u8; SGIS as usize],
}

impl SgiSources {
    /// A vCPU's SGIs with the given per-source pending bits and active sources.
    pub(crate) const fn from_parts(
        pending: [u8; SGIS as usize],
        active: [u8; SGIS as usize],
    ) -> Self {
        Self { pending, active }
    }

    /// The pending sources of SGI `n`, outside list registers (0 for `n` > 15).
    pub(crate) fn pending(&self, n: u32) -> u8 {
        self.pending.get(n as usize).copied().unwrap_or(0)
    }

    /// The source of SGI `n` while active (0 for `n` > 15).
    pub(crate) fn active_source(&self, n: u32) -> u8 {
        self.active.get(n as usize).copied().unwrap_or(0)
    }

    /// Whether SGI `n` is pending from any source outside list registers.
    pub(crate) fn any_pending(&self, n: u32) -> bool {
        self.pending(n) != 0
    }

    /// SGI `n` from the CPUs in `sources` becomes pending (a `GICD_SGIR` request or a
    /// `GICD_SPENDSGIR` write).
    pub(crate) fn set_pending(&mut self, n: u32, sources: u8) {
        if let Some(pending) = self.pending.get_mut(n as usize) {
            *pending |= sources;
        }
    }

    /// SGI `n` from the CPUs in `sources` is no longer pending (`GICD_CPENDSGIR`).
    pub(crate) fn clear_pending(&mut self, n: u32, sources: u8) {
        if let Some(pending) = self.pending.get_mut(n as usize) {
            *pending &= !sources;
        }
    }

    /// What to list for SGI `n`, whose [`IrqState`](crate::vgic::core::IrqState) asks for
    /// `state` (pending: some source is pending and the SGI is enabled in an enabled
    /// group; active: the guest has acknowledged one).
    ///
    /// An active SGI is listed with the source the guest acknowledged, and pending
    /// too only if that same source sent it again; otherwise the lowest pending
    /// source is listed. `more` is set when deliverable sources are left waiting.
    pub(crate) fn listing(&self, n: u32, state: LrState) -> SgiListing {
        let pending = self.pending(n);
        if state.active {
            let source = self.active_source(n);
            let bit = 1 << (source % u8::BITS as u8);
            return SgiListing {
                state: LrState {
                    pending: state.pending && pending & bit != 0,
                    active: true,
                },
                source,
                more: state.pending && pending & !bit != 0,
            };
        }
        let source = pending.trailing_zeros().min(u8::BITS - 1) as u8;
        SgiListing {
            state,
            source,
            more: state.pending && pending & !(1 << source) != 0,
        }
    }

    /// SGI `n` goes into a list register as `listing`: a listed pending source
    /// leaves the model's pending bits.
    pub(crate) fn listed(&mut self, n: u32, listing: &SgiListing) {
        if listing.state.pending {
            self.clear_pending(n, 1 << (listing.source % u8::BITS as u8));
        }
    }

    /// The list register of SGI `n` from `source` comes back in state `returned`: a
    /// source still pending is pending again, an active one is remembered.
    pub(crate) fn returned(&mut self, n: u32, source: u8, returned: LrState) {
        if returned.pending {
            self.set_pending(n, 1 << (source % u8::BITS as u8));
        }
        if returned.active
            && let Some(active) = self.active.get_mut(n as usize)
        {
            *active = source;
        }
    }

    /// The per-source pending bits and active sources, for snapshots.
    pub(crate) const fn parts(&self) -> ([u8; SGIS as usize], [u8; SGIS as usize]) {
        (self.pending, self.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PENDING: LrState = LrState::PENDING;
    const ACTIVE: LrState = LrState::ACTIVE;
    const BOTH: LrState = LrState::BOTH;

    #[test]
    fn decodes_gicd_sgir() {
        // TargetListFilter [25:24], CPUTargetList [23:16], NSATT [15], SGIINTID [3:0].
        assert_eq!(
            // TargetListFilter 0b00.
            GicdSgir::decode((0b1010_0101 << 16) | 7),
            GicdSgir {
                intid: 7,
                filter: SgiFilter::List(0b1010_0101)
            }
        );
        assert_eq!(
            GicdSgir::decode((0b01 << 24) | (0xFF << 16) | 15).filter,
            SgiFilter::AllButSelf,
            "the list is ignored"
        );
        assert_eq!(GicdSgir::decode(0b10 << 24).filter, SgiFilter::ToSelf);
        assert_eq!(GicdSgir::decode(0b11 << 24).filter, SgiFilter::Reserved);
        // Reserved bits [31:26], [14:4] and NSATT do not leak into fields.
        let noisy = GicdSgir::decode(0xFC00_FFF3 | (0b10 << 24));
        assert_eq!((noisy.intid, noisy.filter), (3, SgiFilter::ToSelf));
    }

    #[test]
    fn targets_per_filter() {
        let cpus = 0b1111; // four vCPUs
        let list = GicdSgir::decode(0b1111_0110 << 16);
        assert_eq!(list.targets(0, cpus), 0b0110, "bits 4-7 name no vCPU");
        assert_eq!(GicdSgir::decode(1 << 24).targets(2, cpus), 0b1011);
        assert_eq!(GicdSgir::decode(2 << 24).targets(2, cpus), 0b0100);
        assert_eq!(GicdSgir::decode(3 << 24 | 0xFF << 16).targets(2, cpus), 0);
        // A sender that is not a vCPU (out of range) never targets itself.
        assert_eq!(GicdSgir::decode(1 << 24).targets(9, cpus), 0b1111);
        assert_eq!(GicdSgir::decode(2 << 24).targets(9, cpus), 0);
        assert_eq!(cpu_bit(7), 0x80);
        assert_eq!(cpu_bit(8), 0);
    }

    #[test]
    fn sources_are_listed_one_at_a_time_lowest_first() {
        let mut sgis = SgiSources::default();
        sgis.set_pending(2, 0b1010);
        let first = sgis.listing(2, PENDING);
        assert_eq!(
            first,
            SgiListing {
                state: PENDING,
                source: 1,
                more: true
            }
        );
        sgis.listed(2, &first);
        assert_eq!(sgis.pending(2), 0b1000);
        // Acknowledged: the source is remembered while active.
        sgis.returned(2, 1, ACTIVE);
        assert_eq!(sgis.active_source(2), 1);
        // Active from 1, pending from 3: listed active only, with EOI maintenance.
        assert_eq!(
            sgis.listing(2, BOTH),
            SgiListing {
                state: ACTIVE,
                source: 1,
                more: true
            }
        );
        // Pending again from 1 too: pending and active from 1, 3 still waits.
        sgis.set_pending(2, 0b0010);
        assert_eq!(
            sgis.listing(2, BOTH),
            SgiListing {
                state: BOTH,
                source: 1,
                more: true
            }
        );
        // Not deliverable (disabled): nothing to wait for.
        assert!(!sgis.listing(2, ACTIVE).more);
        assert!(!sgis.listing(2, ACTIVE).state.pending);
    }

    #[test]
    fn a_source_not_acknowledged_comes_back_pending() {
        let mut sgis = SgiSources::default();
        sgis.set_pending(0, 0b1);
        let listing = sgis.listing(0, PENDING);
        assert!(!listing.more);
        sgis.listed(0, &listing);
        assert!(!sgis.any_pending(0));
        sgis.returned(0, 0, PENDING);
        assert_eq!(sgis.pending(0), 0b1);
        sgis.clear_pending(0, 0xFF);
        assert!(!sgis.any_pending(0));
    }

    #[test]
    fn out_of_range_sgis_are_harmless() {
        let mut sgis = SgiSources::default();
        sgis.set_pending(16, 0xFF);
        sgis.clear_pending(99, 0xFF);
        sgis.returned(u32::MAX, 7, BOTH);
        assert_eq!(sgis.pending(16), 0);
        assert_eq!(sgis, SgiSources::default());
        // Sources beyond 7 wrap instead of overflowing the shift.
        sgis.returned(1, 200, PENDING);
        assert_eq!(sgis.pending(1), 1 << (200 % 8));
    }
}
