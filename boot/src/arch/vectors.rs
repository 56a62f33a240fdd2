//! EL2 exception vectors.
//!
//! Exceptions from the guest (the lower-EL vectors) leave the guest through
//! `guest_exit` (see `super::guest_entry`) back into the vCPU run loop. Exceptions
//! taken at EL2 itself save the interrupted context into a [`TrapFrame`] on the
//! current stack and call [`aerie_exception`]: none is expected, so each is reported
//! with its decoded syndrome and Aerie stops. The one exception Aerie causes on purpose is the semihosting call
//! (`HLT #0xf000`) on a machine without semihosting: it is answered by skipping the
//! instruction, so "exit QEMU" falls back to halting on real boards.

use super::semihosting;
use aerie_hyp::esr::Syndrome;
use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// The registers saved on every exception, in the order the assembly stores them.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct TrapFrame {
    /// x0 to x30.
    pub x: [u64; 31],
    /// The stack pointer before the exception.
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
            "EL2 (SP_EL0)",
            "EL2",
            "a lower EL (AArch64)",
            "a lower EL (AArch32)",
        ][(index / 4) as usize];
        write!(f, "{kind} exception from {origin}")
    }
}

/// A vector for exceptions taken from EL2 itself: report and stop.
macro_rules! vector_entry {
    ($index:literal) => {
        concat!(
            ".balign 0x80\n",
            "sub sp, sp, #{frame}\n",
            "stp x0, x1, [sp, #0]\n",
            "mov x0, #",
            stringify!($index),
            "\n",
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

global_asm!(
    ".section .text.vectors, \"ax\"",
    ".balign 0x800",
    ".global exception_vectors",
    "exception_vectors:",
    vector_entry!(0),
    vector_entry!(1),
    vector_entry!(2),
    vector_entry!(3),
    vector_entry!(4),
    vector_entry!(5),
    vector_entry!(6),
    vector_entry!(7),
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
    add     x1, sp, #{frame}
    stp     x30, x1, [sp, #240]
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
);

/// Set while an exception report is being written, so that a fault inside the
/// report itself stops at once instead of recursing.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Called by the assembly for every exception.
#[unsafe(no_mangle)]
extern "C" fn aerie_exception(index: u64, frame: &mut TrapFrame) {
    let kind = VectorKind::from_index(index);
    if kind == Some(VectorKind::CurrentSync) && semihosting::is_unavailable_trap(frame) {
        semihosting::skip_unavailable_call(frame);
        return;
    }
    if REPORTING.swap(true, Ordering::Relaxed) {
        crate::stop::halt_after_nested_fault();
    }
    crate::stop::crash(format_args!("{}", ExceptionReport { kind, frame }))
}

/// The multi-line report of an unexpected exception.
struct ExceptionReport<'f> {
    kind: Option<VectorKind>,
    frame: &'f TrapFrame,
}

impl fmt::Display for ExceptionReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        match self.kind {
            Some(kind) => writeln!(f, "unexpected {kind}")?,
            None => writeln!(f, "unexpected exception from an unknown vector")?,
        }
        writeln!(f, "  {}", Syndrome::decode(frame.esr))?;
        writeln!(
            f,
            "  ESR_EL2 {:#018x}  FAR_EL2 {:#018x}\n  ELR_EL2 {:#018x}  SPSR_EL2 {:#018x} ({})",
            frame.esr,
            frame.far,
            frame.elr,
            frame.spsr,
            aerie_hyp::esr::SpsrEl2(frame.spsr)
        )?;
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
