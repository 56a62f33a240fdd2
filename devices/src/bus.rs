//! The MMIO bus: which emulated device answers at which guest physical address.
//!
//! The hypervisor registers each device once, at VM setup, with the window of guest
//! physical addresses it occupies; on every trapped guest load or store it asks the
//! bus for the device and offset at the faulting address
//! ([`target_mut`](MmioBus::target_mut)), or lets the bus perform the access
//! ([`read`](MmioBus::read), [`write`](MmioBus::write)) for devices that are plain
//! [`MmioDevice`]s. The bus turns the address into an offset within the device and
//! checks that the whole access lies inside the device's window, which is what the
//! [`MmioDevice`] contract promises devices.
//!
//! Windows never overlap, so an address belongs to at most one device. Lookup is a
//! binary search over the windows sorted by base address: the access path allocates
//! nothing and costs `O(log n)` comparisons.
//!
//! The bus holds devices of one type `D`, by value: a hypervisor with several kinds
//! of device makes `D` an enum of them, so that reaching a device never needs a
//! downcast. The caller keeps the [`DeviceId`] that [`add`](MmioBus::add) returns to
//! reach a device afterwards ([`device_mut`](MmioBus::device_mut)), e.g. to give a
//! UART typed input.

use crate::mmio::{AccessWidth, MmioDevice};
use alloc::vec::Vec;
use core::fmt;

/// Identifies a device on one [`MmioBus`]: the order in which it was added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(usize);

impl DeviceId {
    /// The device's index on its bus (0 for the first device added).
    pub const fn index(self) -> usize {
        self.0
    }
}

/// Why a device could not be added to the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusError {
    /// The window is empty.
    ZeroSize {
        /// The requested base address.
        base: u64,
    },
    /// The window runs past the top of the 64-bit address space.
    WrapsAround {
        /// The requested base address.
        base: u64,
        /// The requested size in bytes.
        size: u64,
    },
    /// The window overlaps the window of a device already on the bus.
    Overlap {
        /// The requested base address.
        base: u64,
        /// The requested size in bytes.
        size: u64,
        /// The device already there.
        existing: DeviceId,
        /// Base of the existing device's window.
        existing_base: u64,
        /// Size of the existing device's window.
        existing_size: u64,
    },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroSize { base } => {
                write!(f, "MMIO device at {base:#x} has a window of size 0")
            }
            Self::WrapsAround { base, size } => write!(
                f,
                "MMIO device window at {base:#x} of {size:#x} bytes runs past the end of the address space"
            ),
            Self::Overlap {
                base,
                size,
                existing,
                existing_base,
                existing_size,
            } => write!(
                f,
                "MMIO device window {base:#x}..={:#x} overlaps device {} at {existing_base:#x}..={:#x}",
                last_address(base, size),
                existing.index(),
                last_address(existing_base, existing_size),
            ),
        }
    }
}

/// The last address of a window of `size` bytes at `base` (saturating, for messages).
fn last_address(base: u64, size: u64) -> u64 {
    base.saturating_add(size.saturating_sub(1))
}

/// One device and its window.
struct Slot<D> {
    /// First guest physical address of the window.
    base: u64,
    /// Last guest physical address of the window (inclusive, so that a window may
    /// end at the very top of the address space).
    last: u64,
    device: D,
}

impl<D> Slot<D> {
    fn size(&self) -> u64 {
        // Cannot overflow for windows below the top of the address space; a window
        // covering all 2^64 addresses is impossible (its size would not fit a u64).
        self.last - self.base + 1
    }
}

/// Guest physical address ranges mapped to emulated devices of type `D`.
pub struct MmioBus<D> {
    /// The devices in the order they were added: `DeviceId(i)` is `slots[i]`.
    slots: Vec<Slot<D>>,
    /// Every window with its index in `slots`, sorted by base address: the lookup
    /// searches this flat array alone, touching a slot only once it is found.
    by_address: Vec<Window>,
    /// The position in `by_address` of the window the last access hit, tried first:
    /// a guest usually goes on with the device it just used. Any position is safe
    /// to try, as windows do not overlap.
    last_hit: usize,
}

/// A window in the lookup array.
#[derive(Clone, Copy)]
struct Window {
    base: u64,
    last: u64,
    slot: usize,
}

impl<D> Default for MmioBus<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> MmioBus<D> {
    /// An empty bus.
    pub const fn new() -> Self {
        Self {
            slots: Vec::new(),
            by_address: Vec::new(),
            last_hit: 0,
        }
    }

    /// The number of devices on the bus.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no device has been added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds `device` at guest physical addresses `base..base + size`.
    ///
    /// Fails, leaving the bus unchanged, if the window is empty, runs past the top of
    /// the address space or overlaps a device already on the bus.
    pub fn add(&mut self, base: u64, size: u64, device: D) -> Result<DeviceId, BusError> {
        if size == 0 {
            return Err(BusError::ZeroSize { base });
        }
        let last = base
            .checked_add(size - 1)
            .ok_or(BusError::WrapsAround { base, size })?;
        // The first window starting after `base`, and the one before it: only these
        // two can overlap the new window, since windows are disjoint and sorted.
        let position = self
            .by_address
            .partition_point(|window| window.base <= base);
        let neighbours = [position.checked_sub(1), Some(position)];
        for index in neighbours.into_iter().flatten() {
            if let Some(&Window {
                slot: slot_index, ..
            }) = self.by_address.get(index)
            {
                let slot = &self.slots[slot_index];
                if slot.base <= last && base <= slot.last {
                    return Err(BusError::Overlap {
                        base,
                        size,
                        existing: DeviceId(slot_index),
                        existing_base: slot.base,
                        existing_size: slot.size(),
                    });
                }
            }
        }
        let id = DeviceId(self.slots.len());
        self.slots.push(Slot { base, last, device });
        self.by_address.insert(
            position,
            Window {
                base,
                last,
                slot: id.0,
            },
        );
        Ok(id)
    }

    /// The index in `slots` of the device whose window holds `address`.
    #[inline]
    fn find(&self, address: u64) -> Option<usize> {
        self.locate(address).map(|(_, slot)| slot)
    }

    /// The position in `by_address` and the index in `slots` of the window that
    /// holds `address`.
    #[inline]
    fn locate(&self, address: u64) -> Option<(usize, usize)> {
        let position = self
            .by_address
            .partition_point(|window| window.base <= address)
            .checked_sub(1)?;
        let window = self.by_address.get(position)?;
        (address <= window.last).then_some((position, window.slot))
    }

    /// The device and offset for an access of `width` at `address`, if a device's
    /// window holds every byte of the access: the one lookup of an emulated access
    /// (the window of the last one first).
    pub fn target_mut(&mut self, address: u64, width: AccessWidth) -> Option<(&mut D, u64)> {
        let index = match self.by_address.get(self.last_hit) {
            Some(window) if window.base <= address && address <= window.last => window.slot,
            _ => {
                let (position, slot) = self.locate(address)?;
                self.last_hit = position;
                slot
            }
        };
        let slot = &mut self.slots[index];
        let offset = address - slot.base;
        // `last - address` is the number of bytes after the first one; the access
        // needs `width - 1` more.
        (width.bytes() - 1 <= slot.last - address).then_some((&mut slot.device, offset))
    }

    /// Whether some device's window holds `address`.
    pub fn contains(&self, address: u64) -> bool {
        self.find(address).is_some()
    }

    /// The device `id`.
    pub fn device_mut(&mut self, id: DeviceId) -> Option<&mut D> {
        Some(&mut self.slots.get_mut(id.0)?.device)
    }

    /// Every device with its window (base address and size), in the order they were
    /// added.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, u64, &mut D)> {
        self.slots.iter_mut().map(|slot| {
            let size = slot.size();
            (slot.base, size, &mut slot.device)
        })
    }

    /// The device whose window starts exactly at `base`.
    pub fn device_at(&self, base: u64) -> Option<DeviceId> {
        let index = self.find(base)?;
        (self.slots[index].base == base).then_some(DeviceId(index))
    }

    /// The window of device `id`: its base address and size in bytes.
    pub fn window(&self, id: DeviceId) -> Option<(u64, u64)> {
        let slot = self.slots.get(id.0)?;
        Some((slot.base, slot.size()))
    }
}

impl<D: MmioDevice> MmioBus<D> {
    /// Reads `width` bytes at guest physical `address`.
    ///
    /// `None` when no device is there, or when the access starts inside a device but
    /// runs past the end of its window. The value is masked to `width`.
    pub fn read(&mut self, address: u64, width: AccessWidth) -> Option<u64> {
        let (device, offset) = self.target_mut(address, width)?;
        Some(width.truncate(device.read(offset, width)))
    }

    /// Writes the low `width` bytes of `value` at guest physical `address`.
    ///
    /// `None` when no device is there, or when the access starts inside a device but
    /// runs past the end of its window; the device then sees nothing.
    pub fn write(&mut self, address: u64, width: AccessWidth, value: u64) -> Option<()> {
        let (device, offset) = self.target_mut(address, width)?;
        device.write(offset, width, width.truncate(value));
        Some(())
    }
}

impl<D> fmt::Debug for MmioBus<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for window in &self.by_address {
            list.entry(&format_args!(
                "device {}: {:#x}..={:#x}",
                window.slot, window.base, window.last
            ));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec as StdVec;

    /// A device that records every access and answers reads with a fixed value
    /// (deliberately with bits above any width, to check the bus masks them).
    #[derive(Default)]
    struct Recorder {
        reads: StdVec<(u64, AccessWidth)>,
        writes: StdVec<(u64, AccessWidth, u64)>,
    }

    const READ_VALUE: u64 = 0xFEDC_BA98_7654_3210;

    impl MmioDevice for Recorder {
        fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
            self.reads.push((offset, width));
            READ_VALUE
        }

        fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
            self.writes.push((offset, width, value));
        }
    }

    fn recorder() -> Recorder {
        Recorder::default()
    }

    #[test]
    fn reads_and_writes_reach_the_device_at_its_offset() {
        let mut bus = MmioBus::new();
        let uart = bus.add(0x0900_0000, 0x1000, recorder()).unwrap();
        assert_eq!(
            bus.read(0x0900_0018, AccessWidth::Word),
            Some(0x7654_3210),
            "masked to 32 bits"
        );
        assert_eq!(bus.read(0x0900_0000, AccessWidth::Byte), Some(0x10));
        assert_eq!(bus.read(0x0900_0002, AccessWidth::Half), Some(0x3210));
        assert_eq!(bus.read(0x0900_0008, AccessWidth::Double), Some(READ_VALUE));
        assert_eq!(
            bus.write(0x0900_0000, AccessWidth::Byte, 0x1234),
            Some(()),
            "value truncated before the device sees it"
        );
        let device = bus.device_mut(uart).unwrap();
        assert_eq!(
            device.reads,
            vec![
                (0x18, AccessWidth::Word),
                (0x0, AccessWidth::Byte),
                (0x2, AccessWidth::Half),
                (0x8, AccessWidth::Double),
            ]
        );
        assert_eq!(device.writes, vec![(0x0, AccessWidth::Byte, 0x34)]);
    }

    #[test]
    fn devices_are_found_by_their_base_address_only() {
        let mut bus = MmioBus::new();
        let first = bus.add(0x1000, 0x100, recorder()).unwrap();
        let second = bus.add(0x3000, 0x100, recorder()).unwrap();
        assert_eq!(bus.device_at(0x1000), Some(first));
        assert_eq!(bus.device_at(0x3000), Some(second));
        for address in [0, 0x1004, 0x10FF, 0x2000, 0x3001] {
            assert_eq!(bus.device_at(address), None, "{address:#x}");
        }
    }

    #[test]
    fn the_last_window_hit_is_tried_first_and_never_answers_for_another() {
        let mut bus = MmioBus::new();
        bus.add(0x3000, 0x100, recorder()).unwrap();
        bus.add(0x1000, 0x100, recorder()).unwrap();
        bus.add(0x2000, 0x100, recorder()).unwrap();
        // Alternate between windows, then step just outside the one last hit.
        for address in [0x1004, 0x1004, 0x3008, 0x1004, 0x20FC, 0x3000] {
            let (_, offset) = bus.target_mut(address, AccessWidth::Word).unwrap();
            assert_eq!(offset, address & 0xFF, "{address:#x}");
        }
        for address in [0x2FFF, 0x3100, 0x0FFF, 0x1100] {
            assert!(
                bus.target_mut(address, AccessWidth::Byte).is_none(),
                "{address:#x}"
            );
        }
        assert!(
            bus.target_mut(0x30FE, AccessWidth::Word).is_none(),
            "an access overrunning the window last hit"
        );
        bus.add(0x0, 0x100, recorder()).unwrap();
        let (_, offset) = bus.target_mut(0x3010, AccessWidth::Word).unwrap();
        assert_eq!(offset, 0x10, "positions moved by an insertion");
    }

    #[test]
    fn unmapped_addresses_are_none() {
        let mut bus = MmioBus::new();
        assert_eq!(bus.read(0, AccessWidth::Word), None, "empty bus");
        bus.add(0x1000, 0x100, recorder()).unwrap();
        bus.add(0x3000, 0x100, recorder()).unwrap();
        for address in [0, 0xFFF, 0x1100, 0x2000, 0x2FFF, 0x3100, u64::MAX] {
            assert_eq!(bus.read(address, AccessWidth::Byte), None, "{address:#x}");
            assert_eq!(bus.write(address, AccessWidth::Byte, 0), None);
            assert!(!bus.contains(address), "{address:#x}");
        }
        for address in [0x1000, 0x10FF, 0x3000, 0x30FF] {
            assert!(bus.contains(address), "{address:#x}");
            assert!(bus.read(address, AccessWidth::Byte).is_some());
        }
    }

    #[test]
    fn an_access_running_past_the_end_of_a_device_is_none() {
        let mut bus = MmioBus::new();
        let id = bus.add(0x1000, 0x10, recorder()).unwrap();
        // The last 8 bytes fit exactly; one byte later does not.
        assert!(bus.read(0x1008, AccessWidth::Double).is_some());
        assert_eq!(bus.read(0x1009, AccessWidth::Double), None);
        assert_eq!(bus.read(0x100F, AccessWidth::Half), None);
        assert_eq!(bus.write(0x100D, AccessWidth::Word, 1), None);
        assert!(bus.read(0x100F, AccessWidth::Byte).is_some());
        // Even when the next device starts right there.
        bus.add(0x1010, 0x10, recorder()).unwrap();
        assert_eq!(bus.read(0x100C, AccessWidth::Double), None);
        let device = bus.device_mut(id).unwrap();
        assert_eq!(device.reads.len(), 2, "refused accesses never reach it");
        assert!(device.writes.is_empty());
    }

    #[test]
    fn rejects_empty_wrapping_and_overlapping_windows() {
        let mut bus = MmioBus::new();
        assert_eq!(
            bus.add(0x1000, 0, recorder()),
            Err(BusError::ZeroSize { base: 0x1000 })
        );
        assert_eq!(
            bus.add(u64::MAX - 0xF, 0x20, recorder()),
            Err(BusError::WrapsAround {
                base: u64::MAX - 0xF,
                size: 0x20
            })
        );
        let first = bus.add(0x1000, 0x1000, recorder()).unwrap();
        let overlap = |base, size| BusError::Overlap {
            base,
            size,
            existing: first,
            existing_base: 0x1000,
            existing_size: 0x1000,
        };
        // Same start, inside, straddling either end, covering it entirely.
        for (base, size) in [
            (0x1000, 0x10),
            (0x1800, 0x10),
            (0x0800, 0x1000),
            (0x1FFF, 0x10),
            (0x0000, 0x10000),
        ] {
            assert_eq!(
                bus.add(base, size, recorder()),
                Err(overlap(base, size)),
                "{base:#x}+{size:#x}"
            );
        }
        // Touching windows are fine on both sides.
        assert!(bus.add(0x0800, 0x800, recorder()).is_ok());
        assert!(bus.add(0x2000, 0x800, recorder()).is_ok());
        assert_eq!(bus.len(), 3, "failed adds leave the bus unchanged");
    }

    #[test]
    fn a_window_may_end_at_the_top_of_the_address_space() {
        let mut bus = MmioBus::new();
        let id = bus.add(u64::MAX - 0xFFF, 0x1000, recorder()).unwrap();
        assert_eq!(bus.window(id), Some((u64::MAX - 0xFFF, 0x1000)));
        assert!(bus.contains(u64::MAX));
        assert!(bus.read(u64::MAX - 7, AccessWidth::Double).is_some());
        assert_eq!(bus.read(u64::MAX - 6, AccessWidth::Double), None);
        assert_eq!(bus.read(u64::MAX, AccessWidth::Half), None);
        assert!(bus.read(u64::MAX, AccessWidth::Byte).is_some());
    }

    #[test]
    fn lookup_finds_every_device_whatever_the_insertion_order() {
        let mut bus = MmioBus::new();
        let bases = [0x5000u64, 0x1000, 0x9000, 0x3000, 0x7000];
        let ids: StdVec<DeviceId> = bases
            .iter()
            .map(|&base| bus.add(base, 0x100, recorder()).unwrap())
            .collect();
        for (i, (&base, &id)) in bases.iter().zip(&ids).enumerate() {
            assert_eq!(id.index(), i);
            bus.write(base + 0x10, AccessWidth::Word, base).unwrap();
            let device = bus.device_mut(id).unwrap();
            assert_eq!(device.writes, vec![(0x10, AccessWidth::Word, base)]);
        }
        assert_eq!(
            format!("{bus:?}"),
            "[device 1: 0x1000..=0x10ff, device 3: 0x3000..=0x30ff, \
             device 0: 0x5000..=0x50ff, device 4: 0x7000..=0x70ff, \
             device 2: 0x9000..=0x90ff]"
        );
    }

    #[test]
    fn device_access_by_id() {
        let mut bus = MmioBus::new();
        assert!(bus.is_empty());
        let first = bus.add(0x2000, 0x100, recorder()).unwrap();
        let second = bus.add(0x1000, 0x80, recorder()).unwrap();
        bus.device_mut(second)
            .unwrap()
            .write(0x4, AccessWidth::Half, 0xBEEF);
        assert_eq!(
            bus.device_mut(second).unwrap().writes,
            vec![(0x4, AccessWidth::Half, 0xBEEF)]
        );
        assert!(bus.device_mut(first).unwrap().writes.is_empty());
        let missing = DeviceId(7);
        assert!(bus.device_mut(missing).is_none());
        assert_eq!(bus.window(missing), None);
        // Every device with its window, in the order they were added.
        let windows: StdVec<(u64, u64, usize)> = bus
            .iter_mut()
            .map(|(base, size, device)| (base, size, device.writes.len()))
            .collect();
        assert_eq!(windows, vec![(0x2000, 0x100, 0), (0x1000, 0x80, 1)]);
    }

    #[test]
    fn the_target_of_an_access_is_the_device_and_offset_in_one_lookup() {
        let mut bus = MmioBus::new();
        let id = bus.add(0x1000, 0x10, recorder()).unwrap();
        bus.add(0x1010, 0x10, recorder()).unwrap();
        let (device, offset) = bus.target_mut(0x100C, AccessWidth::Word).unwrap();
        assert_eq!(offset, 0xC);
        device.write(offset, AccessWidth::Word, 1);
        assert!(
            bus.target_mut(0x100D, AccessWidth::Word).is_none(),
            "straddles"
        );
        assert!(
            bus.target_mut(0x0FFF, AccessWidth::Byte).is_none(),
            "unmapped"
        );
        let (_, offset) = bus.target_mut(0x1010, AccessWidth::Double).unwrap();
        assert_eq!(offset, 0, "the next device's first byte");
        assert_eq!(
            bus.device_mut(id).unwrap().writes,
            vec![(0xC, AccessWidth::Word, 1)]
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            BusError::ZeroSize { base: 0x1000 }.to_string(),
            "MMIO device at 0x1000 has a window of size 0"
        );
        assert_eq!(
            BusError::WrapsAround {
                base: 0xFFFF_FFFF_FFFF_F000,
                size: 0x2000
            }
            .to_string(),
            "MMIO device window at 0xfffffffffffff000 of 0x2000 bytes runs past the end of \
             the address space"
        );
        assert_eq!(
            BusError::Overlap {
                base: 0x1800,
                size: 0x1000,
                existing: DeviceId(2),
                existing_base: 0x1000,
                existing_size: 0x1000,
            }
            .to_string(),
            "MMIO device window 0x1800..=0x27ff overlaps device 2 at 0x1000..=0x1fff"
        );
    }
}
