//! The directory: which users exist and whether they are active.
//!
//! Issue C grows this into the SCIM-provisioned directory (attributes, groups). The
//! rules stay here, pure, like the product's.

use crate::event::DirectoryEvent;
use std::collections::HashMap;

/// A command to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryCommand {
    /// Make sure the user exists (created active if new).
    Ensure { user: String },
    /// Activate or deactivate a user (created first if new).
    SetActive { user: String, active: bool },
}

/// One user as the directory knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Whether the user may hold slots anywhere.
    pub active: bool,
}

/// Every known user.
#[derive(Debug, Clone, Default)]
pub struct DirectoryState {
    users: HashMap<String, DirectoryUser>,
}

impl DirectoryState {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A user, if known.
    pub fn user(&self, user: &str) -> Option<DirectoryUser> {
        self.users.get(user).copied()
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> Vec<(String, DirectoryUser)> {
        let mut v: Vec<_> = self.users.iter().map(|(k, u)| (k.clone(), *u)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The events `command` implies; the directory never refuses.
    pub fn decide(&self, command: &DirectoryCommand) -> Vec<DirectoryEvent> {
        let mut out = Vec::new();
        let (user, active) = match command {
            DirectoryCommand::Ensure { user } => (user, None),
            DirectoryCommand::SetActive { user, active } => (user, Some(*active)),
        };
        let current = self.users.get(user.as_str());
        if current.is_none() {
            out.push(DirectoryEvent::UserCreated { user: user.clone() });
        }
        let was_active = current.is_none_or(|u| u.active);
        match active {
            Some(false) if was_active => {
                out.push(DirectoryEvent::UserDeactivated { user: user.clone() })
            }
            Some(true) if !was_active => {
                out.push(DirectoryEvent::UserReactivated { user: user.clone() })
            }
            _ => {}
        }
        out
    }

    /// Folds one recorded event into the state.
    pub fn apply(&mut self, event: &DirectoryEvent) {
        match event {
            DirectoryEvent::UserCreated { user } => {
                self.users
                    .entry(user.clone())
                    .or_insert(DirectoryUser { active: true });
            }
            DirectoryEvent::UserDeactivated { user } => {
                self.users
                    .entry(user.clone())
                    .or_insert(DirectoryUser { active: true })
                    .active = false;
            }
            DirectoryEvent::UserReactivated { user } => {
                self.users
                    .entry(user.clone())
                    .or_insert(DirectoryUser { active: true })
                    .active = true;
            }
        }
    }
}
