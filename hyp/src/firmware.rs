//! Firmware guests: how Aerie starts U-Boot or EDK2 the way QEMU `virt -bios` does.
//!
//! - Flash bank 0 ([`guest_layout::FLASH_CODE`], 64 MiB) holds the firmware, padded
//!   with zeros; it is write-protected (`aerie_devices::cfi_flash`).
//! - Flash bank 1 ([`guest_layout::FLASH_VARS`], 64 MiB) is the firmware's variable
//!   store, as much of it as the host disk behind it holds.
//! - The guest's device tree is at the start of RAM, where firmware for `virt`
//!   looks for it.
//! - vCPU 0 starts at the reset vector, IPA 0, with the registers a reset gives
//!   (x0 is 0, not the device tree).
//!
//! While a bank reads as its array it is mapped read-only through stage 2 (code
//! runs in place; EDK2 keeps page tables there); only writes (flash commands)
//! trap. Host memory behind each bank comes in whole pages: [`FlashPlan`] says how
//! much.

use crate::guest_layout::{self, FLASH_BANK_SIZE};
use crate::memory::Range;
use crate::units::ByteSize;
use core::fmt;

/// Host memory behind a bank comes in multiples of this (a 2 MiB stage-2 block
/// maps it when the host memory is aligned so).
pub const BACKING_ALIGN: u64 = 2 << 20;
/// The variable store is used in whole erase blocks.
pub const VARS_ALIGN: u64 = 256 << 10;

/// Where a firmware guest's pieces go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashPlan {
    /// Bytes of host memory behind bank 0: the firmware, rounded up.
    pub code_backed: u64,
    /// Bytes of the variable store behind bank 1: the host disk, at most a bank,
    /// in whole erase blocks.
    pub vars_backed: u64,
    /// The device tree: at the start of RAM.
    pub device_tree: Range,
    /// Where vCPU 0 starts.
    pub entry: u64,
}

/// Why a firmware guest cannot be laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareError {
    /// The firmware does not fit in its flash bank.
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// The device tree does not fit in guest RAM.
    NoRoomForDeviceTree {
        /// Its size in bytes.
        size: u64,
    },
}

impl fmt::Display for FirmwareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLarge { size } => write!(
                f,
                "the firmware is {}, more than its {} flash bank holds",
                ByteSize(size),
                ByteSize(FLASH_BANK_SIZE)
            ),
            Self::NoRoomForDeviceTree { size } => write!(
                f,
                "the guest's device tree ({size} bytes) does not fit in guest RAM; give the \
                 guest more memory with --mem"
            ),
        }
    }
}

/// Plans a firmware guest: `firmware_size` bytes of firmware, a variable store disk
/// of `vars_disk_size` bytes (if there is one), a device tree of `device_tree_size`
/// bytes and guest RAM `ram`.
pub fn plan(
    ram: Range,
    firmware_size: u64,
    vars_disk_size: Option<u64>,
    device_tree_size: u64,
) -> Result<FlashPlan, FirmwareError> {
    if firmware_size > FLASH_BANK_SIZE {
        return Err(FirmwareError::TooLarge {
            size: firmware_size,
        });
    }
    let device_tree = Range::from_start_size(ram.start(), device_tree_size)
        .filter(|tree| tree.end() <= ram.end())
        .ok_or(FirmwareError::NoRoomForDeviceTree {
            size: device_tree_size,
        })?;
    let (code_backed, vars_backed) = backed_sizes(firmware_size, vars_disk_size);
    Ok(FlashPlan {
        code_backed,
        vars_backed,
        device_tree,
        entry: guest_layout::FLASH_CODE,
    })
}

/// How much of each bank host memory backs, for firmware of `firmware_size` bytes
/// (at most a bank) and a variable store disk of `vars_disk_size` bytes: code,
/// variable store (see [`FlashPlan`]).
pub fn backed_sizes(firmware_size: u64, vars_disk_size: Option<u64>) -> (u64, u64) {
    let vars = vars_disk_size.unwrap_or(0).min(FLASH_BANK_SIZE);
    (
        firmware_size.next_multiple_of(BACKING_ALIGN),
        vars - vars % VARS_ALIGN,
    )
}

/// Fills `out` with bank 0's bytes from `offset` on when it holds `firmware`: the
/// firmware's bytes, then zeros (the rest of the bank's backed part).
pub fn read_code_bank(firmware: &[u8], offset: u64, out: &mut [u8]) {
    out.fill(0);
    let start = usize::try_from(offset).map_or(firmware.len(), |o| o.min(firmware.len()));
    let end = firmware.len().min(start.saturating_add(out.len()));
    out[..end - start].copy_from_slice(&firmware[start..end]);
}

/// The name a flash bank's contents go by in a snapshot (its disk identity's
/// serial): `flash-code` for bank 0, `flash-vars` for the variable store.
pub fn bank_name(base: u64) -> &'static str {
    if base == guest_layout::FLASH_CODE {
        "flash-code"
    } else {
        "flash-vars"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn ram(size: u64) -> Range {
        Range::from_start_size(guest_layout::RAM_BASE, size).unwrap()
    }

    #[test]
    fn uboot_sized_firmware() {
        let plan = plan(ram(256 << 20), 971_304, Some(64 << 20), 0x2000).unwrap();
        assert_eq!(plan.code_backed, 2 << 20);
        assert_eq!(plan.vars_backed, 64 << 20);
        assert_eq!(plan.device_tree.start(), 0x4000_0000);
        assert_eq!(plan.device_tree.size(), 0x2000);
        assert_eq!(plan.entry, 0);
    }

    #[test]
    fn the_variable_store_is_whole_blocks_of_at_most_a_bank() {
        let vars = |size| plan(ram(256 << 20), 1, size, 8).unwrap().vars_backed;
        assert_eq!(vars(None), 0);
        assert_eq!(vars(Some(1 << 30)), 64 << 20);
        assert_eq!(vars(Some((768 << 10) + 512)), 768 << 10);
        assert_eq!(vars(Some(100 << 10)), 0);
    }

    #[test]
    fn banks_are_named_for_snapshots() {
        assert_eq!(bank_name(guest_layout::FLASH_CODE), "flash-code");
        assert_eq!(bank_name(guest_layout::FLASH_VARS), "flash-vars");
        // A restore rebuilds the banks the size a fresh boot gives them.
        let fresh = plan(ram(256 << 20), 971_304, Some(64 << 20), 0x2000).unwrap();
        assert_eq!(
            backed_sizes(971_304, Some(64 << 20)),
            (fresh.code_backed, fresh.vars_backed)
        );
    }

    #[test]
    fn the_code_bank_is_the_firmware_then_zeros() {
        let firmware = [1u8, 2, 3];
        let mut out = [0xaau8; 5];
        read_code_bank(&firmware, 0, &mut out);
        assert_eq!(out, [1, 2, 3, 0, 0]);
        let mut out = [0xaau8; 2];
        read_code_bank(&firmware, 2, &mut out);
        assert_eq!(out, [3, 0]);
        read_code_bank(&firmware, 1, &mut out);
        assert_eq!(out, [2, 3]);
        read_code_bank(&firmware, u64::MAX, &mut out);
        assert_eq!(out, [0, 0]);
    }

    #[test]
    fn refusals_say_why() {
        let error = plan(ram(256 << 20), (64 << 20) + 1, None, 8).unwrap_err();
        assert!(error.to_string().contains("flash bank"), "{error}");
        let error = plan(ram(4096), 1, None, 8192).unwrap_err();
        assert!(error.to_string().contains("--mem"), "{error}");
        assert!(plan(ram(256 << 20), 64 << 20, None, 8).is_ok());
    }
}
