//! The first instructions of a test guest: the arm64 Image header, the boot CPU's
//! entry, the secondary CPUs' entry and the EL1 exception vector table.
//!
//! Aerie enters the boot vCPU at the start of the image at EL1h with the MMU off,
//! D/A/I/F masked and x0 = the guest physical address of the device tree it wrote
//! (Linux's `booting.rst` protocol). Secondary vCPUs arrive through PSCI `CPU_ON`
//! in the same state with x0 = the context ID their starter passed (DEN 0022, 6.4:
//! "CPU_ON"); the runtime uses it as the CPU's stack slot.

use core::arch::global_asm;

use crate::smccc::hypercall;

/// Where the image is linked and must run: the start of guest RAM, with
/// `text_offset` 0. Keep in step with `linker/test-guest.ld`.
pub const LINK_BASE: u64 = 0x4000_0000;
/// The number of CPU slots, each with its own stack; slot 0 is the boot CPU. Keep in
/// step with `linker/test-guest.ld`.
pub const MAX_CPUS: usize = 16;
/// Bytes of stack per CPU slot. Keep in step with `linker/test-guest.ld`.
pub const STACK_SIZE: usize = 16 * 1024;

/// Flags word of the Image header (`booting.rst`): little-endian (bit 0 clear),
/// 4 KiB pages (bits 2:1 = 1), may be placed anywhere in RAM (bit 3 set).
const IMAGE_FLAGS: u64 = (1 << 1) | (1 << 3);

/// Bytes the vector entry pushes: x0..x18, x29 and x30 (21 registers), rounded up
/// to keep the stack 16-byte aligned.
const FRAME_SIZE: usize = 176;
/// Offset of x30 in the frame: after x0..x18 and x29.
pub(crate) const FRAME_LR: usize = 160;

/// Exit status when the image does not run at [`LINK_BASE`] (nothing would work:
/// every absolute address in it is the linked one).
pub const EXIT_WRONG_ADDRESS: u64 = 97;
/// Exit status when a secondary CPU starts with a context ID that is no stack slot.
pub const EXIT_BAD_SLOT: u64 = 96;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    // arm64 Image header (Documentation/arch/arm64/booting.rst).
    b       1f                          // code0: jump over the header
    .word   0                           // code1
    .quad   0                           // text_offset: load at the start of RAM
    .quad   __image_size                // image_size, including bss and stacks
    .quad   {flags}                     // flags
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .word   0                           // res5: no PE/COFF header

1:  mov     x19, x0                     // the device tree, kept for Rust
    // Nothing was relocated at run time: refuse to run anywhere else.
    adr     x1, _start
    mov     x2, #{link_base}
    cmp     x1, x2
    b.ne    3f

    // Zero the bss (16-byte aligned by the linker script).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       2b

3:  adr     x1, wrong_address_message
    adr     x2, wrong_address_message_end
    sub     x2, x2, x1
    mov     x3, #{exit_wrong_address}
    b       aerie_guest_die

    // Slot 0's stack is the topmost one.
4:  adrp    x1, __stacks_end
    add     x1, x1, :lo12:__stacks_end
    mov     sp, x1
    adrp    x1, aerie_guest_vectors
    add     x1, x1, :lo12:aerie_guest_vectors
    msr     VBAR_EL1, x1
    isb
    mov     x0, x19
    bl      aerie_guest_start
5:  wfi
    b       5b

    .text
    .global aerie_guest_secondary_entry
    .balign 4
aerie_guest_secondary_entry:
    // x0: the context ID given to CPU_ON, which is this CPU's stack slot.
    cmp     x0, #{max_cpus}
    b.hs    6f
    cbz     x0, 6f                      // slot 0 belongs to the boot CPU
    adrp    x1, __stacks_end
    add     x1, x1, :lo12:__stacks_end
    mov     x2, #{stack_size}
    msub    x1, x0, x2, x1              // top of slot x0 = end - x0 * size
    mov     sp, x1
    adrp    x1, aerie_guest_vectors
    add     x1, x1, :lo12:aerie_guest_vectors
    msr     VBAR_EL1, x1
    isb
    bl      aerie_guest_secondary_start
7:  wfi
    b       7b

6:  adr     x1, bad_slot_message
    adr     x2, bad_slot_message_end
    sub     x2, x2, x1
    mov     x3, #{exit_bad_slot}
    b       aerie_guest_die

    // Without a stack: print x2 bytes at x1, then exit with status x3.
aerie_guest_die:
    mov     x19, x3
    movz    x0, #{debug_write_hi}, lsl #16
    movk    x0, #{debug_write_lo}
    hvc     #0
    movz    x0, #{exit_hi}, lsl #16
    movk    x0, #{exit_lo}
    mov     x1, x19
    hvc     #0
8:  wfi
    b       8b

    .section .rodata
wrong_address_message:
    .ascii  "FAIL: the test guest does not run at its link address 0x40000000 (text_offset 0)\n"
wrong_address_message_end:
bad_slot_message:
    .ascii  "FAIL: a secondary CPU started with a context ID that is not a stack slot\n"
bad_slot_message_end:

    // EL1 exception vectors (Arm ARM D1.3.1): 16 entries of 0x80 bytes, in four
    // groups (current EL with SP_EL0, current EL with SP_ELx, lower EL AArch64,
    // lower EL AArch32) of synchronous, IRQ, FIQ and SError. Each entry saves the
    // caller-saved registers and calls aerie_guest_exception(entry number, frame).
    .text
    .balign 2048
aerie_guest_vectors:
    .irp    kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       aerie_guest_exception_common
    .endr

aerie_guest_exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #{frame_lr}]
    mov     x1, sp
    bl      aerie_guest_exception
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #{frame_lr}]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#,
    flags = const IMAGE_FLAGS,
    link_base = const LINK_BASE,
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
    frame = const FRAME_SIZE,
    frame_lr = const FRAME_LR,
    exit_wrong_address = const EXIT_WRONG_ADDRESS,
    exit_bad_slot = const EXIT_BAD_SLOT,
    debug_write_hi = const hypercall::DEBUG_WRITE >> 16,
    debug_write_lo = const hypercall::DEBUG_WRITE & 0xFFFF,
    exit_hi = const hypercall::EXIT >> 16,
    exit_lo = const hypercall::EXIT & 0xFFFF,
);

unsafe extern "C" {
    /// Where a secondary CPU starts (the `CPU_ON` entry point); x0 = its slot.
    fn aerie_guest_secondary_entry();
    /// The first byte after the image, its bss and its stacks (linker script).
    static __image_end: u8;
}

/// The guest physical address of the first byte after the image and everything it
/// uses (bss and stacks): what the Image header's `image_size` covers.
pub fn image_end() -> u64 {
    (&raw const __image_end) as u64
}

/// The guest physical address of the secondary CPUs' entry point, for `CPU_ON`.
/// The MMU is off, so it is the address the code runs at.
pub fn secondary_entry_address() -> u64 {
    aerie_guest_secondary_entry as *const () as usize as u64
}
