//! Whether the journal still accepts writes: a failed flush or checkpoint stops it for
//! good (the process must restart and recover from disk), and every later append or wait
//! is told why.

use crate::error::JournalError;
use crate::lock::lock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The journal's health: the first failure, if any. Owns its lock.
#[derive(Default)]
pub(crate) struct Health {
    failed: Mutex<Option<String>>,
    has_failed: AtomicBool,
}

impl Health {
    /// The error that stopped the journal, if a flush or checkpoint failed.
    pub(crate) fn check(&self) -> Result<(), JournalError> {
        if self.has_failed.load(Ordering::SeqCst) {
            let why = lock(&self.failed).clone().unwrap_or_default();
            return Err(JournalError::Failed(why));
        }
        Ok(())
    }

    /// Whether a write failed.
    pub(crate) fn has_failed(&self) -> bool {
        self.has_failed.load(Ordering::SeqCst)
    }

    /// Stops the journal after a failed write: later appends and waits get the error.
    pub(crate) fn fail(&self, why: String) {
        let mut failed = lock(&self.failed);
        if failed.is_none() {
            tracing::error!(error = %why, "journal write failed; refusing further writes");
            *failed = Some(why);
        }
        self.has_failed.store(true, Ordering::SeqCst);
    }
}
