//! Fuzz targets of the vGIC's register interfaces: the GICv3 distributor and
//! redistributors, and the GICv2 distributor, driven by random sequences of register
//! accesses (every offset and width, aligned or not, by any vCPU or one that does not
//! exist) mixed with what the hypervisor does: interrupt lines and edges, SGIs from
//! `ICC_SGI1R_EL1`, list-register flushes and syncs with whatever the guest did to
//! the list registers, hardware mappings, saves and restores.

use super::Input;
use crate::mmio::AccessWidth;
use crate::vgic::{
    DEFAULT_REDISTRIBUTOR_OFFSET, DISTRIBUTOR_SIZE, MAX_LIST_REGISTERS, REDISTRIBUTOR_SIZE,
    SGI_FRAME_OFFSET, Vgic, VgicError, VgicV2, VgicV2Config, VgicV3, VgicV3Config,
};
use core::fmt::Debug;
use core::ops::Range;

/// The most operations one input runs.
const MAX_OPERATIONS: usize = 1000;

/// GICv3 distributor offsets that may read as non-zero or take writes: `CTLR`,
/// `TYPER`, `IIDR`; the per-interrupt blocks up to `IPRIORITYR`; `ICFGR`;
/// `IROUTER`; the ID registers. Everything else (`TYPER2`, `STATUSR`, `ITARGETSR`,
/// `IGRPMODR`, `NSACR`, `SGIR`, `C/SPENDSGIR`, reserved space) reads as zero.
const V3_DISTRIBUTOR: [Range<u64>; 5] = [
    0x0000..0x000C,
    0x0080..0x0800,
    0x0C00..0x0D00,
    0x6100..0x7FE0,
    0xFFD0..0x1_0000,
];
/// GICv3 RD frame: `CTLR`, `IIDR`, `TYPER`; `WAKER`; the ID registers. `STATUSR`,
/// the LPI registers (`SETLPIR`, `PROPBASER`, ...) and `SYNCR` read as zero.
const V3_RD_FRAME: [Range<u64>; 3] = [0x0000..0x0010, 0x0014..0x0018, 0xFFD0..0x1_0000];
/// GICv3 SGI frame: the `<0>` word of each per-interrupt block, `IPRIORITYR0-7`,
/// `ICFGR0-1`, the ID registers. `IGRPMODR0`, `NSACR` and the rest read as zero.
const V3_SGI_FRAME: [Range<u64>; 10] = [
    0x0080..0x0084,
    0x0100..0x0104,
    0x0180..0x0184,
    0x0200..0x0204,
    0x0280..0x0284,
    0x0300..0x0304,
    0x0380..0x0384,
    0x0400..0x0420,
    0x0C00..0x0C08,
    0xFFD0..0x1_0000,
];
/// GICv2 distributor offsets that may read as non-zero: `CTLR`, `TYPER`, `IIDR`;
/// `IGROUPR` to `ICFGR`; `C/SPENDSGIR`; the ID registers. The IMPLEMENTATION DEFINED
/// block, `NSACR`, the write-only `SGIR` and reserved space read as zero.
const V2_READABLE: [Range<u64>; 4] = [0x000..0x00C, 0x080..0xD00, 0xF10..0xF30, 0xFD0..0x1000];
/// `GICD_SGIR`: write-only, but its writes send SGIs.
const V2_SGIR: Range<u64> = 0xF00..0xF04;

/// Whether the access `offset..offset + width` touches one of `ranges`.
fn touches(ranges: &[Range<u64>], offset: u64, width: AccessWidth) -> bool {
    let end = offset + width.bytes();
    ranges.iter().any(|r| offset < r.end && r.start < end)
}

/// What the target needs from a front-end besides [`Vgic`].
trait FrontEnd: Vgic + Sized {
    /// The saved state.
    type State: PartialEq + Debug;
    /// The state as plain data.
    fn state(&self) -> Self::State;
    /// A front-end in its reset state with the same configuration.
    fn fresh(&self) -> Self;
    /// Restores a saved state.
    fn put_state(&mut self, state: &Self::State) -> Result<(), VgicError>;
    /// One past the highest implemented INTID.
    fn intids(&self) -> u32;
    /// An offset in the window for an access of `width`, chosen by the input.
    fn offset(&self, input: &mut Input, width: AccessWidth) -> u64;
    /// Whether an access at `offset` may read as non-zero (or, for a write, change
    /// the state).
    fn live(&self, offset: u64, width: AccessWidth, write: bool) -> bool;
}

impl FrontEnd for VgicV3 {
    type State = crate::vgic::VgicState;

    fn state(&self) -> Self::State {
        self.save()
    }

    fn fresh(&self) -> Self {
        VgicV3::new(*self.config()).expect("the configuration was accepted before")
    }

    fn put_state(&mut self, state: &Self::State) -> Result<(), VgicError> {
        self.restore(state)
    }

    fn intids(&self) -> u32 {
        self.intid_limit()
    }

    fn offset(&self, input: &mut Input, width: AccessWidth) -> u64 {
        let config = self.config();
        let redistributor = |k: u64| config.redistributor_offset + k * REDISTRIBUTOR_SIZE;
        let vcpu = input.below(config.vcpus as u64 + 1);
        let frame = match input.choose(8) {
            0..=2 => 0,
            3 => {
                let anywhere = u64::from(input.u32());
                return aligned(input, anywhere, width, self.window_size());
            }
            4 | 5 => redistributor(vcpu),
            _ => redistributor(vcpu) + SGI_FRAME_OFFSET,
        };
        let within = match input.choose(4) {
            0 => u64::from(input.u16() & 0x0FFF),
            1 => 0x6000 + u64::from(input.u16() & 0x1FFF),
            2 => 0xFFC0 + u64::from(input.u8() & 0x3F),
            _ => u64::from(input.u16()),
        };
        aligned(input, frame + within, width, self.window_size())
    }

    fn live(&self, offset: u64, width: AccessWidth, _write: bool) -> bool {
        let config = self.config();
        if offset < DISTRIBUTOR_SIZE {
            return touches(&V3_DISTRIBUTOR, offset, width);
        }
        let Some(from_first) = offset.checked_sub(config.redistributor_offset) else {
            return false;
        };
        if from_first / REDISTRIBUTOR_SIZE >= config.vcpus as u64 {
            return false;
        }
        match from_first % REDISTRIBUTOR_SIZE {
            rd if rd < SGI_FRAME_OFFSET => touches(&V3_RD_FRAME, rd, width),
            sgi => touches(&V3_SGI_FRAME, sgi - SGI_FRAME_OFFSET, width),
        }
    }
}

impl FrontEnd for VgicV2 {
    type State = crate::vgic::VgicV2State;

    fn state(&self) -> Self::State {
        self.save()
    }

    fn fresh(&self) -> Self {
        VgicV2::new(*self.config()).expect("the configuration was accepted before")
    }

    fn put_state(&mut self, state: &Self::State) -> Result<(), VgicError> {
        self.restore(state)
    }

    fn intids(&self) -> u32 {
        self.intid_limit()
    }

    fn offset(&self, input: &mut Input, width: AccessWidth) -> u64 {
        let offset = match input.choose(4) {
            0 | 1 => u64::from(input.u16() & 0xFFF),
            2 => 0xF00 + u64::from(input.u8()),
            _ => 0xFC0 + u64::from(input.u8() & 0x3F),
        };
        aligned(input, offset, width, self.window_size())
    }

    fn live(&self, offset: u64, width: AccessWidth, write: bool) -> bool {
        touches(&V2_READABLE, offset, width) || (write && touches(&[V2_SGIR], offset, width))
    }
}

/// `offset` aligned to `width` (unless the input says otherwise) and inside a window
/// of `size` bytes, as the bus guarantees.
fn aligned(input: &mut Input, offset: u64, width: AccessWidth, size: u64) -> u64 {
    let offset = if input.choose(8) == 0 {
        offset
    } else {
        offset & !(width.bytes() - 1)
    };
    offset.min(size - width.bytes())
}

/// An access width.
fn pick_width(input: &mut Input) -> AccessWidth {
    [
        AccessWidth::Byte,
        AccessWidth::Half,
        AccessWidth::Word,
        AccessWidth::Double,
    ][input.choose(4) as usize]
}

/// A value to write: anything, zero, all ones, or one bit, truncated to `width`.
fn pick_value(input: &mut Input, width: AccessWidth) -> u64 {
    let value = match input.choose(4) {
        0 => input.u64(),
        1 => 0,
        2 => u64::MAX,
        _ => 1 << (input.u8() % 64),
    };
    width.truncate(value)
}

/// A vCPU: mostly one that exists, sometimes the one past the last or a wild one.
fn pick_vcpu(input: &mut Input, vcpus: usize) -> usize {
    match input.choose(16) {
        0 => usize::MAX,
        _ => input.below(vcpus as u64 + 1) as usize,
    }
}

/// An INTID: mostly implemented, sometimes just past the last or anything.
fn pick_intid(input: &mut Input, limit: u32) -> u32 {
    match input.choose(16) {
        0 => input.u32(),
        _ => input.below(u64::from(limit) + 4) as u32,
    }
}

/// What the guest may have done to a list register between flush and sync.
fn guest_touched(input: &mut Input, value: u64) -> u64 {
    match input.choose(6) {
        0 | 1 => value,
        2 => 0,
        3 => value ^ (1 << (input.u8() % 64)),
        4 => value & !(3 << 62) & !(3 << 28),
        _ => input.u64(),
    }
}

/// Drives `gic` with the operations the input describes, checking the invariants
/// after each.
fn drive<G: FrontEnd>(gic: &mut G, input: &mut Input) {
    let vcpus = gic.vcpus();
    let mut operations = 0;
    while !input.is_empty() && operations < MAX_OPERATIONS {
        operations += 1;
        match input.choose(16) {
            0..=4 => {
                let vcpu = pick_vcpu(input, vcpus);
                let width = pick_width(input);
                let offset = gic.offset(input, width);
                let (before, ignored) = (gic.state(), gic.stats().ignored_accesses);
                let value = gic.mmio_read(vcpu, offset, width);
                let what = || alloc::format!("read {width:?} at {offset:#x} by vCPU {vcpu}");
                assert_eq!(value & !width.mask(), 0, "{}", what());
                if gic.stats().ignored_accesses != ignored || !gic.live(offset, width, false) {
                    assert_eq!(value, 0, "{}", what());
                }
                assert_eq!(gic.state(), before, "{} changed the state", what());
            }
            5..=9 => {
                let vcpu = pick_vcpu(input, vcpus);
                let width = pick_width(input);
                let offset = gic.offset(input, width);
                let value = pick_value(input, width);
                let before = gic.state();
                gic.mmio_write(vcpu, offset, width, value);
                if !gic.live(offset, width, true) {
                    assert_eq!(
                        gic.state(),
                        before,
                        "write {width:?} of {value:#x} at {offset:#x} by vCPU {vcpu}"
                    );
                }
            }
            10 => {
                let intid = pick_intid(input, gic.intids());
                let vcpu = input.bool().then(|| pick_vcpu(input, vcpus));
                let _ = match input.choose(3) {
                    0 => gic.set_level(intid, vcpu, input.bool()),
                    1 => gic
                        .set_hardware_level(intid, vcpu, input.bool())
                        .map(|_| ()),
                    _ => gic.trigger_edge(intid, vcpu),
                };
            }
            11 => {
                let _ = gic.send_sgi_from_register(pick_vcpu(input, vcpus), input.u64());
            }
            12 | 13 => {
                let vcpu = pick_vcpu(input, vcpus);
                let wanted = input.choose(MAX_LIST_REGISTERS as u32 + 2) as usize;
                let plan = gic.flush(vcpu, wanted);
                assert!(plan.len() <= wanted.min(MAX_LIST_REGISTERS));
                if input.choose(8) != 0 {
                    let mut back = [0u64; MAX_LIST_REGISTERS + 1];
                    let count = match input.choose(8) {
                        0 => input.choose(back.len() as u32 + 1) as usize,
                        _ => plan.len(),
                    };
                    for (n, slot) in back[..count].iter_mut().enumerate() {
                        *slot = guest_touched(input, plan.value(n));
                    }
                    gic.sync(vcpu, &back[..count]);
                }
            }
            14 => {
                let physical = match input.choose(4) {
                    0 => input.u32(),
                    _ => input.below(1024) as u32,
                };
                let _ = gic.map_hardware(
                    pick_intid(input, gic.intids()),
                    pick_vcpu(input, vcpus),
                    physical,
                );
            }
            _ => {
                let saved = gic.state();
                let mut copy = gic.fresh();
                copy.put_state(&saved).expect("a saved state restores");
                assert_eq!(copy.state(), saved);
            }
        }
        let kicks = gic.take_kicks();
        assert!(!kicks.contains(vcpus) && !kicks.contains(usize::MAX));
        for vcpu in (0..vcpus).chain([vcpus, usize::MAX]) {
            let pending = gic.has_pending(vcpu);
            assert_eq!(pending, gic.highest_pending_priority(vcpu).is_some());
            assert!(vcpu < vcpus || !pending);
        }
    }
}

/// The GICv3 register interface: the input's first bytes choose 1 to 4 vCPUs, 0 to
/// 96 SPIs and where the redistributors start; the rest are operations.
///
/// Checks that no operation panics; that reads fit their width, have no effect on
/// the state, and read as zero where the model ignores the access and in every
/// write-only, reserved or unimplemented region; that writes there change nothing;
/// that flushes plan at most the list registers asked for; that only existing vCPUs
/// are kicked or have pending interrupts; and that every saved state restores
/// unchanged into a fresh vGIC.
pub fn vgic_v3_registers(data: &[u8]) {
    let mut input = Input::new(data);
    let config = VgicV3Config {
        vcpus: 1 + input.choose(4) as usize,
        spis: 32 * input.choose(4),
        redistributor_offset: match input.choose(4) {
            0 => DISTRIBUTOR_SIZE,
            _ => DEFAULT_REDISTRIBUTOR_OFFSET,
        },
    };
    let mut gic = VgicV3::new(config).expect("a valid configuration");
    drive(&mut gic, &mut input);
}

/// The GICv2 distributor: the input's first bytes choose 1 to 8 vCPUs and 0 to 120
/// SPIs (not only multiples of 32); the rest are operations. Checks what
/// [`vgic_v3_registers`] checks, `GICD_SGIR` included among the write-only registers.
pub fn vgic_v2_registers(data: &[u8]) {
    let mut input = Input::new(data);
    let config = VgicV2Config {
        vcpus: 1 + input.choose(8) as usize,
        spis: input.choose(121),
    };
    let mut gic = VgicV2::new(config).expect("a valid configuration");
    drive(&mut gic, &mut input);
}
