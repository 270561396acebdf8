//! Reading a bundle from media built by an attacker: nothing followed
//! through a link, only regular files and folders, sizes bounded before
//! reading, folder listings checked one entry at a time.

use super::ImportError;
use sha2::{Digest, Sha256};
use shared::bundle::{self, BundleFile, BundleHeader};
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub(super) fn display(p: &Path, root: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Opens a regular file without following links. The check is repeated on
/// the open handle (same device and inode) to defeat a swap in between.
pub(super) fn open_regular(path: &Path, root: &Path) -> Result<(File, u64), ImportError> {
    use std::os::unix::fs::MetadataExt;
    let name = display(path, root);
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::Missing(name))
        }
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_file() {
        return Err(ImportError::NotRegular(name));
    }
    let f = File::open(path)?;
    let m2 = f.metadata()?;
    if !m2.file_type().is_file() || m2.dev() != meta.dev() || m2.ino() != meta.ino() {
        return Err(ImportError::NotRegular(name));
    }
    Ok((f, m2.len()))
}

pub(super) fn check_dir(path: &Path, root: &Path) -> Result<(), ImportError> {
    let name = display(path, root);
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => Err(ImportError::NotRegular(name)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ImportError::Missing(name)),
        Err(e) => Err(e.into()),
    }
}

/// Reads a whole regular file of at most `limit` bytes.
pub(super) fn read_regular(path: &Path, root: &Path, limit: u64) -> Result<Vec<u8>, ImportError> {
    let (f, len) = open_regular(path, root)?;
    if len > limit {
        return Err(ImportError::TooLarge {
            path: display(path, root),
            size: len,
            limit,
        });
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(ImportError::TooLarge {
            path: display(path, root),
            size: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}

/// Calls `check` on each entry name of a folder as it is read, stopping at
/// the first refusal: a folder holding millions of files costs time, never
/// memory.
pub(super) fn each_entry(
    dir: &Path,
    mut check: impl FnMut(&str) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    for e in std::fs::read_dir(dir)? {
        check(&e?.file_name().to_string_lossy())?;
    }
    Ok(())
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
