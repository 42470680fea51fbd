//! [`Proposer`]: the leader's group commit across the cluster.
//!
//! The product and directory actors append as on a single node; their journal hands the
//! records here ([`slotpool_journal::Replicator`]). Everything proposed while the previous
//! Raft write is on its way gathers into the next [`Proposal`]: one entry, one append and
//! one `fdatasync` per member for many commands. Answers that need no write wait for a
//! confirmation of leadership (`ensure_linearizable`), gathered the same way. Writes and
//! confirmations are pipelined a few at a time and finish in order, so a ticket is
//! durable once every proposal up to it has been committed.
//!
//! When a write or a confirmation fails, this node has lost (or never had) the lead: the
//! proposer fails every waiting and later proposal, and tells the binary, which discards
//! the node's in-memory state (it may hold events that will never commit).

use crate::proposal::{Proposal, StreamWrite};
use crate::types::TypeConfig;
use openraft::Raft;
use slotpool_journal::{DurableWaiter, JournalError, Replicator};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Raft writes (or confirmations) in flight at once. One: everything that arrives while
/// it is on its way becomes the next entry, so entries are as large as the load makes
/// them. Measured with 64 clients on the 2-core machine (3 nodes and the load generator
/// sharing it): 1 in flight 16.0k requests/s, 2: 14.8k, 4: 12.1k, 8: 10.9k; each entry costs
/// every member a log append, an `fdatasync` and a round trip, so fewer, larger entries win.
const IN_FLIGHT: usize = 1;

/// How many stall periods a write may take while a majority still confirms the lead
/// ([`until_done_or_cut_off`]): 30 s with the 2 s stall of a 300 ms election timeout.
const SLOW_ROUNDS: u32 = 15;

/// Called once when the proposer finds that this node no longer leads.
pub type OnLost = Box<dyn Fn(String) + Send + Sync>;

/// The replicated seam's implementation on a leader.
#[derive(Clone)]
pub struct Proposer {
    inner: Arc<Inner>,
}

struct Inner {
    /// A std mutex: held only to push or take in-memory batches, never across an await.
    pending: Mutex<Pending>,
    waiters: Mutex<BTreeMap<u64, Vec<DurableWaiter>>>,
    next_ticket: AtomicU64,
    durable: AtomicU64,
    lost: AtomicBool,
    wake: Notify,
    on_lost: OnLost,
    /// How long a write or confirmation may take before the lead is given up.
    stall: std::time::Duration,
}

/// The records one Raft entry carries at most, unless a single write is larger (a
/// command's records stay in one entry). Why a cap: a follower refuses a frame over the
/// wire's 64 MiB, and everything proposed during a slow round would otherwise go into
/// the next entry whole; an entry too large to send could never commit.
const ENTRY_BYTES: usize = 8 << 20;

#[derive(Default)]
struct Pending {
    /// Each write with the ticket it was proposed under, in order.
    writes: Vec<(u64, StreamWrite)>,
    /// The highest ticket handed out for what is pending (writes or confirmations).
    last: u64,
}

impl Pending {
    /// The next entry's writes and the ticket it makes durable: every write in order up
    /// to `cap` bytes of records (at least one), and with the last of them every
    /// confirmation asked before it. What is left stays pending for the next entry. `None`
    /// when nothing is pending.
    fn take(&mut self, cap: usize) -> Option<(Vec<StreamWrite>, u64)> {
        if self.last == 0 {
            return None;
        }
        let mut bytes = 0;
        let fits = self
            .writes
            .iter()
            .position(|(_, w)| {
                bytes += w.records.iter().map(Vec::len).sum::<usize>();
                bytes > cap
            })
            .map_or(self.writes.len(), |over| over.max(1));
        if fits == self.writes.len() {
            let writes = std::mem::take(&mut self.writes);
            let last = std::mem::take(&mut self.last);
            return Some((writes.into_iter().map(|(_, w)| w).collect(), last));
        }
        let rest = self.writes.split_off(fits);
        let taken = std::mem::replace(&mut self.writes, rest);
        let last = taken.last().map_or(0, |(ticket, _)| *ticket);
        Some((taken.into_iter().map(|(_, w)| w).collect(), last))
    }
}

impl Proposer {
    /// A proposer writing through `raft`; `on_lost` hears when leadership is lost (a
    /// write or confirmation failed, or took longer than `stall`). Its loop runs on
    /// `runtime` (the cluster's).
    pub fn start(
        raft: Raft<TypeConfig>,
        runtime: &tokio::runtime::Handle,
        stall: std::time::Duration,
        on_lost: OnLost,
    ) -> Proposer {
        let proposer = Proposer {
            inner: Arc::new(Inner {
                pending: Mutex::new(Pending::default()),
                waiters: Mutex::new(BTreeMap::new()),
                next_ticket: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                lost: AtomicBool::new(false),
                wake: Notify::new(),
                on_lost,
                stall,
            }),
        };
        let worker = proposer.clone();
        runtime.spawn(async move { worker.run(raft).await });
        proposer
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn waiters(&self) -> MutexGuard<'_, BTreeMap<u64, Vec<DurableWaiter>>> {
        self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lost_error() -> JournalError {
        JournalError::NotLeader("the change was not acknowledged; retry".into())
    }

    async fn run(self, raft: Raft<TypeConfig>) {
        use futures::stream::{FuturesOrdered, StreamExt};
        let mut in_flight = FuturesOrdered::new();
        loop {
            let taken = if in_flight.len() < IN_FLIGHT && !self.inner.lost.load(Ordering::Acquire) {
                // `last` is 0 until something is pending (taking all of it resets it).
                self.pending().take(ENTRY_BYTES)
            } else {
                None
            };
            if let Some((writes, last)) = taken {
                let raft = raft.clone();
                let stall = self.inner.stall;
                in_flight.push_back(async move {
                    let attempt = async {
                        if writes.is_empty() {
                            raft.ensure_linearizable()
                                .await
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        } else {
                            match raft.client_write(Proposal { writes }).await {
                                Err(e) => Err(e.to_string()),
                                // This node's products hold a state the cluster does not:
                                // they must be restored from what it committed.
                                Ok(r) => match r.data.refused.into_iter().next() {
                                    Some(why) => Err(format!("the cluster refused a write: {why}")),
                                    None => Ok(()),
                                },
                            }
                        }
                    };
                    (last, until_done_or_cut_off(&raft, stall, attempt).await)
                });
                continue;
            }
            tokio::select! {
                done = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some((last, outcome)) = done {
                        match outcome {
                            Ok(()) => self.advance(last),
                            Err(e) => self.lose(e),
                        }
                    }
                }
                _ = self.inner.wake.notified() => {}
            }
        }
    }

    /// Every ticket up to `last` is committed.
    fn advance(&self, last: u64) {
        self.inner.durable.fetch_max(last, Ordering::AcqRel);
        let ready: Vec<DurableWaiter> = {
            let mut w = self.waiters();
            let later = w.split_off(&(last + 1));
            std::mem::replace(&mut *w, later)
                .into_values()
                .flatten()
                .collect()
        };
        for waiter in ready {
            waiter(Ok(()));
        }
    }

    fn lose(&self, why: String) {
        if self.inner.lost.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(error = %why, "a Raft write or leadership check failed: this node no longer leads");
        self.fail_waiting();
        (self.inner.on_lost)(why);
    }

    /// Tells every waiting answer that its change was not acknowledged.
    fn fail_waiting(&self) {
        let all: Vec<DurableWaiter> = std::mem::take(&mut *self.waiters())
            .into_values()
            .flatten()
            .collect();
        for waiter in all {
            waiter(Err(Self::lost_error()));
        }
    }

    fn ticket(&self, write: Option<StreamWrite>) -> Result<u64, JournalError> {
        if self.inner.lost.load(Ordering::Acquire) {
            return Err(Self::lost_error());
        }
        let ticket = {
            let mut p = self.pending();
            let ticket = self.inner.next_ticket.fetch_add(1, Ordering::AcqRel) + 1;
            if let Some(w) = write {
                p.writes.push((ticket, w));
            }
            p.last = ticket;
            ticket
        };
        self.inner.wake.notify_one();
        Ok(ticket)
    }
}

impl Replicator for Proposer {
    fn propose(&self, name: &str, first: u64, records: Vec<Vec<u8>>) -> Result<u64, JournalError> {
        self.ticket(Some(StreamWrite {
            stream: name.to_string(),
            first,
            records,
        }))
    }

    fn confirm_leadership(&self) -> u64 {
        // A lost proposer fails the waiter in `when_durable`; the ticket is only a number.
        self.ticket(None)
            .unwrap_or_else(|_| self.inner.next_ticket.load(Ordering::Acquire) + 1)
    }

    fn latest_ticket(&self) -> u64 {
        self.inner.next_ticket.load(Ordering::Acquire)
    }

    fn durable_ticket(&self) -> u64 {
        self.inner.durable.load(Ordering::Acquire)
    }

    fn when_durable(&self, ticket: u64, waiter: DurableWaiter) {
        if self.inner.lost.load(Ordering::Acquire) {
            return waiter(Err(Self::lost_error()));
        }
        if ticket <= self.inner.durable.load(Ordering::Acquire) {
            return waiter(Ok(()));
        }
        self.waiters().entry(ticket).or_default().push(waiter);
        // Committed (or lost) between the check and the insert: settle it now.
        if self.inner.lost.load(Ordering::Acquire) {
            self.fail_waiting();
        } else {
            let durable = self.inner.durable.load(Ordering::Acquire);
            if durable >= ticket {
                self.advance(durable);
            }
        }
    }
}

/// Whether a majority confirms, within `within`, that this node leads: heartbeat rounds
/// (`get_read_log_id`), never a linearizable read (`ensure_linearizable`), which also
/// waits for the state machine; a snapshot being built holds that up for seconds on a
/// large copy, and a slow apply is not a lost lead (docs/decisions.md).
///
/// One round is not the verdict: openraft gives each heartbeat of a round one heartbeat
/// interval (a fifth of an election timeout) and answers `QuorumNotEnough` when the
/// followers were slower than that, as they are behind a disk busy syncing a snapshot.
/// A round that falls short is asked again until `within` has passed; only a lead that
/// no round confirms in that time, or that Raft says is another's, is lost.
pub(crate) async fn confirm_lead(
    raft: &Raft<TypeConfig>,
    within: std::time::Duration,
) -> Result<(), String> {
    use openraft::error::{CheckIsLeaderError, RaftError};
    let deadline = tokio::time::Instant::now() + within;
    let pause = within / 20;
    let mut short = 0u32;
    loop {
        match tokio::time::timeout_at(deadline, raft.get_read_log_id()).await {
            Ok(Ok(_)) => {
                if short > 0 {
                    tracing::info!(
                        short,
                        "the lead was confirmed after rounds of heartbeats that fell short"
                    );
                }
                return Ok(());
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                short += 1;
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(format!(
                        "the lead is lost: {e} ({short} rounds of heartbeats within {within:?})"
                    ));
                }
                tokio::time::sleep(pause).await;
            }
            Ok(Err(e)) => return Err(format!("the lead is lost: {e}")),
            Err(_) => return Err(format!("no majority confirmed the lead within {within:?}")),
        }
    }
}

/// Waits for `attempt` (a write or a confirmation) for as long as a majority still
/// confirms this node's lead.
///
/// A leader cut off from its majority is not told so by Raft: its writes just never
/// commit. One whose attempt has not finished after `stall` asks a majority
/// ([`confirm_lead`]); if none confirms, it gives up the lead, so that its clients hear
/// 503 instead of waiting. If one does, the attempt is only slow (a write's answer waits
/// for the state machine, which a snapshot build holds up), and giving up the lead then
/// turned every snapshot into a failover. It waits
/// on for [`SLOW_ROUNDS`] stalls at most: a majority that answers heartbeats but never
/// commits (its disks failing) must not hold clients for ever either.
async fn until_done_or_cut_off(
    raft: &Raft<TypeConfig>,
    stall: std::time::Duration,
    attempt: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::pin!(attempt);
    for _ in 0..SLOW_ROUNDS {
        match tokio::time::timeout(stall, &mut attempt).await {
            Ok(outcome) => return outcome,
            Err(_) => match confirm_lead(raft, stall).await {
                Ok(()) => {
                    tracing::info!(?stall, "a Raft write is slow to be applied; a majority still confirms the lead: waiting on");
                }
                Err(why) => return Err(format!("not applied within {stall:?}: {why}")),
            },
        }
    }
    Err(format!(
        "not applied within {:?} although a majority confirms the lead",
        stall * SLOW_ROUNDS
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: usize) -> StreamWrite {
        StreamWrite {
            stream: "product/p".into(),
            first: 1,
            records: vec![vec![0; bytes]],
        }
    }

    /// An entry takes pending writes in order up to the cap (a larger single write goes
    /// alone), and makes durable the ticket of its last write; confirmations asked
    /// after it wait for the next entry, which takes the rest.
    #[test]
    fn an_entry_takes_writes_in_order_up_to_the_cap() {
        let mut p = Pending {
            writes: vec![
                (1, write(40)),
                (3, write(40)),
                (4, write(40)),
                (6, write(500)),
            ],
            last: 7,
        };
        let (first, last) = p.take(100).expect("pending");
        assert_eq!(
            (first.len(), last),
            (2, 3),
            "two writes fit, up to ticket 3"
        );
        let (second, last) = p.take(100).expect("pending");
        assert_eq!((second.len(), last), (1, 4));
        let (alone, last) = p.take(100).expect("pending");
        assert_eq!(
            (alone.len(), last),
            (1, 7),
            "a large write goes alone, with the rest"
        );
        assert!(p.take(100).is_none());
        // Only a confirmation pending: an entry of no writes for its ticket.
        p.last = 8;
        assert_eq!(p.take(100).map(|(w, l)| (w.len(), l)), Some((0, 8)));
    }
}
