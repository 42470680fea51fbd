//! The JSON shapes of docs/contract.md, built from the core's answers.

use serde::Serialize;
use slotpool_events::{
    Blocked, Counts, FixedRequest, Holder, QueuePlace, RequestState, ReservationUse, Settings,
    SlotView, Timestamp,
};

/// An instant as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T10:00:00.000Z`.
pub fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.as_millis())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The user's slot state.
#[derive(Debug, Serialize)]
pub struct SlotState {
    /// `granted`, `fixed`, `queued`, `locked` or `none`; the fields below appear only
    /// where they apply.
    pub state: &'static str,
    /// For a queued member: their place in the queue, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// For a queued member: the core's estimate of the wait, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_s: Option<u64>,
    /// For a queued member: when to ask again, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// For a user revoked for inactivity: until when (RFC 3339) they may not ask again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
    /// For a holder: when (RFC 3339) inactivity would end the slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_at: Option<String>,
    /// For a holder: whether they have been warned that `revoke_at` is near.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warned: Option<bool>,
    /// For a queued member of a product with reservations (rule 10) who members behind
    /// may pass: `group_cap` (a group of theirs holds its cap) or `reserved` (the free
    /// slots are reserved for groups they are not in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<&'static str>,
    /// With `waiting_for: group_cap`: the group at its cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl From<&SlotView> for SlotState {
    fn from(v: &SlotView) -> Self {
        let mut s = SlotState {
            state: "none",
            position: None,
            estimated_wait_s: None,
            retry_after_s: None,
            locked_until: None,
            revoke_at: None,
            warned: None,
            waiting_for: None,
            group: None,
        };
        match v {
            SlotView::Granted { revoke_at, warned } => {
                s.state = "granted";
                s.revoke_at = Some(rfc3339(*revoke_at));
                s.warned = Some(*warned);
            }
            SlotView::Locked { until } => {
                s.state = "locked";
                s.locked_until = Some(rfc3339(*until));
            }
            SlotView::Fixed => s.state = "fixed",
            SlotView::Queued {
                position,
                estimated_wait_s,
                retry_after_s,
                waiting_for,
            } => {
                match waiting_for {
                    Some(Blocked::GroupCap { group }) => {
                        s.waiting_for = Some("group_cap");
                        s.group = Some(group.clone());
                    }
                    Some(Blocked::Reserved) => s.waiting_for = Some("reserved"),
                    Some(Blocked::Full) | None => {}
                }
                s.state = "queued";
                s.position = Some(*position);
                s.estimated_wait_s = Some(*estimated_wait_s);
                s.retry_after_s = Some(*retry_after_s);
            }
            SlotView::None => {}
        }
        s
    }
}

/// A product's settings with its counts.
#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: String,
    #[serde(flatten)]
    pub settings: Settings,
    pub holders: usize,
    pub queued: usize,
    pub members: usize,
    pub fixed: usize,
    /// Rule 10: each reservation with the group's current holders and queued members.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reservation_use: Vec<ReservationUse>,
    /// In passthrough mode: how many members would be waiting now if the pool were
    /// enforced (the shadow run's queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_be_queued: Option<usize>,
    /// The pool's size now: what the schedule makes of `shared_slots` (scheduled capacity).
    pub effective_shared_slots: u32,
    /// The next change of size the schedule makes, or null.
    pub next_capacity_change: Option<CapacityChangeView>,
}

/// A scheduled change of a pool's size: from `at` on, `shared_slots`.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityChangeView {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The size from then on.
    pub shared_slots: u32,
}

impl CapacityChangeView {
    /// The view of a change.
    pub fn of(change: slotpool_events::CapacityChange) -> Self {
        CapacityChangeView {
            at: rfc3339(change.at),
            shared_slots: change.shared_slots,
        }
    }
}

impl ProductView {
    /// The view with the use of the product's reservations (the admin API shows it).
    pub fn with_reservation_use(mut self, reservation_use: Vec<ReservationUse>) -> Self {
        self.reservation_use = reservation_use;
        self
    }

    /// The view with the product's scheduled capacity: its size now and its next change.
    pub fn with_capacity(
        mut self,
        effective: u32,
        next: Option<slotpool_events::CapacityChange>,
    ) -> Self {
        self.effective_shared_slots = effective;
        self.next_capacity_change = next.map(CapacityChangeView::of);
        self
    }

    /// The view of product `id`.
    pub fn new(id: &str, mut settings: Settings, counts: Counts) -> Self {
        // The webhook's secret is never shown; sent back as is, it keeps the stored one.
        settings.alert_webhook = settings.alert_webhook.map(|w| w.redacted());
        let would_be_queued =
            (settings.mode == slotpool_events::Mode::Passthrough).then_some(counts.queued);
        let settings_shared = settings.shared_slots;
        ProductView {
            would_be_queued,
            id: id.to_string(),
            settings,
            holders: counts.holders,
            queued: counts.queued,
            members: counts.members,
            fixed: counts.fixed,
            reservation_use: Vec::new(),
            effective_shared_slots: settings_shared,
            next_capacity_change: None,
        }
    }
}

/// Fields of [`ProductView`] that are not settings: ignored when a client PUTs back
/// what it got, so "GET, edit, PUT" works.
pub const READ_ONLY_PRODUCT_FIELDS: [&str; 9] = [
    "id",
    "holders",
    "queued",
    "members",
    "fixed",
    "reservation_use",
    "would_be_queued",
    "effective_shared_slots",
    "next_capacity_change",
];

/// One holder.
#[derive(Debug, Serialize)]
pub struct HolderView {
    pub user: String,
    pub since: String,
    pub last_activity: String,
    pub warned_at: Option<String>,
    /// When the slot is revoked unless the holder is active before.
    pub revoke_at: String,
}

impl From<&Holder> for HolderView {
    fn from(h: &Holder) -> Self {
        HolderView {
            user: h.user.clone(),
            since: rfc3339(h.since),
            last_activity: rfc3339(h.last_activity),
            warned_at: h.warned_at.map(rfc3339),
            revoke_at: rfc3339(h.revoke_at),
        }
    }
}

/// One queue place.
#[derive(Debug, Serialize)]
pub struct QueueView {
    pub user: String,
    pub position: usize,
    pub since: String,
}

impl From<&QueuePlace> for QueueView {
    fn from(q: &QueuePlace) -> Self {
        QueueView {
            user: q.user.clone(),
            position: q.position,
            since: rfc3339(q.since),
        }
    }
}

/// One directory user.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub user: String,
    pub active: bool,
}

/// One notice for administrators.
#[derive(Debug, Serialize)]
pub struct NoticeView {
    pub product: String,
    pub kind: &'static str,
    pub at: String,
    pub message: String,
    #[serde(flatten)]
    pub details: serde_json::Value,
}

impl NoticeView {
    /// The notice that the background check found damage in the journal.
    pub fn journal_damaged(detail: &str, at: Timestamp) -> Self {
        NoticeView {
            product: String::new(),
            kind: "journal_damaged",
            at: rfc3339(at),
            message: format!("{detail}. The service runs on state recovered from intact records; run `slotpool verify` on a copy of the data dir and restore the damaged stream from a backup."),
            details: serde_json::json!({}),
        }
    }

    /// The view of a notice raised by `product`.
    pub fn new(product: &str, notice: &slotpool_events::Notice) -> Self {
        match notice {
            slotpool_events::Notice::TierReconciled {
                at,
                fixed,
                licence_tier,
                shared_slots_before,
                shared_slots_after,
            } => NoticeView {
                product: product.to_string(),
                kind: "tier_reconciled",
                at: rfc3339(*at),
                message: format!(
                    "{fixed} fixed users and {shared_slots_before} shared slots exceeded the licence tier of {licence_tier}; the pool was reduced to {shared_slots_after} slots"
                ),
                details: serde_json::json!({
                    "fixed": fixed,
                    "licence_tier": licence_tier,
                    "shared_slots_before": shared_slots_before,
                    "shared_slots_after": shared_slots_after,
                }),
            },
            slotpool_events::Notice::AlertFired {
                name,
                kind,
                threshold,
                at,
                value,
            } => NoticeView {
                product: product.to_string(),
                kind: "alert_fired",
                at: rfc3339(*at),
                message: format!(
                    "alert {name} fired: {} is {value} (threshold {threshold})",
                    kind.code()
                ),
                details: serde_json::json!({
                    "alert": name,
                    "alert_kind": kind.code(),
                    "threshold": threshold,
                    "value": value,
                }),
            },
            slotpool_events::Notice::AlertResolved { name, at, value } => NoticeView {
                product: product.to_string(),
                kind: "alert_resolved",
                at: rfc3339(*at),
                message: format!("alert {name} resolved (value {value})"),
                details: serde_json::json!({
                    "alert": name,
                    "value": value,
                }),
            },
        }
    }
}

/// The report of a source-group sync, as `GET /admin/v1/products/{p}/sync` shows it.
#[derive(Debug, Serialize)]
pub struct SyncReportView {
    /// When it ran (RFC 3339).
    pub at: String,
    /// `manual` or `scheduled`.
    pub trigger: String,
    /// The source groups it read.
    pub source_groups: Vec<String>,
    /// Users enrolled.
    pub added: Vec<String>,
    /// Members removed: `[{"user", "why"}]`.
    pub removed: Vec<slotpool_events::Skipped>,
    /// Users left out: `[{"user", "why"}]` (`fixed`, `fixed_group`, `deactivated`,
    /// `not_eligible`, `{"refused": code}`).
    pub skipped: Vec<slotpool_events::Skipped>,
    /// Groups named in the settings that the directory does not have.
    pub missing_groups: Vec<String>,
}

impl From<slotpool_events::SyncReport> for SyncReportView {
    fn from(r: slotpool_events::SyncReport) -> Self {
        SyncReportView {
            at: rfc3339(r.at),
            trigger: r.trigger,
            source_groups: r.source_groups,
            added: r.added,
            removed: r.removed,
            skipped: r.skipped,
            missing_groups: r.missing_groups,
        }
    }
}

/// One fixed-licence request, as the user's ask and the administrators' list show it.
#[derive(Debug, Serialize)]
pub struct FixedRequestView {
    pub id: String,
    pub product: String,
    pub user: String,
    pub reason: String,
    /// `open`, `approved` or `rejected`.
    pub state: &'static str,
    pub requested_at: String,
    /// Once approved or rejected: when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// Once approved or rejected: the administrator's note (maybe empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FixedRequestView {
    /// The view of request `r` of `product`.
    pub fn new(product: &str, r: &FixedRequest) -> Self {
        let decided = match &r.state {
            RequestState::Approved { at, note } | RequestState::Rejected { at, note } => {
                Some((rfc3339(*at), note.clone()))
            }
            RequestState::Open => None,
        };
        let (decided_at, note) = decided.unzip();
        FixedRequestView {
            id: r.id.clone(),
            product: product.to_string(),
            user: r.user.clone(),
            reason: r.reason.clone(),
            state: r.state.code(),
            requested_at: rfc3339(r.at),
            decided_at,
            note,
        }
    }
}

/// One day's page views let through the gate by one bypass rule
/// (`GET /admin/v1/products/{p}/bypass`).
#[derive(Debug, Serialize)]
pub struct BypassDayView {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The rule's name.
    pub rule: String,
    /// How many views the rule let through that day.
    pub count: u64,
    /// Whose views, with how many each.
    pub users: std::collections::BTreeMap<String, u64>,
}

impl From<&slotpool_events::history::BypassDay> for BypassDayView {
    fn from(d: &slotpool_events::history::BypassDay) -> Self {
        BypassDayView {
            day: rfc3339(d.day).chars().take(10).collect(),
            rule: d.rule.clone(),
            count: d.count,
            users: d.users.clone(),
        }
    }
}
