//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 signatures
//! (type 0x01), and C2SP timestamped Ed25519 cosignatures
//! (<https://c2sp.org/tlog-cosignature>, type 0x04).
//!
//! Specification: `docs/spec/checkpoint.md`. The key text forms are those of
//! Go's `golang.org/x/mod/sumdb/note`: a verifier key is
//! `<name>+<key ID in hex>+<base64(type || public key)>` and a signer key is
//! `PRIVATE+KEY+<name>+<key ID in hex>+<base64(type || seed)>`.

use base64::prelude::*;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

/// Signature type byte of plain Ed25519 note signatures.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type byte of timestamped Ed25519 cosignatures.
pub const TYPE_COSIGNATURE: u8 = 0x04;

/// The largest note this crate reads. Checkpoints with a few Ed25519
/// signatures are a few hundred bytes.
pub const MAX_NOTE_LEN: usize = 16 * 1024;
/// The most signature lines read from one note ("MUST accept at least up to
/// 16 signatures").
pub const MAX_SIGNATURES: usize = 32;
const MAX_NAME_LEN: usize = 255;

/// Why a note, a key or a signature was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is not well formed (the reason says how).
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    /// The note is larger than [`MAX_NOTE_LEN`] or has too many signatures.
    #[error("signed note is too large")]
    TooLarge,
    /// A key string is not well formed.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// A signature from a known key did not verify.
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    /// No signature from a known key is present.
    #[error("the note is not signed by {0}")]
    NotSigned(String),
    /// A cosignature's timestamp is later than the verifier allows.
    #[error("the cosignature by {0} is dated in the future")]
    FutureCosignature(String),
}

/// The key ID of C2SP signed-note: the first four bytes of
/// `SHA-256(name || 0x0A || type || public key)`, read big-endian.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([sig_type]);
    h.update(public_key);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or
/// plus (U+002B) characters."
fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(NoteError::MalformedKey("the key name is empty or too long"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(NoteError::MalformedKey(
            "the key name contains a space, a '+' or a control character",
        ));
    }
    Ok(())
}

/// An Ed25519 key that signs notes, either as their author (type 0x01, a
/// log key) or as a cosigner (type 0x04, a witness key).
#[derive(Debug)]
pub struct NoteSigner {
    name: String,
    sig_type: u8,
    key: SigningKey,
    id: u32,
}

impl NoteSigner {
    /// A new random key.
    pub fn generate(name: &str, sig_type: u8) -> Result<Self, NoteError> {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        Self::from_key(name, sig_type, key)
    }

    fn from_key(name: &str, sig_type: u8, key: SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        if sig_type != TYPE_ED25519 && sig_type != TYPE_COSIGNATURE {
            return Err(NoteError::MalformedKey("unsupported signature type"));
        }
        let id = key_id(name, sig_type, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            sig_type,
            key,
            id,
        })
    }

    /// Reads `PRIVATE+KEY+<name>+<id>+<base64(type || seed)>`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .trim_end_matches('\n')
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey(
                "a signer key starts with PRIVATE+KEY+",
            ))?;
        let (name, id, blob) = split_key(rest)?;
        let raw = Zeroizing::new(
            BASE64_STANDARD
                .decode(blob)
                .map_err(|_| NoteError::MalformedKey("the key is not base64"))?,
        );
        let (&sig_type, seed) = raw
            .split_first()
            .ok_or(NoteError::MalformedKey("the key is empty"))?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 seed is 32 bytes"))?;
        let signer = Self::from_key(name, sig_type, SigningKey::from_bytes(&seed))?;
        if signer.id != id {
            return Err(NoteError::MalformedKey("the key ID does not match the key"));
        }
        Ok(signer)
    }

    /// The secret key as `PRIVATE+KEY+…` text. Store it only in a 0600 file.
    pub fn to_skey(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(33));
        raw.push(self.sig_type);
        raw.extend_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64_STANDARD.encode(&raw[..])
        ))
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            sig_type: self.sig_type,
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs `text` as its author: returns the whole signed note. `text`
    /// must end in a newline.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        if self.sig_type != TYPE_ED25519 {
            return Err(NoteError::MalformedKey(
                "a cosigner key cannot sign a note as its author",
            ));
        }
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n— {} {}\n",
            self.name,
            BASE64_STANDARD.encode(blob)
        ))
    }

    /// Cosigns a signed note at `timestamp`: returns the note with this
    /// key's cosignature line appended.
    pub fn cosign(&self, note: &Note, timestamp: u64) -> Result<String, NoteError> {
        if self.sig_type != TYPE_COSIGNATURE {
            return Err(NoteError::MalformedKey("only a cosigner key cosigns"));
        }
        if timestamp > i64::MAX as u64 {
            return Err(NoteError::Malformed("cosignature time out of range"));
        }
        let msg = cosignature_message(&note.text, timestamp);
        let sig = self.key.sign(msg.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        let mut out = note.to_text();
        out.push_str(&format!(
            "— {} {}\n",
            self.name,
            BASE64_STANDARD.encode(blob)
        ));
        Ok(out)
    }
}

fn split_key(s: &str) -> Result<(&str, u32, &str), NoteError> {
    // The name contains no '+'; the base64 part may.
    let (name, rest) = s
        .split_once('+')
        .ok_or(NoteError::MalformedKey("expected name+id+key"))?;
    let (id_hex, blob) = rest
        .split_once('+')
        .ok_or(NoteError::MalformedKey("expected name+id+key"))?;
    if id_hex.len() != 8
        || !id_hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(NoteError::MalformedKey(
            "the key ID is 8 lowercase hex digits",
        ));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| NoteError::MalformedKey("bad key ID"))?;
    check_name(name)?;
    Ok((name, id, blob))
}

fn cosignature_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// A public key that checks note signatures of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    sig_type: u8,
    key: VerifyingKey,
    id: u32,
}

impl NoteVerifier {
    /// Reads `<name>+<id>+<base64(type || public key)>`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let (name, id, blob) = split_key(vkey.trim_end_matches('\n'))?;
        let raw = BASE64_STANDARD
            .decode(blob)
            .map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
        let (&sig_type, pk) = raw
            .split_first()
            .ok_or(NoteError::MalformedKey("the key is empty"))?;
        if sig_type != TYPE_ED25519 && sig_type != TYPE_COSIGNATURE {
            return Err(NoteError::MalformedKey("unsupported signature type"));
        }
        let pk: [u8; 32] = pk
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 public key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&pk)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        if key.is_weak() {
            return Err(NoteError::MalformedKey("a small-order Ed25519 key"));
        }
        if key_id(name, sig_type, &pk) != id {
            return Err(NoteError::MalformedKey("the key ID does not match the key"));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            sig_type,
            key,
            id,
        })
    }

    /// The key as verifier-key text.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.sig_type];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64_STANDARD.encode(raw)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The signature type (0x01 or 0x04).
    pub fn sig_type(&self) -> u8 {
        self.sig_type
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID (first four bytes).
    pub id: u32,
    /// What follows the key ID.
    pub signature: Vec<u8>,
}

/// A parsed signed note whose signatures have not been checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text does not end in a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character in the note"));
    }
    Ok(())
}

impl Note {
    /// Parses a signed note. This does not verify anything: use
    /// [`Note::verify`] before trusting the text.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_LEN {
            return Err(NoteError::TooLarge);
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        check_text(s)?;
        // "the text is separated from the signatures by the last empty line"
        let split = s
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sig_block) = (
            s.get(..split + 1).unwrap_or_default(),
            s.get(split + 2..).unwrap_or_default(),
        );
        if sig_block.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        let mut signatures = Vec::new();
        for line in sig_block.split_terminator('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooLarge);
            }
            let rest = line.strip_prefix("— ").ok_or(NoteError::Malformed(
                "a signature line starts with an em dash and a space",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "a signature line is name, space, signature",
            ))?;
            check_name(name)
                .map_err(|_| NoteError::Malformed("bad key name in a signature line"))?;
            let raw = BASE64_STANDARD
                .decode(b64)
                .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            let (id, sig) = match raw.split_first_chunk::<4>() {
                Some((id, sig)) if !sig.is_empty() => (*id, sig),
                _ => return Err(NoteError::Malformed("a signature is too short")),
            };
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes(id),
                signature: sig.to_vec(),
            });
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, including its final newline. Not authenticated
    /// until [`Note::verify`] succeeds.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// This note with `key`'s signature lines taken from `other`, a note of
    /// the same text (replacing any line of that key already here). The
    /// lines are copied, not verified: call [`Note::verify`] on the result.
    pub fn with_signature_of(&self, other: &Note, key: &NoteVerifier) -> Result<Note, NoteError> {
        if other.text != self.text {
            return Err(NoteError::Malformed("the two notes have different texts"));
        }
        let ours = |s: &&NoteSignature| s.name == key.name && s.id == key.id;
        let mut signatures: Vec<NoteSignature> = self
            .signatures
            .iter()
            .filter(|s| !ours(s))
            .cloned()
            .collect();
        signatures.extend(other.signatures.iter().filter(ours).cloned());
        if signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooLarge);
        }
        Ok(Note {
            text: self.text.clone(),
            signatures,
        })
    }

    /// This note with only the signature lines of `keys` (by name and ID;
    /// not verified). Refused if none is left.
    pub fn keep_signatures_of(&self, keys: &[&NoteVerifier]) -> Result<Note, NoteError> {
        let signatures: Vec<NoteSignature> = self
            .signatures
            .iter()
            .filter(|s| keys.iter().any(|k| s.name == k.name && s.id == k.id))
            .cloned()
            .collect();
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        Ok(Note {
            text: self.text.clone(),
            signatures,
        })
    }

    /// The note in its text form.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.text);
        for s in &self.signatures {
            let mut raw = s.id.to_be_bytes().to_vec();
            raw.extend_from_slice(&s.signature);
            out.push_str(&format!("— {} {}\n", s.name, BASE64_STANDARD.encode(raw)));
        }
        out
    }

    /// Checks the note's signature by `verifier`. Lines from other keys are
    /// ignored, as the spec requires. For a cosigner key, returns the
    /// cosignature's timestamp.
    ///
    /// "If a signature from a known key fails to verify, clients SHOULD
    /// reject the whole note. If no signature from a known key verifies
    /// successfully, clients MUST reject the note."
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<Option<u64>, NoteError> {
        let mut verified = None;
        for s in self
            .signatures
            .iter()
            .filter(|s| s.name == verifier.name && s.id == verifier.id)
        {
            let bad = || NoteError::BadSignature(verifier.name.clone());
            let t = match verifier.sig_type {
                TYPE_ED25519 => {
                    let sig =
                        ed25519_dalek::Signature::from_slice(&s.signature).map_err(|_| bad())?;
                    verifier
                        .key
                        .verify_strict(self.text.as_bytes(), &sig)
                        .map_err(|_| bad())?;
                    None
                }
                TYPE_COSIGNATURE => {
                    if s.signature.len() != 8 + 64 {
                        return Err(bad());
                    }
                    let (ts, sig) = s.signature.split_at(8);
                    let ts = u64::from_be_bytes(ts.try_into().map_err(|_| bad())?);
                    if ts > i64::MAX as u64 {
                        return Err(bad());
                    }
                    let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad())?;
                    let msg = cosignature_message(&self.text, ts);
                    verifier
                        .key
                        .verify_strict(msg.as_bytes(), &sig)
                        .map_err(|_| bad())?;
                    Some(ts)
                }
                _ => return Err(bad()),
            };
            if verified.is_some() {
                // Two lines from one key: refuse rather than pick one.
                return Err(NoteError::Malformed("two signatures from the same key"));
            }
            verified = Some(t);
        }
        verified.ok_or_else(|| NoteError::NotSigned(verifier.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note (its package documentation
    // and note_test.go): an independent implementation's key and signature.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_the_go_example_byte_for_byte() {
        let signer = NoteSigner::from_skey(GO_SKEY).unwrap();
        assert_eq!(signer.verifier().to_vkey(), GO_VKEY);
        assert_eq!(signer.sign_note(GO_TEXT).unwrap(), GO_NOTE);
        assert_eq!(signer.to_skey().as_str(), GO_SKEY);
    }

    #[test]
    fn verifies_the_go_example_and_refuses_a_changed_text() {
        let v = NoteVerifier::from_vkey(GO_VKEY).unwrap();
        let note = Note::parse(GO_NOTE.as_bytes()).unwrap();
        assert_eq!(note.verify(&v).unwrap(), None);
        assert_eq!(note.text(), GO_TEXT);
        assert_eq!(note.to_text(), GO_NOTE);
        let changed = GO_NOTE.replace("cryptography", "cryptographY");
        assert_eq!(
            Note::parse(changed.as_bytes()).unwrap().verify(&v),
            Err(NoteError::BadSignature("PeterNeumann".into()))
        );
    }

    #[test]
    fn computes_the_key_id_of_a_published_cosigner_key() {
        // A type 0x04 key from transparency-dev/formats' tests.
        let v = NoteVerifier::from_vkey(
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        )
        .unwrap();
        assert_eq!(v.sig_type(), TYPE_COSIGNATURE);
        assert_eq!(v.id(), 0xda77ade7);
    }

    #[test]
    fn refuses_malformed_keys() {
        for bad in [
            "",
            "PeterNeumann+c74f20a3",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ApPc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        ] {
            assert!(NoteVerifier::from_vkey(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ignores_unknown_keys_but_needs_a_known_one() {
        let log = NoteSigner::generate("example.org/log", TYPE_ED25519).unwrap();
        let other = NoteSigner::generate("example.org/other", TYPE_ED25519).unwrap();
        let signed = log.sign_note("hello\n").unwrap();
        let note = Note::parse(signed.as_bytes()).unwrap();
        note.verify(&log.verifier()).unwrap();
        assert_eq!(
            note.verify(&other.verifier()),
            Err(NoteError::NotSigned("example.org/other".into()))
        );
    }

    #[test]
    fn a_cosignature_binds_its_timestamp() {
        let log = NoteSigner::generate("example.org/log", TYPE_ED25519).unwrap();
        let witness = NoteSigner::generate("example.org/witness", TYPE_COSIGNATURE).unwrap();
        let note = Note::parse(
            log.sign_note("example.org/log\n1\nAAAA\n")
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let cosigned = witness.cosign(&note, 1_793_732_400).unwrap();
        let parsed = Note::parse(cosigned.as_bytes()).unwrap();
        parsed.verify(&log.verifier()).unwrap();
        assert_eq!(
            parsed.verify(&witness.verifier()).unwrap(),
            Some(1_793_732_400)
        );
        // The same signature with another timestamp does not verify.
        let mut tampered = parsed.clone();
        tampered.signatures[1].signature[7] ^= 1;
        assert!(tampered.verify(&witness.verifier()).is_err());
    }

    #[test]
    fn refuses_malformed_notes() {
        for bad in [
            &b"no signatures\n"[..],
            b"text\n\n",
            b"text\n\nnot a signature line\n",
            b"text\n\n\xe2\x80\x94 name AAAA\n",
            b"text\r\n\n\xe2\x80\x94 name AAAAAAAA\n",
            b"\xff\n\n\xe2\x80\x94 name AAAAAAAA\n",
        ] {
            assert!(
                Note::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            Note::parse(&vec![b'a'; MAX_NOTE_LEN + 1]),
            Err(NoteError::TooLarge)
        );
    }
}
