//! The product connector's pure part: its settings, which recorded events may change who
//! belongs in the product's access group, who should belong there, what a re-sync must
//! change, and the retry schedule.
//!
//! The product's own journal stream is the connector's outbox: the delivering actor
//! (`slotpool-actors`' `ConnectorActor`) reads the stream after its cursor, asks
//! [`touched_users`] who may have changed, asks the product's state who should be in the
//! group ([`crate::ProductState::in_access_group`]), and delivers that. Delivering the
//! wanted membership (not each transition) makes every delivery idempotent and keeps one
//! user's changes in order.

use crate::event::ProductEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// Which REST API the connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// Jira Data Center: `/rest/api/2/group/user`.
    Jira,
    /// Confluence Data Center: `/rest/api/user/{u}/group/{g}`.
    Confluence,
    /// Bitbucket Data Center: `/rest/api/latest/admin/users/add-groups`, `remove-group`.
    Bitbucket,
    /// Any other product: a JSON POST per change, with an idempotency key.
    Webhook,
}

impl ConnectorKind {
    /// The lowercase name used in settings and the admin API.
    pub fn code(self) -> &'static str {
        match self {
            ConnectorKind::Jira => "jira",
            ConnectorKind::Confluence => "confluence",
            ConnectorKind::Bitbucket => "bitbucket",
            ConnectorKind::Webhook => "webhook",
        }
    }
}

/// A product's `connector` setting: where and how to keep its access group in step with
/// the pool. The credentials stay in the file; only its path is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Which REST API to speak.
    pub kind: ConnectorKind,
    /// The product's base URL (`https://jira.example.com`, with any context path).
    pub base_url: String,
    /// A file holding `user:password` (basic authentication) or a bearer token. Read by
    /// the delivering side at each round, never recorded or shown. Optional for webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// The product group that grants access (`jira-software-users`).
    pub access_group: String,
    /// Seconds one call to the product may take before it counts as failed.
    #[serde(default = "defaults::timeout_s")]
    pub timeout_s: u32,
    /// First retry delay after a failure, in milliseconds; doubles with each failure.
    #[serde(default = "defaults::retry_base_ms")]
    pub retry_base_ms: u32,
    /// Longest retry delay, in seconds.
    #[serde(default = "defaults::retry_cap_s")]
    pub retry_cap_s: u32,
    /// Re-sync the group at start and when deliveries recover after failures.
    #[serde(default = "defaults::auto_resync")]
    pub auto_resync: bool,
}

mod defaults {
    pub fn timeout_s() -> u32 {
        10
    }
    pub fn retry_base_ms() -> u32 {
        500
    }
    pub fn retry_cap_s() -> u32 {
        300
    }
    pub fn auto_resync() -> bool {
        true
    }
}

impl ConnectorSettings {
    /// Settings with every optional value at its default.
    pub fn new(kind: ConnectorKind, base_url: &str, access_group: &str) -> Self {
        ConnectorSettings {
            kind,
            base_url: base_url.to_string(),
            credentials_file: None,
            access_group: access_group.to_string(),
            timeout_s: defaults::timeout_s(),
            retry_base_ms: defaults::retry_base_ms(),
            retry_cap_s: defaults::retry_cap_s(),
            auto_resync: defaults::auto_resync(),
        }
    }

    /// Checks every value; each problem names its field (prefixed `connector.`).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let url = self.base_url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => {}
            _ => problems.push("connector.base_url must be an http:// or https:// URL".into()),
        }
        if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems
                .push("connector.base_url must be at most 2048 characters, without spaces".into());
        }
        let group = self.access_group.as_str();
        if group.trim().is_empty() || group.len() > 255 || group.chars().any(char::is_control) {
            problems.push("connector.access_group must be 1 to 255 printable characters".into());
        }
        if let Some(f) = &self.credentials_file {
            if f.trim().is_empty() || f.len() > 4096 || f.chars().any(char::is_control) {
                problems.push("connector.credentials_file must be a file path".into());
            }
        } else if self.kind != ConnectorKind::Webhook {
            problems.push(format!(
                "connector.credentials_file is required for kind {}",
                self.kind.code()
            ));
        }
        if !(1..=300).contains(&self.timeout_s) {
            problems.push("connector.timeout_s must be between 1 and 300".into());
        }
        if !(10..=600_000).contains(&self.retry_base_ms) {
            problems.push("connector.retry_base_ms must be between 10 and 600000".into());
        }
        if !(1..=86_400).contains(&self.retry_cap_s)
            || u64::from(self.retry_cap_s) * 1000 < u64::from(self.retry_base_ms)
        {
            problems.push(
                "connector.retry_cap_s must be between 1 and 86400, and not below retry_base_ms"
                    .into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The user whose access-group membership `event` may change, if any: a slot granted or
/// lost (released, revoked for any reason), a fixed licence given or taken, a user
/// (de)activated (a deactivated fixed user loses access; reactivated, regains it).
pub fn touched_user(event: &ProductEvent) -> Option<&str> {
    match event {
        ProductEvent::SlotGranted { user, .. }
        | ProductEvent::SlotReleased { user, .. }
        | ProductEvent::SlotRevoked { user, .. }
        | ProductEvent::FixedGiven { user }
        | ProductEvent::FixedTaken { user }
        | ProductEvent::UserDeactivated { user }
        | ProductEvent::UserReactivated { user } => Some(user),
        _ => None,
    }
}

/// Every user whose access-group membership `event` may change: [`touched_user`]'s, or
/// for a rename both names (the old one leaves the group, the new one joins it).
pub fn touched_names(event: &ProductEvent) -> [Option<&str>; 2] {
    match event {
        ProductEvent::MemberRenamed { from, to } => [Some(from), Some(to)],
        e => [touched_user(e), None],
    }
}

/// Folds a run of events into the users whose membership they may change, each once, in
/// the order of their first change. One delivery per user then carries the membership the
/// state wants after all of them, so a user's add and remove can never cross.
pub fn touched_users<'a>(events: impl IntoIterator<Item = &'a ProductEvent>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in events {
        for u in touched_names(e).into_iter().flatten() {
            if seen.insert(u) {
                out.push(u.to_string());
            }
        }
    }
    out
}

/// What a re-sync changes in the product's group: who to add, who to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Should be in the group and are not.
    pub missing: Vec<String>,
    /// Are in the group and should not be.
    pub extra: Vec<String>,
}

impl Drift {
    /// The difference between the group as the product has it and as the pool wants it.
    pub fn between(actual: &BTreeSet<String>, wanted: &BTreeSet<String>) -> Drift {
        Drift {
            missing: wanted.difference(actual).cloned().collect(),
            extra: actual.difference(wanted).cloned().collect(),
        }
    }

    /// Whether the group already matches.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// How long to wait before attempt `failures + 1`, in milliseconds, after `failures`
/// consecutive failures: `base`, doubling each time, never more than `cap_s` seconds.
/// No randomness (the core has none): connectors of different products fail and recover
/// independently, so their retries need no jitter to spread out.
pub fn retry_delay_ms(failures: u32, base_ms: u32, cap_s: u32) -> u64 {
    let cap = u64::from(cap_s) * 1000;
    if failures == 0 {
        return 0;
    }
    let doublings = (failures - 1).min(40);
    u64::from(base_ms)
        .saturating_mul(1u64 << doublings)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RevokeReason;
    use crate::time::Timestamp;

    #[test]
    fn the_retry_delay_doubles_from_the_base_up_to_the_cap() {
        let d: Vec<u64> = (0..8).map(|f| retry_delay_ms(f, 500, 5)).collect();
        assert_eq!(d, vec![0, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(retry_delay_ms(u32::MAX, 500, 300), 300_000);
        assert_eq!(retry_delay_ms(64, 600_000, 86_400), 86_400_000);
    }

    #[test]
    fn touched_users_are_each_named_once_in_order_of_first_change() {
        let at = Timestamp::from_millis(0);
        let events = vec![
            ProductEvent::SlotGranted {
                user: "b".into(),
                at,
            },
            ProductEvent::ActivityRecorded {
                user: "c".into(),
                at,
            },
            ProductEvent::SlotRevoked {
                user: "a".into(),
                reason: RevokeReason::Admin,
                at,
            },
            ProductEvent::SlotReleased {
                user: "b".into(),
                at,
            },
            ProductEvent::Queued {
                user: "d".into(),
                at,
            },
            ProductEvent::FixedGiven { user: "e".into() },
            ProductEvent::MemberEnrolled { user: "f".into() },
            ProductEvent::UserReactivated { user: "g".into() },
            ProductEvent::MemberRenamed {
                from: "b".into(),
                to: "h".into(),
            },
        ];
        assert_eq!(touched_users(&events), vec!["b", "a", "e", "g", "h"]);
    }

    #[test]
    fn drift_names_missing_and_extra_members() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let d = Drift::between(&set(&["a", "b", "x"]), &set(&["a", "b", "c"]));
        assert_eq!(d.missing, vec!["c"]);
        assert_eq!(d.extra, vec!["x"]);
        assert!(Drift::between(&set(&["a"]), &set(&["a"])).is_empty());
    }

    #[test]
    fn settings_are_validated_field_by_field() {
        let mut s = ConnectorSettings::new(ConnectorKind::Jira, "https://jira.example.com", "g");
        assert!(s.validate().is_err(), "jira needs credentials");
        s.credentials_file = Some("/etc/slotpool/jira.cred".into());
        assert!(s.validate().is_ok());
        let bad = ConnectorSettings {
            base_url: "ftp://x".into(),
            access_group: " ".into(),
            timeout_s: 0,
            retry_base_ms: 1,
            ..s.clone()
        };
        let problems = bad.validate().expect_err("bad").join("; ");
        for field in ["base_url", "access_group", "timeout_s", "retry_base_ms"] {
            assert!(problems.contains(field), "{problems}");
        }
        let hook = ConnectorSettings::new(ConnectorKind::Webhook, "http://127.0.0.1:9/h", "g");
        assert!(
            hook.validate().is_ok(),
            "a webhook may go without credentials"
        );
    }

    #[test]
    fn old_settings_without_the_optional_values_still_load() {
        let s: ConnectorSettings = serde_json::from_str(
            r#"{"kind":"bitbucket","base_url":"http://b","credentials_file":"/c","access_group":"g"}"#,
        )
        .expect("parse");
        assert_eq!(s.timeout_s, 10);
        assert!(s.auto_resync);
    }
}
