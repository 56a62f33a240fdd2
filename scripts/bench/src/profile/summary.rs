//! The iterations summed up for people: instructions per iteration (median, min,
//! max) and the median iteration by function, optionally by block.

use std::fmt::Write;

use super::cut::{Iteration, Place};
use super::symbols::Elf;
use crate::bench::report;
use crate::bench::stats::Stats;

/// The iterations' totals, and the iteration closest to their median.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary<'a> {
    /// Median, min and max of the totals.
    pub stats: Stats,
    /// The (first) iteration whose total is closest to the median, and its index.
    pub median: (usize, &'a Iteration),
}

impl<'a> Summary<'a> {
    /// Sums up `iterations`; `None` when there are none.
    pub fn of(iterations: &'a [Iteration]) -> Option<Self> {
        let totals: Vec<f64> = iterations.iter().map(|i| i.total as f64).collect();
        let stats = Stats::of(&totals)?;
        let median = iterations.iter().enumerate().min_by(|(_, a), (_, b)| {
            let distance = |i: &Iteration| (i.total as f64 - stats.median).abs();
            distance(a).total_cmp(&distance(b))
        })?;
        Some(Self { stats, median })
    }

    /// The text `cargo xtask profile` prints: with `detail`, each function's blocks
    /// under it.
    pub fn render(&self, detail: bool) -> String {
        let (index, iteration) = self.median;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "instructions per iteration ({} iterations): median {}, min {}, max {}",
            self.stats.count(),
            number(self.stats.median),
            number(self.stats.min),
            number(self.stats.max)
        );
        let _ = writeln!(
            text,
            "the median iteration (number {} of {}), {} instructions, by function:",
            index + 1,
            self.stats.count(),
            number(iteration.total as f64)
        );
        let _ = writeln!(text, "{:>8}  {:<5}  function", "instr.", "elf");
        let mut places: Vec<(&Place, u64)> = iteration
            .by_place
            .iter()
            .map(|(place, count)| (place, *count))
            .collect();
        places.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (place, count) in places {
            let elf = place.elf.map_or("?", Elf::name);
            let _ = writeln!(text, "{count:>8}  {elf:<5}  {}", place.name);
            if detail {
                render_blocks(&mut text, iteration, place);
            }
        }
        let by_elf = |elf| {
            iteration
                .by_place
                .iter()
                .filter(|(place, _)| place.elf == elf)
                .map(|(_, count)| count)
                .sum::<u64>()
        };
        let _ = write!(
            text,
            "{:>8}  total: aerie {}, guest {}",
            iteration.total,
            by_elf(Some(Elf::Aerie)),
            by_elf(Some(Elf::Guest))
        );
        let unknown = by_elf(None);
        if unknown > 0 {
            let _ = write!(text, ", no symbol {unknown}");
        }
        if iteration.by_cpu.len() > 1 {
            let cpus: Vec<String> = iteration
                .by_cpu
                .iter()
                .map(|(cpu, count)| format!("CPU {cpu} {count}"))
                .collect();
            let _ = write!(text, "; {}", cpus.join(", "));
        }
        text.push('\n');
        text
    }
}

/// The blocks that start in `place`, most instructions first: each as its address,
/// its length, and how many times it ran if more than once.
fn render_blocks(text: &mut String, iteration: &Iteration, place: &Place) {
    let Some(blocks) = iteration.blocks.get(place) else {
        return;
    };
    let mut blocks: Vec<_> = blocks.iter().collect();
    blocks.sort_by(|a, b| {
        (b.0.length * b.1)
            .cmp(&(a.0.length * a.1))
            .then_with(|| a.0.start.cmp(&b.0.start))
    });
    for (block, times) in blocks {
        let repeat = if *times > 1 {
            format!(" x {times}")
        } else {
            String::new()
        };
        let _ = writeln!(
            text,
            "{:>8}  {:<5}    block {:#x}, {} instr.{repeat}",
            block.length * times,
            "",
            block.start,
            block.length
        );
    }
}

/// A count with thousands separators, with one decimal only when it has one (the
/// median of an even number).
fn number(value: f64) -> String {
    report::number(value, if value.fract() == 0.0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::cut::Block;
    use std::collections::BTreeMap;

    fn place(elf: Option<Elf>, name: &str) -> Place {
        Place {
            elf,
            name: name.into(),
        }
    }

    fn iteration(aerie: u64, guest: u64) -> Iteration {
        let handler = place(Some(Elf::Aerie), "aerie_hyp::exit::handle");
        let mark = place(Some(Elf::Guest), "bench_mark_hvc_psci_version");
        let mut blocks = BTreeMap::new();
        blocks.insert(
            handler.clone(),
            BTreeMap::from([
                (
                    Block {
                        start: 0x4026_0000,
                        length: aerie - 4,
                    },
                    1,
                ),
                (
                    Block {
                        start: 0x4026_0100,
                        length: 2,
                    },
                    2,
                ),
            ]),
        );
        Iteration {
            total: aerie + guest,
            by_place: BTreeMap::from([(handler, aerie), (mark, guest)]),
            by_cpu: BTreeMap::from([(0, aerie + guest)]),
            blocks,
        }
    }

    #[test]
    fn the_median_iteration_is_shown_by_function() {
        let iterations = [iteration(190, 9), iteration(180, 9), iteration(185, 9)];
        let summary = Summary::of(&iterations).unwrap();
        assert_eq!(summary.stats.median, 194.0);
        assert_eq!(summary.median.0, 2);
        let text = summary.render(false);
        assert_eq!(
            text,
            "instructions per iteration (3 iterations): median 194, min 189, max 199\n\
             the median iteration (number 3 of 3), 194 instructions, by function:\n  \
             instr.  elf    function\n     \
                185  aerie  aerie_hyp::exit::handle\n       \
                  9  guest  bench_mark_hvc_psci_version\n     \
                194  total: aerie 185, guest 9\n"
        );
        let detailed = summary.render(true);
        assert!(
            detailed.contains(
                "     185  aerie  aerie_hyp::exit::handle\n     \
                      181           block 0x40260000, 181 instr.\n       \
                        4           block 0x40260100, 2 instr. x 2\n"
            ),
            "{detailed}"
        );
    }

    #[test]
    fn even_counts_two_cpus_and_unknown_code() {
        let mut odd = iteration(100, 10);
        odd.by_place.insert(place(None, "?"), 1);
        odd.total += 1;
        odd.by_cpu = BTreeMap::from([(0, 60), (1, 51)]);
        let iterations = [iteration(100, 10), odd];
        let summary = Summary::of(&iterations).unwrap();
        assert_eq!(summary.stats.median, 110.5);
        assert_eq!(summary.median.0, 0, "the first of the closest");
        assert!(summary.render(false).starts_with(
            "instructions per iteration (2 iterations): median 110.5, min 110, max 111\n"
        ));
        let odd_alone = [iterations[1].clone()];
        let text = Summary::of(&odd_alone).unwrap().render(false);
        assert!(
            text.ends_with("total: aerie 100, guest 10, no symbol 1; CPU 0 60, CPU 1 51\n"),
            "{text}"
        );
        assert!(Summary::of(&[]).is_none());
    }
}
