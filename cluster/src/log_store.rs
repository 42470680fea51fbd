//! [`LogStore`]: the Raft log and vote, as streams of a journal of their own.
//!
//! Entry `i` is record `i + 1 - offset` of stream `raft/log` (Raft counts from 0, streams
//! from 1); the offset is 0 until a log that was emptied (a snapshot installed beyond its
//! end) starts again at a later entry, and is then recorded in `raft/base` before that
//! entry. Each save of the vote is a record of `raft/vote`, the last one counting; the id
//! of the last purged entry is the last record of `raft/purged`; each purge removes the
//! older records of both. Records are hash-chained
//! envelopes like every stream's, checked when read, so a damaged log is found rather
//! than applied. Appends share the journal's group commit: the flushed-callback openraft
//! waits for runs when the write-ahead log has `fdatasync`ed them.

use crate::codec::{decode, encode};
use crate::types::{NodeId, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use slotpool_events::{Envelope, ReplicationRecord, StreamId, Timestamp};
use slotpool_journal::{Journal, StreamTip};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// How many of the newest entries stay decoded in memory: replication to followers that
/// keep up reads them from here, not from the journal.
const CACHED: usize = 4096;

fn stream(name: &str) -> StreamId {
    StreamId::Raft(name.to_string())
}

/// The Raft log storage of one node. Cheap to clone (openraft's log readers are clones).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Journal,
    /// How far the state machine's kept snapshot goes, once [`LogStore::gate_purges_on`]
    /// is called: a purge becomes durable only up to it.
    kept: std::sync::OnceLock<tokio::sync::watch::Receiver<crate::state_machine::KeptUpTo>>,
    /// A std mutex: held for in-memory bookkeeping only, never across an await or I/O
    /// wait (the journal's append returns at once; the flush is a callback).
    state: Mutex<State>,
}

struct State {
    log: StreamTip,
    /// Where the log stream starts: records before it are purged (their removal from the
    /// journal may still be under way, see [`State::removing`]).
    log_start: u64,
    /// Entry `i` is record `i + 1 - offset`.
    offset: u64,
    base: StreamTip,
    vote: StreamTip,
    purged: StreamTip,
    last_purged: Option<LogId<NodeId>>,
    last_log: Option<LogId<NodeId>>,
    cache: BTreeMap<u64, Entry<TypeConfig>>,
    /// The removal of the records of the last purge, when it may still be running.
    ///
    /// Why in the background: a purge removes a snapshot's worth of entries (20,000 by
    /// default, tens of megabytes) from sled, and openraft's core awaits `purge`, so every
    /// write on the leader and every append on a follower waited behind it once per
    /// snapshot: 85 ms for 18,000 records of 1 KB on an idle machine (`cargo bench -p
    /// slotpool-journal --bench journal -- purge`), more under load. The purge is decided
    /// (and durable) when `raft/purged` holds it; reads never reach before it, so the
    /// records can go while the log goes on. One removal runs at a time, and a truncation
    /// waits for it.
    removing: Option<tokio::task::JoinHandle<std::result::Result<(), String>>>,
}

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

fn read_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_logs(&std::io::Error::other(e.to_string())).into()
}

fn write_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_logs(&std::io::Error::other(e.to_string())).into()
}

/// Replays `name` whole (checking every record and the chain), handing each decoded
/// record to `f`; returns the tip to go on at.
fn replay<T: serde::de::DeserializeOwned>(
    journal: &Journal,
    name: &str,
    mut f: impl FnMut(u64, T),
) -> std::result::Result<StreamTip, String> {
    let mut bad = None;
    let tip = journal
        .replay::<ReplicationRecord>(&stream(name), |env| {
            if bad.is_some() {
                return;
            }
            match decode::<T>(&env.event.0) {
                Ok(v) => f(env.sequence, v),
                Err(e) => bad = Some(format!("raft/{name} record {}: {e}", env.sequence)),
            }
        })
        .map_err(|e| e.to_string())?;
    match bad {
        Some(e) => Err(e),
        None => Ok(tip),
    }
}

/// The last record of `name`, decoded, if any.
fn last<T: serde::de::DeserializeOwned>(
    journal: &Journal,
    name: &str,
) -> std::result::Result<(Option<T>, StreamTip), String> {
    let mut found = None;
    let tip = replay::<T>(journal, name, |_, v| found = Some(v))?;
    Ok((found, tip))
}

fn append_record<T: serde::Serialize>(
    journal: &Journal,
    name: &str,
    tip: &mut StreamTip,
    value: &T,
) -> std::result::Result<u64, String> {
    let bytes = encode(value)?;
    journal
        .append(
            &stream(name),
            tip,
            Uuid::nil(),
            Timestamp::from_millis(0),
            &[ReplicationRecord(bytes)],
        )
        .map_err(|e| e.to_string())
}

/// Waits (off the async runtime's core threads) until `ticket` is durable.
async fn durable(journal: &Journal, ticket: u64) -> std::result::Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    journal.when_durable(
        ticket,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    match rx.await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the journal's committer stopped".into()),
    }
}

impl LogStore {
    /// Opens the log kept in `journal` (a journal of its own: the node's `raft/` dir),
    /// checking every record of it.
    pub fn open(journal: Journal) -> std::result::Result<LogStore, String> {
        let mut last_log = None;
        let mut cache = BTreeMap::new();
        let log = replay::<Entry<TypeConfig>>(&journal, "log", |_, entry| {
            last_log = Some(entry.log_id);
            cache.insert(entry.log_id.index, entry);
            if cache.len() > CACHED {
                cache.pop_first();
            }
        })?;
        let (_, vote) = last::<Vote<NodeId>>(&journal, "vote")?;
        let (offset, base) = last::<u64>(&journal, "base")?;
        let first = journal
            .first_tip(&stream("log"))
            .map_err(|e| e.to_string())?
            .next_sequence;
        let (last_purged, purged) = last::<LogId<NodeId>>(&journal, "purged")?;
        let offset = offset.unwrap_or(0);
        // A process stopped while a purge's records were being removed left some of them
        // (the next purge removes them): the log starts after the last purged entry.
        let log_start = match last_purged {
            Some(p) => first.max(
                (p.index + 1)
                    .saturating_sub(offset)
                    .min(log.next_sequence - 1)
                    + 1,
            ),
            None => first,
        };
        let last_log = last_log.or(last_purged);
        Ok(LogStore {
            inner: Arc::new(Inner {
                journal,
                kept: std::sync::OnceLock::new(),
                state: Mutex::new(State {
                    log,
                    log_start,
                    offset,
                    base,
                    vote,
                    purged,
                    last_purged,
                    last_log,
                    cache,
                    removing: None,
                }),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes each purge wait until the state machine keeps a snapshot that covers it
    /// ([`crate::state_machine::KeptUpTo`]), and fail if an install fails first: a log
    /// is never durably purged past what this node could make its copy again from.
    /// (The log store alone, as openraft's test suite drives it, purges at once.)
    pub fn gate_purges_on(
        &self,
        kept: tokio::sync::watch::Receiver<crate::state_machine::KeptUpTo>,
    ) {
        let _ = self.inner.kept.set(kept);
    }

    /// Waits until the kept snapshot covers `log_id` (see [`LogStore::gate_purges_on`]).
    async fn kept_through(&self, log_id: LogId<NodeId>) -> Result<()> {
        let Some(kept) = self.inner.kept.get() else {
            return Ok(());
        };
        let mut kept = kept.clone();
        let failed = kept.borrow().failed_installs;
        let covers =
            |k: &crate::state_machine::KeptUpTo| k.last.is_some_and(|l| l.index >= log_id.index);
        let seen = kept
            .wait_for(|k| covers(k) || k.failed_installs != failed)
            .await
            .map(|k| *k)
            .map_err(|_| {
                write_err("the state machine stopped before the snapshot a purge needs was kept")
            })?;
        if covers(&seen) {
            Ok(())
        } else {
            Err(write_err(format!(
                "the snapshot through entry {} was not kept (its install failed): the log is not purged past it",
                log_id.index
            )))
        }
    }

    /// The journal the log lives in (shut down with the node).
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Waits until the records of the last purge are removed ([`State::removing`]);
    /// fails if their removal did.
    pub async fn removed(&self) -> Result<()> {
        let Some(removing) = self.state().removing.take() else {
            return Ok(());
        };
        match removing.await {
            Ok(r) => r.map_err(write_err),
            Err(e) => Err(write_err(format!("removing purged entries: {e}"))),
        }
    }

    fn read_entries(&self, from: u64, to_inclusive: u64) -> Result<Vec<Entry<TypeConfig>>> {
        // Purged entries are gone even while their records are still being removed.
        let from = match self.state().last_purged {
            Some(p) => from.max(p.index + 1),
            None => from,
        };
        if from > to_inclusive {
            return Ok(Vec::new());
        }
        {
            let st = self.state();
            let cached_from = st.cache.keys().next().copied();
            if cached_from.is_some_and(|c| c <= from) {
                return Ok(st
                    .cache
                    .range(from..=to_inclusive)
                    .map(|(_, e)| e.clone())
                    .collect());
            }
        }
        let offset = self.state().offset;
        let (Some(first), Some(last)) = (
            (from + 1).checked_sub(offset),
            to_inclusive.saturating_add(1).checked_sub(offset),
        ) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut bad = None;
        self.inner
            .journal
            .read_range::<ReplicationRecord>(
                &stream("log"),
                first.max(1),
                last,
                |env: Envelope<ReplicationRecord>| match decode::<Entry<TypeConfig>>(&env.event.0) {
                    Ok(e) => out.push(e),
                    Err(e) => {
                        bad.get_or_insert(format!("raft/log record {}: {e}", env.sequence));
                    }
                },
            )
            .map_err(read_err)?;
        if let Some(e) = bad {
            return Err(read_err(e));
        }
        Ok(out)
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&0) => return (1, 0),
        Bound::Excluded(&i) => i - 1,
        Bound::Unbounded => u64::MAX - 1,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let (from, to) = bounds(&range);
        self.read_entries(from, to)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let st = self.state();
        Ok(LogState {
            last_purged_log_id: st.last_purged,
            last_log_id: st.last_log.or(st.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        let ticket = {
            let mut st = self.state();
            append_record(&self.inner.journal, "vote", &mut st.vote, vote)
        }
        .map_err(|e| StorageError::from(StorageIOError::write_vote(&std::io::Error::other(e))))?;
        durable(&self.inner.journal, ticket)
            .await
            .map_err(|e| StorageIOError::write_vote(&std::io::Error::other(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        last::<Vote<NodeId>>(&self.inner.journal, "vote")
            .map(|(v, _)| v)
            .map_err(|e| StorageIOError::read_vote(&std::io::Error::other(e)).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let ticket = {
            let mut st = self.state();
            let empty = st.log.next_sequence <= st.log_start;
            if let (true, Some(first)) = (empty, entries.first()) {
                // An empty log (new, or purged to its end) starts at whichever entry comes.
                let offset = (first.log_id.index + 1).saturating_sub(st.log.next_sequence);
                if offset != st.offset {
                    append_record(&self.inner.journal, "base", &mut st.base, &offset)
                        .map_err(write_err)?;
                    st.offset = offset;
                }
            }
            let mut records = Vec::with_capacity(entries.len());
            for e in &entries {
                if e.log_id.index + 1 != st.offset + st.log.next_sequence + records.len() as u64 {
                    return Err(write_err(format!(
                        "entry {} does not follow the log's end at {}",
                        e.log_id.index,
                        (st.offset + st.log.next_sequence).saturating_sub(2)
                    )));
                }
                records.push(ReplicationRecord(encode(e).map_err(write_err)?));
            }
            let Some(last) = entries.last() else {
                drop(st);
                callback.log_io_completed(Ok(()));
                return Ok(());
            };
            let ticket = self
                .inner
                .journal
                .append(
                    &stream("log"),
                    &mut st.log,
                    Uuid::nil(),
                    Timestamp::from_millis(0),
                    &records,
                )
                .map_err(write_err)?;
            st.last_log = Some(last.log_id);
            for e in entries {
                st.cache.insert(e.log_id.index, e);
            }
            while st.cache.len() > CACHED {
                st.cache.pop_first();
            }
            ticket
        };
        // The callback runs on the journal's committer once the log is fdatasynced.
        self.inner.journal.when_durable(
            ticket,
            Box::new(move |r| {
                callback.log_io_completed(r.map_err(|e| std::io::Error::other(e.to_string())))
            }),
        );
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.removed().await?;
        let mut st = self.state();
        // Entry `index` is record `index + 1 - offset`: keep the records before it.
        let keep = log_id.index.saturating_sub(st.offset).max(st.log_start - 1);
        if keep + 1 >= st.log.next_sequence {
            return Ok(());
        }
        let tip = self
            .inner
            .journal
            .truncate_after(&stream("log"), keep)
            .map_err(|e| write_err(format!("truncating the log at entry {}: {e}", log_id.index)))?;
        st.log = tip;
        st.cache.retain(|&i, _| i < log_id.index);
        st.last_log = match log_id.index.checked_sub(1) {
            None => st.last_purged,
            Some(prev) => match st.cache.get(&prev) {
                Some(e) => Some(e.log_id),
                None => {
                    drop(st);
                    let found = self.read_entries(prev, prev)?;
                    let mut st = self.state();
                    st.last_log = found.last().map(|e| e.log_id).or(st.last_purged);
                    return Ok(());
                }
            },
        };
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.removed().await?;
        self.kept_through(log_id).await?;
        let ticket = {
            let mut st = self.state();
            let ticket = append_record(&self.inner.journal, "purged", &mut st.purged, &log_id)
                .map_err(write_err)?;
            st.last_purged = Some(log_id);
            st.cache.retain(|&i, _| i > log_id.index);
            if st.last_log.is_none_or(|l| l.index < log_id.index) {
                st.last_log = Some(log_id);
            }
            ticket
        };
        durable(&self.inner.journal, ticket)
            .await
            .map_err(write_err)?;
        let mut st = self.state();
        // Records up to the purged entry's, but no further than the log's end (a snapshot
        // may cover more than this log ever had).
        let upto = (log_id.index + 1)
            .saturating_sub(st.offset)
            .min(st.log.next_sequence - 1);
        let log_upto = (upto >= st.log_start).then(|| {
            st.log_start = upto + 1;
            upto
        });
        // Only the last record of `raft/purged` and of `raft/vote` counts: the older ones
        // go too, or the two streams would grow by one record per snapshot and per
        // election for the node's life, and start-up replays them whole. Both last
        // records are durable here: this purge's was awaited above, and openraft's core,
        // which calls `save_vote` and `purge` one at a time, got back from the last
        // `save_vote` only once its record was durable.
        let older = [
            ("purged", st.purged.next_sequence.saturating_sub(2)),
            ("vote", st.vote.next_sequence.saturating_sub(2)),
        ];
        let journal = self.inner.journal.clone();
        st.removing = Some(tokio::task::spawn_blocking(move || {
            if let Some(upto) = log_upto {
                journal.purge_upto(&stream("log"), upto).map_err(|e| {
                    let e = format!("purging the log up to entry {}: {e}", log_id.index);
                    tracing::error!(error = %e, "the Raft log's purged records were not removed");
                    e
                })?;
            }
            for (name, upto) in older {
                journal.purge_upto(&stream(name), upto).map_err(|e| {
                    let e = format!("removing the older records of raft/{name}: {e}");
                    tracing::error!(error = %e, "the Raft log's older records were not removed");
                    e
                })?;
            }
            Ok(())
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};
    use slotpool_journal::JournalConfig;

    fn id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: id(term, index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    /// A Raft log's journal in `dir` with entries `0..entries` of term 1 appended.
    async fn filled(dir: &std::path::Path, entries: u64) -> (Journal, LogStore) {
        let journal = Journal::open(dir, JournalConfig::default().purged_log()).expect("open");
        let mut store = LogStore::open(journal.clone()).expect("log store");
        store
            .blocking_append((0..entries).map(|i| entry(1, i)))
            .await
            .expect("append");
        (journal, store)
    }

    fn first_record(journal: &Journal) -> u64 {
        journal
            .first_tip(&stream("log"))
            .expect("first tip")
            .next_sequence
    }

    /// A purge answers once `raft/purged` is durable; from then on no read returns a
    /// purged entry, and the records go in the background, one purge's at a time.
    #[tokio::test(flavor = "multi_thread")]
    async fn purged_entries_are_never_read_and_their_records_go_after() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (journal, mut store) = filled(dir.path(), 300).await;
        store.purge(id(1, 99)).await.expect("purge");
        let read = store.try_get_log_entries(0..120).await.expect("read");
        assert_eq!(indexes(&read), (100..120).collect::<Vec<_>>());
        store
            .purge(id(1, 199))
            .await
            .expect("a second purge waits for the first");
        assert!(store
            .try_get_log_entries(150..=199)
            .await
            .expect("read")
            .is_empty());
        store.removed().await.expect("removed");
        assert_eq!(
            first_record(&journal),
            201,
            "records of entries 0..=199 are gone"
        );
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(id(1, 199)));
        assert_eq!(state.last_log_id, Some(id(1, 299)));
        journal.shutdown().expect("shutdown");
    }

    /// A process stopped after a purge was recorded but before its records were removed
    /// (simulated: the purge recorded, its records left) starts after the purged entry:
    /// they are not read, the log counts as empty (the next entry starts it again where
    /// it says), and the next purge removes the leftovers.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_purge_whose_records_were_left_starts_the_log_after_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let (journal, store) = filled(dir.path(), 10).await;
            let mut purged = store.state().purged;
            let ticket = append_record(&journal, "purged", &mut purged, &id(1, 9)).expect("record");
            durable(&journal, ticket).await.expect("durable");
            journal.shutdown().expect("shutdown");
        }
        let journal =
            Journal::open(dir.path(), JournalConfig::default().purged_log()).expect("reopen");
        let mut store = LogStore::open(journal.clone()).expect("log store");
        assert_eq!(first_record(&journal), 1, "the records were left");
        assert!(store
            .try_get_log_entries(0..20)
            .await
            .expect("read")
            .is_empty());
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(id(1, 9)));
        assert_eq!(state.last_log_id, Some(id(1, 9)));
        // The log is empty: it starts again where the next entry says.
        store
            .blocking_append((20..25).map(|i| entry(2, i)))
            .await
            .expect("append after the purge");
        let read = store.try_get_log_entries(0..30).await.expect("read");
        assert_eq!(indexes(&read), (20..25).collect::<Vec<_>>());
        store.purge(id(2, 21)).await.expect("purge");
        store.removed().await.expect("removed");
        assert_eq!(
            first_record(&journal),
            13,
            "leftovers and entries 20, 21 are gone"
        );
        let read = store.try_get_log_entries(0..30).await.expect("read");
        assert_eq!(indexes(&read), vec![22, 23, 24]);
        journal.shutdown().expect("shutdown");
    }

    /// Of `raft/vote` and `raft/purged` only the last record counts, and a purge removes
    /// the older ones: the streams do not grow with the node's life, and a reopened log
    /// still reads the last vote and the last purge.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_purge_keeps_only_the_last_vote_and_the_last_purge() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (journal, mut store) = filled(dir.path(), 100).await;
        let vote = |term| Vote::new_committed(term, 1);
        for (term, upto) in [(2, 9), (3, 19), (4, 29)] {
            store.save_vote(&vote(term)).await.expect("vote");
            store.save_vote(&vote(term + 10)).await.expect("vote");
            store.purge(id(1, upto)).await.expect("purge");
        }
        store.removed().await.expect("removed");
        for (name, records) in [("vote", 6), ("purged", 3)] {
            let first = journal.first_tip(&stream(name)).expect("tip").next_sequence;
            let last = journal.last_sequence(&stream(name)).expect("last");
            assert_eq!((first, last), (records, records), "raft/{name}");
        }
        journal.shutdown().expect("shutdown");
        drop((store, journal));
        let journal =
            Journal::open(dir.path(), JournalConfig::default().purged_log()).expect("reopen");
        let mut store = LogStore::open(journal.clone()).expect("log store");
        assert_eq!(store.read_vote().await.expect("vote"), Some(vote(14)));
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(id(1, 29)));
        assert_eq!(state.last_log_id, Some(id(1, 99)));
        // Both go on where they were.
        store
            .save_vote(&vote(20))
            .await
            .expect("vote after reopening");
        store.purge(id(1, 39)).await.expect("purge after reopening");
        store.removed().await.expect("removed");
        assert_eq!(store.read_vote().await.expect("vote"), Some(vote(20)));
        journal.shutdown().expect("shutdown");
    }

    /// With the state machine's kept snapshot as its gate, a purge records nothing until
    /// a kept snapshot covers the purged entry (an install still running), and fails if
    /// the install fails first; covered, it goes through.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_purge_waits_for_a_kept_snapshot_that_covers_it() {
        use crate::state_machine::KeptUpTo;
        let dir = tempfile::tempdir().expect("temp dir");
        let (journal, store) = filled(dir.path(), 100).await;
        let (tx, rx) = tokio::sync::watch::channel(KeptUpTo {
            last: Some(id(1, 9)),
            failed_installs: 0,
        });
        store.gate_purges_on(rx);
        let purged = || journal.last_sequence(&stream("purged")).expect("last");
        let mut s = store.clone();
        s.purge(id(1, 9)).await.expect("covered already");
        assert_eq!(purged(), 1);
        let mut s = store.clone();
        let waiting = tokio::spawn(async move { s.purge(id(1, 59)).await });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "a purge past the kept snapshot waits"
        );
        assert_eq!(purged(), 1, "and records nothing");
        tx.send_modify(|k| k.last = Some(id(1, 59)));
        waiting.await.expect("task").expect("covered now");
        assert_eq!(purged(), 2);
        let mut s = store.clone();
        let failing = tokio::spawn(async move { s.purge(id(1, 89)).await });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        tx.send_modify(|k| k.failed_installs += 1);
        assert!(failing.await.expect("task").is_err(), "the install failed");
        assert_eq!(purged(), 2);
        store.removed().await.expect("removed");
        journal.shutdown().expect("shutdown");
    }
}
