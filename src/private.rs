//! Private files: the data dir holds who used which licence and when (the journal, its
//! write-ahead log, snapshots, generated tokens), so nobody but the service's own user
//! may read it. The commands that write a data dir create it `0700` and run with the
//! umask `077`, so every file sled, the log, snapshots and backups create is `0600`,
//! whichever library creates it.

use crate::Failure;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Makes every file and directory this process creates from now on private to its user
/// (umask `077`). Called first thing in `main`, before any thread runs.
pub fn restrict_new_files() {
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates the data dir (and missing parents) with mode `0700`. An existing one is kept
/// as the operator made it, with a warning when others may read it.
pub fn create_data_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    data_dir = %dir.display(),
                    mode = format!("{mode:o}"),
                    "the data dir may be read by other users; `chmod 700` it"
                );
            }
            Ok(())
        }
        Ok(_) => Err(Failure::Data(format!(
            "data directory {} is not a directory",
            dir.display()
        ))),
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Failure::Data(format!(
                    "cannot create the data directory {}: {}",
                    dir.display(),
                    e.kind()
                ))
            }),
    }
}
