//! The acknowledged watermark: beside sled's files, `journal.tips` records for every
//! stream the last sequence a group flush made durable (and so may have acknowledged).
//!
//! Why: sled recovers its log up to the last intact message, which is right after a crash
//! in the middle of a write, but means that a log whose tail was cut (a truncated file,
//! a copy cut short) opens as a shorter, valid-looking journal: every hash chain checks
//! out, and the lost records are simply not there. The watermark, kept outside sled's log,
//! tells such a journal apart: a stream that ends before its watermark has lost records
//! that were made durable, and opening it is refused.
//!
//! The file is written after the flush it describes (to a temporary file, then renamed),
//! so it is never ahead of the journal: after any crash it is at most behind, which only
//! weakens the check, never raises a false alarm. It is rewritten at most every 100 ms
//! (while appends keep coming, and once more 100 ms after they stop) and at once when the
//! journal closes: a cut that loses only the last 100 ms of appends may go unnoticed. It is
//! not `fsync`ed: a power loss may leave an older watermark, which again is only a weaker
//! check.

use crate::error::JournalError;
use crate::read::last_sequence;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name in the data directory.
pub const FILE: &str = "journal.tips";

/// Stream name -> last sequence made durable.
pub type Tips = BTreeMap<String, u64>;

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Reads the watermark; `None` when there is none (a new or restored data dir). A file
/// that does not parse is an error: it is ours, and damage to it is damage.
pub fn load(dir: &Path) -> Result<Option<Tips>, String> {
    let text = match std::fs::read_to_string(path(dir)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path(dir).display())),
    };
    let mut tips = Tips::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parsed = line
            .rsplit_once(' ')
            .and_then(|(name, seq)| Some((name.to_string(), seq.parse::<u64>().ok()?)));
        let Some((name, seq)) = parsed else {
            return Err(format!("{} has a bad line {line:?}", path(dir).display()));
        };
        tips.insert(name, seq);
    }
    Ok(Some(tips))
}

/// Replaces the watermark with `tips` (temporary file, then rename: old or new, never
/// torn).
pub fn store(dir: &Path, tips: &Tips) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    let mut text = String::new();
    for (name, seq) in tips {
        text.push_str(name);
        text.push(' ');
        text.push_str(&seq.to_string());
        text.push('\n');
    }
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path(dir))
}

/// Refuses a journal in which a stream ends before its acknowledged watermark (records
/// made durable are missing: its files lost their tail); returns the watermark to go on
/// from.
pub(crate) fn check(dir: &Path, tree: &sled::Tree) -> Result<Tips, JournalError> {
    let damaged = |message: String| JournalError::Damaged {
        path: dir.display().to_string(),
        message,
    };
    let Some(tips) = load(dir).map_err(damaged)? else {
        return Ok(Tips::new());
    };
    for (name, acknowledged) in &tips {
        let last = last_sequence(tree, name).map_err(|e| damaged(e.to_string()))?;
        if last < *acknowledged {
            return Err(damaged(format!(
                "stream {name} ends at sequence {last}, but sequence {acknowledged} was made durable ({}): records were lost from the end of the journal's files",
                FILE
            )));
        }
    }
    Ok(tips)
}

/// Raises the watermark to `durable` (stream -> last sequence made durable) where that is
/// further on, and sets it to exactly that for the streams in `cut` (their tail was
/// truncated, so the log's tip is the true one even where it is lower).
pub(crate) fn raise(
    dir: &Path,
    durable: &std::collections::HashMap<String, u64>,
    cut: &std::collections::HashSet<String>,
) -> Result<(), JournalError> {
    let damaged = |message: String| JournalError::Damaged {
        path: dir.display().to_string(),
        message,
    };
    let mut tips = load(dir).map_err(damaged)?.unwrap_or_default();
    for (name, &sequence) in durable {
        let tip = tips.entry(name.clone()).or_insert(0);
        *tip = if cut.contains(name) {
            sequence
        } else {
            (*tip).max(sequence)
        };
    }
    store(dir, &tips).map_err(|e| JournalError::Open {
        path: dir.display().to_string(),
        message: format!("cannot write {}: {e}", FILE),
    })
}

/// The live watermark of an open journal: the last sequence appended per stream, and the
/// version of it last written to [`FILE`]. Owns both locks (std Mutexes: each is held for
/// a map update or one small file write, never across an await).
///
/// Versions keep writers in order: the committer writes a copy it took before a flush,
/// while a cut of a stream ([`crate::Journal::truncate_after`]) writes the lowered tips at
/// once; a copy older than what the file already holds is never written over it.
#[derive(Default)]
pub(crate) struct Watermark {
    appended: std::sync::Mutex<Appended>,
    /// The version last written to the file.
    written: std::sync::Mutex<u64>,
}

#[derive(Default)]
struct Appended {
    tips: Tips,
    /// Whether `tips` changed since the last [`Watermark::take_changed`].
    changed: bool,
    version: u64,
}

impl Watermark {
    /// Starts from `tips` (what the file and the log said at open).
    pub(crate) fn new(tips: Tips) -> Watermark {
        Watermark {
            appended: std::sync::Mutex::new(Appended {
                tips,
                changed: false,
                version: 0,
            }),
            written: std::sync::Mutex::new(0),
        }
    }

    /// Stream `name` now ends at `sequence` (appended, or cut back to it); returns the
    /// version of the tips that says so.
    pub(crate) fn set(&self, name: &str, sequence: u64) -> u64 {
        let mut a = crate::lock::lock(&self.appended);
        match a.tips.get_mut(name) {
            Some(tip) => *tip = sequence,
            None => {
                a.tips.insert(name.to_string(), sequence);
            }
        }
        a.changed = true;
        a.version += 1;
        a.version
    }

    /// A copy of the tips if they changed since the last call, with its version.
    pub(crate) fn take_changed(&self) -> Option<(u64, Tips)> {
        let mut a = crate::lock::lock(&self.appended);
        let changed = std::mem::replace(&mut a.changed, false);
        changed.then(|| (a.version, a.tips.clone()))
    }

    /// Writes `tips` (of `version`) to the file in `dir`, unless a newer version is there.
    pub(crate) fn write(&self, dir: &Path, version: u64, tips: &Tips) {
        let mut written = crate::lock::lock(&self.written);
        if version < *written {
            return;
        }
        match store(dir, tips) {
            Ok(()) => *written = version,
            Err(e) => tracing::warn!(error = %e, "journal watermark not written"),
        }
    }

    /// Lowers stream `name`'s entry of the file in `dir` to at most `sequence`, leaving
    /// the others as the file has them (never ahead of what is durable), and marks the
    /// file as of `version` (what [`Watermark::set`] returned), so that no copy taken
    /// before the cut raises it again.
    pub(crate) fn lower_in_file(&self, dir: &Path, name: &str, sequence: u64, version: u64) {
        let mut written = crate::lock::lock(&self.written);
        let mut tips = match load(dir) {
            Ok(tips) => tips.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "journal watermark not lowered");
                return;
            }
        };
        match tips.get_mut(name) {
            Some(tip) if *tip > sequence => *tip = sequence,
            _ => {}
        }
        match store(dir, &tips) {
            Ok(()) => *written = (*written).max(version),
            Err(e) => tracing::warn!(error = %e, "journal watermark not lowered"),
        }
    }
}
