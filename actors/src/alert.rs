//! The alert webhook actor: delivers one product's fired and resolved alerts.
//!
//! Like the connector ([`crate::connector`]), the product's journal stream is the
//! outbox: the sweep journals [`ProductEvent::AlertFired`] and
//! [`ProductEvent::AlertResolved`], nothing else is written. The product actor tells the
//! alert actor how far the stream is durable ([`Wake`]); it reads the stream after its
//! cursor (a record under `alerts:<product>` in the journal's `connector_cursors` tree)
//! up to and including the next alert event, delivers that one through the
//! [`AlertSender`] the binary provides (a signed JSON POST), and only then moves and
//! saves the cursor. So a crash re-delivers at most the one in hand (at least once), a
//! restart re-delivers nothing acknowledged, and every delivery carries an id derived
//! from its journal position (`<product>:<sequence>`), the same on every attempt, so a
//! receiver can drop a repeat.
//!
//! A failure retries the same delivery after an exponential backoff with a cap
//! ([`slotpool_events::connector::retry_delay_ms`], [`RETRY_BASE_MS`], [`RETRY_CAP_S`]);
//! later alerts wait behind it, in order. The product actor never waits for this actor:
//! an unreachable webhook never holds up the pool, it only grows the backlog
//! (`slotpool_alert_webhook_failures_total`, and [`AlertDeliveryStatus`]).
//!
//! Architecture Invariant: this module knows no HTTP and no signing; the binary does.

use crate::clock::SharedClock;
use crate::messages::Wake;
use crate::metrics::ProductMetrics;
use crate::transport::DeliveryError;
pub use crate::webhook::{AlertDelivery, AlertSender, AlertSenderFactory, AlertSlot, AlertState};
use actix::prelude::*;
use slotpool_events::connector::retry_delay_ms;
use slotpool_events::{AlertWebhook, ProductEvent, ProductState, StreamId, Timestamp};
use slotpool_journal::{Journal, NamedStore, StreamTip};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// First retry delay after a failed delivery, in milliseconds; doubles with each failure.
pub const RETRY_BASE_MS: u32 = 500;
/// Longest retry delay, in seconds.
pub const RETRY_CAP_S: u32 = 300;
/// Seconds a receiver may take to answer before the delivery counts as failed.
pub const TIMEOUT_S: u32 = 10;
/// Most journal records one scan reads before it saves its place.
const SCAN_RECORDS: usize = 2000;

/// What an alert actor reports (`GET /admin/v1/products/{p}/alerts`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertDeliveryStatus {
    /// The last journal sequence delivered (or passed over).
    pub cursor: u64,
    /// How far the product's stream is durable.
    pub durable: u64,
    /// The delivery in hand (being attempted, or waiting for its retry).
    pub pending: Option<String>,
    /// Failed attempts of the delivery in hand.
    pub attempts: u32,
    /// The latest failure, and when.
    pub last_error: Option<(Timestamp, String)>,
    /// When the delivery in hand is tried again.
    pub next_retry: Option<Timestamp>,
    /// The latest delivery the receiver acknowledged, and when.
    pub last_delivered: Option<(Timestamp, String)>,
    /// Deliveries acknowledged since the actor started.
    pub delivered: u64,
    /// Failed attempts since the actor started.
    pub failed: u64,
}

/// Ask an alert actor for its [`AlertDeliveryStatus`].
#[derive(Debug, Message)]
#[rtype(result = "AlertDeliveryStatus")]
pub struct DeliveryStatus;

/// Stop delivering (the webhook changed or was removed).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAlerts;

/// Delivers one product's alerts to its webhook. Started and stopped by the product
/// actor through [`AlertOutbox`].
pub struct AlertActor {
    product: String,
    webhook: AlertWebhook,
    stream: StreamId,
    journal: Journal,
    cursors: Option<NamedStore>,
    cursor: StreamTip,
    durable_upto: u64,
    sender: Rc<dyn AlertSender>,
    clock: SharedClock,
    metrics: ProductMetrics,
    busy: bool,
    retry: Option<SpawnHandle>,
    status: AlertDeliveryStatus,
}

impl AlertActor {
    /// The cursor's key in the cursor tree (product ids have no `:`).
    fn key(product: &str) -> String {
        format!("alerts:{product}")
    }

    /// An actor for `product`, whose stream ends at `tip` (durable as far as the product
    /// knows). Without a saved cursor (a new webhook) it starts at the tip: alerts from
    /// before the webhook existed are not sent.
    pub fn new(
        product: &str,
        webhook: AlertWebhook,
        journal: Journal,
        tip: StreamTip,
        sender: Rc<dyn AlertSender>,
        clock: SharedClock,
        metrics: ProductMetrics,
    ) -> Self {
        let cursors = match journal.cursor_store() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(product, error = %e, "alert cursor tree unavailable; delivering from the current tip");
                None
            }
        };
        let mut actor = AlertActor {
            product: product.to_string(),
            webhook,
            stream: StreamId::Product(product.to_string()),
            journal,
            cursors,
            cursor: tip,
            durable_upto: tip.next_sequence - 1,
            sender,
            clock,
            metrics,
            busy: false,
            retry: None,
            status: AlertDeliveryStatus::default(),
        };
        actor.load_cursor(tip);
        actor
    }

    /// Reads the saved cursor; one that does not fit the stream (ahead of it, or on a
    /// record a crash lost) is replaced by the tip.
    fn load_cursor(&mut self, tip: StreamTip) {
        let saved = self.cursors.as_ref().and_then(|t| {
            t.get(&Self::key(&self.product))
                .ok()
                .flatten()
                .and_then(|v| StreamTip::from_bytes(&v))
        });
        if let Some(c) = saved {
            let fits = c.next_sequence <= tip.next_sequence
                && (c.next_sequence == 1
                    || self
                        .journal
                        .record_hash(&self.stream, c.next_sequence - 1)
                        .ok()
                        .flatten()
                        == Some(c.last_hash));
            if fits {
                self.cursor = c;
                return;
            }
            tracing::warn!(product = %self.product, "alert cursor does not match the journal; delivering from the tip");
        }
        self.cursor = tip;
        self.save_cursor();
    }

    fn save_cursor(&self) {
        if let Some(t) = &self.cursors {
            if let Err(e) = t.put(&Self::key(&self.product), &self.cursor.to_bytes()) {
                tracing::warn!(product = %self.product, error = %e, "alert cursor not saved");
            }
        }
    }

    /// Reads the stream after the cursor up to what is durable, stopping after the next
    /// alert event: that delivery (if any) and the tip after it.
    fn scan(&self) -> Result<Option<(Option<AlertDelivery>, StreamTip)>, String> {
        if self.cursor.next_sequence > self.durable_upto {
            return Ok(None);
        }
        let upto = self.durable_upto;
        let mut found = None;
        let mut records = 0usize;
        let tip = self
            .journal
            .replay_from::<ProductEvent>(&self.stream, self.cursor, |env| {
                records += 1;
                found = AlertDelivery::of(&self.product, env.sequence, &env.event);
                found.is_none() && env.sequence < upto && records < SCAN_RECORDS
            })
            .map_err(|e| e.to_string())?;
        if tip == self.cursor {
            return Ok(None);
        }
        Ok(Some((found, tip)))
    }

    /// Starts the next delivery, unless one is under way or waits for its retry.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.retry.is_some() {
            return;
        }
        loop {
            match self.scan() {
                Ok(None) => {
                    self.status.pending = None;
                    return;
                }
                Ok(Some((None, tip))) => {
                    self.cursor = tip;
                    self.save_cursor();
                }
                Ok(Some((Some(delivery), tip))) => {
                    self.deliver(ctx, delivery, tip);
                    return;
                }
                Err(e) => {
                    self.fail(ctx, e);
                    return;
                }
            }
        }
    }

    fn deliver(&mut self, ctx: &mut Context<Self>, delivery: AlertDelivery, tip: StreamTip) {
        self.busy = true;
        self.status.pending = Some(delivery.id.clone());
        let sent = self.sender.send(&self.webhook, &delivery);
        let work = async move {
            match tokio::time::timeout(Duration::from_secs(u64::from(TIMEOUT_S)), sent).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Timeout(TIMEOUT_S)),
            }
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.busy = false;
            match result {
                Ok(()) => {
                    tracing::info!(product = %act.product, alert = %delivery.alert, state = delivery.state.code(), id = %delivery.id, "alert delivered");
                    act.cursor = tip;
                    act.save_cursor();
                    act.status.delivered += 1;
                    act.status.attempts = 0;
                    act.status.next_retry = None;
                    act.status.pending = None;
                    act.status.last_delivered = Some((act.clock.now(), delivery.id));
                    act.metrics.alert_webhook_delivered.inc();
                    act.pump(ctx);
                }
                Err(e) => {
                    act.status.failed += 1;
                    act.metrics.alert_webhook_failures.inc();
                    act.fail(ctx, e.to_string());
                }
            }
        }));
    }

    /// Records a failure and tries again after the backoff.
    fn fail(&mut self, ctx: &mut Context<Self>, error: String) {
        let now = self.clock.now();
        self.status.attempts = self.status.attempts.saturating_add(1);
        let delay = retry_delay_ms(self.status.attempts, RETRY_BASE_MS, RETRY_CAP_S);
        tracing::warn!(product = %self.product, attempts = self.status.attempts, retry_in_ms = delay, %error, "alert webhook delivery failed");
        self.status.last_error = Some((now, error));
        self.status.next_retry = Some(Timestamp::from_millis(
            now.as_millis().saturating_add(delay as i64),
        ));
        self.retry = Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| {
            act.retry = None;
            act.pump(ctx);
        }));
    }
}

impl Actor for AlertActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(product = %self.product, url = %self.webhook.url, cursor = self.cursor.next_sequence - 1, "alert webhook started");
        self.pump(ctx);
    }
}

impl Handler<Wake> for AlertActor {
    type Result = ();

    fn handle(&mut self, msg: Wake, ctx: &mut Self::Context) {
        if msg.upto > self.durable_upto {
            self.durable_upto = msg.upto;
            self.pump(ctx);
        }
    }
}

impl Handler<StopAlerts> for AlertActor {
    type Result = ();

    fn handle(&mut self, _: StopAlerts, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<DeliveryStatus> for AlertActor {
    type Result = MessageResult<DeliveryStatus>;

    fn handle(&mut self, _: DeliveryStatus, _ctx: &mut Self::Context) -> Self::Result {
        let mut s = self.status.clone();
        s.cursor = self.cursor.next_sequence - 1;
        s.durable = self.durable_upto;
        MessageResult(s)
    }
}

/// The product actor's side: the running alert actor (if the product has a webhook and
/// the binary a sender), started, restarted and woken to match the settings.
#[derive(Default)]
pub struct AlertOutbox {
    running: Option<(AlertWebhook, Addr<AlertActor>)>,
}

impl AlertOutbox {
    /// The running alert actor, for its status.
    pub fn actor(&self) -> Option<Addr<AlertActor>> {
        self.running.as_ref().map(|(_, a)| a.clone())
    }

    /// Follows the product after the append of `events` (`None`: at start, or once the
    /// sender is provided): (re)starts the alert actor when the webhook changed, sets the
    /// firing gauge of every rule (dropping the series of resolved alerts no rule names
    /// any more), and wakes the actor once events that fire or resolve are durable.
    pub fn follow(&mut self, cx: &AlertContext<'_>, events: Option<&[ProductEvent]>) {
        let mut gone = Vec::new();
        let mut configured = events.is_none();
        let mut alerting = false;
        for e in events.unwrap_or_default() {
            match e {
                ProductEvent::Configured { .. } => configured = true,
                ProductEvent::AlertFired { .. } => alerting = true,
                ProductEvent::AlertResolved { name, .. } => {
                    alerting = true;
                    gone.push(name.clone());
                }
                _ => {}
            }
        }
        if !configured && !alerting {
            return;
        }
        let rules: Vec<String> = cx
            .state
            .settings()
            .map(|s| s.alerts.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default();
        gone.retain(|g| !rules.contains(g));
        let firing = cx.state.firing_alerts();
        cx.metrics
            .alerts(&rules, &|name| firing.contains_key(name), &gone);
        if configured {
            self.sync(cx);
        }
        if alerting {
            self.wake(cx);
        }
    }

    /// Starts, restarts or stops the alert actor to match the settings' webhook.
    fn sync(&mut self, cx: &AlertContext<'_>) {
        let wanted = cx.state.settings().and_then(|s| s.alert_webhook.as_ref());
        if self.running.as_ref().map(|(w, _)| w) == wanted {
            return;
        }
        if let Some((_, old)) = self.running.take() {
            old.do_send(StopAlerts);
        }
        let (Some(webhook), Some(factory)) = (wanted, cx.slot.get()) else {
            return;
        };
        let actor = AlertActor::new(
            cx.product,
            webhook.clone(),
            cx.journal.clone(),
            cx.tip,
            factory(),
            Arc::clone(cx.clock),
            cx.metrics.clone(),
        );
        self.running = Some((webhook.clone(), actor.start()));
    }

    /// Wakes the alert actor once the append (`cx.ticket`, ending at `cx.tip`) is durable.
    fn wake(&self, cx: &AlertContext<'_>) {
        let Some((_, actor)) = &self.running else {
            return;
        };
        let actor = actor.clone();
        let upto = cx.tip.next_sequence - 1;
        cx.journal.when_durable(
            cx.ticket,
            Box::new(move |r| {
                if r.is_ok() {
                    actor.do_send(Wake { upto });
                }
            }),
        );
    }
}

/// What [`AlertOutbox::follow`] reads of its product actor.
pub struct AlertContext<'a> {
    /// The product's id.
    pub product: &'a str,
    /// Its state after the append.
    pub state: &'a ProductState,
    /// How webhooks are reached, once the binary provided it.
    pub slot: &'a AlertSlot,
    /// The journal.
    pub journal: &'a Journal,
    /// The stream's tip after the append.
    pub tip: StreamTip,
    /// The append's ticket (durable once the journal says so).
    pub ticket: u64,
    /// The clock.
    pub clock: &'a SharedClock,
    /// The product's metric handles.
    pub metrics: &'a ProductMetrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_named_by_its_journal_position() {
        let e = ProductEvent::AlertResolved {
            name: "busy".into(),
            at: Timestamp::from_millis(5),
            value: 3,
        };
        let d = AlertDelivery::of("jira", 42, &e).expect("an alert");
        assert_eq!(d.id, "jira:42");
        assert_eq!(d.state.code(), "resolved");
        assert!(AlertDelivery::of(
            "jira",
            1,
            &ProductEvent::MemberEnrolled { user: "a".into() }
        )
        .is_none());
    }
}
