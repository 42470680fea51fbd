//! Space entitlements, the Confluence connector's second kind: the spaces the connector
//! fetched (the catalogue, with the permission operations each space offers), and members'
//! requests for permissions in a space, with the same workflow and audit trail as
//! fixed-licence requests: requested, approved or rejected (by whom, with a note),
//! fulfilled (the connector granted the permissions in Confluence), revoked (by an
//! administrator, or because the user was deactivated) and removed (the connector took
//! the permissions away again). Kept in the product's state and journal.
//!
//! The product's journal stream is the outbox, as for the access group: an approval or a
//! revocation is a recorded fact; the connector reads it after its cursor, asks
//! [`SpaceRequest::work`] what is still to be done, does it through Confluence's
//! space-permission REST API, and records the outcome (`SpaceAccessGranted`,
//! `SpaceAccessRemoved`), so a request already fulfilled is never granted twice.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One permission operation of a Confluence space, as Confluence's REST API names it:
/// `{"key": "read", "target": "space"}`, `{"key": "create", "target": "page"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceOperation {
    /// The operation: `read`, `create`, `delete`, `export`, `administer`, `archive`,
    /// `restrict_content`.
    pub key: String,
    /// What it applies to: `space`, `page`, `blogpost`, `comment`, `attachment`.
    pub target: String,
}

/// The operation and target pairs Confluence's space-permission API accepts (its
/// documented list): nothing else can be offered or requested.
pub const CONFLUENCE_OPERATIONS: [(&str, &str); 14] = [
    ("read", "space"),
    ("create", "page"),
    ("create", "blogpost"),
    ("create", "comment"),
    ("create", "attachment"),
    ("delete", "page"),
    ("delete", "blogpost"),
    ("delete", "comment"),
    ("delete", "attachment"),
    ("delete", "space"),
    ("export", "space"),
    ("administer", "space"),
    ("archive", "page"),
    ("restrict_content", "space"),
];

/// What a space offers when the settings do not say: view, add pages, blog posts,
/// comments and attachments, and export. Deleting, restricting and administering are
/// left for an administrator to offer on purpose.
pub const DEFAULT_OFFERED: [(&str, &str); 6] = [
    ("read", "space"),
    ("create", "page"),
    ("create", "blogpost"),
    ("create", "comment"),
    ("create", "attachment"),
    ("export", "space"),
];

impl SpaceOperation {
    /// The operation `key` on `target`.
    pub fn new(key: &str, target: &str) -> Self {
        SpaceOperation {
            key: key.to_string(),
            target: target.to_string(),
        }
    }

    /// `key:target`, as problems and logs name it.
    pub fn code(&self) -> String {
        format!("{}:{}", self.key, self.target)
    }

    /// Whether Confluence's space-permission API knows this pair.
    pub fn is_confluence_operation(&self) -> bool {
        CONFLUENCE_OPERATIONS
            .iter()
            .any(|(k, t)| *k == self.key && *t == self.target)
    }

    /// [`DEFAULT_OFFERED`] as operations.
    pub fn default_offered() -> Vec<SpaceOperation> {
        DEFAULT_OFFERED
            .iter()
            .map(|(k, t)| SpaceOperation::new(k, t))
            .collect()
    }
}

/// A connector's `spaces` setting: fetch the Confluence spaces and offer these
/// operations of each for members to request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceSettings {
    /// The operations members may request in every space (default [`DEFAULT_OFFERED`]).
    #[serde(default = "SpaceOperation::default_offered")]
    pub offered: Vec<SpaceOperation>,
}

impl Default for SpaceSettings {
    fn default() -> Self {
        SpaceSettings {
            offered: SpaceOperation::default_offered(),
        }
    }
}

impl SpaceSettings {
    /// Checks the offered operations (each known to Confluence, none twice, at least one);
    /// each problem names its field (prefixed `connector.spaces.`).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.offered.is_empty() {
            problems.push("connector.spaces.offered must name at least one operation".into());
        }
        let mut seen = BTreeSet::new();
        for op in &self.offered {
            if !op.is_confluence_operation() {
                problems.push(format!(
                    "connector.spaces.offered: {} is not a Confluence space operation (known: {})",
                    op.code(),
                    CONFLUENCE_OPERATIONS
                        .iter()
                        .map(|(k, t)| format!("{k}:{t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else if !seen.insert(op) {
                problems.push(format!(
                    "connector.spaces.offered: {} is named twice",
                    op.code()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// One Confluence space, as the catalogue holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    /// The space key (`DOCS`): how Confluence's REST API names the space.
    pub key: String,
    /// The space's name, for people.
    pub name: String,
    /// The operations members may request in it.
    pub operations: Vec<SpaceOperation>,
}

/// Longest space key, name or `by` accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Most spaces a catalogue keeps (a runaway guard on what a product answers).
pub const MAX_SPACES: usize = 10_000;

/// One permission the connector granted: the operation, and the id Confluence gave it
/// (`None` when Confluence said it was already granted: the id is then looked up when
/// the permission is removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub operation: SpaceOperation,
    pub permission_id: Option<u64>,
}

/// Why a space entitlement was revoked. Append-only, like the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpaceRevokeReason {
    /// An administrator revoked it.
    Admin,
    /// The user was deactivated in the directory.
    Deactivated,
}

impl SpaceRevokeReason {
    /// The stable snake_case code used in the API and audit output.
    pub fn code(self) -> &'static str {
        match self {
            SpaceRevokeReason::Admin => "admin",
            SpaceRevokeReason::Deactivated => "deactivated",
        }
    }
}

/// An approver's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceDecision {
    pub approved: bool,
    /// Who decided (the approver's name as given, `admin` by default).
    pub by: String,
    pub note: String,
    pub at: Timestamp,
}

/// A revocation of an approved request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRevocation {
    pub reason: SpaceRevokeReason,
    /// Who revoked (an administrator's name, or `directory` for a deactivation).
    pub by: String,
    pub at: Timestamp,
}

/// One member's request for permissions in a space, with its whole trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRequest {
    /// Its id (a UUID chosen by the caller).
    pub id: String,
    /// Who asks.
    pub user: String,
    /// The space's key.
    pub space: String,
    /// The operations asked for (sorted, each once).
    pub operations: Vec<SpaceOperation>,
    /// Why, in the member's words.
    pub reason: String,
    /// When it was asked.
    pub at: Timestamp,
    /// Approved or rejected, once decided.
    pub decision: Option<SpaceDecision>,
    /// When the connector granted the permissions, and what Confluence answered.
    pub granted: Option<(Timestamp, Vec<Grant>)>,
    /// Revoked, once it is.
    pub revoked: Option<SpaceRevocation>,
    /// When the connector removed the permissions again after a revocation.
    pub removed_at: Option<Timestamp>,
    /// When and why Confluence refused to grant it for good (the space is gone, the
    /// connector's account may not change its permissions): not retried; what was
    /// granted before the refusal is in `granted`, removed when the request is revoked.
    pub failed: Option<(Timestamp, String)>,
}

/// What the connector still has to do for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaceWork {
    /// Grant `operations` in `space` to `user`, then record `SpaceAccessGranted`.
    Grant {
        id: String,
        user: String,
        space: String,
        operations: Vec<SpaceOperation>,
    },
    /// Remove the `grants` in `space` from `user`, then record `SpaceAccessRemoved`.
    Remove {
        id: String,
        user: String,
        space: String,
        grants: Vec<Grant>,
    },
}

impl SpaceRequest {
    /// The stable code of where it stands: `open` (waiting for an approver), `rejected`,
    /// `approved` (waiting for the connector), `granted` (in effect in Confluence),
    /// `failed` (Confluence refused it for good), `revoking` (revoked, the connector has
    /// yet to remove the permissions), `revoked`.
    pub fn state(&self) -> &'static str {
        match (
            &self.decision,
            &self.granted,
            &self.revoked,
            self.removed_at,
        ) {
            (None, ..) => "open",
            (Some(d), ..) if !d.approved => "rejected",
            (_, _, Some(_), Some(_)) => "revoked",
            (_, Some(_), Some(_), None) => "revoking",
            (_, None, Some(_), None) => "revoked",
            _ if self.failed.is_some() => "failed",
            (_, Some(_), None, _) => "granted",
            (_, None, None, _) => "approved",
        }
    }

    /// Approved and not revoked: what an entitlement that is (or soon will be) in effect
    /// is.
    pub fn is_live(&self) -> bool {
        self.decision.as_ref().is_some_and(|d| d.approved) && self.revoked.is_none()
    }

    /// Waiting for an approver, or in effect: a second request of the same user for the
    /// same space is then a duplicate.
    pub fn is_pending_or_live(&self) -> bool {
        self.decision.is_none() || self.is_live()
    }

    /// What the connector still has to do: grant an approved request not yet granted,
    /// remove a revoked one that was granted. `None`: nothing (open, rejected, done).
    pub fn work(&self) -> Option<SpaceWork> {
        if self.is_live() && self.granted.is_none() && self.failed.is_none() {
            return Some(SpaceWork::Grant {
                id: self.id.clone(),
                user: self.user.clone(),
                space: self.space.clone(),
                operations: self.operations.clone(),
            });
        }
        match (&self.granted, &self.revoked, self.removed_at) {
            (Some((_, grants)), Some(_), None) => Some(SpaceWork::Remove {
                id: self.id.clone(),
                user: self.user.clone(),
                space: self.space.clone(),
                grants: grants.clone(),
            }),
            _ => None,
        }
    }
}

/// Sorts and checks the operations of a request as given (the order does not matter).
pub fn normalise(mut operations: Vec<SpaceOperation>) -> Vec<SpaceOperation> {
    operations.sort();
    operations
}
