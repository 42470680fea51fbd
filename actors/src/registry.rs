//! The registry: routes each product id to its actor, starting actors on demand.

use crate::clock::SharedClock;
use crate::request_index::RequestIndex;
// Moved to `messages`; kept reachable at their old paths.
pub use crate::messages::{ProductNotice, Snapshotting};
use crate::messages::{Schedule, SchedulerSlot, Shared, SyncConnector, MAILBOX_CAPACITY};
use crate::metrics::Metrics;
use crate::product::ProductActor;
use crate::transport::{ConnectorSlot, TransportFactory};
use actix::dev::channel::{channel, AddressReceiver};
use actix::prelude::*;
use slotpool_events::ProductState;
use slotpool_journal::{Journal, StreamTip};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// Where the product actors run.
///
/// A request that reaches an HTTP worker is decided by its product's actor; when that
/// actor runs on another thread, every request crosses to it and its answer crosses back:
/// two wake-ups of a parked thread, each a syscall and often a context switch. Measured
/// under `make load` on 2 cores (one HTTP worker), running the actors on the worker's own
/// thread instead took the server's CPU per durable request from ~25 to ~19 µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On this many threads of their own (at least one), started with the registry.
    Own(usize),
    /// On the threads of this many HTTP workers, each of which calls
    /// [`Products::run_here`] as it starts. Until all of them have, products are created
    /// but wait: their addresses take messages, which they handle once placed.
    HttpWorkers(usize),
}

/// Every product actor, by product id. Cheap to clone.
///
/// A std `RwLock`, not an async one: it guards a map lookup or insert, is never held
/// across an `.await`, and lookups (every request) vastly outnumber inserts.
#[derive(Clone)]
pub struct Products {
    inner: Arc<Inner>,
}

struct Inner {
    actors: RwLock<HashMap<String, Addr<ProductActor>>>,
    journal: Journal,
    clock: SharedClock,
    metrics: Metrics,
    /// Where and how often products write snapshots.
    snapshotting: Snapshotting,
    /// Notices for administrators, as products raise them.
    notices: broadcast::Sender<ProductNotice>,
    /// The scheduler, once started; every product actor asks it for sweeps.
    scheduler: SchedulerSlot,
    /// How connectors reach products, once the binary provided it.
    connectors: ConnectorSlot,
    /// How alert webhooks are reached, once the binary provided it.
    alert_senders: crate::alert::AlertSlot,
    /// Threads the product actors run on, and the products waiting for them. A std
    /// `Mutex`: taken only when a product or an HTTP worker starts, never across an
    /// `.await`.
    threads: Mutex<Threads>,
    /// Set once any product holds settings with reservations (rule 10): from then on
    /// slot requests carry the user's directory groups. See [`Products::reservations_in_use`].
    reserving: Arc<AtomicBool>,
    /// Which product holds each fixed-licence request.
    requests: RequestIndex,
}

impl Products {
    /// An empty registry. Must be called inside a running actix system.
    pub fn new(
        journal: Journal,
        clock: SharedClock,
        metrics: Metrics,
        placement: Placement,
        snapshotting: Snapshotting,
    ) -> Self {
        let (arbiters, expected) = match placement {
            Placement::Own(n) => {
                let n = n.max(1);
                ((0..n).map(|_| Arbiter::new().handle()).collect(), n)
            }
            Placement::HttpWorkers(n) => (Vec::new(), n.max(1)),
        };
        let threads = Threads {
            arbiters,
            expected,
            next: 0,
            waiting: Vec::new(),
        };
        Products {
            inner: Arc::new(Inner {
                actors: RwLock::new(HashMap::new()),
                journal,
                clock,
                metrics,
                scheduler: SchedulerSlot::default(),
                connectors: ConnectorSlot::default(),
                alert_senders: Default::default(),
                snapshotting,
                notices: broadcast::channel(256).0,
                threads: Mutex::new(threads),
                reserving: Arc::new(AtomicBool::new(false)),
                requests: RequestIndex::default(),
            }),
        }
    }

    /// The actor of an existing product (one that has a stream or was started).
    pub fn get(&self, id: &str) -> Option<Addr<ProductActor>> {
        read(&self.inner.actors).get(id).cloned()
    }

    /// The actor of `id`, started with an empty state if there is none yet.
    /// The caller has validated `id` as a product id.
    pub fn get_or_start(&self, id: &str) -> Addr<ProductActor> {
        if let Some(addr) = self.get(id) {
            return addr;
        }
        let mut actors = write(&self.inner.actors);
        if let Some(addr) = actors.get(id) {
            return addr.clone();
        }
        let addr = self.spawn(id, ProductState::new(), StreamTip::default());
        actors.insert(id.to_string(), addr.clone());
        addr
    }

    /// Starts the actor of a recovered product.
    pub fn start_recovered(&self, id: &str, state: ProductState, tip: StreamTip) {
        let addr = self.spawn(id, state, tip);
        write(&self.inner.actors).insert(id.to_string(), addr);
    }

    /// Every product id and actor, sorted by id.
    pub fn all(&self) -> Vec<(String, Addr<ProductActor>)> {
        let mut v: Vec<_> = read(&self.inner.actors)
            .iter()
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Connects the scheduler: products started from now on ask it for sweeps (the
    /// scheduler itself schedules a first sweep of every product already running).
    pub fn set_scheduler(&self, scheduler: Recipient<Schedule>) {
        let _ = self.inner.scheduler.set(scheduler);
    }

    /// Provides how connectors reach products, and starts the connector of every product
    /// running now that has one (products started later start theirs themselves).
    pub fn set_connector_transport(&self, factory: TransportFactory) {
        let _ = self.inner.connectors.set(factory);
        for (_, addr) in self.all() {
            addr.do_send(SyncConnector);
        }
    }

    /// Provides how alert webhooks are reached, and starts the webhook of every product
    /// running now that has one (products started later start theirs themselves).
    pub fn set_alert_sender(&self, factory: crate::alert::AlertSenderFactory) {
        let _ = self.inner.alert_senders.set(factory);
        for (_, addr) in self.all() {
            addr.do_send(SyncConnector);
        }
    }

    /// A live feed of the notices products raise from now on.
    pub fn subscribe_notices(&self) -> broadcast::Receiver<ProductNotice> {
        self.inner.notices.subscribe()
    }

    /// Whether any product of this process has had reservations (rule 10) since it
    /// started: only then do slot requests ask the directory for the user's groups, so a
    /// service without reservations pays one atomic load per request and nothing more.
    pub fn reservations_in_use(&self) -> bool {
        self.inner.reserving.load(Ordering::Relaxed)
    }

    /// The product holding fixed-licence request `id`, and its actor.
    pub fn holding_request(&self, id: &str) -> Option<(String, Addr<ProductActor>)> {
        let product = self.inner.requests.product_of(id)?;
        let addr = self.get(&product)?;
        Some((product, addr))
    }

    /// The journal the products write to.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Makes this thread, an HTTP worker's as it starts, one of those the product actors
    /// run on ([`Placement::HttpWorkers`]); once every worker has, the waiting products
    /// start, shared round-robin. Does nothing with [`Placement::Own`], or once every
    /// worker was counted.
    pub fn run_here(&self) {
        let mut threads = lock(&self.inner.threads);
        if threads.all_there() {
            return;
        }
        threads.arbiters.push(Arbiter::current());
        if threads.all_there() {
            for (rx, actor) in std::mem::take(&mut threads.waiting) {
                threads.start(rx, actor);
            }
        }
    }

    fn spawn(&self, id: &str, state: ProductState, tip: StreamTip) -> Addr<ProductActor> {
        let shared = Shared {
            journal: self.inner.journal.clone(),
            clock: Arc::clone(&self.inner.clock),
            scheduler: Arc::clone(&self.inner.scheduler),
            snapshotting: self.inner.snapshotting.clone(),
            notices: self.inner.notices.clone(),
            connectors: Arc::clone(&self.inner.connectors),
            alert_senders: Arc::clone(&self.inner.alert_senders),
            reserving: Arc::clone(&self.inner.reserving),
            requests: self.inner.requests.clone(),
        };
        let actor = ProductActor::new(
            id.to_string(),
            state,
            tip,
            self.inner.metrics.product(id),
            shared,
        );
        let (tx, rx) = channel(MAILBOX_CAPACITY);
        let mut threads = lock(&self.inner.threads);
        if threads.all_there() {
            threads.start(rx, actor);
        } else {
            threads.waiting.push((rx, actor));
        }
        Addr::new(tx)
    }
}

/// The threads product actors run on, and the products created before there were any.
struct Threads {
    arbiters: Vec<ArbiterHandle>,
    /// How many threads there will be: products wait until there are as many.
    expected: usize,
    /// The thread the next product starts on.
    next: usize,
    waiting: Vec<(AddressReceiver<ProductActor>, ProductActor)>,
}

impl Threads {
    /// Whether every thread the products are to run on is known: until then they wait.
    fn all_there(&self) -> bool {
        self.arbiters.len() >= self.expected
    }

    /// Starts `actor` on the next thread, taking the messages sent to its address so far.
    fn start(&mut self, rx: AddressReceiver<ProductActor>, actor: ProductActor) {
        let arbiter = &self.arbiters[self.next % self.arbiters.len()];
        self.next = self.next.wrapping_add(1);
        // What `Actor::start_in_arbiter` does, with a mailbox made before the thread was
        // known. A stopped thread (the server shutting down) drops the actor.
        arbiter.spawn_fn(move || {
            actix::spawn(Context::with_receiver(rx).into_future(actor));
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
