//! Verification: every record of every stream checked, and the index against the keys.

use crate::error::JournalError;
use crate::keys::{split_key, CHUNK_PREFIX, INDEX_PREFIX};
use crate::read::start_tip;
use crate::Journal;
use slotpool_events::{DirectoryEvent, ProductEvent, ReplicationRecord, StreamId};
use std::collections::BTreeSet;

/// One stream's summary, from [`Journal::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's name.
    pub stream: String,
    /// Records in it.
    pub records: u64,
    /// The hash of its last record: two journals whose streams have the same tips hold
    /// the same histories (what a cluster's nodes are compared by).
    pub tip: [u8; 32],
}

impl Journal {
    /// Checks every record of every stream: each decodes, matches its own hash, and
    /// continues its stream's sequence and chain, whether loose or in a chunk; every key
    /// belongs to an indexed stream and every indexed stream has records. Returns the
    /// first damage found, naming stream and sequence.
    pub fn verify(&self) -> Result<Vec<StreamSummary>, JournalError> {
        self.settled()?;
        let indexed: BTreeSet<String> = self.streams()?.iter().map(StreamId::name).collect();
        let mut stored = BTreeSet::new();
        for key in self.inner.tree.iter().keys() {
            let key = key?;
            let name = match key.first() {
                Some(&INDEX_PREFIX) => continue,
                Some(&CHUNK_PREFIX) => split_key(&key[1..]).map(|(n, _)| n),
                _ => split_key(&key).map(|(n, _)| n),
            };
            let Some(name) = name else {
                return Err(JournalError::Corrupt {
                    stream: String::from_utf8_lossy(&key).into_owned(),
                    sequence: 0,
                    what: "a key that is not stream + sequence".into(),
                });
            };
            stored.insert(name);
        }
        let mut first_tips = std::collections::BTreeMap::new();
        for name in &indexed {
            first_tips.insert(name.clone(), start_tip(&self.inner.tree, name)?);
        }
        // A stream purged to its end has an index entry and no records left.
        let purged_out = |name: &String| first_tips.get(name).is_some_and(|t| t.next_sequence > 1);
        if let Some(name) = indexed.difference(&stored).find(|name| !purged_out(name)) {
            return Err(JournalError::Corrupt {
                stream: name.clone(),
                sequence: 1,
                what: "the stream is indexed but its records are missing".into(),
            });
        }
        if let Some(name) = stored.difference(&indexed).next() {
            return Err(JournalError::Corrupt {
                stream: name.clone(),
                sequence: 1,
                what: "the stream has records but is missing from the index".into(),
            });
        }
        let mut summaries = Vec::with_capacity(stored.len());
        for name in indexed {
            let first = first_tips.get(&name).copied().unwrap_or_default();
            let tip = match StreamId::parse(&name) {
                Some(stream @ StreamId::Directory) => {
                    self.replay_from::<DirectoryEvent>(&stream, first, |_| true)
                }
                Some(stream @ StreamId::Product(_)) => {
                    self.replay_from::<ProductEvent>(&stream, first, |_| true)
                }
                Some(stream @ StreamId::Raft(_)) => {
                    self.replay_from::<ReplicationRecord>(&stream, first, |_| true)
                }
                None => Err(JournalError::Corrupt {
                    stream: name.clone(),
                    sequence: 0,
                    what: "records of an unknown stream".into(),
                }),
            }?;
            summaries.push(StreamSummary {
                stream: name,
                records: tip.next_sequence - first.next_sequence,
                tip: tip.last_hash,
            });
        }
        Ok(summaries)
    }
}
