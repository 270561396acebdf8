//! `ballot-gateway backup` and `restore`.
//!
//! A backup is a folder holding the two secret keys (`keys/`, 0600), one
//! consistent copy of the database taken with SQLite's online backup while
//! the gateway serves (a read transaction: uploads go on meanwhile, into the
//! write-ahead log, and are not in the copy), and `backup.json`, written
//! last: the log size and checkpoint the copy holds, and each file's size
//! and SHA-256. A folder without `backup.json` is not a backup.
//!
//! The copy is checked before `backup` says it is done: SQLite's integrity
//! check, then the gateway's start-up verification of the log (every leaf,
//! every checkpoint's signature and root). `restore` checks every file
//! against `backup.json`, builds the data folder beside its final place,
//! runs the same verification there, and only then renames it into place:
//! a failed restore leaves nothing behind.
//!
//! A restore rolls the log back to the backup. Every ballot acknowledged
//! after the backup is gone from the restored gateway, and its receipt names
//! a checkpoint the restored log will contradict as soon as it grows past
//! that size with other ballots: a fork. Witnesses refuse to cosign it and
//! voters' and auditors' checks report it. The operator must say so
//! publicly; see `docs/operations.md`.

use crate::export::fsync_dir;
use crate::{sequencer, setup, store};
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use shared::clock::Clock;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The format name in `backup.json`.
pub const FORMAT: &str = "ballot-gateway-backup/1";
/// The manifest file of a backup.
pub const MANIFEST: &str = "backup.json";
/// The files a backup holds, by their path inside it (and inside the data
/// folder). Nothing else is read from a backup folder.
const FILES: [&str; 3] = [store::DB_FILE, "keys/transfer.key", "keys/log.key"];
/// The largest `backup.json` read.
const MAX_MANIFEST: u64 = 64 * 1024;

/// `backup.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the copy was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The log size the copy holds.
    pub log_size: u64,
    /// The latest signed checkpoint in the copy (empty if the log is empty).
    pub checkpoint: String,
    /// Every file, with its size and SHA-256 (hex).
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path inside the backup: `gateway.db`, `keys/transfer.key` or
    /// `keys/log.key`.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// What a backup or a restore holds.
#[derive(Debug)]
pub struct Summary {
    /// The log size.
    pub log_size: u64,
    /// The latest checkpoint.
    pub checkpoint: String,
    /// The database's size in bytes.
    pub db_bytes: u64,
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// Streams `from` to the new file `to` (mode 0600), fsynced; returns its
/// size and SHA-256.
fn copy_hashed(from: &Path, to: &Path) -> Result<(u64, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut src =
        std::fs::File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    let (size, sha) = hash_stream(&mut src, Some(&mut dst))
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    dst.sync_all()
        .with_context(|| format!("cannot flush {}", to.display()))?;
    Ok((size, sha))
}

/// Reads `r` to its end (writing it to `w` if given); returns its size and
/// SHA-256.
fn hash_stream(
    r: &mut impl Read,
    mut w: Option<&mut std::fs::File>,
) -> std::io::Result<(u64, String)> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let Some(chunk) = buf.get(..n) else { break };
        h.update(chunk);
        if let Some(w) = w.as_deref_mut() {
            w.write_all(chunk)?;
        }
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    hash_stream(&mut f, None).with_context(|| format!("cannot read {}", path.display()))
}

/// Checks the database in `dir` as the gateway does at start: SQLite's
/// integrity check, then every leaf and checkpoint against the log key in
/// `dir/keys`.
fn verify_copy(dir: &Path) -> Result<sequencer::LogView> {
    let keys = setup::load_keys(dir)?;
    let conn = rusqlite::Connection::open_with_flags(
        store::db_path(dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("cannot open the copied database")?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .context("SQLite's integrity check did not run on the copy")?;
    ensure!(
        check == "ok",
        "SQLite's integrity check failed on the copy: {check}"
    );
    let view = sequencer::load_and_verify(&conn, &keys.log.verifier())
        .context("the copied log does not verify")?;
    Ok(view)
}

/// `ballot-gateway backup`: copies the data folder's keys and a consistent
/// snapshot of its database into `out` (a new or empty folder), while the
/// gateway may be serving.
pub fn backup(data_dir: &Path, out: &Path, clock: &dyn Clock) -> Result<Summary> {
    let db = store::db_path(data_dir);
    ensure!(
        db.is_file(),
        "{} holds no gateway database ({} is missing)",
        data_dir.display(),
        db.display()
    );
    match std::fs::read_dir(out) {
        Ok(mut entries) => ensure!(
            entries.next().is_none(),
            "{} is not empty: give a new or empty folder for the backup",
            out.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private_dir(out)?,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the folder {}", out.display()))
        }
    }
    create_private_dir(&out.join(setup::KEYS_DIR))?;
    let mut files = Vec::new();
    for name in FILES.iter().filter(|n| n.starts_with("keys/")) {
        let (size, sha256) = copy_hashed(&data_dir.join(name), &out.join(name))?;
        files.push(FileEntry {
            path: (*name).into(),
            size,
            sha256,
        });
    }
    fsync_dir(&out.join(setup::KEYS_DIR))?;

    // One step copies every page under one read transaction: a snapshot of
    // the last commit, while the server goes on writing to its WAL.
    let src = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", db.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let copy = store::db_path(out);
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created 0600 before SQLite opens it (SQLite would use 0644).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .with_context(|| format!("cannot create {}", copy.display()))?;
    }
    let mut dst = rusqlite::Connection::open(&copy)
        .with_context(|| format!("cannot open {}", copy.display()))?;
    {
        let b = rusqlite::backup::Backup::new(&src, &mut dst)
            .context("SQLite's online backup did not start")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match b.step(-1).context("SQLite's online backup failed")? {
                rusqlite::backup::StepResult::Done => break,
                _ if std::time::Instant::now() > deadline => {
                    bail!("the database stayed locked for a minute; try again")
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    }
    // A single file: no WAL beside the copy.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    dst.close()
        .map_err(|(_, e)| e)
        .context("cannot close the copied database")?;
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", copy.display()))?;
    let view = verify_copy(out)?;
    let (db_bytes, sha256) = hash_file(&copy)?;
    files.insert(
        0,
        FileEntry {
            path: store::DB_FILE.into(),
            size: db_bytes,
            sha256,
        },
    );
    let checkpoint = view.checkpoint.clone().unwrap_or_default();
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: clock.now().to_rfc3339(),
        log_size: view.checkpoint_size,
        checkpoint: checkpoint.clone(),
        files,
    };
    fsync_dir(out)?;
    setup::write_new(
        &out.join(MANIFEST),
        &serde_json::to_vec_pretty(&manifest)?,
        0o600,
    )?;
    fsync_dir(out)?;
    store::record_event(
        &src,
        &store::SecurityEvent {
            at: clock.now().0,
            kind: "admin",
            code: "backup".into(),
            identity: None,
            peer: None,
            detail: format!(
                "backup of log size {} written to {}",
                view.checkpoint_size,
                out.display()
            ),
        },
    )?;
    Ok(Summary {
        log_size: view.checkpoint_size,
        checkpoint,
        db_bytes,
    })
}

/// Reads and checks `backup.json` in `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let raw = setup::read_bounded(&dir.join(MANIFEST), MAX_MANIFEST).with_context(|| {
        format!(
            "{} is not a finished backup (its {MANIFEST} is missing or unreadable)",
            dir.display()
        )
    })?;
    let m: Manifest = serde_json::from_slice(&raw)
        .with_context(|| format!("{MANIFEST} in {} is not a backup manifest", dir.display()))?;
    ensure!(
        m.format == FORMAT,
        "{MANIFEST} is of format {:?}; this program reads {FORMAT:?}",
        shared::text::printable(&m.format)
    );
    let mut names: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    names.sort_unstable();
    let mut want = FILES.to_vec();
    want.sort_unstable();
    ensure!(
        names == want,
        "{MANIFEST} lists {:?}; a backup holds exactly {:?}",
        names
            .iter()
            .map(|n| shared::text::printable(n))
            .collect::<Vec<_>>(),
        want
    );
    Ok(m)
}

/// `ballot-gateway restore`: checks the backup in `from` and makes it the
/// gateway's data folder `data_dir`, which must not exist yet or be empty.
pub fn restore(from: &Path, data_dir: &Path, clock: &dyn Clock) -> Result<Summary> {
    let m = read_manifest(from)?;
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => ensure!(
            entries.next().is_none(),
            "{} is not empty: a restore never mixes with or replaces a data folder; \
             move the old one aside, or give a new path",
            data_dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the folder {}", data_dir.display()))
        }
    }
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = data_dir
        .file_name()
        .context("the data folder has no name")?
        .to_string_lossy();
    let staging: PathBuf = parent.join(format!(".{name}.restore-partial"));
    if staging.exists() {
        // Left by a restore that was interrupted: it was never in use.
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    create_private_dir(&staging)?;
    let result = (|| -> Result<Summary> {
        create_private_dir(&staging.join(setup::KEYS_DIR))?;
        for f in &m.files {
            // A link, or a file of another size than listed, is refused
            // before anything is copied (no unbounded copy of what a
            // damaged or tampered backup holds).
            let src = from.join(&f.path);
            let meta = std::fs::symlink_metadata(&src)
                .with_context(|| format!("{} is missing from the backup", f.path))?;
            ensure!(
                meta.file_type().is_file() && meta.len() == f.size,
                "{} in the backup is not the file {MANIFEST} lists (a {} of {} bytes; listed \
                 a file of {} bytes): the backup is damaged or was changed",
                f.path,
                if meta.file_type().is_file() {
                    "file"
                } else {
                    "link or folder"
                },
                meta.len(),
                f.size
            );
            let (size, sha256) = copy_hashed(&src, &staging.join(&f.path))?;
            ensure!(
                size == f.size && sha256 == f.sha256,
                "{} in the backup is not the file {MANIFEST} lists ({} bytes, SHA-256 {}; \
                 listed {} bytes, {}): the backup is damaged or was changed",
                f.path,
                size,
                sha256,
                f.size,
                shared::text::printable(&f.sha256)
            );
        }
        fsync_dir(&staging.join(setup::KEYS_DIR))?;
        let view = verify_copy(&staging)?;
        ensure!(
            view.checkpoint_size == m.log_size
                && view.checkpoint.clone().unwrap_or_default() == m.checkpoint,
            "the restored log (size {}) is not the one {MANIFEST} names (size {})",
            view.checkpoint_size,
            m.log_size
        );
        // Back to the gateway's own settings (WAL, synchronous=FULL).
        let conn = store::open(&store::db_path(&staging))?;
        store::record_event(
            &conn,
            &store::SecurityEvent {
                at: clock.now().0,
                kind: "admin",
                code: "restore".into(),
                identity: None,
                peer: None,
                detail: format!(
                    "restored from the backup of {} at log size {}",
                    shared::text::printable(&m.created_at),
                    m.log_size
                ),
            },
        )?;
        drop(conn);
        fsync_dir(&staging)?;
        Ok(Summary {
            log_size: view.checkpoint_size,
            checkpoint: m.checkpoint.clone(),
            db_bytes: m.files.first().map(|f| f.size).unwrap_or(0),
        })
    })();
    match result {
        Ok(summary) => {
            // An empty folder is replaced by the rename; a missing one is
            // created by it.
            std::fs::rename(&staging, data_dir).with_context(|| {
                format!(
                    "cannot move the restored folder into place at {}",
                    data_dir.display()
                )
            })?;
            fsync_dir(parent)?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}
