//! The fair queue of one product: members waiting for a slot, first come first served.

use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A FIFO of waiting members.
///
/// Each arrival takes the next ticket; a `BTreeMap` keyed by ticket keeps arrival order
/// while letting any member leave from the middle in `O(log n)`.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    by_ticket: BTreeMap<u64, (Arc<str>, Timestamp)>,
    next_ticket: u64,
}

impl Queue {
    /// Appends a member; returns the ticket that marks their place.
    pub fn push(&mut self, user: Arc<str>, since: Timestamp) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.by_ticket.insert(ticket, (user, since));
        ticket
    }

    /// Removes the member holding `ticket`.
    pub fn remove(&mut self, ticket: u64) {
        self.by_ticket.remove(&ticket);
    }

    /// The member holding `ticket` now goes by `user` (a rename keeps the place).
    pub fn rename(&mut self, ticket: u64, user: Arc<str>) {
        if let Some(place) = self.by_ticket.get_mut(&ticket) {
            place.0 = user;
        }
    }

    /// The member at the head of the queue.
    pub fn head(&self) -> Option<&Arc<str>> {
        self.by_ticket.values().next().map(|(u, _)| u)
    }

    /// The first `n` members, in order.
    pub fn first(&self, n: usize) -> impl Iterator<Item = &Arc<str>> {
        self.by_ticket.values().take(n).map(|(u, _)| u)
    }

    /// The 1-based position of the member holding `ticket`.
    pub fn position(&self, ticket: u64) -> usize {
        self.by_ticket.range(..ticket).count() + 1
    }

    /// Members waiting.
    pub fn len(&self) -> usize {
        self.by_ticket.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.by_ticket.is_empty()
    }

    /// Waiting members in order, with the time each joined.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, Timestamp)> {
        self.by_ticket.values().map(|(u, t)| (u, *t))
    }
}
