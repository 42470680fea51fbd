//! History: what a product's stream says about the past, folded in one pass.
//!
//! The offline audit, the dashboard's charts and the simulator's demand all need the same
//! facts about a product's past: its state (holders, queue, settings) at some instant,
//! how occupancy changed over time, the daily peaks of concurrent holders, why slots were
//! revoked, and one user's timeline. [`History`] computes all of them from the envelopes
//! of one product stream, in order, by folding every event with [`ProductState::apply`]
//! (there is no second implementation of the rules) and watching what changes.
//!
//! Time is the envelope's timestamp (when the event was decided), which never goes back
//! within a stream. "The state at `T`" is the fold of every envelope stamped at or before
//! `T`.
//!
//! Architecture Invariant: pure, like the rest of the core: no I/O, no clock. The caller
//! reads the journal and pushes envelopes in stream order.

use crate::envelope::Envelope;
use crate::event::{LeaveReason, ProductEvent, RevokeReason};
use crate::product::ProductState;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in a (UTC) day.
pub const DAY_MS: i64 = 86_400_000;

/// What a [`History`] should compute besides the current state, daily peaks and
/// revocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOptions {
    /// Keep a copy of the state as of this instant (see [`History::state_at`]).
    pub at: Option<Timestamp>,
    /// Collect this user's timeline (see [`History::timeline`]).
    pub user: Option<String>,
    /// Keep every occupancy change point (see [`History::changes`]). Off by default: a
    /// long stream has millions of them, and per-minute and per-day figures are kept
    /// without them.
    pub change_points: bool,
    /// Keep per-minute peaks (see [`History::per_minute`]). On by default (the dashboard's
    /// charts read them); a report that shows none turns it off, saving a little work
    /// on every event.
    pub per_minute: bool,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            at: None,
            user: None,
            change_points: false,
            per_minute: true,
        }
    }
}

/// The occupancy of a product at one instant: what its licence charts show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Occupancy {
    /// Members holding a slot.
    pub holders: u32,
    /// Members waiting in the queue.
    pub queued: u32,
    /// Users with a fixed licence.
    pub fixed: u32,
    /// Slots in the shared pool (0 before the product is configured).
    pub shared_slots: u32,
    /// Seats of the licence (0 before the product is configured).
    pub licence_tier: u32,
}

impl Occupancy {
    /// The occupancy of `state` now.
    pub fn of(state: &ProductState) -> Self {
        let counts = state.counts();
        let (shared_slots, licence_tier) = state
            .settings()
            .map_or((0, 0), |s| (state.effective_shared_slots(), s.licence_tier));
        Occupancy {
            holders: counts.holders as u32,
            queued: counts.queued as u32,
            fixed: counts.fixed as u32,
            shared_slots,
            licence_tier,
        }
    }
}

/// From `at` on (until the next change point), the product's occupancy was `occupancy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChangePoint {
    /// When the occupancy became this.
    pub at: Timestamp,
    /// The occupancy from then on.
    pub occupancy: Occupancy,
}

/// Concurrent holders and queued members within one minute (or one day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// Start of the minute (or UTC day).
    pub start: Timestamp,
    /// Most holders at any instant of the period.
    pub peak_holders: u32,
    /// First instant the peak was reached (the start, if carried over from before).
    pub peak_at: Timestamp,
    /// Most queued members at any instant of the period.
    pub peak_queued: u32,
    /// Holders at the end of the period.
    pub holders_end: u32,
    /// Queued members at the end of the period.
    pub queued_end: u32,
}

/// What happened to the user, as one line of their timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineKind {
    /// Enrolled in the pool.
    Enrolled,
    /// Removed from the pool.
    Removed,
    /// Given a fixed licence.
    FixedGiven,
    /// Fixed licence taken away.
    FixedTaken,
    /// Deactivated in the directory.
    Deactivated,
    /// Reactivated in the directory.
    Reactivated,
    /// Asked for a slot and joined the queue.
    Queued,
    /// Queued again automatically after a revocation for inactivity (auto re-login).
    Requeued,
    /// Got a slot; `from_queue` when they had been waiting.
    Granted { from_queue: bool },
    /// Used the product (journaled activity; coalesced activity is not journaled).
    Activity,
    /// Warned that the slot goes at `revoke_at` unless they use the product.
    Warned { revoke_at: Timestamp },
    /// Lost the slot, and why.
    Revoked {
        #[serde(serialize_with = "revoke_code")]
        reason: RevokeReason,
    },
    /// Gave the slot back.
    Released,
    /// Left the queue without a slot, and why.
    LeftQueue {
        #[serde(serialize_with = "leave_code")]
        reason: LeaveReason,
    },
    /// Asked for a fixed licence (the request itself, with its reason, is in the
    /// product's fixed-licence requests).
    FixedRequested,
    /// Their fixed-licence request was approved.
    FixedRequestApproved,
    /// Their fixed-licence request was rejected.
    FixedRequestRejected,
    /// The directory renamed them: the lines before are under `from`, those after under
    /// `to`.
    Renamed { from: String, to: String },
    /// A step of their space request `id` for `space` (see [`crate::space`]): `step` is
    /// `space_requested`, `space_request_approved`, `space_request_rejected`,
    /// `space_access_granted`, `space_access_failed`, `space_access_revoked` or
    /// `space_access_removed`.
    Space {
        step: &'static str,
        id: String,
        space: String,
    },
}

fn revoke_code<S: serde::Serializer>(r: &RevokeReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.code())
}

fn leave_code<S: serde::Serializer>(r: &LeaveReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.code())
}

impl TimelineKind {
    /// A stable snake_case name for tables and CSV.
    pub fn code(&self) -> &'static str {
        match self {
            TimelineKind::Enrolled => "enrolled",
            TimelineKind::Removed => "removed",
            TimelineKind::FixedGiven => "fixed_given",
            TimelineKind::FixedTaken => "fixed_taken",
            TimelineKind::Deactivated => "deactivated",
            TimelineKind::Reactivated => "reactivated",
            TimelineKind::Queued => "queued",
            TimelineKind::Requeued => "requeued",
            TimelineKind::Granted { .. } => "granted",
            TimelineKind::Activity => "activity",
            TimelineKind::Warned { .. } => "warned",
            TimelineKind::Revoked { .. } => "revoked",
            TimelineKind::Released => "released",
            TimelineKind::LeftQueue { .. } => "left_queue",
            TimelineKind::FixedRequested => "fixed_requested",
            TimelineKind::FixedRequestApproved => "fixed_request_approved",
            TimelineKind::FixedRequestRejected => "fixed_request_rejected",
            TimelineKind::Renamed { .. } => "renamed",
            TimelineKind::Space { step, .. } => step,
        }
    }

    /// The detail of the line: a reason, a deadline, or where a grant came from.
    pub fn detail(&self) -> String {
        match self {
            TimelineKind::Granted { from_queue: true } => "from_queue".into(),
            TimelineKind::Warned { revoke_at } => format!("revoke_at={}", revoke_at.as_millis()),
            TimelineKind::Revoked { reason } => reason.code().into(),
            TimelineKind::LeftQueue { reason } => reason.code().into(),
            TimelineKind::Renamed { from, to } => format!("{from} -> {to}"),
            TimelineKind::Space { id, space, .. } => format!("space={space} request={id}"),
            _ => String::new(),
        }
    }
}

/// One line of a user's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// Position of the event in its stream.
    pub sequence: u64,
    /// When it happened (the event's own time where it has one, else when it was decided).
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: TimelineKind,
}

/// One UTC day's page views let through the gate by one bypass rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassDay {
    /// Start of the day (UTC midnight).
    pub day: Timestamp,
    /// The rule's name.
    pub rule: String,
    /// How many views the rule let through that day.
    pub count: u64,
    /// Whose views, with how many each.
    pub users: BTreeMap<String, u64>,
}

/// One licence-use alert firing or resolving, as audit lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// When the sweep fired or resolved it.
    pub at: Timestamp,
    /// The alert's name.
    pub name: String,
    /// `true` fired, `false` resolved.
    pub fired: bool,
    /// What the sweep measured.
    pub value: i64,
}

/// The fold of one product stream: the state and what the audit reports about its past.
///
/// Push envelopes in stream order with [`History::push`]; read the results at any time.
#[derive(Debug, Clone, Default)]
pub struct History {
    options: HistoryOptions,
    state: ProductState,
    /// The state as of `options.at`, once an envelope after it was seen.
    state_at: Option<ProductState>,
    events: u64,
    last_timestamp: Option<Timestamp>,
    occupancy: Occupancy,
    changes: Vec<ChangePoint>,
    minutes: Vec<Period>,
    days: Vec<Period>,
    revocations: BTreeMap<&'static str, u64>,
    bypasses: BTreeMap<(Timestamp, String), BypassDay>,
    alerts: Vec<AlertRecord>,
    timeline: Vec<TimelineEntry>,
    /// The names whose events make the timeline: [`HistoryOptions::user`], the names
    /// given to [`History::also_known_as`], and every name a rename of one of them gave.
    names: BTreeSet<String>,
}

impl History {
    /// An empty history that will compute what `options` ask for.
    pub fn new(options: HistoryOptions) -> Self {
        History {
            names: options.user.iter().cloned().collect(),
            options,
            ..History::default()
        }
    }

    /// Also collects the timeline under `names` (the user's other names, from the
    /// directory's renames): a rename in the product's stream is followed forward on its
    /// own, but the events before a rename are under a name the stream has not yet named.
    pub fn also_known_as(&mut self, names: impl IntoIterator<Item = String>) {
        if self.options.user.is_some() {
            self.names.extend(names);
        }
    }

    /// Folds one envelope of the stream (they must come in stream order).
    pub fn push(&mut self, envelope: &Envelope<ProductEvent>) {
        self.push_event(envelope.sequence, envelope.timestamp, &envelope.event);
    }

    /// Folds one event decided at `timestamp`, the `sequence`-th of its stream.
    pub fn push_event(&mut self, sequence: u64, timestamp: Timestamp, event: &ProductEvent) {
        if let Some(at) = self.options.at {
            if timestamp > at && self.state_at.is_none() {
                self.state_at = Some(self.state.clone());
            }
        }
        // Envelope timestamps do not go back; should a clock have, time stands still.
        let now = self.last_timestamp.map_or(timestamp, |t| t.max(timestamp));
        self.last_timestamp = Some(now);
        self.events += 1;
        if let ProductEvent::MemberRenamed { from, to } = event {
            if self.names.contains(from) {
                self.names.insert(to.clone());
            }
        }
        if !self.names.is_empty() {
            if let Some(kind) = self.timeline_kind(event) {
                self.timeline.push(TimelineEntry {
                    sequence,
                    at: event_time(event).unwrap_or(timestamp),
                    kind,
                });
            }
        }
        if let ProductEvent::SlotRevoked { reason, .. } = event {
            *self.revocations.entry(reason.code()).or_insert(0) += 1;
        }
        match event {
            ProductEvent::AlertFired {
                name, at, value, ..
            } => self.alerts.push(AlertRecord {
                at: *at,
                name: name.clone(),
                fired: true,
                value: *value,
            }),
            ProductEvent::AlertResolved { name, at, value } => self.alerts.push(AlertRecord {
                at: *at,
                name: name.clone(),
                fired: false,
                value: *value,
            }),
            _ => {}
        }
        if let ProductEvent::BypassesCounted {
            rule,
            at,
            count,
            users,
        } = event
        {
            let day = period_start(*at, DAY_MS);
            let entry = self
                .bypasses
                .entry((day, rule.clone()))
                .or_insert_with(|| BypassDay {
                    day,
                    rule: rule.clone(),
                    count: 0,
                    users: BTreeMap::new(),
                });
            entry.count += count;
            for (user, n) in users {
                *entry.users.entry(user.clone()).or_insert(0) += n;
            }
        }
        self.state.apply(event);
        let occupancy = Occupancy::of(&self.state);
        if occupancy != self.occupancy || self.events == 1 {
            self.occupancy = occupancy;
            if self.options.change_points {
                match self.changes.last_mut() {
                    Some(last) if last.at == now => last.occupancy = occupancy,
                    _ => self.changes.push(ChangePoint { at: now, occupancy }),
                }
            }
        }
        if self.options.per_minute {
            observe(&mut self.minutes, MINUTE_MS, now, occupancy);
        }
        observe(&mut self.days, DAY_MS, now, occupancy);
    }

    /// The timeline line `event` makes for `user`, if it concerns them. Read before the
    /// event is applied (a grant is "from the queue" if they were queued just before).
    fn timeline_kind(&self, event: &ProductEvent) -> Option<TimelineKind> {
        use ProductEvent as E;
        let (subject, kind) = match event {
            E::MemberEnrolled { user } => (user, TimelineKind::Enrolled),
            E::MemberRemoved { user } => (user, TimelineKind::Removed),
            E::FixedGiven { user } => (user, TimelineKind::FixedGiven),
            E::FixedTaken { user } => (user, TimelineKind::FixedTaken),
            E::UserDeactivated { user } => (user, TimelineKind::Deactivated),
            E::UserReactivated { user } => (user, TimelineKind::Reactivated),
            E::Queued { user, .. } => (user, TimelineKind::Queued),
            E::Requeued { user, .. } => (user, TimelineKind::Requeued),
            E::SlotGranted { user: u, .. } => {
                let from_queue = matches!(
                    self.state.user(u).map(|e| e.standing),
                    Some(crate::product::Standing::Queued { .. })
                );
                (u, TimelineKind::Granted { from_queue })
            }
            E::ActivityRecorded { user, .. } => (user, TimelineKind::Activity),
            E::WarningIssued {
                user, revoke_at, ..
            } => (
                user,
                TimelineKind::Warned {
                    revoke_at: *revoke_at,
                },
            ),
            E::SlotRevoked { user, reason, .. } => {
                (user, TimelineKind::Revoked { reason: *reason })
            }
            E::SlotReleased { user, .. } => (user, TimelineKind::Released),
            E::QueueLeft { user, reason, .. } => {
                (user, TimelineKind::LeftQueue { reason: *reason })
            }
            E::FixedRequested { user, .. } => (user, TimelineKind::FixedRequested),
            E::FixedRequestApproved { id, .. } => (
                &self.state.fixed_request(id)?.user,
                TimelineKind::FixedRequestApproved,
            ),
            E::FixedRequestRejected { id, .. } => (
                &self.state.fixed_request(id)?.user,
                TimelineKind::FixedRequestRejected,
            ),
            E::Configured { .. } | E::TierReconciled { .. } => return None,
            E::GroupsNoted { .. } | E::BypassesCounted { .. } | E::CapacityScheduled { .. } => {
                return None
            }
            E::AlertFired { .. } | E::AlertResolved { .. } => return None,
            E::MemberRenamed { from, to } => (
                from,
                TimelineKind::Renamed {
                    from: from.clone(),
                    to: to.clone(),
                },
            ),
            E::SpacesCatalogued { .. } => return None,
            E::SpaceRequested {
                id, user, space, ..
            } => (
                user,
                TimelineKind::Space {
                    step: "space_requested",
                    id: id.clone(),
                    space: space.clone(),
                },
            ),
            E::SpaceRequestApproved { id, .. }
            | E::SpaceRequestRejected { id, .. }
            | E::SpaceAccessGranted { id, .. }
            | E::SpaceAccessRevoked { id, .. }
            | E::SpaceAccessRemoved { id, .. }
            | E::SpaceAccessFailed { id, .. } => {
                let r = self.state.space_request(id)?;
                let step = match event {
                    E::SpaceRequestApproved { .. } => "space_request_approved",
                    E::SpaceRequestRejected { .. } => "space_request_rejected",
                    E::SpaceAccessGranted { .. } => "space_access_granted",
                    E::SpaceAccessRevoked { .. } => "space_access_revoked",
                    E::SpaceAccessFailed { .. } => "space_access_failed",
                    _ => "space_access_removed",
                };
                (
                    &r.user,
                    TimelineKind::Space {
                        step,
                        id: id.clone(),
                        space: r.space.clone(),
                    },
                )
            }
        };
        self.names.contains(subject).then_some(kind)
    }

    /// The state after every event pushed so far.
    pub fn state(&self) -> &ProductState {
        &self.state
    }

    /// The state as of [`HistoryOptions::at`]: every envelope stamped at or before it
    /// folded. `None` if no instant was asked for.
    pub fn state_at(&self) -> Option<&ProductState> {
        self.options.at?;
        Some(self.state_at.as_ref().unwrap_or(&self.state))
    }

    /// Events folded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The timestamp of the last event folded.
    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.last_timestamp
    }

    /// The occupancy now.
    pub fn occupancy(&self) -> Occupancy {
        self.occupancy
    }

    /// Every change of occupancy, oldest first, one point per instant (empty unless
    /// [`HistoryOptions::change_points`]).
    pub fn changes(&self) -> &[ChangePoint] {
        &self.changes
    }

    /// Concurrent holders and queued members per minute, from the first event's minute to
    /// the last's; quiet minutes carry the occupancy over (empty unless
    /// [`HistoryOptions::per_minute`]).
    pub fn per_minute(&self) -> Vec<Period> {
        fill_gaps(&self.minutes, MINUTE_MS)
    }

    /// Peak concurrent holders (and queued) per UTC day, from the first event's day to the
    /// last's; quiet days carry the occupancy over.
    pub fn daily_peaks(&self) -> Vec<Period> {
        fill_gaps(&self.days, DAY_MS)
    }

    /// How many slots were revoked, by reason code ([`RevokeReason::code`]).
    pub fn revocations(&self) -> &BTreeMap<&'static str, u64> {
        &self.revocations
    }

    /// Page views let through the gate by bypass rules, per UTC day and rule (oldest day
    /// first, rules by name within a day), with whose views they were.
    pub fn bypass_days(&self) -> impl Iterator<Item = &BypassDay> {
        self.bypasses.values()
    }

    /// Every licence-use alert fired or resolved, in order.
    pub fn alerts(&self) -> &[AlertRecord] {
        &self.alerts
    }

    /// The events of [`HistoryOptions::user`], in order (empty if no user was asked for).
    pub fn timeline(&self) -> &[TimelineEntry] {
        &self.timeline
    }
}

/// The event's own instant, for events that carry one.
fn event_time(event: &ProductEvent) -> Option<Timestamp> {
    use ProductEvent as E;
    match event {
        E::SlotGranted { at, .. }
        | E::Queued { at, .. }
        | E::Requeued { at, .. }
        | E::QueueLeft { at, .. }
        | E::SlotReleased { at, .. }
        | E::SlotRevoked { at, .. }
        | E::ActivityRecorded { at, .. }
        | E::WarningIssued { at, .. }
        | E::TierReconciled { at, .. }
        | E::FixedRequested { at, .. }
        | E::FixedRequestApproved { at, .. }
        | E::FixedRequestRejected { at, .. }
        | E::BypassesCounted { at, .. }
        | E::AlertFired { at, .. }
        | E::AlertResolved { at, .. }
        | E::SpacesCatalogued { at, .. }
        | E::SpaceRequested { at, .. }
        | E::SpaceRequestApproved { at, .. }
        | E::SpaceRequestRejected { at, .. }
        | E::SpaceAccessGranted { at, .. }
        | E::SpaceAccessRevoked { at, .. }
        | E::SpaceAccessRemoved { at, .. }
        | E::SpaceAccessFailed { at, .. }
        | E::CapacityScheduled { at, .. } => Some(*at),
        E::Configured { .. }
        | E::MemberEnrolled { .. }
        | E::MemberRemoved { .. }
        | E::FixedGiven { .. }
        | E::FixedTaken { .. }
        | E::UserDeactivated { .. }
        | E::UserReactivated { .. } => None,
        E::GroupsNoted { .. } | E::MemberRenamed { .. } => None,
    }
}

/// Start of the period of length `len` that contains `t`.
fn period_start(t: Timestamp, len: i64) -> Timestamp {
    Timestamp::from_millis(t.as_millis().div_euclid(len) * len)
}

/// Folds the occupancy at `now` into the periods of length `len` (time never goes back).
fn observe(periods: &mut Vec<Period>, len: i64, now: Timestamp, o: Occupancy) {
    let start = period_start(now, len);
    match periods.last_mut() {
        Some(p) if p.start == start => {
            if o.holders > p.peak_holders {
                p.peak_holders = o.holders;
                p.peak_at = now;
            }
            p.peak_queued = p.peak_queued.max(o.queued);
            p.holders_end = o.holders;
            p.queued_end = o.queued;
        }
        _ => periods.push(Period {
            start,
            peak_holders: o.holders,
            peak_at: now,
            peak_queued: o.queued,
            holders_end: o.holders,
            queued_end: o.queued,
        }),
    }
}

/// The periods with quiet ones in between filled in. A period's peaks also count what was
/// carried over from the one before (a holder who got a slot yesterday still holds it at
/// midnight): the recorded period's first observation is at its first event, so the
/// carried-in occupancy is folded in here.
fn fill_gaps(periods: &[Period], len: i64) -> Vec<Period> {
    let mut out: Vec<Period> = Vec::with_capacity(periods.len());
    let mut carried: Option<(u32, u32)> = None; // holders, queued at the end of the last
    for p in periods {
        if let Some(prev) = out.last() {
            let mut start = prev.start.as_millis() + len;
            let (holders, queued) = carried.unwrap_or((0, 0));
            while start < p.start.as_millis() {
                out.push(Period {
                    start: Timestamp::from_millis(start),
                    peak_holders: holders,
                    peak_at: Timestamp::from_millis(start),
                    peak_queued: queued,
                    holders_end: holders,
                    queued_end: queued,
                });
                start += len;
            }
        }
        let mut p = *p;
        if let Some((holders, queued)) = carried {
            if holders >= p.peak_holders {
                p.peak_holders = holders;
                p.peak_at = p.start;
            }
            p.peak_queued = p.peak_queued.max(queued);
        }
        carried = Some((p.holders_end, p.queued_end));
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::presence::Presence;
    use crate::settings::{ProductKind, Settings};

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS; // a UTC midnight

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_millis(T0 + secs * 1000)
    }

    /// A stream built by the real rules: decide each command at its instant, apply it,
    /// and keep the envelopes (sequence, timestamp, event).
    struct Stream {
        state: ProductState,
        records: Vec<(u64, Timestamp, ProductEvent)>,
    }

    impl Stream {
        fn new(slots: u32) -> Self {
            let mut s = Stream {
                state: ProductState::new(),
                records: Vec::new(),
            };
            let mut settings = Settings::new(ProductKind::Jira, 10, slots);
            settings.inactivity_s = 600;
            settings.warning_lead_s = 60;
            settings.sweep_interval_s = 60;
            s.run(t(0), Command::Configure(settings));
            for u in ["a", "b", "c"] {
                s.run(
                    t(0),
                    Command::Enrol {
                        user: u.into(),
                        active: true,
                    },
                );
            }
            s
        }

        fn run(&mut self, now: Timestamp, cmd: Command) -> &mut Self {
            let events = self.state.decide(&cmd, now).expect("the rules accept it");
            for e in events {
                self.state.apply(&e);
                let seq = self.records.len() as u64 + 1;
                self.records.push((seq, now, e));
            }
            self
        }

        fn request(&mut self, secs: i64, user: &str) -> &mut Self {
            self.run(t(secs), Command::request(user))
        }

        fn release(&mut self, secs: i64, user: &str) -> &mut Self {
            self.run(t(secs), Command::Release { user: user.into() })
        }

        fn tick(&mut self, secs: i64) -> &mut Self {
            self.run(
                t(secs),
                Command::Tick {
                    presence: Presence::default(),
                },
            )
        }

        fn history(&self, options: HistoryOptions) -> History {
            let mut h = History::new(options);
            for (seq, ts, e) in &self.records {
                h.push_event(*seq, *ts, e);
            }
            h
        }
    }

    fn users(holders: Vec<crate::product::Holder>) -> Vec<String> {
        holders.into_iter().map(|h| h.user).collect()
    }

    /// Two slots, three users: c queues at 20 s, gets a's slot at 30 s; b releases at
    /// 40 s; c is warned at 14:00 and revoked for inactivity at 15:00 (600 s after 30 s
    /// on the 60 s sweep grid: warned at 600-ish, revoked at 660).
    fn scenario() -> Stream {
        let mut s = Stream::new(2);
        s.request(10, "a")
            .request(10, "b")
            .request(20, "c")
            .release(30, "a")
            .release(40, "b");
        let mut secs = 60;
        while secs <= 900 {
            s.tick(secs);
            secs += 60;
        }
        s
    }

    #[test]
    fn state_at_an_instant_is_the_fold_of_the_prefix() {
        let s = scenario();
        let at = |secs| {
            let h = s.history(HistoryOptions {
                at: Some(t(secs)),
                ..HistoryOptions::default()
            });
            let st = h.state_at().expect("asked for").clone();
            (
                users(st.holders()),
                st.queue().into_iter().map(|q| q.user).collect::<Vec<_>>(),
            )
        };
        assert_eq!(at(15), (vec!["a".into(), "b".into()], vec![]));
        assert_eq!(
            at(25),
            (vec!["a".into(), "b".into()], vec!["c".to_string()])
        );
        assert_eq!(at(30), (vec!["b".into(), "c".into()], vec![]));
        assert_eq!(at(45), (vec!["c".into()], vec![]));
        assert_eq!(at(100_000), (vec![], vec![]));
        // Before anything: an unconfigured product.
        let h = s.history(HistoryOptions {
            at: Some(t(-1)),
            ..HistoryOptions::default()
        });
        assert!(h.state_at().expect("asked for").settings().is_none());
        // The state at the end equals a plain replay.
        let end = s.history(HistoryOptions::default());
        assert_eq!(end.state().holders(), s.state.holders());
        assert!(end.state_at().is_none());
    }

    #[test]
    fn change_points_follow_occupancy() {
        let s = scenario();
        let h = s.history(HistoryOptions {
            change_points: true,
            ..HistoryOptions::default()
        });
        let points: Vec<(i64, u32, u32)> = h
            .changes()
            .iter()
            .map(|c| {
                (
                    (c.at.as_millis() - T0) / 1000,
                    c.occupancy.holders,
                    c.occupancy.queued,
                )
            })
            .collect();
        // c's revocation: warned at the first sweep >= 30+600-60 = 570 -> 600, revoked at
        // the first sweep >= 630 -> 660.
        assert_eq!(
            points,
            vec![
                (0, 0, 0),
                (10, 2, 0),
                (20, 2, 1),
                (30, 2, 0),
                (40, 1, 0),
                (660, 0, 0)
            ]
        );
        let first = h.changes()[0].occupancy;
        assert_eq!(
            (first.shared_slots, first.licence_tier, first.fixed),
            (2, 10, 0)
        );
        assert_eq!(h.revocations().get("inactivity"), Some(&1));
        assert_eq!(h.revocations().len(), 1);
        // Off by default.
        assert!(s.history(HistoryOptions::default()).changes().is_empty());
    }

    #[test]
    fn per_minute_and_daily_peaks() {
        let mut s = scenario();
        // Next day (and one quiet day later) a alone holds a slot across midnight.
        s.request(2 * 86_400 - 30, "a")
            .release(2 * 86_400 + 30, "a");
        let h = s.history(HistoryOptions::default());
        let days = h.daily_peaks();
        let peaks: Vec<(i64, u32)> = days
            .iter()
            .map(|d| ((d.start.as_millis() - T0) / DAY_MS, d.peak_holders))
            .collect();
        assert_eq!(peaks, vec![(0, 2), (1, 1), (2, 1)]);
        assert_eq!(days[0].peak_at, t(10));
        assert_eq!(days[0].peak_queued, 1);
        // Day 2's peak was carried in from midnight, and a released at 00:00:30.
        assert_eq!(days[2].peak_at, t(2 * 86_400));
        assert_eq!(days[2].holders_end, 0);

        let minutes = h.per_minute();
        assert_eq!(minutes[0].start, t(0));
        assert_eq!(minutes[0].peak_holders, 2);
        assert_eq!(minutes[0].holders_end, 1);
        // Minutes 1..10 are quiet, carrying c's slot; c lost it at 11:00.
        assert!(minutes[1..11].iter().all(|m| m.peak_holders == 1));
        assert_eq!((minutes[11].peak_holders, minutes[11].holders_end), (1, 0));
        assert_eq!(minutes[12].peak_holders, 0);
        assert_eq!(minutes.len() as i64, (2 * 86_400 + 30) / 60 + 1);
    }

    #[test]
    fn per_minute_peaks_only_when_asked_and_the_rest_unchanged() {
        let s = scenario();
        let all = s.history(HistoryOptions::default());
        let days_only = s.history(HistoryOptions {
            per_minute: false,
            ..HistoryOptions::default()
        });
        assert!(!all.per_minute().is_empty());
        assert!(days_only.per_minute().is_empty());
        assert_eq!(days_only.daily_peaks(), all.daily_peaks());
        assert_eq!(days_only.revocations(), all.revocations());
        assert_eq!(days_only.occupancy(), all.occupancy());
        assert_eq!(days_only.state().holders(), all.state().holders());
    }

    #[test]
    fn one_users_timeline() {
        let s = scenario();
        let h = s.history(HistoryOptions {
            user: Some("c".into()),
            ..HistoryOptions::default()
        });
        let lines: Vec<(i64, &str, String)> = h
            .timeline()
            .iter()
            .map(|l| {
                (
                    (l.at.as_millis() - T0) / 1000,
                    l.kind.code(),
                    l.kind.detail(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (0, "enrolled", String::new()),
                (20, "queued", String::new()),
                (30, "granted", "from_queue".into()),
                (600, "warned", format!("revoke_at={}", t(660).as_millis())),
                (660, "revoked", "inactivity".into()),
            ]
        );
        let json = serde_json::to_value(&h.timeline()[4]).expect("serialises");
        assert_eq!(json["kind"], "revoked");
        assert_eq!(json["reason"], "inactivity");
        // a's grant was not from the queue.
        let a = s.history(HistoryOptions {
            user: Some("a".into()),
            ..HistoryOptions::default()
        });
        assert_eq!(
            a.timeline()[1].kind,
            TimelineKind::Granted { from_queue: false }
        );
        assert_eq!(a.timeline()[2].kind, TimelineKind::Released);
    }
}
