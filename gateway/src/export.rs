//! `ballot-gateway export`: writes a transfer bundle (DESIGN section 7,
//! `docs/spec/transfer-bundle.md`) for every entry logged since the last
//! export, signed with the transfer key, and `import-status`: takes the
//! verifier's signed status file back.
//!
//! A bundle is written into a temporary folder beside its destination,
//! every file fsynced, and renamed into place only when complete. The
//! export is recorded in the database before the rename (as `moving`) and
//! marked done after it: a crash in between leaves a record, and the next
//! export finishes the move instead of writing a second, different bundle
//! with the same number (which the verifier would refuse, and every bundle
//! after it). The next export continues where this one stopped.

use crate::setup::{self, GatewayKeys};
use crate::store::{self, SecurityEvent};
use anyhow::{bail, Context, Result};
use rusqlite::params;
use sha2::{Digest, Sha256};
use shared::bundle::{self, BundleEntry, BundleHeader, FileRef};
use shared::checkpoint::SignedCheckpoint;
use shared::clock::{Clock, UnixTime};
use shared::log_entry::LogEntry;
use shared::media;
use shared::merkle::{Hash, Tree};
use shared::status::StatusFile;
use shared::x509::VoterIdentity;
use std::path::{Path, PathBuf};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The bundle folder.
    pub dir: PathBuf,
    /// Its sequence number.
    pub sequence: u64,
    /// The first leaf index.
    pub first_index: u64,
    /// The number of ballots.
    pub entries: u64,
    /// The number of witnessed checkpoints it carries.
    pub witnessed: usize,
}

/// Flushes a folder's entries (a new or renamed file is durable only then).
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush the folder {}", dir.display()))
}

fn write_file(path: &Path, data: &[u8]) -> Result<FileRef> {
    setup::write_new(path, data, 0o644)?;
    Ok(FileRef {
        size: data.len() as u64,
        sha256: Sha256::digest(data).into(),
    })
}

fn load_tree(conn: &rusqlite::Connection) -> Result<Tree> {
    let mut tree = Tree::new();
    let mut stmt = conn.prepare("SELECT leaf_hash FROM ballots ORDER BY leaf_index")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let h: Vec<u8> = r.get(0)?;
        let h: Hash = h
            .try_into()
            .map_err(|_| anyhow::anyhow!("a stored leaf hash is not 32 bytes"))?;
        tree.push(h);
    }
    Ok(tree)
}

/// The checkpoints witnessed since row `after` (every one with `all`), up to
/// the bundle's size, thinned to what a bundle carries: their notes, and the
/// last row considered.
fn witnessed_since(
    tx: &rusqlite::Connection,
    after: i64,
    size: u64,
    manifest: &shared::manifest::ElectionManifest,
) -> Result<(Vec<String>, i64)> {
    // Ids and times first (a day of witnessing is tens of thousands of
    // rows); the notes only of the rows kept.
    let mut stmt =
        tx.prepare("SELECT id, size, quorum_time FROM witnessed WHERE id > ?1 ORDER BY id")?;
    let mut rows = stmt.query(params![after])?;
    let mut found: Vec<(i64, UnixTime)> = Vec::new();
    while let Some(r) = rows.next()? {
        // Rows are stored as checkpoints are witnessed, by growing size: the
        // first beyond this bundle's checkpoint waits for the next bundle,
        // with every row after it.
        if r.get::<_, i64>(1)? as u64 > size {
            break;
        }
        found.push((r.get(0)?, UnixTime(r.get::<_, i64>(2)? as u64)));
    }
    let upto = found.last().map_or(after, |(id, _)| *id);
    let times: Vec<UnixTime> = found.iter().map(|(_, t)| *t).collect();
    let kept = shared::witness::thin(
        &times,
        bundle::MAX_WITNESSED,
        manifest.closes_at,
        manifest.closing_bound(),
    );
    let mut note = tx.prepare("SELECT note FROM witnessed WHERE id = ?1")?;
    let mut notes = Vec::with_capacity(kept.len());
    for (id, _) in kept.iter().filter_map(|i| found.get(*i)) {
        notes.push(note.query_row(params![id], |r| r.get::<_, String>(0))?);
    }
    Ok((notes, upto))
}

/// The administrative event of an export.
fn record_export(conn: &rusqlite::Connection, clock: &dyn Clock, detail: String) -> Result<()> {
    store::record_event(
        conn,
        &SecurityEvent {
            at: clock.now().0,
            kind: "admin",
            code: "export".into(),
            identity: None,
            peer: None,
            detail,
        },
    )?;
    Ok(())
}

fn path_text(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("the path {} is not UTF-8", p.display()))
}

/// An export that stopped after it was recorded and before it was marked
/// done: if its bundle is in place, it is marked done; if the finished
/// folder is still beside it, the move is finished now and that bundle is
/// the result of this export. Otherwise nothing can be done safely.
fn finish_interrupted(
    conn: &rusqlite::Connection,
    clock: &dyn Clock,
) -> Result<Option<ExportSummary>> {
    use rusqlite::OptionalExtension;
    /// Sequence, first index, entries, the finished folder, its place.
    type Moving = (i64, i64, i64, Option<String>, Option<String>);
    let row: Option<Moving> = conn
        .query_row(
            "SELECT sequence, first_index, entry_count, partial_dir, final_dir FROM exports
             WHERE state = 'moving' ORDER BY sequence DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((sequence, first_index, entries, Some(partial), Some(final_dir))) = row else {
        return Ok(None);
    };
    let (partial, final_dir) = (PathBuf::from(partial), PathBuf::from(final_dir));
    let done = |conn: &rusqlite::Connection| {
        conn.execute(
            "UPDATE exports SET state = 'done' WHERE sequence = ?1",
            params![sequence],
        )
    };
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    if is_dir(&final_dir) {
        // Moved; the gateway stopped before it noted so.
        done(conn)?;
        return Ok(None);
    }
    if !is_dir(&partial) {
        bail!(
            "bundle {sequence} was finished in {} but the gateway stopped before moving it to {}, and neither is there now. \
             Put that media back and run export again: it finishes the move. Do not export to other media first: \
             the verifier needs bundle {sequence} before any later one",
            partial.display(),
            final_dir.display()
        );
    }
    std::fs::rename(&partial, &final_dir).context("cannot move the finished bundle into place")?;
    if let Some(parent) = final_dir.parent() {
        fsync_dir(parent)?;
    }
    done(conn)?;
    let header = BundleHeader::read(&mut std::io::BufReader::new(std::fs::File::open(
        final_dir.join(bundle::MANIFEST_FILE),
    )?))?;
    record_export(
        conn,
        clock,
        format!("bundle {sequence}: finished moving into place after an interruption"),
    )?;
    Ok(Some(ExportSummary {
        dir: final_dir,
        sequence: sequence as u64,
        first_index: first_index as u64,
        entries: entries as u64,
        witnessed: header.witnessed.len(),
    }))
}

/// Writes the next bundle into `out_dir`. With `all`, the bundle holds every
/// entry from leaf 0. A bundle is written when there are new entries, or
/// only new witnessed checkpoints (such as the closing checkpoint cosigned
/// again at the deadline). Returns `None` when there is nothing new.
pub fn export(
    data_dir: &Path,
    crls: &[Vec<u8>],
    intermediates: &[Vec<u8>],
    out_dir: &Path,
    all: bool,
    clock: &dyn Clock,
) -> Result<Option<ExportSummary>> {
    let GatewayKeys { transfer, log } = setup::load_keys(data_dir)?;
    let conn = store::open(&store::db_path(data_dir))?;
    let election = setup::load_election(&conn)?;
    if let Some(finished) = finish_interrupted(&conn, clock)? {
        return Ok(Some(finished));
    }
    // A consistent snapshot of the log while the server keeps writing.
    let tx = conn.unchecked_transaction()?;
    let tree = load_tree(&tx)?;
    let latest: Option<(i64, String)> = tx
        .query_row(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let Some((size, new_checkpoint)) = latest else {
        return Ok(None);
    };
    let size = size as u64;
    // Leaves committed after the latest checkpoint cannot exist (one
    // transaction), but check rather than assume.
    if tree.size() < size {
        bail!(
            "the log has {} leaves but its checkpoint says {size}",
            tree.size()
        );
    }
    let last: Option<(i64, i64, i64)> = tx
        .query_row(
            "SELECT sequence, checkpoint_size, witnessed_upto FROM exports ORDER BY sequence DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok();
    let sequence = last.map_or(1, |(s, _, _)| s as u64 + 1);
    let first_index = if all {
        0
    } else {
        last.map_or(0, |(_, c, _)| c as u64)
    };
    let after = if all {
        0
    } else {
        last.map_or(0, |(_, _, w)| w)
    };
    let (witnessed, witnessed_upto) = witnessed_since(&tx, after, size, &election.manifest)?;
    if first_index == size && !all && witnessed_upto == after {
        return Ok(None);
    }
    let previous_checkpoint = if first_index == 0 {
        None
    } else {
        Some(tx.query_row(
            "SELECT note FROM checkpoints WHERE size = ?1",
            params![first_index as i64],
            |r| r.get::<_, String>(0),
        )?)
    };
    let consistency_proof = if first_index == 0 {
        Vec::new()
    } else {
        tree.consistency_proof(first_index, size)?
    };

    std::fs::create_dir_all(out_dir)?;
    let final_dir = out_dir.join(media::bundle_dir(sequence));
    if final_dir.exists() {
        bail!(
            "{} already exists; move it away or export to another folder",
            final_dir.display()
        );
    }
    let tmp = out_dir.join(format!(
        ".{}.partial-{}",
        media::bundle_dir(sequence),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    for sub in ["", "ballots", "crls", "intermediates"] {
        std::fs::create_dir_all(tmp.join(sub))?;
    }
    let crl_refs = crls
        .iter()
        .enumerate()
        .map(|(i, c)| write_file(&tmp.join(bundle::crl_file_name(i)), c))
        .collect::<Result<Vec<_>>>()?;
    let inter_refs = intermediates
        .iter()
        .enumerate()
        .map(|(i, c)| write_file(&tmp.join(bundle::intermediate_file_name(i)), c))
        .collect::<Result<Vec<_>>>()?;
    let witnessed_count = witnessed.len();
    let header = BundleHeader {
        election_id: election.manifest.election_id.clone(),
        sequence,
        log_origin: log.name().to_owned(),
        previous_checkpoint,
        new_checkpoint,
        consistency_proof,
        witnessed,
        crls: crl_refs,
        intermediates: inter_refs,
        first_index,
        entry_count: size - first_index,
    };
    let manifest_path = tmp.join(bundle::MANIFEST_FILE);
    {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&manifest_path)?;
        let mut w = std::io::BufWriter::new(file);
        header.write(&mut w)?;
        let mut stmt = tx.prepare(
            "SELECT leaf_index, log_entry, salt, voter_id, identity, client_cert, message FROM ballots
             WHERE leaf_index >= ?1 AND leaf_index < ?2 ORDER BY leaf_index",
        )?;
        let mut rows = stmt.query(params![first_index as i64, size as i64])?;
        let mut expected = first_index;
        while let Some(r) = rows.next()? {
            let index = r.get::<_, i64>(0)? as u64;
            if index != expected {
                bail!("leaf {expected} is missing from the database");
            }
            expected += 1;
            let log_entry = LogEntry::from_bytes(&r.get::<_, Vec<u8>>(1)?)?;
            let salt: [u8; 32] = r
                .get::<_, Vec<u8>>(2)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("leaf {index}: bad salt"))?;
            let identity = VoterIdentity::parse_canonical(&r.get::<_, String>(4)?)
                .with_context(|| format!("leaf {index}: bad identity"))?;
            let message: Vec<u8> = r.get(6)?;
            let file = bundle::ballot_file_name(index);
            let fref = write_file(&tmp.join(&file), &message)?;
            BundleEntry {
                leaf_index: index,
                log_entry,
                salt,
                voter_id: r.get(3)?,
                identity,
                client_cert: r.get(5)?,
                ballot_file: file,
                ballot_size: fref.size,
                ballot_sha256: fref.sha256,
            }
            .write(&mut w)?;
        }
        if expected != size {
            bail!("leaf {expected} is missing from the database");
        }
        let file = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing the manifest: {e}"))?;
        file.sync_all()?;
    }
    let signature =
        shared::pgp::sign_detached_reader(&transfer, None, std::fs::File::open(&manifest_path)?)?;
    write_file(&tmp.join(bundle::SIGNATURE_FILE), &signature)?;
    for sub in ["ballots", "crls", "intermediates", ""] {
        fsync_dir(&tmp.join(sub))?;
    }
    drop(tx);
    // Recorded before the move: a crash after the move can then never
    // lead to a second, different bundle with this number (which the
    // verifier would refuse, and every bundle after it).
    conn.execute(
        "INSERT INTO exports (sequence, first_index, entry_count, checkpoint_size, created_at, witnessed_upto, state, partial_dir, final_dir)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'moving', ?7, ?8)",
        params![
            sequence as i64,
            first_index as i64,
            (size - first_index) as i64,
            size as i64,
            clock.now().0 as i64,
            witnessed_upto,
            path_text(&tmp)?,
            path_text(&final_dir)?
        ],
    )?;
    std::fs::rename(&tmp, &final_dir).context("cannot move the finished bundle into place")?;
    fsync_dir(out_dir)?;
    conn.execute(
        "UPDATE exports SET state = 'done' WHERE sequence = ?1",
        params![sequence as i64],
    )?;
    record_export(
        &conn,
        clock,
        format!("bundle {sequence}: leaves {first_index}..{size}"),
    )?;
    Ok(Some(ExportSummary {
        dir: final_dir,
        sequence,
        first_index,
        entries: size - first_index,
        witnessed: witnessed_count,
    }))
}

/// The meta key of the imported status file's counts (JSON, a
/// [`shared::api::ObserverCounts`]).
pub const STATUS_COUNTS: &str = "status_counts";

/// The counts the observer's page shows: valid, and rejected by reason in
/// the order of the reason codes.
fn status_counts(statuses: &[shared::status::Status]) -> shared::api::ObserverCounts {
    let mut by_reason: std::collections::BTreeMap<u8, (String, u64)> = Default::default();
    let mut valid = 0;
    for s in statuses {
        match s {
            shared::status::Status::Valid => valid += 1,
            shared::status::Status::Rejected(r) => {
                by_reason
                    .entry(r.code())
                    .or_insert((r.name().to_owned(), 0))
                    .1 += 1;
            }
        }
    }
    shared::api::ObserverCounts {
        ballots: statuses.len() as u64,
        valid,
        rejected: by_reason.into_values().collect(),
    }
}

/// `ballot-gateway import-status`: verifies the verifier's status file
/// (signed by the election key; its checkpoint signed by this gateway's log
/// key, cosigned by the verifier's witness key, and equal to a checkpoint
/// this gateway issued) and stores the statuses.
pub fn import_status(data_dir: &Path, file: &Path, clock: &dyn Clock) -> Result<String> {
    let keys = setup::load_keys(data_dir)?;
    let conn = store::open(&store::db_path(data_dir))?;
    let election = setup::load_election(&conn)?;
    let fpr = String::from_utf8(
        store::meta_get(&conn, "election_fingerprint")?.context("no election imported")?,
    )?;
    let bytes = setup::read_bounded(file, 200 * 1024 * 1024)?;
    let status = StatusFile::open_signed(&bytes, &fpr)
        .context("the status file does not verify with the election key")?;
    if status.election_id != election.manifest.election_id {
        bail!("the status file is for election {}", status.election_id);
    }
    let cp = SignedCheckpoint::verify(status.checkpoint.as_bytes(), &keys.log.verifier())
        .context("the status file's checkpoint is not signed by this gateway's log key")?;
    let witness = shared::note::NoteVerifier::from_vkey(&election.manifest.witness_key)?;
    cp.verify_cosignature(&witness)
        .context("the status file's checkpoint lacks the verifier's cosignature")?;
    let ours: String = conn
        .query_row(
            "SELECT note FROM checkpoints WHERE size = ?1",
            params![cp.checkpoint.size as i64],
            |r| r.get(0),
        )
        .context("the status file's checkpoint is not one this gateway issued")?;
    let ours = SignedCheckpoint::verify(ours.as_bytes(), &keys.log.verifier())?;
    if ours.checkpoint.root != cp.checkpoint.root {
        bail!("the status file's checkpoint has a different root than this gateway's log: the log was forked");
    }
    if status.statuses.len() as u64 != cp.checkpoint.size {
        bail!(
            "the status file lists {} ballots for a log of {}",
            status.statuses.len(),
            cp.checkpoint.size
        );
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM statuses", [])?;
    {
        let mut stmt =
            tx.prepare("INSERT INTO statuses (leaf_index, status, reason) VALUES (?1, ?2, ?3)")?;
        for (i, s) in status.statuses.iter().enumerate() {
            let (st, reason) = s.to_codes();
            stmt.execute(params![i as i64, st, reason])?;
        }
    }
    store::meta_put(&tx, "status_file", &bytes)?;
    // Counted once here, not on each request for the observer's page.
    store::meta_put(
        &tx,
        STATUS_COUNTS,
        &serde_json::to_vec(&status_counts(&status.statuses))?,
    )?;
    store::record_event(
        &tx,
        &SecurityEvent {
            at: clock.now().0,
            kind: "admin",
            code: "import-status".into(),
            identity: None,
            peer: None,
            detail: format!("statuses for {} ballots", status.statuses.len()),
        },
    )?;
    tx.commit()?;
    Ok(format!(
        "imported the status of each of the {} ballot(s) the county decided",
        status.statuses.len()
    ))
}

#[cfg(test)]
mod tests {
    use shared::status::{Reason, Status};

    #[test]
    fn the_observer_counts_are_valid_and_rejections_by_reason_in_code_order() {
        let c = super::status_counts(&[
            Status::Rejected(Reason::AfterDeadline),
            Status::Valid,
            Status::Rejected(Reason::CertificateRevoked),
            Status::Rejected(Reason::AfterDeadline),
            Status::Valid,
        ]);
        assert_eq!((c.ballots, c.valid), (5, 2));
        assert_eq!(
            c.rejected,
            vec![
                ("certificate-revoked".to_owned(), 1),
                ("after-deadline".to_owned(), 2)
            ]
        );
    }
}
