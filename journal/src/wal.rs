//! The write-ahead log (`wal/` in the data directory): what makes an append durable.
//!
//! Why: making a group of appends durable through sled costs sled's `flush()` (a `pwrite`
//! and `sync_file_range` on one of sled's I/O threads, whose pool wakes all seven of its
//! threads for every job) and then an `fdatasync` of sled's file, for every group. Under
//! `make load` that was 15% of the server's CPU in sled's I/O threads alone and 0.4 to
//! 0.7 ms per group. With the log, a group is one `write` of the appends' bytes and one
//! `fdatasync` of a file the journal owns; sled keeps the records (every read goes to
//! sled) and is made durable in bulk, once per segment, by a checkpoint.
//!
//! Layout: segment files named `<generation, 16 hex digits>.wal`, written from the start,
//! one *frame* per group: `length u32 | crc32 u32 | generation u64 | payload` (little
//! endian; the checksum covers generation and payload). The payload holds one record per
//! append: `entries u32`, then per entry `key length u32 | value length u32 | key | value`,
//! exactly the keys and values the append inserted into sled as one atomic batch.
//!
//! The end of a segment is the first frame that does not check out: its length runs past
//! the file, its checksum fails (a torn last write, never acknowledged since its
//! `fdatasync` never returned) or its generation is not the segment's (what is left of
//! the file's previous life: segments are recycled so that, once warm, writes overwrite
//! blocks the file system has already allocated and `fdatasync` need not commit
//! metadata).
//!
//! A segment made from nothing is first filled with zeros and synced, for the same reason
//! (PostgreSQL's `wal_init_zero`): appending to an empty file makes every `fdatasync`
//! write the inode and the block map too. On ext4 under `make load`, group flushes took
//! 0.24 ms on average into a growing file and 0.18 ms into a zero-filled one, and fewer
//! of them took over 2.5 ms. A zero frame header ends the segment like any other.
//!
//! Checkpoint: when a segment is full the committer moves on to the next one (prepared in
//! advance) and the checkpointer flushes sled and `fdatasync`s its file: every record in
//! the full segment is then in sled's durable files, and the segment is recycled as the
//! next spare. Closing the journal checkpoints and removes the log.
//!
//! Recovery ([`replay`]): when the journal opens, before anything reads it, every record
//! in the log that sled lacks (sled may have lost what it had not synced) is inserted
//! again. A record that would leave a gap in its stream is damage.
//!
//! Architecture Invariant: sled never holds less than the log says was made durable,
//! once [`replay`] has run; the log is only ever read by [`replay`].

use crate::error::JournalError;
use crate::keys::{split_key, Cut, CUT_PREFIX, INDEX_PREFIX};
use crate::read::last_sequence;
use crate::tree_cut::{apply_cut, end_after};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The log's directory, inside the data directory.
pub const DIR: &str = "wal";

/// A segment this full is closed at the next group and checkpointed. Recovery replays at
/// most about this much (plus the next segment's start): about 90,000 appends, well under
/// a second.
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// Frame header: length, checksum, generation.
const HEADER: usize = 16;

/// The file of segment `generation`.
pub fn segment_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{generation:016x}.wal"))
}

/// The segments in `dir`, oldest first. Other files are left alone.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if hex.len() != 16 {
            continue;
        }
        if let Ok(generation) = u64::from_str_radix(hex, 16) {
            found.push((generation, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Adds one append's record (the keys and values it inserts into sled, as one batch) to
/// the frame being filled for the next group.
pub fn push_record<'a>(
    frame: &mut Vec<u8>,
    entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
) {
    if frame.is_empty() {
        frame.resize(HEADER, 0);
    }
    frame.extend_from_slice(&len32(entries.len()).to_le_bytes());
    for (key, value) in entries {
        frame.extend_from_slice(&len32(key.len()).to_le_bytes());
        frame.extend_from_slice(&len32(value.len()).to_le_bytes());
        frame.extend_from_slice(key);
        frame.extend_from_slice(value);
    }
}

/// Keys, values and record counts are far below 4 GiB (HTTP bodies are limited to a few
/// megabytes); a length that does not fit is a bug, not input.
fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a journal record under 4 GiB")
}

/// One open segment, written by the committer alone.
pub struct Segment {
    generation: u64,
    path: PathBuf,
    file: File,
    written: u64,
}

impl Segment {
    /// Creates segment `generation` (or reuses `recycled`, renamed to it), and makes its
    /// name durable before anything is written to it: a frame in a file whose name a
    /// power loss could take back would be lost with it.
    ///
    /// A created segment's first `preallocate` bytes are written with zeros and synced
    /// (see the module comment); 0 leaves it empty, for a log that is never synced.
    pub fn prepare(
        dir: &Path,
        generation: u64,
        recycled: Option<PathBuf>,
        preallocate: u64,
    ) -> io::Result<Segment> {
        let path = segment_path(dir, generation);
        let file = match recycled {
            Some(old) => {
                std::fs::rename(&old, &path)?;
                std::fs::OpenOptions::new().write(true).open(&path)?
            }
            None => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)?;
                if preallocate > 0 {
                    fill_with_zeros(&file, preallocate)?;
                    file.sync_all()?;
                }
                file
            }
        };
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            generation,
            path,
            file,
            written: 0,
        })
    }

    /// The segment's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written to it so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Seals `frame` (filled by [`push_record`]) with its header and writes it after the
    /// frames before it; `sync` makes it durable (`fdatasync`) before returning.
    pub fn write_frame(&mut self, frame: &mut [u8], sync: bool) -> io::Result<()> {
        if frame.len() <= HEADER {
            return Ok(());
        }
        let payload_len = len32(frame.len() - HEADER);
        frame[8..16].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32fast::hash(&frame[8..]);
        frame[0..4].copy_from_slice(&payload_len.to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(frame, self.written)?;
        self.written += frame.len() as u64;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// Writes `len` zero bytes at the start of `file`, a mebibyte at a time.
fn fill_with_zeros(file: &File, len: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The frames of segment `generation`, in order, up to its end (see the module comment):
/// each frame's payload.
fn frames(bytes: &[u8], generation: u64) -> impl Iterator<Item = &[u8]> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let header = bytes.get(at..at + HEADER)?;
        let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
        let frame_generation = u64::from_le_bytes(header[8..16].try_into().ok()?);
        if len == 0 || frame_generation != generation {
            return None;
        }
        let checked = bytes.get(at + 8..at + HEADER + len)?;
        if crc32fast::hash(checked) != crc {
            return None;
        }
        at += HEADER + len;
        Some(&checked[8..])
    })
}

/// One append's keys and values, as logged.
type Record<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The records of one frame's payload. A frame that checks out but does not parse was
/// written wrong: `None`.
fn records(payload: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let out = payload.get(at..at.checked_add(n)?)?;
        at += n;
        Some(out)
    };
    let mut out = Vec::new();
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    while let Some(count) = take(4) {
        let count = u32_at(count);
        let mut entries = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let lengths = take(8)?;
            let (key_len, value_len) = (u32_at(&lengths[..4]), u32_at(&lengths[4..]));
            let key = take(key_len)?;
            let value = take(value_len)?;
            entries.push((key, value));
        }
        out.push(entries);
    }
    (at == payload.len()).then_some(out)
}

/// What [`replay`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// The newest generation in the log (0 for none): the next segment is the one after.
    pub last_generation: u64,
    /// Records inserted into sled (its files had lost them).
    pub records: u64,
    /// Every segment file read: once sled is durable they may go.
    pub segments: Vec<PathBuf>,
    /// The last sequence of every stream the log has records of (all made durable).
    pub tips: HashMap<String, u64>,
    /// The streams the log cut ([`crate::cut`]): their tip in `tips` is right even where
    /// it is lower than the watermark's.
    pub cut: HashSet<String>,
}

/// Inserts into `tree` every record of the log in `dir` that it lacks, in order.
///
/// A record whose sequence is at or below its stream's last one in `tree` is already
/// there; the next one is inserted; one further on would leave a gap, and is reported as
/// damage naming the stream and the missing sequence (sled lost records the log no longer
/// covers). The caller makes `tree` durable before removing the log.
pub fn replay(dir: &Path, tree: &sled::Tree) -> Result<Replayed, JournalError> {
    let io_error = |e: io::Error| JournalError::Open {
        path: dir.display().to_string(),
        message: format!("cannot read the write-ahead log: {e}"),
    };
    let mut replayed = Replayed::default();
    let mut tips: HashMap<String, u64> = HashMap::new();
    let mut logged = Vec::new();
    for (generation, path) in segments(dir).map_err(io_error)? {
        let bytes = std::fs::read(&path).map_err(io_error)?;
        logged.push((generation, path, bytes));
    }
    let appends = appends(&logged)?;
    let truncations = truncations(&appends);
    // `position` places each append in the log, as `truncations` are placed.
    for (position, (path, entries)) in (1u64..).zip(&appends) {
        let mut batch = sled::Batch::default();
        let mut any = false;
        for &(key, value) in entries {
            if key.first() == Some(&CUT_PREFIX) {
                let Some((name, cut)) = Cut::parse(key, value) else {
                    return Err(JournalError::Damaged {
                        path: path.display().to_string(),
                        message: "a write-ahead log entry cuts a stream but does not parse".into(),
                    });
                };
                if any {
                    tree.apply_batch(std::mem::take(&mut batch))?;
                    any = false;
                }
                apply_cut(tree, &name, &cut)?;
                let end = end_after(tree, &name, &cut)?;
                tips.insert(name.clone(), end);
                replayed.cut.insert(name);
                continue;
            }
            if key.first() == Some(&INDEX_PREFIX) {
                if tree.get(key)?.is_none() {
                    batch.insert(key, value);
                    any = true;
                }
                continue;
            }
            let Some((name, sequence)) = split_key(key) else {
                return Err(JournalError::Damaged {
                    path: path.display().to_string(),
                    message: "a write-ahead log record has a malformed key".into(),
                });
            };
            let tip = match tips.get_mut(&name) {
                Some(tip) => tip,
                None => {
                    let last = last_sequence(tree, &name)?;
                    tips.entry(name.clone()).or_insert(last)
                }
            };
            if sequence <= *tip || truncated_later(&truncations, &name, position, sequence) {
                continue;
            }
            if sequence != *tip + 1 {
                return Err(JournalError::Damaged {
                            path: path.display().to_string(),
                            message: format!(
                                "stream {name} is missing sequence {}: sled's files end at sequence {} and the write-ahead log goes on from sequence {sequence}",
                                *tip + 1,
                                *tip
                            ),
                        });
            }
            *tip = sequence;
            batch.insert(key, value);
            any = true;
            replayed.records += 1;
        }
        if any {
            tree.apply_batch(batch)?;
        }
    }
    for (generation, path, _) in &logged {
        replayed.last_generation = *generation;
        replayed.segments.push(path.clone());
    }
    replayed.tips = tips;
    Ok(replayed)
}

/// Every truncation in the log, per stream: the position of its append and the
/// sequence it keeps up to, in log order.
type Truncations = HashMap<String, Vec<(u64, u64)>>;

/// Every append of the log in `logged` (each segment's generation, path and bytes), in
/// order, with the segment it is in.
fn appends(logged: &[(u64, PathBuf, Vec<u8>)]) -> Result<Vec<(&Path, Record<'_>)>, JournalError> {
    let mut out = Vec::new();
    for (generation, path, bytes) in logged {
        for payload in frames(bytes, *generation) {
            let Some(records) = records(payload) else {
                return Err(JournalError::Damaged {
                    path: path.display().to_string(),
                    message: "a write-ahead log frame checks out but does not parse".into(),
                });
            };
            out.extend(records.into_iter().map(|r| (path.as_path(), r)));
        }
    }
    Ok(out)
}

/// Finds the truncations among `appends`.
fn truncations(appends: &[(&Path, Record<'_>)]) -> Truncations {
    let mut found = Truncations::new();
    for (position, (_, entries)) in (1u64..).zip(appends) {
        for &(key, value) in entries {
            if key.first() != Some(&CUT_PREFIX) {
                continue;
            }
            if let Some((name, Cut::Truncate { after })) = Cut::parse(key, value) {
                found.entry(name).or_default().push((position, after));
            }
        }
    }
    found
}

/// Whether record `sequence` of stream `name`, at `position` in the log, is dropped by a
/// truncation further on: it is not put back (sled may already lack the records before
/// it, which would look like a gap), since the truncation would remove it again.
fn truncated_later(truncations: &Truncations, name: &str, position: u64, sequence: u64) -> bool {
    truncations.get(name).is_some_and(|cuts| {
        cuts.iter()
            .any(|&(at, after)| at > position && sequence > after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(records: &[Vec<(&[u8], &[u8])>]) -> Vec<u8> {
        let mut frame = Vec::new();
        for r in records {
            push_record(&mut frame, r.iter().copied());
        }
        frame
    }

    #[test]
    fn frames_read_back_until_a_torn_or_stale_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seg = Segment::prepare(dir.path(), 7, None, 0).expect("segment");
        let a: Vec<(&[u8], &[u8])> = vec![(b"k1", b"v1"), (b"k2", b"")];
        let b: Vec<(&[u8], &[u8])> = vec![(b"k3", b"value three")];
        seg.write_frame(&mut frame_of(std::slice::from_ref(&a)), true)
            .expect("write");
        seg.write_frame(&mut frame_of(&[b.clone(), a.clone()]), true)
            .expect("write");
        let bytes = std::fs::read(seg.path()).expect("read");
        let read: Vec<_> = frames(&bytes, 7)
            .map(|p| records(p).expect("parses"))
            .collect();
        assert_eq!(read, vec![vec![a.clone()], vec![b.clone(), a.clone()]]);
        // Another generation's frames are not this segment's.
        assert_eq!(frames(&bytes, 8).count(), 0);
        // Cut anywhere inside the second frame: only the first is left.
        let first_len = HEADER + 4 + 2 * 8 + 2 + 2 + 2;
        for cut in first_len..bytes.len() {
            assert_eq!(frames(&bytes[..cut], 7).count(), 1, "cut at {cut}");
        }
        // A flipped byte anywhere in the second frame ends the segment before it.
        for at in first_len..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert_eq!(frames(&flipped, 7).count(), 1, "flip at {at}");
        }
    }

    #[test]
    fn an_empty_frame_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seg = Segment::prepare(dir.path(), 1, None, 0).expect("segment");
        seg.write_frame(&mut Vec::new(), true).expect("write");
        assert_eq!(std::fs::metadata(seg.path()).expect("stat").len(), 0);
    }

    #[test]
    fn a_created_segment_is_zeros_and_reads_back_only_its_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = (1 << 20) + 100;
        let mut seg = Segment::prepare(dir.path(), 5, None, size).expect("segment");
        let bytes = std::fs::read(seg.path()).expect("read");
        assert_eq!(bytes.len() as u64, size);
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!(frames(&bytes, 5).count(), 0);
        let r: Vec<(&[u8], &[u8])> = vec![(b"k", b"v")];
        for _ in 0..2 {
            seg.write_frame(&mut frame_of(std::slice::from_ref(&r)), true)
                .expect("write");
        }
        let bytes = std::fs::read(seg.path()).expect("read");
        // Written over the zeros, not after them.
        assert_eq!(bytes.len() as u64, size);
        let read: Vec<_> = frames(&bytes, 5)
            .map(|p| records(p).expect("parses"))
            .collect();
        assert_eq!(read, vec![vec![r.clone()], vec![r.clone()]]);
    }

    #[test]
    fn a_recycled_segment_ends_where_the_new_generation_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r: Vec<(&[u8], &[u8])> = vec![(b"old", b"old value, longer than the new one")];
        let mut old = Segment::prepare(dir.path(), 1, None, 0).expect("segment");
        for _ in 0..3 {
            old.write_frame(&mut frame_of(std::slice::from_ref(&r)), true)
                .expect("write");
        }
        let old_path = old.path().to_path_buf();
        drop(old);
        let mut new = Segment::prepare(dir.path(), 3, Some(old_path.clone()), 0).expect("recycle");
        assert!(!old_path.exists());
        let n: Vec<(&[u8], &[u8])> = vec![(b"new", b"v")];
        new.write_frame(&mut frame_of(std::slice::from_ref(&n)), true)
            .expect("write");
        let bytes = std::fs::read(new.path()).expect("read");
        let read: Vec<_> = frames(&bytes, 3)
            .map(|p| records(p).expect("parses"))
            .collect();
        assert_eq!(read, vec![vec![n]]);
        assert_eq!(
            segments(dir.path()).expect("list"),
            vec![(3, segment_path(dir.path(), 3))]
        );
    }

    /// A log that still holds records a later truncation dropped, of which sled's files
    /// (which kept the truncation) lack the ones before: no gap is reported, and the
    /// records stay dropped.
    #[test]
    fn records_a_later_truncation_drops_are_not_put_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, tree) = crate::files::scratch_tree(dir.path());
        let name = "product/jira";
        for s in 1..=5u64 {
            tree.insert(crate::keys::record_key(name, s), &b"old"[..])
                .expect("insert");
        }
        let log_dir = dir.path().join(DIR);
        std::fs::create_dir_all(&log_dir).expect("mkdir");
        let mut seg = Segment::prepare(&log_dir, 1, None, 0).expect("segment");
        let mut frame = Vec::new();
        for s in 9..=10u64 {
            let key = crate::keys::record_key(name, s);
            push_record(&mut frame, std::iter::once((&key[..], &b"dropped"[..])));
        }
        let (k, v) = Cut::Truncate { after: 5 }.entry(name);
        push_record(&mut frame, std::iter::once((&k[..], &v[..])));
        let key = crate::keys::record_key(name, 6);
        push_record(&mut frame, std::iter::once((&key[..], &b"new"[..])));
        seg.write_frame(&mut frame, true).expect("write");
        let replayed = replay(&log_dir, &tree).expect("no gap is damage");
        assert_eq!(replayed.tips.get(name), Some(&6));
        assert!(replayed.cut.contains(name));
        let kept: Vec<_> = tree
            .range(crate::keys::record_range(name))
            .map(|r| r.expect("read").1.to_vec())
            .collect();
        assert_eq!(kept.len(), 6);
        assert_eq!(kept[5], b"new".to_vec());
    }
}
