//! Per-vCPU counters for Aerie's console `stats` command: exits by reason and
//! interrupts taken and injected. Plain atomics, updated by each vCPU's own CPU.

use aerie_hyp::platform::MAX_CPUS;
use aerie_hyp::run::exit_reason::{ExitReason, REASON_NAMES};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// One vCPU's counters.
struct Counters {
    exits: [AtomicU64; REASON_NAMES.len()],
    interrupts_injected: AtomicU64,
}

static STATS: [Counters; MAX_CPUS] = [const {
    Counters {
        exits: [const { AtomicU64::new(0) }; REASON_NAMES.len()],
        interrupts_injected: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Counts one exit of `vcpu`. Only `vcpu`'s own CPU counts its exits, so a plain
/// load and store do (no read-modify-write loop on every exit).
pub fn count(vcpu: usize, reason: ExitReason) {
    if let Some(counters) = STATS.get(vcpu) {
        let count = &counters.exits[reason as usize];
        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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
        for title in REASON_NAMES {
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
