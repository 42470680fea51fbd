//! Waiting for the journal: nothing is said before it is kept.

use crate::error::ActorError;
use actix::dev::{MessageResponse, OneshotSender, ToEnvelope};
use actix::prelude::*;
use slotpool_journal::{Journal, JournalError};
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
/// The actor hands its answer over at once and goes on with its next message; the answer
/// is held by the journal and sent to the caller by the committer when the group flush
/// that covers it completes. The caller's thread is thus woken once per request, by the
/// committer, instead of once by the actor (with an answer still to wait for) and again
/// by the committer: each wake-up of a parked thread is a futex or eventfd call and, on a
/// busy machine, a context switch.
pub struct Pending<T> {
    answer: T,
    /// The journal and ticket to wait for; `None` once durable (or when it was already).
    wait: Option<(Journal, u64)>,
    /// Set when the flush that was to cover the answer failed.
    failed: Option<JournalError>,
}

impl<T> Pending<T> {
    /// An answer that becomes readable once `ticket` is durable in `journal`.
    ///
    /// On a cluster's leader an answer that waits for no write waits for a confirmation
    /// of leadership instead ([`Journal::answer_ticket`]): no stale answer from a deposed
    /// leader.
    pub(crate) fn new(answer: T, ticket: u64, journal: &Journal) -> Self {
        let ticket = journal.answer_ticket(ticket);
        Pending {
            answer,
            wait: (journal.durable_ticket() < ticket).then(|| (journal.clone(), ticket)),
            failed: None,
        }
    }
}

impl<U> Pending<Result<U, ActorError>> {
    /// The answer, once durable (the actor's reply is sent only then, see
    /// [`MessageResponse`] below), or why it never became so.
    pub async fn durable(self) -> Result<U, ActorError> {
        if let Some(e) = self.failed {
            return Err(ActorError::Journal(e));
        }
        match self.wait {
            None => self.answer,
            // Not sent through the actor's reply (never the case for an actor's answer).
            Some((journal, ticket)) => {
                durable(&journal, ticket).await?;
                self.answer
            }
        }
    }
}

impl<A, M, T> MessageResponse<A, M> for Pending<T>
where
    A: Actor,
    M: Message<Result = Pending<T>>,
    T: Send + 'static,
{
    fn handle(mut self, _ctx: &mut A::Context, tx: Option<OneshotSender<M::Result>>) {
        let Some(tx) = tx else {
            return;
        };
        match self.wait.take() {
            None => {
                let _ = tx.send(self);
            }
            Some((journal, ticket)) => journal.when_durable(
                ticket,
                Box::new(move |r| {
                    if let Err(e) = r {
                        self.failed = Some(e);
                    }
                    let _ = tx.send(self);
                }),
            ),
        }
    }
}

/// [`ask`] through a [`Recipient`]: for a sender that knows the message its peer handles,
/// not the peer's actor type (the connector reading its product's state).
pub async fn ask_recipient<M, U>(to: &Recipient<M>, msg: M) -> Result<U, ActorError>
where
    M: Message<Result = Pending<Result<U, ActorError>>> + Send + 'static,
    U: Send + 'static,
{
    to.send(msg).await?.durable().await
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
