//! [`StateMachine`]: applying committed entries means writing their records into this
//! node's copy of the journal; a snapshot is an export of that copy.
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
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use slotpool_events::{ReplicationRecord, StreamId, Timestamp};
use slotpool_journal::{AppliedWrite, Journal, JournalConfig, StreamTip};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

type Membership = StoredMembership<NodeId, crate::Member>;
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
    current: Option<(SnapshotMeta<NodeId, crate::Member>, Vec<u8>)>,
    /// Committed writes refused since this process started ([`Outcome::refused`]).
    refused: Arc<AtomicU64>,
}

/// What `raft/applied` records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Applied {
    last: Option<LogId<NodeId>>,
    membership: Membership,
}

fn snapshot_files(dir: &Path) -> (PathBuf, PathBuf) {
    let raft = dir.join("raft");
    (raft.join("snapshot.meta"), raft.join("snapshot.data"))
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
        let (meta_file, data_file) = snapshot_files(dir);
        let current = match (std::fs::read(&meta_file), std::fs::read(&data_file)) {
            (Ok(meta), Ok(data)) => match decode::<SnapshotMeta<NodeId, crate::Member>>(&meta) {
                Ok(meta) => Some((meta, data)),
                Err(e) => {
                    tracing::warn!(file = %meta_file.display(), error = %e, "unreadable snapshot metadata ignored; a new snapshot will be built");
                    None
                }
            },
            _ => None,
        };
        Ok(StateMachine {
            dir: dir.to_path_buf(),
            config,
            journal: SharedJournal(Arc::new(Mutex::new(Some(journal)))),
            applied,
            membership,
            marker,
            markers_since_purge: 0,
            current,
            refused: Arc::default(),
        })
    }

    /// The journal copy, for the binary to serve from while this node leads.
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

    fn export(&self) -> Result<Vec<u8>> {
        let journal = self.copy()?;
        let mut out = Vec::new();
        tokio::task::block_in_place(|| journal.export(&mut out)).map_err(snap_err)?;
        Ok(out)
    }

    fn keep_snapshot(
        &mut self,
        meta: SnapshotMeta<NodeId, crate::Member>,
        data: Vec<u8>,
    ) -> Result<()> {
        let (meta_file, data_file) = snapshot_files(&self.dir);
        let encoded = encode(&meta).map_err(snap_err)?;
        write_durably(&data_file, &data).map_err(snap_err)?;
        write_durably(&meta_file, &encoded).map_err(snap_err)?;
        self.current = Some((meta, data));
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// A snapshot made at once by [`StateMachine::get_snapshot_builder`] (the export is
/// taken while applies wait, so it matches its log id exactly).
pub struct Built(Option<Snapshot<TypeConfig>>);

impl RaftSnapshotBuilder<TypeConfig> for Built {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        self.0
            .take()
            .ok_or_else(|| snap_err("the snapshot could not be exported"))
    }
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
        let data = match self.export() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "snapshot export failed");
                return Built(None);
            }
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.applied.map(|l| l.index).unwrap_or(0),
                Uuid::new_v4().simple()
            ),
        };
        if let Err(e) = self.keep_snapshot(meta.clone(), data.clone()) {
            tracing::error!(error = %e, "snapshot not kept");
            return Built(None);
        }
        Built(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, crate::Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let data = snapshot.into_inner();
        let incoming = self.dir.join("raft").join("snapshot.incoming");
        write_durably(&incoming, &data).map_err(snap_err)?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "installing a snapshot from the leader in place of this node's copy");
        let mut slot = self.journal.lock();
        if let Some(old) = slot.take() {
            old.shutdown().map_err(snap_err)?;
            drop(old);
        }
        let installed = tokio::task::block_in_place(|| -> std::result::Result<Journal, String> {
            Journal::remove_files(&self.dir).map_err(|e| e.to_string())?;
            let journal =
                Journal::open(&self.dir, self.config.clone()).map_err(|e| e.to_string())?;
            journal.import(&incoming).map_err(|e| e.to_string())?;
            Ok(journal)
        });
        let journal = installed.map_err(snap_err)?;
        *slot = Some(journal.clone());
        drop(slot);
        let _ = std::fs::remove_file(&incoming);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.marker = journal
            .replay::<ReplicationRecord>(&applied_stream(), |_| {})
            .map_err(sm_err)?;
        self.write_marker(&journal)?;
        self.keep_snapshot(meta.clone(), data)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        Ok(self.current.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}
