//! Scheduled capacity through the real scheduler in virtual time, across both
//! daylight-saving changes of Europe/Berlin: the resize happens at the instant the pure
//! calendar names (spring forward: a boundary in the gap at the first instant after it;
//! fall back: at the first occurrence, once), the queue is served in order, and a shrink
//! warns `shrink_warning_s` before and revokes at the boundary.

use slotpool_actors::{ask, Nightly, Read};
use slotpool_events::schedule::{Schedule, WeeklyWindow};
use slotpool_events::{Command, Holder, ProductKind, Settings, Timestamp};

mod common;
use common::World;

const SPRING_T0: i64 = 1_806_148_800_000; // 2027-03-27T12:00Z, a Saturday
const SPRING_BOUNDARY: i64 = 1_806_195_600_000; // 2027-03-28T01:00Z = 03:00 CEST
const FALL_T0: i64 = 1_824_897_600_000; // 2027-10-30T12:00Z, a Saturday
const FALL_START: i64 = 1_824_942_600_000; // 2027-10-31T00:30Z = 02:30 CEST
const FALL_WARNING: i64 = 1_824_979_800_000; // 2027-10-31T10:50Z
const FALL_END: i64 = 1_824_980_400_000; // 2027-10-31T11:00Z = 12:00 CET

/// One slot otherwise, three on Sundays from 02:30 to `to`, Berlin time; nobody is
/// revoked for inactivity or loses a queue place during the test's hours.
fn sunday(to: &str) -> Settings {
    Settings {
        inactivity_s: 5 * 86_400,
        warning_lead_s: 60,
        sweep_interval_s: 3_600,
        queue_timer_s: 5 * 86_400,
        timezone: Some("Europe/Berlin".into()),
        schedule: Schedule {
            weekly: vec![WeeklyWindow {
                days: vec!["sun".into()],
                from: "02:30".into(),
                to: to.into(),
                shared_slots: 3,
            }],
            dated: Vec::new(),
            shrink_warning_s: Some(600),
        },
        ..Settings::new(ProductKind::Jira, 10, 1)
    }
}

async fn world(t0: i64, settings: Settings) -> World {
    let w = common::start(t0, 10_000, Nightly::default()).await;
    w.execute(Command::Configure(settings))
        .await
        .expect("configure");
    for u in ["ann", "bob", "cat"] {
        w.enrol(u).await;
        w.execute(Command::request(u)).await.expect("request");
    }
    w
}

async fn pool(w: &World) -> (u32, Vec<Holder>, usize) {
    let addr = w.services.products.get("p").expect("product");
    ask(
        &addr,
        Read::new(|s, _| (s.effective_shared_slots(), s.holders(), s.queue().len())),
    )
    .await
    .expect("read")
}

fn names(holders: &[Holder]) -> Vec<&str> {
    holders.iter().map(|h| h.user.as_str()).collect()
}

#[actix_rt::test]
async fn spring_forward_grows_the_pool_at_the_first_instant_after_the_gap() {
    let w = world(SPRING_T0, sunday("10:00")).await;
    w.advance_to(Timestamp::from_millis(SPRING_BOUNDARY - 1))
        .await;
    let (size, holders, queued) = pool(&w).await;
    assert_eq!((size, names(&holders), queued), (1, vec!["ann"], 2));
    w.advance_to(Timestamp::from_millis(SPRING_BOUNDARY)).await;
    let (size, holders, queued) = pool(&w).await;
    assert_eq!(
        (size, names(&holders), queued),
        (3, vec!["ann", "bob", "cat"], 0)
    );
    assert!(holders[1..]
        .iter()
        .all(|h| h.since == Timestamp::from_millis(SPRING_BOUNDARY)));
}

#[actix_rt::test]
async fn fall_back_grows_once_then_warns_and_shrinks_at_the_end() {
    let w = world(FALL_T0, sunday("12:00")).await;
    w.advance_to(Timestamp::from_millis(FALL_START)).await;
    let (size, holders, _) = pool(&w).await;
    assert_eq!((size, names(&holders)), (3, vec!["ann", "bob", "cat"]));
    // 02:30 CET, an hour later, is no second start; ann uses the product then.
    w.advance_to(Timestamp::from_millis(FALL_START + 3_600_000))
        .await;
    w.execute(Command::Activity { user: "ann".into() })
        .await
        .expect("activity");
    w.advance_to(Timestamp::from_millis(FALL_WARNING - 1)).await;
    let (_, holders, _) = pool(&w).await;
    assert!(holders.iter().all(|h| h.warned_at.is_none()));
    w.advance_to(Timestamp::from_millis(FALL_WARNING)).await;
    let (_, holders, _) = pool(&w).await;
    let warned: Vec<&str> = holders
        .iter()
        .filter(|h| h.warned_at.is_some())
        .map(|h| h.user.as_str())
        .collect();
    assert_eq!(
        warned,
        ["bob", "cat"],
        "the longest-inactive, warned 600 s before"
    );
    w.advance_to(Timestamp::from_millis(FALL_END - 1)).await;
    assert_eq!(pool(&w).await.1.len(), 3);
    w.advance_to(Timestamp::from_millis(FALL_END)).await;
    let (size, holders, _) = pool(&w).await;
    assert_eq!((size, names(&holders)), (1, vec!["ann"]));
}
