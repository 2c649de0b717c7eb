//! A KMIP server's response is untrusted. Properties: reading it for a
//! batch of operations (the batch items, a failure's result reason and
//! message, a Get's object given back in each encoding, identifiers, names)
//! never panics; a refusal is one of the kinds a KMIP failure maps to, has
//! a `KmipFailure` or `MalformedResponse` source, and its message holds no
//! control characters; an accepted identifier is one the catalog can keep.
//!
//! The first byte picks the batch. With its top bit clear the rest is the
//! response as sent; with it set the rest is a small program that builds
//! the TTLV from tags a response is made of, so most runs get past the
//! framing to the parts that read the items.
#![no_main]

use std::error::Error as _;

use keywarden::backend::kmip::{KmipFailure, MalformedResponse, Operation};
use keywarden::fuzzing::kmip::response_payloads;
use keywarden::{Error, ErrorKind};
use libfuzzer_sys::fuzz_target;

use Operation::*;

const BATCHES: [&[Operation]; 9] = [
    &[Get, GetAttributes],
    &[Get],
    &[GetAttributes],
    &[Register],
    &[Create],
    &[CreateKeyPair],
    &[Destroy],
    &[Revoke],
    &[Query],
];

/// Tags from KMIP 1.x §9.1.3.1 that responses to these operations use.
const TAGS: [u32; 32] = [
    0x42000F, // Batch Item
    0x42005C, // Operation
    0x42007F, // Result Status
    0x42007E, // Result Reason
    0x42007D, // Result Message
    0x42007C, // Response Payload
    0x420094, // Unique Identifier
    0x420066, // Private Key Unique Identifier
    0x42006F, // Public Key Unique Identifier
    0x420057, // Object Type
    0x42008F, // Symmetric Key
    0x420064, // Private Key
    0x42006D, // Public Key
    0x420013, // Certificate
    0x420085, // Secret Data
    0x42005B, // Opaque Object
    0x420040, // Key Block
    0x420042, // Key Format Type
    0x420045, // Key Value
    0x420043, // Key Material
    0x42001E, // Certificate Value
    0x42005A, // Opaque Data Value
    0x420008, // Attribute
    0x42000A, // Attribute Name
    0x42000B, // Attribute Value
    0x420055, // Name Value
    0x420046, // Key Wrapping Data
    0x42000D, // Batch Count
    0x42007A, // Response Header
    0x42007B, // Response Message
    0x420028, // Cryptographic Algorithm
    0x540000, // an extension tag
];

fn item(out: &mut Vec<u8>, tag: u32, kind: u8, value: &[u8]) {
    out.extend_from_slice(&tag.to_be_bytes()[1..]);
    out.push(kind);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    if kind != 0x01 {
        out.resize(out.len().div_ceil(8) * 8, 0);
    }
}

/// A Response Message (with a Response Header) around what `program`
/// builds. Each step is one byte: the top three bits say what to write,
/// the rest pick its tag; values come from the bytes after it.
fn build(program: &[u8]) -> Vec<u8> {
    let mut open: Vec<(u32, Vec<u8>)> = vec![(0x42007B, Vec::new())];
    item(&mut open[0].1, 0x42007A, 0x01, &[]);
    let mut steps = program.iter().copied();
    while let Some(step) = steps.next() {
        let tag = TAGS[usize::from(step & 0x1F)];
        let mut take = |n: usize| steps.by_ref().take(n).collect::<Vec<u8>>();
        let (kind, value) = match step >> 5 {
            0 => {
                open.push((tag, Vec::new()));
                continue;
            }
            1 => {
                close(&mut open);
                continue;
            }
            2 => (
                0x05,
                u32::from(take(1).first().copied().unwrap_or(0))
                    .to_be_bytes()
                    .to_vec(),
            ),
            3 => (0x05, take(4)),
            4 => {
                let len = take(1).first().map_or(0, |n| usize::from(n % 64));
                (0x07, take(len))
            }
            5 => {
                let len = take(1).first().map_or(0, |n| usize::from(*n));
                (0x08, take(len))
            }
            6 => (0x07, b"Name".to_vec()),
            _ => (0x02, take(4)),
        };
        let top = &mut open.last_mut().expect("the message stays open").1;
        item(top, tag, kind, &value);
    }
    while open.len() > 1 {
        close(&mut open);
    }
    let (tag, body) = open.pop().expect("the message");
    let mut out = Vec::new();
    item(&mut out, tag, 0x01, &body);
    out
}

/// Ends the innermost open structure, unless it is the message itself.
fn close(open: &mut Vec<(u32, Vec<u8>)>) {
    if open.len() > 1 {
        let (tag, body) = open.pop().expect("more than the message is open");
        item(
            &mut open.last_mut().expect("the message").1,
            tag,
            0x01,
            &body,
        );
    }
}

fn check(e: &Error) {
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Storage
                | ErrorKind::NotFound
                | ErrorKind::PermissionDenied
                | ErrorKind::InvalidInput
                | ErrorKind::Unsupported
                | ErrorKind::Conflict
        ),
        "{e:?}"
    );
    let source = e.source().expect("a typed source");
    assert!(
        source.is::<KmipFailure>() || source.is::<MalformedResponse>(),
        "{e:?}"
    );
    assert!(!e.to_string().chars().any(char::is_control), "{e:?}");
}

fn check_uid(uid: &str) {
    assert!(!uid.is_empty() && uid.len() <= 128, "{uid:?}");
    assert!(!uid.chars().any(char::is_control), "{uid:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let operations = BATCHES[usize::from(selector & 0x7F) % BATCHES.len()];
    let built;
    let bytes = if selector & 0x80 == 0 {
        rest
    } else {
        built = build(rest);
        &built
    };
    let payloads = match response_payloads(operations, bytes) {
        Ok(p) => p,
        Err(e) => return check(&e),
    };
    assert_eq!(payloads.len(), operations.len());
    for (&operation, payload) in operations.iter().zip(&payloads) {
        match operation {
            Get => {
                for encoding in 0..3 {
                    if let Err(e) = payload.retrieved(encoding) {
                        check(&e);
                    }
                }
            }
            GetAttributes => {
                let _ = payload.names();
            }
            Register | Create => match payload.uid(operation) {
                Ok(uid) => check_uid(&uid),
                Err(e) => check(&e),
            },
            CreateKeyPair => match payload.key_pair_uids() {
                Ok((private, public)) => {
                    check_uid(&private);
                    check_uid(&public);
                }
                Err(e) => check(&e),
            },
            _ => {}
        }
    }
});
