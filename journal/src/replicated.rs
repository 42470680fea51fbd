//! The replicated seam: where appends go when the journal is one node's copy of a
//! cluster's log.
//!
//! A single node makes an append durable itself (the write-ahead log and its
//! `fdatasync`). A cluster member that leads makes it durable by replicating it: the
//! records are handed to a [`Replicator`] (the cluster crate's Raft proposer), and the
//! journal writes them only when the cluster has committed them, through
//! [`Journal::apply_replicated`], on every member alike. Callers of [`Journal::append`],
//! [`Journal::when_durable`] and the tickets do not change: the product and directory
//! actors are the same code on one node and in a cluster.

use crate::error::JournalError;
use crate::replicator::Replicator;
use crate::Journal;
use slotpool_events::{envelope, StreamId};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

impl Journal {
    /// Makes this journal the local copy of a replicated log: from now on appends are
    /// proposed to `replicator` and written only when committed ([`Self::apply_replicated`]).
    /// Set once, by a node that has become its cluster's leader.
    pub fn replicate_through(&self, replicator: Arc<dyn Replicator>) -> Result<(), JournalError> {
        self.inner
            .replicator
            .set(replicator)
            .map_err(|_| JournalError::Failed("the journal is already replicated".into()))
    }

    /// The replicator appends go to, if this journal is a cluster member's copy.
    pub(crate) fn replicator(&self) -> Option<&Arc<dyn Replicator>> {
        self.inner.replicator.get()
    }

    /// The ticket an answer computed after the append with `ticket` must wait for.
    ///
    /// On a single node that is `ticket` itself (reads of an idle product wait for
    /// nothing). On a cluster's leader an answer that would not wait for a write waits
    /// for a confirmation of leadership instead, so that a deposed leader that has not
    /// heard of its successor yet never answers from its stale state.
    pub fn answer_ticket(&self, ticket: u64) -> u64 {
        match self.replicator() {
            Some(r) if ticket <= r.durable_ticket() => r.confirm_leadership(),
            _ => ticket,
        }
    }

    /// Writes records the cluster has committed, as the proposal carried them, into this
    /// node's copy ([`AppliedWrite::Written`], with the local ticket: durable by the
    /// local log in the background, the Raft log already holds them on a majority's
    /// disks).
    ///
    /// Applying the same committed entry twice (a restart before the local log had
    /// flushed what it applied) writes only the records not yet present. A write whose
    /// records overlap different records of the copy was proposed from a state the
    /// cluster had moved past (a leader that served before it had applied its whole
    /// log): it is [`AppliedWrite::Refused`], on every member alike since their copies
    /// are the same, rather than written as a second history of the stream.
    pub fn apply_replicated(
        &self,
        stream: &StreamId,
        first: u64,
        records: Vec<Vec<u8>>,
    ) -> Result<AppliedWrite, JournalError> {
        let have = self.last_sequence(stream)?;
        let skip = have.saturating_sub(first.saturating_sub(1));
        let skip = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(records.len());
        if have + 1 < first {
            return Err(JournalError::Corrupt {
                stream: stream.name(),
                sequence: first,
                what: format!("a committed entry starts at {first}, the copy ends at {have}"),
            });
        }
        if skip > 0 {
            // The last record both have: equal hashes vouch for every record before it
            // (each record carries the hash of the one before).
            let sequence = first + skip as u64 - 1;
            let theirs = &records[skip - 1];
            let trailer = &theirs[theirs.len().saturating_sub(envelope::HASH_LEN)..];
            if let Some(ours) = self.record_hash(stream, sequence)? {
                if ours[..] != trailer[..] {
                    return Ok(AppliedWrite::Refused(format!(
                        "{} record {sequence} is another record in this copy: the write was \
                         proposed from a state the cluster had moved past",
                        stream.name()
                    )));
                }
            }
        }
        let records: Vec<Vec<u8>> = records.into_iter().skip(skip).collect();
        if records.is_empty() {
            return Ok(AppliedWrite::Written(self.inner.commit.latest_ticket()));
        }
        self.write_records(&stream.name(), first + skip as u64, records)
            .map(AppliedWrite::Written)
    }
}

/// What [`Journal::apply_replicated`] did with one committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliedWrite {
    /// Written, or found written already: the local ticket.
    Written(u64),
    /// Not written, and why: it would have replaced records of the copy.
    Refused(String),
}

/// The names a journal keeps in its data directory: sled's files, the write-ahead log,
/// the watermark and the unfinished-restore marker. Everything else there (tokens, a
/// cluster node's `raft/`) is not the journal's.
const JOURNAL_FILES: [&str; 6] = [
    "db",
    "conf",
    "blobs",
    crate::wal::DIR,
    crate::watermark::FILE,
    crate::files::RESTORING,
];

impl Journal {
    /// Whether `dir` holds a journal whose restore ([`Journal::import`]) did not finish:
    /// [`Journal::open`] refuses it. A cluster member whose snapshot install was cut off
    /// then makes its copy again from the snapshot it kept.
    pub fn restore_unfinished(dir: &Path) -> bool {
        dir.join(crate::files::RESTORING).exists()
    }

    /// Removes the journal kept in `dir` (of a journal no longer open): what a cluster
    /// member does before it installs a snapshot of the leader's copy in its place.
    pub fn remove_files(dir: &Path) -> Result<(), JournalError> {
        let entries = std::fs::read_dir(dir).map_err(|e| JournalError::Io(e.to_string()))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(JOURNAL_FILES.contains(&name.as_ref()) || name.starts_with("snap.")) {
                continue;
            }
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed
                .map_err(|e| JournalError::Io(format!("cannot remove {}: {e}", path.display())))?;
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::Io(e.to_string()))
    }
}
