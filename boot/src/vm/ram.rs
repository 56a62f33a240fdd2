//! The guest's RAM: one contiguous block of host memory, mapped at
//! `guest_layout::RAM_BASE` in the guest's physical address space.

use crate::arch::cache;
use aerie_hyp::memory::Range;

/// How [`GuestRam::place`] got bytes where they belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// They were there already: nothing was copied.
    AlreadyThere,
    /// They were copied.
    Copied,
}

/// Guest RAM and where it lives in host memory.
#[derive(Debug, Clone, Copy)]
pub struct GuestRam {
    /// Guest physical addresses of the RAM.
    pub guest: Range,
    /// Host physical address of its first byte (Aerie maps host memory one-to-one).
    pub host_base: u64,
}

impl GuestRam {
    /// The host address of `length` bytes at guest address `address`, if they lie
    /// wholly inside guest RAM.
    pub fn host_range(&self, address: u64, length: u64) -> Option<Range> {
        let wanted = Range::from_start_size(address, length)?;
        self.guest.covers(&wanted).then(|| {
            let start = self.host_base + (address - self.guest.start());
            Range::from_start_size(start, length).expect("inside host RAM")
        })
    }

    /// Copies `bytes` into guest RAM at `address`, cleaning the written lines to the
    /// point of coherency (the guest starts with its caches off). `None` if the
    /// bytes do not fit.
    pub fn write(&self, address: u64, bytes: &[u8]) -> Option<()> {
        let host = self.host_range(address, bytes.len() as u64)?;
        // SAFETY: `host` lies inside the guest's RAM block, which Aerie took out of
        // the free memory for this VM alone and maps read-write; no Rust reference
        // to it exists.
        unsafe { cache::copy(host.start() as *mut u8, bytes.as_ptr(), bytes.len()) };
        cache::clean_to_poc(host.start() as usize, bytes.len());
        Some(())
    }

    /// Puts the host bytes at `source` into guest RAM at `address`, cleaning the
    /// written lines to the point of coherency like [`Self::write`]. Nothing is
    /// copied when they are already there (a kernel the guest's RAM was placed
    /// around); the two ranges may overlap. `None` if the bytes do not fit.
    ///
    /// # Safety
    /// `source` must be readable memory that no Rust reference covers.
    pub unsafe fn place(&self, address: u64, source: Range) -> Option<Placement> {
        let host = self.host_range(address, source.size())?;
        if host.start() == source.start() {
            return Some(Placement::AlreadyThere);
        }
        let (to, from, length) = (
            host.start() as *mut u8,
            source.start() as *const u8,
            source.size() as usize,
        );
        if host.overlaps(&source) {
            // SAFETY: `host` lies inside this VM's RAM block (see `write`), `source`
            // is readable and unreferenced (the caller's promise); `copy` allows the
            // overlap.
            unsafe { core::ptr::copy(from, to, length) };
        } else {
            // SAFETY: as above, and the ranges do not overlap.
            unsafe { cache::copy(to, from, length) };
        }
        cache::clean_to_poc(host.start() as usize, length);
        Some(Placement::Copied)
    }

    /// Copies `bytes` into guest RAM at `address` without cache maintenance: for
    /// device emulation while the guest runs with its caches on (its accesses and
    /// Aerie's are coherent). `None` if the bytes do not fit.
    pub fn write_coherent(&self, address: u64, bytes: &[u8]) -> Option<()> {
        let host = self.host_range(address, bytes.len() as u64)?;
        // SAFETY: as for `write`.
        unsafe { cache::copy(host.start() as *mut u8, bytes.as_ptr(), bytes.len()) };
        Some(())
    }

    /// Copies `length` bytes of guest RAM at `address` into `buffer` (which must be
    /// at least that long). `None` if they are not wholly inside guest RAM.
    pub fn read(&self, address: u64, buffer: &mut [u8]) -> Option<()> {
        let host = self.host_range(address, buffer.len() as u64)?;
        // SAFETY: as for `write`; the guest may be writing the same bytes
        // concurrently, which can only make the copy's content arbitrary, never
        // unsound, since plain bytes have no invalid values and the copy is
        // plain copy of a region no Rust reference covers.
        unsafe { cache::copy(buffer.as_mut_ptr(), host.start() as *const u8, buffer.len()) };
        Some(())
    }

    /// All of guest RAM, to read while the VM is paused (`paused` proves it): every
    /// vCPU is parked at an exit boundary and devices only touch guest RAM while
    /// handling a vCPU's exit, so nothing writes it while the view exists.
    pub fn bytes_while_paused(&self, _paused: &crate::vm::snapshot::Paused) -> &[u8] {
        // SAFETY: the block is guest RAM: plain physical memory (never uninitialised
        // from Rust's point of view: the program did not allocate it), taken out of
        // the free memory for this VM alone, identity-mapped, and kept for Aerie's
        // lifetime; and while the VM is paused (see
        // above) nothing mutates it, so a shared slice over it is sound for as long
        // as the pause lasts, which the `paused` borrow bounds.
        unsafe {
            core::slice::from_raw_parts(self.host_base as *const u8, self.guest.size() as usize)
        }
    }

    /// Zeroes all of guest RAM (when a snapshot's pages could not all be loaded).
    pub fn zero(&self) {
        self.zero_range(self.guest.start(), self.guest.size());
    }

    /// Zeroes `length` bytes of guest RAM at `address` (clamped to guest RAM).
    pub fn zero_range(&self, address: u64, length: u64) {
        let start = address.clamp(self.guest.start(), self.guest.end());
        let end = address
            .saturating_add(length)
            .clamp(start, self.guest.end());
        let host = self.host_base + (start - self.guest.start());
        // SAFETY: `[start, end)` lies inside guest RAM (clamped above), whose block
        // is this VM's alone; no Rust reference to it exists while the VM is being
        // restored (no vCPU runs yet).
        unsafe { cache::zero(host as usize, (end - start) as usize) };
    }
}
