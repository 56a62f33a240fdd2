//! Every command and option, both spellings, the defaults, and every refusal.

use clap::CommandFactory;

use super::args::Cli;
use super::*;

fn parse_line(line: &str) -> Result<Command, clap::Error> {
    let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    parse(&args)
}

fn run(line: &str) -> RunOptions {
    match parse_line(line) {
        Ok(Command::Run(options)) => options,
        other => panic!("`{line}` parsed as {other:?}"),
    }
}

/// The usage error `line` gets (exit status 2), as printed.
fn error(line: &str) -> String {
    match parse_line(line) {
        Err(usage) => {
            let text = usage.to_string();
            assert_eq!(usage.exit_code(), 2, "`{line}`: {text}");
            assert!(usage.use_stderr(), "`{line}`: {text}");
            text
        }
        Ok(command) => panic!("`{line}` was accepted as {command:?}"),
    }
}

/// The help `line` asks for (stdout, exit status 0).
fn help(line: &str) -> String {
    match parse_line(line) {
        Err(shown) if shown.exit_code() == 0 && !shown.use_stderr() => shown.to_string(),
        other => panic!("`{line}` gave no help: {other:?}"),
    }
}

#[test]
fn the_description_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn commands_and_help() {
    assert_eq!(
        parse_line("build").unwrap(),
        Command::Build(BuildOptions::default())
    );
    assert_eq!(
        parse_line("build --debug").unwrap(),
        Command::Build(BuildOptions {
            profile: Profile::Debug
        })
    );
    assert_eq!(parse_line("fixtures").unwrap(), Command::Fixtures);
    assert_eq!(
        parse_line("stress").unwrap(),
        Command::Stress(StressOptions::default())
    );
    assert_eq!(
        parse_line("stress --runs 200 --load --parallel=4").unwrap(),
        Command::Stress(StressOptions {
            runs: 200,
            parallel: 4,
            load: true
        })
    );
    assert!(error("stress --runs 0").contains("invalid value '0' for '--runs <N>'"));
    assert!(error("stress --runs 100001").contains("not in 1..=100000"));
    assert!(error("stress --parallel many").contains("invalid value 'many' for '--parallel <P>'"));
    assert!(error("stress --parallel 65").contains("not in 1..=64"));
    assert!(help("help").contains("Usage: cargo xtask <COMMAND>"));
    assert_eq!(help("--help"), help("help"));
    assert_eq!(help("-h"), help("help"));
    assert!(help("run --smp 3 -h").contains("Usage: cargo xtask run [OPTIONS]"));
    assert_eq!(help("help run"), help("run --help"));
    // No command: the list of commands, as an error (status 2).
    let none = error("");
    assert!(none.contains("Usage: cargo xtask <COMMAND>") && none.contains("sdcard"));
    assert!(error("frobnicate").contains("unrecognized subcommand 'frobnicate'"));
}

/// `cargo xtask help` lists every command; each command's `--help` every option
/// clap knows for it, each option of `run` by the name users type.
#[test]
fn help_is_generated_for_every_command_and_option() {
    let top = help("help");
    let cli = Cli::command();
    for command in cli.get_subcommands() {
        let name = command.get_name();
        assert!(
            top.contains(&format!("\n  {name} ")),
            "help lacks {name}:\n{top}"
        );
        if args::forwarded(name, Vec::new()).is_some() {
            continue; // aerie-bench's help, tested there
        }
        let text = help(&format!("{name} --help"));
        for option in command.get_arguments() {
            let shown = match option.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("<{}>", option.get_value_names().unwrap()[0]),
            };
            assert!(
                text.contains(&shown),
                "`{name} --help` lacks {shown}:\n{text}"
            );
        }
    }
    for command in [
        "build", "run", "test", "stress", "fixtures", "bench", "profile", "sdcard", "snapshot",
    ] {
        assert!(
            top.contains(&format!("\n  {command} ")),
            "help lacks {command}"
        );
    }
    let run_help = help("run --help");
    for option in [
        "--kernel <FILE>",
        "--initrd <FILE>",
        "--append <ARGS>",
        "--exec <CMD>",
        "--timeout <SECS>",
        "--verbose",
        "--no-hyp",
        "--disk <FILE>",
        "--no-guest",
        "--bios <FW>",
        "--flash-vars <FILE>",
        "--snapshot-disk <FILE>",
        "--snapshot\n",
        "--restore",
        "--smp <N>",
        "--mem <SIZE>",
        "--cpu <MODEL>",
        "--gic <VERSION>",
        "--board <NAME>",
        "--gdb",
        "--debug",
        "[default: 2]",
        "[default: 1G]",
        "[default: cortex-a72]",
        "[default: 3]",
        "[default: virt]",
        "virt-gicv2",
        "raspi4b",
    ] {
        assert!(run_help.contains(option), "`run --help` lacks {option}");
    }
    for keys in [
        "Ctrl-A x",
        "Ctrl-A h",
        "Ctrl-A c",
        "Ctrl-A s",
        "Ctrl-A v",
        "Ctrl-A Ctrl-A",
    ] {
        assert!(run_help.contains(keys), "`run --help` lacks {keys}");
    }
    for (command, options) in [
        ("build", &["--debug"][..]),
        ("test", &["--host-only", "--filter <NAME>"]),
        ("stress", &["--runs <N>", "--parallel <P>", "--load"]),
        (
            "sdcard",
            &[
                "--board <BOARD>",
                "rpi4",
                "rpi5",
                "--out <DIR>",
                "--kernel <FILE>",
                "--initrd <FILE>",
                "--append <ARGS>",
                "--mem <SIZE>",
                "--smp <N>",
                "[default: 512M]",
                "[default: 4]",
            ],
        ),
        (
            "snapshot",
            &["<ACTION>", "<FILE>", "list", "info", "verify"],
        ),
    ] {
        let text = help(&format!("{command} --help"));
        for option in options {
            assert!(text.contains(option), "`{command} --help` lacks {option}");
        }
    }
}

#[test]
fn run_defaults() {
    let options = run("run");
    assert_eq!(options, RunOptions::default());
    assert_eq!(options.smp, 2);
    assert_eq!(options.mem_mib, 1024);
    assert_eq!(options.cpu, "cortex-a72");
    assert_eq!(options.gic, Gic::V3);
    assert!(!options.gdb && !options.no_guest);
}

#[test]
fn run_options_in_both_spellings() {
    let options = run("run --no-guest --smp 4 --mem=512M --cpu max --gic=2 --gdb --debug");
    assert_eq!(
        options,
        RunOptions {
            profile: Profile::Debug,
            no_guest: true,
            smp: 4,
            mem_mib: 512,
            cpu: "max".to_string(),
            gic: Gic::V2,
            gdb: true,
            explicit: Explicit {
                smp: true,
                mem: true,
                gic: true,
                cpu: true,
            },
            ..RunOptions::default()
        }
    );
    assert_eq!(run("run --mem 2GiB").mem_mib, 2048);
    assert_eq!(run("run --mem 1M").mem_mib, 1);
    // Given twice, the last one counts; --disk adds up.
    assert_eq!(run("run --smp 3 --smp=4").smp, 4);
    assert_eq!(
        run("run --disk /a.img --disk=/b.img").disks,
        [std::path::PathBuf::from("/a.img"), "/b.img".into()]
    );
    assert!(run("run --gdb --gdb").gdb);
}

#[test]
fn boards() {
    assert_eq!(run("run --board virt-gicv2").gic, Gic::V2);
    assert_eq!(run("run --board virt-gicv2 --gic 2").gic, Gic::V2);
    assert!(
        error("run --board virt-gicv2 --gic 3")
            .contains("--board virt-gicv2 is --board virt --gic 2: drop --gic 3")
    );
    let pi = run("run --board raspi4b");
    assert_eq!(
        (pi.board, pi.mem_mib),
        (Board::Raspi4b, Board::RASPI4B_MAX_GUEST_MIB)
    );
    assert_eq!(run("run --board raspi4b --mem 256M").mem_mib, 256);
    assert!(error("run --board raspi4b --smp 5").contains("raspi4b has 4 CPUs: --smp 1 to 4"));
    assert!(
        error("run --board raspi4b --mem 768M")
            .contains("on raspi4b the guest can have at most 512M (--mem)")
    );
    assert!(error("run --board raspi4b --disk /d.img").contains("virtio-mmio"));
    assert!(error("run --board raspi4b --no-hyp").contains("virt only"));
    let unknown = error("run --board pi9");
    assert!(
        unknown.contains("invalid value 'pi9' for '--board <NAME>'")
            && unknown.contains("[possible values: virt, virt-gicv2, raspi4b]"),
        "{unknown}"
    );
}

#[test]
fn guest_options() {
    let options = run("run --kernel /k/Image --initrd=/k/initrd --append 'quiet' --smp 2");
    assert_eq!(
        options.kernel.as_deref(),
        Some(std::path::Path::new("/k/Image"))
    );
    assert_eq!(
        options.initrd.as_deref(),
        Some(std::path::Path::new("/k/initrd"))
    );
    assert_eq!(options.append.as_deref(), Some("'quiet'"));
    assert!(
        error("run --initrd /k/initrd")
            .contains("--initrd needs --kernel (the default guest brings its own initramfs)")
    );
    let options = run("run --bios u-boot --disk /d.img --flash-vars /v.img");
    assert_eq!(
        options.bios.as_deref(),
        Some(std::path::Path::new("u-boot"))
    );
    assert_eq!(
        options.flash_vars.as_deref(),
        Some(std::path::Path::new("/v.img"))
    );
    assert!(error("run --bios u-boot --kernel /k").contains("drop --kernel"));
    assert!(error("run --bios u-boot --append x").contains("drop --kernel"));
    assert!(error("run --bios u-boot --no-guest").contains("drop --kernel"));
    assert!(error("run --bios u-boot --no-hyp").contains("bare QEMU"));
    assert!(error("run --bios u-boot --board raspi4b").contains("--board virt"));
    assert!(error("run --bios u-boot --exec true").contains("yet"));
    // Firmware guests are snapshotted at Aerie's console and restored like others.
    let options = run("run --bios u-boot --restore");
    assert!(options.restore && options.bios.is_some());
    assert!(error("run --flash-vars /v.img").contains("variable store"));
    // For the default guest, --append adds to its command line.
    assert_eq!(
        run("run --append loglevel=8").append.as_deref(),
        Some("loglevel=8")
    );
    assert!(
        error("run --no-guest --kernel /k/Image")
            .contains("--no-guest cannot be combined with --kernel, --initrd or --append")
    );
    assert!(error("run --no-guest --append x").contains("cannot be combined"));
}

#[test]
fn exec_and_its_options() {
    let args: Vec<String> = [
        "run",
        "--no-hyp",
        "--exec",
        "grep -c ^processor /proc/cpuinfo",
    ]
    .map(str::to_string)
    .to_vec();
    let Ok(Command::Run(options)) = parse(&args) else {
        panic!()
    };
    assert_eq!(
        options.exec.as_deref(),
        Some("grep -c ^processor /proc/cpuinfo")
    );
    assert!(options.no_hyp);
    assert_eq!(options.timeout_secs, 120);
    let options = run("run --exec=true --timeout 30 --verbose");
    assert_eq!(options.exec.as_deref(), Some("true"));
    assert_eq!(options.timeout_secs, 30);
    assert!(options.verbose);
    assert!(error("run --exec").contains("a value is required for '--exec <CMD>'"));
    assert!(error("run --exec=").contains("invalid value '' for '--exec <CMD>': a blank command"));
    assert_eq!(run("run --timeout 5").run_timeout_secs, Some(5));
    assert_eq!(run("run --exec true --timeout 5").run_timeout_secs, None);
    assert_eq!(run("run").run_timeout_secs, None);
    assert!(
        error("run --gdb --timeout 5").contains(
            "--timeout cannot be combined with --gdb (a debugging session has no deadline)"
        )
    );
    assert!(error("run --verbose").contains("--verbose applies to --exec only"));
    assert!(error("run --exec true --timeout 0").contains(
        "invalid value '0' for '--timeout <SECS>': not a number of seconds of at least 1"
    ));
    assert!(error("run --exec true --timeout soon").contains("invalid value 'soon'"));
    assert!(
        error("run --exec true --gdb")
            .contains("--exec cannot be combined with --gdb (its timeout would strike)")
    );
    assert!(
        error("run --exec true --no-guest")
            .contains("--exec needs a guest to run the command in; drop --no-guest")
    );
}

#[test]
fn explicit_sizes_are_remembered() {
    assert_eq!(run("run").explicit, Explicit::default());
    // Giving the default value still counts as giving it.
    let options = run("run --smp 2 --mem 1G");
    assert_eq!(
        options.explicit,
        Explicit {
            smp: true,
            mem: true,
            gic: false,
            cpu: false,
        }
    );
    assert!(run("run --cpu max").explicit.cpu);
    assert!(run("run --cpu cortex-a72").explicit.cpu);
    assert!(run("run --board virt-gicv2").explicit.gic);
    assert!(!run("run --board virt").explicit.gic);
    assert!(run("run --gic 3").explicit.gic);
}

#[test]
fn snapshot_options() {
    let options = run("run --snapshot-disk /s/s.img --exec true --snapshot");
    assert_eq!(
        options.snapshot_disk.as_deref(),
        Some(std::path::Path::new("/s/s.img"))
    );
    assert!(options.snapshot && !options.restore);
    let options = run("run --snapshot-disk=/s.img --restore");
    assert!(options.restore && !options.snapshot);
    // Restore, run, snapshot again: a chain of snapshots.
    let options = run("run --restore --exec true --snapshot");
    assert!(options.restore && options.snapshot);
    assert_eq!(run("run").snapshot_disk, None);
    assert!(error("run --snapshot").contains(
        "--snapshot needs --exec CMD (the snapshot is taken once CMD is done); \
         interactively, take one at Aerie's console: Ctrl-A c, then `snapshot`"
    ));
    assert!(
        error("run --snapshot-disk").contains("a value is required for '--snapshot-disk <FILE>'")
    );
    assert!(error("run --restore=yes").contains("unexpected value 'yes' for '--restore'"));
    assert!(
        error("run --restore --no-hyp")
            .contains("--restore needs Aerie, which takes the snapshots: drop --no-hyp")
    );
    assert!(
        error("run --exec true --snapshot --no-hyp")
            .contains("--snapshot needs Aerie, which takes the snapshots: drop --no-hyp")
    );
    assert!(
        error("run --restore --no-guest")
            .contains("--restore needs a guest to snapshot or resume: drop --no-guest")
    );
    assert!(error("run --restore --board raspi4b").contains(
        "--restore needs the snapshot disk (virtio-mmio), which raspi4b does not have: use \
         --board virt"
    ));
    // The old spelling is gone.
    assert!(error("run --snapshots /s.img").contains("unexpected argument '--snapshots' found"));
    // A snapshot disk alone is fine with --no-hyp (it is not attached).
    assert!(run("run --no-hyp --snapshot-disk /s.img").no_hyp);
}

#[test]
fn snapshot_command() {
    for (action, name) in [
        (SnapshotAction::List, "list"),
        (SnapshotAction::Info, "info"),
        (SnapshotAction::Verify, "verify"),
    ] {
        assert_eq!(
            parse_line(&format!("snapshot {name} /s/s.img")).unwrap(),
            Command::Snapshot(SnapshotOptions {
                action,
                file: "/s/s.img".into()
            })
        );
    }
    let nothing = error("snapshot");
    assert!(
        nothing
            .contains("the following required arguments were not provided:\n  <ACTION>\n  <FILE>"),
        "{nothing}"
    );
    let unknown = error("snapshot check s.img");
    assert!(
        unknown.contains("invalid value 'check' for '<ACTION>'")
            && unknown.contains("[possible values: list, info, verify]"),
        "{unknown}"
    );
    assert!(error("snapshot verify").contains("not provided:\n  <FILE>\n"));
    assert!(
        parse_line("snapshot verify")
            .unwrap_err()
            .to_string()
            .contains("Usage: cargo xtask snapshot <ACTION> <FILE>")
    );
    assert!(error("snapshot list a.img b.img").contains("unexpected argument 'b.img' found"));
    assert!(error("snapshot list --all a.img").contains("unexpected argument '--all' found"));
    let args = ["snapshot", "list", ""].map(str::to_string);
    assert!(
        parse(&args)
            .unwrap_err()
            .to_string()
            .contains("invalid value '' for '<FILE>': the name is empty")
    );
}

#[test]
fn no_hyp_needs_a_guest() {
    assert!(run("run --no-hyp").no_hyp);
    assert!(run("run --no-hyp --kernel /k --gdb --smp 4").gdb);
    assert!(error("run --no-hyp --no-guest").contains(
        "--no-hyp boots the guest without Aerie and --no-guest Aerie without a guest: pick one"
    ));
}

#[test]
fn smp_limits_depend_on_the_gic() {
    assert_eq!(run("run --gic 2 --smp 8").smp, 8);
    assert_eq!(run("run --smp 512").smp, 512);
    assert!(error("run --smp 9 --gic 2").contains("--smp 9 is too many for GICv2: at most 8 CPUs"));
    assert!(error("run --smp 513").contains("--smp 513 is too many for GICv3: at most 512 CPUs"));
    assert!(
        error("run --smp 0")
            .contains("invalid value '0' for '--smp <N>': not a CPU count of at least 1")
    );
    assert!(error("run --smp two").contains("invalid value 'two' for '--smp <N>'"));
}

#[test]
fn bad_mem_values_are_explained() {
    assert!(
        error("run --mem 512K")
            .contains("invalid value '512K' for '--mem <SIZE>': less than 1 MiB")
    );
    assert!(error("run --mem 1537K").contains(
        "invalid value '1537K' for '--mem <SIZE>': not a whole number of MiB (QEMU's -m takes MiB)"
    ));
    let not_a_size = error("run --mem lots");
    assert!(
        not_a_size.contains("invalid value 'lots' for '--mem <SIZE>': invalid size 'lots'"),
        "{not_a_size}"
    );
}

#[test]
fn bad_options_are_rejected() {
    assert!(error("run --bogus").contains("unexpected argument '--bogus' found"));
    assert!(error("build --gdb").contains("unexpected argument '--gdb' found"));
    assert!(error("fixtures --debug").contains("unexpected argument '--debug' found"));
    assert!(error("run --smp").contains("a value is required for '--smp <N>'"));
    assert!(error("run --cpu --gdb").contains("a value is required for '--cpu <MODEL>'"));
    assert!(error("run --gdb=yes").contains("unexpected value 'yes' for '--gdb'"));
    let gic = error("run --gic 4");
    assert!(
        gic.contains("invalid value '4' for '--gic <VERSION>'")
            && gic.contains("[possible values: 2, 3]"),
        "{gic}"
    );
    assert!(
        error("run --cpu a,b")
            .contains("invalid value 'a,b' for '--cpu <MODEL>': not a QEMU CPU model name")
    );
    // Options are only the spellings declared, not their prefixes.
    assert!(error("run --snap").contains("unexpected argument '--snap' found"));
}

#[test]
fn test_options() {
    assert_eq!(
        parse_line("test").unwrap(),
        Command::Test(TestOptions::default())
    );
    assert_eq!(
        parse_line("test --host-only --filter boots").unwrap(),
        Command::Test(TestOptions {
            host_only: true,
            filter: Some("boots".to_string())
        })
    );
    assert!(error("test --filter").contains("a value is required for '--filter <NAME>'"));
}

/// bench and profile: aerie-bench reads their arguments (and prints their help), so
/// they go over as given, `help COMMAND` as `COMMAND --help`.
#[test]
fn bench_and_profile_arguments_go_over_as_given() {
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for line in [
        "",
        "--quick --pairs 3 --out /tmp/r",
        "--only xen",
        "--help",
        "-h",
        "--pairs=0",
    ] {
        assert_eq!(
            parse_line(&format!("bench {line}")).unwrap(),
            Command::Bench(words(line))
        );
    }
    for line in ["hvc", "vtimer-wfi --iterations 7 --detail", "", "--help"] {
        assert_eq!(
            parse_line(&format!("profile {line}")).unwrap(),
            Command::Profile(words(line))
        );
    }
    assert_eq!(
        parse_line("help bench").unwrap(),
        Command::Bench(words("--help"))
    );
    assert_eq!(
        parse_line("help profile").unwrap(),
        Command::Profile(words("--help"))
    );
    let top = help("help");
    assert!(top.contains(
        "\n  bench     Measure Aerie against bare QEMU and Xen; write docs/bench/latest.{md,json}\n"
    ), "{top}");
    assert!(
        top.contains(
            "\n  profile   Where the instructions of one exit-cost row go, function by function\n"
        ),
        "{top}"
    );
}

fn sdcard(line: &str) -> SdcardOptions {
    match parse_line(line) {
        Ok(Command::Sdcard(options)) => options,
        other => panic!("`{line}` parsed as {other:?}"),
    }
}

#[test]
fn sdcard_defaults_and_options() {
    assert_eq!(
        sdcard("sdcard --board rpi4 --out /tmp/card"),
        SdcardOptions::new(PiBoard::Rpi4, "/tmp/card".into())
    );
    let defaults = sdcard("sdcard --out=/c --board=rpi5");
    assert_eq!(defaults.board, PiBoard::Rpi5);
    assert_eq!((defaults.mem_mib, defaults.smp), (512, 4));
    let options = sdcard(
        "sdcard --board rpi5 --out /c --kernel /k/Image --initrd /k/i --append quiet --mem 1G --smp 2",
    );
    assert_eq!(
        options,
        SdcardOptions {
            kernel: Some("/k/Image".into()),
            initrd: Some("/k/i".into()),
            append: Some("quiet".into()),
            mem_mib: 1024,
            smp: 2,
            ..SdcardOptions::new(PiBoard::Rpi5, "/c".into())
        }
    );
    assert_eq!(
        sdcard("sdcard --board rpi4 --out /c --append x")
            .append
            .as_deref(),
        Some("x")
    );
    for board in PiBoard::ALL {
        assert_eq!(
            sdcard(&format!("sdcard --board {} --out /c", board.name())).board,
            board
        );
    }
}

#[test]
fn sdcard_refusals_say_what_to_do() {
    assert!(error("sdcard --out /c").contains("not provided:\n  --board <BOARD>\n"));
    assert!(error("sdcard --board rpi4").contains("not provided:\n  --out <DIR>\n"));
    assert!(error("sdcard --board rpi4 --out=").contains("invalid value '' for '--out <DIR>'"));
    let unknown = error("sdcard --board pi3 --out /c");
    assert!(
        unknown.contains("invalid value 'pi3' for '--board <BOARD>'")
            && unknown.contains("[possible values: rpi4, rpi5]"),
        "{unknown}"
    );
    assert!(error("sdcard --board raspi4b --out /c").contains("[possible values: rpi4, rpi5]"));
    assert!(
        error("sdcard --board rpi5 --out /c --smp 5")
            .contains("--smp 5: the Raspberry Pi 5 has 4 cores, so at most 4 vCPUs")
    );
    assert!(error("sdcard --board rpi4 --out /c --smp 0").contains("at least 1"));
    assert!(error("sdcard --board rpi4 --out /c --mem 1537K").contains("whole number"));
    assert!(
        error("sdcard --board rpi4 --out /c --initrd /i")
            .contains("--initrd needs --kernel (the default guest brings its own initramfs)")
    );
    assert!(
        error("sdcard --board rpi4 --out /c --gdb").contains("unexpected argument '--gdb' found")
    );
}

/// The names the rest of xtask writes out (`PiBoard::name`) are the ones the command
/// line takes.
#[test]
fn names_match_the_command_line() {
    use clap::ValueEnum;
    for board in PiBoard::ALL {
        assert_eq!(board.to_possible_value().unwrap().get_name(), board.name());
    }
}
