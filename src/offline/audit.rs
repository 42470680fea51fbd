//! `slotpool audit`: what a product's journal says about its past, with the service
//! stopped (or from a copy of its data directory).
//!
//! Every figure comes from `slotpool_events::History`, which folds the stream with the
//! same `ProductState::apply` the service runs; the JSON shapes of holders, queue and
//! settings are the admin API's (`crate::view`), so an audit at `T` can be compared
//! field for field with what the live service answered at `T`.

use super::{
    open_data_dir, parse_instant, product_stream, read_stream, rfc3339, write_csv, write_json,
    write_table, Format,
};
use crate::failure::Failure;
use crate::view::{HolderView, ProductView, QueueView};
use serde_json::{json, Value};
use slotpool_events::history::{Period, TimelineEntry};
use slotpool_events::{
    DirectoryEvent, DirectoryState, History, HistoryOptions, ProductState, StreamId, Timestamp,
};
use std::path::PathBuf;

/// Which peaks to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeaksBy {
    /// Peak concurrent holders per UTC day.
    Day,
    /// Peak concurrent holders per minute.
    Minute,
}

/// Flags of `slotpool audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The data directory of a stopped service, or a copy (`slotpool backup`).
    #[arg(long, env = "SLOTPOOL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The product to audit.
    #[arg(long)]
    pub product: String,
    /// The instant (RFC 3339) to audit as of: only events up to it count [default: the
    /// end of the journal].
    #[arg(long)]
    pub at: Option<String>,
    /// Show this user's timeline: requests, grants, warnings, revocations, releases.
    #[arg(long)]
    pub user: Option<String>,
    /// Show peak concurrent holders per day (or per minute).
    #[arg(long, value_enum)]
    pub peaks: Option<PeaksBy>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// What the audit found.
pub struct Report {
    /// The product audited.
    pub product: String,
    /// The instant audited, if one was given.
    pub at: Option<Timestamp>,
    /// The fold of the stream up to `at`.
    pub history: History,
}

/// Reads the journal and folds the product's stream up to `--at`.
pub fn audit(args: &AuditArgs) -> Result<Report, Failure> {
    let at = args.at.as_deref().map(parse_instant).transpose()?;
    if args.format == Format::Csv && args.user.is_some() && args.peaks.is_some() {
        return Err(Failure::Input(
            "CSV holds one table: ask for --user or --peaks, not both".into(),
        ));
    }
    super::memory::keep_freed_memory();
    let journal = open_data_dir(&args.data_dir)?;
    let stream = product_stream(&journal, &args.product)?;
    // Only what the report shows: a timeline for the asked user alone, per-minute peaks
    // only for `--peaks minute`; reading stops at the first event after `--at`.
    let mut history = History::new(HistoryOptions {
        at: None,
        user: args.user.clone(),
        change_points: false,
        per_minute: args.peaks == Some(PeaksBy::Minute),
    });
    if let Some(user) = &args.user {
        history.also_known_as(other_names(&journal, user)?);
    }
    read_stream(&journal, &stream, |env| {
        if at.is_some_and(|t| env.timestamp > t) {
            return false;
        }
        history.push(env);
        true
    })?;
    Ok(Report {
        product: args.product.clone(),
        at,
        history,
    })
}

/// The other names of `user` by the directory's renames (its stream is small): the
/// timeline is found under any of them.
fn other_names(
    journal: &slotpool_journal::Journal,
    user: &str,
) -> Result<std::collections::BTreeSet<String>, Failure> {
    let mut directory = DirectoryState::new();
    journal
        .replay::<DirectoryEvent>(&StreamId::Directory, |env| {
            if matches!(env.event, DirectoryEvent::UserRenamed { .. }) {
                directory.apply_at(&env.event, env.timestamp);
            }
        })
        .map_err(|e| Failure::Input(format!("cannot read the directory's stream: {e}")))?;
    Ok(directory.names_of(user))
}

/// `slotpool audit`: prints the report in the chosen format.
pub fn run(args: &AuditArgs) -> Result<(), Failure> {
    let report = audit(args)?;
    match args.format {
        Format::Json => write_json(&to_json(&report, args)),
        Format::Csv => write_csv_report(&report, args),
        Format::Table => {
            write_tables(&report, args);
            Ok(())
        }
    }
}

/// The whole report as one JSON document: `product` (settings and counts), `holders` and
/// `queue` as the admin API shows them, `revocations` by reason, `bypassed` (daily
/// per-rule counts of bypass rules), `alerts` (licence-use alerts fired and resolved),
/// and `timeline` /
/// `peaks` when asked for.
pub fn to_json(report: &Report, args: &AuditArgs) -> Value {
    let state = report.history.state();
    let mut out = json!({
        "product": product_json(&report.product, state),
        "at": report.at.map(rfc3339),
        "events": report.history.events(),
        "last_event_at": report.history.last_timestamp().map(rfc3339),
        "holders": state.holders().iter().map(HolderView::from).collect::<Vec<_>>(),
        "queue": state.queue().iter().map(QueueView::from).collect::<Vec<_>>(),
        "revocations": report.history.revocations(),
        // Who went past the pool, and how often: views bypass rules let through, per
        // UTC day and rule (as `GET /admin/v1/products/{p}/bypass` shows them).
        "bypassed": report
            .history
            .bypass_days()
            .map(crate::view::BypassDayView::from)
            .collect::<Vec<_>>(),
        // Licence-use alerts as they fired and resolved.
        "alerts": report
            .history
            .alerts()
            .iter()
            .map(|a| json!({
                "at": rfc3339(a.at),
                "alert": a.name,
                "state": if a.fired { "firing" } else { "resolved" },
                "value": a.value,
            }))
            .collect::<Vec<_>>(),
    });
    if let Some(user) = &args.user {
        out["timeline"] = json!({
            "user": user,
            "entries": report.history.timeline().iter().map(entry_json).collect::<Vec<_>>(),
        });
    }
    if let Some(by) = args.peaks {
        out["peaks"] = json!({
            "by": match by { PeaksBy::Day => "day", PeaksBy::Minute => "minute" },
            "periods": peaks(report, by).iter().map(period_json).collect::<Vec<_>>(),
        });
    }
    out
}

fn product_json(product: &str, state: &ProductState) -> Value {
    match state.settings() {
        // The pool's size as the journal's last CapacityScheduled left it (the next
        // change is the live service's question, not the journal's).
        Some(settings) => json!(ProductView::new(product, settings.clone(), state.counts())
            .with_capacity(state.effective_shared_slots(), None)),
        None => Value::Null,
    }
}

fn entry_json(e: &TimelineEntry) -> Value {
    let mut v = json!({
        "sequence": e.sequence,
        "at": rfc3339(e.at),
        "event": e.kind.code(),
    });
    if let Ok(Value::Object(kind)) = serde_json::to_value(&e.kind) {
        for (k, val) in kind {
            if k == "kind" {
                continue;
            }
            v[k.as_str()] = match (&val, k.as_str()) {
                (Value::Number(n), "revoke_at") => n
                    .as_i64()
                    .map_or(val.clone(), |ms| json!(rfc3339(Timestamp::from_millis(ms)))),
                _ => val,
            };
        }
    }
    v
}

fn period_json(p: &Period) -> Value {
    json!({
        "start": rfc3339(p.start),
        "peak_holders": p.peak_holders,
        "peak_at": rfc3339(p.peak_at),
        "peak_queued": p.peak_queued,
        "holders_end": p.holders_end,
    })
}

fn peaks(report: &Report, by: PeaksBy) -> Vec<Period> {
    match by {
        PeaksBy::Day => report.history.daily_peaks(),
        PeaksBy::Minute => report.history.per_minute(),
    }
}

fn holder_rows(state: &ProductState) -> Vec<Vec<String>> {
    state
        .holders()
        .iter()
        .map(|h| {
            vec![
                h.user.clone(),
                rfc3339(h.since),
                rfc3339(h.last_activity),
                h.warned_at.map(rfc3339).unwrap_or_default(),
                rfc3339(h.revoke_at),
            ]
        })
        .collect()
}

fn queue_rows(state: &ProductState) -> Vec<Vec<String>> {
    state
        .queue()
        .iter()
        .map(|q| vec![q.position.to_string(), q.user.clone(), rfc3339(q.since)])
        .collect()
}

fn timeline_rows(report: &Report) -> Vec<Vec<String>> {
    report
        .history
        .timeline()
        .iter()
        .map(|e| {
            let detail = match &e.kind {
                slotpool_events::history::TimelineKind::Warned { revoke_at } => {
                    format!("revoke_at={}", rfc3339(*revoke_at))
                }
                k => k.detail(),
            };
            vec![
                rfc3339(e.at),
                e.sequence.to_string(),
                e.kind.code().to_string(),
                detail,
            ]
        })
        .collect()
}

fn peak_rows(report: &Report, by: PeaksBy) -> Vec<Vec<String>> {
    peaks(report, by)
        .iter()
        .map(|p| {
            let start = rfc3339(p.start);
            let start = match by {
                PeaksBy::Day => start.get(..10).unwrap_or(&start).to_string(),
                PeaksBy::Minute => start,
            };
            vec![
                start,
                p.peak_holders.to_string(),
                rfc3339(p.peak_at),
                p.peak_queued.to_string(),
            ]
        })
        .collect()
}

const HOLDER_HEADER: [&str; 5] = ["user", "since", "last_activity", "warned_at", "revoke_at"];
const QUEUE_HEADER: [&str; 3] = ["position", "user", "since"];
const TIMELINE_HEADER: [&str; 4] = ["at", "sequence", "event", "detail"];
const PEAK_HEADER: [&str; 4] = ["period", "peak_holders", "peak_at", "peak_queued"];

/// CSV holds one table: the timeline with `--user`, else the peaks with `--peaks`, else
/// holders and queue places together (`standing` tells which).
fn write_csv_report(report: &Report, args: &AuditArgs) -> Result<(), Failure> {
    if args.user.is_some() {
        return write_csv(&TIMELINE_HEADER, &timeline_rows(report));
    }
    if let Some(by) = args.peaks {
        return write_csv(&PEAK_HEADER, &peak_rows(report, by));
    }
    let state = report.history.state();
    let mut rows: Vec<Vec<String>> = state
        .holders()
        .iter()
        .map(|h| {
            vec![
                "holder".into(),
                h.user.clone(),
                String::new(),
                rfc3339(h.since),
                rfc3339(h.last_activity),
                h.warned_at.map(rfc3339).unwrap_or_default(),
                rfc3339(h.revoke_at),
            ]
        })
        .collect();
    rows.extend(state.queue().iter().map(|q| {
        vec![
            "queued".into(),
            q.user.clone(),
            q.position.to_string(),
            rfc3339(q.since),
            String::new(),
            String::new(),
            String::new(),
        ]
    }));
    write_csv(
        &[
            "standing",
            "user",
            "position",
            "since",
            "last_activity",
            "warned_at",
            "revoke_at",
        ],
        &rows,
    )
}

fn write_tables(report: &Report, args: &AuditArgs) {
    let state = report.history.state();
    let when = report
        .at
        .map_or_else(|| "end of journal".to_string(), rfc3339);
    let show_state = report.at.is_some() || (args.user.is_none() && args.peaks.is_none());
    if show_state {
        match state.settings() {
            Some(s) => {
                let c = state.counts();
                println!(
                    "product {} at {when}: {} events read, last at {}",
                    report.product,
                    report.history.events(),
                    report
                        .history
                        .last_timestamp()
                        .map_or_else(|| "-".to_string(), rfc3339)
                );
                println!(
                    "settings: kind={} licence_tier={} shared_slots={} inactivity_s={} \
                     warning_lead_s={} sweep_interval_s={} lock_s={} queue_timer_s={} \
                     reclaim_on_request={} auto_relogin={}",
                    serde_json::to_value(s.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    s.licence_tier,
                    s.shared_slots,
                    s.inactivity_s,
                    s.warning_lead_s,
                    s.sweep_interval_s,
                    s.lock_s,
                    s.queue_timer_s,
                    s.reclaim_on_request,
                    s.auto_relogin
                );
                println!(
                    "counts: holders={} queued={} members={} fixed={}",
                    c.holders, c.queued, c.members, c.fixed
                );
            }
            None => println!("product {} at {when}: not configured yet", report.product),
        }
        let revs: Vec<String> = report
            .history
            .revocations()
            .iter()
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        println!(
            "revocations: {}\n",
            if revs.is_empty() {
                "none".to_string()
            } else {
                revs.join(" ")
            }
        );
        let bypassed: Vec<String> = report
            .history
            .bypass_days()
            .map(|d| {
                format!(
                    "{}:{}={}",
                    crate::view::BypassDayView::from(d).day,
                    d.rule,
                    d.count
                )
            })
            .collect();
        if !bypassed.is_empty() {
            println!("bypassed: {}\n", bypassed.join(" "));
        }
        let alerts: Vec<String> = report
            .history
            .alerts()
            .iter()
            .map(|a| {
                let state = if a.fired { "firing" } else { "resolved" };
                format!("{}:{}={state}({})", rfc3339(a.at), a.name, a.value)
            })
            .collect();
        if !alerts.is_empty() {
            println!("alerts: {}\n", alerts.join(" "));
        }
        write_table("holders", &HOLDER_HEADER, &holder_rows(state));
        write_table("queue", &QUEUE_HEADER, &queue_rows(state));
    }
    if let Some(user) = &args.user {
        write_table(
            &format!("timeline of {user}"),
            &TIMELINE_HEADER,
            &timeline_rows(report),
        );
    }
    if let Some(by) = args.peaks {
        let title = match by {
            PeaksBy::Day => "peak concurrent holders per UTC day",
            PeaksBy::Minute => "peak concurrent holders per minute",
        };
        write_table(title, &PEAK_HEADER, &peak_rows(report, by));
    }
}
