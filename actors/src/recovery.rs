//! Start-up: rebuild every actor's state from the journal, then start the actors.

use crate::clock::SharedClock;
use crate::directory::{DirectoryActor, Reconcile};
use crate::directory_view::DirectoryView;
use crate::error::ActorError;
use crate::messages::Snapshotting;
use crate::metrics::Metrics;
use crate::registry::{Placement, Products};
use actix::prelude::*;
use slotpool_events::{DirectoryEvent, DirectoryState, ProductEvent, ProductState, StreamId};
use slotpool_journal::{Journal, JournalError, StreamTip};
use slotpool_snapshots::{SnapshotError, SnapshotStore};
use std::sync::Arc;
use uuid::Uuid;

/// The running actors: what the front ends talk to.
#[derive(Clone)]
pub struct Services {
    /// Product actors by id.
    pub products: Products,
    /// The directory actor.
    pub directory: Addr<DirectoryActor>,
    /// What slot requests read of the directory without asking the actor.
    pub directory_view: DirectoryView,
}

/// Replays every stream of `journal` (from each product's latest valid snapshot), takes a
/// snapshot every `every` events from then on, starts an actor per product on `threads`
/// threads of their own and the directory, and repairs any deactivation a crash kept from
/// reaching the products ([`Services::reconcile`]).
/// Must run inside an actix system. Any damaged record stops it with the stream and
/// sequence named: slotpool never serves from a journal it cannot trust.
pub async fn recover(
    journal: Journal,
    clock: SharedClock,
    metrics: Metrics,
    threads: usize,
    every: u64,
) -> Result<Services, ActorError> {
    let services = restore(journal, clock, metrics, Placement::Own(threads), every)?;
    services.reconcile().await?;
    Ok(services)
}

/// [`recover`] without the repair: replays the journal and creates the actors, products
/// where `placement` says. With [`Placement::HttpWorkers`] the products wait for the
/// workers, so the caller starts them and only then calls [`Services::reconcile`], which
/// waits for the products' answers.
pub fn restore(
    journal: Journal,
    clock: SharedClock,
    metrics: Metrics,
    placement: Placement,
    every: u64,
) -> Result<Services, ActorError> {
    let snapshots = SnapshotStore::open(&journal).map_err(snapshot_error)?;
    let products = Products::new(
        journal.clone(),
        Arc::clone(&clock),
        metrics.clone(),
        placement,
        Snapshotting {
            store: snapshots.clone(),
            every,
        },
    );
    let mut directory = DirectoryState::new();
    let directory_tip = journal.replay::<DirectoryEvent>(&StreamId::Directory, |env| {
        directory.apply_at(&env.event, env.timestamp)
    })?;
    let mut recovered = 0usize;
    for stream in journal.streams()? {
        if let StreamId::Product(id) = &stream {
            let (latest, skipped) = snapshots.latest_valid(&stream, &journal);
            metrics.snapshots_skipped.inc_by(skipped.len() as u64);
            if let Some(s) = &latest {
                metrics
                    .snapshot_taken
                    .with_label_values(&[id.as_str()])
                    .set(s.taken_at.as_millis() / 1000);
            }
            let (mut state, from) = match latest {
                Some(s) => (ProductState::from_image(&s.image), s.tip()),
                None => (ProductState::new(), StreamTip::default()),
            };
            let tip = journal.replay_from::<ProductEvent>(&stream, from, |env| {
                state.apply(&env.event);
                true
            })?;
            recovered += (tip.next_sequence - from.next_sequence) as usize;
            products.start_recovered(id, state, tip);
        }
    }
    tracing::info!(
        products = products.all().len(),
        events_after_snapshots = recovered,
        "journal replayed"
    );
    let actor = DirectoryActor::new(directory, directory_tip, journal, clock, products.clone());
    let directory_view = actor.view();
    Ok(Services {
        products,
        directory: actor.start(),
        directory_view,
    })
}

impl Services {
    /// Repairs what a crash may have kept from the products: every deactivation and
    /// rename the directory recorded is told to every product again (each records only
    /// what it lacks). Waits for every product's answer: with [`Placement::HttpWorkers`],
    /// call it once the workers run.
    pub async fn reconcile(&self) -> Result<usize, ActorError> {
        let repaired = self
            .directory
            .send(Reconcile {
                cause: Uuid::new_v4(),
            })
            .await??;
        if repaired > 0 {
            tracing::info!(users = repaired, "deactivations re-sent to every product");
        }
        Ok(repaired)
    }
}

fn snapshot_error(e: SnapshotError) -> ActorError {
    match e {
        SnapshotError::Journal(j) => ActorError::Journal(j),
        other => ActorError::Journal(JournalError::Io(other.to_string())),
    }
}
