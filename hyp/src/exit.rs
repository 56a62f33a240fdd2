//! A trapped guest exception, decoded once into a typed [`Exit`].
//!
//! When a guest traps to EL2 the vector code records `ESR_EL2`, `FAR_EL2` and
//! `HPFAR_EL2` in a [`TrapInfo`] and knows which vector it came through
//! ([`VectorKind`]). [`Exit::from_vector`] turns that into what the dispatcher needs:
//! a hypercall with its immediate, an MMIO access with its guest physical address and
//! transfer register, a system register by name, a set/way cache operation, a wait.
//! The raw syndrome decoding is [`crate::esr`]'s; this module adds the guest's point of
//! view (guest physical addresses, which register names Aerie emulates, what to do
//! with the PC).
//!
//! # The PC after an exit
//!
//! `ELR_EL2` holds the *preferred return address*, which differs per exit (Arm ARM
//! DDI 0487, D1.3.4 "Preferred exception return address" and the per-class notes in
//! the ESR_EL2 description):
//!
//! | exit | `ELR_EL2` points at | after handling it the caller |
//! |---|---|---|
//! | [`Exit::Hvc`] | the instruction after the HVC | returns to `ELR_EL2` unchanged |
//! | [`Exit::Smc`] | the SMC itself (trapped by HCR_EL2.TSC) | adds 4 |
//! | [`Exit::DataAbort`] emulated as MMIO | the load or store | adds 4 |
//! | [`Exit::SystemRegister`], [`Exit::SetWayCacheOp`] emulated | the MSR/MRS/SYS | adds 4 |
//! | [`Exit::Wfi`], [`Exit::Wfe`], [`Exit::Wfit`], [`Exit::Wfet`] | the wait instruction | adds 4 once the vCPU may run again |
//! | an exception injected into the guest instead | the instruction that caused it | uses it as `ELR_EL1` (see [`crate::inject`]) |
//! | [`Exit::Irq`], [`Exit::Fiq`], [`Exit::SError`] | the next instruction the guest would have run | returns to it unchanged |
//!
//! Aerie's guests run AArch64 at EL1 (HCR_EL2.RW = 1), where every instruction is 4
//! bytes; `Esr::instruction_len` gives the length when in doubt.

use crate::esr::{DataAbortIss, Esr, ExceptionClass, FaultStatus, Syndrome};
use aerie_devices::mmio::AccessWidth;
use core::fmt;

/// What the exception vector recorded about a trap from the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrapInfo {
    /// `ESR_EL2`: the syndrome.
    pub esr: u64,
    /// `FAR_EL2`: the faulting virtual address of an abort (UNKNOWN otherwise).
    pub far: u64,
    /// `HPFAR_EL2`: the faulting guest physical page of some stage-2 aborts.
    pub hpfar: u64,
}

/// Which of the four lower-EL (AArch64) exception vectors was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VectorKind {
    /// Synchronous: the guest's instruction trapped (offset 0x400 of `VBAR_EL2`).
    Synchronous,
    /// A physical IRQ arrived while the guest ran (offset 0x480).
    Irq,
    /// A physical FIQ arrived while the guest ran (offset 0x500).
    Fiq,
    /// A physical SError arrived while the guest ran (offset 0x580).
    SError,
}

/// A system register's identity: its `op0, op1, CRn, CRm, op2` encoding.
///
/// Field widths: `op0` 2 bits, `op1` 3, `CRn` 4, `CRm` 4, `op2` 3 (Arm ARM C5.3,
/// "A64 System instructions for ... System register access"). `op0` = 1 is the
/// system *instruction* space (DC, IC, TLBI, AT), 2 the debug registers, 3 the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SysReg {
    op0: u8,
    op1: u8,
    crn: u8,
    crm: u8,
    op2: u8,
}

/// Widths of the encoding fields, as masks.
mod sysreg_mask {
    pub const OP0: u8 = 0b11;
    pub const OP1: u8 = 0b111;
    pub const CRN: u8 = 0b1111;
    pub const CRM: u8 = 0b1111;
    pub const OP2: u8 = 0b111;
}

/// Generates the named [`SysReg`] constants and their name table from one list.
macro_rules! sys_regs {
    ($( $(#[$meta:meta])* $name:ident = ($op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal); )*) => {
        impl SysReg {
            $( $(#[$meta])* pub const $name: Self = Self::new($op0, $op1, $crn, $crm, $op2); )*
        }

        /// Every named register with its architectural name.
        const NAMES: &[(SysReg, &str)] = &[ $( (SysReg::$name, stringify!($name)), )* ];
    };
}

sys_regs! {
    /// EL1 physical timer control (trapped by CNTHCTL_EL2.EL1PCEN = 0).
    CNTP_CTL_EL0 = (3, 3, 14, 2, 1);
    /// EL1 physical timer compare value.
    CNTP_CVAL_EL0 = (3, 3, 14, 2, 2);
    /// EL1 physical timer value (the compare value minus the count, 32-bit signed).
    CNTP_TVAL_EL0 = (3, 3, 14, 2, 0);
    /// Physical count (trapped by CNTHCTL_EL2.EL1PCTEN = 0).
    CNTPCT_EL0 = (3, 3, 14, 0, 1);
    /// Auxiliary control, implementation defined (trapped by HCR_EL2.TACR).
    ACTLR_EL1 = (3, 0, 1, 0, 1);
    /// GICv3 SGI generation, group 1 (trapped by ICH_HCR_EL2.TC or when emulated).
    ICC_SGI1R_EL1 = (3, 0, 12, 11, 5);
    /// GICv3 system register enable at EL1.
    ICC_SRE_EL1 = (3, 0, 12, 12, 5);
    /// PMU control (trapped by MDCR_EL2.TPM/TPMCR).
    PMCR_EL0 = (3, 3, 9, 12, 0);
    /// PMU counter enable set.
    PMCNTENSET_EL0 = (3, 3, 9, 12, 1);
    /// PMU counter enable clear.
    PMCNTENCLR_EL0 = (3, 3, 9, 12, 2);
    /// PMU overflow flag status clear.
    PMOVSCLR_EL0 = (3, 3, 9, 12, 3);
    /// PMU software increment.
    PMSWINC_EL0 = (3, 3, 9, 12, 4);
    /// PMU event counter selection.
    PMSELR_EL0 = (3, 3, 9, 12, 5);
    /// PMU common event identification 0.
    PMCEID0_EL0 = (3, 3, 9, 12, 6);
    /// PMU common event identification 1.
    PMCEID1_EL0 = (3, 3, 9, 12, 7);
    /// PMU cycle counter.
    PMCCNTR_EL0 = (3, 3, 9, 13, 0);
    /// PMU selected event type.
    PMXEVTYPER_EL0 = (3, 3, 9, 13, 1);
    /// PMU selected event count.
    PMXEVCNTR_EL0 = (3, 3, 9, 13, 2);
    /// PMU user enable.
    PMUSERENR_EL0 = (3, 3, 9, 14, 0);
    /// PMU interrupt enable set.
    PMINTENSET_EL1 = (3, 0, 9, 14, 1);
    /// PMU interrupt enable clear.
    PMINTENCLR_EL1 = (3, 0, 9, 14, 2);
    /// PMU overflow flag status set.
    PMOVSSET_EL0 = (3, 3, 9, 14, 3);
    /// PMU cycle counter filter.
    PMCCFILTR_EL0 = (3, 3, 14, 15, 7);
    /// OS lock access (write-only; trapped by MDCR_EL2.TDOSA).
    OSLAR_EL1 = (2, 0, 1, 0, 4);
    /// OS lock status (read-only).
    OSLSR_EL1 = (2, 0, 1, 1, 4);
    /// OS double lock.
    OSDLR_EL1 = (2, 0, 1, 3, 4);
    /// `DC ISW`: invalidate data cache line by set/way (trapped by HCR_EL2.TSW).
    DC_ISW = (1, 0, 7, 6, 2);
    /// `DC CSW`: clean data cache line by set/way.
    DC_CSW = (1, 0, 7, 10, 2);
    /// `DC CISW`: clean and invalidate data cache line by set/way.
    DC_CISW = (1, 0, 7, 14, 2);
}

impl SysReg {
    /// The PMU registers Aerie handles as a group (Arm ARM D23.5, "Performance
    /// Monitors registers"): without a virtual PMU they all read as zero and ignore
    /// writes, or the access is refused.
    pub const PMU: [Self; 16] = [
        Self::PMCR_EL0,
        Self::PMCNTENSET_EL0,
        Self::PMCNTENCLR_EL0,
        Self::PMOVSCLR_EL0,
        Self::PMSWINC_EL0,
        Self::PMSELR_EL0,
        Self::PMCEID0_EL0,
        Self::PMCEID1_EL0,
        Self::PMCCNTR_EL0,
        Self::PMXEVTYPER_EL0,
        Self::PMXEVCNTR_EL0,
        Self::PMUSERENR_EL0,
        Self::PMINTENSET_EL1,
        Self::PMINTENCLR_EL1,
        Self::PMOVSSET_EL0,
        Self::PMCCFILTR_EL0,
    ];

    /// The register with this encoding; each field is cut to its width.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0: op0 & sysreg_mask::OP0,
            op1: op1 & sysreg_mask::OP1,
            crn: crn & sysreg_mask::CRN,
            crm: crm & sysreg_mask::CRM,
            op2: op2 & sysreg_mask::OP2,
        }
    }

    /// `op0`.
    pub const fn op0(self) -> u8 {
        self.op0
    }

    /// `op1`.
    pub const fn op1(self) -> u8 {
        self.op1
    }

    /// `CRn`.
    pub const fn crn(self) -> u8 {
        self.crn
    }

    /// `CRm`.
    pub const fn crm(self) -> u8 {
        self.crm
    }

    /// `op2`.
    pub const fn op2(self) -> u8 {
        self.op2
    }

    /// The architectural name, for the registers this module names.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(reg, _)| *reg == self)
            .map(|&(_, name)| name)
    }

    /// Whether this is one of the PMU registers in [`SysReg::PMU`].
    pub fn is_pmu(self) -> bool {
        Self::PMU.contains(&self)
    }

    /// Whether the encoding is reserved for IMPLEMENTATION DEFINED registers:
    /// `op0` = 3 and `CRn` = 11 or 15 (Arm ARM D23.3.2, "Reserved encodings for
    /// IMPLEMENTATION DEFINED registers"). Accesses to them trap with HCR_EL2.TIDCP.
    pub const fn is_implementation_defined(self) -> bool {
        /// `op0` of the non-debug System register space.
        const OP0_REGISTERS: u8 = 3;
        /// `CRn` = 0b1x11.
        const CRN_IMPDEF_MASK: u8 = 0b1011;
        const CRN_IMPDEF: u8 = 0b1011;
        self.op0 == OP0_REGISTERS && self.crn & CRN_IMPDEF_MASK == CRN_IMPDEF
    }
}

impl fmt::Display for SysReg {
    /// The generic assembler spelling, then the name when known:
    /// `S3_3_C14_C2_1 (CNTP_CTL_EL0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S{}_{}_C{}_C{}_{}",
            self.op0, self.op1, self.crn, self.crm, self.op2
        )?;
        if let Some(name) = self.name() {
            write!(f, " ({name})")?;
        }
        Ok(())
    }
}

/// Register number 31 names the zero register (`xzr`) in these encodings.
const ZERO_REGISTER: u8 = 31;

/// A general-purpose register as an instruction spells it: `x3`, `w3`, `xzr`.
struct Gpr {
    number: u8,
    is_64bit: bool,
}

impl fmt::Display for Gpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.is_64bit { 'x' } else { 'w' };
        if self.number == ZERO_REGISTER {
            write!(f, "{prefix}zr")
        } else {
            write!(f, "{prefix}{}", self.number)
        }
    }
}

/// A trapped MRS or MSR (or SYS/SYSL other than a set/way cache operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysRegAccess {
    /// `op0` of the encoding (3 for most registers, 2 debug, 1 system instructions).
    pub op0: u8,
    /// `op1` of the encoding.
    pub op1: u8,
    /// `CRn` of the encoding.
    pub crn: u8,
    /// `CRm` of the encoding.
    pub crm: u8,
    /// `op2` of the encoding.
    pub op2: u8,
    /// The general-purpose register transferred (`Rt`); 31 means `xzr`: a read into
    /// it is discarded, a write from it writes zero.
    pub register: u8,
    /// MRS (the guest reads the register) rather than MSR.
    pub is_read: bool,
}

impl SysRegAccess {
    /// Which register, to match against the [`SysReg`] constants.
    pub const fn reg(&self) -> SysReg {
        SysReg::new(self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

impl fmt::Display for SysRegAccess {
    /// `mrs x2, S3_3_C14_C2_1 (CNTP_CTL_EL0)` or `msr S3_0_C12_C11_5 (ICC_SGI1R_EL1), x1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gpr = Gpr {
            number: self.register,
            is_64bit: true,
        };
        if self.is_read {
            write!(f, "mrs {gpr}, {}", self.reg())
        } else {
            write!(f, "msr {}, {gpr}", self.reg())
        }
    }
}

/// Which data cache maintenance by set/way the guest issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetWay {
    /// `DC ISW`.
    Invalidate,
    /// `DC CSW`.
    Clean,
    /// `DC CISW`.
    CleanInvalidate,
}

impl SetWay {
    /// The set/way operation a system instruction encodes, if it is one.
    fn of(reg: SysReg) -> Option<Self> {
        match reg {
            SysReg::DC_ISW => Some(Self::Invalidate),
            SysReg::DC_CSW => Some(Self::Clean),
            SysReg::DC_CISW => Some(Self::CleanInvalidate),
            _ => None,
        }
    }

    /// The instruction's mnemonic: `dc isw`, `dc csw` or `dc cisw`.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            Self::Invalidate => "dc isw",
            Self::Clean => "dc csw",
            Self::CleanInvalidate => "dc cisw",
        }
    }
}

/// How a load or store that hit an emulated device moves its data, from the
/// instruction syndrome of the data abort (`ISV` = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmioAccess {
    /// A store (`WnR`) rather than a load.
    pub is_write: bool,
    /// How many bytes move (`SAS`).
    pub width: AccessWidth,
    /// The transfer register (`SRT`); 31 means `xzr`/`wzr`.
    pub register: u8,
    /// A load sign-extends the value into the register (`SSE`).
    pub sign_extend: bool,
    /// The transfer register is 64-bit `Xn` rather than `Wn` (`SF`).
    pub sixty_four: bool,
    /// The instruction has acquire/release semantics (`AR`). The trap itself orders
    /// the access, so emulation needs to do nothing more.
    pub acquire_release: bool,
}

/// A data abort taken to EL2 from the guest: a stage-2 fault (or an external abort
/// routed to EL2) on a guest load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestDataAbort {
    /// The faulting guest physical address, when the hardware reports it; see
    /// [`faulting_ipa`] for when it does. For a fault on the stage-1 table walk
    /// (`s1ptw`) it is the page of the table descriptor, with the low 12 bits zero.
    pub ipa: Option<u64>,
    /// The access was a write (`WnR`). A cache maintenance instruction reports write.
    pub is_write: bool,
    /// How to emulate the access, present when the instruction syndrome is valid
    /// (`ISV` = 1) and the fault is not on a stage-1 table walk. Absent for load/store
    /// pair, writeback, SIMD and exclusive forms: such an access to a device cannot
    /// be emulated and gets an external abort.
    pub access: Option<MmioAccess>,
    /// Why the access faulted (`DFSC`).
    pub fault: FaultStatus,
    /// The fault happened on the stage-2 translation of a stage-1 table walk
    /// (`S1PTW`): the guest keeps its page tables where there is no RAM.
    pub s1ptw: bool,
    /// External abort type (`EA`), implementation defined classification.
    pub external: bool,
    /// The access came from a cache maintenance or address translation instruction
    /// (`CM`), e.g. `DC CIVAC` on a device address: nothing to emulate, the caller
    /// skips the instruction.
    pub cache_maintenance: bool,
}

/// `HPFAR_EL2.FIPA`, bits \[43:4\]: bits \[51:12\] of the faulting IPA.
const HPFAR_FIPA_SHIFT: u32 = 4;
/// Width of `HPFAR_EL2.FIPA`.
const HPFAR_FIPA_BITS: u32 = 40;
/// The IPA's page number starts at bit 12.
const PAGE_SHIFT: u32 = 12;
/// The offset within a 4 KiB page.
const PAGE_OFFSET_MASK: u64 = (1 << PAGE_SHIFT) - 1;

/// The guest physical address of a stage-2 abort, when `HPFAR_EL2` holds it.
///
/// The Arm ARM (DDI 0487, register HPFAR_EL2) says HPFAR_EL2 is written for:
/// - a Translation or Access flag fault at stage 2,
/// - a stage-2 Address size fault,
/// - a stage-2 fault on the translation table walk of a stage-1 translation
///   (`S1PTW` = 1) caused by a Translation, Access flag or Permission fault,
///
/// and is UNKNOWN "for all other exceptions taken to EL2", notably a stage-2
/// Permission fault on the access itself and every external abort. So the IPA is:
/// - `None` for the UNKNOWN cases;
/// - for `S1PTW` faults, the page `FIPA << 12` alone: `FAR_EL2` holds the virtual
///   address the instruction accessed, not the descriptor's, so its low bits say
///   nothing about the descriptor;
/// - otherwise `FIPA << 12 | FAR_EL2[11:0]`, unless `FnV` says `FAR_EL2` is not
///   valid, in which case `None`.
#[inline]
pub fn faulting_ipa(
    fault: FaultStatus,
    s1ptw: bool,
    far_not_valid: bool,
    info: &TrapInfo,
) -> Option<u64> {
    let hpfar_valid = match fault {
        FaultStatus::Translation { .. }
        | FaultStatus::AccessFlag { .. }
        | FaultStatus::AddressSize { .. } => true,
        FaultStatus::Permission { .. } => s1ptw,
        _ => false,
    };
    if !hpfar_valid {
        return None;
    }
    let fipa = (info.hpfar >> HPFAR_FIPA_SHIFT) & ((1 << HPFAR_FIPA_BITS) - 1);
    let page = fipa << PAGE_SHIFT;
    if s1ptw {
        Some(page)
    } else if far_not_valid {
        None
    } else {
        Some(page | (info.far & PAGE_OFFSET_MASK))
    }
}

impl GuestDataAbort {
    /// The guest's view of a data abort's syndrome and fault address registers.
    #[inline]
    pub fn new(iss: &DataAbortIss, info: &TrapInfo) -> Self {
        let access = match iss.access {
            // The instruction syndrome is never valid for a fault on a stage-1 table
            // walk (Arm ARM, ISS encoding for a Data Abort, field ISV); should one
            // claim otherwise, emulating the walk as a load would be wrong.
            Some(access) if !iss.stage1_walk => AccessWidth::from_bytes(u64::from(access.bytes))
                .map(|width| MmioAccess {
                    is_write: iss.is_write,
                    width,
                    register: access.register,
                    sign_extend: access.sign_extend,
                    sixty_four: access.register_is_64bit,
                    acquire_release: access.acquire_release,
                }),
            _ => None,
        };
        Self {
            ipa: faulting_ipa(iss.fault, iss.stage1_walk, iss.far_not_valid, info),
            is_write: iss.is_write,
            access,
            fault: iss.fault,
            s1ptw: iss.stage1_walk,
            external: iss.external_abort_type,
            cache_maintenance: iss.cache_maintenance,
        }
    }
}

impl fmt::Display for GuestDataAbort {
    /// E.g. `write at IPA 0x9000000: translation fault at level 2, 4 bytes from w1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.is_write { "write" } else { "read" };
        match self.ipa {
            Some(ipa) => write!(f, "{direction} at IPA {ipa:#x}: {}", self.fault)?,
            None => write!(f, "{direction} at an unknown IPA: {}", self.fault)?,
        }
        match self.access {
            Some(access) => {
                let gpr = Gpr {
                    number: access.register,
                    is_64bit: access.sixty_four,
                };
                let bytes = access.width.bytes();
                let unit = if bytes == 1 { "byte" } else { "bytes" };
                let preposition = if self.is_write { "from" } else { "into" };
                write!(f, ", {bytes} {unit} {preposition} {gpr}")?;
                if access.sign_extend {
                    f.write_str(", sign-extended")?;
                }
            }
            None => f.write_str(", no instruction syndrome")?,
        }
        if self.cache_maintenance {
            f.write_str(", by cache maintenance")?;
        }
        if self.s1ptw {
            f.write_str(", during the guest's stage-1 table walk")?;
        }
        Ok(())
    }
}

/// Why the guest stopped running: one trapped exception, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// `HVC #imm` (SMCCC calls use `#0`). `ELR_EL2` already points at the next
    /// instruction: return to it unchanged.
    Hvc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// `SMC #imm`, trapped by HCR_EL2.TSC. `ELR_EL2` points at the SMC itself: add 4
    /// after handling the call, or the guest issues it again.
    Smc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// A data abort: an MMIO access to emulate, or an access to inject an abort for.
    /// `ELR_EL2` points at the load or store: add 4 after emulating it.
    DataAbort(GuestDataAbort),
    /// An instruction fetch faulted at stage 2 (the guest executes where it has no
    /// RAM). `ELR_EL2` is the faulting address.
    InstructionAbort {
        /// The faulting guest physical address, if known (same rule as
        /// [`GuestDataAbort::ipa`]).
        ipa: Option<u64>,
        /// Why the fetch faulted (`IFSC`).
        fault: FaultStatus,
    },
    /// A trapped MRS or MSR. `ELR_EL2` points at it: add 4 after emulating it.
    SystemRegister(SysRegAccess),
    /// A trapped `DC ISW`, `DC CSW` or `DC CISW` (HCR_EL2.TSW). `ELR_EL2` points at
    /// it: add 4 after performing the operation.
    SetWayCacheOp {
        /// Which operation.
        kind: SetWay,
        /// The register holding the set, way and level (`Rt`).
        register: u8,
    },
    /// A trapped WFI. `ELR_EL2` points at it: add 4 when the vCPU may run again.
    Wfi,
    /// A trapped WFE. `ELR_EL2` points at it: add 4 when the vCPU may run again.
    Wfe,
    /// A trapped WFIT (FEAT_WFxT): wait for an interrupt, but no later than the
    /// virtual count in the timeout register. `ELR_EL2` points at it: add 4.
    Wfit {
        /// The register holding the timeout, when the CPU reports it (`RV` = 1).
        /// When it does not, return to the guest at once: a WFIT may end early.
        timeout_register: Option<u8>,
    },
    /// A trapped WFET (FEAT_WFxT): WFE with a timeout, as for [`Exit::Wfit`].
    Wfet {
        /// The register holding the timeout, when the CPU reports it.
        timeout_register: Option<u8>,
    },
    /// A physical IRQ arrived while the guest ran. Return to `ELR_EL2` unchanged.
    Irq,
    /// A physical FIQ arrived while the guest ran. Return to `ELR_EL2` unchanged.
    Fiq,
    /// A physical SError arrived while the guest ran.
    SError {
        /// `ESR_EL2` as the SError vector recorded it.
        esr: u64,
    },
    /// Any other synchronous exception: the caller injects UNDEFINED or stops the
    /// guest. Includes EC 0x25/0x21 (aborts *at EL2*), which cannot come from a guest.
    Other {
        /// The exception class.
        class: ExceptionClass,
        /// The raw `ESR_EL2`.
        esr: u64,
    },
}

/// The common case of a guest device access, decoded straight from the syndrome:
/// what the run loop needs to emulate a load or store that missed stage 2.
///
/// Bit `n` set: fault status code (DFSC) `n` is an address size, translation or
/// access flag fault, one a device access takes (built from
/// [`FaultStatus::decode`], so the two cannot disagree).
const EMULATED_FAULT_CODES: u64 = {
    let mut codes = 0u64;
    let mut code = 0u8;
    while code < 64 {
        if matches!(
            FaultStatus::decode(code),
            FaultStatus::Translation { .. }
                | FaultStatus::AccessFlag { .. }
                | FaultStatus::AddressSize { .. }
        ) {
            codes |= 1 << code;
        }
        code += 1;
    }
    codes
};

/// `Some((ipa, access))` exactly when [`Exit::decode`] gives a
/// [`GuestDataAbort`] with an address and an [`MmioAccess`] that is not cache
/// maintenance (the equivalence is tested over every syndrome bit that matters);
/// `None` for everything else, which goes through [`Exit::decode`]. Nothing about
/// the access is checked against the guest's layout here.
#[inline]
pub fn emulated_access(info: &TrapInfo) -> Option<(u64, MmioAccess)> {
    /// Exception class 0x24: data abort from a lower exception level.
    const EC_DATA_ABORT_LOWER: u64 = 0x24;
    const ISV: u64 = 1 << 24;
    /// S1PTW (bit 7), CM (bit 8) and FnV (bit 10) clear.
    const UNUSUAL: u64 = 0b1011 << 7;
    let esr = info.esr;
    if (esr >> 26) & 0x3F != EC_DATA_ABORT_LOWER || esr & ISV == 0 || esr & UNUSUAL != 0 {
        return None;
    }
    // DFSC: an address size, translation or access flag fault, for which
    // HPFAR_EL2 holds the page (see `faulting_ipa`).
    if EMULATED_FAULT_CODES & (1 << (esr & 0x3F)) == 0 {
        return None;
    }
    let width = match (esr >> 22) & 0b11 {
        0 => AccessWidth::Byte,
        1 => AccessWidth::Half,
        2 => AccessWidth::Word,
        _ => AccessWidth::Double,
    };
    let access = MmioAccess {
        is_write: esr & (1 << 6) != 0,
        width,
        register: ((esr >> 16) & 0x1F) as u8,
        sign_extend: esr & (1 << 21) != 0,
        sixty_four: esr & (1 << 15) != 0,
        acquire_release: esr & (1 << 14) != 0,
    };
    let fipa = (info.hpfar >> HPFAR_FIPA_SHIFT) & ((1 << HPFAR_FIPA_BITS) - 1);
    Some(((fipa << PAGE_SHIFT) | (info.far & PAGE_OFFSET_MASK), access))
}

impl Exit {
    /// Decodes an exception taken through `kind`'s lower-EL vector.
    #[inline]
    pub fn from_vector(kind: VectorKind, info: &TrapInfo) -> Self {
        match kind {
            VectorKind::Synchronous => Self::decode(info),
            VectorKind::Irq => Self::Irq,
            VectorKind::Fiq => Self::Fiq,
            VectorKind::SError => Self::SError { esr: info.esr },
        }
    }

    /// Decodes a synchronous exception from the guest.
    #[inline]
    pub fn decode(info: &TrapInfo) -> Self {
        let esr = Esr(info.esr);
        match esr.syndrome() {
            Syndrome::Hvc { imm } => Self::Hvc { imm },
            Syndrome::Smc { imm } => Self::Smc { imm },
            Syndrome::DataAbort {
                from_lower_el: true,
                iss,
            } => Self::DataAbort(GuestDataAbort::new(&iss, info)),
            Syndrome::InstructionAbort {
                from_lower_el: true,
                iss,
            } => Self::InstructionAbort {
                ipa: faulting_ipa(iss.fault, iss.stage1_walk, iss.far_not_valid, info),
                fault: iss.fault,
            },
            Syndrome::SystemRegister {
                op0,
                op1,
                crn,
                crm,
                op2,
                rt,
                is_read,
            } => {
                let reg = SysReg::new(op0, op1, crn, crm, op2);
                match SetWay::of(reg) {
                    Some(kind) if !is_read => Self::SetWayCacheOp { kind, register: rt },
                    _ => Self::SystemRegister(SysRegAccess {
                        op0: reg.op0(),
                        op1: reg.op1(),
                        crn: reg.crn(),
                        crm: reg.crm(),
                        op2: reg.op2(),
                        register: rt,
                        is_read,
                    }),
                }
            }
            Syndrome::Wfx {
                is_wfe,
                has_timeout,
                timeout_register,
            } => match (is_wfe, has_timeout) {
                (false, false) => Self::Wfi,
                (true, false) => Self::Wfe,
                (false, true) => Self::Wfit { timeout_register },
                (true, true) => Self::Wfet { timeout_register },
            },
            Syndrome::SError { .. } => Self::SError { esr: info.esr },
            _ => Self::Other {
                class: esr.class(),
                esr: info.esr,
            },
        }
    }
}

impl fmt::Display for Exit {
    /// A one-line description for logs, e.g. `hvc #0`, `mrs x2, S3_3_C14_C2_1
    /// (CNTP_CTL_EL0)`, `data abort: write at IPA 0x9000000: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timeout = |f: &mut fmt::Formatter<'_>, name: &str, register: Option<u8>| {
            f.write_str(name)?;
            if let Some(number) = register {
                let gpr = Gpr {
                    number,
                    is_64bit: true,
                };
                write!(f, " {gpr}")?;
            }
            Ok(())
        };
        match *self {
            Self::Hvc { imm } => write!(f, "hvc #{imm:#x}"),
            Self::Smc { imm } => write!(f, "smc #{imm:#x}"),
            Self::DataAbort(abort) => write!(f, "data abort: {abort}"),
            Self::InstructionAbort {
                ipa: Some(ipa),
                fault,
            } => {
                write!(f, "instruction abort at IPA {ipa:#x}: {fault}")
            }
            Self::InstructionAbort { ipa: None, fault } => {
                write!(f, "instruction abort at an unknown IPA: {fault}")
            }
            Self::SystemRegister(access) => write!(f, "{access}"),
            Self::SetWayCacheOp { kind, register } => {
                let gpr = Gpr {
                    number: register,
                    is_64bit: true,
                };
                write!(f, "{}, {gpr}", kind.mnemonic())
            }
            Self::Wfi => f.write_str("wfi"),
            Self::Wfe => f.write_str("wfe"),
            Self::Wfit { timeout_register } => timeout(f, "wfit", timeout_register),
            Self::Wfet { timeout_register } => timeout(f, "wfet", timeout_register),
            Self::Irq => f.write_str("physical IRQ"),
            Self::Fiq => f.write_str("physical FIQ"),
            Self::SError { esr } => write!(f, "SError (ESR {esr:#x})"),
            Self::Other { class, esr } => write!(f, "{class} (ESR {esr:#x})"),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Syndromes are assembled by hand from the Arm ARM (DDI 0487) ESR_EL2 layout, not
    //! from this crate's constants: EC at bits [31:26], IL at 25, ISS at [24:0].
    //!
    //! Data abort ISS: ISV 24, SAS [23:22], SSE 21, SRT [20:16], SF 15, AR 14, FnV 10,
    //! EA 9, CM 8, S1PTW 7, WnR 6, DFSC [5:0].
    //! MSR/MRS ISS: Op0 [21:20], Op2 [19:17], Op1 [16:14], CRn [13:10], Rt [9:5],
    //! CRm [4:1], Direction 0 (1 = read).
    //! HPFAR_EL2: FIPA [43:4] = IPA [51:12], i.e. HPFAR = (IPA >> 12) << 4.
    use super::*;
    use std::string::ToString;

    /// EC 0x24 (data abort from a lower EL) << 26 | IL.
    const DABT_LOWER: u64 = 0x9200_0000;
    /// DFSC: translation fault at level 1 (0b000101). Aerie's stage 2 starts at
    /// level 1 and maps nothing in the first GiB, where the devices live.
    const TRANSLATION_L1: u64 = 0x05;

    fn trap(esr: u64, far: u64, hpfar: u64) -> TrapInfo {
        TrapInfo { esr, far, hpfar }
    }

    fn data_abort(exit: Exit) -> GuestDataAbort {
        match exit {
            Exit::DataAbort(abort) => abort,
            other => panic!("not a data abort: {other:?}"),
        }
    }

    #[test]
    fn the_quick_device_access_decode_agrees_with_the_full_one() {
        // Every combination of the ISS bits that matter (ISV, SAS, SSE, SRT's top
        // and bottom, SF, AR, FnV, EA, CM, S1PTW, WnR) over every DFSC, and a few
        // other classes.
        let far = 0xFFFF_0000_1234_5ABC;
        let hpfar = 0x0000_0900_0000_0000 >> 8 | 0x90_0000;
        let mut checked = 0;
        for class in [0x24u64, 0x25, 0x20, 0x16] {
            for bits in 0u64..(1 << 12) {
                for status in 0u64..64 {
                    let iss = (bits & 1) << 24
                        | ((bits >> 1) & 0b11) << 22
                        | ((bits >> 3) & 1) << 21
                        | ((bits >> 4) & 1) << 20
                        | ((bits >> 4) & 1) << 16
                        | ((bits >> 5) & 1) << 15
                        | ((bits >> 6) & 1) << 14
                        | ((bits >> 7) & 0b1111) << 7
                        | ((bits >> 11) & 1) << 6
                        | status;
                    let info = TrapInfo {
                        esr: class << 26 | 1 << 25 | iss,
                        far,
                        hpfar,
                    };
                    let full = match Exit::decode(&info) {
                        Exit::DataAbort(GuestDataAbort {
                            ipa: Some(ipa),
                            access: Some(access),
                            cache_maintenance: false,
                            ..
                        }) => Some((ipa, access)),
                        _ => None,
                    };
                    assert_eq!(emulated_access(&info), full, "ESR {:#x}", info.esr);
                    checked += usize::from(full.is_some());
                }
            }
        }
        assert!(checked > 1000, "the quick path covers the common accesses");
    }

    #[test]
    fn str_w1_32_bit_to_mmio() {
        // `str w1, [x0, #0x18]` to the UART at IPA 0x0900_0018, guest VA
        // 0xffff_8000_1000_0018. ISS = ISV (0x100_0000) | SAS=2 (0x80_0000) |
        // SRT=1 (0x1_0000) | WnR (0x40) | DFSC 0x05 = 0x0181_0045.
        let info = trap(0x9381_0045, 0xffff_8000_1000_0018, 0x0009_0000);
        let abort = data_abort(Exit::decode(&info));
        assert_eq!(
            abort,
            GuestDataAbort {
                ipa: Some(0x0900_0018),
                is_write: true,
                access: Some(MmioAccess {
                    is_write: true,
                    width: AccessWidth::Word,
                    register: 1,
                    sign_extend: false,
                    sixty_four: false,
                    acquire_release: false,
                }),
                fault: FaultStatus::Translation { level: 1 },
                s1ptw: false,
                external: false,
                cache_maintenance: false,
            }
        );
        assert_eq!(
            Exit::decode(&info).to_string(),
            "data abort: write at IPA 0x9000018: translation fault at level 1, 4 bytes from w1"
        );
    }

    #[test]
    fn ldr_x3_8_bytes() {
        // `ldr x3, [x2]`: ISV | SAS=3 (0xC0_0000) | SRT=3 (0x3_0000) | SF (0x8000) |
        // DFSC 0x05, WnR = 0 = 0x01C3_8005. IPA 0x0a00_3e08: HPFAR 0xa003 << 4.
        let info = trap(DABT_LOWER | 0x01C3_8005, 0x0a00_3e08, 0x000a_0030);
        let abort = data_abort(Exit::decode(&info));
        assert_eq!(abort.ipa, Some(0x0a00_3e08));
        assert!(!abort.is_write);
        assert_eq!(
            abort.access,
            Some(MmioAccess {
                is_write: false,
                width: AccessWidth::Double,
                register: 3,
                sign_extend: false,
                sixty_four: true,
                acquire_release: false,
            })
        );
        assert_eq!(
            abort.to_string(),
            "read at IPA 0xa003e08: translation fault at level 1, 8 bytes into x3"
        );
    }

    #[test]
    fn ldrsb_into_w5() {
        // `ldrsb w5, [x0]`: ISV | SAS=0 | SSE (0x20_0000) | SRT=5 (0x5_0000) | SF=0 |
        // DFSC 0x05 = 0x0125_0005.
        let info = trap(DABT_LOWER | 0x0125_0005, 0x0906_000b, 0x0009_0600);
        let abort = data_abort(Exit::decode(&info));
        assert_eq!(abort.ipa, Some(0x0906_000b));
        assert_eq!(
            abort.access,
            Some(MmioAccess {
                is_write: false,
                width: AccessWidth::Byte,
                register: 5,
                sign_extend: true,
                sixty_four: false,
                acquire_release: false,
            })
        );
        assert_eq!(
            abort.to_string(),
            "read at IPA 0x906000b: translation fault at level 1, 1 byte into w5, sign-extended"
        );
    }

    #[test]
    fn ldar_has_acquire_release() {
        // `ldar w2, [x0]`: ISV | SAS=2 | SRT=2 (0x2_0000) | AR (0x4000) | DFSC 0x05.
        let info = trap(DABT_LOWER | 0x0182_4005, 0x0906_0000, 0x0009_0600);
        let access = data_abort(Exit::decode(&info)).access.unwrap();
        assert!(access.acquire_release);
        assert_eq!(access.width, AccessWidth::Word);
        assert_eq!(access.register, 2);
    }

    #[test]
    fn ldp_without_instruction_syndrome() {
        // `ldp x0, x1, [x2]` to a device: ISV = 0, only DFSC 0x05. The IPA is still
        // known (translation fault), the access cannot be emulated.
        let info = trap(DABT_LOWER | TRANSLATION_L1, 0x0900_0010, 0x0009_0000);
        let abort = data_abort(Exit::decode(&info));
        assert_eq!(abort.ipa, Some(0x0900_0010));
        assert_eq!(abort.access, None);
        assert!(!abort.is_write);
        assert_eq!(
            abort.to_string(),
            "read at IPA 0x9000010: translation fault at level 1, no instruction syndrome"
        );
    }

    #[test]
    fn stage1_table_walk_fault() {
        // The guest's TTBR points at IPA 0x8000_0000, outside RAM: the walk for VA
        // 0xffff_0000_1234_5678 faults at stage 2. ISS = S1PTW (0x80) | DFSC 0x05.
        // HPFAR holds the descriptor's page (0x80000 << 4); FAR holds the VA, whose
        // low bits say nothing about the descriptor, so the IPA is the page alone.
        let info = trap(DABT_LOWER | 0x85, 0xffff_0000_1234_5678, 0x0080_0000);
        let abort = data_abort(Exit::decode(&info));
        assert!(abort.s1ptw);
        assert_eq!(abort.ipa, Some(0x8000_0000));
        assert_eq!(abort.access, None);
        assert_eq!(
            abort.to_string(),
            "read at IPA 0x80000000: translation fault at level 1, no instruction syndrome, \
             during the guest's stage-1 table walk"
        );
        // A Permission fault on the walk (DFSC 0x0F, level 3) also writes HPFAR.
        let info = trap(DABT_LOWER | 0x8F, 0xffff_0000_1234_5678, 0x0080_0000);
        assert_eq!(data_abort(Exit::decode(&info)).ipa, Some(0x8000_0000));
        // ISV claimed on a walk fault is not trusted.
        let info = trap(DABT_LOWER | 0x0181_0085, 0, 0x0080_0000);
        assert_eq!(data_abort(Exit::decode(&info)).access, None);
    }

    #[test]
    fn hpfar_is_unknown_for_other_faults() {
        // IPA 0x4000_1234: HPFAR = 0x40001 << 4.
        let (far, hpfar) = (0x4000_1234, 0x0040_0010);
        // Stage-2 permission fault on the access itself (DFSC 0x0F): HPFAR UNKNOWN.
        let info = trap(DABT_LOWER | 0x0181_004F, far, hpfar);
        let abort = data_abort(Exit::decode(&info));
        assert_eq!(abort.ipa, None);
        assert_eq!(abort.fault, FaultStatus::Permission { level: 3 });
        assert_eq!(
            abort.to_string(),
            "write at an unknown IPA: permission fault at level 3, 4 bytes from w1"
        );
        // Synchronous external abort (DFSC 0x10) with FnV (0x400) and EA (0x200).
        let info = trap(DABT_LOWER | 0x610, far, hpfar);
        let abort = data_abort(Exit::decode(&info));
        assert_eq!(abort.ipa, None);
        assert!(abort.external);
        // Access flag (DFSC 0x0B) and address size (DFSC 0x00) faults write HPFAR.
        let info = trap(DABT_LOWER | 0x0B, far, hpfar);
        assert_eq!(data_abort(Exit::decode(&info)).ipa, Some(0x4000_1234));
        let info = trap(DABT_LOWER, far, hpfar);
        assert_eq!(data_abort(Exit::decode(&info)).ipa, Some(0x4000_1234));
        // A translation fault with FnV set: the page is known but FAR is not.
        let info = trap(DABT_LOWER | 0x405, far, hpfar);
        assert_eq!(data_abort(Exit::decode(&info)).ipa, None);
    }

    #[test]
    fn fipa_covers_52_bit_addresses_and_ignores_other_bits() {
        // FIPA is HPFAR[43:4]; bit 63 (NS), bits [62:44] and [3:0] are not part of the IPA.
        let hpfar = (1 << 63) | (1 << 50) | (0xFF_FFFF_FFFF_u64 << 4) | 0xF;
        let info = trap(DABT_LOWER | TRANSLATION_L1, 0xABC, hpfar);
        assert_eq!(
            data_abort(Exit::decode(&info)).ipa,
            Some(0x000F_FFFF_FFFF_FABC),
            "IPA [51:12] all set, then FAR[11:0]"
        );
    }

    #[test]
    fn cache_maintenance_on_a_device_address() {
        // `dc civac, x0` on MMIO: CM (0x100) | WnR (0x40) | DFSC 0x05, no ISV.
        let info = trap(DABT_LOWER | 0x145, 0x0900_0040, 0x0009_0000);
        let abort = data_abort(Exit::decode(&info));
        assert!(abort.cache_maintenance);
        assert!(abort.is_write);
        assert!(abort.to_string().ends_with(", by cache maintenance"));
    }

    #[test]
    fn instruction_abort() {
        // The guest jumps to IPA 0x0800_0100 (no RAM): EC 0x20 << 26 = 0x8000_0000,
        // IL, IFSC 0x05.
        let info = trap(0x8200_0005, 0x0800_0100, 0x0008_0000);
        let exit = Exit::decode(&info);
        assert_eq!(
            exit,
            Exit::InstructionAbort {
                ipa: Some(0x0800_0100),
                fault: FaultStatus::Translation { level: 1 },
            }
        );
        assert_eq!(
            exit.to_string(),
            "instruction abort at IPA 0x8000100: translation fault at level 1"
        );
    }

    #[test]
    fn hvc_and_smc() {
        // HVC #0: EC 0x16 << 26 = 0x5800_0000 | IL. SMC #0: EC 0x17 -> 0x5C00_0000.
        let none = |esr| trap(esr, 0, 0);
        assert_eq!(Exit::decode(&none(0x5A00_0000)), Exit::Hvc { imm: 0 });
        assert_eq!(Exit::decode(&none(0x5E00_0000)), Exit::Smc { imm: 0 });
        assert_eq!(Exit::decode(&none(0x5A00_1234)), Exit::Hvc { imm: 0x1234 });
        assert_eq!(Exit::decode(&none(0x5A00_0000)).to_string(), "hvc #0x0");
        assert_eq!(Exit::decode(&none(0x5E00_0001)).to_string(), "smc #0x1");
    }

    #[test]
    fn mrs_cntp_ctl_el0() {
        // `mrs x2, cntp_ctl_el0` (3, 3, 14, 2, 1): 3<<20 | 1<<17 | 3<<14 | 14<<10 |
        // 2<<5 | 2<<1 | 1 = 0x32_F845; EC 0x18 << 26 | IL = 0x6200_0000.
        let exit = Exit::decode(&trap(0x6232_F845, 0, 0));
        assert_eq!(
            exit,
            Exit::SystemRegister(SysRegAccess {
                op0: 3,
                op1: 3,
                crn: 14,
                crm: 2,
                op2: 1,
                register: 2,
                is_read: true,
            })
        );
        assert_eq!(exit.to_string(), "mrs x2, S3_3_C14_C2_1 (CNTP_CTL_EL0)");
        let Exit::SystemRegister(access) = exit else {
            unreachable!()
        };
        assert_eq!(access.reg(), SysReg::CNTP_CTL_EL0);
    }

    #[test]
    fn msr_icc_sgi1r_el1() {
        // `msr icc_sgi1r_el1, x1` (3, 0, 12, 11, 5): 3<<20 | 5<<17 | 12<<10 | 1<<5 |
        // 11<<1 = 0x3A_3036, a write.
        let exit = Exit::decode(&trap(0x623A_3036, 0, 0));
        assert_eq!(
            exit,
            Exit::SystemRegister(SysRegAccess {
                op0: 3,
                op1: 0,
                crn: 12,
                crm: 11,
                op2: 5,
                register: 1,
                is_read: false,
            })
        );
        assert_eq!(exit.to_string(), "msr S3_0_C12_C11_5 (ICC_SGI1R_EL1), x1");
        // `msr icc_sgi1r_el1, xzr`: Rt = 31 (0x3E0).
        let exit = Exit::decode(&trap(0x623A_33F6, 0, 0));
        assert_eq!(exit.to_string(), "msr S3_0_C12_C11_5 (ICC_SGI1R_EL1), xzr");
    }

    #[test]
    fn set_way_cache_operations() {
        // `dc cisw, x3` = SYS #0, C7, C14, #2: 1<<20 | 2<<17 | 7<<10 | 3<<5 | 14<<1 =
        // 0x14_1C7C.
        let exit = Exit::decode(&trap(0x6214_1C7C, 0, 0));
        assert_eq!(
            exit,
            Exit::SetWayCacheOp {
                kind: SetWay::CleanInvalidate,
                register: 3,
            }
        );
        assert_eq!(exit.to_string(), "dc cisw, x3");
        // `dc isw, x0` (CRm 6: 0xC) and `dc csw, x0` (CRm 10: 0x14).
        assert_eq!(
            Exit::decode(&trap(0x6214_1C0C, 0, 0)),
            Exit::SetWayCacheOp {
                kind: SetWay::Invalidate,
                register: 0
            }
        );
        assert_eq!(
            Exit::decode(&trap(0x6214_1C14, 0, 0)),
            Exit::SetWayCacheOp {
                kind: SetWay::Clean,
                register: 0
            }
        );
        // `dc civac, x0` (SYS #3, C7, C14, #1) is not a set/way operation.
        let civac = 0x6200_0000 | 1 << 20 | 1 << 17 | 3 << 14 | 7 << 10 | 14 << 1;
        assert!(matches!(
            Exit::decode(&trap(civac, 0, 0)),
            Exit::SystemRegister(_)
        ));
    }

    #[test]
    fn wfi_wfe_and_timeouts() {
        // EC 0x01 << 26 | IL = 0x0600_0000; TI [1:0]: 0 WFI, 1 WFE, 2 WFIT, 3 WFET;
        // RV bit 2, Rn [9:5].
        let exit = |esr| Exit::decode(&trap(esr, 0, 0));
        assert_eq!(exit(0x0600_0000), Exit::Wfi);
        assert_eq!(exit(0x0600_0001), Exit::Wfe);
        // `wfit x4`: TI 2 | RV | 4<<5 = 0x86.
        assert_eq!(
            exit(0x0600_0086),
            Exit::Wfit {
                timeout_register: Some(4)
            }
        );
        assert_eq!(exit(0x0600_0086).to_string(), "wfit x4");
        assert_eq!(
            exit(0x0600_0003),
            Exit::Wfet {
                timeout_register: None
            }
        );
        assert_eq!(exit(0x0600_0000).to_string(), "wfi");
    }

    #[test]
    fn implementation_defined_register() {
        // `mrs x0, s3_1_c15_c2_0` (Cortex-A72 CPUACTLR_EL1) trapped by HCR_EL2.TIDCP:
        // 3<<20 | 1<<14 | 15<<10 | 2<<1 | 1 = 0x30_7C05.
        let exit = Exit::decode(&trap(0x6230_7C05, 0, 0));
        let Exit::SystemRegister(access) = exit else {
            panic!("{exit:?}");
        };
        assert_eq!(access.reg(), SysReg::new(3, 1, 15, 2, 0));
        assert!(access.reg().is_implementation_defined());
        assert_eq!(access.reg().name(), None);
        assert_eq!(exit.to_string(), "mrs x0, S3_1_C15_C2_0");
    }

    #[test]
    fn other_classes() {
        // An unallocated EC 0x3F: 0x3F << 26 = 0xFC00_0000, plus IL.
        assert_eq!(
            Exit::decode(&trap(0xFE00_0000, 0, 0)),
            Exit::Other {
                class: ExceptionClass::Other(0x3F),
                esr: 0xFE00_0000
            }
        );
        // EC 0 (unknown reason).
        assert_eq!(
            Exit::decode(&trap(0x0200_0000, 0, 0)),
            Exit::Other {
                class: ExceptionClass::Unknown,
                esr: 0x0200_0000
            }
        );
        // A data abort *at EL2* (EC 0x25) is never a guest exit.
        let exit = Exit::decode(&trap(0x9600_0005, 0, 0));
        assert_eq!(
            exit,
            Exit::Other {
                class: ExceptionClass::DataAbortSame,
                esr: 0x9600_0005
            }
        );
        assert_eq!(
            exit.to_string(),
            "data abort from the same EL (ESR 0x96000005)"
        );
        // SVC (EC 0x15) and BRK (EC 0x3C) are not routed to EL2 for guests.
        assert!(matches!(
            Exit::decode(&trap(0x5600_0000, 0, 0)),
            Exit::Other {
                class: ExceptionClass::Svc64,
                ..
            }
        ));
    }

    #[test]
    fn asynchronous_vectors() {
        let info = trap(0xBE00_0000, 0, 0);
        assert_eq!(Exit::from_vector(VectorKind::Irq, &info), Exit::Irq);
        assert_eq!(Exit::from_vector(VectorKind::Fiq, &info), Exit::Fiq);
        // EC 0x2F (SError) << 26 | IL = 0xBE00_0000.
        let serror = Exit::from_vector(VectorKind::SError, &info);
        assert_eq!(serror, Exit::SError { esr: 0xBE00_0000 });
        assert_eq!(serror.to_string(), "SError (ESR 0xbe000000)");
        assert_eq!(
            Exit::from_vector(VectorKind::Synchronous, &trap(0x5A00_0000, 0, 0)),
            Exit::Hvc { imm: 0 }
        );
        assert_eq!(Exit::Irq.to_string(), "physical IRQ");
    }

    #[test]
    fn sys_reg_encodings_from_the_arm_arm() {
        // (register, op0, op1, CRn, CRm, op2) restated from the Arm ARM register
        // descriptions.
        let table = [
            (SysReg::CNTP_CTL_EL0, 3, 3, 14, 2, 1),
            (SysReg::CNTP_CVAL_EL0, 3, 3, 14, 2, 2),
            (SysReg::CNTP_TVAL_EL0, 3, 3, 14, 2, 0),
            (SysReg::CNTPCT_EL0, 3, 3, 14, 0, 1),
            (SysReg::ACTLR_EL1, 3, 0, 1, 0, 1),
            (SysReg::ICC_SGI1R_EL1, 3, 0, 12, 11, 5),
            (SysReg::ICC_SRE_EL1, 3, 0, 12, 12, 5),
            (SysReg::PMCR_EL0, 3, 3, 9, 12, 0),
            (SysReg::PMCNTENSET_EL0, 3, 3, 9, 12, 1),
            (SysReg::PMCNTENCLR_EL0, 3, 3, 9, 12, 2),
            (SysReg::PMOVSCLR_EL0, 3, 3, 9, 12, 3),
            (SysReg::PMSWINC_EL0, 3, 3, 9, 12, 4),
            (SysReg::PMSELR_EL0, 3, 3, 9, 12, 5),
            (SysReg::PMCEID0_EL0, 3, 3, 9, 12, 6),
            (SysReg::PMCEID1_EL0, 3, 3, 9, 12, 7),
            (SysReg::PMCCNTR_EL0, 3, 3, 9, 13, 0),
            (SysReg::PMXEVTYPER_EL0, 3, 3, 9, 13, 1),
            (SysReg::PMXEVCNTR_EL0, 3, 3, 9, 13, 2),
            (SysReg::PMUSERENR_EL0, 3, 3, 9, 14, 0),
            (SysReg::PMINTENSET_EL1, 3, 0, 9, 14, 1),
            (SysReg::PMINTENCLR_EL1, 3, 0, 9, 14, 2),
            (SysReg::PMOVSSET_EL0, 3, 3, 9, 14, 3),
            (SysReg::PMCCFILTR_EL0, 3, 3, 14, 15, 7),
            (SysReg::OSLAR_EL1, 2, 0, 1, 0, 4),
            (SysReg::OSLSR_EL1, 2, 0, 1, 1, 4),
            (SysReg::OSDLR_EL1, 2, 0, 1, 3, 4),
            (SysReg::DC_ISW, 1, 0, 7, 6, 2),
            (SysReg::DC_CSW, 1, 0, 7, 10, 2),
            (SysReg::DC_CISW, 1, 0, 7, 14, 2),
        ];
        for (reg, op0, op1, crn, crm, op2) in table {
            assert_eq!(
                (reg.op0(), reg.op1(), reg.crn(), reg.crm(), reg.op2()),
                (op0, op1, crn, crm, op2),
                "{reg}"
            );
        }
        assert_eq!(NAMES.len(), table.len(), "every named register is checked");
        // Names are unique per encoding.
        for (i, (a, _)) in NAMES.iter().enumerate() {
            assert!(NAMES[i + 1..].iter().all(|(b, _)| a != b), "{a}");
        }
    }

    #[test]
    fn sys_reg_helpers() {
        assert_eq!(
            SysReg::CNTP_CTL_EL0.to_string(),
            "S3_3_C14_C2_1 (CNTP_CTL_EL0)"
        );
        assert_eq!(SysReg::new(3, 0, 1, 0, 0).to_string(), "S3_0_C1_C0_0");
        assert_eq!(SysReg::OSLAR_EL1.name(), Some("OSLAR_EL1"));
        // Fields are cut to their widths.
        assert_eq!(
            SysReg::new(0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
            SysReg::new(3, 7, 15, 15, 7)
        );
        assert!(SysReg::PMU.iter().all(|reg| reg.is_pmu()));
        assert!(!SysReg::CNTP_CTL_EL0.is_pmu());
        // IMPLEMENTATION DEFINED space: op0 = 3, CRn = 11 or 15 only.
        assert!(SysReg::new(3, 0, 11, 0, 0).is_implementation_defined());
        assert!(SysReg::new(3, 7, 15, 15, 7).is_implementation_defined());
        assert!(!SysReg::new(3, 0, 14, 0, 0).is_implementation_defined());
        assert!(!SysReg::new(3, 0, 7, 0, 0).is_implementation_defined());
        assert!(!SysReg::new(2, 0, 15, 0, 0).is_implementation_defined());
        assert!(!SysReg::ACTLR_EL1.is_implementation_defined());
    }

    #[test]
    fn every_syndrome_decodes_without_panicking() {
        // Sweep every EC with a few ISS patterns; decoding is total.
        for ec in 0..64u64 {
            for iss in [0, 0x1FF_FFFF, 0x0155_5555, 0x00AA_AAAA] {
                let esr = ec << 26 | 1 << 25 | iss;
                let exit = Exit::decode(&trap(esr, u64::MAX, u64::MAX));
                let _ = exit.to_string();
            }
        }
    }
}
