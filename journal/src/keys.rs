//! The key layout of the journal's sled tree: the one place that knows how keys are built.
//!
//! - a record: `stream name ++ 0x00 ++ big-endian sequence`, so each stream is one ordered
//!   key range and replay is a range scan;
//! - a stream's index entry: `0x01 ++ stream name`, written in the same atomic batch as the
//!   stream's first record. Its value is empty, or, once the stream's oldest records were
//!   purged ([`crate::Journal::purge_upto`]), the tip they ended at (see [`PurgedTip`]);
//! - a chunk of packed records: `0x02 ++ record key of its first record`
//!   ([`crate::chunk`]);
//! - in the write-ahead log only, a cut of a stream (a truncated tail, a purged head):
//!   `0x03 ++ stream name` ([`Cut`]), replayed in order with the records around it.
//!
//! Stream names never start with a byte below `0x20` ([`slotpool_events::StreamId`]), so
//! the four kinds of key never collide.

use crate::tip::StreamTip;
use slotpool_events::envelope::Hash;

pub(crate) const SEPARATOR: u8 = 0x00;
pub(crate) const INDEX_PREFIX: u8 = 0x01;
pub(crate) const CHUNK_PREFIX: u8 = 0x02;
pub(crate) const CUT_PREFIX: u8 = 0x03;

/// The index entry of stream `name`.
pub(crate) fn index_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(INDEX_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key of record `sequence` of stream `name`.
pub(crate) fn record_key(name: &str, sequence: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name.as_bytes());
    k.push(SEPARATOR);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

/// Every record key of stream `name`, as an inclusive range.
pub(crate) fn record_range(name: &str) -> std::ops::RangeInclusive<Vec<u8>> {
    record_key(name, 0)..=record_key(name, u64::MAX)
}

/// The stream and sequence of a record key; `None` for anything else.
pub(crate) fn split_key(key: &[u8]) -> Option<(String, u64)> {
    if key.len() < 10 || key[key.len() - 9] != SEPARATOR {
        return None;
    }
    let (name, rest) = key.split_at(key.len() - 9);
    let seq = u64::from_be_bytes(rest[1..].try_into().ok()?);
    Some((String::from_utf8(name.to_vec()).ok()?, seq))
}

/// The value of an index entry of a stream whose records up to `tip` were purged:
/// `next sequence (u64 BE) ++ hash of the last purged record`. Empty before any purge.
pub(crate) struct PurgedTip;

impl PurgedTip {
    /// The index value that records `tip` as the start of what is left.
    pub(crate) fn encode(tip: &StreamTip) -> Vec<u8> {
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&tip.next_sequence.to_be_bytes());
        v.extend_from_slice(&tip.last_hash);
        v
    }

    /// The tip an index value records: the default (nothing purged) for an empty value,
    /// `None` for a value of any other shape (damage).
    pub(crate) fn decode(value: &[u8]) -> Option<StreamTip> {
        if value.is_empty() {
            return Some(StreamTip::default());
        }
        let (seq, hash) = value.split_first_chunk::<8>()?;
        let last_hash: Hash = hash.try_into().ok()?;
        let next_sequence = u64::from_be_bytes(*seq);
        // A stream's first record is sequence 1: a tip before it is damage.
        (next_sequence >= 1).then_some(StreamTip {
            next_sequence,
            last_hash,
        })
    }
}

/// A cut of one stream, as the write-ahead log carries it so that replay repeats it in
/// order with the records around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Every record after `after` was removed (an uncommitted tail).
    Truncate { after: u64 },
    /// Every record up to `tip.next_sequence - 1` was removed; `tip` continues the chain.
    Purge { tip: StreamTip },
}

impl Cut {
    /// The log entry of this cut of stream `name`: its key and value.
    pub(crate) fn entry(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        let mut key = Vec::with_capacity(name.len() + 1);
        key.push(CUT_PREFIX);
        key.extend_from_slice(name.as_bytes());
        let value = match self {
            Cut::Truncate { after } => {
                let mut v = vec![1];
                v.extend_from_slice(&after.to_be_bytes());
                v
            }
            Cut::Purge { tip } => {
                let mut v = vec![2];
                v.extend_from_slice(&PurgedTip::encode(tip));
                v
            }
        };
        (key, value)
    }

    /// The stream and cut of a log entry whose key starts with [`CUT_PREFIX`]; `None` if
    /// it does not parse.
    pub(crate) fn parse(key: &[u8], value: &[u8]) -> Option<(String, Cut)> {
        let name = std::str::from_utf8(key.strip_prefix(&[CUT_PREFIX])?).ok()?;
        let cut = match value.split_first()? {
            (1, after) => Cut::Truncate {
                after: u64::from_be_bytes(after.try_into().ok()?),
            },
            (2, tip) if tip.len() == 40 => Cut::Purge {
                tip: PurgedTip::decode(tip)?,
            },
            _ => return None,
        };
        Some((name.to_string(), cut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_cuts_round_trip() {
        let key = record_key("product/jira", 42);
        assert_eq!(split_key(&key), Some(("product/jira".into(), 42)));
        assert_eq!(split_key(&index_key("product/jira")), None);
        let tip = StreamTip {
            next_sequence: 7,
            last_hash: [9; 32],
        };
        for cut in [Cut::Truncate { after: 3 }, Cut::Purge { tip }] {
            let (k, v) = cut.entry("directory");
            assert_eq!(Cut::parse(&k, &v), Some(("directory".into(), cut)));
        }
        assert_eq!(Cut::parse(&[CUT_PREFIX, b'd'], &[9, 0]), None);
        assert_eq!(PurgedTip::decode(&[]), Some(StreamTip::default()));
        assert_eq!(PurgedTip::decode(&PurgedTip::encode(&tip)), Some(tip));
        assert_eq!(PurgedTip::decode(&[1, 2, 3]), None);
        assert_eq!(PurgedTip::decode(&[0; 40]), None, "a tip before sequence 1");
    }
}
