//! Fixed-licence requests: a member asks for a fixed licence, an administrator approves
//! (within the licence tier) or rejects. Kept in the product's state and journal.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a fixed-licence request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestState {
    /// Waiting for an administrator.
    Open,
    /// Approved at `at`: the fixed licence was given.
    Approved { at: Timestamp, note: String },
    /// Rejected at `at`, with the administrator's note.
    Rejected { at: Timestamp, note: String },
}

impl RequestState {
    /// The stable code of the state: `open`, `approved`, `rejected`.
    pub fn code(&self) -> &'static str {
        match self {
            RequestState::Open => "open",
            RequestState::Approved { .. } => "approved",
            RequestState::Rejected { .. } => "rejected",
        }
    }
}

/// One member's request for a fixed licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedRequest {
    /// Its id (chosen by the caller, unique across products: a UUID).
    pub id: String,
    /// Who asks.
    pub user: String,
    /// Why, in the member's words.
    pub reason: String,
    /// When it was asked.
    pub at: Timestamp,
    /// Open, approved or rejected.
    pub state: RequestState,
}

/// Longest reason or note accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 2000;
