//! Waiting for the journal: nothing is said before it is kept.

use crate::error::ActorError;
use actix::dev::{MessageResponse, OneshotSender, ToEnvelope};
use actix::prelude::*;
use slotpool_events::{Journal, JournalError};
use std::future::Future;
use tokio::sync::oneshot::Receiver;

/// Registers with the journal for the append with `ticket` (and all before it); `None`
/// when the journal already covers it (reads of an idle product wait for nothing).
fn register(journal: &Journal, ticket: u64) -> Option<Receiver<Result<(), JournalError>>> {
    if journal.durable_ticket() >= ticket {
        return None;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    journal.when_durable(
        ticket,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    Some(rx)
}

async fn wait(registered: Option<Receiver<Result<(), JournalError>>>) -> Result<(), ActorError> {
    match registered {
        None => Ok(()),
        Some(rx) => match rx.await {
            Ok(r) => r.map_err(ActorError::from),
            Err(_) => Err(ActorError::Journal(JournalError::Failed(
                "the committer stopped".into(),
            ))),
        },
    }
}

/// A future that resolves once the append with `ticket` (and all before it) is durable.
pub fn durable(
    journal: &Journal,
    ticket: u64,
) -> impl Future<Output = Result<(), ActorError>> + use<> {
    wait(register(journal, ticket))
}

/// An actor's answer that may be read only once the journal has made durable everything
/// it reflects. Answers (even refusals and reads) wait, because they speak of state that
/// may include events not yet durable.
///
/// The actor registers with the journal as soon as it has appended (so the next group
/// flush covers it), and the caller's task waits ([`Pending::durable`], or [`ask`]): when
/// the flush completes, the committer wakes the caller directly, which saves a round trip
/// through the actor's thread on every request.
pub struct Pending<T> {
    answer: T,
    registered: Option<Receiver<Result<(), JournalError>>>,
}

impl<T> Pending<T> {
    /// An answer that becomes readable once `ticket` is durable in `journal`.
    pub(crate) fn new(answer: T, ticket: u64, journal: &Journal) -> Self {
        Pending {
            answer,
            registered: register(journal, ticket),
        }
    }
}

impl<U> Pending<Result<U, ActorError>> {
    /// Waits until the answer is durable, then gives it.
    pub async fn durable(self) -> Result<U, ActorError> {
        wait(self.registered).await?;
        self.answer
    }
}

impl<A, M, T> MessageResponse<A, M> for Pending<T>
where
    A: Actor,
    M: Message<Result = Pending<T>>,
    T: 'static,
{
    fn handle(self, _ctx: &mut A::Context, tx: Option<OneshotSender<M::Result>>) {
        if let Some(tx) = tx {
            let _ = tx.send(self);
        }
    }
}

/// Sends `msg` to `addr` and waits until its answer is durable.
pub async fn ask<A, M, U>(addr: &Addr<A>, msg: M) -> Result<U, ActorError>
where
    A: Actor + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message<Result = Pending<Result<U, ActorError>>> + Send + 'static,
    U: Send + 'static,
{
    addr.send(msg).await?.durable().await
}
