//! The nightly job asks the journal to pack each stream's loose records into chunks, in
//! virtual time: it runs at the nightly time and not before (the hourly jobs before it
//! are other jobs), and replay reads the same events and rebuilds the same state from the
//! chunks. The journal packs what it appends itself ([`slotpool_journal`]'s tail), so what
//! the job finds loose is what recovery inserted and the first records of a stream; the
//! journal crate's own tests pack long runs of loose records.
//!
//! Compaction runs on the journal's own thread; `Journal::shutdown` stops that thread
//! only after it has done what it was asked, so the layout read after a shutdown shows
//! every compaction asked for until then.

use slotpool_actors::{ask, Job, Nightly, Read};
use slotpool_events::{
    Command, Counts, Holder, ProductEvent, ProductKind, ProductState, QueuePlace, Settings,
    StreamId, Timestamp,
};
use slotpool_journal::{StreamLayout, CHUNK_RECORDS};

mod common;
use common::World;

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;
/// The nightly job's time in this test: 10:30 UTC, after two hourly jobs.
const NIGHTLY_AT: i64 = T0 + 2 * HOUR + HOUR / 2;
/// Request and release cycles: enough records for several chunks.
const CYCLES: u64 = 2_600;

/// A product whose stream holds a few thousand records, all written before the nightly
/// time, with nobody holding a slot at the end.
async fn world() -> World {
    let nightly = Nightly {
        at: chrono::NaiveTime::from_hms_opt(10, 30, 0).expect("a time"),
        tz: chrono_tz::Tz::UTC,
    };
    let w = common::start(T0, 100_000, nightly).await;
    w.run(Command::Configure(Settings::new(ProductKind::Jira, 10, 2)))
        .await;
    w.enrol("ann").await;
    for _ in 0..CYCLES {
        w.run(Command::request("ann")).await;
        w.run(Command::Release { user: "ann".into() }).await;
    }
    w
}

impl World {
    async fn run(&self, command: Command) {
        self.execute(command).await.expect("accepted");
    }

    /// What the live product shows: holders, queue, counts.
    async fn live(&self) -> (Vec<Holder>, Vec<QueuePlace>, Counts) {
        let addr = self.services.products.get("p").expect("product");
        ask(
            &addr,
            Read::new(|s, _| (s.holders(), s.queue(), s.counts())),
        )
        .await
        .expect("read")
    }

    /// Stops the journal's threads (the compactor after what it was asked to do) and
    /// reports how the product's stream is stored.
    fn shut_down_and_layout(&self) -> StreamLayout {
        self.journal.shutdown().expect("shutdown");
        self.journal.layout(&stream()).expect("layout")
    }

    /// Every event of the stream, and the state they fold into, read from the journal.
    fn replayed(&self) -> (Vec<(u64, ProductEvent)>, ProductState) {
        let mut events = Vec::new();
        let mut state = ProductState::new();
        self.journal
            .replay::<ProductEvent>(&stream(), |env| {
                state.apply(&env.event);
                events.push((env.sequence, env.event));
            })
            .expect("replay");
        (events, state)
    }
}

fn stream() -> StreamId {
    StreamId::product("p").expect("a product id")
}

/// Records in the stream: configure, enrol, then a grant and a release per cycle.
const RECORDS: u64 = 2 + 2 * CYCLES;

#[actix_rt::test]
async fn the_nightly_job_runs_at_its_time_and_not_before() {
    let w = world().await;
    assert_eq!(
        w.scheduler.when(Job::Nightly).await.expect("when"),
        Some(Timestamp::from_millis(NIGHTLY_AT))
    );
    // Two hourly jobs and every sweep up to a second before the nightly job.
    let ran = w
        .advance_to(Timestamp::from_millis(NIGHTLY_AT - 1_000))
        .await;
    assert!(ran >= 2, "the hourly jobs ran ({ran} jobs)");
    assert_eq!(
        w.scheduler.when(Job::Nightly).await.expect("when"),
        Some(Timestamp::from_millis(NIGHTLY_AT)),
        "the nightly job has not run yet"
    );
    // Whatever is where, every record is stored once.
    let layout = w.shut_down_and_layout();
    assert_eq!(layout.chunked + layout.loose, RECORDS, "{layout:?}");
}

#[actix_rt::test]
async fn the_nightly_job_packs_old_records_into_chunks_and_replay_is_unchanged() {
    let w = world().await;
    let (events_before, _) = w.replayed();
    assert_eq!(events_before.len() as u64, RECORDS);
    w.advance_to(Timestamp::from_millis(NIGHTLY_AT + 1_000))
        .await;
    assert_eq!(
        w.scheduler.when(Job::Nightly).await.expect("when"),
        Some(Timestamp::from_millis(NIGHTLY_AT + 24 * HOUR)),
        "the nightly job ran and booked the next night"
    );
    let live = w.live().await;
    // Packed but the stream's first record (it goes in loose with the stream's index
    // entry): by the journal as it wrote them, into chunks of at most CHUNK_RECORDS.
    let layout = w.shut_down_and_layout();
    assert_eq!(layout.loose, 1, "{layout:?}");
    assert_eq!(layout.chunked, RECORDS - 1, "{layout:?}");
    assert!(
        layout.chunks >= (RECORDS - 1).div_ceil(CHUNK_RECORDS),
        "{layout:?}"
    );
    // The same records come back from the chunks, and fold into what the actor holds.
    let (events_after, state) = w.replayed();
    assert_eq!(events_after, events_before);
    assert_eq!((state.holders(), state.queue(), state.counts()), live);
    assert_eq!(state.counts().members, 1);
    assert!(w.journal.verify().is_ok());
}
