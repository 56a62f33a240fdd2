//! What the hypervisor learns about the guest's use of the vGIC besides interrupts:
//! accesses no register answered and list-register anomalies, shared by both
//! front-ends.

use crate::mmio::AccessWidth;
use core::fmt;

/// Which part of the vGIC an access hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GicFrame {
    /// The distributor.
    Distributor,
    /// The RD frame of vCPU `vcpu`'s redistributor (GICv3).
    Redistributor {
        /// The vCPU.
        vcpu: usize,
    },
    /// The SGI frame of vCPU `vcpu`'s redistributor (GICv3).
    SgiFrame {
        /// The vCPU.
        vcpu: usize,
    },
    /// Between or after the frames (offset from the distributor's base).
    Unmapped,
}

/// An access the vGIC ignored (see [`VgicStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IgnoredAccess {
    /// Where.
    pub frame: GicFrame,
    /// Offset within the frame.
    pub offset: u64,
    /// Width.
    pub width: AccessWidth,
    /// The value, for a write; `None` for a read.
    pub written: Option<u64>,
}

impl fmt::Display for IgnoredAccess {
    /// `32-bit write of 0x1 at GICR 3 SGI frame + 0xd80 ignored`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.width.bits();
        match self.written {
            Some(value) => write!(f, "{bits}-bit write of {value:#x} at ")?,
            None => write!(f, "{bits}-bit read at ")?,
        }
        match self.frame {
            GicFrame::Distributor => f.write_str("GICD")?,
            GicFrame::Redistributor { vcpu } => write!(f, "GICR {vcpu} RD frame")?,
            GicFrame::SgiFrame { vcpu } => write!(f, "GICR {vcpu} SGI frame")?,
            GicFrame::Unmapped => f.write_str("the GIC window outside its frames")?,
        }
        write!(f, " + {:#x} ignored", self.offset)
    }
}

/// Counters for the hypervisor to log (rate-limited) or show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VgicStats {
    /// Guest accesses read as zero / ignored because no register the model
    /// implements answers them (unknown offset, width or alignment).
    pub ignored_accesses: u64,
    /// The most recent of those.
    pub last_ignored: Option<IgnoredAccess>,
    /// List register values handed to `sync` that did not hold the INTID the flush put
    /// there (treated as unchanged).
    pub lr_mismatches: u64,
    /// Flushes that could not list every active interrupt (more active interrupts
    /// than list registers; the rest wait until some are deactivated).
    pub unlisted_active: u64,
    /// Triggers of hardware-backed interrupts ignored because the guest still owned the
    /// previous one.
    pub ignored_hardware_triggers: u64,
}

impl VgicStats {
    /// Counts an ignored access.
    pub(crate) fn ignore(
        &mut self,
        frame: GicFrame,
        offset: u64,
        width: AccessWidth,
        written: Option<u64>,
    ) {
        self.ignored_accesses += 1;
        self.last_ignored = Some(IgnoredAccess {
            frame,
            offset,
            width,
            written,
        });
    }
}
