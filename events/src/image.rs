//! The image of a product's state: a plain, serialisable copy from which the state can
//! be rebuilt exactly. Snapshots store images; recovery rebuilds from the latest one and
//! replays only the journal after it.
//!
//! Architecture Invariant: `ProductState::from_image(state.image())` is observably the
//! same state (views, counts, and every later `decide`). The snapshot property tests check
//! it at every cut point of random histories.

use crate::fixed_request::FixedRequest;
use crate::product::{Notice, ProductState, Standing, UserEntry, Warning};
use crate::queue::Queue;
use crate::settings::{self, Settings};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Where a user stands, in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StandingImage {
    /// Neither holding nor queued.
    Idle,
    /// Holding a slot.
    Holding {
        since: Timestamp,
        last_activity: Timestamp,
        warning: Option<Warning>,
    },
    /// Queued (the order is the image's `queue`).
    Queued { since: Timestamp },
}

/// One user, in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserImage {
    pub user: String,
    pub member: bool,
    pub fixed: bool,
    pub deactivated: bool,
    pub standing: StandingImage,
    pub locked_until: Option<Timestamp>,
    pub relogin_used: bool,
}

/// A whole product, in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductImage {
    /// The settings, if the product exists (JSON text, as in events).
    #[serde(with = "optional_settings")]
    pub settings: Option<Settings>,
    /// Every user the product knows, sorted by name.
    pub users: Vec<UserImage>,
    /// The queue, head first.
    pub queue: Vec<String>,
    /// See [`ProductState`]: the moving average of slot holding time.
    pub avg_hold_ms: i64,
    /// The latest notices, oldest first.
    pub notices: Vec<Notice>,
    /// Fixed-licence requests, by id.
    pub fixed_requests: Vec<FixedRequest>,
    /// The noted reservation groups of users (rule 10), sorted by user; holders per
    /// group are derived from them.
    pub noted_groups: Vec<(String, Vec<String>)>,
    /// The firing licence-use alerts and the recent waits they read.
    pub alerts: crate::alert::AlertBook,
    /// The space catalogue and requests (see [`crate::space`]).
    pub spaces: crate::space_book::SpaceBook,
    /// The pool's size now (see [`ProductState::effective_shared_slots`]).
    pub capacity: u32,
}

impl ProductState {
    /// The image of this state.
    pub fn image(&self) -> ProductImage {
        let mut users: Vec<UserImage> = self
            .users
            .iter()
            .map(|(name, e)| UserImage {
                user: name.to_string(),
                member: e.member,
                fixed: e.fixed,
                deactivated: e.deactivated,
                standing: match e.standing {
                    Standing::Idle => StandingImage::Idle,
                    Standing::Holding {
                        since,
                        last_activity,
                        warning,
                    } => StandingImage::Holding {
                        since,
                        last_activity,
                        warning,
                    },
                    Standing::Queued { since, .. } => StandingImage::Queued { since },
                },
                locked_until: e.locked_until,
                relogin_used: e.relogin_used,
            })
            .collect();
        users.sort_by(|a, b| a.user.cmp(&b.user));
        ProductImage {
            settings: self.settings.clone(),
            users,
            queue: self.queue.iter().map(|(u, _)| u.to_string()).collect(),
            avg_hold_ms: self.avg_hold_ms,
            notices: self.notices.iter().cloned().collect(),
            fixed_requests: self.fixed_requests.values().cloned().collect(),
            noted_groups: {
                let mut v: Vec<(String, Vec<String>)> = self
                    .groups
                    .noted
                    .iter()
                    .map(|(u, g)| (u.to_string(), g.clone()))
                    .collect();
                v.sort();
                v
            },
            alerts: self.alerts.clone(),
            spaces: self.spaces.clone(),
            capacity: self.capacity,
        }
    }

    /// Rebuilds the state an image was taken of.
    pub fn from_image(image: &ProductImage) -> ProductState {
        let mut state = ProductState {
            settings: image.settings.clone(),
            avg_hold_ms: image.avg_hold_ms,
            notices: image.notices.iter().cloned().collect::<VecDeque<_>>(),
            fixed_requests: image
                .fixed_requests
                .iter()
                .map(|r| (r.id.clone(), r.clone()))
                .collect(),
            alerts: image.alerts.clone(),
            spaces: image.spaces.clone(),
            capacity: image.capacity,
            ..ProductState::default()
        };
        for u in &image.users {
            let key: Arc<str> = Arc::from(u.user.as_str());
            let standing = match &u.standing {
                StandingImage::Idle | StandingImage::Queued { .. } => Standing::Idle,
                StandingImage::Holding {
                    since,
                    last_activity,
                    warning,
                } => {
                    state.pool.insert(Arc::clone(&key), *last_activity);
                    if let Some(w) = warning {
                        state.pool.warn(&key, *last_activity, w.revoke_at);
                    }
                    Standing::Holding {
                        since: *since,
                        last_activity: *last_activity,
                        warning: *warning,
                    }
                }
            };
            state.members += usize::from(u.member);
            state.fixed += usize::from(u.fixed);
            state.users.insert(
                key,
                UserEntry {
                    member: u.member,
                    fixed: u.fixed,
                    deactivated: u.deactivated,
                    standing,
                    locked_until: u.locked_until,
                    relogin_used: u.relogin_used,
                },
            );
        }
        let mut queue = Queue::default();
        for name in &image.queue {
            let queued_since = image
                .users
                .binary_search_by(|u| u.user.as_str().cmp(name))
                .ok()
                .and_then(|i| match image.users[i].standing {
                    StandingImage::Queued { since } => Some(since),
                    _ => None,
                });
            let key = state
                .users
                .get_key_value(name.as_str())
                .map(|(k, _)| Arc::clone(k));
            let (Some(since), Some(key)) = (queued_since, key) else {
                continue;
            };
            let ticket = queue.push(Arc::clone(&key), since);
            if let Some(e) = state.users.get_mut(&key) {
                e.standing = Standing::Queued { since, ticket };
            }
        }
        state.queue = queue;
        for (user, groups) in &image.noted_groups {
            let Some(key) = state
                .users
                .get_key_value(user.as_str())
                .map(|(k, _)| Arc::clone(k))
            else {
                continue;
            };
            let holding = matches!(
                state.users.get(&key).map(|e| e.standing),
                Some(Standing::Holding { .. })
            );
            state.groups.note(key, groups, holding);
        }
        state
    }
}

mod optional_settings {
    use super::{settings, Settings};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "settings::as_json")] Settings);

    pub fn serialize<S: Serializer>(s: &Option<Settings>, ser: S) -> Result<S::Ok, S::Error> {
        s.clone().map(Wrapped).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Settings>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(de)?.map(|w| w.0))
    }
}
