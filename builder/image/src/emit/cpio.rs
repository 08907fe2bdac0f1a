//! cpio "newc" archives (what the kernel unpacks as an initramfs):
//! entries in the order given, owners and times as given, inode numbers
//! counted from 1, hard links stored as copies.

use std::io::{self, Write};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Directory,
    /// A regular file.
    File(Vec<u8>),
    /// A symlink.
    Symlink(String),
    /// A character device (major, minor).
    CharDevice(u32, u32),
}

/// Writes newc archives.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    inode: u32,
    written: u64,
    mtime: u32,
}

impl<W: Write> Writer<W> {
    /// A writer whose every entry has `mtime`.
    pub fn new(out: W, mtime: u32) -> Self {
        Writer {
            out,
            inode: 0,
            written: 0,
            mtime,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.raw(&[0; 3][..pad])
    }

    /// Appends one entry; `path` without a leading slash.
    pub fn append(
        &mut self,
        path: &str,
        entry: &Entry,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<()> {
        self.inode += 1;
        let (kind, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
            Entry::Directory => (0o040000, &[], (0, 0)),
            Entry::File(bytes) => (0o100000, bytes, (0, 0)),
            Entry::Symlink(target) => (0o120000, target.as_bytes(), (0, 0)),
            Entry::CharDevice(major, minor) => (0o020000, &[], (*major, *minor)),
        };
        let nlink = if matches!(entry, Entry::Directory) {
            2
        } else {
            1
        };
        self.header(
            path,
            kind | (mode & 0o7777),
            uid,
            gid,
            nlink,
            data.len() as u32,
            rdev,
        )?;
        self.raw(data)?;
        self.pad()
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        nlink: u32,
        size: u32,
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let name_size = path.len() as u32 + 1;
        let fields = [
            self.inode, mode, uid, gid, nlink, self.mtime, size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        let mut header = String::from("070701");
        for field in fields {
            header += &format!("{field:08X}");
        }
        self.raw(header.as_bytes())?;
        self.raw(path.as_bytes())?;
        self.raw(&[0])?;
        self.pad()
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.inode = 0;
        self.header("TRAILER!!!", 0, 0, 0, 1, 0, (0, 0))?;
        Ok(self.out)
    }
}
