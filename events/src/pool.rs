//! The holders of one product's shared slots, indexed by when they fall due.

use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The set of current slot holders, with two due-time indexes.
///
/// `by_last_activity` orders every holder by last activity (with whether they are warned,
/// so the sweep need not look each due holder up in the users map): longest-inactive first (shrink
/// and reclaim take from the front) and, since a holder's warning falls due a fixed time
/// after their last activity, also in order of warning due time. `warned` orders warned
/// holders by the instant they are to be revoked. The sweep walks both from the front and
/// stops at the first holder not yet due, so its cost follows the holders that are due,
/// not the size of the pool (the shape of mini-redis' expiry set).
#[derive(Debug, Clone, Default)]
pub struct Pool {
    by_last_activity: BTreeMap<(Timestamp, Arc<str>), bool>,
    warned: BTreeSet<(Timestamp, Arc<str>)>,
}

impl Pool {
    /// Adds a holder whose last activity is `at`.
    pub fn insert(&mut self, user: Arc<str>, at: Timestamp) {
        self.by_last_activity.insert((at, user), false);
    }

    /// Removes a holder whose last activity was `at`, and their warning if any.
    pub fn remove(&mut self, user: &Arc<str>, at: Timestamp, revoke_at: Option<Timestamp>) {
        let mut key = (at, Arc::clone(user));
        self.by_last_activity.remove(&key);
        if let Some(r) = revoke_at {
            key.0 = r;
            self.warned.remove(&key);
        }
    }

    /// Moves a holder's last activity from `from` to `to`, dropping their warning if any.
    pub fn touch(
        &mut self,
        user: &Arc<str>,
        from: Timestamp,
        to: Timestamp,
        revoke_at: Option<Timestamp>,
    ) {
        // One lookup key for both trees, and the stored key moved back in with its new
        // time: one reference count taken and given back per touch, not four.
        let mut key = (from, Arc::clone(user));
        if let Some(r) = revoke_at {
            key.0 = r;
            self.warned.remove(&key);
            key.0 = from;
        }
        if let Some(((_, stored), _)) = self.by_last_activity.remove_entry(&key) {
            self.by_last_activity.insert((to, stored), false);
        }
    }

    /// Marks a holder warned, to be revoked at `revoke_at`.
    pub fn warn(&mut self, user: &Arc<str>, last_activity: Timestamp, revoke_at: Timestamp) {
        self.warned.insert((revoke_at, Arc::clone(user)));
        if let Some(w) = self
            .by_last_activity
            .get_mut(&(last_activity, Arc::clone(user)))
        {
            *w = true;
        }
    }

    /// Holders, longest-inactive first.
    pub fn longest_inactive(&self) -> impl Iterator<Item = (&Arc<str>, Timestamp)> {
        self.by_last_activity.keys().map(|(t, u)| (u, *t))
    }

    /// Holders, longest-inactive first, with whether they are warned.
    pub fn longest_inactive_warned(&self) -> impl Iterator<Item = (&Arc<str>, Timestamp, bool)> {
        self.by_last_activity.iter().map(|((t, u), w)| (u, *t, *w))
    }

    /// Warned holders, soonest revocation first.
    pub fn warned(&self) -> impl Iterator<Item = (&Arc<str>, Timestamp)> {
        self.warned.iter().map(|(t, u)| (u, *t))
    }

    /// Number of warned holders.
    pub fn warned_len(&self) -> usize {
        self.warned.len()
    }

    /// Number of holders.
    pub fn len(&self) -> usize {
        self.by_last_activity.len()
    }

    /// Whether nobody holds a slot.
    pub fn is_empty(&self) -> bool {
        self.by_last_activity.is_empty()
    }
}
