//! [`StateMachine`]: applying committed entries means writing their records into this
//! node's copy of the journal; a snapshot is an export of that copy, taken while the
//! applies go on ([`Built`]) and kept in a file, never whole in memory (a large site's
//! copy is hundreds of megabytes).
//!
//! The copy is the node's data directory, laid out as a single node's, so an existing
//! single-node folder can become a cluster's first member and every tool (`verify`,
//! `audit`, `backup`) reads a member's copy as it reads a single node's. What the copy has
//! applied is recorded in its own stream `raft/applied`, written after the records of
//! each applied batch: the copy's write-ahead log keeps writes in order, so after a crash
//! a surviving marker vouches for every record before it, and an entry applied again
//! writes only the records that did not survive ([`Journal::apply_replicated`]).

use crate::codec::{decode, encode};
use crate::proposal::Outcome;
use crate::types::{NodeId, TypeConfig};
use crate::write_back::WriteBack;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use slotpool_events::{ReplicationRecord, StreamId, Timestamp};
use slotpool_journal::{AppliedWrite, Journal, JournalConfig, StreamTip};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

type Membership = StoredMembership<NodeId, crate::Member>;
type Meta = SnapshotMeta<NodeId, crate::Member>;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// Markers kept in `raft/applied` before the older ones are purged.
const MARKERS_KEPT: u64 = 1024;

fn applied_stream() -> StreamId {
    StreamId::Raft("applied".into())
}

fn sm_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn snap_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

/// The copy of the journal the state machine writes, shared with the binary: the node
/// serves from it while it leads. Replaced (under the lock) when a snapshot is installed.
#[derive(Clone)]
pub struct SharedJournal(Arc<Mutex<Option<Journal>>>);

impl SharedJournal {
    fn lock(&self) -> MutexGuard<'_, Option<Journal>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current copy (`None` only while a snapshot is being installed).
    pub fn get(&self) -> Option<Journal> {
        self.lock().clone()
    }
}

/// Applies committed entries to this node's journal copy.
pub struct StateMachine {
    dir: PathBuf,
    config: JournalConfig,
    journal: SharedJournal,
    applied: Option<LogId<NodeId>>,
    membership: Membership,
    marker: StreamTip,
    markers_since_purge: u64,
    kept: Kept,
    /// Held while a snapshot of the copy is being exported: the copy's markers are not
    /// purged then (the export must not find the head of `raft/applied` gone under it),
    /// and a snapshot from the leader is not installed in place of the copy until it ends.
    exporting: Arc<Mutex<()>>,
    /// Committed writes refused since this process started ([`Outcome::refused`]).
    refused: Arc<AtomicU64>,
}

/// What `raft/applied` records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Applied {
    last: Option<LogId<NodeId>>,
    membership: Membership,
}

/// A snapshot's files in a node's `raft/` folder.
struct SnapshotFiles {
    /// What the kept snapshot covers (its [`SnapshotMeta`]).
    meta: PathBuf,
    /// The kept snapshot's export (`slotpool-backup 1`).
    data: PathBuf,
    /// An export of this node's copy being written.
    building: PathBuf,
    /// A snapshot being received from the leader.
    incoming: PathBuf,
}

fn snapshot_files(dir: &Path) -> SnapshotFiles {
    let raft = dir.join("raft");
    SnapshotFiles {
        meta: raft.join("snapshot.meta"),
        data: raft.join("snapshot.data"),
        building: raft.join("snapshot.building"),
        incoming: raft.join("snapshot.incoming"),
    }
}

impl StateMachine {
    /// The state machine over the journal copy `journal` (open on `dir` with `config`,
    /// so that a snapshot can replace it).
    pub fn open(
        dir: &Path,
        config: JournalConfig,
        journal: Journal,
    ) -> std::result::Result<Self, String> {
        let mut found: Option<Applied> = None;
        let mut bad = None;
        let marker = journal
            .replay::<ReplicationRecord>(&applied_stream(), |env| {
                match decode::<Applied>(&env.event.0) {
                    Ok(a) => found = Some(a),
                    Err(e) => bad = Some(format!("raft/applied record {}: {e}", env.sequence)),
                }
            })
            .map_err(|e| e.to_string())?;
        if let Some(e) = bad {
            return Err(e);
        }
        let (applied, membership) = match found {
            Some(a) => (a.last, a.membership),
            None => (None, Membership::default()),
        };
        let files = snapshot_files(dir);
        // What a build or a reception left unfinished (a crash, or a snapshot the leader
        // sent again after this node had installed it): no use once the process restarts.
        for left in [&files.building, &files.incoming] {
            if std::fs::remove_file(left).is_ok() {
                tracing::info!(file = %left.display(), "removed an unfinished snapshot file");
            }
        }
        let current = match (std::fs::read(&files.meta), files.data.is_file()) {
            (Ok(meta), true) => match decode::<Meta>(&meta) {
                Ok(meta) => Some(meta),
                Err(e) => {
                    tracing::warn!(file = %files.meta.display(), error = %e, "unreadable snapshot metadata ignored; a new snapshot will be built");
                    None
                }
            },
            _ => None,
        };
        let behind = current
            .as_ref()
            .filter(|kept| kept.last_log_id > applied)
            .cloned();
        let mut sm = StateMachine {
            dir: dir.to_path_buf(),
            config,
            journal: SharedJournal(Arc::new(Mutex::new(Some(journal)))),
            applied,
            membership,
            marker,
            markers_since_purge: 0,
            kept: Kept {
                dir: dir.to_path_buf(),
                up_to: Arc::new(tokio::sync::watch::Sender::new(KeptUpTo {
                    last: current.as_ref().and_then(|m| m.last_log_id),
                    failed_installs: 0,
                })),
                latest: Arc::new(Mutex::new(current)),
            },
            exporting: Arc::default(),
            refused: Arc::default(),
        };
        if let Some(kept) = behind {
            // The copy is behind the snapshot this node keeps: an install cut off after
            // the snapshot was kept (the leader's log before it may be purged already,
            // so the copy could never catch up from the log), or a crash that took the
            // copy's last applies after a snapshot of them was built. Made again from it.
            tracing::warn!(copy_applied = ?sm.applied, snapshot = ?kept.last_log_id, "this node's copy is behind the snapshot it keeps: making the copy again from the snapshot");
            sm.remake_from_kept(&kept).map_err(|e| e.to_string())?;
        }
        Ok(sm)
    }

    /// The journal copy, for the binary to serve from while this node leads.
    /// How far the kept snapshot goes, as it changes ([`KeptUpTo`]).
    pub fn kept_up_to(&self) -> tokio::sync::watch::Receiver<KeptUpTo> {
        self.kept.up_to.subscribe()
    }

    pub fn shared_journal(&self) -> SharedJournal {
        self.journal.clone()
    }

    /// How many committed writes this state machine has refused, shared: the node's
    /// status and `slotpool_raft_refused_writes_total` report it. Any is a defect (a
    /// leader served from a state the cluster had moved past), worth an alert.
    pub fn refusals(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.refused)
    }

    fn copy(&self) -> Result<Journal> {
        self.journal
            .get()
            .ok_or_else(|| sm_err("the journal copy is being replaced"))
    }

    /// Installs a snapshot received from the leader ([`RaftStateMachine::install_snapshot`]).
    async fn install(&mut self, meta: &Meta, snapshot: Box<File>) -> Result<()> {
        let mut received = *snapshot;
        received.flush().await.map_err(snap_err)?;
        let incoming = snapshot_files(&self.dir).incoming;
        // Received into `snapshot.incoming` (begin_receiving_snapshot), or handed over as
        // another file (a snapshot of another store): copied there first.
        let theirs = received.metadata().await.map_err(snap_err)?;
        let ours = tokio::fs::metadata(&incoming).await.ok();
        if !ours.is_some_and(|ours| same_file(&theirs, &ours)) {
            let copy = tokio::task::block_in_place(|| create_file(&incoming)).map_err(snap_err)?;
            let mut copy = File::from_std(copy);
            received
                .seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(snap_err)?;
            tokio::io::copy(&mut received, &mut copy)
                .await
                .map_err(snap_err)?;
            received = copy;
        }
        received.sync_all().await.map_err(snap_err)?;
        drop(received);
        tracing::info!(snapshot = %meta.snapshot_id, bytes = theirs.len(), "installing a snapshot from the leader in place of this node's copy");
        // A build of the old copy still exporting finishes first: the copy is not
        // removed under it, and its snapshot is kept before this one.
        let exporting = Arc::clone(&self.exporting);
        let _export_done =
            tokio::task::block_in_place(|| exporting.lock().unwrap_or_else(|p| p.into_inner()));
        // Kept first, then installed: a process stopped during the install finds, when it
        // starts again, a copy behind the snapshot it keeps, and makes the copy again from
        // it (`StateMachine::open`, `finish_interrupted_install`). openraft purges the log
        // up to this snapshot as it hands it over, so nothing else could bring it back.
        if !tokio::task::block_in_place(|| self.kept.keep(meta, &incoming))? {
            // A newer snapshot is kept (never sent to a node that needs this one): this
            // node's copy covers it already.
            return Ok(());
        }
        tokio::task::block_in_place(|| self.remake_from_kept(meta))
    }

    /// Replaces this node's copy with the kept snapshot's export, which covers `meta`:
    /// the old copy is shut down and removed, the export imported (refused whole if any
    /// record of it is damaged) and the copy marked applied up to `meta`.
    fn remake_from_kept(&mut self, meta: &Meta) -> Result<()> {
        let mut slot = self.journal.lock();
        if let Some(old) = slot.take() {
            old.shutdown().map_err(snap_err)?;
            drop(old);
        }
        let data = snapshot_files(&self.dir).data;
        let journal = remake_copy(&self.dir, &self.config, &data).map_err(snap_err)?;
        *slot = Some(journal.clone());
        drop(slot);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.marker = journal
            .replay::<ReplicationRecord>(&applied_stream(), |_| {})
            .map_err(sm_err)?;
        self.write_marker(&journal)
    }

    /// Records what the copy has applied, after the records themselves.
    fn write_marker(&mut self, journal: &Journal) -> Result<()> {
        let bytes = encode(&Applied {
            last: self.applied,
            membership: self.membership.clone(),
        })
        .map_err(sm_err)?;
        let (records, next) = self.marker.chain(
            Uuid::nil(),
            Timestamp::from_millis(0),
            &[ReplicationRecord(bytes)],
        );
        journal
            .apply_replicated(&applied_stream(), self.marker.next_sequence, records)
            .map_err(sm_err)
            .and_then(|applied| match applied {
                AppliedWrite::Written(_) => Ok(()),
                AppliedWrite::Refused(why) => Err(sm_err(why)),
            })?;
        self.marker = next;
        self.markers_since_purge += 1;
        if self.markers_since_purge >= MARKERS_KEPT {
            // Not while an export runs: the purge comes with a later marker.
            let _no_export = match self.exporting.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return Ok(()),
            };
            self.markers_since_purge = 0;
            let upto = self.marker.next_sequence - 2;
            if upto > 0 {
                journal
                    .purge_upto(&applied_stream(), upto)
                    .map_err(sm_err)?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = create_file(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The latest snapshot this node holds, `raft/snapshot.{meta,data}`: what a lagging
/// follower is sent. Shared between the state machine (which installs snapshots from the
/// leader) and the builders it hands out (which export its own copy in the background);
/// the lock also keeps the two from replacing the files at once.
#[derive(Clone)]
struct Kept {
    dir: PathBuf,
    latest: Arc<Mutex<Option<Meta>>>,
    /// What is kept, told to the log store, which purges no further (see [`KeptUpTo`]).
    up_to: Arc<tokio::sync::watch::Sender<KeptUpTo>>,
}

/// How far the snapshot this node keeps goes, and how many installs failed: what the
/// log store waits for before it makes a purge durable ([`crate::LogStore::gate_purges_on`]).
///
/// Why: openraft purges the log up to a snapshot it installs at once, while the install
/// (the sync of a large file, an export it waits for) still runs. Had the purge become
/// durable first, a process stopped then found its copy behind a log purged past it, and
/// no snapshot to make the copy from: the core failed at its first apply, for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeptUpTo {
    /// The last entry the kept snapshot covers.
    pub last: Option<LogId<NodeId>>,
    /// Installs that failed since the node started.
    pub failed_installs: u64,
}

impl Kept {
    fn lock(&self) -> MutexGuard<'_, Option<Meta>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The snapshot kept now, if any, and its export opened for reading.
    fn current(&self) -> Result<Option<(Meta, std::fs::File)>> {
        let latest = self.lock();
        match latest.as_ref() {
            None => Ok(None),
            Some(meta) => {
                let data = std::fs::File::open(snapshot_files(&self.dir).data).map_err(snap_err)?;
                Ok(Some((meta.clone(), data)))
            }
        }
    }

    /// Makes the export in `file` (synced) the kept snapshot, covering `meta`, unless the
    /// one kept already goes further (a build of this node's copy that ends after a newer
    /// snapshot was installed): then `file` is removed and `false` returned.
    ///
    /// The export is renamed into place before its metadata is written: a crash between
    /// the two leaves an export that goes further than the metadata says, which is a
    /// snapshot as [`Built`] makes them anyway.
    fn keep(&self, meta: &Meta, file: &Path) -> Result<bool> {
        let mut latest = self.lock();
        if latest
            .as_ref()
            .is_some_and(|kept| kept.last_log_id > meta.last_log_id)
        {
            let _ = std::fs::remove_file(file);
            return Ok(false);
        }
        let files = snapshot_files(&self.dir);
        std::fs::rename(file, &files.data).map_err(snap_err)?;
        write_durably(&files.meta, &encode(meta).map_err(snap_err)?).map_err(snap_err)?;
        *latest = Some(meta.clone());
        self.up_to
            .send_modify(|k| k.last = k.last.max(meta.last_log_id));
        Ok(true)
    }
}

/// Builds a snapshot of the copy as it stands at `meta.last_log_id` or later, in the
/// background while the state machine goes on applying ([`StateMachine::get_snapshot_builder`]).
///
/// The export of a large copy takes seconds; while applies waited for it, every write on
/// the leader waited too. The export does not need them to wait: each stream of the copy
/// is exported as a prefix of itself at least as long as it was at `meta.last_log_id`
/// ([`Journal::export`]), with `raft/applied` first so that its marker is never ahead of
/// the records it vouches for, and applying a committed entry again writes only what the
/// copy lacks ([`Journal::apply_replicated`]). A member that installs the snapshot and
/// then applies the entries after `meta.last_log_id` ends with the same copy as the leader.
pub struct Built {
    meta: Meta,
    journal: Option<Journal>,
    kept: Kept,
    exporting: Arc<Mutex<()>>,
}

impl RaftSnapshotBuilder<TypeConfig> for Built {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let journal = self
            .journal
            .take()
            .ok_or_else(|| snap_err("the journal copy is being replaced"))?;
        let meta = self.meta.clone();
        let kept = self.kept.clone();
        let exporting = Arc::clone(&self.exporting);
        let data = tokio::task::spawn_blocking(move || -> Result<(Meta, std::fs::File)> {
            let _exporting = exporting.lock().unwrap_or_else(|p| p.into_inner());
            let building = snapshot_files(&kept.dir).building;
            let file = create_file(&building).map_err(snap_err)?;
            let summary = journal
                .export(WriteBack::new(&file))
                .map_err(snap_err)?;
            file.sync_all().map_err(snap_err)?;
            if kept.keep(&meta, &building)? {
                tracing::info!(snapshot = %meta.snapshot_id, %summary, "snapshot of this node's copy built");
            }
            // Else a newer snapshot was installed while this one was built: that one is
            // the answer (an error here would stop openraft's core for good).
            kept.current()?
                .ok_or_else(|| snap_err("no snapshot is kept after a build"))
        })
        .await
        .map_err(snap_err)??;
        let (meta, data) = data;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(File::from_std(data)),
        })
    }
}

/// Makes the copy in `dir` (no longer open) again from the export `data`.
fn remake_copy(
    dir: &Path,
    config: &JournalConfig,
    data: &Path,
) -> std::result::Result<Journal, String> {
    Journal::remove_files(dir).map_err(|e| e.to_string())?;
    let journal = Journal::open(dir, config.clone()).map_err(|e| e.to_string())?;
    journal.import(data).map_err(|e| e.to_string())?;
    Ok(journal)
}

/// Clears, before the copy in `dir` is opened, a copy that a snapshot install left
/// half-imported when its process stopped (the journal refuses to open such a folder):
/// the copy is then empty, behind the snapshot the node kept, and [`StateMachine::open`]
/// makes it again from that snapshot. Returns whether it cleared one. Without a kept
/// snapshot there is nothing to make the copy from: the member must be replaced.
pub fn finish_interrupted_install(dir: &Path) -> std::result::Result<bool, String> {
    if !Journal::restore_unfinished(dir) {
        return Ok(false);
    }
    let files = snapshot_files(dir);
    if !(files.meta.is_file() && files.data.is_file()) {
        return Err(
            "this member's copy was being replaced by a snapshot from the leader when the process stopped, and no snapshot is kept to finish it".into(),
        );
    }
    tracing::warn!(dir = %dir.display(), "a snapshot install was cut off: this node's copy is made again from the snapshot it keeps");
    Journal::remove_files(dir).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Creates (or empties) `path` for writing, and its folder if need be.
fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Whether two open files are the same file.
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Built;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let journal = self.copy()?;
        let mut replies = Vec::new();
        for entry in entries {
            let mut outcome = Outcome::default();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(proposal) => {
                    for write in proposal.writes {
                        let stream = match StreamId::parse(&write.stream) {
                            Some(s @ (StreamId::Directory | StreamId::Product(_))) => s,
                            _ => {
                                return Err(StorageIOError::apply(
                                    entry.log_id,
                                    &std::io::Error::other(format!(
                                        "a proposal names stream {:?}",
                                        write.stream
                                    )),
                                )
                                .into())
                            }
                        };
                        let applied = journal
                            .apply_replicated(&stream, write.first, write.records)
                            .map_err(|e| {
                                StorageError::from(StorageIOError::apply(
                                    entry.log_id,
                                    &std::io::Error::other(e.to_string()),
                                ))
                            })?;
                        if let AppliedWrite::Refused(why) = applied {
                            tracing::error!(entry = %entry.log_id, reason = %why, "a committed write was refused");
                            self.refused.fetch_add(1, Ordering::Relaxed);
                            outcome.refused.push(why);
                        }
                    }
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            self.applied = Some(entry.log_id);
            replies.push(outcome);
        }
        if !replies.is_empty() {
            self.write_marker(&journal)?;
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Built {
            meta: SnapshotMeta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id: format!(
                    "{}-{}",
                    self.applied.map(|l| l.index).unwrap_or(0),
                    Uuid::new_v4().simple()
                ),
            },
            journal: self.journal.get(),
            kept: self.kept.clone(),
            exporting: Arc::clone(&self.exporting),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<File>> {
        let incoming = snapshot_files(&self.dir).incoming;
        let file = tokio::task::block_in_place(|| create_file(&incoming)).map_err(snap_err)?;
        Ok(Box::new(File::from_std(file)))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<File>) -> Result<()> {
        let installed = self.install(meta, snapshot).await;
        if installed.is_err() {
            // The log store waits for this snapshot before it purges: it must not wait on.
            self.kept.up_to.send_modify(|k| k.failed_installs += 1);
        }
        installed
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let current = tokio::task::block_in_place(|| self.kept.current())?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(File::from_std(data)),
        }))
    }
}
