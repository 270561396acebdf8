//! The voter's receipts folder: every receipt `ballot-return send` got, one
//! file each, never overwritten.
//!
//! The folder is the user's own data folder (`$XDG_DATA_HOME`, or
//! `~/.local/share`, on Linux; `~/Library/Application Support` on macOS;
//! `%APPDATA%` on Windows) under `ballot-return/receipts`, or one the voter
//! names. A receipt is written to a temporary file, flushed to disk, then
//! linked under its name, which fails rather than replace a file already
//! there: a second receipt for the same entry (another gateway, a log that
//! was rewritten) is kept beside the first, and is itself evidence.

use crate::client::SavedReceipt;
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest receipt file read back (a receipt is a few kilobytes).
const MAX_RECEIPT_FILE: u64 = 1024 * 1024;
/// The most receipt files listed.
const MAX_LISTED: usize = 10_000;
/// The most receipts kept for one entry of one election.
const MAX_SAME_ENTRY: u32 = 1000;

/// The receipts folder.
#[derive(Debug, Clone)]
pub struct Folder {
    dir: PathBuf,
}

/// What [`Folder::save`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Written to this new file.
    New(PathBuf),
    /// This file already held the same receipt, byte for byte.
    AlreadyThere(PathBuf),
}

impl Saved {
    /// The receipt's file.
    pub fn path(&self) -> &Path {
        match self {
            Saved::New(p) | Saved::AlreadyThere(p) => p,
        }
    }
}

/// One file of the folder, read back.
#[derive(Debug)]
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// Its receipt, or why it cannot be read.
    pub receipt: Result<SavedReceipt>,
}

/// The user's own receipts folder on this computer.
pub fn default_place() -> Result<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = if cfg!(windows) {
        var("APPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library").join("Application Support"))
    } else {
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local").join("share")))
    };
    match base {
        Some(b) => Ok(b.join("ballot-return").join("receipts")),
        None => {
            bail!("cannot tell where your home folder is; give a receipts folder with --receipts")
        }
    }
}

/// A name safe in any file system, from the election id.
fn file_stem(saved: &SavedReceipt) -> String {
    let election: String = saved
        .election_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{election}-entry-{}", saved.leaf_index)
}

impl Folder {
    /// The folder at `dir`, made (only its owner may enter it) if missing.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot make the receipts folder {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private to you", dir.display()))?;
        }
        Ok(Folder {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder, for an existing receipts folder only (`None` if there
    /// is none yet).
    pub fn existing(dir: &Path) -> Option<Self> {
        dir.is_dir().then(|| Folder {
            dir: dir.to_path_buf(),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Saves `saved` under a name of its own; never replaces a file.
    pub fn save(&self, saved: &SavedReceipt) -> Result<Saved> {
        let mut bytes = serde_json::to_vec_pretty(saved)?;
        bytes.push(b'\n');
        let stem = file_stem(saved);
        let tmp = self.write_temporary(&bytes)?;
        let result = (|| {
            for n in 1..=MAX_SAME_ENTRY {
                let name = if n == 1 {
                    format!("{stem}.json")
                } else {
                    format!("{stem}-{n}.json")
                };
                let path = self.dir.join(name);
                match fs::hard_link(&tmp, &path) {
                    Ok(()) => {
                        sync_folder(&self.dir)?;
                        return Ok(Saved::New(path));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if read_bounded(&path).is_ok_and(|old| old == bytes) {
                            return Ok(Saved::AlreadyThere(path));
                        }
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("cannot save the receipt as {}", path.display())))
                    }
                }
            }
            bail!(
                "{} already holds {MAX_SAME_ENTRY} different receipts for entry {}",
                self.dir.display(),
                saved.leaf_index
            )
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    /// Writes `bytes` to a new temporary file in the folder, flushed to
    /// disk, readable by its owner only.
    fn write_temporary(&self, bytes: &[u8]) -> Result<PathBuf> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for n in 0..100u32 {
            let path = self
                .dir
                .join(format!(".saving-{}-{nanos}-{n}", std::process::id()));
            let mut o = OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            match o.open(&path) {
                Ok(mut f) => {
                    let written = f.write_all(bytes).and_then(|()| f.sync_all());
                    if let Err(e) = written {
                        let _ = fs::remove_file(&path);
                        return Err(anyhow::Error::new(e).context(format!(
                            "cannot write the receipt in {}",
                            self.dir.display()
                        )));
                    }
                    return Ok(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot write in {}", self.dir.display())))
                }
            }
        }
        bail!("cannot make a temporary file in {}", self.dir.display())
    }

    /// Every receipt file of the folder (at most 10,000), in the order of
    /// election, then entry.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read the receipts folder {}", self.dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            if out.len() == MAX_LISTED {
                bail!(
                    "{} holds more than {MAX_LISTED} receipt files",
                    self.dir.display()
                );
            }
            let path = entry.path();
            let receipt = read_bounded(&path).and_then(|b| {
                serde_json::from_slice::<SavedReceipt>(&b)
                    .context("it is not a receipt saved by ballot-return")
            });
            out.push(Listed { path, receipt });
        }
        out.sort_by(|a, b| {
            let key = |l: &Listed| {
                l.receipt
                    .as_ref()
                    .map(|r| (r.election_id.clone(), r.leaf_index))
                    .ok()
            };
            // `-entry-3.json` before `-entry-3-2.json`.
            let name = |l: &Listed| (l.path.as_os_str().len(), l.path.clone());
            key(a).cmp(&key(b)).then_with(|| name(a).cmp(&name(b)))
        });
        Ok(out)
    }
}

/// A file of at most [`MAX_RECEIPT_FILE`] bytes, not followed if it is a
/// link or anything but a plain file.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        bail!("not a plain file");
    }
    if meta.len() > MAX_RECEIPT_FILE {
        bail!("larger than any receipt ({} bytes)", meta.len());
    }
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_RECEIPT_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECEIPT_FILE {
        bail!("larger than any receipt");
    }
    Ok(bytes)
}

/// Makes a new name in `dir` durable.
fn sync_folder(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush {} to disk", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(leaf: u64, text: &str) -> SavedReceipt {
        SavedReceipt {
            election_id: "2026 general/county".into(),
            election_fingerprint: "AB".into(),
            gateway: "https://localhost:1".into(),
            leaf_index: leaf,
            voter_id: "V-0001".into(),
            salt: "00".into(),
            message_sha256: "11".into(),
            receipt: text.into(),
        }
    }

    #[test]
    fn receipts_are_never_overwritten_and_the_same_one_is_not_kept_twice() {
        let dir = tempfile::tempdir().unwrap();
        let f = Folder::open(&dir.path().join("a/receipts")).unwrap();
        let first = f.save(&receipt(3, "one")).unwrap();
        assert!(matches!(first, Saved::New(_)), "{first:?}");
        assert_eq!(
            first.path().file_name().unwrap(),
            "2026_general_county-entry-3.json"
        );
        // The same receipt again: the file already holds it.
        assert_eq!(
            f.save(&receipt(3, "one")).unwrap(),
            Saved::AlreadyThere(first.path().to_path_buf())
        );
        // Another receipt for the same entry: kept beside, the first intact.
        let second = f.save(&receipt(3, "two")).unwrap();
        assert_eq!(
            second.path().file_name().unwrap(),
            "2026_general_county-entry-3-2.json"
        );
        let listed = f.list().unwrap();
        let texts: Vec<_> = listed
            .iter()
            .map(|l| l.receipt.as_ref().unwrap().receipt.clone())
            .collect();
        assert_eq!(texts, ["one", "two"]);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(f.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(f.path()), 0o700);
            assert_eq!(mode(first.path()), 0o600);
        }
    }

    #[test]
    fn a_file_that_is_not_a_receipt_is_listed_with_why() {
        let dir = tempfile::tempdir().unwrap();
        let f = Folder::open(dir.path()).unwrap();
        fs::write(dir.path().join("notes.json"), b"{}").unwrap();
        fs::write(dir.path().join("big.json"), vec![b' '; 2 << 20]).unwrap();
        f.save(&receipt(0, "r")).unwrap();
        let listed = f.list().unwrap();
        assert_eq!(listed.len(), 3);
        let errors: Vec<String> = listed
            .iter()
            .filter_map(|l| l.receipt.as_ref().err().map(|e| format!("{e:#}")))
            .collect();
        assert!(
            errors.iter().any(|e| e.contains("larger than any receipt")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("not a receipt")),
            "{errors:?}"
        );
    }
}
