//! Fuzz target of the guest bundle: the cpio archive Aerie receives its guest in,
//! the kernel header inside it and the layout of the guest's RAM that follows.

use crate::bundle::Bundle;
use crate::image::ImageHeader;
use crate::loader;
use crate::memory::Range;
use alloc::string::ToString;

/// Guest RAM the layout is planned in: QEMU `virt`'s first gigabyte.
const RAM_BASE: u64 = 0x4000_0000;
/// Its size.
const RAM_SIZE: u64 = 1 << 30;
/// The size of the guest device tree to place.
const DEVICE_TREE_LEN: u64 = 0x1_0000;

/// Whether `part` lies within `whole` (as slices of the same buffer).
fn within(part: &[u8], whole: &[u8]) -> bool {
    let start = part.as_ptr() as usize;
    let whole_start = whole.as_ptr() as usize;
    start >= whole_start && start + part.len() <= whole_start + whole.len()
}

/// Parses the input as a guest bundle, then, as the boot path does, the kernel's
/// `Image` header, and plans where the kernel, initrd and device tree go.
///
/// Checks that nothing panics and errors describe themselves; that the pieces
/// [`Bundle::parse`] returns lie inside the input and the command line ends in no
/// newline; and that a plan keeps every piece inside RAM, apart from the others,
/// with the entry point at the kernel's start and room for the whole kernel file.
pub fn guest_bundle(data: &[u8]) {
    let bundle = match Bundle::parse(data) {
        Ok(bundle) => bundle,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    assert!(within(bundle.kernel, data));
    assert!(bundle.initrd.is_none_or(|initrd| within(initrd, data)));
    assert!(bundle.cmdline.is_none_or(|line| !line.ends_with('\n')));
    let header = match ImageHeader::parse(bundle.kernel) {
        Ok(header) => header,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let ram = Range::from_start_size(RAM_BASE, RAM_SIZE).expect("a valid range");
    let initrd_len = bundle.initrd.map(|initrd| initrd.len() as u64);
    let kernel_len = bundle.kernel.len() as u64;
    let plan = match loader::plan(ram, &header, kernel_len, initrd_len, DEVICE_TREE_LEN) {
        Ok(plan) => plan,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let _ = plan.to_string();
    assert_eq!(plan.entry, plan.kernel.start());
    assert!(plan.kernel.size() >= kernel_len);
    assert_eq!(plan.device_tree.size(), DEVICE_TREE_LEN);
    let pieces = [Some(plan.kernel), Some(plan.device_tree), plan.initrd];
    for (i, piece) in pieces.iter().enumerate() {
        let Some(piece) = piece else { continue };
        assert!(ram.covers(piece), "{piece} outside {ram}");
        for other in pieces[i + 1..].iter().flatten() {
            assert!(!piece.overlaps(other), "{piece} overlaps {other}");
        }
    }
    assert_eq!(plan.initrd.map(|initrd| initrd.size()), initrd_len);
}
