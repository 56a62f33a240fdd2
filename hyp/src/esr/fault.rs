//! The fault status code of a data or instruction abort (`DFSC`/`IFSC`).
//!
//! Encodings: Arm ARM (DDI 0487), ISS encoding for an exception from a Data Abort,
//! field DFSC.

use core::fmt;

/// The fault status code of a data or instruction abort (`DFSC`/`IFSC`, 6 bits).
///
/// Levels are translation table levels: 0 to 3, and -1 or -2 for the extra levels of
/// 52-bit (FEAT_LPA2) and 56-bit (FEAT_D128) addressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultStatus {
    /// The output address was too large for the configured size, at this level.
    AddressSize {
        /// Translation table level (-2 to 3).
        level: i8,
    },
    /// No valid descriptor at this level.
    Translation {
        /// Translation table level (-2 to 3).
        level: i8,
    },
    /// The descriptor's access flag was clear.
    AccessFlag {
        /// Translation table level (0 to 3).
        level: i8,
    },
    /// The descriptor did not permit the access.
    Permission {
        /// Translation table level (0 to 3).
        level: i8,
    },
    /// Synchronous external abort, not on a translation table walk.
    SyncExternal,
    /// Synchronous external abort on a translation table walk or table update.
    SyncExternalOnWalk {
        /// Translation table level (-2 to 3).
        level: i8,
    },
    /// Synchronous tag check fault (FEAT_MTE2).
    TagCheck,
    /// Synchronous parity or ECC error on a memory access, not on a table walk.
    ParityEcc,
    /// Synchronous parity or ECC error on a translation table walk.
    ParityEccOnWalk {
        /// Translation table level (-1 to 3).
        level: i8,
    },
    /// Alignment fault.
    Alignment,
    /// Granule protection fault on a translation table walk (FEAT_RME).
    GranuleProtectionOnWalk {
        /// Translation table level (-2 to 3).
        level: i8,
    },
    /// Granule protection fault, not on a translation table walk (FEAT_RME).
    GranuleProtection,
    /// TLB conflict abort.
    TlbConflict,
    /// Unsupported atomic hardware update of a descriptor (FEAT_HAFDBS).
    UnsupportedAtomicUpdate,
    /// Implementation defined fault (lockdown).
    ImplementationDefinedLockdown,
    /// Implementation defined fault (unsupported exclusive or atomic access).
    ImplementationDefinedAtomic,
    /// A code the Arm ARM reserves.
    Reserved(u8),
}

/// Fault status codes (`DFSC`/`IFSC`). A `_L0` constant is the level-0 code of a group
/// of four whose low two bits are the level.
mod fsc {
    pub const ADDRESS_SIZE_L0: u8 = 0x00;
    pub const ADDRESS_SIZE_L3: u8 = 0x03;
    pub const TRANSLATION_L0: u8 = 0x04;
    pub const TRANSLATION_L3: u8 = 0x07;
    pub const ACCESS_FLAG_L0: u8 = 0x08;
    pub const ACCESS_FLAG_L3: u8 = 0x0B;
    pub const PERMISSION_L0: u8 = 0x0C;
    pub const PERMISSION_L3: u8 = 0x0F;
    pub const SYNC_EXTERNAL: u8 = 0x10;
    pub const TAG_CHECK: u8 = 0x11;
    pub const SYNC_EXTERNAL_WALK_LM2: u8 = 0x12;
    pub const SYNC_EXTERNAL_WALK_LM1: u8 = 0x13;
    pub const SYNC_EXTERNAL_WALK_L0: u8 = 0x14;
    pub const SYNC_EXTERNAL_WALK_L3: u8 = 0x17;
    pub const PARITY_ECC: u8 = 0x18;
    pub const PARITY_ECC_WALK_LM1: u8 = 0x1B;
    pub const PARITY_ECC_WALK_L0: u8 = 0x1C;
    pub const PARITY_ECC_WALK_L3: u8 = 0x1F;
    pub const ALIGNMENT: u8 = 0x21;
    pub const GPF_WALK_LM2: u8 = 0x22;
    pub const GPF_WALK_LM1: u8 = 0x23;
    pub const GPF_WALK_L0: u8 = 0x24;
    pub const GPF_WALK_L3: u8 = 0x27;
    pub const GPF: u8 = 0x28;
    pub const ADDRESS_SIZE_LM1: u8 = 0x29;
    pub const TRANSLATION_LM2: u8 = 0x2A;
    pub const TRANSLATION_LM1: u8 = 0x2B;
    pub const ADDRESS_SIZE_LM2: u8 = 0x2C;
    pub const TLB_CONFLICT: u8 = 0x30;
    pub const UNSUPPORTED_ATOMIC_UPDATE: u8 = 0x31;
    pub const IMPDEF_LOCKDOWN: u8 = 0x34;
    pub const IMPDEF_ATOMIC: u8 = 0x35;
}

impl FaultStatus {
    /// Decodes a 6-bit `DFSC`/`IFSC` value (higher bits are ignored).
    #[inline]
    pub const fn decode(code: u8) -> Self {
        use fsc::*;
        /// The status code is six bits wide.
        const FSC_MASK: u8 = 0x3F;
        /// The level of `code` within a group of four codes starting at level 0.
        const fn level_in(code: u8, level0: u8) -> i8 {
            (code - level0) as i8
        }
        let code = code & FSC_MASK;
        match code {
            ADDRESS_SIZE_L0..=ADDRESS_SIZE_L3 => Self::AddressSize {
                level: level_in(code, ADDRESS_SIZE_L0),
            },
            TRANSLATION_L0..=TRANSLATION_L3 => Self::Translation {
                level: level_in(code, TRANSLATION_L0),
            },
            ACCESS_FLAG_L0..=ACCESS_FLAG_L3 => Self::AccessFlag {
                level: level_in(code, ACCESS_FLAG_L0),
            },
            PERMISSION_L0..=PERMISSION_L3 => Self::Permission {
                level: level_in(code, PERMISSION_L0),
            },
            SYNC_EXTERNAL => Self::SyncExternal,
            TAG_CHECK => Self::TagCheck,
            SYNC_EXTERNAL_WALK_LM2 => Self::SyncExternalOnWalk { level: -2 },
            SYNC_EXTERNAL_WALK_LM1 => Self::SyncExternalOnWalk { level: -1 },
            SYNC_EXTERNAL_WALK_L0..=SYNC_EXTERNAL_WALK_L3 => Self::SyncExternalOnWalk {
                level: level_in(code, SYNC_EXTERNAL_WALK_L0),
            },
            PARITY_ECC => Self::ParityEcc,
            PARITY_ECC_WALK_LM1 => Self::ParityEccOnWalk { level: -1 },
            PARITY_ECC_WALK_L0..=PARITY_ECC_WALK_L3 => Self::ParityEccOnWalk {
                level: level_in(code, PARITY_ECC_WALK_L0),
            },
            ALIGNMENT => Self::Alignment,
            GPF_WALK_LM2 => Self::GranuleProtectionOnWalk { level: -2 },
            GPF_WALK_LM1 => Self::GranuleProtectionOnWalk { level: -1 },
            GPF_WALK_L0..=GPF_WALK_L3 => Self::GranuleProtectionOnWalk {
                level: level_in(code, GPF_WALK_L0),
            },
            GPF => Self::GranuleProtection,
            ADDRESS_SIZE_LM1 => Self::AddressSize { level: -1 },
            TRANSLATION_LM2 => Self::Translation { level: -2 },
            TRANSLATION_LM1 => Self::Translation { level: -1 },
            ADDRESS_SIZE_LM2 => Self::AddressSize { level: -2 },
            TLB_CONFLICT => Self::TlbConflict,
            UNSUPPORTED_ATOMIC_UPDATE => Self::UnsupportedAtomicUpdate,
            IMPDEF_LOCKDOWN => Self::ImplementationDefinedLockdown,
            IMPDEF_ATOMIC => Self::ImplementationDefinedAtomic,
            other => Self::Reserved(other),
        }
    }

    /// The translation table level the fault names, if it names one.
    pub const fn level(self) -> Option<i8> {
        match self {
            Self::AddressSize { level }
            | Self::Translation { level }
            | Self::AccessFlag { level }
            | Self::Permission { level }
            | Self::SyncExternalOnWalk { level }
            | Self::ParityEccOnWalk { level }
            | Self::GranuleProtectionOnWalk { level } => Some(level),
            _ => None,
        }
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::AddressSize { .. } => "address size fault",
            Self::Translation { .. } => "translation fault",
            Self::AccessFlag { .. } => "access flag fault",
            Self::Permission { .. } => "permission fault",
            Self::SyncExternal => "synchronous external abort",
            Self::SyncExternalOnWalk { .. } => "synchronous external abort on table walk",
            Self::TagCheck => "tag check fault",
            Self::ParityEcc => "parity/ECC error",
            Self::ParityEccOnWalk { .. } => "parity/ECC error on table walk",
            Self::Alignment => "alignment fault",
            Self::GranuleProtectionOnWalk { .. } => "granule protection fault on table walk",
            Self::GranuleProtection => "granule protection fault",
            Self::TlbConflict => "TLB conflict abort",
            Self::UnsupportedAtomicUpdate => "unsupported atomic hardware update",
            Self::ImplementationDefinedLockdown => "implementation defined fault (lockdown)",
            Self::ImplementationDefinedAtomic => {
                "implementation defined fault (unsupported exclusive or atomic access)"
            }
            Self::Reserved(code) => return write!(f, "reserved fault status {code:#04x}"),
        };
        f.write_str(what)?;
        if let Some(level) = self.level() {
            write!(f, " at level {level}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The codes are restated from the Arm ARM's DFSC table.
    use super::*;
    use std::string::ToString;

    #[test]
    fn fault_status_codes_from_the_arm_arm() {
        use FaultStatus::*;
        let table = [
            (0x00, AddressSize { level: 0 }),
            (0x03, AddressSize { level: 3 }),
            (0x04, Translation { level: 0 }),
            (0x05, Translation { level: 1 }),
            (0x06, Translation { level: 2 }),
            (0x07, Translation { level: 3 }),
            (0x08, AccessFlag { level: 0 }),
            (0x0B, AccessFlag { level: 3 }),
            (0x0C, Permission { level: 0 }),
            (0x0F, Permission { level: 3 }),
            (0x10, SyncExternal),
            (0x11, TagCheck),
            (0x12, SyncExternalOnWalk { level: -2 }),
            (0x13, SyncExternalOnWalk { level: -1 }),
            (0x14, SyncExternalOnWalk { level: 0 }),
            (0x17, SyncExternalOnWalk { level: 3 }),
            (0x18, ParityEcc),
            (0x1B, ParityEccOnWalk { level: -1 }),
            (0x1C, ParityEccOnWalk { level: 0 }),
            (0x1F, ParityEccOnWalk { level: 3 }),
            (0x21, Alignment),
            (0x22, GranuleProtectionOnWalk { level: -2 }),
            (0x23, GranuleProtectionOnWalk { level: -1 }),
            (0x24, GranuleProtectionOnWalk { level: 0 }),
            (0x27, GranuleProtectionOnWalk { level: 3 }),
            (0x28, GranuleProtection),
            (0x29, AddressSize { level: -1 }),
            (0x2A, Translation { level: -2 }),
            (0x2B, Translation { level: -1 }),
            (0x2C, AddressSize { level: -2 }),
            (0x30, TlbConflict),
            (0x31, UnsupportedAtomicUpdate),
            (0x34, ImplementationDefinedLockdown),
            (0x35, ImplementationDefinedAtomic),
            (0x19, Reserved(0x19)),
            (0x20, Reserved(0x20)),
            (0x3F, Reserved(0x3F)),
        ];
        for (code, status) in table {
            assert_eq!(FaultStatus::decode(code), status, "FSC {code:#x}");
        }
    }

    #[test]
    fn fault_status_display() {
        assert_eq!(
            FaultStatus::decode(0x2B).to_string(),
            "translation fault at level -1"
        );
        assert_eq!(
            FaultStatus::decode(0x15).to_string(),
            "synchronous external abort on table walk at level 1"
        );
        assert_eq!(FaultStatus::decode(0x21).to_string(), "alignment fault");
        assert_eq!(
            FaultStatus::decode(0x3F).to_string(),
            "reserved fault status 0x3f"
        );
        assert_eq!(FaultStatus::decode(0x21).level(), None);
    }
}
