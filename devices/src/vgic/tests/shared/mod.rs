//! The behaviour both front-ends share, written once over [`TestGic`] and run
//! against each (see [`scenarios!`](super::scenarios)).

mod delivery;
mod hardware;
mod inputs;
mod kicks;
mod pending_lists;
mod registers;
mod save_restore;

pub(super) use hardware::timer_fires_on_vcpu_1_only;
pub(super) use registers::{assert_ignored, assert_unknown_distributor_offset_counted};

pub(super) use super::{
    B, CpuInterfaceModel, D, H, LINUX_PRIORITY, Lr, TestGic, UART, VTIMER, W, block, scenarios,
};
