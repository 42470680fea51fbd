//! Licence-use alerts: a product's alert rules, and when each fires and resolves.
//!
//! The licence-cleanup apps of Atlassian sites alert when licence use reaches a
//! threshold; slotpool does the same per product, from its settings (`alerts`, and
//! `alert_webhook` for delivery). Each [`AlertRule`] names a measure of the pool
//! ([`AlertKind`]), a threshold and how long (`for_s`) the condition must hold:
//!
//! - `use_percent`: holders × 100 ≥ threshold × shared slots (the effective pool size);
//!   the value is the percentage of shared slots held (rounded down);
//! - `queue_length`: members waiting ≥ threshold;
//! - `wait_p95_s`: the 95th percentile (nearest rank) of the waits of the members
//!   granted a slot from the queue in the last [`WAIT_WINDOW_S`] seconds > threshold
//!   seconds; no grant in the window means no wait, so the condition does not hold;
//! - `tier_over`: the licence tier in use, fixed users + shared slots, × 100 > threshold ×
//!   `licence_tier`: threshold 100 means "above the purchased count", 90 "above 90 % of
//!   it"; the value is the tier in use as a percentage of `licence_tier` (rounded down).
//!
//! Evaluation happens only in the product's sweep ([`crate::Command::Tick`], on the
//! scheduler's timer like every other time rule), with the time as an argument. A
//! condition's onset is the first sweep that saw it hold, continuously since; it lives in
//! [`crate::Presence`] (`alert_onsets`), not in the journal (a restart starts the `for_s`
//! of an alert that is not firing yet over). An alert **fires once**, at the first sweep
//! that finds its condition held for at least `for_s` (journaled as
//! [`crate::ProductEvent::AlertFired`]), and **resolves once**, at the first sweep that
//! finds it not holding any more, or its rule gone ([`crate::ProductEvent::AlertResolved`]).
//! So a condition shorter than `for_s` never fires, and which alerts are firing is
//! part of the product's state, rebuilt exactly by replay.

use crate::time::Timestamp;
use crate::time::MAX_INTERVAL_S;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How far back the waits of `wait_p95_s` reach: the members granted in the last hour.
pub const WAIT_WINDOW_S: u32 = 3600;
/// Most waits kept for `wait_p95_s` (the oldest go first beyond it).
pub const MAX_WAITS_KEPT: usize = 10_000;
/// Most alert rules a product may have.
pub const MAX_ALERTS: usize = 20;
/// Longest alert name, in bytes (a metric label).
pub const MAX_NAME_LEN: usize = 64;
/// Longest webhook address, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest webhook secret, in bytes.
pub const MAX_SECRET_LEN: usize = 1024;
/// What `GET` answers show in place of the webhook's secret. A `PUT` that sends it back
/// unchanged keeps the stored secret, so "GET, edit, PUT" works without knowing it.
pub const REDACTED: &str = "[redacted]";

/// What an alert rule measures. Append-only (recorded in events by position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertKind {
    /// Held shared slots as a percentage of the shared slots.
    #[serde(rename = "use_percent")]
    UsePercent,
    /// Members waiting in the queue.
    #[serde(rename = "queue_length")]
    QueueLength,
    /// The 95th percentile of recent queue waits, in seconds.
    #[serde(rename = "wait_p95_s")]
    WaitP95S,
    /// Fixed users + shared slots as a percentage of the licence tier.
    #[serde(rename = "tier_over")]
    TierOver,
}

impl AlertKind {
    /// The snake_case name used in settings, webhooks and the admin API.
    pub fn code(self) -> &'static str {
        match self {
            AlertKind::UsePercent => "use_percent",
            AlertKind::QueueLength => "queue_length",
            AlertKind::WaitP95S => "wait_p95_s",
            AlertKind::TierOver => "tier_over",
        }
    }

    /// The thresholds a rule of this kind accepts (anything else could never, or would
    /// always, hold).
    pub fn threshold_range(self) -> (i64, i64) {
        match self {
            AlertKind::UsePercent => (1, 100),
            AlertKind::QueueLength => (1, 1_000_000),
            AlertKind::WaitP95S => (1, i64::from(MAX_INTERVAL_S)),
            AlertKind::TierOver => (1, 1000),
        }
    }
}

/// One named alert rule of a product's `alerts` list; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// The alert's name: unique in the product, the `alert` of webhooks and metrics.
    pub name: String,
    /// What it measures.
    pub kind: AlertKind,
    /// The threshold, in the kind's unit (percent, members, seconds).
    pub threshold: i64,
    /// Seconds the condition must hold before the alert fires (0: at the first sweep).
    #[serde(default)]
    pub for_s: i64,
}

/// Where and how alerts are delivered: a JSON `POST` to `url`, its body signed with
/// HMAC-SHA256 under `secret` (header `X-Slotpool-Signature: sha256=<hex>`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertWebhook {
    /// The receiver (`http://` or `https://`).
    pub url: String,
    /// The shared secret that signs every body. Never shown: `GET` answers say
    /// [`REDACTED`].
    pub secret: String,
}

impl std::fmt::Debug for AlertWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWebhook")
            .field("url", &self.url)
            .field("secret", &REDACTED)
            .finish()
    }
}

impl AlertWebhook {
    /// The same webhook with its secret replaced by [`REDACTED`], for answers.
    pub fn redacted(&self) -> AlertWebhook {
        AlertWebhook {
            url: self.url.clone(),
            secret: REDACTED.to_string(),
        }
    }
}

/// A firing alert, as the product's state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// When it fired.
    pub since: Timestamp,
    /// The measured value then.
    pub value: i64,
}

/// A product's alert state: the alerts firing, and the recent queue waits `wait_p95_s`
/// reads. Folded from events ([`crate::ProductEvent::AlertFired`],
/// [`crate::ProductEvent::AlertResolved`], and the grants of queued members while a
/// `wait_p95_s` rule exists), so replay and snapshots rebuild it exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBook {
    /// The firing alerts, by name.
    pub firing: BTreeMap<String, Firing>,
    /// `(granted at, waited ms)` of the latest grants from the queue, oldest first: those
    /// of the last [`WAIT_WINDOW_S`] before the latest grant, at most [`MAX_WAITS_KEPT`].
    pub waits: std::collections::VecDeque<(Timestamp, i64)>,
}

impl AlertBook {
    /// Notes that a member who queued at `since` was granted at `at`.
    pub fn note_wait(&mut self, since: Timestamp, at: Timestamp) {
        let waited = at.as_millis().saturating_sub(since.as_millis()).max(0);
        self.waits.push_back((at, waited));
        let horizon = at
            .as_millis()
            .saturating_sub(i64::from(WAIT_WINDOW_S) * 1000);
        while self
            .waits
            .front()
            .is_some_and(|(t, _)| t.as_millis() < horizon)
            || self.waits.len() > MAX_WAITS_KEPT
        {
            self.waits.pop_front();
        }
    }

    /// The p95 of the waits of the grants in the [`WAIT_WINDOW_S`] up to `now`, in ms.
    pub fn wait_p95_ms(&self, now: Timestamp) -> Option<i64> {
        let from = now
            .as_millis()
            .saturating_sub(i64::from(WAIT_WINDOW_S) * 1000);
        p95(self
            .waits
            .iter()
            .filter(|(t, _)| t.as_millis() >= from && *t <= now)
            .map(|(_, w)| *w))
    }
}

/// What the sweep measures of a pool, for the alert rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measures {
    /// Holders of shared slots.
    pub holders: u64,
    /// Shared slots (the effective pool size).
    pub shared_slots: u64,
    /// Members waiting.
    pub queued: u64,
    /// Users with a fixed licence.
    pub fixed: u64,
    /// The purchased licence count.
    pub licence_tier: u64,
    /// The p95 of the waits of the recent grants, in ms; `None` without any.
    pub wait_p95_ms: Option<i64>,
}

impl AlertRule {
    /// Whether the rule's condition holds for `m`, and the measured value (in the kind's
    /// unit, rounded down).
    pub fn check(&self, m: &Measures) -> (bool, i64) {
        let t = self.threshold.max(0) as u128;
        let pct = |part: u64, whole: u64| {
            if whole == 0 {
                0
            } else {
                (u128::from(part) * 100 / u128::from(whole)) as i64
            }
        };
        match self.kind {
            AlertKind::UsePercent => (
                m.shared_slots > 0 && u128::from(m.holders) * 100 >= t * u128::from(m.shared_slots),
                pct(m.holders, m.shared_slots),
            ),
            AlertKind::QueueLength => (
                u128::from(m.queued) >= t,
                i64::try_from(m.queued).unwrap_or(i64::MAX),
            ),
            AlertKind::WaitP95S => match m.wait_p95_ms {
                Some(ms) => (i128::from(ms) > self.threshold as i128 * 1000, ms / 1000),
                None => (false, 0),
            },
            AlertKind::TierOver => {
                let used = m.fixed.saturating_add(m.shared_slots);
                (
                    u128::from(used) * 100 > t * u128::from(m.licence_tier),
                    pct(used, m.licence_tier),
                )
            }
        }
    }
}

/// A change of an alert's state, decided by [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    /// The rule's condition held for `for_s`: the alert fires.
    Fired {
        name: String,
        kind: AlertKind,
        threshold: i64,
        value: i64,
    },
    /// A firing alert's condition stopped holding (or its rule is gone).
    Resolved { name: String, value: i64 },
}

/// The onsets after a sweep at `now`: for each rule whose condition holds, when it began
/// holding (its previous onset, else `now`); rules that do not hold have none.
pub fn onsets(
    rules: &[AlertRule],
    m: &Measures,
    previous: &BTreeMap<String, Timestamp>,
    now: Timestamp,
) -> BTreeMap<String, Timestamp> {
    rules
        .iter()
        .filter(|r| r.check(m).0)
        .map(|r| {
            let at = previous.get(&r.name).copied().unwrap_or(now).min(now);
            (r.name.clone(), at)
        })
        .collect()
}

/// What a sweep at `now` changes: rules holding since their onset for at least `for_s`
/// that are not firing fire; firing alerts whose condition does not hold (or whose rule
/// is gone) resolve. A holding rule without an onset counts as holding since `now`.
pub fn evaluate(
    rules: &[AlertRule],
    m: &Measures,
    onsets: &BTreeMap<String, Timestamp>,
    firing: &BTreeMap<String, Firing>,
    now: Timestamp,
) -> Vec<AlertChange> {
    let mut out = Vec::new();
    for rule in rules {
        let (holds, value) = rule.check(m);
        let on = firing.contains_key(&rule.name);
        if holds && !on {
            let since = onsets.get(&rule.name).copied().unwrap_or(now);
            let held_ms = now.as_millis().saturating_sub(since.as_millis());
            if held_ms >= rule.for_s.max(0).saturating_mul(1000) {
                out.push(AlertChange::Fired {
                    name: rule.name.clone(),
                    kind: rule.kind,
                    threshold: rule.threshold,
                    value,
                });
            }
        } else if !holds && on {
            out.push(AlertChange::Resolved {
                name: rule.name.clone(),
                value,
            });
        }
    }
    for name in firing.keys() {
        if !rules.iter().any(|r| &r.name == name) {
            out.push(AlertChange::Resolved {
                name: name.clone(),
                value: 0,
            });
        }
    }
    out
}

/// The 95th percentile (nearest rank) of `waits_ms`; `None` when empty.
pub fn p95(waits_ms: impl IntoIterator<Item = i64>) -> Option<i64> {
    let mut v: Vec<i64> = waits_ms.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = (v.len() * 95).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Checks the `alerts` and `alert_webhook` settings; each problem names its field.
pub fn validate(rules: &[AlertRule], webhook: Option<&AlertWebhook>, problems: &mut Vec<String>) {
    if rules.len() > MAX_ALERTS {
        problems.push(format!("alerts lists at most {MAX_ALERTS} rules"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("alerts[{i}]");
        if !valid_name(&rule.name) {
            problems.push(format!(
                "{at}.name must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"
            ));
        } else if rules[..i]
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(&rule.name))
        {
            problems.push(format!("{at}.name '{}' is used twice", rule.name));
        }
        let (lo, hi) = rule.kind.threshold_range();
        if !(lo..=hi).contains(&rule.threshold) {
            problems.push(format!(
                "{at}.threshold of a {} alert must be between {lo} and {hi}",
                rule.kind.code()
            ));
        }
        if !(0..=i64::from(MAX_INTERVAL_S)).contains(&rule.for_s) {
            problems.push(format!(
                "{at}.for_s must be between 0 and {MAX_INTERVAL_S} seconds"
            ));
        }
    }
    if let Some(w) = webhook {
        let url = w.url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
        if !host_ok
            || url.len() > MAX_URL_LEN
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            problems.push(format!(
                "alert_webhook.url must be an http:// or https:// URL of at most {MAX_URL_LEN} characters, without spaces"
            ));
        }
        if w.secret.is_empty()
            || w.secret.len() > MAX_SECRET_LEN
            || w.secret.chars().any(char::is_control)
        {
            problems.push(format!(
                "alert_webhook.secret must be 1 to {MAX_SECRET_LEN} bytes without control characters"
            ));
        } else if w.secret == REDACTED {
            problems.push(format!(
                "alert_webhook.secret is the placeholder {REDACTED}, which keeps the current secret, but the product has none: give the secret"
            ));
        }
    }
}

/// A settings change that sends the webhook's secret back as [`REDACTED`] keeps the
/// current secret (when there is one): what answers show can be sent back unchanged.
pub fn keep_secret(new: &mut Option<AlertWebhook>, current: Option<&AlertWebhook>) {
    if let (Some(n), Some(c)) = (new.as_mut(), current) {
        if n.secret == REDACTED {
            n.secret = c.secret.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: AlertKind, threshold: i64, for_s: i64) -> AlertRule {
        AlertRule {
            name: "a".into(),
            kind,
            threshold,
            for_s,
        }
    }

    fn pool(holders: u64, shared: u64) -> Measures {
        Measures {
            holders,
            shared_slots: shared,
            licence_tier: 100,
            ..Measures::default()
        }
    }

    #[test]
    fn each_kind_measures_its_condition() {
        let busy = rule(AlertKind::UsePercent, 80, 0);
        assert_eq!(busy.check(&pool(8, 10)), (true, 80));
        assert_eq!(busy.check(&pool(7, 10)), (false, 70));
        assert_eq!(busy.check(&pool(0, 0)), (false, 0));
        let q = rule(AlertKind::QueueLength, 3, 0);
        let m = Measures {
            queued: 3,
            ..Measures::default()
        };
        assert_eq!(q.check(&m), (true, 3));
        let w = rule(AlertKind::WaitP95S, 60, 0);
        let mut m = Measures::default();
        assert_eq!(w.check(&m), (false, 0), "no recent grant, no wait");
        m.wait_p95_ms = Some(60_000);
        assert!(!w.check(&m).0, "above, not at, the threshold");
        m.wait_p95_ms = Some(60_001);
        assert_eq!(w.check(&m), (true, 60));
        let t = rule(AlertKind::TierOver, 100, 0);
        let mut m = Measures {
            fixed: 20,
            shared_slots: 80,
            licence_tier: 100,
            ..Measures::default()
        };
        assert_eq!(t.check(&m), (false, 100), "at the tier is not above it");
        m.fixed = 21;
        assert_eq!(t.check(&m), (true, 101));
        assert!(rule(AlertKind::TierOver, 90, 0).check(&pool(0, 91)).0);
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        assert_eq!(p95([]), None);
        assert_eq!(p95([5]), Some(5));
        assert_eq!(p95(1..=100), Some(95));
        assert_eq!(p95(1..=20), Some(19));
    }

    #[test]
    fn an_alert_fires_after_for_s_and_resolves_when_the_condition_stops() {
        let rules = vec![rule(AlertKind::UsePercent, 50, 60)];
        let t = Timestamp::from_millis;
        let busy = pool(5, 10);
        let on = onsets(&rules, &busy, &BTreeMap::new(), t(0));
        assert_eq!(on.get("a"), Some(&t(0)));
        assert!(evaluate(&rules, &busy, &on, &BTreeMap::new(), t(59_999)).is_empty());
        let fired = evaluate(&rules, &busy, &on, &BTreeMap::new(), t(60_000));
        assert!(matches!(&fired[..], [AlertChange::Fired { value: 50, .. }]));
        let firing = BTreeMap::from([(
            "a".to_string(),
            Firing {
                since: t(60_000),
                value: 50,
            },
        )]);
        assert!(evaluate(&rules, &busy, &on, &firing, t(70_000)).is_empty());
        let calm = pool(4, 10);
        assert!(onsets(&rules, &calm, &on, t(80_000)).is_empty());
        assert_eq!(
            evaluate(&rules, &calm, &BTreeMap::new(), &firing, t(80_000)),
            vec![AlertChange::Resolved {
                name: "a".into(),
                value: 40
            }]
        );
        assert_eq!(
            evaluate(&[], &calm, &BTreeMap::new(), &firing, t(80_000)),
            vec![AlertChange::Resolved {
                name: "a".into(),
                value: 0
            }],
            "a firing alert whose rule is gone resolves"
        );
    }

    #[test]
    fn bad_rules_and_webhooks_are_each_named() {
        let mut problems = Vec::new();
        let rules = vec![
            rule(AlertKind::UsePercent, 80, 300),
            rule(AlertKind::QueueLength, 0, 0),
            AlertRule {
                name: "b c".into(),
                ..rule(AlertKind::WaitP95S, -5, -1)
            },
            rule(AlertKind::TierOver, 100, i64::from(MAX_INTERVAL_S) + 1),
        ];
        let hook = AlertWebhook {
            url: "ftp://x".into(),
            secret: String::new(),
        };
        validate(&rules, Some(&hook), &mut problems);
        let all = problems.join("; ");
        for needle in [
            "alerts[1].name 'a' is used twice",
            "alerts[1].threshold of a queue_length alert must be between 1 and 1000000",
            "alerts[2].name must be",
            "alerts[2].threshold",
            "alerts[2].for_s",
            "alerts[3].for_s",
            "alert_webhook.url",
            "alert_webhook.secret must be 1 to",
        ] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
        let mut problems = Vec::new();
        validate(
            &rules[..1],
            Some(&AlertWebhook {
                url: "https://hooks.example/x".into(),
                secret: "s3cret".into(),
            }),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let unknown: Result<AlertRule, _> =
            serde_json::from_str(r#"{"name":"x","kind":"disk_full","threshold":1}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn the_secret_is_never_shown_and_the_placeholder_keeps_it() {
        let hook = AlertWebhook {
            url: "https://h/x".into(),
            secret: "s3cret".into(),
        };
        assert!(!format!("{hook:?}").contains("s3cret"));
        let shown = serde_json::to_string(&hook.redacted()).expect("json");
        assert!(!shown.contains("s3cret") && shown.contains(REDACTED));
        let mut again = Some(hook.redacted());
        keep_secret(&mut again, Some(&hook));
        assert_eq!(again.as_ref(), Some(&hook));
        let mut problems = Vec::new();
        validate(&[], Some(&hook.redacted()), &mut problems);
        assert!(problems.join("").contains("has none"), "{problems:?}");
    }
}
