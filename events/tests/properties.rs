//! Property tests of the pure core.
//!
//! Random sequences of commands at non-decreasing random times are run through
//! `ProductState::decide` + `apply`, one event at a time, and checked against:
//!
//! - the invariants of docs/design.md ("every rule above holds after every event"), after every
//!   single event, for every command (sweeps and tier reconciliation included);
//! - the fair-queue rule (a freed slot goes to the queue head, in the same command);
//! - replay: folding all events so far into a fresh state gives the same observable state;
//! - a small reference model, written from the rules in docs/design.md (Behaviour 1-7) with
//!   plain `Vec`s, sets and its own arithmetic of the sweep grid, which must give the same
//!   answer (the same events in the same order, or the same refusal code) and leave every
//!   user standing the same (slot, warning, queue place, lock, re-login). It covers
//!   activity coalescing, lock time and reclaim on request, the sweep (`Tick`: coalesced
//!   activity, revocation of warned holders, warnings (a late one revokes exactly one lead
//!   after it, off the grid), queue expiry, auto re-login, grants), recording coalesced
//!   activity on its own (`RecordActivity`), and tier reconciliation (with fixed licences
//!   recorded from elsewhere, applied as facts). The model also computes `next_tick`,
//!   `holders_seen` (coalesced activity overlaid) and `reads_activity`, and every decision
//!   that picks a holder by activity (shrink, reclaim) must be one `reads_activity` flags.
//!
//! Rule 10 (reservations and caps per group) is in the model too: random reservations
//! in the settings (valid and not; changed mid-run), requests carrying random directory
//! groups in any case, membership changes (`NoteGroups`); the model notes groups and picks
//! the first queued member allowed. Checked besides: no grant takes a group above its
//! cap (after every event), no queued member may take a free slot and grants from the
//! queue keep its order (after every command, computed from the product's own views).
//!
//! `tests/timeline.rs` checks the time rules as properties of whole timelines, and
//! `tests/rules.rs` pins each rule's edge cases; the directory's state machine gets the
//! model treatment here on its own.

mod common;

use proptest::prelude::*;
use slotpool_events::{
    Command, DirectoryCommand, DirectoryEvent, DirectoryState, LeaveReason, Notice, Presence,
    ProductEvent, ProductKind, ProductState, Reservation, RevokeReason, Settings, SlotView,
    Standing, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Directory groups users may be in (rule 10); reservations name the first three, in
/// any case, so matching without regard to case is exercised.
const GROUPS: [&str; 4] = ["g0", "G1", "g2", "other"];
/// The small user set every sequence draws from.
const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];
/// Power users who are never pool members here: fixed licences recorded from elsewhere.
const OUTSIDERS: [&str; 3] = ["x0", "x1", "x2"];
/// The start of every simulated clock.
const T0: i64 = 1_700_000_000_000;
/// Longest interval a setting accepts (DESIGN: thirty days), in seconds.
const MAX_INTERVAL_S: u32 = 30 * 24 * 3600;
/// Largest licence tier accepted.
const MAX_TIER: u32 = 10_000_000;
/// Notices a product keeps.
const NOTICES_KEPT: usize = 100;

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// A pending warning: issued at, to be revoked at.
type MWarning = Option<(Timestamp, Timestamp)>;

/// Where a user stands, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MStanding {
    Idle,
    Holding {
        since: Timestamp,
        last: Timestamp,
        warning: MWarning,
    },
    Queued {
        since: Timestamp,
    },
}

/// One holder in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MHolder {
    user: String,
    since: Timestamp,
    last: Timestamp,
    warning: MWarning,
}

/// A product, the naive way: sets of names, a `Vec` of holders, a `Vec` queue.
#[derive(Debug, Clone, Default)]
struct Model {
    settings: Option<Settings>,
    members: BTreeSet<String>,
    fixed: BTreeSet<String>,
    deactivated: BTreeSet<String>,
    /// In no particular order.
    holders: Vec<MHolder>,
    /// (user, since), head first.
    queue: Vec<(String, Timestamp)>,
    /// Revoked for inactivity: no manual request before then.
    locked: BTreeMap<String, Timestamp>,
    /// Requeued by auto re-login and not active since.
    relogin_used: BTreeSet<String>,
    notices: Vec<Notice>,
    /// Rule 10: the reservation groups noted per user (lower case, sorted; none: absent).
    groups: BTreeMap<String, Vec<String>>,
}

/// Settings validation, from the documented rules: tier 1..=10M, fixed + shared <= tier,
/// every interval within 30 days (inactivity, sweep and queue timer at least 1 s), warning
/// lead shorter than the inactivity time, a coalescing window shorter than the inactivity
/// time and at most an hour.
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
        && s.coalesce_s.is_none_or(|c| c < s.inactivity_s && c <= 3600)
        && reservations_valid(s)
}

/// Rule 10's settings: groups named (1..=256 bytes, no control characters), each once
/// without regard to case, min <= max <= shared_slots, the sum of min within
/// shared_slots, at most 100 of them.
fn reservations_valid(s: &Settings) -> bool {
    let mut names = BTreeSet::new();
    let mut sum = 0u64;
    for r in &s.reservations {
        let name = r.group.trim().to_lowercase();
        if name.is_empty() || r.group.len() > 256 || r.group.chars().any(char::is_control) {
            return false;
        }
        if !names.insert(name) {
            return false;
        }
        if r.max.is_some_and(|m| r.min > m || m > s.shared_slots) {
            return false;
        }
        sum += u64::from(r.min);
    }
    s.reservations.len() <= 100 && sum <= u64::from(s.shared_slots)
}

/// The reservation groups among a user's directory groups: lower case, sorted, once.
fn model_reserved(s: &Settings, groups: &[String]) -> Vec<String> {
    let mine: BTreeSet<String> = groups.iter().map(|g| g.trim().to_lowercase()).collect();
    s.reservations
        .iter()
        .map(|r| r.group.trim().to_lowercase())
        .filter(|g| mine.contains(g))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn ms(t: Timestamp) -> i64 {
    t.as_millis()
}

fn plus_ms(t: Timestamp, d: i64) -> Timestamp {
    Timestamp::from_millis(ms(t) + d)
}

fn secs(s: u32) -> i64 {
    i64::from(s) * 1000
}

/// The sweep grid: multiples of the sweep interval since the epoch; the first at or
/// after `t`.
fn grid(s: &Settings, t: Timestamp) -> Timestamp {
    let step = secs(s.sweep_interval_s);
    Timestamp::from_millis((ms(t) + step - 1).div_euclid(step) * step)
}

/// When a holder last active at `last` loses the slot unless warned otherwise.
fn deadline(s: &Settings, last: Timestamp) -> Timestamp {
    grid(s, plus_ms(last, secs(s.inactivity_s)))
}

/// When that holder is warned: the lead before.
fn warning_due(s: &Settings, last: Timestamp) -> Timestamp {
    plus_ms(deadline(s, last), -secs(s.warning_lead_s))
}

/// Activity within this many ms of the last recorded one is not journaled (unless warned).
fn coalesce_window(s: &Settings) -> i64 {
    secs(s.coalesce_s.unwrap_or((s.inactivity_s / 10).min(60)))
}

impl Model {
    fn standing(&self, user: &str) -> MStanding {
        if let Some(h) = self.holders.iter().find(|h| h.user == user) {
            return MStanding::Holding {
                since: h.since,
                last: h.last,
                warning: h.warning,
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

    /// Holders by inactivity: longest-inactive first (ties by name).
    fn by_inactivity(&self) -> Vec<MHolder> {
        let mut v = self.holders.clone();
        v.sort_by(|a, b| (a.last, &a.user).cmp(&(b.last, &b.user)));
        v
    }

    fn grant(&mut self, out: &mut Vec<ProductEvent>, user: &str, now: Timestamp) {
        self.queue.retain(|(u, _)| u != user);
        self.locked.remove(user);
        self.holders.push(MHolder {
            user: user.to_string(),
            since: now,
            last: now,
            warning: None,
        });
        out.push(ProductEvent::SlotGranted {
            user: user.to_string(),
            at: now,
        });
    }

    fn revoke(
        &mut self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) {
        self.holders.retain(|h| h.user != user);
        if reason == RevokeReason::Inactivity {
            let lock_s = self.settings.as_ref().map_or(0, |s| s.lock_s);
            if lock_s > 0 {
                self.locked
                    .insert(user.to_string(), plus_ms(now, secs(lock_s)));
            } else {
                self.locked.remove(user);
            }
        }
        out.push(ProductEvent::SlotRevoked {
            user: user.to_string(),
            reason,
            at: now,
        });
        self.tidy(user);
    }

    fn record_activity(&mut self, out: &mut Vec<ProductEvent>, user: &str, at: Timestamp) {
        let h = self
            .holders
            .iter_mut()
            .find(|h| h.user == user)
            .expect("a holder");
        h.last = h.last.max(at);
        h.warning = None;
        self.relogin_used.remove(user);
        out.push(ProductEvent::ActivityRecorded {
            user: user.to_string(),
            at,
        });
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
        if self.holders.iter().any(|h| h.user == user) {
            match revoke {
                None => {
                    self.holders.retain(|h| h.user != user);
                    out.push(ProductEvent::SlotReleased {
                        user: user.to_string(),
                        at: now,
                    });
                    self.tidy(user);
                }
                Some(reason) => self.revoke(out, user, reason, now),
            }
        } else if let Some(i) = self.queue.iter().position(|(u, _)| u == user) {
            self.queue.remove(i);
            out.push(ProductEvent::QueueLeft {
                user: user.to_string(),
                reason: leave,
                at: now,
            });
            self.tidy(user);
        }
    }

    fn reserving(&self) -> bool {
        self.settings
            .as_ref()
            .is_some_and(|s| !s.reservations.is_empty())
    }

    fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups.get(user).cloned().unwrap_or_default()
    }

    /// Rule 10, with `holders` holding: whether `user` may take a free slot. Not at a cap
    /// of theirs; a slot free; then either a group of theirs is short of its min, or the
    /// slots left after the grant cover what the other groups are short of.
    fn may_with(&self, holders: &[String], user: &str) -> bool {
        let Some(s) = &self.settings else {
            return false;
        };
        let mine = self.groups_of(user);
        let held = |g: &str| {
            holders
                .iter()
                .filter(|h| self.groups_of(h).iter().any(|x| x == g))
                .count() as u64
        };
        let free = (s.shared_slots as u64).saturating_sub(holders.len() as u64);
        let mut short_mine = false;
        let mut short_others = 0u64;
        for r in &s.reservations {
            let g = r.group.trim().to_lowercase();
            let h = held(&g);
            if mine.contains(&g) {
                if r.max.is_some_and(|m| h >= u64::from(m)) {
                    return false;
                }
                short_mine |= h < u64::from(r.min);
            } else {
                short_others += u64::from(r.min).saturating_sub(h);
            }
        }
        free > 0 && (short_mine || free > short_others)
    }

    fn may(&self, user: &str) -> bool {
        let holders: Vec<String> = self.holders.iter().map(|h| h.user.clone()).collect();
        self.may_with(&holders, user)
    }

    /// Forgets the noted groups of a user the product no longer knows at all.
    fn tidy(&mut self, user: &str) {
        let known = self.members.contains(user)
            || self.fixed.contains(user)
            || self.deactivated.contains(user)
            || self.standing(user) != MStanding::Idle
            || self.locked.contains_key(user)
            || self.relogin_used.contains(user);
        if !known {
            self.groups.remove(user);
        }
    }

    /// Rule 10: notes the user's reservation groups if the directory's differ.
    fn note(&mut self, out: &mut Vec<ProductEvent>, user: &str, groups: &[String]) -> bool {
        let s = self.settings.as_ref().expect("configured");
        let fresh = model_reserved(s, groups);
        if fresh == self.groups_of(user) {
            return false;
        }
        out.push(ProductEvent::GroupsNoted {
            user: user.to_string(),
            groups: fresh.clone(),
        });
        if fresh.is_empty() {
            self.groups.remove(user);
        } else {
            self.groups.insert(user.to_string(), fresh);
        }
        true
    }

    /// Rule 2: every free slot goes to the head of the queue; with reservations (rule
    /// 10) to the first queued member who may take it, again and again.
    fn fill(&mut self, out: &mut Vec<ProductEvent>, now: Timestamp) {
        if self.reserving() {
            // Who gets a slot: again and again the first who may, on a trial copy (a
            // grant may unblock a member ahead); the grants are then made in queue order.
            let mut trial = self.clone();
            let mut chosen = Vec::new();
            while let Some(user) = trial
                .queue
                .iter()
                .map(|(u, _)| u.clone())
                .find(|u| trial.may(u))
            {
                trial.grant(&mut Vec::new(), &user, now);
                chosen.push(user);
            }
            let in_order: Vec<String> = self
                .queue
                .iter()
                .map(|(u, _)| u.clone())
                .filter(|u| chosen.contains(u))
                .collect();
            for user in in_order {
                self.grant(out, &user, now);
            }
            return;
        }
        while self.holders.len() < self.shared() && !self.queue.is_empty() {
            let user = self.queue[0].0.clone();
            self.grant(out, &user, now);
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
            self.tidy(user);
        } else if !active && !deactivated {
            self.deactivated.insert(user.to_string());
            out.push(ProductEvent::UserDeactivated {
                user: user.to_string(),
            });
        }
    }

    /// Rule 6 (and 7): the longest-inactive holders beyond `size` lose their slots.
    fn shrink_to(&mut self, out: &mut Vec<ProductEvent>, size: usize, now: Timestamp) {
        let excess = self.holders.len().saturating_sub(size);
        for h in self.by_inactivity().into_iter().take(excess) {
            self.revoke(out, &h.user, RevokeReason::PoolShrunk, now);
        }
    }

    /// A fact recorded from elsewhere: a fixed licence for a user outside the pool.
    fn force_fixed(&mut self, user: &str) {
        self.fixed.insert(user.to_string());
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
            self.shrink_to(&mut out, s.shared_slots as usize, now);
            // New time settings cancel the pending warnings (computed with the old ones).
            let retimed = self.settings.as_ref().is_some_and(|old| {
                (old.inactivity_s, old.warning_lead_s, old.sweep_interval_s)
                    != (s.inactivity_s, s.warning_lead_s, s.sweep_interval_s)
            });
            if retimed {
                for h in &mut self.holders {
                    h.warning = None;
                }
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
            // The directory tells every product of a membership change; no refusal.
            if matches!(command, Command::NoteGroups { .. }) {
                return Ok(out);
            }
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
                    self.tidy(user);
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
                        self.tidy(user);
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
                    self.tidy(user);
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
            Command::Request { user, groups, .. } => {
                if self.deactivated.contains(user) {
                    return Err("deactivated");
                }
                if self.fixed.contains(user) {
                    return Ok(out);
                }
                if !self.members.contains(user) {
                    return Err("not_member");
                }
                let locked = self.locked.get(user).is_some_and(|t| *t > now);
                if self.reserving() {
                    let changed = match groups {
                        Some(g) => self.note(&mut out, user, g),
                        None => false,
                    };
                    if self.standing(user) != MStanding::Idle {
                        if changed {
                            self.fill(&mut out, now);
                        }
                    } else if !locked {
                        self.request_reserved(&mut out, user, &settings, now);
                    }
                } else if self.standing(user) == MStanding::Idle && !locked {
                    if self.holders.len() < self.shared() && self.queue.is_empty() {
                        // Rule 1: a free slot and nobody ahead means granted.
                        self.grant(&mut out, user, now);
                    } else if let Some(victim) = self.by_inactivity().first().filter(|h| {
                        settings.reclaim_on_request
                            && ms(now) >= ms(h.last) + secs(settings.inactivity_s)
                    }) {
                        // Rule 4: reclaim the longest-inactive holder's slot, without
                        // warning; the queue head still goes first.
                        self.revoke(&mut out, &victim.user, RevokeReason::Reclaimed, now);
                        match self.queue.first().map(|(u, _)| u.clone()) {
                            Some(head) => {
                                self.grant(&mut out, &head, now);
                                self.queue.push((user.clone(), now));
                                out.push(ProductEvent::Queued {
                                    user: user.clone(),
                                    at: now,
                                });
                            }
                            None => self.grant(&mut out, user, now),
                        }
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
                let Some(h) = self.holders.iter().find(|h| &h.user == user).cloned() else {
                    return Err("not_holder");
                };
                // Coalescing: a holder not warned is journaled at most once per window.
                if h.warning.is_some() || ms(now) - ms(h.last) >= coalesce_window(&settings) {
                    self.record_activity(&mut out, user, now);
                }
            }
            Command::Revoke { user } => {
                if !self.holders.iter().any(|h| &h.user == user) {
                    return Err("not_holder");
                }
                self.revoke(&mut out, user, RevokeReason::Admin, now);
                self.fill(&mut out, now);
            }
            Command::PageView {
                user,
                attributes,
                groups,
                ..
            } => {
                if self.holders.iter().any(|h| &h.user == user) {
                    // A holder's page view is activity.
                    return self.step(&Command::Activity { user: user.clone() }, now);
                }
                // A queued member keeps the place, and nothing else happens.
                if self.standing(user) != MStanding::Idle {
                    return Ok(out);
                }
                // Anyone else: what the request would do, if that is a slot at once
                // without taking one from anybody; else nothing (the gate queues nobody).
                let mut asked = self.clone();
                let request = Command::Request {
                    user: user.clone(),
                    attributes: attributes.clone(),
                    groups: groups.clone(),
                };
                if let Ok(events) = asked.step(&request, now) {
                    let granted = events.iter().any(
                        |e| matches!(e, ProductEvent::SlotGranted { user: u, .. } if u == user),
                    );
                    let taken = events.iter().any(|e| {
                        matches!(
                            e,
                            ProductEvent::SlotRevoked { .. } | ProductEvent::Queued { .. }
                        )
                    });
                    if granted && !taken {
                        *self = asked;
                        return Ok(events);
                    }
                }
            }
            Command::Tick { presence } => self.sweep(&mut out, &settings, presence, now),
            // Not generated here: renames have their own property (`tests/rename.rs`),
            // which checks them against the same product without the rename.
            Command::Rename { .. } => return Err("not_modelled"),
            // Not generated here: space entitlements touch no slot, queue or count; their
            // rules have unit tests in `product::spaces`.
            Command::CatalogueSpaces { .. }
            | Command::RequestSpace { .. }
            | Command::ApproveSpaceRequest { .. }
            | Command::RejectSpaceRequest { .. }
            | Command::RevokeSpaceAccess { .. }
            | Command::FulfilSpaceRequest { .. }
            | Command::ConfirmSpaceRemoval { .. }
            | Command::FailSpaceRequest { .. } => return Err("not_modelled"),
            Command::NoteGroups { user, groups } => {
                let standing = self.standing(user);
                let known = standing != MStanding::Idle || self.groups.contains_key(user.as_str());
                if self.reserving() && known {
                    let changed = self.note(&mut out, user, groups);
                    if changed && standing != MStanding::Idle {
                        self.fill(&mut out, now);
                    }
                }
            }
            Command::RecordActivity { recent } => {
                self.record_recent(&mut out, recent, now);
            }
            // Not generated here: `identity.rs` checks fixed-licence requests.
            Command::RequestFixed { .. }
            | Command::ApproveFixedRequest { .. }
            | Command::RejectFixedRequest { .. } => {
                unreachable!("fixed-licence requests are not generated by the model")
            }
            // The model has no schedules: nothing changes.
            Command::ScheduleCapacity => {}
            Command::ReconcileTier => {
                // Rule 7: fixed users grew past the tier: shrink the pool by the excess.
                let fixed = self.fixed.len() as u32;
                let allowed = settings.licence_tier.saturating_sub(fixed);
                if settings.shared_slots > allowed {
                    self.shrink_to(&mut out, allowed as usize, now);
                    let notice = Notice::TierReconciled {
                        at: now,
                        fixed,
                        licence_tier: settings.licence_tier,
                        shared_slots_before: settings.shared_slots,
                        shared_slots_after: allowed,
                    };
                    out.push(ProductEvent::TierReconciled {
                        at: now,
                        fixed,
                        licence_tier: settings.licence_tier,
                        shared_slots_before: settings.shared_slots,
                        shared_slots_after: allowed,
                    });
                    if self.notices.len() == NOTICES_KEPT {
                        self.notices.remove(0);
                    }
                    self.notices.push(notice);
                    let smaller = Settings {
                        shared_slots: allowed,
                        ..settings
                    };
                    self.settings = Some(smaller.clone());
                    out.push(ProductEvent::Configured { settings: smaller });
                }
            }
        }
        Ok(out)
    }

    /// Rule 10's request of an idle member: granted if they may take a free slot (and the
    /// queued members that grant unblocks after them); else
    /// reclaim (on, pool full): the longest-inactive holder past the inactivity time
    /// whose slot the first queued member allowed (or else the requester) may then take,
    /// unless the holder's leaving leaves a group of theirs short of its min while the
    /// one who gets the slot is not in it; else queued.
    fn request_reserved(
        &mut self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        s: &Settings,
        now: Timestamp,
    ) {
        if self.may(user) {
            self.grant(out, user, now);
            // One slot may fill the reservations of several groups of theirs at once,
            // which can open a free slot to a member waiting in the queue.
            self.fill(out, now);
            return;
        }
        if s.reclaim_on_request && self.holders.len() >= self.shared() {
            for victim in self.by_inactivity() {
                if ms(now) < ms(victim.last) + secs(s.inactivity_s) {
                    break;
                }
                let rest: Vec<String> = self
                    .holders
                    .iter()
                    .filter(|h| h.user != victim.user)
                    .map(|h| h.user.clone())
                    .collect();
                let to = self
                    .queue
                    .iter()
                    .map(|(u, _)| u.clone())
                    .find(|u| self.may_with(&rest, u))
                    .or_else(|| self.may_with(&rest, user).then(|| user.to_string()));
                let Some(to) = to else { continue };
                let theirs = self.groups_of(&victim.user);
                let recipient = self.groups_of(&to);
                let unfills = s.reservations.iter().any(|r| {
                    let g = r.group.trim().to_lowercase();
                    let held = self
                        .holders
                        .iter()
                        .filter(|h| self.groups_of(&h.user).contains(&g))
                        .count() as u32;
                    theirs.contains(&g) && !recipient.contains(&g) && held <= r.min
                });
                if unfills {
                    continue;
                }
                self.revoke(out, &victim.user, RevokeReason::Reclaimed, now);
                self.grant(out, &to, now);
                if to != user {
                    self.queue.push((user.to_string(), now));
                    out.push(ProductEvent::Queued {
                        user: user.to_string(),
                        at: now,
                    });
                }
                return;
            }
        }
        self.queue.push((user.to_string(), now));
        out.push(ProductEvent::Queued {
            user: user.to_string(),
            at: now,
        });
    }

    /// Records coalesced activity (the sweep's first step, and `RecordActivity`): for each
    /// holder, by name, a time newer than the recorded one and not in the future. Returns
    /// who was refreshed, and when.
    fn record_recent(
        &mut self,
        out: &mut Vec<ProductEvent>,
        recent: &HashMap<String, Timestamp>,
        now: Timestamp,
    ) -> HashMap<String, Timestamp> {
        let mut refreshed = HashMap::new();
        let mut recent: Vec<_> = recent.iter().collect();
        recent.sort();
        for (user, at) in recent {
            if let MStanding::Holding { last, .. } = self.standing(user) {
                if *at > last && *at <= now {
                    self.record_activity(out, user, *at);
                    refreshed.insert(user.clone(), *at);
                }
            }
        }
        refreshed
    }

    /// When the product next needs a sweep after `now`: the next grid point, the warning
    /// due soonest, the revocation due soonest (an overdue one: 1 ms from now).
    fn next_tick(&self, now: Timestamp) -> Option<Timestamp> {
        let s = self.settings.as_ref()?;
        let soonest = plus_ms(now, 1);
        let mut next = grid(s, soonest);
        for h in &self.holders {
            let due = match h.warning {
                None => warning_due(s, h.last),
                Some((_, revoke_at)) => revoke_at,
            };
            next = next.min(due.max(soonest));
        }
        Some(next)
    }

    /// The holders as an administrator sees them, with coalesced activity `recent`
    /// overlaid: (user, since, last activity, warned at, revoke at), by `since` then name.
    /// A newer time replaces the last activity; an unwarned holder's revocation time follows
    /// it, a warned holder's stays what the warning said.
    #[allow(clippy::type_complexity)]
    fn holders_seen(
        &self,
        recent: &HashMap<String, Timestamp>,
    ) -> Vec<(String, Timestamp, Timestamp, Option<Timestamp>, Timestamp)> {
        let Some(s) = self.settings.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<_> = self
            .holders
            .iter()
            .map(|h| {
                let last = match recent.get(&h.user) {
                    Some(at) if *at > h.last => *at,
                    _ => h.last,
                };
                let revoke_at = h.warning.map_or_else(|| deadline(s, last), |w| w.1);
                (
                    h.user.clone(),
                    h.since,
                    last,
                    h.warning.map(|w| w.0),
                    revoke_at,
                )
            })
            .collect();
        out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        out
    }

    /// Whether deciding `command` picks holders by their activity (so the live service
    /// records coalesced activity first): a resize or tier reconciliation, and a request
    /// that might reclaim (the option on, no free slot, somebody to take it from).
    fn reads_activity(&self, command: &Command) -> bool {
        match command {
            Command::Configure(_) | Command::ReconcileTier | Command::ScheduleCapacity => true,
            Command::Request { .. } => self.settings.as_ref().is_some_and(|s| {
                s.reclaim_on_request
                    && self.holders.len() >= s.shared_slots as usize
                    && !self.holders.is_empty()
            }),
            _ => false,
        }
    }

    /// The sweep (rule 3, and the queue timer of rule 2), step by step on the state before
    /// it, as docs/design.md tells it.
    fn sweep(
        &mut self,
        out: &mut Vec<ProductEvent>,
        s: &Settings,
        presence: &Presence,
        now: Timestamp,
    ) {
        let before = self.clone();
        // 1. Coalesced activity of holders, newer than the journal and not in the future.
        let refreshed = self.record_recent(out, &presence.recent_activity, now);
        // 2. Warned holders whose time is up, soonest first (ties by name).
        let mut warned: Vec<(Timestamp, String)> = before
            .holders
            .iter()
            .filter_map(|h| h.warning.map(|(_, r)| (r, h.user.clone())))
            .collect();
        warned.sort();
        let mut revoked = Vec::new();
        for (revoke_at, user) in warned {
            if revoke_at <= now && !refreshed.contains_key(&user) {
                self.revoke(out, &user, RevokeReason::Inactivity, now);
                revoked.push(user);
            }
        }
        // 3. Warnings due, longest-inactive first; never less than the lead ahead.
        for h in before.by_inactivity() {
            let last = match refreshed.get(&h.user) {
                Some(at) => *at,
                None if h.warning.is_some() => continue,
                None => h.last,
            };
            if warning_due(s, last) <= now {
                // On time (at the due instant) this is the deadline, on the grid; late, it
                // is exactly the lead after the warning, wherever that falls.
                let revoke_at = deadline(s, last).max(plus_ms(now, secs(s.warning_lead_s)));
                let m = self
                    .holders
                    .iter_mut()
                    .find(|m| m.user == h.user)
                    .expect("holder");
                m.warning = Some((now, revoke_at));
                out.push(ProductEvent::WarningIssued {
                    user: h.user.clone(),
                    at: now,
                    revoke_at,
                });
            }
        }
        // 4. Queue places nobody keeps alive.
        for (user, since) in &before.queue {
            if presence.connected.contains(user) {
                continue;
            }
            let seen = presence
                .last_seen
                .get(user)
                .map_or(*since, |t| (*t).max(*since));
            if ms(seen) + secs(s.queue_timer_s) <= ms(now) {
                self.lose(out, user, None, LeaveReason::Expired, now);
            }
        }
        // 5. Auto re-login, for a revoked holder whose browser is still open: once
        // without activity in between, and always when a slot is free for them (fewer
        // holders and waiting members than slots; products without reservations).
        if s.auto_relogin {
            for user in revoked {
                let free_for_them =
                    !self.reserving() && self.holders.len() + self.queue.len() < self.shared();
                let again = free_for_them || !self.relogin_used.contains(&user);
                if presence.connected.contains(&user) && again {
                    self.relogin_used.insert(user.clone());
                    self.queue.push((user.clone(), now));
                    out.push(ProductEvent::Requeued { user, at: now });
                }
            }
        }
        // 6. Freed slots to the queue.
        self.fill(out, now);
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// One step of a generated run, resolved against the state when it runs.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // test input, generated and dropped one by one
enum Op {
    /// A command as generated.
    Cmd(Command),
    /// The current settings with another `shared_slots` (and maybe another tier): a resize,
    /// a grow, a shrink, or no change at all.
    Resize { shared_slots: u32, tier_delta: i8 },
    /// A sweep now: open streams (a bit per user), polls and coalesced activity (user,
    /// ms before now; negative is after now).
    Tick {
        connected: u8,
        last_seen: Vec<(usize, i64)>,
        recent: Vec<(usize, i64)>,
    },
    /// Coalesced activity recorded on its own (user, ms before now; negative is after
    /// now), as the live service does before a decision that reads activity.
    Record(Vec<(usize, i64)>),
    /// A fixed licence for an outsider, recorded as a fact (it may exceed the tier).
    ForceFixed(usize),
    /// The current settings with other reservations (rule 10), valid or not.
    Reserve(Vec<Reservation>),
}

/// Reservations over the first three of [`GROUPS`] (maybe in another case), with small
/// mins and maxes: mostly valid for small pools, sometimes not.
fn reservations() -> impl Strategy<Value = Vec<Reservation>> {
    prop_oneof![
        1 => Just(Vec::new()),
        3 => prop::collection::vec(
            (0usize..3, any::<bool>(), 0u32..=2, prop::option::weighted(0.6, 0u32..=3)),
            1..=3,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(g, upper, min, max)| Reservation {
                    group: if upper { GROUPS[g].to_uppercase() } else { GROUPS[g].to_lowercase() },
                    min,
                    max,
                })
                .collect()
        }),
    ]
}

/// A user's directory groups: any of [`GROUPS`], in any case.
fn directory_groups() -> impl Strategy<Value = std::sync::Arc<[String]>> {
    prop::collection::vec((0usize..GROUPS.len(), any::<bool>()), 0..=3).prop_map(|v| {
        v.into_iter()
            .map(|(g, upper)| {
                if upper {
                    GROUPS[g].to_uppercase()
                } else {
                    GROUPS[g].to_string()
                }
            })
            .collect()
    })
}

fn user() -> impl Strategy<Value = String> {
    (0..USERS.len()).prop_map(|i| USERS[i].to_string())
}

/// The time settings of a product.
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

impl Times {
    fn apply(&self, mut s: Settings) -> Settings {
        s.inactivity_s = self.inactivity_s;
        s.warning_lead_s = self.warning_lead_s;
        s.sweep_interval_s = self.sweep_interval_s;
        s.lock_s = self.lock_s;
        s.queue_timer_s = self.queue_timer_s;
        s.reclaim_on_request = self.reclaim;
        s.auto_relogin = self.auto_relogin;
        s.coalesce_s = self.coalesce_s;
        s
    }
}

/// Realistic time settings and short ones, so that warnings, revocations, locks and queue
/// expiry all happen within a run.
fn times() -> impl Strategy<Value = Times> {
    (
        prop_oneof![6 => Just(1800u32), 1 => Just(60u32), 1 => Just(30u32)],
        prop_oneof![4 => Just(60u32), 1 => Just(10u32)],
        prop_oneof![2 => Just(300u32), 1 => Just(60u32), 1 => Just(7u32)],
        prop_oneof![2 => Just(0u32), 1 => Just(120u32), 1 => Just(3600u32)],
        prop_oneof![2 => Just(60u32), 1 => Just(600u32)],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![2 => Just(None), 1 => Just(Some(0u32)), 1 => Just(Some(20u32))],
    )
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

/// Any settings: sizes from the given strategies (tier 0 and lead >= inactivity are
/// refused), times from [`times`].
fn settings(
    tier: impl Strategy<Value = u32>,
    shared: impl Strategy<Value = u32>,
) -> impl Strategy<Value = Settings> {
    (tier, shared, times())
        .prop_map(|(tier, shared, t)| t.apply(Settings::new(ProductKind::Jira, tier, shared)))
}

/// The first Configure: small and valid (reservations only when they are valid).
fn first_settings() -> impl Strategy<Value = Settings> {
    (1u32..8)
        .prop_flat_map(|tier| (Just(tier), 0..=tier, times(), reservations()))
        .prop_map(|(tier, shared, t, reservations)| {
            let s = t.apply(Settings::new(ProductKind::Jira, tier, shared));
            // Keep it valid: the lead below the inactivity time.
            let s = Settings {
                warning_lead_s: s.warning_lead_s.min(s.inactivity_s - 1),
                ..s
            };
            let with = Settings {
                reservations: reservations.into(),
                ..s.clone()
            };
            if reservations_valid(&with) {
                with
            } else {
                s
            }
        })
}

/// Any command but Configure and Tick.
fn user_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (user(), prop::bool::weighted(0.95)).prop_map(|(user, active)| Command::Enrol { user, active }),
        1 => user().prop_map(|user| Command::Remove { user }),
        1 => (user(), prop::bool::weighted(0.8)).prop_map(|(user, active)| Command::GiveFixed { user, active }),
        1 => user().prop_map(|user| Command::TakeFixed { user }),
        1 => (user(), any::<bool>()).prop_map(|(user, active)| Command::SetActive { user, active }),
        4 => user().prop_map(Command::request),
        6 => (user(), directory_groups()).prop_map(|(user, groups)| Command::Request {
            user,
            attributes: None,
            groups: Some(groups),
        }),
        1 => (user(), directory_groups()).prop_map(|(user, groups)| Command::NoteGroups { user, groups }),
        3 => user().prop_map(|user| Command::Release { user }),
        3 => user().prop_map(|user| Command::Activity { user }),
        3 => (user(), directory_groups()).prop_map(|(user, groups)| Command::PageView {
            user,
            attributes: None,
            groups: Some(groups),
            gate: None,
        }),
        1 => user().prop_map(|user| Command::PageView { user, attributes: None, groups: None, gate: None }),
        1 => user().prop_map(|user| Command::Revoke { user }),
        1 => Just(Command::ReconcileTier),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let u = || 0..USERS.len();
    prop_oneof![
        20 => user_command().prop_map(Op::Cmd),
        2 => (0u32..=8, -1i8..=1).prop_map(|(shared_slots, tier_delta)| Op::Resize { shared_slots, tier_delta }),
        1 => settings(0u32..=9, 0u32..=9).prop_map(|s| Op::Cmd(Command::Configure(s))),
        4 => (
            any::<u8>(),
            prop::collection::vec((u(), 0i64..200_000), 0..3),
            prop::collection::vec((u(), -5_000i64..3_000_000), 0..3),
        )
            .prop_map(|(connected, last_seen, recent)| Op::Tick { connected, last_seen, recent }),
        2 => prop::collection::vec((u(), -5_000i64..3_000_000), 0..4).prop_map(Op::Record),
        1 => (0..OUTSIDERS.len()).prop_map(Op::ForceFixed),
        2 => reservations().prop_map(Op::Reserve),
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
/// the order in which their `Queued` (or `Requeued`) event was applied.
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
            matches!(e.standing, Standing::Holding { since, last_activity, warning }
                if since == h.since
                    && last_activity == h.last_activity
                    && warning.map(|w| w.at) == h.warned_at),
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
    for u in USERS.iter().chain(OUTSIDERS.iter()) {
        if let Some(e) = state.user(u) {
            members += usize::from(e.member);
            fixed += usize::from(e.fixed);
            match e.standing {
                Standing::Idle => {}
                Standing::Holding { .. } => prop_assert!(holder_names.contains(*u)),
                Standing::Queued { .. } => prop_assert!(queue.iter().any(|q| q.user == *u)),
            }
        }
    }
    prop_assert_eq!(counts.members, members);
    prop_assert_eq!(counts.fixed, fixed);
    Ok(())
}

/// Everything the outside world can observe of a product at `now` (see `common::observe`).
fn observe(state: &ProductState, now: Timestamp) -> String {
    common::observe(state, USERS.iter().chain(OUTSIDERS.iter()).copied(), now)
}

/// The model and the product agree on every user, the holders and the queue.
fn check_against_model(
    state: &ProductState,
    model: &Model,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(state.settings(), model.settings.as_ref());
    for u in USERS {
        let (member, fixed, deactivated, standing, locked, relogin) = match state.user(u) {
            None => (false, false, false, MStanding::Idle, None, false),
            Some(e) => (
                e.member,
                e.fixed,
                e.deactivated,
                match e.standing {
                    Standing::Idle => MStanding::Idle,
                    Standing::Holding {
                        since,
                        last_activity,
                        warning,
                    } => MStanding::Holding {
                        since,
                        last: last_activity,
                        warning: warning.map(|w| (w.at, w.revoke_at)),
                    },
                    Standing::Queued { since, .. } => MStanding::Queued { since },
                },
                e.locked_until,
                e.relogin_used,
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
        prop_assert_eq!(locked, model.locked.get(u).copied(), "lock of {}", u);
        prop_assert_eq!(relogin, model.relogin_used.contains(u), "re-login of {}", u);
        prop_assert_eq!(
            state.noted_groups(u).to_vec(),
            model.groups_of(u),
            "noted groups of {}",
            u
        );

        // The user's own view follows from the standing.
        let view = state.slot_view(u, now);
        match model.standing(u) {
            _ if model.fixed.contains(u) && !model.deactivated.contains(u) => {
                prop_assert_eq!(view, SlotView::Fixed, "view of {}", u)
            }
            MStanding::Idle => match model.locked.get(u) {
                Some(until) if *until > now => {
                    prop_assert_eq!(view, SlotView::Locked { until: *until }, "view of {}", u)
                }
                _ => prop_assert_eq!(view, SlotView::None, "view of {}", u),
            },
            MStanding::Holding { last, warning, .. } => {
                let s = model.settings.as_ref().expect("a holder has settings");
                prop_assert_eq!(
                    view,
                    SlotView::Granted {
                        revoke_at: warning.map_or_else(|| deadline(s, last), |w| w.1),
                        warned: warning.is_some(),
                    },
                    "view of {}",
                    u
                )
            }
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
    let expected_holders = model.holders_seen(&HashMap::new());
    let holders: Vec<_> = state
        .holders()
        .into_iter()
        .map(|h| (h.user, h.since, h.last_activity, h.warned_at, h.revoke_at))
        .collect();
    prop_assert_eq!(holders, expected_holders);
    prop_assert_eq!(state.next_tick(now), model.next_tick(now), "next_tick");
    let queue: Vec<_> = state
        .queue()
        .into_iter()
        .map(|q| (q.user, q.since))
        .collect();
    prop_assert_eq!(&queue, &model.queue);
    let counts = state.counts();
    prop_assert_eq!(counts.members, model.members.len());
    prop_assert_eq!(counts.fixed, model.fixed.len());
    prop_assert_eq!(
        state.notices().cloned().collect::<Vec<_>>(),
        model.notices.clone()
    );

    // The estimated wait never shrinks further back in the queue.
    let mut waits: Vec<(usize, u64)> = USERS
        .iter()
        .filter_map(|u| match state.slot_view(u, now) {
            SlotView::Queued {
                position,
                estimated_wait_s,
                retry_after_s,
                waiting_for: None,
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
    reserving_before: bool,
) -> Result<(), TestCaseError> {
    let reserving = state.settings().is_some_and(|s| !s.reservations.is_empty());
    if reserving || reserving_before {
        return check_fair_reserved(queue_before, events, state);
    }
    let leavers: HashSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            ProductEvent::QueueLeft { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .collect();
    // Requeued by auto re-login in this sweep: behind everyone already waiting.
    let requeued: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ProductEvent::Requeued { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .collect();
    let waiting: Vec<&str> = queue_before
        .iter()
        .map(String::as_str)
        .filter(|u| !leavers.contains(u))
        .chain(requeued.iter().copied())
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
        .filter(|u| waiting.contains(u))
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
            matches!(command, Command::Request { user, .. } | Command::PageView { user, .. } if granted == [user.as_str()] && queue_before.is_empty()),
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
    let shrinks = matches!(command, Command::Configure(_) | Command::ReconcileTier);
    if freed > 0 && !waiting.is_empty() && !shrinks {
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

/// Whether `user` may take a free slot of `state` (rule 10), computed from what the
/// product shows: its holders, their noted groups and the settings.
fn may_take_in(state: &ProductState, user: &str) -> bool {
    let Some(s) = state.settings() else {
        return false;
    };
    let holders = state.holders();
    let free = (s.shared_slots as usize).saturating_sub(holders.len());
    let mine = state.noted_groups(user);
    let mut short_mine = false;
    let mut short_others = 0usize;
    for r in &s.reservations {
        let g = r.group.trim().to_lowercase();
        let held = holders
            .iter()
            .filter(|h| state.noted_groups(&h.user).contains(&g))
            .count();
        if mine.contains(&g) {
            if r.max.is_some_and(|m| held >= m as usize) {
                return false;
            }
            short_mine |= held < r.min as usize;
        } else {
            short_others += (r.min as usize).saturating_sub(held);
        }
    }
    free > 0 && (short_mine || free > short_others)
}

/// Rule 10's fairness, checked on one command: after it no queued member may take a free
/// slot, and grants from the queue kept its order among those granted.
fn check_fair_reserved(
    queue_before: &[String],
    events: &[ProductEvent],
    state: &ProductState,
) -> Result<(), TestCaseError> {
    for q in state.queue() {
        prop_assert!(
            !may_take_in(state, &q.user),
            "{} waits though they may take a free slot",
            q.user
        );
    }
    let from_queue: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ProductEvent::SlotGranted { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .filter(|u| queue_before.iter().any(|q| q == u))
        .collect();
    let order: Vec<&str> = queue_before
        .iter()
        .map(String::as_str)
        .filter(|u| from_queue.contains(u))
        .collect();
    prop_assert_eq!(&from_queue, &order, "grants out of queue order");
    Ok(())
}

/// Rule 10: a grant never takes a group above its cap.
fn check_cap(state: &ProductState, granted: &str) -> Result<(), TestCaseError> {
    let Some(s) = state.settings() else {
        return Ok(());
    };
    let holders = state.holders();
    for r in &s.reservations {
        let g = r.group.trim().to_lowercase();
        if let (Some(max), true) = (r.max, state.noted_groups(granted).contains(&g)) {
            let held = holders
                .iter()
                .filter(|h| state.noted_groups(&h.user).contains(&g))
                .count();
            prop_assert!(
                held <= max as usize,
                "granting {} took {} to {} holders, above its cap {}",
                granted,
                g,
                held,
                max
            );
        }
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

/// A product, its model, its journal, and the order in which users joined the queue.
#[derive(Default)]
struct Run {
    state: ProductState,
    model: Model,
    journal: Vec<ProductEvent>,
    joined: HashMap<String, u64>,
    join_counter: u64,
}

impl Run {
    /// Runs one command through product and model and checks everything.
    fn step(&mut self, command: &Command, now: Timestamp) -> Result<(), TestCaseError> {
        let queue_before: Vec<String> = self.state.queue().into_iter().map(|q| q.user).collect();
        let reserving_before = self
            .state
            .settings()
            .is_some_and(|s| !s.reservations.is_empty());
        let before = observe(&self.state, now);
        let reads_activity = self.state.reads_activity(command);
        prop_assert_eq!(
            reads_activity,
            self.model.reads_activity(command),
            "reads_activity of {:?}",
            command
        );
        // What an administrator sees before coalesced activity is recorded.
        let recent = match command {
            Command::Tick { presence } => Some(&presence.recent_activity),
            Command::RecordActivity { recent } => Some(recent),
            _ => None,
        };
        let seen_before = recent.map(|recent| {
            let seen: Vec<_> = self
                .state
                .holders_seen(recent)
                .into_iter()
                .map(|h| (h.user, h.since, h.last_activity, h.warned_at, h.revoke_at))
                .collect();
            (recent.clone(), seen)
        });
        if let Some((recent, seen)) = &seen_before {
            prop_assert_eq!(seen, &self.model.holders_seen(recent), "holders_seen");
        }
        let state_before =
            matches!(command, Command::RecordActivity { .. }).then(|| self.state.clone());
        let decided = self.state.decide(command, now);
        let expected = self.model.step(command, now);
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
                prop_assert_eq!(
                    observe(&self.state, now),
                    before,
                    "a refusal changed the state"
                );
                return Ok(());
            }
        };
        for e in &events {
            self.state.apply(e);
            if let ProductEvent::Queued { user, .. } | ProductEvent::Requeued { user, .. } = e {
                self.join_counter += 1;
                self.joined.insert(user.clone(), self.join_counter);
            }
            self.journal.push(e.clone());
            check_invariants(&self.state, &self.joined)?;
            if let ProductEvent::SlotGranted { user, .. } = e {
                check_cap(&self.state, user)?;
            }
        }
        check_fair(
            command,
            &queue_before,
            &events,
            &self.state,
            reserving_before,
        )?;
        check_against_model(&self.state, &self.model, now)?;

        // A decision that picks a holder by activity is one the live service records
        // coalesced activity for first.
        let picked_by_activity = events.iter().any(|e| {
            matches!(
                e,
                ProductEvent::SlotRevoked {
                    reason: RevokeReason::PoolShrunk | RevokeReason::Reclaimed,
                    ..
                }
            )
        });
        prop_assert!(
            !picked_by_activity || reads_activity,
            "{:?} picked a holder by activity, but reads_activity is false",
            command
        );
        // Recording coalesced activity shows every unwarned holder as holders_seen did
        // (a warned holder's recorded activity also cancels the warning).
        if let (Some(before), Some((recent, _))) = (&state_before, &seen_before) {
            common::check_seen_before(before, recent, now, &self.state)?;
        }

        // A command answered is answered: asking the same again at the same instant
        // changes nothing more for the idempotent ones (a second sweep included).
        if matches!(
            command,
            Command::Configure(_)
                | Command::Enrol { .. }
                | Command::Remove { .. }
                | Command::GiveFixed { .. }
                | Command::TakeFixed { .. }
                | Command::SetActive { .. }
                | Command::Request { .. }
                | Command::NoteGroups { .. }
                | Command::Tick { .. }
                | Command::ReconcileTier
                | Command::RecordActivity { .. }
        ) {
            let again = self.state.decide(command, now);
            prop_assert!(
                matches!(&again, Ok(e) if e.is_empty()),
                "{:?} again gave {:?}",
                command,
                again
            );
        }

        // Replay from scratch reaches the same observable state.
        let replayed = ProductState::replay(self.journal.iter());
        prop_assert_eq!(
            observe(&replayed, now),
            observe(&self.state, now),
            "replay differs"
        );
        Ok(())
    }

    /// A fact recorded from elsewhere, applied to product and model alike.
    fn force_fixed(&mut self, user: &str, now: Timestamp) -> Result<(), TestCaseError> {
        if self.state.settings().is_none() || self.model.fixed.contains(user) {
            return Ok(());
        }
        let event = ProductEvent::FixedGiven {
            user: user.to_string(),
        };
        self.state.apply(&event);
        self.model.force_fixed(user);
        self.journal.push(event);
        check_invariants(&self.state, &self.joined)?;
        check_against_model(&self.state, &self.model, now)
    }
}

fn resolve(op: &Op, current: Option<&Settings>, now: Timestamp) -> Command {
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
        Op::Tick {
            connected,
            last_seen,
            recent,
        } => Command::Tick {
            presence: Presence {
                connected: USERS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| connected & (1 << i) != 0)
                    .map(|(_, u)| u.to_string())
                    .collect(),
                last_seen: last_seen
                    .iter()
                    .map(|(i, back)| (USERS[*i].to_string(), plus_ms(now, -back)))
                    .collect(),
                recent_activity: recent
                    .iter()
                    .map(|(i, back)| (USERS[*i].to_string(), plus_ms(now, -back)))
                    .collect(),
                bypassed: Default::default(),
                alert_onsets: Default::default(),
            },
        },
        Op::Record(recent) => Command::RecordActivity {
            recent: recent
                .iter()
                .map(|(i, back)| (USERS[*i].to_string(), plus_ms(now, -back)))
                .collect(),
        },
        Op::Reserve(reservations) => {
            let mut s = current
                .cloned()
                .unwrap_or_else(|| Settings::new(ProductKind::Jira, 4, 2));
            s.reservations = reservations.clone().into();
            Command::Configure(s)
        }
        Op::ForceFixed(_) => unreachable!("not a command"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::proptest_cases(256), ..ProptestConfig::default() })]

    #[test]
    fn product_follows_the_rules_and_the_model((before, first, ops) in run_plan()) {
        let mut run = Run::default();
        let mut now = Timestamp::from_millis(T0);
        for (command, dt) in &before {
            now = plus_ms(now, *dt);
            run.step(command, now)?;
        }
        run.step(&Command::Configure(first), now)?;
        for (op, dt) in &ops {
            now = plus_ms(now, *dt);
            match op {
                Op::ForceFixed(i) => run.force_fixed(OUTSIDERS[*i], now)?,
                _ => {
                    let command = resolve(op, run.state.settings(), now);
                    run.step(&command, now)?;
                }
            }
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
            let events = state.decide(command).expect("legacy commands on distinct names are never refused");
            // The model: users are created active; a change of activity is recorded once.
            let mut expected = Vec::new();
            let (user, active) = match command {
                DirectoryCommand::Ensure { user } => (user, None),
                DirectoryCommand::SetActive { user, active } => (user, Some(*active)),
                other => unreachable!("only legacy commands are generated: {other:?}"),
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
            prop_assert!(state.decide(command).map(|e| e.is_empty()).unwrap_or(false), "{:?} again is not a no-op", command);
            let mut replayed = DirectoryState::new();
            for e in &journal {
                replayed.apply(e);
            }
            prop_assert_eq!(replayed.users(), state.users());
            let mut expected_users: Vec<_> = model.iter().map(|(u, a)| (u.clone(), *a)).collect();
            expected_users.sort();
            let users: Vec<_> = state.users().into_iter().map(|d| (d.user.clone(), d.active)).collect();
            prop_assert_eq!(users, expected_users);
        }
    }
}
