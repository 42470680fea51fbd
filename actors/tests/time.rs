//! The scheduler and sessions in virtual time: hours pass in microseconds, and every
//! notification a browser would get arrives in order.

use slotpool_actors::{
    ask, recover, Frame, Job, Membership, Metrics, Nightly, Provision, Read, SessionActor,
};
use slotpool_events::{Command, ProductKind, Settings, SlotView, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use uuid::Uuid;

mod common;
use common::World;

const T0: i64 = 1_800_000_000_000; // on every grid used here

async fn world(settings: Settings, users: &[&str]) -> World {
    let w = common::start(T0, 10_000, Nightly::default()).await;
    w.run(Command::Configure(settings))
        .await
        .expect("configure");
    for u in users {
        w.enrol(u).await;
    }
    w
}

impl World {
    async fn run(&self, command: Command) -> Result<Option<SlotView>, String> {
        self.execute(command)
            .await
            .map(|d| d.view)
            .map_err(|e| e.to_string())
    }

    async fn advance_s(&self, secs: i64) {
        let to = Timestamp::from_millis(self.clock.now_ms().as_millis() + secs * 1000);
        self.advance_to(to).await;
    }

    async fn view(&self, user: &str) -> SlotView {
        let user = user.to_string();
        self.services
            .products
            .get("p")
            .expect("product")
            .send(Read::new(move |s, now| s.slot_view(&user, now)))
            .await
            .expect("mailbox")
            .durable()
            .await
            .expect("read")
    }

    fn open_stream(&self, user: &str) -> Receiver<Frame> {
        let product = self.services.products.get("p").expect("product");
        SessionActor::open(user.to_string(), product, Duration::from_secs(3600))
    }
}

fn settings() -> Settings {
    Settings {
        inactivity_s: 60,
        warning_lead_s: 10,
        sweep_interval_s: 5,
        ..Settings::new(ProductKind::Jira, 10, 1)
    }
}

/// The next notification's event name, skipping keep-alives.
async fn next_event(rx: &mut Receiver<Frame>) -> (String, SlotView, Option<&'static str>) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a frame within 5 s")
            .expect("stream open");
        if let Frame::Notify(n) = frame {
            return (n.event.to_string(), n.view, n.reason);
        }
    }
}

#[actix_rt::test]
async fn a_stream_hears_warning_then_revocation_and_the_queue_head_its_grant() {
    let w = world(settings(), &["ann", "bob"]).await;
    w.run(Command::request("ann")).await.expect("granted");
    w.run(Command::request("bob")).await.expect("queued");
    let mut ann = w.open_stream("ann");
    let mut bob = w.open_stream("bob");
    assert_eq!(next_event(&mut ann).await.0, "granted");
    assert_eq!(next_event(&mut bob).await.0, "queue");

    // 49 s: nothing due yet (warning due at 60 - 10 = 50 s).
    w.advance_s(49).await;
    assert!(matches!(
        w.view("ann").await,
        SlotView::Granted { warned: false, .. }
    ));
    w.advance_s(1).await;
    let (event, view, _) = next_event(&mut ann).await;
    assert_eq!(event, "warning");
    let expected_revoke = Timestamp::from_millis(T0 + 60_000);
    assert_eq!(
        view,
        SlotView::Granted {
            revoke_at: expected_revoke,
            warned: true
        }
    );

    // Revoked exactly at revoke_at, and bob, at the head of the queue, is told at once.
    w.advance_s(9).await;
    assert!(matches!(w.view("ann").await, SlotView::Granted { .. }));
    w.advance_s(1).await;
    let (event, _, reason) = next_event(&mut ann).await;
    assert_eq!((event.as_str(), reason), ("revoked", Some("inactivity")));
    assert_eq!(next_event(&mut bob).await.0, "granted");
    assert!(matches!(w.view("bob").await, SlotView::Granted { .. }));
}

#[actix_rt::test]
async fn activity_after_a_warning_cancels_it_and_moves_the_deadline() {
    let w = world(settings(), &["ann"]).await;
    w.run(Command::request("ann")).await.expect("granted");
    let mut ann = w.open_stream("ann");
    assert_eq!(next_event(&mut ann).await.0, "granted");
    w.advance_s(52).await;
    assert_eq!(next_event(&mut ann).await.0, "warning");
    w.run(Command::Activity { user: "ann".into() })
        .await
        .expect("activity");
    let (event, view, _) = next_event(&mut ann).await;
    assert_eq!(event, "granted");
    // Last activity at 52 s: the deadline moves to the first sweep at or after 112 s.
    assert_eq!(
        view,
        SlotView::Granted {
            revoke_at: Timestamp::from_millis(T0 + 115_000),
            warned: false
        }
    );
    w.advance_s(50).await; // 102 s: warning due at 105 s
    assert!(matches!(
        w.view("ann").await,
        SlotView::Granted { warned: false, .. }
    ));
    w.advance_s(3).await;
    assert_eq!(next_event(&mut ann).await.0, "warning");
    w.advance_s(10).await;
    assert_eq!(next_event(&mut ann).await.2, Some("inactivity"));
}

#[actix_rt::test]
async fn coalesced_activity_is_recorded_by_the_sweep_and_keeps_the_slot() {
    let s = Settings {
        coalesce_s: Some(30),
        ..settings()
    };
    let w = world(s, &["ann"]).await;
    w.run(Command::request("ann")).await.expect("granted");
    w.advance_s(20).await;
    // Within the window: not journaled now, remembered by the actor.
    let before = w.journal.latest_ticket();
    w.run(Command::Activity { user: "ann".into() })
        .await
        .expect("activity");
    assert_eq!(
        w.journal.latest_ticket(),
        before,
        "coalesced activity writes nothing"
    );
    // The warning would be due at 50 s; the sweep records the activity of 20 s first.
    w.advance_s(35).await;
    assert!(matches!(
        w.view("ann").await,
        SlotView::Granted { warned: false, .. }
    ));
    w.advance_s(20).await; // 75 s: warning due at 85 - 10 = 75 s
    assert!(matches!(
        w.view("ann").await,
        SlotView::Granted { warned: true, .. }
    ));
}

#[actix_rt::test]
async fn auto_relogin_requeues_only_holders_whose_browser_is_open() {
    let s = Settings {
        auto_relogin: true,
        shared_slots: 2,
        queue_timer_s: 3600,
        ..settings()
    };
    let w = world(s, &["ann", "bob", "cyd"]).await;
    for u in ["ann", "bob", "cyd"] {
        w.run(Command::request(u)).await.expect("request");
    }
    // ann has a browser open; bob does not; cyd waits.
    let mut ann = w.open_stream("ann");
    assert_eq!(next_event(&mut ann).await.0, "granted");
    w.advance_s(60).await;
    // Both revoked; cyd (head) gets a slot, ann is queued again and gets the other.
    assert!(matches!(w.view("cyd").await, SlotView::Granted { .. }));
    assert!(matches!(w.view("ann").await, SlotView::Granted { .. }));
    assert_eq!(w.view("bob").await, SlotView::None);
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(next_event(&mut ann).await.0);
        if events.last().map(String::as_str) == Some("granted") {
            break;
        }
    }
    // Revoked, queued again and granted in one sweep: the browser hears the net result.
    assert_eq!(events, vec!["warning".to_string(), "granted".to_string()]);
    // Still inactive while bob now waits: ann and cyd (idle too) are revoked, bob gets
    // one slot and the other would stay free, so ann (browser open) is granted again;
    // cyd, with no browser open, is not. (Re-login ahead of a waiting member happens
    // only once without activity: `events/tests/rules.rs`.)
    w.run(Command::request("bob")).await.expect("request");
    assert!(matches!(w.view("bob").await, SlotView::Queued { .. }));
    w.advance_s(60).await;
    assert!(matches!(w.view("bob").await, SlotView::Granted { .. }));
    assert!(matches!(w.view("ann").await, SlotView::Granted { .. }));
    assert_eq!(w.view("cyd").await, SlotView::None);
}

#[actix_rt::test]
async fn queue_places_expire_without_polls_but_not_while_a_stream_is_open() {
    let s = Settings {
        queue_timer_s: 20,
        ..settings()
    };
    let w = world(s, &["ann", "bob", "cyd"]).await;
    for u in ["ann", "bob", "cyd"] {
        w.run(Command::request(u)).await.expect("request");
    }
    let _cyd_stream = w.open_stream("cyd");
    w.advance_s(25).await;
    assert_eq!(w.view("bob").await, SlotView::None, "bob never polled");
    assert!(
        matches!(w.view("cyd").await, SlotView::Queued { position: 1, .. }),
        "cyd listens"
    );
}

#[actix_rt::test]
async fn restart_keeps_pending_warnings_and_deadlines() {
    let w = world(settings(), &["ann"]).await;
    w.run(Command::request("ann")).await.expect("granted");
    w.advance_s(51).await;
    let before = w.view("ann").await;
    assert!(matches!(before, SlotView::Granted { warned: true, .. }));
    // A second set of actors recovered from the journal sees the same warning and deadline.
    let again = recover(
        w.journal.clone(),
        Arc::new(w.clock.clone()),
        Metrics::unregistered(),
        1,
        10_000,
    )
    .await
    .expect("recover");
    let after = again
        .products
        .get("p")
        .expect("product")
        .send(Read::new(|s, now| s.slot_view("ann", now)))
        .await
        .expect("mailbox")
        .durable()
        .await
        .expect("read");
    assert_eq!(before, after);
}

#[actix_rt::test]
async fn hourly_reconciliation_runs_on_the_hour_and_reschedules_itself() {
    let w = world(settings(), &["ann"]).await;
    let hour = 3_600_000;
    assert_eq!(T0 % hour, 0, "the test starts on the hour");
    let hourly = || w.scheduler.when(Job::Hourly);
    assert_eq!(
        hourly().await.expect("when"),
        Some(Timestamp::from_millis(T0 + hour))
    );
    // Nothing to reconcile: the job runs at the hour, changes nothing, and books the next.
    w.advance_s(3600).await;
    assert_eq!(
        hourly().await.expect("when"),
        Some(Timestamp::from_millis(T0 + 2 * hour))
    );
    assert!(w.services.products.get("p").is_some());
    let settings = ask(
        &w.services.products.get("p").expect("product"),
        Read::new(|s, _| s.settings().cloned()),
    )
    .await
    .expect("read")
    .expect("configured");
    assert_eq!(settings.shared_slots, 1);
}

#[actix_rt::test]
async fn requests_are_counted_by_what_they_bring_the_requester_even_through_reclaim() {
    let w = world(
        Settings {
            reclaim_on_request: true,
            ..settings()
        },
        &["ann", "bob", "cyd", "dan"],
    )
    .await;
    let count = |outcome: &str| w.metrics.requests.with_label_values(&["p", outcome]).get();
    w.run(Command::request("ann")).await.expect("ann");
    // Past ann's inactivity time, before a sweep revokes her: bob's request reclaims
    // her slot for him. The first event is ann's revocation; the outcome is bob's.
    w.clock.advance_ms(61_000);
    let bob = w.run(Command::request("bob")).await.expect("bob");
    assert!(matches!(bob, Some(SlotView::Granted { .. })), "{bob:?}");
    w.run(Command::request("cyd")).await.expect("cyd");
    // Past bob's inactivity time with cyd queued: dan's request reclaims bob's slot for
    // cyd, and dan is queued.
    w.clock.advance_ms(61_000);
    let dan = w.run(Command::request("dan")).await.expect("dan");
    assert!(matches!(dan, Some(SlotView::Queued { .. })), "{dan:?}");
    assert!(matches!(w.view("cyd").await, SlotView::Granted { .. }));
    // A fixed licence needs no slot; a stranger is refused.
    w.services
        .directory
        .send(Provision {
            product: w.services.products.get("p").expect("product"),
            change: Membership::GiveFixed("fay".into()),
            cause: Uuid::new_v4(),
        })
        .await
        .expect("mailbox")
        .expect("give fixed");
    w.run(Command::request("fay")).await.expect("fay");
    // Asking again while holding a slot changes nothing.
    w.run(Command::request("cyd")).await.expect("cyd again");
    assert!(w.run(Command::request("gus")).await.is_err());
    assert_eq!(count("granted"), 2, "ann and bob");
    assert_eq!(count("queued"), 2, "cyd and dan");
    assert_eq!(count("fixed"), 1, "fay");
    assert_eq!(count("not_member"), 1, "gus");
    assert_eq!(count("unchanged"), 1, "cyd again");
    assert_eq!(
        w.metrics
            .revocations
            .with_label_values(&["p", "reclaimed"])
            .get(),
        2
    );
}
