//! Writing a report's files, and writing them again from a saved `latest.json`:
//! the Markdown and the figures can be re-rendered without re-running the bench.
//!
//! The committed report (`docs/bench/`) is checked to be its `latest.json` rendered;
//! after a change to the rendering, write it again with
//! `AERIE_BENCH_RENDER=1 cargo test -p xtask --lib the_committed_report`.

use std::path::{Path, PathBuf};

use super::figures;
use super::report::Report;
use super::{JSON_NAME, MARKDOWN_NAME};
use xtask::error::{Context, Error, Result};

/// The files a report was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// `latest.md`.
    pub markdown: PathBuf,
    /// `latest.json`.
    pub json: PathBuf,
    /// The figures the Markdown shows, SVG files beside it.
    pub figures: Vec<PathBuf>,
}

/// Writes `report` into `dir` (created if need be): `latest.md`, `latest.json` and
/// the figures.
pub fn write(dir: &Path, report: &Report) -> Result<Files> {
    std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    let mut texts = vec![
        (dir.join(MARKDOWN_NAME), report.markdown()),
        (dir.join(JSON_NAME), report.json()),
    ];
    for figure in figures::figures(report) {
        texts.push((
            dir.join(figure.kind.file_name()),
            figure.svg().map_err(Error::new)?,
        ));
    }
    for (path, text) in &texts {
        std::fs::write(path, text).context(|| format!("cannot write {}", path.display()))?;
    }
    let mut paths = texts.into_iter().map(|(path, _)| path);
    Ok(Files {
        markdown: paths.next().unwrap_or_default(),
        json: paths.next().unwrap_or_default(),
        figures: paths.collect(),
    })
}

/// Reads the report saved as `latest.json` in `dir`.
pub fn read(dir: &Path) -> Result<Report> {
    let path = dir.join(JSON_NAME);
    let text =
        std::fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
    parse(&text).map_err(|error| Error::new(format!("{}: {error}", path.display())))
}

/// A report from the text of its `latest.json`.
pub fn parse(text: &str) -> std::result::Result<Report, serde_json::Error> {
    serde_json::from_str(text)
}

/// Writes the files of the report saved in `dir` again, from its `latest.json`.
pub fn rerender(dir: &Path) -> Result<Files> {
    write(dir, &read(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed report, `docs/bench/`.
    fn committed() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench")
    }

    fn committed_file(name: &str) -> String {
        let path = committed().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_committed_report_renders_from_its_json() {
        if std::env::var_os("AERIE_BENCH_RENDER").is_some() {
            rerender(&committed()).unwrap();
        }
        let json = committed_file(JSON_NAME);
        let report = parse(&json).expect("the committed latest.json reads back");
        assert_eq!(report.json(), json, "the JSON writes back unchanged");
        let stale = "docs/bench is not its latest.json rendered: see bench::render's doc";
        assert!(
            report.markdown() == committed_file(MARKDOWN_NAME),
            "latest.md: {stale}"
        );
        let figures = figures::figures(&report);
        assert_eq!(figures.len(), 4, "the full report has every figure");
        for figure in figures {
            let name = figure.kind.file_name();
            assert!(
                figure.svg().unwrap() == committed_file(name),
                "{name}: {stale}"
            );
        }
    }

    #[test]
    fn a_written_report_renders_again_from_its_files() {
        let dir = std::env::temp_dir().join(format!("aerie-render-{}", std::process::id()));
        let report = parse(&committed_file(JSON_NAME)).unwrap();
        let files = write(&dir, &report).unwrap();
        let names: Vec<_> = files
            .figures
            .iter()
            .map(|path| path.file_name().unwrap())
            .collect();
        assert_eq!(names, ["boot.svg", "disk.svg", "exits.svg", "snapshot.svg"]);
        let markdown = std::fs::read_to_string(&files.markdown).unwrap();
        for name in names {
            let link = format!("]({})", name.to_str().unwrap());
            assert!(markdown.contains(&link), "the Markdown shows {link}");
        }
        std::fs::write(&files.markdown, "stale").unwrap();
        assert_eq!(rerender(&dir).unwrap(), files);
        assert_eq!(
            std::fs::read_to_string(&files.markdown).unwrap(),
            report.markdown()
        );
        std::fs::write(&files.json, "{\"generated\": 1}").unwrap();
        let error = read(&dir).unwrap_err().to_string();
        assert!(error.contains("latest.json: invalid type"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
