//! Everything that is specific to the AArch64 architecture: assembly entry points,
//! exception vectors, cache and TLB maintenance, the EL2 MMU, and system registers.

pub mod cache;
pub mod cpu;
pub mod el1_state;
pub mod entry;
pub mod guest_entry;
pub mod hyp_config;
pub mod missing_fields;
pub mod mmu;
pub mod pmu;
pub mod semihosting;
pub mod stage2_ops;
pub mod vectors;
