//! Facts a report states about where it was measured: the host CPU, QEMU, the
//! guest's Debian packages, the sources (git commit) and the time.

use std::path::Path;
use std::process::Command;

use super::parse;
use xtask::process;

/// `Intel(R) Xeon(R) Processor, 2 cores`, from `/proc/cpuinfo`.
pub fn host_cpu() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = parse::cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_string());
    let cores = match parse::cpu_count(&cpuinfo) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        count => count,
    };
    format!("{model}, {cores} core{}", if cores == 1 { "" } else { "s" })
}

/// QEMU's version line, such as `QEMU emulator version 10.0.2 (Debian ...)`.
pub fn qemu_version() -> String {
    xtask::qemu::version_line().unwrap_or_else(|| "unknown".to_string())
}

/// The Debian packages named in a `SOURCES` file (one `.deb` file name a line), as
/// `(package, version)`.
pub fn packages(sources: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(sources)
        .unwrap_or_default()
        .lines()
        .filter_map(parse::deb_package)
        .collect()
}

/// `package version` of the first package in `sources` whose name starts with
/// `prefix`, or `unknown (...)`.
pub fn package_version(sources: &Path, prefix: &str) -> String {
    packages(sources)
        .into_iter()
        .find(|(name, _)| name.starts_with(prefix))
        .map_or_else(
            || format!("unknown (no {prefix}* in {})", sources.display()),
            |(name, version)| format!("{name} {version}"),
        )
}

/// `commit da0344e`, with `(with uncommitted changes)` when the work tree differs.
pub fn source(root: &Path) -> String {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command.args(args).current_dir(root);
        process::output(&mut command).ok()
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.trim().is_empty());
            format!(
                "commit {}{}",
                commit.trim(),
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            )
        }
        None => "sources outside git".to_string(),
    }
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn now_utc() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(seconds)
}

/// Seconds since 1970-01-01 00:00 UTC as `YYYY-MM-DD HH:MM UTC` (proleptic
/// Gregorian calendar; the days-to-date conversion of H. Hinnant's
/// `civil_from_days`).
pub fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let minutes = (seconds % 86_400) / 60;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34 UTC: a leap day in a year divisible by 400.
        assert_eq!(utc(951_827_640), "2000-02-29 12:34 UTC");
        // 2026-11-26 19:40 UTC.
        assert_eq!(utc(1_795_722_000), "2026-11-26 19:40 UTC");
        // The last minute of 2023.
        assert_eq!(utc(1_704_067_199), "2023-12-31 23:59 UTC");
    }

    #[test]
    fn package_versions_from_a_sources_file() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sources = dir.join("SOURCES");
        std::fs::write(
            &sources,
            "linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb\n\
             busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb\n",
        )
        .unwrap();
        assert_eq!(
            package_version(&sources, "linux-image-"),
            "linux-image-6.1.0-56-arm64 6.1.192-2"
        );
        assert_eq!(
            package_version(&sources, "busybox"),
            "busybox-static 1:1.35.0-4+deb12u1+b1"
        );
        assert!(package_version(&sources, "xen").starts_with("unknown (no xen* in "));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_host_is_described() {
        assert!(host_cpu().contains("core"));
        assert!(
            source(Path::new(env!("CARGO_MANIFEST_DIR"))).starts_with("commit ")
                || source(Path::new(env!("CARGO_MANIFEST_DIR"))) == "sources outside git"
        );
    }
}
