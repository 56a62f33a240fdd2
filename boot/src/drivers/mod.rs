//! Drivers for the physical devices Aerie itself uses.

pub mod bcm_gpio;
pub mod gic;
pub mod gic_registers;
pub mod gicv2;
pub mod gicv3;
pub mod mmio;
pub mod pl011;
pub mod pl031;
pub mod virtio_blk;
pub mod virtio_rng;
