//! Cuts of a stream: dropping an uncommitted tail ([`Journal::truncate_after`]) and
//! dropping a head that a snapshot covers ([`Journal::purge_upto`]).
//!
//! Why: a replicated log (Raft) needs both. A follower whose uncommitted entries conflict
//! with the leader's drops them; a node that took a snapshot drops the entries it covers.
//! Product and directory streams are never cut.
//!
//! A cut goes into sled as one atomic batch and into the write-ahead log as an entry of
//! its own ([`Cut`]), so that recovery repeats it in order with the records around it: a
//! tail dropped is not brought back by the log it was appended through. Both wait until
//! the cut is durable before they return. A purged stream keeps, in its index entry, the
//! tip its last purged record ended at, so the chain goes on from it.

use crate::chunk::{chunk_at, chunk_key, chunk_len, chunk_records};
use crate::error::JournalError;
use crate::keys::{index_key, record_key, split_key, Cut, PurgedTip};
use crate::replay::{last_sequence, start_tip};
use crate::tip::StreamTip;
use crate::{lock, Journal};
use slotpool_events::StreamId;

impl Journal {
    /// Removes every record of `stream` after sequence `after` and returns the tip to
    /// append at next. Returns once the cut is durable. Fails, changing nothing, when
    /// `after` is beyond the stream's end or before what was purged.
    pub fn truncate_after(&self, stream: &StreamId, after: u64) -> Result<StreamTip, JournalError> {
        self.check_failed()?;
        let name = stream.name();
        let first = self.first_tip(stream)?;
        let out_of_range = |what: &str| JournalError::OutOfRange {
            stream: name.clone(),
            sequence: after,
            what: what.into(),
        };
        if after + 1 < first.next_sequence {
            return Err(out_of_range("it was purged"));
        }
        let tip = if after + 1 == first.next_sequence {
            first
        } else {
            let last_hash = self
                .record_hash(stream, after)?
                .ok_or_else(|| out_of_range("it is beyond the stream's end"))?;
            StreamTip {
                next_sequence: after + 1,
                last_hash,
            }
        };
        self.cut(&name, &Cut::Truncate { after }, after)?;
        Ok(tip)
    }

    /// Removes every record of `stream` up to and including `upto` (a snapshot covers
    /// them); the records after it keep their sequences and their chain. Returns once the
    /// cut is durable. Purging what was purged already changes nothing; `upto` beyond the
    /// stream's end is refused.
    pub fn purge_upto(&self, stream: &StreamId, upto: u64) -> Result<(), JournalError> {
        self.check_failed()?;
        let name = stream.name();
        if upto < self.first_tip(stream)?.next_sequence {
            return Ok(());
        }
        let last_hash =
            self.record_hash(stream, upto)?
                .ok_or_else(|| JournalError::OutOfRange {
                    stream: name.clone(),
                    sequence: upto,
                    what: "it is beyond the stream's end".into(),
                })?;
        let tip = StreamTip {
            next_sequence: upto + 1,
            last_hash,
        };
        let last = self.last_sequence(stream)?;
        self.cut(&name, &Cut::Purge { tip }, last)
    }

    /// Applies `cut` to sled and the next group's frame, then waits until it is durable;
    /// the stream then ends at `last`.
    pub(crate) fn cut(&self, name: &str, cut: &Cut, last: u64) -> Result<(), JournalError> {
        let ticket = {
            let _moving = lock(&self.inner.compactor.moving);
            apply_cut(&self.inner.tree, name, cut)?;
            let (key, value) = cut.entry(name);
            let ticket = self
                .inner
                .commit
                .add_to_frame(std::iter::once((&key[..], &value[..])));
            self.inner.watermark.set(name, last);
            ticket
        };
        self.wait_durable(ticket)?;
        // A lowered watermark is written at once: one written earlier must not outlive
        // the log that explains it.
        self.inner.watermark.write_now(&self.inner.path);
        Ok(())
    }

    /// Blocks until the append with `ticket` is durable.
    fn wait_durable(&self, ticket: u64) -> Result<(), JournalError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.when_durable(
            ticket,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(JournalError::Failed("the committer stopped".into())))
    }
}

/// Applies `cut` of stream `name` to `tree` in one atomic batch: at the time of the cut,
/// and again when the write-ahead log is replayed (where it may find it done already).
pub(crate) fn apply_cut(tree: &sled::Tree, name: &str, cut: &Cut) -> Result<(), JournalError> {
    let mut batch = sled::Batch::default();
    match cut {
        Cut::Truncate { after } => {
            let after = *after;
            // A chunk holding both kept and dropped records gives the kept ones back loose.
            if let Some((first, chunk)) = chunk_at(tree, name, after + 1)? {
                if first <= after {
                    for (sequence, record) in
                        (first..=after).zip(chunk_records(name, first, &chunk))
                    {
                        batch.insert(record_key(name, sequence), record?);
                    }
                }
                batch.remove(chunk_key(name, first));
            }
            for key in tree
                .range(chunk_key(name, after + 1)..=chunk_key(name, u64::MAX))
                .keys()
            {
                batch.remove(key?);
            }
            for key in tree
                .range(record_key(name, after + 1)..=record_key(name, u64::MAX))
                .keys()
            {
                batch.remove(key?);
            }
            if after == 0 && start_tip(tree, name)? == StreamTip::default() {
                batch.remove(index_key(name)); // nothing left: the stream is gone
            }
        }
        Cut::Purge { tip } => {
            let upto = tip.next_sequence - 1;
            for item in tree.range(chunk_key(name, 0)..=chunk_key(name, upto)) {
                let (key, chunk) = item?;
                let Some((_, first)) = split_key(&key[1..]) else {
                    continue;
                };
                // A chunk reaching past the purge stays; its purged records are skipped.
                if first + chunk_len(name, first, &chunk)? - 1 <= upto {
                    batch.remove(key);
                }
            }
            for key in tree
                .range(record_key(name, 0)..=record_key(name, upto))
                .keys()
            {
                batch.remove(key?);
            }
            batch.insert(index_key(name), PurgedTip::encode(tip));
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// Where stream `name` ends after `cut` was applied to `tree`.
pub(crate) fn end_after(tree: &sled::Tree, name: &str, cut: &Cut) -> Result<u64, JournalError> {
    match cut {
        Cut::Truncate { after } => Ok(*after),
        Cut::Purge { .. } => last_sequence(tree, name),
    }
}
