//! The GICv3 front-end: a distributor and one redistributor per vCPU in front of
//! the [`Core`], the `ICH_LR<n>_EL2` list-register format and `ICC_SGI1R_EL1` SGIs
//! (see [`VgicV3`] for the model and the two ways to wire it up).

mod distributor;
mod list_registers;
mod redistributor;
mod save;
mod sgi;

pub use list_registers::ich_lr;
pub use save::{SpiSnapshot, VcpuSnapshot, VgicState};
pub use sgi::SgiRequest;

use super::core::{
    Core, Frontend, GicFrame, ListRegisterFormat, LrEntry, LrState, SgiTargets, VgicStats,
    check_config,
};
use super::{FIRST_SPI, VgicError};
use crate::mmio::{AccessWidth, MmioDevice};
use alloc::vec;
use alloc::vec::Vec;

/// Size of the distributor's window.
pub const DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// Size of one redistributor: the RD frame and the SGI frame.
pub const REDISTRIBUTOR_SIZE: u64 = 0x2_0000;
/// Offset of the SGI frame within a redistributor.
pub const SGI_FRAME_OFFSET: u64 = 0x1_0000;
/// Where the first redistributor starts relative to the distributor on QEMU `virt`
/// (`0x080a_0000 - 0x0800_0000`), and in Aerie's guest layout.
pub const DEFAULT_REDISTRIBUTOR_OFFSET: u64 = 0xA_0000;
/// SPIs by default: 64 (INTIDs 32 to 95).
pub const DEFAULT_SPIS: u32 = 64;
/// The most SPIs: 960 (INTIDs up to 991, `GICD_TYPER.ITLinesNumber` = 30).
pub const MAX_SPIS: u32 = 960;
/// The most vCPUs: every affinity Aff1 0-255 / Aff0 0-15 names one.
pub const MAX_VCPUS: usize = VCPUS_PER_AFF1 * AFF1_VALUES;

/// vCPUs per Aff1 value (Aff0 0 to 15: what an SGI target list can address).
const VCPUS_PER_AFF1: usize = 16;
/// Aff1 values.
const AFF1_VALUES: usize = 256;
/// Aff1 in a packed affinity (Aff3.Aff2.Aff1.Aff0), bits \[15:8\].
const AFF1_SHIFT: u32 = 8;

/// The affinity of vCPU `index` packed as Aff3.Aff2.Aff1.Aff0 (what
/// `GICR_TYPER[63:32]` reports): Aff1 = `index / 16`, Aff0 = `index % 16`.
pub const fn vcpu_affinity(index: usize) -> u32 {
    (((index / VCPUS_PER_AFF1) as u32) << AFF1_SHIFT) | (index % VCPUS_PER_AFF1) as u32
}

/// The vCPU with affinity `aff3.aff2.aff1.aff0` among `vcpus`, if any.
pub(crate) fn vcpu_for_affinity(
    aff3: u8,
    aff2: u8,
    aff1: u8,
    aff0: u8,
    vcpus: usize,
) -> Option<usize> {
    if aff3 != 0 || aff2 != 0 || usize::from(aff0) >= VCPUS_PER_AFF1 {
        return None;
    }
    let index = usize::from(aff1) * VCPUS_PER_AFF1 + usize::from(aff0);
    (index < vcpus).then_some(index)
}

/// How to build a [`VgicV3`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VgicV3Config {
    /// vCPUs, 1 to [`MAX_VCPUS`].
    pub vcpus: usize,
    /// SPIs, a multiple of 32 up to [`MAX_SPIS`].
    pub spis: u32,
    /// Offset of the first redistributor from the distributor's base: a multiple of
    /// 64 KiB, at least [`DISTRIBUTOR_SIZE`].
    pub redistributor_offset: u64,
}

impl VgicV3Config {
    /// `vcpus` vCPUs with the defaults: [`DEFAULT_SPIS`] SPIs, redistributors at
    /// [`DEFAULT_REDISTRIBUTOR_OFFSET`].
    pub const fn new(vcpus: usize) -> Self {
        Self {
            vcpus,
            spis: DEFAULT_SPIS,
            redistributor_offset: DEFAULT_REDISTRIBUTOR_OFFSET,
        }
    }

    fn check(&self) -> Result<(), VgicError> {
        let offset = self.redistributor_offset;
        let faults = [
            (
                self.spis % 32 != 0 || self.spis > MAX_SPIS,
                "the number of SPIs must be a multiple of 32, at most 960",
            ),
            (
                offset < DISTRIBUTOR_SIZE || offset % SGI_FRAME_OFFSET != 0,
                "the redistributors must start at a multiple of 64 KiB after the distributor's window",
            ),
        ];
        let vcpus = (MAX_VCPUS, "at most 4096 vCPUs are supported");
        check_config(self.vcpus, vcpus, &faults)
    }
}

/// The GICv3 vGIC: the [`Core`] with a distributor, one redistributor per vCPU and
/// the `ICH_LR<n>_EL2` format in front ([`V3`]).
///
/// # One device, two windows
///
/// The guest sees the distributor (64 KiB) and the redistributors (128 KiB per vCPU:
/// the RD frame, then the SGI frame 64 KiB later) at two addresses that are not
/// contiguous (QEMU `virt`: `0x0800_0000` and `0x080a_0000`). [`VgicV3`] is *one*
/// [`MmioDevice`] whose window starts at the distributor and ends after the last
/// redistributor ([`VgicV3::window_size`]); offsets between the two
/// (`DISTRIBUTOR_SIZE..redistributor_offset`, where QEMU has its ITS and which Aerie's
/// guests do not have) read as zero and ignore writes, counted like any other
/// unknown access. One model, one owner, no lock inside `devices`:
///
/// - the hypervisor can keep the vGIC behind its own lock and, on an MMIO exit,
///   check `address - distributor base < window_size()` before asking the bus, then
///   call [`MmioDevice::read`]/[`write`](MmioDevice::write) on the locked model (flush
///   and sync then never wait for the bus);
/// - or put it on the [`MmioBus`](crate::bus::MmioBus) like any device and reach it
///   with [`MmioBus::downcast_mut`](crate::bus::MmioBus::downcast_mut) under the
///   bus's lock, as for the UART.
///
/// [`VgicV3::distributor_read`] and friends take offsets within each window, for a
/// caller that prefers two separate entries.
///
/// # The machine it models
///
/// - One security state (`GICD_CTLR.DS` = 1) with affinity routing always on
///   (`ARE` reads as one): the guest's interrupts are Group 0 or Group 1, enabled by
///   `GICD_CTLR.EnableGrp0` / `EnableGrp1`; `IGRPMODR` and `NSACR` read as zero.
/// - INTIDs 0 to 31 per vCPU, SPIs 32 up to `32 + spis - 1` ([`VgicV3Config::spis`],
///   a multiple of 32); no LPIs, no ITS, no extended ranges; 10 INTID bits.
/// - vCPU `i` has affinity Aff1 = `i / 16`, Aff0 = `i % 16` ([`vcpu_affinity`],
///   matching `aerie_hyp::vcpu::guest_mpidr`).
/// - Writes take effect at once, so `GICD_CTLR.RWP` and `GICR_CTLR.RWP` read as zero.
/// - `GICR_WAKER.ProcessorSleep` keeps what the guest writes and `ChildrenAsleep`
///   follows it at once (the handshake Linux performs); like QEMU and KVM, a sleeping
///   redistributor still receives interrupts.
/// - An SPI routed with `GICD_IROUTER.Interrupt_Routing_Mode` = 1 ("any PE") goes to
///   the lowest-numbered vCPU whose redistributor is awake, or vCPU 0 if none is; one
///   routed to an affinity that names no vCPU stays pending and undelivered.
/// - Every access the model does not implement (unknown offset, wrong width,
///   misaligned) reads as zero, ignores writes and is counted in [`VgicStats`].
pub type VgicV3 = Core<V3>;

/// The GICv3 front-end's own state: SPI routes and redistributor wake states.
#[derive(Clone, Debug)]
pub struct V3 {
    config: VgicV3Config,
    /// `GICD_IROUTER<32 + i>` (only the defined bits).
    routes: Vec<u64>,
    /// `GICR_WAKER.ProcessorSleep` of each vCPU.
    asleep: Vec<bool>,
    /// Where "any PE" SPIs go: the first awake vCPU, or 0.
    any_pe_target: usize,
}

impl VgicV3 {
    /// A vGIC in its reset state (every interrupt disabled, Group 1, priority 0,
    /// level-sensitive except SGIs, routed to vCPU 0; both groups disabled; every
    /// redistributor asleep).
    pub fn new(config: VgicV3Config) -> Result<Self, VgicError> {
        config.check()?;
        let front = V3 {
            config,
            routes: vec![0; config.spis as usize],
            asleep: vec![true; config.vcpus],
            any_pe_target: 0,
        };
        Ok(Core::with_frontend(config.vcpus, config.spis, true, front))
    }

    /// The configuration it was built with.
    pub const fn config(&self) -> &VgicV3Config {
        &self.front.config
    }

    /// One past the highest implemented INTID (`32 + spis`).
    pub const fn intid_limit(&self) -> u32 {
        FIRST_SPI + self.front.config.spis
    }

    /// Recomputes where "any PE" SPIs go after a redistributor woke or slept; if
    /// they moved, requeues them and kicks both vCPUs.
    fn update_any_pe_target(&mut self) {
        let before = self.front.any_pe_target;
        self.front.any_pe_target = self
            .front
            .asleep
            .iter()
            .position(|&asleep| !asleep)
            .unwrap_or(0);
        if self.front.any_pe_target != before {
            self.touch_spis();
            self.kicks.add(before);
            self.kicks.add(self.front.any_pe_target);
        }
    }

    /// Counts an ignored access.
    fn ignore(&mut self, frame: GicFrame, offset: u64, width: AccessWidth, written: Option<u64>) {
        self.irqs.stats.ignore(frame, offset, width, written);
    }

    /// Reads the distributor register at `offset` within its window.
    pub fn distributor_read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        match self.gicd_read(offset, width) {
            Some(value) => width.truncate(value),
            None => {
                self.ignore(GicFrame::Distributor, offset, width, None);
                0
            }
        }
    }

    /// Writes the distributor register at `offset` within its window.
    pub fn distributor_write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        let value = width.truncate(value);
        if !self.gicd_write(offset, width, value) {
            self.ignore(GicFrame::Distributor, offset, width, Some(value));
        }
    }

    /// Splits an offset within the redistributors' window into vCPU, frame and offset
    /// within the frame.
    fn redistributor_frame(&self, offset: u64) -> Option<(usize, bool, u64)> {
        let vcpu = usize::try_from(offset / REDISTRIBUTOR_SIZE).ok()?;
        if vcpu >= self.front.config.vcpus {
            return None;
        }
        let within = offset % REDISTRIBUTOR_SIZE;
        let sgi_frame = within >= SGI_FRAME_OFFSET;
        Some((vcpu, sgi_frame, within % SGI_FRAME_OFFSET))
    }

    /// Reads the redistributor register at `offset` from the first redistributor.
    pub fn redistributor_read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        let (frame, value) = match self.redistributor_frame(offset) {
            Some((vcpu, false, within)) => (
                GicFrame::Redistributor { vcpu },
                self.gicr_rd_read(vcpu, within, width),
            ),
            Some((vcpu, true, within)) => (
                GicFrame::SgiFrame { vcpu },
                self.gicr_sgi_read(vcpu, within, width),
            ),
            None => (GicFrame::Unmapped, None),
        };
        match value {
            Some(value) => width.truncate(value),
            None => {
                let within = self.frame_offset(frame, offset);
                self.ignore(frame, within, width, None);
                0
            }
        }
    }

    /// Writes the redistributor register at `offset` from the first redistributor.
    pub fn redistributor_write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        let value = width.truncate(value);
        let (frame, handled) = match self.redistributor_frame(offset) {
            Some((vcpu, false, within)) => (
                GicFrame::Redistributor { vcpu },
                self.gicr_rd_write(vcpu, within, width, value),
            ),
            Some((vcpu, true, within)) => (
                GicFrame::SgiFrame { vcpu },
                self.gicr_sgi_write(vcpu, within, width, value),
            ),
            None => (GicFrame::Unmapped, false),
        };
        if !handled {
            let within = self.frame_offset(frame, offset);
            self.ignore(frame, within, width, Some(value));
        }
    }

    /// The offset reported for an ignored access at `offset` from the first
    /// redistributor: within its frame, or from the distributor's base if unmapped.
    fn frame_offset(&self, frame: GicFrame, offset: u64) -> u64 {
        match frame {
            GicFrame::Unmapped => offset.saturating_add(self.front.config.redistributor_offset),
            _ => offset % SGI_FRAME_OFFSET,
        }
    }

    /// Makes SGI `intid` pending on `target` if its copy is in Group 1 (what
    /// `ICC_SGI1R_EL1` generates with one security state, IHI 0069H "Forwarding an
    /// SGI to a target PE"). Returns whether it was.
    fn deliver_group1_sgi(&mut self, target: usize, intid: u32) -> bool {
        let delivered = match self.irqs.irq_of_mut(target, intid) {
            Some(irq) if irq.group1 => irq.trigger(),
            _ => false,
        };
        self.touch(Some(target), intid);
        delivered
    }
}

impl V3 {
    /// The size of the MMIO window from the distributor's base to the end of the last
    /// redistributor.
    const fn window(&self) -> u64 {
        self.config.redistributor_offset + self.config.vcpus as u64 * REDISTRIBUTOR_SIZE
    }
}

impl Frontend for V3 {
    fn spi_target(&self, index: usize) -> Option<usize> {
        use distributor::irouter;
        let route = *self.routes.get(index)?;
        if route & irouter::ANY_PE != 0 {
            return Some(self.any_pe_target);
        }
        let field = |shift: u32| (route >> shift) as u8;
        vcpu_for_affinity(
            field(irouter::AFF3_SHIFT),
            field(irouter::AFF2_SHIFT),
            field(irouter::AFF1_SHIFT),
            field(irouter::AFF0_SHIFT),
            self.config.vcpus,
        )
    }

    fn window_size(&self) -> u64 {
        self.window()
    }

    /// GICv3 registers are not banked by the accessing vCPU (each vCPU has its own
    /// redistributor frames), so `vcpu` is not needed: this is
    /// [`MmioDevice::read`].
    fn read(core: &mut VgicV3, _vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        MmioDevice::read(core, offset, width)
    }

    /// [`MmioDevice::write`]; `vcpu` is not needed (see [`read`](Self::read)).
    fn write(core: &mut VgicV3, _vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        MmioDevice::write(core, offset, width, value);
    }

    fn encode(entry: &LrEntry) -> u64 {
        list_registers::encode(entry)
    }

    const LIST_REGISTER_FORMAT: ListRegisterFormat = list_registers::FORMAT;

    fn read_back(entry: &LrEntry, value: u64) -> Option<LrState> {
        let (intid, state) = list_registers::decode(value);
        (intid == entry.intid).then_some(state)
    }

    fn send_sgi_from_register(
        core: &mut VgicV3,
        sender: usize,
        icc_sgi1r: u64,
    ) -> Result<SgiTargets, VgicError> {
        let vcpus = core.front.config.vcpus;
        if sender >= vcpus {
            return Err(VgicError::NoSuchVcpu {
                vcpu: sender,
                vcpus,
            });
        }
        let request = SgiRequest::decode(icc_sgi1r);
        if request.all_but_self {
            let mut skipped = 0u64;
            for target in (0..vcpus).filter(|&target| target != sender) {
                if !core.deliver_group1_sgi(target, request.intid) && target < u64::BITS as usize {
                    skipped |= 1 << target;
                }
            }
            return Ok(SgiTargets::all_but(sender, vcpus, skipped));
        }
        let first = usize::from(request.aff1) * VCPUS_PER_AFF1;
        let mut mask = 0u16;
        for bit in 0..u16::BITS {
            if request.target_list & (1 << bit) == 0 {
                continue;
            }
            // TargetList[n] names Aff0 = RS * 16 + n (at most 255).
            let aff0 = request.range_selector * 16 + bit as u8;
            let target = vcpu_for_affinity(request.aff3, request.aff2, request.aff1, aff0, vcpus);
            if let Some(target) = target
                && core.deliver_group1_sgi(target, request.intid)
            {
                mask |= 1 << (target - first);
            }
        }
        Ok(SgiTargets::group(first, mask))
    }
}

impl VgicV3 {
    /// The size of the MMIO window from the distributor's base to the end of the last
    /// redistributor.
    pub const fn window_size(&self) -> u64 {
        self.front.window()
    }

    /// The counters.
    pub const fn stats(&self) -> &VgicStats {
        &self.irqs.stats
    }
}

impl MmioDevice for VgicV3 {
    fn read(&mut self, offset: u64, width: AccessWidth) -> u64 {
        if offset < DISTRIBUTOR_SIZE {
            return self.distributor_read(offset, width);
        }
        match offset.checked_sub(self.front.config.redistributor_offset) {
            Some(within) => self.redistributor_read(within, width),
            None => {
                self.ignore(GicFrame::Unmapped, offset, width, None);
                0
            }
        }
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) {
        if offset < DISTRIBUTOR_SIZE {
            return self.distributor_write(offset, width, value);
        }
        match offset.checked_sub(self.front.config.redistributor_offset) {
            Some(within) => self.redistributor_write(within, width, value),
            None => self.ignore(
                GicFrame::Unmapped,
                offset,
                width,
                Some(width.truncate(value)),
            ),
        }
    }
}
