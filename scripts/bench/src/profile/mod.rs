//! `cargo xtask profile ROW`: where the instructions of one exit-cost row of
//! `cargo xtask bench --only exits` go.
//!
//! The bench guest boots under Aerie on the bench's own machine (the same QEMU
//! command line, `-icount shift=0,sleep=off` included), with a command line that
//! makes it run only ROW, over and over ([`rows::guest_command_line`]). Once it has
//! printed ROW's line, the code is warm; xtask then turns on, through QEMU's machine
//! protocol, one instruction per translation block and QEMU's execution log
//! (`-d exec,nochain`, which goes to QEMU's stderr, a pipe). Every logged block is
//! then one instruction executed: the log is read as it streams, cut into iterations
//! at the entry of ROW's marker function in the bench guest, each instruction named
//! by the function of Aerie or of the guest it is in (`nm`), and QEMU is stopped as
//! soon as enough iterations are in.
//!
//! | module | job |
//! |---|---|
//! | [`rows`] | the rows, their names and marker functions |
//! | [`trace`] | QEMU's execution log, line by line |
//! | [`symbols`] | the functions of both ELF files, by address |
//! | [`cut`] | the iterations between markers, counted by function and block |
//! | [`summary`] | median, min and max, and the median iteration's breakdown |

pub mod cut;
pub mod rows;
pub mod summary;
pub mod symbols;
pub mod trace;

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, ExitCode, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::bench::qmp::Qmp;
use crate::bench::systems::{self, MicroGuest, System};
use crate::bench::{self, DISK_BYTES};
use crate::cli::ProfileOptions;
use aerie_host::console::read_in_background;
use cut::Cutter;
use rows::Row;
use summary::Summary;
use symbols::{Elf, Symbols};
use trace::Lines;
use xtask::cli::Profile;
use xtask::disk_claim::Claim;
use xtask::error::{Context, Error, Result};
use xtask::paths::Layout;
use xtask::{image, process, run, setup};

/// Iterations measured unless `--iterations` says otherwise.
pub const DEFAULT_ITERATIONS: usize = 50;
/// Whole iterations dropped before those measured: the first after the switch to
/// one instruction per block.
const SKIPPED: usize = 1;
/// How long the guest may take to boot and print its row's first line.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long QEMU may take to answer on its machine protocol socket.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long logging may take: this, and [`TIME_PER_ITERATION`] for each.
const TRACE_TIMEOUT: Duration = Duration::from_secs(60);
/// Enough for the longest iteration (a timer shot with the guest spinning: about
/// 100,000 instructions, 0.3 s logged on this machine).
const TIME_PER_ITERATION: Duration = Duration::from_secs(2);
/// How often the loops look at the clock when nothing arrives.
const TICK: Duration = Duration::from_millis(50);
/// Log lines that are no event kept for an error message.
const KEPT_LINES: usize = 5;

/// Runs `cargo xtask profile`.
pub fn run(layout: &Layout, options: &ProfileOptions) -> Result<ExitCode> {
    let row = rows::find(&options.row)
        .ok_or_else(|| Error::new(format!("no row `{}`: {}", options.row, rows::names())))?;
    setup::ensure_qemu()?;
    let work = layout.aerie_dir().join("profile");
    std::fs::create_dir_all(&work).context(|| format!("cannot create {}", work.display()))?;
    // Runs side by side each get their own snapshot disk, bundle and socket.
    let disk = Claim::default_disk(&work.join("snapshots.img"), false)?;
    run::ensure_sparse_disk(&disk.path, DISK_BYTES)?;
    let run_file = |stem: &str, extension: &str| {
        work.join(format!("{stem}-{}.{extension}", std::process::id()))
    };
    let bundle = run_file("bench", "cpio");
    let socket = run_file("qmp", "sock");
    let built = image::build(layout, Profile::Release)?;
    let guest = bench::micro_guest(
        layout,
        &built.image,
        &disk.path,
        Some(&rows::guest_command_line(row)),
        &bundle,
    )?;
    let measured = measure(row, options, &built.elf, &guest, &socket);
    let _ = std::fs::remove_file(&bundle);
    let _ = std::fs::remove_file(&socket);
    print!("{}", measured?);
    Ok(ExitCode::SUCCESS)
}

/// Boots `guest`, follows `row` and returns the summary to print.
fn measure(
    row: &Row,
    options: &ProfileOptions,
    aerie_elf: &Path,
    guest: &MicroGuest,
    socket: &Path,
) -> Result<String> {
    let mut list = Symbols::read(aerie_elf, Elf::Aerie)?;
    list.extend(Symbols::read(&guest.elf, Elf::Guest)?);
    let symbols = Symbols::new(list);
    let marker = symbols.address_of(row.marker, Elf::Guest).ok_or_else(|| {
        Error::new(format!(
            "the bench guest {} has no function `{}`",
            guest.elf.display(),
            row.marker
        ))
    })?;

    let mut qemu = systems::micro_machine(guest, System::Aerie)
        .qmp(socket)
        .command();
    println!(
        "profile: {} under Aerie, {} iterations cut at {} ({:#x}); one iteration is {}",
        row.name, options.iterations, row.marker, marker, row.iteration
    );
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("cannot start `{}`", process::display(&qemu)))?;
    let mut cutter = Cutter::new(&symbols, marker, SKIPPED, options.iterations);
    let followed = follow(&mut child, row, socket, &mut cutter);
    // Whatever happened, QEMU does not outlive the run.
    process::kill(&mut child);
    followed?;
    let iterations = cutter.into_iterations();
    let summary =
        Summary::of(&iterations).ok_or_else(|| Error::new("no iteration was measured"))?;
    Ok(summary.render(options.detail))
}

/// Waits for the row's first line on the console, turns the log on and feeds it to
/// `cutter` until it has its iterations.
fn follow(child: &mut Child, row: &Row, socket: &Path, cutter: &mut Cutter) -> Result<()> {
    let console = read_in_background(child.stdout.take());
    let log = read_in_background(child.stderr.take());
    let mut seen = String::new();
    let line = format!("aerie-bench: row={} ", row.name);
    let start = Instant::now();
    while !seen.contains(&line) {
        match console.recv_timeout(TICK) {
            Ok((_, bytes)) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(stopped("QEMU stopped before the row ran", &seen, &log));
            }
        }
        if start.elapsed() >= BOOT_TIMEOUT {
            return Err(stopped(
                &format!(
                    "no `{}` line within {} s",
                    line.trim_end(),
                    BOOT_TIMEOUT.as_secs()
                ),
                &seen,
                &log,
            ));
        }
    }
    let mut qmp = Qmp::connect(socket, QMP_TIMEOUT)?;
    for command in ["one-insn-per-tb on", "log exec,nochain"] {
        qmp.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command })),
        )?;
    }
    let iterations = u32::try_from(cutter.wanted() + SKIPPED + 1).unwrap_or(u32::MAX);
    let timeout = TRACE_TIMEOUT + TIME_PER_ITERATION.saturating_mul(iterations);
    let start = Instant::now();
    let mut lines = Lines::default();
    let mut other: VecDeque<String> = VecDeque::new();
    while !cutter.complete() {
        match log.recv_timeout(TICK) {
            Ok((_, bytes)) => lines.feed(&bytes, |line| match trace::parse(line) {
                Some(event) => cutter.event(event),
                None => {
                    other.push_back(line.to_string());
                    if other.len() > KEPT_LINES {
                        other.pop_front();
                    }
                }
            }),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(logging_stopped(
                    "QEMU stopped",
                    cutter,
                    &other,
                    &console,
                    &seen,
                ));
            }
        }
        if start.elapsed() >= timeout {
            return Err(logging_stopped(
                &format!("the iterations took longer than {} s", timeout.as_secs()),
                cutter,
                &other,
                &console,
                &seen,
            ));
        }
    }
    Ok(())
}

/// An error for a run that ended before the row's line: what the console and QEMU's
/// stderr said.
fn stopped(what: &str, console: &str, log: &Receiver<(Instant, Vec<u8>)>) -> Error {
    let mut errors = String::new();
    while let Ok((_, bytes)) = log.try_recv() {
        errors.push_str(&String::from_utf8_lossy(&bytes));
    }
    Error::new(format!(
        "profile: {what}; the console's last lines:\n{}\nQEMU's stderr:\n{}",
        crate::bench::console::tail_on_one_line(console, 15),
        crate::bench::console::tail_on_one_line(&errors, 15)
    ))
}

/// An error for a run that ended while logging: how far it got, the log's last lines
/// that were no event, and the console.
fn logging_stopped(
    what: &str,
    cutter: &Cutter,
    other: &VecDeque<String>,
    console: &Receiver<(Instant, Vec<u8>)>,
    seen: &str,
) -> Error {
    let mut text = seen.to_string();
    while let Ok((_, bytes)) = console.try_recv() {
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    Error::new(format!(
        "profile: {what}: the marker ran {} times, {} of {} iterations measured; QEMU's \
         other log lines:\n{}\nthe console's last lines:\n{}",
        cutter.markers(),
        cutter.measured(),
        cutter.wanted(),
        other.join("\n"),
        crate::bench::console::tail_on_one_line(&text, 15)
    ))
}
