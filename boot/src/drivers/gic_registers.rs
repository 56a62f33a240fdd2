//! Register layout the GICv2 and GICv3 drivers share: the distributor's control and
//! type registers, and the per-interrupt banks (group, enable, pending, active,
//! priority) that the distributor holds for every interrupt and a GICv3
//! redistributor's SGI frame repeats, at the same offsets, for its CPU's SGIs and
//! PPIs.
//!
//! Reference: IHI 0048B 4.3 (GICv2 distributor), IHI 0069 12.9 and 12.10 (GICv3
//! distributor and redistributor).

use core::ops::Range;
use tock_registers::interfaces::Writeable;
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_bitfields! [u32,
    /// GICD_CTLR (GICv2, and GICv3 with a single security state).
    pub GICD_CTLR [
        /// A register write is still taking effect (GICv3).
        RWP OFFSET(31) NUMBITS(1) [],
        /// Affinity routing (GICv3).
        ARE OFFSET(4) NUMBITS(1) [],
        /// Forward group 1 interrupts.
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        /// Forward group 0 interrupts.
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],
    /// GICD_TYPER.
    pub GICD_TYPER [
        /// How many interrupt lines exist: 32 × (ITLinesNumber + 1).
        ITLinesNumber OFFSET(0) NUMBITS(5) []
    ]
];

register_structs! {
    /// The per-interrupt registers, one bit (one byte for priorities) per INTID,
    /// starting at GICD_IGROUPR0 (offset 0x080 of the distributor and of the GICv3
    /// SGI frame).
    pub InterruptBanks {
        /// GICD_IGROUPR<n>: the group of each interrupt.
        (0x000 => igroupr: [ReadWrite<u32>; 32]),
        /// GICD_ISENABLER<n>: set-enable.
        (0x080 => isenabler: [ReadWrite<u32>; 32]),
        /// GICD_ICENABLER<n>: clear-enable.
        (0x100 => icenabler: [ReadWrite<u32>; 32]),
        (0x180 => _set_pending),
        /// GICD_ICPENDR<n>: clear-pending.
        (0x200 => icpendr: [ReadWrite<u32>; 32]),
        (0x280 => _set_active),
        /// GICD_ICACTIVER<n>: clear-active.
        (0x300 => icactiver: [ReadWrite<u32>; 32]),
        /// GICD_IPRIORITYR<n>: one priority byte per interrupt (byte-accessible).
        (0x380 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x780 => @END),
    }
}

/// One bit per interrupt in a 32-bit register: the register index and the bit.
fn word_and_bit(intid: u32) -> (usize, u32) {
    ((intid / 32) as usize, 1 << (intid % 32))
}

impl InterruptBanks {
    /// Disables the interrupts `intids` (whole 32-interrupt words), clears their
    /// pending and active states, puts them in group 1 and gives them `priority`.
    pub fn reset(&self, intids: Range<u32>, priority: u8) {
        for word in (intids.start / 32) as usize..intids.end.div_ceil(32) as usize {
            self.icenabler[word].set(u32::MAX);
            self.icpendr[word].set(u32::MAX);
            self.icactiver[word].set(u32::MAX);
            self.igroupr[word].set(u32::MAX);
        }
        for intid in intids {
            self.ipriorityr[intid as usize].set(priority);
        }
    }

    /// Enables interrupt `intid`.
    pub fn enable(&self, intid: u32) {
        let (word, bit) = word_and_bit(intid);
        self.isenabler[word].set(bit);
    }

    /// Enables every interrupt of the first word (INTIDs 0-31) whose bit `mask` sets.
    pub fn enable_private(&self, mask: u32) {
        self.isenabler[0].set(mask);
    }
}
