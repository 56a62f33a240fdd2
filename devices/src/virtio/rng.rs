//! virtio-rng, the entropy device (virtio 1.2, section 5.4), over an
//! [`EntropySource`].
//!
//! One queue, `requestq` ([`REQUEST_QUEUE`]); no features, no configuration space.
//! The driver makes device-writable buffers available; the device fills each with
//! random bytes, at most [`MAX_BYTES_PER_REQUEST`] of it ("it MAY use less than the
//! entire buffer length", section 5.4.6.2), and returns it with the number of bytes
//! written.
//!
//! # When the source fails
//!
//! The device only ever hands the guest bytes the source produced, and the spec
//! leaves no room for an empty answer: "The device MUST place one or more random
//! bytes into the buffer" (section 5.4.6.2). So when the source fails or produces
//! nothing, the buffer is *not* returned with 0 bytes: the device keeps it and tries
//! again at the next [`MmioTransport::process`](super::MmioTransport::process), and
//! the guest's read waits, as it would on a slow hardware generator. The other
//! buffers wait behind it in the ring. Failures are counted in
//! [`RngStats::source_failures`]; a hypervisor whose source fails for good should
//! not offer the device at all.
//!
//! A request buffer with device-readable parts breaks section 5.4.6.1 and puts the
//! device in `DEVICE_NEEDS_RESET`.

use super::DeviceType;
use super::chain::Chain;
use super::guest_memory::GuestMemory;
use super::queue::{Queue, QueueError, QueueFault};
use super::transport::{StateError, VirtioDevice, read_config_image};
use core::fmt;

/// The request queue's index.
pub const REQUEST_QUEUE: usize = 0;
/// The request queue's maximum size.
pub const QUEUE_SIZE: u16 = 64;
/// The most bytes given for one request.
pub const MAX_BYTES_PER_REQUEST: usize = 4096;
/// Bytes asked of the source at a time.
const CHUNK: usize = 256;

/// The entropy source failed (e.g. `RNDR` reported no entropy, or the host's own
/// generator did not answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntropyError;

impl fmt::Display for EntropyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the entropy source produced no entropy")
    }
}

/// Where random bytes come from. It must never invent them: a source that cannot
/// produce real entropy says so.
pub trait EntropySource {
    /// Fills the start of `buffer` with random bytes; returns how many (possibly fewer
    /// than asked, 0 meaning none right now), or an error.
    fn fill(&mut self, buffer: &mut [u8]) -> Result<usize, EntropyError>;
}

/// Counters (not part of the saved state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RngStats {
    /// Random bytes given to the guest.
    pub bytes: u64,
    /// Requests completed.
    pub requests: u64,
    /// Times the source failed or gave nothing.
    pub source_failures: u64,
}

/// The entropy device's state as plain data.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RngState {
    /// The request kept because the source failed: its head descriptor.
    pub waiting: Option<u16>,
}

/// The virtio-rng device-specific part.
#[derive(Debug)]
pub struct Rng<E: EntropySource> {
    source: E,
    waiting: Option<u16>,
    chain: Chain,
    stats: RngStats,
}

impl<E: EntropySource> Rng<E> {
    /// An entropy device over `source`.
    pub fn new(source: E) -> Self {
        Self {
            source,
            waiting: None,
            chain: Chain::new(),
            stats: RngStats::default(),
        }
    }

    /// The source.
    pub fn source(&self) -> &E {
        &self.source
    }

    /// The source, writable.
    pub fn source_mut(&mut self) -> &mut E {
        &mut self.source
    }

    /// Counters.
    pub const fn stats(&self) -> RngStats {
        self.stats
    }

    /// Serves requests until the ring is empty or the source fails.
    fn serve(&mut self, queue: &mut Queue, memory: &mut dyn GuestMemory) -> Result<(), QueueError> {
        // Section 4.2.2.1: no queue access while QueueReady is 0.
        if !queue.is_ready() {
            return Ok(());
        }
        loop {
            match self.waiting {
                Some(head) => queue.walk(memory, head, &mut self.chain)?,
                None => {
                    if !queue.pop(memory, &mut self.chain)? {
                        return Ok(());
                    }
                }
            }
            if self.chain.has_readable() {
                return Err(QueueError::BadRequest(
                    "an entropy request buffer is device-readable",
                ));
            }
            let want = self.chain.writable_len().min(MAX_BYTES_PER_REQUEST as u64) as usize;
            let given = self.fill(memory, want)?;
            if given == 0 && want != 0 {
                self.stats.source_failures += 1;
                self.waiting = Some(self.chain.head());
                return Ok(());
            }
            self.waiting = None;
            self.stats.bytes += given as u64;
            self.stats.requests += 1;
            queue.add_used(memory, self.chain.head(), given as u32)?;
        }
    }

    /// Writes up to `want` random bytes into the chain; returns how many.
    fn fill(&mut self, memory: &mut dyn GuestMemory, want: usize) -> Result<usize, QueueError> {
        let mut chunk = [0; CHUNK];
        let mut given = 0;
        while given < want {
            let ask = (want - given).min(CHUNK);
            let got = match self.source.fill(&mut chunk[..ask]) {
                Ok(got) => got.min(ask),
                Err(EntropyError) => 0,
            };
            if got == 0 {
                break;
            }
            self.chain.write(memory, given as u64, &chunk[..got])?;
            given += got;
            if got < ask {
                break;
            }
        }
        Ok(given)
    }
}

impl<E: EntropySource> VirtioDevice for Rng<E> {
    type State = RngState;

    fn device_type(&self) -> DeviceType {
        DeviceType::Entropy
    }

    fn device_features(&self) -> u64 {
        0
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_image(&[], offset, data);
    }

    fn reset(&mut self) {
        self.waiting = None;
    }

    fn queue_disabled(&mut self, queue: usize) {
        if queue == REQUEST_QUEUE {
            self.waiting = None;
        }
    }

    fn process_queue(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        match queues.get_mut(queue) {
            Some(requests) if queue == REQUEST_QUEUE => self
                .serve(requests, memory)
                .map_err(|error| error.on(queue)),
            _ => Ok(()),
        }
    }

    fn has_own_work(&self) -> bool {
        self.waiting.is_some()
    }

    fn poll(
        &mut self,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        if self.waiting.is_some() {
            self.process_queue(REQUEST_QUEUE, queues, memory)?;
        }
        Ok(())
    }

    fn save(&self) -> RngState {
        RngState {
            waiting: self.waiting,
        }
    }

    fn restore(&mut self, state: &RngState) -> Result<(), StateError> {
        if state.waiting.is_some_and(|head| head >= QUEUE_SIZE) {
            return Err(StateError("the waiting entropy request is past the queue"));
        }
        self.waiting = state.waiting;
        Ok(())
    }
}
