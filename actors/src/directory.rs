//! The directory actor: owns users and their active state (its own journal stream), and
//! carries a user's change of state into every product.
//!
//! It answers one message at a time, awaiting the products it informs before taking the
//! next ([`AtomicResponse`]). That serialises "enrol user U" against "deactivate user U",
//! so a product never enrols a user with a stale view of whether they are active.

use crate::clock::SharedClock;
use crate::durable::{ask, durable};
use crate::error::ActorError;
use crate::product::{Execute, Executed, ProductActor};
use crate::registry::Products;
use actix::prelude::*;
use futures_util::future::join_all;
use slotpool_events::{
    Command, DirectoryCommand, DirectoryState, DirectoryUser, Journal, StreamId, StreamTip,
};
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
#[rtype(result = "Result<Vec<(String, DirectoryUser)>, ActorError>")]
pub struct ListUsers;

/// Tell every product again about every deactivated user: repairs a crash between the
/// directory recording a deactivation and the products hearing of it. Idempotent.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ActorError>")]
pub struct Reconcile {
    pub cause: Uuid,
}

/// Owns the directory state and is the only writer of its stream.
pub struct DirectoryActor {
    state: DirectoryState,
    tip: StreamTip,
    last_ticket: u64,
    journal: Journal,
    clock: SharedClock,
    products: Products,
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
        DirectoryActor {
            state,
            tip,
            last_ticket: 0,
            journal,
            clock,
            products,
        }
    }

    /// Decides, appends and applies a directory command; returns the user afterwards.
    fn record(
        &mut self,
        command: DirectoryCommand,
        cause: Uuid,
    ) -> Result<(String, DirectoryUser), ActorError> {
        let events = self.state.decide(&command);
        if !events.is_empty() {
            let now = self.clock.now();
            self.last_ticket =
                self.journal
                    .append(&StreamId::Directory, &mut self.tip, cause, now, &events)?;
            for e in &events {
                self.state.apply(e);
            }
        }
        let user = match command {
            DirectoryCommand::Ensure { user } | DirectoryCommand::SetActive { user, .. } => user,
        };
        let record = self
            .state
            .user(&user)
            .unwrap_or(DirectoryUser { active: true });
        Ok((user, record))
    }

    fn barrier(&self) -> impl std::future::Future<Output = Result<(), ActorError>> + use<> {
        durable(&self.journal, self.last_ticket)
    }
}

impl Actor for DirectoryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::product::MAILBOX_CAPACITY);
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

impl Handler<SetUserActive> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<DirectoryUser, ActorError>>;

    fn handle(&mut self, msg: SetUserActive, _ctx: &mut Self::Context) -> Self::Result {
        let recorded = self.record(
            DirectoryCommand::SetActive {
                user: msg.user,
                active: msg.active,
            },
            msg.cause,
        );
        let barrier = self.barrier();
        let targets: Vec<_> = self.products.all().into_iter().map(|(_, a)| a).collect();
        let cause = msg.cause;
        AtomicResponse::new(Box::pin(
            async move {
                let (user, record) = recorded?;
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
        let known = self.state.user(&user);
        let active = known.is_none_or(|u| u.active);
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
        let ask =
            async move { ask(&msg.product, Execute { command, cause }).await }.into_actor(self);
        AtomicResponse::new(Box::pin(ask.then(move |result, act, _ctx| {
            let created = match (&result, known) {
                (Ok(_), None) => act
                    .record(DirectoryCommand::Ensure { user }, cause)
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
        let found = self.state.user(&msg.user);
        let barrier = self.barrier();
        Box::pin(async move {
            barrier.await?;
            Ok(found)
        })
    }
}

impl Handler<ListUsers> for DirectoryActor {
    type Result = ResponseFuture<Result<Vec<(String, DirectoryUser)>, ActorError>>;

    fn handle(&mut self, _msg: ListUsers, _ctx: &mut Self::Context) -> Self::Result {
        let users = self.state.users();
        let barrier = self.barrier();
        Box::pin(async move {
            barrier.await?;
            Ok(users)
        })
    }
}

impl Handler<Reconcile> for DirectoryActor {
    type Result = AtomicResponse<Self, Result<usize, ActorError>>;

    fn handle(&mut self, msg: Reconcile, _ctx: &mut Self::Context) -> Self::Result {
        let inactive: Vec<String> = self
            .state
            .users()
            .into_iter()
            .filter(|(_, u)| !u.active)
            .map(|(name, _)| name)
            .collect();
        let targets: Vec<_> = self.products.all().into_iter().map(|(_, a)| a).collect();
        AtomicResponse::new(Box::pin(
            async move {
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
