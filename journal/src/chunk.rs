//! The chunk format: many records of one stream packed into one sled value.
//!
//! sled costs about as much per item as it does per byte on a cold read, so a long stream
//! is replayed far faster from few large values than from many small ones. A chunk is
//! `format (1 byte) ++ records (u32 LE) ++ per record: length (u32 LE) ++ bytes`, under
//! `0x02 ++ record key of its first record` ([`crate::keys`]). Every record keeps its own
//! hash and its place in the chain, so a chunk hides no damage. [`crate::compaction`]
//! writes chunks; [`crate::replay`] reads them.

use crate::error::JournalError;
use crate::keys::{record_key, split_key, CHUNK_PREFIX};

/// Layout version of a chunk value (its first byte).
pub(crate) const CHUNK_FORMAT: u8 = 1;

/// Records per chunk, and how many of a stream's newest records stay loose: compaction
/// packs a stream only while it has at least twice this many loose records.
pub const CHUNK_RECORDS: u64 = 1024;

/// The key of the chunk of stream `name` whose first record is `first`.
pub(crate) fn chunk_key(name: &str, first: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 10);
    k.push(CHUNK_PREFIX);
    k.extend_from_slice(&record_key(name, first));
    k
}

/// Reads a chunk's header: how many records it holds. At least one, or it is damaged.
pub(crate) fn chunk_len(name: &str, first: u64, chunk: &[u8]) -> Result<u64, JournalError> {
    match chunk {
        [CHUNK_FORMAT, a, b, c, d, ..] if u32::from_le_bytes([*a, *b, *c, *d]) > 0 => {
            Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d])))
        }
        _ => Err(JournalError::Corrupt {
            stream: name.to_string(),
            sequence: first,
            what: "a chunk of records with a damaged header".into(),
        }),
    }
}

/// The sequence of the last record of the chunk of stream `name` whose first record is
/// `first`: damage if its header or key cannot be right (no sequence that high exists).
pub(crate) fn chunk_end(name: &str, first: u64, chunk: &[u8]) -> Result<u64, JournalError> {
    first
        .checked_add(chunk_len(name, first, chunk)? - 1)
        .ok_or_else(|| JournalError::Corrupt {
            stream: name.to_string(),
            sequence: first,
            what: "a chunk of records reaches beyond the last possible sequence".into(),
        })
}

/// The chunk of stream `name` that holds record `sequence`, with its first sequence.
pub(crate) fn chunk_at(
    tree: &sled::Tree,
    name: &str,
    sequence: u64,
) -> Result<Option<(u64, sled::IVec)>, JournalError> {
    let Some((key, chunk)) = tree
        .range(chunk_key(name, 0)..=chunk_key(name, sequence))
        .next_back()
        .transpose()?
    else {
        return Ok(None);
    };
    let Some((_, first)) = split_key(&key[1..]) else {
        return Err(JournalError::Corrupt {
            stream: name.to_string(),
            sequence,
            what: "a malformed chunk key".into(),
        });
    };
    let len = chunk_len(name, first, &chunk)?;
    Ok((sequence < first.saturating_add(len)).then_some((first, chunk)))
}

/// The records of a chunk, in order. A record cut short, or bytes left over, is damage
/// at that record's sequence.
pub(crate) fn chunk_records<'a>(
    name: &'a str,
    first: u64,
    chunk: &'a [u8],
) -> impl Iterator<Item = Result<&'a [u8], JournalError>> + 'a {
    let header = chunk_len(name, first, chunk);
    let mut rest = chunk.get(5..).unwrap_or_default();
    let mut sequence = first;
    let mut left = header.as_ref().map_or(0, |n| *n);
    let mut error = header.err();
    std::iter::from_fn(move || {
        if let Some(e) = error.take() {
            left = 0;
            return Some(Err(e));
        }
        let damaged = |what: &str| {
            Some(Err(JournalError::Corrupt {
                stream: name.to_string(),
                sequence,
                what: what.into(),
            }))
        };
        if left == 0 {
            if !rest.is_empty() {
                rest = &[];
                return damaged("a chunk of records has bytes after its last record");
            }
            return None;
        }
        left -= 1;
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            left = 0;
            return damaged("a chunk of records is cut short");
        };
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            left = 0;
            return damaged("a chunk of records is cut short");
        }
        let (record, tail) = tail.split_at(len);
        rest = tail;
        sequence += 1;
        Some(Ok(record))
    })
}
