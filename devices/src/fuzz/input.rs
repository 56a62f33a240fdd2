//! [`Input`]: a fuzz input read as a stream of numbers.
//!
//! A target that drives a state machine (register accesses, interrupt lines, trap
//! syndromes) reads its next operation from the input with the methods here. Once
//! the bytes run out every read answers zero and [`Input::is_empty`] turns true, so a
//! target loops `while !input.is_empty()` and any input, even an empty one, is valid.
//! Numbers are little-endian; small changes to the bytes make small changes to the
//! operations, which is what a coverage-guided fuzzer needs.

/// The unread rest of a fuzz input.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `bytes` from its start.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Whether every byte has been read.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub const fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// The next `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }

    /// The next `N` bytes, zero-padded at the end of the input.
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut array = [0; N];
        let taken = self.bytes(N);
        array[..taken.len()].copy_from_slice(taken);
        array
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    /// The next 16-bit number.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    /// The next 32-bit number.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// The next 64-bit number.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// The next byte's low bit.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// A number in `0..bound` from the next byte (`bound` 1 to 256), for choosing
    /// among a few cases.
    pub fn choose(&mut self, bound: u32) -> u32 {
        u32::from(self.u8()) % bound.clamp(1, 256)
    }

    /// A number in `0..bound` from the next 16 bits (`bound` at least 1).
    pub fn below(&mut self, bound: u64) -> u64 {
        u64::from(self.u16()) % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_little_endian_and_zero_past_the_end() {
        let mut input = Input::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(input.u16(), 0x0201);
        assert_eq!(input.u32(), 0x0605_0403);
        assert!(!input.is_empty());
        assert_eq!(input.u64(), 7);
        assert!(input.is_empty());
        assert_eq!(input.u8(), 0);
        assert_eq!(input.bytes(3), &[] as &[u8]);
    }

    #[test]
    fn choices_stay_in_range() {
        let mut input = Input::new(&[255, 255, 7, 0, 0]);
        assert_eq!(input.choose(10), 5);
        assert_eq!(input.below(0), 0);
        assert_eq!(input.choose(0), 0);
        assert_eq!(input.below(3), 0);
    }
}
