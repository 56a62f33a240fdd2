//! The first instructions: the arm64 Image header, self-relocation, the boot
//! stacks, and the entry point for secondary CPUs.
//!
//! Each CPU sets up its two stacks (see `aerie_hyp::stacks`) before anything else
//! can fault: SP_EL2 rests at the top of its exception stack, below the per-CPU
//! words; TPIDR_EL2 holds that top for the vectors; SP_EL0 is Aerie's stack, and
//! `SPSel = 0` makes it the stack of all of Aerie's code.
//!
//! The loader (QEMU `-kernel`, U-Boot `booti`, the Raspberry Pi firmware) jumps to
//! the start of the image at EL2 with the MMU off and x0 holding the device tree's
//! physical address (Linux's `booting.rst` protocol). Until the relocations are
//! applied no absolute address in the image is right, so this stage is assembly
//! using only PC-relative addressing.

use core::arch::global_asm;

/// Flags word of the Image header: little-endian (bit 0 clear), 4 KiB pages (bits
/// 1-2 = 1), may be placed anywhere in RAM (bit 3 set).
pub const IMAGE_FLAGS: u64 = (1 << 1) | (1 << 3);

/// The only relocation type a static position-independent executable contains.
const R_AARCH64_RELATIVE: u64 = 1027;

/// Byte offsets of the fields of [`SecondaryBoot`], shared with the assembly.
pub mod secondary_boot_offsets {
    /// `stack_top`.
    pub const STACK_TOP: usize = 0;
    /// `ttbr0`.
    pub const TTBR0: usize = 8;
    /// `tcr`.
    pub const TCR: usize = 16;
    /// `mair`.
    pub const MAIR: usize = 24;
    /// `sctlr`.
    pub const SCTLR: usize = 32;
    /// `vbar`.
    pub const VBAR: usize = 40;
    /// `cpu_index`.
    pub const CPU_INDEX: usize = 48;
    /// `exception_stack_top`.
    pub const EXCEPTION_STACK_TOP: usize = 56;
}

/// What a secondary CPU needs before it can run Rust code: its stack and the
/// primary's MMU settings. The primary fills one per CPU, cleans it to the point of
/// coherency (the secondary reads it with its caches off), and passes its physical
/// address as the PSCI `CPU_ON` context argument, which arrives in x0.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SecondaryBoot {
    /// Initial stack pointer.
    pub stack_top: u64,
    /// TTBR0_EL2 value.
    pub ttbr0: u64,
    /// TCR_EL2 value.
    pub tcr: u64,
    /// MAIR_EL2 value.
    pub mair: u64,
    /// SCTLR_EL2 value (MMU and caches on).
    pub sctlr: u64,
    /// VBAR_EL2 value.
    pub vbar: u64,
    /// The CPU's index in Aerie's CPU list.
    pub cpu_index: u64,
    /// The top of the CPU's exception stack (per-CPU words included).
    pub exception_stack_top: u64,
}

// Assembly by hand: the entry points run before any stack exists, which no crate
// can provide for Aerie.
global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    // arm64 Image header (Documentation/arch/arm64/booting.rst).
    b       primary_entry               // code0: jump over the header
    .word   0                           // code1
    .quad   0                           // text_offset: any 2 MiB-aligned base
    .quad   __image_size                // image_size, including bss, stack, tables
    .quad   {flags}                     // flags
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .word   0                           // res5: no PE/COFF header

primary_entry:
    mov     x19, x0                     // the device tree address, kept for Rust
    mrs     x20, CurrentEL
    lsr     x20, x20, #2                // exception level, 0..=3

    // Relocate: delta = where we run - where we were linked.
    adr     x21, _start
    movz    x22, #:abs_g3:LINK_BASE
    movk    x22, #:abs_g2_nc:LINK_BASE
    movk    x22, #:abs_g1_nc:LINK_BASE
    movk    x22, #:abs_g0_nc:LINK_BASE
    sub     x21, x21, x22
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
1:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16           // r_offset, r_info
    ldr     x5, [x1], #8                // r_addend
    cmp     x4, #{r_relative}
    b.ne    2f                          // anything else cannot be applied: stop
    add     x3, x3, x21
    add     x5, x5, x21
    str     x5, [x3]
    b       1b
2:  wfe
    b       2b

    // Zero the bss.
3:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
4:  cmp     x1, x2
    b.hs    5f
    stp     xzr, xzr, [x1], #16
    b       4b

5:  adrp    x1, __boot_exception_stack_top
    add     x1, x1, :lo12:__boot_exception_stack_top
    msr     SPSel, #1
    sub     sp, x1, #{per_cpu}          // SP_EL2: the exception stack
    msr     SPSel, #0
    adrp    x2, __boot_stack_top
    add     x2, x2, :lo12:__boot_stack_top
    mov     sp, x2                      // SP_EL0: Aerie's stack
    cmp     x20, #2
    b.ne    6f
    msr     TPIDR_EL2, x1               // the exception stack's top, for the vectors
    adrp    x1, exception_vectors
    add     x1, x1, :lo12:exception_vectors
    msr     VBAR_EL2, x1
    isb
6:  mov     x0, x19
    mov     x1, x20
    bl      aerie_primary_main
7:  wfe
    b       7b

    .text
    .global secondary_entry
    .balign 4
secondary_entry:
    // x0: physical address of this CPU's SecondaryBoot block. MMU and caches off.
    ldr     x1, [x0, #{exception_stack_top}]
    msr     TPIDR_EL2, x1
    msr     SPSel, #1
    sub     sp, x1, #{per_cpu}          // SP_EL2: the exception stack
    msr     SPSel, #0
    ldr     x1, [x0, #{stack_top}]
    mov     sp, x1                      // SP_EL0: Aerie's stack
    ldr     x1, [x0, #{vbar}]
    msr     VBAR_EL2, x1
    ldr     x1, [x0, #{mair}]
    msr     MAIR_EL2, x1
    ldr     x1, [x0, #{tcr}]
    msr     TCR_EL2, x1
    ldr     x1, [x0, #{ttbr0}]
    msr     TTBR0_EL2, x1
    isb
    tlbi    alle2
    dsb     nsh
    ic      iallu
    dsb     nsh
    isb
    ldr     x1, [x0, #{sctlr}]
    msr     SCTLR_EL2, x1
    isb
    ldr     x0, [x0, #{cpu_index}]
    bl      aerie_secondary_main
8:  wfe
    b       8b

    .global spin_table_entry
    .balign 8
spin_table_entry:
    // Spin-table CPUs arrive with x0 = 0: fetch the SecondaryBoot block that the
    // boot CPU published for the one CPU it is starting, then join the PSCI path.
    adrp    x0, AERIE_SPIN_TABLE_BOOT
    ldr     x0, [x0, :lo12:AERIE_SPIN_TABLE_BOOT]
    b       secondary_entry
"#,
    flags = const IMAGE_FLAGS,
    r_relative = const R_AARCH64_RELATIVE,
    stack_top = const secondary_boot_offsets::STACK_TOP,
    ttbr0 = const secondary_boot_offsets::TTBR0,
    tcr = const secondary_boot_offsets::TCR,
    mair = const secondary_boot_offsets::MAIR,
    sctlr = const secondary_boot_offsets::SCTLR,
    vbar = const secondary_boot_offsets::VBAR,
    cpu_index = const secondary_boot_offsets::CPU_INDEX,
    exception_stack_top = const secondary_boot_offsets::EXCEPTION_STACK_TOP,
    per_cpu = const aerie_hyp::stacks::PER_CPU_WORDS,
);

// The offsets above must match the struct layout.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(SecondaryBoot, stack_top) == secondary_boot_offsets::STACK_TOP);
    assert!(offset_of!(SecondaryBoot, ttbr0) == secondary_boot_offsets::TTBR0);
    assert!(offset_of!(SecondaryBoot, tcr) == secondary_boot_offsets::TCR);
    assert!(offset_of!(SecondaryBoot, mair) == secondary_boot_offsets::MAIR);
    assert!(offset_of!(SecondaryBoot, sctlr) == secondary_boot_offsets::SCTLR);
    assert!(offset_of!(SecondaryBoot, vbar) == secondary_boot_offsets::VBAR);
    assert!(offset_of!(SecondaryBoot, cpu_index) == secondary_boot_offsets::CPU_INDEX);
    assert!(
        offset_of!(SecondaryBoot, exception_stack_top)
            == secondary_boot_offsets::EXCEPTION_STACK_TOP
    );
};

/// The [`SecondaryBoot`] block of the CPU being started through a spin table. Such
/// CPUs get no argument, so the boot CPU publishes the block here (cleaned to the
/// point of coherency) and starts one CPU at a time.
#[unsafe(no_mangle)]
pub static AERIE_SPIN_TABLE_BOOT: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(0);

unsafe extern "C" {
    /// The secondary CPUs' entry point for PSCI `CPU_ON` (physical address = link
    /// address after relocation, since Aerie maps itself one-to-one).
    pub fn secondary_entry();
    /// The entry point written to a spin table's release address.
    pub fn spin_table_entry();
}
