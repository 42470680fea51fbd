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
