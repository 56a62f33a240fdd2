//! The guest's physical address map. It mirrors QEMU's `virt` machine so that
//! unmodified kernels and firmware built for `virt` find their devices where they
//! expect them.
//!
//! ```text
//!   0x0000_0000  flash bank 0 (64 MiB), firmware code run in place, firmware guests only
//!   0x0400_0000  flash bank 1 (64 MiB), the firmware's variable store, firmware guests only
//!   0x0800_0000  GIC distributor (64 KiB; 4 KiB for GICv2)
//!   0x0801_0000  GICv2 CPU interface (8 KiB), GICv2 hosts only
//!   0x080a_0000  GICv3 redistributors (128 KiB per vCPU)
//!   0x0900_0000  PL011 UART (4 KiB), SPI 1
//!   0x0901_0000  PL031 real-time clock (4 KiB), when the host has a wall clock
//!   0x0906_0000  Aerie test device (4 KiB), only when enabled (test guests)
//!   0x0a00_0000  virtio-mmio transports, 0x200 apart, SPIs 16..
//!   0x4000_0000  RAM, as much as configured
//!   2^39         end of the guest physical address space (stage-2 input size)
//! ```
//!
//! Nothing else is mapped: Aerie's own memory never appears in this space, so a
//! guest cannot name it.

/// Flash bank 0: the firmware's code (see [`crate::firmware`]).
pub const FLASH_CODE: u64 = 0;
/// Flash bank 1: the firmware's variable store.
pub const FLASH_VARS: u64 = 0x0400_0000;
/// Size of each flash bank.
pub const FLASH_BANK_SIZE: u64 = 0x0400_0000;
/// Start of guest RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest physical addresses are below `1 << IPA_BITS` (512 GiB): stage-2 lookups
/// start at level 1 with one table.
pub const IPA_BITS: u32 = 39;
/// The largest guest RAM the address space holds.
pub const MAX_RAM: u64 = (1 << IPA_BITS) - RAM_BASE;
/// GIC distributor.
pub const GIC_DISTRIBUTOR: u64 = 0x0800_0000;
/// Size of the GIC distributor frame.
pub const GIC_DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// The GICv2 CPU interface (guests of GICv2 hosts: the host's virtual CPU
/// interface, GICV, mapped here).
pub const GIC_CPU_INTERFACE: u64 = 0x0801_0000;
/// Size of the GICv2 CPU interface mapping (GICC_DIR is at 0x1000).
pub const GIC_CPU_INTERFACE_SIZE: u64 = 0x2000;
/// First GICv3 redistributor.
pub const GIC_REDISTRIBUTORS: u64 = 0x080a_0000;
/// Size of one GICv3 redistributor (RD and SGI frames).
pub const GIC_REDISTRIBUTOR_SIZE: u64 = 0x2_0000;
/// The PL011 UART.
pub const UART: u64 = 0x0900_0000;
/// Size of the UART's register block.
pub const UART_SIZE: u64 = 0x1000;
/// The UART's interrupt, as an SPI number (INTID 33).
pub const UART_SPI: u32 = 1;
/// The PL031 real-time clock (see `aerie_devices::pl031`), where QEMU `virt` has it.
pub const RTC: u64 = 0x0901_0000;
/// Size of the RTC's register block.
pub const RTC_SIZE: u64 = 0x1000;
/// Aerie's test device (see `aerie_devices::testdev`).
pub const TEST_DEVICE: u64 = 0x0906_0000;
/// Size of the test device's register block.
pub const TEST_DEVICE_SIZE: u64 = 0x1000;
/// First virtio-mmio transport.
pub const VIRTIO_MMIO: u64 = 0x0a00_0000;
/// Distance between virtio-mmio transports.
pub const VIRTIO_MMIO_STRIDE: u64 = 0x200;
/// SPI number of the first virtio-mmio transport.
pub const VIRTIO_MMIO_FIRST_SPI: u32 = 16;
