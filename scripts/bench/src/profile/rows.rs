//! The exit-cost rows `cargo xtask profile` can follow, by the name the bench guest
//! prints (`row=NAME`), and the marker function of the bench guest
//! (`tests/guests/src/bin/bench.rs`) that runs once per operation of each.

/// One row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The name the bench guest prints (`aerie-bench: row=NAME ...`).
    pub name: &'static str,
    /// Shorter names accepted on the command line.
    pub aliases: &'static [&'static str],
    /// The bench guest's function (unmangled) whose entry cuts the trace into
    /// iterations: it runs once per operation.
    pub marker: &'static str,
    /// What one iteration, from one marker to the next, is.
    pub iteration: &'static str,
}

/// Every row, in the bench guest's order.
pub const ROWS: [Row; 9] = [
    register_row("hvc-psci-version", &["hvc"], "bench_mark_hvc_psci_version"),
    register_row(
        "hvc-aerie-revision",
        &["revision"],
        "bench_mark_hvc_aerie_revision",
    ),
    register_row("mmio-testdev-id", &["testdev"], "bench_mark_load"),
    register_row("mmio-pl011-fr", &["pl011", "uart"], "bench_mark_load"),
    register_row("mmio-virtio-id", &["virtio"], "bench_mark_load"),
    register_row("gicd-typer", &["gicd"], "bench_mark_load"),
    Row {
        name: "ipi-round-trip",
        aliases: &["ipi"],
        marker: "bench_mark_ipi_reply",
        iteration: "one round trip, both vCPUs: vCPU 0's loop sends the SGI and waits in \
                    WFI, vCPU 1 answers from its handler, until vCPU 0's handler has the reply",
    },
    Row {
        name: "vtimer-busy",
        aliases: &[],
        marker: "bench_mark_vtimer",
        iteration: "one timer shot: the handler's return, arming the timer, the guest \
                    spinning until the deadline (about 100,000 instructions), the interrupt \
                    through Aerie, until the guest's handler has it",
    },
    Row {
        name: "vtimer-wfi",
        aliases: &[],
        marker: "bench_mark_vtimer",
        iteration: "one timer shot: the handler's return, arming the timer, WFI (trapped), \
                    the interrupt through Aerie, until the guest's handler has it",
    },
];

/// A row that times an HVC or a register read: an iteration is one operation and
/// the timing loop's few instructions around it.
const fn register_row(
    name: &'static str,
    aliases: &'static [&'static str],
    marker: &'static str,
) -> Row {
    Row {
        name,
        aliases,
        marker,
        iteration: "one operation: the marker function's call, the exit through Aerie and \
                    back, and the timing loop's own few instructions",
    }
}

/// The row called `name` (its own name or an alias).
pub fn find(name: &str) -> Option<&'static Row> {
    ROWS.iter()
        .find(|row| row.name == name || row.aliases.contains(&name))
}

/// The names [`find`] takes, for a usage error.
pub fn names() -> String {
    ROWS.iter()
        .map(|row| match row.aliases {
            [] => row.name.to_string(),
            aliases => format!("{} ({})", row.name, aliases.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The option of the bench guest's command line that makes it run only `row`, over
/// and over, until QEMU is stopped.
pub fn guest_command_line(row: &Row) -> String {
    format!("aerie-bench.profile={}", row.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_name_or_alias() {
        assert_eq!(find("hvc").unwrap().name, "hvc-psci-version");
        assert_eq!(find("uart").unwrap().name, "mmio-pl011-fr");
        assert_eq!(find("pl011").unwrap().name, "mmio-pl011-fr");
        assert_eq!(find("vtimer-wfi").unwrap().marker, "bench_mark_vtimer");
        assert_eq!(find("loop"), None, "not an exit");
        assert_eq!(find("irq-ack-eoi"), None);
        assert!(names().starts_with("hvc-psci-version (hvc), hvc-aerie-revision (revision)"));
        assert_eq!(
            guest_command_line(find("ipi").unwrap()),
            "aerie-bench.profile=ipi-round-trip"
        );
    }

    /// The bench guest knows each row by the same name and has each marker, with an
    /// unmangled name (the guest cannot share this table: it is a `no_std` binary).
    #[test]
    fn the_bench_guest_has_every_row_and_marker() {
        let source = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/guests/src/bin/bench.rs"
        ))
        .unwrap();
        for row in ROWS {
            assert!(
                source.contains(&format!("\"{}\"", row.name)),
                "{}",
                row.name
            );
            assert!(
                source.contains(&format!(
                    "#[unsafe(no_mangle)]\n#[inline(never)]\nextern \"C\" fn {}(",
                    row.marker
                )),
                "{}",
                row.marker
            );
        }
        assert!(source.contains("const PROFILE_OPTION: &str = \"aerie-bench.profile=\";"));
    }
}
