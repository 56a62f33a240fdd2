//! Aerie's guest-facing device models.
//!
//! Each device is a pure state machine: the hypervisor forwards trapped guest
//! accesses as `read(offset, width)` / `write(offset, width, value)` and pulls the
//! device's outputs (interrupt level, bytes to transmit, next deadline). Devices hold
//! no globals, touch no system registers and never allocate on the access path.
//!
//! | module | job |
//! |---|---|
//! | [`mmio`] | access widths, the [`mmio::MmioDevice`] trait every model implements, the [`mmio::Device`] trait and [`mmio::Effects`] of a whole device access, and [`mmio::Persist`] (save and restore) |
//! | [`virtio`] | virtio-mmio register layout and device type identifiers |
//! | [`bus`] | the MMIO bus: guest physical ranges to devices of one type |
//! | [`cfi_flash`] | a CFI NOR flash bank (QEMU `virt`'s firmware flash), its command set |
//! | [`pl011`] | the PL011 UART model |
//! | [`pl031`] | the PL031 real-time clock model |
//! | [`testdev`] | Aerie's test device, for test guests |
//! | [`vgic`] | the virtual GIC (GICv3 front-end) |
//! | `fuzz` | fuzz targets of the guest-facing interfaces (tests and the `fuzzing` feature only) |
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "fuzzing"))]
extern crate std;

pub mod bus;
pub mod cfi_flash;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod mmio;
pub mod pl011;
pub mod pl031;
pub mod testdev;
pub mod vgic;
pub mod virtio;
