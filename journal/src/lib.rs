//! slotpool's durable journal: every stream's records in sled, appended with group commit
//! through a write-ahead log, replayed and verified; the one owner of storage.
//!
//! A stream (the directory, each product) is a hash-chained sequence of records
//! ([`slotpool_events::Envelope`]s). What the crate offers is typed operations, never
//! sled's trees: [`Journal::append`] with its durability promise
//! ([`Journal::when_durable`]), [`Journal::replay_from`] and [`Journal::read_range`],
//! [`Journal::last_sequence`], cuts for a replicated log ([`Journal::truncate_after`],
//! [`Journal::purge_upto`]), [`Journal::export`]/[`Journal::import`] for backup and
//! restore, [`Journal::verify`], and small stores for snapshots and connector cursors
//! ([`Journal::snapshot_store`], [`Journal::cursor_store`]).
//!
//! Durability: an append puts its records in the tail ([`tail`]: memory, written into
//! sled as chunks at each checkpoint and before any read) and adds the same keys and
//! values to the frame of the next group. A caller that must not answer before its events survive
//! registers with [`Journal::when_durable`]; one committer thread writes the frame to the
//! write-ahead log ([`wal`]) and (by default) `fdatasync`s it, then tells every caller
//! the write covered ([`commit`]). sled's own files are made durable in bulk, once per log
//! segment, by the checkpointer ([`checkpoint`]); at open, records the log has and sled
//! lost are inserted again.
//!
//! Architecture Invariant: no other crate of slotpool depends on sled or knows a key of
//! the journal's database; every write of a record goes through [`Journal::append`]'s
//! path (imports included), so the write-ahead log covers it.
//!
//! Architecture Invariant: each module owns its locks: the frame, tickets and waiters
//! ([`commit`]), the spare segment ([`checkpoint`]), the compactor's channel and the lock
//! under which records move ([`compaction`]), the failure ([`health`]), the live
//! watermark ([`watermark`]).

mod checkpoint;
mod chunk;
mod commit;
mod compaction;
mod config;
mod cut;
mod error;
mod files;
mod health;
mod journal;
mod keys;
mod layout;
mod lock;
mod parallel;
mod read;
mod relayout;
mod replay;
mod replicated;
mod replicator;
mod store;
mod tail;
mod tip;
mod transfer;
mod tree_cut;
mod verify;
pub mod wal;
pub mod watermark;

pub use chunk::CHUNK_RECORDS;
pub use commit::DurableWaiter;
pub use config::{Durability, FlushObserver, JournalConfig};
pub use error::JournalError;
pub use journal::Journal;
pub use layout::StreamLayout;
pub use replicated::AppliedWrite;
pub use replicator::Replicator;
pub use store::{Filed, NamedStore, SequenceStore};
pub use tip::StreamTip;
pub use transfer::{check_backup, BackupError, BackupSummary, MAGIC as BACKUP_MAGIC};
pub use verify::StreamSummary;

#[cfg(test)]
mod tests;
