//! How many notification streams are open, per user and in total. Each open stream holds
//! a [`StreamPermit`]; dropping it (the stream's body ends when the browser goes) gives
//! its place back.

use super::Limits;
use crate::problem::Problem;
use actix_web::{web, HttpRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The open streams, by user.
#[derive(Debug, Default)]
pub struct Streams {
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_user: HashMap<String, usize>,
}

/// One open stream's place; given back when dropped.
#[derive(Debug)]
pub struct StreamPermit {
    open: Arc<Mutex<Open>>,
    user: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        // A poisoned lock only means another thread panicked while counting (which
        // aborts the process): the counts are still the best there is.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.by_user.remove(&self.user);
            }
        }
    }
}

impl Limits {
    /// A place for one more stream of `user`, or 503 `too_many_streams` when the user or
    /// the service has as many open as configured.
    pub fn open_stream(&self, user: &str) -> Result<StreamPermit, Problem> {
        let s = &self.settings;
        let mut open = self.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.by_user.get(user).copied().unwrap_or(0);
        let refusal = if mine >= s.max_streams_per_user {
            Some(format!(
                "{user} already has {mine} notification streams open (at most {} per user); close a tab",
                s.max_streams_per_user
            ))
        } else if open.total >= s.max_streams {
            Some(format!(
                "the service has {} notification streams open, as many as it allows; try again later",
                open.total
            ))
        } else {
            None
        };
        if let Some(detail) = refusal {
            drop(open);
            self.refused("too_many_streams");
            return Err(Problem::too_many_streams(detail));
        }
        open.total += 1;
        *open.by_user.entry(user.to_string()).or_insert(0) += 1;
        Ok(StreamPermit {
            open: Arc::clone(&self.streams.open),
            user: user.to_string(),
        })
    }
}

/// A stream place for `user` from the request's limits; `None` (no limit) when the app
/// has none.
pub fn stream_permit(req: &HttpRequest, user: &str) -> Result<Option<StreamPermit>, Problem> {
    req.app_data::<web::Data<Limits>>()
        .map(|l| l.open_stream(user))
        .transpose()
}
