//! Reading records from the tree, wherever each lives: the checks every reader shares.
//!
//! [`for_each_record`] finds each record loose or packed in a chunk (the compactor may
//! move records while a read runs) and names the first sequence that is missing;
//! [`check_record`] checks one against its own hash, its sequence and the hash chain.
//! The journal's reading API ([`crate::replay`]) and its cuts and recovery are built on
//! these.

use crate::chunk::{chunk_at, chunk_end, chunk_key, chunk_records};
use crate::error::JournalError;
use crate::keys::{index_key, record_key, record_range, split_key, PurgedTip};
use crate::tip::StreamTip;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use slotpool_events::envelope::{self, DecodeError, Envelope, Hash};

/// Hands every record of stream `name` from sequence `from` on to `f`, in order,
/// whether it is loose or packed in a chunk, until `f` returns false. Fails naming
/// the first sequence that is missing or unreadable.
///
/// The compactor may move records into a chunk while this runs; a record that is no
/// longer where the scan expected it is looked up in the chunks, so each is seen once.
pub(crate) fn for_each_record(
    tree: &sled::Tree,
    name: &str,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<bool, JournalError>,
) -> Result<(), JournalError> {
    let mut expected = from;
    'chunks: loop {
        // The chunk holding `expected`, then the following ones (each holds at least
        // one record, so every round moves `expected` on).
        while let Some((first, chunk)) = chunk_at(tree, name, expected)? {
            for (sequence, record) in (first..).zip(chunk_records(name, first, &chunk)) {
                let record = record?;
                if sequence >= expected {
                    if !f(sequence, record)? {
                        return Ok(());
                    }
                    expected = sequence + 1;
                }
            }
        }
        // Then the loose records.
        for item in tree.range(record_key(name, expected)..=record_key(name, u64::MAX)) {
            let (key, value) = item?;
            let sequence = split_key(&key).map(|(_, s)| s);
            if sequence == Some(expected) {
                if !f(expected, &value)? {
                    return Ok(());
                }
                expected += 1;
                continue;
            }
            if chunk_at(tree, name, expected)?.is_some() {
                continue 'chunks; // compacted under our feet
            }
            return Err(JournalError::Corrupt {
                stream: name.to_string(),
                sequence: expected,
                what: match sequence {
                    Some(s) => {
                        format!("the next record has sequence {s} (records are missing)")
                    }
                    None => "a malformed key".into(),
                },
            });
        }
        if chunk_at(tree, name, expected)?.is_some() {
            continue 'chunks;
        }
        return Ok(());
    }
}

/// The hash of record `sequence` of `stream`, after checking the record against its
/// own hash; `None` when there is no such record.
pub(crate) fn record_hash(
    tree: &sled::Tree,
    name: &str,
    sequence: u64,
) -> Result<Option<Hash>, JournalError> {
    let name = name.to_string();
    // Purged records are gone, even where a chunk still holds them; the last purged one's
    // hash continues the chain.
    let start = start_tip(tree, &name)?;
    if sequence < start.next_sequence {
        let last_purged = start.next_sequence - 1;
        return Ok((sequence > 0 && sequence == last_purged).then_some(start.last_hash));
    }
    let loose = tree.get(record_key(&name, sequence))?;
    let packed;
    let value: &[u8] = match &loose {
        Some(v) => v,
        None => {
            let Some((first, chunk)) = chunk_at(tree, &name, sequence)? else {
                return Ok(None);
            };
            let index = usize::try_from(sequence - first).unwrap_or(usize::MAX);
            packed = chunk;
            match chunk_records(&name, first, &packed).nth(index) {
                Some(record) => record?,
                None => return Ok(None),
            }
        }
    };
    if value.len() < envelope::HASH_LEN {
        return Err(JournalError::Corrupt {
            stream: name,
            sequence,
            what: "record is truncated".into(),
        });
    }
    let (body, trailer) = value.split_at(value.len() - envelope::HASH_LEN);
    let hash: Hash = Sha256::digest(body).into();
    if hash[..] != trailer[..] {
        return Err(JournalError::Corrupt {
            stream: name,
            sequence,
            what: "record checksum does not match its contents".into(),
        });
    }
    Ok(Some(hash))
}

pub(crate) fn check_record<E: DeserializeOwned>(
    name: &str,
    expected: u64,
    value: &[u8],
    tip: &StreamTip,
) -> Result<(Envelope<E>, Hash), JournalError> {
    let corrupt = |what: String| JournalError::Corrupt {
        stream: name.to_string(),
        sequence: expected,
        what,
    };
    let (env, hash) =
        envelope::decode::<E>(value).map_err(|e: DecodeError| corrupt(e.to_string()))?;
    if env.sequence != expected {
        return Err(corrupt(format!(
            "the record says it is sequence {}",
            env.sequence
        )));
    }
    if env.prev_hash != tip.last_hash {
        return Err(corrupt(
            "the hash chain is broken (a record was replaced)".into(),
        ));
    }
    Ok((env, hash))
}

/// Where stream `name` starts: the purge tip its index entry records, if any.
pub(crate) fn start_tip(tree: &sled::Tree, name: &str) -> Result<StreamTip, JournalError> {
    match tree.get(index_key(name))? {
        None => Ok(StreamTip::default()),
        Some(value) => PurgedTip::decode(&value).ok_or_else(|| JournalError::Corrupt {
            stream: name.to_string(),
            sequence: 0,
            what: "the stream's index entry is damaged".into(),
        }),
    }
}

/// The last sequence of stream `name` in `tree` (0 for none): the later of its last
/// loose record and the end of its last chunk (chunks written from the tail
/// ([`crate::tail`]) may follow loose records that recovery inserted); for a stream whose
/// records were all purged, where the purge ended.
pub(crate) fn last_sequence(tree: &sled::Tree, name: &str) -> Result<u64, JournalError> {
    let loose = match tree.range(record_range(name)).keys().next_back() {
        Some(key) => split_key(&key?).map(|(_, sequence)| sequence),
        None => None,
    };
    let chunks = chunk_key(name, 0)..=chunk_key(name, u64::MAX);
    let packed = match tree.range(chunks).next_back().transpose()? {
        Some((key, chunk)) => match split_key(&key[1..]) {
            Some((_, first)) => Some(chunk_end(name, first, &chunk)?),
            None => None,
        },
        None => None,
    };
    match loose.max(packed) {
        Some(last) => Ok(last),
        None => Ok(start_tip(tree, name)?.next_sequence - 1),
    }
}
