//! `slotpool analyze`: from web access logs to the pool an organisation needs.
//!
//! A user is active from a request until `inactivity` after their last request: their
//! requests, grouped so, are *sessions* (`[start, last request + inactivity)`), which is
//! how slotpool itself would hold a slot for them. From the sessions:
//! - peak concurrent users (and when);
//! - heavy users: the top N by active time, with their share of the *busy time* (the time
//!   anyone at all was active). A user active for most of it holds a slot most of the
//!   time anyway and is cheaper on a fixed licence, which also leaves the pool to others;
//! - the recommended shared-slot count for a target share of logins served at once: a
//!   login (a session's start) is served at once with `s` slots when fewer than `s` other
//!   sessions are active at that instant. This ignores the queue's feedback (a queued
//!   login starts later); `slotpool simulate` replays the sessions through the real rules.

use super::access_log::{parse_line, Hit, Line, LogFormat};
use super::{progress, rfc3339, write_csv, write_json, write_table, Format};
use crate::failure::Failure;
use serde_json::json;
use slotpool_events::Timestamp;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `slotpool analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Access log files to read (read in order; their lines need not be sorted).
    #[arg(long = "log", required = true, num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// The log format (`auto` decides per line).
    #[arg(long = "format", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// How long after their last request a user still counts as active (e.g. 30m, 1h).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub inactivity: Duration,
    /// The share of logins that should get a slot at once (0 < target <= 1).
    #[arg(long, default_value_t = 0.95)]
    pub target: f64,
    /// How many heavy users to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Output format (`--format` names the log format here).
    #[arg(long = "output", value_enum, default_value = "table")]
    pub format: Format,
}

/// One user's stretch of activity: requests no more than `inactivity` apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub user: String,
    /// The first request.
    pub start: Timestamp,
    /// Every request, in order (the first is `start`).
    pub hits: Vec<Timestamp>,
    /// The last request plus the inactivity time: when the user stops counting as active.
    pub end: Timestamp,
}

/// What reading the logs found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines read.
    pub lines: u64,
    /// Requests of known users.
    pub hits: u64,
    /// Requests without a user.
    pub anonymous: u64,
    /// Lines that could not be read.
    pub malformed: u64,
    /// The first few malformed lines: file, line number and why.
    pub examples: Vec<String>,
}

impl LogStats {
    /// Warns on stderr (not in the report, which may be JSON on stdout) when lines were
    /// skipped, quoting the first few.
    pub fn warn_malformed(&self) {
        if self.malformed > 0 {
            eprintln!(
                "slotpool: warning: {} of {} lines could not be read and were skipped; first: {}",
                self.malformed,
                self.lines,
                self.examples.join("; ")
            );
        }
    }
}

/// How many malformed lines are quoted in the report.
const EXAMPLES: usize = 5;

/// Reads every line of `logs`; returns the hits and what was seen.
pub fn read_logs(logs: &[PathBuf], format: LogFormat) -> Result<(Vec<Hit>, LogStats), Failure> {
    let mut stats = LogStats::default();
    let mut hits = Vec::new();
    for path in logs {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = progress(size, &format!("reading {}", path.display()));
        read_lines(
            BufReader::new(bar.wrap_read(file)),
            &path.display().to_string(),
            format,
            &mut hits,
            &mut stats,
        )?;
        bar.finish_and_clear();
    }
    Ok((hits, stats))
}

/// Reads the lines of one log.
pub fn read_lines(
    mut reader: impl BufRead,
    name: &str,
    format: LogFormat,
    hits: &mut Vec<Hit>,
    stats: &mut LogStats,
) -> Result<(), Failure> {
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Failure::Input(format!("cannot read {name}: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        stats.lines += 1;
        match parse_line(&buf, format) {
            Ok(Line::Hit(hit)) => {
                stats.hits += 1;
                hits.push(hit);
            }
            Ok(Line::Anonymous) => stats.anonymous += 1,
            Ok(Line::Blank) => {}
            Err(e) => {
                stats.malformed += 1;
                if stats.examples.len() < EXAMPLES {
                    stats.examples.push(format!("{name}:{number}: {e}"));
                }
            }
        }
    }
}

/// Groups hits into sessions: per user, requests at most `inactivity_ms` apart. Sessions
/// come out ordered by start (then user).
pub fn sessions(mut hits: Vec<Hit>, inactivity_ms: i64) -> Vec<Session> {
    hits.sort_by(|a, b| (&a.user, a.at).cmp(&(&b.user, b.at)));
    let mut out: Vec<Session> = Vec::new();
    let mut current: Option<Session> = None;
    for hit in hits {
        match current.as_mut() {
            Some(s) if s.user == hit.user && hit.at.as_millis() < s.end.as_millis() => {
                s.hits.push(hit.at);
                s.end = Timestamp::from_millis(hit.at.as_millis().saturating_add(inactivity_ms));
            }
            _ => {
                out.extend(current.take());
                current = Some(Session {
                    start: hit.at,
                    hits: vec![hit.at],
                    end: Timestamp::from_millis(hit.at.as_millis().saturating_add(inactivity_ms)),
                    user: hit.user,
                });
            }
        }
    }
    out.extend(current);
    out.sort_by(|a, b| (a.start, &a.user).cmp(&(b.start, &b.user)));
    out
}

/// A heavy user: how long they were active, and which share of the busy time that is.
#[derive(Debug, Clone, PartialEq)]
pub struct HeavyUser {
    /// The user's name as the logs give it.
    pub user: String,
    /// Time within the user's sessions, in ms.
    pub active_ms: i64,
    /// `active_ms` as a share (0 to 1) of the time anyone was active.
    pub share: f64,
    /// How many sessions the user had.
    pub sessions: usize,
}

/// What `analyze` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Distinct users seen.
    pub users: usize,
    /// Sessions (a user's requests grouped by the inactivity limit; see the module doc).
    pub sessions: usize,
    /// Most users active at once, and the first instant it happened.
    pub peak: usize,
    /// The first instant of `peak` (`None` without sessions).
    pub peak_at: Option<Timestamp>,
    /// Time during which at least one user was active.
    pub busy_ms: i64,
    /// The `top` users by active time, most active first.
    pub heavy: Vec<HeavyUser>,
    /// Fewest shared slots that serve `target` of logins at once.
    pub recommended_slots: usize,
    /// The share of logins to serve at once that was asked for (0 to 1).
    pub target: f64,
    /// For each slot count from 0 to the peak, the share of logins served at once.
    pub served_by_slots: Vec<f64>,
}

/// Analyses sessions (ordered by start, as [`sessions`] gives them).
pub fn analyze(sessions: &[Session], target: f64, top: usize) -> Analysis {
    // Sweep over starts and ends; an end at the same instant as a start comes first
    // (the interval is half-open).
    let mut edges: Vec<(i64, i32)> = Vec::with_capacity(sessions.len() * 2);
    for s in sessions {
        edges.push((s.start.as_millis(), 1));
        edges.push((s.end.as_millis(), -1));
    }
    edges.sort_unstable();
    let (mut active, mut peak, mut peak_at) = (0i64, 0i64, None);
    let (mut busy_ms, mut busy_since) = (0i64, 0i64);
    // Others active at each login, in start order (the sweep meets starts in that order).
    let mut others_at_login: Vec<usize> = Vec::with_capacity(sessions.len());
    for (t, d) in edges {
        if d > 0 {
            others_at_login.push(active as usize);
            if active == 0 {
                busy_since = t;
            }
        }
        active += i64::from(d);
        if active == 0 && d < 0 {
            busy_ms += t - busy_since;
        }
        if active > peak {
            peak = active;
            peak_at = Some(Timestamp::from_millis(t));
        }
    }
    let logins = others_at_login.len();
    let peak = peak as usize;
    // served_by_slots[s] = share of logins with fewer than s others active.
    let mut counts = vec![0usize; peak + 1];
    for &o in &others_at_login {
        counts[o.min(peak)] += 1;
    }
    let mut served_by_slots = Vec::with_capacity(peak + 1);
    let mut below = 0usize;
    for c in &counts {
        served_by_slots.push(if logins == 0 {
            1.0
        } else {
            below as f64 / logins as f64
        });
        below += c;
    }
    let recommended_slots = served_by_slots
        .iter()
        .position(|share| *share >= target)
        .unwrap_or(peak);

    let mut per_user: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
    for s in sessions {
        let e = per_user.entry(&s.user).or_insert((0, 0));
        e.0 += s.end.as_millis() - s.start.as_millis();
        e.1 += 1;
    }
    let mut heavy: Vec<HeavyUser> = per_user
        .iter()
        .map(|(u, (ms, n))| HeavyUser {
            user: u.to_string(),
            active_ms: *ms,
            share: if busy_ms > 0 {
                *ms as f64 / busy_ms as f64
            } else {
                0.0
            },
            sessions: *n,
        })
        .collect();
    heavy.sort_by(|a, b| b.active_ms.cmp(&a.active_ms).then(a.user.cmp(&b.user)));
    heavy.truncate(top);
    Analysis {
        users: per_user.len(),
        sessions: sessions.len(),
        peak,
        peak_at,
        busy_ms,
        heavy,
        recommended_slots,
        target,
        served_by_slots,
    }
}

/// `slotpool analyze`: reads the logs and prints the analysis.
pub fn run(args: &AnalyzeArgs) -> Result<(), Failure> {
    if !(args.target > 0.0 && args.target <= 1.0) {
        return Err(Failure::Input(format!(
            "--target {} must be a share above 0 and at most 1 (e.g. 0.95)",
            args.target
        )));
    }
    let inactivity_ms = inactivity_ms(args.inactivity)?;
    let (hits, stats) = read_logs(&args.logs, args.log_format)?;
    let sessions = sessions(hits, inactivity_ms);
    let a = analyze(&sessions, args.target, args.top);
    stats.warn_malformed();
    match args.format {
        Format::Json => write_json(&json!({
            "lines": stats.lines,
            "requests": stats.hits,
            "anonymous": stats.anonymous,
            "malformed": stats.malformed,
            "malformed_examples": stats.examples,
            "inactivity_s": inactivity_ms / 1000,
            "users": a.users,
            "sessions": a.sessions,
            "peak_concurrent_users": a.peak,
            "peak_at": a.peak_at.map(rfc3339),
            "busy_s": a.busy_ms / 1000,
            "heavy_users": a.heavy.iter().map(|h| json!({
                "user": h.user,
                "active_s": h.active_ms / 1000,
                "share_of_busy_time": h.share,
                "sessions": h.sessions,
            })).collect::<Vec<_>>(),
            "target": a.target,
            "recommended_shared_slots": a.recommended_slots,
            "served_at_once_by_slots": a.served_by_slots,
        })),
        Format::Csv => write_csv(
            &["user", "active_s", "share_of_busy_time", "sessions"],
            &heavy_rows(&a),
        ),
        Format::Table => {
            println!(
                "{} lines: {} requests of {} users, {} anonymous, {} malformed",
                stats.lines, stats.hits, a.users, stats.anonymous, stats.malformed
            );
            println!(
                "{} sessions (inactivity {}); busy {:.1} h",
                a.sessions,
                humantime::format_duration(args.inactivity),
                a.busy_ms as f64 / 3_600_000.0
            );
            println!(
                "peak concurrent users: {} at {}",
                a.peak,
                a.peak_at.map_or_else(|| "-".into(), rfc3339)
            );
            println!(
                "recommended shared slots: {} ({:.1}% of logins served at once; target {:.1}%)\n",
                a.recommended_slots,
                a.served_by_slots
                    .get(a.recommended_slots)
                    .copied()
                    .unwrap_or(1.0)
                    * 100.0,
                a.target * 100.0
            );
            write_table(
                &format!(
                    "top {} users by active time (fixed licence candidates)",
                    args.top
                ),
                &["user", "active_s", "share_of_busy_time", "sessions"],
                &heavy_rows(&a),
            );
            Ok(())
        }
    }
}

fn heavy_rows(a: &Analysis) -> Vec<Vec<String>> {
    a.heavy
        .iter()
        .map(|h| {
            vec![
                h.user.clone(),
                (h.active_ms / 1000).to_string(),
                format!("{:.4}", h.share),
                h.sessions.to_string(),
            ]
        })
        .collect()
}

/// An inactivity time in ms, refusing zero and absurd values.
pub fn inactivity_ms(d: Duration) -> Result<i64, Failure> {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms <= 0 || ms > 30 * 86_400_000 {
        return Err(Failure::Input(format!(
            "--inactivity {} must be above zero and at most 30 days",
            humantime::format_duration(d)
        )));
    }
    Ok(ms)
}
