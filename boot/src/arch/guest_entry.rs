//! The world switch: entering the guest with `ERET`, and coming back when it traps.
//!
//! [`enter_guest`] saves the host's callee-saved registers and stack pointer in a
//! [`SwitchFrame`], records the frame in the first per-CPU word at the top of this
//! CPU's exception stack (`aerie_hyp::stacks::PER_CPU_WORDS`), switches to SP_EL2
//! (the empty exception stack), loads the guest's general registers, SP_EL0, PC and
//! PSTATE, and returns to EL1. Any exception from the guest lands in the lower-EL
//! vectors, on the exception stack; they jump to `guest_exit`: it finds the frame
//! just above the two registers the vector pushed, stores the guest's registers back
//! into it, switches back to SP_EL0 with the host's stack pointer, restores the
//! host's registers, and returns from [`enter_guest`] as if it were an ordinary
//! function, with the kind of exception.
//!
//! Only general registers, SP_EL0, PC and PSTATE move on every exit. SP_EL0 has to:
//! it is the guest's EL0 stack pointer, and Aerie's own stack pointer at EL2 (see
//! `super::vectors`). The guest's EL1 system
//! registers, timer and FP/SIMD state stay in the CPU while its vCPU runs: each vCPU
//! owns one physical CPU and Aerie itself never touches EL1 or FP registers (it is
//! built soft-float), so they are saved and loaded only when a vCPU starts or stops
//! (`super::el1_state`).

use aerie_hyp::exit::VectorKind;
use aerie_hyp::vcpu::VcpuRegisters;
use core::arch::global_asm;
use core::mem::offset_of;

/// The host registers a function call must preserve, saved across a guest run.
#[repr(C)]
#[derive(Debug, Default)]
pub struct HostContext {
    /// x19 to x30.
    callee_saved: [u64; 12],
    /// The stack pointer.
    sp: u64,
}

/// Guest and host registers around one guest run. The top of the exception stack
/// points here while the guest runs.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SwitchFrame {
    /// The guest's general registers, PC and PSTATE.
    pub guest: VcpuRegisters,
    /// The host's saved registers.
    host: HostContext,
    /// The guest's SP_EL0.
    pub guest_sp_el0: u64,
}

impl SwitchFrame {
    /// A frame that will enter the guest with `guest`'s registers and SP_EL0.
    pub fn new(guest: VcpuRegisters, guest_sp_el0: u64) -> Self {
        Self {
            guest,
            host: HostContext::default(),
            guest_sp_el0,
        }
    }
}

/// Offsets shared with the assembly.
const GUEST_PC: usize = offset_of!(SwitchFrame, guest) + offset_of!(VcpuRegisters, pc);
const GUEST_PSTATE: usize = offset_of!(SwitchFrame, guest) + offset_of!(VcpuRegisters, pstate);
const HOST: usize = offset_of!(SwitchFrame, host);
const HOST_SP: usize = HOST + offset_of!(HostContext, sp);
const GUEST_SP_EL0: usize = offset_of!(SwitchFrame, guest_sp_el0);
const _: () = assert!(offset_of!(SwitchFrame, guest) == 0 && GUEST_PC == 248);
const _: () = assert!(GUEST_PSTATE == 256 && HOST == 264 && HOST_SP == 360);
const _: () = assert!(GUEST_SP_EL0 == 368 && aerie_hyp::stacks::PER_CPU_WORDS == 16);

// Assembly by hand: switching every general-purpose register between Aerie and the
// guest (and ERET) is beyond what a function written in Rust may do.
global_asm!(
    r#"
    .text
    .balign 4
    .global aerie_enter_guest
aerie_enter_guest:
    // x0: *mut SwitchFrame
    add     x1, x0, #{host}
    stp     x19, x20, [x1, #0]
    stp     x21, x22, [x1, #16]
    stp     x23, x24, [x1, #32]
    stp     x25, x26, [x1, #48]
    stp     x27, x28, [x1, #64]
    stp     x29, x30, [x1, #80]
    mov     x2, sp
    str     x2, [x1, #96]
    ldr     x2, [x0, #{sp_el0}]
    msr     SPSel, #1                   // SP_EL2: the empty exception stack,
    str     x0, [sp]                    // whose first per-CPU word is the frame
    msr     SP_EL0, x2                  // (Aerie's SP_EL0 is saved above)
    ldr     x2, [x0, #{pc}]
    msr     ELR_EL2, x2
    ldr     x2, [x0, #{pstate}]
    msr     SPSR_EL2, x2
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret

    .global guest_exit
guest_exit:
    // On the exception stack: the vector pushed the guest's x0 and x1 right below
    // the per-CPU words and put the exit kind in x0.
    ldr     x1, [sp, #16]
    stp     x2, x3, [x1, #16]
    stp     x4, x5, [x1, #32]
    stp     x6, x7, [x1, #48]
    stp     x8, x9, [x1, #64]
    stp     x10, x11, [x1, #80]
    stp     x12, x13, [x1, #96]
    stp     x14, x15, [x1, #112]
    stp     x16, x17, [x1, #128]
    stp     x18, x19, [x1, #144]
    stp     x20, x21, [x1, #160]
    stp     x22, x23, [x1, #176]
    stp     x24, x25, [x1, #192]
    stp     x26, x27, [x1, #208]
    stp     x28, x29, [x1, #224]
    str     x30, [x1, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #0]
    mrs     x2, ELR_EL2
    str     x2, [x1, #{pc}]
    mrs     x2, SPSR_EL2
    str     x2, [x1, #{pstate}]
    mrs     x2, SP_EL0
    str     x2, [x1, #{sp_el0}]
    add     x1, x1, #{host}
    ldr     x2, [x1, #96]
    msr     SPSel, #0                   // back to Aerie's stack
    mov     sp, x2
    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ret
"#,
    host = const HOST,
    pc = const GUEST_PC,
    pstate = const GUEST_PSTATE,
    sp_el0 = const GUEST_SP_EL0,
);

unsafe extern "C" {
    fn aerie_enter_guest(frame: *mut SwitchFrame) -> u64;
}

/// Runs the guest until its next exception; returns the lower-EL vector it took.
///
/// # Safety
/// The CPU must be set up to run this vCPU: HCR_EL2 with stage 2 on, VTTBR_EL2 with
/// the VM's tables (which map only guest memory and devices), the guest's EL1
/// state loaded, and PSTATE in `frame` naming EL1 or EL0 (never EL2).
pub unsafe fn enter_guest(frame: &mut SwitchFrame) -> VectorKind {
    // SAFETY: the caller guarantees the guest can only reach its own memory, and
    // the assembly preserves every register the Rust calling convention requires
    // (x19-x30, sp) across the guest run, returning here like a function. It uses
    // the exception stack only while the guest runs, when nothing else does: every
    // CPU's SP_EL2 rests below its per-CPU words (set up in `super::entry`).
    let kind = unsafe { aerie_enter_guest(frame) };
    match kind & 0b11 {
        0 => VectorKind::Synchronous,
        1 => VectorKind::Irq,
        2 => VectorKind::Fiq,
        _ => VectorKind::SError,
    }
}
