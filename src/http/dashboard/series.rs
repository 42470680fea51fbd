//! The dashboard's series, computed from the journal: the product's stream is replayed
//! into [`History`] (the core's fold of a stream, over `ProductState::apply`), whose
//! per-minute and per-day peaks the charts show. What the charts need beyond it is
//! read here from the same pass: the sizes (fixed, shared, tier) at the end of each
//! minute, revocations per minute by reason, and each request's demand for the
//! user-peak view. There is no second store and no second implementation of the rules.
//!
//! A replay reads the whole stream; the handlers run it on the blocking pool.

use crate::problem::Problem;
use slotpool_events::history::{Period, DAY_MS, MINUTE_MS};
use slotpool_events::shadow::{ShadowRun, ShadowRuns};
use slotpool_events::{
    Envelope, History, HistoryOptions, Occupancy, ProductEvent, Standing, StreamId,
};
use slotpool_journal::Journal;
use std::collections::BTreeMap;

/// Per-minute series over a window (last day or last week).
#[derive(Debug, Clone, Default)]
pub struct MinuteSeries {
    /// Start of the first minute, ms since the epoch.
    pub start_ms: i64,
    /// Most slots held at once in each minute.
    pub holders: Vec<u32>,
    /// Longest queue in each minute.
    pub queued: Vec<u32>,
    /// Fixed users at the end of each minute.
    pub fixed: Vec<u32>,
    /// Shared slots at the end of each minute.
    pub shared_slots: Vec<u32>,
    /// Licence tier at the end of each minute.
    pub tier: Vec<u32>,
    /// Revocations in each minute, by reason code.
    pub revocations: BTreeMap<&'static str, Vec<u32>>,
}

/// One day of the user-peak view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPeak {
    /// Start of the day (UTC), ms since the epoch.
    pub day_ms: i64,
    /// Most slots held at once that day.
    pub holders: u32,
    /// Most members holding or waiting at once that day (demand for shared slots).
    pub demand: u32,
    /// Shared slots at the end of the day.
    pub shared_slots: u32,
    /// Requests for a slot that day.
    pub requests: u32,
}

/// The user-peak view: daily peaks over 90 days, and the pool size that would have served
/// a chosen share of requests at once.
#[derive(Debug, Clone, Default)]
pub struct Peaks {
    /// One entry per day of the window, oldest first.
    pub days: Vec<DayPeak>,
    /// Requests (a member asking for a slot: granted at once or queued) in the window.
    pub requests: usize,
    /// Shared slots that would have served `share` % of those requests at once.
    pub slots_for_share: u32,
    /// Shared slots now.
    pub shared_slots_now: u32,
}

/// Replays product `id` into a [`History`], calling `f(history_after, envelope,
/// standing_before)` for every event (the standing of a granted user just before, so a
/// grant from the queue can be told from a grant at once).
fn replay(
    journal: &Journal,
    id: &str,
    mut f: impl FnMut(&History, &Envelope<ProductEvent>, Option<Standing>),
) -> Result<History, Problem> {
    let stream = StreamId::product(id).map_err(Problem::journal_error)?;
    let mut history = History::new(HistoryOptions::default());
    journal
        .replay::<ProductEvent>(&stream, |env| {
            let before = match &env.event {
                ProductEvent::SlotGranted { user, .. } => {
                    history.state().user(user).map(|u| u.standing)
                }
                _ => None,
            };
            history.push(&env);
            f(&history, &env, before);
        })
        .map_err(Problem::journal_error)?;
    Ok(history)
}

/// The periods of `periods` (consecutive, gaps filled) that fall in `[start, start + n *
/// len)`, one per slot; before the first period nothing was held, after the last the
/// last period's end values carry on.
fn window(periods: &[Period], start: i64, len: i64, n: usize) -> (Vec<u32>, Vec<u32>) {
    let mut holders = vec![0; n];
    let mut queued = vec![0; n];
    let mut carried = (0, 0);
    let mut by_start = periods.iter().peekable();
    for i in 0..n {
        let t = start + i as i64 * len;
        while let Some(p) = by_start.peek() {
            if p.start.as_millis() < t {
                carried = (p.holders_end, p.queued_end);
                by_start.next();
            } else {
                break;
            }
        }
        match by_start.peek() {
            Some(p) if p.start.as_millis() == t => {
                holders[i] = p.peak_holders;
                queued[i] = p.peak_queued;
            }
            _ => {
                holders[i] = carried.0;
                queued[i] = carried.1;
            }
        }
    }
    (holders, queued)
}

/// Per-minute series of the last day (or, with `week`, the last week) before `now`.
pub fn minute_series(
    journal: &Journal,
    id: &str,
    now: slotpool_events::Timestamp,
    week: bool,
) -> Result<MinuteSeries, Problem> {
    let minutes = if week { 7 * 24 * 60 } else { 24 * 60 };
    let end = now.as_millis().div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
    let start = end - minutes as i64 * MINUTE_MS;
    let mut sizes_before = Occupancy::default();
    let mut sizes: Vec<(usize, Occupancy)> = Vec::new();
    let mut revocations: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let history = replay(journal, id, |h, env, _| {
        let t = env.timestamp.as_millis();
        if t < start {
            sizes_before = h.occupancy();
        } else if t < end {
            let minute = ((t - start) / MINUTE_MS) as usize;
            sizes.push((minute, h.occupancy()));
            if let ProductEvent::SlotRevoked { reason, .. } = &env.event {
                revocations
                    .entry(reason.code())
                    .or_insert_with(|| vec![0; minutes])[minute] += 1;
            }
        }
    })?;
    let (holders, queued) = window(&history.per_minute(), start, MINUTE_MS, minutes);
    // Sizes at the end of each minute.
    let mut fixed = vec![0; minutes];
    let mut shared = vec![0; minutes];
    let mut tier = vec![0; minutes];
    let mut last = sizes_before;
    let mut changes = sizes.into_iter().peekable();
    for m in 0..minutes {
        while let Some((_, o)) = changes.next_if(|(at, _)| *at == m) {
            last = o;
        }
        fixed[m] = last.fixed;
        shared[m] = last.shared_slots;
        tier[m] = last.licence_tier;
    }
    Ok(MinuteSeries {
        start_ms: start,
        holders,
        queued,
        fixed,
        shared_slots: shared,
        tier,
        revocations,
    })
}

/// The user-peak view over the 90 days before `now`, for a share (1..=100 %) of requests.
pub fn peaks(
    journal: &Journal,
    id: &str,
    now: slotpool_events::Timestamp,
    share: u32,
) -> Result<Peaks, Problem> {
    const DAYS: usize = 90;
    let end_day = now.as_millis().div_euclid(DAY_MS) * DAY_MS;
    let start = end_day - (DAYS as i64 - 1) * DAY_MS;
    let mut demand_peak = vec![0u32; DAYS];
    let mut requests = vec![0u32; DAYS];
    let mut shared_end: Vec<Option<u32>> = vec![None; DAYS];
    let mut shared_before = 0;
    let mut demands: Vec<u32> = Vec::new();
    let history = replay(journal, id, |h, env, before| {
        let o = h.occupancy();
        let t = env.timestamp.as_millis();
        if t < start {
            shared_before = o.shared_slots;
            return;
        }
        let day = ((t - start) / DAY_MS) as usize;
        if day >= DAYS {
            return;
        }
        let demand = o.holders + o.queued;
        demand_peak[day] = demand_peak[day].max(demand);
        shared_end[day] = Some(o.shared_slots);
        // A request: a member granted at once (not from the queue), queued, or queued
        // again by auto re-login. The slots that would have served it at once are the
        // holders and waiting members at that moment, itself included.
        let is_request = match &env.event {
            ProductEvent::SlotGranted { .. } => !matches!(before, Some(Standing::Queued { .. })),
            ProductEvent::Queued { .. } | ProductEvent::Requeued { .. } => true,
            _ => false,
        };
        if is_request {
            requests[day] += 1;
            demands.push(demand);
        }
    })?;
    let (held, queued) = window(&history.daily_peaks(), start, DAY_MS, DAYS);
    let mut shared = shared_before;
    let days = (0..DAYS)
        .map(|i| {
            shared = shared_end[i].unwrap_or(shared);
            DayPeak {
                day_ms: start + i as i64 * DAY_MS,
                holders: held[i],
                // A quiet day carries over what was held and waiting.
                demand: if shared_end[i].is_some() {
                    demand_peak[i].max(held[i])
                } else {
                    held[i] + queued[i]
                },
                shared_slots: shared,
                requests: requests[i],
            }
        })
        .collect();
    Ok(Peaks {
        days,
        requests: demands.len(),
        slots_for_share: slots_for_share(&mut demands, share),
        shared_slots_now: history.occupancy().shared_slots,
    })
}

/// The latest shadow run of product `id` (passthrough mode, going on or ended), from
/// its journal; `None` if it was never in passthrough. The fold is the core's
/// ([`slotpool_events::shadow`]).
pub fn shadow_run(
    journal: &Journal,
    id: &str,
    _now: slotpool_events::Timestamp,
    _: (),
) -> Result<Option<ShadowRun>, Problem> {
    let mut runs = ShadowRuns::new();
    replay(journal, id, |h, env, before| {
        let from_queue = matches!(before, Some(Standing::Queued { .. }));
        runs.observe(&env.event, env.timestamp, from_queue, h.occupancy());
    })?;
    Ok(runs.latest().cloned())
}

/// The smallest pool that would have served `share` % of requests at once, given each
/// request's demand (holders and waiting members at that moment, itself included).
pub fn slots_for_share(demands: &mut [u32], share: u32) -> u32 {
    if demands.is_empty() {
        return 0;
    }
    demands.sort_unstable();
    let share = share.clamp(1, 100) as usize;
    // The k-th smallest demand, k = ceil(n * share / 100): at least that share of
    // requests had a demand no larger.
    let k = (demands.len() * share).div_ceil(100).max(1);
    demands[k - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotpool_events::Timestamp;

    fn period(start: i64, peak: u32, end: u32) -> Period {
        Period {
            start: Timestamp::from_millis(start),
            peak_holders: peak,
            peak_at: Timestamp::from_millis(start),
            peak_queued: peak / 2,
            holders_end: end,
            queued_end: end / 2,
        }
    }

    #[test]
    fn a_window_takes_peaks_and_carries_the_last_values_on() {
        let periods = [period(0, 1, 1), period(10, 4, 2), period(20, 6, 3)];
        // Before the history: nothing; inside: the peaks; after: the end values.
        let (h, q) = window(&periods, -10, 10, 5);
        assert_eq!(h, vec![0, 1, 4, 6, 3]);
        assert_eq!(q, vec![0, 0, 2, 3, 1]);
        // A window starting inside carries what ended before it.
        let (h, _) = window(&periods, 15, 10, 1);
        assert_eq!(h, vec![2]);
    }

    #[test]
    fn the_share_picks_the_matching_quantile_of_demand() {
        let mut d = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(slots_for_share(&mut d, 100), 10);
        assert_eq!(slots_for_share(&mut d, 90), 9);
        assert_eq!(slots_for_share(&mut d, 50), 5);
        assert_eq!(slots_for_share(&mut d, 1), 1);
        assert_eq!(slots_for_share(&mut [], 95), 0);
        let mut same = vec![3; 7];
        assert_eq!(slots_for_share(&mut same, 95), 3);
    }
}
