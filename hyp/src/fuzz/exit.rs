//! Fuzz target of exit decoding: trap syndromes and fault addresses, as a guest can
//! provoke them, through the decoder, the MMIO emulation and the injected
//! exceptions that follow.

use crate::esr::Esr;
use crate::exit::{Exit, TrapInfo, VectorKind};
use crate::inject::{self, GuestState, Injection};
use crate::mmio::{self, GuestRegisters, MmioResult, MmioTarget};
use aerie_devices::fuzz::Input;
use aerie_devices::mmio::AccessWidth;
use alloc::format;

/// The most traps one input decodes.
const MAX_TRAPS: usize = 2000;

/// Exception classes a guest reaches EL2 with (WFx, MCR/MRC, HVC, SMC, MSR/MRS, SVE,
/// instruction and data aborts, SError, debug), to make plausible syndromes often.
const GUEST_CLASSES: [u64; 16] = [
    0x00, 0x01, 0x03, 0x07, 0x0E, 0x16, 0x17, 0x18, 0x19, 0x20, 0x21, 0x24, 0x25, 0x2F, 0x30, 0x3C,
];

/// `HPFAR_EL2.FIPA`: bits \[43:4\], bits \[51:12\] of the IPA.
const FIPA_MASK: u64 = ((1 << 40) - 1) << 4;

/// x0 to x30, recording that nothing outside them is touched.
struct Registers([u64; 31]);

impl GuestRegisters for Registers {
    fn get(&self, register: u8) -> u64 {
        self.0[usize::from(register)]
    }

    fn set(&mut self, register: u8, value: u64) {
        self.0[usize::from(register)] = value;
    }
}

/// A device answering (or not) every address, recording the last write.
struct Device {
    /// What reads return, before truncation; `None`: nothing is mapped.
    answer: Option<u64>,
    /// The last write's width and value.
    written: Option<(AccessWidth, u64)>,
}

impl MmioTarget for Device {
    fn read(&mut self, _address: u64, _width: AccessWidth) -> Option<u64> {
        self.answer
    }

    fn write(&mut self, _address: u64, width: AccessWidth, value: u64) -> Option<()> {
        self.written = Some((width, value));
        self.answer.map(|_| ())
    }
}

/// A syndrome: anything, or a guest exception class with a random ISS (and ISS2).
fn syndrome(input: &mut Input) -> u64 {
    match input.choose(4) {
        0 => input.u64(),
        _ => {
            let class = GUEST_CLASSES[input.choose(GUEST_CLASSES.len() as u32) as usize];
            let il = u64::from(input.choose(8) != 0) << 25;
            let iss = u64::from(input.u32()) & 0x1FF_FFFF;
            let iss2 = if input.choose(4) == 0 {
                u64::from(input.u32()) & 0xFF_FFFF
            } else {
                0
            };
            iss2 << 32 | class << 26 | il | iss
        }
    }
}

/// Checks an injected exception: it returns to the faulting instruction, saves the
/// old PSTATE, and enters EL1h with every interrupt masked at a synchronous vector.
fn check_injection(state: &GuestState, injection: &Injection) {
    assert_eq!(injection.elr_el1, state.pc);
    assert_eq!(injection.spsr_el1, state.pstate);
    assert_eq!(injection.pc & !0x7FF, state.vbar_el1 & !0x7FF);
    assert!(matches!(
        injection.pc & 0x7FF,
        0x000 | 0x200 | 0x400 | 0x600
    ));
    // M = EL1h (0b00101), D, A, I and F set.
    assert_eq!(injection.pstate & 0x1F, 0b00101);
    assert_eq!(injection.pstate & 0x3C0, 0x3C0);
}

/// Emulates a data abort's access against a device and checks the registers.
fn check_emulation(input: &mut Input, abort: &crate::exit::GuestDataAbort) {
    let Some(access) = abort.access else {
        return;
    };
    let mut registers = Registers([0; 31]);
    for register in &mut registers.0 {
        *register = input.u64();
    }
    let before = registers.0;
    let mut device = Device {
        answer: input.bool().then(|| input.u64()),
        written: None,
    };
    let result = mmio::emulate(&access, abort.ipa.unwrap_or(0), &mut registers, &mut device);
    assert_eq!(result == MmioResult::Done, device.answer.is_some());
    let register_bits = if access.sixty_four {
        u64::MAX
    } else {
        0xFFFF_FFFF
    };
    if access.is_write {
        assert_eq!(registers.0, before, "a store changed a register");
        let (width, value) = device.written.expect("a store reaches the device");
        assert_eq!(width, access.width);
        assert_eq!(value & !register_bits, 0);
        if access.register >= 31 {
            assert_eq!(value, 0, "a store from the zero register");
        }
    } else {
        for (n, (now, was)) in registers.0.iter().zip(before).enumerate() {
            if n != usize::from(access.register) || result != MmioResult::Done {
                assert_eq!(*now, was, "a load changed x{n}");
            }
        }
        if let (Some(&value), MmioResult::Done) =
            (registers.0.get(usize::from(access.register)), result)
        {
            assert_eq!(value & !register_bits, 0);
        }
    }
}

/// Decodes random traps: the input is a sequence of (`ESR_EL2`, `FAR_EL2`,
/// `HPFAR_EL2`, vector, guest state) records.
///
/// Checks that decoding and describing (`Display`) never panic; that a guest
/// physical address comes only from `HPFAR_EL2.FIPA` (and `FAR_EL2`'s page offset);
/// that an access to emulate never comes with a stage-1 walk fault; that register
/// numbers fit in 5 bits; that emulating a decoded MMIO access touches only its
/// transfer register, within the register's width; and that every exception
/// injected in answer returns to the faulting instruction and enters the guest's
/// EL1h vector with interrupts masked.
pub fn exit_decode(data: &[u8]) {
    let mut input = Input::new(data);
    let mut traps = 0;
    while !input.is_empty() && traps < MAX_TRAPS {
        traps += 1;
        let info = TrapInfo {
            esr: syndrome(&mut input),
            far: input.u64(),
            hpfar: match input.choose(4) {
                0 => input.u64(),
                _ => input.u64() & FIPA_MASK,
            },
        };
        let vector = match input.choose(16) {
            0 => VectorKind::Irq,
            1 => VectorKind::Fiq,
            2 => VectorKind::SError,
            _ => VectorKind::Synchronous,
        };
        let state = GuestState {
            pc: input.u64(),
            pstate: input.u64(),
            vbar_el1: input.u64(),
            sctlr_el1: input.u64(),
        };
        let esr = Esr(info.esr);
        assert!(matches!(esr.instruction_len(), 2 | 4));
        let _ = format!("{} {}", esr.syndrome(), esr.class());
        let exit = Exit::from_vector(vector, &info);
        assert!(!format!("{exit}").is_empty());
        let page = (info.hpfar & FIPA_MASK) << 8;
        let check_ipa = |ipa: Option<u64>| {
            if let Some(ipa) = ipa {
                assert_eq!(ipa & !0xFFF, page, "IPA {ipa:#x} from {info:x?}");
                assert!(ipa < 1 << 52);
            }
        };
        match exit {
            Exit::DataAbort(abort) => {
                check_ipa(abort.ipa);
                assert!(abort.access.is_none() || !abort.s1ptw);
                if let Some(access) = abort.access {
                    assert!(access.register <= 31);
                }
                check_emulation(&mut input, &abort);
                let injection = inject::external_data_abort(&state, info.far, abort.is_write);
                check_injection(&state, &injection);
                assert_eq!(injection.far_el1, Some(info.far));
            }
            Exit::InstructionAbort { ipa, .. } => {
                check_ipa(ipa);
                check_injection(
                    &state,
                    &inject::external_instruction_abort(&state, info.far),
                );
            }
            Exit::SystemRegister(access) => {
                assert!(access.register <= 31);
                check_injection(&state, &inject::undefined_instruction(&state));
            }
            Exit::SetWayCacheOp { register, .. } => assert!(register <= 31),
            Exit::Wfit {
                timeout_register: Some(register),
            }
            | Exit::Wfet {
                timeout_register: Some(register),
            } => assert!(register <= 31),
            Exit::Other { .. } => {
                check_injection(&state, &inject::undefined_instruction(&state));
            }
            _ => {}
        }
    }
}
