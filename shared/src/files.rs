//! Careful file handling shared by the gateway and the verifier: new files
//! are created (never overwritten) with an explicit mode and fsynced; secret
//! files are refused if other users can read them; reads are bounded.

use std::io::{Read, Write};
use std::path::Path;
use thiserror::Error;

/// Why a file could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file already exists (new files never overwrite).
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    /// A secret file that other users can read.
    #[error("{path} can be read by other users (mode {mode:o}); run: chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than allowed.
    #[error("{path} is larger than the limit of {max} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit.
        max: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `path` (which must not exist) with `mode`, writes `data`, fsyncs.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), FileError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            FileError::Exists(path.display().to_string())
        } else {
            io(path)(e)
        }
    })?;
    f.write_all(data).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
}

/// Reads a file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut out = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io(path))?;
    if out.len() as u64 > max {
        return Err(FileError::TooLarge {
            path: path.display().to_string(),
            max,
        });
    }
    Ok(out)
}

/// Reads a secret file (at most 1 MiB), refusing one that group or others
/// can read.
pub fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(FileError::TooOpen {
                path: path.display().to_string(),
                mode: mode & 0o777,
            });
        }
    }
    Ok(zeroize::Zeroizing::new(read_bounded(path, 1024 * 1024)?))
}

/// Reads a secret (a passphrase, a PIN) from the open file descriptor
/// `fd`: its first line, from at most `max` bytes, in memory that is wiped
/// when dropped. Through `/proc/self/fd`, which needs no `unsafe` to adopt
/// a raw descriptor.
pub fn read_secret_line_from_fd(
    fd: u32,
    max: u64,
) -> Result<zeroize::Zeroizing<String>, FileError> {
    let path = format!("/proc/self/fd/{fd}");
    let named = Path::new(&path);
    let mut all = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(named)
        .map_err(io(named))?
        .take(max)
        .read_to_string(&mut all)
        .map_err(io(named))?;
    Ok(zeroize::Zeroizing::new(
        all.lines().next().unwrap_or("").to_owned(),
    ))
}

/// Every line of what file descriptor `fd` holds (at most `max` bytes), each
/// in memory that is wiped when dropped: several secrets given in order
/// (the trustees' passphrases).
pub fn read_secret_lines_from_fd(
    fd: u32,
    max: u64,
) -> Result<Vec<zeroize::Zeroizing<String>>, FileError> {
    let path = format!("/proc/self/fd/{fd}");
    let named = Path::new(&path);
    let mut all = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(named)
        .map_err(io(named))?
        .take(max)
        .read_to_string(&mut all)
        .map_err(io(named))?;
    Ok(all
        .lines()
        .map(|l| zeroize::Zeroizing::new(l.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_never_overwrite_and_secrets_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_new(&p, b"secret", 0o600).unwrap();
        assert!(matches!(
            write_new(&p, b"other", 0o600),
            Err(FileError::Exists(_))
        ));
        assert_eq!(&read_secret(&p).unwrap()[..], b"secret");
        let open = dir.path().join("open");
        write_new(&open, b"secret", 0o644).unwrap();
        assert!(matches!(
            read_secret(&open),
            Err(FileError::TooOpen { mode: 0o644, .. })
        ));
        assert!(matches!(
            read_bounded(&p, 3),
            Err(FileError::TooLarge { .. })
        ));
    }
}
