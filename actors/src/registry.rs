//! The registry: routes each product id to its actor, starting actors on demand.

use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::product::ProductActor;
use actix::prelude::*;
use slotpool_events::{Journal, ProductState, StreamTip};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Every product actor, by product id. Cheap to clone.
///
/// A std `RwLock`, not an async one: it guards a map lookup or insert, is never held
/// across an `.await`, and lookups (every request) vastly outnumber inserts.
#[derive(Clone)]
pub struct Products {
    inner: Arc<Inner>,
}

struct Inner {
    actors: RwLock<HashMap<String, Addr<ProductActor>>>,
    journal: Journal,
    clock: SharedClock,
    metrics: Metrics,
    /// Threads the product actors run on, shared round-robin.
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl Products {
    /// An empty registry. Must be called inside a running actix system.
    pub fn new(journal: Journal, clock: SharedClock, metrics: Metrics, threads: usize) -> Self {
        let arbiters = (0..threads.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        Products {
            inner: Arc::new(Inner {
                actors: RwLock::new(HashMap::new()),
                journal,
                clock,
                metrics,
                arbiters,
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// The actor of an existing product (one that has a stream or was started).
    pub fn get(&self, id: &str) -> Option<Addr<ProductActor>> {
        read(&self.inner.actors).get(id).cloned()
    }

    /// The actor of `id`, started with an empty state if there is none yet.
    /// The caller has validated `id` as a product id.
    pub fn get_or_start(&self, id: &str) -> Addr<ProductActor> {
        if let Some(addr) = self.get(id) {
            return addr;
        }
        let mut actors = write(&self.inner.actors);
        if let Some(addr) = actors.get(id) {
            return addr.clone();
        }
        let addr = self.spawn(id, ProductState::new(), StreamTip::default());
        actors.insert(id.to_string(), addr.clone());
        addr
    }

    /// Starts the actor of a recovered product.
    pub fn start_recovered(&self, id: &str, state: ProductState, tip: StreamTip) {
        let addr = self.spawn(id, state, tip);
        write(&self.inner.actors).insert(id.to_string(), addr);
    }

    /// Every product id and actor, sorted by id.
    pub fn all(&self) -> Vec<(String, Addr<ProductActor>)> {
        let mut v: Vec<_> = read(&self.inner.actors)
            .iter()
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The journal the products write to.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    fn spawn(&self, id: &str, state: ProductState, tip: StreamTip) -> Addr<ProductActor> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.arbiters.len();
        let actor = ProductActor::new(
            id.to_string(),
            state,
            tip,
            self.inner.journal.clone(),
            Arc::clone(&self.inner.clock),
            self.inner.metrics.product(id),
        );
        ProductActor::start_in_arbiter(&self.inner.arbiters[i], move |_| actor)
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
