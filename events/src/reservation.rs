//! Reservations and caps per group (docs/design.md rule 10).
//!
//! A product's settings may list `reservations: [{"group", "min", "max"}]`: `min` slots
//! of the pool are reserved for members of the directory group (others may not take
//! them while the group holds fewer than `min`), and the group may hold at most `max`
//! (no cap when absent). Groups are matched by name without regard to case (or by SCIM
//! id), like `source_groups`.
//!
//! The rule ([`Tally::may_take`]): a member may take a free slot only if
//! (a) no group of theirs is at its cap, and
//! (b) the slots that stay free after the grant still cover the unfilled reservations
//!     (`min` minus the group's current holders) of the groups they are not in, unless
//!     the grant itself fills an unfilled reservation of a group of theirs (then the slot
//!     is what the reservation is for; this only matters when the pool has shrunk below
//!     the unfilled reservations, and keeps slots from staying empty for nobody).
//!
//! A request that may not take a free slot is queued; a freed slot goes to the first
//! queued member who may take it. After every event no free slot is left that a queued
//! member may take. A cap lowered below the group's current holders, or a membership
//! change that puts a group over its cap, revokes nobody: it only stops new grants.
//!
//! Where groups come from: a request carries the directory's groups of the user; a
//! product with reservations notes the reservation groups of the user
//! ([`crate::ProductEvent::GroupsNoted`]) when they differ from what it noted before,
//! and the rules read the noted groups of holders and queued members. Products without
//! reservations note nothing and pay nothing.
//!
//! Architecture Invariant: pure like the rest of the core; [`GroupBook`] is derived from
//! events alone (noted groups, grants and departures), so replay rebuilds it exactly.
//!
//! This module is the rule's data (what the settings list, what a product noted) and
//! [`Tally`]; it needs nothing of [`crate::ProductState`], so the settings can hold
//! reservations without a loop. The parts of `ProductState` that apply the rule to a
//! request, a freed slot and a queued user's wait are in `product/reservations.rs`.

use crate::profile::MAX_TEXT_LEN;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// One group's reserved slots and cap, as `reservations` in the settings lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    /// The directory group (display name without regard to case, or SCIM id).
    pub group: String,
    /// Slots reserved for the group: others may not take them while the group holds
    /// fewer. Default 0.
    #[serde(default)]
    pub min: u32,
    /// Most slots the group may hold at once; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// A product's reservations: a list that takes one pointer in [`crate::Settings`] (none when
/// empty), so that settings, and the commands and events that carry them, keep their size
/// on every product's hot path. Reads as a slice; serializes as a JSON array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// Deliberate: a thin pointer (8 bytes) instead of a `Vec` (24) or a boxed slice (16)
// keeps `ProductEvent` and `Command`, moved on every request, at their size.
#[allow(clippy::box_collection)]
pub struct Reservations(Option<Box<Vec<Reservation>>>);

impl Reservations {
    /// No reservations (what `is_empty` tells, and what `skip_serializing_if` omits).
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl std::ops::Deref for Reservations {
    type Target = [Reservation];

    fn deref(&self) -> &[Reservation] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<'a> IntoIterator for &'a Reservations {
    type Item = &'a Reservation;
    type IntoIter = std::slice::Iter<'a, Reservation>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl FromIterator<Reservation> for Reservations {
    fn from_iter<I: IntoIterator<Item = Reservation>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

impl From<Vec<Reservation>> for Reservations {
    fn from(v: Vec<Reservation>) -> Self {
        Reservations((!v.is_empty()).then(|| Box::new(v)))
    }
}

impl Serialize for Reservations {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(ser)
    }
}

impl<'de> Deserialize<'de> for Reservations {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Vec::<Reservation>::deserialize(de).map(Reservations::from)
    }
}

/// Most reservations a product may list.
pub const MAX_RESERVATIONS: usize = 100;

/// Checks a product's reservations against its pool size; pushes one message per problem.
pub(crate) fn validate(list: &[Reservation], shared_slots: u32, problems: &mut Vec<String>) {
    if list.len() > MAX_RESERVATIONS {
        problems.push(format!(
            "reservations lists at most {MAX_RESERVATIONS} groups"
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(list.len());
    let mut sum_min: u64 = 0;
    for r in list {
        let name = r.group.trim();
        if name.is_empty() || r.group.len() > MAX_TEXT_LEN || r.group.chars().any(char::is_control)
        {
            problems.push(format!(
                "reservations: group must be a name of 1 to {} bytes",
                MAX_TEXT_LEN
            ));
            continue;
        }
        let key = key(&r.group);
        if seen.contains(&key) {
            problems.push(format!(
                "reservations: group {:?} is listed more than once",
                r.group
            ));
        }
        seen.push(key);
        if let Some(max) = r.max {
            if r.min > max {
                problems.push(format!(
                    "reservations: group {:?} has min ({}) greater than max ({max})",
                    r.group, r.min
                ));
            }
            if max > shared_slots {
                problems.push(format!(
                    "reservations: group {:?} has max ({max}) greater than shared_slots ({shared_slots})",
                    r.group
                ));
            }
        }
        sum_min += u64::from(r.min);
    }
    if sum_min > u64::from(shared_slots) {
        problems.push(format!(
            "reservations: the sum of min ({sum_min}) exceeds shared_slots ({shared_slots})"
        ));
    }
}

/// The key a group is compared by: its name in lower case.
pub(crate) fn key(group: &str) -> String {
    group.trim().to_lowercase()
}

/// The reservation groups (by key, sorted, without repeats) among a user's directory
/// groups (names or SCIM ids, any case).
pub(crate) fn reserved_groups_of(list: &[Reservation], groups: &[String]) -> Vec<String> {
    let mine: Vec<String> = groups.iter().map(|g| key(g)).collect();
    let mut out: Vec<String> = list
        .iter()
        .map(|r| key(&r.group))
        .filter(|k| mine.contains(k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What a product remembers of its users' reservation groups, and how many holders each
/// noted group has. Derived from events only (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct GroupBook {
    /// The reservation groups (keys, sorted) last noted for each user; users with none
    /// are absent.
    pub(crate) noted: HashMap<Arc<str>, Vec<String>>,
    /// Holders per noted group key (only groups with holders).
    pub(crate) held: HashMap<String, u32>,
}

impl GroupBook {
    /// Nothing noted for anybody (every product without reservations).
    pub fn is_empty(&self) -> bool {
        self.noted.is_empty()
    }

    /// The groups noted for `user` (empty if none).
    pub fn of(&self, user: &str) -> &[String] {
        self.noted.get(user).map_or(&[], Vec::as_slice)
    }

    /// Holders of noted group `key`.
    pub fn held(&self, key: &str) -> u32 {
        self.held.get(key).copied().unwrap_or(0)
    }

    /// A holder with `groups` got a slot.
    pub(crate) fn count_in(&mut self, groups: &[String]) {
        for g in groups {
            *self.held.entry(g.clone()).or_insert(0) += 1;
        }
    }

    /// A holder with `groups` lost the slot.
    pub(crate) fn count_out(&mut self, groups: &[String]) {
        for g in groups {
            if let Some(n) = self.held.get_mut(g) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.held.remove(g);
                }
            }
        }
    }

    /// Notes `groups` for `user`, moving the holder counts if `holding`.
    pub(crate) fn note(&mut self, user: Arc<str>, groups: &[String], holding: bool) {
        let old = self.noted.remove(&user).unwrap_or_default();
        if holding {
            self.count_out(&old);
            self.count_in(groups);
        }
        if !groups.is_empty() {
            self.noted.insert(user, groups.to_vec());
        }
    }

    /// Forgets a user the product no longer knows.
    pub(crate) fn forget(&mut self, user: &str) {
        if !self.noted.is_empty() {
            self.noted.remove(user);
        }
    }
}

/// Why a queued member may not take a free slot, or why they wait longer than their
/// place suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// No slot is free: they wait for their turn, like everyone.
    Full,
    /// Their group `group` holds its cap: they wait for one of its holders to leave,
    /// while members of other groups may pass them.
    GroupCap { group: String },
    /// The free slots are reserved for groups they are not in.
    Reserved,
}

/// One reservation with its group's current holders, while deciding.
#[derive(Debug, Clone)]
struct Line {
    key: String,
    name: String,
    min: u32,
    max: Option<u32>,
    held: u32,
}

/// The reservations of a product with their current holders and the free slots: what
/// [`Tally::may_take`] decides with. Built per decision, only for products with
/// reservations; updated as a decision grants and frees slots.
#[derive(Debug, Clone)]
pub struct Tally {
    lines: Vec<Line>,
    /// Free slots (`shared_slots` minus holders, never below zero).
    pub free: usize,
}

impl Tally {
    /// The tally of `list` over `book`'s holder counts, with `free` free slots.
    pub fn new(list: &[Reservation], book: &GroupBook, free: usize) -> Tally {
        Tally {
            lines: list
                .iter()
                .map(|r| {
                    let key = key(&r.group);
                    Line {
                        held: book.held(&key),
                        key,
                        name: r.group.clone(),
                        min: r.min,
                        max: r.max,
                    }
                })
                .collect(),
            free,
        }
    }

    /// Whether a member with noted `groups` may take a free slot now (the module's rule);
    /// `Err` says why not.
    pub fn may_take(&self, groups: &[String]) -> Result<(), Blocked> {
        let mine = |l: &Line| groups.binary_search(&l.key).is_ok();
        if let Some(l) = self
            .lines
            .iter()
            .find(|l| mine(l) && l.max.is_some_and(|m| l.held >= m))
        {
            return Err(Blocked::GroupCap {
                group: l.name.clone(),
            });
        }
        if self.free == 0 {
            return Err(Blocked::Full);
        }
        if self.lines.iter().any(|l| mine(l) && l.held < l.min) {
            return Ok(());
        }
        let reserve: u64 = self
            .lines
            .iter()
            .filter(|l| !mine(l))
            .map(|l| u64::from(l.min.saturating_sub(l.held)))
            .sum();
        if (self.free as u64 - 1) >= reserve {
            Ok(())
        } else {
            Err(Blocked::Reserved)
        }
    }

    /// A member with `groups` took a free slot.
    pub fn take(&mut self, groups: &[String]) {
        self.free = self.free.saturating_sub(1);
        for l in &mut self.lines {
            if groups.binary_search(&l.key).is_ok() {
                l.held += 1;
            }
        }
    }

    /// A holder with `groups` gave a slot back.
    pub fn free_one(&mut self, groups: &[String]) {
        self.free += 1;
        for l in &mut self.lines {
            if groups.binary_search(&l.key).is_ok() {
                l.held = l.held.saturating_sub(1);
            }
        }
    }

    /// Whether freeing a slot of a holder with `groups` would leave a group of theirs
    /// that `recipient` (noted groups) is not in below its reserved minimum.
    pub fn would_unfill_for(&self, groups: &[String], recipient: &[String]) -> bool {
        self.lines.iter().any(|l| {
            groups.binary_search(&l.key).is_ok()
                && recipient.binary_search(&l.key).is_err()
                && l.held <= l.min
        })
    }

    /// The cap of group `name`, if it has one.
    pub fn cap(&self, name: &str) -> Option<u32> {
        self.lines
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.max)
    }
}

/// One reservation with its current holders, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservationUse {
    /// The group, as the settings name it.
    pub group: String,
    /// Reserved slots.
    pub min: u32,
    /// Cap, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Holders in the group now.
    pub holders: u32,
    /// Queued members in the group now.
    pub queued: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, min: u32, max: Option<u32>) -> Reservation {
        Reservation {
            group: group.into(),
            min,
            max,
        }
    }

    #[test]
    fn validation_names_each_problem() {
        let mut p = Vec::new();
        validate(
            &[
                res("a", 3, Some(2)),
                res("A", 0, None),
                res(" ", 0, None),
                res("b", 9, Some(11)),
            ],
            10,
            &mut p,
        );
        let text = p.join("; ");
        assert!(text.contains("min (3) greater than max (2)"), "{text}");
        assert!(text.contains("listed more than once"), "{text}");
        assert!(text.contains("group must be a name"), "{text}");
        assert!(
            text.contains("max (11) greater than shared_slots (10)"),
            "{text}"
        );
        assert!(
            text.contains("sum of min (12) exceeds shared_slots (10)"),
            "{text}"
        );
        let mut ok = Vec::new();
        validate(&[res("a", 2, Some(5)), res("b", 3, None)], 5, &mut ok);
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn caps_and_reserves_decide_who_may_take() {
        let list = [res("a", 2, None), res("b", 0, Some(1))];
        let book = GroupBook::default();
        let a = vec!["a".to_string()];
        let b = vec!["b".to_string()];
        let none: Vec<String> = Vec::new();
        let mut t = Tally::new(&list, &book, 3);
        assert_eq!(t.may_take(&none), Ok(()));
        t.take(&none);
        assert_eq!(t.may_take(&none), Err(Blocked::Reserved));
        assert_eq!(t.may_take(&b), Err(Blocked::Reserved));
        assert_eq!(t.may_take(&a), Ok(()));
        t.take(&a);
        t.take(&a);
        assert_eq!(t.may_take(&a), Err(Blocked::Full));
        t.free_one(&none);
        assert_eq!(t.may_take(&b), Ok(()));
        t.take(&b);
        t.free_one(&a);
        assert_eq!(t.may_take(&b), Err(Blocked::GroupCap { group: "b".into() }));
        assert!(t.would_unfill_for(&a, &none));
        assert!(!t.would_unfill_for(&a, &a));
    }

    #[test]
    fn the_list_reads_and_writes_as_a_json_array() {
        let none: Reservations = serde_json::from_str("[]").expect("parses");
        assert!(none.is_none() && none.is_empty());
        let two: Reservations =
            serde_json::from_str(r#"[{"group":"a","max":2},{"group":"b","min":1}]"#)
                .expect("parses");
        assert_eq!(two.len(), 2);
        assert_eq!(
            serde_json::to_string(&two).expect("writes"),
            r#"[{"group":"a","min":0,"max":2},{"group":"b","min":1}]"#
        );
        assert!(serde_json::from_str::<Reservations>(r#"[{"group":"a","cap":1}]"#).is_err());
        assert_eq!(std::mem::size_of::<Reservations>(), 8);
    }

    #[test]
    fn reserved_groups_are_matched_without_regard_to_case() {
        let list = [res("Contractors", 0, Some(1)), res("ops", 1, None)];
        let groups = vec!["contractors".to_string(), "OPS".into(), "other".into()];
        assert_eq!(
            reserved_groups_of(&list, &groups),
            vec!["contractors".to_string(), "ops".to_string()]
        );
    }
}
