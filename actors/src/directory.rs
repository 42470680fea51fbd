//! The directory actor: owns users, groups and memberships (its own journal stream),
//! carries a user's change of active state into every product, and runs source-group
//! syncs (rule 9).
//!
//! It answers one message at a time, awaiting the products it informs before taking the
//! next ([`AtomicResponse`]). That serialises "enrol user U" against "deactivate user U",
//! so a product never enrols a user with a stale view of whether they are active.

use crate::clock::SharedClock;
use crate::directory_view::{DirectoryView, UserFacts};
use crate::durable::{ask, durable};
use crate::error::ActorError;
use crate::messages::{Execute, Executed, Read, MAILBOX_CAPACITY};
use crate::product::ProductActor;
use crate::registry::Products;
use actix::prelude::*;
use futures_util::future::join_all;
use slotpool_events::{
    sync, Command, DirectoryCommand, DirectoryEvent, DirectoryRefusal, DirectoryState,
    DirectoryUser, ProductState, SkipReason, Skipped, StreamId, SyncReport,
};
use slotpool_journal::{Journal, StreamTip};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// Activate or deactivate a user everywhere; answered when every product has it.
#[derive(Debug, Message)]
#[rtype(result = "Result<DirectoryUser, ActorError>")]
pub struct SetUserActive {
    pub user: String,
    pub active: bool,
    pub cause: Uuid,
}

/// A change of a user's place in one product that needs the directory's view of the user.
#[derive(Debug, Clone)]
pub enum Membership {
    /// Enrol in the pool.
    Enrol(String),
    /// Give a fixed licence.
    GiveFixed(String),
}

/// Make sure the user exists, then carry `change` into `product` with their active state.
#[derive(Debug, Message)]
#[rtype(result = "Result<Executed, ActorError>")]
pub struct Provision {
    pub product: Addr<ProductActor>,
    pub change: Membership,
    pub cause: Uuid,
}

/// One user, if known.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<DirectoryUser>, ActorError>")]
pub struct LookupUser {
    pub user: String,
}

/// Every user, sorted by name.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<DirectoryUser>, ActorError>")]
pub struct ListUsers;

/// Any directory command (SCIM's creates, replaces and deletes): decided, recorded, and
/// every resulting change of a user's active state carried into every product before
/// the answer. Answers with the recorded events.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<DirectoryEvent>, ActorError>")]
pub struct Change {
    pub command: DirectoryCommand,
    pub cause: Uuid,
}

type DirectoryReadFn<R> = Box<dyn FnOnce(&DirectoryState) -> R + Send>;

/// Runs a closure over the directory state (answered once everything it reflects is
/// durable).
pub struct ReadDirectory<R: 'static>(DirectoryReadFn<R>);

impl<R: 'static> ReadDirectory<R> {
    /// A read of the directory.
    pub fn new(f: impl FnOnce(&DirectoryState) -> R + Send + 'static) -> Self {
        ReadDirectory(Box::new(f))
    }
}

impl<R: 'static> Message for ReadDirectory<R> {
    type Result = Result<R, ActorError>;
}

/// Synchronise a product's pool with its source groups now (rule 9); answers with the
/// report, which is also recorded.
#[derive(Debug, Message)]
#[rtype(result = "Result<SyncReport, ActorError>")]
pub struct SyncProduct {
    /// The product's id (named in the report).
    pub id: String,
    pub product: Addr<ProductActor>,
    /// `manual` or `scheduled`, kept in the report.
    pub trigger: &'static str,
    pub cause: Uuid,
}

/// Create product `id` or change its settings (the admin API's `PUT` and the dashboard's
/// forms). A product that does not exist yet is started only for settings the core
/// accepts, so a refused create leaves nothing behind. When the new settings have
/// reservations (rule 10), the product is then told the directory's groups of each of
/// its holders and queued members (who holds or waits may have requested before the
/// product noted groups), before the answer.
#[derive(Debug, Message)]
#[rtype(result = "Result<Executed, ActorError>")]
pub struct ConfigureProduct {
    pub id: String,
    pub settings: slotpool_events::Settings,
    pub cause: Uuid,
}

/// Tell every product again about every rename and every deactivated user: repairs a
/// crash between the directory recording a rename or deactivation and the products
/// hearing of it. Idempotent.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ActorError>")]
pub struct Reconcile {
    pub cause: Uuid,
}

/// What [`DirectoryActor::record`] did: the events, and the users whose groups changed.
struct Recorded {
    events: Vec<DirectoryEvent>,
    regrouped: BTreeSet<String>,
}

/// Owns the directory state and is the only writer of its stream.
pub struct DirectoryActor {
    state: DirectoryState,
    tip: StreamTip,
    last_ticket: u64,
    journal: Journal,
    clock: SharedClock,
    products: Products,
    view: DirectoryView,
}

impl DirectoryActor {
    /// An actor over a recovered (or empty) directory.
    pub fn new(
        state: DirectoryState,
        tip: StreamTip,
        journal: Journal,
        clock: SharedClock,
        products: Products,
    ) -> Self {
        let view = DirectoryView::of(&state);
        DirectoryActor {
            state,
            tip,
            last_ticket: 0,
            journal,
            clock,
            products,
            view,
        }
    }

    /// The shared view this actor keeps up to date (take it before starting the actor).
    pub fn view(&self) -> DirectoryView {
        self.view.clone()
    }

    /// Decides, appends and applies a directory command; returns the recorded events and
    /// the users whose groups they changed.
    fn record(&mut self, command: &DirectoryCommand, cause: Uuid) -> Result<Recorded, ActorError> {
        let events = self.state.decide(command)?;
        let mut regrouped = BTreeSet::new();
        if !events.is_empty() {
            let now = self.clock.now();
            self.last_ticket =
                self.journal
                    .append(&StreamId::Directory, &mut self.tip, cause, now, &events)?;
            // Before applying: a deleted group's members are known only until then.
            let mut touched;
            (touched, regrouped) = self.touched_users(&events);
            for e in &events {
                self.state.apply_at(e, now);
            }
            touched.extend(regrouped.iter().cloned());
            self.publish(touched);
        }
        Ok(Recorded { events, regrouped })
    }

    /// The users whose facts (see [`UserFacts`]) `events` may change: those named by user
    /// events, and apart from them those whose groups change (named by membership events,
    /// or members of a group renamed or deleted).
    fn touched_users(&self, events: &[DirectoryEvent]) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut users, mut regrouped) = (BTreeSet::new(), BTreeSet::new());
        for e in events {
            match e {
                // (De)activation changes the facts too: bypass rules read `active`.
                DirectoryEvent::UserCreated { user }
                | DirectoryEvent::UserProfiled { user, .. }
                | DirectoryEvent::UserDeactivated { user }
                | DirectoryEvent::UserReactivated { user }
                | DirectoryEvent::UserDeleted { user } => {
                    users.insert(user.clone());
                }
                // The old name leaves the view, the new one enters it with the facts.
                DirectoryEvent::UserRenamed { from, to } => {
                    users.insert(from.clone());
                    users.insert(to.clone());
                }
                DirectoryEvent::GroupMemberAdded { user, .. }
                | DirectoryEvent::GroupMemberRemoved { user, .. } => {
                    regrouped.insert(user.clone());
                }
                DirectoryEvent::GroupRenamed { id, .. } | DirectoryEvent::GroupDeleted { id } => {
                    if let Some(g) = self.state.group(id) {
                        regrouped.extend(g.members.iter().cloned());
                    }
                }
                DirectoryEvent::GroupCreated { .. } | DirectoryEvent::SyncReported { .. } => {}
            }
        }
        (users, regrouped)
    }

    /// Publishes to the view what changed of `users`, once the latest append is durable.
    fn publish(&self, users: BTreeSet<String>) {
        if users.is_empty() {
            return;
        }
        let changes: Vec<(String, Option<Arc<UserFacts>>)> = users
            .into_iter()
            .map(|user| {
                let facts = UserFacts::of(&self.state, &user).map(Arc::new);
                (user, facts)
            })
            .collect();
        let (view, ticket) = (self.view.clone(), self.last_ticket);
        // On a failed flush nothing is published: the journal refuses every write after.
        self.journal.when_durable(
            ticket,
            Box::new(move |durable| {
                if durable.is_ok() {
                    view.publish(ticket, changes);
                }
            }),
        );
    }

    /// Rule 10: each of `users` with their groups now, for every product to note. A
    /// product without reservations ignores them; none are sent while no product has
    /// reservations.
    fn note_groups(&self, users: &BTreeSet<String>) -> Vec<Command> {
        users
            .iter()
            .map(|user| Command::NoteGroups {
                groups: self.state.group_names_of(user).into(),
                user: user.clone(),
            })
            .collect()
    }

    fn targets(&self) -> Vec<Addr<ProductActor>> {
        self.products.all().into_iter().map(|(_, a)| a).collect()
    }

    fn barrier(&self) -> impl std::future::Future<Output = Result<(), ActorError>> + use<> {
        durable(&self.journal, self.last_ticket)
    }

    /// The reply of a read: `answer`, sent once everything recorded before it is durable
    /// (so a reader never sees a state that a crash could still take back).
    fn answer_when_durable<R: Send + 'static>(
        &self,
        answer: R,
    ) -> ResponseFuture<Result<R, ActorError>> {
        let barrier = self.barrier();
        Box::pin(async move {
            barrier.await?;
            Ok(answer)
        })
    }
}

impl Actor for DirectoryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

/// Sends `command` to every product and waits for all; the first error wins.
async fn tell_all(
    targets: Vec<Addr<ProductActor>>,
    command: Command,
    cause: Uuid,
) -> Result<(), ActorError> {
    let replies = join_all(targets.iter().map(|a| {
        ask(
            a,
            Execute {
                command: command.clone(),
                cause,
            },
        )
    }))
    .await;
    for r in replies {
        r?;
    }
    Ok(())
}

/// The product commands that carry `events`' renames and changes of active state, in
/// the order recorded (a rename comes first, so what follows names the new name).
fn activity_changes(events: &[DirectoryEvent]) -> Vec<Command> {
    events
        .iter()
        .filter_map(|e| match e {
            DirectoryEvent::UserRenamed { from, to } => Some(Command::Rename {
                from: from.clone(),
                to: to.clone(),
            }),
            DirectoryEvent::UserDeactivated { user } => Some(Command::SetActive {
                user: user.clone(),
                active: false,
            }),
            DirectoryEvent::UserReactivated { user } => Some(Command::SetActive {
                user: user.clone(),
                active: true,
            }),
            _ => None,
        })
        .collect()
}

impl Handler<Change> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<Vec<DirectoryEvent>, ActorError>>;

    /// Besides the recorded (de)activations, a user whose profile was set is told to every
    /// product with their active state: a user deleted (so deactivated in the pools) and
    /// created again under the same name is active again everywhere.
    fn handle(&mut self, msg: Change, _ctx: &mut Self::Context) -> Self::Result {
        let recorded = self.record(&msg.command, msg.cause);
        let mut commands = recorded
            .as_ref()
            .map(|r| activity_changes(&r.events))
            .unwrap_or_default();
        if let Ok(Recorded { events, .. }) = &recorded {
            for e in events {
                if let DirectoryEvent::UserProfiled { user, .. } = e {
                    if let Some(u) = self.state.user(user) {
                        commands.push(Command::SetActive {
                            user: user.clone(),
                            active: u.active,
                        });
                    }
                }
            }
        }
        if let (Ok(r), true) = (&recorded, self.products.reservations_in_use()) {
            commands.extend(self.note_groups(&r.regrouped));
        }
        let barrier = self.barrier();
        let targets = self.targets();
        let cause = msg.cause;
        AtomicResponse::new(Box::pin(
            async move {
                let events = recorded?.events;
                barrier.await?;
                for command in commands {
                    tell_all(targets.clone(), command, cause).await?;
                }
                Ok(events)
            }
            .into_actor(self),
        ))
    }
}

impl Handler<SetUserActive> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<DirectoryUser, ActorError>>;

    fn handle(&mut self, msg: SetUserActive, _ctx: &mut Self::Context) -> Self::Result {
        let recorded = self.record(
            &DirectoryCommand::SetActive {
                user: msg.user.clone(),
                active: msg.active,
            },
            msg.cause,
        );
        let record = self.state.user(&msg.user).cloned();
        let barrier = self.barrier();
        let targets = self.targets();
        let cause = msg.cause;
        let user = msg.user;
        AtomicResponse::new(Box::pin(
            async move {
                recorded?;
                let record = record.ok_or(DirectoryRefusal::UnknownUser(user.clone()))?;
                barrier.await?;
                let command = Command::SetActive {
                    user,
                    active: record.active,
                };
                tell_all(targets, command, cause).await?;
                Ok(record)
            }
            .into_actor(self),
        ))
    }
}

impl Handler<Provision> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<Executed, ActorError>>;

    /// The product decides first, with the directory's view of the user (a user not yet
    /// known counts as active); only if it accepts is an unknown user created. A refused
    /// request thus leaves no trace in the directory.
    fn handle(&mut self, msg: Provision, _ctx: &mut Self::Context) -> Self::Result {
        let user = match &msg.change {
            Membership::Enrol(u) | Membership::GiveFixed(u) => u.clone(),
        };
        let known = self.state.user(&user).map(|u| u.active);
        let conflict = match (known, self.state.user_ignoring_case(&user)) {
            (None, Some(other)) => Some(DirectoryRefusal::Uniqueness(format!(
                "{user} (the directory has {:?})",
                other.user
            ))),
            _ => None,
        };
        let active = known.unwrap_or(true);
        let command = match msg.change {
            Membership::Enrol(_) => Command::Enrol {
                user: user.clone(),
                active,
            },
            Membership::GiveFixed(_) => Command::GiveFixed {
                user: user.clone(),
                active,
            },
        };
        let cause = msg.cause;
        let ask = async move {
            if let Some(refusal) = conflict {
                return Err(refusal.into());
            }
            ask(&msg.product, Execute { command, cause }).await
        }
        .into_actor(self);
        AtomicResponse::new(Box::pin(ask.then(move |result, act, _ctx| {
            let created = match (&result, known) {
                (Ok(_), None) => act
                    .record(&DirectoryCommand::Ensure { user }, cause)
                    .map(|_| ()),
                _ => Ok(()),
            };
            let barrier = act.barrier();
            async move {
                created?;
                barrier.await?;
                result
            }
            .into_actor(act)
        })))
    }
}

impl Handler<LookupUser> for DirectoryActor {
    type Result = ResponseFuture<Result<Option<DirectoryUser>, ActorError>>;

    fn handle(&mut self, msg: LookupUser, _ctx: &mut Self::Context) -> Self::Result {
        self.answer_when_durable(self.state.user(&msg.user).cloned())
    }
}

impl Handler<ListUsers> for DirectoryActor {
    type Result = ResponseFuture<Result<Vec<DirectoryUser>, ActorError>>;

    fn handle(&mut self, _msg: ListUsers, _ctx: &mut Self::Context) -> Self::Result {
        self.answer_when_durable(self.state.users().into_iter().cloned().collect())
    }
}

impl Handler<Reconcile> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<usize, ActorError>>;

    fn handle(&mut self, msg: Reconcile, _ctx: &mut Self::Context) -> Self::Result {
        let inactive: Vec<String> = self
            .state
            .users()
            .into_iter()
            .filter(|u| !u.active)
            .map(|u| u.user.clone())
            .collect();
        let renames = self.state.pending_renames();
        let targets: Vec<_> = self.products.all().into_iter().map(|(_, a)| a).collect();
        AtomicResponse::new(Box::pin(
            async move {
                // Renames first: a product that missed one knows the user by the old name.
                for (from, to) in renames {
                    tell_all(targets.clone(), Command::Rename { from, to }, msg.cause).await?;
                }
                for user in &inactive {
                    let command = Command::SetActive {
                        user: user.clone(),
                        active: false,
                    };
                    tell_all(targets.clone(), command, msg.cause).await?;
                }
                Ok(inactive.len())
            }
            .into_actor(self),
        ))
    }
}

impl<R: Send + 'static> Handler<ReadDirectory<R>> for DirectoryActor {
    type Result = ResponseFuture<Result<R, ActorError>>;

    fn handle(&mut self, msg: ReadDirectory<R>, _ctx: &mut Self::Context) -> Self::Result {
        self.answer_when_durable((msg.0)(&self.state))
    }
}

impl Handler<ConfigureProduct> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<Executed, ActorError>>;

    /// Configures the product, then, if the core says groups must be noted, reads its
    /// holders and queued members and tells the product each one's groups as the
    /// directory has them now (`Command::NoteGroups`: the product records a change only,
    /// and gives any slot that frees up to the first queued member allowed).
    fn handle(&mut self, msg: ConfigureProduct, _ctx: &mut Self::Context) -> Self::Result {
        let products = self.products.clone();
        let now = self.clock.now();
        let ConfigureProduct {
            id,
            settings,
            cause,
        } = msg;
        let configure = async move {
            let command = Command::Configure(settings);
            let product = match products.get(&id) {
                Some(addr) => addr,
                None => {
                    // The core's own decision on an empty product, before any actor
                    // exists for it.
                    ProductState::new().decide(&command, now)?;
                    products.get_or_start(&id)
                }
            };
            let done = ask(&product, Execute { command, cause }).await?;
            let users = if slotpool_events::product::reservations::groups_to_note(&done.events) {
                ask(
                    &product,
                    Read::new(|s, _| {
                        let mut users: Vec<String> =
                            s.holders().into_iter().map(|h| h.user).collect();
                        users.extend(s.queue().into_iter().map(|q| q.user));
                        users
                    }),
                )
                .await?
            } else {
                Vec::new()
            };
            Ok::<_, ActorError>((product, done, users))
        }
        .into_actor(self);
        AtomicResponse::new(Box::pin(configure.then(move |configured, act, _ctx| {
            let commands = configured.map(|(product, done, users)| {
                let commands: Vec<Command> = users
                    .into_iter()
                    .map(|user| Command::NoteGroups {
                        groups: act.state.group_names_of(&user).into(),
                        user,
                    })
                    .collect();
                (product, done, commands)
            });
            async move {
                let (product, done, commands) = commands?;
                for command in commands {
                    ask(&product, Execute { command, cause }).await?;
                }
                Ok(done)
            }
            .into_actor(act)
        })))
    }
}

impl Handler<SyncProduct> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<SyncReport, ActorError>>;

    /// Reads the product's members, plans the sync in the pure core with the directory as
    /// it is now, carries the plan out with the product's ordinary commands (a refused
    /// one is reported, not fatal), and records the report.
    fn handle(&mut self, msg: SyncProduct, _ctx: &mut Self::Context) -> Self::Result {
        let product = msg.product.clone();
        let read = async move {
            ask(
                &product,
                Read::new(|s, _| {
                    let (members, fixed) = s.members_and_fixed();
                    (s.settings().cloned(), members, fixed)
                }),
            )
            .await
        }
        .into_actor(self);
        let cause = msg.cause;
        let trigger = msg.trigger;
        let target = msg.product;
        let id = msg.id;
        AtomicResponse::new(Box::pin(read.then(move |read, act, _ctx| {
            let planned = read.map(|(settings, members, fixed)| {
                let settings = settings.unwrap_or_else(|| {
                    slotpool_events::Settings::new(slotpool_events::ProductKind::Generic, 1, 0)
                });
                let plan = sync::plan(&act.state, &settings, &members, &fixed);
                (settings.source_groups, plan)
            });
            async move {
                let (source_groups, plan) = planned?;
                let mut report = SyncReport {
                    trigger: trigger.to_string(),
                    source_groups,
                    skipped: plan.skipped,
                    missing_groups: plan.missing_groups,
                    ..SyncReport::default()
                };
                for user in plan.add {
                    let command = Command::Enrol {
                        user: user.clone(),
                        active: true,
                    };
                    match ask(&target, Execute { command, cause }).await {
                        Ok(_) => report.added.push(user),
                        Err(ActorError::Refused(r)) => report.skipped.push(Skipped {
                            user,
                            why: SkipReason::Refused(r.code().to_string()),
                        }),
                        Err(e) => return Err(e),
                    }
                }
                for removal in plan.remove {
                    let command = Command::Remove {
                        user: removal.user.clone(),
                    };
                    match ask(&target, Execute { command, cause }).await {
                        Ok(_) => report.removed.push(removal),
                        Err(ActorError::Refused(r)) => report.skipped.push(Skipped {
                            user: removal.user,
                            why: SkipReason::Refused(r.code().to_string()),
                        }),
                        Err(e) => return Err(e),
                    }
                }
                report.skipped.sort();
                Ok(report)
            }
            .into_actor(act)
            .then(move |report: Result<SyncReport, ActorError>, act, _ctx| {
                let recorded = report.and_then(|mut report| {
                    report.at = act.clock.now();
                    act.record(
                        &DirectoryCommand::RecordSync {
                            product: id,
                            report: report.clone(),
                        },
                        cause,
                    )?;
                    Ok(report)
                });
                let barrier = act.barrier();
                async move {
                    let report = recorded?;
                    barrier.await?;
                    Ok(report)
                }
                .into_actor(act)
            })
        })))
    }
}
