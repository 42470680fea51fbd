//! `slotpool simulate`: what other settings would have done with the same demand.
//!
//! Demand is what users did, independent of the pool: when each user asked for the
//! product, used it and left. It comes from a product's journal (requests are queue
//! joins and grants that were not from the queue, activity is journaled activity,
//! leaving is a release or giving up a queue place) or from access logs (each session of
//! `analyze`: a request at its start, activity at every later request).
//!
//! Each setting is replayed in virtual time through the real core: `ProductState::decide`
//! and `apply`, with a sweep (`Command::Tick`) at every instant `next_tick` names, so
//! warnings, revocations for inactivity, reclaim and the fair queue are exactly the
//! service's. A user whose recorded activity finds them without a slot (revoked sooner
//! under this setting) asks again. Queued users are assumed to keep their queue page open.
//!
//! Reported per setting: the share of requests served at once, and queue-wait p50/p95/p99
//! over the requests that had to wait and were then served.
//!
//! Gate policies (issue G). Modes change decisions: `--mode enforce` (the default)
//! replays every setting enforced throughout, whatever mode the journal was recorded in;
//! so the demand of a `passthrough` shadow run (whose pool decided as if enforced) tells
//! what enforcing a size would do. `--mode recorded` replays the journal's own mode
//! switches at their instants: a `queue_all` maintenance window holds every request back
//! and its end serves the queue in order, as it did. Bypass rules are not replayed: a
//! view a rule let through never reached the pool, so the journal holds no request of it
//! (only the daily counts per rule), and whether a rule would have matched another view
//! needs the groups, addresses, paths and credentials of requests the journal does not
//! keep. The demand simulated is the pool's demand under the rules of its time.
//!
//! Scheduled capacity: `--schedule FILE` (JSON `{"timezone": ..., "schedule": ...}`, as
//! in the product's settings) replays the demand under that calendar, `--slots` being the
//! size otherwise; without it, a schedule the journal's settings hold is kept. The replay
//! sends [`Command::ScheduleCapacity`] at every instant
//! [`ProductState::next_capacity_job`] names (before a sweep of the same instant, as the
//! scheduler does), so resizes, shrink warnings and revocations are the service's.

use super::access_log::LogFormat;
use super::analyze::{inactivity_ms, read_logs, sessions};
use super::{
    open_data_dir, product_stream, progress, read_stream, write_csv, write_json, write_table,
    Format,
};
use crate::failure::Failure;
use serde_json::json;
use slotpool_events::{
    Command, Mode, Presence, ProductEvent, ProductKind, ProductState, RevokeReason, Settings,
    Standing, Timestamp,
};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `slotpool simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Take the demand from this data directory's journal (with --product).
    #[arg(long, conflicts_with = "logs")]
    pub data_dir: Option<PathBuf>,
    /// The product whose journal holds the demand.
    #[arg(long, requires = "data_dir")]
    pub product: Option<String>,
    /// Take the demand from access logs (sessions as `analyze` builds them).
    #[arg(long = "log", num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// The access log format.
    #[arg(long = "log-format", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Shared slot counts to try: `10,20,30`, or a range `10..50:10` (from..to:step).
    #[arg(long, value_parser = parse_counts)]
    pub slots: Vec<Vec<u32>>,
    /// Inactivity times to try, comma-separated (e.g. `15m,30m`) [default: the journal's,
    /// or 30m for logs].
    #[arg(long, value_delimiter = ',', value_parser = humantime::parse_duration)]
    pub inactivity: Vec<Duration>,
    /// Reclaim on request to try: `false`, `true` or `false,true` [default: the journal's,
    /// or false].
    #[arg(long, value_delimiter = ',')]
    pub reclaim: Vec<bool>,
    /// Modes (issue G): `enforce` replays every setting enforced throughout (a shadow
    /// run's demand then tells what enforcing would do); `recorded` replays the journal's
    /// mode switches at their instants (queue_all windows hold requests back). Needs
    /// --data-dir for `recorded`.
    #[arg(long, value_enum, default_value = "enforce")]
    pub mode: ModeReplay,
    /// Replay under this capacity schedule: a JSON file `{"timezone": "Europe/Berlin",
    /// "schedule": {"weekly": [...], "dated": [...]}}` as in the product's settings;
    /// `--slots` is then the size outside its windows.
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Draw share served at once against slots to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Which modes `simulate` replays the demand under (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeReplay {
    /// Enforced throughout, whatever the journal's mode was.
    Enforce,
    /// The journal's own mode switches, at their instants.
    Recorded,
}

/// Parses `10,20,30` or `10..50:10` (a list of ranges and counts may be mixed).
pub fn parse_counts(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((from, rest)) = part.split_once("..") {
            let (to, step) = rest.split_once(':').unwrap_or((rest, "1"));
            let num = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{part:?}: {s:?} is not a whole number"))
            };
            let (from, to, step) = (num(from)?, num(to)?, num(step)?);
            if step == 0 || from > to {
                return Err(format!(
                    "{part:?}: want from..to:step with from <= to, step > 0"
                ));
            }
            if (to - from) / step > 10_000 {
                return Err(format!("{part:?}: more than 10000 values"));
            }
            out.extend((from..=to).step_by(step as usize));
        } else {
            out.push(
                part.parse::<u32>()
                    .map_err(|_| format!("{part:?} is not a whole number"))?,
            );
        }
    }
    if out.is_empty() {
        return Err("no slot counts given".into());
    }
    Ok(out)
}

/// What a user did at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Opened the product (login, reconnect).
    Request,
    /// Used it.
    Activity,
    /// Logged out or stopped waiting.
    Leave,
}

/// The recorded demand: users and their actions in time order.
#[derive(Debug, Clone, Default)]
pub struct Demand {
    /// User names; actions refer to them by index.
    pub users: Vec<String>,
    /// (when, user index, what), ordered by time (stable: recording order within an instant).
    pub actions: Vec<(Timestamp, u32, Action)>,
    /// The settings the demand was recorded under, if known (the journal's last).
    pub recorded: Option<Settings>,
    /// The journal's mode switches (issue G): each instant the mode changed, and to what,
    /// oldest first (the first configuration's mode included when it is not `enforce`).
    pub modes: Vec<(Timestamp, Mode)>,
}

impl Demand {
    fn user_index(&mut self, index: &mut HashMap<String, u32>, user: &str) -> u32 {
        if let Some(i) = index.get(user) {
            return *i;
        }
        let i = self.users.len() as u32;
        self.users.push(user.to_string());
        index.insert(user.to_string(), i);
        i
    }

    /// The demand of access-log sessions: a request at each start, activity at each
    /// later request of the session.
    pub fn from_sessions(sessions: &[super::analyze::Session]) -> Self {
        let mut d = Demand::default();
        let mut index = HashMap::new();
        for s in sessions {
            let i = d.user_index(&mut index, &s.user);
            d.actions.push((s.start, i, Action::Request));
            for h in s.hits.iter().skip(1) {
                d.actions.push((*h, i, Action::Activity));
            }
        }
        d.actions.sort_by_key(|(t, _, _)| *t);
        d
    }
}

/// Builds the [`Demand`] in a product stream's events (see the module doc), one event at
/// a time, so a long journal is never held in memory.
#[derive(Debug, Default)]
pub struct DemandBuilder {
    demand: Demand,
    index: HashMap<String, u32>,
    queued: HashSet<String>,
}

impl DemandBuilder {
    /// Takes the next event of the stream, recorded at `recorded_at`.
    pub fn push(&mut self, e: &ProductEvent, recorded_at: Timestamp) {
        let (user, at, action) = match e {
            ProductEvent::Configured { settings } => {
                let before = self
                    .demand
                    .recorded
                    .as_ref()
                    .map_or(Mode::Enforce, |s| s.mode);
                if settings.mode != before {
                    self.demand.modes.push((recorded_at, settings.mode));
                }
                self.demand.recorded = Some(settings.clone());
                return;
            }
            ProductEvent::Queued { user, at } => {
                self.queued.insert(user.clone());
                (user, *at, Action::Request)
            }
            ProductEvent::SlotGranted { user, at } => {
                if self.queued.remove(user) {
                    return;
                }
                (user, *at, Action::Request)
            }
            ProductEvent::ActivityRecorded { user, at } => (user, *at, Action::Activity),
            ProductEvent::SlotReleased { user, at } => (user, *at, Action::Leave),
            // Gave up waiting (or was made to leave): the user is gone either way.
            ProductEvent::QueueLeft { user, at, .. } => {
                self.queued.remove(user);
                (user, *at, Action::Leave)
            }
            ProductEvent::SlotRevoked { user, at, reason } => match reason {
                // What the pool's settings did is not demand: the replay decides it.
                RevokeReason::Inactivity
                | RevokeReason::Reclaimed
                | RevokeReason::PoolShrunk
                | RevokeReason::Admin => return,
                RevokeReason::Deactivated | RevokeReason::Removed | RevokeReason::Fixed => {
                    (user, *at, Action::Leave)
                }
            },
            ProductEvent::Requeued { user, .. } => {
                // Auto re-login is the service's doing, not the user's.
                self.queued.insert(user.clone());
                return;
            }
            _ => return,
        };
        let i = self.demand.user_index(&mut self.index, user);
        self.demand.actions.push((at, i, action));
    }

    /// The demand, actions in time order.
    pub fn finish(mut self) -> Demand {
        self.demand.actions.sort_by_key(|(t, _, _)| *t);
        self.demand
    }
}

/// One setting to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The pool size.
    pub shared_slots: u32,
    /// The inactivity limit before a slot is revoked, in seconds.
    pub inactivity_s: u32,
    /// Whether a request on a full pool takes the slot of the longest-inactive holder
    /// past the inactivity limit (`reclaim_on_request`).
    pub reclaim: bool,
}

/// What one setting did with the demand.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The setting tried.
    pub variant: Variant,
    /// Requests of users with neither a slot nor a queue place.
    pub requests: u64,
    /// Of those, granted at once.
    pub served_at_once: u64,
    /// Of those, queued and later granted.
    pub served_after_wait: u64,
    /// Queued and never granted (left the queue, or still waiting at the end).
    pub never_served: u64,
    /// Queue waits of `served_after_wait`, in ms, p50/p95/p99 (0 when nobody waited).
    pub wait_p50_ms: i64,
    /// The 95th percentile of those waits, in ms.
    pub wait_p95_ms: i64,
    /// The 99th percentile of those waits, in ms.
    pub wait_p99_ms: i64,
    /// Revocations for inactivity.
    pub revoked_inactivity: u64,
    /// Slots taken from an inactive holder for a request on a full pool (with `reclaim`).
    pub reclaimed: u64,
    /// Holders revoked because the pool shrank (a scheduled shrink).
    pub revoked_pool_shrunk: u64,
}

impl Outcome {
    /// Share of requests served at once (1 when there were none).
    pub fn share_at_once(&self) -> f64 {
        if self.requests == 0 {
            1.0
        } else {
            self.served_at_once as f64 / self.requests as f64
        }
    }
}

/// The settings a variant stands for: `base` with its slots, inactivity and reclaim; the
/// tier is raised to the slots if needed, and the warning lead kept below the inactivity.
pub fn settings_for(base: &Settings, v: Variant) -> Settings {
    let mut s = base.clone();
    s.shared_slots = v.shared_slots;
    let largest_window = slotpool_events::Calendar::window_sizes(&s.schedule)
        .map(|(_, size)| size)
        .max()
        .unwrap_or(0);
    s.licence_tier = s
        .licence_tier
        .max(v.shared_slots)
        .max(largest_window)
        .max(1);
    s.inactivity_s = v.inactivity_s;
    s.warning_lead_s = s.warning_lead_s.min(v.inactivity_s.saturating_sub(1));
    if s.coalesce_s.is_some_and(|c| c >= v.inactivity_s) {
        s.coalesce_s = None;
    }
    s.reclaim_on_request = v.reclaim;
    s.auto_relogin = false;
    // Enforced: the recorded mode switches, if replayed, are applied at their instants.
    s.mode = Mode::Enforce;
    s
}

/// The p-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The replay of the demand against one setting, in virtual time.
struct Replay<'a> {
    demand: &'a Demand,
    state: ProductState,
    now: Timestamp,
    /// When each waiting user joined the queue.
    waiting: HashMap<&'a str, Timestamp>,
    waits: Vec<i64>,
    out: Outcome,
}

impl<'a> Replay<'a> {
    fn run_command(&mut self, command: Command) -> Vec<ProductEvent> {
        // A refusal changes nothing; the demand may hold what the rules refuse (such as
        // activity of a user who is not holding), which is simply not applied.
        let events = self.state.decide(&command, self.now).unwrap_or_default();
        for e in &events {
            self.state.apply(e);
            match e {
                ProductEvent::SlotGranted { user, at } => {
                    if let Some(since) = self.waiting.remove(user.as_str()) {
                        self.out.served_after_wait += 1;
                        self.waits.push(at.as_millis() - since.as_millis());
                    }
                }
                ProductEvent::QueueLeft { user, .. }
                    if self.waiting.remove(user.as_str()).is_some() =>
                {
                    self.out.never_served += 1;
                }
                ProductEvent::SlotRevoked { reason, .. } => match reason {
                    RevokeReason::Inactivity => self.out.revoked_inactivity += 1,
                    RevokeReason::Reclaimed => self.out.reclaimed += 1,
                    RevokeReason::PoolShrunk => self.out.revoked_pool_shrunk += 1,
                    _ => {}
                },
                _ => {}
            }
        }
        events
    }

    /// Sweeps at every instant the product asks for, up to and including `until`, and
    /// applies its capacity schedule at every instant that asks for (first, as the
    /// scheduler does when both fall on one instant).
    fn sweep_until(&mut self, until: Timestamp) {
        loop {
            let tick = self.state.next_tick(self.now);
            let capacity = self.state.next_capacity_job(self.now);
            let Some(next) = [tick, capacity].into_iter().flatten().min() else {
                break;
            };
            if next > until {
                break;
            }
            self.now = next;
            if capacity == Some(next) {
                self.run_command(Command::ScheduleCapacity);
            }
            if tick != Some(next) {
                continue;
            }
            let presence = Presence {
                // Waiting users keep their queue page open.
                last_seen: self
                    .state
                    .queue()
                    .into_iter()
                    .map(|q| (q.user, next))
                    .collect(),
                ..Presence::default()
            };
            self.run_command(Command::Tick { presence });
        }
    }

    fn request(&mut self, user: &'a str) {
        self.out.requests += 1;
        let events = self.run_command(Command::request(user));
        let granted = events
            .iter()
            .any(|e| matches!(e, ProductEvent::SlotGranted { user: u, .. } if u == user));
        let queued = events
            .iter()
            .any(|e| matches!(e, ProductEvent::Queued { user: u, .. } if u == user));
        if granted {
            self.out.served_at_once += 1;
        } else if queued {
            self.waiting.insert(user, self.now);
        } else {
            // Locked after a revocation for inactivity: not served.
            self.out.never_served += 1;
        }
    }
}

/// Replays `demand` against `settings` (slots, inactivity and reclaim from `variant`),
/// switching to each mode of `modes` at its instant (empty: enforced throughout).
pub fn simulate(
    demand: &Demand,
    base: &Settings,
    variant: Variant,
    modes: &[(Timestamp, Mode)],
) -> Outcome {
    let settings = settings_for(base, variant);
    let mut switches = modes.iter().peekable();
    let start = demand
        .actions
        .first()
        .map_or(Timestamp::default(), |(t, _, _)| *t);
    let mut r = Replay {
        demand,
        state: ProductState::new(),
        now: start,
        waiting: HashMap::new(),
        waits: Vec::new(),
        out: Outcome {
            variant,
            requests: 0,
            served_at_once: 0,
            served_after_wait: 0,
            never_served: 0,
            wait_p50_ms: 0,
            wait_p95_ms: 0,
            wait_p99_ms: 0,
            revoked_inactivity: 0,
            reclaimed: 0,
            revoked_pool_shrunk: 0,
        },
    };
    r.run_command(Command::Configure(settings.clone()));
    let switch = |r: &mut Replay, at: Timestamp, mode: Mode| {
        r.sweep_until(at);
        r.now = r.now.max(at);
        r.run_command(Command::Configure(Settings {
            mode,
            ..settings.clone()
        }));
    };
    for user in &demand.users {
        r.run_command(Command::Enrol {
            user: user.clone(),
            active: true,
        });
    }
    for &(at, index, action) in &demand.actions {
        while let Some(&&(m_at, mode)) = switches.peek() {
            if m_at > at {
                break;
            }
            switch(&mut r, m_at, mode);
            switches.next();
        }
        r.sweep_until(at);
        r.now = r.now.max(at);
        let user = r.demand.users[index as usize].as_str();
        let standing = r.state.user(user).map(|e| e.standing);
        match (action, standing) {
            (Action::Leave, Some(Standing::Holding { .. } | Standing::Queued { .. })) => {
                r.run_command(Command::Release {
                    user: user.to_string(),
                });
            }
            (Action::Leave, _) => {}
            (Action::Request | Action::Activity, Some(Standing::Holding { .. })) => {
                r.run_command(Command::Activity {
                    user: user.to_string(),
                });
            }
            (Action::Request | Action::Activity, Some(Standing::Queued { .. })) => {}
            (Action::Request | Action::Activity, _) => r.request(user),
        }
    }
    // Switches after the last action still decide the fate of those waiting (a
    // maintenance that ends serves the queue).
    for &(m_at, mode) in switches {
        switch(&mut r, m_at, mode);
    }
    r.out.never_served += r.waiting.len() as u64;
    r.waits.sort_unstable();
    r.out.wait_p50_ms = percentile(&r.waits, 0.50);
    r.out.wait_p95_ms = percentile(&r.waits, 0.95);
    r.out.wait_p99_ms = percentile(&r.waits, 0.99);
    r.out
}

/// Runs every variant, spread over the machine's cores, in the given order.
pub fn simulate_all(
    demand: &Demand,
    base: &Settings,
    variants: &[Variant],
    modes: &[(Timestamp, Mode)],
) -> Vec<Outcome> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(variants.len().max(1));
    let bar = progress(variants.len() as u64, "simulating");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Outcome>> = vec![None; variants.len()];
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(v) = variants.get(i) else { break };
                let outcome = simulate(demand, base, *v, modes);
                if let Ok(mut r) = slots.lock() {
                    r[i] = Some(outcome);
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    results.into_iter().flatten().collect()
}

/// `slotpool simulate`: reads the demand, replays every setting, reports (and plots).
pub fn run(args: &SimulateArgs) -> Result<(), Failure> {
    let demand = if let Some(dir) = &args.data_dir {
        let product = args.product.as_deref().ok_or_else(|| {
            Failure::Input("--data-dir needs --product: whose journal to replay".into())
        })?;
        let journal = open_data_dir(dir)?;
        let stream = product_stream(&journal, product)?;
        let mut builder = DemandBuilder::default();
        read_stream(&journal, &stream, |env| {
            builder.push(&env.event, env.timestamp);
            true
        })?;
        builder.finish()
    } else if args.mode == ModeReplay::Recorded {
        return Err(Failure::Input(
            "--mode recorded replays a journal's mode switches: give --data-dir D --product P"
                .into(),
        ));
    } else if !args.logs.is_empty() {
        let inactivity = inactivity_ms(
            args.inactivity
                .first()
                .copied()
                .unwrap_or(Duration::from_secs(1800)),
        )?;
        let (hits, stats) = read_logs(&args.logs, args.log_format)?;
        stats.warn_malformed();
        Demand::from_sessions(&sessions(hits, inactivity))
    } else {
        return Err(Failure::Input(
            "give the demand: --data-dir D --product P, or --log FILE...".into(),
        ));
    };
    let mut base = demand
        .recorded
        .clone()
        .unwrap_or_else(|| Settings::new(ProductKind::Generic, 1, 1));
    if let Some(path) = &args.schedule {
        let file = read_schedule(path)?;
        base.timezone = file.timezone;
        base.schedule = file.schedule;
    }
    let slots: Vec<u32> = if args.slots.is_empty() {
        vec![base.shared_slots]
    } else {
        args.slots.iter().flatten().copied().collect()
    };
    let inactivity: Vec<u32> = if args.inactivity.is_empty() {
        vec![if demand.recorded.is_some() {
            base.inactivity_s
        } else {
            1800
        }]
    } else {
        args.inactivity
            .iter()
            .map(|d| {
                u32::try_from(d.as_secs())
                    .ok()
                    .filter(|s| *s >= 2 && *s <= slotpool_events::settings::MAX_INTERVAL_S)
                    .ok_or_else(|| {
                        Failure::Input(format!(
                            "--inactivity {} must be between 2 s and 30 days",
                            humantime::format_duration(*d)
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let reclaim = if args.reclaim.is_empty() {
        vec![base.reclaim_on_request]
    } else {
        args.reclaim.clone()
    };
    let mut variants = Vec::new();
    for &i in &inactivity {
        for &r in &reclaim {
            for &s in &slots {
                variants.push(Variant {
                    shared_slots: s,
                    inactivity_s: i,
                    reclaim: r,
                });
            }
        }
    }
    for v in &variants {
        let s = settings_for(&base, *v);
        s.validate(0)
            .and_then(|()| s.validate_schedule(0))
            .map_err(|e| Failure::Input(format!("setting {v:?} is not valid: {e}")))?;
    }
    let modes: &[(Timestamp, Mode)] = match args.mode {
        ModeReplay::Enforce => &[],
        ModeReplay::Recorded => &demand.modes,
    };
    let outcomes = simulate_all(&demand, &base, &variants, modes);
    if let Some(path) = &args.plot {
        plot(path, &outcomes)?;
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.variant.shared_slots.to_string(),
                o.variant.inactivity_s.to_string(),
                o.variant.reclaim.to_string(),
                o.requests.to_string(),
                format!("{:.4}", o.share_at_once()),
                (o.wait_p50_ms as f64 / 1000.0).to_string(),
                (o.wait_p95_ms as f64 / 1000.0).to_string(),
                (o.wait_p99_ms as f64 / 1000.0).to_string(),
                o.never_served.to_string(),
            ]
        })
        .collect();
    const HEADER: [&str; 9] = [
        "shared_slots",
        "inactivity_s",
        "reclaim",
        "requests",
        "served_at_once",
        "wait_p50_s",
        "wait_p95_s",
        "wait_p99_s",
        "never_served",
    ];
    match args.format {
        Format::Csv => write_csv(&HEADER, &rows),
        Format::Table => {
            write_table(
                &format!(
                    "{} users, {} actions replayed per setting, {}",
                    demand.users.len(),
                    demand.actions.len(),
                    match args.mode {
                        ModeReplay::Enforce => "enforced throughout".to_string(),
                        ModeReplay::Recorded =>
                            format!("{} recorded mode switches", demand.modes.len()),
                    }
                ),
                &HEADER,
                &rows,
            );
            Ok(())
        }
        Format::Json => write_json(&json!({
            "users": demand.users.len(),
            "actions": demand.actions.len(),
            "mode": match args.mode {
                ModeReplay::Enforce => "enforce",
                ModeReplay::Recorded => "recorded",
            },
            "mode_switches": modes.iter().map(|(at, m)| json!({
                "at": crate::view::rfc3339(*at),
                "mode": m.code(),
            })).collect::<Vec<_>>(),
            "settings": outcomes.iter().map(|o| json!({
                "shared_slots": o.variant.shared_slots,
                "inactivity_s": o.variant.inactivity_s,
                "reclaim_on_request": o.variant.reclaim,
                "requests": o.requests,
                "served_at_once": o.served_at_once,
                "share_served_at_once": o.share_at_once(),
                "served_after_wait": o.served_after_wait,
                "never_served": o.never_served,
                "wait_p50_s": o.wait_p50_ms as f64 / 1000.0,
                "wait_p95_s": o.wait_p95_ms as f64 / 1000.0,
                "wait_p99_s": o.wait_p99_ms as f64 / 1000.0,
                "revoked_inactivity": o.revoked_inactivity,
                "reclaimed": o.reclaimed,
                "revoked_pool_shrunk": o.revoked_pool_shrunk,
            })).collect::<Vec<_>>(),
        })),
    }
}

/// A `--schedule` file: the two settings of scheduled capacity.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    schedule: slotpool_events::Schedule,
}

/// Reads and checks a `--schedule` file (every problem named, as the admin API does).
fn read_schedule(path: &std::path::Path) -> Result<ScheduleFile, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("--schedule {}: {e}", path.display())))?;
    let file: ScheduleFile = serde_json::from_str(&text).map_err(|e| {
        Failure::Input(format!(
            "--schedule {}: not a JSON object {{\"timezone\", \"schedule\"}}: {e}",
            path.display()
        ))
    })?;
    slotpool_events::Calendar::new(file.timezone.as_deref(), &file.schedule, 0).map_err(
        |problems| {
            Failure::Input(format!(
                "--schedule {}: {}",
                path.display(),
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        },
    )?;
    Ok(file)
}

/// Draws share served at once against shared slots, one line per inactivity/reclaim.
fn plot(path: &std::path::Path, outcomes: &[Outcome]) -> Result<(), Failure> {
    use plotters::prelude::*;
    let fail = |e: String| Failure::Runtime(format!("cannot draw {}: {e}", path.display()));
    let max_slots = outcomes
        .iter()
        .map(|o| o.variant.shared_slots)
        .max()
        .unwrap_or(1)
        .max(1);
    let min_slots = outcomes
        .iter()
        .map(|o| o.variant.shared_slots)
        .min()
        .unwrap_or(0)
        .min(max_slots - 1);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("share of requests served at once", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(min_slots..max_slots, 0f64..1.0f64)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("shared slots")
        .y_desc("served at once")
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    let mut lines: Vec<(u32, bool)> = outcomes
        .iter()
        .map(|o| (o.variant.inactivity_s, o.variant.reclaim))
        .collect();
    lines.sort_unstable();
    lines.dedup();
    for (n, (inactivity, reclaim)) in lines.into_iter().enumerate() {
        let mut points: Vec<(u32, f64)> = outcomes
            .iter()
            .filter(|o| (o.variant.inactivity_s, o.variant.reclaim) == (inactivity, reclaim))
            .map(|o| (o.variant.shared_slots, o.share_at_once()))
            .collect();
        points.sort_by_key(|p| p.0);
        let color = Palette99::pick(n).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?
            .label(format!("inactivity {inactivity} s, reclaim {reclaim}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| fail(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_counts_and_ranges() {
        assert_eq!(parse_counts("10,20,30"), Ok(vec![10, 20, 30]));
        assert_eq!(parse_counts("10..30:10,35"), Ok(vec![10, 20, 30, 35]));
        assert_eq!(parse_counts("3..5"), Ok(vec![3, 4, 5]));
        for bad in ["", "x", "5..3", "1..9:0", "1..x", "-1", "0..4000000000"] {
            assert!(parse_counts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.95), 95);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn inactivity_revokes_and_the_user_asks_again() {
        // One slot, inactivity 60 s: a asks at 0 and is active at 30 and again at 200;
        // b asks at 100. a is revoked at the first sweep >= 90 (swept every 60 s: 120),
        // b queued at 100 gets the slot at 120 (20 s) and, never active, loses it at 180;
        // a's activity at 200 finds a free slot: a new request, served at once.
        let mut base = Settings::new(ProductKind::Generic, 5, 1);
        base.sweep_interval_s = 60;
        base.warning_lead_s = 10;
        let t = |s: i64| Timestamp::from_millis(1_800_000_000_000 + s * 1000);
        let demand = Demand {
            users: vec!["a".into(), "b".into()],
            actions: vec![
                (t(0), 0, Action::Request),
                (t(30), 0, Action::Activity),
                (t(100), 1, Action::Request),
                (t(200), 0, Action::Activity),
            ],
            recorded: None,
            modes: Vec::new(),
        };
        let run = |reclaim| {
            let variant = Variant {
                shared_slots: 1,
                inactivity_s: 60,
                reclaim,
            };
            simulate(&demand, &base, variant, &[])
        };
        let o = run(false);
        assert_eq!(
            (o.requests, o.served_at_once, o.served_after_wait),
            (3, 2, 1)
        );
        assert_eq!(o.revoked_inactivity, 2);
        assert_eq!(o.wait_p50_ms, 20_000);
        assert_eq!(o.never_served, 0);
        // With reclaim, b takes a's slot at once at 100 (a inactive since 30, over 60 s
        // ago); b is revoked at 180 as before, so a is served at once at 200 too.
        let o = run(true);
        assert_eq!((o.served_at_once, o.reclaimed), (3, 1));
    }

    #[test]
    fn a_recorded_maintenance_window_holds_requests_back_and_its_end_serves_the_queue() {
        // Two slots. a asks at 0, b at 10, c at 20, each leaving 100 s later; the journal
        // recorded queue_all from 5 to 50 and again from 500 (after everything).
        let base = Settings::new(ProductKind::Generic, 5, 2);
        let t = |s: i64| Timestamp::from_millis(1_800_000_000_000 + s * 1000);
        let mut demand = Demand {
            users: vec!["a".into(), "b".into(), "c".into()],
            actions: vec![
                (t(0), 0, Action::Request),
                (t(10), 1, Action::Request),
                (t(20), 2, Action::Request),
                (t(100), 0, Action::Leave),
                (t(110), 1, Action::Leave),
                (t(120), 2, Action::Leave),
            ],
            recorded: None,
            modes: Vec::new(),
        };
        let mut builder = DemandBuilder::default();
        for (at, mode) in [
            (0, Mode::Enforce),
            (5, Mode::QueueAll),
            (50, Mode::Enforce),
            (500, Mode::QueueAll),
        ] {
            let settings = Settings {
                mode,
                ..base.clone()
            };
            builder.push(&ProductEvent::Configured { settings }, t(at));
        }
        demand.modes = builder.finish().modes;
        assert_eq!(
            demand.modes,
            vec![
                (t(5), Mode::QueueAll),
                (t(50), Mode::Enforce),
                (t(500), Mode::QueueAll)
            ],
            "only changes are switches"
        );
        let variant = Variant {
            shared_slots: 2,
            inactivity_s: 1800,
            reclaim: false,
        };
        // Enforced throughout: a and b at once, c waits for a (100 - 20 = 80 s).
        let o = simulate(&demand, &base, variant, &[]);
        assert_eq!(
            (o.served_at_once, o.served_after_wait, o.never_served),
            (2, 1, 0)
        );
        assert_eq!(o.wait_p99_ms, 80_000);
        // As recorded: b and c queue during the maintenance; its end at 50 gives the one
        // free slot to b (40 s), and c waits for a's logout at 100 (80 s).
        let o = simulate(&demand, &base, variant, &demand.modes);
        assert_eq!(
            (o.served_at_once, o.served_after_wait, o.never_served),
            (1, 2, 0)
        );
        assert_eq!((o.wait_p50_ms, o.wait_p99_ms), (40_000, 80_000));
        // A recorded queue_all as the journal's last setting does not hold the enforced
        // replay back.
        let recorded = Settings {
            mode: Mode::QueueAll,
            ..base.clone()
        };
        let o = simulate(&demand, &recorded, variant, &[]);
        assert_eq!(o.served_at_once, 2);
    }

    #[test]
    fn a_schedule_grows_and_shrinks_the_replayed_pool() {
        // 2027-01-15T08:00Z. One slot otherwise, three from 08:10 to 09:10 (UTC): b and c,
        // queued at 08:00, are served at 08:10 (waits of 10 minutes); at 09:10 the pool
        // shrinks to one and the two longest-inactive (b and c; a used it at 08:20) are
        // revoked.
        let t = |s: i64| Timestamp::from_millis(1_800_000_000_000 + s * 1000);
        let mut base = Settings::new(ProductKind::Generic, 5, 1);
        base.inactivity_s = 7200;
        base.queue_timer_s = 7200;
        let file: ScheduleFile = serde_json::from_value(json!({
            "schedule": {"dated": [{"from": "2027-01-15T08:10", "to": "2027-01-15T09:10", "shared_slots": 3}],
                         "shrink_warning_s": 0}
        }))
        .expect("a schedule file");
        base.timezone = file.timezone;
        base.schedule = file.schedule;
        let demand = Demand {
            users: vec!["a".into(), "b".into(), "c".into()],
            actions: vec![
                (t(0), 0, Action::Request),
                (t(1), 1, Action::Request),
                (t(2), 2, Action::Request),
                (t(20 * 60), 0, Action::Activity),
                (t(80 * 60), 0, Action::Activity),
            ],
            recorded: None,
            modes: Vec::new(),
        };
        let variant = Variant {
            shared_slots: 1,
            inactivity_s: 7200,
            reclaim: false,
        };
        let o = simulate(&demand, &base, variant, &[]);
        assert_eq!(
            (o.requests, o.served_at_once, o.served_after_wait),
            (3, 1, 2)
        );
        assert_eq!(o.wait_p50_ms, 10 * 60_000 - 2_000);
        assert_eq!(o.revoked_pool_shrunk, 2);
        // Without the schedule, b and c never get a slot.
        base.schedule = Default::default();
        let o = simulate(&demand, &base, variant, &[]);
        assert_eq!((o.served_after_wait, o.revoked_pool_shrunk), (0, 0));
    }

    #[test]
    fn a_bad_schedule_file_is_refused_naming_the_window() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.json");
        std::fs::write(
            &path,
            r#"{"timezone": "Europe/Berlin", "schedule": {"weekly": [{"days": ["mon"], "from": "18:00", "to": "08:00", "shared_slots": 4}]}}"#,
        )
        .expect("write");
        let Err(Failure::Input(text)) = read_schedule(&path) else {
            panic!("refused");
        };
        assert!(text.contains("schedule.weekly[0]"), "{text}");
        std::fs::write(&path, r#"{"timezone": "Nowhere/Land"}"#).expect("write");
        assert!(
            matches!(read_schedule(&path), Err(Failure::Input(t)) if t.contains("Nowhere/Land"))
        );
    }
}
