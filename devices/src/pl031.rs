//! The guest's real-time clock: an Arm PrimeCell PL031, as on QEMU `virt`.
//!
//! The PL031 counts seconds (Linux's `rtc-pl031` reads it as seconds since 1970).
//! The guest's clock is kept as an offset from the host's wall clock, which the
//! caller supplies through [`WallClock`]: the count is `host now + offset`, a load
//! (RTCLR) sets the offset, and a snapshot saves the offset, so that a guest restored
//! later finds its clock moved on by the time that passed.
//!
//! Aerie's model has no alarm interrupt: the match register (RTCMR) and the interrupt
//! mask read back what the guest wrote, the raw status says whether the count has
//! reached the match value since it was set, but no interrupt line is raised (the
//! guest device tree gives the RTC none, so Linux offers no alarms).
//!
//! Reference: Arm PrimeCell Real Time Clock (PL031) Technical Reference Manual, DDI
//! 0224, chapter 3 (registers).

use crate::mmio::{AccessWidth, InvalidState, MmioDevice, Persist};
use alloc::boxed::Box;

/// RTCDR: the current count (read only).
const DATA: u64 = 0x000;
/// RTCMR: the match value.
const MATCH: u64 = 0x004;
/// RTCLR: writing loads the count.
const LOAD: u64 = 0x008;
/// RTCCR: bit 0 starts the clock (it cannot be stopped again).
const CONTROL: u64 = 0x00c;
/// RTCIMSC: interrupt mask set and clear (bit 0).
const INTERRUPT_MASK: u64 = 0x010;
/// RTCRIS: raw interrupt status (bit 0).
const RAW_STATUS: u64 = 0x014;
/// RTCMIS: masked interrupt status (bit 0).
const MASKED_STATUS: u64 = 0x018;
/// RTCICR: writing 1 clears the interrupt.
const INTERRUPT_CLEAR: u64 = 0x01c;
/// The peripheral and PrimeCell identification registers, `0xfe0..0x1000`.
const IDENTIFICATION: u64 = 0xfe0;

/// PeriphID0-3 and PCellID0-3, one byte each in the low bits of a word: part 0x031,
/// designer 0x41 (Arm), revision 1; the PrimeCell cookie 0xb105f00d. Linux's AMBA
/// bus matches the driver by these.
const ID_BYTES: [u8; 8] = [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The window the registers take in the guest's address space.
pub const WINDOW_SIZE: u64 = 0x1000;

/// The host's wall clock: whole seconds since 1970-01-01 UTC.
pub trait WallClock: Send {
    /// The time now.
    fn now(&self) -> u64;
}

/// What a snapshot keeps of the RTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pl031State {
    /// The guest's count minus the host's wall clock, in seconds (two's complement).
    pub offset: u64,
    /// RTCMR.
    pub match_value: u32,
    /// The count when RTCMR or RTCLR was last written: the raw interrupt status is
    /// set once the count has moved from there to the match value.
    pub armed_at: u32,
    /// RTCIMSC bit 0.
    pub interrupt_unmasked: bool,
    /// Whether the match interrupt was cleared (RTCICR) since it was armed.
    pub cleared: bool,
}

/// The guest's PL031.
pub struct Pl031 {
    clock: Box<dyn WallClock>,
    state: Pl031State,
}

impl Pl031 {
    /// An RTC that reads the host's time until the guest loads another.
    pub fn new(clock: Box<dyn WallClock>) -> Self {
        let mut rtc = Self {
            clock,
            state: Pl031State::default(),
        };
        rtc.state.armed_at = rtc.count();
        rtc
    }

    /// The count the guest reads now.
    pub fn count(&self) -> u32 {
        // The PL031 is a 32-bit counter: it wraps in 2106.
        self.clock.now().wrapping_add(self.state.offset) as u32
    }

    /// Whether the count has reached the match value since it was armed (and the
    /// interrupt was not cleared).
    fn raw_status(&self) -> bool {
        let run = self.state.match_value.wrapping_sub(self.state.armed_at);
        let elapsed = self.count().wrapping_sub(self.state.armed_at);
        !self.state.cleared && elapsed >= run
    }

    fn rearm(&mut self) {
        self.state.armed_at = self.count();
        self.state.cleared = false;
    }

    fn read_register(&self, offset: u64) -> u32 {
        match offset {
            DATA => self.count(),
            MATCH => self.state.match_value,
            LOAD => self.count(),
            // Started from power-on: Aerie's clock always runs.
            CONTROL => 1,
            INTERRUPT_MASK => u32::from(self.state.interrupt_unmasked),
            RAW_STATUS => u32::from(self.raw_status()),
            MASKED_STATUS => u32::from(self.raw_status() && self.state.interrupt_unmasked),
            IDENTIFICATION..WINDOW_SIZE => {
                u32::from(ID_BYTES[((offset - IDENTIFICATION) / 4) as usize])
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            MATCH => {
                self.state.match_value = value;
                self.rearm();
            }
            LOAD => {
                self.state.offset = u64::from(value).wrapping_sub(self.clock.now());
                self.rearm();
            }
            INTERRUPT_MASK => self.state.interrupt_unmasked = value & 1 != 0,
            INTERRUPT_CLEAR if value & 1 != 0 => self.state.cleared = true,
            // RTCCR: the clock cannot be stopped; reads-only and reserved: ignored.
            _ => {}
        }
    }

    /// The state a snapshot keeps.
    pub fn save(&self) -> Pl031State {
        self.state
    }

    /// Puts saved state back: the guest's clock keeps its offset from the host's, so
    /// it has moved on by the time between the save and now.
    pub fn restore(&mut self, state: &Pl031State) {
        self.state = *state;
    }
}

impl Persist for Pl031 {
    type State = Pl031State;

    fn save_state(&self) -> Pl031State {
        self.save()
    }

    /// Every state is one a PL031 can hold.
    fn restore_state(&mut self, state: &Pl031State) -> Result<(), InvalidState> {
        self.restore(state);
        Ok(())
    }
}

impl MmioDevice for Pl031 {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return 0;
        }
        u64::from(self.read_register(offset))
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return;
        }
        self.write_register(offset, value as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicU64, Ordering};

    /// A host clock the test moves by hand.
    #[derive(Clone)]
    struct Manual(Arc<AtomicU64>);

    impl WallClock for Manual {
        fn now(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn rtc_at(seconds: u64) -> (Pl031, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(seconds));
        (Pl031::new(Box::new(Manual(time.clone()))), time)
    }

    fn read(rtc: &mut Pl031, offset: u64) -> u64 {
        rtc.read(offset, AccessWidth::Word)
    }

    #[test]
    fn the_count_is_the_hosts_time_and_moves_with_it() {
        let (mut rtc, time) = rtc_at(1_765_000_000);
        assert_eq!(read(&mut rtc, DATA), 1_765_000_000);
        time.store(1_765_000_042, Ordering::Relaxed);
        assert_eq!(read(&mut rtc, DATA), 1_765_000_042);
        assert_eq!(read(&mut rtc, CONTROL), 1);
    }

    #[test]
    fn a_load_sets_the_guests_clock_which_then_runs() {
        let (mut rtc, time) = rtc_at(1_000);
        rtc.write(LOAD, AccessWidth::Word, 50);
        assert_eq!(read(&mut rtc, DATA), 50);
        time.store(1_010, Ordering::Relaxed);
        assert_eq!(read(&mut rtc, DATA), 60);
    }

    #[test]
    fn a_restored_clock_has_moved_on_by_the_time_between() {
        let (mut rtc, time) = rtc_at(1_000);
        rtc.write(LOAD, AccessWidth::Word, 500);
        let saved = rtc.save();
        // Restored an hour later on a new machine whose host clock reads 4_600.
        let (mut restored, _) = rtc_at(4_600);
        restored.restore(&saved);
        assert_eq!(read(&mut restored, DATA), 4_100);
        drop(time);
    }

    #[test]
    fn the_match_status_rises_at_the_match_value_and_clears() {
        let (mut rtc, time) = rtc_at(100);
        rtc.write(MATCH, AccessWidth::Word, 105);
        assert_eq!(read(&mut rtc, MATCH), 105);
        assert_eq!(read(&mut rtc, RAW_STATUS), 0);
        time.store(105, Ordering::Relaxed);
        assert_eq!(read(&mut rtc, RAW_STATUS), 1);
        assert_eq!(read(&mut rtc, MASKED_STATUS), 0, "masked until RTCIMSC");
        rtc.write(INTERRUPT_MASK, AccessWidth::Word, 1);
        assert_eq!(read(&mut rtc, MASKED_STATUS), 1);
        rtc.write(INTERRUPT_CLEAR, AccessWidth::Word, 1);
        assert_eq!(read(&mut rtc, RAW_STATUS), 0);
    }

    #[test]
    fn linux_finds_a_pl031_by_its_identification() {
        let (mut rtc, _) = rtc_at(0);
        let id = |rtc: &mut Pl031, first: u64| {
            (0..4).fold(0u32, |id, n| {
                id | (read(rtc, first + 4 * n) as u32) << (8 * n)
            })
        };
        // The AMBA bus masks the peripheral ID with 0x000fffff: 0x00041031 is PL031.
        assert_eq!(id(&mut rtc, 0xfe0) & 0x000f_ffff, 0x0004_1031);
        assert_eq!(id(&mut rtc, 0xff0), 0xb105_f00d);
    }

    #[test]
    fn only_aligned_words_reach_the_registers() {
        let (mut rtc, _) = rtc_at(7);
        assert_eq!(rtc.read(DATA, AccessWidth::Byte), 0);
        assert_eq!(rtc.read(DATA, AccessWidth::Double), 0);
        assert_eq!(rtc.read(DATA + 2, AccessWidth::Word), 0);
        rtc.write(LOAD, AccessWidth::Half, 1);
        assert_eq!(read(&mut rtc, DATA), 7);
        // Writes to read-only registers and RTCCR change nothing.
        rtc.write(DATA, AccessWidth::Word, 1);
        rtc.write(CONTROL, AccessWidth::Word, 0);
        assert_eq!(read(&mut rtc, DATA), 7);
        assert_eq!(read(&mut rtc, CONTROL), 1);
    }
}
