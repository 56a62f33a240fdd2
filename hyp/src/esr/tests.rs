//! Expected values are computed by hand from the Arm ARM field layout, not from the
//! module's constants: EC sits at bits [31:26], IL at bit 25, ISS at [24:0].
use super::*;
use std::string::ToString;

/// IL = 1 (32-bit instruction): bit 25.
const IL: u64 = 1 << 25;

#[test]
fn hvc_0() {
    // EC 0x16 (HVC64) << 26 = 0x5800_0000, plus IL = 0x5A00_0000; imm16 = 0.
    let esr = Esr(0x5A00_0000);
    assert_eq!(esr.ec(), 0x16);
    assert_eq!(esr.class(), ExceptionClass::Hvc64);
    assert_eq!(esr.instruction_len(), 4);
    assert_eq!(esr.syndrome(), Syndrome::Hvc { imm: 0 });
    assert_eq!(Syndrome::decode(0x5A00_0000).to_string(), "hvc #0");
}

#[test]
fn hvc_and_smc_immediates() {
    // SMC #0: EC 0x17 << 26 = 0x5C00_0000, plus IL.
    assert_eq!(Syndrome::decode(0x5E00_0000), Syndrome::Smc { imm: 0 });
    // HVC #0x4711: the immediate sits in ISS[15:0].
    let hvc = Syndrome::decode(0x5A00_4711);
    assert_eq!(hvc, Syndrome::Hvc { imm: 0x4711 });
    assert_eq!(hvc.to_string(), "hvc #0x4711");
    // SVC #0 from AArch64: EC 0x15 << 26 = 0x5400_0000, plus IL.
    assert_eq!(Syndrome::decode(0x5600_0000), Syndrome::Svc { imm: 0 });
}

#[test]
fn trapped_msr_sctlr_el1() {
    // `msr sctlr_el1, x0` trapped by HCR_EL2.TVM. SCTLR_EL1 is op0=3 op1=0 CRn=1
    // CRm=0 op2=0. ISS = op0<<20 | op2<<17 | op1<<14 | CRn<<10 | Rt<<5 | CRm<<1 |
    // dir, dir = 0 for a write: 0x30_0000 | 0x400 = 0x30_0400.
    // EC 0x18 << 26 = 0x6000_0000, plus IL = 0x6200_0000.
    let s = Syndrome::decode(0x6230_0400);
    assert_eq!(
        s,
        Syndrome::SystemRegister {
            op0: 3,
            op1: 0,
            crn: 1,
            crm: 0,
            op2: 0,
            rt: 0,
            is_read: false
        }
    );
    assert_eq!(s.to_string(), "trapped msr S3_0_C1_C0_0, x0");
}

#[test]
fn trapped_msr_icc_sgi1r_el1() {
    // `msr icc_sgi1r_el1, x1` (GICv3 SGI generation, op0=3 op1=0 CRn=12 CRm=11 op2=5):
    // 3<<20 | 5<<17 | 0<<14 | 12<<10 | 1<<5 | 11<<1 | 0
    // = 0x30_0000 + 0xA_0000 + 0x3000 + 0x20 + 0x16 = 0x3A_3036.
    let s = Syndrome::decode(0x623A_3036);
    assert_eq!(
        s,
        Syndrome::SystemRegister {
            op0: 3,
            op1: 0,
            crn: 12,
            crm: 11,
            op2: 5,
            rt: 1,
            is_read: false
        }
    );
    assert_eq!(s.to_string(), "trapped msr S3_0_C12_C11_5, x1");
}

#[test]
fn trapped_mrs_cntp_ctl_el0() {
    // `mrs x2, cntp_ctl_el0` trapped by CNTHCTL_EL2 (op0=3 op1=3 CRn=14 CRm=2 op2=1),
    // dir = 1 for a read: 3<<20 | 1<<17 | 3<<14 | 14<<10 | 2<<5 | 2<<1 | 1
    // = 0x30_0000 + 0x2_0000 + 0xC000 + 0x3800 + 0x40 + 0x4 + 0x1 = 0x32_F845.
    let s = Syndrome::decode(0x6232_F845);
    assert_eq!(
        s,
        Syndrome::SystemRegister {
            op0: 3,
            op1: 3,
            crn: 14,
            crm: 2,
            op2: 1,
            rt: 2,
            is_read: true
        }
    );
    assert_eq!(s.to_string(), "trapped mrs x2, S3_3_C14_C2_1");
}

#[test]
fn trapped_system_instruction_and_xzr() {
    // `dc cisw, x3` = SYS #0, C7, C14, #2, x3: op0=1: 1<<20 | 2<<17 | 0<<14 | 7<<10 |
    // 3<<5 | 14<<1 | 0 = 0x10_0000 + 0x4_0000 + 0x1C00 + 0x60 + 0x1C = 0x14_1C7C.
    assert_eq!(
        Syndrome::decode(0x6214_1C7C).to_string(),
        "trapped sys #0, C7, C14, #2, x3"
    );
    // `msr sctlr_el1, xzr`: Rt = 31 -> 31<<5 = 0x3E0.
    assert_eq!(
        Syndrome::decode(0x6230_07E0).to_string(),
        "trapped msr S3_0_C1_C0_0, xzr"
    );
}

#[test]
fn wfi_and_wfe() {
    // WFI from AArch64: EC 0x01 << 26 = 0x0400_0000, IL, and CV=1 (bit 24) with
    // COND=0b1110 (bits [23:20]) as the Arm ARM requires for AArch64: 0x01E0_0000.
    // TI (bits [1:0]) = 0 for WFI, 1 for WFE.
    let wfi = Syndrome::decode(0x07E0_0000);
    assert_eq!(
        wfi,
        Syndrome::Wfx {
            is_wfe: false,
            has_timeout: false,
            timeout_register: None
        }
    );
    assert_eq!(wfi.to_string(), "trapped wfi");
    let wfe = Syndrome::decode(0x07E0_0001);
    assert_eq!(
        wfe,
        Syndrome::Wfx {
            is_wfe: true,
            has_timeout: false,
            timeout_register: None
        }
    );
    assert_eq!(wfe.to_string(), "trapped wfe");
}

#[test]
fn wfit_with_register() {
    // WFIT x4: TI = 0b10, RV (bit 2) = 1, RN (bits [9:5]) = 4 -> 4<<5 | 0b100 | 0b10.
    let s = Syndrome::decode(0x07E0_0000 | (4 << 5) | 0b110);
    assert_eq!(
        s,
        Syndrome::Wfx {
            is_wfe: false,
            has_timeout: true,
            timeout_register: Some(4)
        }
    );
    assert_eq!(s.to_string(), "trapped wfit x4");
}

#[test]
fn wfet_and_a_timeout_register_only_when_valid() {
    // WFET x7 with RV = 1: TI = 0b11, RV (bit 2), RN (bits [9:5]) = 7.
    let s = Syndrome::decode(0x07E0_0000 | (7 << 5) | 0b111);
    assert_eq!(
        s,
        Syndrome::Wfx {
            is_wfe: true,
            has_timeout: true,
            timeout_register: Some(7)
        }
    );
    assert_eq!(s.to_string(), "trapped wfet x7");
    // The same with RV = 0: RN is not valid and is not reported.
    let s = Syndrome::decode(0x07E0_0000 | (7 << 5) | 0b011);
    assert_eq!(
        s,
        Syndrome::Wfx {
            is_wfe: true,
            has_timeout: true,
            timeout_register: None
        }
    );
    // RV set on a form without a timeout (WFE) reports no register either.
    let s = Syndrome::decode(0x07E0_0000 | (7 << 5) | 0b101);
    assert_eq!(
        s,
        Syndrome::Wfx {
            is_wfe: true,
            has_timeout: false,
            timeout_register: None
        }
    );
}

#[test]
fn linux_kernel_write_fault() {
    // The classic Linux oops "ESR = 0x96000046": EC 0x25 (data abort, same EL)
    // << 26 = 0x9400_0000, IL -> 0x9600_0000; ISS 0x46 = WnR (bit 6) | DFSC 0b000110
    // (translation fault, level 2); ISV = 0.
    let s = Syndrome::decode(0x9600_0046);
    let Syndrome::DataAbort { from_lower_el, iss } = s else {
        panic!("{s:?}")
    };
    assert!(!from_lower_el);
    assert!(iss.is_write);
    assert!(!iss.isv());
    assert_eq!(iss.fault, FaultStatus::Translation { level: 2 });
    assert_eq!(
        s.to_string(),
        "data abort from EL2: translation fault at level 2, write (no instruction syndrome)"
    );
}

#[test]
fn data_abort_with_syndrome_matches_report_example() {
    // `str x3, [x0]` at EL2 hitting a level-1 translation fault:
    // EC 0x25 -> 0x9400_0000 | IL 0x0200_0000 | ISV (bit 24) 0x0100_0000
    // | SAS=0b11 (bits [23:22], 8 bytes) 0x00C0_0000 | SRT=3 (bits [20:16]) 0x0003_0000
    // | SF (bit 15) 0x8000 | WnR 0x40 | DFSC 0b000101 = 0x97C3_8045.
    let s = Syndrome::decode(0x97C3_8045);
    assert_eq!(
        s.to_string(),
        "data abort from EL2: translation fault at level 1, write of 8 bytes (x3)"
    );
}

#[test]
fn guest_mmio_store() {
    // A guest's `str w1, [x0]` to an unmapped IPA, stage-2 translation fault at
    // level 1: EC 0x24 (lower EL) -> 0x9000_0000 | IL | ISV 0x0100_0000
    // | SAS=0b10 (4 bytes) 0x0080_0000 | SRT=1 0x0001_0000 | SF=0 | WnR 0x40 | DFSC 0x05.
    let s = Syndrome::decode(0x9381_0045);
    let Syndrome::DataAbort {
        from_lower_el: true,
        iss,
    } = s
    else {
        panic!("{s:?}")
    };
    assert_eq!(
        iss.access,
        Some(DataAccess {
            bytes: 4,
            sign_extend: false,
            register: 1,
            register_is_64bit: false,
            acquire_release: false,
        })
    );
    assert!(iss.is_write);
    assert_eq!(
        s.to_string(),
        "data abort from a lower EL: translation fault at level 1, write of 4 bytes (w1)"
    );
}

#[test]
fn guest_mmio_sign_extending_acquire_load() {
    // `ldarh`-like load into x5, sign-extended (hypothetical combination to exercise
    // each bit): ISV | SAS=0b01 (2 bytes) 0x0040_0000 | SSE (bit 21) 0x0020_0000
    // | SRT=5 0x0005_0000 | SF 0x8000 | AR (bit 14) 0x4000 | WnR=0 | DFSC 0x07.
    let esr = 0x9200_0000 | 0x0100_0000 | 0x0040_0000 | 0x0020_0000 | 0x0005_0000;
    let s = Syndrome::decode(esr | 0x8000 | 0x4000 | 0x07);
    let Syndrome::DataAbort { iss, .. } = s else {
        panic!("{s:?}")
    };
    let access = iss.access.unwrap();
    assert_eq!(access.bytes, 2);
    assert!(access.sign_extend && access.register_is_64bit && access.acquire_release);
    assert_eq!(access.register, 5);
    assert!(!iss.is_write);
    assert_eq!(
        s.to_string(),
        "data abort from a lower EL: translation fault at level 3, \
         read of 2 bytes (x5, sign-extended)"
    );
}

#[test]
fn data_abort_flag_bits() {
    // FnV bit 10, EA bit 9, CM bit 8, S1PTW bit 7; DFSC 0x0D = permission fault L1.
    let s = Syndrome::decode(0x9200_0000 | 1 << 10 | 1 << 9 | 1 << 8 | 1 << 7 | 0x0D);
    let Syndrome::DataAbort { iss, .. } = s else {
        panic!("{s:?}")
    };
    assert!(iss.far_not_valid && iss.external_abort_type);
    assert!(iss.cache_maintenance && iss.stage1_walk);
    assert_eq!(
        s.to_string(),
        "data abort from a lower EL: permission fault at level 1, read (no instruction \
         syndrome), by cache maintenance, during the stage-1 table walk, FAR not valid"
    );
}

#[test]
fn instruction_abort_from_guest() {
    // A guest jumping to an unmapped IPA: EC 0x20 << 26 = 0x8000_0000, IL (RES1 for
    // instruction aborts) -> 0x8200_0000, IFSC 0b000111 = translation fault level 3.
    let s = Syndrome::decode(0x8200_0007);
    assert_eq!(
        s,
        Syndrome::InstructionAbort {
            from_lower_el: true,
            iss: InstructionAbortIss {
                far_not_valid: false,
                external_abort_type: false,
                stage1_walk: false,
                fault: FaultStatus::Translation { level: 3 },
            },
        }
    );
    assert_eq!(
        s.to_string(),
        "instruction abort from a lower EL: translation fault at level 3"
    );
    // Same EL (EC 0x21 -> 0x8400_0000 | IL), S1PTW (bit 7), access flag fault L2 (0x0A).
    let s = Syndrome::decode(0x8600_008A);
    assert_eq!(
        s.to_string(),
        "instruction abort from EL2: access flag fault at level 2, during the stage-1 table walk"
    );
}

#[test]
fn brk_from_linux_bug() {
    // Linux's BUG() is `brk #0x800`: EC 0x3C << 26 = 0xF000_0000, IL -> 0xF200_0000.
    let s = Syndrome::decode(0xF200_0800);
    assert_eq!(s, Syndrome::Brk { comment: 0x800 });
    assert_eq!(s.to_string(), "brk #0x800");
}

#[test]
fn serror() {
    // "SError Interrupt ... ESR 0xbe000000": EC 0x2F << 26 = 0xBC00_0000, IL (RES1).
    assert_eq!(Syndrome::decode(0xBE00_0000), Syndrome::SError { iss: 0 });
    // IDS (bit 24) set with an implementation defined syndrome of 2.
    let s = Syndrome::decode(0xBF00_0002);
    assert_eq!(s, Syndrome::SError { iss: 0x0100_0002 });
    assert_eq!(s.to_string(), "SError (ISS 0x1000002)");
}

#[test]
fn unknown_and_unallocated() {
    // An undefined instruction: EC 0, IL = 1 -> 0x0200_0000.
    assert_eq!(Syndrome::decode(0x0200_0000), Syndrome::Unknown);
    // EC 0x02 is unallocated: 0x02 << 26 = 0x0800_0000.
    let s = Syndrome::decode(0x0800_0000 | 0x1234);
    assert_eq!(
        s,
        Syndrome::Other {
            class: ExceptionClass::Other(0x02),
            iss: 0x1234
        }
    );
    assert_eq!(
        s.to_string(),
        "unallocated exception class 0x02 (ISS 0x1234)"
    );
    // A known class without a typed view: FP/SIMD access trap, EC 0x07.
    let s = Syndrome::decode(0x07 << 26 | IL);
    assert_eq!(
        s,
        Syndrome::Other {
            class: ExceptionClass::FpAccess,
            iss: 0
        }
    );
    assert_eq!(s.to_string(), "trapped FP/SIMD access (ISS 0x0)");
}

#[test]
fn alignment_and_illegal_state() {
    // PC alignment: EC 0x22 << 26 = 0x8800_0000; SP alignment: EC 0x26 -> 0x9800_0000;
    // illegal state: EC 0x0E -> 0x3800_0000.
    assert_eq!(Syndrome::decode(0x8A00_0000), Syndrome::PcAlignment);
    assert_eq!(Syndrome::decode(0x9A00_0000), Syndrome::SpAlignment);
    assert_eq!(Syndrome::decode(0x3A00_0000), Syndrome::IllegalState);
}

#[test]
fn debug_exceptions() {
    // Watchpoint from a lower EL on a write: EC 0x34 << 26 = 0xD000_0000, IL,
    // WnR (bit 6), DFSC 0x22 (debug exception) -> 0xD200_0062.
    let s = Syndrome::decode(0xD200_0062);
    assert_eq!(
        s,
        Syndrome::Debug {
            event: DebugEvent::Watchpoint,
            from_lower_el: true,
            iss: 0x62
        }
    );
    assert_eq!(s.to_string(), "watchpoint from a lower EL");
    // Software step at EL2: EC 0x33 -> 0xCC00_0000.
    assert_eq!(
        Syndrome::decode(0xCE00_0022).to_string(),
        "software step from EL2"
    );
    // Breakpoint from a lower EL: EC 0x30 -> 0xC000_0000.
    assert_eq!(
        Syndrome::decode(0xC200_0022).to_string(),
        "breakpoint from a lower EL"
    );
}

#[test]
fn sixteen_bit_instruction_length() {
    // IL = 0: a 16-bit T32 instruction (an AArch32 guest's SVC, EC 0x11).
    assert_eq!(Esr(0x11 << 26).instruction_len(), 2);
}

#[test]
fn iss2_is_separate_from_iss() {
    // ISS2 sits at bits [55:32]; Xs = 7 for an ST64BV data abort.
    let esr = Esr((7 << 32) | 0x9200_0000);
    assert_eq!(esr.iss2(), 7);
    assert_eq!(esr.iss(), 0);
    // All 24 bits count (FEAT_LS64 widened the field beyond its first five), and
    // the RES0 bits [63:56] above it do not.
    let wide = Esr((0xff << 56) | (0xab_cdef << 32) | 0x9200_0000);
    assert_eq!(wide.iss2(), 0xab_cdef);
    assert_eq!(wide.ec(), 0x24);
}

#[test]
fn exception_class_values_from_the_arm_arm() {
    let table = [
        (0x00, ExceptionClass::Unknown),
        (0x01, ExceptionClass::Wfx),
        (0x03, ExceptionClass::McrMrcCp15),
        (0x04, ExceptionClass::McrrMrrcCp15),
        (0x05, ExceptionClass::McrMrcCp14),
        (0x06, ExceptionClass::LdcStc),
        (0x07, ExceptionClass::FpAccess),
        (0x08, ExceptionClass::VmrsId),
        (0x09, ExceptionClass::PointerAuth),
        (0x0A, ExceptionClass::OtherTrap),
        (0x0C, ExceptionClass::MrrcCp14),
        (0x0D, ExceptionClass::BranchTarget),
        (0x0E, ExceptionClass::IllegalState),
        (0x11, ExceptionClass::Svc32),
        (0x12, ExceptionClass::Hvc32),
        (0x13, ExceptionClass::Smc32),
        (0x14, ExceptionClass::SystemRegister128),
        (0x15, ExceptionClass::Svc64),
        (0x16, ExceptionClass::Hvc64),
        (0x17, ExceptionClass::Smc64),
        (0x18, ExceptionClass::SystemRegister),
        (0x19, ExceptionClass::Sve),
        (0x1A, ExceptionClass::Eret),
        (0x1B, ExceptionClass::Tstart),
        (0x1C, ExceptionClass::PacFailure),
        (0x1D, ExceptionClass::Sme),
        (0x1E, ExceptionClass::GranuleProtection),
        (0x1F, ExceptionClass::ImplementationDefined),
        (0x20, ExceptionClass::InstructionAbortLower),
        (0x21, ExceptionClass::InstructionAbortSame),
        (0x22, ExceptionClass::PcAlignment),
        (0x24, ExceptionClass::DataAbortLower),
        (0x25, ExceptionClass::DataAbortSame),
        (0x26, ExceptionClass::SpAlignment),
        (0x27, ExceptionClass::MemoryOperation),
        (0x28, ExceptionClass::FpException32),
        (0x2C, ExceptionClass::FpException64),
        (0x2D, ExceptionClass::GuardedControlStack),
        (0x2F, ExceptionClass::SError),
        (0x30, ExceptionClass::BreakpointLower),
        (0x31, ExceptionClass::BreakpointSame),
        (0x32, ExceptionClass::SoftwareStepLower),
        (0x33, ExceptionClass::SoftwareStepSame),
        (0x34, ExceptionClass::WatchpointLower),
        (0x35, ExceptionClass::WatchpointSame),
        (0x38, ExceptionClass::Bkpt32),
        (0x3A, ExceptionClass::VectorCatch32),
        (0x3C, ExceptionClass::Brk64),
        (0x3D, ExceptionClass::Profiling),
    ];
    for (ec, class) in table {
        assert_eq!(ExceptionClass::from_ec(ec), class, "EC {ec:#x}");
        assert_eq!(class.ec(), ec);
    }
    // Everything else in the 6-bit space is unallocated and round-trips as Other.
    for ec in 0..64u8 {
        if !table.iter().any(|&(known, _)| known == ec) {
            assert_eq!(ExceptionClass::from_ec(ec), ExceptionClass::Other(ec));
            assert_eq!(ExceptionClass::Other(ec).ec(), ec);
        }
    }
}
