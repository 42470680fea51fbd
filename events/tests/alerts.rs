//! Licence-use alerts through the product's rules (issue G, part 5): an alert fires once
//! when its condition held for `for_s` across sweeps, resolves once when it stops, a
//! condition shorter than `for_s` never fires, and replay and images rebuild the firing
//! alerts exactly.

mod common;

use common::{at, settings, T0_MS};
use proptest::prelude::*;
use slotpool_events::alert::{AlertKind, AlertRule, AlertWebhook, REDACTED};
use slotpool_events::{Command, Presence, ProductEvent, ProductState, Refusal, Timestamp};
use std::collections::BTreeMap;

/// A product and the live service's part of alerts: the onsets the sweeps saw.
struct Pool {
    state: ProductState,
    onsets: BTreeMap<String, Timestamp>,
    events: Vec<ProductEvent>,
}

impl Pool {
    fn new(shared: u32, alerts: Vec<AlertRule>) -> Pool {
        let mut s = settings(shared, 3600, 60, 10);
        s.alerts = alerts;
        let mut p = Pool {
            state: ProductState::new(),
            onsets: BTreeMap::new(),
            events: Vec::new(),
        };
        p.run(Command::Configure(s), at(0)).expect("configured");
        for u in ["a", "b", "c"] {
            p.run(
                Command::Enrol {
                    user: u.into(),
                    active: true,
                },
                at(0),
            )
            .expect("enrolled");
        }
        p
    }

    fn run(&mut self, c: Command, now: Timestamp) -> Result<Vec<ProductEvent>, Refusal> {
        let events = self.state.decide(&c, now)?;
        for e in &events {
            self.state.apply(e);
        }
        self.events.extend(events.clone());
        Ok(events)
    }

    /// A sweep as the product actor makes it: the onsets first, then the tick.
    fn sweep(&mut self, now: Timestamp) -> Vec<ProductEvent> {
        self.onsets = self.state.alert_onsets(&self.onsets, now);
        let presence = Presence {
            alert_onsets: self.onsets.clone(),
            last_seen: self
                .state
                .queue()
                .into_iter()
                .map(|q| (q.user, now))
                .collect(),
            ..Presence::default()
        };
        self.run(Command::Tick { presence }, now)
            .expect("a sweep is never refused")
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    ProductEvent::AlertFired { .. } | ProductEvent::AlertResolved { .. }
                )
            })
            .collect()
    }
}

fn rule(kind: AlertKind, threshold: i64, for_s: i64) -> AlertRule {
    AlertRule {
        name: "busy".into(),
        kind,
        threshold,
        for_s,
    }
}

#[test]
fn an_alert_fires_once_after_for_s_and_resolves_once() {
    let mut p = Pool::new(2, vec![rule(AlertKind::UsePercent, 50, 60)]);
    p.run(Command::request("a"), at(0)).expect("granted");
    for s in (0..60).step_by(10) {
        assert!(p.sweep(at(s)).is_empty(), "held only {s} s");
    }
    assert_eq!(
        p.sweep(at(60)),
        vec![ProductEvent::AlertFired {
            name: "busy".into(),
            kind: AlertKind::UsePercent,
            threshold: 50,
            at: at(60),
            value: 50,
        }]
    );
    assert!(p.state.firing_alerts().contains_key("busy"));
    for s in (70..200).step_by(10) {
        assert!(p.sweep(at(s)).is_empty(), "fires once");
    }
    p.run(Command::Release { user: "a".into() }, at(205))
        .expect("released");
    assert_eq!(
        p.sweep(at(210)),
        vec![ProductEvent::AlertResolved {
            name: "busy".into(),
            at: at(210),
            value: 0,
        }]
    );
    for s in (220..400).step_by(10) {
        assert!(p.sweep(at(s)).is_empty(), "resolves once");
    }
    assert!(p.state.firing_alerts().is_empty());
    let notices: Vec<_> = p.state.notices().collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
}

#[test]
fn a_firing_alert_whose_rule_is_removed_resolves_at_the_next_sweep() {
    let mut p = Pool::new(1, vec![rule(AlertKind::UsePercent, 100, 0)]);
    p.run(Command::request("a"), at(0)).expect("granted");
    assert_eq!(p.sweep(at(0)).len(), 1, "for_s 0 fires at the first sweep");
    let plain = settings(1, 3600, 60, 10);
    p.run(Command::Configure(plain), at(5)).expect("configured");
    assert!(matches!(
        &p.sweep(at(10))[..],
        [ProductEvent::AlertResolved { .. }]
    ));
    assert!(p.sweep(at(20)).is_empty());
}

#[test]
fn queue_length_wait_p95_and_tier_over_fire_on_their_own_measure() {
    let rules = vec![
        AlertRule {
            name: "queue".into(),
            ..rule(AlertKind::QueueLength, 2, 0)
        },
        AlertRule {
            name: "slow".into(),
            ..rule(AlertKind::WaitP95S, 60, 0)
        },
    ];
    let mut p = Pool::new(1, rules);
    p.run(Command::request("a"), at(0)).expect("granted");
    p.run(Command::request("b"), at(0)).expect("queued");
    assert!(p.sweep(at(10)).is_empty(), "one waiting");
    p.run(Command::request("c"), at(15)).expect("queued");
    let fired = p.sweep(at(20));
    assert!(
        matches!(&fired[..], [ProductEvent::AlertFired { name, value: 2, .. }] if name == "queue"),
        "{fired:?}"
    );
    // b waited 120 s: the p95 of the last hour's waits is above 60 s.
    p.run(Command::Release { user: "a".into() }, at(120))
        .expect("released");
    let changed = p.sweep(at(130));
    assert!(
        changed.iter().any(
            |e| matches!(e, ProductEvent::AlertFired { name, value: 120, .. } if name == "slow")
        ),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .any(|e| matches!(e, ProductEvent::AlertResolved { name, .. } if name == "queue")),
        "one waits now: {changed:?}"
    );
    // An hour after that grant, no wait is recent any more.
    assert!(p.sweep(at(120 + 3600)).is_empty());
    let resolved = p.sweep(at(120 + 3601));
    assert!(
        matches!(&resolved[..], [ProductEvent::AlertResolved { name, .. }] if name == "slow"),
        "{resolved:?}"
    );

    let mut s = settings(90, 3600, 60, 10);
    s.alerts = vec![rule(AlertKind::TierOver, 90, 0)];
    let mut t = Pool {
        state: ProductState::new(),
        onsets: BTreeMap::new(),
        events: Vec::new(),
    };
    t.run(Command::Configure(s), at(0)).expect("configured");
    assert!(t.sweep(at(10)).is_empty(), "90 % is not above 90 %");
    t.run(
        Command::GiveFixed {
            user: "boss".into(),
            active: true,
        },
        at(11),
    )
    .expect("fixed");
    assert!(matches!(
        &t.sweep(at(20))[..],
        [ProductEvent::AlertFired { value: 91, .. }]
    ));
}

#[test]
fn bad_alert_settings_are_refused_and_change_nothing() {
    let p = Pool::new(2, vec![rule(AlertKind::UsePercent, 80, 300)]);
    let before = p.state.settings().cloned();
    let mut bad = settings(2, 3600, 60, 10);
    bad.alerts = vec![
        rule(AlertKind::UsePercent, 80, 300),
        rule(AlertKind::QueueLength, 5, 0),
    ];
    let Err(Refusal::InvalidSettings(why)) = p.state.decide(&Command::Configure(bad), at(1)) else {
        panic!("duplicate names are refused");
    };
    assert!(why.contains("used twice"), "{why}");
    assert_eq!(p.state.settings().cloned(), before);
}

#[test]
fn the_redacted_secret_keeps_the_stored_one() {
    let mut s = settings(2, 3600, 60, 10);
    s.alert_webhook = Some(AlertWebhook {
        url: "https://hooks.example/x".into(),
        secret: "s3cret".into(),
    });
    let mut p = Pool {
        state: ProductState::new(),
        onsets: BTreeMap::new(),
        events: Vec::new(),
    };
    p.run(Command::Configure(s.clone()), at(0))
        .expect("configured");
    let mut again = s.clone();
    again.alert_webhook = s.alert_webhook.as_ref().map(AlertWebhook::redacted);
    again.shared_slots = 1;
    p.run(Command::Configure(again), at(1)).expect("configured");
    let kept = p.state.settings().and_then(|s| s.alert_webhook.clone());
    assert_eq!(kept.map(|w| w.secret), Some("s3cret".to_string()));
    assert_ne!(REDACTED, "s3cret");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::proptest_cases(256), ..ProptestConfig::default() })]

    /// Sweeps every 10 s over a pool that is busy (one of two slots held: 50 %) or calm
    /// at each step. Fired and resolved alternate, starting with fired; every firing
    /// comes after at least `for_s` of busy sweeps; a busy run shorter than `for_s`
    /// never fires; replay and an image rebuild the same firing alerts.
    #[test]
    fn alerts_fire_only_after_for_s_and_alternate(busy in proptest::collection::vec(any::<bool>(), 1..60), for_s in 0i64..80) {
        let mut p = Pool::new(2, vec![rule(AlertKind::UsePercent, 50, for_s)]);
        let mut run_start: Option<i64> = None;
        let mut firing = false;
        for (i, b) in busy.iter().enumerate() {
            let s = 10 * i as i64 + 10;
            let holding = p.state.counts().holders > 0;
            if *b && !holding {
                p.run(Command::request("a"), at(s - 5)).expect("granted");
            } else if !*b && holding {
                p.run(Command::Release { user: "a".into() }, at(s - 5)).expect("released");
            }
            if *b { run_start.get_or_insert(s); } else { run_start = None; }
            let changes = p.sweep(at(s));
            prop_assert!(changes.len() <= 1);
            match changes.first() {
                Some(ProductEvent::AlertFired { at: t, .. }) => {
                    prop_assert!(!firing, "fired twice");
                    let start = run_start.expect("fires only while busy");
                    prop_assert!((t.as_millis() - T0_MS) / 1000 - start >= for_s, "fired before for_s");
                    firing = true;
                }
                Some(ProductEvent::AlertResolved { .. }) => {
                    prop_assert!(firing, "resolved while not firing");
                    prop_assert!(!*b);
                    firing = false;
                }
                Some(other) => prop_assert!(false, "{:?}", other),
                None => {
                    // Not firing after a busy run of at least for_s would be a missed alert.
                    if let Some(start) = run_start {
                        prop_assert!(firing || s - start < for_s, "missed at {}", s);
                    } else {
                        prop_assert!(!firing, "still firing while calm");
                    }
                }
            }
        }
        let replayed = ProductState::replay(&p.events);
        prop_assert_eq!(replayed.firing_alerts(), p.state.firing_alerts());
        let imaged = ProductState::from_image(&p.state.image());
        prop_assert_eq!(imaged.firing_alerts(), p.state.firing_alerts());
        prop_assert_eq!(imaged.image(), p.state.image());
    }
}
