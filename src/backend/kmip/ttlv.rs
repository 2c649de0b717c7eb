//! The TTLV encoding (KMIP 1.x §9.1): a small writer for the requests we
//! build ourselves and a bounded reader for every response.
//!
//! Responses are untrusted: the reader checks every length against what is
//! left, caps the nesting depth, and keeps byte strings (key material) in
//! [`SecretBytes`]. Requests are written into one buffer reserved up front
//! and wiped on drop, so material being registered leaves no copies behind.

use std::fmt;

use zeroize::Zeroizing;

use crate::secret::SecretBytes;

/// Item types (KMIP 1.0 §9.1.1.2).
const STRUCTURE: u8 = 0x01;
const INTEGER: u8 = 0x02;
const LONG_INTEGER: u8 = 0x03;
const BIG_INTEGER: u8 = 0x04;
const ENUMERATION: u8 = 0x05;
const BOOLEAN: u8 = 0x06;
const TEXT_STRING: u8 = 0x07;
const BYTE_STRING: u8 = 0x08;
const DATE_TIME: u8 = 0x09;
const INTERVAL: u8 = 0x0A;

/// Deeper than any KMIP 1.x response nests.
const MAX_DEPTH: usize = 16;

/// The fixed part of an item: tag (3), type (1), length (4).
pub const HEADER_LEN: usize = 8;

/// `len` rounded up to whole 8-byte units, or `None` past `usize::MAX`:
/// a length read from a peer is up to `u32::MAX`, which a 32-bit `usize`
/// holds but cannot round up.
fn padded(len: usize) -> Option<usize> {
    len.checked_next_multiple_of(8)
}

/// Writes TTLV into a wiped buffer that never reallocates (past `capacity`
/// it still works, but callers size it so it does not).
pub struct Writer {
    buf: Zeroizing<Vec<u8>>,
}

impl Writer {
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            buf: Zeroizing::new(Vec::with_capacity(capacity)),
        }
    }

    fn header(&mut self, tag: u32, kind: u8, len: usize) {
        let tag = tag.to_be_bytes();
        self.buf.extend_from_slice(&tag[1..]);
        self.buf.push(kind);
        // Lengths come from our own requests (bounded by the payload limit).
        self.buf
            .extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }

    fn pad(&mut self, len: usize) {
        // `len` bytes were just written, so `len` is far from `usize::MAX`.
        let padding = (8 - len % 8) % 8;
        let new_len = self.buf.len() + padding;
        self.buf.resize(new_len, 0);
    }

    /// A structure whose items `body` writes; its length is filled in after.
    pub fn structure(&mut self, tag: u32, body: impl FnOnce(&mut Writer)) {
        self.header(tag, STRUCTURE, 0);
        let len_at = self.buf.len() - 4;
        let start = self.buf.len();
        body(self);
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn integer(&mut self, tag: u32, value: i32) {
        self.four(tag, INTEGER, value.to_be_bytes());
    }

    pub fn enumeration(&mut self, tag: u32, value: u32) {
        self.four(tag, ENUMERATION, value.to_be_bytes());
    }

    pub fn text(&mut self, tag: u32, value: &str) {
        self.header(tag, TEXT_STRING, value.len());
        self.buf.extend_from_slice(value.as_bytes());
        self.pad(value.len());
    }

    /// A text string from secret bytes (a password), never held as `String`.
    pub fn secret_text(&mut self, tag: u32, value: &SecretBytes) {
        self.header(tag, TEXT_STRING, value.len());
        self.buf.extend_from_slice(value.expose_secret());
        self.pad(value.len());
    }

    pub fn bytes(&mut self, tag: u32, value: &[u8]) {
        self.header(tag, BYTE_STRING, value.len());
        self.buf.extend_from_slice(value);
        self.pad(value.len());
    }

    /// A decoded item written back in the canonical form: zero padding,
    /// Booleans as 0 or 1. The reader accepts other padding and Boolean
    /// bytes, so only a canonical message comes back byte for byte.
    pub fn item(&mut self, item: &Item) {
        let tag = item.tag;
        match &item.value {
            Value::Structure(items) => self.structure(tag, |w| {
                for i in items {
                    w.item(i);
                }
            }),
            Value::Integer(v) => self.integer(tag, *v),
            Value::Enumeration(v) => self.enumeration(tag, *v),
            Value::Interval(v) => self.four(tag, INTERVAL, v.to_be_bytes()),
            Value::LongInteger(v) => self.eight(tag, LONG_INTEGER, v.to_be_bytes()),
            Value::DateTime(v) => self.eight(tag, DATE_TIME, v.to_be_bytes()),
            Value::Boolean(v) => self.eight(tag, BOOLEAN, u64::from(*v).to_be_bytes()),
            Value::Text(t) => self.text(tag, t),
            Value::Bytes(b) => self.bytes(tag, b.expose_secret()),
            Value::BigInteger(b) => {
                self.header(tag, BIG_INTEGER, b.len());
                self.buf.extend_from_slice(b.expose_secret());
                self.pad(b.len());
            }
        }
    }

    fn four(&mut self, tag: u32, kind: u8, value: [u8; 4]) {
        self.header(tag, kind, 4);
        self.buf.extend_from_slice(&value);
        self.pad(4);
    }

    fn eight(&mut self, tag: u32, kind: u8, value: [u8; 8]) {
        self.header(tag, kind, 8);
        self.buf.extend_from_slice(&value);
    }

    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

/// One decoded item.
pub struct Item {
    pub tag: u32,
    pub value: Value,
}

/// A decoded value. Byte strings may be key material and stay secret.
/// Every type is decoded (and so length-checked), though the responses we
/// read use only some of them.
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    BigInteger(SecretBytes),
    Enumeration(u32),
    Boolean(bool),
    Text(String),
    Bytes(SecretBytes),
    DateTime(i64),
    Interval(u32),
}

/// Why a response could not be decoded. Never holds response bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    BadLength { tag: u32 },
    UnknownType { tag: u32, kind: u8 },
    TooDeep,
    NotUtf8 { tag: u32 },
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("TTLV item runs past the end of the message"),
            DecodeError::BadLength { tag } => write!(f, "TTLV item {tag:06X} has a bad length"),
            DecodeError::UnknownType { tag, kind } => {
                write!(f, "TTLV item {tag:06X} has unknown type {kind:#04x}")
            }
            DecodeError::TooDeep => write!(f, "TTLV nests deeper than {MAX_DEPTH} levels"),
            DecodeError::NotUtf8 { tag } => write!(f, "TTLV text {tag:06X} is not UTF-8"),
            DecodeError::TrailingBytes => f.write_str("bytes after the TTLV message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one item filling `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Item, DecodeError> {
    let (item, used) = decode_item(bytes, 0)?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(item)
}

/// The tag, type and value length in an item header.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> (u32, u8, usize) {
    let tag = u32::from_be_bytes([0, h[0], h[1], h[2]]);
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    (tag, h[3], len)
}

fn decode_item(bytes: &[u8], depth: usize) -> Result<(Item, usize), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DecodeError::Truncated)?;
    let (tag, kind, len) = parse_header(header);
    // A length that cannot even be rounded up is longer than any input.
    let body_len = if kind == STRUCTURE {
        len
    } else {
        padded(len).ok_or(DecodeError::Truncated)?
    };
    let body = bytes
        .get(HEADER_LEN..HEADER_LEN.saturating_add(body_len))
        .ok_or(DecodeError::Truncated)?;
    let value_bytes = &body[..len];
    let fixed = |want: usize| -> Result<[u8; 8], DecodeError> {
        if len != want {
            return Err(DecodeError::BadLength { tag });
        }
        let mut out = [0u8; 8];
        out[8 - want..].copy_from_slice(value_bytes);
        Ok(out)
    };
    let value = match kind {
        STRUCTURE => {
            let mut items = Vec::new();
            let mut at = 0;
            while at < body.len() {
                let (item, used) = decode_item(&body[at..], depth + 1)?;
                items.push(item);
                at += used;
            }
            Value::Structure(items)
        }
        INTEGER => Value::Integer(i32::from_be_bytes(
            fixed(4)?[4..]
                .try_into()
                .map_err(|_| DecodeError::BadLength { tag })?,
        )),
        ENUMERATION => Value::Enumeration(u32::from_be_bytes(
            fixed(4)?[4..]
                .try_into()
                .map_err(|_| DecodeError::BadLength { tag })?,
        )),
        INTERVAL => Value::Interval(u32::from_be_bytes(
            fixed(4)?[4..]
                .try_into()
                .map_err(|_| DecodeError::BadLength { tag })?,
        )),
        LONG_INTEGER => Value::LongInteger(i64::from_be_bytes(fixed(8)?)),
        DATE_TIME => Value::DateTime(i64::from_be_bytes(fixed(8)?)),
        BOOLEAN => Value::Boolean(u64::from_be_bytes(fixed(8)?) != 0),
        BIG_INTEGER => Value::BigInteger(SecretBytes::copy_from(value_bytes)),
        TEXT_STRING => Value::Text(
            std::str::from_utf8(value_bytes)
                .map_err(|_| DecodeError::NotUtf8 { tag })?
                .to_owned(),
        ),
        BYTE_STRING => Value::Bytes(SecretBytes::copy_from(value_bytes)),
        other => return Err(DecodeError::UnknownType { tag, kind: other }),
    };
    Ok((Item { tag, value }, HEADER_LEN + body_len))
}

impl Item {
    /// The items of a structure (empty for anything else).
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        self.children().iter().find(|i| i.tag == tag)
    }

    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn as_int(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&SecretBytes> {
        match &self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a 32-bit target a peer's length of `u32::MAX` is `usize::MAX`:
    /// rounding it up must not overflow (a panic, or a wrap to 0 that
    /// would read the next item's bytes as this one's padding).
    #[test]
    fn padding_never_overflows() {
        assert_eq!(padded(0), Some(0));
        assert_eq!(padded(1), Some(8));
        assert_eq!(padded(8), Some(8));
        assert_eq!(padded(usize::MAX - 7), Some(usize::MAX - 7));
        assert_eq!(padded(usize::MAX - 6), None);
        assert_eq!(padded(usize::MAX), None);
        let mut huge = vec![0x42, 0x00, 0x01, 0x07, 0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(&[0; 16]);
        assert!(matches!(decode(&huge), Err(DecodeError::Truncated)));
    }

    #[test]
    fn written_structures_decode_back() {
        let mut w = Writer::with_capacity(256);
        w.structure(0x420078, |w| {
            w.integer(0x42006A, 1);
            w.enumeration(0x42005C, 3);
            w.text(0x420094, "uid-12");
            w.bytes(0x420043, &[1, 2, 3]);
        });
        let bytes = w.into_bytes();
        assert_eq!(bytes.len() % 8, 0);
        let item = decode(&bytes).unwrap();
        assert_eq!(item.tag, 0x420078);
        assert_eq!(item.child(0x42006A).and_then(Item::as_int), Some(1));
        assert_eq!(item.child(0x42005C).and_then(Item::as_enum), Some(3));
        assert_eq!(item.child(0x420094).and_then(Item::as_text), Some("uid-12"));
        assert_eq!(
            item.child(0x420043)
                .and_then(Item::as_bytes)
                .map(|b| b.expose_secret().to_vec()),
            Some(vec![1, 2, 3])
        );
    }

    fn item_bytes(item: &Item) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.item(item);
        w.into_bytes().to_vec()
    }

    #[test]
    fn every_type_writes_back_to_the_same_bytes() {
        let mut message = Vec::new();
        let mut push = |kind: u8, value: &[u8]| {
            message.extend_from_slice(&[0x42, 0x00, 0x10, kind]);
            message.extend_from_slice(&(value.len() as u32).to_be_bytes());
            message.extend_from_slice(value);
            message.resize(message.len().div_ceil(8) * 8, 0);
        };
        push(INTEGER, &(-2i32).to_be_bytes());
        push(LONG_INTEGER, &i64::MIN.to_be_bytes());
        push(BIG_INTEGER, &[0xff; 9]);
        push(ENUMERATION, &7u32.to_be_bytes());
        push(BOOLEAN, &1u64.to_be_bytes());
        push(TEXT_STRING, "héllo".as_bytes());
        push(BYTE_STRING, &[]);
        push(DATE_TIME, &1_700_000_000i64.to_be_bytes());
        push(INTERVAL, &86_400u32.to_be_bytes());
        let mut whole = vec![0x42, 0x00, 0x7B, STRUCTURE];
        whole.extend_from_slice(&(message.len() as u32).to_be_bytes());
        whole.extend_from_slice(&message);
        let item = decode(&whole).unwrap();
        assert_eq!(item.children().len(), 9);
        assert_eq!(item_bytes(&item), whole);
    }

    #[test]
    fn loose_padding_and_booleans_are_read_and_written_canonically() {
        let mut w = Writer::with_capacity(64);
        w.structure(0x420078, |w| w.text(0x420094, "abc"));
        let canonical = w.into_bytes().to_vec();
        let mut loose = canonical.clone();
        *loose.last_mut().unwrap() = 0xAA;
        let item = decode(&loose).unwrap();
        assert_eq!(item.child(0x420094).and_then(Item::as_text), Some("abc"));
        assert_eq!(item_bytes(&item), canonical);

        let mut boolean = vec![0x42, 0x00, 0x10, BOOLEAN, 0, 0, 0, 8];
        boolean.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x80, 0]);
        let written = item_bytes(&decode(&boolean).unwrap());
        assert_eq!(written[8..], [0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let mut w = Writer::with_capacity(64);
        w.structure(0x420078, |w| w.text(0x420094, "abcdefghij"));
        let good = w.into_bytes();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A length field far past the end.
        let mut long = good.to_vec();
        long[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&long).err(), Some(DecodeError::Truncated));
        // An integer with a wrong length.
        let bad_int = [0x42, 0, 0x6A, INTEGER, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            decode(&bad_int),
            Err(DecodeError::BadLength { .. })
        ));
        // Deep nesting.
        let mut deep = Vec::new();
        for i in 0..40u32 {
            deep.extend_from_slice(&[0x42, 0, 1, STRUCTURE]);
            deep.extend_from_slice(&((40 - i - 1) * 8).to_be_bytes());
        }
        assert_eq!(decode(&deep).err(), Some(DecodeError::TooDeep));
    }
}
