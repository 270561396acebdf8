//! OpenPGP (RFC 9580) for the election: the post-quantum election
//! certificate, encryption of ballots to it with SEIPD v2, a structure check
//! that needs no secret key, decryption, and detached signatures over
//! documents (manifest, roster, bundle manifest, status file).
//!
//! Specification: `docs/spec/election-encryption.md`.
//!
//! - Election key: a v6 certificate whose primary key is ML-DSA-65+Ed25519
//!   (certifies and signs documents) with one ML-KEM-768+X25519 subkey for
//!   encryption.
//! - Gateway transfer key: a v6 certificate whose primary key is
//!   ML-DSA-65+Ed25519 and signs transfer bundles.
//! - A ballot message is, at top level, exactly: one or more PKESK v6
//!   packets, each addressed (by fingerprint, not anonymously) to the
//!   election encryption subkey, then exactly one SEIPD v2 packet, then
//!   nothing. Inside: one literal data packet. No compression, no
//!   signatures, no symmetric-key (password) packets.
//!
//! Why one file of ~830 lines: about 660 are the OpenPGP profile (key, encryption, the
//! secret-free structure check, decryption), which must be read as one set of rules; the rest are
//! tests. The next split would put the structure check in its own file.

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{Password, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationHelper,
};
use openpgp::parse::{Dearmor, PacketParserBuilder, PacketParserResult, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::types::{AEADAlgorithm, KeyFlags, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle, Packet};
use std::io::{Read, Write};
use thiserror::Error;

/// The largest certificate read (a PQC certificate is a few kilobytes).
pub const MAX_CERT_LEN: usize = 64 * 1024;
/// The largest detached signature read.
pub const MAX_SIGNATURE_LEN: usize = 16 * 1024;

fn policy() -> StandardPolicy<'static> {
    StandardPolicy::new()
}

/// Why an OpenPGP operation or check failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PgpError {
    /// Larger than the caller's limit.
    #[error("the OpenPGP data is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Not binary OpenPGP (armored, or not OpenPGP at all).
    #[error("not a binary OpenPGP message: {0}")]
    NotOpenPgp(String),
    /// A packet that has no place in a ballot message.
    #[error("unexpected {0} packet in the message")]
    UnexpectedPacket(String),
    /// A message encrypted with a password (SKESK).
    #[error(
        "the message is encrypted with a password; it must be encrypted to the election key only"
    )]
    PasswordEncrypted,
    /// A PKESK for another key.
    #[error("the message is encrypted to a key other than the election key ({0})")]
    WrongRecipient(String),
    /// A PKESK without a recipient fingerprint.
    #[error("the message hides its recipient; it must name the election key")]
    AnonymousRecipient,
    /// A version 3 PKESK (which goes with SEIPD v1).
    #[error(
        "the message uses a version 3 session key packet; SEIPD v2 with v6 packets is required"
    )]
    OldPkesk,
    /// SEIPD version 1 (no AEAD).
    #[error("the message uses SEIPD version 1; SEIPD version 2 (AEAD) is required")]
    SeipdV1,
    /// A symmetric algorithm, AEAD mode or chunk size outside the accepted
    /// set ([`ACCEPTED_SYMMETRIC`], [`ACCEPTED_AEAD`], chunk-size octets up to
    /// [`MAX_CHUNK_OCTET`]).
    #[error("the ballot's encryption is not accepted: {0}")]
    Cipher(String),
    /// No PKESK, no encrypted data, or more than one encrypted container.
    #[error("the message structure is wrong: {0}")]
    Structure(&'static str),
    /// The session-key packet is not one the election key alone can open:
    /// more than one, another algorithm, or an encrypted key of the wrong
    /// length.
    #[error("the ballot's session key is not for the election key alone: {0}")]
    SessionKey(String),
    /// The certificate is not usable as the election or transfer key.
    #[error("the certificate is not usable: {0}")]
    BadCert(String),
    /// The secret key is missing or locked.
    #[error("the secret key is not available: {0}")]
    NoSecret(String),
    /// Decryption failed (wrong key, or tampered message).
    #[error("the ballot cannot be decrypted: {0}")]
    Decrypt(String),
    /// A signature that does not verify with the pinned certificate.
    #[error("the signature does not verify with the pinned key: {0}")]
    BadSignature(String),
    /// Anything else sequoia reported.
    #[error("OpenPGP error: {0}")]
    Other(String),
}

/// The symmetric algorithms a ballot's SEIPD v2 packet may use: AES, as
/// RFC 9580 requires of every implementation (AES-128) or recommends.
pub const ACCEPTED_SYMMETRIC: &[SymmetricAlgorithm] = &[
    SymmetricAlgorithm::AES128,
    SymmetricAlgorithm::AES192,
    SymmetricAlgorithm::AES256,
];

/// The AEAD modes a ballot's SEIPD v2 packet may use: the three RFC 9580
/// defines (OCB is the one every implementation must have).
pub const ACCEPTED_AEAD: &[AEADAlgorithm] =
    &[AEADAlgorithm::OCB, AEADAlgorithm::EAX, AEADAlgorithm::GCM];

/// The largest accepted chunk-size octet: chunks of 2^(16+6) bytes (4 MiB),
/// the most RFC 9580 (section 5.13.2) lets a writer use. Every smaller octet,
/// down to 0 (64-byte chunks), is accepted, as the RFC requires of readers.
pub const MAX_CHUNK_OCTET: u8 = 16;

/// Refuses a cipher or AEAD mode outside the accepted set, naming it.
fn check_cipher(sym: SymmetricAlgorithm, aead: AEADAlgorithm) -> Result<(), PgpError> {
    if !ACCEPTED_SYMMETRIC.contains(&sym) {
        return Err(PgpError::Cipher(format!(
            "it uses the {sym} cipher; ballots must use AES-128, AES-192 or AES-256"
        )));
    }
    if !ACCEPTED_AEAD.contains(&aead) {
        return Err(PgpError::Cipher(format!(
            "it uses the {aead} AEAD mode; ballots must use OCB, EAX or GCM"
        )));
    }
    Ok(())
}

fn other(e: impl std::fmt::Display) -> PgpError {
    PgpError::Other(e.to_string())
}

/// A certificate's fingerprint as 64 uppercase hex digits (v6).
pub fn fingerprint_hex(cert: &Cert) -> String {
    cert.fingerprint().to_hex()
}

/// Reads a fingerprint as people copy it from printed instructions:
/// hexadecimal, in any case, with spaces allowed between groups; 64 digits
/// (OpenPGP v6) or 40 (v4). Returns it in the canonical form (upper case,
/// no spaces) or says what is wrong.
pub fn parse_fingerprint(text: &str) -> Result<String, String> {
    let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a fingerprint has only the digits 0-9 and letters A-F".into());
    }
    if hex.len() != 64 && hex.len() != 40 {
        return Err(format!(
            "a fingerprint has 64 hexadecimal digits; this one has {}",
            hex.len()
        ));
    }
    Ok(hex.to_ascii_uppercase())
}

/// Parses a public certificate (binary or armored) of at most
/// [`MAX_CERT_LEN`] bytes; refuses secret key material and keyrings.
pub fn read_public_cert(bytes: &[u8]) -> Result<Cert, PgpError> {
    if bytes.len() > MAX_CERT_LEN {
        return Err(PgpError::TooLarge(MAX_CERT_LEN));
    }
    let cert = Cert::from_bytes(bytes).map_err(|e| PgpError::BadCert(e.to_string()))?;
    if cert.is_tsk() {
        return Err(PgpError::BadCert(
            "it contains secret key material; give the public certificate".into(),
        ));
    }
    Ok(cert)
}

/// Parses a certificate with its secret keys (binary or armored).
pub fn read_secret_cert(bytes: &[u8]) -> Result<Cert, PgpError> {
    let cert = Cert::from_bytes(bytes).map_err(|e| PgpError::BadCert(e.to_string()))?;
    if !cert.is_tsk() {
        return Err(PgpError::NoSecret("the file holds no secret key".into()));
    }
    Ok(cert)
}

/// The public certificate, binary.
pub fn public_bytes(cert: &Cert) -> Result<Vec<u8>, PgpError> {
    cert.to_vec().map_err(other)
}

/// The certificate with its secret keys, armored. Store only in a 0600 file.
pub fn secret_armored(cert: &Cert) -> Result<zeroize::Zeroizing<Vec<u8>>, PgpError> {
    Ok(zeroize::Zeroizing::new(
        cert.as_tsk().armored().to_vec().map_err(other)?,
    ))
}

/// The public certificate, armored.
pub fn public_armored(cert: &Cert) -> Result<Vec<u8>, PgpError> {
    cert.armored().to_vec().map_err(other)
}

/// Generates the election key: a v6 ML-DSA-65+Ed25519 primary key that
/// certifies and signs, with an ML-KEM-768+X25519 encryption subkey. With
/// a password, the secret keys are protected by it (Argon2 S2K for v6 keys).
pub fn generate_election_key(user_id: &str, password: Option<Password>) -> Result<Cert, PgpError> {
    let (cert, _revocation) = CertBuilder::new()
        .set_profile(openpgp::Profile::RFC9580)
        .map_err(other)?
        .set_cipher_suite(CipherSuite::MLDSA65_Ed25519)
        .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
        .add_userid(user_id)
        .add_subkey(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .set_password(password)
        .generate()
        .map_err(other)?;
    Ok(cert)
}

/// Generates a signing-only v6 ML-DSA-65+Ed25519 key (the gateway's
/// transfer key).
pub fn generate_signing_key(user_id: &str, password: Option<Password>) -> Result<Cert, PgpError> {
    let (cert, _revocation) = CertBuilder::new()
        .set_profile(openpgp::Profile::RFC9580)
        .map_err(other)?
        .set_cipher_suite(CipherSuite::MLDSA65_Ed25519)
        .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
        .add_userid(user_id)
        .set_password(password)
        .generate()
        .map_err(other)?;
    Ok(cert)
}

/// The election certificate's valid encryption subkeys (storage and
/// transport encryption, alive, not revoked).
type EncryptionKey<'a> = sequoia_openpgp::cert::amalgamation::key::ValidSubordinateKeyAmalgamation<
    'a,
    sequoia_openpgp::packet::key::PublicParts,
>;

fn encryption_keys<'a>(
    vc: &'a sequoia_openpgp::cert::ValidCert<'a>,
) -> Result<Vec<EncryptionKey<'a>>, PgpError> {
    let keys: Vec<_> = vc
        .keys()
        .subkeys()
        .alive()
        .revoked(false)
        .for_storage_encryption()
        .for_transport_encryption()
        .collect();
    if keys.is_empty() {
        return Err(PgpError::BadCert("no valid encryption subkey".into()));
    }
    Ok(keys)
}

/// The election certificate's encryption subkey fingerprints (valid now,
/// for storage or transport encryption).
pub fn encryption_subkeys(cert: &Cert) -> Result<Vec<Fingerprint>, PgpError> {
    let p = policy();
    let vc = cert
        .with_policy(&p, None)
        .map_err(|e| PgpError::BadCert(e.to_string()))?;
    Ok(encryption_keys(&vc)?
        .iter()
        .map(|k| k.key().fingerprint())
        .collect())
}

/// Encrypts `plaintext` to the election certificate (SEIPD v2, one literal
/// data packet, binary).
pub fn encrypt(cert: &Cert, plaintext: &[u8]) -> Result<Vec<u8>, PgpError> {
    encrypt_with(cert, plaintext.len(), |message| {
        let mut w = LiteralWriter::new(message).build().map_err(other)?;
        w.write_all(plaintext).map_err(other)?;
        w.finalize().map_err(other)
    })
}

/// Sets up SEIPD v2 encryption to the election certificate's encryption
/// subkeys and lets `write` fill it.
fn encrypt_with(
    cert: &Cert,
    size_hint: usize,
    write: impl FnOnce(Message<'_>) -> Result<(), PgpError>,
) -> Result<Vec<u8>, PgpError> {
    let p = policy();
    let vc = cert
        .with_policy(&p, None)
        .map_err(|e| PgpError::BadCert(e.to_string()))?;
    let recipients = encryption_keys(&vc)?;
    let mut out = Vec::with_capacity(size_hint + 4096);
    {
        let message = Message::new(&mut out);
        let message = Encryptor::for_recipients(message, recipients)
            .build()
            .map_err(other)?;
        write(message)?;
    }
    Ok(out)
}

/// Encrypts `packets`, an already-formed OpenPGP packet stream, to the
/// election certificate as the content of a SEIPD v2 packet, without the
/// literal-data wrapper [`encrypt`] adds. Not for ballots: tests and fuzz
/// targets use it to put hostile packets (compression bombs, deep nesting,
/// bad lengths) where only the election key's holder can see them.
pub fn encrypt_packets(cert: &Cert, packets: &[u8]) -> Result<Vec<u8>, PgpError> {
    encrypt_with(cert, packets.len(), |mut message| {
        message.write_all(packets).map_err(other)?;
        message.finalize().map_err(other)
    })
}

/// What the structure check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The number of PKESK packets (all for the election subkey).
    pub pkesks: usize,
    /// The symmetric algorithm of the SEIPD v2 packet.
    pub symmetric: String,
    /// The AEAD mode.
    pub aead: String,
}

/// Checks a ballot message without any secret key: its only recipients are
/// `subkeys` (the election encryption subkeys), it is one SEIPD v2 packet,
/// and nothing else is in the stream. Messages larger than `max_len` are
/// refused before parsing.
pub fn check_structure(
    msg: &[u8],
    subkeys: &[Fingerprint],
    max_len: usize,
) -> Result<Envelope, PgpError> {
    if msg.len() > max_len {
        return Err(PgpError::TooLarge(max_len));
    }
    // A binary OpenPGP packet header has its top bit set; armor is text.
    if msg.first().is_none_or(|b| b & 0x80 == 0) {
        return Err(PgpError::NotOpenPgp(
            "it does not start with an OpenPGP packet".into(),
        ));
    }
    let mut ppr = PacketParserBuilder::from_bytes(msg)
        .map_err(|e| PgpError::NotOpenPgp(e.to_string()))?
        .dearmor(Dearmor::Disabled)
        .build()
        .map_err(|e| PgpError::NotOpenPgp(e.to_string()))?;
    let mut pkesks = 0;
    let mut wrapped_len = 0usize;
    let mut old_pkesk = false;
    let mut seipd: Option<(String, String)> = None;
    while let PacketParserResult::Some(pp) = ppr {
        if seipd.is_some() {
            return Err(PgpError::Structure("data follows the encrypted packet"));
        }
        match &pp.packet {
            Packet::PKESK(PKESK::V6(p)) => {
                let r = p.recipient().ok_or(PgpError::AnonymousRecipient)?;
                if !subkeys.iter().any(|k| k == r) {
                    return Err(PgpError::WrongRecipient(r.to_hex()));
                }
                pkesks += 1;
                if pkesks > 1 {
                    // A second packet, whatever its label, could carry the
                    // session key to someone else (a vote buyer).
                    return Err(PgpError::SessionKey(
                        "more than one session key packet; a ballot is encrypted to the election key alone".into(),
                    ));
                }
                if p.pk_algo() != openpgp::types::PublicKeyAlgorithm::MLKEM768_X25519 {
                    return Err(PgpError::SessionKey(format!(
                        "its session key packet is for {}, not the election key's ML-KEM-768+X25519",
                        p.pk_algo()
                    )));
                }
                match p.esk() {
                    openpgp::crypto::mpi::Ciphertext::MLKEM768_X25519 { esk, .. } => {
                        wrapped_len = esk.len();
                    }
                    _ => {
                        return Err(PgpError::SessionKey(
                            "its session key packet is not an ML-KEM-768+X25519 ciphertext".into(),
                        ))
                    }
                }
            }
            // Reported after the container is seen: SEIPD v1 is the more
            // useful message when the whole envelope is the old kind.
            Packet::PKESK(_) => old_pkesk = true,
            Packet::SKESK(_) => return Err(PgpError::PasswordEncrypted),
            Packet::SEIP(openpgp::packet::SEIP::V2(s)) => {
                if old_pkesk {
                    return Err(PgpError::OldPkesk);
                }
                if pkesks == 0 {
                    return Err(PgpError::Structure(
                        "no session key packet for the election key",
                    ));
                }
                check_cipher(s.symmetric_algo(), s.aead())?;
                // The session key, wrapped with AES key wrap (RFC 3394),
                // is 8 bytes longer than the cipher's key.
                let want = s.symmetric_algo().key_size().ok().map(|k| k + 8);
                if want != Some(wrapped_len) {
                    return Err(PgpError::SessionKey(format!(
                        "its wrapped session key is {wrapped_len} bytes, not the {} a {} key wraps to",
                        want.map_or_else(|| "?".into(), |w| w.to_string()),
                        s.symmetric_algo()
                    )));
                }
                seipd = Some((s.symmetric_algo().to_string(), s.aead().to_string()));
            }
            Packet::SEIP(_) => return Err(PgpError::SeipdV1),
            // Sequoia leaves a SEIPD v2 packet it cannot set up (a
            // chunk-size octet over 16, say) as unknown.
            Packet::Unknown(u) if u.tag() == openpgp::packet::Tag::SEIP => {
                return Err(PgpError::Cipher(format!(
                    "its encrypted packet cannot be read ({}); chunk-size octets may be 0 to {MAX_CHUNK_OCTET}",
                    u.error()
                )))
            }
            Packet::Unknown(u) => {
                return Err(PgpError::NotOpenPgp(format!(
                    "unparseable {} packet: {}",
                    u.tag(),
                    u.error()
                )))
            }
            other_packet => return Err(PgpError::UnexpectedPacket(other_packet.tag().to_string())),
        }
        // `next` skips the encrypted body without decrypting it.
        let (_, next) = pp.next().map_err(|e| PgpError::NotOpenPgp(e.to_string()))?;
        ppr = next;
    }
    if let PacketParserResult::EOF(eof) = &ppr {
        if let Err(e) = eof.is_message() {
            return Err(PgpError::NotOpenPgp(e.to_string()));
        }
    }
    if old_pkesk {
        return Err(PgpError::OldPkesk);
    }
    let (symmetric, aead) = seipd.ok_or(PgpError::Structure("no encrypted data"))?;
    Ok(Envelope {
        pkesks,
        symmetric,
        aead,
    })
}

struct DecryptHelper<'a> {
    cert: &'a Cert,
    password: Option<&'a Password>,
    error: Option<String>,
}

impl VerificationHelper for DecryptHelper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        // Exactly one encryption layer, with AEAD, and nothing else: no
        // compression and no signatures inside a ballot ciphertext.
        let layers: Vec<_> = structure.into_iter().collect();
        match layers.as_slice() {
            [MessageLayer::Encryption {
                sym_algo,
                aead_algo: Some(aead),
            }] => check_cipher(*sym_algo, *aead).map_err(|e| openpgp::anyhow::anyhow!(e)),
            _ => Err(anyhow_error(
                "the decrypted message has layers other than one AEAD encryption",
            )),
        }
    }
}

fn anyhow_error(msg: &'static str) -> openpgp::anyhow::Error {
    openpgp::anyhow::anyhow!(msg)
}

impl DecryptionHelper for DecryptHelper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        if !skesks.is_empty() {
            return Err(anyhow_error("password-encrypted messages are not accepted"));
        }
        let p = policy();
        let vc = self.cert.with_policy(&p, None)?;
        for ka in vc
            .keys()
            .subkeys()
            .for_storage_encryption()
            .for_transport_encryption()
            .secret()
        {
            let mut key = ka.key().clone();
            if key.secret().is_encrypted() {
                let Some(pw) = self.password else {
                    self.error = Some(
                        "the election key is protected by a passphrase; none was given".into(),
                    );
                    continue;
                };
                key = match key.decrypt_secret(pw) {
                    Ok(k) => k,
                    Err(_) => {
                        self.error = Some("the passphrase does not unlock the election key".into());
                        continue;
                    }
                };
            }
            let mut keypair = key.into_keypair()?;
            let fp = ka.key().fingerprint();
            for pkesk in pkesks {
                let for_us = match pkesk {
                    PKESK::V6(p) => p.recipient() == Some(&fp),
                    _ => false,
                };
                if !for_us {
                    continue;
                }
                if let Some((algo, sk)) = pkesk.decrypt(&mut keypair, sym_algo) {
                    if decrypt(algo, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow_error(
            "no session key packet could be decrypted with the election key",
        ))
    }
}

/// Decrypts a ballot message with the election key (which must hold its
/// secret encryption subkey; `password` unlocks it if it is protected).
/// The plaintext is returned only after the whole message, including its
/// final authentication tag, has been checked. Plaintexts over `max_len`
/// bytes are refused.
pub fn decrypt(
    msg: &[u8],
    election_key: &Cert,
    password: Option<&Password>,
    max_len: usize,
) -> Result<Vec<u8>, PgpError> {
    // The gateway checked the envelope, but the verifier does not take its
    // word: the same check before any secret-key operation. The recipients
    // are matched against the key's subkey fingerprints as stored (no
    // policy evaluation per ballot); which of them may decrypt is the
    // helper's policy check below.
    let subkeys: Vec<Fingerprint> = election_key
        .keys()
        .subkeys()
        .map(|k| k.key().fingerprint())
        .collect();
    check_structure(msg, &subkeys, usize::MAX)?;
    let p = policy();
    let helper = DecryptHelper {
        cert: election_key,
        password,
        error: None,
    };
    let mut decryptor = DecryptorBuilder::from_bytes(msg)
        .map_err(|e| PgpError::NotOpenPgp(e.to_string()))?
        .with_policy(&p, None, helper)
        .map_err(|e| PgpError::Decrypt(e.to_string()))?;
    // The plaintext is a little shorter than the message: one allocation
    // instead of a doubling series of them.
    let mut out = Vec::with_capacity(msg.len().min(max_len.saturating_add(1)));
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    (&mut decryptor)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| PgpError::Decrypt(e.to_string()))?;
    if out.len() > max_len {
        return Err(PgpError::TooLarge(max_len));
    }
    if !decryptor.message_processed() {
        return Err(PgpError::Decrypt(
            "the message was not completely processed".into(),
        ));
    }
    Ok(out)
}

/// A copy of `cert` whose secret keys are decrypted in memory, so a long
/// run (processing thousands of ballots) pays the deliberately slow Argon2
/// passphrase derivation once, not once per ballot. Keep the copy only for
/// the run; it is never written anywhere.
pub fn unlock(cert: &Cert, password: &Password) -> Result<Cert, PgpError> {
    let mut packets: Vec<Packet> = Vec::new();
    for ka in cert.keys().secret() {
        if !ka.key().secret().is_encrypted() {
            continue;
        }
        let k = ka.key().clone().decrypt_secret(password).map_err(|_| {
            PgpError::NoSecret("the passphrase does not unlock the election key".into())
        })?;
        if ka.primary() {
            packets.push(k.role_into_primary().into());
        } else {
            packets.push(k.role_into_subordinate().into());
        }
    }
    let (unlocked, _) = cert.clone().insert_packets(packets).map_err(other)?;
    Ok(unlocked)
}

/// A copy of `cert` (whose secret keys are unlocked, see [`unlock`]) with
/// every secret key protected by `password` instead: the same key, the
/// same fingerprint, a new passphrase.
pub fn lock(cert: &Cert, password: &Password) -> Result<Cert, PgpError> {
    let mut packets: Vec<Packet> = Vec::new();
    for ka in cert.keys().secret() {
        if ka.key().secret().is_encrypted() {
            return Err(PgpError::NoSecret(
                "a secret key is still locked; unlock it first".into(),
            ));
        }
        let k = ka.key().clone().encrypt_secret(password).map_err(other)?;
        if ka.primary() {
            packets.push(k.role_into_primary().into());
        } else {
            packets.push(k.role_into_subordinate().into());
        }
    }
    let (locked, _) = cert.clone().insert_packets(packets).map_err(other)?;
    Ok(locked)
}

/// The keypair that signs documents: the certificate's signing-capable key.
fn signing_keypair(
    cert: &Cert,
    password: Option<&Password>,
) -> Result<openpgp::crypto::KeyPair, PgpError> {
    let p = policy();
    let vc = cert
        .with_policy(&p, None)
        .map_err(|e| PgpError::BadCert(e.to_string()))?;
    let ka = vc
        .keys()
        .alive()
        .revoked(false)
        .for_signing()
        .secret()
        .next()
        .ok_or_else(|| PgpError::NoSecret("no secret signing key".into()))?;
    let mut key = ka.key().clone();
    if key.secret().is_encrypted() {
        let pw = password.ok_or_else(|| {
            PgpError::NoSecret("the key is protected by a passphrase; none was given".into())
        })?;
        key = key
            .decrypt_secret(pw)
            .map_err(|_| PgpError::NoSecret("the passphrase does not unlock the key".into()))?;
    }
    key.into_keypair()
        .map_err(|e| PgpError::NoSecret(e.to_string()))
}

/// A detached signature (binary) over `data`.
pub fn sign_detached(
    signer: &Cert,
    password: Option<&Password>,
    data: &[u8],
) -> Result<Vec<u8>, PgpError> {
    sign_detached_reader(signer, password, data)
}

/// A detached signature (binary) over everything `data` yields.
pub fn sign_detached_reader(
    signer: &Cert,
    password: Option<&Password>,
    mut data: impl Read,
) -> Result<Vec<u8>, PgpError> {
    let keypair = signing_keypair(signer, password)?;
    let mut out = Vec::new();
    {
        let message = Message::new(&mut out);
        let mut s = Signer::new(message, keypair)
            .map_err(other)?
            .detached()
            .build()
            .map_err(other)?;
        std::io::copy(&mut data, &mut s).map_err(other)?;
        s.finalize().map_err(other)?;
    }
    Ok(out)
}

struct VerifyHelper<'a> {
    cert: &'a Cert,
}

impl VerificationHelper for VerifyHelper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(vec![self.cert.clone()])
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut good = false;
        for layer in structure {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    for r in results {
                        match r {
                            Ok(g) if g.ka.cert().fingerprint() == self.cert.fingerprint() => {
                                good = true
                            }
                            Ok(_) => return Err(anyhow_error("signed by another key")),
                            Err(e) => return Err(openpgp::anyhow::anyhow!("{e}")),
                        }
                    }
                }
                _ => return Err(anyhow_error("unexpected layer in a detached signature")),
            }
        }
        if good {
            Ok(())
        } else {
            Err(anyhow_error("no valid signature by the pinned key"))
        }
    }
}

/// Verifies a detached signature over `data` by `cert` (a pinned public
/// certificate).
pub fn verify_detached(cert: &Cert, data: &[u8], signature: &[u8]) -> Result<(), PgpError> {
    verify_detached_reader(cert, data, signature)
}

/// Verifies a detached signature over everything `data` yields, streaming.
pub fn verify_detached_reader(
    cert: &Cert,
    data: impl Read + Send + Sync,
    signature: &[u8],
) -> Result<(), PgpError> {
    if signature.len() > MAX_SIGNATURE_LEN {
        return Err(PgpError::TooLarge(MAX_SIGNATURE_LEN));
    }
    let p = policy();
    let mut v = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(|e| PgpError::BadSignature(e.to_string()))?
        .with_policy(&p, None, VerifyHelper { cert })
        .map_err(|e| PgpError::BadSignature(e.to_string()))?;
    v.verify_reader(data)
        .map_err(|e| PgpError::BadSignature(e.to_string()))
}

/// Serializes a packet sequence (for tests that build hostile messages).
pub fn serialize_packets(packets: &[Packet]) -> Result<Vec<u8>, PgpError> {
    let mut out = Vec::new();
    for p in packets {
        p.serialize(&mut out).map_err(other)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election() -> &'static Cert {
        static C: std::sync::OnceLock<Cert> = std::sync::OnceLock::new();
        C.get_or_init(|| {
            generate_election_key("Test County Election 2026 <election@example.gov>", None).unwrap()
        })
    }

    #[test]
    fn the_election_key_is_v6_and_post_quantum() {
        let c = election();
        assert_eq!(c.primary_key().key().version(), 6);
        assert_eq!(
            c.primary_key().key().pk_algo(),
            openpgp::types::PublicKeyAlgorithm::MLDSA65_Ed25519
        );
        let subs: Vec<_> = c.keys().subkeys().collect();
        assert_eq!(subs.len(), 1);
        assert_eq!(
            subs[0].key().pk_algo(),
            openpgp::types::PublicKeyAlgorithm::MLKEM768_X25519
        );
        assert_eq!(fingerprint_hex(c).len(), 64);
    }

    #[test]
    fn encrypts_checks_and_decrypts() {
        let c = election();
        let subkeys = encryption_subkeys(c).unwrap();
        let msg = encrypt(&c.clone().strip_secret_key_material(), b"signed ballot").unwrap();
        let env = check_structure(&msg, &subkeys, 1 << 20).unwrap();
        assert_eq!(env.pkesks, 1);
        // What the spec says ballot-return writes.
        assert_eq!(
            (env.symmetric.as_str(), env.aead.as_str()),
            ("AES-256", "OCB")
        );
        let at = tests::seipd_body_offset(&msg);
        assert_eq!(msg[at + 3], 6, "chunk-size octet (4 KiB chunks)");
        assert_eq!(decrypt(&msg, c, None, 1 << 20).unwrap(), b"signed ballot");
    }

    #[test]
    fn refuses_a_message_for_another_key() {
        let other_key = generate_election_key("Someone else", None).unwrap();
        let msg = encrypt(&other_key, b"x").unwrap();
        let subkeys = encryption_subkeys(election()).unwrap();
        assert!(matches!(
            check_structure(&msg, &subkeys, 1 << 20),
            Err(PgpError::WrongRecipient(_))
        ));
        // The verifier checks the envelope itself before trying its key.
        assert!(matches!(
            decrypt(&msg, election(), None, 1 << 20),
            Err(PgpError::WrongRecipient(_))
        ));
    }

    #[test]
    fn refuses_a_tampered_ciphertext() {
        let msg = encrypt(election(), b"signed ballot").unwrap();
        let mut bad = msg.clone();
        let last = bad.len() - 20;
        bad[last] ^= 1;
        assert!(decrypt(&bad, election(), None, 1 << 20).is_err());
    }

    #[test]
    fn refuses_junk_armor_and_trailing_packets() {
        let subkeys = encryption_subkeys(election()).unwrap();
        assert!(matches!(
            check_structure(b"hello", &subkeys, 1 << 20),
            Err(PgpError::NotOpenPgp(_))
        ));
        assert!(matches!(
            check_structure(b"", &subkeys, 1 << 20),
            Err(PgpError::NotOpenPgp(_))
        ));
        let msg = encrypt(election(), b"x").unwrap();
        let armored = {
            let mut w =
                openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Message).unwrap();
            w.write_all(&msg).unwrap();
            w.finalize().unwrap()
        };
        assert!(matches!(
            check_structure(&armored, &subkeys, 1 << 20),
            Err(PgpError::NotOpenPgp(_))
        ));
        let mut twice = msg.clone();
        twice.extend_from_slice(&msg);
        assert!(check_structure(&twice, &subkeys, 1 << 20).is_err());
        assert!(matches!(
            check_structure(&msg, &subkeys, 10),
            Err(PgpError::TooLarge(10))
        ));
        assert!(check_structure(&msg[..msg.len() - 1], &subkeys, 1 << 20).is_err());
    }

    #[test]
    fn refuses_seipd_v1_and_password_encryption() {
        let subkeys = encryption_subkeys(election()).unwrap();
        // A v4 recipient without the SEIPD v2 feature makes sequoia fall
        // back to PKESK v3 + SEIPD v1.
        let (v4, _) = CertBuilder::general_purpose(Some("old style"))
            .set_profile(openpgp::Profile::RFC4880)
            .unwrap()
            .set_features(openpgp::types::Features::empty().set_seipdv1())
            .unwrap()
            .generate()
            .unwrap();
        let msg = encrypt(&v4, b"x").unwrap();
        let r = check_structure(&msg, &subkeys, 1 << 20);
        assert!(matches!(r, Err(PgpError::SeipdV1)), "{r:?}");
        let mut out = Vec::new();
        {
            let m = Message::new(&mut out);
            let m = Encryptor::with_passwords(m, vec![Password::from("secret")])
                .build()
                .unwrap();
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(b"x").unwrap();
            w.finalize().unwrap();
        }
        assert!(matches!(
            check_structure(&out, &subkeys, 1 << 20),
            Err(PgpError::PasswordEncrypted)
        ));
        assert!(decrypt(&out, election(), None, 100).is_err());
    }

    /// Encrypts `plaintext` to the election key with the given cipher.
    fn encrypt_using(sym: SymmetricAlgorithm, aead: AEADAlgorithm, plaintext: &[u8]) -> Vec<u8> {
        let p = policy();
        let vc = election().with_policy(&p, None).unwrap();
        let recipients = encryption_keys(&vc).unwrap();
        let mut out = Vec::new();
        {
            let m = Message::new(&mut out);
            let m = Encryptor::for_recipients(m, recipients)
                .symmetric_algo(sym)
                .aead_algo(aead)
                .build()
                .unwrap();
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(plaintext).unwrap();
            w.finalize().unwrap();
        }
        out
    }

    /// Where the SEIPD v2 packet's body starts (its version octet).
    fn seipd_body_offset(msg: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let tag = msg[at] & 0x3f;
            let (len, header) = match msg[at + 1] {
                l @ 0..=191 => (l as usize, 2),
                l @ 192..=223 => ((((l as usize) - 192) << 8) + msg[at + 2] as usize + 192, 3),
                255 => (
                    u32::from_be_bytes(msg[at + 2..at + 6].try_into().unwrap()) as usize,
                    6,
                ),
                _ => (0, 2), // a partial body length: only the SEIPD packet streams
            };
            if tag == 18 {
                assert_eq!(msg[at + header], 2, "SEIPD version");
                return at + header;
            }
            at += header + len;
        }
    }

    #[test]
    fn accepts_every_cipher_in_the_accepted_set() {
        let subkeys = encryption_subkeys(election()).unwrap();
        for sym in ACCEPTED_SYMMETRIC {
            for aead in ACCEPTED_AEAD {
                let msg = encrypt_using(*sym, *aead, b"signed ballot");
                let env = check_structure(&msg, &subkeys, 1 << 20)
                    .unwrap_or_else(|e| panic!("{sym} {aead}: {e}"));
                assert_eq!(env.symmetric, sym.to_string());
                assert_eq!(
                    decrypt(&msg, election(), None, 1 << 20).unwrap(),
                    b"signed ballot"
                );
            }
        }
    }

    /// Issue 12, part 5: a client adds a second session-key packet,
    /// labelled with the election subkey but encrypted to a vote buyer's key.
    #[test]
    fn refuses_a_second_session_key_packet() {
        let p = policy();
        let buyer = generate_election_key("Vote buyer <buyer@example.org>", None).unwrap();
        let ours = election().with_policy(&p, None).unwrap();
        let theirs = buyer.with_policy(&p, None).unwrap();
        let mut recipients = encryption_keys(&ours).unwrap();
        recipients.extend(encryption_keys(&theirs).unwrap());
        let mut msg = Vec::new();
        {
            let m = Message::new(&mut msg);
            let m = Encryptor::for_recipients(m, recipients).build().unwrap();
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(b"signed ballot").unwrap();
            w.finalize().unwrap();
        }
        // Relabel the buyer's packet as the election subkey's.
        let subkeys = encryption_subkeys(election()).unwrap();
        let theirs = encryption_subkeys(&buyer).unwrap();
        let (from, to) = (theirs[0].as_bytes(), subkeys[0].as_bytes());
        let at = msg
            .windows(from.len())
            .position(|w| w == from)
            .expect("the buyer's fingerprint is in the message");
        msg[at..at + from.len()].copy_from_slice(to);
        let r = check_structure(&msg, &subkeys, 1 << 20);
        assert!(
            matches!(&r, Err(PgpError::SessionKey(m)) if m.contains("more than one session key packet")),
            "{r:?}"
        );
        // The county can still decrypt it (its own packet is intact), which
        // is why the gateway must refuse it.
        let r = decrypt(&msg, election(), None, 1 << 20);
        assert!(matches!(&r, Err(PgpError::SessionKey(_))), "{r:?}");
    }

    #[test]
    fn refuses_a_cipher_outside_the_accepted_set() {
        let subkeys = encryption_subkeys(election()).unwrap();
        for sym in [
            SymmetricAlgorithm::Twofish,
            SymmetricAlgorithm::Camellia256,
            SymmetricAlgorithm::Camellia128,
        ] {
            let msg = encrypt_using(sym, AEADAlgorithm::OCB, b"signed ballot");
            let r = check_structure(&msg, &subkeys, 1 << 20);
            assert!(
                matches!(&r, Err(PgpError::Cipher(m)) if m.contains(&sym.to_string())),
                "{sym}: {r:?}"
            );
            // The verifier refuses it too, whatever the gateway let through.
            let r = decrypt(&msg, election(), None, 1 << 20);
            assert!(
                matches!(&r, Err(PgpError::Cipher(m)) if m.contains(&sym.to_string())),
                "{sym}: {r:?}"
            );
        }
        let good = encrypt_using(SymmetricAlgorithm::AES256, AEADAlgorithm::OCB, b"x");
        let at = seipd_body_offset(&good);
        // An AEAD mode no one defined (octet 100) and an unknown cipher.
        for (offset, value, named) in [
            (2, 100u8, "AEAD"),
            (1, 200u8, "cipher"),
            // AES-128 with OCB is in the set: the control. It passes the
            // cipher check and is caught only because the 40-byte wrapped
            // key is an AES-256 key's (a real AES-128 one wraps to 24).
            (1, 7u8, "AES-128"),
        ] {
            let mut bad = good.clone();
            bad[at + offset] = value;
            let r = check_structure(&bad, &subkeys, 1 << 20);
            if value == 7 {
                assert!(
                    matches!(&r, Err(PgpError::SessionKey(m)) if m.contains("40 bytes, not the 24 a AES-128 key")),
                    "{r:?}"
                );
                continue;
            }
            assert!(
                matches!(&r, Err(PgpError::Cipher(m)) if m.contains(named)),
                "{named}: {r:?}"
            );
        }
        // Chunk-size octets above 16 (RFC 9580, section 5.13.2).
        let mut bad = good.clone();
        bad[at + 3] = 17;
        let r = check_structure(&bad, &subkeys, 1 << 20);
        assert!(
            matches!(&r, Err(PgpError::Cipher(m)) if m.contains("chunk")),
            "{r:?}"
        );
        // Each in-set chunk size passes the check.
        for c in 0..=16u8 {
            let mut ok = good.clone();
            ok[at + 3] = c;
            assert!(check_structure(&ok, &subkeys, 1 << 20).is_ok(), "chunk {c}");
        }
    }

    #[test]
    fn refuses_an_oversized_plaintext() {
        let msg = encrypt(election(), &[7u8; 5000]).unwrap();
        assert!(matches!(
            decrypt(&msg, election(), None, 4999),
            Err(PgpError::TooLarge(4999))
        ));
    }

    #[test]
    fn a_protected_key_needs_its_passphrase() {
        let pw: Password = "correct horse battery staple".into();
        let c = generate_election_key("Protected", Some(pw.clone())).unwrap();
        let msg = encrypt(&c, b"x").unwrap();
        assert!(decrypt(&msg, &c, None, 100).is_err());
        assert!(decrypt(&msg, &c, Some(&"wrong".into()), 100).is_err());
        assert_eq!(decrypt(&msg, &c, Some(&pw), 100).unwrap(), b"x");
        assert!(unlock(&c, &"wrong".into()).is_err());
        let open = unlock(&c, &pw).unwrap();
        assert_eq!(decrypt(&msg, &open, None, 100).unwrap(), b"x");
        assert!(
            c.keys().secret().all(|k| k.key().secret().is_encrypted()),
            "the original stays locked"
        );
        assert!(sign_detached(&c, None, b"doc").is_err());
        let sig = sign_detached(&c, Some(&pw), b"doc").unwrap();
        verify_detached(&c.strip_secret_key_material(), b"doc", &sig).unwrap();
    }

    #[test]
    fn detached_signatures_bind_data_and_key() {
        let c = election();
        let sig = sign_detached(c, None, b"manifest").unwrap();
        let public = read_public_cert(&public_bytes(c).unwrap()).unwrap();
        verify_detached(&public, b"manifest", &sig).unwrap();
        assert!(verify_detached(&public, b"manifesT", &sig).is_err());
        let other_key = generate_signing_key("Gateway transfer key", None).unwrap();
        assert!(verify_detached(&other_key, b"manifest", &sig).is_err());
        assert!(verify_detached(&public, b"manifest", b"garbage").is_err());
    }

    #[test]
    fn public_and_secret_certificates_are_kept_apart() {
        let c = election();
        assert!(read_public_cert(&secret_armored(c).unwrap()).is_err());
        assert!(read_secret_cert(&public_armored(c).unwrap()).is_err());
        assert!(read_secret_cert(&secret_armored(c).unwrap()).is_ok());
    }
}
