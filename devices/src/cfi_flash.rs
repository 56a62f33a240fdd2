//! A CFI NOR flash bank as QEMU `virt` has two of (its `pflash_cfi01` model): two
//! 16-bit Intel-command-set chips side by side on a 32-bit bus, 64 MiB in all, erased
//! in 256 KiB blocks. Firmware runs in place from bank 0 and keeps its variables in
//! bank 1 (U-Boot its environment, EDK2 its UEFI variables).
//!
//! While the bank is in read-array mode the hypervisor maps its contents read-only
//! into the guest, so reads and instruction fetches run natively and only writes
//! reach this model. A write is a command: once the bank leaves read-array mode
//! ([`CfiFlash::in_read_array`] turns false) the hypervisor unmaps the bank so that
//! reads reach the model too (status, identifier, query), and maps it again when a
//! command returns it to read-array mode. The array itself is the caller's
//! ([`FlashArray`]): host memory the guest sees, and for the variable bank a host
//! disk behind it.
//!
//! Commands (the low byte of the written value, as each chip sees it in its lane):
//!
//! | first cycle | meaning | next |
//! |---|---|---|
//! | `0xff`, `0xf0`, `0x00` | read array | |
//! | `0x70` | read status register | |
//! | `0x90` | read identifier: manufacturer at unit 0, device at unit 1 | |
//! | `0x98` | CFI query | |
//! | `0x50` | clear status, read array | |
//! | `0x10`, `0x40` | program | the data write |
//! | `0x20` | block erase | `0xd0` confirms |
//! | `0xe8` | write to buffer | count - 1, that many + 1 data writes, `0xd0` |
//! | `0x60` | block lock set-up | `0x01` lock / `0xd0` unlock (both accepted, no effect) |
//!
//! A unit is one bus-width word (4 bytes): the query and identifier tables are read at
//! `unit * 4`, each chip answering in its 16-bit lane. A command sequence the model
//! does not know sets the status register's "improper command sequence" bits (SR.4
//! and SR.5) and leaves the array untouched; the guest reads them with `0x70`.
//! A write-protected bank (the code bank) answers every command but refuses program
//! and erase with SR.1 (block locked) set.
//!
//! References: Common Flash Interface specification (JEDEC JESD68.01), Intel's
//! "Common Flash Interface and Command Sets" application note 646, and QEMU's
//! `hw/block/pflash_cfi01.c` for how `virt` configures the bank.

use crate::mmio::{AccessWidth, InvalidState, MmioDevice, Persist};
use alloc::vec::Vec;

/// Size of a bank's window in the guest's address space.
pub const BANK_SIZE: u64 = 64 << 20;
/// Size of an erase block of the bank (both chips' 128 KiB blocks side by side).
pub const BLOCK_SIZE: u64 = 256 << 10;
/// Bytes the bus carries per access unit: two 16-bit chips.
const BUS_WIDTH: u64 = 4;
/// Bytes each chip carries.
const CHIP_WIDTH: u64 = 2;
/// The largest write-to-buffer transfer of the bank: 2 KiB per chip.
const WRITE_BUFFER_SIZE: u64 = 2 * (1 << WRITE_BUFFER_LOG2);
/// log2 of the per-chip write buffer size, as the query table gives it.
const WRITE_BUFFER_LOG2: u8 = 11;
/// Manufacturer code read with `0x90` at unit 0 (Intel, as QEMU `virt` reports).
pub const MANUFACTURER_ID: u16 = 0x89;
/// Device code read with `0x90` at unit 1.
pub const DEVICE_ID: u16 = 0x18;

/// Status register: the write state machine is ready (SR.7).
pub const STATUS_READY: u8 = 0x80;
/// Status register: an erase failed, or with SR.4 an improper command sequence (SR.5).
pub const STATUS_ERASE_ERROR: u8 = 0x20;
/// Status register: a program failed, or with SR.5 an improper command sequence (SR.4).
pub const STATUS_PROGRAM_ERROR: u8 = 0x10;
/// Status register: the operation was refused because the block is locked (SR.1).
pub const STATUS_LOCKED: u8 = 0x02;
/// SR.4 and SR.5 together: the command sequence was improper.
pub const STATUS_SEQUENCE_ERROR: u8 = STATUS_ERASE_ERROR | STATUS_PROGRAM_ERROR;

/// The memory behind a bank: reads and changes of the array. Offsets are from the
/// start of the bank; the model only calls with ranges inside [`FlashArray::backed_size`].
pub trait FlashArray: Send {
    /// How many bytes from the start of the bank are backed (at most [`BANK_SIZE`]);
    /// the rest of the window reads as zero and cannot be programmed or erased.
    fn backed_size(&self) -> u64;
    /// Copies the array at `offset` into `out`.
    fn read(&self, offset: u64, out: &mut [u8]);
    /// Stores `data` at `offset` (a program operation).
    fn program(&mut self, offset: u64, data: &[u8]);
    /// Sets `size` bytes from `offset` to 0xff (a block erase).
    fn erase(&mut self, offset: u64, size: u64);
}

/// What the bank answers reads with, and what the next write means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FlashMode {
    /// Reads return the array (mapped into the guest).
    ReadArray,
    /// Reads return the status register.
    ReadStatus,
    /// Reads return the identifier codes.
    ReadIdentifier,
    /// Reads return the CFI query table.
    Query,
    /// The next write is the data of a program command.
    ProgramData,
    /// The next write should confirm a block erase.
    EraseConfirm,
    /// The next write is the word count of a write-to-buffer command.
    BufferCount,
    /// Data writes of a write-to-buffer command are expected.
    BufferData,
    /// The next write should confirm a write-to-buffer command.
    BufferConfirm,
    /// The next write is the second cycle of a lock command.
    LockConfirm,
}

/// What a snapshot keeps of a bank (its array lives in host memory and on disk).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CfiFlashState {
    /// The command state.
    pub mode: FlashMode,
    /// The status register.
    pub status: u8,
    /// Data writes still expected by a write-to-buffer transfer.
    pub buffer_remaining: u64,
    /// A write-to-buffer transfer's data so far, as (offset, bytes) in write order.
    pub buffer: Vec<(u64, Vec<u8>)>,
}

impl CfiFlashState {
    /// Whether a bank can be in this state: its write buffer fits the bank's.
    pub fn check(&self) -> Result<(), InvalidState> {
        let buffered: u64 = self.buffer.iter().map(|(_, b)| b.len() as u64).sum();
        if buffered > WRITE_BUFFER_SIZE || self.buffer_remaining > WRITE_BUFFER_SIZE {
            return Err(InvalidState("flash write buffer larger than the bank's"));
        }
        if self.buffer.iter().any(|(offset, bytes)| {
            bytes.len() > 8 || offset.saturating_add(bytes.len() as u64) > BANK_SIZE
        }) {
            return Err(InvalidState("flash write buffer entry outside the bank"));
        }
        Ok(())
    }
}

/// One flash bank.
pub struct CfiFlash<A> {
    array: A,
    write_protected: bool,
    mode: FlashMode,
    status: u8,
    buffer_remaining: u64,
    buffer: Vec<(u64, Vec<u8>)>,
}

impl<A: FlashArray> CfiFlash<A> {
    /// A bank over `array`, in read-array mode with a ready status. A
    /// `write_protected` bank refuses program and erase.
    pub fn new(array: A, write_protected: bool) -> Self {
        Self {
            array,
            write_protected,
            mode: FlashMode::ReadArray,
            status: STATUS_READY,
            buffer_remaining: 0,
            buffer: Vec::new(),
        }
    }

    /// Whether reads return the array, so the bank may be mapped into the guest.
    pub fn in_read_array(&self) -> bool {
        self.mode == FlashMode::ReadArray
    }

    /// The command state.
    pub fn mode(&self) -> FlashMode {
        self.mode
    }

    /// The status register.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The memory behind the bank.
    pub fn array(&self) -> &A {
        &self.array
    }

    /// The memory behind the bank, to change it.
    pub fn array_mut(&mut self) -> &mut A {
        &mut self.array
    }

    /// Ends any command: back to read-array mode.
    fn read_array(&mut self) {
        self.mode = FlashMode::ReadArray;
        self.buffer.clear();
        self.buffer_remaining = 0;
    }

    /// An improper command sequence: the error bits, then read-array mode (the
    /// guest reads the status with `0x70`). The array is not touched.
    fn sequence_error(&mut self) {
        self.status |= STATUS_SEQUENCE_ERROR | STATUS_READY;
        self.read_array();
    }

    /// The 16-bit answer of one chip at `offset` in the current mode.
    fn chip_answer(&self, offset: u64) -> u16 {
        let unit = offset / BUS_WIDTH;
        match self.mode {
            FlashMode::ReadIdentifier => match unit & 0xff {
                0 => MANUFACTURER_ID,
                1 => DEVICE_ID,
                // Unit 2 of each block: its lock state (unlocked).
                _ => 0,
            },
            FlashMode::Query => u16::from(query_table().get(unit as usize).copied().unwrap_or(0)),
            _ => u16::from(self.status),
        }
    }

    /// Reads `width` bytes of the array at `offset` (zero where unbacked).
    fn read_array_bytes(&self, offset: u64, width: AccessWidth) -> u64 {
        let mut bytes = [0u8; 8];
        let size = width.bytes();
        let backed = self.array.backed_size().saturating_sub(offset).min(size);
        self.array.read(offset, &mut bytes[..backed as usize]);
        u64::from_le_bytes(bytes)
    }

    /// Whether `[offset, offset + size)` lies in the backed part of the array.
    fn backed(&self, offset: u64, size: u64) -> bool {
        offset
            .checked_add(size)
            .is_some_and(|end| end <= self.array.backed_size())
    }

    /// The first cycle of a command.
    fn command(&mut self, command: u8) {
        self.mode = match command {
            0xff | 0xf0 | 0x00 => FlashMode::ReadArray,
            0x70 => FlashMode::ReadStatus,
            0x90 => FlashMode::ReadIdentifier,
            0x98 => FlashMode::Query,
            0x50 => {
                self.status = STATUS_READY;
                FlashMode::ReadArray
            }
            0x10 | 0x40 => FlashMode::ProgramData,
            0x20 => FlashMode::EraseConfirm,
            0xe8 => FlashMode::BufferCount,
            0x60 => FlashMode::LockConfirm,
            _ => return self.sequence_error(),
        };
        if self.mode == FlashMode::BufferCount {
            // The buffer is available at once (XSR.7, read in the status lane).
            self.status |= STATUS_READY;
        }
    }

    /// A program operation of `bytes` at `offset`; the status says how it went.
    fn program(&mut self, offset: u64, bytes: &[u8]) -> bool {
        if self.write_protected {
            self.status |= STATUS_LOCKED | STATUS_PROGRAM_ERROR;
            return false;
        }
        if !self.backed(offset, bytes.len() as u64) {
            self.status |= STATUS_PROGRAM_ERROR;
            return false;
        }
        self.array.program(offset, bytes);
        true
    }

    /// The erase of the block holding `offset`.
    fn erase(&mut self, offset: u64) {
        let start = offset & !(BLOCK_SIZE - 1);
        if self.write_protected {
            self.status |= STATUS_LOCKED | STATUS_ERASE_ERROR;
        } else if !self.backed(start, BLOCK_SIZE) {
            self.status |= STATUS_ERASE_ERROR;
        } else {
            self.array.erase(start, BLOCK_SIZE);
        }
    }

    /// A data write of a write-to-buffer transfer.
    fn buffer_data(&mut self, offset: u64, bytes: &[u8]) {
        let start = *self.buffer.first().map_or(&offset, |(first, _)| first);
        let block = start & !(WRITE_BUFFER_SIZE - 1);
        let end = offset + bytes.len() as u64;
        if offset < block || end > block + WRITE_BUFFER_SIZE {
            // Outside the buffer's aligned window: the transfer is abandoned.
            return self.sequence_error();
        }
        self.buffer.push((offset, bytes.to_vec()));
        self.buffer_remaining -= 1;
        if self.buffer_remaining == 0 {
            self.mode = FlashMode::BufferConfirm;
        }
    }

    /// Programs what a confirmed write-to-buffer transfer collected.
    fn commit_buffer(&mut self) {
        let writes = core::mem::take(&mut self.buffer);
        for (offset, bytes) in &writes {
            if !self.program(*offset, bytes) {
                break;
            }
        }
        self.mode = FlashMode::ReadStatus;
    }

    /// A write of `value` (`size` bytes) at `offset`.
    fn write_cycle(&mut self, offset: u64, width: AccessWidth, value: u64) {
        let bytes = value.to_le_bytes();
        let bytes = &bytes[..width.bytes() as usize];
        let command = bytes[0];
        match self.mode {
            FlashMode::ReadArray
            | FlashMode::ReadStatus
            | FlashMode::ReadIdentifier
            | FlashMode::Query => self.command(command),
            FlashMode::ProgramData => {
                self.program(offset, bytes);
                self.status |= STATUS_READY;
                self.mode = FlashMode::ReadStatus;
            }
            FlashMode::EraseConfirm => match command {
                0xd0 => {
                    self.erase(offset);
                    self.status |= STATUS_READY;
                    self.mode = FlashMode::ReadStatus;
                }
                0xff => self.read_array(),
                _ => self.sequence_error(),
            },
            FlashMode::BufferCount => {
                // Each chip gets the count in its lane; the first lane speaks for both.
                let high = bytes.get(1).copied().unwrap_or(0);
                let count = u64::from(u16::from_le_bytes([bytes[0], high]));
                let units = count + 1;
                if units * width.bytes() > WRITE_BUFFER_SIZE {
                    return self.sequence_error();
                }
                self.buffer.clear();
                self.buffer_remaining = units;
                self.mode = FlashMode::BufferData;
            }
            FlashMode::BufferData => self.buffer_data(offset, bytes),
            FlashMode::BufferConfirm => match command {
                0xd0 => {
                    self.commit_buffer();
                    self.status |= STATUS_READY;
                }
                _ => self.sequence_error(),
            },
            FlashMode::LockConfirm => match command {
                // Blocks are never locked: both are accepted and change nothing.
                0x01 | 0xd0 => {
                    self.status |= STATUS_READY;
                    self.mode = FlashMode::ReadStatus;
                }
                0xff => self.read_array(),
                _ => self.sequence_error(),
            },
        }
    }
}

/// The chips' CFI query table, by unit (each chip: 32 MiB, 256 blocks of 128 KiB, a
/// 2 KiB write buffer, the Intel/Sharp extended command set).
fn query_table() -> &'static [u8] {
    /// log2 of one chip's size.
    const CHIP_SIZE_LOG2: u8 = 25;
    const TABLE: [u8; 0x40] = {
        let mut t = [0u8; 0x40];
        // "QRY", the primary command set (0x0001, Intel/Sharp extended) and where its
        // extended table is (0x31); no alternate set.
        t[0x10] = b'Q';
        t[0x11] = b'R';
        t[0x12] = b'Y';
        t[0x13] = 0x01;
        t[0x15] = 0x31;
        // Vcc 4.5-5.5 V, no Vpp.
        t[0x1b] = 0x45;
        t[0x1c] = 0x55;
        // Typical timeouts: 2^7 us per word or buffer, 2^10 ms per block erase; the
        // maximum 2^4 times that.
        t[0x1f] = 0x07;
        t[0x20] = 0x07;
        t[0x21] = 0x0a;
        t[0x23] = 0x04;
        t[0x24] = 0x04;
        t[0x25] = 0x04;
        // Size 2^25 bytes, an x16 interface, a 2^11-byte write buffer.
        t[0x27] = CHIP_SIZE_LOG2;
        t[0x28] = 0x02;
        t[0x2a] = WRITE_BUFFER_LOG2;
        // One erase region: 256 blocks (count - 1 = 0x00ff) of 512 * 256 bytes.
        t[0x2c] = 0x01;
        t[0x2d] = 0xff;
        t[0x2e] = 0x00;
        t[0x2f] = 0x00;
        t[0x30] = 0x02;
        // The primary extended table: "PRI", version 1.0, no optional features.
        t[0x31] = b'P';
        t[0x32] = b'R';
        t[0x33] = b'I';
        t[0x34] = b'1';
        t[0x35] = b'0';
        t
    };
    &TABLE
}

impl<A: FlashArray> MmioDevice for CfiFlash<A> {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        if self.mode == FlashMode::ReadArray {
            return self.read_array_bytes(offset, width);
        }
        // Each chip answers in its 16-bit lane; a narrower read sees the first lane.
        let lane = u64::from(self.chip_answer(offset));
        let lanes = (width.bytes() / CHIP_WIDTH).max(1);
        let value = (0..lanes).fold(0, |value, n| value | lane << (16 * n));
        width.truncate(value)
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        self.write_cycle(offset, width, value);
    }
}

impl<A: FlashArray> Persist for CfiFlash<A> {
    type State = CfiFlashState;

    fn save_state(&self) -> CfiFlashState {
        CfiFlashState {
            mode: self.mode,
            status: self.status,
            buffer_remaining: self.buffer_remaining,
            buffer: self.buffer.clone(),
        }
    }

    fn restore_state(&mut self, state: &CfiFlashState) -> Result<(), InvalidState> {
        state.check()?;
        self.mode = state.mode;
        self.status = state.status;
        self.buffer_remaining = state.buffer_remaining;
        self.buffer = state.buffer.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// A bank backed by a vector, counting the changes made to it.
    struct VecArray {
        bytes: Vec<u8>,
        changes: usize,
    }

    impl FlashArray for VecArray {
        fn backed_size(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn read(&self, offset: u64, out: &mut [u8]) {
            let start = offset as usize;
            out.copy_from_slice(&self.bytes[start..start + out.len()]);
        }
        fn program(&mut self, offset: u64, data: &[u8]) {
            let start = offset as usize;
            self.bytes[start..start + data.len()].copy_from_slice(data);
            self.changes += 1;
        }
        fn erase(&mut self, offset: u64, size: u64) {
            let start = offset as usize;
            self.bytes[start..start + size as usize].fill(0xff);
            self.changes += 1;
        }
    }

    /// A bank of two blocks holding 0, 1, 2, ... (mod 251).
    fn bank(write_protected: bool) -> CfiFlash<VecArray> {
        let bytes = (0..2 * BLOCK_SIZE).map(|i| (i % 251) as u8).collect();
        CfiFlash::new(VecArray { bytes, changes: 0 }, write_protected)
    }

    const WORD: AccessWidth = AccessWidth::Word;

    /// Both chips given `command` in their lanes, as EDK2 and U-Boot write it.
    fn dual(command: u8) -> u64 {
        u64::from(command) << 16 | u64::from(command)
    }

    fn status(flash: &mut CfiFlash<VecArray>) -> u64 {
        flash.write(0, WORD, dual(0x70));
        flash.read(0, WORD)
    }

    #[test]
    fn reads_the_array_until_a_command() {
        let mut flash = bank(false);
        assert!(flash.in_read_array());
        assert_eq!(flash.read(4, WORD), 0x07_06_05_04);
        assert_eq!(flash.read(1, AccessWidth::Byte), 1);
        // Beyond the backed part the window reads as zero.
        assert_eq!(flash.read(2 * BLOCK_SIZE, AccessWidth::Double), 0);
        flash.write(0, WORD, dual(0x70));
        assert!(!flash.in_read_array());
        flash.write(0, WORD, dual(0xff));
        assert!(flash.in_read_array());
    }

    #[test]
    fn query_answers_in_both_lanes() {
        let mut flash = bank(false);
        flash.write(0x55 * 4, WORD, dual(0x98));
        let unit = |flash: &mut CfiFlash<VecArray>, n: u64| flash.read(n * 4, WORD);
        assert_eq!(unit(&mut flash, 0x10), 0x0051_0051); // 'Q'
        assert_eq!(unit(&mut flash, 0x11), 0x0052_0052); // 'R'
        assert_eq!(unit(&mut flash, 0x12), 0x0059_0059); // 'Y'
        assert_eq!(unit(&mut flash, 0x13), 0x0001_0001); // Intel command set
        // Two 32 MiB chips make the 64 MiB bank; 2 x 128 KiB blocks make 256 KiB.
        assert_eq!(unit(&mut flash, 0x27) & 0xff, 25);
        assert_eq!(
            ((unit(&mut flash, 0x30) & 0xff) << 8 | unit(&mut flash, 0x2f) & 0xff) * 256 * 2,
            BLOCK_SIZE
        );
        assert_eq!(flash.read(0x10 * 4, AccessWidth::Half), 0x51);
        assert_eq!(flash.read(0x10 * 4, AccessWidth::Byte), 0x51);
        assert_eq!(unit(&mut flash, 0x1000), 0);
        flash.write(0, WORD, dual(0xff));
        assert_eq!(flash.read(0, WORD), 0x03_02_01_00);
    }

    #[test]
    fn identifier_codes() {
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0x90));
        assert_eq!(flash.read(0, WORD), 0x0089_0089);
        assert_eq!(flash.read(4, WORD), 0x0018_0018);
        assert_eq!(flash.read(8, WORD), 0);
    }

    #[test]
    fn program_then_status_then_array() {
        let mut flash = bank(false);
        flash.write(0x100, WORD, dual(0x40));
        assert!(!flash.in_read_array());
        flash.write(0x100, WORD, 0xdead_beef);
        assert_eq!(flash.read(0x100, WORD), 0x0080_0080, "ready, no error");
        flash.write(0, WORD, dual(0xff));
        assert_eq!(flash.read(0x100, WORD), 0xdead_beef);
        assert_eq!(flash.read(0x4, WORD), 0x07_06_05_04);
    }

    #[test]
    fn block_erase_clears_one_block() {
        let mut flash = bank(false);
        flash.write(BLOCK_SIZE + 8, WORD, dual(0x20));
        flash.write(BLOCK_SIZE + 8, WORD, dual(0xd0));
        assert_eq!(flash.read(0, WORD), 0x0080_0080);
        flash.write(0, WORD, dual(0xff));
        assert_eq!(flash.read(BLOCK_SIZE, WORD), 0xffff_ffff);
        assert_eq!(flash.read(2 * BLOCK_SIZE - 4, WORD), 0xffff_ffff);
        let before: Vec<u8> = (BLOCK_SIZE - 4..BLOCK_SIZE)
            .map(|i| (i % 251) as u8)
            .collect();
        let expected = u32::from_le_bytes(before.try_into().unwrap());
        assert_eq!(
            flash.read(BLOCK_SIZE - 4, WORD),
            u64::from(expected),
            "the block before"
        );
    }

    #[test]
    fn write_to_buffer() {
        let mut flash = bank(false);
        flash.write(0x200, WORD, dual(0xe8));
        assert_eq!(flash.read(0x200, WORD) & 0x80, 0x80, "buffer available");
        flash.write(0x200, WORD, dual(3)); // four words
        for n in 0..4u64 {
            assert_eq!(
                flash.array().changes,
                0,
                "nothing programmed before the confirm"
            );
            flash.write(0x200 + 4 * n, WORD, 0x1111_1111 * (n + 1));
        }
        flash.write(0x200, WORD, dual(0xd0));
        assert_eq!(flash.read(0x200, WORD), 0x0080_0080);
        flash.write(0, WORD, dual(0xff));
        for n in 0..4u64 {
            assert_eq!(flash.read(0x200 + 4 * n, WORD), 0x1111_1111 * (n + 1));
        }
    }

    #[test]
    fn clear_status() {
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0x12));
        assert_eq!(status(&mut flash), 0x00b0_00b0);
        flash.write(0, WORD, dual(0x50));
        assert!(flash.in_read_array());
        assert_eq!(status(&mut flash), 0x0080_0080);
    }

    #[test]
    fn bad_sequences_report_and_change_nothing() {
        let before = bank(false).array().bytes.clone();
        // An unknown command.
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0x12));
        assert!(flash.in_read_array());
        assert_eq!(
            flash.status() & STATUS_SEQUENCE_ERROR,
            STATUS_SEQUENCE_ERROR
        );
        // An erase not confirmed.
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0x20));
        flash.write(0, WORD, dual(0x40));
        assert_eq!(status(&mut flash), 0x00b0_00b0);
        // A buffer write whose confirm is wrong.
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0xe8));
        flash.write(0, WORD, dual(0));
        flash.write(0, WORD, 0x1234_5678);
        flash.write(0, WORD, dual(0xff));
        assert_eq!(status(&mut flash), 0x00b0_00b0);
        assert_eq!(flash.array().changes, 0);
        // A buffer larger than the chips' buffers.
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0xe8));
        flash.write(0, WORD, 0x0400_0400);
        assert_eq!(status(&mut flash), 0x00b0_00b0);
        // Buffer data outside the buffer's window.
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0xe8));
        flash.write(0, WORD, dual(1));
        flash.write(0xffc, WORD, 1);
        flash.write(0x1000, WORD, 2);
        assert_eq!(status(&mut flash), 0x00b0_00b0);
        assert_eq!(flash.array().bytes, before);
        // Programming beyond the backed part.
        let mut flash = bank(false);
        flash.write(2 * BLOCK_SIZE, WORD, dual(0x40));
        flash.write(2 * BLOCK_SIZE, WORD, 0);
        assert_eq!(status(&mut flash), 0x0090_0090);
        assert_eq!(flash.array().changes, 0);
    }

    #[test]
    fn write_protected_bank_refuses_changes() {
        let mut flash = bank(true);
        let before = flash.array().bytes.clone();
        flash.write(0, WORD, dual(0x40));
        flash.write(0, WORD, 0);
        assert_eq!(flash.read(0, WORD), 0x0092_0092, "locked, program error");
        flash.write(0, WORD, dual(0x50));
        flash.write(0, WORD, dual(0x20));
        flash.write(0, WORD, dual(0xd0));
        assert_eq!(flash.read(0, WORD), 0x00a2_00a2, "locked, erase error");
        assert_eq!(flash.array().bytes, before);
        // Queries still work.
        flash.write(0, WORD, dual(0x98));
        assert_eq!(flash.read(0x10 * 4, WORD), 0x0051_0051);
    }

    #[test]
    fn lock_commands_are_accepted() {
        let mut flash = bank(false);
        flash.write(0, WORD, dual(0x60));
        flash.write(0, WORD, dual(0xd0));
        assert_eq!(flash.read(0, WORD), 0x0080_0080);
    }

    #[test]
    fn state_round_trips_mid_buffer() {
        let mut flash = bank(false);
        flash.write(0x40, WORD, dual(0xe8));
        flash.write(0x40, WORD, dual(1));
        flash.write(0x40, WORD, 0xaaaa_aaaa);
        let state = flash.save_state();
        let mut other = bank(false);
        other.restore_state(&state).unwrap();
        other.write(0x44, WORD, 0xbbbb_bbbb);
        other.write(0x40, WORD, dual(0xd0));
        other.write(0, WORD, dual(0xff));
        assert_eq!(other.read(0x40, AccessWidth::Double), 0xbbbb_bbbb_aaaa_aaaa);
        let bad = CfiFlashState {
            buffer: vec![(BANK_SIZE, vec![0; 4])],
            ..state
        };
        assert!(other.restore_state(&bad).is_err());
    }
}
