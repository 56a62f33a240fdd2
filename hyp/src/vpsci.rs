//! PSCI 1.1, SMCCC 1.1 and Aerie's hypercalls as the guest sees them.
//!
//! A guest's HVC (or trapped SMC) lands here as its `x0..x3`. [`PsciState::handle`]
//! decides the answer and keeps the vCPUs' power states; it never touches a vCPU or
//! the machine itself: it returns an [`Action`] that `boot/` carries out.
//!
//! Calling convention (SMCCC, DEN 0028, "SMC and HVC calling conventions"): the function ID is `w0`
//! (the upper half of `x0` is ignored); SMC32/HVC32 functions (bit 30 of the ID
//! clear) take 32-bit arguments in `w1..w3`, so the upper halves of `x1..x3` are
//! ignored too; results go in `x0..x3`. SMCCC 1.1 lets the callee change `x0..x3`
//! and requires `x4..x17` preserved, so every [`Action::Return`] holds all four
//! values and results a call does not define are 0 (nothing of Aerie's leaks).
//!
//! Implemented (PSCI 1.1, DEN 0022, chapter "PSCI functions"): `PSCI_VERSION` (1.1),
//! `CPU_SUSPEND` (as a standby state), `CPU_OFF`, `CPU_ON`, `AFFINITY_INFO` (level 0),
//! `MIGRATE_INFO_TYPE` (no trusted OS), `SYSTEM_OFF`, `SYSTEM_RESET`,
//! `PSCI_FEATURES`; SMCCC `SMCCC_VERSION` (1.1) and `SMCCC_ARCH_FEATURES`; and
//! Aerie's hypercalls ([`crate::hypercall`]). Every other function ID returns
//! `NOT_SUPPORTED` (-1).

use crate::hypercall;
use crate::memory::Range;
use crate::psci::{self, PsciReturn, PsciVersion};
use crate::vcpu::vcpu_index;
use alloc::vec;
use alloc::vec::Vec;

/// A vCPU's power state as PSCI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuPower {
    /// Off: never started, or stopped with `CPU_OFF`.
    Off,
    /// A `CPU_ON` for it succeeded but it has not started running yet.
    OnPending,
    /// Running (or idle in `CPU_SUSPEND` / WFI).
    On,
}

/// `AFFINITY_INFO` results (DEN 0022, `AFFINITY_INFO`).
mod affinity_info {
    /// The affinity instance is on.
    pub const ON: u64 = 0;
    /// The affinity instance is off.
    pub const OFF: u64 = 1;
    /// The affinity instance is transitioning to on.
    pub const ON_PENDING: u64 = 2;
}

impl VcpuPower {
    /// The value `AFFINITY_INFO` returns for this state.
    const fn affinity_info(self) -> u64 {
        match self {
            Self::On => affinity_info::ON,
            Self::Off => affinity_info::OFF,
            Self::OnPending => affinity_info::ON_PENDING,
        }
    }
}

/// What the caller of [`PsciState::handle`] must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Resume the calling vCPU with these values in `x0..x3` (write all four; the
    /// ones a call does not define are 0).
    Return([u64; 4]),
    /// Start vCPU `target` with `VcpuState::at_power_on(entry, context_id)`, call
    /// [`PsciState::mark_on`] once it runs, and resume the caller with `x0` =
    /// `SUCCESS` ([`Action::success`]). `target` is already marked
    /// [`VcpuPower::OnPending`].
    StartVcpu {
        /// Index of the vCPU to start.
        target: usize,
        /// Where it starts (a guest physical address inside guest RAM, 4-aligned).
        entry: u64,
        /// Its `x0`.
        context_id: u64,
    },
    /// `CPU_OFF` succeeded: the calling vCPU is off (already marked) and does not
    /// return. When [`PsciState::all_off`] holds, no vCPU is left to run.
    StopCaller,
    /// `CPU_SUSPEND`, served as a standby state: idle the caller as for WFI until an
    /// interrupt is pending for it, then resume it with `x0` = `SUCCESS`.
    Suspend,
    /// `SYSTEM_OFF`: stop the VM (on QEMU, exit with status 0).
    SystemOff,
    /// `SYSTEM_RESET`: restart the VM from its initial state.
    SystemReset,
    /// Aerie's `DEBUG_WRITE`: print the guest bytes `[address, address + length)`
    /// (checked to lie inside guest RAM, at most `DEBUG_WRITE_MAX` bytes), then
    /// resume the caller with `x0` = `length`.
    DebugWrite {
        /// Guest physical address of the first byte.
        address: u64,
        /// Number of bytes.
        length: u64,
    },
    /// Aerie's `EXIT`: stop the VM; on QEMU, exit with `status`.
    Exit {
        /// The guest's exit status.
        status: u8,
    },
}

impl Action {
    /// Resume the caller with a PSCI/SMCCC status code (sign-extended) in `x0`.
    pub const fn status(code: PsciReturn) -> Self {
        Self::value(code.to_register())
    }

    /// Resume the caller with `SUCCESS` (0) in `x0`.
    pub const fn success() -> Self {
        Self::status(PsciReturn::Success)
    }

    /// Resume the caller with `value` in `x0`.
    pub const fn value(value: u64) -> Self {
        Self::Return([value, 0, 0, 0])
    }
}

/// `MIGRATE_INFO_TYPE` result 2: a trusted OS is not present or does not require
/// migration (DEN 0022, `MIGRATE_INFO_TYPE`), so `MIGRATE` and `MIGRATE_INFO_UP_CPU` are not
/// implemented.
const MIGRATE_INFO_NO_TRUSTED_OS: u64 = 2;
/// `SMCCC_VERSION` result for SMCCC 1.1: major in bits \[30:16\], minor in \[15:0\].
const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// `PSCI_FEATURES` result for `CPU_SUSPEND`: bit 1 clear = the original power_state
/// format, bit 0 clear = OS-initiated mode not supported (DEN 0022, `PSCI_FEATURES`).
const CPU_SUSPEND_FEATURES: u64 = 0;
/// `PSCI_FEATURES` result for the other implemented functions (no feature flags).
const FEATURES_IMPLEMENTED: u64 = 0;
/// `SMCCC_ARCH_FEATURES` result for an implemented arch call.
const ARCH_FEATURE_IMPLEMENTED: u64 = 0;
/// The reserved bits of an original-format `power_state`: \[31:26\] and \[23:17\]
/// (DEN 0022, `CPU_SUSPEND`, original format; \[25:24\] is the power level, \[16\] the state type,
/// \[15:0\] the state ID).
const POWER_STATE_RESERVED: u32 = 0xfc00_0000 | 0x00fe_0000;
/// Instructions are 4 bytes: a `CPU_ON` entry point must be 4-aligned.
const INSTRUCTION_ALIGNMENT: u64 = 4;
/// The largest `EXIT` status.
const EXIT_STATUS_MAX: u64 = u8::MAX as u64;

/// The PSCI view of a VM: each vCPU's power state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsciState {
    power: Vec<VcpuPower>,
}

impl PsciState {
    /// `vcpus` vCPUs: vCPU 0 (the boot vCPU) on, the others off.
    pub fn new(vcpus: usize) -> Self {
        let mut power = vec![VcpuPower::Off; vcpus];
        if let Some(boot) = power.first_mut() {
            *boot = VcpuPower::On;
        }
        Self { power }
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.power.len()
    }

    /// The power state of vCPU `index`, or `None` if there is no such vCPU.
    pub fn power(&self, index: usize) -> Option<VcpuPower> {
        self.power.get(index).copied()
    }

    /// vCPU `index` really runs now (after [`Action::StartVcpu`]). No effect for an
    /// index that names no vCPU.
    pub fn mark_on(&mut self, index: usize) {
        if let Some(power) = self.power.get_mut(index) {
            *power = VcpuPower::On;
        }
    }

    /// vCPU `index` is off (for example after a failed start). No effect for an
    /// index that names no vCPU.
    pub fn mark_off(&mut self, index: usize) {
        if let Some(power) = self.power.get_mut(index) {
            *power = VcpuPower::Off;
        }
    }

    /// Whether every vCPU is off: the guest can no longer run.
    pub fn all_off(&self) -> bool {
        self.power.iter().all(|&p| p == VcpuPower::Off)
    }

    /// Handles an SMCCC call from vCPU `caller` with `args` = its `x0..x3`.
    /// `guest_ram` is where `CPU_ON` entry points and `DEBUG_WRITE` buffers must
    /// lie. Never panics, whatever the arguments.
    pub fn handle(&mut self, caller: usize, args: [u64; 4], guest_ram: Range) -> Action {
        answer_without_state(args, guest_ram)
            .unwrap_or_else(|| self.handle_power(caller, args, guest_ram))
    }

    /// The calls [`answer_without_state`] leaves: those on the vCPUs' power state
    /// (`CPU_ON`, `CPU_OFF`, `AFFINITY_INFO`), and NOT_SUPPORTED for anything else.
    /// For a hypervisor that tried [`answer_without_state`] first, outside the lock.
    pub fn handle_power(&mut self, caller: usize, args: [u64; 4], guest_ram: Range) -> Action {
        let function = psci::function_id(args[0]);
        // SMC32 functions take 32-bit arguments: the upper halves are ignored.
        let argument = |n: usize| {
            if psci::is_smc64(function) {
                args[n]
            } else {
                u64::from(args[n] as u32)
            }
        };
        match function {
            psci::CPU_OFF => {
                self.mark_off(caller);
                Action::StopCaller
            }
            psci::CPU_ON_32 | psci::CPU_ON_64 => {
                self.cpu_on(argument(1), argument(2), argument(3), guest_ram)
            }
            psci::AFFINITY_INFO_32 | psci::AFFINITY_INFO_64 => {
                self.affinity_info(argument(1), args[2] as u32)
            }
            _ => Action::status(PsciReturn::NotSupported),
        }
    }

    /// `CPU_ON(target_cpu, entry_point_address, context_id)` (DEN 0022).
    fn cpu_on(&mut self, target: u64, entry: u64, context_id: u64, guest_ram: Range) -> Action {
        let Some(index) = vcpu_index(target, self.vcpus()) else {
            return Action::status(PsciReturn::InvalidParameters);
        };
        match self.power[index] {
            VcpuPower::On => return Action::status(PsciReturn::AlreadyOn),
            VcpuPower::OnPending => return Action::status(PsciReturn::OnPending),
            VcpuPower::Off => {}
        }
        if entry % INSTRUCTION_ALIGNMENT != 0 || !guest_ram.contains(entry) {
            return Action::status(PsciReturn::InvalidAddress);
        }
        self.power[index] = VcpuPower::OnPending;
        Action::StartVcpu {
            target: index,
            entry,
            context_id,
        }
    }

    /// `AFFINITY_INFO(target_affinity, lowest_affinity_level)` (DEN 0022). Aerie's
    /// vCPUs form no clusters it would report on, so only level 0 is supported
    /// (PSCI 1.0 and later allow refusing the others).
    fn affinity_info(&self, target: u64, lowest_level: u32) -> Action {
        if lowest_level != 0 {
            return Action::status(PsciReturn::InvalidParameters);
        }
        match vcpu_index(target, self.vcpus()) {
            Some(index) => Action::value(self.power[index].affinity_info()),
            None => Action::status(PsciReturn::InvalidParameters),
        }
    }
}

/// `CPU_SUSPEND(power_state, entry_point_address, context_id)` (DEN 0022). Every
/// valid request, standby or power-down, is served as a standby state: the vCPU
/// idles and returns `SUCCESS` with its context intact, which PSCI allows (the
/// implementation may enter a shallower state than requested); the entry point is
/// therefore never used. Reserved bits set in `power_state` are
/// `INVALID_PARAMETERS`.
/// Answers, in place, the calls that only return values and need no state (the
/// PSCI and SMCCC versions and features, Aerie's UID and revision): `x` holds the
/// caller's `x0..x3` and gets the answer. Returns `false`, leaving `x` alone, for
/// any other call. This is the path of most hypercalls a guest makes, kept free of
/// copies and locks.
pub fn answer_query(x: &mut [u64; 4]) -> bool {
    let answer = match psci::function_id(x[0]) {
        psci::PSCI_VERSION => [PsciVersion::V1_1.to_register(), 0, 0, 0],
        psci::SMCCC_VERSION => [SMCCC_VERSION_1_1, 0, 0, 0],
        hypercall::REVISION => [hypercall::REVISION_MAJOR, hypercall::REVISION_MINOR, 0, 0],
        _ => return false,
    };
    *x = answer;
    true
}

/// Answers the calls that need no vCPU power state (versions, features, queries,
/// suspend, system off and reset, Aerie's own calls), or `None` for those that do
/// (`CPU_ON`, `CPU_OFF`, `AFFINITY_INFO`, and unknown functions, which
/// [`PsciState::handle`] refuses). The hypervisor answers these without taking the
/// lock around the shared power state: they are most of the calls a guest makes.
pub fn answer_without_state(args: [u64; 4], guest_ram: Range) -> Option<Action> {
    Some(match psci::function_id(args[0]) {
        psci::PSCI_VERSION => Action::value(PsciVersion::V1_1.to_register()),
        psci::CPU_SUSPEND_32 | psci::CPU_SUSPEND_64 => cpu_suspend(args[1] as u32),
        psci::MIGRATE_INFO_TYPE => Action::value(MIGRATE_INFO_NO_TRUSTED_OS),
        psci::SYSTEM_OFF => Action::SystemOff,
        psci::SYSTEM_RESET => Action::SystemReset,
        psci::PSCI_FEATURES => psci_features(args[1] as u32),
        psci::SMCCC_VERSION => Action::value(SMCCC_VERSION_1_1),
        psci::SMCCC_ARCH_FEATURES => arch_features(args[1] as u32),
        hypercall::DEBUG_WRITE => debug_write(args[1], args[2], guest_ram),
        hypercall::EXIT => exit(args[1]),
        hypercall::CALL_UID => Action::Return(hypercall::UID.map(u64::from)),
        hypercall::REVISION => {
            Action::Return([hypercall::REVISION_MAJOR, hypercall::REVISION_MINOR, 0, 0])
        }
        _ => return None,
    })
}

fn cpu_suspend(power_state: u32) -> Action {
    if power_state & POWER_STATE_RESERVED != 0 {
        return Action::status(PsciReturn::InvalidParameters);
    }
    Action::Suspend
}

/// `PSCI_FEATURES(psci_func_id)` (DEN 0022): 0 (no flags) for every
/// implemented function, including `SMCCC_VERSION`, which is how callers discover
/// SMCCC 1.1 (SMCCC, `SMCCC_VERSION`); `NOT_SUPPORTED` otherwise.
fn psci_features(function: u32) -> Action {
    match function {
        psci::CPU_SUSPEND_32 | psci::CPU_SUSPEND_64 => Action::value(CPU_SUSPEND_FEATURES),
        psci::PSCI_VERSION
        | psci::CPU_OFF
        | psci::CPU_ON_32
        | psci::CPU_ON_64
        | psci::AFFINITY_INFO_32
        | psci::AFFINITY_INFO_64
        | psci::MIGRATE_INFO_TYPE
        | psci::SYSTEM_OFF
        | psci::SYSTEM_RESET
        | psci::PSCI_FEATURES
        | psci::SMCCC_VERSION => Action::value(FEATURES_IMPLEMENTED),
        _ => Action::status(PsciReturn::NotSupported),
    }
}

/// `SMCCC_ARCH_FEATURES(arch_func_id)` (SMCCC, DEN 0028): 0 for the implemented
/// arch calls (`SMCCC_VERSION`, `SMCCC_ARCH_FEATURES`), `NOT_SUPPORTED` for
/// everything else, including the Spectre workarounds.
///
/// Why `NOT_SUPPORTED` (-1) and not `NOT_REQUIRED` (-2, or 1 for "unaffected"): the
/// latter would promise the guest that its CPU is not affected or that the firmware
/// below keeps it safe, and Aerie can vouch for neither: it does not know whether
/// the host CPU is vulnerable, does not forward the workaround calls to EL3 and
/// does not apply the mitigations on the guest's behalf. `NOT_SUPPORTED` leaves the
/// guest to its own knowledge of the CPU (Linux then reports "vulnerable" unless it
/// knows the CPU model to be unaffected), which is the honest answer.
fn arch_features(function: u32) -> Action {
    match function {
        psci::SMCCC_VERSION | psci::SMCCC_ARCH_FEATURES => Action::value(ARCH_FEATURE_IMPLEMENTED),
        _ => Action::status(PsciReturn::NotSupported),
    }
}

/// Aerie's `DEBUG_WRITE(address, length)`: the buffer must lie wholly inside guest
/// RAM (checked without overflow) and be at most `DEBUG_WRITE_MAX` bytes; otherwise
/// `INVALID_PARAMETERS`.
fn debug_write(address: u64, length: u64, guest_ram: Range) -> Action {
    let inside = Range::from_start_size(address, length).is_some_and(|b| guest_ram.covers(&b));
    if length > hypercall::DEBUG_WRITE_MAX || !inside {
        return Action::status(PsciReturn::InvalidParameters);
    }
    Action::DebugWrite { address, length }
}

/// Aerie's `EXIT(status)`: statuses above 255 are refused with
/// `INVALID_PARAMETERS` rather than truncated, so that `EXIT(256)` cannot turn into
/// a successful exit 0; the guest keeps running and sees the error.
fn exit(status: u64) -> Action {
    if status > EXIT_STATUS_MAX {
        return Action::status(PsciReturn::InvalidParameters);
    }
    Action::Exit {
        status: status as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcpu::guest_mpidr;

    const NOT_SUPPORTED: u64 = u64::MAX; // -1
    const INVALID_PARAMETERS: u64 = -2i64 as u64;
    const ALREADY_ON: u64 = -4i64 as u64;
    const ON_PENDING: u64 = -5i64 as u64;
    const INVALID_ADDRESS: u64 = -9i64 as u64;
    const RAM_START: u64 = 0x4000_0000;
    const RAM_END: u64 = 0x8000_0000;

    fn ram() -> Range {
        Range::new(RAM_START, RAM_END).unwrap()
    }

    fn call(state: &mut PsciState, caller: usize, args: [u64; 4]) -> Action {
        state.handle(caller, args, ram())
    }

    fn x0(value: u64) -> Action {
        Action::Return([value, 0, 0, 0])
    }

    fn id(function: u32) -> u64 {
        u64::from(function)
    }

    #[test]
    fn queries_answered_in_place_match_the_full_dispatcher() {
        let ram = Range::from_start_size(0x4000_0000, 0x100_0000).unwrap();
        for function in [psci::PSCI_VERSION, psci::SMCCC_VERSION, hypercall::REVISION] {
            let mut x = [u64::from(function), 7, 8, 9];
            assert!(answer_query(&mut x), "{function:#x}");
            let full = PsciState::new(1).handle(0, [u64::from(function), 7, 8, 9], ram);
            assert_eq!(Action::Return(x), full, "{function:#x}");
        }
        let mut x = [u64::from(psci::CPU_ON_64), 1, 2, 3];
        assert!(!answer_query(&mut x));
        assert_eq!(x, [u64::from(psci::CPU_ON_64), 1, 2, 3], "left alone");
    }

    #[test]
    fn calls_answered_without_state_are_answered_the_same_with_it() {
        let ram = Range::from_start_size(0x4000_0000, 0x100_0000).unwrap();
        let stateful = [
            psci::CPU_ON_32,
            psci::CPU_ON_64,
            psci::CPU_OFF,
            psci::AFFINITY_INFO_32,
            psci::AFFINITY_INFO_64,
            0xC400_00FF,
        ];
        for function in stateful {
            let args = [u64::from(function), 1, 0x4000_0000, 0];
            assert_eq!(answer_without_state(args, ram), None, "{function:#x}");
        }
        let stateless = [
            psci::PSCI_VERSION,
            psci::MIGRATE_INFO_TYPE,
            psci::PSCI_FEATURES,
            psci::SMCCC_VERSION,
            psci::SMCCC_ARCH_FEATURES,
            hypercall::CALL_UID,
            hypercall::REVISION,
        ];
        for function in stateless {
            let args = [u64::from(function), u64::from(psci::CPU_ON_64), 0, 0];
            let quick = answer_without_state(args, ram);
            assert!(quick.is_some(), "{function:#x}");
            assert_eq!(quick, Some(PsciState::new(2).handle(0, args, ram)));
        }
    }

    #[test]
    fn boot_vcpu_starts_on_and_the_others_off() {
        let state = PsciState::new(3);
        assert_eq!(state.vcpus(), 3);
        assert_eq!(state.power(0), Some(VcpuPower::On));
        assert_eq!(state.power(1), Some(VcpuPower::Off));
        assert_eq!(state.power(2), Some(VcpuPower::Off));
        assert_eq!(state.power(3), None);
        assert!(!state.all_off());
        let mut empty = PsciState::new(0);
        assert!(empty.all_off());
        assert_eq!(
            call(&mut empty, 0, [id(psci::CPU_ON_64), 0, RAM_START, 0]),
            x0(INVALID_PARAMETERS)
        );
    }

    #[test]
    fn version_and_upper_half_of_x0() {
        let mut state = PsciState::new(1);
        // PSCI 1.1 = 0x0001_0001.
        assert_eq!(
            call(&mut state, 0, [id(psci::PSCI_VERSION), 0, 0, 0]),
            x0(0x1_0001)
        );
        // Only w0 is the function ID.
        assert_eq!(
            call(&mut state, 0, [0xffff_ffff_8400_0000, 1, 2, 3]),
            x0(0x1_0001)
        );
        // SMCCC 1.1 = 0x0001_0001 too (major [30:16], minor [15:0]).
        assert_eq!(
            call(&mut state, 0, [id(psci::SMCCC_VERSION), 0, 0, 0]),
            x0(0x1_0001)
        );
    }

    #[test]
    fn psci_features_lists_what_is_implemented() {
        let mut state = PsciState::new(1);
        let implemented = [
            psci::PSCI_VERSION,
            psci::CPU_SUSPEND_32,
            psci::CPU_SUSPEND_64,
            psci::CPU_OFF,
            psci::CPU_ON_32,
            psci::CPU_ON_64,
            psci::AFFINITY_INFO_32,
            psci::AFFINITY_INFO_64,
            psci::MIGRATE_INFO_TYPE,
            psci::SYSTEM_OFF,
            psci::SYSTEM_RESET,
            psci::PSCI_FEATURES,
            psci::SMCCC_VERSION,
        ];
        for function in implemented {
            assert_eq!(
                call(&mut state, 0, [id(psci::PSCI_FEATURES), id(function), 0, 0]),
                x0(0),
                "{function:#x}"
            );
        }
        let missing = [
            psci::MIGRATE_32,
            psci::MIGRATE_64,
            psci::MIGRATE_INFO_UP_CPU_32,
            psci::MIGRATE_INFO_UP_CPU_64,
            psci::CPU_FREEZE,
            psci::CPU_DEFAULT_SUSPEND_64,
            psci::NODE_HW_STATE_64,
            psci::SYSTEM_SUSPEND_64,
            psci::PSCI_SET_SUSPEND_MODE,
            psci::PSCI_STAT_COUNT_64,
            psci::SYSTEM_RESET2_64,
            psci::MEM_PROTECT,
            psci::SMCCC_ARCH_FEATURES,
            psci::SMCCC_ARCH_WORKAROUND_1,
            hypercall::DEBUG_WRITE,
            0xC400_0000,
            0,
            0xffff_ffff,
        ];
        for function in missing {
            assert_eq!(
                call(&mut state, 0, [id(psci::PSCI_FEATURES), id(function), 0, 0]),
                x0(NOT_SUPPORTED),
                "{function:#x}"
            );
        }
        // The queried ID is a uint32: the upper half of x1 is ignored.
        assert_eq!(
            call(
                &mut state,
                0,
                [id(psci::PSCI_FEATURES), 0xdead_0000_8400_0002, 0, 0]
            ),
            x0(0)
        );
    }

    #[test]
    fn cpu_on_starts_an_off_vcpu() {
        let mut state = PsciState::new(4);
        let action = call(
            &mut state,
            0,
            [id(psci::CPU_ON_64), 0x2, 0x4008_0000, 0x1234_5678_9abc],
        );
        assert_eq!(
            action,
            Action::StartVcpu {
                target: 2,
                entry: 0x4008_0000,
                context_id: 0x1234_5678_9abc
            }
        );
        assert_eq!(state.power(2), Some(VcpuPower::OnPending));
        // Again before it runs: ON_PENDING; once it runs: ALREADY_ON.
        let again = [id(psci::CPU_ON_64), 0x2, 0x4008_0000, 0];
        assert_eq!(call(&mut state, 0, again), x0(ON_PENDING));
        state.mark_on(2);
        assert_eq!(state.power(2), Some(VcpuPower::On));
        assert_eq!(call(&mut state, 0, again), x0(ALREADY_ON));
        // The caller itself is on.
        assert_eq!(
            call(&mut state, 0, [id(psci::CPU_ON_64), 0, 0x4008_0000, 0]),
            x0(ALREADY_ON)
        );
        // RES1 bit 31 of an MPIDR read back from MPIDR_EL1 does not matter.
        assert!(matches!(
            call(
                &mut state,
                0,
                [id(psci::CPU_ON_64), 0x8000_0003, RAM_START, 0]
            ),
            Action::StartVcpu { target: 3, .. }
        ));
    }

    #[test]
    fn cpu_on_refuses_unknown_targets_and_bad_entry_points() {
        let mut state = PsciState::new(2);
        for target in [2, 0x100, 0x10, 0x1_0000, 0x1_0000_0001, u64::MAX] {
            assert_eq!(
                call(&mut state, 0, [id(psci::CPU_ON_64), target, RAM_START, 0]),
                x0(INVALID_PARAMETERS),
                "{target:#x}"
            );
        }
        for entry in [
            RAM_START + 2,
            RAM_START + 1,
            RAM_START - 4,
            RAM_END,
            0,
            0x1_4000_0000,
            0xffff_ffff_ffff_fffc,
        ] {
            assert_eq!(
                call(&mut state, 0, [id(psci::CPU_ON_64), 1, entry, 0]),
                x0(INVALID_ADDRESS),
                "{entry:#x}"
            );
        }
        assert_eq!(state.power(1), Some(VcpuPower::Off));
        // The last instruction of RAM is a valid entry.
        assert!(matches!(
            call(&mut state, 0, [id(psci::CPU_ON_64), 1, RAM_END - 4, 0]),
            Action::StartVcpu { target: 1, .. }
        ));
    }

    #[test]
    fn smc32_calls_ignore_the_upper_halves() {
        let mut state = PsciState::new(2);
        let action = call(
            &mut state,
            0,
            [
                id(psci::CPU_ON_32),
                0xffff_ffff_0000_0001,
                0x1_4000_0000,
                0xffff_ffff_1234_5678,
            ],
        );
        assert_eq!(
            action,
            Action::StartVcpu {
                target: 1,
                entry: 0x4000_0000,
                context_id: 0x1234_5678
            }
        );
        assert_eq!(
            call(
                &mut state,
                0,
                [id(psci::AFFINITY_INFO_32), 0xffff_ffff_0000_0001, 0, 0]
            ),
            x0(2)
        );
        // The same target with SMC64 keeps the upper half: Aff3 = 0xff, no such vCPU.
        assert_eq!(
            call(
                &mut state,
                0,
                [id(psci::AFFINITY_INFO_64), 0xff_0000_0001, 0, 0]
            ),
            x0(INVALID_PARAMETERS)
        );
    }

    #[test]
    fn affinity_info_reports_power_states() {
        let mut state = PsciState::new(3);
        call(&mut state, 0, [id(psci::CPU_ON_64), 1, RAM_START, 0]);
        let info = |state: &mut PsciState, target, level| {
            call(state, 0, [id(psci::AFFINITY_INFO_64), target, level, 0])
        };
        // 0 = on, 1 = off, 2 = on pending.
        assert_eq!(info(&mut state, 0, 0), x0(0));
        assert_eq!(info(&mut state, 1, 0), x0(2));
        assert_eq!(info(&mut state, 2, 0), x0(1));
        // Only level 0; the level is a uint32.
        assert_eq!(info(&mut state, 0, 1), x0(INVALID_PARAMETERS));
        assert_eq!(info(&mut state, 0, 3), x0(INVALID_PARAMETERS));
        assert_eq!(info(&mut state, 0, 0xffff_ffff), x0(INVALID_PARAMETERS));
        assert_eq!(info(&mut state, 0, 0x1_0000_0000), x0(0));
        // Unknown targets.
        assert_eq!(info(&mut state, 3, 0), x0(INVALID_PARAMETERS));
        assert_eq!(info(&mut state, 0x100, 0), x0(INVALID_PARAMETERS));
    }

    #[test]
    fn cpu_off_stops_the_caller() {
        let mut state = PsciState::new(2);
        call(&mut state, 0, [id(psci::CPU_ON_64), 1, RAM_START, 0]);
        state.mark_on(1);
        assert_eq!(
            call(&mut state, 1, [id(psci::CPU_OFF), 0, 0, 0]),
            Action::StopCaller
        );
        assert_eq!(state.power(1), Some(VcpuPower::Off));
        assert_eq!(
            call(&mut state, 0, [id(psci::AFFINITY_INFO_64), 1, 0, 0]),
            x0(1)
        );
        // It can be started again.
        assert!(matches!(
            call(&mut state, 0, [id(psci::CPU_ON_64), 1, RAM_START, 7]),
            Action::StartVcpu {
                target: 1,
                context_id: 7,
                ..
            }
        ));
        state.mark_off(1);
        assert_eq!(
            call(&mut state, 0, [id(psci::CPU_OFF), 0, 0, 0]),
            Action::StopCaller
        );
        assert!(state.all_off());
        // A caller index that names no vCPU changes nothing and does not panic.
        assert_eq!(
            call(&mut state, 9, [id(psci::CPU_OFF), 0, 0, 0]),
            Action::StopCaller
        );
        state.mark_on(9);
        state.mark_off(9);
        assert_eq!(state.vcpus(), 2);
    }

    #[test]
    fn cpu_suspend_is_a_standby_state() {
        let mut state = PsciState::new(1);
        // Standby, power-down (bit 16) and a higher power level (bits 25:24).
        for power_state in [0, 0x1_0000, 0x0100_0000, 0x0301_ffff] {
            for function in [psci::CPU_SUSPEND_32, psci::CPU_SUSPEND_64] {
                assert_eq!(
                    call(&mut state, 0, [id(function), power_state, RAM_START, 0]),
                    Action::Suspend
                );
            }
        }
        // power_state is a uint32: the upper half of x1 is ignored even for SMC64.
        assert_eq!(
            call(
                &mut state,
                0,
                [id(psci::CPU_SUSPEND_64), 0xffff_0000_0000_0000, 0, 0]
            ),
            Action::Suspend
        );
        // Reserved bits [31:26] and [23:17].
        for power_state in [1 << 31, 1 << 26, 1 << 23, 1 << 17] {
            assert_eq!(
                call(&mut state, 0, [id(psci::CPU_SUSPEND_64), power_state, 0, 0]),
                x0(INVALID_PARAMETERS)
            );
        }
    }

    #[test]
    fn system_calls() {
        let mut state = PsciState::new(1);
        assert_eq!(
            call(&mut state, 0, [id(psci::SYSTEM_OFF), 0, 0, 0]),
            Action::SystemOff
        );
        assert_eq!(
            call(&mut state, 0, [id(psci::SYSTEM_RESET), 0, 0, 0]),
            Action::SystemReset
        );
        assert_eq!(
            call(&mut state, 0, [id(psci::MIGRATE_INFO_TYPE), 0, 0, 0]),
            x0(2)
        );
        for function in [
            psci::MIGRATE_64,
            psci::MIGRATE_INFO_UP_CPU_64,
            psci::SYSTEM_RESET2_64,
        ] {
            assert_eq!(
                call(&mut state, 0, [id(function), 0, 0, 0]),
                x0(NOT_SUPPORTED)
            );
        }
    }

    #[test]
    fn smccc_arch_features() {
        let mut state = PsciState::new(1);
        let features = |state: &mut PsciState, function: u64| {
            call(state, 0, [id(psci::SMCCC_ARCH_FEATURES), function, 0, 0])
        };
        assert_eq!(features(&mut state, id(psci::SMCCC_ARCH_FEATURES)), x0(0));
        assert_eq!(features(&mut state, id(psci::SMCCC_VERSION)), x0(0));
        for function in [
            psci::SMCCC_ARCH_WORKAROUND_1,
            psci::SMCCC_ARCH_WORKAROUND_2,
            psci::SMCCC_ARCH_WORKAROUND_3,
            psci::SMCCC_ARCH_SOC_ID,
            psci::PSCI_VERSION,
            0xdead_beef,
        ] {
            assert_eq!(features(&mut state, id(function)), x0(NOT_SUPPORTED));
        }
        assert_eq!(
            features(&mut state, 0xffff_ffff_8000_0001),
            x0(0),
            "the queried ID is a uint32"
        );
        // The workarounds themselves are not implemented either.
        assert_eq!(
            call(&mut state, 0, [id(psci::SMCCC_ARCH_WORKAROUND_1), 0, 0, 0]),
            x0(NOT_SUPPORTED)
        );
    }

    #[test]
    fn debug_write_checks_the_buffer() {
        let mut state = PsciState::new(1);
        let write = |state: &mut PsciState, address, length| {
            call(state, 0, [id(hypercall::DEBUG_WRITE), address, length, 0])
        };
        assert_eq!(
            write(&mut state, RAM_START + 0x100, 12),
            Action::DebugWrite {
                address: RAM_START + 0x100,
                length: 12
            }
        );
        // Exactly DEBUG_WRITE_MAX (256) bytes ending at the end of RAM.
        assert_eq!(
            write(&mut state, RAM_END - 256, 256),
            Action::DebugWrite {
                address: RAM_END - 256,
                length: 256
            }
        );
        for (address, length) in [
            (RAM_START, 257),
            (RAM_START, u64::MAX),
            (RAM_END - 4, 8),
            (RAM_END, 1),
            (RAM_START - 1, 2),
            (0, 16),
            (u64::MAX - 3, 8),
            (u64::MAX, 1),
        ] {
            assert_eq!(
                write(&mut state, address, length),
                x0(INVALID_PARAMETERS),
                "{address:#x}+{length}"
            );
        }
    }

    #[test]
    fn exit_status_is_0_to_255() {
        let mut state = PsciState::new(1);
        for status in [0u8, 1, 255] {
            assert_eq!(
                call(
                    &mut state,
                    0,
                    [id(hypercall::EXIT), u64::from(status), 0, 0]
                ),
                Action::Exit { status }
            );
        }
        for status in [256, 0x1_0000_0000, u64::MAX] {
            assert_eq!(
                call(&mut state, 0, [id(hypercall::EXIT), status, 0, 0]),
                x0(INVALID_PARAMETERS)
            );
        }
    }

    #[test]
    fn uid_and_revision() {
        let mut state = PsciState::new(1);
        assert_eq!(
            call(&mut state, 0, [id(hypercall::CALL_UID), 0, 0, 0]),
            Action::Return([0xa3e1_e5c0, 0x7d1b_4b8e, 0x9f3a_52e1, 0xa9e0_c0de])
        );
        assert_eq!(
            call(&mut state, 0, [id(hypercall::REVISION), 0, 0, 0]),
            Action::Return([1, 0, 0, 0])
        );
    }

    #[test]
    fn unknown_function_ids_are_not_supported() {
        let mut state = PsciState::new(2);
        let before = state.clone();
        for function in [
            0u64,
            0xffff_ffff,
            0x8400_00ff,
            0xC400_0000, // PSCI_VERSION has no SMC64 form
            0xC400_0002, // nor CPU_OFF
            0x0400_0003, // CPU_ON as a yielding call
            0x8600_0001, // DEBUG_WRITE as SMC32
            0xC600_0003, // unallocated Aerie hypercall
            0xC600_FF02,
            0x8000_0002, // SMCCC_ARCH_SOC_ID (SMCCC 1.2)
            0x8001_0000, // SMCCC_VERSION with the SVE hint bit
            0xC500_0000, // standard hypervisor services
            0xBF00_0000, // trusted OS calls
        ] {
            for args in [[1, 1, 1], [u64::MAX; 3], [0x4000_0000, 0x4000_0000, 0]] {
                assert_eq!(
                    call(&mut state, 1, [function, args[0], args[1], args[2]]),
                    x0(NOT_SUPPORTED),
                    "{function:#x}"
                );
            }
        }
        assert_eq!(state, before);
    }

    #[test]
    fn garbage_never_panics_and_keeps_states_consistent() {
        // A small linear congruential generator: reproducible pseudo-random calls.
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed
        };
        let functions = [
            psci::CPU_ON_64,
            psci::CPU_ON_32,
            psci::CPU_OFF,
            psci::AFFINITY_INFO_64,
            psci::CPU_SUSPEND_64,
            psci::PSCI_FEATURES,
            hypercall::DEBUG_WRITE,
            hypercall::EXIT,
        ];
        let vcpus = 5;
        let mut state = PsciState::new(vcpus);
        for _ in 0..20_000 {
            let r = next();
            let function = if r % 4 == 0 {
                next()
            } else {
                id(functions[(r >> 8) as usize % functions.len()])
            };
            let target = if r % 3 == 0 {
                guest_mpidr((r >> 16) as usize % 8)
            } else {
                next()
            };
            let entry = if r % 5 == 0 {
                RAM_START + (next() % 0x1000)
            } else {
                next()
            };
            let caller = (r >> 32) as usize % vcpus;
            match call(&mut state, caller, [function, target, entry, next()]) {
                Action::StartVcpu { target, entry, .. } => {
                    assert_eq!(state.power(target), Some(VcpuPower::OnPending));
                    assert!(ram().contains(entry) && entry % 4 == 0);
                    if r % 2 == 0 {
                        state.mark_on(target);
                    }
                }
                Action::DebugWrite { address, length } => {
                    assert!(length <= hypercall::DEBUG_WRITE_MAX);
                    assert!(address >= RAM_START && address + length <= RAM_END);
                }
                _ => {}
            }
            assert_eq!(state.vcpus(), vcpus);
        }
    }
}
