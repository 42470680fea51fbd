//! Presence: what only the live service knows about users, handed to the sweep.
//!
//! Open browser streams, the last time a queued member's client asked, and activity the
//! product coalesced instead of journaling: none of it is journaled (it would be one
//! event per heartbeat), so it travels in the [`crate::Command::Tick`] that needs it.
//! After a restart it starts empty, and the actors set `last_seen` of every queued member
//! to the recovery time, so a restart costs nobody their queue place.

use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The live facts the sweep needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    /// Users with an open notification stream (a browser tab) on this product.
    pub connected: HashSet<String>,
    /// When each queued member's client last polled; missing means "since they queued".
    pub last_seen: HashMap<String, Timestamp>,
    /// The latest activity of holders that the product coalesced (not yet journaled).
    pub recent_activity: HashMap<String, Timestamp>,
    /// Page views the gate let through by a bypass rule since the last sweep: by rule
    /// name, then by user, how many. The sweep records them
    /// ([`crate::ProductEvent::BypassesCounted`]), so audit can tell who went past the
    /// pool and how often without an event per page view.
    pub bypassed: BTreeMap<String, BTreeMap<String, u64>>,
    /// Since when each alert rule's condition has held, as the sweeps saw it
    /// ([`crate::ProductState::alert_onsets`]); a rule not holding has none. Starts empty
    /// after a restart: the `for_s` of an alert not yet firing starts over.
    pub alert_onsets: BTreeMap<String, Timestamp>,
}
