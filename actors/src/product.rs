//! The product actor: sole owner of one product's pool and queue.
//!
//! For each command it decides (pure core), appends the events to the journal, applies
//! them, and answers only once the journal says they are durable. Deciding and applying
//! happen at once, so the next command already sees the outcome of the previous one while
//! their flush is shared (group commit); answers wait for the flush. If a flush fails, the
//! journal refuses every later write and the service reports not ready: the in-memory
//! state may then be ahead of the disk, and only a restart (recovery from the journal)
//! brings them back together.

use crate::clock::SharedClock;
use crate::durable::durable;
use crate::error::ActorError;
use crate::metrics::ProductMetrics;
use actix::prelude::*;
use slotpool_events::{
    Command, Journal, ProductEvent, ProductState, Refusal, SlotView, Standing, StreamId, StreamTip,
    Timestamp,
};
use uuid::Uuid;

/// Messages an actor holds before senders wait: enough for every in-flight request of a
/// busy site, small enough to bound memory.
pub const MAILBOX_CAPACITY: usize = 4096;

/// Carry out a command; answered once its events are durable.
#[derive(Debug, Message)]
#[rtype(result = "Result<Executed, ActorError>")]
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
}

/// A read of the product's state, answered once everything it reflects is durable.
///
/// The closure runs inside the actor against the current state and time; reads never
/// change anything. Reads of a product that does not exist are refused with
/// `unknown_product`, except through [`Read::maybe`].
type ReadFn<R> = Box<dyn FnOnce(&ProductState, Timestamp) -> R + Send>;

#[derive(Message)]
#[rtype(result = "Result<R, ActorError>")]
pub struct Read<R: 'static> {
    f: ReadFn<R>,
    require_product: bool,
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

/// Owns one product's state and is the only writer of its stream.
pub struct ProductActor {
    id: String,
    stream: StreamId,
    state: ProductState,
    tip: StreamTip,
    /// Ticket of this actor's latest append: answers wait until it is durable.
    last_ticket: u64,
    journal: Journal,
    clock: SharedClock,
    metrics: ProductMetrics,
}

impl ProductActor {
    /// An actor for a product recovered (or new, with an empty state and tip).
    pub fn new(
        id: String,
        state: ProductState,
        tip: StreamTip,
        journal: Journal,
        clock: SharedClock,
        metrics: ProductMetrics,
    ) -> Self {
        let stream = StreamId::Product(id.clone());
        let actor = ProductActor {
            id,
            stream,
            state,
            tip,
            last_ticket: 0,
            journal,
            clock,
            metrics,
        };
        actor.update_gauges();
        actor
    }

    /// Decides, appends and applies; the caller waits for durability before answering.
    fn execute(&mut self, msg: Execute, now: Timestamp) -> Result<Executed, ActorError> {
        let existed = self.state.settings().is_some();
        let decided = self.state.decide(&msg.command, now);
        if let Command::Request { .. } = &msg.command {
            self.count_request(&decided);
        }
        let events = decided?;
        if !events.is_empty() {
            self.last_ticket =
                self.journal
                    .append(&self.stream, &mut self.tip, msg.cause, now, &events)?;
            self.metrics_before_apply(&events);
            for e in &events {
                self.state.apply(e);
            }
            self.update_gauges();
        }
        let view = match &msg.command {
            Command::Request { user } | Command::Release { user } | Command::Activity { user } => {
                Some(self.state.slot_view(user, now))
            }
            _ => None,
        };
        Ok(Executed {
            events,
            created: !existed && self.state.settings().is_some(),
            view,
        })
    }

    fn count_request(&self, decided: &Result<Vec<ProductEvent>, Refusal>) {
        let outcome = match decided {
            Err(r) => r.code(),
            Ok(events) => match events.first() {
                Some(ProductEvent::SlotGranted { .. }) => "granted",
                Some(ProductEvent::Queued { .. }) => "queued",
                _ => "unchanged",
            },
        };
        self.metrics.request(outcome);
    }

    /// Counts revocations and queue waits, which need the state before the events.
    fn metrics_before_apply(&self, events: &[ProductEvent]) {
        self.metrics.journal_events.inc_by(events.len() as u64);
        for e in events {
            match e {
                ProductEvent::SlotRevoked { reason, .. } => self.metrics.revocation(reason.code()),
                ProductEvent::SlotGranted { user, at } => {
                    if let Some(Standing::Queued { since, .. }) =
                        self.state.user(user).map(|u| u.standing)
                    {
                        let waited = (at.as_millis() - since.as_millis()).max(0) as f64 / 1000.0;
                        self.metrics.queue_wait.observe(waited);
                    }
                }
                _ => {}
            }
        }
    }

    fn update_gauges(&self) {
        let counts = self.state.counts();
        if let Some(s) = self.state.settings() {
            self.metrics.licence_tier.set(i64::from(s.licence_tier));
            self.metrics.shared_slots.set(i64::from(s.shared_slots));
        }
        self.metrics.slots_held.set(counts.holders as i64);
        self.metrics.queue_length.set(counts.queued as i64);
        self.metrics.fixed_users.set(counts.fixed as i64);
        self.metrics.members.set(counts.members as i64);
    }
}

impl Actor for ProductActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Senders beyond this wait (asynchronously) for room: back-pressure, not refusal.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        tracing::debug!(product = %self.id, "product actor started");
    }
}

impl Handler<Execute> for ProductActor {
    type Result = ResponseFuture<Result<Executed, ActorError>>;

    fn handle(&mut self, msg: Execute, _ctx: &mut Self::Context) -> Self::Result {
        let now = self.clock.now();
        let outcome = self.execute(msg, now);
        let barrier = durable(&self.journal, self.last_ticket);
        Box::pin(async move {
            barrier.await?;
            outcome
        })
    }
}

impl<R: Send + 'static> Handler<Read<R>> for ProductActor {
    type Result = ResponseFuture<Result<R, ActorError>>;

    fn handle(&mut self, read: Read<R>, _ctx: &mut Self::Context) -> Self::Result {
        let answer = if read.require_product && self.state.settings().is_none() {
            Err(Refusal::UnknownProduct.into())
        } else {
            Ok((read.f)(&self.state, self.clock.now()))
        };
        let barrier = durable(&self.journal, self.last_ticket);
        Box::pin(async move {
            barrier.await?;
            answer
        })
    }
}
