//! How a journal is opened: what "durable" means, sled's cache, the flush observer.

use std::sync::Arc;
use std::time::Duration;

use crate::wal;

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
    /// sled's segment for a journal created now (an existing journal keeps the one it was
    /// created with, which sled records in its `conf`). sled writes a tree page larger
    /// than a quarter of it as a file of its own under `blobs/`.
    pub sled_segment_bytes: usize,
    /// The most bytes of records the tail packs into one chunk (and at most
    /// [`crate::CHUNK_RECORDS`] records); a record larger than this is a chunk alone.
    pub chunk_max_bytes: usize,
}

/// sled's own default segment, the one every journal before [`JournalConfig::purged_log`]
/// was created with.
const SLED_SEGMENT_BYTES: usize = 512 * 1024;

impl JournalConfig {
    /// The layout for a journal whose streams are appended and purged from the head, as
    /// a Raft log is: chunks of at most 32 KiB in sled segments of 4 MiB, so that no tree
    /// page reaches sled's 1 MiB threshold for a page file of its own.
    ///
    /// Why: sled 0.34 does not always delete a page's file once the page is gone. With
    /// chunks of 1,024 entries of tens of KB (megabytes each) in 512 KiB segments a
    /// cluster node's `raft/blobs` grew without bound (1.3 GB for 953 live entries);
    /// with this layout the same appends and purges write no page file and the folder
    /// stays at a bounded size (docs/decisions.md, "A Raft log's pages stay in sled's
    /// segments"). Streams that are never purged keep the default: chunks of 1,024
    /// records replay fastest, and their pages are live.
    pub fn purged_log(self) -> Self {
        JournalConfig {
            sled_segment_bytes: 4 * 1024 * 1024,
            chunk_max_bytes: 32 * 1024,
            ..self
        }
    }
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            durability: Durability::Fsync,
            cache_bytes: 64 * 1024 * 1024,
            on_flush: None,
            log_segment_bytes: wal::SEGMENT_BYTES,
            sled_segment_bytes: SLED_SEGMENT_BYTES,
            chunk_max_bytes: usize::MAX,
        }
    }
}
