//! The `log` backend: timestamped lines on the console.
//!
//! ```text
//! [    0.004120] INFO  heap: 8 MiB at 0x40400000
//! ```
//! The timestamp is seconds since Aerie started, from the system counter.

use crate::arch::cpu;
use aerie_hyp::bootargs::LogLevel;
use core::sync::atomic::{AtomicU64, Ordering};
use log::{LevelFilter, Log, Metadata, Record};

/// The system counter when Aerie started.
static START: AtomicU64 = AtomicU64::new(0);

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Records the start time; call first thing.
pub fn mark_start() {
    START.store(cpu::counter(), Ordering::Relaxed);
}

/// Installs the logger at `level`. Needs the MMU on (it uses atomics).
pub fn init(level: LogLevel) {
    let filter = match level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(filter);
    }
}

/// Microseconds since [`mark_start`].
pub fn uptime_micros() -> u64 {
    let ticks = cpu::counter().wrapping_sub(START.load(Ordering::Relaxed));
    let frequency = cpu::counter_frequency().max(1);
    (u128::from(ticks) * 1_000_000 / u128::from(frequency)) as u64
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let micros = uptime_micros();
            crate::console::write_fmt(format_args!(
                "[{:>5}.{:06}] {:<5} {}\n",
                micros / 1_000_000,
                micros % 1_000_000,
                record.level(),
                record.args()
            ));
        }
    }

    fn flush(&self) {
        crate::console::flush();
    }
}
