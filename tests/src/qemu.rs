//! The machines the tests boot: [`virt`] and [`raspi4b`] preset aerie-host's [`Qemu`]
//! builder for the Aerie under test, and [`Run::run`] boots one to an [`Outcome`].
//! Every run has its console on pipes (the serial output is the transcript) and
//! semihosting, through which Aerie exits QEMU with a status.

use std::path::PathBuf;
use std::time::Duration;

pub use aerie_host::Qemu;
use aerie_host::{Serial, run_to_end};

use crate::outcome::Outcome;
use crate::paths;

/// How long a run may take before QEMU is killed (doubled when `CI=true`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// QEMU `virt` at EL2: `virtualization=on`, GICv3, Cortex-A72, 1 CPU, 256 MiB,
/// booting `$AERIE_IMAGE`.
pub fn virt() -> Qemu {
    under_test(
        Qemu::virt().cpu("cortex-a72").smp(1).mem_mib(256),
        paths::aerie_image(),
    )
}

/// QEMU `raspi4b` (4 Cortex-A72, 2 GiB, GIC-400), booting `$AERIE_IMAGE`. Give it a
/// device tree with [`Qemu::dtb`]: without one x0 is not a valid tree.
pub fn raspi4b() -> Qemu {
    under_test(Qemu::raspi4b(), paths::aerie_image())
}

/// `qemu` booting `image` with its console on pipes and semihosting.
fn under_test(qemu: Qemu, image: PathBuf) -> Qemu {
    qemu.serial(Serial::Piped).semihosting().kernel(image)
}

/// Running a machine to its end.
pub trait Run {
    /// The timeout that applies in this environment: [`Qemu::timeout`] (60 s unless
    /// given), doubled when the environment variable `CI` is `true`.
    fn effective_timeout(&self) -> Duration;

    /// Runs QEMU with stdin closed until it exits or the timeout kills it.
    fn run(&self) -> Outcome;
}

impl Run for Qemu {
    fn effective_timeout(&self) -> Duration {
        let timeout = self.timeout_given().unwrap_or(DEFAULT_TIMEOUT);
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            timeout * 2
        } else {
            timeout
        }
    }

    fn run(&self) -> Outcome {
        let command = self.command_line();
        let ran =
            run_to_end(&mut self.command(), self.effective_timeout(), false).unwrap_or_else(|e| {
                panic!("cannot start QEMU ({e}); `cargo xtask test` installs it\n{command}")
            });
        Outcome {
            command,
            transcript: ran.stdout,
            stderr: ran.stderr,
            exit_code: ran.status.and_then(|status| status.code()),
            timed_out: ran.status.is_none(),
            duration: ran.took,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_under_test() {
        let machine = Qemu::virt().cpu("cortex-a72").smp(1).mem_mib(256);
        let line = under_test(machine, "/t/aerie.bin".into()).command_line();
        assert_eq!(
            line,
            "qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 1 \
             -m 256M -display none -monitor none -chardev stdio,id=console,signal=off,mux=off \
             -serial chardev:console -kernel /t/aerie.bin -semihosting-config \
             enable=on,target=native"
        );
    }

    #[test]
    fn timeout_is_doubled_in_ci_only() {
        let expected = |secs: u64| {
            let factor = if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                2
            } else {
                1
            };
            Duration::from_secs(secs * factor)
        };
        let qemu = Qemu::virt().timeout(Duration::from_secs(5));
        assert_eq!(qemu.effective_timeout(), expected(5));
        assert_eq!(Qemu::virt().effective_timeout(), expected(60));
    }
}
