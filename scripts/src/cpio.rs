//! Writing cpio archives in the "newc" format, the format of Linux's initramfs:
//! directories, regular files, symbolic links and device nodes.
//!
//! The format (Linux `Documentation/driver-api/early-userspace/buffer-format.rst`,
//! cpio(5)): each entry is a 110-byte header, the name with its NUL, padding to a
//! multiple of 4 bytes, the data, padding to a multiple of 4 again. The header is
//! the magic `070701` and thirteen fields of 8 hexadecimal digits: `c_ino`,
//! `c_mode`, `c_uid`, `c_gid`, `c_nlink`, `c_mtime`, `c_filesize`, `c_devmajor`,
//! `c_devminor`, `c_rdevmajor`, `c_rdevminor`, `c_namesize` (NUL included) and
//! `c_check` (0 in newc). A symbolic link's data is its target. The entry named
//! `TRAILER!!!` ends the archive.
//!
//! `aerie_hyp::bundle` reads and writes the guest bundle, a cpio archive with fixed
//! members; this writer is the general one, for the guest's initramfs. Its output
//! depends only on what was added: owner root, mtime 0, inode numbers counted from 1.

use aerie_hyp::bundle::{HEADER_LEN, NEWC_MAGIC, TRAILER};

use crate::error::{Error, Result};

/// `c_mode` file type of a directory (POSIX `S_IFDIR`).
pub const S_IFDIR: u32 = 0o040_000;
/// `c_mode` file type of a regular file (`S_IFREG`).
pub const S_IFREG: u32 = 0o100_000;
/// `c_mode` file type of a symbolic link (`S_IFLNK`).
pub const S_IFLNK: u32 = 0o120_000;
/// `c_mode` file type of a character device (`S_IFCHR`).
pub const S_IFCHR: u32 = 0o020_000;
/// The permission bits of `c_mode` (with set-user-ID, set-group-ID and sticky).
const PERMISSIONS: u32 = 0o7777;
/// Names and data are padded to multiples of this many bytes.
const ALIGN: usize = 4;
/// Digits per numeric header field.
const FIELD_LEN: usize = 8;

/// The numeric header fields of one entry, in archive order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    file_size: u32,
    rdev_major: u32,
    rdev_minor: u32,
    name_size: u32,
}

impl Header {
    /// The thirteen fields in archive order: c_ino, c_mode, c_uid, c_gid, c_nlink,
    /// c_mtime, c_filesize, c_devmajor, c_devminor, c_rdevmajor, c_rdevminor,
    /// c_namesize, c_check. Owner, mtime, the archive's own device and the check
    /// are 0.
    fn fields(&self) -> [u32; 13] {
        [
            self.ino,
            self.mode,
            0,
            0,
            self.nlink,
            0,
            self.file_size,
            0,
            0,
            self.rdev_major,
            self.rdev_minor,
            self.name_size,
            0,
        ]
    }
}

/// A newc archive under construction; [`Archive::finish`] adds the trailer.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
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
    pub fn dir(&mut self, name: &str, permissions: u32) -> Result<&mut Self> {
        self.entry(name, S_IFDIR | permissions & PERMISSIONS, 2, (0, 0), &[])
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> Result<&mut Self> {
        self.entry(name, S_IFREG | permissions & PERMISSIONS, 1, (0, 0), data)
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<&mut Self> {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node with device number `major:minor`.
    pub fn char_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self> {
        let mode = S_IFCHR | permissions & PERMISSIONS;
        self.entry(name, mode, 1, (major, minor), &[])
    }

    /// Ends the archive with the trailer entry and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // GNU cpio's trailer: inode 0, mode 0, one link, no data.
        self.push(
            &Header {
                nlink: 1,
                name_size: TRAILER.len() as u32 + 1,
                ..Header::default()
            },
            TRAILER,
            &[],
        );
        self.bytes
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        (rdev_major, rdev_minor): (u32, u32),
        data: &[u8],
    ) -> Result<&mut Self> {
        check_name(name)?;
        let too_big = || Error::new(format!("cpio entry {name} is 4 GiB or larger"));
        let header = Header {
            ino: self.next_ino,
            mode,
            nlink,
            file_size: u32::try_from(data.len()).map_err(|_| too_big())?,
            rdev_major,
            rdev_minor,
            name_size: u32::try_from(name.len() + 1).map_err(|_| too_big())?,
        };
        self.next_ino += 1;
        self.push(&header, name, data);
        Ok(self)
    }

    fn push(&mut self, header: &Header, name: &str, data: &[u8]) {
        let out = &mut self.bytes;
        out.reserve(HEADER_LEN + name.len() + data.len() + 2 * ALIGN);
        out.extend_from_slice(&NEWC_MAGIC);
        for value in header.fields() {
            out.extend_from_slice(format!("{value:0width$X}", width = FIELD_LEN).as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
    }
}

/// Archive names are relative paths without `.` or `..` components and without NUL
/// (the kernel unpacks them below the root of the initramfs).
fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name == TRAILER
        || name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        Err(Error::new(format!(
            "`{name}` is not a valid cpio entry name"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A newc header restated from cpio(5): magic, then the 13 fields as upper-case
    /// hex, in order ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
    /// devminor, rdevmajor, rdevminor, namesize, check.
    fn header(ino: u32, mode: u32, nlink: u32, size: u32, rdev: (u32, u32), name: &str) -> String {
        format!(
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
        expected.extend(header(1, 0o040_755, 2, 0, (0, 0), "bin").bytes());
        expected.extend(b"bin\0\0\0");
        // 110 + 7 ("bin/hi\0") = 117, padded to 120; 3 bytes of data padded to 4.
        expected.extend(header(2, 0o100_755, 1, 3, (0, 0), "bin/hi").bytes());
        expected.extend(b"bin/hi\0\0\0\0");
        expected.extend(b"#!x\0");
        // The link's data is its target.
        expected.extend(header(3, 0o120_777, 1, 2, (0, 0), "bin/sh").bytes());
        expected.extend(b"bin/sh\0\0\0\0");
        expected.extend(b"hi\0\0");
        // /dev/console is character device 5:1 (Linux devices.txt).
        expected.extend(header(4, 0o020_600, 1, 0, (5, 1), "dev/console").bytes());
        expected.extend(b"dev/console\0\0\0");
        expected.extend(header(0, 0, 1, 0, (0, 0), "TRAILER!!!").bytes());
        // 110 + 11 ("TRAILER!!!\0") = 121, padded to 124.
        expected.extend(b"TRAILER!!!\0\0\0\0");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn the_bundle_parser_reads_what_this_writer_writes() {
        let mut archive = Archive::new();
        archive.file("kernel", 0o644, b"kernel bytes").unwrap();
        archive.file("initrd", 0o644, b"odd").unwrap();
        archive.file("cmdline", 0o644, b"console=ttyAMA0").unwrap();
        let bytes = archive.finish();
        let bundle = aerie_hyp::bundle::Bundle::parse(&bytes).unwrap();
        assert_eq!(bundle.kernel, b"kernel bytes");
        assert_eq!(bundle.initrd, Some(&b"odd"[..]));
        assert_eq!(bundle.cmdline, Some("console=ttyAMA0"));
        // The same members give the same bytes as the bundle's own writer.
        assert_eq!(
            bytes,
            aerie_hyp::bundle::write(b"kernel bytes", Some(b"odd"), Some("console=ttyAMA0"))
        );
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
    fn bad_names_are_refused() {
        for name in [
            "", "/init", "a//b", "./init", "a/../b", "a/", "nul\0", TRAILER,
        ] {
            let error = Archive::new().file(name, 0o644, b"").unwrap_err();
            assert!(
                error.to_string().contains("not a valid cpio entry name"),
                "{name:?}"
            );
        }
        assert!(Archive::new().file("usr/bin/env", 0o755, b"").is_ok());
    }
}
