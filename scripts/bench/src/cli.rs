//! The command line of `cargo xtask bench` and `cargo xtask profile`, which xtask
//! hands over whole: every option and its help text is described here, once, and clap
//! prints `cargo xtask bench --help` and the usage errors from it.

#[cfg(test)]
mod tests;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `cargo xtask bench`.
    Bench(BenchOptions),
    /// `cargo xtask profile`.
    Profile(ProfileOptions),
}

/// `cargo xtask` with the bench's commands (xtask's own help lists the others).
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true,
    args_override_self = true,
    disable_help_subcommand = true
)]
struct Cli {
    /// The command.
    #[command(subcommand)]
    command: CliCommand,
}

/// The commands, with their help text (the first line is also the one `cargo xtask
/// help` shows beside the command: keep it as xtask's `cli` spells it).
#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Measure Aerie against bare QEMU and Xen; write docs/bench/latest.{md,json}
    ///
    /// About 15 minutes in all: Linux boot, virtio-blk throughput, exit costs and
    /// snapshots, interleaved rounds of each. A full run fetches Xen 4.17 with APT once,
    /// like the default guest.
    #[command(verbatim_doc_comment)]
    Bench(BenchOptions),
    /// Where the instructions of one exit-cost row go, function by function
    ///
    /// Runs one row of `bench --only exits` over and over under QEMU's execution log
    /// and prints the median iteration by function of Aerie and of the bench guest.
    #[command(verbatim_doc_comment)]
    Profile(ProfileOptions),
}

/// Options of `cargo xtask bench`; the field docs are their help text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Args)]
pub struct BenchOptions {
    /// One round of the cheapest rows, written to target/aerie/bench/ (CI)
    #[arg(long)]
    pub quick: bool,
    /// Interleaved rounds of every comparison (default 7; 1 with --quick)
    #[arg(long, value_name = "N", value_parser = rounds)]
    pub pairs: Option<u32>,
    /// Where to write latest.md and latest.json (default docs/bench/, the committed
    /// report)
    #[arg(long, value_name = "DIR", verbatim_doc_comment)]
    pub out: Option<std::path::PathBuf>,
    /// Only these rows, written (like --quick) to target/aerie/bench/ unless --out
    #[arg(long, value_name = "PART")]
    pub only: Option<BenchPart>,
}

/// Options of `cargo xtask profile`; the field docs are their help text.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ProfileOptions {
    /// The row, by the name the bench guest prints (`row=NAME`) or a shorter one
    #[arg(value_name = "ROW", value_parser = profile_rows())]
    pub row: String,
    /// Iterations measured (after one warm-up)
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::profile::DEFAULT_ITERATIONS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000)
    )]
    pub iterations: usize,
    /// Under each function, its straight-line blocks of instructions
    #[arg(long)]
    pub detail: bool,
}

/// A part of `cargo xtask bench` that `--only` can pick; each variant's doc is its help
/// text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchPart {
    /// The Linux boot rows (wall clock, and under icount in a full run)
    Boot,
    /// The virtio-blk throughput rows
    Disk,
    /// The exit costs of the micro-benchmark guest
    Exits,
    /// Snapshot and restore against QEMU's migration to a file
    Snapshot,
}

impl BenchPart {
    /// Every part, in the report's order.
    pub const ALL: [BenchPart; 4] = [
        BenchPart::Boot,
        BenchPart::Disk,
        BenchPart::Exits,
        BenchPart::Snapshot,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            BenchPart::Boot => "boot",
            BenchPart::Disk => "disk",
            BenchPart::Exits => "exits",
            BenchPart::Snapshot => "snapshot",
        }
    }
}

/// `bench --pairs`: rounds, at least 1.
fn rounds(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("not a number of rounds of at least 1".to_string()),
    }
}

/// `profile ROW`: the rows by name, each with its shorter names; gives the full name.
fn profile_rows() -> impl TypedValueParser<Value = String> {
    use crate::profile::rows::{ROWS, find};
    PossibleValuesParser::new(ROWS.iter().map(|row| {
        let value = PossibleValue::new(row.name).aliases(row.aliases.iter().copied());
        match row.aliases {
            [] => value,
            aliases => value.help(format!("or {}", aliases.join(", "))),
        }
    }))
    .map(|name| find(&name).map_or(name, |row| row.name.to_string()))
}

/// Parses `bench ARGS` or `profile ARGS`. The error is clap's: a usage error or the
/// help text that was asked for (its [`clap::Error::print`] and
/// [`clap::Error::exit_code`] say where it goes and how the run ends).
pub fn parse(args: &[String]) -> Result<Command, clap::Error> {
    let argv = std::iter::once("cargo xtask").chain(args.iter().map(String::as_str));
    Ok(match Cli::try_parse_from(argv)?.command {
        CliCommand::Bench(options) => Command::Bench(options),
        CliCommand::Profile(options) => Command::Profile(options),
    })
}
