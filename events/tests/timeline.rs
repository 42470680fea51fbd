//! Property tests over random timelines: commands interleaved with clock advances,
//! sweeps (`Tick`) with a random live presence (open streams, polls, coalesced activity),
//! resizes, changes of the time settings, fixed licences recorded from elsewhere and tier
//! reconciliation, on small settings (inactivity 3..=120 s, lead 1..inactivity, sweep
//! 1..=30 s, lock 0..=60 s, queue timer 1..=60 s, reclaim, auto re-login, coalescing).
//!
//! Each timeline runs in one of two modes:
//!
//! - *scheduled*: a scheduler sweeps at every `next_tick` instant before anything later
//!   happens (as `SchedulerActor` does), plus extra sweeps at random instants; the live
//!   service hands over exactly the activity it coalesced. Here every holder is revoked
//!   exactly at the `revoke_at` they were shown, and, until the time settings change
//!   (which cancels pending warnings, so the next may come late), a holder is warned
//!   exactly `warning_lead_s` before the revocation time shown before the warning, which
//!   lies on the sweep grid.
//! - *free*: sweeps only at random instants, with random extra "coalesced" activity (older
//!   than the journal, in the future, for non-holders...); warnings come late, and then
//!   revoke exactly one lead after the warning, off the grid.
//!
//! In both modes the live service does what `ProductActor` does: before a command that
//! `reads_activity` (a resize, tier reconciliation, a request that may reclaim) it records
//! the activity it coalesced (`RecordActivity`), so shrink and reclaim pick the truly
//! longest-inactive holder; `RecordActivity` also runs on its own at random instants.
//!
//! After every single event: the invariants of docs/design.md (never more holders than
//! `shared_slots`; no slot for a non-member, a fixed, a deactivated or a locked user, a
//! locked user holding again only through auto re-login or after the lock; the queue is
//! FIFO, members only, disjoint from the holders), and the recorded lock / re-login state
//! matches what the events imply. Per event kind:
//!
//! - `SlotRevoked{Inactivity}` comes from a sweep, after a `WarningIssued` for that user
//!   at least `warning_lead_s` earlier with no activity and no new grant in between, not
//!   before its `revoke_at`, and never before `last_activity + inactivity_s`;
//! - `WarningIssued` only when due, with `revoke_at = max(revoke_deadline(last activity),
//!   now + warning_lead_s)`: on the grid when issued at its due time, never less than the
//!   lead ahead;
//! - `SlotRevoked{PoolShrunk}` only on a resize or tier reconciliation, of the
//!   longest-inactive holder;
//! - `ActivityRecorded` never from the future;
//! - `Requeued` only in a sweep, for a holder revoked for inactivity in that sweep whose
//!   stream is open, with auto re-login on; twice without activity in between only when a
//!   slot is free for them: granted again in the same sweep (nobody waiting loses out);
//! - a connected holder revoked for inactivity with auto re-login on, and a slot free
//!   for them, is granted again in the same sweep (and never left `none`);
//! - `SlotRevoked{Reclaimed}` only on a request with reclaim on, of the longest-inactive
//!   holder, past the inactivity time;
//! - `QueueLeft{Expired}` only in a sweep, for a member not connected whose last poll (or
//!   queue time) is at least the queue timer old.
//!
//! After every command: a non-empty queue means a full pool; a sweep leaves nobody due
//! (no warned holder past `revoke_at`, no unwarned holder past the warning time, no
//! expired queue place); activity is journaled exactly when not coalesced;
//! `RecordActivity` records exactly the holders' newer past activity, and shows afterwards
//! what `holders_seen` showed before; a locked request changes nothing; tier
//! reconciliation restores `fixed + shared_slots <= tier`; `next_tick` is the earliest of
//! the next grid point, the next warning due and the next revocation, in the future; a
//! refusal changes nothing; and replaying the whole journal gives the same observable
//! state.

mod common;

use common::{observe, T0_MS};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use slotpool_events::{
    Command, LeaveReason, Presence, ProductEvent, ProductKind, ProductState, RevokeReason,
    Settings, SlotView, Standing, Timestamp,
};
use std::collections::{HashMap, HashSet};

const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// The time-related settings of a product.
#[derive(Debug, Clone)]
struct Times {
    inactivity_s: u32,
    warning_lead_s: u32,
    sweep_interval_s: u32,
    lock_s: u32,
    queue_timer_s: u32,
    reclaim: bool,
    auto_relogin: bool,
    coalesce_s: Option<u32>,
}

fn times() -> impl Strategy<Value = Times> {
    (3u32..=120)
        .prop_flat_map(|inactivity_s| {
            (
                Just(inactivity_s),
                1..inactivity_s,
                1u32..=30,
                prop_oneof![1 => Just(0u32), 3 => 1u32..=60],
                1u32..=60,
                any::<bool>(),
                any::<bool>(),
                prop::option::of(0..inactivity_s),
            )
        })
        .prop_map(
            |(
                inactivity_s,
                warning_lead_s,
                sweep_interval_s,
                lock_s,
                queue_timer_s,
                reclaim,
                auto_relogin,
                coalesce_s,
            )| Times {
                inactivity_s,
                warning_lead_s,
                sweep_interval_s,
                lock_s,
                queue_timer_s,
                reclaim,
                auto_relogin,
                coalesce_s,
            },
        )
}

fn with_times(mut s: Settings, t: &Times) -> Settings {
    s.inactivity_s = t.inactivity_s;
    s.warning_lead_s = t.warning_lead_s;
    s.sweep_interval_s = t.sweep_interval_s;
    s.lock_s = t.lock_s;
    s.queue_timer_s = t.queue_timer_s;
    s.reclaim_on_request = t.reclaim;
    s.auto_relogin = t.auto_relogin;
    s.coalesce_s = t.coalesce_s;
    s
}

fn first_settings() -> impl Strategy<Value = Settings> {
    (0u32..=4, 0u32..=3, times()).prop_map(|(shared, spare, t)| {
        with_times(
            Settings::new(ProductKind::Jira, (shared + spare).max(1), shared),
            &t,
        )
    })
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // test input, generated and dropped one by one
enum Op {
    /// The clock moves on by this many milliseconds.
    Wait(i64),
    Cmd(Command),
    /// A user works for a while: activity after each of these pauses (ms).
    Busy(usize, Vec<i64>),
    /// A user's browser opens or closes the notification stream.
    Connect(usize),
    Disconnect(usize),
    /// A queued member's client polls the queue page.
    Poll(usize),
    /// An extra sweep now; in free mode, with extra "coalesced" activity (user, ms before
    /// now; negative is after now).
    Tick(Vec<(usize, i64)>),
    /// The live service records what it coalesced now (`RecordActivity`); in free mode,
    /// with extra activity as for `Tick`.
    Record(Vec<(usize, i64)>),
    Resize {
        shared: u32,
        tier_delta: i8,
    },
    Retime(Times),
    ReconcileTier,
    /// A fixed licence recorded from elsewhere (an older journal, the directory's
    /// hygiene), applied as a fact without `decide`: it may take `fixed + shared_slots`
    /// past the tier, which `ReconcileTier` repairs.
    ForceFixed(usize),
}

fn user() -> impl Strategy<Value = String> {
    (0..USERS.len()).prop_map(|i| USERS[i].to_string())
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => (user(), prop::bool::weighted(0.95)).prop_map(|(user, active)| Command::Enrol { user, active }),
        1 => user().prop_map(|user| Command::Remove { user }),
        1 => (user(), prop::bool::weighted(0.8)).prop_map(|(user, active)| Command::GiveFixed { user, active }),
        1 => user().prop_map(|user| Command::TakeFixed { user }),
        1 => (user(), prop::bool::weighted(0.6)).prop_map(|(user, active)| Command::SetActive { user, active }),
        14 => user().prop_map(Command::request),
        2 => user().prop_map(|user| Command::Release { user }),
        6 => user().prop_map(|user| Command::Activity { user }),
        1 => user().prop_map(|user| Command::Revoke { user }),
    ]
}

fn wait() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => 0i64..1_000,
        4 => 1_000i64..30_000,
        2 => 30_000i64..150_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let u = || 0..USERS.len();
    prop_oneof![
        14 => wait().prop_map(Op::Wait),
        16 => command().prop_map(Op::Cmd),
        3 => (u(), prop::collection::vec(0i64..4_000, 1..8)).prop_map(|(i, pauses)| Op::Busy(i, pauses)),
        3 => u().prop_map(Op::Connect),
        2 => u().prop_map(Op::Disconnect),
        3 => u().prop_map(Op::Poll),
        6 => prop::collection::vec((u(), -2_000i64..200_000), 0..3).prop_map(Op::Tick),
        2 => prop::collection::vec((u(), -2_000i64..200_000), 0..3).prop_map(Op::Record),
        1 => (0u32..=5, -1i8..=2).prop_map(|(shared, tier_delta)| Op::Resize { shared, tier_delta }),
        1 => times().prop_map(Op::Retime),
        1 => Just(Op::ReconcileTier),
        1 => u().prop_map(Op::ForceFixed),
    ]
}

/// A timeline: the mode, the first settings, who is enrolled from the start (a bit per
/// user), and the steps.
type Timeline = (bool, Settings, u8, Vec<Op>);

fn timeline() -> impl Strategy<Value = Timeline> {
    (
        any::<bool>(),
        first_settings(),
        any::<u8>(),
        prop::collection::vec(op(), 1..150),
    )
}

// ---------------------------------------------------------------------------------------
// The run and its checks
// ---------------------------------------------------------------------------------------

/// What the events so far say about one user, kept independently of the product.
#[derive(Debug, Clone, Default)]
struct Track {
    /// Last activity of the current holding (grant or recorded activity).
    last_activity: Option<Timestamp>,
    /// The pending warning: issued at, revoke at, the lead then in force, and whether it
    /// was issued at its due time.
    warning: Option<TrackedWarning>,
    /// Locked until, after a revocation for inactivity.
    lock: Option<Timestamp>,
    /// Requeued automatically since the lock began.
    requeued_in_lock: bool,
    /// Requeued automatically since the last recorded activity.
    requeued_since_activity: bool,
    /// Order of joining the queue.
    joined: u64,
}

#[derive(Debug, Clone, Copy)]
struct TrackedWarning {
    at: Timestamp,
    revoke_at: Timestamp,
    lead: u32,
    on_time: bool,
}

struct Run {
    state: ProductState,
    journal: Vec<ProductEvent>,
    now: Timestamp,
    scheduled: bool,
    /// Warnings come at their due time: scheduled, and the time settings never changed.
    on_time: bool,
    connected: HashSet<String>,
    last_seen: HashMap<String, Timestamp>,
    /// Activity the product coalesced, as the live service remembers it.
    coalesced: HashMap<String, Timestamp>,
    tracks: HashMap<String, Track>,
    joins: u64,
    /// Fixed licences were recorded past the tier and not reconciled since.
    over_tier: bool,
    stats: Stats,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    warnings: u64,
    inactivity: u64,
    reclaimed: u64,
    requeued: u64,
    expired: u64,
    reconciled: u64,
    locked_requests: u64,
    coalesced: u64,
    /// Warnings issued after their due time (revoking one lead later, off the grid).
    late_warnings: u64,
    /// Coalesced activity recorded by `RecordActivity` before a command that reads it.
    recorded_first: u64,
}

fn ms(t: Timestamp) -> i64 {
    t.as_millis()
}

fn on_grid(s: &Settings, t: Timestamp) -> bool {
    s.sweep_at_or_after(t) == t
}

impl Run {
    fn new(scheduled: bool) -> Self {
        Run {
            state: ProductState::new(),
            journal: Vec::new(),
            now: Timestamp::from_millis(T0_MS),
            scheduled,
            on_time: scheduled,
            connected: HashSet::new(),
            last_seen: HashMap::new(),
            coalesced: HashMap::new(),
            tracks: HashMap::new(),
            joins: 0,
            over_tier: false,
            stats: Stats::default(),
        }
    }

    fn settings(&self) -> Settings {
        self.state.settings().cloned().expect("configured")
    }

    /// The clock moves to `to`; in scheduled mode every sweep due on the way runs first.
    fn advance(&mut self, to: Timestamp) -> Result<(), TestCaseError> {
        if self.scheduled {
            while let Some(next) = self.state.next_tick(self.now) {
                if next > to {
                    break;
                }
                self.now = next;
                self.sweep(Vec::new())?;
            }
        }
        self.now = self.now.max(to);
        Ok(())
    }

    /// What the live service coalesced, handed over (with `extra` activity in free mode).
    fn take_coalesced(&mut self, extra: Vec<(String, Timestamp)>) -> HashMap<String, Timestamp> {
        let mut recent = std::mem::take(&mut self.coalesced);
        for (u, t) in extra {
            let e = recent.entry(u).or_insert(t);
            *e = (*e).max(t);
        }
        recent
    }

    /// Extra activity for a `Tick` or `Record` op: none in scheduled mode.
    fn extra(&self, extra: &[(usize, i64)]) -> Vec<(String, Timestamp)> {
        if self.scheduled {
            return Vec::new();
        }
        extra
            .iter()
            .map(|(i, back)| {
                (
                    USERS[*i].to_string(),
                    Timestamp::from_millis(ms(self.now) - back),
                )
            })
            .collect()
    }

    /// Runs `command` as the live service does: when it reads holders' activity, the
    /// coalesced activity is recorded first. Returns whether the time settings changed.
    fn execute_live(&mut self, command: Command) -> Result<bool, TestCaseError> {
        if self.state.reads_activity(&command) && !self.coalesced.is_empty() {
            let recent = self.take_coalesced(Vec::new());
            let journaled = self.journal.len();
            self.execute(Command::RecordActivity { recent })?;
            self.stats.recorded_first += (self.journal.len() - journaled) as u64;
        }
        self.execute(command)
    }

    /// A sweep now, with the live presence (and `extra` activity in free mode).
    fn sweep(&mut self, extra: Vec<(String, Timestamp)>) -> Result<(), TestCaseError> {
        let recent = self.take_coalesced(extra);
        let presence = Presence {
            connected: self.connected.clone(),
            last_seen: self.last_seen.clone(),
            recent_activity: recent,
            bypassed: Default::default(),
            alert_onsets: Default::default(),
        };
        self.execute(Command::Tick { presence })?;
        // The live service forgets the polls of members no longer queued.
        let state = &self.state;
        self.last_seen.retain(|u, _| {
            matches!(
                state.user(u).map(|e| e.standing),
                Some(Standing::Queued { .. })
            )
        });
        Ok(())
    }

    fn op(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Wait(d) => self.advance(Timestamp::from_millis(ms(self.now) + d))?,
            Op::Cmd(c) => {
                self.advance(self.now)?;
                self.execute_live(c.clone())?;
            }
            Op::Busy(i, pauses) => {
                for pause in pauses {
                    self.advance(Timestamp::from_millis(ms(self.now) + pause))?;
                    self.execute(Command::Activity {
                        user: USERS[*i].to_string(),
                    })?;
                }
            }
            Op::Connect(i) => {
                self.connected.insert(USERS[*i].to_string());
            }
            Op::Disconnect(i) => {
                self.connected.remove(USERS[*i]);
            }
            Op::Poll(i) => {
                self.last_seen.insert(USERS[*i].to_string(), self.now);
            }
            Op::Tick(extra) => {
                self.advance(self.now)?;
                let extra = self.extra(extra);
                self.sweep(extra)?;
            }
            Op::Record(extra) => {
                self.advance(self.now)?;
                let extra = self.extra(extra);
                let recent = self.take_coalesced(extra);
                self.execute(Command::RecordActivity { recent })?;
            }
            Op::Resize { shared, tier_delta } => {
                self.advance(self.now)?;
                let mut s = self.settings();
                s.shared_slots = *shared;
                s.licence_tier = s.licence_tier.saturating_add_signed(i32::from(*tier_delta));
                self.execute_live(Command::Configure(s))?;
            }
            Op::Retime(t) => {
                self.advance(self.now)?;
                let s = with_times(self.settings(), t);
                if self.execute_live(Command::Configure(s))? {
                    self.on_time = false;
                }
            }
            Op::ReconcileTier => {
                self.advance(self.now)?;
                self.execute_live(Command::ReconcileTier)?;
            }
            Op::ForceFixed(i) => {
                // A power user from outside the pool's users (never a member here).
                let u = format!("fixed{i}");
                if self.state.user(&u).is_none_or(|e| !e.fixed) {
                    let event = ProductEvent::FixedGiven { user: u };
                    self.state.apply(&event);
                    self.journal.push(event);
                    let s = self.settings();
                    self.over_tier |= self.state.counts().fixed as u64 + u64::from(s.shared_slots)
                        > u64::from(s.licence_tier);
                    self.check_invariants()?;
                }
            }
        }
        Ok(())
    }

    /// Decides and applies one command with every check; returns whether the time
    /// settings changed.
    fn execute(&mut self, command: Command) -> Result<bool, TestCaseError> {
        let now = self.now;
        let users = || USERS.iter().copied();
        let before = observe(&self.state, users(), now);
        let settings = match (&command, self.state.settings()) {
            (_, Some(s)) => s.clone(),
            (Command::Configure(s), None) => s.clone(),
            (_, None) => panic!("the timeline starts with Configure"),
        };
        let state_before = self.state.clone();
        let events = match self.state.decide(&command, now) {
            Ok(events) => events,
            Err(_) => {
                prop_assert_eq!(
                    observe(&self.state, users(), now),
                    before,
                    "a refusal changed the state"
                );
                return Ok(false);
            }
        };
        let presence = match &command {
            Command::Tick { presence } => Some(presence.clone()),
            _ => None,
        };
        for (i, e) in events.iter().enumerate() {
            if let ProductEvent::Requeued { user, .. } = e {
                let again = self
                    .tracks
                    .get(user.as_str())
                    .is_some_and(|t| t.requeued_since_activity);
                let granted = events[i..]
                    .iter()
                    .any(|x| matches!(x, ProductEvent::SlotGranted { user: u, .. } if u == user));
                prop_assert!(
                    !again || granted,
                    "{} requeued twice without activity in between, and not granted at once",
                    user
                );
            }
            self.check_event(&command, presence.as_ref(), &events[..i], e, &settings)?;
            self.state.apply(e);
            self.journal.push(e.clone());
            self.check_invariants()?;
        }
        self.check_command(&command, &state_before, &events, &settings)?;

        let replayed = ProductState::replay(self.journal.iter());
        prop_assert_eq!(
            observe(&replayed, users(), now),
            observe(&self.state, users(), now),
            "replay differs"
        );
        let after = self.settings();
        Ok((
            after.inactivity_s,
            after.warning_lead_s,
            after.sweep_interval_s,
        ) != (
            settings.inactivity_s,
            settings.warning_lead_s,
            settings.sweep_interval_s,
        ))
    }

    /// Checks one event against what the events before it imply, then records it.
    fn check_event(
        &mut self,
        command: &Command,
        presence: Option<&Presence>,
        earlier: &[ProductEvent],
        e: &ProductEvent,
        s: &Settings,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let scheduled = self.scheduled;
        let on_time = self.on_time;
        let is_tick = matches!(command, Command::Tick { .. });
        match e {
            ProductEvent::SlotGranted { user, at } => {
                let t = self.tracks.entry(user.to_string()).or_default();
                if let Some(lock) = t.lock {
                    prop_assert!(
                        lock <= *at || t.requeued_in_lock,
                        "{} granted at {:?} while locked until {:?}",
                        user,
                        at,
                        lock
                    );
                }
                *t = Track {
                    last_activity: Some(*at),
                    requeued_since_activity: t.requeued_since_activity,
                    ..Track::default()
                };
            }
            ProductEvent::Queued { user, .. } => {
                self.joins += 1;
                let j = self.joins;
                self.tracks.entry(user.to_string()).or_default().joined = j;
            }
            ProductEvent::Requeued { user, at } => {
                self.stats.requeued += 1;
                prop_assert!(is_tick && s.auto_relogin, "{:?} requeued {}", command, user);
                prop_assert!(
                    presence.is_some_and(|p| p.connected.contains(user)),
                    "{} requeued without an open stream",
                    user
                );
                prop_assert!(
                    earlier.iter().any(|x| matches!(x, ProductEvent::SlotRevoked { user: u, reason: RevokeReason::Inactivity, .. } if u == user)),
                    "{} requeued without a revocation for inactivity in the same sweep",
                    user
                );
                self.joins += 1;
                let j = self.joins;
                let t = self.tracks.entry(user.to_string()).or_default();
                t.requeued_since_activity = true;
                t.joined = j;
                if t.lock.is_some_and(|l| l > *at) {
                    t.requeued_in_lock = true;
                }
            }
            ProductEvent::WarningIssued {
                user,
                at,
                revoke_at,
            } => {
                self.stats.warnings += 1;
                prop_assert!(is_tick && *at == now, "{:?} warned {}", command, user);
                let t = self.tracks.entry(user.to_string()).or_default();
                prop_assert!(t.warning.is_none(), "{} warned twice", user);
                let last = t.last_activity.expect("a holder has a last activity");
                let due = s.warning_due(last);
                let deadline = s.revoke_deadline(last);
                let lead_end = Timestamp::from_millis(ms(*at) + i64::from(s.warning_lead_s) * 1000);
                prop_assert!(due <= now, "{} warned early", user);
                prop_assert!(
                    *revoke_at >= lead_end,
                    "{} warned with less than the lead",
                    user
                );
                prop_assert!(
                    *revoke_at >= deadline,
                    "{} to be revoked before the deadline",
                    user
                );
                // Never rounded up to the grid: the deadline, or exactly one lead after a
                // late warning.
                prop_assert_eq!(
                    *revoke_at,
                    deadline.max(lead_end),
                    "revoke_at of {} warned at {:?}, last active {:?}",
                    user,
                    at,
                    last
                );
                let warned_on_time = *at == due;
                if warned_on_time {
                    prop_assert_eq!(*revoke_at, deadline, "{} warned on time", user);
                    prop_assert!(
                        on_grid(s, *revoke_at),
                        "{} warned on time, to be revoked off the grid",
                        user
                    );
                } else {
                    self.stats.late_warnings += 1;
                    prop_assert_eq!(*revoke_at, lead_end, "{} warned late", user);
                }
                if on_time {
                    prop_assert!(warned_on_time, "{} warned late", user);
                }
                t.warning = Some(TrackedWarning {
                    at: *at,
                    revoke_at: *revoke_at,
                    lead: s.warning_lead_s,
                    on_time: warned_on_time,
                });
            }
            ProductEvent::ActivityRecorded { user, at } => {
                prop_assert!(*at <= now, "activity of {} from the future", user);
                let t = self.tracks.entry(user.to_string()).or_default();
                t.warning = None;
                t.requeued_since_activity = false;
                t.last_activity = t.last_activity.max(Some(*at));
            }
            ProductEvent::SlotRevoked { user, reason, at } => {
                let holders = self.state.holders();
                let t = self.tracks.entry(user.to_string()).or_default();
                let last = t.last_activity.expect("a holder has a last activity");
                match reason {
                    RevokeReason::Inactivity => {
                        self.stats.inactivity += 1;
                        prop_assert!(is_tick, "{:?} revoked {} for inactivity", command, user);
                        let Some(TrackedWarning {
                            at: warned_at,
                            revoke_at,
                            lead,
                            on_time: warned_on_time,
                        }) = t.warning
                        else {
                            return Err(TestCaseError::fail(format!(
                                "{user} revoked for inactivity without a warning"
                            )));
                        };
                        prop_assert!(
                            ms(*at) >= ms(warned_at) + i64::from(lead) * 1000,
                            "{} revoked less than the lead after the warning",
                            user
                        );
                        prop_assert!(*at >= revoke_at, "{} revoked before {:?}", user, revoke_at);
                        prop_assert!(
                            ms(*at) >= ms(last) + i64::from(s.inactivity_s) * 1000,
                            "{} revoked at {:?}, before last activity {:?} + inactivity {} s",
                            user,
                            at,
                            last,
                            s.inactivity_s
                        );
                        if scheduled {
                            // Sweeping at next_tick revokes exactly at the time shown...
                            prop_assert_eq!(
                                *at,
                                revoke_at,
                                "{} not revoked at the time shown",
                                user
                            );
                            // ...which is on the grid when the warning came on time (new
                            // time settings cancel warnings: the grid is the warning's).
                            if warned_on_time {
                                prop_assert!(
                                    on_grid(s, *at),
                                    "{} warned on time, revoked off the grid",
                                    user
                                );
                            }
                        }
                        t.lock = (s.lock_s > 0).then(|| at.plus_secs(s.lock_s));
                        t.requeued_in_lock = false;
                    }
                    RevokeReason::Reclaimed => {
                        self.stats.reclaimed += 1;
                        prop_assert!(
                            matches!(command, Command::Request { .. }) && s.reclaim_on_request,
                            "{:?} reclaimed",
                            command
                        );
                        prop_assert!(
                            ms(*at) >= ms(last) + i64::from(s.inactivity_s) * 1000,
                            "{} reclaimed within the inactivity time",
                            user
                        );
                        let longest = holders.iter().map(|h| h.last_activity).min();
                        prop_assert_eq!(
                            Some(last),
                            longest,
                            "{} is not the longest-inactive holder",
                            user
                        );
                    }
                    RevokeReason::PoolShrunk => {
                        prop_assert!(
                            matches!(command, Command::Configure(_) | Command::ReconcileTier),
                            "{:?} shrank the pool",
                            command
                        );
                        // Longest-inactive first (ties by name), by the activity recorded,
                        // which includes what the live service had coalesced.
                        let longest = holders
                            .iter()
                            .map(|h| (h.last_activity, h.user.as_str()))
                            .min();
                        prop_assert_eq!(
                            Some((last, user.as_str())),
                            longest,
                            "{} is not the longest-inactive holder",
                            user
                        );
                    }
                    _ => {}
                }
                let t = self.tracks.entry(user.to_string()).or_default();
                t.warning = None;
                t.last_activity = None;
            }
            ProductEvent::SlotReleased { user, .. } => {
                let t = self.tracks.entry(user.to_string()).or_default();
                t.warning = None;
                t.last_activity = None;
            }
            ProductEvent::QueueLeft {
                user,
                reason: LeaveReason::Expired,
                ..
            } => {
                self.stats.expired += 1;
                let Some(p) = presence else {
                    return Err(TestCaseError::fail(format!("{command:?} expired {user}")));
                };
                prop_assert!(
                    !p.connected.contains(user),
                    "{} connected, yet expired",
                    user
                );
                let since = self
                    .state
                    .queue()
                    .into_iter()
                    .find(|q| &q.user == user)
                    .map(|q| q.since);
                let seen = since.max(p.last_seen.get(user).copied()).expect("queued");
                prop_assert!(
                    seen.plus_secs(s.queue_timer_s) <= now,
                    "{} expired early",
                    user
                );
            }
            // New time settings cancel every pending warning (they were computed with the
            // old ones); the next sweep warns again whoever is due.
            ProductEvent::Configured { settings: new }
                if (new.inactivity_s, new.warning_lead_s, new.sweep_interval_s)
                    != (s.inactivity_s, s.warning_lead_s, s.sweep_interval_s) =>
            {
                for t in self.tracks.values_mut() {
                    t.warning = None;
                }
            }
            ProductEvent::TierReconciled { .. } => {
                self.stats.reconciled += 1;
                prop_assert!(matches!(command, Command::ReconcileTier));
            }
            _ => {}
        }
        Ok(())
    }

    /// The invariants that hold after every single event.
    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let s = self.settings();
        let holders = self.state.holders();
        let queue = self.state.queue();
        prop_assert!(
            holders.len() <= s.shared_slots as usize,
            "{} holders > {} slots",
            holders.len(),
            s.shared_slots
        );
        let mut names = HashSet::new();
        for h in &holders {
            prop_assert!(names.insert(h.user.clone()), "{} holds twice", h.user);
            let e = self.state.user(&h.user).copied().expect("holder known");
            prop_assert!(
                e.member && !e.fixed && !e.deactivated,
                "holder {} is {:?}",
                h.user,
                e
            );
            let t = self.tracks.get(&h.user).cloned().unwrap_or_default();
            prop_assert_eq!(
                Some(h.last_activity),
                t.last_activity,
                "last activity of {}",
                h.user
            );
            prop_assert_eq!(
                h.warned_at,
                t.warning.map(|w| w.at),
                "warning of {}",
                h.user
            );
            let shown = t
                .warning
                .map_or_else(|| s.revoke_deadline(h.last_activity), |w| w.revoke_at);
            prop_assert_eq!(h.revoke_at, shown, "revoke_at of {}", h.user);
        }
        let mut last_join = 0;
        for (i, q) in queue.iter().enumerate() {
            prop_assert_eq!(q.position, i + 1);
            prop_assert!(!names.contains(&q.user), "{} holds and waits", q.user);
            let e = self.state.user(&q.user).copied().expect("queued known");
            prop_assert!(
                e.member && !e.fixed && !e.deactivated,
                "queued {} is {:?}",
                q.user,
                e
            );
            let j = self.tracks.get(&q.user).map_or(0, |t| t.joined);
            prop_assert!(j > last_join, "the queue is not in the order of joining");
            last_join = j;
        }
        for u in USERS {
            let t = self.tracks.get(u).cloned().unwrap_or_default();
            let e = self.state.user(u).copied();
            prop_assert_eq!(e.and_then(|e| e.locked_until), t.lock, "lock of {}", u);
            prop_assert_eq!(
                e.is_some_and(|e| e.relogin_used),
                t.requeued_since_activity,
                "re-login of {}",
                u
            );
            if let Some(e) = e {
                let view = self.state.slot_view(u, self.now);
                let shows_fixed = e.fixed && !e.deactivated;
                let locked = e.standing == Standing::Idle
                    && !shows_fixed
                    && t.lock.is_some_and(|l| l > self.now);
                prop_assert_eq!(
                    matches!(view, SlotView::Locked { until } if Some(until) == t.lock),
                    locked,
                    "view of {}: {:?}",
                    u,
                    view
                );
            }
        }
        Ok(())
    }

    /// Checks that hold after a whole command.
    fn check_command(
        &mut self,
        command: &Command,
        before: &ProductState,
        events: &[ProductEvent],
        s: &Settings,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let after = self.settings();
        // Auto re-login: a connected holder revoked for inactivity is not left without a
        // slot while one stays free.
        if let Command::Tick { presence } = command {
            let free = self.state.holders().len() < after.shared_slots as usize;
            if after.auto_relogin && after.reservations.is_empty() && free {
                for e in events {
                    if let ProductEvent::SlotRevoked {
                        user,
                        reason: RevokeReason::Inactivity,
                        ..
                    } = e
                    {
                        if presence.connected.contains(user) {
                            prop_assert!(
                                matches!(
                                    self.state.slot_view(user, now),
                                    SlotView::Granted { .. }
                                ),
                                "{} revoked while connected, with a slot free, and not granted again",
                                user
                            );
                        }
                    }
                }
            }
        }
        if !self.state.queue().is_empty() {
            prop_assert_eq!(
                self.state.holders().len(),
                after.shared_slots as usize,
                "members wait while a slot is free"
            );
        }
        let next = self.state.next_tick(now);
        prop_assert!(
            next.is_some_and(|t| t > now),
            "next_tick {:?} not after {:?}",
            next,
            now
        );
        // The earliest of: the next grid point, the next warning due, the next revocation
        // (anything overdue: as soon as possible).
        let soonest = Timestamp::from_millis(ms(now) + 1);
        let expected = self
            .state
            .holders()
            .iter()
            .map(|h| match h.warned_at {
                None => after.warning_due(h.last_activity),
                Some(_) => h.revoke_at,
            })
            .map(|t| t.max(soonest))
            .fold(after.sweep_at_or_after(soonest), Timestamp::min);
        prop_assert_eq!(next, Some(expected), "next_tick at {:?}", now);
        match command {
            Command::Tick { presence } => {
                for h in self.state.holders() {
                    match h.warned_at {
                        Some(_) => prop_assert!(
                            h.revoke_at > now,
                            "{} is still due after the sweep",
                            h.user
                        ),
                        None => prop_assert!(
                            s.warning_due(h.last_activity) > now,
                            "{} is still due for a warning after the sweep",
                            h.user
                        ),
                    }
                }
                for q in self.state.queue() {
                    let seen = presence
                        .last_seen
                        .get(&q.user)
                        .copied()
                        .unwrap_or(q.since)
                        .max(q.since);
                    prop_assert!(
                        presence.connected.contains(&q.user)
                            || seen.plus_secs(s.queue_timer_s) > now,
                        "{}'s queue place outlived the sweep",
                        q.user
                    );
                }
            }
            Command::Activity { user } => {
                if let Some(Standing::Holding {
                    last_activity,
                    warning,
                    ..
                }) = before.user(user).map(|e| e.standing)
                {
                    let recorded =
                        warning.is_some() || ms(now) - ms(last_activity) >= s.coalesce_window_ms();
                    prop_assert_eq!(
                        events.to_vec(),
                        if recorded {
                            vec![ProductEvent::ActivityRecorded {
                                user: user.clone(),
                                at: now,
                            }]
                        } else {
                            vec![]
                        }
                    );
                    if !recorded {
                        self.stats.coalesced += 1;
                        self.coalesced.insert(user.clone(), now);
                    }
                }
            }
            Command::Request { user, .. } => {
                if let Some(e) = before.user(user) {
                    let locked = e.locked_until.is_some_and(|l| l > now);
                    if e.member && !e.fixed && !e.deactivated && e.standing == Standing::Idle {
                        prop_assert_eq!(
                            events.is_empty(),
                            locked,
                            "request of {} (locked: {})",
                            user,
                            locked
                        );
                        if locked {
                            self.stats.locked_requests += 1;
                        }
                        // Reclaim exactly when the pool is full and its longest-inactive
                        // holder is past the inactivity time.
                        let holders = before.holders();
                        let longest = holders.iter().map(|h| h.last_activity).min();
                        let may_reclaim = !locked
                            && s.reclaim_on_request
                            && holders.len() >= s.shared_slots as usize
                            && longest.is_some_and(|l| {
                                ms(now) >= ms(l) + i64::from(s.inactivity_s) * 1000
                            });
                        let reclaimed = events.iter().any(|e| {
                            matches!(
                                e,
                                ProductEvent::SlotRevoked {
                                    reason: RevokeReason::Reclaimed,
                                    ..
                                }
                            )
                        });
                        prop_assert_eq!(reclaimed, may_reclaim, "reclaim on request of {}", user);
                    }
                }
            }
            Command::RecordActivity { recent } => {
                // Exactly the holders' activity newer than recorded and not in the future,
                // by name; nothing else (no warning, no revocation).
                let mut expected: Vec<_> = recent
                    .iter()
                    .filter(|(u, t)| {
                        **t <= now
                            && matches!(
                                before.user(u).map(|e| e.standing),
                                Some(Standing::Holding { last_activity, .. }) if **t > last_activity
                            )
                    })
                    .collect();
                expected.sort();
                let expected: Vec<_> = expected
                    .into_iter()
                    .map(|(u, t)| ProductEvent::ActivityRecorded {
                        user: u.clone(),
                        at: *t,
                    })
                    .collect();
                prop_assert_eq!(events.to_vec(), expected, "RecordActivity at {:?}", now);
                // Afterwards every unwarned holder looks as holders_seen showed before.
                common::check_seen_before(before, recent, now, &self.state)?;
            }
            Command::ReconcileTier => {
                // The pool shrinks by the whole excess (down to nothing if need be).
                let fixed = self.state.counts().fixed as u32;
                prop_assert!(
                    after.shared_slots <= after.licence_tier.saturating_sub(fixed),
                    "still over the tier after reconciliation"
                );
                prop_assert_eq!(
                    after.shared_slots,
                    s.shared_slots.min(s.licence_tier.saturating_sub(fixed))
                );
                self.over_tier = fixed > after.licence_tier;
            }
            _ => {}
        }
        if !self.over_tier {
            prop_assert!(
                self.state.counts().fixed as u64 + u64::from(after.shared_slots)
                    <= u64::from(after.licence_tier)
            );
        }
        Ok(())
    }
}

fn run_timeline((scheduled, first, enrolled, ops): &Timeline) -> Result<Stats, TestCaseError> {
    let mut run = Run::new(*scheduled);
    run.execute(Command::Configure(first.clone()))?;
    prop_assert!(
        run.state.settings().is_some(),
        "the first settings are valid"
    );
    for (i, u) in USERS.iter().enumerate() {
        if enrolled & (1 << i) != 0 {
            run.execute(Command::Enrol {
                user: u.to_string(),
                active: true,
            })?;
        }
    }
    for op in ops {
        run.op(op)?;
    }
    // Let every pending warning and revocation play out.
    run.advance(Timestamp::from_millis(ms(run.now) + 400_000))?;
    if *scheduled {
        prop_assert!(run
            .state
            .holders()
            .iter()
            .all(|h| h.warned_at.is_none() || h.revoke_at > run.now));
    }
    Ok(run.stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::proptest_cases(256), ..ProptestConfig::default() })]

    #[test]
    fn timelines_keep_every_time_rule(timeline in timeline()) {
        run_timeline(&timeline)?;
    }
}

/// The generators reach every rule: run timelines and count, at least 64 and until every
/// rule was reached (some, such as reclaim, are rare: a reclaim-capable request is one the
/// live service records coalesced activity for first), at most 256.
#[test]
fn timelines_reach_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::default());
    let mut total = Stats::default();
    let counts = |t: &Stats| {
        [
            ("warnings", t.warnings),
            ("revocations for inactivity", t.inactivity),
            ("reclaims", t.reclaimed),
            ("auto re-logins", t.requeued),
            ("queue expiries", t.expired),
            ("tier reconciliations", t.reconciled),
            ("locked requests", t.locked_requests),
            ("coalesced activities", t.coalesced),
            ("late warnings", t.late_warnings),
            ("activities recorded before a decision", t.recorded_first),
        ]
    };
    let mut runs = 0;
    while runs < 64 || (runs < 256 && counts(&total).iter().any(|(_, n)| *n == 0)) {
        runs += 1;
        let timeline = timeline().new_tree(&mut runner).unwrap().current();
        let s = run_timeline(&timeline).unwrap_or_else(|e| panic!("{e}"));
        total.warnings += s.warnings;
        total.inactivity += s.inactivity;
        total.reclaimed += s.reclaimed;
        total.requeued += s.requeued;
        total.expired += s.expired;
        total.reconciled += s.reconciled;
        total.locked_requests += s.locked_requests;
        total.coalesced += s.coalesced;
        total.late_warnings += s.late_warnings;
        total.recorded_first += s.recorded_first;
    }
    eprintln!("{runs} timelines: {total:?}");
    for (what, n) in counts(&total) {
        assert!(n > 0, "no {what} in {runs} timelines: {total:?}");
    }
}

/// Sweeps `state` at each instant it asks for until `until`, with `presence`; applies
/// and returns every event.
fn sweep_until(
    state: &mut ProductState,
    presence: &Presence,
    mut now: Timestamp,
    until: Timestamp,
) -> Vec<ProductEvent> {
    let mut all = Vec::new();
    while let Some(next) = state.next_tick(now).filter(|t| *t <= until) {
        now = next;
        let command = Command::Tick {
            presence: presence.clone(),
        };
        let events = state
            .decide(&command, now)
            .expect("a sweep is never refused");
        for e in &events {
            state.apply(e);
        }
        all.extend(events);
    }
    all
}

/// Auto re-login in virtual time: a holder whose page stays open (a connected stream)
/// and who does nothing is revoked for inactivity and granted again in the same sweep,
/// every time, while a slot is free for them; once a member waits, the idle page takes
/// no slot from them until the user is active again.
#[test]
fn an_open_idle_page_is_granted_again_while_a_slot_is_free() {
    let t0 = Timestamp::from_millis(T0_MS);
    let mut settings = Settings::new(ProductKind::Jira, 10, 1);
    settings.inactivity_s = 600;
    settings.warning_lead_s = 60;
    settings.sweep_interval_s = 60;
    settings.auto_relogin = true;
    let mut state = ProductState::new();
    let run = |state: &mut ProductState, command: Command, at: Timestamp| {
        let events = state.decide(&command, at).expect("accepted");
        for e in &events {
            state.apply(e);
        }
        events
    };
    run(&mut state, Command::Configure(settings), t0);
    for u in ["ann", "bob"] {
        let enrol = Command::Enrol {
            user: u.into(),
            active: true,
        };
        run(&mut state, enrol, t0);
    }
    run(&mut state, Command::request("ann".to_string()), t0);
    let presence = Presence {
        connected: HashSet::from(["ann".to_string(), "bob".to_string()]),
        ..Presence::default()
    };
    // Three hours idle: revoked and granted again at once, about every ten minutes.
    let three_hours = t0.plus_secs(3 * 3600);
    let events = sweep_until(&mut state, &presence, t0, three_hours);
    let revocations = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ProductEvent::SlotRevoked {
                    reason: RevokeReason::Inactivity,
                    ..
                }
            )
        })
        .count();
    let regrants = events
        .iter()
        .filter(|e| matches!(e, ProductEvent::SlotGranted { user, .. } if user == "ann"))
        .count();
    assert!(revocations >= 15, "{events:?}");
    assert_eq!(regrants, revocations, "{events:?}");
    assert!(matches!(
        state.slot_view("ann", three_hours),
        SlotView::Granted { .. }
    ));

    // Bob waits: ann, idle for hours, takes no slot from him. At her next revocation
    // the slot goes to bob and she is not queued again (her re-login is used until she
    // is active); bob, idle in turn, is granted again while nobody waits.
    run(&mut state, Command::request("bob".to_string()), three_hours);
    let at = |s: u32| three_hours.plus_secs(s);
    sweep_until(&mut state, &presence, three_hours, at(600));
    assert!(matches!(
        state.slot_view("bob", at(600)),
        SlotView::Granted { .. }
    ));
    assert_eq!(state.slot_view("ann", at(600)), SlotView::None);
    sweep_until(&mut state, &presence, at(600), at(3600));
    assert!(matches!(
        state.slot_view("bob", at(3600)),
        SlotView::Granted { .. }
    ));
}
