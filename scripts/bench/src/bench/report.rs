//! The benchmark report as data, and its two renderings: Markdown for people
//! (`latest.md`) and JSON for tools (`latest.json`, serde's derived form of the
//! data, which reads back in to render the Markdown again).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::stats::Stats;
use super::{figures, json};

/// Everything a report says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the run ended, `YYYY-MM-DD HH:MM UTC`.
    pub generated: String,
    /// Which sources were measured, such as `commit da0344e`.
    pub source: String,
    /// Whether this is a `--quick` smoke run.
    pub quick: bool,
    /// The one part measured (`--only PART`), if not all.
    pub only: Option<String>,
    /// How many interleaved rounds each comparison had.
    pub pairs: usize,
    /// The one command that reproduces the report.
    pub reproduce: String,
    /// Facts about the machine, the emulator and the guest, in order.
    #[serde(with = "json::ordered_object")]
    pub machine: Vec<(String, String)>,
    /// The goals of issue 8 and where Aerie stands.
    pub goals: Vec<Goal>,
    /// The measurements.
    pub tables: Vec<Table>,
    /// Rows that cannot be measured yet, and why.
    #[serde(rename = "not_yet_measurable")]
    pub not_yet: Vec<Unmeasured>,
    /// Caveats and omissions, one sentence or paragraph each.
    pub notes: Vec<String>,
    /// The exact command of each configuration.
    pub commands: Vec<Command>,
    /// Runs that failed (their samples are missing from the tables).
    pub failures: Vec<String>,
}

/// A row the run did not measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmeasured {
    /// The row.
    pub row: String,
    /// Why it is missing.
    pub why: String,
}

/// The command line of one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Which configuration, and what is typed into it.
    pub label: String,
    /// The command line.
    pub command: String,
}

/// A goal and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// The goal as the issue states it.
    pub goal: String,
    /// Where Aerie stands, in figures.
    pub detail: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// Whether a goal is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Met.
    #[serde(rename = "met")]
    Met,
    /// Not met.
    #[serde(rename = "not met")]
    NotMet,
    /// Not measured in this run (the detail says why).
    #[serde(rename = "not measured")]
    NotMeasured,
}

impl Verdict {
    /// The word in the report.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "not met",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One table of measurements: rows of configurations or operations, a column per
/// system measured, then the per-pair ratio columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// A stable identifier for tools, such as `boot-wall`.
    pub id: String,
    /// The heading.
    pub title: String,
    /// How it was measured.
    pub about: String,
    /// The unit of the cells, such as `s` or `instructions`.
    pub unit: String,
    /// Decimals shown for cell values.
    pub decimals: usize,
    /// The systems measured.
    pub columns: Vec<String>,
    /// The ratios shown, such as `Aerie / none`.
    pub ratio_columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// One row of a [`Table`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What the row measures.
    pub name: String,
    /// One summary per column (`None`: not measured there).
    pub cells: Vec<Option<Stats>>,
    /// One summary per ratio column.
    pub ratios: Vec<Option<Stats>>,
    /// A remark, such as why a cell is empty.
    pub note: Option<String>,
}

/// Formats `value` with `decimals` decimals and thin grouping of thousands
/// (`12,345.6`).
pub fn number(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text.as_str(), None),
    };
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A cell: `3.52 (3.40–3.90)`, or `7,525 (all 7 equal)`, or `7,525` for one sample.
pub fn cell(stats: &Stats, decimals: usize) -> String {
    let median = number(stats.median, decimals);
    let (min, max) = (number(stats.min, decimals), number(stats.max, decimals));
    if stats.count() == 1 {
        median
    } else if min == max {
        format!("{median} (all {} equal)", stats.count())
    } else {
        format!("{median} ({min}–{max})")
    }
}

/// A ratio: `1.04× (0.98–1.10)`; the decimals shrink as the ratio grows.
pub fn ratio(stats: &Stats) -> String {
    let decimals = match stats.median.abs() {
        m if m < 10.0 => 2,
        m if m < 100.0 => 1,
        _ => 0,
    };
    let median = number(stats.median, decimals);
    let (min, max) = (number(stats.min, decimals), number(stats.max, decimals));
    if stats.count() == 1 || min == max {
        format!("{median}×")
    } else {
        format!("{median}× ({min}–{max})")
    }
}

impl Report {
    /// The Markdown document.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let kind = match (&self.only, self.quick) {
            (None, true) => "a quick smoke run (`--quick`: one round, the cheapest rows; not \
                             for conclusions)"
                .to_string(),
            (None, false) => "the full benchmark".to_string(),
            (Some(part), true) => format!(
                "a quick smoke run of the {part} rows only (`--quick --only {part}`; not for \
                 conclusions)"
            ),
            (Some(part), false) => format!("the {part} rows only (`--only {part}`)"),
        };
        let _ = writeln!(md, "# Aerie benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `cargo xtask bench` on {} from {}: {kind}, {} interleaved round{}.\n",
            self.generated,
            self.source,
            self.pairs,
            if self.pairs == 1 { "" } else { "s" }
        );
        let _ = writeln!(md, "Reproduce with one command: `{}`\n", self.reproduce);
        let _ = writeln!(
            md,
            "Every comparison is made in one run, interleaved (none, Aerie, Xen, none, \
             Aerie, Xen, ...), and reported as the median with the min–max range; a ratio \
             is the median (and range) of the ratios within each round, so the machine's \
             drift between rounds cancels out (`../shared/docs/measuring.md`).\n"
        );

        let _ = writeln!(md, "## Goals\n");
        let _ = writeln!(md, "| goal | where Aerie stands | verdict |\n|---|---|---|");
        for goal in &self.goals {
            let _ = writeln!(
                md,
                "| {} | {} | **{}** |",
                escape(&goal.goal),
                escape(&goal.detail),
                goal.verdict.word()
            );
        }

        let _ = writeln!(md, "\n## Machine and guest\n\n| | |\n|---|---|");
        for (name, value) in &self.machine {
            let _ = writeln!(md, "| {} | {} |", escape(name), escape(value));
        }

        let figures = figures::figures(self);
        for table in &self.tables {
            md.push('\n');
            md.push_str(&table.markdown());
            for figure in figures.iter().filter(|figure| figure.after() == table.id) {
                let _ = writeln!(
                    md,
                    "\n![{}]({})",
                    figure.kind.title(),
                    figure.kind.file_name()
                );
            }
        }

        if !self.not_yet.is_empty() {
            let _ = writeln!(md, "\n## Not yet measurable\n");
            for Unmeasured { row, why } in &self.not_yet {
                let _ = writeln!(md, "- **{row}**: {why}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md, "\n## Notes\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(md, "\n## Failed runs\n");
            for failure in &self.failures {
                let _ = writeln!(md, "- {failure}");
            }
        }
        if !self.commands.is_empty() {
            let _ = writeln!(md, "\n## Commands\n");
            for Command { label, command } in &self.commands {
                let _ = writeln!(md, "{label}:\n\n```sh\n{command}\n```\n");
            }
        }
        while md.ends_with("\n\n") {
            md.pop();
        }
        md
    }

    /// The JSON document.
    pub fn json(&self) -> String {
        json::pretty(self)
    }
}

impl Table {
    /// The table's Markdown section.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## {}\n\n{}\n", self.title, self.about);
        let headers: Vec<String> = self
            .columns
            .iter()
            .chain(&self.ratio_columns)
            .map(|h| escape(h))
            .collect();
        let has_notes = self.rows.iter().any(|row| row.note.is_some());
        let _ = write!(md, "| {} | {}", escape(&self.unit), headers.join(" | "));
        md.push_str(if has_notes { " | note |\n" } else { " |\n" });
        let columns = 1 + headers.len() + usize::from(has_notes);
        md.push_str(&"|---".repeat(columns));
        md.push_str("|\n");
        for row in &self.rows {
            let cells = row
                .cells
                .iter()
                .map(|cell_stats| {
                    cell_stats
                        .as_ref()
                        .map_or_else(|| "—".to_string(), |s| cell(s, self.decimals))
                })
                .chain(
                    row.ratios
                        .iter()
                        .map(|r| r.as_ref().map_or_else(|| "—".to_string(), ratio)),
                )
                .collect::<Vec<_>>()
                .join(" | ");
            let _ = write!(md, "| {} | {cells}", escape(&row.name));
            if has_notes {
                let _ = write!(md, " | {}", escape(row.note.as_deref().unwrap_or("")));
            }
            md.push_str(" |\n");
        }
        md
    }
}

/// Keeps table cells intact: a `|` would start a new cell.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(samples: &[f64]) -> Option<Stats> {
        Stats::of(samples)
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(7525.0, 0), "7,525");
        assert_eq!(number(1234567.891, 2), "1,234,567.89");
        assert_eq!(number(999.5, 0), "1,000");
        assert_eq!(number(1.23456, 2), "1.23");
        assert_eq!(number(-1234.0, 0), "-1,234");
        assert_eq!(number(-0.001, 2), "0.00");
        assert_eq!(number(0.0, 1), "0.0");
    }

    #[test]
    fn cells_and_ratios() {
        assert_eq!(
            cell(&stats(&[3.4, 3.52, 3.9]).unwrap(), 2),
            "3.52 (3.40–3.90)"
        );
        assert_eq!(
            cell(&stats(&[7525.0; 7]).unwrap(), 0),
            "7,525 (all 7 equal)"
        );
        assert_eq!(cell(&stats(&[2.0]).unwrap(), 1), "2.0");
        assert_eq!(
            ratio(&stats(&[1.04, 0.98, 1.1]).unwrap()),
            "1.04× (0.98–1.10)"
        );
        assert_eq!(ratio(&stats(&[1505.2, 1505.4]).unwrap()), "1,505×");
        assert_eq!(ratio(&stats(&[12.34]).unwrap()), "12.3×");
    }

    fn sample_table() -> Table {
        Table {
            id: "boot-wall".into(),
            title: "Linux boot".into(),
            about: "From QEMU's start to the marker.".into(),
            unit: "s".into(),
            decimals: 2,
            columns: vec!["none".into(), "Aerie".into()],
            ratio_columns: vec!["Aerie / none".into()],
            rows: vec![
                Row {
                    name: "1 vCPU".into(),
                    cells: vec![stats(&[3.0, 3.2]), stats(&[3.3, 3.5])],
                    ratios: vec![stats(&[1.1, 1.09375])],
                    note: None,
                },
                Row {
                    name: "2 vCPUs".into(),
                    cells: vec![stats(&[4.0]), None],
                    ratios: vec![None],
                    note: Some("Aerie | failed".into()),
                },
            ],
        }
    }

    #[test]
    fn table_markdown() {
        assert_eq!(
            sample_table().markdown(),
            "## Linux boot\n\nFrom QEMU's start to the marker.\n\n\
             | s | none | Aerie | Aerie / none | note |\n\
             |---|---|---|---|---|\n\
             | 1 vCPU | 3.10 (3.00–3.20) | 3.40 (3.30–3.50) | 1.10× (1.09–1.10) |  |\n\
             | 2 vCPUs | 4.00 | — | — | Aerie \\| failed |\n"
        );
    }

    fn sample_report() -> Report {
        Report {
            generated: "2026-11-26 19:40 UTC".into(),
            source: "commit da0344e".into(),
            quick: false,
            only: None,
            pairs: 7,
            reproduce: "cargo xtask bench".into(),
            machine: vec![("host CPU".into(), "Xeon, 2 cores".into())],
            goals: vec![Goal {
                goal: "image under 1 MiB".into(),
                detail: "247,536 bytes".into(),
                verdict: Verdict::Met,
            }],
            tables: vec![sample_table()],
            not_yet: vec![Unmeasured {
                row: "virtio-blk".into(),
                why: "issue 5".into(),
            }],
            notes: vec!["Xen ran as dom0.".into()],
            commands: vec![Command {
                label: "Aerie".into(),
                command: "qemu-system-aarch64 -M virt".into(),
            }],
            failures: Vec::new(),
        }
    }

    #[test]
    fn report_markdown_has_every_part_in_order() {
        let md = sample_report().markdown();
        let order = [
            "# Aerie benchmarks",
            "on 2026-11-26 19:40 UTC from commit da0344e: the full benchmark, 7 interleaved rounds.",
            "Reproduce with one command: `cargo xtask bench`",
            "## Goals",
            "| image under 1 MiB | 247,536 bytes | **met** |",
            "## Machine and guest",
            "| host CPU | Xeon, 2 cores |",
            "## Linux boot",
            "| 2 vCPUs | 4.00 | — | — | Aerie \\| failed |\n\n\
             ![Linux boot to userspace: time relative to no hypervisor, per round](boot.svg)\n",
            "## Not yet measurable",
            "- **virtio-blk**: issue 5",
            "## Notes",
            "## Commands",
            "Aerie:\n\n```sh\nqemu-system-aarch64 -M virt\n```",
        ];
        let mut from = 0;
        for part in order {
            let at = md[from..]
                .find(part)
                .unwrap_or_else(|| panic!("`{part}` missing or out of order in\n{md}"));
            from += at + part.len();
        }
        assert!(!md.contains("## Failed runs"));
        assert!(md.ends_with("```\n"), "{md:?}");
        let quick = Report {
            quick: true,
            pairs: 1,
            failures: vec!["Aerie, 1 vCPU: timed out".into()],
            ..sample_report()
        }
        .markdown();
        assert!(quick.contains("a quick smoke run"));
        assert!(quick.contains("1 interleaved round."));
        assert!(quick.contains("## Failed runs\n\n- Aerie, 1 vCPU: timed out"));
        let partial = Report {
            only: Some("snapshot".into()),
            ..sample_report()
        };
        assert!(
            partial
                .markdown()
                .contains("from commit da0344e: the snapshot rows only (`--only snapshot`), 7")
        );
        assert!(partial.json().contains("\"only\": \"snapshot\""));
    }

    #[test]
    fn report_json() {
        let json = sample_report().json();
        for part in [
            "\"generated\": \"2026-11-26 19:40 UTC\"",
            "\"pairs\": 7",
            "\"host CPU\": \"Xeon, 2 cores\"",
            "\"verdict\": \"met\"",
            "\"id\": \"boot-wall\"",
            "\"median\": 3.1",
            "\"samples\": [\n",
            "\"cells\": [\n",
            "null",
            "\"note\": \"Aerie | failed\"",
            "\"row\": \"virtio-blk\"",
            "\"failures\": []",
        ] {
            assert!(json.contains(part), "`{part}` missing from\n{json}");
        }
    }
}
