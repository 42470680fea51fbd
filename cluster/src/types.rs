//! The openraft type configuration.

use crate::member::Member;
use crate::proposal::{Outcome, Proposal};
use std::io::Cursor;

/// A node's id in the cluster (`[cluster] node_id`).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// slotpool's Raft types: entries carry [`Proposal`]s and answer [`Outcome`]s, members are [`Member`]s,
    /// snapshots are journal exports held in memory.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
