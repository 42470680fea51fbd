//! Backups: a consistent copy of a data dir's journal and snapshots, taken from a running
//! service or a stopped one, and its restore.
//!
//! sled lets one process open a database, so a running service's data dir cannot be
//! read by another process, and copying its files under it gives a torn copy. The service
//! itself therefore exports (`POST /admin/v1/backup`), and `slotpool backup` either asks it
//! (when the data dir is locked) or exports itself (when the service is stopped).
//!
//! Why the export is consistent while the service writes: a stream's records are never
//! changed once written. The export reads each stream's last sequence once, then copies
//! records 1..=that sequence, its index entry, and only the snapshots that do not go past
//! it. Every stream is thus a prefix of itself: exactly what a crash at some moment could
//! have left, which recovery already handles (it re-sends every deactivation to every
//! product, repairing a directory stream that is ahead of a product stream). Records not
//! yet acknowledged may be included, as after a crash; an acknowledged change made before
//! the backup started is always in it.
//!
//! File format (version 1): the line `slotpool-backup 1\n`, then entries
//! `tree (1 byte: 1 journal, 2 snapshots) ++ key length (u32 BE) ++ key ++ value length
//! (u32 BE) ++ value`, then the byte 0 (end), then the SHA-256 of everything before it.
//! A backup cut short or altered fails its hash and is refused by `restore`.

use crate::Failure;
use sha2::{Digest, Sha256};
use slotpool_events::journal::record_key;
use slotpool_events::{Durability, Journal, JournalConfig, JournalError};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The first line of every backup file.
pub const MAGIC: &[u8] = b"slotpool-backup 1\n";
const TREE_JOURNAL: u8 = 1;
const TREE_SNAPSHOTS: u8 = 2;
const END: u8 = 0;
const INDEX_PREFIX: u8 = 0x01;

/// What a backup holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Streams copied.
    pub streams: usize,
    /// Journal records copied.
    pub records: u64,
    /// Snapshots copied.
    pub snapshots: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} streams, {} records, {} snapshots",
            self.streams, self.records, self.snapshots
        )
    }
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

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Writes a consistent backup of `journal` (see the module doc) to `out`.
pub fn export(journal: &Journal, out: impl Write) -> Result<Summary, String> {
    let records = journal.open_tree("journal").map_err(io)?;
    let snapshots = journal.open_tree("snapshots").map_err(io)?;
    let mut w = Hashing {
        inner: BufWriter::with_capacity(1 << 20, out),
        hash: Sha256::new(),
    };
    w.write_all(MAGIC).map_err(io)?;
    let mut summary = Summary::default();
    for stream in journal.streams().map_err(io)? {
        let name = stream.name();
        // The stream's snapshots before its records: the store keeps only the latest
        // two, so under load those that exist once the records are read may all be newer
        // than the last record read, and useless without it.
        let stream_snapshots = snapshots
            .range(record_key(&name, 0)..=record_key(&name, u64::MAX))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        // Each record as stored, wherever it lives (loose or packed in a chunk by the
        // compactor, which may move records while this runs), written back loose.
        let mut last = 0;
        let mut written = Ok(());
        journal
            .raw_records(&stream, |sequence, record| {
                written = entry(&mut w, TREE_JOURNAL, &record_key(&name, sequence), record);
                last = sequence;
                written.is_ok()
            })
            .map_err(io)?;
        written.map_err(io)?;
        if last == 0 {
            continue;
        }
        summary.records += last;
        let upto = record_key(&name, last);
        let mut index = vec![INDEX_PREFIX];
        index.extend_from_slice(name.as_bytes());
        if let Some(v) = records.get(&index).map_err(io)? {
            entry(&mut w, TREE_JOURNAL, &index, &v).map_err(io)?;
        }
        for (k, v) in stream_snapshots.iter().filter(|(k, _)| k[..] <= upto[..]) {
            entry(&mut w, TREE_SNAPSHOTS, k, v).map_err(io)?;
            summary.snapshots += 1;
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

/// Checks a backup file's framing and hash without writing anything; returns what it holds.
pub fn check(file: &Path) -> Result<Summary, String> {
    read_entries(file, |_, _, _| Ok(()))
}

/// Reads a backup file, calling `each(tree, key, value)` for every entry, and checks the
/// hash at the end. Entries are handed out before the hash is known: the caller must
/// throw away what it did if this fails.
fn read_entries(
    file: &Path,
    mut each: impl FnMut(u8, &[u8], &[u8]) -> Result<(), String>,
) -> Result<Summary, String> {
    let f =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let len = f.metadata().map_err(io)?.len();
    let cut = |what: &str| {
        format!(
            "{} is not a complete slotpool backup ({what})",
            file.display()
        )
    };
    if len < (MAGIC.len() + 1 + 32) as u64 {
        return Err(cut("too short"));
    }
    let mut r = BufReader::with_capacity(1 << 20, f).take(len - 32);
    let mut hash = Sha256::new();
    let mut read = |n: usize, hash: &mut Sha256| -> Result<Vec<u8>, String> {
        let mut buf = vec![0; n];
        r.read_exact(&mut buf).map_err(|_| cut("cut short"))?;
        hash.update(&buf);
        Ok(buf)
    };
    if read(MAGIC.len(), &mut hash)? != MAGIC {
        return Err(cut("no slotpool-backup 1 header"));
    }
    let mut summary = Summary::default();
    let mut streams = std::collections::BTreeSet::new();
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
                streams.insert(key.clone());
            } else {
                summary.records += 1;
            }
        } else {
            summary.snapshots += 1;
        }
        each(tree, &key, &value)?;
    }
    summary.streams = streams.len();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).map_err(io)?;
    if !rest.is_empty() {
        return Err(cut("bytes after the end"));
    }
    let mut trailer = [0u8; 32];
    let mut f = r.into_inner();
    f.read_exact(&mut trailer).map_err(|_| cut("no hash"))?;
    if hash.finalize()[..] != trailer[..] {
        return Err(format!(
            "{} fails its checksum: altered or cut short",
            file.display()
        ));
    }
    Ok(summary)
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, x| (n << 8) | u32::from(*x))
}

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
            export(&journal, f)
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
    let summary = check(&partial).map_err(|e| {
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
    let token = match std::env::var("SLOTPOOL_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => std::fs::read_to_string(data_dir.join("admin_token"))
            .map(|t| t.trim().to_string())
            .map_err(|_| {
                Failure::Data(format!(
                    "{} is in use by a running service; set SLOTPOOL_ADMIN_TOKEN so that it can be asked for the backup",
                    data_dir.display()
                ))
            })?,
    };
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
    // Check the whole file before writing anything.
    check(from).map_err(Failure::Damaged)?;
    let journal = Journal::open(
        data_dir,
        JournalConfig {
            durability: Durability::Fsync,
            ..JournalConfig::default()
        },
    )
    .map_err(|e| Failure::Data(e.to_string()))?;
    let records = journal
        .open_tree("journal")
        .map_err(|e| Failure::Data(e.to_string()))?;
    let snapshots = journal
        .open_tree("snapshots")
        .map_err(|e| Failure::Data(e.to_string()))?;
    let summary = read_entries(from, |tree, k, v| {
        let t = if tree == TREE_JOURNAL {
            &records
        } else {
            &snapshots
        };
        t.insert(k, v).map(|_| ()).map_err(io)
    })
    .map_err(Failure::Damaged)?;
    records
        .flush()
        .map_err(|e| Failure::Runtime(format!("flush failed: {e}")))?;
    journal
        .shutdown()
        .map_err(|e| Failure::Runtime(format!("final flush failed: {e}")))?;
    drop((records, snapshots, journal));
    println!("restore: {summary} into {}", data_dir.display());
    // The result must check out exactly as `slotpool verify` checks a data dir.
    crate::verify::run(data_dir).map_err(|e| match e {
        Failure::Damaged(why) => {
            Failure::Damaged(format!("the restored data dir does not verify: {why}"))
        }
        other => other,
    })
}
