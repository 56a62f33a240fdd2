//! `cargo xtask bench`: Aerie side by side with no hypervisor and with Xen, in one
//! run, interleaved, written up as `latest.md` (for people) and `latest.json` (for
//! tools). `../shared/docs/measuring.md` explains why it is done this way.
//!
//! | module | job |
//! |---|---|
//! | [`systems`] | the systems compared and their QEMU command lines |
//! | [`xen`] | fetching Xen 4.17 and booting it with the guest as dom0 |
//! | [`console`] | one run: QEMU on pipes (aerie-host's `Console`, which the multi-stage snapshot runs drive directly), the ready marker's time, a typed command |
//! | [`snapshot`] | the snapshot rows' runs: Aerie's snapshot, QEMU's migration |
//! | [`qmp`] | QEMU's machine protocol: start a migration, follow it |
//! | [`runs`] | the runs of each kind and their samples, round by round |
//! | [`progress`] | which step of which round runs, and the time left, on stderr |
//! | [`parse`] | kernel timestamps, the micro-benchmark's lines, Aerie's summary and snapshot lines |
//! | [`stats`] | medians, ranges, per-round ratios |
//! | [`tables`] | samples to tables, and the goals |
//! | [`report`] | the report and its Markdown and JSON forms |
//! | [`figures`] | the report's figures (SVG) |
//! | [`render`] | writing the report's files, again from a saved `latest.json` too |
//! | [`json`] | how numbers and ordered objects look in the report's JSON |
//! | [`machine`] | the host, QEMU, the guest's packages, the commit, the date |
//!
//! What is measured (`--quick`: one round of the first table's 1-vCPU row, without
//! Xen, the micro-benchmark on bare QEMU and Aerie, and the idle snapshot rows, for
//! CI; `--only PART`: one part's rows):
//!
//! 1. Linux boot to userspace, wall clock: from QEMU's start to the default guest's
//!    `aerie-guest: ready` line, with 1 and 2 vCPUs.
//! 2. The same boots under `-icount shift=0,sleep=off`: the guest's own clock at the
//!    kernel's `Run /init as init process` log line (read with `dmesg` once the shell
//!    is up), which counts instructions executed since the kernel started its clock.
//! 3. virtio-blk throughput: `dd` with direct I/O in the guest, on QEMU's
//!    virtio-blk directly and through Aerie's.
//! 4. Exit costs: the micro-benchmark test guest (`tests/guests/src/bin/bench.rs`)
//!    under icount, on bare QEMU, under Aerie and under Xen (as a dom0less domU).
//! 5. Snapshots: save and restore of a 256 MiB guest, idle and with 180 MiB in a
//!    tmpfs, by Aerie and by QEMU's own migration to a file; time and size.
//! 6. Footprint: the image's size and the RAM Aerie keeps (its hardware summary).

pub mod console;
pub mod figures;
pub mod json;
pub mod machine;
pub mod parse;
pub mod progress;
pub mod qmp;
pub mod render;
pub mod report;
pub mod runs;
pub mod snapshot;
pub mod stats;
pub mod systems;
pub mod tables;
pub mod xen;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use parse::{AerieMemory, GuestResults};
use progress::Progress;
use report::{Command, Report, Table, Unmeasured};
use runs::{Samples, Step, micro_label, vcpus_name};
use snapshot::{Case, Saver, SnapshotGuest, Stage};
use systems::{LinuxGuest, MicroGuest, System};
use tables::{Heading, RowSamples, Series};

use crate::cli::{BenchOptions, BenchPart};
use xtask::cli::{Profile, RunOptions};
use xtask::error::{Context, Error, Result};
use xtask::guest;
use xtask::guest_material;
use xtask::image;
use xtask::initramfs::READY_MARKER;
use xtask::paths::Layout;
use xtask::run;
use xtask::setup;
use xtask::test_guests;

/// Rounds of a full run.
pub const DEFAULT_PAIRS: u32 = 7;
/// Where a full run writes its report, relative to the workspace root.
pub const DEFAULT_OUT: &str = "docs/bench";
/// The report's file names.
pub const MARKDOWN_NAME: &str = "latest.md";
/// The report's file names.
pub const JSON_NAME: &str = "latest.json";

/// Where the report went, and what failed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `latest.md`.
    pub markdown: PathBuf,
    /// `latest.json`.
    pub json: PathBuf,
    /// The figures `latest.md` shows.
    pub figures: Vec<PathBuf>,
    /// Runs that failed (their rows have fewer samples).
    pub failures: Vec<String>,
}

/// Runs `cargo xtask bench`: exit 0 when the report was written and every run
/// worked, 1 when some run failed (the report says which).
pub fn run(layout: &Layout, options: &BenchOptions) -> Result<ExitCode> {
    let written = measure(layout, options)?;
    println!(
        "bench: report written to {} and {}, with {} figure(s) beside them",
        written.markdown.display(),
        written.json.display(),
        written.figures.len()
    );
    if written.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "bench: {} run(s) failed (listed in the report):",
            written.failures.len()
        );
        for failure in &written.failures {
            eprintln!("  {failure}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// What a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    rounds: usize,
    vcpus: Vec<u32>,
    systems: Vec<System>,
    boot: bool,
    icount_boot: bool,
    disk: bool,
    micro: bool,
    snapshot_cases: Vec<Case>,
}

impl Plan {
    fn new(options: &BenchOptions) -> Self {
        let mut plan = if options.quick {
            Self {
                rounds: options.pairs.unwrap_or(1) as usize,
                vcpus: vec![1],
                systems: vec![System::None, System::Aerie],
                boot: true,
                icount_boot: false,
                disk: false,
                micro: true,
                snapshot_cases: vec![Case::Idle],
            }
        } else {
            Self {
                rounds: options.pairs.unwrap_or(DEFAULT_PAIRS) as usize,
                vcpus: vec![1, 2],
                systems: vec![System::None, System::Aerie, System::Xen],
                boot: true,
                icount_boot: true,
                disk: true,
                micro: true,
                snapshot_cases: Case::ALL.to_vec(),
            }
        };
        if let Some(part) = options.only {
            plan.boot &= part == BenchPart::Boot;
            plan.icount_boot &= part == BenchPart::Boot;
            plan.disk &= part == BenchPart::Disk;
            plan.micro &= part == BenchPart::Exits;
            if part != BenchPart::Snapshot {
                plan.snapshot_cases.clear();
            }
        }
        plan
    }

    /// The runs of one round, in order (`micro_systems`: the micro-benchmark's).
    fn steps(&self, micro_systems: &[System]) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.boot {
            for &vcpus in &self.vcpus {
                for &system in &self.systems {
                    steps.push(Step::BootWall(system, vcpus));
                    if self.icount_boot {
                        steps.push(Step::BootIcount(system, vcpus));
                    }
                }
            }
        }
        if self.disk {
            steps.extend(self.systems.iter().map(|&system| Step::Disk(system)));
        }
        if self.micro {
            steps.extend(micro_systems.iter().map(|&system| Step::Micro(system)));
        }
        for &case in &self.snapshot_cases {
            steps.extend(Saver::ALL.map(|saver| Step::Snapshot(saver, case)));
        }
        steps
    }

    /// Whether a row that compares with Xen runs.
    fn needs_xen(&self) -> bool {
        self.systems.contains(&System::Xen) && (self.boot || self.disk || self.micro)
    }
}

/// The command that reproduces a report made with `options`.
fn reproduce(options: &BenchOptions) -> String {
    let mut command = "cargo xtask bench".to_string();
    if options.quick {
        command.push_str(" --quick");
    }
    if let Some(part) = options.only {
        command.push_str(&format!(" --only {}", part.name()));
    }
    if let Some(pairs) = options.pairs {
        command.push_str(&format!(" --pairs {pairs}"));
    }
    if let Some(out) = &options.out {
        command.push_str(&format!(" --out {}", out.display()));
    }
    command
}

/// The output directory for `options`: the committed report only for a full run of
/// every row.
fn out_dir(layout: &Layout, options: &BenchOptions) -> PathBuf {
    match &options.out {
        Some(dir) => dir.clone(),
        None if options.quick || options.only.is_some() => layout.aerie_dir().join("bench"),
        None => layout.root().join(DEFAULT_OUT),
    }
}

/// Runs the benchmark and writes the report; returns where it went.
pub fn measure(layout: &Layout, options: &BenchOptions) -> Result<Written> {
    setup::ensure_qemu()?;
    let mut plan = Plan::new(options);
    let work = layout.aerie_dir().join("bench");
    std::fs::create_dir_all(&work).context(|| format!("cannot create {}", work.display()))?;
    let snapshots = work.join("snapshots.img");
    run::ensure_sparse_disk(&snapshots, DISK_BYTES)?;
    // The guest's disk is written out in full (zeros), so that every system reads
    // allocated blocks from the host's page cache rather than holes.
    let disk = work.join("disk.img");
    if plan.disk {
        std::fs::write(&disk, vec![0u8; DISK_BYTES as usize])
            .context(|| format!("cannot write {}", disk.display()))?;
    }

    // What is measured is what this build sees: record it now, not when the report
    // is written (the tree may change while the rounds run).
    let source = machine::source(layout.root());
    let built = image::build(layout, Profile::Release)?;
    let image_bytes = std::fs::metadata(&built.image)
        .context(|| format!("cannot read {}", built.image.display()))?
        .len();

    let mut notes = static_notes();
    let xen = if plan.needs_xen() {
        match xen::ensure(layout) {
            Ok(xen) => Some(xen),
            Err(error) => {
                notes.push(format!(
                    "Xen's columns are missing: {} could not be fetched ({error}).",
                    xen::PACKAGE
                ));
                plan.systems.retain(|system| *system != System::Xen);
                None
            }
        }
    } else {
        None
    };

    let linux_options = systems::run_options(1, systems::LINUX_MEM_MIB, &snapshots);
    let files = guest_material::choose(layout, &linux_options)?
        .ok_or_else(|| Error::new("no default guest"))?;
    let bundle = guest::pack(
        &files.kernel,
        files.initrd.as_deref(),
        files.cmdline.as_deref(),
        &work.join("linux.cpio"),
    )?;
    let linux = LinuxGuest {
        files,
        bundle,
        image: built.image.clone(),
        snapshots: snapshots.clone(),
        xen: xen.as_ref().map(|xen| xen.binary.clone()),
        disk,
    };
    let snapshot_guest = SnapshotGuest::new(
        linux.files.clone(),
        linux.bundle.clone(),
        built.image.clone(),
        &work,
    );
    let mut micro_systems = Vec::new();
    let micro = if plan.micro {
        let mut micro = micro_guest(
            layout,
            &built.image,
            &snapshots,
            None,
            &work.join("bench.cpio"),
        )?;
        let flat = micro.flat.clone();
        micro_systems = vec![System::None, System::Aerie];
        if let Some(xen) = &xen {
            let size = std::fs::metadata(&flat)
                .context(|| format!("cannot read {}", flat.display()))?
                .len();
            match xen::domu_dtb(
                &systems::xen_micro_machine(),
                size,
                systems::MICRO_MEM_MIB,
                systems::MICRO_VCPUS,
                &work,
            ) {
                Ok(dtb) => {
                    micro.xen = Some((xen.binary.clone(), dtb));
                    micro_systems.push(System::Xen);
                }
                Err(error) => notes.push(format!(
                    "The micro-benchmark has no Xen column: the device tree describing the \
                     guest as Xen's domU could not be made ({error})."
                )),
            }
        }
        Some(micro)
    } else {
        None
    };

    let mut samples = Samples::default();
    let steps = plan.steps(&micro_systems);
    let mut progress = Progress::new(plan.rounds, steps.len());
    for round in 0..plan.rounds {
        for (index, &step) in steps.iter().enumerate() {
            progress.start(round, index, &step.describe());
            samples.run(step, &linux, micro.as_ref(), &snapshot_guest);
        }
    }
    progress.finish();
    snapshot_guest.clean_up();

    let mut tables = Vec::new();
    if plan.boot {
        tables.push(boot_table(&plan, &samples, false));
        if plan.icount_boot {
            tables.push(boot_table(&plan, &samples, true));
        }
    }
    if plan.disk {
        tables.push(disk_table(&plan, &samples));
    }
    if micro.is_some() {
        let micro_runs: Vec<_> = micro_systems
            .iter()
            .map(|&system| (system, samples.micro_results(system)))
            .collect();
        tables.push(exit_table(&micro_runs, false));
        tables.push(exit_table(&micro_runs, true));
    }
    if !plan.snapshot_cases.is_empty() {
        tables.push(snapshot_time_table(&plan, &samples));
        tables.push(snapshot_size_table(&plan, &samples));
        notes.push(SNAPSHOT_NOTE.to_string());
    }
    let memory = samples
        .aerie_console
        .as_deref()
        .and_then(AerieMemory::parse);
    let given_away = (systems::LINUX_MEM_MIB << 20) + linux.bundle.size;
    tables.push(footprint_table(image_bytes, memory.as_ref(), given_away));
    if micro.as_ref().is_some_and(|micro| micro.xen.is_some()) {
        notes.push(XEN_MICRO_NOTE.to_string());
    }

    let guest_dir = guest_material::guest_dir(layout);
    let sources = guest_dir.join("SOURCES");
    let mut machine_facts = vec![
        ("host CPU".to_string(), machine::host_cpu()),
        ("QEMU".to_string(), machine::qemu_version()),
        (
            "emulated machine".to_string(),
            format!(
                "virt, GICv{}, {} CPUs (TCG); the guest gets {} MiB of RAM in the boot rows, \
                 {} MiB with {} vCPUs in the micro-benchmark and {} MiB with {} vCPU in the \
                 snapshot rows",
                RunOptions::default().gic.version(),
                RunOptions::default().cpu,
                systems::LINUX_MEM_MIB,
                systems::MICRO_MEM_MIB,
                systems::MICRO_VCPUS,
                snapshot::MEM_MIB,
                snapshot::VCPUS
            ),
        ),
        (
            "guest kernel".to_string(),
            machine::package_version(&sources, "linux-image-"),
        ),
        (
            "guest userspace".to_string(),
            format!(
                "{}, in the initramfs of `cargo xtask run` (scripts/src/initramfs.rs)",
                machine::package_version(&sources, "busybox")
            ),
        ),
        (
            "guest command line".to_string(),
            format!("`{}`", linux.files.cmdline.as_deref().unwrap_or_default()),
        ),
        (
            "Aerie".to_string(),
            format!(
                "{}, release build, {} bytes (target/aerie/aerie.bin)",
                env!("CARGO_PKG_VERSION"),
                report::number(image_bytes as f64, 0)
            ),
        ),
    ];
    if let Some(xen) = &xen {
        let version = parse::deb_package(&xen.deb).map_or_else(
            || xen.deb.clone(),
            |(name, version)| format!("{name} {version}"),
        );
        machine_facts.push(("Xen".to_string(), version));
    }

    let report = Report {
        generated: machine::now_utc(),
        source,
        quick: options.quick,
        only: options.only.map(|part| part.name().to_string()),
        pairs: plan.rounds,
        reproduce: reproduce(options),
        machine: machine_facts,
        goals: tables::goals(&tables, image_bytes, memory.map(|memory| memory.image_span)),
        tables,
        not_yet: not_yet_measurable(&plan),
        notes,
        commands: commands(
            layout.root(),
            &plan,
            &linux,
            micro.as_ref(),
            &micro_systems,
            &snapshot_guest,
        ),
        failures: samples.failures.clone(),
    };
    write(layout, options, &report, samples.failures)
}

/// Writes the report's files where `options` say.
fn write(
    layout: &Layout,
    options: &BenchOptions,
    report: &Report,
    failures: Vec<String>,
) -> Result<Written> {
    let files = render::write(&out_dir(layout, options), report)?;
    Ok(Written {
        markdown: files.markdown,
        json: files.json,
        figures: files.figures,
        failures,
    })
}

fn boot_table(plan: &Plan, samples: &Samples, icount: bool) -> Table {
    let heading = if icount {
        Heading {
            id: "boot-icount",
            title: "Linux boot to userspace, guest time under icount".into(),
            about: "The same boots under `-icount shift=0,sleep=off`, where the guest's \
                    clock advances 1 ns per instruction executed (by any vCPU: QEMU then runs \
                    them one at a time) and jumps over periods when every vCPU is idle. The \
                    figure is the timestamp of the kernel's `Run /init as init process` log \
                    line, read with `dmesg` in the guest's shell once it is up: the guest time \
                    from the kernel starting its clock (`time_init`, early in `start_kernel`) \
                    to userspace. It leaves out the hypervisor's own start-up and the kernel's \
                    first steps, and it does not move with the host's load."
                .into(),
            unit: "ms of guest time",
            decimals: 1,
            columns: plan.systems.iter().map(|s| s.label().to_string()).collect(),
            shorts: plan.systems.iter().map(|s| s.short()).collect(),
            ratios: (1..plan.systems.len()).map(|column| (column, 0)).collect(),
        }
    } else {
        Heading {
            id: "boot-wall",
            title: "Linux boot to userspace, wall clock".into(),
            about: format!(
                "Seconds from QEMU's start to the guest's `{READY_MARKER}` line on the console \
                 (printed by the initramfs's `/init` after mounting /proc, /sys and /dev, just \
                 before the shell starts). QEMU runs one host thread per vCPU (MTTCG) on this \
                 machine's cores."
            ),
            unit: "s",
            decimals: 2,
            columns: plan.systems.iter().map(|s| s.label().to_string()).collect(),
            shorts: plan.systems.iter().map(|s| s.short()).collect(),
            ratios: (1..plan.systems.len()).map(|column| (column, 0)).collect(),
        }
    };
    let list = if icount {
        &samples.icount
    } else {
        &samples.wall
    };
    let scale = if icount { 1e3 } else { 1.0 };
    let rows: Vec<RowSamples> = plan
        .vcpus
        .iter()
        .map(|&vcpus| RowSamples {
            name: vcpus_name(vcpus),
            series: plan
                .systems
                .iter()
                .map(|&system| Series {
                    system,
                    samples: list
                        .series((system, vcpus))
                        .into_iter()
                        .map(|value| value.map(|v| v * scale))
                        .collect(),
                })
                .collect(),
            note: None,
        })
        .collect();
    tables::table(heading, &rows)
}

/// The exit-cost tables compare Aerie with Xen (`Aerie / Xen`) when Xen ran; the
/// bare column is the floor (an HVC there is one instruction), not a peer, so no
/// ratio divides by it.
fn exit_table(runs: &[(System, Vec<Option<GuestResults>>)], in_ticks: bool) -> Table {
    let columns = runs
        .iter()
        .map(|(s, _)| micro_label(*s).to_string())
        .collect();
    let shorts = runs.iter().map(|(s, _)| s.short()).collect();
    let position = |system: System| runs.iter().position(|(s, _)| *s == system);
    let ratios: Vec<(usize, usize)> = match (position(System::Aerie), position(System::Xen)) {
        (Some(aerie), Some(xen)) => vec![(aerie, xen)],
        _ => Vec::new(),
    };
    let heading = if in_ticks {
        Heading {
            id: "exits-ticks",
            title: "Exit costs in counter ticks".into(),
            about: "The table above as the guest measured it: ticks of the virtual counter \
                    (CNTVCT_EL0, 62.5 MHz on this CPU model) per operation, net of the timing \
                    loop's own cost."
                .into(),
            unit: "ticks per operation",
            decimals: 2,
            columns,
            shorts,
            ratios,
        }
    } else {
        Heading {
            id: "exits",
            title: "Exit costs under icount".into(),
            about: "The micro-benchmark test guest (tests/guests/src/bin/bench.rs) with 2 vCPUs \
                    under `-icount shift=0,sleep=off`, timing each operation with the virtual \
                    counter over many iterations (20,000 for the register and HVC rows, 1,000 \
                    IPIs, 300 timer interrupts per row). At shift 0 QEMU advances its virtual \
                    clock 1 ns per instruction, and the counter runs at 62.5 MHz from that \
                    clock, so one tick is 16 instructions: the figures are instructions per \
                    operation (ticks × 16), executed by the guest and by the hypervisor (on both \
                    vCPUs for the IPI). Without a hypervisor (\"bare\" QEMU, no EL2) QEMU \
                    answers an HVC itself as part of the instruction, and its GIC, PL011 and \
                    (empty) virtio-mmio transports are device models outside the guest, so the \
                    bare column is what the same \
                    operation costs the guest when nothing has to be emulated by guest-visible \
                    code: the floor, not a peer. Under Xen the guest is a dom0less domU with \
                    Xen's guest layout (GIC distributor at 0x0300_1000, an emulated SBSA UART, \
                    a subset of the PL011, at 0x2200_0000, and no virtio-mmio transport), which \
                    it reads from its device tree. A row that took less than a tick per operation (interrupt \
                    acknowledge + EOI) is at the counter's resolution: 16 instructions. \
                    `cargo xtask profile ROW` shows where one row's instructions go under \
                    Aerie, function by function (README, Benchmarks)."
                .into(),
            unit: "instructions per operation",
            decimals: 0,
            columns,
            shorts,
            ratios,
        }
    };
    tables::table(heading, &tables::micro_rows(runs, in_ticks))
}

fn footprint_table(image_bytes: u64, memory: Option<&AerieMemory>, given_away: u64) -> Table {
    let rows: Vec<RowSamples> = tables::footprint(image_bytes, memory, given_away)
        .into_iter()
        .map(|(name, value)| RowSamples {
            name,
            series: vec![Series {
                system: System::Aerie,
                samples: vec![value],
            }],
            note: None,
        })
        .collect();
    tables::table(
        Heading {
            id: "footprint",
            title: "Footprint".into(),
            about: "The size of Aerie's flat Image, and the RAM Aerie keeps for itself while \
                    it runs the 1 GiB Linux guest, from its hardware summary (`ram` and \
                    `aerie` lines): the machine's RAM less what is still free, the guest's RAM \
                    and the guest bundle QEMU loaded. The rest of the RAM xtask gives the \
                    machine on top of the guest's (a fixed 160 MiB share) stays free."
                .into(),
            unit: "KiB",
            decimals: 1,
            columns: vec![System::Aerie.label().to_string()],
            shorts: vec![System::Aerie.short()],
            ratios: Vec::new(),
        },
        &rows,
    )
}

fn snapshot_time_table(plan: &Plan, samples: &Samples) -> Table {
    tables::table(
        Heading {
            id: "snapshot",
            title: format!(
                "Snapshot and restore of a {} MiB guest, wall clock",
                snapshot::MEM_MIB
            ),
            about: format!(
                "The Linux guest of the boot rows with {mem} MiB of RAM and {vcpus} vCPU, booted \
                 to its shell and saved at once (idle) or after writing {fill} MiB from \
                 `/dev/urandom` to a tmpfs ({fill} MiB in tmpfs). Aerie saves it with its \
                 console command `snapshot` to its snapshot disk (a sparse raw file behind \
                 QEMU's virtio-blk, made afresh for each save); without a hypervisor, QEMU \
                 migrates the same guest, running, to a file with QMP's `migrate` to `exec:cat \
                 > FILE` (live: it stops the guest for the last pass only, and leaves it \
                 stopped). Save: from the command (`snapshot` typed; `migrate` sent) to its \
                 result (Aerie's `saved` line; `query-migrate`, asked every 5 ms, \
                 `completed`); by its own clock: the time in Aerie's line, QEMU's \
                 `total-time`. Restore to a shell: a new QEMU, with `aerie.restore` on \
                 Aerie's command line or with `-incoming 'exec:cat FILE'`, from its start \
                 until the guest's shell answers `{probe}` (typed every 50 ms from Aerie's \
                 `resuming the guest` line, or from QEMU's start: bytes typed before the \
                 guest runs again are lost). Boot to a shell: the same from the idle save \
                 runs' cold boot, typing from the `{READY_MARKER}` line on.",
                mem = snapshot::MEM_MIB,
                vcpus = snapshot::VCPUS,
                fill = snapshot::FILL_MIB,
                probe = snapshot::PROBE.trim_end(),
            ),
            unit: "s",
            decimals: 2,
            columns: Saver::ALL.map(|s| s.label().to_string()).to_vec(),
            shorts: Saver::ALL.map(Saver::short).to_vec(),
            ratios: vec![(1, 0)],
        },
        &tables::snapshot_time_rows(&samples.snapshot, &plan.snapshot_cases),
    )
}

fn snapshot_size_table(plan: &Plan, samples: &Samples) -> Table {
    tables::table(
        Heading {
            id: "snapshot-size",
            title: format!("Snapshot size, {} MiB guest", snapshot::MEM_MIB),
            about: "What a snapshot takes: for Aerie, the bytes of its slot on the snapshot \
                    disk (chunk headers, vCPU and device state, a description, and guest RAM \
                    without its zero pages), as Aerie's own reader finds them after the run; \
                    for QEMU, the migration file. Of which guest RAM: the RAM pages stored \
                    (Aerie's memory chunks; QEMU's `normal-bytes`, the pages it sent in full: \
                    it sends a zero page as a flag of a few bytes)."
                .into(),
            unit: "MiB",
            decimals: 1,
            columns: Saver::ALL.map(|s| s.label().to_string()).to_vec(),
            shorts: Saver::ALL.map(Saver::short).to_vec(),
            ratios: vec![(1, 0)],
        },
        &tables::snapshot_size_rows(&samples.snapshot, &plan.snapshot_cases),
    )
}

/// How the snapshot rows compare.
const SNAPSHOT_NOTE: &str = "The snapshot rows compare Aerie with QEMU's migration of the \
    guest without a hypervisor, not with Xen: Xen saves a guest with its toolstack \
    (`xl save`), from dom0, and only a domU, which this bench does not set up. Both sides \
    write to the host's page cache (QEMU's virtio-blk with its default writeback cache; \
    `cat` to a file). QEMU migrates the running guest (pre-copy), Aerie stops its vCPUs \
    for the whole save: for an idle guest that is the same work, but QEMU's guest keeps \
    running meanwhile. Aerie's save includes its progress lines on the console.";

/// How the micro-benchmark runs under Xen.
const XEN_MICRO_NOTE: &str = "Under Xen the micro-benchmark runs as a dom0less domU (no dom0), \
    described in the device tree's `/chosen` (a `xen,domain` node: 2 vCPUs, 64 MiB, \
    `vpl011`) that xtask makes from QEMU's with `dtc`: the test guests' runtime runs only \
    at its link address, the start of guest RAM at 0x4000_0000, where a domU's RAM starts, \
    while Xen maps dom0's RAM 1:1 wherever its heap has room (0x6000_0000 in these runs). \
    The Xen column is therefore a domU's cost, the Linux rows a dom0's; Aerie's guest is \
    the only guest either way. The goal's comparison uses this run's Xen column; \
    ../shared/docs/measuring.md recorded Xen 4.17 dom0 figures (HVC 1,652, vGIC \
    distributor read 596, EOI 21 instructions) measured differently.";

/// Caveats every report carries.
fn static_notes() -> Vec<String> {
    vec![
        "Without a hypervisor the kernel boots on QEMU's own `virt` device tree, which has \
         more devices (PCIe host bridge, fw-cfg, flash, RTC, GPIO) than the one Aerie writes \
         for its guest, so it probes more drivers; as Xen's dom0 it sees the host's tree \
         less Xen's own devices (PCIe included). The boot rows compare the whole experience, \
         not identical kernel work."
            .to_string(),
        "Xen's dom0 boots the same kernel and initramfs with the same command line except \
         for its console (`console=hvc0 earlycon=xen` instead of the PL011, which Xen keeps), \
         on the same machine (`virtualization=on`, same CPU model and vCPUs) but with 1 GiB \
         of RAM beside dom0's instead of Aerie's 160 MiB and bundle: Xen maps dom0's RAM \
         1:1 in large aligned blocks and cannot place 1 GiB in less. Xen keeps its own \
         defaults otherwise (credit2 scheduler, background scrubbing of free RAM)."
            .to_string(),
        "The IPI row is a round trip: under icount QEMU runs the vCPUs one at a time and \
         switches when the running one idles (or after a long time slice), so a one-way \
         \"until the target sees it\" time would measure QEMU's scheduling. With both vCPUs \
         waiting in WFI the switch is immediate, and the figure counts what both vCPUs (and \
         Aerie on both CPUs) execute for one SGI there and one back."
            .to_string(),
        "The wall-clock figures move with the host's load (30-60% between batches on these \
         machines): only the ratios within rounds mean much. The icount figures are \
         deterministic up to the order in which QEMU's timers fire."
            .to_string(),
    ]
}

/// The rows of a full run that this run leaves out, and why.
fn not_yet_measurable(plan: &Plan) -> Vec<Unmeasured> {
    let mut rows = Vec::new();
    let left_out = |what: &str| Unmeasured {
        row: what.to_string(),
        why: "not measured in this run (`cargo xtask bench` measures it).".to_string(),
    };
    if !plan.boot {
        rows.push(left_out("Linux boot to userspace"));
    }
    if !plan.disk {
        rows.push(left_out("virtio-blk read and write throughput"));
    }
    if !plan.micro {
        rows.push(left_out("exit costs"));
    }
    if plan.snapshot_cases.is_empty() {
        rows.push(left_out(
            "snapshot and restore time and size against QEMU's migration to a file",
        ));
    } else if !plan.snapshot_cases.contains(&Case::Filled) {
        rows.push(left_out(&format!(
            "snapshot and restore of the guest with {} MiB in tmpfs",
            snapshot::FILL_MIB
        )));
    }
    rows
}

/// Builds the micro-benchmark guest and packs it for Aerie into `bundle`, with
/// `cmdline` as its command line (read from the device tree's `/chosen/bootargs`).
pub fn micro_guest(
    layout: &Layout,
    image: &Path,
    snapshots: &Path,
    cmdline: Option<&str>,
    bundle: &Path,
) -> Result<MicroGuest> {
    let guests = test_guests::build(layout)?;
    let flat = guests.dir.join("bench.bin");
    Ok(MicroGuest {
        elf: layout.binary(Profile::Release, "bench"),
        bundle: guest::pack(&flat, None, cmdline, bundle)?,
        flat,
        image: image.to_path_buf(),
        snapshots: snapshots.to_path_buf(),
        xen: None,
    })
}

/// The size of the bench's disks (the guest's and Aerie's snapshot disk).
pub(crate) const DISK_BYTES: u64 = 256 << 20;

fn disk_table(plan: &Plan, samples: &Samples) -> Table {
    let rows: Vec<RowSamples> = [("read", &samples.disk_read), ("write", &samples.disk_write)]
        .into_iter()
        .map(|(name, list)| RowSamples {
            name: format!("{name} {} MiB, 1 MiB blocks, direct I/O", runs::DISK_MIB),
            series: plan
                .systems
                .iter()
                .map(|&system| Series {
                    system,
                    samples: list.series((system, runs::DISK_VCPUS)),
                })
                .collect(),
            note: None,
        })
        .collect();
    tables::table(
        Heading {
            id: "virtio-blk",
            title: "virtio-blk throughput, wall clock".into(),
            about: format!(
                "The guest (1 vCPU) reads {mib} MiB from its virtio-blk disk `/dev/vda` with \
                 `dd iflag=direct`, then writes {mib} MiB to it with `oflag=direct`, each timed \
                 with the kernel's monotonic clock (`/proc/timer_list`). The disk is the same \
                 256 MiB raw file on the host (target/aerie/bench/disk.img) behind QEMU's \
                 virtio-blk-device: the guest drives it directly without a hypervisor and as \
                 Xen's dom0, and through Aerie's emulated virtio-blk under Aerie (Aerie's \
                 own driver forwards the requests to QEMU's device).",
                mib = runs::DISK_MIB
            ),
            unit: "MiB/s",
            decimals: 0,
            columns: plan.systems.iter().map(|s| s.label().to_string()).collect(),
            shorts: plan.systems.iter().map(|s| s.short()).collect(),
            ratios: (1..plan.systems.len()).map(|column| (column, 0)).collect(),
        },
        &rows,
    )
}

/// The exact commands, one per configuration (2 vCPUs where the rows have both).
fn commands(
    root: &Path,
    plan: &Plan,
    linux: &LinuxGuest,
    micro: Option<&MicroGuest>,
    micro_systems: &[System],
    snapshot_guest: &SnapshotGuest,
) -> Vec<Command> {
    let vcpus = plan.vcpus.last().copied().unwrap_or(1);
    let mut commands = Vec::new();
    let boot_systems: &[System] = if plan.boot { &plan.systems } else { &[] };
    for &system in boot_systems {
        commands.push((
            format!(
                "Linux boot, {}, {}{}{}",
                system.label(),
                vcpus_name(vcpus),
                if plan.vcpus.len() > 1 {
                    match system {
                        System::None => " (the 1-vCPU rows: `-smp 1`)",
                        System::Aerie => " (the 1-vCPU rows: `-smp 1`, `aerie.guest.smp=1`)",
                        System::Xen => " (the 1-vCPU rows: `-smp 1`, `dom0_max_vcpus=1`)",
                    }
                } else {
                    ""
                },
                if plan.icount_boot {
                    "; the icount rows add `-icount shift=0,sleep=off` and, once the guest is \
                     ready, type `dmesg | grep 'Run /init as init process'` in its shell"
                } else {
                    ""
                }
            ),
            systems::shown(
                &systems::linux(
                    linux,
                    system,
                    systems::LinuxRun {
                        smp: vcpus,
                        icount: false,
                        disk: false,
                    },
                ),
                root,
            ),
        ));
    }
    if plan.disk {
        for &system in &plan.systems {
            commands.push((
                format!(
                    "virtio-blk, {} (then typed in the guest's shell: `{}`)",
                    system.label(),
                    parse::disk_command(runs::DISK_MIB).replace('\n', "; ")
                ),
                systems::shown(
                    &systems::linux(
                        linux,
                        system,
                        systems::LinuxRun {
                            smp: runs::DISK_VCPUS,
                            icount: false,
                            disk: true,
                        },
                    ),
                    root,
                ),
            ));
        }
    }
    if let Some(micro) = micro {
        for &system in micro_systems {
            commands.push((
                format!("micro-benchmark, {}", micro_label(system)),
                systems::shown(&systems::micro(micro, system), root),
            ));
        }
    }
    if !plan.snapshot_cases.is_empty() {
        let typed = format!(
            "typed in the guest's shell once `{READY_MARKER}` is printed: `{}` until it \
             answers, and for the filled case then `{}`",
            snapshot::PROBE.trim_end(),
            snapshot::fill_command().trim_end()
        );
        for (saver, stage, what) in [
            (
                Saver::Qemu,
                Stage::Save,
                format!(
                    "{typed}; then on QMP: `migrate` with `\"uri\": \"{}\"`, and \
                     `query-migrate` every 5 ms until it is completed",
                    snapshot::migration_uri(&snapshot_guest.migration)
                ),
            ),
            (
                Saver::Qemu,
                Stage::Restore,
                format!(
                    "`{}` typed every 50 ms from the start until it answers",
                    snapshot::PROBE.trim_end()
                ),
            ),
            (
                Saver::Aerie,
                Stage::Save,
                format!("{typed}; then Ctrl-A c, and `snapshot` at the `aerie> ` prompt"),
            ),
            (
                Saver::Aerie,
                Stage::Restore,
                format!(
                    "`{}` typed every 50 ms from Aerie's `resuming the guest` line until it \
                     answers",
                    snapshot::PROBE.trim_end()
                ),
            ),
        ] {
            let name = match stage {
                Stage::Save => "save",
                Stage::Restore => "restore",
            };
            let root_prefix = format!("{}/", root.display());
            commands.push((
                format!("snapshot rows, {}, {name} ({what})", saver.label())
                    .replace(&root_prefix, ""),
                systems::shown(&snapshot::command(snapshot_guest, saver, stage), root),
            ));
        }
    }
    commands
        .into_iter()
        .map(|(label, command)| Command { label, command })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let quick = Plan::new(&BenchOptions {
            quick: true,
            ..BenchOptions::default()
        });
        assert_eq!(quick.rounds, 1);
        assert_eq!(quick.vcpus, [1]);
        assert_eq!(quick.systems, [System::None, System::Aerie]);
        assert!(!quick.icount_boot);
        let full = Plan::new(&BenchOptions::default());
        assert_eq!(full.rounds, 7);
        assert_eq!(full.vcpus, [1, 2]);
        assert_eq!(full.systems, [System::None, System::Aerie, System::Xen]);
        assert!(full.icount_boot);
        let three = Plan::new(&BenchOptions {
            pairs: Some(3),
            ..BenchOptions::default()
        });
        assert_eq!(three.rounds, 3);
        assert_eq!(quick.snapshot_cases, [Case::Idle]);
        assert_eq!(full.snapshot_cases, Case::ALL);
        assert!(full.needs_xen() && !quick.needs_xen());
        let only = |part, quick| {
            Plan::new(&BenchOptions {
                only: Some(part),
                quick,
                ..BenchOptions::default()
            })
        };
        let snapshot = only(BenchPart::Snapshot, false);
        assert!(!snapshot.boot && !snapshot.icount_boot && !snapshot.disk && !snapshot.micro);
        assert_eq!(snapshot.snapshot_cases, Case::ALL);
        assert_eq!(snapshot.rounds, 7);
        assert!(!snapshot.needs_xen(), "no Xen for the snapshot rows");
        assert_eq!(only(BenchPart::Snapshot, true).snapshot_cases, [Case::Idle]);
        let boot = only(BenchPart::Boot, false);
        assert!(boot.boot && boot.icount_boot && !boot.disk && !boot.micro);
        assert!(boot.snapshot_cases.is_empty() && boot.needs_xen());
        let exits = only(BenchPart::Exits, false);
        assert!(exits.micro && !exits.boot && exits.needs_xen());
        let disk = only(BenchPart::Disk, true);
        assert!(!disk.disk, "a quick run has no disk rows");
        let missing: Vec<String> = not_yet_measurable(&snapshot)
            .into_iter()
            .map(|unmeasured| unmeasured.row)
            .collect();
        assert_eq!(
            missing,
            [
                "Linux boot to userspace",
                "virtio-blk read and write throughput",
                "exit costs"
            ]
        );
        assert_eq!(
            quick.steps(&[System::None, System::Aerie]),
            [
                Step::BootWall(System::None, 1),
                Step::BootWall(System::Aerie, 1),
                Step::Micro(System::None),
                Step::Micro(System::Aerie),
                Step::Snapshot(Saver::Qemu, Case::Idle),
                Step::Snapshot(Saver::Aerie, Case::Idle),
            ]
        );
        let all_micro = [System::None, System::Aerie, System::Xen];
        assert_eq!(full.steps(&all_micro).len(), 2 * 3 * 2 + 3 + 3 + 2 * 2);
        assert_eq!(
            only(BenchPart::Exits, false).steps(&all_micro),
            all_micro.map(Step::Micro)
        );
        let quick_missing = not_yet_measurable(&quick);
        assert_eq!(quick_missing.len(), 2);
        assert!(quick_missing[1].row.contains("180 MiB in tmpfs"));
        assert!(not_yet_measurable(&full).is_empty());
    }

    #[test]
    fn outputs_and_the_command_to_reproduce() {
        let layout = Layout::new("/w".into(), None);
        assert_eq!(
            out_dir(&layout, &BenchOptions::default()),
            Path::new("/w/docs/bench")
        );
        let quick = BenchOptions {
            quick: true,
            ..BenchOptions::default()
        };
        assert_eq!(out_dir(&layout, &quick), Path::new("/w/target/aerie/bench"));
        let elsewhere = BenchOptions {
            out: Some("/tmp/r".into()),
            pairs: Some(9),
            ..quick.clone()
        };
        assert_eq!(out_dir(&layout, &elsewhere), Path::new("/tmp/r"));
        assert_eq!(reproduce(&BenchOptions::default()), "cargo xtask bench");
        assert_eq!(
            reproduce(&elsewhere),
            "cargo xtask bench --quick --pairs 9 --out /tmp/r"
        );
        let snapshot = BenchOptions {
            only: Some(BenchPart::Snapshot),
            ..BenchOptions::default()
        };
        assert_eq!(
            out_dir(&layout, &snapshot),
            Path::new("/w/target/aerie/bench"),
            "a partial run leaves the committed report alone"
        );
        assert_eq!(reproduce(&snapshot), "cargo xtask bench --only snapshot");
    }

    #[test]
    fn boot_tables_compare_round_by_round() {
        let mut list = runs::BootSamples::default();
        list.push((System::Aerie, 1), Some(1.0));
        list.push((System::None, 1), Some(2.0));
        let plan = Plan::new(&BenchOptions {
            quick: true,
            ..BenchOptions::default()
        });
        let samples = Samples {
            wall: list,
            ..Samples::default()
        };
        let table = boot_table(&plan, &samples, false);
        assert_eq!(table.columns, ["no hypervisor", "Aerie"]);
        assert_eq!(table.ratio_columns, ["Aerie / none"]);
        assert_eq!(table.rows[0].name, "1 vCPU");
        assert_eq!(table.rows[0].cells[1].as_ref().unwrap().median, 1.0);
        assert_eq!(table.rows[0].ratios[0].as_ref().unwrap().median, 0.5);
    }
}
