//! Reading the journal back: replay with every check, ranges, raw copies, single hashes.
//!
//! Every read goes through [`Journal::for_each_record`], which finds each record wherever
//! it lives (loose, or packed in a chunk by the compactor, which may move records while a
//! read runs) and names the first sequence that is missing. Replay checks every record
//! against its own hash, its sequence and the hash chain ([`check_record`]).

use crate::chunk::{chunk_at, chunk_records};
use crate::error::JournalError;
use crate::keys::{index_key, record_key, record_range, split_key, PurgedTip, INDEX_PREFIX};
use crate::tip::StreamTip;
use crate::Journal;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use slotpool_events::envelope::{self, DecodeError, Envelope, Hash};
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
        start_tip(&self.inner.tree, &stream.name())
    }

    /// The sequence of the last record of `stream` (0 for a stream with none), read from
    /// the key layout without decoding anything.
    pub fn last_sequence(&self, stream: &StreamId) -> Result<u64, JournalError> {
        last_sequence(&self.inner.tree, &stream.name())
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
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Envelope<E>, Hash)>>(4);
        std::thread::scope(|scope| {
            let name = &name;
            let reader = scope.spawn(move || {
                let mut tip = from;
                let mut batch = Vec::with_capacity(BATCH);
                let read = self.for_each_record(name, from.next_sequence, |sequence, record| {
                    let (env, hash) = check_record::<E>(name, sequence, record, &tip)?;
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
                });
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
        let from = self.first_tip(stream)?.next_sequence;
        self.for_each_record(&stream.name(), from, |sequence, record| {
            Ok(f(sequence, record))
        })
    }

    /// Hands every record of stream `name` from sequence `from` on to `f`, in order,
    /// whether it is loose or packed in a chunk, until `f` returns false. Fails naming
    /// the first sequence that is missing or unreadable.
    ///
    /// The compactor may move records into a chunk while this runs; a record that is no
    /// longer where the scan expected it is looked up in the chunks, so each is seen once.
    pub(crate) fn for_each_record(
        &self,
        name: &str,
        from: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<bool, JournalError>,
    ) -> Result<(), JournalError> {
        let tree = &self.inner.tree;
        let mut expected = from;
        'chunks: loop {
            // The chunk holding `expected`, then the following ones (each holds at least
            // one record, so every round moves `expected` on).
            while let Some((first, chunk)) = chunk_at(tree, name, expected)? {
                for (sequence, record) in (first..).zip(chunk_records(name, first, &chunk)) {
                    let record = record?;
                    if sequence >= expected {
                        if !f(sequence, record)? {
                            return Ok(());
                        }
                        expected = sequence + 1;
                    }
                }
            }
            // Then the loose records.
            for item in tree.range(record_key(name, expected)..=record_key(name, u64::MAX)) {
                let (key, value) = item?;
                let sequence = split_key(&key).map(|(_, s)| s);
                if sequence == Some(expected) {
                    if !f(expected, &value)? {
                        return Ok(());
                    }
                    expected += 1;
                    continue;
                }
                if chunk_at(tree, name, expected)?.is_some() {
                    continue 'chunks; // compacted under our feet
                }
                return Err(JournalError::Corrupt {
                    stream: name.to_string(),
                    sequence: expected,
                    what: match sequence {
                        Some(s) => {
                            format!("the next record has sequence {s} (records are missing)")
                        }
                        None => "a malformed key".into(),
                    },
                });
            }
            if chunk_at(tree, name, expected)?.is_some() {
                continue 'chunks;
            }
            return Ok(());
        }
    }

    /// The hash of record `sequence` of `stream`, after checking the record against its
    /// own hash; `None` when there is no such record.
    pub fn record_hash(
        &self,
        stream: &StreamId,
        sequence: u64,
    ) -> Result<Option<Hash>, JournalError> {
        let name = stream.name();
        let loose = self.inner.tree.get(record_key(&name, sequence))?;
        let packed;
        let value: &[u8] = match &loose {
            Some(v) => v,
            None => {
                let Some((first, chunk)) = chunk_at(&self.inner.tree, &name, sequence)? else {
                    // The last purged record is gone, but its hash continues the chain.
                    let start = start_tip(&self.inner.tree, &name)?;
                    return Ok((sequence > 0 && sequence + 1 == start.next_sequence)
                        .then_some(start.last_hash));
                };
                let index = usize::try_from(sequence - first).unwrap_or(usize::MAX);
                packed = chunk;
                match chunk_records(&name, first, &packed).nth(index) {
                    Some(record) => record?,
                    None => return Ok(None),
                }
            }
        };
        if value.len() < envelope::HASH_LEN {
            return Err(JournalError::Corrupt {
                stream: name,
                sequence,
                what: "record is truncated".into(),
            });
        }
        let (body, trailer) = value.split_at(value.len() - envelope::HASH_LEN);
        let hash: Hash = Sha256::digest(body).into();
        if hash[..] != trailer[..] {
            return Err(JournalError::Corrupt {
                stream: name,
                sequence,
                what: "record checksum does not match its contents".into(),
            });
        }
        Ok(Some(hash))
    }
}

pub(crate) fn check_record<E: DeserializeOwned>(
    name: &str,
    expected: u64,
    value: &[u8],
    tip: &StreamTip,
) -> Result<(Envelope<E>, Hash), JournalError> {
    let corrupt = |what: String| JournalError::Corrupt {
        stream: name.to_string(),
        sequence: expected,
        what,
    };
    let (env, hash) =
        envelope::decode::<E>(value).map_err(|e: DecodeError| corrupt(e.to_string()))?;
    if env.sequence != expected {
        return Err(corrupt(format!(
            "the record says it is sequence {}",
            env.sequence
        )));
    }
    if env.prev_hash != tip.last_hash {
        return Err(corrupt(
            "the hash chain is broken (a record was replaced)".into(),
        ));
    }
    Ok((env, hash))
}

/// Where stream `name` starts: the purge tip its index entry records, if any.
pub(crate) fn start_tip(tree: &sled::Tree, name: &str) -> Result<StreamTip, JournalError> {
    match tree.get(index_key(name))? {
        None => Ok(StreamTip::default()),
        Some(value) => PurgedTip::decode(&value).ok_or_else(|| JournalError::Corrupt {
            stream: name.to_string(),
            sequence: 0,
            what: "the stream's index entry is damaged".into(),
        }),
    }
}

/// The last sequence of stream `name` in `tree` (0 for none). Compaction always leaves a
/// stream's newest records loose, so the last loose key is the stream's last record; a
/// stream whose records were all purged ends where the purge did.
pub(crate) fn last_sequence(tree: &sled::Tree, name: &str) -> Result<u64, JournalError> {
    if let Some(key) = tree.range(record_range(name)).keys().next_back() {
        return Ok(split_key(&key?).map_or(0, |(_, sequence)| sequence));
    }
    Ok(start_tip(tree, name)?.next_sequence - 1)
}
