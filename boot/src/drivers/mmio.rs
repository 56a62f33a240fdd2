//! A device's memory-mapped register block (a tock-registers `register_structs!`
//! type), reached from any CPU: the one place where an address becomes registers.

use core::ops::Deref;

/// The register block `T` of a device, at a fixed physical address (Aerie's memory
/// map is one-to-one). Every access through it is a single volatile load or store
/// of one register.
pub struct Registers<T: 'static> {
    block: &'static T,
}

impl<T> Registers<T> {
    /// The register block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a device register block laid out as `T`, and the
    /// whole of `size_of::<T>()` bytes from `base` must stay accessible (mapped as
    /// device memory, or the MMU off) for as long as the result or a copy of it is
    /// used (for the rest of Aerie's run, if it is kept in a static). Nothing may
    /// treat that memory as ordinary memory, and the device must tolerate its
    /// registers being accessed from several CPUs at once (each access stands alone,
    /// as GIC registers do), or be used by one CPU only.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees that `base` holds a `T` for as long as the
        // reference is used; its fields are tock-registers cells (interior mutability, volatile
        // accesses), so a shared reference is how they are meant to be used.
        let block = unsafe { &*(base as *const T) };
        Self { block }
    }
}

impl<T> Deref for Registers<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.block
    }
}

impl<T> Clone for Registers<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Registers<T> {}

// SAFETY: the block is device memory, not Rust data: `new`'s contract makes every
// access a volatile access to registers that the device accepts from any CPU, so
// moving the reference to another CPU cannot create a data race.
unsafe impl<T> Send for Registers<T> {}

// SAFETY: as for `Send`: concurrent register accesses from several CPUs are what
// the device is built for (`new`'s contract).
unsafe impl<T> Sync for Registers<T> {}
