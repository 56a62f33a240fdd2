//! WFI: the guest arms its virtual timer about 10 ms ahead and waits for the counter
//! to pass the deadline with WFI in a loop. Aerie traps WFI and may return early
//! (spurious wake-ups are allowed, Arm ARM D1.6.2), but every WFI must return, and
//! the loop must end soon after the deadline.
#![no_std]
#![no_main]

use aerie_test_guests::timer::{self, CTL_ENABLE, CTL_ISTATUS};
use aerie_test_guests::{check, cpu, println};

aerie_test_guests::guest_main!(run);

/// How far ahead the deadline is.
const DEADLINE_MS: u64 = 10;
/// How long ISTATUS may take to show after the deadline (see `run`).
const ISTATUS_WAIT_MS: u64 = 1000;
/// How late after the deadline the loop may end (generous: QEMU's TCG on a loaded CI
/// machine).
const LATE_MS: u64 = 2000;

fn run() {
    let start = cpu::counter();
    let deadline = start + cpu::ticks_from_ms(DEADLINE_MS);
    // The timer's interrupt is enabled at the timer (as an OS idling would do) but
    // PSTATE.I stays masked, so it can only end a WFI, never be taken.
    timer::set_virtual_cval(deadline);
    timer::set_virtual_ctl(CTL_ENABLE);
    // At least one WFI, even if the vCPU was descheduled past the deadline before
    // the loop began (seen on a loaded CI machine): that one must return at once,
    // the timer's condition being met already.
    let mut wfis: u64 = 0;
    loop {
        cpu::wait_for_interrupt();
        wfis += 1;
        if cpu::counter() >= deadline {
            break;
        }
    }
    let end = cpu::counter();
    // The architecture sets ISTATUS as soon as the counter reaches CVAL; QEMU updates
    // it when its own timer for the deadline fires, which may be a little later.
    let mut ctl = 0;
    let istatus = cpu::wait_until(ISTATUS_WAIT_MS, || {
        ctl = timer::virtual_ctl();
        ctl & CTL_ISTATUS != 0
    });
    timer::set_virtual_ctl(0);
    println!(
        "wfi: {wfis} WFI(s) in {} us for a {DEADLINE_MS} ms deadline",
        cpu::us_from_ticks(end - start)
    );
    check!(
        wfis >= 1,
        "wfi: the guest waited with WFI",
        "no WFI was executed"
    );
    check!(
        end - deadline <= cpu::ticks_from_ms(LATE_MS),
        "wfi: WFI returns soon after the timer deadline",
        "the loop ended {} us after the deadline",
        cpu::us_from_ticks(end - deadline)
    );
    check!(
        istatus,
        "wfi: CNTV_CTL_EL0.ISTATUS is set after the deadline",
        "CNTV_CTL_EL0 still reads {ctl:#x} {ISTATUS_WAIT_MS} ms later"
    );
}
