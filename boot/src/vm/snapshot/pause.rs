//! Stopping every vCPU at an exit boundary, so that one CPU can work on the whole
//! VM (take a snapshot) while the guest stands still.
//!
//! A request ([`request`]) is noticed by each vCPU's run loop between two guest
//! runs ([`checkpoint`]). The first vCPU to notice becomes the coordinator: it kicks
//! the others out of the guest and waits until each one is either parked in its own
//! checkpoint (having recorded its complete state, taken on its own CPU where the
//! EL1 registers live) or powered off. Then it runs the job with every vCPU's state
//! in hand, and releases them. Between two guest runs nothing is half done: device
//! emulation is synchronous, so no virtio request is in flight either.

use super::super::Vm;
use super::super::interrupts;
use super::super::vcpu::VcpuRun;
use crate::arch::guest_entry::SwitchFrame;
use crate::arch::{cpu, el1_state};
use crate::drivers::gic;
use crate::logger::uptime_micros;
use aerie_hyp::platform::MAX_CPUS;
use aerie_hyp::snapshot::machine::VcpuPower;
use aerie_hyp::vcpu::VcpuState;
use aerie_hyp::vpsci;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// How long the coordinator waits for the other vCPUs to stop.
const STOP_TIMEOUT_MICROS: u64 = 5_000_000;
/// No coordinator.
const NOBODY: usize = usize::MAX;

/// Set while a pause is wanted.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// The vCPU coordinating the pause, or [`NOBODY`].
static COORDINATOR: AtomicUsize = AtomicUsize::new(NOBODY);
/// Bumped when the coordinator releases the parked vCPUs.
static RELEASES: AtomicU64 = AtomicU64::new(0);
/// Which vCPUs are parked in their checkpoint.
static PARKED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// The state each parked vCPU recorded.
static STATES: [crate::sync::Mutex<Option<VcpuState>>; MAX_CPUS] =
    [const { crate::sync::Mutex::new(None) }; MAX_CPUS];

/// Proof that every vCPU is stopped, with their states: what a job gets.
pub struct Paused {
    /// Each vCPU's power state and, when on, its state (index = vCPU).
    pub vcpus: Vec<(VcpuPower, VcpuState)>,
}

/// What happens once the snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The guest runs on.
    Resume,
    /// The machine powers off without the guest running again (if the snapshot was
    /// saved), so it cannot change its disks after the snapshot.
    PowerOff,
}

/// Set when the requested snapshot is to be followed by a power-off.
static POWER_OFF_AFTER: AtomicBool = AtomicBool::new(false);

/// Whether the current pause should end in a power-off (see [`Then`]).
pub fn power_off_after() -> bool {
    POWER_OFF_AFTER.load(Ordering::Acquire)
}

/// Asks every vCPU to stop at its next exit, to take a snapshot and then do `then`;
/// `false` if a pause is already under way. The caller's own vCPU stops when its
/// exit handling returns to the run loop.
pub fn request(vm: &Vm, then: Then) -> bool {
    if REQUESTED.swap(true, Ordering::AcqRel) {
        return false;
    }
    POWER_OFF_AFTER.store(then == Then::PowerOff, Ordering::Release);
    for vcpu in 0..vm.vcpus {
        interrupts::kick(vcpu);
    }
    true
}

/// Whether a pause is wanted (cheap; checked before every guest run).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The vCPU's complete state, read on its own CPU.
fn current_state(vm: &Vm, run: &VcpuRun, frame: &SwitchFrame) -> VcpuState {
    let mut state = VcpuState {
        registers: frame.guest,
        physical_timer: run.timer,
        ..VcpuState::default()
    };
    el1_state::save(&mut state.el1);
    state.el1.sp_el0 = frame.guest_sp_el0;
    el1_state::save_fp(&mut state.fp);
    if vm.vgic.is_some() {
        state.gic = gic::save_cpu_interface();
    }
    state.pmu = crate::vm::pmu::save(vm);
    state
}

/// Called by a vCPU's run loop between guest runs when [`requested`]: parks this
/// vCPU until the pause ends, or, for the first vCPU to arrive, coordinates the
/// pause and runs `job` once every vCPU has stopped.
pub fn checkpoint(vm: &Vm, run: &VcpuRun, frame: &SwitchFrame, job: impl FnOnce(&Paused)) {
    let me = run.index;
    let state = current_state(vm, run, frame);
    if COORDINATOR
        .compare_exchange(NOBODY, me, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        coordinate(vm, me, state, job);
        return;
    }
    // Read the release count before announcing ourselves, so that a release that
    // follows the announcement cannot be missed.
    let releases = RELEASES.load(Ordering::Acquire);
    *STATES[me].lock() = Some(state);
    PARKED[me].store(true, Ordering::Release);
    while RELEASES.load(Ordering::Acquire) == releases {
        cpu::wait_for_event();
    }
    PARKED[me].store(false, Ordering::Release);
    STATES[me].lock().take();
}

/// Waits for the other vCPUs, runs the job, releases them.
fn coordinate(vm: &Vm, me: usize, state: VcpuState, job: impl FnOnce(&Paused)) {
    let stopped = wait_for_others(vm, me);
    match stopped {
        Ok(()) => {
            let vcpus = (0..vm.vcpus)
                .map(|vcpu| {
                    if vcpu == me {
                        return (VcpuPower::On, state);
                    }
                    match *STATES[vcpu].lock() {
                        Some(parked) => (VcpuPower::On, parked),
                        None => (VcpuPower::Off, VcpuState::default()),
                    }
                })
                .collect();
            job(&Paused { vcpus });
        }
        Err(vcpu) => {
            println!("Aerie: snapshot failed: vCPU {vcpu} did not stop within 5 s");
        }
    }
    REQUESTED.store(false, Ordering::Release);
    COORDINATOR.store(NOBODY, Ordering::Release);
    RELEASES.fetch_add(1, Ordering::AcqRel);
    cpu::send_event();
}

/// Whether every vCPU but `me` is parked or off.
fn others_stopped(vm: &Vm, me: usize) -> Result<(), usize> {
    let psci = vm.psci.lock();
    for vcpu in (0..vm.vcpus).filter(|&v| v != me) {
        let off = psci.power(vcpu) == Some(vpsci::VcpuPower::Off);
        if !off && !PARKED[vcpu].load(Ordering::Acquire) {
            return Err(vcpu);
        }
    }
    Ok(())
}

/// Waits until every other vCPU is parked or off; on timeout, the first that is
/// not. Two passes in a row must agree: a vCPU that parked during the first pass
/// may have just started another one (PSCI CPU_ON), which the second pass sees as
/// no longer off.
fn wait_for_others(vm: &Vm, me: usize) -> Result<(), usize> {
    let deadline = uptime_micros() + STOP_TIMEOUT_MICROS;
    loop {
        let first = others_stopped(vm, me);
        if first.is_ok() && others_stopped(vm, me).is_ok() {
            return Ok(());
        }
        if uptime_micros() > deadline {
            return first.and_then(|()| others_stopped(vm, me));
        }
        cpu::relax();
    }
}
