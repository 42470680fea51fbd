//! How a connector reaches its product (Jira, Confluence, Bitbucket, a webhook): the
//! [`Transport`] the binary implements over HTTP, what one delivery is, and why one
//! failed. Plain types, so the product actor and the registry can carry the transport
//! factory without depending on the connector actor.

use futures_util::future::LocalBoxFuture;
use slotpool_events::{ConnectorSettings, Grant, SpaceOperation};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// One delivery: the membership `user` should have in the access group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// The user (the product's user name).
    pub user: String,
    /// `true`: in the group; `false`: out of it.
    pub add: bool,
    /// A stable id of this delivery (product, batch, user, action): the idempotency key.
    pub id: String,
}

/// Why a call to the product failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// No answer within the connector's timeout.
    #[error("the product did not answer within {0} s")]
    Timeout(u32),
    /// The product answered with an error status.
    #[error("the product answered {status}: {body}")]
    Status { status: u16, body: String },
    /// The product could not be reached, or its answer could not be read.
    #[error("cannot reach the product: {0}")]
    Network(String),
    /// The credentials file could not be read.
    #[error("cannot read the credentials file: {0}")]
    Credentials(String),
    /// The product actor could not say who should be in the group.
    #[error("the product's state could not be read: {0}")]
    State(String),
}

impl DeliveryError {
    /// Whether the product refused the call for good: an answer retrying cannot change
    /// (400, 403, 404, 409, 422: a space that is gone, an account that may not change its
    /// permissions). Timeouts, network failures, 401, 429 and 5xx are worth retrying.
    pub fn is_refusal(&self) -> bool {
        matches!(self, DeliveryError::Status { status, .. } if [400, 403, 404, 409, 422].contains(status))
    }

    /// The `outcome` label of `slotpool_connector_deliveries_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            DeliveryError::Timeout(_) => "timeout",
            _ => "error",
        }
    }
}

/// How the connector reaches one product: the binary implements it over HTTP.
pub trait Transport {
    /// Puts `change.user` in the group or takes them out. "Already a member" and "not a
    /// member" are successes.
    fn deliver(&self, change: GroupChange) -> LocalBoxFuture<'static, Result<(), DeliveryError>>;
    /// The group's members as the product has them; `None` when the product cannot list
    /// them (a webhook).
    fn members(&self) -> LocalBoxFuture<'static, Result<Option<BTreeSet<String>>, DeliveryError>>;
    /// The product's spaces, `(key, name)`, sorted by key (Confluence only; the others
    /// answer an error).
    fn spaces(&self) -> LocalBoxFuture<'static, Result<Vec<(String, String)>, DeliveryError>>;
    /// Grants `user` the permission `operation` in `space`: the id the product gave the
    /// permission, or `None` when it says the user already has it (a success).
    fn grant_space(
        &self,
        user: &str,
        space: &str,
        operation: &SpaceOperation,
    ) -> LocalBoxFuture<'static, Result<Option<u64>, DeliveryError>>;
    /// Removes the permission `grant` of `user` in `space` (by its id, or looked up when
    /// the grant has none). A permission already gone is a success.
    fn remove_space(
        &self,
        user: &str,
        space: &str,
        grant: &Grant,
    ) -> LocalBoxFuture<'static, Result<(), DeliveryError>>;
}

/// Makes the transport of a product's connector settings (on the connector's thread).
pub type TransportFactory =
    Arc<dyn Fn(&str, &ConnectorSettings) -> Rc<dyn Transport> + Send + Sync>;

/// The transport factory, once the binary has provided one. Without it no connector runs.
pub type ConnectorSlot = Arc<OnceLock<TransportFactory>>;
