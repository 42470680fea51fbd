//! The holders of one product's shared slots, ordered by inactivity.

use crate::time::Timestamp;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The set of current slot holders, indexed by last activity.
///
/// The index answers "who has been inactive longest" (shrink, reclaim) and "who is due"
/// (the sweep) by walking from the front, so the cost follows the holders concerned, not
/// the size of the pool.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    by_last_activity: BTreeSet<(Timestamp, Arc<str>)>,
}

impl Pool {
    /// Adds a holder whose last activity is `at`.
    pub fn insert(&mut self, user: Arc<str>, at: Timestamp) {
        self.by_last_activity.insert((at, user));
    }

    /// Removes a holder whose last activity was `at`.
    pub fn remove(&mut self, user: &Arc<str>, at: Timestamp) {
        self.by_last_activity.remove(&(at, Arc::clone(user)));
    }

    /// Moves a holder's last activity from `from` to `to`.
    pub fn touch(&mut self, user: &Arc<str>, from: Timestamp, to: Timestamp) {
        if self.by_last_activity.remove(&(from, Arc::clone(user))) {
            self.by_last_activity.insert((to, Arc::clone(user)));
        }
    }

    /// Holders, longest-inactive first.
    pub fn longest_inactive(&self) -> impl Iterator<Item = (&Arc<str>, Timestamp)> {
        self.by_last_activity.iter().map(|(t, u)| (u, *t))
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
