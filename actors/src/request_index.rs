//! [`RequestIndex`]: which product holds each fixed-licence request, so that finding a
//! request asks one product, never all.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Which product holds each fixed-licence request (request ids are unique across
/// products): noted by each product actor for its own requests, at start and as it
/// records them. Cheap to clone.
///
/// A std `RwLock`, not an async one: it guards a map lookup or insert, never held across
/// an await.
#[derive(Clone, Default)]
pub struct RequestIndex(Arc<RwLock<HashMap<String, String>>>);

impl RequestIndex {
    /// Notes that `product` holds request `id`.
    pub(crate) fn note(&self, id: &str, product: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), product.to_string());
    }

    /// The product holding request `id`, if any product does.
    pub fn product_of(&self, id: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}
