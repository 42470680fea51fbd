//! slotpool's replication: one openraft group whose log, vote and state machine live in
//! slotpool's own journal.
//!
//! What is replicated is what a single node journals: the encoded, hash-chained records
//! the leader's product and directory actors decide ([`Proposal`]). The leader proposes
//! them through the journal's replicated seam ([`Proposer`], a
//! [`slotpool_journal::Replicator`]); a proposal acknowledged by Raft is on a majority's
//! disks; every member then writes the same records into its own copy of the journal
//! ([`StateMachine`]), so all copies hold the same hash chains. Followers do not decide
//! anything: a node runs the actors only while it leads (the binary's business).
//!
//! Architecture Invariant: no election, replication or membership logic here; openraft
//! does those. This crate is storage ([`LogStore`], [`StateMachine`]), transport
//! ([`network`], [`server`]: authenticated TCP) and the proposer.
//!
//! Architecture Invariant: the Raft log's callback that an append is flushed is called
//! only once the journal's write-ahead log has `fdatasync`ed it.

// openraft's traits return its `StorageError` (224 bytes); the private helpers that
// build it return it too rather than box it only to unbox it at the trait boundary.
#![allow(clippy::result_large_err)]

mod codec;
mod error;
mod log_store;
mod member;
pub mod network;
mod node;
mod proposal;
mod proposer;
pub mod server;
mod state_machine;
mod types;
mod wire;
mod write_back;

pub use error::ClusterError;
pub use log_store::LogStore;
pub use member::Member;
pub use node::{ClusterNode, MemberStatus, NodeSettings, Status};
pub use proposal::{Outcome, Proposal, StreamWrite};
pub use proposer::Proposer;
pub use state_machine::{finish_interrupted_install, KeptUpTo, SharedJournal, StateMachine};
pub use types::{NodeId, TypeConfig};
