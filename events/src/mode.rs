//! Gate modes: how a product's gate treats its users, and what it answers a page view.
//!
//! - `enforce` (the default): the pool decides, as docs/design.md says.
//! - `passthrough`: a shadow run. Nobody waits: the gate lets every member through, but
//!   the pool still decides what enforcing would have done (a page view of a member
//!   without a slot is their request: granted, or queued), and the sweep still warns and
//!   revokes. So the journal, the dashboard and audit hold the would-be figures of the
//!   pool size before an administrator enforces it; `would_be_queued` is how many
//!   members would be waiting now.
//! - `queue_all` (maintenance): nobody new gets a slot. Every request queues (bypass
//!   rules still pass), the queue page shows the administrator's `queue_all_message`,
//!   freed slots stay free; holders keep the slot they have until they release it or
//!   lose it as always. Leaving the mode serves the queue in order, as a resize does.
//!
//! A mode is a setting: switching is a `Configured` event, immediate, and the product's
//! open notification streams hear a `mode` event.

use serde::{Deserialize, Serialize};

/// A product's gate mode (setting `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The pool decides (the default).
    #[default]
    Enforce,
    /// Nobody waits; the pool records what enforcing would have done.
    Passthrough,
    /// Maintenance: nobody new gets a slot; everyone but bypass rules waits.
    QueueAll,
}

impl Mode {
    /// Every mode, for per-mode series and documentation.
    pub const ALL: [Mode; 3] = [Mode::Enforce, Mode::Passthrough, Mode::QueueAll];

    /// The stable snake_case code of the setting, the API and the notification stream.
    pub fn code(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Passthrough => "passthrough",
            Mode::QueueAll => "queue_all",
        }
    }

    /// Whether this is the default, `enforce` (not serialized, so the JSON of older
    /// settings is unchanged).
    pub fn is_enforce(&self) -> bool {
        *self == Mode::Enforce
    }
}

/// What the gate answers a page view, as the core decides it from where the user stands
/// after the view ([`crate::ProductState::passage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passage {
    /// Through: the user holds a slot.
    Granted,
    /// Through: a fixed licence.
    Fixed,
    /// Through without a slot, by the named bypass rule.
    Bypassed(String),
    /// Through in passthrough mode; `would_be` is what enforcing would have answered
    /// (`granted`, `fixed`, `queued`, `locked`, `none`).
    Passthrough(&'static str),
    /// Not through; `state` is where the user stands (`queued`, `locked`, `none`).
    Refused(&'static str),
}
