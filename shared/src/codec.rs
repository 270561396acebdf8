//! The binary encoding shared by every format of this crate.
//!
//! The notation is that of TLS (RFC 8446, section 3): big-endian integers,
//! and variable-length vectors preceded by their length in a fixed number of
//! bytes (`opaque x<0..2^16-1>` has a two-byte length). Each value has
//! exactly one encoding, so a format built from these pieces is canonical:
//! re-encoding what was read gives back the same bytes.
//!
//! Readers never trust a declared length: every vector has a maximum that the
//! format states, checked before anything is allocated, and every read is
//! bounds-checked. [`Reader::finish`] refuses trailing bytes.
//!
//! The specification of this encoding is `docs/spec/encoding.md`.

use thiserror::Error;

/// Why bytes could not be decoded as a format of this crate.
///
/// Every variant names the field (`what`) so that an operator can tell which
/// part of which file was wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("{what}: the data ends too early")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// A length field declares more than the format allows.
    #[error("{what}: length {len} exceeds the limit of {max}")]
    TooLong {
        /// The field being read.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The most the format allows.
        max: u64,
    },
    /// Bytes follow the end of the structure.
    #[error("{what}: {count} unexpected bytes after the end")]
    TrailingBytes {
        /// The structure that was complete.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// The data does not start with the format's magic string.
    #[error("not a {what}: the data does not start with the expected marker")]
    BadMagic {
        /// The format that was expected.
        what: &'static str,
    },
    /// The version number is not one this program understands.
    #[error("{what}: unsupported version {version}")]
    UnknownVersion {
        /// The format.
        what: &'static str,
        /// The version found.
        version: u8,
    },
    /// A field has a value outside its allowed set.
    #[error("{what}: {reason}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A bounds-checked cursor over an input buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(DecodeError::Truncated { what })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { what })?;
        self.pos = end;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a vector with a one-byte length, at most `max` bytes long.
    pub fn vec8(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = u64::from(self.u8(what)?);
        self.bounded(len, max, what)
    }

    /// Reads a vector with a two-byte length, at most `max` bytes long.
    pub fn vec16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = u64::from(self.u16(what)?);
        self.bounded(len, max, what)
    }

    /// Reads a vector with a four-byte length, at most `max` bytes long.
    pub fn vec32(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = u64::from(self.u32(what)?);
        self.bounded(len, max, what)
    }

    fn bounded(
        &mut self,
        len: u64,
        max: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len > max as u64 {
            return Err(DecodeError::TooLong {
                what,
                len,
                max: max as u64,
            });
        }
        // `len <= max`, which is a `usize`, so this conversion cannot fail.
        let len = usize::try_from(len).map_err(|_| DecodeError::TooLong {
            what,
            len,
            max: max as u64,
        })?;
        self.take(len, what)
    }

    /// Reads a UTF-8 string with a one-byte length.
    pub fn string8(&mut self, max: usize, what: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.vec8(max, what)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue {
            what,
            reason: "not valid UTF-8",
        })
    }

    /// Reads a UTF-8 string with a two-byte length.
    pub fn string16(&mut self, max: usize, what: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.vec16(max, what)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue {
            what,
            reason: "not valid UTF-8",
        })
    }

    /// Checks and skips a magic string.
    pub fn magic(&mut self, magic: &[u8], what: &'static str) -> Result<(), DecodeError> {
        let got = self
            .take(magic.len(), what)
            .map_err(|_| DecodeError::BadMagic { what })?;
        if got != magic {
            return Err(DecodeError::BadMagic { what });
        }
        Ok(())
    }

    /// Reads a version byte and checks that it is `expected`.
    pub fn version(&mut self, expected: u8, what: &'static str) -> Result<(), DecodeError> {
        let version = self.u8(what)?;
        if version != expected {
            return Err(DecodeError::UnknownVersion { what, version });
        }
        Ok(())
    }

    /// Ends reading: fails if any byte is left.
    pub fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }
}

/// Why a value could not be encoded (it is longer than its length field).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{what}: length {len} does not fit the format's limit of {max}")]
pub struct EncodeError {
    /// The field.
    pub what: &'static str,
    /// Its length.
    pub len: usize,
    /// The most the format allows.
    pub max: usize,
}

/// Accumulates an encoding.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// How many bytes are written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.raw(&v.to_be_bytes());
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_be_bytes());
    }

    /// Appends a vector with a one-byte length; `max` is the format's limit.
    pub fn vec8(&mut self, v: &[u8], max: usize, what: &'static str) -> Result<(), EncodeError> {
        let len = check_len(v, max.min(0xff), what)?;
        self.u8(len as u8);
        self.raw(v);
        Ok(())
    }

    /// Appends a vector with a two-byte length; `max` is the format's limit.
    pub fn vec16(&mut self, v: &[u8], max: usize, what: &'static str) -> Result<(), EncodeError> {
        let len = check_len(v, max.min(0xffff), what)?;
        self.u16(len as u16);
        self.raw(v);
        Ok(())
    }

    /// Appends a vector with a four-byte length; `max` is the format's limit.
    pub fn vec32(&mut self, v: &[u8], max: usize, what: &'static str) -> Result<(), EncodeError> {
        let len = check_len(v, max.min(0xffff_ffff), what)?;
        self.u32(len as u32);
        self.raw(v);
        Ok(())
    }
}

fn check_len(v: &[u8], max: usize, what: &'static str) -> Result<usize, EncodeError> {
    if v.len() > max {
        return Err(EncodeError {
            what,
            len: v.len(),
            max,
        });
    }
    Ok(v.len())
}

/// Checks an identifier of the restricted alphabet used for election ids,
/// ballot styles and voter ids: 1 to `max` characters from `A-Z a-z 0-9 - _ . :`.
///
/// A small alphabet keeps these values safe to print, to use in file names
/// chosen by the verifier, and to compare without Unicode normalisation.
pub fn check_identifier(s: &str, max: usize, what: &'static str) -> Result<(), DecodeError> {
    if s.is_empty() {
        return Err(DecodeError::InvalidValue {
            what,
            reason: "must not be empty",
        });
    }
    if s.len() > max {
        return Err(DecodeError::TooLong {
            what,
            len: s.len() as u64,
            max: max as u64,
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(DecodeError::InvalidValue {
            what,
            reason: "may only contain letters, digits, '-', '_', '.' and ':'",
        });
    }
    Ok(())
}

/// Checks free text (titles, declarations): printable, no control characters
/// other than newline and tab.
pub fn check_text(s: &str, what: &'static str) -> Result<(), DecodeError> {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(DecodeError::InvalidValue {
            what,
            reason: "contains control characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_width() {
        let mut w = Writer::new();
        w.u8(1);
        w.u16(0x0203);
        w.u32(0x0405_0607);
        w.u64(0x0809_0a0b_0c0d_0e0f);
        w.vec8(b"ab", 10, "a").unwrap();
        w.vec16(b"cde", 10, "b").unwrap();
        w.vec32(b"", 10, "c").unwrap();
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("x").unwrap(), 1);
        assert_eq!(r.u16("x").unwrap(), 0x0203);
        assert_eq!(r.u32("x").unwrap(), 0x0405_0607);
        assert_eq!(r.u64("x").unwrap(), 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(r.vec8(10, "a").unwrap(), b"ab");
        assert_eq!(r.vec16(10, "b").unwrap(), b"cde");
        assert_eq!(r.vec32(10, "c").unwrap(), b"");
        r.finish("all").unwrap();
    }

    #[test]
    fn refuses_a_declared_length_over_the_limit_before_reading_it() {
        // Declares 4 GiB; only the length is present.
        let bytes = [0xff, 0xff, 0xff, 0xff];
        let err = Reader::new(&bytes).vec32(1024, "ballot").unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLong {
                what: "ballot",
                len: 0xffff_ffff,
                max: 1024
            }
        );
    }

    #[test]
    fn refuses_truncated_input_and_trailing_bytes() {
        assert_eq!(
            Reader::new(&[0, 5, b'a']).vec16(10, "name").unwrap_err(),
            DecodeError::Truncated { what: "name" }
        );
        let mut r = Reader::new(&[1, 2]);
        r.u8("x").unwrap();
        assert_eq!(
            r.finish("thing").unwrap_err(),
            DecodeError::TrailingBytes {
                what: "thing",
                count: 1
            }
        );
    }

    #[test]
    fn refuses_to_write_a_value_longer_than_its_field() {
        let mut w = Writer::new();
        assert!(w.vec8(&[0; 300], 1000, "x").is_err());
        assert!(w.vec16(&[0; 11], 10, "x").is_err());
    }

    #[test]
    fn identifiers_use_a_small_alphabet() {
        check_identifier("2026-general.county-12", 64, "id").unwrap();
        assert!(check_identifier("", 64, "id").is_err());
        assert!(check_identifier("a/b", 64, "id").is_err());
        assert!(check_identifier("é", 64, "id").is_err());
        assert!(check_identifier(&"a".repeat(65), 64, "id").is_err());
        assert!(check_text("line\nline", "t").is_ok());
        assert!(check_text("bell\u{7}", "t").is_err());
    }
}
