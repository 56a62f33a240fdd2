//! Guest RAM as the virtio devices see it: byte ranges at guest physical addresses.
//!
//! Every address a virtqueue holds comes from the guest and is untrusted (robustness
//! item 3: top bits set, ranges that wrap, a buffer that ends just past guest RAM).
//! [`GuestMemory`] is the one door through which devices touch guest RAM, and each of
//! its operations fails, touching nothing, unless the *whole* range lies inside guest
//! RAM. The checks never overflow: `address + length` is computed with checked
//! arithmetic, so a range that wraps past `u64::MAX` is refused, not folded back
//! into RAM.
//!
//! The hypervisor implements the trait over the guest's RAM mapping; [`VecMemory`] is
//! a heap-backed implementation for tests and fuzzing.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

/// A guest physical range that is not wholly inside guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryError {
    /// First guest physical address of the range.
    pub address: u64,
    /// Length of the range in bytes.
    pub length: u64,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "guest physical range {:#x} (+{:#x} bytes) is not inside guest RAM",
            self.address, self.length
        )
    }
}

/// Guest RAM, addressed by guest physical address.
///
/// Implementations must refuse (with [`MemoryError`], changing nothing) any range not
/// wholly inside guest RAM, including ranges whose end overflows `u64`. A zero-length
/// range is accepted wherever its address is; it touches nothing.
///
/// Ordering: the virtqueue code issues `core::sync::atomic::fence`s between the
/// accesses whose order the virtio memory model requires (ring index versus ring
/// entries); implementations over shared memory must perform each `read`/`write` as
/// plain memory accesses that those fences order (no private caching).
pub trait GuestMemory {
    /// Whether `address..address + length` lies wholly inside guest RAM.
    fn check(&self, address: u64, length: u64) -> Result<(), MemoryError>;

    /// Fills `buffer` from guest RAM at `address`.
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError>;

    /// Copies `bytes` into guest RAM at `address`.
    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError>;

    /// Reads a little-endian `u16` at `address`.
    fn read_u16(&self, address: u64) -> Result<u16, MemoryError> {
        let mut bytes = [0; 2];
        self.read(address, &mut bytes)?;
        Ok(u16::from_le_bytes(bytes))
    }

    /// Reads a little-endian `u32` at `address`.
    fn read_u32(&self, address: u64) -> Result<u32, MemoryError> {
        let mut bytes = [0; 4];
        self.read(address, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// Reads a little-endian `u64` at `address`.
    fn read_u64(&self, address: u64) -> Result<u64, MemoryError> {
        let mut bytes = [0; 8];
        self.read(address, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes `value` as a little-endian `u16` at `address`.
    fn write_u16(&mut self, address: u64, value: u16) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }

    /// Writes `value` as a little-endian `u32` at `address`.
    fn write_u32(&mut self, address: u64, value: u32) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }
}

/// Guest RAM held in a `Vec`: `size` bytes starting at guest physical `base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecMemory {
    base: u64,
    bytes: Vec<u8>,
}

impl VecMemory {
    /// Zeroed RAM of `size` bytes at `base`. The last byte's address must fit a `u64`;
    /// a larger `size` is cut to the end of the address space.
    pub fn new(base: u64, size: usize) -> Self {
        let room = (u64::MAX - base).saturating_add(1);
        let size = size.min(usize::try_from(room).unwrap_or(usize::MAX));
        Self {
            base,
            bytes: vec![0; size],
        }
    }

    /// RAM at `base` holding `bytes`.
    pub fn from_bytes(base: u64, bytes: Vec<u8>) -> Self {
        let mut memory = Self::new(base, bytes.len());
        let kept = memory.bytes.len();
        memory.bytes.copy_from_slice(&bytes[..kept]);
        memory
    }

    /// The first guest physical address.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The whole of RAM.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole of RAM, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The indices into `bytes` of a guest range, if it lies wholly inside.
    fn range(&self, address: u64, length: u64) -> Result<Range<usize>, MemoryError> {
        let error = MemoryError { address, length };
        let start = address.checked_sub(self.base).ok_or(error)?;
        let end = start.checked_add(length).ok_or(error)?;
        if end > self.size() {
            return Err(error);
        }
        // Both fit `usize`: they are at most `bytes.len()`.
        Ok(start as usize..end as usize)
    }
}

impl GuestMemory for VecMemory {
    fn check(&self, address: u64, length: u64) -> Result<(), MemoryError> {
        self.range(address, length).map(|_| ())
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        let range = self.range(address, buffer.len() as u64)?;
        buffer.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        let range = self.range(address, bytes.len() as u64)?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const BASE: u64 = 0x4000_0000;

    #[test]
    fn reads_and_writes_inside() {
        let mut memory = VecMemory::new(BASE, 0x100);
        memory.write(BASE + 0x10, &[1, 2, 3, 4]).unwrap();
        let mut buffer = [0; 4];
        memory.read(BASE + 0x10, &mut buffer).unwrap();
        assert_eq!(buffer, [1, 2, 3, 4]);
        assert_eq!(
            memory.read_u32(BASE + 0x10),
            Ok(0x0403_0201),
            "little-endian"
        );
        assert_eq!(memory.read_u16(BASE + 0x12), Ok(0x0403));
        memory.write_u16(BASE, 0xBEEF).unwrap();
        memory.write_u32(BASE + 4, 0x1234_5678).unwrap();
        assert_eq!(memory.read_u64(BASE), Ok(0x1234_5678_0000_BEEF));
        // The very last byte.
        memory.write(BASE + 0xFF, &[9]).unwrap();
        assert_eq!(memory.as_slice()[0xFF], 9);
    }

    #[test]
    fn ranges_not_wholly_inside_fail_and_touch_nothing() {
        let mut memory = VecMemory::new(BASE, 0x100);
        let before = memory.clone();
        let cases = [
            (BASE - 1, 1),           // just below
            (BASE - 1, 2),           // straddles the start
            (BASE + 0xFF, 2),        // straddles the end
            (BASE + 0x100, 1),       // just past the end
            (0, 4),                  // far below
            (u64::MAX, 1),           // top of the address space
            (u64::MAX - 1, 4),       // wraps past u64::MAX
            (BASE, 0x101),           // one byte too long
            (BASE + 0x80, u64::MAX), // length that overflows
        ];
        for (address, length) in cases {
            let error = MemoryError { address, length };
            assert_eq!(
                memory.check(address, length),
                Err(error),
                "{address:#x}+{length:#x}"
            );
            if let Ok(small) = usize::try_from(length) {
                if small <= 0x200 {
                    let mut buffer = std::vec![0; small];
                    assert_eq!(memory.read(address, &mut buffer), Err(error));
                    assert_eq!(memory.write(address, &buffer), Err(error));
                }
            }
        }
        assert_eq!(memory, before);
    }

    #[test]
    fn zero_length_ranges() {
        let mut memory = VecMemory::new(BASE, 0x100);
        assert_eq!(memory.check(BASE + 0x100, 0), Ok(()), "the end itself");
        assert!(memory.check(BASE + 0x101, 0).is_err(), "past the end");
        assert!(memory.check(0, 0).is_err(), "below the base");
        assert_eq!(memory.write(BASE, &[]), Ok(()));
    }

    #[test]
    fn memory_at_the_top_of_the_address_space() {
        let base = u64::MAX - 0xF;
        let mut memory = VecMemory::new(base, 0x100);
        assert_eq!(memory.size(), 0x10, "cut to the end of the address space");
        memory.write(u64::MAX, &[7]).unwrap();
        assert!(memory.write(u64::MAX, &[7, 8]).is_err());
        assert_eq!(memory.check(base, 0x10), Ok(()));
    }

    #[test]
    fn from_bytes_and_accessors() {
        let memory = VecMemory::from_bytes(0x1000, std::vec![5, 6, 7]);
        assert_eq!(memory.base(), 0x1000);
        assert_eq!(memory.size(), 3);
        assert_eq!(memory.read_u16(0x1001), Ok(0x0706));
    }

    #[test]
    fn error_message() {
        assert_eq!(
            MemoryError {
                address: 0x8000_0000,
                length: 0x10
            }
            .to_string(),
            "guest physical range 0x80000000 (+0x10 bytes) is not inside guest RAM"
        );
    }
}
