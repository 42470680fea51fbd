//! [`StreamTip`]: where a stream's next record goes, kept by the stream's one writer.

use slotpool_events::envelope::Hash;

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
