//! Replay with the checking spread over several threads, for long offline reads (audit).
//!
//! [`Journal::replay_from`] reads, checks and decodes on one thread while the caller folds
//! on another; for a stream of millions of records the checking (SHA-256 of every record,
//! bincode decode, sequence and chain) costs more than the fold, so
//! [`Journal::replay_parallel`] splits it:
//!
//! ```text
//!  reader (sled scan, copies record bytes into batches)
//!     │ batch 0, K, 2K...    batch 1, K+1...          (round robin)
//!     ▼                      ▼
//!  checker 0               checker 1 ...   check_record on every record of a batch
//!     │                      │
//!     └───── in batch order ─┴──────────> caller: f(&envelope) for each, in order
//! ```
//!
//! Every record is checked exactly as [`Journal::replay_from`] checks it (the same
//! `check_record`, against the previous record's hash): a checker is handed, with its
//! batch, the stored hash of the record just before the batch. That hash is only trusted
//! once the batch before was checked, and the caller takes batches strictly in order and
//! stops at the first error, so the first damaged record is reported, with its stream and
//! sequence, exactly as a one-thread replay would report it; nothing after it reaches `f`.
//!
//! Batches and their vectors go back to the thread that filled them, so a long replay
//! allocates a handful of buffers, and envelopes are dropped by the checker that built them.

use crate::error::JournalError;
use crate::read::check_record;
use crate::tip::StreamTip;
use crate::Journal;
use serde::de::DeserializeOwned;
use slotpool_events::envelope::{Envelope, Hash, HASH_LEN};
use slotpool_events::StreamId;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

/// Records per batch handed to a checker.
const BATCH: usize = 1024;

/// Batches waiting in each channel (per checker, each way).
const DEPTH: usize = 2;

/// Most checker threads, whatever the machine has.
const MAX_CHECKERS: usize = 4;

/// The stored bytes of consecutive records, as the reader copied them out of sled.
#[derive(Default)]
struct RawBatch {
    /// Sequence of the first record.
    first: u64,
    /// The stored hash of the record before the first (its tip), unchecked until the
    /// batch before this one is.
    prev_hash: Hash,
    /// Every record's bytes, one after the other.
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl RawBatch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn records(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

/// Checked envelopes, each with its record's hash.
type Checked<E> = Vec<(Envelope<E>, Hash)>;

/// A checked batch: the envelopes of its records in order, and the error of the record
/// after the last one, if the batch stopped at a damaged record.
struct CheckedBatch<E> {
    envelopes: Checked<E>,
    error: Option<JournalError>,
}

/// How many checker threads to run: one per core (the reader mostly waits on sled, the
/// caller's fold runs beside them), at least one, at most [`MAX_CHECKERS`].
fn checkers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_CHECKERS)
}

impl Journal {
    /// Reads a stream from `from` like [`Journal::replay_from`], with the same checks and
    /// the same errors, but checks and decodes batches of records on several threads and
    /// hands `f` each envelope by reference, in order, until it returns false.
    ///
    /// For long reads where the caller's fold is cheaper than checking the records (the
    /// offline audit of a long stream); recovery keeps [`Journal::replay_from`].
    pub fn replay_parallel<E: DeserializeOwned + Send>(
        &self,
        stream: &StreamId,
        from: StreamTip,
        mut f: impl FnMut(&Envelope<E>) -> bool,
    ) -> Result<StreamTip, JournalError> {
        self.settled()?;
        let name = stream.name();
        let n = checkers();
        std::thread::scope(|scope| {
            let name = name.as_str();
            // Reader -> checker i, checker i -> caller, and the way back for the buffers.
            let mut to_checkers: Vec<SyncSender<RawBatch>> = Vec::with_capacity(n);
            let mut from_checkers: Vec<Receiver<CheckedBatch<E>>> = Vec::with_capacity(n);
            let mut spent_to_checkers: Vec<Sender<Checked<E>>> = Vec::with_capacity(n);
            let (raw_back, raw_spent) = channel::<RawBatch>();
            for _ in 0..n {
                let (raw_tx, raw_rx) = sync_channel::<RawBatch>(DEPTH);
                let (out_tx, out_rx) = sync_channel::<CheckedBatch<E>>(DEPTH);
                let (spent_tx, spent_rx) = channel::<Checked<E>>();
                let raw_back = raw_back.clone();
                scope.spawn(move || check_batches(name, &raw_rx, &out_tx, &spent_rx, &raw_back));
                to_checkers.push(raw_tx);
                from_checkers.push(out_rx);
                spent_to_checkers.push(spent_tx);
            }
            drop(raw_back);
            let reader =
                scope.spawn(move || read_batches(self, name, from, &to_checkers, &raw_spent));

            let mut tip = from;
            let mut failed = None;
            let mut stopped = false;
            'batches: for i in 0.. {
                let Ok(mut batch) = from_checkers[i % n].recv() else {
                    break; // the reader is done and every checker with it
                };
                for (env, hash) in &batch.envelopes {
                    tip = StreamTip {
                        next_sequence: env.sequence + 1,
                        last_hash: *hash,
                    };
                    if !f(env) {
                        stopped = true;
                        break 'batches;
                    }
                }
                if let Some(e) = batch.error.take() {
                    failed = Some(e);
                    break;
                }
                // The checker drops the envelopes and reuses the vector.
                let _ = spent_to_checkers[i % n].send(std::mem::take(&mut batch.envelopes));
            }
            // Closing the channels stops checkers and reader at their next batch.
            drop(from_checkers);
            drop(spent_to_checkers);
            let read = reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if let Some(e) = failed {
                return Err(e);
            }
            match read {
                Err(e) if !stopped => Err(e),
                _ => Ok(tip),
            }
        })
    }
}

/// The reader: copies every record of `name` from `from` on into batches, handed to the
/// checkers in turn. Fails as [`Journal::replay_from`]'s reader does (a missing record, a
/// damaged chunk), after handing on every record before the failure.
fn read_batches(
    journal: &Journal,
    name: &str,
    from: StreamTip,
    checkers: &[SyncSender<RawBatch>],
    spent: &Receiver<RawBatch>,
) -> Result<(), JournalError> {
    let fresh = |spent: &Receiver<RawBatch>| {
        let mut b = spent.try_recv().unwrap_or_else(|_| RawBatch {
            bytes: Vec::with_capacity(BATCH * 256),
            ends: Vec::with_capacity(BATCH),
            ..RawBatch::default()
        });
        b.clear();
        b
    };
    let mut next = 0usize;
    let mut prev_hash = from.last_hash;
    let mut batch = fresh(spent);
    batch.first = from.next_sequence;
    batch.prev_hash = prev_hash;
    let mut open = true;
    let read = crate::read::for_each_record(
        &journal.inner.tree,
        name,
        from.next_sequence,
        |sequence, record| {
            if batch.ends.is_empty() {
                batch.first = sequence;
                batch.prev_hash = prev_hash;
            }
            batch.bytes.extend_from_slice(record);
            batch.ends.push(batch.bytes.len());
            // The stored hash, checked by whoever checks this record (a record too short to
            // hold one fails there, before the next record's chain is looked at).
            if let Some(tail) = record.len().checked_sub(HASH_LEN) {
                prev_hash.copy_from_slice(&record[tail..]);
            }
            if batch.ends.len() < BATCH {
                return Ok(true);
            }
            let full = std::mem::replace(&mut batch, fresh(spent));
            open = checkers[next % checkers.len()].send(full).is_ok();
            next += 1;
            // A closed channel means the caller stopped: read no further.
            Ok(open)
        },
    );
    if open && !batch.ends.is_empty() {
        let _ = checkers[next % checkers.len()].send(batch);
    }
    read
}

/// A checker: checks each batch it is handed with `check_record`, in order from the
/// stored hash before it, until a record fails (that batch ends there, with the error).
fn check_batches<E: DeserializeOwned>(
    name: &str,
    raw: &Receiver<RawBatch>,
    out: &SyncSender<CheckedBatch<E>>,
    spent: &Receiver<Checked<E>>,
    raw_back: &Sender<RawBatch>,
) {
    while let Ok(batch) = raw.recv() {
        let mut envelopes = match spent.try_recv() {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::with_capacity(BATCH),
        };
        let mut tip = StreamTip {
            next_sequence: batch.first,
            last_hash: batch.prev_hash,
        };
        let mut error = None;
        for record in batch.records() {
            match check_record::<E>(name, tip.next_sequence, record, &tip) {
                Ok((env, hash)) => {
                    tip = StreamTip {
                        next_sequence: tip.next_sequence + 1,
                        last_hash: hash,
                    };
                    envelopes.push((env, hash));
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let _ = raw_back.send(batch);
        let failed = error.is_some();
        if out.send(CheckedBatch { envelopes, error }).is_err() || failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::record_key;
    use crate::{Durability, JournalConfig};
    use slotpool_events::{envelope, ProductEvent, Timestamp};
    use uuid::Uuid;

    fn stream() -> StreamId {
        StreamId::product("jira").expect("valid")
    }

    fn enrol(user: &str) -> ProductEvent {
        ProductEvent::MemberEnrolled { user: user.into() }
    }

    /// A journal of `n` records (several batches), the oldest packed into chunks.
    fn journal(dir: &std::path::Path, n: u64) -> Journal {
        let j = Journal::open(
            dir,
            JournalConfig {
                durability: Durability::Process,
                ..JournalConfig::default()
            },
        )
        .expect("open");
        j.inner.tail.hold_nothing();
        let mut tip = StreamTip::default();
        for chunk in (1..=n).collect::<Vec<_>>().chunks(100) {
            let events: Vec<_> = chunk.iter().map(|i| enrol(&format!("u{i}"))).collect();
            j.append(&stream(), &mut tip, Uuid::nil(), Timestamp(0), &events)
                .expect("append");
        }
        // 1..=3072 in chunks, the rest loose: batches cross from chunks to loose records.
        assert_eq!(j.compact(&stream()).expect("compact"), 3_072);
        j
    }

    type Seen = (Vec<(u64, ProductEvent)>, Result<StreamTip, String>);

    /// What each replay hands on (until `stop_at`, if given) and how it ends.
    fn both(j: &Journal, from: StreamTip, stop_at: Option<u64>) -> (Seen, Seen) {
        let mut one = Vec::new();
        let r1 = j.replay_from::<ProductEvent>(&stream(), from, |e| {
            one.push((e.sequence, e.event));
            stop_at != Some(e.sequence)
        });
        let mut many = Vec::new();
        let r2 = j.replay_parallel::<ProductEvent>(&stream(), from, |e| {
            many.push((e.sequence, e.event.clone()));
            stop_at != Some(e.sequence)
        });
        (
            (one, r1.map_err(|e| e.to_string())),
            (many, r2.map_err(|e| e.to_string())),
        )
    }

    fn replace(j: &Journal, sequence: u64, bytes: Vec<u8>) {
        j.inner
            .tree
            .insert(record_key("product/jira", sequence), bytes)
            .expect("insert");
    }

    fn stored(j: &Journal, sequence: u64) -> Vec<u8> {
        j.inner
            .tree
            .get(record_key("product/jira", sequence))
            .expect("get")
            .expect("a loose record")
            .to_vec()
    }

    #[test]
    fn hands_on_what_replay_from_does_in_order_and_stops_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = journal(dir.path(), 5_000);
        let (one, many) = both(&j, StreamTip::default(), None);
        assert_eq!(one.0.len(), 5_000);
        assert_eq!(
            one.0.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (1..=5_000).collect::<Vec<_>>()
        );
        assert_eq!(one, many);
        assert!(many.1.is_ok());
        // From a tip in the middle of a chunk, and stopping half way.
        let mid = StreamTip {
            next_sequence: 1_501,
            last_hash: j
                .record_hash(&stream(), 1_500)
                .expect("hash")
                .expect("present"),
        };
        let (one, many) = both(&j, mid, Some(4_100));
        assert_eq!(one.0.first().map(|(s, _)| *s), Some(1_501));
        assert_eq!(one.0.last().map(|(s, _)| *s), Some(4_100));
        assert_eq!(one, many);
        // A wrong tip breaks the chain at its first record.
        let (one, many) = both(
            &j,
            StreamTip {
                next_sequence: 1_501,
                last_hash: [7; 32],
            },
            None,
        );
        assert!(one.0.is_empty());
        assert_eq!(one, many);
        assert!(many.1.expect_err("refused").contains("chain is broken"));
    }

    #[test]
    fn damage_is_reported_at_the_same_record_as_replay_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = journal(dir.path(), 5_000);

        // A flipped byte inside a batch: everything before it is handed on, then the error.
        let original = stored(&j, 3_500);
        let mut flipped = original.clone();
        flipped[6] ^= 0x40;
        replace(&j, 3_500, flipped);
        let (one, many) = both(&j, StreamTip::default(), None);
        assert_eq!(one.0.len(), 3_499);
        assert!(
            one.1.as_ref().is_err_and(|e| e.contains("3500")),
            "{:?}",
            one.1
        );
        assert_eq!(one, many);
        replace(&j, 3_500, original);

        // The last record of a batch replaced by a well-formed one: its own hash is right,
        // so the break shows at the next record, the first of the next batch.
        let original = stored(&j, 4_096);
        let (mut env, _) = envelope::decode::<ProductEvent>(&original).expect("decodes");
        env.event = enrol("mallory");
        replace(&j, 4_096, envelope::encode(&env).0);
        let (one, many) = both(&j, StreamTip::default(), None);
        assert_eq!(one.0.len(), 4_096);
        assert!(
            one.1
                .as_ref()
                .is_err_and(|e| e.contains("4097") && e.contains("chain is broken")),
            "{:?}",
            one.1
        );
        assert_eq!(one, many);
        replace(&j, 4_096, original);

        // A record too short to hold its hash, at the end of a batch.
        let original = stored(&j, 4_096);
        replace(&j, 4_096, original[..10].to_vec());
        let (one, many) = both(&j, StreamTip::default(), None);
        assert_eq!(one.0.len(), 4_095);
        assert_eq!(one, many);
        replace(&j, 4_096, original);

        // A missing record: the records before it, then the gap.
        j.inner
            .tree
            .remove(record_key("product/jira", 4_500))
            .expect("remove");
        let (one, many) = both(&j, StreamTip::default(), None);
        assert_eq!(one.0.len(), 4_499);
        assert!(one
            .1
            .as_ref()
            .is_err_and(|e| e.contains("records are missing")));
        assert_eq!(one, many);
        // Stopping before the damage is not an error, for either.
        let (one, many) = both(&j, StreamTip::default(), Some(2_000));
        assert!(one.1.is_ok());
        assert_eq!(one, many);
    }
}
