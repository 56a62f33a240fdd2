//! Fuzz target of the guest's firmware calls: PSCI, SMCCC and Aerie's hypercalls,
//! with any arguments, from any vCPU, in any order.

use crate::hypercall;
use crate::memory::Range;
use crate::vpsci::{Action, PsciState, VcpuPower};
use aerie_devices::fuzz::Input;

/// The most calls one input makes.
const MAX_CALLS: usize = 2000;

/// Function IDs worth calling often: PSCI 0.2+ (SMC32 and SMC64), SMCCC's
/// architecture calls, Aerie's hypercalls and their neighbours.
fn function(input: &mut Input) -> u64 {
    let low = u64::from(input.u8() % 0x20);
    let id = match input.choose(8) {
        0 => 0x8400_0000 | low,
        1 => 0xC400_0000 | low,
        2 => [0x8000_0000, 0x8000_0001, 0x8000_7FFF, 0x8000_8000][input.choose(4) as usize],
        3 => [
            hypercall::DEBUG_WRITE,
            hypercall::EXIT,
            hypercall::CALL_UID,
            hypercall::REVISION,
        ][input.choose(4) as usize]
            .into(),
        4 => 0xC600_0000 | u64::from(input.u16()),
        5 => u64::from(input.u32()),
        _ => input.u64(),
    };
    // The upper half of x0 is ignored; make it non-zero now and then.
    if input.choose(4) == 0 {
        id | u64::from(input.u32()) << 32
    } else {
        id
    }
}

/// An argument: an MPIDR or vCPU-ish number, an address in or around guest RAM,
/// or anything.
fn argument(input: &mut Input, ram: Range) -> u64 {
    match input.choose(6) {
        0 => u64::from(input.u8() % 8) | u64::from(input.u8() % 2) << 8,
        1 => ram.start().wrapping_add(input.below(ram.size() + 0x2000)),
        2 => ram.end().wrapping_sub(input.below(0x400)),
        3 => u64::from(input.u16()),
        _ => input.u64(),
    }
}

/// Firmware calls from random vCPUs of a VM with 1 to 8 vCPUs, whose RAM sits at
/// QEMU `virt`'s base or at the top of the address space, mixed with the run loop's
/// `mark_on` and `mark_off`.
///
/// Checks that nothing panics, and each action the caller would carry out: a vCPU
/// to start exists, is not the caller (when the caller runs) and is now pending, with a 4-aligned entry
/// point in guest RAM; a debug write lies in guest RAM and within the limit; a
/// caller that stops is off (a caller index naming no vCPU, which only a bug in
/// the run loop could pass, changes nothing); and no vCPU outside the VM ever has a power state.
pub fn psci_calls(data: &[u8]) {
    let mut input = Input::new(data);
    let vcpus = 1 + input.choose(8) as usize;
    let size = (1 + input.below(0x4000)) << 12;
    let base = match input.choose(4) {
        0 => (u64::MAX - size) & !0xFFF,
        _ => 0x4000_0000,
    };
    let ram = Range::from_start_size(base, size).expect("RAM fits the address space");
    let mut psci = PsciState::new(vcpus);
    let mut calls = 0;
    while !input.is_empty() && calls < MAX_CALLS {
        calls += 1;
        let caller = match input.choose(16) {
            0 => input.u64() as usize,
            _ => input.choose(vcpus as u32 + 1) as usize,
        };
        match input.choose(8) {
            0 => psci.mark_on(caller),
            1 => psci.mark_off(caller),
            _ => {
                let args = [
                    function(&mut input),
                    argument(&mut input, ram),
                    argument(&mut input, ram),
                    argument(&mut input, ram),
                ];
                let caller_on = psci.power(caller) == Some(VcpuPower::On);
                match psci.handle(caller, args, ram) {
                    Action::StartVcpu { target, entry, .. } => {
                        assert!(target < vcpus, "{args:x?}");
                        assert!(target != caller || !caller_on, "{args:x?}");
                        assert_eq!(psci.power(target), Some(VcpuPower::OnPending));
                        assert!(ram.contains(entry) && entry % 4 == 0, "{entry:#x}");
                    }
                    Action::DebugWrite { address, length } => {
                        assert!(length <= hypercall::DEBUG_WRITE_MAX);
                        let buffer = Range::from_start_size(address, length);
                        assert!(buffer.is_some_and(|b| ram.covers(&b)), "{args:x?}");
                    }
                    Action::StopCaller if caller < vcpus => {
                        assert_eq!(psci.power(caller), Some(VcpuPower::Off));
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(psci.vcpus(), vcpus);
        assert_eq!(psci.power(vcpus), None);
    }
}
