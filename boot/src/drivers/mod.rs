//! Drivers for the physical devices Aerie itself uses.

pub mod pl011;
