//! [`Member`]: how the cluster reaches one node.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A member's advertised addresses, replicated in the cluster's membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where its HTTP listens: followers forward requests to the leader's.
    pub http: String,
    /// Where its Raft traffic is reached.
    pub raft: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http {} raft {}", self.http, self.raft)
    }
}
