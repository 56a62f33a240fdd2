//! Cutting the stream of executed instructions into iterations at a marker address,
//! and counting each iteration's instructions by function, CPU and straight-line
//! run of code.
//!
//! The log is taken with one instruction per translation block, so every block
//! entered is one instruction executed, unless QEMU says right after that it did not
//! run it ([`Event::NotRun`]): each entry waits for the next event before it counts.

use std::collections::BTreeMap;

use super::symbols::{Elf, Symbols};
use super::trace::Event;

/// The size of an A64 instruction.
const INSTRUCTION_BYTES: u64 = 4;

/// Where an instruction is: a function of Aerie or of the guest, or no known one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// The ELF, `None` for an address no symbol covers.
    pub elf: Option<Elf>,
    /// The function's demangled name, or `?`.
    pub name: String,
}

impl Place {
    /// The place of `pc` in `symbols`.
    fn of(pc: u64, symbols: &Symbols) -> Self {
        match symbols.at(pc) {
            Some(symbol) => Self {
                elf: Some(symbol.elf),
                name: symbol.name.clone(),
            },
            None => Self {
                elf: None,
                name: "?".to_string(),
            },
        }
    }
}

/// A straight-line run of instructions: from `start`, `length` instructions at
/// consecutive addresses on one CPU (what QEMU would make one translation block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block {
    /// The first instruction's address.
    pub start: u64,
    /// How many instructions.
    pub length: u64,
}

/// One iteration's instructions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Iteration {
    /// All of them.
    pub total: u64,
    /// By function.
    pub by_place: BTreeMap<Place, u64>,
    /// By QEMU CPU index.
    pub by_cpu: BTreeMap<u32, u64>,
    /// How many times each block ran, by the function of its first instruction.
    pub blocks: BTreeMap<Place, BTreeMap<Block, u64>>,
}

/// A block being followed on one CPU.
#[derive(Debug, Clone, Copy)]
struct Run {
    block: Block,
    place_pc: u64,
}

/// Follows the events and keeps the iterations between markers.
#[derive(Debug)]
pub struct Cutter<'a> {
    symbols: &'a Symbols,
    marker: u64,
    skip: usize,
    wanted: usize,
    pending: Option<(u32, u64)>,
    current: Option<Iteration>,
    runs: BTreeMap<u32, Run>,
    markers: usize,
    iterations: Vec<Iteration>,
}

impl<'a> Cutter<'a> {
    /// Cuts at each execution of `marker`, drops the first `skip` whole iterations
    /// (the first translations of one instruction per block), and keeps `wanted`.
    pub fn new(symbols: &'a Symbols, marker: u64, skip: usize, wanted: usize) -> Self {
        Self {
            symbols,
            marker,
            skip,
            wanted,
            pending: None,
            current: None,
            runs: BTreeMap::new(),
            markers: 0,
            iterations: Vec::new(),
        }
    }

    /// Takes one event in.
    pub fn event(&mut self, event: Event) {
        match event {
            Event::Entered { cpu, pc } => {
                if let Some((cpu, pc)) = self.pending.replace((cpu, pc)) {
                    self.executed(cpu, pc);
                }
            }
            Event::NotRun { pc } => {
                if self.pending.is_some_and(|(_, pending)| pending == pc) {
                    self.pending = None;
                }
            }
        }
    }

    /// Whether the wanted iterations are in.
    pub fn complete(&self) -> bool {
        self.iterations.len() >= self.wanted
    }

    /// How many iterations are wanted.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// How many complete iterations are in so far.
    pub fn measured(&self) -> usize {
        self.iterations.len()
    }

    /// How many times the marker ran so far.
    pub fn markers(&self) -> usize {
        self.markers
    }

    /// The complete iterations kept (at most the wanted number).
    pub fn into_iterations(mut self) -> Vec<Iteration> {
        self.iterations.truncate(self.wanted);
        self.iterations
    }

    fn executed(&mut self, cpu: u32, pc: u64) {
        if self.complete() {
            return;
        }
        if pc == self.marker {
            if let Some(mut ended) = self.current.take() {
                self.close_runs(&mut ended);
                if self.markers > self.skip {
                    self.iterations.push(ended);
                }
            }
            self.markers += 1;
            self.current = Some(Iteration::default());
        }
        let Some(iteration) = self.current.as_mut() else {
            return;
        };
        iteration.total += 1;
        *iteration
            .by_place
            .entry(Place::of(pc, self.symbols))
            .or_default() += 1;
        *iteration.by_cpu.entry(cpu).or_default() += 1;
        match self.runs.get_mut(&cpu) {
            Some(run) if run.block.start + run.block.length * INSTRUCTION_BYTES == pc => {
                run.block.length += 1;
            }
            _ => {
                let started = Run {
                    block: Block {
                        start: pc,
                        length: 1,
                    },
                    place_pc: pc,
                };
                if let Some(run) = self.runs.insert(cpu, started) {
                    count_run(iteration, run, self.symbols);
                }
            }
        }
    }

    fn close_runs(&mut self, iteration: &mut Iteration) {
        for (_, run) in std::mem::take(&mut self.runs) {
            count_run(iteration, run, self.symbols);
        }
    }
}

fn count_run(iteration: &mut Iteration, run: Run, symbols: &Symbols) {
    *iteration
        .blocks
        .entry(Place::of(run.place_pc, symbols))
        .or_default()
        .entry(run.block)
        .or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::symbols::Symbol;

    pub(crate) fn symbols() -> Symbols {
        let symbol = |start, size, name: &str, elf| Symbol {
            start,
            size: Some(size),
            name: name.into(),
            elf,
        };
        Symbols::new(vec![
            symbol(0x1000, 0x100, "guest_loop", Elf::Guest),
            symbol(0x1100, 0x10, "bench_mark", Elf::Guest),
            symbol(0x8000, 0x800, "aerie::vectors", Elf::Aerie),
            symbol(0x9000, 0x100, "aerie::handle", Elf::Aerie),
        ])
    }

    fn entered(cpu: u32, pc: u64) -> Event {
        Event::Entered { cpu, pc }
    }

    /// One iteration of a register row: the loop calls the marker, whose HVC traps
    /// to Aerie, which returns to the marker's `ret`.
    fn one_call(extra_handler: u64) -> Vec<Event> {
        let mut events = vec![entered(0, 0x1100), entered(0, 0x1104)];
        events.extend((0..3).map(|i| entered(0, 0x8400 + 4 * i)));
        events.extend((0..2 + extra_handler).map(|i| entered(0, 0x9000 + 4 * i)));
        events.extend([entered(0, 0x1108), entered(0, 0x1010), entered(0, 0x1014)]);
        events
    }

    #[test]
    fn iterations_are_cut_at_the_marker() {
        let symbols = symbols();
        let mut cutter = Cutter::new(&symbols, 0x1100, 1, 3);
        // Logging starts mid-iteration: what comes before the first marker is not
        // an iteration.
        cutter.event(entered(0, 0x1014));
        for extra in [5, 0, 1, 0, 7] {
            for event in one_call(extra) {
                cutter.event(event);
            }
        }
        assert!(cutter.complete());
        assert_eq!(cutter.markers(), 5);
        let iterations = cutter.into_iterations();
        // The first whole iteration (5 extra) is skipped; the next three are kept.
        let totals: Vec<u64> = iterations.iter().map(|i| i.total).collect();
        assert_eq!(totals, [10, 11, 10]);
        let second = &iterations[1];
        let by_name: Vec<(&str, u64)> = second
            .by_place
            .iter()
            .map(|(place, n)| (place.name.as_str(), *n))
            .collect();
        assert_eq!(
            by_name,
            [
                ("aerie::handle", 3),
                ("aerie::vectors", 3),
                ("bench_mark", 3),
                ("guest_loop", 2)
            ]
        );
        assert_eq!(second.by_cpu[&0], 11);
        let mark = Place {
            elf: Some(Elf::Guest),
            name: "bench_mark".into(),
        };
        let blocks: Vec<_> = second.blocks[&mark].iter().collect();
        assert_eq!(
            blocks,
            [
                (
                    &Block {
                        start: 0x1100,
                        length: 2
                    },
                    &1
                ),
                (
                    &Block {
                        start: 0x1108,
                        length: 1
                    },
                    &1
                )
            ]
        );
    }

    #[test]
    fn a_block_that_did_not_run_is_not_counted() {
        let symbols = symbols();
        let mut cutter = Cutter::new(&symbols, 0x1100, 0, 1);
        cutter.event(entered(0, 0x1100));
        cutter.event(entered(0, 0x1104));
        cutter.event(Event::NotRun { pc: 0x1104 });
        cutter.event(entered(0, 0x1104));
        cutter.event(entered(0, 0x5000));
        // A marker that did not run is no boundary.
        cutter.event(entered(0, 0x1100));
        cutter.event(Event::NotRun { pc: 0x1100 });
        assert!(!cutter.complete());
        cutter.event(entered(0, 0x1100));
        cutter.event(entered(0, 0x1104));
        assert!(cutter.complete());
        let iteration = &cutter.into_iterations()[0];
        assert_eq!(iteration.total, 3);
        let unknown = Place {
            elf: None,
            name: "?".into(),
        };
        assert_eq!(iteration.by_place[&unknown], 1);
    }

    #[test]
    fn both_cpus_count_and_their_runs_stay_apart() {
        let symbols = symbols();
        let mut cutter = Cutter::new(&symbols, 0x1100, 0, 1);
        for event in [
            entered(0, 0x1100),
            entered(1, 0x9000),
            entered(0, 0x1104),
            entered(1, 0x9004),
            entered(1, 0x9008),
            entered(0, 0x1100),
            entered(0, 0x1104),
        ] {
            cutter.event(event);
        }
        let iteration = &cutter.into_iterations()[0];
        assert_eq!(iteration.total, 5);
        assert_eq!(iteration.by_cpu[&0], 2);
        assert_eq!(iteration.by_cpu[&1], 3);
        let handle = Place {
            elf: Some(Elf::Aerie),
            name: "aerie::handle".into(),
        };
        assert_eq!(
            iteration.blocks[&handle].keys().collect::<Vec<_>>(),
            [&Block {
                start: 0x9000,
                length: 3
            }]
        );
    }
}
