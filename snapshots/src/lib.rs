//! Snapshots of product state, so that recovery need not replay a stream from its start.
//!
//! A snapshot is a [`ProductImage`] with the [`StreamTip`] it covers (the sequence of the
//! last event folded in and that record's hash), encoded like journal records:
//! `bincode(snapshot) ++ sha256`, versioned by [`FORMAT_VERSION`]. They live in the
//! journal's snapshot store ([`Journal::snapshot_store`]), filed by stream and sequence.
//!
//! Recovery = latest valid snapshot + the journal after it. A snapshot is valid when it
//! decodes, matches its own hash, and the journal's record at its sequence has the hash it
//! recorded (so it belongs to this very journal). Anything else is skipped (logged and
//! counted), never trusted: the worst a bad snapshot can cost is a longer replay.
//!
//! Architecture Invariant: this crate knows nothing of actix or HTTP.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slotpool_events::envelope::{Hash, HASH_LEN};
use slotpool_events::{ProductImage, StreamId, Timestamp};
use slotpool_journal::{Journal, JournalError, SequenceStore};
use thiserror::Error;

pub use slotpool_journal::StreamTip;

/// Version of the snapshot layout. A snapshot of another version is skipped (the journal
/// still has everything), so changing the layout never needs a migration.
pub const FORMAT_VERSION: u16 = 4;

/// How many snapshots are kept per stream (the latest and one before, in case the latest
/// is damaged).
pub const KEPT: usize = 2;

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`FORMAT_VERSION`] at the time of writing.
    pub format_version: u16,
    /// The stream's name.
    pub stream: String,
    /// The last sequence folded into the image.
    pub sequence: u64,
    /// The hash of that record.
    pub record_hash: Hash,
    /// When it was taken.
    pub taken_at: Timestamp,
    /// The state.
    pub image: ProductImage,
}

impl Snapshot {
    /// Where replay continues after this snapshot.
    pub fn tip(&self) -> StreamTip {
        StreamTip {
            next_sequence: self.sequence + 1,
            last_hash: self.record_hash,
        }
    }
}

/// What can go wrong with snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// A snapshot is damaged or does not belong to the journal.
    #[error("snapshot of {stream} at sequence {sequence} is unusable: {what}")]
    Corrupt {
        stream: String,
        sequence: u64,
        what: String,
    },
    /// The store could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Encodes a snapshot: `bincode ++ sha256`.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    // Plain data always encodes; an error here is a bug in a state type.
    let mut bytes = bincode::serde::encode_to_vec(snapshot, bincode::config::standard())
        .expect("snapshots are plain data and always encode");
    let hash: [u8; HASH_LEN] = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&hash);
    bytes
}

/// Decodes a snapshot, checking its hash and version. Never panics on any input.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    if bytes.len() < HASH_LEN {
        return Err(format!("truncated ({} bytes)", bytes.len()));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - HASH_LEN);
    let hash: [u8; HASH_LEN] = Sha256::digest(body).into();
    if hash[..] != trailer[..] {
        return Err("checksum does not match its contents".into());
    }
    // Read the version first: a snapshot of another layout is not decoded further.
    let (version, _): (u16, usize) =
        bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(|e| format!("does not decode: {e}"))?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this slotpool reads {FORMAT_VERSION}"
        ));
    }
    let (snapshot, used): (Snapshot, usize) =
        bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(|e| format!("does not decode: {e}"))?;
    if used != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(snapshot)
}

/// The snapshots of every stream, beside the journal.
#[derive(Clone)]
pub struct SnapshotStore {
    store: SequenceStore,
}

impl SnapshotStore {
    /// The store of `journal`'s database.
    pub fn open(journal: &Journal) -> Result<SnapshotStore, SnapshotError> {
        Ok(SnapshotStore {
            store: journal.snapshot_store()?,
        })
    }

    /// Writes a snapshot of `stream` covering up to `tip`, and prunes older ones. It
    /// becomes durable with sled's files at the journal's next checkpoint (a crash that
    /// loses it only makes recovery replay more).
    pub fn save(
        &self,
        stream: &StreamId,
        tip: StreamTip,
        taken_at: Timestamp,
        image: ProductImage,
    ) -> Result<(), SnapshotError> {
        let sequence = tip.next_sequence.saturating_sub(1);
        let snapshot = Snapshot {
            format_version: FORMAT_VERSION,
            stream: stream.name(),
            sequence,
            record_hash: tip.last_hash,
            taken_at,
            image,
        };
        self.store.put(stream, sequence, encode(&snapshot))?;
        self.prune(stream, sequence)
    }

    /// Keeps the [`KEPT`] latest snapshots up to `newest`. Any beyond it claim events the
    /// stream no longer has after `newest` was written: they can never be valid.
    fn prune(&self, stream: &StreamId, newest: u64) -> Result<(), SnapshotError> {
        let sequences = self.store.sequences(stream)?;
        let (upto, beyond): (Vec<u64>, Vec<u64>) =
            sequences.into_iter().partition(|s| *s <= newest);
        for sequence in beyond.iter().chain(upto.iter().rev().skip(KEPT)) {
            self.store.remove(stream, *sequence)?;
        }
        Ok(())
    }

    /// The latest snapshot of `stream` that is valid for `journal`, and the problems of
    /// every newer one that was skipped.
    pub fn latest_valid(
        &self,
        stream: &StreamId,
        journal: &Journal,
    ) -> (Option<Snapshot>, Vec<SnapshotError>) {
        let mut skipped = Vec::new();
        for item in self.store.newest_first(stream, u64::MAX) {
            let (sequence, value) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    skipped.push(e.into());
                    continue;
                }
            };
            match check(stream, sequence, &value, journal) {
                Ok(s) => return (Some(s), skipped),
                Err(e) => {
                    tracing::warn!(error = %e, "snapshot skipped");
                    skipped.push(e);
                }
            }
        }
        (None, skipped)
    }

    /// Checks every snapshot of every stream against `journal`; returns how many there are,
    /// or the first unusable one.
    pub fn verify(&self, journal: &Journal) -> Result<usize, SnapshotError> {
        let mut n = 0;
        for filed in self.store.all() {
            let filed = filed?;
            let Some(stream) = StreamId::parse(&filed.stream) else {
                return Err(SnapshotError::Corrupt {
                    stream: filed.stream,
                    sequence: filed.sequence,
                    what: "names no known stream".into(),
                });
            };
            check(&stream, filed.sequence, &filed.value, journal)?;
            n += 1;
        }
        Ok(n)
    }
}

fn check(
    stream: &StreamId,
    sequence: u64,
    value: &[u8],
    journal: &Journal,
) -> Result<Snapshot, SnapshotError> {
    let corrupt = |what: String| SnapshotError::Corrupt {
        stream: stream.name(),
        sequence,
        what,
    };
    let snapshot = decode(value).map_err(corrupt)?;
    if snapshot.stream != stream.name() || snapshot.sequence != sequence {
        return Err(corrupt("is filed under another stream or sequence".into()));
    }
    match journal.record_hash(stream, sequence)? {
        Some(h) if h == snapshot.record_hash => Ok(snapshot),
        Some(_) => Err(corrupt(
            "does not match the journal's record at its sequence".into(),
        )),
        None => Err(corrupt("covers events the journal does not have".into())),
    }
}
