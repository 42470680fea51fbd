//! sled's files: opening them (waiting for the lock, refusing torn settings, clearing a
//! crash's unfinished snapshot) and making them durable (a checkpoint).

use crate::error::JournalError;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

/// The file a restore leaves in the data directory until it has finished
/// ([`crate::Journal::import`]); opening refuses a directory that has it.
pub(crate) const RESTORING: &str = "restore.unfinished";

/// Removes sled's `snap.<lsn>.generating` files. sled 0.34 writes its page-table snapshot
/// to that name, syncs it, then renames it; a process killed before the rename leaves
/// the file behind, and sled's next open takes it for the latest snapshot, finds it empty
/// or short and refuses the whole database as corrupt (spacejam/sled#1527; found by
/// `make chaos`, killing the service while it recovers). The file is by construction an
/// unfinished temporary: sled recovers from its previous snapshot and the log without it.
pub(crate) fn remove_unfinished_sled_snapshots(dir: &Path) {
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
///
/// Returns the segment size the database was created with, if it exists: sled refuses to
/// open it with another.
pub(crate) fn check_sled_conf(dir: &Path) -> Result<Option<usize>, JournalError> {
    let path = dir.join("conf");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(JournalError::Open {
                path: dir.display().to_string(),
                message: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    // sled's own threshold: up to 8 bytes it treats the file as absent.
    if bytes.len() <= 8 {
        return Ok(None);
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
    Ok(String::from_utf8_lossy(text).lines().find_map(|line| {
        line.strip_prefix("segment_size: ")
            .and_then(|n| n.trim().parse().ok())
    }))
}

/// Opens sled in `dir` with segments of `segment_bytes`, waiting up to [`LOCK_WAIT`] for
/// its file lock.
pub(crate) fn open_sled(
    dir: &Path,
    cache_bytes: u64,
    segment_bytes: usize,
) -> Result<sled::Db, sled::Error> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .segment_size(segment_bytes)
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
pub(crate) fn open_error(dir: &Path, e: sled::Error) -> JournalError {
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

/// Makes everything inserted into sled so far durable in sled's own files: its flush
/// (write and `sync_file_range`), then `fdatasync` of its data file.
pub(crate) fn checkpoint(db: &sled::Db, data_file: &File) -> Result<(), JournalError> {
    db.flush()?;
    data_file
        .sync_data()
        .map_err(|e| JournalError::Io(e.to_string()))
}

/// A sled tree `journal` in a database of its own under `dir`, for unit tests that
/// build a tree's state by hand. The database is returned too: it must outlive the tree.
#[cfg(test)]
pub(crate) fn scratch_tree(dir: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::Config::new()
        .path(dir.join("db"))
        .open()
        .expect("sled opens");
    let tree = db.open_tree("journal").expect("tree");
    (db, tree)
}
