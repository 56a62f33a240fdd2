//! What the host tools share: `cargo xtask` (scripts/) and the QEMU integration tests
//! (tests/) describe QEMU machines and drive consoles the same way.
//!
//! | module | job |
//! |---|---|
//! | [`qemu`] | the [`Qemu`] command-line builder: a machine, what it boots, its devices |
//! | [`console`] | the [`Console`] session: a child's console on pipes, waited on with deadlines, typed into, its transcript kept |
#![forbid(unsafe_code)]

pub mod console;
pub mod qemu;

pub use console::{Console, Ran, Stderr, Stop, run_to_end};
pub use qemu::{Qemu, Serial};
