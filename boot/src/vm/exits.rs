//! What Aerie does for each kind of guest exit.
//!
//! The syndrome is decoded once (`aerie_hyp::exit`) and each kind is answered here:
//! hypercalls go to the PSCI/SMCCC dispatcher, loads and stores to device addresses
//! to the MMIO bus, trapped system registers are emulated or refused with
//! UNDEFINED, anything touching an address the guest does not have gets a
//! synchronous external abort. No guest action can stop Aerie except the calls
//! that are meant to (SYSTEM_OFF, SYSTEM_RESET, Aerie's EXIT hypercall).

use super::Vm;
use super::interrupts;
use super::stats;
use super::vcpu::VcpuRun;
use crate::arch::el1_state;
use crate::arch::{cpu, hyp_config, stage2_ops};
use crate::stop;
use aerie_devices::mmio::AccessWidth;
use aerie_devices::vgic::Vgic;
use aerie_hyp::cpu_model::id_space_index;
use aerie_hyp::esr::FaultStatus;
use aerie_hyp::exit::{
    Exit, GuestDataAbort, MmioAccess, SysReg, SysRegAccess, TrapInfo, VectorKind, emulated_access,
};
use aerie_hyp::hypercall::DEBUG_WRITE_MAX;
use aerie_hyp::inject::{self, GuestState, Injection};
use aerie_hyp::mmio::{self, GuestRegisters};
use aerie_hyp::psci::PsciReturn;
use aerie_hyp::run::exit_reason::ExitReason;
use aerie_hyp::vcpu::VcpuRegisters;
use aerie_hyp::vpsci::{self, Action};
use core::sync::atomic::{AtomicU32, Ordering};

/// Bytes of an AArch64 instruction: how far the PC moves past an emulated one.
const INSTRUCTION_SIZE: u64 = 4;
/// How many reports of one kind of guest misbehaviour Aerie prints before it stays
/// quiet about it.
const REPORT_LIMIT: u32 = 5;

/// What the run loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Enter the guest again.
    Continue,
    /// The vCPU turned itself off (PSCI CPU_OFF).
    VcpuOff,
}

/// A rate-limited report of guest misbehaviour: printed the first few times.
struct Limited {
    count: AtomicU32,
    what: &'static str,
}

impl Limited {
    const fn new(what: &'static str) -> Self {
        Self {
            count: AtomicU32::new(0),
            what,
        }
    }

    fn report(&self, details: core::fmt::Arguments<'_>) {
        let seen = self.count.fetch_add(1, Ordering::Relaxed);
        if seen < REPORT_LIMIT {
            log::warn!("guest {}: {details}", self.what);
        } else if seen == REPORT_LIMIT {
            log::warn!("guest {}: further reports suppressed", self.what);
        }
    }
}

static UNMAPPED_ACCESS: Limited = Limited::new("access outside its memory and devices");
static UNEMULATED_ACCESS: Limited = Limited::new("device access Aerie cannot emulate");
static UNDEFINED_SYSREG: Limited = Limited::new("system register access refused");
static UNEXPECTED_TRAP: Limited = Limited::new("instruction refused");
static SERROR: Limited = Limited::new("SError");
static IGNORED_GIC_ACCESS: Limited = Limited::new("GIC register access ignored");

/// Handles one exit of vCPU `vcpu` through `vector`: decodes it once from `info`,
/// counts it, and answers it.
pub fn handle(
    vm: &'static Vm,
    vcpu: &mut VcpuRun,
    registers: &mut VcpuRegisters,
    vector: VectorKind,
    info: &TrapInfo,
) -> Flow {
    if vector == VectorKind::Synchronous {
        // Most exits of a running guest are device accesses: decoded and emulated
        // without building the full exit.
        if let Some((ipa, access)) = emulated_access(info) {
            if device_access(vm, vcpu, registers, ipa, &access) {
                stats::count(vcpu.index, ExitReason::Mmio);
                return Flow::Continue;
            }
        }
    }
    let exit = Exit::from_vector(vector, info);
    stats::count(vcpu.index, ExitReason::of(&exit));
    match &exit {
        Exit::Hvc { .. } => hypercall(vm, vcpu, registers),
        Exit::DataAbort(abort) => {
            data_abort(vm, vcpu, registers, abort, info);
            Flow::Continue
        }
        Exit::SystemRegister(access) => {
            system_register(vm, vcpu, registers, access);
            Flow::Continue
        }
        Exit::Irq | Exit::Fiq => {
            vm.host_interrupts.take_all(vm, vcpu);
            Flow::Continue
        }
        Exit::Smc { .. } => {
            // A trapped SMC returns to the SMC itself: step over it.
            registers.pc += INSTRUCTION_SIZE;
            hypercall(vm, vcpu, registers)
        }
        Exit::Wfi | Exit::Wfit { .. } | Exit::Wfet { .. } => {
            // WFIT/WFET may complete early (like any wait), so one idle period is
            // correct for them too, deadline or not.
            idle(vm, vcpu);
            registers.pc += INSTRUCTION_SIZE;
            Flow::Continue
        }
        Exit::Wfe => {
            registers.pc += INSTRUCTION_SIZE;
            Flow::Continue
        }
        Exit::SError { esr } => {
            SERROR.report(format_args!("ESR {esr:#x} at pc {:#x}", registers.pc));
            Flow::Continue
        }
        Exit::InstructionAbort { ipa, fault } => {
            if ipa.is_some_and(|ipa| was_remapped(vm, *fault, ipa)) {
                // A flash bank was mapped again while the fetch faulted: retry it.
                return Flow::Continue;
            }
            UNMAPPED_ACCESS.report(format_args!(
                "instruction fetch from {:#x} (guest physical {ipa:x?})",
                info.far
            ));
            inject(registers, |state| {
                inject::external_instruction_abort(state, info.far)
            });
            Flow::Continue
        }
        Exit::SetWayCacheOp { register, .. } => {
            hyp_config::clean_invalidate_by_set_way(registers.get(*register));
            registers.pc += INSTRUCTION_SIZE;
            Flow::Continue
        }
        other => {
            UNEXPECTED_TRAP.report(format_args!("{other:?} at pc {:#x}", registers.pc));
            inject(registers, inject::undefined_instruction);
            Flow::Continue
        }
    }
}

/// The IPA of a stage-2 Permission fault on the access itself (a write to a
/// read-only mapped flash bank of a firmware guest), for which HPFAR_EL2 is
/// UNKNOWN: FAR_EL2 as the guest's own stage 1 translates it, as KVM does. Off the
/// path of every other exit.
#[cold]
fn permission_fault_ipa(abort: &GuestDataAbort, info: &TrapInfo) -> Option<u64> {
    let on_the_access = matches!(abort.fault, FaultStatus::Permission { .. }) && !abort.s1ptw;
    on_the_access
        .then(|| stage2_ops::translate_guest_read(info.far))
        .flatten()
}

/// Whether a translation `fault` at `ipa` came while a firmware guest's flash bank
/// was unmapped (a command in progress, or the break of its remapping) and stage 2
/// maps `ipa` again now, so the guest's instruction can simply run again. (Other
/// faults, such as a write to a mapped bank, would only fault again.)
#[cold]
fn was_remapped(vm: &Vm, fault: FaultStatus, ipa: u64) -> bool {
    matches!(fault, FaultStatus::Translation { .. }) && vm.stage2.lock().translate(ipa).is_some()
}

/// Idles the CPU for a vCPU waiting for an interrupt. With a vGIC: returns at once
/// if one is deliverable, else sleeps (WFI) until a physical interrupt arrives (the
/// guest's timer, the console, a kick from another CPU) and takes it here, so the
/// vCPU re-enters with what it brought instead of exiting again at once. Without
/// one: one period of the EL2 event stream (about 65 µs).
fn idle(vm: &Vm, vcpu: &mut VcpuRun) {
    match &vm.vgic {
        Some(vgic) => {
            if vm.virtual_offset_wraps {
                // The guest may have re-armed its virtual timer since it last
                // exited, and only Aerie's EL2 timer fires it (see `interrupts`).
                interrupts::update_timers(vm, vcpu);
            }
            if vcpu.lines.any() {
                // The guest may have silenced or re-armed its virtual timer (or
                // cleared its PMU's overflow): if Aerie still held the physical
                // interrupt, it would never fire again.
                interrupts::update_hardware_lines(vm, vcpu);
            }
            if !vgic.lock().has_pending(vcpu.index) {
                cpu::wait_for_interrupt();
                vm.host_interrupts.take_all(vm, vcpu);
            }
        }
        None => cpu::wait_for_event(),
    }
}

/// Writes an injected exception into the guest's state.
fn inject(registers: &mut VcpuRegisters, make: impl FnOnce(&GuestState) -> Injection) {
    let (vbar_el1, sctlr_el1) = el1_state::vector_base_and_control();
    let state = GuestState {
        pc: registers.pc,
        pstate: registers.pstate,
        vbar_el1,
        sctlr_el1,
    };
    let injection = make(&state);
    el1_state::write_exception_registers(
        injection.elr_el1,
        injection.spsr_el1,
        injection.esr_el1,
        injection.far_el1,
    );
    registers.pc = injection.pc;
    registers.pstate = injection.pstate;
}

fn data_abort(
    vm: &Vm,
    vcpu: &mut VcpuRun,
    registers: &mut VcpuRegisters,
    abort: &GuestDataAbort,
    info: &TrapInfo,
) {
    let Some(ipa) = abort.ipa.or_else(|| permission_fault_ipa(abort, info)) else {
        UNMAPPED_ACCESS.report(format_args!("fault at {:#x} without an address", info.far));
        inject(registers, |state| {
            inject::external_data_abort(state, info.far, abort.is_write)
        });
        return;
    };
    if let Some(access) = &abort.access {
        if !abort.cache_maintenance && device_access(vm, vcpu, registers, ipa, access) {
            return;
        }
    }
    let on_bus = vm.bus.lock().contains(ipa);
    if on_bus && abort.cache_maintenance {
        // Cache maintenance by address on a device: nothing is cached, nothing to do.
        registers.pc += INSTRUCTION_SIZE;
        return;
    }
    match (&abort.access, on_bus) {
        (Some(access), true) if ipa & (access.width.bytes() - 1) != 0 => {
            unaligned_device_access(registers, ipa, access.width, abort.is_write, info.far);
        }
        (Some(_), true) => {
            // Aligned, but running past the end of the device's window.
            UNMAPPED_ACCESS.report(format_args!("{ipa:#x} (pc {:#x})", registers.pc));
            inject(registers, |s| {
                inject::external_data_abort(s, info.far, abort.is_write)
            });
        }
        (None, true) if was_remapped(vm, abort.fault, ipa) => {
            // A flash bank was mapped again while the access faulted: retry it.
        }
        (None, true) => {
            UNEMULATED_ACCESS.report(format_args!(
                "{ipa:#x} with an instruction that gives no syndrome (pc {:#x})",
                registers.pc
            ));
            inject(registers, |s| {
                inject::external_data_abort(s, info.far, abort.is_write)
            });
        }
        (_, false) => {
            UNMAPPED_ACCESS.report(format_args!("{ipa:#x} (pc {:#x})", registers.pc));
            inject(registers, |s| {
                inject::external_data_abort(s, info.far, abort.is_write)
            });
        }
    }
}

/// Emulates the guest's `access` at `ipa` if a device takes it: the vGIC's
/// registers, or an aligned access to a device on the bus (one lookup and one call,
/// which does all the device's work and applies its effects). False for anything
/// else (unaligned, no device there), which the caller refuses.
fn device_access(
    vm: &Vm,
    vcpu: &mut VcpuRun,
    registers: &mut VcpuRegisters,
    ipa: u64,
    access: &MmioAccess,
) -> bool {
    if let Some(window) = &vm.vgic_window {
        if let (true, Some(vgic)) = (window.contains(ipa), &vm.vgic) {
            vgic_access(vm, vgic, vcpu, registers, access, ipa - window.start());
            return true;
        }
    }
    if ipa & (access.width.bytes() - 1) != 0 {
        return false;
    }
    let Some(takes_input) = super::devices::emulate(vm, access, ipa, registers) else {
        return false;
    };
    registers.pc += INSTRUCTION_SIZE;
    if takes_input {
        super::console::refill(vm);
    }
    true
}

/// A guest access to the vGIC's registers, at `offset` in its window: emulated
/// under one lock; a write makes every vCPU plan its list registers anew, and
/// kicks those it affects elsewhere.
fn vgic_access(
    vm: &Vm,
    vgic: &crate::sync::Mutex<alloc::boxed::Box<dyn Vgic + Send>>,
    vcpu: &mut VcpuRun,
    registers: &mut VcpuRegisters,
    access: &MmioAccess,
    offset: u64,
) {
    // The guest may read the virtual timer's (or the PMU's) pending state: bring it
    // up to date.
    interrupts::update_hardware_lines(vm, vcpu);
    let (ignored, kicks) = {
        let mut vgic = vgic.lock();
        let ignored_before = vgic.stats().ignored_accesses;
        let mut device = VgicWindow {
            vgic: &mut **vgic,
            vcpu: vcpu.index,
        };
        let _ = mmio::emulate(access, offset, registers, &mut device);
        let stats = vgic.stats();
        let ignored = (stats.ignored_accesses != ignored_before)
            .then_some(stats.last_ignored)
            .flatten();
        // Only a write can make work for another vCPU.
        let kicks = access.is_write.then(|| vgic.take_kicks());
        (ignored, kicks)
    };
    registers.pc += INSTRUCTION_SIZE;
    if let Some(kicks) = kicks {
        // A write may change what any vCPU should see (an SGI to itself, an
        // interrupt set pending, enabled, made active, moved...).
        interrupts::vgic_changed(vm);
        interrupts::kick_others(vcpu.index, kicks);
    }
    if let Some(access) = ignored {
        IGNORED_GIC_ACCESS.report(format_args!("{access} (pc {:#x})", registers.pc));
    }
}

/// Answers an unaligned access to a device with an alignment fault: devices take
/// naturally aligned accesses only, as Device memory does. Kept out of line, off
/// the path of every emulated access.
#[cold]
#[inline(never)]
fn unaligned_device_access(
    registers: &mut VcpuRegisters,
    ipa: u64,
    width: AccessWidth,
    is_write: bool,
    far: u64,
) {
    UNEMULATED_ACCESS.report(format_args!(
        "{ipa:#x}: unaligned {}-byte access (pc {:#x})",
        width.bytes(),
        registers.pc
    ));
    inject(registers, |s| inject::alignment_fault(s, far, is_write));
}

/// The vGIC's register window as an MMIO target, addressed by offset, accessed by
/// vCPU `vcpu` (GICv2's banked registers depend on who asks).
struct VgicWindow<'v> {
    vgic: &'v mut (dyn Vgic + Send),
    vcpu: usize,
}

impl mmio::MmioTarget for VgicWindow<'_> {
    fn read(&mut self, offset: u64, width: AccessWidth) -> Option<u64> {
        Some(self.vgic.mmio_read(self.vcpu, offset, width))
    }

    fn write(&mut self, offset: u64, width: AccessWidth, value: u64) -> Option<()> {
        self.vgic.mmio_write(self.vcpu, offset, width, value);
        Some(())
    }
}

fn system_register(
    vm: &Vm,
    vcpu: &mut VcpuRun,
    registers: &mut VcpuRegisters,
    access: &SysRegAccess,
) {
    let counter = cpu::counter();
    let reg = access.reg();
    let value = registers.get(access.register);
    let handled = match reg {
        SysReg::CNTP_CTL_EL0 if access.is_read => Some(vcpu.timer.read_ctl(counter)),
        SysReg::CNTP_CTL_EL0 => {
            vcpu.timer.write_ctl(value);
            vcpu.timer_dirty = true;
            Some(0)
        }
        SysReg::CNTP_CVAL_EL0 if access.is_read => Some(vcpu.timer.cval),
        SysReg::CNTP_CVAL_EL0 => {
            vcpu.timer.cval = value;
            vcpu.timer_dirty = true;
            Some(0)
        }
        SysReg::CNTP_TVAL_EL0 if access.is_read => Some(vcpu.timer.read_tval(counter)),
        SysReg::CNTP_TVAL_EL0 => {
            vcpu.timer.write_tval(counter, value);
            vcpu.timer_dirty = true;
            Some(0)
        }
        reg if reg == SysReg::ACTLR_EL1 || reg.is_pmu() => Some(0),
        // A feature ID register (HCR_EL2.TID3): the guest's CPU model answers, and
        // unallocated encodings read as zero. These registers are read-only; a write
        // falls through to UNDEFINED, as the architecture has it.
        reg if access.is_read && id_space_index(reg).is_some() => vm.cpu.id.get(reg),
        SysReg::ICC_SGI1R_EL1 if !access.is_read => match &vm.vgic {
            Some(vgic) => {
                let targets = vgic.lock().send_sgi_from_register(vcpu.index, value);
                interrupts::vgic_changed(vm);
                if let Ok(targets) = targets {
                    for target in targets.iter() {
                        stats::injected(target, 1);
                        interrupts::kick(target);
                    }
                }
                Some(0)
            }
            None => None,
        },
        _ => None,
    };
    match handled {
        Some(result) => {
            if access.is_read {
                registers.set(access.register, result);
            }
            registers.pc += INSTRUCTION_SIZE;
        }
        None => {
            UNDEFINED_SYSREG.report(format_args!(
                "{} {reg} at pc {:#x}",
                if access.is_read {
                    "read of"
                } else {
                    "write to"
                },
                registers.pc
            ));
            inject(registers, inject::undefined_instruction);
        }
    }
}

/// A hypercall (HVC, or a trapped SMC): queries are answered in place, the rest
/// go to the dispatcher.
fn hypercall(vm: &'static Vm, vcpu: &mut VcpuRun, registers: &mut VcpuRegisters) -> Flow {
    let (first_four, _) = registers
        .x
        .split_first_chunk_mut::<4>()
        .expect("x has 31 registers");
    if vpsci::answer_query(first_four) {
        return Flow::Continue;
    }
    dispatch_hypercall(vm, vcpu, registers)
}

/// Every hypercall but the queries: power management, Aerie's own calls.
#[inline(never)]
fn dispatch_hypercall(vm: &'static Vm, vcpu: &mut VcpuRun, registers: &mut VcpuRegisters) -> Flow {
    let args = [
        registers.x[0],
        registers.x[1],
        registers.x[2],
        registers.x[3],
    ];
    // Most calls (versions, features, Aerie's own) need no shared state.
    let action = match vpsci::answer_without_state(args, vm.ram.guest) {
        Some(action) => action,
        None => vm.psci.lock().handle_power(vcpu.index, args, vm.ram.guest),
    };
    let mut answer = |values: [u64; 4]| registers.x[..4].copy_from_slice(&values);
    match action {
        Action::Return(values) => answer(values),
        Action::StartVcpu {
            target,
            entry,
            context_id,
        } => {
            let start = move || {
                let state = aerie_hyp::vcpu::VcpuState::at_power_on(entry, context_id);
                super::run_vcpu(vm, target, state);
            };
            if crate::smp::run_on_host_of(target, start) {
                answer([0; 4]);
            } else {
                vm.psci.lock().mark_off(target);
                answer([PsciReturn::InternalFailure.to_register(), 0, 0, 0]);
            }
        }
        Action::StopCaller => {
            if vm.psci.lock().all_off() {
                vcpu.flush_debug_output();
                println!("Aerie: every guest vCPU is off; powering off");
                stop::power_off();
            }
            return Flow::VcpuOff;
        }
        Action::Suspend => {
            idle(vm, vcpu);
            answer([0; 4]);
        }
        Action::SystemOff => {
            vcpu.flush_debug_output();
            println!("Aerie: guest powered off");
            stop::power_off();
        }
        Action::SystemReset => {
            vcpu.flush_debug_output();
            println!("Aerie: guest requested a system reset");
            stop::reset();
        }
        Action::Exit { status } => {
            vcpu.flush_debug_output();
            println!("Aerie: guest exited with status {status}");
            stop::exit_with_status(status);
        }
        Action::DebugWrite { address, length } => {
            let length = length.min(DEBUG_WRITE_MAX) as usize;
            let mut buffer = [0u8; DEBUG_WRITE_MAX as usize];
            match vm.ram.read(address, &mut buffer[..length]) {
                Some(()) => {
                    vcpu.debug_output(&buffer[..length]);
                    answer([length as u64, 0, 0, 0]);
                }
                None => answer([PsciReturn::InvalidParameters.to_register(), 0, 0, 0]),
            }
        }
    }
    Flow::Continue
}
