//! The product's side of licence-use alerts ([`crate::alert`]): what the sweep measures,
//! and the alerts it fires or resolves.

use crate::alert::{self, AlertChange, AlertKind, Firing, Measures};
use crate::event::ProductEvent;
use crate::presence::Presence;
use crate::product::{Notice, ProductState};
use crate::settings::Settings;
use crate::time::Timestamp;
use std::collections::BTreeMap;

impl ProductState {
    /// The firing alerts, by name.
    pub fn firing_alerts(&self) -> &BTreeMap<String, Firing> {
        &self.alerts.firing
    }

    /// What the alert rules measure of the pool at `now`: against the pool's size now
    /// (what a capacity schedule made of `shared_slots`, [`Self::effective_shared_slots`]).
    pub fn alert_measures(&self, now: Timestamp) -> Measures {
        let tier = self.settings.as_ref().map_or(0, |s| s.licence_tier);
        Measures {
            holders: self.pool.len() as u64,
            shared_slots: u64::from(self.effective_shared_slots()),
            queued: self.queue.len() as u64,
            fixed: self.fixed as u64,
            licence_tier: u64::from(tier),
            wait_p95_ms: self.alerts.wait_p95_ms(now),
        }
    }

    /// The onsets of the alert conditions after a sweep at `now`, given those before
    /// (see [`alert::onsets`]): what the live service keeps in
    /// [`Presence::alert_onsets`] and hands to that sweep.
    pub fn alert_onsets(
        &self,
        previous: &BTreeMap<String, Timestamp>,
        now: Timestamp,
    ) -> BTreeMap<String, Timestamp> {
        match &self.settings {
            Some(s) if !s.alerts.is_empty() => {
                alert::onsets(&s.alerts, &self.alert_measures(now), previous, now)
            }
            _ => BTreeMap::new(),
        }
    }

    /// The sweep's alert events: measured on the state before the sweep's other events
    /// (what held up to `now`).
    pub(crate) fn decide_alerts(
        &self,
        out: &mut Vec<ProductEvent>,
        settings: &Settings,
        presence: &Presence,
        now: Timestamp,
    ) {
        if settings.alerts.is_empty() && self.alerts.firing.is_empty() {
            return;
        }
        let m = self.alert_measures(now);
        for change in alert::evaluate(
            &settings.alerts,
            &m,
            &presence.alert_onsets,
            &self.alerts.firing,
            now,
        ) {
            out.push(match change {
                AlertChange::Fired {
                    name,
                    kind,
                    threshold,
                    value,
                } => ProductEvent::AlertFired {
                    name,
                    kind,
                    threshold,
                    at: now,
                    value,
                },
                AlertChange::Resolved { name, value } => ProductEvent::AlertResolved {
                    name,
                    at: now,
                    value,
                },
            });
        }
    }

    /// Notes the wait of `user`, granted at `at`, if they were queued and a
    /// `wait_p95_s` rule reads waits. Called before the grant is applied.
    pub(crate) fn note_grant(&mut self, user: &str, at: Timestamp) {
        let reads_waits = self
            .settings
            .as_ref()
            .is_some_and(|s| s.alerts.iter().any(|r| r.kind == AlertKind::WaitP95S));
        if !reads_waits {
            return;
        }
        if let Some(crate::product::Standing::Queued { since, .. }) =
            self.users.get(user).map(|e| e.standing)
        {
            self.alerts.note_wait(since, at);
        }
    }

    /// Folds an alert's firing (`Some`) or resolving (`None`), and raises its notice.
    pub(crate) fn apply_alert(&mut self, name: &str, firing: Option<Firing>, notice: Notice) {
        match firing {
            Some(f) => {
                self.alerts.firing.insert(name.to_string(), f);
            }
            None => {
                self.alerts.firing.remove(name);
            }
        }
        self.raise(notice);
    }
}
