//! What can go wrong in a cluster member, typed for the binary to map.

use thiserror::Error;

/// A cluster member's failure.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// The configuration cannot form a cluster (this node missing from the peers, ...).
    #[error("cluster configuration: {0}")]
    Config(String),
    /// The node's storage failed or is damaged.
    #[error("cluster storage: {0}")]
    Storage(String),
    /// Raft refused or failed (no leader, a membership change running, shut down).
    #[error("{0}")]
    Raft(String),
    /// This node does not lead; the leader (if known) is given.
    #[error("this node is not the leader")]
    NotLeader(Option<u64>),
    /// A membership change is already running.
    #[error("a membership change is already running")]
    ChangeRunning,
    /// Could not listen or start the runtime.
    #[error("cluster runtime: {0}")]
    Runtime(String),
}
