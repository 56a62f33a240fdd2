//! PSCI 1.1 and SMCCC numbers: function IDs, return codes, versions and the conduit.
//!
//! Aerie is on both sides of PSCI: it calls the firmware's PSCI (through SMC, or HVC
//! under a hypervisor) to start host CPUs and power off, and it implements PSCI for its
//! guests, which call it with HVC. Both directions use the constants here.
//!
//! Sources: Arm Power State Coordination Interface (DEN 0022, version 1.1), section 5
//! (function IDs and return codes); SMC Calling Convention (DEN 0028), sections 2.5
//! (function ID layout) and 7 (arch calls).
//!
//! A function ID is 32 bits: bit 31 set for a fast call, bit 30 set for the SMC64
//! calling convention, bits 29:24 the owning entity (0 = Arm architecture calls, 4 =
//! standard secure services such as PSCI) and bits 15:0 the function number. The
//! callee reads it from `w0`, so the upper half of `x0` is ignored.

use core::fmt;

/// `PSCI_VERSION`: returns the implemented PSCI version (see [`PsciVersion`]).
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// `CPU_SUSPEND`, SMC32 form.
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
/// `CPU_SUSPEND`, SMC64 form.
pub const CPU_SUSPEND_64: u32 = 0xC400_0001;
/// `CPU_OFF`: power down the calling CPU.
pub const CPU_OFF: u32 = 0x8400_0002;
/// `CPU_ON`, SMC32 form.
pub const CPU_ON_32: u32 = 0x8400_0003;
/// `CPU_ON`, SMC64 form: start a CPU at an entry point with a context ID in `x0`.
pub const CPU_ON_64: u32 = 0xC400_0003;
/// `AFFINITY_INFO`, SMC32 form.
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
/// `AFFINITY_INFO`, SMC64 form: whether a CPU is on, off or on-pending.
pub const AFFINITY_INFO_64: u32 = 0xC400_0004;
/// `MIGRATE`, SMC32 form.
pub const MIGRATE_32: u32 = 0x8400_0005;
/// `MIGRATE`, SMC64 form.
pub const MIGRATE_64: u32 = 0xC400_0005;
/// `MIGRATE_INFO_TYPE`: whether a uniprocessor trusted OS is present.
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
/// `MIGRATE_INFO_UP_CPU`, SMC32 form.
pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
/// `MIGRATE_INFO_UP_CPU`, SMC64 form.
pub const MIGRATE_INFO_UP_CPU_64: u32 = 0xC400_0007;
/// `SYSTEM_OFF`: power the system off.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`: cold-reset the system.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// `PSCI_FEATURES`: whether a PSCI function is implemented (PSCI 1.0+).
pub const PSCI_FEATURES: u32 = 0x8400_000A;
/// `CPU_FREEZE` (PSCI 1.0+).
pub const CPU_FREEZE: u32 = 0x8400_000B;
/// `CPU_DEFAULT_SUSPEND`, SMC32 form (PSCI 1.0+).
pub const CPU_DEFAULT_SUSPEND_32: u32 = 0x8400_000C;
/// `CPU_DEFAULT_SUSPEND`, SMC64 form (PSCI 1.0+).
pub const CPU_DEFAULT_SUSPEND_64: u32 = 0xC400_000C;
/// `NODE_HW_STATE`, SMC32 form (PSCI 1.0+).
pub const NODE_HW_STATE_32: u32 = 0x8400_000D;
/// `NODE_HW_STATE`, SMC64 form (PSCI 1.0+).
pub const NODE_HW_STATE_64: u32 = 0xC400_000D;
/// `SYSTEM_SUSPEND`, SMC32 form (PSCI 1.0+).
pub const SYSTEM_SUSPEND_32: u32 = 0x8400_000E;
/// `SYSTEM_SUSPEND`, SMC64 form (PSCI 1.0+).
pub const SYSTEM_SUSPEND_64: u32 = 0xC400_000E;
/// `PSCI_SET_SUSPEND_MODE` (PSCI 1.0+).
pub const PSCI_SET_SUSPEND_MODE: u32 = 0x8400_000F;
/// `PSCI_STAT_RESIDENCY`, SMC32 form (PSCI 1.0+).
pub const PSCI_STAT_RESIDENCY_32: u32 = 0x8400_0010;
/// `PSCI_STAT_RESIDENCY`, SMC64 form (PSCI 1.0+).
pub const PSCI_STAT_RESIDENCY_64: u32 = 0xC400_0010;
/// `PSCI_STAT_COUNT`, SMC32 form (PSCI 1.0+).
pub const PSCI_STAT_COUNT_32: u32 = 0x8400_0011;
/// `PSCI_STAT_COUNT`, SMC64 form (PSCI 1.0+).
pub const PSCI_STAT_COUNT_64: u32 = 0xC400_0011;
/// `SYSTEM_RESET2`, SMC32 form (PSCI 1.1).
pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
/// `SYSTEM_RESET2`, SMC64 form (PSCI 1.1).
pub const SYSTEM_RESET2_64: u32 = 0xC400_0012;
/// `MEM_PROTECT` (PSCI 1.1).
pub const MEM_PROTECT: u32 = 0x8400_0013;
/// `MEM_PROTECT_CHECK_RANGE`, SMC32 form (PSCI 1.1).
pub const MEM_PROTECT_CHECK_RANGE_32: u32 = 0x8400_0014;
/// `MEM_PROTECT_CHECK_RANGE`, SMC64 form (PSCI 1.1).
pub const MEM_PROTECT_CHECK_RANGE_64: u32 = 0xC400_0014;

/// `SMCCC_VERSION`: the SMC Calling Convention version (SMCCC 1.1+).
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES`: whether an arch call is implemented (SMCCC 1.1+).
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// `SMCCC_ARCH_SOC_ID` (SMCCC 1.2+).
pub const SMCCC_ARCH_SOC_ID: u32 = 0x8000_0002;
/// `SMCCC_ARCH_WORKAROUND_1`: Spectre variant 2 mitigation.
pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
/// `SMCCC_ARCH_WORKAROUND_2`: Spectre variant 4 (SSBD) mitigation control.
pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7FFF;
/// `SMCCC_ARCH_WORKAROUND_3`: Spectre-BHB mitigation.
pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3FFF;
/// What an SMCCC call returns in `w0` when the function is not implemented (-1).
pub const SMCCC_NOT_SUPPORTED: i32 = -1;

/// Bit 30 of a function ID: the call uses the SMC64/HVC64 convention.
const FUNCTION_ID_SMC64: u32 = 1 << 30;
/// Shift of the owning-entity field (bits 29:24) of a function ID.
const FUNCTION_ID_OWNER_SHIFT: u32 = 24;
/// Width mask of the owning-entity field.
const FUNCTION_ID_OWNER_MASK: u32 = 0x3F;
/// Owning entity of the Arm architecture calls (`SMCCC_*`).
pub const OWNER_ARCH: u8 = 0;
/// Owning entity of the standard secure services, which include PSCI.
pub const OWNER_STANDARD_SECURE: u8 = 4;

/// The function ID a caller passed in `x0` (the callee reads only `w0`).
pub const fn function_id(x0: u64) -> u32 {
    x0 as u32
}

/// Whether a function ID uses the 64-bit convention (arguments in `x` registers).
pub const fn is_smc64(function_id: u32) -> bool {
    function_id & FUNCTION_ID_SMC64 != 0
}

/// The owning entity of a function ID (bits 29:24), e.g. [`OWNER_STANDARD_SECURE`].
pub const fn owner(function_id: u32) -> u8 {
    ((function_id >> FUNCTION_ID_OWNER_SHIFT) & FUNCTION_ID_OWNER_MASK) as u8
}

/// A PSCI return code. Values are the spec's `int32` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PsciReturn {
    /// `SUCCESS` (0).
    Success,
    /// `NOT_SUPPORTED` (-1).
    NotSupported,
    /// `INVALID_PARAMETERS` (-2).
    InvalidParameters,
    /// `DENIED` (-3).
    Denied,
    /// `ALREADY_ON` (-4): `CPU_ON` for a CPU that is already on.
    AlreadyOn,
    /// `ON_PENDING` (-5): `CPU_ON` for a CPU that is already being turned on.
    OnPending,
    /// `INTERNAL_FAILURE` (-6).
    InternalFailure,
    /// `NOT_PRESENT` (-7).
    NotPresent,
    /// `DISABLED` (-8).
    Disabled,
    /// `INVALID_ADDRESS` (-9): a bad entry point for `CPU_ON` or `CPU_SUSPEND`.
    InvalidAddress,
    /// A code PSCI 1.1 does not define.
    Other(i32),
}

/// PSCI return codes (DEN 0022, table "Return error codes").
mod code {
    pub const SUCCESS: i32 = 0;
    pub const NOT_SUPPORTED: i32 = -1;
    pub const INVALID_PARAMETERS: i32 = -2;
    pub const DENIED: i32 = -3;
    pub const ALREADY_ON: i32 = -4;
    pub const ON_PENDING: i32 = -5;
    pub const INTERNAL_FAILURE: i32 = -6;
    pub const NOT_PRESENT: i32 = -7;
    pub const DISABLED: i32 = -8;
    pub const INVALID_ADDRESS: i32 = -9;
}

impl PsciReturn {
    /// The return value for a code.
    pub const fn from_code(value: i32) -> Self {
        match value {
            code::SUCCESS => Self::Success,
            code::NOT_SUPPORTED => Self::NotSupported,
            code::INVALID_PARAMETERS => Self::InvalidParameters,
            code::DENIED => Self::Denied,
            code::ALREADY_ON => Self::AlreadyOn,
            code::ON_PENDING => Self::OnPending,
            code::INTERNAL_FAILURE => Self::InternalFailure,
            code::NOT_PRESENT => Self::NotPresent,
            code::DISABLED => Self::Disabled,
            code::INVALID_ADDRESS => Self::InvalidAddress,
            other => Self::Other(other),
        }
    }

    /// The spec's code for this value.
    pub const fn code(self) -> i32 {
        match self {
            Self::Success => code::SUCCESS,
            Self::NotSupported => code::NOT_SUPPORTED,
            Self::InvalidParameters => code::INVALID_PARAMETERS,
            Self::Denied => code::DENIED,
            Self::AlreadyOn => code::ALREADY_ON,
            Self::OnPending => code::ON_PENDING,
            Self::InternalFailure => code::INTERNAL_FAILURE,
            Self::NotPresent => code::NOT_PRESENT,
            Self::Disabled => code::DISABLED,
            Self::InvalidAddress => code::INVALID_ADDRESS,
            Self::Other(value) => value,
        }
    }

    /// The value to put in the caller's `x0`: the code sign-extended to 64 bits.
    pub const fn to_register(self) -> u64 {
        self.code() as i64 as u64
    }

    /// Decodes the `x0` of a PSCI call that returns a status (`CPU_ON`, `CPU_OFF`,
    /// `SYSTEM_RESET2`, ...): `Ok` for `SUCCESS`, the error otherwise. Only the low 32
    /// bits count; the register holds the `int32` sign-extended.
    pub const fn from_register(x0: u64) -> Result<(), Self> {
        match Self::from_code(x0 as u32 as i32) {
            Self::Success => Ok(()),
            error => Err(error),
        }
    }

    /// The spec's name, e.g. `"NOT_SUPPORTED"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::NotSupported => "NOT_SUPPORTED",
            Self::InvalidParameters => "INVALID_PARAMETERS",
            Self::Denied => "DENIED",
            Self::AlreadyOn => "ALREADY_ON",
            Self::OnPending => "ON_PENDING",
            Self::InternalFailure => "INTERNAL_FAILURE",
            Self::NotPresent => "NOT_PRESENT",
            Self::Disabled => "DISABLED",
            Self::InvalidAddress => "INVALID_ADDRESS",
            Self::Other(_) => "unknown PSCI return code",
        }
    }
}

impl fmt::Display for PsciReturn {
    /// Formats e.g. `NOT_SUPPORTED (-1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// How PSCI calls reach the firmware: the device tree's `/psci` `method` property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conduit {
    /// `smc`: the firmware runs at EL3 (real boards, QEMU with `virtualization=on`).
    Smc,
    /// `hvc`: a hypervisor provides PSCI (QEMU without EL2/EL3 emulation, and Aerie's
    /// own guests).
    Hvc,
}

impl Conduit {
    /// Parses the device tree `method` property (`"smc"` or `"hvc"`).
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "smc" => Some(Self::Smc),
            "hvc" => Some(Self::Hvc),
            _ => None,
        }
    }

    /// The `method` property value for this conduit.
    pub const fn method(self) -> &'static str {
        match self {
            Self::Smc => "smc",
            Self::Hvc => "hvc",
        }
    }
}

impl fmt::Display for Conduit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

/// A PSCI version, as `PSCI_VERSION` returns it: major in bits 31:16, minor in 15:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PsciVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

/// Shift of the major version in the `PSCI_VERSION` result.
const VERSION_MAJOR_SHIFT: u32 = 16;
/// Mask of the minor version in the `PSCI_VERSION` result.
const VERSION_MINOR_MASK: u32 = 0xFFFF;
/// Bit 31 is zero in a valid version; a negative `int32` is an error code.
const VERSION_ERROR_BIT: u32 = 1 << 31;

impl PsciVersion {
    /// PSCI 1.1, the version Aerie offers its guests.
    pub const V1_1: Self = Self { major: 1, minor: 1 };

    /// Decodes the `x0` returned by `PSCI_VERSION`; `None` if it holds an error code
    /// (bit 31 set), as a PSCI 0.1 firmware without the call returns `NOT_SUPPORTED`.
    pub const fn from_register(x0: u64) -> Option<Self> {
        let value = x0 as u32;
        if value & VERSION_ERROR_BIT != 0 {
            return None;
        }
        Some(Self {
            major: (value >> VERSION_MAJOR_SHIFT) as u16,
            minor: (value & VERSION_MINOR_MASK) as u16,
        })
    }

    /// The value `PSCI_VERSION` returns in `x0` for this version.
    pub const fn to_register(self) -> u64 {
        ((self.major as u64) << VERSION_MAJOR_SHIFT) | self.minor as u64
    }
}

impl fmt::Display for PsciVersion {
    /// Formats e.g. `1.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn psci_function_ids() {
        // DEN 0022 table 5.x: the SMC32 IDs are 0x8400_00nn and the SMC64 IDs
        // 0xC400_00nn, nn being the function number.
        assert_eq!(PSCI_VERSION, 0x8400_0000);
        assert_eq!((CPU_SUSPEND_32, CPU_SUSPEND_64), (0x8400_0001, 0xC400_0001));
        assert_eq!(CPU_OFF, 0x8400_0002);
        assert_eq!((CPU_ON_32, CPU_ON_64), (0x8400_0003, 0xC400_0003));
        assert_eq!(
            (AFFINITY_INFO_32, AFFINITY_INFO_64),
            (0x8400_0004, 0xC400_0004)
        );
        assert_eq!((MIGRATE_32, MIGRATE_64), (0x8400_0005, 0xC400_0005));
        assert_eq!(MIGRATE_INFO_TYPE, 0x8400_0006);
        assert_eq!(
            (MIGRATE_INFO_UP_CPU_32, MIGRATE_INFO_UP_CPU_64),
            (0x8400_0007, 0xC400_0007)
        );
        assert_eq!(SYSTEM_OFF, 0x8400_0008);
        assert_eq!(SYSTEM_RESET, 0x8400_0009);
        assert_eq!(PSCI_FEATURES, 0x8400_000A);
        assert_eq!(CPU_FREEZE, 0x8400_000B);
        assert_eq!(
            (CPU_DEFAULT_SUSPEND_32, CPU_DEFAULT_SUSPEND_64),
            (0x8400_000C, 0xC400_000C)
        );
        assert_eq!(
            (NODE_HW_STATE_32, NODE_HW_STATE_64),
            (0x8400_000D, 0xC400_000D)
        );
        assert_eq!(
            (SYSTEM_SUSPEND_32, SYSTEM_SUSPEND_64),
            (0x8400_000E, 0xC400_000E)
        );
        assert_eq!(PSCI_SET_SUSPEND_MODE, 0x8400_000F);
        assert_eq!(
            (PSCI_STAT_RESIDENCY_32, PSCI_STAT_RESIDENCY_64),
            (0x8400_0010, 0xC400_0010)
        );
        assert_eq!(
            (PSCI_STAT_COUNT_32, PSCI_STAT_COUNT_64),
            (0x8400_0011, 0xC400_0011)
        );
        assert_eq!(
            (SYSTEM_RESET2_32, SYSTEM_RESET2_64),
            (0x8400_0012, 0xC400_0012)
        );
        assert_eq!(MEM_PROTECT, 0x8400_0013);
        assert_eq!(
            (MEM_PROTECT_CHECK_RANGE_32, MEM_PROTECT_CHECK_RANGE_64),
            (0x8400_0014, 0xC400_0014)
        );
    }

    #[test]
    fn smccc_function_ids() {
        assert_eq!(SMCCC_VERSION, 0x8000_0000);
        assert_eq!(SMCCC_ARCH_FEATURES, 0x8000_0001);
        assert_eq!(SMCCC_ARCH_SOC_ID, 0x8000_0002);
        assert_eq!(SMCCC_ARCH_WORKAROUND_1, 0x8000_8000);
        assert_eq!(SMCCC_ARCH_WORKAROUND_2, 0x8000_7FFF);
        assert_eq!(SMCCC_ARCH_WORKAROUND_3, 0x8000_3FFF);
        assert_eq!(SMCCC_NOT_SUPPORTED, -1);
    }

    #[test]
    fn function_id_fields() {
        assert!(is_smc64(CPU_ON_64));
        assert!(!is_smc64(CPU_ON_32));
        assert_eq!(owner(CPU_ON_64), OWNER_STANDARD_SECURE);
        assert_eq!(owner(PSCI_VERSION), 4);
        assert_eq!(owner(SMCCC_VERSION), OWNER_ARCH);
        // The upper half of x0 is not part of the ID.
        assert_eq!(function_id(0xFFFF_FFFF_8400_0008), SYSTEM_OFF);
    }

    #[test]
    fn return_codes() {
        let table = [
            (0, PsciReturn::Success),
            (-1, PsciReturn::NotSupported),
            (-2, PsciReturn::InvalidParameters),
            (-3, PsciReturn::Denied),
            (-4, PsciReturn::AlreadyOn),
            (-5, PsciReturn::OnPending),
            (-6, PsciReturn::InternalFailure),
            (-7, PsciReturn::NotPresent),
            (-8, PsciReturn::Disabled),
            (-9, PsciReturn::InvalidAddress),
        ];
        for (value, ret) in table {
            assert_eq!(PsciReturn::from_code(value), ret);
            assert_eq!(ret.code(), value);
        }
        assert_eq!(PsciReturn::from_code(-10), PsciReturn::Other(-10));
        assert_eq!(PsciReturn::Other(-10).code(), -10);
    }

    #[test]
    fn from_register_sign_extended() {
        assert_eq!(PsciReturn::from_register(0), Ok(()));
        // -1 sign-extended to 64 bits, as firmware returns it.
        assert_eq!(
            PsciReturn::from_register(u64::MAX),
            Err(PsciReturn::NotSupported)
        );
        // -4 with only the low 32 bits set (a 32-bit caller's view) decodes the same.
        assert_eq!(
            PsciReturn::from_register(0xFFFF_FFFC),
            Err(PsciReturn::AlreadyOn)
        );
        assert_eq!(
            PsciReturn::from_register(0xFFFF_FFFF_FFFF_FFF7),
            Err(PsciReturn::InvalidAddress)
        );
        assert_eq!(PsciReturn::from_register(7), Err(PsciReturn::Other(7)));
    }

    #[test]
    fn to_register_sign_extends() {
        assert_eq!(PsciReturn::Success.to_register(), 0);
        assert_eq!(
            PsciReturn::NotSupported.to_register(),
            0xFFFF_FFFF_FFFF_FFFF
        );
        assert_eq!(PsciReturn::Denied.to_register(), 0xFFFF_FFFF_FFFF_FFFD);
    }

    #[test]
    fn return_display() {
        assert_eq!(PsciReturn::NotSupported.to_string(), "NOT_SUPPORTED (-1)");
        assert_eq!(
            PsciReturn::InvalidAddress.to_string(),
            "INVALID_ADDRESS (-9)"
        );
        assert_eq!(
            PsciReturn::Other(-42).to_string(),
            "unknown PSCI return code (-42)"
        );
    }

    #[test]
    fn conduit() {
        assert_eq!(Conduit::from_method("smc"), Some(Conduit::Smc));
        assert_eq!(Conduit::from_method("hvc"), Some(Conduit::Hvc));
        assert_eq!(Conduit::from_method("HVC"), None);
        assert_eq!(Conduit::from_method(""), None);
        assert_eq!(Conduit::Smc.to_string(), "smc");
        assert_eq!(Conduit::Hvc.to_string(), "hvc");
    }

    #[test]
    fn version() {
        // PSCI 1.1 is 0x0001_0001: major 1 in bits 31:16, minor 1 in bits 15:0.
        let v = PsciVersion::from_register(0x0001_0001).unwrap();
        assert_eq!(v, PsciVersion::V1_1);
        assert_eq!(v.to_string(), "1.1");
        assert_eq!(v.to_register(), 0x0001_0001);
        // PSCI 0.2 is 0x0000_0002.
        assert_eq!(
            PsciVersion::from_register(2),
            Some(PsciVersion { major: 0, minor: 2 })
        );
        assert_eq!(
            PsciVersion::from_register(0x0001_0000).unwrap().to_string(),
            "1.0"
        );
        // NOT_SUPPORTED, sign-extended: not a version.
        assert_eq!(PsciVersion::from_register(u64::MAX), None);
        assert!(PsciVersion { major: 0, minor: 2 } < PsciVersion::V1_1);
    }
}
