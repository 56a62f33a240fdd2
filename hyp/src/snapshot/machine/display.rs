//! A readable summary of a snapshot's metadata (what `cargo xtask snapshot info`
//! prints).

use core::fmt;

use super::metadata::{DeviceDescription, DeviceKind, GicKind, Metadata};
use crate::cpu_model;
use crate::snapshot::PAGE_SIZE;
use crate::units::ByteSize;

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VgicV3 => "vGICv3",
            Self::VgicV2 => "vGICv2",
            Self::Pl011 => "PL011 UART",
            Self::TestDevice => "Aerie test device",
            Self::VirtioBlock => "virtio-blk",
            Self::VirtioConsole => "virtio-console",
            Self::VirtioRng => "virtio-rng",
            Self::Pl031 => "PL031 real-time clock",
            Self::CfiFlash => "CFI flash bank",
        })
    }
}

impl fmt::Display for GicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V3 => "GICv3",
            Self::V2 => "GICv2",
            Self::None => "none",
        })
    }
}

/// Text from the snapshot with control characters escaped, so that a damaged or
/// hostile string cannot drive the terminal it is printed on.
struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// A frequency in Hz, printed in MHz without trailing zeros (`62.5 MHz`).
struct Frequency(u64);

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if fraction == 0 {
            return write!(f, "{whole} MHz");
        }
        let mut digits = 6;
        let mut fraction = fraction;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        write!(f, "{whole}.{fraction:0digits$} MHz")
    }
}

/// A duration of `ticks` at `per_second` ticks per second, printed in seconds with
/// `decimals` decimals, rounded.
struct Seconds {
    ticks: u64,
    per_second: u64,
    decimals: u32,
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10u128.pow(self.decimals);
        let per_second = u128::from(self.per_second.max(1));
        let scaled = (u128::from(self.ticks) * scale + per_second / 2) / per_second;
        let (whole, fraction) = (scaled / scale, scaled % scale);
        if self.decimals == 0 {
            return write!(f, "{whole} s");
        }
        let width = self.decimals as usize;
        write!(f, "{whole}.{fraction:0width$} s")
    }
}

/// Label column width.
const LABEL: usize = 14;

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ram_end = self.ram.base.saturating_add(self.ram.size);
        writeln!(
            f,
            "{:LABEL$}{}, written by Aerie {}",
            "format",
            Printable(&self.format),
            Printable(&self.aerie_version)
        )?;
        writeln!(f, "{:LABEL$}{}", "vCPUs", self.vcpus)?;
        writeln!(
            f,
            "{:LABEL$}{} at {:#010x}..{:#010x}",
            "RAM",
            ByteSize(self.ram.size),
            self.ram.base,
            ram_end
        )?;
        writeln!(f, "{:LABEL$}{}", "GIC", self.gic)?;
        writeln!(
            f,
            "{:LABEL$}{}",
            "counter",
            Frequency(self.counter_frequency)
        )?;
        writeln!(
            f,
            "{:LABEL$}MIDR {:#010x}; the guest's PFR0 {:#x}, ISAR0 {:#x}, ISAR1 {:#x}, MMFR0 {:#x}",
            "cpu",
            self.cpu.midr,
            self.cpu.id(cpu_model::ID_AA64PFR0_EL1),
            self.cpu.id(cpu_model::ID_AA64ISAR0_EL1),
            self.cpu.id(cpu_model::ID_AA64ISAR1_EL1),
            self.cpu.id(cpu_model::ID_AA64MMFR0_EL1)
        )?;
        writeln!(
            f,
            "{:LABEL$}{} since the guest's counter started (virtual count {:#x}, physical {:#x})",
            "guest time",
            Seconds {
                ticks: self.clock.virtual_count,
                per_second: self.counter_frequency,
                decimals: 3,
            },
            self.clock.virtual_count,
            self.clock.physical_count
        )?;
        writeln!(f, "{:LABEL$}{}", "devices", self.devices.len())?;
        for device in &self.devices {
            writeln!(f, "  {device}")?;
        }
        let page = PAGE_SIZE as u64;
        let memory = self.memory;
        writeln!(
            f,
            "{:LABEL$}{} stored of {} ({} of {} pages, {} ranges; zero pages are not stored)",
            "memory",
            ByteSize(memory.stored_pages.saturating_mul(page)),
            ByteSize(memory.pages.saturating_mul(page)),
            memory.stored_pages,
            memory.pages,
            memory.chunks
        )?;
        writeln!(
            f,
            "{:LABEL$}{}",
            "took",
            Seconds {
                ticks: self.took_micros,
                per_second: 1_000_000,
                decimals: 2,
            }
        )?;
        write!(
            f,
            "{:LABEL$}{}",
            "command line",
            Printable(&self.guest_command_line)
        )
    }
}

impl fmt::Display for DeviceDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // With the two spaces the summary indents it by, the kind starts in the
        // value column.
        write!(
            f,
            "{:#010x}  {}, {}",
            self.base,
            self.kind,
            ByteSize(self.size)
        )?;
        if let Some(intid) = self.intid {
            write!(f, ", INTID {intid}")?;
        }
        if let Some(disk) = &self.disk {
            write!(
                f,
                ", disk \"{}\" ({}, CRC-32 {:08x})",
                Printable(&disk.serial),
                ByteSize(disk.sectors.saturating_mul(512)),
                disk.crc32
            )?;
        }
        Ok(())
    }
}
