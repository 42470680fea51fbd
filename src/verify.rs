//! `slotpool verify`: checks a data directory's journal offline.

use crate::failure::Failure;
use slotpool_journal::{Durability, Journal, JournalConfig, JournalError};
use slotpool_snapshots::SnapshotStore;
use std::path::Path;

/// Verifies every stream; prints a line per stream, or the first damage found.
pub fn run(data_dir: &Path) -> Result<(), Failure> {
    if !data_dir.join("db").is_file() {
        return Err(Failure::Data(format!(
            "{} is not a slotpool data directory (no journal found)",
            data_dir.display()
        )));
    }
    let journal = Journal::open(
        data_dir,
        JournalConfig {
            durability: Durability::Process,
            ..JournalConfig::default()
        },
    )
    .map_err(|e| match e {
        JournalError::Damaged { .. } => Failure::Damaged(format!(
            "{e}; restore the data directory from a backup (`slotpool restore`)"
        )),
        e => Failure::Data(format!(
            "{e} (is a slotpool service running on it? verify a copy or a backup)"
        )),
    })?;
    let streams = journal
        .verify()
        .map_err(|e| Failure::Damaged(e.to_string()))?;
    let snapshots = SnapshotStore::open(&journal)
        .and_then(|store| store.verify(&journal))
        .map_err(|e| Failure::Damaged(e.to_string()))?;
    let total: u64 = streams.iter().map(|s| s.records).sum();
    for s in &streams {
        let tip: String = s.tip.iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "{}: {} records, tip {tip}, hash chain intact",
            s.stream, s.records
        );
    }
    println!(
        "verify: {} streams, {total} records, {snapshots} snapshots, all intact",
        streams.len()
    );
    Ok(())
}
