//! Secondary CPUs: starting them, and keeping them parked, ready for work.
//!
//! CPUs start through PSCI `CPU_ON` (QEMU virt, Raspberry Pi 5) or a spin table
//! (Raspberry Pi 4), one at a time. Each secondary gets the two guarded stacks
//! reserved for it at boot (`crate::stacks`), with its [`SecondaryBoot`] block at
//! the bottom of its Aerie stack (far from the top, where the stack starts). Once in
//! Rust, it sets up its GIC CPU interface, marks itself online and waits in `WFI`
//! for a job in its mailbox, woken by the kick SGI that comes with every job (not in
//! `WFE`: QEMU's TCG runs `WFE` as a no-op, so a CPU parked there would spin a host
//! core for as long as it waits):
//! [`Job::Ping`] proves the CPU runs Aerie's code with the MMU on; [`Job::RunVcpu`]
//! runs the closure a VM posted with [`run_on_host_of`] (the VM's code, not this
//! module's: nothing here knows about VMs).

use crate::arch::cache;
use crate::arch::cpu;
use crate::arch::entry::{AERIE_SPIN_TABLE_BOOT, SecondaryBoot, secondary_entry, spin_table_entry};
use crate::arch::mmu::MmuSettings;
use crate::drivers::gic;
use crate::psci;
use aerie_hyp::platform::{EnableMethod, MAX_CPUS, Platform};
use aerie_hyp::summary::CpuFailure;
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// How long a CPU may take to come online or answer a ping.
const START_TIMEOUT_MICROS: u64 = 2_000_000;

/// Work a parked CPU can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Job {
    /// Nothing to do.
    None = 0,
    /// Answer by incrementing [`PING_ANSWERS`].
    Ping = 1,
    /// Run the vCPU described in this CPU's [`START_REQUESTS`] slot.
    RunVcpu = 2,
    /// Run the self-test in [`SELF_TEST`] (it never returns).
    SelfTest = 3,
}

/// The self-test a CPU was asked to run (see [`run_self_test_on`]).
static SELF_TEST: spin::Once<fn() -> !> = spin::Once::new();

/// Work for a parked CPU: run a vCPU (the VM hands over a closure, so this module
/// knows nothing of VMs).
type VcpuJob = alloc::boxed::Box<dyn FnOnce() + Send>;

/// One start request slot per CPU.
static START_REQUESTS: [crate::sync::Mutex<Option<VcpuJob>>; MAX_CPUS] =
    [const { crate::sync::Mutex::new(None) }; MAX_CPUS];
/// The MPIDR of each CPU, by index in the platform's CPU list.
static HOST_MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Which CPU (index in the platform's CPU list) hosts each vCPU; `usize::MAX` for none.
static VCPU_HOST: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];

/// Which CPUs (by index in the platform's CPU list) run Aerie.
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// One mailbox per CPU, holding a [`Job`].
static MAILBOX: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(Job::None as u8) }; MAX_CPUS];
/// Pings answered.
static PING_ANSWERS: AtomicUsize = AtomicUsize::new(0);
/// The most interrupts a parked CPU takes each time it wakes (see
/// `gic::discard_pending`) before it looks at its mailbox again.
const DISCARDED_PER_WAKE: usize = 4;

/// Starts every CPU but the boot CPU. Returns the ones that failed, with reasons.
pub fn start_secondaries(
    platform: &Platform<'_>,
    mmu: &MmuSettings,
    vbar: u64,
) -> ArrayVec<CpuFailure<'static>, MAX_CPUS> {
    let boot_mpidr = cpu::mpidr();
    let mut failures = ArrayVec::new();
    for (index, cpu) in platform.cpus.iter().enumerate() {
        if cpu.mpidr == boot_mpidr {
            ONLINE[index].store(true, Ordering::Release);
            continue;
        }
        if let Err(reason) = start_one(platform, index, cpu.mpidr, cpu.enable_method, mmu, vbar) {
            failures.push(CpuFailure {
                mpidr: cpu.mpidr,
                reason,
            });
        }
    }
    failures
}

fn start_one(
    platform: &Platform<'_>,
    index: usize,
    mpidr: u64,
    method: EnableMethod<'_>,
    mmu: &MmuSettings,
    vbar: u64,
) -> Result<(), &'static str> {
    if let EnableMethod::None | EnableMethod::Unsupported(_) = method {
        return Err("no enable-method Aerie supports (psci or spin-table)");
    }
    let (exception_stack, stack) =
        crate::stacks::of_cpu(index).ok_or("no memory for its stacks")?;
    let boot = SecondaryBoot {
        stack_top: stack.top(),
        exception_stack_top: exception_stack.top(),
        ttbr0: mmu.ttbr0,
        tcr: mmu.tcr,
        mair: mmu.mair,
        sctlr: mmu.sctlr,
        vbar,
        cpu_index: index as u64,
    };
    let block = stack.stack.start() as *mut SecondaryBoot;
    // SAFETY: the stack was reserved at boot for this CPU alone, which is not
    // running yet; it is identity-mapped and far larger than the block, which sits
    // at its bottom, below the stack's reach.
    unsafe { block.write(boot) };
    cache::clean_to_poc(block as usize, core::mem::size_of::<SecondaryBoot>());
    match method {
        EnableMethod::Psci => {
            let psci = platform
                .psci
                .ok_or("enable-method is psci but there is no /psci node")?;
            let entry = secondary_entry as unsafe extern "C" fn() as usize as u64;
            psci::cpu_on(psci.conduit, mpidr, entry, block as u64).map_err(|e| e.name())?;
        }
        EnableMethod::SpinTable { release_address } => {
            release_via_spin_table(platform, release_address, block as u64)?;
        }
        EnableMethod::None | EnableMethod::Unsupported(_) => unreachable!("checked above"),
    }
    let deadline = crate::logger::uptime_micros() + START_TIMEOUT_MICROS;
    while !ONLINE[index].load(Ordering::Acquire) {
        if crate::logger::uptime_micros() > deadline {
            return Err("released, but it never reached Aerie's code");
        }
        cpu::relax();
    }
    Ok(())
}

/// Starts a CPU parked in a spin table: publishes its boot block, then writes
/// Aerie's spin-table entry point to the CPU's release address and wakes it.
fn release_via_spin_table(
    platform: &Platform<'_>,
    release_address: u64,
    block: u64,
) -> Result<(), &'static str> {
    let slot = aerie_hyp::memory::Range::from_start_size(release_address, 8)
        .filter(|slot| {
            release_address % 8 == 0 && platform.memory.iter().any(|bank| bank.covers(slot))
        })
        .ok_or("its cpu-release-addr is not an aligned address in RAM")?;
    AERIE_SPIN_TABLE_BOOT.store(block, Ordering::Release);
    cache::clean_to_poc(AERIE_SPIN_TABLE_BOOT.as_ptr() as usize, 8);
    let entry = spin_table_entry as unsafe extern "C" fn() as usize as u64;
    // SAFETY: the release address is an aligned word in RAM (checked above), which
    // Aerie identity-maps; the device tree reserves it for exactly this hand-off,
    // and the CPU polling it reads it with its caches off, hence the clean.
    unsafe { core::ptr::write_volatile(slot.start() as *mut u64, entry) };
    cache::clean_to_poc(slot.start() as usize, 8);
    cpu::send_event();
    Ok(())
}

/// Sends a ping to every online secondary and waits for the answers. Returns how
/// many CPUs answered, the boot CPU included.
pub fn ping_all(platform: &Platform<'_>) -> usize {
    let boot_mpidr = cpu::mpidr();
    let mut expected = 0;
    for (index, cpu) in platform.cpus.iter().enumerate() {
        if cpu.mpidr != boot_mpidr && ONLINE[index].load(Ordering::Acquire) {
            post(index, cpu.mpidr, Job::Ping);
            expected += 1;
        }
    }
    let deadline = crate::logger::uptime_micros() + START_TIMEOUT_MICROS;
    while PING_ANSWERS.load(Ordering::Acquire) < expected {
        if crate::logger::uptime_micros() > deadline {
            break;
        }
        cpu::relax();
    }
    1 + PING_ANSWERS.load(Ordering::Acquire)
}

/// Gives each of `vcpus` vCPUs a CPU of its own: vCPU 0 the boot CPU, the others
/// the online secondaries in order. Returns how many CPUs are available if there
/// are too few.
pub fn assign_vcpus(platform: &Platform<'_>, vcpus: usize) -> Result<(), usize> {
    let boot = current_index(platform);
    let others =
        (0..platform.cpus.len()).filter(|&i| i != boot && ONLINE[i].load(Ordering::Acquire));
    let hosts: ArrayVec<usize, MAX_CPUS> = core::iter::once(boot).chain(others).collect();
    if vcpus > hosts.len() {
        return Err(hosts.len());
    }
    for (index, cpu) in platform.cpus.iter().enumerate() {
        HOST_MPIDR[index].store(cpu.mpidr, Ordering::Release);
    }
    for (vcpu, &host) in hosts.iter().take(vcpus).enumerate() {
        VCPU_HOST[vcpu].store(host, Ordering::Release);
    }
    Ok(())
}

/// Asks the CPU that hosts `vcpu` to run `job` (which runs the vCPU). Returns false
/// if no CPU hosts that vCPU.
pub fn run_on_host_of(vcpu: usize, job: impl FnOnce() + Send + 'static) -> bool {
    let Some(host) = VCPU_HOST.get(vcpu).map(|h| h.load(Ordering::Acquire)) else {
        return false;
    };
    if host >= MAX_CPUS {
        return false;
    }
    *START_REQUESTS[host].lock() = Some(alloc::boxed::Box::new(job));
    post(host, HOST_MPIDR[host].load(Ordering::Acquire), Job::RunVcpu);
    true
}

/// Has the last online secondary CPU run `test` (a deliberate crash, from
/// `aerie.selftest`). Returns false, without running it, if no secondary is online.
pub fn run_self_test_on_last_secondary(platform: &Platform<'_>, test: fn() -> !) -> bool {
    let boot = current_index(platform);
    let Some(index) = (0..platform.cpus.len())
        .rev()
        .find(|&i| i != boot && ONLINE[i].load(Ordering::Acquire))
    else {
        return false;
    };
    SELF_TEST.call_once(|| test);
    post(index, platform.cpus[index].mpidr, Job::SelfTest);
    true
}

/// Puts `job` in the mailbox of CPU `index` (affinity `mpidr`) and wakes it.
fn post(index: usize, mpidr: u64, job: Job) {
    MAILBOX[index].store(job as u8, Ordering::Release);
    // The store must be visible before the kick arrives: the SGI is sent by a
    // system-register write (GICv3) or a device store (GICv2), neither of which is
    // ordered after the store by the release alone.
    core::sync::atomic::fence(Ordering::SeqCst);
    gic::kick(mpidr);
}

/// The MPIDR of the CPU that hosts `vcpu`, if any.
pub fn host_mpidr_of_vcpu(vcpu: usize) -> Option<u64> {
    let host = VCPU_HOST.get(vcpu)?.load(Ordering::Acquire);
    HOST_MPIDR.get(host).map(|m| m.load(Ordering::Acquire))
}

/// Waits for work forever: the idle loop of every CPU that is not running a vCPU.
/// It sleeps in `WFI` until an interrupt is pending (a kick from [`post`], which
/// comes after the mailbox is written, so that a job posted just before the CPU
/// went to sleep still wakes it: the kick stays pending until it is taken).
pub fn park(index: usize) -> ! {
    loop {
        match MAILBOX[index].swap(Job::None as u8, Ordering::AcqRel) {
            job if job == Job::Ping as u8 => {
                PING_ANSWERS.fetch_add(1, Ordering::AcqRel);
            }
            job if job == Job::RunVcpu as u8 => run_requested_vcpu(index),
            job if job == Job::SelfTest as u8 => {
                if let Some(test) = SELF_TEST.get() {
                    test()
                }
            }
            _ => {
                cpu::wait_for_interrupt();
                gic::discard_pending(DISCARDED_PER_WAKE);
            }
        }
    }
}

fn run_requested_vcpu(index: usize) {
    let job = START_REQUESTS[index].lock().take();
    if let Some(job) = job {
        job();
    }
}

/// This CPU's index in the platform's CPU list.
pub fn current_index(platform: &Platform<'_>) -> usize {
    let mpidr = cpu::mpidr();
    platform
        .cpus
        .iter()
        .position(|c| c.mpidr == mpidr)
        .unwrap_or(0)
}

/// The Rust entry point of a secondary CPU (from `secondary_entry`).
#[unsafe(no_mangle)]
extern "C" fn aerie_secondary_main(cpu_index: u64) -> ! {
    let index = cpu_index as usize;
    let Some(online) = ONLINE.get(index) else {
        cpu::halt()
    };
    log::debug!("cpu {index} (MPIDR {:#x}) online", cpu::mpidr());
    if let Some(gic) = crate::drivers::gicv2::HOST_GIC_V2.get() {
        gic.init_cpu(cpu::mpidr());
    }
    if let Some(gic) = crate::drivers::gicv3::HOST_GIC.get() {
        if !gic.init_cpu(cpu::mpidr()) {
            log::warn!("cpu {index}: no GIC redistributor found; it cannot run a vCPU");
            cpu::halt();
        }
    }
    online.store(true, Ordering::Release);
    park(index)
}
