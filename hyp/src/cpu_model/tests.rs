//! The guest CPU model, field by field (layouts: Arm ARM DDI 0487, the
//! ID_AA64*_EL1 register pages).

use super::*;

const GICV3: ModelOptions = ModelOptions { gic_v3: true };
const NO_GICV3: ModelOptions = ModelOptions { gic_v3: false };

/// A host whose listed registers hold `values`.
fn host_with(values: &[(SysReg, u64)]) -> IdRegisters {
    let mut host = IdRegisters::ZERO;
    for &(reg, value) in values {
        host.set(reg, value);
    }
    host
}

/// Field `shift` of the guest's `reg`.
fn guest_field(guest: &IdRegisters, reg: SysReg, shift: u8) -> u8 {
    ((guest.get(reg).expect("an ID register") >> shift) & 0xf) as u8
}

/// ID_PFR0_EL1, the first AArch32 ID register.
const ID_PFR0_EL1: SysReg = SysReg::new(3, 0, 0, 1, 0);
/// ID_AA64ZFR0_EL1 (SVE features).
const ID_AA64ZFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 4);
/// ID_AA64SMFR0_EL1 (SME features).
const ID_AA64SMFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 5);
/// ID_AA64PFR2_EL1.
const ID_AA64PFR2_EL1: SysReg = SysReg::new(3, 0, 0, 4, 2);
/// The last encoding of the space, unallocated.
const LAST_ENCODING: SysReg = SysReg::new(3, 0, 0, 7, 7);

#[test]
fn the_feature_id_space_is_crm_1_to_7() {
    assert_eq!(id_space_index(ID_PFR0_EL1), Some(0));
    assert_eq!(id_space_index(ID_AA64PFR0_EL1), Some(24));
    assert_eq!(id_space_index(LAST_ENCODING), Some(55));
    // MPIDR_EL1 (CRm 0), SCTLR_EL1 (CRn 1), CCSIDR_EL1 (op1 1), debug space (op0 2).
    for outside in [
        SysReg::new(3, 0, 0, 0, 5),
        SysReg::new(3, 0, 1, 0, 0),
        SysReg::new(3, 1, 0, 0, 0),
        SysReg::new(2, 0, 0, 1, 0),
        SysReg::new(3, 0, 0, 8, 0),
    ] {
        assert_eq!(id_space_index(outside), None, "{outside}");
    }
    for index in 0..ID_SPACE_SIZE {
        assert_eq!(id_space_index(id_space_register(index)), Some(index));
    }
}

#[test]
fn pfr0_a_max_like_host() {
    // CSV3 1, CSV2 2, RME 0, DIT 1, AMU 1, MPAM 0, SEL2 1, SVE 1, RAS 2, GIC 1,
    // AdvSIMD 1, FP 1, EL3 2, EL2 2, EL1 2, EL0 2.
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x1201_1011_2111_2222)]);
    let guest = guest_id_registers(&host, GICV3);
    // CSV2 capped at 1; DIT, CSV3, FP, AdvSIMD, GIC kept; AMU, SEL2, SVE, RAS and EL2
    // hidden; EL3, EL1 and EL0 AArch64 only.
    assert_eq!(guest.get(ID_AA64PFR0_EL1), Some(0x1101_0000_0111_1011));
}

#[test]
fn pfr0_hidden_features_each() {
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x0000_ffff_f000_0000)]);
    let guest = guest_id_registers(&host, GICV3);
    for (name, shift) in [
        ("RAS", 28),
        ("SVE", 32),
        ("SEL2", 36),
        ("MPAM", 40),
        ("AMU", 44),
    ] {
        assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, shift), 0, "{name}");
    }
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x0010_0000_0000_0000)]);
    assert_eq!(
        guest_id_registers(&host, GICV3).get(ID_AA64PFR0_EL1),
        Some(0),
        "RME"
    );
}

#[test]
fn pfr0_aarch32_exception_levels_are_not_offered() {
    // EL0 and EL1 with AArch32 (2) become AArch64 only (1); AArch64-only stays.
    for (host_value, expected) in [(2, 1), (1, 1)] {
        let host = host_with(&[(ID_AA64PFR0_EL1, host_value * 0x1111)]);
        let guest = guest_id_registers(&host, GICV3);
        assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 0), expected, "EL0");
        assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 4), expected, "EL1");
        assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 8), 0, "EL2");
        assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 12), expected, "EL3");
    }
}

#[test]
fn pfr0_fp_and_advsimd_are_signed() {
    // 0b1111: not implemented. Lowering or hiding must never turn that into 0
    // ("implemented").
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x00ff_0000)]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 16), 0xf, "FP");
    assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 20), 0xf, "AdvSIMD");
    // Half precision (1) passes.
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x0011_0000)]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest.get(ID_AA64PFR0_EL1), Some(0x0011_0000));
}

#[test]
fn pfr0_gic_follows_the_virtual_gic() {
    // A GICv4.1 host (3) gives a GICv3 guest the v3.0/v4.0 interface (1); a guest
    // without a virtual GICv3 has no GIC system registers (0).
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x0300_0000)]);
    let gic = |options| guest_field(&guest_id_registers(&host, options), ID_AA64PFR0_EL1, 24);
    assert_eq!(gic(GICV3), 1);
    assert_eq!(gic(NO_GICV3), 0);
    let no_gic = host_with(&[(ID_AA64PFR0_EL1, 0)]);
    assert_eq!(
        guest_field(&guest_id_registers(&no_gic, GICV3), ID_AA64PFR0_EL1, 24),
        0
    );
}

#[test]
fn pfr1_keeps_bti_and_ssbs_and_hides_the_rest() {
    // PFAR 1, DF2 1, MTEX 1, THE 1, GCS 1, MTE_frac 0 (async faults), NMI 1,
    // CSV2_frac 2, RNDR_trap 1, SME 2, MPAM_frac 1, RAS_frac 1, MTE 3, SSBS 2, BT 1.
    let host = host_with(&[(ID_AA64PFR1_EL1, 0x1111_1012_1201_1321)]);
    let guest = guest_id_registers(&host, GICV3);
    // MTE_frac becomes 0b1111 ("not implemented": a signed field); CSV2_frac 1.
    assert_eq!(guest.get(ID_AA64PFR1_EL1), Some(0x0000_0f01_0000_0021));
}

#[test]
fn csv2_without_scxtnum() {
    let host = host_with(&[
        (ID_AA64PFR0_EL1, 0x0300_0000_0000_0000),
        (ID_AA64PFR1_EL1, 0x2_0000_0000),
    ]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest_field(&guest, ID_AA64PFR0_EL1, 56), 1, "CSV2");
    assert_eq!(guest_field(&guest, ID_AA64PFR1_EL1, 32), 1, "CSV2_frac");
}

#[test]
fn dfr0_keeps_debug_and_hides_pmu_profiling_and_trace() {
    // HPMN0 1, ExtTrcBuff 1, BRBE 1, MTPMU 1, TraceBuffer 1, TraceFilt 1,
    // DoubleLock 0, PMSVer 3, CTX_CMPs 1, SEBEP 1, WRPs 3, PMSS 1, BRPs 5,
    // PMUVer 8, TraceVer 1, DebugVer 9.
    let host = host_with(&[(ID_AA64DFR0_EL1, 0x1111_1103_1131_5819)]);
    let guest = guest_id_registers(&host, GICV3);
    // MTPMU (signed) hidden as 0b1111; DoubleLock 0 (implemented) kept.
    assert_eq!(guest.get(ID_AA64DFR0_EL1), Some(0x000f_0000_1030_5009));
}

#[test]
fn dfr0_signed_and_impdef_values() {
    // PMUVer 0b1111 is an IMPLEMENTATION DEFINED PMU: hidden as 0. DoubleLock
    // 0b1111 (no double lock) and MTPMU 0b1111 (not implemented) stay 0b1111.
    let host = host_with(&[(ID_AA64DFR0_EL1, 0x000f_00f0_0000_0f06)]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest.get(ID_AA64DFR0_EL1), Some(0x000f_00f0_0000_0006));
}

#[test]
fn isar_instruction_extensions_pass_and_stateful_ones_do_not() {
    // ISAR0: RNDR 1, TLB 2, TS 2, FHM 1, DP 1, SM4 1, SM3 1, SHA3 1, RDM 1, TME 1,
    // Atomic 2, CRC32 1, SHA2 2, SHA1 1, AES 2.
    let host = host_with(&[
        (ID_AA64ISAR0_EL1, 0x1221_1111_1121_2120),
        // ISAR1: LS64 3 and everything else 1.
        (ID_AA64ISAR1_EL1, 0x3111_1111_1111_1111),
        // ISAR2: ATS1A 1, LUT 1, CSSC 1, RPRFM 1, PRFMSLC 1, SYSINSTR_128 1,
        // SYSREG_128 1, CLRBHB 1, PAC_frac 1, BC 1, MOPS 1, APA3 3, GPA3 1, RPRES 1,
        // WFxT 2.
        (ID_AA64ISAR2_EL1, 0x1111_0111_1111_3112),
    ]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(
        guest.get(ID_AA64ISAR0_EL1),
        Some(0x1221_1111_1021_2120),
        "TME hidden"
    );
    assert_eq!(
        guest.get(ID_AA64ISAR1_EL1),
        Some(0x0111_1111_1111_1111),
        "LS64 hidden; pointer authentication kept"
    );
    assert_eq!(
        guest.get(ID_AA64ISAR2_EL1),
        Some(0x0011_0000_1110_3112),
        "MOPS, 128-bit system registers, PRFMSLC, LUT, ATS1A hidden"
    );
}

#[test]
fn mmfr0_pa_range_stage2_granules_and_ecv() {
    // ECV 2, FGT 1, ExS 1, TGran4_2 2, TGran64_2 2, TGran16_2 2, TGran4 0,
    // TGran64 0, TGran16 1, BigEndEL0 0, SNSMem 1, BigEnd 1, ASIDBits 2,
    // PARange 5 (48 bits).
    let host = host_with(&[(ID_AA64MMFR0_EL1, 0x2100_1222_0010_1125)]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest.get(ID_AA64MMFR0_EL1), Some(0x1000_1000_0010_0122));
    // A smaller PARange than the limit is kept.
    let host = host_with(&[(ID_AA64MMFR0_EL1, 0x1)]);
    assert_eq!(
        guest_id_registers(&host, GICV3).get(ID_AA64MMFR0_EL1),
        Some(0x1)
    );
}

#[test]
fn mmfr0_4k_and_64k_granules_are_signed() {
    // TGran4 and TGran64 0b1111: not supported, must stay so.
    let host = host_with(&[(ID_AA64MMFR0_EL1, 0xff00_0002)]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest.get(ID_AA64MMFR0_EL1), Some(0xff00_0002));
}

#[test]
fn mmfr1_and_mmfr2() {
    // MMFR1 every field 1 but HAFDBS 3 (with HAFT): HAFDBS capped at 2; VMIDBits,
    // VH, LO, XNX, TWED, HCX hidden.
    let host = host_with(&[
        (ID_AA64MMFR1_EL1, 0x1111_1111_1111_1113),
        (ID_AA64MMFR2_EL1, 0x1111_1111_1111_1111),
    ]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest.get(ID_AA64MMFR1_EL1), Some(0x1111_1010_0110_1002));
    // MMFR2: NV, FWB, EVT hidden; bits 47:44 are RES0.
    assert_eq!(guest.get(ID_AA64MMFR2_EL1), Some(0x1011_0011_1011_1111));
}

#[test]
fn mmfr3_only_speculation_information() {
    let host = host_with(&[(ID_AA64MMFR3_EL1, 0x1111_1111_1111_1111)]);
    let guest = guest_id_registers(&host, GICV3);
    assert_eq!(guest.get(ID_AA64MMFR3_EL1), Some(0x1000_0000_0000_0000));
}

#[test]
fn aarch32_sve_sme_and_unallocated_registers_read_as_zero() {
    let mut host = IdRegisters::ZERO;
    for index in 0..ID_SPACE_SIZE {
        host.set(id_space_register(index), u64::MAX);
    }
    let guest = guest_id_registers(&host, GICV3);
    for reg in [
        ID_PFR0_EL1,
        ID_AA64PFR2_EL1,
        ID_AA64ZFR0_EL1,
        ID_AA64SMFR0_EL1,
        LAST_ENCODING,
    ] {
        assert_eq!(guest.get(reg), Some(0), "{reg}");
    }
    // Only the listed registers are non-zero, and only within their fields.
    for index in 0..ID_SPACE_SIZE {
        let reg = id_space_register(index);
        let value = guest.get(reg).unwrap();
        match REGISTERS.iter().find(|layout| layout.reg == reg) {
            None => assert_eq!(value, 0, "{reg}"),
            Some(layout) => {
                let mask = layout
                    .fields
                    .iter()
                    .fold(0, |mask, field| mask | 0xf << field.shift);
                assert_eq!(value & !mask, 0, "{}: bits outside its fields", layout.name);
            }
        }
    }
}

#[test]
fn lowering_follows_the_sign() {
    assert_eq!(lower(Sign::Unsigned, 0xf, 1), 1);
    assert_eq!(lower(Sign::Unsigned, 0, 1), 0);
    // Signed: 0b1111 is -1, below 0 and 1.
    assert_eq!(lower(Sign::Signed, 0xf, 0), 0xf);
    assert_eq!(lower(Sign::Signed, 0, 0xf), 0xf);
    assert_eq!(lower(Sign::Signed, 1, 0), 0);
    assert_eq!(lower(Sign::Signed, 7, 0x8), 0x8);
}

#[test]
fn the_signed_fields_are_the_architectures() {
    let signed = [
        "FP",
        "AdvSIMD",
        "TGran4",
        "TGran64",
        "DoubleLock",
        "MTPMU",
        "MTE_frac",
    ];
    for layout in REGISTERS {
        for field in layout.fields {
            let expected = if signed.contains(&field.name) {
                Sign::Signed
            } else {
                Sign::Unsigned
            };
            assert_eq!(field.sign, expected, "{}.{}", layout.name, field.name);
        }
    }
}

#[test]
fn layouts_are_well_formed() {
    for layout in REGISTERS {
        assert!(id_space_index(layout.reg).is_some(), "{}", layout.name);
        let mut previous = None;
        for field in layout.fields {
            assert!(
                field.shift % 4 == 0 && field.shift < 64,
                "{}.{}",
                layout.name,
                field.name
            );
            assert!(
                previous < Some(field.shift),
                "{}: fields in order",
                layout.name
            );
            previous = Some(field.shift);
        }
    }
    let regs: Vec<SysReg> = host_registers().collect();
    let mut unique = regs.clone();
    unique.dedup();
    assert_eq!(regs, unique);
}

#[test]
fn the_model_is_idempotent() {
    // A guest's model, taken as a host, gives the same model: every rule lowers.
    let mut host = IdRegisters::ZERO;
    for index in 0..ID_SPACE_SIZE {
        host.set(
            id_space_register(index),
            0x1234_5678_9abc_def0u64.rotate_left(index as u32),
        );
    }
    for options in [GICV3, NO_GICV3] {
        let guest = guest_id_registers(&host, options);
        assert_eq!(guest_id_registers(&guest, options), guest);
    }
}

#[test]
fn differences_name_fields_and_registers_in_encoding_order() {
    let mut a = GuestCpu {
        ctr: 0x8444_c004,
        ..GuestCpu::default()
    };
    a.id.set(ID_AA64ISAR0_EL1, 0x20_0000);
    a.id.set(ID_AA64ZFR0_EL1, 1);
    let mut b = a;
    assert!(a.differences(&b).is_empty());
    b.id.set(ID_AA64ISAR0_EL1, 0);
    b.id.set(ID_AA64ZFR0_EL1, 0);
    b.ctr = 0x8444_c003;
    assert_eq!(
        a.differences(&b),
        [
            "S3_0_C0_C4_4 0x1 here 0x0",
            "ID_AA64ISAR0_EL1.Atomic 2 here 0",
            "CTR_EL0 0x8444c004 here 0x8444c003",
        ]
    );
}

#[test]
fn values_round_trip() {
    let mut registers = IdRegisters::ZERO;
    registers.set(ID_AA64MMFR2_EL1, 42);
    let values = registers.values().to_vec();
    assert_eq!(IdRegisters::from_values(&values), Some(registers));
    assert_eq!(IdRegisters::from_values(&values[1..]), None);
}

#[test]
fn a_trapped_id_register_read_is_found_in_the_model() {
    // `mrs x3, ID_AA64PFR0_EL1` (3, 0, 0, 4, 0) trapped by HCR_EL2.TID3: EC 0x18,
    // IL, ISS = op0 3 << 20 | Rt 3 << 5 | CRm 4 << 1 | read.
    let info = crate::exit::TrapInfo {
        esr: 0x6230_0069,
        far: 0,
        hpfar: 0,
    };
    let crate::exit::Exit::SystemRegister(access) = crate::exit::Exit::decode(&info) else {
        panic!("not a system register access");
    };
    assert!(access.is_read);
    assert_eq!(access.register, 3);
    assert_eq!(access.reg(), ID_AA64PFR0_EL1);
    let host = host_with(&[(ID_AA64PFR0_EL1, 0x1_0000_0011)]);
    assert_eq!(
        guest_id_registers(&host, GICV3).get(access.reg()),
        Some(0x11),
        "SVE hidden"
    );
}
