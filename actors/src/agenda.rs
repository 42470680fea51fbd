//! The agenda: which job is due when. Plain data and time arithmetic, no actor, no clock.

use chrono::{NaiveTime, TimeZone};
use chrono_tz::Tz;
use slotpool_events::Timestamp;
use std::collections::{BTreeSet, HashMap};

/// Something the scheduler does at a given instant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Scheduled capacity of one product: resize at a boundary of its schedule, or warn
    /// the holders of the next shrink ([`slotpool_events::Command::ScheduleCapacity`]).
    /// First of the variants, so that at one instant it runs before the product's sweep:
    /// the sweep then sees the boundary's pool.
    Capacity(String),
    /// Sweep one product (warnings, revocations, queue expiry).
    Sweep(String),
    /// The hourly tier reconciliation of every product (rule 7).
    Hourly,
    /// The nightly directory hygiene (rule 8).
    Nightly,
    /// The scheduled source-group sync of one product (rule 9, `sync_interval_s`).
    Sync(String),
}

/// Due jobs in time order, at most one entry per job (the earliest asked for).
///
/// Like mini-redis' expirations: a `BTreeSet<(instant, job)>` answers "what is next" from
/// its front, and a map finds a job's current entry to move it.
#[derive(Debug, Default)]
pub struct Agenda {
    by_time: BTreeSet<(Timestamp, Job)>,
    when: HashMap<Job, Timestamp>,
}

impl Agenda {
    /// Schedules `job` at `at`, unless it is already scheduled earlier. Returns whether
    /// this became the earliest entry of the whole agenda (the driver must wake sooner).
    pub fn schedule(&mut self, job: Job, at: Timestamp) -> bool {
        if let Some(current) = self.when.get(&job) {
            if *current <= at {
                return false;
            }
            self.by_time.remove(&(*current, job.clone()));
        }
        let earliest = self.next().is_none_or(|n| at < n);
        self.by_time.insert((at, job.clone()));
        self.when.insert(job, at);
        earliest
    }

    /// Takes the earliest job due at or before `upto`.
    pub fn pop_due(&mut self, upto: Timestamp) -> Option<(Timestamp, Job)> {
        let first = self.by_time.first()?.clone();
        if first.0 > upto {
            return None;
        }
        self.by_time.remove(&first);
        self.when.remove(&first.1);
        Some(first)
    }

    /// The instant of the earliest job.
    pub fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Whether `job` is scheduled, and when.
    pub fn when(&self, job: &Job) -> Option<Timestamp> {
        self.when.get(job).copied()
    }
}

/// The next full hour strictly after `after`.
pub fn next_hour(after: Timestamp) -> Timestamp {
    let hour = 3_600_000;
    Timestamp::from_millis((after.as_millis().div_euclid(hour) + 1) * hour)
}

/// The first instant strictly after `after` at which the wall clock of `tz` shows `at`.
///
/// Across daylight-saving changes: when `at` does not exist that day (the clock jumps
/// over it), the job runs at the first minute after the gap; when it exists twice (the
/// clock falls back), it runs at the first of the two, once.
pub fn next_local_time(after: Timestamp, at: NaiveTime, tz: Tz) -> Timestamp {
    let after_utc = chrono::DateTime::from_timestamp_millis(after.as_millis()).unwrap_or_default();
    let mut day = after_utc.with_timezone(&tz).date_naive();
    for _ in 0..4 {
        let mut local = day.and_time(at);
        // A gap is at most a few hours; step through it a minute at a time.
        for _ in 0..=24 * 60 {
            if let Some(instant) = tz.from_local_datetime(&local).earliest() {
                let ms = instant.timestamp_millis();
                if ms > after.as_millis() {
                    return Timestamp::from_millis(ms);
                }
                break;
            }
            local += chrono::Duration::minutes(1);
        }
        day = day.succ_opt().unwrap_or(day);
    }
    // Unreachable for real time zones; fall back to a day later rather than never.
    Timestamp::from_millis(after.as_millis() + 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        Timestamp::from_millis(
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("valid")
                .timestamp_millis(),
        )
    }

    #[test]
    fn agenda_keeps_the_earliest_entry_per_job_and_pops_in_time_order() {
        let mut a = Agenda::default();
        assert!(a.schedule(Job::Sweep("b".into()), Timestamp(30)));
        assert!(a.schedule(Job::Sweep("a".into()), Timestamp(20)));
        assert!(
            !a.schedule(Job::Sweep("a".into()), Timestamp(25)),
            "later ask is ignored"
        );
        assert!(
            a.schedule(Job::Sweep("b".into()), Timestamp(10)),
            "earlier ask moves it"
        );
        assert_eq!(a.when(&Job::Sweep("b".into())), Some(Timestamp(10)));
        assert_eq!(a.pop_due(Timestamp(5)), None);
        assert_eq!(
            a.pop_due(Timestamp(100)),
            Some((Timestamp(10), Job::Sweep("b".into())))
        );
        assert_eq!(
            a.pop_due(Timestamp(100)),
            Some((Timestamp(20), Job::Sweep("a".into())))
        );
        assert_eq!(a.pop_due(Timestamp(100)), None);
    }

    #[test]
    fn nightly_runs_once_per_day_across_both_dst_changes() {
        let tz: Tz = "Europe/Berlin".parse().expect("tz");
        let two = NaiveTime::from_hms_opt(2, 0, 0).expect("time");
        // Spring forward: on 2026-03-29 the clock jumps from 02:00 to 03:00 CEST.
        let t = next_local_time(utc("2026-03-28T12:00:00Z"), two, tz);
        assert_eq!(
            t,
            utc("2026-03-29T01:00:00Z"),
            "03:00 CEST, the first minute after the gap"
        );
        let t2 = next_local_time(t, two, tz);
        assert_eq!(t2, utc("2026-03-30T00:00:00Z"), "02:00 CEST the next day");
        // Fall back: on 2026-10-25 02:00-03:00 happens twice; run at the first only.
        let t = next_local_time(utc("2026-10-24T12:00:00Z"), two, tz);
        assert_eq!(t, utc("2026-10-25T00:00:00Z"), "02:00 CEST");
        let t2 = next_local_time(t, two, tz);
        assert_eq!(
            t2,
            utc("2026-10-26T01:00:00Z"),
            "not again at 02:00 CET the same night"
        );
    }

    #[test]
    fn a_capacity_job_runs_before_the_sweep_of_the_same_instant() {
        let mut a = Agenda::default();
        a.schedule(Job::Sweep("p".into()), Timestamp(10));
        a.schedule(Job::Capacity("p".into()), Timestamp(10));
        assert_eq!(
            a.pop_due(Timestamp(10)),
            Some((Timestamp(10), Job::Capacity("p".into())))
        );
        assert_eq!(
            a.pop_due(Timestamp(10)),
            Some((Timestamp(10), Job::Sweep("p".into())))
        );
    }

    #[test]
    fn next_hour_is_strictly_after() {
        assert_eq!(next_hour(Timestamp(0)), Timestamp(3_600_000));
        assert_eq!(next_hour(Timestamp(3_599_999)), Timestamp(3_600_000));
        assert_eq!(next_hour(Timestamp(3_600_000)), Timestamp(7_200_000));
    }
}
