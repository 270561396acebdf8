//! The transfer bundle manifest (DESIGN section 7): what the gateway writes
//! onto removable media for the verifier, signed with the gateway transfer
//! key (a detached OpenPGP signature in `manifest.sig`).
//!
//! The manifest is a stream, so neither side holds a whole bundle in memory:
//!
//! ```text
//! opaque magic[15] = "TRANSFER-BUNDLE";
//! uint8  version = 2;
//! Frame  header;                // BundleHeader, at most 1 MiB
//! Frame  entries[entry_count];  // BundleEntry each, at most 64 KiB
//! struct { uint32 length; opaque body[length]; } Frame;
//!
//! struct {
//!     opaque election_id<1..64>;
//!     uint64 sequence;                     // 1 for the first bundle, then +1
//!     opaque log_origin<1..255>;
//!     opaque previous_checkpoint<0..2^14>; // signed note; empty when first_index = 0
//!     opaque new_checkpoint<1..2^14>;      // signed note
//!     uint8  proof_len;                    // consistency proof, hashes
//!     opaque consistency_proof[32 * proof_len];
//!     Witnessed witnessed<u8 count>;       // at most 64, oldest first
//!     FileRef crls<u16 count>;             // files crls/0001.crl, crls/0002.crl, ...
//!     FileRef intermediates<u16 count>;    // files intermediates/0001.der, ...
//!     uint64 first_index;                  // = previous checkpoint size
//!     uint64 entry_count;                  // = new size - first_index
//! } BundleHeader;
//! struct { uint64 size; opaque sha256[32]; } FileRef;
//! struct { opaque note<1..2^14>; } Witnessed; // a checkpoint with its cosignatures
//!
//! struct {
//!     uint64 leaf_index;                   // first_index, first_index + 1, ...
//!     opaque log_entry<1..255>;            // the LogEntry bytes (the leaf)
//!     opaque salt[32];                     // opens the voter commitment
//!     opaque voter_id<1..64>;
//!     opaque identity<1..80>;              // canonical identity from the TLS certificate
//!     opaque client_cert<1..16384>;        // the TLS client certificate, DER
//!     opaque ballot_file<1..64>;           // must be ballots/<leaf_index, 16 digits>.pgp
//!     uint64 ballot_size;
//!     opaque ballot_sha256[32];
//! } BundleEntry;
//! ```
//!
//! `witnessed` carries the checkpoints a quorum of the manifest's witnesses
//! cosigned since the previous bundle (none larger than `new_checkpoint`),
//! thinned by the gateway to at most [`MAX_WITNESSED`]: the verifier's time
//! rule (`docs/spec/witnesses.md`) rests on them, never on `received_at`.
//!
//! File names are derived by the reader from indexes, never taken from the
//! media; the recorded `ballot_file` must equal the derived name.
//! Specification: `docs/spec/transfer-bundle.md`.

use crate::codec::{check_identifier, DecodeError, EncodeError, Reader, Writer};
use crate::log_entry::LogEntry;
use crate::merkle::{Hash, MAX_PROOF_HASHES};
use crate::x509::VoterIdentity;
use std::io::{Read, Write};
use thiserror::Error;

/// The magic string.
pub const MAGIC: &[u8; 15] = b"TRANSFER-BUNDLE";
/// The version of this encoding.
pub const VERSION: u8 = 2;
/// The largest header frame.
pub const MAX_HEADER: usize = 2 * 1024 * 1024;
/// The most witnessed checkpoints one bundle carries.
pub const MAX_WITNESSED: usize = 64;
/// The largest witnessed checkpoint (the note with every cosignature).
pub const MAX_WITNESSED_NOTE: usize = 1 << 14;
/// The largest entry frame.
pub const MAX_ENTRY: usize = 64 * 1024;
/// The most CRL or intermediate files.
pub const MAX_FILES: usize = 256;
/// The largest CRL or intermediate file.
pub const MAX_PKI_FILE: u64 = 16 * 1024 * 1024;

/// Why a bundle manifest could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading the media failed.
    #[error("reading the bundle manifest failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid manifest.
    #[error("the bundle manifest is malformed: {0}")]
    Decode(#[from] DecodeError),
}

/// A file listed by size and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: Hash,
}

/// The bundle header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleHeader {
    /// The election.
    pub election_id: String,
    /// The bundle number (1-based).
    pub sequence: u64,
    /// The log's origin.
    pub log_origin: String,
    /// The checkpoint the previous bundle ended at (none for the first).
    pub previous_checkpoint: Option<String>,
    /// The checkpoint this bundle ends at.
    pub new_checkpoint: String,
    /// Consistency proof from the previous checkpoint to the new one.
    pub consistency_proof: Vec<Hash>,
    /// Checkpoints a quorum of witnesses cosigned, oldest first (signed
    /// notes with every cosignature).
    pub witnessed: Vec<String>,
    /// CRLs the gateway used.
    pub crls: Vec<FileRef>,
    /// Intermediate certificates the gateway used.
    pub intermediates: Vec<FileRef>,
    /// The leaf index of the first entry.
    pub first_index: u64,
    /// The number of entries.
    pub entry_count: u64,
}

/// One logged ballot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    /// Its leaf index.
    pub leaf_index: u64,
    /// The log entry (leaf).
    pub log_entry: LogEntry,
    /// The commitment salt.
    pub salt: [u8; 32],
    /// The voter id the gateway matched on the roster.
    pub voter_id: String,
    /// The identity in the voter's TLS client certificate.
    pub identity: VoterIdentity,
    /// The voter's TLS client certificate (DER).
    pub client_cert: Vec<u8>,
    /// The ballot's file name (must be [`ballot_file_name`] of the index).
    pub ballot_file: String,
    /// The ballot file's size.
    pub ballot_size: u64,
    /// The ballot file's SHA-256.
    pub ballot_sha256: Hash,
}

/// The name of a ballot file in a bundle: `ballots/<index, 16 digits>.pgp`.
pub fn ballot_file_name(leaf_index: u64) -> String {
    format!("ballots/{leaf_index:016}.pgp")
}

/// The name of the `n`th (0-based) CRL file.
pub fn crl_file_name(n: usize) -> String {
    format!("crls/{:04}.crl", n + 1)
}

/// The name of the `n`th (0-based) intermediate certificate file.
pub fn intermediate_file_name(n: usize) -> String {
    format!("intermediates/{:04}.der", n + 1)
}

/// A file a bundle's subfolder may hold, named as the functions above name
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFile {
    /// `ballots/<leaf index>.pgp`.
    Ballot(u64),
    /// `crls/<n + 1>.crl` (`n` 0-based).
    Crl(usize),
    /// `intermediates/<n + 1>.der` (`n` 0-based).
    Intermediate(usize),
}

/// What `name` inside the subfolder `folder` stands for, if it is exactly
/// a name this format derives (digits of the right width, the right
/// extension).
pub fn parse_file_name(folder: &str, name: &str) -> Option<BundleFile> {
    let numbered = |width: usize, ext: &str| -> Option<u64> {
        let digits = name.strip_suffix(ext)?.strip_suffix('.')?;
        if digits.len() != width || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let nth = |k: u64| usize::try_from(k.checked_sub(1)?).ok();
    match folder {
        "ballots" => numbered(16, "pgp").map(BundleFile::Ballot),
        "crls" => numbered(4, "crl").and_then(nth).map(BundleFile::Crl),
        "intermediates" => numbered(4, "der")
            .and_then(nth)
            .map(BundleFile::Intermediate),
        _ => None,
    }
}

/// The manifest's file name in a bundle folder.
pub const MANIFEST_FILE: &str = "manifest.bin";
/// The detached signature's file name.
pub const SIGNATURE_FILE: &str = "manifest.sig";

fn enc(e: EncodeError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
}

fn write_frame(w: &mut impl Write, body: &[u8], max: usize) -> std::io::Result<()> {
    if body.len() > max {
        return Err(enc(EncodeError {
            what: "frame",
            len: body.len(),
            max,
        }));
    }
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(body)
}

/// Reads one frame of at most `max` bytes, or `None` at a clean end of file.
fn read_frame(
    r: &mut impl Read,
    max: usize,
    what: &'static str,
) -> Result<Option<Vec<u8>>, BundleError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(len.get_mut(got..).unwrap_or_default())?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(DecodeError::Truncated { what }.into());
        }
        got += n;
    }
    let len = u32::from_be_bytes(len);
    if len as usize > max {
        return Err(DecodeError::TooLong {
            what,
            len: u64::from(len),
            max: max as u64,
        }
        .into());
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BundleError::Decode(DecodeError::Truncated { what }),
        _ => BundleError::Io(e),
    })?;
    Ok(Some(body))
}

fn file_refs(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<FileRef>, DecodeError> {
    let n = r.u16(what)? as usize;
    if n > MAX_FILES {
        return Err(DecodeError::TooLong {
            what,
            len: n as u64,
            max: MAX_FILES as u64,
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let size = r.u64(what)?;
        if size > MAX_PKI_FILE {
            return Err(DecodeError::TooLong {
                what,
                len: size,
                max: MAX_PKI_FILE,
            });
        }
        out.push(FileRef {
            size,
            sha256: r.array(what)?,
        });
    }
    Ok(out)
}

impl BundleHeader {
    /// Writes the magic, version and header frame.
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut b = Writer::new();
        b.vec8(self.election_id.as_bytes(), 64, "election id")
            .map_err(enc)?;
        b.u64(self.sequence);
        b.vec8(self.log_origin.as_bytes(), 255, "log origin")
            .map_err(enc)?;
        b.vec16(
            self.previous_checkpoint.as_deref().unwrap_or("").as_bytes(),
            1 << 14,
            "previous checkpoint",
        )
        .map_err(enc)?;
        b.vec16(self.new_checkpoint.as_bytes(), 1 << 14, "new checkpoint")
            .map_err(enc)?;
        if self.consistency_proof.len() > MAX_PROOF_HASHES {
            return Err(enc(EncodeError {
                what: "consistency proof",
                len: self.consistency_proof.len(),
                max: MAX_PROOF_HASHES,
            }));
        }
        b.u8(self.consistency_proof.len() as u8);
        for h in &self.consistency_proof {
            b.raw(h);
        }
        if self.witnessed.len() > MAX_WITNESSED {
            return Err(enc(EncodeError {
                what: "witnessed checkpoints",
                len: self.witnessed.len(),
                max: MAX_WITNESSED,
            }));
        }
        b.u8(self.witnessed.len() as u8);
        for note in &self.witnessed {
            if note.is_empty() {
                return Err(enc(EncodeError {
                    what: "witnessed checkpoint (empty)",
                    len: 0,
                    max: MAX_WITNESSED_NOTE,
                }));
            }
            b.vec16(note.as_bytes(), MAX_WITNESSED_NOTE, "witnessed checkpoint")
                .map_err(enc)?;
        }
        for list in [&self.crls, &self.intermediates] {
            if list.len() > MAX_FILES {
                return Err(enc(EncodeError {
                    what: "file list",
                    len: list.len(),
                    max: MAX_FILES,
                }));
            }
            b.u16(list.len() as u16);
            for f in list.iter() {
                b.u64(f.size);
                b.raw(&f.sha256);
            }
        }
        b.u64(self.first_index);
        b.u64(self.entry_count);
        w.write_all(MAGIC)?;
        w.write_all(&[VERSION])?;
        write_frame(w, &b.into_bytes(), MAX_HEADER)
    }

    /// Reads the magic, version and header frame.
    pub fn read(r: &mut impl Read) -> Result<Self, BundleError> {
        let mut magic = [0u8; 16];
        r.read_exact(&mut magic)
            .map_err(|_| DecodeError::BadMagic {
                what: "transfer bundle manifest",
            })?;
        let mut m = Reader::new(&magic);
        m.magic(MAGIC, "transfer bundle manifest")?;
        m.version(VERSION, "transfer bundle manifest")?;
        let body = read_frame(r, MAX_HEADER, "bundle header")?.ok_or(DecodeError::Truncated {
            what: "bundle header",
        })?;
        let mut r = Reader::new(&body);
        let election_id = r.string8(64, "election id")?.to_owned();
        check_identifier(&election_id, 64, "election id")?;
        let sequence = r.u64("sequence")?;
        if sequence == 0 {
            return Err(DecodeError::InvalidValue {
                what: "sequence",
                reason: "bundles are numbered from 1",
            }
            .into());
        }
        let log_origin = r.string8(255, "log origin")?.to_owned();
        let previous = r.string16(1 << 14, "previous checkpoint")?;
        let previous_checkpoint = (!previous.is_empty()).then(|| previous.to_owned());
        let new_checkpoint = r.string16(1 << 14, "new checkpoint")?.to_owned();
        let n = usize::from(r.u8("consistency proof")?);
        if n > MAX_PROOF_HASHES {
            return Err(DecodeError::TooLong {
                what: "consistency proof",
                len: n as u64,
                max: MAX_PROOF_HASHES as u64,
            }
            .into());
        }
        let mut consistency_proof = Vec::with_capacity(n);
        for _ in 0..n {
            consistency_proof.push(r.array("consistency proof")?);
        }
        let n = usize::from(r.u8("witnessed checkpoints")?);
        if n > MAX_WITNESSED {
            return Err(DecodeError::TooLong {
                what: "witnessed checkpoints",
                len: n as u64,
                max: MAX_WITNESSED as u64,
            }
            .into());
        }
        let mut witnessed = Vec::with_capacity(n);
        for _ in 0..n {
            let note = r.string16(MAX_WITNESSED_NOTE, "witnessed checkpoint")?;
            if note.is_empty() {
                return Err(DecodeError::InvalidValue {
                    what: "witnessed checkpoint",
                    reason: "empty",
                }
                .into());
            }
            witnessed.push(note.to_owned());
        }
        let crls = file_refs(&mut r, "CRL list")?;
        let intermediates = file_refs(&mut r, "intermediate list")?;
        let first_index = r.u64("first index")?;
        let entry_count = r.u64("entry count")?;
        r.finish("bundle header")?;
        if (first_index == 0) != previous_checkpoint.is_none() {
            return Err(DecodeError::InvalidValue {
                what: "previous checkpoint",
                reason: "present exactly when the bundle does not start at leaf 0",
            }
            .into());
        }
        if first_index.checked_add(entry_count).is_none() {
            return Err(DecodeError::InvalidValue {
                what: "entry count",
                reason: "out of range",
            }
            .into());
        }
        Ok(BundleHeader {
            election_id,
            sequence,
            log_origin,
            previous_checkpoint,
            new_checkpoint,
            consistency_proof,
            witnessed,
            crls,
            intermediates,
            first_index,
            entry_count,
        })
    }
}

impl BundleEntry {
    /// Writes the entry as one frame.
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut b = Writer::new();
        b.u64(self.leaf_index);
        b.vec8(&self.log_entry.to_bytes().map_err(enc)?, 255, "log entry")
            .map_err(enc)?;
        b.raw(&self.salt);
        b.vec8(self.voter_id.as_bytes(), 64, "voter id")
            .map_err(enc)?;
        b.vec8(self.identity.to_canonical().as_bytes(), 80, "identity")
            .map_err(enc)?;
        b.vec16(&self.client_cert, 16384, "client certificate")
            .map_err(enc)?;
        b.vec8(self.ballot_file.as_bytes(), 64, "ballot file")
            .map_err(enc)?;
        b.u64(self.ballot_size);
        b.raw(&self.ballot_sha256);
        write_frame(w, &b.into_bytes(), MAX_ENTRY)
    }

    /// Reads the next entry; `None` at the end of the manifest.
    pub fn read(r: &mut impl Read) -> Result<Option<Self>, BundleError> {
        let Some(body) = read_frame(r, MAX_ENTRY, "bundle entry")? else {
            return Ok(None);
        };
        let mut r = Reader::new(&body);
        let leaf_index = r.u64("leaf index")?;
        let log_entry = LogEntry::from_bytes(r.vec8(255, "log entry")?)?;
        let salt = r.array("salt")?;
        let voter_id = r.string8(64, "voter id")?.to_owned();
        check_identifier(&voter_id, 64, "voter id")?;
        let identity = VoterIdentity::parse_canonical(r.string8(80, "identity")?).ok_or(
            DecodeError::InvalidValue {
                what: "identity",
                reason: "not a canonical identity",
            },
        )?;
        let client_cert = r.vec16(16384, "client certificate")?.to_vec();
        let ballot_file = r.string8(64, "ballot file")?.to_owned();
        if ballot_file != ballot_file_name(leaf_index) {
            return Err(DecodeError::InvalidValue {
                what: "ballot file",
                reason: "the file name is not the one derived from the leaf index",
            }
            .into());
        }
        let ballot_size = r.u64("ballot size")?;
        let ballot_sha256 = r.array("ballot hash")?;
        r.finish("bundle entry")?;
        if ballot_sha256 != log_entry.message_sha256 {
            return Err(DecodeError::InvalidValue {
                what: "ballot hash",
                reason: "differs from the hash in the log entry",
            }
            .into());
        }
        Ok(Some(BundleEntry {
            leaf_index,
            log_entry,
            salt,
            voter_id,
            identity,
            client_cert,
            ballot_file,
            ballot_size,
            ballot_sha256,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixTime;

    #[test]
    fn derived_file_names_parse_back_and_nothing_else_does() {
        let name = |full: String| {
            let (folder, file) = full.split_once('/').unwrap();
            parse_file_name(folder, file)
        };
        assert_eq!(name(ballot_file_name(42)), Some(BundleFile::Ballot(42)));
        assert_eq!(name(crl_file_name(0)), Some(BundleFile::Crl(0)));
        assert_eq!(
            name(intermediate_file_name(3)),
            Some(BundleFile::Intermediate(3))
        );
        for (folder, file) in [
            ("ballots", "42.pgp"),
            ("ballots", "000000000000004a.pgp"),
            ("crls", "0000.crl"),
            ("crls", "0001.der"),
            ("intermediates", "0001.crl"),
            ("other", "0001.der"),
        ] {
            assert_eq!(parse_file_name(folder, file), None, "{folder}/{file}");
        }
    }

    fn header() -> BundleHeader {
        BundleHeader {
            election_id: "2026-general".into(),
            sequence: 2,
            log_origin: "ballots.example/2026".into(),
            previous_checkpoint: Some("ballots.example/2026\n3\nAAAA\n\n— x AAAA\n".into()),
            new_checkpoint: "ballots.example/2026\n5\nBBBB\n\n— x BBBB\n".into(),
            consistency_proof: vec![[1; 32], [2; 32]],
            witnessed: vec!["ballots.example/2026\n4\nCCCC\n\n— x CCCC\n— w DDDD\n".into()],
            crls: vec![FileRef {
                size: 900,
                sha256: [3; 32],
            }],
            intermediates: vec![],
            first_index: 3,
            entry_count: 2,
        }
    }

    fn entry(i: u64) -> BundleEntry {
        BundleEntry {
            leaf_index: i,
            log_entry: LogEntry {
                election_id: "2026-general".into(),
                received_at: UnixTime(1_793_700_000 + i),
                message_sha256: [i as u8; 32],
                voter_commitment: [9; 32],
            },
            salt: [7; 32],
            voter_id: "V-0001".into(),
            identity: VoterIdentity::Edipi("1234567890".into()),
            client_cert: vec![0x30, 0x03, 1, 2, 3],
            ballot_file: ballot_file_name(i),
            ballot_size: 1234,
            ballot_sha256: [i as u8; 32],
        }
    }

    fn manifest() -> Vec<u8> {
        let mut out = Vec::new();
        header().write(&mut out).unwrap();
        entry(3).write(&mut out).unwrap();
        entry(4).write(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_as_a_stream() {
        let bytes = manifest();
        let mut r = bytes.as_slice();
        assert_eq!(BundleHeader::read(&mut r).unwrap(), header());
        assert_eq!(BundleEntry::read(&mut r).unwrap(), Some(entry(3)));
        assert_eq!(BundleEntry::read(&mut r).unwrap(), Some(entry(4)));
        assert_eq!(BundleEntry::read(&mut r).unwrap(), None);
        assert_eq!(ballot_file_name(4), "ballots/0000000000000004.pgp");
        assert_eq!(crl_file_name(0), "crls/0001.crl");
    }

    #[test]
    fn refuses_a_recorded_file_name_other_than_the_derived_one() {
        let mut e = entry(3);
        e.ballot_file = "../../etc/passwd".into();
        let mut out = Vec::new();
        e.write(&mut out).unwrap();
        assert!(matches!(
            BundleEntry::read(&mut out.as_slice()),
            Err(BundleError::Decode(_))
        ));
    }

    #[test]
    fn refuses_a_hash_that_differs_from_the_log_entry() {
        let mut e = entry(3);
        e.ballot_sha256 = [0xee; 32];
        let mut out = Vec::new();
        e.write(&mut out).unwrap();
        assert!(BundleEntry::read(&mut out.as_slice()).is_err());
    }

    #[test]
    fn refuses_truncation_oversized_frames_and_bad_headers() {
        let bytes = manifest();
        let mut r = &bytes[..bytes.len() - 3];
        BundleHeader::read(&mut r).unwrap();
        BundleEntry::read(&mut r).unwrap();
        assert!(matches!(
            BundleEntry::read(&mut r),
            Err(BundleError::Decode(DecodeError::Truncated { .. }))
        ));
        // A frame that declares 4 GiB.
        let mut huge = bytes[..16].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            BundleHeader::read(&mut huge.as_slice()),
            Err(BundleError::Decode(DecodeError::TooLong { .. }))
        ));
        assert!(BundleHeader::read(&mut &b"TRANSFER-BUNDLX\x01"[..]).is_err());
        let first_without_previous = BundleHeader {
            first_index: 0,
            ..header()
        };
        let mut out = Vec::new();
        first_without_previous.write(&mut out).unwrap();
        assert!(BundleHeader::read(&mut out.as_slice()).is_err());
        let zero = BundleHeader {
            sequence: 0,
            ..header()
        };
        let mut out = Vec::new();
        zero.write(&mut out).unwrap();
        assert!(BundleHeader::read(&mut out.as_slice()).is_err());
    }

    #[test]
    fn witnessed_checkpoints_are_bounded_in_number_and_size() {
        let many = BundleHeader {
            witnessed: vec!["n".into(); MAX_WITNESSED + 1],
            ..header()
        };
        assert!(many.write(&mut Vec::new()).is_err());
        let big = BundleHeader {
            witnessed: vec!["n".repeat(MAX_WITNESSED_NOTE + 1)],
            ..header()
        };
        assert!(big.write(&mut Vec::new()).is_err());
        // The most the format allows still fits in a header frame.
        let most = BundleHeader {
            witnessed: vec!["n".repeat(MAX_WITNESSED_NOTE); MAX_WITNESSED],
            ..header()
        };
        let mut out = Vec::new();
        most.write(&mut out).unwrap();
        assert_eq!(BundleHeader::read(&mut out.as_slice()).unwrap(), most);
        // A count byte above the limit, patched into a real header.
        let mut out = Vec::new();
        header().write(&mut out).unwrap();
        let h = header();
        let at = 16 + 4 // magic, version, frame length
            + 1 + h.election_id.len() + 8 + 1 + h.log_origin.len()
            + 2 + h.previous_checkpoint.as_ref().unwrap().len()
            + 2 + h.new_checkpoint.len()
            + 1 + 32 * h.consistency_proof.len();
        assert_eq!(out[at], 1);
        out[at] = (MAX_WITNESSED + 1) as u8;
        assert!(matches!(
            BundleHeader::read(&mut out.as_slice()),
            Err(BundleError::Decode(DecodeError::TooLong { .. }))
        ));
    }
}
