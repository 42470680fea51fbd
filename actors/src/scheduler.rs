//! The scheduler: sends every "it is now T" command: product sweeps at their due times,
//! the hourly tier reconciliation, the nightly hygiene, each product's scheduled
//! source-group sync, each product's scheduled capacity (the boundaries of its schedule
//! and the shrink warnings before them).
//!
//! The [`SchedulerActor`] owns the [`Agenda`]. A driver pops due jobs and runs them one
//! at a time, each at its own instant: in `serve` a task that sleeps until the next job
//! (woken early when a product asks for an earlier sweep); in tests
//! [`Scheduler::advance_to`], which moves a [`ManualClock`] from job to job, so hours of
//! virtual time pass in microseconds and in the same order as they would in real time.
//! Decisions stay in the pure core: the scheduler only says what time it is.

use crate::agenda::{next_hour, next_local_time, Agenda, Job};
use crate::clock::{ManualClock, SharedClock};
use crate::directory::{Reconcile, SyncProduct};
use crate::durable::ask;
use crate::error::ActorError;
// Moved to `messages`; kept reachable at its old path.
pub use crate::messages::Schedule;
use crate::messages::{Execute, Read, Sweep, MAILBOX_CAPACITY};
use crate::recovery::Services;
use actix::prelude::*;
use chrono::NaiveTime;
use chrono_tz::Tz;
use slotpool_events::{Command, Refusal, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// Takes the earliest job due at or before `upto`.
#[derive(Debug, Message)]
#[rtype(result = "Option<(Timestamp, Job)>")]
pub struct PopDue {
    pub upto: Timestamp,
}

/// The instant of the earliest job.
#[derive(Debug, Message)]
#[rtype(result = "Option<Timestamp>")]
pub struct NextDue;

/// When `job` is next scheduled.
#[derive(Debug, Message)]
#[rtype(result = "Option<Timestamp>")]
pub struct When {
    pub job: Job,
}

/// Owns the agenda.
pub struct SchedulerActor {
    agenda: Agenda,
    wake: Arc<Notify>,
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Handler<Schedule> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, msg: Schedule, _ctx: &mut Self::Context) {
        if self.agenda.schedule(msg.job, msg.at) {
            self.wake.notify_one();
        }
    }
}

impl Handler<PopDue> for SchedulerActor {
    type Result = Option<(Timestamp, Job)>;

    fn handle(&mut self, msg: PopDue, _ctx: &mut Self::Context) -> Self::Result {
        self.agenda.pop_due(msg.upto)
    }
}

impl Handler<When> for SchedulerActor {
    type Result = Option<Timestamp>;

    fn handle(&mut self, msg: When, _ctx: &mut Self::Context) -> Self::Result {
        self.agenda.when(&msg.job)
    }
}

impl Handler<NextDue> for SchedulerActor {
    type Result = Option<Timestamp>;

    fn handle(&mut self, _msg: NextDue, _ctx: &mut Self::Context) -> Self::Result {
        self.agenda.next()
    }
}

/// When the nightly hygiene runs: a wall-clock time in a time zone.
#[derive(Debug, Clone, Copy)]
pub struct Nightly {
    pub at: NaiveTime,
    pub tz: Tz,
}

impl Default for Nightly {
    fn default() -> Self {
        Nightly {
            at: NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default(),
            tz: Tz::UTC,
        }
    }
}

/// The scheduler and what its jobs talk to. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    addr: Addr<SchedulerActor>,
    services: Services,
    clock: SharedClock,
    nightly: Nightly,
    wake: Arc<Notify>,
}

impl Scheduler {
    /// Starts the scheduler actor, schedules the hourly and nightly jobs and a sweep of
    /// every product, and lets products ask for their own sweeps from now on.
    pub fn start(services: Services, clock: SharedClock, nightly: Nightly) -> Scheduler {
        let wake = Arc::new(Notify::new());
        let addr = SchedulerActor {
            agenda: Agenda::default(),
            wake: Arc::clone(&wake),
        }
        .start();
        let now = clock.now();
        addr.do_send(Schedule {
            job: Job::Hourly,
            at: next_hour(now),
        });
        addr.do_send(Schedule {
            job: Job::Nightly,
            at: next_local_time(now, nightly.at, nightly.tz),
        });
        services.products.set_scheduler(addr.clone().recipient());
        for (id, _) in services.products.all() {
            addr.do_send(Schedule {
                job: Job::Sweep(id.clone()),
                at: now,
            });
            // Runs at once for a product with a sync schedule, then every interval.
            addr.do_send(Schedule {
                job: Job::Sync(id.clone()),
                at: now,
            });
            // Applies the size the schedule gives now (a server down across a boundary
            // catches up at start), then follows the schedule.
            addr.do_send(Schedule {
                job: Job::Capacity(id),
                at: now,
            });
        }
        Scheduler {
            addr,
            services,
            clock,
            nightly,
            wake,
        }
    }

    /// The actor's address (for tests and wiring).
    pub fn addr(&self) -> &Addr<SchedulerActor> {
        &self.addr
    }

    /// When `job` is next scheduled (for operators and tests).
    pub async fn when(&self, job: Job) -> Result<Option<Timestamp>, ActorError> {
        Ok(self.addr.send(When { job }).await?)
    }

    /// Runs every job due at or before `upto`, earliest first, one at a time.
    /// `on_job` hears each job's instant before it runs (virtual time sets the clock).
    pub async fn run_due(
        &self,
        upto: Timestamp,
        on_job: impl Fn(Timestamp),
    ) -> Result<usize, ActorError> {
        let mut ran = 0;
        while let Some((at, job)) = self.addr.send(PopDue { upto }).await? {
            on_job(at);
            self.run(at, job).await?;
            ran += 1;
        }
        Ok(ran)
    }

    /// Virtual time: moves `clock` from each due job to the next up to `to`, running each
    /// at its own instant, then leaves the clock at `to`.
    pub async fn advance_to(
        &self,
        clock: &ManualClock,
        to: Timestamp,
    ) -> Result<usize, ActorError> {
        let ran = self
            .run_due(to, |at| {
                if at > clock.now_ms() {
                    clock.set(at);
                }
            })
            .await?;
        if to > clock.now_ms() {
            clock.set(to);
        }
        Ok(ran)
    }

    /// Real time: a task that sleeps until the next job, runs what is due, and repeats.
    pub fn spawn_realtime(self) {
        actix::spawn(async move {
            loop {
                let now = self.clock.now();
                if let Err(e) = self.run_due(now, |_| {}).await {
                    tracing::warn!(error = %e, "scheduled job failed; retrying at the next due time");
                }
                let next = self.addr.send(NextDue).await.ok().flatten();
                let now = self.clock.now();
                // Never sleep long: a wall clock that jumps is caught within a minute.
                let wait = next.map_or(60_000, |n| {
                    (n.as_millis() - now.as_millis()).clamp(0, 60_000)
                });
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = self.wake.notified() => {}
                }
            }
        });
    }

    async fn run(&self, at: Timestamp, job: Job) -> Result<(), ActorError> {
        let cause = Uuid::new_v4();
        match job {
            Job::Sweep(product) => {
                if let Some(addr) = self.services.products.get(&product) {
                    if let Some(next) = ask(&addr, Sweep { cause }).await? {
                        self.addr.do_send(Schedule {
                            job: Job::Sweep(product),
                            at: next,
                        });
                    }
                }
            }
            Job::Capacity(product) => {
                let Some(addr) = self.services.products.get(&product) else {
                    return Ok(());
                };
                let applied = ask(
                    &addr,
                    Execute {
                        command: Command::ScheduleCapacity,
                        cause,
                    },
                )
                .await;
                match applied {
                    // A product started but never configured has no schedule.
                    Ok(_) | Err(ActorError::Refused(Refusal::UnknownProduct)) => {}
                    Err(e) => return Err(e),
                }
                // After the product's own now (a job that ran late does not run twice).
                let next = ask(
                    &addr,
                    Read::maybe(move |s, now| s.next_capacity_job(now.max(at))),
                )
                .await?;
                if let Some(next) = next {
                    self.addr.do_send(Schedule {
                        job: Job::Capacity(product),
                        at: next,
                    });
                }
            }
            Job::Hourly => {
                for (_, addr) in self.services.products.all() {
                    let reconciled = ask(
                        &addr,
                        Execute {
                            command: Command::ReconcileTier,
                            cause,
                        },
                    )
                    .await;
                    match reconciled {
                        // A product started but never configured has nothing to reconcile.
                        Ok(_) | Err(ActorError::Refused(Refusal::UnknownProduct)) => {}
                        Err(e) => return Err(e),
                    }
                }
                self.addr.do_send(Schedule {
                    job: Job::Hourly,
                    at: next_hour(at),
                });
            }
            Job::Sync(product) => {
                let Some(addr) = self.services.products.get(&product) else {
                    return Ok(());
                };
                let interval = ask(
                    &addr,
                    Read::maybe(|s, _| s.settings().map_or(0, |s| s.sync_interval_s)),
                )
                .await?;
                if interval == 0 {
                    return Ok(());
                }
                let report = self
                    .services
                    .directory
                    .send(SyncProduct {
                        id: product.clone(),
                        product: addr,
                        trigger: "scheduled",
                        cause,
                    })
                    .await?;
                match report {
                    Ok(r) => tracing::info!(
                        product = %product,
                        added = r.added.len(),
                        removed = r.removed.len(),
                        skipped = r.skipped.len(),
                        "scheduled sync done"
                    ),
                    Err(e) => {
                        tracing::warn!(product = %product, error = %e, "scheduled sync failed")
                    }
                }
                self.addr.do_send(Schedule {
                    job: Job::Sync(product),
                    at: at.plus_secs(interval),
                });
            }
            Job::Nightly => {
                let repaired = self.services.directory.send(Reconcile { cause }).await??;
                // The quiet hour is when the journal packs the day's records into chunks
                // (fast replay for audit and verify), on its own thread.
                let journal = self.services.products.journal();
                match journal.streams() {
                    Ok(streams) => streams
                        .iter()
                        .for_each(|s| journal.compact_in_background(s)),
                    Err(e) => tracing::warn!(error = %e, "nightly compaction not started"),
                }
                tracing::info!(deactivated_users = repaired, "nightly hygiene done");
                self.addr.do_send(Schedule {
                    job: Job::Nightly,
                    at: next_local_time(at, self.nightly.at, self.nightly.tz),
                });
            }
        }
        Ok(())
    }
}
