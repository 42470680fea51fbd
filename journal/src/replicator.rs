//! [`Replicator`]: what a cluster's leader makes durable instead of the write-ahead log
//! (the seam is [`crate::replicated`]).

use crate::commit::DurableWaiter;
use crate::error::JournalError;

/// Takes appends for replication and says when they are committed.
///
/// Tickets are the replicator's own, in the order of proposals; a ticket is durable once
/// the cluster has committed every proposal up to it (on a majority's disks).
pub trait Replicator: Send + Sync {
    /// Hands over the encoded `records` of stream `name`, the first at sequence `first`;
    /// returns the ticket of this proposal. Fails once this node can no longer lead.
    fn propose(&self, name: &str, first: u64, records: Vec<Vec<u8>>) -> Result<u64, JournalError>;

    /// A ticket that becomes durable once this node has confirmed, after the call, that
    /// it still leads: an answer that waits for it is a linearizable read.
    fn confirm_leadership(&self) -> u64;

    /// The latest ticket handed out.
    fn latest_ticket(&self) -> u64;

    /// The highest ticket known committed.
    fn durable_ticket(&self) -> u64;

    /// Calls `waiter` once `ticket` (and all before it) is committed, or with the error
    /// that prevented it.
    fn when_durable(&self, ticket: u64, waiter: DurableWaiter);
}
