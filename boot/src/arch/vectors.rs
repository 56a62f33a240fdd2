//! EL2 exception vectors.
//!
//! Aerie runs at EL2 on SP_EL0 (`SPSel = 0`, see `aerie_hyp::stacks`); taking an
//! exception selects SP_EL2, which points at this CPU's own exception stack. So
//! every exception starts on a known-good stack, even when Aerie's own stack
//! pointer is garbage or has run into its guard page.
//!
//! Exceptions from the guest (the lower-EL vectors) leave the guest through
//! `guest_exit` (see `super::guest_entry`) back into the vCPU run loop. Exceptions
//! taken at EL2 itself save the interrupted context into a [`TrapFrame`] on the
//! exception stack and call [`aerie_exception`]: none is expected, so each is
//! reported with its decoded syndrome and what the stack pointer says (overflow,
//! broken), and Aerie stops. The one exception Aerie causes on purpose is the
//! semihosting call (`HLT #0xf000`) on a machine without semihosting: it is answered
//! by skipping the instruction, so "exit QEMU" falls back to halting on real boards.
//!
//! An exception taken while already on the exception stack (a fault in the
//! exception handler or in the world switch; the "EL2 with SP_EL2" vectors) cannot
//! trust SP_EL2. Those vectors find the stack's top in TPIDR_EL2 (set once per CPU,
//! see `super::entry`) and carry on below the interrupted SP_EL2 only when it lies in
//! the exception stack with at least [`NESTED_ROOM`] bytes to spare; otherwise they
//! start again at the top, and the report says so and never returns. Finding the top
//! needs a free register, so these frames do not keep x0 (reported as 0).

use super::semihosting;
use aerie_hyp::esr::Syndrome;
use aerie_hyp::stacks::{EXCEPTION_STACK_SIZE, StackVerdict};
use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// The registers saved on every exception, in the order the assembly stores them.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct TrapFrame {
    /// x0 to x30 (x0 reads 0 for exceptions taken on the exception stack).
    pub x: [u64; 31],
    /// The stack pointer before the exception: SP_EL0 for Aerie's code, SP_EL2 for
    /// code on the exception stack.
    pub sp: u64,
    /// ELR_EL2: where the exception was taken (or the next instruction).
    pub elr: u64,
    /// SPSR_EL2: PSTATE at the exception.
    pub spsr: u64,
    /// ESR_EL2: the syndrome.
    pub esr: u64,
    /// FAR_EL2: the faulting address, for aborts.
    pub far: u64,
}

/// Size of [`TrapFrame`], shared with the assembly (a multiple of 16).
const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE == 288 && FRAME_SIZE % 16 == 0);

/// Which of the 16 vectors was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum VectorKind {
    /// Synchronous, current EL, SP_EL0.
    CurrentSp0Sync = 0,
    /// IRQ, current EL, SP_EL0.
    CurrentSp0Irq = 1,
    /// FIQ, current EL, SP_EL0.
    CurrentSp0Fiq = 2,
    /// SError, current EL, SP_EL0.
    CurrentSp0SError = 3,
    /// Synchronous, current EL, SP_EL2.
    CurrentSync = 4,
    /// IRQ, current EL, SP_EL2.
    CurrentIrq = 5,
    /// FIQ, current EL, SP_EL2.
    CurrentFiq = 6,
    /// SError, current EL, SP_EL2.
    CurrentSError = 7,
    /// Synchronous from a lower EL in AArch64.
    LowerSync = 8,
    /// IRQ from a lower EL in AArch64.
    LowerIrq = 9,
    /// FIQ from a lower EL in AArch64.
    LowerFiq = 10,
    /// SError from a lower EL in AArch64.
    LowerSError = 11,
    /// Synchronous from a lower EL in AArch32.
    Lower32Sync = 12,
    /// IRQ from a lower EL in AArch32.
    Lower32Irq = 13,
    /// FIQ from a lower EL in AArch32.
    Lower32Fiq = 14,
    /// SError from a lower EL in AArch32.
    Lower32SError = 15,
}

impl VectorKind {
    fn from_index(index: u64) -> Option<Self> {
        use VectorKind::*;
        const ALL: [VectorKind; 16] = [
            CurrentSp0Sync,
            CurrentSp0Irq,
            CurrentSp0Fiq,
            CurrentSp0SError,
            CurrentSync,
            CurrentIrq,
            CurrentFiq,
            CurrentSError,
            LowerSync,
            LowerIrq,
            LowerFiq,
            LowerSError,
            Lower32Sync,
            Lower32Irq,
            Lower32Fiq,
            Lower32SError,
        ];
        ALL.get(usize::try_from(index).ok()?).copied()
    }
}

impl fmt::Display for VectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = *self as u64;
        let kind = ["synchronous", "IRQ", "FIQ", "SError"][(index % 4) as usize];
        let origin = [
            "EL2",
            "EL2 on the exception stack",
            "a lower EL (AArch64)",
            "a lower EL (AArch32)",
        ][(index / 4) as usize];
        write!(f, "{kind} exception from {origin}")
    }
}

/// Bytes a nested exception needs left on the exception stack to run on it.
const NESTED_ROOM: u64 = 4 << 10;
/// `x0` bit telling [`aerie_exception`] that a nested exception found the exception
/// stack exhausted or broken and restarted at its top.
const STACK_RESTARTED: u64 = 1 << 8;
/// Offset of [`TrapFrame::sp`].
const FRAME_SP: usize = core::mem::offset_of!(TrapFrame, sp);
/// The interrupted SP_EL2 may lie this many bytes below the top (minus
/// [`NESTED_ROOM`]) for a nested exception to carry on below it.
const NESTED_SPAN: u64 = EXCEPTION_STACK_SIZE - NESTED_ROOM;
const _: () = assert!(NESTED_SPAN % 4096 == 0 && NESTED_SPAN < 1 << 24 && FRAME_SP == 248);

/// A vector for exceptions taken from Aerie's code (on SP_EL0): the CPU switched to
/// SP_EL2, the empty exception stack. Saves x0, x1 and the interrupted SP_EL0.
macro_rules! aerie_vector_entry {
    ($index:literal) => {
        concat!(
            ".balign 0x80\n",
            "sub sp, sp, #{frame}\n",
            "stp x0, x1, [sp, #0]\n",
            "mrs x1, SP_EL0\n",
            "str x1, [sp, #{frame_sp}]\n",
            "mov x0, #",
            stringify!($index),
            "\n",
            "b exception_common\n"
        )
    };
}

/// A vector for exceptions taken on the exception stack itself (SP_EL2). With
/// T = TPIDR_EL2 (the stack's top) and d = SP - T + SPAN, SP is usable when
/// 0 <= d <= SPAN (unsigned compare); else SP restarts at T, the interrupted SP
/// recovered as d + T - SPAN for the report. x0 is lost (it holds T, then d).
macro_rules! nested_vector_entry {
    ($index:literal) => {
        concat!(
            ".balign 0x80\n",
            "mrs x0, TPIDR_EL2\n",
            "sub x0, sp, x0\n",
            "add x0, x0, #{span}\n",
            "cmp x0, #{span}\n",
            "b.hi 1f\n",
            "sub sp, sp, #{frame}\n",
            "stp xzr, x1, [sp, #0]\n",
            "add x1, sp, #{frame}\n",
            "str x1, [sp, #{frame_sp}]\n",
            "mov x0, #",
            stringify!($index),
            "\n",
            "b exception_common\n",
            "1: sub sp, sp, x0\n",
            "add sp, sp, #{span}\n",
            "add x0, sp, x0\n",
            "sub x0, x0, #{span}\n",
            "sub sp, sp, #{frame}\n",
            "stp xzr, x1, [sp, #0]\n",
            "str x0, [sp, #{frame_sp}]\n",
            "mov x0, #(",
            stringify!($index),
            " + {restarted})\n",
            "b exception_common\n"
        )
    };
}

/// A vector for exceptions taken from the guest: save its registers and return to
/// the hypervisor's run loop (`super::guest_entry`), with the kind (0 synchronous,
/// 1 IRQ, 2 FIQ, 3 SError; +4 from AArch32) in x0.
macro_rules! guest_vector_entry {
    ($kind:literal) => {
        concat!(
            ".balign 0x80\n",
            "stp x0, x1, [sp, #-16]!\n",
            "mov x0, #",
            stringify!($kind),
            "\n",
            "b guest_exit\n"
        )
    };
}

// Assembly by hand: the exception vector table has a fixed layout and runs
// before any Rust code can, which no crate provides for Aerie.
global_asm!(
    ".section .text.vectors, \"ax\"",
    ".balign 0x800",
    ".global exception_vectors",
    "exception_vectors:",
    aerie_vector_entry!(0),
    aerie_vector_entry!(1),
    aerie_vector_entry!(2),
    aerie_vector_entry!(3),
    nested_vector_entry!(4),
    nested_vector_entry!(5),
    nested_vector_entry!(6),
    nested_vector_entry!(7),
    guest_vector_entry!(0),
    guest_vector_entry!(1),
    guest_vector_entry!(2),
    guest_vector_entry!(3),
    guest_vector_entry!(4),
    guest_vector_entry!(5),
    guest_vector_entry!(6),
    guest_vector_entry!(7),
    r#"
exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mrs     x1, ELR_EL2
    mrs     x2, SPSR_EL2
    stp     x1, x2, [sp, #256]
    mrs     x1, ESR_EL2
    mrs     x2, FAR_EL2
    stp     x1, x2, [sp, #272]
    mov     x1, sp
    bl      aerie_exception
    ldp     x1, x2, [sp, #256]
    msr     ELR_EL2, x1
    msr     SPSR_EL2, x2
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    frame_sp = const FRAME_SP,
    span = const NESTED_SPAN,
    restarted = const STACK_RESTARTED,
);

/// Set while an exception report is being written, so that a fault inside the
/// report itself stops at once instead of recursing.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Called by the assembly for every exception taken at EL2, with the vector index
/// (plus [`STACK_RESTARTED`] when a nested exception restarted the exception stack).
#[unsafe(no_mangle)]
extern "C" fn aerie_exception(index: u64, frame: &mut TrapFrame) {
    let restarted = index & STACK_RESTARTED != 0;
    let kind = VectorKind::from_index(index & !STACK_RESTARTED);
    let synchronous = matches!(
        kind,
        Some(VectorKind::CurrentSp0Sync | VectorKind::CurrentSync)
    );
    if synchronous && !restarted && semihosting::is_unavailable_trap(frame) {
        semihosting::skip_unavailable_call(frame);
        return;
    }
    if REPORTING.swap(true, Ordering::Relaxed) {
        crate::stop::halt_after_nested_fault();
    }
    crate::stop::crash(format_args!(
        "{}",
        ExceptionReport {
            kind,
            restarted,
            frame
        }
    ))
}

/// The multi-line report of an unexpected exception.
struct ExceptionReport<'f> {
    kind: Option<VectorKind>,
    restarted: bool,
    frame: &'f TrapFrame,
}

impl fmt::Display for ExceptionReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        match self.kind {
            Some(kind) => writeln!(f, "unexpected {kind}")?,
            None => writeln!(f, "unexpected exception from an unknown vector")?,
        }
        let syndrome = Syndrome::decode(frame.esr);
        writeln!(f, "  {syndrome}")?;
        writeln!(
            f,
            "  ESR_EL2 {:#018x}  FAR_EL2 {:#018x}\n  ELR_EL2 {:#018x}  SPSR_EL2 {:#018x} ({})",
            frame.esr,
            frame.far,
            frame.elr,
            frame.spsr,
            aerie_hyp::esr::SpsrEl2(frame.spsr)
        )?;
        let far = far_is_valid(frame.esr).then_some(frame.far);
        let verdict = StackVerdict::judge(frame.sp, far, crate::stacks::known());
        writeln!(f, "  stack: {verdict}")?;
        if in_exception_vectors(frame.elr) {
            writeln!(
                f,
                "  the fault is in Aerie's exception entry (the vectors), taking another exception"
            )?;
        }
        if self.restarted {
            writeln!(
                f,
                "  the exception stack was exhausted or broken: this report restarted at its top"
            )?;
        }
        for (pair, registers) in frame.x.chunks(2).enumerate() {
            write!(f, "  x{:<2} {:#018x}", pair * 2, registers[0])?;
            match registers.get(1) {
                Some(value) => writeln!(f, "  x{:<2} {:#018x}", pair * 2 + 1, value)?,
                None => writeln!(f, "  sp  {:#018x}", frame.sp)?,
            }
        }
        Ok(())
    }
}

/// Whether `address` lies in the exception vector table (2 KiB at VBAR_EL2).
fn in_exception_vectors(address: u64) -> bool {
    unsafe extern "C" {
        static exception_vectors: u8;
    }
    /// Size of the vector table: 16 entries of 0x80 bytes.
    const TABLE_SIZE: u64 = 0x800;
    let start = &raw const exception_vectors as u64;
    (start..start + TABLE_SIZE).contains(&address)
}

/// Whether FAR_EL2 holds the faulting address for the exception with syndrome
/// `esr`: instruction and data aborts, PC alignment faults and watchpoints.
fn far_is_valid(esr: u64) -> bool {
    /// ESR_EL2.EC values whose FAR is valid: instruction abort (lower, same EL), PC
    /// alignment, data abort (lower, same EL), watchpoint (lower, same EL).
    const WITH_FAR: [u64; 7] = [0x20, 0x21, 0x22, 0x24, 0x25, 0x34, 0x35];
    WITH_FAR.contains(&(esr >> 26))
}
