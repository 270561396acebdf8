//! `ballot-verifier import MEDIA`: reads a transfer bundle from media that
//! are hostile until proven otherwise (DESIGN section 7,
//! `docs/spec/transfer-bundle.md`).
//!
//! Order of checks, each failing with its own [`ImportError`]:
//!
//! 1. the bundle folder and every file are opened without following links
//!    and only if they are regular files (checked again on the open handle,
//!    so a file swapped for a link between the check and the open is
//!    caught);
//! 2. `manifest.sig` (at most 16 KiB) is verified over `manifest.bin` (at
//!    most [`MAX_MANIFEST`] bytes), streaming, with the pinned transfer key,
//!    before anything of the manifest is parsed;
//! 3. the header: the pinned election and log, the bundle number strictly
//!    next (the same bundle again is a no-op; another bundle with a number
//!    already used is a replay; a smaller number is a rollback; a larger one
//!    a gap);
//! 4. both checkpoints signed by the pinned log key; the previous one equal
//!    to the last checkpoint imported; the consistency proof between them;
//! 5. every entry, in order: its leaf index, its election, its ballot file
//!    (name derived from the index, size at most the limit and as listed,
//!    SHA-256 as listed and as logged). A `received_at` earlier than the
//!    previous leaf's does not refuse the bundle (the log's order is what
//!    counts): it is recorded as gateway misbehaviour, with both leaves,
//!    for the board ([`state::misbehaviour`]);
//! 6. the leaves recompute to the new checkpoint's root; every witnessed
//!    checkpoint the bundle carries is signed by the log key, cosigned by a
//!    quorum of the manifest's witnesses, no larger than the new
//!    checkpoint, and has the root the imported leaves give at its size (a
//!    checkpoint of another log is a fork);
//! 7. the folder holds exactly the listed files, nothing else;
//! 8. the CRL and intermediate files, by size and hash.
//!
//! Everything is written in one SQLite transaction that commits only after
//! the last check: a bundle that fails leaves the verifier's state exactly
//! as it was.

pub mod crls;
mod media;

use crate::state;
use media::{listed, Folder, HashingReader};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use shared::bundle::{self, BundleEntry, BundleHeader};
use shared::checkpoint::SignedCheckpoint;
use shared::clock::Clock;
use shared::merkle::{self, Hash, Tree};
use shared::note::NoteVerifier;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The largest bundle manifest read (entries are at most 64 KiB each).
pub const MAX_MANIFEST: u64 = 2 * 1024 * 1024 * 1024;
/// The largest ballot file read.
pub const MAX_BALLOT_FILE: u64 = 16 * 1024 * 1024;
/// The most CRL files one bundle may bring (a county's anchors have a
/// few issuing CAs each; the DoD PKI has a few dozen).
pub const MAX_CRLS: usize = 64;
/// The most CRL bytes one bundle may bring, all files together.
pub const MAX_CRL_BYTES: u64 = 256 * 1024 * 1024;

/// Why a bundle was refused. The verifier's state is unchanged in every case.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The verifier has not been set up.
    #[error("the verifier is not set up: {}", shared::text::printable(.0))]
    NotSetUp(String),
    /// A required file is missing.
    #[error("{} is missing from the bundle", shared::text::printable(.0))]
    Missing(String),
    /// A path is a symbolic link, a device or anything but a regular file
    /// (or folder, for folders).
    #[error("{} is not a regular file (a link, device or other special file); the media may have been tampered with", shared::text::printable(.0))]
    NotRegular(String),
    /// A path that must be a folder is a link, a file or anything else.
    #[error("{} is not a folder (a link, a file or a special file); the media may have been tampered with", shared::text::printable(.0))]
    NotFolder(String),
    /// A file is larger than allowed or than listed.
    #[error("{} is {size} bytes, more than {limit}", shared::text::printable(path))]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The manifest signature is not by the pinned transfer key.
    #[error("the bundle's signature does not verify with the gateway's transfer key: {}", shared::text::printable(.0))]
    BadSignature(String),
    /// The manifest is malformed.
    #[error("the bundle manifest is malformed: {}", shared::text::printable(.0))]
    Malformed(String),
    /// The bundle is for another election or log.
    #[error(
        "the bundle is for {}, not {}",
        shared::text::printable(found),
        shared::text::printable(expected)
    )]
    WrongElection {
        /// What the verifier is set up for.
        expected: String,
        /// What the bundle says.
        found: String,
    },
    /// A bundle number was skipped.
    #[error("bundle {found} was given but bundle {expected} is next: a bundle is missing (gap)")]
    Gap {
        /// The next number.
        expected: u64,
        /// The number given.
        found: u64,
    },
    /// A smaller bundle number than already imported, with other content.
    #[error("bundle {found} is older than the last imported bundle {last} (rollback)")]
    Rollback {
        /// The last imported number.
        last: u64,
        /// The number given.
        found: u64,
    },
    /// Another bundle with an already used number.
    #[error("bundle {0} was already imported with different content (replay of a forged or altered bundle)")]
    Replay(u64),
    /// The bundle brings more CRLs than the verifier takes.
    #[error("the bundle brings {count} CRL files of {bytes} bytes in all; the verifier takes at most {max_count} files and {max_bytes} bytes from one bundle")]
    TooManyCrls {
        /// Files listed.
        count: usize,
        /// Their sizes added up.
        bytes: u64,
        /// [`MAX_CRLS`].
        max_count: usize,
        /// [`MAX_CRL_BYTES`].
        max_bytes: u64,
    },
    /// The bundle was imported before (its signed manifest is the same),
    /// but the files beside it differ now.
    #[error("bundle {sequence} was imported before, and the media now differ from it: {}. Nothing was changed; keep the media as evidence of tampering", shared::text::printable(reason))]
    Tampered {
        /// The bundle's sequence number.
        sequence: u64,
        /// What differs.
        reason: String,
    },
    /// A checkpoint is not signed by the pinned log key, or the log does not
    /// extend the one imported before.
    #[error("the log is not consistent: {}", shared::text::printable(.0))]
    Inconsistent(String),
    /// A witnessed checkpoint the bundle carries is not one a quorum of the
    /// manifest's witnesses cosigned on this log.
    #[error("a witnessed checkpoint in the bundle does not hold: {}", shared::text::printable(.0))]
    Witnessed(String),
    /// A ballot file does not match the manifest or the log.
    #[error(
        "{}: {}",
        shared::text::printable(path),
        shared::text::printable(reason)
    )]
    FileMismatch {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file that the manifest does not list.
    #[error("unexpected file in the bundle: {}", shared::text::printable(.0))]
    ExtraFile(String),
    /// Reading failed.
    #[error(
        "cannot read {} on the media: {}",
        shared::text::printable(path),
        shared::text::printable(reason)
    )]
    Unreadable {
        /// The file or folder, inside the bundle.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// Reading the manifest stream failed.
    #[error("reading the bundle manifest failed: {0}")]
    Io(#[from] std::io::Error),
    /// The verifier's database failed.
    #[error("the verifier's database failed: {0}")]
    Db(#[from] rusqlite::Error),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A new bundle was imported.
    New {
        /// Its number.
        sequence: u64,
        /// Ballots imported.
        entries: u64,
        /// The log size now.
        log_size: u64,
    },
    /// The bundle had been imported before, and its files are the same,
    /// byte for byte; nothing changed.
    AlreadyImported(u64),
}

/// A bundle whose signature verified: its header, and the manifest
/// reader positioned at the first entry.
struct Opened {
    header: BundleHeader,
    manifest_sha: Hash,
    reader: HashingReader<std::io::Take<std::io::BufReader<File>>>,
}

/// Imports the bundle in folder `bundle_dir`, running the checks of the
/// list above in order. `progress` is told how many entries of how many
/// have been checked.
pub fn import(
    conn: &mut Connection,
    bundle_dir: &Path,
    clock: &dyn Clock,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Imported, ImportError> {
    let root = &Folder::open_root(bundle_dir)?;
    let pins = state::pins(conn).map_err(|e| ImportError::NotSetUp(e.to_string()))?;
    let transfer = shared::pgp::read_public_cert(&pins.transfer_cert)
        .map_err(|e| ImportError::NotSetUp(e.to_string()))?;
    let log_key =
        NoteVerifier::from_vkey(&pins.log_key).map_err(|e| ImportError::NotSetUp(e.to_string()))?;
    let policy = pins
        .witness_policy()
        .map_err(|e| ImportError::NotSetUp(format!("{e:#}")))?;
    // 1-2.
    let mut opened = open_signed_manifest(root, &transfer)?;
    // 3.
    if let Some(done) = check_header(conn, &opened, &pins, &log_key)? {
        // Seen before: the same signed manifest, so the same entries. The
        // files beside it are checked again all the same: the same bytes
        // are a no-op, anything else is reported.
        if let Imported::AlreadyImported(sequence) = done {
            check_again(root, &mut opened).map_err(|e| ImportError::Tampered {
                sequence,
                reason: e.to_string(),
            })?;
        }
        return Ok(done);
    }
    let header = &opened.header;
    let crl_bytes = header
        .crls
        .iter()
        .fold(0u64, |n, f| n.saturating_add(f.size));
    if header.crls.len() > MAX_CRLS || crl_bytes > MAX_CRL_BYTES {
        return Err(ImportError::TooManyCrls {
            count: header.crls.len(),
            bytes: crl_bytes,
            max_count: MAX_CRLS,
            max_bytes: MAX_CRL_BYTES,
        });
    }
    // 4.
    let (mut tree, new_cp) = check_checkpoints(conn, header, &log_key)?;
    let new_size = new_cp.checkpoint.size;
    let tx = conn.transaction()?;
    // 5.
    import_entries(&tx, root, &mut opened, &pins, &mut tree, new_size, progress)?;
    let header = &opened.header;
    // 6.
    let root_hash = tree
        .root(new_size)
        .map_err(|e| ImportError::Inconsistent(e.to_string()))?;
    if root_hash != new_cp.checkpoint.root {
        return Err(ImportError::Inconsistent(
            "the bundle's entries do not add up to its checkpoint's root".into(),
        ));
    }
    import_witnessed(&tx, &opened.header, &policy, &tree, new_size)?;
    // 8 (before 7, which needs the names).
    import_pki_files(&tx, root, header)?;
    // 7.
    check_nothing_else(root, header)?;
    tx.execute(
        "INSERT INTO bundles (sequence, first_index, entry_count, checkpoint, manifest_sha256, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            header.sequence as i64,
            header.first_index as i64,
            header.entry_count as i64,
            header.new_checkpoint,
            opened.manifest_sha.as_slice(),
            clock.now().0 as i64
        ],
    )?;
    tx.commit()?;
    Ok(Imported::New {
        sequence: header.sequence,
        entries: header.entry_count,
        log_size: new_size,
    })
}

fn malformed(e: bundle::BundleError) -> ImportError {
    match e {
        bundle::BundleError::Io(e) => ImportError::Io(e),
        other => ImportError::Malformed(other.to_string()),
    }
}

/// Checks 1 and 2: the signature over the manifest, streaming, before
/// anything of it is parsed; then the header of the very bytes verified.
fn open_signed_manifest(
    root: &Folder,
    transfer: &sequoia_openpgp::Cert,
) -> Result<Opened, ImportError> {
    let sig = root.read(
        bundle::SIGNATURE_FILE,
        shared::pgp::MAX_SIGNATURE_LEN as u64,
    )?;
    let (file, len) = root.file(bundle::MANIFEST_FILE)?;
    if len > MAX_MANIFEST {
        return Err(ImportError::TooLarge {
            path: bundle::MANIFEST_FILE.into(),
            size: len,
            limit: MAX_MANIFEST,
        });
    }
    let mut hasher = HashingReader {
        inner: file.take(MAX_MANIFEST),
        hash: Sha256::new(),
    };
    shared::pgp::verify_detached_reader(transfer, &mut hasher, &sig)
        .map_err(|e| ImportError::BadSignature(e.to_string()))?;
    let manifest_sha: Hash = hasher.hash.finalize().into();
    // Parse the file that was verified: reopen it and check (after the
    // last entry) that it still hashes the same as the bytes the signature
    // covered.
    let (file, _) = root.file(bundle::MANIFEST_FILE)?;
    let mut reader = HashingReader {
        inner: std::io::BufReader::new(file).take(MAX_MANIFEST),
        hash: Sha256::new(),
    };
    let header = BundleHeader::read(&mut reader).map_err(malformed)?;
    Ok(Opened {
        header,
        manifest_sha,
        reader,
    })
}

/// Check 3: the pinned election and log, and the bundle number strictly
/// next. `Some` when the same bundle was imported before (nothing to do).
fn check_header(
    conn: &Connection,
    opened: &Opened,
    pins: &state::Pins,
    log_key: &NoteVerifier,
) -> Result<Option<Imported>, ImportError> {
    let header = &opened.header;
    if header.election_id != pins.election_id {
        return Err(ImportError::WrongElection {
            expected: format!("election {}", pins.election_id),
            found: format!("election {}", header.election_id),
        });
    }
    if header.log_origin != log_key.name() {
        return Err(ImportError::WrongElection {
            expected: format!("log {}", log_key.name()),
            found: format!("log {}", header.log_origin),
        });
    }
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT sequence, manifest_sha256 FROM bundles ORDER BY sequence DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let last_seq = last.as_ref().map_or(0, |(s, _)| *s as u64);
    if header.sequence <= last_seq {
        let same: Option<Vec<u8>> = conn
            .query_row(
                "SELECT manifest_sha256 FROM bundles WHERE sequence = ?1",
                params![header.sequence as i64],
                |r| r.get(0),
            )
            .optional()?;
        return match same {
            Some(h) if h == opened.manifest_sha => {
                Ok(Some(Imported::AlreadyImported(header.sequence)))
            }
            Some(_) if header.sequence == last_seq => Err(ImportError::Replay(header.sequence)),
            _ => Err(ImportError::Rollback {
                last: last_seq,
                found: header.sequence,
            }),
        };
    }
    if header.sequence != last_seq + 1 {
        return Err(ImportError::Gap {
            expected: last_seq + 1,
            found: header.sequence,
        });
    }
    Ok(None)
}

/// Check 4: both checkpoints signed by the pinned log key, the previous
/// one equal to the last checkpoint imported, the consistency proof
/// between them. Returns the tree of what was imported before, and the
/// new checkpoint.
fn check_checkpoints(
    conn: &Connection,
    header: &BundleHeader,
    log_key: &NoteVerifier,
) -> Result<(Tree, SignedCheckpoint), ImportError> {
    let mut tree = Tree::new();
    {
        let mut stmt = conn.prepare("SELECT leaf_hash FROM leaves ORDER BY leaf_index")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let h: Vec<u8> = r.get(0)?;
            tree.push(
                h.try_into().map_err(|_| {
                    ImportError::Inconsistent("a stored leaf hash is damaged".into())
                })?,
            );
        }
    }
    let ours = tree.size();
    let new_cp = SignedCheckpoint::verify(header.new_checkpoint.as_bytes(), log_key)
        .map_err(|e| ImportError::Inconsistent(format!("the new checkpoint: {e}")))?;
    let new_size = new_cp.checkpoint.size;
    if header.first_index.checked_add(header.entry_count) != Some(new_size) {
        return Err(ImportError::Malformed(
            "the entry count does not reach the new checkpoint's size".into(),
        ));
    }
    if header.first_index != ours {
        return Err(ImportError::Inconsistent(format!(
            "the bundle starts at log entry {} but {} entries were imported before",
            header.first_index, ours
        )));
    }
    if let Some(prev) = &header.previous_checkpoint {
        let prev = SignedCheckpoint::verify(prev.as_bytes(), log_key)
            .map_err(|e| ImportError::Inconsistent(format!("the previous checkpoint: {e}")))?;
        let our_root = tree
            .root(ours)
            .map_err(|e| ImportError::Inconsistent(e.to_string()))?;
        if prev.checkpoint.size != ours || prev.checkpoint.root != our_root {
            return Err(ImportError::Inconsistent(
                "the bundle's previous checkpoint is not the last one imported".into(),
            ));
        }
        merkle::verify_consistency(
            ours,
            new_size,
            &header.consistency_proof,
            &our_root,
            &new_cp.checkpoint.root,
        )
        .map_err(|e| {
            ImportError::Inconsistent(format!(
                "the new checkpoint does not extend the previous one: {e}"
            ))
        })?;
    } else if !header.consistency_proof.is_empty() {
        return Err(ImportError::Malformed(
            "a first bundle carries no consistency proof".into(),
        ));
    }
    Ok((tree, new_cp))
}

/// Check 5: every entry in order (leaf index, election, ballot file by
/// derived name, size and SHA-256 as listed and as logged), written into
/// `tx` and added to `tree`; then the manifest must still hash as signed.
///
/// Two threads: one reads the manifest and the ballot files and checks
/// them ([`read_entries`]), the other (this one) writes what passed into
/// the database, so reading and hashing the next ballots overlaps writing
/// the last ones. The entries pass in order through a queue of two, so
/// memory stays flat, and the first entry in the log's order that fails
/// is the error reported, as when one thread did everything.
fn import_entries(
    tx: &rusqlite::Transaction<'_>,
    root: &Folder,
    opened: &mut Opened,
    pins: &state::Pins,
    tree: &mut Tree,
    new_size: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), ImportError> {
    let (first_index, entry_count, sequence) = (
        opened.header.first_index,
        opened.header.entry_count,
        opened.header.sequence,
    );
    let mut insert = tx.prepare(
        "INSERT INTO leaves (leaf_index, leaf_hash, log_entry, salt, voter_id, identity, client_cert, received_at, ciphertext, bundle)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut previous_at: Option<(u64, shared::clock::UnixTime)> = tx
        .query_row(
            "SELECT leaf_index, received_at FROM leaves ORDER BY leaf_index DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    shared::clock::UnixTime(r.get::<_, i64>(1)? as u64),
                ))
            },
        )
        .optional()?;
    let (to_writer, checked) = std::sync::mpsc::sync_channel::<Result<Checked, ImportError>>(2);
    let reader = &mut opened.reader;
    let read = std::thread::scope(|s| -> Result<u64, ImportError> {
        let reading =
            s.spawn(move || read_entries(root, reader, pins, first_index, new_size, &to_writer));
        let written = (|| {
            for c in checked.iter() {
                let Checked {
                    next,
                    e,
                    ciphertext,
                } = c?;
                let at = e.log_entry.received_at;
                if let Some((before, before_at)) = previous_at.filter(|(_, t)| *t > at) {
                    tx.execute(
                        "INSERT INTO misbehaviour (bundle, kind, leaves, detail) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            sequence as i64,
                            "received-at-backwards",
                            format!("{before},{next}"),
                            format!(
                                "leaf {next} is stamped {at}, earlier than leaf {before} before it ({before_at}): the gateway's clock went backwards or it rewrote the times; ballots are ordered by the log, not by these times"
                            )
                        ],
                    )?;
                }
                previous_at = Some((next, at));
                let entry_bytes = e
                    .log_entry
                    .to_bytes()
                    .map_err(|x| ImportError::Malformed(x.to_string()))?;
                let leaf = merkle::leaf_hash(&entry_bytes);
                insert.execute(params![
                    next as i64,
                    leaf.as_slice(),
                    entry_bytes,
                    e.salt.as_slice(),
                    e.voter_id,
                    e.identity.to_canonical(),
                    e.client_cert,
                    e.log_entry.received_at.0 as i64,
                    ciphertext,
                    sequence as i64,
                ])?;
                tree.push(leaf);
                progress(next + 1 - first_index, entry_count);
            }
            Ok::<(), ImportError>(())
        })();
        // Stops the reader (its next send fails) if writing failed first.
        drop(checked);
        let read = reading
            .join()
            .map_err(|_| ImportError::Malformed("reading the bundle failed unexpectedly".into()))?;
        written?;
        Ok(read)
    })?;
    if read != new_size {
        return Err(ImportError::Malformed(format!(
            "the manifest lists {} entries, not {}",
            read - first_index,
            entry_count
        )));
    }
    let manifest_again: Hash = std::mem::take(&mut opened.reader.hash).finalize().into();
    if manifest_again != opened.manifest_sha {
        return Err(ImportError::BadSignature(
            "the manifest changed while it was being read".into(),
        ));
    }
    Ok(())
}

/// An entry and its ballot file, checked and ready to be written.
struct Checked {
    next: u64,
    e: BundleEntry,
    ciphertext: Vec<u8>,
}

/// The reading half of [`import_entries`]: each entry of the manifest and
/// its ballot file, checked, sent in order to `out`. Stops at the first
/// failure (sent as the last item) or when the writer stopped listening.
/// Returns the leaf index after the last entry read.
fn read_entries(
    root: &Folder,
    manifest: &mut HashingReader<std::io::Take<std::io::BufReader<File>>>,
    pins: &state::Pins,
    mut next: u64,
    new_size: u64,
    out: &std::sync::mpsc::SyncSender<Result<Checked, ImportError>>,
) -> u64 {
    loop {
        let checked = match BundleEntry::read(manifest).map_err(malformed) {
            Ok(Some(e)) => check_entry(root, pins, next, new_size, e),
            Ok(None) => return next,
            Err(e) => Err(e),
        };
        let failed = checked.is_err();
        if out.send(checked).is_err() || failed {
            return next;
        }
        next += 1;
    }
}

/// Check 5 for one entry: its place, its election, its ballot file.
fn check_entry(
    root: &Folder,
    pins: &state::Pins,
    next: u64,
    new_size: u64,
    e: BundleEntry,
) -> Result<Checked, ImportError> {
    if e.leaf_index != next || next >= new_size {
        return Err(ImportError::Malformed(format!(
            "entry for leaf {} where leaf {next} was expected",
            e.leaf_index
        )));
    }
    if e.log_entry.election_id != pins.election_id {
        return Err(ImportError::WrongElection {
            expected: format!("election {}", pins.election_id),
            found: format!("election {} (leaf {next})", e.log_entry.election_id),
        });
    }
    let name = bundle::ballot_file_name(next);
    let limit = e.ballot_size.min(MAX_BALLOT_FILE);
    if e.ballot_size > MAX_BALLOT_FILE {
        return Err(ImportError::TooLarge {
            path: name,
            size: e.ballot_size,
            limit: MAX_BALLOT_FILE,
        });
    }
    let ciphertext = root.read(&name, limit)?;
    if ciphertext.len() as u64 != e.ballot_size {
        return Err(ImportError::FileMismatch {
            path: name,
            reason: format!(
                "{} bytes, but the manifest lists {}",
                ciphertext.len(),
                e.ballot_size
            ),
        });
    }
    let digest: Hash = Sha256::digest(&ciphertext).into();
    if digest != e.ballot_sha256 || digest != e.log_entry.message_sha256 {
        return Err(ImportError::FileMismatch {
            path: name,
            reason: "its SHA-256 is not the one listed and logged (altered or swapped)".into(),
        });
    }
    Ok(Checked {
        next,
        e,
        ciphertext,
    })
}

/// Check 6, continued: the witnessed checkpoints, each verified against the
/// manifest's witness policy and the imported leaves, then stored.
fn import_witnessed(
    tx: &rusqlite::Transaction<'_>,
    header: &BundleHeader,
    policy: &shared::witness::WitnessPolicy,
    tree: &Tree,
    new_size: u64,
) -> Result<(), ImportError> {
    for (i, note) in header.witnessed.iter().enumerate() {
        let n = i + 1;
        let w = policy
            .verify(note.as_bytes())
            .map_err(|e| ImportError::Witnessed(format!("witnessed checkpoint {n}: {e}")))?;
        let size = w.checkpoint.checkpoint.size;
        if size > new_size {
            return Err(ImportError::Witnessed(format!(
                "witnessed checkpoint {n} has size {size}, beyond the bundle's {new_size}"
            )));
        }
        let ours = tree
            .root(size)
            .map_err(|e| ImportError::Inconsistent(e.to_string()))?;
        if ours != w.checkpoint.checkpoint.root {
            return Err(ImportError::Witnessed(format!(
                "witnessed checkpoint {n} (size {size}) has another root than the imported log at that size: the witnesses saw a different log (fork)"
            )));
        }
        tx.execute(
            "INSERT INTO witnessed (size, quorum_time, note, bundle) VALUES (?1, ?2, ?3, ?4)",
            params![size as i64, w.time.0 as i64, note, header.sequence as i64],
        )?;
    }
    Ok(())
}

/// A bundle imported before, checked again: every ballot file, CRL and
/// intermediate by size and SHA-256 as the manifest lists them, and
/// nothing else in the folder. Writes nothing.
fn check_again(root: &Folder, opened: &mut Opened) -> Result<(), ImportError> {
    while let Some(e) = BundleEntry::read(&mut opened.reader).map_err(malformed)? {
        let name = bundle::ballot_file_name(e.leaf_index);
        if e.ballot_size > MAX_BALLOT_FILE {
            return Err(ImportError::TooLarge {
                path: name,
                size: e.ballot_size,
                limit: MAX_BALLOT_FILE,
            });
        }
        let data = root.read(&name, e.ballot_size)?;
        let digest: Hash = Sha256::digest(&data).into();
        if data.len() as u64 != e.ballot_size || digest != e.ballot_sha256 {
            return Err(ImportError::FileMismatch {
                path: name,
                reason: "its size or SHA-256 is not the one listed and imported".into(),
            });
        }
    }
    let manifest_again: Hash = std::mem::take(&mut opened.reader.hash).finalize().into();
    if manifest_again != opened.manifest_sha {
        return Err(ImportError::BadSignature(
            "the manifest changed while it was being read".into(),
        ));
    }
    pki_files(root, &opened.header, |_, _, _| Ok(()))?;
    check_nothing_else(root, &opened.header)
}

/// Check 8: the CRL and intermediate files, by size and hash.
fn import_pki_files(
    tx: &rusqlite::Transaction<'_>,
    root: &Folder,
    header: &BundleHeader,
) -> Result<(), ImportError> {
    pki_files(root, header, |kind, digest, data| {
        tx.execute(
            "INSERT OR IGNORE INTO pki_files (sha256, kind, der) VALUES (?1, ?2, ?3)",
            params![digest.as_slice(), kind, data],
        )?;
        Ok(())
    })
}

/// Reads and checks each CRL and intermediate file the header lists, by
/// size and hash, and hands it to `each` with its kind.
fn pki_files(
    root: &Folder,
    header: &BundleHeader,
    mut each: impl FnMut(&str, &Hash, Vec<u8>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    for (refs, name_of, kind) in [
        (
            &header.crls,
            bundle::crl_file_name as fn(usize) -> String,
            "crl",
        ),
        (
            &header.intermediates,
            bundle::intermediate_file_name as fn(usize) -> String,
            "intermediate",
        ),
    ] {
        for (i, f) in refs.iter().enumerate() {
            let name = name_of(i);
            let data = root.read(&name, f.size)?;
            let digest: Hash = Sha256::digest(&data).into();
            if data.len() as u64 != f.size || digest != f.sha256 {
                return Err(ImportError::FileMismatch {
                    path: name,
                    reason: "its size or SHA-256 is not the one listed".into(),
                });
            }
            each(kind, &digest, data)?;
        }
    }
    Ok(())
}

/// Check 7: the folder holds the listed files and nothing else.
fn check_nothing_else(root: &Folder, header: &BundleHeader) -> Result<(), ImportError> {
    root.each_entry(|top| match top {
        bundle::MANIFEST_FILE | bundle::SIGNATURE_FILE => Ok(()),
        "ballots" | "crls" | "intermediates" => {
            let dir = root.dir(top)?;
            dir.each_entry(|f| {
                if listed(header, top, f) {
                    Ok(())
                } else {
                    Err(ImportError::ExtraFile(format!("{top}/{f}")))
                }
            })
        }
        other => Err(ImportError::ExtraFile(other.to_owned())),
    })
}

/// The latest imported checkpoint, if any.
pub fn latest_checkpoint(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT checkpoint FROM bundles ORDER BY sequence DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// Finds the bundle folders on the media, in order (`bundle-000001`, …),
/// by the names `shared::media` derives.
pub fn bundles_on(media: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(media)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = shared::media::parse_bundle_dir(e.file_name().to_str()?)?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}
