//! The short hardware summary Aerie prints once it has brought the machine up.
//!
//! `boot/` gathers the facts (from the device tree, ID registers and probes) into a
//! [`Summary`]; its `Display` lays them out as aligned lines, one topic per line,
//! in the same order every time so that people and tests can read them.

use crate::memory::Range;
use crate::platform::{Gic, Platform};
use crate::psci::PsciVersion;
use crate::units::ByteSize;
use aerie_devices::virtio::DeviceType;
use core::fmt;

/// A CPU identified by its MIDR_EL1 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuIdentity(pub u64);

/// MIDR implementer code of Arm Ltd.
const IMPLEMENTER_ARM: u64 = 0x41;
/// MIDR part numbers of Arm cores Aerie is likely to meet, with their names.
const ARM_PARTS: [(u64, &str); 9] = [
    (0xd03, "Cortex-A53"),
    (0xd04, "Cortex-A35"),
    (0xd05, "Cortex-A55"),
    (0xd07, "Cortex-A57"),
    (0xd08, "Cortex-A72"),
    (0xd09, "Cortex-A73"),
    (0xd0b, "Cortex-A76"),
    (0xd0c, "Neoverse-N1"),
    (0xd40, "Neoverse-V1"),
];

impl CpuIdentity {
    /// Implementer code, MIDR bits [31:24].
    pub fn implementer(self) -> u64 {
        (self.0 >> 24) & 0xff
    }

    /// Part number, MIDR bits [15:4].
    pub fn part(self) -> u64 {
        (self.0 >> 4) & 0xfff
    }

    /// The core's name when Aerie knows it.
    pub fn name(self) -> Option<&'static str> {
        if self.implementer() != IMPLEMENTER_ARM {
            return None;
        }
        ARM_PARTS
            .iter()
            .find(|(part, _)| *part == self.part())
            .map(|(_, name)| *name)
    }
}

impl fmt::Display for CpuIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = (self.0 >> 20) & 0xf;
        let revision = self.0 & 0xf;
        match self.name() {
            Some(name) => write!(f, "Arm {name} r{variant}p{revision}")?,
            None => write!(
                f,
                "implementer {:#04x} part {:#05x}",
                self.implementer(),
                self.part()
            )?,
        }
        write!(f, " (MIDR {:#010x})", self.0)
    }
}

/// A CPU that did not come online, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuFailure<'a> {
    /// Its MPIDR.
    pub mpidr: u64,
    /// Why it is offline.
    pub reason: &'a str,
}

/// A device found in one of the host's virtio-mmio slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostVirtioDevice {
    /// The slot's registers.
    pub registers: Range,
    /// What kind of device it is.
    pub device: DeviceType,
    /// Transport version (1 legacy, 2 modern).
    pub version: u32,
    /// For a block device, its capacity.
    pub capacity: Option<u64>,
}

/// Everything the summary shows.
pub struct Summary<'p, 'a> {
    /// The parsed device tree.
    pub platform: &'p Platform<'a>,
    /// Aerie's version string.
    pub version: &'p str,
    /// The exception level Aerie was entered at.
    pub entered_el: u8,
    /// The boot CPU.
    pub cpu: CpuIdentity,
    /// CNTFRQ_EL0 in Hz.
    pub counter_hz: u64,
    /// How many CPUs are online (boot CPU included).
    pub cpus_online: usize,
    /// CPUs that did not come online.
    pub cpu_failures: &'p [CpuFailure<'p>],
    /// The PSCI version the firmware reported.
    pub psci_version: Option<PsciVersion>,
    /// Memory Aerie's image occupies (code, data, stacks).
    pub image: Range,
    /// Bytes of RAM still free (in the frame allocator) after Aerie's own
    /// allocations and the guest's RAM.
    pub free_memory: u64,
    /// Size of Aerie's heap.
    pub heap_size: u64,
    /// Devices found in the virtio-mmio slots.
    pub virtio_devices: &'p [HostVirtioDevice],
}

/// Width of the label column.
const LABEL: usize = 12;

impl fmt::Display for Summary<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.platform;
        writeln!(f, "Aerie {} hardware summary", self.version)?;
        if p.model == p.compatible || p.compatible.is_empty() {
            writeln!(f, "  {:LABEL$} {}", "machine", p.model)?;
        } else {
            writeln!(f, "  {:LABEL$} {} ({})", "machine", p.model, p.compatible)?;
        }
        writeln!(
            f,
            "  {:LABEL$} {}, entered at EL{}, counter {}",
            "cpu",
            self.cpu,
            self.entered_el,
            Frequency(self.counter_hz)
        )?;
        self.write_cpus(f)?;
        self.write_memory(f)?;
        writeln!(f, "  {:LABEL$} {}", "gic", GicSummary(&p.gic))?;
        if let Some(timer) = p.timer {
            writeln!(
                f,
                "  {:LABEL$} virtual INTID {}, hypervisor INTID {}, physical INTID {}",
                "timer", timer.virtual_timer.0, timer.hypervisor.0, timer.physical.0
            )?;
        }
        write!(
            f,
            "  {:LABEL$} PL011 at {:#010x}",
            "uart",
            p.uart.registers.start()
        )?;
        if let Some(irq) = p.uart.irq {
            write!(f, ", {irq}")?;
        }
        writeln!(f)?;
        self.write_virtio(f)
    }
}

impl Summary<'_, '_> {
    fn write_cpus(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.platform;
        write!(
            f,
            "  {:LABEL$} {} online of {}",
            "cpus",
            self.cpus_online,
            p.cpus.len()
        )?;
        match (p.psci, self.psci_version) {
            (Some(psci), Some(version)) => write!(f, ", PSCI {version} via {}", psci.conduit)?,
            (Some(psci), None) => write!(f, ", PSCI via {}", psci.conduit)?,
            (None, _) => {}
        }
        writeln!(f)?;
        for failure in self.cpu_failures {
            writeln!(
                f,
                "  {:LABEL$} MPIDR {:#x} offline: {}",
                "", failure.mpidr, failure.reason
            )?;
        }
        Ok(())
    }

    fn write_memory(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.platform;
        write!(f, "  {:LABEL$} {}:", "ram", ByteSize(p.total_memory()))?;
        for bank in &p.memory {
            write!(f, " {bank}")?;
        }
        writeln!(f)?;
        for reserved in &p.reserved {
            writeln!(
                f,
                "  {:LABEL$} {} ({})",
                "reserved", reserved.range, reserved.name
            )?;
        }
        writeln!(
            f,
            "  {:LABEL$} image {} ({}), heap {}, {} free",
            "aerie",
            self.image,
            ByteSize(self.image.size()),
            ByteSize(self.heap_size),
            ByteSize(self.free_memory)
        )
    }

    fn write_virtio(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = self.platform.virtio_mmio.len();
        if slots == 0 {
            return writeln!(f, "  {:LABEL$} none", "virtio-mmio");
        }
        let devices = self.virtio_devices.len();
        let plural = if devices == 1 { "" } else { "s" };
        writeln!(
            f,
            "  {:LABEL$} {slots} slots, {devices} device{plural}",
            "virtio-mmio"
        )?;
        for device in self.virtio_devices {
            write!(
                f,
                "  {:LABEL$} {} at {:#010x} (virtio-mmio v{})",
                "",
                device.device.name(),
                device.registers.start(),
                device.version
            )?;
            if let Some(capacity) = device.capacity {
                write!(f, ", {}", ByteSize(capacity))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A frequency in Hz shown as MHz, e.g. `62.5 MHz`.
struct Frequency(u64);

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let khz = self.0 / 1000;
        let (mhz, fraction) = (khz / 1000, khz % 1000);
        if fraction == 0 {
            write!(f, "{mhz} MHz")
        } else {
            let decimals = if fraction % 100 == 0 { 1 } else { 3 };
            let shown = if decimals == 1 {
                fraction / 100
            } else {
                fraction
            };
            write!(f, "{mhz}.{shown:0decimals$} MHz")
        }
    }
}

/// One line describing the GIC.
struct GicSummary<'g>(&'g Gic);

impl fmt::Display for GicSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Gic::V3 {
                distributor,
                redistributors,
                its,
                ..
            } => {
                write!(
                    f,
                    "GICv3: distributor {:#010x}, redistributors",
                    distributor.start()
                )?;
                for region in redistributors {
                    write!(f, " {region}")?;
                }
                if let Some(its) = its {
                    write!(f, ", ITS {:#010x}", its.start())?;
                }
            }
            Gic::V2 {
                distributor,
                cpu_interface,
                hypervisor_interface,
                virtual_cpu_interface,
                ..
            } => {
                write!(
                    f,
                    "GICv2: distributor {:#010x}, cpu {:#010x}, hyp {:#010x}, vcpu {:#010x}",
                    distributor.start(),
                    cpu_interface.start(),
                    hypervisor_interface.start(),
                    virtual_cpu_interface.start()
                )?;
            }
        }
        if let Some(irq) = self.0.maintenance() {
            write!(f, ", maintenance {irq}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn cpu_identity_names_known_cores() {
        // Cortex-A72 r0p3 as QEMU reports it: implementer 0x41, variant 0, arch 0xf,
        // part 0xd08, revision 3.
        assert_eq!(
            CpuIdentity(0x410f_d083).to_string(),
            "Arm Cortex-A72 r0p3 (MIDR 0x410fd083)"
        );
        assert_eq!(CpuIdentity(0x414f_d0b1).name(), Some("Cortex-A76"));
        assert_eq!(
            CpuIdentity(0x000f_0510).to_string(),
            "implementer 0x00 part 0x051 (MIDR 0x000f0510)"
        );
    }

    #[test]
    fn frequencies() {
        assert_eq!(Frequency(62_500_000).to_string(), "62.5 MHz");
        assert_eq!(Frequency(54_000_000).to_string(), "54 MHz");
        assert_eq!(Frequency(19_200_000).to_string(), "19.2 MHz");
        assert_eq!(Frequency(24_576_000).to_string(), "24.576 MHz");
    }

    #[test]
    fn summary_of_qemu_virt() {
        let path = std::format!(
            "{}/../tests/fixtures/qemu-virt-gicv3.dtb",
            env!("CARGO_MANIFEST_DIR")
        );
        let blob = std::fs::read(path).unwrap();
        let platform = Platform::parse(&blob).unwrap();
        let virtio = [HostVirtioDevice {
            registers: platform
                .virtio_mmio
                .iter()
                .find(|slot| slot.registers.start() == 0x0a00_3e00)
                .unwrap()
                .registers,
            device: DeviceType::from_id(2),
            version: 1,
            capacity: Some(256 << 20),
        }];
        let failures = [CpuFailure {
            mpidr: 3,
            reason: "PSCI CPU_ON: DENIED",
        }];
        let summary = Summary {
            platform: &platform,
            version: "0.1.0",
            entered_el: 2,
            cpu: CpuIdentity(0x410f_d083),
            counter_hz: 62_500_000,
            cpus_online: 3,
            cpu_failures: &failures,
            psci_version: Some(PsciVersion { major: 1, minor: 1 }),
            image: Range::from_start_size(0x4020_0000, 0x8_0000).unwrap(),
            free_memory: 1000 << 20,
            heap_size: 8 << 20,
            virtio_devices: &virtio,
        }
        .to_string();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[0], "Aerie 0.1.0 hardware summary");
        let line = |label: &str| {
            lines
                .iter()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("no '{label}' line in\n{summary}"))
                .to_string()
        };
        assert!(line("machine").ends_with("machine      linux,dummy-virt"));
        assert!(
            line("cpu ").contains(
                "Arm Cortex-A72 r0p3 (MIDR 0x410fd083), entered at EL2, counter 62.5 MHz"
            )
        );
        assert!(line("cpus").ends_with("3 online of 4, PSCI 1.1 via smc"));
        assert!(summary.contains("MPIDR 0x3 offline: PSCI CPU_ON: DENIED"));
        assert!(line("ram").ends_with("1 GiB: 0x40000000..0x80000000"));
        assert!(
            line("aerie")
                .contains("image 0x40200000..0x40280000 (512 KiB), heap 8 MiB, 1000 MiB free")
        );
        assert!(line("gic").contains("gic          GICv3: distributor 0x08000000, redistributors 0x080a0000..0x09000000, ITS 0x08080000"));
        assert!(line("gic").ends_with("maintenance PPI 9 (INTID 25)"));
        assert!(line("timer").contains("virtual INTID 27, hypervisor INTID 26, physical INTID 30"));
        assert!(line("uart").ends_with("PL011 at 0x09000000, SPI 1 (INTID 33)"));
        assert!(line("virtio-mmio").ends_with("32 slots, 1 device"));
        assert!(summary.contains("block at 0x0a003e00 (virtio-mmio v1), 256 MiB"));
    }
}
