//! The pure pieces of the vCPU run loop (`boot/src/vm`), host-tested here: which
//! list registers to touch around a guest run, how exits are counted, and the
//! buffering of a guest's debug output into lines.

pub mod debug_line;
pub mod exit_reason;
pub mod list_registers;
