//! Aerie's own memory: where its image lies, which RAM is free, the frame allocator
//! and the heap.
//!
//! The plan (which RAM is free) is pure logic in `aerie_hyp::memory`; this module
//! feeds it the image's linker symbols and owns the two allocators: the heap
//! (`linked_list_allocator`, for Aerie's own small objects) and the frame allocator
//! (`buddy_system_allocator`, for page-sized memory: stacks, tables, guest RAM).

use aerie_hyp::memory::{Range, RangeSet};
use aerie_hyp::paging::PAGE_SIZE;
use aerie_hyp::platform::Platform;
use buddy_system_allocator::FrameAllocator;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use linked_list_allocator::LockedHeap;

/// Smallest amount of RAM Aerie accepts: its image, heap and stacks, plus room for
/// a small guest.
pub const MIN_RAM: u64 = 64 << 20;
/// Upper bound of Aerie's heap; the heap also never takes more than 1/16 of free RAM.
const MAX_HEAP: u64 = 16 << 20;
/// Most separate free ranges tracked.
const MAX_FREE_RANGES: usize = 64;

/// The free RAM, before the frame allocator takes it over.
pub type FreeMemory = RangeSet<MAX_FREE_RANGES>;

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

/// Aerie's image in memory, by section.
#[derive(Debug, Clone, Copy)]
pub struct ImageLayout {
    /// Everything from the header to the end of the boot page tables.
    pub whole: Range,
    /// Code.
    pub text: Range,
    /// Read-only data and relocations.
    pub read_only: Range,
    /// Data, bss, boot stack and boot page tables.
    pub writable: Range,
}

impl ImageLayout {
    /// The layout of the running image (its linker symbols, after relocation).
    pub fn current() -> Self {
        // The linker script orders start <= text_end <= rodata_end <= end.
        let start = &raw const __image_start as u64;
        let text_end = &raw const __text_end as u64;
        let rodata_end = &raw const __rodata_end as u64;
        let end = &raw const __image_end as u64;
        let range = |a, b| Range::new(a, b).expect("linker script orders the image sections");
        Self {
            whole: range(start, end),
            text: range(start, text_end),
            read_only: range(text_end, rodata_end),
            writable: range(rodata_end, end),
        }
    }
}

/// Why Aerie cannot use this machine's RAM.
#[derive(Debug, Clone, Copy)]
pub enum PlanError {
    /// Less RAM than [`MIN_RAM`].
    TooLittle {
        /// RAM found.
        found: u64,
    },
    /// Too many holes to track.
    TooFragmented,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use aerie_hyp::units::ByteSize;
        match self {
            Self::TooLittle { found } => write!(
                f,
                "too little RAM: {} free after firmware reservations, Aerie needs at least {}",
                ByteSize(*found),
                ByteSize(MIN_RAM)
            ),
            Self::TooFragmented => write!(f, "RAM is split into too many pieces to track"),
        }
    }
}

/// The RAM nobody uses yet: all banks minus firmware reservations, the device tree,
/// Aerie's image and the initrd.
pub fn plan(
    platform: &Platform<'_>,
    image: &ImageLayout,
    device_tree: Range,
) -> Result<FreeMemory, PlanError> {
    let mut free = RangeSet::new();
    let full = |_| PlanError::TooFragmented;
    for bank in &platform.memory {
        if let Some(bank) = bank.align_inward(PAGE_SIZE) {
            free.insert(bank).map_err(full)?;
        }
    }
    for reserved in &platform.reserved {
        free.remove(reserved.range).map_err(full)?;
    }
    free.remove(image.whole).map_err(full)?;
    free.remove(device_tree).map_err(full)?;
    if let Some(initrd) = platform.chosen.initrd {
        free.remove(initrd).map_err(full)?;
    }
    let found = free.total_size();
    if found < MIN_RAM {
        return Err(PlanError::TooLittle { found });
    }
    Ok(free)
}

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Page frames not yet handed out, by frame number.
static FRAMES: crate::sync::Mutex<FrameAllocator<32>> =
    crate::sync::Mutex::new(FrameAllocator::new());
/// Bytes in [`FRAMES`].
static FREE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Takes the heap out of `free` and installs it. Returns its size.
pub fn init_heap(free: &mut RangeSet<MAX_FREE_RANGES>) -> Option<u64> {
    let size = (free.total_size() / 16).min(MAX_HEAP) & !(PAGE_SIZE - 1);
    let heap = free.take(size, PAGE_SIZE)?;
    // SAFETY: `heap` was just removed from the free RAM (which excludes Aerie's
    // image, the device tree and firmware reservations) and is identity-mapped
    // read-write, so the allocator owns it exclusively for the rest of the run.
    unsafe {
        HEAP.lock()
            .init(heap.start() as *mut u8, heap.size() as usize)
    };
    log::debug!(
        "heap: {} at {:#x}",
        aerie_hyp::units::ByteSize(heap.size()),
        heap.start()
    );
    Some(size)
}

/// Hands every remaining free range to the frame allocator. Needs the heap.
pub fn init_frames(free: &RangeSet<MAX_FREE_RANGES>) {
    let mut frames = FRAMES.lock();
    for range in free.iter() {
        if let Some(range) = range.align_inward(PAGE_SIZE) {
            frames.add_frame(
                (range.start() / PAGE_SIZE) as usize,
                (range.end() / PAGE_SIZE) as usize,
            );
            FREE_BYTES.fetch_add(range.size(), Ordering::Relaxed);
        }
    }
}

/// `count` contiguous, zeroed page frames, or `None` when RAM is exhausted.
pub fn allocate_frames(count: usize) -> Option<Range> {
    let first = FRAMES.lock().alloc(count)?;
    let size = count as u64 * PAGE_SIZE;
    FREE_BYTES.fetch_sub(size, Ordering::Relaxed);
    let range = Range::from_start_size(first as u64 * PAGE_SIZE, size)?;
    // SAFETY: the frames were free RAM (identity-mapped read-write) and now belong
    // to the caller alone.
    unsafe { core::ptr::write_bytes(range.start() as *mut u8, 0, size as usize) };
    Some(range)
}

/// Returns frames from [`allocate_frames`] to the allocator.
pub fn free_frames(frames: Range) {
    let count = (frames.size() / PAGE_SIZE) as usize;
    FRAMES
        .lock()
        .dealloc((frames.start() / PAGE_SIZE) as usize, count);
    FREE_BYTES.fetch_add(frames.size(), Ordering::Relaxed);
}

/// Bytes the frame allocator still holds.
pub fn free_bytes() -> u64 {
    FREE_BYTES.load(Ordering::Relaxed)
}
