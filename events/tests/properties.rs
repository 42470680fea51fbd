//! Property tests of the pure core.
//!
//! Random sequences of commands at non-decreasing random times are run through
//! `ProductState::decide` + `apply`, one event at a time, and checked against:
//!
//! - the invariants of DESIGN.md ("every rule above holds after every event"), after every
//!   single event;
//! - the fair-queue rule (a freed slot goes to the queue head, in the same command);
//! - replay: folding all events so far into a fresh state gives the same observable state;
//! - a small reference model, written from the rules in DESIGN.md (Behaviour 1, 2 without
//!   the queue timer, 5 and 6) with plain `Vec`s and sets, which must give the same answer
//!   (the same events, or the same refusal code) and leave every user standing the same.
//!
//! The directory's state machine gets the same treatment on its own.

use proptest::prelude::*;
use slotpool_events::{
    Command, DirectoryCommand, DirectoryEvent, DirectoryState, LeaveReason, ProductEvent,
    ProductKind, ProductState, RevokeReason, Settings, SlotView, Standing, Timestamp,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The small user set every sequence draws from.
const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];
/// The start of every simulated clock.
const T0: i64 = 1_700_000_000_000;
/// Longest interval a setting accepts (DESIGN: thirty days), in seconds.
const MAX_INTERVAL_S: u32 = 30 * 24 * 3600;
/// Largest licence tier accepted.
const MAX_TIER: u32 = 10_000_000;

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// Where a user stands, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MStanding {
    Idle,
    Holding { since: Timestamp, last: Timestamp },
    Queued { since: Timestamp },
}

/// A product, the naive way: sets of names, a `Vec` of holders, a `Vec` queue.
#[derive(Debug, Clone, Default)]
struct Model {
    settings: Option<Settings>,
    members: BTreeSet<String>,
    fixed: BTreeSet<String>,
    deactivated: BTreeSet<String>,
    /// (user, since, last activity), in no particular order.
    holders: Vec<(String, Timestamp, Timestamp)>,
    /// (user, since), head first.
    queue: Vec<(String, Timestamp)>,
}

/// Settings validation, from the documented rules: tier 1..=10M, fixed + shared <= tier,
/// every interval within 30 days (inactivity, sweep and queue timer at least 1 s), warning
/// lead shorter than the inactivity time.
fn model_settings_valid(s: &Settings, fixed: usize) -> bool {
    let interval = |v: u32, min: u32| v >= min && v <= MAX_INTERVAL_S;
    s.licence_tier >= 1
        && s.licence_tier <= MAX_TIER
        && fixed as u64 + u64::from(s.shared_slots) <= u64::from(s.licence_tier)
        && interval(s.inactivity_s, 1)
        && interval(s.sweep_interval_s, 1)
        && interval(s.queue_timer_s, 1)
        && interval(s.lock_s, 0)
        && s.warning_lead_s < s.inactivity_s
}

impl Model {
    fn standing(&self, user: &str) -> MStanding {
        if let Some((_, since, last)) = self.holders.iter().find(|(u, _, _)| u == user) {
            return MStanding::Holding {
                since: *since,
                last: *last,
            };
        }
        if let Some((_, since)) = self.queue.iter().find(|(u, _)| u == user) {
            return MStanding::Queued { since: *since };
        }
        MStanding::Idle
    }

    fn shared(&self) -> usize {
        self.settings
            .as_ref()
            .map_or(0, |s| s.shared_slots as usize)
    }

    /// The user loses the slot (`revoke` = None means they gave it back) or the queue place.
    fn lose(
        &mut self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        revoke: Option<RevokeReason>,
        leave: LeaveReason,
        now: Timestamp,
    ) {
        if let Some(i) = self.holders.iter().position(|(u, _, _)| u == user) {
            self.holders.remove(i);
            out.push(match revoke {
                None => ProductEvent::SlotReleased {
                    user: user.to_string(),
                    at: now,
                },
                Some(reason) => ProductEvent::SlotRevoked {
                    user: user.to_string(),
                    reason,
                    at: now,
                },
            });
        } else if let Some(i) = self.queue.iter().position(|(u, _)| u == user) {
            self.queue.remove(i);
            out.push(ProductEvent::QueueLeft {
                user: user.to_string(),
                reason: leave,
                at: now,
            });
        }
    }

    /// Rule 2: every free slot goes to the head of the queue.
    fn fill(&mut self, out: &mut Vec<ProductEvent>, now: Timestamp) {
        while self.holders.len() < self.shared() && !self.queue.is_empty() {
            let (user, _) = self.queue.remove(0);
            out.push(ProductEvent::SlotGranted {
                user: user.clone(),
                at: now,
            });
            self.holders.push((user, now, now));
        }
    }

    /// The directory's view of the user changed (or not).
    fn activity_change(&mut self, out: &mut Vec<ProductEvent>, user: &str, active: bool) {
        let deactivated = self.deactivated.contains(user);
        if active && deactivated {
            self.deactivated.remove(user);
            out.push(ProductEvent::UserReactivated {
                user: user.to_string(),
            });
        } else if !active && !deactivated {
            self.deactivated.insert(user.to_string());
            out.push(ProductEvent::UserDeactivated {
                user: user.to_string(),
            });
        }
    }

    /// Answers a command and changes the model accordingly; a refusal changes nothing.
    fn step(
        &mut self,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<ProductEvent>, &'static str> {
        let mut out = Vec::new();
        if let Command::Configure(s) = command {
            if !model_settings_valid(s, self.fixed.len()) {
                return Err("invalid_settings");
            }
            if self.settings.as_ref() == Some(s) {
                return Ok(out);
            }
            // Rule 6: shrinking revokes the longest-inactive holders (ties: by name).
            let excess = self.holders.len().saturating_sub(s.shared_slots as usize);
            let mut by_inactivity = self.holders.clone();
            by_inactivity.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
            for (user, _, _) in by_inactivity.into_iter().take(excess) {
                self.holders.retain(|(u, _, _)| *u != user);
                out.push(ProductEvent::SlotRevoked {
                    user,
                    reason: RevokeReason::PoolShrunk,
                    at: now,
                });
            }
            self.settings = Some(s.clone());
            out.push(ProductEvent::Configured {
                settings: s.clone(),
            });
            // Growing gives the new slots to the queue, head first.
            self.fill(&mut out, now);
            return Ok(out);
        }
        let Some(settings) = self.settings.clone() else {
            return Err("unknown_product");
        };
        match command {
            Command::Configure(_) => unreachable!(),
            Command::Enrol { user, active } => {
                if self.fixed.contains(user) {
                    return Err("fixed_user");
                }
                if self.members.insert(user.clone()) {
                    out.push(ProductEvent::MemberEnrolled { user: user.clone() });
                }
                // Never a slot or a queue place for a deactivated user.
                if !active && !self.deactivated.contains(user) {
                    self.lose(
                        &mut out,
                        user,
                        Some(RevokeReason::Deactivated),
                        LeaveReason::Deactivated,
                        now,
                    );
                }
                self.activity_change(&mut out, user, *active);
                self.fill(&mut out, now);
            }
            Command::Remove { user } => {
                if self.members.contains(user) {
                    self.lose(
                        &mut out,
                        user,
                        Some(RevokeReason::Removed),
                        LeaveReason::Removed,
                        now,
                    );
                    self.members.remove(user);
                    out.push(ProductEvent::MemberRemoved { user: user.clone() });
                    self.fill(&mut out, now);
                }
            }
            Command::GiveFixed { user, active } => {
                if !self.fixed.contains(user) {
                    let fixed = self.fixed.len() as u64 + 1;
                    if fixed + u64::from(settings.shared_slots) > u64::from(settings.licence_tier) {
                        return Err("tier_exceeded");
                    }
                    if self.members.contains(user) {
                        self.lose(
                            &mut out,
                            user,
                            Some(RevokeReason::Fixed),
                            LeaveReason::Fixed,
                            now,
                        );
                        self.members.remove(user);
                        out.push(ProductEvent::MemberRemoved { user: user.clone() });
                    }
                    self.fixed.insert(user.clone());
                    out.push(ProductEvent::FixedGiven { user: user.clone() });
                    self.fill(&mut out, now);
                }
                self.activity_change(&mut out, user, *active);
            }
            Command::TakeFixed { user } => {
                if self.fixed.remove(user) {
                    out.push(ProductEvent::FixedTaken { user: user.clone() });
                }
            }
            Command::SetActive { user, active } => {
                let known = self.members.contains(user)
                    || self.fixed.contains(user)
                    || self.deactivated.contains(user);
                if known {
                    if !active && !self.deactivated.contains(user) {
                        self.lose(
                            &mut out,
                            user,
                            Some(RevokeReason::Deactivated),
                            LeaveReason::Deactivated,
                            now,
                        );
                    }
                    self.activity_change(&mut out, user, *active);
                    self.fill(&mut out, now);
                }
            }
            Command::Request { user } => {
                if self.deactivated.contains(user) {
                    return Err("deactivated");
                }
                if self.fixed.contains(user) {
                    return Ok(out);
                }
                if !self.members.contains(user) {
                    return Err("not_member");
                }
                if self.standing(user) == MStanding::Idle {
                    // Rule 1: a free slot and nobody ahead means granted; else queued.
                    if self.holders.len() < self.shared() && self.queue.is_empty() {
                        self.holders.push((user.clone(), now, now));
                        out.push(ProductEvent::SlotGranted {
                            user: user.clone(),
                            at: now,
                        });
                    } else {
                        self.queue.push((user.clone(), now));
                        out.push(ProductEvent::Queued {
                            user: user.clone(),
                            at: now,
                        });
                    }
                }
            }
            Command::Release { user } => {
                self.lose(&mut out, user, None, LeaveReason::Released, now);
                self.fill(&mut out, now);
            }
            Command::Activity { user } => {
                let Some(h) = self.holders.iter_mut().find(|(u, _, _)| u == user) else {
                    return Err("not_holder");
                };
                h.2 = h.2.max(now);
                out.push(ProductEvent::ActivityRecorded {
                    user: user.clone(),
                    at: now,
                });
            }
            Command::Revoke { user } => {
                let Some(i) = self.holders.iter().position(|(u, _, _)| u == user) else {
                    return Err("not_holder");
                };
                self.holders.remove(i);
                out.push(ProductEvent::SlotRevoked {
                    user: user.clone(),
                    reason: RevokeReason::Admin,
                    at: now,
                });
                self.fill(&mut out, now);
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// One step of a generated run, resolved against the state when it runs.
#[derive(Debug, Clone)]
enum Op {
    /// A command as generated.
    Cmd(Command),
    /// The current settings with another `shared_slots` (and maybe another tier): a resize,
    /// a grow, a shrink, or no change at all.
    Resize { shared_slots: u32, tier_delta: i8 },
}

fn user() -> impl Strategy<Value = String> {
    (0..USERS.len()).prop_map(|i| USERS[i].to_string())
}

fn settings(
    tier: impl Strategy<Value = u32>,
    shared: impl Strategy<Value = u32>,
) -> impl Strategy<Value = Settings> {
    (
        tier,
        shared,
        prop_oneof![6 => Just(1800u32), 1 => Just(60u32), 1 => Just(30u32)],
        prop_oneof![4 => Just(60u32), 1 => Just(10u32)],
        any::<bool>(),
    )
        .prop_map(|(tier, shared, inactivity_s, warning_lead_s, reclaim)| {
            let mut s = Settings::new(ProductKind::Jira, tier, shared);
            s.inactivity_s = inactivity_s;
            s.warning_lead_s = warning_lead_s;
            s.reclaim_on_request = reclaim;
            s
        })
}

/// The first Configure: small and valid.
fn first_settings() -> impl Strategy<Value = Settings> {
    (1u32..8)
        .prop_flat_map(|tier| (Just(tier), 0..=tier))
        .prop_map(|(tier, shared)| Settings::new(ProductKind::Jira, tier, shared))
}

/// Any command but Configure.
fn user_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (user(), prop::bool::weighted(0.95)).prop_map(|(user, active)| Command::Enrol { user, active }),
        1 => user().prop_map(|user| Command::Remove { user }),
        1 => (user(), prop::bool::weighted(0.8)).prop_map(|(user, active)| Command::GiveFixed { user, active }),
        1 => user().prop_map(|user| Command::TakeFixed { user }),
        1 => (user(), any::<bool>()).prop_map(|(user, active)| Command::SetActive { user, active }),
        8 => user().prop_map(|user| Command::Request { user }),
        3 => user().prop_map(|user| Command::Release { user }),
        3 => user().prop_map(|user| Command::Activity { user }),
        1 => user().prop_map(|user| Command::Revoke { user }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => user_command().prop_map(Op::Cmd),
        2 => (0u32..=8, -1i8..=1).prop_map(|(shared_slots, tier_delta)| Op::Resize { shared_slots, tier_delta }),
        1 => settings(0u32..=9, 0u32..=9).prop_map(|s| Op::Cmd(Command::Configure(s))),
    ]
}

/// Milliseconds to the next command: often none at all (ties in activity times matter).
fn delay() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0i64), 3 => 1i64..5_000, 1 => 5_000i64..4_000_000]
}

/// A whole run: a few commands before the product exists, the first Configure, then
/// 1..200 steps, each with its delay (ms) before it.
type Plan = (Vec<(Command, i64)>, Settings, Vec<(Op, i64)>);

fn run_plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec((user_command(), delay()), 0..3),
        first_settings(),
        prop::collection::vec((op(), delay()), 1..200),
    )
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// The invariants that hold after every single event. `joined` maps each queued user to
/// the order in which their `Queued` event was applied.
fn check_invariants(
    state: &ProductState,
    joined: &HashMap<String, u64>,
) -> Result<(), TestCaseError> {
    let shared = state.settings().map_or(0, |s| s.shared_slots as usize);
    let holders = state.holders();
    let queue = state.queue();
    let counts = state.counts();
    prop_assert!(
        holders.len() <= shared,
        "{} holders > {} shared slots",
        holders.len(),
        shared
    );
    prop_assert_eq!(counts.holders, holders.len());
    prop_assert_eq!(counts.queued, queue.len());
    let mut holder_names = HashSet::new();
    for h in &holders {
        prop_assert!(
            holder_names.insert(h.user.clone()),
            "{} holds twice",
            h.user
        );
        let e = state.user(&h.user);
        prop_assert!(e.is_some(), "holder {} unknown", h.user);
        let e = e.unwrap();
        prop_assert!(e.member, "holder {} is not a member", h.user);
        prop_assert!(!e.fixed, "holder {} is fixed", h.user);
        prop_assert!(!e.deactivated, "holder {} is deactivated", h.user);
        prop_assert!(
            matches!(e.standing, Standing::Holding { since, last_activity } if since == h.since && last_activity == h.last_activity),
            "holder {} has standing {:?}",
            h.user,
            e.standing
        );
    }
    let mut last_join = None;
    for (i, q) in queue.iter().enumerate() {
        prop_assert_eq!(q.position, i + 1, "queue positions are 1..n");
        prop_assert!(
            !holder_names.contains(&q.user),
            "{} both holds and waits",
            q.user
        );
        let e = state.user(&q.user);
        prop_assert!(e.is_some(), "queued {} unknown", q.user);
        let e = e.unwrap();
        prop_assert!(e.member, "queued {} is not a member", q.user);
        prop_assert!(!e.fixed, "queued {} is fixed", q.user);
        prop_assert!(!e.deactivated, "queued {} is deactivated", q.user);
        prop_assert!(
            matches!(e.standing, Standing::Queued { since, .. } if since == q.since),
            "queued {} has standing {:?}",
            q.user,
            e.standing
        );
        let j = joined.get(&q.user).copied();
        prop_assert!(j.is_some(), "{} is queued without having joined", q.user);
        prop_assert!(
            last_join < j,
            "queue order is not the order of joining: {:?}",
            queue.iter().map(|q| &q.user).collect::<Vec<_>>()
        );
        last_join = j;
    }
    // Nobody stands anywhere the lists do not show.
    let mut members = 0;
    let mut fixed = 0;
    for u in USERS {
        if let Some(e) = state.user(u) {
            members += usize::from(e.member);
            fixed += usize::from(e.fixed);
            match e.standing {
                Standing::Idle => {}
                Standing::Holding { .. } => prop_assert!(holder_names.contains(u)),
                Standing::Queued { .. } => prop_assert!(queue.iter().any(|q| q.user == u)),
            }
        }
    }
    prop_assert_eq!(counts.members, members);
    prop_assert_eq!(counts.fixed, fixed);
    Ok(())
}

/// Everything the outside world can observe of a product at `now`.
fn observe(state: &ProductState, now: Timestamp) -> String {
    let users: Vec<_> = USERS
        .iter()
        .map(|u| (u, state.user(u).copied(), state.slot_view(u, now)))
        .collect();
    format!(
        "settings={:?}\nholders={:?}\nqueue={:?}\ncounts={:?}\nusers={:?}",
        state.settings(),
        state.holders(),
        state.queue(),
        state.counts(),
        users
    )
}

/// The model and the product agree on every user, the holders and the queue.
fn check_against_model(
    state: &ProductState,
    model: &Model,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(state.settings(), model.settings.as_ref());
    for u in USERS {
        let (member, fixed, deactivated, standing) = match state.user(u) {
            None => (false, false, false, MStanding::Idle),
            Some(e) => (
                e.member,
                e.fixed,
                e.deactivated,
                match e.standing {
                    Standing::Idle => MStanding::Idle,
                    Standing::Holding {
                        since,
                        last_activity,
                    } => MStanding::Holding {
                        since,
                        last: last_activity,
                    },
                    Standing::Queued { since, .. } => MStanding::Queued { since },
                },
            ),
        };
        prop_assert_eq!(member, model.members.contains(u), "member {}", u);
        prop_assert_eq!(fixed, model.fixed.contains(u), "fixed {}", u);
        prop_assert_eq!(
            deactivated,
            model.deactivated.contains(u),
            "deactivated {}",
            u
        );
        prop_assert_eq!(standing, model.standing(u), "standing of {}", u);

        // The user's own view follows from the standing.
        let view = state.slot_view(u, now);
        let inactivity_s = model.settings.as_ref().map_or(0, |s| s.inactivity_s);
        match model.standing(u) {
            _ if model.fixed.contains(u) && !model.deactivated.contains(u) => {
                prop_assert_eq!(view, SlotView::Fixed, "view of {}", u)
            }
            MStanding::Idle => prop_assert_eq!(view, SlotView::None, "view of {}", u),
            MStanding::Holding { last, .. } => prop_assert_eq!(
                view,
                SlotView::Granted {
                    revoke_at: last.plus_secs(inactivity_s).max(now)
                },
                "view of {}",
                u
            ),
            MStanding::Queued { .. } => {
                let expected = model.queue.iter().position(|(q, _)| q == u).map(|i| i + 1);
                prop_assert!(
                    matches!(view, SlotView::Queued { position, .. } if Some(position) == expected),
                    "view of {}: {:?}, expected position {:?}",
                    u,
                    view,
                    expected
                );
            }
        }
    }
    let mut expected_holders = model.holders.clone();
    expected_holders.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let holders: Vec<_> = state
        .holders()
        .into_iter()
        .map(|h| (h.user, h.since, h.last_activity))
        .collect();
    prop_assert_eq!(holders, expected_holders);
    let queue: Vec<_> = state
        .queue()
        .into_iter()
        .map(|q| (q.user, q.since))
        .collect();
    prop_assert_eq!(&queue, &model.queue);
    let counts = state.counts();
    prop_assert_eq!(counts.members, model.members.len());
    prop_assert_eq!(counts.fixed, model.fixed.len());

    // The estimated wait never shrinks further back in the queue.
    let mut waits: Vec<(usize, u64)> = USERS
        .iter()
        .filter_map(|u| match state.slot_view(u, now) {
            SlotView::Queued {
                position,
                estimated_wait_s,
                retry_after_s,
            } => {
                assert!(retry_after_s >= 1);
                Some((position, estimated_wait_s))
            }
            _ => None,
        })
        .collect();
    waits.sort();
    for w in waits.windows(2) {
        prop_assert!(w[0].1 <= w[1].1, "estimated waits {:?}", waits);
    }
    Ok(())
}

/// Rule 2, checked on one command's events: slots go to the queue in order, and a freed
/// slot goes to the queue head within the same command.
fn check_fair(
    command: &Command,
    queue_before: &[String],
    events: &[ProductEvent],
    state: &ProductState,
) -> Result<(), TestCaseError> {
    let leavers: HashSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            ProductEvent::QueueLeft { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .collect();
    let waiting: Vec<&str> = queue_before
        .iter()
        .map(String::as_str)
        .filter(|u| !leavers.contains(u))
        .collect();
    let granted: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ProductEvent::SlotGranted { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .collect();
    let from_queue: Vec<&str> = granted
        .iter()
        .copied()
        .filter(|u| queue_before.iter().any(|q| q == u))
        .collect();
    prop_assert!(
        waiting.starts_with(&from_queue),
        "grants {:?} are not the queue's head {:?}",
        from_queue,
        waiting
    );
    if granted.len() != from_queue.len() {
        // A grant past the queue: only a request into an empty queue.
        prop_assert!(
            matches!(command, Command::Request { user } if granted == [user.as_str()] && queue_before.is_empty()),
            "{:?} granted {:?} past the queue {:?}",
            command,
            granted,
            queue_before
        );
    }
    let freed = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ProductEvent::SlotReleased { .. } | ProductEvent::SlotRevoked { .. }
            )
        })
        .count();
    if freed > 0 && !waiting.is_empty() && !matches!(command, Command::Configure(_)) {
        prop_assert_eq!(
            from_queue.first().copied(),
            Some(waiting[0]),
            "a freed slot did not go to the head of the queue"
        );
    }
    // After the whole command: a queue means a full pool.
    if !state.queue().is_empty() {
        let shared = state.settings().map_or(0, |s| s.shared_slots as usize);
        prop_assert_eq!(
            state.holders().len(),
            shared,
            "members wait while a slot is free"
        );
    }
    Ok(())
}

fn answer(
    r: &Result<Vec<ProductEvent>, slotpool_events::Refusal>,
) -> Result<&[ProductEvent], &'static str> {
    match r {
        Ok(events) => Ok(events.as_slice()),
        Err(refusal) => Err(refusal.code()),
    }
}

/// Runs one command through product and model and checks everything.
#[allow(clippy::too_many_arguments)]
fn step(
    state: &mut ProductState,
    model: &mut Model,
    journal: &mut Vec<ProductEvent>,
    joined: &mut HashMap<String, u64>,
    join_counter: &mut u64,
    command: &Command,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    let queue_before: Vec<String> = state.queue().into_iter().map(|q| q.user).collect();
    let before = observe(state, now);
    let decided = state.decide(command, now);
    let expected = model.step(command, now);
    prop_assert_eq!(
        answer(&decided),
        expected.as_ref().map(Vec::as_slice).map_err(|e| *e),
        "{:?} at {:?}",
        command,
        now
    );
    let events = match decided {
        Ok(events) => events,
        Err(_) => {
            prop_assert_eq!(observe(state, now), before, "a refusal changed the state");
            return Ok(());
        }
    };
    for e in &events {
        state.apply(e);
        if let ProductEvent::Queued { user, .. } = e {
            *join_counter += 1;
            joined.insert(user.clone(), *join_counter);
        }
        journal.push(e.clone());
        check_invariants(state, joined)?;
    }
    check_fair(command, &queue_before, &events, state)?;
    check_against_model(state, model, now)?;

    // A command answered is answered: asking the same again changes nothing more for the
    // idempotent ones.
    if matches!(
        command,
        Command::Configure(_)
            | Command::Enrol { .. }
            | Command::Remove { .. }
            | Command::GiveFixed { .. }
            | Command::TakeFixed { .. }
            | Command::SetActive { .. }
            | Command::Request { .. }
    ) {
        let again = state.decide(command, now);
        prop_assert!(
            matches!(&again, Ok(e) if e.is_empty()),
            "{:?} again gave {:?}",
            command,
            again
        );
    }

    // Replay from scratch reaches the same observable state.
    let replayed = ProductState::replay(journal.iter());
    prop_assert_eq!(
        observe(&replayed, now),
        observe(state, now),
        "replay differs"
    );
    Ok(())
}

fn resolve(op: &Op, current: Option<&Settings>) -> Command {
    match op {
        Op::Cmd(c) => c.clone(),
        Op::Resize {
            shared_slots,
            tier_delta,
        } => {
            let mut s = current
                .cloned()
                .unwrap_or_else(|| Settings::new(ProductKind::Jira, 4, 2));
            s.shared_slots = *shared_slots;
            s.licence_tier = s.licence_tier.saturating_add_signed(i32::from(*tier_delta));
            Command::Configure(s)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn product_follows_the_rules_and_the_model((before, first, ops) in run_plan()) {
        let mut state = ProductState::new();
        let mut model = Model::default();
        let mut journal = Vec::new();
        let mut joined = HashMap::new();
        let mut join_counter = 0;
        let mut now = Timestamp::from_millis(T0);
        for (command, dt) in &before {
            now = Timestamp::from_millis(now.as_millis() + dt);
            step(&mut state, &mut model, &mut journal, &mut joined, &mut join_counter, command, now)?;
        }
        step(&mut state, &mut model, &mut journal, &mut joined, &mut join_counter, &Command::Configure(first), now)?;
        for (op, dt) in &ops {
            now = Timestamp::from_millis(now.as_millis() + dt);
            let command = resolve(op, state.settings());
            step(&mut state, &mut model, &mut journal, &mut joined, &mut join_counter, &command, now)?;
        }
    }

    #[test]
    fn directory_follows_the_rules_and_replays(commands in prop::collection::vec(
        prop_oneof![
            user().prop_map(|user| DirectoryCommand::Ensure { user }),
            (user(), any::<bool>()).prop_map(|(user, active)| DirectoryCommand::SetActive { user, active }),
        ],
        1..100,
    )) {
        let mut state = DirectoryState::new();
        let mut model: HashMap<String, bool> = HashMap::new();
        let mut journal: Vec<DirectoryEvent> = Vec::new();
        for command in &commands {
            let events = state.decide(command);
            // The model: users are created active; a change of activity is recorded once.
            let mut expected = Vec::new();
            let (user, active) = match command {
                DirectoryCommand::Ensure { user } => (user, None),
                DirectoryCommand::SetActive { user, active } => (user, Some(*active)),
            };
            if !model.contains_key(user) {
                model.insert(user.clone(), true);
                expected.push(DirectoryEvent::UserCreated { user: user.clone() });
            }
            match (active, model[user]) {
                (Some(false), true) => expected.push(DirectoryEvent::UserDeactivated { user: user.clone() }),
                (Some(true), false) => expected.push(DirectoryEvent::UserReactivated { user: user.clone() }),
                _ => {}
            }
            if let Some(a) = active {
                model.insert(user.clone(), a);
            }
            prop_assert_eq!(&events, &expected, "{:?}", command);
            for e in &events {
                state.apply(e);
                journal.push(e.clone());
            }
            for u in USERS {
                prop_assert_eq!(state.user(u).map(|d| d.active), model.get(u).copied(), "user {}", u);
            }
            prop_assert!(state.decide(command).is_empty(), "{:?} again is not a no-op", command);
            let mut replayed = DirectoryState::new();
            for e in &journal {
                replayed.apply(e);
            }
            prop_assert_eq!(replayed.users(), state.users());
            let mut expected_users: Vec<_> = model.iter().map(|(u, a)| (u.clone(), *a)).collect();
            expected_users.sort();
            let users: Vec<_> = state.users().into_iter().map(|(u, d)| (u, d.active)).collect();
            prop_assert_eq!(users, expected_users);
        }
    }
}
