//! virtio-console (virtio 1.2, section 5.3) with a single port: the guest's `hvc0`.
//!
//! No `VIRTIO_CONSOLE_F_MULTIPORT`, so only port 0's queues exist: `receiveq0`
//! ([`RECEIVE_QUEUE`], device to driver) and `transmitq0` ([`TRANSMIT_QUEUE`], driver
//! to device). `VIRTIO_CONSOLE_F_EMERG_WRITE` is offered: a write to `emerg_wr`
//! (configuration offset 8) outputs its low byte, even before the driver is set up
//! (section 5.3.5.1).
//!
//! # Flow of bytes
//!
//! - **Output.** Bytes the guest transmits go to an output buffer of
//!   [`OUTPUT_CAPACITY`] bytes that the hypervisor drains with
//!   [`Console::take_output`]. When it is full, the transmit buffer being copied stays
//!   with the device, partly consumed, and the rest of the transmit queue waits in
//!   the ring: nothing is lost, and the guest sees back-pressure. After draining,
//!   call [`MmioTransport::process`](super::MmioTransport::process) to resume.
//! - **Input.** [`Console::push_input`] accepts bytes into an input buffer of
//!   [`INPUT_CAPACITY`] bytes (returning how many fit); the next `process` copies
//!   them into the receive buffers the guest made available, each buffer returned
//!   as soon as it holds what is waiting. Without receive buffers the bytes wait.
//!
//! A transmit buffer with device-writable parts, or a receive buffer with
//! device-readable ones, breaks section 5.3.6.1 and puts the device in
//! `DEVICE_NEEDS_RESET`. Emergency writes while the output buffer is full are dropped
//! and counted.

use super::DeviceType;
use super::chain::Chain;
use super::guest_memory::GuestMemory;
use super::queue::{Queue, QueueError, QueueFault};
use super::transport::{StateError, VirtioDevice, read_config_image};
use crate::mmio::DeviceHost;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// `receiveq(port0)`.
pub const RECEIVE_QUEUE: usize = 0;
/// `transmitq(port0)`.
pub const TRANSMIT_QUEUE: usize = 1;
/// Maximum size of each queue.
pub const QUEUE_SIZE: u16 = 128;
/// Bytes the guest has transmitted that the hypervisor has not drained yet.
pub const OUTPUT_CAPACITY: usize = 16 * 1024;
/// Bytes of input waiting for receive buffers.
pub const INPUT_CAPACITY: usize = 4 * 1024;
/// Bytes copied per step between a buffer and guest RAM.
const COPY_CHUNK: usize = 256;

/// Feature bits (section 5.3.3).
pub mod feature {
    /// `VIRTIO_CONSOLE_F_SIZE`: `cols` and `rows` are valid (not offered).
    pub const SIZE: u64 = 1 << 0;
    /// `VIRTIO_CONSOLE_F_MULTIPORT` (not offered).
    pub const MULTIPORT: u64 = 1 << 1;
    /// `VIRTIO_CONSOLE_F_EMERG_WRITE`: `emerg_wr` works.
    pub const EMERG_WRITE: u64 = 1 << 2;
}

/// Configuration space offsets (section 5.3.4, `struct virtio_console_config`).
pub mod config {
    /// `le16` console size fields (valid only with `VIRTIO_CONSOLE_F_SIZE`).
    pub const SIZE_FIELDS: usize = 0;
    /// `le32 max_nr_ports` (valid only with `VIRTIO_CONSOLE_F_MULTIPORT`).
    pub const MAX_NR_PORTS: usize = 4;
    /// `le32 emerg_wr`.
    pub const EMERG_WR: u64 = 8;
    /// Size of the structure.
    pub const SIZE: usize = 12;
}

/// Counters (not part of the saved state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Bytes the guest transmitted.
    pub transmitted: u64,
    /// Bytes delivered to the guest.
    pub received: u64,
    /// Emergency-write bytes dropped because the output buffer was full.
    pub emergency_dropped: u64,
}

/// The console's state as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleState {
    /// Input waiting for receive buffers (at most [`INPUT_CAPACITY`] bytes).
    pub input: Vec<u8>,
    /// Output not yet drained (at most [`OUTPUT_CAPACITY`] bytes).
    pub output: Vec<u8>,
    /// A transmit chain partly copied: its head and the bytes already taken.
    pub transmitting: Option<(u16, u32)>,
}

/// The virtio-console device-specific part.
#[derive(Debug)]
pub struct Console {
    input: VecDeque<u8>,
    output: VecDeque<u8>,
    transmitting: Option<(u16, u32)>,
    chain: Chain,
    stats: ConsoleStats,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// A console with empty buffers.
    pub fn new() -> Self {
        Self {
            input: VecDeque::with_capacity(INPUT_CAPACITY),
            output: VecDeque::with_capacity(OUTPUT_CAPACITY),
            transmitting: None,
            chain: Chain::new(),
            stats: ConsoleStats::default(),
        }
    }

    /// Queues bytes for the guest; returns how many were accepted (the input buffer
    /// holds at most [`INPUT_CAPACITY`]). Call
    /// [`MmioTransport::process`](super::MmioTransport::process) afterwards.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let take = bytes.len().min(INPUT_CAPACITY - self.input.len());
        self.input.extend(&bytes[..take]);
        take
    }

    /// Room left in the input buffer.
    pub fn input_room(&self) -> usize {
        INPUT_CAPACITY - self.input.len()
    }

    /// Moves transmitted bytes into `buffer`, oldest first, as many as fit; returns
    /// how many. Call [`MmioTransport::process`](super::MmioTransport::process)
    /// afterwards so that waiting transmit buffers continue.
    pub fn take_output(&mut self, buffer: &mut [u8]) -> usize {
        let count = buffer.len().min(self.output.len());
        for (slot, byte) in buffer.iter_mut().zip(self.output.drain(..count)) {
            *slot = byte;
        }
        count
    }

    /// Bytes waiting in the output buffer.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Counters.
    pub const fn stats(&self) -> ConsoleStats {
        self.stats
    }

    /// Copies input into the receive buffers the guest made available.
    fn receive(
        &mut self,
        queue: &mut Queue,
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueError> {
        while !self.input.is_empty() && queue.pop(memory, &mut self.chain)? {
            if self.chain.has_readable() {
                return Err(QueueError::BadRequest(
                    "a console receive buffer is device-readable",
                ));
            }
            let room = self.chain.writable_len().min(self.input.len() as u64) as usize;
            let mut done = 0;
            let mut chunk = [0; COPY_CHUNK];
            while done < room {
                let take = (room - done).min(COPY_CHUNK);
                for (slot, byte) in chunk.iter_mut().zip(self.input.drain(..take)) {
                    *slot = byte;
                }
                self.chain.write(memory, done as u64, &chunk[..take])?;
                done += take;
            }
            self.stats.received += done as u64;
            queue.add_used(memory, self.chain.head(), done as u32)?;
        }
        Ok(())
    }

    /// Copies transmit buffers into the output buffer while it has room.
    fn transmit(
        &mut self,
        queue: &mut Queue,
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueError> {
        // Section 4.2.2.1: no queue access while QueueReady is 0.
        if !queue.is_ready() {
            return Ok(());
        }
        while self.output.len() < OUTPUT_CAPACITY {
            let taken = match self.transmitting {
                Some((head, taken)) => {
                    queue.walk(memory, head, &mut self.chain)?;
                    taken
                }
                None => {
                    if !queue.pop(memory, &mut self.chain)? {
                        return Ok(());
                    }
                    0
                }
            };
            if self.chain.has_writable() {
                return Err(QueueError::BadRequest(
                    "a console transmit buffer is device-writable",
                ));
            }
            let total = self.chain.readable_len();
            let mut at = u64::from(taken).min(total);
            let mut chunk = [0; COPY_CHUNK];
            while at < total && self.output.len() < OUTPUT_CAPACITY {
                let room = OUTPUT_CAPACITY - self.output.len();
                let take = ((total - at) as usize).min(COPY_CHUNK).min(room);
                self.chain.read(memory, at, &mut chunk[..take])?;
                self.output.extend(&chunk[..take]);
                at += take as u64;
                self.stats.transmitted += take as u64;
            }
            if at < total {
                // At most 2^32 - 1 bytes: the chain is under 2^32 bytes.
                self.transmitting = Some((self.chain.head(), at as u32));
                return Ok(());
            }
            self.transmitting = None;
            queue.add_used(memory, self.chain.head(), 0)?;
        }
        Ok(())
    }
}

impl VirtioDevice for Console {
    type State = ConsoleState;

    fn device_type(&self) -> DeviceType {
        DeviceType::Console
    }

    fn device_features(&self) -> u64 {
        feature::EMERG_WRITE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    /// Input waiting for receive buffers, or a transmit buffer waiting for room.
    fn has_own_work(&self) -> bool {
        !self.input.is_empty() || self.transmitting.is_some()
    }

    fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    fn hand_over_output(&mut self, host: &mut dyn DeviceHost) -> bool {
        if self.output.is_empty() {
            return false;
        }
        let (older, newer) = self.output.as_slices();
        host.console_output(older);
        host.console_output(newer);
        self.output.clear();
        true
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // No size, one port, and emerg_wr reads as zero.
        read_config_image(&[0; config::SIZE], offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        if offset == config::EMERG_WR {
            if let Some(&byte) = data.first() {
                if self.output.len() < OUTPUT_CAPACITY {
                    self.output.push_back(byte);
                    self.stats.transmitted += 1;
                } else {
                    self.stats.emergency_dropped += 1;
                }
            }
        }
    }

    fn reset(&mut self) {
        self.transmitting = None;
    }

    fn queue_disabled(&mut self, queue: usize) {
        if queue == TRANSMIT_QUEUE {
            self.transmitting = None;
        }
    }

    fn process_queue(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        let Some(target) = queues.get_mut(queue) else {
            return Ok(());
        };
        match queue {
            RECEIVE_QUEUE => self.receive(target, memory),
            TRANSMIT_QUEUE => self.transmit(target, memory),
            _ => Ok(()),
        }
        .map_err(|error| error.on(queue))
    }

    fn poll(
        &mut self,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        for index in [RECEIVE_QUEUE, TRANSMIT_QUEUE] {
            self.process_queue(index, queues, memory)?;
        }
        Ok(())
    }

    fn save(&self) -> ConsoleState {
        ConsoleState {
            input: self.input.iter().copied().collect(),
            output: self.output.iter().copied().collect(),
            transmitting: self.transmitting,
        }
    }

    fn restore(&mut self, state: &ConsoleState) -> Result<(), StateError> {
        if state.input.len() > INPUT_CAPACITY {
            return Err(StateError("the console's input exceeds its buffer"));
        }
        if state.output.len() > OUTPUT_CAPACITY {
            return Err(StateError("the console's output exceeds its buffer"));
        }
        self.input.clear();
        self.input.extend(&state.input);
        self.output.clear();
        self.output.extend(&state.output);
        self.transmitting = state.transmitting;
        Ok(())
    }
}
