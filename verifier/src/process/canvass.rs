//! The canvass outputs: the accepted ballots' contents (random names, one
//! fixed time, nothing else), written all at once; and the reports.

use super::{Contents, Outcome};
use anyhow::{Context, Result};
use shared::ballot::BallotPackage;
use shared::checkpoint::SignedCheckpoint;
use shared::manifest::ElectionManifest;
use std::io::Write;
use std::path::Path;

fn extension(media_type: &str) -> &'static str {
    // Media types compare without case (RFC 6838 section 4.2).
    if media_type.eq_ignore_ascii_case(shared::ballot::MEDIA_PDF) {
        "pdf"
    } else if media_type.eq_ignore_ascii_case(shared::ballot::MEDIA_SELECTIONS) {
        "json"
    } else {
        "bin"
    }
}

/// A counted ballot's content as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Written {
    /// Its random file name.
    pub(super) name: String,
    /// Its media type.
    pub(super) media_type: String,
    /// A PDF whose metadata could not be removed (written as sent).
    pub(super) metadata_kept: bool,
}

/// Writes a counted ballot's content under a random name, a PDF without
/// its metadata, and hands the file to `flush` (which makes it durable
/// while the next ballots are decrypted).
pub(super) fn write_content(
    dir: &Path,
    package: &BallotPackage,
    mtime: std::time::SystemTime,
    flush: &Flusher,
    bounded: &super::bounded::Bounded,
) -> Result<Written> {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    let ext = extension(&package.media_type);
    let name = format!("{}.{ext}", hex::encode(id));
    // A PDF is written without its metadata; one lopdf cannot read (no
    // `%PDF-` header at all, an error, a panic, or longer than the time
    // limit) is written as sent and counted.
    let is_pdf = ext == "pdf";
    let cleaned = if is_pdf && super::pdf::has_header(&package.content) {
        let pdf = package.content.clone();
        bounded
            .run(move || super::pdf::without_metadata(&pdf))
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    let metadata_kept = is_pdf && cleaned.is_none();
    let data = cleaned.as_deref().unwrap_or(&package.content);
    flush.send(write_new(&dir.join(&name), data, mtime)?)?;
    Ok(Written {
        name,
        media_type: package.media_type.clone(),
        metadata_kept,
    })
}

/// A thread that flushes written files to disk one after the other, so the
/// disk writes overlap the decryption of the next ballots instead of all
/// waiting for one flush at the end. Its queue is bounded.
pub(super) struct Flusher {
    queue: std::sync::mpsc::SyncSender<std::fs::File>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Flusher {
    pub(super) fn start() -> Self {
        let (queue, rx) = std::sync::mpsc::sync_channel::<std::fs::File>(64);
        let thread = std::thread::spawn(move || {
            for f in rx {
                f.sync_data()?;
            }
            Ok(())
        });
        Flusher { queue, thread }
    }

    /// Queues a written file to be flushed.
    pub(super) fn send(&self, f: std::fs::File) -> Result<()> {
        self.queue
            .send(f)
            .map_err(|_| anyhow::anyhow!("cannot flush the ballots to disk (the flushing stopped)"))
    }

    /// Waits for every file sent so far to be on disk.
    pub(super) fn finish(self) -> Result<()> {
        drop(self.queue);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the flushing thread failed"))?
            .context("cannot flush the ballots to disk")
    }
}

pub(super) fn write_new(
    path: &Path,
    data: &[u8],
    mtime: std::time::SystemTime,
) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)?;
    // Made durable by the caller (each output file goes to the `Flusher`)
    // before the folder is renamed into place.
    f.set_modified(mtime)?;
    Ok(f)
}

/// Flushes the output folders (their files were flushed one by one by the
/// `Flusher`). No `syncfs`: on a FUSE file system (LazyFS in the power-loss
/// test; ntfs-3g or exfat-fuse on a county's USB drive) it does not reach
/// the file system's own cache, and the power-loss test lost whole reports.
pub(super) fn sync_outputs(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir)?;
    if dir.join("ballots").exists() {
        std::fs::File::open(dir.join("ballots"))?.sync_all()?;
    }
    d.sync_all()?;
    Ok(())
}

pub(super) fn report_text(m: &ElectionManifest, o: &Outcome, cp: &SignedCheckpoint) -> String {
    let mut s = String::new();
    s.push_str(&format!("{}\n{}\n\n", m.title, m.jurisdiction));
    s.push_str("Report of ballots returned electronically by overseas and military voters\n\n");
    if !o.alarms.is_empty() {
        s.push_str("ALARMS FOR THE BOARD (look into each before certifying):\n");
        for a in &o.alarms {
            s.push_str(&format!("  * {a}\n"));
        }
        s.push('\n');
    }
    s.push_str(&format!("Ballots received and logged:   {}\n", o.total));
    s.push_str(&format!("Accepted (to be counted):      {}\n", o.accepted));
    s.push_str(&format!(
        "Superseded by a later ballot:  {}\n",
        o.superseded
    ));
    s.push_str(&format!(
        "Rejected:                      {}\n",
        o.rejected_total()
    ));
    for (r, n) in &o.rejected {
        s.push_str(&format!("  {n:>5}  {}\n", r.explain()));
    }
    if o.revoked_after_receipt > 0 {
        s.push_str(&format!(
            "\n{} accepted ballot(s) came from a card revoked after the ballot was received; they count\n\
             (the card was valid when the ballot was proven to exist). For the board to note:\n",
            o.revoked_after_receipt
        ));
        for (voter, leaf, at) in &o.counted_though_revoked_later {
            s.push_str(&format!(
                "  voter {voter}, log entry {leaf}: card revoked {at}\n"
            ));
        }
    }
    s.push_str(&format!("\n{}\n", o.time_rule));
    match &o.contents {
        Contents::NotYet { after } => s.push_str(&format!(
            "\nINTERIM RUN: no ballot content was written. The contents are written once, by the\n\
             final canvass after {after} (the deadline plus the grace period).\n"
        )),
        Contents::Written { again: None } => s.push_str(
            "\nThe accepted ballots are in the folder ballots/, in random order, with no names.\n",
        ),
        Contents::Written { again: Some(why) } => s.push_str(&format!(
            "\nThe accepted ballots are in the folder ballots/, in random order, with no names.\n\
             WRITTEN AGAIN: an earlier final canvass had written the contents already; the board\n\
             overrode the refusal for this reason: {why}\n"
        )),
    }
    if o.pdfs_with_metadata > 0 {
        s.push_str(&format!(
            "{} accepted PDF ballot(s) could not be read to remove their metadata (author, dates,\n\
             software); they are in ballots/ as the voters sent them.\n",
            o.pdfs_with_metadata
        ));
    }
    s.push_str("\nVoter certificates were validated under these trust anchors, pinned in the signed\nmanifest (SHA-256 of each anchor certificate, the identity rule, the accepted policies):\n");
    for a in &o.anchors {
        s.push_str(&format!(
            "  {}  {}\n      identity {}; policies {}\n",
            a.sha256_hex(),
            a.name,
            a.identity,
            a.policies.join(", ")
        ));
    }
    s.push_str("Revocation was checked with these CRLs:\n");
    if o.crls.is_empty() {
        s.push_str("  none\n");
    }
    for c in &o.crls {
        s.push_str(&format!(
            "  {}  {}\n      issued {}, next update {}, {} entries\n",
            c.sha256,
            c.issuer,
            c.this_update,
            c.next_update
                .map_or_else(|| "none".to_owned(), |t| t.to_string()),
            c.entries
        ));
    }
    s.push_str(&format!(
        "The list of voters and the status of each ballot is in voters.csv.\n\
         The signed status file for the gateway is {}.\n\
         Log: {} entries, checkpoint root {}.\n",
        shared::media::STATUS_FILE,
        cp.checkpoint.size,
        hex::encode(cp.checkpoint.root)
    ));
    s
}

pub(super) fn report_json(m: &ElectionManifest, o: &Outcome, cp: &SignedCheckpoint) -> String {
    let rejected: serde_json::Map<String, serde_json::Value> = o
        .rejected
        .iter()
        .map(|(r, n)| (r.name().to_owned(), (*n).into()))
        .collect();
    let mut s = serde_json::json!({
        "election_id": m.election_id,
        "total": o.total,
        "accepted": o.accepted,
        "superseded": o.superseded,
        "rejected": rejected,
        "revoked_after_receipt": o.revoked_after_receipt,
        "late_by_witnesses_only": o.late_by_witnesses_only,
        "alarms": o.alarms,
        "contents_written": matches!(o.contents, Contents::Written { .. }),
        "pdfs_with_metadata": o.pdfs_with_metadata,
        "contents_written_again": match &o.contents {
            Contents::Written { again } => again.clone(),
            Contents::NotYet { .. } => None,
        },
        "trust_anchors": o.anchors.iter().map(|a| serde_json::json!({
            "name": a.name,
            "sha256": a.sha256_hex(),
            "identity": a.identity.to_string(),
            "policies": a.policies,
        })).collect::<Vec<_>>(),
        "crls": o.crls.iter().map(|c| serde_json::json!({
            "issuer": c.issuer,
            "sha256": c.sha256,
            "this_update": c.this_update.0,
            "next_update": c.next_update.map(|t| t.0),
            "entries": c.entries,
        })).collect::<Vec<_>>(),
        "log_size": cp.checkpoint.size,
        "log_root": hex::encode(cp.checkpoint.root),
    })
    .to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_extension_ignores_the_media_types_case() {
        assert_eq!(super::extension("application/pdf"), "pdf");
        assert_eq!(super::extension("Application/PDF"), "pdf");
        assert_eq!(
            super::extension("application/vnd.ballot-selections+JSON"),
            "json"
        );
        assert_eq!(super::extension("text/plain"), "bin");
    }
}
