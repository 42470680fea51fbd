//! The time rules of docs/design.md (Behaviour 2-7), one test per rule with its edge cases, in
//! virtual time: every command is decided and applied at an instant the test sets, and
//! the exact events and the views (`slot_view`, `holders`, `queue`, `notices`,
//! `next_tick`) are asserted. Every command's events are also replayed from scratch and
//! must give the same observable state (see `common::Sim`).
//!
//! The clock starts at `at(0)`, a whole hour since the epoch, so `at(n)` lies on the
//! sweep grid whenever the sweep interval divides `n`.

mod common;

use common::*;
use slotpool_events::stream::valid_product_id;
use slotpool_events::{
    Blocked, Command, Holder, LeaveReason, Notice, Presence, ProductEvent, ProductState, Refusal,
    Reservation, ReservationUse, RevokeReason, Settings, SlotView, Standing, StreamId, Timestamp,
};
use std::collections::HashMap;

fn view(sim: &Sim, user: &str) -> SlotView {
    sim.state.slot_view(user, sim.now)
}

fn granted_view(revoke_at: Timestamp, warned: bool) -> SlotView {
    SlotView::Granted { revoke_at, warned }
}

fn last_activity(sim: &Sim, user: &str) -> Timestamp {
    match sim.state.user(user).map(|e| e.standing) {
        Some(Standing::Holding { last_activity, .. }) => last_activity,
        other => panic!("{user} holds no slot: {other:?}"),
    }
}

fn queue_of(sim: &Sim) -> Vec<String> {
    sim.state.queue().into_iter().map(|q| q.user).collect()
}

fn recent(entries: &[(&str, Timestamp)]) -> Presence {
    Presence {
        recent_activity: recent_map(entries),
        ..Presence::default()
    }
}

fn recent_map(entries: &[(&str, Timestamp)]) -> HashMap<String, Timestamp> {
    entries.iter().map(|(u, t)| (u.to_string(), *t)).collect()
}

fn record(entries: &[(&str, Timestamp)]) -> Command {
    Command::RecordActivity {
        recent: recent_map(entries),
    }
}

// ---------------------------------------------------------------------------------------
// Rule 3: warning, revocation, activity
// ---------------------------------------------------------------------------------------

#[test]
fn activity_at_the_revocation_instant_keeps_the_slot() {
    // inactivity 60 s, lead 10 s, sweep every 30 s: granted at 0, warned at 50, due at 60.
    let mut sim = Sim::with_holders(settings(2, 60, 10, 30), &["a", "b"]);
    assert_eq!(view(&sim, "a"), granted_view(at(60), false));
    assert_eq!(sim.set(30).tick(), vec![]);
    assert_eq!(
        sim.set(50).tick(),
        vec![warned("a", at(50), at(60)), warned("b", at(50), at(60))]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(60), true));
    let h = &sim.state.holders()[0];
    assert_eq!((h.warned_at, h.revoke_at), (Some(at(50)), at(60)));

    // a uses the product at the very instant of revocation, before the sweep runs.
    assert_eq!(sim.set(60).activity("a"), vec![activity("a", at(60))]);
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
    // The sweep at that same instant keeps a and revokes b, who did nothing.
    assert_eq!(
        sim.tick(),
        vec![revoked("b", RevokeReason::Inactivity, at(60))]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
    assert_eq!(view(&sim, "b"), SlotView::None);
}

#[test]
fn coalesced_activity_at_the_revocation_instant_keeps_the_slot() {
    let mut sim = Sim::with_holders(settings(2, 60, 10, 30), &["a", "b"]);
    sim.set(50).tick();
    // The live service saw a at 60 and b "after" the sweep's instant (not yet true).
    let events = sim
        .set(60)
        .tick_with(recent(&[("a", at(60)), ("b", at_ms(60_001))]));
    assert_eq!(
        events,
        vec![
            activity("a", at(60)),
            revoked("b", RevokeReason::Inactivity, at(60))
        ]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
}

#[test]
fn activity_after_a_warning_cancels_it_and_inactivity_warns_again() {
    let mut sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    assert_eq!(sim.set(50).tick(), vec![warned("a", at(50), at(60))]);
    assert_eq!(sim.set(55).activity("a"), vec![activity("a", at(55))]);
    // 55 + 60 = 115: the next sweep at or after it is at 120.
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
    assert_eq!(sim.state.holders()[0].warned_at, None);
    assert_eq!(
        sim.set(60).tick(),
        vec![],
        "the cancelled warning revokes nothing"
    );
    assert_eq!(sim.state.next_tick(sim.now), Some(at(90)));
    assert_eq!(sim.set(90).tick(), vec![]);
    assert_eq!(sim.state.next_tick(sim.now), Some(at(110)));
    assert_eq!(sim.set(110).tick(), vec![warned("a", at(110), at(120))]);
    assert_eq!(
        sim.set(120).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(120))]
    );
    assert_eq!(view(&sim, "a"), SlotView::None);
    assert_eq!(sim.state.counts().holders, 0);
}

#[test]
fn revocations_fall_on_the_sweep_grid_at_the_time_shown() {
    // inactivity 45 s, sweep 30 s: granted at 7, inactive from 52, revoked at 60.
    let mut sim = Sim::new(settings(1, 45, 10, 30));
    sim.enrol("a");
    assert_eq!(sim.set(7).request("a"), vec![granted("a", at(7))]);
    assert_eq!(view(&sim, "a"), granted_view(at(60), false));
    assert_eq!(sim.state.holders()[0].revoke_at, at(60));
    assert_eq!(sim.set(30).tick(), vec![]);
    assert_eq!(sim.state.next_tick(sim.now), Some(at(50)));
    assert_eq!(sim.set(50).tick(), vec![warned("a", at(50), at(60))]);
    assert_eq!(view(&sim, "a"), granted_view(at(60), true));
    // A sweep between grid points revokes nothing.
    assert_eq!(sim.set(55).tick(), vec![]);
    assert_eq!(sim.state.next_tick(sim.now), Some(at(60)));
    let events = sim.set(60).tick();
    assert_eq!(events, vec![revoked("a", RevokeReason::Inactivity, at(60))]);
    assert_eq!((at(60).as_millis() - T0_MS) % 30_000, 0);

    // A late sweep (the warning was due at 50, the first sweep runs at 58): the holder
    // still gets the whole lead, so the revocation moves to exactly one lead after the
    // warning (68), off the grid, not to the next grid point (90).
    let mut sim = Sim::new(settings(1, 45, 10, 30));
    sim.enrol("a");
    sim.set(7).request("a");
    assert_eq!(sim.set(58).tick(), vec![warned("a", at(58), at(68))]);
    assert_eq!(view(&sim, "a"), granted_view(at(68), true));
    assert_eq!(sim.state.next_tick(sim.now), Some(at(60)), "the grid first");
    assert_eq!(
        sim.set(60).tick(),
        vec![],
        "less than the lead after the warning"
    );
    assert_eq!(
        sim.state.next_tick(sim.now),
        Some(at(68)),
        "then the revocation"
    );
    assert_eq!(sim.set_at(at_ms(67_999)).tick(), vec![]);
    assert_eq!(
        sim.set(68).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(68))]
    );

    // Sub-second times: granted at 7.5 s, inactive from 52.5 s, still revoked at 60.
    let mut sim = Sim::new(settings(1, 45, 10, 30));
    sim.enrol("a");
    sim.set_at(at_ms(7_500)).request("a");
    assert_eq!(view(&sim, "a"), granted_view(at(60), false));
}

#[test]
fn a_holder_is_never_revoked_before_the_inactivity_time() {
    // The warning can come before the inactivity time has passed, the revocation never:
    // inactivity 40 s on a 30 s grid revokes at 60 (not at 30), warned at 50.
    let mut sim = Sim::with_holders(settings(1, 40, 10, 30), &["a"]);
    assert_eq!(sim.set(30).tick(), vec![]);
    assert_eq!(sim.set(40).tick(), vec![]);
    assert_eq!(sim.set(50).tick(), vec![warned("a", at(50), at(60))]);
    assert_eq!(
        sim.set(60).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(60))]
    );
}

// ---------------------------------------------------------------------------------------
// Rule 4: reclaim on request
// ---------------------------------------------------------------------------------------

fn reclaiming(shared: u32) -> Settings {
    let mut s = settings(shared, 60, 10, 30);
    s.reclaim_on_request = true;
    s
}

#[test]
fn reclaim_gives_the_slot_to_the_queue_head_and_queues_the_requester() {
    let mut sim = Sim::with_holders(reclaiming(2), &["a", "b"]);
    sim.enrol("c");
    assert_eq!(sim.set(10).request("c"), vec![queued("c", at(10))]);
    assert_eq!(sim.set(30).activity("a"), vec![activity("a", at(30))]);
    sim.enrol("d");
    // b (last active at 0) is 64 s inactive: its slot goes to c, the queue head; d waits.
    assert_eq!(
        sim.set(64).request("d"),
        vec![
            revoked("b", RevokeReason::Reclaimed, at(64)),
            granted("c", at(64)),
            queued("d", at(64)),
        ]
    );
    assert_eq!(queue_of(&sim), vec!["d"]);
    // 64 + 60 = 124: the sweep at 150 would revoke c.
    assert_eq!(view(&sim, "c"), granted_view(at(150), false));
    assert_eq!(view(&sim, "b"), SlotView::None);
    // Without a warning first.
    assert!(!sim
        .journal
        .iter()
        .any(|e| matches!(e, ProductEvent::WarningIssued { .. })));
}

#[test]
fn reclaim_with_an_empty_queue_gives_the_slot_to_the_requester() {
    let mut sim = Sim::with_holders(reclaiming(2), &["a", "b"]);
    sim.set(30).activity("a");
    sim.enrol("c");
    assert_eq!(
        sim.set(61).request("c"),
        vec![
            revoked("b", RevokeReason::Reclaimed, at(61)),
            granted("c", at(61))
        ]
    );
    assert!(sim.state.queue().is_empty());
    // A warned holder past the inactivity time is taken the same way.
    let mut sim = Sim::with_holders(reclaiming(1), &["a"]);
    assert_eq!(sim.set(50).tick(), vec![warned("a", at(50), at(60))]);
    sim.enrol("b");
    assert_eq!(
        sim.set(60).request("b"),
        vec![
            revoked("a", RevokeReason::Reclaimed, at(60)),
            granted("b", at(60))
        ]
    );
    assert_eq!(sim.tick(), vec![], "the reclaimed holder's warning is gone");
}

#[test]
fn reclaim_never_takes_a_holder_within_the_inactivity_time() {
    let mut sim = Sim::with_holders(reclaiming(2), &["a", "b"]);
    sim.enrol("c");
    sim.enrol("d");
    assert_eq!(
        sim.set_at(at_ms(59_999)).request("c"),
        vec![queued("c", at_ms(59_999))]
    );
    // At exactly the inactivity time it may: a and b both last active at 0, a first by
    // name; the queue head c gets the slot.
    assert_eq!(
        sim.set(60).request("d"),
        vec![
            revoked("a", RevokeReason::Reclaimed, at(60)),
            granted("c", at(60)),
            queued("d", at(60)),
        ]
    );
    // Without the option, a full pool means the queue, however inactive the holders.
    let mut sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    sim.enrol("b");
    assert_eq!(sim.set(3_000).request("b"), vec![queued("b", at(3_000))]);
}

// ---------------------------------------------------------------------------------------
// Lock time
// ---------------------------------------------------------------------------------------

#[test]
fn lock_time_refuses_a_manual_request_until_it_ends() {
    let mut s = settings(1, 60, 10, 30);
    s.lock_s = 120;
    let mut sim = Sim::with_holders(s, &["a"]);
    sim.set(50).tick();
    assert_eq!(
        sim.set(60).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(60))]
    );
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(180) });
    assert_eq!(sim.state.user("a").unwrap().locked_until, Some(at(180)));
    // Requests while locked: nothing happens, no queue place either.
    assert_eq!(sim.set(100).request("a"), vec![]);
    assert_eq!(sim.set_at(at_ms(179_999)).request("a"), vec![]);
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(180) });
    assert!(sim.state.queue().is_empty());
    assert_eq!(sim.state.counts().holders, 0);
    // Others may take the free slot meanwhile... and give it back.
    sim.enrol("b");
    assert_eq!(sim.request("b"), vec![granted("b", at_ms(179_999))]);
    sim.release("b");
    // From the end of the lock on, a request works as usual.
    sim.set(180);
    assert_eq!(view(&sim, "a"), SlotView::None);
    assert_eq!(sim.request("a"), vec![granted("a", at(180))]);
    assert_eq!(sim.state.user("a").unwrap().locked_until, None);

    // No lock time: a may ask again at once.
    let mut sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    sim.set(50).tick();
    sim.set(60).tick();
    assert_eq!(view(&sim, "a"), SlotView::None);
    assert_eq!(sim.request("a"), vec![granted("a", at(60))]);
}

// ---------------------------------------------------------------------------------------
// Auto re-login
// ---------------------------------------------------------------------------------------

fn relogin(shared: u32, lock_s: u32) -> Settings {
    let mut s = settings(shared, 60, 10, 30);
    s.auto_relogin = true;
    s.lock_s = lock_s;
    s
}

#[test]
fn auto_relogin_requeues_a_connected_holder_exactly_once() {
    let mut sim = Sim::with_holders(relogin(1, 600), &["a"]);
    sim.enrol("b");
    assert_eq!(sim.set(5).request("b"), vec![queued("b", at(5))]);
    let both = || connected(&["a", "b"]);
    assert_eq!(
        sim.set(50).tick_with(both()),
        vec![warned("a", at(50), at(60))]
    );
    assert_eq!(
        sim.set(60).tick_with(both()),
        vec![
            revoked("a", RevokeReason::Inactivity, at(60)),
            requeued("a", at(60)),
            granted("b", at(60)),
        ]
    );
    assert_eq!(queue_of(&sim), vec!["a"]);
    assert!(matches!(
        view(&sim, "a"),
        SlotView::Queued { position: 1, .. }
    ));
    // b idles too; a's queue place gives a the slot although a's lock runs until 660.
    assert_eq!(
        sim.set(110).tick_with(both()),
        vec![warned("b", at(110), at(120))]
    );
    assert_eq!(
        sim.set(120).tick_with(both()),
        vec![
            revoked("b", RevokeReason::Inactivity, at(120)),
            requeued("b", at(120)),
            granted("a", at(120)),
        ]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(180), false));
    // a never used the product since the re-login: the next revocation is final.
    sim.set(170).tick_with(both());
    assert_eq!(
        sim.set(180).tick_with(both()),
        vec![
            revoked("a", RevokeReason::Inactivity, at(180)),
            granted("b", at(180)),
        ]
    );
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(780) });
    // Activity makes the next re-login possible again: b uses the product at 200.
    assert_eq!(sim.set(200).activity("b"), vec![activity("b", at(200))]);
    assert!(!sim.state.user("b").unwrap().relogin_used);
    assert_eq!(
        sim.set(260).tick_with(both()),
        vec![warned("b", at(260), at(270))]
    );
    // Requeued into an empty queue with a free slot: b is granted again at once.
    assert_eq!(
        sim.set(270).tick_with(both()),
        vec![
            revoked("b", RevokeReason::Inactivity, at(270)),
            requeued("b", at(270)),
            granted("b", at(270)),
        ]
    );
}

#[test]
fn auto_relogin_needs_an_open_stream() {
    let mut sim = Sim::with_holders(relogin(1, 600), &["a"]);
    sim.enrol("b");
    sim.set(5).request("b");
    sim.set(50).tick_with(connected(&["b"]));
    assert_eq!(
        sim.set(60).tick_with(connected(&["b"])),
        vec![
            revoked("a", RevokeReason::Inactivity, at(60)),
            granted("b", at(60))
        ]
    );
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(660) });

    // Without the option, an open stream does not requeue.
    let mut sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    sim.set(50).tick_with(connected(&["a"]));
    assert_eq!(
        sim.set(60).tick_with(connected(&["a"])),
        vec![revoked("a", RevokeReason::Inactivity, at(60))]
    );
}

#[test]
fn a_manual_queue_place_does_not_renew_the_automatic_relogin() {
    // Only activity renews it: a revoked, requeued (and granted at once), leaves, queues
    // by hand, gets the slot, idles again while b waits: no second automatic re-login
    // ahead of b. (With nobody waiting, a is granted again: the slot would stay free.)
    let mut sim = Sim::with_holders(relogin(1, 0), &["a"]);
    sim.enrol("b");
    sim.set(50).tick_with(connected(&["a"]));
    assert_eq!(
        sim.set(60).tick_with(connected(&["a"])),
        vec![
            revoked("a", RevokeReason::Inactivity, at(60)),
            requeued("a", at(60)),
            granted("a", at(60)),
        ]
    );
    assert_eq!(
        sim.set(70).release("a"),
        vec![ProductEvent::SlotReleased {
            user: "a".into(),
            at: at(70)
        }]
    );
    assert_eq!(sim.request("b"), vec![granted("b", at(70))]);
    assert_eq!(sim.set(75).request("a"), vec![queued("a", at(75))]);
    assert_eq!(
        sim.set(80).release("b"),
        vec![
            ProductEvent::SlotReleased {
                user: "b".into(),
                at: at(80)
            },
            granted("a", at(80))
        ]
    );
    assert_eq!(
        sim.set(140).tick_with(connected(&["a"])),
        vec![warned("a", at(140), at(150))]
    );
    assert_eq!(sim.set(145).request("b"), vec![queued("b", at(145))]);
    assert_eq!(
        sim.set(150).tick_with(connected(&["a", "b"])),
        vec![
            revoked("a", RevokeReason::Inactivity, at(150)),
            granted("b", at(150))
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Rule 2: the queue timer
// ---------------------------------------------------------------------------------------

fn with_queue_timer(queue_timer_s: u32) -> Sim {
    let mut s = settings(1, 3_000, 10, 30);
    s.queue_timer_s = queue_timer_s;
    let mut sim = Sim::with_holders(s, &["a"]);
    for u in ["b", "c", "d"] {
        sim.enrol(u);
    }
    sim
}

#[test]
fn a_queue_place_expires_when_nobody_polls_or_listens() {
    let mut sim = with_queue_timer(40);
    assert_eq!(sim.set(10).request("b"), vec![queued("b", at(10))]);
    assert_eq!(sim.set(20).request("c"), vec![queued("c", at(20))]);
    assert_eq!(sim.set(30).tick(), vec![]);
    // b queued at 10, c at 20: both past 10 + 40 and 20 + 40 by the sweep at 60.
    let polled_c = Presence {
        last_seen: HashMap::from([("c".to_string(), at(35))]),
        ..Presence::default()
    };
    assert_eq!(
        sim.set(60).tick_with(polled_c.clone()),
        vec![left("b", LeaveReason::Expired, at(60))]
    );
    assert_eq!(view(&sim, "b"), SlotView::None);
    assert_eq!(queue_of(&sim), vec!["c"]);
    assert!(matches!(
        view(&sim, "c"),
        SlotView::Queued { position: 1, .. }
    ));
    // c's client polled at 35: the place lasts until 75, so the sweep at 90 ends it.
    assert_eq!(
        sim.set(90).tick_with(polled_c),
        vec![left("c", LeaveReason::Expired, at(90))]
    );
    assert!(sim.state.queue().is_empty());
}

#[test]
fn a_queue_place_expires_exactly_at_the_queue_timer() {
    let mut sim = with_queue_timer(30);
    sim.set(30).request("b");
    assert_eq!(sim.set_at(at_ms(59_999)).tick(), vec![]);
    assert_eq!(
        sim.set(60).tick(),
        vec![left("b", LeaveReason::Expired, at(60))]
    );
    // A poll older than the queue place (from an earlier place) does not shorten it.
    sim.request("c");
    let stale = Presence {
        last_seen: HashMap::from([("c".to_string(), at(0))]),
        ..Presence::default()
    };
    assert_eq!(sim.set(80).tick_with(stale.clone()), vec![]);
    assert_eq!(
        sim.set(90).tick_with(stale),
        vec![left("c", LeaveReason::Expired, at(90))]
    );
}

#[test]
fn a_connected_member_never_loses_the_queue_place() {
    let mut sim = with_queue_timer(10);
    sim.set(10).request("d");
    let stale = Presence {
        last_seen: HashMap::from([("d".to_string(), at(10))]),
        ..connected(&["d"])
    };
    let of_d = |events: Vec<ProductEvent>| -> Vec<ProductEvent> {
        events
            .into_iter()
            .filter(|e| users_of(std::slice::from_ref(e)).contains("d"))
            .collect()
    };
    for t in [30, 60, 600, 36_000] {
        assert_eq!(of_d(sim.set(t).tick_with(stale.clone())), vec![], "at {t}");
    }
    assert_eq!(queue_of(&sim), vec!["d"]);
    // The stream closes: the place lasts the queue timer from the last poll.
    assert_eq!(
        of_d(sim.set(36_030).tick_with(Presence::default())),
        vec![left("d", LeaveReason::Expired, at(36_030))]
    );
}

// ---------------------------------------------------------------------------------------
// Activity coalescing
// ---------------------------------------------------------------------------------------

#[test]
fn activity_within_the_coalescing_window_is_not_journaled_again() {
    // inactivity 600 s: the default window is min(60, 600 / 10) = 60 s.
    let s = settings(2, 600, 10, 30);
    assert_eq!(s.coalesce_window_ms(), 60_000);
    let mut sim = Sim::with_holders(s, &["a"]);
    assert_eq!(sim.set(30).activity("a"), vec![]);
    assert_eq!(sim.set_at(at_ms(59_999)).activity("a"), vec![]);
    assert_eq!(last_activity(&sim, "a"), at(0));
    assert_eq!(sim.set(60).activity("a"), vec![activity("a", at(60))]);
    assert_eq!(sim.set(100).activity("a"), vec![]);
    // The live service remembers 100 and hands it to the next sweep, which records it.
    assert_eq!(
        sim.set(120).tick_with(recent(&[("a", at(100))])),
        vec![activity("a", at(100))]
    );
    assert_eq!(last_activity(&sim, "a"), at(100));
    assert_eq!(view(&sim, "a"), granted_view(at(720), false));
    // Nothing newer than the journal, something after the sweep's instant, or a user who
    // holds nothing: nothing to record.
    sim.enrol("b");
    assert_eq!(
        sim.set(150)
            .tick_with(recent(&[("a", at(90)), ("b", at(140))])),
        vec![]
    );
    assert_eq!(sim.tick_with(recent(&[("a", at(100))])), vec![]);
    assert_eq!(sim.tick_with(recent(&[("a", at(151))])), vec![]);
    // Not a holder: activity is refused as before.
    assert!(sim.try_run(Command::Activity { user: "b".into() }).is_err());
}

#[test]
fn a_warned_holder_activity_is_always_recorded() {
    // An explicit 30 s window, longer than the time from grant to warning.
    let mut s = settings(2, 60, 50, 30);
    s.coalesce_s = Some(30);
    assert_eq!(s.coalesce_window_ms(), 30_000);
    let mut sim = Sim::with_holders(s, &["a", "b"]);
    assert_eq!(
        sim.set(10).tick(),
        vec![warned("a", at(10), at(60)), warned("b", at(10), at(60))]
    );
    assert_eq!(sim.set(20).activity("a"), vec![activity("a", at(20))]);
    assert_eq!(view(&sim, "a"), granted_view(at(90), false));
    // Once the warning is gone, the window applies again.
    assert_eq!(sim.set(25).activity("a"), vec![]);
    // Tiny inactivity times coalesce nothing: min(60, 9 / 10) = 0.
    let mut s = settings(1, 9, 1, 1);
    assert_eq!(s.coalesce_window_ms(), 0);
    s.queue_timer_s = 1;
    let mut sim = Sim::with_holders(s, &["a"]);
    assert_eq!(
        sim.set_at(at_ms(1)).activity("a"),
        vec![activity("a", at_ms(1))]
    );
}

// ---------------------------------------------------------------------------------------
// Rules 6 and 7: shrinking while warnings are pending
// ---------------------------------------------------------------------------------------

/// a, b, c hold slots from 0; c is active at 20; a and b are warned at 50 (due at 60).
fn three_with_two_warned(shared: u32, tier: u32) -> Sim {
    let mut s = settings(shared, 60, 10, 30);
    s.licence_tier = tier;
    let mut sim = Sim::with_holders(s, &["a", "b", "c"]);
    assert_eq!(sim.set(20).activity("c"), vec![activity("c", at(20))]);
    assert_eq!(
        sim.set(50).tick(),
        vec![warned("a", at(50), at(60)), warned("b", at(50), at(60))]
    );
    sim
}

#[test]
fn shrinking_revokes_warned_holders_and_forgets_their_warnings() {
    let mut sim = three_with_two_warned(3, 100);
    let mut smaller = sim.state.settings().unwrap().clone();
    smaller.shared_slots = 2;
    assert_eq!(
        sim.set(55).run(Command::Configure(smaller.clone())),
        vec![
            revoked("a", RevokeReason::PoolShrunk, at(55)),
            ProductEvent::Configured { settings: smaller }
        ]
    );
    assert_eq!(view(&sim, "b"), granted_view(at(60), true));
    // The sweep at 60 revokes b, still warned, and nothing about a, who left.
    assert_eq!(
        sim.set(60).tick(),
        vec![revoked("b", RevokeReason::Inactivity, at(60))]
    );
    // a comes back: a new holding, with no trace of the old warning.
    assert_eq!(sim.set(61).request("a"), vec![granted("a", at(61))]);
    assert_eq!(view(&sim, "a"), granted_view(at(150), false));
    assert_eq!(sim.set(80).tick(), vec![warned("c", at(80), at(90))]);
    assert_eq!(
        sim.set(90).tick(),
        vec![revoked("c", RevokeReason::Inactivity, at(90))]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(150), false));
    assert_eq!(sim.set(140).tick(), vec![warned("a", at(140), at(150))]);

    // Shrinking to one revokes both warned holders; their due time passes quietly.
    let mut sim = three_with_two_warned(3, 100);
    let mut one = sim.state.settings().unwrap().clone();
    one.shared_slots = 1;
    assert_eq!(
        sim.set(55).run(Command::Configure(one.clone())),
        vec![
            revoked("a", RevokeReason::PoolShrunk, at(55)),
            revoked("b", RevokeReason::PoolShrunk, at(55)),
            ProductEvent::Configured { settings: one }
        ]
    );
    assert_eq!(sim.set(60).tick(), vec![]);
    assert_eq!(sim.state.next_tick(sim.now), Some(at(80)));
}

#[test]
fn tier_reconciliation_shrinks_the_pool_and_raises_a_notice() {
    let mut sim = three_with_two_warned(3, 5);
    assert_eq!(
        sim.set(52).run(Command::ReconcileTier),
        vec![],
        "3 + 0 <= 5"
    );
    // Fixed licences recorded elsewhere (an older journal, the directory's hygiene):
    // 3 fixed + 3 shared > 5.
    for u in ["x", "y", "z"] {
        sim.apply(ProductEvent::FixedGiven { user: u.into() });
    }
    let mut two = sim.state.settings().unwrap().clone();
    two.shared_slots = 2;
    assert_eq!(
        sim.set(55).run(Command::ReconcileTier),
        vec![
            revoked("a", RevokeReason::PoolShrunk, at(55)),
            ProductEvent::TierReconciled {
                at: at(55),
                fixed: 3,
                licence_tier: 5,
                shared_slots_before: 3,
                shared_slots_after: 2,
            },
            ProductEvent::Configured { settings: two },
        ]
    );
    assert_eq!(
        sim.state.notices().cloned().collect::<Vec<_>>(),
        vec![Notice::TierReconciled {
            at: at(55),
            fixed: 3,
            licence_tier: 5,
            shared_slots_before: 3,
            shared_slots_after: 2,
        }]
    );
    assert_eq!(sim.state.counts().holders, 2);
    assert_eq!(
        sim.run(Command::ReconcileTier),
        vec![],
        "reconciled already"
    );
    assert_eq!(
        sim.set(60).tick(),
        vec![revoked("b", RevokeReason::Inactivity, at(60))]
    );
    // The freed slot stays free: the pool is smaller now... and a request may take it.
    assert_eq!(sim.state.counts().holders, 1);
    assert_eq!(sim.request("a"), vec![granted("a", at(60))]);
    sim.enrol("d");
    assert_eq!(sim.request("d"), vec![queued("d", at(60))]);

    // More fixed users than the tier: the pool shrinks to nothing; the queue stays.
    for u in ["v", "w"] {
        sim.apply(ProductEvent::FixedGiven { user: u.into() });
    }
    let mut none = sim.state.settings().unwrap().clone();
    none.shared_slots = 0;
    let events = sim.set(70).run(Command::ReconcileTier);
    assert_eq!(
        events,
        vec![
            revoked("c", RevokeReason::PoolShrunk, at(70)),
            revoked("a", RevokeReason::PoolShrunk, at(70)),
            ProductEvent::TierReconciled {
                at: at(70),
                fixed: 5,
                licence_tier: 5,
                shared_slots_before: 2,
                shared_slots_after: 0,
            },
            ProductEvent::Configured { settings: none },
        ]
    );
    assert_eq!(sim.state.notices().count(), 2);
    assert_eq!(queue_of(&sim), vec!["d"]);
}

// ---------------------------------------------------------------------------------------
// When the next sweep is needed
// ---------------------------------------------------------------------------------------

#[test]
fn next_tick_is_the_next_warning_revocation_or_grid_point() {
    assert_eq!(ProductState::new().next_tick(at(0)), None);
    let mut sim = Sim::new(settings(2, 60, 10, 30));
    // Nobody holds anything: the next grid point, strictly after now.
    assert_eq!(sim.state.next_tick(at(0)), Some(at(30)));
    assert_eq!(sim.state.next_tick(at_ms(29_999)), Some(at(30)));
    assert_eq!(sim.state.next_tick(at(30)), Some(at(60)));
    sim.enrol("a");
    sim.request("a");
    // a's warning is due at 50: between the grid points 30 and 60.
    assert_eq!(sim.state.next_tick(at(0)), Some(at(30)));
    assert_eq!(sim.state.next_tick(at(30)), Some(at(50)));
    assert_eq!(sim.state.next_tick(at(45)), Some(at(50)));
    sim.set(50).tick();
    assert_eq!(sim.state.next_tick(at(50)), Some(at(60)));

    // A long sweep interval: the warning comes the lead before the sweep that revokes.
    let mut sim = Sim::with_holders(settings(1, 60, 10, 300), &["a"]);
    assert_eq!(view(&sim, "a"), granted_view(at(300), false));
    assert_eq!(sim.state.next_tick(at(0)), Some(at(290)));
    // An overdue warning (no sweep ran): as soon as possible.
    assert_eq!(sim.state.next_tick(at(295)), Some(at_ms(295_001)));
    assert_eq!(sim.set(290).tick(), vec![warned("a", at(290), at(300))]);
    assert_eq!(sim.state.next_tick(at(290)), Some(at(300)));
    // An overdue revocation (no sweep ran at 300): as soon as possible too.
    assert_eq!(sim.state.next_tick(at(400)), Some(at_ms(400_001)));

    // A warned holder's revocation between grid points: exactly then, before the grid.
    let mut sim = Sim::with_holders(settings(2, 60, 10, 300), &["a"]);
    sim.set(250);
    sim.enrol("b");
    sim.request("b");
    // a is due for a warning at 290 (revoked at 300); warned late at 295, at 305.
    assert_eq!(sim.set(295).tick(), vec![warned("a", at(295), at(305))]);
    assert_eq!(sim.state.next_tick(at(295)), Some(at(300)), "the grid");
    assert_eq!(sim.set(300).tick(), vec![]);
    // b (active at 250, revoked at 600) is due at 590; a's revocation comes first.
    assert_eq!(sim.state.next_tick(at(300)), Some(at(305)));
    assert_eq!(
        sim.set(305).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(305))]
    );
    assert_eq!(sim.state.next_tick(at(305)), Some(at(590)));
}

#[test]
fn a_late_warning_revokes_exactly_one_lead_later_off_the_grid() {
    // The defaults' times: inactivity 30 min, lead 60 s, a sweep every 5 min. Granted at
    // 0: the deadline is 1800 (on the grid), the warning due at 1740.
    let mut sim = Sim::with_holders(settings(1, 1800, 60, 300), &["a"]);
    assert_eq!(view(&sim, "a"), granted_view(at(1800), false));
    assert_eq!(sim.state.next_tick(at(1500)), Some(at(1740)));

    // On time: revoked at the deadline, on the grid.
    let mut on_time = Sim::with_holders(settings(1, 1800, 60, 300), &["a"]);
    assert_eq!(
        on_time.set(1740).tick(),
        vec![warned("a", at(1740), at(1800))]
    );
    assert_eq!(on_time.state.next_tick(on_time.now), Some(at(1800)));

    // The scheduler wakes 5 ms late, as real timers do: the revocation is 5 ms late too,
    // not a whole sweep interval (2100).
    let woke = at_ms(1_740_005);
    let revoke_at = at_ms(1_800_005);
    assert_eq!(sim.set_at(woke).tick(), vec![warned("a", woke, revoke_at)]);
    assert_eq!(view(&sim, "a"), granted_view(revoke_at, true));
    assert_eq!(sim.state.holders()[0].revoke_at, revoke_at);
    assert_eq!(
        sim.state.next_tick(sim.now),
        Some(at(1800)),
        "the grid point first"
    );
    assert_eq!(
        sim.set(1800).tick(),
        vec![],
        "less than the lead after the warning"
    );
    assert_eq!(sim.state.next_tick(sim.now), Some(revoke_at));
    assert_eq!(
        sim.set_at(revoke_at).tick(),
        vec![revoked("a", RevokeReason::Inactivity, revoke_at)]
    );

    // Much later (a restart after an outage): one lead after the warning, off the grid,
    // and next_tick is exactly that instant.
    let mut sim = Sim::with_holders(settings(1, 1800, 60, 300), &["a"]);
    assert_eq!(
        sim.set(5_000).tick(),
        vec![warned("a", at(5_000), at(5_060))]
    );
    assert_ne!((at(5_060).as_millis() - T0_MS) % 300_000, 0, "off the grid");
    assert_eq!(sim.state.next_tick(sim.now), Some(at(5_060)));
    assert_eq!(sim.set(5_059).tick(), vec![]);
    assert_eq!(
        sim.set(5_060).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(5_060))]
    );
    // Activity after a late warning cancels it like any other.
    let mut sim = Sim::with_holders(settings(1, 1800, 60, 300), &["a"]);
    sim.set(5_000).tick();
    assert_eq!(sim.set(5_030).activity("a"), vec![activity("a", at(5_030))]);
    // 5030 + 1800 = 6830: the next grid point is 6900.
    assert_eq!(view(&sim, "a"), granted_view(at(6_900), false));
    assert_eq!(sim.set(5_060).tick(), vec![]);
}

#[test]
fn sweeps_at_next_tick_revoke_at_the_time_shown() {
    // Driving the sweep by next_tick alone: every revocation happens at the revoke_at the
    // holder was shown, on the grid, and only there.
    let mut s = settings(3, 45, 7, 20);
    s.coalesce_s = Some(0);
    let mut sim = Sim::new(s);
    for (i, u) in ["a", "b", "c"].iter().enumerate() {
        sim.enrol(u);
        sim.set(i as i64 * 13).request(u);
    }
    sim.set(50).activity("b");
    let mut shown: HashMap<String, Timestamp> = HashMap::new();
    let mut revocations = Vec::new();
    while sim.state.counts().holders > 0 {
        for h in sim.state.holders() {
            shown.insert(h.user.clone(), h.revoke_at);
        }
        let next = sim.state.next_tick(sim.now).unwrap();
        for e in sim.set_at(next).tick() {
            if let ProductEvent::SlotRevoked { user, at: t, .. } = e {
                assert_eq!(Some(&t), shown.get(&user), "{user} revoked at {t:?}");
                assert_eq!((t.as_millis() - T0_MS) % 20_000, 0, "on the grid");
                revocations.push((user, t));
            }
        }
    }
    // a: 0 + 45 -> 60; b: 50 + 45 -> 100; c: 26 + 45 -> 80.
    assert_eq!(
        revocations,
        vec![
            ("a".to_string(), at(60)),
            ("c".to_string(), at(80)),
            ("b".to_string(), at(100))
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Regressions of the fixes made with these tests
// ---------------------------------------------------------------------------------------

#[test]
fn coalesced_activity_handed_to_a_warning_sweep_does_not_delay_the_warning() {
    // inactivity 30 s, lead 20 s, sweep 30 s, window 29 s. Granted at 2: due at 60,
    // warned at 40. Activity at 30 is coalesced (28 s after the grant); the sweep at 40
    // records it, and by that time too the holder is due at 60: warned now, not 1 ms later
    // with the revocation pushed to the next grid point (90).
    let mut s = settings(1, 30, 20, 30);
    s.coalesce_s = Some(29);
    let mut sim = Sim::new(s);
    sim.enrol("a");
    sim.set(2).request("a");
    assert_eq!(view(&sim, "a"), granted_view(at(60), false));
    assert_eq!(sim.set(30).tick(), vec![]);
    assert_eq!(sim.activity("a"), vec![], "coalesced");
    assert_eq!(sim.state.next_tick(sim.now), Some(at(40)));
    assert_eq!(
        sim.set(40).tick_with(recent(&[("a", at(30))])),
        vec![activity("a", at(30)), warned("a", at(40), at(60))]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(60), true));
    assert_eq!(
        sim.set(60).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(60))]
    );

    // A warned holder whose coalesced activity is old enough to be due again is warned
    // again in the same sweep: the activity cancels the first warning, not the rule. Due
    // at 40 by that activity, the new warning is late: revoked one lead after it (79).
    let mut s = settings(1, 30, 20, 30);
    s.coalesce_s = Some(29);
    let mut sim = Sim::new(s);
    sim.enrol("a");
    sim.set(2).request("a");
    sim.set(40).tick();
    assert_eq!(
        sim.set(59).tick_with(recent(&[("a", at(30))])),
        vec![activity("a", at(30)), warned("a", at(59), at(79))]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(79), true));
    assert_eq!(sim.state.next_tick(sim.now), Some(at(60)));
    assert_eq!(sim.set(60).tick(), vec![]);
    assert_eq!(sim.state.next_tick(sim.now), Some(at(79)));
    assert_eq!(
        sim.set(79).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(79))]
    );
}

#[test]
fn new_time_settings_cancel_pending_warnings() {
    // Warned at 50 to lose the slot at 60; the inactivity time then doubles: revoking at
    // 60 would take a slot after 60 s of inactivity where 120 s are now allowed.
    let mut sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    assert_eq!(sim.set(50).tick(), vec![warned("a", at(50), at(60))]);
    let mut longer = sim.state.settings().unwrap().clone();
    longer.inactivity_s = 120;
    assert_eq!(
        sim.set(55).run(Command::Configure(longer.clone())),
        vec![ProductEvent::Configured { settings: longer }]
    );
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
    assert_eq!(sim.set(60).tick(), vec![]);
    assert_eq!(sim.state.next_tick(sim.now), Some(at(90)));
    assert_eq!(sim.set(90).tick(), vec![]);
    assert_eq!(sim.set(110).tick(), vec![warned("a", at(110), at(120))]);
    assert_eq!(
        sim.set(120).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(120))]
    );

    // A resize alone keeps the warnings as they are.
    let mut sim = Sim::with_holders(settings(2, 60, 10, 30), &["a"]);
    sim.set(50).tick();
    let mut bigger = sim.state.settings().unwrap().clone();
    bigger.shared_slots = 3;
    sim.set(55).run(Command::Configure(bigger));
    assert_eq!(view(&sim, "a"), granted_view(at(60), true));
    assert_eq!(
        sim.set(60).tick(),
        vec![revoked("a", RevokeReason::Inactivity, at(60))]
    );
}

#[test]
fn a_lock_outlives_removal_from_the_pool() {
    let mut s = relogin(1, 120);
    s.auto_relogin = false;
    let mut sim = Sim::with_holders(s, &["a"]);
    sim.set(50).tick();
    sim.set(60).tick();
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(180) });
    assert_eq!(
        sim.set(70).run(Command::Remove { user: "a".into() }),
        vec![ProductEvent::MemberRemoved { user: "a".into() }]
    );
    assert_eq!(
        sim.enrol("a"),
        vec![ProductEvent::MemberEnrolled { user: "a".into() }]
    );
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(180) });
    assert_eq!(sim.request("a"), vec![], "still locked");
    assert_eq!(sim.set(180).request("a"), vec![granted("a", at(180))]);
}

// ---------------------------------------------------------------------------------------
// Coalesced activity before decisions that read it
// ---------------------------------------------------------------------------------------

/// a and b hold slots from 0; a used the product at 30, which was coalesced (the window is
/// 60 s), so the journal still says both were last active at 0.
fn a_coalesced_at_30(shared: u32, tier: u32) -> Sim {
    let mut s = settings(shared, 600, 10, 30);
    s.licence_tier = tier;
    let mut sim = Sim::with_holders(s, &["a", "b"]);
    assert_eq!(sim.set(30).activity("a"), vec![], "coalesced");
    assert_eq!(last_activity(&sim, "a"), at(0));
    sim
}

#[test]
fn recording_activity_before_a_shrink_keeps_the_truly_active_holder() {
    let mut sim = a_coalesced_at_30(2, 100);
    let mut one = sim.state.settings().unwrap().clone();
    one.shared_slots = 1;
    let shrink = Command::Configure(one.clone());
    sim.set(40);
    // Deciding on the journal alone would take a (a tie at 0, broken by name), who was
    // active 10 s ago.
    assert_eq!(
        sim.state.decide(&shrink, sim.now).unwrap()[0],
        revoked("a", RevokeReason::PoolShrunk, at(40))
    );
    // So the live service records what it coalesced first.
    assert!(sim.state.reads_activity(&shrink));
    assert_eq!(
        sim.run(record(&[("a", at(30))])),
        vec![activity("a", at(30))]
    );
    assert_eq!(
        sim.run(shrink),
        vec![
            revoked("b", RevokeReason::PoolShrunk, at(40)),
            ProductEvent::Configured { settings: one },
        ]
    );
    assert_eq!(last_activity(&sim, "a"), at(30));
    assert_eq!(view(&sim, "a"), granted_view(at(630), false));

    // The same for tier reconciliation: 2 fixed + 2 shared > 3.
    let mut sim = a_coalesced_at_30(2, 3);
    for u in ["x", "y"] {
        sim.apply(ProductEvent::FixedGiven { user: u.into() });
    }
    sim.set(40);
    assert!(sim.state.reads_activity(&Command::ReconcileTier));
    assert_eq!(
        sim.state.decide(&Command::ReconcileTier, sim.now).unwrap()[0],
        revoked("a", RevokeReason::PoolShrunk, at(40))
    );
    sim.run(record(&[("a", at(30))]));
    assert_eq!(
        sim.run(Command::ReconcileTier)[0],
        revoked("b", RevokeReason::PoolShrunk, at(40))
    );
    assert_eq!(sim.state.holders().len(), 1);
    assert_eq!(sim.state.holders()[0].user, "a");

    // And for reclaim: the longest-inactive holder past the inactivity time is b, not a.
    let mut s = settings(2, 600, 10, 30);
    s.reclaim_on_request = true;
    let mut sim = Sim::with_holders(s, &["a", "b"]);
    sim.enrol("c");
    sim.set(30).activity("a");
    sim.set(615);
    let request = Command::request("c");
    assert!(sim.state.reads_activity(&request));
    assert_eq!(
        sim.state.decide(&request, sim.now).unwrap()[0],
        revoked("a", RevokeReason::Reclaimed, at(615))
    );
    sim.run(record(&[("a", at(30))]));
    assert_eq!(
        sim.run(request),
        vec![
            revoked("b", RevokeReason::Reclaimed, at(615)),
            granted("c", at(615))
        ]
    );
    // Had a been active within the inactivity time, nobody would have been reclaimed.
    let mut s = settings(1, 600, 10, 30);
    s.reclaim_on_request = true;
    let mut sim = Sim::with_holders(s, &["a"]);
    sim.enrol("c");
    sim.set(30).activity("a");
    sim.set(615);
    sim.run(record(&[("a", at(30))]));
    assert_eq!(sim.request("c"), vec![queued("c", at(615))]);
}

#[test]
fn record_activity_records_only_newer_past_activity_of_holders() {
    assert_eq!(
        ProductState::new().decide(&record(&[("a", at(1))]), at(2)),
        Err(Refusal::UnknownProduct)
    );
    let mut sim = Sim::with_holders(settings(3, 60, 10, 30), &["a", "b"]);
    sim.enrol("q");
    sim.set(20).activity("b");
    sim.set(50).tick();
    // a is warned at 50; b, active at 20, is due for a warning only at 80.
    assert_eq!(view(&sim, "a"), granted_view(at(60), true));
    assert_eq!(view(&sim, "b"), granted_view(at(90), false));
    let events = sim.set(55).run(record(&[
        ("b", at(10)),        // older than the journal
        ("a", at(52)),        // newer: recorded, and it cancels a's warning
        ("q", at(52)),        // not a holder
        ("nobody", at(52)),   // unknown
        ("c", at_ms(55_001)), // unknown, and in the future
    ]));
    assert_eq!(events, vec![activity("a", at(52))]);
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
    assert_eq!(sim.state.holders()[0].warned_at, None);
    // Activity in the future is left for later; a second time, nothing is new.
    assert_eq!(sim.run(record(&[("b", at_ms(55_001))])), vec![]);
    assert_eq!(sim.run(record(&[("a", at(52))])), vec![]);
    assert_eq!(sim.run(record(&[])), vec![]);
    // Several at once: in order of name.
    assert_eq!(
        sim.set(57).run(record(&[("b", at(56)), ("a", at(57))])),
        vec![activity("a", at(57)), activity("b", at(56))]
    );
    // Nothing else happens: no warning, no revocation, even when one is due.
    assert_eq!(
        sim.set(200).run(record(&[("a", at(58))])),
        vec![activity("a", at(58))]
    );
}

#[test]
fn reads_activity_flags_resizes_reconciliation_and_reclaim_capable_requests() {
    let request = |u: &str| Command::request(u);
    let others = |u: &str| {
        vec![
            Command::Enrol {
                user: u.into(),
                active: true,
            },
            Command::Remove { user: u.into() },
            Command::GiveFixed {
                user: u.into(),
                active: true,
            },
            Command::TakeFixed { user: u.into() },
            Command::SetActive {
                user: u.into(),
                active: false,
            },
            Command::Release { user: u.into() },
            Command::Activity { user: u.into() },
            Command::Revoke { user: u.into() },
            Command::Tick {
                presence: Presence::default(),
            },
            record(&[(u, at(1))]),
        ]
    };
    let product = ProductState::new();
    let s = settings(1, 60, 10, 30);
    assert!(product.reads_activity(&Command::Configure(s.clone())));
    assert!(product.reads_activity(&Command::ReconcileTier));
    assert!(!product.reads_activity(&request("a")), "no product");

    // Without reclaim, a request never reads activity.
    let sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    assert!(!sim.state.reads_activity(&request("b")));
    assert!(sim.state.reads_activity(&Command::Configure(s.clone())));
    assert!(sim.state.reads_activity(&Command::ReconcileTier));

    let mut reclaim = settings(2, 60, 10, 30);
    reclaim.reclaim_on_request = true;
    // A free slot: granted without looking at anyone.
    let mut sim = Sim::with_holders(reclaim.clone(), &["a"]);
    assert!(!sim.state.reads_activity(&request("b")));
    // The pool full: the request may reclaim (whoever asks).
    sim.enrol("b");
    sim.request("b");
    assert!(sim.state.reads_activity(&request("c")));
    assert!(sim.state.reads_activity(&request("a")));
    for c in others("a") {
        assert!(!sim.state.reads_activity(&c), "{c:?}");
    }
    // No slots at all: nobody to reclaim from.
    reclaim.shared_slots = 0;
    let sim = Sim::new(reclaim);
    assert!(!sim.state.reads_activity(&request("a")));
}

#[test]
fn holders_seen_overlays_coalesced_activity() {
    assert_eq!(
        ProductState::new().holders_seen(&recent_map(&[("a", at(1))])),
        Vec::<Holder>::new()
    );

    // a, b, c hold from 0; a is active at 20, b at 25 (recorded); c is warned at 50.
    let mut sim = Sim::with_holders(settings(3, 60, 10, 30), &["a", "b", "c"]);
    sim.set(20).activity("a");
    sim.set(25).activity("b");
    assert_eq!(sim.set(50).tick(), vec![warned("c", at(50), at(60))]);
    let holders = sim.state.holders();
    assert_eq!(sim.state.holders_seen(&HashMap::new()), holders);

    let recent = recent_map(&[
        ("a", at(40)),      // newer: the time shown, and the revocation follows it
        ("b", at(10)),      // older than the journal: ignored
        ("c", at(55)),      // warned: the time shown, the warning stays what it said
        ("nobody", at(55)), // not a holder
    ]);
    let seen = sim.state.holders_seen(&recent);
    let expected = vec![
        Holder {
            last_activity: at(40),
            revoke_at: at(120), // 40 + 60 = 100 -> the grid point 120
            ..holders[0].clone()
        },
        holders[1].clone(),
        Holder {
            last_activity: at(55),
            ..holders[2].clone()
        },
    ];
    assert_eq!(seen, expected);
    assert_eq!(
        (seen[2].warned_at, seen[2].revoke_at),
        (Some(at(50)), at(60))
    );
    // A read only: the state is unchanged.
    assert_eq!(sim.state.holders(), holders);

    // Recording that activity shows the unwarned holders exactly as seen (and, being
    // activity, cancels c's warning).
    assert_eq!(
        sim.set(55).run(Command::RecordActivity { recent }),
        vec![activity("a", at(40)), activity("c", at(55))]
    );
    let after = sim.state.holders();
    assert_eq!(after[..2], seen[..2]);
    assert_eq!(
        (
            after[2].last_activity,
            after[2].warned_at,
            after[2].revoke_at
        ),
        (at(55), None, at(120))
    );
}

// ---------------------------------------------------------------------------------------
// Product ids
// ---------------------------------------------------------------------------------------

#[test]
fn product_ids_start_with_a_letter_or_digit() {
    for bad in [
        ".", "..", "...", ".jira", "..jira", "-jira", "_jira", "", "jira/x", "jira x", "jïra",
    ] {
        assert!(!valid_product_id(bad), "{bad:?} is valid");
        assert!(StreamId::product(bad).is_err(), "{bad:?} names a stream");
        assert_eq!(StreamId::parse(&format!("product/{bad}")), None, "{bad:?}");
    }
    for good in [
        "jira",
        "J",
        "0",
        "9lives",
        "a.b",
        "a..b",
        "a-",
        "a_",
        "jira-sw.2",
    ] {
        assert!(valid_product_id(good), "{good:?} is invalid");
        let stream = StreamId::product(good).expect("valid");
        assert_eq!(StreamId::parse(&stream.name()), Some(stream));
    }
    let longest = "a".repeat(64);
    assert!(valid_product_id(&longest));
    assert!(!valid_product_id(&format!("{longest}a")));
}

// ---------------------------------------------------------------------------------------
// Rule 10: reservations and caps per group
// ---------------------------------------------------------------------------------------

fn reserving(shared: u32, reservations: &[(&str, u32, Option<u32>)]) -> Settings {
    let mut s = settings(shared, 60, 10, 10);
    s.reservations = reservations
        .iter()
        .map(|(group, min, max)| Reservation {
            group: group.to_string(),
            min: *min,
            max: *max,
        })
        .collect();
    s
}

fn noted(user: &str, groups: &[&str]) -> ProductEvent {
    ProductEvent::GroupsNoted {
        user: user.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn waiting_for(sim: &Sim, user: &str) -> Option<Blocked> {
    match view(sim, user) {
        SlotView::Queued { waiting_for, .. } => waiting_for,
        other => panic!("{user} is not queued: {other:?}"),
    }
}

fn enrol_all(sim: &mut Sim, users: &[&str]) {
    for u in users {
        sim.enrol(u);
    }
}

#[test]
fn a_group_at_its_cap_queues_its_member_until_a_group_member_releases() {
    let mut sim = Sim::new(reserving(3, &[("Contractors", 0, Some(1))]));
    enrol_all(&mut sim, &["c1", "c2", "e1"]);
    assert_eq!(
        sim.request_in("c1", &["contractors", "staff"]),
        vec![noted("c1", &["contractors"]), granted("c1", at(0))]
    );
    // The cap is reached: queued (not refused), though two slots are free.
    assert_eq!(
        sim.set(1).request_in("c2", &["CONTRACTORS"]),
        vec![noted("c2", &["contractors"]), queued("c2", at(1))]
    );
    assert_eq!(
        waiting_for(&sim, "c2"),
        Some(Blocked::GroupCap {
            group: "Contractors".into()
        })
    );
    // Others pass the capped member: a free slot they may take is theirs at once.
    assert_eq!(sim.set(2).request_in("e1", &[]), vec![granted("e1", at(2))]);
    assert_eq!(
        sim.state.reservation_use(),
        vec![ReservationUse {
            group: "Contractors".into(),
            min: 0,
            max: Some(1),
            holders: 1,
            queued: 1,
        }]
    );
    // A request again changes nothing (the groups are noted already).
    assert_eq!(sim.request_in("c2", &["contractors"]), vec![]);
    // The group member releases: the capped member gets the slot in the same command.
    assert_eq!(
        sim.set(3).release("c1"),
        vec![
            ProductEvent::SlotReleased {
                user: "c1".into(),
                at: at(3)
            },
            granted("c2", at(3))
        ]
    );
    assert!(sim.state.queue().is_empty());
}

#[test]
fn a_reservation_is_held_free_for_its_group_while_others_queue() {
    let mut sim = Sim::new(reserving(2, &[("support", 1, None)]));
    enrol_all(&mut sim, &["o1", "o2", "s1"]);
    assert_eq!(sim.request_in("o1", &[]), vec![granted("o1", at(0))]);
    // One slot is free, but it is support's reservation.
    assert_eq!(sim.set(1).request_in("o2", &[]), vec![queued("o2", at(1))]);
    assert_eq!(waiting_for(&sim, "o2"), Some(Blocked::Reserved));
    assert!(
        !sim.state.slot_free_for("o2"),
        "the gate lets nobody in either"
    );
    // A support member takes it at once, past the queue.
    assert_eq!(
        sim.set(2).request_in("s1", &["Support"]),
        vec![noted("s1", &["support"]), granted("s1", at(2))]
    );
    // The reservation is filled: a freed slot goes to the queue as usual.
    assert_eq!(
        sim.set(3).release("o1"),
        vec![
            ProductEvent::SlotReleased {
                user: "o1".into(),
                at: at(3)
            },
            granted("o2", at(3))
        ]
    );
    // A support member's slot freed goes back to the reservation, not to others.
    sim.enrol("o3");
    assert_eq!(sim.set(4).request_in("o3", &[]), vec![queued("o3", at(4))]);
    assert_eq!(
        sim.set(5).release("s1"),
        vec![ProductEvent::SlotReleased {
            user: "s1".into(),
            at: at(5)
        }]
    );
    assert_eq!(queue_of(&sim), vec!["o3"]);
}

#[test]
fn a_member_of_two_reserved_groups_fills_both_and_frees_a_slot_for_the_queue() {
    // Every slot is reserved: one for support, two for ops.
    let mut sim = Sim::new(reserving(3, &[("support", 1, None), ("ops", 2, None)]));
    enrol_all(&mut sim, &["o1", "b1"]);
    assert_eq!(sim.request_in("o1", &[]), vec![queued("o1", at(0))]);
    assert_eq!(waiting_for(&sim, "o1"), Some(Blocked::Reserved));
    // One member of both groups fills support's reservation and one of ops' with one
    // slot: ops still needs one of the two free slots, the other is nobody's, and the
    // waiting member gets it in the same command.
    assert_eq!(
        sim.set(1).request_in("b1", &["OPS", "support"]),
        vec![
            noted("b1", &["ops", "support"]),
            granted("b1", at(1)),
            granted("o1", at(1))
        ]
    );
    assert!(sim.state.queue().is_empty());
    // The last free slot stays ops' reservation.
    sim.enrol("o2");
    assert_eq!(sim.set(2).request_in("o2", &[]), vec![queued("o2", at(2))]);
    assert_eq!(waiting_for(&sim, "o2"), Some(Blocked::Reserved));
}

#[test]
fn grants_a_later_member_unblocks_are_recorded_in_queue_order() {
    let mut sim = Sim::new(reserving(3, &[("support", 1, None), ("ops", 2, None)]));
    enrol_all(&mut sim, &["o1", "b1"]);
    assert_eq!(sim.request_in("o1", &[]), vec![queued("o1", at(0))]);
    assert_eq!(sim.set(1).request_in("b1", &[]), vec![queued("b1", at(1))]);
    // b1 joins both groups: their slot fills two reservations and frees one for o1. Both
    // get a slot in the same command, recorded in the order they queued.
    assert_eq!(
        sim.set(2).run(Command::NoteGroups {
            user: "b1".into(),
            groups: vec!["ops".to_string(), "support".to_string()].into(),
        }),
        vec![
            noted("b1", &["ops", "support"]),
            granted("o1", at(2)),
            granted("b1", at(2))
        ]
    );
    assert!(sim.state.queue().is_empty());
}

#[test]
fn the_first_allowed_queued_member_jumps_over_a_capped_head() {
    let mut sim = Sim::new(reserving(2, &[("c", 0, Some(1))]));
    enrol_all(&mut sim, &["c1", "c2", "o1", "o2"]);
    sim.request_in("c1", &["c"]);
    sim.request_in("o1", &[]);
    sim.set(1).request_in("c2", &["c"]);
    sim.set(2).request_in("o2", &[]);
    assert_eq!(queue_of(&sim), vec!["c2", "o2"]);
    // Full pool: both wait for their turn; c2 is also capped.
    assert_eq!(
        view(&sim, "c2"),
        SlotView::Queued {
            position: 1,
            estimated_wait_s: 60,
            retry_after_s: 30,
            waiting_for: Some(Blocked::GroupCap { group: "c".into() }),
        }
    );
    assert_eq!(waiting_for(&sim, "o2"), None);
    assert_eq!(
        sim.set(3).release("o1"),
        vec![
            ProductEvent::SlotReleased {
                user: "o1".into(),
                at: at(3)
            },
            granted("o2", at(3))
        ]
    );
    // c2 keeps its place at the head; the slot freed by c1 is its own.
    assert_eq!(queue_of(&sim), vec!["c2"]);
    assert_eq!(
        sim.set(4).release("c1"),
        vec![
            ProductEvent::SlotReleased {
                user: "c1".into(),
                at: at(4)
            },
            granted("c2", at(4))
        ]
    );
}

#[test]
fn reclaim_never_unfills_a_reservation_for_a_non_member() {
    let mut s = reserving(2, &[("support", 1, None)]);
    s.reclaim_on_request = true;
    let mut sim = Sim::new(s);
    enrol_all(&mut sim, &["s1", "o1", "o2", "s2"]);
    sim.request_in("s1", &["support"]);
    sim.set(1).request_in("o1", &[]);
    // Both are past the inactivity time at 70; s1 is the longest-inactive, but taking
    // its slot would leave support below its reservation for o2: o1's is taken.
    assert_eq!(
        sim.set(70).request_in("o2", &[]),
        vec![
            revoked("o1", RevokeReason::Reclaimed, at(70)),
            granted("o2", at(70))
        ]
    );
    // A support member may reclaim the support holder's slot.
    assert_eq!(
        sim.set(140).request_in("s2", &["support"]),
        vec![
            noted("s2", &["support"]),
            revoked("s1", RevokeReason::Reclaimed, at(140)),
            granted("s2", at(140))
        ]
    );
}

#[test]
fn reclaim_gives_the_slot_to_the_first_allowed_queued_member() {
    let mut s = reserving(1, &[("c", 0, Some(1))]);
    s.reclaim_on_request = true;
    let mut sim = Sim::new(s);
    enrol_all(&mut sim, &["o1", "c1", "c2", "o2"]);
    sim.request_in("c1", &["c"]);
    // c2 is capped and waits; o1 waits for a slot.
    assert_eq!(sim.set(1).request_in("c2", &["c"])[1], queued("c2", at(1)));
    assert_eq!(sim.set(2).request_in("o1", &[]), vec![queued("o1", at(2))]);
    // c1 is past the inactivity time: its slot goes to the first queued member who may
    // take it then (c2, the cap no longer reached), and the requester queues.
    assert_eq!(
        sim.set(70).request_in("o2", &[]),
        vec![
            revoked("c1", RevokeReason::Reclaimed, at(70)),
            granted("c2", at(70)),
            queued("o2", at(70))
        ]
    );
}

#[test]
fn a_pool_shrunk_below_the_reservations_stays_well_defined() {
    let mut s = reserving(4, &[("a", 2, None), ("b", 2, None)]);
    s.licence_tier = 4;
    // A sum of min above shared_slots is refused, and names the problem.
    let mut bad = s.clone();
    bad.shared_slots = 3;
    bad.licence_tier = 4;
    let mut sim = Sim::new(s);
    match sim.try_run(Command::Configure(bad)) {
        Err(Refusal::InvalidSettings(m)) => {
            assert!(m.contains("sum of min (4) exceeds shared_slots (3)"), "{m}")
        }
        other => panic!("accepted: {other:?}"),
    }
    enrol_all(&mut sim, &["a1", "a2", "b1", "x"]);
    sim.request_in("a1", &["a"]);
    sim.request_in("b1", &["b"]);
    // Two fixed licences from elsewhere: the hourly reconciliation shrinks the pool to
    // 2, below the sum of min (4); nobody beyond the excess loses a slot.
    sim.apply(ProductEvent::FixedGiven { user: "f1".into() });
    sim.apply(ProductEvent::FixedGiven { user: "f2".into() });
    let events = sim.set(10).run(Command::ReconcileTier);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ProductEvent::SlotRevoked { .. })),
        "{events:?}"
    );
    assert_eq!(sim.state.settings().map(|s| s.shared_slots), Some(2));
    sim.set(11).release("a1");
    // One slot free, both groups short of their reservation: a non-member waits, a
    // member of a short group takes it (no slot stays empty for nobody).
    assert_eq!(sim.request_in("x", &[]), vec![queued("x", at(11))]);
    assert_eq!(
        sim.set(12).request_in("a2", &["a"]),
        vec![noted("a2", &["a"]), granted("a2", at(12))]
    );
    assert_eq!(sim.state.counts().holders, 2);
    // Shrinking by hand revokes the longest-inactive holder, as always.
    let mut smaller = sim.state.settings().cloned().expect("settings");
    smaller.shared_slots = 1;
    smaller.reservations = Default::default();
    let events = sim.set(13).run(Command::Configure(smaller.clone()));
    assert_eq!(events[0], revoked("b1", RevokeReason::PoolShrunk, at(13)));
}

#[test]
fn a_settings_change_refills_at_once() {
    let mut sim = Sim::new(reserving(3, &[("c", 0, Some(1))]));
    enrol_all(&mut sim, &["c1", "c2", "c3"]);
    sim.request_in("c1", &["c"]);
    sim.set(1).request_in("c2", &["c"]);
    sim.set(2).request_in("c3", &["c"]);
    assert_eq!(queue_of(&sim), vec!["c2", "c3"]);
    // Raising the cap gives the free slots to the queue in the same command.
    let raised = reserving(3, &[("c", 0, Some(2))]);
    assert_eq!(
        sim.set(3).run(Command::Configure(raised)),
        vec![
            ProductEvent::Configured {
                settings: reserving(3, &[("c", 0, Some(2))])
            },
            granted("c2", at(3))
        ]
    );
    // Lowering it below the holdings revokes nobody: it only stops new grants.
    let lowered = reserving(3, &[("c", 0, Some(0))]);
    let events = sim.set(4).run(Command::Configure(lowered));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(sim.state.counts().holders, 2);
    // Dropping the reservations: the pool is one plain FIFO again.
    assert_eq!(
        sim.set(5).run(Command::Configure(reserving(3, &[]))),
        vec![
            ProductEvent::Configured {
                settings: reserving(3, &[])
            },
            granted("c3", at(5))
        ]
    );
}

#[test]
fn inactivity_revocation_hands_the_slot_to_the_first_allowed() {
    let mut sim = Sim::new(reserving(2, &[("c", 0, Some(1))]));
    enrol_all(&mut sim, &["o1", "c1", "c2", "o2"]);
    sim.request_in("o1", &[]);
    sim.set(30).request_in("c1", &["c"]);
    sim.set(31).request_in("c2", &["c"]);
    sim.set(32).request_in("o2", &[]);
    assert_eq!(sim.set(50).tick(), vec![warned("o1", at(50), at(60))]);
    // o1's slot is revoked for inactivity; c2, the head, is capped: o2 gets it.
    assert_eq!(
        sim.set(60).tick(),
        vec![
            revoked("o1", RevokeReason::Inactivity, at(60)),
            granted("o2", at(60))
        ]
    );
    assert_eq!(queue_of(&sim), vec!["c2"]);
}

#[test]
fn a_membership_change_takes_effect_for_holders_and_queued_members() {
    let mut sim = Sim::new(reserving(2, &[("c", 0, Some(1))]));
    enrol_all(&mut sim, &["c1", "c2", "idle"]);
    sim.request_in("c1", &["c"]);
    sim.set(1).request_in("c2", &["c"]);
    // c1 leaves group c in the directory: c2 may take the free slot at once.
    assert_eq!(
        sim.set(2).run(Command::NoteGroups {
            user: "c1".into(),
            groups: vec!["staff".to_string()].into(),
        }),
        vec![noted("c1", &[]), granted("c2", at(2))]
    );
    // Joining the capped group again revokes nobody.
    assert_eq!(
        sim.set(3).run(Command::NoteGroups {
            user: "c1".into(),
            groups: vec!["c".to_string()].into(),
        }),
        vec![noted("c1", &["c"])]
    );
    assert_eq!(sim.state.counts().holders, 2);
    // A member who neither holds nor waits is noted at their next request only.
    assert_eq!(
        sim.run(Command::NoteGroups {
            user: "idle".into(),
            groups: vec!["c".to_string()].into(),
        }),
        vec![]
    );
    // A product without reservations notes nothing, even when told.
    let mut plain = Sim::with_holders(settings(2, 60, 10, 10), &["a"]);
    assert_eq!(plain.request_in("a", &["c"]), vec![]);
    assert_eq!(
        plain.run(Command::NoteGroups {
            user: "a".into(),
            groups: vec!["c".to_string()].into(),
        }),
        vec![]
    );
}

#[test]
fn the_image_keeps_the_noted_groups() {
    let mut sim = Sim::new(reserving(2, &[("c", 0, Some(1))]));
    enrol_all(&mut sim, &["c1", "c2"]);
    sim.request_in("c1", &["c"]);
    sim.request_in("c2", &["c"]);
    let rebuilt = ProductState::from_image(&sim.state.image());
    assert_eq!(rebuilt.noted_groups("c1"), ["c".to_string()]);
    assert_eq!(rebuilt.reservation_use(), sim.state.reservation_use());
    assert_eq!(
        rebuilt.decide(&Command::Release { user: "c1".into() }, at(5)),
        sim.state
            .decide(&Command::Release { user: "c1".into() }, at(5))
    );
}

// ---------------------------------------------------------------------------------------
// The gate: a page view through a reverse proxy (`Command::PageView`)
// ---------------------------------------------------------------------------------------

/// A page view of `user` through the gate, with the directory's groups when given.
fn page_view(sim: &mut Sim, user: &str, groups: Option<&[&str]>) -> Vec<ProductEvent> {
    sim.run(Command::PageView {
        user: user.to_string(),
        attributes: None,
        groups: groups.map(|g| g.iter().map(|g| g.to_string()).collect()),
        gate: None,
    })
}

#[test]
fn a_page_view_grants_a_free_slot_counts_as_activity_and_queues_nobody() {
    // inactivity 60 s: activity is coalesced for 6 s.
    let mut sim = Sim::new(settings(1, 60, 10, 30));
    enrol_all(&mut sim, &["a", "b"]);
    sim.run(Command::GiveFixed {
        user: "f".into(),
        active: true,
    });
    // A member with a free slot and nobody ahead is granted by the page view itself.
    assert_eq!(page_view(&mut sim, "a", None), vec![granted("a", at(0))]);
    assert_eq!(view(&sim, "a"), granted_view(at(60), false));
    // The holder's next views are activity, coalesced exactly as `Activity` is.
    assert_eq!(sim.set(5).activity("a"), vec![]);
    assert_eq!(page_view(&mut sim, "a", None), vec![]);
    assert_eq!(page_view(sim.set(6), "a", None), vec![activity("a", at(6))]);
    // The pool is full: b is refused (the view stays `none`) and not queued.
    assert_eq!(page_view(&mut sim, "b", None), vec![]);
    assert_eq!(view(&sim, "b"), SlotView::None);
    assert!(sim.state.queue().is_empty());
    // A fixed user passes; a non-member and an unknown user change nothing.
    assert_eq!(page_view(&mut sim, "f", None), vec![]);
    assert_eq!(view(&sim, "f"), SlotView::Fixed);
    assert_eq!(page_view(&mut sim, "mallory", None), vec![]);
    assert_eq!(view(&sim, "mallory"), SlotView::None);
    assert!(sim.state.user("mallory").is_none());
    // A queued member keeps the place and gets no slot from a view: b asks, then views.
    assert_eq!(sim.request("b"), vec![queued("b", at(6))]);
    assert_eq!(page_view(&mut sim, "b", None), vec![]);
    assert!(matches!(
        view(&sim, "b"),
        SlotView::Queued { position: 1, .. }
    ));
    // The slot freed goes to the queue head, never to whoever views next.
    sim.enrol("c");
    assert_eq!(
        sim.set(7).release("a"),
        vec![
            ProductEvent::SlotReleased {
                user: "a".into(),
                at: at(7)
            },
            granted("b", at(7))
        ]
    );
    assert_eq!(page_view(&mut sim, "c", None), vec![]);
}

#[test]
fn a_page_view_of_a_warned_holder_cancels_the_warning() {
    let mut sim = Sim::with_holders(settings(1, 60, 10, 30), &["a"]);
    assert_eq!(sim.set(50).tick(), vec![warned("a", at(50), at(60))]);
    // Within the coalescing window, yet recorded: it cancels the warning.
    assert_eq!(page_view(&mut sim, "a", None), vec![activity("a", at(50))]);
    assert_eq!(view(&sim, "a"), granted_view(at(120), false));
}

#[test]
fn a_page_view_of_a_locked_deactivated_or_ineligible_member_changes_nothing() {
    let mut s = settings(2, 60, 10, 30);
    s.lock_s = 120;
    let mut sim = Sim::with_holders(s, &["a"]);
    sim.set(50).tick();
    sim.set(60).tick();
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(180) });
    assert_eq!(page_view(&mut sim, "a", None), vec![]);
    assert_eq!(view(&sim, "a"), SlotView::Locked { until: at(180) });
    // Deactivated: no slot, though one is free.
    sim.run(Command::Enrol {
        user: "d".into(),
        active: false,
    });
    assert_eq!(page_view(&mut sim, "d", None), vec![]);
    // The request's eligibility rule holds for page views too.
    let mut s = settings(2, 60, 10, 30);
    s.eligibility = Some(slotpool_events::Eligibility::In {
        attribute: "department".into(),
        values: vec!["it".into()],
    });
    let mut sim = Sim::new(s);
    sim.enrol("e");
    assert_eq!(page_view(&mut sim, "e", None), vec![]);
    assert_eq!(view(&sim, "e"), SlotView::None);
    let it = std::sync::Arc::new(std::collections::BTreeMap::from([(
        "department".to_string(),
        "it".to_string(),
    )]));
    assert_eq!(
        sim.run(Command::PageView {
            user: "e".into(),
            attributes: Some(it),
            groups: None,
            gate: None,
        }),
        vec![granted("e", at(0))]
    );
    // A product that does not exist refuses, as every command does.
    assert_eq!(
        ProductState::new().decide(
            &Command::PageView {
                user: "e".into(),
                attributes: None,
                groups: None,
                gate: None,
            },
            at(0)
        ),
        Err(Refusal::UnknownProduct)
    );
}

#[test]
fn a_page_view_respects_reservations_by_the_users_directory_groups() {
    let mut sim = Sim::new(reserving(2, &[("support", 1, None)]));
    enrol_all(&mut sim, &["o1", "o2", "o3", "s1"]);
    assert_eq!(
        page_view(&mut sim, "o1", Some(&[])),
        vec![granted("o1", at(0))]
    );
    // The free slot is support's reservation: others are not let in, nor queued.
    assert_eq!(page_view(&mut sim, "o2", Some(&[])), vec![]);
    assert!(sim.state.queue().is_empty());
    assert_eq!(sim.set(1).request_in("o3", &[]), vec![queued("o3", at(1))]);
    // A support member's first view takes it at once (judged by the groups the view
    // carries, noted with the grant), past the queue.
    assert_eq!(
        page_view(sim.set(2), "s1", Some(&["Support"])),
        vec![noted("s1", &["support"]), granted("s1", at(2))]
    );
    assert_eq!(queue_of(&sim), vec!["o3".to_string()]);
}

// ---------------------------------------------------------------------------------------
// Bypass rules (issue G): a page view through the gate without taking a slot
// ---------------------------------------------------------------------------------------

/// Settings with one slot and these bypass rules.
fn bypassing(rules: Vec<slotpool_events::BypassRule>) -> Settings {
    Settings {
        bypass: rules,
        ..settings(1, 60, 10, 30)
    }
}

fn users_rule(name: &str, users: &[&str]) -> slotpool_events::BypassRule {
    slotpool_events::BypassRule {
        name: name.into(),
        users: users.iter().map(|u| u.to_string()).collect(),
        groups: vec![],
        cidrs: vec![],
        paths: vec![],
        token_kinds: vec![],
    }
}

fn gated_view(sim: &mut Sim, user: &str, gate: slotpool_events::GateRequest) -> Vec<ProductEvent> {
    sim.run(Command::PageView {
        user: user.to_string(),
        attributes: None,
        groups: None,
        gate: Some(std::sync::Arc::new(gate)),
    })
}

#[test]
fn a_bypassed_view_takes_no_slot_and_a_holder_keeps_theirs() {
    use slotpool_events::GateRequest;
    let rest = slotpool_events::BypassRule {
        paths: vec!["/rest/".into()],
        ..users_rule("rest", &[])
    };
    let mut sim = Sim::new(bypassing(vec![users_rule("robots", &["ci-bot"]), rest]));
    enrol_all(&mut sim, &["a", "b", "ci-bot"]);
    let plain = GateRequest::default();
    // A member the rule names passes, and the free slot stays free.
    assert_eq!(
        sim.state
            .bypass_rule("ci-bot", &plain)
            .map(|r| r.name.as_str()),
        Some("robots")
    );
    assert_eq!(gated_view(&mut sim, "ci-bot", plain.clone()), vec![]);
    assert_eq!(view(&sim, "ci-bot"), SlotView::None);
    assert_eq!(sim.state.counts().holders, 0);
    // A user no rule names does not pass; names are matched without regard to case.
    assert!(sim.state.bypass_rule("nobody", &plain).is_none());
    assert_eq!(
        sim.state
            .bypass_rule("CI-BOT", &plain)
            .map(|r| r.name.as_str()),
        Some("robots")
    );
    // a, not named, is granted the free slot by the view as before.
    assert_eq!(
        gated_view(&mut sim, "a", plain.clone()),
        vec![granted("a", at(0))]
    );
    // a's REST call (the path rule) is a holder's view: activity, the slot kept.
    let rest_call = GateRequest {
        uri: Some("/rest/api/2/myself".into()),
        ..GateRequest::default()
    };
    assert!(sim.state.bypass_rule("a", &rest_call).is_none());
    assert_eq!(
        gated_view(sim.set(20), "a", rest_call.clone()),
        vec![activity("a", at(20))]
    );
    assert!(matches!(view(&sim, "a"), SlotView::Granted { .. }));
    // b, with the pool full, passes on a REST path but not on a page.
    assert_eq!(
        sim.state
            .bypass_rule("b", &rest_call)
            .map(|r| r.name.as_str()),
        Some("rest")
    );
    assert_eq!(gated_view(&mut sim, "b", rest_call), vec![]);
    assert!(sim.state.bypass_rule("b", &plain).is_none());
    assert_eq!(view(&sim, "b"), SlotView::None);
}

#[test]
fn no_rule_lets_a_deactivated_account_through() {
    use slotpool_events::GateRequest;
    let mut sim = Sim::new(bypassing(vec![users_rule("robots", &["ci-bot", "svc"])]));
    enrol_all(&mut sim, &["ci-bot"]);
    sim.run(Command::SetActive {
        user: "ci-bot".into(),
        active: false,
    });
    // Deactivated as the product heard it.
    assert!(sim
        .state
        .bypass_rule("ci-bot", &GateRequest::default())
        .is_none());
    // Deactivated as the directory says (a service account the product does not know).
    let inactive = GateRequest {
        active: Some(false),
        ..GateRequest::default()
    };
    assert!(sim.state.bypass_rule("svc", &inactive).is_none());
    assert!(sim
        .state
        .bypass_rule("svc", &GateRequest::default())
        .is_some());
    // A fixed user needs no rule: the gate passes them as fixed.
    sim.run(Command::GiveFixed {
        user: "svc".into(),
        active: true,
    });
    assert!(sim
        .state
        .bypass_rule("svc", &GateRequest::default())
        .is_none());
}

#[test]
fn the_sweep_records_what_bypass_rules_let_through() {
    let mut sim = Sim::new(bypassing(vec![users_rule("robots", &["ci-bot"])]));
    let mut presence = Presence::default();
    presence.bypassed.insert(
        "robots".into(),
        [("ci-bot".to_string(), 5u64), ("zed".to_string(), 2)].into(),
    );
    presence
        .bypassed
        .insert("quiet".into(), [("x".to_string(), 0u64)].into());
    assert_eq!(
        sim.set(30).tick_with(presence),
        vec![ProductEvent::BypassesCounted {
            rule: "robots".into(),
            at: at(30),
            count: 7,
            users: vec![("ci-bot".into(), 5), ("zed".into(), 2)],
        }]
    );
    // The count changes nothing of the pool, and history sums it per UTC day.
    assert_eq!(sim.state.counts().holders, 0);
    let mut history = slotpool_events::History::new(Default::default());
    for (i, (t, rule, n)) in [
        (30, "robots", 7),
        (90, "robots", 3),
        (90, "other", 1),
        (86_400, "robots", 4),
    ]
    .into_iter()
    .enumerate()
    {
        history.push_event(
            i as u64 + 1,
            at(t),
            &ProductEvent::BypassesCounted {
                rule: rule.into(),
                at: at(t),
                count: n,
                users: vec![("ci-bot".into(), n)],
            },
        );
    }
    let days: Vec<(String, u64)> = history
        .bypass_days()
        .map(|d| (d.rule.clone(), d.count))
        .collect();
    assert_eq!(
        days,
        vec![
            ("other".into(), 1),
            ("robots".into(), 10),
            ("robots".into(), 4)
        ]
    );
}

#[test]
fn bad_bypass_rules_are_refused_with_the_rule_named() {
    let bad = slotpool_events::BypassRule {
        cidrs: vec!["10.0.0.0/33".into()],
        ..users_rule("robots", &[])
    };
    let err = ProductState::new()
        .decide(&Command::Configure(bypassing(vec![bad])), at(0))
        .expect_err("a bad CIDR is refused");
    match err {
        Refusal::InvalidSettings(text) => assert!(text.contains("bypass[0].cidrs"), "{text}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Modes (issue G): enforce, passthrough (a shadow run), queue_all (maintenance)
// ---------------------------------------------------------------------------------------

fn in_mode(slots: u32, mode: slotpool_events::Mode) -> Settings {
    Settings {
        mode,
        ..settings(slots, 60, 10, 30)
    }
}

fn plain_view(sim: &mut Sim, user: &str) -> Vec<ProductEvent> {
    gated_view(sim, user, slotpool_events::GateRequest::default())
}

#[test]
fn passthrough_lets_every_member_through_and_records_what_enforcing_would_do() {
    use slotpool_events::{Mode, Passage};
    let mut sim = Sim::new(in_mode(1, Mode::Passthrough));
    enrol_all(&mut sim, &["a", "b"]);
    // a's view is the request the queue page would have made: granted.
    assert_eq!(plain_view(&mut sim, "a"), vec![granted("a", at(0))]);
    assert_eq!(sim.state.passage("a", None, at(0)), Passage::Granted);
    // b's is queued (the gate never queues in enforce; the shadow run records it), and
    // b passes all the same.
    assert_eq!(plain_view(&mut sim, "b"), vec![queued("b", at(0))]);
    assert_eq!(
        sim.state.passage("b", None, at(0)),
        Passage::Passthrough("queued")
    );
    assert_eq!(sim.state.counts().queued, 1, "would_be_queued");
    // A second view of b changes nothing (b waits in the shadow queue).
    assert_eq!(plain_view(&mut sim, "b"), vec![]);
    // A non-member and a deactivated member do not pass.
    assert_eq!(
        sim.state.passage("x", None, at(0)),
        Passage::Refused("none")
    );
    sim.run(Command::SetActive {
        user: "b".into(),
        active: false,
    });
    assert_eq!(
        sim.state.passage("b", None, at(0)),
        Passage::Refused("none")
    );
    // Enforcing makes the shadow pool the real one.
    sim.run(Command::Configure(in_mode(1, Mode::Enforce)));
    assert_eq!(sim.state.passage("a", None, at(0)), Passage::Granted);
}

#[test]
fn queue_all_admits_nobody_new_and_leaving_it_serves_the_queue_in_order() {
    use slotpool_events::{Mode, Passage};
    let mut sim = Sim::new(in_mode(2, Mode::Enforce));
    enrol_all(&mut sim, &["a", "b", "c", "d"]);
    assert_eq!(sim.request("a"), vec![granted("a", at(0))]);
    sim.run(Command::Configure(in_mode(2, Mode::QueueAll)));
    // A free slot, yet the gate grants nobody and every request queues.
    assert_eq!(plain_view(&mut sim, "b"), vec![]);
    assert_eq!(
        sim.state.passage("b", None, at(0)),
        Passage::Refused("none")
    );
    assert_eq!(sim.set(1).request("c"), vec![queued("c", at(1))]);
    assert_eq!(sim.set(2).request("b"), vec![queued("b", at(2))]);
    // The holder keeps the slot; its release frees a slot nobody gets.
    assert_eq!(sim.state.passage("a", None, at(2)), Passage::Granted);
    assert_eq!(
        sim.set(3).release("a"),
        vec![ProductEvent::SlotReleased {
            user: "a".into(),
            at: at(3)
        }]
    );
    assert_eq!(sim.set(4).request("d"), vec![queued("d", at(4))]);
    assert_eq!(queue_of(&sim), vec!["c", "b", "d"]);
    // Bypass rules still pass.
    let rules = vec![users_rule("ops", &["d"])];
    sim.run(Command::Configure(Settings {
        bypass: rules.clone(),
        ..in_mode(2, Mode::QueueAll)
    }));
    assert!(sim
        .state
        .bypass_rule("d", &slotpool_events::GateRequest::default())
        .is_some());
    // Leaving the mode grants the free slots to the queue's head, in order.
    assert_eq!(
        sim.set(5).run(Command::Configure(Settings {
            bypass: rules,
            ..in_mode(2, Mode::Enforce)
        })),
        vec![
            ProductEvent::Configured {
                settings: Settings {
                    bypass: vec![users_rule("ops", &["d"])],
                    ..in_mode(2, Mode::Enforce)
                }
            },
            granted("c", at(5)),
            granted("b", at(5)),
        ]
    );
    assert_eq!(queue_of(&sim), vec!["d"]);
}

#[test]
fn an_unknown_mode_is_refused() {
    let text = r#"{"kind":"jira","licence_tier":5,"shared_slots":1,"mode":"open_all"}"#;
    let err = serde_json::from_str::<Settings>(text).expect_err("unknown mode");
    assert!(err.to_string().contains("open_all"), "{err}");
    let ok: Settings = serde_json::from_str(
        r#"{"kind":"jira","licence_tier":5,"shared_slots":1,"mode":"queue_all"}"#,
    )
    .expect("queue_all");
    assert_eq!(ok.mode, slotpool_events::Mode::QueueAll);
    // The default is not written, so older settings read and write the same JSON.
    let plain = serde_json::to_string(&settings(1, 60, 10, 30)).expect("json");
    assert!(!plain.contains("mode"), "{plain}");
}
