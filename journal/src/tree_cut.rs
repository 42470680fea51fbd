//! How a cut changes the tree: the one function both the live cut ([`crate::cut`]) and
//! recovery ([`crate::wal::replay`]) apply, so that they cannot differ.

use crate::chunk::{chunk_at, chunk_end, chunk_key, chunk_records};
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
            let Some(dropped) = after.checked_add(1) else {
                return Ok(()); // nothing can come after the last possible sequence
            };
            let start = start_tip(tree, name)?;
            // A chunk holding both kept and dropped records gives the kept ones back loose
            // (not those a purge removed).
            if let Some((first, chunk)) = chunk_at(tree, name, dropped)? {
                if first <= after {
                    for (sequence, record) in
                        (first..=after).zip(chunk_records(name, first, &chunk))
                    {
                        let record = record?;
                        if sequence >= start.next_sequence {
                            batch.insert(record_key(name, sequence), record);
                        }
                    }
                }
                batch.remove(chunk_key(name, first));
            }
            for key in tree
                .range(chunk_key(name, dropped)..=chunk_key(name, u64::MAX))
                .keys()
            {
                batch.remove(key?);
            }
            for key in tree
                .range(record_key(name, dropped)..=record_key(name, u64::MAX))
                .keys()
            {
                batch.remove(key?);
            }
            if after == 0 && start == StreamTip::default() {
                batch.remove(index_key(name)); // nothing left: the stream is gone
            }
        }
        Cut::Purge { tip } => {
            // A purge never goes back: replayed after a later one sled already holds, it
            // would name as the start records that are gone.
            if start_tip(tree, name)?.next_sequence >= tip.next_sequence {
                return Ok(());
            }
            let upto = tip.next_sequence - 1;
            for item in tree.range(chunk_key(name, 0)..=chunk_key(name, upto)) {
                let (key, chunk) = item?;
                let Some((_, first)) = split_key(&key[1..]) else {
                    continue;
                };
                // A chunk reaching past the purge stays; its purged records are skipped.
                if chunk_end(name, first, &chunk)? <= upto {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::start_tip;

    /// Found by review: a log may replay an older purge after sled already holds a later
    /// one; the later start must stay, or records that are gone would be named as the
    /// stream's first.
    #[test]
    fn a_purge_never_moves_the_start_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, tree) = crate::files::scratch_tree(dir.path());
        let at = |next_sequence| StreamTip {
            next_sequence,
            last_hash: [next_sequence as u8; 32],
        };
        apply_cut(&tree, "directory", &Cut::Purge { tip: at(9) }).expect("purge");
        apply_cut(&tree, "directory", &Cut::Purge { tip: at(6) }).expect("older purge");
        assert_eq!(start_tip(&tree, "directory").expect("start"), at(9));
    }
}
