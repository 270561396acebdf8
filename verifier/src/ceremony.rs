//! The verifier's part of the setup ceremony (DESIGN section 4), loading
//! what it made, and passphrase input. (The air-gap guard is `airgap`, the
//! receipt audit `audit`.)

use crate::state::{self, Pins};
use anyhow::{bail, Context, Result};
use sequoia_openpgp::crypto::Password;
use sequoia_openpgp::Cert;
use shared::clock::{Clock, UnixTime};
use shared::manifest::{ElectionManifest, MediaRule, ReplacementRule};
use shared::media;
use shared::note::{NoteSigner, NoteVerifier, TYPE_COSIGNATURE};
use shared::roster::Roster;
use std::path::Path;

/// The election's parameters, chosen by the county.
#[derive(Debug, Clone)]
pub struct ElectionParams {
    /// The election id.
    pub election_id: String,
    /// The title.
    pub title: String,
    /// The county or state.
    pub jurisdiction: String,
    /// When ballots are first accepted.
    pub opens_at: UnixTime,
    /// The deadline.
    pub closes_at: UnixTime,
    /// The declaration voters accept.
    pub declaration: String,
    /// Accepted media types and sizes.
    pub accepted_media: Vec<MediaRule>,
    /// The witness key's name, e.g. `elections.example-county.gov/verifier`.
    pub witness_name: String,
    /// The observers' witnesses.
    pub witnesses: Vec<shared::manifest::ManifestWitness>,
    /// How many of them must cosign a checkpoint.
    pub witness_quorum: u8,
    /// How long after the deadline the closing checkpoint may be cosigned.
    pub grace_seconds: u32,
    /// The trust anchors for voter certificates, pinned in the manifest;
    /// their certificates are kept in the verifier's state for `process`.
    pub anchors: Vec<shared::pki::Anchor>,
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    Ok(shared::files::write_new(path, data, mode)?)
}

fn read_secret_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(shared::files::read_secret(path)?)
}

/// Where passphrases come from: a prompt on the terminal that does not
/// echo, or the lines of a file descriptor, in the order they are asked.
/// Never the command line or the environment, which other processes can
/// read. Every copy is wiped when dropped.
pub struct Passphrases {
    lines: Option<std::collections::VecDeque<zeroize::Zeroizing<String>>>,
    fd: Option<u32>,
}

impl std::fmt::Debug for Passphrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passphrases(fd {:?}, ..)", self.fd)
    }
}

impl Passphrases {
    /// From file descriptor `fd` (all its lines read now), else prompts.
    pub fn new(fd: Option<u32>) -> Result<Self> {
        let lines = match fd {
            Some(fd) => Some(
                shared::files::read_secret_lines_from_fd(fd, 64 * 1024)
                    .with_context(|| format!("cannot read passphrases from file descriptor {fd}"))?
                    .into(),
            ),
            None => None,
        };
        Ok(Passphrases { lines, fd })
    }

    /// The next passphrase; `confirm` asks it twice at a prompt. At least 12
    /// characters.
    pub fn ask(&mut self, prompt: &str, confirm: bool) -> Result<Password> {
        let text = match (&mut self.lines, self.fd) {
            (Some(lines), Some(fd)) => lines.pop_front().with_context(|| {
                format!(
                    "file descriptor {fd} has no line left for: {}",
                    prompt.trim_end_matches([' ', ':'])
                )
            })?,
            _ => {
                let first = zeroize::Zeroizing::new(
                    rpassword::prompt_password(prompt).context("cannot read the passphrase")?,
                );
                if confirm {
                    let again =
                        zeroize::Zeroizing::new(rpassword::prompt_password("Type it again: ")?);
                    if *again != *first {
                        bail!("the two passphrases differ; nothing was created");
                    }
                }
                first
            }
        };
        if text.chars().count() < 12 {
            bail!("the passphrase must be at least 12 characters");
        }
        Ok(Password::from(text.as_str()))
    }
}

/// Reads one passphrase: from file descriptor `fd` if given (its first
/// line), else from a prompt that does not echo.
pub fn read_passphrase(fd: Option<u32>, prompt: &str, confirm: bool) -> Result<Password> {
    Passphrases::new(fd)?.ask(prompt, confirm)
}

/// `ballot-verifier init`: creates the election key (protected by
/// `password`) and the witness key in `home/keys`, pins the gateway's keys
/// from `gateway_media`, and writes the signed manifest, the signed roster
/// and the public election key onto `out_media`. Returns the election key
/// fingerprint, which voters receive with their instructions.
///
/// With one passphrase, for development and the demo; a county's election
/// splits the key among trustees with [`crate::custody::init_with_trustees`].
pub fn init(
    home: &Path,
    gateway_media: &Path,
    out_media: &Path,
    params: &ElectionParams,
    roster_csv: &str,
    password: &Password,
    clock: &dyn Clock,
) -> Result<String> {
    init_with(
        home,
        gateway_media,
        out_media,
        params,
        roster_csv,
        password,
        clock,
        &mut |_| Ok(Vec::new()),
    )
}

/// Files to add to the verifier's `keys` folder: name, contents.
pub type KeyFiles = Vec<(String, Vec<u8>)>;

/// [`init`], with `before_writing` called with the new election key's
/// fingerprint once the keys exist in memory and before anything is written
/// to `home` or `out_media`; it returns files to keep beside the keys. If it
/// fails, nothing is written.
#[allow(clippy::too_many_arguments)]
pub fn init_with(
    home: &Path,
    gateway_media: &Path,
    out_media: &Path,
    params: &ElectionParams,
    roster_csv: &str,
    password: &Password,
    clock: &dyn Clock,
    before_writing: &mut dyn FnMut(&str) -> Result<KeyFiles>,
) -> Result<String> {
    let roster = Roster::from_csv(&params.election_id, roster_csv).map_err(|errors| {
        let lines: Vec<String> = errors.iter().take(20).map(|e| format!("  {e}")).collect();
        anyhow::anyhow!(
            "the roster file has {} problem(s); fix them and run again:\n{}",
            errors.len(),
            lines.join("\n")
        )
    })?;
    let transfer = shared::pgp::read_public_cert(
        &std::fs::read(gateway_media.join(media::GATEWAY_TRANSFER_KEY)).with_context(|| {
            format!("the gateway's media has no {}", media::GATEWAY_TRANSFER_KEY)
        })?,
    )?;
    let log_vkey = std::fs::read_to_string(gateway_media.join(media::GATEWAY_LOG_KEY))
        .with_context(|| format!("the gateway's media has no {}", media::GATEWAY_LOG_KEY))?;
    let log =
        NoteVerifier::from_vkey(log_vkey.trim()).context("the gateway's log key is not valid")?;
    let keys = home.join("keys");
    if keys.exists() {
        bail!(
            "{} already exists: this verifier already holds an election key",
            keys.display()
        );
    }
    let uid = format!(
        "{} election key <{}>",
        params.jurisdiction, params.election_id
    );
    let election = shared::pgp::generate_election_key(&uid, Some(password.clone()))?;
    let witness =
        NoteSigner::generate(&params.witness_name, TYPE_COSIGNATURE).context("bad witness name")?;
    // The witness key is protected like the election key, by the same secret.
    let witness_sealed = seal_witness(&witness, password)?;
    let extra = before_writing(&shared::pgp::fingerprint_hex(&election))?;
    std::fs::create_dir_all(home)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&keys)?;
    }
    write_new(
        &keys.join("election.key"),
        &shared::pgp::secret_armored(&election)?,
        0o600,
    )?;
    write_new(&keys.join(WITNESS_KEY_FILE), &witness_sealed, 0o600)?;
    for (name, data) in &extra {
        write_new(&keys.join(name), data, 0o600)?;
    }

    let manifest = ElectionManifest {
        election_id: params.election_id.clone(),
        title: params.title.clone(),
        jurisdiction: params.jurisdiction.clone(),
        opens_at: params.opens_at,
        closes_at: params.closes_at,
        election_cert: shared::pgp::public_bytes(&election)?,
        gateway_transfer_fpr: shared::pgp::fingerprint_hex(&transfer),
        log_origin: log.name().to_owned(),
        log_key: log.to_vkey(),
        witness_key: witness.verifier().to_vkey(),
        accepted_media: params.accepted_media.clone(),
        replacement_rule: ReplacementRule::LatestBeforeDeadline,
        declaration: params.declaration.clone(),
        witnesses: params.witnesses.clone(),
        witness_quorum: params.witness_quorum,
        grace_seconds: params.grace_seconds,
        trust_anchors: params.anchors.iter().map(shared::pins::pin_of).collect(),
    };
    let manifest_signed =
        shared::signed::sign_document(&manifest.to_bytes()?, &election, Some(password))?;
    let roster_signed =
        shared::signed::sign_document(&roster.to_bytes()?, &election, Some(password))?;
    std::fs::create_dir_all(out_media)?;
    write_new(
        &out_media.join(media::ELECTION_MANIFEST),
        &manifest_signed,
        0o644,
    )?;
    write_new(&out_media.join(media::ROSTER), &roster_signed, 0o644)?;
    write_new(
        &out_media.join("election-key.pgp"),
        &shared::pgp::public_armored(&election)?,
        0o644,
    )?;

    let conn = state::open(&state::db_path(home))?;
    state::set_pins(
        &conn,
        &Pins {
            election_id: params.election_id.clone(),
            transfer_cert: shared::pgp::public_bytes(&transfer)?,
            log_key: log.to_vkey(),
            witnesses: manifest.witnesses.iter().map(|w| w.key.clone()).collect(),
            witness_quorum: manifest.witness_quorum,
        },
    )?;
    state::meta_put(&conn, "manifest", &manifest_signed)?;
    for (anchor, pin) in params.anchors.iter().zip(&manifest.trust_anchors) {
        state::meta_put(&conn, &anchor_key(pin), &anchor.cert_der)?;
    }
    state::meta_put(&conn, "roster", &roster_signed)?;
    state::meta_put(
        &conn,
        "election_fingerprint",
        shared::pgp::fingerprint_hex(&election).as_bytes(),
    )?;
    state::meta_put(&conn, "created_at", clock.now().0.to_string().as_bytes())?;
    Ok(shared::pgp::fingerprint_hex(&election))
}

fn anchor_key(pin: &shared::manifest::PinnedAnchor) -> String {
    format!("anchor-{}", pin.sha256_hex())
}

/// The trust anchors the manifest pins, from the certificates `init` kept:
/// the only anchors `process` validates voters with.
pub fn pinned_anchors(
    conn: &rusqlite::Connection,
    manifest: &ElectionManifest,
) -> Result<Vec<shared::pki::Anchor>> {
    shared::pins::anchors_from_pins(&manifest.trust_anchors, &|pin| {
        state::meta_get(conn, &anchor_key(pin)).ok().flatten()
    })
    .map_err(|e| {
        anyhow::anyhow!("{e}; the verifier's state is damaged (restore it from its backup)")
    })
}

/// The signed manifest `init` kept, opened against the election key's
/// fingerprint kept beside it (no secret needed).
pub fn read_manifest(home: &Path) -> Result<ElectionManifest> {
    let conn = state::open(&state::db_path(home))?;
    let fpr = state::meta_get(&conn, "election_fingerprint")?
        .context("this verifier has no election (run init first)")?;
    Ok(ElectionManifest::open_signed(
        &state::meta_get(&conn, "manifest")?.context("no manifest")?,
        std::str::from_utf8(&fpr).context("bad election fingerprint in the state")?,
    )?)
}

/// Checks anchors given at `process` against the manifest's pins: each
/// must be pinned, with the pinned identity rule and policies. A rogue
/// anchor is refused with its hash named.
pub fn check_offered_anchors(
    offered: &[shared::pki::Anchor],
    manifest: &ElectionManifest,
) -> Result<()> {
    let d = shared::pins::compare(offered, &manifest.trust_anchors, false);
    if d.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = d.iter().map(|x| format!("  {x}")).collect();
    bail!(
        "refusing the trust anchors given: the signed manifest decides which anchors count\n{}",
        lines.join("\n")
    )
}

/// The witness key's file in `keys`: its `skey` sealed under the election
/// key's passphrase (or custody secret), see [`crate::custody::seal`].
pub const WITNESS_KEY_FILE: &str = "witness.key.pgp";

/// Seals the witness key under `password`.
pub fn seal_witness(witness: &NoteSigner, password: &Password) -> Result<Vec<u8>> {
    let skey = witness.to_skey();
    crate::custody::seal(skey.as_bytes(), password)
}

/// Opens the sealed witness key.
pub fn open_witness(sealed: &[u8], password: &Password) -> Result<NoteSigner> {
    let skey = crate::custody::open(sealed, password, 4096)
        .context("the witness key did not open: the passphrase or custody secret is wrong, or the file was altered")?;
    NoteSigner::from_skey(
        std::str::from_utf8(&skey)
            .context("bad witness key file")?
            .trim(),
    )
    .context("bad witness key file")
}

/// The verifier's keys and election, loaded from `home`.
#[derive(Debug)]
pub struct Loaded {
    /// The election key with its (protected) secret keys.
    pub election_key: Cert,
    /// The witness key.
    pub witness: NoteSigner,
    /// The manifest.
    pub manifest: ElectionManifest,
    /// The roster.
    pub roster: Roster,
}

/// Loads what `init` created; `password` (the passphrase, or the custody
/// secret rebuilt from the trustees' shares) must open the keys.
pub fn load(home: &Path, password: &Password) -> Result<Loaded> {
    let election_key =
        shared::pgp::read_secret_cert(&read_secret_file(&home.join("keys/election.key"))?)?;
    let witness = open_witness(
        &read_secret_file(&home.join("keys").join(WITNESS_KEY_FILE))?,
        password,
    )?;
    let conn = state::open(&state::db_path(home))?;
    let fpr = shared::pgp::fingerprint_hex(&election_key);
    let manifest = ElectionManifest::open_signed(
        &state::meta_get(&conn, "manifest")?.context("no manifest")?,
        &fpr,
    )?;
    let roster = Roster::open_signed(
        &state::meta_get(&conn, "roster")?.context("no roster")?,
        &fpr,
    )?;
    Ok(Loaded {
        election_key,
        witness,
        manifest,
        roster,
    })
}
