//! The report's figures, drawn from its tables as SVG with plotters: exit costs of
//! bare QEMU, Aerie and Xen (log scale), the boot and virtio-blk ratios with their
//! range and every round, and snapshot save and restore times against QEMU's. A figure
//! is a pure function of the report's data (no dates, no randomness), so the same
//! `latest.json` always draws the same bytes.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

use super::report::{Report, Table, number};
use super::stats::Stats;

/// One figure of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exit costs, instructions per operation, log scale.
    Exits,
    /// Linux boot, Aerie's and Xen's ratios to no hypervisor.
    Boot,
    /// virtio-blk throughput, the same ratios.
    Disk,
    /// Snapshot save and restore times, Aerie and QEMU's migration.
    Snapshot,
}

impl Kind {
    /// Every figure, in the report's order.
    pub const ALL: [Kind; 4] = [Kind::Boot, Kind::Disk, Kind::Exits, Kind::Snapshot];

    /// The file beside `latest.md`.
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Exits => "exits.svg",
            Kind::Boot => "boot.svg",
            Kind::Disk => "disk.svg",
            Kind::Snapshot => "snapshot.svg",
        }
    }

    /// The title, also the Markdown's alternative text.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Exits => "Exit costs under icount, each system measured (log scale)",
            Kind::Boot => "Linux boot to userspace: time relative to no hypervisor, per round",
            Kind::Disk => "virtio-blk throughput relative to no hypervisor, per round",
            Kind::Snapshot => "Snapshot save and restore of a 256 MiB guest: Aerie and QEMU",
        }
    }

    /// The tables it draws, by id, each with the words that tell its rows apart.
    fn sources(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Exits => &[("exits", "")],
            Kind::Boot => &[("boot-wall", "wall clock"), ("boot-icount", "icount")],
            Kind::Disk => &[("virtio-blk", "")],
            Kind::Snapshot => &[("snapshot", "")],
        }
    }

    /// Whether the figure shows `name`, a row of one of its tables.
    fn shows(self, name: &str) -> bool {
        match self {
            // The snapshot table also has the boot for comparison.
            Kind::Snapshot => name.starts_with("save") || name.starts_with("restore"),
            _ => true,
        }
    }
}

/// A figure with the tables it is drawn from.
#[derive(Debug, Clone)]
pub struct Figure<'a> {
    /// Which figure.
    pub kind: Kind,
    /// Its tables, each with the words that tell its rows apart.
    tables: Vec<(&'a Table, &'static str)>,
}

/// The figures `report` has data for.
pub fn figures(report: &Report) -> Vec<Figure<'_>> {
    Kind::ALL
        .into_iter()
        .filter_map(|kind| {
            let tables: Vec<_> = kind
                .sources()
                .iter()
                .filter_map(|&(id, words)| {
                    let table = report.tables.iter().find(|table| table.id == id)?;
                    Some((table, words))
                })
                .collect();
            let figure = Figure { kind, tables };
            (!figure.groups().is_empty()).then_some(figure)
        })
        .collect()
}

/// One group of marks: a row, with one entry per system or ratio.
struct Group<'a> {
    name: String,
    entries: Vec<(&'a str, &'a Stats)>,
}

impl<'a> Figure<'a> {
    /// The table after which the Markdown shows it.
    pub fn after(&self) -> &str {
        self.tables
            .last()
            .map_or("", |(table, _)| table.id.as_str())
    }

    /// The rows drawn, each with its measured entries.
    fn groups(&self) -> Vec<Group<'a>> {
        let ratios = matches!(self.kind, Kind::Boot | Kind::Disk);
        let mut groups = Vec::new();
        for &(table, words) in &self.tables {
            let labels = if ratios {
                &table.ratio_columns
            } else {
                &table.columns
            };
            for row in table.rows.iter().filter(|row| self.kind.shows(&row.name)) {
                let values = if ratios { &row.ratios } else { &row.cells };
                let entries: Vec<_> = labels
                    .iter()
                    .zip(values)
                    .filter_map(|(label, stats)| Some((label.as_str(), stats.as_ref()?)))
                    .collect();
                if !entries.is_empty() {
                    let name = if words.is_empty() {
                        row.name.clone()
                    } else {
                        format!("{}, {words}", row.name)
                    };
                    groups.push(Group { name, entries });
                }
            }
        }
        groups
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let groups = self.groups();
        let table = self.tables[0].0;
        let chart = match self.kind {
            Kind::Exits => Chart {
                title: self.kind.title(),
                axis: format!("{} (log scale; bars: the median of the rounds)", table.unit),
                scale: Scale::Log,
                marks: Marks::Bars,
                decimals: table.decimals,
            },
            Kind::Snapshot => Chart {
                title: self.kind.title(),
                axis: "seconds, wall clock (bars: median; whiskers: min–max of the rounds)"
                    .to_string(),
                scale: Scale::Linear,
                marks: Marks::Bars,
                decimals: table.decimals,
            },
            Kind::Boot | Kind::Disk => Chart {
                title: self.kind.title(),
                axis: format!(
                    "ratio to no hypervisor within each round ({})",
                    if self.kind == Kind::Boot {
                        "time: lower is better"
                    } else {
                        "throughput: higher is better"
                    }
                ),
                scale: Scale::Linear,
                marks: Marks::Ranges,
                decimals: 2,
            },
        };
        chart
            .draw(&groups)
            .map_err(|error| format!("cannot draw {}: {error}", self.kind.file_name()))
    }
}

/// How values map onto the axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Linear,
    Log,
}

impl Scale {
    /// Where `value` sits on the axis (the log axis starts at 1).
    fn position(self, value: f64) -> f64 {
        match self {
            Scale::Linear => value,
            Scale::Log => value.max(1.0).log10(),
        }
    }
}

/// What marks a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marks {
    /// A bar to the median, whiskers over the range when the rounds differ.
    Bars,
    /// A line over the range, a tick at the median and a dot per round.
    Ranges,
}

/// A horizontal chart: one group of entries per row, top to bottom.
struct Chart {
    title: &'static str,
    axis: String,
    scale: Scale,
    marks: Marks,
    decimals: usize,
}

/// Pixels of height per entry.
const ENTRY_PX: u32 = 20;
/// Pixels between two groups.
const GROUP_GAP_PX: u32 = 16;
/// The figures' width in pixels.
const WIDTH: u32 = 1100;
/// The size of axis labels and row names.
const LABEL_FONT: u32 = 15;

/// The colour of a system, or of a ratio by its numerator: the same system, the
/// same colour in every figure.
fn colour(label: &str) -> RGBColor {
    if label.starts_with("Aerie") {
        RGBColor(31, 119, 180)
    } else if label.starts_with("Xen") {
        RGBColor(230, 120, 20)
    } else {
        RGBColor(130, 130, 130)
    }
}

/// Round axis steps: 1, 2 or 5 times a power of ten, about six across `span` (or
/// across 1 when there is no span).
fn step(span: f64) -> f64 {
    let span = if span > 0.0 && span.is_finite() {
        span
    } else {
        1.0
    };
    let rough = span / 6.0;
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

impl Chart {
    /// The value axis: from 0 (or 1 on the log scale; for ratios, from a round value
    /// under the smallest or 1×) to past the largest value, with room for its label.
    fn axis(&self, groups: &[Group]) -> Axis {
        let values = groups
            .iter()
            .flat_map(|group| &group.entries)
            .flat_map(|(_, stats)| [stats.min, stats.max]);
        let (mut low, mut high) = (0.0, 0.0);
        for value in values {
            let at = self.scale.position(value);
            low = f64::min(low, at);
            high = f64::max(high, at);
        }
        let (low, high, ticks) = match (self.scale, self.marks) {
            (Scale::Log, _) => {
                // Decades, with room for the last bar's label.
                let high = high + 0.5;
                let ticks = (0..=high as i32).map(f64::from).collect::<Vec<_>>();
                (0.0, high, ticks)
            }
            (Scale::Linear, Marks::Ranges) => {
                // Ratios: from a little under the smallest (or 1×) to the largest.
                let low_value = groups
                    .iter()
                    .flat_map(|group| &group.entries)
                    .map(|(_, stats)| stats.min)
                    .fold(1.0, f64::min);
                let step = step(high.max(1.0) - low_value);
                let low = (low_value / step).floor() * step;
                let high = high.max(1.0);
                let ticks = (0..)
                    .map(|k| low + k as f64 * step)
                    .take_while(|tick| *tick <= high + step * 0.5)
                    .collect::<Vec<_>>();
                (low, high + step * 0.9, ticks)
            }
            (Scale::Linear, Marks::Bars) => {
                let step = step(high);
                let ticks = (0..)
                    .map(|k| k as f64 * step)
                    .take_while(|tick| *tick <= high + step * 0.5)
                    .collect::<Vec<_>>();
                (low, high + step * 1.2, ticks)
            }
        };
        Axis {
            range: low..high,
            ticks,
        }
    }

    fn draw(&self, groups: &[Group]) -> Result<String, Box<dyn std::error::Error>> {
        // Series in the order they first appear, for the legend.
        let mut series: Vec<&str> = Vec::new();
        for (label, _) in groups.iter().flat_map(|group| &group.entries) {
            if !series.contains(label) {
                series.push(label);
            }
        }
        let per_group = series.len().max(1);
        let group_px = per_group as u32 * ENTRY_PX + GROUP_GAP_PX;
        let legend_entries = series.len() + if self.marks == Marks::Ranges { 3 } else { 0 };
        // The legend sits in empty space under the last row.
        let legend_slots = f64::from(legend_entries as u32 * 20 + 24) / f64::from(group_px);
        let slots = groups.len() as f64 + legend_slots;
        let height = 110 + (slots * group_px as f64) as u32;

        let axis = self.axis(groups);
        let tick_label = |at: &f64| match self.scale {
            Scale::Log => number(10f64.powf(*at), 0),
            Scale::Linear if self.marks == Marks::Ranges => format!("{}×", trimmed(*at)),
            Scale::Linear => trimmed(*at),
        };

        let longest = groups
            .iter()
            .map(|g| g.name.chars().count())
            .max()
            .unwrap_or(0);
        let label_area = (longest as f64 * f64::from(LABEL_FONT) * 0.5) as u32 + 20;
        let rows = groups.len();
        let row_y = |index: usize| (rows - 1 - index) as f64;
        let name_of = |y: &f64| {
            let index = rows as f64 - 1.0 - y.round();
            if (0.0..rows as f64).contains(&index) {
                groups[index as usize].name.clone()
            } else {
                String::new()
            }
        };
        let entry_y = |group: usize, entry: usize| {
            let within = per_group as f64 * f64::from(ENTRY_PX) / f64::from(group_px);
            let unit = within / per_group as f64;
            row_y(group) + within / 2.0 - unit * (entry as f64 + 0.5)
        };

        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 20))
                .margin(12)
                .margin_right(24)
                .x_label_area_size(50)
                .y_label_area_size(label_area)
                .build_cartesian_2d(
                    axis,
                    Axis {
                        range: -0.5 - legend_slots..rows as f64 - 0.5,
                        ticks: (0..rows).map(|i| i as f64).collect(),
                    },
                )?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc(self.axis.as_str())
                .x_label_formatter(&tick_label)
                .y_label_formatter(&name_of)
                .label_style(("sans-serif", LABEL_FONT))
                .axis_desc_style(("sans-serif", LABEL_FONT))
                .light_line_style(WHITE)
                .bold_line_style(RGBColor(225, 225, 225))
                .draw()?;

            if self.marks == Marks::Ranges {
                let one = self.scale.position(1.0);
                chart.draw_series([PathElement::new(
                    vec![(one, -0.5), (one, rows as f64 - 0.5)],
                    BLACK.stroke_width(1),
                )])?;
            }
            let half = 0.4 * f64::from(ENTRY_PX) / f64::from(group_px);
            let base = self
                .scale
                .position(if self.scale == Scale::Log { 1.0 } else { 0.0 });
            for &label in &series {
                let colour = colour(label);
                let (mut bars, mut lines, mut dots, mut ticks, mut texts) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (index, group) in groups.iter().enumerate() {
                    let Some(slot) = group.entries.iter().position(|(l, _)| *l == label) else {
                        continue;
                    };
                    let stats = group.entries[slot].1;
                    let y = entry_y(index, slot);
                    let at = |value: f64| self.scale.position(value);
                    let (min, median, max) = (at(stats.min), at(stats.median), at(stats.max));
                    let text = match self.marks {
                        Marks::Bars => {
                            bars.push(Rectangle::new(
                                [(base, y - half), (median, y + half)],
                                colour.filled(),
                            ));
                            // As the table: no range where it shows "all equal".
                            if number(stats.min, self.decimals) != number(stats.max, self.decimals)
                            {
                                lines.push(whisker(min, max, y, half * 0.6));
                            }
                            number(stats.median, self.decimals)
                        }
                        Marks::Ranges => {
                            lines.push(PathElement::new(
                                vec![(min, y), (max, y)],
                                colour.stroke_width(2),
                            ));
                            dots.extend(stats.samples.iter().map(|sample| {
                                Circle::new((at(*sample), y), 3, colour.mix(0.6).filled())
                            }));
                            ticks.push(PathElement::new(
                                vec![(median, y - half), (median, y + half)],
                                BLACK.stroke_width(3),
                            ));
                            format!("{}×", number(stats.median, 2))
                        }
                    };
                    texts.push(
                        EmptyElement::at((max, y)) + Text::new(text, (6, -7), ("sans-serif", 13)),
                    );
                }
                let legend = move |(x, y): (i32, i32)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                };
                if self.marks == Marks::Bars {
                    chart.draw_series(bars)?.label(label).legend(legend);
                    chart.draw_series(lines)?;
                } else {
                    chart.draw_series(lines)?.label(label).legend(legend);
                }
                chart.draw_series(dots)?;
                chart.draw_series(ticks)?;
                chart.draw_series(texts)?;
            }
            if self.marks == Marks::Ranges {
                let none = std::iter::empty::<Circle<(f64, f64), u32>>();
                chart
                    .draw_series(none.clone())?
                    .label("median of the rounds")
                    .legend(|(x, y)| {
                        PathElement::new(
                            vec![(x + 7, y - 7), (x + 7, y + 7)],
                            BLACK.stroke_width(3),
                        )
                    });
                chart
                    .draw_series(none.clone())?
                    .label("range: min–max of the rounds")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2))
                    });
                chart
                    .draw_series(none)?
                    .label("one round")
                    .legend(|(x, y)| Circle::new((x + 7, y), 3, BLACK.mix(0.6).filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(("sans-serif", 14))
                .background_style(WHITE)
                .border_style(RGBColor(180, 180, 180))
                .draw()?;
            root.present()?;
        }
        Ok(svg)
    }
}

/// A linear axis with the ticks given (plotters' own `f64` axes choose theirs).
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A min–max whisker at height `y`.
fn whisker(min: f64, max: f64, y: f64, cap: f64) -> PathElement<(f64, f64)> {
    PathElement::new(
        vec![
            (min, y - cap),
            (min, y + cap),
            (min, y),
            (max, y),
            (max, y - cap),
            (max, y + cap),
        ],
        BLACK.stroke_width(1),
    )
}

/// A tick value without trailing zeros (`0.5`, `2`, `1.25`).
fn trimmed(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Row;

    fn table(id: &str, columns: &[&str], ratios: &[&str], rows: &[(&str, Vec<&[f64]>)]) -> Table {
        let stats = |samples: &&[f64]| Stats::of(samples);
        Table {
            id: id.into(),
            title: format!("the {id} table"),
            about: String::new(),
            unit: "s".into(),
            decimals: 2,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            ratio_columns: ratios.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|(name, values)| Row {
                    name: name.to_string(),
                    cells: values[..columns.len()].iter().map(stats).collect(),
                    ratios: values[columns.len()..].iter().map(stats).collect(),
                    note: None,
                })
                .collect(),
        }
    }

    fn report(tables: Vec<Table>) -> Report {
        Report {
            generated: String::new(),
            source: String::new(),
            quick: true,
            only: None,
            pairs: 2,
            reproduce: String::new(),
            machine: Vec::new(),
            goals: Vec::new(),
            tables,
            not_yet: Vec::new(),
            notes: Vec::new(),
            commands: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn quick_run() -> Report {
        report(vec![
            table(
                "boot-wall",
                &["no hypervisor", "Aerie"],
                &["Aerie / none"],
                &[("1 vCPU", vec![&[1.5, 1.6], &[1.7, 1.9], &[1.13, 1.19]])],
            ),
            Table {
                decimals: 0,
                unit: "instructions per operation".into(),
                ..table(
                    "exits",
                    &["bare QEMU (no EL2)", "Aerie"],
                    &[],
                    &[
                        (
                            "HVC round trip (PSCI_VERSION)",
                            vec![&[7.0, 7.0], &[179.0, 179.0]],
                        ),
                        ("only Aerie's", vec![&[], &[186.0, 186.0]]),
                    ],
                )
            },
            table(
                "snapshot",
                &["QEMU migration to a file (no hypervisor)", "Aerie"],
                &["Aerie / QEMU"],
                &[
                    (
                        "save (idle)",
                        vec![&[0.42, 0.44], &[0.43, 0.47], &[1.02, 1.07]],
                    ),
                    (
                        "restore to a shell (idle)",
                        vec![&[0.25, 0.27], &[0.47, 0.6], &[1.9, 2.2]],
                    ),
                    (
                        "boot to a shell, for comparison",
                        vec![&[1.5], &[1.6], &[1.07]],
                    ),
                ],
            ),
        ])
    }

    #[test]
    fn a_figure_per_part_measured_shown_after_its_last_table() {
        let quick = quick_run();
        let shown: Vec<_> = figures(&quick)
            .iter()
            .map(|figure| (figure.kind, figure.after().to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                (Kind::Boot, "boot-wall".to_string()),
                (Kind::Exits, "exits".to_string()),
                (Kind::Snapshot, "snapshot".to_string())
            ],
            "no virtio-blk table, no disk figure"
        );
        let mut full = quick_run();
        full.tables.insert(
            1,
            table(
                "boot-icount",
                &["no hypervisor", "Aerie"],
                &["Aerie / none"],
                &[("1 vCPU", vec![&[804.3], &[809.7], &[1.01]])],
            ),
        );
        assert_eq!(figures(&full)[0].after(), "boot-icount");
        assert!(figures(&report(Vec::new())).is_empty());
    }

    #[test]
    fn figures_have_their_series_labels_and_values() {
        let quick = quick_run();
        let svgs: Vec<(Kind, String)> = figures(&quick)
            .iter()
            .map(|figure| (figure.kind, figure.svg().unwrap()))
            .collect();
        for (kind, svg) in &svgs {
            assert!(svg.starts_with("<svg "), "{kind:?}: {svg}");
            assert!(svg.trim_end().ends_with("</svg>"), "{kind:?}");
            assert!(svg.contains(kind.title()), "{kind:?} has its title");
        }
        let text = |kind: Kind| &svgs.iter().find(|(k, _)| *k == kind).unwrap().1;
        let boot = text(Kind::Boot);
        for part in [
            "1 vCPU, wall clock",
            "Aerie / none",
            "1.16×",
            "median of the rounds",
            "one round",
            "ratio to no hypervisor within each round (time: lower is better)",
        ] {
            assert!(
                boot.contains(part),
                "`{part}` missing from the boot figure:\n{boot}"
            );
        }
        // One dot per round.
        assert_eq!(
            boot.matches("<circle").count(),
            2 + 1,
            "two rounds and the legend's"
        );
        let exits = text(Kind::Exits);
        for part in [
            "HVC round trip (PSCI_VERSION)",
            "only Aerie&apos;s",
            "bare QEMU (no EL2)",
            ">\n179\n<",
            ">\n186\n<",
            "instructions per operation (log scale",
            ">\n100\n<",
        ] {
            assert!(
                exits.contains(part),
                "`{part}` missing from the exit figure:\n{exits}"
            );
        }
        assert!(!exits.contains("Xen"), "no Xen column, no Xen series");
        let snapshot = text(Kind::Snapshot);
        for part in [
            "save (idle)",
            "restore to a shell (idle)",
            "QEMU migration to a file",
            "seconds, wall clock",
        ] {
            assert!(
                snapshot.contains(part),
                "`{part}` missing from the snapshot figure"
            );
        }
        assert!(
            !snapshot.contains("boot to a shell"),
            "only saves and restores"
        );
    }

    #[test]
    fn the_same_data_draws_the_same_bytes() {
        let first: Vec<_> = figures(&quick_run())
            .iter()
            .map(|f| f.svg().unwrap())
            .collect();
        let again: Vec<_> = figures(&quick_run())
            .iter()
            .map(|f| f.svg().unwrap())
            .collect();
        assert_eq!(first, again);
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(step(1.73), 0.5);
        assert_eq!(step(3.0), 0.5);
        assert_eq!(step(0.45), 0.1);
        assert_eq!(step(15_000.0), 5_000.0);
        assert_eq!(step(0.0), 0.2, "every round alike: still a step");
        assert_eq!(trimmed(1.5), "1.5");
        assert_eq!(trimmed(2.0), "2");
        assert_eq!(trimmed(0.25), "0.25");
    }
}
