//! The host's wall clock, for the guest's real-time clock.
//!
//! Read once at boot from the host's PL031 (when its device tree has one) and carried
//! on from there by the generic counter, which runs at a fixed, known rate and never
//! stops: [`now`] costs no device access. Hosts without an RTC (the Raspberry Pi)
//! take the time from `aerie.time=` on Aerie's command line when it is given
//! (`cargo xtask run --board raspi4b` passes the host's); with neither, there is no
//! wall clock, and the guest gets no RTC.

use crate::arch::cpu;
use crate::drivers::pl031;
use aerie_devices::pl031::WallClock;
use aerie_hyp::platform::Platform;

/// The wall-clock time at one reading of the counter.
struct Base {
    /// Seconds since 1970-01-01 UTC.
    seconds: u64,
    /// The physical counter then.
    count: u64,
}

static BASE: spin::Once<Base> = spin::Once::new();

/// Reads the host's RTC, if it has one, else takes `given` (`aerie.time=`), if
/// given (boot CPU, once the MMU maps the RTC).
pub fn init(platform: &Platform<'_>, given: Option<u64>) {
    let seconds = match platform.rtc {
        // SAFETY: `platform.rtc` is the `reg` of the device tree's `arm,pl031` node,
        // which `start::enable_mmu` mapped as device memory.
        Some(rtc) => u64::from(unsafe { pl031::read_seconds(rtc.start() as usize) }),
        None => match given {
            Some(seconds) => {
                log::info!("wall clock: {seconds} s since 1970, from aerie.time= (no host RTC)");
                seconds
            }
            None => return,
        },
    };
    BASE.call_once(|| Base {
        seconds,
        count: cpu::counter(),
    });
}

/// Seconds since 1970-01-01 UTC now, if the host has a wall clock.
pub fn now() -> Option<u64> {
    let base = BASE.get()?;
    let elapsed = cpu::counter().wrapping_sub(base.count) / cpu::counter_frequency().max(1);
    Some(base.seconds + elapsed)
}

/// The host's wall clock for device models ([`aerie_devices::pl031::Pl031`]).
pub struct HostWallClock;

impl WallClock for HostWallClock {
    fn now(&self) -> u64 {
        // Only VMs of hosts with a wall clock get an RTC (see `start`).
        now().unwrap_or(0)
    }
}
