//! Each vCPU's redistributor (IHI 0069H chapter 12, "The GIC Redistributor register
//! map" and the GICR_* register descriptions): the RD frame, and the SGI frame 64 KiB
//! later with the SGI and PPI registers.
//!
//! RD frame:
//!
//! | offset | register | model |
//! |---|---|---|
//! | `0x0000` | `GICR_CTLR` | zero: no LPIs (EnableLPIs RES0), writes take effect at once (RWP 0) |
//! | `0x0004` | `GICR_IIDR` | as `GICD_IIDR` |
//! | `0x0008` | `GICR_TYPER` | 64-bit (or 32-bit halves): Affinity_Value \[63:32\], Processor_Number \[23:8\], Last \[4\]; no PLPIS, VLPIS, DirectLPI, DPGS, extended PPIs |
//! | `0x0010` | `GICR_STATUSR` | zero |
//! | `0x0014` | `GICR_WAKER` | ProcessorSleep \[1\] read-write, ChildrenAsleep \[2\] follows it |
//! | `0x0070` | `GICR_PROPBASER` | zero, writes ignored (no LPIs) |
//! | `0x0078` | `GICR_PENDBASER` | zero, writes ignored (no LPIs) |
//! | `0x00C0` | `GICR_SYNCR` | zero (never busy) |
//! | `0xFFD0`-`0xFFFC` | ID registers | see `core::id_registers` |
//!
//! SGI frame: `GICR_IGROUPR0`, `ISENABLER0`/`ICENABLER0`, `ISPENDR0`/`ICPENDR0`,
//! `ISACTIVER0`/`ICACTIVER0`, `IPRIORITYR0-7`, `ICFGR0` (read-only: SGIs are edge)
//! and `ICFGR1`, `IGRPMODR0` and `NSACR` (zero), at the distributor's offsets (see
//! `registers`).

use super::distributor::IIDR;
use super::{VgicV3, vcpu_affinity};
use crate::mmio::AccessWidth;
use crate::vgic::PRIVATE_INTERRUPTS;
use crate::vgic::core::{IrqAccess, read_id_register};

/// RD frame register offsets.
mod gicr {
    /// `GICR_CTLR`.
    pub const CTLR: u64 = 0x0000;
    /// `GICR_IIDR`.
    pub const IIDR: u64 = 0x0004;
    /// `GICR_TYPER`, 64-bit.
    pub const TYPER: u64 = 0x0008;
    /// `GICR_STATUSR`.
    pub const STATUSR: u64 = 0x0010;
    /// `GICR_WAKER`.
    pub const WAKER: u64 = 0x0014;
    /// `GICR_PROPBASER`, 64-bit.
    pub const PROPBASER: u64 = 0x0070;
    /// `GICR_PENDBASER`, 64-bit.
    pub const PENDBASER: u64 = 0x0078;
    /// `GICR_SYNCR`.
    pub const SYNCR: u64 = 0x00C0;
}

/// `GICR_TYPER` fields.
mod typer {
    /// Last, bit \[4\]: the last redistributor of the region.
    pub const LAST: u64 = 1 << 4;
    /// Processor_Number, bits \[23:8\].
    pub const PROCESSOR_NUMBER_SHIFT: u32 = 8;
    /// Affinity_Value, bits \[63:32\]: Aff3.Aff2.Aff1.Aff0 of the PE.
    pub const AFFINITY_SHIFT: u32 = 32;
}

/// `GICR_WAKER` bits.
mod waker {
    /// ProcessorSleep, bit \[1\].
    pub const PROCESSOR_SLEEP: u32 = 1 << 1;
    /// ChildrenAsleep, bit \[2\] (read-only).
    pub const CHILDREN_ASLEEP: u32 = 1 << 2;
}

impl VgicV3 {
    /// `GICR_TYPER` of vCPU `vcpu`.
    pub(super) fn redistributor_typer(&self, vcpu: usize) -> u64 {
        let mut value = (u64::from(vcpu_affinity(vcpu)) << typer::AFFINITY_SHIFT)
            | ((vcpu as u64) << typer::PROCESSOR_NUMBER_SHIFT);
        if vcpu + 1 == self.front.config.vcpus {
            value |= typer::LAST;
        }
        value
    }

    /// Whether `(offset, width)` is a whole 64-bit register at `base` or an aligned
    /// half of it; the half's shift if so.
    fn half_of_double(base: u64, offset: u64, width: AccessWidth) -> Option<u32> {
        match (width, offset.checked_sub(base)?) {
            (AccessWidth::Double, 0) | (AccessWidth::Word, 0) => Some(0),
            (AccessWidth::Word, 4) => Some(32),
            _ => None,
        }
    }

    /// Reads vCPU `vcpu`'s RD frame at `offset`; `None` if no register answers.
    pub(super) fn gicr_rd_read(
        &mut self,
        vcpu: usize,
        offset: u64,
        width: AccessWidth,
    ) -> Option<u64> {
        if let Some(shift) = Self::half_of_double(gicr::TYPER, offset, width) {
            return Some(self.redistributor_typer(vcpu) >> shift);
        }
        if Self::half_of_double(gicr::PROPBASER, offset, width).is_some()
            || Self::half_of_double(gicr::PENDBASER, offset, width).is_some()
        {
            return Some(0);
        }
        if width != AccessWidth::Word {
            return None;
        }
        let value = match offset {
            gicr::CTLR | gicr::STATUSR | gicr::SYNCR => 0,
            gicr::IIDR => IIDR,
            gicr::WAKER => {
                if *self.front.asleep.get(vcpu)? {
                    waker::PROCESSOR_SLEEP | waker::CHILDREN_ASLEEP
                } else {
                    0
                }
            }
            _ => read_id_register(offset)?,
        };
        Some(u64::from(value))
    }

    /// Writes vCPU `vcpu`'s RD frame at `offset`; false if no register answers.
    pub(super) fn gicr_rd_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        width: AccessWidth,
        value: u64,
    ) -> bool {
        // TYPER is read-only; PROPBASER and PENDBASER are RAZ/WI without LPIs.
        if [gicr::TYPER, gicr::PROPBASER, gicr::PENDBASER]
            .iter()
            .any(|&base| Self::half_of_double(base, offset, width).is_some())
        {
            return true;
        }
        if width != AccessWidth::Word {
            return false;
        }
        match offset {
            gicr::WAKER => {
                let Some(asleep) = self.front.asleep.get_mut(vcpu) else {
                    return false;
                };
                *asleep = value as u32 & waker::PROCESSOR_SLEEP != 0;
                // "Any PE" SPIs may move: both vCPUs then look again.
                self.update_any_pe_target();
                true
            }
            gicr::CTLR | gicr::STATUSR | gicr::SYNCR | gicr::IIDR => true,
            _ => read_id_register(offset).is_some(),
        }
    }

    /// Reads vCPU `vcpu`'s SGI frame at `offset`; `None` if no register answers.
    pub(super) fn gicr_sgi_read(
        &mut self,
        vcpu: usize,
        offset: u64,
        width: AccessWidth,
    ) -> Option<u64> {
        let access = IrqAccess::decode(offset, width)?;
        if access.first_intid() >= PRIVATE_INTERRUPTS {
            return None;
        }
        let irqs = self.irqs.private.get(vcpu)?;
        Some(u64::from(access.read(irqs, 0)))
    }

    /// Writes vCPU `vcpu`'s SGI frame at `offset`; false if no register answers.
    pub(super) fn gicr_sgi_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        width: AccessWidth,
        value: u64,
    ) -> bool {
        let Some(access) = IrqAccess::decode(offset, width) else {
            return false;
        };
        if access.first_intid() >= PRIVATE_INTERRUPTS {
            return false;
        }
        let Some(irqs) = self.irqs.private.get_mut(vcpu) else {
            return false;
        };
        access.write(irqs, 0, value as u32);
        let first = access.first_intid();
        self.note_write(Some(vcpu), first..first.saturating_add(access.intids()));
        true
    }
}
