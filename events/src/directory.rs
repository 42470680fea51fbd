//! The directory: users (with their SCIM profile), groups and memberships, and the
//! reports of the last source-group sync of each product.
//!
//! Like the product's rules, the directory's live here, pure: `decide` answers a
//! [`DirectoryCommand`] with events or a [`DirectoryRefusal`], `apply_at` folds an event
//! (with the instant its envelope was recorded at) into the state. A user's name
//! (`userName` in SCIM) is the id slotpool knows them by everywhere (`X-Slotpool-User`);
//! names are unique without regard to case. Each user and group also has a stable SCIM
//! `id`, chosen by the caller when it is created (the core has no randomness), and a
//! `version` that grows with every change (the SCIM ETag).

use crate::event::DirectoryEvent;
pub use crate::profile::{Email, Profile, MAX_TEXT_LEN};
use crate::sync_report::SyncReport;
use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use thiserror::Error;

/// One user as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The user's name: the id slotpool knows them by.
    pub user: String,
    /// Stable SCIM id.
    pub id: String,
    /// Whether the user may hold slots anywhere.
    pub active: bool,
    /// The SCIM profile.
    pub profile: Profile,
    /// When the user became known.
    pub created: Timestamp,
    /// When the user last changed.
    pub last_modified: Timestamp,
    /// Grows with every change (the SCIM ETag).
    pub version: u64,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// Stable SCIM id.
    pub id: String,
    /// The group's name (what products' `source_groups` and `fixed_groups` name).
    pub display_name: String,
    /// The identity provider's own id for the group.
    pub external_id: Option<String>,
    /// Members, by user name.
    pub members: BTreeSet<String>,
    /// When the group was created.
    pub created: Timestamp,
    /// When the group (or its membership) last changed.
    pub last_modified: Timestamp,
    /// Grows with every change (the SCIM ETag).
    pub version: u64,
}

/// A user as a create or replace describes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInput {
    /// The user's name.
    pub user: String,
    /// Active or not.
    pub active: bool,
    /// The profile.
    pub profile: Profile,
}

/// A group as a create or replace describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupInput {
    /// The group's name.
    pub display_name: String,
    /// The identity provider's own id.
    pub external_id: Option<String>,
    /// Members, by user SCIM id.
    pub members: Vec<String>,
}

/// A command to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryCommand {
    /// Make sure the user exists (created active if new).
    Ensure { user: String },
    /// Activate or deactivate a user (created first if new).
    SetActive { user: String, active: bool },
    /// Create a user with the given fresh SCIM id.
    CreateUser { id: String, input: UserInput },
    /// Replace a user's name-independent state (the name itself may only change case).
    /// `if_version`: refuse unless the user is at that version (SCIM `If-Match`).
    ReplaceUser {
        id: String,
        input: UserInput,
        if_version: Option<u64>,
    },
    /// Delete a user: deactivated first (so every pool lets them go), then dropped from
    /// every group and forgotten.
    DeleteUser { id: String, if_version: Option<u64> },
    /// Create a group with the given fresh SCIM id.
    CreateGroup { id: String, input: GroupInput },
    /// Replace a group's name, external id and members.
    ReplaceGroup {
        id: String,
        input: GroupInput,
        if_version: Option<u64>,
    },
    /// Delete a group (its memberships go with it).
    DeleteGroup { id: String, if_version: Option<u64> },
    /// Keep the report of a product's source-group sync.
    RecordSync { product: String, report: SyncReport },
}

/// Why the directory refused a command. Each has a stable code (SCIM's `scimType` where
/// one fits).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DirectoryRefusal {
    /// Another user already has this name (names are unique without regard to case).
    #[error("userName {0:?} is already taken")]
    Uniqueness(String),
    /// No user with this SCIM id.
    #[error("no user with id {0:?}")]
    UnknownUser(String),
    /// No group with this SCIM id.
    #[error("no group with id {0:?}")]
    UnknownGroup(String),
    /// An attribute that may not change was changed.
    #[error("{0}")]
    Mutability(String),
    /// A value is not acceptable (empty name, unknown member...).
    #[error("{0}")]
    InvalidValue(String),
    /// The resource is not at the version the caller expected (`If-Match`).
    #[error("the resource is at version {current}, not the one expected")]
    VersionMismatch { current: u64 },
}

impl DirectoryRefusal {
    /// The stable code (SCIM `scimType` where one fits).
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryRefusal::Uniqueness(_) => "uniqueness",
            DirectoryRefusal::UnknownUser(_) | DirectoryRefusal::UnknownGroup(_) => "not_found",
            DirectoryRefusal::Mutability(_) => "mutability",
            DirectoryRefusal::InvalidValue(_) => "invalidValue",
            DirectoryRefusal::VersionMismatch { .. } => "version_mismatch",
        }
    }
}

/// The SCIM id of a user the directory learnt of before SCIM ids existed (or through the
/// admin API): derived from the name, so it is stable across replays.
pub fn derived_id(user: &str) -> String {
    let h = Sha256::digest(user.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    // Shaped like a version-8 (custom) UUID, so clients that expect one are content.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

fn check_text(what: &str, v: &str) -> Result<(), DirectoryRefusal> {
    if v.trim().is_empty() || v.len() > MAX_TEXT_LEN || v.chars().any(char::is_control) {
        return Err(DirectoryRefusal::InvalidValue(format!(
            "{what} must be 1 to {MAX_TEXT_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// A new user name must meet the one name rule (see [`crate::user_name`]).
fn check_name(user: &str) -> Result<(), DirectoryRefusal> {
    crate::user_name::validate(user)
        .map_err(|e| DirectoryRefusal::InvalidValue(format!("userName {user:?}: {e}")))
}

/// Every user and group.
#[derive(Debug, Clone, Default)]
pub struct DirectoryState {
    users: HashMap<String, DirectoryUser>,
    /// Lower-cased name -> name: uniqueness without regard to case.
    by_lower: HashMap<String, String>,
    /// SCIM id -> name.
    by_id: HashMap<String, String>,
    groups: BTreeMap<String, DirectoryGroup>,
    syncs: BTreeMap<String, SyncReport>,
    /// Every rename, oldest first (`from`, `to`).
    renames: Vec<(String, String)>,
}

impl DirectoryState {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A user, by name (exactly as recorded).
    pub fn user(&self, user: &str) -> Option<&DirectoryUser> {
        self.users.get(user)
    }

    /// A user, by name without regard to case.
    pub fn user_ignoring_case(&self, user: &str) -> Option<&DirectoryUser> {
        self.by_lower
            .get(&user.to_lowercase())
            .and_then(|n| self.users.get(n))
    }

    /// A user, by SCIM id.
    pub fn user_by_id(&self, id: &str) -> Option<&DirectoryUser> {
        self.by_id.get(id).and_then(|n| self.users.get(n))
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> Vec<&DirectoryUser> {
        let mut v: Vec<_> = self.users.values().collect();
        v.sort_by(|a, b| a.user.cmp(&b.user));
        v
    }

    /// A group, by SCIM id.
    pub fn group(&self, id: &str) -> Option<&DirectoryGroup> {
        self.groups.get(id)
    }

    /// Every group, by id.
    pub fn groups(&self) -> impl Iterator<Item = &DirectoryGroup> {
        self.groups.values()
    }

    /// Groups named `name` (without regard to case) or with SCIM id `name`.
    pub fn groups_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a DirectoryGroup> {
        self.groups
            .values()
            .filter(move |g| g.id == name || g.display_name.eq_ignore_ascii_case(name))
    }

    /// The ids of the groups `user` belongs to.
    pub fn groups_of(&self, user: &str) -> Vec<&DirectoryGroup> {
        self.groups
            .values()
            .filter(|g| g.members.contains(user))
            .collect()
    }

    /// What a slot request tells a product with reservations (rule 10) of the groups of
    /// `user`: the name and the SCIM id of every group they belong to.
    pub fn group_names_of(&self, user: &str) -> Vec<String> {
        let mut out = Vec::new();
        for g in self.groups.values().filter(|g| g.members.contains(user)) {
            out.push(g.display_name.clone());
            out.push(g.id.clone());
        }
        out
    }

    /// The report of `product`'s last sync.
    pub fn sync_report(&self, product: &str) -> Option<&SyncReport> {
        self.syncs.get(product)
    }

    fn user_id_or(&self, id: &str) -> Result<&DirectoryUser, DirectoryRefusal> {
        self.user_by_id(id)
            .ok_or_else(|| DirectoryRefusal::UnknownUser(id.to_string()))
    }

    fn group_or(&self, id: &str) -> Result<&DirectoryGroup, DirectoryRefusal> {
        self.groups
            .get(id)
            .ok_or_else(|| DirectoryRefusal::UnknownGroup(id.to_string()))
    }

    fn check_version(current: u64, expected: Option<u64>) -> Result<(), DirectoryRefusal> {
        match expected {
            Some(v) if v != current => Err(DirectoryRefusal::VersionMismatch { current }),
            _ => Ok(()),
        }
    }

    /// The events `command` implies, or why it is refused. Refused commands record nothing.
    pub fn decide(
        &self,
        command: &DirectoryCommand,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRefusal> {
        let mut out = Vec::new();
        match command {
            DirectoryCommand::Ensure { user } => {
                self.ensure(&mut out, user)?;
            }
            DirectoryCommand::SetActive { user, active } => {
                let was_active = self.ensure(&mut out, user)?;
                push_active(&mut out, user, was_active, *active);
            }
            DirectoryCommand::CreateUser { id, input } => {
                check_name(&input.user)?;
                check_text("id", id)?;
                if self.user_ignoring_case(&input.user).is_some() {
                    return Err(DirectoryRefusal::Uniqueness(input.user.clone()));
                }
                if self.by_id.contains_key(id) || self.groups.contains_key(id) {
                    return Err(DirectoryRefusal::InvalidValue(format!(
                        "id {id:?} is in use"
                    )));
                }
                out.push(DirectoryEvent::UserProfiled {
                    user: input.user.clone(),
                    id: id.clone(),
                    profile: input.profile.clone(),
                });
                push_active(&mut out, &input.user, true, input.active);
            }
            DirectoryCommand::ReplaceUser {
                id,
                input,
                if_version,
            } => {
                let current = self.user_id_or(id)?;
                Self::check_version(current.version, *if_version)?;
                // A rename (identity providers push a changed `userName` under the same
                // id): the SCIM id is the stable key; the new name must be free (without
                // regard to case, another user's) and meet the name rule.
                let name = &input.user;
                if *name != current.user {
                    check_name(name)?;
                    if self
                        .user_ignoring_case(name)
                        .is_some_and(|other| other.id != current.id)
                    {
                        return Err(DirectoryRefusal::Uniqueness(name.clone()));
                    }
                    out.push(DirectoryEvent::UserRenamed {
                        from: current.user.clone(),
                        to: name.clone(),
                    });
                }
                if current.profile != input.profile {
                    out.push(DirectoryEvent::UserProfiled {
                        user: name.clone(),
                        id: current.id.clone(),
                        profile: input.profile.clone(),
                    });
                }
                push_active(&mut out, name, current.active, input.active);
            }
            DirectoryCommand::DeleteUser { id, if_version } => {
                let current = self.user_id_or(id)?;
                Self::check_version(current.version, *if_version)?;
                push_active(&mut out, &current.user, current.active, false);
                for g in self.groups_of(&current.user) {
                    out.push(DirectoryEvent::GroupMemberRemoved {
                        group: g.id.clone(),
                        user: current.user.clone(),
                    });
                }
                out.push(DirectoryEvent::UserDeleted {
                    user: current.user.clone(),
                });
            }
            DirectoryCommand::CreateGroup { id, input } => {
                check_text("displayName", &input.display_name)?;
                check_text("id", id)?;
                if self.groups.contains_key(id) || self.by_id.contains_key(id) {
                    return Err(DirectoryRefusal::InvalidValue(format!(
                        "id {id:?} is in use"
                    )));
                }
                let members = self.member_names(&input.members)?;
                out.push(DirectoryEvent::GroupCreated {
                    id: id.clone(),
                    display_name: input.display_name.clone(),
                    external_id: input.external_id.clone(),
                });
                for user in members {
                    out.push(DirectoryEvent::GroupMemberAdded {
                        group: id.clone(),
                        user,
                    });
                }
            }
            DirectoryCommand::ReplaceGroup {
                id,
                input,
                if_version,
            } => {
                let current = self.group_or(id)?;
                Self::check_version(current.version, *if_version)?;
                check_text("displayName", &input.display_name)?;
                let members = self.member_names(&input.members)?;
                if current.display_name != input.display_name
                    || current.external_id != input.external_id
                {
                    out.push(DirectoryEvent::GroupRenamed {
                        id: id.clone(),
                        display_name: input.display_name.clone(),
                        external_id: input.external_id.clone(),
                    });
                }
                for user in current.members.difference(&members) {
                    out.push(DirectoryEvent::GroupMemberRemoved {
                        group: id.clone(),
                        user: user.clone(),
                    });
                }
                for user in members.difference(&current.members) {
                    out.push(DirectoryEvent::GroupMemberAdded {
                        group: id.clone(),
                        user: user.clone(),
                    });
                }
            }
            DirectoryCommand::DeleteGroup { id, if_version } => {
                let current = self.group_or(id)?;
                Self::check_version(current.version, *if_version)?;
                out.push(DirectoryEvent::GroupDeleted { id: id.clone() });
            }
            DirectoryCommand::RecordSync { product, report } => {
                out.push(DirectoryEvent::SyncReported {
                    product: product.clone(),
                    report: report.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Creates `user` if unknown; returns whether they are active.
    fn ensure(&self, out: &mut Vec<DirectoryEvent>, user: &str) -> Result<bool, DirectoryRefusal> {
        if let Some(u) = self.users.get(user) {
            return Ok(u.active);
        }
        if let Some(other) = self.user_ignoring_case(user) {
            return Err(DirectoryRefusal::Uniqueness(format!(
                "{user} (the directory has {:?})",
                other.user
            )));
        }
        out.push(DirectoryEvent::UserCreated {
            user: user.to_string(),
        });
        Ok(true)
    }

    /// Member ids to user names; an unknown id is refused.
    fn member_names(&self, ids: &[String]) -> Result<BTreeSet<String>, DirectoryRefusal> {
        ids.iter()
            .map(|id| {
                self.user_by_id(id).map(|u| u.user.clone()).ok_or_else(|| {
                    DirectoryRefusal::InvalidValue(format!("member {id:?} is not a known user"))
                })
            })
            .collect()
    }

    /// Folds one recorded event into the state, without the instant (tests, models).
    pub fn apply(&mut self, event: &DirectoryEvent) {
        self.apply_at(event, Timestamp::default());
    }

    /// Folds one recorded event into the state; `at` is when its envelope was recorded
    /// (SCIM's `meta.created` / `lastModified`).
    pub fn apply_at(&mut self, event: &DirectoryEvent, at: Timestamp) {
        match event {
            DirectoryEvent::UserCreated { user } => {
                self.user_entry(user, None, at);
            }
            DirectoryEvent::UserDeactivated { user } => {
                let u = self.user_entry(user, None, at);
                u.active = false;
                touch(&mut u.version, &mut u.last_modified, at);
            }
            DirectoryEvent::UserReactivated { user } => {
                let u = self.user_entry(user, None, at);
                u.active = true;
                touch(&mut u.version, &mut u.last_modified, at);
            }
            DirectoryEvent::UserProfiled { user, id, profile } => {
                let u = self.user_entry(user, Some(id), at);
                u.profile = profile.clone();
                touch(&mut u.version, &mut u.last_modified, at);
            }
            DirectoryEvent::UserDeleted { user } => {
                if let Some(u) = self.users.remove(user) {
                    self.by_id.remove(&u.id);
                    self.by_lower.remove(&u.user.to_lowercase());
                }
                for g in self.groups.values_mut() {
                    if g.members.remove(user) {
                        touch(&mut g.version, &mut g.last_modified, at);
                    }
                }
            }
            DirectoryEvent::GroupCreated {
                id,
                display_name,
                external_id,
            } => {
                self.groups.insert(
                    id.clone(),
                    DirectoryGroup {
                        id: id.clone(),
                        display_name: display_name.clone(),
                        external_id: external_id.clone(),
                        members: BTreeSet::new(),
                        created: at,
                        last_modified: at,
                        version: 1,
                    },
                );
            }
            DirectoryEvent::GroupRenamed {
                id,
                display_name,
                external_id,
            } => {
                if let Some(g) = self.groups.get_mut(id) {
                    g.display_name = display_name.clone();
                    g.external_id = external_id.clone();
                    touch(&mut g.version, &mut g.last_modified, at);
                }
            }
            DirectoryEvent::GroupDeleted { id } => {
                self.groups.remove(id);
            }
            DirectoryEvent::GroupMemberAdded { group, user } => {
                if let Some(g) = self.groups.get_mut(group) {
                    if g.members.insert(user.clone()) {
                        touch(&mut g.version, &mut g.last_modified, at);
                    }
                }
            }
            DirectoryEvent::GroupMemberRemoved { group, user } => {
                if let Some(g) = self.groups.get_mut(group) {
                    if g.members.remove(user) {
                        touch(&mut g.version, &mut g.last_modified, at);
                    }
                }
            }
            DirectoryEvent::SyncReported { product, report } => {
                self.syncs.insert(product.clone(), report.clone());
            }
            DirectoryEvent::UserRenamed { from, to } => self.rename(from, to, at),
        }
    }

    /// `from` now goes by `to`: the same id, profile, active state and groups. A user
    /// already under `to` (which `decide` never lets happen) gives way.
    fn rename(&mut self, from: &str, to: &str, at: Timestamp) {
        if from == to {
            return;
        }
        // Kept even when `from` is unknown: an audit folds the renames alone.
        self.renames.push((from.to_string(), to.to_string()));
        let Some(mut u) = self.users.remove(from) else {
            return;
        };
        self.by_lower.remove(&from.to_lowercase());
        if let Some(stale) = self.users.remove(to) {
            self.by_id.remove(&stale.id);
        }
        u.user = to.to_string();
        touch(&mut u.version, &mut u.last_modified, at);
        self.by_lower.insert(to.to_lowercase(), to.to_string());
        self.by_id.insert(u.id.clone(), to.to_string());
        self.users.insert(to.to_string(), u);
        for g in self.groups.values_mut() {
            if g.members.remove(from) {
                g.members.insert(to.to_string());
                touch(&mut g.version, &mut g.last_modified, at);
            }
        }
    }

    /// Every rename recorded, oldest first, as `(from, to)`.
    pub fn renames(&self) -> &[(String, String)] {
        &self.renames
    }

    /// Every name `user` is connected to by renames (`user` included): what an audit
    /// follows to find a user's history under any of their names.
    pub fn names_of(&self, user: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::from([user.to_string()]);
        loop {
            let before = names.len();
            for (from, to) in &self.renames {
                if names.contains(from) || names.contains(to) {
                    names.insert(from.clone());
                    names.insert(to.clone());
                }
            }
            if names.len() == before {
                return names;
            }
        }
    }

    /// Each renamed-away name the directory no longer has, with the name its user has
    /// now (following later renames): what products that missed a rename (a crash between
    /// the directory recording it and the products hearing of it) are told again.
    pub fn pending_renames(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (from, _) in &self.renames {
            if self.users.contains_key(from)
                || out.iter().any(|(f, _): &(String, String)| f == from)
            {
                continue;
            }
            let mut now = from.clone();
            // Follow the chain of renames from `from`, at most once per rename.
            for _ in 0..=self.renames.len() {
                match self.renames.iter().rev().find(|(f, _)| *f == now) {
                    Some((_, to)) if !self.users.contains_key(&now) => now = to.clone(),
                    _ => break,
                }
            }
            if now != *from && self.users.contains_key(&now) {
                out.push((from.clone(), now));
            }
        }
        out
    }

    fn user_entry(&mut self, user: &str, id: Option<&String>, at: Timestamp) -> &mut DirectoryUser {
        let by_id = &mut self.by_id;
        let by_lower = &mut self.by_lower;
        self.users.entry(user.to_string()).or_insert_with(|| {
            let id = id.cloned().unwrap_or_else(|| derived_id(user));
            by_id.insert(id.clone(), user.to_string());
            by_lower.insert(user.to_lowercase(), user.to_string());
            DirectoryUser {
                user: user.to_string(),
                id,
                active: true,
                profile: Profile::default(),
                created: at,
                last_modified: at,
                version: 1,
            }
        })
    }
}

fn touch(version: &mut u64, last_modified: &mut Timestamp, at: Timestamp) {
    *version += 1;
    if at > *last_modified {
        *last_modified = at;
    }
}

fn push_active(out: &mut Vec<DirectoryEvent>, user: &str, was: bool, now: bool) {
    match (was, now) {
        (true, false) => out.push(DirectoryEvent::UserDeactivated {
            user: user.to_string(),
        }),
        (false, true) => out.push(DirectoryEvent::UserReactivated {
            user: user.to_string(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        state: &mut DirectoryState,
        c: DirectoryCommand,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRefusal> {
        let events = state.decide(&c)?;
        for (i, e) in events.iter().enumerate() {
            state.apply_at(e, Timestamp::from_millis(1000 + i as i64));
        }
        Ok(events)
    }

    fn create(state: &mut DirectoryState, id: &str, name: &str) {
        run(
            state,
            DirectoryCommand::CreateUser {
                id: id.into(),
                input: UserInput {
                    user: name.into(),
                    active: true,
                    profile: Profile::default(),
                },
            },
        )
        .expect("created");
    }

    #[test]
    fn user_names_are_unique_without_regard_to_case() {
        let mut d = DirectoryState::new();
        create(&mut d, "1", "Ann");
        let dup = run(
            &mut d,
            DirectoryCommand::CreateUser {
                id: "2".into(),
                input: UserInput {
                    user: "aNN".into(),
                    active: true,
                    profile: Profile::default(),
                },
            },
        );
        assert_eq!(dup, Err(DirectoryRefusal::Uniqueness("aNN".into())));
        assert!(matches!(
            d.decide(&DirectoryCommand::Ensure { user: "ann".into() }),
            Err(DirectoryRefusal::Uniqueness(_))
        ));
        assert_eq!(
            d.user_ignoring_case("ANN").map(|u| u.id.as_str()),
            Some("1")
        );
        // The admin API's users keep a stable, derived id.
        run(&mut d, DirectoryCommand::Ensure { user: "bob".into() }).expect("ok");
        assert_eq!(d.user("bob").map(|u| u.id.clone()), Some(derived_id("bob")));
        // A rename to another user's name (any case) is refused.
        let rename = |to: &str| DirectoryCommand::ReplaceUser {
            id: "1".into(),
            input: UserInput {
                user: to.into(),
                active: true,
                profile: Profile::default(),
            },
            if_version: None,
        };
        assert_eq!(
            d.decide(&rename("BOB")),
            Err(DirectoryRefusal::Uniqueness("BOB".into()))
        );
        assert!(matches!(
            d.decide(&rename("bob\u{200b}")),
            Err(DirectoryRefusal::InvalidValue(_))
        ));
    }

    #[test]
    fn a_rename_keeps_the_id_profile_and_groups() {
        let mut d = DirectoryState::new();
        create(&mut d, "1", "ann");
        run(
            &mut d,
            DirectoryCommand::CreateGroup {
                id: "g".into(),
                input: GroupInput {
                    display_name: "staff".into(),
                    external_id: None,
                    members: vec!["1".into()],
                },
            },
        )
        .expect("group");
        let v = d.user("ann").map(|u| u.version).unwrap_or_default();
        let events = run(
            &mut d,
            DirectoryCommand::ReplaceUser {
                id: "1".into(),
                input: UserInput {
                    user: "ann.smith".into(),
                    active: false,
                    profile: Profile::default(),
                },
                if_version: Some(v),
            },
        )
        .expect("renamed");
        assert_eq!(
            events,
            vec![
                DirectoryEvent::UserRenamed {
                    from: "ann".into(),
                    to: "ann.smith".into()
                },
                DirectoryEvent::UserDeactivated {
                    user: "ann.smith".into()
                },
            ]
        );
        assert!(d.user("ann").is_none() && d.user_ignoring_case("ANN").is_none());
        let u = d.user_by_id("1").expect("same id");
        assert_eq!((u.user.as_str(), u.active), ("ann.smith", false));
        assert_eq!(d.groups_of("ann.smith").len(), 1);
        assert!(d.groups_of("ann").is_empty());
        // The old name is free again; both names are connected for audit.
        create(&mut d, "2", "ann");
        assert_eq!(
            d.names_of("ann.smith"),
            BTreeSet::from(["ann".to_string(), "ann.smith".to_string()])
        );
        // A rename the products may have missed is told again only while the old name
        // is free: here it is taken again.
        assert!(d.pending_renames().is_empty());
        run(
            &mut d,
            DirectoryCommand::DeleteUser {
                id: "2".into(),
                if_version: None,
            },
        )
        .expect("deleted");
        assert_eq!(
            d.pending_renames(),
            vec![("ann".to_string(), "ann.smith".to_string())]
        );
    }

    #[test]
    fn versions_grow_and_if_match_is_checked() {
        let mut d = DirectoryState::new();
        create(&mut d, "1", "ann");
        let v = d.user("ann").map(|u| u.version).unwrap_or_default();
        let deactivate = |version| DirectoryCommand::ReplaceUser {
            id: "1".into(),
            input: UserInput {
                user: "ann".into(),
                active: false,
                profile: Profile::default(),
            },
            if_version: Some(version),
        };
        assert_eq!(
            d.decide(&deactivate(v + 7)),
            Err(DirectoryRefusal::VersionMismatch { current: v })
        );
        let events = run(&mut d, deactivate(v)).expect("ok");
        assert_eq!(
            events,
            vec![DirectoryEvent::UserDeactivated { user: "ann".into() }]
        );
        assert!(d.user("ann").is_some_and(|u| u.version > v && !u.active));
    }

    #[test]
    fn deleting_a_user_or_group_keeps_memberships_consistent() {
        let mut d = DirectoryState::new();
        create(&mut d, "1", "ann");
        create(&mut d, "2", "bob");
        for g in ["g1", "g2"] {
            run(
                &mut d,
                DirectoryCommand::CreateGroup {
                    id: g.into(),
                    input: GroupInput {
                        display_name: format!("group {g}"),
                        external_id: None,
                        members: vec!["1".into(), "2".into()],
                    },
                },
            )
            .expect("group");
        }
        // An unknown member is refused and changes nothing.
        let bad = d.decide(&DirectoryCommand::ReplaceGroup {
            id: "g1".into(),
            input: GroupInput {
                display_name: "group g1".into(),
                external_id: None,
                members: vec!["nobody".into()],
            },
            if_version: None,
        });
        assert!(matches!(bad, Err(DirectoryRefusal::InvalidValue(_))));
        let events = run(
            &mut d,
            DirectoryCommand::DeleteUser {
                id: "1".into(),
                if_version: None,
            },
        )
        .expect("deleted");
        assert_eq!(
            events.first(),
            Some(&DirectoryEvent::UserDeactivated { user: "ann".into() })
        );
        assert_eq!(
            events.last(),
            Some(&DirectoryEvent::UserDeleted { user: "ann".into() })
        );
        assert!(d.user("ann").is_none() && d.user_by_id("1").is_none());
        for g in d.groups() {
            assert_eq!(g.members.iter().collect::<Vec<_>>(), vec!["bob"]);
        }
        // The name is free again, under a new id.
        create(&mut d, "3", "ANN");
        run(
            &mut d,
            DirectoryCommand::DeleteGroup {
                id: "g1".into(),
                if_version: None,
            },
        )
        .expect("ok");
        assert!(d.group("g1").is_none());
        assert_eq!(d.groups_of("bob").len(), 1);
        assert!(matches!(
            d.decide(&DirectoryCommand::DeleteGroup {
                id: "g1".into(),
                if_version: None
            }),
            Err(DirectoryRefusal::UnknownGroup(_))
        ));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 5] = ["ann", "ANN", "bob", "Cy", "cy"];
    const IDS: [&str; 4] = ["u1", "u2", "u3", "u4"];
    const GROUPS: [&str; 3] = ["g1", "g2", "g3"];

    fn command() -> impl Strategy<Value = DirectoryCommand> {
        let id = prop::sample::select(IDS.to_vec()).prop_map(String::from);
        let gid = prop::sample::select(GROUPS.to_vec()).prop_map(String::from);
        let name = prop::sample::select(NAMES.to_vec()).prop_map(String::from);
        let members = prop::collection::vec(
            prop::sample::select(IDS.to_vec()).prop_map(String::from),
            0..4,
        );
        prop_oneof![
            (id.clone(), name.clone(), any::<bool>()).prop_map(|(id, user, active)| {
                DirectoryCommand::CreateUser {
                    id,
                    input: UserInput {
                        user,
                        active,
                        profile: Profile::default(),
                    },
                }
            }),
            (id.clone(), name.clone(), any::<bool>()).prop_map(|(id, user, active)| {
                DirectoryCommand::ReplaceUser {
                    id,
                    input: UserInput {
                        user,
                        active,
                        profile: Profile::default(),
                    },
                    if_version: None,
                }
            }),
            id.prop_map(|id| DirectoryCommand::DeleteUser {
                id,
                if_version: None
            }),
            (gid.clone(), members.clone()).prop_map(|(id, members)| {
                DirectoryCommand::CreateGroup {
                    id: id.clone(),
                    input: GroupInput {
                        display_name: id,
                        external_id: None,
                        members,
                    },
                }
            }),
            (gid.clone(), members).prop_map(|(id, members)| DirectoryCommand::ReplaceGroup {
                id: id.clone(),
                input: GroupInput {
                    display_name: id,
                    external_id: None,
                    members
                },
                if_version: None,
            }),
            gid.prop_map(|id| DirectoryCommand::DeleteGroup {
                id,
                if_version: None
            }),
            name.clone()
                .prop_map(|user| DirectoryCommand::Ensure { user }),
            (name, any::<bool>())
                .prop_map(|(user, active)| DirectoryCommand::SetActive { user, active }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// After any history: names are unique without regard to case, ids map to their
        /// users, every group member is an existing user, a refused command recorded
        /// nothing, and replaying the events gives the same state.
        #[test]
        fn names_stay_unique_and_memberships_consistent(commands in prop::collection::vec(command(), 1..60)) {
            let mut state = DirectoryState::new();
            let mut journal = Vec::new();
            for (i, c) in commands.iter().enumerate() {
                let before = state.users().len();
                match state.decide(c) {
                    Ok(events) => {
                        for e in events {
                            state.apply_at(&e, Timestamp::from_millis(i as i64));
                            journal.push((e, i));
                        }
                    }
                    Err(_) => prop_assert_eq!(state.users().len(), before),
                }
                let mut lower = std::collections::HashSet::new();
                for u in state.users() {
                    prop_assert!(lower.insert(u.user.to_lowercase()), "duplicate name {}", u.user);
                    prop_assert_eq!(state.user_by_id(&u.id).map(|x| &x.user), Some(&u.user));
                }
                for g in state.groups() {
                    for m in &g.members {
                        prop_assert!(state.user(m).is_some(), "group {} has a deleted member {}", g.id, m);
                    }
                }
            }
            let mut replayed = DirectoryState::new();
            for (e, i) in &journal {
                replayed.apply_at(e, Timestamp::from_millis(*i as i64));
            }
            prop_assert_eq!(replayed.users(), state.users());
            prop_assert_eq!(replayed.groups().collect::<Vec<_>>(), state.groups().collect::<Vec<_>>());
        }
    }
}
