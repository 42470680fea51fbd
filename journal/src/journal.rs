//! [`Journal`]: the handle every writer and reader holds, its opening, appends and
//! shutdown. Reading lives in [`crate::replay`], group commit in [`crate::commit`].

use crate::checkpoint::{Checkpointer, Sled};
use crate::commit::{Around, DurableWaiter, GroupCommit};
use crate::compaction::{compact_stream, Compactor};
use crate::config::{Durability, JournalConfig};
use crate::error::JournalError;
use crate::files::{
    check_sled_conf, checkpoint, open_error, open_sled, remove_unfinished_sled_snapshots,
};
use crate::health::Health;
use crate::keys::{index_key, record_key};
use crate::tail::{Held, Tail};
use crate::tip::StreamTip;
use crate::wal;
use crate::watermark::{self, Watermark};
use serde::Serialize;
use slotpool_events::{StreamId, Timestamp};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use uuid::Uuid;

/// The durable, tamper-evident event log. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Journal {
    pub(crate) inner: Arc<Inner>,
}

/// What the clones of a journal share. Each part owns its own locks.
pub(crate) struct Inner {
    pub(crate) db: sled::Db,
    /// The records, index entries and chunks ([`crate::keys`]).
    pub(crate) tree: sled::Tree,
    pub(crate) path: PathBuf,
    /// sled's data file, `fdatasync`ed by checkpoints.
    pub(crate) data_file: File,
    pub(crate) commit: GroupCommit,
    pub(crate) checkpointer: Checkpointer,
    pub(crate) compactor: Compactor,
    pub(crate) health: Health,
    pub(crate) watermark: Watermark,
    /// Appended records sled does not hold yet ([`crate::tail`]).
    pub(crate) tail: Tail,
    /// Where appends go on a cluster's leader ([`crate::replicator`]); unset on a single
    /// node and on followers.
    pub(crate) replicator: std::sync::OnceLock<Arc<dyn crate::replicator::Replicator>>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and starts its committer thread.
    pub fn open(dir: &Path, config: JournalConfig) -> Result<Journal, JournalError> {
        let open_err = |message: String| JournalError::Open {
            path: dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        if dir.join(crate::files::RESTORING).exists() {
            return Err(JournalError::Damaged {
                path: dir.display().to_string(),
                message: format!(
                    "a restore into this directory did not finish ({} is there): restore again into an empty directory",
                    crate::files::RESTORING
                ),
            });
        }
        remove_unfinished_sled_snapshots(dir);
        let segment = check_sled_conf(dir)?.unwrap_or(config.sled_segment_bytes);
        let db = open_sled(dir, config.cache_bytes, segment).map_err(|e| open_error(dir, e))?;
        let tree = db.open_tree("journal").map_err(|e| open_error(dir, e))?;
        let data_file = File::open(dir.join("db")).map_err(|e| open_err(e.to_string()))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let log_dir = dir.join(wal::DIR);
        std::fs::create_dir_all(&log_dir).map_err(|e| open_err(e.to_string()))?;
        let replayed = wal::replay(&log_dir, &tree)?;
        if replayed.records > 0 {
            tracing::info!(
                records = replayed.records,
                "the write-ahead log had records sled's files lacked; inserted them again"
            );
        }
        // Once sled is durable, the log it was replayed from may go; but first the
        // watermark learns what the log knew was durable (it may be up to
        // WATERMARK_EVERY behind), so that a later cut of sled's files is still noticed.
        checkpoint(&db, &data_file).map_err(|e| open_err(e.to_string()))?;
        if !replayed.tips.is_empty() {
            watermark::raise(dir, &replayed.tips, &replayed.cut)?;
        }
        // The newest two old segments (a crash left them) are recycled as the new log and
        // the checkpointer's first spare: their blocks are allocated already.
        let mut old_segments = replayed.segments;
        let recycled = old_segments.pop();
        let first_spare = old_segments.pop();
        for path in &old_segments {
            std::fs::remove_file(path).map_err(|e| open_err(e.to_string()))?;
        }
        let sync_groups = config.durability == Durability::Fsync;
        let preallocate = if sync_groups {
            config.log_segment_bytes
        } else {
            0
        };
        let generation = replayed.last_generation + 1;
        let log = wal::Segment::prepare(&log_dir, generation, recycled, preallocate)
            .map_err(|e| open_err(format!("cannot create the write-ahead log: {e}")))?;
        let tips = watermark::check(dir, &tree)?;
        let compactor = Compactor::start(tree.clone()).map_err(|e| open_err(e.to_string()))?;
        let inner = Arc::new(Inner {
            db,
            tree,
            path: dir.to_path_buf(),
            data_file,
            commit: GroupCommit::new(sync_groups, config.log_segment_bytes, config.on_flush),
            checkpointer: Checkpointer::new(preallocate),
            compactor,
            health: Health::default(),
            watermark: Watermark::new(tips),
            tail: Tail::new(config.chunk_max_bytes),
            replicator: std::sync::OnceLock::new(),
        });
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<wal::Segment>();
        let spare = generation + 1;
        let checkpointer = spawn(&inner, "journal-checkpoint", move |inner| {
            let sled = Sled {
                db: &inner.db,
                tree: &inner.tree,
                tail: &inner.tail,
                data_file: &inner.data_file,
                health: &inner.health,
            };
            inner
                .checkpointer
                .run(&log_dir, spare, first_spare, &closed_rx, sled)
        })
        .map_err(|e| open_err(e.to_string()))?;
        inner.checkpointer.started(checkpointer);
        let committer = spawn(&inner, "journal-commit", move |inner| {
            let around = Around {
                health: &inner.health,
                checkpointer: &inner.checkpointer,
                watermark: &inner.watermark,
                path: &inner.path,
            };
            inner.commit.run(log, closed_tx, around)
        })
        .map_err(|e| open_err(e.to_string()))?;
        inner.commit.started(committer);
        Ok(Journal { inner })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends `events` to `stream` as one atomic batch, after `tip`, and advances `tip`.
    ///
    /// Returns a ticket for [`Journal::when_durable`]. The events are not durable yet.
    pub fn append<E: Serialize>(
        &self,
        stream: &StreamId,
        tip: &mut StreamTip,
        cause: Uuid,
        at: Timestamp,
        events: &[E],
    ) -> Result<u64, JournalError> {
        let (records, next) = tip.chain(cause, at, events);
        let ticket = match self.replicator() {
            Some(r) => {
                self.check_failed()?;
                r.propose(&stream.name(), tip.next_sequence, records)?
            }
            None => self.write_records(&stream.name(), tip.next_sequence, records)?,
        };
        *tip = next;
        Ok(ticket)
    }

    /// Writes encoded `records` of stream `name`, the first at sequence `first`, into
    /// sled and the next group's frame, as one atomic batch; returns the ticket. The one
    /// write path of appends and imports.
    pub(crate) fn write_records(
        &self,
        name: &str,
        first: u64,
        records: Vec<Vec<u8>>,
    ) -> Result<u64, JournalError> {
        self.check_failed()?;
        let new_stream = first == 1 && !records.is_empty();
        let count = records.len() as u64;
        // Records that continue their stream wait in the tail for sled ([`crate::tail`]).
        let records = if new_stream || records.is_empty() {
            records
        } else {
            let to_frame = |held: &[Vec<u8>]| {
                let keys: Vec<Vec<u8>> = (first..)
                    .take(held.len())
                    .map(|sequence| record_key(name, sequence))
                    .collect();
                let entries = keys.iter().zip(held).map(|(k, v)| (&k[..], &v[..]));
                self.inner.commit.add_to_frame(entries)
            };
            match self
                .inner
                .tail
                .hold(&self.inner.tree, name, first, records, to_frame)?
            {
                Held::Yes(ticket) => {
                    self.inner.watermark.set(name, first + count - 1);
                    return Ok(ticket);
                }
                Held::No(records) => records,
            }
        };
        // Sled gets these itself: first what the tail holds, so that no stream has a gap.
        self.settled()?;
        // One record is atomic by itself; sled's batches roll its write buffer each time
        // (measured: 5k/s against 25k/s for plain inserts), so only groups pay for them.
        let ticket = if records.len() == 1 && !new_stream {
            let key = record_key(name, first);
            // One copy of the bytes, shared by sled and the log's frame.
            let bytes = sled::IVec::from(records.into_iter().next().unwrap_or_default());
            self.inner.tree.insert(&key, bytes.clone())?;
            self.inner
                .commit
                .add_to_frame(std::iter::once((&key[..], &bytes[..])))
        } else {
            let mut batch = sled::Batch::default();
            let index = new_stream.then(|| index_key(name));
            if let Some(index) = &index {
                batch.insert(&index[..], &[][..]);
            }
            let mut logged: Vec<(Vec<u8>, sled::IVec)> = Vec::with_capacity(records.len());
            for (sequence, bytes) in (first..).zip(records) {
                let key = record_key(name, sequence);
                let bytes = sled::IVec::from(bytes);
                batch.insert(key.clone(), bytes.clone());
                logged.push((key, bytes));
            }
            self.inner.tree.apply_batch(batch)?;
            let entries = index
                .iter()
                .map(|k| (&k[..], &[][..]))
                .chain(logged.iter().map(|(k, v)| (&k[..], &v[..])));
            self.inner
                .commit
                .add_to_frame(entries.collect::<Vec<_>>().into_iter())
        };
        if count > 0 {
            self.inner.watermark.set(name, first + count - 1);
        }
        Ok(ticket)
    }

    /// The ticket of the latest append; waiting for it covers every append so far.
    pub fn latest_ticket(&self) -> u64 {
        match self.replicator() {
            Some(r) => r.latest_ticket(),
            None => self.inner.commit.latest_ticket(),
        }
    }

    /// The highest ticket known durable: every append up to it survives a crash.
    pub fn durable_ticket(&self) -> u64 {
        match self.replicator() {
            Some(r) => r.durable_ticket(),
            None => self.inner.commit.durable_ticket(),
        }
    }

    /// Calls `waiter` once the append with `ticket` (and all before it) is durable, or
    /// with the error that prevented it. Calls it at once if that is already the case.
    pub fn when_durable(&self, ticket: u64, waiter: DurableWaiter) {
        match self.replicator() {
            Some(r) => r.when_durable(ticket, waiter),
            None => self.local_when_durable(ticket, waiter),
        }
    }

    /// [`Self::when_durable`] of this copy's own log, replicated or not.
    fn local_when_durable(&self, ticket: u64, waiter: DurableWaiter) {
        self.inner
            .commit
            .when_durable(ticket, waiter, &self.inner.health)
    }

    /// Blocks until everything written to this copy so far is durable in its own log
    /// (shutdown, tests, tools).
    pub fn sync(&self) -> Result<(), JournalError> {
        self.wait_durable(self.inner.commit.latest_ticket())
    }

    /// Blocks until the append with `ticket` is durable.
    pub(crate) fn wait_durable(&self, ticket: u64) -> Result<(), JournalError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.local_when_durable(
            ticket,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(JournalError::Failed("the committer stopped".into())))
    }

    /// Asks the compactor thread to pack `stream` ([`Journal::compact`]) and returns at
    /// once. The nightly job asks for every stream.
    pub fn compact_in_background(&self, stream: &StreamId) {
        self.inner.compactor.ask(stream.name());
    }

    /// Packs the oldest loose records of `stream` into chunks of [`crate::CHUNK_RECORDS`],
    /// keeping the newest ones loose; returns how many records moved.
    ///
    /// The compactor thread calls this when asked ([`Journal::compact_in_background`]);
    /// tools and benches call it to compact a journal at once. Stops without moving
    /// anything at a record that is missing or fails its own hash, so that `verify` still
    /// finds it where it was.
    pub fn compact(&self, stream: &StreamId) -> Result<u64, JournalError> {
        compact_stream(
            &self.inner.tree,
            &self.inner.compactor.moving,
            &stream.name(),
        )
    }

    /// Whether the journal still accepts writes.
    pub fn is_writable(&self) -> bool {
        !self.inner.health.has_failed()
    }

    /// Flushes and syncs everything, then stops the committer. Later appends fail.
    pub fn shutdown(&self) -> Result<(), JournalError> {
        // Stop the compactor first, so that the last flush covers what it wrote.
        self.inner.compactor.stop();
        let result = self.sync();
        self.inner.commit.stop();
        // The committer's end closed the checkpointer's channel.
        self.inner.checkpointer.join();
        result?;
        // Everything is in sled: make it durable, and the log has nothing left to say. A
        // journal that failed keeps its log for the next open to replay.
        self.inner.health.check()?;
        self.settled()?;
        checkpoint(&self.inner.db, &self.inner.data_file)
            .map_err(|e| JournalError::Io(e.to_string()))?;
        self.inner.checkpointer.take_spare();
        let log_dir = self.inner.path.join(wal::DIR);
        let segments = wal::segments(&log_dir).map_err(|e| JournalError::Io(e.to_string()))?;
        for (_, path) in segments {
            std::fs::remove_file(path).map_err(|e| JournalError::Io(e.to_string()))?;
        }
        File::open(&log_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::Io(e.to_string()))
    }

    /// Writes what the tail holds into sled's tree ([`crate::tail`]): every read of the
    /// tree comes after it, so that readers need not know the tail. A failure fails the
    /// journal (the records are still in the write-ahead log for the next open).
    pub(crate) fn settled(&self) -> Result<(), JournalError> {
        self.inner.tail.settle(&self.inner.tree).inspect_err(|e| {
            self.inner
                .health
                .fail(format!("writing appended records into sled failed: {e}"));
        })
    }

    /// Refuses a write to a journal that failed or was shut down.
    pub(crate) fn check_failed(&self) -> Result<(), JournalError> {
        self.inner.health.check()?;
        self.inner.commit.check_open()
    }
}

/// Starts the thread `name`, running `work` over what the journal's clones share.
fn spawn(
    inner: &Arc<Inner>,
    name: &str,
    work: impl FnOnce(&Inner) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let worker = Arc::clone(inner);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(&worker))
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The committer holds an Arc<Inner>, so by now it has stopped; nothing to join.
        let _ = self.db.flush();
    }
}
