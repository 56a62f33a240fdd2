//! The guest's CPU model: which architecture features the guest is told about.
//!
//! A CPU describes its features in the *feature ID registers*, the encodings
//! `op0 = 3, op1 = 0, CRn = 0, CRm = 1..=7, op2 = 0..=7` (Arm ARM DDI 0487, D17.2
//! and the register pages of ID_AA64PFR0_EL1 and its siblings): the AArch32 ID
//! registers in CRm 1 to 3, the AArch64 ones (`ID_AA64*_EL1`) in CRm 4 to 7. Every
//! encoding in that space that the architecture has not allocated reads as zero.
//! Aerie traps the guest's reads of the whole space (HCR_EL2.TID3) and answers them
//! from a [`GuestCpu`], computed once by [`guest_id_registers`] from the host's
//! values: the guest sees only features whose state Aerie keeps with the vCPU and
//! saves in snapshots, and nothing that needs EL2 controls Aerie does not set.
//!
//! # The rules
//!
//! Each ID register is a row of 4-bit fields. Aerie lists, per register, the fields
//! it lets through ([`REGISTERS`]); every other field, every unallocated register and
//! all AArch32 ID registers read as zero. A field passes as one of:
//!
//! - [`Rule::Host`]: the host's value.
//! - [`Rule::AtMost`]: the host's value, lowered to at most a limit.
//! - [`Rule::Hidden`]: the value that means "not implemented", named explicitly so
//!   the reason is next to the field.
//!
//! Lowering respects the field's sign (Arm ARM D17.1.3, "Principles of the ID
//! scheme for fields in ID registers"): most fields are unsigned, where a larger
//! value means more and 0 means "not implemented"; a few are signed (FP, AdvSIMD,
//! TGran4, TGran64, DoubleLock, MTPMU, MTE_frac), where 0 means "implemented" and
//! 0b1111 (-1) "not implemented". So "lower" is a signed comparison for those, and
//! hiding one sets it to 0b1111, never to 0.
//!
//! # What the guest does not see, and why
//!
//! | feature | fields | why |
//! |---|---|---|
//! | SVE, SME | PFR0.SVE, PFR1.SME, ZFR0, SMFR0 | snapshots save only the low 128 bits of the vector registers (no Z, P, FFR, ZA); CPTR_EL2 traps both |
//! | MTE | PFR1.MTE, MTE_frac, MTEX, PFR2 | allocation tags and the tag-control registers are not saved |
//! | AArch32 | PFR0.EL0/EL1 capped at 1, the AArch32 ID registers zero | a snapshot restores only AArch64 PSTATE; HCR_EL2.RW makes EL1 AArch64 |
//! | RAS | PFR0.RAS, PFR1.RAS_frac | the error records and DISR are not virtualised (HCR_EL2.TERR traps them) |
//! | MPAM, AMU, RME, SEL2, EL2 | PFR0, PFR1.MPAM_frac | host partitioning and activity monitors; no nested EL2 (CPTR_EL2.TAM traps the AMU) |
//! | SCXTNUM (CSV2_2, CSV2_1p2) | PFR0.CSV2 and PFR1.CSV2_frac capped at 1 | HCR_EL2.EnSCXT is clear, so SCXTNUM_ELx trap, and they are not saved |
//! | PMU above PMUv3p5, or any PMU without [`ModelOptions::pmu`] | DFR0.PMUVer (capped at PMUv3p5, 0 without a guest PMU), PMSS, HPMN0, MTPMU | the guest owns the host's PMUv3 ([`crate::pmu`]) where it has one with a PPI; later PMU versions add state Aerie does not save |
//! | SPE, trace, TRBE, BRBE | DFR0 | profiling and trace are the host's (MDCR_EL2 and CPTR_EL2.TTA trap all but BRBE) |
//! | GCS, NMI, THE, FPMR, LS64, MOPS, TME, LORegions, TCR2/SCTLR2, permission indirection and overlays, 128-bit system registers | PFR1, PFR2, ISAR0..3, MMFR1, MMFR3 | their registers are not saved, or they need HCRX_EL2 enables Aerie does not set |
//! | PARange above 40 bits | MMFR0.PARange | the guest's physical address space is [`IPA_BITS`] bits |
//! | GICv4.1 system registers | PFR0.GIC capped at 1 (0 without a virtual GICv3) | the guest gets a virtual GICv3 (or a GICv2, without system registers) |
//!
//! Hiding a feature is what a well-behaved guest needs; where EL2 can also trap the
//! feature's registers or instructions, `boot/` does (SVE, SME, AMU, trace, SPE,
//! TRBE, RAS, LORegions, MTE through HCR_EL2.ATA clear), and the guest gets
//! UNDEFINED. BRBE, MPAM, GCS and the other features behind the fine-grained traps
//! (FEAT_FGT) or HCRX_EL2 are only hidden: Aerie does not program those controls
//! yet, so a guest that ignores the ID registers could reach them on a CPU that has
//! them.
//!
//! Everything else the guest uses without Aerie's help, with its state in registers
//! Aerie saves: FP/AdvSIMD, the crypto, atomic and other instruction extensions,
//! pointer authentication (keys saved), BTI, SSBS, DIT, PAN, UAO, E0PD and the
//! stage-1 translation features.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::exit::SysReg;
use crate::guest_layout::IPA_BITS;

/// The number of encodings in the feature ID space: CRm 1 to 7, op2 0 to 7.
pub const ID_SPACE_SIZE: usize = 56;
/// The first CRm of the feature ID space.
const FIRST_CRM: u8 = 1;
/// The last CRm of the feature ID space.
const LAST_CRM: u8 = 7;
/// op2 values per CRm.
const OP2_VALUES: u8 = 8;
/// The `op0` of the System register space.
const OP0_REGISTERS: u8 = 3;

/// Where `reg` sits in the feature ID space (`(CRm - 1) * 8 + op2`), or `None` when it
/// is outside it.
pub fn id_space_index(reg: SysReg) -> Option<usize> {
    let in_space = reg.op0() == OP0_REGISTERS
        && reg.op1() == 0
        && reg.crn() == 0
        && (FIRST_CRM..=LAST_CRM).contains(&reg.crm());
    in_space.then(|| usize::from((reg.crm() - FIRST_CRM) * OP2_VALUES + reg.op2()))
}

/// The register at index `index` of the feature ID space.
pub const fn id_space_register(index: usize) -> SysReg {
    let crm = FIRST_CRM + (index / OP2_VALUES as usize) as u8;
    let op2 = (index % OP2_VALUES as usize) as u8;
    SysReg::new(OP0_REGISTERS, 0, 0, crm, op2)
}

/// The values of every register in the feature ID space, by [`id_space_index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRegisters {
    values: [u64; ID_SPACE_SIZE],
}

impl Default for IdRegisters {
    fn default() -> Self {
        Self::ZERO
    }
}

impl IdRegisters {
    /// Every register zero.
    pub const ZERO: Self = Self {
        values: [0; ID_SPACE_SIZE],
    };

    /// The values in index order, as a snapshot records them.
    pub fn values(&self) -> &[u64; ID_SPACE_SIZE] {
        &self.values
    }

    /// The registers from `values` in index order, if there are exactly
    /// [`ID_SPACE_SIZE`] of them.
    pub fn from_values(values: &[u64]) -> Option<Self> {
        Some(Self {
            values: values.try_into().ok()?,
        })
    }

    /// The value of `reg`, if it is in the feature ID space.
    pub fn get(&self, reg: SysReg) -> Option<u64> {
        id_space_index(reg).map(|index| self.values[index])
    }

    /// Sets `reg`, if it is in the feature ID space.
    pub fn set(&mut self, reg: SysReg, value: u64) {
        if let Some(index) = id_space_index(reg) {
            self.values[index] = value;
        }
    }
}

/// How a field's values are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// 0 means not implemented, larger values mean more.
    Unsigned,
    /// 0 means implemented, 0b1111 (-1) not implemented, positive values more.
    Signed,
}

/// What the guest gets in a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The host's value.
    Host,
    /// The host's value, at most this (compared by the field's [`Sign`]).
    AtMost(u8),
    /// Not implemented: 0 for an unsigned field, 0b1111 for a signed one.
    Hidden,
}

/// One 4-bit field of an ID register.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The architectural name.
    pub name: &'static str,
    /// The lowest bit.
    pub shift: u8,
    /// How its values are ordered.
    pub sign: Sign,
    /// What the guest gets.
    pub rule: Rule,
}

/// Bits of an ID register field.
const FIELD_MASK: u64 = 0xf;
/// The "not implemented" value of a signed field.
const SIGNED_NOT_IMPLEMENTED: u8 = 0xf;

impl Field {
    /// The field's value in `register`.
    pub const fn get(&self, register: u64) -> u8 {
        ((register >> self.shift) & FIELD_MASK) as u8
    }

    /// The guest's value of the field, given the host's and the field's limit
    /// (`rule`, already resolved against the VM's options).
    fn guest_value(&self, host: u8, rule: Rule) -> u8 {
        match rule {
            Rule::Host => host,
            Rule::AtMost(limit) => lower(self.sign, host, limit),
            Rule::Hidden => match self.sign {
                Sign::Unsigned => 0,
                Sign::Signed => SIGNED_NOT_IMPLEMENTED,
            },
        }
    }
}

/// The smaller of two field values, by the field's sign.
pub fn lower(sign: Sign, a: u8, b: u8) -> u8 {
    match sign {
        Sign::Unsigned => a.min(b),
        Sign::Signed => {
            // Sign-extend the 4-bit values: 0b1000..=0b1111 are -8..=-1.
            let signed = |v: u8| ((v << 4) as i8) >> 4;
            if signed(a) <= signed(b) { a } else { b }
        }
    }
}

/// One ID register and the fields the guest gets.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// The architectural name.
    pub name: &'static str,
    /// Its encoding.
    pub reg: SysReg,
    /// Its fields; bits outside them read as zero.
    pub fields: &'static [Field],
}

/// A field with its rule; a shorthand for the tables below.
const fn field(name: &'static str, shift: u8, sign: Sign, rule: Rule) -> Field {
    Field {
        name,
        shift,
        sign,
        rule,
    }
}

/// An unsigned field passed from the host.
const fn host(name: &'static str, shift: u8) -> Field {
    field(name, shift, Sign::Unsigned, Rule::Host)
}

/// A signed field passed from the host.
const fn host_signed(name: &'static str, shift: u8) -> Field {
    field(name, shift, Sign::Signed, Rule::Host)
}

/// An unsigned field capped at `limit`.
const fn at_most(name: &'static str, shift: u8, limit: u8) -> Field {
    field(name, shift, Sign::Unsigned, Rule::AtMost(limit))
}

/// An unsigned field the guest does not get.
const fn hidden(name: &'static str, shift: u8) -> Field {
    field(name, shift, Sign::Unsigned, Rule::Hidden)
}

/// A signed field the guest does not get.
const fn hidden_signed(name: &'static str, shift: u8) -> Field {
    field(name, shift, Sign::Signed, Rule::Hidden)
}

/// The ID_AA64MMFR0_EL1.PARange code of the smallest physical address size that
/// covers the guest's [`IPA_BITS`]-bit physical address space (0b010, 40 bits).
pub const GUEST_PA_RANGE: u8 = 0b010;
const _: () = assert!(IPA_BITS <= 40 && IPA_BITS > 36);

/// The name of the DFR0 field that depends on whether the guest has a PMU.
const PMUVER_FIELD: &str = "PMUVer";
/// The name of the PFR0 field whose limit depends on the guest's GIC.
const GIC_FIELD: &str = "GIC";
/// ID_AA64PFR0_EL1.GIC for the GICv3 (and v4.0) system-register interface.
const GIC_V3_SYSTEM_REGISTERS: u8 = 1;

/// ID_AA64PFR0_EL1.
pub const ID_AA64PFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 0);
/// ID_AA64PFR1_EL1.
pub const ID_AA64PFR1_EL1: SysReg = SysReg::new(3, 0, 0, 4, 1);
/// ID_AA64DFR0_EL1.
pub const ID_AA64DFR0_EL1: SysReg = SysReg::new(3, 0, 0, 5, 0);
/// ID_AA64ISAR0_EL1.
pub const ID_AA64ISAR0_EL1: SysReg = SysReg::new(3, 0, 0, 6, 0);
/// ID_AA64ISAR1_EL1.
pub const ID_AA64ISAR1_EL1: SysReg = SysReg::new(3, 0, 0, 6, 1);
/// ID_AA64ISAR2_EL1.
pub const ID_AA64ISAR2_EL1: SysReg = SysReg::new(3, 0, 0, 6, 2);
/// ID_AA64MMFR0_EL1.
pub const ID_AA64MMFR0_EL1: SysReg = SysReg::new(3, 0, 0, 7, 0);
/// ID_AA64MMFR1_EL1.
pub const ID_AA64MMFR1_EL1: SysReg = SysReg::new(3, 0, 0, 7, 1);
/// ID_AA64MMFR2_EL1.
pub const ID_AA64MMFR2_EL1: SysReg = SysReg::new(3, 0, 0, 7, 2);
/// ID_AA64MMFR3_EL1.
pub const ID_AA64MMFR3_EL1: SysReg = SysReg::new(3, 0, 0, 7, 3);

/// Every ID register the guest sees something of, with its fields. The registers of
/// the feature ID space not listed here read as zero: the AArch32 ID registers,
/// ID_AA64PFR2_EL1, ID_AA64ZFR0_EL1 (SVE), ID_AA64SMFR0_EL1 (SME), ID_AA64FPFR0_EL1
/// (FP8), ID_AA64DFR1_EL1, ID_AA64DFR2_EL1, ID_AA64AFR0/1_EL1 (implementation
/// defined), ID_AA64ISAR3_EL1, ID_AA64MMFR4_EL1 and the unallocated encodings.
pub const REGISTERS: &[Layout] = &[
    Layout {
        name: "ID_AA64PFR0_EL1",
        reg: ID_AA64PFR0_EL1,
        fields: &[
            at_most("EL0", 0, 1),
            at_most("EL1", 4, 1),
            hidden("EL2", 8),
            at_most("EL3", 12, 1),
            host_signed("FP", 16),
            host_signed("AdvSIMD", 20),
            // The limit is 0 without a virtual GICv3 (see `guest_id_registers`).
            at_most(GIC_FIELD, 24, GIC_V3_SYSTEM_REGISTERS),
            hidden("RAS", 28),
            hidden("SVE", 32),
            hidden("SEL2", 36),
            hidden("MPAM", 40),
            hidden("AMU", 44),
            host("DIT", 48),
            hidden("RME", 52),
            at_most("CSV2", 56, 1),
            host("CSV3", 60),
        ],
    },
    Layout {
        name: "ID_AA64PFR1_EL1",
        reg: ID_AA64PFR1_EL1,
        fields: &[
            host("BT", 0),
            host("SSBS", 4),
            hidden("MTE", 8),
            hidden("RAS_frac", 12),
            hidden("MPAM_frac", 16),
            hidden("SME", 24),
            hidden("RNDR_trap", 28),
            at_most("CSV2_frac", 32, 1),
            hidden("NMI", 36),
            hidden_signed("MTE_frac", 40),
            hidden("GCS", 44),
            hidden("THE", 48),
            hidden("MTEX", 52),
            hidden("DF2", 56),
            hidden("PFAR", 60),
        ],
    },
    Layout {
        name: "ID_AA64DFR0_EL1",
        reg: ID_AA64DFR0_EL1,
        fields: &[
            host("DebugVer", 0),
            hidden("TraceVer", 4),
            // Hidden without a guest PMU (see `guest_id_registers`).
            at_most(PMUVER_FIELD, 8, crate::pmu::PMUV3P5),
            host("BRPs", 12),
            hidden("PMSS", 16),
            host("WRPs", 20),
            hidden("SEBEP", 24),
            host("CTX_CMPs", 28),
            hidden("PMSVer", 32),
            host_signed("DoubleLock", 36),
            hidden("TraceFilt", 40),
            hidden("TraceBuffer", 44),
            hidden_signed("MTPMU", 48),
            hidden("BRBE", 52),
            hidden("ExtTrcBuff", 56),
            hidden("HPMN0", 60),
        ],
    },
    Layout {
        name: "ID_AA64ISAR0_EL1",
        reg: ID_AA64ISAR0_EL1,
        fields: &[
            host("AES", 4),
            host("SHA1", 8),
            host("SHA2", 12),
            host("CRC32", 16),
            host("Atomic", 20),
            hidden("TME", 24),
            host("RDM", 28),
            host("SHA3", 32),
            host("SM3", 36),
            host("SM4", 40),
            host("DP", 44),
            host("FHM", 48),
            host("TS", 52),
            host("TLB", 56),
            host("RNDR", 60),
        ],
    },
    Layout {
        name: "ID_AA64ISAR1_EL1",
        reg: ID_AA64ISAR1_EL1,
        fields: &[
            host("DPB", 0),
            host("APA", 4),
            host("API", 8),
            host("JSCVT", 12),
            host("FCMA", 16),
            host("LRCPC", 20),
            host("GPA", 24),
            host("GPI", 28),
            host("FRINTTS", 32),
            host("SB", 36),
            host("SPECRES", 40),
            host("BF16", 44),
            host("DGH", 48),
            host("I8MM", 52),
            host("XS", 56),
            hidden("LS64", 60),
        ],
    },
    Layout {
        name: "ID_AA64ISAR2_EL1",
        reg: ID_AA64ISAR2_EL1,
        fields: &[
            host("WFxT", 0),
            host("RPRES", 4),
            host("GPA3", 8),
            host("APA3", 12),
            hidden("MOPS", 16),
            host("BC", 20),
            host("PAC_frac", 24),
            host("CLRBHB", 28),
            hidden("SYSREG_128", 32),
            hidden("SYSINSTR_128", 36),
            hidden("PRFMSLC", 40),
            host("RPRFM", 48),
            host("CSSC", 52),
            hidden("LUT", 56),
            hidden("ATS1A", 60),
        ],
    },
    Layout {
        name: "ID_AA64MMFR0_EL1",
        reg: ID_AA64MMFR0_EL1,
        fields: &[
            at_most("PARange", 0, GUEST_PA_RANGE),
            host("ASIDBits", 4),
            host("BigEnd", 8),
            hidden("SNSMem", 12),
            host("BigEndEL0", 16),
            host("TGran16", 20),
            host_signed("TGran64", 24),
            host_signed("TGran4", 28),
            // TGran16_2, TGran64_2 and TGran4_2 (bits 43:32) describe stage 2,
            // which the guest does not have: zero.
            host("ExS", 44),
            hidden("FGT", 56),
            at_most("ECV", 60, 1),
        ],
    },
    Layout {
        name: "ID_AA64MMFR1_EL1",
        reg: ID_AA64MMFR1_EL1,
        fields: &[
            at_most("HAFDBS", 0, 2),
            hidden("VMIDBits", 4),
            hidden("VH", 8),
            host("HPDS", 12),
            hidden("LO", 16),
            host("PAN", 20),
            host("SpecSEI", 24),
            hidden("XNX", 28),
            hidden("TWED", 32),
            host("ETS", 36),
            hidden("HCX", 40),
            host("AFP", 44),
            host("nTLBPA", 48),
            host("TIDCP1", 52),
            host("CMOW", 56),
            host("ECBHB", 60),
        ],
    },
    Layout {
        name: "ID_AA64MMFR2_EL1",
        reg: ID_AA64MMFR2_EL1,
        fields: &[
            host("CnP", 0),
            host("UAO", 4),
            host("LSM", 8),
            host("IESB", 12),
            host("VARange", 16),
            host("CCIDX", 20),
            hidden("NV", 24),
            host("ST", 28),
            host("AT", 32),
            host("IDS", 36),
            hidden("FWB", 40),
            host("TTL", 48),
            host("BBM", 52),
            hidden("EVT", 56),
            host("E0PD", 60),
        ],
    },
    Layout {
        name: "ID_AA64MMFR3_EL1",
        reg: ID_AA64MMFR3_EL1,
        fields: &[
            hidden("TCRX", 0),
            hidden("SCTLRX", 4),
            hidden("S1PIE", 8),
            hidden("S2PIE", 12),
            hidden("S1POE", 16),
            hidden("S2POE", 20),
            hidden("AIE", 24),
            hidden("MEC", 28),
            hidden("D128", 32),
            hidden("D128_2", 36),
            hidden("SNERR", 40),
            hidden("ANERR", 44),
            hidden("SDERR", 52),
            hidden("ADERR", 56),
            host("Spec_FPACC", 60),
        ],
    },
];

/// The registers whose host values [`guest_id_registers`] reads: the only ones
/// `boot/` needs to read from the CPU.
pub fn host_registers() -> impl Iterator<Item = SysReg> {
    REGISTERS.iter().map(|layout| layout.reg)
}

/// What the VM gives the guest besides the CPU, where it changes the CPU model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelOptions {
    /// The guest has a virtual GICv3, whose CPU interface is the GICv3 system
    /// registers (ID_AA64PFR0_EL1.GIC = 1); without one the field is 0.
    pub gic_v3: bool,
    /// The guest owns the host's PMUv3 ([`crate::pmu`]): ID_AA64DFR0_EL1.PMUVer is
    /// the host's (at most PMUv3p5); without, it is 0, as it is for a host PMU that
    /// is not a PMUv3 (0b1111, IMPLEMENTATION DEFINED).
    pub pmu: bool,
}

/// The guest's view of the feature ID registers, computed from the host's.
pub fn guest_id_registers(host: &IdRegisters, options: ModelOptions) -> IdRegisters {
    let mut guest = IdRegisters::ZERO;
    for layout in REGISTERS {
        let host_value = host.get(layout.reg).unwrap_or(0);
        let mut value = 0;
        for field in layout.fields {
            let host_field = field.get(host_value);
            let rule = match field.rule {
                Rule::AtMost(_) if field.name == GIC_FIELD && !options.gic_v3 => Rule::Hidden,
                Rule::AtMost(_)
                    if field.name == PMUVER_FIELD
                        && (!options.pmu || host_field == crate::pmu::PMUVER_IMPDEF) =>
                {
                    Rule::Hidden
                }
                rule => rule,
            };
            let guest_field = field.guest_value(host_field, rule);
            value |= u64::from(guest_field) << field.shift;
        }
        guest.set(layout.reg, value);
    }
    guest
}

/// The CPU a guest sees: its feature ID registers, and CTR_EL0, which the guest
/// reads from the host directly (Aerie does not trap it: HCR_EL2.TID2 is clear) and
/// which tells it the cache line sizes its cache maintenance uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestCpu {
    /// The feature ID registers as the guest reads them.
    pub id: IdRegisters,
    /// CTR_EL0.
    pub ctr: u64,
}

impl GuestCpu {
    /// What `other` would show the guest differently, one entry per field (or per
    /// register, for bits outside the named fields): e.g.
    /// `ID_AA64ISAR0_EL1.Atomic 2 here 0`. Empty when a guest could not tell them
    /// apart.
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        for index in 0..ID_SPACE_SIZE {
            let reg = id_space_register(index);
            let (a, b) = (self.id.values[index], other.id.values[index]);
            if a == b {
                continue;
            }
            let layout = REGISTERS.iter().find(|layout| layout.reg == reg);
            let mut named = 0;
            for field in layout.map_or(&[][..], |layout| layout.fields) {
                named |= FIELD_MASK << field.shift;
                let (x, y) = (field.get(a), field.get(b));
                if x != y {
                    let register = layout.map_or("", |l| l.name);
                    out.push(format!("{register}.{} {x} here {y}", field.name));
                }
            }
            if (a ^ b) & !named != 0 {
                let name = layout.map_or_else(|| format!("{reg}"), |l| String::from(l.name));
                out.push(format!("{name} {a:#x} here {b:#x}"));
            }
        }
        if self.ctr != other.ctr {
            out.push(format!("CTR_EL0 {:#x} here {:#x}", self.ctr, other.ctr));
        }
        out
    }
}

#[cfg(test)]
mod tests;
