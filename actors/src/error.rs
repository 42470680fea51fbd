//! What can go wrong between a caller and an actor.

use slotpool_events::{DirectoryRefusal, Refusal};
use slotpool_journal::JournalError;
use thiserror::Error;

/// Why an actor could not carry out a message.
#[derive(Debug, Clone, Error)]
pub enum ActorError {
    /// The rules refused the command (a 4xx for the caller).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The journal could not make the change durable (the service is unhealthy).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The directory refused a command (a 4xx for the caller).
    #[error(transparent)]
    Directory(#[from] DirectoryRefusal),
    /// The actor is gone (shutting down).
    #[error("the actor is not running")]
    Stopped,
}

impl From<actix::MailboxError> for ActorError {
    fn from(_: actix::MailboxError) -> Self {
        ActorError::Stopped
    }
}
