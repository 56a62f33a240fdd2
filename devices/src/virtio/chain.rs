//! A validated descriptor chain: the guest buffers of one request, as two byte
//! streams.
//!
//! The walker in [`queue`](super::queue) builds a [`Chain`] only from descriptors it
//! has checked (virtio 1.2, section 2.7.5): every [`Segment`] lies wholly inside guest
//! RAM, the device-readable segments come before the device-writable ones (section
//! 2.7.4.2, "The driver MUST place any device-writable descriptor elements after any
//! device-readable descriptor elements"), and the total is at most 2^32 bytes
//! (section 2.7.5.2). Devices then read the readable segments as one stream and write
//! the writable segments as another, at byte offsets, without caring how the driver
//! split them into descriptors (section 2.7.4.1: "The device MUST NOT make assumptions
//! about the particular arrangement of descriptors").
//!
//! A chain holds at most [`MAX_CHAIN_DESCRIPTORS`] segments; its storage is allocated
//! once, when the device is created, and reused for every request.

use super::guest_memory::GuestMemory;
use super::queue::{MAX_CHAIN_DESCRIPTORS, QueueError};
use alloc::vec::Vec;

/// One guest buffer of a chain: `length` bytes at guest physical `address`, wholly
/// inside guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Guest physical address of the first byte.
    pub address: u64,
    /// Length in bytes (never zero: the walker drops empty descriptors).
    pub length: u32,
}

/// The buffers of one request, readable ones first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    head: u16,
    segments: Vec<Segment>,
    readable_segments: usize,
    readable_bytes: u64,
    writable_bytes: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

/// Which of a chain's two streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Readable,
    Writable,
}

impl Chain {
    /// An empty chain with room for [`MAX_CHAIN_DESCRIPTORS`] segments, so that
    /// walking never allocates.
    pub fn new() -> Self {
        Self {
            head: 0,
            segments: Vec::with_capacity(MAX_CHAIN_DESCRIPTORS),
            readable_segments: 0,
            readable_bytes: 0,
            writable_bytes: 0,
        }
    }

    /// Empties the chain for a new walk starting at descriptor `head`.
    pub(super) fn reset(&mut self, head: u16) {
        self.head = head;
        self.segments.clear();
        self.readable_segments = 0;
        self.readable_bytes = 0;
        self.writable_bytes = 0;
    }

    /// Appends a checked segment. The walker has already enforced the ordering, the
    /// count and the byte total; this only records.
    pub(super) fn push(&mut self, segment: Segment, writable: bool) {
        if writable {
            self.writable_bytes += u64::from(segment.length);
        } else {
            self.readable_segments += 1;
            self.readable_bytes += u64::from(segment.length);
        }
        self.segments.push(segment);
    }

    /// The number of segments recorded so far.
    pub(super) fn len(&self) -> usize {
        self.segments.len()
    }

    /// Index of the chain's first descriptor: what the used ring entry names.
    pub const fn head(&self) -> u16 {
        self.head
    }

    /// The device-readable segments, in order.
    pub fn readable(&self) -> &[Segment] {
        &self.segments[..self.readable_segments]
    }

    /// The device-writable segments, in order.
    pub fn writable(&self) -> &[Segment] {
        &self.segments[self.readable_segments..]
    }

    /// Total bytes in the device-readable segments.
    pub const fn readable_len(&self) -> u64 {
        self.readable_bytes
    }

    /// Total bytes in the device-writable segments.
    pub const fn writable_len(&self) -> u64 {
        self.writable_bytes
    }

    /// Whether any segment is device-readable.
    pub fn has_readable(&self) -> bool {
        self.readable_segments != 0
    }

    /// Whether any segment is device-writable.
    pub fn has_writable(&self) -> bool {
        self.segments.len() != self.readable_segments
    }

    /// Fills `buffer` from the readable stream, starting `offset` bytes into it.
    pub fn read(
        &self,
        memory: &dyn GuestMemory,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<(), QueueError> {
        self.check_span(Stream::Readable, offset, buffer.len())?;
        let mut done = 0;
        self.for_each_piece(Stream::Readable, offset, buffer.len(), |address, range| {
            memory.read(address, &mut buffer[range.clone()])?;
            done = range.end;
            Ok(())
        })?;
        debug_assert_eq!(done, buffer.len());
        Ok(())
    }

    /// Copies `bytes` into the writable stream, starting `offset` bytes into it.
    pub fn write(
        &self,
        memory: &mut dyn GuestMemory,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), QueueError> {
        self.check_span(Stream::Writable, offset, bytes.len())?;
        self.for_each_piece(Stream::Writable, offset, bytes.len(), |address, range| {
            memory.write(address, &bytes[range])?;
            Ok(())
        })
    }

    /// Refuses a span that runs past the end of the stream.
    fn check_span(&self, stream: Stream, offset: u64, length: usize) -> Result<(), QueueError> {
        let available = match stream {
            Stream::Readable => self.readable_bytes,
            Stream::Writable => self.writable_bytes,
        };
        let needed = offset.saturating_add(length as u64);
        if needed > available {
            return Err(QueueError::ShortChain { needed, available });
        }
        Ok(())
    }

    /// Calls `action(guest_address, buffer_range)` for each contiguous piece of the
    /// span `offset..offset + length` of `stream`, in order. The span must lie inside
    /// the stream (checked by the callers).
    fn for_each_piece(
        &self,
        stream: Stream,
        offset: u64,
        length: usize,
        mut action: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), QueueError>,
    ) -> Result<(), QueueError> {
        let segments = match stream {
            Stream::Readable => self.readable(),
            Stream::Writable => self.writable(),
        };
        let mut skip = offset;
        let mut done = 0usize;
        for segment in segments {
            if done == length {
                break;
            }
            let segment_length = u64::from(segment.length);
            if skip >= segment_length {
                skip -= segment_length;
                continue;
            }
            // `skip < segment_length <= u32::MAX`, so both fit usize on every target
            // Aerie supports (64-bit).
            let in_segment = (segment_length - skip) as usize;
            let take = in_segment.min(length - done);
            // The segment lies inside guest RAM, so `address + skip` cannot overflow.
            action(segment.address + skip, done..done + take)?;
            done += take;
            skip = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::guest_memory::VecMemory;

    const BASE: u64 = 0x4000_0000;

    fn chain() -> Chain {
        let mut chain = Chain::new();
        chain.reset(3);
        chain.push(
            Segment {
                address: BASE,
                length: 3,
            },
            false,
        );
        chain.push(
            Segment {
                address: BASE + 0x10,
                length: 5,
            },
            false,
        );
        chain.push(
            Segment {
                address: BASE + 0x20,
                length: 2,
            },
            true,
        );
        chain.push(
            Segment {
                address: BASE + 0x30,
                length: 4,
            },
            true,
        );
        chain
    }

    #[test]
    fn streams_and_lengths() {
        let chain = chain();
        assert_eq!(chain.head(), 3);
        assert_eq!(chain.readable().len(), 2);
        assert_eq!(chain.writable().len(), 2);
        assert_eq!(chain.readable_len(), 8);
        assert_eq!(chain.writable_len(), 6);
        assert!(chain.has_readable() && chain.has_writable());
        let mut empty = Chain::new();
        empty.reset(0);
        assert!(!empty.has_readable() && !empty.has_writable());
    }

    #[test]
    fn reads_across_segments() {
        let mut memory = VecMemory::new(BASE, 0x100);
        memory.write(BASE, &[1, 2, 3]).unwrap();
        memory.write(BASE + 0x10, &[4, 5, 6, 7, 8]).unwrap();
        let chain = chain();
        let mut all = [0; 8];
        chain.read(&memory, 0, &mut all).unwrap();
        assert_eq!(all, [1, 2, 3, 4, 5, 6, 7, 8]);
        let mut middle = [0; 4];
        chain.read(&memory, 2, &mut middle).unwrap();
        assert_eq!(middle, [3, 4, 5, 6]);
        let mut tail = [0; 1];
        chain.read(&memory, 7, &mut tail).unwrap();
        assert_eq!(tail, [8]);
        assert_eq!(
            chain.read(&memory, 6, &mut [0; 3]),
            Err(QueueError::ShortChain {
                needed: 9,
                available: 8
            })
        );
        assert!(chain.read(&memory, u64::MAX, &mut [0; 1]).is_err());
        chain.read(&memory, 8, &mut []).unwrap();
    }

    #[test]
    fn writes_across_segments_touch_only_them() {
        let mut memory = VecMemory::new(BASE, 0x100);
        let chain = chain();
        chain.write(&mut memory, 1, &[0xA, 0xB, 0xC]).unwrap();
        let bytes = memory.as_slice();
        assert_eq!(bytes[0x20..0x22], [0, 0xA]);
        assert_eq!(bytes[0x30..0x34], [0xB, 0xC, 0, 0]);
        let changed = bytes.iter().filter(|&&b| b != 0).count();
        assert_eq!(changed, 3);
        assert!(chain.write(&mut memory, 4, &[0; 3]).is_err());
    }
}
