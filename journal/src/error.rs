//! What can go wrong with the journal, as one typed error.

use thiserror::Error;

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
    /// A cut or a read asked for sequences a stream does not have (beyond its end, or
    /// before what was purged): nothing changed.
    #[error("journal stream {stream} has no sequence {sequence}: {what}")]
    OutOfRange {
        stream: String,
        sequence: u64,
        what: String,
    },
    /// This node's copy is replicated and the node no longer leads its cluster: the
    /// append was not acknowledged (it may still commit under the new leader).
    #[error("this node no longer leads the cluster: {0}")]
    NotLeader(String),
}

impl From<sled::Error> for JournalError {
    fn from(e: sled::Error) -> Self {
        JournalError::Io(e.to_string())
    }
}
