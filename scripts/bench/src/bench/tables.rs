//! From samples to report tables: the Linux boot tables, the exit-cost tables of
//! the micro-benchmark guest, the snapshot rows, the footprint, and the goals of
//! issue 8.

use super::parse::{AerieMemory, GuestResults};
use super::report::{Goal, Row, Table, Verdict};
use super::runs::{SnapshotFigure, SnapshotSamples};
use super::snapshot::{Case, Saver};
use super::stats::{Stats, pair_ratios, present};
use super::systems::System;

/// One system's samples of one row, one per round (`None`: that run failed).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The system.
    pub system: System,
    /// The samples.
    pub samples: Vec<Option<f64>>,
}

/// A table row's samples: a label, one series per system (the first is the
/// reference the ratios divide by).
#[derive(Debug, Clone, PartialEq)]
pub struct RowSamples {
    /// The row's label.
    pub name: String,
    /// One series per column.
    pub series: Vec<Series>,
    /// A remark.
    pub note: Option<String>,
}

/// What a table is, before its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Heading {
    /// Identifier for tools.
    pub id: &'static str,
    /// Title.
    pub title: String,
    /// How it was measured.
    pub about: String,
    /// Unit of the cells.
    pub unit: &'static str,
    /// Decimals of the cells.
    pub decimals: usize,
    /// Column labels, one per system, in the order of the series.
    pub columns: Vec<String>,
    /// Short names of the same, for the ratio headings.
    pub shorts: Vec<&'static str>,
    /// The ratios to show, as `(numerator, denominator)` column indices.
    pub ratios: Vec<(usize, usize)>,
}

/// A table with the ratio columns `heading.ratios` asks for, each computed round by
/// round.
pub fn table(heading: Heading, rows: &[RowSamples]) -> Table {
    let name = |index: usize| heading.shorts.get(index).copied().unwrap_or("?");
    let ratio_columns = heading
        .ratios
        .iter()
        .map(|&(numerator, denominator)| format!("{} / {}", name(numerator), name(denominator)))
        .collect();
    let rows = rows
        .iter()
        .map(|row| {
            let samples = |index: usize| {
                row.series
                    .get(index)
                    .map_or(&[][..], |series| series.samples.as_slice())
            };
            Row {
                name: row.name.clone(),
                cells: row
                    .series
                    .iter()
                    .map(|series| Stats::of(&present(&series.samples)))
                    .collect(),
                ratios: heading
                    .ratios
                    .iter()
                    .map(|&(numerator, denominator)| {
                        Stats::of(&pair_ratios(samples(numerator), samples(denominator)))
                    })
                    .collect(),
                note: row.note.clone(),
            }
        })
        .collect();
    Table {
        id: heading.id.to_string(),
        title: heading.title,
        about: heading.about,
        unit: heading.unit.to_string(),
        decimals: heading.decimals,
        columns: heading.columns,
        ratio_columns,
        rows,
    }
}

/// What a micro-benchmark row subtracts from the guest's figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// Nothing: the guest measured the interval itself.
    Nothing,
    /// The empty timing loop, per iteration.
    Loop,
    /// One counter read (the `counter-read` row net of the loop).
    CounterRead,
}

/// The rows of the exit-cost tables: the guest's row name, the label, the baseline.
const MICRO_ROWS: [(&str, &str, Baseline); 10] = [
    (
        "hvc-psci-version",
        "HVC round trip (PSCI_VERSION)",
        Baseline::Loop,
    ),
    (
        "hvc-aerie-revision",
        "HVC round trip (Aerie's REVISION hypercall)",
        Baseline::Loop,
    ),
    (
        "mmio-testdev-id",
        "emulated device register read (test device ID)",
        Baseline::Loop,
    ),
    (
        "mmio-pl011-fr",
        "emulated device register read (PL011 UARTFR)",
        Baseline::Loop,
    ),
    (
        "mmio-virtio-id",
        "virtio-mmio transport register read (DeviceID of the first transport)",
        Baseline::Loop,
    ),
    (
        "gicd-typer",
        "vGIC distributor register read (GICD_TYPER)",
        Baseline::Loop,
    ),
    (
        "irq-ack-eoi",
        "interrupt acknowledge + EOI (ICC_IAR1_EL1, ICC_EOIR1_EL1)",
        Baseline::CounterRead,
    ),
    (
        "ipi-round-trip",
        "IPI round trip between two vCPUs (SGI there and back, both idle in WFI)",
        Baseline::Nothing,
    ),
    (
        "vtimer-busy",
        "virtual timer interrupt latency, vCPU busy",
        Baseline::Nothing,
    ),
    (
        "vtimer-wfi",
        "virtual timer interrupt latency, vCPU idle in WFI",
        Baseline::Nothing,
    ),
];

/// The micro-benchmark row behind an exit-cost table label.
pub fn micro_row_key(label: &str) -> Option<&'static str> {
    MICRO_ROWS
        .iter()
        .find(|(_, name, _)| *name == label)
        .map(|(key, _, _)| *key)
}

/// Ticks per operation of `key` in one run, net of its baseline.
pub fn net_ticks(results: &GuestResults, key: &str) -> Option<f64> {
    let (_, _, baseline) = MICRO_ROWS.iter().find(|(k, _, _)| *k == key)?;
    let raw = results.ticks_per_op(key)?;
    let loop_ticks = results.ticks_per_op("loop");
    let subtract = match baseline {
        Baseline::Nothing => 0.0,
        Baseline::Loop => loop_ticks?,
        Baseline::CounterRead => results.ticks_per_op("counter-read")? - loop_ticks?,
    };
    Some((raw - subtract).max(0.0))
}

/// Instructions per operation (ns of icount time at shift 0) from ticks at the
/// guest's counter frequency.
pub fn instructions(ticks: f64, frequency: u64) -> f64 {
    ticks * 1e9 / frequency as f64
}

/// The exit-cost rows in instructions (`in_ticks` false) or counter ticks, from
/// each system's runs (one `GuestResults` per round, `None` for a failed run).
pub fn micro_rows(runs: &[(System, Vec<Option<GuestResults>>)], in_ticks: bool) -> Vec<RowSamples> {
    MICRO_ROWS
        .iter()
        .map(|(key, label, _)| {
            let series = runs
                .iter()
                .map(|(system, rounds)| Series {
                    system: *system,
                    samples: rounds
                        .iter()
                        .map(|results| {
                            let results = results.as_ref()?;
                            let ticks = net_ticks(results, key)?;
                            if in_ticks {
                                Some(ticks)
                            } else {
                                Some(instructions(ticks, results.frequency?))
                            }
                        })
                        .collect(),
                })
                .collect();
            let skipped: Vec<String> = runs
                .iter()
                .filter_map(|(system, rounds)| {
                    let reason = rounds.iter().flatten().find_map(|results| {
                        results
                            .skipped
                            .iter()
                            .find(|(name, _)| name == key)
                            .map(|(_, reason)| reason.clone())
                    })?;
                    Some(format!("{}: {}", system.short(), skip_reason(&reason)))
                })
                .collect();
            RowSamples {
                name: label.to_string(),
                series,
                note: (!skipped.is_empty()).then(|| skipped.join("; ")),
            }
        })
        .collect()
}

/// The guest's skip reasons in words.
fn skip_reason(reason: &str) -> String {
    match reason {
        "not-aerie" => "Aerie's own hypercall".to_string(),
        "no-test-device" => "no test device (Aerie's own device)".to_string(),
        "no-pl011" => "no PL011 in the device tree".to_string(),
        "no-virtio-mmio" => "no virtio-mmio transport in the device tree".to_string(),
        "one-vcpu" => "one vCPU only".to_string(),
        other => other.replace('-', " "),
    }
}

/// The footprint rows (KiB): image file, and from Aerie's summary the RAM it keeps.
pub fn footprint(
    image_bytes: u64,
    memory: Option<&AerieMemory>,
    given_away: u64,
) -> Vec<(String, Option<f64>)> {
    let kib = |bytes: f64| bytes / 1024.0;
    let mut rows = vec![(
        "image file (aerie.bin)".to_string(),
        Some(kib(image_bytes as f64)),
    )];
    match memory {
        Some(memory) => {
            let kept = memory.ram as f64 - memory.free - given_away as f64;
            let image = memory.image_span as f64;
            rows.push((
                "RAM: image span (code, data, bss, stacks)".into(),
                Some(kib(image)),
            ));
            rows.push(("RAM: heap".into(), Some(kib(memory.heap))));
            rows.push((
                "RAM: other (page tables, frames in use)".into(),
                Some(kib((kept - image - memory.heap).max(0.0))),
            ));
            rows.push(("RAM Aerie keeps, in all".into(), Some(kib(kept))));
        }
        None => rows.push(("RAM Aerie keeps, in all".into(), None)),
    }
    rows
}

/// The label of a snapshot row.
pub fn snapshot_row_name(figure: SnapshotFigure, case: Case) -> String {
    let case = case.label();
    match figure {
        SnapshotFigure::BootToShell => "boot to a shell, for comparison".to_string(),
        SnapshotFigure::SaveWall => format!("save ({case})"),
        SnapshotFigure::SaveOwn => format!("save ({case}), by its own clock"),
        SnapshotFigure::RestoreToShell => format!("restore to a shell ({case})"),
        SnapshotFigure::RestoreOwn => format!("restore ({case}), by Aerie's own clock"),
        SnapshotFigure::Size => format!("snapshot ({case})"),
        SnapshotFigure::RamStored => format!("of which guest RAM ({case})"),
    }
}

/// One snapshot row: a series per saver (QEMU's first), scaled by `scale`.
fn snapshot_row(
    samples: &SnapshotSamples,
    figure: SnapshotFigure,
    case: Case,
    scale: f64,
    note: Option<&str>,
) -> RowSamples {
    RowSamples {
        name: snapshot_row_name(figure, case),
        series: Saver::ALL
            .iter()
            .map(|saver| Series {
                system: saver.system(),
                samples: samples
                    .series((figure, case, saver.system()))
                    .into_iter()
                    .map(|value| value.map(|v| v * scale))
                    .collect(),
            })
            .collect(),
        note: note.map(str::to_string),
    }
}

/// The rows of the snapshot time table (seconds) for `cases`: saves, saves by the
/// saver's clock, restores to a shell, restores by Aerie's clock, and the cold boot
/// to a shell of the first case's save runs.
pub fn snapshot_time_rows(samples: &SnapshotSamples, cases: &[Case]) -> Vec<RowSamples> {
    let mut rows = Vec::new();
    for (figure, note) in [
        (SnapshotFigure::SaveWall, None),
        (
            SnapshotFigure::SaveOwn,
            Some("Aerie: the time in its `saved` line; QEMU: `query-migrate`'s `total-time`"),
        ),
        (SnapshotFigure::RestoreToShell, None),
        (
            SnapshotFigure::RestoreOwn,
            Some(
                "the time in Aerie's `restored` line; QEMU reports none for an incoming migration",
            ),
        ),
    ] {
        for &case in cases {
            rows.push(snapshot_row(samples, figure, case, 1.0, note));
        }
    }
    if let Some(&first) = cases.first() {
        rows.push(snapshot_row(
            samples,
            SnapshotFigure::BootToShell,
            first,
            1.0,
            None,
        ));
    }
    rows
}

/// The rows of the snapshot size table (MiB) for `cases`.
pub fn snapshot_size_rows(samples: &SnapshotSamples, cases: &[Case]) -> Vec<RowSamples> {
    let mib = 1.0 / f64::from(1 << 20);
    let mut rows = Vec::new();
    for (figure, note) in [
        (SnapshotFigure::Size, None),
        (
            SnapshotFigure::RamStored,
            Some("Aerie: its memory chunks; QEMU: `normal-bytes`, the pages it sent in full"),
        ),
    ] {
        for &case in cases {
            rows.push(snapshot_row(samples, figure, case, mib, note));
        }
    }
    rows
}

/// Xen 4.17 dom0's exit costs in instructions, measured under the same icount
/// settings on this kind of machine and recorded in `../shared/docs/measuring.md`
/// ("exit costs" row): the peer figures the goal refers to when this run cannot
/// measure Xen itself.
pub const XEN_REFERENCE: [(&str, f64); 3] = [
    ("hvc-psci-version", 1_652.0),
    ("gicd-typer", 596.0),
    ("irq-ack-eoi", 21.0),
];

/// The goals, judged from this run's tables.
pub fn goals(tables: &[Table], image_bytes: u64, image_span: Option<u64>) -> Vec<Goal> {
    vec![
        boot_goal(tables),
        exit_goal(tables),
        disk_goal(tables),
        snapshot_goal(tables),
        virtio_read_goal(tables),
        Goal {
            goal: "image under 1 MiB".into(),
            detail: format!(
                "{} bytes ({:.0}% of 1 MiB){}",
                super::report::number(image_bytes as f64, 0),
                image_bytes as f64 * 100.0 / f64::from(1 << 20),
                image_span.map_or_else(String::new, |span| format!(
                    "; in RAM, with its bss and stacks, it spans {} KiB",
                    super::report::number(span as f64 / 1024.0, 0)
                ))
            ),
            verdict: if image_bytes < 1 << 20 {
                Verdict::Met
            } else {
                Verdict::NotMet
            },
        },
    ]
}

fn find<'a>(tables: &'a [Table], id: &str) -> Option<&'a Table> {
    tables.iter().find(|table| table.id == id)
}

/// Linux boot within 5% of no hypervisor: every Aerie / none ratio of the wall-clock
/// boot table (and, when measured, the icount one) at most 1.05.
fn boot_goal(tables: &[Table]) -> Goal {
    let goal = "Linux boot under Aerie within 5% of no hypervisor".to_string();
    let mut parts = Vec::new();
    let mut ratios = Vec::new();
    for (id, what) in [
        ("boot-wall", "wall clock"),
        ("boot-icount", "guest time under icount"),
    ] {
        let Some(table) = find(tables, id) else {
            continue;
        };
        let Some(column) = table
            .ratio_columns
            .iter()
            .position(|c| c.starts_with("Aerie /"))
        else {
            continue;
        };
        let figures: Vec<String> = table
            .rows
            .iter()
            .filter_map(|row| {
                let stats = row.ratios.get(column)?.as_ref()?;
                ratios.push(stats.median);
                Some(format!("{} {}", row.name, super::report::ratio(stats)))
            })
            .collect();
        if !figures.is_empty() {
            parts.push(format!("{what}: {}", figures.join(", ")));
        }
    }
    let verdict = if ratios.is_empty() {
        Verdict::NotMeasured
    } else if ratios.iter().all(|ratio| *ratio <= 1.05) {
        Verdict::Met
    } else {
        Verdict::NotMet
    };
    Goal {
        goal,
        detail: if parts.is_empty() {
            "no boot was measured".to_string()
        } else {
            format!("Aerie / none, median (range): {}", parts.join("; "))
        },
        verdict,
    }
}

/// Snapshot faster and smaller than QEMU's migration to a file: every Aerie / QEMU
/// ratio of the saves and restores (host's clock) and of the sizes below 1.
fn snapshot_goal(tables: &[Table]) -> Goal {
    let goal = "snapshot faster and smaller than QEMU's migration to a file".to_string();
    let mut parts = Vec::new();
    let mut ratios = Vec::new();
    for (id, figure, what) in [
        ("snapshot", SnapshotFigure::SaveWall, "save"),
        (
            "snapshot",
            SnapshotFigure::RestoreToShell,
            "restore to a shell",
        ),
        ("snapshot-size", SnapshotFigure::Size, "size"),
    ] {
        let Some(table) = find(tables, id) else {
            continue;
        };
        let Some(column) = table
            .ratio_columns
            .iter()
            .position(|c| c.starts_with("Aerie /"))
        else {
            continue;
        };
        let figures: Vec<String> = Case::ALL
            .iter()
            .filter_map(|&case| {
                let name = snapshot_row_name(figure, case);
                let row = table.rows.iter().find(|row| row.name == name)?;
                let stats = row.ratios.get(column)?.as_ref()?;
                ratios.push(stats.median);
                Some(format!("{} {}", case.label(), super::report::ratio(stats)))
            })
            .collect();
        if !figures.is_empty() {
            parts.push(format!("{what}: {}", figures.join(", ")));
        }
    }
    if ratios.is_empty() {
        return Goal {
            goal,
            detail: "not measured in this run".into(),
            verdict: Verdict::NotMeasured,
        };
    }
    Goal {
        goal,
        detail: format!(
            "Aerie / QEMU's migration, median (range): {}",
            parts.join("; ")
        ),
        verdict: if ratios.iter().all(|ratio| *ratio < 1.0) {
            Verdict::Met
        } else {
            Verdict::NotMet
        },
    }
}

/// virtio-blk at least 90% of QEMU's own: every Aerie / none ratio of the virtio-blk
/// table at least 0.9.
fn disk_goal(tables: &[Table]) -> Goal {
    let goal = "virtio-blk at least 90% of QEMU's own".to_string();
    let ratios: Vec<(String, Stats)> = find(tables, "virtio-blk")
        .and_then(|table| {
            let column = table
                .ratio_columns
                .iter()
                .position(|c| c.starts_with("Aerie /"))?;
            Some(
                table
                    .rows
                    .iter()
                    .filter_map(|row| Some((row.name.clone(), row.ratios.get(column)?.clone()?)))
                    .collect(),
            )
        })
        .unwrap_or_default();
    if ratios.is_empty() {
        return Goal {
            goal,
            detail: "not measured in this run".into(),
            verdict: Verdict::NotMeasured,
        };
    }
    let met = ratios.iter().all(|(_, stats)| stats.median >= 0.9);
    let figures: Vec<String> = ratios
        .iter()
        .map(|(name, stats)| {
            let kind = name.split_whitespace().next().unwrap_or(name);
            format!(
                "{kind} {:.0}% ({})",
                stats.median * 100.0,
                super::report::ratio(stats)
            )
        })
        .collect();
    Goal {
        goal,
        detail: format!("Aerie / QEMU's own, median (range): {}", figures.join(", ")),
        verdict: if met { Verdict::Met } else { Verdict::NotMet },
    }
}

/// A virtio-mmio transport register read no dearer under Aerie than a PL011 register
/// read (issue 13): a register read must not pay for queue processing.
fn virtio_read_goal(tables: &[Table]) -> Goal {
    let goal = "a virtio-mmio register read no dearer than a PL011 register read".to_string();
    let aerie_median = |key: &str| -> Option<f64> {
        let table = find(tables, "exits")?;
        let (_, label, _) = MICRO_ROWS.iter().find(|(k, _, _)| *k == key)?;
        let aerie = super::runs::micro_label(System::Aerie);
        let column = table.columns.iter().position(|c| c == aerie)?;
        let row = table.rows.iter().find(|row| row.name == *label)?;
        row.cells.get(column)?.as_ref().map(|stats| stats.median)
    };
    match (
        aerie_median("mmio-virtio-id"),
        aerie_median("mmio-pl011-fr"),
    ) {
        (Some(virtio), Some(pl011)) => Goal {
            goal,
            detail: format!(
                "instructions per operation under Aerie: virtio-mmio DeviceID {} vs PL011 \
                 UARTFR {}",
                super::report::number(virtio, 0),
                super::report::number(pl011, 0)
            ),
            verdict: if virtio <= pl011 {
                Verdict::Met
            } else {
                Verdict::NotMet
            },
        },
        _ => Goal {
            goal,
            detail: "the micro-benchmark did not measure both reads under Aerie".to_string(),
            verdict: Verdict::NotMeasured,
        },
    }
}

/// Rows of the exits table that cost no exit under either hypervisor: the guest's
/// acknowledge and EOI go to the CPU interface's virtual registers, so both
/// columns show the CPU's own cost (the bare figure, at the counter's resolution).
/// The goal shows them but does not judge them.
const NO_EXIT_ROWS: [&str; 1] = ["irq-ack-eoi"];

/// Every exit-cost row at most half of Xen's: against Xen's column of the exits
/// table when the run measured it, else against [`XEN_REFERENCE`]. Rows without an
/// exit ([`NO_EXIT_ROWS`]) are shown, not judged.
fn exit_goal(tables: &[Table]) -> Goal {
    let goal = "every exit-cost row at most half of Xen's".to_string();
    let not_measured = |detail: &str| Goal {
        goal: goal.clone(),
        detail: detail.to_string(),
        verdict: Verdict::NotMeasured,
    };
    let Some(table) = find(tables, "exits") else {
        return not_measured("the micro-benchmark did not run");
    };
    let column = |label: &str| table.columns.iter().position(|c| c == label);
    let median = |row: &Row, column: Option<usize>| {
        column.and_then(|c| row.cells.get(c)?.as_ref().map(|s| s.median))
    };
    let aerie = column(super::runs::micro_label(System::Aerie));
    let xen = column(super::runs::micro_label(System::Xen));
    let measured = table.rows.iter().any(|row| median(row, xen).is_some());
    let mut figures = Vec::new();
    let mut all_met = true;
    for row in &table.rows {
        let Some(aerie_median) = median(row, aerie) else {
            continue;
        };
        let xen_median = if measured {
            median(row, xen)
        } else {
            micro_row_key(&row.name).and_then(|key| {
                XEN_REFERENCE
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, value)| *value)
            })
        };
        let Some(xen_median) = xen_median.filter(|value| *value > 0.0) else {
            continue;
        };
        let judged = micro_row_key(&row.name).is_none_or(|key| !NO_EXIT_ROWS.contains(&key));
        if judged {
            all_met &= aerie_median <= xen_median / 2.0;
        }
        figures.push(format!(
            "{}: Aerie {} vs Xen {} ({:.1}× Xen's{})",
            row.name,
            super::report::number(aerie_median, 0),
            super::report::number(xen_median, 0),
            aerie_median / xen_median,
            if judged {
                ""
            } else {
                "; no exit under either, not judged"
            }
        ));
    }
    if figures.is_empty() {
        return not_measured("no exit cost was measured under both Aerie and Xen");
    }
    let source = if measured {
        "instructions per operation, against Xen measured in this run"
    } else {
        "instructions per operation, against the Xen 4.17 dom0 figures of \
         ../shared/docs/measuring.md (Xen did not run the micro-benchmark in this run)"
    };
    Goal {
        goal,
        detail: format!("{source}: {}", figures.join("; ")),
        verdict: if all_met {
            Verdict::Met
        } else {
            Verdict::NotMet
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(system: System, samples: &[Option<f64>]) -> Series {
        Series {
            system,
            samples: samples.to_vec(),
        }
    }

    fn heading(id: &'static str) -> Heading {
        Heading {
            id,
            title: "t".into(),
            about: "a".into(),
            unit: "s",
            decimals: 2,
            columns: vec!["no hypervisor".into(), "Aerie".into()],
            shorts: vec!["none", "Aerie"],
            ratios: vec![(1, 0)],
        }
    }

    fn boot_table(aerie: &[Option<f64>]) -> Table {
        table(
            heading("boot-wall"),
            &[RowSamples {
                name: "1 vCPU".into(),
                series: vec![
                    series(System::None, &[Some(2.0), Some(4.0), Some(3.0)]),
                    series(System::Aerie, aerie),
                ],
                note: None,
            }],
        )
    }

    #[test]
    fn tables_have_cells_and_pairwise_ratios() {
        let table = boot_table(&[Some(2.1), None, Some(3.3)]);
        assert_eq!(table.ratio_columns, ["Aerie / none"]);
        let row = &table.rows[0];
        assert_eq!(row.cells[0].as_ref().unwrap().median, 3.0);
        assert_eq!(row.cells[1].as_ref().unwrap().count(), 2);
        let ratio = row.ratios[0].as_ref().unwrap();
        assert_eq!(ratio.count(), 2, "the failed round has no ratio");
        assert!((ratio.min - 1.05).abs() < 1e-9 && (ratio.max - 1.1).abs() < 1e-9);
    }

    #[test]
    fn the_boot_goal_needs_every_ratio_within_5_percent() {
        let met = boot_goal(&[boot_table(&[Some(2.1), Some(4.0), Some(3.0)])]);
        assert_eq!(met.verdict, Verdict::Met, "{}", met.detail);
        assert!(
            met.detail.contains("wall clock: 1 vCPU 1.00× (1.00–1.05)"),
            "{}",
            met.detail
        );
        let missed = boot_goal(&[boot_table(&[Some(2.4), Some(4.4), Some(3.3)])]);
        assert_eq!(missed.verdict, Verdict::NotMet);
        let none = boot_goal(&[boot_table(&[None, None, None])]);
        assert_eq!(none.verdict, Verdict::NotMeasured);
    }

    fn guest(host: &str, rows: &[(&str, u64, u64)]) -> GuestResults {
        let mut text = format!("aerie-bench: host={host} frequency=62500000\n");
        for (name, iterations, ticks) in rows {
            text.push_str(&format!(
                "aerie-bench: row={name} iterations={iterations} ticks={ticks}\n"
            ));
        }
        text.push_str(
            "aerie-bench: skip=mmio-testdev-id reason=no-test-device\naerie-bench: done\n",
        );
        GuestResults::parse(&text)
    }

    #[test]
    fn exit_costs_are_net_of_their_baseline_in_instructions() {
        let results = guest(
            "aerie",
            &[
                ("loop", 20_000, 2_500),
                ("hvc-psci-version", 20_000, 9_406_272),
                ("counter-read", 20_000, 6_250),
                ("irq-ack-eoi", 1_000, 687),
                ("ipi-round-trip", 1_000, 2_730_010),
            ],
        );
        // (9,406,272 - 2,500) / 20,000 ticks, 16 ns (instructions) each at 62.5 MHz.
        let hvc = net_ticks(&results, "hvc-psci-version").unwrap();
        assert!((hvc - 470.1886).abs() < 1e-9);
        assert!((instructions(hvc, 62_500_000) - 7_523.017_6).abs() < 1e-6);
        // 0.687 ticks minus one counter read (0.3125 - 0.125).
        assert!((net_ticks(&results, "irq-ack-eoi").unwrap() - 0.4995).abs() < 1e-12);
        assert!((net_ticks(&results, "ipi-round-trip").unwrap() - 2_730.01).abs() < 1e-9);
        assert_eq!(net_ticks(&results, "gicd-typer"), None);

        let bare = guest(
            "bare",
            &[("loop", 20_000, 2_500), ("hvc-psci-version", 20_000, 8_750)],
        );
        let runs = vec![
            (System::None, vec![Some(bare.clone()), None]),
            (System::Aerie, vec![Some(results.clone()), Some(results)]),
        ];
        let rows = micro_rows(&runs, false);
        assert_eq!(rows.len(), MICRO_ROWS.len());
        assert_eq!(rows[0].name, "HVC round trip (PSCI_VERSION)");
        assert_eq!(rows[0].series[0].samples, [Some(5.0), None]);
        assert_eq!(
            rows[2].note.as_deref(),
            Some(
                "none: no test device (Aerie's own device); Aerie: no test device (Aerie's own device)"
            )
        );
        let ticks = micro_rows(&runs, true);
        assert_eq!(ticks[0].series[0].samples, [Some(0.3125), None]);
        assert_eq!(
            micro_row_key("HVC round trip (PSCI_VERSION)"),
            Some("hvc-psci-version")
        );
    }

    fn exits(with_xen: Option<f64>) -> Table {
        let mut columns = vec!["bare QEMU (no EL2)".to_string(), "Aerie".to_string()];
        let mut hvc = vec![
            series(System::None, &[Some(5.0)]),
            series(System::Aerie, &[Some(700.0)]),
        ];
        let mut ipi = vec![
            series(System::None, &[Some(120.0)]),
            series(System::Aerie, &[Some(40_000.0)]),
        ];
        if let Some(xen) = with_xen {
            columns.push("Xen 4.17 (dom0less domU)".into());
            hvc.push(series(System::Xen, &[Some(xen)]));
            ipi.push(series(System::Xen, &[Some(100_000.0)]));
        }
        table(
            Heading {
                columns,
                ratios: Vec::new(),
                ..heading("exits")
            },
            &[
                RowSamples {
                    name: "HVC round trip (PSCI_VERSION)".into(),
                    series: hvc,
                    note: None,
                },
                RowSamples {
                    name: "IPI round trip between two vCPUs (SGI there and back, both idle in WFI)"
                        .into(),
                    series: ipi,
                    note: None,
                },
            ],
        )
    }

    /// An exits table with Aerie's PL011 and virtio-mmio register reads.
    fn register_reads(pl011: f64, virtio: f64) -> Table {
        let row = |key: &str, value: f64| RowSamples {
            name: MICRO_ROWS
                .iter()
                .find(|(k, _, _)| *k == key)
                .unwrap()
                .1
                .to_string(),
            series: vec![
                series(System::None, &[Some(1.0)]),
                series(System::Aerie, &[Some(value)]),
            ],
            note: None,
        };
        table(
            Heading {
                columns: vec!["bare QEMU (no EL2)".to_string(), "Aerie".to_string()],
                ratios: Vec::new(),
                ..heading("exits")
            },
            &[row("mmio-pl011-fr", pl011), row("mmio-virtio-id", virtio)],
        )
    }

    #[test]
    fn the_virtio_read_goal_compares_with_the_pl011_read() {
        let met = virtio_read_goal(&[register_reads(1_103.0, 1_065.0)]);
        assert_eq!(met.verdict, Verdict::Met, "{}", met.detail);
        assert_eq!(
            met.detail,
            "instructions per operation under Aerie: virtio-mmio DeviceID 1,065 vs PL011 UARTFR 1,103"
        );
        let missed = virtio_read_goal(&[register_reads(1_186.0, 12_774.0)]);
        assert_eq!(missed.verdict, Verdict::NotMet);
        assert_eq!(virtio_read_goal(&[]).verdict, Verdict::NotMeasured);
        assert_eq!(
            virtio_read_goal(&[exits(None)]).verdict,
            Verdict::NotMeasured,
            "no register rows"
        );
    }

    #[test]
    fn the_exit_goal_compares_with_xens_reference_figures() {
        let goal = exit_goal(&[exits(None)]);
        assert_eq!(goal.verdict, Verdict::Met, "{}", goal.detail);
        assert!(
            goal.detail
                .contains("HVC round trip (PSCI_VERSION): Aerie 700 vs Xen 1,652 (0.4× Xen's)"),
            "{}",
            goal.detail
        );
        assert!(goal.detail.contains("measuring.md"));
        assert!(
            !goal.detail.contains("IPI"),
            "no reference figure for the round trip"
        );
        let mut slow = exits(None);
        slow.rows[0].cells[1] = Stats::of(&[7_525.0]);
        assert_eq!(exit_goal(&[slow]).verdict, Verdict::NotMet);
        assert_eq!(exit_goal(&[]).verdict, Verdict::NotMeasured);
    }

    #[test]
    fn the_exit_goal_compares_with_xen_measured_in_the_run() {
        let goal = exit_goal(&[exits(Some(475.0))]);
        assert_eq!(goal.verdict, Verdict::NotMet, "{}", goal.detail);
        assert!(goal.detail.contains("against Xen measured in this run"));
        assert!(goal.detail.contains("Aerie 700 vs Xen 475 (1.5× Xen's)"));
        assert!(
            goal.detail
                .contains("Aerie 40,000 vs Xen 100,000 (0.4× Xen's)")
        );
        let goal = exit_goal(&[exits(Some(1_400.0))]);
        assert_eq!(goal.verdict, Verdict::Met, "{}", goal.detail);
    }

    #[test]
    fn the_exit_goal_shows_but_does_not_judge_the_acknowledge_and_eoi() {
        let columns = vec![
            "bare QEMU (no EL2)".to_string(),
            "Aerie".to_string(),
            "Xen 4.17 (dom0less domU)".to_string(),
        ];
        let row = |name: &str, bare: f64, aerie: f64, xen: f64| RowSamples {
            name: name.into(),
            series: vec![
                series(System::None, &[Some(bare)]),
                series(System::Aerie, &[Some(aerie)]),
                series(System::Xen, &[Some(xen)]),
            ],
            note: None,
        };
        let heading = Heading {
            columns,
            ratios: Vec::new(),
            ..heading("exits")
        };
        let tables = [table(
            heading,
            &[
                row("HVC round trip (PSCI_VERSION)", 5.0, 180.0, 475.0),
                row(
                    "interrupt acknowledge + EOI (ICC_IAR1_EL1, ICC_EOIR1_EL1)",
                    8.0,
                    8.0,
                    7.0,
                ),
            ],
        )];
        let goal = exit_goal(&tables);
        assert_eq!(goal.verdict, Verdict::Met, "{}", goal.detail);
        assert!(
            goal.detail
                .contains("Aerie 8 vs Xen 7 (1.1× Xen's; no exit under either, not judged)"),
            "{}",
            goal.detail
        );
    }

    #[test]
    fn the_disk_goal_needs_90_percent_of_qemus_own() {
        let disk = |aerie: f64| {
            table(
                heading("virtio-blk"),
                &[RowSamples {
                    name: "read 64 MiB, 1 MiB blocks, direct I/O".into(),
                    series: vec![
                        series(System::None, &[Some(300.0), Some(330.0)]),
                        series(System::Aerie, &[Some(aerie), Some(aerie * 1.1)]),
                    ],
                    note: None,
                }],
            )
        };
        let slow = disk_goal(&[disk(200.0)]);
        assert_eq!(slow.verdict, Verdict::NotMet);
        assert_eq!(
            slow.detail,
            "Aerie / QEMU's own, median (range): read 67% (0.67×)"
        );
        assert_eq!(disk_goal(&[disk(290.0)]).verdict, Verdict::Met);
    }

    fn snapshot_samples(aerie_factor: f64) -> SnapshotSamples {
        let mut samples = SnapshotSamples::default();
        for round in 0..3 {
            let drift = 1.0 + f64::from(round) / 10.0;
            for case in Case::ALL {
                for (figure, qemu) in [
                    (SnapshotFigure::BootToShell, Some(2.0)),
                    (SnapshotFigure::SaveWall, Some(0.5)),
                    (SnapshotFigure::SaveOwn, Some(0.4)),
                    (SnapshotFigure::RestoreToShell, Some(0.3)),
                    (SnapshotFigure::RestoreOwn, None),
                    (SnapshotFigure::Size, Some(60.0 * 1048576.0)),
                    (SnapshotFigure::RamStored, Some(50.0 * 1048576.0)),
                ] {
                    let qemu = qemu.map(|v| v * drift);
                    samples.push((figure, case, System::None), qemu);
                    let aerie = qemu.unwrap_or(1.0) * aerie_factor;
                    samples.push((figure, case, System::Aerie), Some(aerie));
                }
            }
        }
        samples
    }

    fn snapshot_tables(aerie_factor: f64) -> Vec<Table> {
        let samples = snapshot_samples(aerie_factor);
        let heading = |id| Heading {
            columns: vec![Saver::Qemu.label().into(), Saver::Aerie.label().into()],
            shorts: vec![Saver::Qemu.short(), Saver::Aerie.short()],
            ..heading(id)
        };
        vec![
            table(
                heading("snapshot"),
                &snapshot_time_rows(&samples, &Case::ALL),
            ),
            table(
                heading("snapshot-size"),
                &snapshot_size_rows(&samples, &Case::ALL),
            ),
        ]
    }

    #[test]
    fn snapshot_rows_and_goal() {
        let tables = snapshot_tables(0.5);
        let names: Vec<&str> = tables[0].rows.iter().map(|row| row.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "save (idle)",
                "save (180 MiB in tmpfs)",
                "save (idle), by its own clock",
                "save (180 MiB in tmpfs), by its own clock",
                "restore to a shell (idle)",
                "restore to a shell (180 MiB in tmpfs)",
                "restore (idle), by Aerie's own clock",
                "restore (180 MiB in tmpfs), by Aerie's own clock",
                "boot to a shell, for comparison",
            ]
        );
        let save = &tables[0].rows[0];
        assert_eq!(tables[0].ratio_columns, ["Aerie / QEMU"]);
        assert!((save.cells[0].as_ref().unwrap().median - 0.55).abs() < 1e-9);
        assert!((save.ratios[0].as_ref().unwrap().median - 0.5).abs() < 1e-9);
        let own_restore = &tables[0].rows[6];
        assert_eq!(own_restore.cells[0], None, "QEMU has no figure of its own");
        assert_eq!(own_restore.ratios[0], None);
        assert!(
            own_restore
                .note
                .as_deref()
                .unwrap()
                .contains("QEMU reports none")
        );
        let size = &tables[1].rows[0];
        assert_eq!(size.name, "snapshot (idle)");
        assert!((size.cells[0].as_ref().unwrap().median - 66.0).abs() < 1e-9);
        assert_eq!(tables[1].rows[2].name, "of which guest RAM (idle)");

        let goal = snapshot_goal(&tables);
        assert_eq!(goal.verdict, Verdict::Met, "{}", goal.detail);
        assert_eq!(
            goal.detail,
            "Aerie / QEMU's migration, median (range): save: idle 0.50×, 180 MiB in tmpfs \
             0.50×; restore to a shell: idle 0.50×, 180 MiB in tmpfs 0.50×; size: idle 0.50×, \
             180 MiB in tmpfs 0.50×"
        );
        assert_eq!(
            snapshot_goal(&snapshot_tables(1.2)).verdict,
            Verdict::NotMet
        );
        // Only the idle case (a quick run): still judged, on what was measured.
        let samples = snapshot_samples(0.9);
        let quick = table(
            heading("snapshot"),
            &snapshot_time_rows(&samples, &[Case::Idle]),
        );
        assert_eq!(quick.rows.len(), 5);
        assert_eq!(snapshot_goal(&[quick]).verdict, Verdict::Met);
    }

    fn goals_image(bytes: u64, span: Option<u64>) -> Goal {
        goals(&[], bytes, span).pop().unwrap()
    }

    #[test]
    fn footprint_and_image_goal() {
        let memory = AerieMemory {
            ram: 1218 << 20,
            image_span: 2 << 20,
            heap: 16.0 * 1048576.0,
            free: 141.8 * 1048576.0,
        };
        let rows = footprint(247_536, Some(&memory), (1024 << 20) + (34 << 20));
        assert_eq!(
            rows[0],
            (
                "image file (aerie.bin)".to_string(),
                Some(247_536.0 / 1024.0)
            )
        );
        let total = rows.last().unwrap().1.unwrap();
        assert!((total - 18.2 * 1024.0).abs() < 1.0, "{total}");
        let other = rows[3].1.unwrap();
        assert!((other - 0.2 * 1024.0).abs() < 1.0, "{other}");
        assert_eq!(footprint(1, None, 0).len(), 2);
        let goals = goals(&[], 247_536, None);
        let image = goals.last().unwrap();
        assert_eq!(image.verdict, Verdict::Met);
        assert_eq!(image.detail, "247,536 bytes (24% of 1 MiB)");
        let spanned = goals_image(1 << 20, Some(2 << 20));
        assert_eq!(spanned.verdict, Verdict::NotMet);
        assert!(
            spanned
                .detail
                .ends_with("; in RAM, with its bss and stacks, it spans 2,048 KiB")
        );
        let disk = &goals[2];
        assert_eq!(disk.verdict, Verdict::NotMeasured);
        let snapshot = &goals[3];
        assert_eq!(snapshot.verdict, Verdict::NotMeasured);
        assert_eq!(snapshot.detail, "not measured in this run");
    }
}
