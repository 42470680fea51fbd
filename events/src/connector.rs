//! The product connector's pure part: which recorded events may change who belongs in
//! the product's access group, who should belong there, what a re-sync must change, and
//! the retry schedule. Its settings are plain data in [`crate::connector_settings`]
//! (re-exported here).
//!
//! The product's own journal stream is the connector's outbox: the delivering actor
//! (`slotpool-actors`' `ConnectorActor`) reads the stream after its cursor, asks
//! [`touched_users`] who may have changed, asks the product's state who should be in the
//! group ([`crate::ProductState::in_access_group`]), and delivers that. Delivering the
//! wanted membership (not each transition) makes every delivery idempotent and keeps one
//! user's changes in order.

pub use crate::connector_settings::{valid_credentials_name, ConnectorKind, ConnectorSettings};
use crate::event::ProductEvent;
use std::collections::{BTreeSet, HashSet};

/// The user whose access-group membership `event` may change, if any: a slot granted or
/// lost (released, revoked for any reason), a fixed licence given or taken, a user
/// (de)activated (a deactivated fixed user loses access; reactivated, regains it).
pub fn touched_user(event: &ProductEvent) -> Option<&str> {
    match event {
        ProductEvent::SlotGranted { user, .. }
        | ProductEvent::SlotReleased { user, .. }
        | ProductEvent::SlotRevoked { user, .. }
        | ProductEvent::FixedGiven { user }
        | ProductEvent::FixedTaken { user }
        | ProductEvent::UserDeactivated { user }
        | ProductEvent::UserReactivated { user } => Some(user),
        _ => None,
    }
}

/// Every user whose access-group membership `event` may change: [`touched_user`]'s, or
/// for a rename both names (the old one leaves the group, the new one joins it).
pub fn touched_names(event: &ProductEvent) -> [Option<&str>; 2] {
    match event {
        ProductEvent::MemberRenamed { from, to } => [Some(from), Some(to)],
        e => [touched_user(e), None],
    }
}

/// Whether `event` is work for the product's connector: a user whose access-group
/// membership may change ([`touched_names`]), or a space request approved or revoked
/// ([`crate::space_book::touched_request`]). The product wakes its connector only for these.
pub fn wakes_connector(event: &ProductEvent) -> bool {
    touched_names(event).iter().any(Option::is_some)
        || crate::space_book::touched_request(event).is_some()
}

/// Folds a run of events into the users whose membership they may change, each once, in
/// the order of their first change. One delivery per user then carries the membership the
/// state wants after all of them, so a user's add and remove can never cross.
pub fn touched_users<'a>(events: impl IntoIterator<Item = &'a ProductEvent>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in events {
        for u in touched_names(e).into_iter().flatten() {
            if seen.insert(u) {
                out.push(u.to_string());
            }
        }
    }
    out
}

/// What a re-sync changes in the product's group: who to add, who to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Should be in the group and are not.
    pub missing: Vec<String>,
    /// Are in the group and should not be.
    pub extra: Vec<String>,
}

impl Drift {
    /// The difference between the group as the product has it and as the pool wants it.
    pub fn between(actual: &BTreeSet<String>, wanted: &BTreeSet<String>) -> Drift {
        Drift {
            missing: wanted.difference(actual).cloned().collect(),
            extra: actual.difference(wanted).cloned().collect(),
        }
    }

    /// Whether the group already matches.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// How long to wait before attempt `failures + 1`, in milliseconds, after `failures`
/// consecutive failures: `base`, doubling each time, never more than `cap_s` seconds.
/// No randomness (the core has none): connectors of different products fail and recover
/// independently, so their retries need no jitter to spread out.
pub fn retry_delay_ms(failures: u32, base_ms: u32, cap_s: u32) -> u64 {
    let cap = u64::from(cap_s) * 1000;
    if failures == 0 {
        return 0;
    }
    let doublings = (failures - 1).min(40);
    u64::from(base_ms)
        .saturating_mul(1u64 << doublings)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RevokeReason;
    use crate::time::Timestamp;

    #[test]
    fn the_retry_delay_doubles_from_the_base_up_to_the_cap() {
        let d: Vec<u64> = (0..8).map(|f| retry_delay_ms(f, 500, 5)).collect();
        assert_eq!(d, vec![0, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(retry_delay_ms(u32::MAX, 500, 300), 300_000);
        assert_eq!(retry_delay_ms(64, 600_000, 86_400), 86_400_000);
    }

    #[test]
    fn touched_users_are_each_named_once_in_order_of_first_change() {
        let at = Timestamp::from_millis(0);
        let events = vec![
            ProductEvent::SlotGranted {
                user: "b".into(),
                at,
            },
            ProductEvent::ActivityRecorded {
                user: "c".into(),
                at,
            },
            ProductEvent::SlotRevoked {
                user: "a".into(),
                reason: RevokeReason::Admin,
                at,
            },
            ProductEvent::SlotReleased {
                user: "b".into(),
                at,
            },
            ProductEvent::Queued {
                user: "d".into(),
                at,
            },
            ProductEvent::FixedGiven { user: "e".into() },
            ProductEvent::MemberEnrolled { user: "f".into() },
            ProductEvent::UserReactivated { user: "g".into() },
            ProductEvent::MemberRenamed {
                from: "b".into(),
                to: "h".into(),
            },
        ];
        assert_eq!(touched_users(&events), vec!["b", "a", "e", "g", "h"]);
    }

    #[test]
    fn drift_names_missing_and_extra_members() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let d = Drift::between(&set(&["a", "b", "x"]), &set(&["a", "b", "c"]));
        assert_eq!(d.missing, vec!["c"]);
        assert_eq!(d.extra, vec!["x"]);
        assert!(Drift::between(&set(&["a"]), &set(&["a"])).is_empty());
    }
}
