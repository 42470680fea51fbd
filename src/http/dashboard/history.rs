//! The dashboard's series, computed from the journal: the product's stream is replayed
//! through the pure core (`ProductState::apply`, the same fold recovery uses), and the
//! counts after each event are bucketed by minute or by day. There is no second store.
//!
//! A replay reads the whole stream; the handlers run it on the blocking pool.

use crate::problem::Problem;
use actix_web::http::StatusCode;
use slotpool_events::{Journal, ProductEvent, ProductState, Standing, StreamId, Timestamp};
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

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
    pub days: Vec<DayPeak>,
    /// Requests (a member asking for a slot: granted at once or queued) in the window.
    pub requests: usize,
    /// Shared slots that would have served `share` % of those requests at once.
    pub slots_for_share: u32,
    /// Shared slots now.
    pub shared_slots_now: u32,
}

fn journal_error(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "journal_error",
        "Journal unreadable",
        e.to_string(),
    )
}

/// Replays product `id`, calling `f(at, state_after, event, standing_before)` for every
/// event.
fn replay(
    journal: &Journal,
    id: &str,
    mut f: impl FnMut(Timestamp, &ProductState, &ProductEvent, Option<Standing>),
) -> Result<(), Problem> {
    let stream = StreamId::product(id).map_err(journal_error)?;
    let mut state = ProductState::new();
    journal
        .replay::<ProductEvent>(&stream, |env| {
            let before = match &env.event {
                ProductEvent::SlotGranted { user, .. } => state.user(user).map(|u| u.standing),
                _ => None,
            };
            state.apply(&env.event);
            f(env.timestamp, &state, &env.event, before);
        })
        .map_err(journal_error)?;
    Ok(())
}

fn sizes(state: &ProductState) -> (u32, u32) {
    state
        .settings()
        .map_or((0, 0), |s| (s.shared_slots, s.licence_tier))
}

/// Per-minute series of the last day (or, with `week`, the last week) before `now`.
pub fn minute_series(
    journal: &Journal,
    id: &str,
    now: Timestamp,
    week: bool,
) -> Result<MinuteSeries, Problem> {
    let minutes = if week { 7 * 24 * 60 } else { 24 * 60 };
    let end = now.as_millis().div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
    let start = end - minutes as i64 * MINUTE_MS;
    let mut out = MinuteSeries {
        start_ms: start,
        ..Default::default()
    };
    // The values as of the last event seen before the window.
    let mut last = [0u32; 5];
    let mut revocations: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let mut in_window: Vec<(usize, [u32; 5])> = Vec::new();
    replay(journal, id, |at, state, event, _| {
        let c = state.counts();
        let (s, t) = sizes(state);
        let vals = [c.holders as u32, c.queued as u32, c.fixed as u32, s, t];
        let t_ms = at.as_millis();
        if t_ms < start {
            last = vals;
        } else if t_ms < end {
            let minute = ((t_ms - start) / MINUTE_MS) as usize;
            in_window.push((minute, vals));
            if let ProductEvent::SlotRevoked { reason, .. } = event {
                revocations
                    .entry(reason.code())
                    .or_insert_with(|| vec![0; minutes])[minute] += 1;
            }
        }
    })?;
    // Each minute starts with the values in force at its start; holders and queue take
    // the maximum over the minute's events, the sizes the last.
    let mut rows = vec![[0u32; 5]; minutes];
    let mut next = 0usize;
    for (minute, vals) in in_window {
        while next <= minute {
            rows[next] = last;
            next += 1;
        }
        let row = &mut rows[minute];
        row[0] = row[0].max(vals[0]);
        row[1] = row[1].max(vals[1]);
        row[2..].copy_from_slice(&vals[2..]);
        last = vals;
    }
    while next < minutes {
        rows[next] = last;
        next += 1;
    }
    let column = |i: usize| rows.iter().map(|r| r[i]).collect::<Vec<_>>();
    out.holders = column(0);
    out.queued = column(1);
    out.fixed = column(2);
    out.shared_slots = column(3);
    out.tier = column(4);
    out.revocations = revocations;
    Ok(out)
}

/// The user-peak view over the 90 days before `now`, for a share (1..=100 %) of requests.
pub fn peaks(journal: &Journal, id: &str, now: Timestamp, share: u32) -> Result<Peaks, Problem> {
    const DAYS: i64 = 90;
    let end_day = now.as_millis().div_euclid(DAY_MS) * DAY_MS;
    let start = end_day - (DAYS - 1) * DAY_MS;
    let mut days: BTreeMap<i64, DayPeak> = BTreeMap::new();
    let mut demands: Vec<u32> = Vec::new();
    let mut shared_now = 0;
    replay(journal, id, |at, state, event, before| {
        let c = state.counts();
        let (s, _) = sizes(state);
        shared_now = s;
        let t = at.as_millis();
        if t < start {
            return;
        }
        let day = t.div_euclid(DAY_MS) * DAY_MS;
        let demand = (c.holders + c.queued) as u32;
        let entry = days.entry(day).or_insert(DayPeak {
            day_ms: day,
            holders: 0,
            demand: 0,
            shared_slots: s,
            requests: 0,
        });
        entry.holders = entry.holders.max(c.holders as u32);
        entry.demand = entry.demand.max(demand);
        entry.shared_slots = s;
        // A request: a member granted at once (not from the queue), queued, or queued
        // again by auto re-login. The slots that would have served it at once are the
        // holders and waiting members at that moment, itself included.
        let is_request = match event {
            ProductEvent::SlotGranted { .. } => !matches!(before, Some(Standing::Queued { .. })),
            ProductEvent::Queued { .. } | ProductEvent::Requeued { .. } => true,
            _ => false,
        };
        if is_request {
            entry.requests += 1;
            demands.push(demand);
        }
    })?;
    // Days without events carry the previous day's pool size and show no use.
    let mut out = Vec::with_capacity(DAYS as usize);
    let mut last_shared = days.values().next().map_or(shared_now, |d| d.shared_slots);
    for i in 0..DAYS {
        let day = start + i * DAY_MS;
        match days.get(&day) {
            Some(d) => {
                last_shared = d.shared_slots;
                out.push(d.clone());
            }
            None => out.push(DayPeak {
                day_ms: day,
                holders: 0,
                demand: 0,
                shared_slots: last_shared,
                requests: 0,
            }),
        }
    }
    Ok(Peaks {
        days: out,
        requests: demands.len(),
        slots_for_share: slots_for_share(&mut demands, share),
        shared_slots_now: shared_now,
    })
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
