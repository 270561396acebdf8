//! Compression bombs and malformed OpenPGP, at both checkpoints: the
//! gateway's secret-free structure check (`check_structure`) and the
//! verifier's decryption (`decrypt`). Each must be refused with an error,
//! quickly, and without producing more than the output limit.
//!
//! The compression quine and compressed messages come from the sequoia
//! crate's own test data, read in place from the cargo registry; the rest
//! is built here: packets nested thousands deep, lengths that claim
//! gigabytes, streams cut short, and a DEFLATE bomb.

use sequoia_openpgp::Cert;
use shared::pgp::{check_structure, decrypt, encrypt, encrypt_packets, PgpError};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAX: usize = 1 << 20;
/// Far beyond what any refusal should take, even in a debug build on a
/// loaded machine; an unbounded decompression would not finish at all.
const QUICK: Duration = Duration::from_secs(20);

fn key() -> &'static Cert {
    static K: OnceLock<Cert> = OnceLock::new();
    K.get_or_init(|| shared::pgp::generate_election_key("Bomb County", None).unwrap())
}

fn subkeys() -> Vec<sequoia_openpgp::Fingerprint> {
    shared::pgp::encryption_subkeys(key()).unwrap()
}

/// The sequoia-openpgp sources cargo downloaded (its tests/data folder).
fn sequoia_data() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let version = "sequoia-openpgp-2.";
    for index in std::fs::read_dir(home.join("registry/src")).ok()? {
        let index = index.ok()?.path();
        for krate in std::fs::read_dir(&index).ok()?.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            let data = krate.path().join("tests/data/messages");
            if name.starts_with(version) && data.is_dir() {
                return Some(data);
            }
        }
    }
    None
}

/// An OpenPGP packet with a new-format header and a definite length.
fn packet(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0xc0 | tag];
    let n = body.len();
    if n < 192 {
        p.push(n as u8);
    } else if n < 8384 {
        let m = n - 192;
        p.extend([((m >> 8) + 192) as u8, m as u8]);
    } else {
        p.push(0xff);
        p.extend((n as u32).to_be_bytes());
    }
    p.extend_from_slice(body);
    p
}

/// Compressed Data (tag 8) with algorithm `algo` around `inner`.
fn compressed(algo: u8, inner: &[u8]) -> Vec<u8> {
    let mut body = vec![algo];
    body.extend_from_slice(inner);
    packet(8, &body)
}

/// Literal Data (tag 11), binary.
fn literal(content: &[u8]) -> Vec<u8> {
    let mut body = vec![b'b', 0, 0, 0, 0, 0];
    body.extend_from_slice(content);
    packet(11, &body)
}

/// Both checkpoints on `msg`: the gateway's check and the verifier's
/// decryption, each refused within [`QUICK`].
fn refused_everywhere(what: &str, msg: &[u8]) {
    let t = Instant::now();
    let g = check_structure(msg, &subkeys(), MAX);
    assert!(g.is_err(), "{what}: the gateway's check accepted it");
    let v = decrypt(msg, key(), None, MAX);
    assert!(v.is_err(), "{what}: the verifier decrypted it");
    assert!(t.elapsed() < QUICK, "{what}: took {:?}", t.elapsed());
}

/// Inside valid encryption: the gateway cannot see it (and accepts the
/// envelope); the verifier must refuse the content.
fn refused_by_the_verifier(what: &str, inner: &[u8]) -> PgpError {
    let msg = encrypt_packets(key(), inner).unwrap();
    check_structure(&msg, &subkeys(), MAX).unwrap_or_else(|e| panic!("{what}: envelope: {e}"));
    let t = Instant::now();
    let e = match decrypt(&msg, key(), None, MAX) {
        Ok(out) => panic!("{what}: decrypted to {} bytes", out.len()),
        Err(e) => e,
    };
    assert!(t.elapsed() < QUICK, "{what}: took {:?}", t.elapsed());
    e
}

#[test]
fn sequoias_compression_quine_and_compressed_messages_are_refused() {
    let Some(dir) = sequoia_data() else {
        println!("SKIPPED: the sequoia-openpgp sources are not in the cargo registry");
        return;
    };
    for name in [
        "compression-quine.pgp",
        "compressed-data-algo-0.pgp",
        "compressed-data-algo-1.pgp",
        "compressed-data-algo-2.pgp",
        "compressed-data-algo-3.pgp",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        refused_everywhere(name, &bytes);
        // And the same packets inside the encryption.
        refused_by_the_verifier(name, &bytes);
    }
}

#[test]
fn a_deflate_bomb_inside_the_encryption_is_refused() {
    // 64 MiB of zeros as raw DEFLATE: stored blocks would be as big, so use
    // a fixed-Huffman stream of a literal zero and repeated maximum-length
    // back-references (about 1 bit per 258 bytes).
    let mut bits = BitWriter::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // fixed Huffman
    bits.put_rev(0b0011_0000, 8); // literal 0
    for _ in 0..(64 << 20) / 258 {
        bits.put_rev(0b1100_0101, 8); // length code 285 (258 bytes)
        bits.put(0, 5); // distance code 0 (distance 1)
    }
    bits.put(0, 7); // end of block
    let deflate = bits.finish();
    // About 13 bits per 258 bytes: a 160-fold bomb that fits in an upload.
    assert!(deflate.len() < 500_000, "{}", deflate.len());
    for algo in [1u8, 2] {
        let body = if algo == 2 {
            // ZLIB: header, the DEFLATE stream (checksum left off: the
            // output must be refused long before it matters).
            [&[0x78u8, 0x01][..], &deflate].concat()
        } else {
            deflate.clone()
        };
        let bomb = compressed(algo, &body);
        refused_everywhere("bare DEFLATE bomb", &bomb);
        refused_by_the_verifier(&format!("DEFLATE bomb, algorithm {algo}"), &bomb);
    }
}

#[test]
fn deep_nesting_is_refused() {
    // Uncompressed "compressed" packets (algorithm 0 needs no decompressor)
    // nested 10,000 deep around a literal.
    let mut p = literal(b"%PDF-1.7 ballot");
    for _ in 0..10_000 {
        p = compressed(0, &p);
    }
    refused_everywhere("nested 10000 deep", &p);
    let e = refused_by_the_verifier("nested 10000 deep", &p);
    println!("nested 10000 deep: {e}");
    // Encryption inside the encryption.
    let inner = encrypt(key(), b"%PDF-1.7 ballot").unwrap();
    refused_by_the_verifier("a message encrypted inside the encrypted message", &inner);
}

#[test]
fn huge_declared_lengths_and_truncated_streams_are_refused() {
    // A literal packet that claims 4 GiB and carries 10 bytes.
    let mut huge = vec![0xcb, 0xff];
    huge.extend(u32::MAX.to_be_bytes());
    huge.extend_from_slice(b"b\0\0\0\0\0abcd");
    refused_everywhere("4 GiB literal", &huge);
    refused_by_the_verifier("4 GiB literal", &huge);
    // An old-format packet with an indeterminate length around a claimed
    // 2 GiB PKESK.
    let mut pkesk = vec![0xc1, 0xff];
    pkesk.extend(0x7fff_ffffu32.to_be_bytes());
    pkesk.push(6);
    refused_everywhere("2 GiB PKESK", &pkesk);
    // Partial body lengths that never end.
    let mut partial = vec![0xcb, 0xef]; // 2^15-byte partial chunk
    partial.extend(vec![0u8; 100]);
    refused_everywhere("unfinished partial body", &partial);
    refused_by_the_verifier("unfinished partial body", &partial);

    // A real ballot cut short at many places: the structure check refuses
    // what it can see is short; decryption refuses all of them.
    let msg = encrypt(key(), &vec![b'x'; 200_000]).unwrap();
    let mut structure_refused = 0;
    for cut in (1..msg.len()).step_by(msg.len() / 97) {
        let short = &msg[..cut];
        if check_structure(short, &subkeys(), MAX).is_err() {
            structure_refused += 1;
        }
        assert!(
            decrypt(short, key(), None, MAX).is_err(),
            "decrypted a ballot cut at {cut} of {}",
            msg.len()
        );
    }
    println!("truncated ballots: the structure check refused {structure_refused} of ~97 cuts; decryption all");
    // More output than allowed is refused, not truncated.
    let big = encrypt(key(), &vec![b'x'; MAX + 1]).unwrap();
    assert!(decrypt(&big, key(), None, MAX).is_err());
}

/// Writes bits least-significant first, as DEFLATE does.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, most significant bit first.
    fn put_rev(&mut self, code: u64, bits: u32) {
        let mut r = 0;
        for i in 0..bits {
            r |= ((code >> i) & 1) << (bits - 1 - i);
        }
        self.put(r, bits);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}
