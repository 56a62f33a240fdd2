//! Fuzz target of the host device tree path: the checks Aerie runs on the blob the
//! boot loader hands it, the platform parser behind them, and what Aerie prints
//! from the result.

use crate::bootargs;
use crate::fdt_check::{self, HEADER_SIZE};
use crate::memory::Range;
use crate::platform::Platform;
use crate::summary::{CpuIdentity, Summary};
use alloc::format;
use alloc::string::ToString;

/// The blob as the boot path sees it: the header, `total_size` bytes of tree (where
/// the input has them), NOP tokens removed, the platform parsed, the boot options
/// read from `/chosen/bootargs` and the hardware summary printed.
///
/// Checks that nothing panics (the `fdt` crate behind [`Platform::parse`] panics on
/// many malformed trees, so this is what [`fdt_check`] is for); that the three
/// validators agree (a blob [`fdt_check::validate_for_reading`] accepts is accepted
/// by [`fdt_check::validate`] with the same header, and one
/// [`fdt_check::validate_and_remove_nops`] accepts is accepted by `validate` and,
/// after the removal, by `validate_for_reading`, unchanged when nothing was
/// removed); and that a parsed platform has a CPU and RAM.
pub fn host_device_tree(data: &[u8]) {
    let validated = fdt_check::validate(data);
    if let Ok(header) = fdt_check::validate_for_reading(data) {
        assert_eq!(validated, Ok(header));
    }
    if let Err(error) = validated {
        assert!(!error.to_string().is_empty());
    }
    // The boot path reads the header first, then exactly `total_size` bytes.
    let total = match fdt_check::read_header(&data[..data.len().min(HEADER_SIZE)]) {
        Ok(header) => header.total_size as usize,
        Err(_) => return,
    };
    let mut blob = data[..data.len().min(total)].to_vec();
    let removed = match fdt_check::validate_and_remove_nops(&mut blob) {
        Ok(removed) => removed,
        Err(_) => return,
    };
    let header = validated.expect("validate accepts what validate_and_remove_nops does");
    let cleaned = fdt_check::validate_for_reading(&blob).expect("a tree without NOPs reads");
    assert_eq!(cleaned.total_size, header.total_size);
    if removed == 0 {
        assert_eq!(blob, data[..total]);
    }
    let platform = match Platform::parse(&blob) {
        Ok(platform) => platform,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    assert!(platform.cpu_count() > 0);
    assert!(platform.total_memory() > 0);
    let (options, unknown) = bootargs::parse(platform.chosen.bootargs.unwrap_or(""));
    let _ = format!("{options:?}");
    for option in &unknown {
        let _ = option.to_string();
    }
    let image = platform.memory[0];
    let summary = Summary {
        platform: &platform,
        version: "fuzz",
        entered_el: 2,
        cpu: CpuIdentity(0x410f_d083),
        counter_hz: 62_500_000,
        cpus_online: platform.cpu_count(),
        cpu_failures: &[],
        psci_version: None,
        image: Range::from_start_size(image.start(), image.size().min(0x20_0000)).unwrap_or(image),
        free_memory: platform.total_memory() / 2,
        heap_size: 16 << 20,
        virtio_devices: &[],
    };
    assert!(!summary.to_string().is_empty());
}
