//! Where the journal keeps a record in sled's tree, for tests that damage one: loose
//! (its own key) or packed in a chunk (the journal writes what it appends in chunks;
//! `journal/src/chunk.rs` has the format: `format u8 | records u32 | (length u32 | bytes)*`
//! under `0x02 ++ stream ++ 0x00 ++ first sequence`).

use std::ops::Range;

/// The key of record `seq` of `stream` when it is loose.
pub fn loose_key(stream: &str, seq: u64) -> Vec<u8> {
    let mut k = stream.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The key holding record `seq` of `stream` and where in that key's value the record's
/// bytes are (all of it for a loose record); `None` when it is in neither place.
pub fn locate(tree: &sled::Tree, stream: &str, seq: u64) -> Option<(Vec<u8>, Range<usize>)> {
    let loose = loose_key(stream, seq);
    if let Some(v) = tree.get(&loose).expect("read") {
        return Some((loose, 0..v.len()));
    }
    let mut prefix = vec![0x02];
    prefix.extend_from_slice(stream.as_bytes());
    prefix.push(0);
    let mut upto = prefix.clone();
    upto.extend_from_slice(&seq.to_be_bytes());
    let (key, chunk) = tree
        .range(prefix.clone()..=upto)
        .next_back()?
        .expect("read");
    let first = u64::from_be_bytes(key[prefix.len()..].try_into().ok()?);
    let count = u32::from_le_bytes(chunk[1..5].try_into().ok()?) as u64;
    if seq >= first + count {
        return None;
    }
    let mut at = 5;
    for _ in first..seq {
        at += 4 + u32::from_le_bytes(chunk[at..at + 4].try_into().ok()?) as usize;
    }
    let len = u32::from_le_bytes(chunk[at..at + 4].try_into().ok()?) as usize;
    Some((key.to_vec(), at + 4..at + 4 + len))
}

/// XORs one byte in the middle of record `seq` of `stream` (before its hash trailer)
/// with `mask`; returns the key that changed.
pub fn flip(tree: &sled::Tree, stream: &str, seq: u64, mask: u8) -> Vec<u8> {
    let (key, range) = locate(tree, stream, seq).expect("the record exists");
    let mut value = tree.get(&key).expect("read").expect("present").to_vec();
    assert!(range.len() > 40, "record of {} bytes", range.len());
    value[range.start + (range.len() - 32) / 2] ^= mask;
    tree.insert(&key, value).expect("write");
    key
}

/// Takes record `seq` of `stream` out: its key, or its bytes out of its chunk (whose
/// later records then sit one place early, which the journal's checks name at `seq`).
/// Returns the key that changed.
pub fn take_out(tree: &sled::Tree, stream: &str, seq: u64) -> Vec<u8> {
    let (key, range) = locate(tree, stream, seq).expect("the record exists");
    if key == loose_key(stream, seq) {
        tree.remove(&key).expect("remove");
        return key;
    }
    let mut value = tree.get(&key).expect("read").expect("present").to_vec();
    value.drain(range.start - 4..range.end);
    let count = u32::from_le_bytes(value[1..5].try_into().expect("4")) - 1;
    value[1..5].copy_from_slice(&count.to_le_bytes());
    tree.insert(&key, value).expect("write");
    key
}
