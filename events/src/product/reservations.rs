//! Rule 10's part of [`ProductState`]: the request with reservations (reclaim included),
//! `fill_reserved` (freed slots to the first queued member allowed, until none is), the
//! queued user's wait, and the admin view's `reservation_use`. The data and the one rule
//! they apply ([`Tally::may_take`]) are in [`crate::reservation`]; products without
//! reservations never enter this module.

use super::{push_reclaim, ProductState, Standing};
use crate::event::ProductEvent;
use crate::reservation::{key, reserved_groups_of, Blocked, GroupBook, ReservationUse, Tally};
use crate::settings::Settings;
use crate::time::Timestamp;
use std::collections::{HashMap, HashSet};

impl ProductState {
    /// The reservations with their current holders and queued members (the admin view);
    /// empty for a product without reservations.
    pub fn reservation_use(&self) -> Vec<ReservationUse> {
        let Some(settings) = &self.settings else {
            return Vec::new();
        };
        settings
            .reservations
            .iter()
            .map(|r| {
                let k = key(&r.group);
                ReservationUse {
                    group: r.group.clone(),
                    min: r.min,
                    max: r.max,
                    holders: self.groups.held(&k),
                    queued: self
                        .queue
                        .iter()
                        .filter(|(u, _)| self.groups.of(u).binary_search(&k).is_ok())
                        .count() as u32,
                }
            })
            .collect()
    }

    /// The noted reservation groups of a user.
    pub fn noted_groups(&self, user: &str) -> &[String] {
        self.groups.of(user)
    }

    /// Records the user's reservation groups when the directory's `groups` (if it was
    /// asked) differ from what was noted; returns the groups the decision goes on with.
    pub(crate) fn note_groups(
        &self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        settings: &Settings,
        groups: Option<&[String]>,
    ) -> Vec<String> {
        let noted = self.groups.of(user);
        let Some(groups) = groups else {
            return noted.to_vec();
        };
        let fresh = reserved_groups_of(&settings.reservations, groups);
        if fresh != noted {
            out.push(ProductEvent::GroupsNoted {
                user: user.to_string(),
                groups: fresh.clone(),
            });
        }
        fresh
    }

    /// A member with no slot and no queue place asks for one, in a product with
    /// reservations: granted if they may take a free slot (then queued members their grant
    /// unblocks are served too), else reclaim (rule 4) if it is on and the pool is full, else queued.
    ///
    /// Reclaim takes the longest-inactive holder past the inactivity time whose slot
    /// someone may then take (the first queued member allowed, else the requester), and
    /// never one whose leaving would push a group of theirs below its reserved minimum
    /// for someone outside that group; holders for whom this fails are passed over.
    pub(crate) fn decide_request_reserved(
        &self,
        out: &mut Vec<ProductEvent>,
        user: &str,
        mine: &[String],
        settings: &Settings,
        now: Timestamp,
    ) {
        let free = (self.capacity as usize).saturating_sub(self.pool.len());
        let tally = Tally::new(&settings.reservations, &self.groups, free);
        if tally.may_take(mine).is_ok() {
            out.push(ProductEvent::SlotGranted {
                user: user.to_string(),
                at: now,
            });
            // A member of several groups fills several reservations with one slot, which
            // may open a free slot to a queued member the reservations held back.
            self.fill_reserved(out, settings, now);
            return;
        }
        if settings.reclaim_on_request && free == 0 {
            for (victim, last) in self.pool.longest_inactive() {
                if now < last.plus_secs(settings.inactivity_s) {
                    break;
                }
                let theirs = self.groups.of(victim);
                let mut after = tally.clone();
                after.free_one(theirs);
                let recipient = self
                    .queue
                    .iter()
                    .map(|(q, _)| (q.as_ref(), self.groups.of(q)))
                    .find(|(_, g)| after.may_take(g).is_ok())
                    .or_else(|| after.may_take(mine).is_ok().then_some((user, mine)));
                let Some((to, their_groups)) = recipient else {
                    continue;
                };
                if tally.would_unfill_for(theirs, their_groups) {
                    continue;
                }
                push_reclaim(out, victim, to, user, now);
                return;
            }
        }
        out.push(ProductEvent::Queued {
            user: user.to_string(),
            at: now,
        });
    }

    /// Gives the slots free after the pending events `out` (under `settings`, which may
    /// be the ones `out` configures) to the first queued members who may take them, one
    /// at a time, until no queued member may take a free slot: the invariant "no free
    /// slot that a queued member may take" holds after the events. The grants are
    /// recorded in queue order.
    pub(crate) fn fill_reserved(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        now: Timestamp,
    ) {
        self.fill_reserved_sized(out, settings, self.capacity as usize, now)
    }

    /// [`ProductState::fill_reserved`] for a pool of `size` slots (a resize being decided).
    pub(crate) fn fill_reserved_sized(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        size: usize,
        now: Timestamp,
    ) {
        // queue_all: freed slots stay free until the mode is left.
        if settings.mode == crate::mode::Mode::QueueAll {
            return;
        }
        let granted: Vec<String> = {
            let mut noted: HashMap<&str, &[String]> = HashMap::new();
            let mut holding: HashMap<&str, bool> = HashMap::new();
            let mut left: HashSet<&str> = HashSet::new();
            let mut joined: Vec<&str> = Vec::new();
            let mut tally = Tally::new(&settings.reservations, &self.groups, 0);
            let mut holders = self.pool.len();
            let book = &self.groups;
            fn groups_of<'x>(
                noted: &HashMap<&str, &'x [String]>,
                book: &'x GroupBook,
                u: &str,
            ) -> &'x [String] {
                noted.get(u).copied().unwrap_or_else(|| book.of(u))
            }
            for e in out.iter() {
                let is_holding = |holding: &HashMap<&str, bool>, u: &str| {
                    holding.get(u).copied().unwrap_or_else(|| {
                        matches!(
                            self.users.get(u).map(|e| e.standing),
                            Some(Standing::Holding { .. })
                        )
                    })
                };
                match e {
                    ProductEvent::GroupsNoted { user, groups } => {
                        if is_holding(&holding, user) {
                            tally.free_one(groups_of(&noted, book, user));
                            tally.take(groups);
                        }
                        noted.insert(user, groups);
                    }
                    ProductEvent::SlotGranted { user, .. } => {
                        if !is_holding(&holding, user) {
                            tally.take(groups_of(&noted, book, user));
                            holders += 1;
                            holding.insert(user, true);
                        }
                        left.insert(user);
                        joined.retain(|j| j != user);
                    }
                    ProductEvent::SlotReleased { user, .. }
                    | ProductEvent::SlotRevoked { user, .. }
                        if is_holding(&holding, user) =>
                    {
                        tally.free_one(groups_of(&noted, book, user));
                        holders = holders.saturating_sub(1);
                        holding.insert(user, false);
                    }
                    ProductEvent::QueueLeft { user, .. } => {
                        left.insert(user);
                        joined.retain(|j| j != user);
                    }
                    ProductEvent::Queued { user, .. } | ProductEvent::Requeued { user, .. } => {
                        left.insert(user);
                        joined.retain(|j| j != user);
                        joined.push(user);
                    }
                    _ => {}
                }
            }
            tally.free = size.saturating_sub(holders);
            let candidates: Vec<(&str, &[String])> = self
                .queue
                .iter()
                .map(|(u, _)| u.as_ref())
                .filter(|u| !left.contains(u))
                .chain(joined)
                .map(|u| (u, groups_of(&noted, book, u)))
                .collect();
            let mut taken = vec![false; candidates.len()];
            while tally.free > 0 {
                let Some(i) = (0..candidates.len())
                    .find(|&i| !taken[i] && tally.may_take(candidates[i].1).is_ok())
                else {
                    break;
                };
                taken[i] = true;
                tally.take(candidates[i].1);
            }
            // A later member's grant may unblock an earlier one (by filling reservations
            // of two groups at once); the grants are recorded in queue order all the same.
            candidates
                .iter()
                .zip(taken)
                .filter(|(_, t)| *t)
                .map(|((u, _), _)| u.to_string())
                .collect()
        };
        for user in granted {
            out.push(ProductEvent::SlotGranted { user, at: now });
        }
    }

    /// The estimated wait of a queued `user` at `position` in a product with
    /// reservations, and what they wait for. A member whose group is at its cap waits
    /// for the group's holders to leave: the estimate counts the queued members of that
    /// group ahead of them and the cap's slots (one frees every `average hold / cap`);
    /// a cap of 0 never serves the group and the estimate falls back to the position's.
    pub(crate) fn reserved_wait(
        &self,
        settings: &Settings,
        user: &str,
        position: usize,
    ) -> (u64, Option<Blocked>) {
        let free = (self.capacity as usize).saturating_sub(self.pool.len());
        let tally = Tally::new(&settings.reservations, &self.groups, free);
        match tally.may_take(self.groups.of(user)) {
            Err(Blocked::GroupCap { group }) => {
                let k = key(&group);
                let cap = tally.cap(&group).unwrap_or(0);
                let ahead = self
                    .queue
                    .iter()
                    .map(|(u, _)| u)
                    .take_while(|u| u.as_ref() != user)
                    .filter(|u| self.groups.of(u).binary_search(&k).is_ok())
                    .count();
                let wait = if cap == 0 {
                    self.estimated_wait_s(settings, self.capacity, position)
                } else {
                    self.estimated_wait_s(settings, cap, ahead + 1)
                };
                (wait, Some(Blocked::GroupCap { group }))
            }
            Err(Blocked::Reserved) => (
                self.estimated_wait_s(settings, self.capacity, position),
                Some(Blocked::Reserved),
            ),
            Err(Blocked::Full) | Ok(()) => (
                self.estimated_wait_s(settings, self.capacity, position),
                None,
            ),
        }
    }
}

/// Whether a product's answer to a command (`events`) gave it reservations or changed
/// its settings while it has some: then every holder and queued member must have their
/// directory groups noted ([`crate::Command::NoteGroups`]), so that they count in their
/// groups at once, not only from their next request.
pub fn groups_to_note(events: &[ProductEvent]) -> bool {
    events.iter().any(
        |e| matches!(e, ProductEvent::Configured { settings } if !settings.reservations.is_empty()),
    )
}
