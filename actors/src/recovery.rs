//! Start-up: rebuild every actor's state from the journal, then start the actors.

use crate::clock::SharedClock;
use crate::directory::{DirectoryActor, Reconcile};
use crate::error::ActorError;
use crate::metrics::Metrics;
use crate::registry::Products;
use actix::prelude::*;
use slotpool_events::{
    DirectoryEvent, DirectoryState, Journal, ProductEvent, ProductState, StreamId,
};
use std::sync::Arc;
use uuid::Uuid;

/// The running actors: what the front ends talk to.
#[derive(Clone)]
pub struct Services {
    /// Product actors by id.
    pub products: Products,
    /// The directory actor.
    pub directory: Addr<DirectoryActor>,
}

/// Replays every stream of `journal`, starts an actor per product and the directory, and
/// repairs any deactivation a crash kept from reaching the products.
/// Must run inside an actix system. Any damaged record stops it with the stream and
/// sequence named: slotpool never serves from a journal it cannot trust.
pub async fn recover(
    journal: Journal,
    clock: SharedClock,
    metrics: Metrics,
    threads: usize,
) -> Result<Services, ActorError> {
    let products = Products::new(journal.clone(), Arc::clone(&clock), metrics, threads);
    let mut directory = DirectoryState::new();
    let directory_tip = journal
        .replay::<DirectoryEvent>(&StreamId::Directory, |env| directory.apply(&env.event))?;
    let mut recovered = 0usize;
    for stream in journal.streams()? {
        if let StreamId::Product(id) = &stream {
            let mut state = ProductState::new();
            let tip = journal.replay::<ProductEvent>(&stream, |env| state.apply(&env.event))?;
            recovered += (tip.next_sequence - 1) as usize;
            products.start_recovered(id, state, tip);
        }
    }
    tracing::info!(
        products = products.all().len(),
        events = recovered,
        "journal replayed"
    );
    let actor =
        DirectoryActor::new(directory, directory_tip, journal, clock, products.clone()).start();
    let repaired = actor
        .send(Reconcile {
            cause: Uuid::new_v4(),
        })
        .await??;
    if repaired > 0 {
        tracing::info!(users = repaired, "deactivations re-sent to every product");
    }
    Ok(Services {
        products,
        directory: actor,
    })
}
