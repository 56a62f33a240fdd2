//! APT sources: reading the machine's entries (deb822 `*.sources` files and one-line
//! `*.list` files) and writing a backports entry that reuses their mirrors.
//!
//! No package host is named anywhere in Aerie: the URIs always come from the machine.

use std::path::Path;

use crate::error::{Context, Result};

/// One source entry: a deb822 stanza or a one-line `deb ...` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceEntry {
    /// `deb`, `deb-src`.
    pub types: Vec<String>,
    /// Mirror URIs.
    pub uris: Vec<String>,
    /// Suites (`bookworm`, `bookworm-updates`, ...).
    pub suites: Vec<String>,
    /// Components (`main`, ...).
    pub components: Vec<String>,
    /// The `Signed-By` value: a keyring path or fingerprints on one line, or an inline
    /// key whose continuation lines are kept as written (each starting with a space).
    pub signed_by: Option<String>,
    /// False for a deb822 stanza with `Enabled: no`.
    pub enabled: bool,
}

impl SourceEntry {
    /// Whether this is an enabled binary-package (`deb`) entry for `suite`.
    pub fn serves(&self, suite: &str) -> bool {
        self.enabled
            && self.types.iter().any(|t| t == "deb")
            && self.suites.iter().any(|s| s == suite)
    }
}

/// Parses a deb822 `.sources` file: stanzas separated by blank lines, `#` comment lines.
pub fn parse_deb822(text: &str) -> Vec<SourceEntry> {
    let mut entries = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            entries.extend(stanza_entry(&fields));
            fields.clear();
        } else if line.starts_with('#') {
            continue;
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    entries.extend(stanza_entry(&fields));
    entries
}

fn stanza_entry(fields: &[(String, String)]) -> Option<SourceEntry> {
    if fields.is_empty() {
        return None;
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    };
    let words = |name: &str| {
        field(name)
            .map(|value| value.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    Some(SourceEntry {
        types: words("types"),
        uris: words("uris"),
        suites: words("suites"),
        components: words("components"),
        signed_by: field("signed-by").map(str::to_string),
        enabled: field("enabled").is_none_or(|value| !value.eq_ignore_ascii_case("no")),
    })
}

/// Parses a one-line sources file: `deb [options] URI suite [components...]` per line,
/// `#` starting a comment.
pub fn parse_one_line(text: &str) -> Vec<SourceEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<SourceEntry> {
    let line = line.split('#').next().unwrap_or_default().trim();
    let (kind, rest) = line.split_once(char::is_whitespace)?;
    if kind != "deb" && kind != "deb-src" {
        return None;
    }
    let mut rest = rest.trim_start();
    let mut signed_by = None;
    if let Some(options) = rest.strip_prefix('[') {
        let (options, after) = options.split_once(']')?;
        signed_by = options
            .split_whitespace()
            .find_map(|option| option.strip_prefix("signed-by="))
            .map(str::to_string);
        rest = after;
    }
    let mut words = rest.split_whitespace().map(str::to_string);
    let uri = words.next()?;
    let suite = words.next()?;
    Some(SourceEntry {
        types: vec![kind.to_string()],
        uris: vec![uri],
        suites: vec![suite],
        components: words.collect(),
        signed_by,
        enabled: true,
    })
}

/// Reads every entry APT would: `sources.list`, then `sources.list.d/*.list` and
/// `*.sources` in name order, under `apt_dir` (normally `/etc/apt`).
pub fn read_entries(apt_dir: &Path) -> Result<Vec<SourceEntry>> {
    let mut entries = Vec::new();
    let main_list = apt_dir.join("sources.list");
    if main_list.is_file() {
        let text = std::fs::read_to_string(&main_list)
            .context(|| format!("cannot read {}", main_list.display()))?;
        entries.extend(parse_one_line(&text));
    }
    let parts = apt_dir.join("sources.list.d");
    if !parts.is_dir() {
        return Ok(entries);
    }
    let mut files: Vec<_> = std::fs::read_dir(&parts)
        .context(|| format!("cannot list {}", parts.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for file in files {
        let parse: fn(&str) -> Vec<SourceEntry> = match file.extension() {
            Some(ext) if ext == "list" => parse_one_line,
            Some(ext) if ext == "sources" => parse_deb822,
            _ => continue,
        };
        let text =
            std::fs::read_to_string(&file).context(|| format!("cannot read {}", file.display()))?;
        entries.extend(parse(&text));
    }
    Ok(entries)
}

/// The deb822 text of a `<release>-backports` source (component `main`) with one stanza
/// per distinct enabled `deb` entry for `release`, reusing its URIs and `Signed-By`.
/// `None` when no entry serves `release`.
pub fn backports_sources(entries: &[SourceEntry], release: &str) -> Option<String> {
    let mut stanzas: Vec<String> = Vec::new();
    for entry in entries.iter().filter(|e| e.serves(release)) {
        let mut stanza = format!(
            "Types: deb\nURIs: {}\nSuites: {release}-backports\nComponents: main\n",
            entry.uris.join(" ")
        );
        if let Some(signed_by) = &entry.signed_by {
            if signed_by.starts_with('\n') {
                stanza.push_str(&format!("Signed-By:{signed_by}\n"));
            } else {
                stanza.push_str(&format!("Signed-By: {signed_by}\n"));
            }
        }
        if !stanzas.contains(&stanza) {
            stanzas.push(stanza);
        }
    }
    if stanzas.is_empty() {
        return None;
    }
    let header = format!(
        "# Written by `cargo xtask` (scripts/src/setup.rs): {release}-backports, for a QEMU\n\
         # new enough for the raspi4b machine. Mirrors copied from this machine's {release}\n\
         # entries.\n"
    );
    Some(header + &stanzas.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian http://other.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# a comment between stanzas
Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
";

    #[test]
    fn deb822_stanzas_with_several_uris_and_comments() {
        let entries = parse_deb822(DEB822);
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0],
            SourceEntry {
                types: vec!["deb".into()],
                uris: vec![
                    "http://mirror.example/debian".into(),
                    "http://other.example/debian".into()
                ],
                suites: vec!["bookworm".into(), "bookworm-updates".into()],
                components: vec!["main".into(), "contrib".into()],
                signed_by: Some("/usr/share/keyrings/debian-archive-keyring.gpg".into()),
                enabled: true,
            }
        );
        assert_eq!(entries[1].types, ["deb", "deb-src"]);
        assert_eq!(entries[1].signed_by, None);
        assert!(!entries[2].enabled);
        assert!(entries[0].serves("bookworm"));
        assert!(!entries[1].serves("bookworm"));
        assert!(!entries[2].serves("bookworm"));
    }

    #[test]
    fn deb822_inline_key_keeps_its_continuation_lines() {
        let text = "Types: deb\nURIs: http://m.example/d\nSuites: bookworm\n\
                    Components: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n \
                    abc\n -----END PGP PUBLIC KEY BLOCK-----\n";
        let entries = parse_deb822(text);
        let key = entries[0].signed_by.as_deref().unwrap();
        assert_eq!(
            key,
            "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----"
        );
        let written = backports_sources(&entries, "bookworm").unwrap();
        assert!(written.contains("Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"));
        assert_eq!(parse_deb822(&written)[0].signed_by.as_deref(), Some(key));
    }

    #[test]
    fn one_line_entries_with_options_and_comments() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb http://mirror.example/debian bookworm main non-free-firmware # trailing comment
deb-src http://mirror.example/debian bookworm main
deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://x.example/debian bookworm main

deb [ signed-by=/k.gpg ] http://y.example/ubuntu jammy-updates main universe
nonsense line
";
        let entries = parse_one_line(text);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].uris, ["http://mirror.example/debian"]);
        assert_eq!(entries[0].components, ["main", "non-free-firmware"]);
        assert_eq!(entries[1].types, ["deb-src"]);
        assert_eq!(
            entries[2].signed_by.as_deref(),
            Some("/etc/apt/keyrings/x.gpg")
        );
        assert_eq!(entries[2].uris, ["http://x.example/debian"]);
        assert_eq!(entries[3].suites, ["jammy-updates"]);
        assert_eq!(entries[3].signed_by.as_deref(), Some("/k.gpg"));
    }

    #[test]
    fn backports_reuse_the_release_mirrors() {
        let mut entries = parse_deb822(DEB822);
        entries.extend(parse_one_line(
            "deb http://mirror.example/debian bookworm main\n\
             deb http://mirror.example/debian bookworm main\n",
        ));
        let text = backports_sources(&entries, "bookworm").unwrap();
        assert!(text.starts_with("# Written by `cargo xtask`"));
        let written = parse_deb822(&text);
        assert_eq!(written.len(), 2, "{text}");
        assert_eq!(
            written[0].uris,
            [
                "http://mirror.example/debian",
                "http://other.example/debian"
            ]
        );
        assert_eq!(written[0].suites, ["bookworm-backports"]);
        assert_eq!(written[0].components, ["main"]);
        assert_eq!(written[0].types, ["deb"]);
        assert_eq!(
            written[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        assert_eq!(written[1].uris, ["http://mirror.example/debian"]);
        assert_eq!(written[1].signed_by, None);
        assert!(written.iter().all(|e| e.serves("bookworm-backports")));
    }

    #[test]
    fn no_backports_without_a_release_entry() {
        assert_eq!(backports_sources(&parse_deb822(DEB822), "trixie"), None);
    }

    #[test]
    fn read_entries_reads_both_formats_and_skips_other_files() {
        let dir = std::env::temp_dir().join(format!("xtask-apt-{}", std::process::id()));
        let parts = dir.join("sources.list.d");
        std::fs::create_dir_all(&parts).unwrap();
        std::fs::write(
            dir.join("sources.list"),
            "deb http://a.example/d bookworm main\n",
        )
        .unwrap();
        std::fs::write(parts.join("b.sources"), DEB822).unwrap();
        std::fs::write(
            parts.join("c.list"),
            "deb http://c.example/d bookworm-backports main\n",
        )
        .unwrap();
        std::fs::write(
            parts.join("d.list.disabled"),
            "deb http://d.example/d sid main\n",
        )
        .unwrap();
        let entries = read_entries(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let uris: Vec<_> = entries.iter().map(|e| e.uris[0].as_str()).collect();
        assert_eq!(
            uris,
            [
                "http://a.example/d",
                "http://mirror.example/debian",
                "http://mirror.example/debian-security",
                "http://disabled.example/debian",
                "http://c.example/d"
            ]
        );
    }
}
