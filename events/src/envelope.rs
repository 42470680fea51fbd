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
    let (envelope, used): (Envelope<E>, usize) = bincode::serde::decode_from_slice(body, config())
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
