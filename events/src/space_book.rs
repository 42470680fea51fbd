//! A product's space entitlements as state: the catalogue and the requests
//! ([`SpaceBook`]), folded from the events, and the checks a request must pass. The data
//! they hold (spaces, operations, grants, a request's trail) is plain data in
//! [`crate::space`], which the events and commands name.

use crate::command::Refusal;
use crate::event::ProductEvent;
use crate::space::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A product's spaces: the catalogue and the requests. Part of the product's state (and
/// of its image, whole).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceBook {
    /// The catalogue, by space key.
    pub catalogue: BTreeMap<String, Space>,
    /// When the connector last changed the catalogue.
    pub catalogued_at: Option<Timestamp>,
    /// Every request, by id (the history stays).
    pub requests: BTreeMap<String, SpaceRequest>,
}

/// The request whose connector work `event` may create: an approval (grant) or a
/// revocation (remove). The connector reads these in its outbox.
pub fn touched_request(event: &ProductEvent) -> Option<&str> {
    match event {
        ProductEvent::SpaceRequestApproved { id, .. }
        | ProductEvent::SpaceAccessRevoked { id, .. } => Some(id),
        _ => None,
    }
}

impl SpaceBook {
    /// Checks a new request against the catalogue and the user's other requests:
    /// a known space, at least one operation, each offered by the space and named once, no
    /// other request of the user for the space open or in effect, an unused id.
    pub fn check_request(
        &self,
        id: &str,
        user: &str,
        space: &str,
        operations: &[SpaceOperation],
    ) -> Result<(), Refusal> {
        let Some(s) = self.catalogue.get(space) else {
            return Err(Refusal::UnknownSpace {
                space: space.to_string(),
            });
        };
        if operations.is_empty() {
            return Err(Refusal::OperationNotOffered {
                operation: "(none)".into(),
                space: space.to_string(),
            });
        }
        let mut seen = BTreeSet::new();
        for op in operations {
            if !s.operations.contains(op) || !seen.insert(op) {
                return Err(Refusal::OperationNotOffered {
                    operation: op.code(),
                    space: space.to_string(),
                });
            }
        }
        if let Some(r) = self
            .requests
            .values()
            .find(|r| r.user == user && r.space == space && r.is_pending_or_live())
        {
            return Err(Refusal::DuplicateRequest { id: r.id.clone() });
        }
        if self.requests.contains_key(id) {
            return Err(Refusal::DuplicateRequest { id: id.to_string() });
        }
        Ok(())
    }

    /// An open request, or why not.
    pub fn open(&self, id: &str) -> Result<&SpaceRequest, Refusal> {
        let r = self.requests.get(id).ok_or(Refusal::UnknownRequest)?;
        if r.decision.is_some() {
            return Err(Refusal::RequestClosed { state: r.state() });
        }
        Ok(r)
    }

    /// The requests of `user` that are in effect or about to be (approved, not revoked).
    pub fn live_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a SpaceRequest> {
        self.requests
            .values()
            .filter(move |r| r.user == user && r.is_live())
    }

    /// Every request with connector work left, oldest first: what a connector that
    /// starts (or was down while approvals were made) delivers first.
    pub fn pending_work(&self) -> Vec<SpaceWork> {
        let mut v: Vec<&SpaceRequest> = self
            .requests
            .values()
            .filter(|r| r.work().is_some())
            .collect();
        v.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        v.into_iter().filter_map(SpaceRequest::work).collect()
    }

    /// The catalogue as a list, by key.
    pub fn spaces(&self) -> impl Iterator<Item = &Space> {
        self.catalogue.values()
    }

    /// Whether `spaces` is the catalogue already (then nothing is recorded).
    pub fn same_catalogue(&self, spaces: &[Space]) -> bool {
        spaces.len() == self.catalogue.len()
            && spaces.iter().all(|s| self.catalogue.get(&s.key) == Some(s))
    }

    /// Folds one of the space events; any other event changes nothing.
    pub fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::SpacesCatalogued { spaces, at } => {
                self.catalogue = spaces.iter().map(|s| (s.key.clone(), s.clone())).collect();
                self.catalogued_at = Some(*at);
            }
            ProductEvent::SpaceRequested {
                id,
                user,
                space,
                operations,
                reason,
                at,
            } => {
                self.requests.insert(
                    id.clone(),
                    SpaceRequest {
                        id: id.clone(),
                        user: user.clone(),
                        space: space.clone(),
                        operations: operations.clone(),
                        reason: reason.clone(),
                        at: *at,
                        decision: None,
                        granted: None,
                        revoked: None,
                        removed_at: None,
                        failed: None,
                    },
                );
            }
            ProductEvent::SpaceRequestApproved { id, by, note, at }
            | ProductEvent::SpaceRequestRejected { id, by, note, at } => {
                if let Some(r) = self.requests.get_mut(id) {
                    r.decision = Some(SpaceDecision {
                        approved: matches!(event, ProductEvent::SpaceRequestApproved { .. }),
                        by: by.clone(),
                        note: note.clone(),
                        at: *at,
                    });
                }
            }
            ProductEvent::SpaceAccessGranted { id, grants, at } => {
                if let Some(r) = self.requests.get_mut(id) {
                    r.granted = Some((*at, grants.clone()));
                }
            }
            ProductEvent::SpaceAccessRevoked { id, reason, by, at } => {
                if let Some(r) = self.requests.get_mut(id) {
                    r.revoked = Some(SpaceRevocation {
                        reason: *reason,
                        by: by.clone(),
                        at: *at,
                    });
                }
            }
            ProductEvent::SpaceAccessRemoved { id, at } => {
                if let Some(r) = self.requests.get_mut(id) {
                    r.removed_at = Some(*at);
                }
            }
            ProductEvent::SpaceAccessFailed {
                id,
                grants,
                error,
                at,
            } => {
                if let Some(r) = self.requests.get_mut(id) {
                    r.failed = Some((*at, error.clone()));
                    if !grants.is_empty() {
                        r.granted = Some((*at, grants.clone()));
                    }
                }
            }
            _ => {}
        }
    }

    /// The user of `from`'s requests is now `to` (the directory renamed them).
    pub fn rename(&mut self, from: &str, to: &str) {
        for r in self.requests.values_mut() {
            if r.user == from {
                r.user = to.to_string();
            }
        }
    }

    /// Whether any request names `user`.
    pub fn knows(&self, user: &str) -> bool {
        self.requests.values().any(|r| r.user == user)
    }
}
