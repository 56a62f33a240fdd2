//! The functions of Aerie's and the bench guest's ELF files, as `nm` lists them
//! (demangled, with sizes), to name the code at an address.
//!
//! Both run at their link addresses (Aerie at EL2, the guest at EL1 with its MMU
//! off), which do not overlap, so one address names one function.

use std::path::Path;
use std::process::Command;

use xtask::error::{Error, Result};
use xtask::process;

/// Which ELF a function is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elf {
    /// Aerie.
    Aerie,
    /// The bench guest.
    Guest,
}

impl Elf {
    /// The name the breakdown shows.
    pub fn name(self) -> &'static str {
        match self {
            Elf::Aerie => "aerie",
            Elf::Guest => "guest",
        }
    }
}

/// A function (or a label of assembly code, which has no size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Its first address.
    pub start: u64,
    /// Its size in bytes, when the ELF gives one.
    pub size: Option<u64>,
    /// Its demangled name.
    pub name: String,
    /// Where it is.
    pub elf: Elf,
}

/// The code symbols of one or more ELF files, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    sorted: Vec<Symbol>,
}

impl Symbols {
    /// The symbols of `list`.
    pub fn new(mut list: Vec<Symbol>) -> Self {
        list.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
        Self { sorted: list }
    }

    /// Reads the code symbols of `path` with `nm`.
    pub fn read(path: &Path, elf: Elf) -> Result<Vec<Symbol>> {
        let mut nm = Command::new("nm");
        nm.args(["--demangle", "--print-size", "--defined-only"])
            .arg(path);
        let listing = process::output(&mut nm).map_err(|error| {
            Error::new(format!(
                "cannot list the symbols of {}: {error}",
                path.display()
            ))
        })?;
        Ok(parse_nm(&listing, elf))
    }

    /// The function `pc` is in: the last one starting at or before it, unless `pc`
    /// is past that one's size.
    pub fn at(&self, pc: u64) -> Option<&Symbol> {
        let after = self.sorted.partition_point(|symbol| symbol.start <= pc);
        let symbol = self.sorted[..after].last()?;
        match symbol.size {
            Some(size) if pc >= symbol.start.saturating_add(size.max(1)) => None,
            _ => Some(symbol),
        }
    }

    /// The address of the symbol called `name` in `elf`.
    pub fn address_of(&self, name: &str, elf: Elf) -> Option<u64> {
        self.sorted
            .iter()
            .find(|symbol| symbol.elf == elf && symbol.name == name)
            .map(|symbol| symbol.start)
    }
}

/// The code symbols of `nm --print-size` output: text (`t`, `T`) and weak (`w`,
/// `W`) symbols, without the ELF mapping symbols (`$x`, `$d`: where code and data
/// start, not functions).
pub fn parse_nm(listing: &str, elf: Elf) -> Vec<Symbol> {
    listing
        .lines()
        .filter_map(|line| {
            let (address, rest) = line.split_once(' ')?;
            let start = u64::from_str_radix(address, 16).ok()?;
            let (size, rest) = match rest.split_once(' ')? {
                (size, rest) if size.len() > 1 => (u64::from_str_radix(size, 16).ok(), rest),
                _ => (None, rest),
            };
            let (kind, name) = rest.split_once(' ')?;
            let code = matches!(kind, "t" | "T" | "w" | "W");
            (code && !name.starts_with('$')).then(|| Symbol {
                start,
                size,
                name: name.to_string(),
                elf,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NM: &str = "\
0000000040000800 t bench_vectors
0000000040000f88 t bench_irq_entry
0000000040002b64 0000000000000100 T bench_irq
0000000040002c64 0000000000000040 T bench_unexpected
0000000040002c64 t $x
0000000040008710 0000000000000008 b bench::TIMER_SEEN
0000000040003000 0000000000000020 t <bench::Console as core::fmt::Write>::write_str
";

    #[test]
    fn nm_listings_are_read() {
        let symbols = parse_nm(NM, Elf::Guest);
        let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bench_vectors",
                "bench_irq_entry",
                "bench_irq",
                "bench_unexpected",
                "<bench::Console as core::fmt::Write>::write_str"
            ]
        );
        assert_eq!(symbols[2].size, Some(0x100));
        assert_eq!(symbols[0].size, None);
    }

    #[test]
    fn addresses_name_their_function() {
        let mut list = parse_nm(NM, Elf::Guest);
        list.push(Symbol {
            start: 0x4020_0000,
            size: Some(0x40),
            name: "aerie::start".into(),
            elf: Elf::Aerie,
        });
        let symbols = Symbols::new(list);
        let name = |pc| symbols.at(pc).map(|symbol| symbol.name.as_str());
        assert_eq!(name(0x4000_0800), Some("bench_vectors"));
        assert_eq!(
            name(0x4000_0f00),
            Some("bench_vectors"),
            "no size: up to the next"
        );
        assert_eq!(name(0x4000_2b64), Some("bench_irq"));
        assert_eq!(name(0x4000_2c60), Some("bench_irq"));
        assert_eq!(name(0x4000_2cb0), None, "past bench_unexpected's end");
        assert_eq!(name(0x4000_0000), None, "before every symbol");
        assert_eq!(symbols.at(0x4020_0010).unwrap().elf, Elf::Aerie);
        assert_eq!(name(0x4020_0040), None);
        assert_eq!(
            symbols.address_of("bench_irq", Elf::Guest),
            Some(0x4000_2b64)
        );
        assert_eq!(symbols.address_of("bench_irq", Elf::Aerie), None);
    }
}
