//! The saved program status (`SPSR_EL2`): which mode took the exception and what it
//! had masked.
//!
//! Layout: Arm ARM (DDI 0487), register SPSR_EL2 for exceptions taken from AArch64
//! (`N`, `Z`, `C`, `V` at bits 31:28, `D`, `A`, `I`, `F` at bits 9:6, `M[4:0]`).

use aarch64_cpu::registers::SPSR_EL2;
use core::fmt;
use tock_registers::LocalRegisterCopy;
use tock_registers::fields::Field;

/// The mode field `M[4:0]` of a saved program status register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpsrMode {
    /// EL0, AArch64.
    El0t,
    /// EL1 using SP_EL0.
    El1t,
    /// EL1 using SP_EL1.
    El1h,
    /// EL2 using SP_EL0.
    El2t,
    /// EL2 using SP_EL2.
    El2h,
    /// EL3 using SP_EL0.
    El3t,
    /// EL3 using SP_EL3.
    El3h,
    /// An AArch32 mode; the value is `M[4:0]`.
    Aarch32(u8),
    /// A reserved AArch64 encoding; the value is `M[4:0]`.
    Reserved(u8),
}

/// Encodings of `SPSR_ELx.M[4:0]`.
mod spsr_mode {
    /// `M[4]`: set when the interrupted code ran in AArch32 state.
    pub const AARCH32: u8 = 0b1_0000;
    pub const EL0T: u8 = 0b0000;
    pub const EL1T: u8 = 0b0100;
    pub const EL1H: u8 = 0b0101;
    pub const EL2T: u8 = 0b1000;
    pub const EL2H: u8 = 0b1001;
    pub const EL3T: u8 = 0b1100;
    pub const EL3H: u8 = 0b1101;
    pub const A32_USR: u8 = 0b1_0000;
    pub const A32_FIQ: u8 = 0b1_0001;
    pub const A32_IRQ: u8 = 0b1_0010;
    pub const A32_SVC: u8 = 0b1_0011;
    pub const A32_MON: u8 = 0b1_0110;
    pub const A32_ABT: u8 = 0b1_0111;
    pub const A32_HYP: u8 = 0b1_1010;
    pub const A32_UND: u8 = 0b1_1011;
    pub const A32_SYS: u8 = 0b1_1111;
}

impl SpsrMode {
    /// Decodes `M[4:0]` (higher bits are ignored).
    pub const fn decode(m: u8) -> Self {
        use spsr_mode::*;
        let m = m & 0b1_1111;
        if m & AARCH32 != 0 {
            return Self::Aarch32(m);
        }
        match m {
            EL0T => Self::El0t,
            EL1T => Self::El1t,
            EL1H => Self::El1h,
            EL2T => Self::El2t,
            EL2H => Self::El2h,
            EL3T => Self::El3t,
            EL3H => Self::El3h,
            other => Self::Reserved(other),
        }
    }
}

impl fmt::Display for SpsrMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use spsr_mode::*;
        let name = match *self {
            Self::El0t => "EL0t",
            Self::El1t => "EL1t",
            Self::El1h => "EL1h",
            Self::El2t => "EL2t",
            Self::El2h => "EL2h",
            Self::El3t => "EL3t",
            Self::El3h => "EL3h",
            Self::Aarch32(m) => {
                let mode = match m {
                    A32_USR => "usr",
                    A32_FIQ => "fiq",
                    A32_IRQ => "irq",
                    A32_SVC => "svc",
                    A32_MON => "mon",
                    A32_ABT => "abt",
                    A32_HYP => "hyp",
                    A32_UND => "und",
                    A32_SYS => "sys",
                    other => return write!(f, "AArch32 reserved mode {other:#07b}"),
                };
                return write!(f, "AArch32 {mode}");
            }
            Self::Reserved(m) => return write!(f, "reserved mode {m:#07b}"),
        };
        f.write_str(name)
    }
}

/// The interrupt masks of a saved program status (`PSTATE.DAIF`): a set bit means the
/// exception kind was masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Daif {
    /// Debug exceptions masked (`D`).
    pub debug: bool,
    /// SError masked (`A`).
    pub serror: bool,
    /// IRQ masked (`I`).
    pub irq: bool,
    /// FIQ masked (`F`).
    pub fiq: bool,
}

impl fmt::Display for Daif {
    /// The letters of the masked kinds (`DAIF`, `IF`, ...) or `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = [
            (self.debug, 'D'),
            (self.serror, 'A'),
            (self.irq, 'I'),
            (self.fiq, 'F'),
        ];
        if bits.iter().all(|&(masked, _)| !masked) {
            return f.write_str("nothing");
        }
        for (masked, letter) in bits {
            if masked {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// `SPSR_EL2.M[4:0]`: the mode, including the execution state bit `M[4]`
/// (aarch64-cpu 11.2 declares only `M[3:0]`).
const MODE: Field<u64, SPSR_EL2::Register> = Field::new(0b1_1111, 0);

/// A raw `SPSR_EL2` value: the PSTATE of the code that took the exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpsrEl2(pub u64);

impl SpsrEl2 {
    /// This value as a register copy, to read its fields.
    const fn copy(self) -> LocalRegisterCopy<u64, SPSR_EL2::Register> {
        LocalRegisterCopy::new(self.0)
    }

    /// The mode the exception was taken from.
    pub fn mode(self) -> SpsrMode {
        SpsrMode::decode(self.copy().read(MODE) as u8)
    }

    /// The interrupt masks that were in force.
    pub fn daif(self) -> Daif {
        let v = self.copy();
        Daif {
            debug: v.is_set(SPSR_EL2::D),
            serror: v.is_set(SPSR_EL2::A),
            irq: v.is_set(SPSR_EL2::I),
            fiq: v.is_set(SPSR_EL2::F),
        }
    }
}

impl fmt::Display for SpsrEl2 {
    /// Formats e.g. `EL1h (nZCv, DAIF masked)`: the condition flags in upper case when
    /// set, then the masked interrupt kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.mode())?;
        let v = self.copy();
        for (field, letter) in [
            (SPSR_EL2::N, 'n'),
            (SPSR_EL2::Z, 'z'),
            (SPSR_EL2::C, 'c'),
            (SPSR_EL2::V, 'v'),
        ] {
            let shown = if v.is_set(field) {
                letter.to_ascii_uppercase()
            } else {
                letter
            };
            write!(f, "{shown}")?;
        }
        write!(f, ", {} masked)", self.daif())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn spsr_modes() {
        // M[3:0]: EL0t 0b0000, EL1t 0b0100, EL1h 0b0101, EL2t 0b1000, EL2h 0b1001;
        // M[4] = 1 means AArch32 (0b10011 = svc, 0b10000 = usr).
        assert_eq!(SpsrEl2(0b0000).mode(), SpsrMode::El0t);
        assert_eq!(SpsrEl2(0b0100).mode(), SpsrMode::El1t);
        assert_eq!(SpsrEl2(0b0101).mode(), SpsrMode::El1h);
        assert_eq!(SpsrEl2(0b1000).mode(), SpsrMode::El2t);
        assert_eq!(SpsrEl2(0b1001).mode(), SpsrMode::El2h);
        assert_eq!(SpsrEl2(0b1_0011).mode(), SpsrMode::Aarch32(0b1_0011));
        assert_eq!(SpsrEl2(0b0001).mode(), SpsrMode::Reserved(1));
        assert_eq!(SpsrMode::Aarch32(0b1_0011).to_string(), "AArch32 svc");
        assert_eq!(SpsrMode::Aarch32(0b1_0000).to_string(), "AArch32 usr");
        assert_eq!(
            SpsrMode::Aarch32(0b1_0100).to_string(),
            "AArch32 reserved mode 0b10100"
        );
        assert_eq!(SpsrMode::Reserved(1).to_string(), "reserved mode 0b00001");
    }

    #[test]
    fn spsr_display() {
        // 0x3C5: D, A, I, F (bits 9..6 = 0x3C0) masked, mode EL1h (0b0101): the value
        // Linux's boot protocol requires on entry and Aerie uses for a new guest vCPU.
        let spsr = SpsrEl2(0x3C5);
        assert_eq!(
            spsr.daif(),
            Daif {
                debug: true,
                serror: true,
                irq: true,
                fiq: true
            }
        );
        assert_eq!(spsr.to_string(), "EL1h (nzcv, DAIF masked)");
        // Z and C set (bits 30, 29), IRQ and FIQ masked (bits 7, 6), EL0t.
        assert_eq!(SpsrEl2(0x6000_00C0).to_string(), "EL0t (nZCv, IF masked)");
        // Nothing masked, all flags set, EL2h.
        assert_eq!(
            SpsrEl2(0xF000_0009).to_string(),
            "EL2h (NZCV, nothing masked)"
        );
    }
}
