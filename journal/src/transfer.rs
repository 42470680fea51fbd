//! Backups: a consistent copy of the journal and its snapshots ([`Journal::export`]) and
//! its restore ([`Journal::import`]), through the same write path and checks as appends.
//!
//! Why the export is consistent while the service writes: a stream's records are never
//! changed once written. The export reads each stream's snapshots, then copies its index
//! entry, its records as far as they go at that moment, and only the snapshots that do
//! not go past the last record copied. Every stream is thus a prefix of itself: exactly
//! what a crash at some moment could have left, which recovery already handles. Records
//! not yet acknowledged may be included, as after a crash; an acknowledged change made
//! before the backup started is always in it. The streams of a cluster node's own
//! bookkeeping (`raft/...`) come first: what they say of the other streams (what has been
//! applied) is then never ahead of the records copied after them.
//!
//! File format (version 1): the line `slotpool-backup 1\n`, then entries
//! `tree (1 byte: 1 journal, 2 snapshots) ++ key length (u32 BE) ++ key ++ value length
//! (u32 BE) ++ value`, then the byte 0 (end), then the SHA-256 of everything before it.
//! Keys are the journal's own ([`crate::keys`]). A backup cut short or altered fails its
//! hash and is refused before anything is written.

use crate::error::JournalError;
use crate::files::RESTORING;
use crate::keys::{index_key, record_key, split_key, Cut, PurgedTip, INDEX_PREFIX};
use crate::read::check_record;
use crate::store::SequenceStore;
use crate::tip::StreamTip;
use crate::Journal;
use sha2::{Digest, Sha256};
use slotpool_events::{DirectoryEvent, ProductEvent, ReplicationRecord, StreamId};
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use thiserror::Error;

/// The first line of every backup file.
pub const MAGIC: &[u8] = b"slotpool-backup 1\n";
const TREE_JOURNAL: u8 = 1;
const TREE_SNAPSHOTS: u8 = 2;
const END: u8 = 0;
/// Records written per append while importing: one sled batch and one log record each.
const IMPORT_BATCH: usize = 1024;

/// What a backup holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Streams copied.
    pub streams: usize,
    /// Journal records copied.
    pub records: u64,
    /// Snapshots copied.
    pub snapshots: u64,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} streams, {} records, {} snapshots",
            self.streams, self.records, self.snapshots
        )
    }
}

/// Why a backup could not be written, read or restored.
#[derive(Debug, Error)]
pub enum BackupError {
    /// The file is not a complete, unaltered slotpool backup: nothing was written.
    #[error("{0}")]
    Damaged(String),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// The journal refused (a record that breaks its chain, a journal not empty...).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A writer that hashes what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn entry(w: &mut impl Write, tree: u8, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    w.write_all(&[tree])?;
    w.write_all(&(key.len() as u32).to_be_bytes())?;
    w.write_all(key)?;
    w.write_all(&(value.len() as u32).to_be_bytes())?;
    w.write_all(value)
}

fn io(e: impl std::fmt::Display) -> BackupError {
    BackupError::Io(e.to_string())
}

impl Journal {
    /// Writes a consistent backup of the journal and its snapshots (see the module doc)
    /// to `out`.
    pub fn export(&self, out: impl Write) -> Result<BackupSummary, BackupError> {
        let snapshots = self.snapshot_store()?;
        let mut w = Hashing {
            inner: BufWriter::with_capacity(1 << 20, out),
            hash: Sha256::new(),
        };
        w.write_all(MAGIC).map_err(io)?;
        let mut summary = BackupSummary::default();
        let mut streams = self.streams()?;
        streams.sort_by_key(|s| !matches!(s, StreamId::Raft(_)));
        for stream in streams {
            let name = stream.name();
            // The stream's snapshots before its records: the store keeps only the latest
            // two, so under load those that exist once the records are read may all be
            // newer than the last record read, and useless without it.
            let stream_snapshots = snapshots
                .newest_first(&stream, u64::MAX)
                .collect::<Result<Vec<_>, _>>()?;
            // Each record as stored, wherever it lives (loose or packed in a chunk by the
            // compactor, which may move records while this runs), written back loose.
            let first = self.first_tip(&stream)?;
            // The stream's index entry first, so that a restore knows where its chain
            // starts before its records come.
            let index = if first == StreamTip::default() {
                Vec::new()
            } else {
                PurgedTip::encode(&first)
            };
            entry(&mut w, TREE_JOURNAL, &index_key(&name), &index).map_err(io)?;
            let mut last = first.next_sequence - 1;
            let mut written = Ok(());
            self.raw_records(&stream, |sequence, record| {
                written = entry(&mut w, TREE_JOURNAL, &record_key(&name, sequence), record);
                last = sequence;
                written.is_ok()
            })?;
            written.map_err(io)?;
            summary.records += last + 1 - first.next_sequence;
            for (sequence, value) in stream_snapshots.iter().rev() {
                if *sequence <= last {
                    entry(&mut w, TREE_SNAPSHOTS, &record_key(&name, *sequence), value)
                        .map_err(io)?;
                    summary.snapshots += 1;
                }
            }
            summary.streams += 1;
        }
        w.write_all(&[END]).map_err(io)?;
        let digest = w.hash.finalize_reset();
        let mut inner = w.inner;
        inner.write_all(&digest).map_err(io)?;
        inner.flush().map_err(io)?;
        Ok(summary)
    }

    /// Restores the backup `file` into this journal, which must be empty. A first pass
    /// checks the whole file (framing, its hash, and every record against its own hash,
    /// its sequence and its stream's chain) without writing anything; the second writes
    /// every stream through the append path (made durable by the write-ahead log) and its
    /// snapshots into the snapshot store.
    pub fn import(&self, file: &Path) -> Result<BackupSummary, BackupError> {
        if !self.streams()?.is_empty() {
            return Err(BackupError::Io(
                "the journal is not empty; restore into a new data directory".into(),
            ));
        }
        let mut dry = Importer::new(None, BTreeMap::new());
        let checked = read_entries(file, |tree, key, value| dry.entry(self, tree, key, value))?;
        // Until the last record is durable the directory says it is half restored, and
        // `Journal::open` refuses it: a restore killed half-way never looks complete.
        let marker = self.path().join(RESTORING);
        std::fs::write(&marker, b"a restore into this directory has not finished\n")
            .and_then(|()| std::fs::File::open(self.path())?.sync_all())
            .map_err(io)?;
        let mut writer = Importer::new(Some(self.snapshot_store()?), checked.starts);
        read_entries(file, |tree, key, value| {
            writer.entry(self, tree, key, value)
        })?;
        writer.flush(self)?;
        self.sync()?;
        std::fs::remove_file(&marker)
            .and_then(|()| std::fs::File::open(self.path())?.sync_all())
            .map_err(io)?;
        Ok(checked.summary)
    }
}

/// The stream and sequence of a record key in a backup.
fn parse_record_key(key: &[u8]) -> Result<(StreamId, u64), BackupError> {
    split_key(key)
        .and_then(|(name, sequence)| Some((StreamId::parse(&name)?, sequence)))
        .ok_or_else(|| BackupError::Damaged("the backup has an entry of no known stream".into()))
}

/// Takes a backup's entries one stream at a time: checks each record continues its
/// stream and, unless dry, writes them a batch per append.
struct Importer {
    /// Where snapshots go; `None` for the dry pass, which writes nothing.
    snapshots: Option<SequenceStore>,
    /// Where each stream starts: a purge tip, or the default.
    starts: BTreeMap<String, StreamTip>,
    stream: Option<StreamId>,
    tip: StreamTip,
    /// Checked records not written yet, from `first`.
    first: u64,
    pending: Vec<Vec<u8>>,
}

impl Importer {
    fn new(snapshots: Option<SequenceStore>, starts: BTreeMap<String, StreamTip>) -> Importer {
        Importer {
            snapshots,
            starts,
            stream: None,
            tip: StreamTip::default(),
            first: 1,
            pending: Vec::new(),
        }
    }

    /// Takes one entry of the file.
    fn entry(
        &mut self,
        journal: &Journal,
        tree: u8,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), BackupError> {
        if tree == TREE_SNAPSHOTS {
            let (stream, sequence) = parse_record_key(key)?;
            if let Some(store) = &self.snapshots {
                store.put(&stream, sequence, value.to_vec())?;
            }
            return Ok(());
        }
        if key.first() == Some(&INDEX_PREFIX) {
            // Exported before the stream's records (older backups put it after them, and
            // never had a purged stream): a purged stream starts where its purge ended,
            // even one purged to its end, which has no records at all.
            let name = String::from_utf8_lossy(&key[1..]).into_owned();
            let start = PurgedTip::decode(value)
                .ok_or_else(|| BackupError::Damaged("a damaged index entry".into()))?;
            if start != StreamTip::default() && self.snapshots.is_some() {
                let cut = Cut::Purge { tip: start };
                journal.cut(&name, &cut, start.next_sequence - 1)?;
            }
            self.starts.insert(name, start);
            return Ok(());
        }
        let (stream, sequence) = parse_record_key(key)?;
        self.record(journal, stream, sequence, value)
    }

    /// Takes record `sequence` of `stream`: checks it continues the stream, and writes
    /// the batch when full.
    fn record(
        &mut self,
        journal: &Journal,
        stream: StreamId,
        sequence: u64,
        value: &[u8],
    ) -> Result<(), BackupError> {
        if self.stream.as_ref() != Some(&stream) {
            self.flush(journal)?;
            // A stream whose head was purged goes on from its tip (its index entry, first).
            let start = self.starts.get(&stream.name()).copied().unwrap_or_default();
            self.stream = Some(stream.clone());
            self.tip = start;
            self.first = start.next_sequence;
        }
        let name = stream.name();
        if sequence != self.tip.next_sequence {
            return Err(BackupError::Damaged(format!(
                "stream {name} in the backup has sequence {sequence} where {} was due",
                self.tip.next_sequence
            )));
        }
        let hash = match stream {
            StreamId::Directory => {
                check_record::<DirectoryEvent>(&name, sequence, value, &self.tip)?.1
            }
            StreamId::Product(_) => {
                check_record::<ProductEvent>(&name, sequence, value, &self.tip)?.1
            }
            StreamId::Raft(_) => {
                check_record::<ReplicationRecord>(&name, sequence, value, &self.tip)?.1
            }
        };
        self.tip = StreamTip {
            next_sequence: sequence + 1,
            last_hash: hash,
        };
        if self.snapshots.is_some() {
            self.pending.push(value.to_vec());
            if self.pending.len() >= IMPORT_BATCH {
                self.flush(journal)?;
            }
        }
        Ok(())
    }

    /// Writes the checked records not written yet.
    fn flush(&mut self, journal: &Journal) -> Result<(), BackupError> {
        if let Some(stream) = &self.stream {
            if !self.pending.is_empty() {
                let records = std::mem::take(&mut self.pending);
                let count = records.len() as u64;
                journal.write_records(&stream.name(), self.first, records)?;
                self.first += count;
            }
        }
        Ok(())
    }
}

/// What the first pass over a backup found.
struct Checked {
    summary: BackupSummary,
    /// Where each stream starts (its index entry: a purge tip, or the default).
    starts: BTreeMap<String, StreamTip>,
}

/// Checks a backup file's framing and hash without writing anything; returns what it
/// holds.
pub fn check_backup(file: &Path) -> Result<BackupSummary, BackupError> {
    Ok(read_entries(file, |_, _, _| Ok(()))?.summary)
}

/// Reads a backup file, calling `each(tree, key, value)` for every entry, and checks the
/// hash at the end. Entries are handed out before the hash is known: the caller reads the
/// file once without writing anything before it acts on the entries.
fn read_entries(
    file: &Path,
    mut each: impl FnMut(u8, &[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<Checked, BackupError> {
    let f = std::fs::File::open(file)
        .map_err(|e| BackupError::Io(format!("cannot open {}: {e}", file.display())))?;
    let len = f.metadata().map_err(io)?.len();
    let cut = |what: &str| {
        BackupError::Damaged(format!(
            "{} is not a complete slotpool backup ({what})",
            file.display()
        ))
    };
    if len < (MAGIC.len() + 1 + 32) as u64 {
        return Err(cut("too short"));
    }
    let mut r = BufReader::with_capacity(1 << 20, f).take(len - 32);
    let mut hash = Sha256::new();
    let mut read = |n: usize, hash: &mut Sha256| -> Result<Vec<u8>, BackupError> {
        let mut buf = vec![0; n];
        r.read_exact(&mut buf).map_err(|_| cut("cut short"))?;
        hash.update(&buf);
        Ok(buf)
    };
    if read(MAGIC.len(), &mut hash)? != MAGIC {
        return Err(cut("no slotpool-backup 1 header"));
    }
    let mut summary = BackupSummary::default();
    let mut starts = BTreeMap::new();
    loop {
        let tree = read(1, &mut hash)?[0];
        if tree == END {
            break;
        }
        if tree != TREE_JOURNAL && tree != TREE_SNAPSHOTS {
            return Err(cut("unknown entry"));
        }
        let klen = be_u32(&read(4, &mut hash)?) as usize;
        if klen > 1 << 16 {
            return Err(cut("key too long"));
        }
        let key = read(klen, &mut hash)?;
        let vlen = u64::from(be_u32(&read(4, &mut hash)?));
        if vlen > len {
            return Err(cut("value longer than the file"));
        }
        let value = read(vlen as usize, &mut hash)?;
        if tree == TREE_JOURNAL {
            if key.first() == Some(&INDEX_PREFIX) {
                let name = String::from_utf8_lossy(&key[1..]).into_owned();
                let start =
                    PurgedTip::decode(&value).ok_or_else(|| cut("a damaged index entry"))?;
                starts.insert(name, start);
            } else {
                summary.records += 1;
            }
        } else {
            summary.snapshots += 1;
        }
        each(tree, &key, &value)?;
    }
    summary.streams = starts.len();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).map_err(io)?;
    if !rest.is_empty() {
        return Err(cut("bytes after the end"));
    }
    let mut trailer = [0u8; 32];
    let mut f = r.into_inner();
    f.read_exact(&mut trailer).map_err(|_| cut("no hash"))?;
    if hash.finalize()[..] != trailer[..] {
        return Err(BackupError::Damaged(format!(
            "{} fails its checksum: altered or cut short",
            file.display()
        )));
    }
    Ok(Checked { summary, starts })
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, x| (n << 8) | u32::from(*x))
}
