//! The protocol between the actors: the messages they send one another with their
//! answers, and what every product actor shares with the others ([`Shared`]).
//!
//! Architecture Invariant: this module names no actor type. An actor's module depends on
//! the messages it handles and sends, here, and not on the module of the actor at the
//! other end, so the actors' modules form layers (`tools/module_cycles.py`): the product
//! actor starts its connector (and so names it), the connector reads the product's state
//! through [`Read`] messages; sessions, the registry, the directory and the scheduler
//! name the product actor, which knows them only by the messages here. What names an
//! actor type stays beside it: `ConnectorOf` (answered with a connector's address) in
//! `product`, the directory's messages (which carry product addresses) in `directory`.

use crate::agenda::Job;
use crate::clock::SharedClock;
use crate::durable::Pending;
use crate::error::ActorError;
use crate::request_index::RequestIndex;
use crate::transport::{ConnectorSlot, DeliveryError};
use actix::prelude::*;
use slotpool_events::{
    Command, ConnectorSettings, Holder, Notice, ProductEvent, ProductState, SlotView, Timestamp,
};
use slotpool_journal::Journal;
use slotpool_snapshots::SnapshotStore;
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;
use uuid::Uuid;

// To a product actor.

/// Messages an actor holds before senders wait: enough for every in-flight request of a
/// busy site, small enough to bound memory.
pub const MAILBOX_CAPACITY: usize = 4096;

/// Carry out a command; answered once its events are durable.
#[derive(Debug, Message)]
#[rtype(result = "Pending<Result<Executed, ActorError>>")]
pub struct Execute {
    /// What to do.
    pub command: Command,
    /// The request that asked for it; recorded with the events.
    pub cause: Uuid,
}

/// The answer to [`Execute`].
#[derive(Debug, Clone)]
pub struct Executed {
    /// The events recorded (empty when nothing changed).
    pub events: Vec<ProductEvent>,
    /// Whether this command created the product.
    pub created: bool,
    /// Where the command's user stands afterwards, for user commands.
    pub view: Option<SlotView>,
    /// For a page view through the gate: what the gate answers (the core's
    /// [`slotpool_events::ProductState::passage`]).
    pub passage: Option<slotpool_events::Passage>,
}

/// "It is now T": the sweep, sent by the scheduler. Answers when the product next needs one.
#[derive(Debug, Message)]
#[rtype(result = "Pending<Result<Option<Timestamp>, ActorError>>")]
pub struct Sweep {
    /// The scheduler tick that caused it; recorded with the events.
    pub cause: Uuid,
}

/// A user's client asks where they stand: a poll, which keeps a queue place alive.
#[derive(Debug, Message)]
#[rtype(result = "Pending<Result<SlotView, ActorError>>")]
pub struct Poll {
    pub user: String,
}

/// The holders, as an administrator should see them (counting coalesced activity).
#[derive(Debug, Message)]
#[rtype(result = "Pending<Result<Vec<Holder>, ActorError>>")]
pub struct ListHolders;

/// A read of the product's state, answered once everything it reflects is durable.
///
/// The closure runs inside the actor against the current state and time; reads never
/// change anything. Reads of a product that does not exist are refused with
/// `unknown_product`, except through [`Read::maybe`].
type ReadFn<R> = Box<dyn FnOnce(&ProductState, Timestamp) -> R + Send>;

#[derive(Message)]
#[rtype(result = "Pending<Result<R, ActorError>>")]
pub struct Read<R: 'static> {
    pub(crate) f: ReadFn<R>,
    pub(crate) require_product: bool,
}

impl<R: 'static> Read<R> {
    /// A read of an existing product.
    pub fn new(f: impl FnOnce(&ProductState, Timestamp) -> R + Send + 'static) -> Self {
        Read {
            f: Box::new(f),
            require_product: true,
        }
    }

    /// A read that also runs for a product not (yet) configured.
    pub fn maybe(f: impl FnOnce(&ProductState, Timestamp) -> R + Send + 'static) -> Self {
        Read {
            f: Box::new(f),
            require_product: false,
        }
    }
}

/// "Start your connector if your settings name one": sent once the binary has provided
/// the transport, to products recovered before it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SyncConnector;

// What product actors share, from the registry that starts them.

/// The scheduler's address, set once it has started (after recovery).
pub type SchedulerSlot = Arc<OnceLock<Recipient<Schedule>>>;

/// What every product actor shares with the others: the journal, the clock, where to ask
/// for sweeps, where to write snapshots and where to raise notices.
#[derive(Clone)]
pub struct Shared {
    pub journal: Journal,
    pub clock: SharedClock,
    pub scheduler: SchedulerSlot,
    pub snapshotting: Snapshotting,
    pub notices: broadcast::Sender<ProductNotice>,
    pub connectors: ConnectorSlot,
    /// How alert webhooks are reached, once the binary provided it.
    pub alert_senders: crate::webhook::AlertSlot,
    /// Raised by any product whose settings have reservations (rule 10): requests then
    /// carry the user's directory groups.
    pub reserving: Arc<std::sync::atomic::AtomicBool>,
    /// Which product holds each fixed-licence request: this actor notes its own.
    pub requests: RequestIndex,
}

/// Where product actors write snapshots, and every how many events.
#[derive(Clone)]
pub struct Snapshotting {
    /// The store, in the journal's database.
    pub store: SnapshotStore,
    /// Events between two snapshots of a stream.
    pub every: u64,
}

/// A notice and the product that raised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductNotice {
    pub product: String,
    pub notice: Notice,
}

// To a session, and from a session to its product.

/// What a user is told.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Notification {
    /// `granted`, `queue`, `warning`, `revoked`, `locked` or `none` (the initial state).
    pub event: &'static str,
    /// Where the user stands now.
    pub view: SlotView,
    /// For `revoked`: why (`inactivity`, `admin`, `released`, `expired`...).
    pub reason: Option<&'static str>,
}

/// Subscribe a session to a user's notifications; the product answers with the current
/// state at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub user: String,
    pub id: Uuid,
    pub session: Recipient<Notification>,
}

/// The session is gone.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub user: String,
    pub id: Uuid,
}

// To the scheduler.

/// Asks for `job` at `at` (kept only if earlier than what is already scheduled).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Schedule {
    pub job: Job,
    pub at: Timestamp,
}

// To a product's connector.

/// "The product's stream is durable up to `upto`": from the product actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Wake {
    /// The highest durable sequence of the stream.
    pub upto: u64,
}

/// Stop delivering (the settings changed or were removed).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopConnector;

/// What an administrator sees of a connector.
#[derive(Debug, Message)]
#[rtype(result = "ConnectorStatus")]
pub struct Status;

/// Compare the product's group with who should be in it, and repair the drift.
#[derive(Debug, Message)]
#[rtype(result = "Result<ResyncReport, DeliveryError>")]
pub struct Resync;

/// What a re-sync found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResyncReport {
    /// When it finished.
    pub at: Timestamp,
    /// Whether the product could list its group (a webhook cannot: then the re-sync only
    /// adds everyone who should be in it, and removes nobody).
    pub listed: bool,
    /// Who should be in the group.
    pub wanted: usize,
    /// Added because missing.
    pub added: Vec<String>,
    /// Removed because they should not be there.
    pub removed: Vec<String>,
}

/// A connector's state, as `GET /admin/v1/products/{p}/connector` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorStatus {
    /// The settings it delivers with.
    pub settings: ConnectorSettings,
    /// The last stream sequence every delivery of which the product confirmed.
    pub cursor: u64,
    /// The last stream sequence known durable.
    pub durable: u64,
    /// Membership changes recorded but not confirmed yet (as of the last read).
    pub backlog: u64,
    /// Users whose delivery is pending (the batch in hand; at most 100 named).
    pub pending: Vec<String>,
    /// Consecutive failed attempts (0 when the last one succeeded).
    pub attempts: u32,
    /// The last failure, and when.
    pub last_error: Option<(Timestamp, String)>,
    /// When the next attempt is due, while backing off.
    pub next_retry: Option<Timestamp>,
    /// Deliveries the product confirmed since start.
    pub delivered: u64,
    /// Failed attempts since start.
    pub failed: u64,
    /// The last re-sync, or why it failed.
    pub last_resync: Option<Result<ResyncReport, (Timestamp, String)>>,
    /// Space entitlements, for a connector with `spaces`.
    pub spaces: Option<SpaceStatus>,
}

/// What a connector with `spaces` did: the last fetch of the catalogue, and the space
/// permissions granted and removed since start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpaceStatus {
    /// The last fetch of the catalogue: when, and how many spaces; or why it failed.
    pub last_catalogue: Option<Result<(Timestamp, usize), (Timestamp, String)>>,
    /// Space requests whose permissions the connector granted since start.
    pub granted: u64,
    /// Revoked space requests whose permissions it removed since start.
    pub removed: u64,
    /// Space requests Confluence refused for good since start (now `failed`).
    pub refused: u64,
}

/// Fetch the product's spaces now and record the catalogue if it changed; answers how
/// many spaces there are.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, DeliveryError>")]
pub struct RefreshSpaces;
