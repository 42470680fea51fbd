//! The sweep (rule 3): what "it is now T" means for one product.
//!
//! Coalesced activity is recorded first, so nobody is warned or revoked on a stale time.
//! Then warned holders whose time is up lose their slot (reason `inactivity`), holders
//! whose warning is due are warned, queue places nobody keeps alive expire, auto re-login
//! queues revoked holders whose browser is still open (granted again in the same sweep
//! when a slot is free for them; queued behind those who wait otherwise, and then only
//! once without activity in between), and freed slots go to the queue.
//!
//! Revocations fall on a fixed grid of `sweep_interval_s` (see
//! [`Settings::sweep_at_or_after`]); a warning is issued `warning_lead_s` before, and a
//! holder is never revoked less than the lead after their warning: a warning issued late
//! (a sweep that ran late, a restart) moves the revocation to exactly one lead after it,
//! and [`ProductState::next_tick`] asks for a sweep at that instant. Both indexes of
//! [`crate::pool::Pool`] are walked from the front and left at the first holder not due.

use crate::event::{LeaveReason, ProductEvent, RevokeReason};
use crate::presence::Presence;
use crate::product::{ProductState, Standing};
use crate::settings::Settings;
use crate::time::Timestamp;
use std::collections::HashMap;

/// Records the page views bypass rules let through since the last sweep: one
/// [`ProductEvent::BypassesCounted`] per rule that let any through.
fn record_bypasses(out: &mut Vec<ProductEvent>, presence: &Presence, now: Timestamp) {
    for (rule, users) in &presence.bypassed {
        let count: u64 = users.values().sum();
        if count == 0 {
            continue;
        }
        out.push(ProductEvent::BypassesCounted {
            rule: rule.clone(),
            at: now,
            count,
            users: users
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(u, n)| (u.clone(), *n))
                .collect(),
        });
    }
}

impl ProductState {
    /// The events of a sweep at `now`; see the module documentation.
    pub(crate) fn decide_tick(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        presence: &Presence,
        now: Timestamp,
    ) {
        let refreshed = self.record_recent(out, &presence.recent_activity, now);
        record_bypasses(out, presence, now);
        self.decide_alerts(out, settings, presence, now);

        let mut revoked = Vec::new();
        for (user, revoke_at) in self.pool.warned() {
            if revoke_at > now {
                break;
            }
            if refreshed.contains_key(user.as_ref()) {
                continue;
            }
            out.push(ProductEvent::SlotRevoked {
                user: String::from(&**user),
                reason: RevokeReason::Inactivity,
                at: now,
            });
            revoked.push(user);
        }

        let lead_end = now.plus_secs(settings.warning_lead_s);
        for (user, last_activity, warned) in self.pool.longest_inactive_warned() {
            if settings.warning_due(last_activity) > now {
                break;
            }
            // A holder refreshed by this sweep is judged by the activity it records (which
            // also cancels a warning): due by that time as well, they are warned now.
            let last_activity = match refreshed.get(user.as_ref()) {
                Some(at) => *at,
                None if warned => continue,
                None => last_activity,
            };
            if settings.warning_due(last_activity) > now {
                continue;
            }
            let revoke_at = settings.revoke_deadline(last_activity).max(lead_end);
            out.push(ProductEvent::WarningIssued {
                user: String::from(&**user),
                at: now,
                revoke_at,
            });
        }

        for (user, since) in self.queue.iter() {
            if presence.connected.contains(user.as_ref()) {
                continue;
            }
            let seen = presence
                .last_seen
                .get(user.as_ref())
                .map_or(since, |t| (*t).max(since));
            if seen.plus_secs(settings.queue_timer_s) <= now {
                out.push(ProductEvent::QueueLeft {
                    user: String::from(&**user),
                    reason: LeaveReason::Expired,
                    at: now,
                });
            }
        }

        if settings.auto_relogin {
            for user in revoked {
                if !presence.connected.contains(user.as_ref()) {
                    continue;
                }
                // Once without activity in between, so that an open but idle page does
                // not keep taking slots from members who wait; but always when the slot
                // would stay free otherwise: then re-login costs nobody anything.
                let used = self.user(user).is_some_and(|e| e.relogin_used);
                if used && !(settings.reservations.is_empty() && self.slot_free_for_next(out)) {
                    continue;
                }
                out.push(ProductEvent::Requeued {
                    user: String::from(&**user),
                    at: now,
                });
            }
        }
        self.fill_freed(out, now);
    }

    /// Whether one more member joining the queue after the events `out` so far would be
    /// granted by [`ProductState::fill_freed`] at once: fewer members wait (those not
    /// leaving, and those joining in `out`) than slots are free (including those `out`
    /// frees). For products without reservations, whose freed slots go strictly in order.
    fn slot_free_for_next(&self, out: &[ProductEvent]) -> bool {
        let mut freed = 0usize;
        let mut waiting = self.queue.len();
        for e in out {
            match e {
                ProductEvent::SlotReleased { .. } | ProductEvent::SlotRevoked { .. } => freed += 1,
                ProductEvent::QueueLeft { .. } => waiting = waiting.saturating_sub(1),
                ProductEvent::Queued { .. } | ProductEvent::Requeued { .. } => waiting += 1,
                _ => {}
            }
        }
        waiting < self.free_slots() + freed
    }

    /// Records the coalesced activity of holders (only what is newer than their recorded
    /// activity and not in the future); returns who was refreshed, and when.
    pub(crate) fn record_recent<'a>(
        &self,
        out: &mut Vec<ProductEvent>,
        recent: &'a HashMap<String, Timestamp>,
        now: Timestamp,
    ) -> HashMap<&'a str, Timestamp> {
        let mut refreshed = HashMap::new();
        let mut recent: Vec<_> = recent.iter().collect();
        recent.sort();
        for (user, at) in recent {
            if let Some(Standing::Holding { last_activity, .. }) =
                self.user(user).map(|e| e.standing)
            {
                if *at > last_activity && *at <= now {
                    out.push(ProductEvent::ActivityRecorded {
                        user: user.clone(),
                        at: *at,
                    });
                    refreshed.insert(user.as_str(), *at);
                }
            }
        }
        refreshed
    }

    /// When this product next needs a sweep after `now`: the next warning due, the next
    /// revocation of a warned holder, or the next point of the sweep grid (queue expiry),
    /// whichever comes first.
    /// `None` for a product that does not exist.
    pub fn next_tick(&self, now: Timestamp) -> Option<Timestamp> {
        let settings = self.settings()?;
        let grid = settings.sweep_at_or_after(Timestamp::from_millis(now.as_millis() + 1));
        let warning = self
            .pool
            .longest_inactive_warned()
            .find(|(_, _, warned)| !warned)
            .map(|(_, last, _)| {
                settings
                    .warning_due(last)
                    .max(Timestamp::from_millis(now.as_millis() + 1))
            });
        let soonest = Timestamp::from_millis(now.as_millis() + 1);
        let revocation = self.pool.warned().next().map(|(_, at)| at.max(soonest));
        Some(
            [warning, revocation]
                .into_iter()
                .flatten()
                .fold(grid, Timestamp::min),
        )
    }
}
