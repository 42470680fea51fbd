//! The state of one product and its rules: `decide` answers a command with events,
//! `apply` folds an event into the state.
//!
//! Architecture Invariant: this module does no I/O and reads no clock. `decide` takes
//! `&self` and has no side effects; `apply` never fails and never refuses (a recorded
//! fact is a fact). Recovery, audit and simulation replay the same `apply`.

use crate::command::{Command, Refusal};
use crate::event::{LeaveReason, ProductEvent, RevokeReason};
use crate::fixed_request::{FixedRequest, RequestState};
use crate::mode::{Mode, Passage};
use crate::pool::Pool;
use crate::queue::Queue;
use crate::reservation::{Blocked, GroupBook, Tally};
use crate::settings::Settings;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

pub mod alerts;
pub mod reservations;
pub mod spaces;

/// Where a user stands in one product's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Neither holding a slot nor queued.
    Idle,
    /// Holding a slot since `since`; last used at `last_activity`; maybe warned.
    Holding {
        since: Timestamp,
        last_activity: Timestamp,
        warning: Option<Warning>,
    },
    /// Waiting in the queue since `since`, with the given ticket.
    Queued { since: Timestamp, ticket: u64 },
}

/// A pending "you are about to lose your slot".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// When the warning was issued.
    pub at: Timestamp,
    /// When the slot is revoked unless the holder is active before.
    pub revoke_at: Timestamp,
}

/// What one product knows about one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserEntry {
    /// Enrolled in the pool.
    pub member: bool,
    /// Has a fixed licence.
    pub fixed: bool,
    /// Deactivated in the directory (as last told to this product).
    pub deactivated: bool,
    /// Slot or queue place.
    pub standing: Standing,
    /// Revoked for inactivity: no manual request before this instant.
    pub locked_until: Option<Timestamp>,
    /// Queued again by auto re-login, and not active since: no second automatic requeue.
    pub relogin_used: bool,
}

impl UserEntry {
    const NEW: UserEntry = UserEntry {
        member: false,
        fixed: false,
        deactivated: false,
        standing: Standing::Idle,
        locked_until: None,
        relogin_used: false,
    };

    /// Nothing left worth keeping. A lock and a used re-login outlive a removal from the
    /// pool: removing and enrolling a user again resets neither.
    fn is_empty(&self) -> bool {
        !self.member
            && !self.fixed
            && !self.deactivated
            && self.standing == Standing::Idle
            && self.locked_until.is_none()
            && !self.relogin_used
    }
}

/// The answer to "where do I stand?", as the user API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotView {
    /// Holding a slot; `revoke_at` is when inactivity would end it; `warned` once the
    /// holder has been warned of it.
    Granted { revoke_at: Timestamp, warned: bool },
    /// Revoked for inactivity; no manual request before `until`.
    Locked { until: Timestamp },
    /// A fixed licence: no slot needed.
    Fixed,
    /// Waiting: 1-based position, estimated wait and when to ask again. `waiting_for`
    /// (products with reservations only): why members behind may pass (a group of the
    /// user at its cap, or free slots reserved for other groups); `None` when the user
    /// simply waits for their turn.
    Queued {
        position: usize,
        estimated_wait_s: u64,
        retry_after_s: u64,
        waiting_for: Option<Blocked>,
    },
    /// Neither holding nor waiting.
    None,
}

/// One holder, as the admin API lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub user: String,
    pub since: Timestamp,
    pub last_activity: Timestamp,
    /// When the holder was warned, if they were.
    pub warned_at: Option<Timestamp>,
    /// When the slot is revoked unless the holder is active before.
    pub revoke_at: Timestamp,
}

/// Something administrators should know, raised by a rule (shown at `/admin/v1/notices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// Rule 7: fixed users grew past the tier; the pool shrank by the excess.
    TierReconciled {
        at: Timestamp,
        fixed: u32,
        licence_tier: u32,
        shared_slots_before: u32,
        shared_slots_after: u32,
    },
    /// A licence-use alert fired ([`crate::alert`]): its rule's condition held for `for_s`.
    AlertFired {
        name: String,
        kind: crate::alert::AlertKind,
        threshold: i64,
        at: Timestamp,
        value: i64,
    },
    /// A licence-use alert resolved: its condition stopped holding (or its rule is gone).
    AlertResolved {
        name: String,
        at: Timestamp,
        value: i64,
    },
}

/// How many notices a product keeps.
pub const NOTICES_KEPT: usize = 100;

/// One queued member, as the admin API lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlace {
    pub user: String,
    pub position: usize,
    pub since: Timestamp,
}

/// Counts shown with a product's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub holders: usize,
    pub queued: usize,
    pub members: usize,
    pub fixed: usize,
}

/// A counted role of a user in a product: what [`ProductState::apply`] gives and takes
/// with one rule for both (the flag on the user's entry and the product's count move
/// together).
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Enrolled in the pool (`UserEntry::member`, counted in `members`).
    Member,
    /// Holds a fixed licence (`UserEntry::fixed`, counted in `fixed`).
    Fixed,
}

/// Who asks for a slot ([`Command::Request`], or a [`Command::PageView`] that may grant
/// one), with what the directory said of them: the attributes the eligibility rule reads
/// and the groups the reservations read (`None`: the caller did not ask the directory).
#[derive(Debug, Clone, Copy)]
struct Asker<'a> {
    user: &'a str,
    attributes: Option<&'a BTreeMap<String, String>>,
    groups: Option<&'a [String]>,
}

impl<'a> Asker<'a> {
    /// The asker a command's fields name.
    fn new(
        user: &'a str,
        attributes: &'a Option<Arc<BTreeMap<String, String>>>,
        groups: &'a Option<Arc<[String]>>,
    ) -> Self {
        Asker {
            user,
            attributes: attributes.as_deref(),
            groups: groups.as_deref(),
        }
    }
}

/// The whole state of one product: settings, users, holders and queue.
#[derive(Debug, Clone, Default)]
pub struct ProductState {
    pub(crate) settings: Option<Settings>,
    pub(crate) users: hashbrown::HashMap<Arc<str>, UserEntry, foldhash::fast::RandomState>,
    pub(crate) pool: Pool,
    pub(crate) queue: Queue,
    pub(crate) members: usize,
    pub(crate) fixed: usize,
    /// Moving average of how long a slot is held, in ms, for the queue's wait estimate.
    pub(crate) avg_hold_ms: i64,
    /// The latest notices, oldest first.
    pub(crate) notices: VecDeque<Notice>,
    /// Fixed-licence requests, by id (open and decided: the history stays).
    pub(crate) fixed_requests: BTreeMap<String, FixedRequest>,
    /// The noted reservation groups of users and the holders per group (rule 10; empty
    /// for products without reservations).
    pub(crate) groups: GroupBook,
    /// The firing licence-use alerts and the recent waits they read ([`crate::alert`]).
    pub(crate) alerts: crate::alert::AlertBook,
    /// The Confluence spaces and the space requests (see [`crate::space`]).
    pub(crate) spaces: crate::space_book::SpaceBook,
    /// The pool's size now: the settings' `shared_slots`, or what the schedule made of it
    /// at its last boundary ([`ProductEvent::CapacityScheduled`]).
    pub(crate) capacity: u32,
}

impl ProductState {
    /// An empty, unconfigured product.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds every event of a stream, in order, into a fresh state.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a ProductEvent>) -> Self {
        let mut state = Self::new();
        for e in events {
            state.apply(e);
        }
        state
    }

    /// The settings, once the product exists.
    pub fn settings(&self) -> Option<&Settings> {
        self.settings.as_ref()
    }

    /// What the product knows of a user.
    pub fn user(&self, user: &str) -> Option<&UserEntry> {
        self.users.get(user)
    }

    /// Every pool member and every fixed user, by name (what the source-group sync
    /// compares with the directory).
    pub fn members_and_fixed(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut members = BTreeSet::new();
        let mut fixed = BTreeSet::new();
        for (name, e) in &self.users {
            if e.member {
                members.insert(name.to_string());
            }
            if e.fixed {
                fixed.insert(name.to_string());
            }
        }
        (members, fixed)
    }

    /// Holders, queued, members and fixed users.
    pub fn counts(&self) -> Counts {
        Counts {
            holders: self.pool.len(),
            queued: self.queue.len(),
            members: self.members,
            fixed: self.fixed,
        }
    }

    /// Whether a member could have a slot at once: one is free and nobody waits for it.
    /// The gate's question ([`Command::PageView`]): such a member is granted by the page
    /// view, anyone else goes to the queue page, since a page view through a proxy must
    /// never queue anyone.
    pub fn slot_free_for(&self, user: &str) -> bool {
        self.slot_free_for_groups(user, None)
    }

    /// [`ProductState::slot_free_for`], judging a product's reservations (rule 10) by the
    /// user's directory `groups` when given (what the request would note), else by the
    /// groups the product noted for them.
    pub fn slot_free_for_groups(&self, user: &str, groups: Option<&[String]>) -> bool {
        let member = self
            .users
            .get(user)
            .is_some_and(|u| u.member && !u.deactivated);
        let slots = self.capacity as usize;
        if !member || self.pool.len() >= slots {
            return false;
        }
        match self
            .settings
            .as_ref()
            .filter(|s| !s.reservations.is_empty())
        {
            // With reservations the queue may hold members who may not take the free
            // slots; the user's noted groups say whether they may.
            Some(s) => {
                let tally = Tally::new(&s.reservations, &self.groups, slots - self.pool.len());
                match groups {
                    Some(g) => tally
                        .may_take(&crate::reservation::reserved_groups_of(&s.reservations, g))
                        .is_ok(),
                    None => tally.may_take(self.groups.of(user)).is_ok(),
                }
            }
            None => self.queue.is_empty(),
        }
    }

    /// Current holders, in the order they got their slots.
    pub fn holders(&self) -> Vec<Holder> {
        let Some(settings) = &self.settings else {
            return Vec::new();
        };
        let mut out: Vec<Holder> = self
            .pool
            .longest_inactive()
            .filter_map(|(u, _)| match self.users.get(u).map(|e| e.standing) {
                Some(Standing::Holding {
                    since,
                    last_activity,
                    warning,
                }) => Some(Holder {
                    user: u.to_string(),
                    since,
                    last_activity,
                    warned_at: warning.map(|w| w.at),
                    revoke_at: warning
                        .map_or_else(|| settings.revoke_deadline(last_activity), |w| w.revoke_at),
                }),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| (a.since, &a.user).cmp(&(b.since, &b.user)));
        out
    }

    /// Current holders, counting activity the product coalesced but has not recorded yet
    /// (what an administrator should see).
    pub fn holders_seen(&self, recent: &HashMap<String, Timestamp>) -> Vec<Holder> {
        let Some(settings) = &self.settings else {
            return Vec::new();
        };
        let mut out = self.holders();
        for h in &mut out {
            if let Some(at) = recent.get(&h.user).filter(|at| **at > h.last_activity) {
                h.last_activity = *at;
                if h.warned_at.is_none() {
                    h.revoke_at = settings.revoke_deadline(*at);
                }
            }
        }
        out
    }

    /// Whether deciding `command` reads holders' last activity (shrink, tier
    /// reconciliation, reclaim), so coalesced activity must be recorded first
    /// ([`Command::RecordActivity`]) or the longest-inactive holder may be the wrong one.
    pub fn reads_activity(&self, command: &Command) -> bool {
        match command {
            Command::Configure(_) | Command::ReconcileTier | Command::ScheduleCapacity => true,
            Command::Request { .. } => self.settings.as_ref().is_some_and(|s| {
                s.reclaim_on_request && self.free_slots() == 0 && !self.pool.is_empty()
            }),
            _ => false,
        }
    }

    /// The queue, head first.
    pub fn queue(&self) -> Vec<QueuePlace> {
        self.queue
            .iter()
            .enumerate()
            .map(|(i, (u, since))| QueuePlace {
                user: u.to_string(),
                position: i + 1,
                since,
            })
            .collect()
    }

    /// The latest notices, oldest first.
    pub fn notices(&self) -> impl Iterator<Item = &Notice> {
        self.notices.iter()
    }

    /// Every fixed-licence request, by id.
    pub fn fixed_requests(&self) -> impl Iterator<Item = &FixedRequest> {
        self.fixed_requests.values()
    }

    /// One fixed-licence request.
    pub fn fixed_request(&self, id: &str) -> Option<&FixedRequest> {
        self.fixed_requests.get(id)
    }

    /// The space catalogue and every space request.
    pub fn spaces(&self) -> &crate::space_book::SpaceBook {
        &self.spaces
    }

    /// One space request.
    pub fn space_request(&self, id: &str) -> Option<&crate::space::SpaceRequest> {
        self.spaces.requests.get(id)
    }

    /// Whether `user` should be in the product's access group: a holder, or an active
    /// fixed user. What the connector delivers for each user it is told changed.
    pub fn in_access_group(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|e| {
            matches!(e.standing, Standing::Holding { .. }) || (e.fixed && !e.deactivated)
        })
    }

    /// Everyone who should be in the product's access group (holders and active fixed
    /// users), sorted: what a connector re-sync compares the product's group with.
    pub fn access_group(&self) -> std::collections::BTreeSet<String> {
        self.users
            .iter()
            .filter(|(u, _)| self.in_access_group(u))
            .map(|(u, _)| u.to_string())
            .collect()
    }

    /// Whether `user` may listen to this product's notifications: the same people who
    /// may ask for a slot (members and fixed users), refused as a request would be
    /// (`deactivated`, `not_member`). A stream is a standing connection: a stranger has
    /// nothing to hear and no business holding one open.
    pub fn may_listen(&self, user: &str) -> Result<(), Refusal> {
        let entry = self.entry(user);
        if entry.deactivated {
            Err(Refusal::Deactivated)
        } else if entry.fixed || entry.member {
            Ok(())
        } else {
            Err(Refusal::NotMember)
        }
    }

    /// Where `user` stands, as of `now`.
    pub fn slot_view(&self, user: &str, now: Timestamp) -> SlotView {
        let Some(settings) = &self.settings else {
            return SlotView::None;
        };
        let Some(entry) = self.users.get(user) else {
            return SlotView::None;
        };
        if entry.fixed && !entry.deactivated {
            return SlotView::Fixed;
        }
        match entry.standing {
            Standing::Idle => match entry.locked_until {
                Some(until) if until > now => SlotView::Locked { until },
                _ => SlotView::None,
            },
            Standing::Holding {
                last_activity,
                warning,
                ..
            } => SlotView::Granted {
                revoke_at: warning
                    .map_or_else(|| settings.revoke_deadline(last_activity), |w| w.revoke_at),
                warned: warning.is_some(),
            },
            Standing::Queued { ticket, .. } => {
                let position = self.queue.position(ticket);
                let (estimated_wait_s, waiting_for) = if settings.reservations.is_empty() {
                    (
                        self.estimated_wait_s(settings, self.capacity, position),
                        None,
                    )
                } else {
                    self.reserved_wait(settings, user, position)
                };
                SlotView::Queued {
                    position,
                    estimated_wait_s,
                    retry_after_s: retry_after_s(settings),
                    waiting_for,
                }
            }
        }
    }

    /// Seconds until `position` is likely served: one slot frees every
    /// `average hold / shared slots`. Before any slot was given back, the inactivity time
    /// stands in for the average hold, which errs on the long side.
    pub(crate) fn estimated_wait_s(&self, settings: &Settings, slots: u32, position: usize) -> u64 {
        let hold_ms = if self.avg_hold_ms > 0 {
            self.avg_hold_ms
        } else {
            i64::from(settings.inactivity_s) * 1000
        };
        let per_slot_ms = hold_ms as u64 / u64::from(slots.max(1));
        (per_slot_ms.saturating_mul(position as u64)).div_ceil(1000)
    }

    /// Decides what `command` means at `now`: the events to record, or a refusal.
    ///
    /// An empty list means "nothing changes" (for example a holder requesting again).
    pub fn decide(&self, command: &Command, now: Timestamp) -> Result<Vec<ProductEvent>, Refusal> {
        if let Command::Configure(settings) = command {
            return self.decide_configure(settings, now);
        }
        if matches!(command, Command::NoteGroups { .. }) && self.settings.is_none() {
            // The directory tells every product; one not configured has nobody to note.
            return Ok(Vec::new());
        }
        let settings = self.settings.as_ref().ok_or(Refusal::UnknownProduct)?;
        let mut out = Vec::new();
        match command {
            Command::Configure(_) => unreachable!("handled above"),
            Command::Enrol { user, active } => {
                let entry = self.entry(user);
                if entry.fixed {
                    return Err(Refusal::FixedUser);
                }
                if !entry.member {
                    out.push(ProductEvent::MemberEnrolled { user: user.clone() });
                }
                // Never a slot or a queue place for a deactivated user.
                if !active && !entry.deactivated {
                    self.vacate(&mut out, user, &entry, VacateWhy::Deactivated, now);
                }
                push_activity_change(&mut out, user, entry.deactivated, *active);
                self.fill_freed(&mut out, now);
            }
            Command::Remove { user } => {
                let entry = self.entry(user);
                if entry.member {
                    self.vacate(&mut out, user, &entry, VacateWhy::Removed, now);
                    out.push(ProductEvent::MemberRemoved { user: user.clone() });
                    self.fill_freed(&mut out, now);
                }
            }
            Command::GiveFixed { user, active } => {
                let entry = self.entry(user);
                self.give_fixed(&mut out, user, &entry, settings, now)?;
                push_activity_change(&mut out, user, entry.deactivated, *active);
            }
            Command::TakeFixed { user } => {
                if self.entry(user).fixed {
                    out.push(ProductEvent::FixedTaken { user: user.clone() });
                }
            }
            Command::CatalogueSpaces { .. }
            | Command::RequestSpace { .. }
            | Command::ApproveSpaceRequest { .. }
            | Command::RejectSpaceRequest { .. }
            | Command::RevokeSpaceAccess { .. }
            | Command::FulfilSpaceRequest { .. }
            | Command::ConfirmSpaceRemoval { .. }
            | Command::FailSpaceRequest { .. } => {
                self.decide_space(&mut out, command, settings, now)?
            }
            Command::Rename { from, to } => {
                let known = self.users.contains_key(from.as_str())
                    || self.fixed_requests.values().any(|r| &r.user == from)
                    || self.spaces.knows(from);
                if from != to && known {
                    out.push(ProductEvent::MemberRenamed {
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
            }
            Command::SetActive { user, active } => {
                let entry = self.entry(user);
                if entry.member || entry.fixed || entry.deactivated {
                    if !active && !entry.deactivated {
                        self.vacate(&mut out, user, &entry, VacateWhy::Deactivated, now);
                    }
                    push_activity_change(&mut out, user, entry.deactivated, *active);
                    self.fill_freed(&mut out, now);
                }
                if !active {
                    self.revoke_spaces_of(&mut out, user, now);
                }
            }
            Command::Request {
                user,
                attributes,
                groups,
            } => self.decide_request_of(
                &mut out,
                Asker::new(user, attributes, groups),
                settings,
                now,
            )?,
            Command::Release { user } => {
                let entry = self.entry(user);
                self.vacate(&mut out, user, &entry, VacateWhy::Released, now);
                self.fill_freed(&mut out, now);
            }
            Command::Activity { user } => self.decide_activity(&mut out, user, settings, now)?,
            Command::Revoke { user } => match self.entry(user).standing {
                Standing::Holding { .. } => {
                    out.push(ProductEvent::SlotRevoked {
                        user: user.clone(),
                        reason: RevokeReason::Admin,
                        at: now,
                    });
                    self.fill_freed(&mut out, now);
                }
                _ => return Err(Refusal::NotHolder),
            },
            Command::Tick { presence } => self.decide_tick(&mut out, settings, presence, now),
            Command::ReconcileTier => self.decide_reconcile_tier(&mut out, settings, now),
            Command::ScheduleCapacity => self.decide_schedule_capacity(&mut out, settings, now),
            Command::RecordActivity { recent } => {
                self.record_recent(&mut out, recent, now);
            }
            Command::RequestFixed { id, user, reason } => {
                let entry = self.entry(user);
                if entry.deactivated {
                    return Err(Refusal::Deactivated);
                }
                if entry.fixed {
                    return Err(Refusal::FixedUser);
                }
                if !entry.member {
                    return Err(Refusal::NotMember);
                }
                if let Some(open) = self
                    .fixed_requests
                    .values()
                    .find(|r| r.user == *user && r.state == RequestState::Open)
                {
                    return Err(Refusal::DuplicateRequest {
                        id: open.id.clone(),
                    });
                }
                if self.fixed_requests.contains_key(id) {
                    return Err(Refusal::DuplicateRequest { id: id.clone() });
                }
                out.push(ProductEvent::FixedRequested {
                    id: id.clone(),
                    user: user.clone(),
                    reason: reason.clone(),
                    at: now,
                });
            }
            Command::ApproveFixedRequest { id, note, active } => {
                let request = self.open_request(id)?;
                let entry = self.entry(&request.user);
                // Never a licence for a deactivated user; and approval never changes
                // whether a user is active (that is the directory's word alone).
                if entry.deactivated || !active {
                    return Err(Refusal::Deactivated);
                }
                out.push(ProductEvent::FixedRequestApproved {
                    id: id.clone(),
                    note: note.clone(),
                    at: now,
                });
                self.give_fixed(&mut out, &request.user, &entry, settings, now)?;
            }
            Command::RejectFixedRequest { id, note } => {
                self.open_request(id)?;
                out.push(ProductEvent::FixedRequestRejected {
                    id: id.clone(),
                    note: note.clone(),
                    at: now,
                });
            }
            Command::NoteGroups { user, groups } => {
                let standing = self.entry(user).standing;
                let known = standing != Standing::Idle || !self.groups.of(user).is_empty();
                if !settings.reservations.is_empty() && known {
                    self.note_groups(&mut out, user, settings, Some(groups));
                    if !out.is_empty() && standing != Standing::Idle {
                        self.fill_freed(&mut out, now);
                    }
                }
            }
            Command::PageView {
                user,
                attributes,
                groups,
                gate,
            } => {
                let bypassed = gate
                    .as_deref()
                    .is_some_and(|g| self.bypass_rule(user, g).is_some());
                if !bypassed {
                    self.decide_page_view(
                        &mut out,
                        Asker::new(user, attributes, groups),
                        settings,
                        now,
                    )
                }
            }
        }
        Ok(out)
    }

    /// A slot request (rules 1, 2, 4 and 10): a fixed user needs none, a holder or queued
    /// member keeps what they have, a locked user waits; otherwise a slot or a queue place.
    fn decide_request_of(
        &self,
        out: &mut Vec<ProductEvent>,
        asker: Asker<'_>,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let user = asker.user;
        let entry = self.entry(user);
        if entry.deactivated {
            return Err(Refusal::Deactivated);
        }
        if entry.fixed {
            return Ok(());
        }
        if !entry.member {
            return Err(Refusal::NotMember);
        }
        if let Some(rule) = &settings.eligibility {
            if !rule.admits(asker.attributes) {
                return Err(Refusal::NotEligible);
            }
        }
        let locked = entry.locked_until.is_some_and(|t| t > now);
        if settings.mode == Mode::QueueAll {
            // Maintenance: nobody new gets a slot; the request waits its turn.
            if !settings.reservations.is_empty() {
                self.note_groups(out, user, settings, asker.groups);
            }
            if entry.standing == Standing::Idle && !locked {
                out.push(ProductEvent::Queued {
                    user: user.to_string(),
                    at: now,
                });
            }
            return Ok(());
        }
        if !settings.reservations.is_empty() {
            let mine = self.note_groups(out, user, settings, asker.groups);
            if entry.standing == Standing::Idle && !locked {
                self.decide_request_reserved(out, user, &mine, settings, now);
            } else if !out.is_empty() && entry.standing != Standing::Idle {
                self.fill_freed(out, now);
            }
        } else if entry.standing == Standing::Idle && !locked {
            self.decide_request(out, user, settings, now);
        }
        Ok(())
    }

    /// A holder used the product (rule 3); anyone else is `not_holder`.
    fn decide_activity(
        &self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let Standing::Holding {
            last_activity,
            warning,
            ..
        } = self.entry(user).standing
        else {
            return Err(Refusal::NotHolder);
        };
        // Coalescing: within the window, a holder who is not warned has nothing to gain
        // from another journaled activity. A warned holder's activity is always recorded:
        // it cancels the warning.
        let quiet_ms = now.as_millis() - last_activity.as_millis();
        if warning.is_some() || quiet_ms >= settings.coalesce_window_ms() {
            out.push(ProductEvent::ActivityRecorded {
                user: user.to_string(),
                at: now,
            });
        }
        Ok(())
    }

    /// A page view through the gate ([`Command::PageView`]): activity for a holder, a
    /// grant for a member with a free slot and nobody ahead, nothing for anyone else.
    fn decide_page_view(
        &self,
        out: &mut Vec<ProductEvent>,
        asker: Asker<'_>,
        settings: &Settings,
        now: Timestamp,
    ) {
        let user = asker.user;
        let entry = self.entry(user);
        let unlocked = entry.locked_until.is_none_or(|t| t <= now);
        match (entry.standing, settings.mode) {
            (Standing::Holding { .. }, _) => {
                // Cannot be refused: the user holds a slot.
                let _ = self.decide_activity(out, user, settings, now);
            }
            // The shadow run: the view of a member without a slot is the request the queue
            // page would have made (granted, or queued); the gate lets them through anyway.
            (Standing::Idle, Mode::Passthrough) if unlocked => {
                let mut asked = Vec::new();
                if self
                    .decide_request_of(&mut asked, asker, settings, now)
                    .is_ok()
                {
                    out.append(&mut asked);
                }
            }
            (Standing::Idle, Mode::Enforce)
                if unlocked && self.slot_free_for_groups(user, asker.groups) =>
            {
                // The request's own rule decides (eligibility included); a refusal lets
                // the view through to nothing and records nothing.
                let mut granted = Vec::new();
                if self
                    .decide_request_of(&mut granted, asker, settings, now)
                    .is_ok()
                {
                    out.append(&mut granted);
                }
            }
            (Standing::Idle | Standing::Queued { .. }, _) => {}
        }
    }

    /// What the gate answers a page view of `user` once it is decided and applied
    /// ([`crate::mode::Passage`]): through by `bypassed` (the rule [`Self::bypass_rule`]
    /// found before the view), as a holder or fixed user; in passthrough, through for
    /// every member who is not deactivated, with what enforcing would have answered;
    /// otherwise refused with where the user stands.
    pub fn passage(&self, user: &str, bypassed: Option<String>, now: Timestamp) -> Passage {
        if let Some(rule) = bypassed {
            return Passage::Bypassed(rule);
        }
        let state = match self.slot_view(user, now) {
            SlotView::Granted { .. } => "granted",
            SlotView::Fixed => "fixed",
            SlotView::Queued { .. } => "queued",
            SlotView::Locked { .. } => "locked",
            SlotView::None => "none",
        };
        let entry = self.entry(user);
        let mode = self.settings.as_ref().map(|s| s.mode).unwrap_or_default();
        match state {
            "granted" => Passage::Granted,
            "fixed" => Passage::Fixed,
            _ if mode == Mode::Passthrough && entry.member && !entry.deactivated => {
                Passage::Passthrough(state)
            }
            _ => Passage::Refused(state),
        }
    }

    /// The bypass rule that lets this page view of `user` through the gate without a slot
    /// ([`crate::bypass`]), if any: the first of the settings' `bypass` that admits it.
    /// Never for a holder (their view is activity, and they keep the slot), a fixed user
    /// (who needs no rule), or a user deactivated in the directory or as this product
    /// last heard.
    pub fn bypass_rule(
        &self,
        user: &str,
        gate: &crate::bypass::GateRequest,
    ) -> Option<&crate::bypass::BypassRule> {
        let rules = &self.settings.as_ref()?.bypass;
        if rules.is_empty() {
            return None;
        }
        let entry = self.entry(user);
        if entry.deactivated || entry.fixed || matches!(entry.standing, Standing::Holding { .. }) {
            return None;
        }
        crate::bypass::first_match(rules, user, gate)
    }

    /// An open fixed-licence request, or why there is none.
    fn open_request(&self, id: &str) -> Result<&FixedRequest, Refusal> {
        let request = self.fixed_requests.get(id).ok_or(Refusal::UnknownRequest)?;
        if request.state != RequestState::Open {
            return Err(Refusal::RequestClosed {
                state: request.state.code(),
            });
        }
        Ok(request)
    }

    /// Gives `user` a fixed licence unless they have one: within the licence tier, out of
    /// the pool (losing slot or queue place), the freed slot to the queue head. The one
    /// rule behind `PUT .../fixed/{u}` and an approved request.
    fn give_fixed(
        &self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        entry: &UserEntry,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        if entry.fixed {
            return Ok(());
        }
        let fixed = self.fixed as u32 + 1;
        if u64::from(fixed) + u64::from(settings.shared_slots) > u64::from(settings.licence_tier) {
            return Err(Refusal::TierExceeded {
                fixed,
                shared_slots: settings.shared_slots,
                tier: settings.licence_tier,
            });
        }
        if entry.member {
            self.vacate(out, user, entry, VacateWhy::Fixed, now);
            out.push(ProductEvent::MemberRemoved {
                user: user.to_string(),
            });
        }
        out.push(ProductEvent::FixedGiven {
            user: user.to_string(),
        });
        self.fill_freed(out, now);
        Ok(())
    }

    /// A member with no slot and no queue place asks for one (rules 1, 2 and 4).
    fn decide_request(
        &self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        settings: &Settings,
        now: Timestamp,
    ) {
        if self.free_slots() > 0 && self.queue.is_empty() {
            out.push(ProductEvent::SlotGranted {
                user: user.to_string(),
                at: now,
            });
            return;
        }
        // Reclaim (rule 4): the longest-inactive holder past the inactivity time loses the
        // slot without warning; the queue head, if any, still goes first.
        let victim = self.pool.longest_inactive().next().filter(|(_, last)| {
            settings.reclaim_on_request && now >= last.plus_secs(settings.inactivity_s)
        });
        let Some((victim, _)) = victim else {
            out.push(ProductEvent::Queued {
                user: user.to_string(),
                at: now,
            });
            return;
        };
        let to = self.queue.head().map_or(user, |head| head.as_ref());
        push_reclaim(out, victim, to, user, now);
    }

    /// Revokes the `count` longest-inactive holders: the pool shrank (rule 7's tier
    /// reconciliation, or settings with fewer shared slots).
    fn shrink_pool(&self, out: &mut Vec<ProductEvent>, count: usize, now: Timestamp) {
        for (user, _) in self.pool.longest_inactive().take(count) {
            out.push(ProductEvent::SlotRevoked {
                user: user.to_string(),
                reason: RevokeReason::PoolShrunk,
                at: now,
            });
        }
    }

    /// Rule 7: if fixed users grew so that `fixed + shared_slots > licence_tier`, shrink the
    /// pool by the excess (longest-inactive holders first) and raise a notice.
    fn decide_reconcile_tier(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        now: Timestamp,
    ) {
        let fixed = self.fixed as u32;
        let allowed = settings.licence_tier.saturating_sub(fixed);
        if settings.shared_slots <= allowed && self.capacity <= allowed {
            return;
        }
        // A scheduled size above the tier shrinks too (the schedule's windows are clamped
        // to the tier from now on: see `scheduled_size`).
        let capacity = self.capacity.min(allowed);
        self.shrink_pool(out, self.pool.len().saturating_sub(capacity as usize), now);
        let shared = settings.shared_slots.min(allowed);
        out.push(ProductEvent::TierReconciled {
            at: now,
            fixed,
            licence_tier: settings.licence_tier,
            shared_slots_before: settings.shared_slots.max(self.capacity),
            shared_slots_after: capacity,
        });
        if shared != settings.shared_slots {
            out.push(ProductEvent::Configured {
                settings: Settings {
                    shared_slots: shared,
                    ..settings.clone()
                },
            });
        }
        // `Configured` sets the size to `shared_slots`; the scheduled one follows it.
        let after = if shared != settings.shared_slots {
            shared
        } else {
            self.capacity
        };
        if capacity != after {
            out.push(ProductEvent::CapacityScheduled {
                shared_slots: capacity,
                at: now,
            });
        }
    }

    fn decide_configure(
        &self,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<Vec<ProductEvent>, Refusal> {
        // The webhook's secret, shown redacted, may come back as the placeholder.
        let kept;
        let settings = match (&settings.alert_webhook, self.settings.as_ref()) {
            (Some(w), Some(current)) if w.secret == crate::alert::REDACTED => {
                let mut s = settings.clone();
                crate::alert::keep_secret(&mut s.alert_webhook, current.alert_webhook.as_ref());
                kept = s;
                &kept
            }
            _ => settings,
        };
        settings
            .validate(self.fixed as u32)
            .map_err(Refusal::InvalidSettings)?;
        settings
            .validate_schedule(self.fixed as u32)
            .map_err(Refusal::InvalidSchedule)?;
        let mut out = Vec::new();
        if self.settings.as_ref() == Some(settings) {
            return Ok(out);
        }
        // The pool takes the size the new schedule gives it now (`shared_slots` without one).
        let size = self.scheduled_size(settings, now);
        let excess = self.pool.len().saturating_sub(size as usize);
        self.shrink_pool(&mut out, excess, now);
        out.push(ProductEvent::Configured {
            settings: settings.clone(),
        });
        if size != settings.shared_slots {
            out.push(ProductEvent::CapacityScheduled {
                shared_slots: size,
                at: now,
            });
        }
        self.serve_queue_to(&mut out, settings, size, excess, now);
        Ok(out)
    }

    /// Grants queued members, in order, the slots a new pool size of `size` frees, after
    /// `revoked` holders lost theirs to it (the resize's own events are in `out`).
    /// Leaving queue_all serves the queue in order, as a resize does; in it, nobody.
    fn serve_queue_to(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        size: u32,
        revoked: usize,
        now: Timestamp,
    ) {
        if !settings.reservations.is_empty() {
            self.fill_reserved_sized(out, settings, size as usize, now);
            return;
        }
        let free = match settings.mode {
            Mode::QueueAll => 0,
            Mode::Enforce | Mode::Passthrough => {
                (size as usize).saturating_sub(self.pool.len().saturating_sub(revoked))
            }
        };
        for user in self.queue.first(free) {
            out.push(ProductEvent::SlotGranted {
                user: user.to_string(),
                at: now,
            });
        }
    }

    /// The pool's size now, as the schedule of `settings` (if any) makes it at `now`:
    /// a window's size, clamped to what the licence tier leaves beside the fixed users
    /// (validation refuses larger windows, but fixed users may grow later), else
    /// `shared_slots`.
    fn scheduled_size(&self, settings: &Settings, now: Timestamp) -> u32 {
        if !settings.schedule.has_windows() {
            return settings.shared_slots;
        }
        let Ok(calendar) = settings.calendar() else {
            return settings.shared_slots;
        };
        let size = calendar.size_at(now);
        if size == settings.shared_slots {
            return size;
        }
        size.min(settings.licence_tier.saturating_sub(self.fixed as u32))
    }

    /// The pool's size now: `shared_slots`, or what the schedule made of it at its last
    /// boundary (the admin API's `effective_shared_slots`; what the gate and the pool use).
    pub fn effective_shared_slots(&self) -> u32 {
        self.capacity
    }

    /// The next change of the pool's size the schedule makes after `now` (the admin API's
    /// `next_capacity_change`); `None` without a schedule, or when it never changes again.
    pub fn next_capacity_change(&self, now: Timestamp) -> Option<crate::schedule::CapacityChange> {
        let settings = self.settings.as_ref()?;
        if !settings.schedule.has_windows() {
            return None;
        }
        let calendar = settings.calendar().ok()?;
        let mut change = calendar.next_change(now)?;
        if change.shared_slots != settings.shared_slots {
            change.shared_slots = change
                .shared_slots
                .min(settings.licence_tier.saturating_sub(self.fixed as u32));
        }
        Some(change)
    }

    /// When the scheduler must next send [`Command::ScheduleCapacity`] after `now`: the
    /// start of the warning lead of the next change if it shrinks the pool below its
    /// holders and the lead has not begun, else the change itself. `None` without a
    /// schedule (or when it never changes again).
    pub fn next_capacity_job(&self, now: Timestamp) -> Option<Timestamp> {
        let settings = self.settings.as_ref()?;
        let change = self.next_capacity_change(now)?;
        let lead = i64::from(settings.schedule.shrink_warning_s()) * 1000;
        let warn_at = Timestamp::from_millis(change.at.as_millis() - lead);
        let shrinks =
            (change.shared_slots as usize) < self.pool.len() || change.shared_slots < self.capacity;
        Some(if lead > 0 && shrinks && warn_at > now {
            warn_at
        } else {
            change.at
        })
    }

    /// Scheduled capacity at `now` (see [`Command::ScheduleCapacity`]): the resize to the
    /// size the schedule gives now, as an admin resize (the longest-inactive holders lose
    /// their slot, reason `pool_shrunk`; a larger pool serves the queue in order); a shrink
    /// warning lifted from holders the shrink did not need; and, once the warning lead of
    /// the next shrink has begun, a warning to the holders it would revoke.
    fn decide_schedule_capacity(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        now: Timestamp,
    ) {
        if !settings.schedule.has_windows() && self.capacity == settings.shared_slots {
            return;
        }
        let size = self.scheduled_size(settings, now);
        if size != self.capacity {
            let excess = self.pool.len().saturating_sub(size as usize);
            self.shrink_pool(out, excess, now);
            out.push(ProductEvent::CapacityScheduled {
                shared_slots: size,
                at: now,
            });
            self.serve_queue_to(out, settings, size, excess, now);
        }
        // A shrink warning is a warning whose revocation is due while the holder is not
        // inactive for the inactivity time: lift those the shrink did not take (the
        // recorded activity is the holder's own last one), or the sweep would revoke them.
        let revoked: HashSet<&str> = out
            .iter()
            .filter_map(|e| match e {
                ProductEvent::SlotRevoked { user, .. } => Some(user.as_str()),
                _ => None,
            })
            .collect();
        let mut lifted = Vec::new();
        for (user, revoke_at) in self.pool.warned() {
            if revoke_at > now {
                break;
            }
            if let Some(Standing::Holding { last_activity, .. }) =
                self.user(user).map(|e| e.standing)
            {
                if !revoked.contains(user.as_ref()) && settings.revoke_deadline(last_activity) > now
                {
                    lifted.push(ProductEvent::ActivityRecorded {
                        user: user.to_string(),
                        at: last_activity,
                    });
                }
            }
        }
        out.append(&mut lifted);
        self.warn_before_shrink(out, settings, now);
    }

    /// Once the warning lead of the next scheduled shrink has begun: a warning
    /// (`WarningIssued`, revocation at the boundary) to each holder the shrink would
    /// revoke now (the longest-inactive beyond the new size) who is not warned yet.
    /// Using the product before the boundary lifts the warning, as for inactivity, and
    /// makes the holder less likely to be the one revoked.
    fn warn_before_shrink(&self, out: &mut Vec<ProductEvent>, settings: &Settings, now: Timestamp) {
        let lead = settings.schedule.shrink_warning_s();
        if lead == 0 {
            return;
        }
        // The state after the resize above, if any (boundaries are rare: cloning is fine).
        let after;
        let state = if out.is_empty() {
            self
        } else {
            let mut s = self.clone();
            out.iter().for_each(|e| s.apply(e));
            after = s;
            &after
        };
        let Some(change) = state.next_capacity_change(now) else {
            return;
        };
        if now.plus_secs(lead) < change.at {
            return;
        }
        let over = state
            .pool
            .len()
            .saturating_sub(change.shared_slots as usize);
        for (user, _, warned) in state.pool.longest_inactive_warned().take(over) {
            if !warned {
                out.push(ProductEvent::WarningIssued {
                    user: user.to_string(),
                    at: now,
                    revoke_at: change.at,
                });
            }
        }
    }

    /// The user's entry, or the entry of a user the product has never heard of.
    fn entry(&self, user: &str) -> UserEntry {
        self.users.get(user).copied().unwrap_or(UserEntry::NEW)
    }

    pub(crate) fn free_slots(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.pool.len())
    }

    /// Records the user losing their slot or queue place, if they have one.
    fn vacate(
        &self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        entry: &UserEntry,
        why: VacateWhy,
        now: Timestamp,
    ) {
        let user = user.to_string();
        match entry.standing {
            Standing::Idle => {}
            Standing::Holding { .. } => out.push(match why.revoke_reason() {
                None => ProductEvent::SlotReleased { user, at: now },
                Some(reason) => ProductEvent::SlotRevoked {
                    user,
                    reason,
                    at: now,
                },
            }),
            Standing::Queued { .. } => out.push(ProductEvent::QueueLeft {
                user,
                reason: why.leave_reason(),
                at: now,
            }),
        }
    }

    /// Gives every slot the pending events free to the head of the queue, in order.
    ///
    /// Rule 2: a freed slot goes to the queue head at once, never to whoever asks next.
    pub(crate) fn fill_freed(&self, out: &mut Vec<ProductEvent>, now: Timestamp) {
        // queue_all: freed slots stay free until the mode is left.
        if self
            .settings
            .as_ref()
            .is_some_and(|s| s.mode == Mode::QueueAll)
        {
            return;
        }
        if let Some(settings) = self
            .settings
            .as_ref()
            .filter(|s| !s.reservations.is_empty())
        {
            return self.fill_reserved(out, settings, now);
        }
        let mut freed = 0usize;
        let mut leaving: HashSet<&str> = HashSet::new();
        let mut joining: Vec<&str> = Vec::new();
        for e in out.iter() {
            match e {
                ProductEvent::SlotReleased { .. } | ProductEvent::SlotRevoked { .. } => freed += 1,
                ProductEvent::QueueLeft { user, .. } => {
                    leaving.insert(user);
                }
                ProductEvent::Queued { user, .. } | ProductEvent::Requeued { user, .. } => {
                    joining.push(user)
                }
                _ => {}
            }
        }
        let free = self.free_slots() + freed;
        let heads: Vec<String> = self
            .queue
            .iter()
            .map(|(u, _)| u.as_ref())
            .filter(|u| !leaving.contains(u))
            .chain(joining)
            .take(free)
            .map(str::to_string)
            .collect();
        for user in heads {
            out.push(ProductEvent::SlotGranted { user, at: now });
        }
    }

    /// Keeps a notice (the latest [`NOTICES_KEPT`]).
    pub(crate) fn raise(&mut self, notice: Notice) {
        if self.notices.len() == NOTICES_KEPT {
            self.notices.pop_front();
        }
        self.notices.push_back(notice);
    }

    /// Folds one recorded event into the state. Never fails: a recorded fact is a fact.
    pub fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::Configured { settings } => {
                // A new schedule drops warnings too: a shrink warning of the old one must
                // not revoke anyone at a boundary that is no more.
                let retimed = self.settings.as_ref().is_some_and(|old| {
                    (old.inactivity_s, old.warning_lead_s, old.sweep_interval_s)
                        != (
                            settings.inactivity_s,
                            settings.warning_lead_s,
                            settings.sweep_interval_s,
                        )
                        || (old.timezone.as_deref(), &old.schedule)
                            != (settings.timezone.as_deref(), &settings.schedule)
                });
                self.settings = Some(settings.clone());
                self.capacity = settings.shared_slots;
                if retimed {
                    self.cancel_warnings();
                }
            }
            ProductEvent::MemberEnrolled { user } => self.set_role(user, Role::Member, true),
            ProductEvent::MemberRemoved { user } => self.set_role(user, Role::Member, false),
            ProductEvent::FixedGiven { user } => self.set_role(user, Role::Fixed, true),
            ProductEvent::FixedTaken { user } => self.set_role(user, Role::Fixed, false),
            ProductEvent::UserDeactivated { user } => self.entry_mut(user).deactivated = true,
            ProductEvent::UserReactivated { user } => {
                if let Some(e) = self.users.get_mut(user.as_str()) {
                    e.deactivated = false;
                }
                self.forget_if_empty(user);
            }
            ProductEvent::SlotGranted { user, at } => {
                self.note_grant(user, *at);
                self.ensure_user(user);
                let Some((key, e)) = self.users.get_key_value_mut(user.as_str()) else {
                    return;
                };
                leave_standing(&mut standings!(self), key, e, *at);
                self.pool.insert(Arc::clone(key), *at);
                if !self.groups.is_empty() {
                    if let Some(g) = self.groups.noted.get(key) {
                        let g = g.clone();
                        self.groups.count_in(&g);
                    }
                }
                e.standing = Standing::Holding {
                    since: *at,
                    last_activity: *at,
                    warning: None,
                };
                e.locked_until = None;
            }
            ProductEvent::Queued { user, at } | ProductEvent::Requeued { user, at } => {
                self.ensure_user(user);
                let Some((key, e)) = self.users.get_key_value_mut(user.as_str()) else {
                    return;
                };
                leave_standing(&mut standings!(self), key, e, *at);
                let ticket = self.queue.push(Arc::clone(key), *at);
                e.standing = Standing::Queued { since: *at, ticket };
                // Only activity renews the automatic re-login, not a manual queue place.
                if matches!(event, ProductEvent::Requeued { .. }) {
                    e.relogin_used = true;
                }
            }
            ProductEvent::WarningIssued {
                user,
                at,
                revoke_at,
            } => self.warn(user, *at, *revoke_at),
            ProductEvent::TierReconciled {
                at,
                fixed,
                licence_tier,
                shared_slots_before,
                shared_slots_after,
            } => {
                self.raise(Notice::TierReconciled {
                    at: *at,
                    fixed: *fixed,
                    licence_tier: *licence_tier,
                    shared_slots_before: *shared_slots_before,
                    shared_slots_after: *shared_slots_after,
                });
            }
            ProductEvent::QueueLeft { user, at, .. }
            | ProductEvent::SlotReleased { user, at }
            | ProductEvent::SlotRevoked { user, at, .. } => {
                let lock_s = self.settings.as_ref().map_or(0, |s| s.lock_s);
                let Some((key, e)) = self.users.get_key_value_mut(user.as_str()) else {
                    return;
                };
                leave_standing(&mut standings!(self), key, e, *at);
                if let ProductEvent::SlotRevoked {
                    reason: RevokeReason::Inactivity,
                    ..
                } = event
                {
                    // Rule: lock time after a revocation for inactivity.
                    e.locked_until = (lock_s > 0).then(|| at.plus_secs(lock_s));
                }
                if e.is_empty() {
                    self.forget(user);
                }
            }
            ProductEvent::FixedRequested {
                id,
                user,
                reason,
                at,
            } => {
                self.fixed_requests.insert(
                    id.clone(),
                    FixedRequest {
                        id: id.clone(),
                        user: user.clone(),
                        reason: reason.clone(),
                        at: *at,
                        state: RequestState::Open,
                    },
                );
            }
            ProductEvent::FixedRequestApproved { id, note, at } => {
                if let Some(r) = self.fixed_requests.get_mut(id) {
                    r.state = RequestState::Approved {
                        at: *at,
                        note: note.clone(),
                    };
                }
            }
            ProductEvent::FixedRequestRejected { id, note, at } => {
                if let Some(r) = self.fixed_requests.get_mut(id) {
                    r.state = RequestState::Rejected {
                        at: *at,
                        note: note.clone(),
                    };
                }
            }
            ProductEvent::GroupsNoted { user, groups } => {
                let key = self.key(user);
                let holding = matches!(
                    self.users.get(&key).map(|e| e.standing),
                    Some(Standing::Holding { .. })
                );
                self.groups.note(key, groups, holding);
                self.forget_if_empty(user);
            }
            ProductEvent::MemberRenamed { from, to } => self.rename(from, to),
            // A count for audit (`History::bypass_days`): the pool is untouched.
            ProductEvent::BypassesCounted { .. } => {}
            ProductEvent::AlertFired {
                name,
                kind,
                threshold,
                at,
                value,
            } => self.apply_alert(
                name,
                Some(crate::alert::Firing {
                    since: *at,
                    value: *value,
                }),
                Notice::AlertFired {
                    name: name.clone(),
                    kind: *kind,
                    threshold: *threshold,
                    at: *at,
                    value: *value,
                },
            ),
            ProductEvent::AlertResolved { name, at, value } => self.apply_alert(
                name,
                None,
                Notice::AlertResolved {
                    name: name.clone(),
                    at: *at,
                    value: *value,
                },
            ),
            ProductEvent::SpacesCatalogued { .. }
            | ProductEvent::SpaceRequested { .. }
            | ProductEvent::SpaceRequestApproved { .. }
            | ProductEvent::SpaceRequestRejected { .. }
            | ProductEvent::SpaceAccessGranted { .. }
            | ProductEvent::SpaceAccessRevoked { .. }
            | ProductEvent::SpaceAccessRemoved { .. }
            | ProductEvent::SpaceAccessFailed { .. } => self.spaces.apply(event),
            ProductEvent::CapacityScheduled { shared_slots, .. } => self.capacity = *shared_slots,
            ProductEvent::ActivityRecorded { user, at } => {
                // The hottest event of a long stream: one lookup, the entry updated in
                // place while its key moves in the pool.
                if let Some((key, e)) = self.users.get_key_value_mut(user.as_str()) {
                    if let Standing::Holding {
                        since,
                        last_activity,
                        warning,
                    } = e.standing
                    {
                        let at = (*at).max(last_activity);
                        let revoke_at = warning.map(|w| w.revoke_at);
                        self.pool.touch(key, last_activity, at, revoke_at);
                        e.standing = Standing::Holding {
                            since,
                            last_activity: at,
                            warning: None,
                        };
                        e.relogin_used = false;
                    }
                }
            }
        }
    }

    /// Moves everything known of `from` to `to`: the entry (membership, fixed licence,
    /// lock, re-login), the slot with its place in the pool's due-time order and its
    /// warning, or the queue ticket (the place in the queue is kept), the noted
    /// reservation groups, and the user of `from`'s fixed-licence requests. Counts do not
    /// change. An entry already under `to` (the directory refuses a name in use, so only
    /// a stale one of a deleted user) is replaced.
    fn rename(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        self.spaces.rename(from, to);
        for r in self.fixed_requests.values_mut() {
            if r.user == from {
                r.user = to.to_string();
            }
        }
        let Some((old, entry)) = self.users.remove_entry(from) else {
            return;
        };
        self.drop_entry(to);
        let key: Arc<str> = Arc::from(to);
        match entry.standing {
            Standing::Holding {
                last_activity,
                warning,
                ..
            } => {
                self.pool
                    .remove(&old, last_activity, warning.map(|w| w.revoke_at));
                self.pool.insert(Arc::clone(&key), last_activity);
                if let Some(w) = warning {
                    self.pool.warn(&key, last_activity, w.revoke_at);
                }
            }
            Standing::Queued { ticket, .. } => self.queue.rename(ticket, Arc::clone(&key)),
            Standing::Idle => {}
        }
        if let Some(groups) = self.groups.noted.remove(&old) {
            self.groups.noted.insert(Arc::clone(&key), groups);
        }
        self.users.insert(key, entry);
    }

    /// Drops `user`'s entry with everything it holds (counts, slot, queue place, groups).
    fn drop_entry(&mut self, user: &str) {
        let Some((key, e)) = self.users.remove_entry(user) else {
            return;
        };
        if e.member {
            self.members -= 1;
        }
        if e.fixed {
            self.fixed -= 1;
        }
        match e.standing {
            Standing::Holding {
                last_activity,
                warning,
                ..
            } => {
                self.pool
                    .remove(&key, last_activity, warning.map(|w| w.revoke_at));
                if let Some(g) = self.groups.noted.get(&key) {
                    let g = g.clone();
                    self.groups.count_out(&g);
                }
            }
            Standing::Queued { ticket, .. } => self.queue.remove(ticket),
            Standing::Idle => {}
        }
        self.groups.forget(user);
    }

    /// The interned key for `user`, creating an empty entry if needed.
    fn key(&mut self, user: &str) -> Arc<str> {
        if let Some((k, _)) = self.users.get_key_value(user) {
            return Arc::clone(k);
        }
        let k: Arc<str> = Arc::from(user);
        self.users.insert(Arc::clone(&k), UserEntry::NEW);
        k
    }

    /// Gives (`on`) or takes `role` from `user`, keeping the role's count; taking it
    /// forgets an entry left empty. Giving a role the user has, or taking one they lack,
    /// changes nothing.
    fn set_role(&mut self, user: &str, role: Role, on: bool) {
        let entry = if on {
            Some(self.entry_mut(user))
        } else {
            self.users.get_mut(user)
        };
        if let Some(e) = entry {
            let flag = match role {
                Role::Member => &mut e.member,
                Role::Fixed => &mut e.fixed,
            };
            if *flag != on {
                *flag = on;
                let count = match role {
                    Role::Member => &mut self.members,
                    Role::Fixed => &mut self.fixed,
                };
                if on {
                    *count += 1;
                } else {
                    *count -= 1;
                }
            }
        }
        if !on {
            self.forget_if_empty(user);
        }
    }

    fn entry_mut(&mut self, user: &str) -> &mut UserEntry {
        let key = self.key(user);
        self.users.entry(key).or_insert(UserEntry::NEW)
    }

    /// Creates an empty entry for `user` unless there is one.
    fn ensure_user(&mut self, user: &str) {
        if !self.users.contains_key(user) {
            self.users.insert(Arc::from(user), UserEntry::NEW);
        }
    }

    /// Marks a holder warned (a no-op for anyone else, or for a holder already warned).
    fn warn(&mut self, user: &str, at: Timestamp, revoke_at: Timestamp) {
        let Some((key, e)) = self.users.get_key_value(user) else {
            return;
        };
        let Standing::Holding {
            since,
            last_activity,
            warning: None,
        } = e.standing
        else {
            return;
        };
        let key = Arc::clone(key);
        self.pool.warn(&key, last_activity, revoke_at);
        if let Some(e) = self.users.get_mut(&key) {
            e.standing = Standing::Holding {
                since,
                last_activity,
                warning: Some(Warning { at, revoke_at }),
            };
        }
    }

    /// Drops every pending warning: its revocation time was computed with other time
    /// settings (a longer inactivity time must not revoke earlier than it allows). The
    /// next sweep warns whoever is due under the new settings, with the whole lead.
    fn cancel_warnings(&mut self) {
        let warned: Vec<(Arc<str>, Timestamp)> = self
            .pool
            .warned()
            .map(|(u, revoke_at)| (Arc::clone(u), revoke_at))
            .collect();
        for (key, revoke_at) in warned {
            if let Some(e) = self.users.get_mut(&key) {
                if let Standing::Holding {
                    since,
                    last_activity,
                    warning: Some(_),
                } = e.standing
                {
                    e.standing = Standing::Holding {
                        since,
                        last_activity,
                        warning: None,
                    };
                    self.pool
                        .touch(&key, last_activity, last_activity, Some(revoke_at));
                }
            }
        }
    }

    fn forget_if_empty(&mut self, user: &str) {
        if self.users.get(user).is_some_and(UserEntry::is_empty) {
            self.forget(user);
        }
    }

    /// Drops a user's entry, and the groups noted for them, once it holds nothing.
    fn forget(&mut self, user: &str) {
        self.users.remove(user);
        self.groups.forget(user);
    }
}

/// Rule 4's reclaim: `victim` loses the slot without warning and `to` gets it; the
/// requester `user`, when the slot goes to someone ahead of them (`to != user`), is
/// queued. One rule for products with and without reservations.
fn push_reclaim(out: &mut Vec<ProductEvent>, victim: &str, to: &str, user: &str, now: Timestamp) {
    out.push(ProductEvent::SlotRevoked {
        user: victim.to_string(),
        reason: RevokeReason::Reclaimed,
        at: now,
    });
    out.push(ProductEvent::SlotGranted {
        user: to.to_string(),
        at: now,
    });
    if to != user {
        out.push(ProductEvent::Queued {
            user: user.to_string(),
            at: now,
        });
    }
}

/// The parts of a state a user's slot or queue place lives in, borrowed field by field
/// (apart from the users map) so that `apply` can change a user's entry and these at once.
macro_rules! standings {
    ($state:expr) => {
        Standings {
            pool: &mut $state.pool,
            queue: &mut $state.queue,
            groups: &mut $state.groups,
            avg_hold_ms: &mut $state.avg_hold_ms,
        }
    };
}
use standings;

/// What [`leave_standing`] changes besides the user's entry: pool, queue, the groups'
/// holder counts and the average hold.
struct Standings<'a> {
    pool: &'a mut Pool,
    queue: &'a mut Queue,
    groups: &'a mut GroupBook,
    avg_hold_ms: &'a mut i64,
}

/// Takes the user (`key`, entry `e`) out of the pool or the queue, whichever they are in.
fn leave_standing(s: &mut Standings<'_>, key: &Arc<str>, e: &mut UserEntry, at: Timestamp) {
    match std::mem::replace(&mut e.standing, Standing::Idle) {
        Standing::Idle => {}
        Standing::Holding {
            since,
            last_activity,
            warning,
        } => {
            s.pool
                .remove(key, last_activity, warning.map(|w| w.revoke_at));
            if !s.groups.is_empty() {
                if let Some(g) = s.groups.noted.get(key) {
                    let g = g.clone();
                    s.groups.count_out(&g);
                }
            }
            let held = at.as_millis().saturating_sub(since.as_millis()).max(0);
            *s.avg_hold_ms = if *s.avg_hold_ms == 0 {
                held
            } else {
                (*s.avg_hold_ms * 7 + held) / 8
            };
        }
        Standing::Queued { ticket, .. } => s.queue.remove(ticket),
    }
}

/// Why a user is losing what they hold; maps to the reason recorded.
#[derive(Debug, Clone, Copy)]
enum VacateWhy {
    Released,
    Removed,
    Fixed,
    Deactivated,
}

impl VacateWhy {
    fn revoke_reason(self) -> Option<RevokeReason> {
        match self {
            VacateWhy::Released => None,
            VacateWhy::Removed => Some(RevokeReason::Removed),
            VacateWhy::Fixed => Some(RevokeReason::Fixed),
            VacateWhy::Deactivated => Some(RevokeReason::Deactivated),
        }
    }

    fn leave_reason(self) -> LeaveReason {
        match self {
            VacateWhy::Released => LeaveReason::Released,
            VacateWhy::Removed => LeaveReason::Removed,
            VacateWhy::Fixed => LeaveReason::Fixed,
            VacateWhy::Deactivated => LeaveReason::Deactivated,
        }
    }
}

/// Records a change of the directory's view of a user, if there is one.
fn push_activity_change(out: &mut Vec<ProductEvent>, user: &str, deactivated: bool, active: bool) {
    if deactivated && active {
        out.push(ProductEvent::UserReactivated {
            user: user.to_string(),
        });
    } else if !deactivated && !active {
        out.push(ProductEvent::UserDeactivated {
            user: user.to_string(),
        });
    }
}

/// Seconds a queued client should wait before asking again: often enough to keep its
/// place well within the queue timer, never more than every second.
fn retry_after_s(settings: &Settings) -> u64 {
    u64::from(settings.queue_timer_s / 4).clamp(1, 30)
}
