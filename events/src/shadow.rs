//! The shadow run's figures: what a product's pool decided while it was in
//! `passthrough` mode ([`crate::mode`]), read back from its events.
//!
//! In passthrough nobody waits at the gate, but the pool decides as if enforced, so the
//! journal holds the would-be grants, queue places, warnings and revocations. [`ShadowRuns`]
//! folds a product's events (oldest first) and keeps the figures of the latest run: from
//! the `Configured` that switched to passthrough to the one that left it (or now). The
//! dashboard shows them next to `would_be_queued`, so an administrator can tell what
//! enforcing this pool size would have done before enforcing it.

use crate::event::ProductEvent;
use crate::history::Occupancy;
use crate::mode::Mode;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// The figures of one shadow run (one stretch of passthrough mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowRun {
    /// When the product switched to passthrough.
    pub since: Timestamp,
    /// When it left passthrough; `None` while the run goes on.
    pub until: Option<Timestamp>,
    /// Shared slots at the end of the run (or now): the pool size that was tried.
    pub shared_slots: u32,
    /// Requests granted at once (a slot was free and nobody waited).
    pub granted_at_once: u32,
    /// Requests that would have waited (queued, or queued again by auto re-login).
    pub queued: u32,
    /// Grants to members who had waited in the queue.
    pub granted_from_queue: u32,
    /// Queue places lost because the client stopped polling or listening.
    pub expired: u32,
    /// Most members holding a slot at once.
    pub peak_holders: u32,
    /// Most members waiting at once: how long the queue would have grown.
    pub peak_queued: u32,
    /// Inactivity warnings issued.
    pub warnings: u32,
    /// Revocations, by reason code (`inactivity`, `pool_shrunk`...).
    pub revocations: BTreeMap<&'static str, u32>,
}

impl ShadowRun {
    /// Every request of the run: granted at once or made to wait.
    pub fn requests(&self) -> u32 {
        self.granted_at_once + self.queued
    }
}

/// A fold over a product's events that keeps its latest shadow run.
#[derive(Debug, Clone, Default)]
pub struct ShadowRuns {
    latest: Option<ShadowRun>,
    on: bool,
}

impl ShadowRuns {
    /// A fold that has seen nothing.
    pub fn new() -> Self {
        ShadowRuns::default()
    }

    /// Takes the next event, recorded at `at`; `from_queue` says whether a granted user
    /// was waiting in the queue just before, and `after` is the product's occupancy once
    /// the event is applied (for the peaks).
    pub fn observe(
        &mut self,
        event: &ProductEvent,
        at: Timestamp,
        from_queue: bool,
        after: Occupancy,
    ) {
        if let ProductEvent::Configured { settings } = event {
            let passthrough = settings.mode == Mode::Passthrough;
            if passthrough && !self.on {
                self.latest = Some(ShadowRun {
                    since: at,
                    ..ShadowRun::default()
                });
            } else if !passthrough && self.on {
                if let Some(run) = &mut self.latest {
                    run.until = Some(at);
                }
            }
            self.on = passthrough;
        }
        if !self.on {
            return;
        }
        let Some(run) = &mut self.latest else {
            return;
        };
        match event {
            ProductEvent::SlotGranted { .. } if from_queue => run.granted_from_queue += 1,
            ProductEvent::SlotGranted { .. } => run.granted_at_once += 1,
            ProductEvent::Queued { .. } | ProductEvent::Requeued { .. } => run.queued += 1,
            ProductEvent::QueueLeft { reason, .. }
                if *reason == crate::event::LeaveReason::Expired =>
            {
                run.expired += 1
            }
            ProductEvent::WarningIssued { .. } => run.warnings += 1,
            ProductEvent::SlotRevoked { reason, .. } => {
                *run.revocations.entry(reason.code()).or_default() += 1
            }
            _ => {}
        }
        run.peak_holders = run.peak_holders.max(after.holders);
        run.peak_queued = run.peak_queued.max(after.queued);
        run.shared_slots = after.shared_slots;
    }

    /// The latest shadow run, going on or ended; `None` if the product was never in
    /// passthrough.
    pub fn latest(&self) -> Option<&ShadowRun> {
        self.latest.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LeaveReason, RevokeReason};
    use crate::settings::{ProductKind, Settings};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn configured(mode: Mode, shared_slots: u32) -> ProductEvent {
        ProductEvent::Configured {
            settings: Settings {
                mode,
                ..Settings::new(ProductKind::Jira, 10, shared_slots)
            },
        }
    }

    fn occ(holders: u32, queued: u32, shared_slots: u32) -> Occupancy {
        Occupancy {
            holders,
            queued,
            shared_slots,
            ..Occupancy::default()
        }
    }

    fn user(name: &str) -> String {
        name.to_string()
    }

    #[test]
    fn only_what_happens_in_passthrough_counts_and_the_run_ends_when_the_mode_is_left() {
        let mut runs = ShadowRuns::new();
        let granted = |u: &str| ProductEvent::SlotGranted {
            user: user(u),
            at: t(0),
        };
        runs.observe(&configured(Mode::Enforce, 2), t(0), false, occ(0, 0, 2));
        runs.observe(&granted("before"), t(1), false, occ(1, 0, 2));
        assert_eq!(runs.latest(), None, "never in passthrough yet");

        runs.observe(
            &configured(Mode::Passthrough, 2),
            t(10),
            false,
            occ(1, 0, 2),
        );
        runs.observe(&granted("a"), t(11), false, occ(2, 0, 2));
        let queued = |u: &str| ProductEvent::Queued {
            user: user(u),
            at: t(0),
        };
        runs.observe(&queued("b"), t(12), false, occ(2, 1, 2));
        runs.observe(&queued("c"), t(13), false, occ(2, 2, 2));
        let warned = ProductEvent::WarningIssued {
            user: user("a"),
            at: t(14),
            revoke_at: t(20),
        };
        runs.observe(&warned, t(14), false, occ(2, 2, 2));
        let revoked = ProductEvent::SlotRevoked {
            user: user("a"),
            reason: RevokeReason::Inactivity,
            at: t(20),
        };
        runs.observe(&revoked, t(20), false, occ(1, 2, 2));
        runs.observe(&granted("b"), t(20), true, occ(2, 1, 2));
        let expired = ProductEvent::QueueLeft {
            user: user("c"),
            reason: LeaveReason::Expired,
            at: t(21),
        };
        runs.observe(&expired, t(21), false, occ(2, 0, 2));
        // A settings change that stays in passthrough (a resize) goes on with the run.
        runs.observe(
            &configured(Mode::Passthrough, 3),
            t(22),
            false,
            occ(2, 0, 3),
        );
        let run = runs.latest().cloned().expect("a run");
        assert_eq!((run.since, run.until), (t(10), None));
        assert_eq!((run.granted_at_once, run.queued, run.requests()), (1, 2, 3));
        assert_eq!(
            (run.granted_from_queue, run.expired, run.warnings),
            (1, 1, 1)
        );
        assert_eq!(
            (run.peak_holders, run.peak_queued, run.shared_slots),
            (2, 2, 3)
        );
        assert_eq!(run.revocations.get("inactivity"), Some(&1));

        // Leaving passthrough ends the run; what follows is not the shadow run's.
        runs.observe(&configured(Mode::Enforce, 3), t(30), false, occ(2, 0, 3));
        runs.observe(&queued("d"), t(31), false, occ(2, 5, 3));
        let ended = runs.latest().cloned().expect("the ended run");
        assert_eq!(ended.until, Some(t(30)));
        assert_eq!((ended.queued, ended.peak_queued), (2, 2));

        // A new run starts afresh.
        runs.observe(
            &configured(Mode::Passthrough, 3),
            t(40),
            false,
            occ(2, 0, 3),
        );
        let fresh = runs.latest().cloned().expect("a new run");
        assert_eq!(
            (fresh.since, fresh.until, fresh.requests()),
            (t(40), None, 0)
        );
    }
}
