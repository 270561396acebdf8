//! Split custody of the election key: k of n trustees.
//!
//! Specification: `docs/spec/custody.md`. In short:
//!
//! - The election key's secret parts and the witness key are protected by a
//!   random 32-byte *custody secret* (as an OpenPGP passphrase: the key's
//!   own Argon2 protection, and an AEAD-sealed message for the witness key).
//!   No person ever sees the custody secret.
//! - The secret is split with Shamir's scheme over GF(256) (the `blahaj`
//!   crate) into n shares, any k of which rebuild it; k - 1 reveal nothing.
//! - Each share is sealed for its trustee: an OpenPGP message (SKESK v6 with
//!   an Argon2 S2K, SEIPD v2 with AEAD) under the trustee's own passphrase,
//!   written to the trustee's own media. Inside, the share names its
//!   election, ceremony, generation and position.
//! - The verifier keeps a public *custody record* (`keys/custody.json`):
//!   the threshold, the trustees, and a SHA-256 commitment to each share.
//!   A share is accepted only if it decrypts, names this election, this
//!   ceremony and the current generation, sits where the record says, and
//!   matches its commitment: a wrong or altered share is named before any
//!   combination is tried.
//! - Re-sharing (a trustee leaves) rebuilds the secret from k shares, puts a
//!   new custody secret on the same election key (its fingerprint does not
//!   change) and deals new shares: the old shares open nothing the verifier
//!   holds any more.

use anyhow::{bail, Context, Result};
use openpgp::crypto::{Password, SessionKey, S2K};
use openpgp::packet::skesk::SKESK6;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use openpgp::serialize::Serialize as _;
use openpgp::types::{AEADAlgorithm, SymmetricAlgorithm};
use openpgp::{Cert, KeyHandle, Packet};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The custody record's file name, in the verifier's `keys` folder.
pub const RECORD_FILE: &str = "custody.json";
/// The most trustees a ceremony may have.
pub const MAX_TRUSTEES: usize = 32;
/// The largest share file read (a share file is under 1 KiB).
const MAX_SHARE_FILE: u64 = 16 * 1024;
/// The `format` of `keys/custody.json` this code writes and reads.
pub const RECORD_FORMAT: &str = "ballot-return custody record v1";
const SHARE_FORMAT: &str = "ballot-return custody share v1";
const COMMITMENT_CONTEXT: &[u8] = b"ballot-return custody share commitment v1\0";
/// Argon2id, RFC 9106's second recommended setting (t = 3, p = 4,
/// m = 2^16 KiB = 64 MiB), as RFC 9580 section 3.7.1.4 suggests.
const ARGON2: (u8, u8, u8) = (3, 4, 16);

/// The random secret that protects the election key and the witness key.
/// Never shown, never written: it exists only while being dealt or after
/// being rebuilt, and is wiped when dropped.
pub struct CustodySecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CustodySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustodySecret(..)")
    }
}

impl CustodySecret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Self {
        let mut s = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut s[..]);
        CustodySecret(s)
    }

    /// The secret as the passphrase of the election key and the witness key.
    pub fn password(&self) -> Password {
        let hex = Zeroizing::new(hex::encode(&self.0[..]));
        Password::from(hex.as_str())
    }
}

/// A trustee chosen at the ceremony.
#[derive(Debug, Clone)]
pub struct Trustee {
    /// The trustee's name, as the board will sign it.
    pub name: String,
    /// The folder of the trustee's own media, where the share is written.
    pub media: PathBuf,
}

/// One trustee in the custody record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedTrustee {
    /// The share's position, 1..=n.
    pub share: u8,
    /// The trustee's name.
    pub name: String,
    /// SHA-256 commitment to the share (hex).
    pub commitment: String,
    /// The share file's SHA-256 (hex), for the transcript.
    pub file_sha256: String,
}

/// The public custody record, kept in `keys/custody.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// [`RECORD_FORMAT`].
    pub format: String,
    /// The election key's fingerprint (hex).
    pub election_fingerprint: String,
    /// Random id of this custody (hex, 16 bytes), the same across re-sharings.
    pub ceremony: String,
    /// 1 at `init`, one more at each re-sharing.
    pub generation: u32,
    /// How many shares rebuild the secret (k).
    pub threshold: u8,
    /// When this generation was dealt (Unix seconds).
    pub dealt_at: u64,
    /// The trustees, by share position.
    pub trustees: Vec<RecordedTrustee>,
}

/// What is sealed in a share file.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Payload {
    format: String,
    election_fingerprint: String,
    ceremony: String,
    generation: u32,
    threshold: u8,
    trustees: u8,
    share: u8,
    name: String,
    /// The blahaj share (x then y bytes), base64.
    value: String,
}

/// Why a share was not accepted. Each names the share as far as it is known.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    /// No share file of this election on the media.
    #[error("no share of this election is on {0} (its file name starts with {1})")]
    NotFound(String, String),
    /// More than one share file of the current generation on the media.
    #[error("{0} holds more than one share of this election; give the trustee's own media")]
    Several(String),
    /// Only shares of an earlier generation.
    #[error("{file} is a share from before the trustees re-shared (generation {found}, now {current}): it opens nothing any more")]
    Replaced {
        /// The file.
        file: String,
        /// Its generation.
        found: u32,
        /// The current one.
        current: u32,
    },
    /// The sealed message did not open.
    #[error("share file {0} did not open: the passphrase is wrong, or the file was altered")]
    DidNotOpen(String),
    /// It opened but is not a share.
    #[error("share file {0} is not a custody share")]
    NotAShare(String),
    /// A share of another election.
    #[error("share file {file} belongs to another election (key {found}), not this one")]
    OtherElection {
        /// The file.
        file: String,
        /// The election it names.
        found: String,
    },
    /// A share of another ceremony for the same election key.
    #[error("share file {0} comes from another ceremony than the one recorded on this verifier")]
    OtherCeremony(String),
    /// Its position or name disagrees with the record, or its value with its commitment.
    #[error(
        "share {share} ({file}) does not match what was dealt to {name}: it was altered or forged"
    )]
    Altered {
        /// The file.
        file: String,
        /// The position it claims.
        share: u8,
        /// The trustee the record names for it.
        name: String,
    },
    /// The same share offered twice.
    #[error("share {0} was given twice; each trustee gives their own share once")]
    Twice(u8),
}

/// A share that passed every check.
pub struct OpenedShare {
    /// Its position.
    pub share: u8,
    /// The trustee's name.
    pub name: String,
    value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for OpenedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenedShare({}, {})", self.share, self.name)
    }
}

fn commitment(ceremony: &str, generation: u32, share: u8, value: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(COMMITMENT_CONTEXT);
    h.update(ceremony.as_bytes());
    h.update(generation.to_be_bytes());
    h.update([share]);
    h.update(value);
    hex::encode(h.finalize())
}

/// The share file's name for this election, generation and position.
pub fn share_file_name(fingerprint: &str, generation: u32, share: u8) -> String {
    format!(
        "{}g{generation}-share-{share}.pgp",
        share_file_prefix(fingerprint)
    )
}

fn share_file_prefix(fingerprint: &str) -> String {
    let short: String = fingerprint.chars().take(16).collect();
    format!("election-key-{}-", short.to_ascii_lowercase())
}

/// Seals `plaintext` under `password`: one SKESK v6 (Argon2id S2K, AES-256,
/// OCB) and one SEIPD v2 packet, as RFC 9580 describes password-encrypted
/// messages. Any OpenPGP v6 implementation opens it with the passphrase.
pub fn seal(plaintext: &[u8], password: &Password) -> Result<Vec<u8>> {
    let sym = SymmetricAlgorithm::AES256;
    let aead = AEADAlgorithm::OCB;
    let sk = SessionKey::new(sym.key_size()?)?;
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let (t, p, m) = ARGON2;
    let s2k = S2K::Argon2 { salt, t, p, m };
    let skesk = SKESK6::with_password(sym, sym, aead, s2k, &sk, password)?;
    let mut out = Vec::new();
    Packet::SKESK(skesk.into()).serialize(&mut out)?;
    {
        let message = Message::new(&mut out);
        let message = Encryptor::with_session_key(message, sym, sk)?
            .aead_algo(aead)
            .build()?;
        let mut w = LiteralWriter::new(message).build()?;
        w.write_all(plaintext)?;
        w.finalize()?;
    }
    Ok(out)
}

struct OpenHelper<'a> {
    password: &'a Password,
}

impl VerificationHelper for OpenHelper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }
    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let layers: Vec<_> = structure.into_iter().collect();
        match layers.as_slice() {
            [MessageLayer::Encryption {
                aead_algo: Some(_), ..
            }] => Ok(()),
            _ => Err(openpgp::anyhow::anyhow!(
                "a sealed file must be one AEAD encryption layer and nothing else"
            )),
        }
    }
}

impl DecryptionHelper for OpenHelper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        _sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let ([], [skesk]) = (pkesks, skesks) else {
            return Err(openpgp::anyhow::anyhow!(
                "a sealed file has exactly one password packet"
            ));
        };
        // Only the S2K this program writes: a file from elsewhere cannot make
        // the verifier spend unbounded time or memory deriving a key.
        match skesk {
            SKESK::V6(s) if matches!(s.s2k(), S2K::Argon2 { t, p, m, .. } if (*t, *p, *m) == ARGON2) =>
                {}
            _ => {
                return Err(openpgp::anyhow::anyhow!(
                    "the password packet is not the one this program writes"
                ))
            }
        }
        let (algo, sk) = skesk.decrypt(self.password)?;
        if decrypt(algo, &sk) {
            Ok(None)
        } else {
            Err(openpgp::anyhow::anyhow!("the passphrase does not open it"))
        }
    }
}

/// Opens what [`seal`] made. Any failure (wrong passphrase, altered bytes,
/// another kind of message) is one error: the caller names the file.
pub fn open(sealed: &[u8], password: &Password, max_len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let policy = openpgp::policy::StandardPolicy::new();
    let mut d = DecryptorBuilder::from_bytes(sealed)?.with_policy(
        &policy,
        None,
        OpenHelper { password },
    )?;
    let mut out = Zeroizing::new(Vec::new());
    (&mut d)
        .take(u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() > max_len || !d.message_processed() {
        bail!("the sealed file is too large or incomplete");
    }
    Ok(out)
}

/// Checks the board's choice before anything is created: 1 <= k <= n <=
/// [`MAX_TRUSTEES`], names given and distinct, one media folder per trustee,
/// each an existing folder.
pub fn check_plan(threshold: u8, trustees: &[Trustee]) -> Result<()> {
    let n = trustees.len();
    if n == 0 {
        bail!("name at least one trustee (--trustee \"NAME=MEDIA FOLDER\")");
    }
    if n > MAX_TRUSTEES {
        bail!("at most {MAX_TRUSTEES} trustees");
    }
    if threshold == 0 || usize::from(threshold) > n {
        bail!(
            "the threshold must be between 1 and the number of trustees ({n}); it is {threshold}"
        );
    }
    let mut names = std::collections::BTreeSet::new();
    let mut media = std::collections::BTreeSet::new();
    for t in trustees {
        let name = t.name.trim();
        if name.is_empty() || name.chars().any(char::is_control) || name.len() > 200 {
            bail!("a trustee's name must be 1 to 200 printable characters");
        }
        if !names.insert(name.to_owned()) {
            bail!("trustee {name} is named twice");
        }
        let real = std::fs::canonicalize(&t.media).with_context(|| {
            format!(
                "{name}'s media folder {} does not exist: is the drive mounted?",
                t.media.display()
            )
        })?;
        if !real.is_dir() {
            bail!("{name}'s media {} is not a folder", t.media.display());
        }
        if !media.insert(real.clone()) {
            bail!(
                "two trustees were given the same media ({}): each share goes on its trustee's own media",
                real.display()
            );
        }
    }
    Ok(())
}

/// Share files made in memory, to be written to the trustees' media.
#[derive(Debug)]
pub struct Dealt {
    /// The record to keep on the verifier.
    pub record: Record,
    /// Each trustee's file: where, and the sealed bytes.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// Splits `secret` into one share per trustee, any `threshold` of which
/// rebuild it, and seals each under its trustee's passphrase
/// (`passphrases[i]` for `trustees[i]`). Writes nothing.
#[allow(clippy::too_many_arguments)]
pub fn deal(
    secret: &CustodySecret,
    fingerprint: &str,
    ceremony: &str,
    generation: u32,
    threshold: u8,
    trustees: &[Trustee],
    passphrases: &[Password],
    now: u64,
) -> Result<Dealt> {
    check_plan(threshold, trustees)?;
    if passphrases.len() != trustees.len() {
        bail!("one passphrase per trustee is needed");
    }
    let n = u8::try_from(trustees.len()).context("too many trustees")?;
    let dealer = blahaj::Sharks(threshold).dealer(&secret.0[..]);
    let mut record = Record {
        format: RECORD_FORMAT.into(),
        election_fingerprint: fingerprint.to_owned(),
        ceremony: ceremony.to_owned(),
        generation,
        threshold,
        dealt_at: now,
        trustees: Vec::new(),
    };
    let mut files = Vec::new();
    for ((share, t), pw) in dealer.take(trustees.len()).zip(trustees).zip(passphrases) {
        let value = Zeroizing::new(Vec::from(&share));
        let position = *value.first().context("an empty share")?;
        debug_assert!(position >= 1 && position <= n);
        let payload = Payload {
            format: SHARE_FORMAT.into(),
            election_fingerprint: fingerprint.to_owned(),
            ceremony: ceremony.to_owned(),
            generation,
            threshold,
            trustees: n,
            share: position,
            name: t.name.trim().to_owned(),
            value: base64::Engine::encode(&base64::prelude::BASE64_STANDARD, &value[..]),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&payload)?);
        let sealed = seal(&plain, pw)?;
        record.trustees.push(RecordedTrustee {
            share: position,
            name: payload.name.clone(),
            commitment: commitment(ceremony, generation, position, &value),
            file_sha256: hex::encode(Sha256::digest(&sealed)),
        });
        files.push((
            t.media
                .join(share_file_name(fingerprint, generation, position)),
            sealed,
        ));
    }
    Ok(Dealt { record, files })
}

/// The share file of this election's current generation on `media`.
pub fn find_share(record: &Record, media: &Path) -> Result<PathBuf, ShareError> {
    let prefix = share_file_prefix(&record.election_fingerprint);
    let shown = shared::text::printable(&media.display().to_string()).into_owned();
    let current = format!("{prefix}g{}-", record.generation);
    let mut found = Vec::new();
    let mut older = None;
    let entries = std::fs::read_dir(media)
        .map_err(|_| ShareError::NotFound(shown.clone(), prefix.clone()))?;
    for e in entries.flatten().take(10_000) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&current) && name.ends_with(".pgp") {
            found.push(e.path());
        } else if let Some(rest) = name.strip_prefix(&prefix) {
            let gen = rest
                .strip_prefix('g')
                .and_then(|r| r.split('-').next())
                .and_then(|g| g.parse::<u32>().ok());
            if let Some(g) = gen {
                older = Some((shared::text::printable(&name).into_owned(), g));
            }
        }
    }
    match (found.len(), older) {
        (1, _) => Ok(found.remove(0)),
        (0, Some((file, found))) => Err(ShareError::Replaced {
            file,
            found,
            current: record.generation,
        }),
        (0, None) => Err(ShareError::NotFound(shown, prefix)),
        _ => Err(ShareError::Several(shown)),
    }
}

/// Opens and checks one share file against the record.
pub fn open_share(
    record: &Record,
    path: &Path,
    passphrase: &Password,
) -> Result<OpenedShare, ShareError> {
    let file = shared::text::printable(&path.display().to_string()).into_owned();
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SHARE_FILE).read_to_end(&mut raw))
        .map_err(|_| ShareError::DidNotOpen(file.clone()))?;
    let plain = open(&raw, passphrase, 4096).map_err(|_| ShareError::DidNotOpen(file.clone()))?;
    let payload: Payload =
        serde_json::from_slice(&plain).map_err(|_| ShareError::NotAShare(file.clone()))?;
    if payload.format != SHARE_FORMAT {
        return Err(ShareError::NotAShare(file));
    }
    if !payload
        .election_fingerprint
        .eq_ignore_ascii_case(&record.election_fingerprint)
    {
        return Err(ShareError::OtherElection {
            file,
            found: shared::text::printable(&payload.election_fingerprint).into_owned(),
        });
    }
    if payload.ceremony != record.ceremony {
        return Err(ShareError::OtherCeremony(file));
    }
    if payload.generation != record.generation {
        return Err(ShareError::Replaced {
            file,
            found: payload.generation,
            current: record.generation,
        });
    }
    let altered = |name: &str| ShareError::Altered {
        file: file.clone(),
        share: payload.share,
        name: shared::text::printable(name).into_owned(),
    };
    let Some(entry) = record.trustees.iter().find(|t| t.share == payload.share) else {
        return Err(altered(&payload.name));
    };
    let value = Zeroizing::new(
        base64::Engine::decode(&base64::prelude::BASE64_STANDARD, payload.value.as_bytes())
            .map_err(|_| altered(&entry.name))?,
    );
    let expected = commitment(&record.ceremony, record.generation, payload.share, &value);
    let same = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), entry.commitment.as_bytes());
    if !bool::from(same)
        || value.first() != Some(&payload.share)
        || payload.name != entry.name
        || payload.threshold != record.threshold
    {
        return Err(altered(&entry.name));
    }
    Ok(OpenedShare {
        share: payload.share,
        name: entry.name.clone(),
        value,
    })
}

/// Rebuilds the custody secret from at least `threshold` checked shares.
pub fn rebuild(record: &Record, shares: &[OpenedShare]) -> Result<CustodySecret> {
    let mut seen = std::collections::BTreeSet::new();
    for s in shares {
        if !seen.insert(s.share) {
            return Err(ShareError::Twice(s.share).into());
        }
    }
    if shares.len() < usize::from(record.threshold) {
        bail!(
            "{} of {} trustees' shares were given; {} are needed to open the election key",
            shares.len(),
            record.trustees.len(),
            record.threshold
        );
    }
    let parsed: Vec<blahaj::Share> = shares
        .iter()
        .map(|s| blahaj::Share::try_from(&s.value[..]))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("a share is malformed: {e}"))?;
    let secret = Zeroizing::new(
        blahaj::Sharks(record.threshold)
            .recover(&parsed)
            .map_err(|e| anyhow::anyhow!("the shares could not be combined: {e}"))?,
    );
    let bytes: [u8; 32] = secret[..]
        .try_into()
        .context("the rebuilt secret has the wrong length")?;
    Ok(CustodySecret(Zeroizing::new(bytes)))
}

/// Reads the custody record from the verifier's `keys` folder.
pub fn read_record(keys: &Path) -> Result<Record> {
    let path = keys.join(RECORD_FILE);
    let raw = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let r: Record = serde_json::from_slice(&raw).context("the custody record is damaged")?;
    if r.format != RECORD_FORMAT {
        bail!("{} is not a custody record", path.display());
    }
    Ok(r)
}

/// The ceremony transcript for the board to sign: who holds which share,
/// the fingerprints, and every check made.
pub fn transcript(record: &Record, title: &str, checks: &[String]) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(t, "ELECTION KEY CUSTODY: {title}");
    let _ = writeln!(
        t,
        "Election key fingerprint: {}",
        record.election_fingerprint
    );
    let _ = writeln!(
        t,
        "Ceremony: {}  generation {}",
        record.ceremony, record.generation
    );
    let _ = writeln!(
        t,
        "Threshold: any {} of these {} trustees open the election key; fewer learn nothing about it.",
        record.threshold,
        record.trustees.len()
    );
    if record.threshold == 1 {
        let _ = writeln!(
            t,
            "WARNING: a threshold of 1 lets any single trustee open the election key alone."
        );
    }
    let _ = writeln!(t, "Dealt at (Unix time): {}\n", record.dealt_at);
    for tr in &record.trustees {
        let _ = writeln!(t, "Share {}: {}", tr.share, tr.name);
        let _ = writeln!(t, "  share file SHA-256: {}", tr.file_sha256);
        let _ = writeln!(t, "  commitment:         {}", tr.commitment);
        let _ = writeln!(t, "  Trustee's signature: ______________________________\n");
    }
    let _ = writeln!(t, "Checks made:");
    for c in checks {
        let _ = writeln!(t, "  [x] {c}");
    }
    let _ = writeln!(t, "\nBoard members' signatures:\n");
    for _ in 0..2 {
        let _ = writeln!(
            t,
            "  Name: ____________________  Party: __________  Signature: ____________________\n"
        );
    }
    t
}

/// A new random ceremony id (hex).
fn new_ceremony_id() -> String {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    hex::encode(id)
}

/// Writes each trustee's share file (never over an existing file). If one
/// cannot be written, the ones already written are removed and the error
/// names the media.
fn write_shares(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut written: Vec<&Path> = Vec::new();
    for (path, data) in files {
        if let Err(e) = shared::files::write_new(path, data, 0o600) {
            for w in &written {
                let _ = std::fs::remove_file(w);
            }
            return Err(anyhow::anyhow!(e)).with_context(|| {
                format!(
                    "cannot write the share file {}: no share was kept and nothing else was created",
                    path.display()
                )
            });
        }
        written.push(path);
    }
    Ok(())
}

/// The checks the ceremony made, for the transcript.
fn checks_after_writing(dealt: &Dealt, passphrases: &[Password]) -> Result<Vec<String>> {
    let mut checks = Vec::new();
    let mut opened = Vec::new();
    for ((path, _), pw) in dealt.files.iter().zip(passphrases) {
        let s = open_share(&dealt.record, path, pw)
            .map_err(|e| anyhow::anyhow!("the share just written does not read back: {e}"))?;
        checks.push(format!(
            "share {} read back from {} with {}'s passphrase and matched its commitment",
            s.share,
            path.display(),
            s.name
        ));
        opened.push(s);
    }
    let k = usize::from(dealt.record.threshold);
    // Every window of k consecutive shares (cyclically) must rebuild the same
    // secret: one rebuild per trustee, not every subset.
    let n = opened.len();
    let first = rebuild(&dealt.record, opened.get(..k).context("too few shares")?)?;
    for start in 1..n {
        let subset: Vec<OpenedShare> = (0..k)
            .filter_map(|i| opened.get((start + i) % n))
            .map(|s| OpenedShare {
                share: s.share,
                name: s.name.clone(),
                value: s.value.clone(),
            })
            .collect();
        let again = rebuild(&dealt.record, &subset)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&first.0[..], &again.0[..])) {
            bail!("two sets of shares rebuild different secrets: the ceremony is void");
        }
    }
    checks.push(format!(
        "{n} sets of {k} shares each rebuilt the same secret"
    ));
    if k > 1 {
        let short = rebuild(&dealt.record, opened.get(..k - 1).unwrap_or_default());
        if short.is_ok() {
            bail!(
                "{} shares were enough to rebuild the secret: the ceremony is void",
                k - 1
            );
        }
        checks.push(format!("{} shares were refused as too few", k - 1));
    }
    Ok(checks)
}

/// `ballot-verifier init` with split custody: creates the election as
/// [`crate::ceremony::init`] does, with the keys protected by a new custody
/// secret dealt to `trustees` (`passphrases[i]` for `trustees[i]`), any
/// `threshold` of whom can open them. The share files go to the trustees'
/// media before anything is written on the verifier. Returns the election
/// key fingerprint and the transcript for the board to sign.
#[allow(clippy::too_many_arguments)]
pub fn init_with_trustees(
    home: &Path,
    gateway_media: &Path,
    out_media: &Path,
    params: &crate::ceremony::ElectionParams,
    roster_csv: &str,
    threshold: u8,
    trustees: &[Trustee],
    passphrases: &[Password],
    clock: &dyn shared::clock::Clock,
) -> Result<(String, String)> {
    check_plan(threshold, trustees)?;
    let secret = CustodySecret::generate();
    let ceremony = new_ceremony_id();
    let now = clock.now().0;
    let mut checks = Vec::new();
    let fpr = crate::ceremony::init_with(
        home,
        gateway_media,
        out_media,
        params,
        roster_csv,
        &secret.password(),
        clock,
        &mut |fpr| {
            let dealt = deal(
                &secret,
                fpr,
                &ceremony,
                1,
                threshold,
                trustees,
                passphrases,
                now,
            )?;
            write_shares(&dealt.files)?;
            checks = checks_after_writing(&dealt, passphrases)?;
            Ok(vec![(
                RECORD_FILE.to_owned(),
                serde_json::to_vec_pretty(&dealt.record)?,
            )])
        },
    )?;
    let record = read_record(&home.join("keys"))?;
    checks.push("the election key and the witness key were protected by the custody secret".into());
    Ok((fpr.clone(), transcript(&record, &params.title, &checks)))
}

/// Opens the election's keys with the trustees' shares: each `(media,
/// passphrase)` is one trustee's. Returns the password that opens the
/// keys (for [`crate::ceremony::load`] and processing).
pub fn open_keys(home: &Path, offered: &[(PathBuf, Password)]) -> Result<Password> {
    let record = read_record(&home.join("keys"))?;
    let mut shares = Vec::new();
    for (media, pw) in offered {
        let path = find_share(&record, media)?;
        shares.push(open_share(&record, &path, pw)?);
    }
    let secret = rebuild(&record, &shares)?;
    Ok(secret.password())
}

/// Re-shares the custody of the same election key: `offered` are k current
/// trustees' shares; the keys get a new custody secret, dealt to `trustees`
/// with `passphrases`, any `threshold` of whom open them. The election key
/// (and so its fingerprint, the manifest and the voters' instructions) does
/// not change. The old shares no longer open the keys on this verifier.
/// Returns the new transcript.
pub fn reshare(
    home: &Path,
    offered: &[(PathBuf, Password)],
    threshold: u8,
    trustees: &[Trustee],
    passphrases: &[Password],
    title: &str,
    now: u64,
) -> Result<String> {
    check_plan(threshold, trustees)?;
    let keys = home.join("keys");
    let record = read_record(&keys)?;
    let old = open_keys(home, offered)?;
    let cert =
        shared::pgp::read_secret_cert(&shared::files::read_secret(&keys.join("election.key"))?)?;
    let unlocked = shared::pgp::unlock(&cert, &old)?;
    let witness = crate::ceremony::open_witness(
        &shared::files::read_secret(&keys.join(crate::ceremony::WITNESS_KEY_FILE))?,
        &old,
    )?;
    let secret = CustodySecret::generate();
    let new_pw = secret.password();
    let relocked = shared::pgp::lock(&unlocked, &new_pw)?;
    let generation = record.generation + 1;
    let dealt = deal(
        &secret,
        &record.election_fingerprint,
        &record.ceremony,
        generation,
        threshold,
        trustees,
        passphrases,
        now,
    )?;
    // The new keys folder is made beside the old one and swapped in at once.
    let staging = home.join("keys.new");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    }
    shared::files::write_new(
        &staging.join("election.key"),
        &shared::pgp::secret_armored(&relocked)?,
        0o600,
    )?;
    shared::files::write_new(
        &staging.join(crate::ceremony::WITNESS_KEY_FILE),
        &crate::ceremony::seal_witness(&witness, &new_pw)?,
        0o600,
    )?;
    shared::files::write_new(
        &staging.join(RECORD_FILE),
        &serde_json::to_vec_pretty(&dealt.record)?,
        0o600,
    )?;
    write_shares(&dealt.files)?;
    let mut checks = checks_after_writing(&dealt, passphrases)?;
    checks.insert(
        0,
        format!(
            "{} shares of generation {} opened the election key {}",
            offered.len(),
            record.generation,
            record.election_fingerprint
        ),
    );
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &staging,
        rustix::fs::CWD,
        &keys,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .context("cannot swap in the new keys folder; the old custody still holds")?;
    std::fs::File::open(home)?.sync_all()?;
    // keys.new now holds the old generation's protected keys: remove them so
    // the old shares open nothing here.
    std::fs::remove_dir_all(&staging)?;
    checks.push(format!(
        "the keys of generation {} were replaced; the old shares open nothing on this verifier",
        record.generation
    ));
    Ok(transcript(&dealt.record, title, &checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pearson's chi-square statistic of `counts` against a uniform spread.
    fn chi_square(counts: &[u32; 256]) -> f64 {
        let total: u32 = counts.iter().sum();
        let expected = f64::from(total) / 256.0;
        counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn fewer_shares_than_the_threshold_say_nothing_about_the_secret() {
        // With k = 3, any two shares are uniformly spread whatever the
        // secret: for an all-zero and an all-0xff secret, share 1's byte,
        // share 2's byte and their sum (XOR) each pass a chi-square test
        // against uniform (255 degrees of freedom: mean 255, sd 22.6; the
        // bound 420 is 7 sd, so a correct scheme fails it about once in
        // 10^11 runs, and a scheme that leaked the secret fails it always).
        for secret in [[0u8; 32], [0xff; 32]] {
            let (mut a, mut b, mut x) = ([0u32; 256], [0u32; 256], [0u32; 256]);
            for _ in 0..8192 {
                let shares: Vec<Vec<u8>> = blahaj::Sharks(3)
                    .dealer(&secret)
                    .take(3)
                    .map(|s| Vec::from(&s))
                    .collect();
                a[usize::from(shares[0][5])] += 1;
                b[usize::from(shares[1][5])] += 1;
                x[usize::from(shares[0][5] ^ shares[1][5])] += 1;
            }
            for (what, c) in [("share 1", &a), ("share 2", &b), ("their sum", &x)] {
                let chi = chi_square(c);
                assert!(
                    chi < 420.0,
                    "{what} leans with secret {:x}: chi-square {chi}",
                    secret[0]
                );
            }
        }
        // And combining two of them as if they were enough gives a wrong
        // secret, never the real one.
        let secret = CustodySecret::generate();
        let shares: Vec<blahaj::Share> = blahaj::Sharks(3).dealer(&secret.0[..]).take(2).collect();
        let guess = blahaj::Sharks(2).recover(&shares).unwrap();
        assert_ne!(&guess[..], &secret.0[..]);
    }

    #[test]
    fn a_sealed_file_opens_only_with_its_passphrase_and_only_unaltered() {
        let pw = Password::from("a long passphrase here");
        let sealed = seal(b"the witness key", &pw).unwrap();
        assert_eq!(&open(&sealed, &pw, 100).unwrap()[..], b"the witness key");
        assert!(open(&sealed, &Password::from("another passphrase"), 100).is_err());
        for i in [0, sealed.len() / 2, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open(&bad, &pw, 100).is_err(), "byte {i}");
        }
        assert!(open(&sealed, &pw, 5).is_err(), "longer than allowed");
        // A password-encrypted message made with another S2K (sequoia's
        // default, iterated and salted) is refused before any derivation.
        let mut other = Vec::new();
        {
            let m = Message::new(&mut other);
            let m = Encryptor::with_passwords(m, Some(pw.clone()))
                .aead_algo(AEADAlgorithm::OCB)
                .build()
                .unwrap();
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(b"x").unwrap();
            w.finalize().unwrap();
        }
        assert!(open(&other, &pw, 100).is_err());
    }
}
