//! The gateway's part of the setup ceremony (DESIGN section 4): its keys,
//! and the import of the signed election manifest and roster.

use crate::server::Election;
use crate::store::{self, SecurityEvent};
use anyhow::{bail, Context, Result};
use sequoia_openpgp::Cert;
use shared::clock::Clock;
use shared::manifest::ElectionManifest;
use shared::media;
use shared::note::{NoteSigner, TYPE_ED25519};
use shared::roster::Roster;
use std::path::Path;

/// The folder of the data folder that holds the secret keys (0700, files 0600).
pub const KEYS_DIR: &str = "keys";

/// The gateway's secret keys.
#[derive(Debug)]
pub struct GatewayKeys {
    /// Signs transfer bundles (OpenPGP, ML-DSA-65+Ed25519).
    pub transfer: Cert,
    /// Signs checkpoints (Ed25519 note key named after the log origin).
    pub log: NoteSigner,
}

const TRANSFER_KEY: &str = "transfer.key";
const LOG_KEY: &str = "log.key";

/// Writes `data` to a new file with `mode`, fsynced. Refuses to overwrite.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    Ok(shared::files::write_new(path, data, mode)?)
}

/// Reads a file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    Ok(shared::files::read_bounded(path, max)?)
}

fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(shared::files::read_secret(path)?)
}

/// `ballot-gateway init`: creates the transfer and log keys under
/// `data_dir/keys` (0600) and writes their public halves to `media_out`.
pub fn init(data_dir: &Path, log_origin: &str, media_out: &Path, clock: &dyn Clock) -> Result<()> {
    let keys = data_dir.join(KEYS_DIR);
    std::fs::create_dir_all(data_dir)?;
    if keys.exists() {
        bail!(
            "{} already exists: this gateway has keys; refusing to replace them",
            keys.display()
        );
    }
    {
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&keys)?;
    }
    let log = NoteSigner::generate(log_origin, TYPE_ED25519)
        .context("the log origin is not a valid key name")?;
    let transfer = shared::pgp::generate_signing_key(
        &format!("Ballot gateway transfer key <{log_origin}>"),
        None,
    )?;
    write_new(
        &keys.join(TRANSFER_KEY),
        &shared::pgp::secret_armored(&transfer)?,
        0o600,
    )?;
    write_new(&keys.join(LOG_KEY), log.to_skey().as_bytes(), 0o600)?;
    std::fs::create_dir_all(media_out)?;
    write_new(
        &media_out.join(media::GATEWAY_TRANSFER_KEY),
        &shared::pgp::public_armored(&transfer)?,
        0o644,
    )?;
    write_new(
        &media_out.join(media::GATEWAY_LOG_KEY),
        format!("{}\n", log.verifier().to_vkey()).as_bytes(),
        0o644,
    )?;
    let conn = store::open(&store::db_path(data_dir))?;
    store::record_event(
        &conn,
        &SecurityEvent {
            at: clock.now().0,
            kind: "admin",
            code: "init".into(),
            identity: None,
            peer: None,
            detail: format!(
                "keys created; transfer key {}; log key {}",
                shared::pgp::fingerprint_hex(&transfer),
                log.verifier().to_vkey()
            ),
        },
    )?;
    Ok(())
}

/// Loads the gateway's secret keys.
pub fn load_keys(data_dir: &Path) -> Result<GatewayKeys> {
    let keys = data_dir.join(KEYS_DIR);
    let transfer = shared::pgp::read_secret_cert(&read_secret(&keys.join(TRANSFER_KEY))?)?;
    let skey = read_secret(&keys.join(LOG_KEY))?;
    let text = std::str::from_utf8(&skey).context("the log key file is not text")?;
    let log = NoteSigner::from_skey(text.trim()).context("the log key file is not a signer key")?;
    Ok(GatewayKeys { transfer, log })
}

/// `ballot-gateway import-setup`: verifies the election manifest and the
/// roster on `media_dir` against `election_fingerprint` and stores them.
/// Returns a one-line summary.
pub fn import_setup(
    data_dir: &Path,
    anchors: &[shared::pki::Anchor],
    media_dir: &Path,
    election_fingerprint: &str,
    clock: &dyn Clock,
) -> Result<String> {
    let keys = load_keys(data_dir)?;
    let manifest_bytes = read_bounded(&media_dir.join(media::ELECTION_MANIFEST), 1024 * 1024)?;
    let manifest = ElectionManifest::open_signed(&manifest_bytes, election_fingerprint)
        .context("the election manifest does not verify against the election fingerprint")?;
    let roster_bytes = read_bounded(
        &media_dir.join(media::ROSTER),
        shared::roster::MAX_ROSTER as u64 + 65536,
    )?;
    let roster = Roster::open_signed(&roster_bytes, election_fingerprint)
        .context("the roster does not verify against the election fingerprint")?;
    if roster.election_id != manifest.election_id {
        bail!(
            "the roster is for election {}, the manifest for {}",
            roster.election_id,
            manifest.election_id
        );
    }
    let transfer_fpr = shared::pgp::fingerprint_hex(&keys.transfer);
    if manifest.gateway_transfer_fpr != transfer_fpr {
        bail!(
            "the manifest pins gateway transfer key {}, but this gateway's key is {transfer_fpr}",
            manifest.gateway_transfer_fpr
        );
    }
    if manifest.log_key != keys.log.verifier().to_vkey() {
        bail!("the manifest pins a log key other than this gateway's");
    }
    check_anchors(anchors, &manifest)?;
    let conn = store::open(&store::db_path(data_dir))?;
    if let Some(existing) = store::meta_get(&conn, "election_id")? {
        let ballots: i64 = conn.query_row("SELECT COUNT(*) FROM ballots", [], |r| r.get(0))?;
        if existing != manifest.election_id.as_bytes() && ballots > 0 {
            bail!("this gateway already holds ballots of another election; use a new data folder");
        }
    }
    let tx = conn.unchecked_transaction()?;
    store::meta_put(
        &tx,
        "election_fingerprint",
        election_fingerprint.trim().to_uppercase().as_bytes(),
    )?;
    store::meta_put(&tx, "election_id", manifest.election_id.as_bytes())?;
    store::meta_put(&tx, "manifest", &manifest_bytes)?;
    store::meta_put(&tx, "roster", &roster_bytes)?;
    store::record_event(
        &tx,
        &SecurityEvent {
            at: clock.now().0,
            kind: "admin",
            code: "import-setup".into(),
            identity: None,
            peer: None,
            detail: format!("election {}; {} voters", manifest.election_id, roster.len()),
        },
    )?;
    tx.commit()?;
    Ok(format!(
        "imported election {} ({}), {} voters, open {} to {}",
        manifest.election_id,
        manifest.title,
        roster.len(),
        manifest.opens_at,
        manifest.closes_at
    ))
}

/// Checks the configured trust anchors against the ones the signed
/// manifest pins: the same certificates, identity rules and policies, no
/// more and no fewer. Each difference is named.
pub fn check_anchors(anchors: &[shared::pki::Anchor], manifest: &ElectionManifest) -> Result<()> {
    let d = shared::pins::compare(anchors, &manifest.trust_anchors, true);
    if d.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = d.iter().map(|x| format!("  {x}")).collect();
    bail!(
        "the trust anchors configured ([[trust.anchor]]) disagree with the ones the signed election manifest pins; \
         configure exactly the county's anchors:\n{}",
        lines.join("\n")
    )
}

/// Loads the imported election from the database, re-verifying the signed
/// documents against the stored election fingerprint.
pub fn load_election(conn: &rusqlite::Connection) -> Result<Election> {
    let fpr = store::meta_get(conn, "election_fingerprint")?
        .context("no election has been imported yet: run ballot-gateway import-setup first")?;
    let fpr = String::from_utf8(fpr).context("bad stored fingerprint")?;
    let manifest_signed = store::meta_get(conn, "manifest")?.context("the manifest is missing")?;
    let manifest = ElectionManifest::open_signed(&manifest_signed, &fpr)?;
    let roster = Roster::open_signed(
        &store::meta_get(conn, "roster")?.context("the roster is missing")?,
        &fpr,
    )?;
    let cert = shared::pgp::read_public_cert(&manifest.election_cert)?;
    let subkeys = shared::pgp::encryption_subkeys(&cert)?;
    Ok(Election {
        manifest,
        manifest_signed,
        roster,
        subkeys,
    })
}
