//! Emulating one guest load or store against the MMIO bus.
//!
//! A data abort with a valid instruction syndrome ([`MmioAccess`]) says everything
//! needed to perform the access on the guest's behalf: the width, the transfer
//! register and how a load extends its value. [`emulate`] moves the data between the
//! guest's general-purpose registers and the device on the bus; the caller then
//! advances the guest's PC past the instruction (see [`crate::exit`]).
//!
//! Register write-back follows the Arm ARM (DDI 0487) load instructions:
//! - a load writes the value zero-extended from the access width, or sign-extended
//!   when `SSE` is set (LDRSB, LDRSH, LDRSW);
//! - a load into a 32-bit `Wn` register clears bits \[63:32\] of `Xn`, also after
//!   sign extension (which then extends to 32 bits only);
//! - register 31 is the zero register: a store from it writes zero, a load into it
//!   is discarded. [`emulate`] applies this rule; [`GuestRegisters`] implementors
//!   only ever see registers 0 to 30.
//!
//! [`emulate_device`] does the same on one [`Device`] the caller's bus lookup found,
//! and returns the device's [`Effects`] for the caller to apply once it has let go
//! of the bus.

use crate::exit::MmioAccess;
use aerie_devices::bus::MmioBus;
use aerie_devices::mmio::{AccessWidth, Device, DeviceHost, Effects, MmioDevice};

/// The guest's general-purpose registers `x0` to `x30`, as the MMIO emulation reads
/// and writes them.
pub trait GuestRegisters {
    /// The value of `x<register>`, `register` in 0..=30.
    fn get(&self, register: u8) -> u64;
    /// Sets `x<register>`, `register` in 0..=30.
    fn set(&mut self, register: u8, value: u64);
}

/// What became of an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MmioResult {
    /// A device performed it: advance the guest's PC past the instruction.
    Done,
    /// No device holds every byte of the access: the caller injects an external
    /// abort (and leaves the registers as they are, which this function did).
    Unmapped,
}

/// Register number 31: the zero register in load/store encodings.
const ZERO_REGISTER: u8 = 31;
/// The bits of a 32-bit `Wn` view of a register.
const W_MASK: u64 = u32::MAX as u64;

/// The register-width mask of an access: all 64 bits for `Xn`, the low 32 for `Wn`.
const fn register_mask(access: &MmioAccess) -> u64 {
    if access.sixty_four { u64::MAX } else { W_MASK }
}

/// What a load of `value` (as the device returned it) writes to the register.
pub const fn load_result(access: &MmioAccess, value: u64) -> u64 {
    let width: AccessWidth = access.width;
    if !access.sign_extend {
        // The common case: zero-extended (and a Wn load narrower than the register).
        return width.truncate(value) & register_mask(access);
    }
    // Move the access's sign bit to bit 63, then shift back arithmetically.
    let unused = u64::BITS - width.bits();
    let extended = (((value << unused) as i64) >> unused) as u64;
    extended & register_mask(access)
}

/// Ends the guest's load `access` that read `value`: writes the transfer register
/// (unless it is the zero register), extended as the instruction asks.
pub fn complete_load(access: &MmioAccess, value: u64, registers: &mut impl GuestRegisters) {
    if access.register < ZERO_REGISTER {
        registers.set(access.register, load_result(access, value));
    }
}

/// Something guest loads and stores can reach: the MMIO bus, or a single device
/// addressed by offset. `None` means nothing answers at that address.
pub trait MmioTarget {
    /// Reads `width` bytes at `address`.
    fn read(&mut self, address: u64, width: AccessWidth) -> Option<u64>;
    /// Writes the low `width` bytes of `value` at `address`.
    fn write(&mut self, address: u64, width: AccessWidth, value: u64) -> Option<()>;
}

impl<D: MmioDevice> MmioTarget for MmioBus<D> {
    fn read(&mut self, address: u64, width: AccessWidth) -> Option<u64> {
        MmioBus::read(self, address, width)
    }

    fn write(&mut self, address: u64, width: AccessWidth, value: u64) -> Option<()> {
        MmioBus::write(self, address, width, value)
    }
}

/// One [`Device`], addressed by offset, with the host it may use; keeps the
/// effects of the access.
struct DeviceTarget<'a, D: ?Sized> {
    device: &'a mut D,
    host: &'a mut dyn DeviceHost,
    effects: Effects,
}

impl<D: Device + ?Sized> MmioTarget for DeviceTarget<'_, D> {
    fn read(&mut self, offset: u64, width: AccessWidth) -> Option<u64> {
        let (value, effects) = self.device.read(offset, width, self.host);
        self.effects = effects;
        Some(value)
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) -> Option<()> {
        self.effects = self.device.write(offset, width, value, self.host);
        Some(())
    }
}

/// Performs the guest's access described by `access` on `device`, at `offset`
/// within it (the caller's one bus lookup found both, and checked that the access
/// fits the device's window), like [`emulate`]; returns what the device asks the
/// caller to do next. The guest's PC is the caller's to advance.
pub fn emulate_device<D: Device + ?Sized>(
    access: &MmioAccess,
    offset: u64,
    registers: &mut impl GuestRegisters,
    device: &mut D,
    host: &mut dyn DeviceHost,
) -> Effects {
    let mut target = DeviceTarget {
        device,
        host,
        effects: Effects::NONE,
    };
    let _ = emulate(access, offset, registers, &mut target);
    target.effects
}

/// Performs the guest's access described by `access` at guest physical address
/// `ipa`: a store writes the transfer register's low bytes to the device; a load
/// reads the device and writes the register back.
pub fn emulate(
    access: &MmioAccess,
    ipa: u64,
    registers: &mut impl GuestRegisters,
    bus: &mut impl MmioTarget,
) -> MmioResult {
    // SRT is 5 bits, so only 31 can name the zero register; anything larger can only
    // come from a hand-built access and is treated the same way, never passed on.
    let zero_register = access.register >= ZERO_REGISTER;
    let done = if access.is_write {
        let value = if zero_register {
            0
        } else {
            registers.get(access.register)
        };
        bus.write(ipa, access.width, value & register_mask(access))
    } else {
        bus.read(ipa, access.width)
            .map(|value| complete_load(access, value, registers))
    };
    match done {
        Some(()) => MmioResult::Done,
        None => MmioResult::Unmapped,
    }
}

#[cfg(test)]
mod tests {
    //! Expected register values are worked out by hand from the Arm ARM descriptions
    //! of LDRB/LDRH/LDR/LDRSB/LDRSH/LDRSW, against the test device's fixed values.
    use super::*;
    use AccessWidth::{Byte, Double, Half, Word};
    use aerie_devices::testdev::{self, TestDevice};

    /// The test device's base address in these tests.
    const BASE: u64 = 0x0906_0000;
    /// IPA of the test device's PATTERN register (0x8899_aabb_ccdd_eeff).
    const PATTERN: u64 = BASE + testdev::PATTERN;
    /// IPA of the test device's scratch memory.
    const SCRATCH: u64 = BASE + testdev::SCRATCH;
    /// A value whose upper half is visible if a `Wn` load forgot to clear it.
    const POISON: u64 = 0x5555_5555_5555_5555;

    /// x0..x30; touching register 31 fails the test, since `emulate` must handle it.
    struct Registers([u64; 31]);

    impl GuestRegisters for Registers {
        fn get(&self, register: u8) -> u64 {
            assert!(register < 31, "get({register})");
            self.0[usize::from(register)]
        }

        fn set(&mut self, register: u8, value: u64) {
            assert!(register < 31, "set({register})");
            self.0[usize::from(register)] = value;
        }
    }

    fn setup() -> (Registers, MmioBus<TestDevice>) {
        let mut bus = MmioBus::new();
        bus.add(BASE, testdev::SIZE, TestDevice::new()).unwrap();
        (Registers([POISON; 31]), bus)
    }

    /// A load of `width` into `register`.
    fn access(width: AccessWidth, register: u8, sign_extend: bool, sixty_four: bool) -> MmioAccess {
        MmioAccess {
            is_write: false,
            width,
            register,
            sign_extend,
            sixty_four,
            acquire_release: false,
        }
    }

    /// The same access as a store.
    fn stored(access: MmioAccess) -> MmioAccess {
        MmioAccess {
            is_write: true,
            ..access
        }
    }

    /// Loads from `ipa` with `access` and returns the transfer register afterwards.
    fn load(access: MmioAccess, ipa: u64) -> u64 {
        let (mut regs, mut bus) = setup();
        assert_eq!(emulate(&access, ipa, &mut regs, &mut bus), MmioResult::Done);
        regs.0[usize::from(access.register)]
    }

    #[test]
    fn zero_extending_loads_at_every_width() {
        // ldrb w1 / ldrh w1 / ldr w1 / ldr x1 from PATTERN (bytes ff ee dd cc ...).
        assert_eq!(load(access(Byte, 1, false, false), PATTERN), 0xff);
        assert_eq!(load(access(Half, 1, false, false), PATTERN), 0xeeff);
        assert_eq!(load(access(Word, 1, false, false), PATTERN), 0xccdd_eeff);
        assert_eq!(
            load(access(Double, 1, false, true), PATTERN),
            0x8899_aabb_ccdd_eeff
        );
        // ldrb into a W register clears the poisoned upper half of x1.
        assert_eq!(load(access(Byte, 1, false, false), PATTERN + 7), 0x88);
    }

    #[test]
    fn sign_extending_loads_into_x_registers() {
        // ldrsb x2: 0xff -> -1; ldrsh x2: 0xeeff -> 0xffff_ffff_ffff_eeff;
        // ldrsw x2: 0xccdd_eeff -> 0xffff_ffff_ccdd_eeff.
        assert_eq!(load(access(Byte, 2, true, true), PATTERN), u64::MAX);
        assert_eq!(
            load(access(Half, 2, true, true), PATTERN),
            0xffff_ffff_ffff_eeff
        );
        assert_eq!(
            load(access(Word, 2, true, true), PATTERN),
            0xffff_ffff_ccdd_eeff
        );
        // ldrsb x2 from byte 6 (0x99).
        assert_eq!(
            load(access(Byte, 2, true, true), PATTERN + 6),
            0xffff_ffff_ffff_ff99
        );
    }

    #[test]
    fn sign_extending_loads_into_w_registers() {
        // ldrsb w3: 0xff -> 0xffff_ffff, upper 32 bits zero; ldrsh w3: 0x8899 ->
        // 0xffff_8899.
        assert_eq!(load(access(Byte, 3, true, false), PATTERN), 0xffff_ffff);
        assert_eq!(load(access(Half, 3, true, false), PATTERN + 6), 0xffff_8899);
        // A positive value is not extended: ID's first byte is 'A' (0x41).
        assert_eq!(load(access(Byte, 3, true, false), BASE + testdev::ID), 0x41);
        assert_eq!(
            load(access(Half, 3, true, true), BASE + testdev::ID),
            0x4541
        );
    }

    #[test]
    fn stores_at_every_width_write_the_low_bytes() {
        let (mut regs, mut bus) = setup();
        regs.0[4] = 0x1122_3344_5566_7788;
        for (width, offset, expected) in [
            (Byte, 0x00, 0x88),
            (Half, 0x08, 0x7788),
            (Word, 0x10, 0x5566_7788),
            (Double, 0x18, 0x1122_3344_5566_7788),
        ] {
            let sixty_four = width == Double;
            let store = stored(access(width, 4, false, sixty_four));
            assert_eq!(
                emulate(&store, SCRATCH + offset, &mut regs, &mut bus),
                MmioResult::Done
            );
            // Read back a whole 8 bytes: nothing beyond the width was written.
            assert_eq!(bus.read(SCRATCH + offset, Double), Some(expected));
        }
        assert_eq!(regs.0[4], 0x1122_3344_5566_7788, "a store leaves it alone");
    }

    #[test]
    fn the_zero_register() {
        let (mut regs, mut bus) = setup();
        bus.write(SCRATCH, Double, u64::MAX).unwrap();
        // str xzr: writes zero without asking the registers (they would fail).
        let store = stored(access(Double, 31, false, true));
        assert_eq!(
            emulate(&store, SCRATCH, &mut regs, &mut bus),
            MmioResult::Done
        );
        assert_eq!(bus.read(SCRATCH, Double), Some(0));
        // ldr wzr: the device is read (the access happens), the value discarded.
        let before = bus.read(BASE + testdev::WRITE_COUNT, Double);
        let load = access(Word, 31, true, false);
        assert_eq!(
            emulate(&load, PATTERN, &mut regs, &mut bus),
            MmioResult::Done
        );
        assert!(regs.0.iter().all(|&r| r == POISON));
        assert_eq!(bus.read(BASE + testdev::WRITE_COUNT, Double), before);
    }

    #[test]
    fn unmapped_accesses_touch_nothing() {
        let (mut regs, mut bus) = setup();
        let load = access(Word, 5, false, false);
        // Nowhere near a device, and straddling the device's end.
        for ipa in [0x0800_0000, BASE + testdev::SIZE - 2] {
            assert_eq!(
                emulate(&load, ipa, &mut regs, &mut bus),
                MmioResult::Unmapped
            );
            assert_eq!(
                emulate(&stored(load), ipa, &mut regs, &mut bus),
                MmioResult::Unmapped
            );
        }
        assert_eq!(regs.0[5], POISON, "register not written");
        assert_eq!(bus.read(BASE + testdev::WRITE_COUNT, Double), Some(0));
    }

    /// A device that answers reads with its offset, keeps the last write, and asks
    /// for its line (INTID 40) to follow bit 0 of what was written.
    #[derive(Default)]
    struct Wired {
        written: Option<(u64, AccessWidth, u64)>,
    }

    impl Device for Wired {
        fn read(
            &mut self,
            offset: u64,
            _width: AccessWidth,
            _host: &mut dyn DeviceHost,
        ) -> (u64, Effects) {
            (0x8000_0000 | offset, Effects::NONE)
        }

        fn write(
            &mut self,
            offset: u64,
            width: AccessWidth,
            value: u64,
            host: &mut dyn DeviceHost,
        ) -> Effects {
            self.written = Some((offset, width, value));
            host.console_output(&[value as u8]);
            Effects {
                line: Some(aerie_devices::mmio::LineChange {
                    intid: 40,
                    level: value & 1 != 0,
                }),
                ..Effects::NONE
            }
        }
    }

    /// A host with no RAM that keeps console output.
    struct NoRam(alloc::vec::Vec<u8>, aerie_devices::virtio::VecMemory);

    impl DeviceHost for NoRam {
        fn memory(&mut self) -> &mut dyn aerie_devices::virtio::GuestMemory {
            &mut self.1
        }

        fn console_output(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    #[test]
    fn an_access_on_one_device_returns_its_effects() {
        let mut regs = Registers([POISON; 31]);
        let mut device = Wired::default();
        let mut host = NoRam(
            alloc::vec::Vec::new(),
            aerie_devices::virtio::VecMemory::new(0, 0),
        );
        // ldrsb x6 at offset 0x10: the device's value, sign-extended from a byte.
        let load = access(Byte, 6, true, true);
        let effects = emulate_device(&load, 0x10, &mut regs, &mut device, &mut host);
        assert!(effects.is_none());
        assert_eq!(regs.0[6], 0x10);
        // str w7 at offset 0x8: the register's low 32 bits, and the device's effects.
        regs.0[7] = 0xFFFF_FFFF_0000_0301;
        let store = stored(access(Word, 7, false, false));
        let effects = emulate_device(&store, 0x8, &mut regs, &mut device, &mut host);
        assert_eq!(device.written, Some((0x8, Word, 0x301)));
        assert_eq!(
            effects.line,
            Some(aerie_devices::mmio::LineChange {
                intid: 40,
                level: true
            })
        );
        assert_eq!(host.0, [0x01]);
    }

    #[test]
    fn load_result_rules() {
        // Values wider than the access are cut first.
        assert_eq!(load_result(&access(Byte, 0, false, true), 0x1234), 0x34);
        assert_eq!(
            load_result(&access(Byte, 0, true, true), 0x1280),
            u64::MAX - 0x7F
        );
        assert_eq!(
            load_result(&access(Word, 0, true, true), 0x7fff_ffff),
            0x7fff_ffff
        );
        assert_eq!(
            load_result(&access(Word, 0, true, true), 0x8000_0000),
            0xffff_ffff_8000_0000
        );
        // A (nonsensical) 8-byte load into a W register keeps the low 32 bits.
        assert_eq!(
            load_result(&access(Double, 0, false, false), u64::MAX),
            0xffff_ffff
        );
    }
}
