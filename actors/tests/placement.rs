//! Where product actors run (`Placement`). On the HTTP workers' threads, products exist
//! before the workers do (recovery starts them first): they must wait for the workers,
//! keep every message sent to them meanwhile, and then run on the workers' threads,
//! shared among them.

use actix::prelude::*;
use slotpool_actors::{ask, restore, ManualClock, Metrics, Placement, Products, Read, Services};
use slotpool_events::Timestamp;
use slotpool_journal::{Durability, Journal, JournalConfig};
use std::sync::Arc;
use std::thread::ThreadId;

/// The actors of an empty journal in a temporary directory (kept as long as the guard),
/// products placed as `placement` says.
fn restored(placement: Placement) -> (tempfile::TempDir, Services) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = JournalConfig {
        durability: Durability::Process,
        ..JournalConfig::default()
    };
    let journal = Journal::open(dir.path(), config).expect("open journal");
    let clock = ManualClock::new(Timestamp::from_millis(1_800_000_000_000));
    let services = restore(
        journal,
        Arc::new(clock),
        Metrics::unregistered(),
        placement,
        10_000,
    )
    .expect("restore an empty journal");
    (dir, services)
}

/// The thread product `addr` runs on, as its own answer to a read.
async fn thread_of(addr: Addr<slotpool_actors::ProductActor>) -> ThreadId {
    ask(&addr, Read::maybe(|_, _| std::thread::current().id()))
        .await
        .expect("the product answers")
}

/// Starts a thread the way an HTTP worker does, calling [`Products::run_here`] on it first;
/// returns the thread (kept alive by the caller) and its id.
async fn worker(products: &Products) -> (Arbiter, ThreadId) {
    let arbiter = Arbiter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let products = products.clone();
    assert!(arbiter.spawn_fn(move || {
        products.run_here();
        let _ = tx.send(std::thread::current().id());
    }));
    let id = rx.await.expect("the worker thread started");
    (arbiter, id)
}

#[actix_rt::test]
async fn products_made_before_the_workers_run_on_their_threads_and_lose_no_message() {
    let (_dir, services) = restored(Placement::HttpWorkers(2));
    let products = &services.products;
    let a = products.get_or_start("a");
    let b = products.get_or_start("b");
    // Asked before any worker runs: held in the product's mailbox until it is placed.
    let early = actix_rt::spawn(thread_of(a.clone()));

    // One worker is not all of them: the products still wait for the second.
    let (_w1, first) = worker(products).await;
    let (_w2, second) = worker(products).await;
    let workers = [first, second];

    let early = early.await.expect("the early read's task");
    assert!(
        workers.contains(&early),
        "product a runs on a worker's thread"
    );
    assert_eq!(thread_of(a).await, early, "an actor stays on its thread");
    let on_b = thread_of(b).await;
    assert!(
        workers.contains(&on_b),
        "product b runs on a worker's thread"
    );
    assert_ne!(
        early, on_b,
        "the waiting products are shared among the workers"
    );

    // A product made once the workers run goes straight to one of them.
    let on_c = thread_of(products.get_or_start("c")).await;
    assert!(
        workers.contains(&on_c),
        "product c runs on a worker's thread"
    );
    assert_ne!(on_c, std::thread::current().id());

    // The repair of recovery waits for the products' answers: it ends once they are
    // placed (with nothing to repair in an empty directory).
    assert_eq!(services.reconcile().await.expect("reconcile"), 0);
}

#[actix_rt::test]
async fn products_on_threads_of_their_own_start_at_once() {
    let (_dir, services) = restored(Placement::Own(1));
    let on = thread_of(services.products.get_or_start("a")).await;
    assert_ne!(on, std::thread::current().id());
    // No HTTP worker is waited for: a worker starting later changes nothing.
    let (_w, worker) = worker(&services.products).await;
    assert_ne!(thread_of(services.products.get_or_start("b")).await, worker);
}
