//! A hostile guest for virtio: it drives the virtio-blk device at transport 0 (a
//! host disk given with the serial `aerie-disk0`) with malformed descriptor chains:
//! addresses outside its RAM or wrapping around, a loop, chains longer than the
//! queue, a zero-length and a 4 GiB buffer, a writable header, an available index
//! that runs far ahead, and each ring (descriptor table, available, used) at a device
//! address or just past guest RAM. Each must end with the device asking for a reset
//! (DEVICE_NEEDS_RESET) or an error status, never with Aerie down or the host disk
//! touched; after each, the guest resets the device and a valid read still works.
//!
//! Layouts: virtio 1.2, 2.7 (split virtqueues), 4.2.2 (MMIO registers, version 2),
//! 5.2.6 (block requests).
#![no_std]
#![no_main]

use aerie_test_guests::{check, check_eq, println};

aerie_test_guests::guest_main!(run);

/// Transport 0 of the guest's virtio-mmio window.
const MMIO: u64 = 0x0a00_0000;
/// virtio-mmio register offsets (4.2.2).
const MAGIC: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_ACK: u64 = 0x064;
const INTERRUPT_STATUS: u64 = 0x060;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DESC_HIGH: u64 = 0x084;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DRIVER_HIGH: u64 = 0x094;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
/// Device status bits (2.1).
const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
const DEVICE_NEEDS_RESET: u32 = 64;
/// VIRTIO_F_VERSION_1 is feature bit 32: bit 0 of feature word 1.
const VERSION_1_WORD1: u32 = 1;
/// Descriptor flags (2.7.5).
const NEXT: u16 = 1;
const WRITE: u16 = 2;
/// Block request types and status (5.2.6).
const T_IN: u32 = 0;
const S_OK: u8 = 0;

/// Queue size the guest uses.
const QUEUE_SIZE: u32 = 8;
/// Guest RAM the guest uses for the queue and buffers (above its image).
const DESC: u64 = 0x4100_0000;
const AVAIL: u64 = 0x4100_1000;
const USED: u64 = 0x4100_2000;
const HEADER: u64 = 0x4100_3000;
const DATA: u64 = 0x4100_4000;
const STATUS_BYTE: u64 = 0x4100_5000;

fn mmio_read(offset: u64) -> u32 {
    // SAFETY: a register of the guest's virtio-mmio transport, which Aerie emulates;
    // aligned 32-bit access as the spec requires.
    unsafe { core::ptr::read_volatile((MMIO + offset) as *const u32) }
}

fn mmio_write(offset: u64, value: u32) {
    // SAFETY: as for `mmio_read`.
    unsafe { core::ptr::write_volatile((MMIO + offset) as *mut u32, value) }
}

fn write_u16(address: u64, value: u16) {
    // SAFETY: guest RAM the guest owns (above its image and stacks), 2-byte aligned.
    unsafe { core::ptr::write_volatile(address as *mut u16, value) }
}

fn write_u32(address: u64, value: u32) {
    // SAFETY: as for `write_u16`, 4-byte aligned.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

fn write_u64(address: u64, value: u64) {
    // SAFETY: as for `write_u16`, 8-byte aligned.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

fn read_u8(address: u64) -> u8 {
    // SAFETY: as for `write_u16`.
    unsafe { core::ptr::read_volatile(address as *const u8) }
}

fn read_u16(address: u64) -> u16 {
    // SAFETY: as for `write_u16`.
    unsafe { core::ptr::read_volatile(address as *const u16) }
}

/// Writes descriptor `index`.
fn descriptor(index: u64, address: u64, length: u32, flags: u16, next: u16) {
    let at = DESC + index * 16;
    write_u64(at, address);
    write_u32(at + 8, length);
    write_u16(at + 12, flags);
    write_u16(at + 14, next);
}

/// Resets the device and sets up queue 0 from scratch; returns the device status.
fn set_up() -> u32 {
    set_up_at(DESC, AVAIL, USED)
}

/// Like [`set_up`], with the descriptor table, available ring and used ring at the
/// given guest physical addresses (only the descriptor area in RAM is cleared).
fn set_up_at(desc: u64, avail: u64, used: u64) -> u32 {
    mmio_write(STATUS, 0);
    for offset in (0..0x3000).step_by(4) {
        write_u32(DESC + offset, 0);
    }
    mmio_write(STATUS, ACKNOWLEDGE | DRIVER);
    mmio_write(DEVICE_FEATURES_SEL, 1);
    mmio_write(DRIVER_FEATURES_SEL, 1);
    mmio_write(DRIVER_FEATURES, VERSION_1_WORD1);
    mmio_write(DRIVER_FEATURES_SEL, 0);
    mmio_write(DRIVER_FEATURES, 0);
    mmio_write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    mmio_write(QUEUE_SEL, 0);
    mmio_write(QUEUE_NUM, QUEUE_SIZE);
    mmio_write(QUEUE_DESC_LOW, desc as u32);
    mmio_write(QUEUE_DESC_HIGH, (desc >> 32) as u32);
    mmio_write(QUEUE_DRIVER_LOW, avail as u32);
    mmio_write(QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
    mmio_write(QUEUE_DEVICE_LOW, used as u32);
    mmio_write(QUEUE_DEVICE_HIGH, (used >> 32) as u32);
    mmio_write(QUEUE_READY, 1);
    mmio_write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    mmio_read(STATUS)
}

/// Publishes a chain starting at descriptor `head` with available index `index`,
/// notifies, and returns the device status afterwards.
fn submit(head: u16, index: u16) -> u32 {
    write_u16(
        AVAIL + 4 + u64::from(index.wrapping_sub(1) % QUEUE_SIZE as u16) * 2,
        head,
    );
    write_u16(AVAIL + 2, index);
    mmio_write(QUEUE_NOTIFY, 0);
    let status = mmio_read(STATUS);
    mmio_write(INTERRUPT_ACK, mmio_read(INTERRUPT_STATUS));
    status
}

/// What [`valid_read`] returns when the request did not complete at all.
const NOT_COMPLETED: u32 = 0x100;

/// A valid read of sector 0 into DATA; returns the request's status byte, or
/// [`NOT_COMPLETED`].
fn valid_read() -> u32 {
    write_u32(HEADER, T_IN);
    write_u32(HEADER + 4, 0);
    write_u64(HEADER + 8, 0);
    write_u16(STATUS_BYTE, 0xff);
    descriptor(0, HEADER, 16, NEXT, 1);
    descriptor(1, DATA, 512, NEXT | WRITE, 2);
    descriptor(2, STATUS_BYTE, 1, WRITE, 0);
    let status = submit(0, 1);
    if status & DEVICE_NEEDS_RESET != 0 || read_u16(USED + 2) != 1 {
        return NOT_COMPLETED;
    }
    u32::from(read_u8(STATUS_BYTE))
}

/// One malformed request: its name and how to lay out its descriptors.
type Attack = (&'static str, fn());

fn outside_ram() {
    descriptor(0, 0x7f_0000_0000, 16, NEXT, 1);
    descriptor(1, DATA, 512, WRITE, 0);
}

fn wrapping_address() {
    descriptor(0, HEADER, 16, NEXT, 1);
    descriptor(1, u64::MAX - 100, 512, WRITE, 0);
}

fn loop_of_two() {
    descriptor(0, HEADER, 16, NEXT, 1);
    descriptor(1, DATA, 512, NEXT | WRITE, 0);
}

fn next_out_of_range() {
    descriptor(0, HEADER, 16, NEXT, 200);
}

fn zero_length_header() {
    descriptor(0, HEADER, 0, NEXT, 1);
    descriptor(1, STATUS_BYTE, 1, WRITE, 0);
}

fn four_gib_buffer() {
    descriptor(0, HEADER, 16, NEXT, 1);
    descriptor(1, DATA, u32::MAX, NEXT | WRITE, 2);
    descriptor(2, STATUS_BYTE, 1, WRITE, 0);
}

fn writable_header() {
    descriptor(0, HEADER, 16, NEXT | WRITE, 1);
    descriptor(1, STATUS_BYTE, 1, WRITE, 0);
}

fn readable_after_writable() {
    descriptor(0, HEADER, 16, NEXT, 1);
    descriptor(1, DATA, 512, NEXT | WRITE, 2);
    descriptor(2, STATUS_BYTE, 1, 0, 0);
}

const ATTACKS: [Attack; 8] = [
    ("a buffer outside guest RAM", outside_ram),
    (
        "a buffer that wraps around the address space",
        wrapping_address,
    ),
    ("a descriptor loop", loop_of_two),
    ("a next index beyond the queue", next_out_of_range),
    ("a zero-length header", zero_length_header),
    ("a 4 GiB buffer", four_gib_buffer),
    ("a writable request header", writable_header),
    (
        "a readable buffer after writable ones",
        readable_after_writable,
    ),
];

fn run() {
    check_eq!(
        mmio_read(MAGIC),
        0x7472_6976,
        "virtio_hostile: transport 0 is virtio-mmio"
    );
    check_eq!(
        mmio_read(VERSION),
        2,
        "virtio_hostile: version 2 (modern) transport"
    );
    check_eq!(
        mmio_read(DEVICE_ID),
        2,
        "virtio_hostile: transport 0 is a block device"
    );
    let status = set_up();
    check!(
        status & DRIVER_OK != 0,
        "virtio_hostile: the device accepts the driver",
        "status {status:#x}"
    );
    check_eq!(
        valid_read(),
        u32::from(S_OK),
        "virtio_hostile: a valid read works first"
    );
    for (name, lay_out) in ATTACKS {
        set_up();
        write_u32(HEADER, T_IN);
        write_u32(HEADER + 4, 0);
        write_u64(HEADER + 8, 0);
        lay_out();
        let status = submit(0, 1);
        let used = read_u16(USED + 2);
        let refused =
            status & DEVICE_NEEDS_RESET != 0 || (used == 1 && read_u8(STATUS_BYTE) != S_OK);
        check!(
            refused,
            &*name_of("refused", name),
            "status {status:#x}, used {used}"
        );
        set_up();
        check_eq!(
            valid_read(),
            u32::from(S_OK),
            &*name_of("a valid read works after", name)
        );
    }
    misplaced_rings();
    set_up();
    let status = submit(0, 1000);
    check!(
        status & DEVICE_NEEDS_RESET != 0,
        "virtio_hostile: refused an available index far ahead of the queue",
        "status {status:#x}"
    );
    set_up();
    check_eq!(
        valid_read(),
        u32::from(S_OK),
        "virtio_hostile: a valid read works at the end"
    );
    println!("virtio_hostile: done");
}

/// Guest physical addresses a ring must never be at: the UART's registers, this
/// transport's own registers, and the first page after the guest's 64 MiB of RAM
/// (where, on the host, other memory than the guest's lies).
const BAD_RING_ADDRESSES: [(u64, &str); 3] = [
    (0x0900_0000, "at the UART"),
    (MMIO, "at the transport's own registers"),
    (0x4400_0000, "just past guest RAM"),
];

/// Each of the three rings at each bad address, the other two in RAM, with a valid
/// request published in RAM: the device must refuse the queue (DEVICE_NEEDS_RESET)
/// rather than read or write there, and work again after a reset.
fn misplaced_rings() {
    for (bad, place) in BAD_RING_ADDRESSES {
        for (ring, addresses) in [
            ("a descriptor table", (bad, AVAIL, USED)),
            ("an available ring", (DESC, bad, USED)),
            ("a used ring", (DESC, AVAIL, bad)),
        ] {
            let (desc, avail, used) = addresses;
            set_up_at(desc, avail, used);
            write_u32(HEADER, T_IN);
            write_u32(HEADER + 4, 0);
            write_u64(HEADER + 8, 0);
            descriptor(0, HEADER, 16, NEXT, 1);
            descriptor(1, DATA, 512, NEXT | WRITE, 2);
            descriptor(2, STATUS_BYTE, 1, WRITE, 0);
            let status = submit(0, 1);
            let mut name = heapless_name::Name::new();
            let _ = core::fmt::write(
                &mut name,
                format_args!("virtio_hostile: refused {ring} {place}"),
            );
            check!(
                status & DEVICE_NEEDS_RESET != 0,
                &*name,
                "status {status:#x}"
            );
            set_up();
            check_eq!(
                valid_read(),
                u32::from(S_OK),
                "virtio_hostile: a valid read works after a misplaced ring"
            );
        }
    }
}

/// A check's name: "virtio_hostile: <what> <attack>".
fn name_of(what: &str, attack: &str) -> heapless_name::Name {
    let mut name = heapless_name::Name::new();
    let _ = core::fmt::write(&mut name, format_args!("virtio_hostile: {what} {attack}"));
    name
}

/// A small fixed-capacity string for check names (the guests have no heap).
mod heapless_name {
    use core::fmt;

    /// Up to 96 bytes of text.
    pub struct Name {
        bytes: [u8; 96],
        length: usize,
    }

    impl Name {
        /// An empty name.
        pub fn new() -> Self {
            Self {
                bytes: [0; 96],
                length: 0,
            }
        }
    }

    impl core::ops::Deref for Name {
        type Target = str;
        fn deref(&self) -> &str {
            core::str::from_utf8(&self.bytes[..self.length]).unwrap_or("")
        }
    }

    impl fmt::Write for Name {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            let room = self.bytes.len() - self.length;
            let take = text.len().min(room);
            self.bytes[self.length..self.length + take].copy_from_slice(&text.as_bytes()[..take]);
            self.length += take;
            Ok(())
        }
    }
}
