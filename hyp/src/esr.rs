//! Exception syndrome decoding: what `ESR_EL2` and `SPSR_EL2` say about a trap.
//!
//! When an exception is taken to EL2 the CPU records why in `ESR_EL2`:
//!
//! ```text
//!  63      56 55      32 31    26 25 24                                  0
//! +----------+----------+--------+--+-------------------------------------+
//! |   RES0   |   ISS2   |   EC   |IL|                 ISS                 |
//! +----------+----------+--------+--+-------------------------------------+
//! ```
//!
//! `EC` (exception class) says what kind of exception it was, `IL` whether the trapped
//! instruction was 32 bits wide, and `ISS` (instruction specific syndrome) holds
//! details whose layout depends on `EC`. [`Esr`] wraps the raw value, [`ExceptionClass`]
//! names every `EC` the Arm ARM (Armv8-A and Armv9-A) allocates and [`Syndrome`] is the
//! typed view the exit path and the exception report work from; [`FaultStatus`] (in
//! `fault.rs`) decodes the status code of an abort. [`SpsrEl2`] (in `spsr.rs`) decodes
//! the saved program status: the mode and the interrupt masks of the interrupted code.
//!
//! Only the encodings for exceptions taken from AArch64 are decoded in detail; classes
//! that only AArch32 code can raise are reported as [`Syndrome::Other`].
//!
//! Field positions and encodings: Arm Architecture Reference Manual for A-profile
//! (DDI 0487), register `ESR_EL2` and the ISS encodings of section D24.2.

use aarch64_cpu::registers::ESR_EL2;
use core::fmt;
use tock_registers::LocalRegisterCopy;
use tock_registers::fields::Field;
use tock_registers::register_bitfields;

mod fault;
mod spsr;
#[cfg(test)]
mod tests;

pub use fault::FaultStatus;
pub use spsr::{Daif, SpsrEl2, SpsrMode};

/// A raw `ESR_EL2` value, read through aarch64-cpu's field layout.
type EsrCopy = LocalRegisterCopy<u64, ESR_EL2::Register>;

/// `ESR_EL2.ISS2`, bits \[55:32\] (FEAT_LS64 and later widened it): aarch64-cpu
/// 11.2 declares only its first five bits.
const ISS2: Field<u64, ESR_EL2::Register> = Field::new(0xff_ffff, 32);

register_bitfields! [u64,
    /// The ISS of a data abort (EC 0x24 / 0x25).
    DATA_ABORT [
        /// Instruction syndrome valid: SAS, SSE, SRT, SF and AR hold information.
        ISV OFFSET(24) NUMBITS(1) [],
        /// Syndrome access size: log2 of the access size in bytes.
        SAS OFFSET(22) NUMBITS(2) [],
        /// Syndrome sign extend: the load sign-extends its value.
        SSE OFFSET(21) NUMBITS(1) [],
        /// Syndrome register transfer: the number of the loaded or stored register.
        SRT OFFSET(16) NUMBITS(5) [],
        /// Sixty-four bit register: the transfer register is `Xn`, not `Wn`.
        SF OFFSET(15) NUMBITS(1) [],
        /// Acquire/release semantics.
        AR OFFSET(14) NUMBITS(1) [],
        /// FAR not valid: FAR_EL2 does not hold the faulting address.
        FnV OFFSET(10) NUMBITS(1) [],
        /// External abort type (implementation defined classification).
        EA OFFSET(9) NUMBITS(1) [],
        /// Cache maintenance: the fault came from a cache maintenance or address
        /// translation instruction.
        CM OFFSET(8) NUMBITS(1) [],
        /// The fault happened on a stage-2 fault during a stage-1 translation table
        /// walk.
        S1PTW OFFSET(7) NUMBITS(1) [],
        /// Write not read.
        WnR OFFSET(6) NUMBITS(1) [],
        /// Data fault status code.
        DFSC OFFSET(0) NUMBITS(6) []
    ],
    /// The ISS of an instruction abort (EC 0x20 / 0x21): the bits it shares with a
    /// data abort sit at the same positions.
    INSTRUCTION_ABORT [
        /// FAR not valid.
        FnV OFFSET(10) NUMBITS(1) [],
        /// External abort type.
        EA OFFSET(9) NUMBITS(1) [],
        /// A stage-2 fault during a stage-1 translation table walk.
        S1PTW OFFSET(7) NUMBITS(1) [],
        /// Instruction fault status code.
        IFSC OFFSET(0) NUMBITS(6) []
    ],
    /// The ISS of HVC, SMC, SVC and BRK.
    IMMEDIATE [
        /// The instruction's immediate value (`imm16`; the "comment" of a BRK).
        IMM16 OFFSET(0) NUMBITS(16) []
    ],
    /// The ISS of a trapped MSR, MRS or system instruction (EC 0x18).
    SYSTEM_REGISTER [
        /// `op0` of the register encoding.
        Op0 OFFSET(20) NUMBITS(2) [],
        /// `op2` of the register encoding.
        Op2 OFFSET(17) NUMBITS(3) [],
        /// `op1` of the register encoding.
        Op1 OFFSET(14) NUMBITS(3) [],
        /// `CRn` of the register encoding.
        CRn OFFSET(10) NUMBITS(4) [],
        /// The general-purpose register transferred.
        Rt OFFSET(5) NUMBITS(5) [],
        /// `CRm` of the register encoding.
        CRm OFFSET(1) NUMBITS(4) [],
        /// Direction: 1 for a read (MRS, SYSL), 0 for a write (MSR, SYS).
        Direction OFFSET(0) NUMBITS(1) []
    ],
    /// The ISS of a trapped WFI, WFE, WFIT or WFET (EC 0x01).
    WFX [
        /// The register holding the timeout of WFIT/WFET.
        RN OFFSET(5) NUMBITS(5) [],
        /// Whether RN is valid.
        RV OFFSET(2) NUMBITS(1) [],
        /// Trapped instruction: bit 1 set for the forms with a timeout (WFIT,
        /// WFET), bit 0 for the WFE forms.
        TI OFFSET(0) NUMBITS(2) [
            /// WFI.
            Wfi = 0b00,
            /// WFE.
            Wfe = 0b01,
            /// WFIT.
            Wfit = 0b10,
            /// WFET.
            Wfet = 0b11
        ]
    ]
];

/// Generates [`ExceptionClass`] from one table: variant, EC value, human name.
macro_rules! exception_classes {
    ($( $(#[$meta:meta])* $variant:ident = $code:literal, $name:literal; )*) => {
        /// The exception class (`ESR_ELx.EC`): what kind of exception was taken.
        ///
        /// Every value the Arm ARM allocates has a variant; any other value decodes as
        /// [`ExceptionClass::Other`], so decoding never fails.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ExceptionClass {
            $( $(#[$meta])* $variant, )*
            /// An EC value the Arm ARM does not allocate (or one newer than this table).
            Other(u8),
        }

        impl ExceptionClass {
            /// The class for a 6-bit EC value.
            #[inline]
            pub const fn from_ec(ec: u8) -> Self {
                match ec {
                    $( $code => Self::$variant, )*
                    other => Self::Other(other),
                }
            }

            /// The 6-bit EC value of this class.
            pub const fn ec(self) -> u8 {
                match self {
                    $( Self::$variant => $code, )*
                    Self::Other(ec) => ec,
                }
            }

            /// A short human description, e.g. `"HVC from AArch64"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Other(_) => "unallocated exception class",
                }
            }
        }
    };
}

exception_classes! {
    /// Unknown reason, typically an undefined or unallocated instruction.
    Unknown = 0x00, "unknown reason (undefined instruction)";
    /// A trapped WFI, WFE, WFIT or WFET.
    Wfx = 0x01, "trapped WFI/WFE";
    /// A trapped AArch32 MCR or MRC with coproc 0b1111 (CP15).
    McrMrcCp15 = 0x03, "trapped AArch32 MCR/MRC (CP15)";
    /// A trapped AArch32 MCRR or MRRC with coproc 0b1111 (CP15).
    McrrMrrcCp15 = 0x04, "trapped AArch32 MCRR/MRRC (CP15)";
    /// A trapped AArch32 MCR or MRC with coproc 0b1110 (CP14, debug).
    McrMrcCp14 = 0x05, "trapped AArch32 MCR/MRC (CP14)";
    /// A trapped AArch32 LDC or STC (debug communication channel).
    LdcStc = 0x06, "trapped AArch32 LDC/STC";
    /// An access to SME, SVE, Advanced SIMD or floating point trapped by CPTR/CPACR.
    FpAccess = 0x07, "trapped FP/SIMD access";
    /// A trapped AArch32 VMRS access to an ID register.
    VmrsId = 0x08, "trapped AArch32 VMRS (ID group)";
    /// A trapped pointer authentication instruction (FEAT_PAuth).
    PointerAuth = 0x09, "trapped pointer authentication instruction";
    /// A trapped instruction no other class covers, e.g. LD64B/ST64B (FEAT_LS64).
    OtherTrap = 0x0A, "trapped instruction (LD64B/ST64B and others)";
    /// A trapped AArch32 MRRC with coproc 0b1110 (CP14).
    MrrcCp14 = 0x0C, "trapped AArch32 MRRC (CP14)";
    /// A branch target exception (FEAT_BTI).
    BranchTarget = 0x0D, "branch target exception";
    /// An illegal execution state, e.g. an exception return to a bad mode.
    IllegalState = 0x0E, "illegal execution state";
    /// SVC executed in AArch32 state.
    Svc32 = 0x11, "SVC from AArch32";
    /// HVC executed in AArch32 state.
    Hvc32 = 0x12, "HVC from AArch32";
    /// SMC executed in AArch32 state.
    Smc32 = 0x13, "SMC from AArch32";
    /// A trapped MSRR, MRRS or SYSP (128-bit system registers, FEAT_SYSREG128).
    SystemRegister128 = 0x14, "trapped MSRR/MRRS/SYSP";
    /// SVC executed in AArch64 state.
    Svc64 = 0x15, "SVC from AArch64";
    /// HVC executed in AArch64 state.
    Hvc64 = 0x16, "HVC from AArch64";
    /// SMC executed in AArch64 state (trapped by HCR_EL2.TSC).
    Smc64 = 0x17, "SMC from AArch64";
    /// A trapped MSR, MRS or system instruction in AArch64 state.
    SystemRegister = 0x18, "trapped MSR/MRS/system instruction";
    /// An access to SVE functionality trapped by CPTR/CPACR.
    Sve = 0x19, "trapped SVE access";
    /// A trapped ERET, ERETAA or ERETAB (FEAT_NV, FEAT_FGT).
    Eret = 0x1A, "trapped ERET";
    /// A TSTART instruction exception (FEAT_TME).
    Tstart = 0x1B, "TSTART exception";
    /// A pointer authentication failure (FEAT_FPAC).
    PacFailure = 0x1C, "pointer authentication failure";
    /// An access to SME functionality trapped.
    Sme = 0x1D, "trapped SME access";
    /// A granule protection check exception (FEAT_RME).
    GranuleProtection = 0x1E, "granule protection check";
    /// An implementation defined exception to EL3.
    ImplementationDefined = 0x1F, "implementation defined exception";
    /// An instruction abort from a lower exception level.
    InstructionAbortLower = 0x20, "instruction abort from a lower EL";
    /// An instruction abort taken without a change of exception level.
    InstructionAbortSame = 0x21, "instruction abort from the same EL";
    /// A misaligned PC.
    PcAlignment = 0x22, "PC alignment fault";
    /// A data abort from a lower exception level.
    DataAbortLower = 0x24, "data abort from a lower EL";
    /// A data abort taken without a change of exception level.
    DataAbortSame = 0x25, "data abort from the same EL";
    /// A misaligned stack pointer.
    SpAlignment = 0x26, "SP alignment fault";
    /// A memory operation (CPY*/SET*) exception (FEAT_MOPS).
    MemoryOperation = 0x27, "memory operation exception";
    /// A trapped floating-point exception from AArch32.
    FpException32 = 0x28, "floating-point exception from AArch32";
    /// A trapped floating-point exception from AArch64.
    FpException64 = 0x2C, "floating-point exception from AArch64";
    /// A guarded control stack exception (FEAT_GCS).
    GuardedControlStack = 0x2D, "guarded control stack exception";
    /// An SError exception (asynchronous external abort).
    SError = 0x2F, "SError";
    /// A hardware breakpoint from a lower exception level.
    BreakpointLower = 0x30, "breakpoint from a lower EL";
    /// A hardware breakpoint without a change of exception level.
    BreakpointSame = 0x31, "breakpoint from the same EL";
    /// A software step from a lower exception level.
    SoftwareStepLower = 0x32, "software step from a lower EL";
    /// A software step without a change of exception level.
    SoftwareStepSame = 0x33, "software step from the same EL";
    /// A watchpoint from a lower exception level.
    WatchpointLower = 0x34, "watchpoint from a lower EL";
    /// A watchpoint without a change of exception level.
    WatchpointSame = 0x35, "watchpoint from the same EL";
    /// BKPT executed in AArch32 state.
    Bkpt32 = 0x38, "BKPT from AArch32";
    /// A vector catch from AArch32 state.
    VectorCatch32 = 0x3A, "vector catch from AArch32";
    /// BRK executed in AArch64 state.
    Brk64 = 0x3C, "BRK from AArch64";
    /// A profiling exception (FEAT_EBEP, FEAT_SPE_EXC, FEAT_TRBE_EXC).
    Profiling = 0x3D, "profiling exception";
}

impl fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(ec) => write!(f, "unallocated exception class {ec:#04x}"),
            class => f.write_str(class.name()),
        }
    }
}

/// The load/store details of a data abort, present when `ISV` is set.
///
/// The CPU provides them for single-register loads and stores without writeback,
/// which is what MMIO accessors use; emulating the access needs nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataAccess {
    /// Access size in bytes (1, 2, 4 or 8; from `SAS`).
    pub bytes: u8,
    /// The load sign-extends the value into the register (`SSE`).
    pub sign_extend: bool,
    /// The transfer register number, 0 to 30, or 31 for `xzr`/`wzr` (`SRT`).
    pub register: u8,
    /// The register is a 64-bit `Xn` rather than a 32-bit `Wn` (`SF`).
    pub register_is_64bit: bool,
    /// The instruction has acquire/release semantics (`AR`).
    pub acquire_release: bool,
}

/// The ISS of a data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataAbortIss {
    /// The access details, when the instruction syndrome is valid (`ISV` = 1).
    pub access: Option<DataAccess>,
    /// `FAR_EL2` does not hold the faulting virtual address (`FnV`).
    pub far_not_valid: bool,
    /// External abort type, implementation defined (`EA`).
    pub external_abort_type: bool,
    /// The fault came from a cache maintenance or address translation instruction (`CM`).
    pub cache_maintenance: bool,
    /// A stage-2 fault on the stage-1 translation table walk (`S1PTW`).
    pub stage1_walk: bool,
    /// The access was a write (`WnR`).
    pub is_write: bool,
    /// Why the access faulted (`DFSC`).
    pub fault: FaultStatus,
}

impl DataAbortIss {
    /// Decodes the ISS of a data abort.
    // Always inlined, into `Esr::syndrome` and so into the exit path: the most
    // frequent exit (MMIO) then keeps the decoded fields in registers.
    #[inline(always)]
    pub fn decode(iss: u32) -> Self {
        let v = LocalRegisterCopy::<u64, DATA_ABORT::Register>::new(iss.into());
        let access = if v.is_set(DATA_ABORT::ISV) {
            Some(DataAccess {
                bytes: 1 << v.read(DATA_ABORT::SAS),
                sign_extend: v.is_set(DATA_ABORT::SSE),
                register: v.read(DATA_ABORT::SRT) as u8,
                register_is_64bit: v.is_set(DATA_ABORT::SF),
                acquire_release: v.is_set(DATA_ABORT::AR),
            })
        } else {
            None
        };
        Self {
            access,
            far_not_valid: v.is_set(DATA_ABORT::FnV),
            external_abort_type: v.is_set(DATA_ABORT::EA),
            cache_maintenance: v.is_set(DATA_ABORT::CM),
            stage1_walk: v.is_set(DATA_ABORT::S1PTW),
            is_write: v.is_set(DATA_ABORT::WnR),
            fault: FaultStatus::decode(v.read(DATA_ABORT::DFSC) as u8),
        }
    }

    /// Whether the instruction syndrome is valid (`ISV`).
    pub const fn isv(&self) -> bool {
        self.access.is_some()
    }
}

/// The ISS of an instruction abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstructionAbortIss {
    /// `FAR_EL2` does not hold the faulting virtual address (`FnV`).
    pub far_not_valid: bool,
    /// External abort type, implementation defined (`EA`).
    pub external_abort_type: bool,
    /// A stage-2 fault on the stage-1 translation table walk (`S1PTW`).
    pub stage1_walk: bool,
    /// Why the fetch faulted (`IFSC`).
    pub fault: FaultStatus,
}

impl InstructionAbortIss {
    /// Decodes the ISS of an instruction abort.
    pub fn decode(iss: u32) -> Self {
        let v = LocalRegisterCopy::<u64, INSTRUCTION_ABORT::Register>::new(iss.into());
        Self {
            far_not_valid: v.is_set(INSTRUCTION_ABORT::FnV),
            external_abort_type: v.is_set(INSTRUCTION_ABORT::EA),
            stage1_walk: v.is_set(INSTRUCTION_ABORT::S1PTW),
            fault: FaultStatus::decode(v.read(INSTRUCTION_ABORT::IFSC) as u8),
        }
    }
}

/// Which debug exception a [`Syndrome::Debug`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DebugEvent {
    /// A hardware breakpoint.
    Breakpoint,
    /// A software step (single step).
    SoftwareStep,
    /// A watchpoint.
    Watchpoint,
}

/// The typed meaning of an exception syndrome.
///
/// AArch32-only classes, and classes Aerie has no use for in detail, decode as
/// [`Syndrome::Other`] with their raw ISS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syndrome {
    /// EC 0: unknown reason, usually an undefined or unallocated instruction.
    Unknown,
    /// A trapped WFI, WFE, WFIT or WFET.
    Wfx {
        /// The instruction was WFE or WFET (not WFI or WFIT).
        is_wfe: bool,
        /// The instruction was WFIT or WFET, which wait with a timeout.
        has_timeout: bool,
        /// The register holding the timeout, when the CPU reports it.
        timeout_register: Option<u8>,
    },
    /// A trapped MSR, MRS or system instruction (EC 0x18).
    SystemRegister {
        /// `op0` of the encoding (3 for most registers, 1 for system instructions).
        op0: u8,
        /// `op1` of the encoding.
        op1: u8,
        /// `CRn` of the encoding.
        crn: u8,
        /// `CRm` of the encoding.
        crm: u8,
        /// `op2` of the encoding.
        op2: u8,
        /// The general-purpose register transferred (31 means `xzr`).
        rt: u8,
        /// A read (MRS, SYSL) rather than a write (MSR, SYS).
        is_read: bool,
    },
    /// HVC from AArch64.
    Hvc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// SMC from AArch64 (trapped by HCR_EL2.TSC).
    Smc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// SVC from AArch64 (only routed to EL2 when HCR_EL2.TGE is set).
    Svc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// An instruction abort.
    InstructionAbort {
        /// Taken from a lower exception level (the guest) rather than from EL2.
        from_lower_el: bool,
        /// The decoded ISS.
        iss: InstructionAbortIss,
    },
    /// A data abort.
    DataAbort {
        /// Taken from a lower exception level (the guest) rather than from EL2.
        from_lower_el: bool,
        /// The decoded ISS.
        iss: DataAbortIss,
    },
    /// A misaligned PC.
    PcAlignment,
    /// A misaligned stack pointer.
    SpAlignment,
    /// An illegal execution state (usually an exception return to a bad mode).
    IllegalState,
    /// An SError.
    SError {
        /// The raw ISS (its layout is partly implementation defined).
        iss: u32,
    },
    /// A breakpoint, software step or watchpoint.
    Debug {
        /// Which debug exception.
        event: DebugEvent,
        /// Taken from a lower exception level rather than from EL2.
        from_lower_el: bool,
        /// The raw ISS.
        iss: u32,
    },
    /// BRK from AArch64.
    Brk {
        /// The instruction's immediate (Linux encodes the reason in it, e.g. 0x800 = BUG).
        comment: u16,
    },
    /// Any other class.
    Other {
        /// The exception class.
        class: ExceptionClass,
        /// The raw ISS.
        iss: u32,
    },
}

impl Syndrome {
    /// Decodes a raw `ESR_EL2` value.
    #[inline]
    pub fn decode(esr: u64) -> Self {
        Esr(esr).syndrome()
    }
}

/// A raw `ESR_EL2` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Esr(pub u64);

impl Esr {
    /// This value as a register copy, to read its fields.
    const fn copy(self) -> EsrCopy {
        EsrCopy::new(self.0)
    }

    /// The raw 6-bit exception class.
    #[inline]
    pub fn ec(self) -> u8 {
        self.copy().read(ESR_EL2::EC) as u8
    }

    /// The exception class.
    #[inline]
    pub fn class(self) -> ExceptionClass {
        ExceptionClass::from_ec(self.ec())
    }

    /// The instruction specific syndrome (25 bits).
    #[inline]
    pub fn iss(self) -> u32 {
        self.copy().read(ESR_EL2::ISS) as u32
    }

    /// The second instruction specific syndrome (24 bits, data aborts only).
    pub fn iss2(self) -> u32 {
        self.copy().read(ISS2) as u32
    }

    /// The length in bytes of the trapped instruction (4, or 2 for a 16-bit T32
    /// instruction): what to add to `ELR_EL2` to skip an emulated instruction.
    #[inline]
    pub fn instruction_len(self) -> u64 {
        if self.copy().is_set(ESR_EL2::IL) {
            4
        } else {
            2
        }
    }

    /// The typed view of this syndrome.
    // Always inlined: the exit path (`Exit::decode`) matches on the result at once,
    // and inlined only the taken class's fields are decoded; as a call (which the
    // tock-registers reads made the compiler choose) the whole enum goes through
    // memory, about 19 instructions more per HVC exit.
    #[inline(always)]
    pub fn syndrome(self) -> Syndrome {
        let iss = self.iss();
        let imm = IMMEDIATE::IMM16.read(iss.into()) as u16;
        match self.class() {
            ExceptionClass::Unknown => Syndrome::Unknown,
            ExceptionClass::Wfx => {
                let v = LocalRegisterCopy::<u64, WFX::Register>::new(iss.into());
                let (is_wfe, has_timeout) = match v.read_as_enum(WFX::TI) {
                    Some(WFX::TI::Value::Wfe) => (true, false),
                    Some(WFX::TI::Value::Wfit) => (false, true),
                    Some(WFX::TI::Value::Wfet) => (true, true),
                    Some(WFX::TI::Value::Wfi) | None => (false, false),
                };
                Syndrome::Wfx {
                    is_wfe,
                    has_timeout,
                    timeout_register: (has_timeout && v.is_set(WFX::RV))
                        .then(|| v.read(WFX::RN) as u8),
                }
            }
            ExceptionClass::SystemRegister => {
                let v = LocalRegisterCopy::<u64, SYSTEM_REGISTER::Register>::new(iss.into());
                Syndrome::SystemRegister {
                    op0: v.read(SYSTEM_REGISTER::Op0) as u8,
                    op1: v.read(SYSTEM_REGISTER::Op1) as u8,
                    crn: v.read(SYSTEM_REGISTER::CRn) as u8,
                    crm: v.read(SYSTEM_REGISTER::CRm) as u8,
                    op2: v.read(SYSTEM_REGISTER::Op2) as u8,
                    rt: v.read(SYSTEM_REGISTER::Rt) as u8,
                    is_read: v.is_set(SYSTEM_REGISTER::Direction),
                }
            }
            ExceptionClass::Hvc64 => Syndrome::Hvc { imm },
            ExceptionClass::Smc64 => Syndrome::Smc { imm },
            ExceptionClass::Svc64 => Syndrome::Svc { imm },
            ExceptionClass::InstructionAbortLower => Syndrome::InstructionAbort {
                from_lower_el: true,
                iss: InstructionAbortIss::decode(iss),
            },
            ExceptionClass::InstructionAbortSame => Syndrome::InstructionAbort {
                from_lower_el: false,
                iss: InstructionAbortIss::decode(iss),
            },
            ExceptionClass::DataAbortLower => Syndrome::DataAbort {
                from_lower_el: true,
                iss: DataAbortIss::decode(iss),
            },
            ExceptionClass::DataAbortSame => Syndrome::DataAbort {
                from_lower_el: false,
                iss: DataAbortIss::decode(iss),
            },
            ExceptionClass::PcAlignment => Syndrome::PcAlignment,
            ExceptionClass::SpAlignment => Syndrome::SpAlignment,
            ExceptionClass::IllegalState => Syndrome::IllegalState,
            ExceptionClass::SError => Syndrome::SError { iss },
            ExceptionClass::BreakpointLower => debug(DebugEvent::Breakpoint, true, iss),
            ExceptionClass::BreakpointSame => debug(DebugEvent::Breakpoint, false, iss),
            ExceptionClass::SoftwareStepLower => debug(DebugEvent::SoftwareStep, true, iss),
            ExceptionClass::SoftwareStepSame => debug(DebugEvent::SoftwareStep, false, iss),
            ExceptionClass::WatchpointLower => debug(DebugEvent::Watchpoint, true, iss),
            ExceptionClass::WatchpointSame => debug(DebugEvent::Watchpoint, false, iss),
            ExceptionClass::Brk64 => Syndrome::Brk { comment: imm },
            class => Syndrome::Other { class, iss },
        }
    }
}

const fn debug(event: DebugEvent, from_lower_el: bool, iss: u32) -> Syndrome {
    Syndrome::Debug {
        event,
        from_lower_el,
        iss,
    }
}

/// Where an exception came from, as the report words it. Syndromes are read from
/// `ESR_EL2`, so "the same EL" is EL2.
fn origin(from_lower_el: bool) -> &'static str {
    if from_lower_el { "a lower EL" } else { "EL2" }
}

/// A general-purpose register name as an instruction would spell it.
struct Reg {
    number: u8,
    is_64bit: bool,
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Register number 31 names the zero register in these encodings.
        const ZERO_REGISTER: u8 = 31;
        let prefix = if self.is_64bit { 'x' } else { 'w' };
        if self.number == ZERO_REGISTER {
            write!(f, "{prefix}zr")
        } else {
            write!(f, "{prefix}{}", self.number)
        }
    }
}

/// An instruction immediate: small values in decimal, larger ones in hex.
struct Imm(u16);

impl fmt::Display for Imm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Immediates below this print in decimal (`#0`, `#1`).
        const DECIMAL_BELOW: u16 = 10;
        if self.0 < DECIMAL_BELOW {
            write!(f, "#{}", self.0)
        } else {
            write!(f, "#{:#x}", self.0)
        }
    }
}

impl fmt::Display for DataAbortIss {
    /// Formats e.g. `translation fault at level 1, write of 8 bytes (x3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.is_write { "write" } else { "read" };
        write!(f, "{}, {direction}", self.fault)?;
        match self.access {
            Some(access) => {
                let unit = if access.bytes == 1 { "byte" } else { "bytes" };
                let reg = Reg {
                    number: access.register,
                    is_64bit: access.register_is_64bit,
                };
                write!(f, " of {} {unit} ({reg}", access.bytes)?;
                if access.sign_extend {
                    f.write_str(", sign-extended")?;
                }
                f.write_str(")")?;
            }
            None => f.write_str(" (no instruction syndrome)")?,
        }
        if self.cache_maintenance {
            f.write_str(", by cache maintenance")?;
        }
        if self.stage1_walk {
            f.write_str(", during the stage-1 table walk")?;
        }
        if self.far_not_valid {
            f.write_str(", FAR not valid")?;
        }
        Ok(())
    }
}

impl fmt::Display for InstructionAbortIss {
    /// Formats e.g. `translation fault at level 3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fault)?;
        if self.stage1_walk {
            f.write_str(", during the stage-1 table walk")?;
        }
        if self.far_not_valid {
            f.write_str(", FAR not valid")?;
        }
        Ok(())
    }
}

impl fmt::Display for Syndrome {
    /// A one-line explanation for Aerie's exception report, e.g.
    /// `data abort from EL2: translation fault at level 1, write of 8 bytes (x3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// `op0` of the system instruction space (DC, IC, TLBI, AT, ...).
        const OP0_SYSTEM_INSTRUCTION: u8 = 1;
        match *self {
            Self::Unknown => f.write_str("unknown reason (undefined instruction?)"),
            Self::Wfx {
                is_wfe,
                has_timeout,
                timeout_register,
            } => {
                let name = match (is_wfe, has_timeout) {
                    (false, false) => "wfi",
                    (true, false) => "wfe",
                    (false, true) => "wfit",
                    (true, true) => "wfet",
                };
                write!(f, "trapped {name}")?;
                if let Some(number) = timeout_register {
                    write!(
                        f,
                        " {}",
                        Reg {
                            number,
                            is_64bit: true
                        }
                    )?;
                }
                Ok(())
            }
            Self::SystemRegister {
                op0,
                op1,
                crn,
                crm,
                op2,
                rt,
                is_read,
            } => {
                let reg = Reg {
                    number: rt,
                    is_64bit: true,
                };
                if op0 == OP0_SYSTEM_INSTRUCTION {
                    let operands = SysOperands { op1, crn, crm, op2 };
                    if is_read {
                        write!(f, "trapped sysl {reg}, {operands}")
                    } else {
                        write!(f, "trapped sys {operands}, {reg}")
                    }
                } else if is_read {
                    write!(f, "trapped mrs {reg}, S{op0}_{op1}_C{crn}_C{crm}_{op2}")
                } else {
                    write!(f, "trapped msr S{op0}_{op1}_C{crn}_C{crm}_{op2}, {reg}")
                }
            }
            Self::Hvc { imm } => write!(f, "hvc {}", Imm(imm)),
            Self::Smc { imm } => write!(f, "smc {}", Imm(imm)),
            Self::Svc { imm } => write!(f, "svc {}", Imm(imm)),
            Self::InstructionAbort { from_lower_el, iss } => {
                write!(f, "instruction abort from {}: {iss}", origin(from_lower_el))
            }
            Self::DataAbort { from_lower_el, iss } => {
                write!(f, "data abort from {}: {iss}", origin(from_lower_el))
            }
            Self::PcAlignment => f.write_str("PC alignment fault"),
            Self::SpAlignment => f.write_str("SP alignment fault"),
            Self::IllegalState => f.write_str("illegal execution state (bad exception return?)"),
            Self::SError { iss } => write!(f, "SError (ISS {iss:#x})"),
            Self::Debug {
                event,
                from_lower_el,
                ..
            } => {
                let name = match event {
                    DebugEvent::Breakpoint => "breakpoint",
                    DebugEvent::SoftwareStep => "software step",
                    DebugEvent::Watchpoint => "watchpoint",
                };
                write!(f, "{name} from {}", origin(from_lower_el))
            }
            Self::Brk { comment } => write!(f, "brk {}", Imm(comment)),
            Self::Other { class, iss } => write!(f, "{class} (ISS {iss:#x})"),
        }
    }
}

/// The operands of a SYS/SYSL instruction: `#op1, Cn, Cm, #op2`.
struct SysOperands {
    op1: u8,
    crn: u8,
    crm: u8,
    op2: u8,
}

impl fmt::Display for SysOperands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{}, C{}, C{}, #{}",
            self.op1, self.crn, self.crm, self.op2
        )
    }
}
