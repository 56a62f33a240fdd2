//! `/etc/os-release`: which distribution and release the host runs.

/// The fields of `/etc/os-release` that setup needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsRelease {
    /// `ID`, e.g. `debian` or `ubuntu`.
    pub id: String,
    /// `ID_LIKE`, e.g. `["debian"]` on Ubuntu.
    pub id_like: Vec<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: String,
}

impl OsRelease {
    /// Parses `KEY=value` lines (values optionally quoted, `#` comments).
    pub fn parse(text: &str) -> Self {
        let mut release = OsRelease::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim_matches(|c| c == '"' || c == '\'').to_string();
            match key {
                "ID" => release.id = value,
                "ID_LIKE" => {
                    release.id_like = value.split_whitespace().map(str::to_string).collect()
                }
                "VERSION_CODENAME" => release.codename = value,
                _ => {}
            }
        }
        release
    }

    /// Reads `/etc/os-release` (empty fields when it is missing).
    pub fn read() -> Self {
        std::fs::read_to_string("/etc/os-release")
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Whether this is Debian or a Debian derivative (Ubuntu, ...).
    pub fn is_debian_like(&self) -> bool {
        self.id == "debian" || self.id_like.iter().any(|id| id == "debian")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_and_ubuntu() {
        let debian = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(debian.id, "debian");
        assert_eq!(debian.codename, "bookworm");
        assert!(debian.is_debian_like());

        let ubuntu = OsRelease::parse("# c\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME='noble'\n");
        assert_eq!(ubuntu.codename, "noble");
        assert_eq!(ubuntu.id_like, ["debian"]);
        assert!(ubuntu.is_debian_like());

        assert!(!OsRelease::parse("ID=fedora\n").is_debian_like());
    }
}
