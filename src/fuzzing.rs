//! Ways in for the fuzz targets (`fuzz/`) to decoders that are private to
//! their modules. Hidden from the docs and no part of the API: it changes
//! whenever the targets need it to. Each function only forwards to the code
//! the library runs, so what the targets find is what the library does.

#[cfg(feature = "kmip")]
pub mod kmip {
    //! Bytes from a KMIP server, and the KMIP backend's catalog record.

    use zeroize::Zeroizing;

    use crate::backend::kmip::message::{self, Operation};
    use crate::backend::kmip::ttlv::{self, Writer};
    use crate::backend::kmip::{Encoding, Record, give_back};
    use crate::error::Result;
    use crate::secret::SecretBytes;

    /// Decodes one TTLV message and writes it back in the canonical form
    /// (zero padding, Booleans 0 or 1); `None` when it does not decode.
    pub fn ttlv_canonical(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let item = ttlv::decode(bytes).ok()?;
        let mut w = Writer::with_capacity(bytes.len());
        w.item(&item);
        Some(w.into_bytes())
    }

    /// The payloads of a response to one request with a batch item per
    /// operation, read as the backend reads them.
    pub fn response_payloads(
        operations: &[Operation],
        bytes: &[u8],
    ) -> Result<Vec<ResponsePayload>> {
        let first = operations.first().copied().unwrap_or(Operation::Query);
        let message = message::decode_response(first, bytes)?;
        Ok(message::response_payloads(operations, message)?
            .into_iter()
            .map(ResponsePayload)
            .collect())
    }

    /// One batch item's Response Payload.
    pub struct ResponsePayload(ttlv::Item);

    impl ResponsePayload {
        /// A Get payload's object as a record with the `encoding`-th way
        /// of giving material back (modulo their number) returns it.
        pub fn retrieved(&self, encoding: usize) -> Result<SecretBytes> {
            let retrieved = message::retrieved(&self.0)?;
            let record = Record {
                object_type: retrieved.object_type,
                encoding: Encoding::ALL[encoding % Encoding::ALL.len()],
                uid: "fuzz".to_owned(),
            };
            give_back(&record, retrieved)
        }

        /// The Name values of a Get Attributes payload.
        pub fn names(&self) -> Vec<&str> {
            message::names(&self.0)
        }

        /// The Unique Identifier of a Register or Create payload.
        pub fn uid(&self, operation: Operation) -> Result<String> {
            message::uid(operation, self.0.child(message::UNIQUE_IDENTIFIER))
        }

        /// Both Unique Identifiers of a Create Key Pair payload.
        pub fn key_pair_uids(&self) -> Result<(String, String)> {
            message::key_pair_uids(&self.0)
        }
    }

    /// Parses the KMIP backend's catalog record and writes it back.
    pub fn record(bytes: &[u8]) -> Result<Vec<u8>> {
        Record::parse(bytes).map(|r| r.to_bytes())
    }
}

#[cfg(feature = "pkcs11")]
pub mod pkcs11 {
    //! The PKCS#11 backend's catalog records (wrapped project KEKs, secret
    //! ciphertexts), parsed as the backend parses them before any token call.

    use crate::backend::pkcs11::record::{KekRecord, SecretRecord};
    use crate::error::Result;

    /// Parses a wrapped project KEK and writes it back; the wrapped key and
    /// the HMAC as parsed.
    pub fn kek_record(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        KekRecord::parse(bytes).map(|r| (r.to_bytes(), r.wrapped_key.to_vec(), r.mac.to_vec()))
    }

    /// Parses a secret's ciphertext record and writes it back.
    pub fn secret_record(bytes: &[u8]) -> Result<Vec<u8>> {
        SecretRecord::parse(bytes).map(|r| r.to_bytes())
    }
}
