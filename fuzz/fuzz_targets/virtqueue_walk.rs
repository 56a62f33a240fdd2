//! Fuzzes the split-virtqueue walker: the input is a byte of queue size, a byte of
//! ring features, then guest RAM holding the descriptor table, the available ring
//! and whatever indirect tables and buffers the descriptors point at.
#![no_main]

use aerie_devices::virtio::{Chain, GuestMemory, Queue, VecMemory};
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x4000_0000;
const DESC: u64 = BASE;
const AVAIL: u64 = BASE + 0x4000;
const USED: u64 = BASE + 0x5000;
/// Enough RAM for the rings of a 1024-entry queue.
const MIN_RAM: usize = 0x8000;
const MAX_RAM: usize = 0x10_0000;

fuzz_target!(|data: &[u8]| {
    let [size_log, features, image @ ..] = data else {
        return;
    };
    let size = 1u16 << (size_log % 11);
    let mut bytes = image[..image.len().min(MAX_RAM)].to_vec();
    bytes.resize(bytes.len().max(MIN_RAM), 0);
    let mut memory = VecMemory::from_bytes(BASE, bytes);

    let mut queue = Queue::new(1024);
    queue.set_size(size);
    queue.set_descriptor_area(DESC);
    queue.set_driver_area(AVAIL);
    queue.set_device_area(USED);
    queue.set_features(features & 2 != 0, features & 1 != 0);
    queue.enable().expect("a valid layout");
    queue.start_batch();

    let mut chain = Chain::new();
    for _ in 0..=size {
        match queue.pop(&mut memory, &mut chain) {
            Ok(true) => {
                let mut total = 0u64;
                for segment in chain.readable().iter().chain(chain.writable()) {
                    assert!(segment.length > 0);
                    assert!(
                        memory
                            .check(segment.address, u64::from(segment.length))
                            .is_ok()
                    );
                    total += u64::from(segment.length);
                }
                assert_eq!(total, chain.readable_len() + chain.writable_len());
                assert!(total <= 1 << 32);
                queue
                    .add_used(&mut memory, chain.head(), 0)
                    .expect("the used ring is inside RAM");
            }
            Ok(false) | Err(_) => break,
        }
    }
    let _ = queue.needs_interrupt(&memory);
});
