//! The journal: every stream's records in sled, appended with group commit.
//!
//! Keys are `stream name ++ 0x00 ++ big-endian sequence`, so each stream is one ordered
//! key range and replay is a prefix scan. An index of stream names lives under keys that
//! start with `0x01` in the same tree, so a stream's first record and its index entry are
//! written in one atomic batch.
//!
//! Compaction: sled costs about as much per item as it does per byte on a cold read, so a
//! long stream is replayed far faster from few large values than from many small ones.
//! When asked (the nightly job asks for every stream), a background thread moves a
//! stream's oldest loose records, all but the newest [`CHUNK_RECORDS`], byte for byte,
//! into *chunks* of [`CHUNK_RECORDS`] records, each under a key
//! that starts with `0x02` (`0x02 ++ stream ++ 0x00 ++ first sequence`), in one atomic
//! batch. Every record keeps its own hash and its place in the chain, so a chunk hides no
//! damage; readers see each record exactly once, wherever it lives at that moment.
//!
//! Durability: an append inserts into sled's memory and adds the same keys and values to
//! the frame of the next group. A caller that must not answer before its events survive
//! registers with [`Journal::when_durable`]; one committer thread writes the frame to the
//! write-ahead log ([`wal`]) and (by default) `fdatasync`s it, then tells every caller
//! the write covered. Concurrent appends thus share one write: group commit. sled's own
//! files are made durable in bulk, once per log segment, by the checkpointer thread; at
//! open, records the log has and sled lost are inserted again.

use crate::envelope::{self, DecodeError, Envelope, Hash, SCHEMA_VERSION};
use crate::event::{DirectoryEvent, ProductEvent};
use crate::stream::StreamId;
use crate::time::Timestamp;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;
use uuid::Uuid;

/// How far an acknowledged append has gone before its caller is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Write-ahead log written and `fdatasync`ed: survives power loss. The default.
    #[default]
    Fsync,
    /// Write-ahead log written, not synced: survives a killed process, not a power loss
    /// or kernel crash.
    Process,
}

/// Called after each group flush with its duration and how many appends it covered.
pub type FlushObserver = Arc<dyn Fn(Duration, usize) + Send + Sync>;

/// How to open a journal.
#[derive(Clone)]
pub struct JournalConfig {
    /// What "durable" means.
    pub durability: Durability,
    /// sled's page cache, in bytes (sled's own default of 1 GiB would dominate memory).
    pub cache_bytes: u64,
    /// Told of every group flush (metrics).
    pub on_flush: Option<FlushObserver>,
    /// How large a write-ahead log segment grows before the committer moves on and it is
    /// checkpointed ([`wal::SEGMENT_BYTES`]; tests make it small).
    pub log_segment_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            durability: Durability::Fsync,
            cache_bytes: 64 * 1024 * 1024,
            on_flush: None,
            log_segment_bytes: wal::SEGMENT_BYTES,
        }
    }
}

/// What went wrong with the journal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JournalError {
    /// The data directory could not be opened (missing permissions, another process...).
    #[error("cannot open the journal in {path}: {message}")]
    Open { path: String, message: String },
    /// A read or write failed.
    #[error("journal I/O failed: {0}")]
    Io(String),
    /// A record is damaged, missing or out of place.
    #[error("journal stream {stream} is damaged at sequence {sequence}: {what}")]
    Corrupt {
        stream: String,
        sequence: u64,
        what: String,
    },
    /// An earlier flush failed; the process must restart and recover from disk.
    #[error("the journal stopped accepting writes after a failed flush: {0}")]
    Failed(String),
    /// The database files themselves are torn or truncated (sled found a corrupted
    /// page or log segment when opening them): nothing was read, nothing changed.
    #[error("the journal's files in {path} are damaged (torn or truncated): {message}")]
    Damaged { path: String, message: String },
}

/// Removes sled's `snap.<lsn>.generating` files. sled 0.34 writes its page-table snapshot
/// to that name, syncs it, then renames it; a process killed before the rename leaves
/// the file behind, and sled's next open takes it for the latest snapshot, finds it empty
/// or short and refuses the whole database as corrupt (spacejam/sled#1527; found by
/// `make chaos`, killing the service while it recovers). The file is by construction an
/// unfinished temporary: sled recovers from its previous snapshot and the log without it.
fn remove_unfinished_sled_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::warn!(file = %name, "removed an unfinished sled snapshot left by a crash")
                }
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "unfinished sled snapshot not removed")
                }
            }
        }
    }
}

/// Refuses a journal in which a stream ends before its acknowledged watermark (records
/// made durable are missing: its files lost their tail); returns the watermark to go on
/// from.
fn check_watermark(dir: &Path, tree: &sled::Tree) -> Result<watermark::Tips, JournalError> {
    let damaged = |message: String| JournalError::Damaged {
        path: dir.display().to_string(),
        message,
    };
    let Some(tips) = watermark::load(dir).map_err(damaged)? else {
        return Ok(watermark::Tips::new());
    };
    for (name, acknowledged) in &tips {
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(SEPARATOR);
        let last = match tree.scan_prefix(&prefix).keys().next_back() {
            None => 0,
            Some(key) => {
                let key = key.map_err(|e| damaged(e.to_string()))?;
                split_key(&key).map_or(0, |(_, seq)| seq)
            }
        };
        if last < *acknowledged {
            return Err(damaged(format!(
                "stream {name} ends at sequence {last}, but sequence {acknowledged} was made durable ({}): records were lost from the end of the journal's files",
                watermark::FILE
            )));
        }
    }
    Ok(tips)
}

/// Raises the watermark to `durable` (stream -> last sequence made durable) where that is
/// further on.
fn raise_watermark(
    dir: &Path,
    durable: &std::collections::HashMap<String, u64>,
) -> Result<(), JournalError> {
    let damaged = |message: String| JournalError::Damaged {
        path: dir.display().to_string(),
        message,
    };
    let mut tips = watermark::load(dir).map_err(damaged)?.unwrap_or_default();
    for (name, &sequence) in durable {
        let tip = tips.entry(name.clone()).or_insert(0);
        *tip = (*tip).max(sequence);
    }
    watermark::store(dir, &tips).map_err(|e| JournalError::Open {
        path: dir.display().to_string(),
        message: format!("cannot write {}: {e}", watermark::FILE),
    })
}

/// How long opening waits for sled's file lock: a database just closed in this process
/// keeps it until sled's background threads have let go (reopening after `shutdown`, as
/// tools and tests do), and a process that just exited may not have released it yet.
/// A lock still held after this is another live process: an error.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks sled's settings file `conf` against its checksum before sled reads it.
///
/// sled 0.34 only warns when the checksum fails and then parses what it finds: a `conf`
/// cut short by a torn copy or write reads as "created by pagecache version 0.3", an
/// *unsupported version*, which would send an operator after the wrong problem (found by
/// the torn-write test, truncating `conf` by its last two bytes). A missing or nearly
/// empty `conf` is sled's own business (it writes a new one).
fn check_sled_conf(dir: &Path) -> Result<(), JournalError> {
    let path = dir.join("conf");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(JournalError::Open {
                path: dir.display().to_string(),
                message: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    // sled's own threshold: up to 8 bytes it treats the file as absent.
    if bytes.len() <= 8 {
        return Ok(());
    }
    let (text, crc) = bytes.split_at(bytes.len() - 4);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(text) != expected {
        return Err(JournalError::Damaged {
            path: dir.display().to_string(),
            message: format!(
                "sled's settings file {} fails its checksum (torn or truncated)",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Opens sled in `dir`, waiting up to [`LOCK_WAIT`] for its file lock.
fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open();
        match opened {
            // sled reports a held lock as an `Other` I/O error naming it.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Why sled could not open `dir`: damaged files apart from every other reason (a lock
/// held by another process, permissions), since the remedy differs.
fn open_error(dir: &Path, e: sled::Error) -> JournalError {
    let path = dir.display().to_string();
    match e {
        sled::Error::Corruption { .. } => JournalError::Damaged {
            path,
            message: e.to_string(),
        },
        e => JournalError::Open {
            path,
            message: e.to_string(),
        },
    }
}

impl From<sled::Error> for JournalError {
    fn from(e: sled::Error) -> Self {
        JournalError::Io(e.to_string())
    }
}

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

/// Told once whether the appends it waits for became durable.
pub type DurableWaiter = Box<dyn FnOnce(Result<(), JournalError>) + Send>;

/// One stream's summary, from [`Journal::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's name.
    pub stream: String,
    /// Records in it.
    pub records: u64,
}

const INDEX_PREFIX: u8 = 0x01;
const CHUNK_PREFIX: u8 = 0x02;
const SEPARATOR: u8 = 0x00;
/// Layout version of a chunk value (its first byte).
const CHUNK_FORMAT: u8 = 1;

/// Records per chunk, and how many of a stream's newest records stay loose: compaction
/// packs a stream only while it has at least twice this many loose records.
pub const CHUNK_RECORDS: u64 = 1024;

mod layout;
mod parallel;
pub mod wal;
pub mod watermark;
pub use layout::StreamLayout;

/// How often, at most, the committer rewrites the watermark; also how long after the
/// last flush it catches up.
const WATERMARK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The durable, tamper-evident event log. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    path: PathBuf,
    /// sled's data file, `fdatasync`ed by checkpoints.
    data_file: File,
    /// Whether a group's log write is `fdatasync`ed ([`Durability::Fsync`]).
    sync_groups: bool,
    /// See [`JournalConfig::log_segment_bytes`].
    segment_bytes: u64,
    /// Zeros written into a segment made from nothing (see [`wal::Segment::prepare`]):
    /// a segment's size when groups are synced, else none.
    preallocate: u64,
    on_flush: Option<FlushObserver>,
    /// The next group's frame of the write-ahead log (see [`wal::push_record`]). A std
    /// Mutex: held for a copy or a swap, never across I/O. The ticket counter `appended`
    /// moves under it, so that a frame taken holds exactly the appends up to the ticket
    /// read with it.
    frame: Mutex<Vec<u8>>,
    /// The next log segment, prepared by the checkpointer for the committer to move to.
    spare: Mutex<Option<wal::Segment>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    /// Appends so far; each append's ticket is the value after it.
    appended: AtomicU64,
    /// Highest ticket known durable.
    durable: AtomicU64,
    failed: Mutex<Option<String>>,
    has_failed: AtomicBool,
    // A std Mutex, not an async one: it is held for a push or a swap, never across
    // I/O or an await, and the committer is a plain thread.
    pending: Mutex<Pending>,
    wake: Condvar,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// Streams due for compaction go here; `None` once shut down.
    compact_tx: Mutex<Option<std::sync::mpsc::Sender<String>>>,
    compactor: Mutex<Option<JoinHandle<()>>>,
    /// Last sequence appended per stream, and whether it changed since the watermark was
    /// last written (see [`watermark`]).
    appended_tips: Mutex<(watermark::Tips, bool)>,
}

#[derive(Default)]
struct Pending {
    waiters: Vec<DurableWaiter>,
    shutdown: bool,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and starts its committer thread.
    pub fn open(dir: &Path, config: JournalConfig) -> Result<Journal, JournalError> {
        let open_err = |message: String| JournalError::Open {
            path: dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        remove_unfinished_sled_snapshots(dir);
        check_sled_conf(dir)?;
        let db = open_sled(dir, config.cache_bytes).map_err(|e| open_error(dir, e))?;
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
            raise_watermark(dir, &replayed.tips)?;
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
        let tips = check_watermark(dir, &tree)?;
        let inner = Arc::new(Inner {
            db,
            tree,
            path: dir.to_path_buf(),
            data_file,
            sync_groups,
            segment_bytes: config.log_segment_bytes,
            preallocate,
            on_flush: config.on_flush,
            frame: Mutex::new(Vec::new()),
            spare: Mutex::new(None),
            checkpointer: Mutex::new(None),
            appended: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            failed: Mutex::new(None),
            has_failed: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            committer: Mutex::new(None),
            compact_tx: Mutex::new(None),
            compactor: Mutex::new(None),
            appended_tips: Mutex::new((tips, false)),
        });
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<wal::Segment>();
        let worker = Arc::clone(&inner);
        let handle = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || {
                worker.run_checkpointer(&log_dir, generation + 1, first_spare, &closed_rx)
            })
            .map_err(|e| open_err(e.to_string()))?;
        *lock(&inner.checkpointer) = Some(handle);
        let worker = Arc::clone(&inner);
        let handle = std::thread::Builder::new()
            .name("journal-commit".into())
            .spawn(move || worker.run_committer(log, closed_tx))
            .map_err(|e| open_err(e.to_string()))?;
        *lock(&inner.committer) = Some(handle);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // The compactor holds the tree, not `Inner`: dropping the sender stops it.
        let tree = inner.tree.clone();
        let handle = std::thread::Builder::new()
            .name("journal-compact".into())
            .spawn(move || run_compactor(&tree, &rx))
            .map_err(|e| open_err(e.to_string()))?;
        *lock(&inner.compact_tx) = Some(tx);
        *lock(&inner.compactor) = Some(handle);
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
        self.check_failed()?;
        let name = stream.name();
        let mut batch = sled::Batch::default();
        let new_stream = tip.next_sequence == 1 && !events.is_empty();
        if new_stream {
            batch.insert(index_key(&name), &[][..]);
        }
        let mut next = *tip;
        let mut single = None;
        let mut logged: Vec<(Vec<u8>, sled::IVec)> = Vec::new();
        for event in events {
            let env = Envelope {
                schema_version: SCHEMA_VERSION,
                sequence: next.next_sequence,
                timestamp: at,
                cause,
                prev_hash: next.last_hash,
                event,
            };
            let (bytes, hash) = envelope::encode(&env);
            let key = record_key(&name, next.next_sequence);
            // One copy of the bytes, shared by sled and the log's frame.
            let bytes = sled::IVec::from(bytes);
            if events.len() == 1 && !new_stream {
                single = Some((key, bytes));
            } else {
                batch.insert(key.clone(), bytes.clone());
                logged.push((key, bytes));
            }
            next = StreamTip {
                next_sequence: next.next_sequence + 1,
                last_hash: hash,
            };
        }
        // One record is atomic by itself; sled's batches roll its write buffer each time
        // (measured: 5k/s against 25k/s for plain inserts), so only groups pay for them.
        let ticket = match single {
            Some((key, bytes)) => {
                self.inner.tree.insert(&key, bytes.clone())?;
                self.inner
                    .add_to_frame(std::iter::once((&key[..], &bytes[..])))
            }
            None => {
                self.inner.tree.apply_batch(batch)?;
                let index = new_stream.then(|| index_key(&name));
                let entries = index
                    .iter()
                    .map(|k| (&k[..], &[][..]))
                    .chain(logged.iter().map(|(k, v)| (&k[..], &v[..])));
                self.inner
                    .add_to_frame(entries.collect::<Vec<_>>().into_iter())
            }
        };
        *tip = next;
        if !events.is_empty() {
            let mut tips = lock(&self.inner.appended_tips);
            tips.0.insert(name, next.next_sequence - 1);
            tips.1 = true;
        }
        Ok(ticket)
    }

    /// The ticket of the latest append; waiting for it covers every append so far.
    pub fn latest_ticket(&self) -> u64 {
        self.inner.appended.load(Ordering::SeqCst)
    }

    /// The highest ticket known durable: every append up to it survives a crash.
    pub fn durable_ticket(&self) -> u64 {
        self.inner.durable.load(Ordering::SeqCst)
    }

    /// Calls `waiter` once the append with `ticket` (and all before it) is durable, or
    /// with the error that prevented it. Calls it at once if that is already the case.
    pub fn when_durable(&self, ticket: u64, waiter: DurableWaiter) {
        if self.inner.durable.load(Ordering::SeqCst) >= ticket {
            return waiter(Ok(()));
        }
        if let Err(e) = self.check_failed() {
            return waiter(Err(e));
        }
        let mut pending = lock(&self.inner.pending);
        // Only the first waiter of a batch wakes the committer (a futex call saved per
        // request): later ones find it awake, or flushing, and it takes them all after.
        let first = pending.waiters.is_empty();
        pending.waiters.push(waiter);
        drop(pending);
        if first {
            self.inner.wake.notify_one();
        }
    }

    /// Blocks until everything appended so far is durable (shutdown, tests, tools).
    pub fn sync(&self) -> Result<(), JournalError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.when_durable(
            self.latest_ticket(),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(JournalError::Failed("the committer stopped".into())))
    }

    /// Whether the journal still accepts writes.
    pub fn is_writable(&self) -> bool {
        !self.inner.has_failed.load(Ordering::SeqCst)
    }

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

    /// Reads a stream from the start, checking every record and the hash chain, and
    /// hands each envelope to `f`. Returns the tip to continue writing at.
    pub fn replay<E: DeserializeOwned + Send>(
        &self,
        stream: &StreamId,
        mut f: impl FnMut(Envelope<E>),
    ) -> Result<StreamTip, JournalError> {
        self.replay_from(stream, StreamTip::default(), |env| {
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
        self.for_each_record(&stream.name(), 1, |sequence, record| {
            Ok(f(sequence, record))
        })
    }

    /// Hands every record of stream `name` from sequence `from` on to `f`, in order,
    /// whether it is loose or packed in a chunk, until `f` returns false. Fails naming
    /// the first sequence that is missing or unreadable.
    ///
    /// The compactor may move records into a chunk while this runs; a record that is no
    /// longer where the scan expected it is looked up in the chunks, so each is seen once.
    fn for_each_record(
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

    /// Checks every record of every stream: each decodes, matches its own hash, and
    /// continues its stream's sequence and chain, whether loose or in a chunk; every key
    /// belongs to an indexed stream and every indexed stream has records. Returns the
    /// first damage found, naming stream and sequence.
    pub fn verify(&self) -> Result<Vec<StreamSummary>, JournalError> {
        let indexed: BTreeSet<String> = self.streams()?.iter().map(StreamId::name).collect();
        let mut stored = BTreeSet::new();
        for key in self.inner.tree.iter().keys() {
            let key = key?;
            let name = match key.first() {
                Some(&INDEX_PREFIX) => continue,
                Some(&CHUNK_PREFIX) => split_key(&key[1..]).map(|(n, _)| n),
                _ => split_key(&key).map(|(n, _)| n),
            };
            let Some(name) = name else {
                return Err(JournalError::Corrupt {
                    stream: String::from_utf8_lossy(&key).into_owned(),
                    sequence: 0,
                    what: "a key that is not stream + sequence".into(),
                });
            };
            stored.insert(name);
        }
        if let Some(name) = indexed.difference(&stored).next() {
            return Err(JournalError::Corrupt {
                stream: name.clone(),
                sequence: 1,
                what: "the stream is indexed but its records are missing".into(),
            });
        }
        if let Some(name) = stored.difference(&indexed).next() {
            return Err(JournalError::Corrupt {
                stream: name.clone(),
                sequence: 1,
                what: "the stream has records but is missing from the index".into(),
            });
        }
        let mut summaries = Vec::with_capacity(stored.len());
        for name in stored {
            let tip = match StreamId::parse(&name) {
                Some(stream @ StreamId::Directory) => {
                    self.replay_from::<DirectoryEvent>(&stream, StreamTip::default(), |_| true)
                }
                Some(stream @ StreamId::Product(_)) => {
                    self.replay_from::<ProductEvent>(&stream, StreamTip::default(), |_| true)
                }
                None => Err(JournalError::Corrupt {
                    stream: name.clone(),
                    sequence: 0,
                    what: "records of an unknown stream".into(),
                }),
            }?;
            summaries.push(StreamSummary {
                stream: name,
                records: tip.next_sequence - 1,
            });
        }
        Ok(summaries)
    }

    /// Asks the compactor thread to pack `stream` (see [`Journal::compact`]) and returns at
    /// once. The nightly job asks for every stream: packing costs about as much CPU per
    /// record as appending it, so it is done when the service is quiet, not on every
    /// append.
    pub fn compact_in_background(&self, stream: &StreamId) {
        if let Some(tx) = lock(&self.inner.compact_tx).as_ref() {
            let _ = tx.send(stream.name());
        }
    }

    /// Packs the oldest loose records of `stream` into chunks of [`CHUNK_RECORDS`],
    /// keeping the newest [`CHUNK_RECORDS`] loose; returns how many records moved.
    ///
    /// The compactor thread calls this when asked ([`Journal::compact_in_background`]);
    /// tools and benches call it to compact a journal at once. Stops without moving anything at a record that is
    /// missing or fails its own hash, so that `verify` still finds it where it was.
    pub fn compact(&self, stream: &StreamId) -> Result<u64, JournalError> {
        compact_stream(&self.inner.tree, &stream.name())
    }

    /// Another tree of the same database (snapshots live beside the journal, so that one
    /// group flush makes both durable).
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, JournalError> {
        Ok(self.inner.db.open_tree(name)?)
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
                    return Ok(None);
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

    /// Flushes and syncs everything, then stops the committer. Later appends fail.
    pub fn shutdown(&self) -> Result<(), JournalError> {
        // Stop the compactor first, so that the last flush covers what it wrote.
        lock(&self.inner.compact_tx).take();
        if let Some(handle) = lock(&self.inner.compactor).take() {
            let _ = handle.join();
        }
        let result = self.sync();
        lock(&self.inner.pending).shutdown = true;
        self.inner.wake.notify_all();
        if let Some(handle) = lock(&self.inner.committer).take() {
            let _ = handle.join();
        }
        // The committer's end closed the checkpointer's channel.
        if let Some(handle) = lock(&self.inner.checkpointer).take() {
            let _ = handle.join();
        }
        result?;
        // Everything is in sled: make it durable, and the log has nothing left to say. A
        // journal that failed keeps its log for the next open to replay.
        self.inner.check_healthy()?;
        checkpoint(&self.inner.db, &self.inner.data_file)
            .map_err(|e| JournalError::Io(e.to_string()))?;
        lock(&self.inner.spare).take();
        let log_dir = self.inner.path.join(wal::DIR);
        let segments = wal::segments(&log_dir).map_err(|e| JournalError::Io(e.to_string()))?;
        for (_, path) in segments {
            std::fs::remove_file(path).map_err(|e| JournalError::Io(e.to_string()))?;
        }
        File::open(&log_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::Io(e.to_string()))
    }

    fn check_failed(&self) -> Result<(), JournalError> {
        self.inner.check_healthy()?;
        if lock(&self.inner.pending).shutdown {
            return Err(JournalError::Failed("the journal is shut down".into()));
        }
        Ok(())
    }
}

/// Makes everything inserted into sled so far durable in sled's own files: its flush
/// (write and `sync_file_range`), then `fdatasync` of its data file.
fn checkpoint(db: &sled::Db, data_file: &File) -> Result<(), JournalError> {
    db.flush()?;
    data_file
        .sync_data()
        .map_err(|e| JournalError::Io(e.to_string()))
}

impl Inner {
    /// Adds one append's keys and values to the next group's frame; returns its ticket.
    fn add_to_frame<'a>(
        &self,
        entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> u64 {
        let mut frame = lock(&self.frame);
        if entries.len() > 0 {
            wal::push_record(&mut frame, entries);
        }
        self.appended.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The error that stopped the journal, if a flush or checkpoint failed.
    fn check_healthy(&self) -> Result<(), JournalError> {
        if self.has_failed.load(Ordering::SeqCst) {
            let why = lock(&self.failed).clone().unwrap_or_default();
            return Err(JournalError::Failed(why));
        }
        Ok(())
    }

    /// Stops the journal after a failed write: later appends and waits get the error.
    fn fail(&self, why: String) {
        let mut failed = lock(&self.failed);
        if failed.is_none() {
            tracing::error!(error = %why, "journal write failed; refusing further writes");
            *failed = Some(why);
        }
        self.has_failed.store(true, Ordering::SeqCst);
    }

    /// The checkpointer: prepares the committer's next segment, and checkpoints each one
    /// the committer closes ([`checkpoint`]), after which the closed segment's records are
    /// all in sled's durable files and its file becomes the next spare. The first spare is
    /// segment `first_spare`, made from `recycled` if opening found an old file to reuse.
    fn run_checkpointer(
        &self,
        log_dir: &Path,
        first_spare: u64,
        mut recycled: Option<PathBuf>,
        closed: &std::sync::mpsc::Receiver<wal::Segment>,
    ) {
        let mut generation = first_spare;
        loop {
            match wal::Segment::prepare(log_dir, generation, recycled.take(), self.preallocate) {
                Ok(segment) => *lock(&self.spare) = Some(segment),
                // The committer keeps writing to the segment it has, past its size.
                Err(e) => {
                    tracing::warn!(error = %e, generation, "next write-ahead log segment not prepared")
                }
            }
            // Ends when the committer does (shutdown).
            let Ok(full) = closed.recv() else { return };
            if let Err(e) = checkpoint(&self.db, &self.data_file) {
                self.fail(format!("checkpoint failed: {e}"));
                return;
            }
            recycled = Some(full.path().to_path_buf());
            // The committer writes to the one after `full`; the spare comes after that.
            generation = full.generation() + 2;
        }
    }

    /// The committer: waits for waiters, writes the frame once for all of them (moving to
    /// the next log segment when this one is full), tells them.
    ///
    /// The watermark (see [`watermark`]) is written after the answers, never more often
    /// than every [`WATERMARK_EVERY`]: while appends keep coming, and once more that long
    /// after they stop (or at once when the journal closes). Writing and renaming its file
    /// costs ext4 a data write-back, up to several milliseconds, all of it in front of the
    /// next group's flush. Written after every flush it was 6% of the server's CPU under
    /// `make load`; written whenever the committer found no waiter (which, between two
    /// groups of a busy service, is often) it was one flush in ten (measured with
    /// `perf trace -s`).
    fn run_committer(&self, mut log: wal::Segment, closed: std::sync::mpsc::Sender<wal::Segment>) {
        let mut spare_frame = Vec::new();
        let mut unwritten: Option<watermark::Tips> = None;
        let mut written = Instant::now();
        loop {
            let waiters = {
                let mut pending = lock(&self.pending);
                while pending.waiters.is_empty() && !pending.shutdown {
                    if unwritten.is_none() {
                        pending = self.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
                        continue;
                    }
                    let due = written + WATERMARK_EVERY;
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    pending = self
                        .wake
                        .wait_timeout(pending, due - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if pending.waiters.is_empty() {
                    // Due (or shutting down): the watermark catches up with the flushes.
                    let stopping = pending.shutdown;
                    drop(pending);
                    if let Some(tips) = unwritten.take() {
                        self.write_watermark(&tips);
                        written = Instant::now();
                    }
                    if stopping {
                        return;
                    }
                    continue;
                }
                std::mem::take(&mut pending.waiters)
            };
            // Read before the frame is taken: every record it names is in the frame or
            // an earlier one.
            let tips = {
                let mut t = lock(&self.appended_tips);
                let changed = std::mem::replace(&mut t.1, false);
                changed.then(|| t.0.clone())
            };
            // Every waiter registered after its append, so this covers all of them.
            let (mut frame, target) = {
                let mut frame = lock(&self.frame);
                let taken = std::mem::replace(&mut *frame, std::mem::take(&mut spare_frame));
                (taken, self.appended.load(Ordering::SeqCst))
            };
            if log.written() >= self.segment_bytes {
                if let Some(next) = lock(&self.spare).take() {
                    let full = std::mem::replace(&mut log, next);
                    // A checkpointer that has stopped has failed the journal already.
                    let _ = closed.send(full);
                }
            }
            let started = Instant::now();
            let result = self.check_healthy().and_then(|()| {
                log.write_frame(&mut frame, self.sync_groups)
                    .map_err(|e| JournalError::Io(e.to_string()))
            });
            frame.clear();
            spare_frame = frame;
            if let Some(observe) = &self.on_flush {
                observe(started.elapsed(), waiters.len());
            }
            match result {
                Ok(()) => {
                    self.durable.fetch_max(target, Ordering::SeqCst);
                    for w in waiters {
                        w(Ok(()));
                    }
                    // After the answers: a crash before this leaves the watermark behind,
                    // which only weakens the check.
                    if tips.is_some() {
                        unwritten = tips;
                    }
                    if unwritten.is_some() && written.elapsed() >= WATERMARK_EVERY {
                        if let Some(tips) = unwritten.take() {
                            self.write_watermark(&tips);
                            written = Instant::now();
                        }
                    }
                }
                Err(e) => {
                    self.fail(e.to_string());
                    for w in waiters {
                        w(Err(JournalError::Failed(e.to_string())));
                    }
                }
            }
        }
    }

    fn write_watermark(&self, tips: &watermark::Tips) {
        if let Err(e) = watermark::store(&self.path, tips) {
            tracing::warn!(error = %e, "journal watermark not written");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The committer holds an Arc<Inner>, so by now it has stopped; nothing to join.
        let _ = self.db.flush();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn index_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(INDEX_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key of record `sequence` of stream `name`.
pub fn record_key(name: &str, sequence: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name.as_bytes());
    k.push(SEPARATOR);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

fn split_key(key: &[u8]) -> Option<(String, u64)> {
    if key.len() < 10 || key[key.len() - 9] != SEPARATOR {
        return None;
    }
    let (name, rest) = key.split_at(key.len() - 9);
    let seq = u64::from_be_bytes(rest[1..].try_into().ok()?);
    Some((String::from_utf8(name.to_vec()).ok()?, seq))
}

fn check_record<E: DeserializeOwned>(
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

/// The key of the chunk of stream `name` whose first record is `first`.
fn chunk_key(name: &str, first: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 10);
    k.push(CHUNK_PREFIX);
    k.extend_from_slice(&record_key(name, first));
    k
}

/// Reads a chunk's header: how many records it holds. At least one, or it is damaged.
fn chunk_len(name: &str, first: u64, chunk: &[u8]) -> Result<u64, JournalError> {
    match chunk {
        [CHUNK_FORMAT, a, b, c, d, ..] if u32::from_le_bytes([*a, *b, *c, *d]) > 0 => {
            Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d])))
        }
        _ => Err(JournalError::Corrupt {
            stream: name.to_string(),
            sequence: first,
            what: "a chunk of records with a damaged header".into(),
        }),
    }
}

/// The chunk of stream `name` that holds record `sequence`, with its first sequence.
fn chunk_at(
    tree: &sled::Tree,
    name: &str,
    sequence: u64,
) -> Result<Option<(u64, sled::IVec)>, JournalError> {
    let Some((key, chunk)) = tree
        .range(chunk_key(name, 0)..=chunk_key(name, sequence))
        .next_back()
        .transpose()?
    else {
        return Ok(None);
    };
    let Some((_, first)) = split_key(&key[1..]) else {
        return Err(JournalError::Corrupt {
            stream: name.to_string(),
            sequence,
            what: "a malformed chunk key".into(),
        });
    };
    let len = chunk_len(name, first, &chunk)?;
    Ok((sequence < first.saturating_add(len)).then_some((first, chunk)))
}

/// The records of a chunk, in order. A record cut short, or bytes left over, is damage
/// at that record's sequence.
fn chunk_records<'a>(
    name: &'a str,
    first: u64,
    chunk: &'a [u8],
) -> impl Iterator<Item = Result<&'a [u8], JournalError>> + 'a {
    let header = chunk_len(name, first, chunk);
    let mut rest = chunk.get(5..).unwrap_or_default();
    let mut sequence = first;
    let mut left = header.as_ref().map_or(0, |n| *n);
    let mut error = header.err();
    std::iter::from_fn(move || {
        if let Some(e) = error.take() {
            left = 0;
            return Some(Err(e));
        }
        let damaged = |what: &str| {
            Some(Err(JournalError::Corrupt {
                stream: name.to_string(),
                sequence,
                what: what.into(),
            }))
        };
        if left == 0 {
            if !rest.is_empty() {
                rest = &[];
                return damaged("a chunk of records has bytes after its last record");
            }
            return None;
        }
        left -= 1;
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            left = 0;
            return damaged("a chunk of records is cut short");
        };
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            left = 0;
            return damaged("a chunk of records is cut short");
        }
        let (record, tail) = tail.split_at(len);
        rest = tail;
        sequence += 1;
        Some(Ok(record))
    })
}

/// Packs full chunks of `name`'s oldest loose records, keeping [`CHUNK_RECORDS`] loose.
fn compact_stream(tree: &sled::Tree, name: &str) -> Result<u64, JournalError> {
    let mut packed_upto = match tree
        .range(chunk_key(name, 0)..=chunk_key(name, u64::MAX))
        .next_back()
        .transpose()?
    {
        Some((key, chunk)) => match split_key(&key[1..]) {
            Some((_, first)) => first + chunk_len(name, first, &chunk)? - 1,
            None => return Ok(0),
        },
        None => 0,
    };
    let last = match tree
        .range(record_key(name, 0)..=record_key(name, u64::MAX))
        .next_back()
        .transpose()?
    {
        Some((key, _)) => split_key(&key).map_or(0, |(_, s)| s),
        None => return Ok(0),
    };
    let mut moved = 0;
    while last.saturating_sub(packed_upto) >= 2 * CHUNK_RECORDS {
        let first = packed_upto + 1;
        let mut chunk = Vec::with_capacity(64 * CHUNK_RECORDS as usize);
        chunk.push(CHUNK_FORMAT);
        chunk.extend_from_slice(&(CHUNK_RECORDS as u32).to_le_bytes());
        let mut batch = sled::Batch::default();
        let mut expected = first;
        for item in tree.range(record_key(name, first)..record_key(name, first + CHUNK_RECORDS)) {
            let (key, record) = item?;
            let sound = split_key(&key).map(|(_, s)| s) == Some(expected)
                && record.len() >= envelope::HASH_LEN
                && {
                    let (body, trailer) = record.split_at(record.len() - envelope::HASH_LEN);
                    Sha256::digest(body)[..] == trailer[..]
                };
            if !sound {
                return Ok(moved); // leave damage where verify will name it
            }
            chunk.extend_from_slice(&(record.len() as u32).to_le_bytes());
            chunk.extend_from_slice(&record);
            batch.remove(key);
            expected += 1;
        }
        if expected != first + CHUNK_RECORDS {
            return Ok(moved); // records missing: leave them for verify
        }
        batch.insert(chunk_key(name, first), chunk);
        tree.apply_batch(batch)?;
        packed_upto += CHUNK_RECORDS;
        moved += CHUNK_RECORDS;
    }
    Ok(moved)
}

/// The compactor thread: compacts each stream it is sent, until the journal shuts down.
fn run_compactor(tree: &sled::Tree, streams: &std::sync::mpsc::Receiver<String>) {
    while let Ok(name) = streams.recv() {
        if let Err(e) = compact_stream(tree, &name) {
            tracing::warn!(stream = %name, error = %e, "journal compaction stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ProductEvent;
    use std::sync::atomic::AtomicUsize;

    fn open(dir: &Path, on_flush: Option<FlushObserver>) -> Journal {
        Journal::open(
            dir,
            JournalConfig {
                on_flush,
                ..JournalConfig::default()
            },
        )
        .expect("open")
    }

    fn enrol(user: &str) -> ProductEvent {
        ProductEvent::MemberEnrolled { user: user.into() }
    }

    fn stream() -> StreamId {
        StreamId::product("jira").expect("valid id")
    }

    #[test]
    fn appends_replay_in_order_and_continue_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tip = StreamTip::default();
        {
            let j = open(dir.path(), None);
            j.append(
                &stream(),
                &mut tip,
                Uuid::nil(),
                Timestamp(1),
                &[enrol("a"), enrol("b")],
            )
            .expect("append");
            j.shutdown().expect("shutdown");
        }
        let j = open(dir.path(), None);
        let mut seen = Vec::new();
        let mut reread = j
            .replay::<ProductEvent>(&stream(), |e| seen.push((e.sequence, e.event)))
            .expect("replay");
        assert_eq!(reread, tip);
        assert_eq!(seen, vec![(1, enrol("a")), (2, enrol("b"))]);
        j.append(
            &stream(),
            &mut reread,
            Uuid::nil(),
            Timestamp(2),
            &[enrol("c")],
        )
        .expect("append");
        j.sync().expect("sync");
        assert_eq!(j.streams().expect("streams"), vec![stream()]);
        assert_eq!(j.verify().expect("verify")[0].records, 3);
    }

    /// The watermark is written at most every [`WATERMARK_EVERY`], but it still catches
    /// up once appends pause, and it is complete when the journal closes.
    #[test]
    fn the_watermark_catches_up_when_appends_pause_and_at_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let named = |dir: &Path| {
            watermark::load(dir)
                .expect("readable")
                .and_then(|t| t.get(&stream().name()).copied())
        };
        let mut tip = StreamTip::default();
        let j = open(dir.path(), None);
        let burst = |j: &Journal, tip: &mut StreamTip, n: usize| {
            for i in 0..n {
                let ticket = j
                    .append(
                        &stream(),
                        tip,
                        Uuid::nil(),
                        Timestamp(1),
                        &[enrol(&format!("u{i}"))],
                    )
                    .expect("append");
                j.when_durable(ticket, Box::new(|r| r.expect("durable")));
            }
            j.sync().expect("sync");
        };
        burst(&j, &mut tip, 500);
        // A pause: the committer writes what it held back (poll, no timing assumption
        // beyond "eventually").
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while named(dir.path()) != Some(500) {
            assert!(
                Instant::now() < deadline,
                "watermark stuck at {:?}",
                named(dir.path())
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        burst(&j, &mut tip, 300);
        j.shutdown().expect("shutdown");
        assert_eq!(named(dir.path()), Some(800));
    }

    /// A torn `conf` is damage, named as such, not the "unsupported version" sled would
    /// otherwise make of it.
    #[test]
    fn a_torn_sled_settings_file_is_reported_as_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = open(dir.path(), None);
        j.shutdown().expect("shutdown");
        drop(j);
        let conf = dir.path().join("conf");
        let intact = std::fs::read(&conf).expect("sled wrote its conf");
        let mut flipped = intact.clone();
        flipped[2] ^= 0x20;
        for damaged in [intact[..intact.len() - 2].to_vec(), flipped] {
            std::fs::write(&conf, &damaged).expect("write");
            match Journal::open(dir.path(), JournalConfig::default()) {
                Err(JournalError::Damaged { message, .. }) => {
                    assert!(message.contains("checksum"), "{message}")
                }
                Err(other) => panic!("not reported as damage: {other}"),
                Ok(_) => panic!("opened a journal with a torn conf"),
            }
        }
        std::fs::write(&conf, &intact).expect("write");
        let j = Journal::open(dir.path(), JournalConfig::default()).expect("intact again");
        j.shutdown().expect("shutdown");
    }

    #[test]
    fn a_flipped_byte_or_a_missing_record_is_found_with_stream_and_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = open(dir.path(), None);
        let mut tip = StreamTip::default();
        let events: Vec<_> = (0..5).map(|i| enrol(&format!("u{i}"))).collect();
        j.append(&stream(), &mut tip, Uuid::nil(), Timestamp(1), &events)
            .expect("append");
        let key = record_key("product/jira", 3);
        let original = j.inner.tree.get(&key).expect("get").expect("present");
        let mut flipped = original.to_vec();
        flipped[4] ^= 0x40;
        j.inner.tree.insert(&key, flipped).expect("insert");
        let err = j.verify().expect_err("damage must be found");
        assert!(
            matches!(&err, JournalError::Corrupt { stream, sequence: 3, .. } if stream == "product/jira"),
            "{err}"
        );
        let err = j
            .replay::<ProductEvent>(&stream(), |_| {})
            .expect_err("replay refuses");
        assert!(matches!(err, JournalError::Corrupt { sequence: 3, .. }));

        j.inner.tree.insert(&key, original).expect("restore");
        assert!(j.verify().is_ok());
        j.inner.tree.remove(&key).expect("remove");
        let err = j.verify().expect_err("a gap must be found");
        assert!(err.to_string().contains("records are missing"), "{err}");
    }

    fn open_fast(dir: &Path) -> Journal {
        Journal::open(
            dir,
            JournalConfig {
                durability: Durability::Process,
                ..JournalConfig::default()
            },
        )
        .expect("open")
    }

    /// Appends `n` single-event records to `stream()`, as the product actor does.
    fn fill(j: &Journal, tip: &mut StreamTip, n: u64) {
        for i in 0..n {
            let user = format!("u{}", tip.next_sequence);
            j.append(
                &stream(),
                tip,
                Uuid::nil(),
                Timestamp(i as i64),
                &[enrol(&user)],
            )
            .expect("append");
        }
    }

    fn replayed(j: &Journal, from: StreamTip) -> Vec<(u64, ProductEvent)> {
        let mut seen = Vec::new();
        j.replay_from::<ProductEvent>(&stream(), from, |e| {
            seen.push((e.sequence, e.event));
            true
        })
        .expect("replay");
        seen
    }

    /// Copies a data directory as a crash would leave it: what its files hold, not what
    /// the process keeps in memory (sled writes its buffers only when asked or full).
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }

    /// Records in sled's own files, read without the journal (and so without its log).
    fn records_in_sled_files(dir: &Path) -> usize {
        let db = open_sled(dir, 1 << 20).expect("sled opens");
        let tree = db.open_tree("journal").expect("tree");
        let mut prefix = stream().name().into_bytes();
        prefix.push(SEPARATOR);
        tree.scan_prefix(prefix).count()
    }

    /// Waits until the checkpointer has prepared the next segment: no checkpoint is under
    /// way, so a copy of the directory is a state a crash could leave.
    fn until_quiet(j: &Journal) {
        while lock(&j.inner.spare).is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn durable_appends_survive_a_crash_through_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = open(dir.path(), None);
        let mut tip = StreamTip::default();
        j.append(
            &stream(),
            &mut tip,
            Uuid::nil(),
            Timestamp(0),
            &[enrol("a"), enrol("b")],
        )
        .expect("append");
        fill(&j, &mut tip, 200);
        j.sync().expect("sync");
        until_quiet(&j);
        let crashed = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), crashed.path());
        // The point of the test: sled's files alone do not have them.
        assert!(records_in_sled_files(crashed.path()) < 202);
        // A crash within WATERMARK_EVERY of the last flush leaves no watermark (or an old
        // one): the log's replay brings it up to date.
        let _ = std::fs::remove_file(crashed.path().join(watermark::FILE));

        let k = open(crashed.path(), None);
        let tips = watermark::load(crashed.path()).expect("readable");
        assert_eq!(tips.and_then(|t| t.get("product/jira").copied()), Some(202));
        let seen = replayed(&k, StreamTip::default());
        assert_eq!(seen.len(), 202);
        assert_eq!(seen[..2], [(1, enrol("a")), (2, enrol("b"))]);
        assert_eq!(seen[201], (202, enrol("u202")));
        assert_eq!(k.streams().expect("streams"), vec![stream()]);
        assert_eq!(k.verify().expect("verify")[0].records, 202);
        // Opening made sled durable and started a new log: closing removes it.
        k.shutdown().expect("shutdown");
        drop(k);
        assert_eq!(records_in_sled_files(crashed.path()), 202);
        assert!(wal::segments(&crashed.path().join(wal::DIR))
            .expect("list")
            .is_empty());
        j.shutdown().expect("shutdown");
    }

    /// The log's segment files: generation and contents.
    fn segment_files(log_dir: &Path) -> Vec<(u64, Vec<u8>)> {
        wal::segments(log_dir)
            .expect("list")
            .into_iter()
            .map(|(generation, path)| (generation, std::fs::read(path).expect("read")))
            .collect()
    }

    #[test]
    fn synced_segments_are_zero_filled_and_a_crash_leaves_files_the_next_open_reuses() {
        const SEGMENT: u64 = 64 * 1024;
        let config = JournalConfig {
            log_segment_bytes: SEGMENT,
            ..JournalConfig::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path(), config.clone()).expect("open");
        until_quiet(&j);
        let log_dir = dir.path().join(wal::DIR);
        // The log and the spare, both written with zeros to the segment's size.
        let files = segment_files(&log_dir);
        assert_eq!(files.len(), 2);
        for (_, bytes) in &files {
            assert_eq!(bytes.len() as u64, SEGMENT);
            assert!(bytes.iter().all(|&b| b == 0));
        }
        let mut tip = StreamTip::default();
        fill(&j, &mut tip, 100);
        j.sync().expect("sync");
        until_quiet(&j);
        let crashed = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), crashed.path());
        let crashed_log = crashed.path().join(wal::DIR);
        let before = segment_files(&crashed_log);

        let k = Journal::open(crashed.path(), config).expect("reopen");
        until_quiet(&k);
        assert_eq!(k.verify().expect("verify")[0].records, 100);
        // Nothing written since: the new log and spare are the old files, renamed.
        let after = segment_files(&crashed_log);
        let newest_before = before.iter().map(|(g, _)| *g).max().expect("segments");
        assert!(after.iter().all(|(g, _)| *g > newest_before));
        let contents = |files: Vec<(u64, Vec<u8>)>| {
            let mut c: Vec<Vec<u8>> = files.into_iter().map(|(_, bytes)| bytes).collect();
            c.sort();
            c
        };
        let old_contents = contents(before);
        assert!(old_contents.iter().any(|c| c.iter().any(|&b| b != 0)));
        assert!(
            contents(after) == old_contents,
            "the old segments were not reused"
        );
        k.shutdown().expect("shutdown");
        j.shutdown().expect("shutdown");

        // A log that is never synced gains nothing from allocated blocks.
        let unsynced = tempfile::tempdir().expect("tempdir");
        let p = open_fast(unsynced.path());
        until_quiet(&p);
        let files = segment_files(&unsynced.path().join(wal::DIR));
        assert!(files.iter().all(|(_, bytes)| bytes.is_empty()));
        p.shutdown().expect("shutdown");
    }

    #[test]
    fn full_segments_are_checkpointed_and_recycled_without_losing_a_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(
            dir.path(),
            JournalConfig {
                log_segment_bytes: 4096,
                ..JournalConfig::default()
            },
        )
        .expect("open");
        let log_dir = dir.path().join(wal::DIR);
        let mut tip = StreamTip::default();
        let mut most_files = 0;
        for _ in 0..60 {
            // A committer that finds no spare keeps writing to its segment: waiting for
            // the checkpointer keeps the count of segments below independent of timing.
            until_quiet(&j);
            fill(&j, &mut tip, 20);
            j.sync().expect("sync");
            most_files = most_files.max(wal::segments(&log_dir).expect("list").len());
        }
        until_quiet(&j);
        let segments = wal::segments(&log_dir).expect("list");
        // Written: about 1,200 records of ~150 bytes, in 4 KiB segments.
        assert!(segments.last().expect("a segment").0 > 20, "{segments:?}");
        assert!(
            most_files <= 3,
            "segments are recycled: {most_files} at once"
        );
        let crashed = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), crashed.path());
        let k = open(crashed.path(), None);
        assert_eq!(k.verify().expect("verify")[0].records, 1200);
        j.shutdown().expect("shutdown");
        assert!(wal::segments(&log_dir).expect("list").is_empty());
    }

    #[test]
    fn a_log_that_skips_records_sled_lacks_is_damage_named_by_stream_and_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().join(wal::DIR);
        std::fs::create_dir_all(&log_dir).expect("mkdir");
        let mut segment = wal::Segment::prepare(&log_dir, 1, None, 0).expect("segment");
        let key = record_key(&stream().name(), 3);
        let mut frame = Vec::new();
        wal::push_record(&mut frame, std::iter::once((&key[..], &b"a record"[..])));
        segment.write_frame(&mut frame, true).expect("write");
        drop(segment);
        match Journal::open(dir.path(), JournalConfig::default()).err() {
            Some(JournalError::Damaged { message, .. }) => {
                assert!(
                    message.contains("stream product/jira is missing sequence 1"),
                    "{message}"
                );
            }
            other => panic!("a gap must be damage, got {other:?}"),
        }
        // Nothing was removed: the log is still there for an operator.
        assert_eq!(wal::segments(&log_dir).expect("list").len(), 1);
    }

    #[test]
    fn compaction_moves_old_records_into_chunks_without_changing_what_replay_sees() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = open_fast(dir.path());
        let mut tip = StreamTip::default();
        fill(&j, &mut tip, 5_000);
        // Ask the background compactor, as the nightly job does, and let it finish.
        j.compact_in_background(&stream());
        lock(&j.inner.compact_tx).take();
        if let Some(handle) = lock(&j.inner.compactor).take() {
            handle.join().expect("compactor");
        }
        // 5,000 records: the compactor packed 1..=3072 and left the newest 1,928 loose.
        assert_eq!(
            j.inner
                .tree
                .get(record_key("product/jira", 1))
                .expect("get"),
            None
        );
        let before: Vec<_> = (1..=5_000u64).collect();
        let hashes: Vec<_> = [1u64, 1_000, 1_024, 1_025, 3_072, 3_073, 5_000]
            .iter()
            .map(|s| {
                j.record_hash(&stream(), *s)
                    .expect("hash")
                    .expect("present")
            })
            .collect();
        // Explicit compaction takes what is left beyond the loose tail: nothing here.
        assert_eq!(j.compact(&stream()).expect("compact"), 0);
        let seen = replayed(&j, StreamTip::default());
        assert_eq!(seen.iter().map(|(s, _)| *s).collect::<Vec<_>>(), before);
        assert_eq!(seen[4_999].1, enrol("u5000"));
        let mut raw = Vec::new();
        j.raw_records(&stream(), |sequence, record| {
            raw.push((
                sequence,
                record[record.len() - envelope::HASH_LEN..].to_vec(),
            ));
            true
        })
        .expect("raw records");
        assert_eq!(raw.iter().map(|(s, _)| *s).collect::<Vec<_>>(), before);
        assert_eq!(raw[1_023].1, hashes[2].to_vec(), "record 1024 as stored");
        assert_eq!(j.verify().expect("verify")[0].records, 5_000);

        // Replay from the middle of a chunk continues the chain exactly there.
        let mut mid = StreamTip::default();
        j.replay_from::<ProductEvent>(&stream(), StreamTip::default(), |e| {
            mid = StreamTip {
                next_sequence: e.sequence + 1,
                last_hash: [0; 32],
            };
            e.sequence < 1_500
        })
        .expect("partial");
        mid.last_hash = j
            .record_hash(&stream(), 1_500)
            .expect("hash")
            .expect("present");
        let tail = replayed(&j, mid);
        assert_eq!(tail.first().map(|(s, _)| *s), Some(1_501));
        assert_eq!(tail.len(), 3_500);

        // Hashes do not depend on where a record lives; more appends continue the chain.
        assert_eq!(j.record_hash(&stream(), 5_001).expect("hash"), None);
        fill(&j, &mut tip, 10);
        let again: Vec<_> = [1u64, 1_000, 1_024, 1_025, 3_072, 3_073, 5_000]
            .iter()
            .map(|s| {
                j.record_hash(&stream(), *s)
                    .expect("hash")
                    .expect("present")
            })
            .collect();
        assert_eq!(hashes, again);
        j.shutdown().expect("shutdown");
        drop(j);
        let j = open_fast(dir.path());
        assert_eq!(j.verify().expect("verify")[0].records, 5_010);
    }

    #[test]
    fn damage_inside_a_chunk_is_named_by_stream_and_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = open_fast(dir.path());
        let mut tip = StreamTip::default();
        fill(&j, &mut tip, 2_100);
        j.compact(&stream()).expect("compact");
        let key = chunk_key("product/jira", 1);
        let chunk = j.inner.tree.get(&key).expect("get").expect("a chunk");
        // Flip a byte inside record 3: header (5) + two length-prefixed records + 4 + 2.
        let mut offset = 5;
        for _ in 0..2 {
            let len = u32::from_le_bytes(chunk[offset..offset + 4].try_into().expect("4"));
            offset += 4 + len as usize;
        }
        let mut damaged = chunk.to_vec();
        damaged[offset + 6] ^= 0x10;
        j.inner.tree.insert(&key, damaged).expect("insert");
        let err = j.verify().expect_err("damage must be found");
        assert!(
            matches!(&err, JournalError::Corrupt { stream, sequence: 3, .. } if stream == "product/jira"),
            "{err}"
        );
        // A chunk cut short names the first record it lost.
        j.inner
            .tree
            .insert(&key, &chunk[..offset + 2])
            .expect("insert");
        let err = j.verify().expect_err("a torn chunk must be found");
        assert!(
            matches!(&err, JournalError::Corrupt { sequence: 3, what, .. } if what.contains("cut short")),
            "{err}"
        );
        // A missing chunk is a gap like any other.
        j.inner.tree.remove(&key).expect("remove");
        let err = j.verify().expect_err("a gap must be found");
        assert!(err.to_string().contains("records are missing"), "{err}");
        // Compaction never packs damage away: a bad loose record stops it there.
        let bad = record_key("product/jira", 1_030);
        let mut bytes = j
            .inner
            .tree
            .get(&bad)
            .expect("get")
            .expect("present")
            .to_vec();
        bytes[3] ^= 0x01;
        j.inner.tree.insert(&bad, bytes).expect("insert");
        assert_eq!(
            compact_stream(&j.inner.tree, "product/jira").expect("compact"),
            0
        );
        assert!(j.inner.tree.get(&bad).expect("get").is_some());
    }

    #[test]
    fn a_reader_sees_every_record_once_while_the_compactor_moves_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = open_fast(dir.path());
        let mut tip = StreamTip::default();
        fill(&j, &mut tip, 2_047);
        let writer = {
            let j = j.clone();
            std::thread::spawn(move || {
                for _ in 0..6 {
                    fill(&j, &mut tip, 1_000);
                    j.compact_in_background(&stream());
                }
            })
        };
        let mut rounds = 0;
        while !writer.is_finished() || rounds == 0 {
            let seen = replayed(&j, StreamTip::default());
            let in_order = seen
                .iter()
                .enumerate()
                .all(|(i, (s, _))| *s == i as u64 + 1);
            assert!(in_order, "a record was skipped or seen twice");
            assert!(seen.len() >= 2_047);
            rounds += 1;
        }
        writer.join().expect("writer");
        assert_eq!(replayed(&j, StreamTip::default()).len(), 8_047);
        j.verify().expect("verify");
    }

    #[test]
    fn concurrent_appends_share_flushes_and_all_become_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flushes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&flushes);
        let j = open(
            dir.path(),
            Some(Arc::new(move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
        );
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let j = j.clone();
                std::thread::spawn(move || {
                    let s = StreamId::product(&format!("p{t}")).expect("valid");
                    let mut tip = StreamTip::default();
                    for i in 0..50 {
                        let ticket = j
                            .append(&s, &mut tip, Uuid::nil(), Timestamp(i), &[enrol("x")])
                            .expect("append");
                        let (tx, rx) = std::sync::mpsc::channel();
                        j.when_durable(ticket, Box::new(move |r| tx.send(r).expect("send")));
                        rx.recv().expect("told").expect("durable");
                        assert!(j.durable_ticket() >= ticket);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(j.latest_ticket(), 400);
        let n = flushes.load(Ordering::SeqCst);
        assert!(n < 400, "expected shared flushes, got {n} for 400 appends");
        assert_eq!(j.verify().expect("verify").len(), 8);
    }
}
