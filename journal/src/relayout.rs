//! Rewriting a journal into another sled layout ([`Journal::open_in_layout`]).
//!
//! Why: sled records the segment a database was created with and refuses another, and a
//! Raft log created before [`JournalConfig::purged_log`] leaks sled's page files for as
//! long as it is written (docs/decisions.md, "A Raft log's pages stay in sled's
//! segments"). Such a log is small (it is purged behind every snapshot), so it is
//! rewritten at start: through a backup of itself (the export and import every backup
//! uses, with all their checks) into a fresh database of the asked layout.
//!
//! Crash safety: the backup is written and synced in the journal's folder, then the
//! marker [`PENDING`] is created; from then on every start finishes the rewrite from the
//! backup (removing whatever a killed rewrite left, then importing again), and the
//! marker goes only once the import is durable. Files in the folder that are not the
//! journal's (a cluster node's `raft/snapshot.*`) are left alone.

use crate::error::JournalError;
use crate::files::check_sled_conf;
use crate::{Journal, JournalConfig};
use std::fs::File;
use std::path::Path;

/// The backup a rewrite goes through, in the journal's folder.
const BACKUP: &str = "relayout.backup";
/// Present while a rewrite from [`BACKUP`] has not finished.
const PENDING: &str = "relayout.pending";

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> JournalError {
    JournalError::Io(format!("{what} {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))
}

impl Journal {
    /// Opens the journal in `dir` as [`Journal::open`] does, first rewriting it into
    /// `config`'s sled segment if it was created with another (or finishing a rewrite a
    /// crash interrupted). For small journals: the rewrite copies every record.
    pub fn open_in_layout(dir: &Path, config: JournalConfig) -> Result<Journal, JournalError> {
        let backup = dir.join(BACKUP);
        let pending = dir.join(PENDING);
        if !pending.exists() {
            match check_sled_conf(dir)? {
                Some(segment) if segment != config.sled_segment_bytes => {}
                _ => return Journal::open(dir, config),
            }
            let old = Journal::open(dir, config.clone())?;
            let file = File::create(&backup).map_err(|e| io("cannot create", &backup, e))?;
            let summary = old
                .export(&file)
                .map_err(|e| JournalError::Io(format!("backup for the rewrite: {e}")))?;
            file.sync_all().map_err(|e| io("cannot sync", &backup, e))?;
            old.shutdown()?;
            drop(old);
            File::create(&pending).map_err(|e| io("cannot create", &pending, e))?;
            sync_dir(dir)?;
            tracing::info!(dir = %dir.display(), %summary, segment = config.sled_segment_bytes, "rewriting the journal into a new sled layout");
        }
        Journal::remove_files(dir)?;
        let journal = Journal::open(dir, config)?;
        journal
            .import(&backup)
            .map_err(|e| JournalError::Io(format!("rewrite from {}: {e}", backup.display())))?;
        std::fs::remove_file(&pending).map_err(|e| io("cannot remove", &pending, e))?;
        sync_dir(dir)?;
        let _ = std::fs::remove_file(&backup);
        Ok(journal)
    }
}
