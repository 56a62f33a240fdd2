//! System-register fields that aarch64-cpu 11.2 does not declare, named and placed
//! as in the Arm ARM (DDI 0487), for use next to the crate's own registers: read
//! with `FIELD.read(REGISTER.get())`, or combined as `FIELD::SET.value`.

use tock_registers::register_bitfields;

register_bitfields! [u64,
    /// CNTHCTL_EL2 (non-VHE layout): the event stream.
    pub CNTHCTL_EL2 [
        /// Which counter bit drives the event stream.
        EVNTI OFFSET(4) NUMBITS(4) [],
        /// Generate an event stream from the counter.
        EVNTEN OFFSET(2) NUMBITS(1) []
    ],
    /// CPTR_EL2 (non-VHE layout).
    pub CPTR_EL2 [
        /// Trap the trace unit's system registers.
        TTA OFFSET(20) NUMBITS(1) [],
        /// Trap SVE (RES1 without SVE).
        TZ OFFSET(8) NUMBITS(1) []
    ],
    /// ID_AA64PFR0_EL1.
    pub ID_AA64PFR0_EL1 [
        /// FEAT_RAS.
        RAS OFFSET(28) NUMBITS(4) [],
        /// The GIC system-register CPU interface (GICv3 and later).
        GIC OFFSET(24) NUMBITS(4) []
    ],
    /// ID_AA64ISAR2_EL1 (aarch64-cpu declares no such register).
    pub ID_AA64ISAR2_EL1 [
        /// QARMA3 pointer authentication of addresses.
        APA3 OFFSET(12) NUMBITS(4) [],
        /// QARMA3 generic pointer authentication.
        GPA3 OFFSET(8) NUMBITS(4) []
    ]
];
