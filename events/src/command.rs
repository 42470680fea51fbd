//! Commands: what may be asked of a product, and the typed refusals it may answer with.

use crate::presence::Presence;
use crate::settings::Settings;
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;

/// Something a user, an administrator or the directory asks of one product.
///
/// Whatever the decision needs to know from outside the product (such as whether the
/// directory holds a user as active) travels in the command, so deciding stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
// Settings are the largest variant by far, but commands and events are moved one at a
// time, never kept in bulk, and settings change rarely: boxing them would cost an
// allocation on every path for no saving that matters.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Create the product or change its settings (a resize is a change of `shared_slots`).
    Configure(Settings),
    /// Enrol a user in the pool; `active` is the directory's view of the user.
    Enrol { user: String, active: bool },
    /// Remove a user from the pool, with their slot or queue place.
    Remove { user: String },
    /// Give a user a fixed licence; they leave the pool.
    GiveFixed { user: String, active: bool },
    /// Take a user's fixed licence away.
    TakeFixed { user: String },
    /// The directory (de)activated a user.
    SetActive { user: String, active: bool },
    /// A user opens the product or presses "reconnect". `attributes`: the directory's
    /// attributes of the user (`None` when it does not know them), for the product's
    /// eligibility rule.
    ///
    /// `groups`: the directory's groups of the user (names and SCIM ids), for the
    /// product's reservations (rule 10); `None` when the caller did not ask the directory
    /// (no product uses reservations), which keeps what the product noted before.
    Request {
        user: String,
        attributes: Option<Arc<BTreeMap<String, String>>>,
        groups: Option<Arc<[String]>>,
    },
    /// A user gives the slot back, or leaves the queue.
    Release { user: String },
    /// A holder used the product.
    Activity { user: String },
    /// An administrator revokes a holder's slot.
    Revoke { user: String },
    /// "It is now T": the sweep. Records activity the product coalesced, warns holders
    /// whose warning is due, revokes warned holders whose time is up, expires queue places
    /// nobody keeps alive. What only the live service knows comes in `presence`.
    Tick { presence: Presence },
    /// The hourly tier reconciliation (rule 7).
    ReconcileTier,
    /// Record activity the product coalesced (see [`crate::Presence::recent_activity`]),
    /// before a decision that reads holders' activity: see
    /// [`crate::ProductState::reads_activity`].
    RecordActivity {
        recent: std::collections::HashMap<String, Timestamp>,
    },
    /// A member asks for a fixed licence; `id` is unique across products (a UUID).
    RequestFixed {
        id: String,
        user: String,
        reason: String,
    },
    /// An administrator approves request `id`: the user gets the fixed licence, as by
    /// [`Command::GiveFixed`]; `active` is the directory's view of the user.
    ApproveFixedRequest {
        id: String,
        note: String,
        active: bool,
    },
    /// An administrator rejects request `id`.
    RejectFixedRequest { id: String, note: String },
    /// The directory's groups of a user changed (names and SCIM ids): a product with
    /// reservations notes the change for a holder or queued member and re-fills.
    NoteGroups { user: String, groups: Arc<[String]> },
    /// A page view of the product through the gate (a reverse proxy asks on every one):
    /// a holder's view is activity (as [`Command::Activity`]), a fixed user passes, and a
    /// member who is not locked, for whom a slot is free with nobody ahead (rule 10
    /// respected), is granted as by [`Command::Request`]. Anyone else changes nothing:
    /// the gate never queues anyone, that is the queue page's request. Never refused
    /// (but for an unknown product): where the user stands afterwards is the answer.
    /// `attributes` and `groups` as in [`Command::Request`].
    ///
    /// `gate`: what the proxy said of the view (client address, URI, credential kind) and
    /// the directory's groups and activity of the user, for the product's bypass rules
    /// ([`crate::bypass`]): a view a rule admits passes without a slot, unless the user
    /// holds one (then it is activity) or is deactivated. `None`: no rule is consulted.
    PageView {
        user: String,
        attributes: Option<Arc<BTreeMap<String, String>>>,
        groups: Option<Arc<[String]>>,
        gate: Option<Arc<crate::bypass::GateRequest>>,
    },
    /// The directory renamed a user: what the product knows of `from` moves to `to`.
    Rename { from: String, to: String },
    /// The connector fetched the product's Confluence spaces: the catalogue to keep
    /// (recorded only when it changed).
    CatalogueSpaces { spaces: Vec<crate::space::Space> },
    /// A member asks for `operations` in `space`; `id` is a UUID.
    RequestSpace {
        id: String,
        user: String,
        space: String,
        operations: Vec<crate::space::SpaceOperation>,
        reason: String,
    },
    /// An approver approves space request `id`; `active` is the directory's view of the
    /// user.
    ApproveSpaceRequest {
        id: String,
        by: String,
        note: String,
        active: bool,
    },
    /// An approver rejects space request `id`.
    RejectSpaceRequest {
        id: String,
        by: String,
        note: String,
    },
    /// An administrator revokes the approved space request `id`.
    RevokeSpaceAccess { id: String, by: String },
    /// The connector granted space request `id` (a no-op unless it still needs it).
    FulfilSpaceRequest {
        id: String,
        grants: Vec<crate::space::Grant>,
    },
    /// The connector removed the permissions of revoked space request `id` (a no-op
    /// unless it still needs it).
    ConfirmSpaceRemoval { id: String },
    /// Confluence refused to grant space request `id` for good, after `grants` (a no-op
    /// unless the request still waits for its grant).
    FailSpaceRequest {
        id: String,
        grants: Vec<crate::space::Grant>,
        error: String,
    },
    /// "It is now T" for scheduled capacity (sent by the scheduler at each boundary of the
    /// product's schedule, at each shrink warning, and at start): resize the pool to what
    /// the schedule makes of it now, as an admin resize does, and warn the holders who
    /// will lose their slot to the next shrink once its warning lead has begun. See
    /// [`crate::ProductState::next_capacity_job`].
    ScheduleCapacity,
}

impl Command {
    /// A request by `user`, with no attributes from the directory (products without an
    /// eligibility rule need none).
    pub fn request(user: impl Into<String>) -> Command {
        Command::Request {
            user: user.into(),
            attributes: None,
            groups: None,
        }
    }
}

/// Why a product refused a command. Every refusal has a stable `reason` code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The product does not exist (was never configured).
    #[error("no such product")]
    UnknownProduct,
    /// The settings are invalid; the text names each offending field.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// A fixed licence would take the product over its licence tier.
    #[error(
        "fixed users ({fixed}) + shared_slots ({shared_slots}) would exceed licence_tier ({tier})"
    )]
    TierExceeded {
        fixed: u32,
        shared_slots: u32,
        tier: u32,
    },
    /// The user is not a member of the product's pool.
    #[error("the user is not a member of this product's pool")]
    NotMember,
    /// The user is deactivated in the directory.
    #[error("the user is deactivated")]
    Deactivated,
    /// The user holds no slot.
    #[error("the user holds no slot")]
    NotHolder,
    /// The user has a fixed licence and cannot be enrolled in the pool.
    #[error("the user has a fixed licence; fixed users are never pool members")]
    FixedUser,
    /// Not used as a refusal of `decide` (a locked user gets a `locked` slot state), but
    /// kept typed for front ends that must refuse, such as the gate.
    #[error("the user lost the slot for inactivity and may not request again before {until:?}")]
    Locked { until: Timestamp },
    /// No fixed-licence request has this id in this product.
    #[error("no such fixed-licence request")]
    UnknownRequest,
    /// The user already has an open fixed-licence request in this product.
    #[error("the user already has an open fixed-licence request ({id}) for this product")]
    DuplicateRequest { id: String },
    /// The request was already approved or rejected.
    #[error("the request is already {state}")]
    RequestClosed { state: &'static str },
    /// The product's eligibility rule does not admit the user.
    #[error("the product's eligibility rule does not admit this user")]
    NotEligible,
    /// No space of the product's catalogue has this key.
    #[error("no space {space:?} in this product's catalogue")]
    UnknownSpace { space: String },
    /// The space does not offer this operation (or it was named twice, or none was).
    #[error("space {space:?} does not offer the operation {operation} (or it is named twice)")]
    OperationNotOffered { operation: String, space: String },
    /// The product has no space entitlements (its connector is not a Confluence one
    /// with `spaces`).
    #[error("this product has no space entitlements (a Confluence connector with `spaces`)")]
    NoSpaces,
    /// The time zone or the schedule is invalid (scheduled capacity); the text names
    /// each offending window.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
}

impl Refusal {
    /// The stable snake_case code of the API's `reason` field.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownProduct => "unknown_product",
            Refusal::InvalidSettings(_) => "invalid_settings",
            Refusal::TierExceeded { .. } => "tier_exceeded",
            Refusal::NotMember => "not_member",
            Refusal::Deactivated => "deactivated",
            Refusal::NotHolder => "not_holder",
            Refusal::FixedUser => "fixed_user",
            Refusal::Locked { .. } => "locked",
            Refusal::UnknownRequest => "unknown_request",
            Refusal::DuplicateRequest { .. } => "duplicate_request",
            Refusal::RequestClosed { .. } => "request_closed",
            Refusal::NotEligible => "not_eligible",
            Refusal::UnknownSpace { .. } => "unknown_space",
            Refusal::OperationNotOffered { .. } => "operation_not_offered",
            Refusal::NoSpaces => "no_spaces",
            Refusal::InvalidSchedule(_) => "invalid_schedule",
        }
    }
}
