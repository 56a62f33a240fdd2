//! Exits by reason: the categories Aerie's console `stats` command counts.

use crate::exit::Exit;

/// Why a vCPU exited (what Aerie did about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitReason {
    /// HVC/SMC: PSCI, SMCCC or Aerie hypercalls.
    Hypercall,
    /// An emulated device access.
    Mmio,
    /// A trapped system register (or set/way cache operation).
    SystemRegister,
    /// WFI (or WFIT/WFET/WFE).
    Wait,
    /// A physical interrupt.
    Interrupt,
    /// An abort injected into the guest for an instruction fetch it may not make.
    Injected,
    /// Anything else.
    Other,
}

/// Column titles, in [`ExitReason`] order.
pub const REASON_NAMES: [&str; 7] = [
    "hypercall",
    "mmio",
    "sysreg",
    "wait",
    "irq",
    "injected",
    "other",
];

impl ExitReason {
    /// The category of `exit`.
    pub fn of(exit: &Exit) -> Self {
        match exit {
            Exit::Irq | Exit::Fiq => Self::Interrupt,
            Exit::Hvc { .. } | Exit::Smc { .. } => Self::Hypercall,
            Exit::DataAbort(_) => Self::Mmio,
            Exit::SystemRegister(_) | Exit::SetWayCacheOp { .. } => Self::SystemRegister,
            Exit::Wfi | Exit::Wfit { .. } | Exit::Wfet { .. } | Exit::Wfe => Self::Wait,
            Exit::InstructionAbort { .. } => Self::Injected,
            _ => Self::Other,
        }
    }

    /// Its column title.
    pub fn name(self) -> &'static str {
        REASON_NAMES[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{TrapInfo, VectorKind};

    fn decoded(esr: u64) -> Exit {
        Exit::decode(&TrapInfo {
            esr,
            far: 0,
            hpfar: 0,
        })
    }

    /// ESR_EL2 with exception class `ec` and IL set.
    fn esr(ec: u64, iss: u64) -> u64 {
        (ec << 26) | (1 << 25) | iss
    }

    #[test]
    fn interrupts_count_as_interrupts_whatever_the_syndrome() {
        let info = TrapInfo {
            esr: 0x5A00_0000,
            far: 0,
            hpfar: 0,
        };
        let through = |vector| ExitReason::of(&Exit::from_vector(vector, &info));
        assert_eq!(through(VectorKind::Irq), ExitReason::Interrupt);
        assert_eq!(through(VectorKind::Fiq), ExitReason::Interrupt);
        assert_eq!(through(VectorKind::SError), ExitReason::Other);
        assert_eq!(through(VectorKind::Synchronous), ExitReason::Hypercall);
    }

    #[test]
    fn synchronous_exits_by_class() {
        let sync = |esr_value| ExitReason::of(&decoded(esr_value));
        assert_eq!(sync(esr(0x16, 0)), ExitReason::Hypercall, "HVC");
        assert_eq!(sync(esr(0x17, 0)), ExitReason::Hypercall, "SMC");
        assert_eq!(sync(esr(0x01, 0)), ExitReason::Wait, "WFI");
        assert_eq!(sync(esr(0x01, 1)), ExitReason::Wait, "WFE");
        // MRS x0, CNTP_CTL_EL0: op0 3, op1 3, CRn 14, CRm 2, op2 1, read.
        let cntp_ctl = (3 << 20) | (1 << 17) | (3 << 14) | (14 << 10) | (2 << 1) | 1;
        assert_eq!(sync(esr(0x18, cntp_ctl)), ExitReason::SystemRegister);
        // A stage-2 translation fault on a load with a valid syndrome.
        assert_eq!(sync(esr(0x24, (1 << 24) | 0b000111)), ExitReason::Mmio);
        assert_eq!(sync(esr(0x20, 0b000111)), ExitReason::Injected);
        assert_eq!(sync(esr(0x00, 0)), ExitReason::Other, "unknown class");
    }

    #[test]
    fn names_follow_the_order() {
        assert_eq!(ExitReason::Hypercall.name(), "hypercall");
        assert_eq!(ExitReason::Other.name(), "other");
        assert_eq!(ExitReason::Interrupt.name(), "irq");
    }
}
