//! The world the virtual-time actor tests (`time.rs`, `sync.rs`, `nightly.rs`) start
//! from: a journal in a temporary directory, a manual clock, the actors recovered from
//! the (empty) journal and a scheduler driven in virtual time.

#![allow(dead_code)] // each test file uses its own subset

use slotpool_actors::{
    ask, recover, ActorError, Execute, Executed, ManualClock, Membership, Metrics, Nightly,
    Provision, Scheduler, Services,
};
use slotpool_events::{Command, Timestamp};
use slotpool_journal::{Durability, Journal, JournalConfig};
use std::sync::Arc;
use uuid::Uuid;

/// Everything a test drives; the journal's directory lives as long as the world.
pub struct World {
    pub _dir: tempfile::TempDir,
    pub journal: Journal,
    pub clock: ManualClock,
    /// The metrics the actors update (unregistered: read directly).
    pub metrics: Metrics,
    pub services: Services,
    pub scheduler: Scheduler,
}

/// A fresh world at `t0` (ms since the epoch), snapshotting every `snapshot_every`
/// events, with the nightly job at `nightly`.
pub async fn start(t0: i64, snapshot_every: u64, nightly: Nightly) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(
        dir.path(),
        JournalConfig {
            durability: Durability::Process,
            ..JournalConfig::default()
        },
    )
    .expect("journal");
    let clock = ManualClock::new(Timestamp::from_millis(t0));
    let metrics = Metrics::unregistered();
    let services = recover(
        journal.clone(),
        Arc::new(clock.clone()),
        metrics.clone(),
        1,
        snapshot_every,
    )
    .await
    .expect("recover");
    let scheduler = Scheduler::start(services.clone(), Arc::new(clock.clone()), nightly);
    World {
        _dir: dir,
        journal,
        clock,
        metrics,
        services,
        scheduler,
    }
}

impl World {
    /// Runs `command` on product `p` and waits for its durable answer.
    pub async fn execute(&self, command: Command) -> Result<Executed, ActorError> {
        let addr = self.services.products.get_or_start("p");
        ask(
            &addr,
            Execute {
                command,
                cause: Uuid::new_v4(),
            },
        )
        .await
    }

    /// Runs the scheduler in virtual time up to `to`; returns how many jobs ran.
    pub async fn advance_to(&self, to: Timestamp) -> usize {
        self.scheduler
            .advance_to(&self.clock, to)
            .await
            .expect("advance")
    }

    /// Enrols `user` in product `p` through the directory, as the admin API does.
    pub async fn enrol(&self, user: &str) {
        let product = self.services.products.get("p").expect("product");
        self.services
            .directory
            .send(Provision {
                product,
                change: Membership::Enrol(user.to_string()),
                cause: Uuid::new_v4(),
            })
            .await
            .expect("mailbox")
            .expect("enrol");
    }
}
