//! The Aerie test device: a register block for test guests to exercise MMIO
//! emulation, in the spirit of QEMU's `pc-testdev` for kvm-unit-tests.
//!
//! It occupies 4 KiB ([`SIZE`]). Every register is little-endian and may be accessed
//! at any width (1, 2, 4 or 8 bytes) at any naturally aligned offset inside it, so a
//! guest can check each load and store instruction against known values: a byte load
//! at `PATTERN + 2` returns that byte of the pattern.
//!
//! | offset | name | size | access | value |
//! |---|---|---|---|---|
//! | `0x000` | [`ID`] | 4 | read-only | [`ID_VALUE`] = `0x4454_4541`, the bytes `"AETD"` ("Aerie test device") |
//! | `0x004` | [`VERSION`] | 4 | read-only | [`VERSION_VALUE`] = 1 |
//! | `0x008` | [`PATTERN`] | 8 | read-only | [`PATTERN_VALUE`] = `0x8899_aabb_ccdd_eeff`: every byte has its top bit set, so every sign-extending load of it yields a negative number |
//! | `0x100`..`0x140` | [`SCRATCH`] | 64 | read-write | zero at reset; keeps what the guest writes |
//! | `0x200` | [`WRITE_COUNT`] | 8 | read-only | the number of write accesses the device has seen |
//!
//! Everything else reads as zero and ignores writes, as do misaligned accesses and
//! accesses that do not fit inside one register (e.g. an 8-byte read at `0x004`).
//! [`WRITE_COUNT`] counts *every* write access the device receives, including ignored
//! ones, so a guest can tell that a store reached the device at all.

use crate::mmio::{AccessWidth, InvalidState, MmioDevice, Persist};

/// Size of the register block.
pub const SIZE: u64 = 0x1000;
/// Offset of the identification register.
pub const ID: u64 = 0x000;
/// Offset of the version register.
pub const VERSION: u64 = 0x004;
/// Offset of the pattern register.
pub const PATTERN: u64 = 0x008;
/// Offset of the scratch memory.
pub const SCRATCH: u64 = 0x100;
/// Size of the scratch memory in bytes.
pub const SCRATCH_SIZE: usize = 64;
/// Offset of the write counter.
pub const WRITE_COUNT: u64 = 0x200;

/// What [`ID`] reads: the ASCII bytes `A`, `E`, `T`, `D` in little-endian order.
pub const ID_VALUE: u32 = u32::from_le_bytes(*b"AETD");
/// What [`VERSION`] reads.
pub const VERSION_VALUE: u32 = 1;
/// What [`PATTERN`] reads. Bytes from the lowest address: `ff ee dd cc bb aa 99 88`.
pub const PATTERN_VALUE: u64 = 0x8899_aabb_ccdd_eeff;

/// Size of [`ID`] and [`VERSION`] in bytes.
const WORD: u64 = 4;
/// Size of [`PATTERN`] and [`WRITE_COUNT`] in bytes.
const DOUBLE: u64 = 8;

/// The device's state as plain data, for snapshots.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestDeviceState {
    /// The scratch memory.
    #[serde(with = "byte_array")]
    pub scratch: [u8; SCRATCH_SIZE],
    /// The write counter.
    pub write_count: u64,
}

/// Serde for byte arrays of any length (serde's own stop at 32 elements): a tuple of
/// `N` bytes, which postcard stores as exactly `N` bytes with no length prefix.
mod byte_array {
    use core::fmt;
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};

    /// Writes `bytes` as a tuple of `N` bytes.
    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(N)?;
        for byte in bytes {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }

    /// Reads a tuple of exactly `N` bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        deserializer.deserialize_tuple(N, ByteArray::<N>)
    }

    /// Visits the `N` elements.
    struct ByteArray<const N: usize>;

    impl<'de, const N: usize> Visitor<'de> for ByteArray<N> {
        type Value = [u8; N];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{N} bytes")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut bytes = [0; N];
            for (index, byte) in bytes.iter_mut().enumerate() {
                *byte = seq
                    .next_element()?
                    .ok_or_else(|| Error::invalid_length(index, &self))?;
            }
            if seq.next_element::<u8>()?.is_some() {
                return Err(Error::invalid_length(N + 1, &self));
            }
            Ok(bytes)
        }
    }
}

/// The Aerie test device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDevice {
    scratch: [u8; SCRATCH_SIZE],
    write_count: u64,
}

impl Default for TestDevice {
    fn default() -> Self {
        Self::new()
    }
}

/// Where an access landed: which register, and the offset within it.
enum Target {
    /// A read-only register holding `value`; `at` is the offset within it.
    ReadOnly { value: u64, at: usize },
    /// The scratch memory.
    Scratch { at: usize },
    /// Nothing (unknown offset, misaligned, or straddling a register's end).
    Nothing,
}

/// `offset` relative to a register at `start` of `size` bytes, if an access of
/// `width` there lies wholly inside it.
fn within(offset: u64, width: AccessWidth, start: u64, size: u64) -> Option<usize> {
    let at = offset.checked_sub(start)?;
    (at < size && width.bytes() <= size - at).then_some(at as usize)
}

impl TestDevice {
    /// The device at reset: scratch memory zero, no writes seen.
    pub const fn new() -> Self {
        Self {
            scratch: [0; SCRATCH_SIZE],
            write_count: 0,
        }
    }

    /// The number of write accesses seen (what [`WRITE_COUNT`] reads).
    pub const fn write_count(&self) -> u64 {
        self.write_count
    }

    /// The device's state.
    pub fn save(&self) -> TestDeviceState {
        TestDeviceState {
            scratch: self.scratch,
            write_count: self.write_count,
        }
    }

    /// Puts the device back into a saved state. Every state is valid.
    pub fn restore(&mut self, state: &TestDeviceState) {
        self.scratch = state.scratch;
        self.write_count = state.write_count;
    }

    fn target(&self, offset: u64, width: AccessWidth) -> Target {
        if !width.is_aligned(offset) {
            return Target::Nothing;
        }
        let read_only = [
            (ID, WORD, u64::from(ID_VALUE)),
            (VERSION, WORD, u64::from(VERSION_VALUE)),
            (PATTERN, DOUBLE, PATTERN_VALUE),
            (WRITE_COUNT, DOUBLE, self.write_count),
        ];
        for (start, size, value) in read_only {
            if let Some(at) = within(offset, width, start, size) {
                return Target::ReadOnly { value, at };
            }
        }
        match within(offset, width, SCRATCH, SCRATCH_SIZE as u64) {
            Some(at) => Target::Scratch { at },
            None => Target::Nothing,
        }
    }
}

impl Persist for TestDevice {
    type State = TestDeviceState;

    fn save_state(&self) -> TestDeviceState {
        self.save()
    }

    /// Every state is valid.
    fn restore_state(&mut self, state: &TestDeviceState) -> Result<(), InvalidState> {
        self.restore(state);
        Ok(())
    }
}

impl MmioDevice for TestDevice {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        let bytes = width.bytes() as usize;
        match self.target(offset, width) {
            Target::ReadOnly { value, at } => {
                let mut out = [0; DOUBLE as usize];
                out[..bytes].copy_from_slice(&value.to_le_bytes()[at..at + bytes]);
                u64::from_le_bytes(out)
            }
            Target::Scratch { at } => {
                let mut out = [0; DOUBLE as usize];
                out[..bytes].copy_from_slice(&self.scratch[at..at + bytes]);
                u64::from_le_bytes(out)
            }
            Target::Nothing => 0,
        }
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        self.write_count = self.write_count.wrapping_add(1);
        if let Target::Scratch { at } = self.target(offset, width) {
            let bytes = width.bytes() as usize;
            self.scratch[at..at + bytes].copy_from_slice(&value.to_le_bytes()[..bytes]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccessWidth::{Byte, Double, Half, Word};

    const WIDTHS: [AccessWidth; 4] = [Byte, Half, Word, Double];

    #[test]
    fn identification_registers() {
        let mut dev = TestDevice::new();
        // "AETD" from the lowest address: 0x41 0x45 0x54 0x44.
        assert_eq!(dev.read(0x000, Word), 0x4454_4541);
        assert_eq!(dev.read(0x000, Byte), u64::from(b'A'));
        assert_eq!(dev.read(0x001, Byte), u64::from(b'E'));
        assert_eq!(dev.read(0x002, Half), 0x4454, "'T' 'D'");
        assert_eq!(dev.read(0x004, Word), 1);
        assert_eq!(dev.read(0x008, Double), 0x8899_aabb_ccdd_eeff);
        // An 8-byte read at 0 spans ID and VERSION: not one register, reads zero.
        assert_eq!(dev.read(0x000, Double), 0);
    }

    #[test]
    fn pattern_at_every_width_and_aligned_offset() {
        let mut dev = TestDevice::new();
        // Little-endian: the byte at PATTERN + i is bits [8i+7:8i] of the value.
        let bytes = [0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88];
        for (i, byte) in bytes.into_iter().enumerate() {
            assert_eq!(dev.read(0x008 + i as u64, Byte), byte, "byte {i}");
            assert!(byte & 0x80 != 0, "top bit set, so sign extension shows");
        }
        let halves = [0xeeff, 0xccdd, 0xaabb, 0x8899];
        for (i, half) in halves.into_iter().enumerate() {
            assert_eq!(dev.read(0x008 + 2 * i as u64, Half), half, "half {i}");
        }
        assert_eq!(dev.read(0x008, Word), 0xccdd_eeff);
        assert_eq!(dev.read(0x00C, Word), 0x8899_aabb);
    }

    #[test]
    fn scratch_keeps_what_is_written_at_every_width() {
        let mut dev = TestDevice::new();
        dev.write(0x100, Double, 0x0123_4567_89ab_cdef);
        assert_eq!(dev.read(0x100, Double), 0x0123_4567_89ab_cdef);
        assert_eq!(dev.read(0x100, Byte), 0xef, "little-endian");
        assert_eq!(dev.read(0x106, Half), 0x0123);
        assert_eq!(dev.read(0x104, Word), 0x0123_4567);
        dev.write(0x103, Byte, 0x5a);
        assert_eq!(dev.read(0x100, Word), 0x5aab_cdef);
        dev.write(0x13E, Half, 0xbeef);
        assert_eq!(dev.read(0x138, Double), 0xbeef_0000_0000_0000);
        dev.write(0x13C, Word, 0xdead_0000);
        assert_eq!(dev.read(0x13C, Word), 0xdead_0000);
        // Every width at every aligned offset of the whole scratch area.
        for width in WIDTHS {
            let mut offset = SCRATCH;
            while offset < SCRATCH + SCRATCH_SIZE as u64 {
                let value = width.truncate(0x1122_3344_5566_7788 ^ offset);
                dev.write(offset, width, value);
                assert_eq!(dev.read(offset, width), value, "{width:?} at {offset:#x}");
                offset += width.bytes();
            }
        }
    }

    #[test]
    fn read_only_registers_ignore_writes() {
        let mut dev = TestDevice::new();
        for (offset, width) in [
            (0x000, Word),
            (0x004, Word),
            (0x008, Double),
            (0x200, Double),
        ] {
            dev.write(offset, width, 0);
        }
        assert_eq!(dev.read(0x000, Word), u64::from(ID_VALUE));
        assert_eq!(dev.read(0x004, Word), u64::from(VERSION_VALUE));
        assert_eq!(dev.read(0x008, Double), PATTERN_VALUE);
        assert_eq!(dev.read(0x200, Double), 4, "the counter counts, not stores");
    }

    #[test]
    fn write_count_counts_every_write() {
        let mut dev = TestDevice::new();
        assert_eq!(dev.read(0x200, Double), 0);
        dev.write(0x100, Byte, 1); // scratch
        dev.write(0x800, Word, 1); // unknown offset
        dev.write(0x101, Half, 1); // misaligned
        assert_eq!(dev.read(0x200, Double), 3);
        assert_eq!(dev.read(0x200, Word), 3);
        assert_eq!(dev.read(0x204, Word), 0);
        assert_eq!(dev.write_count(), 3);
        assert_eq!(dev.read(0x101, Byte), 0, "misaligned write was ignored");
    }

    #[test]
    fn unknown_and_misaligned_accesses_read_zero() {
        let mut dev = TestDevice::new();
        dev.write(0x100, Double, u64::MAX);
        for (offset, width) in [
            (0x001, Word),   // misaligned ID
            (0x009, Half),   // misaligned PATTERN
            (0x010, Double), // gap
            (0x0FC, Word),   // just before SCRATCH
            (0x101, Half),   // misaligned scratch
            (0x102, Word),
            (0x104, Double),
            (0x140, Byte), // just after SCRATCH
            (0x208, Double),
            (SIZE - 8, Double),
            (SIZE - 1, Byte),
            (u64::MAX - 7, Double), // outside the window: the bus never sends it, but safe
        ] {
            assert_eq!(dev.read(offset, width), 0, "{width:?} at {offset:#x}");
        }
        // Nothing above changed the scratch memory.
        assert_eq!(dev.read(0x100, Double), u64::MAX);
    }

    #[test]
    fn every_offset_and_width_is_safe() {
        let mut dev = TestDevice::new();
        for offset in 0..SIZE {
            for width in WIDTHS {
                dev.write(offset, width, u64::MAX);
                let value = dev.read(offset, width);
                assert_eq!(value, width.truncate(value), "fits the width");
            }
        }
        assert_eq!(dev.write_count(), SIZE * 4);
    }

    #[test]
    fn save_and_restore() {
        let mut dev = TestDevice::new();
        dev.write(0x108, Double, 0xfeed_face_cafe_beef);
        dev.write(0x13F, Byte, 0x7f);
        let state = dev.save();
        assert_eq!(state.write_count, 2);
        assert_eq!(
            state.scratch[8..16],
            0xfeed_face_cafe_beef_u64.to_le_bytes()
        );
        assert_eq!(state.scratch[63], 0x7f);

        let mut fresh = TestDevice::default();
        assert_ne!(fresh, dev);
        fresh.restore(&state);
        assert_eq!(fresh, dev);
        assert_eq!(fresh.read(0x108, Double), 0xfeed_face_cafe_beef);
        assert_eq!(fresh.read(0x200, Double), 2);
        assert_eq!(fresh.save(), state.clone());

        // Restoring an earlier state undoes later writes.
        dev.write(0x100, Double, 1);
        dev.restore(&state);
        assert_eq!(dev.save(), state);
    }
}
