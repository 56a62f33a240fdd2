//! Both commands, their options, the help text, and every refusal.

use clap::CommandFactory;

use super::*;

fn parse_line(line: &str) -> Result<Command, clap::Error> {
    let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    parse(&args)
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

/// Each command's `--help` names every option clap knows for it, by the name users
/// type, as `cargo xtask bench --help` (which xtask hands over) prints it.
#[test]
fn help_is_generated_for_every_option() {
    for command in Cli::command().get_subcommands() {
        let name = command.get_name();
        let text = help(&format!("{name} --help"));
        assert!(
            text.contains(&format!("Usage: cargo xtask {name} ")),
            "{text}"
        );
        assert_eq!(
            help(&format!("{name} -h --quick")),
            help(&format!("{name} -h"))
        );
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
    for (command, options) in [
        (
            "bench",
            &[
                "--quick",
                "--pairs <N>",
                "--out <DIR>",
                "--only <PART>",
                "exits",
                "About 15 minutes in all",
            ][..],
        ),
        (
            "profile",
            &[
                "<ROW>",
                "--iterations <N>",
                "--detail",
                "hvc-psci-version",
                "or hvc",
                "over and over under QEMU's execution log",
            ],
        ),
    ] {
        let text = help(&format!("{command} --help"));
        for option in options {
            assert!(text.contains(option), "`{command} --help` lacks {option}");
        }
    }
    assert!(error("frobnicate").contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn bench_options() {
    assert_eq!(
        parse_line("bench").unwrap(),
        Command::Bench(BenchOptions::default())
    );
    assert_eq!(
        parse_line("bench --quick --pairs 3 --out /tmp/r").unwrap(),
        Command::Bench(BenchOptions {
            quick: true,
            pairs: Some(3),
            out: Some("/tmp/r".into()),
            only: None,
        })
    );
    for part in BenchPart::ALL {
        assert_eq!(
            parse_line(&format!("bench --only {}", part.name())).unwrap(),
            Command::Bench(BenchOptions {
                only: Some(part),
                ..BenchOptions::default()
            })
        );
    }
    let unknown = error("bench --only xen");
    assert!(
        unknown.contains("invalid value 'xen' for '--only <PART>'")
            && unknown.contains("[possible values: boot, disk, exits, snapshot]"),
        "{unknown}"
    );
    assert!(
        error("bench --pairs 0")
            .contains("invalid value '0' for '--pairs <N>': not a number of rounds of at least 1")
    );
    assert!(error("bench --pairs many").contains("invalid value 'many'"));
    assert!(error("bench --smp 2").contains("unexpected argument '--smp' found"));
    assert!(error("bench --smp 2").contains("Usage: cargo xtask bench [OPTIONS]"));
}

#[test]
fn profile_options() {
    assert_eq!(
        parse_line("profile hvc").unwrap(),
        Command::Profile(ProfileOptions {
            row: "hvc-psci-version".into(),
            iterations: crate::profile::DEFAULT_ITERATIONS,
            detail: false,
        })
    );
    assert_eq!(
        parse_line("profile vtimer-wfi --iterations 7 --detail").unwrap(),
        Command::Profile(ProfileOptions {
            row: "vtimer-wfi".into(),
            iterations: 7,
            detail: true,
        })
    );
    // Every row by its name and by each shorter name.
    for row in crate::profile::rows::ROWS {
        for name in std::iter::once(&row.name).chain(row.aliases) {
            let Ok(Command::Profile(options)) = parse_line(&format!("profile {name}")) else {
                panic!("profile {name}")
            };
            assert_eq!(options.row, row.name);
        }
    }
    assert!(error("profile").contains("required arguments were not provided:\n  <ROW>"));
    let unknown = error("profile loop");
    assert!(
        unknown.contains("invalid value 'loop' for '<ROW>'")
            && unknown.contains("[possible values: hvc-psci-version, hvc-aerie-revision, "),
        "{unknown}"
    );
    assert!(error("profile ipi --iterations 0").contains("0 is not in 1..=100000"));
    assert!(error("profile ipi --iterations 100001").contains("100001 is not in 1..=100000"));
    assert!(error("profile ipi --pairs 2").contains("unexpected argument '--pairs' found"));
}

/// The names the bench writes out (`BenchPart::name`) are the ones `--only` takes.
#[test]
fn names_match_the_command_line() {
    for part in BenchPart::ALL {
        assert_eq!(part.to_possible_value().unwrap().get_name(), part.name());
    }
}
