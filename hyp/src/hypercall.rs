//! Aerie's own hypercalls, for test guests and tools.
//!
//! They live in the SMCCC "vendor specific hypervisor service" range (owning entity
//! 6), SMC64 fast calls: function IDs `0xC600_0000 | n`, issued with `HVC #0` (or
//! `SMC #0`, which Aerie traps). Arguments in x1..x3, result in x0. An ID in this
//! range that Aerie does not know returns SMCCC `NOT_SUPPORTED` (-1), like every other
//! unknown call.
//!
//! | ID | name | arguments | result |
//! |---|---|---|---|
//! | `0xC600_0001` | [`DEBUG_WRITE`] | x1 = guest physical address, x2 = length (at most [`DEBUG_WRITE_MAX`]) | bytes written, or -2 (`INVALID_PARAMETERS`) if the buffer is not wholly in guest RAM or too long |
//! | `0xC600_0002` | [`EXIT`] | x1 = status (0..=255) | does not return: the VM stops and, on QEMU, QEMU exits with that status |
//! | `0xC600_FF01` | [`CALL_UID`] | | Aerie's UID in x0..x3 (SMCCC "Call UID" convention) |
//! | `0xC600_FF03` | [`REVISION`] | | x0 = major, x1 = minor of this interface |
//!
//! Debug output appears on Aerie's console prefixed with `guest: `.

/// SMCCC owning entity number of vendor specific hypervisor services.
pub const OWNER_VENDOR_HYPERVISOR: u8 = 6;
/// Writes a buffer of guest memory to Aerie's console.
pub const DEBUG_WRITE: u32 = 0xC600_0001;
/// Stops the VM with an exit status.
pub const EXIT: u32 = 0xC600_0002;
/// Returns Aerie's UID.
pub const CALL_UID: u32 = 0xC600_FF01;
/// Returns the interface revision.
pub const REVISION: u32 = 0xC600_FF03;
/// The longest buffer one [`DEBUG_WRITE`] accepts.
pub const DEBUG_WRITE_MAX: u64 = 256;
/// Interface revision: major.
pub const REVISION_MAJOR: u64 = 1;
/// Interface revision: minor.
pub const REVISION_MINOR: u64 = 0;
/// Aerie's UID, as four 32-bit words (returned in w0..w3): a random UUID,
/// `a3e1e5c0-7d1b-4b8e-9f3a-52e1a9e0c0de`.
pub const UID: [u32; 4] = [0xa3e1_e5c0, 0x7d1b_4b8e, 0x9f3a_52e1, 0xa9e0_c0de];
