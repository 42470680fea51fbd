//! The tail: records appended since sled last took them, held in memory and written into
//! sled in chunks, many at a time.
//!
//! Why: inserting each record into sled as it is appended was a fifth of the server's CPU
//! under `make load` (sled's `Tree::insert`, its node splits and page-cache updates, on
//! the product actor's thread) and most of what reached the disk (sled's log writes each
//! record, then compaction writes it again into a chunk and removes the loose key). An
//! append is already durable through the write-ahead log ([`crate::wal`]); sled only has
//! to hold the records by the time the log segment that covers them is recycled. So an
//! append puts its records here, and [`Tail::settle`] writes everything here into sled
//! as chunks ([`crate::chunk`]) in one batch: once per log segment, from the
//! checkpointer, before sled is made durable; and before anything reads the tree, so
//! every reader still finds every record in sled and nothing else needs to know. A read
//! that starts inside a stream's run (the connector and the alert webhook read just
//! behind the end after every durable append) is answered from here instead
//! ([`Tail::records_from`]), so that it moves nothing.
//!
//! A record that does not continue its stream's run (the first of a stream, a re-applied
//! replicated record, the first after a cut) is not held: the caller writes it into sled
//! itself, after a settle, as before.
//!
//! Architecture Invariant: a record is in the tail or in sled's tree, never lost between
//! them: a settle holds [`Tail`]'s `settling` lock from taking the records until sled has
//! them, and every reader settles first.

use crate::chunk::{chunk_key, CHUNK_FORMAT, CHUNK_RECORDS};
use crate::error::JournalError;
use crate::lock::lock;
use crate::read::last_sequence;
use std::collections::HashMap;
use std::sync::Mutex;

/// A stream's records held in the tail: consecutive sequences from `first`.
struct Run {
    first: u64,
    records: Vec<Vec<u8>>,
    /// Bytes of `records`, for the chunk's allocation.
    bytes: usize,
}

/// What [`Tail::hold`] did with an append.
pub(crate) enum Held {
    /// Held, with the frame's ticket.
    Yes(u64),
    /// Not held: the records, for the caller to write into sled.
    No(Vec<Vec<u8>>),
}

/// The records not yet in sled, per stream.
pub(crate) struct Tail {
    /// The most bytes of records in one chunk ([`crate::JournalConfig::chunk_max_bytes`]).
    max_chunk_bytes: usize,
    /// Stream name -> its run. A std Mutex: held for a push or a swap, never across I/O.
    runs: Mutex<HashMap<String, Run>>,
    /// Held by a settle from taking the runs until sled holds them, so that a reader who
    /// settled finds every record in sled. Taken before `runs` when both are.
    settling: Mutex<()>,
    /// Tests of what sled does with loose records (compaction, damage in chunks) make
    /// the tail hold nothing, as a journal written before it existed did.
    #[cfg(test)]
    holds_nothing: std::sync::atomic::AtomicBool,
}

impl Tail {
    /// An empty tail whose chunks hold at most `max_chunk_bytes` of records.
    pub(crate) fn new(max_chunk_bytes: usize) -> Tail {
        Tail {
            max_chunk_bytes,
            runs: Mutex::default(),
            settling: Mutex::default(),
            #[cfg(test)]
            holds_nothing: std::sync::atomic::AtomicBool::default(),
        }
    }

    /// Holds `records` of stream `name` (the first at sequence `first`) if they continue
    /// the stream: its run here, or, without one, its last record in `tree`. A held
    /// append is first handed to `to_frame` (the write-ahead log's next frame), under the
    /// tail's lock, so that the log and the tail see one stream's appends in the same
    /// order; its answer is returned. Records that do not continue the stream come back
    /// untouched: the caller writes them into sled after a settle.
    pub(crate) fn hold(
        &self,
        tree: &sled::Tree,
        name: &str,
        first: u64,
        records: Vec<Vec<u8>>,
        to_frame: impl FnOnce(&[Vec<u8>]) -> u64,
    ) -> Result<Held, JournalError> {
        #[cfg(test)]
        if self
            .holds_nothing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(Held::No(records));
        }
        {
            let mut runs = lock(&self.runs);
            if let Some(run) = runs.get_mut(name) {
                if run.first + run.records.len() as u64 != first {
                    return Ok(Held::No(records));
                }
                let ticket = to_frame(&records);
                run.bytes += records.iter().map(Vec::len).sum::<usize>();
                run.records.extend(records);
                return Ok(Held::Yes(ticket));
            }
        }
        // No run: sled has the whole stream once no settle is under way.
        let _settling = lock(&self.settling);
        let last = last_sequence(tree, name)?;
        let mut runs = lock(&self.runs);
        if runs.contains_key(name) || last.checked_add(1) != Some(first) {
            return Ok(Held::No(records));
        }
        let ticket = to_frame(&records);
        let bytes = records.iter().map(Vec::len).sum();
        runs.insert(
            name.to_string(),
            Run {
                first,
                records,
                bytes,
            },
        );
        Ok(Held::Yes(ticket))
    }

    /// The last sequence of stream `name`: its run's end here, or else its last record in
    /// `tree` (which holds the whole stream once no settle is under way). Answers without
    /// moving anything into sled: a replicated copy asks it for every entry it applies.
    pub(crate) fn last_sequence(&self, tree: &sled::Tree, name: &str) -> Result<u64, JournalError> {
        let _settling = lock(&self.settling);
        if let Some(run) = lock(&self.runs).get(name) {
            return Ok(run.first + run.records.len() as u64 - 1);
        }
        last_sequence(tree, name)
    }

    /// Copies of stream `name`'s records from sequence `from` on, when the tail holds the
    /// stream from there (its run starts at or before `from`; empty when the stream ends
    /// before it). `None` when part of what is asked for may be in sled: the caller
    /// settles and reads the tree. So the connector and the alert webhook, which read
    /// just behind the stream's end after every durable append, move nothing into sled.
    pub(crate) fn records_from(&self, name: &str, from: u64) -> Option<Vec<Vec<u8>>> {
        let _settling = lock(&self.settling);
        let runs = lock(&self.runs);
        let run = runs.get(name)?;
        let skip = usize::try_from(from.checked_sub(run.first)?).ok()?;
        Some(run.records.iter().skip(skip).cloned().collect())
    }

    /// Writes every record held here into `tree` as chunks of at most [`CHUNK_RECORDS`]
    /// records and `max_chunk_bytes` of them, in one atomic batch, and forgets them. Returns once `tree` holds them (not durably:
    /// that is the checkpoint's job; the write-ahead log covers them until then).
    pub(crate) fn settle(&self, tree: &sled::Tree) -> Result<(), JournalError> {
        let _settling = lock(&self.settling);
        let runs = std::mem::take(&mut *lock(&self.runs));
        if runs.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (name, run) in runs {
            let mut first = run.first;
            let per_record = run.bytes / run.records.len().max(1) + 4;
            for records in chunked(&run.records, self.max_chunk_bytes) {
                let mut chunk = Vec::with_capacity(5 + per_record * records.len());
                chunk.push(CHUNK_FORMAT);
                chunk.extend_from_slice(&(records.len() as u32).to_le_bytes());
                for record in records {
                    chunk.extend_from_slice(&(record.len() as u32).to_le_bytes());
                    chunk.extend_from_slice(record);
                }
                batch.insert(chunk_key(&name, first), chunk);
                first += records.len() as u64;
            }
        }
        // On failure the records are still in the write-ahead log, which the next open
        // replays; the journal stops accepting writes (the caller reports the failure).
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Whether nothing is held (tests).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.runs).is_empty()
    }

    /// From now on, holds nothing: every record goes into sled loose (tests).
    #[cfg(test)]
    pub(crate) fn hold_nothing(&self) {
        self.holds_nothing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `records` cut into runs of at most [`CHUNK_RECORDS`] records and `max_bytes` of them
/// (each run at least one record), in order.
fn chunked(records: &[Vec<u8>], max_bytes: usize) -> impl Iterator<Item = &[Vec<u8>]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = rest[0].len();
        let mut n = 1;
        while n < rest.len() && n < CHUNK_RECORDS as usize && bytes + rest[n].len() <= max_bytes {
            bytes += rest[n].len();
            n += 1;
        }
        let (run, after) = rest.split_at(n);
        rest = after;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs keep the records in order, each within both caps unless one record alone
    /// exceeds the byte cap (then it is a run of its own).
    #[test]
    fn chunks_are_capped_by_records_and_bytes() {
        let records: Vec<Vec<u8>> = [10, 10, 10, 50, 5, 5, 5, 5]
            .iter()
            .map(|n| vec![7u8; *n])
            .collect();
        let runs: Vec<Vec<usize>> = chunked(&records, 25)
            .map(|run| run.iter().map(Vec::len).collect())
            .collect();
        assert_eq!(runs, [vec![10, 10], vec![10], vec![50], vec![5, 5, 5, 5]]);
        let many = vec![vec![1u8]; CHUNK_RECORDS as usize + 3];
        let sizes: Vec<usize> = chunked(&many, usize::MAX).map(<[_]>::len).collect();
        assert_eq!(sizes, [CHUNK_RECORDS as usize, 3]);
        assert_eq!(chunked(&[], 10).count(), 0);
    }
}
