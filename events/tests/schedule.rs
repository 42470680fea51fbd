//! Scheduled capacity in the pure core, in virtual time: a boundary resizes the pool as an
//! admin resize does (growth serves the queue in order; a shrink revokes the
//! longest-inactive, reason `pool_shrunk`), the holders a shrink will take are warned
//! `shrink_warning_s` before, a warning the shrink did not need is lifted, settings take
//! the size the schedule gives at once, the licence tier clamps a window, and the size
//! survives replay and the snapshot image.

mod common;

use common::*;
use slotpool_events::schedule::{DatedWindow, Schedule, WeeklyWindow};
use slotpool_events::{
    CapacityChange, Command, ProductEvent, ProductState, Refusal, RevokeReason, Settings, Timestamp,
};

/// `at(secs)` as a local time in UTC, "YYYY-MM-DDTHH:MM" (secs a whole minute).
fn local(secs: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at(secs).as_millis())
        .expect("an instant")
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// One slot otherwise, `size` from `from` to `to` (seconds after `at(0)`, whole minutes).
fn scheduled(size: u32, from: i64, to: i64, warning_s: u32) -> Settings {
    let mut s = settings(1, 3600, 60, 60);
    s.schedule = Schedule {
        dated: vec![DatedWindow {
            from: local(from),
            to: local(to),
            shared_slots: size,
        }],
        weekly: Vec::new(),
        shrink_warning_s: Some(warning_s),
    };
    s
}

fn capacity(size: u32, t: Timestamp) -> ProductEvent {
    ProductEvent::CapacityScheduled {
        shared_slots: size,
        at: t,
    }
}

fn change(size: u32, t: Timestamp) -> Option<CapacityChange> {
    Some(CapacityChange {
        at: t,
        shared_slots: size,
    })
}

#[test]
fn a_boundary_grows_the_pool_and_serves_the_queue_in_order() {
    let mut sim = Sim::new(scheduled(3, 600, 1200, 0));
    for u in ["a", "b", "c", "d"] {
        sim.enrol(u);
    }
    assert_eq!(sim.request("a"), vec![granted("a", at(0))]);
    for u in ["b", "c", "d"] {
        assert_eq!(sim.request(u), vec![queued(u, at(0))]);
    }
    assert_eq!(sim.state.effective_shared_slots(), 1);
    assert_eq!(sim.state.next_capacity_change(at(0)), change(3, at(600)));
    assert_eq!(sim.state.next_capacity_job(at(0)), Some(at(600)));
    // Early (a job asked for before a settings change): nothing happens.
    assert_eq!(sim.set(300).run(Command::ScheduleCapacity), vec![]);
    assert_eq!(
        sim.set(600).run(Command::ScheduleCapacity),
        vec![
            capacity(3, at(600)),
            granted("b", at(600)),
            granted("c", at(600))
        ]
    );
    assert_eq!(sim.state.effective_shared_slots(), 3);
    assert_eq!(sim.state.settings().map(|s| s.shared_slots), Some(1));
    assert_eq!(sim.state.next_capacity_change(at(600)), change(1, at(1200)));
    // Applied once: the same instant again changes nothing.
    assert_eq!(sim.run(Command::ScheduleCapacity), vec![]);
    // A freed slot still goes to the queue, within the scheduled size.
    assert_eq!(
        sim.set(700).release("a"),
        vec![
            ProductEvent::SlotReleased {
                user: "a".into(),
                at: at(700)
            },
            granted("d", at(700))
        ]
    );
}

#[test]
fn a_shrink_warns_first_then_revokes_the_longest_inactive() {
    // Settings taking effect inside the window: the size is the window's at once.
    let mut s = scheduled(3, 0, 1200, 120);
    s.shared_slots = 1;
    let mut sim = Sim::new(s);
    assert_eq!(sim.journal.last(), Some(&capacity(3, at(0))));
    for u in ["a", "b", "c"] {
        sim.enrol(u);
        assert_eq!(sim.request(u), vec![granted(u, at(0))]);
    }
    assert_eq!(sim.set(500).activity("b"), vec![activity("b", at(500))]);
    // The lead of the shrink begins at 1080.
    assert_eq!(sim.state.next_capacity_job(at(500)), Some(at(1080)));
    assert_eq!(
        sim.set(1080).run(Command::ScheduleCapacity),
        vec![
            warned("a", at(1080), at(1200)),
            warned("c", at(1080), at(1200))
        ]
    );
    assert_eq!(sim.state.next_capacity_job(at(1080)), Some(at(1200)));
    // The sweeps before the boundary revoke nobody.
    assert_eq!(sim.set(1140).tick(), vec![]);
    assert_eq!(
        sim.set(1200).run(Command::ScheduleCapacity),
        vec![
            revoked("a", RevokeReason::PoolShrunk, at(1200)),
            revoked("c", RevokeReason::PoolShrunk, at(1200)),
            capacity(1, at(1200)),
        ]
    );
    assert_eq!(sim.state.effective_shared_slots(), 1);
    assert_eq!(sim.state.next_capacity_change(at(1200)), None);
    assert_eq!(sim.state.next_capacity_job(at(1200)), None);
    assert_eq!(sim.tick(), vec![]);
    // The snapshot image keeps the size.
    let image = ProductState::from_image(&sim.state.image());
    assert_eq!(image.effective_shared_slots(), 1);
}

#[test]
fn a_shrink_warning_the_shrink_did_not_need_is_lifted() {
    let mut s = scheduled(4, 0, 1200, 120);
    s.shared_slots = 2;
    let mut sim = Sim::new(s);
    for u in ["a", "b", "c", "d"] {
        sim.enrol(u);
        sim.request(u);
    }
    sim.set(500).activity("b");
    sim.activity("d");
    assert_eq!(
        sim.set(1080).run(Command::ScheduleCapacity),
        vec![
            warned("a", at(1080), at(1200)),
            warned("c", at(1080), at(1200))
        ]
    );
    sim.set(1100).release("b");
    // One revocation is enough now: a; c keeps the slot and loses the warning.
    assert_eq!(
        sim.set(1200).run(Command::ScheduleCapacity),
        vec![
            revoked("a", RevokeReason::PoolShrunk, at(1200)),
            capacity(2, at(1200)),
            activity("c", at(0)),
        ]
    );
    assert_eq!(
        sim.tick(),
        vec![],
        "the sweep of the same instant revokes nobody"
    );
    assert!(sim.state.holders().iter().all(|h| h.warned_at.is_none()));
}

#[test]
fn the_licence_tier_clamps_a_window_and_an_invalid_schedule_is_refused() {
    let mut s = scheduled(8, 600, 1200, 0);
    s.licence_tier = 10;
    let mut sim = Sim::new(s.clone());
    // Fixed users grow past what the window leaves.
    for u in ["f1", "f2", "f3", "f4"] {
        sim.run(Command::GiveFixed {
            user: u.into(),
            active: true,
        });
    }
    assert_eq!(sim.state.next_capacity_change(at(0)), change(6, at(600)));
    assert_eq!(
        sim.set(600).run(Command::ScheduleCapacity),
        vec![capacity(6, at(600))]
    );
    // A window above the tier is refused with a clear problem, and changes nothing.
    let mut bad = s;
    bad.schedule.weekly.push(WeeklyWindow {
        days: vec!["mon".into()],
        from: "09:00".into(),
        to: "08:00".into(),
        shared_slots: 2,
    });
    let journal = sim.journal.len();
    match sim.try_run(Command::Configure(bad)) {
        Err(Refusal::InvalidSchedule(text)) => {
            assert!(
                text.contains("schedule.dated[0]") && text.contains("exceed licence_tier"),
                "{text}"
            );
            assert!(
                text.contains("schedule.weekly[0]") && text.contains("cross midnight"),
                "{text}"
            );
        }
        other => panic!("refused: {other:?}"),
    }
    assert_eq!(sim.journal.len(), journal);
}

#[test]
fn removing_the_schedule_restores_shared_slots_at_once() {
    let mut sim = Sim::new(scheduled(3, 0, 1200, 0));
    for u in ["a", "b", "c"] {
        sim.enrol(u);
        sim.request(u);
    }
    let plain = settings(1, 3600, 60, 60);
    let events = sim.set(60).run(Command::Configure(plain));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(
                e,
                ProductEvent::SlotRevoked {
                    reason: RevokeReason::PoolShrunk,
                    ..
                }
            ))
            .count(),
        2
    );
    assert_eq!(sim.state.effective_shared_slots(), 1);
    assert_eq!(sim.state.next_capacity_job(at(60)), None);
    assert_eq!(sim.run(Command::ScheduleCapacity), vec![]);
}
