//! Waiting for the journal: the future every answer awaits before it is sent.

use crate::error::ActorError;
use slotpool_events::{Journal, JournalError};
use std::future::Future;

/// A future that resolves once the append with `ticket` (and all before it) is durable.
///
/// Resolves at once when the journal already covers the ticket, which makes reads of an
/// idle product free. Answers (even refusals and reads) wait for it, because they speak of
/// state that includes not-yet-durable events: nothing is said before it is kept.
pub fn durable(
    journal: &Journal,
    ticket: u64,
) -> impl Future<Output = Result<(), ActorError>> + use<> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    journal.when_durable(
        ticket,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    async move {
        match rx.await {
            Ok(r) => r.map_err(ActorError::from),
            Err(_) => Err(ActorError::Journal(JournalError::Failed(
                "the committer stopped".into(),
            ))),
        }
    }
}
