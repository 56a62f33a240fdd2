//! The virtio-mmio transport, version 2 (virtio 1.2, section 4.2), around a
//! device-specific part ([`VirtioDevice`]).
//!
//! # How the hypervisor drives it
//!
//! - Put the [`MmioTransport`] on the MMIO bus with a window of [`WINDOW_SIZE`] bytes
//!   and forward the guest's accesses (it implements [`MmioDevice`]).
//! - After every access, and whenever host-side input arrives (console bytes, a
//!   recovered entropy source), call [`MmioTransport::service`]: when the transport
//!   has work ([`MmioTransport::needs_processing`]: queues the guest notified, since
//!   `QueueNotify` only records which, or the device's own) it runs the queues
//!   against guest RAM ([`MmioTransport::process`]), and it hands the device's output
//!   to the host. An access that only reads or sets up registers (`DeviceID`,
//!   features, configuration, `InterruptStatus`...) leaves no work, and costs no
//!   queue processing. Work left over because a queue hit its per-call batch limit
//!   stays pending ([`MmioTransport::has_pending_work`]) for the next access.
//! - Drive the device's SPI from [`MmioTransport::interrupt_level`] (a level: high
//!   while `InterruptStatus` is non-zero).
//! - Log [`MmioTransport::take_fault`] when it returns something: a malformed queue or
//!   request put the device in `DEVICE_NEEDS_RESET` (section 2.1.1); the device does
//!   nothing more until the guest resets it, and the fault is reported once.
//!
//! # Register semantics
//!
//! - Control registers (below [`regs::CONFIG`]) answer only 32-bit aligned accesses,
//!   the only ones a driver may make (section 4.2.2.2); others read as zero and are
//!   ignored, as are write-only registers read and read-only registers written.
//! - Feature words are selected with `DeviceFeaturesSel`/`DriverFeaturesSel` (0 for
//!   bits 0-31, 1 for 32-63; other selectors read zero and ignore writes).
//!   `DriverFeatures` is frozen once `FEATURES_OK` is set. Setting `FEATURES_OK` fails
//!   (the bit stays clear, section 3.1.1) if the driver accepted a feature that was
//!   not offered or did not accept `VIRTIO_F_VERSION_1` (the device is modern only,
//!   section 6.1).
//! - `QueueNum` and the queue addresses are ignored while the selected queue is ready
//!   (section 4.2.2.2). Writing 1 to `QueueReady` checks the size (a power of two, at
//!   most `QueueNumMax`) and the alignment of the three parts; a bad setup leaves the
//!   queue disabled and sets `DEVICE_NEEDS_RESET`.
//! - `Status`: writing 0 resets the device (queues, features, interrupt status) and
//!   reads back 0 at once; the driver's bits are stored as written, the device's
//!   `DEVICE_NEEDS_RESET` bit survives driver writes until reset. Queues run only
//!   between `DRIVER_OK` (with `FEATURES_OK`) and a reset or `FAILED`
//!   (section 2.1.2: no buffers consumed before `DRIVER_OK`); notifications that
//!   arrive earlier are not lost, since `DRIVER_OK` schedules every queue.
//! - `InterruptStatus` bit 0 is set when a queue's used buffer notification is due
//!   (after event index or `NO_INTERRUPT` suppression), bit 1 when the configuration
//!   changed or the device needs a reset; `InterruptACK` clears the bits written.
//! - Shared memory regions do not exist: `SHMLen*` and `SHMBase*` read all ones
//!   (length -1, base `0xffffffffffffffff`, section 4.2.2). `QueueReset` reads 0
//!   (`VIRTIO_F_RING_RESET` is not offered). Legacy registers are ignored.
//! - The configuration space (from [`regs::CONFIG`]) takes accesses of any width at
//!   any offset ("accessed with byte alignment"); bytes past the device's
//!   configuration read as zero. `ConfigGeneration` changes with every
//!   device-initiated configuration change ([`MmioTransport::config_changed`]).

use super::guest_memory::GuestMemory;
use super::queue::{Queue, QueueFault, QueueState};
use super::{DeviceType, MAGIC_VALUE, features, regs};
use crate::mmio::{AccessWidth, DeviceHost, InvalidState, MmioDevice, Persist};
use alloc::vec::Vec;
use core::fmt;

/// Size of the register window: the control registers and 256 bytes of
/// configuration space (QEMU's virtio-mmio slots are 0x200 bytes too).
pub const WINDOW_SIZE: u64 = 0x200;

/// The most queues a device may have (bounds the notification mask).
pub const MAX_QUEUES: usize = 32;

/// `Version` of a modern (virtio 1.0+) device.
pub const VERSION_MODERN: u32 = 2;

/// `VendorID`: the bytes `"AERI"` read as a little-endian `u32`.
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"AERI");

/// Features every Aerie device offers, whatever its type: `VIRTIO_F_VERSION_1`,
/// `VIRTIO_F_INDIRECT_DESC` and `VIRTIO_F_EVENT_IDX`.
pub const TRANSPORT_FEATURES: u64 =
    features::VERSION_1 | features::INDIRECT_DESC | features::EVENT_IDX;

/// Status bits the driver sets (section 2.1).
const DRIVER_STATUS_BITS: u32 = regs::STATUS_ACKNOWLEDGE
    | regs::STATUS_DRIVER
    | regs::STATUS_DRIVER_OK
    | regs::STATUS_FEATURES_OK
    | regs::STATUS_FAILED;

/// Every `InterruptStatus` bit.
const INTERRUPT_BITS: u32 = regs::INTERRUPT_USED_BUFFER | regs::INTERRUPT_CONFIG_CHANGE;

/// What [`SHM_LEN_LOW`](regs::SHM_LEN_LOW) and friends read: no such region.
const NO_SHM_REGION: u32 = u32::MAX;

/// `DeviceFeaturesSel`/`DriverFeaturesSel` values that select a feature word.
const FEATURE_WORDS: u32 = 2;

/// How many times [`MmioTransport::service`] lets waiting buffers through again
/// after handing output over (each round can fill the device's output buffer).
const OUTPUT_ROUNDS: usize = 8;

/// The device-specific part of a virtio device.
///
/// Every method must tolerate any guest behaviour without panicking; malformed
/// requests are reported as [`QueueFault`]s.
pub trait VirtioDevice {
    /// The device's state as plain data, for snapshots.
    type State: Clone + fmt::Debug + PartialEq;

    /// The device type (`DeviceID`).
    fn device_type(&self) -> DeviceType;

    /// The device-specific feature bits offered; the transport adds
    /// [`TRANSPORT_FEATURES`].
    fn device_features(&self) -> u64;

    /// `QueueNumMax` of each queue; the slice's length is the number of queues (at
    /// most [`MAX_QUEUES`]; each at most
    /// [`MAX_QUEUE_SIZE`](super::queue::MAX_QUEUE_SIZE)).
    fn queue_max_sizes(&self) -> &[u16];

    /// Reads `data.len()` bytes of configuration space at `offset`. Bytes past the
    /// device's configuration read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// The driver wrote `data` at `offset` in the configuration space.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let _ = (offset, data);
    }

    /// The driver set `DRIVER_OK`, having negotiated `features` (device and transport
    /// bits).
    fn activate(&mut self, features: u64) {
        let _ = features;
    }

    /// The device was reset (`Status` = 0): forget requests in progress.
    fn reset(&mut self);

    /// Queue `queue` was disabled (`QueueReady` = 0): forget chains of it the device
    /// holds.
    fn queue_disabled(&mut self, queue: usize) {
        let _ = queue;
    }

    /// Processes what the driver made available in queue `queue`.
    fn process_queue(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault>;

    /// Whether the device has work that does not come from a notification waiting
    /// (a request held back for lack of entropy): [`MmioTransport::service`] then
    /// processes on any access.
    fn has_own_work(&self) -> bool {
        false
    }

    /// Whether output waits to be handed over ([`Self::hand_over_output`]).
    fn has_output(&self) -> bool {
        false
    }

    /// Hands what the guest transmitted to the host's console; whether there was
    /// anything (devices without output have none).
    fn hand_over_output(&mut self, host: &mut dyn DeviceHost) -> bool {
        let _ = host;
        false
    }

    /// Does work that does not come from a notification (host input, retries).
    fn poll(
        &mut self,
        queues: &mut [Queue],
        memory: &mut dyn GuestMemory,
    ) -> Result<(), QueueFault> {
        let _ = (queues, memory);
        Ok(())
    }

    /// The device's state.
    fn save(&self) -> Self::State;

    /// Puts the device into `state`, after checking it; on error nothing changes.
    fn restore(&mut self, state: &Self::State) -> Result<(), StateError>;
}

/// Copies `data.len()` bytes of `image` from `offset` into `data`, zero past the end
/// of `image`: a configuration space read.
pub fn read_config_image(image: &[u8], offset: u64, data: &mut [u8]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = usize::try_from(offset)
            .ok()
            .and_then(|start| start.checked_add(i))
            .and_then(|index| image.get(index))
            .copied()
            .unwrap_or(0);
    }
}

/// A saved state that cannot be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateError(pub &'static str);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid virtio device state: {}", self.0)
    }
}

/// Counters for statistics (not part of the saved state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// `QueueNotify` writes.
    pub notifications: u64,
    /// Used buffer notifications raised (`InterruptStatus` bit 0 set by the device).
    pub used_interrupts: u64,
    /// Used buffer notifications suppressed by the driver (event index or flags).
    pub suppressed_interrupts: u64,
}

/// The transport's state and the device's, as plain data.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransportState<S> {
    /// `Status`.
    pub status: u32,
    /// `DeviceFeaturesSel`.
    pub device_features_select: u32,
    /// `DriverFeaturesSel`.
    pub driver_features_select: u32,
    /// The features the driver accepted.
    pub driver_features: u64,
    /// `QueueSel`.
    pub queue_select: u32,
    /// `InterruptStatus`.
    pub interrupt_status: u32,
    /// `ConfigGeneration`.
    pub config_generation: u32,
    /// Queues notified but not yet processed, one bit per queue.
    pub pending: u32,
    /// Each queue.
    pub queues: Vec<QueueState>,
    /// The device-specific part.
    pub device: S,
}

/// A virtio-mmio device: the transport and the device-specific part `D`.
#[derive(Debug)]
pub struct MmioTransport<D: VirtioDevice> {
    device: D,
    queues: Vec<Queue>,
    status: u32,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    queue_select: u32,
    interrupt_status: u32,
    config_generation: u32,
    pending: u32,
    fault: Option<QueueFault>,
    fault_reported: bool,
    stats: TransportStats,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// The transport around `device`, reset. Queues past [`MAX_QUEUES`] are not
    /// exposed.
    pub fn new(device: D) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .take(MAX_QUEUES)
            .map(|&max| Queue::new(max))
            .collect();
        Self {
            device,
            queues,
            status: 0,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            queue_select: 0,
            interrupt_status: 0,
            config_generation: 0,
            pending: 0,
            fault: None,
            fault_reported: false,
            stats: TransportStats::default(),
        }
    }

    /// The device-specific part.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device-specific part, e.g. to push console input or drain output.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The queues (for inspection).
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// Whether the guest's interrupt line for this device is high.
    pub fn interrupt_level(&self) -> bool {
        self.interrupt_status != 0
    }

    /// `Status`.
    pub const fn status(&self) -> u32 {
        self.status
    }

    /// Whether the device is in `DEVICE_NEEDS_RESET` after a malformed queue or request.
    pub const fn needs_reset(&self) -> bool {
        self.status & regs::STATUS_DEVICE_NEEDS_RESET != 0
    }

    /// The fault that put the device in `DEVICE_NEEDS_RESET`, once: later calls return
    /// `None` until another fault after a reset.
    pub fn take_fault(&mut self) -> Option<QueueFault> {
        if self.fault_reported {
            return None;
        }
        let fault = self.fault?;
        self.fault_reported = true;
        Some(fault)
    }

    /// Whether [`take_fault`](Self::take_fault) has a fault to return.
    pub const fn has_unreported_fault(&self) -> bool {
        self.fault.is_some() && !self.fault_reported
    }

    /// The features both sides agreed on (valid once `FEATURES_OK` is set).
    pub const fn negotiated_features(&self) -> u64 {
        self.driver_features
    }

    /// Counters.
    pub const fn stats(&self) -> TransportStats {
        self.stats
    }

    /// Whether queues run: `DRIVER_OK` and `FEATURES_OK` set, no `FAILED`, no
    /// `DEVICE_NEEDS_RESET`.
    pub const fn is_live(&self) -> bool {
        let required = regs::STATUS_DRIVER_OK | regs::STATUS_FEATURES_OK;
        let stopping = regs::STATUS_FAILED | regs::STATUS_DEVICE_NEEDS_RESET;
        self.status & required == required && self.status & stopping == 0
    }

    /// Whether [`process`](Self::process) has queues left to run.
    pub const fn has_pending_work(&self) -> bool {
        self.pending != 0 && self.is_live()
    }

    /// Whether [`process`](Self::process) has anything to do: queues notified (or
    /// left over from a batch), or the device's own work, while the device is live.
    pub fn needs_processing(&self) -> bool {
        self.has_pending_work() || (self.is_live() && self.device.has_own_work())
    }

    /// Whether [`service`](Self::service) would do nothing: no queue work, no
    /// output waiting. A register read changes no state, so after one the transport
    /// is still quiet and needs no service.
    pub fn is_quiet(&self) -> bool {
        !self.needs_processing() && !self.device.has_output()
    }

    /// What follows an access or host input: runs the queues if they have work,
    /// hands the device's output to `host` and, when there was some, runs the queues
    /// again (draining made room for waiting transmit buffers, which a driver may be
    /// spinning on). The interrupt level and a fault are then the caller's to read.
    pub fn service(&mut self, host: &mut dyn DeviceHost) {
        if self.needs_processing() {
            self.process(host.memory());
        }
        for _ in 0..OUTPUT_ROUNDS {
            if !self.device.hand_over_output(host) {
                break;
            }
            self.process(host.memory());
        }
    }

    /// All features offered.
    fn offered_features(&self) -> u64 {
        self.device.device_features() | TRANSPORT_FEATURES
    }

    /// The device changed its configuration space (e.g. a disk was resized): bump
    /// `ConfigGeneration` and, once the driver is up, raise a configuration change
    /// notification.
    pub fn config_changed(&mut self) {
        self.config_generation = self.config_generation.wrapping_add(1);
        if self.status & regs::STATUS_DRIVER_OK != 0 {
            self.interrupt_status |= regs::INTERRUPT_CONFIG_CHANGE;
        }
    }

    /// Runs the notified queues and the device's own work against guest RAM, then
    /// raises the used buffer notification if a queue needs it. Does nothing unless
    /// the device is live.
    pub fn process(&mut self, memory: &mut dyn GuestMemory) {
        if !self.is_live() {
            return;
        }
        if let Err(fault) = self.run(memory) {
            self.fail(fault);
        }
    }

    fn run(&mut self, memory: &mut dyn GuestMemory) -> Result<(), QueueFault> {
        let pending = core::mem::take(&mut self.pending);
        for (index, queue) in self.queues.iter_mut().enumerate() {
            queue.start_batch();
            if queue.is_ready() {
                queue.check_areas(memory).map_err(|error| error.on(index))?;
            }
        }
        for index in 0..self.queues.len() {
            if pending & (1 << index) != 0 && self.queues[index].is_ready() {
                self.device.process_queue(index, &mut self.queues, memory)?;
            }
        }
        self.device.poll(&mut self.queues, memory)?;
        for (index, queue) in self.queues.iter_mut().enumerate() {
            if queue.batch_exhausted() {
                self.pending |= 1 << index;
            }
            let added = queue.has_new_used();
            if queue
                .needs_interrupt(memory)
                .map_err(|error| error.on(index))?
            {
                self.interrupt_status |= regs::INTERRUPT_USED_BUFFER;
                self.stats.used_interrupts += 1;
            } else if added {
                self.stats.suppressed_interrupts += 1;
            }
        }
        Ok(())
    }

    /// Enters `DEVICE_NEEDS_RESET` because of `fault` (section 2.1.2: "If DRIVER_OK is
    /// set, after it sets DEVICE_NEEDS_RESET, the device MUST send a device
    /// configuration change notification").
    fn fail(&mut self, fault: QueueFault) {
        if self.fault.is_none() {
            self.fault = Some(fault);
        }
        self.status |= regs::STATUS_DEVICE_NEEDS_RESET;
        if self.status & regs::STATUS_DRIVER_OK != 0 {
            self.interrupt_status |= regs::INTERRUPT_CONFIG_CHANGE;
        }
    }

    /// Device reset (section 2.4 and 4.2.2.1).
    fn reset(&mut self) {
        for queue in &mut self.queues {
            queue.reset();
        }
        self.status = 0;
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.queue_select = 0;
        self.interrupt_status = 0;
        self.pending = 0;
        self.fault = None;
        self.fault_reported = false;
        self.device.reset();
    }

    /// A non-zero write to `Status`.
    fn write_status(&mut self, value: u32) {
        let old = self.status;
        let mut new = (value & DRIVER_STATUS_BITS) | (old & regs::STATUS_DEVICE_NEEDS_RESET);
        let setting = |new: u32, bit: u32| new & bit != 0 && old & bit == 0;
        if setting(new, regs::STATUS_FEATURES_OK) && !self.features_acceptable() {
            new &= !regs::STATUS_FEATURES_OK;
        }
        let driver_ok = setting(new, regs::STATUS_DRIVER_OK);
        self.status = new;
        if driver_ok && self.is_live() {
            let negotiated = self.driver_features;
            let event_idx = negotiated & features::EVENT_IDX != 0;
            let indirect = negotiated & features::INDIRECT_DESC != 0;
            for queue in &mut self.queues {
                queue.set_features(event_idx, indirect);
            }
            self.device.activate(negotiated);
            // Buffers made available before DRIVER_OK were not consumed; look now.
            self.pending = self.all_queues_mask();
        }
    }

    /// Whether the driver's accepted features are a subset of the offered ones and
    /// include `VIRTIO_F_VERSION_1`.
    fn features_acceptable(&self) -> bool {
        self.driver_features & !self.offered_features() == 0
            && self.driver_features & features::VERSION_1 != 0
    }

    fn all_queues_mask(&self) -> u32 {
        match self.queues.len() {
            MAX_QUEUES => u32::MAX,
            count => (1 << count) - 1,
        }
    }

    /// The selected queue, if it exists.
    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_select as usize)
    }

    /// The selected queue, if it exists and is not ready (its setup may change).
    fn configurable_queue(&mut self) -> Option<&mut Queue> {
        self.selected_queue().filter(|queue| !queue.is_ready())
    }

    fn write_queue_ready(&mut self, value: u32) {
        let index = self.queue_select as usize;
        let Some(queue) = self.queues.get_mut(index) else {
            return;
        };
        if value == 0 {
            if queue.is_ready() {
                queue.disable();
                self.device.queue_disabled(index);
            }
            return;
        }
        if queue.is_ready() {
            return;
        }
        if let Err(error) = queue.enable() {
            self.fail(error.on(index));
        }
    }

    fn read_register(&mut self, offset: u64) -> u32 {
        let select_word = |value: u64, select: u32| match select {
            0 => value as u32,
            1 => (value >> 32) as u32,
            _ => 0,
        };
        match offset {
            regs::MAGIC_VALUE => MAGIC_VALUE,
            regs::VERSION => VERSION_MODERN,
            regs::DEVICE_ID => self.device.device_type().id(),
            regs::VENDOR_ID => VENDOR_ID,
            regs::DEVICE_FEATURES => {
                select_word(self.offered_features(), self.device_features_select)
            }
            regs::QUEUE_NUM_MAX => self
                .selected_queue()
                .map_or(0, |queue| u32::from(queue.max_size())),
            regs::QUEUE_READY => self
                .selected_queue()
                .map_or(0, |queue| u32::from(queue.is_ready())),
            regs::INTERRUPT_STATUS => self.interrupt_status,
            regs::STATUS => self.status,
            regs::SHM_LEN_LOW | regs::SHM_LEN_HIGH | regs::SHM_BASE_LOW | regs::SHM_BASE_HIGH => {
                NO_SHM_REGION
            }
            regs::CONFIG_GENERATION => self.config_generation,
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        let set_low = |old: u64| (old & !u64::from(u32::MAX)) | u64::from(value);
        let set_high = |old: u64| (old & u64::from(u32::MAX)) | (u64::from(value) << 32);
        match offset {
            regs::DEVICE_FEATURES_SEL => self.device_features_select = value,
            regs::DRIVER_FEATURES_SEL => self.driver_features_select = value,
            regs::DRIVER_FEATURES
                if self.status & regs::STATUS_FEATURES_OK == 0
                    && self.driver_features_select < FEATURE_WORDS =>
            {
                self.driver_features = if self.driver_features_select == 0 {
                    set_low(self.driver_features)
                } else {
                    set_high(self.driver_features)
                };
            }
            regs::QUEUE_SEL => self.queue_select = value,
            regs::QUEUE_NUM => {
                if let Some(queue) = self.configurable_queue() {
                    // Sizes above QueueNumMax cannot be valid: kept as 0, which
                    // QueueReady refuses just as it would them, and which a saved
                    // state may hold (a size above the maximum may not).
                    let size = u16::try_from(value)
                        .ok()
                        .filter(|&size| size <= queue.max_size());
                    queue.set_size(size.unwrap_or(0));
                }
            }
            regs::QUEUE_READY => self.write_queue_ready(value),
            regs::QUEUE_NOTIFY => {
                self.stats.notifications += 1;
                if (value as usize) < self.queues.len() {
                    self.pending |= 1 << value;
                }
            }
            regs::INTERRUPT_ACK => self.interrupt_status &= !value,
            regs::STATUS => {
                if value == 0 {
                    self.reset();
                } else {
                    self.write_status(value);
                }
            }
            regs::QUEUE_DESC_LOW | regs::QUEUE_DESC_HIGH => {
                if let Some(queue) = self.configurable_queue() {
                    let old = queue.descriptor_area();
                    let new = if offset == regs::QUEUE_DESC_LOW {
                        set_low(old)
                    } else {
                        set_high(old)
                    };
                    queue.set_descriptor_area(new);
                }
            }
            regs::QUEUE_DRIVER_LOW | regs::QUEUE_DRIVER_HIGH => {
                if let Some(queue) = self.configurable_queue() {
                    let old = queue.driver_area();
                    let new = if offset == regs::QUEUE_DRIVER_LOW {
                        set_low(old)
                    } else {
                        set_high(old)
                    };
                    queue.set_driver_area(new);
                }
            }
            regs::QUEUE_DEVICE_LOW | regs::QUEUE_DEVICE_HIGH => {
                if let Some(queue) = self.configurable_queue() {
                    let old = queue.device_area();
                    let new = if offset == regs::QUEUE_DEVICE_LOW {
                        set_low(old)
                    } else {
                        set_high(old)
                    };
                    queue.set_device_area(new);
                }
            }
            _ => {}
        }
    }

    /// The state as plain data.
    pub fn save(&self) -> TransportState<D::State> {
        TransportState {
            status: self.status,
            device_features_select: self.device_features_select,
            driver_features_select: self.driver_features_select,
            driver_features: self.driver_features,
            queue_select: self.queue_select,
            interrupt_status: self.interrupt_status,
            config_generation: self.config_generation,
            pending: self.pending,
            queues: self.queues.iter().map(Queue::save).collect(),
            device: self.device.save(),
        }
    }

    /// Puts the transport and the device into `state`, after checking that it fits
    /// this device and holds only values the registers can hold. On error nothing
    /// changes.
    pub fn restore(&mut self, state: &TransportState<D::State>) -> Result<(), StateError> {
        let bad = |reason| Err(StateError(reason));
        if state.queues.len() != self.queues.len() {
            return bad("it has a different number of queues");
        }
        if state.status & !(DRIVER_STATUS_BITS | regs::STATUS_DEVICE_NEEDS_RESET) != 0 {
            return bad("the status has undefined bits set");
        }
        // Until FEATURES_OK, `DriverFeatures` holds whatever the driver wrote (setting
        // FEATURES_OK is what checks it), so only accepted features are checked.
        let accepted = state.status & regs::STATUS_FEATURES_OK != 0;
        if accepted && state.driver_features & !self.offered_features() != 0 {
            return bad("the driver accepted features the device does not offer");
        }
        if accepted && state.driver_features & features::VERSION_1 == 0 {
            return bad("features were accepted without VIRTIO_F_VERSION_1");
        }
        if state.interrupt_status & !INTERRUPT_BITS != 0 {
            return bad("the interrupt status has undefined bits set");
        }
        if state.pending & !self.all_queues_mask() != 0 {
            return bad("a queue that does not exist is pending");
        }
        for (queue, saved) in self.queues.iter().zip(&state.queues) {
            if queue.check_state(saved).is_err() {
                return bad("a queue's size or layout is invalid");
            }
        }
        self.device.restore(&state.device)?;
        let negotiated = state.driver_features;
        for (queue, saved) in self.queues.iter_mut().zip(&state.queues) {
            // Checked above: cannot fail.
            let _ = queue.restore(saved);
            queue.set_features(
                negotiated & features::EVENT_IDX != 0,
                negotiated & features::INDIRECT_DESC != 0,
            );
        }
        self.status = state.status;
        self.device_features_select = state.device_features_select;
        self.driver_features_select = state.driver_features_select;
        self.driver_features = state.driver_features;
        self.queue_select = state.queue_select;
        self.interrupt_status = state.interrupt_status;
        self.config_generation = state.config_generation;
        self.pending = state.pending;
        self.fault = None;
        self.fault_reported = false;
        Ok(())
    }
}

impl<D: VirtioDevice> Persist for MmioTransport<D> {
    type State = TransportState<D::State>;

    fn save_state(&self) -> Self::State {
        self.save()
    }

    fn restore_state(&mut self, state: &Self::State) -> Result<(), InvalidState> {
        self.restore(state)
            .map_err(|StateError(reason)| InvalidState(reason))
    }
}

impl<D: VirtioDevice> MmioDevice for MmioTransport<D> {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        if offset >= regs::CONFIG {
            let mut data = [0; 8];
            let bytes = &mut data[..width.bytes() as usize];
            self.device.read_config(offset - regs::CONFIG, bytes);
            return u64::from_le_bytes(data);
        }
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return 0;
        }
        u64::from(self.read_register(offset))
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        if offset >= regs::CONFIG {
            let data = value.to_le_bytes();
            self.device
                .write_config(offset - regs::CONFIG, &data[..width.bytes() as usize]);
            return;
        }
        if width != AccessWidth::Word || !width.is_aligned(offset) {
            return;
        }
        self.write_register(offset, value as u32);
    }
}
