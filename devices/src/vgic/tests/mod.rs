//! Host tests of the vGIC through its public interface.
//!
//! The behaviour both front-ends share is tested once (`shared`): each scenario is
//! generic over [`TestGic`], which says how a guest reaches a front-end's registers,
//! and over its [`CpuInterfaceModel`], a small simulated virtual CPU interface that
//! decodes that front-end's list registers and acknowledges and deactivates them
//! the way the hardware does. [`scenarios!`] runs each against both. What only one
//! front-end has (GICv3 redistributors, affinity routing and `ICC_SGI1R_EL1`; GICv2
//! banked registers, `ITARGETSR` and SGI sources) is tested in `v3` and `v2`.
//!
//! Register offsets and fields are restated from the specifications (IHI 0069H,
//! IHI 0048B.b, Arm ARM DDI 0487), independently of the constants in the model.

mod shared;
mod v2;
mod v3;

use shared::{
    assert_ignored, assert_unknown_distributor_offset_counted, timer_fires_on_vcpu_1_only,
};

use super::{IrqSnapshot, LrPlan, Vgic, VgicError};
use crate::mmio::AccessWidth;
use core::fmt::Debug;
use core::marker::PhantomData;
use std::vec::Vec;

pub(super) const B: AccessWidth = AccessWidth::Byte;
pub(super) const H: AccessWidth = AccessWidth::Half;
pub(super) const W: AccessWidth = AccessWidth::Word;
pub(super) const D: AccessWidth = AccessWidth::Double;

/// Distributor registers (IHI 0069H "The GIC Distributor register map", IHI
/// 0048B.b Table 4-1). The per-interrupt blocks (`IGROUPR` to `NSACR`) are at the
/// same offsets in both versions; for INTIDs 0 to 31 they sit in the GICv3
/// redistributor's SGI frame and, banked, in the GICv2 distributor.
pub(super) mod block {
    pub const CTLR: u64 = 0x000;
    pub const TYPER: u64 = 0x004;
    pub const IIDR: u64 = 0x008;
    /// GICv3 only.
    pub const TYPER2: u64 = 0x000C;
    pub const STATUSR: u64 = 0x0010;
    pub const IGRPMODR: u64 = 0x0D00;
    pub const IROUTER: u64 = 0x6000;
    pub const PIDR2: u64 = 0xFFE8;
    /// GICv2 only. IMPLEMENTATION DEFINED (GIC-400: GICD_PPISR, GICD_SPISRn).
    pub const IMPDEF: u64 = 0xD00;
    pub const CPENDSGIR: u64 = 0xF10;
    pub const SPENDSGIR: u64 = 0xF20;
    pub const ICPIDR2: u64 = 0xFE8;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const ICENABLER: u64 = 0x180;
    pub const ISPENDR: u64 = 0x200;
    pub const ICPENDR: u64 = 0x280;
    pub const ISACTIVER: u64 = 0x300;
    pub const ICACTIVER: u64 = 0x380;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ITARGETSR: u64 = 0x800;
    pub const ICFGR: u64 = 0xC00;
    pub const NSACR: u64 = 0xE00;
    pub const SGIR: u64 = 0xF00;
    /// GICD_CTLR: EnableGrp0 [0], EnableGrp1 [1].
    pub const CTLR_ENABLE_GRP0: u64 = 1 << 0;
    pub const CTLR_ENABLE_GRP1: u64 = 1 << 1;
}

/// The INTIDs of the virtual timer's PPI and of the guest UART's SPI.
pub(super) const VTIMER: u32 = 27;
pub(super) const UART: u32 = 33;

/// Linux's default interrupt priority (`GICD_INT_DEF_PRI`).
pub(super) const LINUX_PRIORITY: u8 = 0xA0;

/// One list register, whatever its format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Lr {
    pub intid: u32,
    pub pending: bool,
    pub active: bool,
    pub priority: u8,
    pub group1: bool,
    /// HW set, with this physical INTID.
    pub physical: Option<u32>,
}

impl Lr {
    /// `intid` pending with `priority` in `group1`.
    pub const fn pending(intid: u32, priority: u8, group1: bool) -> Self {
        Self {
            intid,
            pending: true,
            active: false,
            priority,
            group1,
            physical: None,
        }
    }

    /// Whether valid (pending or active).
    pub const fn is_valid(&self) -> bool {
        self.pending || self.active
    }
}

/// A simulated virtual CPU interface holding one vCPU's list registers.
pub(super) trait CpuInterfaceModel: Sized {
    /// Loads the plan into `count` list registers (zero after the plan).
    fn load(plan: &LrPlan, count: usize) -> Self;

    /// The list registers.
    fn lrs(&self) -> &[u64];

    /// The list register value for `lr` (the test's own encoding of the format).
    fn encode(lr: Lr) -> u64;

    /// What list register value `value` holds.
    fn decode(value: u64) -> Lr;

    /// The guest acknowledges: the highest-priority list register that is pending
    /// and not active becomes active; returns what the guest reads (the INTID; on a
    /// GICv2 with the source CPU of an SGI).
    fn acknowledge(&mut self) -> Option<u32>;

    /// The guest ends the interrupt it acknowledged as `iar` (EOImode 0: priority
    /// drop and deactivation).
    fn deactivate(&mut self, iar: u32);

    /// Whether a deactivation raised the EOI maintenance interrupt (GICv2
    /// `GICH_LR.EOI`).
    fn eoi_maintenance(&self) -> bool;

    /// Flushes `vcpu` into `count` list registers.
    fn enter(gic: &mut impl Vgic, vcpu: usize, count: usize) -> Self {
        Self::load(&gic.flush(vcpu, count), count)
    }

    /// Exits: hands the list registers back.
    fn exit(self, gic: &mut impl Vgic, vcpu: usize) {
        gic.sync(vcpu, self.lrs());
    }

    /// List register `n`, decoded.
    fn lr(&self, n: usize) -> Lr {
        Self::decode(self.lrs()[n])
    }

    /// The INTIDs listed in any state.
    fn listed_intids(&self) -> Vec<u32> {
        self.lrs()
            .iter()
            .map(|&value| Self::decode(value))
            .filter(Lr::is_valid)
            .map(|lr| lr.intid)
            .collect()
    }

    /// Acknowledges and ends everything pending, returning what was acknowledged,
    /// in order.
    fn handle_all(&mut self) -> Vec<u32> {
        let mut handled = Vec::new();
        while let Some(iar) = self.acknowledge() {
            self.deactivate(iar);
            handled.push(iar);
        }
        handled
    }
}

/// Where a list-register format keeps each field (restated from the Arm ARM and
/// IHI 0048B.b), for [`SimulatedCpu`].
pub(super) struct LrFields {
    pub pending: u64,
    pub active: u64,
    pub group1: u64,
    pub hw: u64,
    /// The virtual INTID, from bit 0.
    pub intid_mask: u64,
    /// The priority field: its lowest bit, and how many of the priority's top bits
    /// it keeps.
    pub priority_shift: u32,
    pub priority_bits: u32,
    /// The physical INTID with HW set.
    pub physical_shift: u32,
    pub physical_mask: u64,
    /// The source CPU of an SGI with HW clear (none on a GICv3: mask 0).
    pub source_shift: u32,
    pub source_mask: u64,
    /// The EOI maintenance request with HW clear (none on a GICv3: 0).
    pub eoi: u64,
    /// The register's width in bits.
    pub bits: u32,
}

impl LrFields {
    /// The list register's priority field for an 8-bit priority.
    pub const fn priority(&self, priority: u8) -> u64 {
        ((priority as u64) >> (8 - self.priority_bits)) << self.priority_shift
    }

    /// The 8-bit priority in list register `value`.
    pub const fn priority_of(&self, value: u64) -> u8 {
        let field = (value >> self.priority_shift) & ((1 << self.priority_bits) - 1);
        (field << (8 - self.priority_bits)) as u8
    }

    /// What the guest reads when it acknowledges list register `value`: the INTID,
    /// with the source CPU of an SGI (`GICV_IAR.CPUID` \[12:10\]).
    pub const fn iar(&self, value: u64) -> u32 {
        let intid = (value & self.intid_mask) as u32;
        if value & self.hw != 0 {
            return intid;
        }
        intid | ((((value >> self.source_shift) & self.source_mask) as u32) << 10)
    }
}

/// `ICH_LR<n>_EL2`: State \[63:62\], HW \[61\], Group \[60\], Priority \[55:48\],
/// pINTID \[44:32\], vINTID \[31:0\].
pub(super) struct IchLr;

/// `GICH_LR<n>`: HW \[31\], Grp1 \[30\], State \[29:28\], Priority \[27:23\]
/// (priority bits \[7:3\]), PhysicalID \[19:10\] with HW = 1, or EOI \[19\] and
/// CPUID \[12:10\] with HW = 0, VirtualID \[9:0\].
pub(super) struct GichLr;

/// A list-register format.
pub(super) trait LrFormat {
    /// Its fields.
    const FIELDS: LrFields;
}

impl LrFormat for IchLr {
    const FIELDS: LrFields = LrFields {
        pending: 1 << 62,
        active: 1 << 63,
        group1: 1 << 60,
        hw: 1 << 61,
        intid_mask: 0xFFFF_FFFF,
        priority_shift: 48,
        priority_bits: 8,
        physical_shift: 32,
        physical_mask: 0x1FFF,
        source_shift: 0,
        source_mask: 0,
        eoi: 0,
        bits: 64,
    };
}

impl LrFormat for GichLr {
    const FIELDS: LrFields = LrFields {
        hw: 1 << 31,
        group1: 1 << 30,
        active: 1 << 29,
        pending: 1 << 28,
        priority_shift: 23,
        priority_bits: 5,
        eoi: 1 << 19,
        physical_shift: 10,
        physical_mask: 0x3FF,
        source_shift: 10,
        source_mask: 0x7,
        intid_mask: 0x3FF,
        bits: 32,
    };
}

/// A simulated virtual CPU interface holding a vCPU's list registers in format
/// `L`: the guest acknowledges the highest-priority list register that is pending
/// and not active (pending -> active) and ends interrupts (EOImode 0: active ->
/// invalid, or pending if it was pending and active), as IHI 0069H and IHI 0048B.b
/// chapter 5 describe. A deactivated GICv2 list register with `EOI` set raises the
/// EOI maintenance interrupt (`GICH_MISR.EOI`).
pub(super) struct SimulatedCpu<L> {
    pub lrs: Vec<u64>,
    /// A list register with EOI set became invalid.
    pub eoi_maintenance: bool,
    format: PhantomData<L>,
}

impl<L: LrFormat> CpuInterfaceModel for SimulatedCpu<L> {
    /// Loads the plan, checking that every value fits the register.
    fn load(plan: &LrPlan, count: usize) -> Self {
        let lrs: Vec<u64> = (0..count).map(|n| plan.value(n)).collect();
        for &value in &lrs {
            let bits = L::FIELDS.bits;
            assert_eq!(
                value.checked_shr(bits).unwrap_or(0),
                0,
                "{bits} bits: {value:#x}"
            );
        }
        Self {
            lrs,
            eoi_maintenance: false,
            format: PhantomData,
        }
    }

    fn lrs(&self) -> &[u64] {
        &self.lrs
    }

    fn encode(lr: Lr) -> u64 {
        let f = L::FIELDS;
        let flags = [
            (lr.pending, f.pending),
            (lr.active, f.active),
            (lr.group1, f.group1),
        ];
        let physical = lr.physical.map_or(0, |physical| {
            f.hw | (u64::from(physical) & f.physical_mask) << f.physical_shift
        });
        flags.iter().filter(|(set, _)| *set).fold(
            u64::from(lr.intid) | f.priority(lr.priority) | physical,
            |value, (_, bit)| value | bit,
        )
    }

    fn decode(value: u64) -> Lr {
        let f = L::FIELDS;
        let physical = (value >> f.physical_shift) & f.physical_mask;
        Lr {
            intid: (value & f.intid_mask) as u32,
            pending: value & f.pending != 0,
            active: value & f.active != 0,
            priority: f.priority_of(value),
            group1: value & f.group1 != 0,
            physical: (value & f.hw != 0).then_some(physical as u32),
        }
    }

    fn acknowledge(&mut self) -> Option<u32> {
        let f = L::FIELDS;
        let state = f.pending | f.active;
        let (_, value) = self
            .lrs
            .iter_mut()
            .filter(|value| **value & state == f.pending)
            .map(|value| (f.priority_of(*value), value))
            .min_by_key(|(priority, _)| *priority)?;
        *value = (*value & !f.pending) | f.active;
        Some(f.iar(*value))
    }

    fn deactivate(&mut self, iar: u32) {
        let f = L::FIELDS;
        let Some(value) = self
            .lrs
            .iter_mut()
            .find(|value| f.iar(**value) == iar && **value & f.active != 0)
        else {
            return;
        };
        *value &= !f.active;
        let invalid = *value & (f.pending | f.active) == 0;
        if invalid && *value & (f.hw | f.eoi) == f.eoi && f.eoi != 0 {
            self.eoi_maintenance = true;
        }
    }

    fn eoi_maintenance(&self) -> bool {
        self.eoi_maintenance
    }
}

/// How the tests drive one front-end.
pub(super) trait TestGic: Vgic + Sized {
    /// Its virtual CPU interface.
    type Cpu: CpuInterfaceModel;
    /// Its saved state.
    type State: Clone + PartialEq + Debug;
    /// Whether interrupts reset to Group 1 (GICv3) or Group 0 (GICv2).
    const RESET_GROUP1: bool;

    /// A vGIC for `vcpus` vCPUs with the defaults (64 SPIs).
    fn with_vcpus(vcpus: usize) -> Self;

    /// Reads vCPU `vcpu`'s copy of the per-interrupt register at `offset` (a
    /// [`block`] offset covering INTIDs 0 to 31), as the guest reaches it.
    fn read_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64;

    /// Writes vCPU `vcpu`'s copy of the per-interrupt register at `offset`.
    fn write_private(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64);

    /// Routes SPI `intid` to `vcpu` alone (`GICD_IROUTER`, `GICD_ITARGETSR`).
    fn route(&mut self, intid: u32, vcpu: usize);

    /// Routes SPI `intid` to no vCPU (an affinity naming none, no target bits).
    fn unroute(&mut self, intid: u32);

    /// A vGIC of 3 vCPUs with a bit of everything: groups, priorities, triggers,
    /// routes, pending, active and line states.
    fn busy() -> Self;

    /// Every register a guest can read, for comparing two vGICs.
    fn registers(&mut self) -> Vec<u64>;

    /// The state as plain data.
    fn save_state(&self) -> Self::State;

    /// Restores a saved state.
    fn restore_state(&mut self, state: &Self::State) -> Result<(), VgicError>;

    /// vCPU `vcpu`'s SGIs and PPIs in a saved state.
    fn saved_private(state: &mut Self::State, vcpu: usize) -> &mut [IrqSnapshot; 32];

    /// SPI `index` in a saved state.
    fn saved_spi(state: &mut Self::State, index: usize) -> &mut IrqSnapshot;

    /// A saved state's group enables and numbers of vCPUs and SPIs.
    fn saved_shape(state: &Self::State) -> (bool, bool, usize, usize);

    /// Drops the last vCPU (`vcpus`) or the last SPI of a saved state.
    fn shrink(state: &mut Self::State, vcpus: bool);

    /// The members of vCPU `vcpu`'s pending list, in order.
    fn pending_list(&self, vcpu: usize) -> Vec<u32>;

    /// vCPU `vcpu` reads a distributor register.
    fn read_gicd_as(&mut self, vcpu: usize, offset: u64, width: AccessWidth) -> u64 {
        self.mmio_read(vcpu, offset, width)
    }

    /// vCPU `vcpu` writes a distributor register.
    fn write_gicd_as(&mut self, vcpu: usize, offset: u64, width: AccessWidth, value: u64) {
        self.mmio_write(vcpu, offset, width, value);
    }

    /// vCPU 0 reads a distributor register.
    fn read_gicd(&mut self, offset: u64, width: AccessWidth) -> u64 {
        self.read_gicd_as(0, offset, width)
    }

    /// vCPU 0 writes a distributor register.
    fn write_gicd(&mut self, offset: u64, width: AccessWidth, value: u64) {
        self.write_gicd_as(0, offset, width, value);
    }

    /// Enables both groups, and SPI `intid` routed to `vcpu` with `priority`.
    fn enable_spi(&mut self, intid: u32, vcpu: usize, priority: u8) {
        let both = block::CTLR_ENABLE_GRP0 | block::CTLR_ENABLE_GRP1;
        self.write_gicd(block::CTLR, W, both);
        self.route(intid, vcpu);
        let intid = u64::from(intid);
        self.write_gicd(block::IPRIORITYR + intid, B, u64::from(priority));
        self.write_gicd(block::ISENABLER + 4 * (intid / 32), W, 1 << (intid % 32));
    }

    /// Enables both groups, and private interrupt `intid` of `vcpu` with `priority`.
    fn enable_private(&mut self, vcpu: usize, intid: u32, priority: u8) {
        let both = block::CTLR_ENABLE_GRP0 | block::CTLR_ENABLE_GRP1;
        self.write_gicd(block::CTLR, W, both);
        let offset = block::IPRIORITYR + u64::from(intid);
        self.write_private(vcpu, offset, B, u64::from(priority));
        self.write_private(vcpu, block::ISENABLER, W, 1 << intid);
    }

    /// Configures SPI `intid` as edge-triggered (`ICFGR` Int_config bit 1).
    fn make_edge(&mut self, intid: u32) {
        let offset = block::ICFGR + 4 * u64::from(intid / 16);
        let value = self.read_gicd(offset, W) | (0b10 << (2 * (intid % 16)));
        self.write_gicd(offset, W, value);
    }

    /// The vCPUs [`Vgic::take_kicks`] returns.
    fn kicks(&mut self) -> Vec<usize> {
        self.take_kicks().iter().collect()
    }

    /// Runs `vcpu` with `count` list registers until nothing is pending: the guest
    /// handles everything listed, and the vCPU exits (maintenance interrupt or not)
    /// and re-enters while the vGIC has more. Returns what the guest acknowledged, in
    /// order.
    fn run_until_idle(&mut self, vcpu: usize, count: usize) -> Vec<u32> {
        let mut handled = Vec::new();
        for _ in 0..64 {
            let mut cpu = Self::Cpu::enter(self, vcpu, count);
            let round = cpu.handle_all();
            cpu.exit(self, vcpu);
            if round.is_empty() {
                break;
            }
            handled.extend(round);
        }
        handled
    }
}

/// The [`TestGic`] items that read the same for both front-ends (their states are
/// both [`GicState`](crate::vgic::GicState)s); the invoking module has a
/// `vgic` function making a vGIC and a `save_restore` module with `busy` and
/// `registers`.
macro_rules! same_for_both {
    () => {
        fn with_vcpus(vcpus: usize) -> Self {
            vgic(vcpus)
        }

        fn pending_list(&self, vcpu: usize) -> Vec<u32> {
            self.irqs.queue(vcpu).iter().collect()
        }

        fn busy() -> Self {
            save_restore::busy()
        }

        fn registers(&mut self) -> Vec<u64> {
            save_restore::registers(self)
        }

        fn save_state(&self) -> Self::State {
            self.save()
        }

        fn restore_state(&mut self, state: &Self::State) -> Result<(), VgicError> {
            self.restore(state)
        }

        fn saved_private(state: &mut Self::State, vcpu: usize) -> &mut [IrqSnapshot; 32] {
            &mut state.vcpus[vcpu].private
        }

        fn saved_spi(state: &mut Self::State, index: usize) -> &mut IrqSnapshot {
            &mut state.spis[index].irq
        }

        fn saved_shape(state: &Self::State) -> (bool, bool, usize, usize) {
            let groups = (state.group0_enabled, state.group1_enabled);
            (groups.0, groups.1, state.vcpus.len(), state.spis.len())
        }

        fn shrink(state: &mut Self::State, vcpus: bool) {
            if vcpus {
                state.vcpus.pop();
            } else {
                state.spis.pop();
            }
        }
    };
}
pub(super) use same_for_both;

/// Runs each named scenario of the enclosing module (a function generic over
/// [`TestGic`]) as a test against the GICv3 front-end (module `v3`) and the GICv2
/// one (module `v2`).
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod v3 {
            $(
                #[test]
                fn $name() {
                    super::$name::<crate::vgic::VgicV3>();
                }
            )*
        }
        mod v2 {
            $(
                #[test]
                fn $name() {
                    super::$name::<crate::vgic::VgicV2>();
                }
            )*
        }
    };
}
pub(super) use scenarios;
