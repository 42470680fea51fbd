//! Helpers shared by the virtual-time tests (`rules.rs`, `timeline.rs`): a clock origin
//! aligned to every sweep grid, event constructors, the observable state of a product and
//! a small driver that decides, applies and checks replay after every command.

#![allow(dead_code)] // each test file uses its own subset

use slotpool_events::{
    Command, LeaveReason, Presence, ProductEvent, ProductKind, ProductState, Refusal, RevokeReason,
    Settings, Timestamp,
};
use std::collections::BTreeSet;

/// Cases per property test: `default`, or `PROPTEST_CASES` when set (`make soak` runs
/// the pure core's properties with many more cases than `make test` can afford).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The origin of every virtual clock: a whole hour since the epoch, so it lies on the
/// sweep grid of every interval that divides 3600 s (1..=60 s, 300 s...).
pub const T0_MS: i64 = 1_699_999_200_000;

/// `secs` seconds after [`T0_MS`].
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0_MS + secs * 1000)
}

/// `ms` milliseconds after [`T0_MS`].
pub fn at_ms(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0_MS + ms)
}

/// Settings for a small product: everything explicit, nothing from the defaults that
/// matters to a test.
pub fn settings(
    shared_slots: u32,
    inactivity_s: u32,
    warning_lead_s: u32,
    sweep_s: u32,
) -> Settings {
    let mut s = Settings::new(ProductKind::Generic, 100, shared_slots);
    s.inactivity_s = inactivity_s;
    s.warning_lead_s = warning_lead_s;
    s.sweep_interval_s = sweep_s;
    s.queue_timer_s = 3600;
    s
}

pub fn granted(user: &str, t: Timestamp) -> ProductEvent {
    ProductEvent::SlotGranted {
        user: user.to_string(),
        at: t,
    }
}

pub fn queued(user: &str, t: Timestamp) -> ProductEvent {
    ProductEvent::Queued {
        user: user.to_string(),
        at: t,
    }
}

pub fn requeued(user: &str, t: Timestamp) -> ProductEvent {
    ProductEvent::Requeued {
        user: user.to_string(),
        at: t,
    }
}

pub fn revoked(user: &str, reason: RevokeReason, t: Timestamp) -> ProductEvent {
    ProductEvent::SlotRevoked {
        user: user.to_string(),
        reason,
        at: t,
    }
}

pub fn left(user: &str, reason: LeaveReason, t: Timestamp) -> ProductEvent {
    ProductEvent::QueueLeft {
        user: user.to_string(),
        reason,
        at: t,
    }
}

pub fn warned(user: &str, t: Timestamp, revoke_at: Timestamp) -> ProductEvent {
    ProductEvent::WarningIssued {
        user: user.to_string(),
        at: t,
        revoke_at,
    }
}

pub fn activity(user: &str, t: Timestamp) -> ProductEvent {
    ProductEvent::ActivityRecorded {
        user: user.to_string(),
        at: t,
    }
}

/// Every user name an event stream mentions.
pub fn users_of(events: &[ProductEvent]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ProductEvent::Configured { .. } | ProductEvent::TierReconciled { .. } => None,
            ProductEvent::MemberEnrolled { user }
            | ProductEvent::MemberRemoved { user }
            | ProductEvent::FixedGiven { user }
            | ProductEvent::FixedTaken { user }
            | ProductEvent::UserDeactivated { user }
            | ProductEvent::UserReactivated { user }
            | ProductEvent::SlotGranted { user, .. }
            | ProductEvent::Queued { user, .. }
            | ProductEvent::QueueLeft { user, .. }
            | ProductEvent::SlotReleased { user, .. }
            | ProductEvent::SlotRevoked { user, .. }
            | ProductEvent::ActivityRecorded { user, .. }
            | ProductEvent::WarningIssued { user, .. }
            | ProductEvent::Requeued { user, .. }
            | ProductEvent::FixedRequested { user, .. }
            | ProductEvent::SpaceRequested { user, .. }
            | ProductEvent::GroupsNoted { user, .. }
            | ProductEvent::MemberRenamed { to: user, .. } => Some(user.clone()),
            ProductEvent::FixedRequestApproved { .. }
            | ProductEvent::FixedRequestRejected { .. }
            | ProductEvent::BypassesCounted { .. }
            | ProductEvent::AlertFired { .. }
            | ProductEvent::AlertResolved { .. }
            | ProductEvent::SpacesCatalogued { .. }
            | ProductEvent::SpaceRequestApproved { .. }
            | ProductEvent::SpaceRequestRejected { .. }
            | ProductEvent::SpaceAccessGranted { .. }
            | ProductEvent::SpaceAccessRevoked { .. }
            | ProductEvent::SpaceAccessRemoved { .. }
            | ProductEvent::SpaceAccessFailed { .. }
            | ProductEvent::CapacityScheduled { .. } => None,
        })
        .collect()
}

/// Everything the outside world can observe of a product at `now`, for `users`: settings,
/// holders (with warnings and revocation times), queue, counts, notices, every user's
/// entry (lock, re-login flag) and view, and when the next sweep is needed. A queued
/// user's ticket is the queue's internal key, not something anyone observes (the place
/// is, in the queue and the view): a state rebuilt from an image numbers its queue
/// afresh, so tickets are left out.
pub fn observe<'a>(
    state: &ProductState,
    users: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
) -> String {
    let users: Vec<_> = users
        .into_iter()
        .map(|u| {
            (
                u,
                state.user(u).copied().map(|mut e| {
                    if let slotpool_events::Standing::Queued { ticket, .. } = &mut e.standing {
                        *ticket = 0;
                    }
                    e
                }),
                state.slot_view(u, now),
                state.noted_groups(u).to_vec(),
            )
        })
        .collect();
    format!(
        "settings={:?}\ncapacity={} next={:?} job={:?}\nholders={:?}\nqueue={:?}\ncounts={:?}\nnotices={:?}\nnext_tick={:?}\nreservations={:?}\nusers={:?}",
        state.settings(),
        state.effective_shared_slots(),
        state.next_capacity_change(now),
        state.next_capacity_job(now),
        state.holders(),
        state.queue(),
        state.counts(),
        state.notices().collect::<Vec<_>>(),
        state.next_tick(now),
        state.reservation_use(),
        users
    )
}

/// A product driven in virtual time: every command is decided and applied, event by
/// event, into the state and the journal, and replaying the journal must give the same
/// observable state.
pub struct Sim {
    pub state: ProductState,
    pub journal: Vec<ProductEvent>,
    pub now: Timestamp,
}

impl Sim {
    /// A product configured with `settings` at [`at`]`(0)`.
    pub fn new(settings: Settings) -> Self {
        let mut sim = Sim {
            state: ProductState::new(),
            journal: Vec::new(),
            now: at(0),
        };
        sim.run(Command::Configure(settings));
        sim
    }

    /// A product with `users` enrolled (active) and each granted a slot at `at(0)`, in
    /// order (so the pool must have room for them).
    pub fn with_holders(settings: Settings, users: &[&str]) -> Self {
        let mut sim = Sim::new(settings);
        for u in users {
            sim.enrol(u);
            assert_eq!(sim.request(u), vec![granted(u, sim.now)], "{u} is granted");
        }
        sim
    }

    /// Moves the clock to `at(secs)` (never backwards).
    pub fn set(&mut self, secs: i64) -> &mut Self {
        self.set_at(at(secs))
    }

    /// Moves the clock to `t` (never backwards).
    pub fn set_at(&mut self, t: Timestamp) -> &mut Self {
        assert!(
            t >= self.now,
            "the clock goes forward: {:?} < {:?}",
            t,
            self.now
        );
        self.now = t;
        self
    }

    /// Decides `command` now; applies and journals the events; checks replay.
    pub fn try_run(&mut self, command: Command) -> Result<Vec<ProductEvent>, Refusal> {
        let events = self.state.decide(&command, self.now)?;
        for e in &events {
            self.apply(e.clone());
        }
        Ok(events)
    }

    /// Like [`Sim::try_run`], for a command that must not be refused.
    pub fn run(&mut self, command: Command) -> Vec<ProductEvent> {
        let shown = format!("{command:?}");
        match self.try_run(command) {
            Ok(events) => events,
            Err(r) => panic!("{shown} refused at {:?}: {r}", self.now),
        }
    }

    /// Applies a recorded fact directly (as replay would), and checks replay.
    pub fn apply(&mut self, event: ProductEvent) {
        self.state.apply(&event);
        self.journal.push(event);
        self.check_replay();
    }

    pub fn check_replay(&self) {
        let users = users_of(&self.journal);
        let names = || users.iter().map(String::as_str);
        let replayed = ProductState::replay(self.journal.iter());
        assert_eq!(
            observe(&replayed, names(), self.now),
            observe(&self.state, names(), self.now),
            "replay differs"
        );
    }

    pub fn enrol(&mut self, user: &str) -> Vec<ProductEvent> {
        self.run(Command::Enrol {
            user: user.to_string(),
            active: true,
        })
    }

    pub fn request(&mut self, user: &str) -> Vec<ProductEvent> {
        self.run(Command::request(user))
    }

    /// A request by `user`, with the directory's groups of the user (rule 10).
    pub fn request_in(&mut self, user: &str, groups: &[&str]) -> Vec<ProductEvent> {
        self.run(Command::Request {
            user: user.to_string(),
            attributes: None,
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        })
    }

    pub fn release(&mut self, user: &str) -> Vec<ProductEvent> {
        self.run(Command::Release {
            user: user.to_string(),
        })
    }

    pub fn activity(&mut self, user: &str) -> Vec<ProductEvent> {
        self.run(Command::Activity {
            user: user.to_string(),
        })
    }

    /// A sweep with nobody connected, nobody polling and nothing coalesced.
    pub fn tick(&mut self) -> Vec<ProductEvent> {
        self.tick_with(Presence::default())
    }

    pub fn tick_with(&mut self, presence: Presence) -> Vec<ProductEvent> {
        self.run(Command::Tick { presence })
    }
}

/// A presence with these users' streams open.
pub fn connected(users: &[&str]) -> Presence {
    Presence {
        connected: users.iter().map(|u| u.to_string()).collect(),
        ..Presence::default()
    }
}

/// Checks what recording coalesced activity must leave: every holder looks as
/// `holders_seen` showed them before (same user, since and last activity; an unwarned
/// holder exactly, while a warned holder's recorded activity also cancels the warning).
pub fn check_seen_before(
    before: &ProductState,
    recent: &std::collections::HashMap<String, Timestamp>,
    now: Timestamp,
    after: &ProductState,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let past: std::collections::HashMap<String, Timestamp> = recent
        .iter()
        .filter(|(_, t)| **t <= now)
        .map(|(u, t)| (u.clone(), *t))
        .collect();
    let seen = before.holders_seen(&past);
    let holders = after.holders();
    proptest::prop_assert_eq!(seen.len(), holders.len());
    for (s, h) in seen.iter().zip(&holders) {
        proptest::prop_assert_eq!(
            (&s.user, s.since, s.last_activity),
            (&h.user, h.since, h.last_activity)
        );
        if s.warned_at.is_none() {
            proptest::prop_assert_eq!(s, h, "holders_seen of an unwarned holder");
        }
    }
    Ok(())
}
