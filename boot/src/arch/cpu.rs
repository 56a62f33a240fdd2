//! Reading the CPU's identity and state from system registers, and idling.

use super::missing_fields;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::asm::random::ArmRng;
use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTHP_CTL_EL2, CNTPCT_EL0, DAIF, ID_AA64MMFR0_EL1, ID_AA64PFR0_EL1, MIDR_EL1,
    MPIDR_EL1, Readable, Writeable,
};
use aerie_hyp::cpu_model::{self, GuestCpu, IdRegisters, ModelOptions};

/// MPIDR_EL1 bits that identify a CPU: Aff3 [39:32] and Aff2..Aff0 [23:0].
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The affinity fields of this CPU's MPIDR_EL1, as device trees list them.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// MIDR_EL1: implementer, part number and revision.
pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// CNTFRQ_EL0: the system counter's frequency in Hz, as firmware set it.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// CNTPCT_EL0: the system counter now.
pub fn counter() -> u64 {
    CNTPCT_EL0.get()
}

/// Whether the CPU implements the RNDR random number instruction (FEAT_RNG).
pub fn has_random_number_instruction() -> bool {
    ArmRng::new().is_some()
}

/// A random number from RNDR, or `None` when the CPU has no RNDR or the hardware
/// could not produce one in reasonable time (PSTATE.Z set).
pub fn random_number() -> Option<u64> {
    ArmRng::new().and_then(|rng| rng.rndr())
}

/// Arms the EL2 physical timer to fire when the counter reaches `deadline`.
pub fn arm_hypervisor_timer(deadline: u64) {
    // aarch64-cpu declares no CNTHP_CVAL_EL2.
    // SAFETY: the EL2 physical timer belongs to Aerie; setting its compare value
    // only decides when PPI 26 is raised.
    unsafe {
        core::arch::asm!("msr CNTHP_CVAL_EL2, {}", in(reg) deadline,
            options(nomem, nostack, preserves_flags));
    }
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET);
    barrier::isb(barrier::SY);
}

/// Stops the EL2 physical timer.
pub fn stop_hypervisor_timer() {
    CNTHP_CTL_EL2.set(0);
    barrier::isb(barrier::SY);
}

/// True if the CPU implements the GICv3 system-register CPU interface
/// (ID_AA64PFR0_EL1.GIC != 0); a GICv2 host such as the Raspberry Pi has none.
pub fn has_gic_system_registers() -> bool {
    missing_fields::ID_AA64PFR0_EL1::GIC.read(ID_AA64PFR0_EL1.get()) != 0
}

/// ID_AA64MMFR0_EL1.PARange: the physical address size code (0 = 32 bits ...
/// 5 = 48 bits, 6 = 52 bits).
pub fn physical_address_range() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange)
}

/// Waits for an event or interrupt (`WFE`): the idle loop's body.
pub fn wait_for_event() {
    aarch64_cpu::asm::wfe();
}

/// Waits for an interrupt (`WFI`). Wakes for a pending physical interrupt even
/// while interrupts are masked at EL2, which is how Aerie takes them (as guest
/// exits, once it returns to the guest).
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// The body of a loop that waits for another CPU (a lock's holder, a flag it will
/// set): the `YIELD` hint. A real CPU may give way to another hardware thread; an
/// emulator running its CPUs one at a time (QEMU's single-threaded TCG) switches
/// to the next CPU, which may be the one being waited for, instead of spinning out
/// its time slice. (`core::hint::spin_loop` is an `ISB`, which neither does.)
pub fn relax() {
    // aarch64-cpu has no YIELD.
    // SAFETY: YIELD is a hint with no architectural effect.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// Wakes CPUs waiting in [`wait_for_event`] (`SEV`).
pub fn send_event() {
    aarch64_cpu::asm::sev();
}

/// Stops this CPU for good, with interrupts masked.
pub fn halt() -> ! {
    DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Generates [`read_id_register`] over the encodings of the feature ID space.
macro_rules! id_space {
    ($(($crm:literal, $op2:literal)),* $(,)?) => {
        /// Reads the feature ID register `S3_0_C0_C<crm>_<op2>`; 0 for an encoding
        /// outside CRm 1..=7.
        pub(super) fn read_id_register(crm: u8, op2: u8) -> u64 {
            match (crm, op2) {
                $(
                    ($crm, $op2) => {
                        let value: u64;
                        // By encoding: aarch64-cpu declares 11 of these 56 registers.
                        // SAFETY: reading a feature ID register has no side effects;
                        // the encodings of this space that the architecture has not
                        // allocated read as zero.
                        unsafe {
                            core::arch::asm!(
                                concat!("mrs {}, S3_0_C0_C", stringify!($crm), "_", stringify!($op2)),
                                out(reg) value, options(nomem, nostack, preserves_flags))
                        };
                        value
                    }
                )*
                _ => 0,
            }
        }
    };
}

id_space! {
    (1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7),
    (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7),
    (3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6), (3, 7),
    (4, 0), (4, 1), (4, 2), (4, 3), (4, 4), (4, 5), (4, 6), (4, 7),
    (5, 0), (5, 1), (5, 2), (5, 3), (5, 4), (5, 5), (5, 6), (5, 7),
    (6, 0), (6, 1), (6, 2), (6, 3), (6, 4), (6, 5), (6, 6), (6, 7),
    (7, 0), (7, 1), (7, 2), (7, 3), (7, 4), (7, 5), (7, 6), (7, 7),
}

/// This CPU's values of the feature ID registers the guest CPU model is made from
/// (the others stay zero: the model does not look at them).
pub fn id_registers() -> IdRegisters {
    let mut registers = IdRegisters::ZERO;
    for reg in cpu_model::host_registers() {
        registers.set(reg, read_id_register(reg.crm(), reg.op2()));
    }
    registers
}

/// CTR_EL0: the cache type (line sizes, IDC/DIC), which guests read directly.
pub fn cache_type() -> u64 {
    let value: u64;
    // aarch64-cpu declares no CTR_EL0.
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, CTR_EL0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// The CPU a guest sees on this CPU (`gic_v3`: the guest has a virtual GICv3;
/// `pmu`: it owns this CPU's PMU).
pub fn guest_cpu(gic_v3: bool, pmu: bool) -> GuestCpu {
    GuestCpu {
        id: cpu_model::guest_id_registers(&id_registers(), ModelOptions { gic_v3, pmu }),
        ctr: cache_type(),
    }
}
