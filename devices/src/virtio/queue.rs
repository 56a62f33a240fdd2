//! The split virtqueue (virtio 1.2, section 2.7), from the device's side: taking
//! descriptor chains the driver made available, returning them through the used ring,
//! and deciding when to interrupt.
//!
//! # Layout (section 2.7, table "Virtqueue Part / Alignment / Size")
//!
//! | part | alignment | size | contents |
//! |---|---|---|---|
//! | descriptor table | 16 | 16 × size | `le64 addr; le32 len; le16 flags; le16 next` |
//! | available ring (driver area) | 2 | 6 + 2 × size | `le16 flags; le16 idx; le16 ring[size]; le16 used_event` |
//! | used ring (device area) | 4 | 6 + 8 × size | `le16 flags; le16 idx; {le32 id; le32 len} ring[size]; le16 avail_event` |
//!
//! # What a guest cannot do to Aerie (robustness.md, item 10)
//!
//! [`Queue::walk`] turns a chain into a [`Chain`] or a [`QueueError`] naming the
//! problem; it never panics, never loops forever and never allocates:
//!
//! - **Index wrap-around.** Ring indices are free-running `u16`s (section 2.7.6,
//!   2.7.8). The number of new buffers is `avail.idx - last_seen` in wrapping
//!   arithmetic; more than the queue size at once is an error
//!   ([`QueueError::AvailIndexJump`]), since a driver can never have more buffers out.
//! - **Out-of-range indices.** A head or `next` at or past the queue size (or past the
//!   end of an indirect table) is an error.
//! - **Loops and overlong chains.** The walk stops after as many descriptors as the
//!   table holds (a chain that long must loop or break section 2.7.5.3.1's
//!   "MUST NOT create a descriptor chain longer than the Queue Size"), and a whole
//!   chain is capped at [`MAX_CHAIN_DESCRIPTORS`].
//! - **Indirect tables** (`VIRTIO_F_INDIRECT_DESC`, section 2.7.5.3): only if
//!   negotiated, only one level, never together with `NEXT`, a length that is a
//!   non-zero multiple of 16 and at most [`MAX_INDIRECT_DESCRIPTORS`] entries, wholly
//!   inside guest RAM; the descriptors inside get every check the table's do. Zero or
//!   more direct descriptors may precede the indirect one (section 2.7.5.3.2).
//! - **Lengths.** Zero-length descriptors carry nothing and are dropped (they still
//!   count towards the limits). A chain of more than 2^32 bytes in total is an error
//!   (section 2.7.5.2).
//! - **Addresses.** Every buffer must lie wholly inside guest RAM, checked without
//!   overflow, so one that wraps past 2^64 or ends a byte past RAM is refused.
//! - **Direction.** A device-readable descriptor after a device-writable one is an
//!   error (section 2.7.4.2). Whether a request may have readable or writable parts at
//!   all is the device's business.
//!
//! # Notification suppression (sections 2.7.7, 2.7.10)
//!
//! With `VIRTIO_F_EVENT_IDX`, [`Queue::pop`] publishes `avail_event` only when it
//! finds the ring empty, so the driver notifies once for the first buffer after the
//! device went idle, not for every buffer; and [`Queue::needs_interrupt`] interrupts
//! only when the used index crossed the driver's `used_event` since the last decision,
//! so a batch of completions costs one interrupt. Without it, the device honours
//! `VIRTQ_AVAIL_F_NO_INTERRUPT` and leaves the used ring's flags at 0.
//!
//! # Memory ordering
//!
//! The guest runs on other CPUs while the device reads its rings. `pop` fences
//! (acquire) between reading `avail.idx` and reading the entries it covers;
//! `add_used` fences (release) between writing a used entry and publishing the used
//! index; publishing `avail_event` and deciding on an interrupt are separated from the
//! re-read that follows by a full fence (section 2.7.13.4's "suitable memory
//! barrier"). On aarch64 these are `dmb ish`.

use super::chain::{Chain, Segment};
use super::guest_memory::{GuestMemory, MemoryError};
use core::fmt;
use core::sync::atomic::{Ordering, fence};

/// The largest queue size any Aerie device offers (`QueueNumMax`). The spec allows
/// 32768 (section 2.7); 1024 bounds the work one notification can cause and matches
/// what Linux and QEMU use in practice.
pub const MAX_QUEUE_SIZE: u16 = 1024;

/// The most descriptors one chain may have, direct and indirect together. Bounds the
/// [`Chain`] storage (16 bytes a segment, allocated once per device).
pub const MAX_CHAIN_DESCRIPTORS: usize = 1024;

/// The most entries an indirect table may have.
pub const MAX_INDIRECT_DESCRIPTORS: u32 = MAX_CHAIN_DESCRIPTORS as u32;

/// The most bytes one chain may describe: 2^32 (section 2.7.5.2, "Drivers MUST NOT
/// add a descriptor chain longer than 2^32 bytes in total").
pub const MAX_CHAIN_BYTES: u64 = 1 << 32;

/// Descriptor flags (section 2.7.5, `struct virtq_desc`).
pub mod desc {
    /// Size of one descriptor in bytes.
    pub const SIZE: u64 = 16;
    /// Offset of `addr` (le64).
    pub const ADDR: u64 = 0;
    /// Offset of `len` (le32).
    pub const LEN: u64 = 8;
    /// Offset of `flags` (le16).
    pub const FLAGS: u64 = 12;
    /// Offset of `next` (le16).
    pub const NEXT: u64 = 14;
    /// `VIRTQ_DESC_F_NEXT`: the buffer continues via `next`.
    pub const F_NEXT: u16 = 1;
    /// `VIRTQ_DESC_F_WRITE`: the buffer is device-writable.
    pub const F_WRITE: u16 = 2;
    /// `VIRTQ_DESC_F_INDIRECT`: the buffer is a table of descriptors.
    pub const F_INDIRECT: u16 = 4;
}

/// The available ring (section 2.7.6, `struct virtq_avail`).
pub mod avail {
    /// Offset of `flags`.
    pub const FLAGS: u64 = 0;
    /// Offset of `idx`.
    pub const IDX: u64 = 2;
    /// Offset of `ring[0]`.
    pub const RING: u64 = 4;
    /// Size of one ring entry.
    pub const ENTRY_SIZE: u64 = 2;
    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver does not want used buffer
    /// notifications (only without `VIRTIO_F_EVENT_IDX`).
    pub const F_NO_INTERRUPT: u16 = 1;
    /// Alignment of the area.
    pub const ALIGN: u64 = 2;
}

/// The used ring (section 2.7.8, `struct virtq_used`).
pub mod used {
    /// Offset of `flags`.
    pub const FLAGS: u64 = 0;
    /// Offset of `idx`.
    pub const IDX: u64 = 2;
    /// Offset of `ring[0]`.
    pub const RING: u64 = 4;
    /// Size of one ring entry (`le32 id; le32 len`).
    pub const ENTRY_SIZE: u64 = 8;
    /// Offset of `len` in an entry.
    pub const ENTRY_LEN: u64 = 4;
    /// Alignment of the area.
    pub const ALIGN: u64 = 4;
}

/// Alignment of the descriptor table.
pub const DESCRIPTOR_TABLE_ALIGN: u64 = 16;

/// The three parts of a split virtqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Area {
    /// The descriptor table (descriptor area).
    DescriptorTable,
    /// The available ring (driver area).
    AvailableRing,
    /// The used ring (device area).
    UsedRing,
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DescriptorTable => "descriptor table",
            Self::AvailableRing => "available ring",
            Self::UsedRing => "used ring",
        })
    }
}

/// Something wrong with a virtqueue or a request in it: the driver broke the spec.
/// The transport answers it with `DEVICE_NEEDS_RESET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueError {
    /// The queue size is not a power of two between 1 and the maximum.
    BadSize {
        /// The size the driver wrote to `QueueNum`.
        size: u16,
        /// `QueueNumMax`.
        max: u16,
    },
    /// A queue part is not aligned as section 2.7 requires.
    Misaligned {
        /// Which part.
        area: Area,
        /// Its guest physical address.
        address: u64,
    },
    /// A queue part is not wholly inside guest RAM.
    AreaOutsideMemory {
        /// Which part.
        area: Area,
        /// Its guest physical address.
        address: u64,
    },
    /// The driver's available index moved by more than the queue size.
    AvailIndexJump {
        /// The index the device had reached.
        seen: u16,
        /// The index the driver published.
        published: u16,
        /// The queue size.
        size: u16,
    },
    /// An available ring entry names a descriptor past the end of the table.
    HeadOutOfRange {
        /// The entry's value.
        head: u16,
        /// The queue size.
        size: u16,
    },
    /// A descriptor's `next` is past the end of its table.
    NextOutOfRange {
        /// The descriptor holding `next`.
        index: u16,
        /// The value of `next`.
        next: u16,
        /// The number of descriptors in the table.
        table: u32,
        /// Whether the table is an indirect one.
        indirect: bool,
    },
    /// The chain has more descriptors than allowed: it loops, or is longer than the
    /// queue (or indirect table) permits, or than [`MAX_CHAIN_DESCRIPTORS`].
    ChainTooLong {
        /// The limit that was hit.
        limit: u32,
    },
    /// The chain describes more than [`MAX_CHAIN_BYTES`].
    ChainTooLarge,
    /// A device-readable descriptor follows a device-writable one.
    ReadableAfterWritable {
        /// The offending descriptor.
        index: u16,
    },
    /// A buffer is not wholly inside guest RAM (or wraps past 2^64).
    BufferOutsideMemory {
        /// The descriptor.
        index: u16,
        /// Its `addr`.
        address: u64,
        /// Its `len`.
        length: u32,
    },
    /// An indirect descriptor although `VIRTIO_F_INDIRECT_DESC` was not negotiated.
    IndirectNotNegotiated {
        /// The descriptor.
        index: u16,
    },
    /// A descriptor with both `INDIRECT` and `NEXT`.
    IndirectWithNext {
        /// The descriptor.
        index: u16,
    },
    /// An indirect descriptor inside an indirect table.
    NestedIndirect {
        /// The descriptor's index in the indirect table.
        index: u16,
    },
    /// An indirect table whose length is zero or not a multiple of 16.
    BadIndirectLength {
        /// The descriptor pointing at the table.
        index: u16,
        /// Its `len`.
        length: u32,
    },
    /// An indirect table with more than [`MAX_INDIRECT_DESCRIPTORS`] entries.
    IndirectTooLong {
        /// The table's entries.
        entries: u32,
    },
    /// An indirect table not wholly inside guest RAM.
    IndirectOutsideMemory {
        /// The descriptor pointing at the table.
        index: u16,
        /// Its `addr`.
        address: u64,
        /// Its `len`.
        length: u32,
    },
    /// A ring access outside guest RAM.
    Memory(MemoryError),
    /// A request's buffers are shorter than its format requires.
    ShortChain {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A request the device cannot make sense of (the reason says why).
    BadRequest(&'static str),
}

/// A [`QueueError`] and the queue it happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueFault {
    /// The queue index.
    pub queue: u16,
    /// What was wrong.
    pub error: QueueError,
}

impl fmt::Display for QueueFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtqueue {}: {}", self.queue, self.error)
    }
}

impl QueueError {
    /// This error, on queue `queue`.
    pub const fn on(self, queue: usize) -> QueueFault {
        QueueFault {
            queue: queue as u16,
            error: self,
        }
    }
}

impl From<MemoryError> for QueueError {
    fn from(error: MemoryError) -> Self {
        Self::Memory(error)
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadSize { size, max } => write!(
                f,
                "queue size {size} is not a power of two between 1 and {max}"
            ),
            Self::Misaligned { area, address } => {
                let align = match area {
                    Area::DescriptorTable => DESCRIPTOR_TABLE_ALIGN,
                    Area::AvailableRing => avail::ALIGN,
                    Area::UsedRing => used::ALIGN,
                };
                write!(f, "the {area} at {address:#x} is not {align}-byte aligned")
            }
            Self::AreaOutsideMemory { area, address } => {
                write!(f, "the {area} at {address:#x} is not inside guest RAM")
            }
            Self::AvailIndexJump {
                seen,
                published,
                size,
            } => write!(
                f,
                "the available index jumped from {seen} to {published}, more than the \
                 queue's {size} entries"
            ),
            Self::HeadOutOfRange { head, size } => write!(
                f,
                "an available ring entry names descriptor {head}, but the queue has {size}"
            ),
            Self::NextOutOfRange {
                index,
                next,
                table,
                indirect,
            } => {
                let kind = if indirect { "indirect table" } else { "queue" };
                write!(
                    f,
                    "descriptor {index} chains to {next}, but the {kind} has {table}"
                )
            }
            Self::ChainTooLong { limit } => write!(
                f,
                "a descriptor chain loops or is longer than {limit} descriptors"
            ),
            Self::ChainTooLarge => write!(
                f,
                "a descriptor chain describes more than {MAX_CHAIN_BYTES} bytes"
            ),
            Self::ReadableAfterWritable { index } => write!(
                f,
                "descriptor {index} is device-readable but follows a device-writable one"
            ),
            Self::BufferOutsideMemory {
                index,
                address,
                length,
            } => write!(
                f,
                "descriptor {index} points at {address:#x} (+{length:#x} bytes), outside \
                 guest RAM"
            ),
            Self::IndirectNotNegotiated { index } => write!(
                f,
                "descriptor {index} is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated"
            ),
            Self::IndirectWithNext { index } => {
                write!(f, "descriptor {index} is both indirect and chained")
            }
            Self::NestedIndirect { index } => {
                write!(f, "entry {index} of an indirect table is itself indirect")
            }
            Self::BadIndirectLength { index, length } => write!(
                f,
                "descriptor {index} points at an indirect table of {length} bytes, not a \
                 non-zero multiple of 16"
            ),
            Self::IndirectTooLong { entries } => write!(
                f,
                "an indirect table has {entries} entries, more than \
                 {MAX_INDIRECT_DESCRIPTORS}"
            ),
            Self::IndirectOutsideMemory {
                index,
                address,
                length,
            } => write!(
                f,
                "descriptor {index} points at an indirect table at {address:#x} (+{length:#x} \
                 bytes), outside guest RAM"
            ),
            Self::Memory(error) => write!(f, "a ring access failed: {error}"),
            Self::ShortChain { needed, available } => write!(
                f,
                "a request's buffers hold {available} bytes where {needed} are needed"
            ),
            Self::BadRequest(reason) => write!(f, "a malformed request: {reason}"),
        }
    }
}

/// One descriptor as read from a table.
#[derive(Clone, Copy, Debug)]
struct Descriptor {
    address: u64,
    length: u32,
    flags: u16,
    next: u16,
}

impl Descriptor {
    fn read(memory: &dyn GuestMemory, address: u64) -> Result<Self, MemoryError> {
        let mut raw = [0; desc::SIZE as usize];
        memory.read(address, &mut raw)?;
        // Each field, little-endian, at its offset; a `u64` gathers up to 8 bytes.
        let field = |offset: u64, width: usize| {
            let start = offset as usize;
            let mut bytes = [0; 8];
            bytes[..width].copy_from_slice(&raw[start..start + width]);
            u64::from_le_bytes(bytes)
        };
        Ok(Self {
            address: field(desc::ADDR, 8),
            length: field(desc::LEN, 4) as u32,
            flags: field(desc::FLAGS, 2) as u16,
            next: field(desc::NEXT, 2) as u16,
        })
    }

    const fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// `base + offset`, refusing to wrap past 2^64.
fn at(base: u64, offset: u64) -> Result<u64, MemoryError> {
    base.checked_add(offset).ok_or(MemoryError {
        address: base,
        length: offset,
    })
}

/// Whether a used buffer notification is due under `VIRTIO_F_EVENT_IDX`: the used
/// index moved from `old` to `new` and passed `event` on the way (section 2.7.10:
/// notify when the entry at index `used_event` has been written, i.e. `idx` reached
/// `used_event + 1`), in 16-bit wrapping arithmetic.
pub const fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// The state of one virtqueue as plain data, for snapshots.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct QueueState {
    /// `QueueNum`.
    pub size: u16,
    /// `QueueReady`.
    pub ready: bool,
    /// Descriptor table address.
    pub descriptors: u64,
    /// Available ring address.
    pub driver: u64,
    /// Used ring address.
    pub device: u64,
    /// The next available ring index the device will take.
    pub next_avail: u16,
    /// The used index the device has published.
    pub next_used: u16,
    /// The used index at the last interrupt decision.
    pub signalled_used: u16,
}

/// One split virtqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    max_size: u16,
    size: u16,
    ready: bool,
    descriptors: u64,
    driver: u64,
    device: u64,
    next_avail: u16,
    next_used: u16,
    signalled_used: u16,
    event_idx: bool,
    indirect: bool,
    /// Chains `pop` may still return in the current batch.
    batch_left: u16,
    /// `pop` stopped because the batch was used up.
    batch_exhausted: bool,
}

impl Queue {
    /// A queue that can be up to `max_size` entries (capped at [`MAX_QUEUE_SIZE`]),
    /// not ready, with `QueueNum` preset to the maximum.
    pub fn new(max_size: u16) -> Self {
        let max_size = max_size.min(MAX_QUEUE_SIZE);
        Self {
            max_size,
            size: max_size,
            ready: false,
            descriptors: 0,
            driver: 0,
            device: 0,
            next_avail: 0,
            next_used: 0,
            signalled_used: 0,
            event_idx: false,
            indirect: false,
            batch_left: max_size,
            batch_exhausted: false,
        }
    }

    /// Back to the state of [`new`](Self::new) (device reset).
    pub fn reset(&mut self) {
        *self = Self::new(self.max_size);
    }

    /// `QueueNumMax`.
    pub const fn max_size(&self) -> u16 {
        self.max_size
    }

    /// `QueueNum`.
    pub const fn size(&self) -> u16 {
        self.size
    }

    /// `QueueReady`.
    pub const fn is_ready(&self) -> bool {
        self.ready
    }

    /// The descriptor table's address.
    pub const fn descriptor_area(&self) -> u64 {
        self.descriptors
    }

    /// The available ring's address.
    pub const fn driver_area(&self) -> u64 {
        self.driver
    }

    /// The used ring's address.
    pub const fn device_area(&self) -> u64 {
        self.device
    }

    /// Sets `QueueNum` (validated when the queue is made ready).
    pub fn set_size(&mut self, size: u16) {
        self.size = size;
    }

    /// Sets the descriptor table's address.
    pub fn set_descriptor_area(&mut self, address: u64) {
        self.descriptors = address;
    }

    /// Sets the available ring's address.
    pub fn set_driver_area(&mut self, address: u64) {
        self.driver = address;
    }

    /// Sets the used ring's address.
    pub fn set_device_area(&mut self, address: u64) {
        self.device = address;
    }

    /// Sets the negotiated ring features: `VIRTIO_F_EVENT_IDX` and
    /// `VIRTIO_F_INDIRECT_DESC`.
    pub fn set_features(&mut self, event_idx: bool, indirect: bool) {
        self.event_idx = event_idx;
        self.indirect = indirect;
    }

    /// Enables the queue (`QueueReady` = 1) after checking its size and the alignment
    /// of its parts; the ring indices start at 0. On error the queue stays disabled.
    pub fn enable(&mut self) -> Result<(), QueueError> {
        self.check_layout()?;
        self.ready = true;
        self.next_avail = 0;
        self.next_used = 0;
        self.signalled_used = 0;
        Ok(())
    }

    /// Disables the queue (`QueueReady` = 0); its configuration stays.
    pub fn disable(&mut self) {
        self.ready = false;
    }

    /// Checks the size (a power of two, at most `QueueNumMax`) and the alignment of the
    /// three parts (section 2.7).
    pub fn check_layout(&self) -> Result<(), QueueError> {
        if !self.size.is_power_of_two() || self.size > self.max_size {
            return Err(QueueError::BadSize {
                size: self.size,
                max: self.max_size,
            });
        }
        for (area, address, align) in [
            (
                Area::DescriptorTable,
                self.descriptors,
                DESCRIPTOR_TABLE_ALIGN,
            ),
            (Area::AvailableRing, self.driver, avail::ALIGN),
            (Area::UsedRing, self.device, used::ALIGN),
        ] {
            if address % align != 0 {
                return Err(QueueError::Misaligned { area, address });
            }
        }
        Ok(())
    }

    /// Checks that the three parts lie wholly inside guest RAM (the sizes include the
    /// event index fields, as section 2.7's table does).
    pub fn check_areas(&self, memory: &dyn GuestMemory) -> Result<(), QueueError> {
        let size = u64::from(self.size);
        for (area, address, length) in [
            (Area::DescriptorTable, self.descriptors, desc::SIZE * size),
            (
                Area::AvailableRing,
                self.driver,
                avail::RING + 2 + avail::ENTRY_SIZE * size,
            ),
            (
                Area::UsedRing,
                self.device,
                used::RING + 2 + used::ENTRY_SIZE * size,
            ),
        ] {
            memory
                .check(address, length)
                .map_err(|_| QueueError::AreaOutsideMemory { area, address })?;
        }
        Ok(())
    }

    /// Starts a batch: [`pop`](Self::pop) will return at most one queue's worth of
    /// chains until the next batch, so that a guest refilling the ring from another
    /// vCPU cannot keep the device busy forever.
    pub fn start_batch(&mut self) {
        self.batch_left = self.size;
        self.batch_exhausted = false;
    }

    /// Whether the last batch ended because it reached its limit (more chains may be
    /// waiting).
    pub const fn batch_exhausted(&self) -> bool {
        self.batch_exhausted
    }

    /// The address of available ring entry `index` (mod size).
    fn avail_entry(&self, index: u16) -> Result<u64, MemoryError> {
        let slot = u64::from(index % self.size);
        at(self.driver, avail::RING + avail::ENTRY_SIZE * slot)
    }

    /// The address of `used_event`, after the available ring.
    fn used_event_address(&self) -> Result<u64, MemoryError> {
        at(
            self.driver,
            avail::RING + avail::ENTRY_SIZE * u64::from(self.size),
        )
    }

    /// The address of `avail_event`, after the used ring.
    fn avail_event_address(&self) -> Result<u64, MemoryError> {
        at(
            self.device,
            used::RING + used::ENTRY_SIZE * u64::from(self.size),
        )
    }

    /// Takes the next chain the driver made available and walks it into `chain`.
    ///
    /// `Ok(false)` when the queue is not ready, the ring is empty, or the batch is
    /// used up. With `VIRTIO_F_EVENT_IDX`, an empty ring makes the device publish
    /// `avail_event` (asking to be notified of the next buffer) and look once more.
    pub fn pop(
        &mut self,
        memory: &mut dyn GuestMemory,
        chain: &mut Chain,
    ) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        if self.batch_left == 0 {
            self.batch_exhausted = true;
            return Ok(false);
        }
        let mut published = self.available_index(memory)?;
        if published == self.next_avail && self.event_idx {
            memory.write_u16(self.avail_event_address()?, self.next_avail)?;
            fence(Ordering::SeqCst);
            published = self.available_index(memory)?;
        }
        if published == self.next_avail {
            return Ok(false);
        }
        // Entries and descriptors may only be read after the index that covers them.
        fence(Ordering::Acquire);
        let head = memory.read_u16(self.avail_entry(self.next_avail)?)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        self.batch_left -= 1;
        self.walk(memory, head, chain)?;
        Ok(true)
    }

    /// `avail.idx`, checked against the wrap-around rule.
    fn available_index(&self, memory: &dyn GuestMemory) -> Result<u16, QueueError> {
        let published = memory.read_u16(at(self.driver, avail::IDX)?)?;
        if published.wrapping_sub(self.next_avail) > self.size {
            return Err(QueueError::AvailIndexJump {
                seen: self.next_avail,
                published,
                size: self.size,
            });
        }
        Ok(published)
    }

    /// Walks the chain starting at descriptor `head` into `chain`, validating every
    /// descriptor (see the module documentation). On error `chain` holds a prefix and
    /// must not be used.
    pub fn walk(
        &self,
        memory: &dyn GuestMemory,
        head: u16,
        chain: &mut Chain,
    ) -> Result<(), QueueError> {
        chain.reset(head);
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange {
                head,
                size: self.size,
            });
        }
        let mut walk = Walk {
            memory,
            chain,
            descriptors: 0,
            writable_seen: false,
        };
        let table = u32::from(self.size);
        let mut index = head;
        for _ in 0..table {
            let descriptor =
                Descriptor::read(memory, at(self.descriptors, desc::SIZE * u64::from(index))?)?;
            if descriptor.has(desc::F_INDIRECT) {
                if !self.indirect {
                    return Err(QueueError::IndirectNotNegotiated { index });
                }
                if descriptor.has(desc::F_NEXT) {
                    return Err(QueueError::IndirectWithNext { index });
                }
                return walk.indirect(index, descriptor);
            }
            walk.add(index, descriptor)?;
            if !descriptor.has(desc::F_NEXT) {
                return Ok(());
            }
            if u32::from(descriptor.next) >= table {
                return Err(QueueError::NextOutOfRange {
                    index,
                    next: descriptor.next,
                    table,
                    indirect: false,
                });
            }
            index = descriptor.next;
        }
        Err(QueueError::ChainTooLong { limit: table })
    }

    /// Returns the chain with head `head` to the driver, saying the device wrote
    /// `written` bytes into it (section 2.7.8). Does nothing if the queue is not ready.
    pub fn add_used(
        &mut self,
        memory: &mut dyn GuestMemory,
        head: u16,
        written: u32,
    ) -> Result<(), QueueError> {
        if !self.ready {
            return Ok(());
        }
        let slot = u64::from(self.next_used % self.size);
        let entry = at(self.device, used::RING + used::ENTRY_SIZE * slot)?;
        let mut raw = [0; used::ENTRY_SIZE as usize];
        raw[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        raw[used::ENTRY_LEN as usize..].copy_from_slice(&written.to_le_bytes());
        memory.write(entry, &raw)?;
        // The entry must be visible before the index that publishes it.
        fence(Ordering::Release);
        self.next_used = self.next_used.wrapping_add(1);
        memory.write_u16(at(self.device, used::IDX)?, self.next_used)?;
        Ok(())
    }

    /// Whether entries were added to the used ring since the last
    /// [`needs_interrupt`](Self::needs_interrupt).
    pub const fn has_new_used(&self) -> bool {
        self.ready && self.next_used != self.signalled_used
    }

    /// Whether the device should send a used buffer notification for the entries it
    /// added since the last call (section 2.7.7.2): with `VIRTIO_F_EVENT_IDX`, when
    /// the used index passed `used_event`; without it, unless the driver set
    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`. `false` when nothing was added.
    pub fn needs_interrupt(&mut self, memory: &dyn GuestMemory) -> Result<bool, QueueError> {
        if !self.ready || self.next_used == self.signalled_used {
            return Ok(false);
        }
        // The used index must be visible before reading the driver's wishes.
        fence(Ordering::SeqCst);
        let old = self.signalled_used;
        self.signalled_used = self.next_used;
        if self.event_idx {
            let event = memory.read_u16(self.used_event_address()?)?;
            Ok(need_event(event, self.next_used, old))
        } else {
            let flags = memory.read_u16(at(self.driver, avail::FLAGS)?)?;
            Ok(flags & avail::F_NO_INTERRUPT == 0)
        }
    }

    /// The state as plain data.
    pub fn save(&self) -> QueueState {
        QueueState {
            size: self.size,
            ready: self.ready,
            descriptors: self.descriptors,
            driver: self.driver,
            device: self.device,
            next_avail: self.next_avail,
            next_used: self.next_used,
            signalled_used: self.signalled_used,
        }
    }

    /// Checks that `state` fits this queue: a ready queue passes
    /// [`check_layout`](Self::check_layout), and no size exceeds the maximum. (Whether
    /// the parts lie inside guest RAM is checked at the next use.)
    pub fn check_state(&self, state: &QueueState) -> Result<(), QueueError> {
        let mut probe = self.clone();
        probe.apply(state);
        if state.size > self.max_size {
            return Err(QueueError::BadSize {
                size: state.size,
                max: self.max_size,
            });
        }
        if state.ready {
            probe.check_layout()?;
        }
        Ok(())
    }

    /// Restores `state` after [`check_state`](Self::check_state) accepted it. The
    /// ring features are set separately ([`set_features`](Self::set_features)).
    pub fn restore(&mut self, state: &QueueState) -> Result<(), QueueError> {
        self.check_state(state)?;
        self.apply(state);
        Ok(())
    }

    fn apply(&mut self, state: &QueueState) {
        self.size = state.size;
        self.ready = state.ready;
        self.descriptors = state.descriptors;
        self.driver = state.driver;
        self.device = state.device;
        self.next_avail = state.next_avail;
        self.next_used = state.next_used;
        self.signalled_used = state.signalled_used;
        self.batch_left = self.size;
        self.batch_exhausted = false;
    }
}

/// One chain walk in progress: the checks that span descriptors.
struct Walk<'a> {
    memory: &'a dyn GuestMemory,
    chain: &'a mut Chain,
    /// Descriptors visited so far, direct and indirect (empty ones included).
    descriptors: usize,
    /// Whether a device-writable descriptor has been seen.
    writable_seen: bool,
}

impl Walk<'_> {
    /// Checks one (non-indirect) descriptor and records it.
    fn add(&mut self, index: u16, descriptor: Descriptor) -> Result<(), QueueError> {
        if self.descriptors >= MAX_CHAIN_DESCRIPTORS {
            return Err(QueueError::ChainTooLong {
                limit: MAX_CHAIN_DESCRIPTORS as u32,
            });
        }
        self.descriptors += 1;
        let writable = descriptor.has(desc::F_WRITE);
        if !writable && self.writable_seen {
            return Err(QueueError::ReadableAfterWritable { index });
        }
        self.writable_seen |= writable;
        if descriptor.length == 0 {
            return Ok(());
        }
        let total = self.chain.readable_len() + self.chain.writable_len();
        if total + u64::from(descriptor.length) > MAX_CHAIN_BYTES {
            return Err(QueueError::ChainTooLarge);
        }
        self.memory
            .check(descriptor.address, u64::from(descriptor.length))
            .map_err(|_| QueueError::BufferOutsideMemory {
                index,
                address: descriptor.address,
                length: descriptor.length,
            })?;
        debug_assert!(self.chain.len() < MAX_CHAIN_DESCRIPTORS);
        self.chain.push(
            Segment {
                address: descriptor.address,
                length: descriptor.length,
            },
            writable,
        );
        Ok(())
    }

    /// Walks the indirect table `pointer` (descriptor `index` of the queue) points at.
    /// Its `WRITE` flag is ignored (section 2.7.5.3.2).
    fn indirect(mut self, index: u16, pointer: Descriptor) -> Result<(), QueueError> {
        if pointer.length == 0 || u64::from(pointer.length) % desc::SIZE != 0 {
            return Err(QueueError::BadIndirectLength {
                index,
                length: pointer.length,
            });
        }
        let entries = (u64::from(pointer.length) / desc::SIZE) as u32;
        if entries > MAX_INDIRECT_DESCRIPTORS {
            return Err(QueueError::IndirectTooLong { entries });
        }
        self.memory
            .check(pointer.address, u64::from(pointer.length))
            .map_err(|_| QueueError::IndirectOutsideMemory {
                index,
                address: pointer.address,
                length: pointer.length,
            })?;
        let mut entry: u16 = 0;
        for _ in 0..entries {
            // Inside the table, which lies inside RAM: cannot overflow.
            let address = pointer.address + desc::SIZE * u64::from(entry);
            let descriptor = Descriptor::read(self.memory, address)?;
            if descriptor.has(desc::F_INDIRECT) {
                return Err(QueueError::NestedIndirect { index: entry });
            }
            self.add(entry, descriptor)?;
            if !descriptor.has(desc::F_NEXT) {
                return Ok(());
            }
            if u32::from(descriptor.next) >= entries {
                return Err(QueueError::NextOutOfRange {
                    index: entry,
                    next: descriptor.next,
                    table: entries,
                    indirect: true,
                });
            }
            entry = descriptor.next;
        }
        Err(QueueError::ChainTooLong { limit: entries })
    }
}

#[cfg(test)]
mod tests;
