//! Stream ids: one ordered key space per product, and one for the directory.

use std::fmt;
use thiserror::Error;

/// Longest product id accepted.
pub const MAX_PRODUCT_ID_LEN: usize = 64;

/// Which stream of the journal an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamId {
    /// Users and their active state.
    Directory,
    /// One product's pool; the id is validated by [`StreamId::product`].
    Product(String),
    /// A cluster node's own bookkeeping (its Raft log, vote, what it has applied): records
    /// of [`crate::ReplicationRecord`], never replicated as such and never a product's.
    Raft(String),
}

/// A product id that cannot name a stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("product ids are 1 to {MAX_PRODUCT_ID_LEN} characters of a-z, A-Z, 0-9, '.', '_' and '-', starting with a letter or digit")]
pub struct StreamIdError;

const PRODUCT_PREFIX: &str = "product/";
const DIRECTORY: &str = "directory";
const RAFT_PREFIX: &str = "raft/";

impl StreamId {
    /// The stream of product `id`, if `id` is a valid product id.
    pub fn product(id: &str) -> Result<Self, StreamIdError> {
        if valid_product_id(id) {
            Ok(StreamId::Product(id.to_string()))
        } else {
            Err(StreamIdError)
        }
    }

    /// The name used as the key prefix in the journal.
    pub fn name(&self) -> String {
        match self {
            StreamId::Directory => DIRECTORY.to_string(),
            StreamId::Product(p) => format!("{PRODUCT_PREFIX}{p}"),
            StreamId::Raft(n) => format!("{RAFT_PREFIX}{n}"),
        }
    }

    /// Parses a stream name written by [`StreamId::name`].
    pub fn parse(name: &str) -> Option<Self> {
        if name == DIRECTORY {
            Some(StreamId::Directory)
        } else if let Some(n) = name.strip_prefix(RAFT_PREFIX) {
            valid_product_id(n).then(|| StreamId::Raft(n.to_string()))
        } else {
            name.strip_prefix(PRODUCT_PREFIX)
                .and_then(|p| StreamId::product(p).ok())
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Whether `id` may name a product (and so appear in paths and stream keys).
pub fn valid_product_id(id: &str) -> bool {
    // The first character is a letter or digit, so "." and ".." (which no URL can
    // reach) are never product ids.
    id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id.len() <= MAX_PRODUCT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
