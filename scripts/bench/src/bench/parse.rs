//! Reading what the benchmark runs print: kernel log timestamps, the micro-benchmark
//! guest's result lines, Aerie's hardware summary and its snapshot lines,
//! `/proc/cpuinfo` and Debian package file names. All pure functions over text.

/// The seconds of a kernel log line's timestamp: `[    1.369700] Run /init as init
/// process` gives 1.3697. `None` if the line does not start with one.
pub fn printk_seconds(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (stamp, _) = rest.split_once(']')?;
    let stamp = stamp.trim();
    let (whole, fraction) = stamp.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    stamp.parse().ok()
}

/// The timestamp of the first kernel log line in `text` that contains `message`.
pub fn printk_time_of(text: &str, message: &str) -> Option<f64> {
    text.lines()
        .filter(|line| line.contains(message))
        .find_map(printk_seconds)
}

/// The shell command of the virtio-blk rows: `dd` reads `mib` MiB from `/dev/vda`
/// and then writes as much to it, 1 MiB blocks, direct I/O (`O_DIRECT`: no page
/// cache), each timed with the kernel's monotonic clock in nanoseconds (`now at`
/// of `/proc/timer_list`: busybox's `date` has no `%N` and its `dd` prints no
/// timing). Prints `aerie-disk read NS` and `aerie-disk write NS`, or
/// `aerie-disk read failed`.
pub fn disk_command(mib: u64) -> String {
    format!(
        "t() {{ grep -m1 'now at' /proc/timer_list | cut -d' ' -f3; }}\n\
         s=$(t); if dd if=/dev/vda of=/dev/null bs=1M count={mib} iflag=direct 2>/dev/null; \
         then e=$(t); echo {DISK_PREFIX} read $((e-s)); else echo {DISK_PREFIX} read failed; fi\n\
         s=$(t); if dd if=/dev/zero of=/dev/vda bs=1M count={mib} oflag=direct 2>/dev/null; \
         then e=$(t); echo {DISK_PREFIX} write $((e-s)); else echo {DISK_PREFIX} write failed; fi"
    )
}

/// What the lines of [`disk_command`] start with.
const DISK_PREFIX: &str = "aerie-disk";

/// The nanoseconds of the read and the write in [`disk_command`]'s output.
pub fn disk_nanoseconds(output: &str) -> (Option<u64>, Option<u64>) {
    let find = |what: &str| {
        output.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == DISK_PREFIX && words.next()? == what)
                .then(|| words.next()?.parse().ok())
                .flatten()
        })
    };
    (find("read"), find("write"))
}

/// What the micro-benchmark guest (`tests/guests/src/bin/bench.rs`) reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestResults {
    /// `host=`: where the guest found itself (`aerie` or `bare`).
    pub host: Option<String>,
    /// `frequency=`: the counter frequency in Hz.
    pub frequency: Option<u64>,
    /// The rows measured.
    pub rows: Vec<GuestRow>,
    /// The rows skipped, with the guest's reason.
    pub skipped: Vec<(String, String)>,
    /// Whether the guest printed `done`.
    pub done: bool,
    /// `error=...` lines.
    pub errors: Vec<String>,
}

/// One `row=NAME iterations=N ticks=T` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRow {
    /// The row's name.
    pub name: String,
    /// How many operations were timed.
    pub iterations: u64,
    /// Counter ticks they took in all.
    pub ticks: u64,
}

/// The text every line of the micro-benchmark guest starts with (after Aerie's
/// `guest: ` prefix, when there is one).
pub const GUEST_PREFIX: &str = "aerie-bench: ";

impl GuestResults {
    /// Reads every `aerie-bench:` line of a console transcript.
    pub fn parse(console: &str) -> Self {
        let mut results = Self::default();
        for line in console.lines() {
            let Some((_, body)) = line.split_once(GUEST_PREFIX) else {
                continue;
            };
            let body = body.trim_end();
            if body == "done" {
                results.done = true;
                continue;
            }
            let fields: Vec<(&str, &str)> = body
                .split_whitespace()
                .filter_map(|field| field.split_once('='))
                .collect();
            let get = |key: &str| {
                fields
                    .iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, v)| *v)
            };
            if let Some(name) = get("row") {
                let number = |key| get(key).and_then(|v: &str| v.parse::<u64>().ok());
                if let (Some(iterations), Some(ticks)) = (number("iterations"), number("ticks")) {
                    results.rows.push(GuestRow {
                        name: name.to_string(),
                        iterations,
                        ticks,
                    });
                }
            } else if let Some(name) = get("skip") {
                let reason = get("reason").unwrap_or("unknown");
                results.skipped.push((name.to_string(), reason.to_string()));
            } else if get("error").is_some() {
                results.errors.push(body.to_string());
            } else if let Some(host) = get("host") {
                results.host = Some(host.to_string());
                results.frequency = get("frequency").and_then(|v| v.parse().ok());
            }
        }
        results
    }

    /// The row called `name`.
    pub fn row(&self, name: &str) -> Option<&GuestRow> {
        self.rows.iter().find(|row| row.name == name)
    }

    /// Ticks per operation of row `name`.
    pub fn ticks_per_op(&self, name: &str) -> Option<f64> {
        let row = self.row(name)?;
        (row.iterations > 0).then(|| row.ticks as f64 / row.iterations as f64)
    }
}

/// Aerie's own memory, from the `ram` and `aerie` lines of its hardware summary:
///
/// ```text
///   ram          1.2 GiB: 0x40000000..0x8c200000
///   aerie        image 0x40200000..0x40400000 (2 MiB), heap 16 MiB, 141.8 MiB free
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AerieMemory {
    /// The machine's RAM in bytes (the sum of the `ram` line's ranges).
    pub ram: u64,
    /// The span the image occupies in RAM (code, data, bss, stacks), in bytes.
    pub image_span: u64,
    /// Aerie's heap, in bytes (to the summary's rounding: one decimal).
    pub heap: f64,
    /// RAM left free after Aerie and the guest's RAM were set up, in bytes (rounded
    /// likewise).
    pub free: f64,
}

impl AerieMemory {
    /// Reads the summary lines from a console transcript.
    pub fn parse(console: &str) -> Option<Self> {
        let field = |label: &str| {
            console.lines().find_map(|line| {
                let rest = line.trim_start().strip_prefix(label)?;
                rest.starts_with(' ').then(|| rest.trim())
            })
        };
        let ram_line = field("ram")?;
        let (_, banks) = ram_line.split_once(':')?;
        let ram = banks
            .split_whitespace()
            .map(hex_range)
            .sum::<Option<u64>>()?;
        let aerie = field("aerie")?;
        let image = aerie.strip_prefix("image ")?.split_whitespace().next()?;
        let heap = aerie.split_once("heap ")?.1.split(',').next()?;
        let free = aerie.rsplit_once(", ")?.1.strip_suffix(" free")?;
        Some(Self {
            ram,
            image_span: hex_range(image)?,
            heap: byte_size(heap)?,
            free: byte_size(free)?,
        })
    }
}

/// The size of `0xSTART..0xEND`.
fn hex_range(text: &str) -> Option<u64> {
    let (start, end) = text.split_once("..")?;
    let number = |t: &str| u64::from_str_radix(t.strip_prefix("0x")?, 16).ok();
    number(end)?.checked_sub(number(start)?)
}

/// A size as `aerie_hyp::units::ByteSize` prints it (`16 MiB`, `141.8 MiB`,
/// `123 bytes`), in bytes.
pub fn byte_size(text: &str) -> Option<f64> {
    let (number, unit) = text.trim().split_once(' ')?;
    let scale: f64 = match unit {
        "byte" | "bytes" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    Some(value * scale)
}

/// Aerie's line for a saved snapshot (boot/src/vm/snapshot/save.rs):
///
/// ```text
/// Aerie: snapshot 1 saved in slot A: 227.7 MiB (227.6 MiB of 256 MiB guest RAM stored, 1 vCPU(s)) in 1.15 s
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AerieSaved {
    /// The snapshot's sequence number.
    pub sequence: u64,
    /// Its slot, `A` or `B`.
    pub slot: char,
    /// Bytes written to the slot, to the line's rounding (one decimal of its unit).
    pub bytes: f64,
    /// Bytes of guest RAM stored, likewise.
    pub stored: f64,
    /// Seconds Aerie took, by its own clock.
    pub seconds: f64,
}

impl AerieSaved {
    /// Reads the line (it may have text before `Aerie: snapshot`).
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.split_once("Aerie: snapshot ")?.1;
        let (sequence, rest) = rest.split_once(" saved in slot ")?;
        let (slot, rest) = rest.split_once(": ")?;
        let mut slot_letters = slot.chars();
        let slot = slot_letters
            .next()
            .filter(|_| slot_letters.next().is_none())?;
        let (bytes, rest) = rest.split_once(" (")?;
        let (stored, rest) = rest.split_once(" of ")?;
        let (_, time) = rest.rsplit_once(") in ")?;
        Some(Self {
            sequence: sequence.parse().ok()?,
            slot,
            bytes: byte_size(bytes)?,
            stored: byte_size(stored)?,
            seconds: seconds(time)?,
        })
    }
}

/// Aerie's line for a restored snapshot (boot/src/vm/snapshot/restore.rs):
/// `Aerie: restored snapshot 1 in 2.40 s; resuming the guest`. Returns the
/// sequence number and Aerie's own seconds.
pub fn aerie_restored(line: &str) -> Option<(u64, f64)> {
    let rest = line.split_once("Aerie: restored snapshot ")?.1;
    let (sequence, rest) = rest.split_once(" in ")?;
    let (time, _) = rest.split_once(';')?;
    Some((sequence.parse().ok()?, seconds(time)?))
}

/// `1.15 s` in seconds.
fn seconds(text: &str) -> Option<f64> {
    let value: f64 = text.trim().strip_suffix(" s")?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// The host CPU's model from `/proc/cpuinfo`: `model name` (x86), else `Model` or
/// `Hardware` (Arm boards).
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == *key && !value.trim().is_empty()).then(|| value.trim().to_string())
        })
    })
}

/// The number of `processor` entries in `/proc/cpuinfo`.
pub fn cpu_count(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(name, _)| name.trim() == "processor")
        })
        .count()
}

/// The package and version in a Debian package file name
/// (`NAME_VERSION_ARCH.deb`, with `:` written `%3a`):
/// `busybox-static_1%3a1.35.0-4_arm64.deb` is `busybox-static` `1:1.35.0-4`.
pub fn deb_package(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.trim().strip_suffix(".deb")?;
    let mut parts = stem.split('_');
    let (name, version, _arch) = (parts.next()?, parts.next()?, parts.next()?);
    if name.is_empty() || version.is_empty() || parts.next().is_some() {
        return None;
    }
    Some((name.to_string(), version.replace("%3a", ":")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_timestamps() {
        assert_eq!(
            printk_seconds("[    1.369700] Run /init as init process"),
            Some(1.3697)
        );
        assert_eq!(printk_seconds("[12345.000001] x"), Some(12345.000001));
        assert_eq!(printk_seconds("  [    0.000000] Booting"), Some(0.0));
        assert_eq!(printk_seconds("Run /init as init process"), None);
        assert_eq!(printk_seconds("[ 1.5 ] x"), Some(1.5));
        assert_eq!(printk_seconds("[    abc] x"), None);
        assert_eq!(printk_seconds("[    1.] x"), None);
        assert_eq!(printk_seconds("[    1.2"), None);
        let dmesg = "[    0.9] Freeing unused kernel memory\r\n\
                     [    1.369700] Run /init as init process\r\n\
                     [    2.0] Run /init as init process\r\n";
        assert_eq!(
            printk_time_of(dmesg, "Run /init as init process"),
            Some(1.3697)
        );
        assert_eq!(printk_time_of(dmesg, "not there"), None);
        // A matching line without a timestamp (the command's echo) is passed over.
        let echoed = "grep 'Run /init as init process'\n[ 3.25] Run /init as init process\n";
        assert_eq!(
            printk_time_of(echoed, "Run /init as init process"),
            Some(3.25)
        );
    }

    #[test]
    fn disk_transfers() {
        let command = disk_command(64);
        assert!(command.contains("dd if=/dev/vda of=/dev/null bs=1M count=64 iflag=direct"));
        assert!(command.contains("dd if=/dev/zero of=/dev/vda bs=1M count=64 oflag=direct"));
        assert!(command.contains("echo aerie-disk read $((e-s))"));
        assert_eq!(
            disk_nanoseconds("aerie-disk read 193887536\naerie-disk write 240215968\n"),
            (Some(193_887_536), Some(240_215_968))
        );
        assert_eq!(
            disk_nanoseconds("aerie-disk read failed\naerie-disk write 5\n"),
            (None, Some(5))
        );
        assert_eq!(disk_nanoseconds(""), (None, None));
    }

    #[test]
    fn guest_result_lines_under_aerie_and_bare() {
        let console = "Aerie: starting the guest\r\n\
            guest: aerie-bench: host=aerie frequency=62500000\r\n\
            guest: aerie-bench: row=loop iterations=20000 ticks=2500\r\n\
            guest: aerie-bench: row=hvc-psci-version iterations=20000 ticks=9406272\r\n\
            guest: aerie-bench: skip=mmio-testdev-id reason=no-test-device\r\n\
            guest: aerie-bench: row=broken iterations=x ticks=1\r\n\
            guest: aerie-bench: done\r\n";
        let results = GuestResults::parse(console);
        assert_eq!(results.host.as_deref(), Some("aerie"));
        assert_eq!(results.frequency, Some(62_500_000));
        assert_eq!(results.rows.len(), 2, "the malformed row is dropped");
        assert_eq!(
            results.row("hvc-psci-version"),
            Some(&GuestRow {
                name: "hvc-psci-version".into(),
                iterations: 20_000,
                ticks: 9_406_272
            })
        );
        assert_eq!(results.ticks_per_op("loop"), Some(0.125));
        assert_eq!(results.ticks_per_op("missing"), None);
        assert_eq!(
            results.skipped,
            [("mmio-testdev-id".to_string(), "no-test-device".to_string())]
        );
        assert!(results.done && results.errors.is_empty());

        let bare = "aerie-bench: host=bare frequency=1000000000\n\
                    aerie-bench: error=unexpected-exception entry=4 esr=0x0 elr=0x40000000\n";
        let results = GuestResults::parse(bare);
        assert_eq!(results.host.as_deref(), Some("bare"));
        assert_eq!(results.frequency, Some(1_000_000_000));
        assert!(!results.done);
        assert_eq!(results.errors.len(), 1);
        assert_eq!(
            GuestResults::parse("no results here"),
            GuestResults::default()
        );
    }

    #[test]
    fn aeries_memory_from_its_summary() {
        let console = "Aerie 0.1.0 hardware summary\r\n\
            \x20 machine      linux,dummy-virt\r\n\
            \x20 ram          1.2 GiB: 0x40000000..0x8c200000\r\n\
            \x20 aerie        image 0x40200000..0x40400000 (2 MiB), heap 16 MiB, 141.8 MiB free\r\n";
        let memory = AerieMemory::parse(console).unwrap();
        assert_eq!(memory.ram, 0x4c20_0000);
        assert_eq!(memory.image_span, 2 << 20);
        assert_eq!(memory.heap, 16.0 * 1024.0 * 1024.0);
        assert!((memory.free - 141.8 * 1024.0 * 1024.0).abs() < 1.0);
        let two_banks = "  ram          2 GiB: 0x40000000..0x80000000 0x100000000..0x140000000\n\
            \x20 aerie        image 0x40200000..0x40280000 (512 KiB), heap 8 MiB, 1000 MiB free\n";
        let memory = AerieMemory::parse(two_banks).unwrap();
        assert_eq!(memory.ram, 2 << 30);
        assert_eq!(memory.image_span, 512 << 10);
        assert_eq!(AerieMemory::parse("  aerie        image"), None);
        // `ramdisk` is not `ram`.
        assert_eq!(
            AerieMemory::parse(
                "  ramdisk x\n  aerie image 0x0..0x1 (1 byte), heap 1 MiB, 1 MiB free"
            ),
            None
        );
    }

    #[test]
    fn sizes_as_aerie_prints_them() {
        assert_eq!(byte_size("123 bytes"), Some(123.0));
        assert_eq!(byte_size("1 byte"), Some(1.0));
        assert_eq!(byte_size("1.5 KiB"), Some(1536.0));
        assert_eq!(byte_size("2 GiB"), Some(2.0 * (1u64 << 30) as f64));
        assert_eq!(byte_size("2 GB"), None);
        assert_eq!(byte_size("lots"), None);
    }

    #[test]
    fn aeries_snapshot_lines() {
        let saved = AerieSaved::parse(
            "\u{1b}[0mAerie: snapshot 12 saved in slot B: 227.7 MiB (227.6 MiB of 256 MiB guest \
             RAM stored, 1 vCPU(s)) in 1.15 s",
        )
        .unwrap();
        assert_eq!(saved.sequence, 12);
        assert_eq!(saved.slot, 'B');
        assert!((saved.bytes - 227.7 * 1048576.0).abs() < 1.0);
        assert!((saved.stored - 227.6 * 1048576.0).abs() < 1.0);
        assert_eq!(saved.seconds, 1.15);
        let small = AerieSaved::parse(
            "Aerie: snapshot 1 saved in slot A: 3 MiB (900 KiB of 256 MiB guest RAM stored, \
             2 vCPU(s)) in 0.04 s",
        )
        .unwrap();
        assert_eq!(
            (small.bytes, small.stored),
            (3.0 * 1048576.0, 900.0 * 1024.0)
        );
        for broken in [
            "Aerie: snapshot 1 saved in slot AB: 3 MiB (1 MiB of 2 MiB guest RAM stored, 1 \
             vCPU(s)) in 0.1 s",
            "Aerie: snapshot x saved in slot A: 3 MiB (1 MiB of 2 MiB guest RAM stored) in 0.1 s",
            "Aerie: snapshot 1 saved in slot A: 3 MiB (1 MiB of 2 MiB guest RAM stored) in 0.1",
            "Aerie: snapshot 1 saved in slot A: 3 MB (1 MiB of 2 MiB guest RAM stored) in 0.1 s",
            "Aerie: snapshot failed: no snapshot disk",
        ] {
            assert_eq!(AerieSaved::parse(broken), None, "{broken}");
        }
        assert_eq!(
            aerie_restored("Aerie: restored snapshot 7 in 2.40 s; resuming the guest"),
            Some((7, 2.4))
        );
        assert_eq!(aerie_restored("Aerie: restoring snapshot 7 (slot B)"), None);
        assert_eq!(
            aerie_restored("Aerie: restored snapshot 7 in fast; x"),
            None
        );
        assert_eq!(
            aerie_restored("Aerie: restored snapshot 7 in NaN s; x"),
            None
        );
    }

    #[test]
    fn cpu_model_and_count() {
        let x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n\n\
                   processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(x86).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_count(x86), 2);
        let pi = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            cpu_model(pi).as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(cpu_count(pi), 1);
        assert_eq!(cpu_model(""), None);
    }

    #[test]
    fn debian_package_file_names() {
        assert_eq!(
            deb_package("linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb"),
            Some(("linux-image-6.1.0-56-arm64".into(), "6.1.192-2".into()))
        );
        assert_eq!(
            deb_package("busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb\n"),
            Some(("busybox-static".into(), "1:1.35.0-4+deb12u1+b1".into()))
        );
        assert_eq!(deb_package("busybox-static_1.35_arm64.tar"), None);
        assert_eq!(deb_package("a_b.deb"), None);
        assert_eq!(deb_package("a_b_c_d.deb"), None);
    }
}
