//! The guest bundle: how Aerie receives the guest it runs.
//!
//! Boot loaders already know how to put one extra file in RAM and say where: QEMU's
//! `-initrd FILE` and the Raspberry Pi firmware's `initramfs FILE followkernel` both
//! load it and report it in the host device tree's `/chosen`
//! (`linux,initrd-start` / `linux,initrd-end`). Aerie uses that file as its *guest
//! bundle*: a cpio archive in the "newc" format, the format of Linux's initramfs, so
//! standard tools make and list it:
//!
//! ```text
//! ls kernel initrd cmdline | cpio -o -H newc > bundle     # make one
//! cpio -t < bundle                                         # list it
//! ```
//!
//! | member    | required | content                                                 |
//! |-----------|----------|---------------------------------------------------------|
//! | `kernel`  | yes      | an uncompressed arm64 `Image`                          |
//! | `initrd`  | no       | the guest's initrd or initramfs, passed through as is  |
//! | `cmdline` | no       | the guest's kernel command line, UTF-8; trailing newlines are dropped |
//! | `padding` | no       | ignored: bytes that align the member after it           |
//! | `firmware`| no       | firmware run in place from flash (U-Boot, EDK2), instead of a kernel |
//!
//! A bundle with `firmware` boots it as QEMU `virt -bios` does (see `aerie_hyp::firmware`): it needs no
//! `kernel`, and has none of the others (the firmware finds its operating system
//! on a disk).
//!
//! Names may carry a leading `./` (as `find . | cpio -o` writes them), and the
//! directory entry `.` is ignored. Anything else is refused by name, so a typo never
//! silently boots a guest without its initrd.
//!
//! [`write_aligned`] puts a `padding` member first, so that the kernel's bytes start
//! [`KERNEL_ALIGN`] into the archive. A loader that puts the archive at a 2 MiB
//! boundary (QEMU does, for any machine with 256 MiB of RAM or more) then leaves the
//! kernel where an arm64 kernel may run, and Aerie places the guest's RAM around it
//! instead of copying tens of megabytes (see `loader::ram_around_kernel`).
//!
//! # The format
//!
//! Linux `Documentation/driver-api/early-userspace/buffer-format.rst` and cpio(5):
//! an archive is a sequence of entries, each a 110-byte ASCII header, the entry's
//! name with a terminating NUL, padding to a multiple of 4 bytes, the entry's data and
//! padding to a multiple of 4 bytes again. The header is the 6-byte magic followed by
//! thirteen fields of exactly 8 hexadecimal digits:
//!
//! ```text
//! offset  field        offset  field         offset  field
//!    0    c_magic        46    c_mtime          86    c_rdevminor
//!    6    c_ino          54    c_filesize       94    c_namesize (NUL included)
//!   14    c_mode         62    c_devmajor      102    c_check
//!   22    c_uid          70    c_devminor
//!   30    c_gid          78    c_rdevmajor
//!   38    c_nlink
//! ```
//!
//! The magic is `070701` ("newc") or `070702` ("crc", where `c_check` is the sum of
//! the data bytes modulo 2^32; Aerie verifies it). The entry named `TRAILER!!!` ends
//! the archive; only zero padding may follow it (GNU cpio pads to 512-byte blocks).
//!
//! The bundle is untrusted input: [`Bundle::parse`] checks every field and every
//! length, never panics and names what is wrong.
//!
//! [`Archive`] writes newc archives: the bundle's members ([`write`] and its
//! siblings), and the directories, files, links and device nodes of the default
//! guest's initramfs (so that xtask needs no cpio writer of its own).

use alloc::vec::Vec;
use arrayvec::ArrayString;
use core::fmt;

/// The magic of a "newc" entry header.
pub const NEWC_MAGIC: [u8; 6] = *b"070701";
/// The magic of a "crc" entry header: newc plus a checksum of the data in `c_check`.
pub const CRC_MAGIC: [u8; 6] = *b"070702";
/// The size of an entry header in bytes: the magic and thirteen 8-digit fields.
pub const HEADER_LEN: usize = MAGIC_LEN + FIELD_COUNT * FIELD_LEN;
/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// The `c_mode` of members written by [`write`]: a regular file, `rw-r--r--`.
pub const MEMBER_MODE: u32 = S_IFREG | 0o644;
/// The name of the member that only aligns the one after it; its bytes are ignored.
pub const PADDING: &str = "padding";
/// Where [`write`] starts the kernel's bytes: an arm64 kernel's base alignment.
pub const KERNEL_ALIGN: usize = 2 << 20;

/// Length of the magic.
const MAGIC_LEN: usize = 6;
/// Number of numeric header fields.
const FIELD_COUNT: usize = 13;
/// Digits per numeric header field.
const FIELD_LEN: usize = 8;
/// Names and data are padded to multiples of this many bytes.
const ALIGN: usize = 4;
/// The magic of the old portable ("odc") cpio format.
const ODC_MAGIC: [u8; 6] = *b"070707";
/// The magic of the old binary cpio format, 0o070707 as a little-endian `u16`.
const BINARY_MAGIC_LE: [u8; 2] = [0xc7, 0x71];
/// The same, big-endian.
const BINARY_MAGIC_BE: [u8; 2] = [0x71, 0xc7];
/// The first bytes of compressed files someone might pass instead of an archive.
const COMPRESSED: [(&[u8], &str); 5] = [
    (&[0x1f, 0x8b], "gzip"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    (b"BZh", "bzip2"),
    (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
];
/// Where an arm64 `Image` keeps its magic (see [`crate::image`]).
const IMAGE_MAGIC_OFFSET: usize = 56;

/// `c_mode` file type mask (POSIX `S_IFMT`).
const S_IFMT: u32 = 0o170_000;
/// `c_mode` file type of a regular file.
const S_IFREG: u32 = 0o100_000;
/// `c_mode` file type of a directory.
const S_IFDIR: u32 = 0o040_000;

/// The numeric header fields, in archive order after the magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Ino,
    Mode,
    Uid,
    Gid,
    Nlink,
    Mtime,
    FileSize,
    DevMajor,
    DevMinor,
    RdevMajor,
    RdevMinor,
    NameSize,
    Check,
}

impl Field {
    /// Every field, in archive order.
    const ALL: [Field; FIELD_COUNT] = [
        Field::Ino,
        Field::Mode,
        Field::Uid,
        Field::Gid,
        Field::Nlink,
        Field::Mtime,
        Field::FileSize,
        Field::DevMajor,
        Field::DevMinor,
        Field::RdevMajor,
        Field::RdevMinor,
        Field::NameSize,
        Field::Check,
    ];

    /// The field's byte offset in the header.
    const fn offset(self) -> usize {
        MAGIC_LEN + self as usize * FIELD_LEN
    }

    /// The field's name in cpio(5).
    const fn name(self) -> &'static str {
        match self {
            Field::Ino => "c_ino",
            Field::Mode => "c_mode",
            Field::Uid => "c_uid",
            Field::Gid => "c_gid",
            Field::Nlink => "c_nlink",
            Field::Mtime => "c_mtime",
            Field::FileSize => "c_filesize",
            Field::DevMajor => "c_devmajor",
            Field::DevMinor => "c_devminor",
            Field::RdevMajor => "c_rdevmajor",
            Field::RdevMinor => "c_rdevminor",
            Field::NameSize => "c_namesize",
            Field::Check => "c_check",
        }
    }
}

/// A member of the bundle that Aerie knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    /// `kernel`: the guest kernel, an arm64 `Image` (required).
    Kernel,
    /// `initrd`: the guest's initrd (optional).
    Initrd,
    /// `cmdline`: the guest's kernel command line (optional).
    Cmdline,
    /// `firmware`: a firmware image run in place from flash instead of a kernel.
    Firmware,
}

impl Member {
    /// Every member, in the order [`write`] stores them.
    pub const ALL: [Member; 4] = [
        Member::Kernel,
        Member::Initrd,
        Member::Cmdline,
        Member::Firmware,
    ];

    /// The member's file name in the archive.
    pub const fn name(self) -> &'static str {
        match self {
            Member::Kernel => "kernel",
            Member::Initrd => "initrd",
            Member::Cmdline => "cmdline",
            Member::Firmware => "firmware",
        }
    }

    /// The member called `name`, if there is one.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|member| member.name() == name)
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many bytes of a foreign member name an error keeps.
const SHOWN_NAME_LEN: usize = 48;

/// A member name taken from an archive for an error message: its first
/// 48 bytes (cut at a character boundary), printed quoted and escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShownName {
    text: ArrayString<SHOWN_NAME_LEN>,
    cut: bool,
}

impl ShownName {
    fn new(name: &str) -> Self {
        let mut text = ArrayString::new();
        let mut cut = false;
        for c in name.chars() {
            if text.try_push(c).is_err() {
                cut = true;
                break;
            }
        }
        Self { text, cut }
    }

    /// The kept part of the name.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the name was longer than what was kept.
    pub const fn is_cut(&self) -> bool {
        self.cut
    }
}

impl fmt::Display for ShownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ellipsis = if self.cut { "..." } else { "" };
        write!(f, "\"{}{ellipsis}\"", self.text.escape_debug())
    }
}

/// A file that is not a newc cpio archive, recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// A compressed file (the name of the compressor).
    Compressed(&'static str),
    /// A cpio archive in another format (the format's name for `cpio -H`).
    OtherCpio(&'static str),
    /// A bare arm64 kernel `Image` rather than a bundle containing one.
    KernelImage,
    /// Nothing Aerie recognises.
    Unknown,
}

impl Foreign {
    fn recognise(bytes: &[u8]) -> Self {
        if let Some(&(_, name)) = COMPRESSED
            .iter()
            .find(|(magic, _)| bytes.starts_with(magic))
        {
            Self::Compressed(name)
        } else if bytes.starts_with(&ODC_MAGIC) {
            Self::OtherCpio("odc")
        } else if bytes.starts_with(&BINARY_MAGIC_LE) || bytes.starts_with(&BINARY_MAGIC_BE) {
            Self::OtherCpio("bin")
        } else if bytes.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4)
            == Some(&crate::image::MAGIC.to_le_bytes())
        {
            Self::KernelImage
        } else {
            Self::Unknown
        }
    }
}

/// Why a bundle cannot be used. Offsets are from the start of the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// The bundle has no bytes at all.
    Empty,
    /// The bundle does not start with a newc or crc cpio header.
    NotCpio {
        /// What it looks like instead.
        found: Foreign,
    },
    /// An entry after the first does not start with the cpio magic.
    BadMagic {
        /// Where the entry starts.
        offset: usize,
    },
    /// A header field is not exactly eight hexadecimal digits.
    BadField {
        /// Where the entry starts.
        offset: usize,
        /// The field's name in cpio(5), such as `c_filesize`.
        field: &'static str,
    },
    /// The bundle ends inside an entry's header or name.
    TruncatedHeader {
        /// Where the entry starts.
        offset: usize,
    },
    /// An entry's name is empty, lacks its terminating NUL, contains a NUL or is not
    /// UTF-8.
    BadName {
        /// Where the entry starts.
        offset: usize,
    },
    /// A member's data runs past the end of the bundle.
    TruncatedMember {
        /// The member.
        member: Member,
        /// Where its data starts.
        offset: usize,
        /// Its size according to its header.
        size: u32,
        /// The bytes left from `offset`.
        available: usize,
    },
    /// An entry that is neither a member nor the `.` directory.
    UnknownMember {
        /// Its name.
        name: ShownName,
    },
    /// A member appears twice.
    DuplicateMember {
        /// The member.
        member: Member,
    },
    /// A member is a directory, symbolic link or device rather than a regular file.
    NotRegularFile {
        /// The member.
        member: Member,
        /// Its `c_mode`.
        mode: u32,
    },
    /// A member of a crc-format archive does not match its checksum.
    ChecksumMismatch {
        /// The member.
        member: Member,
        /// The checksum in its header.
        stored: u32,
        /// The sum of its bytes.
        computed: u32,
    },
    /// The bundle ends (or only zeros follow) without a `TRAILER!!!` entry.
    MissingTrailer,
    /// Something other than zero padding follows the `TRAILER!!!` entry.
    TrailingData {
        /// The first non-zero byte.
        offset: usize,
    },
    /// No `kernel` member (and no `firmware`).
    MissingKernel,
    /// A `firmware` bundle with another member beside it.
    FirmwareWith {
        /// The other member.
        member: Member,
    },
    /// The `firmware` member is empty.
    EmptyFirmware,
    /// The `kernel` member is empty.
    EmptyKernel,
    /// The `cmdline` member is not UTF-8.
    CmdlineNotUtf8 {
        /// Offset of the first invalid byte within the command line.
        offset: usize,
    },
    /// The `cmdline` member contains a NUL byte (a device tree string cannot).
    CmdlineContainsNul {
        /// Offset of the NUL within the command line.
        offset: usize,
    },
}

/// How to make a bundle, for error messages.
const HOW_TO_MAKE: &str = "make one with `ls kernel initrd cmdline | cpio -o -H newc > bundle`";

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => write!(f, "the guest bundle is empty; {HOW_TO_MAKE}"),
            Self::NotCpio { found } => match found {
                Foreign::Compressed(format) => write!(
                    f,
                    "the guest bundle is {format}-compressed; Aerie reads an uncompressed \
                     cpio archive: decompress it, or {HOW_TO_MAKE}"
                ),
                Foreign::OtherCpio(format) => write!(
                    f,
                    "the guest bundle is a cpio archive in the old '{format}' format; Aerie \
                     reads the 'newc' format: {HOW_TO_MAKE}"
                ),
                Foreign::KernelImage => write!(
                    f,
                    "the guest bundle is a bare kernel Image; put it in a bundle as the \
                     member 'kernel': {HOW_TO_MAKE}"
                ),
                Foreign::Unknown => write!(
                    f,
                    "the guest bundle is not a cpio archive in the newc format (it does not \
                     start with \"070701\"); {HOW_TO_MAKE}"
                ),
            },
            Self::BadMagic { offset } => write!(
                f,
                "corrupt guest bundle: the cpio entry at offset {offset:#x} does not start \
                 with \"070701\""
            ),
            Self::BadField { offset, field } => write!(
                f,
                "corrupt guest bundle: field {field} of the cpio entry at offset {offset:#x} \
                 is not 8 hexadecimal digits"
            ),
            Self::TruncatedHeader { offset } => write!(
                f,
                "the guest bundle is truncated: it ends inside the header of the cpio entry \
                 at offset {offset:#x}"
            ),
            Self::BadName { offset } => write!(
                f,
                "corrupt guest bundle: the cpio entry at offset {offset:#x} has a malformed \
                 name (empty, not NUL-terminated or not UTF-8)"
            ),
            Self::TruncatedMember {
                member,
                offset,
                size,
                available,
            } => write!(
                f,
                "the guest bundle is truncated: member '{member}' has {size} bytes at offset \
                 {offset:#x} but only {available} bytes follow"
            ),
            Self::UnknownMember { name } => write!(
                f,
                "unknown member {name} in the guest bundle; the members are 'kernel' \
                 (required), 'initrd', 'cmdline' and 'padding', or 'firmware' alone"
            ),
            Self::DuplicateMember { member } => {
                write!(f, "the guest bundle has member '{member}' twice")
            }
            Self::NotRegularFile { member, mode } => write!(
                f,
                "member '{member}' of the guest bundle is not a regular file (mode {mode:#o})"
            ),
            Self::ChecksumMismatch {
                member,
                stored,
                computed,
            } => write!(
                f,
                "corrupt guest bundle: member '{member}' sums to {computed:#010x} but its \
                 header says {stored:#010x}"
            ),
            Self::MissingTrailer => write!(
                f,
                "the guest bundle is truncated: the cpio archive ends without its \
                 {TRAILER} entry"
            ),
            Self::TrailingData { offset } => write!(
                f,
                "the guest bundle has data at offset {offset:#x} after its {TRAILER} entry, \
                 where only zero padding may be"
            ),
            Self::MissingKernel => write!(
                f,
                "the guest bundle has no member 'kernel' (the guest's arm64 Image)"
            ),
            Self::EmptyKernel => f.write_str("member 'kernel' of the guest bundle is empty"),
            Self::FirmwareWith { member } => write!(
                f,
                "the guest bundle has 'firmware' and '{member}': firmware boots alone (it \
                 loads its operating system from a disk)"
            ),
            Self::EmptyFirmware => f.write_str("member 'firmware' of the guest bundle is empty"),
            Self::CmdlineNotUtf8 { offset } => write!(
                f,
                "member 'cmdline' of the guest bundle is not UTF-8 text (invalid byte at \
                 offset {offset})"
            ),
            Self::CmdlineContainsNul { offset } => write!(
                f,
                "member 'cmdline' of the guest bundle contains a NUL byte at offset {offset}"
            ),
        }
    }
}

/// The guest's pieces, borrowed from the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    /// The kernel (not yet checked to be an arm64 `Image`; see [`crate::image`]);
    /// empty in a firmware bundle.
    pub kernel: &'a [u8],
    /// The initrd, if the bundle has one.
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line without trailing newlines, if the bundle has one.
    pub cmdline: Option<&'a str>,
    /// The firmware to run in place from flash, if the bundle boots firmware.
    pub firmware: Option<&'a [u8]>,
}

/// The value of one hexadecimal digit.
const fn hex_digit(byte: u8) -> Option<u32> {
    match byte {
        b'0'..=b'9' => Some((byte - b'0') as u32),
        b'a'..=b'f' => Some((byte - b'a' + 10) as u32),
        b'A'..=b'F' => Some((byte - b'A' + 10) as u32),
        _ => None,
    }
}

/// Eight hexadecimal digits as a number (no sign, no prefix, either case).
fn parse_hex_field(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |value, &byte| Some(value << 4 | hex_digit(byte)?))
}

/// `value` rounded up to a multiple of [`ALIGN`], or `None` on overflow.
const fn align_up(value: usize) -> Option<usize> {
    value.checked_next_multiple_of(ALIGN)
}

/// Which header format an entry uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Newc,
    Crc,
}

/// One entry's header and name, with its data located but not yet bounds-checked.
struct Entry<'a> {
    format: Format,
    mode: u32,
    check: u32,
    size: u32,
    name: &'a str,
    /// One past the name's NUL.
    name_end: usize,
    /// Where the data starts (after the name's padding).
    data_start: usize,
}

/// Reads the entry header and name at `offset` (a multiple of 4).
fn read_entry(bytes: &[u8], offset: usize) -> Result<Entry<'_>, BundleError> {
    let rest = bytes.get(offset..).unwrap_or_default();
    if rest.iter().all(|&b| b == 0) {
        return Err(if bytes.is_empty() {
            BundleError::Empty
        } else {
            BundleError::MissingTrailer
        });
    }
    let format = if rest.starts_with(&NEWC_MAGIC) {
        Format::Newc
    } else if rest.starts_with(&CRC_MAGIC) {
        Format::Crc
    } else if offset == 0 {
        return Err(BundleError::NotCpio {
            found: Foreign::recognise(bytes),
        });
    } else if rest.len() < MAGIC_LEN && NEWC_MAGIC.starts_with(rest) {
        return Err(BundleError::TruncatedHeader { offset });
    } else {
        return Err(BundleError::BadMagic { offset });
    };
    let header = rest
        .get(..HEADER_LEN)
        .ok_or(BundleError::TruncatedHeader { offset })?;
    let mut values = [0u32; FIELD_COUNT];
    for (value, field) in values.iter_mut().zip(Field::ALL) {
        let digits = &header[field.offset()..field.offset() + FIELD_LEN];
        *value = parse_hex_field(digits).ok_or(BundleError::BadField {
            offset,
            field: field.name(),
        })?;
    }
    let value = |field: Field| values[field as usize];
    let name_size = usize::try_from(value(Field::NameSize)).unwrap_or(usize::MAX);
    let name_bytes = rest
        .get(HEADER_LEN..)
        .and_then(|after| after.get(..name_size))
        .ok_or(BundleError::TruncatedHeader { offset })?;
    let bad_name = BundleError::BadName { offset };
    let (&nul, name) = name_bytes.split_last().ok_or(bad_name)?;
    if nul != 0 || name.is_empty() || name.contains(&0) {
        return Err(bad_name);
    }
    let name = core::str::from_utf8(name).map_err(|_| bad_name)?;
    // The whole entry lies inside `bytes`, so these sums cannot overflow, but stay
    // checked all the same.
    let name_end = (offset + HEADER_LEN)
        .checked_add(name_size)
        .ok_or(BundleError::TruncatedHeader { offset })?;
    let data_start = align_up(name_end).ok_or(BundleError::TruncatedHeader { offset })?;
    Ok(Entry {
        format,
        mode: value(Field::Mode),
        check: value(Field::Check),
        size: value(Field::FileSize),
        name,
        name_end,
        data_start,
    })
}

/// The sum of `data`'s bytes modulo 2^32: the crc format's "checksum".
fn byte_sum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &byte| sum.wrapping_add(u32::from(byte)))
}

impl<'a> Bundle<'a> {
    /// Parses a guest bundle. Every header field and length is checked; the error
    /// names the problem and where it is.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let mut members: [Option<&'a [u8]>; Member::ALL.len()] = [None; Member::ALL.len()];
        let mut offset = 0;
        loop {
            let entry = read_entry(bytes, offset)?;
            if entry.name == TRAILER {
                let padding = bytes.get(entry.name_end..).unwrap_or_default();
                if let Some(at) = padding.iter().position(|&b| b != 0) {
                    return Err(BundleError::TrailingData {
                        offset: entry.name_end + at,
                    });
                }
                break;
            }
            let name = entry.name.strip_prefix("./").unwrap_or(entry.name);
            let size = usize::try_from(entry.size).unwrap_or(usize::MAX);
            let data_end = entry.data_start.checked_add(size);
            let data = data_end.and_then(|end| bytes.get(entry.data_start..end));
            let is_directory = entry.mode & S_IFMT == S_IFDIR;
            if (name == "." && is_directory) || (name == PADDING && !is_directory) {
                // The archive's root directory (`find . | cpio -o`), or bytes that
                // only align the next member: nothing to load.
                data.ok_or(BundleError::TruncatedHeader { offset })?;
            } else {
                let member = Member::from_name(name).ok_or(BundleError::UnknownMember {
                    name: ShownName::new(entry.name),
                })?;
                let slot = &mut members[member as usize];
                if slot.is_some() {
                    return Err(BundleError::DuplicateMember { member });
                }
                if entry.mode & S_IFMT != S_IFREG {
                    return Err(BundleError::NotRegularFile {
                        member,
                        mode: entry.mode,
                    });
                }
                let data = data.ok_or(BundleError::TruncatedMember {
                    member,
                    offset: entry.data_start,
                    size: entry.size,
                    available: bytes.len().saturating_sub(entry.data_start),
                })?;
                if entry.format == Format::Crc && byte_sum(data) != entry.check {
                    return Err(BundleError::ChecksumMismatch {
                        member,
                        stored: entry.check,
                        computed: byte_sum(data),
                    });
                }
                *slot = Some(data);
            }
            // `data_end` is inside `bytes` here, so it is far from overflowing.
            offset = data_end
                .and_then(align_up)
                .ok_or(BundleError::TruncatedHeader { offset })?;
        }
        let [kernel, initrd, cmdline, firmware] = members;
        if let Some(firmware) = firmware {
            return firmware_bundle(firmware, &members);
        }
        let kernel = kernel.ok_or(BundleError::MissingKernel)?;
        if kernel.is_empty() {
            return Err(BundleError::EmptyKernel);
        }
        let cmdline = cmdline.map(parse_cmdline).transpose()?;
        Ok(Self {
            kernel,
            initrd,
            cmdline,
            firmware: None,
        })
    }
}

/// The bundle of `firmware`, which must be the only member of `members`.
fn firmware_bundle<'a>(
    firmware: &'a [u8],
    members: &[Option<&'a [u8]>; Member::ALL.len()],
) -> Result<Bundle<'a>, BundleError> {
    if let Some(member) = Member::ALL
        .into_iter()
        .find(|&member| member != Member::Firmware && members[member as usize].is_some())
    {
        return Err(BundleError::FirmwareWith { member });
    }
    if firmware.is_empty() {
        return Err(BundleError::EmptyFirmware);
    }
    Ok(Bundle {
        kernel: &[],
        initrd: None,
        cmdline: None,
        firmware: Some(firmware),
    })
}

/// The `cmdline` member as text, without trailing newlines.
fn parse_cmdline(bytes: &[u8]) -> Result<&str, BundleError> {
    let text = core::str::from_utf8(bytes).map_err(|error| BundleError::CmdlineNotUtf8 {
        offset: error.valid_up_to(),
    })?;
    if let Some(offset) = text.find('\0') {
        return Err(BundleError::CmdlineContainsNul { offset });
    }
    Ok(text.trim_end_matches(['\n', '\r']))
}

/// Upper-case hexadecimal digits, as GNU cpio writes them.
const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";
/// `c_mode` file type of a symbolic link (`S_IFLNK`).
const S_IFLNK: u32 = 0o120_000;
/// `c_mode` file type of a character device (`S_IFCHR`).
const S_IFCHR: u32 = 0o020_000;
/// The permission bits of `c_mode` (with set-user-ID, set-group-ID and sticky).
const PERMISSIONS: u32 = 0o7777;

/// Why an entry cannot go into a newc archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// The name is not a relative path without `.` or `..` components and NUL.
    BadName(ShownName),
    /// The name or the data is 4 GiB or larger (newc sizes are 32 bits).
    TooBig(ShownName),
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::BadName(name) => write!(f, "{name} is not a valid cpio entry name"),
            ArchiveError::TooBig(name) => write!(f, "cpio entry {name} is 4 GiB or larger"),
        }
    }
}

/// A newc archive under construction (the guest bundle's writer, and the general
/// one: directories, regular files, symbolic links and device nodes, for the
/// default guest's initramfs); [`Archive::finish`] adds the trailer. Its output
/// depends only on what was added: owner root, mtime 0, one link (two for a
/// directory), inode numbers counted from 1.
#[derive(Debug, Clone)]
pub struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            next_ino: 1,
        }
    }

    /// Adds a directory with permission bits `permissions` (e.g. `0o755`).
    pub fn dir(&mut self, name: &str, permissions: u32) -> Result<&mut Self, ArchiveError> {
        self.entry(name, S_IFDIR | permissions & PERMISSIONS, 2, (0, 0), &[])
    }

    /// Adds a regular file.
    pub fn file(
        &mut self,
        name: &str,
        permissions: u32,
        data: &[u8],
    ) -> Result<&mut Self, ArchiveError> {
        self.entry(name, S_IFREG | permissions & PERMISSIONS, 1, (0, 0), data)
    }

    /// Adds a symbolic link to `target` (a link's data is its target).
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<&mut Self, ArchiveError> {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node with device number `major:minor`.
    pub fn char_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self, ArchiveError> {
        let mode = S_IFCHR | permissions & PERMISSIONS;
        self.entry(name, mode, 1, (major, minor), &[])
    }

    /// Ends the archive with the trailer entry and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // GNU cpio's trailer: inode 0, mode 0, one link, no data.
        self.push([0, 0, 1, 0, 0, 0, TRAILER.len() as u32 + 1], TRAILER, &[]);
        self.bytes
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        (rdev_major, rdev_minor): (u32, u32),
        data: &[u8],
    ) -> Result<&mut Self, ArchiveError> {
        if !is_entry_name(name) {
            return Err(ArchiveError::BadName(ShownName::new(name)));
        }
        let too_big = || ArchiveError::TooBig(ShownName::new(name));
        let size = u32::try_from(data.len()).map_err(|_| too_big())?;
        let name_size = u32::try_from(name.len() + 1).map_err(|_| too_big())?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [ino, mode, nlink, size, rdev_major, rdev_minor, name_size];
        self.push(fields, name, data);
        Ok(self)
    }

    /// Appends one entry: header, name, padding, data, padding. `fields` are c_ino,
    /// c_mode, c_nlink, c_filesize, c_rdevmajor, c_rdevminor, c_namesize.
    fn push(&mut self, fields: [u32; 7], name: &str, data: &[u8]) {
        let [ino, mode, nlink, size, rdev_major, rdev_minor, name_size] = fields;
        let out = &mut self.bytes;
        out.reserve(entry_len(name, data.len()));
        out.extend_from_slice(&NEWC_MAGIC);
        for field in Field::ALL {
            let value = match field {
                Field::Ino => ino,
                Field::Mode => mode,
                Field::Nlink => nlink,
                Field::FileSize => size,
                Field::RdevMajor => rdev_major,
                Field::RdevMinor => rdev_minor,
                Field::NameSize => name_size,
                // Owner root, mtime 0 (deterministic output), the archive's own
                // device 0, no checksum.
                Field::Uid
                | Field::Gid
                | Field::Mtime
                | Field::DevMajor
                | Field::DevMinor
                | Field::Check => 0,
            };
            for shift in (0..FIELD_LEN).rev() {
                out.push(HEX_DIGITS[(value >> (shift * 4)) as usize & 0xf]);
            }
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
    }
}

/// Entry names are relative paths without `.` or `..` components and without NUL
/// (the kernel unpacks them below the root of the initramfs).
fn is_entry_name(name: &str) -> bool {
    !(name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name == TRAILER
        || name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == ".."))
}

/// The length of the newc entry for a member called `name` with `data_len` bytes,
/// padding included.
const fn entry_len(name: &str, data_len: usize) -> usize {
    (HEADER_LEN + name.len() + 1).next_multiple_of(ALIGN) + data_len.next_multiple_of(ALIGN)
}

/// How many bytes of `padding` make the next member's data start at [`KERNEL_ALIGN`]:
/// the padding entry, then the header and name of a member called `next`.
pub const fn padding_before(next: &str) -> usize {
    let headers = entry_len(PADDING, 0) + entry_len(next, 0);
    KERNEL_ALIGN - headers
}

/// Writes a guest bundle: `kernel`, then `initrd` and `cmdline` when given, then the
/// trailer. Members are regular files ([`MEMBER_MODE`]) owned by root with mtime 0
/// and inode numbers 1, 2, 3, so the output depends only on the inputs. `cmdline` is
/// stored as given.
///
/// # Panics
///
/// If a member is 4 GiB or larger, which the newc format cannot describe.
pub fn write(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> Vec<u8> {
    write_members(&[
        (Member::Kernel.name(), Some(kernel)),
        (Member::Initrd.name(), initrd),
        (Member::Cmdline.name(), cmdline.map(str::as_bytes)),
    ])
}

/// Writes a guest bundle like [`write`], but with a [`PADDING`] member first that puts
/// the kernel's bytes [`KERNEL_ALIGN`] into the archive (inode numbers 1 to 4): the
/// form to hand a boot loader, so that Aerie can run the kernel where it was loaded.
///
/// # Panics
///
/// If a member is 4 GiB or larger, which the newc format cannot describe.
pub fn write_aligned(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> Vec<u8> {
    let padding = alloc::vec![0u8; padding_before(Member::Kernel.name())];
    write_members(&[
        (PADDING, Some(&padding[..])),
        (Member::Kernel.name(), Some(kernel)),
        (Member::Initrd.name(), initrd),
        (Member::Cmdline.name(), cmdline.map(str::as_bytes)),
    ])
}

/// Writes a firmware bundle: the member `firmware` alone, as [`write`] writes
/// members.
///
/// # Panics
///
/// If the firmware is 4 GiB or larger.
pub fn write_firmware(firmware: &[u8]) -> Vec<u8> {
    write_members(&[(Member::Firmware.name(), Some(firmware))])
}

/// Writes the given members (those with data) in order, then the trailer.
fn write_members(members: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut archive = Archive::new();
    for &(name, data) in members {
        if let Some(data) = data {
            archive.file(name, MEMBER_MODE, data).expect(
                "a guest bundle member must be smaller than 4 GiB (cpio newc sizes are 32 bits)",
            );
        }
    }
    archive.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn firmware_bundles_hold_the_firmware_alone() {
        let archive = write_firmware(b"u-boot");
        let bundle = Bundle::parse(&archive).unwrap();
        assert_eq!(bundle.firmware, Some(&b"u-boot"[..]));
        assert!(bundle.kernel.is_empty());
        assert_eq!(
            Bundle::parse(&write(b"k", None, None)).unwrap().firmware,
            None
        );
        let mut with_kernel = Archive::new();
        with_kernel.file("firmware", 0o644, b"fw").unwrap();
        with_kernel.file("kernel", 0o644, b"k").unwrap();
        let with_kernel = with_kernel.finish();
        let error = Bundle::parse(&with_kernel).unwrap_err();
        assert_eq!(
            error,
            BundleError::FirmwareWith {
                member: Member::Kernel
            }
        );
        assert!(
            error.to_string().contains("firmware boots alone"),
            "{error}"
        );
        assert_eq!(
            Bundle::parse(&write_firmware(b"")),
            Err(BundleError::EmptyFirmware)
        );
    }

    /// An archive made on a Debian machine with GNU cpio 2.13:
    /// `printf 'MZkernel' > kernel; printf init > initrd;
    ///  printf 'console=ttyAMA0 quiet\n' > cmdline; find . | sort | cpio -o -H newc`.
    /// Each entry: the magic and the 13 header fields (c_ino, c_mode, c_uid, c_gid,
    /// c_nlink, c_mtime / c_filesize, c_devmajor, c_devminor, c_rdevmajor, c_rdevminor,
    /// c_namesize, c_check), then name, NUL, padding, data and padding. GNU cpio drops
    /// the `./` prefix and pads the archive with zeros to a 512-byte block (1024 bytes
    /// in all); [`gnu_archive`] adds those zeros.
    #[rustfmt::skip]
    const GNU_NEWC: &[&[u8]] = &[
        // .
        b"070701", b"0098C089", b"000041ED", b"00000000", b"00000000", b"00000002", b"65920080",
        b"00000000", b"000000FE", b"00000000", b"00000000", b"00000000", b"00000002", b"00000000",
        b".\x00",
        // cmdline
        b"070701", b"0098C08C", b"000081A4", b"00000000", b"00000000", b"00000001", b"65920080",
        b"00000016", b"000000FE", b"00000000", b"00000000", b"00000000", b"00000008", b"00000000",
        b"cmdline\x00\x00\x00console=ttyAMA0 quiet\n\x00\x00",
        // initrd
        b"070701", b"0098C08B", b"000081A4", b"00000000", b"00000000", b"00000001", b"65920080",
        b"00000004", b"000000FE", b"00000000", b"00000000", b"00000000", b"00000007", b"00000000",
        b"initrd\x00\x00\x00\x00init",
        // kernel
        b"070701", b"0098C08A", b"000081A4", b"00000000", b"00000000", b"00000001", b"65920080",
        b"00000008", b"000000FE", b"00000000", b"00000000", b"00000000", b"00000007", b"00000000",
        b"kernel\x00\x00\x00\x00MZkernel",
        // TRAILER!!!
        b"070701", b"00000000", b"00000000", b"00000000", b"00000000", b"00000001", b"00000000",
        b"00000000", b"00000000", b"00000000", b"00000000", b"00000000", b"0000000B", b"00000000",
        b"TRAILER!!!\x00\x00\x00\x00",
    ];

    /// The same tool's crc format (`echo kernel | cpio -o -H crc`, kernel = "crc!"):
    /// c_check = 0x63 + 0x72 + 0x63 + 0x21 = 0x159.
    #[rustfmt::skip]
    const GNU_CRC: &[&[u8]] = &[
        // kernel
        b"070702", b"0098C0A1", b"000081A4", b"00000000", b"00000000", b"00000001", b"65920080",
        b"00000004", b"000000FE", b"00000000", b"00000000", b"00000000", b"00000007", b"00000159",
        b"kernel\x00\x00\x00\x00crc!",
        // TRAILER!!!
        b"070702", b"00000000", b"00000000", b"00000000", b"00000000", b"00000001", b"00000000",
        b"00000000", b"00000000", b"00000000", b"00000000", b"00000000", b"0000000B", b"00000000",
        b"TRAILER!!!\x00\x00\x00\x00",
    ];

    fn gnu_archive() -> Vec<u8> {
        let mut archive = GNU_NEWC.concat();
        assert_eq!(archive.len(), 632);
        archive.resize(1024, 0);
        archive
    }

    /// The offset of the first occurrence of `needle` in `haystack`.
    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
            .unwrap()
    }

    /// A single newc entry built field by field (cpio(5)), for hand-made archives.
    fn entry(mode: u32, name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"070701".to_vec();
        let fields = [
            7, // c_ino
            mode,
            0, // c_uid
            0, // c_gid
            1, // c_nlink
            0, // c_mtime
            data.len() as u32,
            0, // c_devmajor
            0, // c_devminor
            0, // c_rdevmajor
            0, // c_rdevminor
            name.len() as u32 + 1,
            0, // c_check
        ];
        for value in fields {
            out.extend_from_slice(std::format!("{value:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = entries.concat();
        out.extend(entry(0, TRAILER, &[]));
        out
    }

    const REG: u32 = 0o100_644;

    #[test]
    fn constants() {
        assert_eq!(HEADER_LEN, 110);
        assert_eq!(MEMBER_MODE, 0o100_644);
        let offsets: Vec<usize> = Field::ALL.iter().map(|f| f.offset()).collect();
        assert_eq!(
            offsets,
            [6, 14, 22, 30, 38, 46, 54, 62, 70, 78, 86, 94, 102]
        );
        assert_eq!(Field::Check.offset() + 8, 110);
    }

    #[test]
    fn reads_an_archive_made_by_gnu_cpio() {
        let archive = gnu_archive();
        let bundle = Bundle::parse(&archive).unwrap();
        assert_eq!(bundle.kernel, b"MZkernel");
        assert_eq!(bundle.initrd, Some(&b"init"[..]));
        assert_eq!(bundle.cmdline, Some("console=ttyAMA0 quiet"));
        // The data is borrowed from the archive, not copied.
        let kernel_at = find(&archive, b"MZkernel");
        assert_eq!(bundle.kernel.as_ptr(), archive[kernel_at..].as_ptr());
    }

    #[test]
    fn reads_gnu_crc_format_and_checks_the_sum() {
        let mut archive = GNU_CRC.concat();
        let bundle = Bundle::parse(&archive).unwrap();
        assert_eq!(bundle.kernel, b"crc!");
        assert_eq!(bundle.initrd, None);
        assert_eq!(bundle.cmdline, None);
        let at = find(&archive, b"crc!");
        archive[at] = b'C';
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::ChecksumMismatch {
                member: Member::Kernel,
                stored: 0x159,
                computed: 0x139,
            })
        );
    }

    #[test]
    fn writer_output_restated_from_the_format() {
        // kernel "K": header, "kernel\0" (110 + 7 = 117, padded to 120), "K" padded to
        // 124; then the trailer: 110 + 11 = 121, padded to 124. 248 bytes in all.
        let expected: Vec<u8> = [
            &b"070701"[..],
            b"00000001", // c_ino
            b"000081A4", // c_mode: regular file, rw-r--r--
            b"00000000", // c_uid
            b"00000000", // c_gid
            b"00000001", // c_nlink
            b"00000000", // c_mtime
            b"00000001", // c_filesize
            b"00000000", // c_devmajor
            b"00000000", // c_devminor
            b"00000000", // c_rdevmajor
            b"00000000", // c_rdevminor
            b"00000007", // c_namesize
            b"00000000", // c_check
            b"kernel\0\0\0\0",
            b"K\0\0\0",
            b"070701",
            b"00000000",
            b"00000000",
            b"00000000",
            b"00000000",
            b"00000001",
            b"00000000",
            b"00000000",
            b"00000000",
            b"00000000",
            b"00000000",
            b"00000000",
            b"0000000B",
            b"00000000",
            b"TRAILER!!!\0\0\0\0",
        ]
        .concat();
        assert_eq!(expected.len(), 248);
        assert_eq!(write(b"K", None, None), expected);
    }

    #[test]
    fn round_trip() {
        let kernel: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let initrd = [0xAA; 13];
        let cases = [
            (None, None),
            (Some(&initrd[..]), None),
            (None, Some("console=ttyAMA0")),
            (Some(&initrd[..]), Some("root=/dev/vda rw init=/bin/sh")),
            (Some(&[][..]), Some("")),
        ];
        for (initrd, cmdline) in cases {
            let archive = write(&kernel, initrd, cmdline);
            assert_eq!(archive.len() % 4, 0);
            let bundle = Bundle::parse(&archive).unwrap();
            assert_eq!(bundle.kernel, &kernel[..]);
            assert_eq!(bundle.initrd, initrd);
            assert_eq!(bundle.cmdline, cmdline);
        }
    }

    #[test]
    fn writer_is_deterministic_and_orders_members() {
        let a = write(b"kernel bytes", Some(b"ramdisk"), Some("quiet"));
        assert_eq!(a, write(b"kernel bytes", Some(b"ramdisk"), Some("quiet")));
        let kernel_at = find(&a, b"kernel\0");
        let initrd_at = find(&a, b"initrd\0");
        let cmdline_at = find(&a, b"cmdline\0");
        let trailer_at = find(&a, b"TRAILER!!!\0");
        assert!(kernel_at < initrd_at && initrd_at < cmdline_at && cmdline_at < trailer_at);
        // Inode numbers 1, 2, 3 at offset 6 of each header.
        for (name_at, ino) in [(kernel_at, b"00000001"), (initrd_at, b"00000002")] {
            let header = name_at - HEADER_LEN;
            assert_eq!(header % 4, 0);
            assert_eq!(&a[header + 6..header + 14], ino);
        }
    }

    #[test]
    fn cmdline_trailing_newlines_are_dropped() {
        for (stored, parsed) in [
            ("quiet\n", "quiet"),
            ("quiet\r\n", "quiet"),
            ("a b\n\n", "a b"),
            ("\n", ""),
            ("  spaced  ", "  spaced  "),
            ("é ünïcode", "é ünïcode"),
        ] {
            let archive = write(b"K", None, Some(stored));
            assert_eq!(Bundle::parse(&archive).unwrap().cmdline, Some(parsed));
        }
    }

    #[test]
    fn accepts_dot_slash_names_dot_directory_and_lower_case_hex() {
        let archive = archive(&[
            entry(0o040_755, ".", &[]),
            entry(REG, "./kernel", b"image"),
            entry(REG, "./initrd", b"rd"),
        ]);
        // `entry` writes lower-case digits: make sure some are letters.
        assert!(
            std::str::from_utf8(&archive[..HEADER_LEN])
                .unwrap()
                .contains("41ed")
        );
        let bundle = Bundle::parse(&archive).unwrap();
        assert_eq!(bundle.kernel, b"image");
        assert_eq!(bundle.initrd, Some(&b"rd"[..]));
    }

    #[test]
    fn not_a_cpio_archive() {
        let not_cpio = |bytes: &[u8]| Bundle::parse(bytes).unwrap_err();
        assert_eq!(not_cpio(&[]), BundleError::Empty);
        // Zeros are padding: an archive of nothing but padding lacks its trailer.
        assert_eq!(not_cpio(&[0; 600]), BundleError::MissingTrailer);
        let found = |bytes: &[u8]| match not_cpio(bytes) {
            BundleError::NotCpio { found } => found,
            other => panic!("{other:?}"),
        };
        assert_eq!(found(&[0x1f, 0x8b, 8, 0]), Foreign::Compressed("gzip"));
        assert_eq!(
            found(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            Foreign::Compressed("xz")
        );
        assert_eq!(
            found(&[0x28, 0xb5, 0x2f, 0xfd]),
            Foreign::Compressed("zstd")
        );
        assert_eq!(found(b"BZh91AY"), Foreign::Compressed("bzip2"));
        assert_eq!(found(&[0x04, 0x22, 0x4d, 0x18]), Foreign::Compressed("lz4"));
        // GNU cpio -H odc starts "070707"; -H bin with 0o070707 in host order.
        assert_eq!(found(b"0707071770001402"), Foreign::OtherCpio("odc"));
        assert_eq!(found(&[0xc7, 0x71, 0, 0xfe]), Foreign::OtherCpio("bin"));
        assert_eq!(found(&[0x71, 0xc7, 0xfe, 0]), Foreign::OtherCpio("bin"));
        let mut image = [0u8; 64];
        image[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(found(&image), Foreign::KernelImage);
        assert_eq!(found(b"\x7fELF\x02\x01\x01"), Foreign::Unknown);
        assert_eq!(found(b"07070"), Foreign::Unknown);
    }

    #[test]
    fn bad_magic_and_fields() {
        let mut archive = write(b"K", None, None);
        // The trailer's magic (entry 2, at offset 124).
        archive[124 + 5] = b'7';
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::BadMagic { offset: 124 })
        );
        for field in Field::ALL {
            for bad in [b'g', b' ', b'+', b'-', 0, b'x'] {
                let mut archive = write(b"K", None, None);
                archive[field.offset() + 3] = bad;
                assert_eq!(
                    Bundle::parse(&archive),
                    Err(BundleError::BadField {
                        offset: 0,
                        field: field.name()
                    }),
                    "{field:?} {bad}"
                );
            }
        }
    }

    #[test]
    fn bad_names() {
        let mut archive = write(b"K", None, None);
        // c_namesize 0: not even a NUL.
        archive[94..102].copy_from_slice(b"00000000");
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::BadName { offset: 0 })
        );
        // c_namesize 6: "kernel" without its NUL.
        archive[94..102].copy_from_slice(b"00000006");
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::BadName { offset: 0 })
        );
        // c_namesize 1: an empty name.
        let mut archive = archive_with_name(b"\0");
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::BadName { offset: 0 })
        );
        // A NUL inside the name, and a name that is not UTF-8.
        archive = archive_with_name(b"ker\0el\0");
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::BadName { offset: 0 })
        );
        archive = archive_with_name(b"k\xffrnel\0");
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::BadName { offset: 0 })
        );
        // A name size far past the end.
        let mut archive = write(b"K", None, None);
        archive[94..102].copy_from_slice(b"FFFFFFFF");
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::TruncatedHeader { offset: 0 })
        );
    }

    /// A one-entry archive whose entry has the raw name `name` (NUL included).
    fn archive_with_name(name: &[u8]) -> Vec<u8> {
        let mut first = entry(REG, "x", b"");
        first.truncate(HEADER_LEN);
        first[94..102].copy_from_slice(std::format!("{:08x}", name.len()).as_bytes());
        first.extend_from_slice(name);
        while first.len() % 4 != 0 {
            first.push(0);
        }
        archive(&[first])
    }

    #[test]
    fn truncated_member() {
        let archive = write(&[7; 100], None, None);
        // The kernel's data starts at 120; cut it after 40 bytes.
        assert_eq!(
            Bundle::parse(&archive[..160]),
            Err(BundleError::TruncatedMember {
                member: Member::Kernel,
                offset: 120,
                size: 100,
                available: 40,
            })
        );
        let mut huge = write(b"K", None, None);
        huge[54..62].copy_from_slice(b"FFFFFFFF");
        assert_eq!(
            Bundle::parse(&huge),
            Err(BundleError::TruncatedMember {
                member: Member::Kernel,
                offset: 120,
                size: u32::MAX,
                available: 128,
            })
        );
    }

    #[test]
    fn truncated_header_and_missing_trailer() {
        let archive = write(b"K", None, None);
        // Inside the trailer's header (it starts at 124).
        assert_eq!(
            Bundle::parse(&archive[..130]),
            Err(BundleError::TruncatedHeader { offset: 124 })
        );
        assert_eq!(
            Bundle::parse(&archive[..127]),
            Err(BundleError::TruncatedHeader { offset: 124 })
        );
        // Right after the kernel entry, or followed by zeros only.
        assert_eq!(
            Bundle::parse(&archive[..124]),
            Err(BundleError::MissingTrailer)
        );
        let mut zeros = archive[..124].to_vec();
        zeros.resize(1024, 0);
        assert_eq!(Bundle::parse(&zeros), Err(BundleError::MissingTrailer));
    }

    #[test]
    fn padding_after_the_trailer() {
        let mut archive = write(b"K", None, None);
        archive.resize(4096, 0);
        assert!(Bundle::parse(&archive).is_ok());
        archive[3000] = 1;
        assert_eq!(
            Bundle::parse(&archive),
            Err(BundleError::TrailingData { offset: 3000 })
        );
        // A second archive appended (Linux would read it; Aerie refuses it).
        let mut two = write(b"K", None, None);
        let end = two.len();
        two.extend(write(b"K2", None, None));
        assert_eq!(
            Bundle::parse(&two),
            Err(BundleError::TrailingData { offset: end })
        );
    }

    #[test]
    fn duplicate_unknown_and_non_regular_members() {
        let dup = archive(&[entry(REG, "kernel", b"a"), entry(REG, "./kernel", b"b")]);
        assert_eq!(
            Bundle::parse(&dup),
            Err(BundleError::DuplicateMember {
                member: Member::Kernel
            })
        );
        let unknown = archive(&[entry(REG, "kernel", b"a"), entry(REG, "initramfs", b"b")]);
        let Err(BundleError::UnknownMember { name }) = Bundle::parse(&unknown) else {
            panic!()
        };
        assert_eq!(name.as_str(), "initramfs");
        assert!(!name.is_cut());
        // Directories other than "." are unknown; "." as a file is unknown too.
        for (mode, name) in [(0o040_755, "boot"), (REG, ".")] {
            let Err(BundleError::UnknownMember { name: shown }) =
                Bundle::parse(&archive(&[entry(mode, name, &[])]))
            else {
                panic!("{name}")
            };
            assert_eq!(shown.as_str(), name);
        }
        // A symbolic link (0120777) or a directory named like a member.
        for mode in [0o120_777, 0o040_755, 0o020_644] {
            assert_eq!(
                Bundle::parse(&archive(&[entry(mode, "initrd", b"x")])),
                Err(BundleError::NotRegularFile {
                    member: Member::Initrd,
                    mode
                })
            );
        }
    }

    #[test]
    fn missing_or_empty_kernel() {
        assert_eq!(
            Bundle::parse(&archive(&[entry(REG, "initrd", b"x")])),
            Err(BundleError::MissingKernel)
        );
        assert_eq!(
            Bundle::parse(&write(b"", Some(b"x"), None)),
            Err(BundleError::EmptyKernel)
        );
    }

    #[test]
    fn cmdline_must_be_text_without_nul() {
        let bad = archive(&[
            entry(REG, "kernel", b"K"),
            entry(REG, "cmdline", b"quiet \xc3\x28"),
        ]);
        assert_eq!(
            Bundle::parse(&bad),
            Err(BundleError::CmdlineNotUtf8 { offset: 6 })
        );
        assert_eq!(
            Bundle::parse(&write(b"K", None, Some("a\0b"))),
            Err(BundleError::CmdlineContainsNul { offset: 1 })
        );
    }

    #[test]
    fn long_foreign_names_are_cut_and_escaped() {
        let long: std::string::String = std::iter::repeat_n('é', 40).collect();
        let Err(BundleError::UnknownMember { name }) =
            Bundle::parse(&archive(&[entry(REG, &long, b"")]))
        else {
            panic!()
        };
        // 'é' is 2 bytes: 24 fit in 48 bytes.
        assert_eq!(name.as_str().chars().count(), 24);
        assert!(name.is_cut());
        assert!(name.to_string().ends_with("é...\""));
        let Err(BundleError::UnknownMember { name }) =
            Bundle::parse(&archive(&[entry(REG, "evil\x1b[2J\n", b"")]))
        else {
            panic!()
        };
        assert_eq!(name.to_string(), "\"evil\\u{1b}[2J\\n\"");
    }

    #[test]
    fn the_aligned_writer_starts_the_kernel_at_2_mib_and_parses_back() {
        let kernel = [0x5a; 5000];
        for (initrd, cmdline) in [(None, None), (Some(&b"ramdisk"[..]), Some("quiet"))] {
            let archive = write_aligned(&kernel, initrd, cmdline);
            let bundle = Bundle::parse(&archive).unwrap();
            let offset = bundle.kernel.as_ptr() as usize - archive.as_ptr() as usize;
            assert_eq!(offset, KERNEL_ALIGN);
            assert_eq!(bundle.kernel, &kernel[..]);
            assert_eq!(bundle.initrd, initrd);
            assert_eq!(bundle.cmdline, cmdline);
            // Only the padding member comes before the kernel.
            assert_eq!(&archive[110..118], b"padding\0");
        }
    }

    #[test]
    fn padding_members_are_ignored_wherever_they_are_but_must_be_files() {
        let padded = archive(&[
            entry(REG, "padding", &[1, 2, 3]),
            entry(REG, "kernel", b"K"),
            entry(REG, "./padding", &[0; 64]),
            entry(REG, "initrd", b"I"),
        ]);
        let bundle = Bundle::parse(&padded).unwrap();
        assert_eq!((bundle.kernel, bundle.initrd), (&b"K"[..], Some(&b"I"[..])));
        let directory = archive(&[entry(0o040_755, "padding", &[]), entry(REG, "kernel", b"K")]);
        assert!(matches!(
            Bundle::parse(&directory),
            Err(BundleError::UnknownMember { .. })
        ));
    }

    #[test]
    fn messages() {
        let message = |error: BundleError| error.to_string();
        assert_eq!(
            message(BundleError::UnknownMember {
                name: ShownName::new("vmlinuz")
            }),
            "unknown member \"vmlinuz\" in the guest bundle; the members are 'kernel' \
             (required), 'initrd', 'cmdline' and 'padding', or 'firmware' alone"
        );
        assert_eq!(
            message(BundleError::TruncatedMember {
                member: Member::Initrd,
                offset: 0x200,
                size: 4096,
                available: 100,
            }),
            "the guest bundle is truncated: member 'initrd' has 4096 bytes at offset 0x200 \
             but only 100 bytes follow"
        );
        assert_eq!(
            message(BundleError::DuplicateMember {
                member: Member::Cmdline
            }),
            "the guest bundle has member 'cmdline' twice"
        );
        assert_eq!(
            message(BundleError::BadField {
                offset: 0x7c,
                field: "c_filesize"
            }),
            "corrupt guest bundle: field c_filesize of the cpio entry at offset 0x7c is not \
             8 hexadecimal digits"
        );
        assert_eq!(
            message(BundleError::NotRegularFile {
                member: Member::Kernel,
                mode: 0o120_777
            }),
            "member 'kernel' of the guest bundle is not a regular file (mode 0o120777)"
        );
        assert!(
            message(BundleError::NotCpio {
                found: Foreign::Compressed("gzip")
            })
            .starts_with("the guest bundle is gzip-compressed;")
        );
        assert!(
            message(BundleError::NotCpio {
                found: Foreign::Unknown
            })
            .contains("cpio -o -H newc")
        );
        assert!(message(BundleError::MissingTrailer).contains("TRAILER!!!"));
        assert!(message(BundleError::MissingKernel).contains("'kernel'"));
        // Every variant says something.
        let all = [
            BundleError::Empty,
            BundleError::NotCpio {
                found: Foreign::KernelImage,
            },
            BundleError::NotCpio {
                found: Foreign::OtherCpio("odc"),
            },
            BundleError::BadMagic { offset: 4 },
            BundleError::TruncatedHeader { offset: 4 },
            BundleError::BadName { offset: 4 },
            BundleError::ChecksumMismatch {
                member: Member::Kernel,
                stored: 1,
                computed: 2,
            },
            BundleError::TrailingData { offset: 4 },
            BundleError::EmptyKernel,
            BundleError::CmdlineNotUtf8 { offset: 4 },
            BundleError::CmdlineContainsNul { offset: 4 },
        ];
        for error in all {
            assert!(message(error).len() > 20, "{error:?}");
        }
    }

    /// A reference bundle exercising every member, for the sweeps.
    fn reference() -> Vec<u8> {
        write(
            b"MZ kernel image",
            Some(b"initrd!"),
            Some("console=ttyAMA0\n"),
        )
    }

    #[test]
    fn every_truncation_is_refused_without_panicking() {
        let archive = reference();
        let trailer_name_end = find(&archive, b"TRAILER!!!\0") + TRAILER.len() + 1;
        for len in 0..archive.len() {
            let result = Bundle::parse(&archive[..len]);
            if len < trailer_name_end {
                assert!(result.is_err(), "truncated to {len}: {result:?}");
            } else {
                // Only the trailer's zero padding is missing.
                assert!(result.is_ok(), "truncated to {len}: {result:?}");
            }
        }
        // The same for GNU cpio's archive, padding included.
        let gnu = gnu_archive();
        for len in 0..gnu.len() {
            let _ = Bundle::parse(&gnu[..len]);
        }
    }

    #[test]
    fn every_single_byte_corruption_is_handled() {
        // Each byte replaced by values that hit every parser path: NUL, a digit, a
        // hex letter, a non-hex letter, a high byte, '/', and its bit complement.
        for reference in [reference(), gnu_archive(), GNU_CRC.concat()] {
            let mut archive = reference.clone();
            for at in 0..reference.len() {
                let original = reference[at];
                for value in [0, b'0', b'F', b'9', b'g', 0xff, b'/', !original] {
                    archive[at] = value;
                    if let Ok(bundle) = Bundle::parse(&archive) {
                        // Whatever is accepted lies inside the archive.
                        let range = archive.as_ptr_range();
                        assert!(range.contains(&bundle.kernel.as_ptr()));
                        assert!(!bundle.kernel.is_empty());
                    }
                }
                archive[at] = original;
            }
        }
        // Corrupting any byte of the first magic is refused.
        for at in 0..6 {
            let mut archive = reference();
            archive[at] ^= 0x20;
            assert!(Bundle::parse(&archive).is_err());
        }
    }

    /// A newc header restated from cpio(5): magic, then the 13 fields as upper-case
    /// hex, in order ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
    /// devminor, rdevmajor, rdevminor, namesize, check.
    fn newc_header(
        ino: u32,
        mode: u32,
        nlink: u32,
        size: u32,
        rdev: (u32, u32),
        name: &str,
    ) -> std::string::String {
        std::format!(
            "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{size:08X}{:08X}{:08X}\
             {:08X}{:08X}{:08X}{:08X}",
            0,
            0,
            0,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        )
    }

    #[test]
    fn every_kind_of_entry_restated_from_the_format() {
        let mut archive = Archive::new();
        archive.dir("bin", 0o755).unwrap();
        archive.file("bin/hi", 0o755, b"#!x").unwrap();
        archive.symlink("bin/sh", "hi").unwrap();
        archive.char_device("dev/console", 0o600, 5, 1).unwrap();
        let bytes = archive.finish();

        let mut expected = Vec::new();
        // 110-byte header + "bin\0" = 114, padded to 116; no data.
        expected.extend(newc_header(1, 0o040_755, 2, 0, (0, 0), "bin").bytes());
        expected.extend(b"bin\0\0\0");
        // 110 + 7 ("bin/hi\0") = 117, padded to 120; 3 bytes of data padded to 4.
        expected.extend(newc_header(2, 0o100_755, 1, 3, (0, 0), "bin/hi").bytes());
        expected.extend(b"bin/hi\0\0\0\0");
        expected.extend(b"#!x\0");
        // The link's data is its target.
        expected.extend(newc_header(3, 0o120_777, 1, 2, (0, 0), "bin/sh").bytes());
        expected.extend(b"bin/sh\0\0\0\0");
        expected.extend(b"hi\0\0");
        // /dev/console is character device 5:1 (Linux devices.txt).
        expected.extend(newc_header(4, 0o020_600, 1, 0, (5, 1), "dev/console").bytes());
        expected.extend(b"dev/console\0\0\0");
        expected.extend(newc_header(0, 0, 1, 0, (0, 0), "TRAILER!!!").bytes());
        // 110 + 11 ("TRAILER!!!\0") = 121, padded to 124.
        expected.extend(b"TRAILER!!!\0\0\0\0");
        assert_eq!(
            std::string::String::from_utf8_lossy(&bytes),
            std::string::String::from_utf8_lossy(&expected)
        );
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn permissions_are_masked_and_file_types_come_from_the_method() {
        let mut archive = Archive::new();
        archive.file("f", 0o170_644, b"").unwrap();
        let bytes = archive.finish();
        assert_eq!(&bytes[14..22], b"000081A4"); // S_IFREG | 0644
        let mut archive = Archive::new();
        archive.dir("tmp", 0o1777).unwrap();
        assert_eq!(&archive.finish()[14..22], b"000043FF"); // S_IFDIR | 01777
    }

    #[test]
    fn bad_entry_names_are_refused() {
        for name in [
            "", "/init", "a//b", "./init", "a/../b", "a/", "nul\0", TRAILER,
        ] {
            let error = Archive::new().file(name, 0o644, b"").unwrap_err();
            assert_eq!(error, ArchiveError::BadName(ShownName::new(name)));
            assert!(
                error.to_string().contains("not a valid cpio entry name"),
                "{name:?}"
            );
        }
        assert!(Archive::new().file("usr/bin/env", 0o755, b"").is_ok());
    }
}
