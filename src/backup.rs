//! `slotpool backup` and `slotpool restore`: a consistent copy of a data dir's journal and
//! snapshots, taken from a running service or a stopped one, and its restore. The file
//! format and the consistency argument are the journal's ([`Journal::export`],
//! [`Journal::import`]); this module decides where the copy comes from.
//!
//! sled lets one process open a database, so a running service's data dir cannot be
//! read by another process, and copying its files under it gives a torn copy. The service
//! itself therefore exports (`POST /admin/v1/backup`), and `slotpool backup` either asks it
//! (when the data dir is locked) or exports itself (when the service is stopped).

use crate::Failure;
use slotpool_journal::{
    check_backup, BackupError, Durability, Journal, JournalConfig, JournalError,
};
use std::path::{Path, PathBuf};

/// `slotpool backup --data-dir D --out F [--url U]`.
pub fn run_backup(data_dir: &Path, out: &Path, url: &str) -> Result<(), Failure> {
    if !data_dir.join("db").is_file() {
        return Err(Failure::Data(format!(
            "{} is not a slotpool data directory (no journal found)",
            data_dir.display()
        )));
    }
    let partial = partial_path(out);
    let result = match Journal::open(
        data_dir,
        JournalConfig {
            durability: Durability::Process,
            ..JournalConfig::default()
        },
    ) {
        // Stopped: export it ourselves.
        Ok(journal) => {
            let f = std::fs::File::create(&partial).map_err(|e| {
                Failure::Runtime(format!("cannot write {}: {e}", partial.display()))
            })?;
            journal
                .export(f)
                .map(|_| ())
                .map_err(|e| Failure::Runtime(format!("backup failed: {e}")))
        }
        Err(JournalError::Damaged { .. }) => {
            return Err(Failure::Damaged(format!(
                "{} is damaged; back up from a copy that verifies",
                data_dir.display()
            )))
        }
        // Locked: a service runs on it; ask it.
        Err(_) => download(data_dir, &partial, url),
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let summary = check_backup(&partial).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        Failure::Runtime(format!("the backup does not check out: {e}"))
    })?;
    std::fs::rename(&partial, out)
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", out.display())))?;
    println!("backup: {summary} -> {}", out.display());
    Ok(())
}

fn partial_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Asks the running service for a backup (`POST /admin/v1/backup`) and writes it to `to`.
fn download(data_dir: &Path, to: &Path, url: &str) -> Result<(), Failure> {
    let token = crate::secrets::admin_token_for_tools(&data_dir.join("admin_token"))
            .map_err(|_| {
                Failure::Data(format!(
                    "{} is in use by a running service; set SLOTPOOL_ADMIN_TOKEN so that it can be asked for the backup",
                    data_dir.display()
                ))
            })?;
    let endpoint = format!("{}/admin/v1/backup", url.trim_end_matches('/'));
    let resp = ureq::post(&endpoint)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|e| {
            Failure::Runtime(format!(
                "{} is in use by a running service, which did not give a backup at {endpoint}: {e}",
                data_dir.display()
            ))
        })?;
    let mut f = std::fs::File::create(to)
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", to.display())))?;
    std::io::copy(&mut resp.into_reader(), &mut f)
        .and_then(|_| f.sync_all())
        .map_err(|e| Failure::Runtime(format!("backup download failed: {e}")))?;
    Ok(())
}

/// `slotpool restore --from F --data-dir D`: refuses a non-empty `D`; checks the file,
/// writes it, then verifies the result as `slotpool verify` does.
pub fn run_restore(from: &Path, data_dir: &Path) -> Result<(), Failure> {
    let non_empty = std::fs::read_dir(data_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if non_empty {
        return Err(Failure::Data(format!(
            "{} is not empty; restore into a new or empty directory",
            data_dir.display()
        )));
    }
    // The file's framing and hash are checked before the data dir is touched.
    check_backup(from).map_err(backup_failure)?;
    let journal = Journal::open(
        data_dir,
        JournalConfig {
            durability: Durability::Fsync,
            ..JournalConfig::default()
        },
    )
    .map_err(|e| Failure::Data(e.to_string()))?;
    // Every record is checked before any is written, then each goes through the
    // journal's append path. A restore that fails leaves the directory empty again.
    let imported = journal.import(from).map_err(backup_failure);
    let closed = journal
        .shutdown()
        .map_err(|e| Failure::Runtime(format!("final flush failed: {e}")));
    drop(journal);
    let summary = match imported.and_then(|summary| closed.map(|()| summary)) {
        Ok(summary) => summary,
        Err(e) => {
            empty_dir(data_dir);
            return Err(e);
        }
    };
    println!("restore: {summary} into {}", data_dir.display());
    // The result must check out exactly as `slotpool verify` checks a data dir.
    crate::verify::run(data_dir).map_err(|e| match e {
        Failure::Damaged(why) => {
            Failure::Damaged(format!("the restored data dir does not verify: {why}"))
        }
        other => other,
    })
}

/// What a failed backup check or import means for the operator.
fn backup_failure(e: BackupError) -> Failure {
    match e {
        BackupError::Damaged(why) => Failure::Damaged(why),
        BackupError::Journal(e @ JournalError::Corrupt { .. }) => {
            Failure::Damaged(format!("the backup's records do not check out: {e}"))
        }
        other => Failure::Data(other.to_string()),
    }
}

/// Removes what a failed restore wrote into `dir` (which was empty before it).
fn empty_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = removed {
            tracing::warn!(path = %path.display(), error = %e, "not removed after a failed restore");
        }
    }
}
