//! Small stores beside the records, in the journal's own database: snapshots (filed by
//! stream and sequence) and connector cursors (filed by product).
//!
//! Why typed stores and not sled trees: the journal owns its key layout and its one sled
//! database, so no other crate builds keys or depends on sled. A value written here is
//! durable with sled's files at the journal's next checkpoint, not at the next group
//! flush: what these stores hold is an optimisation (a snapshot) or may go back (a cursor
//! that only re-delivers), so a crash that loses the latest value costs time, never a fact.

use crate::error::JournalError;
use crate::keys::record_key;
use crate::Journal;
use slotpool_events::StreamId;

/// Values filed by stream and sequence: what [`Journal::snapshot_store`] holds.
#[derive(Clone)]
pub struct SequenceStore {
    tree: sled::Tree,
}

/// One value of a [`SequenceStore`], as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// The stream's name as the key spells it (it may name no known stream: damage).
    pub stream: String,
    /// The sequence it is filed under.
    pub sequence: u64,
    /// The stored bytes.
    pub value: Vec<u8>,
}

impl SequenceStore {
    /// Files `value` under `stream` and `sequence`, replacing what was there.
    pub fn put(
        &self,
        stream: &StreamId,
        sequence: u64,
        value: Vec<u8>,
    ) -> Result<(), JournalError> {
        self.tree
            .insert(record_key(&stream.name(), sequence), value)?;
        Ok(())
    }

    /// Removes the value under `stream` and `sequence`, if any.
    pub fn remove(&self, stream: &StreamId, sequence: u64) -> Result<(), JournalError> {
        self.tree.remove(record_key(&stream.name(), sequence))?;
        Ok(())
    }

    /// The sequences filed under `stream`, in ascending order.
    pub fn sequences(&self, stream: &StreamId) -> Result<Vec<u64>, JournalError> {
        self.tree
            .range(crate::keys::record_range(&stream.name()))
            .keys()
            .map(|k| Ok(sequence_of(&k?)))
            .collect()
    }

    /// The values filed under `stream` with a sequence of at most `upto`, newest first.
    pub fn newest_first(
        &self,
        stream: &StreamId,
        upto: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<u8>), JournalError>> {
        let name = stream.name();
        self.tree
            .range(record_key(&name, 0)..=record_key(&name, upto))
            .rev()
            .map(|item| {
                let (key, value) = item?;
                Ok((sequence_of(&key), value.to_vec()))
            })
    }

    /// Every value of every stream, in key order.
    pub fn all(&self) -> impl Iterator<Item = Result<Filed, JournalError>> {
        self.tree.iter().map(|item| {
            let (key, value) = item?;
            let name_len = key.len().saturating_sub(9);
            Ok(Filed {
                stream: String::from_utf8_lossy(&key[..name_len]).into_owned(),
                sequence: sequence_of(&key),
                value: value.to_vec(),
            })
        })
    }
}

/// The sequence a store key ends with (0 for a key too short to hold one).
fn sequence_of(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|i| key[i..].try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Values filed by a name: what [`Journal::cursor_store`] holds.
#[derive(Clone)]
pub struct NamedStore {
    tree: sled::Tree,
}

impl NamedStore {
    /// The value filed under `name`.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.tree.get(name.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Files `value` under `name`, replacing what was there.
    pub fn put(&self, name: &str, value: &[u8]) -> Result<(), JournalError> {
        self.tree.insert(name.as_bytes(), value)?;
        Ok(())
    }
}

impl Journal {
    /// The snapshots' store.
    pub fn snapshot_store(&self) -> Result<SequenceStore, JournalError> {
        Ok(SequenceStore {
            tree: self.inner.db.open_tree("snapshots")?,
        })
    }

    /// The connector cursors' store.
    pub fn cursor_store(&self) -> Result<NamedStore, JournalError> {
        Ok(NamedStore {
            tree: self.inner.db.open_tree("connector_cursors")?,
        })
    }
}
