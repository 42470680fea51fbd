//! The checkpointer: makes sled's own files durable in bulk, once per write-ahead log
//! segment, and keeps the committer's next segment ready.
//!
//! When the committer moves on from a full segment it hands it here; a checkpoint (sled's
//! flush, then `fdatasync` of its data file) makes every record of that segment durable in
//! sled, after which the segment's file is recycled as the next spare. [`Checkpointer`]
//! owns the spare and its thread; only this module takes their locks.

use crate::files::checkpoint;
use crate::health::Health;
use crate::lock::lock;
use crate::wal;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;
use std::thread::JoinHandle;

/// The checkpointer's state: the next segment and the thread.
pub(crate) struct Checkpointer {
    /// Zeros written into a segment made from nothing (see [`wal::Segment::prepare`]):
    /// a segment's size when groups are synced, else none.
    preallocate: u64,
    /// The next log segment, prepared for the committer to move to.
    spare: Mutex<Option<wal::Segment>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// A checkpointer whose new segments are `preallocate` bytes of zeros.
    pub(crate) fn new(preallocate: u64) -> Checkpointer {
        Checkpointer {
            preallocate,
            spare: Mutex::new(None),
            handle: Mutex::new(None),
        }
    }

    /// Keeps the thread's handle, for [`Checkpointer::join`].
    pub(crate) fn started(&self, handle: JoinHandle<()>) {
        *lock(&self.handle) = Some(handle);
    }

    /// The prepared next segment, if there is one.
    pub(crate) fn take_spare(&self) -> Option<wal::Segment> {
        lock(&self.spare).take()
    }

    /// Whether no next segment is ready (a checkpoint may be under way).
    #[cfg(test)]
    pub(crate) fn spare_is_empty(&self) -> bool {
        lock(&self.spare).is_none()
    }

    /// Waits for the thread to end (its channel closed when the committer stopped).
    pub(crate) fn join(&self) {
        if let Some(handle) = lock(&self.handle).take() {
            let _ = handle.join();
        }
    }
}

/// What the checkpointer makes durable: sled's database and its data file; and where it
/// reports a failure.
pub(crate) struct Sled<'a> {
    pub(crate) db: &'a sled::Db,
    /// The journal's tree and the records it does not hold yet: written into it before
    /// each checkpoint, so that a recycled segment has nothing sled lacks.
    pub(crate) tree: &'a sled::Tree,
    pub(crate) tail: &'a crate::tail::Tail,
    pub(crate) data_file: &'a File,
    pub(crate) health: &'a Health,
}

impl Checkpointer {
    /// The thread's loop: prepare the spare, wait for a full segment, checkpoint. The first
    /// spare is segment `first_spare`, made from `recycled` if opening found an old file
    /// to reuse; it ends when `closed` does (the committer stopped).
    pub(crate) fn run(
        &self,
        log_dir: &Path,
        first_spare: u64,
        mut recycled: Option<PathBuf>,
        closed: &Receiver<wal::Segment>,
        sled: Sled<'_>,
    ) {
        let mut generation = first_spare;
        loop {
            let preallocate = self.preallocate;
            match wal::Segment::prepare(log_dir, generation, recycled.take(), preallocate) {
                Ok(segment) => *lock(&self.spare) = Some(segment),
                // The committer keeps writing to the segment it has, past its size.
                Err(e) => {
                    tracing::warn!(error = %e, generation, "next write-ahead log segment not prepared")
                }
            }
            // Ends when the committer does (shutdown).
            let Ok(full) = closed.recv() else { return };
            if let Err(e) = sled.tail.settle(sled.tree) {
                sled.health
                    .fail(format!("writing appended records into sled failed: {e}"));
                return;
            }
            if let Err(e) = checkpoint(sled.db, sled.data_file) {
                sled.health.fail(format!("checkpoint failed: {e}"));
                return;
            }
            recycled = Some(full.path().to_path_buf());
            // The committer writes to the one after `full`; the spare comes after that.
            generation = full.generation() + 2;
        }
    }
}
