//! The offline tools: `audit`, `analyze` and `simulate` read a data directory or access
//! logs, never a running service, and reuse the pure core for every rule.
//!
//! - `audit.rs`: `slotpool audit`: a product's state at an instant, a user's timeline,
//!   peaks, from the journal alone (through `slotpool_events::History`).
//! - `access_log.rs`: the nginx/Apache combined and Atlassian access log parsers.
//! - `analyze.rs`: `slotpool analyze`: sessions from access logs, peak concurrency, heavy
//!   users, the recommended pool size.
//! - `simulate.rs`: `slotpool simulate`: recorded demand replayed against other settings
//!   through `ProductState::decide`/`apply` in virtual time.
//! - `memory.rs`: long reads keep the memory they free for reuse (mimalloc's purge delay).
//!
//! This module holds what they share: opening a data directory with clear errors,
//! reading a product stream with a progress bar, instants and output formats.

pub mod access_log;
pub mod analyze;
pub mod audit;
pub mod memory;
pub mod simulate;

use crate::failure::Failure;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use slotpool_events::{Envelope, ProductEvent, StreamId, Timestamp};
use slotpool_journal::{Durability, Journal, JournalConfig, JournalError, StreamTip};
use std::io::IsTerminal;
use std::path::Path;

/// How a report is written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON document.
    Json,
}

/// Opens the journal of a stopped service's data directory (or a copy) for reading.
///
/// A missing directory or one without a journal, and a journal that another process
/// (a running service) holds locked, are [`Failure::Data`] with what to do about it.
pub fn open_data_dir(data_dir: &Path) -> Result<Journal, Failure> {
    if !data_dir.is_dir() {
        return Err(Failure::Data(format!(
            "data directory {} does not exist",
            data_dir.display()
        )));
    }
    if !data_dir.join("db").is_file() {
        return Err(Failure::Data(format!(
            "{} is not a slotpool data directory (no journal found)",
            data_dir.display()
        )));
    }
    let config = JournalConfig {
        durability: Durability::Process,
        cache_bytes: 256 * 1024 * 1024,
        ..JournalConfig::default()
    };
    Journal::open(data_dir, config).map_err(|e| {
        let text = e.to_string();
        if text.contains("lock") {
            Failure::Data(format!(
                "{} is in use by a running slotpool service (its journal is locked). \
                 Stop the service, or audit a consistent copy made with \
                 `slotpool backup --data-dir {} --out COPY` ({text})",
                data_dir.display(),
                data_dir.display()
            ))
        } else {
            Failure::Data(format!("{text} (is it a slotpool data directory?)"))
        }
    })
}

/// Maps a journal error met while reading to [`Failure::Data`] (exit 4, as `serve`
/// refuses a damaged journal; only `verify` exits 1), naming stream and sequence.
pub fn read_failure(e: JournalError) -> Failure {
    match e {
        JournalError::Corrupt { .. } => Failure::Data(format!(
            "{e}; `slotpool verify` checks the whole journal, a backup may hold an intact copy"
        )),
        other => Failure::Data(other.to_string()),
    }
}

/// The stream of `product`, if the journal has one.
pub fn product_stream(journal: &Journal, product: &str) -> Result<StreamId, Failure> {
    let stream = StreamId::product(product).map_err(|e| Failure::Input(e.to_string()))?;
    let streams = journal.streams().map_err(read_failure)?;
    if !streams.contains(&stream) {
        let mut known: Vec<String> = streams
            .iter()
            .filter_map(|s| match s {
                StreamId::Product(p) => Some(p.clone()),
                StreamId::Directory | StreamId::Raft(_) => None,
            })
            .collect();
        known.sort();
        return Err(Failure::Input(format!(
            "the journal has no product {product:?} (products: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(stream)
}

/// Reads `stream` from the start, checking every record and the hash chain (on several
/// threads: `Journal::replay_parallel`), handing each envelope to `f` in order until it
/// returns false; a progress bar on a terminal's stderr.
pub fn read_stream(
    journal: &Journal,
    stream: &StreamId,
    mut f: impl FnMut(&Envelope<ProductEvent>) -> bool,
) -> Result<u64, Failure> {
    let total = journal.last_sequence(stream).unwrap_or(0);
    let bar = progress(total, "reading journal");
    let mut read = 0u64;
    let result = journal.replay_parallel(stream, StreamTip::default(), |env| {
        read += 1;
        if read % 65_536 == 0 {
            bar.set_position(read);
        }
        f(env)
    });
    bar.finish_and_clear();
    result.map_err(read_failure)?;
    Ok(read)
}

/// A progress bar of `total` steps on stderr, drawn only when stderr is a terminal.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Parses an RFC 3339 instant (`2026-11-23T10:00:00Z`, `...+01:00`, with or without
/// fractions of a second).
pub fn parse_instant(text: &str) -> Result<Timestamp, Failure> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
        .map_err(|e| {
            Failure::Input(format!(
                "--at {text:?} is not an RFC 3339 instant such as 2026-11-23T10:00:00Z ({e})"
            ))
        })
}

/// An instant as RFC 3339 UTC with milliseconds, as the admin API writes them.
pub fn rfc3339(t: Timestamp) -> String {
    crate::view::rfc3339(t)
}

/// Writes rows as CSV to stdout, every cell made safe for spreadsheets
/// ([`spreadsheet_safe`]).
pub fn write_csv(header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let io = |e: csv::Error| Failure::Runtime(format!("cannot write the report: {e}"));
    w.write_record(header).map_err(io)?;
    for r in rows {
        for cell in r {
            w.write_field(spreadsheet_safe(cell).as_bytes())
                .map_err(io)?;
        }
        w.write_record(None::<&[u8]>).map_err(io)?;
    }
    w.flush()
        .map_err(|e| Failure::Runtime(format!("cannot write the report: {e}")))
}

/// A CSV cell that a spreadsheet will not run as a formula (CSV injection, as OWASP
/// advises): a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'`, unless the whole cell is a plain number (a negative count stays a
/// number). User names and administrators' texts reach reports unchanged otherwise.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().map_or(true, |n| !n.is_finite()) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Writes rows as aligned columns to stdout, under a title line.
pub fn write_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    println!("{title}");
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    println!();
}

/// Writes a value as pretty JSON to stdout.
pub fn write_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Runtime(format!("cannot write the report: {e}")))?;
    println!("{text}");
    Ok(())
}
