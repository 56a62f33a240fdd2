//! The device tree Aerie wrote for the guest (its address arrives in x0): RAM and
//! vCPUs, read with the `fdt` crate.

use core::fmt;

use fdt::Fdt;

use crate::entry::{LINK_BASE, MAX_CPUS};
use crate::shared::Shared;

/// The `magic` field of a flattened device tree header (Devicetree Specification
/// 0.4, 5.2), big-endian.
const FDT_MAGIC: u32 = 0xD00D_FEED;
/// Offset of the header's `totalsize` field.
const FDT_TOTALSIZE_OFFSET: u64 = 4;
/// The largest blob accepted (Linux's limit for the boot device tree, booting.rst).
const FDT_MAX_SIZE: u32 = 2 << 20;
/// Device trees must be 8-byte aligned (booting.rst).
const FDT_ALIGN: u64 = 8;

/// The guest physical address of the device tree, as x0 held it at entry.
static ADDRESS: Shared = Shared::new(0);

/// Records the device tree address (called once by the entry code).
pub(crate) fn set_address(address: u64) {
    ADDRESS.store(address);
}

/// The guest physical address of the device tree Aerie passed in x0.
pub fn address() -> u64 {
    ADDRESS.load()
}

/// Why the device tree cannot be read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DeviceTreeError {
    /// x0 did not point into guest RAM, or not at an 8-byte boundary.
    BadAddress(u64),
    /// No FDT magic at the address.
    BadMagic(u32),
    /// `totalsize` is not plausible.
    BadSize(u32),
    /// The `fdt` crate refused the blob.
    Malformed(fdt::FdtError),
    /// No `/memory` node with a `reg`.
    NoMemory,
    /// No `/cpus` node, or a `cpu` node without a `reg`.
    NoCpus,
    /// More vCPUs than the guest runtime has stacks for.
    TooManyCpus,
}

impl fmt::Display for DeviceTreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress(address) => write!(
                f,
                "x0 at entry ({address:#x}) is not an 8-byte aligned address in guest RAM"
            ),
            Self::BadMagic(magic) => write!(f, "no device tree magic: read {magic:#010x}"),
            Self::BadSize(size) => write!(f, "implausible device tree totalsize {size:#x}"),
            Self::Malformed(error) => write!(f, "malformed device tree: {error}"),
            Self::NoMemory => write!(f, "the device tree has no /memory node with a reg"),
            Self::NoCpus => write!(f, "the device tree has no /cpus node with cpu reg values"),
            Self::TooManyCpus => write!(
                f,
                "the device tree lists more than {MAX_CPUS} vCPUs (the guests' stack slots)"
            ),
        }
    }
}

/// Reads a big-endian 32-bit word of the device tree header.
fn header_word(address: u64) -> u32 {
    // SAFETY: `address` is 4-byte aligned and inside guest RAM (checked by the
    // caller), which Aerie maps for the guest; a volatile read has no other effect.
    u32::from_be(unsafe { core::ptr::read_volatile(address as *const u32) })
}

/// Runs `f` on the device tree. The blob is only borrowed while `f` runs: a guest may
/// overwrite that memory afterwards.
pub fn with_device_tree<R>(f: impl FnOnce(&Fdt<'_>) -> R) -> Result<R, DeviceTreeError> {
    let address = address();
    if address < LINK_BASE || address % FDT_ALIGN != 0 {
        return Err(DeviceTreeError::BadAddress(address));
    }
    let magic = header_word(address);
    if magic != FDT_MAGIC {
        return Err(DeviceTreeError::BadMagic(magic));
    }
    let size = header_word(address + FDT_TOTALSIZE_OFFSET);
    if size > FDT_MAX_SIZE {
        return Err(DeviceTreeError::BadSize(size));
    }
    // SAFETY: Aerie wrote a blob of `size` bytes at `address` in guest RAM (the magic
    // says so); nothing writes that memory while the borrow lives, since it ends when
    // `f` returns.
    let blob = unsafe { core::slice::from_raw_parts(address as *const u8, size as usize) };
    let tree = Fdt::new(blob).map_err(DeviceTreeError::Malformed)?;
    Ok(f(&tree))
}

/// What a guest learns from its device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestInfo {
    /// First byte of RAM.
    pub ram_start: u64,
    /// First byte after RAM.
    pub ram_end: u64,
    /// The vCPUs' MPIDR affinities (`reg` of each `/cpus/cpu` node), in tree order;
    /// the first [`GuestInfo::cpu_count`] are valid.
    pub cpus: [u64; MAX_CPUS],
    /// The number of vCPUs.
    pub cpu_count: usize,
}

impl GuestInfo {
    /// The valid entries of [`GuestInfo::cpus`].
    pub fn mpidrs(&self) -> &[u64] {
        &self.cpus[..self.cpu_count]
    }
}

/// Reads RAM and the vCPUs from the device tree.
pub fn guest_info() -> Result<GuestInfo, DeviceTreeError> {
    with_device_tree(|tree| {
        let memory = tree
            .find_node("/memory")
            .and_then(|node| node.reg())
            .and_then(|mut regions| regions.next())
            .ok_or(DeviceTreeError::NoMemory)?;
        let ram_start = memory.starting_address as u64;
        let ram_end = ram_start + memory.size.ok_or(DeviceTreeError::NoMemory)? as u64;
        let mut info = GuestInfo {
            ram_start,
            ram_end,
            cpus: [0; MAX_CPUS],
            cpu_count: 0,
        };
        let cpus = tree.find_node("/cpus").ok_or(DeviceTreeError::NoCpus)?;
        for cpu in cpus
            .children()
            .filter(|node| node.name.split('@').next() == Some("cpu"))
        {
            let reg = cpu
                .reg()
                .and_then(|mut reg| reg.next())
                .ok_or(DeviceTreeError::NoCpus)?;
            let slot = info
                .cpus
                .get_mut(info.cpu_count)
                .ok_or(DeviceTreeError::TooManyCpus)?;
            *slot = reg.starting_address as u64;
            info.cpu_count += 1;
        }
        if info.cpu_count == 0 {
            return Err(DeviceTreeError::NoCpus);
        }
        Ok(info)
    })?
}
