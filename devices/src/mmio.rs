//! The MMIO device interface: access widths, the [`MmioDevice`] trait of register
//! models, the [`Device`] trait of whole guest devices with the [`Effects`] of an
//! access, and [`Persist`], how every device saves and restores its state.
//!
//! When a guest load or store hits an emulated device, the hypervisor decodes the
//! trapped access (address, width, direction, value) and forwards it to the device
//! model as a `read` or `write` at an offset within the device. The device never sees
//! guest addresses, registers or syndromes.
//!
//! A [`Device`] does, in that one call, all the work the access entails (a virtio
//! transport runs its queues when a notification asks for it, a UART hands what the
//! guest transmitted to the console) and returns what the caller must do after it
//! lets go of the device: set an interrupt line, move waiting input in.

use crate::virtio::GuestMemory;
use core::fmt;

/// The width of a single MMIO access. Each variant's value is its size in bytes,
/// so that the sizes and masks every access needs cost no lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AccessWidth {
    /// 8 bits (`ldrb`/`strb`).
    Byte = 1,
    /// 16 bits (`ldrh`/`strh`).
    Half = 2,
    /// 32 bits (`ldr w`/`str w`).
    Word = 4,
    /// 64 bits (`ldr x`/`str x`).
    Double = 8,
}

impl AccessWidth {
    /// The width for an access of `n` bytes, if `n` is 1, 2, 4 or 8.
    pub const fn from_bytes(n: u64) -> Option<Self> {
        match n {
            1 => Some(Self::Byte),
            2 => Some(Self::Half),
            4 => Some(Self::Word),
            8 => Some(Self::Double),
            _ => None,
        }
    }

    /// The access size in bytes.
    pub const fn bytes(self) -> u64 {
        self as u64
    }

    /// The access size in bits.
    pub const fn bits(self) -> u32 {
        self.bytes() as u32 * u8::BITS
    }

    /// A mask of the low [`bits`](Self::bits) bits: the part of a 64-bit register an
    /// access of this width transfers.
    pub const fn mask(self) -> u64 {
        u64::MAX >> (u64::BITS - self.bits())
    }

    /// `value` truncated to this width.
    pub const fn truncate(self, value: u64) -> u64 {
        value & self.mask()
    }

    /// Whether `offset` is a multiple of this width (a naturally aligned access).
    pub const fn is_aligned(self, offset: u64) -> bool {
        offset % self.bytes() == 0
    }
}

/// A device model reachable through memory-mapped I/O.
///
/// The contract between the MMIO bus and a device:
/// - `offset` is relative to the device's base address, and the bus guarantees that
///   `offset + width.bytes()` lies within the device's size, so a device never has to
///   range-check against its window.
/// - Alignment is *not* guaranteed: a device whose registers require aligned accesses
///   checks with [`AccessWidth::is_aligned`] and treats a misaligned one like an
///   unknown register.
/// - `read` returns the value in the low `width.bits()` bits; the bus masks the result
///   with [`AccessWidth::mask`], so higher bits are ignored. `write` receives a value
///   already truncated to `width`.
/// - A guest can never make a device fail: reads of unknown or write-only registers
///   return zero, and writes to unknown or read-only registers are ignored. Neither may
///   panic.
/// - Accesses are synchronous and have no hidden outputs: side effects (interrupt
///   level changes, bytes to transmit, queue notifications) are state the caller pulls
///   from the device after the access (a [`Device`] pulls them itself).
pub trait MmioDevice {
    /// Reads `width` bytes at `offset` within the device.
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64;

    /// Writes the low `width` bytes of `value` at `offset` within the device.
    fn write(&mut self, offset: u64, width: AccessWidth, value: u64);
}

/// What the host lends a device while it performs an access or takes input.
pub trait DeviceHost {
    /// Guest RAM, where virtio queues live.
    fn memory(&mut self) -> &mut dyn GuestMemory;

    /// Bytes the guest transmitted on a console device, to show now.
    fn console_output(&mut self, bytes: &[u8]);
}

/// A new level of an interrupt line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineChange {
    /// The interrupt ID.
    pub intid: u32,
    /// The new level.
    pub level: bool,
}

/// A device's interrupt line, and the level last given to the interrupt controller
/// (low at first, unknown after [`forget`](Self::forget)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterruptLine {
    intid: u32,
    level: Option<bool>,
}

impl InterruptLine {
    /// Line `intid`, low.
    pub const fn new(intid: u32) -> Self {
        Self {
            intid,
            level: Some(false),
        }
    }

    /// The interrupt ID.
    pub const fn intid(&self) -> u32 {
        self.intid
    }

    /// Records that the device's line is at `level`; the change to make, if it is
    /// not the level last given.
    pub fn update(&mut self, level: bool) -> Option<LineChange> {
        if self.level == Some(level) {
            return None;
        }
        self.level = Some(level);
        Some(LineChange {
            intid: self.intid,
            level,
        })
    }

    /// Forgets the level given (the device's state was replaced, e.g. restored from
    /// a snapshot): the next [`update`](Self::update) reports its level whatever it
    /// is.
    pub fn forget(&mut self) {
        self.level = None;
    }
}

/// What the caller must do after a device access (or input), once it let go of the
/// device: nothing, for most accesses. Small enough to travel in registers.
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// The device's interrupt line changed.
    pub line: Option<LineChange>,
    /// The device is a UART that may have room for input waiting on the host side.
    pub takes_input: bool,
    /// A virtio device found a malformed queue or request and now needs a reset:
    /// the caller takes the fault from it to report it (once).
    pub fault: bool,
}

impl Effects {
    /// Nothing to do.
    pub const NONE: Self = Self {
        line: None,
        takes_input: false,
        fault: false,
    };

    /// Whether there is nothing to do.
    pub const fn is_none(&self) -> bool {
        self.line.is_none() && !self.takes_input && !self.fault
    }
}

/// A guest device as the exit path reaches it: one call per access performs the
/// access and everything it entails, and returns what the caller does next.
///
/// The [`MmioDevice`] contract holds for offsets, widths and values.
pub trait Device {
    /// Reads `width` bytes at `offset`; the value and the effects.
    fn read(
        &mut self,
        offset: u64,
        width: AccessWidth,
        host: &mut dyn DeviceHost,
    ) -> (u64, Effects);

    /// Writes the low `width` bytes of `value` at `offset`; the effects.
    fn write(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
        host: &mut dyn DeviceHost,
    ) -> Effects;
}

/// A saved state that a device refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InvalidState(pub &'static str);

impl fmt::Display for InvalidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid device state: {}", self.0)
    }
}

/// Saving and restoring a device's state as plain data, the same way for every
/// device (Firecracker's persist style).
pub trait Persist {
    /// The state.
    type State;

    /// The device's state.
    fn save_state(&self) -> Self::State;

    /// Puts the device into `state`, after checking it; on error nothing changes.
    fn restore_state(&mut self, state: &Self::State) -> Result<(), InvalidState>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn from_bytes() {
        assert_eq!(AccessWidth::from_bytes(1), Some(AccessWidth::Byte));
        assert_eq!(AccessWidth::from_bytes(2), Some(AccessWidth::Half));
        assert_eq!(AccessWidth::from_bytes(4), Some(AccessWidth::Word));
        assert_eq!(AccessWidth::from_bytes(8), Some(AccessWidth::Double));
        for n in [0, 3, 5, 6, 7, 16, u64::MAX] {
            assert_eq!(AccessWidth::from_bytes(n), None, "{n}");
        }
    }

    #[test]
    fn sizes_and_masks() {
        let table = [
            (AccessWidth::Byte, 1, 8, 0xFF),
            (AccessWidth::Half, 2, 16, 0xFFFF),
            (AccessWidth::Word, 4, 32, 0xFFFF_FFFF),
            (AccessWidth::Double, 8, 64, 0xFFFF_FFFF_FFFF_FFFF),
        ];
        for (width, bytes, bits, mask) in table {
            assert_eq!(width.bytes(), bytes);
            assert_eq!(width.bits(), bits);
            assert_eq!(width.mask(), mask);
            assert_eq!(AccessWidth::from_bytes(bytes), Some(width));
        }
    }

    #[test]
    fn truncate_and_alignment() {
        assert_eq!(AccessWidth::Byte.truncate(0x1234_5678), 0x78);
        assert_eq!(AccessWidth::Half.truncate(0x1234_5678), 0x5678);
        assert_eq!(
            AccessWidth::Word.truncate(0xAAAA_BBBB_CCCC_DDDD),
            0xCCCC_DDDD
        );
        assert_eq!(AccessWidth::Double.truncate(u64::MAX), u64::MAX);
        assert!(AccessWidth::Word.is_aligned(0x104));
        assert!(!AccessWidth::Word.is_aligned(0x102));
        assert!(AccessWidth::Half.is_aligned(0x102));
        assert!(AccessWidth::Byte.is_aligned(0x103));
        assert!(!AccessWidth::Double.is_aligned(0x104));
    }

    /// A device with one 32-bit scratch register at offset 0x10 and a read-only ID at
    /// 0x0, written the way the trait's contract asks.
    struct Scratch {
        scratch: u32,
    }

    const ID: u64 = 0x00;
    const SCRATCH: u64 = 0x10;
    const ID_VALUE: u64 = 0xA5;

    impl MmioDevice for Scratch {
        fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
            match (offset, width) {
                (ID, AccessWidth::Word) => ID_VALUE,
                (SCRATCH, AccessWidth::Word) => u64::from(self.scratch),
                _ => 0,
            }
        }

        fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
            if (offset, width) == (SCRATCH, AccessWidth::Word) {
                self.scratch = value as u32;
            }
        }
    }

    #[test]
    fn an_interrupt_line_reports_changes_only() {
        let mut line = InterruptLine::new(48);
        assert_eq!(line.intid(), 48);
        assert_eq!(line.update(false), None, "low at first");
        let high = Some(LineChange {
            intid: 48,
            level: true,
        });
        assert_eq!(line.update(true), high);
        assert_eq!(line.update(true), None);
        assert_eq!(
            line.update(false),
            Some(LineChange {
                intid: 48,
                level: false
            })
        );
        line.forget();
        assert_eq!(
            line.update(false),
            Some(LineChange {
                intid: 48,
                level: false
            }),
            "after forget, whatever the level"
        );
        assert_eq!(line.update(false), None);
    }

    #[test]
    fn effects_of_nothing() {
        assert!(Effects::NONE.is_none());
        assert_eq!(Effects::default(), Effects::NONE);
        let input = Effects {
            takes_input: true,
            ..Effects::NONE
        };
        assert!(!input.is_none());
        assert_eq!(
            InvalidState("it is broken").to_string(),
            "invalid device state: it is broken"
        );
    }

    #[test]
    fn a_device_through_the_trait() {
        let mut device = Scratch { scratch: 0 };
        let bus: &mut dyn MmioDevice = &mut device;
        assert_eq!(bus.read(ID, AccessWidth::Word), ID_VALUE);
        bus.write(
            SCRATCH,
            AccessWidth::Word,
            AccessWidth::Word.truncate(0x1_2345_6789),
        );
        assert_eq!(bus.read(SCRATCH, AccessWidth::Word), 0x2345_6789);
        // Unknown registers and widths read as zero and ignore writes.
        bus.write(ID, AccessWidth::Word, 0xFF);
        assert_eq!(bus.read(ID, AccessWidth::Word), ID_VALUE);
        assert_eq!(bus.read(0x20, AccessWidth::Word), 0);
        assert_eq!(bus.read(SCRATCH, AccessWidth::Byte), 0);
    }
}
