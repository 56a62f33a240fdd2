//! Per-vCPU counters for Aerie's console `stats` command: exits by reason and
//! interrupts taken and injected. Plain atomics, updated by each vCPU's own CPU.

use aerie_hyp::platform::MAX_CPUS;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Why a vCPU exited (what Aerie did about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Reason {
    /// HVC/SMC: PSCI, SMCCC or Aerie hypercalls.
    Hypercall,
    /// An emulated device access.
    Mmio,
    /// A trapped system register.
    SystemRegister,
    /// WFI (or WFIT/WFET, CPU_SUSPEND).
    Wait,
    /// A physical interrupt.
    Interrupt,
    /// An abort or UNDEFINED injected into the guest.
    Injected,
    /// Anything else.
    Other,
}

/// Column titles, in [`Reason`] order.
const REASONS: [&str; 7] = [
    "hypercall",
    "mmio",
    "sysreg",
    "wait",
    "irq",
    "injected",
    "other",
];

/// One vCPU's counters.
struct Counters {
    exits: [AtomicU64; REASONS.len()],
    interrupts_injected: AtomicU64,
}

static STATS: [Counters; MAX_CPUS] = [const {
    Counters {
        exits: [const { AtomicU64::new(0) }; REASONS.len()],
        interrupts_injected: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Counts one exit of `vcpu`.
pub fn count(vcpu: usize, reason: Reason) {
    if let Some(counters) = STATS.get(vcpu) {
        counters.exits[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// All exits of `vcpu` so far.
pub fn exits(vcpu: usize) -> u64 {
    STATS.get(vcpu).map_or(0, |counters| {
        counters
            .exits
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    })
}

/// Counts interrupts put into `vcpu`'s list registers.
pub fn injected(vcpu: usize, count: u64) {
    if let Some(counters) = STATS.get(vcpu) {
        counters
            .interrupts_injected
            .fetch_add(count, Ordering::Relaxed);
    }
}

/// The table printed by `stats`, for `vcpus` vCPUs.
pub struct Table {
    /// How many vCPUs to show.
    pub vcpus: usize,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vcpu")?;
        for title in REASONS {
            write!(f, " {title:>10}")?;
        }
        writeln!(f, " {:>10}", "injected-irqs")?;
        for (vcpu, counters) in STATS.iter().enumerate().take(self.vcpus) {
            write!(f, "{vcpu:>4}")?;
            for exits in &counters.exits {
                write!(f, " {:>10}", exits.load(Ordering::Relaxed))?;
            }
            writeln!(
                f,
                " {:>10}",
                counters.interrupts_injected.load(Ordering::Relaxed)
            )?;
        }
        Ok(())
    }
}
