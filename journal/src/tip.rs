//! [`StreamTip`]: where a stream's next record goes, kept by the stream's one writer.

use serde::Serialize;
use slotpool_events::envelope::{self, Envelope, Hash, SCHEMA_VERSION};
use slotpool_events::Timestamp;
use uuid::Uuid;

/// Where the next record of a stream goes: kept by the stream's single writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTip {
    /// Sequence of the next record (1 for an empty stream).
    pub next_sequence: u64,
    /// Hash of the last record (zeros for an empty stream).
    pub last_hash: Hash,
}

impl Default for StreamTip {
    fn default() -> Self {
        StreamTip {
            next_sequence: 1,
            last_hash: [0; 32],
        }
    }
}

impl StreamTip {
    /// The records `events` make after this tip, each envelope hash-chained to the one
    /// before as the journal writes them, and the tip after them: how an append encodes
    /// its records ([`crate::Journal::append`]), and what a replicated log's or a test's
    /// records are made with.
    pub fn chain<E: Serialize>(
        self,
        cause: Uuid,
        at: Timestamp,
        events: &[E],
    ) -> (Vec<Vec<u8>>, StreamTip) {
        let mut next = self;
        let records = events
            .iter()
            .map(|event| {
                let (bytes, hash) = envelope::encode(&Envelope {
                    schema_version: SCHEMA_VERSION,
                    sequence: next.next_sequence,
                    timestamp: at,
                    cause,
                    prev_hash: next.last_hash,
                    event,
                });
                next = StreamTip {
                    next_sequence: next.next_sequence + 1,
                    last_hash: hash,
                };
                bytes
            })
            .collect();
        (records, next)
    }

    /// The tip as 40 bytes (`next_sequence` big-endian, then the hash): how a reader's
    /// place in a stream is saved (the connector's and the alert webhook's cursors).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&self.next_sequence.to_be_bytes());
        v.extend_from_slice(&self.last_hash);
        v
    }

    /// A tip saved by [`StreamTip::to_bytes`]; `None` for anything else (wrong length,
    /// a sequence of 0).
    pub fn from_bytes(v: &[u8]) -> Option<StreamTip> {
        if v.len() != 40 {
            return None;
        }
        let next_sequence = u64::from_be_bytes(v[..8].try_into().ok()?);
        let last_hash = v[8..].try_into().ok()?;
        (next_sequence >= 1).then_some(StreamTip {
            next_sequence,
            last_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::StreamTip;

    #[test]
    fn a_saved_tip_reads_back_and_nothing_else_does() {
        let tip = StreamTip {
            next_sequence: 42,
            last_hash: [7; 32],
        };
        assert_eq!(StreamTip::from_bytes(&tip.to_bytes()), Some(tip));
        assert_eq!(StreamTip::from_bytes(b"short"), None);
        assert_eq!(StreamTip::from_bytes(&[0; 40]), None);
    }
}
