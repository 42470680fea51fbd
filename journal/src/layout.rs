//! Where a stream's records are stored: packed into chunks by compaction, or loose (one
//! record per key). Read-only, for operators and tests that check compaction happened.

use crate::chunk::{chunk_key, chunk_len};
use crate::error::JournalError;
use crate::keys::{record_key, split_key};
use crate::Journal;
use slotpool_events::StreamId;

/// How a stream's records are stored, from [`Journal::layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamLayout {
    /// Chunks the stream's records are packed into.
    pub chunks: u64,
    /// Records inside those chunks.
    pub chunked: u64,
    /// Records stored one per key (not packed yet).
    pub loose: u64,
}

impl Journal {
    /// Counts `stream`'s chunks, the records packed in them and the loose records, from
    /// the keys and chunk headers alone (no record is decoded or checked: that is
    /// [`Journal::verify`]'s job).
    pub fn layout(&self, stream: &StreamId) -> Result<StreamLayout, JournalError> {
        self.settled()?;
        let name = stream.name();
        let tree = &self.inner.tree;
        let mut layout = StreamLayout::default();
        for item in tree.range(chunk_key(&name, 0)..=chunk_key(&name, u64::MAX)) {
            let (key, chunk) = item?;
            let Some((_, first)) = key.get(1..).and_then(split_key) else {
                return Err(JournalError::Corrupt {
                    stream: name,
                    sequence: 0,
                    what: "a malformed chunk key".into(),
                });
            };
            layout.chunks += 1;
            layout.chunked += chunk_len(&name, first, &chunk)?;
        }
        for item in tree.range(record_key(&name, 0)..=record_key(&name, u64::MAX)) {
            item?;
            layout.loose += 1;
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, JournalConfig, StreamTip, CHUNK_RECORDS};
    use slotpool_events::{ProductEvent, Timestamp};
    use uuid::Uuid;

    fn enrolments(prefix: &str, n: usize) -> Vec<ProductEvent> {
        (0..n)
            .map(|k| ProductEvent::MemberEnrolled {
                user: format!("{prefix}{k}"),
            })
            .collect()
    }

    #[test]
    fn counts_chunked_and_loose_records_per_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(
            dir.path(),
            JournalConfig {
                durability: Durability::Process,
                ..JournalConfig::default()
            },
        )
        .expect("open");
        // Loose records, as recovery or a journal from before the tail leaves them.
        j.inner.tail.hold_nothing();
        let jira = StreamId::product("jira").expect("valid");
        let other = StreamId::product("jira2").expect("valid");
        let (mut tip, mut other_tip) = (StreamTip::default(), StreamTip::default());
        for i in 0..50 {
            let events = enrolments(&format!("u{i}-"), 100);
            j.append(&jira, &mut tip, Uuid::nil(), Timestamp(0), &events)
                .expect("append");
        }
        let few = enrolments("v", 10);
        j.append(&other, &mut other_tip, Uuid::nil(), Timestamp(0), &few)
            .expect("append");
        let loose = StreamLayout {
            chunks: 0,
            chunked: 0,
            loose: 5_000,
        };
        assert_eq!(j.layout(&jira).expect("layout"), loose);
        // Packs all but the newest CHUNK_RECORDS..2*CHUNK_RECORDS records.
        assert_eq!(j.compact(&jira).expect("compact"), 3 * CHUNK_RECORDS);
        assert_eq!(
            j.layout(&jira).expect("layout"),
            StreamLayout {
                chunks: 3,
                chunked: 3 * CHUNK_RECORDS,
                loose: 5_000 - 3 * CHUNK_RECORDS,
            }
        );
        // Another stream whose name starts the same is counted apart.
        assert_eq!(
            j.layout(&other).expect("layout"),
            StreamLayout {
                loose: 10,
                ..StreamLayout::default()
            }
        );
    }
}
