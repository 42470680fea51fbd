//! The product actor: sole owner of one product's pool and queue.
//!
//! For each command it decides (pure core), appends the events to the journal, applies
//! them, and answers only once the journal says they are durable. Deciding and applying
//! happen at once, so the next command already sees the outcome of the previous one while
//! their flush is shared (group commit); answers wait for the flush. If a flush fails, the
//! journal refuses every later write and the service reports not ready: the in-memory
//! state may then be ahead of the disk, and only a restart (recovery from the journal)
//! brings them back together.

use crate::agenda::Job;
use crate::clock::SharedClock;
use crate::connector::{ConnectorActor, Owner};
use crate::durable::Pending;
use crate::error::ActorError;
// The product actor's messages moved to `messages`; kept reachable at their old paths.
pub use crate::messages::{
    Execute, Executed, ListHolders, Poll, Read, SchedulerSlot, Shared, Sweep, SyncConnector,
    MAILBOX_CAPACITY,
};
use crate::messages::{
    Notification, ProductNotice, Schedule, Snapshotting, StopConnector, Subscribe, Unsubscribe,
    Wake,
};
use crate::metrics::ProductMetrics;
use crate::request_index::RequestIndex;
use crate::transport::ConnectorSlot;
use actix::prelude::*;
use slotpool_events::{
    Command, ConnectorSettings, Holder, Presence, ProductEvent, ProductState, Refusal, SlotView,
    Standing, StreamId, Timestamp,
};
use slotpool_journal::{Journal, StreamTip};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;
use uuid::Uuid;

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
    /// What only the live service knows (open streams, polls, coalesced activity).
    presence: Presence,
    /// Where to ask for sweeps, once the scheduler runs.
    scheduler: SchedulerSlot,
    /// The sweep this actor last asked the scheduler for.
    asked: Option<Timestamp>,
    /// Where administrators hear of notices as they are raised.
    notices: broadcast::Sender<ProductNotice>,
    /// Where and how often to write snapshots; and the sequence of the latest.
    snapshotting: Snapshotting,
    snapshot_at: u64,
    /// Open notification streams, by user.
    sessions: HashMap<String, Vec<(Uuid, Recipient<Notification>)>>,
    /// This actor's own address, once started (its connector reads the state through it).
    me: Option<Addr<ProductActor>>,
    /// How connectors reach products, once the binary provided it.
    connectors: ConnectorSlot,
    /// The running connector and the settings it was started with.
    connector: Option<(ConnectorSettings, Addr<ConnectorActor>)>,
    /// How alert webhooks are reached, and the product's running alert webhook.
    alert_senders: crate::alert::AlertSlot,
    alerts: crate::alert::AlertOutbox,
    /// Shared by every product: raised when this one gets reservations.
    reserving: Arc<std::sync::atomic::AtomicBool>,
    /// Shared by every product: which product holds each fixed-licence request.
    requests: RequestIndex,
}

impl ProductActor {
    /// An actor for a product recovered (or new, with an empty state and tip).
    pub fn new(
        id: String,
        state: ProductState,
        tip: StreamTip,
        metrics: ProductMetrics,
        shared: Shared,
    ) -> Self {
        let Shared {
            journal,
            clock,
            scheduler,
            snapshotting,
            notices,
            connectors,
            alert_senders,
            reserving,
            requests,
        } = shared;
        for r in state.fixed_requests() {
            requests.note(&r.id, &id);
        }
        if state.settings().is_some_and(|s| !s.reservations.is_empty()) {
            reserving.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let stream = StreamId::Product(id.clone());
        // Clients of queued members could not poll while the service was down: their
        // queue timer starts again now, so a restart costs nobody their place.
        let now = clock.now();
        let presence = Presence {
            last_seen: state.queue().into_iter().map(|q| (q.user, now)).collect(),
            ..Presence::default()
        };
        let actor = ProductActor {
            id,
            stream,
            state,
            tip,
            last_ticket: 0,
            journal,
            clock,
            metrics,
            presence,
            scheduler,
            asked: None,
            snapshot_at: tip.next_sequence - 1,
            snapshotting,
            notices,
            sessions: HashMap::new(),
            me: None,
            connectors,
            connector: None,
            alert_senders,
            alerts: Default::default(),
            reserving,
            requests,
        };
        actor.update_gauges();
        if let Some(s) = actor.state.settings() {
            actor
                .metrics
                .bypass_rules(s.bypass.iter().map(|r| r.name.as_str()));
        }
        actor
    }

    /// Decides, appends and applies; the caller waits for durability before answering.
    fn execute(&mut self, msg: Execute, now: Timestamp) -> Result<Executed, ActorError> {
        if self.state.reads_activity(&msg.command) && !self.presence.recent_activity.is_empty() {
            let recent = std::mem::take(&mut self.presence.recent_activity);
            self.execute(
                Execute {
                    command: Command::RecordActivity { recent },
                    cause: msg.cause,
                },
                now,
            )?;
        }
        let existed = self.state.settings().is_some();
        let mode_before = self.state.settings().map(|s| s.mode);
        // The rule the core lets a page view through by (it records nothing for one):
        // counted here, recorded by the next sweep.
        let bypassed = match &msg.command {
            Command::PageView {
                user,
                gate: Some(gate),
                ..
            } => self
                .state
                .bypass_rule(user, gate)
                .map(|rule| (rule.name.clone(), user.clone())),
            _ => None,
        };
        let decided = self.state.decide(&msg.command, now);
        if let (Command::Request { .. }, Err(refusal)) = (&msg.command, &decided) {
            self.metrics.request(refusal.code());
        }
        let events = decided?;
        if !events.is_empty() {
            self.last_ticket =
                self.journal
                    .append(&self.stream, &mut self.tip, msg.cause, now, &events)?;
            self.metrics_before_apply(&events);
            for e in &events {
                self.state.apply(e);
                match e {
                    ProductEvent::Configured { settings } => {
                        if !settings.reservations.is_empty() {
                            self.reserving
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        self.metrics
                            .bypass_rules(settings.bypass.iter().map(|r| r.name.as_str()));
                    }
                    ProductEvent::FixedRequested { id, .. } => self.requests.note(id, &self.id),
                    _ => {}
                }
            }
            self.update_gauges();
            self.notify(&events, now);
            let mode_after = self.state.settings().map(|s| s.mode);
            if existed && mode_after != mode_before {
                self.notify_mode(now);
            }
            self.raise_notices(&events);
            self.ask_for_sweep(now);
            self.ask_for_sync(&events, now);
            self.ask_for_capacity(&events, now);
            self.maybe_snapshot(now);
            self.tell_connector(&events);
            self.tell_alerts(Some(&events));
        } else {
            match &msg.command {
                // Coalesced by the core: remembered here, recorded by the next sweep.
                Command::Activity { user } => {
                    self.presence.recent_activity.insert(user.clone(), now);
                }
                // A holder's page view is activity; a queued member's keeps the queue
                // place alive, as a poll does.
                Command::PageView { user, .. } => match self.state.user(user).map(|e| e.standing) {
                    Some(Standing::Holding { .. }) => {
                        self.presence.recent_activity.insert(user.clone(), now);
                    }
                    Some(Standing::Queued { .. }) => {
                        self.presence.last_seen.insert(user.clone(), now);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let view = match &msg.command {
            Command::Request { user, .. }
            | Command::Release { user }
            | Command::Activity { user }
            | Command::PageView { user, .. } => Some(self.state.slot_view(user, now)),
            _ => None,
        };
        match (&msg.command, &view) {
            (Command::Request { user, .. }, Some(view)) => {
                self.metrics.request(request_outcome(user, &events, view));
            }
            // A page view that granted a slot was a request; any other is not counted.
            (Command::PageView { user, .. }, _)
                if events.iter().any(
                    |e| matches!(e, ProductEvent::SlotGranted { user: u, .. } if u == user),
                ) =>
            {
                self.metrics.request("granted");
            }
            _ => {}
        }
        if let Some((rule, user)) = &bypassed {
            self.metrics.bypassed(rule);
            *self
                .presence
                .bypassed
                .entry(rule.clone())
                .or_default()
                .entry(user.clone())
                .or_insert(0) += 1;
        }
        let passage = match &msg.command {
            Command::PageView { user, .. } => Some(self.state.passage(
                user,
                bypassed.map(|(rule, _)| rule),
                now,
            )),
            _ => None,
        };
        Ok(Executed {
            events,
            created: !existed && self.state.settings().is_some(),
            view,
            passage,
        })
    }

    /// Tells open sessions what the events mean for their users: each named user gets the
    /// event that concerns them, and every other queued user whose position may have
    /// moved gets their new position.
    fn notify(&self, events: &[ProductEvent], now: Timestamp) {
        // Passthrough is a shadow run: nobody waits, so nobody hears of a would-be grant,
        // warning or revocation (the snippet would tell a user who keeps working that
        // they lost a slot they never needed).
        let shadow = self
            .state
            .settings()
            .is_some_and(|s| s.mode == slotpool_events::Mode::Passthrough);
        if self.sessions.is_empty() || shadow {
            return;
        }
        let mut told: HashMap<&str, (&'static str, Option<&'static str>)> = HashMap::new();
        let mut queue_moved = false;
        for e in events {
            let (user, what) = match e {
                ProductEvent::SlotGranted { user, .. } => {
                    queue_moved = true;
                    (user, ("granted", None))
                }
                ProductEvent::ActivityRecorded { user, .. } => (user, ("granted", None)),
                ProductEvent::WarningIssued { user, .. } => (user, ("warning", None)),
                ProductEvent::SlotRevoked { user, reason, .. } => {
                    (user, ("revoked", Some(reason.code())))
                }
                ProductEvent::SlotReleased { user, .. } => (user, ("revoked", Some("released"))),
                ProductEvent::QueueLeft { user, reason, .. } => {
                    queue_moved = true;
                    (user, ("revoked", Some(reason.code())))
                }
                ProductEvent::Queued { user, .. } | ProductEvent::Requeued { user, .. } => {
                    queue_moved = true;
                    (user, ("queue", None))
                }
                ProductEvent::UserDeactivated { user } | ProductEvent::MemberRemoved { user } => {
                    (user, ("revoked", Some("removed")))
                }
                _ => continue,
            };
            if self.sessions.contains_key(user.as_str()) {
                told.insert(user.as_str(), what);
            }
        }
        // Without a queue move only the named users hear anything: no walk over sessions.
        let users: Vec<&String> = if queue_moved {
            self.sessions.keys().collect()
        } else {
            self.sessions
                .keys()
                .filter(|u| told.contains_key(u.as_str()))
                .collect()
        };
        for user in users {
            let Some(sessions) = self.sessions.get(user) else {
                continue;
            };
            let view = self.state.slot_view(user, now);
            let (event, reason) = match told.get(user.as_str()) {
                Some(what) => *what,
                None if matches!(view, SlotView::Queued { .. }) => ("queue", None),
                None => continue,
            };
            let note = Notification {
                event,
                view,
                reason,
            };
            for (_, s) in sessions {
                s.do_send(note.clone());
            }
        }
    }

    /// Tells every open session that the product's mode changed (`mode`, the new mode in
    /// `reason`), with where its user stands now: waiting users learn of a maintenance
    /// (`queue_all`) or its end at once.
    fn notify_mode(&self, now: Timestamp) {
        let Some(mode) = self.state.settings().map(|s| s.mode.code()) else {
            return;
        };
        for (user, sessions) in &self.sessions {
            let note = Notification {
                event: "mode",
                view: self.state.slot_view(user, now),
                reason: Some(mode),
            };
            for (_, s) in sessions {
                s.do_send(note.clone());
            }
        }
    }

    /// Starts, restarts or stops the product's connector to match its settings.
    fn sync_connector(&mut self) {
        let wanted = self.state.settings().and_then(|s| s.connector.clone());
        if self.connector.as_ref().map(|(s, _)| s) == wanted.as_ref() {
            return;
        }
        if let Some((_, old)) = self.connector.take() {
            old.do_send(StopConnector);
        }
        let (Some(settings), Some(factory), Some(me)) =
            (wanted, self.connectors.get(), self.me.clone())
        else {
            return;
        };
        let transport = factory(&self.id, &settings);
        let actor = ConnectorActor::new(
            &self.id,
            settings.clone(),
            self.journal.clone(),
            self.tip,
            Owner::of(&me),
            transport,
            Arc::clone(&self.clock),
            self.metrics.clone(),
        );
        self.connector = Some((settings, actor.start()));
    }

    /// Keeps the alert webhook and the firing gauges in step with the state: after the
    /// append of `events`, or wholly (`None`: at start, once the sender is provided).
    fn tell_alerts(&mut self, events: Option<&[ProductEvent]>) {
        let cx = crate::alert::AlertContext {
            product: &self.id,
            state: &self.state,
            slot: &self.alert_senders,
            journal: &self.journal,
            tip: self.tip,
            ticket: self.last_ticket,
            clock: &self.clock,
            metrics: &self.metrics,
        };
        self.alerts.follow(&cx, events);
    }

    /// After an append: (re)configures the connector, and tells it how far the stream
    /// will be durable once this append is, if the events change the access group. The
    /// product never waits for its connector.
    fn tell_connector(&mut self, events: &[ProductEvent]) {
        if events
            .iter()
            .any(|e| matches!(e, ProductEvent::Configured { .. }))
        {
            self.sync_connector();
        }
        let Some((_, connector)) = &self.connector else {
            return;
        };
        if !events
            .iter()
            .any(slotpool_events::connector::wakes_connector)
        {
            return;
        }
        let connector = connector.clone();
        let upto = self.tip.next_sequence - 1;
        self.journal.when_durable(
            self.last_ticket,
            Box::new(move |r| {
                if r.is_ok() {
                    connector.do_send(Wake { upto });
                }
            }),
        );
    }

    /// Passes notices the events raised on to administrators listening now (the state
    /// keeps them for `GET /admin/v1/notices`).
    fn raise_notices(&self, events: &[ProductEvent]) {
        let raised = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ProductEvent::TierReconciled { .. }
                        | ProductEvent::AlertFired { .. }
                        | ProductEvent::AlertResolved { .. }
                )
            })
            .count();
        if raised == 0 {
            return;
        }
        let notices: Vec<_> = self.state.notices().collect();
        for notice in &notices[notices.len().saturating_sub(raised)..] {
            let notice = *notice;
            tracing::warn!(product = %self.id, ?notice, "notice for administrators");
            // Nobody listening is fine: the notice is kept in the state.
            let _ = self.notices.send(ProductNotice {
                product: self.id.clone(),
                notice: notice.clone(),
            });
        }
    }

    /// Writes a snapshot once `every` events have passed since the last one. A failure
    /// costs only a longer replay at the next start: it is logged, never fatal.
    fn maybe_snapshot(&mut self, now: Timestamp) {
        let covered = self.tip.next_sequence - 1;
        if covered < self.snapshot_at + self.snapshotting.every {
            return;
        }
        self.snapshot_at = covered;
        match self
            .snapshotting
            .store
            .save(&self.stream, self.tip, now, self.state.image())
        {
            Ok(()) => {
                self.metrics.snapshots_written.inc();
                self.metrics.snapshot_taken.set(now.as_millis() / 1000);
            }
            Err(e) => tracing::warn!(product = %self.id, error = %e, "snapshot not written"),
        }
    }

    /// After new settings with a sync schedule, asks the scheduler for the next sync (the
    /// agenda keeps the earliest asked for).
    fn ask_for_sync(&self, events: &[ProductEvent], now: Timestamp) {
        let interval = events.iter().rev().find_map(|e| match e {
            ProductEvent::Configured { settings } => Some(settings.sync_interval_s),
            _ => None,
        });
        if let (Some(interval @ 1..), Some(scheduler)) = (interval, self.scheduler.get()) {
            scheduler.do_send(Schedule {
                job: Job::Sync(self.id.clone()),
                at: now.plus_secs(interval),
            });
        }
    }

    /// After new settings with a schedule, asks the scheduler for the next capacity job
    /// (the agenda keeps the earliest asked for; an early one re-arms itself).
    fn ask_for_capacity(&self, events: &[ProductEvent], now: Timestamp) {
        if !events
            .iter()
            .any(|e| matches!(e, ProductEvent::Configured { .. }))
        {
            return;
        }
        if let (Some(at), Some(scheduler)) =
            (self.state.next_capacity_job(now), self.scheduler.get())
        {
            scheduler.do_send(Schedule {
                job: Job::Capacity(self.id.clone()),
                at,
            });
        }
    }

    /// Asks the scheduler for a sweep when this product now needs one sooner than asked.
    fn ask_for_sweep(&mut self, now: Timestamp) {
        let Some(next) = self.state.next_tick(now) else {
            return;
        };
        if self.asked.is_some_and(|a| a <= next && a > now) {
            return;
        }
        if let Some(scheduler) = self.scheduler.get() {
            scheduler.do_send(Schedule {
                job: Job::Sweep(self.id.clone()),
                at: next,
            });
            self.asked = Some(next);
        }
    }

    /// The sweep: a `Tick` with the current presence; returns when the next one is due.
    fn sweep(&mut self, cause: Uuid, now: Timestamp) -> Result<Option<Timestamp>, ActorError> {
        let presence = Presence {
            connected: self.presence.connected.clone(),
            last_seen: self.presence.last_seen.clone(),
            recent_activity: std::mem::take(&mut self.presence.recent_activity),
            bypassed: std::mem::take(&mut self.presence.bypassed),
            alert_onsets: self.state.alert_onsets(&self.presence.alert_onsets, now),
        };
        self.presence.alert_onsets = presence.alert_onsets.clone();
        self.execute(
            Execute {
                command: Command::Tick { presence },
                cause,
            },
            now,
        )?;
        let state = &self.state;
        self.presence.last_seen.retain(|user, _| {
            matches!(
                state.user(user).map(|e| e.standing),
                Some(Standing::Queued { .. })
            )
        });
        self.asked = self.state.next_tick(now);
        Ok(self.asked)
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
            self.metrics
                .shared_slots
                .set(i64::from(self.state.effective_shared_slots()));
        }
        self.metrics.slots_held.set(counts.holders as i64);
        self.metrics.queue_length.set(counts.queued as i64);
        self.metrics.fixed_users.set(counts.fixed as i64);
        self.metrics.members.set(counts.members as i64);
    }
}

/// The outcome a slot request is counted by (`slotpool_requests_total`): `granted` or
/// `queued` when the request gave the requester a slot or a queue place (whatever else
/// it decided first: a reclaimed holder's revocation under rule 4, noted groups), `fixed`
/// and `locked` by the answer, and `unchanged` for a holder or queued member asking again.
fn request_outcome(requester: &str, events: &[ProductEvent], view: &SlotView) -> &'static str {
    let mine = events.iter().find_map(|e| match e {
        ProductEvent::SlotGranted { user, .. } if user == requester => Some("granted"),
        ProductEvent::Queued { user, .. } if user == requester => Some("queued"),
        _ => None,
    });
    mine.unwrap_or(match view {
        SlotView::Fixed => "fixed",
        SlotView::Locked { .. } => "locked",
        SlotView::Granted { .. } | SlotView::Queued { .. } | SlotView::None => "unchanged",
    })
}

impl Actor for ProductActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.me = Some(ctx.address());
        self.sync_connector();
        self.tell_alerts(None);
        self.ask_for_sweep(self.clock.now());
        // Senders beyond this wait (asynchronously) for room: back-pressure, not refusal.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        tracing::debug!(product = %self.id, "product actor started");
    }
}

impl Handler<Execute> for ProductActor {
    type Result = Pending<Result<Executed, ActorError>>;

    fn handle(&mut self, msg: Execute, _ctx: &mut Self::Context) -> Self::Result {
        let now = self.clock.now();
        let outcome = self.execute(msg, now);
        Pending::new(outcome, self.last_ticket, &self.journal)
    }
}

impl Handler<Subscribe> for ProductActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Self::Context) {
        let now = self.clock.now();
        let view = self.state.slot_view(&msg.user, now);
        let event = match &view {
            SlotView::Granted { warned: true, .. } => "warning",
            SlotView::Granted { .. } | SlotView::Fixed => "granted",
            SlotView::Queued { .. } => "queue",
            SlotView::Locked { .. } => "locked",
            SlotView::None => "none",
        };
        msg.session.do_send(Notification {
            event,
            view,
            reason: None,
        });
        self.presence.connected.insert(msg.user.clone());
        self.sessions
            .entry(msg.user)
            .or_default()
            .push((msg.id, msg.session));
        self.metrics.sse_connections.inc();
    }
}

impl Handler<Unsubscribe> for ProductActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Self::Context) {
        if let Some(list) = self.sessions.get_mut(&msg.user) {
            let before = list.len();
            list.retain(|(id, _)| *id != msg.id);
            self.metrics
                .sse_connections
                .sub((before - list.len()) as i64);
            if list.is_empty() {
                self.sessions.remove(&msg.user);
                self.presence.connected.remove(&msg.user);
                // The queue timer starts when the last stream closes.
                if let Some(Standing::Queued { .. }) =
                    self.state.user(&msg.user).map(|e| e.standing)
                {
                    self.presence.last_seen.insert(msg.user, self.clock.now());
                }
            }
        }
    }
}

impl Handler<ListHolders> for ProductActor {
    type Result = Pending<Result<Vec<Holder>, ActorError>>;

    fn handle(&mut self, _msg: ListHolders, _ctx: &mut Self::Context) -> Self::Result {
        let holders = if self.state.settings().is_none() {
            Err(Refusal::UnknownProduct.into())
        } else {
            Ok(self.state.holders_seen(&self.presence.recent_activity))
        };
        Pending::new(holders, self.last_ticket, &self.journal)
    }
}

impl Handler<Sweep> for ProductActor {
    type Result = Pending<Result<Option<Timestamp>, ActorError>>;

    fn handle(&mut self, msg: Sweep, _ctx: &mut Self::Context) -> Self::Result {
        let next = self.sweep(msg.cause, self.clock.now());
        Pending::new(next, self.last_ticket, &self.journal)
    }
}

impl Handler<Poll> for ProductActor {
    type Result = Pending<Result<SlotView, ActorError>>;

    fn handle(&mut self, msg: Poll, _ctx: &mut Self::Context) -> Self::Result {
        let now = self.clock.now();
        let view = if self.state.settings().is_none() {
            Err(Refusal::UnknownProduct.into())
        } else {
            let view = self.state.slot_view(&msg.user, now);
            if let SlotView::Queued { .. } = view {
                self.presence.last_seen.insert(msg.user, now);
            }
            Ok(view)
        };
        Pending::new(view, self.last_ticket, &self.journal)
    }
}

impl<R: Send + 'static> Handler<Read<R>> for ProductActor {
    type Result = Pending<Result<R, ActorError>>;

    fn handle(&mut self, read: Read<R>, _ctx: &mut Self::Context) -> Self::Result {
        let answer = if read.require_product && self.state.settings().is_none() {
            Err(Refusal::UnknownProduct.into())
        } else {
            Ok((read.f)(&self.state, self.clock.now()))
        };
        Pending::new(answer, self.last_ticket, &self.journal)
    }
}

/// The product's running connector, if it has one (for its status and re-sync).
#[derive(Debug, Message)]
#[rtype(result = "Option<Addr<ConnectorActor>>")]
pub struct ConnectorOf;

impl Handler<ConnectorOf> for ProductActor {
    type Result = Option<Addr<ConnectorActor>>;

    fn handle(&mut self, _: ConnectorOf, _ctx: &mut Self::Context) -> Self::Result {
        self.connector.as_ref().map(|(_, a)| a.clone())
    }
}

impl Handler<SyncConnector> for ProductActor {
    type Result = ();

    fn handle(&mut self, _: SyncConnector, _ctx: &mut Self::Context) {
        self.sync_connector();
        self.tell_alerts(None);
    }
}

/// The product's running alert webhook, if it has one (for its status).
#[derive(Debug, Message)]
#[rtype(result = "Option<Addr<crate::alert::AlertActor>>")]
pub struct AlertsOf;

impl Handler<AlertsOf> for ProductActor {
    type Result = Option<Addr<crate::alert::AlertActor>>;

    fn handle(&mut self, _: AlertsOf, _ctx: &mut Self::Context) -> Self::Result {
        self.alerts.actor()
    }
}
