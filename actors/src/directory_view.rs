//! The directory view: a read-mostly copy of what a slot request needs to know from the
//! directory about its user (whether the directory knows them, their attributes for a
//! product's eligibility rule, their groups for its reservations), readable by HTTP workers without a message to the
//! [`DirectoryActor`](crate::DirectoryActor).
//!
//! Why: every slot request carries these facts into `decide` (which stays pure). Asking
//! the directory actor for them cost an actor round trip, a clone of the whole SCIM
//! profile and a wait on its durability barrier per request: measurable on the hot path.
//! The directory actor stays the only writer: it publishes a user's facts after each of
//! its changes, once that change is durable, so a request never decides on a directory
//! change a crash could still take back.
//!
//! Publications can arrive out of order: a change that is durable at once is published
//! from the actor's thread, one that waited from the journal's committer thread. Each
//! entry therefore carries the journal ticket of the change it describes, and an older
//! publication never replaces a newer one (a deleted user leaves a tombstone for the
//! same reason).
//!
//! A std `RwLock`, not a tokio one: it is held only to clone an `Arc` or to insert,
//! never across an `.await`, and readers (every request) by far outnumber writers.

use slotpool_events::{DirectoryState, DirectoryUser};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What a product's decision may need to know about a user from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    /// The user's directory attributes (department, costCenter...): what eligibility
    /// rules read. Shared, so a request clones a pointer, not the map.
    pub attributes: Arc<BTreeMap<String, String>>,
    /// The names and SCIM ids of the user's groups: what reservations and caps (rule 10)
    /// match.
    pub groups: Arc<[String]>,
    /// Whether the directory holds the user as active: bypass rules never let a
    /// deactivated account through the gate.
    pub active: bool,
}

impl UserFacts {
    /// The facts of `user` in `state`, if the directory knows them.
    pub fn of(state: &DirectoryState, user: &str) -> Option<UserFacts> {
        let found = state.user(user)?;
        Some(UserFacts::with_groups(found, state.group_names_of(user)))
    }

    fn with_groups(user: &DirectoryUser, groups: Vec<String>) -> UserFacts {
        UserFacts {
            attributes: Arc::new(user.profile.attributes.clone()),
            groups: groups.into(),
            active: user.active,
        }
    }
}

/// One user's latest published facts (`None`: deleted) and the ticket of the change that
/// published them.
#[derive(Debug, Clone)]
struct Entry {
    ticket: u64,
    facts: Option<Arc<UserFacts>>,
}

/// A cheap, cloneable handle on the shared view.
#[derive(Debug, Clone, Default)]
pub struct DirectoryView {
    users: Arc<RwLock<HashMap<String, Entry>>>,
}

impl DirectoryView {
    /// The view of a (recovered) directory: every user it knows, at ticket 0. One pass
    /// over the groups finds every user's groups (not a pass per user).
    pub fn of(state: &DirectoryState) -> DirectoryView {
        let mut groups: HashMap<&str, Vec<String>> = HashMap::new();
        for g in state.groups() {
            for member in &g.members {
                let of = groups.entry(member.as_str()).or_default();
                of.push(g.display_name.clone());
                of.push(g.id.clone());
            }
        }
        let users = state
            .users()
            .into_iter()
            .map(|u| {
                let of = groups.remove(u.user.as_str()).unwrap_or_default();
                let entry = Entry {
                    ticket: 0,
                    facts: Some(Arc::new(UserFacts::with_groups(u, of))),
                };
                (u.user.clone(), entry)
            })
            .collect();
        DirectoryView {
            users: Arc::new(RwLock::new(users)),
        }
    }

    /// The facts of `user`, or `None` when the directory does not know them.
    pub fn facts(&self, user: &str) -> Option<Arc<UserFacts>> {
        self.read().get(user).and_then(|e| e.facts.clone())
    }

    /// Publishes what the change with `ticket` left of each named user (`None`: the user
    /// is gone). Ignored for any user whose entry is already from a later change.
    pub fn publish(&self, ticket: u64, changes: Vec<(String, Option<Arc<UserFacts>>)>) {
        let mut users = self.write();
        for (user, facts) in changes {
            match users.get_mut(&user) {
                Some(entry) if entry.ticket > ticket => {}
                Some(entry) => *entry = Entry { ticket, facts },
                None => {
                    users.insert(user, Entry { ticket, facts });
                }
            }
        }
    }

    // A panic elsewhere aborts the process (fail-stop), so a poisoned lock cannot be
    // observed half-written by a survivor; take the data either way.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.users.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(dept: &str) -> Option<Arc<UserFacts>> {
        let attributes = BTreeMap::from([("department".to_string(), dept.to_string())]);
        Some(Arc::new(UserFacts {
            attributes: Arc::new(attributes),
            groups: Arc::from(Vec::new()),
            active: true,
        }))
    }

    #[test]
    fn a_later_change_wins_whatever_the_order_of_publication() {
        let view = DirectoryView::default();
        view.publish(7, vec![("ann".into(), facts("sales"))]);
        view.publish(5, vec![("ann".into(), facts("legal"))]);
        assert_eq!(view.facts("ann"), facts("sales"));
        view.publish(9, vec![("ann".into(), None)]);
        view.publish(8, vec![("ann".into(), facts("ops"))]);
        assert_eq!(
            view.facts("ann"),
            None,
            "a tombstone keeps an older change out"
        );
        view.publish(10, vec![("ann".into(), facts("ops"))]);
        assert_eq!(view.facts("ann"), facts("ops"));
        assert_eq!(view.facts("bob"), None);
    }
}
