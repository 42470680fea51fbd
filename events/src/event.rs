//! The events: the only facts slotpool ever records.
//!
//! Architecture Invariant: these enums are append-only. A variant, or a field of a
//! variant, is never removed, reordered or retyped, because bincode encodes positionally
//! and old journals must stay readable forever. New facts get new variants at the end.
//! The golden fixtures in `events/tests/golden.rs` fail the build if this is broken.

use crate::profile::Profile;
use crate::settings::{self, Settings};
use crate::sync_report::SyncReport;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Why a holder lost a slot. Append-only, like the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevokeReason {
    /// An administrator revoked it.
    Admin,
    /// The pool was resized below the number of holders.
    PoolShrunk,
    /// The user was deactivated in the directory.
    Deactivated,
    /// The user was removed from the pool.
    Removed,
    /// The user was given a fixed licence and no longer needs a slot.
    Fixed,
    /// The holder was inactive for the inactivity time (after a warning).
    Inactivity,
    /// A new request reclaimed the slot of a holder past the inactivity time.
    Reclaimed,
}

impl RevokeReason {
    /// Every reason, so that per-reason series (`slotpool_revocations_total{reason}`) can
    /// exist from the start.
    pub const ALL: [RevokeReason; 7] = [
        RevokeReason::Admin,
        RevokeReason::PoolShrunk,
        RevokeReason::Deactivated,
        RevokeReason::Removed,
        RevokeReason::Fixed,
        RevokeReason::Inactivity,
        RevokeReason::Reclaimed,
    ];

    /// The stable snake_case code used in the API, metrics and audit output.
    pub fn code(self) -> &'static str {
        match self {
            RevokeReason::Admin => "admin",
            RevokeReason::PoolShrunk => "pool_shrunk",
            RevokeReason::Deactivated => "deactivated",
            RevokeReason::Removed => "removed",
            RevokeReason::Fixed => "fixed",
            RevokeReason::Inactivity => "inactivity",
            RevokeReason::Reclaimed => "reclaimed",
        }
    }
}

/// Why a member left the queue without a slot. Append-only, like the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaveReason {
    /// The member left the queue themselves.
    Released,
    /// The user was deactivated in the directory.
    Deactivated,
    /// The user was removed from the pool.
    Removed,
    /// The user was given a fixed licence.
    Fixed,
    /// The member's client stopped polling or listening for the queue timer.
    Expired,
}

impl LeaveReason {
    /// The stable snake_case code used in the API, metrics and audit output.
    pub fn code(self) -> &'static str {
        match self {
            LeaveReason::Released => "released",
            LeaveReason::Deactivated => "deactivated",
            LeaveReason::Removed => "removed",
            LeaveReason::Fixed => "fixed",
            LeaveReason::Expired => "expired",
        }
    }
}

/// A fact about one product's pool. Folded by [`crate::ProductState::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Settings are the largest variant by far, but commands and events are moved one at a
// time, never kept in bulk, and settings change rarely: boxing them would cost an
// allocation on every path for no saving that matters.
#[allow(clippy::large_enum_variant)]
pub enum ProductEvent {
    /// The product was created or its settings changed.
    Configured {
        /// The new settings (stored as JSON text, see [`crate::settings`]).
        #[serde(with = "settings::as_json")]
        settings: Settings,
    },
    /// A user was enrolled in the pool.
    MemberEnrolled { user: String },
    /// A user was removed from the pool.
    MemberRemoved { user: String },
    /// A user was given a fixed licence.
    FixedGiven { user: String },
    /// A user's fixed licence was taken away.
    FixedTaken { user: String },
    /// The directory deactivated a user this product knows.
    UserDeactivated { user: String },
    /// The directory reactivated a user this product knows.
    UserReactivated { user: String },
    /// A member got a slot (from the queue, if they were in it).
    SlotGranted { user: String, at: Timestamp },
    /// A member joined the queue.
    Queued { user: String, at: Timestamp },
    /// A member left the queue without a slot.
    QueueLeft {
        user: String,
        reason: LeaveReason,
        at: Timestamp,
    },
    /// A holder gave the slot back.
    SlotReleased { user: String, at: Timestamp },
    /// A holder lost the slot.
    SlotRevoked {
        user: String,
        reason: RevokeReason,
        at: Timestamp,
    },
    /// A holder used the product. Cancels a pending warning.
    ActivityRecorded { user: String, at: Timestamp },
    /// A holder was warned that the slot will be revoked at `revoke_at` unless they use
    /// the product before then.
    WarningIssued {
        user: String,
        at: Timestamp,
        revoke_at: Timestamp,
    },
    /// A holder revoked for inactivity whose browser was still open was queued again
    /// automatically (auto re-login; once per revocation).
    Requeued { user: String, at: Timestamp },
    /// The hourly tier reconciliation found `fixed + shared_slots > licence_tier` and
    /// shrank the pool by the excess (the `Configured` that follows carries the new size).
    TierReconciled {
        at: Timestamp,
        fixed: u32,
        licence_tier: u32,
        shared_slots_before: u32,
        shared_slots_after: u32,
    },
    /// A member asked for a fixed licence (request `id`, unique across products).
    FixedRequested {
        id: String,
        user: String,
        reason: String,
        at: Timestamp,
    },
    /// An administrator approved request `id`; the `FixedGiven` (and the loss of the
    /// user's slot or queue place) follow in the same command.
    FixedRequestApproved {
        id: String,
        note: String,
        at: Timestamp,
    },
    /// An administrator rejected request `id`.
    FixedRequestRejected {
        id: String,
        note: String,
        at: Timestamp,
    },
    /// The reservation groups of a user (rule 10), as the product now knows them: keys
    /// (names in lower case) of the groups of the product's `reservations` the user is
    /// in, sorted. Recorded only by products with reservations, and only when they
    /// change (see [`crate::reservation`]).
    GroupsNoted { user: String, groups: Vec<String> },
    /// The directory renamed a user this product knows (an identity provider changed the
    /// `userName` of the same SCIM id): the entry under `from` (membership, fixed
    /// licence, slot or queue place with its warning, lock, reservation groups, and the
    /// user's fixed-licence requests) now goes by `to`. History before stays under
    /// `from`; audit follows the rename.
    MemberRenamed { from: String, to: String },
    /// The gate let `count` page views through by the bypass rule `rule` since the
    /// previous record of that rule, without a slot; `users` says whose, with how many
    /// each (sorted by name). Recorded by the sweep at `at`; a day's count per rule is the
    /// sum of the records stamped that day (UTC).
    BypassesCounted {
        rule: String,
        at: Timestamp,
        count: u64,
        users: Vec<(String, u64)>,
    },
    /// The licence-use alert `name` fired at `at` (a sweep): its rule (`kind`,
    /// `threshold`) held for its `for_s`; `value` is what the sweep measured, in the
    /// kind's unit. See [`crate::alert`].
    AlertFired {
        name: String,
        kind: crate::alert::AlertKind,
        threshold: i64,
        at: Timestamp,
        value: i64,
    },
    /// The firing licence-use alert `name` resolved at `at` (a sweep): its condition no
    /// longer held (or its rule was removed); `value` is what the sweep measured.
    AlertResolved {
        name: String,
        at: Timestamp,
        value: i64,
    },
    /// The connector fetched the Confluence spaces and they differ from the catalogue
    /// the product had: this is the whole new catalogue (see [`crate::space`]).
    SpacesCatalogued {
        spaces: Vec<crate::space::Space>,
        at: Timestamp,
    },
    /// A member asked for `operations` in `space` (request `id`, a UUID).
    SpaceRequested {
        id: String,
        user: String,
        space: String,
        operations: Vec<crate::space::SpaceOperation>,
        reason: String,
        at: Timestamp,
    },
    /// An approver approved space request `id`; the connector grants it next.
    SpaceRequestApproved {
        id: String,
        by: String,
        note: String,
        at: Timestamp,
    },
    /// An approver rejected space request `id`.
    SpaceRequestRejected {
        id: String,
        by: String,
        note: String,
        at: Timestamp,
    },
    /// The connector granted space request `id` in Confluence: these permissions.
    SpaceAccessGranted {
        id: String,
        grants: Vec<crate::space::Grant>,
        at: Timestamp,
    },
    /// Space request `id` was revoked (by an administrator, or because the user was
    /// deactivated); the connector removes what it granted next.
    SpaceAccessRevoked {
        id: String,
        reason: crate::space::SpaceRevokeReason,
        by: String,
        at: Timestamp,
    },
    /// The connector removed the permissions of revoked space request `id` in Confluence.
    SpaceAccessRemoved { id: String, at: Timestamp },
    /// Confluence refused to grant space request `id` for good (`error`, its answer):
    /// not retried; `grants` are the permissions granted before the refusal (removed
    /// when the request is revoked).
    SpaceAccessFailed {
        id: String,
        grants: Vec<crate::space::Grant>,
        error: String,
        at: Timestamp,
    },
    /// Scheduled capacity: from `at` on, the pool has `shared_slots` slots, what the
    /// product's schedule makes of its settings then (see [`crate::schedule`]). Recorded
    /// at each boundary the size changes, and after settings whose schedule holds another
    /// size than `shared_slots` now; holders the shrink revokes come before it, grants
    /// from the queue after it. The settings' `shared_slots` is unchanged.
    CapacityScheduled { shared_slots: u32, at: Timestamp },
}

/// A fact about the directory of users. Folded by [`crate::DirectoryState::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryEvent {
    /// A user became known (created active).
    UserCreated { user: String },
    /// A user was deactivated: they lose every slot and queue place.
    UserDeactivated { user: String },
    /// A deactivated user was activated again.
    UserReactivated { user: String },
    /// A user's SCIM profile was set (the user is created, active, with SCIM id `id` if
    /// new; an existing user keeps their id).
    UserProfiled {
        user: String,
        id: String,
        /// Recorded as JSON text (see [`crate::json_text`]).
        #[serde(with = "crate::json_text")]
        profile: Profile,
    },
    /// A user was deleted (deactivated first, and dropped from every group).
    UserDeleted { user: String },
    /// A group was created.
    GroupCreated {
        id: String,
        display_name: String,
        external_id: Option<String>,
    },
    /// A group's name or external id changed.
    GroupRenamed {
        id: String,
        display_name: String,
        external_id: Option<String>,
    },
    /// A group was deleted, with its memberships.
    GroupDeleted { id: String },
    /// A user joined a group.
    GroupMemberAdded { group: String, user: String },
    /// A user left a group.
    GroupMemberRemoved { group: String, user: String },
    /// A product's source-group sync ran; this is its report.
    SyncReported {
        product: String,
        /// Recorded as JSON text (see [`crate::json_text`]).
        #[serde(with = "crate::json_text")]
        report: SyncReport,
    },
    /// A user's name changed from `from` to `to` (case-insensitively unique, like every
    /// name); the SCIM id, profile, active state and group memberships stay with the
    /// user. Every product that knows `from` records a [`ProductEvent::MemberRenamed`].
    UserRenamed { from: String, to: String },
}
