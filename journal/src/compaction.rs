//! Compaction: a background thread packs each stream's oldest loose records into chunks
//! ([`crate::chunk`]), byte for byte, in one atomic batch per chunk; readers see each
//! record exactly once, wherever it lives at that moment.
//!
//! When asked (the nightly job asks for every stream), all but the newest
//! [`CHUNK_RECORDS`] loose records are packed. Packing costs about as much CPU per record
//! as appending it, so it is done when the service is quiet, not on every append.
//!
//! The compactor owns `moving`, the lock under which records change place: a chunk's batch
//! is applied under it, and so is a cut of a stream ([`crate::Journal::truncate_after`],
//! [`crate::Journal::purge_upto`]), so that a cut never races a chunk being written.

use crate::chunk::{chunk_end, chunk_key, CHUNK_FORMAT, CHUNK_RECORDS};
use crate::error::JournalError;
use crate::keys::{record_key, record_range, split_key};
use crate::lock::lock;
use crate::read::start_tip;
use sha2::{Digest, Sha256};
use slotpool_events::envelope;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The compactor thread and the channel that feeds it.
pub(crate) struct Compactor {
    /// Streams due for compaction go here; `None` once shut down.
    tx: Mutex<Option<Sender<String>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Held while records change place (a chunk written, a stream cut).
    pub(crate) moving: Arc<Mutex<()>>,
}

impl Compactor {
    /// Starts the compactor thread over `tree`. It holds the tree, not the journal:
    /// dropping the sender stops it.
    pub(crate) fn start(tree: sled::Tree) -> std::io::Result<Compactor> {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let moving = Arc::new(Mutex::new(()));
        let held = Arc::clone(&moving);
        let handle = std::thread::Builder::new()
            .name("journal-compact".into())
            .spawn(move || run_compactor(&tree, &held, &rx))?;
        Ok(Compactor {
            tx: Mutex::new(Some(tx)),
            handle: Mutex::new(Some(handle)),
            moving,
        })
    }

    /// Asks the thread to pack stream `name`; returns at once.
    pub(crate) fn ask(&self, name: String) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(name);
        }
    }

    /// Stops the thread after the stream it is packing, if any.
    pub(crate) fn stop(&self) {
        lock(&self.tx).take();
        if let Some(handle) = lock(&self.handle).take() {
            let _ = handle.join();
        }
    }
}

/// Packs full chunks of `name`'s oldest loose records, keeping [`CHUNK_RECORDS`] loose.
pub(crate) fn compact_stream(
    tree: &sled::Tree,
    moving: &Mutex<()>,
    name: &str,
) -> Result<u64, JournalError> {
    let mut moved = 0;
    loop {
        // Where packing stands and where the stream ends are read, and the chunk written,
        // under the lock: a cut in between would be undone, or leave the stream unloose.
        let _moving = lock(moving);
        let packed_upto = match tree
            .range(chunk_key(name, 0)..=chunk_key(name, u64::MAX))
            .next_back()
            .transpose()?
        {
            Some((key, chunk)) => match split_key(&key[1..]) {
                Some((_, first)) => chunk_end(name, first, &chunk)?,
                None => return Ok(moved),
            },
            // Nothing packed yet: from the first record left after a purge, if any.
            None => start_tip(tree, name)?.next_sequence - 1,
        };
        let last = match tree.range(record_range(name)).next_back().transpose()? {
            Some((key, _)) => split_key(&key).map_or(0, |(_, s)| s),
            None => return Ok(moved),
        };
        if last.saturating_sub(packed_upto) < 2 * CHUNK_RECORDS {
            return Ok(moved);
        }
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
        moved += CHUNK_RECORDS;
    }
}

/// The compactor thread: compacts each stream it is sent, until the journal shuts down.
fn run_compactor(tree: &sled::Tree, moving: &Mutex<()>, streams: &Receiver<String>) {
    while let Ok(name) = streams.recv() {
        if let Err(e) = compact_stream(tree, moving, &name) {
            tracing::warn!(stream = %name, error = %e, "journal compaction stopped");
        }
    }
}
