//! How licence-use alerts reach a webhook: one delivery ([`AlertDelivery`]), the
//! [`AlertSender`] the binary implements over HTTP (body, signature), and the slot its
//! factory is provided through. Plain types, so the product actor and the registry can
//! carry the factory without depending on the alert actor.

use crate::transport::DeliveryError;
use futures_util::future::LocalBoxFuture;
use slotpool_events::{AlertWebhook, ProductEvent, Timestamp};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

/// Whether an alert fired or resolved, as a webhook says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// The alert's condition held for its `for_s`.
    Firing,
    /// The alert's condition stopped holding.
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`, the `state` of a webhook body.
    pub fn code(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One webhook delivery: what the binary POSTs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDelivery {
    /// `<product>:<journal sequence>`: the same on every attempt (`X-Slotpool-Delivery`).
    pub id: String,
    /// The product.
    pub product: String,
    /// The alert's name.
    pub alert: String,
    /// Fired or resolved.
    pub state: AlertState,
    /// When the sweep fired or resolved it.
    pub at: Timestamp,
    /// What the sweep measured, in the kind's unit.
    pub value: i64,
}

impl AlertDelivery {
    /// The delivery of the alert event recorded at `sequence` of `product`'s stream, if
    /// the event is one.
    pub fn of(product: &str, sequence: u64, event: &ProductEvent) -> Option<AlertDelivery> {
        let (alert, state, at, value) = match event {
            ProductEvent::AlertFired {
                name, at, value, ..
            } => (name, AlertState::Firing, at, value),
            ProductEvent::AlertResolved { name, at, value } => {
                (name, AlertState::Resolved, at, value)
            }
            _ => return None,
        };
        Some(AlertDelivery {
            id: format!("{product}:{sequence}"),
            product: product.to_string(),
            alert: alert.clone(),
            state,
            at: *at,
            value: *value,
        })
    }
}

/// How alerts reach a webhook: the binary implements it over HTTP (body, signature).
pub trait AlertSender {
    /// Delivers `delivery` to `webhook`; any 2xx answer is a success.
    fn send(
        &self,
        webhook: &AlertWebhook,
        delivery: &AlertDelivery,
    ) -> LocalBoxFuture<'static, Result<(), DeliveryError>>;
}

/// Makes the sender of an alert actor (on its thread).
pub type AlertSenderFactory = Arc<dyn Fn() -> Rc<dyn AlertSender> + Send + Sync>;

/// The sender factory, once the binary has provided one. Without it no webhook runs (the
/// alerts are still journaled, shown and counted).
pub type AlertSlot = Arc<OnceLock<AlertSenderFactory>>;
