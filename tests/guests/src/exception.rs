//! Exceptions the guest takes at EL1: [`catch`] arms the synchronous handler for one
//! expected exception (it records ESR/FAR/ELR and skips the faulting instruction),
//! [`catch_call`] does the same for a branch to an address that cannot be fetched;
//! IRQs go to the handler given to [`set_irq_handler`], if any; any other exception
//! is reported as a failure and stops the guest with [`EXIT_UNEXPECTED_EXCEPTION`].

use core::arch::asm;
use core::fmt;

use crate::cpu::{mpidr, read_sysreg};
use crate::entry::FRAME_LR;
use crate::shared::Shared;
use crate::smccc::exit;
use crate::{println, report};

/// Exit status after an exception nobody expected.
pub const EXIT_UNEXPECTED_EXCEPTION: u8 = 99;

/// ESR_ELx fields (Arm ARM D23.2.41 "ESR_EL1", D23.2.42 ISS encodings).
pub mod esr {
    /// Shift of the Exception Class field (bits 31:26).
    pub const EC_SHIFT: u32 = 26;
    /// Width mask of the Exception Class field.
    pub const EC_MASK: u64 = 0x3F;
    /// IL, bit 25: the trapped instruction was 32 bits long. Also set for exceptions
    /// with EC 0x00 and for data aborts without a valid instruction syndrome.
    pub const IL: u64 = 1 << 25;
    /// Mask of the Instruction Specific Syndrome (bits 24:0).
    pub const ISS_MASK: u64 = (1 << 25) - 1;
    /// EC 0x00: unknown reason (what an UNDEFINED instruction reports).
    pub const EC_UNKNOWN: u64 = 0x00;
    /// EC 0x21: instruction abort taken without a change in exception level.
    pub const EC_INSTRUCTION_ABORT_SAME_EL: u64 = 0x21;
    /// EC 0x25: data abort taken without a change in exception level.
    pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
    /// Data abort ISS: Data Fault Status Code (bits 5:0).
    pub const DFSC_MASK: u64 = 0x3F;
    /// DFSC (and IFSC) 0b010000: synchronous external abort, not on a translation
    /// table walk.
    pub const DFSC_SYNC_EXTERNAL_ABORT: u64 = 0b01_0000;
    /// Data abort ISS: WnR, bit 6: the abort was caused by a write.
    pub const WNR: u64 = 1 << 6;
    /// Data abort ISS: FnV, bit 10: FAR is not valid.
    pub const FNV: u64 = 1 << 10;
    /// Data abort ISS: ISV, bit 24: bits 23:14 hold a valid instruction syndrome.
    pub const ISV: u64 = 1 << 24;
}

/// A synchronous exception the guest took and survived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    /// ESR_EL1: the syndrome.
    pub esr: u64,
    /// FAR_EL1: the faulting address (meaningful for aborts).
    pub far: u64,
    /// ELR_EL1: the address of the instruction that took the exception.
    pub elr: u64,
}

impl Exception {
    /// The Exception Class.
    pub fn ec(&self) -> u64 {
        (self.esr >> esr::EC_SHIFT) & esr::EC_MASK
    }

    /// The Instruction Specific Syndrome.
    pub fn iss(&self) -> u64 {
        self.esr & esr::ISS_MASK
    }

    /// The Data (or Instruction) Fault Status Code of an abort.
    pub fn dfsc(&self) -> u64 {
        self.esr & esr::DFSC_MASK
    }

    /// Whether the IL bit is set.
    pub fn il(&self) -> bool {
        self.esr & esr::IL != 0
    }

    /// Whether a data abort was caused by a write (WnR).
    pub fn is_write(&self) -> bool {
        self.esr & esr::WNR != 0
    }

    /// Whether FAR_EL1 holds the faulting address (FnV clear).
    pub fn far_valid(&self) -> bool {
        self.esr & esr::FNV == 0
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ESR_EL1 {:#x} (EC {:#x}, ISS {:#x}), FAR_EL1 {:#x}, ELR_EL1 {:#x}",
            self.esr,
            self.ec(),
            self.iss(),
            self.far,
            self.elr
        )
    }
}

/// Describes the result of [`catch`] for a failure message: the exception, or
/// "no exception".
pub fn describe(taken: Option<Exception>) -> impl fmt::Display {
    struct Describe(Option<Exception>);
    impl fmt::Display for Describe {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.0 {
                Some(exception) => write!(f, "took an exception: {exception}"),
                None => write!(f, "no exception"),
            }
        }
    }
    Describe(taken)
}

/// Not armed.
const UNARMED: u64 = u64::MAX;
/// How the handler resumes after the expected exception: at the next instruction.
const RESUME_NEXT: u64 = 0;
/// How the handler resumes after the expected exception: at the link register, as
/// if the branch that faulted had returned.
const RESUME_AT_LR: u64 = 1;

/// The affinity of the CPU whose next synchronous exception is expected, or
/// [`UNARMED`].
static ARMED_BY: Shared = Shared::new(UNARMED);
/// [`RESUME_NEXT`] or [`RESUME_AT_LR`].
static RESUME: Shared = Shared::new(RESUME_NEXT);
/// Whether the expected exception was taken (1) or not (0).
static TAKEN: Shared = Shared::new(0);
static TAKEN_ESR: Shared = Shared::new(0);
static TAKEN_FAR: Shared = Shared::new(0);
static TAKEN_ELR: Shared = Shared::new(0);
/// Set while an unexpected exception is being reported, to stop at once if the
/// report itself faults.
static REPORTING: Shared = Shared::new(0);

/// Runs `f` armed for one exception resuming as `resume` says.
fn armed(resume: u64, f: impl FnOnce()) -> Option<Exception> {
    TAKEN.store(0);
    RESUME.store(resume);
    ARMED_BY.store(mpidr());
    f();
    ARMED_BY.store(UNARMED);
    (TAKEN.load() != 0).then(|| Exception {
        esr: TAKEN_ESR.load(),
        far: TAKEN_FAR.load(),
        elr: TAKEN_ELR.load(),
    })
}

/// Runs `f` expecting at most one synchronous exception on this CPU. If `f` takes
/// one, the handler records it and resumes at the instruction after the one that
/// took it; a second one is unexpected. Returns the exception, or `None`.
///
/// Put the instruction that should fault in its own `asm!` block inside `f`: the
/// handler skips exactly one instruction. Do not nest calls.
pub fn catch(f: impl FnOnce()) -> Option<Exception> {
    armed(RESUME_NEXT, f)
}

/// Branches with link to `target`, expecting the instruction fetch there to take an
/// exception; the handler records it and resumes at the return address, as if the
/// code at `target` had returned at once. Returns the exception, or `None` if the
/// code at `target` ran and returned.
pub fn catch_call(target: u64) -> Option<Exception> {
    armed(RESUME_AT_LR, || {
        // SAFETY: `target` is expected to be unfetchable, so no code runs there: the
        // handler resumes at the return address with every caller-saved register as
        // the exception found it, and the clobbers cover a real call anyway.
        unsafe { asm!("blr {}", in(reg) target, clobber_abi("C")) };
    })
}

/// Vector entry numbers (offset / 0x80): the four groups of four.
const GROUPS: [&str; 4] = [
    "the current EL with SP_EL0",
    "the current EL with SP_ELx",
    "a lower EL in AArch64",
    "a lower EL in AArch32",
];
/// The kinds within a group.
const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
/// Synchronous exception from the current EL with SP_ELx: the guest's own faults.
const CURRENT_EL_SPX_SYNC: u64 = 4;
/// IRQ from the current EL with SP_ELx: an interrupt the guest unmasked.
const CURRENT_EL_SPX_IRQ: u64 = 5;

/// The address of the IRQ handler, or 0 while there is none.
static IRQ_HANDLER: Shared = Shared::new(0);

/// Makes every IRQ (on every CPU) call `handler`, which acknowledges and ends the
/// interrupt; without a handler an IRQ is an unexpected exception.
pub fn set_irq_handler(handler: fn()) {
    IRQ_HANDLER.store(handler as *const () as usize as u64);
}
/// Size of every A64 instruction.
const INSTRUCTION_SIZE: u64 = 4;

/// Called by the vector entries with the entry number and the saved registers;
/// returns to `eret`.
#[unsafe(no_mangle)]
extern "C" fn aerie_guest_exception(entry: u64, frame: *const u8) {
    let exception = Exception {
        esr: read_sysreg!("ESR_EL1"),
        far: read_sysreg!("FAR_EL1"),
        elr: read_sysreg!("ELR_EL1"),
    };
    let irq_handler = IRQ_HANDLER.load() as usize;
    if entry == CURRENT_EL_SPX_IRQ && irq_handler != 0 {
        // SAFETY: IRQ_HANDLER holds 0 or the address of a `fn()`, stored by
        // `set_irq_handler`; a function pointer and its address have the same size.
        let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(irq_handler) };
        handler();
        return;
    }
    if entry == CURRENT_EL_SPX_SYNC && ARMED_BY.load() == mpidr() {
        ARMED_BY.store(UNARMED);
        TAKEN_ESR.store(exception.esr);
        TAKEN_FAR.store(exception.far);
        TAKEN_ELR.store(exception.elr);
        TAKEN.store(1);
        let resume = if RESUME.load() == RESUME_AT_LR {
            // SAFETY: `frame` is the stack frame the vector entry just pushed, which
            // holds x30 at FRAME_LR (8-byte aligned, the stack being 16-byte aligned).
            unsafe { frame.wrapping_add(FRAME_LR).cast::<u64>().read() }
        } else {
            exception.elr + INSTRUCTION_SIZE
        };
        // SAFETY: resumes the interrupted code where `catch` or `catch_call` promised
        // their caller: after the faulting instruction, or at the return address.
        unsafe { asm!("msr ELR_EL1, {}", in(reg) resume, options(nomem, nostack)) };
        return;
    }
    if REPORTING.load() != 0 {
        exit(EXIT_UNEXPECTED_EXCEPTION);
    }
    REPORTING.store(1);
    let index = entry as usize % 16;
    println!(
        "FAIL: unexpected {} exception from {} on CPU {:#x}: {}, SPSR_EL1 {:#x}",
        KINDS[index % 4],
        GROUPS[index / 4],
        mpidr(),
        exception,
        read_sysreg!("SPSR_EL1")
    );
    println!(
        "result: {} checks passed, {} failed before the unexpected exception",
        report::passed(),
        report::failed()
    );
    exit(EXIT_UNEXPECTED_EXCEPTION);
}
