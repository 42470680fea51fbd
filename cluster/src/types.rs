//! The openraft type configuration.

use crate::member::Member;
use crate::proposal::{Outcome, Proposal};

/// A node's id in the cluster (`[cluster] node_id`).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// slotpool's Raft types: entries carry [`Proposal`]s and answer [`Outcome`]s, members are [`Member`]s,
    /// snapshots are journal exports kept in files (`raft/snapshot.data`).
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);
