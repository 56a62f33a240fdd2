//! Stage-2 operations on the running guest: removing stale TLB entries after a live
//! stage-2 entry changed, and translating a guest virtual address through the
//! guest's own stage 1 (for stage-2 permission faults, where HPFAR_EL2 is UNKNOWN).

use aarch64_cpu::asm::barrier;
use core::arch::asm;

/// PAR_EL1.F, bit 0: the translation failed.
const PAR_FAILED: u64 = 1;
/// PAR_EL1.PA, bits \[47:12\] of the output address (bits \[51:48\] with 52-bit
/// addresses are not used by Aerie's 39-bit guest address space).
const PAR_ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// The offset within a page.
const PAGE_OFFSET_MASK: u64 = 0xfff;

/// Removes every TLB entry, on every CPU, for the stage-2 translation of the page at
/// guest physical address `ipa` and every combined stage-1/stage-2 entry of the
/// current VMID: the sequence `aerie_hyp::stage2` documents. Must run with the VM's
/// VTTBR_EL2 loaded (any CPU running one of its vCPUs).
pub fn invalidate_ipa(ipa: u64) {
    // aarch64-cpu has no TLB maintenance instructions.
    // SAFETY: TLB maintenance and barriers only remove cached translations; they
    // change no memory and no register but the one operand.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi ipas2e1is, {page}",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            page = in(reg) ipa >> 12,
            options(nostack, preserves_flags),
        );
    }
}

/// Makes the stage-2 entries just written visible to every CPU's table walker
/// (entries that were invalid need no TLB maintenance, only this, before the guest
/// runs again: see `aerie_hyp::stage2`).
pub fn publish_entries() {
    barrier::dsb(barrier::ISHST);
}

/// The guest physical address of guest virtual address `va` as the guest's stage 1
/// (the EL1 translation registers still loaded on this CPU) translates it for an
/// EL1 read, or `None` if it does not. PAR_EL1 keeps the guest's value.
pub fn translate_guest_read(va: u64) -> Option<u64> {
    let par: u64;
    // aarch64-cpu has no address translation (AT) instructions, and PAR_EL1 must be
    // read back within the same sequence.
    // SAFETY: `AT S1E1R` at EL2 walks the guest's stage 1 and reports the result,
    // an IPA or a fault, in PAR_EL1 (a fault on the walk is reported there too, not
    // taken); PAR_EL1 is saved before and restored after, so the guest sees no
    // change. No memory is written.
    unsafe {
        asm!(
            "mrs {saved}, PAR_EL1",
            "at s1e1r, {va}",
            "isb",
            "mrs {par}, PAR_EL1",
            "msr PAR_EL1, {saved}",
            saved = out(reg) _,
            va = in(reg) va,
            par = out(reg) par,
            options(nostack, preserves_flags),
        );
    }
    (par & PAR_FAILED == 0).then_some((par & PAR_ADDRESS_MASK) | (va & PAGE_OFFSET_MASK))
}
