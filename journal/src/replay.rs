//! Reading the journal back: replay with every check, ranges, raw copies, single hashes,
//! all through [`crate::read`]'s shared checks.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::keys::INDEX_PREFIX;
use crate::read;
use crate::tip::StreamTip;
use serde::de::DeserializeOwned;
use slotpool_events::envelope::{Envelope, Hash};
use slotpool_events::StreamId;

impl Journal {
    /// Every stream that has at least one record.
    pub fn streams(&self) -> Result<Vec<StreamId>, JournalError> {
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix([INDEX_PREFIX]) {
            let (key, _) = item?;
            let name = String::from_utf8_lossy(&key[1..]).into_owned();
            match StreamId::parse(&name) {
                Some(id) => out.push(id),
                None => {
                    return Err(JournalError::Corrupt {
                        stream: name,
                        sequence: 0,
                        what: "the stream index names an unknown stream".into(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Reads records `from..=to` of `stream` (clipped to what the stream has), checking
    /// each record and the chain from the record before `from`; hands each envelope to
    /// `f`. What the Raft log storage of a cluster reads its entries through.
    pub fn read_range<E: DeserializeOwned + Send>(
        &self,
        stream: &StreamId,
        from: u64,
        to: u64,
        mut f: impl FnMut(Envelope<E>),
    ) -> Result<(), JournalError> {
        let first = self.first_tip(stream)?;
        let from = from.max(first.next_sequence);
        if from > to {
            return Ok(());
        }
        let tip = if from == first.next_sequence {
            first
        } else {
            match self.record_hash(stream, from - 1)? {
                Some(last_hash) => StreamTip {
                    next_sequence: from,
                    last_hash,
                },
                None => return Ok(()), // beyond the end
            }
        };
        self.replay_from(stream, tip, |env: Envelope<E>| {
            if env.sequence > to {
                return false;
            }
            f(env);
            true
        })?;
        Ok(())
    }

    /// Where `stream` starts: the default tip, or, once its oldest records were purged
    /// ([`Journal::purge_upto`]), the tip they ended at.
    pub fn first_tip(&self, stream: &StreamId) -> Result<StreamTip, JournalError> {
        read::start_tip(&self.inner.tree, &stream.name())
    }

    /// The sequence of the last record of `stream` (0 for a stream with none), read from
    /// the key layout without decoding anything.
    pub fn last_sequence(&self, stream: &StreamId) -> Result<u64, JournalError> {
        self.inner
            .tail
            .last_sequence(&self.inner.tree, &stream.name())
    }

    /// Reads a stream from the start, checking every record and the hash chain, and
    /// hands each envelope to `f`. Returns the tip to continue writing at.
    pub fn replay<E: DeserializeOwned + Send>(
        &self,
        stream: &StreamId,
        mut f: impl FnMut(Envelope<E>),
    ) -> Result<StreamTip, JournalError> {
        self.replay_from(stream, self.first_tip(stream)?, |env| {
            f(env);
            true
        })
    }

    /// Reads a stream from `from` (a tip recorded earlier, for example by a snapshot),
    /// checking every record and the chain; stops early when `f` returns false.
    ///
    /// Reading and checking run on a second thread, a batch ahead of `f`: at start-up
    /// the two halves (sled plus hash and decode, and the fold into state) cost about the
    /// same, so recovery takes half the time it would on one thread.
    pub fn replay_from<E: DeserializeOwned + Send>(
        &self,
        stream: &StreamId,
        from: StreamTip,
        mut f: impl FnMut(Envelope<E>) -> bool,
    ) -> Result<StreamTip, JournalError> {
        const BATCH: usize = 512;
        let name = stream.name();
        // The newest records, read where they wait ([`crate::tail`]), with every check.
        if let Some(records) = self.inner.tail.records_from(&name, from.next_sequence) {
            let mut tip = from;
            for (sequence, record) in (from.next_sequence..).zip(&records) {
                let (env, hash) = read::check_record::<E>(&name, sequence, record, &tip)?;
                tip = StreamTip {
                    next_sequence: sequence + 1,
                    last_hash: hash,
                };
                if !f(env) {
                    break;
                }
            }
            return Ok(tip);
        }
        self.settled()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Envelope<E>, Hash)>>(4);
        std::thread::scope(|scope| {
            let name = &name;
            let reader = scope.spawn(move || {
                let mut tip = from;
                let mut batch = Vec::with_capacity(BATCH);
                let read = read::for_each_record(
                    &self.inner.tree,
                    name,
                    from.next_sequence,
                    |sequence, record| {
                        let (env, hash) = read::check_record::<E>(name, sequence, record, &tip)?;
                        tip = StreamTip {
                            next_sequence: sequence + 1,
                            last_hash: hash,
                        };
                        batch.push((env, hash));
                        if batch.len() < BATCH {
                            return Ok(true);
                        }
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        // A closed channel means `f` stopped: read no further.
                        Ok(tx.send(full).is_ok())
                    },
                );
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
                read
            });
            let mut tip = from;
            let mut stopped = false;
            'batches: for batch in rx.iter() {
                for (env, hash) in batch {
                    tip = StreamTip {
                        next_sequence: env.sequence + 1,
                        last_hash: hash,
                    };
                    if !f(env) {
                        stopped = true;
                        break 'batches;
                    }
                }
            }
            drop(rx);
            let read = reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            match read {
                Err(e) if !stopped => Err(e),
                _ => Ok(tip),
            }
        })
    }

    /// Hands the stored bytes of every record of `stream` to `f` with its sequence, in
    /// order, wherever each lives (loose or in a chunk), until `f` returns false. For
    /// copies of the journal (backup): a copy made this way is consistent even while the
    /// compactor runs, where a copy of sled's keys might miss or double a record moving
    /// between them.
    pub fn raw_records(
        &self,
        stream: &StreamId,
        mut f: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), JournalError> {
        self.settled()?;
        let from = self.first_tip(stream)?.next_sequence;
        read::for_each_record(
            &self.inner.tree,
            &stream.name(),
            from,
            |sequence, record| Ok(f(sequence, record)),
        )
    }

    /// The hash of record `sequence` of `stream`, after checking the record against its
    /// own hash; `None` when there is no such record (the last purged one still answers).
    pub fn record_hash(
        &self,
        stream: &StreamId,
        sequence: u64,
    ) -> Result<Option<Hash>, JournalError> {
        self.settled()?;
        read::record_hash(&self.inner.tree, &stream.name(), sequence)
    }
}
