//! The envelope around every recorded event, and its tamper-evident record encoding.
//!
//! A record is `bincode(envelope) ++ sha256(bincode(envelope))`. The trailing hash makes
//! every record self-checking (a flipped byte anywhere is found), and each envelope holds
//! the hash of its predecessor, so records cannot be dropped, reordered or replaced
//! without breaking the chain.

use crate::time::Timestamp;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

/// Version of the envelope layout. Bumped only with a reader for every older version.
pub const SCHEMA_VERSION: u16 = 1;

/// Length of a record hash.
pub const HASH_LEN: usize = 32;

/// A SHA-256 digest of one record's envelope bytes.
pub type Hash = [u8; HASH_LEN];

/// One recorded event with what the audit needs to trust and explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<E> {
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: u16,
    /// Position in its stream, from 1 without gaps.
    pub sequence: u64,
    /// When the event was decided.
    pub timestamp: Timestamp,
    /// The request (or scheduler tick) that caused it; logs carry the same id.
    pub cause: Uuid,
    /// Hash of the previous record of the stream; zeros for the first.
    pub prev_hash: Hash,
    /// The fact itself.
    pub event: E,
}

/// Why bytes could not be read back as a record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than a hash: cut off.
    #[error("record is truncated ({0} bytes)")]
    Truncated(usize),
    /// The bytes do not match their own hash: altered or torn.
    #[error("record checksum does not match its contents")]
    Checksum,
    /// The envelope bytes do not decode.
    #[error("record does not decode: {0}")]
    Malformed(String),
    /// Written by a newer slotpool.
    #[error("record has schema version {0}, this slotpool reads up to {SCHEMA_VERSION}")]
    Version(u16),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes an envelope as a record; returns the bytes and the record's hash.
pub fn encode<E: Serialize>(envelope: &Envelope<E>) -> (Vec<u8>, Hash) {
    // Encoding plain data into a Vec cannot fail; an error here is a bug in an event type.
    let mut bytes = bincode::serde::encode_to_vec(envelope, config())
        .expect("events are plain data and always encode");
    let hash: Hash = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&hash);
    (bytes, hash)
}

/// Checks a record's own hash and decodes it; returns the envelope and the hash.
pub fn decode<E: DeserializeOwned>(record: &[u8]) -> Result<(Envelope<E>, Hash), DecodeError> {
    if record.len() < HASH_LEN {
        return Err(DecodeError::Truncated(record.len()));
    }
    let (body, trailer) = record.split_at(record.len() - HASH_LEN);
    let hash: Hash = Sha256::digest(body).into();
    if hash[..] != trailer[..] {
        return Err(DecodeError::Checksum);
    }
    let (Wire(envelope), used): (Wire<E>, usize) = bincode::decode_from_slice(body, config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes after the envelope",
            body.len() - used
        )));
    }
    if envelope.schema_version > SCHEMA_VERSION {
        return Err(DecodeError::Version(envelope.schema_version));
    }
    Ok((envelope, hash))
}

/// An envelope as [`decode`] reads it: the fixed fields with bincode's own decoders, the
/// event through serde.
///
/// The bytes are exactly those serde's derive writes ([`encode`] keeps it, and the golden
/// fixtures pin it): `schema_version`, `sequence` and `timestamp` as varints, `cause` as
/// serde bytes (a length, 16, then the bytes), `prev_hash` as 32 plain bytes. Read through
/// serde, the hash is visited byte by byte (a quarter of a checker's decoding time in the
/// audit of a long stream) and the cause is copied into a fresh `Vec`; bincode reads
/// both in one go.
struct Wire<E>(Envelope<E>);

impl<E: DeserializeOwned> bincode::Decode<()> for Wire<E> {
    fn decode<D: bincode::de::Decoder<Context = ()>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let schema_version = u16::decode(decoder)?;
        let sequence = u64::decode(decoder)?;
        let timestamp = Timestamp(i64::decode(decoder)?);
        let cause_len = u64::decode(decoder)?;
        if cause_len != 16 {
            return Err(bincode::error::DecodeError::OtherString(format!(
                "a cause of {cause_len} bytes (a UUID has 16)"
            )));
        }
        let cause = Uuid::from_bytes(<[u8; 16]>::decode(decoder)?);
        let prev_hash = <Hash>::decode(decoder)?;
        let bincode::serde::Compat(event) = bincode::serde::Compat::<E>::decode(decoder)?;
        Ok(Wire(Envelope {
            schema_version,
            sequence,
            timestamp,
            cause,
            prev_hash,
            event,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ProductEvent;

    fn envelope(sequence: u64, timestamp: i64, event: ProductEvent) -> Envelope<ProductEvent> {
        Envelope {
            schema_version: SCHEMA_VERSION,
            sequence,
            timestamp: Timestamp(timestamp),
            cause: Uuid::from_u128(
                0x0123_4567_89ab_cdef_0f1e_2d3c_4b5a_6978 ^ u128::from(sequence),
            ),
            prev_hash: std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ sequence as u8),
            event,
        }
    }

    /// What serde's derive reads from the same bytes (the reference for [`Wire`]).
    fn serde_decode(body: &[u8]) -> Result<(Envelope<ProductEvent>, usize), String> {
        bincode::serde::decode_from_slice(body, config()).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_serde_reads() {
        let events = [
            ProductEvent::MemberEnrolled { user: "ann".into() },
            ProductEvent::ActivityRecorded {
                user: "user-00042@example.com".into(),
                at: Timestamp(-5),
            },
            ProductEvent::WarningIssued {
                user: "b".repeat(300),
                at: Timestamp(i64::MAX),
                revoke_at: Timestamp(i64::MIN),
            },
        ];
        let stamps = [0, 1, -1, 250, 1 << 40, i64::MAX, i64::MIN];
        let sequences = [1, 250, 251, 65_535, 1 << 33, u64::MAX];
        for (i, event) in events.iter().enumerate() {
            for (j, &timestamp) in stamps.iter().enumerate() {
                let env = envelope(
                    sequences[(i + j) % sequences.len()],
                    timestamp,
                    event.clone(),
                );
                let (record, hash) = encode(&env);
                let body = &record[..record.len() - HASH_LEN];
                let (Wire(wire), used) =
                    bincode::decode_from_slice::<Wire<ProductEvent>, _>(body, config())
                        .expect("decodes");
                assert_eq!(Ok((wire.clone(), used)), serde_decode(body));
                assert_eq!(used, body.len());
                assert_eq!(decode::<ProductEvent>(&record), Ok((env, hash)));
            }
        }
    }

    #[test]
    fn refuses_what_serde_refuses() {
        let env = envelope(
            7,
            1_700_000_000_000,
            ProductEvent::MemberEnrolled { user: "ann".into() },
        );
        let (record, _) = encode(&env);
        let body = &record[..record.len() - HASH_LEN];
        // Every cut is refused by both; so is a cause of another length.
        for cut in 0..body.len() {
            let wire = bincode::decode_from_slice::<Wire<ProductEvent>, _>(&body[..cut], config());
            assert!(wire.is_err(), "cut at {cut}");
            assert!(serde_decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        // schema_version (1 byte), sequence (1), timestamp (9: 0xfd + 8), then the length.
        let at = 1 + 1 + 9;
        assert_eq!(body[at], 16);
        let mut long = body.to_vec();
        long[at] = 17;
        long.insert(at + 1, 0);
        assert!(bincode::decode_from_slice::<Wire<ProductEvent>, _>(&long, config()).is_err());
        assert!(serde_decode(&long).is_err());
    }
}
