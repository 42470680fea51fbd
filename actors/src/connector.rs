//! The connector actor: keeps one product's access group in step with its pool.
//!
//! The product's journal stream is the outbox: nothing extra is written when a slot is
//! granted or lost. The product actor tells its connector how far the stream is durable
//! ([`Wake`]); the connector reads the stream after its cursor (a small record in the
//! `connector_cursors` tree of the journal's database), folds the events into the users
//! they touch ([`slotpool_events::connector::touched_users`]), asks the product which of
//! those users should be in the group now ([`slotpool_events::ProductState::in_access_group`],
//! an answer that is durable), and delivers that membership, one call per user, in order.
//! Only when every call of the batch succeeded does the cursor move past it, so a crash
//! re-delivers (at least once) and every delivery is idempotent (it states the wanted
//! membership, and "already a member" counts as success).
//!
//! A failure stops the batch and retries it after an exponential backoff with a cap
//! ([`slotpool_events::connector::retry_delay_ms`]); a product that does not answer within
//! the timeout counts as failed. The product actor never waits for its connector: the
//! pool goes on while the product is down, and the backlog grows.
//!
//! Space entitlements (a Confluence connector with `spaces`) ride the same outbox: an
//! approval or a revocation of a space request in the stream is work for the connector,
//! which asks the product what is still to be done ([`slotpool_events::SpaceRequest::work`]),
//! grants or removes the permissions one by one, and records the outcome through the
//! product (`FulfilSpaceRequest`, `ConfirmSpaceRemoval`) before the cursor moves: a
//! request already fulfilled is never granted again, and "already granted" counts as a
//! success. At start it fetches the catalogue of spaces and delivers any work left
//! pending (approvals made while it was down or not yet configured).
//!
//! Architecture Invariant: this module knows no HTTP. It talks to the product through a
//! [`Transport`] that the binary provides.

use crate::clock::SharedClock;
use crate::durable::ask_recipient;
use crate::metrics::ProductMetrics;
// Moved to `messages` and `transport`; kept reachable at their old paths.
pub use crate::messages::{
    ConnectorStatus, RefreshSpaces, Resync, ResyncReport, SpaceStatus, Status, StopConnector, Wake,
};
use crate::messages::{Execute, Read};
pub use crate::transport::{
    ConnectorSlot, DeliveryError, GroupChange, Transport, TransportFactory,
};
use actix::dev::ToEnvelope;
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use slotpool_events::connector::{retry_delay_ms, touched_names, Drift};
use slotpool_events::space_book::touched_request;
use slotpool_events::{
    Command, ConnectorSettings, Grant, ProductEvent, Space, SpaceWork, StreamId, Timestamp,
};
use slotpool_journal::{Journal, NamedStore, StreamTip};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most journal records one delivery batch covers.
pub const BATCH_RECORDS: usize = 2000;

/// Where a connector reads who should be in the group: its product actor, reached through
/// the two reads it makes ([`Read`]), so that this module needs nothing of the product
/// actor's (which starts the connector, and so names it).
#[derive(Clone)]
pub struct Owner {
    /// Who of some users should be in the group.
    users: Recipient<Read<Vec<(String, bool)>>>,
    /// Everyone who should be in the group.
    group: Recipient<Read<BTreeSet<String>>>,
    /// What is still to be done for some space requests (or all, at start).
    spaces: Recipient<Read<Vec<SpaceWork>>>,
    /// Where the connector records what it did (the catalogue, a grant, a removal).
    execute: Recipient<Execute>,
}

impl Owner {
    /// The reads of the actor at `addr`: the product actor that starts the connector.
    pub fn of<A>(addr: &Addr<A>) -> Self
    where
        A: Actor
            + Handler<Read<Vec<(String, bool)>>>
            + Handler<Read<BTreeSet<String>>>
            + Handler<Read<Vec<SpaceWork>>>
            + Handler<Execute>,
        A::Context: ToEnvelope<A, Read<Vec<(String, bool)>>>
            + ToEnvelope<A, Read<BTreeSet<String>>>
            + ToEnvelope<A, Read<Vec<SpaceWork>>>
            + ToEnvelope<A, Execute>,
    {
        Owner {
            users: addr.clone().recipient(),
            group: addr.clone().recipient(),
            spaces: addr.clone().recipient(),
            execute: addr.clone().recipient(),
        }
    }

    /// Records `command` in the product (durably), as the connector's own doing.
    async fn execute(&self, command: Command) -> Result<(), DeliveryError> {
        ask_recipient(
            &self.execute,
            Execute {
                command,
                cause: uuid::Uuid::new_v4(),
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| DeliveryError::State(e.to_string()))
    }
}

/// Delivers one product's access-group changes. Started and stopped by its product actor.
pub struct ConnectorActor {
    product: String,
    settings: ConnectorSettings,
    stream: StreamId,
    journal: Journal,
    cursors: Option<NamedStore>,
    cursor: StreamTip,
    durable_upto: u64,
    owner: Owner,
    transport: Rc<dyn Transport>,
    clock: SharedClock,
    metrics: ProductMetrics,
    busy: bool,
    failures: u32,
    last_error: Option<(Timestamp, String)>,
    next_retry: Option<Timestamp>,
    retry: Option<SpawnHandle>,
    backlog: u64,
    pending: Vec<String>,
    /// Deliveries of the batch in hand that the product already confirmed.
    confirmed: HashMap<String, bool>,
    resync_wanted: bool,
    resync_waiters: Vec<oneshot::Sender<Result<ResyncReport, DeliveryError>>>,
    last_resync: Option<Result<ResyncReport, (Timestamp, String)>>,
    delivered: u64,
    failed: u64,
    /// Fetch the catalogue (at start, and when an administrator asks).
    catalogue_wanted: bool,
    catalogue_waiters: Vec<oneshot::Sender<Result<usize, DeliveryError>>>,
    /// Deliver every space request with work left (at start).
    space_sweep_wanted: bool,
    space_status: SpaceStatus,
}

/// A run of the stream after the cursor: the users it touches and where it ends.
struct Batch {
    users: Vec<String>,
    /// Space requests the run approved or revoked.
    requests: Vec<String>,
    changes: u64,
    tip: StreamTip,
}

impl ConnectorActor {
    /// A connector for `product`, whose stream ends at `tip` (durable as far as the
    /// product knows), delivering through `transport`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        product: &str,
        settings: ConnectorSettings,
        journal: Journal,
        tip: StreamTip,
        owner: Owner,
        transport: Rc<dyn Transport>,
        clock: SharedClock,
        metrics: ProductMetrics,
    ) -> Self {
        let stream = StreamId::Product(product.to_string());
        let cursors = match journal.cursor_store() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(product, error = %e, "connector cursor tree unavailable; delivering from the current tip");
                None
            }
        };
        let spaces = settings.spaces.is_some();
        let mut actor = ConnectorActor {
            product: product.to_string(),
            resync_wanted: settings.auto_resync,
            catalogue_wanted: spaces,
            catalogue_waiters: Vec::new(),
            space_sweep_wanted: spaces,
            space_status: SpaceStatus::default(),
            settings,
            stream,
            journal,
            cursors,
            cursor: tip,
            durable_upto: tip.next_sequence - 1,
            owner,
            transport,
            clock,
            metrics,
            busy: false,
            failures: 0,
            last_error: None,
            next_retry: None,
            retry: None,
            backlog: 0,
            pending: Vec::new(),
            confirmed: HashMap::new(),
            resync_waiters: Vec::new(),
            last_resync: None,
            delivered: 0,
            failed: 0,
        };
        actor.load_cursor(tip);
        actor
    }

    /// Reads the saved cursor. One that does not fit the stream (ahead of its tip, or on
    /// a record that is not there any more: a crash lost an append the cursor had seen)
    /// is replaced by the tip, and a re-sync repairs whatever that skips.
    fn load_cursor(&mut self, tip: StreamTip) {
        let saved = self.cursors.as_ref().and_then(|t| {
            t.get(&self.product)
                .ok()
                .flatten()
                .and_then(|v| StreamTip::from_bytes(&v))
        });
        match saved {
            Some(c) if c.next_sequence <= tip.next_sequence => {
                let fits = c.next_sequence == 1
                    || self
                        .journal
                        .record_hash(&self.stream, c.next_sequence - 1)
                        .ok()
                        .flatten()
                        == Some(c.last_hash);
                if fits {
                    self.cursor = c;
                    return;
                }
                tracing::warn!(product = %self.product, "connector cursor does not match the journal; re-syncing");
                self.resync_wanted = true;
            }
            Some(_) => {
                tracing::warn!(product = %self.product, "connector cursor is ahead of the journal; re-syncing");
                self.resync_wanted = true;
            }
            None => {}
        }
        self.cursor = tip;
        self.save_cursor();
    }

    fn save_cursor(&self) {
        if let Some(t) = &self.cursors {
            if let Err(e) = t.put(&self.product, &self.cursor.to_bytes()) {
                tracing::warn!(product = %self.product, error = %e, "connector cursor not saved");
            }
        }
    }

    /// Reads the stream after the cursor, up to what is durable, at most a batch.
    fn scan(&self) -> Result<Option<Batch>, String> {
        if self.cursor.next_sequence > self.durable_upto {
            return Ok(None);
        }
        let upto = self.durable_upto;
        let mut seen = HashSet::new();
        let mut users = Vec::new();
        let mut requests: Vec<String> = Vec::new();
        let mut changes = 0u64;
        let mut records = 0usize;
        let tip = self
            .journal
            .replay_from::<ProductEvent>(&self.stream, self.cursor, |env| {
                records += 1;
                for u in touched_names(&env.event).into_iter().flatten() {
                    changes += 1;
                    if seen.insert(u.to_string()) {
                        users.push(u.to_string());
                    }
                }
                if let Some(id) = touched_request(&env.event) {
                    changes += 1;
                    if !requests.iter().any(|r| r == id) {
                        requests.push(id.to_string());
                    }
                }
                env.sequence < upto && records < BATCH_RECORDS
            })
            .map_err(|e| e.to_string())?;
        if tip == self.cursor {
            return Ok(None);
        }
        Ok(Some(Batch {
            users,
            requests,
            changes,
            tip,
        }))
    }

    /// Starts the next piece of work, unless one is under way or a retry is pending.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.retry.is_some() {
            return;
        }
        if self.resync_wanted || !self.resync_waiters.is_empty() {
            self.resync_wanted = false;
            self.start_resync(ctx);
            return;
        }
        if self.catalogue_wanted || !self.catalogue_waiters.is_empty() || self.space_sweep_wanted {
            self.start_spaces(ctx);
            return;
        }
        loop {
            let batch = match self.scan() {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.set_backlog(0, Vec::new());
                    return;
                }
                Err(e) => {
                    self.fail(ctx, e);
                    return;
                }
            };
            if batch.users.is_empty() && batch.requests.is_empty() {
                self.cursor = batch.tip;
                self.save_cursor();
                continue;
            }
            self.set_backlog(batch.changes, batch.users.clone());
            self.deliver(ctx, batch);
            return;
        }
    }

    fn set_backlog(&mut self, backlog: u64, pending: Vec<String>) {
        self.backlog = backlog;
        self.pending = pending;
        self.metrics.connector_backlog.set(backlog as i64);
    }

    /// Delivers a batch: asks the product who of its users should be in the group, then
    /// tells the product, one user after the other.
    fn deliver(&mut self, ctx: &mut Context<Self>, batch: Batch) {
        self.busy = true;
        let owner = self.owner.clone();
        let transport = Rc::clone(&self.transport);
        let timeout_s = self.settings.timeout_s;
        let already = self.confirmed.clone();
        let users = batch.users.clone();
        let requests = batch.requests.clone();
        let prefix = format!("{}:{}", self.product, batch.tip.next_sequence - 1);
        let work = async move {
            let wanted = ask_recipient(
                &owner.users,
                Read::new(move |s, _| {
                    users
                        .into_iter()
                        .map(|u| {
                            let w = s.in_access_group(&u);
                            (u, w)
                        })
                        .collect::<Vec<_>>()
                }),
            )
            .await;
            let wanted = match wanted {
                Ok(w) => w,
                Err(e) => {
                    return (
                        Vec::new(),
                        Some(DeliveryError::State(e.to_string())),
                        SpaceCounts::default(),
                    )
                }
            };
            let mut done = Vec::new();
            for (user, add) in wanted {
                if already.get(&user) == Some(&add) {
                    continue;
                }
                let change = GroupChange {
                    id: format!("{prefix}:{user}:{}", if add { "add" } else { "remove" }),
                    user: user.clone(),
                    add,
                };
                match call(timeout_s, transport.deliver(change)).await {
                    Ok(()) => done.push((user, add)),
                    Err(e) => return (done, Some(e), SpaceCounts::default()),
                }
            }
            if requests.is_empty() {
                return (done, None, SpaceCounts::default());
            }
            let works = ask_recipient(
                &owner.spaces,
                Read::new(move |s, _| {
                    requests
                        .iter()
                        .filter_map(|id| s.space_request(id).and_then(|r| r.work()))
                        .collect::<Vec<_>>()
                }),
            )
            .await;
            match works {
                Ok(works) => {
                    let mut counts = SpaceCounts::default();
                    let e = space_work(&owner, transport.as_ref(), timeout_s, works, &mut counts)
                        .await
                        .err();
                    (done, e, counts)
                }
                Err(e) => (
                    done,
                    Some(DeliveryError::State(e.to_string())),
                    SpaceCounts::default(),
                ),
            }
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(done, error, counts), act, ctx| {
                    act.busy = false;
                    act.count_space_work(counts);
                    act.delivered += done.len() as u64;
                    for _ in &done {
                        act.metrics.connector_delivery("delivered");
                    }
                    act.confirmed.extend(done);
                    match error {
                        Some(e) => {
                            act.metrics.connector_delivery(e.outcome());
                            act.failed += 1;
                            act.fail(ctx, e.to_string());
                        }
                        None => {
                            act.cursor = batch.tip;
                            act.save_cursor();
                            act.confirmed.clear();
                            act.recovered();
                            act.pump(ctx);
                        }
                    }
                }),
        );
    }

    /// After a success: a streak of failures is over (then a re-sync, if wanted, repairs
    /// whatever an administrator or the product changed meanwhile).
    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(product = %self.product, after = self.failures, "connector deliveries recovered");
            if self.settings.auto_resync {
                self.resync_wanted = true;
            }
        }
        self.failures = 0;
        self.next_retry = None;
    }

    /// Records a failure and schedules the next attempt after the backoff.
    fn fail(&mut self, ctx: &mut Context<Self>, error: String) {
        let now = self.clock.now();
        self.failures = self.failures.saturating_add(1);
        let delay = retry_delay_ms(
            self.failures,
            self.settings.retry_base_ms,
            self.settings.retry_cap_s,
        );
        tracing::warn!(product = %self.product, attempts = self.failures, retry_in_ms = delay, %error, "connector delivery failed");
        self.last_error = Some((now, error));
        self.next_retry = Some(Timestamp::from_millis(
            now.as_millis().saturating_add(delay as i64),
        ));
        self.retry = Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| {
            act.retry = None;
            act.pump(ctx);
        }));
    }

    /// Re-sync: lists the group, compares it with who should be in it, repairs the drift.
    fn start_resync(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        // Whoever asks from now on waits for the next re-sync, which sees their drift.
        let waiters = std::mem::take(&mut self.resync_waiters);
        let owner = self.owner.clone();
        let transport = Rc::clone(&self.transport);
        let timeout_s = self.settings.timeout_s;
        let product = self.product.clone();
        let clock = Arc::clone(&self.clock);
        let work = async move {
            let wanted = ask_recipient(&owner.group, Read::new(|s, _| s.access_group()))
                .await
                .map_err(|e| DeliveryError::State(e.to_string()))?;
            let listed = call(timeout_s.saturating_mul(6), transport.members()).await?;
            let drift = Drift::between(listed.as_ref().unwrap_or(&BTreeSet::new()), &wanted);
            let stamp = clock.now().as_millis();
            let mut report = ResyncReport {
                listed: listed.is_some(),
                wanted: wanted.len(),
                ..ResyncReport::default()
            };
            for (users, add) in [(drift.missing, true), (drift.extra, false)] {
                for user in users {
                    let change = GroupChange {
                        id: format!(
                            "{product}:resync-{stamp}:{user}:{}",
                            if add { "add" } else { "remove" }
                        ),
                        user: user.clone(),
                        add,
                    };
                    call(timeout_s, transport.deliver(change)).await?;
                    if add {
                        report.added.push(user);
                    } else {
                        report.removed.push(user);
                    }
                }
            }
            report.at = clock.now();
            Ok(report)
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.busy = false;
            for w in waiters {
                let _ = w.send(result.clone());
            }
            match &result {
                Ok(report) => {
                    let n = (report.added.len() + report.removed.len()) as u64;
                    act.delivered += n;
                    for _ in 0..n {
                        act.metrics.connector_delivery("delivered");
                    }
                    if n > 0 {
                        tracing::info!(product = %act.product, added = report.added.len(), removed = report.removed.len(), "connector re-sync repaired drift");
                    }
                    act.last_resync = Some(Ok(report.clone()));
                    act.recovered();
                    act.pump(ctx);
                }
                Err(e) => {
                    act.metrics.connector_delivery(e.outcome());
                    act.failed += 1;
                    act.last_resync = Some(Err((act.clock.now(), e.to_string())));
                    // The re-sync is retried with the deliveries, after the backoff.
                    act.resync_wanted = true;
                    act.fail(ctx, format!("re-sync: {e}"));
                }
            }
        }));
    }
}

impl ConnectorActor {
    fn count_space_work(&mut self, counts: SpaceCounts) {
        self.space_status.granted += counts.granted;
        self.space_status.removed += counts.removed;
        self.space_status.refused += counts.refused;
        for _ in 0..counts.granted + counts.removed {
            self.metrics.connector_delivery("delivered");
        }
        for _ in 0..counts.refused {
            self.metrics.connector_delivery("error");
        }
        self.delivered += counts.granted + counts.removed;
    }

    /// The spaces step: fetches the catalogue (when wanted) and records it, then delivers
    /// every space request with work left (at start). Retried after the backoff on a
    /// failure, like deliveries.
    fn start_spaces(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        let waiters = std::mem::take(&mut self.catalogue_waiters);
        let fetch = self.catalogue_wanted || !waiters.is_empty();
        let sweep = self.space_sweep_wanted;
        let owner = self.owner.clone();
        let transport = Rc::clone(&self.transport);
        let timeout_s = self.settings.timeout_s;
        let offered = self.settings.spaces.clone().map(|s| s.offered);
        let work = async move {
            let mut counts = SpaceCounts::default();
            let Some(offered) = offered else {
                return (
                    Err(DeliveryError::State(
                        "this connector has no space entitlements (`spaces`)".into(),
                    )),
                    counts,
                );
            };
            let mut found = None;
            if fetch {
                let listed = match call(timeout_s.saturating_mul(6), transport.spaces()).await {
                    Ok(l) => l,
                    Err(e) => return (Err(e), counts),
                };
                let spaces: Vec<Space> = listed
                    .into_iter()
                    .take(slotpool_events::space::MAX_SPACES)
                    .map(|(key, name)| Space {
                        key,
                        name,
                        operations: offered.clone(),
                    })
                    .collect();
                let n = spaces.len();
                if let Err(e) = owner.execute(Command::CatalogueSpaces { spaces }).await {
                    return (Err(e), counts);
                }
                found = Some(n);
            }
            if sweep {
                let works =
                    ask_recipient(&owner.spaces, Read::new(|s, _| s.spaces().pending_work()))
                        .await
                        .map_err(|e| DeliveryError::State(e.to_string()));
                let r = match works {
                    Ok(w) => {
                        space_work(&owner, transport.as_ref(), timeout_s, w, &mut counts).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    return (Err(e), counts);
                }
            }
            (Ok(found), counts)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(result, counts), act, ctx| {
                    act.busy = false;
                    act.count_space_work(counts);
                    let now = act.clock.now();
                    match result {
                        Ok(found) => {
                            if let Some(n) = found {
                                act.catalogue_wanted = false;
                                act.space_status.last_catalogue = Some(Ok((now, n)));
                            }
                            act.space_sweep_wanted = false;
                            for w in waiters {
                                let _ = w.send(Ok(found.unwrap_or(0)));
                            }
                            act.recovered();
                            act.pump(ctx);
                        }
                        Err(e) => {
                            if fetch {
                                act.space_status.last_catalogue = Some(Err((now, e.to_string())));
                            }
                            for w in waiters {
                                let _ = w.send(Err(e.clone()));
                            }
                            act.metrics.connector_delivery(e.outcome());
                            act.failed += 1;
                            act.fail(ctx, format!("spaces: {e}"));
                        }
                    }
                }),
        );
    }
}

/// What one round of space work did: requests granted, removed, refused for good.
#[derive(Debug, Clone, Copy, Default)]
struct SpaceCounts {
    granted: u64,
    removed: u64,
    refused: u64,
}

/// Does space work in order: grants each operation of an approval and records the grant,
/// removes each permission of a revocation and records the removal. A grant Confluence
/// refuses for good ([`DeliveryError::is_refusal`]) is recorded as failed (with what was
/// granted before) and the rest goes on, so one gone space never holds the outbox; any
/// other failure stops the round (what was recorded stays done; the rest is retried).
async fn space_work(
    owner: &Owner,
    transport: &dyn Transport,
    timeout_s: u32,
    works: Vec<SpaceWork>,
    counts: &mut SpaceCounts,
) -> Result<(), DeliveryError> {
    for w in works {
        match w {
            SpaceWork::Grant {
                id,
                user,
                space,
                operations,
            } => {
                let mut grants = Vec::with_capacity(operations.len());
                let mut refused = None;
                for operation in operations {
                    match call(timeout_s, transport.grant_space(&user, &space, &operation)).await {
                        Ok(permission_id) => grants.push(Grant {
                            operation,
                            permission_id,
                        }),
                        Err(e) if e.is_refusal() => {
                            refused = Some(format!("{}: {e}", operation.code()));
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                match refused {
                    Some(error) => {
                        tracing::warn!(request = %id, %space, %error, "Confluence refused a space grant; the request failed");
                        owner
                            .execute(Command::FailSpaceRequest { id, grants, error })
                            .await?;
                        counts.refused += 1;
                    }
                    None => {
                        owner
                            .execute(Command::FulfilSpaceRequest { id, grants })
                            .await?;
                        counts.granted += 1;
                    }
                }
            }
            SpaceWork::Remove {
                id,
                user,
                space,
                grants,
            } => {
                for grant in &grants {
                    call(timeout_s, transport.remove_space(&user, &space, grant)).await?;
                }
                owner.execute(Command::ConfirmSpaceRemoval { id }).await?;
                counts.removed += 1;
            }
        }
    }
    Ok(())
}

/// One call to the product, failed if it takes longer than `timeout_s`.
async fn call<T>(
    timeout_s: u32,
    f: LocalBoxFuture<'static, Result<T, DeliveryError>>,
) -> Result<T, DeliveryError> {
    match tokio::time::timeout(Duration::from_secs(u64::from(timeout_s)), f).await {
        Ok(r) => r,
        Err(_) => Err(DeliveryError::Timeout(timeout_s)),
    }
}

impl Actor for ConnectorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(product = %self.product, kind = self.settings.kind.code(), group = %self.settings.access_group, cursor = self.cursor.next_sequence - 1, "connector started");
        self.pump(ctx);
    }
}

impl Handler<Wake> for ConnectorActor {
    type Result = ();

    fn handle(&mut self, msg: Wake, ctx: &mut Self::Context) {
        if msg.upto > self.durable_upto {
            self.durable_upto = msg.upto;
            self.pump(ctx);
        }
    }
}

impl Handler<StopConnector> for ConnectorActor {
    type Result = ();

    fn handle(&mut self, _: StopConnector, ctx: &mut Self::Context) {
        self.metrics.connector_backlog.set(0);
        ctx.stop();
    }
}

impl Handler<Status> for ConnectorActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(ConnectorStatus {
            settings: self.settings.clone(),
            cursor: self.cursor.next_sequence - 1,
            durable: self.durable_upto,
            backlog: self.backlog,
            pending: self
                .pending
                .iter()
                .filter(|u| !self.confirmed.contains_key(*u))
                .take(100)
                .cloned()
                .collect(),
            attempts: self.failures,
            last_error: self.last_error.clone(),
            next_retry: self.next_retry,
            delivered: self.delivered,
            failed: self.failed,
            last_resync: self.last_resync.clone(),
            spaces: self
                .settings
                .spaces
                .as_ref()
                .map(|_| self.space_status.clone()),
        })
    }
}

impl Handler<RefreshSpaces> for ConnectorActor {
    type Result = ResponseFuture<Result<usize, DeliveryError>>;

    fn handle(&mut self, _: RefreshSpaces, ctx: &mut Self::Context) -> Self::Result {
        if self.settings.spaces.is_none() {
            return Box::pin(async {
                Err(DeliveryError::State(
                    "this connector has no space entitlements (`spaces`)".into(),
                ))
            });
        }
        let (tx, rx) = oneshot::channel();
        self.catalogue_waiters.push(tx);
        if let Some(h) = self.retry.take() {
            ctx.cancel_future(h);
            self.next_retry = None;
        }
        self.pump(ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(DeliveryError::State("the connector stopped".into())))
        })
    }
}

impl Handler<Resync> for ConnectorActor {
    type Result = ResponseFuture<Result<ResyncReport, DeliveryError>>;

    fn handle(&mut self, _: Resync, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.resync_waiters.push(tx);
        // A re-sync reads the spaces again too: new spaces become requestable.
        self.catalogue_wanted |= self.settings.spaces.is_some();
        // An administrator asking now should not wait out a long backoff.
        if let Some(h) = self.retry.take() {
            ctx.cancel_future(h);
            self.next_retry = None;
        }
        self.pump(ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(DeliveryError::State("the connector stopped".into())))
        })
    }
}
