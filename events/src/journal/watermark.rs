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
