//! Snapshots of product state, so that recovery need not replay a stream from its start.
//!
//! Not built yet (issue B). What will live here: a versioned, checksummed snapshot format
//! (the product state plus the [`slotpool_events::StreamTip`] it covers), a store that
//! writes one every N events and prunes old ones, and the recovery rule "latest valid
//! snapshot + the journal after it", where a corrupt snapshot is skipped, never trusted.
//! Until then recovery replays whole streams, which is correct, only slower.
//!
//! Architecture Invariant: this crate knows nothing of actix or HTTP.

pub use slotpool_events::StreamTip;
