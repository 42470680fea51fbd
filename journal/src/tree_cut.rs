//! How a cut changes the tree: the one function both the live cut ([`crate::cut`]) and
//! recovery ([`crate::wal::replay`]) apply, so that they cannot differ.

use crate::chunk::{chunk_at, chunk_key, chunk_len, chunk_records};
use crate::error::JournalError;
use crate::keys::{index_key, record_key, split_key, Cut, PurgedTip};
use crate::read::{last_sequence, start_tip};
use crate::tip::StreamTip;

/// Applies `cut` of stream `name` to `tree` in one atomic batch: at the time of the cut,
/// and again when the write-ahead log is replayed (where it may find it done already).
pub(crate) fn apply_cut(tree: &sled::Tree, name: &str, cut: &Cut) -> Result<(), JournalError> {
    let mut batch = sled::Batch::default();
    match cut {
        Cut::Truncate { after } => {
            let after = *after;
            // A chunk holding both kept and dropped records gives the kept ones back loose.
            if let Some((first, chunk)) = chunk_at(tree, name, after + 1)? {
                if first <= after {
                    for (sequence, record) in
                        (first..=after).zip(chunk_records(name, first, &chunk))
                    {
                        batch.insert(record_key(name, sequence), record?);
                    }
                }
                batch.remove(chunk_key(name, first));
            }
            for key in tree
                .range(chunk_key(name, after + 1)..=chunk_key(name, u64::MAX))
                .keys()
            {
                batch.remove(key?);
            }
            for key in tree
                .range(record_key(name, after + 1)..=record_key(name, u64::MAX))
                .keys()
            {
                batch.remove(key?);
            }
            if after == 0 && start_tip(tree, name)? == StreamTip::default() {
                batch.remove(index_key(name)); // nothing left: the stream is gone
            }
        }
        Cut::Purge { tip } => {
            let upto = tip.next_sequence - 1;
            for item in tree.range(chunk_key(name, 0)..=chunk_key(name, upto)) {
                let (key, chunk) = item?;
                let Some((_, first)) = split_key(&key[1..]) else {
                    continue;
                };
                // A chunk reaching past the purge stays; its purged records are skipped.
                if first + chunk_len(name, first, &chunk)? - 1 <= upto {
                    batch.remove(key);
                }
            }
            for key in tree
                .range(record_key(name, 0)..=record_key(name, upto))
                .keys()
            {
                batch.remove(key?);
            }
            batch.insert(index_key(name), PurgedTip::encode(tip));
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// Where stream `name` ends after `cut` was applied to `tree`.
pub(crate) fn end_after(tree: &sled::Tree, name: &str, cut: &Cut) -> Result<u64, JournalError> {
    match cut {
        Cut::Truncate { after } => Ok(*after),
        Cut::Purge { .. } => last_sequence(tree, name),
    }
}
