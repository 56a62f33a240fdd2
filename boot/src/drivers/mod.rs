//! Drivers for the physical devices Aerie itself uses.

pub mod gicv3;
pub mod pl011;
pub mod virtio_blk;
