//! [`Proposal`]: what one Raft entry carries.

use serde::{Deserialize, Serialize};

/// The records of several appends (of one or more streams), proposed together: group
/// commit across the cluster, many commands to one entry and one `fdatasync` per member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// In the order the leader appended them.
    pub writes: Vec<StreamWrite>,
}

/// One append: encoded records of a stream, the first at sequence `first`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamWrite {
    /// The stream's name (`directory`, `product/<id>`).
    pub stream: String,
    /// Sequence of the first record.
    pub first: u64,
    /// The records, encoded and hash-chained by the leader's journal.
    pub records: Vec<Vec<u8>>,
}

/// What applying one entry did: the answer to the leader's `client_write`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Why each refused write was refused ([`slotpool_journal::AppliedWrite::Refused`]): the
    /// leader that proposed it served from a state the cluster had moved past.
    pub refused: Vec<String>,
}
