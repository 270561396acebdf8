//! Reading a bundle from media built by an attacker: nothing followed
//! through a link, only regular files and folders, sizes bounded before
//! reading, folder listings checked one entry at a time.

use super::ImportError;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{fstat, openat, Dir, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use shared::bundle::{self, BundleFile, BundleHeader};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// A folder of the bundle, held open: everything inside it is opened
/// relative to this handle, one path component at a time, never following
/// a link, without blocking (a FIFO or a device cannot hang the import),
/// and checked with `fstat` on the handle that was opened (no window
/// between a check and the open). `name` is its path inside the bundle,
/// for messages.
pub(super) struct Folder {
    fd: OwnedFd,
    name: String,
}

/// Open flags for anything on the media.
fn media_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY
}

impl Folder {
    /// The bundle folder itself (`path`, as the operator gave it; a link
    /// at its last component is refused).
    pub(super) fn open_root(path: &Path) -> Result<Folder, ImportError> {
        let name = path.display().to_string();
        let fd = open_at(CWD, path, media_flags() | OFlags::DIRECTORY, &name)?;
        let mut folder = Folder { fd, name };
        folder.expect(FileType::Directory)?;
        // Names inside are given relative to the bundle.
        folder.name.clear();
        Ok(folder)
    }

    /// What `rel` is called in messages.
    fn inside(&self, rel: &str) -> String {
        if self.name.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.name)
        }
    }

    /// The type of the open handle must be `want`.
    fn expect(&self, want: FileType) -> Result<u64, ImportError> {
        let st = fstat(&self.fd).map_err(|e| unreadable(&self.name, e))?;
        if FileType::from_raw_mode(st.st_mode) != want {
            return Err(wrong_type(&self.name, want));
        }
        Ok(u64::try_from(st.st_size).unwrap_or(0))
    }

    /// The folder `rel` (components separated by `/`) below this one.
    pub(super) fn dir(&self, rel: &str) -> Result<Folder, ImportError> {
        let mut here: Option<Folder> = None;
        for part in rel.split('/') {
            let at = here.as_ref().unwrap_or(self);
            let name = at.inside(part);
            check_component(part, &name)?;
            let fd = open_at(&at.fd, part, media_flags() | OFlags::DIRECTORY, &name)?;
            let next = Folder { fd, name };
            next.expect(FileType::Directory)?;
            here = Some(next);
        }
        here.ok_or_else(|| ImportError::Missing(self.inside(rel)))
    }

    /// Opens the regular file `rel` below this folder; returns it and its
    /// size.
    pub(super) fn file(&self, rel: &str) -> Result<(File, u64), ImportError> {
        let (folder, leaf) = match rel.rsplit_once('/') {
            Some((d, f)) => (Some(self.dir(d)?), f),
            None => (None, rel),
        };
        let at = folder.as_ref().unwrap_or(self);
        let name = at.inside(leaf);
        check_component(leaf, &name)?;
        let fd = open_at(&at.fd, leaf, media_flags(), &name)?;
        let f = Folder { fd, name };
        let len = f.expect(FileType::RegularFile)?;
        Ok((File::from(f.fd), len))
    }

    /// Reads the whole regular file `rel` of at most `limit` bytes.
    pub(super) fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>, ImportError> {
        let (f, len) = self.file(rel)?;
        let path = self.inside(rel);
        if len > limit {
            return Err(ImportError::TooLarge {
                path,
                size: len,
                limit,
            });
        }
        let mut out = Vec::with_capacity(len as usize);
        f.take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| ImportError::Unreadable {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if out.len() as u64 > limit {
            return Err(ImportError::TooLarge {
                path,
                size: out.len() as u64,
                limit,
            });
        }
        Ok(out)
    }

    /// Calls `check` on each entry name of this folder as it is read,
    /// stopping at the first refusal: a folder holding millions of files
    /// costs time, never memory. A name that is not UTF-8 is refused.
    pub(super) fn each_entry(
        &self,
        mut check: impl FnMut(&str) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let dir = Dir::read_from(&self.fd).map_err(|e| unreadable(&self.name, e))?;
        for e in dir {
            let e = e.map_err(|e| unreadable(&self.name, e))?;
            let raw = e.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            match std::str::from_utf8(raw) {
                Ok(n) => check(n)?,
                Err(_) => {
                    return Err(ImportError::ExtraFile(
                        self.inside(&String::from_utf8_lossy(raw)),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A path component from the code's own names: never empty, `.` or `..`.
fn check_component(part: &str, name: &str) -> Result<(), ImportError> {
    if part.is_empty() || part == "." || part == ".." {
        return Err(ImportError::Missing(name.to_owned()));
    }
    Ok(())
}

fn open_at(
    at: impl AsFd,
    path: impl rustix::path::Arg,
    flags: OFlags,
    name: &str,
) -> Result<OwnedFd, ImportError> {
    openat(at, path, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => ImportError::Missing(name.to_owned()),
        // O_NOFOLLOW on a link, O_DIRECTORY on something else.
        Errno::LOOP | Errno::NOTDIR | Errno::MLINK => {
            let want = if flags.contains(OFlags::DIRECTORY) {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            wrong_type(name, want)
        }
        e => unreadable(name, e),
    })
}

/// `name` is not of the type `want`.
fn wrong_type(name: &str, want: FileType) -> ImportError {
    if want == FileType::Directory {
        ImportError::NotFolder(name.to_owned())
    } else {
        ImportError::NotRegular(name.to_owned())
    }
}

fn unreadable(name: &str, e: Errno) -> ImportError {
    ImportError::Unreadable {
        path: name.to_owned(),
        reason: std::io::Error::from(e).to_string(),
    }
}

/// Whether `sub/name` is a file the manifest lists. Listed names are derived
/// from the header (ballots by leaf index, CRLs and intermediates by count),
/// so nothing per entry is remembered; every listed file was already read.
pub(super) fn listed(header: &BundleHeader, sub: &str, name: &str) -> bool {
    let end = header.first_index.saturating_add(header.entry_count);
    match bundle::parse_file_name(sub, name) {
        Some(BundleFile::Ballot(i)) => i >= header.first_index && i < end,
        Some(BundleFile::Crl(n)) => n < header.crls.len(),
        Some(BundleFile::Intermediate(n)) => n < header.intermediates.len(),
        None => false,
    }
}

/// A reader that hashes what passes through it.
pub(super) struct HashingReader<R> {
    pub(super) inner: R,
    pub(super) hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}
