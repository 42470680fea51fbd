//! [`ReplicationRecord`]: what a `raft/` stream holds, opaque to the core.

use serde::{Deserialize, Serialize};

/// One record of a cluster node's own bookkeeping (a Raft log entry, a vote, the last
/// applied entry), already encoded by the cluster crate.
///
/// The journal keeps these in hash-chained envelopes like every other record, so a
/// damaged Raft log is found the way a damaged product stream is; what the bytes mean is
/// the cluster crate's business, not the core's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRecord(pub Vec<u8>);
